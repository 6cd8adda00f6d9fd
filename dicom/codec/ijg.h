// Shared declarations of the libjpeg glue (ijg_glue.h is compiled three
// times: against libjpeg-turbo for 8-bit, and GDCM's IJG 12- and 16-bit
// builds). The result struct carries what Go needs to report errors.
#ifndef LB_IJG_H
#define LB_IJG_H

#include <stddef.h>

typedef struct {
	int width, height, components, precision;
	int lossless;       // SOF3 (process 14)
	int color_converted; // YCbCr was converted to RGB
	char msg[256];       // first error or fatal warning, formatted by libjpeg
} lb_jpeg_result;

// lb_jpegN_decode decodes one JPEG stream into out (rows*cols*spp samples of
// bps bytes each, little-endian, interleaved). ybr asks for YCbCr to RGB
// conversion (DICOM photometric YBR_*), as dcmtk does. Returns 0 on
// success, -1 on a libjpeg error, -2 when the stream does not match the
// expected shape; r->msg says why.
int lb_jpeg8_decode(const unsigned char *in, size_t n, int rows, int cols, int spp, int bps, int ybr, unsigned char *out, size_t outlen, lb_jpeg_result *r);
int lb_jpeg12_decode(const unsigned char *in, size_t n, int rows, int cols, int spp, int bps, int ybr, unsigned char *out, size_t outlen, lb_jpeg_result *r);
int lb_jpeg16_decode(const unsigned char *in, size_t n, int rows, int cols, int spp, int bps, int ybr, unsigned char *out, size_t outlen, lb_jpeg_result *r);

#endif

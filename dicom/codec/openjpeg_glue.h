// OpenJPEG glue: decode a J2K codestream (or JP2 file) held in C memory.
#ifndef LB_OPENJPEG_GLUE_H
#define LB_OPENJPEG_GLUE_H

#include <stddef.h>

typedef struct lb_opj lb_opj;

typedef struct {
	int width, height, components;
	int precision; // of component 0; all must agree
	int sgnd;      // codestream says signed
	int mct;       // codestream applies a multiple component transform
	int subsampled;
	char msg[256]; // first error reported by OpenJPEG
} lb_opj_info;

// lb_opj_open reads the main header of the codestream in[0:n] (which must
// stay valid until lb_opj_close) and fills info. Returns NULL on error, with
// info->msg set.
lb_opj *lb_opj_open(const unsigned char *in, size_t n, lb_opj_info *info);

// lb_opj_decode decodes the image into out as rows*cols*components samples
// of bps (1 or 2) bytes, little-endian, interleaved. signed_out sign-extends
// an unsigned codestream from its precision, mask_out masks a signed
// one (the DICOM header's Pixel Representation wins). Returns 0 or -1.
int lb_opj_decode(lb_opj *h, int bps, int signed_out, unsigned char *out, size_t outlen, lb_opj_info *info);

void lb_opj_close(lb_opj *h);

#endif

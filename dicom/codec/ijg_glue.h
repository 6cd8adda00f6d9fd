// Decoder body shared by the three libjpeg builds. The including .c file
// first includes its own jpeglib.h/jerror.h and defines LB_DECODE (the
// function's name) and LB_LOSSLESS(cinfo) (whether the stream is process
// 14). Errors longjmp back here: libjpeg's default error_exit calls exit(),
// which a server must never do, and its default emit_message prints.
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "ijg.h"

// A progressive stream may hold any number of scans; each costs a pass over
// the coefficients, so a hostile stream could spin for minutes. 500 is
// libjpeg-turbo's own TJFLAG_LIMITSCANS bound.
#define LB_MAX_SCANS 500

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	lb_jpeg_result *r;
} lb_err_mgr;

static void lb_error_exit(j_common_ptr c) {
	lb_err_mgr *e = (lb_err_mgr *)c->err;
	if (!e->r->msg[0]) {
		char buf[JMSG_LENGTH_MAX];
		(*c->err->format_message)(c, buf);
		snprintf(e->r->msg, sizeof e->r->msg, "%s", buf);
	}
	longjmp(e->jb, 1);
}

// Warnings that mean pixels are missing or garbage are fatal: libjpeg would
// otherwise fill the rest of the image with grey and carry on, and a viewer
// must not show a silently damaged picture. Other warnings (extraneous bytes
// before a marker, odd JFIF versions) are harmless and ignored.
static void lb_emit_message(j_common_ptr c, int level) {
	if (level >= 0) {
		return;
	}
	switch (c->err->msg_code) {
	case JWRN_JPEG_EOF:
	case JWRN_HIT_MARKER:
	case JWRN_HUFF_BAD_CODE:
	case JWRN_MUST_RESYNC:
		lb_error_exit(c);
	default:
		break;
	}
}

static void lb_output_message(j_common_ptr c) { (void)c; }

static void lb_progress(j_common_ptr c) {
	if (c->is_decompressor) {
		j_decompress_ptr d = (j_decompress_ptr)c;
		if (d->input_scan_number > LB_MAX_SCANS) {
			lb_err_mgr *e = (lb_err_mgr *)c->err;
			snprintf(e->r->msg, sizeof e->r->msg, "more than %d scans", LB_MAX_SCANS);
			longjmp(e->jb, 1);
		}
	}
}

static const JOCTET lb_fake_eoi[2] = {0xFF, JPEG_EOI};

static void lb_init_source(j_decompress_ptr d) { (void)d; }

static boolean lb_fill_input_buffer(j_decompress_ptr d) {
	// The whole stream was given at once: running out means it is truncated.
	WARNMS(d, JWRN_JPEG_EOF);
	d->src->next_input_byte = lb_fake_eoi;
	d->src->bytes_in_buffer = 2;
	return TRUE;
}

static void lb_skip_input_data(j_decompress_ptr d, long n) {
	if (n <= 0) {
		return;
	}
	while ((size_t)n > d->src->bytes_in_buffer) {
		n -= (long)d->src->bytes_in_buffer;
		lb_fill_input_buffer(d);
	}
	d->src->next_input_byte += n;
	d->src->bytes_in_buffer -= (size_t)n;
}

static void lb_term_source(j_decompress_ptr d) { (void)d; }

static int lb_little_endian(void) {
	const unsigned short one = 1;
	return *(const unsigned char *)&one == 1;
}

int LB_DECODE(const unsigned char *in, size_t n, int rows, int cols, int spp, int bps, int ybr, unsigned char *out, size_t outlen, lb_jpeg_result *r) {
	struct jpeg_decompress_struct ci;
	struct jpeg_source_mgr src;
	struct jpeg_progress_mgr prog;
	lb_err_mgr err;
	volatile int created = 0;
	volatile int rc = -1;

	memset(r, 0, sizeof *r);
	memset(&ci, 0, sizeof ci);
	ci.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = lb_error_exit;
	err.pub.emit_message = lb_emit_message;
	err.pub.output_message = lb_output_message;
	err.r = r;
	if (setjmp(err.jb)) {
		if (created) {
			jpeg_destroy_decompress(&ci);
		}
		return rc;
	}
	jpeg_create_decompress(&ci);
	created = 1;

	src.init_source = lb_init_source;
	src.fill_input_buffer = lb_fill_input_buffer;
	src.skip_input_data = lb_skip_input_data;
	src.resync_to_restart = jpeg_resync_to_restart;
	src.term_source = lb_term_source;
	src.next_input_byte = in;
	src.bytes_in_buffer = n;
	ci.src = &src;
	prog.progress_monitor = lb_progress;
	ci.progress = &prog;

	jpeg_read_header(&ci, TRUE);
	r->width = (int)ci.image_width;
	r->height = (int)ci.image_height;
	r->components = ci.num_components;
	r->precision = ci.data_precision;
	r->lossless = LB_LOSSLESS(ci);
	// Check the shape before jpeg_start_decompress allocates for it.
	rc = -2;
	if (r->width != cols || r->height != rows) {
		snprintf(r->msg, sizeof r->msg, "stream is %dx%d, header says %dx%d", r->width, r->height, cols, rows);
		longjmp(err.jb, 1);
	}
	if (r->components != spp) {
		snprintf(r->msg, sizeof r->msg, "stream has %d components, header says %d samples per pixel", r->components, spp);
		longjmp(err.jb, 1);
	}
	if (r->precision > 8 * bps || (bps != 1 && bps != 2)) {
		snprintf(r->msg, sizeof r->msg, "stream precision %d does not fit %d-bit samples", r->precision, 8 * bps);
		longjmp(err.jb, 1);
	}
	if ((size_t)rows * (size_t)cols * (size_t)spp * (size_t)bps != outlen) {
		snprintf(r->msg, sizeof r->msg, "output buffer of %zu bytes does not fit the frame", outlen);
		longjmp(err.jb, 1);
	}
	rc = -1;

	// dcmtk's rule (djdijg8.cc, "+cp"): the DICOM photometric decides, not
	// libjpeg's guess from JFIF/Adobe markers. YBR_* is converted to RGB
	// even if the stream claims RGB; anything else is passed through as is.
	if (spp == 3) {
		if (ybr) {
			ci.jpeg_color_space = JCS_YCbCr;
			ci.out_color_space = JCS_RGB;
			r->color_converted = 1;
		} else {
			ci.jpeg_color_space = JCS_UNKNOWN;
			ci.out_color_space = JCS_UNKNOWN;
		}
	} else if (spp == 1) {
		ci.jpeg_color_space = JCS_GRAYSCALE;
		ci.out_color_space = JCS_GRAYSCALE;
	} else {
		ci.jpeg_color_space = JCS_UNKNOWN;
		ci.out_color_space = JCS_UNKNOWN;
	}

	jpeg_start_decompress(&ci);
	if ((int)ci.output_width != cols || (int)ci.output_height != rows || ci.output_components != spp) {
		rc = -2;
		snprintf(r->msg, sizeof r->msg, "decoder output is %ux%u with %d components", (unsigned)ci.output_width, (unsigned)ci.output_height, ci.output_components);
		longjmp(err.jb, 1);
	}
	size_t rowsamples = (size_t)cols * (size_t)spp;
	if (sizeof(JSAMPLE) == (size_t)bps && lb_little_endian()) {
		// Same layout: let libjpeg write straight into the output.
		while (ci.output_scanline < ci.output_height) {
			JSAMPROW row = (JSAMPROW)(out + (size_t)ci.output_scanline * rowsamples * (size_t)bps);
			jpeg_read_scanlines(&ci, &row, 1);
		}
	} else {
		JSAMPARRAY buf = (*ci.mem->alloc_sarray)((j_common_ptr)&ci, JPOOL_IMAGE, (JDIMENSION)rowsamples, 1);
		while (ci.output_scanline < ci.output_height) {
			unsigned char *o = out + (size_t)ci.output_scanline * rowsamples * (size_t)bps;
			jpeg_read_scanlines(&ci, buf, 1);
			for (size_t i = 0; i < rowsamples; i++) {
				unsigned v = (unsigned)(buf[0][i]) & 0xFFFFu;
				if (bps == 1) {
					o[i] = (unsigned char)v;
				} else {
					o[2 * i] = (unsigned char)(v & 0xFF);
					o[2 * i + 1] = (unsigned char)(v >> 8);
				}
			}
		}
	}
	jpeg_finish_decompress(&ci);
	jpeg_destroy_decompress(&ci);
	return 0;
}

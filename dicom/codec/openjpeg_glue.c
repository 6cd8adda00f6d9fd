//go:build cgo

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <openjpeg.h>

#include "openjpeg_glue.h"

struct lb_opj {
	const unsigned char *buf;
	size_t len, pos;
	opj_stream_t *stream;
	opj_codec_t *codec;
	opj_image_t *image;
	lb_opj_info *info; // where messages go during the current call
};

static OPJ_SIZE_T lb_read(void *dst, OPJ_SIZE_T n, void *user) {
	struct lb_opj *h = user;
	if (h->pos >= h->len) {
		return (OPJ_SIZE_T)-1; // end of stream, as OpenJPEG expects
	}
	size_t left = h->len - h->pos;
	if (n > left) {
		n = left;
	}
	memcpy(dst, h->buf + h->pos, n);
	h->pos += n;
	return n;
}

static OPJ_OFF_T lb_skip(OPJ_OFF_T n, void *user) {
	struct lb_opj *h = user;
	if (n < 0) {
		if ((size_t)(-n) > h->pos) {
			n = -(OPJ_OFF_T)h->pos;
		}
	} else if ((size_t)n > h->len - h->pos) {
		n = (OPJ_OFF_T)(h->len - h->pos);
	}
	h->pos = (size_t)((OPJ_OFF_T)h->pos + n);
	return n;
}

static OPJ_BOOL lb_seek(OPJ_OFF_T n, void *user) {
	struct lb_opj *h = user;
	if (n < 0 || (size_t)n > h->len) {
		return OPJ_FALSE;
	}
	h->pos = (size_t)n;
	return OPJ_TRUE;
}

// OpenJPEG reports through callbacks; a library must not print, so errors
// are kept for the Go error and warnings/info dropped.
static void lb_on_error(const char *msg, void *user) {
	struct lb_opj *h = user;
	if (h->info && !h->info->msg[0]) {
		snprintf(h->info->msg, sizeof h->info->msg, "%s", msg);
		size_t l = strlen(h->info->msg);
		while (l > 0 && (h->info->msg[l - 1] == '\n' || h->info->msg[l - 1] == '\r')) {
			h->info->msg[--l] = 0;
		}
	}
}

static void lb_quiet(const char *msg, void *user) {
	(void)msg;
	(void)user;
}

void lb_opj_close(lb_opj *h) {
	if (!h) {
		return;
	}
	if (h->image) {
		opj_image_destroy(h->image);
	}
	if (h->codec) {
		opj_destroy_codec(h->codec);
	}
	if (h->stream) {
		opj_stream_destroy(h->stream);
	}
	free(h);
}

static const unsigned char lb_jp2_magic[12] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};

lb_opj *lb_opj_open(const unsigned char *in, size_t n, lb_opj_info *info) {
	memset(info, 0, sizeof *info);
	struct lb_opj *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(info->msg, sizeof info->msg, "out of memory");
		return NULL;
	}
	h->buf = in;
	h->len = n;
	h->info = info;
	OPJ_CODEC_FORMAT fmt = OPJ_CODEC_J2K;
	if (n >= sizeof lb_jp2_magic && memcmp(in, lb_jp2_magic, sizeof lb_jp2_magic) == 0) {
		fmt = OPJ_CODEC_JP2;
	}
	h->codec = opj_create_decompress(fmt);
	h->stream = opj_stream_default_create(OPJ_TRUE);
	if (!h->codec || !h->stream) {
		snprintf(info->msg, sizeof info->msg, "out of memory");
		lb_opj_close(h);
		return NULL;
	}
	opj_set_error_handler(h->codec, lb_on_error, h);
	opj_set_warning_handler(h->codec, lb_quiet, h);
	opj_set_info_handler(h->codec, lb_quiet, h);
	opj_stream_set_user_data(h->stream, h, NULL);
	opj_stream_set_user_data_length(h->stream, (OPJ_UINT64)n);
	opj_stream_set_read_function(h->stream, lb_read);
	opj_stream_set_skip_function(h->stream, lb_skip);
	opj_stream_set_seek_function(h->stream, lb_seek);

	opj_dparameters_t params;
	opj_set_default_decoder_parameters(&params);
	if (!opj_setup_decoder(h->codec, &params) || !opj_read_header(h->stream, h->codec, &h->image) || !h->image) {
		if (!info->msg[0]) {
			snprintf(info->msg, sizeof info->msg, "cannot read the main header");
		}
		lb_opj_close(h);
		return NULL;
	}
	opj_image_t *im = h->image;
	info->width = (int)(im->x1 - im->x0);
	info->height = (int)(im->y1 - im->y0);
	info->components = (int)im->numcomps;
	if (im->numcomps > 0 && im->comps) {
		info->precision = (int)im->comps[0].prec;
		info->sgnd = (int)im->comps[0].sgnd;
		for (OPJ_UINT32 c = 0; c < im->numcomps; c++) {
			if (im->comps[c].dx != 1 || im->comps[c].dy != 1) {
				info->subsampled = 1;
			}
			if ((int)im->comps[c].prec != info->precision || (int)im->comps[c].sgnd != info->sgnd) {
				info->precision = -1; // mixed: refused by the caller
			}
		}
	}
	opj_codestream_info_v2_t *cs = opj_get_cstr_info(h->codec);
	if (cs) {
		info->mct = cs->m_default_tile_info.mct != 0;
		opj_destroy_cstr_info(&cs);
	}
	h->info = NULL;
	return h;
}

int lb_opj_decode(lb_opj *h, int bps, int signed_out, unsigned char *out, size_t outlen, lb_opj_info *info) {
	h->info = info;
	info->msg[0] = 0;
	if (!opj_decode(h->codec, h->stream, h->image) || !opj_end_decompress(h->codec, h->stream)) {
		if (!info->msg[0]) {
			snprintf(info->msg, sizeof info->msg, "decoding failed");
		}
		h->info = NULL;
		return -1;
	}
	h->info = NULL;
	opj_image_t *im = h->image;
	size_t w = (size_t)(im->x1 - im->x0), ht = (size_t)(im->y1 - im->y0), nc = im->numcomps;
	if (w * ht * nc * (size_t)bps != outlen) {
		snprintf(info->msg, sizeof info->msg, "decoded image does not fit the frame");
		return -1;
	}
	for (size_t c = 0; c < nc; c++) {
		opj_image_comp_t *cp = &im->comps[c];
		if (!cp->data || (size_t)cp->w != w || (size_t)cp->h != ht) {
			snprintf(info->msg, sizeof info->msg, "component %zu decoded as %ux%u", c, cp->w, cp->h);
			return -1;
		}
		int prec = (int)cp->prec;
		unsigned int mask = prec >= 32 ? 0xFFFFFFFFu : ((1u << prec) - 1u);
		unsigned int sign = prec >= 1 && prec <= 31 ? (1u << (prec - 1)) : 0;
		const OPJ_INT32 *d = cp->data;
		size_t npix = w * ht;
		for (size_t i = 0; i < npix; i++) {
			unsigned int v = (unsigned int)d[i];
			if (signed_out && !cp->sgnd) {
				// Two's complement of prec bits, then widened.
				v &= mask;
				if (v & sign) {
					v |= ~mask;
				}
			} else if (!signed_out && cp->sgnd) {
				v &= mask;
			}
			size_t o = (i * nc + c) * (size_t)bps;
			if (bps == 1) {
				out[o] = (unsigned char)v;
			} else {
				out[o] = (unsigned char)(v & 0xFF);
				out[o + 1] = (unsigned char)((v >> 8) & 0xFF);
			}
		}
	}
	return 0;
}

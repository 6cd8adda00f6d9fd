//go:build cgo

// GDCM's IJG build for 16-bit samples (lossy 12-bit and lossless process
// 14 up to 16 bits). Its symbols are mangled (gdcmjpeg16_*), so it links
// beside libjpeg-turbo without clashing.
#include <stdio.h>
#include <gdcm-3.0/gdcmjpeg/16/jpeglib.h>
#include <gdcm-3.0/gdcmjpeg/16/jerror.h>

#define LB_DECODE lb_jpeg16_decode
#define LB_LOSSLESS(ci) ((ci).process == JPROC_LOSSLESS)
#include "ijg_glue.h"

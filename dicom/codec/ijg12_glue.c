//go:build cgo

// GDCM's IJG build for 12-bit samples (lossy 12-bit and lossless process
// 14 up to 16 bits). Its symbols are mangled (gdcmjpeg12_*), so it links
// beside libjpeg-turbo without clashing.
#include <stdio.h>
#include <gdcm-3.0/gdcmjpeg/12/jpeglib.h>
#include <gdcm-3.0/gdcmjpeg/12/jerror.h>

#define LB_DECODE lb_jpeg12_decode
#define LB_LOSSLESS(ci) ((ci).process == JPROC_LOSSLESS)
#include "ijg_glue.h"

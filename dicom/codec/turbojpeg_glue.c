//go:build cgo

// 8-bit JPEG through libjpeg-turbo's libjpeg API (not the TurboJPEG API: see
// turbojpeg.go for why).
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>

#define LB_DECODE lb_jpeg8_decode
#define LB_LOSSLESS(ci) 0
#include "ijg_glue.h"

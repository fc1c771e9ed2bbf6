/* interpolate_f64.c -- interpolate.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "interpolate.inc"

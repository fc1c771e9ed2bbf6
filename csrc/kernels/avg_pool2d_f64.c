/* avg_pool2d_f64.c -- avg_pool2d.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "avg_pool2d.inc"

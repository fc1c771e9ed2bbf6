/* conv_transpose2d_f64.c -- conv_transpose2d.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "conv_transpose2d.inc"

/* conv2d_packed_f64.c -- conv2d_packed.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "conv2d_packed.inc"

/* conv_transpose2d_f32.c -- conv_transpose2d.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "conv_transpose2d.inc"

/* avg_pool2d_f32.c -- avg_pool2d.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "avg_pool2d.inc"

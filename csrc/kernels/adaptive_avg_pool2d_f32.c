/* adaptive_avg_pool2d_f32.c -- adaptive_avg_pool2d.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "adaptive_avg_pool2d.inc"

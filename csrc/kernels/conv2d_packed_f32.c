/* conv2d_packed_f32.c -- conv2d_packed.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "conv2d_packed.inc"

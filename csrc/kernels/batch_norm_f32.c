/* batch_norm_f32.c -- batch_norm.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "batch_norm.inc"

/* dropout_f32.c -- dropout.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "dropout.inc"

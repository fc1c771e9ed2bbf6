/* pad_f32.c -- pad.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "pad.inc"

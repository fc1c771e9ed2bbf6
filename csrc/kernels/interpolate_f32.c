/* interpolate_f32.c -- interpolate.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "interpolate.inc"

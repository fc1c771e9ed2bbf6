/* blocked_layout_f32.c -- blocked_layout.inc compiled for float32 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 32
#include "blocked_layout.inc"

/* blocked_layout_f64.c -- blocked_layout.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "blocked_layout.inc"

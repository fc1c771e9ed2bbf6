/* linear_f64.c -- linear.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "linear.inc"

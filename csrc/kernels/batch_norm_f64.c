/* batch_norm_f64.c -- batch_norm.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "batch_norm.inc"

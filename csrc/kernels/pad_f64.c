/* pad_f64.c -- pad.inc compiled for float64 (sb_real_kernel.h). */
#define SB_KERNEL_BITS 64
#include "pad.inc"

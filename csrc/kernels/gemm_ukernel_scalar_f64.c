/* gemm_ukernel_scalar_f64.c -- gemm_ukernel_scalar.inc compiled for float64. */
#define SB_KERNEL_BITS 64
#include "gemm_ukernel_scalar.inc"

/* gemm_ukernel_scalar_f32.c -- gemm_ukernel_scalar.inc compiled for float32. */
#define SB_KERNEL_BITS 32
#include "gemm_ukernel_scalar.inc"

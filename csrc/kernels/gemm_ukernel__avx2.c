/*
 * gemm_ukernel__avx2.c -- the AVX2 + FMA one-panel micro-kernels (packed-B,
 * indirect-B and pixel rows; 6 x 16 floats, 6 x 8 doubles) for both element
 * types, from the generic-vector body gemm_ukernel_2v.inc on 32-byte
 * vectors: each panel row is two ymm halves. Contracts in gemm_ukernel.h.
 *
 * Twelve ymm accumulators hold the 6-row tile; each k step loads one panel
 * row (2 loads), broadcasts 6 values and issues 12 FMAs -- 15 of the 16
 * ymm registers, and two FMA ports kept busy (Zen 3 / Haswell and later).
 * Compiled for AVX2+FMA by a function attribute (SB_TARGET_AVX2), not by a
 * command-line flag, so the rest of the module stays baseline x86-64;
 * ukernel_select.inc calls these only when the CPU reports AVX2 and FMA.
 */
#include "gemm_ukernel.h"

#ifdef SB_HAVE_AVX2_KERNELS

#define SB_UK_VEC_BYTES 32
#define SB_UK_WIDE 0
#define SB_UK_TARGET SB_TARGET_AVX2
#define SB_UK_SUFFIX _ukernel__avx2
#define SB_REAL_BITS 32
#include "gemm_ukernel_2v.inc"
#define SB_REAL_BITS 64
#include "gemm_ukernel_2v.inc"

#else
/* Not an x86 GCC/clang build: no AVX2 kernel (ukernel_select.inc never asks). */
typedef int sb_gemm_ukernel_avx2_unused;
#endif

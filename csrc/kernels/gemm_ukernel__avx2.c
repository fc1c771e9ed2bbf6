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

#if defined(__clang__)
#define SB_UK_CONTRACT
#define SB_UK_FP_CONTRACT_PRAGMA _Pragma("clang fp contract(fast)")
#else
#define SB_UK_CONTRACT __attribute__((optimize("O2", "fp-contract=fast")))
#define SB_UK_FP_CONTRACT_PRAGMA
#endif
#define SB_UK_WIDE 0

typedef float sb_v8f __attribute__((vector_size(32)));
typedef float sb_v8fu __attribute__((vector_size(32), aligned(4), may_alias));
typedef double sb_v4d __attribute__((vector_size(32)));
typedef double sb_v4du __attribute__((vector_size(32), aligned(8), may_alias));

#define SB_REAL_BITS 32
#include "sb_real_begin.h"
#define sb_uk_vec sb_v8f
#define sb_uk_vecu sb_v8fu
#define SB_UK_LANES 8
#define SB_UK_TARGET SB_TARGET_AVX2
#define SB_UK_GEMM SB_FN_(sb_gemm, _ukernel__avx2)
#define SB_UK_IGEMM SB_FN_(sb_igemm, _ukernel__avx2)
#define SB_UK_PIXGEMM SB_FN_(sb_pixgemm, _ukernel__avx2)
#include "gemm_ukernel_2v.inc"
#undef sb_uk_vec
#undef sb_uk_vecu
#undef SB_UK_LANES
#undef SB_UK_GEMM
#undef SB_UK_IGEMM
#undef SB_UK_PIXGEMM
#include "sb_real_end.h"

#define SB_REAL_BITS 64
#include "sb_real_begin.h"
#define sb_uk_vec sb_v4d
#define sb_uk_vecu sb_v4du
#define SB_UK_LANES 4
#define SB_UK_TARGET SB_TARGET_AVX2
#define SB_UK_GEMM SB_FN_(sb_gemm, _ukernel__avx2)
#define SB_UK_IGEMM SB_FN_(sb_igemm, _ukernel__avx2)
#define SB_UK_PIXGEMM SB_FN_(sb_pixgemm, _ukernel__avx2)
#include "gemm_ukernel_2v.inc"
#include "sb_real_end.h"

#else
/* Not an x86 GCC/clang build: no AVX2 kernel (ukernel_select.inc never asks). */
typedef int sb_gemm_ukernel_avx2_unused;
#endif

/*
 * gemm_ukernel__avx512.c -- the AVX-512 micro-kernels of the convolution
 * and Linear, two panels per call (6 x 32 floats, 6 x 16 doubles): channel
 * rows read in place (igemm), pixel rows (pixgemm) and two packed panels
 * (gemm, Linear's weights), for both element types, from one
 * body (gemm_ukernel_2v.inc) on 64-byte generic vectors. Contracts in
 * gemm_ukernel.h.
 *
 * Why generic vectors and not intrinsics: one source serves both types, and
 * it compiles twice per type:
 *   - ..._wide__avx512: for AVX-512F (zmm registers), the kernels
 *     ukernel_select.inc selects on a CPU that has AVX-512F;
 *   - ..._wide__avx512_source_on_avx2: the same source for AVX2+FMA (GCC
 *     splits each vector into two ymm halves), which tests call on any AVX2
 *     machine to check the logic: each must equal two calls of its one-panel
 *     AVX2 twin bit for bit.
 * Only the instruction selection differs between the two, done by the
 * compiler. On a CPU with AVX-512 the test suite runs the real kernel too
 * (every available ISA is tested).
 *
 * The pixel-row kernels come in two heights: 6 x 2 panels and 7 x 2
 * panels (_wide7), which the convolution uses where every channel chunk is
 * whole panel pairs (no one-panel call, whose AVX2 kernel has six rows).
 *
 * The partial last panel and any odd single panel use the one-panel AVX2
 * kernels: every AVX-512 CPU has AVX2 and FMA, and the results are the same
 * bits either way.
 */
#include "gemm_ukernel.h"

#ifdef SB_HAVE_AVX2_KERNELS

#define SB_UK_VEC_BYTES 64 /* one panel row, one zmm register */
#define SB_UK_WIDE 1

/* each target twice: six rows (every kernel), then seven (the pixel-row
 * kernels: _wide7) */
#define SB_UK_TARGET __attribute__((target("avx512f,avx2,fma")))
#define SB_UK_SUFFIX _ukernel_wide__avx512
#define SB_REAL_BITS 32
#include "gemm_ukernel_2v.inc"
#define SB_REAL_BITS 64
#include "gemm_ukernel_2v.inc"
#undef SB_UK_SUFFIX
#define SB_UK_SUFFIX _ukernel_wide7__avx512
#define SB_UK_ROWS 7
#define SB_REAL_BITS 32
#include "gemm_ukernel_2v.inc"
#define SB_UK_ROWS 7
#define SB_REAL_BITS 64
#include "gemm_ukernel_2v.inc"

#undef SB_UK_TARGET
#undef SB_UK_SUFFIX
#define SB_UK_TARGET SB_TARGET_AVX2
#define SB_UK_SUFFIX _ukernel_wide__avx512_source_on_avx2
#define SB_REAL_BITS 32
#include "gemm_ukernel_2v.inc"
#define SB_REAL_BITS 64
#include "gemm_ukernel_2v.inc"
#undef SB_UK_SUFFIX
#define SB_UK_SUFFIX _ukernel_wide7__avx512_source_on_avx2
#define SB_UK_ROWS 7
#define SB_REAL_BITS 32
#include "gemm_ukernel_2v.inc"
#define SB_UK_ROWS 7
#define SB_REAL_BITS 64
#include "gemm_ukernel_2v.inc"

#else
/* Not an x86 GCC/clang build: no AVX-512 kernel (ukernel_select.inc never asks). */
typedef int sb_gemm_ukernel_avx512_unused;
#endif

/*
 * gemm_ukernel_f32__avx2.c -- the AVX2 + FMA 6x16 micro-kernels of the
 * packed convolution, packed-B and indirect-B (contract in gemm_ukernel.h).
 *
 * Twelve ymm accumulators hold the 6 x 16 tile (two 8-float halves per
 * row); each k step loads one 16-float row of packed B (2 loads), broadcasts
 * the 6 packed A values and issues 12 FMAs -- 15 of the 16 ymm registers,
 * and two FMA ports kept busy (Zen 3 / Haswell and later: 2 FMAs per cycle).
 *
 * Compiled for AVX2+FMA by a function attribute (SB_TARGET_AVX2), not by a
 * command-line flag, so the rest of the module stays baseline x86-64; dispatch.c calls this only
 * when the CPU reports AVX2 and FMA.
 */
#include "gemm_ukernel.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>

/* Every variant's end: c = acc (+ c when accumulating the K blocks). */
static inline __attribute__((always_inline)) SB_TARGET_AVX2 void
store_6x16(const __m256 acc[SB_CONV_MR][2], float *c, int64_t ldc, int accumulate)
{
    for (int i = 0; i < SB_CONV_MR; i++) {
        float *ci = c + i * ldc;
        __m256 lo = acc[i][0], hi = acc[i][1];
        if (accumulate) {
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(ci));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, lo);
        _mm256_storeu_ps(ci + 8, hi);
    }
}

/* Both variants: row p of B is b + p*NR (b_offsets NULL) or b + b_offsets[p].
 * Inlined into each with a constant b_offsets, so each is specialised. */
static inline __attribute__((always_inline)) SB_TARGET_AVX2 void
tile_6x16(int64_t kc, const float *restrict a, const float *restrict b,
          const int64_t *restrict b_offsets, float *restrict c, int64_t ldc, int accumulate)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        const float *bp = b_offsets != NULL ? b + b_offsets[p] : b + p * SB_CONV_NR;
        const __m256 b0 = _mm256_loadu_ps(bp);
        const __m256 b1 = _mm256_loadu_ps(bp + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += SB_CONV_MR;
    }
    const __m256 acc[SB_CONV_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                       {c30, c31}, {c40, c41}, {c50, c51}};
    store_6x16(acc, c, ldc, accumulate);
}

SB_TARGET_AVX2 void sb_gemm_f32_ukernel_6x16__avx2(int64_t kc, const float *restrict a,
                                                   const float *restrict b, float *restrict c,
                                                   int64_t ldc, int accumulate)
{
    tile_6x16(kc, a, b, NULL, c, ldc, accumulate);
}

SB_TARGET_AVX2 void sb_igemm_f32_ukernel_6x16__avx2(int64_t kc, const float *restrict a,
                                                    const float *restrict b,
                                                    const int64_t *restrict b_offsets,
                                                    float *restrict c, int64_t ldc,
                                                    int accumulate)
{
    tile_6x16(kc, a, b, b_offsets, c, ldc, accumulate);
}
/* Pixel rows (contract in gemm_ukernel.h): the roles of the operands are
 * swapped, the register use is the same -- 12 accumulators, per k step two
 * loads of 16 packed weights, six broadcasts (one input value per pixel)
 * and 12 FMAs. */
SB_TARGET_AVX2 void sb_pixgemm_f32_ukernel_6x16__avx2(int64_t kc, const float *const *pixels,
                                                      const int64_t *restrict offsets,
                                                      const float *restrict w, int64_t w_next,
                                                      float *restrict c, int64_t ldc,
                                                      int accumulate)
{
    (void)w_next; /* 16 columns: one panel */
    const float *x0 = pixels[0], *x1 = pixels[1], *x2 = pixels[2];
    const float *x3 = pixels[3], *x4 = pixels[4], *x5 = pixels[5];
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        const int64_t o = offsets[p];
        const __m256 w0 = _mm256_loadu_ps(w);
        const __m256 w1 = _mm256_loadu_ps(w + 8);
        __m256 xi;
        xi = _mm256_broadcast_ss(x0 + o);
        c00 = _mm256_fmadd_ps(xi, w0, c00); c01 = _mm256_fmadd_ps(xi, w1, c01);
        xi = _mm256_broadcast_ss(x1 + o);
        c10 = _mm256_fmadd_ps(xi, w0, c10); c11 = _mm256_fmadd_ps(xi, w1, c11);
        xi = _mm256_broadcast_ss(x2 + o);
        c20 = _mm256_fmadd_ps(xi, w0, c20); c21 = _mm256_fmadd_ps(xi, w1, c21);
        xi = _mm256_broadcast_ss(x3 + o);
        c30 = _mm256_fmadd_ps(xi, w0, c30); c31 = _mm256_fmadd_ps(xi, w1, c31);
        xi = _mm256_broadcast_ss(x4 + o);
        c40 = _mm256_fmadd_ps(xi, w0, c40); c41 = _mm256_fmadd_ps(xi, w1, c41);
        xi = _mm256_broadcast_ss(x5 + o);
        c50 = _mm256_fmadd_ps(xi, w0, c50); c51 = _mm256_fmadd_ps(xi, w1, c51);
        w += SB_CONV_NR;
    }
    const __m256 acc[SB_CONV_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                       {c30, c31}, {c40, c41}, {c50, c51}};
    store_6x16(acc, c, ldc, accumulate);
}
#else
/* Not an x86 GCC/clang build: no AVX2 kernel (dispatch.c never asks). */
typedef int sb_gemm_ukernel_f32_avx2_unused;
#endif

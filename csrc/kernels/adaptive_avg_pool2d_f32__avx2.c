/*
 * adaptive_avg_pool2d_f32__avx2.c -- the global average pool (output 1x1:
 * SEAttention's squeeze) with AVX2, bit for bit the scalar path of
 * adaptive_avg_pool2d_f32.c.
 *
 * Why a hand-written path: SEAttention's planes are small (7x7 = 49
 * floats), so the scalar loop's per-plane overhead -- a scalar tail, the
 * lane array spilled and combined one float at a time -- made the pool
 * cost about twice what reading 5 MB of input costs. Here a plane is six
 * 8-float loads, one masked load for the tail, and a register reduction.
 *
 * Same arithmetic as the scalar path, in the same order, so the same values
 * (NaN payloads aside: which operand's NaN an add keeps is not fixed):
 *   - the plane is cut into blocks of SB_POOL_BLOCK floats; in each, lane
 *     l (0..7) sums the block's elements l, l+8, l+16, ... in order,
 *     starting from +0.0f (a masked-off tail lane adds +0.0f, which leaves
 *     every value unchanged: a lane that starts at +0.0f never holds -0.0f);
 *   - the lanes combine as ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)): the
 *     two 128-bit halves added, then lanes 2,3 onto 0,1, then lane 1 onto 0;
 *   - the block sums are added in double, and the total, rounded to float,
 *     is divided by H*W in float, as torch's mean.
 *
 * Compiled for AVX2 by a function attribute; called only on CPUs with it.
 */
#include "skipblocks.h"
#include "sb_avx2_tail.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>

/* The float sum of n floats (n <= SB_POOL_BLOCK) in the scalar path's order. */
SB_TARGET_AVX2 static inline float block_sum(const float *x, int64_t n)
{
    const int64_t full = n / 8 * 8;
    __m256 lanes = _mm256_setzero_ps();
    for (int64_t i = 0; i < full; i += 8)
        lanes = _mm256_add_ps(lanes, _mm256_loadu_ps(x + i));
    if (full < n)
        lanes = _mm256_add_ps(lanes,
                              _mm256_maskload_ps(x + full, sb_avx2_first_lanes(n - full)));
    /* (l0+l4, l1+l5, l2+l6, l3+l7) */
    const __m128 halves = _mm_add_ps(_mm256_castps256_ps128(lanes),
                                     _mm256_extractf128_ps(lanes, 1));
    /* ((l0+l4)+(l2+l6), (l1+l5)+(l3+l7), ...) */
    const __m128 pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
    /* lane 0 + lane 1 */
    return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 0x55)));
}

SB_TARGET_AVX2 void sb_global_avg_pool_f32__avx2(float *out, const float *in, int64_t planes,
                                                 int64_t hw)
{
    for (int64_t p = 0; p < planes; p++) {
        const float *plane = in + p * hw;
        double total = 0.0;
        for (int64_t start = 0; start < hw; start += SB_POOL_BLOCK)
            total += block_sum(plane + start,
                               hw - start < SB_POOL_BLOCK ? hw - start : SB_POOL_BLOCK);
        out[p] = (float)total / (float)hw;
    }
}
#endif /* SB_HAVE_AVX2_KERNELS */

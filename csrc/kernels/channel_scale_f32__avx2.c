/*
 * channel_scale_f32__avx2.c -- y = x * s, one factor per (n, c) plane
 * (SEAttention's excitation, torch's x * y.expand_as(x)), with AVX2.
 *
 * Why a hand-written path: with SEAttention's 7x7 planes the scalar loop
 * spent more time on each plane's scalar tail and loop set-up than on the
 * 49 multiplications. Here a plane is 8-float multiplies plus one masked
 * load/store for the tail. The masked store writes nothing outside the
 * plane, so the output may be the input (in place) and threads that own
 * neighbouring planes never touch each other's floats.
 *
 * One float multiplication per element, as in the scalar path and in
 * torch: the same values (NaN payloads aside).
 */
#include "skipblocks.h"
#include "sb_avx2_tail.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>

SB_TARGET_AVX2 void sb_channel_scale_f32__avx2(float *out, const float *in,
                                               const float *scale, int64_t planes, int64_t hw)
{
    const int64_t full = hw / 8 * 8;
    const __m256i tail_mask = sb_avx2_first_lanes(hw - full);
    for (int64_t p = 0; p < planes; p++) {
        const float *x = in + p * hw;
        float *y = out + p * hw;
        const __m256 s = _mm256_broadcast_ss(scale + p);
        for (int64_t i = 0; i < full; i += 8)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
        if (full < hw)
            _mm256_maskstore_ps(y + full, tail_mask,
                                _mm256_mul_ps(_mm256_maskload_ps(x + full, tail_mask), s));
    }
}
#endif /* SB_HAVE_AVX2_KERNELS */

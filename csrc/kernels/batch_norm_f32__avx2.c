/*
 * batch_norm_f32__avx2.c -- BatchNorm2d's apply step on one plane with AVX2
 * + FMA: out = x * scale + shift as a single FMA (one rounding), then the
 * optional residual add and ReLU -- what torch's AVX2 and AVX-512 builds
 * compute (batch_norm_cpu_contiguous_impl's `x * alpha + beta`, which GCC
 * contracts to an FMA). Together with batch_norm_f32.c's fold this gives
 * torch's bits for an eval-mode BatchNorm2d on CPUs with AVX2.
 *
 * The ReLU is torch's clamp_min(v, 0) = (v < 0 ? 0 : v): NaN and -0.0 pass
 * unchanged, so it is a compare-and-clear, not max_ps (which would turn
 * both into +0.0). The residual add rounds the BatchNorm result first, as
 * torch's separate `bn(x) + residual`. The tail of a plane is a masked
 * load/store: nothing outside the plane is read or written, so out may be
 * in or the residual.
 */
#include "skipblocks.h"
#include "sb_avx2_tail.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>

SB_TARGET_AVX2 static inline __m256 bn_one(__m256 x, __m256 s, __m256 t, const float *r,
                                          __m256i mask, int masked, int relu)
{
    __m256 v = _mm256_fmadd_ps(x, s, t);
    if (r != NULL)
        v = _mm256_add_ps(v, masked ? _mm256_maskload_ps(r, mask) : _mm256_loadu_ps(r));
    if (relu)
        v = _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ), v);
    return v;
}

SB_TARGET_AVX2 void sb_batch_norm_apply_plane_f32__avx2(float *out, const float *in,
                                                        const float *residual, int64_t hw,
                                                        float scale, float shift, int relu)
{
    const __m256 s = _mm256_set1_ps(scale), t = _mm256_set1_ps(shift);
    const int64_t full = hw / 8 * 8;
    const __m256i tail = sb_avx2_first_lanes(hw - full);
    relu = relu || residual != NULL;
    for (int64_t i = 0; i < full; i += 8)
        _mm256_storeu_ps(out + i, bn_one(_mm256_loadu_ps(in + i), s, t,
                                         residual != NULL ? residual + i : NULL, tail, 0, relu));
    if (full < hw)
        _mm256_maskstore_ps(out + full, tail,
                            bn_one(_mm256_maskload_ps(in + full, tail), s, t,
                                   residual != NULL ? residual + full : NULL, tail, 1, relu));
}

SB_TARGET_AVX2 void sb_batch_norm_apply_pixels16_f32__avx2(float *out, const float *in,
                                                          int64_t n, int64_t in_step,
                                                          const float *scale,
                                                          const float *shift, int relu)
{
    const __m256 s0 = _mm256_loadu_ps(scale), s1 = _mm256_loadu_ps(scale + 8);
    const __m256 t0 = _mm256_loadu_ps(shift), t1 = _mm256_loadu_ps(shift + 8);
    const __m256i none = _mm256_setzero_si256();
    for (int64_t i = 0; i < n; i++) {
        const float *x = in + i * in_step;
        _mm256_storeu_ps(out + i * 16, bn_one(_mm256_loadu_ps(x), s0, t0, NULL, none, 0, relu));
        _mm256_storeu_ps(out + i * 16 + 8,
                         bn_one(_mm256_loadu_ps(x + 8), s1, t1, NULL, none, 0, relu));
    }
}
#endif /* SB_HAVE_AVX2_KERNELS */

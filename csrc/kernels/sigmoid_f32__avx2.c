/*
 * sigmoid_f32__avx2.c -- torch.sigmoid, 1 / (1 + exp(-x)), eight floats at a
 * time with AVX2 + FMA (SEAttention's gate; the scalar path calls libm's
 * expf one value at a time, which made the gate a tenth of the block).
 *
 * exp(t) is computed as 2^n * e^r with n = round(t / ln 2) and
 * r = t - n ln 2 (ln 2 split in two parts so r is exact to float), e^r by
 * the degree-6 minimax polynomial of Cephes' expf (error about 1 ulp on
 * [-ln2/2, ln2/2]), and 2^n built in the exponent bits, in two halves so
 * n = 128 (t near 88.7) does not overflow the exponent early. Limits as
 * torch's: exp(-x) overflows to inf for x < -88.7 (sigmoid 0), underflows
 * to 0 for x > 103.97 (sigmoid 1); NaN stays NaN. The result is within a
 * few ulp of torch's (both are within a few ulp of the exact value); the
 * tests hold it to the sigmoid bound of tests/tolerances.py.
 *
 * Compiled for AVX2 by a function attribute (SB_TARGET_AVX2); called through
 * dispatch only on CPUs that have it.
 */
#include "skipblocks.h"
#include "sb_isa_kernels.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>

SB_TARGET_AVX2 static inline __m256 exp_avx2(__m256 t)
{
    const __m256 hi = _mm256_set1_ps(88.7228393f), lo = _mm256_set1_ps(-103.972084f);
    const __m256 nan_mask = _mm256_cmp_ps(t, t, _CMP_UNORD_Q);
    const __m256 over = _mm256_cmp_ps(t, hi, _CMP_GT_OQ);
    const __m256 under = _mm256_cmp_ps(t, lo, _CMP_LT_OQ);
    __m256 x = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, x2, x), _mm256_set1_ps(1.0f));
    /* y * 2^n as y * 2^(n/2) * 2^(n - n/2): each factor's exponent fits. */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1);
    const __m256i rest = _mm256_sub_epi32(ni, half);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, bias), 23));
    y = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), under);
    return _mm256_blendv_ps(y, t, nan_mask);
}

SB_TARGET_AVX2 void sb_sigmoid_f32__avx2(float *out, const float *in, int64_t count)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256 x = _mm256_loadu_ps(in + i);
        const __m256 e = exp_avx2(_mm256_xor_ps(x, sign)); /* exp(-x) */
        _mm256_storeu_ps(out + i, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
    if (i < count) {
        /* the tail through the same vector code, via a padded copy */
        float buf[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (int64_t j = i; j < count; j++)
            buf[j - i] = in[j];
        const __m256 e = exp_avx2(_mm256_xor_ps(_mm256_loadu_ps(buf), sign));
        _mm256_storeu_ps(buf, _mm256_div_ps(one, _mm256_add_ps(one, e)));
        for (int64_t j = i; j < count; j++)
            out[j] = buf[j - i];
    }
}
#else
typedef int sb_sigmoid_f32_avx2_unused;
#endif

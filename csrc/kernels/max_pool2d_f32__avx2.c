/*
 * max_pool2d_f32__avx2.c -- the interior run of max_pool2d with AVX2: eight
 * adjacent outputs of one output row at a time, their maxima kept in a
 * register across all the window's taps.
 *
 * Why a hand-written path: the portable interior (max_pool2d.inc, max_into)
 * makes one pass over the output row per tap, loading and storing the row
 * kernel_h * kernel_w times; for stride 2 the compiler gathers the even
 * elements with several shuffles per vector, or not at all. ResNet's 3x3
 * stride-2 stem pool took about three times ONNX Runtime's time. Here the
 * output row is stored once, and a stride-2 tap is two loads, one shuffle
 * and one permute.
 *
 * The rule is torch's, applied per lane in torch's order (ky, then kx):
 * m starts as the first tap's value (what `v > -inf || isnan(v)` keeps),
 * then v replaces m where v > m (ordered) or v is NaN. A maximum involves
 * no rounding, so the bits are the portable path's, NaN payloads and
 * signed zeros included.
 *
 * Called only on CPUs with AVX2, and only for strides 1 and 2.
 */
#include "sb_isa_kernels.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>
#include <math.h>

/* The eight values src[0], src[stride], ..., src[7 * stride] (stride 1 or
 * 2); reads src[0 .. 7 * stride] and nothing past it. */
SB_TARGET_AVX2 static inline __m256 load8(const float *src, int64_t stride)
{
    if (stride == 1)
        return _mm256_loadu_ps(src);
    /* a = src[0..7], b = src[7..14]; per 128-bit lane take a's elements 0, 2
     * and b's 1, 3: (s0 s2 s8 s10 | s4 s6 s12 s14), then swap the middle
     * 64-bit pairs into order */
    const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 7);
    const __m256 mixed = _mm256_shuffle_ps(a, b, 0xD8);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), 0xD8));
}

/* out[x .. x+7] */
SB_TARGET_AVX2 static inline void run8(float *out, const float *first_row, int64_t rows,
                                       int64_t row_step, int64_t taps, int64_t tap_step,
                                       int64_t stride, int64_t x)
{
    const float *base = first_row + x * stride;
    __m256 m = load8(base, stride);
    for (int64_t r = 0; r < rows; r++) {
        const float *row = base + r * row_step;
        for (int64_t t = r == 0 ? 1 : 0; t < taps; t++) {
            const __m256 v = load8(row + t * tap_step, stride);
            const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ),
                                             _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            m = _mm256_blendv_ps(m, v, take);
        }
    }
    _mm256_storeu_ps(out + x, m);
}

SB_TARGET_AVX2 void sb_max_pool_run_f32__avx2(float *out, const float *first_row,
                                              int64_t rows, int64_t row_step, int64_t taps,
                                              int64_t tap_step, int64_t stride, int64_t n)
{
    if (n >= 8) {
        for (int64_t x = 0; x + 8 <= n; x += 8)
            run8(out, first_row, rows, row_step, taps, tap_step, stride, x);
        /* the last n % 8 outputs: the final eight again, overlapping the
         * previous chunk (each output is a function of the input alone, so
         * the overlap rewrites the same bits) */
        if (n % 8 != 0)
            run8(out, first_row, rows, row_step, taps, tap_step, stride, n - 8);
        return;
    }
    /* fewer than eight outputs: one at a time by the same rule */
    for (int64_t x = 0; x < n; x++) {
        const float *base = first_row + x * stride;
        float m = base[0];
        for (int64_t r = 0; r < rows; r++) {
            const float *row = base + r * row_step;
            for (int64_t t = r == 0 ? 1 : 0; t < taps; t++) {
                const float v = row[t * tap_step];
                if (v > m || v != v)
                    m = v;
            }
        }
        out[x] = m;
    }
}
SB_TARGET_AVX2 void sb_max_pool_blocked_pixel_f32__avx2(float *out, const float *first,
                                                        int64_t rows, int64_t row_step,
                                                        int64_t taps, int64_t tap_step)
{
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t t = 0; t < taps; t++) {
            const float *v = first + r * row_step + t * tap_step;
            const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
            /* torch's rule per lane: take v if v > m or v is NaN */
            m0 = _mm256_blendv_ps(m0, v0, _mm256_or_ps(_mm256_cmp_ps(v0, m0, _CMP_GT_OQ),
                                                       _mm256_cmp_ps(v0, v0, _CMP_UNORD_Q)));
            m1 = _mm256_blendv_ps(m1, v1, _mm256_or_ps(_mm256_cmp_ps(v1, m1, _CMP_GT_OQ),
                                                       _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)));
        }
    _mm256_storeu_ps(out, m0);
    _mm256_storeu_ps(out + 8, m1);
}
#else
/* Not an x86 GCC/clang build: no AVX2 max pool (max_pool2d.inc never asks). */
typedef int sb_max_pool2d_f32_avx2_unused;
#endif

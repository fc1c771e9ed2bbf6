/*
 * conv2d_store_f32__avx2.c -- the epilogue store of the convolution's
 * pixel-row tiles, 8 channels x 8 pixels at a time with AVX2.
 *
 * A pixel-row tile holds its sums pixel-major (tile[pixel * ldt + channel]);
 * the output is NCHW, channel-major. The portable store in
 * conv2d_packed_f32.c (store_pixel_tile) reads the tile with a stride of
 * ldt floats, one value at a time -- about 8 % of a 3x3 64->64 convolution.
 * This block loads eight pixels' rows of eight channels, transposes the 8x8
 * block in registers (unpack / shuffle / permute, 24 instructions) and
 * writes eight channel rows of eight contiguous pixels. The arithmetic is
 * the portable store's, in the same order, so the bits are the same:
 *   v = (sum + bias[channel]) [+ residual], then torch.relu (v < 0 ? 0 : v,
 *   an ordered compare: NaN and -0.0 pass through).
 */
#include "sb_isa_kernels.h"

#ifdef SB_HAVE_AVX2_KERNELS
#include <immintrin.h>

SB_TARGET_AVX2 void sb_conv2d_store_block_8x8__avx2(float *out, int64_t out_stride,
                                                    const float *tile, int64_t ldt,
                                                    const float *bias, const float *res,
                                                    int64_t res_stride, int relu)
{
    __m256 r0 = _mm256_loadu_ps(tile + 0 * ldt), r1 = _mm256_loadu_ps(tile + 1 * ldt);
    __m256 r2 = _mm256_loadu_ps(tile + 2 * ldt), r3 = _mm256_loadu_ps(tile + 3 * ldt);
    __m256 r4 = _mm256_loadu_ps(tile + 4 * ldt), r5 = _mm256_loadu_ps(tile + 5 * ldt);
    __m256 r6 = _mm256_loadu_ps(tile + 6 * ldt), r7 = _mm256_loadu_ps(tile + 7 * ldt);
    /* rows = pixels, lanes = channels -> rows = channels, lanes = pixels */
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    __m256 ch[8];
    ch[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    ch[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    ch[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    ch[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    ch[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    ch[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    ch[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    ch[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
    const __m256 zero = _mm256_setzero_ps();
    for (int c = 0; c < 8; c++) {
        __m256 v = _mm256_add_ps(ch[c], _mm256_broadcast_ss(bias + c));
        if (res != NULL)
            v = _mm256_add_ps(v, _mm256_loadu_ps(res + c * res_stride));
        if (relu) /* lanes with v < 0 (ordered: not NaN, not -0.0) become 0 */
            v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
        _mm256_storeu_ps(out + c * out_stride, v);
    }
}
SB_TARGET_AVX2 void sb_conv2d_store_blocked_f32__avx2(float *out, const float *tile,
                                                      int64_t ldt, const float *bias,
                                                      const float *res, int64_t n,
                                                      int64_t real, int relu)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
    /* lanes l < real kept, the others 0 (an and with all-ones / all-zero
     * lanes: a NaN past C_out becomes +0) */
    const __m256i lane0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lane1 = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    const __m256i limit = _mm256_set1_epi32((int)real);
    const __m256 keep0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limit, lane0));
    const __m256 keep1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limit, lane1));
    for (int64_t i = 0; i < n; i++) {
        __m256 v0 = _mm256_add_ps(_mm256_loadu_ps(tile + i * ldt), b0);
        __m256 v1 = _mm256_add_ps(_mm256_loadu_ps(tile + i * ldt + 8), b1);
        if (res != NULL) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res + i * 16));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res + i * 16 + 8));
        }
        if (relu) { /* lanes with v < 0 (ordered: not NaN, not -0.0) become 0 */
            v0 = _mm256_blendv_ps(v0, zero, _mm256_cmp_ps(v0, zero, _CMP_LT_OQ));
            v1 = _mm256_blendv_ps(v1, zero, _mm256_cmp_ps(v1, zero, _CMP_LT_OQ));
        }
        if (real < 16) {
            v0 = _mm256_and_ps(v0, keep0);
            v1 = _mm256_and_ps(v1, keep1);
        }
        _mm256_storeu_ps(out + i * 16, v0);
        _mm256_storeu_ps(out + i * 16 + 8, v1);
    }
}
#else
/* Not an x86 GCC/clang build: no AVX2 store (conv2d_packed_f32.c never asks). */
typedef int sb_conv2d_store_f32_avx2_unused;
#endif

/*
 * gemm_ukernel_f32__scalar.c -- the portable 6x16 micro-kernels of the
 * packed convolution, packed-B and indirect-B (contract in gemm_ukernel.h).
 * Plain C, no intrinsics: the path every build has (ARM, old x86) and the
 * readable statement of what the SIMD variants compute. GCC vectorises the
 * j loops with the baseline SIMD of the target. Multiply and add stay
 * separate roundings (setup.py compiles in ISO C mode, where GCC does not
 * contract a*b+c).
 */
#include "gemm_ukernel.h"

enum { MR = SB_CONV_MR, NR = SB_CONV_NR };

/* Every variant's end: c = acc (+ c when accumulating the K blocks). */
static inline __attribute__((always_inline)) void
store_6x16(float acc[MR][NR], float *restrict c, int64_t ldc, int accumulate)
{
    for (int i = 0; i < MR; i++) {
        float *restrict ci = c + i * ldc;
        if (accumulate)
            for (int j = 0; j < NR; j++)
                acc[i][j] += ci[j];
        for (int j = 0; j < NR; j++)
            ci[j] = acc[i][j];
    }
}

/* Both variants: row p of B is b + p*NR (b_offsets NULL) or b + b_offsets[p].
 * Inlined into each with a constant b_offsets, so each is specialised. */
static inline __attribute__((always_inline)) void
tile_6x16(int64_t kc, const float *restrict a, const float *restrict b,
          const int64_t *restrict b_offsets, float *restrict c, int64_t ldc, int accumulate)
{
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        const float *restrict bp = b_offsets != NULL ? b + b_offsets[p] : b + p * NR;
        const float *restrict ap = a + p * MR;
        for (int i = 0; i < MR; i++) {
            const float ai = ap[i];
            for (int j = 0; j < NR; j++)
                acc[i][j] += ai * bp[j];
        }
    }
    store_6x16(acc, c, ldc, accumulate);
}

void sb_pixgemm_f32_ukernel_6x16__scalar(int64_t kc, const float *const *pixels,
                                         const int64_t *restrict offsets,
                                         const float *restrict w, int64_t w_next,
                                         float *restrict c, int64_t ldc, int accumulate)
{
    (void)w_next; /* 16 columns: one panel */
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        const float *restrict wp = w + p * NR;
        for (int i = 0; i < MR; i++) {
            const float xi = pixels[i][offsets[p]];
            for (int j = 0; j < NR; j++)
                acc[i][j] += xi * wp[j];
        }
    }
    store_6x16(acc, c, ldc, accumulate);
}

void sb_gemm_f32_ukernel_6x16__scalar(int64_t kc, const float *restrict a,
                                      const float *restrict b, float *restrict c,
                                      int64_t ldc, int accumulate)
{
    tile_6x16(kc, a, b, NULL, c, ldc, accumulate);
}

void sb_igemm_f32_ukernel_6x16__scalar(int64_t kc, const float *restrict a,
                                       const float *restrict b,
                                       const int64_t *restrict b_offsets, float *restrict c,
                                       int64_t ldc, int accumulate)
{
    tile_6x16(kc, a, b, b_offsets, c, ldc, accumulate);
}

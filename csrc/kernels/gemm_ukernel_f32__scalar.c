/*
 * gemm_ukernel_f32__scalar.c -- the portable 6x16 micro-kernel of the packed
 * convolution (contract in gemm_ukernel.h). Plain C, no intrinsics: it is
 * the path every build has (ARM, old x86) and the readable statement of
 * what the SIMD variants compute. GCC vectorises the j loops with the
 * baseline SIMD of the target. Multiply and add stay separate roundings
 * (setup.py compiles in ISO C mode, where GCC does not contract a*b+c).
 */
#include "gemm_ukernel.h"

void sb_gemm_f32_ukernel_6x16__scalar(int64_t kc, const float *restrict a,
                                      const float *restrict b, float *restrict c,
                                      int64_t ldc, int accumulate)
{
    enum { MR = SB_CONV_MR, NR = SB_CONV_NR };
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        const float *restrict bp = b + p * NR;
        const float *restrict ap = a + p * MR;
        for (int i = 0; i < MR; i++) {
            const float ai = ap[i];
            for (int j = 0; j < NR; j++)
                acc[i][j] += ai * bp[j];
        }
    }
    for (int i = 0; i < MR; i++) {
        float *restrict ci = c + i * ldc;
        if (accumulate)
            for (int j = 0; j < NR; j++)
                acc[i][j] += ci[j];
        for (int j = 0; j < NR; j++)
            ci[j] = acc[i][j];
    }
}

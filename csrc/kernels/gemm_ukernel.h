/*
 * gemm_ukernel.h -- internal: the register-tile micro-kernels of the packed
 * convolution, one per ISA, and the dispatch that picks one.
 *
 * A micro-kernel computes one SB_CONV_MR x SB_CONV_NR tile of C over kc terms
 * of packed operands:
 *   a: kc x MR, k-major (a[p*MR + i] = A[i, p])   -- packed weights
 *   b: kc x NR, k-major (b[p*NR + j] = B[p, j])   -- packed input columns
 *   acc[i][j] = sum_p a[p*MR + i] * b[p*NR + j], p = 0, 1, ..., kc-1 in order
 * then, when accumulate is set, acc += c (the sums of earlier k-blocks of
 * the same tile), and stores acc to c (row stride ldc).
 *
 * The "igemm" (indirect GEMM) variant reads row p of B not from a packed
 * panel but wherever it lies: b + b_offsets[p] (NR floats, any alignment).
 * The convolution uses it on its staged input, where every row of its
 * im2col matrix is a contiguous run of a (phase) plane, so no packing pass
 * is needed at all. It sums in the same order as the packed variant, so the
 * two give the same bits for the same numbers. The epilogue (bias,
 * residual, ReLU) is the caller's, applied when it copies finished tiles
 * out. Every variant sums in the same order (p ascending, one multiply-add
 * per term), so a result never depends on how the caller split the work
 * over threads. Variants differ from each other only by FMA rounding (the
 * scalar one rounds the product and the sum separately).
 */
/*
 * The "pixel-row" micro-kernels (pixgemm) turn the convolution's GEMM the
 * other way round: rows are MR = 6 output pixels, read through one pointer
 * per pixel into the (staged) input, columns are 16 output channels of
 * packed weights:
 *   c[i*ldc + j] (+)= sum_p pixels[i][offsets[p]] * w[p*16 + j],
 *   i < 6, j < 16, p ascending, one multiply-add per term;
 * the 32-wide variant adds columns 16..31 from the next channel panel,
 *   w[w_next + p*16 + j - 16].
 * Each output is still one sum over k in ascending order, so a pixgemm
 * result is the same bits as the gemm/igemm result of its ISA.
 */
#ifndef SB_GEMM_UKERNEL_H
#define SB_GEMM_UKERNEL_H

#include "skipblocks.h"

typedef void (*sb_gemm_ukernel)(int64_t kc, const float *a, const float *b, float *c,
                                int64_t ldc, int accumulate);

typedef void (*sb_igemm_ukernel)(int64_t kc, const float *a, const float *b,
                                 const int64_t *b_offsets, float *c, int64_t ldc,
                                 int accumulate);

typedef void (*sb_pixgemm_ukernel)(int64_t kc, const float *const *pixels,
                                   const int64_t *offsets, const float *w, int64_t w_next,
                                   float *c, int64_t ldc, int accumulate);

void sb_pixgemm_f32_ukernel_6x16__scalar(int64_t kc, const float *const *pixels,
                                         const int64_t *offsets, const float *w,
                                         int64_t w_next, float *c, int64_t ldc,
                                         int accumulate);
void sb_gemm_f32_ukernel_6x16__scalar(int64_t kc, const float *a, const float *b, float *c,
                                      int64_t ldc, int accumulate);
void sb_igemm_f32_ukernel_6x16__scalar(int64_t kc, const float *a, const float *b,
                                       const int64_t *b_offsets, float *c, int64_t ldc,
                                       int accumulate);
/* SB_PORTABLE_ONLY builds what a CPU without x86 vector kernels gets (ARM,
 * other compilers): no intrinsics anywhere, the portable path alone. The C
 * tests build it so on x86 too (tests/ops/test_c_kernels.py). */
#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__)) && !defined(SB_PORTABLE_ONLY)
#if defined(__GNUC__) || defined(__clang__)
#define SB_HAVE_AVX2_KERNELS 1
/* Compiles one function for AVX2 + FMA while the rest of the module stays
 * baseline x86-64 (a function attribute: GCC and clang both honour it). */
#define SB_TARGET_AVX2 __attribute__((target("avx2,fma")))
void sb_gemm_f32_ukernel_6x16__avx2(int64_t kc, const float *a, const float *b, float *c,
                                    int64_t ldc, int accumulate);
void sb_igemm_f32_ukernel_6x16__avx2(int64_t kc, const float *a, const float *b,
                                     const int64_t *b_offsets, float *c, int64_t ldc,
                                     int accumulate);
void sb_pixgemm_f32_ukernel_6x16__avx2(int64_t kc, const float *const *pixels,
                                       const int64_t *offsets, const float *w,
                                       int64_t w_next, float *c, int64_t ldc,
                                       int accumulate);
void sb_pixgemm_f32_ukernel_6x32__avx512(int64_t kc, const float *const *pixels,
                                         const int64_t *offsets, const float *w,
                                         int64_t w_next, float *c, int64_t ldc,
                                         int accumulate);
void sb_pixgemm_f32_ukernel_6x32__avx512_source_on_avx2(int64_t kc,
                                                        const float *const *pixels,
                                                        const int64_t *offsets,
                                                        const float *w, int64_t w_next,
                                                        float *c, int64_t ldc,
                                                        int accumulate);
/* Two adjacent 16-column panels at once (6 x 32); gemm_ukernel_f32__avx512.c.
 * The second is the same source compiled for AVX2, for tests. */
void sb_igemm_f32_ukernel_6x32__avx512(int64_t kc, const float *a, const float *b,
                                       const int64_t *b_offsets, float *c, int64_t ldc,
                                       int accumulate);
void sb_igemm_f32_ukernel_6x32__avx512_source_on_avx2(int64_t kc, const float *a,
                                                      const float *b,
                                                      const int64_t *b_offsets, float *c,
                                                      int64_t ldc, int accumulate);
#endif
#endif

/* Whether `isa` runs the AVX2 variants of the kernels: SB_ISA_AVX2 and
 * SB_ISA_AVX512 (whose CPUs all have AVX2 and FMA, and which adds only the
 * convolution's 32-wide micro-kernels). A kernel asks once per call, with
 * the ISA it read once (sb_get_isa), and hands the answer to its tasks;
 * sb_avx2_kernels_selected() is that for the ISA selected now. */
int sb_isa_runs_avx2_kernels(sb_isa isa);
int sb_avx2_kernels_selected(void);

/* The micro-kernels of `isa`. The wide one covers two adjacent panels per
 * call; NULL when the ISA has none (then callers use the 16-column igemm
 * kernel panel by panel). */
sb_gemm_ukernel sb_gemm_ukernel_for(sb_isa isa);
sb_igemm_ukernel sb_igemm_ukernel_for(sb_isa isa);
sb_igemm_ukernel sb_igemm_wide_ukernel_for(sb_isa isa);
sb_pixgemm_ukernel sb_pixgemm_ukernel_for(sb_isa isa);
sb_pixgemm_ukernel sb_pixgemm_wide_ukernel_for(sb_isa isa);

/* (sb_test_use_avx512_source_on_avx2, the tests' switch to the AVX-512
 * kernels' source compiled for AVX2, is declared in skipblocks.h.) */

/* Tests only: forces the convolution's orientation (conv2d_packed_f32.c,
 * pixel_rows): 0 channel rows, 1 pixel rows, -1 (default) the shape rule.
 * The packed weight layout follows it, so set it before packing. */
int sb_test_conv_orientation(int orientation);

#endif /* SB_GEMM_UKERNEL_H */

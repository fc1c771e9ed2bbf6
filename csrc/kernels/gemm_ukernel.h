/*
 * gemm_ukernel.h -- internal: the register-tile micro-kernels of the packed
 * convolution, one per ISA, and the dispatch that picks one.
 *
 * A micro-kernel computes one SB_CONV_MR x NR tile of C over kc terms
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
/*
 * Every micro-kernel exists for float32 and float64 (gemm_ukernel_typed.h
 * declares both). NR, a panel's columns, is 64 bytes of the type
 * (SB_CONV_NR_F32 = 16, SB_CONV_NR_F64 = 8), so the packing, blocking and
 * cache behaviour are the same for both; "wide" kernels cover two adjacent
 * panels per call (6 x 32 floats or 6 x 16 doubles, AVX-512).
 *   __scalar   plain C, every build (gemm_ukernel_scalar.inc)
 *   __avx2     generic vectors, 32 bytes (gemm_ukernel_2v.inc,
 *              gemm_ukernel__avx2.c)
 *   wide __avx512 and wide __avx512_source_on_avx2 (the AVX-512 source
 *              compiled for AVX2, for tests): gemm_ukernel_2v.inc,
 *              gemm_ukernel__avx512.c
 */
#ifndef SB_GEMM_UKERNEL_H
#define SB_GEMM_UKERNEL_H

#include "skipblocks.h"

/* SB_PORTABLE_ONLY builds what a CPU without x86 vector kernels gets (ARM,
 * other compilers): no intrinsics anywhere, the portable path alone. The C
 * tests build it so on x86 too (tests/ops/test_c_kernels.py). */
#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__)) && !defined(SB_PORTABLE_ONLY)
#if defined(__GNUC__) || defined(__clang__)
#define SB_HAVE_AVX2_KERNELS 1
/* Compiles one function for AVX2 + FMA while the rest of the module stays
 * baseline x86-64 (a function attribute: GCC and clang both honour it). */
#define SB_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif
#endif

#define SB_REAL_BITS 32
#include "gemm_ukernel_typed.h"
#define SB_REAL_BITS 64
#include "gemm_ukernel_typed.h"

/* Whether `isa` runs the AVX2 variants of the kernels: SB_ISA_AVX2 and
 * SB_ISA_AVX512 (whose CPUs all have AVX2 and FMA, and which adds only the
 * convolution's wide micro-kernels). A kernel asks once per call, with
 * the ISA it read once (sb_get_isa), and hands the answer to its tasks;
 * sb_avx2_kernels_selected() is that for the ISA selected now. */
int sb_isa_runs_avx2_kernels(sb_isa isa);
int sb_avx2_kernels_selected(void);

/* Tests: whether sb_test_use_avx512_source_on_avx2 is on (dispatch.c). */
int sb_test_avx512_source_selected(void);

/* (sb_test_use_avx512_source_on_avx2, the tests' switch to the AVX-512
 * kernels' source compiled for AVX2, is declared in skipblocks.h.) */

/* Tests only: forces the convolution's orientation (conv2d_packed.inc,
 * pixel_rows): 0 channel rows, 1 pixel rows, -1 (default) the shape rule.
 * The packed weight layout follows it, so set it before packing. The value
 * is read through sb_conv_orientation_forced (geometry.c). */
int sb_test_conv_orientation(int orientation);
int sb_conv_orientation_forced(void);

#endif /* SB_GEMM_UKERNEL_H */

/*
 * gemm_ukernel_f32__avx512.c -- the AVX-512 micro-kernels of the convolution,
 * 32 columns (two 16-column panels) per call: 6 output channels x 32
 * pixel columns read in place (igemm, body in gemm_ukernel_6x32.inc), and
 * 6 pixels x 32 output channels (pixgemm, gemm_ukernel_pix_6x32.inc).
 * Contracts in gemm_ukernel.h.
 *
 * Why generic vectors and not intrinsics: the development machine has no
 * AVX-512, and a kernel that cannot run cannot be tested. The body is
 * written once in GCC/clang vector types and compiled twice:
 *   - ..._6x32__avx512: for AVX-512F (zmm registers), the kernels
 *     dispatch.c selects on a CPU that has AVX-512F;
 *   - ..._6x32__avx512_source_on_avx2: the same source for AVX2+FMA,
 *     which tests call on any AVX2 machine to check the logic: each must
 *     equal two calls of its AVX2 intrinsic 6x16 twin bit for bit.
 * Only the instruction selection differs between the two, done by the
 * compiler. On a CPU with AVX-512 the test suite runs the real kernel too
 * (every available ISA is tested).
 *
 * FMA: ISO C mode (-std=c99) turns off GCC's contraction of a*b+c into an
 * FMA, so these functions turn it on for themselves ("fp-contract=fast";
 * clang: its fp contract pragma), at -O2 or more whatever the build's level
 * (GCC forms FMAs only from -O2: a -O0/-O1 debug build would otherwise
 * round differently). Every term is then one FMA, the rounding of the AVX2
 * kernel, so the ISAs agree bit for bit -- and so do thread counts, which
 * can pair panels differently.
 *
 * The partial last panel and any odd single panel use the AVX2 6x16
 * kernels: every AVX-512 CPU has AVX2 and FMA, and the results are the same
 * bits either way.
 */
#include "gemm_ukernel.h"

#ifdef SB_HAVE_AVX2_KERNELS

typedef float sb_v16 __attribute__((vector_size(64)));
/* the same, with 4-byte alignment: loads and stores at any float address */
typedef float sb_v16u __attribute__((vector_size(64), aligned(4), may_alias));

#if defined(__clang__)
#define SB_UK_CONTRACT
#define SB_UK_FP_CONTRACT_PRAGMA _Pragma("clang fp contract(fast)")
#else
#define SB_UK_CONTRACT __attribute__((optimize("O2", "fp-contract=fast")))
#define SB_UK_FP_CONTRACT_PRAGMA
#endif

#define SB_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))

#define SB_UK_TARGET SB_TARGET_AVX512
#define SB_UK_NAME sb_igemm_f32_ukernel_6x32__avx512
#include "gemm_ukernel_6x32.inc"
#undef SB_UK_NAME
#define SB_UK_NAME sb_pixgemm_f32_ukernel_6x32__avx512
#include "gemm_ukernel_pix_6x32.inc"
#undef SB_UK_NAME
#undef SB_UK_TARGET

#define SB_UK_TARGET SB_TARGET_AVX2
#define SB_UK_NAME sb_igemm_f32_ukernel_6x32__avx512_source_on_avx2
#include "gemm_ukernel_6x32.inc"
#undef SB_UK_NAME
#define SB_UK_NAME sb_pixgemm_f32_ukernel_6x32__avx512_source_on_avx2
#include "gemm_ukernel_pix_6x32.inc"
#undef SB_UK_NAME
#undef SB_UK_TARGET

#else
/* Not an x86 GCC/clang build: no AVX-512 kernel (dispatch.c never asks). */
typedef int sb_gemm_ukernel_f32_avx512_unused;
#endif

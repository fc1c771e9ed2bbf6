/*
 * sb_real_kernel.h -- internal: opens the element type of a kernel
 * translation unit. A kernel source csrc/kernels/<name>.inc includes it
 * after its other headers; its wrappers <name>_f32.c and <name>_f64.c
 * define SB_KERNEL_BITS (32 or 64) and include the source, so each kernel
 * is written once and compiled once per type (sb_real_begin.h).
 *
 * The small kernels' AVX2 variants (sb_isa_kernels.h: BatchNorm's apply,
 * sigmoid, the channel scale, the global average pool, the convolution's
 * 8x8 transposing store) are float32 intrinsics, with FMA where torch's
 * vectorised kernels contract. float64 has none of them: its AVX2 variants
 * of BatchNorm's apply, the channel scale and the global average pool are
 * their portable loops compiled a second time for AVX2 without FMA
 * (SB_TARGET_AVX2_CLONE), which GCC vectorises four doubles wide and which
 * round exactly as the portable loops do -- so a fused float64 path (the
 * convolution's staging and epilogue, portable on every ISA) and its
 * layer-by-layer twin still give the same bits; its sigmoid has an AVX2
 * exp of its own (elementwise.inc). The GEMM micro-kernels exist per ISA
 * for both types (gemm_ukernel.h).
 *   SB_REAL_AVX2_SMALL       1 where the float32 AVX2 variants are built
 *   SB_REAL_AVX2_CLONES      1 where the float64 AVX2 clones are built
 *   SB_REAL_AVX2_SELECTED()  whether this call runs the type's AVX2
 *                            variants (ISA read now)
 */
#ifndef SB_REAL_KERNEL_H
#define SB_REAL_KERNEL_H

#ifndef SB_KERNEL_BITS
#error "compile a kernel source through its _f32.c / _f64.c wrapper"
#endif
#define SB_REAL_BITS SB_KERNEL_BITS
#include "sb_real_begin.h"

#if defined(SB_HAVE_AVX2_KERNELS) && SB_REAL_IS_F32
#define SB_REAL_AVX2_SMALL 1
#define SB_REAL_AVX2_CLONES 0
#elif defined(SB_HAVE_AVX2_KERNELS)
#define SB_REAL_AVX2_SMALL 0
#define SB_REAL_AVX2_CLONES 1
#else
#define SB_REAL_AVX2_SMALL 0
#define SB_REAL_AVX2_CLONES 0
#endif
#if SB_REAL_AVX2_SMALL || SB_REAL_AVX2_CLONES
#define SB_REAL_AVX2_SELECTED() sb_avx2_kernels_selected()
#else
#define SB_REAL_AVX2_SELECTED() 0
#endif
/* AVX2 without FMA: a clone of a portable loop must round as the loop. */
#define SB_TARGET_AVX2_CLONE __attribute__((target("avx2")))
/* A clone's body: inlined into both the portable function and its clone. */
#define SB_CLONE_BODY static inline __attribute__((always_inline))

#endif /* SB_REAL_KERNEL_H */

/*
 * sb_real_kernel.h -- internal: opens the element type of a kernel
 * translation unit. A kernel source csrc/kernels/<name>.inc includes it
 * after its other headers; its wrappers <name>_f32.c and <name>_f64.c
 * define SB_KERNEL_BITS (32 or 64) and include the source, so each kernel
 * is written once and compiled once per type (sb_real_begin.h).
 *
 * The small kernels' AVX2 variants (sb_isa_kernels.h: BatchNorm's apply,
 * sigmoid, the channel scale, the global average pool, the convolution's
 * 8x8 transposing store) exist for float32 only: the float64 kernels run
 * their portable loops on every ISA, and round as those do, so a fused
 * float64 path and its layer-by-layer twin still give the same bits. The
 * GEMM micro-kernels exist per ISA for both types (gemm_ukernel.h).
 *   SB_REAL_AVX2_SMALL       1 where those float32 AVX2 variants are built
 *   SB_REAL_AVX2_SELECTED()  whether this call runs them (ISA read now)
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
#define SB_REAL_AVX2_SELECTED() sb_avx2_kernels_selected()
#else
#define SB_REAL_AVX2_SMALL 0
#define SB_REAL_AVX2_SELECTED() 0
#endif

#endif /* SB_REAL_KERNEL_H */

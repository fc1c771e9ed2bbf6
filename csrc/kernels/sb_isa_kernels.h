/*
 * sb_isa_kernels.h -- internal: per-ISA variants of the small kernels
 * (beside the GEMM micro-kernels of gemm_ukernel.h), called by their
 * portable entry points after checking sb_get_isa().
 */
#ifndef SB_ISA_KERNELS_H
#define SB_ISA_KERNELS_H

#include "gemm_ukernel.h"

#ifdef SB_HAVE_AVX2_KERNELS
/* out may equal in. */
void sb_sigmoid_f32__avx2(float *out, const float *in, int64_t count);
#endif

#endif /* SB_ISA_KERNELS_H */

/*
 * sb_isa_kernels.h -- internal: per-ISA variants of the small kernels
 * (beside the GEMM micro-kernels of gemm_ukernel.h), called by their
 * portable entry points after checking sb_get_isa().
 */
#ifndef SB_ISA_KERNELS_H
#define SB_ISA_KERNELS_H

#include "gemm_ukernel.h"

/* The global average pool (both paths) sums blocks of this many floats in
 * float lanes, then adds the block sums in double (a multiple of 8). */
#define SB_POOL_BLOCK ((int64_t)4096)

#ifdef SB_HAVE_AVX2_KERNELS
/* out may equal in. */
void sb_sigmoid_f32__avx2(float *out, const float *in, int64_t count);

/* One plane of BatchNorm's apply: out[i] = fma(in[i], scale, shift), plus
 * residual[i] when residual is not NULL, then the ReLU if relu (always with
 * a residual); out may be in or residual; batch_norm_f32__avx2.c. */
void sb_batch_norm_apply_plane_f32__avx2(float *out, const float *in, const float *residual,
                                         int64_t hw, float scale, float shift, int relu);

/* out[p] = mean of in[p*hw .. p*hw + hw), p < planes: the global average
 * pool, the scalar path's values (NaN payloads aside);
 * adaptive_avg_pool2d_f32__avx2.c. */
void sb_global_avg_pool_f32__avx2(float *out, const float *in, int64_t planes, int64_t hw);

/* out[p*hw + i] = in[p*hw + i] * scale[p], p < planes, i < hw; out may
 * equal in (the scalar path's values, NaN payloads aside);
 * channel_scale_f32__avx2.c. */
void sb_channel_scale_f32__avx2(float *out, const float *in, const float *scale,
                                int64_t planes, int64_t hw);

/* The same for n pixels of a channel-blocked map, 16 lanes each:
 * out[i*16 + l] = fma(in[i*in_step + l], scale[l], shift[l]), then the ReLU
 * if relu, l < 16 (the convolution's blocked staging); batch_norm_f32__avx2.c. */
void sb_batch_norm_apply_pixels16_f32__avx2(float *out, const float *in, int64_t n,
                                            int64_t in_step, const float *scale,
                                            const float *shift, int relu);

/* max_pool2d's interior run (stride 1 or 2, every tap inside the input):
 *   out[x] = max, by torch's rule in torch's order, over r < rows, t < taps of
 *            first_row[r*row_step + t*tap_step + x*stride],  x < n;
 * max_pool2d_f32__avx2.c. */
void sb_max_pool_run_f32__avx2(float *out, const float *first_row, int64_t rows,
                               int64_t row_step, int64_t taps, int64_t tap_step,
                               int64_t stride, int64_t n);

/* The convolution's pixel-row epilogue for one 8-channel x 8-pixel block:
 *   out[c*out_stride + i] = relu?((tile[i*ldt + c] + bias[c]) + res[c*res_stride + i])
 * (res may be NULL), c, i < 8; conv2d_store_f32__avx2.c. */
void sb_conv2d_store_block_8x8__avx2(float *out, int64_t out_stride, const float *tile,
                                     int64_t ldt, const float *bias, const float *res,
                                     int64_t res_stride, int relu);

/* The same epilogue for n pixels of one 16-channel block of a
 * channel-blocked output (no transpose):
 *   out[i*16 + l] = relu?((tile[i*ldt + l] + bias[l]) + res[i*16 + l]), l < real,
 *   out[i*16 + l] = 0, real <= l < 16,
 * i < n (res may be NULL); conv2d_store_f32__avx2.c. */
void sb_conv2d_store_blocked_f32__avx2(float *out, const float *tile, int64_t ldt,
                                       const float *bias, const float *res, int64_t n,
                                       int64_t real, int relu);

/* max_pool2d on a channel-blocked map, one output pixel of a 16-lane
 * block: out[l] = max, by torch's rule in torch's order, over r < rows,
 * t < taps of first[r*row_step + t*tap_step + l], l < 16 (the steps in
 * floats); max_pool2d_f32__avx2.c. */
void sb_max_pool_blocked_pixel_f32__avx2(float *out, const float *first, int64_t rows,
                                         int64_t row_step, int64_t taps, int64_t tap_step);
#endif

#endif /* SB_ISA_KERNELS_H */

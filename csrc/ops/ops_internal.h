/*
 * ops_internal.h -- helpers shared by the operators of csrc/ops/: filling
 * an sb_error, laying out a workspace, and the sb_tensor <-> sb_fmap views
 * the kernels take. Not part of the public API.
 */
#ifndef SB_OPS_INTERNAL_H
#define SB_OPS_INTERNAL_H

#include <string.h>

#include "sb_ops.h"

/* Fills err with `code` (values, shapes and arg cleared) and returns status. */
sb_status sb_fail(sb_error *err, sb_status status, sb_error_code code);

/* Each fills one part of an error sb_fail has started; they return err. */
sb_error *sb_err_values(sb_error *err, int count, const int64_t *values);
sb_error *sb_err_shape(sb_error *err, int slot, const sb_tensor *t);
sb_error *sb_err_arg(sb_error *err, const char *arg);

/* SB_ERR_ARGUMENT/SB_ERR_SHAPE shorthands with up to four values. */
sb_status sb_fail_v(sb_error *err, sb_status status, sb_error_code code, int count,
                    int64_t v0, int64_t v1, int64_t v2, int64_t v3);

/* The view of a 4-D tensor (or a 3-D one as a batch of one) the kernels
 * take; the callers have checked the rank. */
sb_fmap sb_fmap_of(const sb_tensor *t);

/* Whether t has exactly these dims. */
int sb_same_dims(const sb_tensor *t, int ndim, const int64_t *dims);

/* Whether every element type is the one the float32 kernels take; sets
 * SB_E_DTYPE otherwise (t may be NULL: optional argument). */
int sb_check_f32(sb_error *err, const sb_tensor *t);

/* Bytes laid out one part after another at SB_OP_ALIGN boundaries; a size
 * that would overflow makes the layout's total SIZE_MAX. */
typedef struct {
    size_t total;
} sb_layout;

/* Reserves `bytes` and returns the part's offset. */
size_t sb_layout_add(sb_layout *layout, uint64_t bytes);
/* Bytes of `count` floats, saturating at SIZE_MAX for absurd counts. */
uint64_t sb_f32_bytes(int64_t count);

/* a * b and the product of dims for sizes >= 0, saturating at INT64_MAX
 * (which no workspace can hold, so the layout fails instead of wrapping). */
int64_t sb_sat_mul(int64_t a, int64_t b);
int64_t sb_sat_numel(int ndim, const int64_t *dims);

static inline void *sb_at(void *workspace, size_t offset)
{
    return (char *)workspace + offset;
}

/* ---- BatchNorm pieces the fused blocks share (batch_norm.c) -------- */

/* Validates a BatchNorm of `channels` channels over `count` values per
 * channel, as sb_op_batch_norm_plan does (eps, running statistics pairing
 * and sizes, weight and bias sizes, one value per channel in training). */
sb_status sb_bn_state_check(const sb_batch_norm_state *bn, int64_t channels, int64_t count,
                            const sb_tensor *input, sb_error *err);

/* The per-channel scale and shift of `bn` on the map `in` (train: the
 * batch statistics, running statistics updated; eval: the running ones).
 * scratch: 2 * C floats (batch mean and sum of squares). */
sb_status sb_bn_transform(float *scale, float *shift, const sb_batch_norm_state *bn,
                          const float *in_data, const sb_fmap *in, int64_t count,
                          float *scratch);

/* ---- the fused blocks' convolutions (conv2d.c) ---------------------- */

/* The arguments of a block's convolution on `input`, with no fusion, or
 * (scale non-NULL) with relu(x * scale + shift) applied as it stages its
 * input: a BatchNorm + ReLU in front of it. */
void sb_block_conv_args(sb_conv2d_args *args, const sb_block_conv *conv,
                        const sb_tensor *input, const sb_tensor *scale,
                        const sb_tensor *shift, int num_threads);

/* A 4-D float32 tensor of these dims at `data` (C-contiguous), and a 1-D
 * one of `count` elements. */
sb_tensor sb_tensor_4d(void *data, const int64_t dims[4]);
sb_tensor sb_tensor_1d(void *data, int64_t count);

#endif /* SB_OPS_INTERNAL_H */

/*
 * ops_internal.h -- helpers shared by the operators of csrc/ops/: filling
 * an sb_error, checking dtypes, laying out a workspace, element addressing
 * in a buffer of either dtype, and the sb_tensor <-> sb_fmap views the
 * kernels take. Not part of the public API.
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

/* Channel-blocked maps (NCHW<B>c, sb_conv2d_fusion in skipblocks.h): B,
 * the lanes per pixel for dtype dt (16 float32, 8 float64); the logical
 * (N, C, H, W) view of a blocked (N, ceil(C/B), H, W, B) tensor t, with its
 * batch stride (at least one image's blocks; SB_E_CONV_BLOCKED naming arg
 * when t is not such a map); the blocked dims of the NCHW map m, returning
 * the floats of one blocked image (its contiguous batch stride). */
int64_t sb_block_lanes(sb_dtype dt);
/* The most channels a blocked map may claim (its blocks then fit an int64). */
#define SB_BLOCKED_CHANNELS_MAX ((int64_t)1 << 40)
sb_status sb_blocked_view(sb_tensor *view, const sb_tensor *t, int64_t channels,
                          const char *arg, sb_error *err);
int64_t sb_blocked_dims(int64_t dims[5], const sb_fmap *m, sb_dtype dt);
/* The pooling operators' input: *x itself when channels is 0, else *x
 * replaced by `view`, its logical NCHW view as a blocked map of that many
 * channels (sb_blocked_view's checks and errors; a negative count fails
 * there). */
static inline sb_status sb_pool_input(sb_tensor *view, const sb_tensor **x, int64_t channels,
                                      sb_error *err)
{
    if (channels == 0)
        return SB_OK;
    const sb_status status = sb_blocked_view(view, *x, channels, "input", err);
    if (status == SB_OK)
        *x = view;
    return status;
}

/* Whether t has exactly these dims. */
int sb_same_dims(const sb_tensor *t, int ndim, const int64_t *dims);

/* Whether t's dtype is one the kernels exist for (float32 or float64); sets
 * SB_E_DTYPE otherwise (t may be NULL: optional argument). */
int sb_check_dtype(sb_error *err, const sb_tensor *t);

/* Whether t is absent (NULL) or of dtype `dtype`. */
static inline int sb_dtype_is(const sb_tensor *t, sb_dtype dtype)
{
    return t == NULL || t->dtype == dtype;
}

/* A dtype mismatch: `code` with v0 = want (the operator's dtype), v1 = got,
 * and the argument's name; returns SB_ERR_ARGUMENT. */
sb_status sb_fail_dtype(sb_error *err, sb_error_code code, const char *arg, sb_dtype want,
                        sb_dtype got);

/* SB_E_DTYPE_MISMATCH unless t is absent or of dtype `dtype`: for the
 * operators' own arguments (packed weights, residual, fused transforms),
 * whose dtype torch has no check for. Returns SB_OK or SB_ERR_ARGUMENT. */
sb_status sb_check_same_dtype(sb_error *err, const sb_tensor *t, sb_dtype dtype,
                              const char *arg);

/* Bytes laid out one part after another at SB_OP_ALIGN boundaries; a size
 * that would overflow makes the layout's total SIZE_MAX. */
typedef struct {
    size_t total;
} sb_layout;

/* Reserves `bytes` and returns the part's offset. */
size_t sb_layout_add(sb_layout *layout, uint64_t bytes);
/* Bytes of `count` elements of `dtype`, saturating at UINT64_MAX for absurd
 * counts. */
uint64_t sb_elem_bytes(sb_dtype dtype, int64_t count);

/* a * b and the product of dims for sizes >= 0, saturating at INT64_MAX
 * (which no workspace can hold, so the layout fails instead of wrapping). */
int64_t sb_sat_mul(int64_t a, int64_t b);
int64_t sb_sat_numel(int ndim, const int64_t *dims);

static inline void *sb_at(void *workspace, size_t offset)
{
    return (char *)workspace + offset;
}

/* Element i of a buffer of `dtype` (void * has no arithmetic). */
static inline void *sb_elem(void *data, sb_dtype dtype, int64_t i)
{
    return (char *)data + i * (int64_t)sb_dtype_size(dtype);
}

/* Element i of a buffer of `dtype`, read as or written from a double (exact
 * both ways for float32: a float is a double, and the value written is
 * rounded once). For the few element loops of the operators themselves;
 * the kernels do the work. */
static inline double sb_load(const void *data, sb_dtype dtype, int64_t i)
{
    return dtype == SB_DTYPE_F64 ? ((const double *)data)[i] : ((const float *)data)[i];
}
static inline void sb_store(void *data, sb_dtype dtype, int64_t i, double v)
{
    if (dtype == SB_DTYPE_F64)
        ((double *)data)[i] = v;
    else
        ((float *)data)[i] = (float)v;
}

/* A tensor's data, or NULL for an absent tensor. */
static inline const void *sb_data_or_null(const sb_tensor *t)
{
    return t != NULL ? t->data : NULL;
}

/* ---- BatchNorm pieces the fused blocks share (batch_norm.c) -------- */

/* Validates a BatchNorm of `channels` channels over `count` values per
 * channel on an input of `dtype`, as sb_op_batch_norm_plan does (eps,
 * running statistics pairing and sizes, weight and bias sizes, one value
 * per channel in training; then, as torch, the dtypes of the parameters
 * and running statistics, unless the input is empty: channels or count 0,
 * with `input` given -- input NULL, a fold into packed weights, always
 * checks them). */
sb_status sb_bn_state_check(const sb_batch_norm_state *bn, int64_t channels, int64_t count,
                            const sb_tensor *input, sb_dtype dtype, sb_error *err);

/* The per-channel scale and shift of `bn` on the map `in` of `dtype` (train:
 * the batch statistics, running statistics updated; eval: the running
 * ones); scale, shift and scratch hold elements of `dtype`. With in given
 * and count 0 (an empty map, to which nothing is applied) they are 1 and 0
 * and nothing is read. scratch: 2 * C elements (batch mean and sum of
 * squares). */
sb_status sb_bn_transform(void *scale, void *shift, const sb_batch_norm_state *bn,
                          const void *in_data, const sb_fmap *in, int64_t count,
                          void *scratch, sb_dtype dtype);

/* ---- the fused blocks' convolutions (conv2d.c) ---------------------- */

/* The arguments of a block's convolution on `input`, with no fusion, or
 * (scale non-NULL) with relu(x * scale + shift) applied as it stages its
 * input: a BatchNorm + ReLU in front of it. */
void sb_block_conv_args(sb_conv2d_args *args, const sb_block_conv *conv,
                        const sb_tensor *input, const sb_tensor *scale,
                        const sb_tensor *shift, int num_threads);

/* A 4-D tensor of `dtype` and these dims at `data` (C-contiguous), and a
 * 1-D one of `count` elements. */
sb_tensor sb_tensor_4d(void *data, const int64_t dims[4], sb_dtype dtype);
sb_tensor sb_tensor_1d(void *data, int64_t count, sb_dtype dtype);

#endif /* SB_OPS_INTERNAL_H */

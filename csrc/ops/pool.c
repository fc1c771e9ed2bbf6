/*
 * pool.c -- the pooling operators: torch.nn.functional.max_pool2d and
 * adaptive_avg_pool2d on (N, C, H, W) or unbatched (C, H, W) input.
 *
 * max_pool2d checks its parameters as torch's pool2d_shape_check and
 * max_pool2d_with_indices do, in their order, with torch's int range (its
 * parameters are ints). adaptive_avg_pool2d follows torch's rules for empty
 * axes: a 1x1 output is a mean, which accepts an empty plane (NaN, the mean
 * of nothing); any other output size rejects empty non-batch axes.
 *
 * float32 and float64 from one source (SB_DT_CALL on the input's dtype).
 *
 * Not done: return_indices, avg_pool2d, channels-last layouts.
 */
#include <math.h>

#include "ops_internal.h"

static void set_out(sb_pool2d_plan *plan, const sb_tensor *x, int64_t c, int64_t oh,
                    int64_t ow)
{
    const int batched = x->ndim == 4;
    const int64_t n = batched ? x->dims[0] : 1;
    plan->out_ndim = x->ndim;
    int i = 0;
    if (batched)
        plan->out_dims[i++] = n;
    plan->out_dims[i++] = c;
    plan->out_dims[i++] = oh;
    plan->out_dims[i] = ow;
    plan->in_map = sb_fmap_of(x);
    plan->out_map = (sb_fmap){n, c, oh, ow, c * oh * ow};
}

sb_status sb_op_max_pool2d_plan(sb_pool2d_plan *plan, const sb_max_pool2d_args *a,
                                sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    sb_tensor view;
    const sb_status viewed = sb_pool_input(&view, &x, a->blocked_channels, err);
    if (viewed != SB_OK)
        return viewed;
    const int64_t kh = a->kernel[0], kw = a->kernel[1], sh = a->stride[0], sw = a->stride[1];
    const int64_t ph = a->padding[0], pw = a->padding[1], dh = a->dilation[0],
                  dw = a->dilation[1];
    if (x->ndim != 3 && x->ndim != 4)
        return sb_fail(err, SB_ERR_SHAPE, SB_E_POOL_INPUT_NDIM);
    /* torch accepts an empty batch (N = 0) but no other empty axis */
    for (int i = x->ndim == 4 ? 1 : 0; i < x->ndim; i++)
        if (x->dims[i] == 0) {
            sb_fail(err, SB_ERR_SHAPE, SB_E_POOL_EMPTY);
            sb_err_shape(err, 0, x);
            return SB_ERR_SHAPE;
        }
    const int64_t all[8] = {kh, kw, sh, sw, ph, pw, dh, dw};
    for (int i = 0; i < 8; i++)
        if (all[i] > SB_POOL_PARAM_MAX || all[i] < -SB_POOL_PARAM_MAX - 1) {
            sb_fail(err, SB_ERR_ARGUMENT, SB_E_POOL_INT_OVERFLOW);
            sb_err_values(err, 8, all);
            return SB_ERR_ARGUMENT;
        }
    /* per axis (height first): the stride is not zero, the padding is
     * non-negative and at most half the effective (dilated) kernel */
    for (int axis = 0; axis < 2; axis++) {
        const int64_t pad = axis ? pw : ph, k = axis ? kw : kh, d = axis ? dw : dh;
        if ((axis ? sw : sh) == 0)
            return sb_fail(err, SB_ERR_ARGUMENT, SB_E_POOL_STRIDE_ZERO);
        if (pad < 0)
            return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_PAD_NEGATIVE, 1, pad, 0, 0, 0);
        if (pad > ((k - 1) * d + 1) / 2)
            return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_PAD_EFFECTIVE, 3, pad, k, d, 0);
    }
    if (kh <= 0 || kw <= 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_KERNEL, 2, kh, kw, 0, 0);
    if (sh <= 0 || sw <= 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_STRIDE, 2, sh, sw, 0, 0);
    if (dh <= 0 || dw <= 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_DILATION, 2, dh, dw, 0, 0);
    if (kw / 2 < pw || kh / 2 < ph)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_PAD_HALF, 4, pw, ph, kw, kh);
    const sb_fmap in = sb_fmap_of(x);
    const int64_t oh = sb_pool2d_out_size(in.h, kh, sh, ph, dh, a->ceil_mode);
    const int64_t ow = sb_pool2d_out_size(in.w, kw, sw, pw, dw, a->ceil_mode);
    if (oh <= 0 || ow <= 0) {
        const int64_t v[6] = {in.c, in.h, in.w, in.c, oh, ow};
        sb_fail(err, SB_ERR_SHAPE, SB_E_POOL_TOO_SMALL);
        sb_err_values(err, 6, v);
        return SB_ERR_SHAPE;
    }
    set_out(plan, x, in.c, oh, ow);
    plan->params = (sb_pool2d_params){kh, kw, sh, sw, ph, pw, dh, dw};
    if (a->blocked_channels != 0) {
        plan->out_ndim = 5;
        plan->out_map.batch_stride = sb_blocked_dims(plan->out_dims, &plan->out_map, x->dtype);
    }
    return SB_OK;
}

sb_status sb_op_max_pool2d_run(const sb_pool2d_plan *plan, const sb_max_pool2d_args *a,
                               const sb_tensor *out, void *workspace)
{
    if (a->blocked_channels != 0)
        return SB_DT_CALL(a->input->dtype, sb_max_pool2d, _blocked, out->data, &plan->out_map,
                          a->input->data, &plan->in_map, &plan->params);
    return SB_DT_CALL(a->input->dtype, sb_max_pool2d, , out->data, &plan->out_map,
                      a->input->data, &plan->in_map, &plan->params);
}

sb_status sb_op_adaptive_avg_pool2d_plan(sb_pool2d_plan *plan,
                                         const sb_adaptive_avg_pool2d_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    const int64_t oh = a->output_size[0], ow = a->output_size[1];
    if (x->ndim != 3 && x->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_ADAPTIVE_NDIM);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    const int global = oh == 1 && ow == 1;
    for (int i = x->ndim - 3; i < x->ndim; i++)
        if (x->dims[i] == 0 && !global) {
            sb_fail_v(err, SB_ERR_SHAPE, SB_E_ADAPTIVE_EMPTY, 1, i, 0, 0, 0);
            sb_err_shape(err, 0, x);
            return SB_ERR_SHAPE;
        }
    if (oh < 0 || ow < 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_ADAPTIVE_NEGATIVE, 2, oh, ow, 0, 0);
    set_out(plan, x, x->dims[x->ndim - 3], oh, ow);
    return SB_OK;
}

sb_status sb_op_adaptive_avg_pool2d_run(const sb_pool2d_plan *plan,
                                        const sb_adaptive_avg_pool2d_args *a,
                                        const sb_tensor *out, void *workspace)
{
    const sb_fmap *in = &plan->in_map, *o = &plan->out_map;
    const sb_dtype dt = a->input->dtype;
    if (o->h == 0 || o->w == 0 || o->n == 0 || o->c == 0)
        return SB_OK; /* an empty result: nothing to compute */
    if (in->h == 0 || in->w == 0) {
        /* a 1x1 output of an empty plane: torch's mean of nothing */
        for (int64_t i = 0; i < o->n * o->c; i++)
            sb_store(out->data, dt, i, NAN);
        return SB_OK;
    }
    return SB_DT_CALL(dt, sb_adaptive_avg_pool2d, , out->data, o, a->input->data, in);
}

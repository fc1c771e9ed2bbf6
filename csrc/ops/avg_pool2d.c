/*
 * avg_pool2d.c -- the operator of torch.nn.functional.avg_pool2d on
 * (N, C, H, W) or unbatched (C, H, W) input (csrc/kernels/avg_pool2d.inc).
 *
 * The checks are torch's avg_pool2d meta function's, in its order: the
 * parameters fit an int; divisor_override is not zero; the input has a
 * third-last dimension (input.size(-3), an IndexError); per axis, height
 * first, pooling_output_shape's stride-not-zero and padding rules; then
 * pool2d_shape_check: kernel and stride positive, the non-batch dimensions
 * non-empty (a 5-D input fails here too), padding at most half the kernel,
 * and an output of at least 1x1. float32 and float64 (SB_DT_CALL).
 *
 * blocked_channels: the same checks on the channel-blocked input's logical
 * (N, C, H, W) map, then the blocked kernel's own limit (its kernel width);
 * with a BatchNorm (eval mode: its running statistics, checked as
 * BatchNorm2d checks them, errors naming BatchNorm2d) and ReLU in front,
 * folded into a scale and shift in the workspace at run time.
 */
#include "ops_internal.h"

sb_status sb_op_avg_pool2d_plan(sb_pool2d_plan *plan, const sb_avg_pool2d_args *a,
                                sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    if ((a->bn != NULL || a->relu) &&
        (a->blocked_channels == 0 ||
         (a->bn != NULL && (a->bn->batch_stats || a->bn->running_mean == NULL ||
                            a->bn->running_var == NULL))))
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_AVG_BLOCKED_BN);
    sb_tensor view;
    const sb_status viewed = sb_pool_input(&view, &x, a->blocked_channels, err);
    if (viewed != SB_OK)
        return viewed;
    const int64_t kh = a->kernel[0], kw = a->kernel[1], sh = a->stride[0], sw = a->stride[1];
    const int64_t ph = a->padding[0], pw = a->padding[1];
    const int64_t all[8] = {kh, kw, sh, sw, ph, pw, 1, 1};
    for (int i = 0; i < 6; i++)
        if (all[i] > SB_POOL_PARAM_MAX || all[i] < -SB_POOL_PARAM_MAX - 1) {
            sb_fail(err, SB_ERR_ARGUMENT, SB_E_POOL_INT_OVERFLOW);
            sb_err_values(err, 8, all);
            return SB_ERR_ARGUMENT;
        }
    if (a->has_divisor_override && a->divisor_override == 0)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_AVG_DIVISOR_ZERO);
    if (x->ndim == 0)
        return sb_fail(err, SB_ERR_SHAPE, SB_E_AVG_NO_DIMS);
    if (x->ndim < 3)
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_AVG_DIM_RANGE, 2, -x->ndim, x->ndim - 1, 0, 0);
    for (int axis = 0; axis < 2; axis++) {
        const int64_t pad = axis ? pw : ph, k = axis ? kw : kh;
        if ((axis ? sw : sh) == 0)
            return sb_fail(err, SB_ERR_ARGUMENT, SB_E_POOL_STRIDE_ZERO);
        if (pad < 0)
            return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_PAD_NEGATIVE, 1, pad, 0, 0, 0);
        if (pad > ((k - 1) + 1) / 2)
            return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_PAD_EFFECTIVE, 3, pad, k, 1, 0);
    }
    if (kh <= 0 || kw <= 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_KERNEL, 2, kh, kw, 0, 0);
    if (sh <= 0 || sw <= 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_STRIDE, 2, sh, sw, 0, 0);
    /* torch: (3-D, dim 0 non-empty) or (4-D, dim 3 non-empty), dims 1 and 2
     * non-empty; a batch of 0 passes */
    const int64_t *d = x->dims;
    const int valid = d[1] != 0 && d[2] != 0;
    if (!((x->ndim == 3 && d[0] != 0 && valid) || (x->ndim == 4 && valid && d[3] != 0))) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_POOL_EMPTY);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    if (kw / 2 < pw || kh / 2 < ph)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_POOL_PAD_HALF, 4, pw, ph, kw, kh);
    const sb_fmap in = sb_fmap_of(x);
    const int64_t oh = sb_pool2d_out_size(in.h, kh, sh, ph, 1, a->ceil_mode);
    const int64_t ow = sb_pool2d_out_size(in.w, kw, sw, pw, 1, a->ceil_mode);
    if (oh <= 0 || ow <= 0) {
        const int64_t v[6] = {in.c, in.h, in.w, in.c, oh, ow};
        sb_fail(err, SB_ERR_SHAPE, SB_E_POOL_TOO_SMALL);
        sb_err_values(err, 6, v);
        return SB_ERR_SHAPE;
    }
    const int batched = x->ndim == 4;
    plan->out_ndim = x->ndim;
    int i = 0;
    if (batched)
        plan->out_dims[i++] = in.n;
    plan->out_dims[i++] = in.c;
    plan->out_dims[i++] = oh;
    plan->out_dims[i] = ow;
    plan->in_map = in;
    plan->out_map = (sb_fmap){in.n, in.c, oh, ow, in.c * oh * ow};
    plan->params = (sb_pool2d_params){kh, kw, sh, sw, ph, pw, 1, 1};
    if (a->blocked_channels == 0)
        return SB_OK;
    if (kw > SB_AVG_POOL2D_BLOCKED_KERNEL_MAX)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_AVG_BLOCKED_KERNEL, 2, kw,
                         SB_AVG_POOL2D_BLOCKED_KERNEL_MAX, 0, 0);
    if (a->bn != NULL) {
        const sb_status status = sb_bn_state_check(a->bn, in.c, in.n * in.h * in.w, x,
                                                   x->dtype, err);
        if (status != SB_OK) {
            err->layer = "BatchNorm2d";
            return status;
        }
        /* scale, then shift: C elements each */
        plan->workspace_bytes = sb_elem_bytes(x->dtype, sb_sat_mul(2, in.c));
    }
    plan->out_ndim = 5;
    plan->out_map.batch_stride = sb_blocked_dims(plan->out_dims, &plan->out_map, x->dtype);
    return SB_OK;
}

sb_status sb_op_avg_pool2d_run(const sb_pool2d_plan *plan, const sb_avg_pool2d_args *a,
                               const sb_tensor *out, void *workspace)
{
    const sb_dtype dt = a->input->dtype;
    const int64_t divisor = a->has_divisor_override ? a->divisor_override : 0;
    if (a->blocked_channels == 0)
        return SB_DT_CALL(dt, sb_avg_pool2d, , out->data, &plan->out_map, a->input->data,
                          &plan->in_map, &plan->params, a->count_include_pad, divisor);
    if (plan->in_map.n == 0)
        return SB_OK; /* an empty batch (whose BatchNorm arrays the plan did not check) */
    void *scale = NULL, *shift = NULL;
    if (a->bn != NULL) {
        const int64_t c = plan->in_map.c;
        scale = workspace;
        shift = sb_elem(workspace, dt, c);
        /* (eval mode, a non-empty map: the running statistics, checked by
         * the plan; nothing read from the input, no scratch) */
        const sb_status status = sb_bn_transform(scale, shift, a->bn, NULL, NULL, 0, NULL, dt);
        if (status != SB_OK)
            return status;
    }
    return SB_DT_CALL(dt, sb_avg_pool2d, _blocked, out->data, &plan->out_map, a->input->data,
                      &plan->in_map, &plan->params, a->count_include_pad, divisor, scale,
                      shift, a->relu);
}

/*
 * blocked.c -- the copies between NCHW and the channel-blocked layout of
 * skipblocks' planned networks (NCHW<B>c, sb_conv2d_fusion in
 * skipblocks.h; kernels in csrc/kernels/blocked_layout.inc). A planned
 * network converts its input once, runs its layers on blocked maps and
 * converts the result back; users only ever see NCHW arrays.
 */
#include "ops_internal.h"

sb_status sb_op_layout_plan(sb_layout_plan *plan, const sb_layout_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    if (a->to_blocked) {
        if (x->ndim != 4) {
            sb_fail(err, SB_ERR_SHAPE, SB_E_BLOCKED_NDIM);
            sb_err_shape(err, 0, x);
            return SB_ERR_SHAPE;
        }
        plan->map = sb_fmap_of(x);
        plan->out_ndim = 5;
        sb_blocked_dims(plan->out_dims, &plan->map, x->dtype);
        return SB_OK;
    }
    sb_tensor view;
    const sb_status status = sb_blocked_view(&view, x, a->channels, "input", err);
    if (status != SB_OK)
        return status;
    plan->map = sb_fmap_of(&view);
    plan->map.batch_stride = plan->map.c * plan->map.h * plan->map.w;
    plan->out_ndim = 4;
    plan->out_dims[0] = plan->map.n;
    plan->out_dims[1] = plan->map.c;
    plan->out_dims[2] = plan->map.h;
    plan->out_dims[3] = plan->map.w;
    return SB_OK;
}

sb_status sb_op_layout_run(const sb_layout_plan *plan, const sb_layout_args *a,
                           const sb_tensor *out, void *workspace)
{
    const sb_dtype dt = a->input->dtype;
    if (a->to_blocked)
        return SB_DT_CALL(dt, sb_to_blocked, , out->data, a->input->data, &plan->map);
    return SB_DT_CALL(dt, sb_from_blocked, , out->data, a->input->data, &plan->map);
}

/*
 * interpolate.c -- the operator of torch.nn.functional.interpolate's
 * 'nearest' (upsample_nearest1d / 2d: 3-D or 4-D input) and 'bilinear'
 * (upsample_bilinear2d: 4-D) kernels (csrc/kernels/interpolate.inc).
 *
 * torch's Python part of interpolate (skipblocks/functional.py) resolves the
 * mode, the output size and the scale factors passed on; the checks here are
 * its kernels' (upsample_2d_common_check and the shape checks): input and
 * output sizes positive, then a non-empty channel axis (an empty batch
 * passes). float32 and float64 (SB_DT_CALL).
 */
#include "ops_internal.h"

sb_status sb_op_interpolate_plan(sb_interpolate_plan *plan, const sb_interpolate_args *a,
                                 sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    const int one_d = x->ndim == 3;
    if (x->ndim != 4 && !(one_d && a->mode == SB_INTERP_NEAREST))
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_INTERP_NDIM, 1, x->ndim, 0, 0, 0);
    const int64_t n = x->dims[0], c = x->dims[1];
    const int64_t ih = one_d ? 1 : x->dims[2], iw = x->dims[x->ndim - 1];
    const int64_t oh = one_d ? 1 : a->size[0], ow = a->size[1];
    if (one_d && (iw <= 0 || ow <= 0))
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_INTERP_SIZES_1D, 2, iw, ow, 0, 0);
    if (!one_d && (ih <= 0 || iw <= 0 || oh <= 0 || ow <= 0))
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_INTERP_SIZES_2D, 4, ih, iw, oh, ow);
    if (c == 0) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_INTERP_EMPTY, 1, x->ndim, 0, 0, 0);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    plan->out_ndim = x->ndim;
    plan->out_dims[0] = n;
    plan->out_dims[1] = c;
    plan->out_dims[2] = one_d ? ow : oh;
    plan->out_dims[3] = ow;
    plan->in_map = (sb_fmap){n, c, ih, iw, x->batch_stride};
    plan->out_map = (sb_fmap){n, c, oh, ow, c * oh * ow};
    plan->params = (sb_interp_params){a->mode == SB_INTERP_BILINEAR, a->align_corners,
                                      one_d ? -1.0 : a->scale[0], a->scale[1],
                                      /* torch's channels-last kernel: 2-D, oh + ow <= 128 */
                                      !one_d && oh + ow <= 128};
    const int64_t elems = SB_DT_CALL(x->dtype, sb_interpolate, _workspace_elems, ow);
    sb_layout layout = {0};
    (void)sb_layout_add(&layout, sb_elem_bytes(x->dtype, elems));
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_interpolate_run(const sb_interpolate_plan *plan, const sb_interpolate_args *a,
                                const sb_tensor *out, void *workspace)
{
    return SB_DT_CALL(a->input->dtype, sb_interpolate, , out->data, &plan->out_map,
                      a->input->data, &plan->in_map, &plan->params, workspace);
}

/*
 * residual_block.c -- the document's ResidualBlock (section 3.1) as one
 * operator:
 *   out = relu(bn(conv2(relu(bn(conv1(x))))) + residual)
 * with the document's one BatchNorm `bn` after both convolutions.
 *
 * folded (eval mode, bn on its running statistics): bn is folded into both
 * convolutions' packed weights; conv1's epilogue applies the ReLU, conv2's
 * adds the residual and applies the ReLU: two passes in all.
 * Otherwise (batch statistics): conv1; bn's statistics of its output
 * (running statistics updated with the first momentum) become a scale and
 * shift that conv2 applies, with the ReLU, while it stages its input; then
 * bn's statistics of conv2's output (the second momentum), and the scale,
 * shift, residual and ReLU in one pass, in place. bn's running statistics
 * update twice per forward, in torch's order.
 *
 * A plan failure leaves every argument untouched: the caller then runs the
 * layers one by one, which raise torch's errors after torch's side effects.
 *
 * float32 and float64 from one source: the input's dtype is every part's;
 * the residual must have it too (SB_E_DTYPE_MISMATCH).
 */
#include "ops_internal.h"

sb_status sb_op_residual_block_plan(sb_residual_block_plan *plan,
                                    const sb_residual_block_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x) || !sb_check_dtype(err, a->residual))
        return SB_ERR_ARGUMENT;
    const sb_dtype dt = x->dtype;
    if (x->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_CONV_INPUT_NDIM);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    /* folded: the BatchNorm lives in the packed weights, so they must be given */
    if (a->folded && (a->conv1.packed == NULL || a->conv2.packed == NULL))
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_PACKED);
    sb_conv2d_args conv;
    sb_block_conv_args(&conv, &a->conv1, x, NULL, NULL, a->num_threads);
    conv.out_relu = a->folded;
    sb_status status = sb_op_conv2d_plan(&plan->conv1, &conv, err);
    if (status != SB_OK) {
        err->layer = "Conv2d";
        return status;
    }
    const int64_t *md = plan->conv1.out_dims;
    sb_tensor mid = sb_tensor_4d(NULL, md, dt);
    const int64_t c = md[1];
    sb_tensor scale = sb_tensor_1d(NULL, c, dt), shift = scale;
    if (!a->folded &&
        (status = sb_bn_state_check(&a->bn, c, md[0] * md[2] * md[3], &mid, dt, err)) != SB_OK) {
        err->layer = "BatchNorm2d";
        return status;
    }
    sb_block_conv_args(&conv, &a->conv2, &mid, a->folded ? NULL : &scale,
                       a->folded ? NULL : &shift, a->num_threads);
    if (a->folded) {
        conv.residual = a->residual;
        conv.out_relu = 1;
    }
    if ((status = sb_op_conv2d_plan(&plan->conv2, &conv, err)) != SB_OK) {
        err->layer = "Conv2d";
        return status;
    }
    const int64_t *od = plan->conv2.out_dims;
    if (!a->folded) {
        sb_tensor out = sb_tensor_4d(NULL, od, dt);
        sb_batch_norm_state second = a->bn;
        second.momentum = a->momentum2;
        if ((status = sb_bn_state_check(&second, od[1], od[0] * od[2] * od[3], &out, dt,
                                        err)) != SB_OK) {
            err->layer = "BatchNorm2d";
            return status;
        }
        if (!sb_same_dims(a->residual, 4, od)) {
            sb_fail_v(err, SB_ERR_SHAPE, SB_E_CONV_RESIDUAL, 4, od[0], od[1], od[2], od[3]);
            sb_err_shape(err, 0, a->residual);
            return SB_ERR_SHAPE;
        }
        if ((status = sb_check_same_dtype(err, a->residual, dt, "residual")) != SB_OK)
            return status;
    }
    for (int i = 0; i < 4; i++)
        plan->out_dims[i] = od[i];
    plan->mid_map = (sb_fmap){md[0], md[1], md[2], md[3], md[1] * md[2] * md[3]};
    sb_layout layout = {0};
    /* scale, shift, then the batch mean and sum of squares: 4 C, for the
     * larger of the two BatchNorm calls (conv2 may change the channels when
     * bn has no per-channel state) */
    plan->bn_channels = c > od[1] ? c : od[1];
    plan->scale_offset = sb_layout_add(
        &layout, a->folded ? 0 : sb_elem_bytes(dt, sb_sat_mul(4, plan->bn_channels)));
    plan->mid_offset = sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_numel(4, md)));
    const size_t w1 = plan->conv1.workspace_bytes, w2 = plan->conv2.workspace_bytes;
    plan->conv_offset = sb_layout_add(&layout, w1 > w2 ? w1 : w2);
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_residual_block_run(const sb_residual_block_plan *plan,
                                   const sb_residual_block_args *a, const sb_tensor *out,
                                   void *workspace)
{
    /* scale, shift, mean, sum of squares: bn_channels elements apart */
    const int64_t c = plan->bn_channels;
    const sb_dtype dt = a->input->dtype;
    void *s = sb_at(workspace, plan->scale_offset);
    void *s_shift = sb_elem(s, dt, c), *s_scratch = sb_elem(s, dt, 2 * c);
    void *mid_data = sb_at(workspace, plan->mid_offset);
    void *conv_ws = sb_at(workspace, plan->conv_offset);
    sb_tensor mid = sb_tensor_4d(mid_data, plan->conv1.out_dims, dt);
    sb_tensor scale = sb_tensor_1d(s, plan->mid_map.c, dt);
    sb_tensor shift = sb_tensor_1d(s_shift, plan->mid_map.c, dt);

    sb_conv2d_args conv;
    sb_block_conv_args(&conv, &a->conv1, a->input, NULL, NULL, a->num_threads);
    conv.out_relu = a->folded;
    sb_status status = sb_op_conv2d_run(&plan->conv1, &conv, &mid, conv_ws);
    if (status != SB_OK)
        return status;
    if (a->folded) {
        sb_block_conv_args(&conv, &a->conv2, &mid, NULL, NULL, a->num_threads);
        conv.residual = a->residual;
        conv.out_relu = 1;
        return sb_op_conv2d_run(&plan->conv2, &conv, out, conv_ws);
    }
    const sb_fmap *m = &plan->mid_map;
    status = sb_bn_transform(s, s_shift, &a->bn, mid_data, m, m->n * m->h * m->w, s_scratch,
                             dt);
    if (status != SB_OK)
        return status;
    sb_block_conv_args(&conv, &a->conv2, &mid, &scale, &shift, a->num_threads);
    if ((status = sb_op_conv2d_run(&plan->conv2, &conv, out, conv_ws)) != SB_OK)
        return status;
    sb_batch_norm_state second = a->bn;
    second.momentum = a->momentum2;
    const sb_fmap out_map = sb_fmap_of(out), residual_map = sb_fmap_of(a->residual);
    void *y = out->data;
    status = sb_bn_transform(s, s_shift, &second, y, &out_map,
                             out_map.n * out_map.h * out_map.w, s_scratch, dt);
    if (status != SB_OK || out_map.n * out_map.h * out_map.w == 0)
        return status;
    return SB_DT_CALL(dt, sb_batch_norm_add_relu, , y, &out_map, y, &out_map, s, s_shift,
                      a->residual->data, &residual_map);
}

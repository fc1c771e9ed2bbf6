/*
 * dense_layer.c -- the document's Dense_Layer (section 3.2) as one operator:
 *   out = conv2(relu(bn2(conv1(relu(bn1(x))))))
 * Each BatchNorm + ReLU becomes a per-channel scale and shift (batch
 * statistics in train mode, running statistics in eval mode) that the next
 * convolution applies while it stages its input, so neither bn1(x) nor
 * bn2(conv1(...)) is ever written; conv1's output lives in the workspace.
 * In train mode bn1's and bn2's running statistics are updated in torch's
 * order. The result is written to `out`, which may be a channel slice of
 * DenseBlock's preallocated output.
 *
 * A plan failure leaves every argument untouched: the caller then runs the
 * layers one by one, which raise torch's errors after torch's side effects.
 *
 * float32 and float64 from one source: the input's dtype is every part's
 * (the conv1 output in the workspace included).
 *
 * blocked (eval mode): the input, conv1's output and the output are
 * channel-blocked maps (sb_conv2d_args' in_blocked / out_blocked), the
 * input and output possibly block slices of DenseBlock's blocked buffer.
 */
#include "ops_internal.h"

sb_status sb_op_dense_layer_plan(sb_dense_layer_plan *plan, const sb_dense_layer_args *a,
                                 sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    const sb_dtype dt = x->dtype;
    sb_tensor view;
    sb_status status;
    if (a->blocked) {
        /* batch statistics would be read from NCHW maps */
        if (a->bn1.batch_stats || a->bn2.batch_stats || a->conv1.weight->ndim != 4 ||
            a->conv2.weight->ndim != 4)
            return sb_fail(err, SB_ERR_ARGUMENT, SB_E_CONV_BLOCKED_UNSUPPORTED);
        if ((status = sb_blocked_view(&view, x, a->conv1.weight->dims[1], "input", err)) !=
            SB_OK)
            return status;
        x = &view;
    }
    if (x->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_CONV_INPUT_NDIM);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    const int64_t c1 = x->dims[1], count1 = x->dims[0] * x->dims[2] * x->dims[3];
    status = sb_bn_state_check(&a->bn1, c1, count1, x, dt, err);
    if (status != SB_OK) {
        err->layer = "BatchNorm2d";
        return status;
    }
    sb_tensor scale1 = sb_tensor_1d(NULL, c1, dt), shift1 = scale1;
    sb_conv2d_args conv;
    sb_block_conv_args(&conv, &a->conv1, a->input, &scale1, &shift1,
                       a->num_threads);
    conv.in_blocked = conv.out_blocked = a->blocked;
    if ((status = sb_op_conv2d_plan(&plan->conv1, &conv, err)) != SB_OK) {
        err->layer = "Conv2d";
        return status;
    }
    const int64_t *md = plan->conv1.out_dims;
    const sb_fmap *mm = &plan->conv1.out_map; /* the logical map (blocked stride) */
    const int mid_ndim = a->blocked ? 5 : 4;
    sb_tensor mid = sb_tensor_4d(NULL, md, dt);
    sb_tensor mid_logical = mid;
    if (a->blocked) {
        mid.ndim = 5;
        mid.dims[4] = md[4];
        mid.batch_stride = mm->batch_stride;
        mid_logical.dims[1] = mm->c;
    }
    const int64_t c2 = mm->c, count2 = mm->n * mm->h * mm->w;
    if ((status = sb_bn_state_check(&a->bn2, c2, count2, &mid_logical, dt, err)) != SB_OK) {
        err->layer = "BatchNorm2d";
        return status;
    }
    sb_tensor scale2 = sb_tensor_1d(NULL, c2, dt), shift2 = scale2;
    sb_block_conv_args(&conv, &a->conv2, &mid, &scale2, &shift2,
                       a->num_threads);
    conv.in_blocked = conv.out_blocked = a->blocked;
    if ((status = sb_op_conv2d_plan(&plan->conv2, &conv, err)) != SB_OK) {
        err->layer = "Conv2d";
        return status;
    }
    plan->out_ndim = plan->conv2.out_ndim;
    for (int i = 0; i < plan->out_ndim; i++)
        plan->out_dims[i] = plan->conv2.out_dims[i];
    plan->mid_map = *mm;
    sb_layout layout = {0};
    /* scale, shift, then the batch mean and sum of squares: 4 C each */
    plan->scale1_offset = sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(4, c1)));
    plan->scale2_offset = sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(4, c2)));
    plan->mid_offset = sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_numel(mid_ndim, md)));
    const size_t w1 = plan->conv1.workspace_bytes, w2 = plan->conv2.workspace_bytes;
    plan->conv_offset = sb_layout_add(&layout, w1 > w2 ? w1 : w2);
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_dense_layer_run(const sb_dense_layer_plan *plan,
                                const sb_dense_layer_args *a, const sb_tensor *out,
                                void *workspace)
{
    const sb_dtype dt = a->input->dtype;
    sb_tensor view;
    sb_error err;
    if (a->blocked &&
        sb_blocked_view(&view, a->input, a->conv1.weight->dims[1], "input", &err) != SB_OK)
        return SB_ERR_SHAPE; /* (the plan checked it) */
    const sb_fmap in_map = sb_fmap_of(a->blocked ? &view : a->input);
    const int64_t c1 = in_map.c, c2 = plan->mid_map.c;
    /* scale, shift, then the batch mean and sum of squares: c elements each */
    void *s1 = sb_at(workspace, plan->scale1_offset);
    void *s2 = sb_at(workspace, plan->scale2_offset);
    void *mid_data = sb_at(workspace, plan->mid_offset);
    void *conv_ws = sb_at(workspace, plan->conv_offset);
    sb_tensor scale1 = sb_tensor_1d(s1, c1, dt), shift1 = sb_tensor_1d(sb_elem(s1, dt, c1), c1, dt);
    sb_tensor scale2 = sb_tensor_1d(s2, c2, dt), shift2 = sb_tensor_1d(sb_elem(s2, dt, c2), c2, dt);
    sb_tensor mid = sb_tensor_4d(mid_data, plan->conv1.out_dims, dt);
    if (a->blocked) {
        mid.ndim = 5;
        mid.dims[4] = plan->conv1.out_dims[4];
        mid.batch_stride = plan->mid_map.batch_stride;
    }

    sb_status status = sb_bn_transform(s1, shift1.data, &a->bn1, a->input->data, &in_map,
                                       in_map.n * in_map.h * in_map.w, sb_elem(s1, dt, 2 * c1),
                                       dt);
    if (status != SB_OK)
        return status;
    sb_conv2d_args conv;
    sb_block_conv_args(&conv, &a->conv1, a->input, &scale1, &shift1,
                       a->num_threads);
    conv.in_blocked = conv.out_blocked = a->blocked;
    if ((status = sb_op_conv2d_run(&plan->conv1, &conv, &mid, conv_ws)) != SB_OK)
        return status;
    const sb_fmap *m = &plan->mid_map;
    status = sb_bn_transform(s2, shift2.data, &a->bn2, mid_data, m, m->n * m->h * m->w,
                             sb_elem(s2, dt, 2 * c2), dt);
    if (status != SB_OK)
        return status;
    sb_block_conv_args(&conv, &a->conv2, &mid, &scale2, &shift2,
                       a->num_threads);
    conv.in_blocked = conv.out_blocked = a->blocked;
    return sb_op_conv2d_run(&plan->conv2, &conv, out, conv_ws);
}

/*
 * se_attention.c -- the document's SEAttention (section 4.3) as one
 * operator: global average pool -> Linear(C, hidden) -> ReLU ->
 * Linear(hidden, C) -> Sigmoid -> each channel of the input scaled by its
 * gate, the same kernels the layers run one by one, back to back without
 * Python between them. The two Linear layers' weights come packed
 * (sb_op_linear_pack_run, the layers' caches); a bias packed in is applied.
 *
 * torch's rules for empty maps: the pooled mean of an empty plane is NaN,
 * and x * NaN over an empty map is the empty map, so an empty H or W gives
 * the (empty) output with nothing computed.
 *
 * float32 and float64 from one source (SB_DT_CALL on the input's dtype);
 * the packed weights must have the input's dtype, else torch's message for
 * its first Linear on such weights (SB_E_LINEAR_MM_DTYPE, from "Linear").
 * The reference sb_se_attention_<dt>__ref is se_attention_ref.inc, compiled
 * here once per type.
 *
 * Blocked mode (the eval-mode plans of se_resnet): the input is a
 * channel-blocked map, the squeeze and the scale run on it with the NCHW
 * kernels' operations in their order (blocked_layout.inc), and the scale
 * also adds SEBottleneck's residual and applies its ReLU, as the NCHW path's
 * add_relu rounds: the same bits as the NCHW path.
 */
#include <math.h>

#include "ops_internal.h"

sb_status sb_op_se_attention_plan(sb_se_attention_plan *plan, const sb_se_attention_args *a,
                                  sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    const sb_dtype dt = x->dtype;
    sb_tensor view, residual_view;
    if (a->blocked) {
        sb_status status = sb_blocked_view(&view, x, a->channels, "input", err);
        if (status != SB_OK)
            return status;
        if (a->residual != NULL) {
            if (a->residual->dtype != dt) {
                sb_fail_dtype(err, SB_E_DTYPE_MISMATCH, "residual", dt, a->residual->dtype);
                return SB_ERR_ARGUMENT;
            }
            status = sb_blocked_view(&residual_view, a->residual, a->channels, "residual", err);
            if (status != SB_OK)
                return status;
            if (!sb_same_dims(a->residual, 5, x->dims)) {
                sb_fail(err, SB_ERR_SHAPE, SB_E_ADD_SHAPES);
                sb_err_shape(err, 0, x);
                sb_err_shape(err, 1, a->residual);
                return SB_ERR_SHAPE;
            }
            plan->residual_map = sb_fmap_of(&residual_view);
        }
        x = &view;
    } else if (a->residual != NULL || a->relu || a->channels != 0) {
        sb_fail(err, SB_ERR_ARGUMENT, SB_E_PAIRED);
        sb_err_arg(err, "residual, relu or channels and blocked");
        return SB_ERR_ARGUMENT;
    }
    if (x->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_SE_INPUT_NDIM);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    if (a->hidden < 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_SE_HIDDEN, 1, a->hidden, 0, 0, 0);
    const int64_t n = x->dims[0], c = x->dims[1], hidden = a->hidden;
    /* torch's SEAttention on weights of another dtype: its first Linear's
     * (bias-free) matmul raises (checked before the sizes, which depend on
     * the dtype) */
    const sb_dtype fc_dtype = a->fc1_dtype != dt ? a->fc1_dtype : a->fc2_dtype;
    if (a->fc1_packed != NULL && a->fc2_packed != NULL && fc_dtype != dt) {
        sb_fail_dtype(err, SB_E_LINEAR_MM_DTYPE, "weight", dt, fc_dtype);
        err->layer = "Linear";
        return SB_ERR_ARGUMENT;
    }
    /* The packed sizes saturate, so a hidden count too large for any real
     * array (2^60, say) can never match one and size the workspace. */
    if (a->fc1_packed == NULL || a->fc2_packed == NULL ||
        a->fc1_numel != SB_DT_CALL(dt, sb_linear, _packed_weights_elems, hidden, c) ||
        a->fc2_numel != SB_DT_CALL(dt, sb_linear, _packed_weights_elems, c, hidden))
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_SE_PACKED, 2, c, hidden, 0, 0);
    plan->n = n;
    plan->c = c;
    plan->hidden = hidden;
    plan->in_map = sb_fmap_of(x);
    if (a->blocked) {
        plan->out_ndim = 5;
        sb_blocked_dims(plan->out_dims, &plan->in_map, dt);
    } else {
        plan->out_ndim = 4;
        for (int i = 0; i < 4; i++)
            plan->out_dims[i] = x->dims[i];
    }
    const int64_t ws1 =
        SB_DT_CALL(dt, sb_linear, _packed_workspace_elems, n, c, hidden, a->num_threads);
    const int64_t ws2 =
        SB_DT_CALL(dt, sb_linear, _packed_workspace_elems, n, hidden, c, a->num_threads);
    sb_layout layout = {0};
    sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(n, c))); /* pooled, at offset 0 */
    plan->hidden_offset = sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(n, hidden)));
    plan->gate_offset = sb_layout_add(&layout, sb_elem_bytes(dt, sb_sat_mul(n, c)));
    plan->linear_offset = sb_layout_add(&layout, sb_elem_bytes(dt, ws1 > ws2 ? ws1 : ws2));
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_se_attention_run(const sb_se_attention_plan *plan,
                                 const sb_se_attention_args *a, const sb_tensor *out,
                                 void *workspace)
{
    const int64_t n = plan->n, c = plan->c, hidden = plan->hidden;
    if (n == 0 || c == 0 || plan->in_map.h == 0 || plan->in_map.w == 0)
        return SB_OK;
    const sb_dtype dt = a->input->dtype;
    void *pooled = workspace;
    void *hid = sb_at(workspace, plan->hidden_offset);
    void *gate = sb_at(workspace, plan->gate_offset);
    void *ws = sb_at(workspace, plan->linear_offset);
    const sb_fmap pooled_map = {n, c, 1, 1, c};
    const sb_fmap out_map = sb_fmap_of(out);
    const void *x = a->input->data;
    sb_status status =
        a->blocked ? SB_DT_CALL(dt, sb_global_avg_pool_blocked, , pooled, x, &plan->in_map)
                   : SB_DT_CALL(dt, sb_adaptive_avg_pool2d, , pooled, &pooled_map, x,
                                &plan->in_map);
    if (status == SB_OK)
        status = SB_DT_CALL(dt, sb_linear, _packed, hid, pooled, a->fc1_packed, n, c, hidden,
                            ws, a->num_threads);
    if (status == SB_OK)
        status = SB_DT_CALL(dt, sb_relu, , hid, hid, n * hidden);
    if (status == SB_OK)
        status = SB_DT_CALL(dt, sb_linear, _packed, gate, hid, a->fc2_packed, n, hidden, c, ws,
                            a->num_threads);
    if (status == SB_OK)
        status = SB_DT_CALL(dt, sb_sigmoid, , gate, gate, n * c);
    if (status == SB_OK && a->blocked)
        return SB_DT_CALL(dt, sb_channel_scale_blocked, , out->data, x, &plan->in_map, gate,
                          a->residual == NULL ? NULL : a->residual->data,
                          a->residual == NULL ? NULL : &plan->residual_map, a->relu);
    if (status == SB_OK)
        status = SB_DT_CALL(dt, sb_channel_scale, , out->data, &out_map, x, &plan->in_map,
                            gate);
    return status;
}

/* sb_se_attention_f32__ref and sb_se_attention_f64__ref, one source */
#define SB_REAL_BITS 32
#include "se_attention_ref.inc"
#define SB_REAL_BITS 64
#include "se_attention_ref.inc"

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
 */
#include <math.h>

#include "ops_internal.h"

sb_status sb_op_se_attention_plan(sb_se_attention_plan *plan, const sb_se_attention_args *a,
                                  sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_f32(err, x))
        return SB_ERR_ARGUMENT;
    if (x->ndim != 4) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_SE_INPUT_NDIM);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    if (a->hidden < 0)
        return sb_fail_v(err, SB_ERR_ARGUMENT, SB_E_SE_HIDDEN, 1, a->hidden, 0, 0, 0);
    const int64_t n = x->dims[0], c = x->dims[1], hidden = a->hidden;
    /* The packed sizes saturate, so a hidden count too large for any real
     * array (2^60, say) can never match one and size the workspace. */
    if (a->fc1_packed == NULL || a->fc2_packed == NULL ||
        a->fc1_numel != sb_linear_f32_packed_weights_floats(hidden, c) ||
        a->fc2_numel != sb_linear_f32_packed_weights_floats(c, hidden))
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_SE_PACKED, 2, c, hidden, 0, 0);
    plan->n = n;
    plan->c = c;
    plan->hidden = hidden;
    plan->in_map = sb_fmap_of(x);
    const int64_t ws1 = sb_linear_f32_packed_workspace_floats(n, c, hidden, a->num_threads);
    const int64_t ws2 = sb_linear_f32_packed_workspace_floats(n, hidden, c, a->num_threads);
    sb_layout layout = {0};
    sb_layout_add(&layout, sb_f32_bytes(n * c)); /* pooled, at offset 0 */
    plan->hidden_offset = sb_layout_add(&layout, sb_f32_bytes(n * hidden));
    plan->gate_offset = sb_layout_add(&layout, sb_f32_bytes(n * c));
    plan->linear_offset = sb_layout_add(&layout, sb_f32_bytes(ws1 > ws2 ? ws1 : ws2));
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
    float *pooled = (float *)workspace;
    float *hid = (float *)sb_at(workspace, plan->hidden_offset);
    float *gate = (float *)sb_at(workspace, plan->gate_offset);
    float *ws = (float *)sb_at(workspace, plan->linear_offset);
    const sb_fmap pooled_map = {n, c, 1, 1, c};
    const sb_fmap out_map = sb_fmap_of(out);
    const float *x = (const float *)a->input->data;
    sb_status status = sb_adaptive_avg_pool2d_f32(pooled, &pooled_map, x, &plan->in_map);
    if (status == SB_OK)
        status = sb_linear_f32_packed(hid, pooled, (const float *)a->fc1_packed, n, c, hidden,
                                      ws, a->num_threads);
    if (status == SB_OK)
        status = sb_relu_f32(hid, hid, n * hidden);
    if (status == SB_OK)
        status = sb_linear_f32_packed(gate, hid, (const float *)a->fc2_packed, n, hidden, c,
                                      ws, a->num_threads);
    if (status == SB_OK)
        status = sb_sigmoid_f32(gate, gate, n * c);
    if (status == SB_OK)
        status = sb_channel_scale_f32((float *)out->data, &out_map, x, &plan->in_map, gate);
    return status;
}

/* The plainest SEAttention: the mean of each plane summed in double, each
 * Linear one float accumulator per output (sb_linear_f32__ref), then ReLU,
 * sigmoid and the scale as torch writes them. */
sb_status sb_se_attention_f32__ref(float *out_data, const sb_fmap *out,
                                   const float *in_data, const sb_fmap *in,
                                   const float *w1, const float *w2, int64_t hidden,
                                   float *workspace)
{
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    if (out->n != in->n || out->c != in->c || out->h != in->h || out->w != in->w ||
        hidden < 0)
        return SB_ERR_SHAPE;
    const int64_t n = in->n, c = in->c, hw = in->h * in->w;
    if (n == 0 || c == 0 || hw == 0)
        return SB_OK;
    float *pooled = workspace, *gate = pooled + n * c, *hid = gate + n * c;
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *plane = in_data + i * in->batch_stride + ch * hw;
            double sum = 0.0;
            for (int64_t p = 0; p < hw; p++)
                sum += plane[p];
            pooled[i * c + ch] = (float)(sum / (double)hw);
        }
    sb_status status = sb_linear_f32__ref(hid, pooled, w1, NULL, n, c, hidden);
    if (status != SB_OK)
        return status;
    for (int64_t i = 0; i < n * hidden; i++)
        hid[i] = hid[i] > 0.0f || hid[i] != hid[i] ? hid[i] : 0.0f;
    status = sb_linear_f32__ref(gate, hid, w2, NULL, n, hidden, c);
    if (status != SB_OK)
        return status;
    for (int64_t i = 0; i < n * c; i++)
        gate[i] = 1.0f / (1.0f + expf(-gate[i]));
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *src = in_data + i * in->batch_stride + ch * hw;
            float *dst = out_data + i * out->batch_stride + ch * hw;
            for (int64_t p = 0; p < hw; p++)
                dst[p] = src[p] * gate[i * c + ch];
        }
    return SB_OK;
}

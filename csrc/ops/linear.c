/*
 * linear.c -- the Linear operator: torch.nn.functional.linear, input
 * (..., in_features) -> (..., out_features), and the packing of its weights.
 *
 * Paths: the packed GEMM (the layer's cached weights, threaded), the one-call
 * kernel on torch-layout weights (no packed weights given), or the reference
 * loop (tests).
 *
 * Not done: backward.
 */
#include "ops_internal.h"

sb_status sb_op_linear_plan(sb_linear_plan *plan, const sb_linear_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input, *w = a->weight, *b = a->bias;
    if (!sb_check_f32(err, x) || !sb_check_f32(err, w) || !sb_check_f32(err, b))
        return SB_ERR_ARGUMENT;
    /* torch's checks in its order: both at least 1-D, then weight.t() */
    if (x->ndim < 1 || w->ndim < 1)
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_LINEAR_1D, 2, x->ndim, w->ndim, 0, 0);
    if (w->ndim > 2)
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_LINEAR_WEIGHT_T, 1, w->ndim, 0, 0, 0);
    if (w->ndim != 2) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_LINEAR_WEIGHT_NDIM);
        sb_err_shape(err, 0, w);
        return SB_ERR_SHAPE;
    }
    const int64_t out_features = w->dims[0], in_features = w->dims[1];
    int64_t rows = 1;
    for (int i = 0; i < x->ndim - 1; i++)
        rows *= x->dims[i];
    if (x->dims[x->ndim - 1] != in_features)
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_LINEAR_SHAPES, 4, rows,
                         x->dims[x->ndim - 1], in_features, out_features);
    /* torch expands the bias to (rows, out_features), checking from the last
     * dimension */
    plan->bias_mode = SB_LINEAR_BIAS_NONE;
    if (b != NULL) {
        const int64_t target[2] = {rows, out_features};
        if (b->ndim > 2) {
            sb_fail_v(err, SB_ERR_SHAPE, SB_E_LINEAR_BIAS_NDIM, 3, rows, out_features, b->ndim,
                      0);
            sb_err_shape(err, 0, b);
            return SB_ERR_SHAPE;
        }
        for (int i = 1; i >= 2 - b->ndim; i--) {
            const int64_t have = b->dims[b->ndim - 2 + i];
            if (have != 1 && have != target[i]) {
                const int64_t v[5] = {target[i], have, i, rows, out_features};
                sb_fail(err, SB_ERR_SHAPE, SB_E_LINEAR_BIAS);
                sb_err_values(err, 5, v);
                sb_err_shape(err, 0, b);
                return SB_ERR_SHAPE;
            }
        }
        const int64_t last = b->ndim > 0 ? b->dims[b->ndim - 1] : 1;
        const int64_t first = b->ndim == 2 ? b->dims[0] : 1;
        plan->bias_mode = first != 1 ? SB_LINEAR_BIAS_ROWS
                          : last == out_features && out_features != 1 ? SB_LINEAR_BIAS_VECTOR
                                                                      : SB_LINEAR_BIAS_SCALAR;
        if (out_features == 1 && first == 1)
            plan->bias_mode = SB_LINEAR_BIAS_VECTOR; /* one value: a vector of one */
    }
    if (a->packed != NULL &&
        (a->reference ||
         a->packed_numel != sb_linear_f32_packed_weights_floats(out_features, in_features)))
        return sb_fail(err, SB_ERR_SHAPE, SB_E_PACKED);
    plan->out_ndim = x->ndim;
    for (int i = 0; i < x->ndim - 1; i++)
        plan->out_dims[i] = x->dims[i];
    plan->out_dims[x->ndim - 1] = out_features;
    plan->rows = rows;
    plan->in_features = in_features;
    plan->out_features = out_features;
    /* packed weights hold a vector bias; others are added here */
    if (a->packed != NULL && plan->bias_mode != SB_LINEAR_BIAS_NONE &&
        plan->bias_mode != SB_LINEAR_BIAS_VECTOR)
        return sb_fail(err, SB_ERR_SHAPE, SB_E_PACKED);
    sb_layout layout = {0};
    if (a->packed != NULL)
        sb_layout_add(&layout, sb_f32_bytes(sb_linear_f32_packed_workspace_floats(
                                   rows, in_features, out_features, a->num_threads)));
    plan->bias_offset = sb_layout_add(
        &layout, plan->bias_mode == SB_LINEAR_BIAS_SCALAR ? sb_f32_bytes(out_features) : 0);
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_linear_run(const sb_linear_plan *plan, const sb_linear_args *a,
                           const sb_tensor *out, void *workspace)
{
    float *y = (float *)out->data;
    const float *x = (const float *)a->input->data, *w = (const float *)a->weight->data;
    const float *b = NULL;
    if (plan->bias_mode == SB_LINEAR_BIAS_VECTOR) {
        b = (const float *)a->bias->data;
    } else if (plan->bias_mode == SB_LINEAR_BIAS_SCALAR) {
        /* one value for every output feature */
        float *v = (float *)sb_at(workspace, plan->bias_offset);
        for (int64_t o = 0; o < plan->out_features; o++)
            v[o] = *(const float *)a->bias->data;
        b = v;
    }
    sb_status status;
    if (a->reference)
        status = sb_linear_f32__ref(y, x, w, b, plan->rows, plan->in_features,
                                    plan->out_features);
    else if (a->packed != NULL)
        status = sb_linear_f32_packed(y, x, (const float *)a->packed, plan->rows,
                                      plan->in_features, plan->out_features,
                                      (float *)workspace, a->num_threads);
    else
        status = sb_linear_f32(y, x, w, b, plan->rows, plan->in_features, plan->out_features);
    if (status != SB_OK || plan->bias_mode != SB_LINEAR_BIAS_ROWS)
        return status;
    /* a bias per row, (rows, out_features) or (rows, 1), added after */
    const sb_tensor *bt = a->bias;
    const float *bias = (const float *)bt->data;
    const int64_t per_row = bt->dims[1];
    for (int64_t r = 0; r < plan->rows; r++)
        for (int64_t o = 0; o < plan->out_features; o++)
            y[r * plan->out_features + o] += bias[r * per_row + (per_row == 1 ? 0 : o)];
    return SB_OK;
}

sb_status sb_op_linear_pack_plan(sb_linear_pack_plan *plan, const sb_linear_pack_args *a,
                                 sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!sb_check_f32(err, a->weight) || !sb_check_f32(err, a->bias))
        return SB_ERR_ARGUMENT;
    if (a->weight->ndim != 2) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_LINEAR_PACK_WEIGHT);
        sb_err_shape(err, 0, a->weight);
        return SB_ERR_SHAPE;
    }
    const int64_t out_features = a->weight->dims[0], in_features = a->weight->dims[1];
    if (a->bias != NULL && sb_tensor_numel(a->bias) != out_features) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_NUMEL, 2, out_features, sb_tensor_numel(a->bias), 0,
                  0);
        sb_err_arg(err, "bias");
        return SB_ERR_SHAPE;
    }
    plan->packed_numel = sb_linear_f32_packed_weights_floats(out_features, in_features);
    return SB_OK;
}

sb_status sb_op_linear_pack_run(const sb_linear_pack_plan *plan,
                                const sb_linear_pack_args *a, void *packed, void *workspace)
{
    return sb_linear_f32_pack_weights((float *)packed, (const float *)a->weight->data,
                                      a->bias ? (const float *)a->bias->data : NULL,
                                      a->weight->dims[0], a->weight->dims[1]);
}

/*
 * linear.c -- the Linear operator: torch.nn.functional.linear, input
 * (..., in_features) -> (..., out_features), and the packing of its weights.
 *
 * Paths: the packed GEMM (the layer's cached weights, threaded), the one-call
 * kernel on torch-layout weights (no packed weights given), or the reference
 * loop (tests).
 *
 * float32 and float64 from one source (SB_DT_CALL on the input's dtype).
 * torch's dtype checks depend on its path: with a bias it runs addmm for a
 * 2-D input or a bias of one non-1 dimension (torch_uses_addmm), which
 * checks bias against weight and input against weight before the shapes;
 * otherwise it runs matmul, which checks input against weight after the
 * shapes, and adds a bias of another dtype without complaint (bias_after).
 *
 * Not done: backward.
 */
#include "ops_internal.h"

/* Whether torch 2.13's linear computes input @ weight.T + bias as one addmm
 * (a 2-D input, or a bias whose sizes other than 1 are one dimension); else
 * it runs matmul, then adds the bias. */
static int torch_uses_addmm(const sb_tensor *x, const sb_tensor *b)
{
    if (b == NULL)
        return 0;
    if (x->ndim == 2 || b->ndim == 1)
        return 1;
    int sized = 0;
    for (int i = 0; i < b->ndim; i++)
        sized += b->dims[i] != 1;
    return sized == 1;
}

sb_status sb_op_linear_plan(sb_linear_plan *plan, const sb_linear_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input, *w = a->weight, *b = a->bias;
    if (!sb_check_dtype(err, x) || !sb_check_dtype(err, w) || !sb_check_dtype(err, b))
        return SB_ERR_ARGUMENT;
    const sb_dtype dt = x->dtype;
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
    /* addmm checks the dtypes first: bias against weight, input against weight */
    const int addmm = torch_uses_addmm(x, b);
    if (addmm && b->dtype != w->dtype)
        return sb_fail_dtype(err, SB_E_LINEAR_SELF_DTYPE, "bias", b->dtype, w->dtype);
    if (addmm && x->dtype != w->dtype)
        return sb_fail_dtype(err, SB_E_LINEAR_MAT1_DTYPE, "weight", x->dtype, w->dtype);
    const int64_t out_features = w->dims[0], in_features = w->dims[1];
    int64_t rows = 1;
    for (int i = 0; i < x->ndim - 1; i++)
        rows *= x->dims[i];
    if (x->dims[x->ndim - 1] != in_features)
        return sb_fail_v(err, SB_ERR_SHAPE, SB_E_LINEAR_SHAPES, 4, rows,
                         x->dims[x->ndim - 1], in_features, out_features);
    /* matmul checks them after the shapes, and before the bias is added */
    if (!addmm && x->dtype != w->dtype)
        return sb_fail_dtype(err, SB_E_LINEAR_MM_DTYPE, "weight", x->dtype, w->dtype);
    /* torch expands the bias to (rows, out_features), checking from the last
     * dimension */
    plan->bias_mode = SB_LINEAR_BIAS_NONE;
    if (b != NULL) {
        const int64_t target[2] = {rows, out_features};
        if (b->ndim > 2) {
            const int64_t v[4] = {rows, out_features, b->ndim, (int64_t)b->dtype};
            sb_fail(err, SB_ERR_SHAPE, SB_E_LINEAR_BIAS_NDIM);
            sb_err_values(err, 4, v);
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
        /* only matmul's path gets here with a bias of another dtype */
        plan->bias_after = b->dtype != dt;
    }
    /* packed weights: of the input's dtype (their size depends on it) */
    if (a->packed != NULL && a->packed_dtype != dt)
        return sb_fail_dtype(err, SB_E_DTYPE_MISMATCH, "packed", dt, a->packed_dtype);
    if (a->packed != NULL &&
        (a->reference ||
         a->packed_numel !=
             SB_DT_CALL(dt, sb_linear, _packed_weights_elems, out_features, in_features)))
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
        (plan->bias_mode != SB_LINEAR_BIAS_VECTOR || plan->bias_after))
        return sb_fail(err, SB_ERR_SHAPE, SB_E_PACKED);
    sb_layout layout = {0};
    if (a->packed != NULL)
        sb_layout_add(&layout, sb_elem_bytes(dt, SB_DT_CALL(dt, sb_linear, _packed_workspace_elems,
                                                            rows, in_features, out_features,
                                                            a->num_threads)));
    const int scalar_vector = plan->bias_mode == SB_LINEAR_BIAS_SCALAR && !plan->bias_after;
    plan->bias_offset = sb_layout_add(&layout, scalar_vector ? sb_elem_bytes(dt, out_features) : 0);
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

/* y[r, o] += bias[r, o] (per_row == out_features) or bias[r, 0] (per_row ==
 * 1), in the type of y and bias (written once per element type). */
#define SB_LINEAR_ADD_ROWS(T, dt)                                                           \
    static void add_rows_##dt(T *y, const T *bias, int64_t rows, int64_t out_features,     \
                              int64_t per_row)                                             \
    {                                                                                      \
        for (int64_t r = 0; r < rows; r++)                                                 \
            for (int64_t o = 0; o < out_features; o++)                                     \
                y[r * out_features + o] += bias[r * per_row + (per_row == 1 ? 0 : o)];     \
    }
SB_LINEAR_ADD_ROWS(float, f32)
SB_LINEAR_ADD_ROWS(double, f64)
#undef SB_LINEAR_ADD_ROWS

/* A bias of another dtype added after the product as torch's add_ adds it:
 * each sum in double, rounded once to y's dtype. */
static void add_bias_after(void *y, sb_dtype dt, const sb_linear_plan *plan,
                           const sb_tensor *bias)
{
    const int64_t per_row = bias->ndim == 2 ? bias->dims[1] : 0;
    const int64_t vector = plan->bias_mode == SB_LINEAR_BIAS_VECTOR &&
                           sb_tensor_numel(bias) == plan->out_features;
    for (int64_t r = 0; r < plan->rows; r++)
        for (int64_t o = 0; o < plan->out_features; o++) {
            int64_t j = 0;
            if (plan->bias_mode == SB_LINEAR_BIAS_ROWS)
                j = r * per_row + (per_row == 1 ? 0 : o);
            else if (vector)
                j = o;
            const int64_t i = r * plan->out_features + o;
            double b = sb_load(bias->data, bias->dtype, j);
            /* a 0-d bias takes part as a scalar: torch's result keeps the
             * input's dtype and adds in it, the bias rounded to it first
             * (a float sum rounded from double is the float sum) */
            if (bias->ndim == 0 && dt == SB_DTYPE_F32)
                b = (float)b;
            sb_store(y, dt, i, sb_load(y, dt, i) + b);
        }
}

sb_status sb_op_linear_run(const sb_linear_plan *plan, const sb_linear_args *a,
                           const sb_tensor *out, void *workspace)
{
    const sb_dtype dt = a->input->dtype;
    void *y = out->data;
    const void *x = a->input->data, *w = a->weight->data;
    const void *b = NULL;
    if (plan->bias_after) {
        b = NULL; /* added below */
    } else if (plan->bias_mode == SB_LINEAR_BIAS_VECTOR) {
        b = a->bias->data;
    } else if (plan->bias_mode == SB_LINEAR_BIAS_SCALAR) {
        /* one value for every output feature */
        void *v = sb_at(workspace, plan->bias_offset);
        const double value = sb_load(a->bias->data, dt, 0);
        for (int64_t o = 0; o < plan->out_features; o++)
            sb_store(v, dt, o, value);
        b = v;
    }
    sb_status status;
    if (a->reference)
        status = SB_DT_CALL(dt, sb_linear, __ref, y, x, w, b, plan->rows, plan->in_features,
                            plan->out_features);
    else if (a->packed != NULL)
        status = SB_DT_CALL(dt, sb_linear, _packed, y, x, a->packed, plan->rows,
                            plan->in_features, plan->out_features, workspace, a->num_threads);
    else
        status = SB_DT_CALL(dt, sb_linear, , y, x, w, b, plan->rows, plan->in_features,
                            plan->out_features);
    if (status != SB_OK)
        return status;
    if (plan->bias_after) {
        add_bias_after(y, dt, plan, a->bias);
        return SB_OK;
    }
    if (plan->bias_mode != SB_LINEAR_BIAS_ROWS)
        return SB_OK;
    /* a bias per row, (rows, out_features) or (rows, 1), added after */
    SB_DT_CALL(dt, add_rows, , y, a->bias->data, plan->rows, plan->out_features,
               a->bias->dims[1]);
    return SB_OK;
}

sb_status sb_op_linear_pack_plan(sb_linear_pack_plan *plan, const sb_linear_pack_args *a,
                                 sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!sb_check_dtype(err, a->weight) || !sb_check_dtype(err, a->bias))
        return SB_ERR_ARGUMENT;
    const sb_dtype dt = a->weight->dtype;
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
    /* torch's linear on such a weight and (vector) bias: addmm's check */
    if (!sb_dtype_is(a->bias, dt))
        return sb_fail_dtype(err, SB_E_LINEAR_SELF_DTYPE, "bias", a->bias->dtype, dt);
    plan->packed_numel = SB_DT_CALL(dt, sb_linear, _packed_weights_elems, out_features,
                                    in_features);
    return SB_OK;
}

sb_status sb_op_linear_pack_run(const sb_linear_pack_plan *plan,
                                const sb_linear_pack_args *a, void *packed, void *workspace)
{
    return SB_DT_CALL(a->weight->dtype, sb_linear, _pack_weights, packed, a->weight->data,
                      sb_data_or_null(a->bias), a->weight->dims[0], a->weight->dims[1]);
}

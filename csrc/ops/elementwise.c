/*
 * elementwise.c -- the element-wise operators: torch.relu, torch.sigmoid,
 * relu(a + b) (ResidualBlock's "out + residual, then relu"), and the
 * per-channel scale of SEAttention (x * y.expand_as(x)).
 *
 * Inputs are C-contiguous (the channel scale: images contiguous); out may be
 * the input itself, since every element is read before it is written, by
 * the same thread.
 *
 * float32 and float64 from one source (SB_DT_CALL on the input's dtype); a
 * second operand (b, scale) must have the input's dtype.
 *
 * Not done: broadcasting beyond the channel scale (the caller broadcasts).
 */
#include "ops_internal.h"

sb_status sb_op_unary_plan(sb_elementwise_plan *plan, const sb_unary_args *a, sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!sb_check_dtype(err, a->input))
        return SB_ERR_ARGUMENT;
    plan->numel = sb_tensor_numel(a->input);
    return SB_OK;
}

sb_status sb_op_unary_run(const sb_elementwise_plan *plan, const sb_unary_args *a,
                          const sb_tensor *out, void *workspace)
{
    const sb_dtype dt = a->input->dtype;
    switch (a->kind) {
    case SB_UNARY_RELU:
        return SB_DT_CALL(dt, sb_relu, , out->data, a->input->data, plan->numel);
    case SB_UNARY_SIGMOID:
        return SB_DT_CALL(dt, sb_sigmoid, , out->data, a->input->data, plan->numel);
    }
    return SB_ERR_ARGUMENT;
}

sb_status sb_op_add_relu_plan(sb_elementwise_plan *plan, const sb_add_relu_args *a,
                              sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!sb_check_dtype(err, a->a) || !sb_check_dtype(err, a->b))
        return SB_ERR_ARGUMENT;
    if (!sb_same_dims(a->b, a->a->ndim, a->a->dims)) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_ADD_SHAPES);
        sb_err_shape(err, 0, a->a);
        sb_err_shape(err, 1, a->b);
        return SB_ERR_SHAPE;
    }
    sb_status status = sb_check_same_dtype(err, a->b, a->a->dtype, "residual");
    if (status != SB_OK)
        return status;
    plan->numel = sb_tensor_numel(a->a);
    return SB_OK;
}

sb_status sb_op_add_relu_run(const sb_elementwise_plan *plan, const sb_add_relu_args *a,
                             const sb_tensor *out, void *workspace)
{
    return SB_DT_CALL(a->a->dtype, sb_add_relu, , out->data, a->a->data, a->b->data,
                      plan->numel);
}

sb_status sb_op_channel_scale_plan(sb_elementwise_plan *plan, const sb_channel_scale_args *a,
                                   sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!sb_check_dtype(err, a->input) || !sb_check_dtype(err, a->scale))
        return SB_ERR_ARGUMENT;
    if (a->input->ndim != 4 ||
        sb_tensor_numel(a->scale) != a->input->dims[0] * a->input->dims[1])
        return sb_fail(err, SB_ERR_SHAPE, SB_E_CHANNEL_SCALE);
    sb_status status = sb_check_same_dtype(err, a->scale, a->input->dtype, "scale");
    if (status != SB_OK)
        return status;
    plan->numel = sb_tensor_numel(a->input);
    return SB_OK;
}

sb_status sb_op_channel_scale_run(const sb_elementwise_plan *plan,
                                  const sb_channel_scale_args *a, const sb_tensor *out,
                                  void *workspace)
{
    const sb_fmap in_map = sb_fmap_of(a->input), out_map = sb_fmap_of(out);
    return SB_DT_CALL(a->input->dtype, sb_channel_scale, , out->data, &out_map, a->input->data,
                      &in_map, a->scale->data);
}

/*
 * batch_norm.c -- the BatchNorm operator: torch.nn.functional.batch_norm on
 * (N, C, ...) input, and the BatchNorm pieces the fused blocks share.
 *
 * torch's sequence, as its CPU batch_norm runs it:
 *   batch statistics (torch's training=True):
 *       stats -> running-statistics update (when given) -> fold -> apply
 *   running statistics (training=False): fold -> apply
 * where fold turns mean, variance, weight and bias into the per-channel
 * x * scale + shift torch computes (see sb_batch_norm_fold_<dt>). An empty
 * batch in train mode gives an empty output and leaves the running
 * statistics as they were, as in torch. Optional epilogue: a ReLU in the
 * same pass (the document's relu(bn(x))).
 *
 * float32 and float64 from one source (SB_DT_CALL on the input's dtype).
 * The parameters and running statistics must have the input's dtype; torch
 * checks that after its other checks, on a non-empty input only, with the
 * messages of its mixed-dtype rule (check_dtypes).
 *
 * Not done: channels-last layouts, backward.
 */
#include "ops_internal.h"

static sb_status check_vector(const sb_tensor *t, int64_t count, const char *name,
                              sb_error *err)
{
    if (t == NULL)
        return SB_OK;
    if (!sb_check_dtype(err, t))
        return SB_ERR_ARGUMENT;
    if (sb_tensor_numel(t) != count) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_NUMEL, 2, count, sb_tensor_numel(t), 0, 0);
        sb_err_arg(err, name);
        return SB_ERR_SHAPE;
    }
    return SB_OK;
}

/* torch.nn.functional.batch_norm's eps checks (a NaN eps passes them, as in
 * torch). */
static sb_status check_eps(const sb_batch_norm_state *bn, sb_error *err)
{
    if (bn->batch_stats && bn->eps <= 0.0) {
        sb_fail(err, SB_ERR_ARGUMENT, SB_E_BN_EPS_TRAIN);
        err->real = bn->eps;
        return SB_ERR_ARGUMENT;
    }
    if (bn->eps < 0.0) {
        sb_fail(err, SB_ERR_ARGUMENT, SB_E_BN_EPS);
        err->real = bn->eps;
        return SB_ERR_ARGUMENT;
    }
    return SB_OK;
}

/* torch's CPU batch_norm on an input of `dtype`: its parameters in the
 * order (weight, bias, running_mean, running_var). When the first one given
 * differs from the input ("mixed dtype", a rule meant for bfloat16/half
 * input with float32 parameters), every parameter must be float32, then the
 * input must be a reduced float type -- which float64 is not. Otherwise
 * the kernel finds a later parameter of another dtype. */
static sb_status check_dtypes(const sb_batch_norm_state *bn, sb_dtype dtype, sb_error *err)
{
    const sb_tensor *params[4] = {bn->weight, bn->bias, bn->running_mean, bn->running_var};
    static const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
    const sb_tensor *first = NULL;
    for (int i = 0; i < 4 && first == NULL; i++)
        first = params[i];
    if (first != NULL && first->dtype != dtype) {
        for (int i = 0; i < 4; i++)
            if (!sb_dtype_is(params[i], SB_DTYPE_F32))
                return sb_fail_dtype(err, SB_E_BN_PARAM_DTYPE, names[i], dtype,
                                     params[i]->dtype);
        return sb_fail_dtype(err, SB_E_BN_MIXED_DTYPE, "input", dtype, first->dtype);
    }
    for (int i = 0; i < 4; i++)
        if (!sb_dtype_is(params[i], dtype))
            return sb_fail_dtype(err, SB_E_BN_SCALAR_TYPE, names[i], dtype, params[i]->dtype);
    return SB_OK;
}

sb_status sb_bn_state_check(const sb_batch_norm_state *bn, int64_t channels, int64_t count,
                            const sb_tensor *input, sb_dtype dtype, sb_error *err)
{
    /* torch.nn.functional.batch_norm's _verify_batch_size comes first */
    if (bn->batch_stats && count == 1 && input != NULL) {
        sb_fail(err, SB_ERR_SHAPE, SB_E_BN_ONE_VALUE);
        sb_err_shape(err, 0, input);
        return SB_ERR_SHAPE;
    }
    sb_status status = check_eps(bn, err);
    if (status != SB_OK)
        return status;
    if (!bn->batch_stats && bn->running_mean == NULL)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_BN_EVAL_NO_MEAN);
    if (!bn->batch_stats && bn->running_var == NULL)
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_BN_EVAL_NO_VAR);
    if ((bn->running_mean == NULL) != (bn->running_var == NULL))
        return sb_fail(err, SB_ERR_ARGUMENT, SB_E_BN_RUNNING_PAIR);
    if ((status = check_vector(bn->running_mean, channels, "running_mean", err)) != SB_OK ||
        (status = check_vector(bn->running_var, channels, "running_var", err)) != SB_OK ||
        (status = check_vector(bn->weight, channels, "weight", err)) != SB_OK ||
        (status = check_vector(bn->bias, channels, "bias", err)) != SB_OK)
        return status;
    /* torch returns an empty input's (empty) result before its dtype checks */
    if (input != NULL && (channels == 0 || count == 0))
        return SB_OK;
    return check_dtypes(bn, dtype, err);
}

/* The kernels see every input as N x C x (the rest) x 1; a 4-D one as its
 * fmap (images may be batch_stride apart). */
static sb_fmap bn_map(const sb_tensor *t)
{
    if (t->ndim == 4)
        return sb_fmap_of(t);
    sb_fmap m = {t->dims[0], t->dims[1], 1, 1, 0};
    for (int i = 2; i < t->ndim; i++)
        m.h *= t->dims[i];
    m.batch_stride = m.c * m.h;
    return m;
}

sb_status sb_bn_transform(void *scale, void *shift, const sb_batch_norm_state *bn,
                          const void *in_data, const sb_fmap *in, int64_t count,
                          void *scratch, sb_dtype dt)
{
    const int64_t channels = bn->running_mean != NULL ? sb_tensor_numel(bn->running_mean)
                                                      : (in != NULL ? in->c : 0);
    const void *weight = sb_data_or_null(bn->weight), *bias = sb_data_or_null(bn->bias);
    if (in != NULL && count == 0) {
        /* the scale and shift of an empty map are never applied (and its
         * parameters, whose dtypes the plan did not check, are not read) */
        for (int64_t c = 0; c < in->c; c++) {
            sb_store(scale, dt, c, 1.0);
            sb_store(shift, dt, c, 0.0);
        }
        return SB_OK;
    }
    if (!bn->batch_stats)
        return SB_DT_CALL(dt, sb_batch_norm_fold, , scale, shift, bn->running_mean->data,
                          bn->running_var->data, weight, bias, bn->eps, channels, 0);
    void *mean = scratch, *var_sum = sb_elem(scratch, dt, in->c);
    sb_status status = SB_DT_CALL(dt, sb_batch_norm_stats, , mean, var_sum, in_data, in);
    if (status == SB_OK && bn->running_mean != NULL)
        status = SB_DT_CALL(dt, sb_batch_norm_update_running, , bn->running_mean->data,
                            bn->running_var->data, mean, var_sum, count, bn->momentum, in->c);
    if (status == SB_OK)
        status = SB_DT_CALL(dt, sb_batch_norm_fold, , scale, shift, mean, var_sum, weight, bias,
                            bn->eps, in->c, count);
    return status;
}

sb_status sb_op_batch_norm_plan(sb_batch_norm_plan *plan, const sb_batch_norm_args *a,
                                sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_dtype(err, x))
        return SB_ERR_ARGUMENT;
    if (x->ndim < 2) {
        sb_fail_v(err, SB_ERR_SHAPE, SB_E_BN_INPUT_NDIM, 1, x->ndim, 0, 0, 0);
        sb_err_shape(err, 0, x);
        return SB_ERR_SHAPE;
    }
    plan->channels = x->dims[1];
    plan->count = sb_tensor_numel(x) / (plan->channels > 0 ? plan->channels : 1);
    if (plan->channels == 0) {
        plan->count = x->dims[0];
        for (int i = 2; i < x->ndim; i++)
            plan->count *= x->dims[i];
    }
    sb_status status = sb_bn_state_check(&a->bn, plan->channels, plan->count, x, x->dtype, err);
    if (status != SB_OK)
        return status;
    plan->in_map = bn_map(x);
    sb_layout layout = {0};
    sb_layout_add(&layout, sb_elem_bytes(x->dtype, sb_sat_mul(4, plan->channels)));
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_batch_norm_run(const sb_batch_norm_plan *plan, const sb_batch_norm_args *a,
                               const sb_tensor *out, void *workspace)
{
    const int64_t c = plan->channels;
    const sb_dtype dt = a->input->dtype;
    void *scale = workspace, *shift = sb_elem(scale, dt, c), *scratch = sb_elem(shift, dt, c);
    const void *in_data = a->input->data;
    sb_status status = sb_bn_transform(scale, shift, &a->bn, in_data, &plan->in_map,
                                       plan->count, scratch, dt);
    if (status != SB_OK || plan->count == 0)
        return status;
    const sb_fmap out_map = bn_map(out);
    return SB_DT_CALL(dt, sb_batch_norm_apply, , out->data, &out_map, in_data, &plan->in_map,
                      scale, shift, a->relu);
}

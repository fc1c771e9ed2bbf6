/*
 * batch_norm.c -- the BatchNorm operator: torch.nn.functional.batch_norm on
 * (N, C, ...) input, and the BatchNorm pieces the fused blocks share.
 *
 * torch's sequence, as its CPU batch_norm runs it:
 *   batch statistics (torch's training=True):
 *       stats -> running-statistics update (when given) -> fold -> apply
 *   running statistics (training=False): fold -> apply
 * where fold turns mean, variance, weight and bias into the per-channel
 * x * scale + shift torch computes (see sb_batch_norm_fold_f32). An empty
 * batch in train mode gives an empty output and leaves the running
 * statistics as they were, as in torch. Optional epilogue: a ReLU in the
 * same pass (the document's relu(bn(x))).
 *
 * Not done: channels-last layouts, backward.
 */
#include "ops_internal.h"

static sb_status check_vector(const sb_tensor *t, int64_t count, const char *name,
                              sb_error *err)
{
    if (t == NULL)
        return SB_OK;
    if (!sb_check_f32(err, t))
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

sb_status sb_bn_state_check(const sb_batch_norm_state *bn, int64_t channels, int64_t count,
                            const sb_tensor *input, sb_error *err)
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
    return SB_OK;
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

static const float *f32(const sb_tensor *t)
{
    return t != NULL ? (const float *)t->data : NULL;
}

sb_status sb_bn_transform(float *scale, float *shift, const sb_batch_norm_state *bn,
                          const float *in_data, const sb_fmap *in, int64_t count,
                          float *scratch)
{
    const int64_t channels = bn->running_mean != NULL ? sb_tensor_numel(bn->running_mean)
                                                      : (in != NULL ? in->c : 0);
    if (!bn->batch_stats)
        return sb_batch_norm_fold_f32(scale, shift, f32(bn->running_mean),
                                      f32(bn->running_var), f32(bn->weight), f32(bn->bias),
                                      bn->eps, channels, 0);
    if (count == 0) {
        /* the scale and shift of an empty batch are never applied */
        for (int64_t c = 0; c < in->c; c++) {
            scale[c] = 1.0f;
            shift[c] = 0.0f;
        }
        return SB_OK;
    }
    float *mean = scratch, *var_sum = scratch + in->c;
    sb_status status = sb_batch_norm_stats_f32(mean, var_sum, in_data, in);
    if (status == SB_OK && bn->running_mean != NULL)
        status = sb_batch_norm_update_running_f32((float *)bn->running_mean->data,
                                                  (float *)bn->running_var->data, mean,
                                                  var_sum, count, bn->momentum, in->c);
    if (status == SB_OK)
        status = sb_batch_norm_fold_f32(scale, shift, mean, var_sum, f32(bn->weight),
                                        f32(bn->bias), bn->eps, in->c, count);
    return status;
}

sb_status sb_op_batch_norm_plan(sb_batch_norm_plan *plan, const sb_batch_norm_args *a,
                                sb_error *err)
{
    memset(plan, 0, sizeof *plan);
    const sb_tensor *x = a->input;
    if (!sb_check_f32(err, x))
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
    sb_status status = sb_bn_state_check(&a->bn, plan->channels, plan->count, x, err);
    if (status != SB_OK)
        return status;
    plan->in_map = bn_map(x);
    sb_layout layout = {0};
    sb_layout_add(&layout, sb_f32_bytes(4 * plan->channels));
    plan->workspace_bytes = layout.total;
    return SB_OK;
}

sb_status sb_op_batch_norm_run(const sb_batch_norm_plan *plan, const sb_batch_norm_args *a,
                               const sb_tensor *out, void *workspace)
{
    const int64_t c = plan->channels;
    float *scale = (float *)workspace, *shift = scale + c, *scratch = shift + c;
    const float *in_data = (const float *)a->input->data;
    sb_status status = sb_bn_transform(scale, shift, &a->bn, in_data, &plan->in_map,
                                       plan->count, scratch);
    if (status != SB_OK || plan->count == 0)
        return status;
    const sb_fmap out_map = bn_map(out);
    return sb_batch_norm_apply_f32((float *)out->data, &out_map, in_data, &plan->in_map,
                                   scale, shift, a->relu);
}

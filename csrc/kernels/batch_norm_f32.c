/*
 * batch_norm_f32.c -- BatchNorm2d pieces, matching torch's CPU batch_norm
 * (aten/src/ATen/native/Normalization.cpp and cpu/batch_norm_kernel.cpp)
 * on float32 NCHW maps.
 *
 * torch splits batch norm the same way, and these four kernels mirror it:
 *   stats          per-channel mean and biased variance over N, H, W (train mode)
 *   fold           scale = weight * invstd, shift = bias - mean * scale
 *   update_running running_mean / running_var momentum update (train mode)
 *   apply          out = in * scale + shift, optionally fused with ReLU
 * Eval mode is fold(running_mean, running_var) followed by apply.
 *
 * Precision follows torch: stats sum in double, the mean is rounded to float,
 * then the squared deviations (x - mean)^2 are formed in float and summed in
 * double -- exactly what batch_norm_cpu_collect_stats_contiguous_impl does.
 *
 * Not done: backward, channels-last layouts, momentum == None (cumulative
 * average) -- the Python layer passes momentum = 1 / num_batches_tracked then.
 */
#include <math.h>

#include "sb_internal.h"

sb_status sb_batch_norm_stats_f32(float *restrict mean, float *restrict var_biased,
                                  const float *restrict in_data, const sb_fmap *in)
{
    if (in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(in) || in->n * in->h * in->w < 1)
        return SB_ERR_SHAPE;
    if (in->c == 0)
        return SB_OK;
    if (mean == NULL || var_biased == NULL || in_data == NULL)
        return SB_ERR_NULL;

    const int64_t hw = in->h * in->w;
    const double count = (double)(in->n * hw);
    for (int64_t c = 0; c < in->c; c++) {
        /* Pass 1: mean. One double accumulator in torch's (n, i) order, so
         * the float mean rounds exactly as torch's contiguous path does. */
        double sum = 0.0;
        for (int64_t n = 0; n < in->n; n++) {
            const float *restrict x = in_data + n * in->batch_stride + c * hw;
            for (int64_t i = 0; i < hw; i++)
                sum += x[i];
        }
        const float m = (float)(sum / count);

        /* Pass 2: squared deviations from the *float* mean, formed in float
         * and summed in double, as torch does. */
        double var_sum = 0.0;
        for (int64_t n = 0; n < in->n; n++) {
            const float *restrict x = in_data + n * in->batch_stride + c * hw;
            for (int64_t i = 0; i < hw; i++) {
                const float d = x[i] - m;
                var_sum += d * d;
            }
        }
        mean[c] = m;
        var_biased[c] = (float)(var_sum / count);
    }
    return SB_OK;
}

sb_status sb_batch_norm_fold_f32(float *restrict scale, float *restrict shift,
                                 const float *restrict mean, const float *restrict var,
                                 const float *restrict weight, const float *restrict bias,
                                 double eps, int64_t channels)
{
    if (channels < 0)
        return SB_ERR_SHAPE;
    if (!(eps >= 0.0))  /* also rejects a NaN eps */
        return SB_ERR_ARGUMENT;
    if (channels == 0)
        return SB_OK;
    if (scale == NULL || shift == NULL || mean == NULL || var == NULL)
        return SB_ERR_NULL;
    for (int64_t c = 0; c < channels; c++) {
        /* invstd in double, rounded once to float: torch's train path
         * (InvStd<double> over var_sum / n). torch's eval path instead uses
         * float, 1 / sqrt(running_var + (float)eps); the two differ by at
         * most an ulp, and this API cannot tell the modes apart. scale and
         * shift in float, as batch_norm_cpu_collect_linear_and_constant_terms. */
        const float invstd = (float)(1.0 / sqrt((double)var[c] + eps));
        const float w = weight != NULL ? weight[c] : 1.0f;
        const float b = bias != NULL ? bias[c] : 0.0f;
        const float s = invstd * w;
        scale[c] = s;
        shift[c] = b - mean[c] * s;
    }
    return SB_OK;
}

sb_status sb_batch_norm_update_running_f32(float *restrict running_mean,
                                           float *restrict running_var,
                                           const float *restrict mean,
                                           const float *restrict var_biased,
                                           int64_t count, double momentum,
                                           int64_t channels)
{
    if (channels < 0)
        return SB_ERR_SHAPE;
    /* torch raises "Expected more than 1 value per channel when training"
     * before it gets here; n / (n - 1) would divide by zero. */
    if (count < 2)
        return SB_ERR_SHAPE;
    /* Any momentum is accepted, as in torch (values outside [0, 1] are odd
     * but well defined). */
    if (channels == 0)
        return SB_OK;
    if (running_mean == NULL || running_var == NULL || mean == NULL || var_biased == NULL)
        return SB_ERR_NULL;

    /* torch casts momentum to the parameter type (float) and updates the mean
     * in float; the unbiased variance is formed in double (acc_type<float>)
     * and the variance update is evaluated in double before storing. */
    const float mom = (float)momentum;
    const float keep = 1.0f - mom;
    const double bessel = (double)count / (double)(count - 1);
    for (int64_t c = 0; c < channels; c++) {
        running_mean[c] = mom * mean[c] + keep * running_mean[c];
        const double unbiased = (double)var_biased[c] * bessel;
        running_var[c] = (float)((double)mom * unbiased + (double)(keep * running_var[c]));
    }
    return SB_OK;
}

/* out and in may be the same buffer, so neither is restrict-qualified. */
sb_status sb_batch_norm_apply_f32(float *out_data, const sb_fmap *out,
                                  const float *in_data, const sb_fmap *in,
                                  const float *restrict scale, const float *restrict shift,
                                  int relu)
{
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || out->n != in->n || out->c != in->c ||
        out->h != in->h || out->w != in->w)
        return SB_ERR_SHAPE;
    const int64_t hw = in->h * in->w;
    if (in->n == 0 || in->c == 0 || hw == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || scale == NULL || shift == NULL)
        return SB_ERR_NULL;

    for (int64_t n = 0; n < in->n; n++) {
        for (int64_t c = 0; c < in->c; c++) {
            const float *x = in_data + n * in->batch_stride + c * hw;
            float *y = out_data + n * out->batch_stride + c * hw;
            const float s = scale[c], t = shift[c];
            /* Separate loops so each is branch-free and vectorises. The
             * ReLU is torch's clamp_min(v, 0) = (v < 0 ? 0 : v): NaN fails
             * the test and is kept, and -0.0 stays -0.0, bit for bit. */
            if (relu) {
                for (int64_t i = 0; i < hw; i++) {
                    const float v = x[i] * s + t;
                    y[i] = v < 0.0f ? 0.0f : v;
                }
            } else {
                for (int64_t i = 0; i < hw; i++)
                    y[i] = x[i] * s + t;
            }
        }
    }
    return SB_OK;
}

/*
 * ResidualBlock's train-mode tail, one pass instead of three:
 *   out = relu(in * scale[c] + shift[c] + residual)
 * which is torch's F.relu(bn(conv2(out)) + residual) once the batch
 * statistics are known. out may be in (in-place).
 */
sb_status sb_batch_norm_add_relu_f32(float *out_data, const sb_fmap *out,
                                     const float *in_data, const sb_fmap *in,
                                     const float *restrict scale, const float *restrict shift,
                                     const float *residual_data, const sb_fmap *residual)
{
    if (out == NULL || in == NULL || residual == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || !sb_fmap_ok(residual) || out->n != in->n ||
        out->c != in->c || out->h != in->h || out->w != in->w || residual->n != in->n ||
        residual->c != in->c || residual->h != in->h || residual->w != in->w)
        return SB_ERR_SHAPE;
    const int64_t hw = in->h * in->w;
    if (in->n == 0 || in->c == 0 || hw == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || scale == NULL || shift == NULL ||
        residual_data == NULL)
        return SB_ERR_NULL;
    for (int64_t n = 0; n < in->n; n++) {
        for (int64_t c = 0; c < in->c; c++) {
            const float *x = in_data + n * in->batch_stride + c * hw;
            const float *r = residual_data + n * residual->batch_stride + c * hw;
            float *y = out_data + n * out->batch_stride + c * hw;
            const float s = scale[c], t = shift[c];
            for (int64_t i = 0; i < hw; i++) {
                const float v = (x[i] * s + t) + r[i];
                y[i] = v < 0.0f ? 0.0f : v; /* torch.relu: NaN and -0.0 kept */
            }
        }
    }
    return SB_OK;
}

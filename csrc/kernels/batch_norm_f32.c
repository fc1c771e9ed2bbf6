/*
 * batch_norm_f32.c -- BatchNorm2d pieces, matching torch's CPU batch_norm
 * (aten/src/ATen/native/Normalization.cpp and cpu/batch_norm_kernel.cpp)
 * on float32 NCHW maps.
 *
 * torch splits batch norm the same way, and these four kernels mirror it:
 *   stats          per-channel mean and sum of squared deviations over N, H, W
 *                  (train mode; the biased variance is that sum / n)
 *   fold           scale = weight * invstd, shift = bias - mean * scale
 *   update_running running_mean / running_var momentum update (train mode)
 *   apply          out = in * scale + shift, optionally fused with ReLU (one FMA on
 *                  the AVX2 path, batch_norm_f32__avx2.c, as torch's vectorised
 *                  kernels; a multiply and an add on the portable path)
 * Eval mode is fold(running_mean, running_var) followed by apply.
 *
 * Precision follows torch: stats sum in double (four partial sums per
 * channel, combined pairwise), the mean is rounded to float, then the
 * squared deviations (x - mean)^2 are formed in float and summed in double,
 * as batch_norm_cpu_collect_stats_contiguous_impl does (its summation order
 * differs; a double sum of floats is usually exact, so both agree), and that
 * sum is rounded to float (torch's var_sum), later divided by n or n - 1 in
 * float. With fold's, update_running's and apply's roundings (below) a
 * BatchNorm2d's output and running statistics are then torch's own, bit for
 * bit, on the AVX2 path in train and eval mode.
 *
 * stats, apply and add_relu split channels / planes over the thread pool
 * when the map is big enough; no sum is ever split, so results do not
 * depend on the thread count.
 *
 * References for tests (at the end), plain single-threaded loops over the
 * formulas above:
 *   sb_batch_norm_stats_f32__ref      one double sum per channel in
 *       element order (not four lanes), the same roundings to float: the
 *       fast kernel agrees to within an ulp (the two double sums can round
 *       to neighbouring floats), usually bit for bit;
 *   sb_batch_norm_apply_f32__ref, sb_batch_norm_add_relu_f32__ref
 *       x * scale + shift as one fmaf, torch's vectorised rounding: the
 *       AVX2 path gives their bits, the portable path (product and sum
 *       rounded apart) differs by at most the product's rounding.
 * fold and update_running have one implementation on every ISA, and are
 * themselves the formula with torch's roundings: they need no reference.
 *
 * Not done: backward, channels-last layouts, momentum == None (cumulative
 * average) -- the Python layer passes momentum = 1 / num_batches_tracked then.
 */
#include <math.h>

#include "sb_internal.h"
#include "sb_isa_kernels.h"

typedef struct {
    float *mean, *var_sum;
    const float *in;
    sb_fmap map;
} stats_job;

/* Sum of x over one channel of every image, in `lanes` double partial sums
 * (x[i] goes to lane i % 4) combined pairwise at the end: independent
 * chains instead of one serial chain of double adds, whose latency made the
 * statistics the second-slowest part of a train-mode DenseLayer. */
static double channel_sum(const stats_job *j, int64_t c, float center, int squares)
{
    const int64_t hw = j->map.h * j->map.w;
    double lane[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t n = 0; n < j->map.n; n++) {
        const float *restrict x = j->in + n * j->map.batch_stride + c * hw;
        int64_t i = 0;
        if (squares) {
            /* (x - mean)^2 formed in float, summed in double, as torch */
            for (; i + 4 <= hw; i += 4)
                for (int l = 0; l < 4; l++) {
                    const float d = x[i + l] - center;
                    lane[l] += d * d;
                }
            for (; i < hw; i++) {
                const float d = x[i] - center;
                lane[i % 4] += d * d;
            }
        } else {
            for (; i + 4 <= hw; i += 4)
                for (int l = 0; l < 4; l++)
                    lane[l] += x[i + l];
            for (; i < hw; i++)
                lane[i % 4] += x[i];
        }
    }
    return (lane[0] + lane[2]) + (lane[1] + lane[3]);
}

static void stats_channels(void *ctx, int64_t begin, int64_t end)
{
    const stats_job *j = (const stats_job *)ctx;
    const double count = (double)(j->map.n * j->map.h * j->map.w);
    for (int64_t c = begin; c < end; c++) {
        /* two passes: the mean, rounded to float as torch does, then the
         * squared deviations from that float mean */
        const float m = (float)(channel_sum(j, c, 0.0f, 0) / count);
        j->mean[c] = m;
        /* torch keeps the sum of squares as a float (var_sum); fold and
         * update_running divide it by n and n - 1 in float, as torch */
        j->var_sum[c] = (float)channel_sum(j, c, m, 1);
    }
}

sb_status sb_batch_norm_stats_f32(float *restrict mean, float *restrict var_sum,
                                  const float *restrict in_data, const sb_fmap *in)
{
    if (in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(in) || in->n * in->h * in->w < 1)
        return SB_ERR_SHAPE;
    if (in->c == 0)
        return SB_OK;
    if (mean == NULL || var_sum == NULL || in_data == NULL)
        return SB_ERR_NULL;
    /* Channels are independent: split them over threads (each channel's sum
     * is still one thread's, in one order). */
    stats_job job = {mean, var_sum, in_data, *in};
    sb_parallel_items(in->c, 2 * in->n * in->h * in->w, stats_channels, &job);
    return SB_OK;
}

sb_status sb_batch_norm_fold_f32(float *restrict scale, float *restrict shift,
                                 const float *restrict mean, const float *restrict var,
                                 const float *restrict weight, const float *restrict bias,
                                 double eps, int64_t channels, int64_t batch_count)
{
    if (channels < 0 || batch_count < 0)
        return SB_ERR_SHAPE;
    if (eps < 0.0)  /* a NaN eps passes, and gives NaN, as in torch */
        return SB_ERR_ARGUMENT;
    if (channels == 0)
        return SB_OK;
    if (scale == NULL || shift == NULL || mean == NULL || var == NULL)
        return SB_ERR_NULL;
    const float eps_f = (float)eps, n_f = (float)batch_count;
    for (int64_t c = 0; c < channels; c++) {
        /* invstd as torch rounds it: the train path's InvStd<double> over
         * var_sum / n (a float division), rounded once to float; the eval
         * path's float
         * 1 / std::sqrt(running_var + (float)eps) (the two differ by up to
         * an ulp). scale and shift as
         * batch_norm_cpu_collect_linear_and_constant_terms computes them:
         * alpha = invstd * weight in float, beta = bias - mean * alpha,
         * which torch's AVX2/AVX-512 builds compile to one FMA (GCC's
         * default -ffp-contract=fast): fmaf rounds once on every CPU (in
         * software where there is no FMA unit; C channels, not elements).
         * With this (and stats' roundings in train mode), a BatchNorm on the
         * AVX2 path gives torch's bits (tests/test_layers_parity.py). */
        const float invstd = batch_count > 0 ? (float)(1.0 / sqrt((double)(var[c] / n_f) + eps))
                                             : 1.0f / sqrtf(var[c] + eps_f);
        const float w = weight != NULL ? weight[c] : 1.0f;
        const float b = bias != NULL ? bias[c] : 0.0f;
        const float s = invstd * w;
        scale[c] = s;
        shift[c] = fmaf(-mean[c], s, b);
    }
    return SB_OK;
}

sb_status sb_batch_norm_update_running_f32(float *restrict running_mean,
                                           float *restrict running_var,
                                           const float *restrict mean,
                                           const float *restrict var_sum,
                                           int64_t count, double momentum,
                                           int64_t channels)
{
    if (channels < 0)
        return SB_ERR_SHAPE;
    /* torch raises "Expected more than 1 value per channel when training"
     * before it gets here; var_sum / (n - 1) would divide by zero. */
    if (count < 2)
        return SB_ERR_SHAPE;
    /* Any momentum is accepted, as in torch (values outside [0, 1] are odd
     * but well defined). */
    if (channels == 0)
        return SB_OK;
    if (running_mean == NULL || running_var == NULL || mean == NULL || var_sum == NULL)
        return SB_ERR_NULL;

    /* The roundings of torch 2.13's CPU build, found by matching its running
     * statistics bit for bit (2 x 1,600 values, momentum at random, with
     * torch's AVX2 and its DEFAULT kernels alike): the momentum and
     * 1 - momentum in float; the mean as m * mean + keep * running_mean in
     * float, each product rounded; the unbiased variance var_sum / (n - 1)
     * in float; the variance update unbiased * m + keep * running_var with
     * the first product and the sum in double (the second product in
     * float), rounded once to float at the end. */
    const float m = (float)momentum;
    const float keep = 1.0f - m;
    const float n_minus_1 = (float)(count - 1);
    for (int64_t c = 0; c < channels; c++) {
        running_mean[c] = m * mean[c] + keep * running_mean[c];
        const float unbiased = var_sum[c] / n_minus_1;
        const float kept = keep * running_var[c];
        running_var[c] = (float)((double)unbiased * (double)m + (double)kept);
    }
    return SB_OK;
}

/* out = in * scale[c] + shift[c] (+ residual), then the optional ReLU,
 * plane by plane. out may be in (or the residual): nothing is restrict. */
typedef struct {
    float *out;
    const float *in, *scale, *shift, *residual;
    sb_fmap out_map, in_map, residual_map;
    int relu;
    int avx2; /* one FMA per element: the ISA as read once for the call */
} apply_job;

static void apply_planes(void *ctx, int64_t begin, int64_t end)
{
    const apply_job *j = (const apply_job *)ctx;
    const int64_t channels = j->in_map.c, hw = j->in_map.h * j->in_map.w;
    for (int64_t plane = begin; plane < end; plane++) {
        const int64_t n = plane / channels, c = plane % channels;
        const float *x = j->in + n * j->in_map.batch_stride + c * hw;
        float *y = j->out + n * j->out_map.batch_stride + c * hw;
        const float s = j->scale[c], t = j->shift[c];
#ifdef SB_HAVE_AVX2_KERNELS
        if (j->avx2) {
            /* x * s + t as one FMA, as torch's AVX2/AVX-512 kernels */
            const float *r = j->residual != NULL
                                 ? j->residual + n * j->residual_map.batch_stride + c * hw
                                 : NULL;
            sb_batch_norm_apply_plane_f32__avx2(y, x, r, hw, s, t, j->relu);
            continue;
        }
#endif
        /* The portable path rounds the product and the sum apart, as torch's
         * DEFAULT (no FMA) build does. */
        /* Separate loops so each is branch-free and vectorises. The ReLU is
         * torch's clamp_min(v, 0) = (v < 0 ? 0 : v): NaN fails the test and
         * is kept, and -0.0 stays -0.0, bit for bit. */
        if (j->residual != NULL) {
            const float *r = j->residual + n * j->residual_map.batch_stride + c * hw;
            for (int64_t i = 0; i < hw; i++) {
                const float v = (x[i] * s + t) + r[i];
                y[i] = v < 0.0f ? 0.0f : v;
            }
        } else if (j->relu) {
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

static int same_shape(const sb_fmap *a, const sb_fmap *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

sb_status sb_batch_norm_apply_f32(float *out_data, const sb_fmap *out,
                                  const float *in_data, const sb_fmap *in,
                                  const float *scale, const float *shift, int relu)
{
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || !same_shape(out, in))
        return SB_ERR_SHAPE;
    const int64_t hw = in->h * in->w;
    if (in->n == 0 || in->c == 0 || hw == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || scale == NULL || shift == NULL)
        return SB_ERR_NULL;
    apply_job job = {out_data, in_data, scale, shift, NULL, *out, *in, *in, relu,
                     sb_avx2_kernels_selected()};
    sb_parallel_items(in->n * in->c, hw, apply_planes, &job);
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
                                     const float *scale, const float *shift,
                                     const float *residual_data, const sb_fmap *residual)
{
    if (out == NULL || in == NULL || residual == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || !sb_fmap_ok(residual) ||
        !same_shape(out, in) || !same_shape(residual, in))
        return SB_ERR_SHAPE;
    const int64_t hw = in->h * in->w;
    if (in->n == 0 || in->c == 0 || hw == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || scale == NULL || shift == NULL ||
        residual_data == NULL)
        return SB_ERR_NULL;
    apply_job job = {out_data, in_data, scale, shift, residual_data, *out, *in, *residual, 1,
                     sb_avx2_kernels_selected()};
    sb_parallel_items(in->n * in->c, 2 * hw, apply_planes, &job);
    return SB_OK;
}

/* ---- references, for tests ------------------------------------------- */

/* Channel c's mean and var_sum as the header states them: the sum of x in
 * double, divided by the count and rounded to float; then the sum, in
 * double, of (x - mean)^2 formed in float, rounded to float. The argument
 * checks are sb_batch_norm_stats_f32's. */
sb_status sb_batch_norm_stats_f32__ref(float *restrict mean, float *restrict var_sum,
                                       const float *restrict in_data, const sb_fmap *in)
{
    if (in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(in) || in->n * in->h * in->w < 1)
        return SB_ERR_SHAPE;
    if (in->c == 0)
        return SB_OK;
    if (mean == NULL || var_sum == NULL || in_data == NULL)
        return SB_ERR_NULL;
    const int64_t hw = in->h * in->w;
    const double count = (double)(in->n * hw);
    for (int64_t c = 0; c < in->c; c++) {
        double sum = 0.0;
        for (int64_t n = 0; n < in->n; n++)
            for (int64_t i = 0; i < hw; i++)
                sum += in_data[n * in->batch_stride + c * hw + i];
        const float m = (float)(sum / count);
        double squares = 0.0;
        for (int64_t n = 0; n < in->n; n++)
            for (int64_t i = 0; i < hw; i++) {
                const float d = in_data[n * in->batch_stride + c * hw + i] - m;
                const float d2 = d * d;
                squares += d2;
            }
        mean[c] = m;
        var_sum[c] = (float)squares;
    }
    return SB_OK;
}

/* out = fmaf(in, scale[c], shift[c]), then torch.relu's clamp_min(v, 0)
 * (v < 0 ? 0 : v: NaN and -0.0 pass) when relu. out may be in. The
 * argument checks are sb_batch_norm_apply_f32's. */
sb_status sb_batch_norm_apply_f32__ref(float *out_data, const sb_fmap *out,
                                       const float *in_data, const sb_fmap *in,
                                       const float *scale, const float *shift, int relu)
{
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || !same_shape(out, in))
        return SB_ERR_SHAPE;
    const int64_t hw = in->h * in->w;
    if (in->n == 0 || in->c == 0 || hw == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || scale == NULL || shift == NULL)
        return SB_ERR_NULL;
    for (int64_t n = 0; n < in->n; n++)
        for (int64_t c = 0; c < in->c; c++)
            for (int64_t i = 0; i < hw; i++) {
                float v = fmaf(in_data[n * in->batch_stride + c * hw + i], scale[c], shift[c]);
                if (relu)
                    v = v < 0.0f ? 0.0f : v;
                out_data[n * out->batch_stride + c * hw + i] = v;
            }
    return SB_OK;
}

/* out = relu(fmaf(in, scale[c], shift[c]) + residual): the BatchNorm result
 * rounded before the residual is added, as torch's bn(x) + residual. out
 * may be in. The argument checks are sb_batch_norm_add_relu_f32's. */
sb_status sb_batch_norm_add_relu_f32__ref(float *out_data, const sb_fmap *out,
                                          const float *in_data, const sb_fmap *in,
                                          const float *scale, const float *shift,
                                          const float *residual_data, const sb_fmap *residual)
{
    if (out == NULL || in == NULL || residual == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || !sb_fmap_ok(residual) ||
        !same_shape(out, in) || !same_shape(residual, in))
        return SB_ERR_SHAPE;
    const int64_t hw = in->h * in->w;
    if (in->n == 0 || in->c == 0 || hw == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || scale == NULL || shift == NULL ||
        residual_data == NULL)
        return SB_ERR_NULL;
    for (int64_t n = 0; n < in->n; n++)
        for (int64_t c = 0; c < in->c; c++)
            for (int64_t i = 0; i < hw; i++) {
                const float bn =
                    fmaf(in_data[n * in->batch_stride + c * hw + i], scale[c], shift[c]);
                const float v = bn + residual_data[n * residual->batch_stride + c * hw + i];
                out_data[n * out->batch_stride + c * hw + i] = v < 0.0f ? 0.0f : v;
            }
    return SB_OK;
}

/*
 * elementwise_f32.c -- the element-wise ops of the blocks:
 *   sb_relu_f32           torch.relu
 *   sb_sigmoid_f32        torch.sigmoid
 *   sb_add_relu_f32       torch.relu(a + b)   (ResidualBlock: out + residual, relu)
 *   sb_channel_scale_f32  x * y with y of shape N x C x 1 x 1 (SEAttention)
 *
 * ReLU is torch's clamp_min(x, 0), which on CPU is `isnan(x) ? x : max(x, 0)`
 * with std::max keeping its first argument on ties: so NaN stays NaN and
 * -0.0 stays -0.0. `x < 0 ? 0 : x` gives exactly that and is branch-free.
 *
 * Sigmoid is 1 / (1 + expf(-x)) in float. torch's vectorised CPU sigmoid uses
 * its own exp and agrees to ~1 ulp, not bit for bit. Large |x| saturate
 * cleanly: expf overflows to inf and 1 / inf is 0; NaN stays NaN.
 *
 * All of these may run in place (out == in, out == a or b), so the aliased
 * pointers are not restrict-qualified; GCC then vectorises behind a run-time
 * overlap check. Not done: broadcasting beyond channel_scale's N x C.
 */
#include <math.h>

#include "sb_internal.h"

sb_status sb_relu_f32(float *out, const float *in, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    for (int64_t i = 0; i < count; i++) {
        const float v = in[i];
        out[i] = v < 0.0f ? 0.0f : v;
    }
    return SB_OK;
}

sb_status sb_sigmoid_f32(float *out, const float *in, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    for (int64_t i = 0; i < count; i++)
        out[i] = 1.0f / (1.0f + expf(-in[i]));
    return SB_OK;
}

sb_status sb_add_relu_f32(float *out, const float *a, const float *b, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || a == NULL || b == NULL)
        return SB_ERR_NULL;
    for (int64_t i = 0; i < count; i++) {
        /* Round the sum to float first, as torch's separate add does. */
        const float v = a[i] + b[i];
        out[i] = v < 0.0f ? 0.0f : v;
    }
    return SB_OK;
}

/* scale: N*C floats, row n holding image n's per-channel factors. */
sb_status sb_channel_scale_f32(float *out_data, const sb_fmap *out,
                               const float *in_data, const sb_fmap *in,
                               const float *restrict scale)
{
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || out->n != in->n || out->c != in->c ||
        out->h != in->h || out->w != in->w)
        return SB_ERR_SHAPE;
    const int64_t hw = in->h * in->w;
    if (in->n == 0 || in->c == 0 || hw == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || scale == NULL)
        return SB_ERR_NULL;
    for (int64_t n = 0; n < in->n; n++) {
        for (int64_t c = 0; c < in->c; c++) {
            const float s = scale[n * in->c + c];
            const float *x = in_data + n * in->batch_stride + c * hw;
            float *y = out_data + n * out->batch_stride + c * hw;
            for (int64_t i = 0; i < hw; i++)
                y[i] = x[i] * s;
        }
    }
    return SB_OK;
}

/*
 * conv2d_f32.c -- 2-D convolution, matching torch.nn.functional.conv2d
 * (float32, NCHW, zero padding, stride, dilation, groups, optional bias).
 *
 *   out[n, oc, oh, ow] = bias[oc] + sum_{ci, kh, kw}
 *       weight[oc, ci, kh, kw] * in[n, g*Cig + ci, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]
 *   g = oc / Cog, Cig = C_in / G, Cog = C_out / G; taps outside the input read 0.
 *
 * Layout: in / out are sb_fmap (each image contiguous C*H*W, images
 * batch_stride apart, so DenseBlock can read and write channel slices of a
 * larger buffer); weight is torch's contiguous C_out x Cig x KH x KW.
 *
 * This file holds the pieces of the convolution API that are not the fast
 * path itself:
 *   - sb_conv2d_out_size, torch's output-size formula, which the glue also
 *     uses to validate shapes before calling any kernel;
 *   - sb_conv2d_f32, the one-call, single-thread convenience entry: it packs
 *     the weights (with the bias) into the start of the caller's workspace
 *     and runs the packed-GEMM path of conv2d_packed_f32.c on the calling
 *     thread, with no fusion. The layers do not use it: they keep packed
 *     weights cached across calls and call sb_conv2d_f32_packed directly,
 *     with fusion and threads. Repacking costs C_out*K stores per call, small
 *     beside the C_out*K*OH*OW multiply-adds of the convolution;
 *   - sb_conv2d_f32__ref, the direct 7-loop reference the tests compare
 *     every path with.
 *
 * Padding taps are real zeros in the packed path's staged input, so a NaN /
 * inf weight makes 0 * w = NaN even where the window hangs over the border
 * (as torch's im2col path does; oneDNN's direct kernels skip those taps
 * instead). The reference skips them, so tests put NaN only in the input.
 *
 * Not done: padding modes other than zeros, transposed convolution,
 * Winograd/FFT. The output must not overlap the input.
 */
#include "sb_internal.h"

int64_t sb_conv2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation)
{
    /* Nonsense parameters give 0 so callers treat them as "too small"
     * instead of dividing by zero. */
    if (stride <= 0 || kernel <= 0 || dilation <= 0 || pad < 0 || in < 0)
        return 0;
    /* beyond SB_CONV_PARAM_MAX, dilation * (kernel - 1) could overflow */
    if (stride > SB_CONV_PARAM_MAX || kernel > SB_CONV_PARAM_MAX ||
        dilation > SB_CONV_PARAM_MAX || pad > SB_CONV_PARAM_MAX || in > INT64_MAX / 4)
        return 0;
    const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
    /* C division truncates toward zero; torch floors. span < 0 means the
     * dilated kernel does not fit, which must come out as <= 0. */
    if (span < 0)
        return 0;
    return span / stride + 1;
}

/* Every check shared by sb_conv2d_f32 and the reference. Stricter than the
 * packed path's own check in one respect: an output of size 0 because the
 * dilated kernel does not fit is an error here (torch raises), not a no-op. */
static sb_status check_conv_args(const sb_fmap *out, const sb_fmap *in,
                                 const sb_conv2d_params *p)
{
    if (out == NULL || in == NULL || p == NULL)
        return SB_ERR_NULL;
    if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->dilation_h <= 0 || p->dilation_w <= 0 || p->pad_h < 0 || p->pad_w < 0 ||
        p->groups <= 0)
        return SB_ERR_ARGUMENT;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || out->n != in->n)
        return SB_ERR_SHAPE;
    if (in->c % p->groups != 0 || out->c % p->groups != 0)
        return SB_ERR_SHAPE;
    const int64_t oh = sb_conv2d_out_size(in->h, p->kernel_h, p->stride_h, p->pad_h, p->dilation_h);
    const int64_t ow = sb_conv2d_out_size(in->w, p->kernel_w, p->stride_w, p->pad_w, p->dilation_w);
    if (oh <= 0 || ow <= 0 || out->h != oh || out->w != ow)
        return SB_ERR_SHAPE;
    return SB_OK;
}

/* Floats of the packed weights, the first part of sb_conv2d_f32's workspace. */
static int64_t packed_weights_floats(const sb_fmap *out, const sb_fmap *in,
                                     const sb_conv2d_params *p)
{
    return sb_conv2d_f32_packed_weights_floats(out->c, in->c / p->groups, p->kernel_h,
                                               p->kernel_w, p->groups);
}

int64_t sb_conv2d_f32_workspace_floats(const sb_fmap *out, const sb_fmap *in,
                                       const sb_conv2d_params *params)
{
    /* Invalid arguments need no scratch; sb_conv2d_f32 will reject them. */
    if (check_conv_args(out, in, params) != SB_OK)
        return 0;
    const int64_t packed_path = sb_conv2d_f32_packed_workspace_floats(out, in, params, NULL, 1);
    if (packed_path == 0) /* too large: sb_conv2d_f32 returns SB_ERR_SHAPE */
        return 0;
    return sat_add64(packed_weights_floats(out, in, params), packed_path);
}

sb_status sb_conv2d_f32(float *restrict out_data, const sb_fmap *out,
                        const float *restrict in_data, const sb_fmap *in,
                        const float *restrict weight, const float *restrict bias,
                        const sb_conv2d_params *params, float *restrict workspace)
{
    sb_status st = check_conv_args(out, in, params);
    if (st != SB_OK)
        return st;
    const sb_conv2d_params *p = params;
    const int64_t cig = in->c / p->groups;
    if (out->n == 0 || out->c == 0)
        return SB_OK;
    /* The weights are only read when there is something to multiply (no
     * input channels: the output is the bias, as in torch). */
    if (out_data == NULL || in_data == NULL || workspace == NULL || (cig > 0 && weight == NULL))
        return SB_ERR_NULL;

    /* workspace = [packed weights | packed path's scratch for one thread] */
    float *packed = workspace;
    float *scratch = workspace + packed_weights_floats(out, in, p);
    st = sb_conv2d_f32_pack_weights(packed, weight, bias, NULL, NULL, out->c, cig,
                                    p->kernel_h, p->kernel_w, p->groups);
    if (st != SB_OK)
        return st;
    return sb_conv2d_f32_packed(out_data, out, in_data, in, packed, p, NULL, scratch, 1);
}

/* Direct 7-loop convolution with an explicit bounds test per tap. For tests. */
sb_status sb_conv2d_f32__ref(float *restrict out_data, const sb_fmap *out,
                             const float *restrict in_data, const sb_fmap *in,
                             const float *restrict weight, const float *restrict bias,
                             const sb_conv2d_params *params)
{
    sb_status st = check_conv_args(out, in, params);
    if (st != SB_OK)
        return st;
    const sb_conv2d_params *p = params;
    const int64_t cig = in->c / p->groups, cog = out->c / p->groups;
    if (out->n == 0 || out->c == 0)
        return SB_OK;
    if (out_data == NULL || (cig > 0 && (in_data == NULL || weight == NULL)))
        return SB_ERR_NULL;

    for (int64_t n = 0; n < out->n; n++) {
        for (int64_t oc = 0; oc < out->c; oc++) {
            const int64_t g = oc / cog;
            for (int64_t y = 0; y < out->h; y++) {
                for (int64_t x = 0; x < out->w; x++) {
                    float sum = 0.0f;
                    for (int64_t ci = 0; ci < cig; ci++) {
                        for (int64_t kh = 0; kh < p->kernel_h; kh++) {
                            const int64_t iy = y * p->stride_h - p->pad_h + kh * p->dilation_h;
                            if (iy < 0 || iy >= in->h)
                                continue;
                            for (int64_t kw = 0; kw < p->kernel_w; kw++) {
                                const int64_t ix = x * p->stride_w - p->pad_w + kw * p->dilation_w;
                                if (ix < 0 || ix >= in->w)
                                    continue;
                                const float v = in_data[n * in->batch_stride +
                                                        ((g * cig + ci) * in->h + iy) * in->w + ix];
                                const float wv = weight[((oc * cig + ci) * p->kernel_h + kh) *
                                                        p->kernel_w + kw];
                                sum += v * wv;
                            }
                        }
                    }
                    if (bias != NULL)
                        sum += bias[oc];
                    out_data[n * out->batch_stride + (oc * out->h + y) * out->w + x] = sum;
                }
            }
        }
    }
    return SB_OK;
}

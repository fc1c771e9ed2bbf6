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
 * Method: im2col + GEMM, per image and group. The im2col matrix is
 * K x (OH*OW) with K = Cig*KH*KW, row (ci, kh, kw), column (oh, ow); the
 * weights of group g are already the Cog x K row-major matrix A, so
 *   out_image_group (Cog x OH*OW) = A * cols
 * is written by sb_gemm_f32 straight into the output (row stride OH*OW).
 * A 1x1 / stride 1 / pad 0 convolution skips im2col: the input image slice is
 * itself the K x (H*W) matrix. Bias is added in a second pass over the output.
 *
 * Padding taps are real zeros in the column matrix, so a NaN / inf weight
 * makes 0 * w = NaN even where the window hangs over the border (as torch's
 * im2col path does; oneDNN's direct kernels skip those taps instead). The
 * reference skips them, so tests put NaN only in the input.
 *
 * Not done: padding modes other than zeros, transposed convolution,
 * Winograd/FFT, and threading. The output must not overlap the input.
 */
#include "skipblocks.h"

int64_t sb_conv2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation)
{
    /* Nonsense parameters give 0 so callers treat them as "too small"
     * instead of dividing by zero. */
    if (stride <= 0 || kernel <= 0 || dilation <= 0 || pad < 0 || in < 0)
        return 0;
    const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
    /* C division truncates toward zero; torch floors. span < 0 means the
     * dilated kernel does not fit, which must come out as <= 0. */
    if (span < 0)
        return 0;
    return span / stride + 1;
}

/* A map's sizes are usable: nothing negative, and images do not overlap.
 * batch_stride is irrelevant (and may be anything numpy reports for a
 * length-1 axis) when there is at most one image. */
static int fmap_ok(const sb_fmap *f)
{
    if (f->n < 0 || f->c < 0 || f->h < 0 || f->w < 0)
        return 0;
    return f->n <= 1 || f->batch_stride >= f->c * f->h * f->w;
}

static int is_pointwise(const sb_conv2d_params *p)
{
    return p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 &&
           p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0;
}

/* Every check shared by the fast kernel and the reference. */
static sb_status check_conv_args(const sb_fmap *out, const sb_fmap *in,
                                 const sb_conv2d_params *p)
{
    if (out == NULL || in == NULL || p == NULL)
        return SB_ERR_NULL;
    if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->dilation_h <= 0 || p->dilation_w <= 0 || p->pad_h < 0 || p->pad_w < 0 ||
        p->groups <= 0)
        return SB_ERR_ARGUMENT;
    if (!fmap_ok(out) || !fmap_ok(in) || out->n != in->n)
        return SB_ERR_SHAPE;
    if (in->c % p->groups != 0 || out->c % p->groups != 0)
        return SB_ERR_SHAPE;
    const int64_t oh = sb_conv2d_out_size(in->h, p->kernel_h, p->stride_h, p->pad_h, p->dilation_h);
    const int64_t ow = sb_conv2d_out_size(in->w, p->kernel_w, p->stride_w, p->pad_w, p->dilation_w);
    if (oh <= 0 || ow <= 0 || out->h != oh || out->w != ow)
        return SB_ERR_SHAPE;
    return SB_OK;
}

int64_t sb_conv2d_f32_workspace_floats(const sb_fmap *out, const sb_fmap *in,
                                       const sb_conv2d_params *params)
{
    /* Invalid arguments need no scratch; sb_conv2d_f32 will reject them. */
    if (check_conv_args(out, in, params) != SB_OK || is_pointwise(params))
        return 0;
    return (in->c / params->groups) * params->kernel_h * params->kernel_w *
           out->h * out->w;
}

/*
 * First and one-past-last output index o in [0, out_len) whose input index
 * o*stride + off lies in [0, in_len). Lets im2col copy the valid middle of a
 * row without a bounds test per element and zero-fill the two ends.
 */
static void valid_range(int64_t off, int64_t stride, int64_t in_len, int64_t out_len,
                        int64_t *lo, int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;    /* ceil(-off / stride) */
    int64_t b = in_len - off <= 0 ? 0 : (in_len - off + stride - 1) / stride;
    if (a > out_len) a = out_len;
    if (b > out_len) b = out_len;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* Build the Cig*KH*KW x OH*OW column matrix of one image and group.
 * img points at channel 0 of the group. */
static void im2col(float *restrict cols, const float *restrict img,
                   int64_t cig, int64_t h, int64_t w, int64_t oh, int64_t ow,
                   const sb_conv2d_params *p)
{
    const int64_t sh = p->stride_h, sw = p->stride_w;
    for (int64_t ci = 0; ci < cig; ci++) {
        const float *restrict plane = img + ci * h * w;
        for (int64_t kh = 0; kh < p->kernel_h; kh++) {
            const int64_t off_h = kh * p->dilation_h - p->pad_h;
            for (int64_t kw = 0; kw < p->kernel_w; kw++) {
                const int64_t off_w = kw * p->dilation_w - p->pad_w;
                int64_t lo, hi;
                valid_range(off_w, sw, w, ow, &lo, &hi);
                for (int64_t y = 0; y < oh; y++) {
                    const int64_t iy = y * sh + off_h;
                    float *restrict dst = cols + y * ow;
                    if (iy < 0 || iy >= h) {
                        for (int64_t x = 0; x < ow; x++)
                            dst[x] = 0.0f;
                        continue;
                    }
                    const float *restrict src = plane + iy * w + off_w;
                    for (int64_t x = 0; x < lo; x++)
                        dst[x] = 0.0f;
                    if (sw == 1) {
                        for (int64_t x = lo; x < hi; x++)   /* a plain copy */
                            dst[x] = src[x];
                    } else {
                        for (int64_t x = lo; x < hi; x++)
                            dst[x] = src[x * sw];
                    }
                    for (int64_t x = hi; x < ow; x++)
                        dst[x] = 0.0f;
                }
                cols += oh * ow;
            }
        }
    }
}

sb_status sb_conv2d_f32(float *restrict out_data, const sb_fmap *out,
                        const float *restrict in_data, const sb_fmap *in,
                        const float *restrict weight, const float *restrict bias,
                        const sb_conv2d_params *params, float *restrict workspace)
{
    sb_status st = check_conv_args(out, in, params);
    if (st != SB_OK)
        return st;
    const int64_t groups = params->groups;
    const int64_t cig = in->c / groups, cog = out->c / groups;
    const int64_t k = cig * params->kernel_h * params->kernel_w;
    const int64_t hw_in = in->h * in->w, hw_out = out->h * out->w;
    const int pointwise = is_pointwise(params);

    if (out->n == 0 || out->c == 0)
        return SB_OK;
    if (out_data == NULL || (k > 0 && (in_data == NULL || weight == NULL)))
        return SB_ERR_NULL;
    if (!pointwise && k > 0 && workspace == NULL)
        return SB_ERR_NULL;

    for (int64_t n = 0; n < out->n; n++) {
        const float *img = in_data + n * in->batch_stride;
        float *dst = out_data + n * out->batch_stride;
        for (int64_t g = 0; g < groups; g++) {
            const float *a = weight + g * cog * k;
            const float *b;
            if (pointwise) {
                b = img + g * cig * hw_in;      /* already K x (H*W), H*W == OH*OW */
            } else {
                if (k > 0)
                    im2col(workspace, img + g * cig * hw_in, cig, in->h, in->w,
                           out->h, out->w, params);
                b = workspace;
            }
            /* k == 0 (no input channels) makes the GEMM write zeros: the
             * output is then just the bias, as in torch. */
            st = sb_gemm_f32(dst + g * cog * hw_out, a, b, cog, hw_out, k,
                             k, hw_out, hw_out, 0);
            if (st != SB_OK)
                return st;
        }
        if (bias != NULL) {
            for (int64_t oc = 0; oc < out->c; oc++) {
                const float bv = bias[oc];
                float *restrict plane = dst + oc * hw_out;
                for (int64_t i = 0; i < hw_out; i++)
                    plane[i] += bv;
            }
        }
    }
    return SB_OK;
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

/*
 * max_pool2d_f32.c -- 2-D max pooling, matching
 * torch.nn.functional.max_pool2d (float32, NCHW, forward, no indices),
 * plus sb_pool2d_out_size, torch's pooling_output_shape shared with any
 * other pooling op.
 *
 *   out[n, c, oh, ow] = max over kh, kw of in[n, c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]
 *
 * Padding behaves as -inf (padded taps never win). NaN propagates like
 * torch's CPU kernel (`if (val > max || isnan(val)) max = val`): once a NaN
 * is seen it is kept, since no later `val > NaN` holds. A window with no
 * input tap (impossible under torch's pad <= kernel/2 rule, which the glue
 * enforces) yields -inf, torch's starting value, rather than reading out of
 * bounds. ceil_mode is not a kernel parameter: out->h / out->w must equal
 * the floor or the ceil size, and the glue picks which.
 *
 * sb_max_pool2d_f32__ref (at the end) is the formula above as a plain loop,
 * one bounds test per tap, single-threaded; tests require the fast kernel
 * to give its bits exactly (a maximum involves no rounding).
 *
 * Not done: return_indices, channels-last, 1-D / 3-D pooling.
 */
#include <math.h>

#include "sb_internal.h"

int64_t sb_pool2d_out_size(int64_t in, int64_t kernel, int64_t stride,
                           int64_t pad, int64_t dilation, int ceil_mode)
{
    if (stride <= 0 || kernel <= 0 || dilation <= 0 || pad < 0 || in < 0 ||
        stride > SB_POOL_PARAM_MAX || kernel > SB_POOL_PARAM_MAX ||
        dilation > SB_POOL_PARAM_MAX || pad > SB_POOL_PARAM_MAX)
        return 0;
    const int64_t num = in + 2 * pad - dilation * (kernel - 1) - 1 +
                        (ceil_mode ? stride - 1 : 0);
    /* torch's div_rtn floors; num < 0 means the window does not fit. */
    if (num < 0)
        return 0;
    int64_t out = num / stride + 1;
    /* The last window must start inside the input or the left padding. */
    if (ceil_mode && (out - 1) * stride >= in + pad)
        out--;
    return out;
}

/* out_len must be torch's size for one of the two rounding modes. */
static int out_len_ok(int64_t out_len, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    return out_len > 0 && (out_len == sb_pool2d_out_size(in, k, s, p, d, 0) ||
                           out_len == sb_pool2d_out_size(in, k, s, p, d, 1));
}

/* First tap index t >= 0 with start + t*d >= 0, and the tap count that keeps
 * start + t*d < len: the window clipped to the input, on one axis. */
static void clip_window(int64_t start, int64_t k, int64_t d, int64_t len,
                        int64_t *t_lo, int64_t *t_hi)
{
    int64_t lo = start >= 0 ? 0 : (-start + d - 1) / d;
    int64_t hi = start >= len ? 0 : (len - start + d - 1) / d;
    if (hi > k) hi = k;
    if (lo > hi) lo = hi;
    *t_lo = lo;
    *t_hi = hi;
}

/* Everything a plane needs; planes are independent, split over threads. */
typedef struct {
    float *out_data;
    const float *in_data;
    const sb_fmap *out, *in;
    const sb_pool2d_params *p;
    int64_t x_a, x_b;
} max_pool_job;

static void max_pool_planes(void *ctx, int64_t begin, int64_t end)
{
    const max_pool_job *j = (const max_pool_job *)ctx;
    const sb_fmap *out = j->out, *in = j->in;
    const sb_pool2d_params *p = j->p;
    const int64_t x_a = j->x_a, x_b = j->x_b;
    const int64_t hw_in = in->h * in->w, hw_out = out->h * out->w;
    for (int64_t index = begin; index < end; index++) {
        const int64_t n = index / out->c, c = index % out->c;
        const float *restrict plane = j->in_data + n * in->batch_stride + c * hw_in;
        float *restrict dst = j->out_data + n * out->batch_stride + c * hw_out;
        for (int64_t y = 0; y < out->h; y++) {
            const int64_t y0 = y * p->stride_h - p->pad_h;
            int64_t ky_lo, ky_hi;
            clip_window(y0, p->kernel_h, p->dilation_h, in->h, &ky_lo, &ky_hi);
            float *restrict drow = dst + y * out->w;
            for (int64_t x = 0; x < out->w; x++) {
                if (x == x_a && x_b > x_a) {
                    x = x_b - 1; /* the interior run is done below */
                    continue;
                }
                const int64_t x0 = x * p->stride_w - p->pad_w;
                int64_t kx_lo, kx_hi;
                clip_window(x0, p->kernel_w, p->dilation_w, in->w, &kx_lo, &kx_hi);
                float m = -INFINITY;
                for (int64_t ky = ky_lo; ky < ky_hi; ky++) {
                    const float *restrict row = plane + (y0 + ky * p->dilation_h) * in->w;
                    for (int64_t kx = kx_lo; kx < kx_hi; kx++) {
                        const float v = row[x0 + kx * p->dilation_w];
                        if (v > m || v != v)  /* v != v: isnan, as torch */
                            m = v;
                    }
                }
                drow[x] = m;
            }
            if (x_b <= x_a)
                continue;
            for (int64_t x = x_a; x < x_b; x++)
                drow[x] = -INFINITY;
            for (int64_t ky = ky_lo; ky < ky_hi; ky++) {
                const float *restrict row = plane + (y0 + ky * p->dilation_h) * in->w;
                for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                    const float *restrict src =
                        row + x_a * p->stride_w - p->pad_w + kx * p->dilation_w;
                    for (int64_t x = 0; x < x_b - x_a; x++) {
                        const float v = src[x * p->stride_w], m = drow[x_a + x];
                        drow[x_a + x] = (v > m || v != v) ? v : m;
                    }
                }
            }
        }
    }
}

sb_status sb_max_pool2d_f32(float *restrict out_data, const sb_fmap *out,
                            const float *restrict in_data, const sb_fmap *in,
                            const sb_pool2d_params *params)
{
    if (out == NULL || in == NULL || params == NULL)
        return SB_ERR_NULL;
    const sb_pool2d_params *p = params;
    if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->dilation_h <= 0 || p->dilation_w <= 0 || p->pad_h < 0 || p->pad_w < 0 ||
        p->kernel_h > SB_POOL_PARAM_MAX || p->kernel_w > SB_POOL_PARAM_MAX ||
        p->stride_h > SB_POOL_PARAM_MAX || p->stride_w > SB_POOL_PARAM_MAX ||
        p->dilation_h > SB_POOL_PARAM_MAX || p->dilation_w > SB_POOL_PARAM_MAX ||
        p->pad_h > SB_POOL_PARAM_MAX || p->pad_w > SB_POOL_PARAM_MAX)
        return SB_ERR_ARGUMENT;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || out->n != in->n || out->c != in->c)
        return SB_ERR_SHAPE;
    if (!out_len_ok(out->h, in->h, p->kernel_h, p->stride_h, p->pad_h, p->dilation_h) ||
        !out_len_ok(out->w, in->w, p->kernel_w, p->stride_w, p->pad_w, p->dilation_w))
        return SB_ERR_SHAPE;
    if (out->n == 0 || out->c == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL)
        return SB_ERR_NULL;

    const int64_t hw_in = in->h * in->w, hw_out = out->h * out->w;
    /* Output columns [x_a, x_b) have every tap of their window inside the
     * row: they run tap by tap over the whole run (no bounds tests, no
     * unpredictable branch), the others one by one with clipped windows.
     * Both visit a window's taps in torch's order (ky, then kx), and keep a
     * value only if it is greater or NaN (torch: val > max || isnan(val)),
     * so the result is torch's bit for bit, NaN and signed zeros included. */
    const int64_t span_w = (p->kernel_w - 1) * p->dilation_w;
    int64_t x_a = (p->pad_w + p->stride_w - 1) / p->stride_w;
    int64_t x_b = in->w - 1 - span_w + p->pad_w < 0 ? 0
                : (in->w - 1 - span_w + p->pad_w) / p->stride_w + 1;
    if (x_a > out->w) x_a = out->w;
    if (x_b > out->w) x_b = out->w;
    if (x_b < x_a) x_b = x_a;
    max_pool_job job = {out_data, in_data, out, in, p, x_a, x_b};
    sb_parallel_items(out->n * out->c,
                      sat_add64(hw_in, sat_mul64(hw_out, p->kernel_h * p->kernel_w)),
                      max_pool_planes, &job);
    return SB_OK;
}

/* The reference for tests: every output cell scans its window in torch's
 * order (ky, then kx), skips taps outside the input (padding is -inf, so it
 * never wins) and keeps a tap that is greater or NaN, starting from -inf.
 * The argument checks are sb_max_pool2d_f32's, in the same order, so both
 * return the same status. */
sb_status sb_max_pool2d_f32__ref(float *restrict out_data, const sb_fmap *out,
                                 const float *restrict in_data, const sb_fmap *in,
                                 const sb_pool2d_params *params)
{
    if (out == NULL || in == NULL || params == NULL)
        return SB_ERR_NULL;
    const sb_pool2d_params *p = params;
    if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->dilation_h <= 0 || p->dilation_w <= 0 || p->pad_h < 0 || p->pad_w < 0 ||
        p->kernel_h > SB_POOL_PARAM_MAX || p->kernel_w > SB_POOL_PARAM_MAX ||
        p->stride_h > SB_POOL_PARAM_MAX || p->stride_w > SB_POOL_PARAM_MAX ||
        p->dilation_h > SB_POOL_PARAM_MAX || p->dilation_w > SB_POOL_PARAM_MAX ||
        p->pad_h > SB_POOL_PARAM_MAX || p->pad_w > SB_POOL_PARAM_MAX)
        return SB_ERR_ARGUMENT;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || out->n != in->n || out->c != in->c)
        return SB_ERR_SHAPE;
    /* out_len_ok's rule, written out: torch's floor or ceil size, >= 1 */
    if (out->h <= 0 || out->w <= 0 ||
        (out->h != sb_pool2d_out_size(in->h, p->kernel_h, p->stride_h, p->pad_h,
                                      p->dilation_h, 0) &&
         out->h != sb_pool2d_out_size(in->h, p->kernel_h, p->stride_h, p->pad_h,
                                      p->dilation_h, 1)) ||
        (out->w != sb_pool2d_out_size(in->w, p->kernel_w, p->stride_w, p->pad_w,
                                      p->dilation_w, 0) &&
         out->w != sb_pool2d_out_size(in->w, p->kernel_w, p->stride_w, p->pad_w,
                                      p->dilation_w, 1)))
        return SB_ERR_SHAPE;
    if (out->n == 0 || out->c == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL)
        return SB_ERR_NULL;

    for (int64_t n = 0; n < out->n; n++)
        for (int64_t c = 0; c < out->c; c++)
            for (int64_t oy = 0; oy < out->h; oy++)
                for (int64_t ox = 0; ox < out->w; ox++) {
                    float m = -INFINITY;
                    for (int64_t ky = 0; ky < p->kernel_h; ky++) {
                        const int64_t iy = oy * p->stride_h - p->pad_h + ky * p->dilation_h;
                        if (iy < 0 || iy >= in->h)
                            continue;
                        for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                            const int64_t ix = ox * p->stride_w - p->pad_w + kx * p->dilation_w;
                            if (ix < 0 || ix >= in->w)
                                continue;
                            const float v =
                                in_data[n * in->batch_stride + (c * in->h + iy) * in->w + ix];
                            if (v > m || isnan(v))
                                m = v;
                        }
                    }
                    out_data[n * out->batch_stride + (c * out->h + oy) * out->w + ox] = m;
                }
    return SB_OK;
}

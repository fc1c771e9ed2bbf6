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
 * Sigmoid is 1 / (1 + expf(-x)) in float on the scalar path, and the AVX2
 * kernel of sigmoid_f32__avx2.c (its own vectorised exp) when that ISA is
 * selected. torch's vectorised CPU sigmoid uses its own exp too: all agree
 * to a few ulp, not bit for bit. Large |x| saturate cleanly (exp overflows
 * to inf and 1 / inf is 0); NaN stays NaN.
 *
 * Big arrays are split over the thread pool by element range (planes for
 * channel_scale): each output is computed the same way whatever the split.
 *
 * All of these may run in place (out == in, out == a or b), so the aliased
 * pointers are not restrict-qualified; GCC then vectorises behind a run-time
 * overlap check.
 *
 * Each has a reference for tests (at the end): the formula as one plain
 * single-threaded loop. relu, add_relu and channel_scale involve at most one
 * rounding, so every path must give the reference's bits; sigmoid's
 * reference is the scalar path's expression (libm's expf), which the AVX2
 * kernel matches to a few ulp.
 *
 * Not done: broadcasting beyond channel_scale's N x C.
 */
#include <math.h>

#include "sb_internal.h"
#include "sb_isa_kernels.h"

/* Arguments of the element-wise loops, split over threads by range. */
typedef struct {
    float *out;
    const float *a, *b;
    int avx2; /* run the AVX2 variants: the ISA as read once for the call */
} elementwise_job;

static void relu_range(void *ctx, int64_t begin, int64_t end)
{
    const elementwise_job *j = (const elementwise_job *)ctx;
    for (int64_t i = begin; i < end; i++) {
        const float v = j->a[i];
        j->out[i] = v < 0.0f ? 0.0f : v;
    }
}

sb_status sb_relu_f32(float *out, const float *in, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    elementwise_job job = {out, in, NULL, 0};
    sb_parallel_items(count, 1, relu_range, &job);
    return SB_OK;
}

static void sigmoid_range(void *ctx, int64_t begin, int64_t end)
{
    const elementwise_job *j = (const elementwise_job *)ctx;
#ifdef SB_HAVE_AVX2_KERNELS
    if (j->avx2) {
        sb_sigmoid_f32__avx2(j->out + begin, j->a + begin, end - begin);
        return;
    }
#endif
    for (int64_t i = begin; i < end; i++)
        j->out[i] = 1.0f / (1.0f + expf(-j->a[i]));
}

sb_status sb_sigmoid_f32(float *out, const float *in, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    elementwise_job job = {out, in, NULL, sb_avx2_kernels_selected()};
    sb_parallel_items(count, 8, sigmoid_range, &job); /* exp: ~8 floats' worth of work */
    return SB_OK;
}

static void add_relu_range(void *ctx, int64_t begin, int64_t end)
{
    const elementwise_job *j = (const elementwise_job *)ctx;
    for (int64_t i = begin; i < end; i++) {
        /* Round the sum to float first, as torch's separate add does. */
        const float v = j->a[i] + j->b[i];
        j->out[i] = v < 0.0f ? 0.0f : v;
    }
}

sb_status sb_add_relu_f32(float *out, const float *a, const float *b, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || a == NULL || b == NULL)
        return SB_ERR_NULL;
    elementwise_job job = {out, a, b, 0};
    sb_parallel_items(count, 1, add_relu_range, &job);
    return SB_OK;
}

typedef struct {
    float *out;
    const float *in, *scale;
    sb_fmap out_map, in_map;
    int avx2; /* run the AVX2 variants: the ISA as read once for the call */
} channel_scale_job;

/* Planes [0, planes) of one image, contiguous with hw floats each, the
 * factors contiguous too. The scalar reference of
 * sb_channel_scale_f32__avx2 (one multiplication per element in both, so
 * the same values, NaN payloads aside). out may equal in. */
static void channel_scale_run__scalar(float *out, const float *in, const float *scale,
                                      int64_t planes, int64_t hw)
{
    for (int64_t p = 0; p < planes; p++) {
        const float s = scale[p];
        for (int64_t i = 0; i < hw; i++)
            out[p * hw + i] = in[p * hw + i] * s;
    }
}

static void channel_scale_planes(void *ctx, int64_t begin, int64_t end)
{
    const channel_scale_job *j = (const channel_scale_job *)ctx;
    const int64_t channels = j->in_map.c, hw = j->in_map.h * j->in_map.w;
    /* a run of planes at a time: within one image they are contiguous */
    for (int64_t plane = begin; plane < end;) {
        const int64_t n = plane / channels, c = plane % channels;
        const int64_t run = min64(end - plane, channels - c);
        const float *x = j->in + n * j->in_map.batch_stride + c * hw; /* may be y */
        float *y = j->out + n * j->out_map.batch_stride + c * hw;
        const float *s = j->scale + plane; /* scale is N x C: plane n*C + c */
#ifdef SB_HAVE_AVX2_KERNELS
        if (j->avx2)
            sb_channel_scale_f32__avx2(y, x, s, run, hw);
        else
#endif
            channel_scale_run__scalar(y, x, s, run, hw);
        plane += run;
    }
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
    channel_scale_job job = {out_data, in_data, scale, *out, *in, sb_avx2_kernels_selected()};
    sb_parallel_items(in->n * in->c, hw, channel_scale_planes, &job);
    return SB_OK;
}

/* ---- references, for tests ------------------------------------------- */

/* torch.relu as torch's CPU clamp_min writes it: isnan(x) ? x : max(x, 0),
 * the max keeping x on a tie, so -0.0 stays -0.0. out may equal in. */
sb_status sb_relu_f32__ref(float *out, const float *in, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    for (int64_t i = 0; i < count; i++) {
        const float x = in[i];
        out[i] = isnan(x) ? x : (x < 0.0f ? 0.0f : x);
    }
    return SB_OK;
}

/* torch.sigmoid: 1 / (1 + exp(-x)) in float, with libm's expf. out may
 * equal in. */
sb_status sb_sigmoid_f32__ref(float *out, const float *in, int64_t count)
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

/* relu(a + b): the sum rounded to float (torch's separate add), then
 * torch.relu as in sb_relu_f32__ref. out may equal a or b. */
sb_status sb_add_relu_f32__ref(float *out, const float *a, const float *b, int64_t count)
{
    if (count < 0)
        return SB_ERR_SHAPE;
    if (count == 0)
        return SB_OK;
    if (out == NULL || a == NULL || b == NULL)
        return SB_ERR_NULL;
    for (int64_t i = 0; i < count; i++) {
        const float v = a[i] + b[i];
        out[i] = isnan(v) ? v : (v < 0.0f ? 0.0f : v);
    }
    return SB_OK;
}

/* out[n, c, h, w] = in[n, c, h, w] * scale[n * C + c], one float product.
 * out may equal in. The argument checks are sb_channel_scale_f32's. */
sb_status sb_channel_scale_f32__ref(float *out_data, const sb_fmap *out,
                                    const float *in_data, const sb_fmap *in,
                                    const float *scale)
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
    for (int64_t n = 0; n < in->n; n++)
        for (int64_t c = 0; c < in->c; c++)
            for (int64_t i = 0; i < hw; i++)
                out_data[n * out->batch_stride + c * hw + i] =
                    in_data[n * in->batch_stride + c * hw + i] * scale[n * in->c + c];
    return SB_OK;
}

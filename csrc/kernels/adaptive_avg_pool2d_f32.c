/*
 * adaptive_avg_pool2d_f32.c -- matches torch.nn.functional.adaptive_avg_pool2d
 * (float32, NCHW, forward).
 *
 * Output cell (i, j) averages input rows start_h(i) .. end_h(i)-1 and columns
 * start_w(j) .. end_w(j)-1 with torch's start_index / end_index:
 *   start = floor(i * H / OH),  end = ceil((i + 1) * H / OH)
 * in exact integer arithmetic. Windows may overlap (H not a multiple of OH)
 * and are never empty when OH, H >= 1.
 *
 * Precision follows torch's two code paths:
 *   - OH == OW == 1 (the global pool of SEAttention / classifier heads):
 *     torch computes input.mean((-1, -2)): a cascade float sum (close to the
 *     exact sum), then a float division by H*W. We sum in 8 float lanes
 *     combined pairwise (vectorised, a fixed order), then divide in float,
 *     so only the summation order differs.
 *   - otherwise torch's cpu_adaptive_avg_pool sums the window in float, row
 *     by row, then divides by kh and then by kw; we do exactly that.
 *
 * Output sizes larger than the input are accepted, as in torch (windows
 * then repeat input cells).
 *
 * sb_adaptive_avg_pool2d_f32__ref (at the end) states the two formulas as
 * plain loops, single-threaded: the windowed mean exactly as above (so the
 * fast kernel must give its bits), and the global mean as a sum in double
 * (close to exact, as torch's cascade sum is) rounded to float and divided
 * by H*W in float (the fast kernel's float lanes differ from it by a
 * rounding of the partial sums; tests hold it to a tolerance).
 *
 * Not done: channels-last, backward.
 */
#include "sb_internal.h"
#include "sb_isa_kernels.h"

/* Everything a plane needs; planes are independent, split over threads. */
typedef struct {
    float *out_data;
    const float *in_data;
    const sb_fmap *out, *in;
    int avx2; /* run the AVX2 variants: the ISA as read once for the call */
} adaptive_pool_job;

/* Global pooling (SEAttention's squeeze), planes [0, planes) of one image,
 * contiguous with hw floats each. Each block of SB_POOL_BLOCK floats is
 * summed in 8 float lanes side by side, combined pairwise -- a fixed order
 * that vectorises, instead of one serial chain whose add latency dominated;
 * torch also sums in float lanes -- and the block sums are added in double,
 * so a large plane (a 1024x1024 map) keeps the accuracy of a small one
 * instead of one float chain per lane growing its error with H*W. Then a
 * float division by numel, as torch's mean. A plane of at most one block
 * (every SEAttention map) is one float sum, unchanged by the double.
 * The scalar reference of sb_global_avg_pool_f32__avx2, which must give the
 * same values (NaN payloads aside: the compiler may swap the operands of an
 * add, and x86 keeps the first operand's NaN). */
static void global_pool_planes__scalar(float *restrict out, const float *restrict in,
                                       int64_t planes, int64_t hw)
{
    for (int64_t p = 0; p < planes; p++) {
        const float *restrict plane = in + p * hw;
        double total = 0.0;
        for (int64_t start = 0; start < hw; start += SB_POOL_BLOCK) {
            const int64_t n = min64(SB_POOL_BLOCK, hw - start);
            const float *restrict x = plane + start;
            float lane[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
                for (int l = 0; l < 8; l++)
                    lane[l] += x[i + l];
            for (int l = 0; i < n; i++, l++)
                lane[l] += x[i];
            total += ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
                     ((lane[1] + lane[5]) + (lane[3] + lane[7]));
        }
        out[p] = (float)total / (float)hw;
    }
}

static void adaptive_pool_planes(void *ctx, int64_t begin, int64_t end)
{
    const adaptive_pool_job *j = (const adaptive_pool_job *)ctx;
    const sb_fmap *out = j->out, *in = j->in;
    const int64_t H = in->h, W = in->w, OH = out->h, OW = out->w;
    const int64_t hw_in = H * W, hw_out = OH * OW;
    if (OH == 1 && OW == 1) {
        /* a run of planes at a time: within one image they are contiguous */
        for (int64_t index = begin; index < end;) {
            const int64_t n = index / out->c, c = index % out->c;
            const int64_t run = min64(end - index, out->c - c);
            const float *src = j->in_data + n * in->batch_stride + c * hw_in;
            float *dst = j->out_data + n * out->batch_stride + c;
#ifdef SB_HAVE_AVX2_KERNELS
            if (j->avx2)
                sb_global_avg_pool_f32__avx2(dst, src, run, hw_in);
            else
#endif
                global_pool_planes__scalar(dst, src, run, hw_in);
            index += run;
        }
        return;
    }
    for (int64_t index = begin; index < end; index++) {
        const int64_t n = index / out->c, c = index % out->c;
        const float *restrict plane = j->in_data + n * in->batch_stride + c * hw_in;
        float *restrict dst = j->out_data + n * out->batch_stride + c * hw_out;
        for (int64_t i = 0; i < OH; i++) {
            const int64_t h0 = (i * H) / OH;
            const int64_t h1 = ((i + 1) * H + OH - 1) / OH;
            for (int64_t j = 0; j < OW; j++) {
                const int64_t w0 = (j * W) / OW;
                const int64_t w1 = ((j + 1) * W + OW - 1) / OW;
                float sum = 0.0f;
                for (int64_t y = h0; y < h1; y++)
                    for (int64_t x = w0; x < w1; x++)
                        sum += plane[y * W + x];
                /* Two float divisions, in torch's order (sum / kh / kw). */
                dst[i * OW + j] = sum / (float)(h1 - h0) / (float)(w1 - w0);
            }
        }
    }
}

sb_status sb_adaptive_avg_pool2d_f32(float *restrict out_data, const sb_fmap *out,
                                     const float *restrict in_data, const sb_fmap *in)
{
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || out->n != in->n || out->c != in->c)
        return SB_ERR_SHAPE;
    /* torch rejects empty spatial input; an empty output has no cells. */
    if (in->h < 1 || in->w < 1 || out->h < 1 || out->w < 1)
        return SB_ERR_SHAPE;
    if (out->n == 0 || out->c == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL)
        return SB_ERR_NULL;

    adaptive_pool_job job = {out_data, in_data, out, in, sb_avx2_kernels_selected()};
    sb_parallel_items(out->n * out->c, in->h * in->w + out->h * out->w, adaptive_pool_planes,
                      &job);
    return SB_OK;
}

/* The reference for tests: the window of each output cell from torch's
 * start_index / end_index, summed in row-major order. The argument checks
 * are sb_adaptive_avg_pool2d_f32's, in the same order. */
sb_status sb_adaptive_avg_pool2d_f32__ref(float *restrict out_data, const sb_fmap *out,
                                          const float *restrict in_data, const sb_fmap *in)
{
    if (out == NULL || in == NULL)
        return SB_ERR_NULL;
    if (!sb_fmap_ok(out) || !sb_fmap_ok(in) || out->n != in->n || out->c != in->c)
        return SB_ERR_SHAPE;
    if (in->h < 1 || in->w < 1 || out->h < 1 || out->w < 1)
        return SB_ERR_SHAPE;
    if (out->n == 0 || out->c == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL)
        return SB_ERR_NULL;

    const int64_t H = in->h, W = in->w, OH = out->h, OW = out->w;
    const int global = OH == 1 && OW == 1;
    for (int64_t n = 0; n < out->n; n++)
        for (int64_t c = 0; c < out->c; c++) {
            const float *restrict plane = in_data + n * in->batch_stride + c * H * W;
            float *restrict dst = out_data + n * out->batch_stride + c * OH * OW;
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    const int64_t h0 = (i * H) / OH, h1 = ((i + 1) * H + OH - 1) / OH;
                    const int64_t w0 = (j * W) / OW, w1 = ((j + 1) * W + OW - 1) / OW;
                    if (global) {
                        /* torch's input.mean((-1, -2)): the sum, then one float
                         * division by the element count */
                        double sum = 0.0;
                        for (int64_t y = h0; y < h1; y++)
                            for (int64_t x = w0; x < w1; x++)
                                sum += plane[y * W + x];
                        dst[i * OW + j] = (float)sum / (float)(H * W);
                    } else {
                        /* torch's cpu_adaptive_avg_pool: a float sum, then
                         * divided by the window's height and then its width */
                        float sum = 0.0f;
                        for (int64_t y = h0; y < h1; y++)
                            for (int64_t x = w0; x < w1; x++)
                                sum += plane[y * W + x];
                        dst[i * OW + j] = sum / (float)(h1 - h0) / (float)(w1 - w0);
                    }
                }
        }
    return SB_OK;
}

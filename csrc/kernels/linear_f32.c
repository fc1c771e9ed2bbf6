/*
 * linear_f32.c -- fully connected layer, matching torch.nn.functional.linear
 * (float32, forward).
 *
 *   out[r, o] = sum_i in[r, i] * weight[o, i] + bias[o]
 *   out: rows x out_features, in: rows x in_features,
 *   weight: out_features x in_features (torch's layout), all contiguous.
 *
 * Because both in[r, :] and weight[o, :] are contiguous, each output is a
 * dot product of two contiguous rows. Without -ffast-math GCC will not
 * reorder a float reduction, so a plain `sum += x*w` loop stays scalar; the
 * fast kernel therefore keeps LANES explicit partial sums per output, which
 * GCC maps onto SIMD registers, and reduces them at the end. It computes
 * four outputs at once so each loaded piece of the input row is reused from
 * registers four times.
 *
 * torch (addmm via MKL/OpenBLAS) sums in yet another order: results agree to
 * float rounding (~1e-6 relative), not bit for bit. Every product is formed,
 * so NaN / inf propagate.
 *
 * sb_linear_f32_packed (at the end) is the fast path the Linear layer uses:
 * the layer as a 1x1 convolution on the packed-GEMM micro-kernels, with
 * weights packed once per change. sb_linear_f32 stays the direct kernel of
 * skipblocks.functional.linear (no packing to amortise there).
 */
#include "skipblocks.h"

/*
 * GCC 12 at -O3 "vectorises" the i loop of the lane-split dot products as
 * in-order (fold-left) float reductions: shuffles and scalar adds, 3x slower
 * than scalar code that its SLP vectoriser turns into one SIMD multiply-add
 * per tile row. Turning the *loop* vectoriser off for these functions only
 * leaves the SLP vectoriser to do the intended thing. Other compilers do
 * not vectorise in-order FP reductions and need nothing.
 */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER)
#define SB_SLP_ONLY __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define SB_SLP_ONLY
#endif

#define SB_LINEAR_LANES 8  /* two SSE vectors, one AVX vector */
#define SB_LINEAR_OB 4     /* outputs computed together */

static sb_status check_linear_args(const float *out, const float *in, const float *weight,
                                   int64_t rows, int64_t in_features, int64_t out_features)
{
    if (rows < 0 || in_features < 0 || out_features < 0)
        return SB_ERR_SHAPE;
    if (rows > 0 && out_features > 0 &&
        (out == NULL || (in_features > 0 && (in == NULL || weight == NULL))))
        return SB_ERR_NULL;
    return SB_OK;
}

/* Sum of the lanes in a fixed pairwise order (deterministic, and the same
 * whatever block an output fell into). */
static float reduce_lanes(const float acc[SB_LINEAR_LANES])
{
    const float s01 = acc[0] + acc[1], s23 = acc[2] + acc[3];
    const float s45 = acc[4] + acc[5], s67 = acc[6] + acc[7];
    return (s01 + s23) + (s45 + s67);
}

/* Four dot products of x against w0..w3 (each n long). */
static void dot4(float res[SB_LINEAR_OB], const float *restrict x,
                 const float *restrict w, int64_t ldw, int64_t n)
{
    float acc[SB_LINEAR_OB][SB_LINEAR_LANES] = {{0.0f}};
    const int64_t n_main = n - n % SB_LINEAR_LANES;
    for (int64_t i = 0; i < n_main; i += SB_LINEAR_LANES) {
        for (int o = 0; o < SB_LINEAR_OB; o++) {
            const float *restrict wo = w + o * ldw + i;
            for (int l = 0; l < SB_LINEAR_LANES; l++)
                acc[o][l] += x[i + l] * wo[l];
        }
    }
    for (int o = 0; o < SB_LINEAR_OB; o++) {
        float tail = 0.0f;
        for (int64_t i = n_main; i < n; i++)
            tail += x[i] * w[o * ldw + i];
        res[o] = reduce_lanes(acc[o]) + tail;
    }
}

/* One dot product, same lane structure as dot4 so results match it. */
static float dot1(const float *restrict x, const float *restrict w, int64_t n)
{
    float acc[SB_LINEAR_LANES] = {0.0f};
    const int64_t n_main = n - n % SB_LINEAR_LANES;
    for (int64_t i = 0; i < n_main; i += SB_LINEAR_LANES)
        for (int l = 0; l < SB_LINEAR_LANES; l++)
            acc[l] += x[i + l] * w[i + l];
    float tail = 0.0f;
    for (int64_t i = n_main; i < n; i++)
        tail += x[i] * w[i];
    return reduce_lanes(acc) + tail;
}

sb_status sb_linear_f32(float *restrict out, const float *restrict in,
                        const float *restrict weight, const float *restrict bias,
                        int64_t rows, int64_t in_features, int64_t out_features)
{
    sb_status st = check_linear_args(out, in, weight, rows, in_features, out_features);
    if (st != SB_OK)
        return st;
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict x = in + r * in_features;
        float *restrict y = out + r * out_features;
        int64_t o = 0;
        for (; o + SB_LINEAR_OB <= out_features; o += SB_LINEAR_OB) {
            float res[SB_LINEAR_OB];
            dot4(res, x, weight + o * in_features, in_features, in_features);
            for (int j = 0; j < SB_LINEAR_OB; j++)
                y[o + j] = bias != NULL ? res[j] + bias[o + j] : res[j];
        }
        for (; o < out_features; o++) {
            const float d = dot1(x, weight + o * in_features, in_features);
            y[o] = bias != NULL ? d + bias[o] : d;
        }
    }
    return SB_OK;
}

/* One sequential float accumulator per output. For tests only. */
sb_status sb_linear_f32__ref(float *restrict out, const float *restrict in,
                             const float *restrict weight, const float *restrict bias,
                             int64_t rows, int64_t in_features, int64_t out_features)
{
    sb_status st = check_linear_args(out, in, weight, rows, in_features, out_features);
    if (st != SB_OK)
        return st;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t o = 0; o < out_features; o++) {
            float sum = 0.0f;
            for (int64_t i = 0; i < in_features; i++)
                sum += in[r * in_features + i] * weight[o * in_features + i];
            out[r * out_features + o] = bias != NULL ? sum + bias[o] : sum;
        }
    }
    return SB_OK;
}

/* out (cols x rows) = in (rows x cols) transposed, in square blocks so both
 * sides are walked a cache line at a time. */
static void transpose(float *restrict out, const float *restrict in, int64_t rows,
                      int64_t cols)
{
    enum { B = 16 };
    for (int64_t r0 = 0; r0 < rows; r0 += B)
        for (int64_t c0 = 0; c0 < cols; c0 += B) {
            const int64_t r1 = r0 + B < rows ? r0 + B : rows;
            const int64_t c1 = c0 + B < cols ? c0 + B : cols;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++)
                    out[c * rows + r] = in[r * cols + c];
        }
}

/* The 1x1 convolution that is this linear layer: one image of in_features
 * channels and 1 x rows pixels. */
static void linear_as_conv(int64_t rows, int64_t in_features, int64_t out_features,
                           sb_fmap *in_map, sb_fmap *out_map, sb_conv2d_params *params)
{
    const sb_fmap in_m = {1, in_features, 1, rows, in_features * rows};
    const sb_fmap out_m = {1, out_features, 1, rows, out_features * rows};
    const sb_conv2d_params p = {1, 1, 1, 1, 0, 0, 1, 1, 1};
    *in_map = in_m;
    *out_map = out_m;
    *params = p;
}

int64_t sb_linear_f32_packed_workspace_floats(int64_t rows, int64_t in_features,
                                              int64_t out_features, int num_threads)
{
    if (rows < 0 || in_features < 0 || out_features < 0)
        return 0;
    sb_fmap in_map, out_map;
    sb_conv2d_params params;
    linear_as_conv(rows, in_features, out_features, &in_map, &out_map, &params);
    return rows * in_features + rows * out_features +
           sb_conv2d_f32_packed_workspace_floats(&out_map, &in_map, &params, NULL,
                                                 num_threads);
}

sb_status sb_linear_f32_packed(float *out, const float *in, const float *packed_weights,
                               int64_t rows, int64_t in_features, int64_t out_features,
                               float *workspace, int num_threads)
{
    if (rows < 0 || in_features < 0 || out_features < 0)
        return SB_ERR_SHAPE;
    if (rows == 0 || out_features == 0)
        return SB_OK;
    if (out == NULL || packed_weights == NULL || workspace == NULL ||
        (in_features > 0 && in == NULL))
        return SB_ERR_NULL;
    sb_fmap in_map, out_map;
    sb_conv2d_params params;
    linear_as_conv(rows, in_features, out_features, &in_map, &out_map, &params);
    float *in_t = workspace;                       /* in_features x rows */
    float *out_t = in_t + rows * in_features;      /* out_features x rows */
    float *conv_space = out_t + rows * out_features;
    transpose(in_t, in, rows, in_features);
    sb_status st = sb_conv2d_f32_packed(out_t, &out_map, in_t, &in_map, packed_weights,
                                        &params, NULL, conv_space, num_threads);
    if (st != SB_OK)
        return st;
    transpose(out, out_t, out_features, rows);
    return SB_OK;
}

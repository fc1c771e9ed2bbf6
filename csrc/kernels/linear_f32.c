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
 * the packed-GEMM micro-kernels of the convolution, with the weights packed
 * once per change. sb_linear_f32 stays the direct kernel of
 * skipblocks.functional.linear (no packing to amortise there).
 */
#include "gemm_ukernel.h"
#include "sb_internal.h"

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

/*
 * The fast path of the Linear layer: out = in * W^T + bias as a GEMM whose
 * A operand is the input rows and whose B operand is W^T, packed once per
 * weight change into NR-wide panels of output features (so out_features
 * such as SEAttention's 64 and 512 fill whole panels). Per call only the
 * input rows are packed, MR at a time. Each MR x NR tile is summed over the
 * whole of K in one micro-kernel call (p ascending), so the result does not
 * depend on how row blocks are shared out between threads.
 */
enum { LMR = SB_CONV_MR, LNR = SB_CONV_NR };

static int64_t panels_of(int64_t out_features)
{
    return out_features / LNR + (out_features % LNR != 0);
}

int64_t sb_linear_f32_packed_weights_floats(int64_t out_features, int64_t in_features)
{
    if (out_features < 0 || in_features < 0)
        return 0;
    /* panels of in_features x NR weights, then the bias padded to panels;
     * saturating (sb_internal.h): a size no array can have, never a wrapped
     * small one */
    return sat_mul64(panels_of(out_features) * LNR, sat_add64(in_features, 1));
}

sb_status sb_linear_f32_pack_weights(float *packed, const float *weight, const float *bias,
                                     int64_t out_features, int64_t in_features)
{
    if (out_features < 0 || in_features < 0)
        return SB_ERR_SHAPE;
    if (out_features == 0)
        return SB_OK;
    if (packed == NULL || (in_features > 0 && weight == NULL))
        return SB_ERR_NULL;
    const int64_t panels = panels_of(out_features);
    for (int64_t pj = 0; pj < panels; pj++) {
        float *panel = packed + pj * in_features * LNR;
        for (int64_t p = 0; p < in_features; p++)
            for (int64_t j = 0; j < LNR; j++) {
                const int64_t o = pj * LNR + j;
                panel[p * LNR + j] = o < out_features ? weight[o * in_features + p] : 0.0f;
            }
    }
    float *packed_bias = packed + panels * in_features * LNR;
    for (int64_t o = 0; o < panels * LNR; o++)
        packed_bias[o] = (bias != NULL && o < out_features) ? bias[o] : 0.0f;
    return SB_OK;
}

/* Scratch of one row block: its packed rows (in_features x MR) and an edge tile. */
static int64_t row_block_floats(int64_t in_features)
{
    return sat_add64(sat_mul64(in_features, LMR), LMR * LNR);
}

int64_t sb_linear_f32_packed_workspace_floats(int64_t rows, int64_t in_features,
                                              int64_t out_features, int num_threads)
{
    (void)out_features;
    (void)num_threads; /* one scratch area per row block, whoever runs it */
    if (rows < 0 || in_features < 0)
        return 0;
    return sat_mul64(rows / LMR + (rows % LMR != 0), row_block_floats(in_features));
}

typedef struct {
    float *out;
    const float *in, *packed;
    int64_t rows, in_features, out_features;
    float *workspace;
    sb_gemm_ukernel ukernel;
} linear_job;

static void linear_row_blocks(void *ctx, int64_t begin, int64_t end)
{
    const linear_job *j = (const linear_job *)ctx;
    const int64_t k = j->in_features, n_out = j->out_features;
    const int64_t panels = panels_of(n_out);
    const float *bias = j->packed + panels * k * LNR;
    for (int64_t rb = begin; rb < end; rb++) {
        float *a = j->workspace + rb * row_block_floats(k);
        float *tile = a + k * LMR;
        const int64_t r0 = rb * LMR;
        const int64_t mr = j->rows - r0 < LMR ? j->rows - r0 : LMR;
        /* pack MR input rows, k-major; missing rows are zero */
        for (int64_t p = 0; p < k; p++)
            for (int64_t i = 0; i < LMR; i++)
                a[p * LMR + i] = i < mr ? j->in[(r0 + i) * k + p] : 0.0f;
        for (int64_t pj = 0; pj < panels; pj++) {
            const int64_t c0 = pj * LNR;
            const int64_t nr = n_out - c0 < LNR ? n_out - c0 : LNR;
            float *dst = j->out + r0 * n_out + c0;
            const int full = mr == LMR && nr == LNR;
            /* k == 0: an empty sum, 0 (kc = 0 stores zeros) */
            j->ukernel(k, a, j->packed + pj * k * LNR, full ? dst : tile,
                       full ? n_out : LNR, 0);
            const float *src = full ? dst : tile;
            const int64_t lds = full ? n_out : LNR;
            for (int64_t i = 0; i < mr; i++)
                for (int64_t c = 0; c < nr; c++)
                    dst[i * n_out + c] = src[i * lds + c] + bias[c0 + c];
        }
    }
}

sb_status sb_linear_f32_packed(float *out, const float *in, const float *packed_weights,
                               int64_t rows, int64_t in_features, int64_t out_features,
                               float *workspace, int num_threads)
{
    (void)num_threads; /* the pool's own setting splits the row blocks */
    if (rows < 0 || in_features < 0 || out_features < 0)
        return SB_ERR_SHAPE;
    if (rows == 0 || out_features == 0)
        return SB_OK;
    if (out == NULL || packed_weights == NULL || workspace == NULL ||
        (in_features > 0 && in == NULL))
        return SB_ERR_NULL;
    linear_job job = {out, in, packed_weights, rows, in_features, out_features, workspace,
                      sb_gemm_ukernel_for(sb_get_isa())};
    const int64_t blocks = (rows + LMR - 1) / LMR;
    sb_parallel_items(blocks, LMR * (in_features + 1) * out_features / 8, linear_row_blocks,
                      &job);
    return SB_OK;
}

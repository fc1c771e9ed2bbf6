/*
 * conv2d_packed_f32.c -- the fast path of Conv2d: packed GEMM with fused
 * input transform and epilogue, split over threads.
 *
 * Computes what sb_conv2d_f32__ref computes (torch.nn.functional.conv2d,
 * float32, NCHW, zero padding, stride, dilation, groups, bias), optionally
 *   - reading every input value through x * in_scale[c] + in_shift[c] and a
 *     ReLU (DenseLayer's BatchNorm + ReLU before each convolution; torch
 *     zero-pads the *transformed* map, so padding stays 0), and
 *   - adding a residual and applying a ReLU to the result (ResidualBlock),
 * in one pass over the output.
 *
 * Method (per image n and group g the convolution is the GEMM
 *   out (Cog x P) = W (Cog x K) * cols (K x P), P = OH*OW, K = Cig*KH*KW):
 *   - W is packed ahead of time by sb_conv2d_f32_pack_weights, in blocks of
 *     MR output channels: [MR biases][K x MR weights, k-major], rows past
 *     Cog zero (so edge tiles need no special weights).
 *   - The output pixels of each (n, g) are cut into column blocks of at most
 *     NC pixels: the unit of work ("tile") given to a thread. For its tile a
 *     thread walks K in blocks of KC; for each it packs cols[k0:k0+kc, block]
 *     (im2col + input transform) into NR-wide panels in its own workspace
 *     (KC x NC floats, sized for L2), then runs the micro-kernel over every
 *     (MR-row block, NR-column panel) pair. Later K blocks accumulate into
 *     the output; the last applies the epilogue.
 *   - Edge tiles (fewer than MR rows or NR columns left) run the same
 *     micro-kernel on a local MR x NR buffer and copy the valid part, so
 *     every element goes through the same arithmetic.
 *
 * Determinism: K blocking depends only on K, never on the thread count or
 * the column split, and the micro-kernel sums in a fixed order, so results
 * are bit-identical for every thread count.
 *
 * Not done here: Winograd/FFT (they cannot hold torch parity bounds),
 * padding modes other than zeros, an output that overlaps the input.
 */
#include <string.h>

#include "gemm_ukernel.h"
#include "sb_parallel.h"

enum { MR = SB_CONV_MR, NR = SB_CONV_NR };
/* K block: a KC x NR panel of packed input (16 KiB at KC 256) stays in L1
 * while the MR x KC weight strips stream past; NC columns x KC rows of
 * packed input (up to 192 KiB) stay in L2 across the MR-row blocks. */
enum { KC_MAX = 256, NC_PANELS_MAX = 12, NC_MAX = NC_PANELS_MAX * NR };

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int64_t sb_conv2d_f32_packed_weights_floats(int64_t c_out, int64_t c_in_per_group,
                                            int64_t kernel_h, int64_t kernel_w,
                                            int64_t groups)
{
    if (c_out < 0 || c_in_per_group < 0 || kernel_h <= 0 || kernel_w <= 0 || groups <= 0 ||
        c_out % groups != 0)
        return 0;
    const int64_t k = c_in_per_group * kernel_h * kernel_w;
    const int64_t blocks = ceil_div(c_out / groups, MR);
    return groups * blocks * (MR + k * MR);
}

sb_status sb_conv2d_f32_pack_weights(float *restrict packed, const float *restrict weight,
                                     const float *restrict bias,
                                     const float *restrict row_scale,
                                     const float *restrict row_shift,
                                     int64_t c_out, int64_t c_in_per_group,
                                     int64_t kernel_h, int64_t kernel_w, int64_t groups)
{
    if (c_out < 0 || c_in_per_group < 0 || kernel_h <= 0 || kernel_w <= 0 || groups <= 0 ||
        c_out % groups != 0)
        return SB_ERR_ARGUMENT;
    if (packed == NULL || (c_out > 0 && c_in_per_group > 0 && weight == NULL))
        return SB_ERR_NULL;
    if ((row_scale == NULL) != (row_shift == NULL))
        return SB_ERR_NULL;
    const int64_t k = c_in_per_group * kernel_h * kernel_w;
    const int64_t cog = c_out / groups;
    const int64_t blocks = ceil_div(cog, MR);
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t blk = 0; blk < blocks; blk++) {
            float *dst = packed + (g * blocks + blk) * (MR + k * MR);
            for (int64_t i = 0; i < MR; i++) {
                const int64_t o = g * cog + blk * MR + i; /* output channel */
                const int valid = blk * MR + i < cog;
                float scale = 1.0f, b = 0.0f;
                if (valid) {
                    b = bias != NULL ? bias[o] : 0.0f;
                    if (row_scale != NULL) {
                        /* BatchNorm after the conv: bn(conv(x) + b) =
                         * conv(x; w*scale) + (b*scale + shift). */
                        scale = row_scale[o];
                        b = b * scale + row_shift[o];
                    }
                }
                dst[i] = b;
                for (int64_t p = 0; p < k; p++)
                    dst[MR + p * MR + i] = valid ? weight[o * k + p] * scale : 0.0f;
            }
        }
    }
    return SB_OK;
}

/* Everything a tile needs, shared read-only by the threads. */
typedef struct {
    const float *in;
    float *out;
    const float *packed;
    sb_fmap in_map, out_map;
    sb_conv2d_params p;
    sb_conv2d_fusion fusion; /* in_scale NULL: no transform; residual NULL: none */
    int64_t cig, cog, k, pixels, m_blocks;
    int64_t kc, k_blocks;          /* K blocking (thread-count independent) */
    int64_t nc, col_blocks, tiles; /* column split (may depend on threads) */
    int64_t slots;                 /* workspace slots = threads used */
    float *workspace;              /* slots x (KC_MAX * NC_MAX) floats */
    sb_gemm_ukernel ukernel;
} conv_job;

/* First and one-past-last output column x in [0, out_len) whose input column
 * x*stride + off lies inside [0, in_len). */
static void valid_span(int64_t off, int64_t stride, int64_t in_len, int64_t out_len,
                       int64_t *lo, int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : ceil_div(-off, stride);
    int64_t b = in_len - off <= 0 ? 0 : ceil_div(in_len - off, stride);
    a = min64(a, out_len);
    b = min64(max64(b, a), out_len);
    *lo = a;
    *hi = b;
}

/* Copies `count` input values src[0], src[stride], ... to dst, through the
 * input transform when there is one: x * s + t, then torch.relu
 * (v < 0 ? 0 : v, which keeps NaN and -0.0). */
static void copy_transformed(float *restrict dst, const float *restrict src, int64_t stride,
                             int64_t count, const float *scale_shift, int relu)
{
    if (scale_shift == NULL && !relu) {
        if (stride == 1)
            memcpy(dst, src, (size_t)count * sizeof(float));
        else
            for (int64_t q = 0; q < count; q++)
                dst[q] = src[q * stride];
        return;
    }
    const float s = scale_shift ? scale_shift[0] : 1.0f;
    const float t = scale_shift ? scale_shift[1] : 0.0f;
    for (int64_t q = 0; q < count; q++) {
        float v = src[q * stride] * s + t;
        dst[q] = relu && v < 0.0f ? 0.0f : v;
    }
}

/*
 * Packs rows [k0, k0+kc) and columns [j0, j0+ncols) of the column matrix of
 * image `img` (channel 0 of the group) into NR-wide panels:
 *   dst[(j / NR) * kc * NR + (k - k0) * NR + j % NR], j relative to j0,
 * zero-filling columns past ncols up to the panel boundary.
 * Row k reads input channel k / (KH*KW) at tap (ky, kx); a run of output
 * pixels within one output row and one panel reads a strided run of one
 * input row, so it is copied as a run, with the taps that fall in the
 * padding written as zeros.
 */
static void pack_columns(float *restrict dst, const float *restrict img, const conv_job *job,
                         const float *in_scale, const float *in_shift, int in_relu,
                         int64_t k0, int64_t kc, int64_t j0, int64_t ncols)
{
    const sb_conv2d_params *p = &job->p;
    const int64_t h = job->in_map.h, w = job->in_map.w, ow = job->out_map.w;
    const int64_t taps = p->kernel_h * p->kernel_w;
    const int64_t panels = ceil_div(ncols, NR);
    const int64_t panel_floats = kc * NR;
    for (int64_t kk = 0; kk < kc; kk++) {
        const int64_t k = k0 + kk;
        const int64_t c = k / taps, tap = k % taps;
        const int64_t ky = tap / p->kernel_w, kx = tap % p->kernel_w;
        const float *plane = img + c * h * w;
        float scale_shift[2];
        const float *transform = NULL;
        if (in_scale != NULL) {
            scale_shift[0] = in_scale[c];
            scale_shift[1] = in_shift[c];
            transform = scale_shift;
        }
        const int64_t off_x = kx * p->dilation_w - p->pad_w;
        int64_t x_lo, x_hi; /* output columns whose tap lies inside the row */
        valid_span(off_x, p->stride_w, w, ow, &x_lo, &x_hi);
        float *row_dst = dst + kk * NR;
        int64_t j = 0;
        while (j < ncols) {
            /* one output row's worth of pixels */
            const int64_t pix = j0 + j;
            const int64_t oy = pix / ow, ox0 = pix % ow;
            const int64_t seg = min64(ow - ox0, ncols - j);
            const int64_t iy = oy * p->stride_h - p->pad_h + ky * p->dilation_h;
            const float *src = (iy >= 0 && iy < h) ? plane + iy * w + off_x : NULL;
            int64_t q = 0;
            while (q < seg) {
                /* the part of it that lands in one panel */
                const int64_t jj = j + q;
                const int64_t run = min64(seg - q, NR - jj % NR);
                float *d = row_dst + (jj / NR) * panel_floats + jj % NR;
                const int64_t ox = ox0 + q;
                int64_t a = 0, b = 0; /* valid part of the run: [a, b) */
                if (src != NULL) {
                    a = min64(max64(x_lo - ox, 0), run);
                    b = min64(max64(x_hi - ox, a), run);
                }
                for (int64_t t = 0; t < a; t++)
                    d[t] = 0.0f;
                if (b > a)
                    copy_transformed(d + a, src + (ox + a) * p->stride_w, p->stride_w, b - a,
                                     transform, in_relu);
                for (int64_t t = b; t < run; t++)
                    d[t] = 0.0f;
                q += run;
            }
            j += seg;
        }
        for (int64_t jj = ncols; jj < panels * NR; jj++)
            row_dst[(jj / NR) * panel_floats + (jj % NR)] = 0.0f;
    }
}

/* One tile: image n, group g, column block cb. */
static void run_tile(const conv_job *job, int64_t tile, float *restrict bbuf)
{
    const int64_t per_image = job->p.groups * job->col_blocks;
    const int64_t n = tile / per_image;
    const int64_t g = (tile % per_image) / job->col_blocks;
    const int64_t cb = tile % job->col_blocks;
    const int64_t j0 = cb * job->nc;
    const int64_t ncols = min64(job->nc, job->pixels - j0);
    const int64_t panels = ceil_div(ncols, NR);
    const int64_t pixels = job->pixels;

    const float *img = job->in + n * job->in_map.batch_stride +
                       g * job->cig * job->in_map.h * job->in_map.w;
    float *out = job->out + n * job->out_map.batch_stride + g * job->cog * pixels;
    const sb_conv2d_fusion *f = &job->fusion;
    const float *residual = f->residual == NULL ? NULL
        : f->residual + n * f->residual_map.batch_stride + g * job->cog * pixels;
    const float *in_scale = f->in_scale ? f->in_scale + g * job->cig : NULL;
    const float *in_shift = f->in_scale ? f->in_shift + g * job->cig : NULL;
    const float *group_weights = job->packed + g * job->m_blocks * (MR + job->k * MR);

    for (int64_t kb = 0; kb < job->k_blocks; kb++) {
        const int64_t k0 = kb * job->kc;
        const int64_t kc = min64(job->kc, job->k - k0);
        const int accumulate = kb > 0;
        const int last = kb == job->k_blocks - 1;
        pack_columns(bbuf, img, job, in_scale, in_shift, f->in_relu, k0, kc, j0, ncols);
        for (int64_t mb = 0; mb < job->m_blocks; mb++) {
            const float *panel = group_weights + mb * (MR + job->k * MR);
            const float *a = panel + MR + k0 * MR;
            const int64_t m0 = mb * MR, mr = min64(MR, job->cog - m0);
            for (int64_t pj = 0; pj < panels; pj++) {
                const int64_t col = j0 + pj * NR, nr = min64(NR, pixels - col);
                const float *b = bbuf + pj * kc * NR;
                float *c = out + m0 * pixels + col;
                const float *r = residual ? residual + m0 * pixels + col : NULL;
                if (mr == MR && nr == NR) {
                    sb_tile_epilogue epi = {panel, r, pixels, f->out_relu};
                    job->ukernel(kc, a, b, c, pixels, accumulate, last ? &epi : NULL);
                    continue;
                }
                /* Edge tile: the same kernel on a zeroed local tile, of
                 * which only the valid mr x nr part is read back. */
                float tile_c[MR * NR] = {0.0f}, tile_r[MR * NR] = {0.0f};
                for (int64_t i = 0; i < mr; i++) {
                    if (accumulate)
                        memcpy(tile_c + i * NR, c + i * pixels, (size_t)nr * sizeof(float));
                    if (r != NULL && last)
                        memcpy(tile_r + i * NR, r + i * pixels, (size_t)nr * sizeof(float));
                }
                sb_tile_epilogue epi = {panel, r != NULL ? tile_r : NULL, NR, f->out_relu};
                job->ukernel(kc, a, b, tile_c, NR, accumulate, last ? &epi : NULL);
                for (int64_t i = 0; i < mr; i++)
                    memcpy(c + i * pixels, tile_c + i * NR, (size_t)nr * sizeof(float));
            }
        }
    }
}

/* Slot s of the parallel loop runs tiles [s*T/S, (s+1)*T/S) with its own
 * workspace: work and scratch are tied to the slot, not to whichever
 * thread picks it up. */
static void run_slot(void *ctx, int64_t begin, int64_t end)
{
    const conv_job *job = (const conv_job *)ctx;
    for (int64_t s = begin; s < end; s++) {
        float *bbuf = job->workspace + s * (int64_t)(KC_MAX * NC_MAX);
        const int64_t t0 = s * job->tiles / job->slots, t1 = (s + 1) * job->tiles / job->slots;
        for (int64_t t = t0; t < t1; t++)
            run_tile(job, t, bbuf);
    }
}

/* Only a convolution this big (multiply-adds) is worth waking a thread. */
static const int64_t SB_CONV_PARALLEL_MIN_MACS = 1 << 20;

static int threads_for(const sb_fmap *out, const sb_fmap *in, const sb_conv2d_params *p,
                       int num_threads)
{
    if (num_threads < 1)
        num_threads = 1;
    const int64_t k = (in->c / p->groups) * p->kernel_h * p->kernel_w;
    const int64_t macs = out->n * out->c * out->h * out->w * k;
    return macs < SB_CONV_PARALLEL_MIN_MACS ? 1 : num_threads;
}

int64_t sb_conv2d_f32_packed_workspace_floats(const sb_fmap *out, const sb_fmap *in,
                                              const sb_conv2d_params *params,
                                              int num_threads)
{
    if (out == NULL || in == NULL || params == NULL || params->groups <= 0)
        return 0;
    return (int64_t)threads_for(out, in, params, num_threads) * KC_MAX * NC_MAX;
}

static int fmap_sane(const sb_fmap *f)
{
    if (f->n < 0 || f->c < 0 || f->h < 0 || f->w < 0)
        return 0;
    return f->n <= 1 || f->batch_stride >= f->c * f->h * f->w;
}

sb_status sb_conv2d_f32_packed(float *out_data, const sb_fmap *out,
                               const float *in_data, const sb_fmap *in,
                               const float *packed_weights,
                               const sb_conv2d_params *params,
                               const sb_conv2d_fusion *fusion,
                               float *workspace, int num_threads)
{
    if (out == NULL || in == NULL || params == NULL)
        return SB_ERR_NULL;
    const sb_conv2d_params *p = params;
    if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->dilation_h <= 0 || p->dilation_w <= 0 || p->pad_h < 0 || p->pad_w < 0 ||
        p->groups <= 0)
        return SB_ERR_ARGUMENT;
    if (!fmap_sane(out) || !fmap_sane(in) || out->n != in->n ||
        in->c % p->groups != 0 || out->c % p->groups != 0 ||
        out->h != sb_conv2d_out_size(in->h, p->kernel_h, p->stride_h, p->pad_h, p->dilation_h) ||
        out->w != sb_conv2d_out_size(in->w, p->kernel_w, p->stride_w, p->pad_w, p->dilation_w))
        return SB_ERR_SHAPE;
    if (out->n == 0 || out->c == 0 || out->h == 0 || out->w == 0)
        return SB_OK;
    if (out_data == NULL || in_data == NULL || packed_weights == NULL || workspace == NULL)
        return SB_ERR_NULL;

    conv_job job;
    memset(&job, 0, sizeof job);
    job.in = in_data;
    job.out = out_data;
    job.packed = packed_weights;
    job.in_map = *in;
    job.out_map = *out;
    job.p = *p;
    if (fusion != NULL) {
        job.fusion = *fusion;
        if ((fusion->in_scale == NULL) != (fusion->in_shift == NULL))
            return SB_ERR_NULL;
        if (fusion->residual != NULL) {
            const sb_fmap *r = &fusion->residual_map;
            if (r->n != out->n || r->c != out->c || r->h != out->h || r->w != out->w ||
                !fmap_sane(r))
                return SB_ERR_SHAPE;
        }
    }
    job.cig = in->c / p->groups;
    job.cog = out->c / p->groups;
    job.k = job.cig * p->kernel_h * p->kernel_w;
    job.pixels = out->h * out->w;
    job.m_blocks = ceil_div(job.cog, MR);
    /* K blocks of equal size <= KC_MAX: a function of K alone. */
    job.k_blocks = max64(1, ceil_div(job.k, KC_MAX));
    job.kc = max64(1, ceil_div(job.k, job.k_blocks));
    job.ukernel = sb_gemm_ukernel_active();

    const int threads = threads_for(out, in, p, num_threads);
    /* Column blocks: as wide as fits L2, but narrow enough to give every
     * thread about two tiles when there are few images. */
    const int64_t panels_total = ceil_div(job.pixels, NR);
    const int64_t units = out->n * p->groups;
    const int64_t want_blocks = ceil_div(2 * (int64_t)threads, units);
    int64_t nc_panels = ceil_div(panels_total, want_blocks);
    nc_panels = max64(1, min64(nc_panels, NC_PANELS_MAX));
    job.nc = nc_panels * NR;
    job.col_blocks = ceil_div(job.pixels, job.nc);
    job.tiles = units * job.col_blocks;
    job.slots = min64(threads, job.tiles);
    job.workspace = workspace;

    /* K == 0 (no input channels) needs no special case: one empty K block
     * leaves the bias and epilogue alone, which is torch's result. */
    if (job.slots <= 1)
        run_slot(&job, 0, 1);
    else
        sb_parallel_for(job.slots, 1, run_slot, &job);
    return SB_OK;
}

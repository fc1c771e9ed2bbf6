/*
 * conv2d_packed_f32.c -- the fast path of Conv2d: a GEMM over the staged
 * input read in place (no im2col copy), packed weights, fused input
 * transform and epilogue, split over threads.
 *
 * Computes what sb_conv2d_f32__ref computes (torch.nn.functional.conv2d,
 * float32, NCHW, zero padding, stride, dilation, groups, bias), optionally
 *   - reading every input value through x * in_scale[c] + in_shift[c] and a
 *     ReLU (DenseLayer's BatchNorm + ReLU before each convolution; torch
 *     zero-pads the *transformed* map, so padding stays 0), and
 *   - adding a residual and applying a ReLU to the result (ResidualBlock).
 *
 * Method. Per image n and group g the convolution is the GEMM
 *   out (Cog x P) = W (Cog x K) * cols (K x P),  K = Cig*KH*KW, P pixels,
 * row k = (channel c, tap ky, kx) of cols holding input(c, oy*sh + ky*dh - ph,
 * ox*sw + kx*dw - pw) for pixel (oy, ox).
 *
 *  1. Staging: unless the input can be read as it is (stride 1, no
 *     padding, no transform, kernel width 1), every (image, channel) plane
 *     is copied once into the workspace, zero-padded (Hp = H + 2ph, Wp = W
 *     + 2pw), passed through the input transform, and split into stride_h
 *     x stride_w "phase planes": phase (a, b) holds padded (a + sh*i, b +
 *     sw*j) at (i, j), Hph = ceil(Hp/sh) rows of Wph = ceil(Wp/sw) (when
 *     the kernel's extent is within the stride, one phase per tap instead:
 *     stage_geometry). After that no tap needs a bounds test, the transform
 *     costs one pass over the input instead of KH*KW, and a stride is no
 *     longer a stride:
 *  2. Columns. Pixel (oy, ox)'s tap (ky, kx) reads padded (oy*sh + ky*dh,
 *     ox*sw + kx*dw), which is phase ((ky*dh) % sh, (kx*dw) % sw) at (oy +
 *     (ky*dh)/sh, ox + (kx*dw)/sw): a fixed offset from (oy, ox) in one
 *     phase plane. So the columns are taken over "virtual" pixels q = oy*Wph
 *     + ox, q in [0, OH*Wph), and row k of cols is a *contiguous* run of a
 *     phase plane. The micro-kernel reads it where it lies (indirect GEMM,
 *     one offset per row k): no im2col copy at all. The Wph - OW columns per
 *     row that are not real pixels are computed and dropped (a 3x3 stride-1
 *     conv on 24x24: 2 of 26; a 7x7 stride-2 stem on 100x100: 3 of 53).
 *  3. The weights W are packed ahead of time by sb_conv2d_f32_pack_weights
 *     in blocks of CB output channels: [CB biases][K x CB weights, k-major],
 *     channels past Cog zero; CB = MR (6) or NR (16) by the orientation:
 *  3b. Orientation (pixel_rows below). "Channel rows" tiles MR output
 *     channels x NR virtual-pixel columns, as described in 2 and 4.
 *     "Pixel rows" tiles MR real pixels x NR output channels: each pixel
 *     is a pointer to its tap-(0,0) value in the phase planes and row k
 *     adds the same offset to all of them, so there are no dropped columns
 *     and nothing is packed, but the tile is pixel-major and is transposed
 *     when stored (8x8 blocks in registers with AVX2). It is used unless it
 *     pads the output channels more than channel rows would (16-channel
 *     panels against 6-channel blocks, by more than 5 %): every convolution
 *     of the demos. It saves the 8-25 % of dropped columns and row padding
 *     at small maps (25x25, 13x13) for a transpose that costs about one
 *     pass over the output.
 *  4. Tiles (channel rows; pixel rows are alike with real pixels and all
 *     16-channel panels): the columns of each (n, g) are cut into blocks
 *     of at most NC; a tile is one such block, the unit of work of a
 *     thread. The row offsets of all K taps are computed once per call
 *     into the workspace (tap_offsets). For its tile a
 *     thread walks K in blocks of KC and runs the micro-kernel over every
 *     (MR-row block, NR-column panel), accumulating into a tile buffer of
 *     its own (all MR-padded rows x NC columns, so every micro-kernel call
 *     is a full tile: no edge code). Only the last panel of an (n, g), when
 *     it is partial, is packed (zero-filled) rather than read in place,
 *     which could run past the end of the input. After the last K block the
 *     epilogue -- bias, residual, ReLU -- is applied while the real pixels
 *     are copied from the tile buffer to the output.
 *
 * Determinism: K blocking depends only on K, never on the thread count or
 * the column split, and the micro-kernel sums in a fixed order, so results
 * are bit-identical for every thread count.
 *
 * Not done here: Winograd/FFT (they cannot hold torch parity bounds),
 * padding modes other than zeros, an output that overlaps the input.
 */
#include <math.h>
#include <string.h>

#include "gemm_ukernel.h"
#include "sb_internal.h"
#include "sb_isa_kernels.h"
#include "sb_parallel.h"

enum { MR = SB_CONV_MR, NR = SB_CONV_NR };
/* K block: the KC rows of a 16-column panel (at most 2 cache lines each)
 * stay in L1 while the MR x KC weight strips stream past; NC columns x KC
 * rows of input stay in L2 across the MR-row blocks. */
enum { KC_MAX = 256, NC_PANELS_MAX = 12 };
/* A convolution with fewer multiply-adds than this stays on one thread:
 * waking a thread costs more than it saves. */
#define SB_CONV_PARALLEL_MIN_MACS ((int64_t)1 << 20)

/* a >= 0, b > 0; no overflow for any a (plan_conv passes saturated sizes) */
static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* Pixel-row tiles: at most this many pixels per tile (a multiple of MR),
 * fewer when the tile buffer (pixels x output channels) would outgrow L2. */
enum { PX_TILE_MAX = 32 * MR, PX_TILE_FLOATS = 24 * 1024 };

static int sb_test_orientation = -1; /* tests: -1 the rule, 0 channel rows, 1 pixel rows */

int sb_test_conv_orientation(int orientation)
{
    sb_test_orientation = orientation < 0 ? -1 : orientation != 0;
    return 0;
}

/* Which way round the GEMM runs, a function of C_out per group alone
 * (the packed layout depends on it, and weights are packed before any
 * input is seen):
 *   channel rows: MR=6 output channels x 16 pixel columns per tile. The
 *     columns are "virtual" pixels (the phase-plane width, Wph - OW of
 *     them dropped per row, and the count rounded up to 16), the rows
 *     output channels rounded up to 6; stores are contiguous.
 *   pixel rows: MR=6 real pixels x 16 output channels. No dropped columns
 *     and only pixels rounded up to 6, but output channels round up to 16
 *     and the tile is transposed when stored (pixel-major sums into NCHW).
 * Measured on the demos' layers (Zen 3, AVX2, one process alternating the
 * two): pixel rows is 2-25 % faster wherever its channel padding is no
 * worse -- the 3x3 convolutions at 13x13-56x56, the 1x1 convolutions
 * (K = 64..224) and the 7x7 stem -- and within noise for tiny K (3..27).
 * So the rule is the channel padding alone: pixel rows unless rounding the
 * output channels up to 16 costs more than 5 % over rounding up to 6 (C_out
 * 6, 12, 24: channel rows; 13, 16, 32, 64, 128: pixel rows). */
static int pixel_rows(int64_t cog)
{
    if (sb_test_orientation >= 0)
        return sb_test_orientation;
    return cog > 0 && ceil_div(cog, NR) * NR * 20 <= ceil_div(cog, MR) * MR * 21;
}

/* Output channels per packed block: MR for channel rows, NR for pixel rows. */
static int64_t channel_block(int64_t cog)
{
    return pixel_rows(cog) ? NR : MR;
}

int64_t sb_conv2d_f32_packed_weights_floats(int64_t c_out, int64_t c_in_per_group,
                                            int64_t kernel_h, int64_t kernel_w,
                                            int64_t groups)
{
    if (c_out < 0 || c_in_per_group < 0 || kernel_h <= 0 || kernel_w <= 0 || groups <= 0 ||
        c_out % groups != 0)
        return 0;
    /* saturating (sb_internal.h): kernel sizes up to SB_CONV_PARAM_MAX */
    const int64_t k = sat_mul64(sat_mul64(c_in_per_group, kernel_h), kernel_w);
    const int64_t cb = channel_block(c_out / groups);
    return sat_mul64(sat_mul64(groups, ceil_div(c_out / groups, cb)),
                     sat_add64(cb, sat_mul64(k, cb)));
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
    if (c_out == 0)
        return SB_OK; /* nothing to pack; packed may be NULL (0 floats) */
    if (packed == NULL || (c_in_per_group > 0 && weight == NULL))
        return SB_ERR_NULL;
    if ((row_scale == NULL) != (row_shift == NULL))
        return SB_ERR_NULL;
    const int64_t k = c_in_per_group * kernel_h * kernel_w;
    const int64_t cog = c_out / groups;
    const int64_t cb = channel_block(cog);
    const int64_t blocks = ceil_div(cog, cb);
    for (int64_t g = 0; g < groups; g++) {
        for (int64_t blk = 0; blk < blocks; blk++) {
            float *dst = packed + (g * blocks + blk) * (cb + k * cb);
            for (int64_t i = 0; i < cb; i++) {
                const int64_t o = g * cog + blk * cb + i; /* output channel */
                const int valid = blk * cb + i < cog;
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
                    dst[cb + p * cb + i] = valid ? weight[o * k + p] * scale : 0.0f;
            }
        }
    }
    return SB_OK;
}

/* The staged input of one channel: its padded plane split into phase
 * planes, phase (a, b) holding padded (start_h(a) + sh*i, start_w(b) +
 * sw*j) at [i, j], i < hph, j < wph, at (a*phases_w + b) * plane_floats.
 * Per dimension (see phase_dim) there are `stride` phases starting at 0, 1,
 * ..., stride-1 -- or, when the kernel's extent (K-1)*d+1 is no wider than
 * the stride, one phase per tap, starting at t*d: a 1x1 stride-2 conv then
 * stages one plane, not four, and a stride far larger than the input costs
 * K planes, not stride^2. Phases no tap reads are neither written nor read.
 * Unstaged, the one "phase" is the input plane itself. */
typedef struct {
    int64_t hph, wph, plane_floats, chan_floats;
    int64_t phases_h, phases_w;
    int per_tap_h, per_tap_w; /* one phase per tap (extent <= stride) */
} stage_geometry;

/* One dimension of the phase split: how many phases, and whether there is
 * one per tap. With extent (K-1)*d < stride, tap t reads phase t*d (all
 * distinct, all < stride) at phase row 0 + oy. */
static int phase_per_tap(int64_t kernel, int64_t stride, int64_t dilation)
{
    return (kernel - 1) * dilation < stride;
}

/* The phase tap t of a dimension reads, and the padded coordinate its
 * phase plane starts at. */
static int64_t tap_phase(int per_tap, int64_t t, int64_t stride, int64_t dilation)
{
    return per_tap ? t : (t * dilation) % stride;
}

static int64_t phase_start(int per_tap, int64_t phase, int64_t dilation)
{
    return per_tap ? phase * dilation : phase;
}

/* Everything a tile needs, shared read-only by the threads. */
typedef struct {
    /* the (staged or original) input of image n, group g starts at
     * src + n*src_image + g*src_group; row k = (c, ky, kx) of the column
     * matrix starts at row_offset(k) from there (see tap_offsets) */
    const float *src;
    int64_t src_image, src_group;
    stage_geometry geo;
    float *out;
    sb_fmap out_map;
    const float *packed;
    sb_conv2d_params p;
    const float *residual; /* NULL: none */
    sb_fmap residual_map;
    int relu;
    int64_t cig, cog, k, m_blocks;
    int64_t columns;     /* per (n, g): OH * col_width */
    int64_t col_width;   /* columns per output row: Wph (OW real, the rest dropped) */
    int64_t kc, k_blocks;          /* K blocking (thread-count independent) */
    int64_t nc, col_blocks, tiles; /* column split (may depend on threads) */
    int64_t slots;                 /* workspace slots = threads used */
    int64_t next_tile;             /* atomic: the next tile to hand out */
    float *slot_space;             /* slots x slot_floats */
    int64_t slot_floats;
    sb_gemm_ukernel gemm;   /* the packed final panel */
    sb_igemm_ukernel igemm; /* full panels, read in place */
    sb_igemm_ukernel igemm_wide; /* pairs of full panels, or NULL */
    int64_t *tap_offset;  /* K entries: where row k starts (tap_offsets) */
    /* pixel rows (see pixel_rows): tiles of nc real pixels, all channels */
    int pixel_rows;
    int64_t ldt;         /* pixel rows: tile row stride, channel blocks * NR */
    sb_pixgemm_ukernel pixgemm, pixgemm_wide;
    int store_8x8;       /* pixel rows: AVX2 8x8 transposing store */
} conv_job;

/* Where row k = (c, ky, kx) of the column matrix starts, for k in [k0,
 * k0+kc): tap (ky, kx) reads padded row oy*sh + ky*dh, which lies in phase
 * (ky*dh) % sh at phase row oy + (ky*dh) / sh (and the same for columns),
 * so the row is the run of that phase plane starting at
 *   c*chan + phase*plane + ((ky*dh)/sh)*Wph + (kx*dw)/sw,
 * and column q = oy*Wph + ox of it is pixel (oy, ox). */
static void tap_offsets(int64_t *row_offset, const conv_job *job, int64_t k0, int64_t kc)
{
    const sb_conv2d_params *p = &job->p;
    const stage_geometry *g = &job->geo;
    const int64_t taps = p->kernel_h * p->kernel_w;
    for (int64_t kk = 0; kk < kc; kk++) {
        const int64_t c = (k0 + kk) / taps, tap = (k0 + kk) % taps;
        const int64_t ky = tap / p->kernel_w, kx = tap % p->kernel_w;
        const int64_t phase =
            tap_phase(g->per_tap_h, ky, p->stride_h, p->dilation_h) * g->phases_w +
            tap_phase(g->per_tap_w, kx, p->stride_w, p->dilation_w);
        row_offset[kk] = c * g->chan_floats + phase * g->plane_floats +
                         ((ky * p->dilation_h) / p->stride_h) * g->wph +
                         (kx * p->dilation_w) / p->stride_w;
    }
}

/* Packs the final, partial panel of an (image, group): columns [col0,
 * col0+ncols), ncols < NR, of rows k0.. k0+kc-1 into dst (kc x NR,
 * k-major), zero past ncols. Reading these columns in place could run past
 * the end of the input, so they are copied instead. */
static void pack_partial_panel(float *restrict dst, const float *restrict src_ng,
                               const int64_t *restrict row_offset, int64_t kc, int64_t col0,
                               int64_t ncols)
{
    for (int64_t kk = 0; kk < kc; kk++) {
        float *d = dst + kk * NR;
        memcpy(d, src_ng + row_offset[kk] + col0, (size_t)ncols * sizeof(float));
        memset(d + ncols, 0, (size_t)(NR - ncols) * sizeof(float));
    }
}

/* Copies the real pixels of a finished tile buffer to the output, applying
 * the epilogue in torch's order: (sum + bias) + residual, then torch.relu
 * (x < 0 ? 0 : x, keeping NaN and -0.0). */
static void store_tile(const conv_job *job, const float *restrict tile, int64_t n, int64_t g,
                       int64_t col0, int64_t ncols, const float *group_weights)
{
    const int64_t pixels = job->out_map.h * job->out_map.w, ow = job->out_map.w;
    float *out = job->out + n * job->out_map.batch_stride + g * job->cog * pixels;
    const float *res = job->residual == NULL ? NULL
        : job->residual + n * job->residual_map.batch_stride + g * job->cog * pixels;
    for (int64_t m = 0; m < job->cog; m++) {
        const float bias = group_weights[(m / MR) * (MR + job->k * MR) + m % MR];
        const float *trow = tile + m * job->nc;
        float *orow = out + m * pixels;
        const float *rrow = res ? res + m * pixels : NULL;
        int64_t j = 0;
        while (j < ncols) {
            /* one output row's worth of real pixels at a time */
            const int64_t col = col0 + j;
            const int64_t oy = col / job->col_width, ox = col % job->col_width;
            const int64_t seg = min64(job->col_width - ox, ncols - j);
            const int64_t real = ox >= ow ? 0 : min64(seg, ow - ox);
            const int64_t pix = oy * ow + ox;
            const float *t = trow + j;
            float *o = orow + pix;
            if (rrow != NULL) {
                const float *r = rrow + pix;
                for (int64_t q = 0; q < real; q++) {
                    const float v = (t[q] + bias) + r[q];
                    o[q] = job->relu && v < 0.0f ? 0.0f : v;
                }
            } else {
                for (int64_t q = 0; q < real; q++) {
                    const float v = t[q] + bias;
                    o[q] = job->relu && v < 0.0f ? 0.0f : v;
                }
            }
            j += seg;
        }
    }
}

/* One tile: image n, group g, column block cb. */
static void run_tile(const conv_job *job, int64_t tile_index, float *restrict slot)
{
    const int64_t per_image = job->p.groups * job->col_blocks;
    const int64_t n = tile_index / per_image;
    const int64_t g = (tile_index % per_image) / job->col_blocks;
    const int64_t cb = tile_index % job->col_blocks;
    const int64_t col0 = cb * job->nc;
    const int64_t ncols = min64(job->nc, job->columns - col0);
    const int64_t full = ncols / NR, rest = ncols % NR;
    float *panel = slot;                   /* KC_MAX x NR: the partial panel */
    float *tile = slot + KC_MAX * NR;      /* m_blocks*MR x nc sums */
    const float *src_ng = job->src + n * job->src_image + g * job->src_group;
    const float *group_weights = job->packed + g * job->m_blocks * (MR + job->k * MR);

    for (int64_t kb = 0; kb < job->k_blocks; kb++) {
        const int64_t k0 = kb * job->kc;
        const int64_t kc = min64(job->kc, job->k - k0);
        const int64_t *row_offset = job->tap_offset + k0;
        if (rest)
            pack_partial_panel(panel, src_ng, row_offset, kc, col0 + full * NR, rest);
        const float *b = src_ng + col0;
        for (int64_t mb = 0; mb < job->m_blocks; mb++) {
            const float *a = group_weights + mb * (MR + job->k * MR) + MR + k0 * MR;
            float *c = tile + mb * MR * job->nc;
            int64_t pj = 0;
            if (job->igemm_wide != NULL) /* two panels per call (AVX-512) */
                for (; pj + 1 < full; pj += 2)
                    job->igemm_wide(kc, a, b + pj * NR, row_offset, c + pj * NR, job->nc,
                                    kb > 0);
            for (; pj < full; pj++)
                job->igemm(kc, a, b + pj * NR, row_offset, c + pj * NR, job->nc, kb > 0);
            if (rest)
                job->gemm(kc, a, panel, c + full * NR, job->nc, kb > 0);
        }
    }
    if (job->k == 0) /* no input channels (C API): an empty sum, so the bias */
        for (int64_t i = 0; i < job->m_blocks * MR * job->nc; i++)
            tile[i] = 0.0f;
    store_tile(job, tile, n, g, col0, ncols, group_weights);
}

/* Pixel rows: copies a finished tile (pixel-major, row stride ldt) to the
 * output (channel-major), with the same epilogue in the same order as
 * store_tile. Pixels p0.. p0+npix-1 of the (n, g) output are contiguous. */
static void store_pixel_tile(const conv_job *job, const float *restrict tile, int64_t n,
                             int64_t g, int64_t p0, int64_t npix, const float *group_weights)
{
    const int64_t pixels = job->out_map.h * job->out_map.w, ldt = job->ldt;
    float *out = job->out + n * job->out_map.batch_stride + (g * job->cog) * pixels + p0;
    const float *res = job->residual == NULL ? NULL
        : job->residual + n * job->residual_map.batch_stride + (g * job->cog) * pixels + p0;
    int64_t m_done = 0, i_done = 0; /* channels / pixels stored by 8x8 blocks */
#ifdef SB_HAVE_AVX2_KERNELS
    if (job->store_8x8) {
        /* 8 channels lie in one 16-channel panel, their biases contiguous */
        m_done = job->cog / 8 * 8;
        i_done = npix / 8 * 8;
        for (int64_t m = 0; m < m_done; m += 8) {
            const float *bias = group_weights + (m / NR) * (NR + job->k * NR) + m % NR;
            for (int64_t i = 0; i < i_done; i += 8)
                sb_conv2d_store_block_8x8__avx2(out + m * pixels + i, pixels, tile + i * ldt + m,
                                                ldt, bias, res ? res + m * pixels + i : NULL,
                                                pixels, job->relu);
        }
    }
#endif
    for (int64_t m = 0; m < job->cog; m++) {
        const float bias = group_weights[(m / NR) * (NR + job->k * NR) + m % NR];
        /* what the blocks left: every pixel of channels >= m_done, and
         * pixels >= i_done of the others */
        const int64_t i0 = m < m_done ? i_done : 0;
        const float *t = tile + m + i0 * ldt;
        float *o = out + m * pixels + i0;
        if (res != NULL) {
            const float *r = res + m * pixels + i0;
            for (int64_t i = 0; i < npix - i0; i++) {
                const float v = (t[i * ldt] + bias) + r[i];
                o[i] = job->relu && v < 0.0f ? 0.0f : v;
            }
        } else {
            for (int64_t i = 0; i < npix - i0; i++) {
                const float v = t[i * ldt] + bias;
                o[i] = job->relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}

/* Pixel rows: one tile of pixels [p0, p0 + npix) of image n, group g, all
 * output channels. Each pixel is a pointer to its tap-(0,0) input value in
 * the phase planes; row k of the GEMM adds the same row_offset to every
 * pixel (tap_offsets). Every read is a real tap of a real pixel, so
 * nothing is packed; a partial last block of MR repeats its last pixel. */
static void run_pixel_tile(const conv_job *job, int64_t tile_index, float *restrict slot)
{
    const int64_t per_image = job->p.groups * job->col_blocks;
    const int64_t n = tile_index / per_image;
    const int64_t g = (tile_index % per_image) / job->col_blocks;
    const int64_t p0 = (tile_index % job->col_blocks) * job->nc;
    const int64_t npix = min64(job->nc, job->columns - p0);
    const int64_t blocks = ceil_div(npix, MR);
    const int64_t panels = ceil_div(job->cog, NR), panel_floats = NR + job->k * NR;
    const int64_t ow = job->out_map.w;
    const float *src_ng = job->src + n * job->src_image + g * job->src_group;
    const float *group_weights = job->packed + g * panels * panel_floats;
    float *tile = slot; /* blocks*MR x ldt sums */

    const float *px[PX_TILE_MAX];
    for (int64_t i = 0; i < blocks * MR; i++) {
        const int64_t q = p0 + min64(i, npix - 1);
        px[i] = src_ng + (q / ow) * job->geo.wph + q % ow;
    }
    for (int64_t kb = 0; kb < job->k_blocks; kb++) {
        const int64_t k0 = kb * job->kc;
        const int64_t kc = min64(job->kc, job->k - k0);
        const int64_t *row_offset = job->tap_offset + k0;
        int64_t pp = 0;
        while (pp < panels) {
            /* two channel panels per call where the ISA has a 32-wide kernel */
            const int wide = job->pixgemm_wide != NULL && pp + 1 < panels;
            const sb_pixgemm_ukernel kernel = wide ? job->pixgemm_wide : job->pixgemm;
            const float *w = group_weights + pp * panel_floats + NR + k0 * NR;
            for (int64_t b = 0; b < blocks; b++)
                kernel(kc, px + b * MR, row_offset, w, panel_floats,
                       tile + b * MR * job->ldt + pp * NR, job->ldt, kb > 0);
            pp += wide ? 2 : 1;
        }
    }
    if (job->k == 0)
        for (int64_t i = 0; i < blocks * MR * job->ldt; i++)
            tile[i] = 0.0f;
    store_pixel_tile(job, tile, n, g, p0, npix, group_weights);
}

/* Slot s of the parallel loop takes tiles from a shared counter until none
 * is left, using its own workspace. Tiles are handed out dynamically so a
 * thread that starts late (or runs slowly) simply takes fewer; a tile's
 * result does not depend on which slot computes it, so the output is the
 * same bits whatever the split. */
static void run_slot(void *ctx, int64_t begin, int64_t end)
{
    conv_job *job = (conv_job *)ctx;
    for (int64_t s = begin; s < end; s++) {
        float *slot = job->slot_space + s * job->slot_floats;
        for (;;) {
            const int64_t t = __atomic_fetch_add(&job->next_tile, 1, __ATOMIC_RELAXED);
            if (t >= job->tiles)
                break;
            if (job->pixel_rows)
                run_pixel_tile(job, t, slot);
            else
                run_tile(job, t, slot);
        }
    }
}

/* Whether some tap t < kernel reads phase r of a dimension. One phase per
 * tap: always. Else some (t*dilation) % stride == r; that repeats with
 * period at most stride, so taps past the stride add nothing (and here the
 * stride is at most the kernel's extent, so this loop is short). */
static int phase_used(int per_tap, int64_t r, int64_t kernel, int64_t stride,
                      int64_t dilation)
{
    if (per_tap)
        return 1;
    for (int64_t t = 0; t < kernel && t < stride; t++)
        if ((t * dilation) % stride == r)
            return 1;
    return 0;
}

/* Staging (step 1): planes [begin, end) of N*C_in, each zero-padded,
 * transformed and split into its phase planes in the workspace. */
typedef struct {
    const float *in;
    sb_fmap in_map;
    float *staged;
    stage_geometry geo;
    int64_t pad_h, pad_w, stride_h, stride_w, kernel_h, kernel_w, dilation_h, dilation_w;
    int64_t image_floats, group_floats, cig;
    const float *scale, *shift; /* NULL: no transform */
    int relu;
    int fma; /* the transform is one FMA (the AVX2 kernels are selected) */
} stage_job;

/* One phase plane: phase row i, column j holds padded (y0 + sh*i, x0 + sw*j),
 * i.e. input (y0 + sh*i - ph, x0 + sw*j - pw) transformed, or 0 outside. */
static void stage_phase(const stage_job *sj, float *restrict d, const float *restrict x,
                        float s, float t, int64_t y0, int64_t x0)
{
    const int64_t h = sj->in_map.h, w = sj->in_map.w;
    const int64_t hph = sj->geo.hph, wph = sj->geo.wph, sw = sj->stride_w;
    /* phase columns [j_lo, j_hi) fall inside the input row */
    int64_t j_lo = 0, j_hi = 0;
    while (j_lo < wph && x0 + sw * j_lo < sj->pad_w) j_lo++;
    j_hi = j_lo;
    while (j_hi < wph && x0 + sw * j_hi < sj->pad_w + w) j_hi++;
    const int transform = sj->scale != NULL || sj->relu;
    for (int64_t i = 0; i < hph; i++) {
        float *drow = d + i * wph;
        const int64_t y = y0 + sj->stride_h * i - sj->pad_h;
        if (y < 0 || y >= h) {
            memset(drow, 0, (size_t)wph * sizeof(float));
            continue;
        }
        const float *xrow = x + y * w + (x0 + sw * j_lo - sj->pad_w);
        for (int64_t j = 0; j < j_lo; j++) drow[j] = 0.0f;
        float *dmid = drow + j_lo;
        const int64_t n_mid = j_hi - j_lo;
        /* The BatchNorm transform rounds as sb_batch_norm_apply_f32 on the
         * same ISA (one FMA on the AVX2 path, a product and a sum on the
         * portable one), so fused and layer-by-layer give the same bits.
         * A ReLU alone (no scale) leaves x as it is, -0.0 included. */
        const int affine = sj->scale != NULL;
        if (sw == 1 && !transform) {
            memcpy(dmid, xrow, (size_t)n_mid * sizeof(float));
#ifdef SB_HAVE_AVX2_KERNELS
        } else if (sw == 1 && affine && sj->fma) {
            sb_batch_norm_apply_plane_f32__avx2(dmid, xrow, NULL, n_mid, s, t, sj->relu);
#endif
        } else if (sw == 1 && affine && !sj->fma) {
            /* the portable path's common case, as a loop that vectorises */
            for (int64_t j = 0; j < n_mid; j++) {
                const float v = xrow[j] * s + t;
                dmid[j] = sj->relu && v < 0.0f ? 0.0f : v; /* torch.relu */
            }
        } else {
            for (int64_t j = 0; j < n_mid; j++) {
                const float x_j = xrow[j * sw];
                const float v = !affine ? x_j : sj->fma ? fmaf(x_j, s, t) : x_j * s + t;
                dmid[j] = sj->relu && v < 0.0f ? 0.0f : v; /* torch.relu */
            }
        }
        for (int64_t j = j_hi; j < wph; j++) drow[j] = 0.0f;
    }
}

static void stage_planes(void *ctx, int64_t begin, int64_t end)
{
    const stage_job *sj = (const stage_job *)ctx;
    const stage_geometry *geo = &sj->geo;
    const int64_t h = sj->in_map.h, w = sj->in_map.w, c_total = sj->in_map.c;
    for (int64_t plane = begin; plane < end; plane++) {
        const int64_t n = plane / c_total, c = plane % c_total;
        const int64_t g = c / sj->cig, cl = c % sj->cig;
        const float *x = sj->in + n * sj->in_map.batch_stride + c * h * w;
        float *d = sj->staged + n * sj->image_floats + g * sj->group_floats +
                   cl * geo->chan_floats;
        const float s = sj->scale ? sj->scale[c] : 1.0f;
        const float t = sj->scale ? sj->shift[c] : 0.0f;
        for (int64_t a = 0; a < geo->phases_h; a++) {
            if (!phase_used(geo->per_tap_h, a, sj->kernel_h, sj->stride_h, sj->dilation_h))
                continue;
            for (int64_t b = 0; b < geo->phases_w; b++)
                if (phase_used(geo->per_tap_w, b, sj->kernel_w, sj->stride_w, sj->dilation_w))
                    stage_phase(sj, d + (a * geo->phases_w + b) * geo->plane_floats, x, s, t,
                                phase_start(geo->per_tap_h, a, sj->dilation_h),
                                phase_start(geo->per_tap_w, b, sj->dilation_w));
        }
        /* the slack after a group's last plane (read by dropped columns) */
        if (cl == sj->cig - 1) {
            const int64_t used = sj->cig * geo->chan_floats;
            memset(sj->staged + n * sj->image_floats + g * sj->group_floats + used, 0,
                   (size_t)(sj->group_floats - used) * sizeof(float));
        }
    }
}

/* The geometry of a call, shared by the workspace-size function and the
 * kernel so the two can never disagree. */
typedef struct {
    int threads, staged, pixel_rows;
    int fits; /* the workspace is at most SB_WORKSPACE_FLOATS_MAX floats */
    int64_t workspace_floats;
    stage_geometry geo;
    int64_t group_floats, image_floats, staged_floats;
    int64_t offsets_floats; /* the row offsets of all K taps, as int64 */
    /* columns: per (n, g), virtual pixels (channel rows) or real pixels
     * (pixel rows); nc: per tile */
    int64_t columns, col_width, nc, m_blocks, ldt, slot_floats;
} conv_plan;

static void plan_conv(conv_plan *pl, const sb_fmap *out, const sb_fmap *in,
                      const sb_conv2d_params *p, int transform, int num_threads)
{
    const int64_t cig = in->c / p->groups, cog = out->c / p->groups;
    const int64_t k = cig * p->kernel_h * p->kernel_w;
    const int64_t macs = sat_mul64(sat_mul64(out->n * out->c, out->h * out->w), k);
    stage_geometry *geo = &pl->geo;
    pl->threads = (num_threads < 1 || macs < SB_CONV_PARALLEL_MIN_MACS) ? 1 : num_threads;
    /* Read the input as it is when it needs no padding, transform or phase
     * split, and no column run reads past a plane (one of a kernel wider
     * than 1 would). Otherwise stage it. */
    const int unit_stride = p->stride_h == 1 && p->stride_w == 1;
    pl->staged = transform || p->pad_h > 0 || p->pad_w > 0 || !unit_stride ||
                 p->kernel_w > 1;
    /* The staging sizes saturate (sat_add64, sat_mul64): parameters near
     * SB_CONV_PARAM_MAX (a stride of 2^31 stages 2^31 phase planes per axis)
     * give sizes past int64, which must come out too large, not wrapped. */
    const int64_t hp = sat_add64(in->h, 2 * p->pad_h), wp = sat_add64(in->w, 2 * p->pad_w);
    /* (unstaged: stride 1 and no padding, so one phase, the plane itself) */
    geo->hph = ceil_div(hp, p->stride_h);
    geo->wph = ceil_div(wp, p->stride_w);
    geo->plane_floats = sat_mul64(geo->hph, geo->wph);
    geo->per_tap_h = phase_per_tap(p->kernel_h, p->stride_h, p->dilation_h);
    geo->per_tap_w = phase_per_tap(p->kernel_w, p->stride_w, p->dilation_w);
    geo->phases_h = geo->per_tap_h ? p->kernel_h : p->stride_h;
    geo->phases_w = geo->per_tap_w ? p->kernel_w : p->stride_w;
    geo->chan_floats =
        sat_mul64(sat_mul64(geo->phases_h, geo->phases_w), geo->plane_floats);
    /* dropped columns of the last phase row run past the last plane by at
     * most this much */
    const int64_t slack = ((p->kernel_w - 1) * p->dilation_w) / p->stride_w;
    pl->group_floats = sat_add64(sat_mul64(cig, geo->chan_floats), slack);
    pl->image_floats = sat_mul64(p->groups, pl->group_floats);
    pl->staged_floats = pl->staged ? sat_mul64(in->n, pl->image_floats) : 0;
    pl->offsets_floats = sat_mul64(k, (int64_t)(sizeof(int64_t) / sizeof(float)));
    pl->col_width = geo->wph;
    pl->pixel_rows = pixel_rows(cog);
    /* Tiles: as wide as fits L2, but narrow enough to give every thread
     * about two tiles when there are few images. */
    const int64_t units = out->n * p->groups;
    const int64_t want_blocks = ceil_div(2 * (int64_t)pl->threads, units > 0 ? units : 1);
    pl->m_blocks = ceil_div(cog, MR);
    if (pl->pixel_rows) {
        pl->columns = out->h * out->w;
        pl->ldt = ceil_div(cog, NR) * NR;
        const int64_t max_blocks = max64(1, min64(PX_TILE_MAX, PX_TILE_FLOATS / pl->ldt) / MR);
        int64_t blocks = ceil_div(ceil_div(pl->columns, MR), want_blocks);
        blocks = max64(1, min64(blocks, max_blocks));
        pl->nc = blocks * MR;
        pl->slot_floats = pl->nc * pl->ldt;
    } else {
        pl->columns = out->h * pl->col_width;
        int64_t nc_panels = ceil_div(ceil_div(pl->columns, NR), want_blocks);
        nc_panels = max64(1, min64(nc_panels, NC_PANELS_MAX));
        pl->nc = nc_panels * NR;
        pl->ldt = 0;
        pl->slot_floats = KC_MAX * NR + pl->m_blocks * MR * pl->nc;
    }
    pl->workspace_floats = sat_add64(sat_add64(pl->offsets_floats, pl->staged_floats),
                                     sat_mul64(pl->threads, pl->slot_floats));
    pl->fits = pl->workspace_floats <= SB_WORKSPACE_FLOATS_MAX;
}

static int conv_args_ok(const sb_fmap *out, const sb_fmap *in, const sb_conv2d_params *p)
{
    /* SB_CONV_PARAM_MAX keeps the output size and the input offsets in
     * int64 range; the staging sizes are checked in plan_conv */
    return p->kernel_h > 0 && p->kernel_w > 0 && p->stride_h > 0 && p->stride_w > 0 &&
           p->stride_h <= SB_CONV_PARAM_MAX && p->stride_w <= SB_CONV_PARAM_MAX &&
           p->pad_h <= SB_CONV_PARAM_MAX && p->pad_w <= SB_CONV_PARAM_MAX &&
           p->dilation_h <= SB_CONV_PARAM_MAX && p->dilation_w <= SB_CONV_PARAM_MAX &&
           p->kernel_h <= SB_CONV_PARAM_MAX && p->kernel_w <= SB_CONV_PARAM_MAX &&
           p->dilation_h > 0 && p->dilation_w > 0 && p->pad_h >= 0 && p->pad_w >= 0 &&
           p->groups > 0 && sb_fmap_ok(out) && sb_fmap_ok(in) && out->n == in->n &&
           in->c % p->groups == 0 && out->c % p->groups == 0 &&
           out->h > 0 && out->w > 0 &&
           out->h == sb_conv2d_out_size(in->h, p->kernel_h, p->stride_h, p->pad_h,
                                        p->dilation_h) &&
           out->w == sb_conv2d_out_size(in->w, p->kernel_w, p->stride_w, p->pad_w,
                                        p->dilation_w);
}

static int has_transform(const sb_conv2d_fusion *fusion)
{
    return fusion != NULL && (fusion->in_scale != NULL || fusion->in_relu);
}

int64_t sb_conv2d_f32_packed_workspace_floats(const sb_fmap *out, const sb_fmap *in,
                                              const sb_conv2d_params *params,
                                              const sb_conv2d_fusion *fusion,
                                              int num_threads)
{
    if (out == NULL || in == NULL || params == NULL || !conv_args_ok(out, in, params))
        return 0;
    conv_plan pl;
    plan_conv(&pl, out, in, params, has_transform(fusion), num_threads);
    return pl.fits ? pl.workspace_floats : 0;
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
    if (!conv_args_ok(out, in, p))
        return SB_ERR_SHAPE;
    sb_conv2d_fusion none;
    memset(&none, 0, sizeof none);
    const sb_conv2d_fusion *f = fusion != NULL ? fusion : &none;
    if ((f->in_scale == NULL) != (f->in_shift == NULL))
        return SB_ERR_NULL;
    if (f->residual != NULL) {
        const sb_fmap *r = &f->residual_map;
        if (r->n != out->n || r->c != out->c || r->h != out->h || r->w != out->w ||
            !sb_fmap_ok(r))
            return SB_ERR_SHAPE;
    }
    if (out->n == 0 || out->c == 0)
        return SB_OK;
    if (out_data == NULL || packed_weights == NULL || workspace == NULL ||
        (in->c > 0 && in_data == NULL))
        return SB_ERR_NULL;

    /* the same plan the workspace was sized with */
    conv_plan pl;
    plan_conv(&pl, out, in, p, has_transform(f), num_threads);
    if (!pl.fits) /* the workspace function returned 0 for these sizes */
        return SB_ERR_SHAPE;

    conv_job job;
    memset(&job, 0, sizeof job);
    job.p = *p;
    job.cig = in->c / p->groups;
    job.cog = out->c / p->groups;
    job.k = job.cig * p->kernel_h * p->kernel_w;
    job.m_blocks = pl.m_blocks;
    job.out = out_data;
    job.out_map = *out;
    job.packed = packed_weights;
    job.residual = f->residual;
    job.residual_map = f->residual_map;
    job.relu = f->out_relu;
    job.geo = pl.geo;
    job.columns = pl.columns;
    job.col_width = pl.col_width;
    job.nc = pl.nc;
    /* K blocks of equal size <= KC_MAX: a function of K alone. */
    job.k_blocks = max64(1, ceil_div(job.k, KC_MAX));
    job.kc = max64(1, ceil_div(job.k, job.k_blocks));
    job.col_blocks = ceil_div(pl.columns, pl.nc);
    job.tiles = out->n * p->groups * job.col_blocks;
    job.slots = min64(pl.threads, job.tiles);
    job.slot_floats = pl.slot_floats;
    /* workspace: [K row offsets (int64)][staged input][slots]; the offsets
     * are computed once per call, not per tile */
    float *staged = workspace + pl.offsets_floats;
    job.tap_offset = (int64_t *)(void *)workspace;
    job.slot_space = staged + pl.staged_floats;
    /* every kernel of this call from one reading of the ISA */
    const sb_isa isa = sb_get_isa();
    const int avx2 = sb_isa_runs_avx2_kernels(isa);
    job.gemm = sb_gemm_ukernel_for(isa);
    job.igemm = sb_igemm_ukernel_for(isa);
    job.igemm_wide = sb_igemm_wide_ukernel_for(isa);
    job.pixel_rows = pl.pixel_rows;
    job.ldt = pl.ldt;
    job.pixgemm = sb_pixgemm_ukernel_for(isa);
    job.pixgemm_wide = sb_pixgemm_wide_ukernel_for(isa);
    job.store_8x8 = avx2;

    if (pl.staged) {
        stage_job sj = {in_data, *in, staged, pl.geo,
                        p->pad_h, p->pad_w, p->stride_h, p->stride_w,
                        p->kernel_h, p->kernel_w, p->dilation_h, p->dilation_w,
                        pl.image_floats, pl.group_floats, job.cig,
                        f->in_scale, f->in_shift, f->in_relu, avx2};
        const int64_t planes = in->n * in->c;
        if (pl.threads > 1)
            sb_parallel_for(planes, 16, stage_planes, &sj);
        else
            stage_planes(&sj, 0, planes);
        job.src = staged;
        job.src_image = pl.image_floats;
        job.src_group = pl.group_floats;
    } else {
        /* stride 1, no padding, no transform: read the input in place */
        job.src = in_data;
        job.src_image = in->batch_stride;
        job.src_group = job.cig * in->h * in->w;
    }
    tap_offsets(job.tap_offset, &job, 0, job.k);
    if (job.slots <= 1)
        run_slot(&job, 0, 1);
    else
        sb_parallel_for(job.slots, 1, run_slot, &job);
    return SB_OK;
}

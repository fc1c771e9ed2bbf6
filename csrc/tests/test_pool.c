/*
 * test_pool.c -- pooling: sb_max_pool2d_f32 and sb_adaptive_avg_pool2d_f32
 * (with its AVX2 global mean, adaptive_avg_pool2d_f32__avx2.c) against
 * their references, on every kernel path and on 1, 2 and 3 threads.
 *
 *   - sb_pool2d_out_size against a table generated with torch 2.13's
 *     max_pool2d (ceil_mode's last-window rule, sizes torch refuses);
 *   - max_pool2d against sb_max_pool2d_f32__ref, bit for bit: 1,500 random
 *     kernel / stride / padding / dilation / ceil_mode cases, NaN, -inf,
 *     ties and -0.0 in the input, windows that hold no input tap (-inf),
 *     strided maps, N = 0; plus maps big enough to be split over threads;
 *   - adaptive_avg_pool2d against a double-precision mean (600 random
 *     shapes, output sizes above the input's included) and against
 *     sb_adaptive_avg_pool2d_f32__ref: windowed outputs bit for bit, the
 *     global (1x1) mean to TOL_POOL_MEAN;
 *   - the global mean on every path and thread count bit for bit the
 *     scalar path's, for plane sizes around the 8-float vector and the
 *     4096-float block, non-finite inputs and signed zeros;
 *   - argument errors and size limits as statuses, the references' the
 *     same.
 *
 * Tolerances, in one place:
 *   TOL_ACCUM      adaptive pool vs its mean in double, |d| / (1 + |mean|):
 *                  float sums of up to 15x15 values;
 *   TOL_POOL_MEAN  the global mean vs its reference, |fast - ref| /
 *                  (1 + mean of |x|): the kernel's float lanes (up to 512
 *                  adds per lane in a 4096-float block) against the
 *                  reference's double sum;
 *   exact          max pool everywhere; windowed adaptive pool vs its
 *                  reference (the same float sum in the same order); the
 *                  global mean between paths and thread counts; statuses.
 */
#include "test_harness.h"

#define TOL_ACCUM 1e-6
#define TOL_POOL_MEAN 1e-6

/* {in, kernel, stride, pad, dilation, ceil_mode, torch's size or -1 when
 * torch raises}, generated with torch 2.13 max_pool2d. */
static const int64_t pool_size_cases[][7] = {
    {3, 3, 4, 1, 1, 1, 1},
    {12, 2, 4, 0, 2, 1, 3},
    {18, 4, 4, 2, 1, 1, 5},
    {18, 1, 2, 0, 3, 1, 9},
    {17, 1, 3, 0, 2, 1, 6},
    {2, 2, 4, 1, 1, 1, 1},
    {6, 2, 3, 0, 1, 1, 2},
    {3, 2, 4, 0, 1, 1, 1},
    {11, 2, 3, 1, 2, 1, 4},
    {17, 1, 3, 0, 1, 1, 6},
    {10, 4, 3, 2, 1, 1, 4},
    {11, 1, 3, 0, 3, 1, 4},
    {14, 3, 4, 1, 1, 1, 4},
    {8, 3, 4, 0, 1, 1, 2},
    {17, 3, 3, 1, 1, 1, 6},
    {6, 5, 4, 0, 2, 1, 1},
    {4, 2, 4, 1, 3, 1, 2},
    {12, 2, 1, 1, 3, 1, 11},
    {2, 2, 2, 1, 2, 1, 2},
    {18, 5, 4, 2, 3, 1, 4},
    {17, 5, 4, 2, 2, 1, 4},
    {10, 3, 2, 1, 1, 1, 6},
    {11, 2, 1, 1, 1, 1, 12},
    {14, 2, 1, 1, 3, 1, 13},
    {16, 5, 1, 2, 2, 1, 12},
    {16, 5, 2, 2, 3, 1, 5},
    {1, 1, 2, 0, 2, 1, 1},
    {15, 4, 4, 0, 1, 1, 4},
    {11, 3, 3, 0, 1, 1, 4},
    {8, 2, 1, 1, 2, 1, 8},
    {16, 2, 1, 0, 3, 1, 13},
    {17, 4, 1, 0, 1, 1, 14},
    {7, 3, 2, 0, 2, 1, 2},
    {13, 5, 2, 0, 2, 1, 3},
    {19, 5, 3, 1, 1, 1, 7},
    {4, 5, 3, 2, 1, 0, 2},
    {18, 4, 1, 2, 1, 0, 19},
    {9, 2, 4, 0, 1, 0, 2},
    {2, 3, 3, 1, 1, 0, 1},
    {2, 2, 1, 1, 1, 0, 3},
    {2, 2, 3, 0, 1, 0, 1},
    {14, 4, 3, 0, 1, 0, 4},
    {12, 5, 3, 1, 3, 0, 1},
    {1, 2, 4, 1, 1, 0, 1},
    {19, 1, 4, 0, 3, 0, 5},
    {18, 2, 3, 0, 1, 0, 6},
    {10, 3, 1, 1, 2, 0, 8},
    {15, 2, 2, 1, 1, 0, 8},
    {7, 3, 2, 0, 2, 0, 2},
    {19, 4, 2, 1, 1, 0, 9},
    {3, 5, 3, 1, 2, 1, -1},
    {8, 5, 3, 1, 3, 1, -1},
    {1, 3, 1, 1, 2, 0, -1},
    {4, 5, 4, 0, 2, 0, -1},
    {2, 4, 1, 0, 3, 1, -1},
    {11, 5, 1, 0, 3, 1, -1},
    {3, 5, 4, 2, 3, 0, -1},
    {4, 5, 1, 1, 2, 0, -1},
    {5, 4, 2, 0, 3, 0, -1},
    {2, 4, 2, 0, 2, 0, -1}
};

/* One max-pool case: random input with NaN, -inf, ties and -0.0, output
 * prefilled (NaN, sentinels); the kernel on every path and thread count
 * against the reference, bit for bit. Returns the mismatches. */
static int64_t run_max_pool(const sb_fmap *in, const sb_fmap *out, const sb_pool2d_params *p,
                            int64_t *runs, int label)
{
    int64_t bad = 0;
    const int64_t ic = map_floats(in), oc = map_floats(out);
    float *x = alloc_f(ic), *y = alloc_f(oc), *y_ref = alloc_f(oc);
    fill_rand(x, ic);
    for (int64_t i = 0; i < ic; i++)   /* sprinkle NaN, -inf, ties, -0 */
        if (frand() > 0.93f) {
            float r = frand();
            x[i] = r > 0.5f ? NAN : r > 0.0f ? -INFINITY : r > -0.5f ? 0.25f : -0.0f;
        }
    float *x_copy = dup_f(x, ic);
    prefill_map(y_ref, out);
    expect_status("maxpool ref", sb_max_pool2d_f32__ref(y_ref, out, x, in, p), SB_OK, &bad);
    for (int path = 0; path < g_n_isas; path++)
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_isa(path, &bad);
            use_threads(g_threads[ti], &bad);
            prefill_map(y, out);
            expect_status("maxpool", sb_max_pool2d_f32(y, out, x, in, p), SB_OK, &bad);
            const int64_t nb = count_not_same(y, y_ref, oc) + count_bad_gaps(y, out) +
                               count_not_same(x, x_copy, ic);
            if (nb)
                printf("  maxpool case %d [%s, %d thr]: %lld mismatches\n", label,
                       path_name(path), g_threads[ti], (long long)nb);
            bad += nb;
            (*runs)++;
        }
    use_threads(1, &bad);
    free(x); free(y); free(y_ref); free(x_copy);
    return bad;
}

static void test_max_pool(void)
{
    int64_t bad = 0, cases = 0, runs = 0;
    for (size_t i = 0; i < sizeof pool_size_cases / sizeof pool_size_cases[0]; i++) {
        const int64_t *t = pool_size_cases[i];
        int64_t got = sb_pool2d_out_size(t[0], t[1], t[2], t[3], t[4], (int)t[5]);
        int ok = t[6] < 0 ? got <= 0 : got == t[6];
        if (!ok) {
            printf("  pool_out_size(%lld,%lld,%lld,%lld,%lld,ceil=%lld) = %lld, torch %lld\n",
                   (long long)t[0], (long long)t[1], (long long)t[2], (long long)t[3],
                   (long long)t[4], (long long)t[5], (long long)got, (long long)t[6]);
            bad++;
        }
    }
    report("pool2d_out_size vs torch table", (int64_t)(sizeof pool_size_cases / sizeof pool_size_cases[0]), 0.0, 0.0, bad);

    bad = 0;
    for (int it = 0; it < 1500; it++) {
        sb_pool2d_params p;
        p.kernel_h = irand(1, 5);
        p.kernel_w = irand(1, 5);
        p.stride_h = irand(1, 4);
        p.stride_w = irand(1, 4);
        p.pad_h = irand(0, p.kernel_h / 2);   /* torch's limit */
        p.pad_w = irand(0, p.kernel_w / 2);
        p.dilation_h = irand(1, 3);
        p.dilation_w = irand(1, 3);
        if (it % 50 == 0) {   /* beyond torch's pad limit: empty windows must give -inf */
            p.pad_h = p.kernel_h + 2;
            p.dilation_h = 1;
        }
        const int ceil_mode = it & 1;
        sb_fmap in = {irand(0, 3), irand(1, 5), irand(1, 14), irand(1, 14), 0};
        in.batch_stride = in.c * in.h * in.w + ((it % 3 == 0) ? irand(1, 20) : 0);
        sb_fmap out = {in.n, in.c,
                       sb_pool2d_out_size(in.h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h, ceil_mode),
                       sb_pool2d_out_size(in.w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w, ceil_mode), 0};
        if (out.h <= 0 || out.w <= 0)
            continue;
        out.batch_stride = out.c * out.h * out.w + ((it % 4 == 0) ? 9 : 0);
        bad += run_max_pool(&in, &out, &p, &runs, it);
        cases++;
    }
    /* Maps big enough to be split over threads (planes of >= 2^16 floats'
     * work in all): the document's 3x3 stride-2 pool after a stem, a 2x2
     * stride-2 one with an odd width, and ceil mode with padding. */
    {
        static const int64_t big[][10] = {   /* n c h w  k s p d ceil extra */
            {2, 64, 57, 57, 3, 2, 0, 1, 0, 0},
            {1, 48, 50, 51, 2, 2, 0, 1, 0, 5},
            {3, 40, 29, 31, 3, 2, 1, 1, 1, 0},
        };
        for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
            const int64_t *b = big[i];
            const sb_pool2d_params p = {b[4], b[4], b[5], b[5], b[6], b[6], b[7], b[7]};
            const sb_fmap in = {b[0], b[1], b[2], b[3], b[1] * b[2] * b[3] + b[9]};
            sb_fmap out = {b[0], b[1], sb_pool2d_out_size(b[2], b[4], b[5], b[6], b[7], (int)b[8]),
                           sb_pool2d_out_size(b[3], b[4], b[5], b[6], b[7], (int)b[8]), 0};
            out.batch_stride = out.c * out.h * out.w + b[9];
            bad += run_max_pool(&in, &out, &p, &runs, 10000 + (int)i);
            cases++;
        }
    }
    /* out->h neither floor nor ceil size, and bad params */
    {
        float v[64];
        sb_pool2d_params p = {2, 2, 2, 2, 0, 0, 1, 1};
        sb_fmap in = {1, 1, 4, 4, 16}, out = {1, 1, 3, 2, 6};
        expect_status("maxpool wrong OH", sb_max_pool2d_f32(v, &out, v + 32, &in, &p), SB_ERR_SHAPE, &bad);
        p.stride_w = 0;
        out.h = 2;
        expect_status("maxpool stride 0", sb_max_pool2d_f32(v, &out, v + 32, &in, &p), SB_ERR_ARGUMENT, &bad);
    }
    printf("  (%lld kernel runs: every case on every path and thread count)\n", (long long)runs);
    report("max_pool2d vs __ref (exact)", cases, bad ? 1.0 : 0.0, 0.0, bad);
}

static void test_adaptive_avg_pool(int path)
{
    double worst = 0.0;
    int64_t cases = 0, bad = 0;
    use_isa(path, &bad);
    for (int it = 0; it < 600; it++) {
        sb_fmap in = {irand(0, 3), irand(1, 4), irand(1, 15), irand(1, 15), 0};
        in.batch_stride = in.c * in.h * in.w + ((it % 3 == 0) ? 11 : 0);
        sb_fmap out = {in.n, in.c, irand(1, 8), irand(1, 8), 0};
        if (it % 5 == 0)
            out.h = out.w = 1;   /* the global-mean path */
        out.batch_stride = out.c * out.h * out.w + ((it % 4 == 0) ? 3 : 0);
        const int64_t ic = in.n * in.batch_stride, oc = out.n * out.batch_stride;
        float *x = alloc_f(ic), *y = alloc_f(oc);
        fill_rand(x, ic);
        fill_val(y, oc, SENTINEL);
        for (int64_t n = 0; n < out.n; n++)
            fill_val(y + n * out.batch_stride, out.c * out.h * out.w, NAN);
        expect_status("adaptive", sb_adaptive_avg_pool2d_f32(y, &out, x, &in), SB_OK, &bad);
        for (int64_t n = 0; n < in.n; n++)
            for (int64_t c = 0; c < in.c; c++)
                for (int64_t i = 0; i < out.h; i++)
                    for (int64_t j = 0; j < out.w; j++) {
                        /* Window from the real-valued definition. */
                        int64_t h0 = (int64_t)floor((double)i * in.h / out.h);
                        int64_t h1 = (int64_t)ceil((double)(i + 1) * in.h / out.h);
                        int64_t w0 = (int64_t)floor((double)j * in.w / out.w);
                        int64_t w1 = (int64_t)ceil((double)(j + 1) * in.w / out.w);
                        double s = 0.0;
                        for (int64_t y0 = h0; y0 < h1; y0++)
                            for (int64_t x0 = w0; x0 < w1; x0++)
                                s += x[n * in.batch_stride + (c * in.h + y0) * in.w + x0];
                        s /= (double)((h1 - h0) * (w1 - w0));
                        double d = rel_diff(y[n * out.batch_stride + (c * out.h + i) * out.w + j], (float)s);
                        if (d > worst) worst = d;
                    }
        for (int64_t n = 0; n < out.n; n++)
            for (int64_t i = out.c * out.h * out.w; i < out.batch_stride; i++)
                bad += y[n * out.batch_stride + i] != SENTINEL;
        free(x); free(y);
        cases++;
    }
    report_isa("adaptive_avg_pool2d vs naive", path, cases, worst, TOL_ACCUM, bad);
}

/* One adaptive-pool case on every path and thread count against the
 * reference: windowed outputs bit for bit, the global mean within
 * TOL_POOL_MEAN of it (scaled by the mean of |x|, from the reference on
 * |x|). *worst collects the global cases' difference. */
static int64_t run_adaptive(const sb_fmap *in, const sb_fmap *out, double *worst, int64_t *runs)
{
    int64_t bad = 0;
    const int64_t ic = map_floats(in), oc = map_floats(out);
    const int global = out->h == 1 && out->w == 1;
    float *x = alloc_f(ic), *y = alloc_f(oc), *y_ref = alloc_f(oc), *y_mag = alloc_f(oc);
    fill_rand(x, ic);
    float *x_abs = abs_dup(x, ic), *x_copy = dup_f(x, ic);
    prefill_map(y_ref, out);
    prefill_map(y_mag, out);
    expect_status("adaptive ref", sb_adaptive_avg_pool2d_f32__ref(y_ref, out, x, in), SB_OK, &bad);
    expect_status("adaptive mag", sb_adaptive_avg_pool2d_f32__ref(y_mag, out, x_abs, in), SB_OK, &bad);
    for (int path = 0; path < g_n_isas; path++)
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_isa(path, &bad);
            use_threads(g_threads[ti], &bad);
            prefill_map(y, out);
            expect_status("adaptive", sb_adaptive_avg_pool2d_f32(y, out, x, in), SB_OK, &bad);
            if (global) {
                const double d = max_scaled(y, y_ref, y_mag, oc);
                if (!(d <= *worst))
                    *worst = d;
            } else {
                bad += count_not_same(y, y_ref, oc);
            }
            bad += count_bad_gaps(y, out) + count_not_same(x, x_copy, ic);
            (*runs)++;
        }
    use_threads(1, &bad);
    free(x); free(y); free(y_ref); free(y_mag); free(x_abs); free(x_copy);
    return bad;
}

static void test_adaptive_vs_ref(void)
{
    double worst = 0.0;
    int64_t cases = 0, bad = 0, runs = 0;
    for (int it = 0; it < 300; it++) {
        sb_fmap in = {irand(0, 3), irand(1, 17), irand(1, 15), irand(1, 15), 0};
        in.batch_stride = in.c * in.h * in.w + ((it % 3 == 0) ? 11 : 0);
        sb_fmap out = {in.n, in.c, irand(1, 8), irand(1, 8), 0};
        if (it % 5 == 0)
            out.h = out.w = 1;   /* the global-mean path */
        if (it % 7 == 0)
            out.w = 1;           /* one column: a windowed mean, not the global one */
        out.batch_stride = out.c * out.h * out.w + ((it % 4 == 0) ? 3 : 0);
        bad += run_adaptive(&in, &out, &worst, &runs);
        cases++;
    }
    /* split over threads: SEAttention-like global pools and windowed ones */
    static const int64_t big[][7] = {   /* n c h w oh ow extra */
        {2, 40, 56, 56, 7, 7, 0}, {2, 30, 45, 47, 4, 5, 9}, {4, 64, 30, 30, 1, 1, 0},
        {3, 24, 65, 67, 1, 1, 5},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        const int64_t *b = big[i];
        const sb_fmap in = {b[0], b[1], b[2], b[3], b[1] * b[2] * b[3] + b[6]};
        const sb_fmap out = {b[0], b[1], b[4], b[5], b[1] * b[4] * b[5] + b[6]};
        bad += run_adaptive(&in, &out, &worst, &runs);
        cases++;
    }
    printf("  (%lld kernel runs: every case on every path and thread count)\n", (long long)runs);
    report("adaptive_avg_pool2d vs __ref (windows exact)", cases, worst, TOL_POOL_MEAN, bad);
}

/* The global average pool (SEAttention's squeeze) on every kernel path
 * and 1-3 threads must give the scalar path's bits: plane sizes below, at
 * and around the 8-float vector (1..17), SEAttention's 7x7 and a few
 * larger ones, padded image strides, and non-finite inputs and signed
 * zeros (a masked-off tail lane must not change a sum). The scalar path on
 * one thread is also held to the reference's mean. */
static void test_global_pool_paths(void)
{
    /* ... and around the pool's block of SB_POOL_BLOCK (4096) floats */
    static const int64_t plane_sizes[] = {1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 24, 49, 50, 64,
                                          100, 4095, 4096, 4097, 8199, 12288};
    int64_t bad = 0, cases = 0, bad_ref = 0;
    double worst_ref = 0.0;
    for (size_t si = 0; si < sizeof plane_sizes / sizeof plane_sizes[0]; si++) {
        for (int variant = 0; variant < 3; variant++) {
            const int64_t hw = plane_sizes[si];
            /* variant 2: enough planes (x hw) to be split over threads */
            const int64_t n = 1 + variant, c = variant == 2 ? (hw > 100 ? 24 : 700) : 5 + variant;
            sb_fmap in = {n, c, 1, hw, c * hw + (variant == 1 ? 11 : 0)};
            sb_fmap pooled = {n, c, 1, 1, c + (variant == 1 ? 3 : 0)};
            const int64_t ic = n * in.batch_stride, pc = n * pooled.batch_stride;
            float *x = alloc_f(ic), *ref_pool = alloc_f(pc), *pool = alloc_f(pc);
            fill_rand(x, ic);
            x[0] = -0.0f;
            if (ic > 9) {
                x[3] = INFINITY;
                x[ic - 2] = NAN;
                x[ic / 2] = -INFINITY;
            }
            for (int path = 0; path < g_n_isas; path++) {
                for (int ti = 0; ti < N_THREADS; ti++) {
                    use_isa(path, &bad);
                    use_threads(g_threads[ti], &bad);
                    const int first = path == 0 && ti == 0;
                    float *p = first ? ref_pool : pool;
                    fill_val(p, pc, SENTINEL);
                    expect_status("pool", sb_adaptive_avg_pool2d_f32(p, &pooled, x, &in), SB_OK, &bad);
                    if (!first)
                        bad += count_not_same(pool, ref_pool, pc);
                    cases++;
                }
            }
            /* the reference, on finite values (a non-finite plane's mean is
             * inf or NaN on both sides) */
            float *xf = dup_f(x, ic), *xf_abs, *mean_ref = alloc_f(pc), *mean_mag = alloc_f(pc);
            for (int64_t i = 0; i < ic; i++)
                if (!isfinite(xf[i]))
                    xf[i] = 0.5f;
            xf_abs = abs_dup(xf, ic);
            fill_val(mean_ref, pc, SENTINEL);
            fill_val(mean_mag, pc, SENTINEL);
            use_isa(0, &bad_ref);
            use_threads(1, &bad_ref);
            expect_status("pool", sb_adaptive_avg_pool2d_f32(pool, &pooled, xf, &in), SB_OK, &bad_ref);
            expect_status("pool ref", sb_adaptive_avg_pool2d_f32__ref(mean_ref, &pooled, xf, &in), SB_OK, &bad_ref);
            expect_status("pool mag", sb_adaptive_avg_pool2d_f32__ref(mean_mag, &pooled, xf_abs, &in), SB_OK, &bad_ref);
            const double d = max_scaled(pool, mean_ref, mean_mag, pc);
            if (!(d <= worst_ref))
                worst_ref = d;
            free(xf); free(xf_abs); free(mean_ref); free(mean_mag);
            free(x); free(ref_pool); free(pool);
        }
    }
    use_isa(0, &bad);
    use_threads(1, &bad);
    report("global pool, every path = scalar (exact)", cases, bad ? 1.0 : 0.0, 0.0, bad);
    report("global pool, scalar vs __ref", (int64_t)(sizeof plane_sizes / sizeof plane_sizes[0]) * 3,
           worst_ref, TOL_POOL_MEAN, bad_ref);
}

/* The references check their arguments as their kernels do. */
static void test_pool_ref_statuses(void)
{
    float v[256];
    fill_val(v, 256, 0.0f);
    int64_t bad = 0, n = 0;
    const sb_pool2d_params p = {2, 2, 2, 2, 0, 0, 1, 1};
    const sb_fmap in = {1, 2, 4, 4, 32}, out = {1, 2, 2, 2, 8};
    struct {
        sb_pool2d_params p;
        sb_fmap in, out;
        int null_data, null_params;
    } t[12];
    for (int k = 0; k < 12; k++) {
        t[k].p = p;
        t[k].in = in;
        t[k].out = out;
        t[k].null_data = t[k].null_params = 0;
    }
    int nt = 0;
    nt++;                                   /* valid */
    t[nt++].out.h = 3;                      /* neither floor nor ceil size */
    t[nt++].p.stride_w = 0;
    t[nt++].p.dilation_h = -1;
    t[nt++].p.pad_w = -1;
    t[nt++].p.kernel_h = SB_POOL_PARAM_MAX + 1;
    t[nt++].out.c = 3;                      /* channels differ */
    t[nt++].out.n = 2;                      /* batch differs */
    t[nt].in.n = t[nt].out.n = 0; t[nt++].null_data = 1; /* empty: NULL data is fine */
    t[nt++].null_data = 1;
    t[nt++].null_params = 1;
    t[nt].in.n = t[nt].out.n = 2; t[nt].in.batch_stride = 20; nt++; /* images overlap */
    for (int k = 0; k < nt; k++, n++) {
        float *y = t[k].null_data ? NULL : v;
        const float *x = t[k].null_data ? NULL : v + 64;
        const sb_pool2d_params *pp = t[k].null_params ? NULL : &t[k].p;
        expect_status("maxpool ref status", sb_max_pool2d_f32__ref(y, &t[k].out, x, &t[k].in, pp),
                      sb_max_pool2d_f32(y, &t[k].out, x, &t[k].in, pp), &bad);
    }
    /* adaptive: sizes (empty input or output planes), NULLs */
    const sb_fmap a_in[] = {{1, 2, 4, 4, 32}, {1, 2, 0, 4, 0}, {1, 2, 4, 4, 32}, {1, 3, 4, 4, 48},
                            {0, 2, 4, 4, 32}, {2, 2, 4, 4, 20}};
    const sb_fmap a_out[] = {{1, 2, 2, 3, 12}, {1, 2, 2, 3, 12}, {1, 2, 0, 3, 0}, {1, 2, 2, 3, 12},
                             {0, 2, 1, 1, 2}, {2, 2, 2, 2, 8}};
    for (size_t k = 0; k < sizeof a_in / sizeof a_in[0]; k++, n++)
        expect_status("adaptive ref status", sb_adaptive_avg_pool2d_f32__ref(v, &a_out[k], v + 64, &a_in[k]),
                      sb_adaptive_avg_pool2d_f32(v, &a_out[k], v + 64, &a_in[k]), &bad);
    expect_status("adaptive ref NULL", sb_adaptive_avg_pool2d_f32__ref(NULL, &a_out[0], v + 64, &a_in[0]),
                  sb_adaptive_avg_pool2d_f32(NULL, &a_out[0], v + 64, &a_in[0]), &bad);
    expect_status("adaptive ref NULL map", sb_adaptive_avg_pool2d_f32__ref(v, NULL, v + 64, &a_in[0]),
                  sb_adaptive_avg_pool2d_f32(v, NULL, v + 64, &a_in[0]), &bad);
    n += 2;
    report("pool __ref statuses = kernel's", n, 0.0, 0.0, bad);
}

/* Pooling parameters past int (torch's limit) are refused, not computed
 * with overflowing offsets. */
static void test_size_limits(void)
{
    int64_t bad = 0, checks = 0;
    const int64_t big = SB_CONV_PARAM_MAX;
    float out[4], scratch[64];
    fill_val(scratch, 64, 0.0f);
    sb_pool2d_params pool = {big + 1, 1, 1, 1, 0, 0, 1, 1};
    sb_fmap pin = {1, 1, 4, 4, 16}, pout = {1, 1, 1, 4, 4};
    checks++;
    bad += sb_pool2d_out_size(4, big + 1, 1, 0, 1, 0) != 0;
    checks++;
    bad += sb_max_pool2d_f32(out, &pout, scratch, &pin, &pool) != SB_ERR_ARGUMENT;
    report("pool size limits (refusal)", checks, 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("pool");
    test_max_pool();
    for (int path = 0; path < g_n_isas; path++)
        test_adaptive_avg_pool(path);
    test_adaptive_vs_ref();
    test_global_pool_paths();
    test_pool_ref_statuses();
    test_size_limits();
    return test_end();
}

/*
 * test_kernels.c -- standalone checks of the skipblocks C kernels.
 *
 * Each fast kernel is compared with its __ref twin or with a naive loop
 * written here, over sweeps that hit tile sizes exactly, just below and just
 * above (XNNPACK style), odd sizes, groups, stride / padding / dilation,
 * batch_stride > C*H*W (channel slices) and empty batches. Outputs are
 * pre-filled with NaN so an element a kernel forgets to write fails loudly
 * (NNPACK style), and the gaps between strided rows / images are filled with
 * a sentinel that must survive. Every check prints its max difference
 * (llm.c style); the exit status is nonzero if any check fails.
 *
 * Build (output outside the repo):
 *   K=csrc/kernels
 *   gcc -O2 -std=c99 -Wall -Wextra -Icsrc/include $K/status.c $K/gemm_f32.c \
 *       $K/conv2d_f32.c $K/batch_norm_f32.c $K/max_pool2d_f32.c \
 *       $K/adaptive_avg_pool2d_f32.c $K/elementwise_f32.c $K/linear_f32.c \
 *       csrc/tests/test_kernels.c -lm -o /tmp/test_kernels
 * Run under valgrind --error-exitcode=1 to catch out-of-bounds access:
 * buffers are malloc'd at their exact size for that reason.
 *
 * Tolerances, in one place: exact (bitwise, NaN == NaN) for ops whose
 * result is exactly determined (relu, max-pool, channel scale, bn apply).
 * The ops that sum in a different order (gemm, conv2d, linear) are held to
 * |fast - ref| / (1 + mag), where mag is the same op applied to |inputs|,
 * i.e. the sum of the magnitudes of the terms: the quantity rounding error
 * is proportional to. This does not loosen with cancellation (small ref)
 * the way |fast - ref| / |ref| would, and a wrong or missing term still
 * shows up as ~1e-3 or more.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skipblocks.h"

#define TOL_GEMM 1e-5    /* gemm, conv2d, linear: reordered float sums, vs mag */
#define TOL_ACCUM 1e-6   /* bn stats/fold, adaptive pool, sigmoid vs double */
#define SENTINEL 12345.0f

static int g_failures = 0;

/* ---- helpers --------------------------------------------------------- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float frand(void)   /* uniform in [-1, 1) */
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
static int64_t irand(int64_t lo, int64_t hi)   /* inclusive */
{
    return lo + (int64_t)((frand() + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

static float *alloc_f(int64_t count)
{
    /* malloc(0) may return NULL; kernels accept NULL for empty buffers. */
    float *p = count > 0 ? malloc((size_t)count * sizeof(float)) : NULL;
    if (count > 0 && p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}
static void fill_rand(float *p, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = frand();
}
static void fill_val(float *p, int64_t count, float v)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = v;
}
static float *dup_f(const float *src, int64_t count)
{
    float *p = alloc_f(count);
    if (count > 0)
        memcpy(p, src, (size_t)count * sizeof(float));
    return p;
}

/* Bitwise equality, except that any two NaNs are equal. */
static int same_float(float a, float b)
{
    if (a != a || b != b)
        return a != a && b != b;
    return memcmp(&a, &b, sizeof a) == 0;
}
static double rel_diff(float fast, float ref)
{
    if (fast != fast || ref != ref)
        return (fast != fast && ref != ref) ? 0.0 : INFINITY;
    if (isinf(fast) || isinf(ref))
        return fast == ref ? 0.0 : INFINITY;
    return fabs((double)fast - (double)ref) / (1.0 + fabs((double)ref));
}
static double max_rel(const float *fast, const float *ref, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double d = rel_diff(fast[i], ref[i]);
        if (!(d <= m))
            m = d;   /* also picks up NaN / inf */
    }
    return m;
}
/* Error scaled by the magnitude of the summed terms (see the top). */
static double max_scaled(const float *fast, const float *ref, const float *mag, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double d;
        if (fast[i] != fast[i] || ref[i] != ref[i])
            d = (fast[i] != fast[i] && ref[i] != ref[i]) ? 0.0 : INFINITY;
        else
            d = fabs((double)fast[i] - (double)ref[i]) / (1.0 + fabs((double)mag[i]));
        if (!(d <= m))
            m = d;
    }
    return m;
}
static float *abs_dup(const float *src, int64_t count)
{
    float *p = dup_f(src, count);
    for (int64_t i = 0; i < count; i++)
        p[i] = fabsf(p[i]);
    return p;
}

static int64_t count_not_same(const float *a, const float *b, int64_t count)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < count; i++)
        bad += !same_float(a[i], b[i]);
    return bad;
}

/* One line per check group: name, cases run, worst difference, verdict. */
static void report(const char *name, int64_t cases, double worst, double tol, int64_t extra_bad)
{
    int ok = worst <= tol && extra_bad == 0;
    printf("%-34s %6lld cases  max diff %.3g (tol %.0e)%s  %s\n", name, (long long)cases,
           worst, tol, extra_bad ? "  [bad sentinel/status]" : "", ok ? "ok" : "FAIL");
    if (!ok)
        g_failures++;
}

static void expect_status(const char *what, sb_status got, sb_status want, int64_t *bad)
{
    if (got != want) {
        printf("  status mismatch in %s: got %d (%s), want %d\n", what, (int)got,
               sb_status_string(got), (int)want);
        (*bad)++;
    }
}

/* ---- GEMM -------------------------------------------------------------- */

static void test_gemm(void)
{
    /* Around the 4 x 8 register tile, its multiples, and the 64 / 256 cache
     * blocks (k = 256, 257 crosses a KC boundary). */
    static const int64_t ms[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 63, 64, 65, 67};
    static const int64_t ns[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 255, 256, 257, 300};
    static const int64_t ks[] = {0, 1, 2, 5, 8, 17, 255, 256, 257, 530};
    const int nm = sizeof ms / sizeof ms[0], nn = sizeof ns / sizeof ns[0];
    const int nk = sizeof ks / sizeof ks[0];
    double worst = 0.0;
    int64_t cases = 0, bad = 0;
    for (int im = 0; im < nm; im++)
        for (int in_ = 0; in_ < nn; in_++)
            for (int ik = 0; ik < nk; ik++)
                for (int accumulate = 0; accumulate < 2; accumulate++) {
                    const int64_t m = ms[im], n = ns[in_], k = ks[ik];
                    /* Large products are slow under valgrind and add nothing. */
                    if (m * n * k > 4000000)
                        continue;
                    /* Padded strides on odd cases, tight ones on even. */
                    const int64_t pad = (cases & 1) ? 3 : 0;
                    const int64_t lda = k + pad, ldb = n + pad, ldc = n + pad;
                    const int64_t sa = m * lda, sb = k * ldb, sc = m * ldc;
                    float *a = alloc_f(sa), *b = alloc_f(sb);
                    float *c = alloc_f(sc), *c_ref = alloc_f(sc);
                    fill_rand(a, sa);
                    fill_rand(b, sb);
                    if (accumulate)
                        fill_rand(c, sc);
                    else
                        fill_val(c, sc, NAN);
                    for (int64_t i = 0; i < m; i++)   /* row gaps hold the sentinel */
                        for (int64_t j = n; j < ldc; j++)
                            c[i * ldc + j] = SENTINEL;
                    if (sc > 0)
                        memcpy(c_ref, c, (size_t)sc * sizeof(float));
                    expect_status("gemm", sb_gemm_f32(c, a, b, m, n, k, lda, ldb, ldc, accumulate), SB_OK, &bad);
                    /* c_mag = |c0| + |a| |b|, computed before c_ref is overwritten */
                    float *a_abs = abs_dup(a, sa), *b_abs = abs_dup(b, sb), *c_mag = abs_dup(c_ref, sc);
                    expect_status("gemm mag", sb_gemm_f32__ref(c_mag, a_abs, b_abs, m, n, k, lda, ldb, ldc, accumulate), SB_OK, &bad);
                    expect_status("gemm ref", sb_gemm_f32__ref(c_ref, a, b, m, n, k, lda, ldb, ldc, accumulate), SB_OK, &bad);
                    double d = max_scaled(c, c_ref, c_mag, sc);
                    if (d > TOL_GEMM)
                        printf("  gemm m=%lld n=%lld k=%lld acc=%d: %.3g\n", (long long)m,
                               (long long)n, (long long)k, accumulate, d);
                    if (d > worst) worst = d;
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = n; j < ldc; j++)
                            bad += c[i * ldc + j] != SENTINEL;
                    /* k == 0 and no accumulate must write exact zeros. */
                    if (k == 0 && !accumulate)
                        for (int64_t i = 0; i < m; i++)
                            for (int64_t j = 0; j < n; j++)
                                bad += c[i * ldc + j] != 0.0f;
                    free(a); free(b); free(c); free(c_ref);
                    free(a_abs); free(b_abs); free(c_mag);
                    cases++;
                }
    report("gemm vs ref", cases, worst, TOL_GEMM, bad);

    /* NaN and inf must propagate through the fast path (no zero skipping):
     * a NaN in a[1, 2] poisons row 1; an inf in b times a 0 in a gives NaN. */
    {
        enum { M = 9, N = 19, K = 11 };
        float a[M * K], b[K * N], c[M * N], c_ref[M * N];
        fill_rand(a, M * K);
        fill_rand(b, K * N);
        a[1 * K + 2] = NAN;
        a[5 * K + 3] = 0.0f;
        b[3 * N + 4] = INFINITY;
        bad = 0;
        expect_status("gemm nan", sb_gemm_f32(c, a, b, M, N, K, K, N, N, 0), SB_OK, &bad);
        expect_status("gemm nan ref", sb_gemm_f32__ref(c_ref, a, b, M, N, K, K, N, N, 0), SB_OK, &bad);
        for (int j = 0; j < N; j++)
            bad += !(c[1 * N + j] != c[1 * N + j]);
        bad += !(c[5 * N + 4] != c[5 * N + 4]);
        report("gemm NaN/inf propagation", 1, max_rel(c, c_ref, M * N), TOL_GEMM, bad);
    }

    /* Argument errors. */
    {
        float x[16] = {0};
        bad = 0;
        expect_status("gemm m<0", sb_gemm_f32(x, x, x, -1, 2, 2, 2, 2, 2, 0), SB_ERR_SHAPE, &bad);
        expect_status("gemm lda<k", sb_gemm_f32(x, x, x, 2, 2, 3, 2, 2, 2, 0), SB_ERR_ARGUMENT, &bad);
        expect_status("gemm ldc<n", sb_gemm_f32(x, x, x, 2, 3, 2, 2, 3, 2, 0), SB_ERR_ARGUMENT, &bad);
        expect_status("gemm c NULL", sb_gemm_f32(NULL, x, x, 2, 2, 2, 2, 2, 2, 0), SB_ERR_NULL, &bad);
        expect_status("gemm a NULL", sb_gemm_f32(x, NULL, x, 2, 2, 2, 2, 2, 2, 0), SB_ERR_NULL, &bad);
        expect_status("gemm empty NULL", sb_gemm_f32(NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0), SB_OK, &bad);
        report("gemm argument errors", 6, 0.0, 0.0, bad);
    }
}

/* ---- Conv2d ------------------------------------------------------------- */

typedef struct {
    int64_t n, cin, cout, h, w, kh, kw, sh, sw, ph, pw, dh, dw, g;
    int64_t in_extra, out_extra;   /* batch_stride - C*H*W */
    int bias;
} conv_case;

/* Runs one case through fast and reference; returns the max rel diff and
 * adds to *bad for wrong statuses, clobbered sentinels or a modified input. */
static double run_conv(const conv_case *t, int64_t *bad)
{
    sb_conv2d_params p = {t->kh, t->kw, t->sh, t->sw, t->ph, t->pw, t->dh, t->dw, t->g};
    const int64_t oh = sb_conv2d_out_size(t->h, t->kh, t->sh, t->ph, t->dh);
    const int64_t ow = sb_conv2d_out_size(t->w, t->kw, t->sw, t->pw, t->dw);
    if (oh <= 0 || ow <= 0)
        return 0.0;
    sb_fmap in = {t->n, t->cin, t->h, t->w, t->cin * t->h * t->w + t->in_extra};
    sb_fmap out = {t->n, t->cout, oh, ow, t->cout * oh * ow + t->out_extra};
    const int64_t in_count = t->n * in.batch_stride, out_count = t->n * out.batch_stride;
    const int64_t w_count = t->cout * (t->cin / t->g) * t->kh * t->kw;
    float *x = alloc_f(in_count), *wt = alloc_f(w_count), *bias = alloc_f(t->cout);
    float *y = alloc_f(out_count), *y_ref = alloc_f(out_count);
    fill_rand(x, in_count);
    fill_rand(wt, w_count);
    fill_rand(bias, t->cout);
    float *x_copy = dup_f(x, in_count);
    /* Image payload NaN, gap after each image the sentinel. */
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t i = 0; i < out.batch_stride; i++)
            y[n * out.batch_stride + i] = i < t->cout * oh * ow ? NAN : SENTINEL;
    if (out_count > 0)
        memcpy(y_ref, y, (size_t)out_count * sizeof(float));
    const int64_t ws_count = sb_conv2d_f32_workspace_floats(&out, &in, &p);
    float *ws = alloc_f(ws_count);   /* exact size: valgrind catches overruns */
    const float *bp = t->bias ? bias : NULL;
    expect_status("conv", sb_conv2d_f32(y, &out, x, &in, wt, bp, &p, ws), SB_OK, bad);
    expect_status("conv ref", sb_conv2d_f32__ref(y_ref, &out, x, &in, wt, bp, &p), SB_OK, bad);
    float *x_abs = abs_dup(x, in_count), *w_abs = abs_dup(wt, w_count), *b_abs = abs_dup(bias, t->cout);
    float *y_mag = dup_f(y, out_count);
    expect_status("conv mag", sb_conv2d_f32__ref(y_mag, &out, x_abs, &in, w_abs, t->bias ? b_abs : NULL, &p), SB_OK, bad);
    const double d = max_scaled(y, y_ref, y_mag, out_count);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t i = t->cout * oh * ow; i < out.batch_stride; i++)
            *bad += y[n * out.batch_stride + i] != SENTINEL;
    *bad += count_not_same(x, x_copy, in_count);
    if (d > TOL_GEMM)
        printf("  conv n=%lld cin=%lld cout=%lld %lldx%lld k=%lldx%lld s=%lld,%lld p=%lld,%lld "
               "d=%lld,%lld g=%lld: %.3g\n", (long long)t->n, (long long)t->cin,
               (long long)t->cout, (long long)t->h, (long long)t->w, (long long)t->kh,
               (long long)t->kw, (long long)t->sh, (long long)t->sw, (long long)t->ph,
               (long long)t->pw, (long long)t->dh, (long long)t->dw, (long long)t->g, d);
    free(x); free(wt); free(bias); free(y); free(y_ref); free(x_copy); free(ws);
    free(x_abs); free(w_abs); free(b_abs); free(y_mag);
    return d;
}

static void test_conv(void)
{
    double worst = 0.0;
    int64_t cases = 0, bad = 0;

    /* Hand-picked: the shapes of the document's blocks and the edge cases. */
    static const conv_case fixed[] = {
        /* n cin cout  h  w kh kw sh sw ph pw dh dw  g  ie oe bias */
        {2,   3,  16, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* stem 3x3 */
        {1,   3,   8, 31, 29, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0, 0, 1},   /* ResNet stem */
        {2,  16,  32, 15, 15, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0},   /* 1x1 fast path */
        {3,  24,  12,  9,  7, 1, 1, 1, 1, 0, 0, 1, 1, 1, 40, 7, 1},  /* 1x1, slices */
        {2,  16,  16, 10, 11, 3, 3, 1, 1, 1, 1, 1, 1, 16, 0, 0, 1},  /* depthwise */
        {2,  12,  18,  9,  9, 3, 3, 2, 2, 1, 1, 1, 1, 3, 0, 0, 1},   /* groups 3 */
        {1,   4,   6, 12, 13, 3, 3, 1, 1, 2, 2, 2, 2, 2, 0, 0, 1},   /* dilation */
        {2,   5,   7, 11,  6, 2, 4, 3, 1, 0, 2, 1, 3, 1, 13, 21, 1}, /* asymmetric */
        {1,   8,   4,  6,  6, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0, 0, 1},   /* strided 1x1 */
        {1,   8,   4,  6,  6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* padded 1x1 */
        {1,   2,   3,  1,  1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 1x1 image */
        {1,   2,   3,  2,  2, 5, 5, 1, 1, 2, 2, 1, 1, 1, 0, 0, 1},   /* kernel > image */
        {1,   2,   3,  5,  5, 3, 3, 7, 7, 1, 1, 1, 1, 1, 0, 0, 1},   /* stride > image */
        {0,   4,   4,  8,  8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* N = 0 */
        {2,  64,  32, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* K = 576 > KC */
        {1,  40,  70, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* m > MC, n > NC */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        double d = run_conv(&fixed[i], &bad);
        if (d > worst) worst = d;
        cases++;
    }

    /* Random small cases covering every parameter at once. */
    for (int it = 0; it < 1500; it++) {
        conv_case t;
        t.g = irand(1, 4);
        t.cin = t.g * irand(1, 4);
        t.cout = t.g * irand(1, 5);
        t.n = irand(0, 3);
        t.h = irand(1, 13);
        t.w = irand(1, 13);
        t.kh = irand(1, 5);
        t.kw = irand(1, 5);
        t.sh = irand(1, 3);
        t.sw = irand(1, 3);
        t.ph = irand(0, 3);
        t.pw = irand(0, 3);
        t.dh = irand(1, 3);
        t.dw = irand(1, 3);
        t.in_extra = (it % 3 == 0) ? irand(1, 50) : 0;
        t.out_extra = (it % 4 == 0) ? irand(1, 50) : 0;
        t.bias = it % 5 != 0;
        if (it % 7 == 0) {   /* force the pointwise path often */
            t.kh = t.kw = t.sh = t.sw = 1;
            t.ph = t.pw = 0;
        }
        if (sb_conv2d_out_size(t.h, t.kh, t.sh, t.ph, t.dh) <= 0 ||
            sb_conv2d_out_size(t.w, t.kw, t.sw, t.pw, t.dw) <= 0)
            continue;
        double d = run_conv(&t, &bad);
        if (d > worst) worst = d;
        cases++;
    }
    report("conv2d vs ref", cases, worst, TOL_GEMM, bad);

    /* Output size helper against torch's formula on known values. */
    bad = 0;
    bad += sb_conv2d_out_size(32, 3, 1, 1, 1) != 32;
    bad += sb_conv2d_out_size(224, 7, 2, 3, 1) != 112;
    bad += sb_conv2d_out_size(5, 3, 2, 0, 1) != 2;
    bad += sb_conv2d_out_size(7, 3, 2, 2, 2) != 4;
    bad += sb_conv2d_out_size(2, 5, 1, 1, 1) > 0;      /* kernel does not fit */
    bad += sb_conv2d_out_size(5, 3, 0, 0, 1) > 0;      /* bad stride */
    report("conv2d_out_size", 6, 0.0, 0.0, bad);

    /* Workspace: 0 for the pointwise case, Cig*KH*KW*OH*OW otherwise. */
    {
        sb_conv2d_params p1 = {1, 1, 1, 1, 0, 0, 1, 1, 2};
        sb_conv2d_params p3 = {3, 3, 1, 1, 1, 1, 1, 1, 2};
        sb_fmap in = {2, 8, 10, 10, 800}, out = {2, 6, 10, 10, 600};
        bad = 0;
        bad += sb_conv2d_f32_workspace_floats(&out, &in, &p1) != 0;
        bad += sb_conv2d_f32_workspace_floats(&out, &in, &p3) != 4 * 9 * 100;
        report("conv2d workspace size", 2, 0.0, 0.0, bad);
    }

    /* NaN / inf in input and weights propagate (nothing skipped on zeros). */
    {
        conv_case t = {1, 3, 4, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
        sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
        sb_fmap in = {1, 3, 6, 7, 126}, out = {1, 4, 6, 7, 168};
        float x[126], wt[4 * 27], y[168], y_ref[168], ws[27 * 42];
        fill_rand(x, 126);
        fill_rand(wt, 4 * 27);
        x[1 * 42 + 3 * 7 + 3] = NAN;          /* channel 1, (3, 3) */
        x[0] = 0.0f;
        wt[2 * 27 + 0 * 9 + 4] = INFINITY;    /* oc 2, ci 0, centre tap: hits x[0] = 0 at (0, 0) */
        bad = 0;
        expect_status("conv nan", sb_conv2d_f32(y, &out, x, &in, wt, NULL, &p, ws), SB_OK, &bad);
        expect_status("conv nan ref", sb_conv2d_f32__ref(y_ref, &out, x, &in, wt, NULL, &p), SB_OK, &bad);
        for (int oc = 0; oc < 4; oc++)   /* every output channel sees the NaN at (3,3) */
            bad += !(y[oc * 42 + 3 * 7 + 3] != y[oc * 42 + 3 * 7 + 3]);
        bad += !(y[2 * 42] != y[2 * 42]);  /* inf * 0 = NaN */
        report("conv2d NaN/inf propagation", 1, max_rel(y, y_ref, 168), TOL_GEMM, bad);
        (void)t;
    }

    /* Argument errors come back as statuses, never as crashes. */
    {
        float buf[4096];
        fill_val(buf, 4096, 0.0f);
        sb_fmap in = {1, 4, 8, 8, 256}, out = {1, 4, 8, 8, 256};
        sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1}, q;
        bad = 0;
        q = p; q.stride_h = 0;
        expect_status("conv stride 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &bad);
        q = p; q.groups = 0;
        expect_status("conv groups 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &bad);
        q = p; q.groups = 3;
        expect_status("conv groups !| C", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_SHAPE, &bad);
        q = p; q.dilation_w = 0;
        expect_status("conv dilation 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &bad);
        q = p; q.pad_h = -1;
        expect_status("conv pad < 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &bad);
        sb_fmap out_bad = {1, 4, 7, 8, 224};
        expect_status("conv wrong OH", sb_conv2d_f32(buf, &out_bad, buf + 1024, &in, buf + 2048, NULL, &p, buf + 3000), SB_ERR_SHAPE, &bad);
        sb_fmap out_n = {2, 4, 8, 8, 256};
        expect_status("conv N mismatch", sb_conv2d_f32(buf, &out_n, buf + 1024, &in, buf + 2048, NULL, &p, buf + 3000), SB_ERR_SHAPE, &bad);
        sb_fmap in_overlap = {2, 4, 8, 8, 100}, out2 = {2, 4, 8, 8, 256};
        expect_status("conv overlapping images", sb_conv2d_f32(buf, &out2, buf + 1024, &in_overlap, buf + 2048, NULL, &p, buf + 3000), SB_ERR_SHAPE, &bad);
        expect_status("conv NULL workspace", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &p, NULL), SB_ERR_NULL, &bad);
        expect_status("conv NULL weight", sb_conv2d_f32(buf, &out, buf + 1024, &in, NULL, NULL, &p, buf + 3000), SB_ERR_NULL, &bad);
        expect_status("conv NULL params", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, NULL, buf + 3000), SB_ERR_NULL, &bad);
        report("conv2d argument errors", 11, 0.0, 0.0, bad);
    }
}

/* ---- Linear ------------------------------------------------------------- */

static void test_linear(void)
{
    static const int64_t rs[] = {0, 1, 2, 5};
    static const int64_t is[] = {0, 1, 7, 8, 9, 15, 16, 17, 64, 100, 513};
    static const int64_t os[] = {0, 1, 3, 4, 5, 8, 9, 10};
    double worst = 0.0;
    int64_t cases = 0, bad = 0;
    for (size_t a = 0; a < sizeof rs / sizeof rs[0]; a++)
        for (size_t b = 0; b < sizeof is / sizeof is[0]; b++)
            for (size_t c = 0; c < sizeof os / sizeof os[0]; c++)
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    const int64_t r = rs[a], i = is[b], o = os[c];
                    float *x = alloc_f(r * i), *wt = alloc_f(o * i), *bias = alloc_f(o);
                    float *y = alloc_f(r * o), *y_ref = alloc_f(r * o);
                    fill_rand(x, r * i);
                    fill_rand(wt, o * i);
                    fill_rand(bias, o);
                    fill_val(y, r * o, NAN);
                    fill_val(y_ref, r * o, NAN);
                    const float *bp = with_bias ? bias : NULL;
                    expect_status("linear", sb_linear_f32(y, x, wt, bp, r, i, o), SB_OK, &bad);
                    expect_status("linear ref", sb_linear_f32__ref(y_ref, x, wt, bp, r, i, o), SB_OK, &bad);
                    float *xa = abs_dup(x, r * i), *wa = abs_dup(wt, o * i), *ba = abs_dup(bias, o);
                    float *y_mag = alloc_f(r * o);
                    expect_status("linear mag", sb_linear_f32__ref(y_mag, xa, wa, with_bias ? ba : NULL, r, i, o), SB_OK, &bad);
                    double d = max_scaled(y, y_ref, y_mag, r * o);
                    free(xa); free(wa); free(ba); free(y_mag);
                    if (d > worst) worst = d;
                    free(x); free(wt); free(bias); free(y); free(y_ref);
                    cases++;
                }
    {
        float x[9], wt[5 * 9], y[5];
        fill_rand(x, 9);
        fill_rand(wt, 45);
        x[8] = NAN;   /* in the tail, past the 8 lanes */
        expect_status("linear nan", sb_linear_f32(y, x, wt, NULL, 1, 9, 5), SB_OK, &bad);
        for (int j = 0; j < 5; j++)
            bad += !(y[j] != y[j]);
        expect_status("linear rows<0", sb_linear_f32(y, x, wt, NULL, -1, 9, 5), SB_ERR_SHAPE, &bad);
        expect_status("linear NULL", sb_linear_f32(NULL, x, wt, NULL, 1, 9, 5), SB_ERR_NULL, &bad);
    }
    report("linear vs ref", cases, worst, TOL_GEMM, bad);
}

/* ---- BatchNorm ---------------------------------------------------------- */

static void test_batch_norm(void)
{
    double worst = 0.0;
    int64_t cases = 0, bad = 0;
    static const int64_t shapes[][5] = {   /* n c h w extra */
        {1, 1, 1, 2, 0}, {2, 3, 5, 7, 0}, {4, 16, 8, 8, 64}, {3, 5, 1, 1, 3}, {1, 7, 13, 11, 0},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        sb_fmap in = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 0};
        const int64_t chw = in.c * in.h * in.w, hw = in.h * in.w, C = in.c;
        in.batch_stride = chw + shapes[s][4];
        const int64_t count = in.n * in.batch_stride;
        float *x = alloc_f(count);
        fill_rand(x, count);
        for (int64_t i = 0; i < count; i++)
            x[i] = x[i] * 3.0f + 10.0f;   /* offset mean: tests the two-pass variance */
        float *mean = alloc_f(C), *var = alloc_f(C), *w = alloc_f(C), *b = alloc_f(C);
        float *scale = alloc_f(C), *shift = alloc_f(C), *rm = alloc_f(C), *rv = alloc_f(C);
        fill_val(mean, C, NAN);
        fill_val(var, C, NAN);
        expect_status("bn stats", sb_batch_norm_stats_f32(mean, var, x, &in), SB_OK, &bad);
        /* Naive check: exact long-double two-pass statistics. */
        for (int64_t c = 0; c < C; c++) {
            long double sum = 0.0L, sq = 0.0L;
            const int64_t m = in.n * hw;
            for (int64_t n = 0; n < in.n; n++)
                for (int64_t i = 0; i < hw; i++)
                    sum += x[n * in.batch_stride + c * hw + i];
            const long double mu = sum / m;
            for (int64_t n = 0; n < in.n; n++)
                for (int64_t i = 0; i < hw; i++) {
                    long double d = x[n * in.batch_stride + c * hw + i] - mu;
                    sq += d * d;
                }
            double d1 = rel_diff(mean[c], (float)mu);
            double d2 = rel_diff(var[c], (float)(sq / m));
            if (d1 > worst) worst = d1;
            if (d2 > worst) worst = d2;
        }
        /* fold: against the formula in double. */
        fill_rand(w, C);
        fill_rand(b, C);
        expect_status("bn fold", sb_batch_norm_fold_f32(scale, shift, mean, var, w, b, 1e-5, C), SB_OK, &bad);
        for (int64_t c = 0; c < C; c++) {
            double sc = (double)w[c] / sqrt((double)var[c] + 1e-5);
            double sh = (double)b[c] - (double)mean[c] * sc;
            double d1 = rel_diff(scale[c], (float)sc), d2 = fabs(shift[c] - sh) / (1.0 + fabs(mean[c] * sc));
            if (d1 > worst) worst = d1;
            if (d2 > worst) worst = d2;
        }
        /* NULL weight / bias mean 1 / 0. */
        {
            float s2[64], t2[64];
            expect_status("bn fold null", sb_batch_norm_fold_f32(s2, t2, mean, var, NULL, NULL, 1e-5, C), SB_OK, &bad);
            for (int64_t c = 0; c < C; c++) {
                bad += !same_float(s2[c], (float)(1.0 / sqrt((double)var[c] + 1e-5)));
                bad += !same_float(t2[c], 0.0f - mean[c] * s2[c]);
            }
        }
        /* update_running: torch's formula, unbiased variance. */
        const int64_t m = in.n * hw;
        if (m >= 2) {
            fill_rand(rm, C);
            for (int64_t c = 0; c < C; c++)
                rv[c] = 1.0f + 0.5f * frand();
            float *rm0 = dup_f(rm, C), *rv0 = dup_f(rv, C);
            expect_status("bn update", sb_batch_norm_update_running_f32(rm, rv, mean, var, m, 0.1, C), SB_OK, &bad);
            for (int64_t c = 0; c < C; c++) {
                double em = 0.9 * rm0[c] + 0.1 * mean[c];
                double ev = 0.9 * rv0[c] + 0.1 * (double)var[c] * m / (m - 1);
                double d1 = rel_diff(rm[c], (float)em), d2 = rel_diff(rv[c], (float)ev);
                if (d1 > worst) worst = d1;
                if (d2 > worst) worst = d2;
            }
            free(rm0); free(rv0);
        } else {
            expect_status("bn update count 1", sb_batch_norm_update_running_f32(rm, rv, mean, var, m, 0.1, C), SB_ERR_SHAPE, &bad);
        }
        /* apply: exact against the same float expression, out of place into
         * a strided output and in place; relu keeps NaN and -0. */
        for (int relu = 0; relu < 2; relu++) {
            sb_fmap out = in;
            out.batch_stride = chw + 5;
            float *y = alloc_f(in.n * out.batch_stride);
            float *xi = dup_f(x, count);
            xi[0] = NAN;
            fill_val(y, in.n * out.batch_stride, SENTINEL);
            for (int64_t n = 0; n < in.n; n++)
                fill_val(y + n * out.batch_stride, chw, NAN);
            expect_status("bn apply", sb_batch_norm_apply_f32(y, &out, xi, &in, scale, shift, relu), SB_OK, &bad);
            for (int64_t n = 0; n < in.n; n++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t i = 0; i < hw; i++) {
                        float v = xi[n * in.batch_stride + c * hw + i] * scale[c] + shift[c];
                        if (relu) v = v < 0.0f ? 0.0f : v;
                        bad += !same_float(y[n * out.batch_stride + c * hw + i], v);
                    }
            for (int64_t n = 0; n < in.n; n++)
                for (int64_t i = chw; i < out.batch_stride; i++)
                    bad += y[n * out.batch_stride + i] != SENTINEL;
            bad += !(y[0] != y[0]);   /* NaN through bn (+relu) */
            /* in place gives the same bits as out of place */
            expect_status("bn apply inplace", sb_batch_norm_apply_f32(xi, &in, xi, &in, scale, shift, relu), SB_OK, &bad);
            for (int64_t n = 0; n < in.n; n++)
                bad += count_not_same(xi + n * in.batch_stride, y + n * out.batch_stride, chw);
            free(y); free(xi);
        }
        free(x); free(mean); free(var); free(w); free(b); free(scale); free(shift); free(rm); free(rv);
        cases++;
    }
    /* errors */
    {
        float v[4];
        sb_fmap empty = {0, 2, 3, 3, 18};
        expect_status("bn stats empty", sb_batch_norm_stats_f32(v, v, v, &empty), SB_ERR_SHAPE, &bad);
        expect_status("bn fold eps<0", sb_batch_norm_fold_f32(v, v, v, v, NULL, NULL, -1.0, 2), SB_ERR_ARGUMENT, &bad);
        expect_status("bn fold NULL", sb_batch_norm_fold_f32(v, NULL, v, v, NULL, NULL, 1e-5, 2), SB_ERR_NULL, &bad);
    }
    report("batch_norm stats/fold/update/apply", cases, worst, TOL_ACCUM, bad);
}

/* ---- Pooling ------------------------------------------------------------ */

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

static void naive_max_pool(float *y, const sb_fmap *out, const float *x, const sb_fmap *in,
                           const sb_pool2d_params *p)
{
    for (int64_t n = 0; n < out->n; n++)
        for (int64_t c = 0; c < out->c; c++)
            for (int64_t oy = 0; oy < out->h; oy++)
                for (int64_t ox = 0; ox < out->w; ox++) {
                    float m = -INFINITY;
                    for (int64_t ky = 0; ky < p->kernel_h; ky++)
                        for (int64_t kx = 0; kx < p->kernel_w; kx++) {
                            int64_t iy = oy * p->stride_h - p->pad_h + ky * p->dilation_h;
                            int64_t ix = ox * p->stride_w - p->pad_w + kx * p->dilation_w;
                            if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w)
                                continue;
                            float v = x[n * in->batch_stride + (c * in->h + iy) * in->w + ix];
                            if (v > m || isnan(v))
                                m = v;
                        }
                    y[n * out->batch_stride + (c * out->h + oy) * out->w + ox] = m;
                }
}

static void test_max_pool(void)
{
    int64_t bad = 0, cases = 0;
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
        const int64_t ic = in.n * in.batch_stride, oc = out.n * out.batch_stride;
        float *x = alloc_f(ic), *y = alloc_f(oc), *y_ref = alloc_f(oc);
        fill_rand(x, ic);
        for (int64_t i = 0; i < ic; i++)   /* sprinkle NaN, -inf, ties, -0 */
            if (frand() > 0.93f) {
                float r = frand();
                x[i] = r > 0.5f ? NAN : r > 0.0f ? -INFINITY : r > -0.5f ? 0.25f : -0.0f;
            }
        fill_val(y, oc, SENTINEL);
        for (int64_t n = 0; n < out.n; n++)
            fill_val(y + n * out.batch_stride, out.c * out.h * out.w, NAN);
        if (oc > 0)
            memcpy(y_ref, y, (size_t)oc * sizeof(float));
        expect_status("maxpool", sb_max_pool2d_f32(y, &out, x, &in, &p), SB_OK, &bad);
        naive_max_pool(y_ref, &out, x, &in, &p);
        int64_t nb = count_not_same(y, y_ref, oc);
        if (nb)
            printf("  maxpool case %d: %lld mismatches\n", it, (long long)nb);
        bad += nb;
        free(x); free(y); free(y_ref);
        cases++;
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
    report("max_pool2d vs naive (exact)", cases, bad ? 1.0 : 0.0, 0.0, bad);
}

static void test_adaptive_avg_pool(void)
{
    double worst = 0.0;
    int64_t cases = 0, bad = 0;
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
    report("adaptive_avg_pool2d vs naive", cases, worst, TOL_ACCUM, bad);
}

/* ---- Element-wise ------------------------------------------------------- */

static void test_elementwise(void)
{
    static const int64_t counts[] = {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 1000};
    int64_t bad = 0, cases = 0;
    double worst_sig = 0.0;
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        const int64_t n = counts[ci];
        float *x = alloc_f(n), *x2 = alloc_f(n), *y = alloc_f(n + 1);
        fill_rand(x, n);
        fill_rand(x2, n);
        for (int64_t i = 0; i < n; i++) {
            x[i] *= 50.0f;   /* also saturates the sigmoid */
            if (i % 5 == 1) x[i] = NAN;
            if (i % 7 == 2) x[i] = -0.0f;
            if (i % 11 == 3) x[i] = (i & 1) ? INFINITY : -INFINITY;
        }
        float *xc = dup_f(x, n);
        /* relu, out of place (with a guard element) and in place */
        fill_val(y, n + 1, NAN);
        y[n] = SENTINEL;
        expect_status("relu", sb_relu_f32(y, x, n), SB_OK, &bad);
        for (int64_t i = 0; i < n; i++) {
            float e = x[i] < 0.0f ? 0.0f : x[i];   /* torch: NaN kept, -0 kept */
            bad += !same_float(y[i], e);
        }
        bad += y[n] != SENTINEL;
        bad += count_not_same(x, xc, n);
        float *z = dup_f(x, n);
        expect_status("relu inplace", sb_relu_f32(z, z, n), SB_OK, &bad);
        bad += count_not_same(z, y, n);
        /* sigmoid vs double formula */
        fill_val(y, n, NAN);
        expect_status("sigmoid", sb_sigmoid_f32(y, x, n), SB_OK, &bad);
        for (int64_t i = 0; i < n; i++) {
            double e = 1.0 / (1.0 + exp(-(double)x[i]));
            double d = fabs((double)y[i] - e);   /* absolute: outputs lie in [0, 1] */
            if (x[i] != x[i]) d = (y[i] != y[i]) ? 0.0 : INFINITY;
            if (!(d <= worst_sig)) worst_sig = d;
        }
        if (n > 0) {
            memcpy(z, x, (size_t)n * sizeof(float));
            float *s2 = dup_f(y, n);
            expect_status("sigmoid inplace", sb_sigmoid_f32(z, z, n), SB_OK, &bad);
            bad += count_not_same(z, s2, n);
            free(s2);
        }
        /* add_relu, out of place and aliased with each input */
        fill_val(y, n, NAN);
        expect_status("add_relu", sb_add_relu_f32(y, x, x2, n), SB_OK, &bad);
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] + x2[i];
            bad += !same_float(y[i], v < 0.0f ? 0.0f : v);
        }
        if (n > 0) {
            float *a = dup_f(x, n), *b = dup_f(x2, n);
            expect_status("add_relu out=a", sb_add_relu_f32(a, a, x2, n), SB_OK, &bad);
            expect_status("add_relu out=b", sb_add_relu_f32(b, x, b, n), SB_OK, &bad);
            bad += count_not_same(a, y, n) + count_not_same(b, y, n);
            free(a); free(b);
        }
        free(x); free(x2); free(y); free(xc); free(z);
        cases++;
    }
    {
        float v[2];
        expect_status("relu count<0", sb_relu_f32(v, v, -1), SB_ERR_SHAPE, &bad);
        expect_status("sigmoid NULL", sb_sigmoid_f32(NULL, v, 2), SB_ERR_NULL, &bad);
        expect_status("relu empty NULL", sb_relu_f32(NULL, NULL, 0), SB_OK, &bad);
    }
    report("relu / add_relu (exact)", cases, bad ? 1.0 : 0.0, 0.0, bad);
    report("sigmoid vs double (abs)", cases, worst_sig, TOL_ACCUM, 0);

    /* channel_scale: strided in and out, and in place. */
    bad = 0;
    cases = 0;
    for (int it = 0; it < 40; it++) {
        sb_fmap in = {irand(0, 3), irand(1, 9), irand(1, 7), irand(1, 7), 0};
        in.batch_stride = in.c * in.h * in.w + (it & 1) * 13;
        sb_fmap out = in;
        out.batch_stride = in.c * in.h * in.w + (it & 2) * 5;
        const int64_t ic = in.n * in.batch_stride, oc = out.n * out.batch_stride, hw = in.h * in.w;
        float *x = alloc_f(ic), *s = alloc_f(in.n * in.c), *y = alloc_f(oc);
        fill_rand(x, ic);
        fill_rand(s, in.n * in.c);
        fill_val(y, oc, SENTINEL);
        for (int64_t n = 0; n < out.n; n++)
            fill_val(y + n * out.batch_stride, out.c * hw, NAN);
        expect_status("channel_scale", sb_channel_scale_f32(y, &out, x, &in, s), SB_OK, &bad);
        for (int64_t n = 0; n < in.n; n++) {
            for (int64_t c = 0; c < in.c; c++)
                for (int64_t i = 0; i < hw; i++)
                    bad += !same_float(y[n * out.batch_stride + c * hw + i],
                                       x[n * in.batch_stride + c * hw + i] * s[n * in.c + c]);
            for (int64_t i = in.c * hw; i < out.batch_stride; i++)
                bad += y[n * out.batch_stride + i] != SENTINEL;
        }
        expect_status("channel_scale inplace", sb_channel_scale_f32(x, &in, x, &in, s), SB_OK, &bad);
        for (int64_t n = 0; n < in.n; n++)
            bad += count_not_same(x + n * in.batch_stride, y + n * out.batch_stride, in.c * hw);
        free(x); free(s); free(y);
        cases++;
    }
    report("channel_scale (exact)", cases, bad ? 1.0 : 0.0, 0.0, bad);
}

static void test_status(void)
{
    int64_t bad = 0;
    for (int s = 0; s <= 4; s++) {
        const char *t = sb_status_string((sb_status)s);
        bad += t == NULL || t[0] == '\0';
    }
    bad += strcmp(sb_status_string(SB_OK), "ok") != 0;
    report("status strings", 5, 0.0, 0.0, bad);
}

int main(void)
{
    test_status();
    test_gemm();
    test_conv();
    test_linear();
    test_batch_norm();
    test_max_pool();
    test_adaptive_avg_pool();
    test_elementwise();
    if (g_failures) {
        printf("%d check group(s) FAILED\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}

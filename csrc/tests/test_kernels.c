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
 * The convolution and linear fast paths run on the packed-GEMM micro-kernels
 * (conv2d_packed_f32.c), which exist per ISA: every check of them runs once
 * per ISA this machine has (sb_set_isa: scalar always, AVX2 when the CPU has
 * it), and the threaded ones on 1, 2 and 3 threads, where the results must
 * be bit-identical (memcmp), as sb_conv2d_f32_packed promises.
 *
 * Build (output outside the repo; every kernel file, plus the thread pool
 * the packed path calls) and run -- tests/test_c_kernels.py does the same
 * under pytest:
 *   gcc -O2 -std=c99 -Wall -Wextra -pthread -Icsrc/include \
 *       csrc/kernels/[a-z]*.c csrc/runtime/parallel.c csrc/tests/test_kernels.c \
 *       -lm -o /tmp/test_kernels && /tmp/test_kernels
 * Run under valgrind --error-exitcode=1 to catch out-of-bounds access:
 * buffers (workspaces included) are malloc'd at their exact size for that
 * reason.
 *
 * Tolerances, in one place: exact (bitwise, NaN == NaN) for ops whose
 * result is exactly determined (relu, max-pool, channel scale, bn apply, bn
 * add relu), and between thread counts of one ISA. The ops that sum in a
 * different order (conv2d, linear, fused conv) are held to
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

#include "sb_parallel.h"
#include "skipblocks.h"
#include "../kernels/gemm_ukernel.h" /* internal: the micro-kernels, tested directly */

#define TOL_SUM 1e-5     /* conv2d, linear, fused conv: reordered float sums, vs mag */
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

/* NaN over the C*H*W payload of every image, the sentinel in the gaps
 * between images (batch_stride > C*H*W). */
static void prefill_map(float *y, const sb_fmap *m)
{
    const int64_t chw = m->c * m->h * m->w;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = 0; i < m->batch_stride; i++)
            y[n * m->batch_stride + i] = i < chw ? NAN : SENTINEL;
}
/* Gap cells that lost the sentinel. */
static int64_t count_bad_gaps(const float *y, const sb_fmap *m)
{
    int64_t bad = 0;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = m->c * m->h * m->w; i < m->batch_stride; i++)
            bad += y[n * m->batch_stride + i] != SENTINEL;
    return bad;
}

/* ---- ISAs and threads -------------------------------------------------- */

/* The ISAs the packed kernels are checked on: scalar always (the path every
 * build has), AVX2 when this build and this CPU have it. */
/* The kernel paths every ISA-dependent check runs on: each ISA this CPU
 * has, plus, on an AVX2 CPU, "avx512-source": the convolution's AVX-512
 * micro-kernel compiled from the same source for AVX2
 * (sb_test_use_avx512_source_on_avx2), so the AVX-512 path's logic (pairs
 * of panels, the single-panel remainders) is checked on a CPU without
 * AVX-512. It must give exactly what the AVX2 path gives. */
enum { MAX_PATHS = 4 };
static struct { sb_isa isa; int avx512_source; } g_isas[MAX_PATHS];
static int g_n_isas = 0;
/* Thread counts of the threaded checks; 3 does not divide the usual tile
 * counts, so the split is uneven. */
static const int g_threads[] = {1, 2, 3};
enum { N_THREADS = sizeof g_threads / sizeof g_threads[0] };

static const char *path_name(int i)
{
    return g_isas[i].avx512_source ? "avx512-source-on-avx2" : sb_isa_name(g_isas[i].isa);
}

static void add_path(sb_isa isa, int avx512_source)
{
    g_isas[g_n_isas].isa = isa;
    g_isas[g_n_isas].avx512_source = avx512_source;
    g_n_isas++;
}

static void find_isas(void)
{
    int64_t bad = 0;
    add_path(SB_ISA_SCALAR, 0);
    if (sb_isa_available(SB_ISA_AVX2)) {
        add_path(SB_ISA_AVX2, 0);
        add_path(SB_ISA_AVX2, 1);
    } else {
        expect_status("set_isa(avx2) without AVX2", sb_set_isa(SB_ISA_AVX2), SB_ERR_ARGUMENT, &bad);
        bad += sb_test_use_avx512_source_on_avx2(1) != -1;
    }
    if (sb_isa_available(SB_ISA_AVX512))
        add_path(SB_ISA_AVX512, 0);
    else
        expect_status("set_isa(avx512) without AVX-512", sb_set_isa(SB_ISA_AVX512), SB_ERR_ARGUMENT, &bad);
    printf("kernel paths checked:");
    for (int i = 0; i < g_n_isas; i++)
        printf(" %s", path_name(i));
    printf("  (best ISA on this CPU: %s)\n", sb_isa_name(sb_isa_best()));
    bad += !sb_isa_available(SB_ISA_SCALAR) || !sb_isa_available(sb_isa_best());
    report("isa dispatch", g_n_isas, 0.0, 0.0, bad);
}

static void use_isa(int path, int64_t *bad)
{
    expect_status("sb_set_isa", sb_set_isa(g_isas[path].isa), SB_OK, bad);
    *bad += sb_get_isa() != g_isas[path].isa;
    if (g_isas[path].avx512_source || sb_isa_available(SB_ISA_AVX2))
        *bad += sb_test_use_avx512_source_on_avx2(g_isas[path].avx512_source) != 0;
}

/* The pool size and the kernel's num_threads are set together, so a split
 * over n slots really runs on n threads (with a smaller pool, sb_parallel_for
 * would run several slots on one thread). */
static void use_threads(int n, int64_t *bad)
{
    if (sb_set_num_threads(n) != 0) {
        printf("  sb_set_num_threads(%d) failed\n", n);
        (*bad)++;
    }
}

/* report() with the ISA in the name: "conv2d vs ref (avx2)". */
static void report_isa(const char *what, int isa_index, int64_t cases, double worst, double tol,
                       int64_t bad)
{
    char name[80];
    snprintf(name, sizeof name, "%s (%s)", what, path_name(isa_index));
    report(name, cases, worst, tol, bad);
}

/* ---- Conv2d ------------------------------------------------------------- */

typedef struct {
    int64_t n, cin, cout, h, w, kh, kw, sh, sw, ph, pw, dh, dw, g;
    int64_t in_extra, out_extra;   /* batch_stride - C*H*W */
    int bias;
} conv_case;

/* The parameters and maps of a case; 0 when the dilated kernel does not fit. */
static int conv_geometry(const conv_case *t, sb_conv2d_params *p, sb_fmap *in, sb_fmap *out)
{
    const sb_conv2d_params q = {t->kh, t->kw, t->sh, t->sw, t->ph, t->pw, t->dh, t->dw, t->g};
    const int64_t oh = sb_conv2d_out_size(t->h, t->kh, t->sh, t->ph, t->dh);
    const int64_t ow = sb_conv2d_out_size(t->w, t->kw, t->sw, t->pw, t->dw);
    if (oh <= 0 || ow <= 0)
        return 0;
    const sb_fmap i = {t->n, t->cin, t->h, t->w, t->cin * t->h * t->w + t->in_extra};
    const sb_fmap o = {t->n, t->cout, oh, ow, t->cout * oh * ow + t->out_extra};
    *p = q;
    *in = i;
    *out = o;
    return 1;
}

static void print_conv_case(const char *what, const conv_case *t, const char *detail, double d)
{
    printf("  %s n=%lld cin=%lld cout=%lld %lldx%lld k=%lldx%lld s=%lld,%lld p=%lld,%lld "
           "d=%lld,%lld g=%lld %s: %.3g\n", what, (long long)t->n, (long long)t->cin,
           (long long)t->cout, (long long)t->h, (long long)t->w, (long long)t->kh,
           (long long)t->kw, (long long)t->sh, (long long)t->sw, (long long)t->ph,
           (long long)t->pw, (long long)t->dh, (long long)t->dw, (long long)t->g, detail, d);
}

/* Runs one case through sb_conv2d_f32 on every ISA and through the
 * reference; worst[i] / bad[i] collect ISA i's max scaled difference and
 * its wrong statuses, clobbered sentinels or modified inputs. */
static void run_conv(const conv_case *t, double worst[], int64_t bad[])
{
    sb_conv2d_params p;
    sb_fmap in, out;
    if (!conv_geometry(t, &p, &in, &out))
        return;
    const int64_t in_count = t->n * in.batch_stride, out_count = t->n * out.batch_stride;
    const int64_t w_count = t->cout * (t->cin / t->g) * t->kh * t->kw;
    float *x = alloc_f(in_count), *wt = alloc_f(w_count), *bias = alloc_f(t->cout);
    fill_rand(x, in_count);
    fill_rand(wt, w_count);
    fill_rand(bias, t->cout);
    float *x_copy = dup_f(x, in_count);
    const float *bp = t->bias ? bias : NULL;
    float *y_ref = alloc_f(out_count), *y_mag = alloc_f(out_count);
    prefill_map(y_ref, &out);
    prefill_map(y_mag, &out);
    expect_status("conv ref", sb_conv2d_f32__ref(y_ref, &out, x, &in, wt, bp, &p), SB_OK, &bad[0]);
    float *x_abs = abs_dup(x, in_count), *w_abs = abs_dup(wt, w_count), *b_abs = abs_dup(bias, t->cout);
    expect_status("conv mag", sb_conv2d_f32__ref(y_mag, &out, x_abs, &in, w_abs, t->bias ? b_abs : NULL, &p), SB_OK, &bad[0]);
    /* Both orientations of the GEMM (channel rows, pixel rows), whatever
     * the shape rule would pick: each against the reference, and the two
     * against each other bit for bit (every output is the same sum in the
     * same order either way). */
    float *y_rows = alloc_f(out_count);
    for (int i = 0; i < g_n_isas; i++) {
        use_isa(i, &bad[i]);
        for (int orientation = 0; orientation <= 1; orientation++) {
            sb_test_conv_orientation(orientation);
            const int64_t ws_count = sb_conv2d_f32_workspace_floats(&out, &in, &p);
            float *y = alloc_f(out_count);
            float *ws = alloc_f(ws_count);   /* exact size: valgrind catches overruns */
            prefill_map(y, &out);
            expect_status("conv", sb_conv2d_f32(y, &out, x, &in, wt, bp, &p, ws), SB_OK, &bad[i]);
            const double d = max_scaled(y, y_ref, y_mag, out_count);
            bad[i] += count_bad_gaps(y, &out);
            bad[i] += count_not_same(x, x_copy, in_count);
            char detail[64];
            snprintf(detail, sizeof detail, "%s, %s", path_name(i),
                     orientation ? "pixel rows" : "channel rows");
            if (d > TOL_SUM)
                print_conv_case("conv", t, detail, d);
            if (!(d <= worst[i]))
                worst[i] = d;
            if (orientation == 0) {
                if (out_count > 0)
                    memcpy(y_rows, y, (size_t)out_count * sizeof(float));
            } else if (count_not_same(y, y_rows, out_count) != 0) {
                print_conv_case("conv: orientations differ", t, detail, 0.0);
                bad[i]++;
            }
            free(y); free(ws);
        }
        sb_test_conv_orientation(-1);
    }
    free(y_rows);
    free(x); free(wt); free(bias); free(y_ref); free(x_copy);
    free(x_abs); free(w_abs); free(b_abs); free(y_mag);
}

static void test_conv(void)
{
    double worst[MAX_PATHS] = {0.0};
    int64_t cases = 0, bad[MAX_PATHS] = {0};

    /* Hand-picked: the shapes of the document's blocks, the edge cases, and
     * the packed path's blocking: the 6 x 16 register tile (MR output
     * channels by NR columns), column blocks of up to 192 (NC) and K blocks
     * of up to 256 (KC), each hit exactly, just below and just above. */
    static const conv_case fixed[] = {
        /* n cin cout  h  w kh kw sh sw ph pw dh dw  g  ie oe bias */
        {2,   3,  16, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* stem 3x3 */
        {1,   3,   8, 31, 29, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0, 0, 1},   /* ResNet stem */
        {2,  16,  32, 15, 15, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0},   /* 1x1: input read in place */
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
        {2,  64,  32, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* K = 576: 3 K blocks */
        {1,  40,  70, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* 70 = 11 MR + 4, 2 column blocks */
        {1,   5,   6,  4,  4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* C_out = MR, 16 px = NR */
        {1,   5,   5,  3,  5, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* MR - 1, NR - 1 */
        {1,   5,  13, 17,  1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 2 MR + 1, NR + 1 */
        {1,   5,  12,  8,  4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 2 MR, 2 NR */
        {1,   3,   5, 12, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 384 px = 2 NC */
        {1,   3,   5,  1, 385, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},  /* 2 NC + 1 */
        {1,   3,   5,  1, 383, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},  /* 2 NC - 1 */
        {2,   3,   7,  4, 190, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},  /* padded row Wp = NC */
        {2, 256,   7,  3,  3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* K = KC */
        {1, 257,   7,  3,  5, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 5, 1},   /* K = KC + 1 */
        {1,  17,   9,  7,  6, 4, 4, 1, 1, 0, 0, 1, 1, 1, 3, 0, 1},   /* K = 272, unpadded 4x4 */
        {2,   3,   7,  9, 15, 3, 1, 1, 1, 0, 0, 2, 1, 1, 0, 0, 1},   /* 3x1 dilated, read in place */
        {1,   6,   4, 13, 11, 3, 3, 2, 3, 0, 0, 2, 1, 2, 0, 0, 1},   /* strided, unpadded, phase planes */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        run_conv(&fixed[i], worst, bad);
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
        if (it % 7 == 0) {   /* force the unstaged 1x1 path often */
            t.kh = t.kw = t.sh = t.sw = 1;
            t.ph = t.pw = 0;
        }
        if (sb_conv2d_out_size(t.h, t.kh, t.sh, t.ph, t.dh) <= 0 ||
            sb_conv2d_out_size(t.w, t.kw, t.sw, t.pw, t.dw) <= 0)
            continue;
        run_conv(&t, worst, bad);
        cases++;
    }
    for (int i = 0; i < g_n_isas; i++)
        report_isa("conv2d vs ref", i, cases, worst[i], TOL_SUM, bad[i]);

    /* Output size helper against torch's formula on known values. */
    int64_t b = 0;
    b += sb_conv2d_out_size(32, 3, 1, 1, 1) != 32;
    b += sb_conv2d_out_size(224, 7, 2, 3, 1) != 112;
    b += sb_conv2d_out_size(5, 3, 2, 0, 1) != 2;
    b += sb_conv2d_out_size(7, 3, 2, 2, 2) != 4;
    b += sb_conv2d_out_size(2, 5, 1, 1, 1) > 0;      /* kernel does not fit */
    b += sb_conv2d_out_size(5, 3, 0, 0, 1) > 0;      /* bad stride */
    report("conv2d_out_size", 6, 0.0, 0.0, b);

    /* Workspace: the packed weights (per group and block of MR = 6 output
     * channels, 6 biases + K*6 weights) then one thread's packed scratch;
     * 0 for invalid arguments. */
    {
        sb_conv2d_params p1 = {1, 1, 1, 1, 0, 0, 1, 1, 2};
        sb_conv2d_params p3 = {3, 3, 1, 1, 1, 1, 1, 1, 2};
        sb_conv2d_params p0 = {3, 3, 1, 1, 1, 1, 1, 1, 0};
        sb_fmap in = {2, 8, 10, 10, 800}, out = {2, 6, 10, 10, 600};
        sb_fmap out_bad = {2, 6, 9, 10, 600};
        b = 0;
        b += sb_conv2d_f32_packed_weights_floats(6, 4, 1, 1, 2) != 2 * (6 + 4 * 6);
        b += sb_conv2d_f32_packed_weights_floats(6, 4, 3, 3, 2) != 2 * (6 + 36 * 6);
        b += sb_conv2d_f32_workspace_floats(&out, &in, &p1) !=
             2 * (6 + 4 * 6) + sb_conv2d_f32_packed_workspace_floats(&out, &in, &p1, NULL, 1);
        b += sb_conv2d_f32_workspace_floats(&out, &in, &p3) !=
             2 * (6 + 36 * 6) + sb_conv2d_f32_packed_workspace_floats(&out, &in, &p3, NULL, 1);
        b += sb_conv2d_f32_packed_workspace_floats(&out, &in, &p3, NULL, 1) <= 0;
        b += sb_conv2d_f32_workspace_floats(&out, &in, &p0) != 0;
        b += sb_conv2d_f32_workspace_floats(&out_bad, &in, &p3) != 0;
        report("conv2d workspace size", 7, 0.0, 0.0, b);
    }

    /* NaN / inf in input and weights propagate (nothing skipped on zeros). */
    for (int i = 0; i < g_n_isas; i++) {
        sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
        sb_fmap in = {1, 3, 6, 7, 126}, out = {1, 4, 6, 7, 168};
        float x[126], wt[4 * 27], y[168], y_ref[168];
        float *ws = alloc_f(sb_conv2d_f32_workspace_floats(&out, &in, &p));
        fill_rand(x, 126);
        fill_rand(wt, 4 * 27);
        x[1 * 42 + 3 * 7 + 3] = NAN;          /* channel 1, (3, 3) */
        x[0] = 0.0f;
        wt[2 * 27 + 0 * 9 + 4] = INFINITY;    /* oc 2, ci 0, centre tap: hits x[0] = 0 at (0, 0) */
        b = 0;
        use_isa(i, &b);
        expect_status("conv nan", sb_conv2d_f32(y, &out, x, &in, wt, NULL, &p, ws), SB_OK, &b);
        expect_status("conv nan ref", sb_conv2d_f32__ref(y_ref, &out, x, &in, wt, NULL, &p), SB_OK, &b);
        for (int oc = 0; oc < 4; oc++)   /* every output channel sees the NaN at (3,3) */
            b += !(y[oc * 42 + 3 * 7 + 3] != y[oc * 42 + 3 * 7 + 3]);
        b += !(y[2 * 42] != y[2 * 42]);  /* inf * 0 = NaN */
        report_isa("conv2d NaN/inf propagation", i, 1, max_rel(y, y_ref, 168), TOL_SUM, b);
        free(ws);
    }

    /* Argument errors come back as statuses, never as crashes. */
    {
        float buf[4096];
        fill_val(buf, 4096, 0.0f);
        sb_fmap in = {1, 4, 8, 8, 256}, out = {1, 4, 8, 8, 256};
        sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1}, q;
        b = 0;
        q = p; q.stride_h = 0;
        expect_status("conv stride 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &b);
        q = p; q.groups = 0;
        expect_status("conv groups 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &b);
        q = p; q.groups = 3;
        expect_status("conv groups !| C", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_SHAPE, &b);
        q = p; q.dilation_w = 0;
        expect_status("conv dilation 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &b);
        q = p; q.pad_h = -1;
        expect_status("conv pad < 0", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &b);
        sb_fmap out_bad = {1, 4, 7, 8, 224};
        expect_status("conv wrong OH", sb_conv2d_f32(buf, &out_bad, buf + 1024, &in, buf + 2048, NULL, &p, buf + 3000), SB_ERR_SHAPE, &b);
        sb_fmap out_n = {2, 4, 8, 8, 256};
        expect_status("conv N mismatch", sb_conv2d_f32(buf, &out_n, buf + 1024, &in, buf + 2048, NULL, &p, buf + 3000), SB_ERR_SHAPE, &b);
        sb_fmap in_overlap = {2, 4, 8, 8, 100}, out2 = {2, 4, 8, 8, 256};
        expect_status("conv overlapping images", sb_conv2d_f32(buf, &out2, buf + 1024, &in_overlap, buf + 2048, NULL, &p, buf + 3000), SB_ERR_SHAPE, &b);
        sb_fmap in_small = {1, 4, 2, 2, 16}, out_empty = {1, 4, 0, 0, 0};
        q = p; q.pad_h = q.pad_w = 0;
        expect_status("conv kernel > input", sb_conv2d_f32(buf, &out_empty, buf + 1024, &in_small, buf + 2048, NULL, &q, buf + 3000), SB_ERR_SHAPE, &b);
        expect_status("conv NULL workspace", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, &p, NULL), SB_ERR_NULL, &b);
        expect_status("conv NULL weight", sb_conv2d_f32(buf, &out, buf + 1024, &in, NULL, NULL, &p, buf + 3000), SB_ERR_NULL, &b);
        expect_status("conv NULL input", sb_conv2d_f32(buf, &out, NULL, &in, buf + 2048, NULL, &p, buf + 3000), SB_ERR_NULL, &b);
        expect_status("conv NULL params", sb_conv2d_f32(buf, &out, buf + 1024, &in, buf + 2048, NULL, NULL, buf + 3000), SB_ERR_NULL, &b);
        sb_fmap empty = {0, 4, 8, 8, 256};
        expect_status("conv N = 0, NULLs", sb_conv2d_f32(NULL, &empty, NULL, &empty, NULL, NULL, &p, NULL), SB_OK, &b);
        report("conv2d argument errors", 14, 0.0, 0.0, b);
    }
}

/* ---- Packed conv with fusion, on 1, 2 and 3 threads ---------------------- */

/* A convolution that computes (the pool splits only convolutions of at least
 * 2^20 multiply-adds; smaller ones stay on the calling thread). */
typedef struct {
    conv_case c;
    int in_transform;   /* 0: none, 1: in_scale/in_shift, 2: that + in_relu, 3: in_relu alone */
    int residual;       /* residual given, its batch_stride = C*H*W + res_extra */
    int64_t res_extra;
    int out_relu;
    int fold;           /* row_scale / row_shift folded in by pack_weights */
} fused_case;

/* The reference composition, in torch's order, from the reference conv:
 *   xt  = relu?(x * in_scale[c] + in_shift[c])     (the input transform)
 *   y   = conv2d__ref(xt, weight, bias)             (zero padding *after* the
 *                                                    transform: pads stay 0)
 *   y   = y * row_scale[o] + row_shift[o]           (BatchNorm after the conv)
 *   y   = relu?(y + residual)
 * With absolute values everywhere it gives the magnitude the error is
 * measured against (relu and the transform's sign do not enlarge it). */
static void fused_reference(float *y, float *y_mag, const sb_fmap *out, const float *x,
                            const sb_fmap *in, const float *wt, const float *w_abs,
                            const float *bias, const float *b_abs, const sb_conv2d_params *p,
                            const float *in_scale, const float *in_shift, int in_relu,
                            const float *row_scale, const float *row_shift,
                            const float *res, const sb_fmap *rmap, int out_relu, int64_t *bad)
{
    const int64_t hw = in->h * in->w, ohw = out->h * out->w;
    const int64_t in_count = in->n * in->batch_stride;
    float *xt = dup_f(x, in_count);
    for (int64_t n = 0; n < in->n; n++)
        for (int64_t c = 0; c < in->c; c++)
            for (int64_t i = 0; i < hw; i++) {
                float v = xt[n * in->batch_stride + c * hw + i];
                if (in_scale != NULL)
                    v = v * in_scale[c] + in_shift[c];
                if (in_relu)
                    v = v < 0.0f ? 0.0f : v;
                xt[n * in->batch_stride + c * hw + i] = v;
            }
    float *xt_abs = abs_dup(xt, in_count);
    expect_status("fused ref conv", sb_conv2d_f32__ref(y, out, xt, in, wt, bias, p), SB_OK, bad);
    expect_status("fused mag conv", sb_conv2d_f32__ref(y_mag, out, xt_abs, in, w_abs, bias ? b_abs : NULL, p), SB_OK, bad);
    for (int64_t n = 0; n < out->n; n++)
        for (int64_t o = 0; o < out->c; o++)
            for (int64_t i = 0; i < ohw; i++) {
                const int64_t at = n * out->batch_stride + o * ohw + i;
                float v = y[at], m = y_mag[at];
                if (row_scale != NULL) {
                    v = v * row_scale[o] + row_shift[o];
                    m = m * fabsf(row_scale[o]) + fabsf(row_shift[o]);
                }
                if (res != NULL) {
                    const float r = res[n * rmap->batch_stride + o * ohw + i];
                    v = v + r;
                    m = m + fabsf(r);
                }
                if (out_relu)
                    v = v < 0.0f ? 0.0f : v;
                y[at] = v;
                y_mag[at] = m;
            }
    free(xt); free(xt_abs);
}

/* Runs one fused case on every ISA and thread count. worst[i] / bad[i]:
 * ISA i's max scaled difference from the reference and its other failures;
 * *split counts thread counts > 1 whose bits differ from 1 thread's. */
static void run_fused(const fused_case *f, double worst[], int64_t bad[], int64_t *split)
{
    const conv_case *t = &f->c;
    sb_conv2d_params p;
    sb_fmap in, out;
    if (!conv_geometry(t, &p, &in, &out))
        return;
    const int64_t cig = t->cin / t->g;
    const int64_t in_count = t->n * in.batch_stride, out_count = t->n * out.batch_stride;
    const int64_t w_count = t->cout * cig * t->kh * t->kw;
    const sb_fmap rmap = {out.n, out.c, out.h, out.w, out.c * out.h * out.w + f->res_extra};
    const int64_t r_count = rmap.n * rmap.batch_stride;
    float *x = alloc_f(in_count), *wt = alloc_f(w_count), *bias = alloc_f(t->cout);
    float *s_in = alloc_f(t->cin), *t_in = alloc_f(t->cin);
    float *s_row = alloc_f(t->cout), *t_row = alloc_f(t->cout), *res = alloc_f(r_count);
    fill_rand(x, in_count);
    fill_rand(wt, w_count);
    fill_rand(bias, t->cout);
    fill_rand(t_in, t->cin);      /* shifts that make a wrongly transformed pad nonzero */
    fill_rand(t_row, t->cout);
    fill_rand(res, r_count);
    for (int64_t c = 0; c < t->cin; c++)
        s_in[c] = 1.5f * frand();  /* some negative: the transform flips signs */
    for (int64_t o = 0; o < t->cout; o++)
        s_row[o] = 0.25f + frand();
    float *x_copy = dup_f(x, in_count), *res_copy = dup_f(res, r_count);
    float *w_abs = abs_dup(wt, w_count), *b_abs = abs_dup(bias, t->cout);

    const float *bp = t->bias ? bias : NULL;
    const float *in_scale = f->in_transform == 1 || f->in_transform == 2 ? s_in : NULL;
    const float *in_shift = in_scale ? t_in : NULL;
    const int in_relu = f->in_transform >= 2;
    const float *rs = f->fold ? s_row : NULL, *rt = f->fold ? t_row : NULL;
    sb_conv2d_fusion fusion;
    memset(&fusion, 0, sizeof fusion);
    fusion.in_scale = in_scale;
    fusion.in_shift = in_shift;
    fusion.in_relu = in_relu;
    fusion.residual = f->residual ? res : NULL;
    fusion.residual_map = rmap;
    fusion.out_relu = f->out_relu;

    float *y_ref = alloc_f(out_count), *y_mag = alloc_f(out_count);
    prefill_map(y_ref, &out);
    prefill_map(y_mag, &out);
    fused_reference(y_ref, y_mag, &out, x, &in, wt, w_abs, bp, b_abs, &p, in_scale, in_shift,
                    in_relu, rs, rt, fusion.residual, &rmap, f->out_relu, &bad[0]);

    /* both orientations of the GEMM; the packed layout follows it */
    for (int orientation = 0; orientation <= 1; orientation++) {
        sb_test_conv_orientation(orientation);
        /* pack_weights wants a buffer even for 0 floats (C_out == 0). */
        const int64_t pw_count = sb_conv2d_f32_packed_weights_floats(t->cout, cig, t->kh, t->kw, t->g);
        float *packed = alloc_f(pw_count > 0 ? pw_count : 1);
        expect_status("pack_weights", sb_conv2d_f32_pack_weights(packed, wt, bp, rs, rt, t->cout, cig, t->kh, t->kw, t->g), SB_OK, &bad[0]);

        float *y_one = alloc_f(out_count);   /* 1 thread's result, per ISA */
        for (int i = 0; i < g_n_isas; i++) {
            use_isa(i, &bad[i]);
            for (int ti = 0; ti < N_THREADS; ti++) {
                const int nt = g_threads[ti];
                use_threads(nt, &bad[i]);
                float *y = alloc_f(out_count);
                float *ws = alloc_f(sb_conv2d_f32_packed_workspace_floats(&out, &in, &p, &fusion, nt));
                prefill_map(y, &out);
                expect_status("conv packed", sb_conv2d_f32_packed(y, &out, x, &in, packed, &p, &fusion, ws, nt), SB_OK, &bad[i]);
                const double d = max_scaled(y, y_ref, y_mag, out_count);
                bad[i] += count_bad_gaps(y, &out);
                bad[i] += count_not_same(x, x_copy, in_count);
                bad[i] += count_not_same(res, res_copy, r_count);
                char detail[128];
                snprintf(detail, sizeof detail,
                         "[%s, %s, %d thr, transform %d, res %d, relu %d, fold %d]",
                         path_name(i), orientation ? "pixel rows" : "channel rows", nt,
                         f->in_transform, f->residual, f->out_relu, f->fold);
                if (d > TOL_SUM)
                    print_conv_case("fused", t, detail, d);
                if (!(d <= worst[i]))
                    worst[i] = d;
                if (ti == 0) {
                    if (out_count > 0)
                        memcpy(y_one, y, (size_t)out_count * sizeof(float));
                } else if (out_count > 0 && memcmp(y, y_one, (size_t)out_count * sizeof(float)) != 0) {
                    print_conv_case("fused: bits differ from 1 thread", t, detail, 0.0);
                    (*split)++;
                }
                free(y); free(ws);
            }
        }
        free(packed); free(y_one);
    }
    sb_test_conv_orientation(-1);
    use_threads(1, &bad[0]);
    free(x); free(wt); free(bias); free(s_in); free(t_in); free(s_row); free(t_row); free(res);
    free(x_copy); free(res_copy); free(w_abs); free(b_abs); free(y_ref); free(y_mag);
}

static void test_conv_packed_fused(void)
{
    double worst[MAX_PATHS] = {0.0};
    int64_t cases = 0, threaded = 0, bad[MAX_PATHS] = {0}, split = 0;

    /* Large enough to be split over threads (>= 2^20 multiply-adds), one per
     * layout of the packed path: staged (3x3 stride 1), staged into phase
     * planes (strided), unstaged (1x1 with no transform), several K blocks,
     * groups, channel slices on every map; both orientations (the loop in
     * run_fused). */
    static const fused_case big[] = {
        /*  n cin cout  h   w kh kw sh sw ph pw dh dw  g  ie  oe b   tr res rex relu fold */
        {{2,  16,  20, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1,  0,  0, 1}, 2, 1,  0, 1, 0}, /* DenseLayer-like + residual */
        {{2,  16,  20, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 32, 17, 1}, 1, 1, 11, 0, 1}, /* slices everywhere */
        {{1,  48,  13, 31, 29, 3, 3, 2, 2, 1, 1, 1, 1, 1,  0,  0, 1}, 2, 0,  0, 1, 1}, /* strided, K = 432 */
        {{3,  32,  32, 18, 18, 3, 3, 1, 1, 1, 1, 1, 1, 4,  0,  0, 0}, 3, 1,  0, 1, 0}, /* groups 4, relu only */
        {{2,  64,  40, 16, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1,  0,  9, 1}, 0, 1,  5, 1, 1}, /* 1x1 read in place */
        {{2,  64,  40, 16, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1, 64,  0, 1}, 2, 0,  0, 0, 0}, /* 1x1 with transform */
        {{1,  24,  30, 19, 21, 5, 5, 1, 1, 2, 2, 1, 1, 1,  0,  0, 1}, 2, 1,  0, 1, 1}, /* 5x5, K = 600 */
        {{4,   3,  16, 32, 32, 3, 3, 1, 1, 1, 1, 2, 2, 1,  0,  0, 1}, 1, 0,  0, 1, 0}, /* dilated stem */
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        run_fused(&big[i], worst, bad, &split);
        cases++;
        threaded++;
    }

    /* Random small cases: every fusion combination over odd geometry. */
    for (int it = 0; it < 300; it++) {
        fused_case f;
        conv_case *t = &f.c;
        t->g = irand(1, 3);
        t->cin = t->g * irand(1, 4);
        t->cout = t->g * irand(1, 5);
        t->n = irand(0, 3);
        t->h = irand(1, 11);
        t->w = irand(1, 11);
        t->kh = irand(1, 4);
        t->kw = irand(1, 4);
        t->sh = irand(1, 3);
        t->sw = irand(1, 3);
        t->ph = irand(0, 2);
        t->pw = irand(0, 2);
        t->dh = irand(1, 2);
        t->dw = irand(1, 2);
        t->in_extra = (it % 3 == 0) ? irand(1, 30) : 0;
        t->out_extra = (it % 4 == 0) ? irand(1, 30) : 0;
        t->bias = it % 5 != 0;
        if (it % 6 == 0) {
            t->kh = t->kw = t->sh = t->sw = 1;
            t->ph = t->pw = 0;
        }
        f.in_transform = it % 4;
        f.residual = (it / 4) % 2;
        f.res_extra = (it % 5 == 0) ? irand(1, 30) : 0;
        f.out_relu = (it / 8) % 2;
        f.fold = (it / 16) % 2;
        if (sb_conv2d_out_size(t->h, t->kh, t->sh, t->ph, t->dh) <= 0 ||
            sb_conv2d_out_size(t->w, t->kw, t->sw, t->pw, t->dw) <= 0)
            continue;
        run_fused(&f, worst, bad, &split);
        cases++;
    }
    for (int i = 0; i < g_n_isas; i++)
        report_isa("conv2d_packed fused vs ref", i, cases, worst[i], TOL_SUM, bad[i]);
    printf("  (%lld cases large enough to be split over threads)\n", (long long)threaded);
    report("conv2d_packed 1/2/3 threads memcmp", cases * g_n_isas * (N_THREADS - 1), split ? 1.0 : 0.0, 0.0, 0);

    /* Fusion argument errors. */
    {
        float buf[2048];
        fill_val(buf, 2048, 0.0f);
        sb_fmap in = {1, 2, 4, 4, 32}, out = {1, 2, 4, 4, 32};
        sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
        sb_conv2d_fusion fu;
        int64_t b = 0;
        memset(&fu, 0, sizeof fu);
        fu.in_scale = buf;   /* without in_shift */
        expect_status("packed scale w/o shift", sb_conv2d_f32_packed(buf, &out, buf + 64, &in, buf + 128, &p, &fu, buf + 512, 1), SB_ERR_NULL, &b);
        memset(&fu, 0, sizeof fu);
        fu.residual = buf + 256;
        const sb_fmap rbad = {1, 2, 4, 3, 32};
        fu.residual_map = rbad;
        expect_status("packed residual shape", sb_conv2d_f32_packed(buf, &out, buf + 64, &in, buf + 128, &p, &fu, buf + 512, 1), SB_ERR_SHAPE, &b);
        expect_status("packed NULL workspace", sb_conv2d_f32_packed(buf, &out, buf + 64, &in, buf + 128, &p, NULL, NULL, 1), SB_ERR_NULL, &b);
        expect_status("pack row_scale w/o shift", sb_conv2d_f32_pack_weights(buf, buf + 64, NULL, buf, NULL, 2, 2, 3, 3, 1), SB_ERR_NULL, &b);
        expect_status("pack groups !| C_out", sb_conv2d_f32_pack_weights(buf, buf + 64, NULL, NULL, NULL, 3, 2, 3, 3, 2), SB_ERR_ARGUMENT, &b);
        report("conv2d_packed argument errors", 5, 0.0, 0.0, b);
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
    report("linear vs ref", cases, worst, TOL_SUM, bad);
}

/* sb_linear_f32_packed (the Linear layer's path: the GEMM micro-kernels with
 * W^T packed once) against the reference, on every ISA and on 1, 2 and
 * 3 threads; results must be bit-identical across thread counts. */
static void test_linear_packed(void)
{
    static const int64_t rs[] = {0, 1, 2, 5, 17};
    static const int64_t is[] = {0, 1, 7, 8, 9, 15, 16, 17, 64, 100, 256, 257, 513};
    static const int64_t os[] = {0, 1, 3, 5, 6, 7, 12, 13};
    /* rows x in x out >= 2^20: split over threads (rows become columns). */
    static const int64_t big[][3] = {{64, 300, 70}, {200, 129, 41}, {33, 1024, 37}};
    const int n_small = (int)(sizeof rs / sizeof rs[0] * sizeof is / sizeof is[0] *
                              sizeof os / sizeof os[0]);
    const int n_big = (int)(sizeof big / sizeof big[0]);
    double worst[MAX_PATHS] = {0.0};
    int64_t cases = 0, bad[MAX_PATHS] = {0}, split = 0;
    for (int c = 0; c < n_small + n_big; c++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            int64_t r, i, o;
            if (c < n_small) {
                const int ni = (int)(sizeof is / sizeof is[0]), no = (int)(sizeof os / sizeof os[0]);
                r = rs[c / (ni * no)];
                i = is[(c / no) % ni];
                o = os[c % no];
            } else {
                r = big[c - n_small][0];
                i = big[c - n_small][1];
                o = big[c - n_small][2];
            }
            float *x = alloc_f(r * i), *wt = alloc_f(o * i), *bias = alloc_f(o);
            fill_rand(x, r * i);
            fill_rand(wt, o * i);
            fill_rand(bias, o);
            const float *bp = with_bias ? bias : NULL;
            float *x_copy = dup_f(x, r * i);
            float *y_ref = alloc_f(r * o), *y_mag = alloc_f(r * o), *y_one = alloc_f(r * o);
            fill_val(y_ref, r * o, NAN);
            expect_status("linear ref", sb_linear_f32__ref(y_ref, x, wt, bp, r, i, o), SB_OK, &bad[0]);
            float *xa = abs_dup(x, r * i), *wa = abs_dup(wt, o * i), *ba = abs_dup(bias, o);
            expect_status("linear mag", sb_linear_f32__ref(y_mag, xa, wa, with_bias ? ba : NULL, r, i, o), SB_OK, &bad[0]);
            /* The layer packs W^T (and the bias) once; alloc_f gets at least
             * one float so 0-float cases still pass a real pointer. */
            const int64_t pw_count = sb_linear_f32_packed_weights_floats(o, i);
            float *packed = alloc_f(pw_count > 0 ? pw_count : 1);
            expect_status("linear pack", sb_linear_f32_pack_weights(packed, wt, bp, o, i), SB_OK, &bad[0]);
            for (int s = 0; s < g_n_isas; s++) {
                use_isa(s, &bad[s]);
                for (int ti = 0; ti < N_THREADS; ti++) {
                    const int nt = g_threads[ti];
                    use_threads(nt, &bad[s]);
                    float *y = alloc_f(r * o);
                    float *ws = alloc_f(sb_linear_f32_packed_workspace_floats(r, i, o, nt));
                    fill_val(y, r * o, NAN);
                    expect_status("linear packed", sb_linear_f32_packed(y, x, packed, r, i, o, ws, nt), SB_OK, &bad[s]);
                    const double d = max_scaled(y, y_ref, y_mag, r * o);
                    bad[s] += count_not_same(x, x_copy, r * i);
                    if (d > TOL_SUM)
                        printf("  linear packed rows=%lld in=%lld out=%lld bias=%d [%s, %d thr]: %.3g\n",
                               (long long)r, (long long)i, (long long)o, with_bias,
                               path_name(s), nt, d);
                    if (!(d <= worst[s]))
                        worst[s] = d;
                    if (ti == 0) {
                        if (r * o > 0)
                            memcpy(y_one, y, (size_t)(r * o) * sizeof(float));
                    } else if (r * o > 0 && memcmp(y, y_one, (size_t)(r * o) * sizeof(float)) != 0) {
                        printf("  linear packed rows=%lld in=%lld out=%lld [%s, %d thr]: bits differ "
                               "from 1 thread\n", (long long)r, (long long)i, (long long)o,
                               path_name(s), nt);
                        split++;
                    }
                    free(y); free(ws);
                }
            }
            use_threads(1, &bad[0]);
            free(x); free(wt); free(bias); free(x_copy); free(y_ref); free(y_mag); free(y_one);
            free(xa); free(wa); free(ba); free(packed);
            cases++;
        }
    {
        float x[4], y[4];
        expect_status("linear packed rows<0", sb_linear_f32_packed(y, x, x, -1, 2, 2, x, 1), SB_ERR_SHAPE, &bad[0]);
        expect_status("linear packed NULL ws", sb_linear_f32_packed(y, x, x, 1, 2, 2, NULL, 1), SB_ERR_NULL, &bad[0]);
        expect_status("linear packed empty", sb_linear_f32_packed(NULL, NULL, NULL, 0, 2, 2, NULL, 1), SB_OK, &bad[0]);
    }
    for (int s = 0; s < g_n_isas; s++)
        report_isa("linear_packed vs ref", s, cases, worst[s], TOL_SUM, bad[s]);
    report("linear_packed 1/2/3 threads memcmp", cases * g_n_isas * (N_THREADS - 1), split ? 1.0 : 0.0, 0.0, 0);
}

/* ---- BatchNorm ---------------------------------------------------------- */

/* What BatchNorm's apply computes for one element on the ISA in use: one
 * FMA on the vector paths (as torch's AVX2/AVX-512 builds), a rounded
 * product plus a rounded sum on the portable path (as torch's DEFAULT
 * build). This file is C99 (no contraction), so x * s + t is two roundings. */
static float bn_expected(float x, float s, float t)
{
    return sb_get_isa() == SB_ISA_SCALAR ? x * s + t : fmaf(x, s, t);
}

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
            double d2 = rel_diff(var[c], (float)sq); /* var holds the sum of squares */
            if (d1 > worst) worst = d1;
            if (d2 > worst) worst = d2;
        }
        /* fold from the batch (var_sum over m values): against the formula in double. */
        const int64_t m = in.n * hw;
        fill_rand(w, C);
        fill_rand(b, C);
        expect_status("bn fold", sb_batch_norm_fold_f32(scale, shift, mean, var, w, b, 1e-5, C, m), SB_OK, &bad);
        for (int64_t c = 0; c < C; c++) {
            double sc = (double)w[c] / sqrt((double)var[c] / (double)m + 1e-5);
            double sh = (double)b[c] - (double)mean[c] * sc;
            double d1 = rel_diff(scale[c], (float)sc), d2 = fabs(shift[c] - sh) / (1.0 + fabs(mean[c] * sc));
            if (d1 > worst) worst = d1;
            if (d2 > worst) worst = d2;
        }
        /* NULL weight / bias mean 1 / 0. */
        {
            float s2[64], t2[64];
            expect_status("bn fold null", sb_batch_norm_fold_f32(s2, t2, mean, var, NULL, NULL, 1e-5, C, m), SB_OK, &bad);
            for (int64_t c = 0; c < C; c++) {
                /* torch's roundings: var_sum / n in float, 1 / sqrt in double */
                bad += !same_float(s2[c], (float)(1.0 / sqrt((double)(var[c] / (float)m) + 1e-5)));
                bad += !same_float(t2[c], 0.0f - mean[c] * s2[c]);
            }
            /* running statistics (eval): torch's float invstd, and the
             * shift rounded once (bias - mean * scale as one FMA) */
            expect_status("bn fold eval", sb_batch_norm_fold_f32(s2, t2, mean, var, w, b, 1e-5, C, 0), SB_OK, &bad);
            for (int64_t c = 0; c < C; c++) {
                const float invstd = 1.0f / sqrtf(var[c] + 1e-5f);
                bad += !same_float(s2[c], invstd * w[c]);
                bad += !same_float(t2[c], fmaf(-mean[c], invstd * w[c], b[c]));
            }
        }
        /* update_running: torch's formula, unbiased variance; and its exact
         * roundings (float momentum, var_sum / (n - 1) in float, the
         * variance update summed in double) */
        if (m >= 2) {
            fill_rand(rm, C);
            for (int64_t c = 0; c < C; c++)
                rv[c] = 1.0f + 0.5f * frand();
            float *rm0 = dup_f(rm, C), *rv0 = dup_f(rv, C);
            expect_status("bn update", sb_batch_norm_update_running_f32(rm, rv, mean, var, m, 0.1, C), SB_OK, &bad);
            const float mf = 0.1f, keep = 1.0f - mf;
            for (int64_t c = 0; c < C; c++) {
                double em = 0.9 * rm0[c] + 0.1 * mean[c];
                double ev = 0.9 * rv0[c] + 0.1 * (double)var[c] / (m - 1);
                double d1 = rel_diff(rm[c], (float)em), d2 = rel_diff(rv[c], (float)ev);
                if (d1 > worst) worst = d1;
                if (d2 > worst) worst = d2;
                const float unbiased = var[c] / (float)(m - 1), kept = keep * rv0[c];
                bad += !same_float(rm[c], mf * mean[c] + keep * rm0[c]);
                bad += !same_float(rv[c], (float)((double)unbiased * mf + kept));
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
                        float v = bn_expected(xi[n * in.batch_stride + c * hw + i], scale[c], shift[c]);
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
        expect_status("bn fold eps<0", sb_batch_norm_fold_f32(v, v, v, v, NULL, NULL, -1.0, 2, 0), SB_ERR_ARGUMENT, &bad);
        expect_status("bn fold NULL", sb_batch_norm_fold_f32(v, NULL, v, v, NULL, NULL, 1e-5, 2, 0), SB_ERR_NULL, &bad);
    }
    report("batch_norm stats/fold/update/apply", cases, worst, TOL_ACCUM, bad);
}

/* ResidualBlock's train-mode tail against the same float expression written
 * out: exact, NaN / inf / -0 included, strided maps and in place. */
static void test_batch_norm_add_relu(void)
{
    static const int64_t shapes[][7] = {   /* n c h w in_extra out_extra res_extra */
        {1, 1, 1, 1, 0, 0, 0}, {2, 3, 5, 7, 0, 0, 0}, {4, 16, 8, 8, 64, 0, 7},
        {3, 5, 1, 1, 3, 2, 1}, {1, 7, 13, 11, 0, 5, 0}, {2, 9, 4, 33, 11, 13, 17},
        {0, 4, 3, 3, 0, 0, 0},
    };
    int64_t cases = 0, bad = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t *sh = shapes[s];
        const int64_t chw = sh[1] * sh[2] * sh[3], hw = sh[2] * sh[3], C = sh[1];
        const sb_fmap in = {sh[0], C, sh[2], sh[3], chw + sh[4]};
        const sb_fmap out = {sh[0], C, sh[2], sh[3], chw + sh[5]};
        const sb_fmap rm = {sh[0], C, sh[2], sh[3], chw + sh[6]};
        const int64_t ic = in.n * in.batch_stride, oc = out.n * out.batch_stride;
        const int64_t rc = rm.n * rm.batch_stride;
        float *x = alloc_f(ic), *r = alloc_f(rc), *y = alloc_f(oc);
        float *scale = alloc_f(C), *shift = alloc_f(C);
        fill_rand(x, ic);
        fill_rand(r, rc);
        fill_rand(scale, C);
        fill_rand(shift, C);
        for (int64_t i = 0; i < ic; i++)   /* sprinkle NaN, +-inf, -0 */
            if (frand() > 0.9f) {
                const float u = frand();
                x[i] = u > 0.5f ? NAN : u > 0.0f ? INFINITY : u > -0.5f ? -INFINITY : -0.0f;
            }
        if (rc > 0)
            r[0] = NAN;
        float *x_copy = dup_f(x, ic), *r_copy = dup_f(r, rc);
        prefill_map(y, &out);
        expect_status("bn add relu", sb_batch_norm_add_relu_f32(y, &out, x, &in, scale, shift, r, &rm), SB_OK, &bad);
        for (int64_t n = 0; n < in.n; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < hw; i++) {
                    const float v = bn_expected(x[n * in.batch_stride + c * hw + i], scale[c], shift[c]) +
                                    r[n * rm.batch_stride + c * hw + i];
                    bad += !same_float(y[n * out.batch_stride + c * hw + i], v < 0.0f ? 0.0f : v);
                }
        bad += count_bad_gaps(y, &out);
        bad += count_not_same(x, x_copy, ic) + count_not_same(r, r_copy, rc);
        /* in place (out == in) gives the same bits */
        float *xi = dup_f(x, ic);
        expect_status("bn add relu inplace", sb_batch_norm_add_relu_f32(xi, &in, xi, &in, scale, shift, r, &rm), SB_OK, &bad);
        for (int64_t n = 0; n < in.n; n++)
            bad += count_not_same(xi + n * in.batch_stride, y + n * out.batch_stride, chw);
        free(x); free(r); free(y); free(scale); free(shift); free(x_copy); free(r_copy); free(xi);
        cases++;
    }
    {
        float v[64];
        fill_val(v, 64, 0.0f);
        const sb_fmap m = {1, 2, 2, 2, 8}, m_bad = {1, 2, 2, 3, 12};
        expect_status("bn add relu residual shape", sb_batch_norm_add_relu_f32(v, &m, v + 16, &m, v, v, v + 32, &m_bad), SB_ERR_SHAPE, &bad);
        expect_status("bn add relu NULL residual map", sb_batch_norm_add_relu_f32(v, &m, v + 16, &m, v, v, v + 32, NULL), SB_ERR_NULL, &bad);
        expect_status("bn add relu NULL scale", sb_batch_norm_add_relu_f32(v, &m, v + 16, &m, NULL, v, v + 32, &m), SB_ERR_NULL, &bad);
    }
    report("batch_norm_add_relu (exact)", cases, bad ? 1.0 : 0.0, 0.0, bad);
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

/* The global average pool and the per-channel scale (SEAttention's
 * squeeze and excitation) on every kernel path and 1-3 threads must give
 * the scalar path's bits: plane sizes below, at and around the 8-float
 * vector (1..17), SEAttention's 7x7 and a few larger ones, padded image
 * strides, in-place scaling, and non-finite inputs and signed zeros (a
 * masked-off tail lane must not change a sum). */
static void test_pool_scale_paths(void)
{
    /* ... and around the pool's block of SB_POOL_BLOCK (4096) floats */
    static const int64_t plane_sizes[] = {1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 24, 49, 50, 64,
                                          100, 4095, 4096, 4097, 8199, 12288};
    int64_t bad = 0, cases = 0;
    for (size_t si = 0; si < sizeof plane_sizes / sizeof plane_sizes[0]; si++) {
        for (int variant = 0; variant < 3; variant++) {
            const int64_t hw = plane_sizes[si];
            /* variant 2: enough planes (x hw) to be split over threads */
            const int64_t n = 1 + variant, c = variant == 2 ? (hw > 100 ? 24 : 700) : 5 + variant;
            sb_fmap in = {n, c, 1, hw, c * hw + (variant == 1 ? 11 : 0)};
            sb_fmap pooled = {n, c, 1, 1, c + (variant == 1 ? 3 : 0)};
            const int64_t ic = n * in.batch_stride, pc = n * pooled.batch_stride;
            float *x = alloc_f(ic), *s = alloc_f(n * c);
            float *ref_pool = alloc_f(pc), *ref_scaled = alloc_f(ic);
            float *pool = alloc_f(pc), *scaled = alloc_f(ic), *inplace = alloc_f(ic);
            fill_rand(x, ic);
            fill_rand(s, n * c);
            x[0] = -0.0f;
            if (ic > 9) {
                x[3] = INFINITY;
                x[ic - 2] = NAN;
                x[ic / 2] = -INFINITY;
            }
            s[n * c - 1] = -0.0f;
            for (int path = 0; path < g_n_isas; path++) {
                for (int ti = 0; ti < N_THREADS; ti++) {
                    use_isa(path, &bad);
                    use_threads(g_threads[ti], &bad);
                    const int first = path == 0 && ti == 0;
                    float *p = first ? ref_pool : pool, *y = first ? ref_scaled : scaled;
                    fill_val(p, pc, SENTINEL);
                    fill_val(y, ic, SENTINEL);
                    memcpy(inplace, x, (size_t)ic * sizeof(float));
                    expect_status("pool", sb_adaptive_avg_pool2d_f32(p, &pooled, x, &in), SB_OK, &bad);
                    expect_status("scale", sb_channel_scale_f32(y, &in, x, &in, s), SB_OK, &bad);
                    expect_status("scale in place",
                                  sb_channel_scale_f32(inplace, &in, inplace, &in, s), SB_OK, &bad);
                    /* in place equals out of place, padding included (the
                     * scale never writes between images) */
                    for (int64_t b = 0; b < n; b++)
                        bad += count_not_same(inplace + b * in.batch_stride,
                                              y + b * in.batch_stride, c * hw);
                    if (!first) {
                        bad += count_not_same(pool, ref_pool, pc);
                        bad += count_not_same(scaled, ref_scaled, ic);
                    }
                    cases++;
                }
            }
            free(x); free(s); free(ref_pool); free(ref_scaled); free(pool); free(scaled);
            free(inplace);
        }
    }
    use_isa(0, &bad);
    use_threads(1, &bad);
    report("global pool / channel scale, every path = scalar (exact)", cases,
           bad ? 1.0 : 0.0, 0.0, bad);
}

#ifdef SB_HAVE_AVX2_KERNELS
/* The 6x32 AVX-512 micro-kernel (two adjacent 16-column panels per call)
 * against two calls of the AVX2 6x16 indirect kernel: the same terms in
 * the same order with one FMA each, so the same bits. Checked for its
 * source compiled for AVX2 on any AVX2 CPU, and for the real AVX-512 build
 * when the CPU has AVX-512F. Rows of B are 32 floats at odd offsets. */
static void test_wide_ukernels(void)
{
    enum { MR = SB_CONV_MR, KMAX = 257, LDC = 32 + 5 };
    static const int64_t kcs[] = {0, 1, 3, 16, 256, 257};
    if (!sb_isa_available(SB_ISA_AVX2))
        return;
    struct { const char *name; sb_igemm_ukernel wide; } wides[2] = {
        {"avx512-source-on-avx2", sb_igemm_f32_ukernel_6x32__avx512_source_on_avx2}};
    int n_wides = 1;
    if (sb_isa_available(SB_ISA_AVX512)) {
        wides[1].name = "avx512";
        wides[1].wide = sb_igemm_f32_ukernel_6x32__avx512;
        n_wides = 2;
    }
    const int64_t spread = 32 + 7;
    float *a = alloc_f(KMAX * MR), *src = alloc_f(KMAX * spread + 3);
    float *c_init = alloc_f(MR * LDC), *c_pair = alloc_f(MR * LDC), *c_wide = alloc_f(MR * LDC);
    int64_t offsets[KMAX];
    fill_rand(a, KMAX * MR);
    fill_rand(src, KMAX * spread + 3);
    fill_rand(c_init, MR * LDC);
    for (int64_t p = 0; p < KMAX; p++)
        offsets[p] = 3 + p * spread - (p % 2);
    for (int w = 0; w < n_wides; w++) {
        int64_t cases = 0, bad = 0;
        for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                const int64_t kc = kcs[ki];
                memcpy(c_pair, c_init, MR * LDC * sizeof(float));
                memcpy(c_wide, c_init, MR * LDC * sizeof(float));
                sb_igemm_f32_ukernel_6x16__avx2(kc, a, src, offsets, c_pair, LDC, accumulate);
                sb_igemm_f32_ukernel_6x16__avx2(kc, a, src + 16, offsets, c_pair + 16, LDC,
                                                accumulate);
                wides[w].wide(kc, a, src, offsets, c_wide, LDC, accumulate);
                bad += count_not_same(c_pair, c_wide, MR * LDC); /* columns 32.. untouched too */
                cases++;
            }
        }
        char name[80];
        snprintf(name, sizeof name, "6x32 ukernel == 2x avx2 6x16 (%s)", wides[w].name);
        report(name, cases, bad ? 1.0 : 0.0, 0.0, bad);
    }

    /* The pixel-row pair: six pixel pointers at odd places in src, weights
     * in two 16-column panels w_next floats apart. */
    struct { const char *name; sb_pixgemm_ukernel wide; } pix[2] = {
        {"avx512-source-on-avx2", sb_pixgemm_f32_ukernel_6x32__avx512_source_on_avx2}};
    if (n_wides == 2) {
        pix[1].name = "avx512";
        pix[1].wide = sb_pixgemm_f32_ukernel_6x32__avx512;
    }
    const int64_t w_next = KMAX * 16 + 9;
    float *wts = alloc_f(2 * w_next);
    fill_rand(wts, 2 * w_next);
    const float *pixels[MR];
    for (int i = 0; i < MR; i++)
        pixels[i] = src + 1 + 5 * i;
    for (int64_t p = 0; p < KMAX; p++)
        offsets[p] = p * 2 + (p % 5); /* max 2*256 + 4 + 1 + 25 < KMAX * spread */
    for (int w = 0; w < n_wides; w++) {
        int64_t cases = 0, bad = 0;
        for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                const int64_t kc = kcs[ki];
                memcpy(c_pair, c_init, MR * LDC * sizeof(float));
                memcpy(c_wide, c_init, MR * LDC * sizeof(float));
                sb_pixgemm_f32_ukernel_6x16__avx2(kc, pixels, offsets, wts, 0, c_pair, LDC,
                                                  accumulate);
                sb_pixgemm_f32_ukernel_6x16__avx2(kc, pixels, offsets, wts + w_next, 0,
                                                  c_pair + 16, LDC, accumulate);
                pix[w].wide(kc, pixels, offsets, wts, w_next, c_wide, LDC, accumulate);
                bad += count_not_same(c_pair, c_wide, MR * LDC);
                cases++;
            }
        }
        char name[80];
        snprintf(name, sizeof name, "pixel-row 6x32 == 2x avx2 6x16 (%s)", pix[w].name);
        report(name, cases, bad ? 1.0 : 0.0, 0.0, bad);
    }
    free(wts);
    free(a); free(src); free(c_init); free(c_pair); free(c_wide);
}
#endif

/* The pixel-row micro-kernels (rows: six input pointers plus one offset
 * per k; columns: 16 packed weights) against a double-precision sum, per
 * ISA; columns past the tile must stay untouched. */
static void test_pixel_row_ukernels(void)
{
    enum { MR = SB_CONV_MR, NR = SB_CONV_NR, KMAX = 257, LDC = NR + 3 };
    static const int64_t kcs[] = {0, 1, 2, 7, 16, 256, 257};
    struct { const char *name; sb_pixgemm_ukernel kernel; } isas[2] = {
        {"scalar", sb_pixgemm_f32_ukernel_6x16__scalar}};
    int n_isas = 1;
#ifdef SB_HAVE_AVX2_KERNELS
    if (sb_isa_available(SB_ISA_AVX2)) {
        isas[1].name = "avx2";
        isas[1].kernel = sb_pixgemm_f32_ukernel_6x16__avx2;
        n_isas = 2;
    }
#endif
    const int64_t src_floats = 3 * KMAX + 64;
    float *src = alloc_f(src_floats), *w = alloc_f(KMAX * NR);
    float *c_init = alloc_f(MR * LDC), *c = alloc_f(MR * LDC);
    int64_t offsets[KMAX];
    const float *pixels[MR];
    fill_rand(src, src_floats);
    fill_rand(w, KMAX * NR);
    fill_rand(c_init, MR * LDC);
    for (int i = 0; i < MR; i++)
        pixels[i] = src + 7 * i + (i == 5 ? 2 : 0); /* two pixels may share values */
    for (int64_t p = 0; p < KMAX; p++)
        offsets[p] = 3 * p - (p % 2);
    for (int s = 0; s < n_isas; s++) {
        int64_t cases = 0, bad = 0;
        double worst = 0.0;
        for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                const int64_t kc = kcs[ki];
                memcpy(c, c_init, MR * LDC * sizeof(float));
                isas[s].kernel(kc, pixels, offsets, w, 0, c, LDC, accumulate);
                for (int i = 0; i < MR; i++) {
                    for (int j = 0; j < LDC; j++) {
                        const float got = c[i * LDC + j];
                        if (j >= NR) {
                            bad += !same_float(got, c_init[i * LDC + j]);
                            continue;
                        }
                        double sum = accumulate ? c_init[i * LDC + j] : 0.0;
                        double mag = fabs(sum);
                        for (int64_t p = 0; p < kc; p++) {
                            const double term = (double)pixels[i][offsets[p]] * w[p * NR + j];
                            sum += term;
                            mag += fabs(term);
                        }
                        const double d = fabs(got - sum) / (1.0 + mag);
                        if (!(d <= worst))
                            worst = d;
                    }
                }
                cases++;
            }
        }
        char name[64];
        snprintf(name, sizeof name, "pixel-row 6x16 ukernel (%s)", isas[s].name);
        report(name, cases, worst, TOL_SUM, bad);
    }
    free(src); free(w); free(c_init); free(c);
}

/* The micro-kernels themselves, per ISA: the packed-B kernel against a
 * double-precision sum, and the indirect-B kernel against the packed-B
 * kernel of the same ISA, which must give the same bits (same terms, same
 * order) with its rows scattered at odd offsets (unaligned loads). kc
 * covers 0 (stores zeros), 1, odd values and the 256 K block; accumulate
 * on and off. */
static void test_ukernels(void)
{
    enum { MR = SB_CONV_MR, NR = SB_CONV_NR, KMAX = 257, LDC = NR + 3 };
    static const int64_t kcs[] = {0, 1, 2, 7, 16, 255, 256, 257};
    struct { const char *name; sb_gemm_ukernel gemm; sb_igemm_ukernel igemm; } isas[2] = {
        {"scalar", sb_gemm_f32_ukernel_6x16__scalar, sb_igemm_f32_ukernel_6x16__scalar}};
    int n_isas = 1;
#ifdef SB_HAVE_AVX2_KERNELS
    if (sb_isa_available(SB_ISA_AVX2)) {
        isas[1].name = "avx2";
        isas[1].gemm = sb_gemm_f32_ukernel_6x16__avx2;
        isas[1].igemm = sb_igemm_f32_ukernel_6x16__avx2;
        n_isas = 2;
    }
#endif
    const int64_t spread = NR + 5; /* scattered rows: NR floats every 21 */
    float *a = alloc_f(KMAX * MR), *b = alloc_f(KMAX * NR);
    float *scattered = alloc_f(KMAX * spread + 1);
    float *c_init = alloc_f(MR * LDC), *c_gemm = alloc_f(MR * LDC), *c_igemm = alloc_f(MR * LDC);
    int64_t offsets[KMAX];
    fill_rand(a, KMAX * MR);
    fill_rand(b, KMAX * NR);
    fill_rand(c_init, MR * LDC);
    fill_val(scattered, KMAX * spread + 1, SENTINEL);
    for (int64_t p = 0; p < KMAX; p++) {
        offsets[p] = 1 + p * spread + (p % 3); /* odd, uneven: never 32-byte aligned */
        memcpy(scattered + offsets[p], b + p * NR, NR * sizeof(float));
    }
    for (int i = 0; i < n_isas; i++) {
        int64_t cases = 0, bad = 0;
        double worst = 0.0;
        for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
            const int64_t kc = kcs[ki];
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                memcpy(c_gemm, c_init, MR * LDC * sizeof(float));
                memcpy(c_igemm, c_init, MR * LDC * sizeof(float));
                isas[i].gemm(kc, a, b, c_gemm, LDC, accumulate);
                isas[i].igemm(kc, a, scattered, offsets, c_igemm, LDC, accumulate);
                bad += count_not_same(c_gemm, c_igemm, MR * LDC);
                for (int r = 0; r < MR; r++) {
                    for (int j = 0; j < LDC; j++) {
                        const float got = c_gemm[r * LDC + j];
                        if (j >= NR) { /* past the tile: untouched */
                            bad += !same_float(got, c_init[r * LDC + j]);
                            continue;
                        }
                        double sum = 0.0, mag = 0.0;
                        for (int64_t p = 0; p < kc; p++) {
                            sum += (double)a[p * MR + r] * b[p * NR + j];
                            mag += fabs((double)a[p * MR + r] * b[p * NR + j]);
                        }
                        if (accumulate) {
                            sum += c_init[r * LDC + j];
                            mag += fabs(c_init[r * LDC + j]);
                        }
                        const double d = fabs(got - sum) / (1.0 + mag);
                        if (!(d <= worst))
                            worst = d;
                    }
                }
                cases++;
            }
        }
        char name[64];
        snprintf(name, sizeof name, "gemm/igemm 6x16 ukernels (%s)", isas[i].name);
        report(name, cases, worst, TOL_SUM, bad);
    }
    free(a); free(b); free(scattered); free(c_init); free(c_gemm); free(c_igemm);
    test_pixel_row_ukernels();
#ifdef SB_HAVE_AVX2_KERNELS
    test_wide_ukernels();
#endif
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

/* Sizes derived from parameters near the limits: the packed
 * convolution's staged input for a stride and dilation of 2^31 - 1 (2^31
 * phase planes per axis) would pass int64, so its workspace function must
 * say 0 and the kernel refuse, not size a wrapped buffer; the reference
 * computes the call with no workspace. Packed weight sizes saturate. */
static void test_size_limits(void)
{
    int64_t bad = 0, checks = 0;
    const int64_t big = SB_CONV_PARAM_MAX;
    float x = 3.0f, w[4] = {1.0f, 2.0f, 3.0f, 4.0f}, out[4], scratch[64];
    sb_fmap in = {1, 1, 1, 1, 1}, o = {1, 1, 2, 2, 4};
    sb_conv2d_params p = {2, 2, big, big, big, big, big, big, 1};
    checks++;
    bad += sb_conv2d_f32_packed_workspace_floats(&o, &in, &p, NULL, 1) != 0;
    checks++;
    bad += sb_conv2d_f32_workspace_floats(&o, &in, &p) != 0;
    checks++;
    bad += sb_conv2d_f32_packed(out, &o, &x, &in, scratch, &p, NULL, scratch, 1) !=
           SB_ERR_SHAPE;
    checks++;
    bad += sb_conv2d_f32(out, &o, &x, &in, w, NULL, &p, scratch) != SB_ERR_SHAPE;
    /* the direct loop: tap (ky, kx) of output (oy, ox) reads the input when
     * oy + ky == 1 and ox + kx == 1 (padded row (oy + ky) * big == big) */
    checks++;
    bad += sb_conv2d_f32__ref(out, &o, &x, &in, w, NULL, &p) != SB_OK;
    for (int i = 0; i < 4; i++) {
        checks++;
        bad += out[i] != 3.0f * w[3 - i];
    }
    /* a stride of 2^31 - 1 with dilation 2^30 has one phase per tap: small */
    sb_conv2d_params q = {2, 2, big, big, (int64_t)1 << 30, (int64_t)1 << 30,
                          (int64_t)1 << 30, (int64_t)1 << 30, 1};
    sb_fmap o1 = {1, 1, 1, 1, 1};
    const int64_t ws = sb_conv2d_f32_packed_workspace_floats(&o1, &in, &q, NULL, 1);
    checks++;
    bad += ws <= 0 || ws > 1 << 20;
    checks++;
    bad += sb_linear_f32_packed_weights_floats((int64_t)1 << 60, 15) != INT64_MAX;
    checks++;
    bad += sb_conv2d_f32_packed_weights_floats(1, (int64_t)1 << 40, (int64_t)1 << 20,
                                               (int64_t)1 << 20, 1) != INT64_MAX;
    sb_pool2d_params pool = {big + 1, 1, 1, 1, 0, 0, 1, 1};
    sb_fmap pin = {1, 1, 4, 4, 16}, pout = {1, 1, 1, 4, 4};
    checks++;
    bad += sb_pool2d_out_size(4, big + 1, 1, 0, 1, 0) != 0;
    checks++;
    bad += sb_max_pool2d_f32(out, &pout, scratch, &pin, &pool) != SB_ERR_ARGUMENT;
    report("size limits (saturation, refusal)", checks, 0.0, 0.0, bad);
}

int main(void)
{
    test_status();
    find_isas();
    test_ukernels();
    test_conv();
    test_conv_packed_fused();
    test_linear();
    test_linear_packed();
    /* BatchNorm's apply differs by path (one FMA or two roundings): each
     * path against its own expression */
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0;
        use_isa(path, &bad);
        printf("BatchNorm on the %s path:\n", path_name(path));
        report("isa switch", 1, 0.0, 0.0, bad);
        test_batch_norm();
        test_batch_norm_add_relu();
    }
    {
        int64_t bad = 0;
        use_isa(0, &bad);
    }
    test_max_pool();
    test_adaptive_avg_pool();
    test_elementwise();
    test_pool_scale_paths();
    test_size_limits();
    if (g_failures) {
        printf("%d check group(s) FAILED\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}

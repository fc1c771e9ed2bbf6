/*
 * test_conv2d.c -- Conv2d: sb_conv2d_f32 (the one-call convolution) and
 * sb_conv2d_f32_packed (the layers' path, with fusion and threads) against
 * sb_conv2d_f32__ref, on every kernel path.
 *
 *   - conv2d vs ref: hand-picked shapes (the document's blocks, the 6 x 16
 *     register tile, 192-column blocks and 256-row K blocks each hit
 *     exactly, just below and just above, groups, depthwise, dilation,
 *     asymmetric parameters, kernel or stride larger than the image, N = 0,
 *     channel slices with batch_stride > C*H*W) and 1,500 random ones; both
 *     orientations of the GEMM (channel rows, pixel rows), which must give
 *     the same bits; inputs unchanged, sentinels between images intact;
 *   - the output-size helper on known values, the workspace sizes;
 *   - NaN and inf in the input and the weights propagate;
 *   - argument errors come back as statuses, the reference's the same;
 *   - the packed path with every fusion (BatchNorm + ReLU on the input,
 *     BatchNorm folded into the weights, residual, ReLU) against the
 *     reference composition in torch's order, on 1, 2 and 3 threads, whose
 *     results must be bit-identical;
 *   - size limits: parameters near SB_CONV_PARAM_MAX make the packed path
 *     refuse (workspace 0, SB_ERR_SHAPE) instead of sizing a wrapped
 *     buffer, while the reference computes the call.
 *
 * Tolerances, in one place:
 *   TOL_SUM  |fast - ref| / (1 + mag), mag the same convolution of |x|,
 *            |w|, |b|: the sum of the magnitudes of the terms, which
 *            rounding error is proportional to. It does not loosen with
 *            cancellation (small ref) as |fast - ref| / |ref| would, and a
 *            wrong or missing term still shows up as ~1e-3 or more. The
 *            fast path sums in another order (K blocks, FMA), so it is not
 *            bit-equal to the reference;
 *   exact    between the two orientations, between thread counts, and
 *            every status.
 */
#include "test_harness.h"
#include "../kernels/gemm_ukernel.h" /* internal: sb_test_conv_orientation */

#define TOL_SUM 1e-5

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
            const int64_t ws_count = sb_conv2d_f32_workspace_elems(&out, &in, &p);
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
        b += sb_conv2d_f32_packed_weights_elems(6, 4, 1, 1, 2) != 2 * (6 + 4 * 6);
        b += sb_conv2d_f32_packed_weights_elems(6, 4, 3, 3, 2) != 2 * (6 + 36 * 6);
        b += sb_conv2d_f32_workspace_elems(&out, &in, &p1) !=
             2 * (6 + 4 * 6) + sb_conv2d_f32_packed_workspace_elems(&out, &in, &p1, NULL, 1);
        b += sb_conv2d_f32_workspace_elems(&out, &in, &p3) !=
             2 * (6 + 36 * 6) + sb_conv2d_f32_packed_workspace_elems(&out, &in, &p3, NULL, 1);
        b += sb_conv2d_f32_packed_workspace_elems(&out, &in, &p3, NULL, 1) <= 0;
        b += sb_conv2d_f32_workspace_elems(&out, &in, &p0) != 0;
        b += sb_conv2d_f32_workspace_elems(&out_bad, &in, &p3) != 0;
        report("conv2d workspace size", 7, 0.0, 0.0, b);
    }

    /* NaN / inf in input and weights propagate (nothing skipped on zeros). */
    for (int i = 0; i < g_n_isas; i++) {
        sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
        sb_fmap in = {1, 3, 6, 7, 126}, out = {1, 4, 6, 7, 168};
        float x[126], wt[4 * 27], y[168], y_ref[168];
        float *ws = alloc_f(sb_conv2d_f32_workspace_elems(&out, &in, &p));
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

    /* The reference checks its arguments as sb_conv2d_f32 does: the same
     * status for every bad argument it takes (it has no workspace). */
    {
        float buf[4096];
        fill_val(buf, 4096, 0.0f);
        const sb_fmap in = {1, 4, 8, 8, 256}, out = {1, 4, 8, 8, 256};
        const sb_fmap out_bad = {1, 4, 7, 8, 224}, out_n = {2, 4, 8, 8, 256};
        const sb_fmap in_overlap = {2, 4, 8, 8, 100}, out2 = {2, 4, 8, 8, 256};
        const sb_fmap in_small = {1, 4, 2, 2, 16}, out_empty = {1, 4, 0, 0, 0};
        const sb_fmap empty = {0, 4, 8, 8, 256};
        const sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
        struct {
            const char *what;
            sb_conv2d_params p;
            const sb_fmap *out, *in;
            int null_out, null_in, null_weight, null_params;
        } bads[13];
        int nb = 0;
        for (int k = 0; k < 13; k++) {
            bads[k].p = p;
            bads[k].out = &out;
            bads[k].in = &in;
            bads[k].null_out = bads[k].null_in = bads[k].null_weight = bads[k].null_params = 0;
        }
        bads[nb].what = "stride 0"; bads[nb++].p.stride_h = 0;
        bads[nb].what = "groups 0"; bads[nb++].p.groups = 0;
        bads[nb].what = "groups !| C"; bads[nb++].p.groups = 3;
        bads[nb].what = "dilation 0"; bads[nb++].p.dilation_w = 0;
        bads[nb].what = "pad < 0"; bads[nb++].p.pad_h = -1;
        bads[nb].what = "wrong OH"; bads[nb++].out = &out_bad;
        bads[nb].what = "N mismatch"; bads[nb++].out = &out_n;
        bads[nb].what = "overlapping images"; bads[nb].out = &out2; bads[nb++].in = &in_overlap;
        bads[nb].what = "kernel > input"; bads[nb].out = &out_empty; bads[nb].in = &in_small;
        bads[nb].p.pad_h = bads[nb].p.pad_w = 0; nb++;
        bads[nb].what = "NULL weight"; bads[nb++].null_weight = 1;
        bads[nb].what = "NULL params"; bads[nb++].null_params = 1;
        bads[nb].what = "N = 0, NULLs"; bads[nb].out = &empty; bads[nb].in = &empty;
        bads[nb].null_out = bads[nb].null_in = bads[nb].null_weight = 1; nb++;
        bads[nb].what = "NULL output"; bads[nb++].null_out = 1;
        b = 0;
        for (int k = 0; k < nb; k++) {
            float *y = bads[k].null_out ? NULL : buf;
            const float *x = bads[k].null_in ? NULL : buf + 1024;
            const float *wt = bads[k].null_weight ? NULL : buf + 2048;
            const sb_conv2d_params *pp = bads[k].null_params ? NULL : &bads[k].p;
            const sb_status fast = sb_conv2d_f32(y, bads[k].out, x, bads[k].in, wt, NULL, pp, buf + 3000);
            const sb_status ref = sb_conv2d_f32__ref(y, bads[k].out, x, bads[k].in, wt, NULL, pp);
            expect_status(bads[k].what, ref, fast, &b);
            b += fast == SB_OK && bads[k].out != &empty; /* each one an error but N = 0 */
        }
        report("conv2d __ref statuses = kernel's", nb, 0.0, 0.0, b);
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
        const int64_t pw_count = sb_conv2d_f32_packed_weights_elems(t->cout, cig, t->kh, t->kw, t->g);
        float *packed = alloc_f(pw_count > 0 ? pw_count : 1);
        expect_status("pack_weights", sb_conv2d_f32_pack_weights(packed, wt, bp, rs, rt, t->cout, cig, t->kh, t->kw, t->g), SB_OK, &bad[0]);

        float *y_one = alloc_f(out_count);   /* 1 thread's result, per ISA */
        for (int i = 0; i < g_n_isas; i++) {
            use_isa(i, &bad[i]);
            for (int ti = 0; ti < N_THREADS; ti++) {
                const int nt = g_threads[ti];
                use_threads(nt, &bad[i]);
                float *y = alloc_f(out_count);
                float *ws = alloc_f(sb_conv2d_f32_packed_workspace_elems(&out, &in, &p, &fusion, nt));
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

/* Sizes derived from parameters near the limits: the packed convolution's
 * staged input for a stride and dilation of 2^31 - 1 (2^31 phase planes per
 * axis) would pass int64, so its workspace function must say 0 and the
 * kernel refuse, not size a wrapped buffer; the reference computes the call
 * with no workspace. Packed weight sizes saturate. */
static void test_size_limits(void)
{
    int64_t bad = 0, checks = 0;
    const int64_t big = SB_CONV_PARAM_MAX;
    float x = 3.0f, w[4] = {1.0f, 2.0f, 3.0f, 4.0f}, out[4], scratch[64];
    sb_fmap in = {1, 1, 1, 1, 1}, o = {1, 1, 2, 2, 4};
    sb_conv2d_params p = {2, 2, big, big, big, big, big, big, 1};
    checks++;
    bad += sb_conv2d_f32_packed_workspace_elems(&o, &in, &p, NULL, 1) != 0;
    checks++;
    bad += sb_conv2d_f32_workspace_elems(&o, &in, &p) != 0;
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
    const int64_t ws = sb_conv2d_f32_packed_workspace_elems(&o1, &in, &q, NULL, 1);
    checks++;
    bad += ws <= 0 || ws > 1 << 20;
    checks++;
    bad += sb_conv2d_f32_packed_weights_elems(1, (int64_t)1 << 40, (int64_t)1 << 20,
                                               (int64_t)1 << 20, 1) != INT64_MAX;
    report("conv2d size limits (saturation, refusal)", checks, 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("conv2d");
    test_conv();
    test_conv_packed_fused();
    test_size_limits();
    return test_end();
}

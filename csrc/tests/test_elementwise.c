/*
 * test_elementwise.c -- the element-wise kernels of elementwise_f32.c and
 * their AVX2 variants (sigmoid_f32__avx2.c, channel_scale_f32__avx2.c):
 * sb_relu_f32, sb_sigmoid_f32, sb_add_relu_f32, sb_channel_scale_f32.
 *
 *   - each against its expression written out (torch's relu keeps NaN and
 *     -0.0; the add rounds before the relu; one product per element) and
 *     sigmoid against the formula in double, over counts around the
 *     8-float vector, with NaN, +-inf and -0.0, out of place (a guard
 *     element past the end must survive) and in place / aliased, which
 *     must give the same bits; inputs unchanged;
 *   - each against its __ref on every kernel path and on 1, 2 and 3
 *     threads (counts large enough to be split), bit for bit except
 *     sigmoid's vectorised exp;
 *   - channel_scale with strided maps and in place, and on every path and
 *     thread count bit for bit the scalar path's (plane sizes around the
 *     vector, SEAttention's 7x7, larger planes, padded image strides);
 *   - argument errors as statuses, the references' the same.
 *
 * Tolerances, in one place:
 *   TOL_SIGMOID  |sigmoid - ref| and |sigmoid - exact| (outputs in [0, 1],
 *                so absolute): the AVX2 kernel's exp polynomial against
 *                libm's expf, a few ulp of 1 (the sigmoid bound of
 *                tests/tolerances.py); the scalar path is the reference's
 *                expression and must equal it;
 *   exact        relu, add_relu, channel_scale everywhere, sigmoid on the
 *                scalar path, in place vs out of place, thread counts,
 *                statuses.
 */
#include "test_harness.h"

#define TOL_SIGMOID 5e-7

static void test_elementwise(int path)
{
    static const int64_t counts[] = {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 1000};
    int64_t bad = 0, cases = 0;
    double worst_sig = 0.0;
    use_isa(path, &bad);
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
    report_isa("relu / add_relu (exact)", path, cases, bad ? 1.0 : 0.0, 0.0, bad);
    report_isa("sigmoid vs double (abs)", path, cases, worst_sig, TOL_SIGMOID, 0);

    /* channel_scale: strided in and out, and in place. */
    bad = 0;
    cases = 0;
    use_isa(path, &bad);
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
    report_isa("channel_scale (exact)", path, cases, bad ? 1.0 : 0.0, 0.0, bad);
}

/* The global average pool and the per-channel scale (SEAttention's
 * squeeze and excitation) on every kernel path and 1-3 threads must give
 * the scalar path's bits: plane sizes below, at and around the 8-float
 * vector (1..17), SEAttention's 7x7 and a few larger ones, padded image
 * strides, in-place scaling, and non-finite inputs and signed zeros (a
 * masked-off tail lane must not change a sum). */

/* ---- the fast kernels against their references, every path and thread count */

static void test_elementwise_vs_ref(void)
{
    /* around the vector and the tails; 65537 and 200003 are split over
     * threads (relu and add_relu from 2^16 elements, sigmoid from 2^13) */
    static const int64_t counts[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100,
                                     8193, 65537, 200003};
    const int nc = (int)(sizeof counts / sizeof counts[0]);
    int64_t bad_relu = 0, bad_add = 0, bad_sig = 0, split = 0, cases = 0;
    double worst_sig = 0.0;
    for (int ci = 0; ci < nc; ci++) {
        const int64_t n = counts[ci];
        float *a = alloc_f(n), *b = alloc_f(n);
        fill_rand(a, n);
        fill_rand(b, n);
        for (int64_t i = 0; i < n; i++) {
            a[i] *= 120.0f; /* the sigmoid saturates and exp under/overflows */
            if (i % 13 == 1) a[i] = NAN;
            if (i % 17 == 2) a[i] = -0.0f;
            if (i % 19 == 3) a[i] = (i & 1) ? INFINITY : -INFINITY;
            if (i % 23 == 4) b[i] = -a[i]; /* a + b = +-0.0 */
        }
        float *a_copy = dup_f(a, n), *b_copy = dup_f(b, n);
        float *relu_ref = alloc_f(n + 1), *add_ref = alloc_f(n + 1), *sig_ref = alloc_f(n + 1);
        fill_val(relu_ref, n + 1, NAN);
        fill_val(add_ref, n + 1, NAN);
        fill_val(sig_ref, n + 1, NAN);
        expect_status("relu ref", sb_relu_f32__ref(relu_ref, a, n), SB_OK, &bad_relu);
        expect_status("add_relu ref", sb_add_relu_f32__ref(add_ref, a, b, n), SB_OK, &bad_add);
        expect_status("sigmoid ref", sb_sigmoid_f32__ref(sig_ref, a, n), SB_OK, &bad_sig);
        float *y = alloc_f(n + 1), *y1[3] = {alloc_f(n), alloc_f(n), alloc_f(n)};
        float *inplace = alloc_f(n);
        for (int path = 0; path < g_n_isas; path++) {
            const int scalar = path_isa(path) == SB_ISA_SCALAR;
            for (int ti = 0; ti < N_THREADS; ti++) {
                use_isa(path, &bad_relu);
                use_threads(g_threads[ti], &bad_relu);
                /* relu: out of place with a guard past the end, in place */
                fill_val(y, n, NAN);
                y[n] = SENTINEL;
                expect_status("relu", sb_relu_f32(y, a, n), SB_OK, &bad_relu);
                bad_relu += count_not_same(y, relu_ref, n) + (y[n] != SENTINEL);
                if (n > 0)
                    memcpy(inplace, a, (size_t)n * sizeof(float));
                expect_status("relu in place", sb_relu_f32(inplace, inplace, n), SB_OK, &bad_relu);
                bad_relu += count_not_same(inplace, relu_ref, n);
                if (ti == 0 && n > 0)
                    memcpy(y1[0], y, (size_t)n * sizeof(float));
                else
                    split += count_not_same(y, y1[0], n);
                /* add_relu: out of place, out == a, out == b */
                fill_val(y, n, NAN);
                y[n] = SENTINEL;
                expect_status("add_relu", sb_add_relu_f32(y, a, b, n), SB_OK, &bad_add);
                bad_add += count_not_same(y, add_ref, n) + (y[n] != SENTINEL);
                if (n > 0)
                    memcpy(inplace, a, (size_t)n * sizeof(float));
                expect_status("add_relu out=a", sb_add_relu_f32(inplace, inplace, b, n), SB_OK, &bad_add);
                bad_add += count_not_same(inplace, add_ref, n);
                if (n > 0)
                    memcpy(inplace, b, (size_t)n * sizeof(float));
                expect_status("add_relu out=b", sb_add_relu_f32(inplace, a, inplace, n), SB_OK, &bad_add);
                bad_add += count_not_same(inplace, add_ref, n);
                if (ti == 0 && n > 0)
                    memcpy(y1[1], y, (size_t)n * sizeof(float));
                else
                    split += count_not_same(y, y1[1], n);
                /* sigmoid: the scalar path is the reference's expression */
                fill_val(y, n, NAN);
                y[n] = SENTINEL;
                expect_status("sigmoid", sb_sigmoid_f32(y, a, n), SB_OK, &bad_sig);
                bad_sig += y[n] != SENTINEL;
                if (scalar)
                    bad_sig += count_not_same(y, sig_ref, n);
                for (int64_t i = 0; i < n; i++) {
                    const double d = (y[i] != y[i] || sig_ref[i] != sig_ref[i])
                                         ? ((y[i] != y[i]) == (sig_ref[i] != sig_ref[i]) ? 0.0 : INFINITY)
                                         : fabs((double)y[i] - (double)sig_ref[i]);
                    if (!(d <= worst_sig))
                        worst_sig = d;
                }
                if (n > 0)
                    memcpy(inplace, a, (size_t)n * sizeof(float));
                expect_status("sigmoid in place", sb_sigmoid_f32(inplace, inplace, n), SB_OK, &bad_sig);
                bad_sig += count_not_same(inplace, y, n);
                if (ti == 0 && n > 0)
                    memcpy(y1[2], y, (size_t)n * sizeof(float));
                else
                    split += count_not_same(y, y1[2], n);
                bad_relu += count_not_same(a, a_copy, n) + count_not_same(b, b_copy, n);
            }
        }
        use_threads(1, &bad_relu);
        free(a); free(b); free(a_copy); free(b_copy); free(relu_ref); free(add_ref);
        free(sig_ref); free(y); free(y1[0]); free(y1[1]); free(y1[2]); free(inplace);
        cases++;
    }
    const int64_t runs = cases * g_n_isas * N_THREADS;
    report("relu vs __ref, every path (exact)", runs, bad_relu ? 1.0 : 0.0, 0.0, bad_relu);
    report("add_relu vs __ref, every path (exact)", runs, bad_add ? 1.0 : 0.0, 0.0, bad_add);
    report("sigmoid vs __ref, every path (abs)", runs, worst_sig, TOL_SIGMOID, bad_sig);
    report("relu/add_relu/sigmoid 1/2/3 threads", cases * g_n_isas * (N_THREADS - 1),
           split ? 1.0 : 0.0, 0.0, 0);
}

/* channel_scale against its reference on every path and thread count:
 * strided maps, in place, channel counts around the vector, planes of one
 * float and planes of odd widths, maps large enough to be split. */
static void test_channel_scale_vs_ref(void)
{
    static const int64_t shapes[][6] = {   /* n c h w in_extra out_extra */
        {1, 1, 1, 1, 0, 0},    {2, 3, 1, 1, 1, 2},     {1, 9, 1, 7, 0, 3},    {3, 17, 3, 3, 5, 0},
        {2, 16, 4, 4, 0, 0},   {1, 5, 5, 13, 7, 11},   {4, 24, 7, 7, 0, 1},   {0, 4, 3, 3, 0, 0},
        {2, 0, 3, 3, 0, 0},    {2, 3, 0, 3, 2, 2},     {50, 512, 7, 7, 0, 0}, {2, 37, 33, 31, 9, 4},
    };
    int64_t bad = 0, split = 0, cases = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t *sh = shapes[si];
        const int64_t chw = sh[1] * sh[2] * sh[3];
        const sb_fmap in = {sh[0], sh[1], sh[2], sh[3], chw + sh[4]};
        const sb_fmap out = {sh[0], sh[1], sh[2], sh[3], chw + sh[5]};
        const int64_t ic = map_floats(&in), oc = map_floats(&out), sc = sh[0] * sh[1];
        float *x = alloc_f(ic), *s = alloc_f(sc);
        fill_rand(x, ic);
        fill_rand(s, sc);
        for (int64_t i = 0; i < ic; i += 11)
            x[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -0.0f;
        if (sc > 1) {
            s[0] = 0.0f;   /* inf * 0 = NaN */
            s[sc - 1] = -0.0f;
        }
        float *x_copy = dup_f(x, ic), *y_ref = alloc_f(oc), *y = alloc_f(oc), *y1 = alloc_f(oc);
        float *inplace = alloc_f(ic);
        prefill_map(y_ref, &out);
        expect_status("channel_scale ref", sb_channel_scale_f32__ref(y_ref, &out, x, &in, s), SB_OK, &bad);
        for (int path = 0; path < g_n_isas; path++)
            for (int ti = 0; ti < N_THREADS; ti++) {
                use_isa(path, &bad);
                use_threads(g_threads[ti], &bad);
                prefill_map(y, &out);
                expect_status("channel_scale", sb_channel_scale_f32(y, &out, x, &in, s), SB_OK, &bad);
                bad += count_not_same(y, y_ref, oc) + count_bad_gaps(y, &out) +
                       count_not_same(x, x_copy, ic);
                if (ic > 0)
                    memcpy(inplace, x, (size_t)ic * sizeof(float));
                expect_status("channel_scale in place", sb_channel_scale_f32(inplace, &in, inplace, &in, s), SB_OK, &bad);
                bad += count_not_same_maps(inplace, &in, y_ref, &out);
                if (path == 0 && ti == 0) {
                    if (oc > 0)
                        memcpy(y1, y, (size_t)oc * sizeof(float));
                } else {
                    split += count_not_same(y, y1, oc);
                }
            }
        use_threads(1, &bad);
        free(x); free(s); free(x_copy); free(y_ref); free(y); free(y1); free(inplace);
        cases++;
    }
    report("channel_scale vs __ref, every path (exact)", cases * g_n_isas * N_THREADS,
           bad ? 1.0 : 0.0, 0.0, bad);
    report("channel_scale paths x threads = scalar 1 thread", cases * (g_n_isas * N_THREADS - 1),
           split ? 1.0 : 0.0, 0.0, 0);
}

/* The per-channel scale (SEAttention's excitation) on every kernel path and
 * 1-3 threads must give the scalar path's bits: plane sizes below, at and
 * around the 8-float vector (1..17), SEAttention's 7x7 and a few larger
 * ones, padded image strides, in-place scaling, and non-finite inputs and
 * signed zeros. (The global pool half of this sweep is in test_pool.c.) */
static void test_channel_scale_paths(void)
{
    static const int64_t plane_sizes[] = {1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 24, 49, 50, 64,
                                          100, 4095, 4096, 4097, 8199, 12288};
    int64_t bad = 0, cases = 0;
    for (size_t si = 0; si < sizeof plane_sizes / sizeof plane_sizes[0]; si++) {
        for (int variant = 0; variant < 3; variant++) {
            const int64_t hw = plane_sizes[si];
            /* variant 2: enough planes (x hw) to be split over threads */
            const int64_t n = 1 + variant, c = variant == 2 ? (hw > 100 ? 24 : 700) : 5 + variant;
            sb_fmap in = {n, c, 1, hw, c * hw + (variant == 1 ? 11 : 0)};
            const int64_t ic = n * in.batch_stride;
            float *x = alloc_f(ic), *s = alloc_f(n * c);
            float *ref_scaled = alloc_f(ic), *scaled = alloc_f(ic), *inplace = alloc_f(ic);
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
                    float *y = first ? ref_scaled : scaled;
                    fill_val(y, ic, SENTINEL);
                    memcpy(inplace, x, (size_t)ic * sizeof(float));
                    expect_status("scale", sb_channel_scale_f32(y, &in, x, &in, s), SB_OK, &bad);
                    expect_status("scale in place",
                                  sb_channel_scale_f32(inplace, &in, inplace, &in, s), SB_OK, &bad);
                    /* in place equals out of place, padding included (the
                     * scale never writes between images) */
                    for (int64_t b = 0; b < n; b++)
                        bad += count_not_same(inplace + b * in.batch_stride,
                                              y + b * in.batch_stride, c * hw);
                    if (!first)
                        bad += count_not_same(scaled, ref_scaled, ic);
                    cases++;
                }
            }
            free(x); free(s); free(ref_scaled); free(scaled); free(inplace);
        }
    }
    use_isa(0, &bad);
    use_threads(1, &bad);
    report("channel scale, every path = scalar (exact)", cases, bad ? 1.0 : 0.0, 0.0, bad);
}

/* The references check their arguments as their kernels do. */
static void test_elementwise_ref_statuses(void)
{
    float v[128];
    fill_val(v, 128, 0.5f);
    int64_t bad = 0, n = 0;
    static const int64_t counts[] = {-1, 0, 3};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
        for (int nulls = 0; nulls < 8; nulls++, n += 3) { /* bits: out, a, b NULL */
            float *o = nulls & 1 ? NULL : v;
            const float *a = nulls & 2 ? NULL : v + 32, *b = nulls & 4 ? NULL : v + 64;
            const int64_t c = counts[k];
            expect_status("relu ref status", sb_relu_f32__ref(o, a, c), sb_relu_f32(o, a, c), &bad);
            expect_status("sigmoid ref status", sb_sigmoid_f32__ref(o, a, c), sb_sigmoid_f32(o, a, c), &bad);
            expect_status("add_relu ref status", sb_add_relu_f32__ref(o, a, b, c),
                          sb_add_relu_f32(o, a, b, c), &bad);
        }
    const sb_fmap m = {1, 2, 2, 2, 8}, m_w = {1, 2, 2, 3, 12}, m_n = {2, 2, 2, 2, 8};
    const sb_fmap overlap = {2, 2, 2, 2, 5}, empty = {0, 2, 2, 2, 8}, flat = {1, 2, 0, 2, 0};
    const sb_fmap *maps[][2] = {{&m, &m}, {&m_w, &m}, {&m, &m_n}, {&overlap, &overlap},
                                {&empty, &empty}, {&flat, &flat}, {NULL, &m}, {&m, NULL}};
    for (size_t k = 0; k < sizeof maps / sizeof maps[0]; k++, n++)
        expect_status("channel_scale ref status",
                      sb_channel_scale_f32__ref(v, maps[k][0], v + 32, maps[k][1], v + 64),
                      sb_channel_scale_f32(v, maps[k][0], v + 32, maps[k][1], v + 64), &bad);
    expect_status("channel_scale ref NULL scale", sb_channel_scale_f32__ref(v, &m, v + 32, &m, NULL),
                  sb_channel_scale_f32(v, &m, v + 32, &m, NULL), &bad);
    n++;
    report("elementwise __ref statuses = kernel's", n, 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("elementwise");
    for (int path = 0; path < g_n_isas; path++)
        test_elementwise(path);
    test_elementwise_vs_ref();
    test_channel_scale_vs_ref();
    test_channel_scale_paths();
    test_elementwise_ref_statuses();
    return test_end();
}

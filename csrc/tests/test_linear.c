/*
 * test_linear.c -- Linear: sb_linear_f32 (the direct kernel of
 * skipblocks.functional.linear: lane-split dot products, four outputs at a
 * time) and sb_linear_f32_packed (the Linear layer's path: the GEMM
 * micro-kernels with W^T packed once, row blocks over threads) against
 * sb_linear_f32__ref, on every kernel path.
 *
 *   - sizes around the 8 lanes and the 4-output block of the direct kernel
 *     and the 6 x 16 tile of the packed one (exactly, below, above), 0 rows,
 *     0 inputs (an empty sum: the bias) and 0 outputs, with and without
 *     bias; three shapes large enough to be split over threads, whose
 *     results on 1, 2 and 3 threads must be bit-identical;
 *   - a NaN past the lanes reaches every output; inputs unchanged;
 *   - argument errors as statuses, the reference's the same;
 *   - the packed weight size saturates instead of wrapping.
 *
 * Tolerances, in one place:
 *   TOL_SUM  |fast - ref| / (1 + mag), mag the reference on |x|, |w|, |b|:
 *            both kernels sum in another order than the reference's one
 *            sequential float sum (lanes, FMA on the vector paths);
 *   exact    between thread counts, and every status.
 */
#include "test_harness.h"

#define TOL_SUM 1e-5

/* ---- Linear ------------------------------------------------------------- */

/* sb_linear_f32 reads no ISA (it is plain C that the compiler vectorises),
 * but runs on every path anyway: a path switch must not change it. */
static void test_linear(int path)
{
    static const int64_t rs[] = {0, 1, 2, 5};
    static const int64_t is[] = {0, 1, 7, 8, 9, 15, 16, 17, 64, 100, 513};
    static const int64_t os[] = {0, 1, 3, 4, 5, 8, 9, 10};
    double worst = 0.0;
    int64_t cases = 0, bad = 0;
    use_isa(path, &bad);
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
    report_isa("linear vs ref", path, cases, worst, TOL_SUM, bad);
}

/* The reference checks its arguments as sb_linear_f32 does. */
static void test_linear_ref_statuses(void)
{
    float v[64];
    fill_val(v, 64, 0.0f);
    static const struct {
        int64_t rows, in, out;
        int null_out, null_in, null_weight;
    } t[] = {
        {-1, 2, 2, 0, 0, 0}, {1, -1, 2, 0, 0, 0}, {1, 2, -1, 0, 0, 0},
        {1, 2, 2, 1, 0, 0}, {1, 2, 2, 0, 1, 0}, {1, 2, 2, 0, 0, 1},
        {0, 2, 2, 1, 1, 1}, {1, 2, 0, 1, 1, 1}, {1, 0, 2, 0, 1, 1},
    };
    const int n = (int)(sizeof t / sizeof t[0]);
    int64_t bad = 0;
    for (int k = 0; k < n; k++) {
        float *y = t[k].null_out ? NULL : v;
        const float *x = t[k].null_in ? NULL : v + 16, *w = t[k].null_weight ? NULL : v + 32;
        expect_status("linear ref status",
                      sb_linear_f32__ref(y, x, w, NULL, t[k].rows, t[k].in, t[k].out),
                      sb_linear_f32(y, x, w, NULL, t[k].rows, t[k].in, t[k].out), &bad);
    }
    report("linear __ref statuses = kernel's", n, 0.0, 0.0, bad);
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
            const int64_t pw_count = sb_linear_f32_packed_weights_elems(o, i);
            float *packed = alloc_f(pw_count > 0 ? pw_count : 1);
            expect_status("linear pack", sb_linear_f32_pack_weights(packed, wt, bp, o, i), SB_OK, &bad[0]);
            for (int s = 0; s < g_n_isas; s++) {
                use_isa(s, &bad[s]);
                for (int ti = 0; ti < N_THREADS; ti++) {
                    const int nt = g_threads[ti];
                    use_threads(nt, &bad[s]);
                    float *y = alloc_f(r * o);
                    float *ws = alloc_f(sb_linear_f32_packed_workspace_elems(r, i, o, nt));
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

/* Packed weight sizes derived from huge feature counts saturate at
 * INT64_MAX (a size no array can have) instead of wrapping to a small one. */
static void test_size_limits(void)
{
    int64_t bad = 0;
    bad += sb_linear_f32_packed_weights_elems((int64_t)1 << 60, 15) != INT64_MAX;
    report("linear size limits (saturation)", 1, 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("linear");
    for (int path = 0; path < g_n_isas; path++)
        test_linear(path);
    test_linear_ref_statuses();
    test_linear_packed();
    test_size_limits();
    return test_end();
}

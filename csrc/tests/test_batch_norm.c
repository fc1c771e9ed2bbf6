/*
 * test_batch_norm.c -- BatchNorm2d's kernels (batch_norm_f32.c and its AVX2
 * plane, batch_norm_f32__avx2.c) on every kernel path:
 *
 *   - stats against sb_batch_norm_stats_f32__ref and against an exact
 *     two-pass long-double computation; fold against its formula in double
 *     and, for NULL weight / bias and in eval mode, against torch's
 *     roundings bit for bit; update_running against torch's formula and its
 *     roundings bit for bit (fold and update_running are one plain loop on
 *     every ISA: they are their own reference);
 *   - apply and add_relu against sb_batch_norm_apply_f32__ref /
 *     sb_batch_norm_add_relu_f32__ref, and each path against its own
 *     rounding bit for bit (one FMA on the AVX2 paths, as torch's
 *     vectorised kernels; product and sum rounded apart on the scalar path,
 *     as torch's DEFAULT build), NaN / inf / -0.0 included, out of place
 *     into strided outputs and in place, which must give the same bits;
 *   - edge sizes: H*W of 1 and odd widths around the 8-float vector (the
 *     masked tail), channel counts that are not multiples of 8 or 16,
 *     batch 1 and more, batch_stride > C*H*W on every map, N = 0, C = 0,
 *     H*W = 0, and maps big enough to be split over threads, whose results
 *     on 1, 2 and 3 threads must be bit-identical;
 *   - argument errors as statuses, the references' the same.
 *
 * Tolerances, in one place:
 *   TOL_STATS_ULP  stats vs its reference, in ulps: both sum in double (the
 *                  kernel in four lanes, the reference in element order)
 *                  and round to float, so they agree unless the two double
 *                  sums round to neighbouring floats;
 *   TOL_ACCUM      stats vs exact long double, fold and update_running vs
 *                  their formulas in double: float roundings, |d| / (1 + |x|);
 *   TOL_BN_APPLY   apply / add_relu on the scalar path vs the fmaf
 *                  reference, |fast - ref| / (1 + |x*s| + |t| (+ |r|)): the
 *                  product's rounding (2^-24 of |x*s|) and the final one;
 *   exact          apply / add_relu on the AVX2 paths vs the reference,
 *                  every path vs its own rounding, in place vs out of
 *                  place, thread counts, statuses, sentinels.
 */
#include "test_harness.h"

#define TOL_STATS_ULP 1.0
#define TOL_ACCUM 1e-6
#define TOL_BN_APPLY 1e-6

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

/* ---- the fast kernels against their references, every path and thread count */

/* n c h w in_extra out_extra res_extra (extra: batch_stride - C*H*W) */
static const int64_t ref_shapes[][7] = {
    {1, 1, 1, 1, 0, 0, 0},    {1, 3, 1, 7, 0, 0, 0},    {2, 7, 3, 3, 5, 0, 0},
    {1, 9, 1, 8, 0, 3, 0},    {3, 17, 1, 9, 0, 0, 11},  {2, 16, 4, 4, 0, 0, 0},
    {1, 5, 15, 17, 13, 7, 3}, {4, 24, 5, 13, 0, 0, 0},  {2, 33, 7, 7, 2, 1, 0},
    {0, 4, 3, 3, 0, 0, 0},    {2, 0, 3, 3, 0, 0, 0},    {2, 3, 0, 5, 4, 4, 4},
    /* split over threads: stats by channel, apply and add_relu by plane */
    {2, 100, 31, 33, 7, 9, 5}, {8, 24, 28, 28, 0, 0, 0},
};

/* NaN, +-inf and -0.0 at random places (about one in ten). */
static void sprinkle_specials(float *x, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        if (frand() > 0.8f) {
            const float u = frand();
            x[i] = u > 0.5f ? NAN : u > 0.0f ? INFINITY : u > -0.5f ? -INFINITY : -0.0f;
        }
}

static void test_bn_vs_ref(int path)
{
    const int fma_path = path_isa(path) != SB_ISA_SCALAR;
    double worst_stats = 0.0, worst_apply = 0.0, worst_add = 0.0;
    int64_t cases = 0, bad_stats = 0, bad_apply = 0, bad_add = 0, split = 0;
    use_isa(path, &bad_apply);
    for (size_t s = 0; s < sizeof ref_shapes / sizeof ref_shapes[0]; s++) {
        const int64_t *sh = ref_shapes[s];
        const int64_t C = sh[1], hw = sh[2] * sh[3], chw = C * hw;
        const sb_fmap in = {sh[0], C, sh[2], sh[3], chw + sh[4]};
        const sb_fmap out = {sh[0], C, sh[2], sh[3], chw + sh[5]};
        const sb_fmap rmap = {sh[0], C, sh[2], sh[3], chw + sh[6]};
        const int64_t ic = map_floats(&in), oc = map_floats(&out), rc = map_floats(&rmap);
        /* stats input: an offset mean (the two-pass variance), one NaN */
        float *xs = alloc_f(ic), *xa = alloc_f(ic), *r = alloc_f(rc);
        fill_rand(xs, ic);
        for (int64_t i = 0; i < ic; i++)
            xs[i] = xs[i] * 3.0f + 10.0f;
        if (ic > 0 && s % 2 == 1)
            xs[0] = NAN;
        fill_rand(xa, ic);
        sprinkle_specials(xa, ic);
        fill_rand(r, rc);
        sprinkle_specials(r, rc);
        float *scale = alloc_f(C), *shift = alloc_f(C);
        fill_rand(scale, C);
        fill_rand(shift, C);
        for (int64_t c = 0; c < C; c++)
            scale[c] *= 4.0f; /* some |scale| > 1: x * s rounds */
        if (C > 2) {
            scale[1] = 0.0f;  /* inf * 0 = NaN on every path */
            scale[2] = -0.0f;
        }
        float *xs_copy = dup_f(xs, ic), *xa_copy = dup_f(xa, ic), *r_copy = dup_f(r, rc);

        /* the references (single-threaded, ISA independent) and magnitudes */
        float *mean_ref = alloc_f(C), *var_ref = alloc_f(C);
        fill_val(mean_ref, C, NAN);
        fill_val(var_ref, C, NAN);
        const sb_status st_ref = sb_batch_norm_stats_f32__ref(mean_ref, var_ref, xs, &in);
        float *y_ref[2], *y_mag = alloc_f(oc), *z_ref = alloc_f(oc), *z_mag = alloc_f(oc);
        float *xa_abs = abs_dup(xa, ic), *s_abs = abs_dup(scale, C), *t_abs = abs_dup(shift, C);
        float *r_abs = abs_dup(r, rc);
        for (int relu = 0; relu < 2; relu++) {
            y_ref[relu] = alloc_f(oc);
            prefill_map(y_ref[relu], &out);
            expect_status("bn apply ref", sb_batch_norm_apply_f32__ref(y_ref[relu], &out, xa, &in, scale, shift, relu), SB_OK, &bad_apply);
        }
        prefill_map(y_mag, &out);
        prefill_map(z_ref, &out);
        prefill_map(z_mag, &out);
        expect_status("bn apply mag", sb_batch_norm_apply_f32__ref(y_mag, &out, xa_abs, &in, s_abs, t_abs, 0), SB_OK, &bad_apply);
        expect_status("bn add relu ref", sb_batch_norm_add_relu_f32__ref(z_ref, &out, xa, &in, scale, shift, r, &rmap), SB_OK, &bad_add);
        expect_status("bn add relu mag", sb_batch_norm_add_relu_f32__ref(z_mag, &out, xa_abs, &in, s_abs, t_abs, r_abs, &rmap), SB_OK, &bad_add);

        float *mean = alloc_f(C), *var = alloc_f(C), *mean1 = alloc_f(C), *var1 = alloc_f(C);
        float *y = alloc_f(oc), *y1[2] = {alloc_f(oc), alloc_f(oc)}, *z = alloc_f(oc);
        float *z1 = alloc_f(oc), *inplace = alloc_f(ic);
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_threads(g_threads[ti], &bad_apply);
            /* stats */
            fill_val(mean, C, NAN);
            fill_val(var, C, NAN);
            expect_status("bn stats", sb_batch_norm_stats_f32(mean, var, xs, &in), st_ref, &bad_stats);
            for (int64_t c = 0; st_ref == SB_OK && c < C; c++) {
                const double d = fmax(ulp_diff(mean[c], mean_ref[c]), ulp_diff(var[c], var_ref[c]));
                if (!(d <= worst_stats))
                    worst_stats = d;
            }
            if (ti == 0) {
                if (C > 0) {
                    memcpy(mean1, mean, (size_t)C * sizeof(float));
                    memcpy(var1, var, (size_t)C * sizeof(float));
                }
            } else {
                split += count_not_same(mean, mean1, C) + count_not_same(var, var1, C);
            }
            bad_stats += count_not_same(xs, xs_copy, ic);
            /* apply, out of place into the strided output, then in place */
            for (int relu = 0; relu < 2; relu++) {
                prefill_map(y, &out);
                expect_status("bn apply", sb_batch_norm_apply_f32(y, &out, xa, &in, scale, shift, relu), SB_OK, &bad_apply);
                {   /* exact on the FMA paths: the tolerance there is 0 */
                    const double d = max_scaled(y, y_ref[relu], y_mag, oc);
                    if (!(d <= worst_apply))
                        worst_apply = d;
                    if (fma_path)
                        bad_apply += count_not_same(y, y_ref[relu], oc);
                }
                bad_apply += count_bad_gaps(y, &out) + count_not_same(xa, xa_copy, ic);
                if (ic > 0)
                    memcpy(inplace, xa, (size_t)ic * sizeof(float));
                expect_status("bn apply in place", sb_batch_norm_apply_f32(inplace, &in, inplace, &in, scale, shift, relu), SB_OK, &bad_apply);
                bad_apply += count_not_same_maps(inplace, &in, y, &out);
                if (ti == 0) {
                    if (oc > 0)
                        memcpy(y1[relu], y, (size_t)oc * sizeof(float));
                } else {
                    split += count_not_same(y, y1[relu], oc);
                }
            }
            /* add_relu, out of place, then in place (out == in) */
            prefill_map(z, &out);
            expect_status("bn add relu", sb_batch_norm_add_relu_f32(z, &out, xa, &in, scale, shift, r, &rmap), SB_OK, &bad_add);
            {
                const double d = max_scaled(z, z_ref, z_mag, oc);
                if (!(d <= worst_add))
                    worst_add = d;
                if (fma_path)
                    bad_add += count_not_same(z, z_ref, oc);
            }
            bad_add += count_bad_gaps(z, &out) + count_not_same(xa, xa_copy, ic) +
                       count_not_same(r, r_copy, rc);
            if (ic > 0)
                memcpy(inplace, xa, (size_t)ic * sizeof(float));
            expect_status("bn add relu in place", sb_batch_norm_add_relu_f32(inplace, &in, inplace, &in, scale, shift, r, &rmap), SB_OK, &bad_add);
            bad_add += count_not_same_maps(inplace, &in, z, &out);
            if (ti == 0) {
                if (oc > 0)
                    memcpy(z1, z, (size_t)oc * sizeof(float));
            } else {
                split += count_not_same(z, z1, oc);
            }
        }
        use_threads(1, &bad_apply);
        free(xs); free(xa); free(r); free(scale); free(shift);
        free(xs_copy); free(xa_copy); free(r_copy); free(mean_ref); free(var_ref);
        free(y_ref[0]); free(y_ref[1]); free(y_mag); free(z_ref); free(z_mag);
        free(xa_abs); free(s_abs); free(t_abs); free(r_abs);
        free(mean); free(var); free(mean1); free(var1); free(y); free(y1[0]); free(y1[1]);
        free(z); free(z1); free(inplace);
        cases++;
    }
    report_isa("batch_norm_stats vs __ref (ulp)", path, cases * N_THREADS, worst_stats,
               TOL_STATS_ULP, bad_stats);
    report_isa(fma_path ? "batch_norm_apply vs __ref (exact)" : "batch_norm_apply vs __ref",
               path, cases * N_THREADS * 2, worst_apply, fma_path ? 0.0 : TOL_BN_APPLY, bad_apply);
    report_isa(fma_path ? "batch_norm_add_relu vs __ref (exact)" : "batch_norm_add_relu vs __ref",
               path, cases * N_THREADS, worst_add, fma_path ? 0.0 : TOL_BN_APPLY, bad_add);
    report_isa("batch_norm 1/2/3 threads bit-identical", path, cases * (N_THREADS - 1),
               split ? 1.0 : 0.0, 0.0, 0);
}

/* The references check their arguments as their kernels do. */
static void test_bn_ref_statuses(void)
{
    float v[256];
    fill_val(v, 256, 0.0f);
    const sb_fmap m = {1, 2, 2, 2, 8}, m_w = {1, 2, 2, 3, 12}, m_c = {1, 3, 2, 2, 12};
    const sb_fmap empty = {0, 2, 3, 3, 18}, no_pixels = {2, 2, 0, 3, 6};
    const sb_fmap overlap = {2, 2, 2, 2, 5}, negative = {1, -1, 2, 2, 8};
    const sb_fmap no_channels = {2, 0, 3, 3, 0};
    int64_t bad = 0, n = 0;
    /* stats */
    const sb_fmap *stat_maps[] = {&m, &empty, &no_pixels, &overlap, &negative, &no_channels, NULL};
    for (size_t k = 0; k < sizeof stat_maps / sizeof stat_maps[0]; k++, n++)
        expect_status("bn stats ref status", sb_batch_norm_stats_f32__ref(v, v + 8, v + 64, stat_maps[k]),
                      sb_batch_norm_stats_f32(v, v + 8, v + 64, stat_maps[k]), &bad);
    expect_status("bn stats ref NULL mean", sb_batch_norm_stats_f32__ref(NULL, v + 8, v + 64, &m),
                  sb_batch_norm_stats_f32(NULL, v + 8, v + 64, &m), &bad);
    n++;
    /* apply and add_relu: shapes, then NULL pointers */
    const sb_fmap *maps[][3] = {   /* out, in, residual */
        {&m, &m, &m}, {&m_w, &m, &m}, {&m, &m_c, &m}, {&m, &m, &m_w}, {&overlap, &overlap, &m},
        {&empty, &empty, &empty}, {&no_pixels, &no_pixels, &no_pixels}, {&m, &m, NULL},
        {NULL, &m, &m}, {&negative, &negative, &negative},
    };
    for (size_t k = 0; k < sizeof maps / sizeof maps[0]; k++) {
        for (int relu = 0; relu < 2; relu++, n++)
            expect_status("bn apply ref status",
                          sb_batch_norm_apply_f32__ref(v, maps[k][0], v + 64, maps[k][1], v + 128, v + 136, relu),
                          sb_batch_norm_apply_f32(v, maps[k][0], v + 64, maps[k][1], v + 128, v + 136, relu), &bad);
        expect_status("bn add relu ref status",
                      sb_batch_norm_add_relu_f32__ref(v, maps[k][0], v + 64, maps[k][1], v + 128, v + 136, v + 192, maps[k][2]),
                      sb_batch_norm_add_relu_f32(v, maps[k][0], v + 64, maps[k][1], v + 128, v + 136, v + 192, maps[k][2]), &bad);
        n++;
    }
    for (int which = 0; which < 5; which++) {
        float *o = which == 0 ? NULL : v;
        const float *x = which == 1 ? NULL : v + 64, *sc = which == 2 ? NULL : v + 128;
        const float *tt = which == 3 ? NULL : v + 136, *res = which == 4 ? NULL : v + 192;
        expect_status("bn apply ref NULL", sb_batch_norm_apply_f32__ref(o, &m, x, &m, sc, tt, 1),
                      sb_batch_norm_apply_f32(o, &m, x, &m, sc, tt, 1), &bad);
        expect_status("bn add relu ref NULL", sb_batch_norm_add_relu_f32__ref(o, &m, x, &m, sc, tt, res, &m),
                      sb_batch_norm_add_relu_f32(o, &m, x, &m, sc, tt, res, &m), &bad);
        n += 2;
    }
    report("batch_norm __ref statuses = kernel's", n, 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("batch_norm");
    /* BatchNorm's apply differs by path (one FMA or two roundings): each
     * path against its own expression, and against the reference */
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0;
        use_isa(path, &bad);
        printf("BatchNorm on the %s path:\n", path_name(path));
        report("isa switch", 1, 0.0, 0.0, bad);
        test_batch_norm();
        test_batch_norm_add_relu();
        test_bn_vs_ref(path);
    }
    test_bn_ref_statuses();
    return test_end();
}

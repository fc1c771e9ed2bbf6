/*
 * test_operators.c -- the operator tier (csrc/ops/, sb_ops.h) on every
 * kernel path and on 1, 2 and 3 threads:
 *
 *   - conv2d: plan + run against sb_conv2d_f32__ref on random geometries,
 *     batched and unbatched (3-D) input, with the weights packed for the
 *     call or by sb_op_conv2d_pack, with padding_extra (torch's 'same' of an
 *     even kernel) against the reference on the zero-extended input, and
 *     with an eval-mode BatchNorm folded into the packed weights against
 *     the reference followed by the BatchNorm;
 *   - batch_norm: train mode (output and running statistics) and eval mode
 *     against the reference kernels run in torch's sequence; non-4-D input;
 *   - pooling, element-wise ops and linear against their references;
 *   - SEAttention against sb_se_attention_f32__ref;
 *   - DenseLayer and ResidualBlock (both modes) against the operators run
 *     one by one (BatchNorm, ReLU, conv2d, add_relu), running statistics
 *     included;
 *   - validation: each bad argument gives its sb_error_code (torch's first
 *     failing check), and a fused block whose plan fails leaves its
 *     running statistics untouched.
 *
 * Tolerances, in one place:
 *   TOL_CONV   conv2d vs the direct loop, |d| / (1 + |conv of |x| and |w||):
 *              float sums in another order;
 *   TOL_BLOCK  a fused block vs its operators one by one, relative: the
 *              BatchNorm + ReLU applied while staging (one rounding less)
 *              and the folded BatchNorm change the last bits;
 *   TOL_LINEAR linear and SEAttention vs their references, relative;
 *   exact      max pool, relu, add_relu, channel scale; the BatchNorm
 *              operator vs its kernels in sequence (the same kernels);
 *              running statistics of a fused block vs one by one (the same
 *              statistics kernels on the same values); statuses and codes.
 */
#include "sb_ops.h"
#include "test_harness.h"

#define TOL_CONV 2e-6
#define TOL_BLOCK 1e-4
#define TOL_LINEAR 1e-5

static sb_tensor tensor(float *data, int ndim, const int64_t *dims)
{
    sb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = SB_DTYPE_F32;
    t.ndim = ndim;
    int64_t inner = 1;
    for (int i = 0; i < ndim; i++) {
        t.dims[i] = dims[i];
        if (i > 0)
            inner *= dims[i];
    }
    t.batch_stride = inner;
    return t;
}

static int64_t numel(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    return n;
}

static sb_fmap fmap4(const int64_t *d)
{
    sb_fmap m = {d[0], d[1], d[2], d[3], d[1] * d[2] * d[3]};
    return m;
}

/* Runs a conv2d plan + run into a new buffer (NULL on a plan failure). */
static float *run_conv(const sb_conv2d_args *a, sb_conv2d_plan *plan, int64_t *bad)
{
    sb_error err;
    if (sb_op_conv2d_plan(plan, a, &err) != SB_OK) {
        (*bad)++;
        printf("  conv plan failed: code %d\n", (int)err.code);
        return NULL;
    }
    const int64_t count = numel(plan->out_ndim, plan->out_dims);
    float *y = alloc_f(count > 0 ? count : 1);
    fill_val(y, count, NAN);
    void *ws = malloc(plan->workspace_bytes > 0 ? plan->workspace_bytes : 1);
    sb_tensor out = tensor(y, plan->out_ndim, plan->out_dims);
    expect_status("conv run", sb_op_conv2d_run(plan, a, &out, ws), SB_OK, bad);
    free(ws);
    return y;
}

/* ---- conv2d ---------------------------------------------------------------- */

static void test_conv2d(void)
{
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0, cases = 0;
        double worst = 0.0;
        use_isa(path, &bad);
        for (int t = 0; t < 120; t++) {
            use_threads(g_threads[t % N_THREADS], &bad);
            const int64_t groups = irand(1, 2), cig = irand(1, 5), cog = irand(1, 7);
            const int64_t n = irand(1, 2), kh = irand(1, 4), kw = irand(1, 4);
            const int64_t sh = irand(1, 2), sw = irand(1, 3), dh = irand(1, 2), dw = irand(1, 2);
            const int64_t ph = irand(0, 2), pw = irand(0, 2);
            const int64_t eh = t % 3 == 0 ? irand(0, 1) : 0, ew = t % 3 == 0 ? irand(0, 1) : 0;
            const int64_t h = irand((kh - 1) * dh + 1, 12), w = irand((kw - 1) * dw + 1, 12);
            const int unbatched = t % 5 == 0;
            const int64_t xd4[4] = {unbatched ? 1 : n, groups * cig, h, w};
            const int64_t wdims[4] = {groups * cog, cig, kh, kw};
            float *x = alloc_f(numel(4, xd4)), *wt = alloc_f(numel(4, wdims));
            float *b = alloc_f(groups * cog);
            fill_rand(x, numel(4, xd4));
            fill_rand(wt, numel(4, wdims));
            fill_rand(b, groups * cog);
            sb_tensor tx = unbatched ? tensor(x, 3, xd4 + 1) : tensor(x, 4, xd4);
            sb_tensor tw = tensor(wt, 4, wdims), tb = tensor(b, 1, wdims);
            tb.dims[0] = groups * cog;
            sb_conv2d_args a;
            memset(&a, 0, sizeof a);
            a.input = &tx;
            a.weight = &tw;
            a.bias = t % 2 ? &tb : NULL;
            a.stride[0] = sh; a.stride[1] = sw;
            a.padding[0] = ph; a.padding[1] = pw;
            a.dilation[0] = dh; a.dilation[1] = dw;
            a.groups = groups;
            a.padding_extra[0] = eh; a.padding_extra[1] = ew;
            a.num_threads = g_threads[t % N_THREADS];
            /* half the cases on weights packed by the pack operator */
            float *packed = NULL;
            if (t % 4 >= 2) {
                sb_conv2d_pack_args pa = {&tw, a.bias, groups, NULL};
                sb_conv2d_pack_plan pp;
                sb_error err;
                expect_status("pack plan", sb_op_conv2d_pack_plan(&pp, &pa, &err), SB_OK, &bad);
                packed = alloc_f(pp.packed_numel);
                expect_status("pack run", sb_op_conv2d_pack_run(&pp, &pa, packed, NULL), SB_OK,
                              &bad);
                a.packed = packed;
                a.packed_numel = pp.packed_numel;
            }
            sb_conv2d_plan plan;
            float *y = run_conv(&a, &plan, &bad);
            /* the reference on the input extended with padding_extra zeros */
            const int64_t xe[4] = {xd4[0], xd4[1], h + eh, w + ew};
            float *xz = alloc_f(numel(4, xe));
            fill_val(xz, numel(4, xe), 0.0f);
            for (int64_t i = 0; i < xd4[0] * xd4[1]; i++)
                for (int64_t r = 0; r < h; r++)
                    memcpy(xz + (i * xe[2] + r) * xe[3], x + (i * h + r) * w,
                           (size_t)w * sizeof(float));
            const sb_fmap in_map = fmap4(xe);
            const int64_t od[4] = {xd4[0], groups * cog,
                                   sb_conv2d_out_size(h + eh, kh, sh, ph, dh),
                                   sb_conv2d_out_size(w + ew, kw, sw, pw, dw)};
            const sb_fmap out_map = fmap4(od);
            const sb_conv2d_params p = {kh, kw, sh, sw, ph, pw, dh, dw, groups};
            float *ref = alloc_f(numel(4, od)), *mag = alloc_f(numel(4, od));
            float *xa = abs_dup(xz, numel(4, xe)), *wa = abs_dup(wt, numel(4, wdims));
            float *ba = abs_dup(b, groups * cog);
            expect_status("conv ref", sb_conv2d_f32__ref(ref, &out_map, xz, &in_map, wt,
                                                         a.bias ? b : NULL, &p), SB_OK, &bad);
            sb_conv2d_f32__ref(mag, &out_map, xa, &in_map, wa, a.bias ? ba : NULL, &p);
            if (y != NULL) {
                if (plan.out_ndim != (unbatched ? 3 : 4))
                    bad++;
                const double d = max_scaled(y, ref, mag, numel(4, od));
                worst = d > worst ? d : worst;
            }
            cases++;
            free(x); free(wt); free(b); free(packed); free(y); free(xz); free(ref);
            free(mag); free(xa); free(wa); free(ba);
        }
        report_isa("conv2d operator vs ref", path, cases, worst, TOL_CONV, bad);
    }
}

/* The eval-mode BatchNorm folded into the packed weights: the reference
 * convolution, then x * scale + shift from sb_batch_norm_fold_f32. */
static void test_conv2d_fold(void)
{
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0, cases = 0;
        double worst = 0.0;
        use_isa(path, &bad);
        for (int t = 0; t < 20; t++) {
            const int64_t c = irand(1, 20), co = irand(1, 20), h = irand(3, 9), w = irand(3, 9);
            const int64_t xd[4] = {2, c, h, w}, wd[4] = {co, c, 3, 3};
            float *x = alloc_f(numel(4, xd)), *wt = alloc_f(numel(4, wd));
            float *stats = alloc_f(4 * co);
            fill_rand(x, numel(4, xd));
            fill_rand(wt, numel(4, wd));
            fill_rand(stats, 4 * co);
            for (int64_t i = 0; i < co; i++)
                stats[co + i] = 0.5f + fabsf(stats[co + i]); /* running_var > 0 */
            sb_tensor tx = tensor(x, 4, xd), tw = tensor(wt, 4, wd);
            sb_tensor tm = tensor(stats, 1, &co), tv = tensor(stats + co, 1, &co);
            sb_tensor tg = tensor(stats + 2 * co, 1, &co), tbeta = tensor(stats + 3 * co, 1, &co);
            sb_batch_norm_state bn = {&tg, &tbeta, &tm, &tv, 0, 0.1, 1e-5};
            sb_conv2d_pack_args pa = {&tw, NULL, 1, &bn};
            sb_conv2d_pack_plan pp;
            sb_error err;
            expect_status("fold pack plan", sb_op_conv2d_pack_plan(&pp, &pa, &err), SB_OK, &bad);
            float *packed = alloc_f(pp.packed_numel);
            void *pws = malloc(pp.workspace_bytes);
            expect_status("fold pack", sb_op_conv2d_pack_run(&pp, &pa, packed, pws), SB_OK, &bad);
            free(pws);
            sb_conv2d_args a;
            memset(&a, 0, sizeof a);
            a.input = &tx;
            a.weight = &tw;
            a.stride[0] = a.stride[1] = a.dilation[0] = a.dilation[1] = a.groups = 1;
            a.padding[0] = a.padding[1] = 1;
            a.packed = packed;
            a.packed_numel = pp.packed_numel;
            a.num_threads = 1;
            sb_conv2d_plan plan;
            float *y = run_conv(&a, &plan, &bad);
            const int64_t od[4] = {2, co, h, w};
            const sb_fmap in_map = fmap4(xd), out_map = fmap4(od);
            const sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
            float *ref = alloc_f(numel(4, od)), *scale = alloc_f(2 * co);
            sb_conv2d_f32__ref(ref, &out_map, x, &in_map, wt, NULL, &p);
            sb_batch_norm_fold_f32(scale, scale + co, stats, stats + co, stats + 2 * co,
                                   stats + 3 * co, 1e-5, co, 0);
            sb_batch_norm_apply_f32__ref(ref, &out_map, ref, &out_map, scale, scale + co, 0);
            if (y != NULL) {
                const double d = max_rel(y, ref, numel(4, od));
                worst = d > worst ? d : worst;
            }
            cases++;
            free(x); free(wt); free(stats); free(packed); free(y); free(ref); free(scale);
        }
        report_isa("conv2d with a folded BatchNorm vs ref then BatchNorm", path, cases, worst,
                   TOL_BLOCK, bad);
    }
}

/* ---- batch_norm ------------------------------------------------------------ */

static void test_batch_norm(void)
{
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0, cases = 0;
        use_isa(path, &bad);
        for (int t = 0; t < 60; t++) {
            use_threads(g_threads[t % N_THREADS], &bad);
            const int ndim = 2 + t % 3; /* (N, C), (N, C, L), (N, C, H, W) */
            /* N >= 2: one value per channel is an error in train mode */
            const int64_t d[4] = {irand(2, 3), irand(1, 9), irand(1, 7), irand(1, 7)};
            const int64_t count = numel(ndim, d), c = d[1];
            const int training = t % 2;
            float *x = alloc_f(count), *y = alloc_f(count), *ref = alloc_f(count);
            float *p = alloc_f(8 * c);
            fill_rand(x, count);
            fill_rand(p, 8 * c);
            for (int64_t i = 0; i < c; i++)
                p[c + i] = 0.5f + fabsf(p[c + i]);
            float *rm = p, *rv = p + c, *gamma = p + 2 * c, *beta = p + 3 * c;
            float *rm_ref = dup_f(rm, c), *rv_ref = dup_f(rv, c);
            sb_tensor tx = tensor(x, ndim, d), tm = tensor(rm, 1, &c), tv = tensor(rv, 1, &c);
            sb_tensor tg = tensor(gamma, 1, &c), tb = tensor(beta, 1, &c), ty = tensor(y, ndim, d);
            sb_batch_norm_args a;
            memset(&a, 0, sizeof a);
            a.input = &tx;
            a.bn = (sb_batch_norm_state){&tg, &tb, &tm, &tv, training, 0.1, 1e-5};
            a.relu = t % 4 < 2;
            sb_batch_norm_plan plan;
            sb_error err;
            expect_status("bn plan", sb_op_batch_norm_plan(&plan, &a, &err), SB_OK, &bad);
            void *ws = malloc(plan.workspace_bytes);
            expect_status("bn run", sb_op_batch_norm_run(&plan, &a, &ty, ws), SB_OK, &bad);
            free(ws);
            /* the reference kernels in torch's sequence, on the N x C x rest x 1 view */
            const int64_t per_image = count / d[0];
            sb_fmap m = {d[0], c, per_image / c, 1, per_image};
            if (ndim == 4) {
                m.h = d[2];
                m.w = d[3];
            }
            float *mean = alloc_f(c), *var_sum = alloc_f(c), *scale = alloc_f(2 * c);
            const int64_t n = count / c;
            if (training) {
                sb_batch_norm_stats_f32__ref(mean, var_sum, x, &m);
                sb_batch_norm_update_running_f32(rm_ref, rv_ref, mean, var_sum, n, 0.1, c);
                sb_batch_norm_fold_f32(scale, scale + c, mean, var_sum, gamma, beta, 1e-5, c, n);
            } else {
                sb_batch_norm_fold_f32(scale, scale + c, rm_ref, rv_ref, gamma, beta, 1e-5, c, 0);
            }
            sb_batch_norm_apply_f32__ref(ref, &m, x, &m, scale, scale + c, a.relu);
            /* the statistics kernel's lanes vs the reference's one double sum:
             * mean and var_sum agree to float rounding, so compare closely */
            const double d_out = max_rel(y, ref, count);
            const double d_stats = max_rel(rm, rm_ref, c) + max_rel(rv, rv_ref, c);
            if (d_out > 1e-5 || d_stats > 1e-6) {
                printf("  case %d (ndim %d, training %d): output %.3g, running stats %.3g\n", t,
                       ndim, training, d_out, d_stats);
                bad++;
            }
            cases++;
            free(x); free(y); free(ref); free(p); free(rm_ref); free(rv_ref); free(mean);
            free(var_sum); free(scale);
        }
        report_isa("batch_norm operator vs reference kernels in sequence", path, cases, 0.0,
                   0.0, bad);
    }
}

/* ---- pooling, element-wise, linear, SEAttention ------------------------------ */

static void test_small_ops(void)
{
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0, cases = 0;
        double worst_linear = 0.0, worst_se = 0.0;
        use_isa(path, &bad);
        for (int t = 0; t < 40; t++) {
            use_threads(g_threads[t % N_THREADS], &bad);
            const int64_t xd[4] = {irand(1, 3), irand(1, 20), irand(2, 9), irand(2, 9)};
            const int64_t count = numel(4, xd);
            /* room for the adaptive pool's 3x2 output of a 2x2 plane too */
            const int64_t room = count + 6 * xd[0] * xd[1];
            float *x = alloc_f(count), *y = alloc_f(room), *ref = alloc_f(room);
            fill_rand(x, count);
            sb_tensor tx = tensor(x, 4, xd);
            sb_error err;
            /* max pool 2x2 stride 2, padding 1 */
            sb_max_pool2d_args mp = {&tx, {2, 2}, {2, 2}, {1, 1}, {1, 1}, t % 2};
            sb_pool2d_plan pp;
            expect_status("max_pool plan", sb_op_max_pool2d_plan(&pp, &mp, &err), SB_OK, &bad);
            sb_tensor to = tensor(y, pp.out_ndim, pp.out_dims);
            expect_status("max_pool run", sb_op_max_pool2d_run(&pp, &mp, &to, NULL), SB_OK, &bad);
            sb_max_pool2d_f32__ref(ref, &pp.out_map, x, &pp.in_map, &pp.params);
            bad += count_not_same(y, ref, numel(4, pp.out_dims));
            /* adaptive average pool to 3x2 */
            sb_adaptive_avg_pool2d_args ap = {&tx, {3, 2}};
            expect_status("adaptive plan", sb_op_adaptive_avg_pool2d_plan(&pp, &ap, &err), SB_OK,
                          &bad);
            to = tensor(y, pp.out_ndim, pp.out_dims);
            expect_status("adaptive run", sb_op_adaptive_avg_pool2d_run(&pp, &ap, &to, NULL),
                          SB_OK, &bad);
            sb_adaptive_avg_pool2d_f32__ref(ref, &pp.out_map, x, &pp.in_map);
            bad += count_not_same(y, ref, numel(4, pp.out_dims));
            /* relu in place, then add_relu, then the channel scale */
            float *xr = dup_f(x, count);
            sb_tensor txr = tensor(xr, 4, xd);
            sb_unary_args ua = {&txr, SB_UNARY_RELU};
            sb_elementwise_plan ep;
            expect_status("relu plan", sb_op_unary_plan(&ep, &ua, &err), SB_OK, &bad);
            expect_status("relu run", sb_op_unary_run(&ep, &ua, &txr, NULL), SB_OK, &bad);
            sb_relu_f32__ref(ref, x, count);
            bad += count_not_same(xr, ref, count);
            sb_add_relu_args ar = {&tx, &txr};
            expect_status("add_relu plan", sb_op_add_relu_plan(&ep, &ar, &err), SB_OK, &bad);
            to = tensor(y, 4, xd);
            expect_status("add_relu run", sb_op_add_relu_run(&ep, &ar, &to, NULL), SB_OK, &bad);
            sb_add_relu_f32__ref(ref, x, xr, count);
            bad += count_not_same(y, ref, count);
            const int64_t nc = xd[0] * xd[1];
            float *gate = alloc_f(nc);
            fill_rand(gate, nc);
            sb_tensor tgate = tensor(gate, 1, &nc);
            sb_channel_scale_args cs = {&tx, &tgate};
            expect_status("scale plan", sb_op_channel_scale_plan(&ep, &cs, &err), SB_OK, &bad);
            expect_status("scale run", sb_op_channel_scale_run(&ep, &cs, &to, NULL), SB_OK, &bad);
            const sb_fmap m = fmap4(xd);
            sb_channel_scale_f32__ref(ref, &m, x, &m, gate);
            bad += count_not_same(y, ref, count);
            /* linear on packed weights: rows = N*C*H, in = W */
            const int64_t of = irand(1, 40), wd[2] = {of, xd[3]};
            float *wt = alloc_f(of * xd[3]), *bias = alloc_f(of);
            fill_rand(wt, of * xd[3]);
            fill_rand(bias, of);
            sb_tensor tw = tensor(wt, 2, wd), tb = tensor(bias, 1, &of);
            sb_linear_pack_args lpa = {&tw, &tb};
            sb_linear_pack_plan lpp;
            expect_status("linear pack plan", sb_op_linear_pack_plan(&lpp, &lpa, &err), SB_OK,
                          &bad);
            float *packed = alloc_f(lpp.packed_numel);
            sb_op_linear_pack_run(&lpp, &lpa, packed, NULL);
            sb_linear_args la = {&tx, &tw, &tb, packed, lpp.packed_numel, 0,
                                 g_threads[t % N_THREADS]};
            sb_linear_plan lp;
            expect_status("linear plan", sb_op_linear_plan(&lp, &la, &err), SB_OK, &bad);
            const int64_t rows = lp.rows;
            float *ly = alloc_f(rows * of), *lref = alloc_f(rows * of);
            sb_tensor tly = tensor(ly, lp.out_ndim, lp.out_dims);
            void *lws = malloc(lp.workspace_bytes > 0 ? lp.workspace_bytes : 1);
            expect_status("linear run", sb_op_linear_run(&lp, &la, &tly, lws), SB_OK, &bad);
            free(lws);
            sb_linear_f32__ref(lref, x, wt, bias, rows, xd[3], of);
            double d = max_rel(ly, lref, rows * of);
            worst_linear = d > worst_linear ? d : worst_linear;
            /* SEAttention with hidden = C / 2 (at least 1) */
            const int64_t c = xd[1], hidden = c / 2 > 0 ? c / 2 : 1;
            const int64_t w1d[2] = {hidden, c}, w2d[2] = {c, hidden};
            float *w1 = alloc_f(hidden * c), *w2 = alloc_f(c * hidden);
            fill_rand(w1, hidden * c);
            fill_rand(w2, c * hidden);
            sb_tensor tw1 = tensor(w1, 2, w1d), tw2 = tensor(w2, 2, w2d);
            sb_linear_pack_args p1 = {&tw1, NULL}, p2 = {&tw2, NULL};
            sb_linear_pack_plan pp1, pp2;
            sb_op_linear_pack_plan(&pp1, &p1, &err);
            sb_op_linear_pack_plan(&pp2, &p2, &err);
            float *k1 = alloc_f(pp1.packed_numel), *k2 = alloc_f(pp2.packed_numel);
            sb_op_linear_pack_run(&pp1, &p1, k1, NULL);
            sb_op_linear_pack_run(&pp2, &p2, k2, NULL);
            sb_se_attention_args sa = {&tx, k1, k2, pp1.packed_numel, pp2.packed_numel, hidden,
                                       g_threads[t % N_THREADS]};
            sb_se_attention_plan sp;
            expect_status("se plan", sb_op_se_attention_plan(&sp, &sa, &err), SB_OK, &bad);
            void *sws = malloc(sp.workspace_bytes);
            expect_status("se run", sb_op_se_attention_run(&sp, &sa, &to, sws), SB_OK, &bad);
            free(sws);
            float *sref_ws = alloc_f(2 * nc + xd[0] * hidden);
            expect_status("se ref", sb_se_attention_f32__ref(ref, &m, x, &m, w1, w2, hidden,
                                                             sref_ws), SB_OK, &bad);
            d = max_rel(y, ref, count);
            worst_se = d > worst_se ? d : worst_se;
            cases++;
            free(x); free(y); free(ref); free(xr); free(gate); free(wt); free(bias);
            free(packed); free(ly); free(lref); free(w1); free(w2); free(k1); free(k2);
            free(sref_ws);
        }
        report_isa("pooling and element-wise operators vs refs (exact)", path, cases, 0.0, 0.0,
                   bad);
        report_isa("linear operator vs ref", path, cases, worst_linear, TOL_LINEAR, 0);
        report_isa("se_attention operator vs ref", path, cases, worst_se, TOL_LINEAR, 0);
    }
}

/* ---- the fused blocks vs their operators one by one ------------------------- */

typedef struct {
    float *w, *b, *rm, *rv; /* C each */
    sb_tensor tw, tb, tm, tv;
} bn_params;

static void bn_init(bn_params *p, int64_t c)
{
    p->w = alloc_f(c); p->b = alloc_f(c); p->rm = alloc_f(c); p->rv = alloc_f(c);
    fill_rand(p->w, c); fill_rand(p->b, c); fill_rand(p->rm, c); fill_rand(p->rv, c);
    for (int64_t i = 0; i < c; i++)
        p->rv[i] = 0.5f + fabsf(p->rv[i]);
    p->tw = tensor(p->w, 1, &c); p->tb = tensor(p->b, 1, &c);
    p->tm = tensor(p->rm, 1, &c); p->tv = tensor(p->rv, 1, &c);
}

static bn_params bn_copy(const bn_params *p, int64_t c)
{
    bn_params q = *p;
    q.w = dup_f(p->w, c); q.b = dup_f(p->b, c); q.rm = dup_f(p->rm, c); q.rv = dup_f(p->rv, c);
    q.tw.data = q.w; q.tb.data = q.b; q.tm.data = q.rm; q.tv.data = q.rv;
    return q;
}

static void bn_free(bn_params *p)
{
    free(p->w); free(p->b); free(p->rm); free(p->rv);
}

static sb_batch_norm_state bn_state(bn_params *p, int batch_stats, double momentum)
{
    sb_batch_norm_state s = {&p->tw, &p->tb, &p->tm, &p->tv, batch_stats, momentum, 1e-5};
    return s;
}

/* y = bn(x) (+ relu), in a new buffer, by the batch_norm operator. */
static float *bn_op(const sb_tensor *x, sb_batch_norm_state s, int relu, int64_t *bad)
{
    sb_batch_norm_args a;
    memset(&a, 0, sizeof a);
    a.input = x;
    a.bn = s;
    a.relu = relu;
    sb_batch_norm_plan plan;
    sb_error err;
    expect_status("bn plan", sb_op_batch_norm_plan(&plan, &a, &err), SB_OK, bad);
    const int64_t count = numel(x->ndim, x->dims);
    float *y = alloc_f(count);
    sb_tensor ty = tensor(y, x->ndim, x->dims);
    void *ws = malloc(plan.workspace_bytes > 0 ? plan.workspace_bytes : 1);
    expect_status("bn run", sb_op_batch_norm_run(&plan, &a, &ty, ws), SB_OK, bad);
    free(ws);
    return y;
}

static sb_conv2d_args conv_args(const sb_tensor *x, const sb_tensor *w, int64_t stride,
                                int64_t pad)
{
    sb_conv2d_args a;
    memset(&a, 0, sizeof a);
    a.input = x;
    a.weight = w;
    a.stride[0] = a.stride[1] = stride;
    a.padding[0] = a.padding[1] = pad;
    a.dilation[0] = a.dilation[1] = a.groups = 1;
    a.num_threads = 1;
    return a;
}

static void test_dense_layer(void)
{
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0, cases = 0;
        double worst = 0.0;
        use_isa(path, &bad);
        for (int t = 0; t < 16; t++) {
            use_threads(g_threads[t % N_THREADS], &bad);
            const int training = t % 2;
            const int64_t c = irand(1, 12), mid = irand(1, 16), g = irand(1, 8);
            const int64_t xd[4] = {irand(1, 2), c, irand(3, 9), irand(3, 9)};
            const int64_t w1d[4] = {mid, c, 1, 1}, w2d[4] = {g, mid, 3, 3};
            float *x = alloc_f(numel(4, xd)), *w1 = alloc_f(numel(4, w1d));
            float *w2 = alloc_f(numel(4, w2d));
            fill_rand(x, numel(4, xd)); fill_rand(w1, numel(4, w1d)); fill_rand(w2, numel(4, w2d));
            bn_params b1, b2;
            bn_init(&b1, c);
            bn_init(&b2, mid);
            bn_params r1 = bn_copy(&b1, c), r2 = bn_copy(&b2, mid);
            sb_tensor tx = tensor(x, 4, xd), tw1 = tensor(w1, 4, w1d), tw2 = tensor(w2, 4, w2d);
            sb_dense_layer_args a;
            memset(&a, 0, sizeof a);
            a.input = &tx;
            a.bn1 = bn_state(&b1, training, 0.1);
            a.bn2 = bn_state(&b2, training, 0.1);
            a.conv1 = (sb_block_conv){&tw1, NULL, 0, {1, 1}, {0, 0}, {1, 1}, 1};
            a.conv2 = (sb_block_conv){&tw2, NULL, 0, {1, 1}, {1, 1}, {1, 1}, 1};
            a.num_threads = g_threads[t % N_THREADS];
            sb_dense_layer_plan plan;
            sb_error err;
            expect_status("dense plan", sb_op_dense_layer_plan(&plan, &a, &err), SB_OK, &bad);
            const int64_t count = numel(4, plan.out_dims);
            float *y = alloc_f(count);
            sb_tensor ty = tensor(y, 4, plan.out_dims);
            void *ws = malloc(plan.workspace_bytes);
            expect_status("dense run", sb_op_dense_layer_run(&plan, &a, &ty, ws), SB_OK, &bad);
            free(ws);
            /* one by one */
            float *h1 = bn_op(&tx, bn_state(&r1, training, 0.1), 1, &bad);
            sb_tensor th1 = tensor(h1, 4, xd);
            sb_conv2d_args ca = conv_args(&th1, &tw1, 1, 0);
            sb_conv2d_plan cp;
            float *o1 = run_conv(&ca, &cp, &bad);
            sb_tensor to1 = tensor(o1, 4, cp.out_dims);
            float *h2 = bn_op(&to1, bn_state(&r2, training, 0.1), 1, &bad);
            sb_tensor th2 = tensor(h2, 4, cp.out_dims);
            ca = conv_args(&th2, &tw2, 1, 1);
            float *ref = run_conv(&ca, &cp, &bad);
            const double d = max_rel(y, ref, count);
            worst = d > worst ? d : worst;
            bad += count_not_same(b1.rm, r1.rm, c) + count_not_same(b1.rv, r1.rv, c) +
                   count_not_same(b2.rm, r2.rm, mid) + count_not_same(b2.rv, r2.rv, mid);
            /* a plan that fails (conv2's input channels) touches nothing */
            const int64_t wbad[4] = {g, mid + 1, 3, 3};
            sb_tensor twbad = tensor(w2, 4, wbad);
            a.conv2.weight = &twbad;
            float *before = dup_f(b1.rm, c);
            if (sb_op_dense_layer_plan(&plan, &a, &err) != SB_ERR_SHAPE ||
                err.code != SB_E_CONV_CHANNELS || count_not_same(before, b1.rm, c) != 0)
                bad++;
            cases++;
            free(before); free(x); free(w1); free(w2); free(y); free(h1); free(o1); free(h2);
            free(ref);
            bn_free(&b1); bn_free(&b2); bn_free(&r1); bn_free(&r2);
        }
        report_isa("dense_layer operator vs its operators one by one", path, cases, worst,
                   TOL_BLOCK, bad);
    }
}

static void test_residual_block(void)
{
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0, cases = 0;
        double worst = 0.0;
        use_isa(path, &bad);
        for (int t = 0; t < 16; t++) {
            use_threads(g_threads[t % N_THREADS], &bad);
            const int folded = t % 2;
            const int64_t c = irand(1, 10), stride = irand(1, 2);
            const int64_t xd[4] = {irand(1, 2), c, irand(4, 9), irand(4, 9)};
            const int64_t wd[4] = {c, c, 3, 3};
            float *x = alloc_f(numel(4, xd)), *w1 = alloc_f(numel(4, wd));
            float *w2 = alloc_f(numel(4, wd));
            fill_rand(x, numel(4, xd)); fill_rand(w1, numel(4, wd)); fill_rand(w2, numel(4, wd));
            bn_params b, r;
            bn_init(&b, c);
            r = bn_copy(&b, c);
            sb_tensor tx = tensor(x, 4, xd), tw1 = tensor(w1, 4, wd), tw2 = tensor(w2, 4, wd);
            /* packed weights: with bn folded in for the folded (eval) mode */
            float *k[2];
            int64_t kn = 0;
            sb_batch_norm_state eval_bn = bn_state(&b, 0, 0.1);
            const sb_tensor *ws_[2] = {&tw1, &tw2};
            for (int i = 0; i < 2; i++) {
                sb_conv2d_pack_args pa = {ws_[i], NULL, 1, folded ? &eval_bn : NULL};
                sb_conv2d_pack_plan pp;
                sb_error err;
                sb_op_conv2d_pack_plan(&pp, &pa, &err);
                k[i] = alloc_f(pp.packed_numel);
                void *pws = malloc(pp.workspace_bytes > 0 ? pp.workspace_bytes : 1);
                expect_status("pack", sb_op_conv2d_pack_run(&pp, &pa, k[i], pws), SB_OK, &bad);
                free(pws);
                kn = pp.packed_numel;
            }
            const int64_t oh = sb_conv2d_out_size(xd[2], 3, stride, 1, 1);
            const int64_t ow = sb_conv2d_out_size(xd[3], 3, stride, 1, 1);
            const int64_t od[4] = {xd[0], c, oh, ow};
            float *res = alloc_f(numel(4, od));
            fill_rand(res, numel(4, od));
            sb_tensor tres = tensor(res, 4, od);
            sb_residual_block_args a;
            memset(&a, 0, sizeof a);
            a.input = &tx;
            a.residual = &tres;
            a.bn = bn_state(&b, !folded, 0.1);
            a.momentum2 = 0.25;
            a.folded = folded;
            a.conv1 = (sb_block_conv){&tw1, k[0], kn, {stride, stride}, {1, 1}, {1, 1}, 1};
            a.conv2 = (sb_block_conv){&tw2, k[1], kn, {1, 1}, {1, 1}, {1, 1}, 1};
            a.num_threads = g_threads[t % N_THREADS];
            sb_residual_block_plan plan;
            sb_error err;
            expect_status("residual plan", sb_op_residual_block_plan(&plan, &a, &err), SB_OK,
                          &bad);
            const int64_t count = numel(4, od);
            float *y = alloc_f(count);
            sb_tensor ty = tensor(y, 4, od);
            void *ws = malloc(plan.workspace_bytes);
            expect_status("residual run", sb_op_residual_block_run(&plan, &a, &ty, ws), SB_OK,
                          &bad);
            free(ws);
            /* one by one: relu(bn(conv2(relu(bn(conv1(x))))) + residual) */
            sb_conv2d_args ca = conv_args(&tx, &tw1, stride, 1);
            sb_conv2d_plan cp;
            float *o1 = run_conv(&ca, &cp, &bad);
            sb_tensor to1 = tensor(o1, 4, od);
            float *h1 = bn_op(&to1, bn_state(&r, !folded, 0.1), 1, &bad);
            sb_tensor th1 = tensor(h1, 4, od);
            ca = conv_args(&th1, &tw2, 1, 1);
            float *o2 = run_conv(&ca, &cp, &bad);
            sb_tensor to2 = tensor(o2, 4, od);
            float *h2 = bn_op(&to2, bn_state(&r, !folded, 0.25), 0, &bad);
            sb_tensor th2 = tensor(h2, 4, od);
            sb_add_relu_args ar = {&th2, &tres};
            sb_elementwise_plan ep;
            sb_op_add_relu_plan(&ep, &ar, &err);
            float *ref = alloc_f(count);
            sb_tensor tref = tensor(ref, 4, od);
            sb_op_add_relu_run(&ep, &ar, &tref, NULL);
            const double d = max_rel(y, ref, count);
            worst = d > worst ? d : worst;
            if (!folded)
                bad += count_not_same(b.rm, r.rm, c) + count_not_same(b.rv, r.rv, c);
            cases++;
            free(x); free(w1); free(w2); free(k[0]); free(k[1]); free(res); free(y); free(o1);
            free(h1); free(o2); free(h2); free(ref);
            bn_free(&b); bn_free(&r);
        }
        report_isa("residual_block operator vs its operators one by one", path, cases, worst,
                   TOL_BLOCK, bad);
    }
}

/* ---- validation: each bad argument, its code --------------------------------- */

static void expect_code(const char *what, sb_status got, const sb_error *err,
                        sb_error_code want, int64_t *bad)
{
    if (got == SB_OK || err->code != want) {
        printf("  %s: status %d, code %d (want code %d)\n", what, (int)got, (int)err->code,
               (int)want);
        (*bad)++;
    }
}

static void test_validation(void)
{
    int64_t bad = 0, cases = 0;
    float x[2 * 2 * 5 * 5], w[3 * 2 * 3 * 3], b[4], v[8];
    fill_val(x, 100, 1.0f);
    fill_val(w, 54, 1.0f);
    fill_val(b, 4, 0.0f);
    fill_val(v, 8, 1.0f);
    const int64_t xd[4] = {2, 2, 5, 5}, wd[4] = {3, 2, 3, 3}, bd4 = 4, c2 = 2, c3 = 3;
    sb_tensor tx = tensor(x, 4, xd), tw = tensor(w, 4, wd), tb = tensor(b, 1, &bd4);
    sb_error err;
    sb_conv2d_plan plan;
    struct {
        const char *what;
        int64_t stride, pad, dil, groups;
        const sb_tensor *bias;
        sb_error_code want;
    } conv_cases[] = {
        {"stride 0", 0, 0, 1, 1, NULL, SB_E_CONV_STRIDE},
        {"padding -1", 1, -1, 1, 1, NULL, SB_E_CONV_PADDING},
        {"dilation 0", 1, 0, 0, 1, NULL, SB_E_CONV_DILATION_ZERO},
        {"dilation -1", 1, 0, -1, 1, NULL, SB_E_CONV_DILATION},
        {"groups 0", 1, 0, 1, 0, NULL, SB_E_CONV_GROUPS},
        {"groups 2 with 3 out channels", 1, 0, 1, 2, NULL, SB_E_CONV_GROUPS_DIVIDE},
        {"bias of 4", 1, 0, 1, 1, &tb, SB_E_CONV_BIAS},
        {"dilated kernel larger than the input", 1, 0, 3, 1, NULL, SB_E_CONV_TOO_SMALL},
    };
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        sb_conv2d_args a = conv_args(&tx, &tw, conv_cases[i].stride, conv_cases[i].pad);
        a.dilation[0] = a.dilation[1] = conv_cases[i].dil;
        a.groups = conv_cases[i].groups;
        a.bias = conv_cases[i].bias;
        expect_code(conv_cases[i].what, sb_op_conv2d_plan(&plan, &a, &err), &err,
                    conv_cases[i].want, &bad);
        cases++;
    }
    const int64_t wd_bad[4] = {3, 3, 3, 3};
    sb_tensor tw_bad = tensor(w, 4, wd_bad);
    sb_conv2d_args a = conv_args(&tx, &tw_bad, 1, 0);
    expect_code("channel mismatch", sb_op_conv2d_plan(&plan, &a, &err), &err,
                SB_E_CONV_CHANNELS, &bad);
    a = conv_args(&tx, &tw, 1, 0);
    a.reference = 1;
    a.out_relu = 1;
    expect_code("reference with fusion", sb_op_conv2d_plan(&plan, &a, &err), &err,
                SB_E_CONV_REFERENCE_FUSED, &bad);
    cases += 2;

    sb_tensor tm = tensor(v, 1, &c2), tv = tensor(v + 2, 1, &c2), t3 = tensor(v + 4, 1, &c3);
    const int64_t one[4] = {1, 2, 1, 1};
    sb_tensor t_one = tensor(x, 4, one);
    struct {
        const char *what;
        const sb_tensor *input, *mean, *var;
        int training;
        double eps;
        sb_error_code want;
    } bn_cases[] = {
        {"eps 0 in training", &tx, &tm, &tv, 1, 0.0, SB_E_BN_EPS_TRAIN},
        {"eps < 0 in eval", &tx, &tm, &tv, 0, -1.0, SB_E_BN_EPS},
        {"eval without running_mean", &tx, NULL, &tv, 0, 1e-5, SB_E_BN_EVAL_NO_MEAN},
        {"eval without running_var", &tx, &tm, NULL, 0, 1e-5, SB_E_BN_EVAL_NO_VAR},
        {"training with one running stat", &tx, &tm, NULL, 1, 1e-5, SB_E_BN_RUNNING_PAIR},
        {"running_mean of 3", &tx, &t3, &tv, 0, 1e-5, SB_E_NUMEL},
        {"one value per channel", &t_one, &tm, &tv, 1, 1e-5, SB_E_BN_ONE_VALUE},
    };
    for (size_t i = 0; i < sizeof bn_cases / sizeof bn_cases[0]; i++) {
        sb_batch_norm_args ba;
        memset(&ba, 0, sizeof ba);
        ba.input = bn_cases[i].input;
        ba.bn = (sb_batch_norm_state){NULL, NULL, bn_cases[i].mean, bn_cases[i].var,
                                      bn_cases[i].training, 0.1, bn_cases[i].eps};
        sb_batch_norm_plan bp;
        expect_code(bn_cases[i].what, sb_op_batch_norm_plan(&bp, &ba, &err), &err,
                    bn_cases[i].want, &bad);
        cases++;
    }
    sb_pool2d_plan pp;
    sb_max_pool2d_args mp = {&tx, {2, 2}, {0, 2}, {0, 0}, {1, 1}, 0};
    expect_code("pool stride 0", sb_op_max_pool2d_plan(&pp, &mp, &err), &err,
                SB_E_POOL_STRIDE_ZERO, &bad);
    sb_max_pool2d_args mp2 = {&tx, {2, 2}, {2, 2}, {2, 2}, {1, 1}, 0};
    expect_code("pool pad over half the kernel", sb_op_max_pool2d_plan(&pp, &mp2, &err), &err,
                SB_E_POOL_PAD_EFFECTIVE, &bad);
    const int64_t lw[2] = {3, 4};
    sb_tensor tlw = tensor(w, 2, lw);
    sb_linear_args la = {&tx, &tlw, NULL, NULL, 0, 0, 1};
    sb_linear_plan lp;
    expect_code("linear shapes", sb_op_linear_plan(&lp, &la, &err), &err, SB_E_LINEAR_SHAPES,
                &bad);
    cases += 3;
    report("operator validation: torch's first failing check", cases, 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("operators");
    test_conv2d();
    test_conv2d_fold();
    test_batch_norm();
    test_small_ops();
    test_dense_layer();
    test_residual_block();
    test_validation();
    return test_end();
}

/*
 * test_operators.c -- the operator tier (csrc/ops/, sb_ops.h) on every
 * kernel path and on 1, 2 and 3 threads, in float32 and in float64: every
 * check below is written once over the element type (buffers as void *,
 * the kernels' references called through SB_DT_CALL) and runs for
 * SB_DTYPE_F32, then for SB_DTYPE_F64 (each report names its dtype):
 *
 *   - conv2d: plan + run against sb_conv2d_<dt>__ref on random geometries,
 *     batched and unbatched (3-D) input, with the weights packed for the
 *     call or by sb_op_conv2d_pack, with padding_extra (torch's 'same' of an
 *     even kernel) against the reference on the zero-extended input, and
 *     with an eval-mode BatchNorm folded into the packed weights against
 *     the reference followed by the BatchNorm;
 *   - batch_norm: train mode (output and running statistics) and eval mode
 *     against the reference kernels run in torch's sequence; non-4-D input;
 *   - pooling, element-wise ops and linear against their references;
 *   - SEAttention against sb_se_attention_<dt>__ref;
 *   - DenseLayer and ResidualBlock (both modes) against the operators run
 *     one by one (BatchNorm, ReLU, conv2d, add_relu), running statistics
 *     included;
 *   - validation: each bad argument gives its sb_error_code (torch's first
 *     failing check), and a fused block whose plan fails leaves its
 *     running statistics untouched;
 *   - dtypes: every mix of float32 and float64 arguments gives the code of
 *     torch's message for it, in both directions (input float32 with a
 *     float64 argument, and the opposite), where torch checks it (conv2d's
 *     bias first, its weight after the shapes and not for an empty input;
 *     batch_norm's mixed-dtype rule; linear's addmm and matmul paths), and
 *     linear adds a bias of the other dtype where torch does.
 *
 * Tolerances, in one place (float32 / float64):
 *   conv    conv2d vs the direct loop, |d| / (1 + |conv of |x| and |w||):
 *           sums in another order (2e-6 / 1e-14);
 *   block   a fused block vs its operators one by one, relative: the
 *           BatchNorm + ReLU applied while staging (one rounding less) and
 *           the folded BatchNorm change the last bits (1e-4 / 1e-12);
 *   linear  linear and SEAttention vs their references, relative
 *           (1e-5 / 1e-13);
 *   bn      the BatchNorm operator vs its reference kernels in sequence:
 *           output (1e-5 / 1e-13) and running statistics (1e-6 / 1e-14),
 *           relative (the statistics kernel sums in lanes, the reference in
 *           element order);
 *   exact   max pool, relu, add_relu, channel scale; running statistics of
 *           a fused block vs one by one (the same statistics kernels on the
 *           same values); statuses and codes.
 */
#include "sb_ops.h"
#include "test_harness.h"

typedef struct {
    const char *name;
    double conv, block, linear, bn_out, bn_stats;
} dtype_case;

static const dtype_case g_dtypes[2] = {
    {"float32", 2e-6, 1e-4, 1e-5, 1e-5, 1e-6},
    {"float64", 1e-14, 1e-12, 1e-13, 1e-13, 1e-14},
};

static const dtype_case *tol_of(sb_dtype dt)
{
    return &g_dtypes[dt == SB_DTYPE_F64];
}

/* ---- buffers of either dtype (the harness's are float) -------------------- */

static size_t esize(sb_dtype dt)
{
    return dt == SB_DTYPE_F64 ? sizeof(double) : sizeof(float);
}

/* count elements, at exactly that size (NULL for count <= 0). */
static void *alloc_t(sb_dtype dt, int64_t count)
{
    if (dt == SB_DTYPE_F32)
        return alloc_f(count);
    if (count <= 0)
        return NULL;
    void *p = malloc((size_t)count * sizeof(double));
    if (p == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

static double get_t(const void *p, sb_dtype dt, int64_t i)
{
    return dt == SB_DTYPE_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

static void set_t(void *p, sb_dtype dt, int64_t i, double v)
{
    if (dt == SB_DTYPE_F64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

static void *at_t(void *p, sb_dtype dt, int64_t i)
{
    return (char *)p + i * (int64_t)esize(dt);
}

/* Uniform in [-1, 1): float32 draws the harness's frand() values; float64
 * adds 24 more random mantissa bits, so products round in double too. */
static void fill_rand_t(void *p, sb_dtype dt, int64_t count)
{
    if (dt == SB_DTYPE_F32) {
        fill_rand(p, count);
        return;
    }
    for (int64_t i = 0; i < count; i++) {
        const double hi = frand(), lo = frand();
        set_t(p, dt, i, hi + lo * (1.0 / 16777216.0));
    }
}

static void fill_val_t(void *p, sb_dtype dt, int64_t count, double v)
{
    for (int64_t i = 0; i < count; i++)
        set_t(p, dt, i, v);
}

static void *dup_t(const void *src, sb_dtype dt, int64_t count)
{
    void *p = alloc_t(dt, count);
    if (count > 0)
        memcpy(p, src, (size_t)count * esize(dt));
    return p;
}

static void *abs_dup_t(const void *src, sb_dtype dt, int64_t count)
{
    void *p = alloc_t(dt, count);
    for (int64_t i = 0; i < count; i++)
        set_t(p, dt, i, fabs(get_t(src, dt, i)));
    return p;
}

/* The harness's comparisons (count_not_same, max_rel, max_scaled) for
 * either dtype: bitwise but any two NaNs equal; |fast - ref| / (1 + |ref|)
 * or / (1 + |mag|), NaN or infinity on one side only being inf. */
static int64_t not_same_t(const void *a, const void *b, sb_dtype dt, int64_t count)
{
    if (dt == SB_DTYPE_F32)
        return count_not_same(a, b, count);
    int64_t n = 0;
    for (int64_t i = 0; i < count; i++) {
        const double x = ((const double *)a)[i], y = ((const double *)b)[i];
        if (x != x || y != y)
            n += !(x != x && y != y);
        else
            n += memcmp(&x, &y, sizeof x) != 0;
    }
    return n;
}

static double diff_t(double fast, double ref, double mag)
{
    if (fast != fast || ref != ref)
        return (fast != fast && ref != ref) ? 0.0 : INFINITY;
    if (isinf(fast) || isinf(ref))
        return fast == ref ? 0.0 : INFINITY;
    return fabs(fast - ref) / (1.0 + fabs(mag));
}

static double max_scaled_t(const void *fast, const void *ref, const void *mag, sb_dtype dt,
                           int64_t count)
{
    if (dt == SB_DTYPE_F32)
        return max_scaled(fast, ref, mag, count);
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        const double d = diff_t(get_t(fast, dt, i), get_t(ref, dt, i), get_t(mag, dt, i));
        if (!(d <= m))
            m = d;
    }
    return m;
}

static double max_rel_t(const void *fast, const void *ref, sb_dtype dt, int64_t count)
{
    return dt == SB_DTYPE_F32 ? max_rel(fast, ref, count)
                              : max_scaled_t(fast, ref, ref, dt, count);
}

static void report_dt(const char *what, sb_dtype dt, int path, int64_t cases, double worst,
                      double tol, int64_t bad)
{
    char name[128];
    snprintf(name, sizeof name, "%s, %s", what, tol_of(dt)->name);
    if (path < 0)
        report(name, cases, worst, tol, bad);
    else
        report_isa(name, path, cases, worst, tol, bad);
}

static sb_tensor tensor(void *data, sb_dtype dt, int ndim, const int64_t *dims)
{
    sb_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dt;
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

/* Runs a conv2d plan + run into a new buffer of the input's dtype (NULL on
 * a plan failure). */
static void *run_conv(const sb_conv2d_args *a, sb_conv2d_plan *plan, int64_t *bad)
{
    sb_error err;
    if (sb_op_conv2d_plan(plan, a, &err) != SB_OK) {
        (*bad)++;
        printf("  conv plan failed: code %d\n", (int)err.code);
        return NULL;
    }
    const sb_dtype dt = a->input->dtype;
    const int64_t count = numel(plan->out_ndim, plan->out_dims);
    void *y = alloc_t(dt, count > 0 ? count : 1);
    fill_val_t(y, dt, count, NAN);
    void *ws = malloc(plan->workspace_bytes > 0 ? plan->workspace_bytes : 1);
    sb_tensor out = tensor(y, dt, plan->out_ndim, plan->out_dims);
    expect_status("conv run", sb_op_conv2d_run(plan, a, &out, ws), SB_OK, bad);
    free(ws);
    return y;
}

/* Packed weights of w (and bias, and a folded BatchNorm) by the pack
 * operator, in a new buffer; *numel set. */
static void *pack_conv(const sb_conv2d_pack_args *pa, int64_t *packed_numel, int64_t *bad)
{
    sb_conv2d_pack_plan pp;
    sb_error err;
    expect_status("pack plan", sb_op_conv2d_pack_plan(&pp, pa, &err), SB_OK, bad);
    void *packed = alloc_t(pa->weight->dtype, pp.packed_numel);
    void *pws = malloc(pp.workspace_bytes > 0 ? pp.workspace_bytes : 1);
    expect_status("pack run", sb_op_conv2d_pack_run(&pp, pa, packed, pws), SB_OK, bad);
    free(pws);
    *packed_numel = pp.packed_numel;
    return packed;
}

/* ---- conv2d ---------------------------------------------------------------- */

static void test_conv2d(sb_dtype dt)
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
            void *x = alloc_t(dt, numel(4, xd4)), *wt = alloc_t(dt, numel(4, wdims));
            void *b = alloc_t(dt, groups * cog);
            fill_rand_t(x, dt, numel(4, xd4));
            fill_rand_t(wt, dt, numel(4, wdims));
            fill_rand_t(b, dt, groups * cog);
            sb_tensor tx = unbatched ? tensor(x, dt, 3, xd4 + 1) : tensor(x, dt, 4, xd4);
            sb_tensor tw = tensor(wt, dt, 4, wdims), tb = tensor(b, dt, 1, wdims);
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
            void *packed = NULL;
            if (t % 4 >= 2) {
                sb_conv2d_pack_args pa = {&tw, a.bias, groups, NULL};
                packed = pack_conv(&pa, &a.packed_numel, &bad);
                a.packed = packed;
                a.packed_dtype = dt;
            }
            sb_conv2d_plan plan;
            void *y = run_conv(&a, &plan, &bad);
            /* the reference on the input extended with padding_extra zeros */
            const int64_t xe[4] = {xd4[0], xd4[1], h + eh, w + ew};
            void *xz = alloc_t(dt, numel(4, xe));
            fill_val_t(xz, dt, numel(4, xe), 0.0);
            for (int64_t i = 0; i < xd4[0] * xd4[1]; i++)
                for (int64_t r = 0; r < h; r++)
                    memcpy(at_t(xz, dt, (i * xe[2] + r) * xe[3]), at_t(x, dt, (i * h + r) * w),
                           (size_t)w * esize(dt));
            const sb_fmap in_map = fmap4(xe);
            const int64_t od[4] = {xd4[0], groups * cog,
                                   sb_conv2d_out_size(h + eh, kh, sh, ph, dh),
                                   sb_conv2d_out_size(w + ew, kw, sw, pw, dw)};
            const sb_fmap out_map = fmap4(od);
            const sb_conv2d_params p = {kh, kw, sh, sw, ph, pw, dh, dw, groups};
            void *ref = alloc_t(dt, numel(4, od)), *mag = alloc_t(dt, numel(4, od));
            void *xa = abs_dup_t(xz, dt, numel(4, xe)), *wa = abs_dup_t(wt, dt, numel(4, wdims));
            void *ba = abs_dup_t(b, dt, groups * cog);
            expect_status("conv ref",
                          SB_DT_CALL(dt, sb_conv2d, __ref, ref, &out_map, xz, &in_map, wt,
                                     a.bias ? b : NULL, &p),
                          SB_OK, &bad);
            SB_DT_CALL(dt, sb_conv2d, __ref, mag, &out_map, xa, &in_map, wa, a.bias ? ba : NULL,
                       &p);
            if (y != NULL) {
                if (plan.out_ndim != (unbatched ? 3 : 4))
                    bad++;
                const double d = max_scaled_t(y, ref, mag, dt, numel(4, od));
                worst = d > worst ? d : worst;
            }
            cases++;
            free(x); free(wt); free(b); free(packed); free(y); free(xz); free(ref);
            free(mag); free(xa); free(wa); free(ba);
        }
        report_dt("conv2d operator vs ref", dt, path, cases, worst, tol_of(dt)->conv, bad);
    }
}

/* The eval-mode BatchNorm folded into the packed weights: the reference
 * convolution, then x * scale + shift from sb_batch_norm_fold_<dt>. */
static void test_conv2d_fold(sb_dtype dt)
{
    for (int path = 0; path < g_n_isas; path++) {
        int64_t bad = 0, cases = 0;
        double worst = 0.0;
        use_isa(path, &bad);
        for (int t = 0; t < 20; t++) {
            const int64_t c = irand(1, 20), co = irand(1, 20), h = irand(3, 9), w = irand(3, 9);
            const int64_t xd[4] = {2, c, h, w}, wd[4] = {co, c, 3, 3};
            void *x = alloc_t(dt, numel(4, xd)), *wt = alloc_t(dt, numel(4, wd));
            void *stats = alloc_t(dt, 4 * co);
            fill_rand_t(x, dt, numel(4, xd));
            fill_rand_t(wt, dt, numel(4, wd));
            fill_rand_t(stats, dt, 4 * co);
            for (int64_t i = 0; i < co; i++) /* running_var > 0 */
                set_t(stats, dt, co + i, 0.5 + fabs(get_t(stats, dt, co + i)));
            void *rm = stats, *rv = at_t(stats, dt, co), *gamma = at_t(stats, dt, 2 * co);
            void *beta = at_t(stats, dt, 3 * co);
            sb_tensor tx = tensor(x, dt, 4, xd), tw = tensor(wt, dt, 4, wd);
            sb_tensor tm = tensor(rm, dt, 1, &co), tv = tensor(rv, dt, 1, &co);
            sb_tensor tg = tensor(gamma, dt, 1, &co), tbeta = tensor(beta, dt, 1, &co);
            sb_batch_norm_state bn = {&tg, &tbeta, &tm, &tv, 0, 0.1, 1e-5};
            sb_conv2d_pack_args pa = {&tw, NULL, 1, &bn};
            sb_conv2d_args a;
            memset(&a, 0, sizeof a);
            void *packed = pack_conv(&pa, &a.packed_numel, &bad);
            a.input = &tx;
            a.weight = &tw;
            a.stride[0] = a.stride[1] = a.dilation[0] = a.dilation[1] = a.groups = 1;
            a.padding[0] = a.padding[1] = 1;
            a.packed = packed;
            a.packed_dtype = dt;
            a.num_threads = 1;
            sb_conv2d_plan plan;
            void *y = run_conv(&a, &plan, &bad);
            const int64_t od[4] = {2, co, h, w};
            const sb_fmap in_map = fmap4(xd), out_map = fmap4(od);
            const sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
            void *ref = alloc_t(dt, numel(4, od)), *scale = alloc_t(dt, 2 * co);
            SB_DT_CALL(dt, sb_conv2d, __ref, ref, &out_map, x, &in_map, wt, NULL, &p);
            SB_DT_CALL(dt, sb_batch_norm_fold, , scale, at_t(scale, dt, co), rm, rv, gamma, beta,
                       1e-5, co, 0);
            SB_DT_CALL(dt, sb_batch_norm_apply, __ref, ref, &out_map, ref, &out_map, scale,
                       at_t(scale, dt, co), 0);
            if (y != NULL) {
                const double d = max_rel_t(y, ref, dt, numel(4, od));
                worst = d > worst ? d : worst;
            }
            cases++;
            free(x); free(wt); free(stats); free(packed); free(y); free(ref); free(scale);
        }
        report_dt("conv2d with a folded BatchNorm vs ref then BatchNorm", dt, path, cases, worst,
                  tol_of(dt)->block, bad);
    }
}

/* ---- batch_norm ------------------------------------------------------------ */

static void test_batch_norm(sb_dtype dt)
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
            void *x = alloc_t(dt, count), *y = alloc_t(dt, count), *ref = alloc_t(dt, count);
            void *p = alloc_t(dt, 8 * c);
            fill_rand_t(x, dt, count);
            fill_rand_t(p, dt, 8 * c);
            for (int64_t i = 0; i < c; i++)
                set_t(p, dt, c + i, 0.5 + fabs(get_t(p, dt, c + i)));
            void *rm = p, *rv = at_t(p, dt, c), *gamma = at_t(p, dt, 2 * c);
            void *beta = at_t(p, dt, 3 * c);
            void *rm_ref = dup_t(rm, dt, c), *rv_ref = dup_t(rv, dt, c);
            sb_tensor tx = tensor(x, dt, ndim, d), tm = tensor(rm, dt, 1, &c);
            sb_tensor tv = tensor(rv, dt, 1, &c), tg = tensor(gamma, dt, 1, &c);
            sb_tensor tb = tensor(beta, dt, 1, &c), ty = tensor(y, dt, ndim, d);
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
            void *mean = alloc_t(dt, c), *var_sum = alloc_t(dt, c), *scale = alloc_t(dt, 2 * c);
            void *shift = at_t(scale, dt, c);
            const int64_t n = count / c;
            if (training) {
                SB_DT_CALL(dt, sb_batch_norm_stats, __ref, mean, var_sum, x, &m);
                SB_DT_CALL(dt, sb_batch_norm_update_running, , rm_ref, rv_ref, mean, var_sum, n,
                           0.1, c);
                SB_DT_CALL(dt, sb_batch_norm_fold, , scale, shift, mean, var_sum, gamma, beta,
                           1e-5, c, n);
            } else {
                SB_DT_CALL(dt, sb_batch_norm_fold, , scale, shift, rm_ref, rv_ref, gamma, beta,
                           1e-5, c, 0);
            }
            SB_DT_CALL(dt, sb_batch_norm_apply, __ref, ref, &m, x, &m, scale, shift, a.relu);
            /* the statistics kernel's lanes vs the reference's one sum in
             * element order: mean and var_sum agree to rounding, so compare
             * closely */
            const double d_out = max_rel_t(y, ref, dt, count);
            const double d_stats = max_rel_t(rm, rm_ref, dt, c) + max_rel_t(rv, rv_ref, dt, c);
            if (d_out > tol_of(dt)->bn_out || d_stats > tol_of(dt)->bn_stats) {
                printf("  case %d (ndim %d, training %d): output %.3g, running stats %.3g\n", t,
                       ndim, training, d_out, d_stats);
                bad++;
            }
            cases++;
            free(x); free(y); free(ref); free(p); free(rm_ref); free(rv_ref); free(mean);
            free(var_sum); free(scale);
        }
        report_dt("batch_norm operator vs reference kernels in sequence", dt, path, cases, 0.0,
                  0.0, bad);
    }
}

/* ---- pooling, element-wise, linear, SEAttention ------------------------------ */

/* Linear weights packed by the pack operator, in a new buffer. */
static void *pack_linear(const sb_tensor *w, const sb_tensor *b, int64_t *packed_numel,
                         int64_t *bad)
{
    sb_linear_pack_args pa = {w, b};
    sb_linear_pack_plan pp;
    sb_error err;
    expect_status("linear pack plan", sb_op_linear_pack_plan(&pp, &pa, &err), SB_OK, bad);
    void *packed = alloc_t(w->dtype, pp.packed_numel);
    expect_status("linear pack run", sb_op_linear_pack_run(&pp, &pa, packed, NULL), SB_OK, bad);
    *packed_numel = pp.packed_numel;
    return packed;
}

static void test_small_ops(sb_dtype dt)
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
            void *x = alloc_t(dt, count), *y = alloc_t(dt, room), *ref = alloc_t(dt, room);
            fill_rand_t(x, dt, count);
            sb_tensor tx = tensor(x, dt, 4, xd);
            sb_error err;
            /* max pool 2x2 stride 2, padding 1 */
            sb_max_pool2d_args mp = {&tx, {2, 2}, {2, 2}, {1, 1}, {1, 1}, t % 2};
            sb_pool2d_plan pp;
            expect_status("max_pool plan", sb_op_max_pool2d_plan(&pp, &mp, &err), SB_OK, &bad);
            sb_tensor to = tensor(y, dt, pp.out_ndim, pp.out_dims);
            expect_status("max_pool run", sb_op_max_pool2d_run(&pp, &mp, &to, NULL), SB_OK, &bad);
            SB_DT_CALL(dt, sb_max_pool2d, __ref, ref, &pp.out_map, x, &pp.in_map, &pp.params);
            bad += not_same_t(y, ref, dt, numel(4, pp.out_dims));
            /* adaptive average pool to 3x2 */
            sb_adaptive_avg_pool2d_args ap = {&tx, {3, 2}};
            expect_status("adaptive plan", sb_op_adaptive_avg_pool2d_plan(&pp, &ap, &err), SB_OK,
                          &bad);
            to = tensor(y, dt, pp.out_ndim, pp.out_dims);
            expect_status("adaptive run", sb_op_adaptive_avg_pool2d_run(&pp, &ap, &to, NULL),
                          SB_OK, &bad);
            SB_DT_CALL(dt, sb_adaptive_avg_pool2d, __ref, ref, &pp.out_map, x, &pp.in_map);
            bad += not_same_t(y, ref, dt, numel(4, pp.out_dims));
            /* relu in place, then add_relu, then the channel scale */
            void *xr = dup_t(x, dt, count);
            sb_tensor txr = tensor(xr, dt, 4, xd);
            sb_unary_args ua = {&txr, SB_UNARY_RELU};
            sb_elementwise_plan ep;
            expect_status("relu plan", sb_op_unary_plan(&ep, &ua, &err), SB_OK, &bad);
            expect_status("relu run", sb_op_unary_run(&ep, &ua, &txr, NULL), SB_OK, &bad);
            SB_DT_CALL(dt, sb_relu, __ref, ref, x, count);
            bad += not_same_t(xr, ref, dt, count);
            sb_add_relu_args ar = {&tx, &txr};
            expect_status("add_relu plan", sb_op_add_relu_plan(&ep, &ar, &err), SB_OK, &bad);
            to = tensor(y, dt, 4, xd);
            expect_status("add_relu run", sb_op_add_relu_run(&ep, &ar, &to, NULL), SB_OK, &bad);
            SB_DT_CALL(dt, sb_add_relu, __ref, ref, x, xr, count);
            bad += not_same_t(y, ref, dt, count);
            const int64_t nc = xd[0] * xd[1];
            void *gate = alloc_t(dt, nc);
            fill_rand_t(gate, dt, nc);
            sb_tensor tgate = tensor(gate, dt, 1, &nc);
            sb_channel_scale_args cs = {&tx, &tgate};
            expect_status("scale plan", sb_op_channel_scale_plan(&ep, &cs, &err), SB_OK, &bad);
            expect_status("scale run", sb_op_channel_scale_run(&ep, &cs, &to, NULL), SB_OK, &bad);
            const sb_fmap m = fmap4(xd);
            SB_DT_CALL(dt, sb_channel_scale, __ref, ref, &m, x, &m, gate);
            bad += not_same_t(y, ref, dt, count);
            /* linear on packed weights: rows = N*C*H, in = W */
            const int64_t of = irand(1, 40), wd[2] = {of, xd[3]};
            void *wt = alloc_t(dt, of * xd[3]), *bias = alloc_t(dt, of);
            fill_rand_t(wt, dt, of * xd[3]);
            fill_rand_t(bias, dt, of);
            sb_tensor tw = tensor(wt, dt, 2, wd), tb = tensor(bias, dt, 1, &of);
            sb_linear_args la;
            memset(&la, 0, sizeof la);
            void *packed = pack_linear(&tw, &tb, &la.packed_numel, &bad);
            la.input = &tx;
            la.weight = &tw;
            la.bias = &tb;
            la.packed = packed;
            la.packed_dtype = dt;
            la.num_threads = g_threads[t % N_THREADS];
            sb_linear_plan lp;
            expect_status("linear plan", sb_op_linear_plan(&lp, &la, &err), SB_OK, &bad);
            const int64_t rows = lp.rows;
            void *ly = alloc_t(dt, rows * of), *lref = alloc_t(dt, rows * of);
            sb_tensor tly = tensor(ly, dt, lp.out_ndim, lp.out_dims);
            void *lws = malloc(lp.workspace_bytes > 0 ? lp.workspace_bytes : 1);
            expect_status("linear run", sb_op_linear_run(&lp, &la, &tly, lws), SB_OK, &bad);
            free(lws);
            SB_DT_CALL(dt, sb_linear, __ref, lref, x, wt, bias, rows, xd[3], of);
            double d = max_rel_t(ly, lref, dt, rows * of);
            worst_linear = d > worst_linear ? d : worst_linear;
            /* SEAttention with hidden = C / 2 (at least 1) */
            const int64_t c = xd[1], hidden = c / 2 > 0 ? c / 2 : 1;
            const int64_t w1d[2] = {hidden, c}, w2d[2] = {c, hidden};
            void *w1 = alloc_t(dt, hidden * c), *w2 = alloc_t(dt, c * hidden);
            fill_rand_t(w1, dt, hidden * c);
            fill_rand_t(w2, dt, c * hidden);
            sb_tensor tw1 = tensor(w1, dt, 2, w1d), tw2 = tensor(w2, dt, 2, w2d);
            sb_se_attention_args sa;
            memset(&sa, 0, sizeof sa);
            void *k1 = pack_linear(&tw1, NULL, &sa.fc1_numel, &bad);
            void *k2 = pack_linear(&tw2, NULL, &sa.fc2_numel, &bad);
            sa.input = &tx;
            sa.fc1_packed = k1;
            sa.fc2_packed = k2;
            sa.fc1_dtype = sa.fc2_dtype = dt;
            sa.hidden = hidden;
            sa.num_threads = g_threads[t % N_THREADS];
            sb_se_attention_plan sp;
            expect_status("se plan", sb_op_se_attention_plan(&sp, &sa, &err), SB_OK, &bad);
            void *sws = malloc(sp.workspace_bytes);
            expect_status("se run", sb_op_se_attention_run(&sp, &sa, &to, sws), SB_OK, &bad);
            free(sws);
            void *sref_ws = alloc_t(dt, 2 * nc + xd[0] * hidden);
            expect_status("se ref",
                          SB_DT_CALL(dt, sb_se_attention, __ref, ref, &m, x, &m, w1, w2, hidden,
                                     sref_ws),
                          SB_OK, &bad);
            d = max_rel_t(y, ref, dt, count);
            worst_se = d > worst_se ? d : worst_se;
            cases++;
            free(x); free(y); free(ref); free(xr); free(gate); free(wt); free(bias);
            free(packed); free(ly); free(lref); free(w1); free(w2); free(k1); free(k2);
            free(sref_ws);
        }
        report_dt("pooling and element-wise operators vs refs (exact)", dt, path, cases, 0.0,
                  0.0, bad);
        report_dt("linear operator vs ref", dt, path, cases, worst_linear, tol_of(dt)->linear, 0);
        report_dt("se_attention operator vs ref", dt, path, cases, worst_se, tol_of(dt)->linear,
                  0);
    }
}

/* ---- the fused blocks vs their operators one by one ------------------------- */

typedef struct {
    sb_dtype dt;
    void *w, *b, *rm, *rv; /* C each */
    sb_tensor tw, tb, tm, tv;
} bn_params;

static void bn_init(bn_params *p, sb_dtype dt, int64_t c)
{
    p->dt = dt;
    p->w = alloc_t(dt, c); p->b = alloc_t(dt, c); p->rm = alloc_t(dt, c); p->rv = alloc_t(dt, c);
    fill_rand_t(p->w, dt, c); fill_rand_t(p->b, dt, c);
    fill_rand_t(p->rm, dt, c); fill_rand_t(p->rv, dt, c);
    for (int64_t i = 0; i < c; i++)
        set_t(p->rv, dt, i, 0.5 + fabs(get_t(p->rv, dt, i)));
    p->tw = tensor(p->w, dt, 1, &c); p->tb = tensor(p->b, dt, 1, &c);
    p->tm = tensor(p->rm, dt, 1, &c); p->tv = tensor(p->rv, dt, 1, &c);
}

static bn_params bn_copy(const bn_params *p, int64_t c)
{
    bn_params q = *p;
    q.w = dup_t(p->w, p->dt, c); q.b = dup_t(p->b, p->dt, c);
    q.rm = dup_t(p->rm, p->dt, c); q.rv = dup_t(p->rv, p->dt, c);
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
static void *bn_op(const sb_tensor *x, sb_batch_norm_state s, int relu, int64_t *bad)
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
    void *y = alloc_t(x->dtype, count);
    sb_tensor ty = tensor(y, x->dtype, x->ndim, x->dims);
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

static sb_block_conv block_conv(const sb_tensor *w, const void *packed, int64_t packed_numel,
                                int64_t stride, int64_t pad)
{
    sb_block_conv c = {w, packed, packed_numel, w->dtype, {stride, stride}, {pad, pad},
                       {1, 1}, 1};
    return c;
}

static void test_dense_layer(sb_dtype dt)
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
            void *x = alloc_t(dt, numel(4, xd)), *w1 = alloc_t(dt, numel(4, w1d));
            void *w2 = alloc_t(dt, numel(4, w2d));
            fill_rand_t(x, dt, numel(4, xd)); fill_rand_t(w1, dt, numel(4, w1d));
            fill_rand_t(w2, dt, numel(4, w2d));
            bn_params b1, b2;
            bn_init(&b1, dt, c);
            bn_init(&b2, dt, mid);
            bn_params r1 = bn_copy(&b1, c), r2 = bn_copy(&b2, mid);
            sb_tensor tx = tensor(x, dt, 4, xd), tw1 = tensor(w1, dt, 4, w1d);
            sb_tensor tw2 = tensor(w2, dt, 4, w2d);
            sb_dense_layer_args a;
            memset(&a, 0, sizeof a);
            a.input = &tx;
            a.bn1 = bn_state(&b1, training, 0.1);
            a.bn2 = bn_state(&b2, training, 0.1);
            a.conv1 = block_conv(&tw1, NULL, 0, 1, 0);
            a.conv2 = block_conv(&tw2, NULL, 0, 1, 1);
            a.num_threads = g_threads[t % N_THREADS];
            sb_dense_layer_plan plan;
            sb_error err;
            expect_status("dense plan", sb_op_dense_layer_plan(&plan, &a, &err), SB_OK, &bad);
            const int64_t count = numel(4, plan.out_dims);
            void *y = alloc_t(dt, count);
            sb_tensor ty = tensor(y, dt, 4, plan.out_dims);
            void *ws = malloc(plan.workspace_bytes);
            expect_status("dense run", sb_op_dense_layer_run(&plan, &a, &ty, ws), SB_OK, &bad);
            free(ws);
            /* one by one */
            void *h1 = bn_op(&tx, bn_state(&r1, training, 0.1), 1, &bad);
            sb_tensor th1 = tensor(h1, dt, 4, xd);
            sb_conv2d_args ca = conv_args(&th1, &tw1, 1, 0);
            sb_conv2d_plan cp;
            void *o1 = run_conv(&ca, &cp, &bad);
            sb_tensor to1 = tensor(o1, dt, 4, cp.out_dims);
            void *h2 = bn_op(&to1, bn_state(&r2, training, 0.1), 1, &bad);
            sb_tensor th2 = tensor(h2, dt, 4, cp.out_dims);
            ca = conv_args(&th2, &tw2, 1, 1);
            void *ref = run_conv(&ca, &cp, &bad);
            const double d = max_rel_t(y, ref, dt, count);
            worst = d > worst ? d : worst;
            bad += not_same_t(b1.rm, r1.rm, dt, c) + not_same_t(b1.rv, r1.rv, dt, c) +
                   not_same_t(b2.rm, r2.rm, dt, mid) + not_same_t(b2.rv, r2.rv, dt, mid);
            /* a plan that fails (conv2's input channels) touches nothing */
            const int64_t wbad[4] = {g, mid + 1, 3, 3};
            sb_tensor twbad = tensor(w2, dt, 4, wbad);
            a.conv2.weight = &twbad;
            void *before = dup_t(b1.rm, dt, c);
            if (sb_op_dense_layer_plan(&plan, &a, &err) != SB_ERR_SHAPE ||
                err.code != SB_E_CONV_CHANNELS || not_same_t(before, b1.rm, dt, c) != 0)
                bad++;
            cases++;
            free(before); free(x); free(w1); free(w2); free(y); free(h1); free(o1); free(h2);
            free(ref);
            bn_free(&b1); bn_free(&b2); bn_free(&r1); bn_free(&r2);
        }
        report_dt("dense_layer operator vs its operators one by one", dt, path, cases, worst,
                  tol_of(dt)->block, bad);
    }
}

static void test_residual_block(sb_dtype dt)
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
            void *x = alloc_t(dt, numel(4, xd)), *w1 = alloc_t(dt, numel(4, wd));
            void *w2 = alloc_t(dt, numel(4, wd));
            fill_rand_t(x, dt, numel(4, xd)); fill_rand_t(w1, dt, numel(4, wd));
            fill_rand_t(w2, dt, numel(4, wd));
            bn_params b, r;
            bn_init(&b, dt, c);
            r = bn_copy(&b, c);
            sb_tensor tx = tensor(x, dt, 4, xd), tw1 = tensor(w1, dt, 4, wd);
            sb_tensor tw2 = tensor(w2, dt, 4, wd);
            /* packed weights: with bn folded in for the folded (eval) mode */
            void *k[2];
            int64_t kn = 0;
            sb_batch_norm_state eval_bn = bn_state(&b, 0, 0.1);
            const sb_tensor *ws_[2] = {&tw1, &tw2};
            for (int i = 0; i < 2; i++) {
                sb_conv2d_pack_args pa = {ws_[i], NULL, 1, folded ? &eval_bn : NULL};
                k[i] = pack_conv(&pa, &kn, &bad);
            }
            const int64_t oh = sb_conv2d_out_size(xd[2], 3, stride, 1, 1);
            const int64_t ow = sb_conv2d_out_size(xd[3], 3, stride, 1, 1);
            const int64_t od[4] = {xd[0], c, oh, ow};
            void *res = alloc_t(dt, numel(4, od));
            fill_rand_t(res, dt, numel(4, od));
            sb_tensor tres = tensor(res, dt, 4, od);
            sb_residual_block_args a;
            memset(&a, 0, sizeof a);
            a.input = &tx;
            a.residual = &tres;
            a.bn = bn_state(&b, !folded, 0.1);
            a.momentum2 = 0.25;
            a.folded = folded;
            a.conv1 = block_conv(&tw1, k[0], kn, stride, 1);
            a.conv2 = block_conv(&tw2, k[1], kn, 1, 1);
            a.num_threads = g_threads[t % N_THREADS];
            sb_residual_block_plan plan;
            sb_error err;
            expect_status("residual plan", sb_op_residual_block_plan(&plan, &a, &err), SB_OK,
                          &bad);
            const int64_t count = numel(4, od);
            void *y = alloc_t(dt, count);
            sb_tensor ty = tensor(y, dt, 4, od);
            void *ws = malloc(plan.workspace_bytes);
            expect_status("residual run", sb_op_residual_block_run(&plan, &a, &ty, ws), SB_OK,
                          &bad);
            free(ws);
            /* one by one: relu(bn(conv2(relu(bn(conv1(x))))) + residual) */
            sb_conv2d_args ca = conv_args(&tx, &tw1, stride, 1);
            sb_conv2d_plan cp;
            void *o1 = run_conv(&ca, &cp, &bad);
            sb_tensor to1 = tensor(o1, dt, 4, od);
            void *h1 = bn_op(&to1, bn_state(&r, !folded, 0.1), 1, &bad);
            sb_tensor th1 = tensor(h1, dt, 4, od);
            ca = conv_args(&th1, &tw2, 1, 1);
            void *o2 = run_conv(&ca, &cp, &bad);
            sb_tensor to2 = tensor(o2, dt, 4, od);
            void *h2 = bn_op(&to2, bn_state(&r, !folded, 0.25), 0, &bad);
            sb_tensor th2 = tensor(h2, dt, 4, od);
            sb_add_relu_args ar = {&th2, &tres};
            sb_elementwise_plan ep;
            sb_op_add_relu_plan(&ep, &ar, &err);
            void *ref = alloc_t(dt, count);
            sb_tensor tref = tensor(ref, dt, 4, od);
            sb_op_add_relu_run(&ep, &ar, &tref, NULL);
            const double d = max_rel_t(y, ref, dt, count);
            worst = d > worst ? d : worst;
            if (!folded)
                bad += not_same_t(b.rm, r.rm, dt, c) + not_same_t(b.rv, r.rv, dt, c);
            cases++;
            free(x); free(w1); free(w2); free(k[0]); free(k[1]); free(res); free(y); free(o1);
            free(h1); free(o2); free(h2); free(ref);
            bn_free(&b); bn_free(&r);
        }
        report_dt("residual_block operator vs its operators one by one", dt, path, cases, worst,
                  tol_of(dt)->block, bad);
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

static void test_validation(sb_dtype dt)
{
    int64_t bad = 0, cases = 0;
    void *x = alloc_t(dt, 100), *w = alloc_t(dt, 54), *b = alloc_t(dt, 4), *v = alloc_t(dt, 8);
    fill_val_t(x, dt, 100, 1.0);
    fill_val_t(w, dt, 54, 1.0);
    fill_val_t(b, dt, 4, 0.0);
    fill_val_t(v, dt, 8, 1.0);
    const int64_t xd[4] = {2, 2, 5, 5}, wd[4] = {3, 2, 3, 3}, bd4 = 4, c2 = 2, c3 = 3;
    sb_tensor tx = tensor(x, dt, 4, xd), tw = tensor(w, dt, 4, wd), tb = tensor(b, dt, 1, &bd4);
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
    sb_tensor tw_bad = tensor(w, dt, 4, wd_bad);
    sb_conv2d_args a = conv_args(&tx, &tw_bad, 1, 0);
    expect_code("channel mismatch", sb_op_conv2d_plan(&plan, &a, &err), &err,
                SB_E_CONV_CHANNELS, &bad);
    a = conv_args(&tx, &tw, 1, 0);
    a.reference = 1;
    a.out_relu = 1;
    expect_code("reference with fusion", sb_op_conv2d_plan(&plan, &a, &err), &err,
                SB_E_CONV_REFERENCE_FUSED, &bad);
    cases += 2;

    sb_tensor tm = tensor(v, dt, 1, &c2), tv = tensor(at_t(v, dt, 2), dt, 1, &c2);
    sb_tensor t3 = tensor(at_t(v, dt, 4), dt, 1, &c3);
    const int64_t one[4] = {1, 2, 1, 1};
    sb_tensor t_one = tensor(x, dt, 4, one);
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
    sb_tensor tlw = tensor(w, dt, 2, lw);
    sb_linear_args la;
    memset(&la, 0, sizeof la);
    la.input = &tx;
    la.weight = &tlw;
    la.num_threads = 1;
    sb_linear_plan lp;
    expect_code("linear shapes", sb_op_linear_plan(&lp, &la, &err), &err, SB_E_LINEAR_SHAPES,
                &bad);
    cases += 3;
    report_dt("operator validation: torch's first failing check", dt, -1, cases, 0.0, 0.0, bad);
    free(x); free(w); free(b); free(v);
}

/* ---- dtypes: every mix of float32 and float64 ------------------------------- */

/* Arrays of both dtypes for one check: `same` of dtype dt, `other` of the
 * other dtype, each large enough for the shapes below. */
typedef struct {
    sb_dtype dt, ot;
    void *same, *other;
} mix_buffers;

static sb_tensor mixed(mix_buffers *m, int other, int ndim, const int64_t *dims)
{
    return tensor(other ? m->other : m->same, other ? m->ot : m->dt, ndim, dims);
}

static void test_dtype_mixes(sb_dtype dt)
{
    int64_t bad = 0, cases = 0;
    mix_buffers m = {dt, dt == SB_DTYPE_F32 ? SB_DTYPE_F64 : SB_DTYPE_F32, NULL, NULL};
    m.same = alloc_t(m.dt, 4096);
    m.other = alloc_t(m.ot, 4096);
    fill_val_t(m.same, m.dt, 4096, 1.0);
    fill_val_t(m.other, m.ot, 4096, 1.0);
    sb_error err;
    sb_status st;

    /* conv2d: the bias's dtype first (before the input's rank), the
     * weight's after the shapes; torch's oneDNN path has another message for
     * a float32 input */
    {
        const int64_t xd[4] = {1, 2, 5, 5}, x2[2] = {2, 5}, wd[4] = {3, 2, 3, 3}, bd = 3;
        const int64_t bd4 = 4, xdn[4] = {2, 2, 5, 5}, w1d[4] = {3, 2, 1, 1};
        const int64_t wgd[4] = {4, 1, 3, 3};
        sb_tensor x = mixed(&m, 0, 4, xd), x2d = mixed(&m, 0, 2, x2), xn = mixed(&m, 0, 4, xdn);
        sb_tensor w = mixed(&m, 0, 4, wd), wo = mixed(&m, 1, 4, wd), w1o = mixed(&m, 1, 4, w1d);
        sb_tensor wgo = mixed(&m, 1, 4, wgd);
        sb_tensor bo = mixed(&m, 1, 1, &bd), b4 = mixed(&m, 0, 1, &bd4);
        sb_conv2d_plan plan;
        sb_conv2d_args a = conv_args(&x, &w, 1, 0);
        a.bias = &bo;
        expect_code("conv bias dtype", sb_op_conv2d_plan(&plan, &a, &err), &err,
                    SB_E_CONV_BIAS_DTYPE, &bad);
        if (err.value[0] != dt || err.value[1] != m.ot)
            bad++;
        a = conv_args(&x2d, &w, 1, 0);
        a.bias = &bo;
        expect_code("conv bias dtype before the input's rank", sb_op_conv2d_plan(&plan, &a, &err),
                    &err, SB_E_CONV_BIAS_DTYPE, &bad);
        a = conv_args(&x, &wo, 1, 0);
        expect_code("conv weight dtype (direct path)", sb_op_conv2d_plan(&plan, &a, &err), &err,
                    SB_E_CONV_WEIGHT_DTYPE, &bad);
        /* N > 1: torch's float32 convolution runs oneDNN */
        a = conv_args(&xn, &wo, 1, 0);
        expect_code("conv weight dtype, batch of 2", sb_op_conv2d_plan(&plan, &a, &err), &err,
                    dt == SB_DTYPE_F32 ? SB_E_CONV_WEIGHT_DTYPE_MKLDNN : SB_E_CONV_WEIGHT_DTYPE,
                    &bad);
        a = conv_args(&x, &wgo, 1, 0);
        a.groups = 2;
        expect_code("conv weight dtype, groups 2", sb_op_conv2d_plan(&plan, &a, &err), &err,
                    dt == SB_DTYPE_F32 ? SB_E_CONV_WEIGHT_DTYPE_MKLDNN : SB_E_CONV_WEIGHT_DTYPE,
                    &bad);
        /* 1x1, a batch of 2, stride 1: oneDNN only with more than one thread */
        a = conv_args(&xn, &w1o, 1, 0);
        for (int threads = 1; threads <= 2; threads++) {
            a.num_threads = threads;
            expect_code("conv 1x1 weight dtype", sb_op_conv2d_plan(&plan, &a, &err), &err,
                        dt == SB_DTYPE_F32 && threads > 1 ? SB_E_CONV_WEIGHT_DTYPE_MKLDNN
                                                          : SB_E_CONV_WEIGHT_DTYPE,
                        &bad);
        }
        a = conv_args(&x, &wo, 1, 0);
        a.bias = &b4;
        expect_code("conv bias shape before the weight's dtype",
                    sb_op_conv2d_plan(&plan, &a, &err), &err, SB_E_CONV_BIAS, &bad);
        a = conv_args(&x, &wo, 0, 0);
        expect_code("conv stride before the weight's dtype", sb_op_conv2d_plan(&plan, &a, &err),
                    &err, SB_E_CONV_STRIDE, &bad);
        /* an empty batch: torch computes whatever the weight's dtype */
        const int64_t x0[4] = {0, 2, 5, 5};
        sb_tensor xe = mixed(&m, 0, 4, x0);
        a = conv_args(&xe, &wo, 1, 0);
        st = sb_op_conv2d_plan(&plan, &a, &err);
        expect_status("conv of an empty batch, weight of the other dtype", st, SB_OK, &bad);
        if (st == SB_OK) {
            sb_tensor out = tensor(NULL, dt, 4, plan.out_dims);
            void *ws = malloc(plan.workspace_bytes > 0 ? plan.workspace_bytes : 1);
            expect_status("conv run of an empty batch", sb_op_conv2d_run(&plan, &a, &out, ws),
                          SB_OK, &bad);
            free(ws);
        }
        /* packed weights and the fusions' arrays of the other dtype */
        a = conv_args(&x, &w, 1, 0);
        a.packed = m.other;
        a.packed_numel =
            SB_DT_CALL(dt, sb_conv2d, _packed_weights_elems, 3, 2, 3, 3, 1);
        a.packed_dtype = m.ot;
        expect_code("conv packed dtype", sb_op_conv2d_plan(&plan, &a, &err), &err,
                    SB_E_DTYPE_MISMATCH, &bad);
        const int64_t od[4] = {1, 3, 3, 3};
        sb_tensor ro = mixed(&m, 1, 4, od);
        a = conv_args(&x, &w, 1, 0);
        a.residual = &ro;
        expect_code("conv residual dtype", sb_op_conv2d_plan(&plan, &a, &err), &err,
                    SB_E_DTYPE_MISMATCH, &bad);
        /* the pack operator: the bias's dtype, then a folded BatchNorm's */
        sb_conv2d_pack_plan pplan;
        sb_conv2d_pack_args pa = {&w, &bo, 1, NULL};
        expect_code("conv pack bias dtype", sb_op_conv2d_pack_plan(&pplan, &pa, &err), &err,
                    SB_E_CONV_BIAS_DTYPE, &bad);
        sb_tensor rm = mixed(&m, 1, 1, &bd), rv = mixed(&m, 1, 1, &bd);
        sb_batch_norm_state fold = {NULL, NULL, &rm, &rv, 0, 0.1, 1e-5};
        pa = (sb_conv2d_pack_args){&w, NULL, 1, &fold};
        expect_code("conv pack fold dtype", sb_op_conv2d_pack_plan(&pplan, &pa, &err), &err,
                    dt == SB_DTYPE_F32 ? SB_E_BN_PARAM_DTYPE : SB_E_BN_MIXED_DTYPE, &bad);
        cases += 15;
    }

    /* batch_norm: torch's mixed-dtype rule on (weight, bias, running_mean,
     * running_var), after the other checks, not for an empty input */
    {
        const int64_t xd[4] = {2, 3, 4, 4}, c = 3, c4 = 4, x0[4] = {0, 3, 4, 4};
        sb_tensor x = mixed(&m, 0, 4, xd), xe = mixed(&m, 0, 4, x0);
        sb_tensor s = mixed(&m, 0, 1, &c), o = mixed(&m, 1, 1, &c), o4 = mixed(&m, 1, 1, &c4);
        const sb_error_code first_other =
            dt == SB_DTYPE_F32 ? SB_E_BN_PARAM_DTYPE : SB_E_BN_MIXED_DTYPE;
        struct {
            const char *what;
            const sb_tensor *input, *weight, *bias, *mean, *var;
            int training;
            sb_error_code want;
        } rows[] = {
            /* the first parameter given is of the other dtype */
            {"bn weight of the other dtype", &x, &o, NULL, &s, &s, 0, SB_E_BN_PARAM_DTYPE},
            {"bn bias of the other dtype", &x, NULL, &o, &s, &s, 1, SB_E_BN_PARAM_DTYPE},
            {"bn running_mean of the other dtype", &x, NULL, NULL, &o, &s, 0,
             SB_E_BN_PARAM_DTYPE},
            {"bn running statistics of the other dtype", &x, NULL, NULL, &o, &o, 1, first_other},
            {"bn weight of the other dtype, no running statistics", &x, &o, NULL, NULL, NULL, 1,
             first_other},
            {"bn all parameters of the other dtype", &x, &o, &o, &o, &o, 0, first_other},
            /* a later parameter is */
            {"bn running_var of the other dtype", &x, NULL, NULL, &s, &o, 0, SB_E_BN_SCALAR_TYPE},
            {"bn bias of the other dtype after the weight", &x, &s, &o, &s, &s, 1,
             SB_E_BN_SCALAR_TYPE},
            /* the other checks first */
            {"bn size before dtype", &x, NULL, NULL, &o4, &o4, 0, SB_E_NUMEL},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            sb_batch_norm_args ba;
            memset(&ba, 0, sizeof ba);
            ba.input = rows[i].input;
            ba.bn = (sb_batch_norm_state){rows[i].weight, rows[i].bias, rows[i].mean,
                                          rows[i].var, rows[i].training, 0.1, 1e-5};
            sb_batch_norm_plan bp;
            expect_code(rows[i].what, sb_op_batch_norm_plan(&bp, &ba, &err), &err, rows[i].want,
                        &bad);
            cases++;
        }
        /* an empty batch: torch computes, and so does the operator (running
         * statistics untouched, nothing read) */
        for (int training = 0; training <= 1; training++) {
            sb_batch_norm_args ba;
            memset(&ba, 0, sizeof ba);
            ba.input = &xe;
            ba.bn = (sb_batch_norm_state){&o, &o, &o, &o, training, 0.1, 1e-5};
            sb_batch_norm_plan bp;
            st = sb_op_batch_norm_plan(&bp, &ba, &err);
            expect_status("bn of an empty batch, parameters of the other dtype", st, SB_OK, &bad);
            if (st == SB_OK) {
                sb_tensor out = tensor(NULL, dt, 4, x0);
                void *ws = malloc(bp.workspace_bytes > 0 ? bp.workspace_bytes : 1);
                expect_status("bn run of an empty batch", sb_op_batch_norm_run(&bp, &ba, &out, ws),
                              SB_OK, &bad);
                free(ws);
            }
            cases++;
        }
    }

    /* linear: addmm's checks (bias vs weight, then input vs weight) before
     * the shapes for a 2-D input or a vector bias; matmul's (input vs
     * weight) after them otherwise; a bias of the other dtype that torch
     * adds after the product is added (in double, rounded once) */
    {
        const int64_t x2[2] = {2, 4}, x3[3] = {2, 2, 4}, x5[2] = {2, 5}, wd[2] = {3, 4};
        const int64_t bd = 3, b22[2] = {2, 3};
        sb_tensor xs = mixed(&m, 0, 2, x2), x3s = mixed(&m, 0, 3, x3), x5s = mixed(&m, 0, 2, x5);
        sb_tensor ws = mixed(&m, 0, 2, wd), wo = mixed(&m, 1, 2, wd);
        sb_tensor bs = mixed(&m, 0, 1, &bd), bo = mixed(&m, 1, 1, &bd);
        sb_tensor b2o = mixed(&m, 1, 2, b22);
        struct {
            const char *what;
            const sb_tensor *input, *weight, *bias;
            sb_error_code want;
            int64_t v0_other; /* whether v0 is the other dtype */
        } rows[] = {
            {"linear weight, no bias", &xs, &wo, NULL, SB_E_LINEAR_MM_DTYPE, 0},
            {"linear weight, no bias, 3-D", &x3s, &wo, NULL, SB_E_LINEAR_MM_DTYPE, 0},
            {"linear shapes before matmul's dtype", &x5s, &wo, NULL, SB_E_LINEAR_SHAPES, 0},
            {"linear bias (addmm)", &xs, &ws, &bo, SB_E_LINEAR_SELF_DTYPE, 1},
            {"linear weight and bias (addmm)", &xs, &wo, &bo, SB_E_LINEAR_MAT1_DTYPE, 0},
            {"linear weight (addmm)", &xs, &wo, &bs, SB_E_LINEAR_SELF_DTYPE, 0},
            {"linear addmm's dtype before the shapes", &x5s, &wo, &bo, SB_E_LINEAR_MAT1_DTYPE, 0},
            {"linear 3-D, vector bias (addmm)", &x3s, &ws, &bo, SB_E_LINEAR_SELF_DTYPE, 1},
            {"linear 3-D, 2-D bias: matmul", &x3s, &wo, &b2o, SB_E_LINEAR_MM_DTYPE, 0},
        };
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            sb_linear_args la;
            memset(&la, 0, sizeof la);
            la.input = rows[i].input;
            la.weight = rows[i].weight;
            la.bias = rows[i].bias;
            la.num_threads = 1;
            sb_linear_plan lp;
            expect_code(rows[i].what, sb_op_linear_plan(&lp, &la, &err), &err, rows[i].want,
                        &bad);
            if (rows[i].want != SB_E_LINEAR_SHAPES &&
                err.value[0] != (rows[i].v0_other ? m.ot : dt))
                bad++;
            cases++;
        }
        /* a bias of the other dtype that torch adds after matmul (add_): a
         * (1, 1) bias on a 3-D input (one value for all) and a (4, 3) bias
         * on a (1, 4, 4) input (a row each), computed; the reference is the
         * product, then each sum in double rounded once */
        const int64_t xin[2][3] = {{2, 2, 4}, {1, 4, 4}}, bdims[2][2] = {{1, 1}, {4, 3}};
        for (int k = 0; k < 2; k++) {
            void *x = alloc_t(dt, 16), *w = alloc_t(dt, 12), *b = alloc_t(m.ot, 12);
            fill_rand_t(x, dt, 16);
            fill_rand_t(w, dt, 12);
            fill_rand_t(b, m.ot, 12);
            sb_tensor tx = tensor(x, dt, 3, xin[k]), tw = tensor(w, dt, 2, wd);
            sb_tensor tb = tensor(b, m.ot, 2, bdims[k]);
            sb_linear_args la;
            memset(&la, 0, sizeof la);
            la.input = &tx;
            la.weight = &tw;
            la.bias = &tb;
            la.num_threads = 1;
            sb_linear_plan lp;
            st = sb_op_linear_plan(&lp, &la, &err);
            expect_status("linear 3-D with a 2-D bias of the other dtype", st, SB_OK, &bad);
            if (st == SB_OK) {
                void *y = alloc_t(dt, 12), *ref = alloc_t(dt, 12);
                sb_tensor ty = tensor(y, dt, 3, lp.out_dims);
                void *lws = malloc(lp.workspace_bytes > 0 ? lp.workspace_bytes : 1);
                expect_status("linear run, bias of the other dtype",
                              sb_op_linear_run(&lp, &la, &ty, lws), SB_OK, &bad);
                free(lws);
                SB_DT_CALL(dt, sb_linear, , ref, x, w, NULL, 4, 4, 3);
                for (int64_t r = 0; r < 4; r++)
                    for (int64_t o = 0; o < 3; o++)
                        set_t(ref, dt, r * 3 + o,
                              get_t(ref, dt, r * 3 + o) + get_t(b, m.ot, k ? r * 3 + o : 0));
                bad += not_same_t(y, ref, dt, 12);
                free(y); free(ref);
            }
            free(x); free(w); free(b);
            cases++;
        }
    }

    /* the other operators: their second arrays, the blocks' parts */
    {
        const int64_t xd[4] = {2, 4, 3, 3}, nc = 8, c = 4, hid = 2;
        sb_tensor x = mixed(&m, 0, 4, xd), xo = mixed(&m, 1, 4, xd), so = mixed(&m, 1, 1, &nc);
        sb_elementwise_plan ep;
        sb_add_relu_args ar = {&x, &xo};
        expect_code("add_relu residual dtype", sb_op_add_relu_plan(&ep, &ar, &err), &err,
                    SB_E_DTYPE_MISMATCH, &bad);
        sb_channel_scale_args cs = {&x, &so};
        expect_code("channel_scale scale dtype", sb_op_channel_scale_plan(&ep, &cs, &err), &err,
                    SB_E_DTYPE_MISMATCH, &bad);
        sb_se_attention_args sa;
        memset(&sa, 0, sizeof sa);
        sa.input = &x;
        sa.fc1_packed = sa.fc2_packed = m.other;
        sa.fc1_numel = SB_DT_CALL(dt, sb_linear, _packed_weights_elems, hid, c);
        sa.fc2_numel = SB_DT_CALL(dt, sb_linear, _packed_weights_elems, c, hid);
        sa.fc1_dtype = dt;
        sa.fc2_dtype = m.ot;
        sa.hidden = hid;
        sa.num_threads = 1;
        sb_se_attention_plan sp;
        expect_code("se_attention packed dtype", sb_op_se_attention_plan(&sp, &sa, &err), &err,
                    SB_E_LINEAR_MM_DTYPE, &bad);
        if (err.layer == NULL || strcmp(err.layer, "Linear") != 0)
            bad++;
        /* a fused block whose BatchNorm has the other dtype: the plan fails,
         * naming BatchNorm2d, and touches nothing */
        const int64_t w1d[4] = {4, 4, 1, 1}, w2d[4] = {2, 4, 3, 3};
        sb_tensor w1 = mixed(&m, 0, 4, w1d), w2 = mixed(&m, 0, 4, w2d);
        bn_params b1, b2;
        bn_init(&b1, m.ot, c);
        bn_init(&b2, dt, c);
        void *before = dup_t(b1.rm, m.ot, c);
        sb_dense_layer_args da;
        memset(&da, 0, sizeof da);
        da.input = &x;
        da.bn1 = bn_state(&b1, 1, 0.1);
        da.bn2 = bn_state(&b2, 1, 0.1);
        da.conv1 = block_conv(&w1, NULL, 0, 1, 0);
        da.conv2 = block_conv(&w2, NULL, 0, 1, 1);
        da.num_threads = 1;
        sb_dense_layer_plan dp;
        expect_code("dense_layer bn1 of the other dtype", sb_op_dense_layer_plan(&dp, &da, &err),
                    &err, dt == SB_DTYPE_F32 ? SB_E_BN_PARAM_DTYPE : SB_E_BN_MIXED_DTYPE, &bad);
        if (err.layer == NULL || strcmp(err.layer, "BatchNorm2d") != 0 ||
            not_same_t(before, b1.rm, m.ot, c) != 0)
            bad++;
        /* ResidualBlock: the residual's dtype */
        const int64_t wr[4] = {4, 4, 3, 3};
        sb_tensor wr1 = mixed(&m, 0, 4, wr);
        bn_params br;
        bn_init(&br, dt, c);
        sb_residual_block_args ra;
        memset(&ra, 0, sizeof ra);
        ra.input = &x;
        ra.residual = &xo;
        ra.bn = bn_state(&br, 1, 0.1);
        ra.momentum2 = 0.1;
        ra.conv1 = block_conv(&wr1, NULL, 0, 1, 1);
        ra.conv2 = block_conv(&wr1, NULL, 0, 1, 1);
        ra.num_threads = 1;
        sb_residual_block_plan rp;
        expect_code("residual_block residual dtype", sb_op_residual_block_plan(&rp, &ra, &err),
                    &err, SB_E_DTYPE_MISMATCH, &bad);
        free(before);
        bn_free(&b1); bn_free(&b2); bn_free(&br);
        cases += 5;
    }
    report_dt("dtype mixes: torch's check for each", dt, -1, cases, 0.0, 0.0, bad);
    free(m.same);
    free(m.other);
}

int main(void)
{
    test_begin("operators");
    const sb_dtype dtypes[2] = {SB_DTYPE_F32, SB_DTYPE_F64};
    for (int i = 0; i < 2; i++) {
        const sb_dtype dt = dtypes[i];
        test_conv2d(dt);
        test_conv2d_fold(dt);
        test_batch_norm(dt);
        test_small_ops(dt);
        test_dense_layer(dt);
        test_residual_block(dt);
        test_validation(dt);
        test_dtype_mixes(dt);
    }
    return test_end();
}

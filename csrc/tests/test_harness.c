/*
 * test_harness.c -- the shared part of the standalone C tests of the kernels
 * (contract in test_harness.h). Plain C99 plus the thread pool; no Python.
 */
#include "test_harness.h"

static int g_failures = 0;
static int64_t g_groups = 0, g_cases = 0;

/* ---- random numbers ------------------------------------------------------ */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

int64_t irand(int64_t lo, int64_t hi)
{
    return lo + (int64_t)((frand() + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

/* ---- buffers ------------------------------------------------------------- */

float *alloc_f(int64_t count)
{
    /* malloc(0) may return NULL; kernels accept NULL for empty buffers. */
    float *p = count > 0 ? malloc((size_t)count * sizeof(float)) : NULL;
    if (count > 0 && p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

void fill_rand(float *p, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = frand();
}

void fill_val(float *p, int64_t count, float v)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = v;
}

float *dup_f(const float *src, int64_t count)
{
    float *p = alloc_f(count);
    if (count > 0)
        memcpy(p, src, (size_t)count * sizeof(float));
    return p;
}

float *abs_dup(const float *src, int64_t count)
{
    float *p = dup_f(src, count);
    for (int64_t i = 0; i < count; i++)
        p[i] = fabsf(p[i]);
    return p;
}

int64_t map_floats(const sb_fmap *m)
{
    return m->n * m->batch_stride;
}

void prefill_map(float *y, const sb_fmap *m)
{
    const int64_t chw = m->c * m->h * m->w;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = 0; i < m->batch_stride; i++)
            y[n * m->batch_stride + i] = i < chw ? NAN : SENTINEL;
}

int64_t count_bad_gaps(const float *y, const sb_fmap *m)
{
    int64_t bad = 0;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = m->c * m->h * m->w; i < m->batch_stride; i++)
            bad += y[n * m->batch_stride + i] != SENTINEL;
    return bad;
}

/* ---- comparisons --------------------------------------------------------- */

int same_float(float a, float b)
{
    if (a != a || b != b)
        return a != a && b != b;
    return memcmp(&a, &b, sizeof a) == 0;
}

int64_t count_not_same(const float *a, const float *b, int64_t count)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < count; i++)
        bad += !same_float(a[i], b[i]);
    return bad;
}

int64_t count_not_same_maps(const float *a, const sb_fmap *am, const float *b,
                            const sb_fmap *bm)
{
    const int64_t chw = am->c * am->h * am->w;
    int64_t bad = 0;
    for (int64_t n = 0; n < am->n; n++)
        bad += count_not_same(a + n * am->batch_stride, b + n * bm->batch_stride, chw);
    return bad;
}

double rel_diff(float fast, float ref)
{
    if (fast != fast || ref != ref)
        return (fast != fast && ref != ref) ? 0.0 : INFINITY;
    if (isinf(fast) || isinf(ref))
        return fast == ref ? 0.0 : INFINITY;
    return fabs((double)fast - (double)ref) / (1.0 + fabs((double)ref));
}

double max_rel(const float *fast, const float *ref, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        const double d = rel_diff(fast[i], ref[i]);
        if (!(d <= m))
            m = d; /* also picks up NaN / inf */
    }
    return m;
}

double max_scaled(const float *fast, const float *ref, const float *mag, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double d;
        if (fast[i] != fast[i] || ref[i] != ref[i])
            d = (fast[i] != fast[i] && ref[i] != ref[i]) ? 0.0 : INFINITY;
        else if (isinf(fast[i]) || isinf(ref[i]))
            d = fast[i] == ref[i] ? 0.0 : INFINITY;
        else
            d = fabs((double)fast[i] - (double)ref[i]) / (1.0 + fabs((double)mag[i]));
        if (!(d <= m))
            m = d;
    }
    return m;
}

/* A float's bits as a signed integer that counts floats in value order
 * (-0.0 and +0.0 both 0). */
static int64_t ordered_bits(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? -(int64_t)(i & 0x7FFFFFFF) : (int64_t)i;
}

double ulp_diff(float a, float b)
{
    if (a != a || b != b)
        return (a != a && b != b) ? 0.0 : INFINITY;
    if (same_float(a, b))
        return 0.0;
    const int64_t d = ordered_bits(a) - ordered_bits(b);
    /* -0.0 against +0.0 is one step: not bitwise the same */
    return d == 0 ? 1.0 : (double)(d < 0 ? -d : d);
}

/* ---- reporting ----------------------------------------------------------- */

void report(const char *name, int64_t cases, double worst, double tol, int64_t extra_bad)
{
    const int ok = worst <= tol && extra_bad == 0;
    printf("%-34s %6lld cases  max diff %.3g (tol %.0e)%s  %s\n", name, (long long)cases,
           worst, tol, extra_bad ? "  [bad sentinel/status]" : "", ok ? "ok" : "FAIL");
    g_groups++;
    g_cases += cases;
    if (!ok)
        g_failures++;
}

void report_isa(const char *what, int path, int64_t cases, double worst, double tol,
                int64_t bad)
{
    char name[96];
    snprintf(name, sizeof name, "%s (%s)", what, path_name(path));
    report(name, cases, worst, tol, bad);
}

void expect_status(const char *what, sb_status got, sb_status want, int64_t *bad)
{
    if (got != want) {
        printf("  status mismatch in %s: got %d (%s), want %d\n", what, (int)got,
               sb_status_string(got), (int)want);
        (*bad)++;
    }
}

/* ---- kernel paths and threads -------------------------------------------- */

static struct {
    sb_isa isa;
    int avx512_source;
} g_isas[MAX_PATHS];
int g_n_isas = 0;
const int g_threads[N_THREADS] = {1, 2, 3};

const char *path_name(int path)
{
    return g_isas[path].avx512_source ? "avx512-source-on-avx2" : sb_isa_name(g_isas[path].isa);
}

sb_isa path_isa(int path)
{
    return g_isas[path].isa;
}

static void add_path(sb_isa isa, int avx512_source)
{
    g_isas[g_n_isas].isa = isa;
    g_isas[g_n_isas].avx512_source = avx512_source;
    g_n_isas++;
}

/* The paths of this build and CPU; an ISA it lacks must be refused. */
static void find_isas(void)
{
    int64_t bad = 0;
    add_path(SB_ISA_SCALAR, 0);
    if (sb_isa_available(SB_ISA_AVX2)) {
        add_path(SB_ISA_AVX2, 0);
        add_path(SB_ISA_AVX2, 1);
    } else {
        expect_status("set_isa(avx2) without AVX2", sb_set_isa(SB_ISA_AVX2), SB_ERR_ARGUMENT,
                      &bad);
        bad += sb_test_use_avx512_source_on_avx2(1) != -1;
    }
    if (sb_isa_available(SB_ISA_AVX512))
        add_path(SB_ISA_AVX512, 0);
    else
        expect_status("set_isa(avx512) without AVX-512", sb_set_isa(SB_ISA_AVX512),
                      SB_ERR_ARGUMENT, &bad);
    printf("kernel paths checked:");
    for (int i = 0; i < g_n_isas; i++)
        printf(" %s", path_name(i));
    printf("  (best ISA on this CPU: %s)\n", sb_isa_name(sb_isa_best()));
    bad += !sb_isa_available(SB_ISA_SCALAR) || !sb_isa_available(sb_isa_best());
    report("isa dispatch", g_n_isas, 0.0, 0.0, bad);
}

void use_isa(int path, int64_t *bad)
{
    expect_status("sb_set_isa", sb_set_isa(g_isas[path].isa), SB_OK, bad);
    *bad += sb_get_isa() != g_isas[path].isa;
    if (g_isas[path].avx512_source || sb_isa_available(SB_ISA_AVX2))
        *bad += sb_test_use_avx512_source_on_avx2(g_isas[path].avx512_source) != 0;
}

void use_threads(int n, int64_t *bad)
{
    if (sb_set_num_threads(n) != 0) {
        printf("  sb_set_num_threads(%d) failed\n", n);
        (*bad)++;
    }
}

/* ---- the program --------------------------------------------------------- */

void test_begin(const char *program)
{
    printf("== %s\n", program);
    find_isas();
}

int test_end(void)
{
    int64_t bad = 0;
    use_isa(0, &bad);
    use_threads(1, &bad);
    if (bad) {
        printf("restoring the scalar path on 1 thread failed\n");
        g_failures++;
    }
    printf("%lld check groups, %lld cases\n", (long long)g_groups, (long long)g_cases);
    if (g_failures) {
        printf("%d check group(s) FAILED\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}

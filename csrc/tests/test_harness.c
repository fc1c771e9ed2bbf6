/*
 * test_harness.c -- the shared part of the standalone C tests of the kernels
 * (contract in test_harness.h; the per-type buffers and comparisons are
 * test_harness_typed.h). Plain C99 plus the thread pool; no Python.
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

/* A generator of its own, seeded: 52 random mantissa bits per value. */
static uint64_t g_drng = 0x2545F4914F6CDD1Dull;

double drand(void)
{
    g_drng ^= g_drng << 13;
    g_drng ^= g_drng >> 7;
    g_drng ^= g_drng << 17;
    return (double)(g_drng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

int64_t irand(int64_t lo, int64_t hi)
{
    return lo + (int64_t)((frand() + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

int64_t map_floats(const sb_fmap *m)
{
    return m->n * m->batch_stride;
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

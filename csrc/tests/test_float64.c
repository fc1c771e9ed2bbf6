/*
 * test_float64.c -- the float64 kernels (sb_<op>_f64: the float32 sources
 * compiled for double, sb_real_begin.h) against their __ref and formulas,
 * on every kernel path this CPU has and on 1, 2 and 3 threads:
 *
 *   - the GEMM micro-kernels (gemm_ukernel.h), called directly: the 6 x 8
 *     one-panel gemm / igemm / pixgemm of each ISA against the scalar one
 *     and against their contract written out (one FMA per term on AVX2,
 *     exact; product and sum rounded apart on the scalar one), igemm with
 *     scattered rows and pixgemm through six pointers against gemm of the
 *     same ISA bit for bit; the two-panel 6 x 16 wide kernels (the AVX-512
 *     build when the CPU has AVX-512F, its source compiled for AVX2 when it
 *     has AVX2) against two calls of the one-panel AVX2 kernel bit for bit;
 *     kc 0, 1, odd, 255..257, accumulate on and off, columns past the tile
 *     untouched; and which kernels sb_*_f64_ukernel_for / _wide_ukernel_for
 *     hand each path;
 *   - sb_conv2d_f64 (one call) and sb_conv2d_f64_packed against
 *     sb_conv2d_f64__ref: groups, depthwise, stride, dilation, padding,
 *     1x1 / 3x3 / 5x5 / 7x7, the 6 x 8 tile and the 96-column and 256-row
 *     blocks hit exactly and off by one, channel slices (batch_stride >
 *     C*H*W), N = 0, both orientations (channel rows, pixel rows), NaN-
 *     prefilled outputs with sentinels between images; the fusions (input
 *     BatchNorm scale/shift + ReLU, ReLU alone, folded BatchNorm, residual,
 *     ReLU) against the reference composition, on 1, 2 and 3 threads;
 *   - sb_linear_f64 and sb_linear_f64_packed against sb_linear_f64__ref;
 *   - sb_batch_norm_{stats,fold,update_running,apply,add_relu}_f64 against
 *     their __ref, their formulas and a long double computation;
 *   - sb_max_pool2d_f64, sb_adaptive_avg_pool2d_f64, and sb_relu / sigmoid
 *     / add_relu / channel_scale_f64 against their __ref, NaN, +-inf and
 *     -0.0 in the inputs, in place where allowed;
 *   - a few argument errors: the f64 kernels and references give the
 *     statuses the contract names.
 * Inputs are random doubles with (nearly) full 53-bit mantissas, so
 * products round: float-valued inputs would make every double product
 * exact and FMA and separate rounding indistinguishable.
 *
 * Tolerances, in one place:
 *   TOL_UK        micro-kernels against the scalar one (and the scalar one
 *                 against its separately rounded formula, exact with GCC's
 *                 ISO C mode), |a - b| / (1 + sum of |terms|): FMA against
 *                 separate rounding over up to 257 terms, a few ulp;
 *   TOL_SUM       convolution and Linear against their references,
 *                 |fast - ref| / (1 + mag), mag the same op on |inputs|:
 *                 sums of up to a few thousand products in another order
 *                 (K blocks, lanes, FMA);
 *   TOL_ACCUM     BatchNorm statistics against the reference's summation
 *                 order and against long double, fold / update_running /
 *                 the mean against long double, the global average pool
 *                 against its reference: double sums in another order,
 *                 relative to the magnitude of the summed terms;
 *   TOL_BN_APPLY  BatchNorm apply / add_relu against their fma __ref: the
 *                 float64 kernels round the product and the sum apart on
 *                 every path, |fast - ref| / (1 + |x*s| + |t| (+ |r|));
 *   TOL_SIGMOID   the AVX2 sigmoid (its own vector exp) against the
 *                 reference's libm exp, |fast - ref| (values in [0, 1]); the
 *                 scalar path is the reference's formula, bit for bit, and
 *                 every path gives the same bits for every thread count;
 *   exact         AVX2 micro-kernels against their FMA formula; igemm /
 *                 pixgemm against gemm; wide against two one-panel calls;
 *                 between orientations, thread counts and the FMA paths
 *                 (avx2, avx512-source-on-avx2, avx512 run the same sums);
 *                 one-call convolution against the packed path; a fused
 *                 convolution against its layer-by-layer twin; BatchNorm
 *                 apply / add_relu against x * s + t rounded twice, fold and
 *                 update_running against their formulas; max pool, the
 *                 windowed average pool, relu, the scalar sigmoid, add_relu,
 *                 channel_scale against their references; statuses,
 *                 sentinels, unmodified inputs.
 */
#include <float.h>

#include "test_harness.h"
#include "../kernels/gemm_ukernel.h" /* internal: micro-kernels, orientation switch */

#define TOL_UK (4.0 * DBL_EPSILON)
#define TOL_SUM 1e-13
#define TOL_ACCUM 1e-13
#define TOL_BN_APPLY (2.0 * DBL_EPSILON)
#define TOL_SIGMOID (4.0 * DBL_EPSILON)

/* ---- double helpers (the harness's buffers and comparisons are float) ---- */

/* xorshift64 of its own, seeded: 52 random mantissa bits per value. */
static uint64_t g_drng = 0x2545F4914F6CDD1Dull;

static double drand(void) /* uniform in [-1, 1), multiples of 2^-52 */
{
    g_drng ^= g_drng << 13;
    g_drng ^= g_drng >> 7;
    g_drng ^= g_drng << 17;
    return (double)(g_drng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static double *alloc_d(int64_t count)
{
    double *p = count > 0 ? malloc((size_t)count * sizeof(double)) : NULL;
    if (count > 0 && p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void fill_rand_d(double *p, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = drand();
}

static void fill_val_d(double *p, int64_t count, double v)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = v;
}

static void copy_d(double *dst, const double *src, int64_t count)
{
    if (count > 0)
        memcpy(dst, src, (size_t)count * sizeof(double));
}

static double *dup_d(const double *src, int64_t count)
{
    double *p = alloc_d(count);
    copy_d(p, src, count);
    return p;
}

static double *abs_dup_d(const double *src, int64_t count)
{
    double *p = dup_d(src, count);
    for (int64_t i = 0; i < count; i++)
        p[i] = fabs(p[i]);
    return p;
}

/* NaN over each image's payload, SENTINEL in the gaps (as prefill_map). */
static void prefill_map_d(double *y, const sb_fmap *m)
{
    const int64_t chw = m->c * m->h * m->w;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = 0; i < m->batch_stride; i++)
            y[n * m->batch_stride + i] = i < chw ? NAN : (double)SENTINEL;
}

static int64_t count_bad_gaps_d(const double *y, const sb_fmap *m)
{
    int64_t bad = 0;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = m->c * m->h * m->w; i < m->batch_stride; i++)
            bad += y[n * m->batch_stride + i] != (double)SENTINEL;
    return bad;
}

/* Bitwise equality, any two NaNs equal. */
static int same_double(double a, double b)
{
    if (a != a || b != b)
        return a != a && b != b;
    return memcmp(&a, &b, sizeof a) == 0;
}

static int64_t count_not_same_d(const double *a, const double *b, int64_t count)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < count; i++)
        bad += !same_double(a[i], b[i]);
    return bad;
}

static int64_t count_not_same_maps_d(const double *a, const sb_fmap *am, const double *b,
                                     const sb_fmap *bm)
{
    const int64_t chw = am->c * am->h * am->w;
    int64_t bad = 0;
    for (int64_t n = 0; n < am->n; n++)
        bad += count_not_same_d(a + n * am->batch_stride, b + n * bm->batch_stride, chw);
    return bad;
}

/* |fast - ref| / (1 + |mag|); 0 for two NaNs or equal infinities, inf for
 * a NaN or infinity on one side only. */
static double scaled_diff(double fast, double ref, double mag)
{
    if (fast != fast || ref != ref)
        return (fast != fast && ref != ref) ? 0.0 : INFINITY;
    if (isinf(fast) || isinf(ref))
        return fast == ref ? 0.0 : INFINITY;
    return fabs(fast - ref) / (1.0 + fabs(mag));
}

/* max scaled_diff; mag NULL: relative to 1 + |ref|. */
static double max_scaled_d(const double *fast, const double *ref, const double *mag,
                           int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++) {
        const double d = scaled_diff(fast[i], ref[i], mag != NULL ? mag[i] : ref[i]);
        if (!(d <= m))
            m = d; /* also picks up NaN / inf */
    }
    return m;
}

static void keep_worst(double *worst, double d)
{
    if (!(d <= *worst))
        *worst = d;
}

/* NaN, +-inf and -0.0 at random places (about `rate` of them). */
static void sprinkle_specials_d(double *x, int64_t count, double rate)
{
    for (int64_t i = 0; i < count; i++)
        if ((drand() + 1.0) * 0.5 < rate) {
            const double u = drand();
            x[i] = u > 0.5 ? NAN : u > 0.0 ? INFINITY : u > -0.5 ? -INFINITY : -0.0;
        }
}

/* torch.relu: v < 0 ? 0 : v keeps NaN and -0.0. */
static double relu_d(double v)
{
    return v < 0.0 ? 0.0 : v;
}

/* ---- GEMM micro-kernels -------------------------------------------------- */

enum { UK_MR = SB_CONV_MR, UK_NR = SB_CONV_NR_F64, UK_KMAX = 257 };
static const int64_t uk_kcs[] = {0, 1, 2, 3, 7, 8, 16, 255, 256, 257};
#define N_UK_KCS ((int)(sizeof uk_kcs / sizeof uk_kcs[0]))

typedef struct {
    const char *name;
    sb_gemm_f64_ukernel gemm;
    sb_igemm_f64_ukernel igemm;
    sb_pixgemm_f64_ukernel pixgemm;
    int fma; /* one FMA per term (the vector kernels) */
} uk_variant;

/* The one-panel kernels this build and CPU have: scalar, and AVX2. */
static int one_panel_variants(uk_variant v[2])
{
    v[0].name = "scalar";
    v[0].gemm = sb_gemm_f64_ukernel__scalar;
    v[0].igemm = sb_igemm_f64_ukernel__scalar;
    v[0].pixgemm = sb_pixgemm_f64_ukernel__scalar;
    v[0].fma = 0;
    int n = 1;
#ifdef SB_HAVE_AVX2_KERNELS
    if (sb_isa_available(SB_ISA_AVX2)) {
        v[1].name = "avx2";
        v[1].gemm = sb_gemm_f64_ukernel__avx2;
        v[1].igemm = sb_igemm_f64_ukernel__avx2;
        v[1].pixgemm = sb_pixgemm_f64_ukernel__avx2;
        v[1].fma = 1;
        n = 2;
    }
#endif
    return n;
}

/* One tile entry by the contract (gemm_ukernel.h): sum over p ascending of
 * a[p*lda] * b[p*ldb], from 0, one FMA per term (fused) or the product and
 * the sum rounded apart, then + c when accumulating. *mag: the sum of the
 * terms' magnitudes. (Two statements: ISO C never contracts across them.) */
static double uk_formula(int64_t kc, const double *a, int64_t lda, const double *b,
                         int64_t ldb, double c, int accumulate, int fused, double *mag)
{
    double acc = 0.0, m = 0.0;
    for (int64_t p = 0; p < kc; p++) {
        const double x = a[p * lda], y = b[p * ldb];
        if (fused) {
            acc = fma(x, y, acc);
        } else {
            const double prod = x * y;
            acc = acc + prod;
        }
        m += fabs(x * y);
    }
    if (accumulate) {
        acc = acc + c;
        m += fabs(c);
    }
    *mag = m;
    return acc;
}

/* The one-panel kernels of each ISA: gemm against its formula (exact for
 * the FMA kernels) and against the scalar gemm (TOL_UK); igemm with its B
 * rows scattered at odd offsets and pixgemm through six pixel pointers
 * against gemm of the same ISA on the same numbers, bit for bit; columns
 * past the tile untouched. */
static void test_ukernels_one_panel(void)
{
    enum { MR = UK_MR, NR = UK_NR, KMAX = UK_KMAX, LDC = NR + 3 };
    uk_variant v[2];
    const int nv = one_panel_variants(v);
    const int64_t spread = NR + 5; /* scattered rows: 8 doubles every 13 */
    double *a = alloc_d(KMAX * MR), *b = alloc_d(KMAX * NR);
    double *scattered = alloc_d(KMAX * spread + 3);
    int64_t offsets[KMAX], poff[KMAX];
    fill_rand_d(a, KMAX * MR);
    fill_rand_d(b, KMAX * NR);
    fill_val_d(scattered, KMAX * spread + 3, SENTINEL);
    for (int64_t p = 0; p < KMAX; p++) {
        offsets[p] = 1 + p * spread + (p % 3); /* odd, uneven: never 32-byte aligned */
        memcpy(scattered + offsets[p], b + p * NR, NR * sizeof(double));
    }
    /* pixel rows: six pointers into src (two may share values), one offset
     * per k; a_pix holds the same values k-major, as gemm takes them */
    const int64_t src_count = 3 * KMAX + 64;
    double *src = alloc_d(src_count), *a_pix = alloc_d(KMAX * MR);
    const double *pixels[MR];
    fill_rand_d(src, src_count);
    for (int i = 0; i < MR; i++)
        pixels[i] = src + 7 * i + (i == 5 ? 2 : 0);
    for (int64_t p = 0; p < KMAX; p++) {
        poff[p] = 3 * p - (p % 2);
        for (int i = 0; i < MR; i++)
            a_pix[p * MR + i] = pixels[i][poff[p]];
    }
    double *c_init = alloc_d(MR * LDC), *c_g = alloc_d(MR * LDC), *c_i = alloc_d(MR * LDC);
    double *c_p = alloc_d(MR * LDC), *c_gp = alloc_d(MR * LDC);
    double *c_s = alloc_d(MR * LDC), *c_sp = alloc_d(MR * LDC);
    fill_rand_d(c_init, MR * LDC);

    for (int s = 0; s < nv; s++) {
        int64_t cases = 0, bad = 0;
        double worst_formula = 0.0, worst_scalar = 0.0;
        for (int ki = 0; ki < N_UK_KCS; ki++) {
            const int64_t kc = uk_kcs[ki];
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                copy_d(c_g, c_init, MR * LDC);
                copy_d(c_i, c_init, MR * LDC);
                copy_d(c_p, c_init, MR * LDC);
                copy_d(c_gp, c_init, MR * LDC);
                copy_d(c_s, c_init, MR * LDC);
                copy_d(c_sp, c_init, MR * LDC);
                v[s].gemm(kc, a, b, c_g, LDC, accumulate);
                v[s].igemm(kc, a, scattered, offsets, c_i, LDC, accumulate);
                v[s].pixgemm(kc, pixels, poff, b, 0, c_p, LDC, accumulate);
                v[s].gemm(kc, a_pix, b, c_gp, LDC, accumulate);
                v[0].gemm(kc, a, b, c_s, LDC, accumulate);
                v[0].pixgemm(kc, pixels, poff, b, 0, c_sp, LDC, accumulate);
                bad += count_not_same_d(c_g, c_i, MR * LDC);  /* igemm == gemm */
                bad += count_not_same_d(c_p, c_gp, MR * LDC); /* pixgemm == gemm */
                for (int r = 0; r < MR; r++) {
                    for (int j = 0; j < LDC; j++) {
                        const int64_t at = r * LDC + j;
                        if (j >= NR) { /* past the tile: untouched */
                            bad += !same_double(c_g[at], c_init[at]);
                            bad += !same_double(c_p[at], c_init[at]);
                            continue;
                        }
                        double mag, mag_p;
                        const double f = uk_formula(kc, a + r, MR, b + j, NR, c_init[at],
                                                    accumulate, v[s].fma, &mag);
                        const double fp = uk_formula(kc, a_pix + r, MR, b + j, NR, c_init[at],
                                                     accumulate, v[s].fma, &mag_p);
                        if (v[s].fma) { /* one FMA per term: exactly the formula */
                            bad += !same_double(c_g[at], f);
                            bad += !same_double(c_p[at], fp);
                        }
                        keep_worst(&worst_formula, scaled_diff(c_g[at], f, mag));
                        keep_worst(&worst_formula, scaled_diff(c_p[at], fp, mag_p));
                        keep_worst(&worst_scalar, scaled_diff(c_g[at], c_s[at], mag));
                        keep_worst(&worst_scalar, scaled_diff(c_p[at], c_sp[at], mag_p));
                    }
                }
                cases++;
            }
        }
        char name[96];
        snprintf(name, sizeof name, "f64 6x8 ukernels vs %s formula (%s)",
                 v[s].fma ? "FMA" : "rounded", v[s].name);
        report(name, cases, worst_formula, v[s].fma ? 0.0 : TOL_UK, bad);
        if (s > 0) {
            snprintf(name, sizeof name, "f64 6x8 ukernels vs scalar (%s)", v[s].name);
            report(name, cases, worst_scalar, TOL_UK, 0);
        }
    }
    free(a); free(b); free(scattered); free(src); free(a_pix);
    free(c_init); free(c_g); free(c_i); free(c_p); free(c_gp); free(c_s); free(c_sp);
}

#ifdef SB_HAVE_AVX2_KERNELS
/* The two-panel (6 x 16 doubles) kernels against two calls of the AVX2
 * one-panel kernel, bit for bit, the whole C buffer compared (columns past
 * the 16 untouched): the AVX-512 build when the CPU has AVX-512F, its
 * source compiled for AVX2 on any AVX2 CPU. */
static void test_ukernels_wide(void)
{
    enum { MR = UK_MR, NR = UK_NR, KMAX = UK_KMAX, LDC = 2 * NR + 5 };
    if (!sb_isa_available(SB_ISA_AVX2))
        return;
    struct {
        const char *name;
        sb_igemm_f64_ukernel igemm;
        sb_pixgemm_f64_ukernel pix;
        sb_gemm_f64_wide_ukernel gemm;
    } w[2];
    int nw = 0;
    w[nw].name = "avx512-source-on-avx2";
    w[nw].igemm = sb_igemm_f64_ukernel_wide__avx512_source_on_avx2;
    w[nw].pix = sb_pixgemm_f64_ukernel_wide__avx512_source_on_avx2;
    w[nw].gemm = sb_gemm_f64_ukernel_wide__avx512_source_on_avx2;
    nw++;
    if (sb_isa_available(SB_ISA_AVX512)) {
        w[nw].name = "avx512";
        w[nw].igemm = sb_igemm_f64_ukernel_wide__avx512;
        w[nw].pix = sb_pixgemm_f64_ukernel_wide__avx512;
        w[nw].gemm = sb_gemm_f64_ukernel_wide__avx512;
        nw++;
    }
    const int64_t spread = 2 * NR + 7; /* rows of 16 doubles at odd offsets */
    const int64_t src_count = KMAX * spread + 3;
    double *a = alloc_d(KMAX * MR), *src = alloc_d(src_count);
    double *c_init = alloc_d(MR * LDC), *c_pair = alloc_d(MR * LDC), *c_wide = alloc_d(MR * LDC);
    int64_t offsets[KMAX], poff[KMAX];
    fill_rand_d(a, KMAX * MR);
    fill_rand_d(src, src_count);
    fill_rand_d(c_init, MR * LDC);
    for (int64_t p = 0; p < KMAX; p++) {
        offsets[p] = 3 + p * spread - (p % 2);
        poff[p] = p * 2 + (p % 5); /* max 2*256 + 4 + 1 + 25 < src_count */
    }
    const int64_t w_next = KMAX * NR + 9; /* the second panel, odd distance */
    double *wts = alloc_d(2 * w_next);
    fill_rand_d(wts, 2 * w_next);
    const double *pixels[MR];
    for (int i = 0; i < MR; i++)
        pixels[i] = src + 1 + 5 * i;
    for (int k = 0; k < nw; k++) {
        int64_t cases = 0, bad_i = 0, bad_p = 0, bad_g = 0;
        for (int ki = 0; ki < N_UK_KCS; ki++) {
            const int64_t kc = uk_kcs[ki];
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                copy_d(c_pair, c_init, MR * LDC);
                copy_d(c_wide, c_init, MR * LDC);
                sb_igemm_f64_ukernel__avx2(kc, a, src, offsets, c_pair, LDC, accumulate);
                sb_igemm_f64_ukernel__avx2(kc, a, src + NR, offsets, c_pair + NR, LDC, accumulate);
                w[k].igemm(kc, a, src, offsets, c_wide, LDC, accumulate);
                bad_i += count_not_same_d(c_pair, c_wide, MR * LDC);
                copy_d(c_pair, c_init, MR * LDC);
                copy_d(c_wide, c_init, MR * LDC);
                sb_pixgemm_f64_ukernel__avx2(kc, pixels, poff, wts, 0, c_pair, LDC, accumulate);
                sb_pixgemm_f64_ukernel__avx2(kc, pixels, poff, wts + w_next, 0, c_pair + NR, LDC,
                                             accumulate);
                w[k].pix(kc, pixels, poff, wts, w_next, c_wide, LDC, accumulate);
                bad_p += count_not_same_d(c_pair, c_wide, MR * LDC);
                /* two packed panels (Linear) w_next apart */
                copy_d(c_pair, c_init, MR * LDC);
                copy_d(c_wide, c_init, MR * LDC);
                sb_gemm_f64_ukernel__avx2(kc, a, wts, c_pair, LDC, accumulate);
                sb_gemm_f64_ukernel__avx2(kc, a, wts + w_next, c_pair + NR, LDC, accumulate);
                w[k].gemm(kc, a, wts, w_next, c_wide, LDC, accumulate);
                bad_g += count_not_same_d(c_pair, c_wide, MR * LDC);
                cases++;
            }
        }
        char name[96];
        snprintf(name, sizeof name, "f64 igemm 6x16 == 2x avx2 6x8 (%s)", w[k].name);
        report(name, cases, bad_i ? 1.0 : 0.0, 0.0, bad_i);
        snprintf(name, sizeof name, "f64 pixgemm 6x16 == 2x avx2 6x8 (%s)", w[k].name);
        report(name, cases, bad_p ? 1.0 : 0.0, 0.0, bad_p);
        snprintf(name, sizeof name, "f64 packed gemm 6x16 == 2x avx2 6x8 (%s)", w[k].name);
        report(name, cases, bad_g ? 1.0 : 0.0, 0.0, bad_g);
    }
    free(a); free(src); free(c_init); free(c_pair); free(c_wide); free(wts);
}
#endif

/* The kernels each path's convolution and Linear get: scalar on the scalar
 * path, the AVX2 one-panel kernels under AVX2 and AVX-512; the wide ones
 * the AVX-512 build under AVX-512, its AVX2 compilation under AVX2 with
 * the tests' switch on, none otherwise. */
static void test_ukernel_selection(void)
{
    int64_t bad = 0;
    for (int path = 0; path < g_n_isas; path++) {
        use_isa(path, &bad);
        const sb_isa isa = sb_get_isa();
        sb_gemm_f64_ukernel gemm = sb_gemm_f64_ukernel__scalar;
        sb_igemm_f64_ukernel igemm = sb_igemm_f64_ukernel__scalar, igemm_wide = NULL;
        sb_pixgemm_f64_ukernel pix = sb_pixgemm_f64_ukernel__scalar, pix_wide = NULL;
        sb_gemm_f64_wide_ukernel gemm_wide = NULL;
#ifdef SB_HAVE_AVX2_KERNELS
        if (isa != SB_ISA_SCALAR) {
            gemm = sb_gemm_f64_ukernel__avx2;
            igemm = sb_igemm_f64_ukernel__avx2;
            pix = sb_pixgemm_f64_ukernel__avx2;
        }
        if (isa == SB_ISA_AVX512) {
            igemm_wide = sb_igemm_f64_ukernel_wide__avx512;
            pix_wide = sb_pixgemm_f64_ukernel_wide__avx512;
            gemm_wide = sb_gemm_f64_ukernel_wide__avx512;
        } else if (isa == SB_ISA_AVX2 && strcmp(path_name(path), "avx512-source-on-avx2") == 0) {
            igemm_wide = sb_igemm_f64_ukernel_wide__avx512_source_on_avx2;
            pix_wide = sb_pixgemm_f64_ukernel_wide__avx512_source_on_avx2;
            gemm_wide = sb_gemm_f64_ukernel_wide__avx512_source_on_avx2;
        }
#endif
        const int64_t b = (sb_gemm_f64_ukernel_for(isa) != gemm) +
                          (sb_igemm_f64_ukernel_for(isa) != igemm) +
                          (sb_pixgemm_f64_ukernel_for(isa) != pix) +
                          (sb_igemm_f64_wide_ukernel_for(isa) != igemm_wide) +
                          (sb_pixgemm_f64_wide_ukernel_for(isa) != pix_wide) +
                          (sb_gemm_f64_wide_ukernel_for(isa) != gemm_wide);
        if (b)
            printf("  f64 ukernel selection on %s: %lld wrong\n", path_name(path), (long long)b);
        bad += b;
    }
    use_isa(0, &bad);
    report("f64 ukernel selection per path", g_n_isas * 6, bad ? 1.0 : 0.0, 0.0, bad);
}

/* ---- Conv2d --------------------------------------------------------------- */

typedef struct {
    int64_t n, cin, cout, h, w, kh, kw, sh, sw, ph, pw, dh, dw, g;
    int64_t in_extra, out_extra; /* batch_stride - C*H*W */
    int bias;
} conv_case;

/* The exact checks of the convolution, counted over every case. */
typedef struct {
    int64_t orient;  /* pixel rows != channel rows */
    int64_t onecall; /* sb_conv2d_f64 != the packed path, no fusion, 1 thread */
    int64_t cross;   /* an FMA path != the first FMA path */
    int64_t split;   /* 2 or 3 threads != 1 thread */
    int64_t twin;    /* fused != layer by layer */
    int64_t runs, fma_runs, split_runs, twin_runs;
} conv_exact;

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

static int first_fma_path(void)
{
    for (int i = 0; i < g_n_isas; i++)
        if (path_isa(i) != SB_ISA_SCALAR)
            return i;
    return -1;
}

/* One case through sb_conv2d_f64 on every path and both orientations,
 * against the reference; the one-call against sb_conv2d_f64_packed with no
 * fusion on one thread, orientations and FMA paths against each other. */
static void run_conv(const conv_case *t, double worst[], int64_t bad[], conv_exact *ex)
{
    sb_conv2d_params p;
    sb_fmap in, out;
    if (!conv_geometry(t, &p, &in, &out))
        return;
    const int64_t cig = t->cin / t->g;
    const int64_t in_count = map_floats(&in), out_count = map_floats(&out);
    const int64_t w_count = t->cout * cig * t->kh * t->kw;
    double *x = alloc_d(in_count), *wt = alloc_d(w_count), *bias = alloc_d(t->cout);
    fill_rand_d(x, in_count);
    fill_rand_d(wt, w_count);
    fill_rand_d(bias, t->cout);
    double *x_copy = dup_d(x, in_count);
    const double *bp = t->bias ? bias : NULL;
    double *y_ref = alloc_d(out_count), *y_mag = alloc_d(out_count);
    prefill_map_d(y_ref, &out);
    prefill_map_d(y_mag, &out);
    expect_status("conv f64 ref", sb_conv2d_f64__ref(y_ref, &out, x, &in, wt, bp, &p), SB_OK, &bad[0]);
    double *x_abs = abs_dup_d(x, in_count), *w_abs = abs_dup_d(wt, w_count);
    double *b_abs = abs_dup_d(bias, t->cout);
    expect_status("conv f64 mag", sb_conv2d_f64__ref(y_mag, &out, x_abs, &in, w_abs, t->bias ? b_abs : NULL, &p), SB_OK, &bad[0]);
    const int fma0 = first_fma_path();
    double *y_o0[MAX_PATHS] = {NULL};
    for (int i = 0; i < g_n_isas; i++) {
        use_isa(i, &bad[i]);
        for (int orientation = 0; orientation <= 1; orientation++) {
            sb_test_conv_orientation(orientation);
            double *y = alloc_d(out_count), *y2 = alloc_d(out_count);
            double *ws = alloc_d(sb_conv2d_f64_workspace_elems(&out, &in, &p)); /* exact size */
            prefill_map_d(y, &out);
            expect_status("conv f64", sb_conv2d_f64(y, &out, x, &in, wt, bp, &p, ws), SB_OK, &bad[i]);
            const double d = max_scaled_d(y, y_ref, y_mag, out_count);
            bad[i] += count_bad_gaps_d(y, &out) + count_not_same_d(x, x_copy, in_count);
            char detail[64];
            snprintf(detail, sizeof detail, "%s, %s", path_name(i),
                     orientation ? "pixel rows" : "channel rows");
            if (d > TOL_SUM)
                print_conv_case("conv f64", t, detail, d);
            keep_worst(&worst[i], d);
            /* the one-call is the packed path without fusion on one thread */
            const int64_t pw_count = sb_conv2d_f64_packed_weights_elems(t->cout, cig, t->kh, t->kw, t->g);
            double *packed = alloc_d(pw_count > 0 ? pw_count : 1);
            double *ws2 = alloc_d(sb_conv2d_f64_packed_workspace_elems(&out, &in, &p, NULL, 1));
            expect_status("conv f64 pack", sb_conv2d_f64_pack_weights(packed, wt, bp, NULL, NULL, t->cout, cig, t->kh, t->kw, t->g), SB_OK, &bad[i]);
            prefill_map_d(y2, &out);
            expect_status("conv f64 packed", sb_conv2d_f64_packed(y2, &out, x, &in, packed, &p, NULL, ws2, 1), SB_OK, &bad[i]);
            if (count_not_same_d(y, y2, out_count)) {
                print_conv_case("conv f64: one-call != packed", t, detail, 0.0);
                ex->onecall++;
            }
            ex->runs++;
            if (orientation == 0) {
                y_o0[i] = y;
                y = NULL;
                if (i != fma0 && fma0 >= 0 && path_isa(i) != SB_ISA_SCALAR) {
                    ex->fma_runs++;
                    if (count_not_same_d(y_o0[i], y_o0[fma0], out_count)) {
                        print_conv_case("conv f64: FMA paths differ", t, detail, 0.0);
                        ex->cross++;
                    }
                }
            } else if (count_not_same_d(y, y_o0[i], out_count)) {
                print_conv_case("conv f64: orientations differ", t, detail, 0.0);
                ex->orient++;
            }
            free(y); free(y2); free(ws); free(ws2); free(packed);
        }
        sb_test_conv_orientation(-1);
    }
    for (int i = 0; i < g_n_isas; i++)
        free(y_o0[i]);
    free(x); free(wt); free(bias); free(x_copy); free(y_ref); free(y_mag);
    free(x_abs); free(w_abs); free(b_abs);
}

static void test_conv(conv_exact *ex)
{
    double worst[MAX_PATHS] = {0.0};
    int64_t cases = 0, bad[MAX_PATHS] = {0};
    /* The float64 blocking: the 6 x 8 register tile (MR output channels or
     * pixels by NR = 8 columns), column blocks of up to 96 (12 panels) and
     * K blocks of up to 256, each hit exactly, just below and just above;
     * pixel-row panels of 8 output channels, paired by the wide kernels. */
    static const conv_case fixed[] = {
        /* n cin cout  h  w kh kw sh sw ph pw dh dw  g  ie oe bias */
        {2,   3,  16, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* stem 3x3 */
        {1,   3,   8, 31, 29, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0, 0, 1},   /* ResNet stem 7x7 */
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
        {1,  64,  24, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* K = 576: 3 K blocks */
        {1,  40,  70, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* 70 = 11 MR + 4 = 8 NR + 6 */
        {1,   5,   6,  2,  4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* C_out = MR, 8 px = NR */
        {1,   5,   5,  1,  7, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* MR - 1, NR - 1 */
        {1,   5,  13,  9,  1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 2 MR + 1, NR + 1 */
        {1,   5,  16,  4,  4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 2 NR channels, 2 NR px */
        {1,   5,  24,  4,  5, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 3 panels: wide + one */
        {1,   3,   5,  6, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* 192 px = 2 NC */
        {1,   3,   5,  1, 193, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},  /* 2 NC + 1 */
        {1,   3,   5,  1, 191, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},  /* 2 NC - 1 */
        {2,   3,   7,  4, 94, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* padded row Wp = NC */
        {2, 256,   7,  3,  3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* K = KC */
        {1, 257,   7,  3,  5, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 5, 1},   /* K = KC + 1 */
        {1, 255,  17,  3,  3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1},   /* K = KC - 1 */
        {1,  17,   9,  7,  6, 4, 4, 1, 1, 0, 0, 1, 1, 1, 3, 0, 1},   /* K = 272, unpadded 4x4 */
        {2,   3,   7,  9, 15, 3, 1, 1, 1, 0, 0, 2, 1, 1, 0, 0, 1},   /* 3x1 dilated, read in place */
        {1,   6,   4, 13, 11, 3, 3, 2, 3, 0, 0, 2, 1, 2, 0, 0, 1},   /* strided, unpadded, phase planes */
        {1,  24,  40, 11, 12, 5, 5, 1, 1, 2, 2, 1, 1, 1, 0, 0, 1},   /* 5x5, K = 600, 5 panels */
        {1, 100,  20,  6,  6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},   /* K = 900 */
        {1, 400,   9,  4,  4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 3, 1},   /* K = 3600 */
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        run_conv(&fixed[i], worst, bad, ex);
        cases++;
    }
    /* Random small cases covering every parameter at once. */
    for (int it = 0; it < 600; it++) {
        conv_case t;
        t.g = irand(1, 4);
        t.cin = t.g * irand(1, 4);
        t.cout = t.g * irand(1, 6);
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
        if (it % 7 == 0) { /* the unstaged 1x1 path often */
            t.kh = t.kw = t.sh = t.sw = 1;
            t.ph = t.pw = 0;
        }
        if (sb_conv2d_out_size(t.h, t.kh, t.sh, t.ph, t.dh) <= 0 ||
            sb_conv2d_out_size(t.w, t.kw, t.sw, t.pw, t.dw) <= 0)
            continue;
        run_conv(&t, worst, bad, ex);
        cases++;
    }
    for (int i = 0; i < g_n_isas; i++)
        report_isa("conv2d_f64 vs ref", i, cases, worst[i], TOL_SUM, bad[i]);

    /* NaN / inf in the input propagate (nothing skipped on zeros). */
    for (int i = 0; i < g_n_isas; i++) {
        sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1};
        sb_fmap in = {1, 3, 6, 7, 126}, out = {1, 4, 6, 7, 168};
        double x[126], wt[4 * 27], y[168], y_ref[168];
        int64_t b = 0;
        fill_rand_d(x, 126);
        fill_rand_d(wt, 4 * 27);
        x[1 * 42 + 3 * 7 + 3] = NAN; /* channel 1, (3, 3) */
        x[0] = 0.0;
        wt[2 * 27 + 0 * 9 + 4] = INFINITY; /* oc 2, ci 0, centre tap: hits x[0] = 0 at (0, 0) */
        use_isa(i, &b);
        for (int orientation = 0; orientation <= 1; orientation++) {
            sb_test_conv_orientation(orientation);
            double *ws = alloc_d(sb_conv2d_f64_workspace_elems(&out, &in, &p));
            fill_val_d(y, 168, NAN);
            expect_status("conv f64 nan", sb_conv2d_f64(y, &out, x, &in, wt, NULL, &p, ws), SB_OK, &b);
            expect_status("conv f64 nan ref", sb_conv2d_f64__ref(y_ref, &out, x, &in, wt, NULL, &p), SB_OK, &b);
            for (int oc = 0; oc < 4; oc++) /* every output channel sees the NaN at (3,3) */
                b += !(y[oc * 42 + 3 * 7 + 3] != y[oc * 42 + 3 * 7 + 3]);
            b += !(y[2 * 42] != y[2 * 42]); /* inf * 0 = NaN */
            const double d = max_scaled_d(y, y_ref, NULL, 168);
            b += !(d <= TOL_SUM);
            free(ws);
        }
        sb_test_conv_orientation(-1);
        report_isa("conv2d_f64 NaN/inf propagation", i, 2, 0.0, 0.0, b);
    }
}

typedef struct {
    conv_case c;
    int in_transform; /* 0 none, 1 in_scale/in_shift, 2 that + in_relu, 3 in_relu alone */
    int residual;     /* residual given, its batch_stride = C*H*W + res_extra */
    int64_t res_extra;
    int out_relu;
    int fold;         /* row_scale / row_shift folded in by pack_weights */
} fused_case;

/* One fused case on every path, both orientations and 1, 2, 3 threads:
 * against the reference composition in torch's order (tolerance), and,
 * without a folded BatchNorm, against its layer-by-layer twin bit for bit:
 * the transformed input (x * s + t rounded twice, then torch.relu: what
 * sb_batch_norm_apply_f64 gives on every path) through the packed path
 * without fusion, then (+ residual) and torch.relu. */
static void run_fused(const fused_case *f, double worst[], int64_t bad[], conv_exact *ex)
{
    const conv_case *t = &f->c;
    sb_conv2d_params p;
    sb_fmap in, out;
    if (!conv_geometry(t, &p, &in, &out))
        return;
    const int64_t cig = t->cin / t->g, hw = in.h * in.w, ohw = out.h * out.w;
    const int64_t in_count = map_floats(&in), out_count = map_floats(&out);
    const int64_t w_count = t->cout * cig * t->kh * t->kw;
    const sb_fmap rmap = {out.n, out.c, out.h, out.w, out.c * ohw + f->res_extra};
    const int64_t r_count = map_floats(&rmap);
    double *x = alloc_d(in_count), *wt = alloc_d(w_count), *bias = alloc_d(t->cout);
    double *s_in = alloc_d(t->cin), *t_in = alloc_d(t->cin);
    double *s_row = alloc_d(t->cout), *t_row = alloc_d(t->cout), *res = alloc_d(r_count);
    fill_rand_d(x, in_count);
    fill_rand_d(wt, w_count);
    fill_rand_d(bias, t->cout);
    fill_rand_d(t_in, t->cin); /* shifts that make a wrongly transformed pad nonzero */
    fill_rand_d(t_row, t->cout);
    fill_rand_d(res, r_count);
    for (int64_t c = 0; c < t->cin; c++)
        s_in[c] = 1.5 * drand(); /* some negative: the transform flips signs */
    for (int64_t o = 0; o < t->cout; o++)
        s_row[o] = 0.25 + drand();
    double *x_copy = dup_d(x, in_count), *res_copy = dup_d(res, r_count);
    double *w_abs = abs_dup_d(wt, w_count), *b_abs = abs_dup_d(bias, t->cout);
    const double *bp = t->bias ? bias : NULL;
    const double *in_scale = f->in_transform == 1 || f->in_transform == 2 ? s_in : NULL;
    const double *in_shift = in_scale ? t_in : NULL;
    const int in_relu = f->in_transform >= 2;
    const double *rs = f->fold ? s_row : NULL, *rt = f->fold ? t_row : NULL;
    sb_conv2d_fusion fusion;
    memset(&fusion, 0, sizeof fusion);
    fusion.in_scale = in_scale;
    fusion.in_shift = in_shift;
    fusion.in_relu = in_relu;
    fusion.residual = f->residual ? res : NULL;
    fusion.residual_map = rmap;
    fusion.out_relu = f->out_relu;

    /* the transformed input, over every image's payload */
    double *xt = dup_d(x, in_count);
    for (int64_t n = 0; n < in.n; n++)
        for (int64_t c = 0; c < in.c; c++)
            for (int64_t i = 0; i < hw; i++) {
                double *v = &xt[n * in.batch_stride + c * hw + i];
                if (in_scale != NULL) {
                    const double prod = *v * in_scale[c];
                    *v = prod + in_shift[c];
                }
                if (in_relu)
                    *v = relu_d(*v);
            }
    double *xt_abs = abs_dup_d(xt, in_count);
    /* the reference composition: conv(xt), then row_scale/row_shift, then
     * + residual, then relu; with |.| everywhere the magnitude */
    double *y_ref = alloc_d(out_count), *y_mag = alloc_d(out_count);
    prefill_map_d(y_ref, &out);
    prefill_map_d(y_mag, &out);
    expect_status("fused f64 ref conv", sb_conv2d_f64__ref(y_ref, &out, xt, &in, wt, bp, &p), SB_OK, &bad[0]);
    expect_status("fused f64 mag conv", sb_conv2d_f64__ref(y_mag, &out, xt_abs, &in, w_abs, bp ? b_abs : NULL, &p), SB_OK, &bad[0]);
    for (int64_t n = 0; n < out.n; n++)
        for (int64_t o = 0; o < out.c; o++)
            for (int64_t i = 0; i < ohw; i++) {
                const int64_t at = n * out.batch_stride + o * ohw + i;
                double v = y_ref[at], m = y_mag[at];
                if (rs != NULL) {
                    v = v * rs[o] + rt[o];
                    m = m * fabs(rs[o]) + fabs(rt[o]);
                }
                if (f->residual) {
                    const double r = res[n * rmap.batch_stride + o * ohw + i];
                    v = v + r;
                    m = m + fabs(r);
                }
                if (f->out_relu)
                    v = relu_d(v);
                y_ref[at] = v;
                y_mag[at] = m;
            }

    const int fma0 = first_fma_path();
    double *y_o0[MAX_PATHS] = {NULL}; /* per path: channel rows, 1 thread */
    double *y_one = alloc_d(out_count), *y_twin = alloc_d(out_count);
    for (int orientation = 0; orientation <= 1; orientation++) {
        sb_test_conv_orientation(orientation); /* before packing: the layout follows it */
        const int64_t pw_count = sb_conv2d_f64_packed_weights_elems(t->cout, cig, t->kh, t->kw, t->g);
        double *packed = alloc_d(pw_count > 0 ? pw_count : 1);
        expect_status("fused f64 pack", sb_conv2d_f64_pack_weights(packed, wt, bp, rs, rt, t->cout, cig, t->kh, t->kw, t->g), SB_OK, &bad[0]);
        for (int i = 0; i < g_n_isas; i++) {
            use_isa(i, &bad[i]);
            if (!f->fold) { /* the layer-by-layer twin, on this path */
                use_threads(1, &bad[i]);
                double *ws = alloc_d(sb_conv2d_f64_packed_workspace_elems(&out, &in, &p, NULL, 1));
                prefill_map_d(y_twin, &out);
                expect_status("fused f64 twin", sb_conv2d_f64_packed(y_twin, &out, xt, &in, packed, &p, NULL, ws, 1), SB_OK, &bad[i]);
                for (int64_t n = 0; n < out.n; n++)
                    for (int64_t o = 0; o < out.c; o++)
                        for (int64_t q = 0; q < ohw; q++) {
                            double *v = &y_twin[n * out.batch_stride + o * ohw + q];
                            if (f->residual)
                                *v = *v + res[n * rmap.batch_stride + o * ohw + q];
                            if (f->out_relu)
                                *v = relu_d(*v);
                        }
                free(ws);
            }
            for (int ti = 0; ti < N_THREADS; ti++) {
                const int nt = g_threads[ti];
                use_threads(nt, &bad[i]);
                double *y = alloc_d(out_count);
                double *ws = alloc_d(sb_conv2d_f64_packed_workspace_elems(&out, &in, &p, &fusion, nt));
                prefill_map_d(y, &out);
                expect_status("fused f64 packed", sb_conv2d_f64_packed(y, &out, x, &in, packed, &p, &fusion, ws, nt), SB_OK, &bad[i]);
                const double d = max_scaled_d(y, y_ref, y_mag, out_count);
                bad[i] += count_bad_gaps_d(y, &out) + count_not_same_d(x, x_copy, in_count) +
                          count_not_same_d(res, res_copy, r_count);
                char detail[128];
                snprintf(detail, sizeof detail,
                         "[%s, %s, %d thr, transform %d, res %d, relu %d, fold %d]",
                         path_name(i), orientation ? "pixel rows" : "channel rows", nt,
                         f->in_transform, f->residual, f->out_relu, f->fold);
                if (d > TOL_SUM)
                    print_conv_case("fused f64", t, detail, d);
                keep_worst(&worst[i], d);
                ex->runs++;
                if (ti == 0) {
                    copy_d(y_one, y, out_count);
                    if (!f->fold) {
                        ex->twin_runs++;
                        if (count_not_same_d(y, y_twin, out_count)) {
                            print_conv_case("fused f64: != layer by layer", t, detail, 0.0);
                            ex->twin++;
                        }
                    }
                    if (orientation == 0) {
                        y_o0[i] = dup_d(y, out_count);
                        if (i != fma0 && fma0 >= 0 && path_isa(i) != SB_ISA_SCALAR) {
                            ex->fma_runs++;
                            if (count_not_same_d(y, y_o0[fma0], out_count)) {
                                print_conv_case("fused f64: FMA paths differ", t, detail, 0.0);
                                ex->cross++;
                            }
                        }
                    } else if (count_not_same_d(y, y_o0[i], out_count)) {
                        print_conv_case("fused f64: orientations differ", t, detail, 0.0);
                        ex->orient++;
                    }
                } else {
                    ex->split_runs++;
                    if (count_not_same_d(y, y_one, out_count)) {
                        print_conv_case("fused f64: bits differ from 1 thread", t, detail, 0.0);
                        ex->split++;
                    }
                }
                free(y); free(ws);
            }
        }
        free(packed);
    }
    sb_test_conv_orientation(-1);
    use_threads(1, &bad[0]);
    for (int i = 0; i < g_n_isas; i++)
        free(y_o0[i]);
    free(x); free(wt); free(bias); free(s_in); free(t_in); free(s_row); free(t_row); free(res);
    free(x_copy); free(res_copy); free(w_abs); free(b_abs); free(xt); free(xt_abs);
    free(y_ref); free(y_mag); free(y_one); free(y_twin);
}

static void test_conv_packed_fused(conv_exact *ex)
{
    double worst[MAX_PATHS] = {0.0};
    int64_t cases = 0, bad[MAX_PATHS] = {0};
    /* Large enough to be split over threads (>= 2^20 multiply-adds), one per
     * layout of the packed path: staged (3x3 stride 1), phase planes
     * (strided), unstaged (1x1 with no transform), several K blocks,
     * groups, channel slices on every map. */
    static const fused_case big[] = {
        /*  n cin cout  h   w kh kw sh sw ph pw dh dw  g  ie  oe b   tr res rex relu fold */
        {{2,  16,  20, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1,  0,  0, 1}, 2, 1,  0, 1, 0}, /* DenseLayer-like + residual */
        {{2,  16,  20, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 32, 17, 1}, 1, 1, 11, 0, 1}, /* slices everywhere */
        {{1,  48,  13, 31, 29, 3, 3, 2, 2, 1, 1, 1, 1, 1,  0,  0, 1}, 2, 0,  0, 1, 1}, /* strided, K = 432 */
        {{3,  32,  32, 18, 18, 3, 3, 1, 1, 1, 1, 1, 1, 4,  0,  0, 0}, 3, 1,  0, 1, 0}, /* groups 4, relu only */
        {{2,  64,  40, 16, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1,  0,  9, 1}, 0, 1,  5, 1, 0}, /* 1x1 read in place */
        {{2,  64,  40, 16, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1, 64,  0, 1}, 2, 0,  0, 0, 0}, /* 1x1 with transform */
        {{1,  24,  30, 19, 21, 5, 5, 1, 1, 2, 2, 1, 1, 1,  0,  0, 1}, 2, 1,  0, 1, 1}, /* 5x5, K = 600 */
        {{4,   3,  16, 32, 32, 3, 3, 1, 1, 1, 1, 2, 2, 1,  0,  0, 1}, 1, 0,  0, 1, 0}, /* dilated stem */
        {{1,   3,  24, 40, 40, 7, 7, 2, 2, 3, 3, 1, 1, 1,  0,  0, 1}, 0, 0,  0, 1, 0}, /* 7x7 stem */
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        run_fused(&big[i], worst, bad, ex);
        cases++;
    }
    const int64_t threaded = cases;
    /* Random small cases: every fusion combination over odd geometry. */
    for (int it = 0; it < 240; it++) {
        fused_case f;
        conv_case *t = &f.c;
        t->g = irand(1, 3);
        t->cin = t->g * irand(1, 4);
        t->cout = t->g * irand(1, 6);
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
        run_fused(&f, worst, bad, ex);
        cases++;
    }
    for (int i = 0; i < g_n_isas; i++)
        report_isa("conv2d_f64_packed fused vs ref", i, cases, worst[i], TOL_SUM, bad[i]);
    printf("  (%lld fused cases large enough to be split over threads)\n", (long long)threaded);
}

static void report_conv_exact(const conv_exact *ex)
{
    report("conv2d_f64 one-call == packed", ex->runs, ex->onecall ? 1.0 : 0.0, 0.0, ex->onecall);
    report("conv2d_f64 pixel rows == channel rows", ex->runs, ex->orient ? 1.0 : 0.0, 0.0, ex->orient);
    report("conv2d_f64 FMA paths bit-identical", ex->fma_runs, ex->cross ? 1.0 : 0.0, 0.0, ex->cross);
    report("conv2d_f64 fused == layer by layer", ex->twin_runs, ex->twin ? 1.0 : 0.0, 0.0, ex->twin);
    report("conv2d_f64_packed 1/2/3 threads memcmp", ex->split_runs, ex->split ? 1.0 : 0.0, 0.0,
           ex->split);
}

/* Argument errors and sizes of the float64 convolution. */
static void test_conv_statuses(void)
{
    double buf[4096];
    fill_val_d(buf, 4096, 0.0);
    int64_t b = 0, n = 0;
    sb_fmap in = {1, 4, 8, 8, 256}, out = {1, 4, 8, 8, 256}, out_bad = {1, 4, 7, 8, 256};
    sb_conv2d_params p = {3, 3, 1, 1, 1, 1, 1, 1, 1}, q;
    q = p; q.stride_h = 0;
    expect_status("conv f64 stride 0", sb_conv2d_f64(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_ARGUMENT, &b);
    expect_status("conv f64 ref stride 0", sb_conv2d_f64__ref(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q), SB_ERR_ARGUMENT, &b);
    q = p; q.groups = 3;
    expect_status("conv f64 groups !| C", sb_conv2d_f64(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q, buf + 3000), SB_ERR_SHAPE, &b);
    expect_status("conv f64 ref groups !| C", sb_conv2d_f64__ref(buf, &out, buf + 1024, &in, buf + 2048, NULL, &q), SB_ERR_SHAPE, &b);
    expect_status("conv f64 out size", sb_conv2d_f64__ref(buf, &out_bad, buf + 1024, &in, buf + 2048, NULL, &p), SB_ERR_SHAPE, &b);
    expect_status("conv f64 NULL workspace", sb_conv2d_f64(buf, &out, buf + 1024, &in, buf + 2048, NULL, &p, NULL), SB_ERR_NULL, &b);
    expect_status("conv f64 packed NULL ws", sb_conv2d_f64_packed(buf, &out, buf + 1024, &in, buf + 2048, &p, NULL, NULL, 1), SB_ERR_NULL, &b);
    sb_conv2d_fusion fu;
    memset(&fu, 0, sizeof fu);
    fu.in_scale = buf; /* without in_shift */
    expect_status("conv f64 packed scale w/o shift", sb_conv2d_f64_packed(buf, &out, buf + 1024, &in, buf + 2048, &p, &fu, buf + 3000, 1), SB_ERR_NULL, &b);
    expect_status("conv f64 pack groups !| C_out", sb_conv2d_f64_pack_weights(buf, buf + 64, NULL, NULL, NULL, 3, 2, 3, 3, 2), SB_ERR_ARGUMENT, &b);
    n += 9;
    /* sizes in doubles: the packed weights per group and block of CB
     * channels (CB biases + K*CB weights), the one-call workspace = packed
     * weights + one thread's packed scratch */
    for (int orientation = 0; orientation <= 1; orientation++) {
        sb_test_conv_orientation(orientation);
        const int64_t cb = orientation ? SB_CONV_NR_F64 : SB_CONV_MR;
        const sb_fmap i2 = {2, 8, 10, 10, 800}, o2 = {2, 6, 10, 10, 600};
        const sb_conv2d_params p3 = {3, 3, 1, 1, 1, 1, 1, 1, 2};
        b += sb_conv2d_f64_packed_weights_elems(6, 4, 3, 3, 2) != 2 * (cb + 36 * cb);
        b += sb_conv2d_f64_workspace_elems(&o2, &i2, &p3) !=
             2 * (cb + 36 * cb) + sb_conv2d_f64_packed_workspace_elems(&o2, &i2, &p3, NULL, 1);
        b += sb_conv2d_f64_packed_workspace_elems(&o2, &i2, &p3, NULL, 1) <= 0;
        n += 3;
    }
    sb_test_conv_orientation(-1);
    report("conv2d_f64 statuses and sizes", n, 0.0, 0.0, b);
}

/* ---- Linear --------------------------------------------------------------- */

/* sb_linear_f64 (the direct kernel; it reads no ISA, but a path switch must
 * not change it) against the reference, on one path. */
static void test_linear_direct(int path)
{
    static const int64_t rs[] = {0, 1, 2, 5};
    static const int64_t is[] = {0, 1, 7, 8, 9, 15, 16, 17, 64, 100, 513, 2049};
    static const int64_t os[] = {0, 1, 3, 4, 5, 8, 9, 10};
    double worst = 0.0;
    int64_t cases = 0, bad = 0;
    use_isa(path, &bad);
    for (size_t a = 0; a < sizeof rs / sizeof rs[0]; a++)
        for (size_t b = 0; b < sizeof is / sizeof is[0]; b++)
            for (size_t c = 0; c < sizeof os / sizeof os[0]; c++)
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    const int64_t r = rs[a], i = is[b], o = os[c];
                    double *x = alloc_d(r * i), *wt = alloc_d(o * i), *bias = alloc_d(o);
                    double *y = alloc_d(r * o), *y_ref = alloc_d(r * o), *y_mag = alloc_d(r * o);
                    fill_rand_d(x, r * i);
                    fill_rand_d(wt, o * i);
                    fill_rand_d(bias, o);
                    fill_val_d(y, r * o, NAN);
                    fill_val_d(y_ref, r * o, NAN);
                    const double *bp = with_bias ? bias : NULL;
                    expect_status("linear f64", sb_linear_f64(y, x, wt, bp, r, i, o), SB_OK, &bad);
                    expect_status("linear f64 ref", sb_linear_f64__ref(y_ref, x, wt, bp, r, i, o), SB_OK, &bad);
                    double *xa = abs_dup_d(x, r * i), *wa = abs_dup_d(wt, o * i), *ba = abs_dup_d(bias, o);
                    expect_status("linear f64 mag", sb_linear_f64__ref(y_mag, xa, wa, with_bias ? ba : NULL, r, i, o), SB_OK, &bad);
                    keep_worst(&worst, max_scaled_d(y, y_ref, y_mag, r * o));
                    free(x); free(wt); free(bias); free(y); free(y_ref); free(y_mag);
                    free(xa); free(wa); free(ba);
                    cases++;
                }
    {
        double x[9], wt[5 * 9], y[5];
        fill_rand_d(x, 9);
        fill_rand_d(wt, 45);
        x[8] = NAN; /* in the tail, past the 8 lanes */
        expect_status("linear f64 nan", sb_linear_f64(y, x, wt, NULL, 1, 9, 5), SB_OK, &bad);
        for (int j = 0; j < 5; j++)
            bad += !(y[j] != y[j]);
        expect_status("linear f64 rows<0", sb_linear_f64(y, x, wt, NULL, -1, 9, 5), SB_ERR_SHAPE, &bad);
        expect_status("linear f64 ref rows<0", sb_linear_f64__ref(y, x, wt, NULL, -1, 9, 5), SB_ERR_SHAPE, &bad);
        expect_status("linear f64 NULL", sb_linear_f64(NULL, x, wt, NULL, 1, 9, 5), SB_ERR_NULL, &bad);
        expect_status("linear f64 ref NULL", sb_linear_f64__ref(NULL, x, wt, NULL, 1, 9, 5), SB_ERR_NULL, &bad);
    }
    report_isa("linear_f64 vs ref", path, cases, worst, TOL_SUM, bad);
}

/* sb_linear_f64_packed against the reference on every path and 1, 2, 3
 * threads (bit-identical), and the FMA paths against each other. */
static void test_linear_packed(void)
{
    static const int64_t rs[] = {0, 1, 2, 5, 6, 7, 17};
    static const int64_t is[] = {0, 1, 7, 8, 9, 16, 17, 100, 256, 257, 513};
    static const int64_t os[] = {0, 1, 3, 7, 8, 9, 13, 16, 17};
    /* rows x in x out >= 2^20: split over threads */
    static const int64_t big[][3] = {{64, 300, 70}, {200, 129, 41}, {33, 2048, 37}};
    const int ni = (int)(sizeof is / sizeof is[0]), no = (int)(sizeof os / sizeof os[0]);
    const int n_small = (int)(sizeof rs / sizeof rs[0]) * ni * no;
    const int n_big = (int)(sizeof big / sizeof big[0]);
    const int fma0 = first_fma_path();
    double worst[MAX_PATHS] = {0.0};
    int64_t cases = 0, bad[MAX_PATHS] = {0}, split = 0, cross = 0, split_runs = 0, cross_runs = 0;
    for (int c = 0; c < n_small + n_big; c++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            int64_t r, i, o;
            if (c < n_small) {
                r = rs[c / (ni * no)];
                i = is[(c / no) % ni];
                o = os[c % no];
            } else {
                r = big[c - n_small][0];
                i = big[c - n_small][1];
                o = big[c - n_small][2];
            }
            double *x = alloc_d(r * i), *wt = alloc_d(o * i), *bias = alloc_d(o);
            fill_rand_d(x, r * i);
            fill_rand_d(wt, o * i);
            fill_rand_d(bias, o);
            const double *bp = with_bias ? bias : NULL;
            double *x_copy = dup_d(x, r * i);
            double *y_ref = alloc_d(r * o), *y_mag = alloc_d(r * o), *y_one = alloc_d(r * o);
            double *y_fma = alloc_d(r * o);
            fill_val_d(y_ref, r * o, NAN);
            expect_status("linear f64 ref", sb_linear_f64__ref(y_ref, x, wt, bp, r, i, o), SB_OK, &bad[0]);
            double *xa = abs_dup_d(x, r * i), *wa = abs_dup_d(wt, o * i), *ba = abs_dup_d(bias, o);
            expect_status("linear f64 mag", sb_linear_f64__ref(y_mag, xa, wa, with_bias ? ba : NULL, r, i, o), SB_OK, &bad[0]);
            const int64_t pw_count = sb_linear_f64_packed_weights_elems(o, i);
            double *packed = alloc_d(pw_count > 0 ? pw_count : 1);
            expect_status("linear f64 pack", sb_linear_f64_pack_weights(packed, wt, bp, o, i), SB_OK, &bad[0]);
            for (int s = 0; s < g_n_isas; s++) {
                use_isa(s, &bad[s]);
                for (int ti = 0; ti < N_THREADS; ti++) {
                    const int nt = g_threads[ti];
                    use_threads(nt, &bad[s]);
                    double *y = alloc_d(r * o);
                    double *ws = alloc_d(sb_linear_f64_packed_workspace_elems(r, i, o, nt));
                    fill_val_d(y, r * o, NAN);
                    expect_status("linear f64 packed", sb_linear_f64_packed(y, x, packed, r, i, o, ws, nt), SB_OK, &bad[s]);
                    const double d = max_scaled_d(y, y_ref, y_mag, r * o);
                    bad[s] += count_not_same_d(x, x_copy, r * i);
                    if (d > TOL_SUM)
                        printf("  linear f64 packed rows=%lld in=%lld out=%lld bias=%d [%s, %d thr]: %.3g\n",
                               (long long)r, (long long)i, (long long)o, with_bias,
                               path_name(s), nt, d);
                    keep_worst(&worst[s], d);
                    if (ti == 0) {
                        copy_d(y_one, y, r * o);
                        if (s == fma0) {
                            copy_d(y_fma, y, r * o);
                        } else if (fma0 >= 0 && path_isa(s) != SB_ISA_SCALAR) {
                            cross_runs++;
                            cross += count_not_same_d(y, y_fma, r * o) != 0;
                        }
                    } else {
                        split_runs++;
                        if (count_not_same_d(y, y_one, r * o)) {
                            printf("  linear f64 packed rows=%lld in=%lld out=%lld [%s, %d thr]: "
                                   "bits differ from 1 thread\n", (long long)r, (long long)i,
                                   (long long)o, path_name(s), nt);
                            split++;
                        }
                    }
                    free(y); free(ws);
                }
            }
            use_threads(1, &bad[0]);
            free(x); free(wt); free(bias); free(x_copy); free(y_ref); free(y_mag); free(y_one);
            free(y_fma); free(xa); free(wa); free(ba); free(packed);
            cases++;
        }
    {
        double x[4], y[4];
        fill_val_d(x, 4, 0.0);
        expect_status("linear f64 packed rows<0", sb_linear_f64_packed(y, x, x, -1, 2, 2, x, 1), SB_ERR_SHAPE, &bad[0]);
        expect_status("linear f64 packed NULL ws", sb_linear_f64_packed(y, x, x, 1, 2, 2, NULL, 1), SB_ERR_NULL, &bad[0]);
        expect_status("linear f64 packed empty", sb_linear_f64_packed(NULL, NULL, NULL, 0, 2, 2, NULL, 1), SB_OK, &bad[0]);
        bad[0] += sb_linear_f64_packed_weights_elems((int64_t)1 << 60, 15) != INT64_MAX;
        bad[0] += sb_linear_f64_packed_weights_elems(9, 5) != 2 * SB_CONV_NR_F64 * 6;
    }
    for (int s = 0; s < g_n_isas; s++)
        report_isa("linear_f64_packed vs ref", s, cases, worst[s], TOL_SUM, bad[s]);
    report("linear_f64_packed 1/2/3 threads memcmp", split_runs, split ? 1.0 : 0.0, 0.0, split);
    report("linear_f64_packed FMA paths bit-identical", cross_runs, cross ? 1.0 : 0.0, 0.0, cross);
}

/* ---- BatchNorm ------------------------------------------------------------ */

/* n c h w in_extra out_extra res_extra (extra: batch_stride - C*H*W) */
static const int64_t bn_shapes[][7] = {
    {1, 1, 1, 1, 0, 0, 0},    {1, 3, 1, 7, 0, 0, 0},    {2, 7, 3, 3, 5, 0, 0},
    {1, 9, 1, 8, 0, 3, 0},    {3, 17, 1, 9, 0, 0, 11},  {2, 16, 4, 4, 0, 0, 0},
    {1, 5, 15, 17, 13, 7, 3}, {4, 24, 5, 13, 0, 0, 0},  {2, 33, 7, 7, 2, 1, 0},
    {0, 4, 3, 3, 0, 0, 0},    {2, 0, 3, 3, 0, 0, 0},    {2, 3, 0, 5, 4, 4, 4},
    /* split over threads: stats by channel, apply and add_relu by plane */
    {2, 100, 31, 33, 7, 9, 5}, {8, 24, 28, 28, 0, 0, 0},
};

/* fold and update_running of one set of statistics (C channels over m
 * values), from the batch (train) and from running statistics (eval):
 * exactly their formulas, and against long double. */
static void check_fold_update(const double *mean, const double *var, int64_t C, int64_t m,
                              double *worst, int64_t *bad)
{
    double *w = alloc_d(C), *b = alloc_d(C), *scale = alloc_d(C), *shift = alloc_d(C);
    double *rm = alloc_d(C), *rv = alloc_d(C);
    fill_rand_d(w, C);
    fill_rand_d(b, C);
    const double eps = 1e-5;
    for (int with_affine = 0; with_affine <= 1; with_affine++)
        for (int eval = 0; eval <= 1; eval++) {
            const double *wp = with_affine ? w : NULL, *bp = with_affine ? b : NULL;
            fill_val_d(scale, C, NAN);
            fill_val_d(shift, C, NAN);
            expect_status("bn f64 fold", sb_batch_norm_fold_f64(scale, shift, mean, var, wp, bp, eps, C, eval ? 0 : m), SB_OK, bad);
            for (int64_t c = 0; c < C; c++) {
                const double wc = wp ? w[c] : 1.0, bc = bp ? b[c] : 0.0;
                const double variance = eval ? var[c] : var[c] / (double)m;
                const double invstd = 1.0 / sqrt(variance + eps);
                const double s = invstd * wc;
                *bad += !same_double(scale[c], s);
                *bad += !same_double(shift[c], fma(-mean[c], s, bc));
                const long double ls = (long double)wc / sqrtl((long double)variance + eps);
                const long double lt = bc - (long double)mean[c] * ls;
                keep_worst(worst, scaled_diff(scale[c], (double)ls, fabs(s)));
                keep_worst(worst, scaled_diff(shift[c], (double)lt, fabs(mean[c] * s) + fabs(bc)));
            }
        }
    if (m >= 2) {
        fill_rand_d(rm, C);
        for (int64_t c = 0; c < C; c++)
            rv[c] = 1.0 + 0.5 * drand();
        double *rm0 = dup_d(rm, C), *rv0 = dup_d(rv, C);
        const double momentum = 0.1 + 0.01 * drand();
        expect_status("bn f64 update", sb_batch_norm_update_running_f64(rm, rv, mean, var, m, momentum, C), SB_OK, bad);
        const double keep = 1.0 - momentum;
        for (int64_t c = 0; c < C; c++) {
            const double em = momentum * mean[c] + keep * rm0[c];
            const double unbiased = var[c] / (double)(m - 1);
            const double kept = keep * rv0[c];
            *bad += !same_double(rm[c], em);
            *bad += !same_double(rv[c], unbiased * momentum + kept);
            const long double lm = (1.0L - momentum) * rm0[c] + (long double)momentum * mean[c];
            const long double lv = (1.0L - momentum) * rv0[c] +
                                   (long double)momentum * var[c] / (long double)(m - 1);
            keep_worst(worst, scaled_diff(rm[c], (double)lm, fabs(em)));
            keep_worst(worst, scaled_diff(rv[c], (double)lv, fabs(rv[c])));
        }
        free(rm0); free(rv0);
    } else {
        expect_status("bn f64 update count 1", sb_batch_norm_update_running_f64(rm, rv, mean, var, m, 0.1, C), SB_ERR_SHAPE, bad);
    }
    free(w); free(b); free(scale); free(shift); free(rm); free(rv);
}

static void test_batch_norm(int path)
{
    double worst_stats = 0.0, worst_formula = 0.0, worst_apply = 0.0, worst_add = 0.0;
    int64_t cases = 0, bad_stats = 0, bad_fold = 0, bad_apply = 0, bad_add = 0, split = 0;
    use_isa(path, &bad_apply);
    for (size_t s = 0; s < sizeof bn_shapes / sizeof bn_shapes[0]; s++) {
        const int64_t *sh = bn_shapes[s];
        const int64_t C = sh[1], hw = sh[2] * sh[3], chw = C * hw;
        const sb_fmap in = {sh[0], C, sh[2], sh[3], chw + sh[4]};
        const sb_fmap out = {sh[0], C, sh[2], sh[3], chw + sh[5]};
        const sb_fmap rmap = {sh[0], C, sh[2], sh[3], chw + sh[6]};
        const int64_t ic = map_floats(&in), oc = map_floats(&out), rc = map_floats(&rmap);
        const int64_t m = in.n * hw;
        /* stats input: an offset mean (the two-pass variance), a NaN in
         * every other shape's first channel */
        double *xs = alloc_d(ic), *xa = alloc_d(ic), *r = alloc_d(rc);
        fill_rand_d(xs, ic);
        for (int64_t i = 0; i < ic; i++)
            xs[i] = xs[i] * 3.0 + 10.0;
        const int with_nan = ic > 0 && s % 2 == 1;
        if (with_nan)
            xs[0] = NAN;
        fill_rand_d(xa, ic);
        sprinkle_specials_d(xa, ic, 0.1);
        fill_rand_d(r, rc);
        sprinkle_specials_d(r, rc, 0.1);
        double *scale = alloc_d(C), *shift = alloc_d(C);
        fill_rand_d(scale, C);
        fill_rand_d(shift, C);
        for (int64_t c = 0; c < C; c++)
            scale[c] *= 4.0; /* some |scale| > 1 */
        if (C > 2) {
            scale[1] = 0.0; /* inf * 0 = NaN */
            scale[2] = -0.0;
        }
        double *xs_copy = dup_d(xs, ic), *xa_copy = dup_d(xa, ic), *r_copy = dup_d(r, rc);

        /* stats: the reference, its long double twin, each channel's
         * magnitude (mean of |x|) */
        double *mean_ref = alloc_d(C), *var_ref = alloc_d(C), *mean_mag = alloc_d(C);
        fill_val_d(mean_ref, C, NAN);
        fill_val_d(var_ref, C, NAN);
        const sb_status st_ref = sb_batch_norm_stats_f64__ref(mean_ref, var_ref, xs, &in);
        expect_status("bn f64 stats ref", st_ref, m >= 1 ? SB_OK : SB_ERR_SHAPE, &bad_stats);
        for (int64_t c = 0; st_ref == SB_OK && c < C; c++) {
            long double sum = 0.0L, sq = 0.0L, mag = 0.0L;
            for (int64_t n = 0; n < in.n; n++)
                for (int64_t i = 0; i < hw; i++) {
                    sum += xs[n * in.batch_stride + c * hw + i];
                    mag += fabs(xs[n * in.batch_stride + c * hw + i]);
                }
            const long double mu = sum / m;
            for (int64_t n = 0; n < in.n; n++)
                for (int64_t i = 0; i < hw; i++) {
                    const long double d = xs[n * in.batch_stride + c * hw + i] - mu;
                    sq += d * d;
                }
            mean_mag[c] = (double)(mag / m);
            keep_worst(&worst_stats, scaled_diff(mean_ref[c], (double)mu, mean_mag[c]));
            keep_worst(&worst_stats, scaled_diff(var_ref[c], (double)sq, (double)sq));
        }
        if (st_ref == SB_OK && C > 0)
            check_fold_update(mean_ref, var_ref, C, m, &worst_formula, &bad_fold);

        /* apply / add_relu: the references (fma), the two-rounding
         * expression every float64 path computes, the magnitudes */
        double *y_ref[2], *y_exp[2], *y_mag = alloc_d(oc), *z_ref = alloc_d(oc);
        double *z_exp = alloc_d(oc), *z_mag = alloc_d(oc);
        for (int relu = 0; relu < 2; relu++) {
            y_ref[relu] = alloc_d(oc);
            y_exp[relu] = alloc_d(oc);
            prefill_map_d(y_ref[relu], &out);
            prefill_map_d(y_exp[relu], &out);
            expect_status("bn f64 apply ref", sb_batch_norm_apply_f64__ref(y_ref[relu], &out, xa, &in, scale, shift, relu), SB_OK, &bad_apply);
        }
        prefill_map_d(y_mag, &out);
        prefill_map_d(z_ref, &out);
        prefill_map_d(z_exp, &out);
        prefill_map_d(z_mag, &out);
        expect_status("bn f64 add relu ref", sb_batch_norm_add_relu_f64__ref(z_ref, &out, xa, &in, scale, shift, r, &rmap), SB_OK, &bad_add);
        for (int64_t n = 0; n < in.n; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < hw; i++) {
                    const double xv = xa[n * in.batch_stride + c * hw + i];
                    const double rv = r[n * rmap.batch_stride + c * hw + i];
                    const int64_t at = n * out.batch_stride + c * hw + i;
                    const double prod = xv * scale[c];
                    const double v = prod + shift[c];
                    y_exp[0][at] = v;
                    y_exp[1][at] = relu_d(v);
                    z_exp[at] = relu_d(v + rv);
                    y_mag[at] = fabs(prod) + fabs(shift[c]);
                    z_mag[at] = y_mag[at] + fabs(rv);
                }

        double *mean = alloc_d(C), *var = alloc_d(C), *mean1 = alloc_d(C), *var1 = alloc_d(C);
        double *y = alloc_d(oc), *y1[2] = {alloc_d(oc), alloc_d(oc)}, *z = alloc_d(oc);
        double *z1 = alloc_d(oc), *inplace = alloc_d(ic);
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_threads(g_threads[ti], &bad_apply);
            /* stats: against the reference's order (both sum in double) */
            fill_val_d(mean, C, NAN);
            fill_val_d(var, C, NAN);
            expect_status("bn f64 stats", sb_batch_norm_stats_f64(mean, var, xs, &in), st_ref, &bad_stats);
            for (int64_t c = 0; st_ref == SB_OK && c < C; c++) {
                keep_worst(&worst_stats, scaled_diff(mean[c], mean_ref[c], mean_mag[c]));
                keep_worst(&worst_stats, scaled_diff(var[c], var_ref[c], var_ref[c]));
            }
            if (with_nan && C > 0 && st_ref == SB_OK)
                bad_stats += !(mean[0] != mean[0]) + !(var[0] != var[0]);
            if (ti == 0) {
                copy_d(mean1, mean, C);
                copy_d(var1, var, C);
            } else {
                split += count_not_same_d(mean, mean1, C) + count_not_same_d(var, var1, C);
            }
            bad_stats += count_not_same_d(xs, xs_copy, ic);
            /* apply, out of place into the strided output, then in place */
            for (int relu = 0; relu < 2; relu++) {
                prefill_map_d(y, &out);
                expect_status("bn f64 apply", sb_batch_norm_apply_f64(y, &out, xa, &in, scale, shift, relu), SB_OK, &bad_apply);
                keep_worst(&worst_apply, max_scaled_d(y, y_ref[relu], y_mag, oc));
                bad_apply += count_not_same_d(y, y_exp[relu], oc); /* gaps included */
                bad_apply += count_bad_gaps_d(y, &out) + count_not_same_d(xa, xa_copy, ic);
                copy_d(inplace, xa, ic);
                expect_status("bn f64 apply in place", sb_batch_norm_apply_f64(inplace, &in, inplace, &in, scale, shift, relu), SB_OK, &bad_apply);
                bad_apply += count_not_same_maps_d(inplace, &in, y, &out);
                if (ti == 0)
                    copy_d(y1[relu], y, oc);
                else
                    split += count_not_same_d(y, y1[relu], oc);
            }
            /* add_relu, out of place, then in place (out == in) */
            prefill_map_d(z, &out);
            expect_status("bn f64 add relu", sb_batch_norm_add_relu_f64(z, &out, xa, &in, scale, shift, r, &rmap), SB_OK, &bad_add);
            keep_worst(&worst_add, max_scaled_d(z, z_ref, z_mag, oc));
            bad_add += count_not_same_d(z, z_exp, oc);
            bad_add += count_bad_gaps_d(z, &out) + count_not_same_d(xa, xa_copy, ic) +
                       count_not_same_d(r, r_copy, rc);
            copy_d(inplace, xa, ic);
            expect_status("bn f64 add relu in place", sb_batch_norm_add_relu_f64(inplace, &in, inplace, &in, scale, shift, r, &rmap), SB_OK, &bad_add);
            bad_add += count_not_same_maps_d(inplace, &in, z, &out);
            if (ti == 0)
                copy_d(z1, z, oc);
            else
                split += count_not_same_d(z, z1, oc);
        }
        use_threads(1, &bad_apply);
        free(xs); free(xa); free(r); free(scale); free(shift);
        free(xs_copy); free(xa_copy); free(r_copy); free(mean_ref); free(var_ref); free(mean_mag);
        free(y_ref[0]); free(y_ref[1]); free(y_exp[0]); free(y_exp[1]); free(y_mag);
        free(z_ref); free(z_exp); free(z_mag);
        free(mean); free(var); free(mean1); free(var1); free(y); free(y1[0]); free(y1[1]);
        free(z); free(z1); free(inplace);
        cases++;
    }
    {   /* errors, the references' the same */
        double v[64];
        fill_val_d(v, 64, 0.0);
        const sb_fmap empty = {0, 2, 3, 3, 18}, m1 = {1, 2, 2, 2, 8}, m_bad = {1, 2, 2, 3, 12};
        expect_status("bn f64 stats empty", sb_batch_norm_stats_f64(v, v, v, &empty), SB_ERR_SHAPE, &bad_stats);
        expect_status("bn f64 stats ref empty", sb_batch_norm_stats_f64__ref(v, v, v, &empty), SB_ERR_SHAPE, &bad_stats);
        expect_status("bn f64 fold eps<0", sb_batch_norm_fold_f64(v, v, v, v, NULL, NULL, -1.0, 2, 0), SB_ERR_ARGUMENT, &bad_fold);
        expect_status("bn f64 fold NULL", sb_batch_norm_fold_f64(v, NULL, v, v, NULL, NULL, 1e-5, 2, 0), SB_ERR_NULL, &bad_fold);
        expect_status("bn f64 apply shape", sb_batch_norm_apply_f64(v, &m_bad, v + 16, &m1, v, v, 0), SB_ERR_SHAPE, &bad_apply);
        expect_status("bn f64 apply ref shape", sb_batch_norm_apply_f64__ref(v, &m_bad, v + 16, &m1, v, v, 0), SB_ERR_SHAPE, &bad_apply);
        expect_status("bn f64 add relu NULL", sb_batch_norm_add_relu_f64(v, &m1, v + 16, &m1, NULL, v, v + 32, &m1), SB_ERR_NULL, &bad_add);
        expect_status("bn f64 add relu ref NULL", sb_batch_norm_add_relu_f64__ref(v, &m1, v + 16, &m1, NULL, v, v + 32, &m1), SB_ERR_NULL, &bad_add);
    }
    report_isa("batch_norm_stats_f64 vs ref/ldouble", path, cases * N_THREADS, worst_stats,
               TOL_ACCUM, bad_stats);
    report_isa("batch_norm fold/update_running_f64", path, cases, worst_formula, TOL_ACCUM, bad_fold);
    report_isa("batch_norm_apply_f64 vs ref", path, cases * N_THREADS * 2, worst_apply,
               TOL_BN_APPLY, bad_apply);
    report_isa("batch_norm_add_relu_f64 vs ref", path, cases * N_THREADS, worst_add,
               TOL_BN_APPLY, bad_add);
    report_isa("batch_norm_f64 1/2/3 threads memcmp", path, cases * (N_THREADS - 1),
               split ? 1.0 : 0.0, 0.0, split);
}

/* ---- pooling -------------------------------------------------------------- */

/* One max-pool case on every path and thread count against the reference,
 * bit for bit (NaN, -inf, ties and -0.0 in the input). */
static int64_t run_max_pool(const sb_fmap *in, const sb_fmap *out, const sb_pool2d_params *p,
                            int64_t *runs, int label)
{
    int64_t bad = 0;
    const int64_t ic = map_floats(in), oc = map_floats(out);
    double *x = alloc_d(ic), *y = alloc_d(oc), *y_ref = alloc_d(oc);
    fill_rand_d(x, ic);
    for (int64_t i = 0; i < ic; i++)
        if (drand() > 0.86) {
            const double u = drand();
            x[i] = u > 0.5 ? NAN : u > 0.0 ? -INFINITY : u > -0.5 ? 0.25 : -0.0;
        }
    double *x_copy = dup_d(x, ic);
    prefill_map_d(y_ref, out);
    expect_status("maxpool f64 ref", sb_max_pool2d_f64__ref(y_ref, out, x, in, p), SB_OK, &bad);
    for (int path = 0; path < g_n_isas; path++)
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_isa(path, &bad);
            use_threads(g_threads[ti], &bad);
            prefill_map_d(y, out);
            expect_status("maxpool f64", sb_max_pool2d_f64(y, out, x, in, p), SB_OK, &bad);
            const int64_t nb = count_not_same_d(y, y_ref, oc) + count_bad_gaps_d(y, out) +
                               count_not_same_d(x, x_copy, ic);
            if (nb)
                printf("  maxpool f64 case %d [%s, %d thr]: %lld mismatches\n", label,
                       path_name(path), g_threads[ti], (long long)nb);
            bad += nb;
            (*runs)++;
        }
    use_threads(1, &bad);
    free(x); free(y); free(y_ref); free(x_copy);
    return bad;
}

static void test_max_pool(void)
{
    int64_t bad = 0, cases = 0, runs = 0;
    for (int it = 0; it < 600; it++) {
        sb_pool2d_params p;
        p.kernel_h = irand(1, 5);
        p.kernel_w = irand(1, 5);
        p.stride_h = irand(1, 4);
        p.stride_w = irand(1, 4);
        p.pad_h = irand(0, p.kernel_h / 2); /* torch's limit */
        p.pad_w = irand(0, p.kernel_w / 2);
        p.dilation_h = irand(1, 3);
        p.dilation_w = irand(1, 3);
        if (it % 50 == 0) { /* beyond torch's pad limit: empty windows give -inf */
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
        bad += run_max_pool(&in, &out, &p, &runs, it);
        cases++;
    }
    static const int64_t big[][10] = { /* n c h w  k s p d ceil extra: split over threads */
        {2, 64, 57, 57, 3, 2, 0, 1, 0, 0},
        {1, 48, 50, 51, 2, 2, 0, 1, 0, 5},
        {3, 40, 29, 31, 3, 2, 1, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        const int64_t *b = big[i];
        const sb_pool2d_params p = {b[4], b[4], b[5], b[5], b[6], b[6], b[7], b[7]};
        const sb_fmap in = {b[0], b[1], b[2], b[3], b[1] * b[2] * b[3] + b[9]};
        sb_fmap out = {b[0], b[1], sb_pool2d_out_size(b[2], b[4], b[5], b[6], b[7], (int)b[8]),
                       sb_pool2d_out_size(b[3], b[4], b[5], b[6], b[7], (int)b[8]), 0};
        out.batch_stride = out.c * out.h * out.w + b[9];
        bad += run_max_pool(&in, &out, &p, &runs, 10000 + (int)i);
        cases++;
    }
    {   /* errors, the reference's the same */
        double v[64];
        fill_val_d(v, 64, 0.0);
        const sb_fmap in = {1, 1, 4, 4, 16}, out = {1, 1, 2, 2, 4}, out_bad = {1, 1, 3, 2, 6};
        const sb_pool2d_params p = {2, 2, 2, 2, 0, 0, 1, 1}, p0 = {2, 2, 0, 2, 0, 0, 1, 1};
        expect_status("maxpool f64 stride 0", sb_max_pool2d_f64(v, &out, v + 16, &in, &p0), SB_ERR_ARGUMENT, &bad);
        expect_status("maxpool f64 ref stride 0", sb_max_pool2d_f64__ref(v, &out, v + 16, &in, &p0), SB_ERR_ARGUMENT, &bad);
        expect_status("maxpool f64 out size", sb_max_pool2d_f64(v, &out_bad, v + 16, &in, &p), SB_ERR_SHAPE, &bad);
        expect_status("maxpool f64 ref out size", sb_max_pool2d_f64__ref(v, &out_bad, v + 16, &in, &p), SB_ERR_SHAPE, &bad);
    }
    report("max_pool2d_f64 vs ref (exact)", runs, bad ? 1.0 : 0.0, 0.0, bad);
}

/* adaptive_avg_pool2d against the reference: windowed outputs bit for bit,
 * the global (1x1) mean to TOL_ACCUM (8 double lanes against one double
 * sum), both against a long double mean; every path and thread count,
 * whose global means must be bit-identical (the same lanes everywhere). */
static void run_adaptive(const sb_fmap *in, const sb_fmap *out, double *worst, int64_t *bad,
                         int64_t *split, int64_t *runs, int specials)
{
    const int64_t ic = map_floats(in), oc = map_floats(out);
    const int64_t H = in->h, W = in->w, OH = out->h, OW = out->w;
    const int global = OH == 1 && OW == 1;
    double *x = alloc_d(ic), *y = alloc_d(oc), *y_ref = alloc_d(oc), *y_one = alloc_d(oc);
    double *y_ld = alloc_d(oc), *y_mag = alloc_d(oc);
    fill_rand_d(x, ic);
    for (int64_t i = 0; i < ic; i++)
        x[i] = x[i] * 2.0 + 0.5; /* a nonzero mean */
    if (specials)
        sprinkle_specials_d(x, ic, 0.002);
    double *x_copy = dup_d(x, ic);
    prefill_map_d(y_ref, out);
    prefill_map_d(y_ld, out);
    prefill_map_d(y_mag, out);
    expect_status("adaptive f64 ref", sb_adaptive_avg_pool2d_f64__ref(y_ref, out, x, in), SB_OK, bad);
    for (int64_t n = 0; n < out->n; n++)
        for (int64_t c = 0; c < out->c; c++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    const int64_t h0 = (i * H) / OH, h1 = ((i + 1) * H + OH - 1) / OH;
                    const int64_t w0 = (j * W) / OW, w1 = ((j + 1) * W + OW - 1) / OW;
                    long double sum = 0.0L, mag = 0.0L;
                    for (int64_t yy = h0; yy < h1; yy++)
                        for (int64_t xx = w0; xx < w1; xx++) {
                            const double v = x[n * in->batch_stride + (c * H + yy) * W + xx];
                            sum += v;
                            mag += fabs(v);
                        }
                    const long double cnt = (long double)((h1 - h0) * (w1 - w0));
                    const int64_t at = n * out->batch_stride + (c * OH + i) * OW + j;
                    y_ld[at] = (double)(sum / cnt);
                    y_mag[at] = (double)(mag / cnt);
                }
    keep_worst(worst, max_scaled_d(y_ref, y_ld, y_mag, oc));
    for (int path = 0; path < g_n_isas; path++)
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_isa(path, bad);
            use_threads(g_threads[ti], bad);
            prefill_map_d(y, out);
            expect_status("adaptive f64", sb_adaptive_avg_pool2d_f64(y, out, x, in), SB_OK, bad);
            *bad += count_bad_gaps_d(y, out) + count_not_same_d(x, x_copy, ic);
            if (global)
                keep_worst(worst, max_scaled_d(y, y_ref, y_mag, oc));
            else
                *bad += count_not_same_d(y, y_ref, oc);
            keep_worst(worst, max_scaled_d(y, y_ld, y_mag, oc));
            if (path == 0 && ti == 0)
                copy_d(y_one, y, oc);
            else
                *split += count_not_same_d(y, y_one, oc);
            (*runs)++;
        }
    use_threads(1, bad);
    free(x); free(y); free(y_ref); free(y_one); free(y_ld); free(y_mag); free(x_copy);
}

static void test_adaptive_avg_pool(void)
{
    double worst = 0.0;
    int64_t bad = 0, split = 0, runs = 0;
    for (int it = 0; it < 300; it++) {
        sb_fmap in = {irand(0, 3), irand(1, 5), irand(1, 15), irand(1, 15), 0};
        in.batch_stride = in.c * in.h * in.w + ((it % 3 == 0) ? irand(1, 20) : 0);
        sb_fmap out = {in.n, in.c, irand(1, 17), irand(1, 17), 0};
        if (it % 5 == 0)
            out.h = out.w = 1; /* the global mean */
        out.batch_stride = out.c * out.h * out.w + ((it % 4 == 0) ? 7 : 0);
        run_adaptive(&in, &out, &worst, &bad, &split, &runs, it % 7 == 0);
    }
    /* the global mean at plane sizes around the 8 lanes and the 4096-value
     * block, and maps big enough to be split over threads */
    static const int64_t global[][4] = { /* n c h w */
        {2, 3, 1, 1}, {1, 5, 1, 7}, {2, 4, 2, 4}, {1, 3, 3, 3}, {1, 2, 3, 5}, {1, 2, 4, 4},
        {1, 2, 1, 17}, {1, 2, 64, 64}, {1, 2, 1, 4095}, {1, 2, 1, 4097}, {1, 2, 3, 2731},
        {2, 64, 32, 33}, {4, 512, 7, 7},
    };
    for (size_t i = 0; i < sizeof global / sizeof global[0]; i++) {
        const int64_t *g = global[i];
        const sb_fmap in = {g[0], g[1], g[2], g[3], g[1] * g[2] * g[3] + (int64_t)(i % 3)};
        const sb_fmap out = {g[0], g[1], 1, 1, g[1] + (int64_t)(i % 2)};
        run_adaptive(&in, &out, &worst, &bad, &split, &runs, (int)(i % 2));
    }
    {   /* a windowed map split over threads */
        const sb_fmap in = {2, 64, 30, 31, 64 * 30 * 31}, out = {2, 64, 7, 6, 64 * 42};
        run_adaptive(&in, &out, &worst, &bad, &split, &runs, 0);
    }
    {
        double v[64];
        fill_val_d(v, 64, 0.0);
        const sb_fmap in = {1, 2, 0, 3, 0}, out = {1, 2, 1, 1, 2}, in2 = {1, 2, 2, 2, 8};
        const sb_fmap out_c = {1, 3, 1, 1, 3};
        expect_status("adaptive f64 empty", sb_adaptive_avg_pool2d_f64(v, &out, v, &in), SB_ERR_SHAPE, &bad);
        expect_status("adaptive f64 ref empty", sb_adaptive_avg_pool2d_f64__ref(v, &out, v, &in), SB_ERR_SHAPE, &bad);
        expect_status("adaptive f64 channels", sb_adaptive_avg_pool2d_f64(v, &out_c, v + 8, &in2), SB_ERR_SHAPE, &bad);
        expect_status("adaptive f64 NULL", sb_adaptive_avg_pool2d_f64(NULL, &out, v + 8, &in2), SB_ERR_NULL, &bad);
    }
    report("adaptive_avg_pool2d_f64 vs ref", runs, worst, TOL_ACCUM, bad);
    report("adaptive_avg_pool2d_f64 paths/threads", runs, split ? 1.0 : 0.0, 0.0, split);
}

/* ---- element-wise --------------------------------------------------------- */

/* Sigmoid outputs against the reference: bit for bit on the scalar path,
 * within TOL_SIGMOID on the AVX2 ones (NaN where the reference has NaN).
 * Returns the number of bad elements; *worst the largest difference. */
static int64_t sigmoid_bad(const double *y, const double *ref, int64_t n, int exact,
                           double *worst)
{
    if (exact)
        return count_not_same_d(y, ref, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ref[i] != ref[i] || y[i] != y[i]) {
            bad += (ref[i] != ref[i]) != (y[i] != y[i]);
            continue;
        }
        const double d = fabs(y[i] - ref[i]);
        if (d > *worst)
            *worst = d;
        bad += d > TOL_SIGMOID;
    }
    return bad;
}

/* relu, sigmoid, add_relu against their references, bit for bit (the AVX2
 * sigmoid: within TOL_SIGMOID, and the same bits on every thread count),
 * out of place and in place; every path and thread count. */
static void test_elementwise(int path)
{
    static const int64_t counts[] = {0, 1, 3, 7, 8, 9, 16, 33, 1000, 70001, 300007};
    int64_t cases = 0, bad_relu = 0, bad_sig = 0, bad_add = 0;
    int64_t bad = 0;
    double worst_sig = 0.0;
    use_isa(path, &bad);
    const int sig_exact = sb_get_isa() == SB_ISA_SCALAR;
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        const int64_t n = counts[k];
        double *a = alloc_d(n), *b = alloc_d(n), *big = alloc_d(n);
        fill_rand_d(a, n);
        fill_rand_d(b, n);
        sprinkle_specials_d(a, n, 0.05);
        sprinkle_specials_d(b, n, 0.05);
        for (int64_t i = 0; i < n; i++) /* sigmoid's range: saturation both ways */
            big[i] = 800.0 * a[i] * (i % 3 == 0 ? 1.0 : 0.05);
        double *a_copy = dup_d(a, n), *b_copy = dup_d(b, n), *big_copy = dup_d(big, n);
        double *ref = alloc_d(n), *ref_s = alloc_d(n), *ref_a = alloc_d(n);
        double *y = alloc_d(n), *io = alloc_d(n), *first = alloc_d(n);
        expect_status("relu f64 ref", sb_relu_f64__ref(ref, a, n), SB_OK, &bad_relu);
        expect_status("sigmoid f64 ref", sb_sigmoid_f64__ref(ref_s, big, n), SB_OK, &bad_sig);
        expect_status("add relu f64 ref", sb_add_relu_f64__ref(ref_a, a, b, n), SB_OK, &bad_add);
        for (int64_t i = 0; i < n; i++) { /* the references are the formulas */
            bad_relu += !same_double(ref[i], a[i] != a[i] ? a[i] : relu_d(a[i]));
            bad_sig += !same_double(ref_s[i], 1.0 / (1.0 + exp(-big[i])));
            bad_add += !same_double(ref_a[i], relu_d(a[i] + b[i]));
        }
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_threads(g_threads[ti], &bad);
            fill_val_d(y, n, NAN);
            expect_status("relu f64", sb_relu_f64(y, a, n), SB_OK, &bad_relu);
            bad_relu += count_not_same_d(y, ref, n);
            copy_d(io, a, n);
            expect_status("relu f64 in place", sb_relu_f64(io, io, n), SB_OK, &bad_relu);
            bad_relu += count_not_same_d(io, ref, n);
            fill_val_d(y, n, NAN);
            expect_status("sigmoid f64", sb_sigmoid_f64(y, big, n), SB_OK, &bad_sig);
            bad_sig += sigmoid_bad(y, ref_s, n, sig_exact, &worst_sig);
            if (ti == 0)
                copy_d(first, y, n);
            bad_sig += count_not_same_d(y, first, n); /* the same bits on every thread count */
            copy_d(io, big, n);
            expect_status("sigmoid f64 in place", sb_sigmoid_f64(io, io, n), SB_OK, &bad_sig);
            bad_sig += count_not_same_d(io, first, n);
            fill_val_d(y, n, NAN);
            expect_status("add relu f64", sb_add_relu_f64(y, a, b, n), SB_OK, &bad_add);
            bad_add += count_not_same_d(y, ref_a, n);
            copy_d(io, a, n);
            expect_status("add relu f64 in place (a)", sb_add_relu_f64(io, io, b, n), SB_OK, &bad_add);
            bad_add += count_not_same_d(io, ref_a, n);
            copy_d(io, b, n);
            expect_status("add relu f64 in place (b)", sb_add_relu_f64(io, a, io, n), SB_OK, &bad_add);
            bad_add += count_not_same_d(io, ref_a, n);
            bad_relu += count_not_same_d(a, a_copy, n) + count_not_same_d(b, b_copy, n);
            bad_sig += count_not_same_d(big, big_copy, n);
            cases++;
        }
        use_threads(1, &bad);
        free(a); free(b); free(big); free(a_copy); free(b_copy); free(big_copy);
        free(ref); free(ref_s); free(ref_a); free(y); free(io); free(first);
    }
    {
        double v[4];
        fill_val_d(v, 4, 0.0);
        expect_status("relu f64 count<0", sb_relu_f64(v, v, -1), SB_ERR_SHAPE, &bad_relu);
        expect_status("relu f64 ref count<0", sb_relu_f64__ref(v, v, -1), SB_ERR_SHAPE, &bad_relu);
        expect_status("sigmoid f64 NULL", sb_sigmoid_f64(NULL, v, 4), SB_ERR_NULL, &bad_sig);
        expect_status("sigmoid f64 ref NULL", sb_sigmoid_f64__ref(NULL, v, 4), SB_ERR_NULL, &bad_sig);
        expect_status("add relu f64 NULL", sb_add_relu_f64(v, v, NULL, 4), SB_ERR_NULL, &bad_add);
        expect_status("add relu f64 ref NULL", sb_add_relu_f64__ref(v, v, NULL, 4), SB_ERR_NULL, &bad_add);
    }
    report_isa("relu_f64 vs ref (exact)", path, cases, bad_relu ? 1.0 : 0.0, 0.0, bad_relu + bad);
    if (sig_exact)
        report_isa("sigmoid_f64 vs ref (exact)", path, cases, bad_sig ? 1.0 : 0.0, 0.0, bad_sig);
    else
        report_isa("sigmoid_f64 vs ref", path, cases, worst_sig, TOL_SIGMOID, bad_sig);
    report_isa("add_relu_f64 vs ref (exact)", path, cases, bad_add ? 1.0 : 0.0, 0.0, bad_add);
}

/* channel_scale against its reference, bit for bit: strided maps, in
 * place, N x C factors with specials; every path and thread count. */
static void test_channel_scale(int path)
{
    static const int64_t shapes[][6] = { /* n c h w in_extra out_extra */
        {1, 1, 1, 1, 0, 0}, {2, 3, 5, 7, 0, 4}, {3, 17, 1, 9, 5, 0}, {1, 9, 4, 8, 0, 0},
        {0, 4, 3, 3, 0, 0}, {2, 0, 3, 3, 0, 0}, {2, 3, 0, 5, 2, 2},
        {4, 64, 16, 16, 0, 0}, {2, 100, 31, 33, 7, 9}, /* split over threads */
    };
    int64_t cases = 0, bad = 0;
    use_isa(path, &bad);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t *sh = shapes[s];
        const int64_t chw = sh[1] * sh[2] * sh[3];
        const sb_fmap in = {sh[0], sh[1], sh[2], sh[3], chw + sh[4]};
        const sb_fmap out = {sh[0], sh[1], sh[2], sh[3], chw + sh[5]};
        const int64_t ic = map_floats(&in), oc = map_floats(&out), nc = sh[0] * sh[1];
        double *x = alloc_d(ic), *f = alloc_d(nc), *y = alloc_d(oc), *y_ref = alloc_d(oc);
        double *io = alloc_d(ic);
        fill_rand_d(x, ic);
        fill_rand_d(f, nc);
        sprinkle_specials_d(x, ic, 0.05);
        sprinkle_specials_d(f, nc, 0.1);
        double *x_copy = dup_d(x, ic);
        prefill_map_d(y_ref, &out);
        expect_status("channel scale f64 ref", sb_channel_scale_f64__ref(y_ref, &out, x, &in, f), SB_OK, &bad);
        for (int64_t n = 0; n < in.n; n++) /* the reference is the formula */
            for (int64_t i = 0; i < chw; i++)
                bad += !same_double(y_ref[n * out.batch_stride + i],
                                    x[n * in.batch_stride + i] * f[n * in.c + i / (in.h * in.w)]);
        for (int ti = 0; ti < N_THREADS; ti++) {
            use_threads(g_threads[ti], &bad);
            prefill_map_d(y, &out);
            expect_status("channel scale f64", sb_channel_scale_f64(y, &out, x, &in, f), SB_OK, &bad);
            bad += count_not_same_d(y, y_ref, oc) + count_bad_gaps_d(y, &out) +
                   count_not_same_d(x, x_copy, ic);
            copy_d(io, x, ic);
            expect_status("channel scale f64 in place", sb_channel_scale_f64(io, &in, io, &in, f), SB_OK, &bad);
            bad += count_not_same_maps_d(io, &in, y_ref, &out);
            cases++;
        }
        use_threads(1, &bad);
        free(x); free(f); free(y); free(y_ref); free(io); free(x_copy);
    }
    {
        double v[64];
        fill_val_d(v, 64, 0.0);
        const sb_fmap m = {1, 2, 2, 2, 8}, m_bad = {1, 2, 2, 3, 12};
        expect_status("channel scale f64 shape", sb_channel_scale_f64(v, &m_bad, v + 16, &m, v + 32), SB_ERR_SHAPE, &bad);
        expect_status("channel scale f64 ref shape", sb_channel_scale_f64__ref(v, &m_bad, v + 16, &m, v + 32), SB_ERR_SHAPE, &bad);
        expect_status("channel scale f64 NULL", sb_channel_scale_f64(v, &m, v + 16, &m, NULL), SB_ERR_NULL, &bad);
    }
    report_isa("channel_scale_f64 vs ref (exact)", path, cases, bad ? 1.0 : 0.0, 0.0, bad);
}

int main(void)
{
    test_begin("float64");
    test_ukernel_selection();
    test_ukernels_one_panel();
#ifdef SB_HAVE_AVX2_KERNELS
    test_ukernels_wide();
#endif
    conv_exact ex;
    memset(&ex, 0, sizeof ex);
    test_conv(&ex);
    test_conv_packed_fused(&ex);
    report_conv_exact(&ex);
    test_conv_statuses();
    for (int path = 0; path < g_n_isas; path++)
        test_linear_direct(path);
    test_linear_packed();
    for (int path = 0; path < g_n_isas; path++)
        test_batch_norm(path);
    test_max_pool();
    test_adaptive_avg_pool();
    for (int path = 0; path < g_n_isas; path++) {
        test_elementwise(path);
        test_channel_scale(path);
    }
    return test_end();
}

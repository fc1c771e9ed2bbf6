/*
 * test_ukernels.c -- the GEMM micro-kernels of the packed convolution and
 * the Linear layer (gemm_ukernel.h), called directly, per ISA:
 *   - gemm / igemm 6x16 (packed-B and indirect-B): against a double sum,
 *     and igemm with its B rows scattered at odd offsets (unaligned loads)
 *     against gemm of the same ISA, bit for bit (same terms, same order);
 *   - pixel-row 6x16 (six input pointers, one offset per k): against a
 *     double sum;
 *   - the 6x32 AVX-512 kernels (igemm and pixel-row, two 16-column panels
 *     per call), their source compiled for AVX2 on any AVX2 CPU and the
 *     real AVX-512 build when the CPU has AVX-512F: against two calls of
 *     the AVX2 6x16 twin, bit for bit.
 * kc covers 0 (stores zeros), 1, odd values and the 256-row K block, with
 * accumulate on and off; columns past the tile must stay untouched.
 *
 * The micro-kernels are internal (no __ref: their contract is the sum
 * itself); the operators built on them are compared with their __ref in
 * test_conv2d.c and test_linear.c.
 *
 * Tolerances, in one place:
 *   TOL_SUM  |kernel - double sum| / (1 + sum of |terms|): float sums of
 *            up to 257 products, FMA or not;
 *   exact    igemm against gemm, 6x32 against two 6x16, columns past the
 *            tile.
 */
#include "test_harness.h"
#include "../kernels/gemm_ukernel.h" /* internal: the micro-kernels */

#define TOL_SUM 1e-5

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
    struct { const char *name; sb_igemm_f32_ukernel wide; } wides[2] = {
        {"avx512-source-on-avx2", sb_igemm_f32_ukernel_wide__avx512_source_on_avx2}};
    int n_wides = 1;
    if (sb_isa_available(SB_ISA_AVX512)) {
        wides[1].name = "avx512";
        wides[1].wide = sb_igemm_f32_ukernel_wide__avx512;
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
                sb_igemm_f32_ukernel__avx2(kc, a, src, offsets, c_pair, LDC, accumulate);
                sb_igemm_f32_ukernel__avx2(kc, a, src + 16, offsets, c_pair + 16, LDC,
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
    struct { const char *name; sb_pixgemm_f32_ukernel wide; } pix[2] = {
        {"avx512-source-on-avx2", sb_pixgemm_f32_ukernel_wide__avx512_source_on_avx2}};
    if (n_wides == 2) {
        pix[1].name = "avx512";
        pix[1].wide = sb_pixgemm_f32_ukernel_wide__avx512;
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
                sb_pixgemm_f32_ukernel__avx2(kc, pixels, offsets, wts, 0, c_pair, LDC,
                                                  accumulate);
                sb_pixgemm_f32_ukernel__avx2(kc, pixels, offsets, wts + w_next, 0,
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
    /* Two packed panels (Linear's weights) w_next floats apart. */
    struct { const char *name; sb_gemm_f32_wide_ukernel wide; } gemm[2] = {
        {"avx512-source-on-avx2", sb_gemm_f32_ukernel_wide__avx512_source_on_avx2}};
    if (n_wides == 2) {
        gemm[1].name = "avx512";
        gemm[1].wide = sb_gemm_f32_ukernel_wide__avx512;
    }
    for (int w = 0; w < n_wides; w++) {
        int64_t cases = 0, bad = 0;
        for (size_t ki = 0; ki < sizeof kcs / sizeof kcs[0]; ki++) {
            for (int accumulate = 0; accumulate <= 1; accumulate++) {
                const int64_t kc = kcs[ki];
                memcpy(c_pair, c_init, MR * LDC * sizeof(float));
                memcpy(c_wide, c_init, MR * LDC * sizeof(float));
                sb_gemm_f32_ukernel__avx2(kc, a, wts, c_pair, LDC, accumulate);
                sb_gemm_f32_ukernel__avx2(kc, a, wts + w_next, c_pair + 16, LDC, accumulate);
                gemm[w].wide(kc, a, wts, w_next, c_wide, LDC, accumulate);
                bad += count_not_same(c_pair, c_wide, MR * LDC);
                cases++;
            }
        }
        char name[80];
        snprintf(name, sizeof name, "packed 6x32 == 2x avx2 6x16 (%s)", gemm[w].name);
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
    enum { MR = SB_CONV_MR, NR = SB_CONV_NR_F32, KMAX = 257, LDC = NR + 3 };
    static const int64_t kcs[] = {0, 1, 2, 7, 16, 256, 257};
    struct { const char *name; sb_pixgemm_f32_ukernel kernel; } isas[2] = {
        {"scalar", sb_pixgemm_f32_ukernel__scalar}};
    int n_isas = 1;
#ifdef SB_HAVE_AVX2_KERNELS
    if (sb_isa_available(SB_ISA_AVX2)) {
        isas[1].name = "avx2";
        isas[1].kernel = sb_pixgemm_f32_ukernel__avx2;
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
    enum { MR = SB_CONV_MR, NR = SB_CONV_NR_F32, KMAX = 257, LDC = NR + 3 };
    static const int64_t kcs[] = {0, 1, 2, 7, 16, 255, 256, 257};
    struct { const char *name; sb_gemm_f32_ukernel gemm; sb_igemm_f32_ukernel igemm; } isas[2] = {
        {"scalar", sb_gemm_f32_ukernel__scalar, sb_igemm_f32_ukernel__scalar}};
    int n_isas = 1;
#ifdef SB_HAVE_AVX2_KERNELS
    if (sb_isa_available(SB_ISA_AVX2)) {
        isas[1].name = "avx2";
        isas[1].gemm = sb_gemm_f32_ukernel__avx2;
        isas[1].igemm = sb_igemm_f32_ukernel__avx2;
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

int main(void)
{
    test_begin("ukernels");
    test_ukernels();
    return test_end();
}

/* The six-row AVX-512 pixel-row micro-kernel on its own: a 3x3 convolution
 * of 16*CB channels to 64 on an HxH map, in the loops the convolution runs
 * it in (two 16-channel panels per call, six pixels, every K block in one
 * call, the blocked output stored with bias and ReLU), without the rest of
 * a convolution call: no staging (the input is already padded), no
 * Python, no argument checks, no thread pool. What the kernel reaches here
 * bounds what the whole convolution can; benchmarks/bench_conv.py measures
 * the whole call. Nothing here ships in the package.
 *
 *     cc -O3 -std=c11 -Icsrc/kernels -Icsrc/include benchmarks/pixgemm_bench.c \
 *        csrc/kernels/gemm_ukernel__avx512.c -o /tmp/pixgemm_bench
 *     /tmp/pixgemm_bench 25 4 300 117.3    # H=25, 64 input channels, best of 300, peak GFLOP/s
 *
 * prints the best time of the repetitions, GFLOP/s and % of the given
 * peak (benchmarks/fma_peak.c's 512-bit figure at one thread). Exits 2 on
 * a CPU without AVX-512F.
 */
#define _POSIX_C_SOURCE 200112L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gemm_ukernel.h"

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *floats(int64_t n)
{
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(i % 7) * 0.01f;
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s H CIN_BLOCKS REPS PEAK_GFLOPS\n", argv[0]);
        return 1;
    }
#if defined(SB_HAVE_AVX2_KERNELS)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "no AVX-512F on this CPU\n");
        return 2;
    }
    const int64_t h = atoll(argv[1]), w = h, cin_blocks = atoll(argv[2]);
    const int reps = atoi(argv[3]);
    const double peak = atof(argv[4]);
    enum { LANES = 16, ROWS = 6, OUT_PANELS = 4, KC = 256 };
    /* the padded blocked input, as the convolution stages it */
    const int64_t wp = w + 2, plane = (h + 2) * wp * LANES, k = cin_blocks * 9 * LANES;
    const int64_t pixels = h * w;
    float *input = floats(cin_blocks * plane);
    /* row p = (block, ky, kx, lane) of K starts here relative to a pixel */
    int64_t *offsets = malloc(sizeof(int64_t) * (size_t)k);
    if (offsets == NULL)
        return 1;
    for (int64_t b = 0, p = 0; b < cin_blocks; b++)
        for (int64_t ky = 0; ky < 3; ky++)
            for (int64_t kx = 0; kx < 3; kx++)
                for (int64_t l = 0; l < LANES; l++)
                    offsets[p++] = b * plane + (ky * wp + kx) * LANES + l;
    /* packed panels: NR biases, then K rows of NR weights */
    const int64_t panel_floats = LANES + k * LANES;
    float *weights = floats(panel_floats * OUT_PANELS);
    float *out = floats(pixels * LANES * OUT_PANELS + ROWS * LANES);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        const double t0 = seconds();
        for (int64_t pp = 0; pp < OUT_PANELS; pp += 2) {
            const float *panel = weights + pp * panel_floats;
            for (int64_t p0 = 0; p0 < pixels; p0 += ROWS) {
                const float *px[ROWS];
                for (int i = 0; i < ROWS; i++) {
                    const int64_t q = p0 + i < pixels ? p0 + i : pixels - 1;
                    px[i] = input + ((q / w) * wp + q % w) * LANES;
                }
                const sb_pixgemm_f32_out o = {
                    out + pp * pixels * LANES + p0 * LANES, pixels * LANES,
                    pixels - p0 < ROWS ? pixels - p0 : ROWS, 0, panel, panel_floats, NULL,
                    1, KC};
                sb_pixgemm_out_f32_ukernel_wide__avx512(k, px, offsets, panel + LANES,
                                                         panel_floats, &o);
            }
        }
        const double t = seconds() - t0;
        if (t < best)
            best = t;
    }
    const double flops = 2.0 * (double)pixels * LANES * OUT_PANELS * (double)k;
    printf("3x3 %ld->%d on %ldx%ld: %.3f ms, %.1f GFLOP/s, %.1f %% of %.1f\n",
           (long)(cin_blocks * LANES), LANES * OUT_PANELS, (long)h, (long)w, best * 1e3,
           flops / best * 1e-9, flops / best * 1e-9 / peak * 100, peak);
    fprintf(stderr, "checksum %g\n", (double)out[pixels * LANES - 1]);
    return 0;
#else
    fprintf(stderr, "built without the x86 kernels\n");
    return 2;
#endif
}

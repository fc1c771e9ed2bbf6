/* Single-core fp32 FMA throughput with 256-bit (AVX2 + FMA3) or 512-bit
 * (AVX-512F) vectors.
 *
 * The denominator of bench_demos.py's "% of peak" column. It is a separate
 * program, compiled by bench_demos.py into a temporary directory with the
 * system C compiler and run on one thread; nothing here ships in the package.
 *
 *     cc -O2 -mavx2 -mfma -o fma_peak fma_peak.c
 *     ./fma_peak 0.5          # 256-bit FMAs for 0.5 s (the default width)
 *     ./fma_peak 0.5 512      # 512-bit FMAs; exits 2 if the CPU has no AVX-512F
 *
 * prints one line: "<GFLOP/s per CPU second> <GFLOP/s per wall second>
 * <wall seconds> <CPU seconds> <FMA instructions>", whichever the width.
 *
 * Why it is written this way:
 * - 12 independent accumulator chains. A Zen 3 core issues 2 FMAs per cycle
 *   with a 4-cycle latency, so at least 8 chains in flight are needed to fill
 *   both pipes; 12 leaves margin for cores with longer latency (the same holds
 *   for the two 512-bit FMA ports of the larger AVX-512 Intel cores). The
 *   accumulators are separate named variables, not an array, so the compiler
 *   keeps every one in a ymm (zmm) register (no loads or stores in the loop).
 * - acc = acc * m + c with m < 1 converges to c / (1 - m) = 1: values stay
 *   normal floats forever (no overflow, no denormal slow path), and the
 *   compiler cannot fold the recurrence because m and c are read from
 *   volatile variables.
 * - The sum of the accumulators is printed, so the loop cannot be removed.
 * - Two rates: per second of this thread's CPU time and per wall second. On a
 *   machine shared with other work the scheduler takes turns between
 *   processes, which lowers the wall rate but not what the core does while
 *   this thread runs: the CPU-time rate is the hardware's throughput, the
 *   wall rate what this thread got.
 * - Two widths, because the peak must be that of the vector width skipblocks'
 *   kernels use: 256-bit for its 'avx2' path, 512-bit for its 'avx512' path
 *   (512-bit FMAs in the convolution micro-kernel). They are separate
 *   numbers, not 2x of one another: a core may have one 512-bit FMA port or
 *   two, may split a 512-bit FMA into two 256-bit halves (Zen 4), and may
 *   lower its clock while running 512-bit instructions (some Intel cores) --
 *   which the 'avx512' kernel meets as well, so it belongs in its peak.
 * - The 512-bit loop is its own function with target("avx512f"): the file is
 *   compiled with -mavx2 -mfma only, so nothing outside that function can
 *   contain an AVX-512 instruction and the 256-bit mode runs on CPUs without
 *   AVX-512. main checks __builtin_cpu_supports("avx512f") before calling it
 *   and otherwise exits with a message and status 2, never reaching an
 *   illegal instruction (the caller should still look at the CPU flags first).
 */
#pragma GCC target("avx2,fma")

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* FMAs per chain per burst (one pass of the inner loop): long enough that the
 * clock reads and the loop test are noise, short enough (~1 ms) to stop close
 * to the target. */
#define BURST 100000L
#define CHAINS 12

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The one output line (and the checksum on stderr), for either width. */
static void report(long bursts, int lanes, double elapsed, double cpu, float checksum) {
    double fmas = (double)bursts * BURST * CHAINS; /* vector FMA instructions */
    double flops = fmas * lanes * 2 /* multiply + add */;
    printf("%.3f %.3f %.6f %.6f %.0f\n", flops / cpu * 1e-9, flops / elapsed * 1e-9, elapsed,
           cpu, fmas);
    /* The checksum goes to stderr: it only exists to keep the loop alive. */
    fprintf(stderr, "checksum %g\n", (double)checksum);
}

static void fma256(double target) {
    volatile float vm = 0.999f, vc = 0.001f; /* opaque to the optimiser */
    const __m256 m = _mm256_set1_ps(vm), c = _mm256_set1_ps(vc);

    __m256 a0 = _mm256_set1_ps(0.10f), a1 = _mm256_set1_ps(0.11f);
    __m256 a2 = _mm256_set1_ps(0.12f), a3 = _mm256_set1_ps(0.13f);
    __m256 a4 = _mm256_set1_ps(0.14f), a5 = _mm256_set1_ps(0.15f);
    __m256 a6 = _mm256_set1_ps(0.16f), a7 = _mm256_set1_ps(0.17f);
    __m256 a8 = _mm256_set1_ps(0.18f), a9 = _mm256_set1_ps(0.19f);
    __m256 a10 = _mm256_set1_ps(0.20f), a11 = _mm256_set1_ps(0.21f);

    long bursts = 0;
    double start = seconds(CLOCK_MONOTONIC), elapsed;
    double cpu_start = seconds(CLOCK_THREAD_CPUTIME_ID);
    do {
        for (long i = 0; i < BURST; i++) {
            a0 = _mm256_fmadd_ps(a0, m, c);
            a1 = _mm256_fmadd_ps(a1, m, c);
            a2 = _mm256_fmadd_ps(a2, m, c);
            a3 = _mm256_fmadd_ps(a3, m, c);
            a4 = _mm256_fmadd_ps(a4, m, c);
            a5 = _mm256_fmadd_ps(a5, m, c);
            a6 = _mm256_fmadd_ps(a6, m, c);
            a7 = _mm256_fmadd_ps(a7, m, c);
            a8 = _mm256_fmadd_ps(a8, m, c);
            a9 = _mm256_fmadd_ps(a9, m, c);
            a10 = _mm256_fmadd_ps(a10, m, c);
            a11 = _mm256_fmadd_ps(a11, m, c);
        }
        bursts++;
        elapsed = seconds(CLOCK_MONOTONIC) - start;
    } while (elapsed < target);
    double cpu = seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_start;

    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    report(bursts, 8, elapsed, cpu, lanes[0]);
}

/* The same loop with zmm registers. Only reached after the CPU check in main. */
__attribute__((target("avx512f"), noinline)) static void fma512(double target) {
    volatile float vm = 0.999f, vc = 0.001f; /* opaque to the optimiser */
    const __m512 m = _mm512_set1_ps(vm), c = _mm512_set1_ps(vc);

    __m512 a0 = _mm512_set1_ps(0.10f), a1 = _mm512_set1_ps(0.11f);
    __m512 a2 = _mm512_set1_ps(0.12f), a3 = _mm512_set1_ps(0.13f);
    __m512 a4 = _mm512_set1_ps(0.14f), a5 = _mm512_set1_ps(0.15f);
    __m512 a6 = _mm512_set1_ps(0.16f), a7 = _mm512_set1_ps(0.17f);
    __m512 a8 = _mm512_set1_ps(0.18f), a9 = _mm512_set1_ps(0.19f);
    __m512 a10 = _mm512_set1_ps(0.20f), a11 = _mm512_set1_ps(0.21f);

    long bursts = 0;
    double start = seconds(CLOCK_MONOTONIC), elapsed;
    double cpu_start = seconds(CLOCK_THREAD_CPUTIME_ID);
    do {
        for (long i = 0; i < BURST; i++) {
            a0 = _mm512_fmadd_ps(a0, m, c);
            a1 = _mm512_fmadd_ps(a1, m, c);
            a2 = _mm512_fmadd_ps(a2, m, c);
            a3 = _mm512_fmadd_ps(a3, m, c);
            a4 = _mm512_fmadd_ps(a4, m, c);
            a5 = _mm512_fmadd_ps(a5, m, c);
            a6 = _mm512_fmadd_ps(a6, m, c);
            a7 = _mm512_fmadd_ps(a7, m, c);
            a8 = _mm512_fmadd_ps(a8, m, c);
            a9 = _mm512_fmadd_ps(a9, m, c);
            a10 = _mm512_fmadd_ps(a10, m, c);
            a11 = _mm512_fmadd_ps(a11, m, c);
        }
        bursts++;
        elapsed = seconds(CLOCK_MONOTONIC) - start;
    } while (elapsed < target);
    double cpu = seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_start;

    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    float lanes[16];
    _mm512_storeu_ps(lanes, s);
    report(bursts, 16, elapsed, cpu, lanes[0]);
}

int main(int argc, char **argv) {
    double target = argc > 1 ? atof(argv[1]) : 0.5;
    const char *width = argc > 2 ? argv[2] : "256";
    if (strcmp(width, "256") == 0) {
        fma256(target);
    } else if (strcmp(width, "512") == 0) {
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx512f")) {
            fprintf(stderr, "fma_peak: this CPU has no AVX-512F: the 512-bit FMA loop "
                            "cannot run (use width 256)\n");
            return 2;
        }
        fma512(target);
    } else {
        fprintf(stderr, "usage: %s [seconds] [256|512]: unknown width '%s'\n", argv[0], width);
        return 1;
    }
    return 0;
}

/*
 * test_harness.h -- what every standalone C test of the kernels shares
 * (test_harness.c): a seeded random generator, allocation at exact sizes,
 * NaN prefill with sentinels between images, bitwise and scaled
 * comparisons, the one-line-per-check report with its failure counter, and
 * the loop over kernel paths (scalar / avx2 / avx512-source-on-avx2 /
 * avx512, as this build and CPU have them) and thread counts (1, 2, 3).
 *
 * A test program is one operator family in one element type: its body
 * test_<family>.inc is written once on sb_real (test_real.h; the buffers
 * and comparisons of each type are test_harness_typed.h) and compiled by
 * test_<family>.c for float32 and test_<family>_f64.c for float64:
 *
 *   int main(void)
 *   {
 *       test_begin(TEST_PROGRAM("pool")); // finds the kernel paths, checks dispatch
 *       ...checks, each ending in report() / report_isa()...
 *       return test_end();       // "all checks passed", exit status 0, or 1
 *   }
 *
 * It is built from every kernel file, the thread pool and this harness
 * (tests/ops/test_c_kernels.py does that for every csrc/tests/test_*.c):
 *   gcc -O2 -std=c99 -Wall -Wextra -pthread -Icsrc/include \
 *       csrc/kernels/[a-z]*.c csrc/runtime/parallel.c \
 *       csrc/tests/test_harness.c csrc/tests/test_pool.c -lm -o /tmp/test_pool
 * Buffers, workspaces included, are malloc'd at their exact sizes, so
 * valgrind --error-exitcode=1 catches any access past them.
 *
 * Conventions of the checks (NNPACK, XNNPACK, llm.c):
 *   - outputs are prefilled with NaN over each image's C*H*W payload and a
 *     sentinel in the gaps between images (batch_stride > C*H*W): a value
 *     a kernel forgot to write fails loudly, one it wrote past its image
 *     shows up as a lost sentinel;
 *   - every check reports its worst difference, not just pass or fail;
 *   - "exact" means bitwise, with any two NaNs equal (payloads may differ:
 *     which operand's NaN an x86 add keeps is not fixed);
 *   - a check that depends on the ISA runs on every kernel path, and a
 *     threaded one on 1, 2 and 3 threads, where results must be
 *     bit-identical.
 * Each test body states its tolerances once per type, at its top.
 */
#ifndef SB_TEST_HARNESS_H
#define SB_TEST_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_parallel.h"
#include "skipblocks.h"

/* Fills the gaps between images; must survive every kernel call. */
#define SENTINEL 12345.0f

/* ---- random numbers ------------------------------------------------------ */

/* xorshift64, seeded the same in every program: runs are reproducible. */
float frand(void);                    /* uniform in [-1, 1), 24 random bits */
double drand(void);                   /* uniform in [-1, 1), multiples of 2^-52 */
int64_t irand(int64_t lo, int64_t hi); /* uniform in [lo, hi], inclusive */

/* ---- buffers and comparisons, per element type --------------------------- */

/* Keeps the larger of *worst and d; a NaN d is kept (a failure). */
static inline void keep_worst(double *worst, double d)
{
    if (!(d <= *worst))
        *worst = d;
}

/* Elements a map occupies: N * batch_stride. */
int64_t map_floats(const sb_fmap *m);

/* alloc_real_f32 / _f64, same_real_f32 / _f64, ... (test_harness_typed.h);
 * a test body written on sb_real calls them through test_real.h. */
#define SB_REAL_BITS 32
#include "test_harness_typed.h"
#define SB_REAL_BITS 64
#include "test_harness_typed.h"

/* The float32 names of the programs written for float32 only
 * (test_operators.c): the _f32 instances above. */
#define alloc_f alloc_real_f32
#define fill_rand fill_rand_real_f32
#define fill_val fill_val_real_f32
#define dup_f dup_real_f32
#define abs_dup abs_dup_real_f32
#define same_float same_real_f32
#define count_not_same count_not_same_real_f32
#define max_rel max_rel_real_f32
#define max_scaled max_scaled_real_f32

/* ---- reporting ----------------------------------------------------------- */

/* One line per check group: name, cases run, worst difference, tolerance,
 * verdict. A group fails when worst > tol or extra_bad != 0 (wrong
 * statuses, lost sentinels, modified inputs, ...). */
void report(const char *name, int64_t cases, double worst, double tol, int64_t extra_bad);
/* report() with the kernel path in the name: "conv2d vs ref (avx2)". */
void report_isa(const char *what, int path, int64_t cases, double worst, double tol,
                int64_t bad);
/* Counts (and prints) a status other than want. */
void expect_status(const char *what, sb_status got, sb_status want, int64_t *bad);

/* ---- kernel paths and threads -------------------------------------------- */

/* The kernel paths every ISA-dependent check runs on: each ISA this build
 * and CPU have, plus, with AVX2, "avx512-source-on-avx2": the convolution's
 * AVX-512 micro-kernels compiled from the same source for AVX2
 * (sb_test_use_avx512_source_on_avx2), so their logic is checked on a CPU
 * without AVX-512; it must give exactly what the AVX2 path gives. */
enum { MAX_PATHS = 4 };
extern int g_n_isas;
/* The thread counts of threaded checks; 3 divides few work counts, so the
 * split is uneven. */
enum { N_THREADS = 3 };
extern const int g_threads[N_THREADS];

const char *path_name(int path);
sb_isa path_isa(int path);
/* Selects kernel path `path` (sb_set_isa and the avx512-source switch);
 * failures count into *bad. */
void use_isa(int path, int64_t *bad);
/* Sets the pool size (sb_set_num_threads), which the kernels' num_threads
 * arguments are given the same value as, so a split over n really runs on
 * n threads. */
void use_threads(int n, int64_t *bad);

/* ---- the program --------------------------------------------------------- */

/* Prints the program's name, finds the kernel paths (and checks the ISA
 * dispatch: "kernel paths checked: ..."). Call first. */
void test_begin(const char *program);
/* Restores the scalar path on 1 thread, prints the totals and "all checks
 * passed" or the number of failed groups; returns main's exit status. */
int test_end(void);

#endif /* SB_TEST_HARNESS_H */

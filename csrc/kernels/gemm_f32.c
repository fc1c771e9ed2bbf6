/*
 * gemm_f32.c -- single-precision row-major GEMM, the workhorse of conv2d.
 *
 *   c[i, j] (+)= sum_p a[i, p] * b[p, j]
 *   a: m x k, row stride lda;  b: k x n, row stride ldb;  c: m x n, row stride ldc
 *   accumulate == 0 overwrites c (c is never read, so it may hold NaN garbage);
 *   accumulate != 0 adds to c.
 *
 * torch parity: this is what torch's slow_conv2d / addmm compute. Results are
 * not bit-identical to MKL/oneDNN (summation order differs), only within
 * float rounding (~1e-6 relative). Every product is computed: no term is
 * skipped because an operand is zero, so NaN and inf propagate as in torch.
 *
 * Structure (GotoBLAS loop nest; kernels may not allocate, so only the
 * small B strip is packed, into a fixed-size stack buffer, and A is read in
 * place with its stride):
 *
 *   for jc over n in NC-wide column blocks      (B block ~ L2)
 *     for pc over k in KC-deep slices           (partial sums; later slices accumulate)
 *       for ic over m in MC-tall row blocks     (A block MC x KC ~ L2)
 *         for jr over NR-wide strips            (pack B strip KC x NR, stays in L1 ...)
 *           for ir over MR-tall strips          (... while the A strips stream past it)
 *             micro-kernel: MR x NR register tile over KC
 *
 * The micro-kernel is a separate static function taking (kc, a, lda,
 * packed b strip, c, ldc, accumulate), so that a later AVX2 / AVX-512
 * version can replace it through a dispatch table without touching the
 * loop nest. Written in plain
 * C with compile-time MR/NR so GCC -O3 keeps the tile in SSE registers and
 * vectorises the NR loop (checked on x86-64 SSE2 baseline). Column edges
 * (fewer than NR columns) run the full kernel on a zero-padded strip into a
 * scratch tile; row edges (fewer than MR rows) go to a bounds-checked scalar
 * kernel. Nothing outside a, b and the m x n part of c is read or written.
 *
 * Deliberately not done: packing A, transposed operands, alpha/beta scaling,
 * threading (the glue runs one kernel per call; parallelism comes later).
 */
#include "skipblocks.h"

/* 4 x 8 tile: 8 accumulators of 4 floats + 2 for the B row + 1 broadcast A
 * = 11 of the 16 SSE registers. A wider tile spills on the SSE2 baseline. */
#define SB_GEMM_MR 4
#define SB_GEMM_NR 8
/* KC x NR strip of B = 8 KiB, fits L1 with room for the A strips.
 * MC x KC block of A = 64 KiB and KC x NC block of B = 256 KiB target L2. */
#define SB_GEMM_KC 256
#define SB_GEMM_MC 64
#define SB_GEMM_NC 256

/*
 * GCC 12 at -O3 "vectorises" the k loop of a register-tile kernel as
 * in-order (fold-left) float reductions: shuffles and scalar adds, 3x slower
 * than scalar code that its SLP vectoriser turns into one SIMD multiply-add
 * per tile row. Turning the *loop* vectoriser off for these functions only
 * leaves the SLP vectoriser to do the intended thing. Other compilers do
 * not vectorise in-order FP reductions and need nothing.
 */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER)
#define SB_SLP_ONLY __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define SB_SLP_ONLY
#endif

static int64_t min_i64(int64_t x, int64_t y) { return x < y ? x : y; }

/*
 * Full MR x NR tile over kc terms. b is a packed strip: kc rows of NR floats,
 * contiguous (the layout SIMD micro-kernels expect, so a later __avx2
 * version takes the same arguments). acc starts at zero and c is only read
 * when accumulate != 0, matching the reference's summation start.
 *
 * The shape of this loop is chosen for GCC's SLP vectoriser: one flat
 * accumulator array, the A column loaded into av[] first, and B read
 * through a pointer bumped by NR. This compiles to 2 B loads, 4 broadcasts
 * and 8 mulps/addps pairs per k with all 32 sums in registers (about 30
 * GFLOP/s from L1 on a Zen core at SSE2). Seemingly equivalent spellings
 * (acc[i][j], indexing b[p * ldb + j]) made GCC 12 split vectors and spill.
 */
SB_SLP_ONLY
static void sb_gemm_f32_ukernel_4x8__scalar(int64_t kc,
                                            const float *restrict a, int64_t lda,
                                            const float *restrict b,
                                            float *restrict c, int64_t ldc,
                                            int accumulate)
{
    float acc[SB_GEMM_MR * SB_GEMM_NR];
    for (int j = 0; j < SB_GEMM_MR * SB_GEMM_NR; j++)
        acc[j] = 0.0f;
    const float *restrict bp = b;
    for (int64_t p = 0; p < kc; p++, bp += SB_GEMM_NR) {
        float av[SB_GEMM_MR];
        for (int i = 0; i < SB_GEMM_MR; i++)
            av[i] = a[i * lda + p];
        for (int i = 0; i < SB_GEMM_MR; i++)
            for (int j = 0; j < SB_GEMM_NR; j++)
                acc[i * SB_GEMM_NR + j] += av[i] * bp[j];
    }
    for (int i = 0; i < SB_GEMM_MR; i++) {
        float *restrict ci = c + i * ldc;
        const float *restrict ai = acc + i * SB_GEMM_NR;
        if (accumulate) {
            for (int j = 0; j < SB_GEMM_NR; j++)
                ci[j] += ai[j];
        } else {
            for (int j = 0; j < SB_GEMM_NR; j++)
                ci[j] = ai[j];
        }
    }
}

/* Partial tile: mr <= MR rows, nr <= NR columns of a packed strip (rows NR
 * floats apart). Same arithmetic order as the full tile, so a result does
 * not depend on where the tile edge fell. */
static void sb_gemm_f32_ukernel_edge__scalar(int64_t mr, int64_t nr, int64_t kc,
                                             const float *restrict a, int64_t lda,
                                             const float *restrict b,
                                             float *restrict c, int64_t ldc,
                                             int accumulate)
{
    float acc[SB_GEMM_MR][SB_GEMM_NR] = {{0.0f}};
    for (int64_t p = 0; p < kc; p++) {
        const float *restrict bp = b + p * SB_GEMM_NR;
        for (int64_t i = 0; i < mr; i++) {
            const float ai = a[i * lda + p];
            for (int64_t j = 0; j < nr; j++)
                acc[i][j] += ai * bp[j];
        }
    }
    for (int64_t i = 0; i < mr; i++) {
        float *restrict ci = c + i * ldc;
        for (int64_t j = 0; j < nr; j++)
            ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
    }
}

/* Copy a kc x nr block of B (row stride ldb) into a kc x NR contiguous
 * strip, zero-filling columns nr..NR-1. The full-width case has its own
 * fixed-length loop so it compiles to two vector moves per row. */
static void pack_b_strip(float *restrict dst, const float *restrict b, int64_t ldb,
                         int64_t kc, int64_t nr)
{
    if (nr == SB_GEMM_NR) {
        for (int64_t p = 0; p < kc; p++)
            for (int j = 0; j < SB_GEMM_NR; j++)
                dst[p * SB_GEMM_NR + j] = b[p * ldb + j];
        return;
    }
    for (int64_t p = 0; p < kc; p++) {
        int64_t j = 0;
        for (; j < nr; j++)
            dst[p * SB_GEMM_NR + j] = b[p * ldb + j];
        for (; j < SB_GEMM_NR; j++)
            dst[p * SB_GEMM_NR + j] = 0.0f;
    }
}

/* Shared argument checks of the fast and reference GEMM. Strides only matter
 * when there is more than one row to step over, so an m == 1 GEMM with any
 * lda >= 0 is accepted (the glue may hand over a vector view). */
static sb_status check_gemm_args(const float *c, const float *a, const float *b,
                                 int64_t m, int64_t n, int64_t k,
                                 int64_t lda, int64_t ldb, int64_t ldc)
{
    if (m < 0 || n < 0 || k < 0)
        return SB_ERR_SHAPE;
    if (lda < 0 || ldb < 0 || ldc < 0)
        return SB_ERR_ARGUMENT;
    if ((m > 1 && lda < k) || (k > 1 && ldb < n) || (m > 1 && ldc < n))
        return SB_ERR_ARGUMENT;
    /* Empty operands may come with a NULL data pointer; needed ones may not. */
    if ((m > 0 && n > 0 && c == NULL) || (m > 0 && k > 0 && n > 0 && (a == NULL || b == NULL)))
        return SB_ERR_NULL;
    return SB_OK;
}

sb_status sb_gemm_f32(float *restrict c, const float *restrict a,
                      const float *restrict b, int64_t m, int64_t n, int64_t k,
                      int64_t lda, int64_t ldb, int64_t ldc, int accumulate)
{
    sb_status st = check_gemm_args(c, a, b, m, n, k, lda, ldb, ldc);
    if (st != SB_OK)
        return st;
    if (m == 0 || n == 0)
        return SB_OK;
    if (k == 0) {
        /* An empty sum is 0: overwrite, or leave c as it is. */
        if (!accumulate)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++)
                    c[i * ldc + j] = 0.0f;
        return SB_OK;
    }

    /* The KC x NR strip of B, copied contiguous (8 KiB on the stack, no
     * allocation). Unpacked, its rows sit ldb floats apart -- for a conv,
     * OH*OW, often several KiB -- so every micro-kernel call would touch KC
     * different cache lines and pages; packed, it is 2 lines per 4 rows
     * and stays in L1 while all MC rows of A stream past it. Columns past
     * n are zero-filled; their results land in a scratch tile and are
     * dropped, so they never reach c. */
    float bpack[SB_GEMM_KC * SB_GEMM_NR];
    float tile[SB_GEMM_MR * SB_GEMM_NR];

    for (int64_t jc = 0; jc < n; jc += SB_GEMM_NC) {
        const int64_t nc = min_i64(SB_GEMM_NC, n - jc);
        for (int64_t pc = 0; pc < k; pc += SB_GEMM_KC) {
            const int64_t kc = min_i64(SB_GEMM_KC, k - pc);
            /* Only the first k-slice may overwrite; the rest add to it. */
            const int acc_flag = (pc == 0) ? accumulate : 1;
            for (int64_t ic = 0; ic < m; ic += SB_GEMM_MC) {
                const int64_t mc = min_i64(SB_GEMM_MC, m - ic);
                for (int64_t jr = 0; jr < nc; jr += SB_GEMM_NR) {
                    const int64_t nr = min_i64(SB_GEMM_NR, nc - jr);
                    const float *bj = b + pc * ldb + jc + jr;
                    pack_b_strip(bpack, bj, ldb, kc, nr);
                    for (int64_t ir = 0; ir < mc; ir += SB_GEMM_MR) {
                        const int64_t mr = min_i64(SB_GEMM_MR, mc - ir);
                        const float *ai = a + (ic + ir) * lda + pc;
                        float *cij = c + (ic + ir) * ldc + jc + jr;
                        if (mr == SB_GEMM_MR && nr == SB_GEMM_NR) {
                            sb_gemm_f32_ukernel_4x8__scalar(kc, ai, lda, bpack, cij, ldc, acc_flag);
                        } else if (mr == SB_GEMM_MR) {
                            /* Column edge: full tile into scratch, keep nr columns. */
                            sb_gemm_f32_ukernel_4x8__scalar(kc, ai, lda, bpack, tile, SB_GEMM_NR, 0);
                            for (int64_t i = 0; i < SB_GEMM_MR; i++)
                                for (int64_t j = 0; j < nr; j++) {
                                    const float t = tile[i * SB_GEMM_NR + j];
                                    cij[i * ldc + j] = acc_flag ? cij[i * ldc + j] + t : t;
                                }
                        } else {
                            /* Row edge: fewer than MR rows of A exist; never read past them. */
                            sb_gemm_f32_ukernel_edge__scalar(mr, nr, kc, ai, lda, bpack,
                                                             cij, ldc, acc_flag);
                        }
                    }
                }
            }
        }
    }
    return SB_OK;
}

/* Textbook triple loop, one float accumulator per output. For tests only. */
sb_status sb_gemm_f32__ref(float *restrict c, const float *restrict a,
                           const float *restrict b, int64_t m, int64_t n, int64_t k,
                           int64_t lda, int64_t ldb, int64_t ldc, int accumulate)
{
    sb_status st = check_gemm_args(c, a, b, m, n, k, lda, ldb, ldc);
    if (st != SB_OK)
        return st;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            float sum = 0.0f;
            for (int64_t p = 0; p < k; p++)
                sum += a[i * lda + p] * b[p * ldb + j];
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
    }
    return SB_OK;
}

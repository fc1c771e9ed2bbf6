/*
 * gemm_ukernel_typed.h -- internal: the micro-kernel types and variants of
 * gemm_ukernel.h for one element type. No include guard: gemm_ukernel.h
 * includes it once per type (SB_REAL_BITS 32, then 64; sb_real_begin.h).
 */
#include "sb_real_begin.h"

typedef void (*SB_FN_(sb_gemm, _ukernel))(int64_t kc, const sb_real *a, const sb_real *b,
                                          sb_real *c, int64_t ldc, int accumulate);

/* Two packed panels, the second at b + b_next (wide kernels only). */
typedef void (*SB_FN_(sb_gemm, _wide_ukernel))(int64_t kc, const sb_real *a, const sb_real *b,
                                               int64_t b_next, sb_real *c, int64_t ldc,
                                               int accumulate);

typedef void (*SB_FN_(sb_igemm, _ukernel))(int64_t kc, const sb_real *a, const sb_real *b,
                                           const int64_t *b_offsets, sb_real *c, int64_t ldc,
                                           int accumulate);

typedef void (*SB_FN_(sb_pixgemm, _ukernel))(int64_t kc, const sb_real *const *pixels,
                                             const int64_t *offsets, const sb_real *w,
                                             int64_t w_next, sb_real *c, int64_t ldc,
                                             int accumulate);

/* Pixel rows stored straight into a channel-blocked output (NR lanes per
 * pixel, so pixel i's NR channels of one panel are the run c + i*NR), the
 * convolution's epilogue applied by the kernel on the last K block instead
 * of by a pass over a tile buffer. A kernel computes the pixgemm sums of its
 * MR pixels and stores rows i < rows only (a partial last block repeats its
 * last pixel; the repeats are not stored). Its kc rows of k are one or more
 * of the convolution's K blocks, sum_block rows each (the last one may be
 * shorter), and it adds them up as separate calls of one K block would:
 *   v = c[i] when accumulate (the sums of the earlier K blocks), then for
 *   each K block in turn v = block sum (+ v, from the second term on);
 *   when bias != NULL (the last K block): v = (v + bias) [+ res[i]], then
 *   torch.relu if relu (v < 0 -> 0; NaN and -0.0 kept) -- the order of the
 *   tile-buffer stores, so the bits are theirs.
 * A wide kernel's second panel is at c + c_next (its biases at bias +
 * bias_next, its residual at res + c_next); a one-panel kernel ignores both
 * offsets. */
typedef struct {
    sb_real *c;
    int64_t c_next;
    int64_t rows; /* 1..the kernel's rows (6, or 7 for _wide7) */
    int accumulate;
    const sb_real *bias; /* NULL: not the last K block, store the sums */
    int64_t bias_next;
    const sb_real *res;  /* NULL: no residual; laid out like c */
    int relu;
    int64_t sum_block; /* > 0: the rows of one K block */
    /* NULL, or kc cache lines (kc x NR values) the caller will read next --
     * the next call's weights -- which a kernel may prefetch while it
     * computes (a hint: no effect on any result) */
    const sb_real *prefetch;
} SB_FN_(sb_pixgemm, _out);

typedef void (*SB_FN_(sb_pixgemm_out, _ukernel))(int64_t kc, const sb_real *const *pixels,
                                                 const int64_t *offsets, const sb_real *w,
                                                 int64_t w_next,
                                                 const SB_FN_(sb_pixgemm, _out) *out);

/* One name per variant: the gemm/igemm/pixgemm/pixgemm_out contracts above
 * (the pixel-row pair alone for the wide kernels, whose pixgemm and
 * pixgemm_out take the one-panel signature: w_next is their second panel). */
#define SB_UK_DECLARE_PIXEL(suffix)                                                        \
    void SB_FN_(sb_pixgemm, _ukernel##suffix)(int64_t kc, const sb_real *const *pixels,  \
                                              const int64_t *offsets, const sb_real *w,   \
                                              int64_t w_next, sb_real *c, int64_t ldc,   \
                                              int accumulate);                           \
    void SB_FN_(sb_pixgemm_out, _ukernel##suffix)(int64_t kc, const sb_real *const *pixels, \
                                                  const int64_t *offsets, const sb_real *w, \
                                                  int64_t w_next,                          \
                                                  const SB_FN_(sb_pixgemm, _out) *out);
#define SB_UK_DECLARE(suffix)                                                            \
    void SB_FN_(sb_gemm, _ukernel##suffix)(int64_t kc, const sb_real *a, const sb_real *b, \
                                           sb_real *c, int64_t ldc, int accumulate);     \
    void SB_FN_(sb_igemm, _ukernel##suffix)(int64_t kc, const sb_real *a, const sb_real *b,\
                                            const int64_t *b_offsets, sb_real *c,         \
                                            int64_t ldc, int accumulate);                \
    SB_UK_DECLARE_PIXEL(suffix)

SB_UK_DECLARE(__scalar)
#ifdef SB_HAVE_AVX2_KERNELS
SB_UK_DECLARE(__avx2)
/* the wide (two-panel) kernels; the convolution's final, partial panel
 * (packed) runs the one-panel gemm kernel, Linear's full panel pairs the
 * wide one */
void SB_FN_(sb_gemm, _ukernel_wide__avx512)(int64_t kc, const sb_real *a, const sb_real *b,
                                            int64_t b_next, sb_real *c, int64_t ldc,
                                            int accumulate);
void SB_FN_(sb_gemm, _ukernel_wide__avx512_source_on_avx2)(
    int64_t kc, const sb_real *a, const sb_real *b, int64_t b_next, sb_real *c, int64_t ldc,
    int accumulate);
void SB_FN_(sb_igemm, _ukernel_wide__avx512)(int64_t kc, const sb_real *a, const sb_real *b,
                                             const int64_t *b_offsets, sb_real *c,
                                             int64_t ldc, int accumulate);
void SB_FN_(sb_igemm, _ukernel_wide__avx512_source_on_avx2)(
    int64_t kc, const sb_real *a, const sb_real *b, const int64_t *b_offsets, sb_real *c,
    int64_t ldc, int accumulate);
SB_UK_DECLARE_PIXEL(_wide__avx512)
SB_UK_DECLARE_PIXEL(_wide__avx512_source_on_avx2)
/* seven pixel rows (gemm_ukernel_2v.inc, SB_UK_ROWS 7): pixels[0..6], out->rows <= 7 */
SB_UK_DECLARE_PIXEL(_wide7__avx512)
SB_UK_DECLARE_PIXEL(_wide7__avx512_source_on_avx2)
#endif
#undef SB_UK_DECLARE
#undef SB_UK_DECLARE_PIXEL

/* The micro-kernels of `isa` (ukernel_select.inc). The wide ones are NULL
 * when the ISA has none (callers then run the one-panel kernel panel by
 * panel). */
SB_FN_(sb_gemm, _ukernel) SB_FN_(sb_gemm, _ukernel_for)(sb_isa isa);
SB_FN_(sb_gemm, _wide_ukernel) SB_FN_(sb_gemm, _wide_ukernel_for)(sb_isa isa);
SB_FN_(sb_igemm, _ukernel) SB_FN_(sb_igemm, _ukernel_for)(sb_isa isa);
SB_FN_(sb_igemm, _ukernel) SB_FN_(sb_igemm, _wide_ukernel_for)(sb_isa isa);
SB_FN_(sb_pixgemm, _ukernel) SB_FN_(sb_pixgemm, _ukernel_for)(sb_isa isa);
SB_FN_(sb_pixgemm, _ukernel) SB_FN_(sb_pixgemm, _wide_ukernel_for)(sb_isa isa);
SB_FN_(sb_pixgemm_out, _ukernel) SB_FN_(sb_pixgemm_out, _ukernel_for)(sb_isa isa);
SB_FN_(sb_pixgemm_out, _ukernel) SB_FN_(sb_pixgemm_out, _wide_ukernel_for)(sb_isa isa);
/* The seven-row wide pixel kernels, NULL where the ISA has none (rows 7
 * come in pairs of panels only). */
SB_FN_(sb_pixgemm, _ukernel) SB_FN_(sb_pixgemm, _wide7_ukernel_for)(sb_isa isa);
SB_FN_(sb_pixgemm_out, _ukernel) SB_FN_(sb_pixgemm_out, _wide7_ukernel_for)(sb_isa isa);

#include "sb_real_end.h"

/*
 * test_harness_typed.h -- the harness's buffers and comparisons for one
 * element type, as the kernels are written (sb_real_begin.h): no include
 * guard, test_harness.h includes it once per type (SB_REAL_BITS 32, then
 * 64), which gives alloc_real_f32 / alloc_real_f64 and so on. A test body
 * written once on sb_real calls them by their generic names (alloc_real,
 * same_real, ...: test_real.h maps those to the type it is compiled for).
 * static inline: each program uses the few it needs, without warnings.
 *
 *   rand_real            uniform in [-1, 1): float32 24 random bits (frand),
 *                        float64 52 random mantissa bits (drand), so
 *                        float64 products round: float-valued inputs would
 *                        make every double product exact and FMA and
 *                        separate rounding indistinguishable
 *   alloc_real           count elements, NULL for count <= 0 (kernels take
 *                        NULL for empty buffers); exits 2 out of memory
 *   fill_rand_real, fill_val_real, copy_real, dup_real, abs_dup_real
 *   prefill_map_real     NaN over each image's C*H*W payload, SENTINEL in
 *                        the gaps; count_bad_gaps_real: gaps that lost it
 *   same_real            bitwise equality, any two NaNs equal;
 *                        count_not_same_real, count_not_same_maps_real
 *   scaled_diff_real     |fast - ref| / (1 + |mag|); 0 for two NaNs or equal
 *                        infinities, inf for a NaN or infinity on one side
 *   rel_diff_real        scaled_diff against 1 + |ref|; max_rel_real
 *   max_scaled_real      max scaled_diff; mag NULL: relative to 1 + |ref|
 *   ulp_diff_real        values of the type between a and b (0 when same)
 *   sprinkle_specials_real  NaN, +-inf and -0.0 at about `rate` of places
 *   relu_real            torch.relu: v < 0 ? 0 : v keeps NaN and -0.0
 */
#include "sb_real_begin.h"

static inline sb_real SB_FN(rand_real)(void)
{
#if SB_REAL_IS_F32
    return frand();
#else
    return drand();
#endif
}

static inline sb_real *SB_FN(alloc_real)(int64_t count)
{
    /* malloc(0) may return NULL; kernels accept NULL for empty buffers. */
    sb_real *p = count > 0 ? malloc((size_t)count * sizeof(sb_real)) : NULL;
    if (count > 0 && p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static inline void SB_FN(fill_rand_real)(sb_real *p, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = SB_FN(rand_real)();
}

static inline void SB_FN(fill_val_real)(sb_real *p, int64_t count, sb_real v)
{
    for (int64_t i = 0; i < count; i++)
        p[i] = v;
}

static inline void SB_FN(copy_real)(sb_real *dst, const sb_real *src, int64_t count)
{
    if (count > 0)
        memcpy(dst, src, (size_t)count * sizeof(sb_real));
}

static inline sb_real *SB_FN(dup_real)(const sb_real *src, int64_t count)
{
    sb_real *p = SB_FN(alloc_real)(count);
    SB_FN(copy_real)(p, src, count);
    return p;
}

static inline sb_real *SB_FN(abs_dup_real)(const sb_real *src, int64_t count)
{
    sb_real *p = SB_FN(dup_real)(src, count);
    for (int64_t i = 0; i < count; i++)
        p[i] = (sb_real)fabs((double)p[i]); /* exact for either type */
    return p;
}

static inline void SB_FN(prefill_map_real)(sb_real *y, const sb_fmap *m)
{
    const int64_t chw = m->c * m->h * m->w;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = 0; i < m->batch_stride; i++)
            y[n * m->batch_stride + i] = i < chw ? (sb_real)NAN : (sb_real)SENTINEL;
}

static inline int64_t SB_FN(count_bad_gaps_real)(const sb_real *y, const sb_fmap *m)
{
    int64_t bad = 0;
    for (int64_t n = 0; n < m->n; n++)
        for (int64_t i = m->c * m->h * m->w; i < m->batch_stride; i++)
            bad += y[n * m->batch_stride + i] != (sb_real)SENTINEL;
    return bad;
}

static inline int SB_FN(same_real)(sb_real a, sb_real b)
{
    if (a != a || b != b)
        return a != a && b != b;
    return memcmp(&a, &b, sizeof a) == 0;
}

static inline int64_t SB_FN(count_not_same_real)(const sb_real *a, const sb_real *b,
                                                 int64_t count)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < count; i++)
        bad += !SB_FN(same_real)(a[i], b[i]);
    return bad;
}

/* Elements of the C*H*W payloads of two maps of one shape (their own batch
 * strides) that are not the same. */
static inline int64_t SB_FN(count_not_same_maps_real)(const sb_real *a, const sb_fmap *am,
                                                      const sb_real *b, const sb_fmap *bm)
{
    const int64_t chw = am->c * am->h * am->w;
    int64_t bad = 0;
    for (int64_t n = 0; n < am->n; n++)
        bad += SB_FN(count_not_same_real)(a + n * am->batch_stride, b + n * bm->batch_stride,
                                          chw);
    return bad;
}

static inline double SB_FN(scaled_diff_real)(sb_real fast, sb_real ref, sb_real mag)
{
    if (fast != fast || ref != ref)
        return (fast != fast && ref != ref) ? 0.0 : INFINITY;
    if (isinf(fast) || isinf(ref))
        return fast == ref ? 0.0 : INFINITY;
    return fabs((double)fast - (double)ref) / (1.0 + fabs((double)mag));
}

static inline double SB_FN(rel_diff_real)(sb_real fast, sb_real ref)
{
    return SB_FN(scaled_diff_real)(fast, ref, ref);
}

static inline double SB_FN(max_scaled_real)(const sb_real *fast, const sb_real *ref,
                                            const sb_real *mag, int64_t count)
{
    double m = 0.0;
    for (int64_t i = 0; i < count; i++)
        keep_worst(&m, SB_FN(scaled_diff_real)(fast[i], ref[i], mag != NULL ? mag[i] : ref[i]));
    return m;
}

static inline double SB_FN(max_rel_real)(const sb_real *fast, const sb_real *ref, int64_t count)
{
    return SB_FN(max_scaled_real)(fast, ref, NULL, count);
}

static inline double SB_FN(ulp_diff_real)(sb_real a, sb_real b)
{
    if (a != a || b != b)
        return (a != a && b != b) ? 0.0 : INFINITY;
    if (SB_FN(same_real)(a, b))
        return 0.0;
    /* the bits as signed integers that count values in order (-0.0 and
     * +0.0 both 0); -0.0 against +0.0 is one step: not bitwise the same */
#if SB_REAL_IS_F32
    int32_t ia, ib;
    const int32_t sign = INT32_MIN;
#else
    int64_t ia, ib;
    const int64_t sign = INT64_MIN;
#endif
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    const double oa = ia < 0 ? -(double)(ia & ~sign) : (double)ia;
    const double ob = ib < 0 ? -(double)(ib & ~sign) : (double)ib;
    const double d = fabs(oa - ob);
    return d == 0.0 ? 1.0 : d;
}

static inline void SB_FN(sprinkle_specials_real)(sb_real *x, int64_t count, double rate)
{
    for (int64_t i = 0; i < count; i++)
        if ((SB_FN(rand_real)() + 1) * 0.5 < rate) {
            const sb_real u = SB_FN(rand_real)();
            x[i] = u > 0.5 ? (sb_real)NAN : u > 0 ? (sb_real)INFINITY
                 : u > -0.5 ? (sb_real)-INFINITY : (sb_real)-0.0;
        }
}

static inline sb_real SB_FN(relu_real)(sb_real v)
{
    return v < 0 ? (sb_real)0 : v;
}

#include "sb_real_end.h"

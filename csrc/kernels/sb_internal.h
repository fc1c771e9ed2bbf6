/*
 * sb_internal.h -- internal helpers shared by the kernel files. Not part of
 * the public API (csrc/include/skipblocks.h); nothing outside csrc/kernels/
 * includes it.
 */
#ifndef SB_INTERNAL_H
#define SB_INTERNAL_H

#include "sb_parallel.h"
#include "skipblocks.h"

/* A feature map's sizes are usable: nothing negative, and images do not
 * overlap (batch_stride >= C*H*W). batch_stride is irrelevant, and may be
 * anything numpy reports for a length-1 axis, when there is at most one
 * image. Every kernel that takes an sb_fmap checks it with this one rule. */
static inline int sb_fmap_ok(const sb_fmap *f)
{
    if (f->n < 0 || f->c < 0 || f->h < 0 || f->w < 0)
        return 0;
    return f->n <= 1 || f->batch_stride >= f->c * f->h * f->w;
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Saturating size arithmetic for nonnegative operands: the exact result, or
 * INT64_MAX when it would not fit. Sizes derived from user parameters (a
 * stride or padding near SB_CONV_PARAM_MAX) are computed with these, so an
 * out-of-range size shows up as a huge value that a limit check rejects,
 * never as a small wrapped one that undersizes a buffer. */
static inline int64_t sat_add64(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}
static inline int64_t sat_mul64(int64_t a, int64_t b)
{
    return (a != 0 && b > INT64_MAX / a) ? INT64_MAX : a * b;
}

/* The most floats a kernel workspace may have: its size in bytes, and any
 * offset into it, then fit in int64 (and in size_t on 64-bit hosts). */
#define SB_WORKSPACE_FLOATS_MAX (INT64_MAX / 8)

/* Element-wise and per-plane kernels split their work over the thread pool
 * only when it touches at least this many floats: below that, waking a
 * thread costs more than it saves. Every split is over independent outputs
 * (elements, planes, channels), never inside a sum, so results do not
 * depend on the thread count. */
#define SB_PARALLEL_MIN_FLOATS ((int64_t)1 << 16)

/* sb_parallel_for over `count` items of about `floats_per_item` floats each,
 * with the grain that keeps small work on the calling thread. */
static inline void sb_parallel_items(int64_t count, int64_t floats_per_item,
                                     sb_parallel_task task, void *ctx)
{
    const int64_t per = floats_per_item > 0 ? floats_per_item : 1;
    const int64_t grain = SB_PARALLEL_MIN_FLOATS / per > 0 ? SB_PARALLEL_MIN_FLOATS / per : 1;
    sb_parallel_for(count, grain, task, ctx);
}

#endif /* SB_INTERNAL_H */

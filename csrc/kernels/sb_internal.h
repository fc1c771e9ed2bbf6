/*
 * sb_internal.h -- internal helpers shared by the kernel files. Not part of
 * the public API (csrc/include/skipblocks.h); nothing outside csrc/kernels/
 * includes it.
 */
#ifndef SB_INTERNAL_H
#define SB_INTERNAL_H

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

#endif /* SB_INTERNAL_H */

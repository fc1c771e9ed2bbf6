/*
 * scratch.c -- the glue's scratch memory: the workspaces operators borrow
 * for one call (sb_glue_scratch_take / sb_glue_scratch_give, glue.h).
 */
#include "glue.h"

/* ------------------------------------------------------------------ */
/* Scratch memory. Operator workspaces (staged inputs, tile sums) are   */
/* often hundreds of KiB: a fresh malloc of that size is an mmap, and   */
/* touching its pages again costs tens of microseconds per call -- a    */
/* tenth of a small convolution. One arena is kept and reused; it grows */
/* to the largest workspace seen. Taken and given back with the GIL     */
/* held, so a second Python thread calling in meanwhile (the operator   */
/* runs without the GIL) simply gets a malloc of its own.               */
/* ------------------------------------------------------------------ */
static void *g_arena = NULL;
static size_t g_arena_bytes = 0;
static int g_arena_busy = 0;

/* The arena keeps at most this much between calls (64 MiB: the largest
 * workspace of the demos at batch 8 x 224 x 224 is about 13 MB); a larger
 * one, from an unusually large call, is given back to the system at once
 * rather than held for the life of the process. */
#define SCRATCH_KEEP_BYTES ((size_t)64 << 20)

/* In the AddressSanitizer build (SKIPBLOCKS_SANITIZE=1) the part of the
 * arena past the current workspace is poisoned while that workspace is in
 * use: the arena grows to the largest workspace seen, so without this a
 * write past a smaller workspace would land in memory ASan considers valid
 * and go unseen. (ASan tracks 8-byte granules: an overrun of fewer than 8
 * bytes past an unaligned end can escape, as with malloc.) */
#if SB_SANITIZE && defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifdef ASAN_POISON_MEMORY_REGION
#define SB_ASAN_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SB_ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SB_ASAN_POISON(p, n) ((void)(p), (void)(n))
#define SB_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static void arena_unpoison(void)
{
    if (g_arena != NULL)
        SB_ASAN_UNPOISON(g_arena, g_arena_bytes);
}

int sb_glue_scratch_take(sb_scratch *s, size_t bytes)
{
    s->ptr = NULL;
    s->from_arena = 0;
    if (bytes > (size_t)PY_SSIZE_T_MAX) {
        PyErr_NoMemory(); /* more bytes than this address space has */
        return -1;
    }
    size_t want = bytes > 0 ? bytes : 1;
    if (!g_arena_busy) {
        if (g_arena_bytes < want) {
            arena_unpoison();
            PyMem_RawFree(g_arena);
            g_arena = PyMem_RawMalloc(want);
            g_arena_bytes = g_arena != NULL ? want : 0;
        }
        if (g_arena != NULL) {
            g_arena_busy = 1;
            s->ptr = g_arena;
            s->from_arena = 1;
            /* the arena past this call's workspace: out of bounds for it */
            SB_ASAN_POISON((char *)g_arena + want, g_arena_bytes - want);
            return 0;
        }
    }
    s->ptr = PyMem_RawMalloc(want);
    if (s->ptr == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void sb_glue_scratch_give(sb_scratch *s)
{
    if (s->ptr == NULL)
        return;
    if (!s->from_arena) {
        PyMem_RawFree(s->ptr);
    } else {
        arena_unpoison();
        if (g_arena_bytes > SCRATCH_KEEP_BYTES) {
            PyMem_RawFree(g_arena);
            g_arena = NULL;
            g_arena_bytes = 0;
        }
        g_arena_busy = 0;
    }
    s->ptr = NULL;
}

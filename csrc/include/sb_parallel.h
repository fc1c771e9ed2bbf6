/*
 * sb_parallel.h -- the thread-pool runtime of skipblocks: one parallel loop
 * primitive (sb_parallel_for) and the thread-count settings.
 *
 * The kernels split their *independent outputs* (images, output channels,
 * rows of a GEMM tile) over threads; they never split a reduction. So every
 * output element is computed by exactly one task with the same arithmetic
 * whatever the thread count, and results are bit-identical for 1, 2 or 64
 * threads. The runtime only has to guarantee that each index is visited
 * exactly once and that the split is deterministic.
 *
 * The contract, in one place:
 *   - Persistent workers, created lazily by the first sb_parallel_for that
 *     needs them and reused afterwards. After a loop the workers spin for a
 *     few tens of microseconds (so back-to-back kernels dispatch in ~1 us),
 *     then sleep on a condition variable: an idle pool costs no CPU, which
 *     matters because torch may run its own thread pool in the same process.
 *   - Nested calls (a task calling sb_parallel_for) run serially on the
 *     thread that makes them: no deadlock, no oversubscription.
 *   - Concurrent callers (two Python threads, GIL released) are serialised:
 *     the second blocks until the first loop is done, then gets the whole
 *     pool. Total threads in use never exceed sb_get_num_threads().
 *   - fork(): a child process starts with no pool and builds a fresh one on
 *     its first sb_parallel_for; the parent's pool keeps working. Forking
 *     from *inside* a task is not supported.
 *   - If threads cannot be created, the loop still completes: the calling
 *     thread runs the chunks that have no worker. Nothing here aborts,
 *     exits or prints.
 *   - Windows builds run every loop on the calling thread (no pool).
 *
 *   - Workers take the CPU affinity mask of the thread that creates the
 *     pool (the first caller that needs them). On Linux a worker that finds
 *     itself on the caller's CPU when it starts a chunk moves off it (it
 *     drops that CPU from its own mask until the caller runs elsewhere), so
 *     the two do not time-share a core while another core is busy with some
 *     other thread.
 *
 * Not done: work stealing or dynamic scheduling (chunks are static and
 * equal, which suits the uniform work of the kernels), pinning threads to
 * cores, and per-call thread counts.
 */
#ifndef SB_PARALLEL_H
#define SB_PARALLEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A task computes items [begin, end) of a parallel loop. ctx is the caller's. */
typedef void (*sb_parallel_task)(void *ctx, int64_t begin, int64_t end);

/* Largest value sb_set_num_threads accepts (and the cap on the default). */
#define SB_MAX_THREADS 1024

/*
 * Runs task over [0, count), split into contiguous chunks, on up to
 * sb_get_num_threads() threads; the calling thread runs chunk 0. Returns when
 * every chunk is done, and everything the tasks wrote is then visible to the
 * caller.
 *
 * grain is the minimum number of items per chunk (values < 1 mean 1), so
 * small work stays on one thread: if count <= grain, task(ctx, 0, count) is
 * called directly on the caller with no synchronisation at all. count <= 0
 * calls nothing.
 *
 * The split is a pure function of (count, grain, number of threads):
 *   chunks = min(threads, count / grain)    (1 when count <= grain)
 *   chunk i has count / chunks items, plus one for the first count % chunks,
 * in order, so every chunk has at least grain items and sizes differ by at
 * most one. It does not depend on how many workers actually started.
 */
void sb_parallel_for(int64_t count, int64_t grain, sb_parallel_task task, void *ctx);

/* The number of threads loops use (the caller included): the last value
 * given to sb_set_num_threads, else sb_default_num_threads(). */
int sb_get_num_threads(void);

/* 1 <= n <= SB_MAX_THREADS; returns 0 on success, nonzero (and changes
 * nothing) if n is out of range. An existing pool of another size is joined
 * here (or, when called from inside a task, at the next loop); the new
 * workers are created lazily by the next sb_parallel_for that needs them. */
int sb_set_num_threads(int n);

/* The default: the number of CPUs this process may use (sched_getaffinity on
 * Linux, sysconf(_SC_NPROCESSORS_ONLN) elsewhere; 1 on Windows, which has no
 * pool), overridden by the environment variable SKIPBLOCKS_NUM_THREADS when
 * it holds a positive integer. Computed once, on first use; capped at
 * SB_MAX_THREADS. */
int sb_default_num_threads(void);

/* For tests only: applies a worker's "do not stay on the caller's CPU" rule
 * to the calling thread (with a state of its own), as a worker does when it
 * claims a job the caller assigned from CPU caller_cpu. */
void sb_parallel_test_avoid_caller_cpu(int caller_cpu);

#ifdef __cplusplus
}
#endif
#endif /* SB_PARALLEL_H */

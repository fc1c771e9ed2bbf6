/*
 * parallel.c -- the thread pool behind sb_parallel_for (contract in
 * sb_parallel.h).
 *
 * Design, and why:
 *   - One pool of N-1 persistent workers (N = sb_get_num_threads()); the
 *     calling thread is the N-th. Chunk i (i >= 1) of a loop always goes to
 *     worker i-1, so the split is static and each worker has its own job
 *     slot: the caller writes a slot only while that worker is idle, and no
 *     worker ever reads another's slot (no shared "current job" that a
 *     late-waking, non-participating worker could read half-updated).
 *   - Hand-off: the caller fills a slot, then bumps the slot's generation
 *     counter (release). An idle worker spins on its counter for up to
 *     SB_SPIN_NS, then sleeps on its own condition variable; the caller takes
 *     the worker's mutex and signals only if the worker said it is sleeping.
 *     Completion is the mirror image: a shared pending counter, the caller
 *     spins (yielding its CPU after SB_YIELD_AFTER_NS, in case a worker is
 *     waiting for one), then sleeps on done_cv. The "sleeping" flags and the counters
 *     use sequentially consistent atomics so that, of the two threads, at
 *     least one sees the other's store (the Dekker pattern); the mutexes then
 *     make the signal arrive after the sleeper is really waiting. Waking a
 *     sleeping futex costs tens of microseconds; the short spin keeps the
 *     common case (kernels called back to back) at about a microsecond,
 *     while an idle pool goes to sleep and stays off the CPU.
 *   - Only the workers a loop needs are woken (a 2-chunk loop on a 64-thread
 *     pool touches one worker), not a broadcast to all.
 *   - Concurrent callers are serialised by g_call_mu, held for the whole
 *     loop: simple, and the pool is never oversubscribed. Nested calls
 *     (g_in_region set on workers always, and on the caller during its loop)
 *     run serially, which also keeps them from taking g_call_mu twice.
 *   - fork(): pthread_atfork's prepare handler takes g_call_mu and
 *     g_config_mu, so no loop is in flight and the settings are consistent
 *     when the process is copied. In the child the workers do not exist: the
 *     child handler drops the pool (its memory is freed, without touching its
 *     possibly-locked mutexes, at the next pool creation) and releases the
 *     two locks; the child's next loop builds a fresh pool with fresh mutexes
 *     and condvars. The parent just releases the locks.
 *   - pthread_create failing leaves a smaller pool; the caller runs the
 *     chunks that have no worker, so the split never changes.
 *   - Workers are created with all signals blocked: signals go to the
 *     Python main thread, never interrupt a kernel on a worker.
 *   - At process exit the workers are simply left asleep (the OS reclaims
 *     them): joining them from an atexit handler buys nothing and could run
 *     after the interpreter has started tearing down.
 *
   - Late workers: after its own chunk the caller claims (compare-and-swap
 *     on the slot's `taken` generation) every chunk whose worker has not
 *     claimed it yet, and runs it itself; it then waits only for chunks a
 *     worker really started. So a worker that cannot get a core (another
 *     library's threads spinning on it) slows a loop down to one thread's
 *     speed at worst, never to the scheduler's time slice.
 *
 *   - A worker does not stay on the caller's CPU (Linux): the caller notes
 *     its CPU in each job, and a worker that finds itself on that CPU when
 *     it claims the job first takes that CPU out of its own affinity mask
 *     (the kernel moves it at once), then runs the chunk. Why: with more
 *     runnable threads than cores -- torch's OpenMP worker spin-waits for
 *     milliseconds after each torch op, so with torch running in the same
 *     process there are three on two cores -- the scheduler may leave the
 *     caller and our worker time-sharing one core while the other core
 *     holds the spinner, and then a 2-thread loop ran slower than one
 *     thread: the two ping-ponged on the core, each spinning while the
 *     other needed it (seen with `perf sched`: SEAttention at 2 threads
 *     beside torch took 1.1-1.2 ms in four of seven processes, against
 *     0.39-0.58 ms in all seven with this rule). The new mask is the
 *     worker's current mask minus that one CPU, never empty; the CPU is put
 *     back once the caller runs elsewhere, unless the mask was changed from
 *     outside meanwhile (that change stands). Only a collision or that
 *     restore costs a system call.
 *
 * Not done: pinning threads to cores, per-call thread counts, a pool on
 * Windows (every loop there runs on the calling thread).
 *
 * Needs C99 plus the GCC/Clang __atomic builtins and __thread on POSIX.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT; must precede every include */
#endif

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "sb_parallel.h"

/* ------------------------------------------------------------------ */
/* Shared by both builds: the environment override.                    */
/* ------------------------------------------------------------------ */

/* SKIPBLOCKS_NUM_THREADS as a positive integer (surrounding blanks allowed),
 * capped at SB_MAX_THREADS; 0 if unset or not a positive integer, so that a
 * typo falls back to the CPU count instead of to one thread. */
static int env_num_threads(void)
{
    const char *s = getenv("SKIPBLOCKS_NUM_THREADS");
    char *end;
    long v;
    if (s == NULL)
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (end == s || errno != 0 || v < 1)
        return 0;
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (*end != '\0')
        return 0;
    return v > SB_MAX_THREADS ? SB_MAX_THREADS : (int)v;
}

#ifdef _WIN32
/* ------------------------------------------------------------------ */
/* Windows: no pool. Every loop runs on the calling thread; the thread  */
/* count is stored (so the Python API behaves the same) but unused.   */
/* ------------------------------------------------------------------ */
#include <windows.h>

static volatile LONG g_requested = 0; /* 0: use the default */
static volatile LONG g_default = 0;   /* 0: not computed yet */

int sb_default_num_threads(void)
{
    LONG d = InterlockedCompareExchange(&g_default, 0, 0);
    if (d == 0) {
        int env = env_num_threads();
        d = env > 0 ? env : 1; /* honest: this build uses one thread */
        InterlockedCompareExchange(&g_default, d, 0);
    }
    return (int)d;
}

int sb_get_num_threads(void)
{
    LONG r = InterlockedCompareExchange(&g_requested, 0, 0);
    return r > 0 ? (int)r : sb_default_num_threads();
}

int sb_set_num_threads(int n)
{
    if (n < 1 || n > SB_MAX_THREADS)
        return 1;
    InterlockedExchange(&g_requested, (LONG)n);
    return 0;
}

void sb_parallel_test_avoid_caller_cpu(int caller_cpu)
{
    (void)caller_cpu; /* no pool, no workers */
}

void sb_parallel_for(int64_t count, int64_t grain, sb_parallel_task task, void *ctx)
{
    (void)grain;
    if (count > 0 && task != NULL)
        task(ctx, 0, count);
}

#else /* POSIX */
/* ------------------------------------------------------------------ */
/* POSIX: the pool.                                                     */
/* ------------------------------------------------------------------ */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#if !defined(__GNUC__) && !defined(__clang__)
#error "parallel.c needs the GCC/Clang __atomic builtins and __thread"
#endif

/* How long an idle worker (or a waiting caller) spins before sleeping. Long
 * enough to bridge the Python overhead between two kernel calls, short
 * enough that an idle pool is off the CPU almost at once (libgomp spins
 * 300,000 iterations by default, far longer). */
#define SB_SPIN_NS 50000

/* After this long a waiting caller yields its CPU between polls. */
#define SB_YIELD_AFTER_NS 5000

#define SB_CACHE_LINE 64

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define load_acq(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define load_sc(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define store_sc(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

struct sb_pool;

/* One worker and its job slot. Cache-line aligned so that the caller
 * writing worker i's slot does not disturb worker i+1 spinning on its own. */
typedef struct {
    uint64_t gen;     /* atomic; bumped by the caller once per assignment */
    uint64_t taken;   /* atomic; the last gen claimed, by this worker or the caller */
    int sleeping;     /* atomic; 1 while the worker waits (or is about to) on cv */
    int stop;         /* atomic; set before the final gen bump: exit the thread */
    sb_parallel_task task; /* the job: plain fields, published by gen */
    void *ctx;
    int64_t begin, end;
    int caller_cpu;        /* where the caller was when it assigned the job; -1: unknown */
    struct sb_pool *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
} __attribute__((aligned(SB_CACHE_LINE))) sb_worker;

typedef struct sb_pool {
    sb_worker *workers; /* nthreads - 1 slots, the first nworkers running */
    int nthreads;       /* the size asked for, caller included */
    int nworkers;       /* workers that actually started */
    int done_sync_ok;   /* done_mu / done_cv initialised */
    int pending __attribute__((aligned(SB_CACHE_LINE))); /* atomic: chunks not yet done */
    int caller_sleeping;                                  /* atomic */
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
} sb_pool;

/* Lock order: g_call_mu before g_config_mu (the atfork handlers take both). */
static pthread_mutex_t g_call_mu = PTHREAD_MUTEX_INITIALIZER;   /* one loop at a time; guards g_pool */
static pthread_mutex_t g_config_mu = PTHREAD_MUTEX_INITIALIZER; /* guards the two ints below */
static int g_requested = 0; /* from sb_set_num_threads; 0: use the default */
static int g_default = 0;   /* 0: not computed yet */

static sb_pool *g_pool = NULL;
static sb_pool *g_orphan = NULL;   /* a pool inherited through fork, to free */
static int g_atfork_registered = 0;
static int g_fork_locked = 0;      /* prepare took the locks */

/* Workers are always "inside a loop"; the caller is during its loop. */
static __thread int g_in_region = 0;

/* ---- the split -------------------------------------------------------- */

/* The documented split: chunks = min(threads, count / grain), sizes as equal
 * as possible, larger ones first. Pure, so the same (count, grain, threads)
 * always gives the same chunks. Assumes count > grain >= 1, threads >= 1. */
static int64_t chunk_count(int64_t count, int64_t grain, int threads)
{
    int64_t chunks = count / grain;
    return chunks < threads ? chunks : (int64_t)threads;
}

static void chunk_bounds(int64_t count, int64_t chunks, int64_t i,
                         int64_t *begin, int64_t *end)
{
    const int64_t base = count / chunks, extra = count % chunks;
    *begin = i * base + (i < extra ? i : extra);
    *end = *begin + base + (i < extra ? 1 : 0);
}

/* ---- settings --------------------------------------------------------- */

static int cpu_count(void)
{
#ifdef __linux__
    /* The affinity mask, not the machine: under taskset, cgroups cpusets or
     * a CI runner limited to 2 of 64 cores, the mask is what we may use. */
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    /* EINVAL: more CPUs than a cpu_set_t holds; use the online count. */
#endif
    {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (n > INT_MAX ? INT_MAX : (int)n) : 1;
    }
}

static int default_locked(void) /* g_config_mu held */
{
    if (g_default == 0) {
        int n = env_num_threads();
        if (n == 0)
            n = cpu_count();
        g_default = n > SB_MAX_THREADS ? SB_MAX_THREADS : n;
    }
    return g_default;
}

int sb_default_num_threads(void)
{
    int n;
    pthread_mutex_lock(&g_config_mu);
    n = default_locked();
    pthread_mutex_unlock(&g_config_mu);
    return n;
}

int sb_get_num_threads(void)
{
    int n;
    pthread_mutex_lock(&g_config_mu);
    n = g_requested > 0 ? g_requested : default_locked();
    pthread_mutex_unlock(&g_config_mu);
    return n;
}

/* ---- workers ---------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits until w->gen differs from seen; returns the new value. */
static uint64_t worker_wait(sb_worker *w, uint64_t seen)
{
    uint64_t g;
    uint64_t deadline = 0;
    for (unsigned spin = 0;; spin++) {
        g = load_acq(&w->gen);
        if (g != seen)
            return g;
        if ((spin & 63) == 0) { /* the clock is read rarely: it costs ~20 ns */
            uint64_t t = now_ns();
            if (deadline == 0)
                deadline = t + SB_SPIN_NS;
            else if (t >= deadline)
                break;
        }
        cpu_relax();
    }
    pthread_mutex_lock(&w->mu);
    store_sc(&w->sleeping, 1);
    while ((g = load_sc(&w->gen)) == seen)
        pthread_cond_wait(&w->cv, &w->mu);
    store_sc(&w->sleeping, 0);
    pthread_mutex_unlock(&w->mu);
    return g;
}

/* The CPU the calling thread runs on, or -1 where that cannot be known. */
static int current_cpu(void)
{
#ifdef __linux__
    return sched_getcpu();
#else
    return -1;
#endif
}

/* A worker's side of "do not stay on the caller's CPU" (see the top of the
 * file). Thread-private state: the CPU this worker took out of its mask
 * (-1: none) and the mask it set then, to tell whether anyone (taskset -a,
 * os.sched_setaffinity on this thread) has changed the mask since: such a
 * change wins, and is never undone here. */
typedef struct {
    int excluded;
#ifdef __linux__
    cpu_set_t set; /* the mask set when `excluded` was taken out */
#endif
} cpu_avoidance;

static void avoidance_init(cpu_avoidance *a)
{
    a->excluded = -1;
}

/* Called by the worker with a job claimed, before running it. Works from
 * the thread's current mask, so a restriction applied from outside is kept:
 * only the caller's CPU is taken out of it (never its last CPU), and only
 * that CPU is put back. */
static void avoid_caller_cpu(cpu_avoidance *a, int caller_cpu)
{
#ifdef __linux__
    if (caller_cpu < 0 || caller_cpu >= CPU_SETSIZE)
        return;
    const int on_caller_cpu = current_cpu() == caller_cpu;
    if (!on_caller_cpu && (a->excluded < 0 || a->excluded == caller_cpu))
        return; /* the common case: no system call */
    cpu_set_t now;
    CPU_ZERO(&now);
    if (sched_getaffinity(0, sizeof now, &now) != 0) /* > CPU_SETSIZE CPUs */
        return;
    if (a->excluded >= 0) {
        if (!CPU_EQUAL(&now, &a->set)) {
            a->excluded = -1; /* changed from outside: that mask stands */
        } else if (a->excluded != caller_cpu) {
            /* the caller has moved: no reason left to stay off that CPU */
            CPU_SET(a->excluded, &now);
            if (sched_setaffinity(0, sizeof now, &now) == 0)
                a->excluded = -1;
            else
                CPU_CLR(a->excluded, &now);
        }
    }
    if (on_caller_cpu && CPU_ISSET(caller_cpu, &now) && CPU_COUNT(&now) >= 2) {
        CPU_CLR(caller_cpu, &now);
        /* applies to this thread only, and migrates it before returning */
        if (sched_setaffinity(0, sizeof now, &now) == 0) {
            a->excluded = caller_cpu;
            a->set = now;
        }
    }
#else
    (void)a;
    (void)caller_cpu;
#endif
}

void sb_parallel_test_avoid_caller_cpu(int caller_cpu)
{
    static __thread cpu_avoidance state;
    static __thread int ready = 0;
    if (!ready) {
        avoidance_init(&state);
        ready = 1;
    }
    avoid_caller_cpu(&state, caller_cpu);
}

static void *worker_main(void *arg)
{
    sb_worker *w = (sb_worker *)arg;
    sb_pool *pool = w->pool;
    uint64_t seen = 0;
    cpu_avoidance avoidance;
    avoidance_init(&avoidance);
    g_in_region = 1; /* a task's own sb_parallel_for runs serially here */
    for (;;) {
        seen = worker_wait(w, seen);
        /* atomic: a worker that lost its job to the caller may read the
         * slot while the caller fills it for the next job */
        if (load_acq(&w->stop))
            break;
        /* Claim job `seen`; if the caller already ran it (it steals chunks
         * whose worker has not started), there is nothing to do, and the
         * job's fields must not be read. */
        uint64_t expected = seen - 1;
        if (!__atomic_compare_exchange_n(&w->taken, &expected, seen, 0, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST))
            continue;
        avoid_caller_cpu(&avoidance, w->caller_cpu);
        w->task(w->ctx, w->begin, w->end);
        /* The (seq_cst, so also release) decrement publishes the task's
         * writes to the caller, which reads pending with acquire. */
        if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_SEQ_CST) == 0 &&
            load_sc(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->done_mu);
            pthread_cond_signal(&pool->done_cv);
            pthread_mutex_unlock(&pool->done_mu);
        }
    }
    return NULL;
}

/* Hands worker w a job. Only called once w's previous job was claimed and
 * finished (by w or by the caller), so a worker that reads the slot has
 * claimed the job the slot now holds: the plain writes race with nothing. */
static void worker_assign(sb_worker *w, sb_parallel_task task, void *ctx,
                          int64_t begin, int64_t end, int caller_cpu, int stop)
{
    w->task = task;
    w->ctx = ctx;
    w->begin = begin;
    w->end = end;
    w->caller_cpu = caller_cpu;
    store_rel(&w->stop, stop);
    /* The caller is the only writer of gen: a relaxed read is enough. */
    store_sc(&w->gen, __atomic_load_n(&w->gen, __ATOMIC_RELAXED) + 1);
    if (load_sc(&w->sleeping)) {
        /* Taking mu waits until the worker is really in cond_wait. */
        pthread_mutex_lock(&w->mu);
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

static void caller_wait(sb_pool *pool)
{
    uint64_t start = 0;
    for (unsigned spin = 0;; spin++) {
        if (load_acq(&pool->pending) == 0)
            return;
        if ((spin & 63) == 0) {
            uint64_t t = now_ns();
            if (start == 0)
                start = t;
            else if (t - start >= SB_SPIN_NS)
                break;
            else if (t - start >= SB_YIELD_AFTER_NS)
                /* Workers still busy or waking up: if they are waiting
                 * for a CPU (more threads than cores), give them ours. */
                sched_yield();
        }
        cpu_relax();
    }
    /* The workers are slow (long chunks, or descheduled): stop competing
     * with them for the CPU. */
    pthread_mutex_lock(&pool->done_mu);
    store_sc(&pool->caller_sleeping, 1);
    while (load_sc(&pool->pending) != 0)
        pthread_cond_wait(&pool->done_cv, &pool->done_mu);
    store_sc(&pool->caller_sleeping, 0);
    pthread_mutex_unlock(&pool->done_mu);
}

/* ---- pool life cycle (g_call_mu held) -------------------------------- */

static void pool_destroy(sb_pool *pool)
{
    for (int i = 0; i < pool->nworkers; i++)
        worker_assign(&pool->workers[i], NULL, NULL, 0, 0, -1, 1);
    for (int i = 0; i < pool->nworkers; i++) {
        pthread_join(pool->workers[i].thread, NULL);
        pthread_cond_destroy(&pool->workers[i].cv);
        pthread_mutex_destroy(&pool->workers[i].mu);
    }
    if (pool->done_sync_ok) {
        pthread_cond_destroy(&pool->done_cv);
        pthread_mutex_destroy(&pool->done_mu);
    }
    free(pool->workers);
    free(pool);
}

static void atfork_prepare(void)
{
    /* Forking from inside a task is unsupported; at least do not deadlock
     * on our own lock. */
    if (g_in_region)
        return;
    pthread_mutex_lock(&g_call_mu);
    pthread_mutex_lock(&g_config_mu);
    g_fork_locked = 1;
}

static void atfork_parent(void)
{
    if (g_fork_locked) {
        g_fork_locked = 0;
        pthread_mutex_unlock(&g_config_mu);
        pthread_mutex_unlock(&g_call_mu);
    }
}

static void atfork_child(void)
{
    /* Only the forking thread exists here. The pool's workers are gone and
     * its mutexes may have been held by them: never touch those, just
     * forget the pool (freed at the next creation, outside this handler). */
    if (g_pool != NULL) {
        g_orphan = g_pool;
        g_pool = NULL;
    }
    if (g_fork_locked) {
        g_fork_locked = 0;
        pthread_mutex_unlock(&g_config_mu);
        pthread_mutex_unlock(&g_call_mu);
    }
}

/* Builds a pool for nthreads (>= 2) threads, with as many workers as can be
 * started. NULL only if the pool itself cannot be set up (no memory, no
 * fork handlers); the caller then runs the loop alone. */
static sb_pool *pool_create(int nthreads)
{
    sb_pool *pool;
    sigset_t all, old;
    void *mem = NULL;

    if (g_orphan != NULL) { /* from before a fork: memory only */
        free(g_orphan->workers);
        free(g_orphan);
        g_orphan = NULL;
    }
    /* Without the child handler a forked child would wait forever on
     * workers that do not exist: no handlers, no pool. */
    if (!g_atfork_registered) {
        if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0)
            return NULL;
        g_atfork_registered = 1;
    }
    if (posix_memalign(&mem, SB_CACHE_LINE, sizeof(sb_pool)) != 0)
        return NULL;
    pool = (sb_pool *)mem;
    pool->nthreads = nthreads;
    pool->nworkers = 0;
    pool->pending = 0;
    pool->caller_sleeping = 0;
    pool->done_sync_ok = 0;
    pool->workers = NULL;
    if (posix_memalign(&mem, SB_CACHE_LINE, (size_t)(nthreads - 1) * sizeof(sb_worker)) != 0) {
        free(pool);
        return NULL;
    }
    pool->workers = (sb_worker *)mem;
    if (pthread_mutex_init(&pool->done_mu, NULL) != 0)
        return pool; /* no workers: the caller runs everything */
    if (pthread_cond_init(&pool->done_cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->done_mu);
        return pool;
    }
    pool->done_sync_ok = 1;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the workers */
    for (int i = 0; i < nthreads - 1; i++) {
        sb_worker *w = &pool->workers[i];
        w->gen = 0;
        w->taken = 0;
        w->sleeping = 0;
        w->stop = 0;
        w->caller_cpu = -1;
        w->pool = pool;
        if (pthread_mutex_init(&w->mu, NULL) != 0)
            break;
        if (pthread_cond_init(&w->cv, NULL) != 0) {
            pthread_mutex_destroy(&w->mu);
            break;
        }
        /* Failure (EAGAIN: thread or memory limits) stops here: a smaller
         * pool, same split, the caller picks up the missing chunks. */
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            pthread_mutex_destroy(&w->mu);
            break;
        }
        pool->nworkers = i + 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pool;
}

/* ---- the public entry points ------------------------------------------ */

int sb_set_num_threads(int n)
{
    if (n < 1 || n > SB_MAX_THREADS)
        return 1;
    pthread_mutex_lock(&g_config_mu);
    g_requested = n;
    pthread_mutex_unlock(&g_config_mu);
    /* Join a pool of the wrong size now, so that going down to 1 thread
     * really leaves no threads behind. From inside a task this thread (or
     * the caller it works for) holds g_call_mu: leave it to the next loop. */
    if (!g_in_region) {
        pthread_mutex_lock(&g_call_mu);
        if (g_pool != NULL && g_pool->nthreads != n) {
            pool_destroy(g_pool);
            g_pool = NULL;
        }
        pthread_mutex_unlock(&g_call_mu);
    }
    return 0;
}

void sb_parallel_for(int64_t count, int64_t grain, sb_parallel_task task, void *ctx)
{
    int nthreads;
    int64_t chunks, begin, end;
    sb_pool *pool;

    if (count <= 0 || task == NULL)
        return;
    if (grain < 1)
        grain = 1;
    /* Small work, or nested inside a loop: this thread alone, no locks. */
    if (count <= grain || count / grain < 2 || g_in_region) {
        task(ctx, 0, count);
        return;
    }

    pthread_mutex_lock(&g_call_mu);
    nthreads = sb_get_num_threads(); /* under g_call_mu: consistent with g_pool */
    /* A resize requested from inside a task is carried out here. */
    if (g_pool != NULL && g_pool->nthreads != nthreads) {
        pool_destroy(g_pool);
        g_pool = NULL;
    }
    chunks = chunk_count(count, grain, nthreads);
    if (chunks < 2) { /* one thread configured */
        pthread_mutex_unlock(&g_call_mu);
        task(ctx, 0, count);
        return;
    }
    if (g_pool == NULL)
        g_pool = pool_create(nthreads);
    pool = g_pool;
    g_in_region = 1;

    {
        /* Chunks 1 .. dispatched go to workers 0 .. dispatched-1; those
         * beyond the started workers (if any failed) run here after chunk 0. */
        int64_t dispatched = chunks - 1;
        if (pool == NULL)
            dispatched = 0;
        else if (dispatched > pool->nworkers)
            dispatched = pool->nworkers;
        if (dispatched > 0) {
            const int caller_cpu = current_cpu();
            store_sc(&pool->pending, (int)dispatched);
            for (int64_t i = 1; i <= dispatched; i++) {
                chunk_bounds(count, chunks, i, &begin, &end);
                worker_assign(&pool->workers[i - 1], task, ctx, begin, end, caller_cpu, 0);
            }
        }
        chunk_bounds(count, chunks, 0, &begin, &end);
        task(ctx, begin, end);
        for (int64_t i = dispatched + 1; i < chunks; i++) {
            chunk_bounds(count, chunks, i, &begin, &end);
            task(ctx, begin, end);
        }
        /* Steal the chunks whose worker has not started yet (still waking,
         * or its core taken by another process's or library's threads --
         * torch's OpenMP threads spin for a while after each op): a late
         * worker then costs nothing instead of the whole wait. Which thread
         * runs a chunk never changes what the chunk computes. */
        for (int64_t i = 1; i <= dispatched; i++) {
            sb_worker *w = &pool->workers[i - 1];
            const uint64_t gen = __atomic_load_n(&w->gen, __ATOMIC_RELAXED);
            uint64_t expected = gen - 1;
            if (__atomic_compare_exchange_n(&w->taken, &expected, gen, 0, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST)) {
                chunk_bounds(count, chunks, i, &begin, &end);
                task(ctx, begin, end);
                __atomic_sub_fetch(&pool->pending, 1, __ATOMIC_SEQ_CST);
            }
        }
        if (dispatched > 0)
            caller_wait(pool);
    }

    g_in_region = 0;
    pthread_mutex_unlock(&g_call_mu);
}

#endif /* _WIN32 */

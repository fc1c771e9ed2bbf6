/*
 * test_parallel.c -- standalone checks of the thread-pool runtime
 * (csrc/runtime/parallel.c, contract in sb_parallel.h).
 *
 * What is checked, and how:
 *   - coverage: every index of [0, count) visited exactly once (per-index
 *     counters bumped atomically, so two chunks overlapping show up as a 2
 *     even when they run at the same time), over counts and grains around
 *     the chunk boundaries (0, 1, grain - 1, grain, grain + 1, multiples)
 *     for 1 .. 8 threads;
 *   - the split: the chunks a loop produced, sorted, equal the documented
 *     formula, and are the same on a second run (determinism); each chunk
 *     ran on a distinct thread (the pool really is parallel);
 *   - nested loops run serially on the thread that calls them;
 *   - sb_set_num_threads at run time (1 -> 2 -> 4 -> 1), invalid values;
 *   - fork(): parent and child both compute correctly after a fork, also
 *     when another thread is busy in sb_parallel_for during the fork;
 *   - concurrent callers from several threads, with a thread resizing the
 *     pool meanwhile;
 *   - pthread_create failing (address-space limit in a child): smaller
 *     pool, same result;
 *   - an idle pool sleeps: next to no process CPU time while nothing runs;
 *   - Linux: the rule that moves a worker off the caller's CPU (and gives
 *     the CPU back, and never widens a mask set from outside), step by step
 *     on a thread of the test's own and through the pool;
 *   - overhead: median time of one empty sb_parallel_for on 2 threads, with
 *     the workers spinning (back-to-back calls) and asleep.
 * Children get alarm() so a deadlock fails the test instead of hanging it.
 * The exit status is nonzero if any check fails.
 *
 * Build (output outside the repo) and run:
 *   gcc -O2 -std=c99 -D_GNU_SOURCE -Wall -Wextra -pthread -Icsrc/include \
 *       csrc/runtime/parallel.c csrc/tests/test_parallel.c -o /tmp/test_parallel
 *   /tmp/test_parallel            (SB_TEST_QUICK=1: fewer repetitions, for
 *                                  valgrind / -fsanitize=thread runs;
 *                                  SB_TEST_OVERHEAD_ONLY=1: timing only;
 *                                  SB_TEST_NO_FORK=1: for -fsanitize=thread,
 *                                  which cannot run threads after a fork)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getcpu, CPU_* for the avoidance test; before every include */
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sb_parallel.h"

static int g_failures = 0;
static int g_quick = 0; /* SB_TEST_QUICK: fewer repetitions, skip timing */

#define CHECK(cond, ...)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                              \
            fprintf(stderr, "\n");                                     \
            g_failures++;                                              \
        }                                                              \
    } while (0)

/* ---- a loop that records what it did --------------------------------- */

#define MAX_CHUNKS 64

/* A small id per thread, to count the distinct threads a loop used. */
static int g_next_tid = 0;
static __thread int t_tid = -1;
static int thread_id(void)
{
    if (t_tid < 0)
        t_tid = __atomic_fetch_add(&g_next_tid, 1, __ATOMIC_RELAXED);
    return t_tid;
}

typedef struct {
    int *visits;             /* count counters */
    int64_t begins[MAX_CHUNKS], ends[MAX_CHUNKS];
    int tids[MAX_CHUNKS];
    int nchunks;             /* atomic */
    int64_t nested_count;    /* > 0: each index runs an inner loop this long */
    int nested_bad;          /* atomic: inner loops that were split */
    int64_t spin;            /* busy work per index, to make chunks overlap */
    int expected;            /* > 0: chunk 0 waits (up to 5 s) until this many chunks started */
} record_ctx;

/* The caller steals every chunk whose worker has not claimed it by the time
 * the caller's own chunk 0 is done (sb_parallel.h). To check that each chunk
 * *can* run on its own thread, chunk 0 waits until all chunks have started;
 * a worker that never comes makes it give up after 5 s (generous: a loaded
 * machine, or a sanitized build, starts threads slowly), the caller then
 * runs that chunk, and the distinct-thread count shows it. Off where fewer
 * threads are expected (a failed pthread_create). */
static int g_wait_for_workers = 1;

static void inner_task(void *vctx, int64_t begin, int64_t end)
{
    record_ctx *c = (record_ctx *)vctx;
    /* A nested loop must arrive here whole, on one call. */
    if (begin != 0 || end != c->nested_count)
        __atomic_fetch_add(&c->nested_bad, 1, __ATOMIC_RELAXED);
}

static void record_task(void *vctx, int64_t begin, int64_t end)
{
    record_ctx *c = (record_ctx *)vctx;
    int k = __atomic_fetch_add(&c->nchunks, 1, __ATOMIC_RELAXED);
    if (k < MAX_CHUNKS) {
        c->begins[k] = begin;
        c->ends[k] = end;
        c->tids[k] = thread_id();
    }
    if (begin == 0 && c->expected > 1) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (__atomic_load_n(&c->nchunks, __ATOMIC_ACQUIRE) < c->expected) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec >= 5)
                break;
            sched_yield();
        }
    }
    for (int64_t i = begin; i < end; i++) {
        __atomic_fetch_add(&c->visits[i], 1, __ATOMIC_RELAXED);
        if (c->nested_count > 0)
            sb_parallel_for(c->nested_count, 1, inner_task, c);
        for (volatile int64_t s = 0; s < c->spin; s++) {
        }
    }
}

static void sort_chunks(record_ctx *c, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort, keeping tids along */
        for (int j = i; j > 0 && c->begins[j - 1] > c->begins[j]; j--) {
            int64_t b = c->begins[j], e = c->ends[j];
            int t = c->tids[j];
            c->begins[j] = c->begins[j - 1];
            c->ends[j] = c->ends[j - 1];
            c->tids[j] = c->tids[j - 1];
            c->begins[j - 1] = b;
            c->ends[j - 1] = e;
            c->tids[j - 1] = t;
        }
}

/* The split sb_parallel.h documents, written out independently. */
static int64_t expected_chunks(int64_t count, int64_t grain, int threads)
{
    int64_t k;
    if (count <= 0)
        return 0;
    if (grain < 1)
        grain = 1;
    if (count <= grain)
        return 1;
    k = count / grain;
    return k < threads ? k : threads;
}

/* The thread that runs loops while the main thread forks (test_fork's
 * busy_caller) uses this context instead of calloc, so no fork can happen
 * while that thread is inside the allocator. glibc's malloc is fork-safe
 * (it takes its locks around fork), but the sanitizer runtimes of GCC 12
 * are not: a fork while another thread holds ASan's allocator lock leaves
 * the child's first calloc waiting forever. The pool, which is what the
 * test checks, allocates nothing in the loop either way. */
enum { STATIC_CTX_MAX = 20000 };
static __thread int t_static_ctx = 0;
static record_ctx g_static_ctx;
static int g_static_visits[STATIC_CTX_MAX];

/* Runs one loop and checks coverage and the split. Returns the number of
 * distinct threads used, or -1 after a failure. *out (if given) receives
 * the sorted chunk list for determinism checks. threads <= 0: the count may
 * change during the call (a resizer thread), so check coverage only. */
static int run_and_check(int64_t count, int64_t grain, int threads,
                         int64_t spin, record_ctx *out)
{
    const int static_ctx = t_static_ctx && count <= STATIC_CTX_MAX;
    record_ctx *c;
    if (static_ctx) {
        c = &g_static_ctx;
        memset(c, 0, sizeof *c);
        memset(g_static_visits, 0, (size_t)(count > 0 ? count : 0) * sizeof(int));
        c->visits = g_static_visits;
    } else {
        c = calloc(1, sizeof *c);
        c->visits = calloc(count > 0 ? (size_t)count : 1, sizeof(int));
    }
    int distinct = 0, ok = 1;
    int64_t k = expected_chunks(count, grain, threads);
    c->spin = spin;
    c->expected = (g_wait_for_workers && threads > 0) ? (int)k : 0;
    sb_parallel_for(count, grain, record_task, c);

    for (int64_t i = 0; i < count; i++)
        if (c->visits[i] != 1) {
            CHECK(0, "count=%lld grain=%lld threads=%d: index %lld visited %d times",
                  (long long)count, (long long)grain, threads, (long long)i, c->visits[i]);
            ok = 0;
            break;
        }
    if (threads <= 0)
        k = c->nchunks; /* coverage only */
    CHECK(c->nchunks == k, "count=%lld grain=%lld threads=%d: %d chunks, expected %lld",
          (long long)count, (long long)grain, threads, c->nchunks, (long long)k);
    if (c->nchunks != k)
        ok = 0;
    if (ok && k > 0 && threads > 0) {
        sort_chunks(c, (int)k);
        int64_t g = grain < 1 ? 1 : grain;
        for (int64_t i = 0; i < k; i++) {
            int64_t size = count / k + (i < count % k ? 1 : 0);
            int64_t begin = i * (count / k) + (i < count % k ? i : count % k);
            if (c->begins[i] != begin || c->ends[i] != begin + size ||
                (k > 1 && size < g)) {
                CHECK(0, "count=%lld grain=%lld threads=%d: chunk %lld is [%lld, %lld)",
                      (long long)count, (long long)grain, threads, (long long)i,
                      (long long)c->begins[i], (long long)c->ends[i]);
                ok = 0;
                break;
            }
            int seen = 0;
            for (int64_t j = 0; j < i; j++)
                seen |= c->tids[j] == c->tids[i];
            distinct += !seen;
        }
    }
    if (out != NULL)
        *out = *c;
    if (!static_ctx) {
        free(c->visits);
        free(c);
    }
    return ok ? distinct : -1;
}

/* ---- the tests ----------------------------------------------------------- */

static void test_coverage_and_split(void)
{
    static const int threads[] = {1, 2, 3, 4, 7, 8};
    static const int64_t counts[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64,
                                     65, 100, 127, 1000, 1001, 4096, 100003};
    static const int64_t grains[] = {-3, 0, 1, 2, 3, 7, 8, 16, 64, 1000, 1 << 20};
    int cases = 0, parallel_cases = 0, fewer_threads = 0;
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        CHECK(sb_set_num_threads(threads[t]) == 0, "set_num_threads(%d)", threads[t]);
        for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains + 3; g++) {
                int64_t count = counts[i], grain;
                record_ctx a, b;
                int d1, d2;
                /* grain exactly at, just below and just above count too */
                if (g < sizeof grains / sizeof *grains)
                    grain = grains[g];
                else
                    grain = count + (int64_t)(g - sizeof grains / sizeof *grains) - 1;
                d1 = run_and_check(count, grain, threads[t], 0, &a);
                d2 = run_and_check(count, grain, threads[t], 0, &b);
                cases++;
                if (d1 < 0 || d2 < 0)
                    continue;
                /* determinism: the same chunks both times */
                CHECK(a.nchunks == b.nchunks &&
                          memcmp(a.begins, b.begins, sizeof(int64_t) * (size_t)a.nchunks) == 0 &&
                          memcmp(a.ends, b.ends, sizeof(int64_t) * (size_t)a.nchunks) == 0,
                      "split not deterministic: count=%lld grain=%lld threads=%d",
                      (long long)count, (long long)grain, threads[t]);
                /* chunk i goes to worker i-1: one distinct thread per chunk */
                if (a.nchunks > 1) {
                    parallel_cases++;
                    if (d1 != a.nchunks)
                        fewer_threads++;
                }
            }
    }
    CHECK(fewer_threads == 0, "%d loops ran on fewer threads than chunks", fewer_threads);
    printf("coverage/split: %d cases (%d parallel), every index once, split = formula, "
           "repeatable, one thread per chunk\n", cases, parallel_cases);
}

/* Without chunk 0 waiting, the caller steals every chunk it reaches before
 * the chunk's worker claims it: with tiny loops that is most of them. Every
 * index must still be visited once, with the same split, however the chunks
 * are shared out between the caller and the workers. */
static void test_stealing(void)
{
    int loops = 0, before = g_failures;
    g_wait_for_workers = 0;
    for (int threads = 2; threads <= 4; threads++) {
        sb_set_num_threads(threads);
        for (int i = 0; i < (g_quick ? 300 : 3000); i++, loops++)
            run_and_check(2 + i % 97, 1 + i % 3, threads, 0, NULL);
    }
    g_wait_for_workers = 1;
    printf("stealing: %d tiny loops (the caller takes chunks from late workers): %s\n",
           loops, g_failures == before ? "every index once, same split" : "FAILED");
}

static void test_nested(void)
{
    const int64_t outer = 64, inner = 100;
    record_ctx *c = calloc(1, sizeof *c);
    c->visits = calloc((size_t)outer, sizeof(int));
    c->nested_count = inner;
    sb_set_num_threads(4);
    sb_parallel_for(outer, 1, record_task, c);
    for (int64_t i = 0; i < outer; i++)
        CHECK(c->visits[i] == 1, "nested: outer index %lld visited %d times",
              (long long)i, c->visits[i]);
    CHECK(c->nested_bad == 0, "nested: %d inner loops were split", c->nested_bad);
    CHECK(c->nchunks == 4, "nested: outer loop used %d chunks, expected 4", c->nchunks);
    printf("nested: %lld inner loops (on the caller and on workers) ran serially, no deadlock\n",
           (long long)outer);
    free(c->visits);
    free(c);
}

/* Sets the thread count from inside a task: must not deadlock, and the
 * next loop must use the new count. */
static void set_inside_task(void *ctx, int64_t begin, int64_t end)
{
    (void)ctx;
    if (begin == 0 && end > 0)
        sb_set_num_threads(3);
}

static void test_set_num_threads(void)
{
    static const int seq[] = {1, 2, 4, 1, 3, 2, 8, 1};
    int ok = 1;
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) {
        int d;
        CHECK(sb_set_num_threads(seq[i]) == 0, "set_num_threads(%d) failed", seq[i]);
        CHECK(sb_get_num_threads() == seq[i], "get_num_threads() = %d after set(%d)",
              sb_get_num_threads(), seq[i]);
        d = run_and_check(10000, 1, seq[i], 0, NULL);
        if (d != seq[i]) {
            CHECK(0, "threads=%d: loop used %d distinct threads", seq[i], d);
            ok = 0;
        }
    }
    CHECK(sb_set_num_threads(0) != 0, "set_num_threads(0) accepted");
    CHECK(sb_set_num_threads(-1) != 0, "set_num_threads(-1) accepted");
    CHECK(sb_set_num_threads(SB_MAX_THREADS + 1) != 0, "set_num_threads(too many) accepted");
    CHECK(sb_get_num_threads() == 1, "invalid set changed the count to %d", sb_get_num_threads());

    sb_set_num_threads(2);
    sb_parallel_for(100, 1, set_inside_task, NULL);
    CHECK(sb_get_num_threads() == 3, "set from inside a task: count %d", sb_get_num_threads());
    CHECK(run_and_check(1000, 1, 3, 0, NULL) == 3, "after a resize from inside a task");
    printf("set_num_threads: 1 -> 2 -> 4 -> 1 -> 3 -> 2 -> 8 -> 1 %s, invalid values "
           "rejected, resize from inside a task ok\n", ok ? "each used exactly n threads" : "FAILED");
}

/* In a child: a few loops at several sizes; exit status = failures. */
static void child_checks(int threads)
{
    alarm(60); /* a deadlock becomes SIGALRM, not a hung test */
    g_failures = 0; /* the exit status reports this child's checks, not the parent's */
    if (run_and_check(100000, 1, threads, 0, NULL) != threads)
        _exit(1);
    sb_set_num_threads(2);
    if (run_and_check(5000, 7, 2, 0, NULL) != 2)
        _exit(2);
    sb_set_num_threads(threads);
    for (int i = 0; i < 200; i++)
        if (run_and_check(1000 + i, 3, threads, 0, NULL) < 0)
            _exit(3);
    _exit(g_failures == 0 ? 0 : 4);
}

static int wait_child(pid_t pid, const char *what)
{
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        CHECK(0, "%s: waitpid failed", what);
        return 0;
    }
    if (WIFSIGNALED(status)) {
        CHECK(0, "%s: child killed by signal %d%s", what, WTERMSIG(status),
              WTERMSIG(status) == SIGALRM ? " (deadlock?)" : "");
        return 0;
    }
    CHECK(WEXITSTATUS(status) == 0, "%s: child exit status %d", what, WEXITSTATUS(status));
    return WEXITSTATUS(status) == 0;
}

static volatile int g_stop_busy = 0;
static void *busy_caller(void *arg)
{
    int *loops = (int *)arg;
    t_static_ctx = 1; /* no calloc in this thread: see run_and_check */
    while (!__atomic_load_n(&g_stop_busy, __ATOMIC_RELAXED)) {
        if (run_and_check(20000, 1, 4, 10, NULL) < 0)
            break;
        (*loops)++;
    }
    return NULL;
}

static void test_fork(void)
{
    pid_t pid;
    int ok = 1, forks = g_quick ? 3 : 20, busy_loops = 0;
    pthread_t busy;

    sb_set_num_threads(4);
    CHECK(run_and_check(100000, 1, 4, 0, NULL) == 4, "before fork");
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0)
        child_checks(4);
    CHECK(run_and_check(100000, 1, 4, 0, NULL) == 4, "parent after fork");
    ok &= wait_child(pid, "fork after a loop");

    /* A grandchild: the child's fresh pool must itself survive a fork. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        pid_t inner;
        int status;
        alarm(90);
        if (run_and_check(10000, 1, 4, 0, NULL) != 4)
            _exit(5);
        inner = fork();
        if (inner == 0)
            child_checks(4);
        if (run_and_check(10000, 1, 4, 0, NULL) != 4)
            _exit(6);
        if (waitpid(inner, &status, 0) != inner || !WIFEXITED(status) || WEXITSTATUS(status))
            _exit(7);
        _exit(0);
    }
    ok &= wait_child(pid, "fork of a forked child");

    /* Fork while another thread is inside sb_parallel_for: the prepare
     * handler waits for that loop, so the child inherits a quiet pool. */
    g_stop_busy = 0;
    pthread_create(&busy, NULL, busy_caller, &busy_loops);
    for (int i = 0; i < forks; i++) {
        struct timespec ts = {0, 300000};
        nanosleep(&ts, NULL);
        fflush(stdout);
        pid = fork();
        if (pid == 0)
            child_checks(4);
        ok &= wait_child(pid, "fork during a loop in another thread");
    }
    __atomic_store_n(&g_stop_busy, 1, __ATOMIC_RELAXED);
    pthread_join(busy, NULL);
    CHECK(run_and_check(100000, 1, 4, 0, NULL) == 4, "parent after the forks");
    printf("fork: child and parent correct after fork (%d forks during %d busy loops of "
           "another thread, plus a grandchild) %s\n", forks, busy_loops, ok ? "ok" : "FAILED");
}

typedef struct {
    int64_t count;
    int iters;
    int threads; /* 0 while a resizer runs: coverage only */
    int failures;
} caller_arg;

static void *concurrent_caller(void *varg)
{
    caller_arg *a = (caller_arg *)varg;
    for (int i = 0; i < a->iters; i++)
        if (run_and_check(a->count + i % 17, 1 + i % 5, a->threads, 0, NULL) < 0)
            a->failures++;
    return NULL;
}

static void *resizer(void *arg)
{
    int iters = *(int *)arg;
    for (int i = 0; i < iters; i++) {
        struct timespec ts = {0, 50000};
        sb_set_num_threads(1 + i % 4);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_concurrent_callers(void)
{
    enum { NCALLERS = 3 };
    pthread_t th[NCALLERS], rs;
    caller_arg args[NCALLERS];
    int iters = g_quick ? 100 : 3000, resizes = g_quick ? 50 : 1000;
    int before = g_failures;

    /* First with a fixed count, then with a resizer running alongside. */
    for (int round = 0; round < 2; round++) {
        sb_set_num_threads(4);
        for (int i = 0; i < NCALLERS; i++) {
            args[i].count = 500 + 100 * i;
            args[i].iters = iters;
            args[i].threads = round == 0 ? 4 : 0;
            args[i].failures = 0;
            pthread_create(&th[i], NULL, concurrent_caller, &args[i]);
        }
        if (round == 1)
            pthread_create(&rs, NULL, resizer, &resizes);
        for (int i = 0; i < NCALLERS; i++)
            pthread_join(th[i], NULL);
        if (round == 1)
            pthread_join(rs, NULL);
    }
    printf("concurrent callers: %d threads x %d loops, twice (second time with a thread "
           "resizing the pool %d times): %s\n", NCALLERS, iters, resizes,
           g_failures == before ? "every index once" : "FAILED");
}

/* pthread_create fails once the address space is full: limit it in a child
 * so only a few 8 MB thread stacks fit, ask for 16 threads, and check the
 * loop is still right (same split, fewer distinct threads). */
static void test_create_failure(void)
{
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl;
        unsigned long vm_pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        int d;
        alarm(20);
        if (f == NULL || fscanf(f, "%lu", &vm_pages) != 1)
            _exit(100); /* no /proc: skipped */
        fclose(f);
        rl.rlim_cur = rl.rlim_max =
            (rlim_t)vm_pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)24 << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(100);
        sb_set_num_threads(16);
        g_wait_for_workers = 0;
        d = run_and_check(160000, 1, 16, 0, NULL);
        if (d < 0)
            _exit(1);
        printf("create failure: 16 threads asked, %d started, loop still correct\n", d);
        fflush(stdout);
        _exit(d < 16 ? 0 : 101);
    }
    {
        int status;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 100)
            printf("create failure: skipped (no /proc or setrlimit)\n");
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 101)
            printf("create failure: not provoked (all 16 threads started), skipped\n");
        else
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "create failure: child status %d", status);
    }
}

/* An idle pool must sleep, not spin: after a loop on 4 threads, 300 ms of
 * doing nothing may cost the process only the spin-down (50 us a thread). */
static void test_idle_cpu(void)
{
    struct timespec c0, c1, ts = {0, 300000000};
    double used_ms;
    sb_set_num_threads(4);
    CHECK(run_and_check(100000, 1, 4, 0, NULL) == 4, "idle test loop");
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    nanosleep(&ts, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    used_ms = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) * 1e-6;
    CHECK(used_ms < 20.0, "idle pool used %.2f ms of CPU in 300 ms", used_ms);
    printf("idle: pool of 4 used %.3f ms of CPU over 300 ms of idleness\n", used_ms);
}

/* ---- a worker moves off the caller's CPU --------------------------------- */

#ifdef __linux__
/* Chunk 0 (the caller's) waits until chunk 1 has run on its worker, so the
 * worker really runs it. The worker either pins itself to one CPU (to set
 * up a collision with the caller, which is pinned there too), or reports
 * where it runs and whether that CPU is in its mask. */
typedef struct {
    pthread_t caller;
    int pin_to;      /* >= 0: the worker pins itself to this CPU */
    int done;        /* atomic: chunk 1 finished */
    int on_worker;   /* chunk 1 ran on a thread other than the caller */
    int cpu;         /* where chunk 1 ran */
    int cpu_in_mask; /* the caller's CPU is in the worker's mask */
    int caller_cpu;
} avoid_ctx;

static void avoid_task(void *vctx, int64_t begin, int64_t end)
{
    avoid_ctx *c = (avoid_ctx *)vctx;
    (void)end;
    if (begin == 0) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec >= 2)
                break; /* the caller then steals chunk 1: on_worker stays 0 */
            sched_yield();
        }
        return;
    }
    c->on_worker = !pthread_equal(pthread_self(), c->caller);
    if (c->pin_to >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c->pin_to, &one);
        sched_setaffinity(0, sizeof one, &one);
    } else {
        cpu_set_t mask;
        CPU_ZERO(&mask);
        sched_getaffinity(0, sizeof mask, &mask);
        c->cpu = sched_getcpu();
        c->cpu_in_mask = CPU_ISSET(c->caller_cpu, &mask);
    }
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

static void run_avoid_loop(avoid_ctx *c, int pin_to, int caller_cpu)
{
    c->caller = pthread_self();
    c->pin_to = pin_to;
    c->caller_cpu = caller_cpu;
    c->done = c->on_worker = 0;
    c->cpu = -1;
    c->cpu_in_mask = -1;
    sb_parallel_for(2, 1, avoid_task, c);
}

static cpu_set_t mask_of(int a, int b) /* b < 0: {a} */
{
    cpu_set_t m;
    CPU_ZERO(&m);
    CPU_SET(a, &m);
    if (b >= 0)
        CPU_SET(b, &m);
    return m;
}

static int thread_mask_is(cpu_set_t want)
{
    cpu_set_t now;
    CPU_ZERO(&now);
    return sched_getaffinity(0, sizeof now, &now) == 0 && CPU_EQUAL(&now, &want);
}

/* The rule itself, on a thread of the test's own (so its state and mask
 * start fresh): t and u are two usable CPUs. */
static void *avoidance_rule_thread(void *arg)
{
    const int *cpus = (const int *)arg, t = cpus[0], u = cpus[1];
    cpu_set_t m;
    /* on t with {t, u}: the caller on t makes it move to u. (Should the
     * scheduler move this thread to u between widening its mask and the
     * call, the rule rightly does nothing: try again.) */
    for (int attempt = 0; attempt < 20 && !thread_mask_is(mask_of(u, -1)); attempt++) {
        m = mask_of(t, -1);
        sched_setaffinity(0, sizeof m, &m); /* now running on t */
        m = mask_of(t, u);
        sched_setaffinity(0, sizeof m, &m); /* allowed on both, still on t */
        sb_parallel_test_avoid_caller_cpu(t);
    }
    CHECK(thread_mask_is(mask_of(u, -1)) && sched_getcpu() == u,
          "avoidance rule: met the caller on CPU %d, now on CPU %d", t, sched_getcpu());
    /* the caller moves to u, where this thread is: t is put back, u taken out */
    sb_parallel_test_avoid_caller_cpu(u);
    CHECK(thread_mask_is(mask_of(t, -1)) && sched_getcpu() == t,
          "avoidance rule: met the caller on CPU %d again, now on CPU %d", u, sched_getcpu());
    /* the caller stays on u: nothing changes */
    sb_parallel_test_avoid_caller_cpu(u);
    CHECK(thread_mask_is(mask_of(t, -1)), "avoidance rule: mask changed with no collision");
    /* a restriction from outside ({t}, set again, and then {u}) is kept,
     * whatever the caller does: the rule never widens it */
    m = mask_of(u, -1);
    sched_setaffinity(0, sizeof m, &m);
    sb_parallel_test_avoid_caller_cpu(t); /* the caller moved away from u */
    CHECK(thread_mask_is(mask_of(u, -1)), "avoidance rule: an outside mask {%d} was widened", u);
    sb_parallel_test_avoid_caller_cpu(u); /* and onto this thread's only CPU */
    CHECK(thread_mask_is(mask_of(u, -1)), "avoidance rule: an outside mask {%d} was emptied", u);
    return NULL;
}

/* Two checks. The rule, step by step, on a thread of the test's own
 * (sb_parallel_test_avoid_caller_cpu): a thread on the caller's CPU moves
 * off it, the CPU comes back when the caller moves, and a mask set from
 * outside is never widened or emptied. Then through the pool: a worker
 * pinned from outside to the caller's CPU stays pinned and still runs its
 * chunks. */
static void test_caller_cpu_avoidance(void)
{
    cpu_set_t saved;
    int cpus[2], n = 0, before = g_failures;
    CPU_ZERO(&saved);
    if (sched_getaffinity(0, sizeof saved, &saved) != 0 || CPU_COUNT(&saved) < 2) {
        printf("caller-cpu avoidance: skipped (fewer than 2 usable CPUs)\n");
        return;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++)
        if (CPU_ISSET(cpu, &saved))
            cpus[n++] = cpu;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, avoidance_rule_thread, cpus) == 0, "avoidance: no thread");
    pthread_join(th, NULL);

    avoid_ctx c;
    memset(&c, 0, sizeof c);
    /* a fresh pool, created while the caller still has its full mask */
    sb_set_num_threads(1);
    sb_set_num_threads(2);
    run_avoid_loop(&c, -1, -1);
    cpu_set_t one = mask_of(cpus[0], -1);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "avoidance: cannot pin the caller");
    run_avoid_loop(&c, cpus[0], cpus[0]); /* the worker pins itself there too */
    for (int round = 0; round < 3; round++) {
        run_avoid_loop(&c, -1, cpus[0]);
        CHECK(c.on_worker && c.cpu == cpus[0] && c.cpu_in_mask == 1,
              "avoidance: a worker pinned from outside to CPU %d ran on CPU %d (on the worker: "
              "%d; its mask %s CPU %d)", cpus[0], c.cpu, c.on_worker,
              c.cpu_in_mask ? "holds" : "lost", cpus[0]);
    }
    sched_setaffinity(0, sizeof saved, &saved);
    sb_set_num_threads(1); /* the worker's mask is narrowed: start afresh */
    printf("caller-cpu avoidance: moves off the caller's CPU (CPUs %d, %d), gives it back, "
           "keeps masks set from outside: %s\n", cpus[0], cpus[1],
           g_failures == before ? "ok" : "FAILED");
}
#endif

/* ---- overhead ------------------------------------------------------------- */

static void empty_task(void *ctx, int64_t begin, int64_t end)
{
    (void)ctx;
    (void)begin;
    (void)end;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double g_spread[3]; /* min, p10, p90 of the last median_call_us */

/* Median of n timed calls; gap_us > 0 sleeps between calls (workers asleep). */
static double median_call_us(int64_t count, int64_t grain, int n, double gap_us)
{
    double *t = malloc(sizeof(double) * (size_t)n), m;
    for (int i = 0; i < n; i++) {
        double t0;
        if (gap_us > 0) {
            struct timespec ts = {0, (long)(gap_us * 1000)};
            nanosleep(&ts, NULL);
        }
        t0 = now_us();
        sb_parallel_for(count, grain, empty_task, NULL);
        t[i] = now_us() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    m = t[n / 2];
    g_spread[0] = t[0];
    g_spread[1] = t[n / 10];
    g_spread[2] = t[n - 1 - n / 10];
    free(t);
    return m;
}

static void report(const char *what, double median)
{
    printf("  %-42s %7.2f us  [%.2f, %.2f, %.2f]\n", what, median,
           g_spread[0], g_spread[1], g_spread[2]);
}

static void test_overhead(void)
{
    if (g_quick) {
        printf("overhead: skipped (SB_TEST_QUICK)\n");
        return;
    }
    sb_set_num_threads(2);
    median_call_us(2, 1, 1000, 0); /* create the pool, warm up */
    printf("overhead of one empty sb_parallel_for, median [min, p10, p90]:\n");
    report("2 threads, back to back (worker spinning)", median_call_us(2, 1, 100000, 0));
    report("2 threads, 1 ms apart (worker asleep)", median_call_us(2, 1, 300, 1000));
    report("count <= grain (serial, no sync)", median_call_us(1, 1, 100000, 0));
    sb_set_num_threads(1);
    report("1 thread, count > grain", median_call_us(2, 1, 100000, 0));
}

int main(void)
{
    const char *q = getenv("SB_TEST_QUICK");
    g_quick = q != NULL && *q != '\0' && *q != '0';
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("default threads: %d (CPUs usable / SKIPBLOCKS_NUM_THREADS)\n",
           sb_default_num_threads());

    if (getenv("SB_TEST_OVERHEAD_ONLY") == NULL) {
        test_coverage_and_split();
        test_stealing();
        test_nested();
        test_set_num_threads();
        test_concurrent_callers();
        test_idle_cpu();
#ifdef __linux__
        test_caller_cpu_avoidance();
#endif
        /* ThreadSanitizer cannot start threads in a child of a threaded
         * process, so its runs skip these. */
        if (getenv("SB_TEST_NO_FORK") == NULL) {
            test_fork();
            if (!g_quick)
                test_create_failure();
        }
    }
    test_overhead();

    if (g_failures)
        printf("FAILED: %d check(s)\n", g_failures);
    else
        printf("all parallel runtime checks passed\n");
    return g_failures != 0;
}

"""The thread pool across fork(): a child forked from a parent whose pool has
run (or is running) a multi-threaded convolution computes the convolution
correctly on a fresh pool, and the parent keeps working.

The pool's workers do not exist in the child; without the pthread_atfork
handlers (csrc/runtime/parallel.c) the child's first parallel loop would wait
forever on them, or on a lock a worker held at the time of the fork. Every
wait here has a timeout, so such a hang fails the test instead of stalling
the run.
"""

import multiprocessing
import sys
import threading
import traceback

import numpy as np
import pytest

import skipblocks as sb

from helpers import diff_report

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
    reason="no fork start method on this platform")

TIMEOUT = 60


def _problem(seed=0):
    """A convolution big enough to be split over threads (several column
    blocks, two K blocks, three images)."""
    rng = np.random.default_rng(seed)
    conv = sb.Conv2d(29, 13, 3, padding=1)
    conv.weight = (rng.standard_normal(conv.weight.shape) * 0.2).astype(np.float32)
    x = rng.standard_normal((3, 29, 20, 21)).astype(np.float32)
    return conv, x


def _child(conn, conv, x):
    """Runs in the forked child: the conv as inherited (2 threads), then on 3
    threads (a new pool of another size), then on 1."""
    try:
        results = {"threads_inherited": sb.get_num_threads(), "isa": sb.get_isa()}
        results["y2"] = conv(x)
        sb.set_num_threads(3)
        results["y3"] = conv(x)
        sb.set_num_threads(1)
        results["y1"] = conv(x)
        conn.send(("ok", results))
    except BaseException:  # noqa: BLE001 -- sent to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _fork_and_collect(ctx, conv, x):
    """Forks a child running _child; returns its results, failing on a hang."""
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, conv, x), daemon=True)
    proc.start()
    sender.close()
    answered = False
    try:
        answered = receiver.poll(TIMEOUT)
        if answered:
            status, payload = receiver.recv()
    finally:
        proc.join(TIMEOUT if answered else 0)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        receiver.close()
    if not answered:
        pytest.fail("the forked child sent nothing within %ds (deadlock after fork?); "
                    "exitcode=%r" % (TIMEOUT, proc.exitcode))
    assert status == "ok", "child raised:\n" + payload
    assert proc.exitcode == 0, proc.exitcode
    return payload


def _check_child(results, expected, isa):
    assert results["threads_inherited"] == 2
    # the child inherits the ISA (the AVX-512 source runs under "avx2")
    assert results["isa"] == ("avx2" if isa == "avx512-source" else isa)
    for key in ("y2", "y3", "y1"):
        got = results[key]
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.array_equal(got, expected), "child %s: %s" % (key, diff_report(got, expected))


def test_fork_after_threaded_conv(isa, restore_threads):
    ctx = multiprocessing.get_context("fork")
    conv, x = _problem()
    sb.set_num_threads(2)
    expected = conv(x)          # the pool exists (2 threads) before the fork
    assert np.array_equal(conv(x), expected)
    results = _fork_and_collect(ctx, conv, x)
    _check_child(results, expected, isa)
    # the parent still works, on its own pool, on every thread count
    for n in (2, 3, 1, 2):
        sb.set_num_threads(n)
        got = conv(x)
        assert np.array_equal(got, expected), "parent after fork, %d threads: %s" % (
            n, diff_report(got, expected))
    # and can fork again
    _check_child(_fork_and_collect(ctx, conv, x), expected, isa)


def test_fork_while_another_thread_runs_convs(isa, restore_threads):
    """fork() while a Python thread of the parent is inside threaded loops:
    the prepare handler waits for the loop in flight, so the child never
    inherits a pool lock held mid-loop."""
    ctx = multiprocessing.get_context("fork")
    conv, x = _problem(seed=1)
    sb.set_num_threads(2)
    expected = conv(x)
    stop = threading.Event()
    background_errors, background_runs = [], [0]

    def hammer():
        try:
            while not stop.is_set():
                y = conv(x)
                if not np.array_equal(y, expected):
                    background_errors.append(diff_report(y, expected))
                    return
                background_runs[0] += 1
        except BaseException as exc:  # noqa: BLE001 -- reported below
            background_errors.append(repr(exc))

    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    try:
        for _ in range(4):
            _check_child(_fork_and_collect(ctx, conv, x), expected, isa)
    finally:
        stop.set()
        worker.join(TIMEOUT)
    assert not worker.is_alive(), "the parent's background thread hung"
    assert not background_errors, background_errors
    assert background_runs[0] > 0
    assert np.array_equal(conv(x), expected)


def test_fork_after_pool_resize(restore_threads):
    """A child forked after set_num_threads changed the pool size (the old pool
    joined, the new one not yet started) builds its own pool."""
    ctx = multiprocessing.get_context("fork")
    conv, x = _problem(seed=2)
    sb.set_num_threads(1)
    expected = conv(x)
    sb.set_num_threads(2)   # a new pool size: its workers are created lazily
    _check_child(_fork_and_collect(ctx, conv, x), expected, sb.get_isa())
    assert np.array_equal(conv(x), expected)

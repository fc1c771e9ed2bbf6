"""examples/dask_batch.py: a skipblocks model mapped over a batch of images with
Dask gives, bit for bit, the logits of the same model run in this process, and
the work runs in other processes: the workers of a LocalCluster the example
starts and closes, or those of a cluster started beforehand with the `dask
scheduler` / `dask worker` commands, as on several machines (there, on one).

Needs the `dask` extra (dask[array], distributed), which the README's test
command installs."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil
from distributed import Client

import skipblocks as sb

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, "examples", "dask_batch.py")
# The LocalCluster's worker processes start with this process's sys.path, so
# they import the example by this name as well.
sys.path.insert(0, os.path.dirname(EXAMPLE))
import dask_batch  # noqa: E402

# Small enough for two cores shared with other jobs: ResNet-18 with 10
# classes on 8 images of 64 x 64, two per chunk, so each worker gets chunks.
SMALL = dict(n_images=8, batch=2, size=64, model="resnet18", num_classes=10)


def _expected_logits(seed=0):
    # One batch of all 8 images here, where the cluster ran chunks of 2:
    # equal bits also show that a row's logits do not depend on its batch.
    return dask_batch.single_process_logits(SMALL["n_images"], SMALL["size"], SMALL["model"],
                                            num_classes=SMALL["num_classes"], seed=seed)


def _assert_real_logits(logits):
    assert logits.shape == (SMALL["n_images"], SMALL["num_classes"])
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    # distinct images give distinct rows: equality below is not between constants
    assert len({row.tobytes() for row in logits}) == SMALL["n_images"]


def _exited(pid):
    # an exited process may linger as a zombie until its parent reaps it
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_local_cluster_equals_one_process_and_shuts_down():
    result = dask_batch.run(workers=2, threads_per_worker=1, **SMALL)

    _assert_real_logits(result.logits)
    expected = _expected_logits()
    assert np.array_equal(result.logits, expected), \
        f"max |difference| {np.abs(result.logits - expected).max()}"
    # the comparison can fail: other weights and images give other logits
    assert not np.array_equal(result.logits, _expected_logits(seed=1))

    # every chunk ran in a worker process, none in this one
    assert len(result.worker_pids) == 2
    assert None not in result.chunk_workers
    assert set(result.chunk_workers) <= set(result.worker_pids)
    assert os.getpid() not in result.worker_pids.values()
    # skipblocks in each worker uses the worker's one thread, not every CPU
    assert set(result.worker_threads.values()) == {1}
    assert set(result.worker_isas.values()) == {sb.get_isa()}
    assert result.compute_seconds > 0 and result.images_per_second > 0

    # the cluster is closed: its worker processes have exited
    for pid in result.worker_pids.values():
        assert _exited(pid), f"worker {pid} still runs"


def _start(command, cwd, env, log_name):
    log = open(os.path.join(cwd, log_name), "wb")
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(process):
    if process.poll() is None:
        process.terminate()  # SIGTERM: dask's commands shut down their workers first
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _scheduler_address(scheduler_file, scheduler, deadline):
    while not os.path.exists(scheduler_file):
        assert scheduler.poll() is None, "dask scheduler exited"
        assert time.monotonic() < deadline, "dask scheduler did not start"
        time.sleep(0.1)
    time.sleep(0.1)  # the file is written in one go, but let the write finish
    with open(scheduler_file, encoding="utf-8") as f:
        return json.load(f)["address"]


def test_running_cluster_as_on_several_machines(tmp_path):
    # The README's multi-machine commands, on this machine: a scheduler, then
    # workers joining it, in a folder without the example and with a Python
    # path that only gives them skipblocks (this process's build of it).
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(sb.__file__)))
    scheduler_file = str(tmp_path / "scheduler.json")
    scheduler = _start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                        "--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file],
                       str(tmp_path), env, "scheduler.log")
    workers = None
    try:
        address = _scheduler_address(scheduler_file, scheduler, time.monotonic() + 30)
        workers = _start([sys.executable, "-m", "dask", "worker", address, "--nworkers", "2",
                          "--nthreads", "1", "--no-dashboard"], str(tmp_path), env,
                         "workers.log")
        with Client(address) as observer:
            observer.wait_for_workers(2, timeout=30)
            pids_before = observer.run(os.getpid)

            # the example as the README runs it: a script, from another folder
            saved = tmp_path / "logits.npy"
            run = subprocess.run([sys.executable, EXAMPLE, "--scheduler", address,
                                  "--images", str(SMALL["n_images"]),
                                  "--batch", str(SMALL["batch"]), "--size", str(SMALL["size"]),
                                  "--classes", str(SMALL["num_classes"]), "--save", str(saved)],
                                 cwd=str(tmp_path), env=env, capture_output=True, text=True,
                                 timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
            assert "2 workers" in run.stdout and "images/s" in run.stdout, run.stdout
            script_logits = np.load(saved)
            _assert_real_logits(script_logits)
            assert np.array_equal(script_logits, _expected_logits())

            # and imported, as from a notebook: the workers cannot import the
            # example, so it must send itself to them
            result = dask_batch.run(scheduler=address, **SMALL)
            assert np.array_equal(result.logits, script_logits)
            assert set(result.chunk_workers) <= set(pids_before)
            assert os.getpid() not in result.worker_pids.values()
            assert set(result.worker_threads.values()) == {1}

            # a cluster the example joined is someone else's: still running
            assert observer.run(os.getpid) == pids_before
    finally:
        if workers is not None:
            _stop(workers)
        _stop(scheduler)
    for pid in pids_before.values():
        assert _exited(pid), f"worker {pid} still runs"

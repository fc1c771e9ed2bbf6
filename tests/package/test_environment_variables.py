"""SKIPBLOCKS_NUM_THREADS and SKIPBLOCKS_ISA are checked alike: a value that
cannot be used stops the import with an error naming the variable, instead
of silently meaning something else."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/package/ -> repo


def _import_with(env_update):
    env = dict(os.environ, **env_update)
    return subprocess.run([sys.executable, "-c",
                           "import skipblocks; print(skipblocks.get_num_threads())"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value", ["abc", "0", "-2", "3.5", "1025", "\u00b2", "\u0663"])
def test_invalid_num_threads_is_an_import_error(value):
    proc = _import_with({"SKIPBLOCKS_NUM_THREADS": value})
    assert proc.returncode != 0
    assert "SKIPBLOCKS_NUM_THREADS" in proc.stderr and "ImportError" in proc.stderr, proc.stderr


@pytest.mark.parametrize("value", ["1", " 2 "])
def test_valid_num_threads_is_used(value):
    proc = _import_with({"SKIPBLOCKS_NUM_THREADS": value})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == value.strip()

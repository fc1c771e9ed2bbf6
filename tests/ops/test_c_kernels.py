"""Builds and runs the standalone C tests under csrc/tests/.

- csrc/tests/test_kernels.c checks every kernel against its reference (or a
  naive loop), on every instruction set this CPU has and on 1, 2 and 3
  threads, with NaN-prefilled outputs and sentinels between images.
- csrc/tests/test_parallel.c checks the thread-pool runtime: coverage and
  determinism of the split, nested and concurrent loops, fork, failing
  pthread_create, an idle pool that sleeps.

Both are plain C programs (no Python, no NumPy): this module compiles them
into pytest's tmp_path with the C compiler that builds the extension, with
setup.py's flags (but -O2), runs them, and fails with the program's output
when one exits nonzero. A missing compiler is a failure, not a skip: building
skipblocks needs one anyway.
"""

import glob
import os
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")

# setup.py's flags, at -O2: portable (no -march), ISO C99, warnings on.
CFLAGS = [
    "-O2", "-std=c99", "-fno-math-errno", "-pthread", "-Wall", "-Wextra",
    "-Wno-unused-parameter", "-Wno-missing-field-initializers",
    "-I" + os.path.join(CSRC, "include"),
]
LDFLAGS = ["-pthread", "-lm"]

# Generous: both programs take a few seconds; the limit only turns a hang
# (a deadlock in the pool) into a failure.
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(
    sys.platform == "win32",
    reason="the C tests use POSIX (pthreads, fork); Windows builds with MSVC and has no pool",
)


def _compiler():
    """$CC (which may carry arguments, e.g. "ccache gcc"), else cc, else gcc."""
    wanted = os.environ.get("CC", "cc")
    argv = shlex.split(wanted)
    if argv and shutil.which(argv[0]) is not None:
        return argv
    if shutil.which("gcc") is not None:
        return ["gcc"]
    pytest.fail(
        f"no C compiler found: neither {wanted!r} ($CC, default cc) nor gcc is on PATH. "
        "Building skipblocks needs a C compiler too; install one (e.g. gcc) or set CC.",
        pytrace=False,
    )


def _build(tmp_path, name, sources, extra=()):
    exe = str(tmp_path / name)
    cmd = _compiler() + CFLAGS + list(extra) + sources + ["-o", exe] + LDFLAGS
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"compiling {name} failed (exit {proc.returncode}):\n$ {shlex.join(cmd)}\n"
            f"{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
    if proc.stderr.strip():
        # Warnings do not fail the test (another compiler may warn about other
        # things), but they show up in pytest's report of captured output.
        print(f"compiler warnings for {name}:\n{proc.stderr}")
    return exe


def _run(exe):
    try:
        proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        pytest.fail(f"{os.path.basename(exe)} did not finish in {RUN_TIMEOUT_S} s:\n{out}",
                    pytrace=False)
    output = proc.stdout + proc.stderr
    print(output)  # the per-check report, visible with pytest -rP
    assert proc.returncode == 0, (
        f"{os.path.basename(exe)} exited with {proc.returncode}:\n{output}"
    )
    return output


def _kernel_sources():
    sources = sorted(glob.glob(os.path.join(CSRC, "kernels", "*.c")))
    assert sources, f"no kernel sources under {os.path.join(CSRC, 'kernels')}"
    return sources


def test_c_kernels_against_references(tmp_path):
    sources = _kernel_sources() + [
        os.path.join(CSRC, "runtime", "parallel.c"),
        os.path.join(CSRC, "tests", "test_kernels.c"),
    ]
    exe = _build(tmp_path, "test_kernels", sources)
    output = _run(exe)
    assert "all checks passed" in output


def test_c_kernels_portable_build(tmp_path):
    """The build a CPU without the x86 vector kernels gets (ARM, say): with
    SB_PORTABLE_ONLY no intrinsic is compiled, every kernel is the portable
    C, and the same checks pass on it. No object file may hold an AVX
    (VEX/EVEX, ymm/zmm) instruction."""
    sources = _kernel_sources() + [
        os.path.join(CSRC, "runtime", "parallel.c"),
        os.path.join(CSRC, "tests", "test_kernels.c"),
    ]
    exe = _build(tmp_path, "test_kernels_portable", sources, extra=["-DSB_PORTABLE_ONLY"])
    output = _run(exe)
    assert "all checks passed" in output
    assert "kernel paths checked: scalar  " in output, output
    objdump = shutil.which("objdump")  # binutils: installed with the compiler
    assert objdump is not None, "objdump not found (binutils)"
    listing = subprocess.run([objdump, "-d", exe], capture_output=True, text=True,
                             check=True).stdout
    vector = [line for line in listing.splitlines() if "%ymm" in line or "%zmm" in line]
    assert not vector, "AVX instructions in the portable build:\n" + "\n".join(vector[:10])


def test_c_thread_pool(tmp_path):
    sources = [
        os.path.join(CSRC, "runtime", "parallel.c"),
        os.path.join(CSRC, "tests", "test_parallel.c"),
    ]
    exe = _build(tmp_path, "test_parallel", sources)
    # The full run (not SB_TEST_QUICK) also checks a pool whose
    # pthread_create fails; it takes a few seconds, of which about half is
    # the overhead report (timings are printed, never asserted).
    output = _run(exe)
    assert "all parallel runtime checks passed" in output

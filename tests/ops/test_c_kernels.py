"""Builds and runs the standalone C tests under csrc/tests/.

- Every csrc/tests/test_<name>.c but test_parallel.c and test_harness.c is
  one program: an operator family's (test_conv2d.c, test_pool.c, ...)
  checks each fast kernel against its __ref on every kernel path this CPU
  has and on 1, 2 and 3 threads, with NaN-prefilled outputs and sentinels
  between images, using the shared harness csrc/tests/test_harness.c. A
  family's checks are written once for both element types, as the kernels
  are: csrc/tests/test_<family>.inc on sb_real (test_real.h), compiled by
  the three-line wrappers test_<family>.c (float32) and
  test_<family>_f64.c (float64), two programs. The programs are found by
  that name pattern, so a new test_<name>.c is built and run without
  touching this file (an .inc is not a program).
- Each program is linked with every kernel (csrc/kernels/*.c), the thread
  pool (csrc/runtime/parallel.c), the harness, and, once that folder
  exists, the operator tier (csrc/ops/*.c, which includes sb_ops.h from
  csrc/include): programs that test the operators sit beside the others.
- Each program runs twice: in the normal build, and in the portable build
  a CPU without the x86 vector kernels gets (-DSB_PORTABLE_ONLY), which
  must hold no AVX (ymm/zmm) instruction.
- With SKIPBLOCKS_SANITIZE=1 (as .ci/sanitize runs them) every program is
  built with AddressSanitizer and UndefinedBehaviorSanitizer.
- csrc/tests/test_parallel.c checks the thread-pool runtime: coverage and
  determinism of the split, nested and concurrent loops, fork, failing
  pthread_create, an idle pool that sleeps.

They are plain C programs (no Python, no NumPy, no torch): this module
compiles them into pytest's temporary directory with the C compiler that
builds the extension, with setup.py's flags (but -O2), runs them, and fails
with the program's output when one exits nonzero. The test ids name the
program (test_c_kernels[pool]), so a failure names the operator. A missing
compiler is a failure, not a skip: building skipblocks needs one anyway.
"""

import concurrent.futures
import glob
import os
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSRC = os.path.join(ROOT, "csrc")
TESTS = os.path.join(CSRC, "tests")

# setup.py's flags, at -O2: portable (no -march), ISO C99, warnings on.
CFLAGS = [
    "-O2", "-std=c99", "-fno-math-errno", "-pthread", "-Wall", "-Wextra",
    "-Wno-unused-parameter", "-Wno-missing-field-initializers",
    "-I" + os.path.join(CSRC, "include"),
]
LDFLAGS = ["-pthread", "-lm"]
PORTABLE = ["-DSB_PORTABLE_ONLY"]

# SKIPBLOCKS_SANITIZE=1 (setup.py's switch, set by .ci/sanitize): every
# program is built with AddressSanitizer and UndefinedBehaviorSanitizer, and
# the first finding ends it with a nonzero status and the report. The
# programs link the runtime themselves, so no LD_PRELOAD is needed here.
SANITIZE = os.environ.get("SKIPBLOCKS_SANITIZE", "0") == "1"
if SANITIZE:
    # setup.py's sanitizer flags (see there)
    CFLAGS += ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
               "-fno-wrapv", "-fno-omit-frame-pointer", "-g"]
    LDFLAGS += ["-fsanitize=address,undefined,float-cast-overflow"]

# csrc/tests/test_*.c files that are not operator programs.
NOT_PROGRAMS = {"test_parallel.c", "test_harness.c"}
# One program per kernel family and element type (test_<family>.c for
# float32, test_<family>_f64.c for float64, both from test_<family>.inc),
# and the operator tier's; their absence is a failure (a test file deleted
# by mistake), new ones are simply added.
FAMILIES = ("batch_norm", "conv2d", "elementwise", "linear", "pool", "ukernels")
EXPECTED_PROGRAMS = ({"status", "operators"} | set(FAMILIES)
                     | {family + "_f64" for family in FAMILIES}
                     # the document's other systems' layers
                     | {"conv_transpose2d", "conv_transpose2d_f64"}
                     | {"pad", "pad_f64", "dropout", "dropout_f64"}
                     | {"resample", "resample_f64"})

# Generous: every program takes a few seconds; the limit only turns a hang
# (a deadlock in the pool) into a failure.
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(
    sys.platform == "win32",
    reason="the C tests use POSIX (pthreads, fork); Windows builds with MSVC and has no pool",
)


def _programs():
    """The operator programs: csrc/tests/test_<name>.c -> <name>."""
    names = []
    for path in sorted(glob.glob(os.path.join(TESTS, "test_*.c"))):
        base = os.path.basename(path)
        if base not in NOT_PROGRAMS:
            names.append(base[len("test_"):-len(".c")])
    return names


PROGRAMS = _programs()


def _library_sources():
    """What every operator program links: the kernels, the pool, the
    harness, and the operator tier once csrc/ops/ exists."""
    kernels = sorted(glob.glob(os.path.join(CSRC, "kernels", "*.c")))
    assert kernels, f"no kernel sources under {os.path.join(CSRC, 'kernels')}"
    ops = sorted(glob.glob(os.path.join(CSRC, "ops", "*.c")))
    return kernels + ops + [
        os.path.join(CSRC, "runtime", "parallel.c"),
        os.path.join(TESTS, "test_harness.c"),
    ]


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


def _compile(cmd, what):
    """Runs one compiler command; a failure fails the test with its output,
    warnings are printed (they show in pytest's captured output; another
    compiler may warn about other things, so they do not fail the test)."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"compiling {what} failed (exit {proc.returncode}):\n$ {shlex.join(cmd)}\n"
            f"{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
    if proc.stderr.strip():
        print(f"compiler warnings for {what}:\n{proc.stderr}")


def _object_name(source):
    """csrc/kernels/conv2d_f32.c -> kernels__conv2d_f32.o (stems may repeat
    across folders)."""
    rel = os.path.relpath(source, CSRC)
    return rel[:-len(".c")].replace(os.sep, "__") + ".o"


def _compile_library(out_dir, extra):
    """Compiles the library sources once into out_dir, in parallel."""
    cc = _compiler()
    os.makedirs(out_dir, exist_ok=True)
    jobs = []
    for source in _library_sources():
        obj = os.path.join(out_dir, _object_name(source))
        jobs.append((cc + CFLAGS + list(extra) + ["-c", source, "-o", obj],
                     os.path.relpath(source, ROOT), obj))
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(subprocess.run, cmd, cwd=ROOT, capture_output=True, text=True)
                   for cmd, _, _ in jobs]
        for (cmd, what, _), future in zip(jobs, futures):
            results.append((cmd, what, future.result()))
    failed = [(cmd, what, proc) for cmd, what, proc in results if proc.returncode != 0]
    if failed:
        pytest.fail("\n".join(
            f"compiling {what} failed (exit {proc.returncode}):\n$ {shlex.join(cmd)}\n"
            f"{proc.stdout}{proc.stderr}" for cmd, what, proc in failed), pytrace=False)
    for _, what, proc in results:
        if proc.stderr.strip():
            print(f"compiler warnings for {what}:\n{proc.stderr}")
    return [obj for _, _, obj in jobs]


@pytest.fixture(scope="module")
def library_objects(tmp_path_factory):
    return _compile_library(str(tmp_path_factory.mktemp("c_objects")), ())


@pytest.fixture(scope="module")
def portable_library_objects(tmp_path_factory):
    return _compile_library(str(tmp_path_factory.mktemp("c_objects_portable")), PORTABLE)


def _build_program(tmp_path, name, objects, extra=()):
    source = os.path.join(TESTS, f"test_{name}.c")
    exe = str(tmp_path / f"test_{name}")
    cmd = _compiler() + CFLAGS + list(extra) + [source] + objects + ["-o", exe] + LDFLAGS
    _compile(cmd, f"test_{name}")
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


def test_c_kernel_programs_present():
    missing = EXPECTED_PROGRAMS - set(PROGRAMS)
    assert not missing, f"C test programs missing from {TESTS}: {sorted(missing)}"


@pytest.mark.parametrize("name", PROGRAMS)
def test_c_kernels(tmp_path, library_objects, name):
    """Each fast kernel of the family against its reference, on every ISA
    path this CPU has and on 1, 2 and 3 threads."""
    output = _run(_build_program(tmp_path, name, library_objects))
    assert "all checks passed" in output


@pytest.mark.parametrize("name", PROGRAMS)
def test_c_kernels_portable_build(tmp_path, portable_library_objects, name):
    """The build a CPU without the x86 vector kernels gets (ARM, say): with
    SB_PORTABLE_ONLY no intrinsic is compiled, every kernel is the portable
    C, and the same checks pass on it. No object file may hold an AVX
    (VEX/EVEX, ymm/zmm) instruction."""
    exe = _build_program(tmp_path, name, portable_library_objects, extra=PORTABLE)
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
    exe = str(tmp_path / "test_parallel")
    cmd = _compiler() + CFLAGS + [
        os.path.join(CSRC, "runtime", "parallel.c"),
        os.path.join(TESTS, "test_parallel.c"),
    ] + ["-o", exe] + LDFLAGS
    _compile(cmd, "test_parallel")
    # The full run (not SB_TEST_QUICK) also checks a pool whose
    # pthread_create fails; it takes a few seconds, of which about half is
    # the overhead report (timings are printed, never asserted).
    output = _run(exe)
    assert "all parallel runtime checks passed" in output

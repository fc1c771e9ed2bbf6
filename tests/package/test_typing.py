"""The type stubs (skipblocks/*.pyi, PEP 561 with skipblocks/py.typed) are
correct, complete and in use:

* test_stubs_pass_mypy_strict: the .pyi files themselves type-check;
* test_stubs_match_the_runtime: ``python -m mypy.stubtest skipblocks``
  compares every stub with the object it describes at run time (names,
  parameters and their kinds, defaults, what ``__all__`` exports, the C
  functions' text signatures), with the allowlist
  tests/package/stubtest_allowlist.txt. This is what keeps the stubs
  honest: a function added to a module's ``__all__`` without a stub, or a
  parameter renamed in the code, fails here;
* test_typed_example_passes_mypy_strict: tests/package/typed_example.py, a
  small program using the API (modules, state_dict, load/save, functional,
  hooks, threads, models, parity), passes ``mypy --strict`` -- and runs;
* test_mypy_rejects_misuse: tests/package/typed_misuse.py's wrong calls get
  exactly the errors marked on their lines, so a stub loosened to Any fails.

mypy runs from the repository root, so it reads this tree's stubs (the
installed package's are checked by test_packaging.py). About 40 s in all,
most of it stubtest (it imports and builds every module).
"""
import glob
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("mypy")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # tests/package/ -> repo
STUBS = sorted(glob.glob(os.path.join(ROOT, "skipblocks", "**", "*.pyi"), recursive=True))


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    # one cache for the module's runs (numpy's stubs are analysed once), kept
    # out of the repository
    return str(tmp_path_factory.mktemp("mypy_cache"))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("MYPYPATH", None)
    return env


def _mypy(args, cache, timeout=600):
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", cache,
                           "--no-error-summary", "--show-error-codes", *args],
                          cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_every_public_module_has_a_stub():
    # a .py module without a .pyi beside it would be read from its
    # (unannotated) source by mypy; the public modules all have one
    expected = ["__init__", "__main__", "_C", "_blocked", "blocks", "cli", "containers", "conversion",
                "demos", "functional", "hooks", "inception", "layers", "module", "parity",
                "random", "runtime", "unet", "models/__init__", "models/densenet",
                "models/googlenet", "models/resnet", "models/se_resnet",
                "serialization/__init__"]
    missing = [m for m in expected
               if not os.path.isfile(os.path.join(ROOT, "skipblocks", m + ".pyi"))]
    assert not missing
    # and a new top-level module needs one too (or a reason to be left out)
    top_level = {os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(ROOT, "skipblocks", "*.py"))}
    unstubbed = sorted(top_level - set(expected))
    assert not unstubbed, f"modules without a stub: {unstubbed}"
    assert os.path.isfile(os.path.join(ROOT, "skipblocks", "py.typed"))


def test_stubs_pass_mypy_strict(mypy_cache):
    proc = _mypy(STUBS, mypy_cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stubs_match_the_runtime(mypy_cache):
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "skipblocks",
         "--mypy-config-file", os.path.join(HERE, "stubtest_mypy.ini"),
         "--allowlist", os.path.join(HERE, "stubtest_allowlist.txt")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def test_typed_example_passes_mypy_strict(mypy_cache):
    example = os.path.join(HERE, "typed_example.py")
    proc = _mypy([example], mypy_cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and it runs, so the types it states are the real ones
    run = subprocess.run([sys.executable, example], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[0] == "(2, 10)"


def test_mypy_rejects_misuse(mypy_cache):
    misuse = os.path.join(HERE, "typed_misuse.py")
    with open(misuse, encoding="utf-8") as f:
        expected = {(n, m.group(1)) for n, line in enumerate(f, 1)
                    for m in [re.search(r"# error: ([\w-]+)\s*$", line)] if m}
    assert len(expected) >= 15
    proc = _mypy([misuse], mypy_cache)
    found = {(int(m.group(1)), m.group(2))
             for m in re.finditer(r"typed_misuse\.py:(\d+): error: .*\[([\w-]+)\]$",
                                  proc.stdout, re.M)}
    assert found == expected, (
        f"expected but not reported: {sorted(expected - found)}\n"
        f"reported but not expected: {sorted(found - expected)}\n{proc.stdout}")

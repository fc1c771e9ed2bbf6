"""Packaging: one version, the build's self-description, and the sdist and
wheel as a user gets them.

test_sdist_and_wheel_install_and_run is the end-to-end check: it builds the
sdist from this tree (``python -m build --sdist``), builds the wheel *from
the sdist* in a fresh virtual environment with pip's isolated build (the
build requirements of pyproject.toml come from the package index, numpy
too), installs that wheel there, and runs the demo (``python -m skipblocks
--no-torch``) and the ``skipblocks`` console script from outside the tree.
``pip install <sdist>`` is exactly these two steps (pip wheel, then install
the wheel); they are taken apart so the wheel is inspected, and the C code
compiled, once. It also checks what each archive holds (the C headers and
kernel bodies in the sdist; the extension, the stubs and py.typed in the
wheel) and that mypy finds the installed stubs through py.typed (PEP 561).

It needs the package index (numpy, setuptools) and a C compiler, and takes
about 1 to 2 minutes on two cores, most of it compiling the extension.
"""
import ast
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

import skipblocks
from skipblocks import _C

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # tests/package/ -> repo


# -- one version --------------------------------------------------------------

def _literal_version():
    """__version__ as setuptools reads it: the literal assignment in
    skipblocks/__init__.py, found without importing the package."""
    with open(os.path.join(ROOT, "skipblocks", "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    values = [node.value.value for node in tree.body
              if isinstance(node, ast.Assign)
              and any(getattr(t, "id", None) == "__version__" for t in node.targets)
              and isinstance(node.value, ast.Constant)]
    assert len(values) == 1, "skipblocks/__init__.py needs one literal __version__ = '...'"
    return values[0]


def test_version_has_one_source():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        pyproject = f.read()
    project = re.search(r"^\[project\]$(.*?)^\[", pyproject, re.M | re.S)[1]
    assert re.search(r'^dynamic = \[.*"version".*\]', project, re.M)
    assert not re.search(r"^version\s*=", project, re.M), "a second copy of the version"
    dynamic = re.search(r"^\[tool\.setuptools\.dynamic\]$(.*?)(^\[|\Z)", pyproject,
                        re.M | re.S)[1]
    assert re.search(r'^version = \{\s*attr = "skipblocks.__version__"\s*\}', dynamic, re.M)
    assert skipblocks.__version__ == _literal_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+)?(\.dev\d+)?", skipblocks.__version__)


# -- the build's self-description -----------------------------------------------

def test_build_info():
    info = _C.build_info()
    assert set(info) == {"compiler", "build_flags", "sanitize", "python", "numpy_api_version",
                         "numpy_feature_version", "numpy_feature_version_string",
                         "numpy_abi_version", "isas"}
    assert info is not _C.build_info()  # a new dict each call
    assert isinstance(info["compiler"], str) and info["compiler"]
    assert isinstance(info["build_flags"], str) and info["build_flags"]
    assert isinstance(info["sanitize"], bool)
    # setup.py passes its flags; SKIPBLOCKS_SANITIZE=1 adds -fsanitize and the macro
    if info["build_flags"] != "unknown":
        assert ("-fsanitize=address,undefined" in info["build_flags"]) == info["sanitize"]
    assert info["python"].split(".")[:2] == [str(v) for v in sys.version_info[:2]]
    # NumPy 2 headers (pyproject's build requirement): C-API 0x12 or later, ABI 2
    assert info["numpy_api_version"] >= 0x12
    assert info["numpy_abi_version"] >> 24 == 2
    assert info["numpy_feature_version"] <= info["numpy_api_version"]
    assert re.fullmatch(r"\d+\.\d+", info["numpy_feature_version_string"])
    assert info["isas"][0] == "scalar"
    assert set(_C.available_isas()) <= set(info["isas"])


# -- the sdist and the wheel, installed in a fresh environment --------------------------

def _run(args, cwd, timeout=900, env=None):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert proc.returncode == 0, f"{args}\nexit {proc.returncode}\n" \
        f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout


def _tree_files(pattern):
    return sorted(os.path.relpath(p, ROOT).replace(os.sep, "/")
                  for p in glob.glob(os.path.join(ROOT, pattern), recursive=True))


DEMO_LINES = ["resnet        input (1, 3, 100, 100) -> output (1, 128, 13, 13)",
              "densenet      input (1, 3, 100, 100) -> output (1, 256, 24, 24)",
              "se            input (50, 512, 7, 7) -> output (50, 512, 7, 7)"]


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None
                    and sys.platform != "win32", reason="needs a C compiler")
def test_sdist_and_wheel_install_and_run(tmp_path):
    pytest.importorskip("build")
    started = time.monotonic()
    dist = tmp_path / "dist"

    # 1. the sdist, from this tree (only setuptools runs: nothing is compiled)
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
          "--skip-dependency-check", "--outdir", str(dist), ROOT], cwd=ROOT)
    sdists = glob.glob(str(dist / "skipblocks-*.tar.gz"))
    assert len(sdists) == 1
    sdist = sdists[0]
    assert os.path.basename(sdist) == f"skipblocks-{skipblocks.__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        top = f"skipblocks-{skipblocks.__version__}/"
        in_sdist = {name[len(top):] for name in archive.getnames() if name.startswith(top)}
    needed = (_tree_files("csrc/**/*.h") + _tree_files("csrc/**/*.inc")
              + _tree_files("csrc/**/*.c") + _tree_files("skipblocks/**/*.pyi")
              + ["skipblocks/py.typed", "pyproject.toml", "setup.py", "README.md"])
    missing = sorted(set(needed) - in_sdist)
    assert not missing, f"not in the sdist: {missing}"

    # 2. a fresh environment; the wheel built from the sdist by pip, isolated
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=str(tmp_path))
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = str(bindir / "python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    wheelhouse = tmp_path / "wheelhouse"
    # (--no-cache-dir: a wheel pip cached from an earlier run is not this sdist's)
    _run([python, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
          "--wheel-dir", str(wheelhouse), sdist], cwd=str(tmp_path), env=env)
    wheels = glob.glob(str(wheelhouse / "skipblocks-*.whl"))
    assert len(wheels) == 1
    wheel = wheels[0]
    assert os.path.basename(wheel).startswith(f"skipblocks-{skipblocks.__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
        metadata = archive.read(f"skipblocks-{skipblocks.__version__}.dist-info/METADATA")
        entry_points = archive.read(
            f"skipblocks-{skipblocks.__version__}.dist-info/entry_points.txt").decode()
    assert f"Version: {skipblocks.__version__}" in metadata.decode()
    assert "skipblocks = skipblocks.cli:main" in entry_points
    missing = sorted(set(_tree_files("skipblocks/**/*.pyi") + ["skipblocks/py.typed"])
                     - in_wheel)
    assert not missing, f"not in the wheel: {missing}"
    assert [n for n in in_wheel if re.fullmatch(r"skipblocks/_C\.[^/]*\.(so|pyd)", n)]
    assert "skipblocks/reference/__init__.py" in in_wheel
    assert "skipblocks/models/__init__.py" in in_wheel
    assert "skipblocks/serialization/__init__.py" in in_wheel

    # 3. installed (numpy from the index), run from outside the tree
    _run([python, "-m", "pip", "install", wheel], cwd=str(tmp_path), env=env)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    report = _run([python, "-c",
                   "import importlib.metadata, inspect, skipblocks, skipblocks._C as C\n"
                   "print(skipblocks.__file__)\n"
                   "print(skipblocks.__version__, importlib.metadata.version('skipblocks'))\n"
                   "print(inspect.signature(C.conv2d))\n"
                   "print(C.build_info()['isas'])\n"],
                  cwd=str(outside), env=env).splitlines()
    assert os.path.realpath(report[0]).startswith(os.path.realpath(str(venv)))
    assert report[1] == f"{skipblocks.__version__} {skipblocks.__version__}"
    assert report[2].startswith("(layer, input, weight, bias, stride,")
    demo = _run([python, "-m", "skipblocks", "--no-torch"], cwd=str(outside), env=env)
    script = _run([str(bindir / "skipblocks"), "--no-torch"], cwd=str(outside), env=env)
    for line in DEMO_LINES:
        assert line in demo.splitlines(), demo
        assert line in script.splitlines(), script

    # 4. PEP 561: mypy, pointed at the environment, types the installed package
    #    from its stubs (py.typed); the example is copied out of the tree
    if _has_mypy():
        example = outside / "typed_example.py"
        shutil.copy(os.path.join(HERE, "typed_example.py"), example)
        _run([sys.executable, "-m", "mypy", "--strict", "--python-executable", python,
              "--cache-dir", str(tmp_path / "mypy_cache"), "--no-error-summary",
              str(example)], cwd=str(outside), env=env)
    print(f"sdist, wheel, install and runs: {time.monotonic() - started:.0f} s")


def _has_mypy():
    try:
        import mypy  # noqa: F401
    except ImportError:
        return False
    return True

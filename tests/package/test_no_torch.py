"""``import skipblocks`` needs only NumPy: run skipblocks in a subprocess in
which torch cannot be imported (a meta-path finder refuses it), and check it
imports, runs a layer of each kind and the document's blocks, loads a
state_dict of NumPy arrays, never imports torch or skipblocks.reference, and
that ``python -m skipblocks`` still prints the demos' shapes.
"""

import os
import subprocess
import sys
import textwrap

import skipblocks
from helpers import import_blocker

# The subprocess must import the same skipblocks as this test process.
_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(skipblocks.__file__)))

_BLOCK_TORCH = import_blocker("torch")


def _run(code, tmp_path, timeout=300):
    env = dict(os.environ)
    env["PYTHONPATH"] = _PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONSTARTUP", None)
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TORCH + textwrap.dedent(code)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
        proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


def test_import_and_run_without_torch(tmp_path):
    out = _run("""
        import numpy as np
        import skipblocks as sb
        import skipblocks.functional as F

        x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
        y = sb.Conv2d(3, 4, 3, padding=1)(x)
        assert y.shape == (2, 4, 9, 9) and y.dtype == np.float32
        assert sb.BatchNorm2d(4)(y).shape == y.shape
        assert F.max_pool2d(sb.ReLU()(y), 2).shape == (2, 4, 4, 4)
        assert sb.AdaptiveAvgPool2d(1)(sb.Sigmoid()(y)).shape == (2, 4, 1, 1)
        assert sb.Linear(9, 2)(y).shape == (2, 4, 9, 2)
        assert sb.cat([y, y], dim=1).shape == (2, 8, 9, 9)
        assert sb.ResidualBlock(3, 3)(x).shape == x.shape
        assert sb.DenseBlock(2, 3, 2, 2)(x).shape == (2, 7, 9, 9)
        assert sb.SEAttention(3, 2)(x).shape == x.shape
        conv = sb.Conv2d(3, 4, 3)
        conv.load_state_dict({k: np.zeros_like(v) for k, v in conv.state_dict().items()})
        assert not conv(x).any()
        bad = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
        assert not bad, bad
        assert "skipblocks.reference" not in sys.modules
        try:
            import skipblocks.reference  # noqa: F401
        except ImportError:
            pass
        else:
            raise AssertionError("skipblocks.reference imported without torch")
        print("ok")
    """, tmp_path)
    assert out.strip().endswith("ok")


def test_import_skipblocks_does_not_import_torch_even_when_installed(tmp_path):
    """Even with torch importable, ``import skipblocks`` must not import it (nor the oracle)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    code = ("import sys, numpy as np, skipblocks as sb; sb.Conv2d(1, 1, 1)(np.ones((1, 1, 2, 2))); "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'skipblocks.reference' not in sys.modules, 'reference imported'; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_python_dash_m_without_torch(tmp_path):
    out = _run("""
        import runpy
        sys.argv = ["skipblocks"]
        runpy.run_module("skipblocks", run_name="__main__", alter_sys=True)
    """, tmp_path)
    for shape in ("1, 128, 13, 13", "1, 256, 24, 24", "50, 512, 7, 7"):
        assert shape in out, "shape (%s) missing from:\n%s" % (shape, out)

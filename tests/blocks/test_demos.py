"""The document's three demos (sections 3.1, 3.2, 4.3), rebuilt from skipblocks
classes with the document's constructor calls, loaded from the document's torch
modules, at the document's input shapes and at others.  Train mode is how the
document runs them (modules start in train mode); eval after training checks
that the running statistics were carried over correctly.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import skipblocks as sb
from skipblocks import reference as ref

from helpers import (SB_BUILDERS, as_dtype, assert_parity, assert_state_dict_parity,
                     load_from_torch, randomize_, to_numpy, torch_repr_as_skipblocks)
from tolerances import F64_BLOCK_BOUND, ISSUE_BLOCK_BOUND

OPS = {"resnet": "resnet_demo", "densenet": "densenet_demo", "se": "se_demo"}


def _check_demo(name, tm, sm, inputs, expected_shape=None):
    for step, training in enumerate([True, True, False]):
        tm.train(training)
        sm.train(training)
        x = inputs[step]
        with torch.no_grad():
            expected = tm(x.clone())
        got = sm(to_numpy(x))
        if expected_shape is not None:
            assert got.shape == expected_shape
        what = "%s demo step %d (%s) input %s" % (name, step, "train" if training else "eval",
                                                   tuple(x.shape))
        err = assert_parity(got, expected, OPS[name], what=what)
        assert err <= (F64_BLOCK_BOUND if got.dtype == np.float64 else ISSUE_BLOCK_BOUND)
        assert_state_dict_parity(sm, tm, what=what)


@pytest.mark.parametrize("name", ["resnet", "densenet", "se"])
def test_document_demo_parity(name, dtype):
    spec = ref.DOCUMENT_INPUTS[name]
    tm, sm = as_dtype(spec["builder"](), SB_BUILDERS[name](), dtype)
    sm = load_from_torch(sm, tm)
    inputs = [ref.document_input(name, seed).to(getattr(torch, dtype)) for seed in range(3)]
    assert tuple(inputs[0].shape) == spec["shape"]
    _check_demo(name, tm, sm, inputs, expected_shape=spec["output_shape"])


def test_document_demo_shapes():
    """The shapes the document prints."""
    assert ref.DOCUMENT_INPUTS["resnet"]["shape"] == (1, 3, 100, 100)
    assert ref.DOCUMENT_INPUTS["densenet"]["shape"] == (1, 3, 100, 100)
    assert ref.DOCUMENT_INPUTS["se"]["shape"] == (50, 512, 7, 7)
    for name, out in [("resnet", (1, 128, 13, 13)), ("densenet", (1, 256, 24, 24)),
                      ("se", (50, 512, 7, 7))]:
        assert SB_BUILDERS[name]()(np.zeros(ref.DOCUMENT_INPUTS[name]["shape"], np.float32)
                                   + np.float32(0.5)).shape == out


# demo, builder kwargs, input shape
OTHER_SHAPES = [
    ("resnet", dict(in_channels=2, width=16, out_channels=24), (2, 2, 37, 41)),
    ("resnet", dict(in_channels=3, width=9, out_channels=13, down_stride=2), (3, 3, 30, 27)),
    ("densenet", dict(width=12, n_layers=3, growthrate=5, bn_size=2), (2, 3, 29, 31)),
    ("densenet", dict(in_channels=1, width=8, n_layers=2, growthrate=7, bn_size=3), (1, 1, 40, 33)),
    ("se", dict(channel=48, reduction=8), (3, 48, 5, 6)),
    ("se", dict(channel=30, reduction=4), (5, 30, 1, 9)),
]


@pytest.mark.parametrize("name,kwargs,shape", OTHER_SHAPES,
                         ids=["%s-%s" % (n, "-".join("%s%s" % kv for kv in k.items())) for n, k, _ in OTHER_SHAPES])
def test_demo_parity_other_shapes(name, kwargs, shape, dtype):
    tm, sm = as_dtype(randomize_(ref.DOCUMENT_INPUTS[name]["builder"](**kwargs)),
                      SB_BUILDERS[name](**kwargs), dtype)
    sm = load_from_torch(sm, tm)
    g = torch.Generator().manual_seed(len(shape) + shape[-1])
    inputs = [torch.randn(*shape, generator=g, dtype=getattr(torch, dtype)) for _ in range(3)]
    _check_demo(name, tm, sm, inputs)


@pytest.mark.parametrize("name", ["resnet", "densenet", "se"])
def test_demo_repr_matches_torch(name):
    tm = ref.DOCUMENT_INPUTS[name]["builder"]()
    sm = SB_BUILDERS[name]()
    assert repr(sm) == torch_repr_as_skipblocks(repr(tm))


def test_python_dash_m_skipblocks_runs_demos():
    """README's main job: ``python -m skipblocks`` prints the three demos' output shapes,
    then the U-Net, SE-ResNet and SE-Inception demos' ones
    (and, torch being installed here, their parity errors)."""
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(sb.__file__)))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "skipblocks"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for shape in ["1, 128, 13, 13", "1, 256, 24, 24", "50, 512, 7, 7",
                  "1, 2, 64, 64", "2, 64, 28, 28", "2, 256, 28, 28"]:
        assert shape in out, "output shape (%s) not printed:\n%s" % (shape, out)

"""The oracle itself: skipblocks.reference reproduces the document's modules
(with only the global-``downsample`` fix), its builders give the document's
demos, ``parity_error`` is the issue's metric, and the tolerance table keeps
within the issue's bounds.
"""

import numpy as np
import pytest
import torch
from torch import nn

from skipblocks import reference as ref

from tolerances import (BLOCK_OPS, ISSUE_BLOCK_BOUND, NETWORK_BOUND, NETWORK_OPS, TOLERANCES,
                        tolerance)


def test_tolerance_table_sane():
    for op in BLOCK_OPS:
        assert 0 < TOLERANCES[op] <= ISSUE_BLOCK_BOUND, op
    for op in ("relu", "max_pool2d", "cat"):
        assert TOLERANCES[op] == 0.0, op
    for op in NETWORK_OPS:
        assert 0 < TOLERANCES[op] <= NETWORK_BOUND, op
    for op, tol in TOLERANCES.items():
        assert op in NETWORK_OPS or tol <= 2e-5, (op, tol)
    assert tolerance("conv2d", fan_in=9) == TOLERANCES["conv2d"]
    assert tolerance("conv2d", fan_in=1024) == pytest.approx(2 * TOLERANCES["conv2d"])


def test_parity_error_is_the_issue_metric():
    theirs = np.array([[0.5, -4.0], [2.0, 1.0]], np.float32)
    ours = theirs + np.array([[0.0, 0.002], [-0.004, 0.0]], np.float32)
    expected = np.abs(ours.astype(np.float64) - theirs).max() / 4.0
    assert ref.parity_error(ours, theirs) == pytest.approx(expected)
    assert ref.parity_error(torch.from_numpy(ours), torch.from_numpy(theirs)) == pytest.approx(expected)
    assert ref.parity_error(ours, torch.from_numpy(theirs)) == pytest.approx(expected)
    small = np.array([0.1, 0.2], np.float32)                      # max|theirs| < 1: absolute
    assert ref.parity_error(small + np.float32(0.01), small) == pytest.approx(0.01, rel=1e-5)
    assert ref.parity_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    nan = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert ref.parity_error(nan, nan) == 0.0
    assert ref.parity_error(np.array([np.nan, 1.0]), np.array([0.0, 1.0])) == np.inf
    assert ref.parity_error(np.array([np.inf]), np.array([-np.inf])) == np.inf
    with pytest.raises(ValueError):
        ref.parity_error(np.zeros(3), np.zeros((3, 1)))


def test_reference_residual_block_uses_its_own_downsample():
    """The one fix: the document's forward read a module-level ``downsample``."""
    assert not hasattr(ref.document, "downsample")
    ds = nn.Sequential(nn.Conv2d(3, 5, 1, stride=2, bias=False), nn.BatchNorm2d(5))
    block = ref.ResidualBlock(3, 5, stride=[2, 1], downsample=ds)
    assert block(torch.rand(2, 3, 9, 9)).shape == (2, 5, 5, 5)
    assert int(block.bn.num_batches_tracked) == 2 and int(ds[1].num_batches_tracked) == 1


def test_reference_dense_block_keeps_the_documents_list_append():
    block = ref.Dense_Block(2, 3, 2, 2)
    given = [torch.rand(1, 3, 4, 4)]
    out = block(given)
    assert len(given) == 3 and out.shape == (1, 7, 4, 4)


@pytest.mark.parametrize("name", ["resnet", "densenet", "se"])
def test_reference_demos_give_the_documents_shapes(name):
    spec = ref.DOCUMENT_INPUTS[name]
    x = ref.document_input(name)
    assert tuple(x.shape) == spec["shape"]
    with torch.no_grad():
        assert tuple(spec["builder"]()(x).shape) == spec["output_shape"]


def test_reference_keys_are_the_documents():
    assert list(ref.SEAttention(512, 8).state_dict()) == ["fc.0.weight", "fc.2.weight"]
    assert list(ref.ResidualBlock(4, 4).state_dict())[:3] == ["conv1.weight", "conv2.weight", "bn.weight"]
    keys = list(ref.Dense_Block(2, 4, 2, 2).state_dict())
    assert keys[0] == "block.dense0.bn1.weight" and keys[-1] == "block.dense1.conv2.weight"
    assert isinstance(ref.resnet_demo()[1], nn.MaxPool2d)
    assert isinstance(ref.densenet_demo()[3], ref.Dense_Block)

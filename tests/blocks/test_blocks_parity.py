"""The document's blocks (ResidualBlock, DenseLayer, DenseBlock, SEAttention)
against the document's own torch modules (``skipblocks.reference``), at shapes,
channel counts and strides other than the demos': outputs in train and eval
mode and every state_dict entry after train-mode forwards.
"""

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks import reference as ref

from helpers import (as_dtype, assert_exact, assert_parity, assert_state_dict_parity,
                     load_from_torch, randn, randomize_, to_torch)

MODES = [True, True, False, True, False]   # train, train, eval, train, eval


def _run_modes(sm, tm, make_input, op, what, call=None):
    """Forward both modules through MODES; compare outputs and state_dicts at each step."""
    call = call or (lambda m, x, is_torch: m(x))
    for step, training in enumerate(MODES):
        tm.train(training)
        sm.train(training)
        x = make_input(step)
        with torch.no_grad():
            expected = call(tm, x, True)
        got = call(sm, x, False)
        label = "%s step %d (%s)" % (what, step, "train" if training else "eval")
        assert_parity(got, expected, op, what=label)
        assert_state_dict_parity(sm, tm, what=label)
    return sm, tm


# ---------------------------------------------------------------------------
# ResidualBlock
# ---------------------------------------------------------------------------

def _downsample(kind, cin, cout, stride):
    """(torch, skipblocks) downsample pair."""
    if kind is None:
        return None, None
    if kind == "conv_bn":   # the document's 1x1 conv + BatchNorm
        return (nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                              nn.BatchNorm2d(cout)),
                sb.Sequential(sb.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                              sb.BatchNorm2d(cout)))
    if kind == "callable":  # any callable, as the document allows: a strided slice (a view!)
        fn = lambda r: r[:, :, ::stride, ::stride]  # noqa: E731
        return fn, fn
    raise ValueError(kind)


# in, out, stride, downsample kind, input shape
RESIDUAL_CASES = [
    (4, 4, [1, 1], None, (2, 4, 7, 9)),
    (3, 6, [2, 1], "conv_bn", (1, 3, 9, 8)),
    (5, 5, [1, 1], "conv_bn", (2, 5, 6, 5)),
    (4, 8, [1, 2], "conv_bn", (2, 4, 7, 7)),          # stride[1] applies to conv2
    (6, 6, [2, 1], "callable", (2, 6, 9, 7)),
    (17, 17, (1, 1), None, (1, 17, 5, 6)),            # stride given as a tuple
    (8, 16, [2, 1], "conv_bn", (3, 8, 12, 12)),
]


@pytest.mark.parametrize("case", RESIDUAL_CASES,
                         ids=["%d-%d-s%s-%s" % (c[0], c[1], "".join(map(str, c[2])), c[3]) for c in RESIDUAL_CASES])
def test_residual_block_parity(case, rng, dtype):
    cin, cout, stride, kind, shape = case
    t_ds, s_ds = _downsample(kind, cin, cout, stride[0] * stride[1])
    tm, sm = as_dtype(randomize_(ref.ResidualBlock(cin, cout, stride=stride, downsample=t_ds)),
                      sb.ResidualBlock(cin, cout, stride=stride, downsample=s_ds), dtype)
    sm = load_from_torch(sm, tm)
    _run_modes(sm, tm, lambda step: randn(rng, *shape, scale=1.5, shift=0.2 * step, dtype=dtype),
               "residual_block", "ResidualBlock%s" % (case[:4],),
               call=lambda m, x, is_torch: m(to_torch(x) if is_torch else x))


def test_residual_block_updates_shared_bn_twice(rng, dtype):
    """One ``bn`` serves conv1 and conv2 (as in the document): num_batches_tracked += 2 per
    train-mode forward, += 0 in eval; the downsample's own BN counts once."""
    t_ds, s_ds = _downsample("conv_bn", 4, 8, 2)
    tm, sm = as_dtype(ref.ResidualBlock(4, 8, stride=[2, 1], downsample=t_ds),
                      sb.ResidualBlock(4, 8, stride=[2, 1], downsample=s_ds), dtype)
    sm = load_from_torch(sm, tm)
    x = randn(rng, 2, 4, 6, 6, dtype=dtype)
    for _ in range(3):
        sm(x)
    sd = sm.state_dict()
    assert int(sd["bn.num_batches_tracked"]) == 6
    assert int(sd["downsample.1.num_batches_tracked"]) == 3
    sm.eval()
    sm(x)
    assert int(sm.state_dict()["bn.num_batches_tracked"]) == 6
    with torch.no_grad():
        for _ in range(3):
            tm(to_torch(x))
    assert_state_dict_parity(sm, tm, what="after 3 train forwards, 1 eval")


# ---------------------------------------------------------------------------
# DenseLayer / DenseBlock
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("in_shapes,growthrate,bn_size", [
    ([(2, 6, 5, 5)], 3, 2),
    ([(2, 2, 5, 7), (2, 4, 5, 7)], 3, 2),
    ([(1, 3, 4, 4), (1, 5, 4, 4), (1, 1, 4, 4)], 5, 3),
    ([(3, 9, 3, 2)], 4, 1),
])
@pytest.mark.parametrize("container", [list, tuple])
def test_dense_layer_parity(in_shapes, growthrate, bn_size, container, rng, dtype):
    cin = sum(s[1] for s in in_shapes)
    tm, sm = as_dtype(randomize_(ref.Dense_Layer(cin, growthrate, bn_size)),
                      sb.DenseLayer(cin, growthrate, bn_size), dtype)
    sm = load_from_torch(sm, tm)

    def inputs(step):
        return [randn(rng, *s, shift=0.1 * step, dtype=dtype) for s in in_shapes]

    def call(m, xs, is_torch):
        return m(container(to_torch(x) for x in xs) if is_torch else container(xs))

    _run_modes(sm, tm, inputs, "dense_layer", "DenseLayer(%d, %d, %d)" % (cin, growthrate, bn_size),
               call=call)


# n_layers, in_channels, growthrate, bn_size, input channel split, (N, H, W)
DENSE_BLOCK_CASES = [
    (3, 5, 3, 2, None, (2, 6, 7)),
    (1, 4, 4, 1, None, (1, 5, 5)),
    (4, 7, 5, 3, (3, 4), (2, 4, 3)),       # input given as a list of two feature maps
    (2, 9, 8, 2, (2, 3, 4), (1, 3, 3)),
    (0, 6, 3, 2, None, (2, 3, 3)),          # no layers: the input comes back
]


DENSE_BLOCK_PARAMS = [(case, container) for case in DENSE_BLOCK_CASES
                      for container in ("array", "list", "tuple")
                      if not (container == "array" and case[4] is not None)]  # an array is one map


@pytest.mark.parametrize("case,container", DENSE_BLOCK_PARAMS,
                         ids=["L%d-C%d-k%d-bn%d-%s-%s" % (c[0], c[1], c[2], c[3], c[4], k) for c, k in DENSE_BLOCK_PARAMS])
def test_dense_block_parity(case, container, rng, dtype):
    n_layers, cin, growth, bn_size, split, (n, h, w) = case
    split = split or (cin,)
    tm, sm = as_dtype(randomize_(ref.Dense_Block(n_layers, cin, growth, bn_size)),
                      sb.DenseBlock(n_layers, cin, growth, bn_size), dtype)
    sm = load_from_torch(sm, tm)

    def inputs(step):
        return [randn(rng, n, c, h, w, shift=0.1 * step, dtype=dtype) for c in split]

    def call(m, xs, is_torch):
        if is_torch:
            # the document's Dense_Block appends to the list it is given: give it a fresh one
            return m(to_torch(xs[0]) if container == "array" else [to_torch(x) for x in xs])
        if container == "array":
            return m(xs[0])
        given = list(xs) if container == "list" else tuple(xs)
        snapshot = [x.copy() for x in given]
        out = m(given)
        assert len(given) == len(snapshot), "DenseBlock mutated the caller's %s" % container
        for a, b in zip(given, snapshot):
            assert np.array_equal(a, b), "DenseBlock modified an input feature map"
        # the output starts with the inputs, bit for bit
        assert_exact(out[:, :cin], np.concatenate(snapshot, axis=1), "DenseBlock input channels")
        return out

    _run_modes(sm, tm, inputs, "dense_block",
               "DenseBlock(%d, %d, %d, %d) %s input" % (n_layers, cin, growth, bn_size, container),
               call=call)
    assert sm(inputs(0)[0] if container == "array" else inputs(0)).shape == (
        n, cin + n_layers * growth, h, w)


def test_dense_aliases_are_the_same_classes():
    assert sb.Dense_Layer is sb.DenseLayer
    assert sb.Dense_Block is sb.DenseBlock


# ---------------------------------------------------------------------------
# SEAttention
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("channel,reduction,shape", [
    (16, 4, (3, 16, 5, 5)),
    (17, 4, (2, 17, 3, 4)),        # channel not divisible by reduction
    (6, 8, (2, 6, 3, 3)),          # channel < reduction: Linear(6, 0) -> gate sigmoid(0) = 0.5
    (512, 16, (2, 512, 3, 3)),     # the class defaults
    (64, 8, (1, 64, 1, 1)),
    (33, 1, (4, 33, 2, 5)),
])
def test_se_attention_parity(channel, reduction, shape, rng, dtype):
    tm, sm = as_dtype(ref.SEAttention(channel, reduction), sb.SEAttention(channel, reduction),
                      dtype)
    sm = load_from_torch(sm, tm)
    _run_modes(sm, tm, lambda step: randn(rng, *shape, scale=2.0, dtype=dtype),
               "se_attention", "SEAttention(%d, %d)" % (channel, reduction),
               call=lambda m, x, is_torch: m(to_torch(x) if is_torch else x))


def test_se_attention_defaults_match_document():
    sm = sb.SEAttention()
    sd = sm.state_dict()
    assert list(sd.keys()) == ["fc.0.weight", "fc.2.weight"]
    assert sd["fc.0.weight"].shape == (32, 512) and sd["fc.2.weight"].shape == (512, 32)


def test_se_attention_channel_below_reduction_gates_by_half(rng, dtype):
    sm = sb.SEAttention(6, 8, dtype=dtype)
    x = randn(rng, 2, 6, 3, 3, dtype=dtype)
    out = sm(x)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, x * x.dtype.type(0.5))

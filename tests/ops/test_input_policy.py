"""Input policy: what every layer and block accepts,
converts, rejects, and never does to its input.

* any real array-like is computed as ``np.asarray(x, np.float32)``: lists,
  float64/float16/int/bool arrays, torch CPU tensors -- bit-identical results
  (float64 input stays float64 in the layers without parameters, which follow
  the functional rule; the float64 modules are in module_api/test_dtype_api.py);
* complex, object and string inputs raise TypeError;
* bad shapes raise the exception type torch raises, naming the skipblocks layer
  and giving the shape;
* non-contiguous, Fortran-ordered, negatively strided, broadcast and read-only
  inputs give bit-identical results; inputs are never modified;
* NaN / inf propagate as in torch; N = 0 batches and unbatched (C, H, W)
  inputs behave as in torch; ``inplace=True`` writes into the given array.
"""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import skipblocks as sb
import skipblocks.functional as sbF
from skipblocks import reference as ref

from helpers import (assert_parity, assert_state_dict_parity, load_from_torch, randn,
                     to_torch)

# name -> (skipblocks factory, torch factory, input shape, tolerance op)
LAYERS = {
    "Conv2d": (lambda: sb.Conv2d(3, 5, 3, padding=1), lambda: nn.Conv2d(3, 5, 3, padding=1), (2, 3, 6, 7), "conv2d"),
    "BatchNorm2d": (lambda: sb.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (2, 3, 4, 5), "batch_norm"),
    "ReLU": (lambda: sb.ReLU(), lambda: nn.ReLU(), (2, 3, 4, 5), "relu"),
    "Sigmoid": (lambda: sb.Sigmoid(), lambda: nn.Sigmoid(), (2, 3, 4, 5), "sigmoid"),
    "MaxPool2d": (lambda: sb.MaxPool2d(3, 2, 1), lambda: nn.MaxPool2d(3, 2, 1), (2, 3, 7, 6), "max_pool2d"),
    "AdaptiveAvgPool2d": (lambda: sb.AdaptiveAvgPool2d((2, 3)), lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 5, 7), "adaptive_avg_pool2d"),
    "Linear": (lambda: sb.Linear(7, 4), lambda: nn.Linear(7, 4), (2, 3, 7), "linear"),
    "ResidualBlock": (lambda: sb.ResidualBlock(3, 3), lambda: ref.ResidualBlock(3, 3), (2, 3, 5, 6), "residual_block"),
    "DenseBlock": (lambda: sb.DenseBlock(2, 3, 2, 2), lambda: ref.Dense_Block(2, 3, 2, 2), (2, 3, 4, 5), "dense_block"),
    "SEAttention": (lambda: sb.SEAttention(8, 2), lambda: ref.SEAttention(8, 2), (2, 8, 3, 4), "se_attention"),
}
NAMES = list(LAYERS)


def make(name):
    """A skipblocks layer with deterministic weights (the same on every call)."""
    sb.manual_seed(0)
    return LAYERS[name][0]()


def make_pair(name):
    """(skipblocks layer, torch layer) with torch's weights loaded into skipblocks."""
    tm = LAYERS[name][1]()
    return load_from_torch(LAYERS[name][0](), tm), tm


def torch_call(tm, x):
    with torch.no_grad():
        return tm(x if isinstance(x, torch.Tensor) else to_torch(x))


# ---------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------

class _F32Subclass(np.ndarray):
    """An ndarray subclass (as memmap or user subclasses are)."""


def _convertible_inputs(rng, shape):
    ints = rng.integers(-3, 4, size=shape)
    f64 = rng.standard_normal(shape) * 2
    return {
        "float64": f64,
        "float16": f64.astype(np.float16),
        "int32": ints.astype(np.int32),
        "int64": ints.astype(np.int64),
        "uint8": np.abs(ints).astype(np.uint8),
        "int8": ints.astype(np.int8),
        "bool": ints > 0,
        "list_of_floats": f64.tolist(),
        "list_of_ints": ints.tolist(),
        "torch_tensor": torch.from_numpy(f64.astype(np.float32)),
        "torch_tensor_f64": torch.from_numpy(f64),
        "float32_memmap_like_subclass": np.asarray(f64, np.float32).view(_F32Subclass),
    }


@pytest.mark.parametrize("name", NAMES)
def test_real_inputs_are_converted_like_asarray_float32(name, rng):
    shape = LAYERS[name][2]
    for kind, x in _convertible_inputs(rng, shape).items():
        if name == "DenseBlock" and kind.startswith("list"):
            continue   # a list given to DenseBlock is a list of feature maps (tested in test_blocks_parity)
        # a layer without parameters follows its input's dtype, as torch.nn.functional:
        # float64 stays float64 (README, "dtypes"); the others are float32 modules
        wide = name in ("ReLU", "Sigmoid", "MaxPool2d", "AdaptiveAvgPool2d") \
            and kind in ("float64", "torch_tensor_f64")
        dtype = np.float64 if wide else np.float32
        as_f32 = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x, dtype)
        expected = make(name)(as_f32.copy())
        got = make(name)(x)
        assert isinstance(got, np.ndarray) and got.dtype == dtype, (kind, type(got))
        assert np.array_equal(got, expected, equal_nan=True), "%s: %s input differs from np.asarray(x, float32)" % (name, kind)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["complex64", "complex128", "object", "str", "bytes"])
def test_complex_object_string_inputs_raise_type_error(name, kind, rng):
    x = randn(rng, *LAYERS[name][2])
    if kind.startswith("complex"):
        bad = x.astype(kind)
    elif kind == "object":
        bad = x.astype(object)
    elif kind == "str":
        bad = x.astype(str)
    else:
        bad = x.astype("S8")
    with pytest.raises(TypeError):
        make(name)(bad)


@pytest.mark.parametrize("call", [
    lambda x: sbF.conv2d(x, np.ones((2, 3, 1, 1), np.float32)),
    lambda x: sbF.relu(x),
    lambda x: sbF.sigmoid(x),
    lambda x: sbF.max_pool2d(x, 2),
    lambda x: sbF.adaptive_avg_pool2d(x, 1),
    lambda x: sbF.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32)),
    lambda x: sbF.linear(x, np.ones((2, 4), np.float32)),
    lambda x: sb.cat([x, x], dim=1),
], ids=["conv2d", "relu", "sigmoid", "max_pool2d", "adaptive_avg_pool2d", "batch_norm", "linear", "cat"])
def test_functional_rejects_complex_and_strings(call, rng):
    x = randn(rng, 2, 3, 4, 4)
    for bad in (x.astype(np.complex64), x.astype(str), x.astype(object)):
        with pytest.raises(TypeError):
            call(bad)


def test_weights_of_other_dtypes_follow_torchs_dtype_rule_in_functional_calls(rng):
    """Functional calls follow torch: arguments that are not float32/float64
    arrays (lists, tuples, ints) take the call's floating dtype; float32 input
    with a float64 weight is torch's mismatch error; all float64 gives float64."""
    x = randn(rng, 1, 3, 5, 5)
    w = rng.standard_normal((4, 3, 3, 3))
    b = [0.5, -1, 2, 0]
    expected32 = sbF.conv2d(x, w.astype(np.float32), np.asarray(b, np.float32))
    assert np.array_equal(sbF.conv2d(x, w.astype(np.float32), b), expected32)
    assert np.array_equal(sbF.conv2d(x, w.astype(np.float32).tolist(), tuple(b)), expected32)
    expected64 = sbF.conv2d(x.astype(np.float64), w, np.asarray(b, np.float64))
    assert expected64.dtype == np.float64
    assert np.array_equal(sbF.conv2d(x.astype(np.float64), w.tolist(), tuple(b)), expected64)
    with pytest.raises(RuntimeError) as ours:
        sbF.conv2d(x, w, b)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                   torch.tensor(b, dtype=torch.float64))
    assert str(theirs.value) in str(ours.value)


# ---------------------------------------------------------------------------
# shape errors: torch's exception type, the skipblocks layer's name, the shape
# ---------------------------------------------------------------------------

def _numeric_groups(msg):
    """Bracketed or parenthesised runs of >= 2 integers in a message: '[1, 4, 5, 5]',
    '(2 x 5)', '(3x2x2)', 'torch.Size([1, 3, 1, 1])', '(2x5 and 4x3)' -> '2x5'..."""
    groups = []
    for g in re.findall(r"[\[\(]([\d\s,x]+)[\]\)]", msg):
        nums = re.findall(r"\d+", g)
        if len(nums) >= 2:
            groups.append(nums)
    for a, b in re.findall(r"(\d+x\d+) and (\d+x\d+)", msg):
        groups.append(a.split("x"))
    return groups


def _assert_error_like_torch(sb_call, torch_call_, layer_names, what):
    with pytest.raises(Exception) as t_info:
        torch_call_()
    t_exc = t_info.value
    with pytest.raises(Exception) as s_info:
        sb_call()
    s_exc = s_info.value
    assert type(s_exc) is type(t_exc) or isinstance(s_exc, type(t_exc)), (
        "%s: torch raises %s(%r), skipblocks raises %s(%r)"
        % (what, type(t_exc).__name__, str(t_exc), type(s_exc).__name__, str(s_exc)))
    msg = str(s_exc)
    assert re.search(r"\b(%s)\b" % "|".join(layer_names), msg), (
        "%s: message does not name the layer (%s): %r" % (what, "/".join(layer_names), msg))
    groups = _numeric_groups(str(t_exc))
    if groups:
        found = any(re.search(r"(?<!\d)" + r"\D+".join(g) + r"(?!\d)", msg) for g in groups)
        assert found, "%s: torch's message gives the shape(s) %s (%r); skipblocks' does not: %r" % (
            what, groups, str(t_exc), msg)
    return s_exc


BLOCK_LAYERS = ["ResidualBlock", "Conv2d", "BatchNorm2d"]
DENSE_LAYERS = ["DenseBlock", "DenseLayer", "Conv2d", "BatchNorm2d", "cat"]
SE_LAYERS = ["SEAttention", "Linear", "AdaptiveAvgPool2d"]

# (skipblocks ctor, torch ctor, bad input shape, names the message may use)
BAD_SHAPES = [
    (lambda: sb.Conv2d(3, 4, 3), lambda: nn.Conv2d(3, 4, 3), (1, 4, 5, 5), ["Conv2d"]),
    (lambda: sb.Conv2d(3, 4, 3), lambda: nn.Conv2d(3, 4, 3), (1, 3, 2, 5), ["Conv2d"]),
    (lambda: sb.Conv2d(3, 4, 3), lambda: nn.Conv2d(3, 4, 3), (3, 5), ["Conv2d"]),
    (lambda: sb.Conv2d(3, 4, 3), lambda: nn.Conv2d(3, 4, 3), (1, 1, 3, 5, 5), ["Conv2d"]),
    (lambda: sb.Conv2d(3, 4, 3), lambda: nn.Conv2d(3, 4, 3), (2, 3, 0, 5), ["Conv2d"]),
    (lambda: sb.Conv2d(3, 4, 3), lambda: nn.Conv2d(3, 4, 3), (2, 0, 5, 5), ["Conv2d"]),
    (lambda: sb.Conv2d(4, 6, 3, groups=2), lambda: nn.Conv2d(4, 6, 3, groups=2), (1, 3, 5, 5), ["Conv2d"]),
    (lambda: sb.Conv2d(3, 4, 3, dilation=2), lambda: nn.Conv2d(3, 4, 3, dilation=2), (1, 3, 4, 9), ["Conv2d"]),
    (lambda: sb.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (3, 4, 4), ["BatchNorm2d"]),
    (lambda: sb.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (2, 3), ["BatchNorm2d"]),
    (lambda: sb.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (1, 1, 3, 4, 4), ["BatchNorm2d"]),
    (lambda: sb.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (1, 4, 4, 4), ["BatchNorm2d"]),
    (lambda: sb.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (1, 3, 1, 1), ["BatchNorm2d"]),
    (lambda: sb.MaxPool2d(3, 2), lambda: nn.MaxPool2d(3, 2), (1, 3, 2, 2), ["MaxPool2d"]),
    (lambda: sb.MaxPool2d(3, 2), lambda: nn.MaxPool2d(3, 2), (4, 4), ["MaxPool2d"]),
    (lambda: sb.MaxPool2d(3, 2), lambda: nn.MaxPool2d(3, 2), (1, 0, 4, 4), ["MaxPool2d"]),
    (lambda: sb.MaxPool2d(3, padding=2), lambda: nn.MaxPool2d(3, padding=2), (1, 3, 6, 6), ["MaxPool2d"]),
    (lambda: sb.AdaptiveAvgPool2d(2), lambda: nn.AdaptiveAvgPool2d(2), (4, 4), ["AdaptiveAvgPool2d"]),
    (lambda: sb.AdaptiveAvgPool2d(2), lambda: nn.AdaptiveAvgPool2d(2), (1, 2, 0, 4), ["AdaptiveAvgPool2d"]),
    # with a None entry torch checks the rank in Python first and raises ValueError
    (lambda: sb.AdaptiveAvgPool2d((3, None)), lambda: nn.AdaptiveAvgPool2d((3, None)), (7, 5), ["AdaptiveAvgPool2d"]),
    (lambda: sb.Linear(4, 3), lambda: nn.Linear(4, 3), (2, 5), ["Linear"]),
    (lambda: sb.Linear(4, 3), lambda: nn.Linear(4, 3), (5,), ["Linear"]),
    (lambda: sb.Linear(4, 3), lambda: nn.Linear(4, 3), (), ["Linear"]),
    (lambda: sb.ResidualBlock(4, 4), lambda: ref.ResidualBlock(4, 4), (1, 3, 5, 5), BLOCK_LAYERS),
    (lambda: sb.ResidualBlock(4, 4), lambda: ref.ResidualBlock(4, 4), (4, 5, 5), BLOCK_LAYERS),
    (lambda: sb.ResidualBlock(4, 4), lambda: ref.ResidualBlock(4, 4), (1, 4, 1, 1), BLOCK_LAYERS),
    (lambda: sb.DenseBlock(2, 4, 2, 2), lambda: ref.Dense_Block(2, 4, 2, 2), (1, 3, 5, 5), DENSE_LAYERS),
    (lambda: sb.DenseBlock(2, 4, 2, 2), lambda: ref.Dense_Block(2, 4, 2, 2), (4, 5, 5), DENSE_LAYERS),
    (lambda: sb.SEAttention(16, 4), lambda: ref.SEAttention(16, 4), (16, 5, 5), SE_LAYERS),
    (lambda: sb.SEAttention(16, 4), lambda: ref.SEAttention(16, 4), (1, 15, 5, 5), SE_LAYERS),
]


@pytest.mark.parametrize("case", BAD_SHAPES, ids=["%s-%s" % (c[3][0], "x".join(map(str, c[2])) or "0d") for c in BAD_SHAPES])
def test_bad_shapes_raise_like_torch(case, rng):
    s_ctor, t_ctor, shape, names = case
    x = randn(rng, *shape) if shape else np.float32(1.5)
    exc = _assert_error_like_torch(lambda: s_ctor()(x), lambda: t_ctor()(to_torch(x)), names,
                                   "%s on %s" % (names[0], shape))
    if names == ["BatchNorm2d"] and shape == (1, 3, 1, 1):
        assert "Expected more than 1 value per channel when training" in str(exc)


@pytest.mark.parametrize("sb_call,torch_call_,names", [
    (lambda x: sbF.conv2d(x, np.ones((4, 3, 3, 3), np.float32)),
     lambda x: F.conv2d(x, torch.ones(4, 3, 3, 3)), ["conv2d"]),
    (lambda x: sbF.conv2d(x[:, :2], np.ones((4, 2, 3, 3), np.float32), np.ones(3, np.float32)),
     lambda x: F.conv2d(x[:, :2], torch.ones(4, 2, 3, 3), torch.ones(3)), ["conv2d"]),
    (lambda x: sbF.max_pool2d(x, 5), lambda x: F.max_pool2d(x, 5), ["max_pool2d"]),
    (lambda x: sbF.linear(x, np.ones((3, 5), np.float32)), lambda x: F.linear(x, torch.ones(3, 5)), ["linear"]),
    (lambda x: sbF.batch_norm(x[:1, :, :1, :1], np.zeros(4, np.float32), np.ones(4, np.float32), training=True),
     lambda x: F.batch_norm(x[:1, :, :1, :1], torch.zeros(4), torch.ones(4), training=True), ["batch_norm"]),
    (lambda x: sbF.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32)),
     lambda x: F.batch_norm(x, torch.zeros(3), torch.ones(3)), ["batch_norm"]),
    (lambda x: sbF.adaptive_avg_pool2d(x[0, 0], 2), lambda x: F.adaptive_avg_pool2d(x[0, 0], 2),
     ["adaptive_avg_pool2d"]),
    (lambda x: sb.cat([x, x[:, :, :2]], dim=1), lambda x: torch.cat([x, x[:, :, :2]], dim=1), ["cat"]),
    (lambda x: sb.cat([x, x[0]], dim=1), lambda x: torch.cat([x, x[0]], dim=1), ["cat"]),
    (lambda x: sb.cat([x], dim=4), lambda x: torch.cat([x], dim=4), ["cat"]),
    (lambda x: sb.cat([], dim=1), lambda x: torch.cat([], dim=1), ["cat"]),
], ids=["conv2d-channels", "conv2d-bias", "max_pool2d-small", "linear", "batch_norm-one-value",
        "batch_norm-channels", "adaptive-2d", "cat-sizes", "cat-ndim", "cat-dim", "cat-empty"])
def test_functional_bad_shapes_raise_like_torch(sb_call, torch_call_, names, rng):
    x = randn(rng, 2, 4, 4, 4)
    _assert_error_like_torch(lambda: sb_call(x), lambda: torch_call_(to_torch(x)), names, names[0])


# ---------------------------------------------------------------------------
# layouts, read-only inputs, inputs never modified
# ---------------------------------------------------------------------------

def _layouts(x):
    """The same values in other memory layouts."""
    nd = x.ndim
    rev = tuple(range(nd))[::-1]
    out = {
        "transposed_view": np.ascontiguousarray(x.transpose(rev)).transpose(rev),  # x.T-style
        "fortran": np.asfortranarray(x),
        "negative_strides": np.ascontiguousarray(x[..., ::-1])[..., ::-1],
        "sliced_with_steps": _embed_strided(x),
        "broadcast_stride0": np.broadcast_to(x[:1], x.shape) if x.shape[0] > 1 else x[:, ...],
        "read_only": _read_only(x),
    }
    if nd >= 2:
        out["channel_last_view"] = np.ascontiguousarray(np.moveaxis(x, 1, -1)).transpose(
            (0, nd - 1) + tuple(range(1, nd - 1)))
    return out


def _embed_strided(x):
    big = np.full(tuple(2 * s + 1 for s in x.shape), np.nan, np.float32)
    view = big[tuple(slice(1, None, 2) for _ in x.shape)]
    view[...] = x
    return view


def _read_only(x):
    y = x.copy()
    y.setflags(write=False)
    return y


@pytest.mark.parametrize("name", NAMES)
def test_layouts_give_identical_results_and_inputs_are_not_modified(name, rng):
    x = randn(rng, *LAYERS[name][2])
    expected = make(name)(x.copy())
    for kind, y in _layouts(x).items():
        if kind == "broadcast_stride0":
            expected_here = make(name)(np.ascontiguousarray(y))
        else:
            expected_here = expected
            assert np.array_equal(y, x)
        snapshot = np.array(y, copy=True)
        got = make(name)(y)
        assert np.array_equal(got, expected_here, equal_nan=True), "%s: %s input gives different results" % (name, kind)
        assert np.array_equal(y, snapshot), "%s modified its %s input" % (name, kind)
    # the contiguous float32 input itself, in train and in eval mode
    for training in (True, False):
        m = make(name).train(training)
        snapshot = x.copy()
        out = m(x)
        assert np.array_equal(x, snapshot), "%s (training=%s) modified its input" % (name, training)
        assert not np.shares_memory(out, x), "%s returned memory shared with its input" % name


def test_functional_layouts_and_inputs_not_modified(rng):
    x = randn(rng, 2, 3, 7, 6)
    w = randn(rng, 4, 3, 3, 3)
    rm, rv = randn(rng, 3), np.abs(randn(rng, 3)) + 0.5
    calls = {
        "conv2d": lambda a, w=w: sbF.conv2d(a, w, None, 2, 1),
        "conv2d_weight_view": lambda a: sbF.conv2d(a, np.asfortranarray(w)[:, :, ::-1, ::-1][:, :, ::-1, ::-1]),
        "batch_norm_eval": lambda a: sbF.batch_norm(a, rm, rv),
        "relu": lambda a: sbF.relu(a),
        "sigmoid": lambda a: sbF.sigmoid(a),
        "max_pool2d": lambda a: sbF.max_pool2d(a, 3, 2, 1, ceil_mode=True),
        "adaptive_avg_pool2d": lambda a: sbF.adaptive_avg_pool2d(a, (4, None)),
        "linear": lambda a: sbF.linear(a, w.reshape(4, -1)[:, :6], None),
        "cat": lambda a: sb.cat([a, a[:, :1]], dim=1),
    }
    for name, call in calls.items():
        expected = call(x.copy())
        for kind, y in _layouts(x).items():
            if kind == "broadcast_stride0":
                continue
            snapshot = np.array(y, copy=True)
            got = call(y)
            assert np.array_equal(got, expected, equal_nan=True), "%s: %s input differs" % (name, kind)
            assert np.array_equal(y, snapshot), "%s modified its %s input" % (name, kind)
    assert np.array_equal(rm, rm.copy()) and rm.flags.writeable


# ---------------------------------------------------------------------------
# NaN and inf, empty batches, unbatched inputs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_nan_and_inf_propagate_like_torch(name, training, rng):
    sm, tm = make_pair(name)
    sm.train(training)
    tm.train(training)
    x = randn(rng, *LAYERS[name][2])
    flat = x.reshape(-1)
    idx = rng.choice(flat.size, size=3, replace=False)
    flat[idx[0]] = np.nan
    flat[idx[1]] = np.inf
    flat[idx[2]] = -np.inf
    expected = torch_call(tm, x)
    got = sm(x)
    assert_parity(got, expected, LAYERS[name][3], what="%s with NaN/inf, training=%s" % (name, training))
    assert_state_dict_parity(sm, tm, what="%s with NaN/inf" % name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_empty_batch_like_torch(name, training):
    """N = 0: torch returns an empty output; BatchNorm in train mode still counts the
    batch (num_batches_tracked += 1) and leaves the running statistics unchanged."""
    sm, tm = make_pair(name)
    sm.train(training)
    tm.train(training)
    shape = (0,) + LAYERS[name][2][1:]
    x = np.zeros(shape, np.float32)
    expected = torch_call(tm, x)
    got = sm(x)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert got.shape == tuple(expected.shape), "%s: N=0 gives %s, torch %s" % (name, got.shape, tuple(expected.shape))
    assert_state_dict_parity(sm, tm, what="%s after an empty batch" % name)


def test_empty_spatial_batchnorm_like_torch():
    sm, tm = make_pair("BatchNorm2d")
    x = np.zeros((2, 3, 0, 4), np.float32)
    assert sm(x).shape == tuple(torch_call(tm, x).shape)
    assert_state_dict_parity(sm, tm, what="BatchNorm2d on H = 0")


@pytest.mark.parametrize("name", ["Conv2d", "ReLU", "Sigmoid", "MaxPool2d", "AdaptiveAvgPool2d"])
def test_unbatched_chw_inputs_like_torch(name, rng):
    sm, tm = make_pair(name)
    x = randn(rng, *LAYERS[name][2][1:])
    assert_parity(sm(x), torch_call(tm, x), LAYERS[name][3], what="%s unbatched %s" % (name, x.shape))


@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 3, 7), (2, 1, 3, 7), (1, 2, 1, 2, 7)])
def test_linear_leading_dims_like_torch(shape, rng):
    sm, tm = make_pair("Linear")
    x = randn(rng, *shape)
    assert_parity(sm(x), torch_call(tm, x), "linear", what="Linear on %s" % (shape,))


@pytest.mark.parametrize("shape", [(7,), (3, 7), (4, 9, 7), (1, 2, 3, 4, 5)])
def test_relu_sigmoid_any_shape_like_torch(shape, rng):
    x = randn(rng, *shape)
    assert_parity(sb.ReLU()(x), F.relu(to_torch(x)), "relu", what="ReLU %s" % (shape,))
    assert_parity(sb.Sigmoid()(x), torch.sigmoid(to_torch(x)), "sigmoid", what="Sigmoid %s" % (shape,))


# ---------------------------------------------------------------------------
# inplace=True writes into the given array; functional batch_norm updates in place
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("call", [lambda x: sb.ReLU(inplace=True)(x), lambda x: sb.ReLU(True)(x),
                                  lambda x: sbF.relu(x, inplace=True), lambda x: sbF.relu(x, True)],
                         ids=["module", "module-positional", "functional", "functional-positional"])
def test_inplace_relu_writes_into_the_given_array(call, rng):
    x = randn(rng, 2, 3, 5, 4)
    expected = F.relu(to_torch(x)).numpy()
    out = call(x)
    assert np.array_equal(x, expected), "inplace relu did not write into its input"
    assert np.array_equal(out, expected)
    assert np.shares_memory(out, x), "inplace relu should return the array it wrote into (torch returns its input)"
    # a writable strided view: only the viewed elements change, as in torch
    base = randn(rng, 4, 6)
    t_base = to_torch(base)
    t_base[:, ::2].relu_()
    call(base[:, ::2])
    assert np.array_equal(base, t_base.numpy()), "inplace relu on a strided view"


def test_inplace_relu_on_unwritable_inputs_is_correct_or_refused(rng):
    """The issue leaves it to the implementation (documented) whether a read-only,
    non-float32 or list input to inplace ReLU raises or returns a new array; either way
    the result must be right and a read-only input must stay unchanged."""
    x = randn(rng, 2, 3, 4)
    expected = np.maximum(x, 0)
    for y in (_read_only(x), x.astype(np.float64), x.tolist()):
        snapshot = np.array(y, copy=True)
        try:
            out = sb.ReLU(inplace=True)(y)
        except (ValueError, TypeError):
            continue
        assert np.array_equal(np.asarray(out, np.float32), expected)
        if isinstance(y, np.ndarray) and not y.flags.writeable:
            assert np.array_equal(y, snapshot)


def test_non_inplace_relu_returns_new_array(rng):
    x = randn(rng, 3, 4)
    out = sb.ReLU()(x)
    assert not np.shares_memory(out, x)
    out2 = sbF.relu(x)
    assert not np.shares_memory(out2, x)
    assert np.array_equal(x, x.copy()) and (x < 0).any()


def test_functional_batch_norm_updates_running_stats_in_place(rng):
    x = randn(rng, 3, 4, 5, 5, scale=2.0, shift=1.0)
    rm = randn(rng, 4, scale=0.1)
    rv = np.abs(randn(rng, 4)) + 0.5
    rm_id, rv_id = id(rm), id(rv)
    t_rm, t_rv = to_torch(rm), to_torch(rv)
    F.batch_norm(to_torch(x), t_rm, t_rv, training=True, momentum=0.25)
    sbF.batch_norm(x, rm, rv, training=True, momentum=0.25)
    assert id(rm) == rm_id and id(rv) == rv_id
    assert_parity(rm, t_rm, "running_stats", what="running_mean updated in place")
    assert_parity(rv, t_rv, "running_stats", what="running_var updated in place (unbiased)")

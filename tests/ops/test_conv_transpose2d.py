"""ConvTranspose2d and functional.conv_transpose2d against torch 2.13: parity
sweeps in float32 and float64 (strides 1-3, padding, output_padding,
dilation, groups, bias, kernels 1-4 incl. non-square, odd sizes, batch 1 and
3, unbatched, non-contiguous input, U-Net's kernel 2 stride 2 at realistic
channels), identical bits on 1 and 2 threads, forward's output_size, repr,
state_dict and init, the packed-weight cache, and torch's errors word for
word (computed from torch at test time)."""
import itertools

import numpy as np
import pytest
import torch

import skipblocks as sb
import skipblocks.functional as sbF
from helpers import assert_parity
from tolerances import tolerance

OP = "conv_transpose2d"


def _torch(x, w, b, stride, padding, output_padding, groups, dilation):
    return torch.nn.functional.conv_transpose2d(
        torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(w),
        None if b is None else torch.from_numpy(b), stride, padding, output_padding, groups,
        dilation)


# (n, cin, cout, h, w, kernel, stride, padding, output_padding, dilation, groups, bias)
SWEEP = [
    (1, 4, 6, 5, 7, (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1, True),
    (3, 4, 6, 5, 7, (3, 2), (2, 1), (1, 0), (1, 0), (1, 2), 2, True),
    (3, 3, 3, 6, 5, (4, 1), (3, 2), (2, 0), (2, 1), (1, 1), 1, False),
    (1, 6, 9, 3, 3, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 3, True),
    (1, 5, 2, 1, 1, (4, 4), (3, 3), (0, 0), (2, 2), (1, 1), 1, True),
    (3, 2, 4, 9, 4, (2, 4), (3, 2), (1, 2), (0, 1), (2, 1), 2, True),
    (1, 3, 5, 4, 6, (3, 3), (1, 1), (1, 1), (1, 0), (2, 1), 1, False),
    (3, 8, 8, 7, 7, (2, 2), (2, 2), (0, 0), (0, 0), (1, 1), 8, True),
    (1, 7, 3, 11, 13, (3, 4), (2, 3), (2, 1), (1, 2), (1, 1), 1, True),
    # U-Net's up-convolutions: kernel 2, stride 2, no padding
    (1, 128, 64, 16, 16, (2, 2), (2, 2), (0, 0), (0, 0), (1, 1), 1, True),
    (3, 64, 32, 13, 11, (2, 2), (2, 2), (0, 0), (0, 0), (1, 1), 1, True),
    (1, 256, 128, 8, 8, (2, 2), (2, 2), (0, 0), (0, 0), (1, 1), 1, False),
]


def _random_case(rng):
    g = int(rng.integers(1, 4))
    kernel = tuple(int(v) for v in rng.integers(1, 5, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(int(rng.integers(0, (dilation[i] * (kernel[i] - 1)) // 2 + 1))
                    for i in range(2))
    output_padding = tuple(int(rng.integers(0, max(stride[i], dilation[i]))) for i in range(2))
    return (int(rng.choice([1, 3])), g * int(rng.integers(1, 5)), g * int(rng.integers(1, 5)),
            int(rng.integers(1, 9)), int(rng.integers(1, 9)), kernel, stride, padding,
            output_padding, dilation, g, bool(rng.integers(0, 2)))


def _cases():
    rng = np.random.default_rng(1234)
    return SWEEP + [_random_case(rng) for _ in range(40)]


def _arrays(case, dtype, rng):
    n, cin, cout, h, w, k, *_rest = case
    g, bias = case[10], case[11]
    x = rng.standard_normal((n, cin, h, w)).astype(dtype)
    wt = (rng.standard_normal((cin, cout // g) + k) / np.sqrt(cin // g * k[0] * k[1])).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if bias else None
    return x, wt, b


@pytest.mark.parametrize("case", _cases())
def test_functional_parity(case, dtype, rng):
    x, w, b = _arrays(case, dtype, rng)
    stride, padding, output_padding, dilation, groups = case[6], case[7], case[8], case[9], case[10]
    ours = sbF.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)
    theirs = _torch(x, w, b, stride, padding, output_padding, groups, dilation)
    assert_parity(ours, theirs, OP, what=str(case))
    # unbatched: the first image as (C, H, W)
    ours1 = sbF.conv_transpose2d(x[0], w, b, stride, padding, output_padding, groups, dilation)
    assert_parity(ours1, theirs[0], OP, what=f"unbatched {case}")


@pytest.mark.parametrize("case", SWEEP)
def test_layer_parity_non_contiguous_input_unchanged(case, dtype, rng):
    n, cin, cout, h, w, k, stride, padding, output_padding, dilation, groups, bias = case
    t = torch.nn.ConvTranspose2d(cin, cout, k, stride, padding, output_padding, groups, bias,
                                 dilation).to(getattr(torch, dtype))
    m = sb.ConvTranspose2d(cin, cout, k, stride, padding, output_padding, groups, bias,
                           dilation, dtype=dtype)
    m.load_state_dict(t.state_dict())
    # a transposed view: not C-contiguous
    x = np.ascontiguousarray(rng.standard_normal((n, cin, w, h)).astype(dtype)).transpose(0, 1, 3, 2)
    before = x.copy()
    ours = m(x)
    with torch.no_grad():
        theirs = t(torch.from_numpy(np.ascontiguousarray(x)))
    assert_parity(ours, theirs, OP, what=str(case))
    assert np.array_equal(x, before)


def test_tolerance_calibration():
    """The table's bound against the worst error measured over the sweep
    (float32: 1.2e-7, float64: 1.1e-15 at torch 2.13): within 10x of it."""
    rng = np.random.default_rng(7)
    for dtype in ("float32", "float64"):
        worst = 0.0
        for case in _cases():
            x, w, b = _arrays(case, dtype, rng)
            args = case[6], case[7], case[8], case[10], case[9]
            ours = sbF.conv_transpose2d(x, w, b, *args[:3], args[3], args[4])
            theirs = _torch(x, w, b, *args).numpy()
            worst = max(worst, float(np.abs(ours - theirs).max() / max(1.0, np.abs(theirs).max())))
        assert worst <= tolerance(OP, dtype=dtype) <= 10 * max(worst, np.finfo(dtype).eps)


@pytest.mark.parametrize("case", [SWEEP[1], SWEEP[9], SWEEP[10], SWEEP[8]])
def test_threads_identical_bits(case, dtype, rng, restore_threads):
    x, w, b = _arrays(case, dtype, rng)
    args = (case[6], case[7], case[8], case[10], case[9])
    results = []
    for threads in (1, 2):
        sb.set_num_threads(threads)
        results.append(sbF.conv_transpose2d(x, w, b, *args))
    assert np.array_equal(results[0], results[1])


def test_output_size_forms(dtype, rng):
    t = torch.nn.ConvTranspose2d(4, 2, 3, 2).to(getattr(torch, dtype))
    m = sb.ConvTranspose2d(4, 2, 3, 2, dtype=dtype)
    m.load_state_dict(t.state_dict())
    x = rng.standard_normal((2, 4, 5, 5)).astype(dtype)
    for size in [(11, 11), (12, 11), [11, 12], (2, 2, 12, 12), (9, 1, 12, 11)]:
        with torch.no_grad():
            theirs = t(torch.from_numpy(x), output_size=size)
        assert_parity(m(x, output_size=size), theirs, OP, what=str(size))
    with torch.no_grad():
        theirs = t(torch.from_numpy(x[0]), output_size=(2, 12, 12))
    assert_parity(m(x[0], output_size=(2, 12, 12)), theirs, OP, what="unbatched")


def _outcome(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 -- the exception is what is compared
        return e
    return None


def _same_error(ours_call, torch_call, layer):
    theirs, ours = _outcome(torch_call), _outcome(ours_call)
    assert theirs is not None, "torch does not raise"
    assert ours is not None, f"skipblocks does not raise; torch: {theirs}"
    message = str(theirs).split("\n")[0]
    assert type(ours) is type(theirs) and str(ours) == f"{layer}: {message}", (
        f"\n  skipblocks: {type(ours).__name__}: {ours}\n  torch:      {type(theirs).__name__}: "
        f"{message}")


@pytest.mark.parametrize("size", [(13, 12), (10, 11), (1, 2, 3), (9, 1, 2, 12, 11)])
def test_output_size_errors(size):
    t = torch.nn.ConvTranspose2d(4, 2, 3, 2)
    m = sb.ConvTranspose2d(4, 2, 3, 2)
    x = np.zeros((1, 4, 5, 5), np.float32)
    _same_error(lambda: m(x, output_size=size),
                lambda: t(torch.from_numpy(x), output_size=size), "ConvTranspose2d")


def _t(a):
    return torch.from_numpy(np.array(a, copy=True))


F32, F64 = np.float32, np.float64
X1 = np.ones((1, 4, 5, 5), F32)        # torch's slow path (batch 1, 3x3)
X2 = np.ones((2, 4, 5, 5), F32)        # float32: oneDNN
W = np.ones((4, 3, 3, 3), F32)

# (id, x, weight, bias, kwargs): run through the functional of both libraries
ERRORS = [
    ("input 2-D", np.ones((4, 5), F32), W, None, {}),
    ("input 5-D", np.ones((1, 1, 4, 5, 5), F32), W, None, {}),
    ("groups 0", X1, W, None, {"groups": 0}),
    ("weight 2-D", X1, np.ones((4, 3), F32), None, {}),
    ("weight 3-D", X1, np.ones((4, 3, 3), F32), None, {}),
    ("weight 5-D", X1, np.ones((4, 3, 3, 3, 1), F32), None, {}),
    ("padding negative", X1, W, None, {"padding": -1, "output_padding": -1}),
    ("output_padding negative", X1, W, None, {"output_padding": -1, "stride": 0}),
    ("stride 0", X1, W, None, {"stride": 0, "dilation": -1}),
    ("dilation negative", X1, W, None, {"dilation": -1, "groups": 3}),
    ("groups divide", X1, W, None, {"groups": 3}),
    ("groups > weight dim 0", X1, W, None, {"groups": 8}),
    ("weight dim 0 empty", np.ones((1, 0, 5, 5), F32), np.ones((0, 3, 3, 3), F32), None,
     {"groups": 2}),
    ("channels", np.ones((2, 5, 5, 5), F32), W, None, {}),
    ("channels unbatched", np.ones((3, 5, 5), F32), W, None, {}),
    ("bias size", X1, W, np.ones(4, F32), {}),
    ("bias 2-D", X1, W, np.ones((3, 1), F32), {}),
    ("bias groups", X1, W, np.ones(3, F32), {"groups": 2}),
    ("empty plane", np.ones((1, 4, 0, 5), F32), W, None, {"output_padding": 3}),
    ("empty batch negative size", np.ones((0, 4, 1, 1), F32), W, None, {"padding": 3}),
    ("output_padding >= stride", X1, W, None, {"stride": 2, "output_padding": 2}),
    ("output_padding >= stride oneDNN", X2, W, None, {"stride": 2, "output_padding": (0, 2)}),
    ("kernel 0", X1, np.ones((4, 3, 0, 3), F32), None, {}),
    ("dilation 0", X1, W, None, {"dilation": (1, 0)}),
    ("weight empty", X1, np.ones((4, 0, 3, 3), F32), None, {}),
    ("output too small", np.ones((1, 4, 1, 1), F32), W, None, {"padding": 2}),
    ("output too small one axis", X1, W, None, {"padding": (4, 0)}),
    ("weight dtype", X1, W.astype(F64), None, {}),
    ("weight dtype oneDNN", X2, W.astype(F64), None, {}),
    ("weight dtype oneDNN before shapes", X2, np.ones((4, 3, 0, 3), F64), None, {}),
    ("bias dtype oneDNN", X2, W, np.ones(3, F64), {"padding": 5}),
    ("weight dtype float64", X1.astype(F64), W, None, {}),
    ("kernel 0 float64 batch 2", X2.astype(F64), np.ones((4, 3, 0, 3), F64), None, {}),
]


@pytest.mark.parametrize("row", ERRORS, ids=[r[0] for r in ERRORS])
def test_error_wording_functional(row):
    _, x, w, b, kw = row
    _same_error(lambda: sbF.conv_transpose2d(x, w, b, **kw),
                lambda: torch.nn.functional.conv_transpose2d(
                    _t(x), _t(w), None if b is None else _t(b), **kw), "conv_transpose2d")


def test_error_wording_layer():
    t = torch.nn.ConvTranspose2d(4, 3, 3)
    m = sb.ConvTranspose2d(4, 3, 3)
    for x in (np.ones((1, 5, 5, 5), F32), np.ones((5, 5), F32), np.ones((1, 4, 0, 2), F32)):
        _same_error(lambda: m(x), lambda: t(_t(x)), "ConvTranspose2d")


# where torch 2.13's float32 oneDNN path fails with oneDNN's own words, the
# slow path's (float64's) message
ONEDNN_ROWS = [
    ("kernel 0", np.ones((4, 3, 0, 3), F32), {}),
    ("dilation 0", W, {"dilation": 0}),
    ("weight empty", np.ones((4, 0, 3, 3), F32), {}),
    ("output too small", W, {"padding": 4}),
]


@pytest.mark.parametrize("row", ONEDNN_ROWS, ids=[r[0] for r in ONEDNN_ROWS])
def test_onednn_failures_give_the_slow_paths_message(row):
    _, w, kw = row
    ours = _outcome(lambda: sbF.conv_transpose2d(X2, w, **kw))
    theirs32 = _outcome(lambda: torch.nn.functional.conv_transpose2d(_t(X2), _t(w), **kw))
    theirs64 = _outcome(lambda: torch.nn.functional.conv_transpose2d(
        _t(X2.astype(F64)), _t(w.astype(F64)), **kw))
    assert theirs32 is not None and theirs64 is not None
    assert type(ours) is type(theirs64)
    assert str(ours) == "conv_transpose2d: " + str(theirs64).split("\n")[0]


def test_bias_of_the_other_dtype_where_torch_accepts_it(rng):
    x = rng.standard_normal((1, 4, 5, 5)).astype(F32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(F32)
    b = rng.standard_normal(3)
    ours = sbF.conv_transpose2d(x, w, b)
    theirs = torch.nn.functional.conv_transpose2d(_t(x), _t(w), _t(b))
    assert ours.dtype == np.float32
    assert_parity(ours, theirs, OP)
    # torch's rule: the float32 sums, then the bias added in double and rounded once
    sums = sbF.conv_transpose2d(x, w).astype(F64)
    assert np.array_equal(ours, (sums + b[:, None, None]).astype(F32))
    ours64 = sbF.conv_transpose2d(x.astype(F64), w.astype(F64), b.astype(F32))
    theirs64 = torch.nn.functional.conv_transpose2d(_t(x.astype(F64)), _t(w.astype(F64)),
                                                    _t(b.astype(F32)))
    assert ours64.dtype == np.float64
    assert_parity(ours64, theirs64, OP)


def test_empty_batch(dtype):
    x = np.zeros((0, 4, 5, 5), dtype)
    w = np.ones((4, 3, 3, 3), dtype)
    theirs = torch.nn.functional.conv_transpose2d(_t(x), _t(w), output_padding=1)
    ours = sbF.conv_transpose2d(x, w, output_padding=1)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == np.dtype(dtype)


def test_repr_attributes_state_dict():
    for args, kwargs in [((4, 2, 2, 2), {}),
                         ((4, 2, (2, 3), 2), dict(padding=1, output_padding=1, groups=2,
                                                  bias=False, dilation=2)),
                         ((3, 6, 3), dict(stride=(1, 2), output_padding=(0, 1)))]:
        t = torch.nn.ConvTranspose2d(*args, **kwargs)
        m = sb.ConvTranspose2d(*args, **kwargs)
        assert repr(m) == repr(t)
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "output_padding", "dilation", "groups", "transposed", "padding_mode"):
            assert getattr(m, name) == getattr(t, name), name
        assert list(m.state_dict()) == list(t.state_dict())
        for key, value in t.state_dict().items():
            assert m.state_dict()[key].shape == tuple(value.shape)
        m.load_state_dict(t.state_dict())
        for key, value in t.state_dict().items():
            assert np.array_equal(m.state_dict()[key], value.numpy())


def test_default_init_bound():
    sb.manual_seed(0)
    m = sb.ConvTranspose2d(8, 6, (3, 2), groups=2)
    bound = 1.0 / np.sqrt(3 * 3 * 2)   # torch's fan_in: weight.shape[1] * kH * kW
    for p in (m.weight, m.bias):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.8 * bound
    assert sb.ConvTranspose2d(2, 2, 2, dtype="float64").weight.dtype == np.float64


@pytest.mark.parametrize("kwargs", [dict(padding_mode="reflect"), dict(padding_mode="foo"),
                                    dict(groups=3), dict(groups=0), dict(out_channels=3,
                                                                         groups=2)])
def test_constructor_errors(kwargs):
    kw = dict(in_channels=4, out_channels=2, kernel_size=3)
    kw.update(kwargs)
    _same_error(lambda: sb.ConvTranspose2d(**kw), lambda: torch.nn.ConvTranspose2d(**kw),
                "ConvTranspose2d")


def test_packed_cache_rebuilt_after_weight_change(rng):
    t = torch.nn.ConvTranspose2d(4, 3, 2, 2)
    m = sb.ConvTranspose2d(4, 3, 2, 2)
    m.load_state_dict(t.state_dict())
    x = rng.standard_normal((2, 4, 6, 6)).astype(F32)
    first = m(x)
    packed = m._packed_weights()
    assert m._packed_weights() is packed   # cached
    with torch.no_grad():
        t.weight.mul_(-2.0)
        t.bias.add_(1.0)
    m.load_state_dict(t.state_dict())  # copied into the parameters: bumps the version
    second = m(x)
    assert m._packed_weights() is not packed
    with torch.no_grad():
        assert_parity(second, t(torch.from_numpy(x)), OP)
    assert not np.array_equal(first, second)
    m.weight = t.weight.detach().numpy() * 0.5  # reassigned
    with torch.no_grad():
        t.weight.mul_(0.5)
        assert_parity(m(x), t(torch.from_numpy(x)), OP)


def test_exported():
    assert "ConvTranspose2d" in sb.__all__ and "conv_transpose2d" in sbF.__all__


def test_output_of_size_zero_follows_torch_per_dtype(dtype):
    """An output of size exactly 0: torch's float32 (oneDNN) path returns an
    empty array, its float64 (slow) path refuses it; skipblocks does each."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 1, 3)).astype(dtype)
    w = rng.standard_normal((3, 2, 2, 5)).astype(dtype)
    kwargs = dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 1), dilation=(1, 3))
    try:
        expected = torch.nn.functional.conv_transpose2d(torch.from_numpy(x),
                                                        torch.from_numpy(w), **kwargs)
    except RuntimeError as exc:
        with pytest.raises(RuntimeError) as ours:
            sb.functional.conv_transpose2d(x, w, **kwargs)
        assert str(ours.value) == "conv_transpose2d: " + str(exc)
    else:
        got = sb.functional.conv_transpose2d(x, w, **kwargs)
        assert got.shape == tuple(expected.shape) == (2, 2, 0, 20) and got.dtype == dtype

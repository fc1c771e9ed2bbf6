"""functional.pad against torch.nn.functional.pad (mode='constant'): exact
results (it is a copy; tests/tolerances.py "pad" is 0.0) over sweeps of
ranks 1-5, negative, mixed and zero pads, pads on more than the last two
dims, zero-size results, fill values (inf and NaN included), both dtypes and
non-contiguous inputs; torch's errors, type and wording, computed from torch
at test time; the other modes' NotImplementedError; inputs unchanged."""
import itertools

import numpy as np
import pytest
import torch

import skipblocks as sb
import skipblocks.functional as F
from tests.tolerances import tolerance

TF = torch.nn.functional


def _torch_pad(x, pad, mode="constant", value=None):
    return TF.pad(torch.from_numpy(np.array(x)), pad, mode, value).numpy()


def _same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a, b, equal_nan=True)
    # -0.0 and NaN are copied as they are
    assert np.array_equal(np.signbit(a), np.signbit(b))


def _check(x, pad, value=None):
    before = x.copy()
    got = F.pad(x, pad, value=value)
    _same(got, _torch_pad(x, pad, value=value))
    assert tolerance("pad", dtype=x.dtype) == 0.0
    assert np.array_equal(x, before, equal_nan=True)  # the input is never modified
    return got


def _input(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[::7] = np.nan
    flat[3::11] = -0.0
    flat[5::13] = np.inf
    return x


@pytest.mark.parametrize("ndim", [1, 2, 3, 4, 5])
def test_pad_sweep_matches_torch(ndim, dtype):
    rng = np.random.default_rng(ndim)
    for trial in range(60):
        shape = tuple(int(v) for v in rng.integers(0, 5, ndim))
        x = _input(shape, dtype, rng)
        npairs = int(rng.integers(0, ndim + 1))
        pad = []
        for k in range(npairs):
            size = shape[ndim - 1 - k]
            lo = int(rng.integers(-size, 4))
            hi = int(rng.integers(-(size + min(lo, 0)), 4))
            pad += [lo, hi]
        value = [None, 0.0, -1.5, 7, float("inf"), -float("inf"), float("nan")][trial % 7]
        _check(x, pad, value)


def test_pad_negative_mixed_and_leading_dims(dtype):
    rng = np.random.default_rng(0)
    x = _input((2, 3, 4, 5, 6), dtype, rng)
    for pad in ([1, -2], [-1, -1, 2, 0], [0, 0, 0, 0, 1, 1], [-2, 3, 1, -1, -1, 2, 1, 0],
                [0, 0, 0, 0, 0, 0, 0, 0, -1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                [-6, 0], [0, -6, 1, 1], [-3, -3], [0, 0], [], [-1, 0, 0, 0, 0, 0, 0, 0, 0, -2]):
        _check(x, pad, 2.5)


def test_pad_zero_size_and_0d(dtype):
    _check(np.zeros((2, 0), dtype), [1, 1])
    _check(np.zeros((0, 3), dtype), [0, 0, 2, 1], 4.0)
    _check(np.zeros((2, 3, 4), dtype), [-4, 0, 1, 0], 1.0)   # a zero-size result
    _check(np.zeros((2, 3), dtype), [0, 0, -2, 0])
    _check(np.array(3.0, dtype), [])                          # 0-d: a copy
    got = F.pad(np.array(3.0, dtype), [])
    assert got.shape == () and got == 3.0


def test_pad_unet_skip(dtype):
    """U-Net's pad of an upsampled map to its skip's size (dX, dY in 0, 1)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 15, 17)).astype(dtype)
    for dx, dy in itertools.product((0, 1), repeat=2):
        _check(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])


def test_pad_non_contiguous_and_other_inputs(dtype):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((6, 5, 8)).astype(dtype)
    for x in (base[:, ::2], base.transpose(2, 0, 1), np.asfortranarray(base), base[..., 1:]):
        got = F.pad(x, [1, 2, -1, 1])
        _same(got, _torch_pad(np.ascontiguousarray(x), [1, 2, -1, 1]))
    # a torch tensor, a list and an integer array take skipblocks' dtype rule
    t = torch.from_numpy(base)
    _same(F.pad(t, [1, 1]), _torch_pad(base, [1, 1]))
    assert F.pad([[1, 2]], [1, 0]).dtype == np.float32
    ints = np.arange(6).reshape(2, 3)
    _same(F.pad(ints, [1, 1], value=2), _torch_pad(ints.astype(np.float32), [1, 1], value=2))


def test_pad_value_is_cast_to_the_dtype(dtype):
    x = np.zeros((2, 2), dtype)
    got = F.pad(x, [1, 0], value=0.1)
    assert got.dtype == np.dtype(dtype) and got[0, 0] == np.asarray(0.1, dtype)
    _check(x, [1, 0], 0.1)
    _check(x, [1, 0], np.float32(2.5))
    _check(x, [1, 0], True)
    _check(x, [np.int64(1), 0], 3)
    _check(x, [1, 0], 3.4028234663852886e38)   # FLT_MAX fits float32
    _check(x, [-1, 0], 1e300)                  # no positive pad: the value is not written


def _errors(call_sb, call_torch):
    with pytest.raises(Exception) as want:
        call_torch()
    with pytest.raises(Exception) as got:
        call_sb()
    assert type(got.value) is type(want.value)
    assert str(got.value) == f"pad: {want.value}"


@pytest.mark.parametrize("args, kwargs", [
    (([1],), {}),
    (([1, 1, 1],), {"mode": "reflect"}),
    (([1] * 8,), {}),
    (([1, 1],), {"mode": "foo"}),
    (([1, 1, 1],), {"mode": "foo"}),
    (([1, 1],), {"mode": "reflect", "value": 1.0}),
    (([1, 1],), {"mode": "circular", "value": float("nan")}),
    (([-5, 0],), {}),
    (([-2, -3],), {}),
    (([1, -9],), {}),
    (([-9, 1],), {}),
    (([-1, -2, 2, -9],), {}),
    (([2**62, 2**62],), {}),
    (([1, 1],), {"value": 1e39}),
    (([1, 1],), {"value": -3.4028236e38}),
    (((1.5, 1),), {}),
    (((True, 1),), {}),
    ((5,), {}),
    ((np.array([1, 1]),), {}),
    ((torch.tensor([1, 1]),), {}),
    (([1, 1],), {"mode": None}),
    (([1, 1],), {"value": "a"}),
    (([1, 1],), {"value": 2 + 0j}),
])
def test_pad_errors_match_torch(args, kwargs, dtype):
    x = np.zeros((2, 3, 4), dtype)
    if dtype == "float64" and kwargs.get("value") in (1e39, -3.4028236e38):
        # float64 holds these: no error on either side
        _same(F.pad(x, *args, **kwargs), _torch_pad(x, *args, **kwargs))
        return
    _errors(lambda: F.pad(x, *args, **kwargs),
            lambda: TF.pad(torch.from_numpy(x), *args, **kwargs))


def test_pad_0d_too_long():
    _errors(lambda: F.pad(np.array(1.0), [1, 1]), lambda: TF.pad(torch.tensor(1.0), [1, 1]))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("value", [None, 0.0, -0.0])
def test_pad_other_modes_not_implemented(mode, value):
    """torch's argument checks pass (a value of 0 is accepted, as torch 2.13
    accepts it), then skipblocks has no kernel."""
    x = np.zeros((1, 2, 4, 4), np.float32)
    TF.pad(torch.from_numpy(x), [1, 1, 1, 1], mode, value)   # torch accepts the call
    with pytest.raises(NotImplementedError, match=f"pad: padding mode '{mode}' is not "
                                                  "supported by skipblocks"):
        F.pad(x, [1, 1, 1, 1], mode, value)


def test_pad_exported():
    assert "pad" in F.__all__ and F.pad is sb.functional.pad

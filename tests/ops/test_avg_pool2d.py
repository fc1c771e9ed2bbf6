"""avg_pool2d / AvgPool2d against torch: parity sweeps (bit-exact), errors
computed from torch at test time, input unchanged, repr and state."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import skipblocks as sb
from tolerances import tolerance

CONFIGS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True,
         count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
    dict(kernel_size=(2, 4), stride=(3, 1), padding=(1, 2), ceil_mode=True,
         divisor_override=-5),
    dict(kernel_size=5, stride=3, padding=2, ceil_mode=True),
]
# (2, 3, 20, 45): rows long enough for the kernel's vectorised interior runs
SHAPES = [(1, 1, 7, 7), (2, 3, 9, 11), (3, 5, 6, 13), (4, 8, 8), (0, 3, 8, 8), (2, 3, 20, 45)]


def assert_same_bits(got, expected):
    """Equal values and equal signs of zero (assert_array_equal counts -0.0
    equal to +0.0); NaN where torch has NaN, of any sign."""
    np.testing.assert_array_equal(got, expected)
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(np.signbit(got)[~nan], np.signbit(expected)[~nan])


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_exact(config, shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    before = x.copy()
    expected = F.avg_pool2d(torch.from_numpy(x), **config).numpy()
    got = sb.functional.avg_pool2d(x, **config)
    assert got.dtype == x.dtype and got.shape == expected.shape
    assert tolerance("avg_pool2d", dtype=dtype) == 0.0
    assert_same_bits(got, expected)
    np.testing.assert_array_equal(x, before)
    layer = sb.AvgPool2d(**config)
    np.testing.assert_array_equal(layer(x), torch.nn.AvgPool2d(**config)(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("values, kwargs", [
    ("zeros", dict(kernel_size=2, divisor_override=-1)),     # 0 / -1 = -0.0
    ("zeros", dict(kernel_size=3, stride=1, padding=1, divisor_override=-3)),
    ("denormal", dict(kernel_size=2)),      # one -tiny per window: -tiny / 4 underflows to -0.0
    ("denormal", dict(kernel_size=3, stride=3)),
])
def test_negative_zero_quotient_comes_out_positive(values, kwargs, dtype):
    """torch adds each quotient to its zero-filled output: 0 + -0.0 = +0.0."""
    x = np.zeros((1, 2, 6, 20), dtype=dtype)
    if values == "denormal":
        x[:, :, ::6, ::6] = -np.finfo(dtype).smallest_subnormal
    expected = F.avg_pool2d(torch.from_numpy(x), **kwargs).numpy()
    assert not np.signbit(expected).any()
    assert_same_bits(sb.functional.avg_pool2d(x, **kwargs), expected)


def test_ceil_window_past_padding_not_counted(dtype):
    # ceil_mode adds a window that runs past the padded input: torch divides by
    # the part inside the padded input, even with count_include_pad
    x = np.ones((1, 1, 5, 5), dtype)
    got = sb.functional.avg_pool2d(x, 2, 2, 0, ceil_mode=True)
    np.testing.assert_array_equal(got, F.avg_pool2d(torch.from_numpy(x), 2, 2, 0,
                                                    ceil_mode=True).numpy())
    assert got[0, 0, -1, -1] == 1.0


def test_non_contiguous_and_threads(dtype, rng, restore_threads):
    base = rng.standard_normal((3, 16, 40, 41)).astype(dtype)
    views = [base[:, ::2], base.transpose(0, 1, 3, 2), np.asfortranarray(base)]
    for x in views:
        expected = F.avg_pool2d(torch.from_numpy(np.ascontiguousarray(x)), 3, 2, 1).numpy()
        sb.set_num_threads(1)
        one = sb.functional.avg_pool2d(x, 3, 2, 1)
        sb.set_num_threads(2)
        two = sb.functional.avg_pool2d(x, 3, 2, 1)
        np.testing.assert_array_equal(one, expected)
        np.testing.assert_array_equal(two, one)


ERRORS = [
    ((5, 5), dict(kernel_size=2)),
    ((5,), dict(kernel_size=2)),
    ((), dict(kernel_size=2)),
    ((1, 1, 1, 5, 5), dict(kernel_size=2)),
    ((1, 0, 5, 5), dict(kernel_size=2)),
    ((1, 2, 5, 0), dict(kernel_size=2)),
    ((2, 0, 5), dict(kernel_size=2)),
    ((1, 2, 5, 5), dict(kernel_size=2, divisor_override=0)),
    ((5, 5), dict(kernel_size=2, divisor_override=0)),
    ((1, 2, 5, 5), dict(kernel_size=2, stride=0)),
    ((1, 2, 5, 5), dict(kernel_size=2, padding=2)),
    ((1, 2, 5, 5), dict(kernel_size=2, padding=-1)),
    ((1, 2, 5, 5), dict(kernel_size=7)),
    ((1, 2, 5, 5), dict(kernel_size=0)),
    ((1, 2, 5, 5), dict(kernel_size=(0, 3), stride=1)),
    ((1, 2, 5, 5), dict(kernel_size=-1)),
    ((1, 2, 5, 5), dict(kernel_size=2, stride=-1)),
    ((1, 2, 5, 5), dict(kernel_size=(2, 2, 2))),
    ((1, 2, 5, 5), dict(kernel_size=(1, 3), padding=(1, 2))),
    ((1, 2, 5, 5), dict(kernel_size=(3, 3), stride=(1, 0), padding=(2, 2))),
    ((1, 2, 5, 5), dict(kernel_size=2 ** 31)),
    ((1, 1, 1, 5, 5), dict(kernel_size=2, stride=0)),
    ((1, 2, 5, 5), dict(kernel_size=(3, 1), padding=(1, 1))),
    ((1, 2, 5, 5), dict(kernel_size=3, divisor_override=1.5)),
]


@pytest.mark.parametrize("shape,config", ERRORS)
def test_errors_match_torch(shape, config):
    x = np.zeros(shape, np.float32)
    with pytest.raises(Exception) as want:
        F.avg_pool2d(torch.from_numpy(x), **config)
    for call, name in ((lambda: sb.functional.avg_pool2d(x, **config), "avg_pool2d"),
                       (lambda: sb.AvgPool2d(**config)(x), "AvgPool2d")):
        with pytest.raises(type(want.value)) as got:
            call()
        assert str(got.value) == f"{name}: {want.value}"


@pytest.mark.parametrize("config", CONFIGS + [dict(kernel_size=(2, 3), stride=1,
                                                   padding=(1, 0))])
def test_repr_attributes_state(config):
    ours, theirs = sb.AvgPool2d(**config), torch.nn.AvgPool2d(**config)
    assert repr(ours) == repr(theirs)
    for name in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                 "divisor_override"):
        assert getattr(ours, name) == getattr(theirs, name)
    assert ours.state_dict() == {} and len(theirs.state_dict()) == 0


def test_exports():
    assert "AvgPool2d" in sb.__all__ and "avg_pool2d" in sb.functional.__all__


@pytest.mark.parametrize("case", [((1, 1, 1, 1), (1, 5), 1, 0, False),
                                  ((1, 1, 3, 3), (1, 9), (1, 2), 0, True),
                                  ((2, 1, 1, 1), (1, 5), 1, 0, True)])
@pytest.mark.parametrize("pool", ["avg_pool2d", "max_pool2d"])
def test_too_small_message_prints_torchs_negative_size(case, pool):
    """torch's "Output size is too small" prints the floored, negative size."""
    shape, kernel, stride, padding, ceil_mode = case
    x = np.zeros(shape, np.float32)
    with pytest.raises(RuntimeError) as theirs:
        getattr(torch.nn.functional, pool)(torch.from_numpy(x), kernel, stride, padding,
                                           ceil_mode=ceil_mode)
    with pytest.raises(RuntimeError) as ours:
        getattr(sb.functional, pool)(x, kernel, stride, padding, ceil_mode=ceil_mode)
    assert str(ours.value) == f"{pool}: {theirs.value}"

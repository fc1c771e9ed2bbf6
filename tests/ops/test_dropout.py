"""functional.dropout and Dropout: torch's signature, defaults, repr and
errors (computed from torch at test time); eval mode, training=False and
p == 0 return the input itself, as torch does; in training, the statistics
of the mask (binomial bounds at ~1e6 elements), kept values exactly
x * torch's scale (tests/tolerances.py "dropout" is 0.0 given the mask),
p == 1 and NaN as torch's x * 0; reproducibility from skipblocks.manual_seed,
different seeds, independence of the thread count, both dtypes, inplace.

The masks are not torch's (a different generator), so parity is checked
through the properties that define torch's result, not element by element."""
import math

import numpy as np
import pytest
import torch

import skipblocks as sb
import skipblocks.functional as F
from tests.tolerances import tolerance

TF = torch.nn.functional
N = 1_000_003


def _torch_scale(p, dtype):
    """torch's noise value for a kept element: bernoulli's 1 divided by 1 - p
    in the input's dtype, read back from torch itself."""
    ones = torch.ones(4096, dtype=getattr(torch, dtype))
    torch.manual_seed(0)
    out = TF.dropout(ones, p)
    return out[out != 0][0].item()


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_train_statistics_and_values(p, dtype):
    rng = np.random.default_rng(0)
    x = (rng.random(N) + 0.5).astype(dtype)   # no zeros: a zero is a dropped element
    before = x.copy()
    sb.manual_seed(1)
    y = F.dropout(x, p)
    assert y.dtype == x.dtype and y.shape == x.shape and y is not x
    assert np.array_equal(x, before)
    dropped = y == 0
    # fraction zeroed: within 6 binomial standard deviations of p
    sd = math.sqrt(N * p * (1 - p))
    assert abs(dropped.sum() - N * p) < 6 * sd
    # kept values: exactly x * torch's scale (one product in the dtype)
    scale = np.asarray(_torch_scale(p, dtype), dtype)
    assert np.array_equal(y[~dropped], x[~dropped] * scale)
    assert scale == np.asarray(1, dtype) / np.asarray(1 - p, dtype)
    assert tolerance("dropout", dtype=dtype) == 0.0
    # the mean is preserved: E[y] = E[x]; the bound is 6 sd of the mean of
    # x * B / (1 - p): sqrt(E[x^2] p / (1 - p) / N)
    bound = 6 * math.sqrt(np.mean(x.astype(np.float64) ** 2) * p / (1 - p) / N)
    assert abs(y.astype(np.float64).mean() - x.astype(np.float64).mean()) < bound


def test_eval_and_p0_return_the_input_itself(dtype):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.0, inplace=True) is x
    empty = np.zeros((0, 3), dtype)
    assert F.dropout(empty, 0.5) is empty
    ints = np.arange(4)
    assert F.dropout(ints, 0.5, training=False) is ints   # identity: dtype untouched
    m = sb.Dropout(0.3).eval()
    assert m(x) is x
    t = torch.from_numpy(x)
    assert TF.dropout(t, 0.5, training=False) is t and TF.dropout(t, 0.0) is t


def test_p1_and_nan_inf(dtype):
    x = np.array([np.nan, np.inf, -np.inf, -1.0, 2.0, 0.0] * 1000, dtype)
    want = TF.dropout(torch.from_numpy(x), 1.0).numpy()
    got = F.dropout(x, 1.0)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))   # -1 * 0 is -0.0
    y = F.dropout(x, 0.5)
    kept = np.isfinite(y) & (y != 0)
    # a dropped inf gives NaN (inf * 0); a kept one stays inf; NaN stays NaN
    inf = np.isinf(x)
    assert np.all(np.isnan(y[inf]) | (y[inf] == x[inf]))
    assert np.isnan(y[inf]).any() and np.isinf(y[inf]).any()
    assert np.all(np.isnan(y[np.isnan(x)]))
    assert kept.any()


def test_manual_seed_reproducible_and_seeds_differ(dtype):
    x = np.ones(10_000, dtype)
    sb.manual_seed(123)
    a = F.dropout(x, 0.5)
    b = F.dropout(x, 0.5)            # the next call: another mask
    sb.manual_seed(123)
    assert np.array_equal(F.dropout(x, 0.5), a)
    assert not np.array_equal(a, b)
    sb.manual_seed(124)
    assert not np.array_equal(F.dropout(x, 0.5), a)
    # float32 and float64 calls after the same seed keep the same elements
    sb.manual_seed(123)
    other = F.dropout(np.ones(10_000, np.float64 if dtype == "float32" else np.float32), 0.5)
    assert np.array_equal(other != 0, a != 0)


def test_eval_calls_leave_the_generator_alone():
    x = np.ones(100, np.float32)
    sb.manual_seed(5)
    F.dropout(x, 0.5, training=False)
    F.dropout(x, 0.0)
    first = F.dropout(x, 0.5)
    sb.manual_seed(5)
    assert np.array_equal(F.dropout(x, 0.5), first)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_count_independent(threads, restore_threads, dtype):
    x = np.random.default_rng(0).standard_normal(300_001).astype(dtype)
    sb.set_num_threads(1)
    sb.manual_seed(9)
    one = F.dropout(x, 0.4)
    sb.set_num_threads(threads)
    sb.manual_seed(9)
    assert np.array_equal(F.dropout(x, 0.4), one)


def test_inplace(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 40)).astype(dtype)
    copy = x.copy()
    sb.manual_seed(3)
    want = F.dropout(copy, 0.3)
    sb.manual_seed(3)
    assert F.dropout(x, 0.3, inplace=True) is x
    assert np.array_equal(x, want)
    # a strided view: only its elements change
    base = rng.standard_normal((50, 40)).astype(dtype)
    keep = base.copy()
    view = base[:, ::2]
    sb.manual_seed(3)
    want = F.dropout(np.ascontiguousarray(view), 0.3)
    sb.manual_seed(3)
    assert F.dropout(view, 0.3, inplace=True) is view
    assert np.array_equal(view, want) and np.array_equal(base[:, 1::2], keep[:, 1::2])
    m = sb.Dropout(0.3, inplace=True)
    y = x.copy()
    assert m(y) is y
    for bad in ([1.0, 2.0], np.arange(3), x.copy().astype(np.float16)):
        with pytest.raises(ValueError, match="Dropout: inplace=True writes the result"):
            m(bad)
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        F.dropout(ro, 0.5, inplace=True)


def test_layer_api_matches_torch():
    for args in [(), (0,), (0.25,), (1, True), (0.5, False)]:
        assert repr(sb.Dropout(*args)) == repr(torch.nn.Dropout(*args))
        m, t = sb.Dropout(*args), torch.nn.Dropout(*args)
        assert (m.p, m.inplace) == (t.p, t.inplace)
    assert sb.Dropout().state_dict() == {} and list(torch.nn.Dropout().state_dict()) == []
    x = np.ones((4, 5), np.float32)
    assert sb.Dropout()(x).dtype == np.float32
    assert "dropout" in F.__all__ and "Dropout" in sb.__all__


def _errors(call_sb, call_torch, layer):
    with pytest.raises(Exception) as want:
        call_torch()
    with pytest.raises(Exception) as got:
        call_sb()
    assert type(got.value) is type(want.value)
    assert str(got.value) == f"{layer}: {want.value}"


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), float("inf")])
@pytest.mark.parametrize("training", [True, False])
def test_errors_match_torch(p, training):
    x = np.ones((3, 3), np.float32)
    t = torch.from_numpy(x)
    _errors(lambda: F.dropout(x, p, training), lambda: TF.dropout(t, p, training), "dropout")
    if not math.isnan(p):
        _errors(lambda: sb.Dropout(p), lambda: torch.nn.Dropout(p), "Dropout")
    else:
        # torch's constructor lets NaN through; its forward raises
        m, tm = sb.Dropout(p), torch.nn.Dropout(p)
        _errors(lambda: m(x), lambda: tm(t), "Dropout")


def test_inplace_without_computation_returns_any_input_itself():
    """Eval mode or p == 0 compute nothing, so inplace=True writes nothing
    and, as torch, returns the input object whatever it is: a read-only
    array, an integer array."""
    read_only = np.ones(4, np.float32)
    read_only.flags.writeable = False
    integers = np.arange(4)
    for x in (read_only, integers):
        assert sb.Dropout(inplace=True).eval()(x) is x
        assert sb.functional.dropout(x, 0.0, True, True) is x
        assert sb.functional.dropout(x, 0.5, False, True) is x
    t = torch.arange(4)
    assert torch.nn.Dropout(inplace=True).eval()(t) is t
    with pytest.raises(ValueError, match="inplace=True"):
        sb.functional.dropout(read_only, 0.5, True, True)

"""float64 through the operators (skipblocks._C and skipblocks.functional).

* Parity: every op with all-float64 arguments gives a float64 result within
  1e-12 of torch's float64 result (max|ours - torch| / max(1, max|torch|)),
  on every instruction set (the ``isa`` fixture): conv2d (groups, stride,
  dilation, padding, 'same'), batch_norm in train mode (running statistics
  updated in place, as torch updates its own) and eval mode, max_pool2d,
  adaptive_avg_pool2d, relu, sigmoid, linear, packed weights, and the fused
  blocks (_C.residual_block, _C.dense_layer, _C.se_attention, reached through
  skipblocks' float64 layers, checked to run fused) against the document's
  torch blocks in float64.
* Mixing float32 and float64 arguments raises torch's exception, word for
  word, prefixed with the functional's name (as test_error_wording.py checks
  every other error): the message is computed here by running the same call
  on torch tensors of the same dtypes, in both directions (float32 input with
  a float64 argument, and the opposite). Where torch computes a mix (an empty
  input, a bias torch adds after its matmul), skipblocks computes it too.
* Other real input (ints, bool, float16, lists) takes float64 when an array
  argument of the call is float64, else float32; ``_C.as_real`` converts to
  the dtype asked for.
"""
import contextlib
import traceback

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import skipblocks as sb
import skipblocks.functional as sbF
from skipblocks import _C
from skipblocks import reference as ref
from skipblocks.reference import parity_error

F32, F64 = np.float32, np.float64
TORCH_DTYPE = {F32: torch.float32, F64: torch.float64}
TOL = 1e-12


def _r(rng, *shape, dtype=F64, low=-1.0, high=1.0):
    """Values with full float64 mantissas (a float32-valued input would make
    many float64 products exact)."""
    return rng.uniform(low, high, size=shape).astype(dtype)


def _t(a):
    """A torch tensor with a copy of ``a``, of its dtype."""
    return torch.from_numpy(np.array(a, copy=True))


def _check(ours, theirs, tol=TOL):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype, (
        type(ours), getattr(ours, "dtype", None))
    assert ours.shape == theirs.shape
    err = parity_error(ours, theirs)
    assert err <= tol, f"parity error {err:.3e} > {tol:.0e}"


# ---------------------------------------------------------------------------
# parity in float64
# ---------------------------------------------------------------------------

# the functional sweep's cases (test_functional_parity.py runs them in both
# dtypes on the default ISA); here in float64 on every ISA
from test_functional_parity import CONV_CASES, _conv_id  # noqa: E402


def _k(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv2d_float64(case, isa, rng):
    n, c, o, h, w, k, stride, padding, dilation, groups, bias = case
    x = _r(rng, n, c, h, w)
    wt = _r(rng, o, c // groups, *_k(k))
    b = _r(rng, o) if bias else None
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = F.conv2d(_t(x), _t(wt), None if b is None else _t(b), **args)
    _check(sbF.conv2d(x, wt, b, **args), expected)
    # unbatched
    if n == 1:
        _check(sbF.conv2d(x[0], wt, b, **args), expected[0])


@pytest.mark.parametrize("groups, fold", [(1, False), (2, False), (1, True)])
def test_conv2d_packed_weights_are_float64(groups, fold, isa, rng):
    """conv2d_pack of float64 weights gives a float64 array, which conv2d
    takes for float64 input (with a folded eval-mode BatchNorm too)."""
    x, wt, b = _r(rng, 2, 4, 7, 6), _r(rng, 6, 4 // groups, 3, 3), _r(rng, 6)
    stats = None
    if fold:
        stats = (_r(rng, 6), _r(rng, 6, low=0.5, high=1.5), _r(rng, 6), _r(rng, 6), 1e-5)
    packed = _C.conv2d_pack("Conv2d", wt, b, groups, stats)
    assert packed.dtype == F64 and packed.ndim == 1
    got = _C.conv2d("Conv2d", x, wt, b, (1, 1), (1, 1), (1, 1), groups, packed=packed)
    expected = F.conv2d(_t(x), _t(wt), _t(b), padding=1, groups=groups)
    if fold:
        expected = F.batch_norm(expected, *(_t(s) for s in stats[:4]), eps=stats[4])
    _check(got, expected)


def test_conv2d_out_is_float64(rng):
    x, wt = _r(rng, 2, 3, 5, 5), _r(rng, 4, 3, 3, 3)
    out = np.empty((2, 4, 3, 3), F64)
    got = _C.conv2d("conv2d", x, wt, None, (1, 1), (0, 0), (1, 1), 1, out=out)
    assert got is out
    _check(out, F.conv2d(_t(x), _t(wt)))
    with pytest.raises(ValueError, match="out must be an aligned native float64 array"):
        _C.conv2d("conv2d", x, wt, None, (1, 1), (0, 0), (1, 1), 1,
                  out=np.empty((2, 4, 3, 3), F32))


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (5, 3), (3, 4, 7)], ids=["4d", "2d", "3d"])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_float64_updates_running_stats(shape, affine, isa, rng):
    x = _r(rng, *shape, low=-2.0, high=3.0)
    c = shape[1]
    w, b = (_r(rng, c), _r(rng, c)) if affine else (None, None)
    rm, rv = _r(rng, c), _r(rng, c, low=0.5, high=1.5)
    trm, trv = _t(rm), _t(rv)
    expected = F.batch_norm(_t(x), trm, trv, None if w is None else _t(w),
                            None if b is None else _t(b), training=True, momentum=0.3)
    got = sbF.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
    _check(got, expected)
    _check(rm, trm)
    _check(rv, trv)


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (5, 3), (3, 4, 7)], ids=["4d", "2d", "3d"])
def test_batch_norm_eval_float64(shape, isa, rng):
    x = _r(rng, *shape)
    c = shape[1]
    w, b, rm, rv = _r(rng, c), _r(rng, c), _r(rng, c), _r(rng, c, low=0.5, high=1.5)
    expected = F.batch_norm(_t(x), _t(rm), _t(rv), _t(w), _t(b), training=False, eps=1e-3)
    _check(sbF.batch_norm(x, rm, rv, w, b, training=False, eps=1e-3), expected)


def test_batch_norm_float64_without_running_stats(rng):
    x = _r(rng, 3, 4, 5, 5)
    expected = F.batch_norm(_t(x), None, None, training=True)
    _check(sbF.batch_norm(x, None, None, training=True), expected)


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", [
    (2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), ((3, 2), (2, 1), (1, 0),
                                                                  (1, 2), True)])
def test_max_pool2d_float64(kernel, stride, padding, dilation, ceil_mode, isa, rng):
    x = _r(rng, 2, 5, 9, 8)
    x[0, 0, 0, 0] = np.nan
    args = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    _check(sbF.max_pool2d(x, kernel, **args), F.max_pool2d(_t(x), kernel, **args), tol=0.0)
    _check(sbF.max_pool2d(x[0], kernel, **args), F.max_pool2d(_t(x[0]), kernel, **args), tol=0.0)


@pytest.mark.parametrize("size", [1, 2, (3, 2), (5, 7), (None, 2)])
def test_adaptive_avg_pool2d_float64(size, isa, rng):
    x = _r(rng, 2, 6, 7, 5)
    _check(sbF.adaptive_avg_pool2d(x, size), F.adaptive_avg_pool2d(_t(x), size))
    _check(sbF.adaptive_avg_pool2d(x[0], size), F.adaptive_avg_pool2d(_t(x[0]), size))


@pytest.mark.parametrize("op", ["relu", "sigmoid"])
def test_relu_sigmoid_float64(op, isa, rng):
    x = _r(rng, 3, 5, 7, 11, low=-40.0, high=40.0)
    x.flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
    tol = 0.0 if op == "relu" else TOL
    _check(getattr(sbF, op)(x), getattr(torch, op)(_t(x)), tol=tol)


def test_relu_inplace_float64(rng):
    x = _r(rng, 4, 9)
    expected = torch.relu(_t(x))
    assert sbF.relu(x, inplace=True) is x
    _check(x, expected, tol=0.0)


@pytest.mark.parametrize("xshape, bshape", [
    ((5, 7), None), ((5, 7), (3,)), ((7,), (3,)), ((2, 3, 7), (3,)), ((2, 3, 7), None),
    ((2, 1, 4, 7), (1, 3)), ((5, 7), (5, 3)), ((5, 7), (5, 1)), ((5, 7), (1,))])
def test_linear_float64(xshape, bshape, isa, rng):
    x, w = _r(rng, *xshape), _r(rng, 3, 7)
    b = None if bshape is None else _r(rng, *bshape)
    expected = F.linear(_t(x), _t(w), None if b is None else _t(b))
    _check(sbF.linear(x, w, b), expected)


def test_linear_packed_weights_are_float64(isa, rng):
    x, w, b = _r(rng, 9, 33), _r(rng, 17, 33), _r(rng, 17)
    packed = _C.linear_pack("Linear", w, b)
    assert packed.dtype == F64
    _check(_C.linear("Linear", x, w, b, packed=packed), F.linear(_t(x), _t(w), _t(b)))


# -- the fused blocks, through skipblocks' float64 layers ----------------------

@contextlib.contextmanager
def _spy(name):
    """Records what skipblocks._C.<name> returns while the block runs: the
    fused operator must run (and not fall back to the layers one by one)."""
    original = getattr(_C, name)
    results = []

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        results.append(result)
        return result

    setattr(_C, name, spy)
    try:
        yield results
    finally:
        setattr(_C, name, original)


def _pair(sb_block, torch_block):
    torch_block = torch_block.double()
    with torch.no_grad():
        for m in torch_block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                g = torch.Generator().manual_seed(m.num_features)
                m.weight.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64) + .5)
                m.bias.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64) - .5)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g,
                                                 dtype=torch.float64) * .2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g,
                                               dtype=torch.float64) + .5)
    sb_block = sb_block.double()
    sb_block.load_state_dict(torch_block.state_dict())
    return sb_block, torch_block


def _running_stats(module):
    return {k: v for k, v in module.state_dict().items() if "running" in k}


def _check_fused_block(ours, theirs, mode, op, x, as_list=False, stats=True):
    """ours and theirs (float64) in ``mode`` on x: the fused operator ``op``
    ran (and did not fall back), the output and the running statistics are
    torch's."""
    getattr(ours, mode)()
    getattr(theirs, mode)()
    with _spy(op) as calls, torch.no_grad():
        got = ours([x] if as_list else x)
        expected = theirs([_t(x)] if as_list else _t(x))
    assert calls and all(r is not None for r in calls), "the fused %s did not run" % op
    _check(got, expected)
    if stats:
        for key, value in _running_stats(theirs).items():
            _check(_running_stats(ours)[key], value)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("stride, down", [((1, 1), False), ((2, 1), True)])
def test_residual_block_float64(mode, stride, down, isa, rng):
    c_out = 6 if down else 4
    sb_down = sb.Sequential(sb.Conv2d(4, c_out, 1, stride=2, bias=False),
                            sb.BatchNorm2d(c_out)) if down else None
    t_down = torch.nn.Sequential(torch.nn.Conv2d(4, c_out, 1, stride=2, bias=False),
                                 torch.nn.BatchNorm2d(c_out)) if down else None
    ours, theirs = _pair(sb.ResidualBlock(4, c_out, stride=list(stride), downsample=sb_down),
                         ref.ResidualBlock(4, c_out, stride=list(stride), downsample=t_down))
    _check_fused_block(ours, theirs, mode, "residual_block", _r(rng, 2, 4, 9, 8))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_dense_layer_float64(mode, isa, rng):
    ours, theirs = _pair(sb.DenseLayer(5, 3, 2), ref.Dense_Layer(5, 3, 2))
    _check_fused_block(ours, theirs, mode, "dense_layer", _r(rng, 2, 5, 7, 6), as_list=True)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_se_attention_float64(mode, isa, rng):
    ours, theirs = _pair(sb.SEAttention(16, 4), ref.SEAttention(16, 4))
    _check_fused_block(ours, theirs, mode, "se_attention", _r(rng, 3, 16, 5, 4), stats=False)


# ---------------------------------------------------------------------------
# mixed float32 / float64: torch's error, prefixed with the functional's name
# ---------------------------------------------------------------------------

def _torch_message(exc):
    """torch's message as a user reads it (see test_error_wording.py): the
    C++ stack a debugging build appends is cut off."""
    return str(exc).split("\nException raised from ")[0].rstrip("\n")


def _outcome(call):
    try:
        return call(), None
    except Exception as exc:  # noqa: BLE001 -- any exception is an outcome
        return None, exc


class Lib:
    """One library behind one namespace: ``T(array, dtype)`` is a torch tensor
    (torch) or a NumPy array (skipblocks) of that dtype."""

    def __init__(self, name, functional, tensor):
        self.name, self.F, self._tensor = name, functional, tensor

    def T(self, a, dtype):
        return None if a is None else self._tensor(np.asarray(a, dtype))


TORCH = Lib("torch", F, _t)
SB = Lib("skipblocks", sbF, lambda a: a)

_RNG = np.random.default_rng(64)
X4 = _RNG.uniform(-1, 1, (1, 2, 6, 6))
X4N = _RNG.uniform(-1, 1, (2, 2, 6, 6))
W = _RNG.uniform(-1, 1, (3, 2, 3, 3))
B3 = _RNG.uniform(-1, 1, 3)
XB = _RNG.uniform(-1, 1, (2, 3, 4, 4))
V3 = _RNG.uniform(0.5, 1.5, 3)
XL = _RNG.uniform(-1, 1, (2, 4))
WL = _RNG.uniform(-1, 1, (3, 4))


class Mix:
    """``call(L, a, b)``: one call in which the arrays written with dtype ``a``
    and those written with ``b`` get the two dtypes; run as (float32, float64)
    and as (float64, float32), on torch and on skipblocks."""

    def __init__(self, id, fn, call):
        self.id, self.fn, self.call = id, fn, call


def _conv(L, a, b, x=X4, w=W, bias=None, bias_dtype=None, **kw):
    return L.F.conv2d(L.T(x, a), L.T(w, b), L.T(bias, bias_dtype or a), **kw)


def _bn(L, a, b, which, x=XB, training=False, c=3):
    """batch_norm with the parameters named in ``which`` of dtype b, the
    others (and the input) of dtype a; "-" leaves a parameter out."""
    vals = {"weight": V3[:c], "bias": B3[:c], "running_mean": B3[:c], "running_var": V3[:c]}
    words = which.split()
    args = {}
    for name, v in vals.items():
        if f"-{name}" in words:
            args[name] = None
        else:
            args[name] = L.T(v, b if name in words else a)
    return L.F.batch_norm(L.T(x, a), args["running_mean"], args["running_var"],
                          args["weight"], args["bias"], training=training)


MIXES = [
    # conv2d: the weight's dtype after the shapes; torch's message depends on
    # whether its float32 call runs oneDNN (a batch of 2, groups, ...)
    Mix("conv-weight", "conv2d", lambda L, a, b: _conv(L, a, b)),
    Mix("conv-weight-batch-2", "conv2d", lambda L, a, b: _conv(L, a, b, x=X4N)),
    Mix("conv-weight-unbatched", "conv2d", lambda L, a, b: _conv(L, a, b, x=X4[0])),
    Mix("conv-weight-groups-2", "conv2d",
        lambda L, a, b: _conv(L, a, b, w=W[:, :1].repeat(2, 0)[:4], groups=2)),
    Mix("conv-weight-strided", "conv2d", lambda L, a, b: _conv(L, a, b, stride=2)),
    Mix("conv-weight-dilated", "conv2d", lambda L, a, b: _conv(L, a, b, dilation=2)),
    Mix("conv-weight-large-kernel", "conv2d",
        lambda L, a, b: _conv(L, a, b, x=X4.repeat(2, 2).repeat(2, 3),
                              w=np.ones((3, 2, 5, 5)))),
    Mix("conv-weight-same-even-kernel", "conv2d",
        lambda L, a, b: _conv(L, a, b, w=W[:, :, :2, :2], padding="same")),
    Mix("conv-weight-with-bias", "conv2d", lambda L, a, b: _conv(L, a, b, bias=B3)),
    Mix("conv-bias", "conv2d", lambda L, a, b: _conv(L, a, a, bias=B3, bias_dtype=b)),
    Mix("conv-weight-and-bias", "conv2d", lambda L, a, b: _conv(L, a, b, bias=B3, bias_dtype=b)),
    Mix("conv-bias-before-input-rank", "conv2d",
        lambda L, a, b: _conv(L, a, a, x=X4[0, 0], bias=B3, bias_dtype=b)),
    Mix("conv-bias-before-bias-size", "conv2d",
        lambda L, a, b: _conv(L, a, a, bias=B3[:2], bias_dtype=b)),
    Mix("conv-channels-before-weight", "conv2d", lambda L, a, b: _conv(L, a, b, x=XB)),
    Mix("conv-stride-0-before-weight", "conv2d", lambda L, a, b: _conv(L, a, b, stride=0)),
    # batch_norm: torch's mixed-dtype rule
    Mix("bn-eval-running-mean", "batch_norm", lambda L, a, b: _bn(L, a, b, "running_mean")),
    Mix("bn-eval-running-var", "batch_norm", lambda L, a, b: _bn(L, a, b, "running_var")),
    Mix("bn-eval-weight", "batch_norm", lambda L, a, b: _bn(L, a, b, "weight")),
    Mix("bn-eval-bias-without-weight", "batch_norm",
        lambda L, a, b: _bn(L, a, b, "bias -weight")),
    Mix("bn-eval-bias-after-weight", "batch_norm", lambda L, a, b: _bn(L, a, b, "bias")),
    Mix("bn-eval-all-parameters", "batch_norm",
        lambda L, a, b: _bn(L, a, b, "weight bias running_mean running_var")),
    Mix("bn-train-running-stats", "batch_norm",
        lambda L, a, b: _bn(L, a, b, "running_mean running_var -weight -bias", training=True)),
    Mix("bn-train-running-var", "batch_norm",
        lambda L, a, b: _bn(L, a, b, "running_var", training=True)),
    Mix("bn-train-weight", "batch_norm", lambda L, a, b: _bn(L, a, b, "weight", training=True)),
    Mix("bn-train-weight-without-running-stats", "batch_norm",
        lambda L, a, b: _bn(L, a, b, "weight -running_mean -running_var", training=True)),
    Mix("bn-2d-input-weight", "batch_norm",
        lambda L, a, b: _bn(L, a, b, "weight", x=XB[:, :, 0, 0])),
    Mix("bn-3d-input-running-var", "batch_norm",
        lambda L, a, b: _bn(L, a, b, "running_var", x=XB[:, :, 0])),
    Mix("bn-size-before-dtype", "batch_norm",
        lambda L, a, b: L.F.batch_norm(L.T(XB, a), L.T(np.zeros(4), b), L.T(np.ones(4), b))),
    # linear: addmm checks bias against weight, then input against weight,
    # before the shapes; matmul (no bias, or a bias it adds after) checks input
    # against weight after the shapes
    Mix("linear-weight", "linear", lambda L, a, b: L.F.linear(L.T(XL, a), L.T(WL, b))),
    Mix("linear-weight-1d-input", "linear", lambda L, a, b: L.F.linear(L.T(XL[0], a), L.T(WL, b))),
    Mix("linear-weight-3d-input", "linear",
        lambda L, a, b: L.F.linear(L.T(XL.reshape(2, 1, 4), a), L.T(WL, b))),
    Mix("linear-bias", "linear",
        lambda L, a, b: L.F.linear(L.T(XL, a), L.T(WL, a), L.T(B3, b))),
    Mix("linear-weight-and-bias", "linear",
        lambda L, a, b: L.F.linear(L.T(XL, a), L.T(WL, b), L.T(B3, b))),
    Mix("linear-weight-not-bias", "linear",
        lambda L, a, b: L.F.linear(L.T(XL, a), L.T(WL, b), L.T(B3, a))),
    Mix("linear-bias-3d-input", "linear",
        lambda L, a, b: L.F.linear(L.T(XL.reshape(2, 1, 4), a), L.T(WL, a), L.T(B3, b))),
    Mix("linear-weight-and-bias-1d-input", "linear",
        lambda L, a, b: L.F.linear(L.T(XL[0], a), L.T(WL, b), L.T(B3, b))),
    Mix("linear-bias-2d", "linear",
        lambda L, a, b: L.F.linear(L.T(XL, a), L.T(WL, a), L.T(B3.reshape(1, 3), b))),
    Mix("linear-addmm-dtype-before-shapes", "linear",
        lambda L, a, b: L.F.linear(L.T(np.ones((2, 5)), a), L.T(WL, b), L.T(B3, b))),
    Mix("linear-shapes-before-matmul-dtype", "linear",
        lambda L, a, b: L.F.linear(L.T(np.ones((2, 5)), a), L.T(WL, b))),
    Mix("linear-matmul-with-2d-bias", "linear",
        lambda L, a, b: L.F.linear(L.T(np.ones((2, 2, 4)), a), L.T(WL, b),
                                   L.T(np.ones((2, 3)), b))),
]
_MIX_PARAMS = [pytest.param(m, a, b, id=f"{m.id}[{np.dtype(a).name}-{np.dtype(b).name}]")
               for m in MIXES for a, b in ((F32, F64), (F64, F32))]


@pytest.mark.parametrize("mix, a, b", _MIX_PARAMS)
def test_mixed_dtypes_raise_torchs_error(mix, a, b):
    _, expected = _outcome(lambda: mix.call(TORCH, a, b))
    assert expected is not None, f"{mix.id}: torch computes this mix"
    assert not any(isinstance(frame.f_locals.get("self"), torch.nn.Module)
                   for frame, _ in traceback.walk_tb(expected.__traceback__))
    want = f"{mix.fn}: {_torch_message(expected)}"
    _, got = _outcome(lambda: mix.call(SB, a, b))
    assert got is not None, f"skipblocks computes; torch raises {type(expected).__name__}: {want!r}"
    assert type(got) is type(expected) and str(got) == want, (
        f"\n  skipblocks: {type(got).__name__}: {str(got)!r}"
        f"\n  expected:   {type(expected).__name__}: {want!r}")


@pytest.mark.parametrize("a, b", [(F32, F64), (F64, F32)])
@pytest.mark.parametrize("threads", [1, 2])
def test_mixed_conv_1x1_message_follows_the_thread_count(a, b, threads, restore_threads):
    """torch's float32 1x1 stride-1 convolution of a small batch runs oneDNN
    only with more than one thread, and its dtype message says so; skipblocks
    reads its own thread count for that rule (both default to the CPUs)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    sb.set_num_threads(threads)
    try:
        w = W[:, :, :1, :1]
        _, expected = _outcome(lambda: _conv(TORCH, a, b, x=X4N, w=w))
        _, got = _outcome(lambda: _conv(SB, a, b, x=X4N, w=w))
    finally:
        torch.set_num_threads(previous)
    assert expected is not None and got is not None
    assert type(got) is type(expected) and str(got) == f"conv2d: {_torch_message(expected)}"


# -- mixes torch computes -----------------------------------------------------------

@pytest.mark.parametrize("a, b", [(F32, F64), (F64, F32)])
def test_mixed_conv_of_an_empty_batch_computes_like_torch(a, b):
    x = np.zeros((0, 2, 6, 6), a)
    expected = F.conv2d(_t(x), _t(W.astype(b)))
    got = sbF.conv2d(x, W.astype(b))
    assert got.dtype == a and got.shape == tuple(expected.shape)


@pytest.mark.parametrize("a, b", [(F32, F64), (F64, F32)])
@pytest.mark.parametrize("training", [False, True])
def test_mixed_batch_norm_of_an_empty_batch_computes_like_torch(a, b, training):
    x = np.zeros((0, 3, 4, 4), a)
    rm, rv = B3.astype(b), V3.astype(b)
    expected = F.batch_norm(_t(x), _t(rm), _t(rv), _t(V3.astype(b)), training=training)
    got = sbF.batch_norm(x, rm.copy(), rv.copy(), V3.astype(b), training=training)
    assert got.dtype == a and got.shape == tuple(expected.shape)


@pytest.mark.parametrize("a, b", [(F32, F64), (F64, F32)])
@pytest.mark.parametrize("xshape, bshape", [((2, 2, 4), (1, 1)), ((1, 3, 4), (3, 3)),
                                            ((2, 2, 4), ())])
def test_mixed_linear_bias_torch_adds_after_matmul(a, b, xshape, bshape, rng):
    """With a bias torch does not pass to addmm (a 0-D one, or 2-D with more
    than one size other than 1, on an input that is not 2-D), torch adds it
    after the product in the wider dtype, the result keeping the input's:
    so does skipblocks."""
    x, w = _r(rng, *xshape, dtype=a), _r(rng, 3, 4, dtype=a)
    bias = np.asarray(_r(rng, *bshape) if bshape else 0.25, b)
    expected = F.linear(_t(x), _t(w), _t(bias))
    got = sbF.linear(x, w, bias)
    _check(got, expected, tol=TOL if a == F64 else 1e-6)


def test_se_attention_packed_weights_of_the_other_dtype_raise_torchs_linear_error(rng):
    """The fused SEAttention operator with packed weights of another dtype
    than its input: torch's SEAttention on such weights raises from its first
    Linear."""
    for a, b in ((F32, F64), (F64, F32)):
        theirs = ref.SEAttention(8, 2).to(TORCH_DTYPE[b])
        x = _r(rng, 2, 8, 3, 3, dtype=a)
        with pytest.raises(RuntimeError) as info, torch.no_grad():
            theirs(_t(x))
        w1, w2 = (m.weight.detach().numpy() for m in (theirs.fc[0], theirs.fc[2]))
        fc1, fc2 = _C.linear_pack("Linear", w1, None), _C.linear_pack("Linear", w2, None)
        assert fc1.dtype == b
        with pytest.raises(RuntimeError) as got:
            _C.se_attention("SEAttention", x, fc1, fc2, 4)
        assert str(got.value) == f"Linear: {_torch_message(info.value)}"


@pytest.mark.parametrize("a, b", [(F32, F64), (F64, F32)])
def test_mixed_blocks_fall_back_to_their_layers(a, b, rng):
    """A fused block's operator refuses arrays of two dtypes and touches
    nothing (it returns None; the Python block then runs its layers)."""
    x = _r(rng, 2, 4, 5, 5, dtype=a)
    w = _r(rng, 4, 4, 3, 3, dtype=a)
    rm, rv = np.zeros(4, b), np.ones(4, b)
    bn = (None, None, rm, rv, True, 0.1, 1e-5)
    conv = (w, None, (1, 1), (1, 1), (1, 1), 1)
    assert _C.residual_block("ResidualBlock", x, x, bn, 0.1, False, conv, conv) is None
    assert _C.dense_layer("DenseLayer", x, bn, bn, conv, conv) is None
    np.testing.assert_array_equal(rm, 0.0)
    np.testing.assert_array_equal(rv, 1.0)
    res = (None, None, np.zeros(4, a), np.ones(4, a), True, 0.1, 1e-5)
    assert _C.residual_block("ResidualBlock", x, x.astype(b), res, 0.1, False, conv,
                             conv) is None


def test_float64_errors_name_the_dtype_as_torch_does():
    """A message that prints the tensor's type (linear's bias expand) says
    torch.DoubleTensor for float64, as torch's."""
    x, w, b = np.ones((2, 4)), np.ones((3, 4)), np.ones((1, 1, 3))
    with pytest.raises(RuntimeError) as theirs:
        F.linear(_t(x), _t(w), _t(b))
    with pytest.raises(RuntimeError) as ours:
        sbF.linear(x, w, b)
    assert "torch.DoubleTensor" in str(ours.value)
    assert str(ours.value) == f"linear: {_torch_message(theirs.value)}"


def test_train_mode_running_stats_of_an_integer_dtype_are_refused(rng):
    x = _r(rng, 2, 3, 4, 4)
    with pytest.raises(TypeError, match="batch_norm: running_mean must be a C-contiguous native "
                                        "float32 or float64 array"):
        sbF.batch_norm(x, np.zeros(3, np.int64), np.ones(3), training=True)


# ---------------------------------------------------------------------------
# other real input: float64 when an array of the call is float64
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["int32", "int64", "bool", "float16", "list"])
def test_other_real_input_with_float64_weights_computes_in_float64(kind, rng):
    ints = rng.integers(-3, 4, size=(2, 3, 6, 5))
    x = ints.tolist() if kind == "list" else ints.astype(kind)
    x64 = np.asarray(x, F64)
    w, b = _r(rng, 4, 3, 3, 3), _r(rng, 4)
    got = sbF.conv2d(x, w, b, padding=1)
    assert got.dtype == F64
    np.testing.assert_array_equal(got, sbF.conv2d(x64, w, b, padding=1))
    _check(got, F.conv2d(_t(x64), _t(w), _t(b), padding=1))
    lw = _r(rng, 2, 5)
    got = sbF.linear(x, lw)
    assert got.dtype == F64
    np.testing.assert_array_equal(got, sbF.linear(x64, lw))
    rm, rv = _r(rng, 3), _r(rng, 3, low=0.5, high=1.5)
    got = sbF.batch_norm(x, rm, rv)
    assert got.dtype == F64
    np.testing.assert_array_equal(got, sbF.batch_norm(x64, rm, rv))
    # an integer weight with a float64 input: the weight takes float64
    got = sbF.conv2d(x64, ints[:4, :3, :3, :3].astype(np.int32))
    assert got.dtype == F64
    np.testing.assert_array_equal(got, sbF.conv2d(x64, ints[:4, :3, :3, :3].astype(F64)))


def test_other_real_input_with_float32_weights_computes_in_float32(rng):
    ints = rng.integers(-3, 4, size=(2, 3, 6, 5))
    w = _r(rng, 4, 3, 3, 3, dtype=F32)
    got = sbF.conv2d(ints, w)
    assert got.dtype == F32
    np.testing.assert_array_equal(got, sbF.conv2d(ints.astype(F32), w))
    # a list of ints
    got = sbF.linear(ints[0, 0].tolist(), _r(rng, 2, 5, dtype=F32))
    assert got.dtype == F32
    # lists and numbers of Python floats are not float64 arrays (NumPy reads
    # them as float64): the operators take them as float32 ...
    w32 = _r(rng, 2, 5, dtype=F32)
    got = _C.linear("linear", [[0.5, 1.5, -2.0, 0.0, 1.0]], w32, 0.25)
    assert got.dtype == F32
    np.testing.assert_array_equal(
        got, _C.linear("linear", np.array([[0.5, 1.5, -2.0, 0.0, 1.0]], F32), w32,
                       np.float32(0.25)))
    # ... and as float64 beside a float64 array
    assert _C.linear("linear", [[0.5, 1.5, -2.0, 0.0, 1.0]], w32.astype(F64), None).dtype == F64


def test_torch_float64_tensors_count_as_float64_arrays(rng):
    x = rng.integers(-3, 4, size=(2, 3, 4, 4)).astype(np.int32)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    got = _C.batch_norm("batch_norm", x, rm, rv, None, None, False, 0.1, 1e-5)
    assert got.dtype == F64


@pytest.mark.parametrize("op, args", [
    ("relu", ()), ("sigmoid", ()), ("max_pool2d", (2,)), ("adaptive_avg_pool2d", (1,))])
def test_single_array_ops_keep_float32_and_float64_and_take_float32_otherwise(op, args, rng):
    x = rng.integers(-3, 4, size=(2, 3, 4, 4))
    fn = getattr(sbF, op)
    assert fn(x.astype(F64), *args).dtype == F64
    assert fn(x.astype(F32), *args).dtype == F32
    assert fn(x, *args).dtype == F32
    assert fn(x.astype(np.float16), *args).dtype == F32


# ---------------------------------------------------------------------------
# _C.as_real
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [None, np.float32, np.float64, "float32", "float64",
                                   np.dtype(np.float32), np.dtype(">f8")])
@pytest.mark.parametrize("kind", ["float32", "float64", "int16", "bool", "float16", "list",
                                  "fortran-float64"])
def test_as_real(dtype, kind, rng):
    base = rng.standard_normal((2, 3, 4, 5))
    value = {"list": base.tolist(), "fortran-float64": np.asfortranarray(base)}.get(kind)
    if value is None:
        value = base.astype(kind)
    got = _C.as_real("L", value, "input", dtype)
    if dtype is None:
        want = np.dtype(kind if kind in ("float32", "float64") else
                        (F64 if kind == "fortran-float64" else F32))
    else:
        want = np.dtype(dtype).newbyteorder("=")
    assert got.dtype == want and got.dtype.isnative and got.flags.c_contiguous
    np.testing.assert_array_equal(got, np.asarray(value, want))
    if isinstance(value, np.ndarray) and value.dtype == want and value.flags.c_contiguous:
        assert got is value  # used as it is


def test_as_real_keeps_channel_slices_and_refuses_other_dtypes():
    buf = np.zeros((2, 6, 3, 3))
    view = buf[:, 2:4]
    assert _C.as_real("L", view) is view
    assert _C.as_real("L", view, dtype=np.float64) is view
    assert _C.as_real("L", view, dtype=np.float32).dtype == F32
    for bad in (np.int32, "float16", np.complex128, "int64", np.dtype(np.float16), object):
        with pytest.raises(TypeError, match="as_real: dtype must be None, float32 or float64"):
            _C.as_real("L", buf, "input", bad)
    with pytest.raises(TypeError, match="L: weight must hold real numbers .* got an array of "
                                        "dtype complex64; skipblocks computes in float32 or "
                                        "float64"):
        _C.as_real("L", buf.astype(np.complex64), "weight")




def test_linear_zero_dim_bias_of_the_other_dtype_adds_as_torch():
    """A 0-d float64 bias on float32 input is a scalar to torch's type
    promotion: the result stays float32 and the bias is rounded to float32
    before the (float32) add -- skipblocks' product plus that float32 value,
    bit for bit."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 25, 7)).astype(F32)
    w = rng.standard_normal((9, 7)).astype(F32)
    product = sbF.linear(x, w)
    for bias in (np.array(0.1), np.float64(0.1)):
        got = sbF.linear(x, w, bias)
        expected = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                              torch.tensor(0.1, dtype=torch.float64))
        assert got.dtype == F32 and expected.dtype == torch.float32
        np.testing.assert_array_equal(got, product + F32(0.1))

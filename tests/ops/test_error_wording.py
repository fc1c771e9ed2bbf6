"""Error wording: every error a user can reach through skipblocks.functional
and through the layers and blocks is torch's own error -- the same exception
type and, word for word, torch's message -- prefixed with the skipblocks
name of the layer that raised it:

    f"{layer}: {torch_message}"

where ``layer`` is the functional's name (``"conv2d"``) for the functional
API, and the class name (``"Conv2d"``) for a module. Inside a block or a
container the layer that raises is the module whose torch twin raises (a bad
channel count reaching ResidualBlock's conv1 is a ``Conv2d:`` error, as in the
README's example; the block's own ``out + residual`` is a ``ResidualBlock:``
one). That name is written in each row and checked against torch's traceback,
so a row cannot name a layer torch does not raise from.

torch's exception and message are computed here, at test time, by running
the very same expression against torch (``torch.nn``, ``torch.nn.functional``,
``torch.cat`` and the document's torch blocks in ``skipblocks.reference``):
each row of ``CASES`` is one expression over a library namespace ``L`` and
runs once against torch and once against skipblocks. A row has a functional
variant, a module variant, or both, so each check exists once.

Where skipblocks departs from torch on purpose, as README.md documents,
``DEPARTURES`` asserts skipblocks' exact message instead, row by row, naming
the README sentence that the row follows -- and checks that torch really
behaves differently there (otherwise the row belongs in ``CASES``).
"""
import re
import traceback
import types

import numpy as np
import pytest
import torch

import skipblocks as sb
import skipblocks.functional as sbF
from skipblocks import reference as ref

BIG = 2**31  # one past SB_CONV_PARAM_MAX / SB_POOL_PARAM_MAX (torch's int)


# ---------------------------------------------------------------------------
# the two libraries, behind one namespace
# ---------------------------------------------------------------------------

def _tensor(a):
    """A torch tensor holding a copy of the array (0-d stays 0-d)."""
    return torch.from_numpy(np.array(a, copy=True))


TORCH = types.SimpleNamespace(
    name="torch",
    F=torch.nn.functional, cat=torch.cat,
    T=_tensor, P=lambda a: torch.nn.Parameter(_tensor(a)), B=_tensor,
    Conv2d=torch.nn.Conv2d, BatchNorm2d=torch.nn.BatchNorm2d, ReLU=torch.nn.ReLU,
    Sigmoid=torch.nn.Sigmoid, MaxPool2d=torch.nn.MaxPool2d,
    AdaptiveAvgPool2d=torch.nn.AdaptiveAvgPool2d, Linear=torch.nn.Linear,
    Sequential=torch.nn.Sequential,
    ResidualBlock=ref.ResidualBlock, DenseLayer=ref.Dense_Layer, DenseBlock=ref.Dense_Block,
    SEAttention=ref.SEAttention,
)

SB = types.SimpleNamespace(
    name="skipblocks",
    F=sbF, cat=sb.cat,
    T=lambda a: a, P=sb.Parameter, B=lambda a: a,
    Conv2d=sb.Conv2d, BatchNorm2d=sb.BatchNorm2d, ReLU=sb.ReLU, Sigmoid=sb.Sigmoid,
    MaxPool2d=sb.MaxPool2d, AdaptiveAvgPool2d=sb.AdaptiveAvgPool2d, Linear=sb.Linear,
    Sequential=sb.Sequential,
    ResidualBlock=sb.ResidualBlock, DenseLayer=sb.DenseLayer, DenseBlock=sb.DenseBlock,
    SEAttention=sb.SEAttention,
)

# The document's torch classes print as Dense_Layer / Dense_Block; skipblocks'
# are DenseLayer / DenseBlock (README, "Where skipblocks departs from the
# document on purpose": "The printed class names of the dense modules are
# `DenseLayer(` / `DenseBlock(`").
_SB_CLASS_NAME = {"Dense_Layer": "DenseLayer", "Dense_Block": "DenseBlock"}


def r(*shape, dtype=np.float32):
    """A fresh array of the shape, values in [0, 1) (so no channel is constant)."""
    return np.random.default_rng(len(shape)).random(shape).astype(dtype)


def zeros(*shape):
    return np.zeros(shape, np.float32)


def ones(*shape):
    return np.ones(shape, np.float32)


# ---------------------------------------------------------------------------
# comparing messages
# ---------------------------------------------------------------------------

def _torch_message(exc):
    """torch's message, as a user reads it. Only what varies with the
    environment, not with torch's wording, is removed:

    * a C++ error (c10::Error) gets "\\nException raised from ... (most recent
      call first): <C++ frames>" appended when TORCH_SHOW_CPP_STACKTRACES=1
      (and carries a trailing newline in some builds): that tail is the
      build's debugging aid, not the message, so it is cut off.
    * nothing else: the "(got ...)", ", but got [0, 0]" and "torch.Size(...)"
      details are part of the message and skipblocks must give them too.
    """
    message = str(exc)
    message = message.split("\nException raised from ")[0]
    return message.rstrip("\n")


_PY_SET_OF_STRINGS = re.compile(r"\{'[^'{}]*'(?:, '[^'{}]*')+\}")


def _canonical(message):
    """Applied to both sides. torch prints some choices as a Python set of
    strings (nn.Conv2d: "should be one of {'same', 'valid'}", "padding_mode
    must be one of {'circular', 'zeros', ...}"); the order of a set of str
    depends on the process' hash seed (PYTHONHASHSEED), so the same torch
    prints it in different orders in different runs. The elements are sorted;
    nothing else is touched."""
    return _PY_SET_OF_STRINGS.sub(
        lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}", message)


def _raising_module(exc):
    """The class of the innermost torch.nn.Module in torch's traceback (the
    module whose forward -- or __init__ -- raised), in skipblocks' spelling;
    None when no module is on the stack (a functional call)."""
    name = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if isinstance(owner, torch.nn.Module):
            name = type(owner).__name__
    return _SB_CLASS_NAME.get(name, name)


def _outcome(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 -- any exception is an outcome
        return exc
    return None


# ---------------------------------------------------------------------------
# the cases: one expression per case, run on torch and on skipblocks
# ---------------------------------------------------------------------------

class Case:
    """``functional(L)`` and/or ``module(L)``: the same failing call written
    once over a library namespace ``L`` (TORCH or SB). ``fn`` is the
    functional's name (the prefix of the functional variant); ``layer`` the
    class whose torch twin raises in the module variant (its prefix)."""

    def __init__(self, id, fn=None, functional=None, layer=None, module=None):
        assert (functional is None) == (fn is None) and (module is None) == (layer is None)
        self.id, self.fn, self.functional, self.layer, self.module = \
            id, fn, functional, layer, module


# conv2d / Conv2d --------------------------------------------------------------
X = r(1, 2, 8, 8)      # input with 2 channels
W = r(3, 2, 3, 3)      # weight: 3 outputs, 2 inputs, 3 x 3
X4 = r(1, 4, 8, 8)     # 4 channels


def _conv_bias(L, bias):
    conv = L.Conv2d(2, 3, 3)
    conv.bias = L.P(bias)
    return conv(L.T(X))


def _linear_bias(L, bias):
    lin = L.Linear(4, 3)
    lin.bias = L.P(bias)
    return lin(L.T(r(2, 4)))


def _se_with_fc1_bias(L, size, eval_mode=False):
    """SEAttention(16, 4) whose first Linear has a bias of ``size`` values,
    then a forward."""
    se = L.SEAttention(16, 4)
    if eval_mode:
        se.eval()
    se.fc[0].bias = L.P(r(size))
    return se(L.T(r(2, 16, 4, 4)))


def _bn_with(L, attr, value, eval_mode=False, x=None):
    """BatchNorm2d(3) with ``attr`` set to ``value`` (a Parameter for
    weight/bias, a buffer or None for the running statistics), then a
    forward of a (2, 3, 4, 4) input."""
    bn = L.BatchNorm2d(3)
    if eval_mode:
        bn.eval()
    if value is None:
        setattr(bn, attr, None)
    else:
        setattr(bn, attr, L.P(value) if attr in ("weight", "bias") else L.B(value))
    return bn(L.T(r(2, 3, 4, 4) if x is None else x))


CONV = [
    Case("conv-input-2d",
         "conv2d", lambda L: L.F.conv2d(L.T(r(3, 5)), L.T(W)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(r(3, 5)))),
    Case("conv-input-5d",
         "conv2d", lambda L: L.F.conv2d(L.T(r(1, 1, 2, 8, 8)), L.T(W)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(r(1, 1, 2, 8, 8)))),
    Case("conv-input-1d",
         "conv2d", lambda L: L.F.conv2d(L.T(r(8)), L.T(W)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(r(8)))),
    Case("conv-channel-mismatch",
         "conv2d", lambda L: L.F.conv2d(L.T(X4), L.T(W)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(X4))),
    Case("conv-channel-mismatch-unbatched",
         "conv2d", lambda L: L.F.conv2d(L.T(r(4, 8, 8)), L.T(W)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(r(4, 8, 8)))),
    Case("conv-groups-not-dividing-out-channels",
         "conv2d", lambda L: L.F.conv2d(L.T(X4), L.T(W), groups=2),
         "Conv2d", lambda L: L.Conv2d(4, 3, 3, groups=2)),
    Case("conv-groups-not-dividing-in-channels",
         "conv2d", lambda L: L.F.conv2d(L.T(r(1, 3, 8, 8)), L.T(r(4, 1, 3, 3)), groups=2),
         "Conv2d", lambda L: L.Conv2d(3, 4, 3, groups=2)),
    Case("conv-groups-0",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), groups=0),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, groups=0)),
    Case("conv-groups-negative",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), groups=-1),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, groups=-1)),
    Case("conv-stride-0",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), stride=0),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, stride=0)(L.T(X))),
    Case("conv-stride-negative",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), stride=-1),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, stride=-1)(L.T(X))),
    Case("conv-stride-pair-with-0",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), stride=(1, 0)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, stride=(1, 0))(L.T(X))),
    Case("conv-stride-3-values",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), stride=(1, 2, 3)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, stride=(1, 2, 3))(L.T(X))),
    Case("conv-padding-negative",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), padding=-1),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, padding=-1)(L.T(X))),
    Case("conv-padding-pair-with-negative",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), padding=(0, -1)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, padding=(0, -1))(L.T(X))),
    Case("conv-padding-3-values",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), padding=(1, 1, 1)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, padding=(1, 1, 1))(L.T(X))),
    Case("conv-dilation-0",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), dilation=0),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, dilation=0)(L.T(X))),
    Case("conv-dilation-negative",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), dilation=-1),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, dilation=-1)(L.T(X))),
    Case("conv-kernel-size-0",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(zeros(3, 2, 0, 3))),
         "Conv2d", lambda L: L.Conv2d(2, 3, (0, 3))(L.T(X))),
    Case("conv-kernel-larger-than-input",
         "conv2d", lambda L: L.F.conv2d(L.T(r(1, 2, 2, 2)), L.T(W)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(r(1, 2, 2, 2)))),
    Case("conv-dilated-kernel-larger-than-input",
         "conv2d", lambda L: L.F.conv2d(L.T(r(1, 2, 4, 8)), L.T(W), dilation=2),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, dilation=2)(L.T(r(1, 2, 4, 8)))),
    Case("conv-empty-map",
         "conv2d", lambda L: L.F.conv2d(L.T(r(1, 2, 0, 8)), L.T(W)),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(r(1, 2, 0, 8)))),
    Case("conv-bias-wrong-size",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), L.T(r(4))),
         "Conv2d", lambda L: _conv_bias(L, r(4))),
    Case("conv-bias-2d",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), L.T(r(3, 1))),
         "Conv2d", lambda L: _conv_bias(L, r(3, 1))),
    Case("conv-same-padding-strided",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), stride=2, padding="same"),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, stride=2, padding="same")),
    Case("conv-same-padding-strided-pair",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), stride=(1, 2), padding="same"),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, stride=(1, 2), padding="same")),
    Case("conv-bad-padding-string",
         "conv2d", lambda L: L.F.conv2d(L.T(X), L.T(W), padding="full"),
         "Conv2d", lambda L: L.Conv2d(2, 3, 3, padding="full")),
    Case("conv-bad-padding-mode",
         layer="Conv2d", module=lambda L: L.Conv2d(2, 3, 3, padding_mode="mirror")),
    Case("conv-negative-in-channels",
         layer="Conv2d", module=lambda L: L.Conv2d(-1, 3, 3)),
    Case("conv-negative-out-channels",
         layer="Conv2d", module=lambda L: L.Conv2d(2, -3, 3)),
]

# batch_norm / BatchNorm2d ------------------------------------------------------
XB = r(2, 3, 4, 4)

BATCH_NORM = [
    Case("bn-input-3d",
         layer="BatchNorm2d", module=lambda L: L.BatchNorm2d(3)(L.T(r(3, 4, 4)))),
    Case("bn-input-2d",
         layer="BatchNorm2d", module=lambda L: L.BatchNorm2d(3)(L.T(r(2, 3)))),
    Case("bn-input-5d",
         layer="BatchNorm2d", module=lambda L: L.BatchNorm2d(3)(L.T(r(1, 3, 2, 4, 4)))),
    Case("bn-input-3d-eval",
         layer="BatchNorm2d", module=lambda L: L.BatchNorm2d(3).eval()(L.T(r(3, 4, 4)))),
    Case("bn-channel-mismatch-train",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(4)), L.T(ones(4)),
                                                training=True),
         "BatchNorm2d", lambda L: L.BatchNorm2d(4)(L.T(XB))),
    Case("bn-channel-mismatch-eval",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(4)), L.T(ones(4))),
         "BatchNorm2d", lambda L: L.BatchNorm2d(4).eval()(L.T(XB))),
    Case("bn-running-var-wrong-size",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), L.T(ones(4))),
         "BatchNorm2d", lambda L: _bn_with(L, "running_var", ones(4), eval_mode=True)),
    Case("bn-running-mean-wrong-size-train",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(4)), L.T(ones(3)),
                                                training=True),
         "BatchNorm2d", lambda L: _bn_with(L, "running_mean", zeros(4))),
    Case("bn-weight-wrong-size",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), L.T(ones(3)),
                                                L.T(ones(4))),
         "BatchNorm2d", lambda L: _bn_with(L, "weight", ones(4))),
    Case("bn-bias-wrong-size",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), L.T(ones(3)),
                                                None, L.T(zeros(4))),
         "BatchNorm2d", lambda L: _bn_with(L, "bias", zeros(4))),
    Case("bn-eps-0-train",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), L.T(ones(3)),
                                                training=True, eps=0.0),
         "BatchNorm2d", lambda L: L.BatchNorm2d(3, eps=0.0)(L.T(XB))),
    Case("bn-eps-negative-train",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), L.T(ones(3)),
                                                training=True, eps=-1e-5),
         "BatchNorm2d", lambda L: L.BatchNorm2d(3, eps=-1e-5)(L.T(XB))),
    Case("bn-eps-negative-eval",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), L.T(ones(3)),
                                                eps=-1.0),
         "BatchNorm2d", lambda L: L.BatchNorm2d(3, eps=-1.0).eval()(L.T(XB))),
    Case("bn-eps-0-eval-without-running-stats",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), None, None, training=True, eps=0.0),
         "BatchNorm2d",
         lambda L: L.BatchNorm2d(3, eps=0.0, track_running_stats=False).eval()(L.T(XB))),
    Case("bn-one-value-per-channel-train",
         "batch_norm", lambda L: L.F.batch_norm(L.T(r(1, 3, 1, 1)), L.T(zeros(3)),
                                                L.T(ones(3)), training=True),
         "BatchNorm2d", lambda L: L.BatchNorm2d(3)(L.T(r(1, 3, 1, 1)))),
    Case("bn-one-value-per-channel-without-running-stats",
         "batch_norm", lambda L: L.F.batch_norm(L.T(r(1, 3)), None, None, training=True),
         "BatchNorm2d",
         lambda L: L.BatchNorm2d(3, track_running_stats=False).eval()(L.T(r(1, 3, 1, 1)))),
    Case("bn-eval-without-running-stats",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), None, None),
         "BatchNorm2d", lambda L: _bn_with(L, "running_mean", None, eval_mode=True)),
    Case("bn-eval-without-running-mean",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), None, L.T(ones(3)))),
    Case("bn-train-with-one-running-stat",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), None, training=True),
         "BatchNorm2d", lambda L: _bn_with(L, "running_var", None)),
    Case("bn-momentum-none",
         "batch_norm", lambda L: L.F.batch_norm(L.T(XB), L.T(zeros(3)), L.T(ones(3)),
                                                training=True, momentum=None)),
    Case("bn-negative-num-features",
         layer="BatchNorm2d", module=lambda L: L.BatchNorm2d(-1)),
]

# max_pool2d / MaxPool2d --------------------------------------------------------
XP = r(1, 2, 4, 4)


def _pool_pair(id, args, kwargs, x=XP):
    """The same max-pool arguments as a functional call and as a layer."""
    return Case(id,
                "max_pool2d", lambda L: L.F.max_pool2d(L.T(x), *args, **kwargs),
                "MaxPool2d", lambda L: L.MaxPool2d(*args, **kwargs)(L.T(x)))


MAX_POOL = [
    _pool_pair("maxpool-input-2d", (2,), {}, x=r(4, 4)),
    _pool_pair("maxpool-input-5d", (2,), {}, x=r(1, 1, 2, 4, 4)),
    _pool_pair("maxpool-empty-map", (1,), {}, x=r(1, 2, 0, 4)),
    _pool_pair("maxpool-pad-over-half-kernel", (2,), dict(padding=2)),
    _pool_pair("maxpool-pad-over-half-kernel-height-first", ((3, 2),), dict(padding=(2, 1))),
    _pool_pair("maxpool-pad-over-half-dilated-kernel", (2,),
               dict(stride=1, padding=2, dilation=3)),
    _pool_pair("maxpool-padding-negative", (2,), dict(padding=-1)),
    _pool_pair("maxpool-stride-0", (2,), dict(stride=0)),
    _pool_pair("maxpool-stride-pair-with-0", (2,), dict(stride=(2, 0))),
    _pool_pair("maxpool-stride-negative", (2,), dict(stride=-1)),
    _pool_pair("maxpool-kernel-size-0", (0,), {}),
    _pool_pair("maxpool-kernel-size-0-stride-1", (0,), dict(stride=1)),
    _pool_pair("maxpool-kernel-size-negative", (-2,), dict(stride=1)),
    _pool_pair("maxpool-dilation-0", (2,), dict(dilation=0)),
    _pool_pair("maxpool-dilation-negative", (3,), dict(padding=1, dilation=-1)),
    _pool_pair("maxpool-kernel-larger-than-input", (5,), {}),
    _pool_pair("maxpool-kernel-size-3-values", ((2, 2, 2),), {}),
    _pool_pair("maxpool-stride-3-values", (2,), dict(stride=(1, 1, 1))),
    _pool_pair("maxpool-padding-3-values", (2,), dict(padding=(1, 1, 1))),
    _pool_pair("maxpool-dilation-3-values", (2,), dict(dilation=(1, 1, 1))),
    # README: "Pooling parameters above 2^31-1 raise torch's `value cannot be
    # converted to type int without overflow`"
    _pool_pair("maxpool-stride-over-int32", (2,), dict(stride=BIG)),
    _pool_pair("maxpool-padding-under-int32", (2,), dict(padding=-BIG - 1)),
]

# adaptive_avg_pool2d / AdaptiveAvgPool2d ---------------------------------------


def _adaptive_pair(id, size, x=XP):
    return Case(id,
                "adaptive_avg_pool2d", lambda L: L.F.adaptive_avg_pool2d(L.T(x), size),
                "AdaptiveAvgPool2d", lambda L: L.AdaptiveAvgPool2d(size)(L.T(x)))


ADAPTIVE_POOL = [
    _adaptive_pair("adaptive-input-2d", 2, x=r(4, 4)),
    _adaptive_pair("adaptive-input-2d-pair-size", (2, 2), x=r(4, 4)),
    _adaptive_pair("adaptive-input-5d", 2, x=r(1, 1, 2, 4, 4)),
    _adaptive_pair("adaptive-empty-map", 2, x=r(1, 2, 0, 4)),
    _adaptive_pair("adaptive-output-size-negative", -1),
    _adaptive_pair("adaptive-output-size-pair-with-negative", (2, -1)),
    _adaptive_pair("adaptive-output-size-3-values", (2, 2, 2)),
]

# linear / Linear ---------------------------------------------------------------
WL = r(3, 4)

LINEAR = [
    Case("linear-shape-mismatch",
         "linear", lambda L: L.F.linear(L.T(r(2, 5)), L.T(WL)),
         "Linear", lambda L: L.Linear(4, 3)(L.T(r(2, 5)))),
    Case("linear-shape-mismatch-1d",
         "linear", lambda L: L.F.linear(L.T(r(5)), L.T(WL)),
         "Linear", lambda L: L.Linear(4, 3)(L.T(r(5)))),
    Case("linear-shape-mismatch-4d",
         "linear", lambda L: L.F.linear(L.T(r(2, 3, 1, 5)), L.T(WL)),
         "Linear", lambda L: L.Linear(4, 3)(L.T(r(2, 3, 1, 5)))),
    Case("linear-input-0d",
         "linear", lambda L: L.F.linear(L.T(np.float32(1.0)), L.T(WL)),
         "Linear", lambda L: L.Linear(4, 3)(L.T(np.float32(1.0)))),
    Case("linear-weight-0d",
         "linear", lambda L: L.F.linear(L.T(r(2, 4)), L.T(np.float32(1.0)))),
    Case("linear-weight-3d",
         "linear", lambda L: L.F.linear(L.T(r(2, 4)), L.T(r(1, 3, 4)))),
    Case("linear-bias-wrong-size",
         "linear", lambda L: L.F.linear(L.T(r(2, 4)), L.T(WL), L.T(r(5))),
         "Linear", lambda L: _linear_bias(L, r(5))),
    Case("linear-negative-in-features",
         layer="Linear", module=lambda L: L.Linear(-1, 3)),
    Case("linear-negative-out-features",
         layer="Linear", module=lambda L: L.Linear(4, -3)),
]

# cat, and the concatenation inside DenseLayer / DenseBlock --------------------
CAT = [
    # the same (non-tensor) object goes to both: torch names its type
    Case("cat-of-an-array", "cat", lambda L: L.cat(r(2, 2))),
    Case("cat-of-an-int", "cat", lambda L: L.cat(5)),
    Case("cat-empty-list",
         "cat", lambda L: L.cat([]),
         "DenseLayer", lambda L: L.DenseLayer(4, 2, 2)([])),
    Case("cat-empty-list-block",
         layer="DenseLayer", module=lambda L: L.DenseBlock(2, 4, 2, 2)([])),
    Case("cat-zero-dim",
         "cat", lambda L: L.cat([L.T(np.float32(1.0)), L.T(np.float32(2.0))])),
    Case("cat-dim-out-of-range",
         "cat", lambda L: L.cat([L.T(r(2, 3))], dim=2)),
    Case("cat-negative-dim-out-of-range",
         "cat", lambda L: L.cat([L.T(r(2, 3))], dim=-3)),
    Case("cat-ndim-mismatch",
         "cat", lambda L: L.cat([L.T(r(2, 2, 8, 8)), L.T(r(2, 8, 8))], dim=1),
         "DenseLayer", lambda L: L.DenseLayer(4, 2, 2)([L.T(r(2, 2, 8, 8)), L.T(r(2, 8, 8))])),
    Case("cat-ndim-mismatch-block",
         layer="DenseLayer",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)([L.T(r(2, 2, 8, 8)), L.T(r(2, 8, 8))])),
    Case("cat-size-mismatch-dim-0",
         "cat", lambda L: L.cat([L.T(r(2, 3)), L.T(r(2, 4))])),
    Case("cat-size-mismatch",
         "cat", lambda L: L.cat([L.T(r(2, 2, 8, 8)), L.T(r(2, 2, 6, 8))], dim=1),
         "DenseLayer", lambda L: L.DenseLayer(4, 2, 2)([L.T(r(2, 2, 8, 8)),
                                                        L.T(r(2, 2, 6, 8))])),
    Case("cat-size-mismatch-block",
         layer="DenseLayer",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)([L.T(r(2, 2, 8, 8)), L.T(r(2, 2, 6, 8))])),
    Case("cat-batch-mismatch-block",
         layer="DenseLayer",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)([L.T(r(2, 2, 8, 8)), L.T(r(3, 2, 8, 8))])),
]

# the document's blocks -------------------------------------------------------


def _eval(module):
    return module.eval()


BLOCKS = [
    # SEAttention: `b, c, _, _ = x.size()`, then its Linear layers
    Case("se-input-3d", layer="SEAttention",
         module=lambda L: L.SEAttention(16, 4)(L.T(r(16, 4, 4)))),
    Case("se-input-2d", layer="SEAttention",
         module=lambda L: L.SEAttention(16, 4)(L.T(r(16, 4)))),
    Case("se-input-5d", layer="SEAttention",
         module=lambda L: L.SEAttention(16, 4)(L.T(r(1, 16, 4, 4, 1)))),
    Case("se-channel-mismatch", layer="Linear",
         module=lambda L: L.SEAttention(16, 4)(L.T(r(2, 8, 4, 4)))),
    Case("se-channel-mismatch-eval", layer="Linear",
         module=lambda L: _eval(L.SEAttention(16, 4))(L.T(r(2, 8, 4, 4)))),
    Case("se-fc1-bias-wrong-size", layer="Linear",
         module=lambda L: _se_with_fc1_bias(L, 3)),
    Case("se-fc1-bias-wrong-size-eval", layer="Linear",
         module=lambda L: _se_with_fc1_bias(L, 5, eval_mode=True)),
    Case("se-reduction-0", layer="SEAttention",
         module=lambda L: L.SEAttention(16, 0)),
    # ResidualBlock: conv1 -> bn -> relu -> conv2 -> bn, `out + residual`
    Case("residual-input-3d", layer="BatchNorm2d",
         module=lambda L: L.ResidualBlock(4, 4)(L.T(r(4, 8, 8)))),
    Case("residual-input-2d", layer="Conv2d",
         module=lambda L: L.ResidualBlock(4, 4)(L.T(r(8, 8)))),
    Case("residual-input-5d", layer="Conv2d",
         module=lambda L: L.ResidualBlock(4, 4)(L.T(r(1, 2, 4, 8, 8)))),
    Case("residual-channel-mismatch", layer="Conv2d",
         module=lambda L: L.ResidualBlock(4, 4)(L.T(r(1, 3, 8, 8)))),
    Case("residual-channel-mismatch-eval", layer="Conv2d",
         module=lambda L: _eval(L.ResidualBlock(4, 4))(L.T(r(1, 3, 8, 8)))),
    Case("residual-residual-channels-mismatch", layer="ResidualBlock",
         module=lambda L: L.ResidualBlock(4, 8)(L.T(r(2, 4, 8, 8)))),
    Case("residual-residual-channels-mismatch-eval", layer="ResidualBlock",
         module=lambda L: _eval(L.ResidualBlock(4, 8))(L.T(r(2, 4, 8, 8)))),
    Case("residual-residual-size-mismatch", layer="ResidualBlock",
         module=lambda L: L.ResidualBlock(4, 4, stride=[2, 1])(L.T(r(2, 4, 8, 8)))),
    Case("residual-residual-size-mismatch-eval", layer="ResidualBlock",
         module=lambda L: _eval(L.ResidualBlock(4, 4, stride=[2, 1]))(L.T(r(2, 4, 8, 8)))),
    Case("residual-one-value-per-channel", layer="BatchNorm2d",
         module=lambda L: L.ResidualBlock(4, 4)(L.T(r(1, 4, 1, 1)))),
    Case("residual-kernel-larger-than-input", layer="Conv2d",
         module=lambda L: L.ResidualBlock(4, 4)(L.T(r(1, 4, 0, 3)))),
    Case("residual-stride-0", layer="Conv2d",
         module=lambda L: L.ResidualBlock(4, 4, stride=[0, 1])(L.T(r(2, 4, 8, 8)))),
    Case("residual-stride-0-eval", layer="Conv2d",
         module=lambda L: _eval(L.ResidualBlock(4, 4, stride=[1, 0]))(L.T(r(2, 4, 8, 8)))),
    Case("residual-stride-one-value", layer="ResidualBlock",
         module=lambda L: L.ResidualBlock(4, 4, stride=[1])),
    # DenseLayer: cat(list) -> bn1 -> relu -> conv1 -> bn2 -> relu -> conv2
    Case("dense-layer-input-3d", layer="BatchNorm2d",
         module=lambda L: L.DenseLayer(4, 2, 2)([L.T(r(4, 8, 8))])),
    Case("dense-layer-input-5d", layer="BatchNorm2d",
         module=lambda L: L.DenseLayer(4, 2, 2)([L.T(r(1, 2, 4, 8, 8))])),
    Case("dense-layer-channel-mismatch", layer="BatchNorm2d",
         module=lambda L: L.DenseLayer(4, 2, 2)([L.T(r(2, 3, 8, 8))])),
    Case("dense-layer-channel-mismatch-eval", layer="BatchNorm2d",
         module=lambda L: _eval(L.DenseLayer(4, 2, 2))([L.T(r(2, 3, 8, 8))])),
    Case("dense-layer-one-value-per-channel", layer="BatchNorm2d",
         module=lambda L: L.DenseLayer(4, 2, 2)([L.T(r(1, 4, 1, 1))])),
    # DenseBlock: its DenseLayers, then cat
    Case("dense-block-input-3d", layer="BatchNorm2d",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)(L.T(r(4, 8, 8)))),
    Case("dense-block-input-3d-list", layer="BatchNorm2d",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)([L.T(r(4, 8, 8))])),
    Case("dense-block-input-2d", layer="BatchNorm2d",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)(L.T(r(8, 8)))),
    Case("dense-block-input-5d", layer="BatchNorm2d",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)(L.T(r(1, 2, 4, 8, 8)))),
    Case("dense-block-channel-mismatch", layer="BatchNorm2d",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)(L.T(r(2, 3, 8, 8)))),
    Case("dense-block-channel-mismatch-eval", layer="BatchNorm2d",
         module=lambda L: _eval(L.DenseBlock(2, 4, 2, 2))(L.T(r(2, 3, 8, 8)))),
    Case("dense-block-one-value-per-channel", layer="BatchNorm2d",
         module=lambda L: L.DenseBlock(2, 4, 2, 2)(L.T(r(1, 4, 1, 1)))),
    # containers: the layer inside names the error
    Case("sequential-stem-channel-mismatch", layer="Conv2d",
         module=lambda L: L.Sequential(L.Conv2d(3, 4, 7, stride=2, padding=3, bias=False),
                                       L.BatchNorm2d(4))(L.T(r(1, 4, 20, 20)))),
]

CASES = CONV + BATCH_NORM + MAX_POOL + ADAPTIVE_POOL + LINEAR + CAT + BLOCKS
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"

_PARAMS = [pytest.param(c, "functional", id=f"{c.id}[{c.fn}]") for c in CASES
           if c.functional is not None] + \
          [pytest.param(c, "module", id=f"{c.id}[{c.layer}]") for c in CASES
           if c.module is not None]


@pytest.mark.parametrize("case, variant", _PARAMS)
def test_error_is_torchs_prefixed_with_the_layer(case, variant):
    call = case.functional if variant == "functional" else case.module
    prefix = case.fn if variant == "functional" else case.layer

    expected = _outcome(lambda: call(TORCH))
    assert expected is not None, f"{case.id}: torch does not raise here; not an error case"
    if variant == "module":
        # the row names the layer torch raises from (see the module docstring)
        assert _raising_module(expected) == case.layer, (
            f"{case.id}: torch raises from {_raising_module(expected)}, the row says "
            f"{case.layer}: {type(expected).__name__}({str(expected)!r})")
    want = f"{prefix}: {_torch_message(expected)}"

    got = _outcome(lambda: call(SB))
    assert got is not None, (
        f"skipblocks does not raise; torch raises {type(expected).__name__}: {want!r}")
    # README.md documents no subclass relation for these errors: the type is torch's.
    assert type(got) is type(expected) and _canonical(str(got)) == _canonical(want), (
        f"\n  skipblocks: {type(got).__name__}: {str(got)!r}"
        f"\n  expected:   {type(expected).__name__}: {want!r}")


# ---------------------------------------------------------------------------
# departures README.md documents: skipblocks' own exact message
# ---------------------------------------------------------------------------

README_COMPLEX = "Complex, object and string input raise `TypeError`."
README_CONV_LIMIT = ("A convolution's kernel size, stride, padding or dilation above "
                     "2\u00b3\u00b9\u22121 raises `ValueError`, where torch computes")
README_NOT_IMPLEMENTED = ("torch arguments skipblocks does not implement (`padding_mode` other "
                          "than `'zeros'`, a `device` other than the CPU, a `dtype` other than "
                          "float32 or float64, `return_indices=True`) raise "
                          "`NotImplementedError` instead of being ignored.")
README_INPLACE = ("`ReLU(inplace=True)` / `functional.relu(x, inplace=True)`, which write into "
                  "`x` when it is a writable float32 or float64 array and raise `ValueError` "
                  "otherwise (rather than silently returning a copy)")
README_RUNNING_STATS = ("`functional.batch_norm(..., training=True)`, which updates the "
                        "running-statistics arrays passed in place; they must be writable "
                        "C-contiguous arrays of the computation's dtype (float32 or float64), "
                        "else it raises.")


def _real_only(layer, dtype="complex64", what="input"):
    return (f"{layer}: {what} must hold real numbers (float, int or bool), got an array of "
            f"dtype {dtype}; skipblocks computes in float32 or float64")


def _conv_limit(layer, stride=(1, 1), padding=(0, 0), dilation=(1, 1), kernel=(3, 3)):
    return (f"{layer}: stride {stride}, padding {padding}, dilation {dilation} and kernel size "
            f"{kernel} must each be at most {2**31 - 1}")


def _inplace(layer, kind):
    return (f"{layer}: inplace=True writes the result into its input, which must be a writable "
            f"float32 or float64 numpy array; got a {kind}. Use inplace=False to get a new "
            "array.")


def _readonly(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


XC = r(1, 2, 8, 8).astype(np.complex64)


class Departure:
    """``call(L)`` on skipblocks raises ``error(message)``; torch does something
    else (computes, or raises another error) -- checked too."""

    def __init__(self, id, call, error, message, readme):
        self.id, self.call, self.error, self.message, self.readme = \
            id, call, error, message, readme


def _complex_rows():
    xc4 = XB.astype(np.complex64)
    return [
        Departure("complex-conv2d", lambda L: L.F.conv2d(L.T(XC), L.T(W)),
                  TypeError, _real_only("conv2d"), README_COMPLEX),
        Departure("complex-conv2d-weight",
                  lambda L: L.F.conv2d(L.T(X), L.T(W.astype(np.complex64))),
                  TypeError, _real_only("conv2d", what="weight"), README_COMPLEX),
        Departure("complex-Conv2d", lambda L: L.Conv2d(2, 3, 3)(L.T(XC)),
                  TypeError, _real_only("Conv2d"), README_COMPLEX),
        Departure("complex-batch_norm",
                  lambda L: L.F.batch_norm(L.T(xc4), L.T(zeros(3)), L.T(ones(3))),
                  TypeError, _real_only("batch_norm"), README_COMPLEX),
        Departure("complex-BatchNorm2d", lambda L: L.BatchNorm2d(3)(L.T(xc4)),
                  TypeError, _real_only("BatchNorm2d"), README_COMPLEX),
        Departure("complex-relu", lambda L: L.F.relu(L.T(XC)),
                  TypeError, _real_only("relu"), README_COMPLEX),
        Departure("complex-ReLU-inplace", lambda L: L.ReLU(inplace=True)(L.T(XC)),
                  TypeError, _real_only("ReLU"), README_COMPLEX),
        Departure("complex-sigmoid", lambda L: L.F.sigmoid(L.T(XC)),
                  TypeError, _real_only("sigmoid"), README_COMPLEX),
        Departure("complex-Sigmoid", lambda L: L.Sigmoid()(L.T(XC)),
                  TypeError, _real_only("Sigmoid"), README_COMPLEX),
        Departure("complex-max_pool2d", lambda L: L.F.max_pool2d(L.T(XC), 2),
                  TypeError, _real_only("max_pool2d"), README_COMPLEX),
        Departure("complex-MaxPool2d", lambda L: L.MaxPool2d(2)(L.T(XC)),
                  TypeError, _real_only("MaxPool2d"), README_COMPLEX),
        Departure("complex-adaptive_avg_pool2d", lambda L: L.F.adaptive_avg_pool2d(L.T(XC), 2),
                  TypeError, _real_only("adaptive_avg_pool2d"), README_COMPLEX),
        Departure("complex-AdaptiveAvgPool2d", lambda L: L.AdaptiveAvgPool2d(2)(L.T(XC)),
                  TypeError, _real_only("AdaptiveAvgPool2d"), README_COMPLEX),
        Departure("complex-linear",
                  lambda L: L.F.linear(L.T(r(2, 4).astype(np.complex64)), L.T(WL)),
                  TypeError, _real_only("linear"), README_COMPLEX),
        Departure("complex-Linear", lambda L: L.Linear(4, 3)(L.T(r(2, 4).astype(np.complex64))),
                  TypeError, _real_only("Linear"), README_COMPLEX),
        Departure("complex-cat", lambda L: L.cat([L.T(r(2, 3)), L.T(XC[0, 0, :2, :3])]),
                  TypeError, _real_only("cat", what="tensor number 1"), README_COMPLEX),
        Departure("complex-SEAttention", lambda L: L.SEAttention(16, 4)(
                      L.T(r(2, 16, 4, 4).astype(np.complex64))),
                  TypeError, _real_only("SEAttention"), README_COMPLEX),
        Departure("complex-ResidualBlock", lambda L: L.ResidualBlock(2, 2)(L.T(XC)),
                  TypeError, _real_only("ResidualBlock"), README_COMPLEX),
        # a list: the element is named as cat names it, the layer is the one called
        Departure("complex-DenseLayer", lambda L: L.DenseLayer(2, 2, 2)([L.T(XC)]),
                  TypeError, _real_only("DenseLayer", what="tensor number 0"), README_COMPLEX),
        Departure("complex-DenseBlock", lambda L: L.DenseBlock(2, 2, 2, 2)(L.T(XC)),
                  TypeError, _real_only("DenseBlock"), README_COMPLEX),
    ]


def _inplace_rows():
    return [
        Departure("inplace-relu-read-only", lambda L: L.F.relu(L.T(_readonly(X)), inplace=True),
                  ValueError, _inplace("relu", "read-only float32 array"), README_INPLACE),
        Departure("inplace-ReLU-read-only", lambda L: L.ReLU(inplace=True)(L.T(_readonly(X))),
                  ValueError, _inplace("ReLU", "read-only float32 array"), README_INPLACE),
        Departure("inplace-relu-float16",
                  lambda L: L.F.relu(L.T(X.astype(np.float16)), inplace=True),
                  ValueError, _inplace("relu", "float16 array"), README_INPLACE),
        Departure("inplace-ReLU-int32",
                  lambda L: L.ReLU(inplace=True)(L.T(X.astype(np.int32))),
                  ValueError, _inplace("ReLU", "int32 array"), README_INPLACE),
    ]


def _unsupported_rows():
    return [
        Departure("padding-mode-reflect", lambda L: L.Conv2d(2, 3, 3, padding_mode="reflect"),
                  NotImplementedError,
                  "Conv2d: padding_mode='reflect' is not supported by skipblocks (only 'zeros')",
                  README_NOT_IMPLEMENTED),
        Departure("conv-device-meta", lambda L: L.Conv2d(2, 3, 3, device="meta"),
                  NotImplementedError,
                  "Conv2d: skipblocks computes on the CPU only; got device='meta'",
                  README_NOT_IMPLEMENTED),
        Departure("batchnorm-device-meta", lambda L: L.BatchNorm2d(3, device="meta"),
                  NotImplementedError,
                  "BatchNorm2d: skipblocks computes on the CPU only; got device='meta'",
                  README_NOT_IMPLEMENTED),
        Departure("linear-dtype-float16", lambda L: L.Linear(4, 3, dtype=torch.float16),
                  NotImplementedError,
                  "Linear: skipblocks computes in float32 or float64 only; got "
                  "dtype=torch.float16",
                  README_NOT_IMPLEMENTED),
        Departure("max_pool2d-return-indices",
                  lambda L: L.F.max_pool2d(L.T(XP), 2, return_indices=True),
                  NotImplementedError,
                  "max_pool2d: return_indices=True is not supported by skipblocks",
                  README_NOT_IMPLEMENTED),
        Departure("MaxPool2d-return-indices", lambda L: L.MaxPool2d(2, return_indices=True),
                  NotImplementedError,
                  "MaxPool2d: return_indices=True is not supported by skipblocks",
                  README_NOT_IMPLEMENTED),
    ]


def _conv_limit_rows():
    return [
        Departure("conv2d-stride-over-int32",
                  lambda L: L.F.conv2d(L.T(X), L.T(W), stride=BIG),
                  ValueError, _conv_limit("conv2d", stride=(BIG, BIG)), README_CONV_LIMIT),
        Departure("Conv2d-stride-over-int32",
                  lambda L: L.Conv2d(2, 3, 3, stride=(1, BIG))(L.T(X)),
                  ValueError, _conv_limit("Conv2d", stride=(1, BIG)), README_CONV_LIMIT),
        Departure("conv2d-dilation-over-int32",
                  lambda L: L.F.conv2d(L.T(X), L.T(r(3, 2, 1, 1)), dilation=BIG),
                  ValueError, _conv_limit("conv2d", dilation=(BIG, BIG), kernel=(1, 1)),
                  README_CONV_LIMIT),
        Departure("Conv2d-padding-over-int32",
                  lambda L: L.Conv2d(2, 3, 3, stride=BIG, padding=(BIG, 0))(L.T(X)),
                  ValueError, _conv_limit("Conv2d", stride=(BIG, BIG), padding=(BIG, 0)),
                  README_CONV_LIMIT),
    ]


README_NOT_TORCH_PATH = ("Where torch's message describes a path skipblocks does not have, "
                        "skipblocks says what is wrong instead")


def _not_torch_path_rows():
    return [
        Departure("conv2d-weight-3d",
                  lambda L: L.F.conv2d(L.T(X), L.T(r(3, 2, 3))), RuntimeError,
                  "conv2d: weight should be 4-D (out_channels, in_channels/groups, kH, kW), "
                  "but got weight of size [3, 2, 3]", README_NOT_TORCH_PATH),
        Departure("batch_norm-input-1d",
                  lambda L: L.F.batch_norm(L.T(r(3)), L.T(zeros(3)), L.T(ones(3))), ValueError,
                  "batch_norm: expected at least 2D input (got 1D input of size [3])",
                  README_NOT_TORCH_PATH),
        Departure("batch_norm-input-0d",
                  lambda L: L.F.batch_norm(L.T(np.float32(1.0)), L.T(zeros(3)), L.T(ones(3))),
                  ValueError, "batch_norm: expected at least 2D input (got 0D input of size [])",
                  README_NOT_TORCH_PATH),
        Departure("BatchNorm2d-eps-int-0-train",
                  lambda L: L.BatchNorm2d(3, eps=0)(L.T(XB)), ValueError,
                  "BatchNorm2d: batch_norm eps must be positive during training, but got 0.0",
                  "a BatchNorm eps that is an integer is printed as a float"),
    ]


def _running_stats_rows():
    return [
        Departure("batch_norm-train-read-only-running-mean",
                  lambda L: L.F.batch_norm(L.T(XB), L.T(_readonly(zeros(3))), L.T(ones(3)),
                                           training=True),
                  ValueError, "batch_norm: running_mean is read-only, so training cannot update "
                  "it in place (pass a writable array, or training=False)", README_RUNNING_STATS),
    ]


DEPARTURES = (_complex_rows() + _inplace_rows() + _unsupported_rows() + _conv_limit_rows()
              + _running_stats_rows() + _not_torch_path_rows())
assert len({d.id for d in DEPARTURES}) == len(DEPARTURES)


@pytest.mark.parametrize("row", DEPARTURES, ids=lambda d: d.id)
def test_documented_departure_has_skipblocks_exact_message(row):
    """README.md documents each of these departures (``row.readme`` quotes the
    sentence); skipblocks' message is then its own, given here exactly."""
    theirs = _outcome(lambda: row.call(TORCH))
    # the departure is real: torch does not raise skipblocks' error with its own wording
    if theirs is not None:
        layer = row.message.split(":", 1)[0]
        assert not (type(theirs) is row.error
                    and f"{layer}: {_torch_message(theirs)}" == row.message), (
            f"{row.id}: torch raises the same error; move the row to CASES")
    got = _outcome(lambda: row.call(SB))
    assert got is not None, f"skipblocks does not raise; README: {row.readme}"
    assert type(got) is row.error and str(got) == row.message, (
        f"\n  skipblocks: {type(got).__name__}: {str(got)!r}"
        f"\n  expected:   {row.error.__name__}: {row.message!r}"
        f"\n  README:     {row.readme}")

"""Planned networks: eval-mode forwards that keep their feature maps in a
channel-blocked layout from layer to layer.

A channel-blocked map (NCHW16c for float32, NCHW8c for float64; see
``sb_conv2d_fusion`` in csrc/include/skipblocks.h) stores the values of 16
consecutive channels of one pixel side by side: a (N, C, H, W) map is held
as an (N, ceil(C/16), H, W, 16) array whose lanes past C are zero. The
convolutions' pixel-row tiles read 16 channels of a pixel from one cache
line there (NCHW spreads them over 16) and store their pixel-major results
without a transpose; the numbers are the same bits as in NCHW, since every
sum runs over the same terms in the same order (except which NaN's sign and
payload survive where a sum and a residual are both NaN, which differs
between the NCHW path's own vector and scalar stores too).

A network whose forward can be planned converts its input once, runs each
layer on blocked maps, and converts back before the layers that need NCHW
(the final pooling and the classifier). Users only ever see NCHW arrays.
The plan applies in eval mode, on float32 input, where no module below the
network carries a hook and every part is the standard module the plan
knows (a replaced or subclassed part runs its own forward: the network then
takes its layer-by-layer path); everything else keeps that path. A plan
is built from the modules as they are and cached per input shape until any
module changes (cached_plan, module.state_epoch), so it is never stale; the
packed weights it uses are the layers' own cache, keyed on their weight
versions.
"""
import numbers

import numpy as np

from . import _C, runtime
from . import functional as F
from .module import state_epoch
from .containers import Sequential, _foldable
from .layers import BatchNorm2d, Conv2d, MaxPool2d, ReLU

__all__ = []


# Channels per block of a float32 map (the lanes of _C.to_blocked's result).
LANES_F32 = _C.to_blocked("Blocked", np.zeros((1, 1, 1, 1), np.float32)).shape[-1]


class Blocked:
    """A channel-blocked map: ``data`` (N, ceil(C/B), H, W, B) and its
    ``channels`` C."""

    __slots__ = ("data", "channels")
    ndim = 4  # what _foldable asks of an input

    def __init__(self, data, channels):
        self.data = data
        self.channels = channels

    @property
    def shape(self):
        n, _, h, w, _ = self.data.shape
        return (n, self.channels, h, w)

    @property
    def dtype(self):
        return self.data.dtype


def own_forward(module):
    """Whether a forward (or _forward) is set on the module instance: a
    user's patch, or parity's recording wrappers, which must run -- a plan
    then leaves that module to its layer-by-layer path."""
    return "forward" in module.__dict__ or "_forward" in module.__dict__


def to_blocked(x, layer):
    return Blocked(_C.to_blocked(layer, x), x.shape[1])


def to_nchw(b, layer):
    return _C.from_blocked(layer, b.data, b.channels)


def _epoch_values(module, attribute):
    """The dict kept on ``module`` as ``attribute`` for the current state
    epoch (module.state_epoch), emptied whenever the epoch has moved: any
    change of any module's parameters, buffers, attributes or modes."""
    epoch = state_epoch()
    cache = module.__dict__.get(attribute)
    if cache is None or cache[0] != epoch:
        cache = (epoch, {})
        object.__setattr__(module, attribute, cache)
    return cache[1]


def epoch_cached(module, key, build):
    """build()'s result, kept on ``module`` under ``key`` while no module
    anywhere has changed (_epoch_values, as cached_plan): what a planned
    forward reads from its modules on every call (arguments, packed
    weights), gathered once and never stale."""
    values = _epoch_values(module, "_prepared_cache")
    if key not in values:
        values[key] = build()
    return values[key]


def _conv_args(conv_layer, fold):
    padding, extra = conv_layer._padding_args()
    return (conv_layer.weight, conv_layer.bias, conv_layer.stride, padding,
            conv_layer.dilation, conv_layer.groups, conv_layer._packed_weights(fold), extra,
            conv_layer.weight.shape[0])


def conv(conv_layer, x, fold=None, relu=False, residual=None, out_blocked=True):
    """``conv_layer`` with an eval-mode BatchNorm ``fold`` folded in, then
    ``residual`` (Blocked) added and ``relu`` applied as its tiles are
    stored (Conv2d._conv's fusions) on x, an NCHW array or a Blocked map;
    the result Blocked (or NCHW with out_blocked False)."""
    in_blocked = isinstance(x, Blocked)
    weight, bias, stride, padding, dilation, groups, packed, extra, channels = epoch_cached(
        conv_layer, ("conv", fold), lambda: _conv_args(conv_layer, fold))
    out = _C.conv2d("Conv2d", x.data if in_blocked else x, weight, bias, stride, padding,
                    dilation, groups, packed=packed, relu=relu,
                    residual=None if residual is None else residual.data,
                    padding_extra=extra, in_blocked=in_blocked, out_blocked=out_blocked)
    return Blocked(out, channels) if out_blocked else out


def max_pool(pool, x):
    """The MaxPool2d ``pool`` on the Blocked map x (pool_params checked it)."""
    kernel, stride, padding, dilation = pool_params(pool)
    out = _C.max_pool2d("MaxPool2d", x.data, kernel, stride, padding, dilation,
                        bool(pool.ceil_mode), blocked_channels=x.channels)
    return Blocked(out, x.channels)


def transition_pool(fold, x):
    """relu(bn(x)) through a 2x2 average pool (stride 2, no padding) on the
    Blocked map x, in one pass: the eval-mode BatchNorm2d whose
    ``_fold_args()`` is ``fold`` (checked by the caller's plan) applied as
    the NCHW path applies it, then the pool, the same bits."""
    out = _C.avg_pool2d("AvgPool2d", x.data, (2, 2), (2, 2), (0, 0), False, True, None,
                        blocked_channels=x.channels, bn=fold, relu=True)
    return Blocked(out, x.channels)


def pool_params(pool):
    """MaxPool2d's (kernel, stride, padding, dilation) as pairs, normalised
    as F.max_pool2d does (an int, a 1- or 2-sequence; no stride: the
    kernel), or None when they are not such (it then raises its error)."""
    try:
        kernel = F.pair(pool.kernel_size, "kernel_size", "MaxPool2d", "max_pool2d")
        stride = pool.stride
        stride = kernel if stride is None or (not isinstance(stride, numbers.Integral)
                                               and len(tuple(stride)) == 0) \
            else F.pair(stride, "stride", "MaxPool2d", "max_pool2d")
        padding = F.pair(pool.padding, "padding", "MaxPool2d", "max_pool2d")
        dilation = F.pair(pool.dilation, "dilation", "MaxPool2d", "max_pool2d")
    except (TypeError, ValueError, RuntimeError):
        return None
    return kernel, stride, padding, dilation


# ---- plans: checked whole before anything runs ---------------------------

class _Shape:
    """The shape of a map as a plan check walks the network: ``ndim`` and
    ``shape`` are all _foldable and the shape helpers ask of an input."""

    ndim = 4

    def __init__(self, shape):
        self.shape = tuple(shape)


# Convolution parameters a plan takes: far beyond any network's, and small
# enough that the blocked staging always fits its workspace (the NCHW path
# falls back to the direct loop for parameters near 2^31).
_PARAM_MAX = 1 << 16


def _int_pair(value):
    return type(value) is tuple and len(value) == 2 and all(type(v) is int for v in value)


def conv_out_shape(conv_layer, shape):
    """conv_layer's output shape on an input of ``shape``, or None when it
    has no pixel or parameters a plan does not take (the layer-by-layer path
    then computes it, or raises torch's error)."""
    n, _, h, w = shape
    padding, stride, dilation = conv_layer._symmetric_padding(), conv_layer.stride, \
        conv_layer.dilation
    if not (_int_pair(padding) and _int_pair(stride) and _int_pair(dilation)):
        return None
    kh, kw = conv_layer.weight.shape[2:]
    if not (0 <= min(padding) and 0 < min(stride + dilation)
            and max(padding + stride + dilation + (kh, kw)) <= _PARAM_MAX):
        return None
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return (n, conv_layer.weight.shape[0], oh, ow) if oh > 0 and ow > 0 else None


def conv_fits(conv_layer, bn, shape):
    """The output shape of ``conv_layer`` (then the BatchNorm ``bn``, folded,
    or None) on a blocked float32 map of ``shape``, when it runs there with
    the result the layer-by-layer path gives -- the exact Conv2d (and
    BatchNorm2d) type, an eval-mode BatchNorm on its running statistics,
    symmetric padding, one group, the channels it expects, an output tiled
    as pixel rows -- else None."""
    if type(conv_layer) is not Conv2d or (bn is not None and type(bn) is not BatchNorm2d):
        return None
    params = conv_layer.__dict__["_parameters"]
    weight, bias = params.get("weight"), params.get("bias")
    if not (isinstance(weight, np.ndarray) and weight.dtype == np.float32 and weight.ndim == 4
            and (bias is None or (isinstance(bias, np.ndarray) and bias.dtype == np.float32))
            and conv_layer.groups == 1 and weight.shape[1] == shape[1]
            and conv_layer._packable() and conv_layer._symmetric_padding() is not None
            and _C.conv2d_blocked_ok(weight.shape[0], 1)):
        return None
    if bn is not None and not _foldable(conv_layer, bn, _Shape(shape)):
        return None
    return conv_out_shape(conv_layer, shape)


def pool_out_shape(pool, shape):
    """MaxPool2d's output shape on ``shape`` by torch's pooling_output_shape,
    or None when the pool is not a plain one (return_indices) or its
    parameters are not ones it accepts (it then raises its own error)."""
    if type(pool) is not MaxPool2d or pool.return_indices:
        return None
    params = pool_params(pool)
    if params is None:
        return None
    k, s, p, d = params
    if min(k + s + d) < 1 or min(p) < 0 or max(k + s + d + p) > _PARAM_MAX \
            or any(pad > ((kk - 1) * dd + 1) // 2 or pad > kk // 2
                   for pad, kk, dd in zip(p, k, d)):
        return None
    out = []
    for size, kk, ss, pp, dd in zip(shape[2:], k, s, p, d):
        numerator = size + 2 * pp - dd * (kk - 1) - 1
        o = (numerator + (ss - 1 if pool.ceil_mode else 0)) // ss + 1
        if pool.ceil_mode and (o - 1) * ss >= size + pp:
            o -= 1
        if o < 1:
            return None
        out.append(o)
    return (shape[0], shape[1], out[0], out[1])


def is_relu(module):
    return type(module) is ReLU


def sequential_of(module, *types):
    """The children of ``module`` when it is exactly a Sequential of these
    types in this order, else None."""
    if type(module) is not Sequential:
        return None
    children = list(module._modules.values())
    if len(children) != len(types) or any(type(c) is not t for c, t in zip(children, types)):
        return None
    return children


def residual_fits(downsample, shape, out):
    """``out`` (a residual block's main-branch output shape on an input of
    ``shape``) when the block's residual fits it -- the input itself, or a
    ``downsample`` that is exactly Sequential(Conv2d, BatchNorm2d) with the
    BatchNorm folded -- else None."""
    if downsample is None:
        return out if out == tuple(shape) else None
    ds = sequential_of(downsample, Conv2d, BatchNorm2d)
    return out if ds is not None and conv_fits(ds[0], ds[1], shape) == out else None


def residual(downsample, x):
    """residual_fits' residual of the Blocked map x."""
    if downsample is None:
        return x
    ds_conv, ds_bn = downsample._modules.values()
    return conv(ds_conv, x, fold=ds_bn)


# Blocks a plan takes: type -> (fits(block, shape) -> output shape or None,
# run(block, x Blocked) -> Blocked). Registered by the modules defining them
# (blocks.py, unet.py, models/).
BLOCKS = {}


def register_block(cls, fits, run):
    BLOCKS[cls] = (fits, run)


def sequence_plan(modules, shape):
    """The steps that run ``modules`` (a Sequential's children) on a map of
    ``shape`` as _run_sequence does -- Conv2d with a following eval-mode
    BatchNorm2d folded and a ReLU after it fused, MaxPool2d, registered
    blocks -- and the output shape; None when any part is not one of these
    or does not fit."""
    steps, i = [], 0
    while i < len(modules):
        module = modules[i]
        if own_forward(module):
            return None
        if type(module) is Conv2d:
            follower = modules[i + 1] if i + 1 < len(modules) else None
            if type(follower) is BatchNorm2d:
                # _run_sequence folds it (when it cannot, it calls both: no plan)
                shape = conv_fits(module, follower, shape)
                relu = i + 2 < len(modules) and is_relu(modules[i + 2])
                steps.append(("conv", module, follower, relu))
                i += 3 if relu else 2
            else:
                shape = conv_fits(module, None, shape)
                steps.append(("conv", module, None, False))
                i += 1
        elif type(module) is MaxPool2d:
            shape = pool_out_shape(module, shape)
            steps.append(("pool", module))
            i += 1
        elif type(module) in BLOCKS:
            shape = BLOCKS[type(module)][0](module, shape)
            steps.append(("block", module))
            i += 1
        else:
            return None
        if shape is None:
            return None
    return steps, shape


def run_steps(steps, x):
    """Runs sequence_plan's steps on x (NCHW for the first convolution, or
    Blocked); returns the Blocked result."""
    for step in steps:
        if step[0] == "conv":
            x = conv(step[1], x, fold=step[2], relu=step[3])
        else:
            if not isinstance(x, Blocked):
                x = to_blocked(x, "Sequential")
            x = max_pool(step[1], x) if step[0] == "pool" else BLOCKS[type(step[1])][1](step[1], x)
    return x


# Input shapes a network keeps plans for at once (the least recently built
# goes first).
_PLANS_PER_OWNER = 8


def cached_plan(owner, shape, build):
    """build() -- a plan for ``owner`` on an input of ``shape``, or None --
    cached on ``owner`` per shape and reused while no module anywhere has
    changed (module.state_epoch: children, parameters, buffers, attributes,
    modes); the caller checks what the epoch does not cover (plan_input_ok:
    the thread's switches, hooks, the input's type) on every call. A plan
    built once per (model, input shape) and never stale. (Writing a module's
    __dict__ directly, bypassing setattr, is not a change the epoch sees:
    skipblocks.parity's instance wrappers move it on themselves.)"""
    plans = _epoch_values(owner, "_plan_cache")
    if shape in plans:
        return plans[shape]
    plan = build()
    if len(plans) >= _PLANS_PER_OWNER:
        del plans[next(iter(plans))]
    plans[shape] = plan
    return plan


def plan_input_ok(module, x):
    """The module's input and state admit a plan: planning on, eval mode, a
    non-empty float32 NCHW array, and no hook below the module."""
    return (runtime.planning_enabled() and not module.training and type(x) is np.ndarray
            and x.ndim == 4 and x.dtype == np.float32 and x.shape[0] > 0
            and runtime.fusion_enabled(*module.children()))


def _sequential_plan(seq, shape):
    modules = list(seq._modules.values())
    if not any(type(m) in BLOCKS for m in modules):
        return None
    return sequence_plan(modules, shape)


def planned_sequential(seq, x):
    """A Sequential's forward on channel-blocked maps, or None when no plan
    applies: it must hold a registered block (a chain of single layers
    gains too little to pay for the two conversions)."""
    if not plan_input_ok(seq, x):
        return None
    plan = cached_plan(seq, x.shape, lambda: _sequential_plan(seq, x.shape))
    if plan is None:
        return None
    y = run_steps(plan[0], x)
    return to_nchw(y, "Sequential") if isinstance(y, Blocked) else y

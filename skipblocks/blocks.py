"""The document's blocks (sections 3.1, 3.2 and 4.3 of
shared/seed/000_b831e00f78ae79ec.txt) with its constructor signatures and
state_dict keys.

Where the document's code has a quirk that defines its numbers, we keep it:
ResidualBlock uses one BatchNorm ``bn`` after both convolutions, so in train
mode its running statistics update twice per forward. Where it has a bug, we
do not copy it: its ResidualBlock.forward applies the module-level global
``downsample`` instead of ``self.downsample``, and its Dense_Block.forward
appends to the caller's list.
"""
import numpy as np

from . import _C, _blocked
from . import functional as F
from . import runtime
from .containers import ModuleDict, Sequential, _foldable
from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, ReLU, Sigmoid,
                     _check_factory_kwargs)
from .hooks import has_hooks
from .module import Module, _compute_dtype, writable

__all__ = ["ResidualBlock", "DenseLayer", "DenseBlock", "Dense_Layer", "Dense_Block",
           "SEAttention", "SEResidualBlock"]


def _is(obj, cls):
    """Exactly this skipblocks class: the fused paths call its internals
    directly, so a subclass -- whose forward may do something else -- and
    any other module are called through their own forward instead."""
    return type(obj) is cls


# The document's blocks apply relu as a function (F.relu), not a module.
_FUNCTIONAL_RELU = object()


def _bn_relu(bn, x, relu=_FUNCTIONAL_RELU):
    """relu(bn(x)): with the document's functional ReLU (the default) or a
    plain ReLU module, in one pass over x when bn is our BatchNorm2d; any
    other module or callable (bn, or a user's ``relu``) is called as it
    is (so are modules carrying a hook, skipblocks.hooks)."""
    if relu is not _FUNCTIONAL_RELU and (not _is(relu, ReLU) or has_hooks(relu)):
        return relu(bn(x))
    if _is(bn, BatchNorm2d) and not has_hooks(bn):
        return bn._run(x, relu=True)
    return F.relu(bn(x))


def _add_relu(out, residual, layer, relu=_FUNCTIONAL_RELU):
    """relu(out + residual), the residual blocks' tail: the residual
    converted to out's dtype and broadcast to out's shape (torch's in-place
    ``out += residual``); one pass with the functional ReLU or a plain ReLU
    module, else the addition and then the user's ``relu``."""
    out = F.as_real(out, layer, "output")
    residual = ResidualBlock._match_residual(
        F.as_real(residual, layer, "residual", out.dtype), out.shape, layer)
    if relu is _FUNCTIONAL_RELU or (_is(relu, ReLU) and not has_hooks(relu)):
        return _C.add_relu(layer, out, residual)
    return relu(out + residual)


def _layer_input(prev_features, layer, dtype):
    """A dense layer's input: the concatenation of a list/tuple of feature
    maps (torch.cat's checks and errors), or the one array, in ``dtype``."""
    if isinstance(prev_features, (list, tuple)):
        return np.concatenate(*F._cat_checked(prev_features, 1, layer, dtype))
    return F.as_real(prev_features, layer, "input", dtype)


def _fusable_conv(conv):
    """A Conv2d the fused paths can drive (any user replacement is simply
    called instead)."""
    return _is(conv, Conv2d) and conv._symmetric_padding() is not None


def _in_dtype(dtype, *modules):
    """Every floating parameter and buffer of ``modules`` (their own, not
    their children's) is in ``dtype``: what a fused path, which hands them
    all to one operator, needs (otherwise the layers run one by one, each
    converting its input to its own dtype)."""
    for module in modules:
        d = module.__dict__
        for store in (d["_parameters"], d["_buffers"]):
            for value in store.values():
                if value is not None and value.dtype is not dtype and value.dtype.kind == "f" \
                        and value.dtype != dtype:
                    return False
    return True


# The BatchNorm argument of a folded residual block, which does not read it.
_FOLDED_BN = (None, None, None, None, False, 0.0, 0.0)


class ResidualBlock(Module):
    """The document's basic residual block of ResNet.

    out = relu(bn(conv2(relu(bn(conv1(x))))) + downsample(x)), with the one
    BatchNorm ``bn`` shared by both convolutions, as in the document.
    ``stride`` is a pair: stride[0] for conv1, stride[1] for conv2.
    ``downsample`` may be any module or callable (None: identity).
    ``dtype`` (keyword-only, beyond the document: float32 by default, or
    float64) is the dtype of the block's own layers; a ``downsample`` module
    keeps its own (convert the whole block with ``.double()``). The input,
    and the residual, are converted to the block's dtype (its conv1's)."""

    def __init__(self, in_channels, out_channels, stride=[1, 1], downsample=None, *,
                 dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("ResidualBlock", None, dtype)
        if len(stride) < 2:
            raise IndexError("ResidualBlock: list index out of range")  # the document's stride[1]
        self.conv1 = Conv2d(in_channels, out_channels, kernel_size=3, stride=stride[0],
                            padding=1, bias=False, dtype=dtype)
        self.conv2 = Conv2d(out_channels, out_channels, kernel_size=3, stride=stride[1],
                            padding=1, bias=False, dtype=dtype)
        self.bn = BatchNorm2d(out_channels, dtype=dtype)
        self.downsample = downsample

    def forward(self, x):
        x = F.as_real(x, "ResidualBlock", "input", _compute_dtype(self))  # conv1's dtype
        # The document calls the module-level global `downsample` here; the
        # block's own self.downsample is what it means.
        downsample = self.downsample
        residual = x if downsample is None else F.as_real(
            downsample(x), "ResidualBlock", "residual", x.dtype)
        conv1, conv2, bn = self.conv1, self.conv2, self.bn
        # another rank runs the layers one by one, which raise torch's errors
        # (layers of another dtype than x: the operator refuses them, leaving
        # everything untouched, and returns None)
        if x.ndim == 4 and runtime.fusion_enabled(conv1, conv2, bn) and _fusable_conv(conv1) \
                and _fusable_conv(conv2) and _is(bn, BatchNorm2d):
            out = self._forward_fused(x, residual)
            if out is not None:
                return out
        out = _bn_relu(bn, conv1(x))
        return _add_relu(bn(conv2(out)), residual, "ResidualBlock")

    def _forward_fused(self, x, residual):
        """The same computation in two or four passes, by the residual-block
        operator (csrc/ops/residual_block.c). Eval mode: bn's running
        statistics are folded into both convolutions' packed weights. Train
        mode: bn's batch statistics, updated twice per forward in torch's
        order. When the shapes do not fit the fused plan, or the residual
        does not have the output's shape, this returns None and the layers
        run one by one, which broadcast the residual as torch does, or raise
        torch's errors after torch's side effects."""
        bn = self.bn
        folded = bn._uses_running_stats()
        try:
            conv1 = self.conv1._block_args(bn if folded else None)
            conv2 = self.conv2._block_args(bn if folded else None)
        except (RuntimeError, ValueError):  # bn's shapes do not fold into the weights
            return None
        if folded:  # bn lives in the packed weights
            return _C.residual_block("ResidualBlock", x, residual, _FOLDED_BN, 0.0, True,
                                     conv1, conv2)
        state, factors = bn._state(updates=2)
        running = [a for a in state[2:4] if a is not None]
        with writable(*running):
            out = _C.residual_block("ResidualBlock", x, residual, state, factors[1], False,
                                    conv1, conv2)
        if out is not None:
            bn._record_updates(2)
        return out

    @staticmethod
    def _match_residual(residual, shape, layer="ResidualBlock"):
        if residual.shape == tuple(shape):
            return residual
        # torch broadcasts `out + residual`; allow what broadcasts to out's shape.
        try:
            return np.ascontiguousarray(np.broadcast_to(residual, shape))
        except ValueError:
            pass
        # torch's broadcasting error names the first mismatch from the right
        a, b = tuple(shape), residual.shape
        for i in range(1, max(len(a), len(b)) + 1):
            da = a[-i] if i <= len(a) else 1
            db = b[-i] if i <= len(b) else 1
            if da != db and da != 1 and db != 1:
                raise RuntimeError(
                    f"{layer}: The size of tensor a ({da}) must match the size of "
                    f"tensor b ({db}) at non-singleton dimension {max(len(a), len(b)) - i}")
        raise RuntimeError(f"{layer}: the output has shape {a} but the residual has "
                           f"shape {b}")


class DenseLayer(Module):
    """The document's Dense_Layer: cat(inputs) -> bn1 -> relu -> 1x1 conv1 ->
    bn2 -> relu -> 3x3 conv2, giving ``growthrate`` new channels.
    ``dtype`` (keyword-only, beyond the document): float32 (default) or
    float64; the input is converted to the layer's dtype (its bn1's)."""

    def __init__(self, in_channels, growthrate, bn_size, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("DenseLayer", None, dtype)
        self.bn1 = BatchNorm2d(in_channels, dtype=dtype)
        self.conv1 = Conv2d(in_channels, bn_size * growthrate, kernel_size=1, bias=False,
                            dtype=dtype)
        self.bn2 = BatchNorm2d(bn_size * growthrate, dtype=dtype)
        self.conv2 = Conv2d(bn_size * growthrate, growthrate, kernel_size=3, padding=1,
                            bias=False, dtype=dtype)

    def forward(self, prev_features):
        # the module's dtype decides
        return self._forward(_layer_input(prev_features, "DenseLayer", _compute_dtype(self)))

    def _forward(self, x, out=None):
        """x: one (N, C, H, W) array (possibly a channel slice of DenseBlock's
        output); the new features go to ``out`` when given."""
        return _dense_layer(self.bn1, self.conv1, self.bn2, self.conv2, x, out)



def _planned_residual_fits(block, shape):
    """The output shape of the document's ResidualBlock on a blocked map of
    ``shape`` when a plan runs it as its eval-mode forward does (bn folded
    into both convolutions, the second adding the residual -- its input, or
    its downsample's Conv2d + BatchNorm2d -- and applying the ReLU), else
    None."""
    out = _blocked.conv_fits(block.conv1, block.bn, shape)
    out = out and _blocked.conv_fits(block.conv2, block.bn, out)
    return None if out is None else _blocked.residual_fits(block.downsample, shape, out)


def _planned_residual(block, x):
    """_planned_residual_fits' block on the Blocked map x (the residual
    first, as its forward computes it)."""
    identity = _blocked.residual(block.downsample, x)
    out = _blocked.conv(block.conv1, x, fold=block.bn, relu=True)
    return _blocked.conv(block.conv2, out, fold=block.bn, relu=True, residual=identity)


_blocked.register_block(ResidualBlock, _planned_residual_fits, _planned_residual)

def _dense_layer(layer_bn1, layer_conv1, layer_bn2, layer_conv2, x, out=None,
                 relu1=_FUNCTIONAL_RELU, relu2=_FUNCTIONAL_RELU):
    """conv2(relu(bn2(conv1(relu(bn1(x)))))) for one (N, C, H, W) array x,
    written into ``out`` when given: the document's Dense_Layer (its
    functional ReLUs, the default) and torchvision's _DenseLayer (its ReLU
    modules relu1 and relu2, called as they are when a user replaced them;
    None raises torch's TypeError).

    Fused path, the dense-layer operator (csrc/ops/dense_layer.c): each
    BatchNorm + ReLU is applied to the values as the next convolution
    stages its input (batch statistics in train mode, running statistics
    in eval mode), so neither bn1(x) nor bn2(out1) is ever written. When
    the shapes do not fit it, the layers run one by one, which raise
    torch's errors after torch's side effects."""
    # another rank runs the layers one by one, which raise torch's errors
    plain = all(relu is _FUNCTIONAL_RELU or _is(relu, ReLU) for relu in (relu1, relu2))
    if x.ndim == 4 and plain and runtime.fusion_enabled(layer_bn1, layer_conv1, layer_bn2,
                                                         layer_conv2, relu1, relu2) \
            and _is(layer_bn1, BatchNorm2d) \
            and _is(layer_bn2, BatchNorm2d) and _fusable_conv(layer_conv1) \
            and _fusable_conv(layer_conv2) and (out is None or out.dtype == x.dtype):
        # (layers of another dtype than x: the operator refuses them,
        # leaving everything untouched, and returns None)
        shared = layer_bn2 is layer_bn1  # one BatchNorm updated twice, in order
        bn1, factors = layer_bn1._state(updates=2 if shared else 1)
        bn2 = bn1[:5] + (factors[1],) + bn1[6:] if shared else layer_bn2._state()[0]
        # the buffers the operator updates in place (train mode)
        running = [a for state in (bn1, bn2) if state[4] for a in state[2:4]
                   if a is not None]
        conv1, conv2 = layer_conv1._block_args(), layer_conv2._block_args()
        with writable(*running):
            result = _C.dense_layer("DenseLayer", x, bn1, bn2, conv1, conv2, out=out)
        if result is not None:
            layer_bn1._record_updates(1)
            layer_bn2._record_updates(1)  # the shared one: its second update
            return result
    out1 = layer_conv1(_bn_relu(layer_bn1, x, relu1))
    result = layer_conv2(_bn_relu(layer_bn2, out1, relu2))
    if out is not None:
        out[...] = result
        return out
    return result


def _dense_block(layers, features, dtype, fused_type, layer="DenseBlock"):
    """The concatenation of ``features`` (an array, or a list/tuple of
    them) and the new features of each of ``layers``, each fed the
    concatenation of everything before it: the document's Dense_Block and
    torchvision's _DenseBlock. Layers of exactly ``fused_type`` (which
    have ``_forward(x, out)`` and a ``conv2`` giving their channels) write
    their features straight into their slice of one preallocated output;
    otherwise (a layer replaced by the user, an input that is not 4-D) the
    list algorithm runs, whose layers raise torch's errors."""
    # The first layer's torch.cat and its BatchNorm's 4-D check decide
    # what the block accepts, with their errors (as DenseLayer's).
    features = list(features) if isinstance(features, (list, tuple)) else [features]
    features = [F.as_real(f, layer, "input", dtype) for f in features]
    features, _ = F._cat_checked(features, 1, fused_type.__name__, dtype)
    # (a layer carrying a hook is called, so the hook sees its call)
    if features[0].ndim != 4 or not all(_is(m, fused_type) and not has_hooks(m)
                                        and _is(m.conv2, Conv2d)
                                        and m.conv2.weight.ndim == 4 for m in layers):
        for m in layers:
            features.append(m(features))
        return F.cat(features, dim=1)

    n, _, h, w = features[0].shape
    in_channels = sum(f.shape[1] for f in features)
    # each layer's new channels, as its conv2's weight makes them
    growth = [m.conv2.weight.shape[0] for m in layers]
    output = np.empty((n, in_channels + sum(growth), h, w), dtype=features[0].dtype)
    start = 0
    for f in features:
        output[:, start:start + f.shape[1]] = f
        start += f.shape[1]
    for m, g in zip(layers, growth):
        # output[:, :start] is exactly torch.cat(features so far, dim=1).
        m._forward(output[:, :start], out=output[:, start:start + g])
        start += g
    return output


class DenseBlock(ModuleDict):
    """The document's Dense_Block: ``n_layers`` DenseLayers held in a
    ModuleDict ``block`` (keys dense0, dense1, ...), each fed the
    concatenation of the block's input and every earlier layer's output.

    forward takes one feature map (an array) or a list/tuple of them and
    returns the concatenation of the inputs and all new features. Unlike the
    document, it never appends to the caller's list; and instead of
    re-concatenating a growing list at every layer, it writes each layer's
    features straight into their slice of one preallocated output (in the
    block's dtype). ``dtype`` (keyword-only, beyond the document): float32
    (default) or float64; the input is converted to the block's dtype (its
    first layer's)."""

    def __init__(self, n_layers, in_channels, growthrate, bn_size, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("DenseBlock", None, dtype)
        layers = dict()
        for i in range(n_layers):
            layers["dense{}".format(i)] = DenseLayer(in_channels + i * growthrate,
                                                     growthrate, bn_size, dtype=dtype)
        self.block = ModuleDict(layers)
        self.block._dtype = dtype

    def forward(self, features):
        return _dense_block(list(self.block.values()), features, _compute_dtype(self),
                            DenseLayer)



def _dense_parts(layer):
    """(bn1, conv1, bn2, conv2, relu1, relu2) of the document's DenseLayer
    (functional ReLUs) or torchvision's _DenseLayer, or None for another
    module."""
    if type(layer) is DenseLayer:
        return (layer.bn1, layer.conv1, layer.bn2, layer.conv2, _FUNCTIONAL_RELU,
                _FUNCTIONAL_RELU)
    from .models.densenet import _DenseLayer  # (it imports this module)
    if type(layer) is _DenseLayer:
        return (layer.norm1, layer.conv1, layer.norm2, layer.conv2, layer.relu1, layer.relu2)
    return None


def _dense_block_layers(block):
    from .models.densenet import _DenseBlock
    return list(block.block.values()) if type(block) is DenseBlock else \
        list(block.values()) if type(block) is _DenseBlock else None


def _bn_fits(bn, channels):
    """An eval-mode BatchNorm2d on its running statistics whose arrays the
    dense-layer operator takes for ``channels`` float32 channels."""
    return (_is(bn, BatchNorm2d) and bn._uses_running_stats() and not bn.eps < 0
            and bn.running_mean is not None and bn.running_var is not None
            and all(a is None or (isinstance(a, np.ndarray) and a.shape == (channels,)
                                  and a.dtype == np.float32)
                    for a in (bn.running_mean, bn.running_var, bn.weight, bn.bias)))


def _planned_dense_fits(block, shape):
    """The output shape of a DenseBlock (the document's or torchvision's) on
    a blocked map of ``shape`` when a plan runs it as its eval-mode forward
    does -- every layer a DenseLayer or _DenseLayer in eval mode with plain
    ReLUs, eval-mode BatchNorms on their running statistics, convolutions a
    blocked map takes -- with the input's and every layer's channels whole
    16-lane blocks, so each layer writes its own blocks of the block's
    buffer; else None."""
    layers = _dense_block_layers(block)
    lanes = _blocked.LANES_F32
    n, channels, h, w = shape
    if not layers or channels % lanes:
        return None
    for layer in layers:
        parts = _dense_parts(layer)
        if parts is None or layer.training or _blocked.own_forward(layer):
            return None
        bn1, conv1, bn2, conv2, relu1, relu2 = parts
        if not all(relu is _FUNCTIONAL_RELU or _is(relu, ReLU) for relu in (relu1, relu2)):
            return None
        mid = _blocked.conv_fits(conv1, None, (n, channels, h, w))
        if mid is None or not _bn_fits(bn1, channels) or not _bn_fits(bn2, mid[1]):
            return None
        out = _blocked.conv_fits(conv2, None, mid)
        if out is None or out[2:] != (h, w) or out[1] % lanes:
            return None
        channels += out[1]
    return (n, channels, h, w)


def _planned_dense(block, x):
    """_planned_dense_fits' block on the Blocked map x: one blocked buffer
    for the input and every layer's features (torch.cat's result), each
    layer reading the blocks before its own and writing its own."""
    lanes = _blocked.LANES_F32
    n, start, h, w = x.shape
    calls = _blocked.epoch_cached(block, ("dense", start), lambda: _dense_calls(block, start))
    total = calls[-1][1] * lanes if calls else start
    buffer = np.empty((n, total // lanes, h, w, lanes), dtype=x.data.dtype)
    buffer[:, :start // lanes] = x.data
    for a, b, bn1, bn2, conv1, conv2 in calls:
        result = _C.dense_layer("DenseLayer", buffer[:, :a], bn1, bn2, conv1, conv2,
                                out=buffer[:, a:b], blocked=True)
        if result is None:  # (the checks above make the operator take it)
            raise RuntimeError("DenseLayer: the planned forward's operator refused its "
                               "arguments")
    return _blocked.Blocked(buffer, total)


def _dense_calls(block, start):
    """The dense-layer operator's arguments for each layer of ``block`` on
    ``start`` input channels: the blocks [0, a) it reads, the blocks [a, b)
    it writes, its BatchNorms' states and its convolutions."""
    lanes = _blocked.LANES_F32
    calls = []
    for layer in _dense_block_layers(block):
        bn1, conv1, bn2, conv2 = _dense_parts(layer)[:4]
        end = start + conv2.weight.shape[0]
        calls.append((start // lanes, end // lanes, bn1._state()[0], bn2._state()[0],
                      conv1._block_args(), conv2._block_args()))
        start = end
    return calls



_blocked.register_block(DenseBlock, _planned_dense_fits, _planned_dense)

class SEAttention(Module):
    """The document's Squeeze-and-Excitation module: global average pool ->
    Linear(C, C // r) -> ReLU -> Linear(C // r, C) -> Sigmoid -> scale each
    channel of the input. No biases, as in the document. ``dtype``
    (keyword-only, beyond the document): float32 (default) or float64; the
    input is converted to the module's dtype (its first Linear's)."""

    def __init__(self, channel=512, reduction=16, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("SEAttention", None, dtype)
        if reduction == 0:
            raise ZeroDivisionError("SEAttention: integer division or modulo by zero")
        self.avg_pool = AdaptiveAvgPool2d(1)
        self.fc = Sequential(
            Linear(channel, channel // reduction, bias=False, dtype=dtype),
            ReLU(inplace=True),
            Linear(channel // reduction, channel, bias=False, dtype=dtype),
            Sigmoid(),
        )
        for module in (self.avg_pool, self.fc, self.fc[1], self.fc[3]):
            module._dtype = dtype  # what parameters registered on them later are made in

    def forward(self, x):
        x = F.as_real(x, "SEAttention", "input", _compute_dtype(self))
        if x.ndim != 4:
            # torch fails at `b, c, _, _ = x.size()` with Python's ValueError
            detail = f"not enough values to unpack (expected 4, got {x.ndim})" if x.ndim < 4 \
                else "too many values to unpack (expected 4)"
            raise ValueError(f"SEAttention: {detail}")
        b, c = x.shape[:2]
        if runtime.fusion_enabled(self.avg_pool, self.fc) and self._fusable(c, x.dtype):
            # One C call: pool, both linears, ReLU, sigmoid and the scale
            # run back to back without the GIL and without Python between.
            fc1, fc2 = self.fc[0], self.fc[2]
            return _C.se_attention("SEAttention", x, fc1._packed_weights(),
                                   fc2._packed_weights(), fc1.out_features)
        y = self.avg_pool(x).reshape(b, c)
        y = self.fc(y).reshape(b, c)
        if getattr(y, "dtype", x.dtype) != x.dtype:  # children of another dtype
            y = F.as_real(y, "SEAttention", "scale", x.dtype)
        return _C.channel_scale("SEAttention", x, y)

    def _fusable(self, channels, dtype):
        """The children are still the document's: AdaptiveAvgPool2d(1), and
        Sequential(Linear(C, h), ReLU, Linear(h, C), Sigmoid) with weights
        of those shapes (a mismatch takes the layer-by-layer path, which
        raises torch's error)."""
        pool, fc = self.avg_pool, self.fc
        if not (_is(pool, AdaptiveAvgPool2d) and pool.output_size in (1, (1, 1))
                and _is(fc, Sequential) and len(fc) == 4):
            return False
        fc1, act, fc2, gate = fc[0], fc[1], fc[2], fc[3]
        if not (type(fc1) is Linear and type(act) is ReLU and type(fc2) is Linear
                and type(gate) is Sigmoid):
            return False
        hidden = fc1.out_features
        return (_in_dtype(dtype, fc1, fc2)
                and fc1.weight.shape == (hidden, channels)
                and fc2.weight.shape == (channels, hidden)
                and fc1.in_features == channels and fc2.in_features == hidden
                and fc2.out_features == channels
                and (fc1.bias is None or fc1.bias.shape == (hidden,))
                and (fc2.bias is None or fc2.bias.shape == (channels,)))


class SEResidualBlock(ResidualBlock):
    """The document's ResidualBlock with Squeeze-and-Excitation on its
    residual branch (section 4.2's figure, right):

    out = relu(se(bn(conv2(relu(bn(conv1(x)))))) + downsample(x)),

    with the one shared BatchNorm ``bn`` and the keys of ResidualBlock, plus
    ``se`` = SEAttention(out_channels, reduction). In eval mode ``bn`` is
    folded into both convolutions' packed weights (conv1 applies the ReLU
    as it stores its output), and SE runs as one fused operator; in train
    mode ``bn`` normalises with each batch's statistics and updates its
    running statistics twice per forward, as torch's would. ``dtype``
    (keyword-only): float32 (default) or float64."""

    def __init__(self, in_channels, out_channels, stride=[1, 1], downsample=None,
                 reduction=16, *, dtype=None):
        super().__init__(in_channels, out_channels, stride, downsample, dtype=dtype)
        self.se = SEAttention(out_channels, reduction, dtype=self._dtype)

    def forward(self, x):
        x = F.as_real(x, "SEResidualBlock", "input", _compute_dtype(self))
        downsample = self.downsample
        residual = x if downsample is None else F.as_real(
            downsample(x), "SEResidualBlock", "residual", x.dtype)
        conv1, conv2, bn = self.conv1, self.conv2, self.bn
        if runtime.fusion_enabled(conv1, conv2, bn) and _foldable(conv1, bn, x) \
                and x.dtype == conv1.weight.dtype:
            out = conv1._conv(x, fold=bn, relu=True)
            out = conv2._conv(out, fold=bn) if _foldable(conv2, bn, out) else bn(conv2(out))
        else:
            out = bn(conv2(_bn_relu(bn, conv1(x))))
        return _add_relu(self.se(out), residual, "SEResidualBlock")


# The document's names.
Dense_Layer = DenseLayer
Dense_Block = DenseBlock

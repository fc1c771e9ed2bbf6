"""The torch.nn layers the document uses, with torch's names, constructor
signatures, defaults, attribute names, state_dict keys and repr."""
import math
import numbers
import operator

import numpy as np

from . import _C
from . import functional as F
from . import random as _random
from .module import (Module, _compute_dtype, _computable_dtype, _dtype_error, _dtype_info,
                     to_numpy, writable)

__all__ = ["Conv2d", "BatchNorm2d", "ReLU", "Sigmoid", "MaxPool2d", "AdaptiveAvgPool2d",
           "Linear",
           # conv_transpose2d
           "ConvTranspose2d",
           # pad and dropout; Flatten, Identity
           "Dropout", "Flatten", "Identity", "flatten",
           # avg_pool2d and interpolate
           "AvgPool2d", "Upsample"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_factory_kwargs(layer, device, dtype, parameters=True):
    """torch's device/dtype arguments: only what skipblocks computes with is
    accepted, anything else raises instead of being ignored. Returns the
    module's dtype: np.dtype float32 (``dtype`` None: torch's default) or
    float64, from torch.float32 / torch.float64 (recognised by name, torch is
    not imported), a NumPy dtype or scalar type, or a string NumPy reads
    ('float64'). An integer or bool dtype raises torch's RuntimeError when
    the layer has ``parameters`` (they cannot be integers); float16,
    bfloat16 and complex dtypes (torch accepts them) raise
    NotImplementedError."""
    if device is not None and str(device) != "cpu":
        raise NotImplementedError(f"{layer}: skipblocks computes on the CPU only; got "
                                  f"device={device!r}")
    if dtype is None:
        return np.dtype(np.float32)
    target = _computable_dtype(dtype)
    if target is not None:
        return target
    try:
        _, kind = _dtype_info(dtype)
    except TypeError:
        raise TypeError(f"{layer}: dtype must be a torch or NumPy dtype (float32 or float64), "
                        f"got {dtype!r}") from None
    if kind in "iub" and parameters:
        raise RuntimeError(f"{layer}: Only Tensors of floating point and complex dtype can "
                           "require gradients")
    raise NotImplementedError(_dtype_error(layer, repr(dtype), kind))


def _check_count(layer, name, value, minimum):
    """An integer size argument; a negative one fails when the weights are
    made (_check_shape), as in torch."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_shape(layer, shape):
    """torch's error for a parameter of a negative size (torch.empty's)."""
    negative = [d for d in shape if d < 0]
    if negative:
        raise RuntimeError(f"{layer}: Trying to create tensor with negative dimension "
                           f"{negative[0]}: {list(shape)}")
    return shape


def _check_conv_channels(layer, in_channels, out_channels, groups):
    """_ConvNd's checks of the channel counts and groups, in torch's order;
    returns the counts as ints."""
    in_channels = _check_count(layer, "in_channels", in_channels, 0)
    out_channels = _check_count(layer, "out_channels", out_channels, 0)
    if not isinstance(groups, numbers.Integral) or groups <= 0:
        raise ValueError(f"{layer}: groups must be a positive integer")
    if in_channels % groups != 0:
        raise ValueError(f"{layer}: in_channels must be divisible by groups")
    if out_channels % groups != 0:
        raise ValueError(f"{layer}: out_channels must be divisible by groups")
    return in_channels, out_channels


def _conv_extra_repr(conv):
    """torch's _ConvNd.extra_repr: the arguments that differ from their
    defaults (output_padding exists on transposed convolutions only)."""
    s = f"{conv.in_channels}, {conv.out_channels}, kernel_size={conv.kernel_size}, " \
        f"stride={conv.stride}"
    if conv.padding != (0, 0):
        s += f", padding={conv.padding}"
    if conv.dilation != (1, 1):
        s += f", dilation={conv.dilation}"
    if getattr(conv, "output_padding", (0, 0)) != (0, 0):
        s += f", output_padding={conv.output_padding}"
    if conv.groups != 1:
        s += f", groups={conv.groups}"
    if conv.bias is None:
        s += ", bias=False"
    return s


def _kaiming_uniform_bound(fan_in):
    """torch's default init for conv and linear layers, kaiming_uniform_ with
    a=sqrt(5), is uniform on +-1/sqrt(fan_in); so is the bias."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


class Conv2d(Module):
    """Applies a 2D convolution over an input of several channels, as torch.nn.Conv2d.

    Zero padding only (``padding_mode="zeros"``; the other modes raise
    NotImplementedError). The weights are initialised as torch's default
    (kaiming-uniform), reproducibly after :func:`skipblocks.manual_seed`.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        kernel_size: the kernel's size, an int or a pair (kH, kW).
        stride: the stride, an int or a pair. Default: 1.
        padding: zeros added on both sides, an int, a pair, ``"valid"`` or
            ``"same"`` (stride 1 only). Default: 0.
        dilation: the spacing of the kernel's elements. Default: 1.
        groups: blocked connections from input to output channels; both
            counts must be divisible by it. Default: 1.
        bias: add a learnable bias. Default: True.
        padding_mode: ``"zeros"``. Default: ``"zeros"``.
        device: None or ``"cpu"``.
        dtype: float32 (None, the default) or float64: the parameters' dtype,
            which the layer computes in.

    Shape:
        - Input: (N, C_in, H, W) or (C_in, H, W).
        - Output: (N, C_out, H_out, W_out) or (C_out, H_out, W_out), with
          H_out = floor((H + 2*padding[0] - dilation[0]*(kernel_size[0] - 1) - 1)
          / stride[0] + 1), and W_out alike.

    Attributes:
        weight: (out_channels, in_channels // groups, kH, kW), read-only.
        bias: (out_channels,), or None.

    Example::

        >>> conv = skipblocks.Conv2d(16, 33, 3, stride=2)
        >>> conv(np.random.rand(20, 16, 50, 100)).shape
        (20, 33, 24, 49)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__()
        name = "Conv2d"
        dtype = _check_factory_kwargs(name, device, dtype)
        self._dtype = dtype  # what the parameters below are made in
        in_channels, out_channels = _check_conv_channels(name, in_channels, out_channels,
                                                         groups)
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"{name}: Invalid padding string {padding!r}, should be one of "
                             "{'valid', 'same'}")
        if padding == "same" and F.pair(stride, "stride", name) != (1, 1):
            raise ValueError(f"{name}: padding='same' is not supported for strided "
                             "convolutions")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of "
                             "{" + ", ".join(repr(m) for m in _PADDING_MODES) + "}, but got "
                             f"padding_mode='{padding_mode}'")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not "
                                      "supported by skipblocks (only 'zeros')")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = F.pair(kernel_size, "kernel_size", name)
        self.stride = F.pair(stride, "stride", name)
        if isinstance(padding, str):
            self.padding = padding
        else:
            self.padding = F.pair(padding, "padding", name)
        self.dilation = F.pair(dilation, "dilation", name)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        self.register_parameter("weight", np.empty(_check_shape(
            name, (out_channels, in_channels // groups) + self.kernel_size), dtype))
        self.register_parameter("bias", np.empty(out_channels, dtype) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's default init (see _kaiming_uniform_bound), drawn in the
        weight's dtype."""
        fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
        bound = _kaiming_uniform_bound(fan_in)
        self.weight = _random.uniform(-bound, bound, self.weight.shape, self.weight.dtype)
        if self.bias is not None:
            self.bias = _random.uniform(-bound, bound, self.bias.shape, self.bias.dtype)

    def forward(self, input):
        return self._conv(input)

    def _padding_args(self):
        """(padding, padding_extra) for the operator: torch's 'same' puts the
        odd one of an even total padding at the bottom/right."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            return (totals[0] // 2, totals[1] // 2), (totals[0] % 2, totals[1] % 2)
        return self.padding, (0, 0)

    def _symmetric_padding(self):
        """The padding as a pair, or None for a 'same' padding that torch
        splits unevenly (an even kernel), which the fused paths do not take."""
        if type(self.padding) is tuple:  # the common case, on every fused forward
            return self.padding
        padding, extra = self._padding_args()
        return None if any(extra) else padding

    def _packed_weights(self, fold=None):
        """The weights (and bias) packed for the C micro-kernels, with an
        eval-mode BatchNorm ``fold`` folded in. Cached, and rebuilt when the
        cache key changes: this layer's version (any weight or bias change),
        the BatchNorm's version (any change of its parameters or running
        statistics) and eps -- so packed weights are never stale."""
        d = self.__dict__
        # (a dtype conversion replaces the arrays, so it bumps the version too)
        key = (d["_version_box"][0], self.groups, fold,
               None if fold is None else (fold.__dict__["_version_box"][0], fold.eps))
        cache = d.get("_packed_cache")
        if cache is not None and cache[0] == key:
            return cache[1]  # packed at this version, so the shapes were packable
        if not self._packable():
            # a reassigned weight or bias of the wrong shape: no packing, and
            # the operator reports the shapes with torch's wording, in its order
            return None
        packed = _C.conv2d_pack("Conv2d", self.weight, self.bias, self.groups,
                                None if fold is None else fold._fold_args())
        object.__setattr__(self, "_packed_cache", (key, packed))
        return packed

    def _packable(self):
        """The weight and bias have shapes the packing takes."""
        weight, bias = self.weight, self.bias
        return (weight.ndim == 4 and weight.shape[0] % self.groups == 0
                and weight.shape[2] >= 1 and weight.shape[3] >= 1
                and (bias is None or bias.shape == (weight.shape[0],)))

    def _conv(self, input, fold=None, relu=False, out=None, residual=None):
        """The convolution, with an eval-mode BatchNorm ``fold`` folded into
        its packed weights (the caller checks _packable and the BatchNorm's
        shapes), then ``residual`` (an array of the output's shape) added
        and ``relu`` applied as tiles are stored; written into ``out`` (a
        4-D array of the output's shape, possibly a channel slice of a
        larger map) when given."""
        padding, extra = self._padding_args()
        weight = self.__dict__["_parameters"]["weight"]
        input = F._module_input(input, "Conv2d", None if weight is None else weight.dtype)
        return _C.conv2d("Conv2d", input, self.weight, self.bias, self.stride,
                         padding, self.dilation, self.groups,
                         out=out, packed=self._packed_weights(fold), relu=relu,
                         residual=residual, padding_extra=extra)

    def _block_args(self, fold=None):
        """This convolution as a fused block's operator takes it (symmetric
        padding only: the blocks check _symmetric_padding first)."""
        return (self.__dict__["_parameters"]["weight"], self._packed_weights(fold), self.stride,
                self._symmetric_padding(), self.dilation, self.groups)

    def extra_repr(self):
        return _conv_extra_repr(self)


class BatchNorm2d(Module):
    """Applies Batch Normalization over a 4D input, as torch.nn.BatchNorm2d.

    torch 2.13's signature, keyword-only ``bias`` included. Train mode
    normalises with the batch's biased variance and updates the running
    statistics in place (unbiased variance, ``momentum``, or a cumulative
    average when ``momentum=None``); eval mode uses the running statistics,
    or the batch's when ``track_running_stats=False``.

    Args:
        num_features: C, the channels of the input.
        eps: added to the variance. Default: 1e-5.
        momentum: the running statistics' update factor, or None for a
            cumulative average. Default: 0.1.
        affine: learnable ``weight`` (ones) and ``bias`` (zeros). Default: True.
        track_running_stats: keep ``running_mean``, ``running_var`` and
            ``num_batches_tracked``. Default: True.
        device: None or ``"cpu"``.
        dtype: float32 (None, the default) or float64.
        bias: with ``affine``, a learnable bias (keyword-only). Default: True.

    Shape:
        - Input: (N, C, H, W).
        - Output: (N, C, H, W) (same shape as input).

    Example::

        >>> bn = skipblocks.BatchNorm2d(100)
        >>> bn(np.random.randn(20, 100, 35, 45)).shape
        (20, 100, 35, 45)
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        dtype = _check_factory_kwargs("BatchNorm2d", device, dtype, parameters=affine)
        self._dtype = dtype  # what the parameters and buffers below are made in
        num_features = _check_count("BatchNorm2d", "num_features", num_features, 0)
        _check_shape("BatchNorm2d", (num_features,))
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.register_parameter("weight", np.ones(num_features, dtype))
            self.register_parameter("bias", np.zeros(num_features, dtype) if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _check_input_dim(self, input):
        ndim = input.ndim if type(input) is np.ndarray else np.ndim(to_numpy(input))
        if ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4D input (got {ndim}D input)")

    def forward(self, input):
        return self._run(input)

    def _uses_running_stats(self):
        """Normalises with the running statistics (eval mode, tracking)."""
        buffers = self.__dict__["_buffers"]
        return not self.training and buffers.get("running_mean") is not None \
            and buffers.get("running_var") is not None

    def _fold_args(self):
        """This eval-mode BatchNorm as conv2d_pack folds it into a
        convolution's packed weights."""
        return (self.running_mean, self.running_var, self.weight, self.bias, float(self.eps))

    def _momentum_factor(self, tracked_after):
        """The running-statistics factor of an update that brings
        num_batches_tracked to ``tracked_after``: momentum, or the cumulative
        average's 1 / num_batches_tracked when momentum is None (torch's
        _BatchNorm.forward)."""
        if self.momentum is None:
            return 1.0 / float(tracked_after) if tracked_after is not None else 0.0
        return float(self.momentum)

    def _state(self, updates=1):
        """What torch's _BatchNorm.forward passes to F.batch_norm, as
        (weight, bias, running_mean, running_var, batch_stats, momentum, eps)
        plus the momentum of each of ``updates`` consecutive train-mode calls.
        Reads only; _record_updates does what the calls do to the state."""
        # the stores read directly: this runs on every fused forward
        params, buffers = self.__dict__["_parameters"], self.__dict__["_buffers"]
        training, momentum = self.training, self.momentum
        running_mean, running_var = buffers.get("running_mean"), buffers.get("running_var")
        update = training and self.track_running_stats
        if update:
            tracked = buffers.get("num_batches_tracked")
            count = None if tracked is None else int(tracked)
            factors = [self._momentum_factor(None if count is None else count + i + 1)
                       for i in range(updates)]
        else:
            factors = [0.0 if momentum is None else float(momentum)] * updates
        batch_stats = training or (running_mean is None and running_var is None)
        if training and not self.track_running_stats:
            running_mean = running_var = None
        state = (params.get("weight"), params.get("bias"), running_mean, running_var,
                 batch_stats, factors[0], float(self.eps))
        return state, factors

    def _record_updates(self, updates):
        """num_batches_tracked and the version after ``updates`` train-mode
        forwards whose running statistics the operator has updated."""
        if not (self.training and self.track_running_stats):
            return
        tracked = self._buffers.get("num_batches_tracked")
        if tracked is not None:
            with writable(tracked):  # in place, as torch's add_(1)
                np.add(tracked, updates, out=tracked)
        if self.running_mean is not None:
            self._bump_version()

    def _run(self, input, relu=False):
        """forward, following torch's _BatchNorm.forward, with the ReLU after
        it in the same pass when ``relu`` (the document's relu(bn(x)))."""
        self._check_input_dim(input)
        (weight, bias, running_mean, running_var, batch_stats, momentum, eps), _ = self._state()
        updating = batch_stats and running_mean is not None
        if self.training and self.track_running_stats:
            # torch increments num_batches_tracked before F.batch_norm checks
            self._record_updates(1)
        # the module's dtype decides (none without weights and statistics:
        # the input's, as torch's)
        input = F._module_input(input, "BatchNorm2d", _compute_dtype(self))
        if updating:
            with writable(running_mean, running_var):
                return _C.batch_norm("BatchNorm2d", input, running_mean, running_var, weight,
                                     bias, True, momentum, eps, relu=relu)
        return _C.batch_norm("BatchNorm2d", input, running_mean, running_var, weight, bias,
                             batch_stats, momentum, eps, relu=relu)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        # torch: checkpoints older than version 2 have no num_batches_tracked;
        # they load, keeping the module's current count. A plain dict has no
        # version, so that is what happens when the key is absent.
        version = local_metadata.get("version", None)
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats \
                and key not in state_dict:
            state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class ReLU(Module):
    """Applies max(x, 0) element-wise, as torch.nn.ReLU (NaN stays NaN).

    Args:
        inplace: write into the input (a writable float32 or float64 array)
            and return it. Default: False.

    Shape:
        - Input: any shape.
        - Output: the input's shape.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, self.inplace, _layer="ReLU")

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """Applies 1 / (1 + exp(-x)) element-wise, as torch.nn.Sigmoid.

    Shape:
        - Input: any shape.
        - Output: the input's shape.
    """

    def forward(self, input):
        return F.sigmoid(input, _layer="Sigmoid")


class MaxPool2d(Module):
    """Applies a 2D max pooling, as torch.nn.MaxPool2d.

    Padding counts as -inf and NaN propagates. Arguments are kept as given
    (an int stays an int), so the repr echoes them as torch's does.

    Args:
        kernel_size: the window's size, an int or a pair.
        stride: the window's stride. Default: ``kernel_size``.
        padding: -inf added on both sides (at most half the kernel). Default: 0.
        dilation: the spacing of the window's elements. Default: 1.
        return_indices: must be False (True raises NotImplementedError).
        ceil_mode: round the output size up, as torch does. Default: False.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, H_out, W_out) or (C, H_out, W_out), with
          H_out = floor((H + 2*padding[0] - dilation[0]*(kernel_size[0] - 1) - 1)
          / stride[0] + 1) (ceil with ``ceil_mode``), and W_out alike.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__()
        if return_indices:
            raise NotImplementedError("MaxPool2d: return_indices=True is not supported by "
                                      "skipblocks")
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding,
                            self.dilation, self.ceil_mode, _layer="MaxPool2d")

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode}")


class AdaptiveAvgPool2d(Module):
    """Applies a 2D adaptive average pooling, as torch.nn.AdaptiveAvgPool2d.

    Args:
        output_size: (H_out, W_out), or one int for both; a None entry
            keeps the input's size in that dimension.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, H_out, W_out) or (C, H_out, W_out).
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size, _layer="AdaptiveAvgPool2d")

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Linear(Module):
    """Applies an affine map y = x A^T + b, as torch.nn.Linear.

    Args:
        in_features: the size of each input sample.
        out_features: the size of each output sample.
        bias: add a learnable bias. Default: True.
        device: None or ``"cpu"``.
        dtype: float32 (None, the default) or float64.

    Shape:
        - Input: (..., in_features).
        - Output: (..., out_features).

    Attributes:
        weight: (out_features, in_features), read-only.
        bias: (out_features,), or None.

    Example::

        >>> fc = skipblocks.Linear(20, 30)
        >>> fc(np.random.randn(128, 20)).shape
        (128, 30)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        dtype = _check_factory_kwargs("Linear", device, dtype)
        self._dtype = dtype  # what the parameters below are made in
        self.in_features = _check_count("Linear", "in_features", in_features, 0)
        self.out_features = _check_count("Linear", "out_features", out_features, 0)
        self.register_parameter("weight", np.empty(
            _check_shape("Linear", (self.out_features, self.in_features)), dtype))
        self.register_parameter("bias", np.empty(out_features, dtype) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's default init (see _kaiming_uniform_bound), drawn in the
        weight's dtype."""
        bound = _kaiming_uniform_bound(self.in_features)
        self.weight = _random.uniform(-bound, bound, self.weight.shape, self.weight.dtype)
        if self.bias is not None:
            self.bias = _random.uniform(-bound, bound, self.bias.shape, self.bias.dtype)

    def forward(self, input):
        weight = self.__dict__["_parameters"]["weight"]
        input = F._module_input(input, "Linear", None if weight is None else weight.dtype)
        return _C.linear("Linear", input, self.weight, self.bias,
                         packed=self._packed_weights())

    def _packed_weights(self):
        """The weights and bias packed for the GEMM micro-kernels, rebuilt
        when this layer's version changes (any weight or bias change)."""
        # The version is read before packing: a change made meanwhile (by
        # another thread) then leaves a cache under the old version, which
        # the next call rebuilds, never new-looking stale weights.
        # (a dtype conversion replaces the arrays, so it bumps the version too)
        d = self.__dict__
        version = d["_version_box"][0]
        cache = d.get("_packed_cache")
        if cache is None or cache[0] != version:
            if self.weight.ndim != 2 or (self.bias is not None
                                         and self.bias.shape != (self.weight.shape[0],)):
                # let the operator report the bad shape with torch's wording
                return None
            packed = _C.linear_pack("Linear", self.weight, self.bias)
            cache = (version, packed)
            object.__setattr__(self, "_packed_cache", cache)
        return cache[1]

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


# conv_transpose2d
class ConvTranspose2d(Module):
    """Applies a 2D transposed convolution, as torch.nn.ConvTranspose2d.

    Zero padding only. forward's ``output_size`` ((H, W), or with the batch
    and channel sizes in front) picks the output_padding, as torch's does.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        kernel_size: the kernel's size, an int or a pair.
        stride: the stride, an int or a pair. Default: 1.
        padding: ``dilation * (kernel_size - 1) - padding`` zeros are added on
            both sides of the input. Default: 0.
        output_padding: added to one side of the output's size. Default: 0.
        groups: blocked connections from input to output channels. Default: 1.
        bias: add a learnable bias. Default: True.
        dilation: the spacing of the kernel's elements. Default: 1.
        padding_mode: ``"zeros"``. Default: ``"zeros"``.
        device: None or ``"cpu"``.
        dtype: float32 (None, the default) or float64.

    Shape:
        - Input: (N, C_in, H, W) or (C_in, H, W).
        - Output: (N, C_out, H_out, W_out) or (C_out, H_out, W_out), with
          H_out = (H - 1)*stride[0] - 2*padding[0] + dilation[0]*(kernel_size[0] - 1)
          + output_padding[0] + 1, and W_out alike.

    Attributes:
        weight: (in_channels, out_channels // groups, kH, kW), read-only.
        bias: (out_channels,), or None.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        name = "ConvTranspose2d"
        # torch checks the padding mode first (_ConvTransposeNd), then _ConvNd's
        if padding_mode != "zeros":
            raise ValueError(f'{name}: Only "zeros" padding mode is supported for {name}')
        dtype = _check_factory_kwargs(name, device, dtype)
        self._dtype = dtype  # what the parameters below are made in
        in_channels, out_channels = _check_conv_channels(name, in_channels, out_channels,
                                                         groups)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = F.pair(kernel_size, "kernel_size", name)
        self.stride = F.pair(stride, "stride", name)
        self.padding = F.pair(padding, "padding", name)
        self.dilation = F.pair(dilation, "dilation", name)
        self.transposed = True
        self.output_padding = F.pair(output_padding, "output_padding", name)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        self.register_parameter("weight", np.empty(_check_shape(
            name, (in_channels, out_channels // groups) + self.kernel_size), dtype))
        self.register_parameter("bias", np.empty(out_channels, dtype) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's default init (see _kaiming_uniform_bound), drawn in the
        weight's dtype; torch's fan_in of a transposed weight is
        weight.shape[1] * kH * kW."""
        fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
        bound = _kaiming_uniform_bound(fan_in)
        self.weight = _random.uniform(-bound, bound, self.weight.shape, self.weight.dtype)
        if self.bias is not None:
            self.bias = _random.uniform(-bound, bound, self.bias.shape, self.bias.dtype)

    def _output_padding(self, input, output_size):
        """torch's _ConvTransposeNd._output_padding: output_size's last two
        entries (after the batch and channel sizes, when given) minus the
        smallest output size, which must be within stride - 1 of it."""
        if output_size is None:
            return self.output_padding
        ndim = len(np.shape(input))
        leading = 2 if ndim == 4 else 1
        output_size = list(output_size) if not isinstance(output_size, (list, tuple)) \
            else output_size
        if len(output_size) == leading + 2:
            output_size = output_size[leading:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2d: ConvTranspose2D: for {ndim}D input, output_size "
                             f"must have 2 or {leading + 2} elements (got {len(output_size)})")
        spatial = np.shape(input)[leading:leading + 2]
        min_sizes = [(spatial[d] - 1) * self.stride[d] - 2 * self.padding[d]
                     + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(2)]
        max_sizes = [min_sizes[d] + self.stride[d] - 1 for d in range(2)]
        for d in range(2):
            if output_size[d] < min_sizes[d] or output_size[d] > max_sizes[d]:
                raise ValueError(
                    f"ConvTranspose2d: requested an output size of {output_size}, but valid "
                    f"sizes range from {min_sizes} to {max_sizes} (for an input of "
                    f"torch.Size({list(np.shape(input)[2:])}))")
        return tuple(int(output_size[d]) - min_sizes[d] for d in range(2))

    def forward(self, input, output_size=None):
        weight = self.__dict__["_parameters"]["weight"]
        input = F._module_input(input, "ConvTranspose2d",
                                None if weight is None else weight.dtype)
        return _C.conv_transpose2d("ConvTranspose2d", input, self.weight, self.bias,
                                   self.stride, self.padding,
                                   self._output_padding(input, output_size), self.dilation,
                                   self.groups, packed=self._packed_weights())

    def _packed_weights(self):
        """The 1x1 convolution's weights packed for the GEMM micro-kernels
        (the bias is added by the gather), rebuilt when this layer's version
        changes (any weight or bias change) or its groups do."""
        # the version is read before packing, as Linear._packed_weights does
        d = self.__dict__
        key = (d["_version_box"][0], self.groups)
        cache = d.get("_packed_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        weight = self.weight
        if not (weight.ndim == 4 and weight.shape[0] % self.groups == 0
                and weight.shape[0] >= self.groups and weight.shape[2] >= 1
                and weight.shape[3] >= 1):
            # let the operator report the bad shape with torch's wording
            return None
        packed = _C.conv_transpose2d_pack("ConvTranspose2d", weight, self.groups)
        object.__setattr__(self, "_packed_cache", (key, packed))
        return packed

    def extra_repr(self):
        return _conv_extra_repr(self)


# ---- pad and dropout; Flatten, Identity ------------------------------------

class Dropout(Module):
    """Zeroes elements at random in train mode, as torch.nn.Dropout.

    In train mode, functional.dropout(input, p): each element zeroed with
    probability p, the rest scaled by 1 / (1 - p) (the masks are
    skipblocks' own, reproducible with skipblocks.manual_seed, not torch's
    numbers); in eval mode the input itself.

    Args:
        p: the probability of an element to be zeroed. Default: 0.5.
        inplace: write into the input (a writable float32 or float64 array).
            Default: False.

    Shape:
        - Input: any shape.
        - Output: the input's shape.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"Dropout: dropout probability has to be between 0 and 1, but "
                             f"got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace, _layer="Dropout")

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


def flatten(input, start_dim=0, end_dim=-1, *, _layer="flatten"):
    """Flattens dims ``start_dim`` to ``end_dim`` of ``input`` into one, as torch.flatten.

    A view of the input when NumPy's reshape can make one (else a copy, as
    torch's reshape); the input itself when start_dim and end_dim name one
    dim; a 0-d input gives 1 element. The input's dtype is kept (integers
    stay integers). torch's errors: IndexError for a dim out of range,
    RuntimeError for start_dim after end_dim.

    Args:
        input: an array-like or CPU torch tensor.
        start_dim: the first dim to flatten. Default: 0.
        end_dim: the last dim to flatten. Default: -1.

    Example::

        >>> skipblocks.flatten(np.zeros((2, 3, 4)), 1).shape
        (2, 12)
    """
    array = to_numpy(input)  # its own dtype: integers stay integers, as in torch
    ndim = array.ndim
    span = max(ndim, 1)  # torch wraps dims of a 0-d tensor as if it had one

    def canonical(dim):
        dim = operator.index(dim)
        if not -span <= dim < span:
            raise IndexError(f"{_layer}: Dimension out of range (expected to be in range of "
                             f"[{-span}, {span - 1}], but got {dim})")
        return dim % span

    start, end = canonical(start_dim), canonical(end_dim)
    if start > end:
        raise RuntimeError(f"{_layer}: flatten() has invalid args: start_dim cannot come after "
                           "end_dim")
    if ndim == 0:
        return array.reshape(1)
    if start == end:
        return array
    shape = array.shape
    merged = 1
    for size in shape[start:end + 1]:
        merged *= size
    return array.reshape(shape[:start] + (merged,) + shape[end + 1:])


class Flatten(Module):
    """Flattens a contiguous range of dims, as torch.nn.Flatten.

    Args:
        start_dim: the first dim to flatten. Default: 1 (the batch dim stays).
        end_dim: the last dim to flatten. Default: -1.

    Shape:
        - Input: (*, S_start, ..., S_end, *).
        - Output: (*, S_start * ... * S_end, *).
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return flatten(input, self.start_dim, self.end_dim, _layer="Flatten")

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """A placeholder that returns its input itself, as torch.nn.Identity.

    The constructor takes and ignores any arguments, as torch's.

    Shape:
        - Input: any.
        - Output: the input (the same object).
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


# ---- avg_pool2d and interpolate ------------------------------------------


class AvgPool2d(Module):
    """Applies a 2D average pooling, as torch.nn.AvgPool2d.

    Arguments are kept as given (an int stays an int), so the repr echoes
    them as torch's does; no state.

    Args:
        kernel_size: the window's size, an int or a pair.
        stride: the window's stride. Default: ``kernel_size``.
        padding: zeros added on both sides. Default: 0.
        ceil_mode: round the output size up, as torch does. Default: False.
        count_include_pad: count the padding zeros in the divisor. Default: True.
        divisor_override: the divisor, instead of the window's size. Default: None.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, H_out, W_out) or (C, H_out, W_out), with
          H_out = floor((H + 2*padding[0] - kernel_size[0]) / stride[0] + 1)
          (ceil with ``ceil_mode``), and W_out alike.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding,
                            self.ceil_mode, self.count_include_pad, self.divisor_override,
                            _layer="AvgPool2d")

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Upsample(Module):
    """Upsamples an input, as torch.nn.Upsample: functional.interpolate with the stored arguments.

    As torch, scale_factor is stored as a float (a tuple of floats; 0 or
    None: None).

    Args:
        size: the output's spatial size (an int or a tuple); or give
            ``scale_factor``.
        scale_factor: the multiplier of the spatial size (a float or a tuple).
        mode: ``"nearest"`` (3-D or 4-D input) or ``"bilinear"`` (4-D).
            Default: ``"nearest"``.
        align_corners: bilinear only: align the corner pixels of input and
            output. Default: None (False).
        recompute_scale_factor: compute the scale from the output size, as
            torch. Default: None.

    Shape:
        - Input: (N, C, W_in) or (N, C, H_in, W_in).
        - Output: (N, C, W_out) or (N, C, H_out, W_out), with
          H_out = floor(H_in * scale_factor) when ``size`` is not given.
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode,
                             self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor,
                             _layer="Upsample")

    def extra_repr(self):
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        return info + ", mode=" + repr(self.mode)

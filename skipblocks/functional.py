"""skipblocks.functional: torch.nn.functional's names and arguments on NumPy.

Every function accepts array-likes (NumPy arrays of any dtype that is real,
layout or order; lists; CPU torch tensors) and returns a new array. dtypes
follow torch: when every floating argument is float64 the result is float64;
float32 and float64 mixed raise torch's error; other real inputs (integers,
bool, float16, lists) take the call's floating dtype -- float64 when some
array argument is float64, else float32 (torch would raise for an integer or
float16 input; a departure); ``cat`` promotes as torch.cat does. See the README's dtype rules (modules
differ: their dtype decides). Argument conveniences (int-or-pair, 'same'
padding, None entries) are resolved here; shapes are checked once, in C, by
skipblocks._C, whose errors follow torch's wording and name the layer.

The ``_layer`` keyword of each function is internal: modules pass their
class name so that an error names the layer the user built.
"""
import numbers
import operator

import numpy as np

from . import _C
from . import random as _random
from .module import to_numpy

__all__ = ["conv2d", "batch_norm", "relu", "sigmoid", "max_pool2d",
           "adaptive_avg_pool2d", "linear", "cat",
           # conv_transpose2d
           "conv_transpose2d",
           # pad and dropout
           "pad", "dropout",
           # avg_pool2d and interpolate
           "avg_pool2d", "interpolate"]


def _arg(value):
    """An operator argument as the operators read it: a torch tensor as its
    NumPy view (bfloat16 read exactly, as float32: NumPy has none); anything
    else as it is. Arrays keep their dtype, and Python lists and numbers stay
    untyped: the operator converts them to the call's dtype (float32, or
    float64 when an array argument is float64), where np.asarray would make
    float64 arrays of them."""
    if type(value) is np.ndarray or not hasattr(value, "detach"):
        return value
    return to_numpy(value)


def _optional(value):
    """_arg for an optional argument (bias): None stays None."""
    return None if value is None else _arg(value)


# torch's errors for an int-or-pair argument of another length
_LENGTH_ERRORS = {
    "conv": "expected {name} to be a single integer value or a list of 2 values to match "
            "the convolution dimensions, but got {name}={items}",
    "max_pool2d kernel_size": "max_pool2d: kernel_size must either be a single int, or a "
                              "tuple of two ints",
    "max_pool2d stride": "max_pool2d: stride must either be omitted, a single int, or a "
                         "tuple of two ints",
    "max_pool2d padding": "max_pool2d: padding must either be a single int, or a tuple of "
                          "two ints",
    "max_pool2d dilation": "max_pool2d: dilation must be either a single int, or a tuple of "
                           "two ints",
    # avg_pool2d
    "avg_pool2d kernel_size": "avg_pool2d: kernel_size must either be a single int, or a "
                              "tuple of two ints",
    "avg_pool2d stride": "avg_pool2d: stride must either be omitted, a single int, or a "
                         "tuple of two ints",
    "avg_pool2d padding": "avg_pool2d: padding must either be a single int, or a tuple of "
                          "two ints",
}


def pair(value, name, layer, op="conv"):
    """int -> (int, int); a pair stays a pair (as torch's _pair). Another
    length raises torch's RuntimeError for ``op`` ("conv" or "max_pool2d")."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value), int(value))
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}") from None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
    if len(items) == 1:
        items = items * 2
    if len(items) != 2:
        template = _LENGTH_ERRORS["conv" if op == "conv" else f"{op} {name}"]
        raise RuntimeError(f"{layer}: " + template.format(name=name,
                                                          items=[int(v) for v in items]))
    return (int(items[0]), int(items[1]))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           _layer="conv2d"):
    """torch.nn.functional.conv2d: zero padding; padding may be an int, a pair,
    'valid' or 'same' (stride 1 only, as torch)."""
    input, weight, bias = _arg(input), _arg(weight), _optional(bias)
    stride = pair(stride, "stride", _layer)
    dilation = pair(dilation, "dilation", _layer)
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise RuntimeError(f"{_layer}: padding='same' is not supported for strided "
                                   "convolutions")
            # torch pads the odd one of an even total at the bottom/right; a
            # weight that is not 4-D gets its error from the operator
            shape = np.shape(weight)
            kernel = shape[2:] if len(shape) == 4 else (1, 1)
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            padding = (totals[0] // 2, totals[1] // 2)
            extra = (totals[0] % 2, totals[1] % 2)
        else:
            raise RuntimeError(f"{_layer}: Invalid padding string: {padding!r}")
    else:
        padding = pair(padding, "padding", _layer)
    return _C.conv2d(_layer, input, weight, bias, stride, padding, dilation,
                     operator.index(groups), padding_extra=extra)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, _layer="batch_norm"):
    """torch.nn.functional.batch_norm on (N, C, ...) input.

    With ``training=True`` the batch's statistics normalise (biased variance)
    and, when ``running_mean``/``running_var`` are given, they are updated in
    place with ``momentum`` (the variance stored unbiased), as torch does.
    Because they are updated in place they must then be writable, C-contiguous
    arrays of C elements in the computation's dtype (float32, or float64 for
    float64 arguments): anything else raises TypeError or ValueError rather
    than silently updating a copy."""
    if momentum is None:
        # BatchNorm2d turns momentum=None into its cumulative factor before calling
        raise TypeError(f"{_layer}: batch_norm(): argument 'momentum' (position 7) must be "
                        "float, not NoneType")
    return _C.batch_norm(_layer, _arg(input), running_mean, running_var, weight, bias,
                         bool(training), float(momentum), float(eps))


def relu(input, inplace=False, *, _layer="relu"):
    """torch.nn.functional.relu; NaN stays NaN. ``inplace=True`` writes into
    ``input`` and returns it; the input must then be a writable float32 or
    float64 array (anything else raises rather than silently returning a
    copy)."""
    if not inplace:
        return _C.relu(_layer, _arg(input))
    _check_inplace(input, _layer)
    if input.flags.c_contiguous and input.flags.aligned:
        return _C.relu(_layer, input, out=input)
    # A strided or unaligned view: the kernel writes aligned contiguous
    # memory only, so compute apart and copy back (only its elements change).
    np.copyto(input, _C.relu(_layer, input))
    return input


def _check_inplace(input, layer):
    """The policy of every inplace=True: the input must be a writable float32
    or float64 ndarray, which the op writes its result into; anything else
    raises (rather than silently returning a copy)."""
    if isinstance(input, np.ndarray) and input.dtype.kind not in "fiub":
        as_real(input, layer)  # the TypeError every op gives non-real input
    if not isinstance(input, np.ndarray) or input.dtype not in _COMPUTED \
            or not input.flags.writeable:
        kind = type(input).__name__ if not isinstance(input, np.ndarray) else \
            f"{'read-only ' if not input.flags.writeable else ''}{input.dtype} array"
        raise ValueError(f"{layer}: inplace=True writes the result into its input, which "
                         f"must be a writable float32 or float64 numpy array; got a {kind}. "
                         "Use inplace=False to get a new array.")


def sigmoid(input, *, _layer="sigmoid"):
    """torch.sigmoid."""
    return _C.sigmoid(_layer, _arg(input))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, _layer="max_pool2d"):
    """torch.nn.functional.max_pool2d: -inf padding, torch's ceil_mode rule,
    NaN propagates. stride defaults to kernel_size."""
    if return_indices:
        raise NotImplementedError(f"{_layer}: return_indices=True is not supported by "
                                  "skipblocks")
    kernel = pair(kernel_size, "kernel_size", _layer, "max_pool2d")
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral)
                                          and len(tuple(stride)) == 0) \
        else pair(stride, "stride", _layer, "max_pool2d")
    return _C.max_pool2d(_layer, _arg(input), kernel, stride,
                         pair(padding, "padding", _layer, "max_pool2d"),
                         pair(dilation, "dilation", _layer, "max_pool2d"), bool(ceil_mode))


def adaptive_avg_pool2d(input, output_size, *, _layer="adaptive_avg_pool2d"):
    """torch.nn.functional.adaptive_avg_pool2d; ``None`` in output_size keeps
    that input dimension."""
    input = _arg(input)
    if output_size is None or isinstance(output_size, numbers.Integral):
        sizes = (output_size, output_size)
    else:
        sizes = tuple(output_size)
        if len(sizes) == 1:
            sizes = sizes * 2
        if len(sizes) != 2:
            raise RuntimeError(f"{_layer}: adaptive_avg_pool2d: output_size must be 2")
    if not isinstance(output_size, numbers.Integral):
        shape = np.shape(input)
        if len(shape) <= 2:
            # torch.nn.functional checks a pair output_size against the input
            # before its kernel runs, with this ValueError.
            raise ValueError(f"{_layer}: Input dimension should be at least 3")
    if any(s is None for s in sizes):
        sizes = tuple(shape[-2 + i] if s is None else s for i, s in enumerate(sizes))
    return _C.adaptive_avg_pool2d(_layer, input, tuple(int(s) for s in sizes))


def linear(input, weight, bias=None, *, _layer="linear"):
    """torch.nn.functional.linear: input (..., in_features) -> (..., out_features)."""
    return _C.linear(_layer, _arg(input), _arg(weight), _optional(bias))


# The dtypes the kernels compute in, in native byte order (a byte-swapped
# array compares unequal to these).
_COMPUTED = (np.dtype("=f4"), np.dtype("=f8"))
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def as_real(value, layer, what="input", dtype=None):
    """The array the operators compute on: with ``dtype`` None, float32 and
    float64 arrays as they are (the functional rule: the input's dtype) and
    anything else real as np.asarray(value, np.float32) would convert it;
    with ``dtype`` np.float32 or np.float64 (a module's dtype), ``value``
    converted to it. TypeError, naming ``layer`` and ``what``, for complex,
    object and string data. The C conversion every operator uses
    (skipblocks._C.as_real, which reads ``dtype`` itself)."""
    return _C.as_real(layer, _arg(value), what, dtype)


def _module_input(value, layer, dtype, what="input"):
    """``value`` as a module computing in ``dtype`` (its _compute_dtype)
    takes it: converted to ``dtype`` (skipblocks' rule for modules: the
    module's dtype decides), or, for a module without floating parameters
    (``dtype`` None), left for the operator to convert by the functional
    rule. An array already in ``dtype`` goes through untouched, for the
    operator's own checks of its layout."""
    if dtype is None:
        return _arg(value)
    if type(value) is np.ndarray and value.dtype == dtype:  # native: byte-swapped converts
        return value
    return as_real(value, layer, what, dtype)


def cat(tensors, dim=0, *, _layer="cat"):
    """torch.cat along ``dim`` (an exact copy), with torch.cat's dtype
    promotion for what skipblocks computes in: float64 when any of the
    tensors is float64 (as torch: float64 is above every other dtype
    skipblocks accepts), float32 otherwise -- where torch's promoted dtype
    would be float32, and also where it would be an integer, bool or float16
    one (converted to float32, as every operator converts such input)."""
    return np.concatenate(*_cat_checked(tensors, dim, _layer))


def _natural_dtype(value):
    """float64 for a float64 array or torch tensor (what cat promotes to),
    float32 for anything else: the dtype torch.cat's promotion gives a
    tensor among the ones skipblocks accepts, once it is mapped to float32
    or float64."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return _FLOAT32
    if isinstance(dtype, np.dtype):
        return _FLOAT64 if dtype.kind == "f" and dtype.itemsize == 8 else _FLOAT32
    return _FLOAT64 if str(dtype) == "torch.float64" else _FLOAT32


def _cat_checked(tensors, dim, layer, dtype=None):
    """The arrays torch.cat(tensors, dim) would join, all converted to one
    dtype (``dtype``, a module's; else torch.cat's promotion, see cat), and
    the axis; torch's errors otherwise, prefixed with ``layer``."""
    if isinstance(tensors, np.ndarray) or not hasattr(tensors, "__iter__"):
        kind = type(tensors)
        name = kind.__qualname__ if kind.__module__ == "builtins" else \
            f"{kind.__module__}.{kind.__qualname__}"
        raise TypeError(f"{layer}: cat(): argument 'tensors' (position 1) must be tuple of "
                        f"Tensors, not {name}")
    tensors = list(tensors)
    if dtype is None:
        # torch promotes over every tensor, the skipped empty ones below too
        dtype = _FLOAT64 if any(_natural_dtype(t) is _FLOAT64 for t in tensors) \
            else _FLOAT32
    arrays = [as_real(t, layer, f"tensor number {i}", dtype) for i, t in enumerate(tensors)]
    if any(a.ndim > 1 for a in arrays):
        # torch.cat skips legacy empty 1-D tensors (shape (0,)) among
        # higher-dimensional ones
        arrays = [a for a in arrays if not (a.ndim == 1 and a.shape[0] == 0)]
    if not arrays:
        raise ValueError(f"{layer}: torch.cat(): expected a non-empty list of Tensors")
    ndim = arrays[0].ndim
    if ndim == 0:
        raise RuntimeError(f"{layer}: zero-dimensional tensor (at position 0) cannot be "
                           "concatenated")
    if not -ndim <= dim < ndim:
        raise IndexError(f"{layer}: Dimension out of range (expected to be in range of "
                         f"[{-ndim}, {ndim - 1}], but got {dim})")
    axis = dim % ndim
    first = arrays[0].shape
    for i, a in enumerate(arrays[1:], start=1):
        if a.ndim != ndim:
            raise RuntimeError(f"{layer}: Tensors must have same number of dimensions: got "
                               f"{ndim} and {a.ndim}")
        for d in range(ndim):
            if d != axis and a.shape[d] != first[d]:
                raise RuntimeError(
                    f"{layer}: Sizes of tensors must match except in dimension {axis}. Expected "
                    f"size {first[d]} but got size {a.shape[d]} for tensor number {i} in "
                    "the list.")
    return arrays, axis



# conv_transpose2d
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1, *, _layer="conv_transpose2d"):
    """torch.nn.functional.conv_transpose2d (torch's argument order): weight
    (C_in, C_out/groups, kH, kW); zero padding; int or pair arguments."""
    input, weight, bias = _arg(input), _arg(weight), _optional(bias)
    return _C.conv_transpose2d(_layer, input, weight, bias, pair(stride, "stride", _layer),
                               pair(padding, "padding", _layer),
                               pair(output_padding, "output_padding", _layer),
                               pair(dilation, "dilation", _layer), operator.index(groups))
# ---- pad and dropout ------------------------------------------------------

def _tp_name(value):
    """The type name torch's argument parser prints (CPython's tp_name):
    "int", "numpy.ndarray", "Tensor"."""
    kind = type(value)
    if kind.__flags__ & (1 << 9) or kind.__module__ == "builtins":  # a heap type
        return kind.__name__
    return f"{kind.__module__}.{kind.__name__}"


def _pad_ints(pad, layer):
    """torch's parser for pad()'s ``pad``: a list or tuple of integers
    (anything with __index__ but bool: NumPy integers, 0-d integer tensors),
    TypeError with its wording otherwise."""
    where = f"{layer}: pad(): argument 'pad' (position 2) must be tuple of ints"
    if not isinstance(pad, (list, tuple)):
        raise TypeError(f"{where}, not {_tp_name(pad)}")
    items = []
    for pos, item in enumerate(pad):
        if isinstance(item, (bool, np.bool_)) or not hasattr(item, "__index__"):
            raise TypeError(f"{where}, but found element of type {_tp_name(item)} at pos {pos}")
        items.append(operator.index(item))
    return tuple(items)


def pad(input, pad, mode="constant", value=None, *, _layer="pad"):
    """torch.nn.functional.pad: ``pad`` holds (before, after) pairs for the
    last dimension first, then the one before it, ... (at most 2 * ndim
    entries); a negative entry crops. ``mode="constant"`` fills with
    ``value`` (None: 0), cast to the input's dtype, on any rank; the result
    is a new array, an exact copy of the input's elements. 'reflect',
    'replicate' and 'circular' pass the checks torch makes for every mode
    (the pad's length, a value given with them) and then raise
    NotImplementedError (skipblocks has no kernel for them), before the
    checks torch makes for those modes alone (supported ranks, sizes). Every
    check made is torch's (PadNd.cpp), with its message, prefixed with
    ``_layer``."""
    pads = _pad_ints(pad, _layer)
    if not isinstance(mode, str):
        raise TypeError(f"{_layer}: pad(): argument 'mode' (position 3) must be str, not "
                        f"{_tp_name(mode)}")
    if value is not None and (isinstance(value, (str, bytes)) or not hasattr(value, "__float__")
                              or (isinstance(value, numbers.Complex)
                                  and not isinstance(value, numbers.Real))):
        raise TypeError(f"{_layer}: pad(): argument 'value' (position 4) must be float, not "
                        f"{_tp_name(value)}")
    return _C.pad(_layer, _arg(input), pads, mode, None if value is None else float(value))


def dropout(input, p=0.5, training=True, inplace=False, *, _layer="dropout"):
    """torch.nn.functional.dropout. In training (and 0 < p), each element is
    zeroed with probability ``p`` and the others are multiplied by
    1 / (1 - p) (that factor rounded to the input's dtype, then one
    product, as torch computes x * noise): a dropped NaN or inf gives NaN
    (x * 0), and p == 1 gives x * 0. Otherwise -- ``training=False`` or
    ``p == 0`` -- the input array itself is returned, as torch returns its
    input tensor. ``inplace=True`` writes into ``input`` (a writable float32
    or float64 array, as relu's inplace) and returns it.

    The mask comes from a counter-based generator in C seeded, per call,
    from skipblocks' generator: ``skipblocks.manual_seed(n)`` makes it
    reproducible, and it does not depend on the thread count. The masks are
    not torch's (torch's generator differs): their distribution is.

    p outside [0, 1] raises torch's ValueError; a NaN p, torch's
    RuntimeError (in every mode)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"{_layer}: dropout probability has to be between 0 and 1, but got {p}")
    p, training = float(p), bool(training)
    # a seed is drawn only when a mask is made, so eval-mode calls leave the
    # generator (and later initialisations) as they were, as in torch
    seed = _random.seed64() if training and p != 0.0 else 0
    if not inplace:
        return _C.dropout(_layer, _arg(input), p, training, seed)
    if not training or p == 0.0:
        # nothing is computed, so nothing is written: torch returns its input
        # as it is, whatever it is (the operator still checks p and the input)
        return _C.dropout(_layer, _arg(input), p, training, seed)
    _check_inplace(input, _layer)
    if input.flags.c_contiguous and input.flags.aligned:
        return _C.dropout(_layer, input, p, training, seed, out=input)
    # a strided or unaligned view: computed apart, copied back
    result = _C.dropout(_layer, input, p, training, seed)
    if result is not input:
        np.copyto(input, result)
    return input


# ---- avg_pool2d and interpolate ------------------------------------------


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, _layer="avg_pool2d"):
    """torch.nn.functional.avg_pool2d: stride defaults to kernel_size; the
    divisor is divisor_override, else the window clipped to the padded input
    (count_include_pad) or to the input -- the part ceil_mode adds past the
    padded input never counts. Checked in C in torch's order."""
    kernel = pair(kernel_size, "kernel_size", _layer, "avg_pool2d")
    stride = kernel if stride is None or (not isinstance(stride, numbers.Integral)
                                          and len(tuple(stride)) == 0) \
        else pair(stride, "stride", _layer, "avg_pool2d")
    if divisor_override is not None and (isinstance(divisor_override, bool) or
                                         not isinstance(divisor_override, numbers.Integral)):
        raise TypeError(f"{_layer}: avg_pool2d(): argument 'divisor_override' must be int, "
                        f"not {type(divisor_override).__name__}")
    return _C.avg_pool2d(_layer, _arg(input), kernel, stride,
                         pair(padding, "padding", _layer, "avg_pool2d"), bool(ceil_mode),
                         bool(count_include_pad),
                         None if divisor_override is None else int(divisor_override))


_INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False, *, _layer="interpolate"):
    """torch.nn.functional.interpolate, modes 'nearest' (3-D or 4-D input) and
    'bilinear' (4-D). torch's Python rules, in its order: align_corners only
    with the interpolating modes; exactly one of size and scale_factor; the
    output size floor(in * scale); the scale passed on to the kernel unless
    recompute_scale_factor (so scale_factor=1.7 and the size it gives can
    differ, as in torch). Other modes, antialias=True and 5-D nearest raise
    NotImplementedError where torch would compute."""
    input = _arg(input)
    ndim = len(np.shape(input))
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(f"{_layer}: align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    dim = ndim - 2
    spatial = list(np.shape(input)[2:])
    if size is not None and scale_factor is not None:
        raise ValueError(f"{_layer}: only one of size or scale_factor should be defined")
    if size is not None:
        scales = None
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    f"{_layer}: Input and output must have the same number of spatial "
                    f"dimensions, but got input with spatial dimensions of {spatial} and "
                    f"output size of {size}. Please provide input tensor in (N, C, d1, d2, "
                    "...,dK) format and output size in (o1, o2, ...,oK) format.")
            if not all(isinstance(x, numbers.Integral) and not isinstance(x, bool)
                       or hasattr(x, "__index__") for x in size):
                raise TypeError(
                    f"{_layer}: expected size to be one of int or Tuple[int] or Tuple[int, "
                    "int] or Tuple[int, int, int], but got size with types "
                    f"{[type(x) for x in size]}")
            out_size = [int(x) for x in size]
        else:
            if isinstance(size, bool) or not hasattr(size, "__index__"):
                # torch's argument parser refuses it (its message lists the
                # overloads; this one names the argument)
                raise TypeError(f"{_layer}: size must be an int or a tuple of ints, got "
                                f"{size!r}")
            out_size = [operator.index(size)] * dim
    elif scale_factor is not None:
        out_size = None
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    f"{_layer}: Input and scale_factor must have the same number of spatial "
                    f"dimensions, but got input with spatial dimensions of {spatial} and "
                    f"scale_factor of shape {scale_factor}. Please provide input tensor in "
                    "(N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                    "format.")
            scales = [float(s) for s in scale_factor]
        else:
            scales = [float(scale_factor)] * dim
    else:
        raise ValueError(f"{_layer}: either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError(f"{_layer}: recompute_scale_factor is not meaningful with an "
                         "explicit size.")
    if mode == "area" and out_size is None:
        recompute_scale_factor = True
    if recompute_scale_factor:
        # torch: int(input.size(i + 2) * scale), then no scale to the kernel
        out_size = [int(spatial[i] * scales[i]) for i in range(dim)]
        scales = None
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and ndim == 4):
        raise ValueError(f"{_layer}: Anti-alias option is restricted to bilinear, bicubic, "
                         "and lanczos modes and requires a 4-D tensor as input")
    if out_size is None:
        # torch's C++ compute_output_size: (int64) (double(in) * scale), which
        # refuses a product that is not finite
        products = [float(spatial[i]) * scales[i] for i in range(dim)]
        if not all(np.isfinite(v) for v in products):
            raise RuntimeError(f"{_layer}: value cannot be converted to type int64_t without "
                               "overflow")
        out_size = [int(v) for v in products]
    kernel_scales = (-1.0, -1.0) if scales is None else \
        ((-1.0, scales[0]) if dim == 1 else (scales[0], scales[1]) if dim == 2 else None)
    if mode == "nearest" and ndim in (3, 4):
        size2 = (1, out_size[0]) if ndim == 3 else tuple(out_size)
        return _C.interpolate(_layer, input, 0, size2, kernel_scales, False)
    if mode == "bilinear" and ndim == 4:
        if antialias:
            raise NotImplementedError(f"{_layer}: antialias=True is not supported by "
                                      "skipblocks")
        return _C.interpolate(_layer, input, 1, tuple(out_size), kernel_scales,
                              bool(align_corners))
    if mode == "lanczos" and ndim == 4:
        if align_corners:
            raise ValueError(f"{_layer}: Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError(f"{_layer}: Lanczos mode requires antialias=True")
    known = {(3, "nearest"), (4, "nearest"), (5, "nearest"),
             (3, "nearest-exact"), (4, "nearest-exact"), (5, "nearest-exact"),
             (3, "area"), (4, "area"), (5, "area"), (3, "linear"), (4, "bilinear"),
             (5, "trilinear"), (4, "bicubic"), (4, "lanczos")}
    if (ndim, mode) in known:
        raise NotImplementedError(f"{_layer}: mode={mode!r} on a {ndim}-D input is not "
                                  "supported by skipblocks (it has 'nearest' on 3-D and 4-D "
                                  "input and 'bilinear' on 4-D input)")
    for got, name, need in ((3, "bilinear", 4), (3, "trilinear", 5), (4, "linear", 3),
                            (4, "trilinear", 5), (5, "linear", 3), (5, "bilinear", 4)):
        if ndim == got and mode == name:
            raise NotImplementedError(f"{_layer}: Got {got}D input, but {name} mode needs "
                                      f"{need}D input")
    raise NotImplementedError(
        f"{_layer}: Input Error: Only 3D, 4D and 5D input Tensors supported (got {ndim}D) "
        "for the modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area "
        f"| nearest-exact (got {mode})")

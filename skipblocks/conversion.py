"""``skipblocks.from_torch(module)``: a torch module tree converted into
skipblocks modules, with its weights, buffers, dtype and train/eval flags.

What converts
-------------
* torch.nn's layers that skipblocks has -- ``Conv2d``, ``ConvTranspose2d``,
  ``BatchNorm2d``, ``ReLU``, ``Sigmoid``, ``MaxPool2d``, ``AvgPool2d``,
  ``AdaptiveAvgPool2d``, ``Linear``, ``Upsample``, ``Dropout``, ``Flatten``,
  ``Identity`` -- and the containers ``Sequential``, ``ModuleList`` and
  ``ModuleDict``. These are recognised by their exact class: a subclass may
  compute something else in its own forward, so it is refused.
* The blocks and networks skipblocks has, recognised by class name *and*
  by the names and order of their children (the class itself is the
  user's, torchvision's or timm's, which are not imported here): the
  document's ``ResidualBlock``, ``Dense_Layer``, ``Dense_Block`` and
  ``SEAttention``; its other systems ``UNet`` (``DoubleConv``, ``Down``,
  ``Up``, ``OutConv``), ``SEResidualBlock``, ``BasicConv2d``, ``Inception``
  and ``SEInception``; torchvision's ``ResNet`` (``BasicBlock``,
  ``Bottleneck``), ``DenseNet`` (``_DenseLayer``, ``_DenseBlock``,
  ``_Transition``) and ``GoogLeNet`` (``InceptionAux``); timm's ``ResNet``
  with its ``Bottleneck`` (with or without an ``SEModule``, i.e. timm's
  seresnet50/101 and resnet50-style models), which become
  ``skipblocks.models.ResNet`` with ``SEBottleneck`` / ``Bottleneck`` blocks
  (timm's parameter-free ``act1``/``act2``/``act3`` become the one ``relu``
  torchvision's layout has, and ``global_pool`` becomes ``avgpool``; the
  state_dict keys are timm's either way).
  Being recognised by name, such a class must run the forward skipblocks
  reproduces: see :func:`from_torch` for the rule.

How a block is converted
------------------------
The block's skipblocks twin is built by its constructor, with arguments
read from the torch module, and then every child is replaced by the
converted torch child, so that a child the user replaced (another
activation, a different convolution) is honoured as it is and every weight
comes from torch. Where the twin's constructor already made a child equal
to the torch child (same class and constructor attributes, same tensor
names, shapes and dtypes) that child is kept and only given torch's values,
so converting ResNet-152 costs about what building it does. The plain
attributes a forward reads (GoogLeNet's ``transform_input`` and
``aux_logits``, ``_DenseLayer.drop_rate``, ...) are copied, and so is every
module's ``training`` flag. The result's state_dict keys are checked to be
torch's, in torch's order.

Each layer keeps the dtype of its torch tensors (float32 or float64, and
an integer buffer's: an int32 ``num_batches_tracked`` stays int32); a
module shared by two parents in torch is one shared module in the result.
The torch module is only read, never modified. The constructors draw their
initial weights from skipblocks' generator (``skipblocks.manual_seed``)
before torch's values replace them, as building the model would.

Errors
------
* ``TypeError`` when the argument is not a ``torch.nn.Module``.
* ``NotImplementedError`` for anything skipblocks cannot reproduce, naming
  the dotted path of the module in the tree and its class:
  ``from_torch: cannot convert features.denseblock1.denselayer1.norm1
  (GELU): skipblocks has no such layer``. That covers classes skipblocks
  does not have, settings it does not implement (``padding_mode='reflect'``,
  ``return_indices=True``, timm's ``drop_rate``), tensors other than
  float32/float64 (call ``.float()`` on the torch module first), an
  ``Upsample`` mode other than 'nearest' and 'bilinear' (torch accepts any
  mode until the first call; the conversion refuses it at once), a block
  whose children are not laid out as skipblocks' twin, a block whose
  forward would call a plain attribute that is neither None nor a module
  (a function as a residual block's ``downsample``), a block class that
  does not run the recognised forward (see :func:`from_torch`), an
  uninitialised ``torch.nn.Lazy*`` module (run a forward through the torch
  module first), and hooks, which skipblocks modules would not run:
  forward, forward-pre and backward hooks on any module of the torch tree
  -- also one the conversion absorbs or drops (timm's ``act2``, ``act3``,
  ``drop_block``, ``aa``, ``global_pool``) -- and torch's global module
  hooks (``torch.nn.modules.module.register_module_forward_hook`` and the
  like), which run on every module's call.

torch is imported inside :func:`from_torch` only.
"""
import numpy as np

from . import blocks, containers, inception, layers, models, unet
from .module import _frozen_copy
# (the submodule skipblocks.models.googlenet is shadowed by the builder of that name)
from .models import densenet, resnet, se_resnet

__all__ = ["from_torch"]


def from_torch(module):
    """The skipblocks twin of the torch module ``module`` (a
    ``torch.nn.Module``): the same tree of modules, with torch's weights and
    buffers (copied: the two share no memory), dtypes, train/eval flags and
    state_dict keys. See the module docstring of ``skipblocks.conversion``
    for what converts; anything else raises ``NotImplementedError`` naming
    the module's path and class. ``module`` is not modified.

    A block or network is recognised by its class's name and its children,
    and the twin computes the forward of the class of that name (the
    document's, torchvision's, timm's, milesial's). So the recognised class
    is the deepest class of the module's MRO bearing that name, and the
    module is refused when a class before it in the MRO -- a subclass,
    even one keeping the name, or a mixin -- defines ``forward`` or any
    other method the recognised class (or its bases outside torch) defines,
    such as the helpers a forward calls (torchvision ResNet's
    ``_forward_impl``, timm's ``forward_head``); when the class replaces
    ``torch.nn.Module.__call__``; or when the recognised class does not
    define its forward itself (torchvision's ``_Transition``, which runs
    ``torch.nn.Sequential``'s, must run exactly that one). A subclass that
    only adds methods or changes ``__init__`` converts. A class of a
    recognised name and layout that is unrelated to skipblocks.reference
    and defines its own forward cannot be told apart from the published
    one: its name is taken as the promise that it computes the same.

    The reverse direction needs no function: load the twin's state_dict
    into the torch module, ``torch_model.load_state_dict({k:
    torch.from_numpy(np.array(v)) for k, v in sb_model.state_dict().items()})``.
    """
    import torch  # only here: importing skipblocks never imports torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    _check_tree(torch, module)
    converter = _Converter(torch)
    twin = converter.convert(module, "")
    _check_keys(twin, module, "")
    return twin


# -- messages -----------------------------------------------------------------

def _where(path):
    return path if path else "the top-level module"


def _cannot(path, torch_module, reason):
    """The one error of an unconvertible module: its path and class first."""
    return NotImplementedError(
        f"from_torch: cannot convert {_where(path)} ({type(torch_module).__name__}): {reason}")


def _join(path, name):
    return f"{path}.{name}" if path else name


def _names(names):
    return "(" + ", ".join(names) + ")"


# -- hooks and lazy modules: the whole torch tree, before anything converts ------

# a module's hooks, and torch's global ones (register_module_forward_hook, ...),
# by what the message calls them: skipblocks' twin would run none of them
# (and the function that registers the global ones)
_HOOKS = (("_forward_pre_hooks", "forward pre-hooks", "register_module_forward_pre_hook"),
          ("_forward_hooks", "forward hooks", "register_module_forward_hook"),
          ("_backward_pre_hooks", "backward pre-hooks",
           "register_module_full_backward_pre_hook"),
          ("_backward_hooks", "backward hooks", "register_module_full_backward_hook"))


def _check_tree(torch, module):
    """Refuses hooks and uninitialised lazy modules anywhere in the torch
    tree -- also on the modules the conversion absorbs or drops (timm's
    act2/act3, drop_block, aa, global_pool), whose hooks would otherwise
    vanish silently -- and torch's global module hooks, which run on every
    module's call."""
    registry = torch.nn.modules.module
    for store, kind, register in _HOOKS:
        if getattr(registry, "_global" + store, None):
            raise _cannot("", module, f"torch has global module {kind} registered "
                          f"(torch.nn.modules.module.{register}), which skipblocks modules "
                          "would not run (remove them before converting)")
    lazy = torch.nn.modules.lazy.LazyModuleMixin
    for path, m in module.named_modules():
        # torch's lazy modules carry a pre-hook of their own until their
        # first forward, which initialises them (and makes them Conv2d, ...)
        if isinstance(m, lazy):
            raise _cannot(path, m, "it is a lazy module that is not initialised yet (torch "
                          "infers its shapes on its first call: run a forward through the "
                          "torch module before converting)")
        for store, kind, _ in _HOOKS:
            if getattr(m, store, None):
                raise _cannot(path, m, f"it has {kind}, which skipblocks modules would not "
                              "run (remove them before converting)")


# -- tensors -------------------------------------------------------------------

# torch's dtypes as NumPy's, by their str (torch.float32 -> 'torch.float32'):
# float32 and float64 are what skipblocks computes in; integers and bool
# only occur in buffers (num_batches_tracked), which keep their values.
_FLOATING = {"torch.float32": np.dtype(np.float32), "torch.float64": np.dtype(np.float64)}
_INTEGER = {"torch.int64": np.dtype(np.int64), "torch.int32": np.dtype(np.int32),
            "torch.int16": np.dtype(np.int16), "torch.int8": np.dtype(np.int8),
            "torch.uint8": np.dtype(np.uint8), "torch.bool": np.dtype(np.bool_)}


def _numpy_dtype(tensor):
    """The NumPy dtype of a torch tensor skipblocks can hold, else None."""
    name = str(tensor.dtype)
    return _FLOATING.get(name) or _INTEGER.get(name)


def _read_tensor(tensor, path, torch_module, name):
    """A NumPy view of a torch tensor (skipblocks copies it on assignment),
    or the reason it cannot be one."""
    if tensor.is_meta:
        raise _cannot(path, torch_module, f"its {name} is a meta tensor, which holds no values")
    if tensor.is_sparse or tensor.is_quantized:
        kind = "sparse" if tensor.is_sparse else "quantized"
        raise _cannot(path, torch_module, f"its {name} is a {kind} tensor; skipblocks holds "
                      "dense float32 or float64 arrays")
    if _numpy_dtype(tensor) is None:
        raise _cannot(path, torch_module,
                      f"its {name} is {tensor.dtype}; skipblocks computes in float32 or float64 "
                      "only (convert the torch module with .float() or .double() first)")
    return tensor.detach().cpu().numpy()


def _floating_dtype_of_leaf(torch_module, path):
    """The one floating dtype of a layer's own parameters and buffers (the
    dtype its twin is built in), None for a layer without any."""
    found = set()
    for store in (torch_module._parameters, torch_module._buffers):
        for name, tensor in store.items():
            if tensor is not None and tensor.is_floating_point():
                if str(tensor.dtype) not in _FLOATING:
                    _read_tensor(tensor, path, torch_module, name)  # raises the dtype error
                found.add(_FLOATING[str(tensor.dtype)])
    if len(found) > 1:
        raise _cannot(path, torch_module, "its tensors mix float32 and float64; a skipblocks "
                      "layer holds one dtype (convert the torch module with .float() or "
                      ".double() first)")
    return found.pop() if found else None


def _floating_dtype_of_tree(torch_module):
    """The dtype a block's twin is built in: that of the first floating
    parameter (else buffer) of the torch subtree, as skipblocks' modules
    pick the dtype they compute in; None (float32) when there is none or
    it is one skipblocks has not (the layer holding it then raises)."""
    for tensors in (torch_module.parameters(), torch_module.buffers()):
        for tensor in tensors:
            if tensor.is_floating_point():
                return _FLOATING.get(str(tensor.dtype))
    return None


def _same_tensor_layout(twin, torch_module):
    """The twin holds parameters and buffers of the torch module's names (in
    its order), with the same None entries, shapes and dtypes: assigning
    torch's values then changes nothing else about it."""
    for store in ("_parameters", "_buffers"):
        ours, theirs = twin.__dict__[store], getattr(torch_module, store)
        if list(ours) != list(theirs):
            return False
        for name, tensor in theirs.items():
            mine = ours[name]
            if (tensor is None) != (mine is None):
                return False
            if tensor is not None and (mine.shape != tuple(tensor.shape)
                                       or mine.dtype != _numpy_dtype(tensor)):
                return False
    return True


def _copy_tensors(twin, torch_module, path):
    """torch's own parameters and buffers (not its children's) into the
    twin, which must have the same names: each value is copied into a new
    read-only array of the twin's dtype for it (the layer was built in
    torch's dtype); None stays None."""
    for store, kind in (("_parameters", "parameters"), ("_buffers", "buffers")):
        ours, theirs = twin.__dict__[store], getattr(torch_module, store)
        if list(ours) != list(theirs):
            raise _cannot(path, torch_module,
                          f"its {kind} {_names(theirs)} are not those of skipblocks' "
                          f"{type(twin).__name__} {_names(ours)}")
        for name, tensor in theirs.items():
            value = None if tensor is None else _read_tensor(tensor, path, torch_module, name)
            mine = ours[name]
            if store == "_buffers" and value is not None and mine is not None \
                    and value.dtype.kind in "iub" and mine.dtype != value.dtype:
                # an integer buffer (num_batches_tracked) keeps torch's dtype
                # (int32 after a load of such a checkpoint): assignment would
                # cast it to the twin's int64
                ours[name] = _frozen_copy(value, value.dtype, f"{twin._get_name()}.{name}")
                twin._bump_version()
            else:
                setattr(twin, name, value)


def _check_keys(twin, torch_module, path):
    """The twin's state_dict keys are torch's, in torch's order: weight
    files move between the two unchanged."""
    ours = list(twin.state_dict())
    theirs = list(torch_module.state_dict(keep_vars=True))
    if ours != theirs:
        missing = [k for k in theirs if k not in ours]
        extra = [k for k in ours if k not in theirs]
        detail = (f"missing {missing}, extra {extra}" if missing or extra
                  else "the same keys in another order")
        raise _cannot(path, torch_module, "its skipblocks twin's state_dict keys are not "
                      f"torch's ({detail})")


# -- layers --------------------------------------------------------------------

_MISSING = object()


def _identical(ours, theirs):
    """Equal and of the same type (2 and (2, 2) print differently in a repr)."""
    return type(ours) is type(theirs) and ours == theirs


class _Layer:
    """A torch.nn layer skipblocks has: its twin is ``sb_class(**arguments)``
    with the torch layer's attributes of the same names (skipblocks' layers
    keep torch's attribute names), plus ``bias=`` (whether torch's bias is
    there) and ``dtype=`` (the dtype of torch's tensors) where the
    constructor takes them."""

    def __init__(self, sb_class, attributes, takes_bias=False, takes_dtype=False, check=None):
        self.sb_class = sb_class
        self.attributes = attributes
        self.takes_bias = takes_bias
        self.takes_dtype = takes_dtype
        self.check = check  # check(t, path): raises for a setting the twin cannot run

    def arguments(self, torch_module, dtype):
        arguments = {name: getattr(torch_module, name) for name in self.attributes}
        if self.takes_bias:
            arguments["bias"] = torch_module.bias is not None
        if self.takes_dtype and dtype is not None:
            arguments["dtype"] = dtype
        return arguments

    def matches(self, twin, torch_module):
        """``twin`` (a layer a block's constructor made) is what this torch
        layer converts to, up to the values of its tensors."""
        return (type(twin) is self.sb_class
                and all(_identical(getattr(twin, name, _MISSING), getattr(torch_module, name))
                        for name in self.attributes)
                and _same_tensor_layout(twin, torch_module))


# skipblocks' interpolate: 'nearest' (3-D or 4-D input), 'bilinear' (4-D)
_UPSAMPLE_MODES = ("nearest", "bilinear")


def _check_upsample(t, path):
    """torch.nn.Upsample accepts any mode and fails on its first call; the
    twin would too, so a mode skipblocks has not is refused here."""
    if t.mode not in _UPSAMPLE_MODES:
        raise _cannot(path, t, f"mode={t.mode!r}: skipblocks' Upsample has mode 'nearest' "
                      "(3-D or 4-D input) and 'bilinear' (4-D input) only")


_LAYERS = {
    "Conv2d": _Layer(layers.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride",
                                     "padding", "dilation", "groups", "padding_mode"),
                     takes_bias=True, takes_dtype=True),
    "ConvTranspose2d": _Layer(layers.ConvTranspose2d,
                              ("in_channels", "out_channels", "kernel_size", "stride",
                               "padding", "output_padding", "groups", "dilation",
                               "padding_mode"),
                              takes_bias=True, takes_dtype=True),
    # torch 2.13's keyword-only bias: whether an affine BatchNorm has one
    "BatchNorm2d": _Layer(layers.BatchNorm2d, ("num_features", "eps", "momentum", "affine",
                                               "track_running_stats"),
                          takes_bias=True, takes_dtype=True),
    "Linear": _Layer(layers.Linear, ("in_features", "out_features"), takes_bias=True,
                     takes_dtype=True),
    "ReLU": _Layer(layers.ReLU, ("inplace",)),
    "Sigmoid": _Layer(layers.Sigmoid, ()),
    "MaxPool2d": _Layer(layers.MaxPool2d, ("kernel_size", "stride", "padding", "dilation",
                                           "return_indices", "ceil_mode")),
    "AvgPool2d": _Layer(layers.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode",
                                           "count_include_pad", "divisor_override")),
    "AdaptiveAvgPool2d": _Layer(layers.AdaptiveAvgPool2d, ("output_size",)),
    "Upsample": _Layer(layers.Upsample, ("size", "scale_factor", "mode", "align_corners",
                                         "recompute_scale_factor"),
                         check=_check_upsample),
    "Dropout": _Layer(layers.Dropout, ("p", "inplace")),
    "Flatten": _Layer(layers.Flatten, ("start_dim", "end_dim")),
    "Identity": _Layer(layers.Identity, ()),
}

_CONTAINERS = {"Sequential": containers.Sequential, "ModuleList": containers.ModuleList,
               "ModuleDict": containers.ModuleDict}


# -- blocks: constructor arguments read from the torch module --------------------

def _read(torch_module, dotted, default=None):
    """The attribute at a dotted path below a torch module (children by
    name, "branch2.0.conv.out_channels"), or ``default`` when a step is
    missing -- a child the user replaced by one without that attribute."""
    value = torch_module
    for step in dotted.split("."):
        value = getattr(value, step, _MISSING)
        if value is _MISSING:
            return default
    return value


def _int(torch_module, dotted, default=1):
    """A constructor argument read as _read does: a size, or the first
    entry of a pair (a stride, a dilation); ``default`` when it is not a
    non-negative int. The arguments only shape the children the twin's
    constructor makes and the plain attributes it sets; every child is then
    replaced by the converted torch child and the attributes are copied
    from torch, so a default costs time (children made twice), never a
    different result."""
    value = _read(torch_module, dotted, default)
    if isinstance(value, tuple) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    return value


def _number(torch_module, dotted, default):
    value = _read(torch_module, dotted, default)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _count(torch_module, dotted):
    """How many children the container at ``dotted`` has (1 if unknown)."""
    children = getattr(_read(torch_module, dotted, None), "_modules", None)
    return max(1, len(children)) if children is not None else 1


def _ratio(numerator, denominator):
    return max(1, numerator // denominator) if denominator > 0 else 1


def _residual_block(t, dtype, given, present):
    downsample = given.get("downsample")
    stride = [_int(t, "conv1.stride"), _int(t, "conv2.stride")]
    return blocks.ResidualBlock(_int(t, "conv1.in_channels"), _int(t, "conv1.out_channels"),
                                stride=stride, downsample=downsample, dtype=dtype)


def _se_residual_block(t, dtype, given, present):
    downsample = given.get("downsample")
    stride = [_int(t, "conv1.stride"), _int(t, "conv2.stride")]
    reduction = _ratio(_int(t, "se.fc.0.in_features"), _int(t, "se.fc.0.out_features"))
    return blocks.SEResidualBlock(_int(t, "conv1.in_channels"), _int(t, "conv1.out_channels"),
                                  stride=stride, downsample=downsample, reduction=reduction,
                                  dtype=dtype)


def _dense_layer(t, dtype, given, present):
    growth = _int(t, "conv2.out_channels")
    return blocks.DenseLayer(_int(t, "bn1.num_features"), growth,
                             _ratio(_int(t, "conv1.out_channels"), growth), dtype=dtype)


def _dense_block(t, dtype, given, present):
    growth = _int(t, "block.dense0.conv2.out_channels")
    return blocks.DenseBlock(_count(t, "block"), _int(t, "block.dense0.bn1.num_features"),
                             growth, _ratio(_int(t, "block.dense0.conv1.out_channels"), growth),
                             dtype=dtype)


def _se_attention(t, dtype, given, present):
    channel = _int(t, "fc.0.in_features")
    return blocks.SEAttention(channel, _ratio(channel, _int(t, "fc.0.out_features")),
                              dtype=dtype)


def _double_conv(t, dtype, given, present):
    return unet.DoubleConv(_int(t, "double_conv.0.in_channels"),
                           _int(t, "double_conv.3.out_channels"),
                           _int(t, "double_conv.0.out_channels"), dtype=dtype)


def _down(t, dtype, given, present):
    return unet.Down(_int(t, "maxpool_conv.1.double_conv.0.in_channels"),
                     _int(t, "maxpool_conv.1.double_conv.3.out_channels"), dtype=dtype)


def _up(t, dtype, given, present):
    # milesial's Up: bilinear=True makes `up` an Upsample (keeping the
    # channels), bilinear=False a ConvTranspose2d halving them
    bilinear = type(_read(t, "up", None)).__name__ == "Upsample"
    in_channels = _int(t, "conv.double_conv.0.in_channels") if bilinear \
        else _int(t, "up.in_channels")
    return unet.Up(in_channels, _int(t, "conv.double_conv.3.out_channels"), bilinear,
                   dtype=dtype)


def _out_conv(t, dtype, given, present):
    return unet.OutConv(_int(t, "conv.in_channels"), _int(t, "conv.out_channels"), dtype=dtype)


def _unet(t, dtype, given, present):
    return unet.UNet(_int(t, "n_channels", _int(t, "inc.double_conv.0.in_channels")),
                     _int(t, "n_classes", _int(t, "outc.conv.out_channels")),
                     bool(_read(t, "bilinear", False)), dtype=dtype)


def _basic_conv2d(t, dtype, given, present):
    conv = t._modules.get("conv")
    if type(conv).__name__ == "Conv2d":
        options = dict(kernel_size=conv.kernel_size, stride=conv.stride, padding=conv.padding,
                       dilation=conv.dilation, groups=conv.groups)
    else:
        options = dict(kernel_size=1)
    return inception.BasicConv2d(_int(t, "conv.in_channels"), _int(t, "conv.out_channels"),
                                 dtype=dtype, **options)


def _inception_arguments(t):
    return (_int(t, "branch1.conv.in_channels"), _int(t, "branch1.conv.out_channels"),
            _int(t, "branch2.0.conv.out_channels"), _int(t, "branch2.1.conv.out_channels"),
            _int(t, "branch3.0.conv.out_channels"), _int(t, "branch3.1.conv.out_channels"),
            _int(t, "branch4.1.conv.out_channels"))


def _inception(t, dtype, given, present):
    return inception.Inception(*_inception_arguments(t), dtype=dtype)


def _se_inception(t, dtype, given, present):
    reduction = _ratio(_int(t, "se.fc.0.in_features"), _int(t, "se.fc.0.out_features"))
    return inception.SEInception(*_inception_arguments(t), reduction=reduction, dtype=dtype)


def _basic_block(t, dtype, given, present):
    downsample = given.get("downsample")
    return resnet.BasicBlock(_int(t, "conv1.in_channels"), _int(t, "conv1.out_channels"),
                             _int(t, "stride"), downsample, dtype=dtype)


def _bottleneck_arguments(t):
    """Bottleneck's (inplanes, planes, stride, groups, base_width,
    dilation): width = int(planes * base_width / 64) * groups is conv2's."""
    planes = _int(t, "conv3.out_channels") // 4
    groups = _int(t, "conv2.groups")
    base_width = _ratio(_int(t, "conv2.out_channels") * 64, planes * groups) if planes else 64
    return (_int(t, "conv1.in_channels"), planes, _int(t, "stride"), groups, base_width,
            _int(t, "conv2.dilation"))


def _bottleneck(t, dtype, given, present):
    inplanes, planes, stride, groups, base_width, dilation = _bottleneck_arguments(t)
    downsample = given.get("downsample")
    return resnet.Bottleneck(inplanes, planes, stride, downsample, groups, base_width, dilation,
                             dtype=dtype)


def _timm_bottleneck_class(t):
    """timm's Bottleneck with an SE module is skipblocks' SEBottleneck (se
    after bn3, before the addition), without one torchvision's Bottleneck."""
    return se_resnet.SEBottleneck if t._modules.get("se") is not None else resnet.Bottleneck


def _timm_bottleneck(t, dtype, given, present):
    inplanes, planes, stride, groups, base_width, dilation = _bottleneck_arguments(t)
    downsample = given.get("downsample")
    return _timm_bottleneck_class(t)(inplanes, planes, stride, downsample, groups, base_width,
                                     dilation, dtype=dtype)


def _stage_sizes(t):
    return [_count(t, f"layer{i}") for i in range(1, 5)]


def _torchvision_resnet(t, dtype, given, present):
    block = resnet.BasicBlock if type(_read(t, "layer1.0", None)).__name__ == "BasicBlock" \
        else resnet.Bottleneck
    sizes = _stage_sizes(t)
    # _make_layer gives the later blocks of a dilated stage the new dilation
    dilations = [_int(t, f"layer{i}.{sizes[i - 1] - 1}.conv2.dilation") for i in range(1, 5)]
    dilate = [dilations[i] > dilations[i - 1] for i in range(1, 4)]
    return resnet.ResNet(block, sizes, num_classes=_int(t, "fc.out_features", 1000),
                         groups=_int(t, "groups"),
                         width_per_group=_int(t, "base_width", 64),
                         replace_stride_with_dilation=dilate if block is resnet.Bottleneck
                         else None, dtype=dtype)


def _timm_resnet(t, dtype, given, present):
    first = _read(t, "layer1.0", None)
    block = _timm_bottleneck_class(first) if first is not None else resnet.Bottleneck
    groups = _int(t, "layer1.0.conv2.groups")
    width = _int(t, "layer1.0.conv2.out_channels", 64)
    return resnet.ResNet(block, _stage_sizes(t), num_classes=_int(t, "fc.out_features", 1000),
                         groups=groups, width_per_group=_ratio(width, groups), dtype=dtype)


def _torchvision_dense_layer(t, dtype, given, present):
    growth = _int(t, "conv2.out_channels")
    return densenet._DenseLayer(_int(t, "norm1.num_features"), growth,
                                _ratio(_int(t, "conv1.out_channels"), growth),
                                _number(t, "drop_rate", 0.0),
                                bool(_read(t, "memory_efficient", False)), dtype=dtype)


def _torchvision_dense_block(t, dtype, given, present):
    growth = _int(t, "denselayer1.conv2.out_channels")
    return densenet._DenseBlock(len(present), _int(t, "denselayer1.norm1.num_features"),
                                _ratio(_int(t, "denselayer1.conv1.out_channels"), growth),
                                growth, _number(t, "denselayer1.drop_rate", 0.0),
                                bool(_read(t, "denselayer1.memory_efficient", False)),
                                dtype=dtype)


def _transition(t, dtype, given, present):
    return densenet._Transition(_int(t, "norm.num_features"), _int(t, "conv.out_channels"),
                                dtype=dtype)


def _densenet(t, dtype, given, present):
    features = _read(t, "features", None)
    names = list(getattr(features, "_modules", {}))
    block_config = tuple(_count(t, f"features.{name}") for name in names
                         if name.startswith("denseblock"))
    growth = _int(t, "features.denseblock1.denselayer1.conv2.out_channels", 32)
    return densenet.DenseNet(
        growth, block_config, _int(t, "features.conv0.out_channels", 64),
        _ratio(_int(t, "features.denseblock1.denselayer1.conv1.out_channels"), growth),
        _number(t, "features.denseblock1.denselayer1.drop_rate", 0.0),
        _int(t, "classifier.out_features", 1000),
        bool(_read(t, "features.denseblock1.denselayer1.memory_efficient", False)),
        dtype=dtype)


def _inception_aux(t, dtype, given, present):
    return models.InceptionAux(_int(t, "conv.conv.in_channels"),
                                  _int(t, "fc2.out_features"),
                                  dropout=_number(t, "dropout.p", 0.7), dtype=dtype)


def _googlenet(t, dtype, given, present):
    with_aux = "aux1" in present or "aux2" in present
    twin = models.GoogLeNet(_int(t, "fc.out_features", 1000), aux_logits=with_aux,
                            transform_input=bool(_read(t, "transform_input", False)),
                            init_weights=False, dropout=_number(t, "dropout.p", 0.2),
                            dropout_aux=_number(t, "aux1.dropout.p", 0.7), dtype=dtype)
    for name in ("aux1", "aux2"):
        if with_aux and name not in present:
            setattr(twin, name, None)  # one head only: the other one dropped
    return twin


def _se_module(t, dtype, given, present):
    return se_resnet.SEModule(_int(t, "fc1.in_channels"), rd_channels=_int(t, "fc1.out_channels"),
                              bias=_read(t, "fc1.bias", None) is not None, dtype=dtype)


# -- blocks: what has to hold beyond the layout ----------------------------------

def _exactly(torch_module, *names):
    """Its class is one of torch.nn's ``names`` itself (not a subclass)."""
    cls = type(torch_module)
    return cls.__name__ in names and cls.__module__.startswith("torch.nn.")


def _check_timm_bottleneck(t, path):
    # skipblocks' Bottleneck has one ReLU module, `relu`, applied after bn1,
    # bn2 and the addition, as torchvision's; timm's act1 becomes it
    for name in ("act1", "act2", "act3"):
        child = t._modules[name]
        if not _exactly(child, "ReLU"):
            raise _cannot(_join(path, name), child,
                          "skipblocks' Bottleneck applies one ReLU after bn1, bn2 and the "
                          "residual addition, so timm's act1, act2 and act3 must all be "
                          "torch.nn.ReLU")
    # anti-aliasing, DropBlock and stochastic depth: only when disabled (Identity)
    for name in ("drop_block", "aa", "drop_path"):
        child = t._modules.get(name)
        if child is not None and not _exactly(child, "Identity"):
            raise _cannot(_join(path, name), child,
                          f"skipblocks' Bottleneck has no {name} (only torch.nn.Identity, i.e. "
                          "timm with it disabled, converts)")


def _check_timm_resnet(t, path):
    if _read(t, "drop_rate", 0):
        raise _cannot(path, t, f"drop_rate={t.drop_rate}: skipblocks' ResNet has no dropout "
                      "before fc (build the timm model with drop_rate=0)")
    pool = t._modules["global_pool"]
    where = _join(path, "global_pool")
    if type(pool).__name__ != "SelectAdaptivePool2d" or list(pool._modules) != ["pool",
                                                                                "flatten"]:
        raise _cannot(where, pool, "timm's ResNet converts with global_pool = "
                      "SelectAdaptivePool2d(pool_type='avg', flatten=True) only")
    import torch  # already imported by from_torch
    # absorbed into the twin (its pool becomes avgpool): its forward must be timm's
    _check_forward(torch.nn, pool, where, ("SelectAdaptivePool2d",))
    flatten = pool._modules["flatten"]
    if not (_exactly(flatten, "Flatten") and flatten.start_dim == 1 and flatten.end_dim == -1):
        raise _cannot(_join(where, "flatten"), flatten,
                      "skipblocks' ResNet flattens from dim 1 before fc, as timm's "
                      "SelectAdaptivePool2d(flatten=True) does with torch.nn.Flatten(1)")
    if not (_exactly(pool._modules["pool"], "AdaptiveAvgPool2d")
            and pool._modules["pool"].output_size in (1, (1, 1))):
        raise _cannot(_join(where, "pool"), pool._modules["pool"],
                      "skipblocks' ResNet pools with AdaptiveAvgPool2d to 1x1 (timm's "
                      "pool_type='avg')")


def _check_se_module(t, path):
    if _read(t, "add_maxpool", False):
        raise _cannot(path, t, "add_maxpool=True: skipblocks' SEModule pools by the mean only")


# -- blocks: the class's own forward -------------------------------------------------

# what every module's call goes through: a class that changes these runs
# something else than its forward
_CALL = ("__call__", "_call_impl", "_wrapped_call_impl")


def _methods(cls):
    """The methods (functions, static and class methods, properties) a
    class defines itself, but its constructor."""
    return {name for name, value in vars(cls).items()
            if name != "__init__" and (callable(value) or isinstance(
                value, (staticmethod, classmethod, property)))}


def _check_forward(nn, t, path, class_names, forward_from=None):
    """The module runs the forward of the class skipblocks recognises by
    name (the deepest class of its MRO bearing one of ``class_names``):
    refused when a class before it in the MRO (a subclass, a mixin)
    defines forward or any other method the recognised class or its own
    non-torch bases define (the helpers a forward calls: torchvision
    ResNet's _forward_impl, timm's forward_features / forward_head, ...),
    when the class changes how a module is called, or when its forward is
    not the recognised class's own (``forward_from``: the torch.nn class
    whose forward it inherits instead, as torchvision's _Transition runs
    torch.nn.Sequential's)."""
    cls = type(t)
    mro = cls.__mro__
    depth = max(i for i, c in enumerate(mro) if c.__name__ in class_names)
    base = mro[depth]
    recognised = f"{base.__module__}.{base.__qualname__}"
    methods = {"forward"}.union(*(_methods(c) for c in mro[depth:]
                                  if c is not object and not c.__module__.startswith("torch.")))
    overridden = sorted({name for c in mro[:depth] for name in vars(c) if name in methods})
    if overridden:
        raise _cannot(path, t, f"its class {cls.__module__}.{cls.__qualname__} overrides "
                      f"{', '.join(overridden)} of {recognised}, which skipblocks recognises "
                      "by its name and children and whose forward it reproduces: the override "
                      "may compute something else (only that class itself converts)")
    changed = [name for name in _CALL if getattr(cls, name, None) is not getattr(nn.Module, name,
                                                                                  None)]
    if changed:
        raise _cannot(path, t, f"its class {cls.__module__}.{cls.__qualname__} overrides "
                      f"torch.nn.Module's {', '.join(changed)}, so calling it may not run the "
                      f"forward of {recognised}, which skipblocks reproduces")
    if forward_from is not None:
        if cls.forward is not getattr(nn, forward_from).forward:
            raise _cannot(path, t, f"its forward is not torch.nn.{forward_from}'s, which the "
                          f"{base.__name__} skipblocks recognises runs and the twin reproduces")
    elif "forward" not in vars(base):
        owner = next((c for c in mro if "forward" in vars(c)), nn.Module)
        raise _cannot(path, t, f"its forward is {owner.__module__}.{owner.__qualname__}'s, not "
                      f"one {recognised} defines itself, the one skipblocks reproduces")


def _check_child_attributes(spec, t, path):
    """A child the block's forward reads (an optional one: a residual
    block's downsample) that is a plain attribute holding something else
    than None -- a function, which torch's forward calls -- instead of a
    registered child module: the twin would not have it."""
    if callable(spec.layout):
        return
    for entry in spec.layout:
        name = entry.rstrip("?")
        value = vars(t).get(name)
        if value is not None:
            raise _cannot(path, t, f"its {name} is a plain attribute holding a "
                          f"{type(value).__name__}, not a child module or None: its forward "
                          "would call it, and skipblocks converts torch.nn.Modules only")


# -- blocks: the table -----------------------------------------------------------

class _Block:
    """A block or network skipblocks has.

    ``class_names``: the torch classes' names it matches; ``layout``: its
    children's names in order, "name?" for an optional one, or a function
    of the list of names; ``build(t, dtype, given, present)``: the twin,
    from its constructor, given the converted children it takes as
    arguments (``given``) and torch's non-None child names (``present``);
    ``children(t)``: (twin's name, torch's dotted
    name) of each child to convert into the twin (by default each torch
    child under its own name); ``attributes``: plain attributes its forward
    reads, copied from torch; ``check(t, path)``: raises for settings the
    twin does not implement; ``target(t)``: the twin's class;
    ``forward_from``: the torch.nn class whose forward the class inherits
    (else it defines its own; see _check_forward)."""

    def __init__(self, description, class_names, layout, target, build, attributes=(),
                 children=None, check=None, forward_from=None):
        self.description = description
        self.class_names = class_names
        self.layout = layout
        self.target = target if callable(target) and not isinstance(target, type) \
            else (lambda t, cls=target: cls)
        self.build = build
        self.attributes = attributes
        self.children = children or (lambda t: [(name, name) for name, child
                                                in t._modules.items() if child is not None])
        self.check = check
        self.forward_from = forward_from

    def fits(self, names):
        if callable(self.layout):
            return self.layout(names)
        wanted = [entry.rstrip("?") for entry in self.layout
                  if not entry.endswith("?") or entry[:-1] in names]
        return names == wanted

    def expected(self):
        if callable(self.layout):
            return self.layout.__doc__
        return _names(entry[:-1] + " (optional)" if entry.endswith("?") else entry
                      for entry in self.layout)


def _numbered(prefix):
    def layout(names):
        return names == [f"{prefix}{i + 1}" for i in range(len(names))]
    layout.__doc__ = f"({prefix}1, {prefix}2, ...)"
    return layout


def _timm_bottleneck_children(t):
    # timm: conv1, bn1, act1, conv2, bn2, drop_block, act2, aa, conv3, bn3,
    # se, act3, downsample; skipblocks: conv1 ... bn3, se, relu, downsample
    mapping = [(name, name) for name in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")]
    if t._modules.get("se") is not None:
        mapping.append(("se", "se"))
    mapping.append(("relu", "act1"))
    if t._modules.get("downsample") is not None:
        mapping.append(("downsample", "downsample"))
    return mapping


def _timm_resnet_children(t):
    # timm: conv1, bn1, act1, maxpool, layer1..4, global_pool (pool, then
    # flatten), fc; skipblocks (torchvision's names): ..., relu, ..., avgpool, fc
    return ([("conv1", "conv1"), ("bn1", "bn1"), ("relu", "act1"), ("maxpool", "maxpool")]
            + [(f"layer{i}", f"layer{i}") for i in range(1, 5)]
            + [("avgpool", "global_pool.pool"), ("fc", "fc")])


_RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
_GOOGLENET = ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b",
              "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d",
              "inception4e", "maxpool4", "inception5a", "inception5b", "aux1?", "aux2?",
              "avgpool", "dropout", "fc")

_BLOCKS = [
    # the document (skipblocks.reference.document)
    _Block("the document's ResidualBlock", ("ResidualBlock",),
           ("conv1", "conv2", "bn", "downsample?"), blocks.ResidualBlock, _residual_block),
    _Block("the document's Dense_Layer", ("Dense_Layer",), ("bn1", "conv1", "bn2", "conv2"),
           blocks.DenseLayer, _dense_layer),
    _Block("the document's Dense_Block", ("Dense_Block",), ("block",), blocks.DenseBlock,
           _dense_block),
    _Block("the document's SEAttention", ("SEAttention",), ("avg_pool", "fc"),
           blocks.SEAttention, _se_attention),
    # the document's other systems (skipblocks.reference.systems)
    _Block("SEResidualBlock", ("SEResidualBlock",),
           ("conv1", "conv2", "bn", "downsample?", "se"), blocks.SEResidualBlock,
           _se_residual_block),
    _Block("U-Net's DoubleConv", ("DoubleConv",), ("double_conv",), unet.DoubleConv,
           _double_conv),
    _Block("U-Net's Down", ("Down",), ("maxpool_conv",), unet.Down, _down),
    _Block("U-Net's Up", ("Up",), ("up", "conv"), unet.Up, _up),
    _Block("U-Net's OutConv", ("OutConv",), ("conv",), unet.OutConv, _out_conv),
    _Block("milesial's UNet", ("UNet",),
           ("inc", "down1", "down2", "down3", "down4", "up1", "up2", "up3", "up4", "outc"),
           unet.UNet, _unet, attributes=("n_channels", "n_classes", "bilinear")),
    _Block("torchvision's BasicConv2d", ("BasicConv2d",), ("conv", "bn"),
           inception.BasicConv2d, _basic_conv2d),
    _Block("torchvision's Inception", ("Inception",),
           ("branch1", "branch2", "branch3", "branch4"), inception.Inception, _inception),
    _Block("SEInception", ("SEInception",), ("branch1", "branch2", "branch3", "branch4", "se"),
           inception.SEInception, _se_inception),
    # torchvision (skipblocks.reference.networks)
    _Block("torchvision's BasicBlock", ("BasicBlock",),
           ("conv1", "bn1", "relu", "conv2", "bn2", "downsample?"), resnet.BasicBlock,
           _basic_block, attributes=("stride",)),
    _Block("torchvision's Bottleneck", ("Bottleneck",),
           ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu", "downsample?"),
           resnet.Bottleneck, _bottleneck, attributes=("stride",)),
    _Block("torchvision's ResNet", ("ResNet",),
           ("conv1", "bn1", "relu", "maxpool") + _RESNET_STAGES + ("avgpool", "fc"),
           resnet.ResNet, _torchvision_resnet,
           attributes=("inplanes", "dilation", "groups", "base_width")),
    _Block("torchvision's _DenseLayer", ("_DenseLayer",),
           ("norm1", "relu1", "conv1", "norm2", "relu2", "conv2"), densenet._DenseLayer,
           _torchvision_dense_layer, attributes=("drop_rate", "memory_efficient")),
    _Block("torchvision's _DenseBlock", ("_DenseBlock",), _numbered("denselayer"),
           densenet._DenseBlock, _torchvision_dense_block),
    _Block("torchvision's _Transition", ("_Transition",), ("norm", "relu", "conv", "pool"),
           densenet._Transition, _transition, forward_from="Sequential"),
    _Block("torchvision's DenseNet", ("DenseNet",), ("features", "classifier"),
           densenet.DenseNet, _densenet),
    _Block("torchvision's InceptionAux", ("InceptionAux",), ("conv", "fc1", "fc2", "dropout"),
           models.InceptionAux, _inception_aux),
    _Block("torchvision's GoogLeNet", ("GoogLeNet",), _GOOGLENET, models.GoogLeNet,
           _googlenet, attributes=("aux_logits", "transform_input")),
    # timm (the reference's TimmBottleneck / TimmResNet are timm's Bottleneck / ResNet)
    _Block("timm's SEModule", ("SEModule",), ("fc1", "bn", "act", "fc2", "gate"),
           se_resnet.SEModule, _se_module, check=_check_se_module),
    _Block("timm's Bottleneck", ("Bottleneck", "TimmBottleneck"),
           ("conv1", "bn1", "act1", "conv2", "bn2", "drop_block", "act2", "aa", "conv3", "bn3",
            "se?", "act3", "downsample?", "drop_path?"),
           _timm_bottleneck_class, _timm_bottleneck, attributes=("stride",),
           children=_timm_bottleneck_children, check=_check_timm_bottleneck),
    _Block("timm's ResNet", ("ResNet", "TimmResNet"),
           ("conv1", "bn1", "act1", "maxpool") + _RESNET_STAGES + ("global_pool", "fc"),
           resnet.ResNet, _timm_resnet, children=_timm_resnet_children,
           check=_check_timm_resnet),
]

_BLOCKS_BY_NAME = {}
for _block in _BLOCKS:
    for _name in _block.class_names:
        _BLOCKS_BY_NAME.setdefault(_name, []).append(_block)
del _block, _name


# -- the conversion ----------------------------------------------------------------

class _Converter:
    """One conversion: converts each torch module once (a module torch
    shares between parents is shared in the result) and gives each module a
    block's constructor made to at most one torch module."""

    def __init__(self, torch):
        self.nn = torch.nn
        self.converted = {}  # id(torch module) -> (torch module, twin)
        self.claimed = set()  # ids of the constructor-made modules taken

    def convert(self, t, path, candidate=None):
        """The twin of torch module ``t`` at ``path``; ``candidate``: the
        child a block's constructor made in its place, kept when it is
        already what ``t`` converts to."""
        done = self.converted.get(id(t))
        if done is not None:
            return done[1]
        if candidate is not None and id(candidate) in self.claimed:
            candidate = None
        name = type(t).__name__
        if name in _LAYERS and type(t) is getattr(self.nn, name):
            twin = self._layer(_LAYERS[name], t, path, candidate)
            _copy_tensors(twin, t, path)
        elif name in _CONTAINERS and type(t) is getattr(self.nn, name):
            twin = self._container(_CONTAINERS[name], t, path, candidate)
            _copy_tensors(twin, t, path)
        elif name in _BLOCKS_BY_NAME:
            twin = self._block(t, path, candidate)
        else:
            raise _cannot(path, t, self._unsupported_reason(t))
        # each module's own flag, as torch keeps it (parts may be in eval mode)
        object.__setattr__(twin, "training", bool(t.training))
        self.converted[id(t)] = (t, twin)
        self.claimed.add(id(twin))
        return twin

    def _unsupported_reason(self, t):
        for name in list(_LAYERS) + list(_CONTAINERS):
            base = getattr(self.nn, name)
            if isinstance(t, base):
                return (f"skipblocks has no such layer; it is a subclass of torch.nn.{name}, and "
                        f"only torch.nn.{name} itself converts (a subclass may compute something "
                        "else)")
        if type(t).__module__.startswith("torch."):
            return "skipblocks has no such layer"
        return "skipblocks has no such layer or block (see help(skipblocks.from_torch))"

    def _layer(self, spec, t, path, candidate):
        if spec.check is not None:
            spec.check(t, path)
        if candidate is not None and spec.matches(candidate, t):
            return candidate
        dtype = _floating_dtype_of_leaf(t, path)
        try:
            return spec.sb_class(**spec.arguments(t, dtype))
        except (NotImplementedError, ValueError, RuntimeError, TypeError, IndexError) as error:
            # a setting skipblocks' constructor refuses (its message says which)
            raise _cannot(path, t, str(error)) from error

    def _container(self, sb_class, t, path, candidate):
        twin = sb_class()
        # a container is cheap to make anew; its children may still be the
        # constructor-made ones at the same names
        made = candidate.__dict__["_modules"] if type(candidate) is sb_class else {}
        for name, child in t._modules.items():
            converted = None if child is None else self.convert(child, _join(path, name),
                                                                made.get(name))
            try:
                twin.add_module(name, converted)
            except (KeyError, TypeError) as error:
                raise _cannot(path, t, f"its child name {name!r} cannot be a skipblocks "
                              f"child name: {error}") from error
        return twin

    def _block(self, t, path, candidate):
        names = [name for name, child in t._modules.items() if child is not None]
        specs = _BLOCKS_BY_NAME[type(t).__name__]
        spec = next((s for s in specs if s.fits(names)), None)
        if spec is None:
            expected = " or ".join(f"{s.description} {s.expected()}" for s in specs)
            raise _cannot(path, t, f"its children {_names(names)} are not laid out as "
                          f"{expected}")
        _check_forward(self.nn, t, path, spec.class_names, spec.forward_from)
        _check_child_attributes(spec, t, path)
        if spec.check is not None:
            spec.check(t, path)
        mapping = spec.children(t)
        wanted = [ours for ours, _ in mapping]
        sb_class = spec.target(t)
        if candidate is not None and type(candidate) is sb_class \
                and _child_names(candidate) == wanted:
            twin = candidate
        else:
            twin = self._construct(spec, t, path, names)
        # a block's own tensors (none in skipblocks' blocks) before its children's
        _copy_tensors(twin, t, path)
        for ours, theirs in mapping:
            child = t.get_submodule(theirs)
            made = twin.__dict__["_modules"].get(ours)
            setattr(twin, ours, self.convert(child, _join(path, theirs), made))
        for attribute in spec.attributes:
            if hasattr(t, attribute):
                setattr(twin, attribute, getattr(t, attribute))
        if _child_names(twin) != wanted:
            raise _cannot(path, t, f"its skipblocks twin's children {_names(_child_names(twin))} "
                          f"are not {_names(wanted)}")
        if all(ours == theirs for ours, theirs in mapping):
            _mirror_empty_children(twin, t)
        _check_keys(twin, t, path)
        return twin

    def _construct(self, spec, t, path, present):
        """The block's twin from its constructor. The children the
        constructor takes as arguments (a residual block's downsample,
        which it registers in its place among the others) are converted
        first; the rest are the constructor's, replaced afterwards."""
        given = {name: self.convert(t._modules[name], _join(path, name))
                 for name in ("downsample",) if t._modules.get(name) is not None}
        try:
            return spec.build(t, _floating_dtype_of_tree(t), given, present)
        except (NotImplementedError, ValueError, RuntimeError, TypeError, IndexError,
                ZeroDivisionError) as error:
            raise _cannot(path, t, f"skipblocks' {spec.target(t).__name__} cannot be built "
                          f"with its settings: {error}") from error


def _mirror_empty_children(twin, torch_module):
    """The twin's children in torch's order with torch's None entries (a
    child set to None after it was registered, as torchvision's pretrained
    GoogLeNet has aux1 and aux2), which torch's repr prints as
    "(aux1): None"; the twin's own None entries that torch has not are
    dropped. Called once the non-None children are known to be torch's."""
    children = twin.__dict__["_modules"]
    if list(children) == list(torch_module._modules):
        return
    order = [(name, None if child is None else children[name])
             for name, child in torch_module._modules.items()]
    children.clear()
    children.update(order)


def _child_names(module):
    return [name for name, child in module.__dict__["_modules"].items() if child is not None]

"""torchvision's ResNet (torchvision.models.resnet): ``ResNet``,
``BasicBlock``, ``Bottleneck`` and the builders ``resnet18`` ...
``resnet152``, with torchvision's structure, constructor arguments,
state_dict keys (in order), repr and initialisation.

``Bottleneck`` is torchvision's "ResNet v1.5": the stride is on the 3x3
convolution. In eval mode each convolution runs with its BatchNorm folded
into its packed weights, the ReLU -- and, for a block's last convolution,
the residual -- applied as its output is stored.
"""
import functools

import numpy as np

from .. import functional as F
from ..containers import Sequential
from ..layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU,
                      _check_factory_kwargs, flatten)
from ..module import Module, _compute_dtype
from .. import random as _random
from .. import _blocked
from . import _weights
from ._fused import conv_bn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152"]


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1, *, dtype=None):
    """3x3 convolution with padding (torchvision's conv3x3)."""
    return Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                  groups=groups, bias=False, dilation=dilation, dtype=dtype)


def conv1x1(in_planes, out_planes, stride=1, *, dtype=None):
    """1x1 convolution (torchvision's conv1x1)."""
    return Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False, dtype=dtype)


def _norm_layer(norm_layer, dtype):
    """torchvision's ``norm_layer`` argument: None means BatchNorm2d (here in
    the network's dtype); anything else is called with the channel count."""
    if norm_layer is None:
        return functools.partial(BatchNorm2d, dtype=dtype)  # a partial pickles, a lambda not
    return norm_layer


class BasicBlock(Module):
    """torchvision's BasicBlock (ResNet-18/34):
    relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x)), two 3x3
    convolutions, the first with ``stride``. ``downsample`` (None: the
    identity) is any module or callable. As torchvision's, only groups=1
    and base_width=64 are supported, and no dilation. ``dtype``
    (keyword-only, beyond torchvision): float32 (default) or float64."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("BasicBlock", None, dtype)
        norm_layer = _norm_layer(norm_layer, dtype)
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride, dtype=dtype)
        self.bn1 = norm_layer(planes)
        self.relu = ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dtype=dtype)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        x = F.as_real(x, "BasicBlock", "input", _compute_dtype(self))
        out = conv_bn(self.conv1, self.bn1, x, relu=self.relu, layer="BasicBlock")
        return conv_bn(self.conv2, self.bn2, out, relu=self.relu,
                       residual=functools.partial(_identity, self.downsample, x),
                       layer="BasicBlock")


class Bottleneck(Module):
    """torchvision's Bottleneck (ResNet-50/101/152, v1.5):
    relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + downsample(x))
    with conv1 1x1 to ``width`` = int(planes * base_width / 64) * groups
    channels, conv2 3x3 (``stride``, ``groups``, ``dilation``) and conv3 1x1
    to planes * 4. ``dtype`` (keyword-only, beyond torchvision): float32
    (default) or float64."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs(type(self).__name__, None, dtype)
        norm_layer = _norm_layer(norm_layer, dtype)
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width, dtype=dtype)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation, dtype=dtype)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion, dtype=dtype)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        layer = type(self).__name__
        x = F.as_real(x, layer, "input", _compute_dtype(self))
        out = conv_bn(self.conv1, self.bn1, x, relu=self.relu, layer=layer)
        out = conv_bn(self.conv2, self.bn2, out, relu=self.relu, layer=layer)
        return conv_bn(self.conv3, self.bn3, out, relu=self.relu,
                       residual=functools.partial(_identity, self.downsample, x), layer=layer)


def _identity(downsample, x):
    """A block's residual: downsample(x), or x itself without one."""
    return x if downsample is None else downsample(x)


def _block_parts(block):
    """A BasicBlock's or Bottleneck's (conv, bn) pairs in order."""
    if type(block) is BasicBlock:
        return [(block.conv1, block.bn1), (block.conv2, block.bn2)]
    return [(block.conv1, block.bn1), (block.conv2, block.bn2), (block.conv3, block.bn3)]


def _planned_block_fits(block, shape):
    """The output shape of a BasicBlock or Bottleneck on a blocked map of
    ``shape`` when a plan can run it as its eval-mode forward does (each
    convolution with its BatchNorm folded, the last adding the residual and
    applying the ReLU), else None."""
    if not _blocked.is_relu(block.relu):
        return None
    out = shape
    for conv, bn in _block_parts(block):
        out = _blocked.conv_fits(conv, bn, out)
        if out is None:
            return None
    return _blocked.residual_fits(block.downsample, shape, out)


def _planned_block(block, x):
    """_planned_block_fits' block on the Blocked map x."""
    parts = _block_parts(block)
    out = x
    for conv, bn in parts[:-1]:
        out = _blocked.conv(conv, out, fold=bn, relu=True)
    identity = _blocked.residual(block.downsample, x)
    conv, bn = parts[-1]
    return _blocked.conv(conv, out, fold=bn, relu=True, residual=identity)


_blocked.register_block(BasicBlock, _planned_block_fits, _planned_block)
_blocked.register_block(Bottleneck, _planned_block_fits, _planned_block)


def _planned_resnet(net, x):
    """ResNet's eval-mode forward from the stem to layer4 on channel-blocked
    maps (skipblocks._blocked), or None when no plan applies to all of it.
    The same bits as the layer-by-layer path."""
    if not _blocked.plan_input_ok(net, x):
        return None
    plan = _blocked.cached_plan(net, x.shape, lambda: _resnet_plan(net, x.shape))
    if plan is None:
        return None
    return _blocked.to_nchw(_blocked.run_steps(plan[0], x), "ResNet")


def _resnet_plan(net, shape):
    if not _blocked.is_relu(net.relu):
        return None
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    if any(type(stage) is not Sequential or "forward" in stage.__dict__ for stage in stages):
        return None
    modules = [net.conv1, net.bn1, net.relu, net.maxpool] + \
        [block for stage in stages for block in stage._modules.values()]
    if any(type(m) not in _blocked.BLOCKS for m in modules[4:]):
        return None
    return _blocked.sequence_plan(modules, shape)


class ResNet(Module):
    """torchvision's ResNet: a 7x7 stride-2 stem (conv1, bn1, relu), a 3x3
    stride-2 max pool, four stages ``layer1`` ... ``layer4`` of ``block``
    (BasicBlock or Bottleneck, ``layers[i]`` of them, 64/128/256/512
    planes, stride 2 from the second stage on, or dilation instead where
    ``replace_stride_with_dilation`` says so), global average pooling and
    ``fc`` = Linear(512 * block.expansion, num_classes).

    Initialisation as torchvision's: every convolution kaiming-normal (fan
    out, ReLU gain), BatchNorm weights 1 and biases 0, ``fc`` torch's
    Linear default; ``zero_init_residual`` zeroes each block's last
    BatchNorm weight. The draws are distributed as torch's, not torch's
    numbers (skipblocks.manual_seed makes them reproducible). ``dtype``
    (keyword-only, beyond torchvision): float32 (default) or float64; it is
    passed on to ``block`` only when given, and a ``norm_layer`` of your
    own is called as it is (make it build float64 layers for a float64
    network). Eval mode runs each convolution with its BatchNorm folded in,
    and the ReLU and residual in its epilogue, where ``relu`` is still a
    ReLU; replaced modules are called as they are."""

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1,
                 width_per_group=64, replace_stride_with_dilation=None, norm_layer=None, *,
                 dtype=None):
        super().__init__()
        # a user's block is called without dtype unless one is asked for
        self._block_dtype = {} if dtype is None else {"dtype": dtype}
        self._dtype = dtype = _check_factory_kwargs(type(self).__name__, None, dtype)
        self._norm_layer = _norm_layer(norm_layer, dtype)
        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            # each element says whether to replace the 2x2 stride with a dilated convolution
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, "
                             f"got {replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False,
                            dtype=dtype)
        self.bn1 = self._norm_layer(self.inplanes)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2,
                                       dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2,
                                       dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2,
                                       dilate=replace_stride_with_dilation[2])
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = Linear(512 * block.expansion, num_classes, dtype=dtype)
        _init_resnet(self, zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        """One stage: ``blocks`` blocks of ``planes``, the first with
        ``stride`` (or a dilation instead, with ``dilate``) and a 1x1
        convolution + BatchNorm downsample where the shape changes
        (torchvision's _make_layer)."""
        dtype = self._dtype
        extra = self._block_dtype
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = Sequential(conv1x1(self.inplanes, planes * block.expansion, stride,
                                            dtype=dtype),
                                    self._norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups,
                        self.base_width, previous_dilation, self._norm_layer, **extra)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, dilation=self.dilation,
                                norm_layer=self._norm_layer, **extra))
        return Sequential(*layers)

    def forward(self, x):
        x = F.as_real(x, type(self).__name__, "input", _compute_dtype(self))
        planned = _planned_resnet(self, x) if type(self) is ResNet else None
        if planned is not None:
            x = planned
        else:
            x = conv_bn(self.conv1, self.bn1, x, relu=self.relu, layer=type(self).__name__)
            x = self.maxpool(x)
            x = self.layer1(x)
            x = self.layer2(x)
            x = self.layer3(x)
            x = self.layer4(x)
        x = self.avgpool(x)
        return self.fc(flatten(x, 1))


def _kaiming_normal_fan_out(conv):
    """torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"):
    std = sqrt(2 / (C_out * kH * kW))."""
    weight = conv.weight
    fan_out = weight.shape[0] * weight.shape[2] * weight.shape[3]
    conv.weight = _random.normal((2.0 / fan_out) ** 0.5, weight.shape, weight.dtype)


def _init_resnet(model, zero_init_residual):
    """torchvision's ResNet initialisation (see ResNet)."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            _kaiming_normal_fan_out(m)
    # BatchNorm2d starts at weight 1, bias 0 already, as torchvision sets it
    if zero_init_residual:
        for m in model.modules():
            last = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else \
                getattr(m, "bn2", None) if isinstance(m, BasicBlock) else None
            if last is not None and getattr(last, "weight", None) is not None:
                last.weight = np.zeros_like(last.weight)


def _resnet(builder, block, layers, weights, kwargs):
    """torchvision's _resnet: with weights, num_classes is the file's (a
    different num_classes raises torchvision's ValueError), then the
    state_dict is loaded strictly."""
    kwargs = _weights.builder_kwargs(builder, kwargs)
    state_dict = None
    if weights is not None:
        state_dict = _weights.state_dict_of(weights, builder)
        _weights.classes_from(state_dict, "fc.weight", builder, kwargs)
    model = ResNet(block, layers, **kwargs)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


_BUILDER_DOC = """{title} (torchvision's ``{name}``): ResNet({block}, {layers}).

    Args:
        weights: None (torchvision's initialisation), or the path of a
            weight file (torch ``.pth``/``.pt``, ``.safetensors``, ``.npz``;
            a state_dict or a checkpoint holding one, e.g. torchvision's
            published ``{name}-*.pth``) or a state_dict, loaded strictly.
            ``num_classes`` then comes from the file's ``fc.weight``.
        progress: accepted for torchvision's signature; nothing is
            downloaded.
        **kwargs: ResNet's arguments (num_classes, zero_init_residual,
            groups, width_per_group, replace_stride_with_dilation,
            norm_layer, dtype)."""


def _make_builder(name, title, block, layers):
    def builder(*, weights=None, progress=True, **kwargs):
        return _resnet(name, block, layers, weights, kwargs)
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = _BUILDER_DOC.format(title=title, name=name, block=block.__name__,
                                          layers=layers)
    return builder


resnet18 = _make_builder("resnet18", "ResNet-18", BasicBlock, [2, 2, 2, 2])
resnet34 = _make_builder("resnet34", "ResNet-34", BasicBlock, [3, 4, 6, 3])
resnet50 = _make_builder("resnet50", "ResNet-50", Bottleneck, [3, 4, 6, 3])
resnet101 = _make_builder("resnet101", "ResNet-101", Bottleneck, [3, 4, 23, 3])
resnet152 = _make_builder("resnet152", "ResNet-152", Bottleneck, [3, 8, 36, 3])

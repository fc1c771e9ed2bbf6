"""torch references of whole skip-connection networks, the parity oracle for
skipblocks' network builders.

torchvision and timm cannot be imported here, so the networks are rewritten
from their published source, keeping the module structure, attribute names
(hence ``state_dict()`` keys and their order), initialisation and forward
order.  Sources read:

* torchvision ``torchvision/models/resnet.py``: ``BasicBlock``,
  ``Bottleneck`` (v1.5: the stride is on the 3x3 ``conv2``), ``ResNet`` and the
  builders ``resnet18`` ... ``resnet152``.
* torchvision ``torchvision/models/densenet.py``: ``_DenseLayer``,
  ``_DenseBlock`` (an ``nn.ModuleDict`` of ``denselayer1`` ...),
  ``_Transition``, ``DenseNet``, ``densenet121/161/169/201`` and the key
  rewrite of ``_load_state_dict``.
* torchvision ``torchvision/models/googlenet.py``: ``GoogLeNetOutputs``,
  ``InceptionAux``, ``GoogLeNet``, ``googlenet``.  ``BasicConv2d`` and
  ``Inception`` are the ones in ``.systems`` (torchvision's, ``branch3`` with
  its 3x3 kernel).
* timm ``timm/models/resnet.py`` (``Bottleneck``, ``downsample_conv``,
  ``make_blocks``, ``ResNet``, ``seresnet50``, ``seresnet101``),
  ``timm/layers/squeeze_excite.py`` (``SEModule``), ``timm/layers/helpers.py``
  (``make_divisible``), ``timm/layers/create_attn.py`` (``'se'`` ->
  ``SEModule``), ``timm/layers/classifier.py`` and
  ``timm/layers/adaptive_avgmax_pool.py`` (``SelectAdaptivePool2d``).  Only
  the configuration those two builders use is written: 7x7 stem, 1x1 conv
  downsample, output stride 32, no anti-aliasing, drop-block or drop-path.

Left out on purpose: weight downloads and weight enums, API-usage logging and
the TorchScript branches.  Facts about the published source:

* GoogLeNet's ``_forward`` returns ``(x, aux2, aux1)`` and ``forward``
  unpacks that as ``x, aux1, aux2 = self._forward(x)`` and then returns
  ``eager_outputs(x, aux2, aux1)`` = ``GoogLeNetOutputs(x, aux2, aux1)``.
  The two swaps leave ``aux_logits2`` holding the output of ``self.aux1``
  (the head on inception4a, 512 channels) and ``aux_logits1`` the output of
  ``self.aux2`` (the head on inception4d, 528 channels).  Reproduced as is.
* GoogLeNet initialises with ``trunc_normal_(mean=0, std=0.01, a=-2, b=2)``;
  ``a`` and ``b`` are absolute bounds, i.e. +-200 standard deviations, so the
  truncation practically never acts.  (Older torchvision drew from
  ``scipy.stats.truncnorm(-2, 2, scale=0.01)``, truncated at +-2 std.)
* DenseNet's ``memory_efficient`` runs ``norm1 -> relu1 -> conv1`` under
  ``torch.utils.checkpoint`` (``use_reentrant=False``) when an input requires
  grad; it is reproduced.  The outputs and gradients are the same as without
  it, but the recomputation during backward runs ``norm1`` in train mode a
  second time, so its running statistics are updated twice per step.
* timm's ``ResNet`` defaults to ``zero_init_last=True``: every
  ``Bottleneck.bn3.weight`` starts at zero, so a freshly built SE-ResNet's
  residual branches (and the SE input) are zero and each block outputs
  ``relu(shortcut)``.  torchvision's ``zero_init_residual`` defaults to False.

This module imports torch; ``import skipblocks`` never imports it.
"""
import math
import re
import warnings
from collections import OrderedDict, namedtuple

import torch
from torch import nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp

from .systems import BasicConv2d, Inception

__all__ = [
    "conv3x3", "conv1x1", "BasicBlock", "Bottleneck", "ResNet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "_DenseLayer", "_DenseBlock", "_Transition", "DenseNet",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "DENSENET_KEY_PATTERN", "old_densenet_keys", "load_densenet_state_dict",
    "GoogLeNetOutputs", "BasicConv2d", "Inception", "InceptionAux", "GoogLeNet",
    "googlenet", "googlenet_pretrained_like",
    "make_divisible", "SEModule", "get_padding", "downsample_conv",
    "SelectAdaptivePool2d", "TimmBottleneck", "TimmResNet", "seresnet50", "seresnet101",
    "NETWORKS",
]


# ---------------------------------------------------------------------------
# torchvision ResNet
# ---------------------------------------------------------------------------

def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """3x3 convolution without bias, padding = dilation."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + identity); the stride is on
    conv1.  One ``relu`` module serves both activations."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (carries the stride) -> 1x1 with
    4x expansion; relu after bn1, bn2 and after the addition."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet: 7x7/2 stem conv, BN, ReLU, 3x3/2 max pool,
    layer1..layer4, adaptive average pool to 1x1, flatten, ``fc``."""

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1,
                 width_per_group=64, replace_stride_with_dilation=None, norm_layer=None):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer

        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            # one flag per layer2..layer4: dilate instead of striding
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError(
                "replace_stride_with_dilation should be None "
                f"or a 3-element tuple, got {replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2,
                                       dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2,
                                       dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2,
                                       dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        # fc keeps nn.Linear's default init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

        # The last BN of each residual branch starts at zero, so every block
        # starts as relu(identity) (arXiv:1706.02677).
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            # keys downsample.0.weight (conv) and downsample.1.* (norm)
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                        previous_dilation, norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, dilation=self.dilation,
                                norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def _forward_impl(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)

    def forward(self, x):
        return self._forward_impl(x)


def resnet18(**kwargs):
    """ResNet-18: BasicBlock, [2, 2, 2, 2]."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs):
    """ResNet-34: BasicBlock, [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs):
    """ResNet-50: Bottleneck, [3, 4, 6, 3]."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnet101(**kwargs):
    """ResNet-101: Bottleneck, [3, 4, 23, 3]."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnet152(**kwargs):
    """ResNet-152: Bottleneck, [3, 8, 36, 3]."""
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


# ---------------------------------------------------------------------------
# torchvision DenseNet
# ---------------------------------------------------------------------------

class _DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bn_size * growth_rate channels) on the concatenation
    of all previous features, then BN-ReLU-3x3 conv (growth_rate channels),
    then dropout when drop_rate > 0.  Returns only the new features."""

    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate,
                 memory_efficient=False):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1,
                               bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1,
                               padding=1, bias=False)
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def bn_function(self, inputs):
        concated_features = torch.cat(inputs, 1)
        return self.conv1(self.relu1(self.norm1(concated_features)))

    def any_requires_grad(self, inputs):
        return any(t.requires_grad for t in inputs)

    def call_checkpoint_bottleneck(self, inputs):
        def closure(*xs):
            return self.bn_function(xs)
        return cp.checkpoint(closure, *inputs, use_reentrant=False)

    def forward(self, input):
        # accepts one tensor or the list of all previous feature maps
        prev_features = [input] if isinstance(input, torch.Tensor) else input
        if self.memory_efficient and self.any_requires_grad(prev_features):
            bottleneck_output = self.call_checkpoint_bottleneck(prev_features)
        else:
            bottleneck_output = self.bn_function(prev_features)
        new_features = self.conv2(self.relu2(self.norm2(bottleneck_output)))
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class _DenseBlock(nn.ModuleDict):
    """``denselayer1`` ... ``denselayerN``; layer i sees the block input and
    the outputs of layers 1..i-1; returns all of them concatenated."""

    _version = 2

    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate,
                 memory_efficient=False):
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate=growth_rate,
                                bn_size=bn_size, drop_rate=drop_rate,
                                memory_efficient=memory_efficient)
            self.add_module("denselayer%d" % (i + 1), layer)

    def forward(self, init_features):
        features = [init_features]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """BN, ReLU, 1x1 conv, 2x2/2 average pool (children norm, relu, conv, pool)."""

    def __init__(self, num_input_features, num_output_features):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1,
                              bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """torchvision's DenseNet-BC: ``features`` (conv0, norm0, relu0, pool0,
    denseblock1, transition1, ..., denseblock4, norm5), then relu, global
    average pool, flatten and ``classifier``."""

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64,
                 bn_size=4, drop_rate=0, num_classes=1000, memory_efficient=False):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3,
                                bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))

        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers=num_layers, num_input_features=num_features,
                                bn_size=bn_size, growth_rate=growth_rate, drop_rate=drop_rate,
                                memory_efficient=memory_efficient)
            self.features.add_module("denseblock%d" % (i + 1), block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                # a transition halves the channels (and the spatial size)
                trans = _Transition(num_input_features=num_features,
                                    num_output_features=num_features // 2)
                self.features.add_module("transition%d" % (i + 1), trans)
                num_features = num_features // 2

        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.classifier = nn.Linear(num_features, num_classes)

        # Convs: kaiming_normal_ with its defaults (fan_in, leaky_relu a=0);
        # Linear: bias 0, weight keeps nn.Linear's default init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        features = self.features(x)
        out = F.relu(features, inplace=True)
        out = F.adaptive_avg_pool2d(out, (1, 1))
        out = torch.flatten(out, 1)
        return self.classifier(out)


def densenet121(**kwargs):
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16), 64 initial features."""
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


def densenet161(**kwargs):
    """DenseNet-161: growth 48, blocks (6, 12, 36, 24), 96 initial features."""
    return DenseNet(48, (6, 12, 36, 24), 96, **kwargs)


def densenet169(**kwargs):
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32), 64 initial features."""
    return DenseNet(32, (6, 12, 32, 32), 64, **kwargs)


def densenet201(**kwargs):
    """DenseNet-201: growth 32, blocks (6, 12, 48, 32), 64 initial features."""
    return DenseNet(32, (6, 12, 48, 32), 64, **kwargs)


# torchvision's _load_state_dict pattern.  Before module names could not
# contain '.', _DenseLayer's children were 'norm.1', 'relu.1', 'conv.1',
# 'norm.2', 'relu.2', 'conv.2'; the published DenseNet files keep those keys.
# group(1) + group(2) drops the '.' before the digit.
DENSENET_KEY_PATTERN = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")

# The inverse: a current dense-layer key -> the old key.
_NEW_DENSE_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$")


def old_densenet_keys(state_dict, keep_num_batches_tracked=False):
    """A copy of a DenseNet state_dict with the dense layers' keys in the old
    form, e.g. ``features.denseblock1.denselayer1.norm1.weight`` ->
    ``features.denseblock1.denselayer1.norm.1.weight``.

    The pattern's alternatives (weight, bias, running_mean, running_var) have
    no ``num_batches_tracked``; that buffer appeared in PyTorch 0.4.1, after
    the old key form.  By default every ``num_batches_tracked`` entry is
    dropped; the copy has no ``_metadata``, so BatchNorm's loader fills a
    missing ``num_batches_tracked`` from the module's current value.  With
    ``keep_num_batches_tracked=True`` they are kept under their current
    names, never renamed: under an old dense-layer name torchvision's rewrite
    would not rename them back and a strict load would reject them.
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked") and not keep_num_batches_tracked:
            continue
        m = _NEW_DENSE_KEY.match(key)
        out[f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else key] = value
    return out


def load_densenet_state_dict(model, state_dict, strict=True):
    """What torchvision's ``_load_state_dict`` does after downloading: rename
    every key matching DENSENET_KEY_PATTERN to group(1) + group(2), then
    ``model.load_state_dict``.  torchvision renames in the downloaded dict
    itself; here a shallow copy (with its ``_metadata``, if any) is renamed,
    so the caller's dict is unchanged.  Returns load_state_dict's result."""
    sd = OrderedDict(state_dict)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        sd._metadata = metadata
    for key in list(sd.keys()):
        res = DENSENET_KEY_PATTERN.match(key)
        if res:
            sd[res.group(1) + res.group(2)] = sd[key]
            del sd[key]
    return model.load_state_dict(sd, strict=strict)


# ---------------------------------------------------------------------------
# torchvision GoogLeNet
# ---------------------------------------------------------------------------

# Field order as published: logits, aux_logits2, aux_logits1.
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
_GoogLeNetOutputs = GoogLeNetOutputs


class InceptionAux(nn.Module):
    """Auxiliary head: adaptive avg pool to 4x4, 1x1 BasicConv2d to 128,
    flatten (2048), fc1 + ReLU (1024), dropout, fc2."""

    def __init__(self, in_channels, num_classes, conv_block=None, dropout=0.7):
        super().__init__()
        if conv_block is None:
            conv_block = BasicConv2d
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = torch.flatten(self.conv(x), 1)
        x = F.relu(self.fc1(x), inplace=True)
        x = self.dropout(x)
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet (Inception v1).  ``aux1`` sits after
    inception4a, ``aux2`` after inception4d; both run only in train mode.
    Train mode with ``aux_logits`` returns GoogLeNetOutputs, otherwise the
    logits tensor."""

    __constants__ = ["aux_logits", "transform_input"]

    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False,
                 init_weights=None, blocks=None, dropout=0.2, dropout_aux=0.7):
        super().__init__()
        if blocks is None:
            blocks = [BasicConv2d, Inception, InceptionAux]
        if init_weights is None:
            warnings.warn(
                "The default weight initialization of GoogleNet will be changed in future releases of "
                "torchvision. If you wish to keep the old behavior (which leads to long initialization times"
                " due to scipy/scipy#11299), please set init_weights=True.",
                FutureWarning,
            )
            init_weights = True
        if len(blocks) != 3:
            raise ValueError(f"blocks length should be 3 instead of {len(blocks)}")
        conv_block, inception_block, inception_aux_block = blocks

        self.aux_logits = aux_logits
        self.transform_input = transform_input

        self.conv1 = conv_block(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = conv_block(64, 64, kernel_size=1)
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = inception_block(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = inception_block(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = inception_block(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = inception_block(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = inception_block(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = inception_block(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = inception_block(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = inception_block(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = inception_block(832, 384, 192, 384, 48, 128, 128)

        if aux_logits:
            self.aux1 = inception_aux_block(512, num_classes, dropout=dropout_aux)
            self.aux2 = inception_aux_block(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        if init_weights:
            # Conv2d and Linear weights only; their biases (Linear's) keep
            # the default init.  a, b are absolute bounds (+-200 std here).
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

    def _transform_input(self, x):
        # Maps ImageNet-normalised input to the (x - 0.5) / 0.5 scaling the
        # ported weights were trained with.
        if self.transform_input:
            x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
            x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
            x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
            x = torch.cat((x_ch0, x_ch1, x_ch2), 1)
        return x

    def _forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))

        x = self.inception3b(self.inception3a(x))
        x = self.maxpool3(x)
        x = self.inception4a(x)
        aux1 = None
        if self.aux1 is not None and self.training:
            aux1 = self.aux1(x)

        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = None
        if self.aux2 is not None and self.training:
            aux2 = self.aux2(x)

        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))

        x = torch.flatten(self.avgpool(x), 1)
        x = self.fc(self.dropout(x))
        # published order: aux2 before aux1
        return x, aux2, aux1

    def eager_outputs(self, x, aux2, aux1):
        if self.training and self.aux_logits:
            return _GoogLeNetOutputs(x, aux2, aux1)
        return x

    def forward(self, x):
        x = self._transform_input(x)
        # As published: the names swap here, so the local 'aux1' holds
        # self.aux2's output and 'aux2' holds self.aux1's; eager_outputs then
        # puts self.aux1's output in aux_logits2 and self.aux2's in aux_logits1.
        x, aux1, aux2 = self._forward(x)
        return self.eager_outputs(x, aux2, aux1)


def googlenet(**kwargs):
    """torchvision's ``googlenet`` without weights: ``GoogLeNet(**kwargs)``."""
    return GoogLeNet(**kwargs)


def _overwrite_named_param(kwargs, param, new_value):
    # torchvision's _ovewrite_named_param (sic), with its error message.
    if param in kwargs:
        if kwargs[param] != new_value:
            raise ValueError(
                f"The parameter '{param}' expected value {new_value} but got {kwargs[param]} instead.")
    else:
        kwargs[param] = new_value


def googlenet_pretrained_like(state_dict, **kwargs):
    """torchvision's ``googlenet(weights=...)`` with ``state_dict`` in place of
    the downloaded weights.

    transform_input defaults to True; aux_logits, init_weights and
    num_classes are forced to True, False and the row count of
    ``state_dict['fc.weight']`` (torchvision: len(weights.meta['categories']),
    1000 for its file) -- an explicit different value raises ValueError, so
    ``aux_logits=False`` raises.  After the strict load, unless the caller
    passed ``aux_logits=True``, aux_logits becomes False and aux1/aux2 None;
    with ``aux_logits=True`` torchvision warns that the heads are not trained.
    """
    original_aux_logits = kwargs.get("aux_logits", False)
    if "transform_input" not in kwargs:
        _overwrite_named_param(kwargs, "transform_input", True)
    _overwrite_named_param(kwargs, "aux_logits", True)
    _overwrite_named_param(kwargs, "init_weights", False)
    _overwrite_named_param(kwargs, "num_classes", int(state_dict["fc.weight"].shape[0]))

    model = GoogLeNet(**kwargs)
    model.load_state_dict(state_dict)
    if not original_aux_logits:
        model.aux_logits = False
        model.aux1 = None
        model.aux2 = None
    else:
        warnings.warn(
            "auxiliary heads in the pretrained googlenet model are NOT pretrained, "
            "so make sure to train them")
    return model


# ---------------------------------------------------------------------------
# timm SE-ResNet (seresnet50 / seresnet101)
# ---------------------------------------------------------------------------

def make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """timm's make_divisible: round v to the nearest multiple of divisor (at
    least min_value, default divisor); add one divisor if the rounding went
    below round_limit * v."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class SEModule(nn.Module):
    """timm's SEModule with its defaults: x * sigmoid(fc2(relu(bn(fc1(mean_hw(x)))))),
    fc1/fc2 1x1 convs with bias, bn an Identity (no keys).  Reduced channels:
    make_divisible(channels * rd_ratio, rd_divisor, round_limit=0)."""

    def __init__(self, channels, rd_ratio=1.0 / 16, rd_channels=None, rd_divisor=8,
                 add_maxpool=False, bias=True):
        super().__init__()
        self.add_maxpool = add_maxpool
        if not rd_channels:
            rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=bias)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=bias)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        x_se = x.mean((2, 3), keepdim=True)
        if self.add_maxpool:
            x_se = 0.5 * x_se + 0.5 * x.amax((2, 3), keepdim=True)
        x_se = self.fc2(self.act(self.bn(self.fc1(x_se))))
        return x * self.gate(x_se)


def _create_attn(attn_layer, channels):
    # timm's create_attn for the cases used here: None/False -> None,
    # 'se'/True -> SEModule, a class or callable -> attn_layer(channels).
    if not attn_layer:
        return None
    if attn_layer is True or (isinstance(attn_layer, str) and attn_layer.lower() == "se"):
        return SEModule(channels)
    if isinstance(attn_layer, str):
        raise ValueError(f"only 'se' is written here, got {attn_layer!r}")
    return attn_layer(channels)


def get_padding(kernel_size, stride, dilation=1):
    """timm resnet's get_padding: ((stride - 1) + dilation * (kernel_size - 1)) // 2."""
    return ((stride - 1) + dilation * (kernel_size - 1)) // 2


def downsample_conv(in_channels, out_channels, kernel_size, stride=1, dilation=1,
                    first_dilation=None, norm_layer=None):
    """timm's projection shortcut: Sequential(conv, norm) -> keys
    ``downsample.0.weight``, ``downsample.1.*``.  For kernel_size 1 (or stride
    1 and dilation 1) it is a 1x1 conv with padding 0, as torchvision's."""
    norm_layer = norm_layer or nn.BatchNorm2d
    kernel_size = 1 if stride == 1 and dilation == 1 else kernel_size
    first_dilation = (first_dilation or dilation) if kernel_size > 1 else 1
    p = get_padding(kernel_size, stride, first_dilation)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=p,
                  dilation=first_dilation, bias=False),
        norm_layer(out_channels),
    )


class SelectAdaptivePool2d(nn.Module):
    """timm's SelectAdaptivePool2d as create_classifier builds it for
    pool_type='avg' before a Linear: pool = AdaptiveAvgPool2d(1),
    flatten = Flatten(1).  No parameters or buffers."""

    def __init__(self, output_size=1, pool_type="avg", flatten=True):
        super().__init__()
        if pool_type != "avg":
            raise ValueError(f"only pool_type='avg' is written here, got {pool_type!r}")
        self.pool_type = pool_type
        self.pool = nn.AdaptiveAvgPool2d(output_size)
        self.flatten = nn.Flatten(1) if flatten else nn.Identity()

    def forward(self, x):
        return self.flatten(self.pool(x))


class TimmBottleneck(nn.Module):
    """timm's resnet ``Bottleneck`` (stride on conv2, like torchvision's
    v1.5), attributes in timm's order: conv1, bn1, act1, conv2, bn2,
    drop_block, act2, aa, conv3, bn3, se, act3, downsample.  ``se`` acts on
    bn3's output before the residual addition."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, cardinality=1, base_width=64,
                 reduce_first=1, dilation=1, first_dilation=None, act_layer=nn.ReLU,
                 norm_layer=nn.BatchNorm2d, attn_layer=None):
        super().__init__()
        width = int(math.floor(planes * (base_width / 64)) * cardinality)
        first_planes = width // reduce_first
        outplanes = planes * self.expansion
        first_dilation = first_dilation or dilation

        self.conv1 = nn.Conv2d(inplanes, first_planes, kernel_size=1, bias=False)
        self.bn1 = norm_layer(first_planes)
        self.act1 = act_layer(inplace=True)

        self.conv2 = nn.Conv2d(first_planes, width, kernel_size=3, stride=stride,
                               padding=first_dilation, dilation=first_dilation,
                               groups=cardinality, bias=False)
        self.bn2 = norm_layer(width)
        self.drop_block = nn.Identity()
        self.act2 = act_layer(inplace=True)
        self.aa = nn.Identity()

        self.conv3 = nn.Conv2d(width, outplanes, kernel_size=1, bias=False)
        self.bn3 = norm_layer(outplanes)

        self.se = _create_attn(attn_layer, outplanes)

        self.act3 = act_layer(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation
        self.drop_path = None

    def zero_init_last(self):
        if getattr(self.bn3, "weight", None) is not None:
            nn.init.zeros_(self.bn3.weight)

    def forward(self, x):
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(x)))))
        x = self.bn3(self.conv3(x))
        if self.se is not None:
            x = self.se(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return self.act3(x)


class TimmResNet(nn.Module):
    """timm's ``ResNet`` for the default stem (7x7/2 conv1, bn1, act1, 3x3/2
    maxpool), stages layer1..layer4 built as timm's make_blocks does with
    1x1 conv downsampling, then ``global_pool`` (avg + flatten), dropout
    before ``fc`` when drop_rate > 0, ``fc``."""

    def __init__(self, block, layers, num_classes=1000, in_chans=3, global_pool="avg",
                 cardinality=1, base_width=64, down_kernel_size=1, act_layer=nn.ReLU,
                 norm_layer=nn.BatchNorm2d, drop_rate=0.0, zero_init_last=True, block_args=None):
        super().__init__()
        block_args = block_args or dict()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        inplanes = 64
        self.conv1 = nn.Conv2d(in_chans, inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(inplanes)
        self.act1 = act_layer(inplace=True)
        self.feature_info = [dict(num_chs=inplanes, reduction=2, module="act1")]
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        net_stride = 4
        for stage_idx, (planes, num_blocks) in enumerate(zip([64, 128, 256, 512], layers)):
            stride = 1 if stage_idx == 0 else 2
            net_stride *= stride
            downsample = None
            if stride != 1 or inplanes != planes * block.expansion:
                downsample = downsample_conv(inplanes, planes * block.expansion, down_kernel_size,
                                             stride=stride, dilation=1, first_dilation=1,
                                             norm_layer=norm_layer)
            blocks = []
            for block_idx in range(num_blocks):
                blocks.append(block(
                    inplanes, planes, stride if block_idx == 0 else 1,
                    downsample if block_idx == 0 else None, cardinality=cardinality,
                    base_width=base_width, first_dilation=1, act_layer=act_layer,
                    norm_layer=norm_layer, **block_args))
                inplanes = planes * block.expansion
            name = f"layer{stage_idx + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=inplanes, reduction=net_stride, module=name))

        self.num_features = 512 * block.expansion
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

        self.init_weights(zero_init_last=zero_init_last)

    def init_weights(self, zero_init_last=True):
        # All Conv2d (SE fc1/fc2 included; their biases keep the default
        # init); BN 1/0 (nn.BatchNorm2d's defaults); fc keeps its default.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if hasattr(m, "zero_init_last"):
                    m.zero_init_last()

    def forward_features(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward_head(self, x, pre_logits=False):
        x = self.global_pool(x)
        if self.drop_rate:
            x = F.dropout(x, p=float(self.drop_rate), training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def seresnet50(**kwargs):
    """timm seresnet50: Bottleneck, [3, 4, 6, 3], block_args attn_layer='se'."""
    return TimmResNet(TimmBottleneck, [3, 4, 6, 3], block_args=dict(attn_layer="se"), **kwargs)


def seresnet101(**kwargs):
    """timm seresnet101: Bottleneck, [3, 4, 23, 3], block_args attn_layer='se'."""
    return TimmResNet(TimmBottleneck, [3, 4, 23, 3], block_args=dict(attn_layer="se"), **kwargs)


# ---------------------------------------------------------------------------
# registry for tests
# ---------------------------------------------------------------------------

# Zero-argument constructors by builder name.  googlenet passes
# init_weights=True, which is what None resolves to, minus the FutureWarning.
NETWORKS = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "densenet121": densenet121,
    "densenet161": densenet161,
    "densenet169": densenet169,
    "densenet201": densenet201,
    "googlenet": lambda: googlenet(init_weights=True),
    "seresnet50": seresnet50,
    "seresnet101": seresnet101,
}

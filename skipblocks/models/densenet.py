"""torchvision's DenseNet (torchvision.models.densenet): ``DenseNet`` and
the builders ``densenet121``, ``densenet161``, ``densenet169`` and
``densenet201``, with torchvision's structure, constructor arguments,
state_dict keys (in order), repr and initialisation.

A dense layer is the document's Dense_Layer under torchvision's names
(norm1, relu1, conv1, norm2, relu2, conv2) and runs on the same fused
operator; a dense block writes each layer's new channels straight into
its slice of one preallocated output, as the document's Dense_Block here.
torchvision's published files keep the key names of torchvision before 0.4
(``denselayer1.norm.1.weight``): the builders rename them as torchvision
does before loading.
"""
import re
from collections import OrderedDict

import numpy as np

from .. import _blocked
from .. import functional as F
from .. import random as _random
from .. import runtime
from ..blocks import (_bn_fits, _bn_relu, _dense_block, _dense_layer, _layer_input,
                      _planned_dense, _planned_dense_fits)
from ..containers import ModuleDict, Sequential, _run_sequence
from ..hooks import has_hooks
from ..layers import (AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU,
                      _check_factory_kwargs, flatten)
from ..module import Module, _compute_dtype
from . import _weights

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201"]


class _DenseLayer(Module):
    """torchvision's _DenseLayer: conv2(relu2(norm2(conv1(relu1(norm1(
    cat(inputs))))))), ``growth_rate`` new channels through a 1x1
    bottleneck of bn_size * growth_rate, then dropout with ``drop_rate``
    in train mode. ``memory_efficient`` (torchvision's checkpointing, which
    saves memory for the backward pass) changes nothing here: there is no
    backward pass, and the fused path never stores the intermediate maps."""

    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate,
                 memory_efficient=False, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("_DenseLayer", None, dtype)
        self.norm1 = BatchNorm2d(num_input_features, dtype=dtype)
        self.relu1 = ReLU(inplace=True)
        self.conv1 = Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1,
                            bias=False, dtype=dtype)
        self.norm2 = BatchNorm2d(bn_size * growth_rate, dtype=dtype)
        self.relu2 = ReLU(inplace=True)
        self.conv2 = Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1,
                            padding=1, bias=False, dtype=dtype)
        self.drop_rate = float(drop_rate)
        self.memory_efficient = memory_efficient

    def forward(self, input):
        return self._forward(_layer_input(input, "_DenseLayer", _compute_dtype(self)))

    def _forward(self, x, out=None):
        """The layer on one (N, C, H, W) array x (possibly a channel slice of
        the block's output), its new features written into ``out`` when
        given."""
        layers = (self.norm1, self.conv1, self.norm2, self.conv2)
        relus = dict(relu1=self.relu1, relu2=self.relu2)
        if self.drop_rate > 0 and self.training:
            features = F.dropout(_dense_layer(*layers, x, **relus), p=self.drop_rate,
                                 training=True, _layer="_DenseLayer")
            if out is None:
                return features
            out[...] = features
            return out
        return _dense_layer(*layers, x, out, **relus)


class _DenseBlock(ModuleDict):
    """torchvision's _DenseBlock: ``num_layers`` _DenseLayers named
    denselayer1, denselayer2, ...; forward returns the concatenation of the
    input and every layer's new features."""

    _version = 2

    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate,
                 memory_efficient=False, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("_DenseBlock", None, dtype)
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate=growth_rate,
                                bn_size=bn_size, drop_rate=drop_rate,
                                memory_efficient=memory_efficient, dtype=dtype)
            self.add_module("denselayer%d" % (i + 1), layer)

    def forward(self, init_features):
        return _dense_block(list(self.values()), init_features, _compute_dtype(self),
                            _DenseLayer, "_DenseBlock")


class _Transition(Sequential):
    """torchvision's _Transition: norm, relu, 1x1 conv (halving the
    channels in DenseNet), 2x2 average pool. The BatchNorm and the ReLU run
    in one pass; and since a 1x1 convolution is the same linear map at every
    pixel, averaging 2x2 pixels before it gives what averaging its outputs
    gives (up to rounding), at a quarter of its multiply-adds: the pool runs
    first."""

    def __init__(self, num_input_features, num_output_features, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("_Transition", None, dtype)
        self.norm = BatchNorm2d(num_input_features, dtype=dtype)
        self.relu = ReLU(inplace=True)
        self.conv = Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1,
                           bias=False, dtype=dtype)
        self.pool = AvgPool2d(kernel_size=2, stride=2)

    def forward(self, input):
        modules = [m for m in self._modules.values() if m is not None]
        if len(modules) == 4 and type(modules[0]) is BatchNorm2d and type(modules[1]) is ReLU:
            x = _bn_relu(modules[0], input, modules[1])
            conv, pool = modules[2], modules[3]
            if runtime.fusion_enabled(conv, pool) and x.ndim == 4 and x.shape[2] >= 2 \
                    and x.shape[3] >= 2 and _pointwise(conv, x.shape[1]) \
                    and _plain_2x2_average(pool):
                return conv(pool(x))
            return _run_sequence(modules[2:], x)
        return super().forward(input)


def _pointwise(conv, channels):
    """A Conv2d that maps each pixel on its own -- a 1x1 weight (the weight
    decides, as in torch, not kernel_size), stride 1, no padding -- and
    takes ``channels`` input channels (otherwise it runs on the unpooled
    input, whose shape its error names, as torch's)."""
    weight = conv.weight if type(conv) is Conv2d else None
    return (weight is not None and weight.ndim == 4 and weight.shape[2:] == (1, 1)
            and weight.shape[1] * conv.groups == channels and conv.stride == (1, 1)
            and conv._padding_args() == ((0, 0), (0, 0)))


def _plain_2x2_average(pool):
    """AvgPool2d over disjoint 2x2 windows without padding, ceil_mode or
    divisor_override: every output is the mean of four input pixels
    (count_include_pad changes nothing: no window reaches past the
    input)."""
    if type(pool) is not AvgPool2d:
        return False
    try:
        sizes = [F.pair(v, name, "AvgPool2d") for v, name in
                 ((pool.kernel_size, "kernel_size"), (pool.stride, "stride"),
                  (pool.padding, "padding"))]
    except (TypeError, ValueError):
        return False
    return sizes == [(2, 2), (2, 2), (0, 0)] and pool.divisor_override is None \
        and not pool.ceil_mode


class DenseNet(Module):
    """torchvision's DenseNet-BC: ``features`` = Sequential(conv0 7x7/2,
    norm0, relu0, pool0 3x3/2, then denseblock1, transition1, ...,
    denseblockN, norm5), then ReLU, global average pooling and
    ``classifier`` = Linear(num_features, num_classes).

    Args are torchvision's: growth_rate (channels each layer adds),
    block_config (layers per block), num_init_features, bn_size (the
    bottleneck's width as a multiple of growth_rate), drop_rate (dropout
    after each layer, train mode), num_classes, memory_efficient (no effect
    here, see _DenseLayer). ``dtype`` (keyword-only, beyond torchvision):
    float32 (default) or float64.

    Initialisation as torchvision's: convolutions kaiming-normal (fan in,
    ReLU gain), BatchNorm weights 1 and biases 0, the classifier's bias 0
    (its weight torch's Linear default); distributed as torch's, not torch's
    numbers."""

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64,
                 bn_size=4, drop_rate=0, num_classes=1000, memory_efficient=False, *,
                 dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("DenseNet", None, dtype)
        self.features = Sequential(OrderedDict([
            ("conv0", Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3,
                             bias=False, dtype=dtype)),
            ("norm0", BatchNorm2d(num_init_features, dtype=dtype)),
            ("relu0", ReLU(inplace=True)),
            ("pool0", MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers=num_layers, num_input_features=num_features,
                                bn_size=bn_size, growth_rate=growth_rate, drop_rate=drop_rate,
                                memory_efficient=memory_efficient, dtype=dtype)
            self.features.add_module("denseblock%d" % (i + 1), block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                trans = _Transition(num_input_features=num_features,
                                    num_output_features=num_features // 2, dtype=dtype)
                self.features.add_module("transition%d" % (i + 1), trans)
                num_features = num_features // 2
        self.features.add_module("norm5", BatchNorm2d(num_features, dtype=dtype))
        self.classifier = Linear(num_features, num_classes, dtype=dtype)
        _init_densenet(self)

    def forward(self, x):
        x = F.as_real(x, "DenseNet", "input", _compute_dtype(self))
        features = self.features
        # (a hook on features itself must see its call)
        modules = [m for m in features._modules.values() if m is not None] \
            if type(features) is Sequential and not has_hooks(features) else None
        if modules and type(modules[-1]) is BatchNorm2d:
            # norm5 and the ReLU after it in one pass
            planned = _planned_features(self, modules[:-1], x)
            out = _bn_relu(modules[-1], planned if planned is not None
                           else _run_sequence(modules[:-1], x))
        else:
            out = F.relu(features(x))
        out = F.adaptive_avg_pool2d(out, (1, 1), _layer="DenseNet")
        return self.classifier(flatten(out, 1))


def _planned_features(net, modules, x):
    """features' layers before norm5 on channel-blocked maps
    (skipblocks._blocked: the stem, the dense blocks, the transitions), or
    None when no plan applies. The same bits as _run_sequence."""
    if not _blocked.plan_input_ok(net, x):
        return None
    # (the modules are features' children: the epoch covers them)
    plan = _blocked.cached_plan(net, x.shape, lambda: _blocked.sequence_plan(modules, x.shape)
                                if any(type(m) is _DenseBlock for m in modules) else None)
    if plan is None:
        return None
    return _blocked.to_nchw(_blocked.run_steps(plan[0], x), "DenseNet")


def _transition_parts(transition):
    """norm, relu, conv, pool of a standard _Transition (BatchNorm2d, ReLU, a
    1x1 Conv2d, a plain 2x2 average pool, none with a forward of its own),
    else None."""
    modules = [m for m in transition._modules.values() if m is not None]
    if len(modules) != 4 or [type(m) for m in modules] != [BatchNorm2d, ReLU, Conv2d,
                                                            AvgPool2d] \
            or any(_blocked.own_forward(m) for m in modules):
        return None
    return modules


def _transition_pooled(parts, shape):
    """The pooled map's shape when a transition of these parts on ``shape``
    pools before its convolution (_Transition.forward's condition), else
    None."""
    n, c, h, w = shape
    if parts is None or h < 2 or w < 2 or not _pointwise(parts[2], c) \
            or not _plain_2x2_average(parts[3]):
        return None
    return (n, c, h // 2, w // 2)


def _planned_transition_fits(transition, shape):
    """The output shape of a standard _Transition, pooling first, on a
    blocked map of ``shape`` (the plan runs it on blocked maps, or, where
    _transition_blocked says no, its own forward on NCHW between two
    conversions); else None."""
    parts = _transition_parts(transition)
    pooled = _transition_pooled(parts, shape)
    return None if pooled is None else (shape[0], parts[2].weight.shape[0]) + pooled[2:]


def _transition_blocked(transition, shape):
    """(conv, norm's fold arguments) when the transition runs on blocked
    maps of ``shape`` as its forward runs (norm, relu and the pool in one
    pass, then the 1x1 convolution): an eval-mode BatchNorm on its running
    statistics and a convolution a blocked map takes; else None (a BatchNorm
    in train mode or float64, say)."""
    parts = _transition_parts(transition)
    pooled = _transition_pooled(parts, shape)
    if pooled is None or not _bn_fits(parts[0], shape[1]) \
            or _blocked.conv_fits(parts[2], None, pooled) is None:
        return None
    return parts[2], parts[0]._fold_args()


def _planned_transition(transition, x):
    """_planned_transition_fits' transition on the Blocked map x."""
    blocked = _blocked.epoch_cached(transition, ("blocked", x.shape),
                                    lambda: _transition_blocked(transition, x.shape))
    if blocked is not None:
        conv, fold = blocked
        return _blocked.conv(conv, _blocked.transition_pool(fold, x))
    return _blocked.to_blocked(transition(_blocked.to_nchw(x, "_Transition")), "_Transition")


_blocked.register_block(_DenseBlock, _planned_dense_fits, _planned_dense)
_blocked.register_block(_Transition, _planned_transition_fits, _planned_transition)


def _init_densenet(model):
    """torchvision's DenseNet initialisation (see DenseNet)."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            w = m.weight
            fan_in = w.shape[1] * w.shape[2] * w.shape[3]
            m.weight = _random.normal((2.0 / fan_in) ** 0.5, w.shape, w.dtype)
        elif isinstance(m, Linear) and m.bias is not None:
            m.bias = np.zeros_like(m.bias)
    # BatchNorm2d starts at weight 1, bias 0 already, as torchvision sets it


# torchvision's _load_state_dict: the keys of DenseNet files written before
# torchvision 0.4 ("denselayer1.norm.1.weight") to today's ("denselayer1.norm1.weight").
_OLD_DENSE_LAYER_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def rename_old_keys(state_dict):
    """The state_dict with the pre-0.4 dense-layer keys of torchvision's
    published DenseNet files renamed as torchvision renames them; other
    keys unchanged (a new dict; torchvision moves each renamed key to the
    end, which changes nothing for loading)."""
    renamed = {}
    for key, value in state_dict.items():
        match = _OLD_DENSE_LAYER_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def _densenet(builder, growth_rate, block_config, num_init_features, weights, kwargs):
    """torchvision's _densenet: with weights, num_classes is the file's (a
    different num_classes raises torchvision's ValueError) and the keys are
    renamed (rename_old_keys) before a strict load."""
    kwargs = _weights.builder_kwargs(builder, kwargs)
    state_dict = None
    if weights is not None:
        state_dict = rename_old_keys(_weights.state_dict_of(weights, builder))
        _weights.classes_from(state_dict, "classifier.weight", builder, kwargs)
    model = DenseNet(growth_rate, block_config, num_init_features, **kwargs)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def _make_builder(name, title, growth_rate, block_config, num_init_features):
    def builder(*, weights=None, progress=True, **kwargs):
        return _densenet(name, growth_rate, block_config, num_init_features, weights, kwargs)
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"""{title} (torchvision's ``{name}``): DenseNet(growth_rate={growth_rate},
    block_config={block_config}, num_init_features={num_init_features}).

    Args:
        weights: None (torchvision's initialisation), or the path of a
            weight file (torch ``.pth``/``.pt``, ``.safetensors``, ``.npz``;
            a state_dict or a checkpoint holding one, e.g. torchvision's
            published ``{name}-*.pth`` with its pre-0.4 key names, which are
            renamed as torchvision renames them) or a state_dict, loaded
            strictly. ``num_classes`` then comes from the file's
            ``classifier.weight``.
        progress: accepted for torchvision's signature; nothing is
            downloaded.
        **kwargs: DenseNet's arguments (bn_size, drop_rate, num_classes,
            memory_efficient, dtype)."""
    return builder


densenet121 = _make_builder("densenet121", "DenseNet-121", 32, (6, 12, 24, 16), 64)
densenet161 = _make_builder("densenet161", "DenseNet-161", 48, (6, 12, 36, 24), 96)
densenet169 = _make_builder("densenet169", "DenseNet-169", 32, (6, 12, 32, 32), 64)
densenet201 = _make_builder("densenet201", "DenseNet-201", 32, (6, 12, 48, 32), 64)

"""SE-ResNet with the structure and state_dict keys of timm's
``seresnet50`` / ``seresnet101`` (timm.models.resnet with
``block_args=dict(attn_layer='se')``), whose published weights are
safetensors files: torchvision's Bottleneck ResNet with an ``se`` module
after ``bn3``, before the residual addition.

``se`` is timm's SEModule: global average pool, ``fc1`` = Conv2d(C, C/16,
1x1, bias), ReLU, ``fc2`` = Conv2d(C/16, C, 1x1, bias), sigmoid gate,
each channel of the input scaled by its gate. The modules without
parameters keep torchvision's names (``relu``), so the repr is
torchvision's plus ``se``; the state_dict keys, and their order, are
timm's.
"""
import numpy as np

from .. import _C
from .. import functional as F
from .. import runtime
from ..blocks import ResidualBlock
from ..layers import Conv2d, Identity, ReLU, Sigmoid, _check_factory_kwargs
from ..module import Module, _compute_dtype
from ..blocks import _add_relu
from ._fused import conv_bn
from .. import _blocked
from .resnet import Bottleneck, _block_parts, _planned_block_fits, _resnet

__all__ = ["SEModule", "SEBottleneck", "se_resnet50", "se_resnet101"]


def make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """timm's make_divisible: ``v`` rounded to a multiple of ``divisor`` (at
    least ``min_value``, which defaults to ``divisor``), one step up when
    rounding lost more than 1 - round_limit of it."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class SEModule(Module):
    """timm's SEModule: x * gate(fc2(act(bn(fc1(mean(x, (2, 3))))))) with
    ``fc1`` = Conv2d(channels, rd_channels, 1, bias=bias), ``bn`` =
    Identity, ``act`` = ReLU, ``fc2`` = Conv2d(rd_channels, channels, 1,
    bias=bias) and ``gate`` = Sigmoid. ``rd_channels`` defaults to
    make_divisible(channels * rd_ratio, rd_divisor, round_limit=0) (C/16
    for every SE-ResNet width). ``dtype`` (keyword-only): float32 (default)
    or float64. The whole module runs as one fused operator (the
    document's SEAttention's), on the 1x1 convolutions' weights."""

    def __init__(self, channels, rd_ratio=1. / 16, rd_channels=None, rd_divisor=8, bias=True,
                 *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("SEModule", None, dtype)
        if not rd_channels:
            rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.)
        self.fc1 = Conv2d(channels, rd_channels, kernel_size=1, bias=bias, dtype=dtype)
        self.bn = Identity()
        self.act = ReLU(inplace=True)
        self.fc2 = Conv2d(rd_channels, channels, kernel_size=1, bias=bias, dtype=dtype)
        self.gate = Sigmoid()

    def forward(self, x):
        x = F.as_real(x, "SEModule", "input", _compute_dtype(self))
        packed = self._packed_linears(x) if runtime.fusion_enabled(
            self.fc1, self.bn, self.act, self.fc2, self.gate) else None
        if packed is not None:
            return _C.se_attention("SEModule", x, packed[0], packed[1],
                                   self.fc1.weight.shape[0])
        if x.ndim != 4:
            raise ValueError(f"SEModule: expected a 4-D input (N, C, H, W), got shape {x.shape}")
        x_se = x.mean((2, 3), keepdims=True, dtype=x.dtype)
        x_se = self.gate(self.fc2(self.act(self.bn(self.fc1(x_se)))))
        x_se = F.as_real(x_se, "SEModule", "gate", x.dtype)
        if x_se.shape == x.shape[:2] + (1, 1):
            return _C.channel_scale("SEModule", x, x_se.reshape(x.shape[0], x.shape[1]))
        # torch's x * gate broadcasts (its error names the first mismatch)
        try:
            np.broadcast_shapes(x.shape, x_se.shape)
        except ValueError:
            ResidualBlock._match_residual(x_se, x.shape, "SEModule")
        return x * x_se

    def _packed_linears(self, x):
        """fc1's and fc2's weights (and biases) packed as the fused
        operator's two Linear layers, cached until either changes; None
        when the children or shapes are not the ones it computes."""
        return self._packed_for(x.ndim, x.shape[1] if x.ndim > 1 else None, x.dtype)

    def _packed_for(self, ndim, channels, dtype):
        """_packed_linears for an input of ``ndim`` dimensions, ``channels``
        channels and ``dtype``."""
        fc1, fc2 = self.fc1, self.fc2
        if not (ndim == 4 and type(fc1) is Conv2d and type(fc2) is Conv2d
                and type(self.bn) is Identity and type(self.act) is ReLU
                and type(self.gate) is Sigmoid):
            return None
        w1, w2 = fc1.weight, fc2.weight
        hidden = w1.shape[0]
        if not (w1.shape == (hidden, channels, 1, 1) and w2.shape == (channels, hidden, 1, 1)
                and dtype == w1.dtype == w2.dtype
                and all(fc.groups == 1 and fc.stride == (1, 1) and fc.dilation == (1, 1)
                        and fc._padding_args() == ((0, 0), (0, 0)) for fc in (fc1, fc2))
                and all(b is None or (b.shape == (w.shape[0],) and b.dtype == dtype)
                        for w, b in ((w1, fc1.bias), (w2, fc2.bias)))):
            return None
        # the modules themselves are part of the key: a replaced fc1 may be
        # at the same version count as the one it replaces
        key = (fc1, fc1.__dict__["_version_box"][0], fc2, fc2.__dict__["_version_box"][0],
               np.dtype(dtype))
        cache = self.__dict__.get("_packed_cache")
        if cache is None or cache[0] != key:
            packed = tuple(_C.linear_pack("SEModule", w.reshape(w.shape[0], w.shape[1]), b)
                           for w, b in ((w1, fc1.bias), (w2, fc2.bias)))
            cache = (key, packed)
            object.__setattr__(self, "_packed_cache", cache)
        return cache[1]


class SEBottleneck(Bottleneck):
    """torchvision's Bottleneck with timm's ``se`` = SEModule(planes * 4)
    after bn3, before the residual addition:
    relu(se(bn3(conv3(...))) + downsample(x)). ``se`` is registered before
    ``downsample``, so the state_dict keys come in timm's order."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, *, dtype=None):
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation,
                         norm_layer, dtype=dtype)
        modules = self.__dict__["_modules"]
        later = [(name, modules.pop(name)) for name in ("relu", "downsample") if name in modules]
        self.se = SEModule(planes * self.expansion, dtype=self._dtype)
        modules.update(later)

    def forward(self, x):
        layer = "SEBottleneck"
        x = F.as_real(x, layer, "input", _compute_dtype(self))
        out = conv_bn(self.conv1, self.bn1, x, relu=self.relu, layer=layer)
        out = conv_bn(self.conv2, self.bn2, out, relu=self.relu, layer=layer)
        out = self.se(conv_bn(self.conv3, self.bn3, out, layer=layer))
        identity = x if self.downsample is None else self.downsample(x)
        return _add_relu(out, identity, layer, self.relu)


def _planned_se_fits(block, shape):
    """The output shape of an SEBottleneck on a blocked map of ``shape``
    when a plan can run it as its eval-mode forward does (resnet's
    _planned_block_fits, with ``se`` the fused operator between conv3 and
    the residual addition), else None."""
    out = _planned_block_fits(block, shape)
    se = block.se
    if out is None or type(se) is not SEModule or "forward" in se.__dict__:
        return None
    return out if se._packed_for(4, out[1], np.float32) is not None else None


def _planned_se_block(block, x):
    """_planned_se_fits' block on the Blocked map x: conv1 and conv2 with
    their BatchNorms folded and ReLUs, conv3 with bn3, then the SE scale,
    the residual and the ReLU in one pass (_C.se_attention, blocked)."""
    (conv1, bn1), (conv2, bn2), (conv3, bn3) = _block_parts(block)
    out = _blocked.conv(conv1, x, fold=bn1, relu=True)
    out = _blocked.conv(conv2, out, fold=bn2, relu=True)
    out = _blocked.conv(conv3, out, fold=bn3)
    identity = _blocked.residual(block.downsample, x)
    se = block.se
    fc1, fc2 = se._packed_for(4, out.channels, np.float32)
    y = _C.se_attention("SEModule", out.data, fc1, fc2, se.fc1.weight.shape[0], blocked=True,
                        channels=out.channels, residual=identity.data, relu=True)
    return _blocked.Blocked(y, out.channels)


_blocked.register_block(SEBottleneck, _planned_se_fits, _planned_se_block)


def _builder(name, timm_name, layers):
    def builder(*, weights=None, progress=True, **kwargs):
        kwargs.setdefault("zero_init_residual", True)  # timm's zero_init_last
        return _resnet(name, SEBottleneck, layers, weights, kwargs)
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"""SE-ResNet-{name[9:]}: ResNet(SEBottleneck, {layers}), the structure and
    state_dict keys of timm's ``{timm_name}``.

    Args:
        weights: None (timm's initialisation: torchvision's, with each
            block's last BatchNorm weight zero), or the path of a weight
            file (timm's published ``model.safetensors``, a torch
            ``.pth``/``.pt``, an ``.npz``; a state_dict or a checkpoint
            holding one) or a state_dict, loaded strictly.
            ``num_classes`` then comes from the file's ``fc.weight``.
        progress: accepted for a builder's usual signature; nothing is
            downloaded.
        **kwargs: ResNet's arguments (num_classes, zero_init_residual --
            True by default, as timm's zero_init_last --, groups,
            width_per_group, replace_stride_with_dilation, norm_layer,
            dtype)."""
    return builder


se_resnet50 = _builder("se_resnet50", "seresnet50", [3, 4, 6, 3])
se_resnet101 = _builder("se_resnet101", "seresnet101", [3, 4, 23, 3])

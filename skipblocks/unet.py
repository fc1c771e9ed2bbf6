"""U-Net (the document's section 2.3): long skip connections that carry each
encoder level's features to the decoder level of the same size, where they
are concatenated with the upsampled deeper features.

The structure, attribute names and state_dict keys are those of
milesial/Pytorch-UNet (the most used U-Net, whose published checkpoints are
state_dicts), so its checkpoints load with ``load_state_dict``; the code is
skipblocks' own, written from that structure. Like that project, and unlike
the paper (Ronneberger et al., 2015), the 3x3 convolutions are padded and
followed by BatchNorm, so the skips need no cropping and the output has the
input's size; the decoder pads an upsampled map by at most one row and column
where the encoder's pooling floored an odd size.

In eval mode on float32 input, UNet keeps its feature maps channel-blocked
from the first convolution to the last DoubleConv (skipblocks._blocked):
each convolution with its BatchNorm folded and its ReLU fused, the poolings
and the skip concatenations on blocked maps; only the upsampling runs on
NCHW maps, converted either side. The same bits as the layer-by-layer path.
"""
import numpy as np

from . import _blocked
from . import functional as F
from .containers import Sequential
from .layers import (BatchNorm2d, Conv2d, ConvTranspose2d, MaxPool2d, ReLU, Upsample,
                     _check_factory_kwargs)
from .module import Module, _compute_dtype

__all__ = ["DoubleConv", "Down", "Up", "OutConv", "UNet"]


class DoubleConv(Module):
    """(3x3 convolution without bias -> BatchNorm2d -> ReLU) twice, in a
    Sequential ``double_conv``. A falsy ``mid_channels`` (None, 0) means
    ``out_channels``. ``dtype`` (keyword-only): float32 (default) or
    float64. In eval mode each convolution runs with its BatchNorm folded
    into its weights and the ReLU applied as it stores its output."""

    def __init__(self, in_channels, out_channels, mid_channels=None, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("DoubleConv", None, dtype)
        mid = mid_channels or out_channels
        self.double_conv = Sequential(
            Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False, dtype=dtype),
            BatchNorm2d(mid, dtype=dtype),
            ReLU(inplace=True),
            Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
            ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(Module):
    """One encoder step: ``maxpool_conv`` = Sequential(MaxPool2d(2),
    DoubleConv(in_channels, out_channels)), halving the size (floored)."""

    def __init__(self, in_channels, out_channels, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("Down", None, dtype)
        self.maxpool_conv = Sequential(MaxPool2d(2),
                                       DoubleConv(in_channels, out_channels, dtype=dtype))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(Module):
    """One decoder step, forward(x1, x2): upsample the deeper map ``x1``, pad
    it to the size of the skip ``x2`` (``[dX // 2, dX - dX // 2, dY // 2,
    dY - dY // 2]``), concatenate ``[x2, x1]`` on channels, then ``conv``.

    bilinear=True (the default here, unlike UNet's): ``up`` is
    Upsample(scale_factor=2, mode='bilinear', align_corners=True), which
    keeps the channels, and ``conv`` = DoubleConv(in, out, in // 2).
    bilinear=False: ``up`` is ConvTranspose2d(in, in // 2, kernel_size=2,
    stride=2) and ``conv`` = DoubleConv(in, out)."""

    def __init__(self, in_channels, out_channels, bilinear=True, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("Up", None, dtype)
        if bilinear:
            self.up = Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2, dtype=dtype)
        else:
            self.up = ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2,
                                      dtype=dtype)
            self.conv = DoubleConv(in_channels, out_channels, dtype=dtype)

    def forward(self, x1, x2):
        dtype = _compute_dtype(self)
        x1 = self.up(F.as_real(x1, "Up", "input", dtype))
        x2 = F.as_real(x2, "Up", "skip", dtype)
        if x1.ndim != 4 or x2.ndim != 4:
            raise ValueError(f"Up: expected 4-D inputs, got x1 of shape {tuple(x1.shape)} "
                             f"(upsampled) and x2 of shape {tuple(x2.shape)}")
        x1 = _pad_to(x1, x2.shape)
        return self.conv(F.cat([x2, x1], dim=1, _layer="Up"))


def _pad_to(x1, shape):
    """The upsampled map x1 padded (or cropped, where negative, as torch's
    pad) to the height and width of ``shape``, the skip's: the encoder
    floored an odd size."""
    dy = shape[2] - x1.shape[2]
    dx = shape[3] - x1.shape[3]
    if dx or dy:
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2], _layer="Up")
    return x1


class OutConv(Module):
    """The 1x1 convolution (with bias) from 64 features to the class scores,
    as ``conv``."""

    def __init__(self, in_channels, out_channels, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("OutConv", None, dtype)
        self.conv = Conv2d(in_channels, out_channels, kernel_size=1, dtype=dtype)

    def forward(self, x):
        return self.conv(x)


class UNet(Module):
    """U-Net with milesial/Pytorch-UNet's structure and keys: ``inc``
    (DoubleConv to 64 channels), ``down1`` ... ``down4`` (128, 256, 512,
    1024 // f channels), ``up1`` ... ``up4`` (Up(1024, 512 // f),
    Up(512, 256 // f), Up(256, 128 // f), Up(128, 64)) and ``outc``
    (OutConv(64, n_classes)), where f = 2 when ``bilinear`` else 1.

    forward maps (N, n_channels, H, W) to (N, n_classes, H, W) scores
    (logits); H and W of at least 16 (four 2x2 poolings), odd sizes
    included. Checkpoints written by that project's training script hold one
    extra entry, ``mask_values`` (a list, not a tensor): drop it before
    loading, ``state_dict.pop("mask_values", None)``, or load with
    ``strict=False``."""

    def __init__(self, n_channels, n_classes, bilinear=False, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("UNet", None, dtype)
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.bilinear = bilinear
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(n_channels, 64, dtype=dtype)
        self.down1 = Down(64, 128, dtype=dtype)
        self.down2 = Down(128, 256, dtype=dtype)
        self.down3 = Down(256, 512, dtype=dtype)
        self.down4 = Down(512, 1024 // factor, dtype=dtype)
        self.up1 = Up(1024, 512 // factor, bilinear, dtype=dtype)
        self.up2 = Up(512, 256 // factor, bilinear, dtype=dtype)
        self.up3 = Up(256, 128 // factor, bilinear, dtype=dtype)
        self.up4 = Up(128, 64, bilinear, dtype=dtype)
        self.outc = OutConv(64, n_classes, dtype=dtype)

    def forward(self, x):
        x = F.as_real(x, "UNet", "input", _compute_dtype(self))
        if x.ndim != 4 or x.shape[2] < 16 or x.shape[3] < 16:
            raise ValueError(f"UNet: expected an input of shape (N, {self.n_channels}, H, W) "
                             f"with H, W >= 16 (four 2x2 poolings), got {tuple(x.shape)}")
        planned = _planned_unet(self, x) if type(self) is UNet else None
        if planned is not None:
            return planned
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)



# ---- the planned forward (skipblocks._blocked) ---------------------------

def _double_conv_fits(dc, shape):
    """DoubleConv's output shape on a blocked map of ``shape`` when a plan
    runs it as its eval-mode forward does (each convolution with its
    BatchNorm folded and its ReLU fused), else None."""
    if _blocked.own_forward(dc) or _blocked.own_forward(dc.double_conv):
        return None
    parts = _blocked.sequential_of(dc.double_conv, Conv2d, BatchNorm2d, ReLU,
                                   Conv2d, BatchNorm2d, ReLU)
    if parts is None:
        return None
    shape = _blocked.conv_fits(parts[0], parts[1], shape)
    return None if shape is None else _blocked.conv_fits(parts[3], parts[4], shape)


def _double_conv(dc, x):
    """_double_conv_fits' DoubleConv on x (Blocked, or the NCHW input)."""
    conv1, bn1, _, conv2, bn2, _ = dc.double_conv._modules.values()
    return _blocked.conv(conv2, _blocked.conv(conv1, x, fold=bn1, relu=True), fold=bn2,
                         relu=True)


def _down_fits(down, shape):
    if _blocked.own_forward(down) or _blocked.own_forward(down.maxpool_conv):
        return None
    parts = _blocked.sequential_of(down.maxpool_conv, MaxPool2d, DoubleConv)
    if parts is None or _blocked.own_forward(parts[0]):
        return None
    shape = _blocked.pool_out_shape(parts[0], shape)
    return None if shape is None else _double_conv_fits(parts[1], shape)


def _down(down, x):
    pool, dc = down.maxpool_conv._modules.values()
    return _double_conv(dc, _blocked.max_pool(pool, x))


_blocked.register_block(DoubleConv, _double_conv_fits, _double_conv)
_blocked.register_block(Down, _down_fits, _down)


def _up_fits(up, shape, skip):
    """Up's output shape on the blocked maps of ``shape`` (the deeper) and
    ``skip`` when a plan runs it: its upsampling (ConvTranspose2d or
    Upsample, run on NCHW) gives ``channels`` channels, which join the
    skip's whole channel blocks, then its DoubleConv fits; else None."""
    if _blocked.own_forward(up) or _blocked.own_forward(up.up) \
            or _compute_dtype(up) != np.float32:
        return None  # (Up converts both inputs to its dtype)
    if type(up.up) is ConvTranspose2d:
        params = up.up.__dict__["_parameters"]
        weight = params.get("weight")
        if not (isinstance(weight, np.ndarray) and weight.ndim == 4
                and weight.shape[0] == shape[1]
                and all(v is None or (isinstance(v, np.ndarray) and v.dtype == np.float32)
                        for v in params.values())):
            return None
        channels = weight.shape[1] * up.up.groups
    elif type(up.up) is Upsample:
        channels = shape[1]
    else:
        return None
    if skip[1] % _blocked.LANES_F32 != 0:
        return None  # the concatenation would not be whole channel blocks
    return _double_conv_fits(up.conv, (skip[0], skip[1] + channels, skip[2], skip[3]))


def _up(up, x, skip):
    """_up_fits' Up on the Blocked maps x (the deeper) and skip."""
    y = _pad_to(up.up(_blocked.to_nchw(x, "Up")), skip.shape)
    y = _blocked.to_blocked(y, "Up")
    cat = _blocked.Blocked(np.concatenate([skip.data, y.data], axis=1),
                           skip.channels + y.channels)
    return _double_conv(up.conv, cat)


def _stages(net):
    """UNet's encoder steps down1..down4 and decoder steps up1..up4."""
    return ([net.down1, net.down2, net.down3, net.down4],
            [net.up1, net.up2, net.up3, net.up4])


def _unet_plan(net, shape):
    """True when every part of ``net`` fits a plan on an input of ``shape``
    (the exact DoubleConv, Down, Up and OutConv types, without hooks or
    forwards of their own), else None."""
    downs, ups = _stages(net)
    if type(net.inc) is not DoubleConv or any(type(d) is not Down for d in downs) \
            or any(type(u) is not Up for u in ups) or type(net.outc) is not OutConv \
            or _blocked.own_forward(net.outc):
        return None
    shapes = [_double_conv_fits(net.inc, shape)]
    for down in downs:
        shapes.append(None if shapes[-1] is None else _down_fits(down, shapes[-1]))
    if shapes[-1] is None:
        return None
    out = shapes[-1]
    for up, skip in zip(ups, reversed(shapes[:-1])):
        out = _up_fits(up, out, skip)
        if out is None:
            return None
    return True


def _planned_unet(net, x):
    """UNet's eval-mode forward on channel-blocked maps, or None when no plan
    applies to all of it (module docstring)."""
    if not _blocked.plan_input_ok(net, x):
        return None
    if _blocked.cached_plan(net, x.shape, lambda: _unet_plan(net, x.shape)) is None:
        return None
    downs, ups = _stages(net)
    skips = [_double_conv(net.inc, x)]
    for down in downs:
        skips.append(_down(down, skips[-1]))
    y = skips.pop()
    for up in ups:
        y = _up(up, y, skips.pop())
    return net.outc(_blocked.to_nchw(y, "UNet"))

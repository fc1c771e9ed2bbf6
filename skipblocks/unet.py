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
"""
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
        dy = x2.shape[2] - x1.shape[2]
        dx = x2.shape[3] - x1.shape[3]
        if dx or dy:  # the encoder floored an odd size (negative: crops, as torch's pad)
            x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2], _layer="Up")
        return self.conv(F.cat([x2, x1], dim=1, _layer="Up"))


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

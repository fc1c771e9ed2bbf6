"""torch references of the document's other systems, the parity oracle for
skipblocks.unet, skipblocks.inception and skipblocks.SEResidualBlock.

The document (``shared/seed/000_b831e00f78ae79ec.txt``) describes these
without code:

* section 2.3, U-Net's long skips from encoder to decoder. The structure and
  state_dict keys here are those of milesial/Pytorch-UNet, the most used
  U-Net, whose published checkpoints are state_dicts; the classes are written
  from that structure (DoubleConv, Down, Up, OutConv, UNet), not taken from
  the project.
* section 4.2's figure, the SE module inside a ResNet block and inside an
  Inception module. ``SEResidualBlock`` is the document's ResidualBlock (its
  one shared ``bn``) with ``se`` applied to the residual branch after the
  second BatchNorm, before the addition. ``Inception`` has torchvision's
  GoogLeNet structure and keys (``branch1`` ... ``branch4`` of BasicConv2d =
  conv without bias + BatchNorm eps=0.001 + ReLU; ``branch3`` with a 3x3
  kernel, as torchvision keeps it for its weights); ``SEInception`` applies
  ``se`` to the concatenation.

This module imports torch; ``import skipblocks`` never imports it.
"""
import torch
from torch import nn
import torch.nn.functional as F

from .document import ResidualBlock, SEAttention

__all__ = ["DoubleConv", "Down", "Up", "OutConv", "UNet", "SEResidualBlock", "BasicConv2d",
           "Inception", "SEInception", "SYSTEM_DEMOS"]


# ---------------------------------------------------------------------------
# 2.3  U-Net
# ---------------------------------------------------------------------------

class DoubleConv(nn.Module):
    """(3x3 conv without bias -> BatchNorm -> ReLU) twice; a falsy
    ``mid_channels`` means ``out_channels``."""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        mid = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    """2x2 max pool, then DoubleConv: one encoder step."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """One decoder step: upsample the deeper map, pad it to the skip's size,
    concatenate [skip, upsampled] on channels (the long skip), DoubleConv."""

    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy = x2.size(2) - x1.size(2)
        dx = x2.size(3) - x1.size(3)
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class OutConv(nn.Module):
    """The 1x1 convolution (with bias) to the class scores."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False):
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.bilinear = bilinear
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(n_channels, 64)
        self.down1 = Down(64, 128)
        self.down2 = Down(128, 256)
        self.down3 = Down(256, 512)
        self.down4 = Down(512, 1024 // factor)
        self.up1 = Up(1024, 512 // factor, bilinear)
        self.up2 = Up(512, 256 // factor, bilinear)
        self.up3 = Up(256, 128 // factor, bilinear)
        self.up4 = Up(128, 64, bilinear)
        self.outc = OutConv(64, n_classes)

    def forward(self, x):
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


# ---------------------------------------------------------------------------
# 4.2  SE inside ResNet and Inception
# ---------------------------------------------------------------------------

class SEResidualBlock(ResidualBlock):
    """The document's ResidualBlock with SE on the residual branch:
    relu(se(bn(conv2(relu(bn(conv1(x)))))) + downsample(x))."""

    def __init__(self, in_channels, out_channels, stride=[1, 1], downsample=None,
                 reduction=16):
        super().__init__(in_channels, out_channels, stride, downsample)
        self.se = SEAttention(out_channels, reduction)

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn(self.conv1(x)))
        out = self.se(self.bn(self.conv2(out)))
        return F.relu(out + residual)


class BasicConv2d(nn.Module):
    """torchvision's GoogLeNet BasicConv2d: conv (no bias) -> BatchNorm
    (eps=0.001) -> ReLU."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """torchvision's GoogLeNet Inception module (branch3 with a 3x3 kernel)."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 conv_block=None):
        super().__init__()
        conv_block = conv_block or BasicConv2d
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(conv_block(in_channels, ch3x3red, kernel_size=1),
                                     conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(conv_block(in_channels, ch5x5red, kernel_size=1),
                                     conv_block(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv_block(in_channels, pool_proj, kernel_size=1))

    def _forward(self, x):
        return [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]

    def forward(self, x):
        return torch.cat(self._forward(x), 1)


class SEInception(Inception):
    """Inception with SE on the concatenation of its four branches."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 reduction=16, conv_block=None):
        super().__init__(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                         conv_block)
        self.se = SEAttention(ch1x1 + ch3x3 + ch5x5 + pool_proj, reduction)

    def forward(self, x):
        return self.se(super().forward(x))


# The torch twins of skipblocks.demos.SYSTEM_DEMOS, by the same names.
SYSTEM_DEMOS = {
    "unet": lambda: UNet(3, 2),
    "unet-bilinear": lambda: UNet(3, 2, bilinear=True),
    "se-resnet": lambda: SEResidualBlock(64, 64),
    "se-inception": lambda: SEInception(192, 64, 96, 128, 16, 32, 32),
}

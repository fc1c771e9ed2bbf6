"""The document's three demos rebuilt with skipblocks (sections 3.1, 3.2, 4.3),
and demos of its other systems (U-Net, section 2.3; SE inside ResNet and
Inception, section 4.2).

Each builder has the same signature and module structure (so the same
state_dict keys) as its torch twin in skipblocks.reference.document (or
skipblocks.reference.systems), with the document's values as defaults.
"""
from .blocks import DenseBlock, ResidualBlock, SEAttention
from .containers import Sequential
from .layers import BatchNorm2d, Conv2d, MaxPool2d

__all__ = ["resnet_downsample", "resnet_demo", "densenet_demo", "se_demo", "DEMOS",
           "SYSTEM_DEMOS"]


def resnet_downsample(in_channels=64, out_channels=128, stride=2):
    """The document's ``downsample``: 1x1 convolution (stride 2, no bias) + BatchNorm2d."""
    return Sequential(
        Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        BatchNorm2d(out_channels),
    )


def resnet_demo(in_channels=3, width=64, out_channels=128, down_stride=2):
    """First five layers of ResNet34 (section 3.1): (1, 3, 100, 100) -> (1, 128, 13, 13)."""
    downsample = resnet_downsample(width, out_channels, down_stride)
    return Sequential(
        Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
        MaxPool2d(kernel_size=2, stride=2),
        ResidualBlock(width, width),
        ResidualBlock(width, width),
        ResidualBlock(width, out_channels, stride=[down_stride, 1], downsample=downsample),
    )


def densenet_demo(in_channels=3, width=64, n_layers=6, growthrate=32, bn_size=4):
    """Stem and a 6-layer dense block (section 3.2): (1, 3, 100, 100) -> (1, 256, 24, 24)."""
    return Sequential(
        Conv2d(in_channels, width, kernel_size=7, padding=3, stride=2, bias=False),
        BatchNorm2d(width),
        MaxPool2d(3, 2),
        DenseBlock(n_layers, width, growthrate=growthrate, bn_size=bn_size),
    )


def se_demo(channel=512, reduction=8):
    """SEAttention(channel=512, reduction=8) (section 4.3): (50, 512, 7, 7) -> same shape."""
    return SEAttention(channel=channel, reduction=reduction)


# name -> (builder, the document's input shape, how the document draws it)
DEMOS = {
    "resnet": (resnet_demo, (1, 3, 100, 100), "rand"),
    "densenet": (densenet_demo, (1, 3, 100, 100), "rand"),
    "se": (se_demo, (50, 512, 7, 7), "randn"),
}


def _systems():
    from . import inception, unet
    from .blocks import SEResidualBlock
    return unet, inception, SEResidualBlock


def unet_demo(bilinear=False):
    """UNet(3, 2, bilinear): (1, 3, 64, 64) -> (1, 2, 64, 64) class scores."""
    return _systems()[0].UNet(3, 2, bilinear=bilinear)


def se_resnet_demo():
    """SEResidualBlock(64, 64) (SE inside a ResNet block): (2, 64, 28, 28) -> same shape."""
    return _systems()[2](64, 64)


def se_inception_demo():
    """SEInception(192, 64, 96, 128, 16, 32, 32) (GoogLeNet's inception3a with
    SE): (2, 192, 28, 28) -> (2, 256, 28, 28)."""
    return _systems()[1].SEInception(192, 64, 96, 128, 16, 32, 32)


# name -> (builder, input shape, how it is drawn); the torch twins are
# skipblocks.reference.systems.SYSTEM_DEMOS
SYSTEM_DEMOS = {
    "unet": (unet_demo, (1, 3, 64, 64), "rand"),
    "unet-bilinear": (lambda: unet_demo(bilinear=True), (1, 3, 64, 64), "rand"),
    "se-resnet": (se_resnet_demo, (2, 64, 28, 28), "randn"),
    "se-inception": (se_inception_demo, (2, 192, 28, 28), "randn"),
}

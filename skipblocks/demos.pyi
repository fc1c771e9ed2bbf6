from collections.abc import Callable

from .blocks import SEAttention, SEResidualBlock
from .containers import Sequential
from .inception import SEInception
from .module import Module
from .unet import UNet

__all__ = ["resnet_downsample", "resnet_demo", "densenet_demo", "se_demo", "DEMOS",
           "SYSTEM_DEMOS"]

def resnet_downsample(in_channels: int = 64, out_channels: int = 128,
                      stride: int = 2) -> Sequential: ...
def resnet_demo(in_channels: int = 3, width: int = 64, out_channels: int = 128,
                down_stride: int = 2) -> Sequential: ...
def densenet_demo(in_channels: int = 3, width: int = 64, n_layers: int = 6,
                  growthrate: int = 32, bn_size: int = 4) -> Sequential: ...
def se_demo(channel: int = 512, reduction: int = 8) -> SEAttention: ...
def unet_demo(bilinear: bool = False) -> UNet: ...
def se_resnet_demo() -> SEResidualBlock: ...
def se_inception_demo() -> SEInception: ...

# name -> (builder, the input shape, how the input is drawn: "rand" or "randn")
DEMOS: dict[str, tuple[Callable[[], Module], tuple[int, ...], str]]
SYSTEM_DEMOS: dict[str, tuple[Callable[[], Module], tuple[int, ...], str]]

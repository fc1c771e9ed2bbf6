from numpy.typing import ArrayLike

from ._typing import Array, DTypeArg
from .containers import Sequential
from .layers import Conv2d
from .module import Module

__all__ = ["DoubleConv", "Down", "Up", "OutConv", "UNet"]

class DoubleConv(Module):
    double_conv: Sequential
    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None,
                 *, dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class Down(Module):
    maxpool_conv: Sequential
    def __init__(self, in_channels: int, out_channels: int, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class Up(Module):
    # Upsample (bilinear) or ConvTranspose2d
    up: Module
    conv: DoubleConv
    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = True, *,
                 dtype: DTypeArg = None) -> None: ...
    # x1: the deeper map (upsampled), x2: the skip
    def forward(self, x1: ArrayLike, x2: ArrayLike) -> Array: ...
    def __call__(self, x1: ArrayLike, x2: ArrayLike) -> Array: ...

class OutConv(Module):
    conv: Conv2d
    def __init__(self, in_channels: int, out_channels: int, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class UNet(Module):
    n_channels: int
    n_classes: int
    bilinear: bool
    inc: DoubleConv
    down1: Down
    down2: Down
    down3: Down
    down4: Down
    up1: Up
    up2: Up
    up3: Up
    up4: Up
    outc: OutConv
    def __init__(self, n_channels: int, n_classes: int, bilinear: bool = False, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

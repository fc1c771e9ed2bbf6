from collections.abc import Callable, Sequence
from numpy.typing import ArrayLike

from ._typing import Array, DTypeArg
from .containers import ModuleDict, Sequential
from .layers import AdaptiveAvgPool2d, BatchNorm2d, Conv2d
from .module import Module

__all__ = ["ResidualBlock", "DenseLayer", "DenseBlock", "Dense_Layer", "Dense_Block",
           "SEAttention", "SEResidualBlock"]

class ResidualBlock(Module):
    conv1: Conv2d
    conv2: Conv2d
    bn: BatchNorm2d
    # a module or any callable; None: the identity
    downsample: Callable[[Array], ArrayLike] | None
    def __init__(self, in_channels: int, out_channels: int, stride: Sequence[int] = ...,
                 downsample: Callable[[Array], ArrayLike] | None = None, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class DenseLayer(Module):
    bn1: BatchNorm2d
    conv1: Conv2d
    bn2: BatchNorm2d
    conv2: Conv2d
    def __init__(self, in_channels: int, growthrate: int, bn_size: int, *,
                 dtype: DTypeArg = None) -> None: ...
    # one feature map, or a list/tuple of them (concatenated on channels)
    def forward(self, prev_features: ArrayLike | Sequence[ArrayLike]) -> Array: ...
    def __call__(self, prev_features: ArrayLike | Sequence[ArrayLike]) -> Array: ...

class DenseBlock(ModuleDict):
    block: ModuleDict
    def __init__(self, n_layers: int, in_channels: int, growthrate: int, bn_size: int, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, features: ArrayLike | Sequence[ArrayLike]) -> Array: ...
    def __call__(self, features: ArrayLike | Sequence[ArrayLike]) -> Array: ...

# the document's names
Dense_Layer = DenseLayer
Dense_Block = DenseBlock

class SEAttention(Module):
    avg_pool: AdaptiveAvgPool2d
    fc: Sequential
    def __init__(self, channel: int = 512, reduction: int = 16, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class SEResidualBlock(ResidualBlock):
    se: SEAttention
    def __init__(self, in_channels: int, out_channels: int, stride: Sequence[int] = ...,
                 downsample: Callable[[Array], ArrayLike] | None = None, reduction: int = 16,
                 *, dtype: DTypeArg = None) -> None: ...

from collections.abc import Callable
from typing import Any

from numpy.typing import ArrayLike

from ._typing import Array, DTypeArg
from .blocks import SEAttention
from .containers import Sequential
from .layers import BatchNorm2d, Conv2d
from .module import Module

__all__ = ["BasicConv2d", "Inception", "SEInception"]

class BasicConv2d(Module):
    conv: Conv2d
    bn: BatchNorm2d
    # **kwargs: Conv2d's (kernel_size, stride, padding, ...)
    def __init__(self, in_channels: int, out_channels: int, *, dtype: DTypeArg = None,
                 **kwargs: Any) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class Inception(Module):
    branch1: Module
    branch2: Sequential
    branch3: Sequential
    branch4: Sequential
    # conv_block(in_channels, out_channels, kernel_size=..., padding=...)
    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, conv_block: Callable[..., Module] | None = None,
                 *, dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class SEInception(Inception):
    se: SEAttention
    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, reduction: int = 16,
                 conv_block: Callable[..., Module] | None = None, *,
                 dtype: DTypeArg = None) -> None: ...

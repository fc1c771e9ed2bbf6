from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._typing import Array, DeviceArg, DTypeArg, IntOrPair
from .module import Module

__all__ = ["Conv2d", "BatchNorm2d", "ReLU", "Sigmoid", "MaxPool2d", "AdaptiveAvgPool2d",
           "Linear", "ConvTranspose2d", "Dropout", "Flatten", "Identity", "flatten",
           "AvgPool2d", "Upsample"]

_T = TypeVar("_T")

class Conv2d(Module):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int]
    groups: int
    padding_mode: str
    weight: Array
    bias: Array | None
    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair | str = 0, dilation: IntOrPair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: DeviceArg = None, dtype: DTypeArg = None) -> None: ...
    def reset_parameters(self) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class BatchNorm2d(Module):
    num_features: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool
    weight: Array | None
    bias: Array | None
    running_mean: Array | None
    running_var: Array | None
    num_batches_tracked: NDArray[np.int64] | None
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 device: DeviceArg = None, dtype: DTypeArg = None, *,
                 bias: bool = True) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class ReLU(Module):
    inplace: bool
    def __init__(self, inplace: bool = False) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class Sigmoid(Module):
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class MaxPool2d(Module):
    kernel_size: IntOrPair
    stride: IntOrPair
    padding: IntOrPair
    dilation: IntOrPair
    return_indices: bool
    ceil_mode: bool
    # return_indices=True raises NotImplementedError
    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class AdaptiveAvgPool2d(Module):
    output_size: int | None | Sequence[int | None]
    def __init__(self, output_size: int | None | Sequence[int | None]) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class Linear(Module):
    in_features: int
    out_features: int
    weight: Array
    bias: Array | None
    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: DeviceArg = None, dtype: DTypeArg = None) -> None: ...
    def reset_parameters(self) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class ConvTranspose2d(Module):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    transposed: bool
    padding_mode: str
    weight: Array
    bias: Array | None
    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0, output_padding: IntOrPair = 0,
                 groups: int = 1, bias: bool = True, dilation: IntOrPair = 1,
                 padding_mode: str = "zeros", device: DeviceArg = None,
                 dtype: DTypeArg = None) -> None: ...
    def reset_parameters(self) -> None: ...
    # output_size: (H, W), or with the batch and channel sizes in front
    def forward(self, input: ArrayLike, output_size: Sequence[int] | None = None) -> Array: ...
    def __call__(self, input: ArrayLike, output_size: Sequence[int] | None = None) -> Array: ...

class Dropout(Module):
    p: float
    inplace: bool
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None: ...
    # in eval mode (and for p == 0) the input itself
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

# the input's own dtype: integers stay integers
def flatten(input: ArrayLike, start_dim: int = 0, end_dim: int = -1) -> Array: ...

class Flatten(Module):
    start_dim: int
    end_dim: int
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class Identity(Module):
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def forward(self, input: _T) -> _T: ...
    def __call__(self, input: _T) -> _T: ...

class AvgPool2d(Module):
    kernel_size: IntOrPair
    stride: IntOrPair
    padding: IntOrPair
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None
    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

class Upsample(Module):
    name: str
    size: int | Sequence[int] | None
    scale_factor: float | tuple[float, ...] | None
    mode: str
    align_corners: bool | None
    recompute_scale_factor: bool | None
    def __init__(self, size: int | Sequence[int] | None = None,
                 scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None: ...
    def forward(self, input: ArrayLike) -> Array: ...
    def __call__(self, input: ArrayLike) -> Array: ...

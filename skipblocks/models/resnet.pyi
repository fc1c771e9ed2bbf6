from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from numpy.typing import ArrayLike

from .._typing import Array, DTypeArg, WeightsArg
from ..containers import Sequential
from ..layers import AdaptiveAvgPool2d, Conv2d, Linear, MaxPool2d, ReLU
from ..module import Module

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152"]

class BasicBlock(Module):
    expansion: ClassVar[int]
    conv1: Conv2d
    bn1: Module
    relu: ReLU
    conv2: Conv2d
    bn2: Module
    downsample: Callable[[Array], ArrayLike] | None
    stride: int
    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Callable[[Array], ArrayLike] | None = None, groups: int = 1,
                 base_width: int = 64, dilation: int = 1,
                 norm_layer: Callable[[int], Module] | None = None, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class Bottleneck(Module):
    expansion: ClassVar[int]
    conv1: Conv2d
    bn1: Module
    conv2: Conv2d
    bn2: Module
    conv3: Conv2d
    bn3: Module
    relu: ReLU
    downsample: Callable[[Array], ArrayLike] | None
    stride: int
    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Callable[[Array], ArrayLike] | None = None, groups: int = 1,
                 base_width: int = 64, dilation: int = 1,
                 norm_layer: Callable[[int], Module] | None = None, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class ResNet(Module):
    inplanes: int
    dilation: int
    groups: int
    base_width: int
    conv1: Conv2d
    bn1: Module
    relu: ReLU
    maxpool: MaxPool2d
    layer1: Sequential
    layer2: Sequential
    layer3: Sequential
    layer4: Sequential
    avgpool: AdaptiveAvgPool2d
    fc: Linear
    def __init__(self, block: type[BasicBlock | Bottleneck], layers: Sequence[int],
                 num_classes: int = 1000, zero_init_residual: bool = False, groups: int = 1,
                 width_per_group: int = 64,
                 replace_stride_with_dilation: Sequence[bool] | None = None,
                 norm_layer: Callable[[int], Module] | None = None, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

# **kwargs: ResNet's arguments (num_classes, zero_init_residual, groups,
# width_per_group, replace_stride_with_dilation, norm_layer, dtype)
def resnet18(*, weights: WeightsArg = None, progress: bool = True, **kwargs: Any) -> ResNet: ...
def resnet34(*, weights: WeightsArg = None, progress: bool = True, **kwargs: Any) -> ResNet: ...
def resnet50(*, weights: WeightsArg = None, progress: bool = True, **kwargs: Any) -> ResNet: ...
def resnet101(*, weights: WeightsArg = None, progress: bool = True, **kwargs: Any) -> ResNet: ...
def resnet152(*, weights: WeightsArg = None, progress: bool = True, **kwargs: Any) -> ResNet: ...

from collections.abc import Callable
from typing import Any

from numpy.typing import ArrayLike

from .._typing import Array, DTypeArg, WeightsArg
from ..layers import Conv2d, Identity, ReLU, Sigmoid
from ..module import Module
from .resnet import Bottleneck, ResNet

__all__ = ["SEModule", "SEBottleneck", "se_resnet50", "se_resnet101"]

class SEModule(Module):
    fc1: Conv2d
    bn: Identity
    act: ReLU
    fc2: Conv2d
    gate: Sigmoid
    def __init__(self, channels: int, rd_ratio: float = ..., rd_channels: int | None = None,
                 rd_divisor: int = 8, bias: bool = True, *, dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class SEBottleneck(Bottleneck):
    se: SEModule
    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Callable[[Array], ArrayLike] | None = None, groups: int = 1,
                 base_width: int = 64, dilation: int = 1,
                 norm_layer: Callable[[int], Module] | None = None, *,
                 dtype: DTypeArg = None) -> None: ...

# **kwargs: ResNet's arguments (zero_init_residual defaults to True)
def se_resnet50(*, weights: WeightsArg = None, progress: bool = True, **kwargs: Any) -> ResNet: ...
def se_resnet101(*, weights: WeightsArg = None, progress: bool = True,
                 **kwargs: Any) -> ResNet: ...

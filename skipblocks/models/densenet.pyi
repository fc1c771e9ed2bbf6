from collections.abc import Sequence
from typing import Any

from numpy.typing import ArrayLike

from .._typing import Array, DTypeArg, WeightsArg
from ..containers import Sequential
from ..layers import Linear
from ..module import Module

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201"]

class DenseNet(Module):
    features: Sequential
    classifier: Linear
    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0,
                 num_classes: int = 1000, memory_efficient: bool = False, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

# **kwargs: DenseNet's arguments (drop_rate, num_classes, memory_efficient, dtype)
def densenet121(*, weights: WeightsArg = None, progress: bool = True,
                **kwargs: Any) -> DenseNet: ...
def densenet161(*, weights: WeightsArg = None, progress: bool = True,
                **kwargs: Any) -> DenseNet: ...
def densenet169(*, weights: WeightsArg = None, progress: bool = True,
                **kwargs: Any) -> DenseNet: ...
def densenet201(*, weights: WeightsArg = None, progress: bool = True,
                **kwargs: Any) -> DenseNet: ...

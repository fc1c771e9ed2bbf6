from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from numpy.typing import ArrayLike

from .._typing import Array, DTypeArg, WeightsArg
from ..inception import Inception
from ..layers import AdaptiveAvgPool2d, Dropout, Linear, MaxPool2d
from ..module import Module

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "InceptionAux", "googlenet"]

class GoogLeNetOutputs(NamedTuple):
    logits: Array
    aux_logits2: Array | None
    aux_logits1: Array | None

class InceptionAux(Module):
    conv: Module
    fc1: Linear
    fc2: Linear
    dropout: Dropout
    def __init__(self, in_channels: int, num_classes: int,
                 conv_block: Callable[..., Module] | None = None, dropout: float = 0.7, *,
                 dtype: DTypeArg = None) -> None: ...
    def forward(self, x: ArrayLike) -> Array: ...
    def __call__(self, x: ArrayLike) -> Array: ...

class GoogLeNet(Module):
    aux_logits: bool
    transform_input: bool
    conv1: Module
    maxpool1: MaxPool2d
    conv2: Module
    conv3: Module
    maxpool2: MaxPool2d
    inception3a: Inception
    inception3b: Inception
    maxpool3: MaxPool2d
    inception4a: Inception
    inception4b: Inception
    inception4c: Inception
    inception4d: Inception
    inception4e: Inception
    maxpool4: MaxPool2d
    inception5a: Inception
    inception5b: Inception
    aux1: InceptionAux | None
    aux2: InceptionAux | None
    avgpool: AdaptiveAvgPool2d
    dropout: Dropout
    fc: Linear
    # blocks: [conv_block, inception_block, inception_aux_block]
    def __init__(self, num_classes: int = 1000, aux_logits: bool = True,
                 transform_input: bool = False, init_weights: bool | None = None,
                 blocks: Sequence[Callable[..., Module]] | None = None, dropout: float = 0.2,
                 dropout_aux: float = 0.7, *, dtype: DTypeArg = None) -> None: ...
    # GoogLeNetOutputs in train mode with aux_logits, else the logits array
    def forward(self, x: ArrayLike) -> Any: ...
    def __call__(self, x: ArrayLike) -> Any: ...

# **kwargs: GoogLeNet's arguments
def googlenet(*, weights: WeightsArg = None, progress: bool = True,
              **kwargs: Any) -> GoogLeNet: ...

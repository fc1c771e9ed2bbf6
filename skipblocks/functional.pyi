from collections.abc import Sequence

from numpy.typing import ArrayLike

from ._typing import Array, IntOrPair

__all__ = ["conv2d", "batch_norm", "relu", "sigmoid", "max_pool2d",
           "adaptive_avg_pool2d", "linear", "cat", "conv_transpose2d", "pad", "dropout",
           "avg_pool2d", "interpolate"]

# Every function takes array-likes (NumPy arrays, lists, numbers, CPU torch
# tensors) and returns a new float32 or float64 array (relu and dropout with
# inplace=True: the input itself; dropout that drops nothing: the input).
# Their keyword-only ``_layer`` (the name errors start with) is internal.

def conv2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
           stride: IntOrPair = 1, padding: IntOrPair | str = 0, dilation: IntOrPair = 1,
           groups: int = 1) -> Array: ...
def batch_norm(input: ArrayLike, running_mean: ArrayLike | None,
               running_var: ArrayLike | None, weight: ArrayLike | None = None,
               bias: ArrayLike | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Array: ...
def relu(input: ArrayLike, inplace: bool = False) -> Array: ...
def sigmoid(input: ArrayLike) -> Array: ...
# return_indices=True raises NotImplementedError
def max_pool2d(input: ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Array: ...
def adaptive_avg_pool2d(input: ArrayLike,
                        output_size: int | None | Sequence[int | None]) -> Array: ...
def linear(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> Array: ...
def cat(tensors: Sequence[ArrayLike], dim: int = 0) -> Array: ...
def conv_transpose2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
                     stride: IntOrPair = 1, padding: IntOrPair = 0,
                     output_padding: IntOrPair = 0, groups: int = 1,
                     dilation: IntOrPair = 1) -> Array: ...
def pad(input: ArrayLike, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Array: ...
def dropout(input: ArrayLike, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Array: ...
def avg_pool2d(input: ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Array: ...
def interpolate(input: ArrayLike, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Array: ...


# Stub of the C extension skipblocks._C (csrc/glue/*.c). Internal: use
# skipblocks and skipblocks.functional. The parameters are those of each
# function's text signature (its __text_signature__, so inspect.signature
# and help() show them); python -m mypy.stubtest checks the two agree.
#
# Every operator takes the layer name its errors start with first. Array
# arguments are array-likes (NumPy arrays, lists, numbers, CPU torch
# tensors), converted by the dtype rule of csrc/glue/glue.h; results are
# new float32 or float64 arrays.
from numpy.typing import ArrayLike, DTypeLike
from typing_extensions import TypedDict

from ._typing import Array

_Pair = tuple[int, int]
# A BatchNorm as the fused blocks take it: (weight, bias, running_mean,
# running_var, batch_stats, momentum, eps).
_BN = tuple[ArrayLike | None, ArrayLike | None, ArrayLike | None, ArrayLike | None, bool,
            float, float]
# A convolution as the fused blocks take it: (weight, packed, stride,
# padding, dilation, groups).
_Conv = tuple[ArrayLike, Array | None, _Pair, _Pair, _Pair, int]
# An eval-mode BatchNorm folded by conv2d_pack: (running_mean, running_var,
# weight, bias, eps).
_Fold = tuple[ArrayLike | None, ArrayLike | None, ArrayLike | None, ArrayLike | None, float]

class _BuildInfo(TypedDict):
    compiler: str
    build_flags: str
    sanitize: bool
    python: str
    numpy_api_version: int
    numpy_feature_version: int
    numpy_feature_version_string: str
    numpy_abi_version: int
    isas: list[str]

# conv.c
def conv2d(layer: str, input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None,
           stride: _Pair, padding: _Pair, dilation: _Pair, groups: int,
           out: Array | None = None, packed: Array | None = None,
           in_scale: ArrayLike | None = None, in_shift: ArrayLike | None = None,
           in_relu: bool = False, residual: ArrayLike | None = None, relu: bool = False,
           padding_extra: _Pair = (0, 0), in_blocked: bool = False,
           out_blocked: bool = False) -> Array: ...
def conv2d_pack(layer: str, weight: ArrayLike, bias: ArrayLike | None, groups: int,
                fold: _Fold | None = None) -> Array: ...

# batch_norm.c
def batch_norm(layer: str, input: ArrayLike, running_mean: ArrayLike | None,
               running_var: ArrayLike | None, weight: ArrayLike | None,
               bias: ArrayLike | None, training: bool, momentum: float, eps: float,
               relu: bool = False) -> Array: ...

# pool.c
def max_pool2d(layer: str, input: ArrayLike, kernel_size: _Pair, stride: _Pair,
               padding: _Pair, dilation: _Pair, ceil_mode: bool,
               blocked_channels: int = 0) -> Array: ...
def adaptive_avg_pool2d(layer: str, input: ArrayLike, output_size: _Pair) -> Array: ...

# blocked.c (the channel-blocked layout)
def to_blocked(layer: str, input: ArrayLike) -> Array: ...
def from_blocked(layer: str, input: ArrayLike, channels: int) -> Array: ...
def conv2d_blocked_ok(out_channels: int, groups: int, float64: bool = False, /) -> bool: ...

# elementwise.c
def relu(layer: str, input: ArrayLike, out: Array | None = None) -> Array: ...
def sigmoid(layer: str, input: ArrayLike, out: Array | None = None) -> Array: ...
def add_relu(layer: str, a: ArrayLike, b: ArrayLike) -> Array: ...
def channel_scale(layer: str, input: ArrayLike, scale: ArrayLike) -> Array: ...

# linear.c
def linear(layer: str, input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None,
           packed: Array | None = None) -> Array: ...
def linear_pack(layer: str, weight: ArrayLike, bias: ArrayLike | None) -> Array: ...

# blocks.c: dense_layer and residual_block return None, touching nothing, when
# the shapes or dtypes do not fit their fused operator.
def se_attention(layer: str, input: ArrayLike, fc1_packed: Array, fc2_packed: Array,
                 hidden: int, blocked: bool = False, channels: int = 0,
                 residual: ArrayLike | None = None, relu: bool = False) -> Array: ...
def dense_layer(layer: str, input: ArrayLike, bn1: _BN, bn2: _BN, conv1: _Conv, conv2: _Conv,
                out: Array | None = None, blocked: bool = False) -> Array | None: ...
def residual_block(layer: str, input: ArrayLike, residual: ArrayLike, bn: _BN,
                   momentum2: float, folded: bool, conv1: _Conv,
                   conv2: _Conv) -> Array | None: ...

# runtime.c
def get_num_threads() -> int: ...
def set_num_threads(n: int, /) -> None: ...
def get_isa() -> str: ...
def set_isa(name: str, /) -> None: ...
def available_isas() -> list[str]: ...
def as_real(layer: str, value: ArrayLike, what: str = "input",
            dtype: DTypeLike | None = None) -> Array: ...
def build_info() -> _BuildInfo: ...
def _test_avx512_source_on_avx2(on: object, /) -> bool: ...

# conv_transpose.c
def conv_transpose2d(layer: str, input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None,
                     stride: _Pair, padding: _Pair, output_padding: _Pair, dilation: _Pair,
                     groups: int, packed: Array | None = None) -> Array: ...
def conv_transpose2d_pack(layer: str, weight: ArrayLike, groups: int) -> Array: ...

# pad_dropout.c: dropout returns its input itself (an ndarray as it is) when
# nothing is dropped (not training, p == 0, an empty input).
def pad(layer: str, input: ArrayLike, pad: tuple[int, ...], mode: str,
        value: float | None) -> Array: ...
def dropout(layer: str, input: ArrayLike, p: float, training: bool, seed: int,
            out: Array | None = None) -> Array: ...

# avg_pool2d.c: bn and relu (relu(bn(input)) pooled) need a blocked input.
def avg_pool2d(layer: str, input: ArrayLike, kernel_size: _Pair, stride: _Pair,
               padding: _Pair, ceil_mode: bool, count_include_pad: bool,
               divisor_override: int | None, blocked_channels: int = 0,
               bn: _Fold | None = None, relu: bool = False) -> Array: ...

# interpolate.c: mode 0 nearest, 1 bilinear; scales <= 0: none.
def interpolate(layer: str, input: ArrayLike, mode: int, size: _Pair,
                scales: tuple[float, float], align_corners: bool) -> Array: ...


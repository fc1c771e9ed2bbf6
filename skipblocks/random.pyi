import numpy as np
from numpy.typing import DTypeLike

from ._typing import Array

__all__ = ["manual_seed", "uniform", "seed64"]

# an integer (or a number, truncated by int()) in [-2**63, 2**64)
def manual_seed(seed: float) -> np.random.Generator: ...
def uniform(low: float, high: float, shape: int | tuple[int, ...],
            dtype: DTypeLike = ...) -> Array: ...
def seed64() -> int: ...

"""skipblocks: PyTorch-compatible skip-connection blocks as C kernels on NumPy.

The document's ResidualBlock, Dense_Layer / Dense_Block and SEAttention, the
torch.nn layers they are built from, and torch.nn.functional counterparts,
with torch's class names, constructor arguments, state_dict keys, repr and
numbers -- and NumPy as the only run-time dependency (torch is never
imported here; skipblocks.reference, the test oracle, needs it).
"""
try:
    from . import _C  # noqa: F401  (the compiled kernels)
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "skipblocks' C extension (skipblocks._C) is not built. Install the package "
        "with `pip install .` from the source tree rather than importing it from "
        "there.") from exc

from . import functional
from .blocks import (DenseBlock, DenseLayer, Dense_Block, Dense_Layer, ResidualBlock,
                     SEAttention)
from .containers import ModuleDict, Sequential
from .functional import cat
from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU,
                     Sigmoid)
from .module import Module, Parameter
from .random import manual_seed

__version__ = "0.1.0"

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleDict",
    "Conv2d", "BatchNorm2d", "ReLU", "Sigmoid", "MaxPool2d", "AdaptiveAvgPool2d", "Linear",
    "ResidualBlock", "DenseLayer", "DenseBlock", "Dense_Layer", "Dense_Block", "SEAttention",
    "functional", "cat", "manual_seed",
]

# The type aliases the stubs share. A stub-only module: there is no
# skipblocks/_typing.py, so nothing here exists at run time (import it only
# under `if TYPE_CHECKING:`); python -m mypy.stubtest allowlists it
# (tests/package/stubtest_allowlist.txt).
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike as ArrayLike
from numpy.typing import DTypeLike, NDArray
from typing_extensions import TypeAlias

# What the operators and modules return: a NumPy array, float32 or float64
# for every operator (the module's dtype decides for a module, the inputs'
# for skipblocks.functional), so not one dtype the stubs could name.
Array: TypeAlias = NDArray[Any]

# An int, or a pair of ints (a tuple or list of two), as torch's _size_2_t.
IntOrPair: TypeAlias = int | Sequence[int]

class TorchDType(Protocol):
    """torch.float32, torch.float64, ... (duck-typed: torch is not needed)."""
    @property
    def is_floating_point(self) -> bool: ...
    @property
    def is_complex(self) -> bool: ...

class TorchDevice(Protocol):
    """torch.device (duck-typed)."""
    @property
    def type(self) -> str: ...

# The ``dtype=`` of layers and blocks: None (float32), a NumPy dtype or scalar
# type, a string NumPy reads ('float64'), or torch.float32 / torch.float64.
DTypeArg: TypeAlias = DTypeLike | TorchDType | None
# The ``device=`` of layers: None or the CPU ('cpu', torch.device('cpu')).
DeviceArg: TypeAlias = str | TorchDevice | None

# A state_dict as load_state_dict takes it: names to NumPy arrays,
# array-likes or torch tensors.
StateDictLike: TypeAlias = Mapping[str, Any]

# A file system path, as the weight-file functions take it.
StrPath: TypeAlias = str | os.PathLike[str]

# The ``weights=`` of the network builders (skipblocks.models): None, the path
# of a .pth/.pt, .safetensors or .npz file (a state_dict or a checkpoint
# holding one), or a state_dict.
WeightsArg: TypeAlias = str | os.PathLike[str] | Mapping[str, Any] | None

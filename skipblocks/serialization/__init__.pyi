import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import IO, Any, Literal

__all__ = ["load", "save", "state_dict_from", "read_metadata", "WeightsFileError"]

# a path, or a seekable binary file object
_File = str | bytes | os.PathLike[str] | os.PathLike[bytes] | IO[bytes]

class WeightsFileError(ValueError): ...

# the object the file holds: a state_dict (OrderedDict of name -> array) or
# whatever torch.save pickled (a checkpoint dict, lists, numbers, ...)
def load(path: _File, *, mmap: bool = False) -> Any: ...
def save(obj: Any, path: _File, *, format: Literal["torch", "safetensors", "npz"] | None = None,
         metadata: Mapping[str, str] | None = None) -> None: ...
def state_dict_from(obj: Any, prefix: str | None = "module.") -> OrderedDict[str, Any]: ...
def read_metadata(path: _File) -> dict[str, str]: ...

from typing import Any

from .module import Module

__all__ = ["from_torch"]

# a torch.nn.Module (skipblocks does not need torch's stubs)
def from_torch(module: Any) -> Module: ...

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from numpy.typing import ArrayLike

from .module import Module

__all__ = ["compare", "assert_parity", "ParityTable", "hook_forwards"]


# compare's rows: dicts with the keys mode, name, type (str), shape
# (tuple[int, ...] | None), max_abs_diff, parity_error, running_mean_error,
# running_var_error (float | None) and note (str).
class ParityTable:
    COLUMNS: ClassVar[list[tuple[str, str]]]
    rows: list[dict[str, Any]]
    tol: float
    def __init__(self, rows: Iterable[dict[str, Any]], tol: float = 1e-4) -> None: ...
    @property
    def worst_row(self) -> dict[str, Any] | None: ...
    @property
    def worst(self) -> float: ...
    def over(self, tol: float | None = None) -> list[dict[str, Any]]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def to_markdown(self) -> str: ...

# torch_module: a torch.nn.Module (skipblocks does not need torch's stubs).
# mode: "train", "eval" or "both". x: an array-like or torch tensor, or a list
# of them.
def compare(torch_module: Any, sb_module: Module, x: ArrayLike | list[Any],
            mode: str = "eval", copy_weights: bool = True, fused: bool = False,
            tol: float = 1e-4) -> ParityTable: ...
def assert_parity(torch_module: Any, sb_module: Module, x: ArrayLike,
                  tol: float | None = None, mode: str = "eval") -> ParityTable: ...
# callback(name, submodule, output, seconds, kind)
def hook_forwards(module: Module,
                  callback: Callable[[str, Module, Any, float, str], object],
                  ) -> AbstractContextManager[Module]: ...

"""Threads and instruction sets of the C kernels.

- ``set_num_threads(n)`` / ``get_num_threads()``: threads used by the
  convolutions (the default: the CPUs this process may use, or the
  environment variable ``SKIPBLOCKS_NUM_THREADS``, an integer from 1 to 1024;
  anything else there is an ImportError). Results are bit-identical
  for every thread count: work is split over output tiles, never inside a sum.
- ``set_isa(name)`` / ``get_isa()`` / ``available_isas()``: the instruction set
  of the convolution micro-kernels, chosen at run time from what the CPU
  supports ('avx512' on x86-64 CPUs with AVX-512F, AVX2 and FMA; 'avx2' on
  those with AVX2 and FMA; else 'scalar', the portable C path every build
  has). Forcing one ('scalar', 'avx2', 'avx512', or 'auto' for the best) is
  for tests and benchmarks; so is the environment variable
  ``SKIPBLOCKS_ISA``, read at import. Forcing an ISA the CPU lacks raises
  ValueError.
"""
import operator
import os
import threading

from . import _C
from .hooks import hooked as _hooked

__all__ = ["set_num_threads", "get_num_threads", "set_isa", "get_isa", "available_isas",
           "fusion_enabled", "unfused", "planning_enabled", "unplanned"]


def set_num_threads(n):
    """Sets the number of threads the kernels use (n >= 1). Any integer
    type works (NumPy's too, as torch.set_num_threads takes them); bool and
    float do not."""
    if isinstance(n, bool) or not hasattr(type(n), "__index__"):
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    _C.set_num_threads(operator.index(n))


def get_num_threads():
    """The number of threads the kernels use."""
    return _C.get_num_threads()


def set_isa(name):
    """Forces the instruction set of the kernels: 'auto', 'scalar', 'avx2' or
    'avx512' (ValueError if this CPU or build cannot run it)."""
    if not isinstance(name, str):
        raise TypeError("set_isa: expected one of 'auto', 'scalar', 'avx2', 'avx512', got "
                        f"{name!r}")
    _C.set_isa(name)


def get_isa():
    """The instruction set in use: 'scalar', 'avx2' or 'avx512'."""
    return _C.get_isa()


def available_isas():
    """The instruction sets this build can run on this CPU."""
    return _C.available_isas()


def _apply_environment():
    """The two environment switches, checked alike: a value that cannot be
    used is an error at import, not silently ignored."""
    isa = os.environ.get("SKIPBLOCKS_ISA", "").strip()
    if isa:
        try:
            set_isa(isa)
        except ValueError as exc:
            raise ImportError(f"skipblocks: SKIPBLOCKS_ISA={isa!r}: {exc}") from None
    threads = os.environ.get("SKIPBLOCKS_NUM_THREADS", "").strip()
    if threads:
        # The C runtime reads the variable itself for its default; here it
        # is only validated, so a typo does not quietly mean "all CPUs".
        if not (threads.isascii() and threads.isdigit()) or not 1 <= int(threads) <= 1024:
            raise ImportError(f"skipblocks: SKIPBLOCKS_NUM_THREADS={threads!r}: expected an "
                              "integer from 1 to 1024")


_apply_environment()


class _Switch(threading.local):
    enabled = True  # per thread: one thread's unfused() never reaches another


_fusion = _Switch()
_plans = _Switch()


class _SwitchedOff:
    """A context manager turning the class's ``_switch`` off in this thread,
    and back to what it was on exit."""

    _switch = None

    def __enter__(self):
        self._previous = self._switch.enabled
        self._switch.enabled = False
        return self

    def __exit__(self, *exc):
        self._switch.enabled = self._previous
        return False


def planning_enabled():
    """Whether networks run their planned eval-mode forwards in this thread
    (the default; see skipblocks._blocked): fusion on, and not inside
    ``unplanned()``."""
    return _plans.enabled and _fusion.enabled


class unplanned(_SwitchedOff):
    """Context manager: in this thread, networks run layer by layer on NCHW
    maps (with their fusions) instead of their planned channel-blocked
    forwards. The results are the same bits either way; this is for tests
    and benchmarks that compare the two."""

    _switch = _plans


def fusion_enabled(*modules):
    """Whether blocks run their fused fast paths in this thread (the
    default), for a fused path that would skip the calls of ``modules`` and
    their descendants: not when one of them carries a forward hook
    (skipblocks.hooks), which must see its module's own call."""
    return _fusion.enabled and not _hooked(modules)


class unfused(_SwitchedOff):
    """Context manager: in this thread, blocks and Sequential call each child
    layer in turn, as the document's torch code does, instead of their fused
    paths (folded BatchNorms, BatchNorm + ReLU inside the next convolution's
    packing, residual + ReLU in its epilogue, SEAttention in one call). The
    numbers agree within the parity bounds either way; skipblocks.parity
    uses this to see every layer's output."""

    _switch = _fusion

"""torch.nn.Sequential and torch.nn.ModuleDict."""
import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import numpy as np

from . import runtime
from .layers import BatchNorm2d, Conv2d, ReLU
from .module import Module, _indent_after_first_line


def _foldable(conv, bn, input):
    """conv(input) then bn can run as one convolution with bn folded in:
    same result as calling them in turn, errors included (BatchNorm2d's 4-D
    check, a channel mismatch), otherwise the caller calls them in turn."""
    if not (getattr(input, "ndim", None) == 4
            and type(conv) is Conv2d and type(bn) is BatchNorm2d  # not subclasses: their
            # own forward must run
            and bn._uses_running_stats() and conv._symmetric_padding() is not None
            and conv._packable()):
        return False
    channels = (conv.weight.shape[0],)
    dtype = conv.weight.dtype  # one operator takes them all: one dtype
    return (not bn.eps < 0  # a NaN eps passes torch's check too
            and (conv.bias is None or conv.bias.dtype == dtype)
            and all(a is None or (a.shape == channels and a.dtype == dtype)
                    for a in (bn.running_mean, bn.running_var, bn.weight, bn.bias)))

__all__ = ["Sequential", "ModuleDict",
           # ModuleList
           "ModuleList"]


class Sequential(Module):
    """torch.nn.Sequential: children named "0", "1", ... (or by an
    OrderedDict's keys), applied in order."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __dir__(self):
        # the children's names "0", "1", ... are not listed (as in torch)
        return [name for name in super().__dir__() if not name.isdigit()]

    def _key_at(self, index):
        """The name of the child at position ``index`` (negative: from the
        end). torch's errors: TypeError for a non-integer, IndexError
        "index N is out of range"."""
        position = operator.index(index)
        keys = list(self._modules)
        if position >= len(keys) or position < -len(keys):
            raise IndexError(f"index {position} is out of range")
        return keys[position]

    def __getitem__(self, index):
        """The child at ``index``, or a new Sequential of this class holding
        the children a slice selects (under their names)."""
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        return self._modules[self._key_at(index)]

    def __setitem__(self, index, module):
        setattr(self, self._key_at(index), module)

    def __delitem__(self, index):
        doomed = list(self._modules)[index] if isinstance(index, slice) \
            else [self._key_at(index)]
        for key in doomed:
            delattr(self, key)
        # torch renumbers the remaining children 0, 1, ...
        items = list(self._modules.values())
        self._modules.clear()
        for i, module in enumerate(items):
            self._modules[str(i)] = module

    # The list-like methods: torch's behaviour, its results and its errors
    # (types and wording), checked against torch in
    # tests/module_api/test_torch_api_extras.py.
    def append(self, module):
        """Appends ``module`` (named str(len(self))); returns self."""
        self.add_module(str(len(self)), module)
        return self

    def insert(self, index, module):
        """Inserts ``module`` at position ``index`` (negative: from the end;
        ``len(self)`` appends); the children from there on move one place
        up. Returns self. As in torch, positions are the names "0", "1",
        ...: a Sequential with other names raises KeyError (and is left
        unchanged)."""
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        size = len(self._modules)
        if index < -size or index > size:
            raise IndexError(f"Index out of range: {index}")
        if index < 0:
            index += size
        moving = [str(i) for i in range(index, size)]  # a float: torch's TypeError
        for key in reversed(moving):  # torch reads them from the last one down
            if key not in self._modules:
                raise KeyError(key)
        shifted = [self._modules[key] for key in moving]
        for i, child in enumerate(shifted, index + 1):
            self._modules[str(i)] = child
        self._modules[str(index)] = module
        return self

    def extend(self, modules):
        """Appends the modules of the iterable ``modules`` one by one;
        returns self."""
        for module in modules:
            self.append(module)
        return self

    def pop(self, key):
        """Removes and returns the child at index ``key`` (for a slice: a
        Sequential of the children it selects); the rest are renumbered.
        (torch names the argument ``key`` too.)"""
        removed = self[key]
        del self[key]
        return removed

    def __add__(self, other):
        """A new Sequential (never a subclass, as in torch): this one's
        children, then ``other``'s, numbered from 0."""
        _check_sequential_operand(other)
        return Sequential(*self, *other)

    def __iadd__(self, other):
        _check_sequential_operand(other)
        return self.extend(other)

    def __mul__(self, factor):
        """A new Sequential holding this one's children ``factor`` times over
        (the same module objects), numbered from 0."""
        self._check_factor(factor)
        return Sequential(*(list(self) * factor))

    def __rmul__(self, factor):
        return self * factor

    def __imul__(self, factor):
        self._check_factor(factor)
        if factor > 1:
            # as in torch, the children are taken by the names "0", "1", ...
            # (KeyError in a Sequential named otherwise)
            block = [self._modules[str(i)] for i in range(len(self))]
            self.extend(block * (factor - 1))
        return self

    def _check_factor(self, factor):
        if not isinstance(factor, int):
            raise TypeError(f"unsupported operand type(s) for *: {type(self)} and {type(factor)}")
        if factor <= 0:
            raise ValueError(f"Non-positive multiplication factor {factor} for {type(self)}")

    def forward(self, input):
        # eval mode: a chain holding a planned block (a residual or dense
        # block, U-Net's DoubleConv or Down, ...) may run on channel-blocked
        # maps (skipblocks._blocked.BLOCKS; the same bits)
        if type(self) is Sequential and type(input) is np.ndarray:
            from . import _blocked  # (it imports this module)
            planned = _blocked.planned_sequential(self, input)
            if planned is not None:
                return planned
        # every child, None entries too: as torch's, a None child raises
        # TypeError: 'NoneType' object is not callable
        return _run_sequence(list(self._modules.values()), input)


def _run_sequence(modules, input):
    """Sequential's forward over the list ``modules`` (also what a network
    runs over part of its Sequential, e.g. all but a last BatchNorm it fuses
    with the ReLU after it)."""
    fuse = runtime.fusion_enabled()
    i = 0
    while i < len(modules):
        module = modules[i]
        follower = modules[i + 1] if i + 1 < len(modules) else None
        if fuse and _foldable(module, follower, input) \
                and runtime.fusion_enabled(module, follower):
            # Conv2d then an eval-mode BatchNorm2d (the stems, ResNet's
            # downsample): one convolution with the BatchNorm folded into
            # its packed weights, plus a following ReLU in its epilogue.
            relu = i + 2 < len(modules) and type(modules[i + 2]) is ReLU \
                and runtime.fusion_enabled(modules[i + 2])
            input = module._conv(input, fold=follower, relu=relu)
            i += 3 if relu else 2
            continue
        input = module(input)
        i += 1
    return input


class ModuleDict(Module):
    """torch.nn.ModuleDict: an ordered dict of child modules."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        """The children's names, in order."""
        return self._modules.keys()

    def items(self):
        """``(name, module)`` pairs, in order."""
        return self._modules.items()

    def values(self):
        """The child modules, in order."""
        return self._modules.values()

    def clear(self):
        """Removes every module."""
        self._modules.clear()

    def pop(self, key):
        """Removes the module ``key`` and returns it (KeyError if absent)."""
        return self._modules.pop(key)

    def update(self, modules):
        """Adds or replaces modules from a mapping (OrderedDict, ModuleDict,
        dict: in its order) or an iterable of (key, module) pairs; torch's
        errors for anything else (the pairs before a bad one are added, as
        in torch)."""
        if not isinstance(modules, Iterable):
            raise TypeError("ModuleDict.update should be called with an iterable of key/value "
                            f"pairs, but got {type(modules).__name__}")
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs = modules.items()
        else:
            pairs = _checked_pairs(modules)
        for key, module in pairs:
            self[key] = module


def _check_sequential_operand(other):
    if not isinstance(other, Sequential):
        raise ValueError("add operator supports only objects of Sequential class, "
                         f"but {type(other)} is given.")


def _checked_pairs(items):
    """The (key, module) pairs of the iterable ``items``, each checked (with
    torch's wording) just before it is used."""
    for number, item in enumerate(items):
        where = f"ModuleDict update sequence element #{number}"
        if not isinstance(item, Iterable):
            raise TypeError(f"{where} should be Iterable; is{type(item).__name__}")
        if len(item) != 2:
            raise ValueError(f"{where} has length {len(item)}; 2 is required")
        yield item[0], item[1]


# ---- ModuleList -------------------------------------------------------------

class ModuleList(Module):
    """torch.nn.ModuleList: a list of child modules named "0", "1", ...,
    with torch 2.13's list methods, results and errors. It has no forward:
    calling it raises torch's NotImplementedError."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self += modules

    def _index_key(self, idx):
        """The name of the child at ``idx`` (negative: from the end);
        torch's TypeError for a non-integer, IndexError out of range."""
        idx = operator.index(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} is out of range")
        return str(idx + len(self) if idx < 0 else idx)

    def __getitem__(self, idx):
        """The child at ``idx``, or a new ModuleList (of this class) of the
        children a slice selects, renumbered from 0."""
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[self._index_key(idx)]

    def __setitem__(self, idx, module):
        setattr(self, self._index_key(idx), module)

    def __delitem__(self, idx):
        if isinstance(idx, slice):
            for k in range(len(self._modules))[idx]:
                delattr(self, str(k))
        else:
            delattr(self, self._index_key(idx))
        # as torch, the remaining children are renumbered 0, 1, ...
        items = list(self._modules.values())
        self._modules.clear()
        for i, module in enumerate(items):
            self._modules[str(i)] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        """A new ModuleList (never a subclass, as in torch) of this list's
        modules, then those of the iterable ``other``."""
        combined = ModuleList()
        for i, module in enumerate(list(self) + list(other)):
            combined.add_module(str(i), module)
        return combined

    def __repr__(self):
        # torch's: runs of consecutive children with the same repr print once,
        # as "(first-last): count x repr"
        reprs = [repr(module) for module in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []  # [first, last, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = []
        for first, last, text in runs:
            entry = f"({first}): {text}" if first == last else \
                f"({first}-{last}): {last - first + 1} x {text}"
            lines.append(_indent_after_first_line(entry, 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        # the children's names "0", "1", ... are not listed (as in torch)
        return [name for name in super().__dir__() if not name.isdigit()]

    def insert(self, index, module):
        """Inserts ``module`` before position ``index``, moving the children
        from there on one place up. As torch's, it checks nothing: the
        children are moved by their names, so a negative index raises
        KeyError, and ``module`` is stored as given."""
        for i in range(len(self._modules), index, -1):
            self._modules[str(i)] = self._modules[str(i - 1)]
        self._modules[str(index)] = module

    def append(self, module):
        """Appends ``module`` (named str(len(self))); returns self."""
        self.add_module(str(len(self)), module)
        return self

    def pop(self, key):
        """Removes and returns the child at index ``key`` (a slice: a
        ModuleList of those children); the rest are renumbered."""
        removed = self[key]
        del self[key]
        return removed

    def extend(self, modules):
        """Appends the modules of the iterable ``modules``; returns self."""
        if not isinstance(modules, Iterable):
            raise TypeError("ModuleList.extend should be called with an iterable, but got "
                            + type(modules).__name__)
        offset = len(self)
        for i, module in enumerate(modules):
            self.add_module(str(offset + i), module)
        return self

"""torch.nn.Sequential and torch.nn.ModuleDict."""
from collections import OrderedDict

from . import runtime
from .layers import BatchNorm2d, Conv2d, ReLU
from .module import Module


def _foldable(conv, bn, input):
    """conv(input) then bn can run as one convolution with bn folded in:
    same result as calling them in turn, errors included (BatchNorm2d's 4-D
    check, a channel mismatch), otherwise the caller calls them in turn."""
    return (getattr(input, "ndim", None) == 4
            and type(conv) is Conv2d and type(bn) is BatchNorm2d  # not subclasses: their
            # own forward must run
            and bn._uses_running_stats() and conv._symmetric_padding() is not None
            and bn.running_mean.shape[0] == conv.weight.shape[0])

__all__ = ["Sequential", "ModuleDict"]


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

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[self._check_index(index)]

    def __setitem__(self, index, module):
        key = list(self._modules.keys())[self._check_index(index)]
        self.add_module(key, module)

    def __delitem__(self, index):
        if isinstance(index, slice):
            for key in list(self._modules.keys())[index]:
                del self._modules[key]
        else:
            del self._modules[list(self._modules.keys())[self._check_index(index)]]
        # torch renumbers the remaining children 0, 1, ...
        items = list(self._modules.values())
        self._modules.clear()
        for i, module in enumerate(items):
            self._modules[str(i)] = module

    def _check_index(self, index):
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range")
        return index % size

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        modules = [m for m in self._modules.values() if m is not None]
        fuse = runtime.fusion_enabled()
        i = 0
        while i < len(modules):
            module = modules[i]
            follower = modules[i + 1] if i + 1 < len(modules) else None
            if fuse and _foldable(module, follower, input):
                # Conv2d then an eval-mode BatchNorm2d (the stems, ResNet's
                # downsample): one convolution with the BatchNorm folded into
                # its packed weights, plus a following ReLU in its epilogue.
                relu = i + 2 < len(modules) and type(modules[i + 2]) is ReLU
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
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module

"""The Module base class: torch.nn.Module's structure on NumPy arrays.

How weights are stored, and why they can never be silently stale
----------------------------------------------------------------
Parameters and buffers are NumPy arrays reachable as attributes
(``conv.weight``, ``bn.running_mean``) and through :meth:`Module.state_dict`.
Each one is an array the module owns, and it is **read-only**
(``arr.flags.writeable`` is False): writing into it in place raises
``ValueError: assignment destination is read-only``. A weight changes in one
of two ways only, and both go through the module:

* assignment -- ``conv.weight = new_values`` copies ``new_values`` (any
  array-like or CPU torch tensor) into a new float32 array;
* :meth:`Module.load_state_dict`, which does the same for every key.

Parameters are backed by immutable ``bytes``, so
``arr.flags.writeable = True`` is refused, on the array and on its base;
buffers are read-only views of read-only arrays, which refuse it too. Each change increments the
module's ``_version`` counter. So a cache derived
from the weights (packed convolution weights, a BatchNorm folded into the
convolution before it) stays valid exactly as long as the versions it was
built from: nothing can change an array behind the module's back. The module
itself updates BatchNorm's running statistics in train mode in place (as
torch does) and bumps the version when it does.

``state_dict()`` returns the module's own (read-only) arrays, not copies --
like torch, whose state_dict tensors share storage with the module -- so a
later train-mode forward that updates running statistics is visible through a
state_dict taken earlier. Take ``{k: v.copy() for k, v in sd.items()}`` to
keep a snapshot.
"""
import threading
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

__all__ = ["Module", "Parameter"]


class Parameter:
    """Marks an array to be registered as a parameter on attribute assignment.

    ``self.scale = skipblocks.Parameter(np.ones(8))`` inside a Module's
    ``__init__`` registers ``scale`` as a parameter (as torch.nn.Parameter
    does). The module stores a read-only float32 copy, not this wrapper.
    """

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return "Parameter containing:\n" + repr(np.asarray(self.data))


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, printed like torch's."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def to_numpy(value):
    """An ndarray view of ``value``: arrays pass through; torch tensors are
    read through ``.detach().cpu().numpy()`` (duck-typed, so torch is never
    imported); anything else goes through ``np.asarray``."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()  # NumPy has no bfloat16; the cast is exact
        return value.numpy()
    return np.asarray(value)


def _frozen_copy(value, dtype, what, immutable=False):
    """A new read-only C-contiguous array holding ``value`` cast to ``dtype``
    (float64 checkpoints load as float32, as torch's copy_ casts).

    Parameters (``immutable``) live in an immutable ``bytes`` object: NumPy
    refuses to make such an array, or any array over it, writable again, so
    a weight can only change through the module. Buffers, which the module
    itself updates in place (BatchNorm's running statistics), are a
    read-only view of a read-only array: ``arr.flags.writeable = True`` is
    refused too; only going through ``arr.base`` on purpose gets around it."""
    array = to_numpy(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold real numbers, got an array of dtype {array.dtype}")
    owner = np.array(array, dtype=dtype, order="C", copy=True)
    if immutable:
        return np.frombuffer(owner.tobytes(), dtype=owner.dtype).reshape(owner.shape)
    owner.flags.writeable = False
    return owner.view()


# Serialises in-place buffer updates: two Python threads running train-mode
# forwards of one BatchNorm (the kernel releases the GIL) must not switch
# the same arrays' write protection on and off under each other.
_BUFFER_LOCK = threading.RLock()


class writable:
    """``with writable(a, b):`` lets the owning module update its own
    read-only buffers in place (BatchNorm's running statistics in train
    mode), and makes them read-only again however the block ends. One
    update at a time, process-wide. (A class, not a generator context
    manager: it runs on every train-mode BatchNorm call.)"""

    __slots__ = ("arrays",)

    def __init__(self, *arrays):
        self.arrays = [a for a in arrays if a is not None]

    def __enter__(self):
        _BUFFER_LOCK.acquire()
        for a in self.arrays:
            if a.base is not None:
                a.base.flags.writeable = True
            a.flags.writeable = True
        return self

    def __exit__(self, *exc):
        try:
            for a in self.arrays:
                a.flags.writeable = False
                if a.base is not None:
                    a.base.flags.writeable = False
        finally:
            _BUFFER_LOCK.release()
        return False


def _addindent(text, spaces):
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * spaces + line for line in lines)


def _shape(array):
    return tuple(np.shape(array))


class Module:
    """Base class of every skipblocks layer and block, like torch.nn.Module.

    Subclasses set attributes in ``__init__`` (layers, Parameters, buffers
    via :meth:`register_buffer`) and define ``forward``. Modules start in
    train mode, as torch's do.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        # Incremented on every change of this module's own parameters or
        # buffers: the key that weight-derived caches are checked against.
        # Kept in a one-element list so that a shallow copy (copy.copy),
        # which shares the parameter dicts as torch's does, shares the
        # counter too: a change made through either object invalidates the
        # caches of both.
        object.__setattr__(self, "_version_box", [0])

    # -- registration -------------------------------------------------
    def _check_initialised(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() call")

    def register_parameter(self, name, param):
        """Registers ``param`` (array-like, Parameter, or None) as a parameter."""
        self._check_initialised()
        if isinstance(param, Parameter):
            param = param.data
        self.__dict__.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._parameters[name] = None if param is None else _frozen_copy(
            param, np.float32, f"{self._get_name()}.{name}", immutable=True)
        self._bump_version()

    def register_buffer(self, name, tensor, persistent=True):
        """Registers ``tensor`` (array-like or None) as a buffer. Float
        buffers are stored as float32, integer ones keep their integer type."""
        self._check_initialised()
        if not persistent:
            raise NotImplementedError("skipblocks: non-persistent buffers are not supported")
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = None if tensor is None else self._buffer_copy(name, tensor)
        self._bump_version()

    def _buffer_copy(self, name, value):
        old = self._buffers.get(name)
        array = to_numpy(value)
        if old is not None:
            dtype = old.dtype
        else:
            dtype = np.int64 if array.dtype.kind in "iub" else np.float32
        return _frozen_copy(array, dtype, f"{self._get_name()}.{name}")

    def add_module(self, name, module):
        """Registers a child module (or None) under ``name``."""
        self._check_initialised()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str) or "." in name or name == "":
            raise KeyError(f'module name must be a non-empty string without ".", got {name!r}')
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules[name] = module

    register_module = add_module

    @property
    def _version(self):
        return self.__dict__["_version_box"][0]

    def _bump_version(self):
        self.__dict__["_version_box"][0] += 1

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                self._check_initialised()
            self.register_parameter(name, value)
        elif params is not None and name in params:
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if params is None:
                self._check_initialised()
            self.add_module(name, value)
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (a Module or None is expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            self._buffers[name] = None if value is None else self._buffer_copy(name, value)
            self._bump_version()
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails: parameters, buffers and
        # children live in their dicts, as in torch.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._bump_version()
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def __setstate__(self, state):
        # copy.deepcopy and pickle rebuild the arrays writable: freeze them
        # again (the never-stale guarantee) and drop derived caches.
        self.__dict__.update(state)
        for immutable, store in ((True, self._parameters), (False, self._buffers)):
            for name, value in store.items():
                if value is not None:
                    store[name] = _frozen_copy(value, value.dtype, name, immutable)
        self.__dict__.pop("_packed_cache", None)

    # -- calling --------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- modes ----------------------------------------------------------
    def train(self, mode=True):
        """Sets train mode (``mode=True``) or eval mode on this module and all
        its descendants; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Eval mode: BatchNorm uses its running statistics. Returns self."""
        return self.train(False)

    # -- traversal ------------------------------------------------------
    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def _named_members(self, store, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True):
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Calls ``fn`` on every child (recursively) and then on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- state dict -----------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An OrderedDict of every parameter and buffer, in torch's key order
        (a module's parameters, then its buffers, then its children's). The
        values are the module's own read-only arrays (see the module docstring)."""
        if destination is None:
            destination = OrderedDict()
        for name, value in self._parameters.items():
            if value is not None:
                destination[prefix + name] = value
        for name, value in self._buffers.items():
            if value is not None:
                destination[prefix + name] = value
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, missing_keys,
                              unexpected_keys, error_msgs, updates):
        """Collects (self, kind, name, array) updates for the keys of this
        module; reports missing/unexpected keys and shape mismatches with
        torch's wording. Nothing is assigned here: see load_state_dict."""
        local_state = [(n, v, "_parameters") for n, v in self._parameters.items() if v is not None]
        local_state += [(n, v, "_buffers") for n, v in self._buffers.items() if v is not None]
        for name, current, kind in local_state:
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = to_numpy(state_dict[key])
            if value.dtype.kind not in "fiub":
                error_msgs.append(f'While copying the parameter named "{key}", expected a '
                                  f"real-valued array, got dtype {value.dtype}.")
                continue
            # torch accepts a 1-element 1-D value for a 0-d buffer (old checkpoints).
            if current.ndim == 0 and value.shape == (1,):
                value = value.reshape(())
            if value.shape != current.shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {_shape(value)} "
                    f"from checkpoint, the shape in current model is {_shape(current)}.")
                continue
            updates.append((self, kind, name, value))
        # torch's rule: a key with a dot must go through a child module, a
        # key without one must name a parameter or buffer of this module.
        local_names = {name for name, _, _ in local_state}
        for key in state_dict:
            if key.startswith(prefix) and key != "_metadata":
                parts = key[len(prefix):].split(".", 1)
                if len(parts) > 1:
                    if parts[0] not in self._modules:
                        unexpected_keys.append(key)
                elif parts[0] not in local_names:
                    unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict=True):
        """Copies values from ``state_dict`` (NumPy arrays, array-likes or torch
        tensors; torch is never imported) into this module's parameters and
        buffers, casting to their dtype. Returns ``(missing_keys,
        unexpected_keys)``; with ``strict`` either kind raises RuntimeError, as
        in torch, and shape mismatches raise whatever ``strict`` is.

        Deliberate difference from torch: the load is all-or-nothing. torch
        copies the matching keys before it raises; skipblocks checks every key
        first and changes nothing when it raises."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        metadata = getattr(state_dict, "_metadata", None)
        state = OrderedDict(state_dict)
        missing_keys, unexpected_keys, error_msgs, updates = [], [], [], []

        def load(module, prefix):
            local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
            module._load_from_state_dict(state, prefix, local_metadata, missing_keys,
                                         unexpected_keys, error_msgs, updates)
            for name, child in module._modules.items():
                if child is not None:
                    load(child, prefix + name + ".")

        load(self, "")
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if error_msgs:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                self._get_name(), "\n\t".join(error_msgs)))
        for module, kind, name, value in updates:
            if kind == "_parameters":
                module.register_parameter(name, value)
            else:
                setattr(module, name, value)
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # -- printing -------------------------------------------------------
    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        return ""

    def __repr__(self):
        # torch.nn.Module.__repr__, line for line.
        extra_lines = []
        extra = self.extra_repr()
        if extra:
            extra_lines = extra.split("\n")
        child_lines = []
        for key, module in self._modules.items():
            child_lines.append("(" + key + "): " + _addindent(repr(module), 2))
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

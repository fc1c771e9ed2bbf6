"""The Module base class: torch.nn.Module's structure on NumPy arrays.

How weights are stored, and why they are never silently stale
-------------------------------------------------------------
Parameters and buffers are NumPy arrays reachable as attributes
(``conv.weight``, ``bn.running_mean``) and through :meth:`Module.state_dict`.
Each one is a **read-only** view (``arr.flags.writeable`` is False) of a
read-only array the module owns (the view's ``.base``). Writing into it raises
``ValueError: assignment destination is read-only``, and
``arr.flags.writeable = True`` is refused, on the array and on any view of it.
A weight changes in these ways only, all of them through the module:

* assignment -- ``conv.weight = new_values`` (likewise ``register_parameter``
  and ``register_buffer`` on an existing name) copies ``new_values`` (any
  array-like or CPU torch tensor), cast to the dtype of the array it
  replaces, into a *new* array that replaces the old one, as torch
  replaces the Parameter: references to the old array, and a
  state_dict taken earlier, keep the old values;
* :meth:`Module.load_state_dict` copies the values *in place* into the
  module's existing arrays, cast to their dtype (like torch's ``copy_``): the
  arrays keep their identity, so an attribute reference or a state_dict taken
  before the load shows the loaded values, and every later in-place update,
  as in torch. The load is all-or-nothing (every key, shape and value is
  checked and converted before the first write);
* BatchNorm's train-mode forward updates its running statistics and
  ``num_batches_tracked`` in place, as torch does.

Each change increments the module's ``_version`` counter, after the new
values are written. A cache derived from the weights (packed convolution
weights, a BatchNorm folded into the convolution before it) is keyed by the
versions it was built from, so it is rebuilt when, and only when, a weight
changes through the module.

In-place writes hold a process-wide lock (``_BUFFER_LOCK``), so a load and a
BatchNorm update never interleave. load_state_dict makes only the owner
arrays writable, for the copy: the arrays users hold stay read-only
throughout. BatchNorm's update (``with writable(...)``) must hand the buffers
themselves, writable, to its kernel: while that call runs, they are writable.

What is not guaranteed:

* Protection against deliberate circumvention: a user who makes the owner
  writable (``arr.base.flags.writeable = True``) and writes into it changes
  the weights behind the module's back, and caches built before then are
  stale. Assign or load instead.
* Protection against other libraries that ignore NumPy's read-only flag:
  ``torch.from_dlpack(conv.weight)`` gives a writable tensor over the
  module's memory without a word (``torch.from_numpy`` / ``torch.as_tensor``
  at least warn that the array is not writable). Writing through such a
  tensor also bypasses the version counter, so the caches go stale: to
  change weights, assign or load.
* Consistency with a forward running in another thread during a
  ``load_state_dict`` (or a train-mode BatchNorm update): the C kernels read
  the weights without the GIL and without the lock, so that forward may use
  old values, new values, or a mix of both, even within one array -- as
  torch's would. Caches are still never stale afterwards, because every
  cache (Conv2d's and Linear's packed weights) reads the version before the
  weights it packs, and the version is bumped after the write: a cache built
  from values read while the write ran carries the earlier version, and the
  next call rebuilds it. Don't load into a module that other threads are
  running.
* Code in another thread that takes a view of a buffer while a train-mode
  BatchNorm update of it runs (see above) gets a writable view, and keeps it.

``state_dict()`` returns the module's own (read-only) arrays, not copies --
like torch, whose state_dict tensors share storage with the module -- so
later in-place changes (load_state_dict, running-statistics updates) are
visible through a state_dict taken earlier; a later assignment is not.
Take ``{k: v.copy() for k, v in sd.items()}`` to keep a snapshot.

pickle and copy.deepcopy give modules with their own protected arrays (they
share nothing with the original) and without derived caches, which are
rebuilt on first use; copy.copy shares the arrays and the version counter
with the original, as torch's shallow copy shares the parameters.

What else of torch.nn.Module's API is here, and how
----------------------------------------------------
* dtypes: skipblocks computes on the CPU in float32 (the default, as
  torch's) or float64. ``double()``, ``float()``, ``to(torch.float64)``,
  ``to(np.float64)``, ``to(other_module.weight)``, ``type(torch.float64)``
  and the layers' ``dtype=`` argument work as in torch: every floating
  parameter and buffer is converted (new read-only arrays, so references
  taken before keep the old ones; torch's Parameters keep their identity),
  ``num_batches_tracked`` stays int64, and the module computes in that
  dtype. The module's dtype decides (a departure from torch, which raises
  on a mismatch): a float64 module converts float32, integer, ... input to
  float64, a float32 one converts float64 input to float32. Modules without
  floating parameters or buffers (ReLU, pooling) follow the input's dtype,
  as torch.nn.functional does. ``to()`` with an integer dtype raises
  torch's TypeError; complex dtypes, which torch accepts, float16,
  bfloat16 (``half()``, ``bfloat16()``), another device (``cuda()``,
  ``to("mps")``) or memory format raise NotImplementedError; ``cpu()``
  returns self. Invalid arguments raise torch's errors. Nothing is ever
  silently ignored.
* ``requires_grad_`` / ``zero_grad``: there is no autograd.
  ``requires_grad_(False)`` (freezing) returns self; ``requires_grad_(True)``
  raises NotImplementedError on a module with parameters; ``zero_grad``
  returns None (there are no gradients).
* ``get_submodule`` / ``get_parameter`` / ``get_buffer`` with torch's errors.
* Forward hooks: ``register_forward_pre_hook`` and ``register_forward_hook``
  with torch's arguments (``prepend``, ``with_kwargs``, ``always_call``),
  semantics and removable handles (skipblocks.hooks). A block whose
  fused path would skip a hooked layer calls its layers one by one instead.
* ``load_state_dict(..., assign=True)`` replaces the arrays (new read-only
  copies) instead of writing into them; as in torch, they take the values'
  float dtype (float32 or float64).
"""
import bisect
import itertools
import re
import threading
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from . import hooks as _hooks

__all__ = ["Module", "Parameter"]


class Parameter:
    """Marks an array to be registered as a parameter on attribute assignment.

    ``self.scale = skipblocks.Parameter(np.ones(8))`` inside a Module's
    ``__init__`` registers ``scale`` as a parameter (as torch.nn.Parameter
    does). The module stores a read-only copy in its dtype (float32 unless
    built with ``dtype=`` or converted by ``.double()`` / ``.to()``), not
    this wrapper.
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


def _frozen_copy(value, dtype, what):
    """A new read-only C-contiguous array holding ``value`` cast to ``dtype``
    (a float64 value for a float32 array is rounded, as torch's copy_ casts): a
    read-only view of a read-only array that owns the data. NumPy refuses
    ``arr.flags.writeable = True`` on the view (its base is read-only); the
    module writes in place through the owner (see _write_in_place and
    ``writable``)."""
    array = to_numpy(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold real numbers, got an array of dtype {array.dtype}")
    owner = np.array(array, dtype=dtype, order="C", copy=True)
    owner.flags.writeable = False
    return owner.view()


def _is_frozen(array):
    """``array`` is in the form _frozen_copy makes: a read-only view,
    covering all of it, of a read-only C-contiguous array owning its data."""
    owner = getattr(array, "base", None)
    return (type(array) is np.ndarray and type(owner) is np.ndarray
            and not array.flags.writeable and not owner.flags.writeable
            and owner.flags.owndata and owner.flags.c_contiguous
            and array.flags.c_contiguous and array.shape == owner.shape
            and array.dtype == owner.dtype
            and array.__array_interface__["data"][0] == owner.__array_interface__["data"][0])


def _write_in_place(array, value):
    """Copies ``value`` (same shape and dtype) into the frozen ``array``
    through its owner. Only the owner is made writable, for the copy: the
    view users hold (and any view taken from it) stays read-only throughout.
    The caller holds _BUFFER_LOCK and bumps the module's version afterwards."""
    owner = array.base
    owner.flags.writeable = True
    try:
        np.copyto(owner, value, casting="unsafe")
    finally:
        owner.flags.writeable = False


try:
    from numpy.lib.array_utils import byte_bounds as _byte_range
except ImportError:  # NumPy < 2
    _byte_range = np.byte_bounds


def _typename(obj):
    """How torch's messages name ``obj``'s type (torch.typename), without
    importing torch: a tensor as its type string ("torch.FloatTensor"); a
    class or function by its qualified name; any other object by its class;
    prefixed with the module unless that is builtins."""
    if type(obj).__module__.partition(".")[0] == "torch" and hasattr(obj, "detach") \
            and hasattr(obj, "type"):
        return obj.type()
    named = hasattr(obj, "__qualname__") or hasattr(obj, "__name__")
    source = obj if named else type(obj)
    name = getattr(source, "__qualname__", None) or getattr(source, "__name__")
    where = (getattr(source, "__module__", None) or "") if named else \
        (type(obj).__module__ or "")
    return name if where in ("", "builtins") else f"{where}.{name}"


# Serialises in-place updates: two Python threads running train-mode
# forwards of one BatchNorm (the kernel releases the GIL), or a load_state_dict
# and such a forward, must not switch the same arrays' write protection on
# and off under each other, nor interleave their writes.
_BUFFER_LOCK = threading.RLock()


class writable:
    """``with writable(a, b):`` lets the owning module update its own
    read-only buffers (frozen arrays) in place (BatchNorm's running statistics in train
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


def _compute_dtype(module):
    """The dtype ``module`` computes in, which its input is converted to:
    that of its first floating parameter, or else buffer, looking at its own
    before its children's (for the document's blocks: their first layer's
    weight); None for a module without any (ReLU, pooling, a BatchNorm with
    neither affine parameters nor running statistics), which computes in its
    input's dtype, as torch.nn.functional does."""
    d = module.__dict__
    for store in (d["_parameters"], d["_buffers"]):
        for value in store.values():
            if value is not None and value.dtype.kind == "f":
                return value.dtype
    for child in d["_modules"].values():
        if child is not None:
            found = _compute_dtype(child)
            if found is not None:
                return found
    return None


def _indent_after_first_line(text, spaces):
    """``text`` with every line but the first indented by ``spaces``: how a
    child's repr nests inside its parent's in torch's print."""
    return text.replace("\n", "\n" + " " * spaces)


def _shape(array):
    return tuple(np.shape(array))


def _assigned_dtype(current, value, kind, bfloat16=False):
    """The dtype load_state_dict(..., assign=True) gives the array that
    replaces ``current``: the value's, as in torch, when both are floating
    and the value is float32 or float64; None (torch's error) for an integer
    or bool value replacing a parameter; otherwise ``current``'s (a float16
    value, an integer one for a float buffer, anything for an integer
    buffer), since skipblocks computes in float32 and float64 only.
    ``bfloat16``: the value was a bfloat16 tensor (read as float32), cast
    as float16 is."""
    if current.dtype.kind == "f":
        if value.dtype.kind == "f" and value.dtype.itemsize in (4, 8) and not bfloat16:
            return np.dtype(f"f{value.dtype.itemsize}")  # float32 / float64, native order
        if kind == "_parameters" and value.dtype.kind in "iub":
            return None
    return current.dtype


def _snapshot_aliased_values(updates):
    """``updates`` with a private copy of every value that shares memory with
    one of the arrays about to be written (the module's own state_dict
    reloaded, or values swapped between layers through an earlier
    state_dict): each value is then read as it was when load_state_dict was
    called, whatever the order of the writes."""
    ranges = {}
    for module, kind, name, _ in updates:
        current = module.__dict__[kind][name]
        if current.nbytes:
            low, high = _byte_range(current)
            ranges[low] = high
    starts = sorted(ranges)  # distinct arrays: disjoint ranges, ends sorted too
    result = []
    for module, kind, name, value in updates:
        if value.nbytes and starts:
            low, high = _byte_range(value)
            i = bisect.bisect_left(starts, high) - 1  # last range starting below high
            if i >= 0 and ranges[starts[i]] > low:
                value = value.copy()
        result.append((module, kind, name, value))
    return result


# The state epoch: a new value after every change of any module's
# structure or attributes (children, parameters, buffers, plain attributes,
# train/eval mode), and only then. The planned networks' cached plans
# (skipblocks._blocked.cached_plan) are checked against it, so a plan is
# rebuilt after any change and reused while nothing changed. Hooks and the
# thread-local switches (runtime.unplanned, unfused) are checked on every
# call instead. (A counter, not an increment: two threads changing modules
# at once still leave a value no plan was built under.)
_EPOCH_VALUES = itertools.count(1)
_STATE_EPOCH = [0]


def _state_changed():
    _STATE_EPOCH[0] = next(_EPOCH_VALUES)


def state_epoch():
    """The current state epoch (see _STATE_EPOCH)."""
    return _STATE_EPOCH[0]


class _TrackedDict(OrderedDict):
    """A module's ``_parameters``, ``_buffers`` and ``_modules``: an
    OrderedDict whose every change moves the state epoch on and, for the
    first two, the owner's version (``box``, its ``_version_box``: the key
    of the packed-weight caches), including changes made to the dict
    directly (``model._modules["fc"] = ...``). Pickled and copied as
    itself, the box shared through the memo as the owner's is."""

    def __init__(self, *args, box=None):
        self.__dict__["_box"] = box
        OrderedDict.__init__(self, *args)

    def _changed(self):
        box = self.__dict__.get("_box")  # (unset while unpickling the items)
        if box is not None:
            box[0] += 1
        _state_changed()

    def __setitem__(self, key, value):
        OrderedDict.__setitem__(self, key, value)
        self._changed()

    def __delitem__(self, key):
        OrderedDict.__delitem__(self, key)
        self._changed()

    def clear(self):
        OrderedDict.clear(self)
        self._changed()

    def pop(self, *args):
        value = OrderedDict.pop(self, *args)
        self._changed()
        return value

    def popitem(self, last=True):
        item = OrderedDict.popitem(self, last)
        self._changed()
        return item

    def setdefault(self, key, default=None):
        value = OrderedDict.setdefault(self, key, default)
        self._changed()
        return value

    def update(self, *args, **kwargs):
        OrderedDict.update(self, *args, **kwargs)
        self._changed()

    def move_to_end(self, key, last=True):
        OrderedDict.move_to_end(self, key, last)
        self._changed()

    def __ior__(self, other):
        OrderedDict.update(self, other)
        self._changed()
        return self


_TRACKED_STORES = ("_parameters", "_buffers", "_modules")


def _tracked_store(module, name, store):
    """``store`` (a dict) as ``module``'s tracked store ``name``."""
    if type(store) is _TrackedDict:
        return store
    box = None if name == "_modules" else module.__dict__.get("_version_box")
    return _TrackedDict(store, box=box)


class Module:
    """Base class of every skipblocks layer and block, like torch.nn.Module.

    Subclasses set attributes in ``__init__`` (layers, Parameters, buffers
    via :meth:`register_buffer`) and define ``forward``. Modules start in
    train mode, as torch's do.
    """

    def __init__(self):
        # Incremented on every change of this module's own parameters or
        # buffers: the key that weight-derived caches are checked against.
        # Kept in a one-element list so that a shallow copy (copy.copy),
        # which shares the parameter dicts as torch's does, shares the
        # counter too: a change made through either object invalidates the
        # caches of both.
        box = [0]
        object.__setattr__(self, "_version_box", box)
        object.__setattr__(self, "_parameters", _TrackedDict(box=box))
        object.__setattr__(self, "_buffers", _TrackedDict(box=box))
        object.__setattr__(self, "_modules", _TrackedDict())
        object.__setattr__(self, "training", True)
        for name, hooks in _hooks.new_hook_dicts().items():
            object.__setattr__(self, name, hooks)

    # -- registration -------------------------------------------------
    def _check_initialised(self, what=None):
        if "_parameters" not in self.__dict__:
            if what is None:
                raise AttributeError(
                    f"cannot assign to {type(self).__name__} before Module.__init__() call")
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")

    def _check_new_name(self, name, kind, store):
        """torch's checks of a name given to register_parameter ("parameter"),
        register_buffer ("buffer") or add_module ("module"), in torch's order
        and with its wording: a non-empty string without ".", and not already
        an attribute of the module unless it is one of ``store``'s names (a
        parameter may replace a parameter, a buffer a buffer, a child a child)."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {_typename(name)}")
        exists = hasattr(self, name) and name not in store
        if kind == "module" and exists:  # add_module checks this first
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            if kind == "module":
                raise KeyError(f'module name can\'t contain ".", got: {name}')
            raise KeyError(f'{kind} name can\'t contain "."')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if exists:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name, param):
        """Registers ``param`` (array-like, Parameter, or None) as a parameter,
        stored as a read-only copy cast to the dtype of the parameter it
        replaces, or for a new name to the module's dtype (float32 unless set
        by ``dtype=`` or a conversion such as ``double()``; torch would keep
        the value's dtype). The name is checked as torch checks it: a
        KeyError for a name that is already an attribute (other than a
        parameter), contains "." or is empty; a TypeError for a name that is
        not a string."""
        self._check_initialised("parameter")
        self._check_new_name(name, "parameter", self._parameters)
        if isinstance(param, Parameter):
            param = param.data
        current = self._parameters.get(name)
        # an existing parameter keeps its dtype; a new one takes the module's
        dtype = current.dtype if current is not None and current.dtype.kind == "f" \
            else self._dtype
        self._parameters[name] = None if param is None else _frozen_copy(
            param, dtype, f"{self._get_name()}.{name}")
        self._bump_version()

    def register_buffer(self, name, tensor, persistent=True):
        """Registers ``tensor`` (array-like or None) as a buffer. Float
        buffers are stored in the module's dtype (float32 unless set by
        ``dtype=`` or a conversion), integer ones as int64.
        The name is checked as in register_parameter."""
        self._check_initialised("buffer")
        self._check_new_name(name, "buffer", self._buffers)
        if not persistent:
            raise NotImplementedError("skipblocks: non-persistent buffers are not supported")
        self._buffers[name] = None if tensor is None else self._buffer_copy(name, tensor)
        self._bump_version()

    def _buffer_copy(self, name, value):
        old = self._buffers.get(name)
        array = to_numpy(value)
        if old is not None:
            dtype = old.dtype
        else:
            dtype = np.int64 if array.dtype.kind in "iub" else self._dtype
        return _frozen_copy(array, dtype, f"{self._get_name()}.{name}")

    def add_module(self, name, module):
        """Registers a child module (or None) under ``name``, checked as torch
        checks it (see register_parameter); an existing child is replaced."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        self._check_initialised("module")
        self._check_new_name(name, "module", self._modules)
        self._modules[name] = module

    register_module = add_module

    @property
    def _version(self):
        return self.__dict__["_version_box"][0]

    def _bump_version(self):
        self.__dict__["_version_box"][0] += 1
        _state_changed()

    def _remove(self, name, *stores):
        for store in stores:
            if name in store:
                del store[name]
                if store is self._parameters or store is self._buffers:
                    self._bump_version()

    def __setattr__(self, name, value):
        # torch.nn.Module.__setattr__'s dispatch. As in torch, assigning a
        # Parameter or a Module replaces an attribute, buffer, parameter or
        # child of that name without add_module's name checks (a Parameter
        # still goes through register_parameter's). Unlike torch, any
        # array-like may be assigned to an existing parameter or buffer: it
        # is copied into a new array that replaces the old one.
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                self._check_initialised("parameters")
            self._remove(name, self.__dict__, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if params is None:
                self._check_initialised("module")
            self._remove(name, self.__dict__, self._parameters, self._buffers)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (a Module or None is expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            self._buffers[name] = None if value is None else self._buffer_copy(name, value)
            self._bump_version()
        else:
            if name in _TRACKED_STORES and isinstance(value, dict):
                value = _tracked_store(self, name, value)  # a replaced store stays tracked
            object.__setattr__(self, name, value)
            _state_changed()

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
        _state_changed()

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # The dtype the module's new parameters and float buffers are made in:
    # float32 (torch's default dtype) unless a constructor's ``dtype=`` or a
    # conversion (double(), to(), ...) sets it on the instance. What a module
    # computes in is the dtype of its parameters and buffers (_compute_dtype).
    _dtype = np.dtype(np.float32)

    # Attributes derived from the weights and rebuilt on demand: never
    # pickled or copied (subclasses may add names).
    _derived_attributes = ("_packed_cache", "_plan_cache", "_prepared_cache")

    def __getstate__(self):
        # pickle and copy.deepcopy/copy.copy: everything but the derived
        # caches (a packed copy of the weights would double the size).
        state = self.__dict__.copy()
        for name in self._derived_attributes:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        # pickle and copy.deepcopy rebuild the arrays writable: freeze them
        # again (the never-stale guarantee). copy.copy hands over the same,
        # still frozen, arrays in the same dicts: those are kept as they are,
        # so the original's arrays keep their identity.
        self.__dict__.update(state)
        for name in _TRACKED_STORES:  # pickles made before the stores were tracked
            store = self.__dict__.get(name)
            if isinstance(store, dict):
                object.__setattr__(self, name, _tracked_store(self, name, store))
        _state_changed()
        for name in _hooks.HOOK_DICTS:  # pickles made before hooks existed
            if name not in self.__dict__:
                object.__setattr__(self, name, OrderedDict())
        _hooks.mark_in_use(self)
        for store in (self._parameters, self._buffers):
            for name, value in store.items():
                if value is not None and not _is_frozen(value):
                    store[name] = _frozen_copy(value, value.dtype, name)
        for name in self._derived_attributes:  # pickles made before __getstate__
            self.__dict__.pop(name, None)

    # -- calling --------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation of the module, which every subclass defines. Call
        the module (``module(x)``) rather than ``forward``: the call also runs
        the module's hooks."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        if self._forward_hooks or self._forward_pre_hooks:
            return _hooks.call(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # -- hooks (skipblocks.hooks) ------------------------------------------
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Registers ``hook`` to run before every call of this module, as
        torch's: ``hook(module, args)`` may return new positional arguments
        (a lone value is wrapped in a tuple) or None; with
        ``with_kwargs=True`` it is called as ``hook(module, args, kwargs)``
        and returns None or ``(args, kwargs)``. ``prepend=True`` runs it
        before the hooks already registered. Returns a
        :class:`skipblocks.hooks.RemovableHandle` (``handle.remove()``).
        A block whose fused path would skip this module's call calls its
        layers one by one while the hook is registered."""
        return _hooks.register(self, hook, True, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False,
                              always_call=False):
        """Registers ``hook`` to run after every call of this module, as
        torch's: ``hook(module, args, output)`` (with ``with_kwargs=True``:
        ``hook(module, args, kwargs, output)``) may return a replacement
        output, or None. ``prepend=True`` runs it before the hooks already
        registered; ``always_call=True`` runs it also when the call raises
        (with the output so far, None when forward did not return). Returns
        a :class:`skipblocks.hooks.RemovableHandle`. A block whose fused path
        would skip this module's call calls its layers one by one while the
        hook is registered, so the hook sees this layer's own output."""
        return _hooks.register(self, hook, False, prepend, with_kwargs, always_call)

    # -- modes ----------------------------------------------------------
    def train(self, mode=True):
        """Sets train mode (``mode=True``) or eval mode on this module and all
        its descendants; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        _state_changed()
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Eval mode: BatchNorm uses its running statistics. Returns self."""
        return self.train(False)

    # -- autograd (skipblocks has none) ------------------------------------
    def requires_grad_(self, requires_grad=True):
        """skipblocks has no autograd: its parameters never require
        gradients. So, with torch's semantics, ``requires_grad_(False)``
        (freezing layers before inference or feature extraction) changes
        nothing and returns self, and so does any call on a module without
        parameters (ReLU); ``requires_grad_(True)`` on a module with
        parameters raises NotImplementedError: the training it prepares
        cannot happen here. A non-bool raises torch's TypeError."""
        if next(self.parameters(), None) is None:
            return self  # torch sets the flag on no parameter, whatever its value
        if not isinstance(requires_grad, bool):
            raise TypeError("requires_grad_(): argument 'requires_grad' (position 1) must be "
                            f"bool, not {type(requires_grad).__name__}")
        if requires_grad:
            raise NotImplementedError(
                f"{self._get_name()}.requires_grad_(True): skipblocks has no autograd, so its "
                "parameters cannot require gradients (requires_grad_(False) is accepted)")
        return self

    def zero_grad(self, set_to_none=True):
        """Returns None, as torch's: there are no gradients to reset (no
        parameter ever has one without autograd), whatever ``set_to_none``."""
        return None

    # -- traversal ------------------------------------------------------
    def named_children(self):
        """Yields ``(name, module)`` for each direct child, in registration
        order, each module once (as torch's)."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        """Yields each direct child module, in registration order."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Yields ``(name, module)`` for this module (name ``prefix``, "" by
        default) and every descendant, depth first, with dotted names as
        state_dict keys use them; a module reachable twice is yielded once
        unless ``remove_duplicate=False``."""
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
        """Yields this module and every descendant, each once (see
        named_modules)."""
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
        """Yields ``(dotted name, array)`` for every parameter of this module
        and, with ``recurse=True``, of its descendants; each array once."""
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        """Yields every parameter array (see named_parameters)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        """Yields ``(dotted name, array)`` for every buffer (running
        statistics, ``num_batches_tracked``) of this module and, with
        ``recurse=True``, of its descendants."""
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        """Yields every buffer array (see named_buffers)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Calls ``fn`` on every child (recursively) and then on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target):
        """The submodule at the dotted path ``target`` ("" is this module).
        Errors as torch's: AttributeError "<Module> has no attribute `name`"
        for a step that does not exist, "`name` is not an nn.Module" for one
        that is not a module."""
        found = self
        for step in (target.split(".") if target != "" else ()):
            found = _attribute_of(found, step)
            if not isinstance(found, Module):
                raise AttributeError(f"`{step}` is not an nn.Module")
        return found

    def get_parameter(self, target):
        """The parameter (the module's read-only array) at the dotted path
        ``target``; torch's AttributeErrors for a missing name or one that is
        not a parameter (a parameter registered as None is not one)."""
        owner, name, value = _resolve_leaf(self, target)
        if value is None or name not in owner._parameters:
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return value

    def get_buffer(self, target):
        """The buffer at the dotted path ``target`` (None for a buffer
        registered as None, as in torch); torch's AttributeErrors for a
        missing name or one that is not a buffer."""
        owner, name, value = _resolve_leaf(self, target)
        if name not in owner._buffers:
            raise AttributeError(f"`{name}` is not a buffer")
        return value

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
        module, each array already cast to the dtype of the one it will be
        copied into; reports missing/unexpected keys and shape mismatches
        with torch's wording. Nothing is written here: see load_state_dict."""
        local_state = [(n, v, "_parameters") for n, v in self._parameters.items() if v is not None]
        local_state += [(n, v, "_buffers") for n, v in self._buffers.items() if v is not None]
        for name, current, kind in local_state:
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            if state_dict[key] is current:
                # The array itself (BatchNorm's fill for a checkpoint without
                # num_batches_tracked, or the module's own state_dict): a copy
                # onto itself, which torch's sequential copy_ makes a no-op
                # that keeps what an earlier key wrote into the same array (a
                # module registered twice); so write nothing.
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
            if local_metadata.get("assign_to_params_buffers", False):
                # NumPy has no bfloat16: to_numpy read it as float32, exactly
                half = str(getattr(state_dict[key], "dtype", "")) == "torch.bfloat16"
                dtype = _assigned_dtype(current, value, kind, half)
                if dtype is None:  # torch: Parameter(integer tensor) raises
                    error_msgs.append(
                        f'While copying the parameter named "{key}", whose dimensions in the '
                        f"model are {_shape(current)} and whose dimensions in the checkpoint "
                        f"are {_shape(value)}, an exception occurred : ('Only Tensors of "
                        "floating point and complex dtype can require gradients',).")
                    continue
            else:
                dtype = current.dtype
            # Cast now (as torch's copy_ does, float64 -> float32, float ->
            # int64 truncating), so that writing cannot fail half-way.
            updates.append((self, kind, name, np.asarray(value, dtype=dtype)))
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

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copies values from ``state_dict`` (NumPy arrays, array-likes or torch
        tensors; torch is never imported) into this module's parameters and
        buffers, casting to their dtype. Returns ``(missing_keys,
        unexpected_keys)``; with ``strict`` either kind raises RuntimeError, as
        in torch, and shape mismatches raise whatever ``strict`` is.

        The values are copied *in place* into the module's existing arrays,
        as torch's ``param.copy_(value)`` does: references taken earlier (an
        attribute, an earlier state_dict()) show the loaded values, and the
        module's version is bumped so that weight-derived caches are rebuilt.

        Deliberate difference from torch: the load is all-or-nothing. torch
        copies the matching keys before it raises (so a state_dict taken
        before a failed load shows some new values); skipblocks checks and
        converts every value first and changes nothing when it raises. A
        value that shares memory with one of the module's arrays (e.g. one
        from this module's own state_dict) is read before anything is
        written, where torch's sequential copies could read it already
        overwritten.

        ``assign=True`` (torch: the module's parameters and buffers *become*
        the state_dict's tensors) gives the module new arrays instead of
        writing into the current ones: each is a new read-only copy of the
        value. As in torch, a parameter or float buffer takes the value's
        dtype when it is float32 or float64 (a float64 checkpoint makes a
        float32 module float64, and the module then computes in float64),
        and an integer or bool value for a parameter raises torch's error
        ("Only Tensors of floating point and complex dtype can require
        gradients"). Where torch would keep a dtype skipblocks does not
        compute in, the value is cast instead: float16 (and bfloat16) values
        to the dtype of the array they replace, integer values for a float
        buffer likewise, and any value for num_batches_tracked to int64. As
        in torch, references taken before the load (attributes, an earlier
        state_dict) keep the old values. Unlike torch, the module does not
        share memory with the state_dict afterwards (its arrays must stay
        read-only)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        metadata = getattr(state_dict, "_metadata", None)
        state = OrderedDict(state_dict)
        missing_keys, unexpected_keys, error_msgs, updates = [], [], [], []

        def load(module, prefix):
            local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
            if assign:  # as torch tells _load_from_state_dict (on a copy here)
                local_metadata = dict(local_metadata, assign_to_params_buffers=True)
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
        updates = _snapshot_aliased_values(updates)
        with _BUFFER_LOCK:  # not interleaved with another load or a BatchNorm update
            changed = {}
            for module, kind, name, value in updates:
                store = module.__dict__[kind]
                current = store[name]
                if not assign and _is_frozen(current) and current.shape == value.shape \
                        and current.dtype == value.dtype:
                    _write_in_place(current, value)
                else:  # assign=True, or not a module-made array (set around the module)
                    store[name] = _frozen_copy(value, value.dtype, f"{module._get_name()}.{name}")
                changed[id(module)] = module
            # After every write: a cache built from values read during the
            # writes carries the version from before, and is rebuilt.
            for module in changed.values():
                module._bump_version()
                if assign:  # the arrays may have taken the values' dtype
                    floating = {v.dtype for store in (module._parameters, module._buffers)
                                for v in store.values() if v is not None and v.dtype.kind == "f"}
                    if len(floating) == 1:
                        object.__setattr__(module, "_dtype", floating.pop())
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # -- printing -------------------------------------------------------
    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        """The text inside the parentheses of this module's repr line
        (torch's hook for custom reprs: override it); "" by default."""
        return ""

    def __repr__(self):
        # torch's print: "Name(extra)" when extra_repr is one line and there
        # are no children; otherwise "Name(" then each extra_repr line and
        # each "(key): child" (the child's repr indented) on its own line,
        # indented by two, then ")".
        extra = self.extra_repr()
        entries = extra.split("\n") if extra else []
        children = [f"({key}): {_indent_after_first_line(repr(child), 2)}"
                    for key, child in self._modules.items()]
        if not children and len(entries) == 1:
            return f"{self._get_name()}({entries[0]})"
        lines = entries + children
        if not lines:
            return f"{self._get_name()}()"
        body = "".join("\n  " + line for line in lines)
        return f"{self._get_name()}({body}\n)"

    # -- device and dtype ---------------------------------------------------
    # skipblocks computes on the CPU in float32 or float64. A conversion to
    # one of those replaces every floating parameter and buffer (integer
    # buffers such as num_batches_tracked stay int64) with a new read-only
    # copy in that dtype, as torch's Module._apply converts them; anything
    # else raises NotImplementedError (as the layers' device/dtype arguments
    # do), never a silent no-op. Invalid arguments raise torch's errors.

    def to(self, *args, **kwargs):
        """torch's Module.to(device=None, dtype=None, non_blocking=False),
        to(dtype, non_blocking=False), to(tensor, non_blocking=False) and
        to(memory_format=...). The device must be the CPU ('cpu', 'cpu:N',
        torch.device('cpu'), duck-typed); a dtype float32 or float64
        (torch.float32 / torch.float64 duck-typed by their str, np.float32,
        np.float64, np.dtype(...), or the dtype of a CPU tensor or NumPy
        array, e.g. another module's weight). Every floating parameter and
        buffer is converted to that dtype (num_batches_tracked stays int64)
        and the module computes in it from then on; returns self.
        ``non_blocking`` must be a bool and is irrelevant here.

        Raises NotImplementedError for another device (cuda, mps, meta, ...),
        float16 / bfloat16, a complex dtype (torch accepts them; skipblocks
        computes with real numbers only) or a memory format other than
        contiguous/preserve; TypeError for an integer or bool dtype (torch's
        message) or arguments torch would not accept; RuntimeError for an
        invalid device string or ``copy`` (as torch). Nothing changes when
        it raises."""
        device, device_type, dtype, _, memory_format = _parse_to(args, kwargs)
        where = f"{self._get_name()}.to()"
        target = None
        if dtype is not None:
            name, kind = _dtype_info(dtype)
            if kind not in "fc":
                raise TypeError("nn.Module.to only accepts floating point or complex dtypes, "
                                f"but got desired dtype={name}")
        if device_type is not None and device_type != "cpu":
            raise NotImplementedError(f"{where}: skipblocks computes on the CPU only; got "
                                      f"device={device!r}")
        if dtype is not None:
            target = _computable_dtype(dtype)
            if target is None:
                raise NotImplementedError(_dtype_error(where, name, kind))
        if memory_format is not None and str(memory_format) not in (
                "torch.contiguous_format", "torch.preserve_format"):
            raise NotImplementedError(f"{where}: skipblocks keeps its arrays C-contiguous; "
                                      f"got memory_format={memory_format}")
        if target is not None:
            self._convert_floating(target)
        return self

    def cpu(self):
        """Returns self: skipblocks' arrays are on the CPU."""
        return self

    def float(self):
        """Converts every floating parameter and buffer to float32 (as
        torch's float(); num_batches_tracked stays int64); returns self."""
        return self._convert_floating(_FLOAT32)

    def double(self):
        """Converts every floating parameter and buffer to float64 (as
        torch's double(); num_batches_tracked stays int64); the module then
        computes in float64. Returns self."""
        return self._convert_floating(_FLOAT64)

    def half(self):
        """NotImplementedError: skipblocks computes in float32 or float64 only."""
        raise _unsupported(self, "half()", "in float32 or float64")

    def bfloat16(self):
        """NotImplementedError: skipblocks computes in float32 or float64 only."""
        raise _unsupported(self, "bfloat16()", "in float32 or float64")

    def cuda(self, device=None):
        """NotImplementedError: skipblocks computes on the CPU only."""
        raise _unsupported(self, "cuda()", "on the CPU")

    def xpu(self, device=None):
        """NotImplementedError: skipblocks computes on the CPU only."""
        raise _unsupported(self, "xpu()", "on the CPU")

    def ipu(self, device=None):
        """NotImplementedError: skipblocks computes on the CPU only."""
        raise _unsupported(self, "ipu()", "on the CPU")

    def mtia(self, device=None):
        """NotImplementedError: skipblocks computes on the CPU only."""
        raise _unsupported(self, "mtia()", "on the CPU")

    def type(self, dst_type):
        """torch's Module.type(dst_type) for the CPU float types: torch.float32
        / torch.float64, 'torch.FloatTensor' / 'torch.DoubleTensor' (string or
        class), and (beyond torch) np.float32 / np.float64: every floating
        parameter and buffer is converted, as float() / double() do, and self
        is returned. Unlike torch, which converts every tensor,
        num_batches_tracked stays int64.

        An integer or bool type raises torch's RuntimeError on a module with
        parameters (they cannot be integers) and returns self on a module
        with no floating parameter or buffer (nothing to convert, as in
        torch); a module with floating buffers only raises
        NotImplementedError, as do other float types (float16, bfloat16,
        complex) and CUDA types."""
        kind, target = _type_target(dst_type)
        if kind == "float":
            return self._convert_floating(target)
        if kind == "int":
            if next(self.parameters(), None) is not None:
                raise RuntimeError("data set to a tensor that requires gradients must be "
                                   "floating point or complex dtype")
            if not any(v.dtype.kind == "f" for v in self.buffers()):
                return self
        raise NotImplementedError(f"{self._get_name()}.type(): skipblocks computes in float32 "
                                  f"or float64 on the CPU only; got {dst_type!r}")

    def _convert_floating(self, dtype):
        """What torch's Module._apply(lambda t: t.to(dtype)) does to floating
        tensors: every floating parameter and buffer of every submodule that
        is not already ``dtype`` is replaced by a new read-only copy in
        ``dtype`` (the module's version is bumped, so weight-derived caches
        are rebuilt); integer buffers are left as they are. Each submodule's
        dtype (what new parameters are registered in) becomes ``dtype``.
        Unlike torch, whose Parameter objects keep their identity through
        the conversion, references taken before (``w = conv.weight``, an
        earlier state_dict) keep the old arrays, in the old dtype."""
        dtype = np.dtype(dtype)
        with _BUFFER_LOCK:  # not interleaved with a load or a BatchNorm update
            for module in self.modules():
                changed = False
                for store in (module._parameters, module._buffers):
                    for name, value in store.items():
                        if value is not None and value.dtype.kind == "f" \
                                and value.dtype != dtype:
                            store[name] = _frozen_copy(value, dtype,
                                                       f"{module._get_name()}.{name}")
                            changed = True
                object.__setattr__(module, "_dtype", dtype)
                if changed:
                    module._bump_version()
        return self


_ABSENT = object()


def _attribute_of(module, name):
    """``getattr(module, name)``, or torch's AttributeError for the
    get_submodule family when there is no such attribute."""
    value = getattr(module, name, _ABSENT)
    if value is _ABSENT:
        raise AttributeError(f"{module._get_name()} has no attribute `{name}`")
    return value


def _resolve_leaf(module, target):
    """(owning submodule, last name, its value) for a dotted ``target``."""
    path, _, name = target.rpartition(".")
    owner = module.get_submodule(path)
    return owner, name, _attribute_of(owner, name)


_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_COMPUTABLE = {"float32": _FLOAT32, "float64": _FLOAT64,
               "torch.float32": _FLOAT32, "torch.float64": _FLOAT64}


def _computable_dtype(dtype):
    """np.dtype('float32') or np.dtype('float64') for a dtype skipblocks
    computes in -- torch.float32 / torch.float64 (recognised by their str,
    without importing torch), a NumPy dtype or scalar type, or a string
    NumPy understands ('float64', 'double', 'f4') -- else None."""
    if isinstance(dtype, np.dtype):
        return _COMPUTABLE.get(dtype.name) if dtype.isnative else None
    if _is_torch(dtype, "dtype"):
        return _COMPUTABLE.get(str(dtype))
    if _is_numpy_dtype(dtype) or isinstance(dtype, str):
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            return None
        return _COMPUTABLE.get(dtype.name) if dtype.isnative else None
    return None


def _dtype_error(where, name, kind):
    """The NotImplementedError message for a float or complex dtype
    skipblocks does not compute in."""
    if kind == "c":
        return (f"{where}: skipblocks computes with real numbers only (float32 or float64), "
                f"not complex ones; got dtype={name}")
    return f"{where}: skipblocks computes in float32 or float64 only; got dtype={name}"


# Module.type's tensor-type names (torch.FloatTensor, 'torch.LongTensor', ...)
_FLOAT_TYPE_NAMES = {"torch.FloatTensor": _FLOAT32, "torch.DoubleTensor": _FLOAT64}
_INT_TYPE_NAMES = {"torch.LongTensor", "torch.IntTensor", "torch.ShortTensor",
                   "torch.CharTensor", "torch.ByteTensor", "torch.BoolTensor"}


def _type_target(dst_type):
    """("float", np.dtype) for a float32/float64 CPU type Module.type
    converts to, ("int", None) for an integer or bool one, (None, None) for
    anything else."""
    if _is_torch(dst_type, "dtype"):
        if dst_type.is_floating_point or dst_type.is_complex:
            target = _COMPUTABLE.get(str(dst_type))
            return ("float", target) if target is not None else (None, None)
        return "int", None
    if isinstance(dst_type, type) and dst_type.__module__.split(".")[0] == "torch":
        dst_type = f"{dst_type.__module__}.{dst_type.__name__}"  # torch.DoubleTensor
    if isinstance(dst_type, str):
        if dst_type in _FLOAT_TYPE_NAMES:
            return "float", _FLOAT_TYPE_NAMES[dst_type]
        return ("int", None) if dst_type in _INT_TYPE_NAMES else (None, None)
    if _is_numpy_dtype(dst_type):
        target = _computable_dtype(dst_type)
        return ("float", target) if target is not None else (None, None)
    return None, None


def _unsupported(module, call, only):
    """The error for a device or dtype conversion skipblocks cannot do."""
    return NotImplementedError(f"{module._get_name()}.{call}: skipblocks computes {only} only")


# -- Module.to's arguments, parsed as torch._C._nn._parse_to parses them --------

# torch 2.13's device types, in its error message's order
_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                 "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                 "privateuseone")
_DEVICE_STRING = re.compile(r"([a-zA-Z_]+)(?::(0|[1-9][0-9]*))?")

_TO_SIGNATURES = (
    " * (torch.device device = None, torch.dtype dtype = None, bool non_blocking = False, "
    "bool copy = False, *, torch.memory_format memory_format = None)\n"
    " * (torch.dtype dtype, bool non_blocking = False, bool copy = False, *, "
    "torch.memory_format memory_format = None)\n"
    " * (Tensor tensor, bool non_blocking = False, bool copy = False, *, "
    "torch.memory_format memory_format = None)\n")


def _is_torch(value, name):
    t = type(value)
    return t.__name__ == name and t.__module__.split(".")[0] == "torch"


def _is_numpy_dtype(value):
    return isinstance(value, np.dtype) or (isinstance(value, type)
                                           and issubclass(value, np.generic))


def _is_dtype(value):
    return _is_torch(value, "dtype") or _is_numpy_dtype(value)


def _is_tensor(value):
    return isinstance(value, np.ndarray) or (
        hasattr(value, "detach") and hasattr(value, "device") and hasattr(value, "dtype"))


def _is_device(value):
    return value is None or isinstance(value, str) or _is_torch(value, "device") or (
        isinstance(value, int) and not isinstance(value, bool))


def _dtype_info(dtype):
    """(name as torch prints it, NumPy kind letter) of a torch or NumPy dtype."""
    if _is_torch(dtype, "dtype"):
        kind = "f" if dtype.is_floating_point else "c" if dtype.is_complex else "i"
        return str(dtype), kind
    dtype = np.dtype(dtype)
    return dtype.name, dtype.kind


def _device_type(value):
    """'cpu', another device type, or an error as torch's for a bad string."""
    if _is_torch(value, "device"):
        return value.type
    if isinstance(value, int):
        if value < 0:
            raise RuntimeError("Device index must not be negative")
        return f"accelerator:{value}"  # torch: the current accelerator's device `value`
    if value == "":
        raise RuntimeError("Device string must not be empty")
    match = _DEVICE_STRING.fullmatch(value)
    if match is None:
        raise RuntimeError(f"Invalid device string: '{value}'")
    if match.group(1) not in _DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of "
                           f"device string: {value}")
    return match.group(1)


def _type_name(value):
    t = type(value)
    if _is_tensor(value) and not isinstance(value, np.ndarray):
        return "Tensor"
    module = t.__module__
    return t.__qualname__ if module == "builtins" else f"{module}.{t.__qualname__}"


def _parse_to(args, kwargs):
    """(device, its type, dtype, non_blocking, memory_format) from Module.to's
    arguments (None for what is not given), matched against torch's three
    signatures."""
    signatures = (
        (("device", _is_device), ("dtype", lambda v: v is None or _is_dtype(v))),
        (("dtype", _is_dtype),),
        (("tensor", _is_tensor),),
    )
    for leading in signatures:
        names = [name for name, _ in leading] + ["non_blocking", "copy"]
        if len(args) > len(names):
            continue
        bound = dict(zip(names, args))
        if any(name in bound for name in kwargs):
            continue
        bound.update(kwargs)
        if set(bound) - set(names) - {"memory_format"}:
            continue
        required = leading[0][0] if leading[0][0] != "device" else None
        if required is not None and required not in bound:
            continue
        if not all(check(bound[name]) for name, check in leading if name in bound):
            continue
        if any(name in bound and not isinstance(bound[name], bool)
               for name in ("non_blocking", "copy")):
            continue
        memory_format = bound.get("memory_format")
        if memory_format is not None and not _is_torch(memory_format, "memory_format"):
            continue
        break
    else:
        got = [_type_name(a) for a in args] + [f"{k}={_type_name(v)}" for k, v in kwargs.items()]
        raise TypeError("to() received an invalid combination of arguments - got "
                        f"({', '.join(got)}{', ' if kwargs and not args else ''}), but expected "
                        "one of:\n" + _TO_SIGNATURES)
    if "copy" in bound:
        raise RuntimeError(".to() does not accept copy argument")
    device = bound.get("device")
    dtype = bound.get("dtype")
    if "tensor" in bound:
        tensor = bound["tensor"]
        device = "cpu" if isinstance(tensor, np.ndarray) else tensor.device
        dtype = tensor.dtype
    device_type = None if device is None else _device_type(device)
    return device, device_type, dtype, bound.get("non_blocking", False), \
        bound.get("memory_format")

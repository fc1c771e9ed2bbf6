"""The allow-listed unpickler for torch files: nothing in a file is executed.

A torch ``.pt``/``.pth`` file is a pickle. Unpickling a pickle from a stranger
with Python's ``pickle.load`` runs whatever functions it names. This module
reads one the way torch 2.13's ``weights_only=True`` loader does
(``torch/_weights_only_unpickler.py``), without torch:

1. The opcode stream is scanned first (``pickletools.genops``, which parses
   and builds nothing). Opcodes that instantiate classes by name or by an
   extension registry (INST, OBJ, EXT1/2/4, NEWOBJ_EX), text persistent ids
   (PERSID) and out-of-band buffers are refused.
2. ``pickle.Unpickler`` then runs with ``find_class`` answered from a fixed
   table, ``ALLOWED``: the globals torch's loader allows, each mapped to a
   skipblocks stand-in that builds NumPy arrays and plain Python objects and
   validates its arguments (sizes, strides and offsets against the storage
   they index). Quantized, sparse, nested, meta and subclass tensors are
   refused by name (``REFUSED``); any other global is refused with its name.
   Nothing is imported and no attribute is looked up by name.
3. Storages come through ``persistent_load`` from the format reader
   (``torch_format``), which checks every declared size against the file
   before it allocates.

The unpickler is Python's own pure-Python one with BUILD, APPEND(S),
SETITEM(S), ADDITEMS and NEWOBJ restricted as torch's loader restricts them,
so no method of an object a pickle has built is called with file data.
"""
import io
import pickle
import pickletools
import warnings
from collections import Counter, OrderedDict

import numpy as np

from ._common import DTYPES, FileProblem, RawTensor, check_shape

# -- stand-ins for torch's globals ------------------------------------------


class StorageType:
    """torch.<X>Storage / torch.storage.UntypedStorage in a persistent id."""
    __slots__ = ("name", "dtype", "untyped")

    def __init__(self, name, dtype, untyped=False):
        self.name, self.dtype, self.untyped = name, dtype, untyped

    def __repr__(self):
        return f"torch.{self.name}"


class TorchDtype:
    """torch.<dtype>: the dtype argument of _rebuild_tensor_v3, and a dtype
    a checkpoint holds as a value (``skipblocks.save`` writes it back as
    torch's dtype). ``.name``: torch's name, e.g. "float16"."""
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype

    @property
    def name(self):
        return self.dtype.name

    def __eq__(self, other):
        return isinstance(other, TorchDtype) and other.dtype is self.dtype

    def __hash__(self):
        return hash(self.dtype.name)

    def __repr__(self):
        return f"torch.{self.dtype.name}"


class TensorClass:
    """torch.Tensor and torch's legacy tensor classes, as the new type of
    _rebuild_from_type_v2."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


def _is_tensor(obj):
    return isinstance(obj, (np.ndarray, RawTensor))


class Parameter:
    """torch.nn.parameter.Parameter(data, requires_grad): the data itself
    (skipblocks has no gradient flag on arrays)."""

    def __new__(cls, data=None, requires_grad=True):
        if not _is_tensor(data):
            raise FileProblem(f"torch.nn.Parameter needs a tensor, got {type(data).__name__}")
        return data


class Size:
    """torch.Size(sizes): a tuple of ints."""

    def __new__(cls, sizes=()):
        if not isinstance(sizes, (tuple, list)) or any(type(s) is not int for s in sizes):
            raise FileProblem(f"torch.Size needs a sequence of ints, got {sizes!r:.80}")
        return tuple(sizes)


class Device:
    """torch.device(type[, index]): the device string (every tensor is read
    into host memory, as torch.load(map_location="cpu") does)."""

    def __new__(cls, kind="cpu", index=None):
        if not isinstance(kind, str) or not (index is None or type(index) is int):
            raise FileProblem(f"torch.device needs a string and an optional index, got "
                              f"{kind!r:.40}, {index!r:.40}")
        return kind if index is None else f"{kind}:{index}"


def _checked(kind, name):
    """An allowed builtin type, called with the file's arguments; an error
    names it."""
    def build(*args):
        try:
            return kind(*args)
        except Exception as exc:
            raise FileProblem(f"{name}{args!r:.80}: {type(exc).__name__}: {exc}") from None
    build.__qualname__ = name
    return build


_LATIN1 = ("latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1")


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    """_codecs.encode, as protocol 2 pickles bytes: encode(str, 'latin1')."""
    if not isinstance(obj, str) or encoding.lower() not in _LATIN1 + ("utf-8", "utf8"):
        raise FileProblem(f"_codecs.encode is allowed only to turn a str into bytes with "
                          f"latin1 or utf-8, got {type(obj).__name__} with {encoding!r:.40}")
    return obj.encode(encoding, "strict")


def _bytearray(source=b"", encoding=None):
    """builtins.bytearray from bytes, or from a str and latin1 as protocol 2
    pickles it; never from an int (which would allocate that many bytes)."""
    if isinstance(source, (bytes, bytearray)) and encoding is None:
        return bytearray(source)
    if isinstance(source, str) and isinstance(encoding, str) and encoding.lower() in _LATIN1:
        return bytearray(source, "latin-1")
    raise FileProblem(f"bytearray is allowed only from bytes or a latin1 str, got "
                      f"{type(source).__name__}")


def _tensor(storage, storage_offset, size, stride, dtype, what, transform=None):
    """The array a storage view describes, after checking every number."""
    from .torch_format import Storage
    if not isinstance(storage, Storage):
        raise FileProblem(f"{what}: the storage argument is a {type(storage).__name__}, not a "
                          f"storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise FileProblem(f"{what}: storage offset {storage_offset!r:.40} must be a "
                          f"non-negative int")
    if not isinstance(stride, (tuple, list)) or any(type(s) is not int or s < 0 for s in stride):
        raise FileProblem(f"{what}: stride {stride!r:.80} must be non-negative ints")
    shape, numel = check_shape(size, what)
    if len(shape) != len(stride):
        raise FileProblem(f"{what}: size {list(shape)} and stride {list(stride)} differ in "
                          f"length")
    elements = storage.elements(dtype, transform)
    count = elements.shape[0]
    if numel == 0:
        if storage_offset > count:
            raise FileProblem(f"{what}: storage offset {storage_offset} is past the end of a "
                              f"storage of {count} elements")
        view = elements[:0].reshape(shape)
    else:
        last = storage_offset + sum((n - 1) * s for n, s in zip(shape, stride))
        if last >= count:
            raise FileProblem(f"{what}: size {list(shape)}, stride {list(stride)} and offset "
                              f"{storage_offset} reach element {last} of a storage of {count} "
                              f"elements")
        contiguous, expected = True, 1
        for n, s in zip(reversed(shape), reversed(stride)):
            if n != 1 and s != expected:
                contiguous = False
            expected *= n
        if contiguous:
            view = elements[storage_offset:storage_offset + numel].reshape(shape)
        else:
            item = elements.itemsize
            view = np.lib.stride_tricks.as_strided(
                elements[storage_offset:], shape, [s * item for s in stride])
    if storage.keep_bits and dtype.exotic:
        return RawTensor(dtype, shape, view)
    return view


def _transform(metadata, dtype, what):
    """torch's conj and neg bits (tensor metadata) as an elements transform."""
    if not metadata:
        return None
    if not isinstance(metadata, dict) or set(metadata) - {"conj", "neg"}:
        raise FileProblem(f"{what}: tensor metadata {metadata!r:.80} is not torch's "
                          f"{{'conj', 'neg'}} flags")
    transform = ("neg" if metadata.get("neg") else "") + ("conj" if metadata.get("conj") else "")
    if transform and dtype.exotic:
        raise FileProblem(f"{what}: conj/neg flags on a {dtype.name} tensor")
    return transform or None


def _storage_dtype(storage, what):
    from .torch_format import Storage
    if not isinstance(storage, Storage):
        raise FileProblem(f"{what}: the storage argument is a {type(storage).__name__}, not a "
                          f"storage")
    return storage.dtype


def rebuild_tensor(storage, storage_offset, size, stride):
    what = "torch._utils._rebuild_tensor"
    return _tensor(storage, storage_offset, size, stride, _storage_dtype(storage, what), what)


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                      backward_hooks=None, metadata=None):
    what = "torch._utils._rebuild_tensor_v2"
    dtype = _storage_dtype(storage, what)
    return _tensor(storage, storage_offset, size, stride, dtype, what,
                   _transform(metadata, dtype, what))


def rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                      dtype, metadata=None):
    what = "torch._utils._rebuild_tensor_v3"
    if not isinstance(dtype, TorchDtype):
        raise FileProblem(f"{what}: dtype argument {dtype!r:.40} is not a torch dtype")
    return _tensor(storage, storage_offset, size, stride, dtype.dtype, what,
                   _transform(metadata, dtype.dtype, what))


def rebuild_parameter(data, requires_grad=True, backward_hooks=None):
    return Parameter(data)


def rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return Parameter(data)


def rebuild_device_tensor_from_cpu_tensor(data, dtype, device, requires_grad):
    what = "torch._utils._rebuild_device_tensor_from_cpu_tensor"
    if not isinstance(data, np.ndarray) or not isinstance(dtype, TorchDtype):
        raise FileProblem(f"{what}: needs an array and a torch dtype")
    if dtype.dtype.exotic:
        raise FileProblem(f"{what}: conversion to {dtype.dtype.name} is not supported")
    if data.dtype != dtype.dtype.numpy and not data.flags.c_contiguous:
        # a cast would materialise a broadcast view: a small file, a big array
        raise FileProblem(f"{what}: a cast of a non-contiguous tensor is not supported")
    return data.astype(dtype.dtype.numpy, copy=False)


_REBUILD_FUNCTIONS = (rebuild_tensor, rebuild_tensor_v2, rebuild_tensor_v3, rebuild_parameter,
                      rebuild_parameter_with_state, rebuild_device_tensor_from_cpu_tensor)


def rebuild_from_type_v2(func, new_type, args, state):
    """torch._tensor._rebuild_from_type_v2: a tensor (or Parameter) with
    Python attributes. The attributes are dropped: arrays carry none."""
    what = "torch._tensor._rebuild_from_type_v2"
    if func not in _REBUILD_FUNCTIONS:
        raise FileProblem(f"{what}: {func!r:.60} is not a tensor rebuild function")
    if new_type is not Parameter and not isinstance(new_type, TensorClass):
        raise FileProblem(f"{what}: tensor subclass {new_type!r:.60} is not supported")
    if not isinstance(args, tuple):
        raise FileProblem(f"{what}: arguments must be a tuple")
    return func(*args)


# -- the tables ----------------------------------------------------------------

_LEGACY_TENSOR_CLASSES = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char",
                          "Byte", "Bool", "ComplexDouble", "ComplexFloat")


def _allowed():
    table = {
        "collections.OrderedDict": _checked(OrderedDict, "collections.OrderedDict"),
        "collections.Counter": _checked(Counter, "collections.Counter"),
        "builtins.set": _checked(set, "builtins.set"),
        "builtins.complex": _checked(complex, "builtins.complex"),
        "builtins.bytearray": _bytearray,
        "_codecs.encode": _codecs_encode,
        "torch._utils._rebuild_tensor": rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": rebuild_parameter_with_state,
        "torch._utils._rebuild_device_tensor_from_cpu_tensor":
            rebuild_device_tensor_from_cpu_tensor,
        "torch._tensor._rebuild_from_type_v2": rebuild_from_type_v2,
        "torch.nn.parameter.Parameter": Parameter,
        "torch.Size": Size,
        "torch.device": Device,
        "torch.Tensor": TensorClass("torch.Tensor"),
        "torch.storage.UntypedStorage": StorageType("UntypedStorage", DTYPES["uint8"], True),
    }
    for dtype in DTYPES.values():
        if dtype.name != "float4_e2m1fn":      # safetensors' F4 only; torch packs it as _x2
            table[f"torch.{dtype.name}"] = TorchDtype(dtype)
        if dtype.storage:
            for module in ("torch", "torch.cuda"):
                table[f"{module}.{dtype.storage}"] = StorageType(dtype.storage, dtype)
    for kind in _LEGACY_TENSOR_CLASSES:
        for module in ("torch", "torch.cuda"):
            table[f"{module}.{kind}Tensor"] = TensorClass(f"{module}.{kind}Tensor")
    return table


def _refused():
    quantized = "quantized tensors are not supported"
    sparse = "sparse tensors are not supported"
    packed = "packed sub-byte dtypes are not supported"
    table = {
        "torch._utils._rebuild_qtensor": quantized,
        "torch._utils._rebuild_sparse_tensor": sparse,
        "torch.serialization._get_layout": sparse,
        "torch._utils._rebuild_nested_tensor": "nested tensors are not supported",
        "torch.nested._internal.nested_tensor.NestedTensor": "nested tensors are not supported",
        "torch.nested._internal.nested_tensor._rebuild_njt": "nested tensors are not supported",
        "torch._dynamo.decorators._DimRange": "nested tensors are not supported",
        "torch._utils._rebuild_meta_tensor_no_storage":
            "meta tensors (which hold no data) are not supported",
        "torch._utils._rebuild_wrapper_subclass": "tensor subclasses are not supported",
        "torch._utils._rebuild_device_tensor_from_numpy":
            "tensors pickled as NumPy arrays are not supported",
        "torch.float4_e2m1fn_x2": packed,
    }
    for name in ("qint8", "qint32", "quint8", "quint4x2", "quint2x4", "per_tensor_affine",
                 "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
                 "per_channel_affine_float_qparams"):
        table[f"torch.{name}"] = quantized
    for name in ("QInt8Storage", "QInt32Storage", "QUInt8Storage", "QUInt4x2Storage",
                 "QUInt2x4Storage"):
        table[f"torch.{name}"] = table[f"torch.cuda.{name}"] = quantized
    for kind in _LEGACY_TENSOR_CLASSES:
        table[f"torch.sparse.{kind}Tensor"] = sparse
    for name in ("bits1x8", "bits2x4", "bits4x2", "bits8", "bits16"):
        table[f"torch.{name}"] = packed
    for bits in range(1, 8):
        table[f"torch.uint{bits}"] = table[f"torch.int{bits}"] = packed
    for name in ("torch.distributed.device_mesh.DeviceMesh",
                 "torch.distributed.tensor._dtensor_spec.DTensorSpec",
                 "torch.distributed.tensor._dtensor_spec.TensorMeta",
                 "torch.distributed.tensor.DTensor",
                 "torch.distributed.tensor.placement_types.Partial",
                 "torch.distributed.tensor.placement_types.Replicate",
                 "torch.distributed.tensor.placement_types.Shard"):
        table[name] = "distributed tensors (DTensor) are not supported"
    return table


ALLOWED = _allowed()
REFUSED = _refused()


def resolve_global(module, name):
    """find_class: the stand-in for an allowed global, or FileProblem naming it."""
    if module == "__builtin__":        # protocol 2 pickles written by Python 3 name builtins so
        module = "builtins"
    full = f"{module}.{name}"
    if full in ALLOWED:
        return ALLOWED[full]
    if full in REFUSED:
        raise FileProblem(f"{REFUSED[full]} (the file uses {full})")
    hint = ""
    if name[:1].isupper():
        hint = (" (a pickled object of a class: if the file was written by "
                "torch.save(model), save model.state_dict() instead)")
    raise FileProblem(f"refused global {full}: torch files may name only the tensor and "
                      f"container types of torch's weights-only loader{hint}")


# -- the opcode scan and the unpickler ----------------------------------------

REFUSED_OPCODES = {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "NEWOBJ_EX", "PERSID", "NEXT_BUFFER",
                   "READONLY_BUFFER"}


def _opcodes(stream):
    """(opcode, argument) up to and including STOP."""
    for opcode, arg, _pos in pickletools.genops(stream):
        yield opcode, arg
        if opcode.name == "STOP":
            return


MEMO_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def scan(stream, what, size):
    """Checks a pickle's opcodes without building anything; returns the
    stream position just past its STOP. ``size``: the bytes the pickle can
    span at most; a memo index beyond it is refused (a pickler numbers its
    memo from 0, and the unpickler allocates a memo table up to the index)."""
    try:
        with warnings.catch_warnings():     # genops warns about bad string escapes
            warnings.simplefilter("ignore")
            ops = list(_opcodes(stream))
        for opcode, arg in ops:
            if opcode.name in REFUSED_OPCODES:
                raise FileProblem(f"{what}: pickle opcode {opcode.name} is not allowed in a "
                                  f"torch file")
            if opcode.name == "FRAME" and arg > size:
                raise FileProblem(f"{what}: pickle frame of {arg} bytes is larger than the "
                                  f"{size}-byte pickle")
            if opcode.name in MEMO_OPCODES and (not isinstance(arg, int) or arg > size):
                raise FileProblem(f"{what}: pickle memo index {arg!r:.40} is larger than a "
                                  f"{size}-byte pickle can use")
            if opcode.name == "STOP":
                return stream.tell()
    except FileProblem:
        raise
    except Exception as exc:    # genops raises ValueError and others on bad opcodes
        raise FileProblem(f"{what}: not a valid pickle: truncated or corrupt ({exc})") from None
    raise FileProblem(f"{what}: pickle is truncated (no STOP opcode)")


class Unpickler(pickle._Unpickler):
    """Python's own (pure-Python) unpickler, with find_class answered by
    ``resolve_global``, persistent ids passed to ``storage_from_id`` (the
    format reader's), and the opcodes that act on an object already built
    restricted as torch's weights-only loader restricts them: BUILD only
    sets the ``__dict__`` of an OrderedDict (a state_dict's ``_metadata``),
    APPEND(S) only extends lists, SETITEM(S) only fills dicts, NEWOBJ only
    constructs the stand-in classes. No method of an object the file built
    is ever called with the file's data."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data, storage_from_id):
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self._storage_from_id = storage_from_id

    def find_class(self, module, name):
        return resolve_global(module, name)

    def persistent_load(self, pid):
        if type(pid) is not tuple or not pid:
            raise FileProblem(f"persistent id {pid!r:.60} is not a storage tuple")
        kind = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            raise FileProblem("the file pickles a whole torch.nn.Module (torch.save(model)): "
                              "skipblocks reads data only; save model.state_dict() instead")
        if kind != "storage":
            raise FileProblem(f"persistent id of kind {kind!r:.40} is not a storage")
        return self._storage_from_id(pid)

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if (type(inst) is OrderedDict and type(state) is dict
                and all(type(k) is str for k in state)):
            inst.__dict__.update(state)
            return
        raise FileProblem(f"BUILD on a {type(inst).__name__} with a {type(state).__name__} "
                          f"state is not allowed (only a state_dict's _metadata)")
    dispatch[pickle.BUILD[0]] = load_build

    def load_append(self):
        value = self.stack.pop()
        if type(self.stack[-1]) is not list:
            raise FileProblem(f"APPEND to a {type(self.stack[-1]).__name__} is not allowed")
        self.stack[-1].append(value)
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        if type(self.stack[-1]) is not list:
            raise FileProblem(f"APPENDS to a {type(self.stack[-1]).__name__} is not allowed")
        self.stack[-1].extend(items)
    dispatch[pickle.APPENDS[0]] = load_appends

    def _dict_target(self, opcode):
        target = self.stack[-1]
        if type(target) not in (dict, OrderedDict, Counter):
            raise FileProblem(f"{opcode} on a {type(target).__name__} is not allowed")
        return target

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._dict_target("SETITEM")[key] = value
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        target = self._dict_target("SETITEMS")
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_additems(self):
        items = self.pop_mark()
        if type(self.stack[-1]) is not set:
            raise FileProblem(f"ADDITEMS to a {type(self.stack[-1]).__name__} is not allowed")
        self.stack[-1].update(items)
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls not in (Parameter, Size, Device) or type(args) is not tuple:
            raise FileProblem(f"NEWOBJ of {cls!r:.60} is not allowed")
        self.append(cls(*args))
    dispatch[pickle.NEWOBJ[0]] = load_newobj


def unpickle(data, storage_from_id, what):
    """The object a pickle (bytes) holds, read safely."""
    scan(io.BytesIO(data), what, len(data))
    try:
        return Unpickler(data, storage_from_id).load()
    except FileProblem:
        raise
    except RecursionError:
        raise FileProblem(f"{what}: the pickle nests too deeply") from None
    except Exception as exc:    # the stand-ins' argument errors, pickle's own errors
        raise FileProblem(f"{what}: {type(exc).__name__}: {exc}") from None

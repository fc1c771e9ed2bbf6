"""torch's file formats, read and written without torch.

* The zip format (``torch.save`` since torch 1.6): a zip archive, every
  record under one directory ``<archive>/``: ``data.pkl`` (the pickled
  object; tensors refer to storages by persistent id ``('storage',
  torch.<X>Storage, key, location, numel)``), ``data/<key>`` (each storage's
  raw bytes, stored uncompressed at 64-byte aligned offsets), ``byteorder``,
  ``version``, ``.format_version``, ``.storage_alignment`` and
  ``.data/serialization_id``.
* The legacy format (torch < 1.6, and ``_use_new_zipfile_serialization=False``):
  pickles of the magic number, the protocol version (1001) and a sys_info
  dict, then the pickled object (persistent ids ``('storage', type, key,
  location, numel, view_metadata)``), then the pickled list of storage keys,
  then each storage as an int64 element count and its raw bytes.

Every size a file declares is checked against the file before anything is
allocated; storages are read one at a time as the pickle refers to them.
"""
import functools
import hashlib
import io
import struct
import zipfile
from collections import Counter, OrderedDict

import numpy as np

from ._common import FileProblem, RawTensor, decode, dtype_of_array
from . import torch_pickle
from ._zip import check_record, file_size_of, open_archive, read_record

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001
_STORAGE_ALIGNMENT = 64


class Storage:
    """One storage's bytes (``raw``, a uint8 array: read from the file, a view
    of a memory map, or for the legacy format allocated now and filled once
    the pickle has been read) and the typed views made of it.

    ``elements(dtype)`` is the storage as a 1-D array of ``dtype``: a view of
    ``raw`` for NumPy's dtypes in the file's byte order, else a decoded (or
    byte-swapped) array made once and shared by every tensor of the
    storage, so views of one storage share memory as they do in torch."""

    __slots__ = ("key", "dtype", "raw", "byteswap", "keep_bits", "filled", "root",
                 "_elements", "_pending")
    __hash__ = None          # never a set member or dict key: it is replaced by its array

    def __init__(self, key, dtype, raw, *, byteswap, keep_bits, filled, root=None):
        self.key, self.dtype, self.raw = key, dtype, raw
        self.byteswap, self.keep_bits, self.filled = byteswap, keep_bits, filled
        # a legacy storage view: part of root's bytes, filled when root is
        self.root = root
        self._elements, self._pending = {}, []

    def elements(self, dtype, transform=None):
        """The storage as 1-D ``dtype`` values; ``transform`` ("neg", "conj"
        or "negconj": torch's neg and conj bits) applied to all of them
        once, so that views of it stay views."""
        if transform:
            cache_key = (dtype.name, transform)
            if cache_key not in self._elements:
                base = self.elements(dtype)
                result = np.empty_like(base)

                def apply():
                    np.negative(base, out=result) if "neg" in transform else np.copyto(result,
                                                                                        base)
                    if "conj" in transform:
                        np.conjugate(result, out=result)
                self.after_fill(apply)
                self._elements[cache_key] = result
            return self._elements[cache_key]
        if dtype.name in self._elements:
            return self._elements[dtype.name]
        nbytes = self.raw.shape[0]
        if (nbytes * 8) % dtype.bits:
            raise FileProblem(f"storage {self.key!r} of {nbytes} bytes does not hold whole "
                              f"{dtype.name} elements")
        count = nbytes * 8 // dtype.bits
        if not self.byteswap and (not dtype.exotic or self.keep_bits):
            # a view: shares the storage's memory, and works before a fill
            result = self.raw.view(dtype.bits_dtype if dtype.exotic else dtype.numpy)
        else:
            convert = functools.partial(_convert, dtype=dtype, byteswap=self.byteswap,
                                        keep_bits=self.keep_bits)
            if self.filled:
                result = convert(self.raw)
            else:
                result = np.empty(count, dtype=convert(self.raw[:0]).dtype)
                self.after_fill(lambda: result.__setitem__(Ellipsis, convert(self.raw)))
        self._elements[dtype.name] = result
        return result

    def fill(self, source=None):
        """Reads the storage's bytes from ``source`` (legacy format; None:
        a view whose root was read), then the conversions that waited."""
        if source is not None:
            got = source.readinto(memoryview(self.raw))
            if got != self.raw.shape[0]:
                raise FileProblem(f"storage {self.key!r} is truncated: {got} of "
                                  f"{self.raw.shape[0]} bytes")
        self.filled = True
        pending, self._pending = self._pending, []
        for action in pending:
            action()

    def after_fill(self, action):
        """Runs ``action`` once the bytes are there: now, or after ``fill``."""
        if self.filled:
            action()
        else:
            self._pending.append(action)


def _convert(raw, *, dtype, byteswap, keep_bits):
    """A storage's bytes as 1-D ``dtype`` values in native order: byte-swapped
    from a big-endian file, and for the dtypes NumPy lacks decoded (or, with
    keep_bits, their bits)."""
    if not dtype.exotic:
        return raw.view(dtype.numpy.newbyteorder(">" if byteswap else "<")).astype(dtype.numpy)
    if byteswap and dtype.name == "complex32":      # two float16 halves, swapped each
        bits = raw.view(">u2").astype("<u2").view(np.uint32)
    else:
        bits = raw.view(dtype.bits_dtype.newbyteorder(">" if byteswap else "<"))
        bits = bits.astype(dtype.bits_dtype)
    return bits if keep_bits else decode(dtype, bits)


def _storages_as_arrays(obj, done=None, depth=0):
    """A storage the file holds as a value (``torch.save(t.storage())``)
    comes back as the 1-D array of its elements. Each container is visited
    once (a pickle's memo can share one container many times)."""
    done = {} if done is None else done
    if isinstance(obj, Storage):
        elements = obj.elements(obj.dtype)
        return RawTensor(obj.dtype, elements.shape, elements) if (
            obj.keep_bits and obj.dtype.exotic) else elements
    if not isinstance(obj, (dict, list, tuple)):
        return obj
    if id(obj) in done:
        return done[id(obj)]
    if depth > 200:
        raise FileProblem("containers nest more than 200 deep")
    done[id(obj)] = obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (Storage, dict, list, tuple)):
                obj[key] = _storages_as_arrays(value, done, depth + 1)
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            if isinstance(value, (Storage, dict, list, tuple)):
                obj[index] = _storages_as_arrays(value, done, depth + 1)
    else:
        converted = tuple(_storages_as_arrays(value, done, depth + 1) for value in obj)
        if any(a is not b for a, b in zip(converted, obj)):
            done[id(obj)] = converted
            return converted
    return obj


def _storage_id(pid, entries, what):
    """(storage type, key, numel, legacy view) of a persistent id: torch's
    ('storage', type, key, location, numel) in the zip format, with a sixth
    entry, the storage view, in the legacy format."""
    layout = "(storage, type, key, location, numel" + (", view)" if entries == 6 else ")")
    if len(pid) != entries:
        raise FileProblem(f"{what}: storage id {pid!r:.100} does not have torch's {entries} "
                          f"entries {layout}")
    storage_type, key, location, numel = pid[1:5]
    if not isinstance(storage_type, torch_pickle.StorageType):
        raise FileProblem(f"{what}: storage id names {storage_type!r:.60}, not a storage type")
    if not isinstance(key, str) or not isinstance(location, str):
        raise FileProblem(f"{what}: storage key and location must be strings")
    if type(numel) is not int or numel < 0:
        raise FileProblem(f"{what}: storage {key!r:.40} numel {numel!r:.40} must be a "
                          f"non-negative int")
    return storage_type, key, numel, pid[5] if entries == 6 else None


# -- the zip format -------------------------------------------------------------

def read_zip(fileobj, *, mmap_array=None, keep_bits=False):
    """The object a torch zip file holds. ``mmap_array``: a uint8 memory map
    of the whole file; stored storages become views of it."""
    what = "torch zip file"
    file_size = file_size_of(fileobj)
    archive = open_archive(fileobj, what)
    infos = archive.infolist()
    names = [info.filename for info in infos]
    pickles = [name for name in names if name.endswith("data.pkl")
               and name.count("/") == 1 and not name.startswith("/")]
    if len(pickles) != 1:
        if any(name.endswith("constants.pkl") for name in names):
            raise FileProblem("a TorchScript archive (torch.jit.save) is a program, not "
                              "weights: load it with torch.jit.load, or save its state_dict()")
        raise FileProblem(f"{what}: expected one '<archive>/data.pkl' record, found "
                          f"{len(pickles)}")
    prefix = pickles[0][:-len("data.pkl")]
    outside = [name for name in names if not name.startswith(prefix)]
    if outside:
        raise FileProblem(f"{what}: record {outside[0]!r:.80} is not under {prefix!r:.80}")
    if prefix + "constants.pkl" in names:
        raise FileProblem("a TorchScript archive (torch.jit.save) is a program, not weights: "
                          "load it with torch.jit.load, or save its state_dict()")
    by_name = dict(zip(names, infos))
    for info in infos:
        check_record(info, file_size, what)

    byteorder = b"little"
    if prefix + "byteorder" in by_name:
        byteorder = bytes(read_record(archive, by_name[prefix + "byteorder"], what))
        if byteorder not in (b"little", b"big"):
            raise FileProblem(f"{what}: byteorder record holds {byteorder[:20]!r}, not "
                              f"'little' or 'big'")
    storages = {}

    def storage_from_id(pid):
        storage_type, key, numel, _ = _storage_id(pid, 5, what)
        if key in storages:
            return storages[key]
        dtype = storage_type.dtype
        nbytes = numel * dtype.itemsize
        info = by_name.get(f"{prefix}data/{key}")
        if info is None:
            raise FileProblem(f"{what}: storage {key!r:.40} has no record data/{key:.40}")
        if info.file_size != nbytes:
            raise FileProblem(f"{what}: storage {key!r:.40} declares {numel} {dtype.name} "
                              f"elements ({nbytes} bytes) but its record holds "
                              f"{info.file_size} bytes")
        if mmap_array is not None and info.compress_type == zipfile.ZIP_STORED:
            start = archive.data_starts[info.filename]
            raw = mmap_array[start:start + nbytes]
        else:
            raw = np.frombuffer(read_record(archive, info, what), dtype=np.uint8)
        storages[key] = Storage(key, dtype, raw, byteswap=byteorder == b"big",
                                keep_bits=keep_bits, filled=True)
        return storages[key]

    data = read_record(archive, by_name[pickles[0]], what)
    result = torch_pickle.unpickle(bytes(data), storage_from_id, f"{what}: {pickles[0]}")
    return _storages_as_arrays(result)


# -- the legacy format ---------------------------------------------------------

class _BoundedReader:
    """A file view whose read(n) never asks for more than the file holds,
    so a length read from the file cannot make Python allocate more."""

    def __init__(self, fileobj, size):
        self._file, self._size = fileobj, size

    def read(self, n=-1):
        left = max(0, self._size - self._file.tell())
        return self._file.read(left if n is None or n < 0 else min(n, left))

    def readline(self, limit=-1):
        left = max(0, self._size - self._file.tell())
        return self._file.readline(left if limit is None or limit < 0 else min(limit, left))

    def readinto(self, buffer):
        return self._file.readinto(buffer)

    def tell(self):
        return self._file.tell()


def read_legacy(fileobj, *, keep_bits=False):
    """The object a legacy-format torch file holds."""
    what = "legacy torch file"
    file_size = file_size_of(fileobj)
    reader = _BoundedReader(fileobj, file_size)

    def next_pickle(storage_from_id, part):
        start = fileobj.tell()
        end = torch_pickle.scan(reader, f"{what}: {part}", file_size - start)
        fileobj.seek(start)
        data = fileobj.read(end - start)
        return torch_pickle.unpickle(data, storage_from_id, f"{what}: {part}")

    def no_storages(pid):
        raise FileProblem(f"{what}: a storage id outside the main pickle")

    if next_pickle(no_storages, "magic number") != LEGACY_MAGIC:
        raise FileProblem(f"{what}: wrong magic number (not a torch file, or corrupt)")
    protocol = next_pickle(no_storages, "protocol version")
    if protocol != LEGACY_PROTOCOL:
        raise FileProblem(f"{what}: protocol version {protocol!r:.40}, expected "
                          f"{LEGACY_PROTOCOL}")
    sys_info = next_pickle(no_storages, "sys_info")
    if not isinstance(sys_info, dict) or not isinstance(sys_info.get("little_endian"), bool):
        raise FileProblem(f"{what}: sys_info is not torch's dict with 'little_endian'")
    byteswap = not sys_info["little_endian"]
    storages, allocated = {}, [0]

    def storage_from_id(pid):
        storage_type, key, numel, view = _storage_id(pid, 6, what)
        dtype = storage_type.dtype
        if key not in storages:
            nbytes = numel * dtype.itemsize
            allocated[0] += nbytes
            if allocated[0] > file_size:
                raise FileProblem(f"{what}: storages declare {allocated[0]} bytes, more than "
                                  f"the {file_size}-byte file holds")
            storages[key] = Storage(key, dtype, np.empty(nbytes, dtype=np.uint8),
                                    byteswap=byteswap, keep_bits=keep_bits, filled=False)
        root = storages[key]
        if view is None:
            return root
        if (not isinstance(view, tuple) or len(view) != 3 or not isinstance(view[0], str)
                or any(type(v) is not int or v < 0 for v in view[1:])):
            raise FileProblem(f"{what}: storage view {view!r:.80} is not (key, offset, size)")
        view_key, offset, size = view
        if view_key not in storages:
            item = root.dtype.itemsize
            if (offset + size) * item > root.raw.shape[0]:
                raise FileProblem(f"{what}: storage view {view_key!r:.40} runs past the end "
                                  f"of storage {key!r:.40}")
            storages[view_key] = Storage(view_key, root.dtype,
                                         root.raw[offset * item:(offset + size) * item],
                                         byteswap=byteswap, keep_bits=keep_bits, filled=False,
                                         root=root)
        return storages[view_key]

    result = next_pickle(storage_from_id, "object")
    keys = next_pickle(no_storages, "storage keys")
    if not isinstance(keys, list) or any(not isinstance(k, str) for k in keys):
        raise FileProblem(f"{what}: the storage key list is not a list of strings")
    for key in keys:
        storage = storages.get(key)
        if storage is None or storage.root is not None:
            raise FileProblem(f"{what}: storage key {key!r:.40} is not a storage of the object")
        header = fileobj.read(8)
        if len(header) != 8:
            raise FileProblem(f"{what}: truncated before the data of storage {key!r:.40}")
        count = struct.unpack(">q" if byteswap else "<q", header)[0]
        expected = storage.raw.shape[0] // storage.dtype.itemsize
        if count != expected:
            raise FileProblem(f"{what}: storage {key!r:.40} holds {count} elements, the "
                              f"object declares {expected}")
        storage.fill(reader)
    unfilled = [k for k, s in storages.items() if not s.filled and s.root is None]
    if unfilled:
        raise FileProblem(f"{what}: storage {unfilled[0]!r:.40} has no data in the file")
    for storage in storages.values():
        if storage.root is not None:
            storage.fill()
    return _storages_as_arrays(result)


# -- writing the zip format ------------------------------------------------------

class _PickleWriter:
    """Writes the protocol-2 pickle torch.save writes for data: dicts,
    OrderedDicts (with their ``_metadata``), lists, tuples, sets, strings,
    bytes, numbers, None and tensors (NumPy arrays, RawTensor), tensors as
    ``torch._utils._rebuild_tensor_v2`` (``_v3`` for dtypes without a typed
    storage) of persistent storage ids. Arrays that view one buffer share
    one storage. Written opcode by opcode: nothing here imports torch."""

    def __init__(self):
        self.out = io.BytesIO()
        self.storages = OrderedDict()     # key -> contiguous array of the bytes to write
        self._planned = {}                # id of array -> its place in a shared storage
        self._active = set()

    def op(self, code, payload=b""):
        self.out.write(code + payload)

    def global_(self, module, name):
        self.op(b"c", f"{module}\n{name}\n".encode("ascii"))

    def string(self, text):
        data = text.encode("utf-8", "surrogatepass")
        self.op(b"X", struct.pack("<I", len(data)) + data)

    def integer(self, value):
        if 0 <= value < 256:
            self.op(b"K", bytes([value]))
        elif 0 <= value < 65536:
            self.op(b"M", struct.pack("<H", value))
        elif -2 ** 31 <= value < 2 ** 31:
            self.op(b"J", struct.pack("<i", value))
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            if len(data) > 255:
                raise ValueError(f"integer {value} is too large for a torch file")
            self.op(b"\x8a", bytes([len(data)]) + data)

    def reduce(self, module, name, args):
        self.global_(module, name)
        self.tuple(args)
        self.op(b"R")

    def tuple(self, items):
        if not items:
            self.op(b")")
            return
        if len(items) > 3:
            self.op(b"(")
        for item in items:
            self.save(item)
        self.op({1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(items), b"t"))

    def save(self, obj, where="the object"):
        if obj is None:
            self.op(b"N")
        elif obj is True or obj is False:
            self.op(b"\x88" if obj else b"\x89")
        elif isinstance(obj, np.generic) and not isinstance(obj, np.void):
            self.save(obj.item(), where)
        elif type(obj) is int:
            self.integer(obj)
        elif type(obj) is float:
            self.op(b"G", struct.pack(">d", obj))
        elif type(obj) is complex:
            self.reduce("__builtin__", "complex", (obj.real, obj.imag))
        elif type(obj) is str:
            self.string(obj)
        elif type(obj) is bytes:
            self.reduce("_codecs", "encode", (obj.decode("latin-1"), "latin1"))
        elif type(obj) is bytearray:
            self.reduce("__builtin__", "bytearray", (obj.decode("latin-1"), "latin-1"))
        elif isinstance(obj, (np.ndarray, RawTensor)):
            self.tensor(obj, where)
        elif isinstance(obj, torch_pickle.TorchDtype):
            self.global_("torch", obj.dtype.name)
        else:
            self.container(obj, where)

    def container(self, obj, where):
        if id(obj) in self._active:
            raise ValueError(f"{where} contains itself: a torch file cannot hold a cycle")
        if len(self._active) > 200:
            raise ValueError(f"{where}: containers nest more than 200 deep")
        self._active.add(id(obj))
        if type(obj) is dict or type(obj) is OrderedDict or type(obj) is Counter:
            if type(obj) is dict:
                self.op(b"}")
            else:
                self.global_("collections", type(obj).__name__)
                self.op(b")R")
            items = list(obj.items())
            for start in range(0, len(items), 1000):
                self.op(b"(")
                for key, value in items[start:start + 1000]:
                    self.save(key, where)
                    self.save(value, f"{where}[{key!r}]")
                self.op(b"u")
            state = getattr(obj, "__dict__", None)
            if state:                      # a torch state_dict's _metadata
                self.op(b"}(")
                for key, value in state.items():
                    self.save(key, where)
                    self.save(value, f"{where}.{key}")
                self.op(b"ub")
        elif type(obj) is list:
            self.op(b"]")
            for start in range(0, len(obj), 1000):
                self.op(b"(")
                for index, value in enumerate(obj[start:start + 1000], start):
                    self.save(value, f"{where}[{index}]")
                self.op(b"e")
        elif type(obj) is tuple:
            self.tuple(obj)
        elif type(obj) is set:
            self.global_("__builtin__", "set")
            self.op(b"]")
            if obj:
                self.op(b"(")
                for value in obj:
                    self.save(value, where)
                self.op(b"e")
            self.op(b"\x85R")
        else:
            raise TypeError(f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}: "
                            f"skipblocks writes data only (arrays, dicts, lists, tuples, sets, "
                            f"strings, bytes, numbers, None); for a module, save its "
                            f"state_dict()")
        self._active.discard(id(obj))

    def _storage(self, array, dtype):
        """(key, element offset, element strides, storage numel) of an array:
        its place in a storage planned by ``_plan_storages``, else a
        contiguous copy of its own."""
        planned = self._planned.get(id(array))
        if planned is not None:
            return planned
        key = str(len(self.storages))
        data = np.ascontiguousarray(array)
        self.storages[key] = data.reshape(-1).view(np.uint8)
        strides, running = [], 1
        for size in reversed(array.shape):
            strides.append(running)
            running *= size
        # the same array met again (two keys, one tensor) reuses the storage
        self._planned[id(array)] = key, 0, tuple(reversed(strides)), array.size
        return self._planned[id(array)]

    def _plan_storages(self, obj):
        """Arrays whose memory overlaps share one storage, as tensors that
        view one storage do in torch: per dtype, the byte ranges the arrays
        span are merged where they overlap, and each merged range becomes a
        storage (its bytes read through the arrays' own buffer)."""
        arrays = {}
        _collect_arrays(obj, arrays, set(), 0)
        by_dtype = {}
        for array, dtype in arrays.values():
            item = array.itemsize
            if (array.size == 0 or not array.dtype.isnative
                    or any(s < 0 or s % item for s in array.strides)):
                continue
            low = array.__array_interface__["data"][0]
            high = low + sum((n - 1) * s for n, s in zip(array.shape, array.strides)) + item
            by_dtype.setdefault(dtype.name, []).append((low, high, array))
        for spans in by_dtype.values():
            spans.sort(key=lambda span: span[0])
            group, group_high = [], None
            for span in spans + [None]:
                if span is not None and group and span[0] < group_high:
                    group.append(span)
                    group_high = max(group_high, span[1])
                    continue
                if len(group) > 1:
                    self._add_shared_storage(group)
                group, group_high = ([span], span[1]) if span is not None else ([], None)

    def _add_shared_storage(self, group):
        low = group[0][0]
        high = max(span[1] for span in group)
        item = group[0][2].itemsize
        if any((span[0] - low) % item for span in group) or (high - low) % item:
            return                                 # misaligned views: each is copied
        key = str(len(self.storages))
        self.storages[key] = _bytes_at(group[0][2], low, high - low)
        for span_low, _, array in group:
            self._planned[id(array)] = (key, (span_low - low) // item,
                                        tuple(s // item for s in array.strides),
                                        (high - low) // item)

    def tensor(self, obj, where):
        if isinstance(obj, RawTensor):
            dtype, array = obj.dtype, obj.bits
            if dtype.name == "float4_e2m1fn":
                raise ValueError(f"{where}: float4_e2m1fn (safetensors F4) has no torch dtype "
                                 f"that holds it element by element; cast it to float32")
        else:
            dtype, array = dtype_of_array(obj), obj
            if dtype is None:
                raise TypeError(f"{where}: arrays of dtype {obj.dtype} cannot be written to a "
                                f"torch file")
            if array.dtype.byteorder == ">":
                array = array.astype(array.dtype.newbyteorder("<"))
                self._planned.pop(id(array), None)
        key, offset, strides, numel = self._storage(array, dtype)
        if dtype.storage:
            self.global_("torch._utils", "_rebuild_tensor_v2")
        else:
            self.global_("torch._utils", "_rebuild_tensor_v3")
        self.op(b"(")
        self.op(b"(")
        self.string("storage")
        if dtype.storage:
            self.global_("torch", dtype.storage)
            self.string(key)
            self.string("cpu")
            self.integer(numel)
        else:
            self.global_("torch.storage", "UntypedStorage")
            self.string(key)
            self.string("cpu")
            self.integer(numel * dtype.itemsize)
        self.op(b"tQ")
        self.integer(offset)
        self.tuple(tuple(obj.shape))
        self.tuple(strides)
        self.op(b"\x89")                       # requires_grad=False
        self.global_("collections", "OrderedDict")
        self.op(b")R")                         # backward_hooks: an empty OrderedDict
        if not dtype.storage:
            self.global_("torch", dtype.name)
        self.op(b"tR")

    def dump(self, obj):
        self._plan_storages(obj)
        self.op(b"\x80\x02")
        self.save(obj)
        self.op(b".")
        return self.out.getvalue()


def _collect_arrays(obj, arrays, active, depth):
    """id -> (array holding the tensor's memory, DType) of every tensor in obj."""
    if isinstance(obj, RawTensor):
        arrays[id(obj.bits)] = (obj.bits, obj.dtype)
    elif isinstance(obj, np.ndarray):
        dtype = dtype_of_array(obj)
        if dtype is not None:
            arrays[id(obj)] = (obj, dtype)
    elif isinstance(obj, (dict, list, tuple, set)) and id(obj) not in active and depth < 200:
        active.add(id(obj))
        values = list(obj.values()) + list(getattr(obj, "__dict__", {}).values()) \
            if isinstance(obj, dict) else obj
        for value in values:
            _collect_arrays(value, arrays, active, depth + 1)
        active.discard(id(obj))


class _Interface:
    """An __array_interface__ over bytes another array's buffer holds; keeps
    that array alive."""

    def __init__(self, owner, address, nbytes):
        self.base = owner
        self.__array_interface__ = {"data": (address, True), "shape": (nbytes,),
                                    "typestr": "|u1", "version": 3}


def _bytes_at(owner, address, nbytes):
    """A uint8 view of ``nbytes`` bytes at ``address``, which lie inside the
    memory that ``owner`` (an array viewing them) spans."""
    return np.asarray(_Interface(owner, address, nbytes))


def _aligned_info(archive_file, name, size):
    """A stored ZipInfo whose data will start at a multiple of 64 bytes, as
    torch aligns records (padding in an extra field with torch's 'FB' tag)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    start = archive_file.tell()
    header = 30 + len(name.encode("utf-8"))
    if size * 1.05 > zipfile.ZIP64_LIMIT:          # zipfile then adds a 20-byte zip64 extra
        header += 20
    pad = (-(start + header + 4)) % _STORAGE_ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    return info


def write_zip(obj, fileobj, archive_name="archive"):
    """Writes ``obj`` in torch's zip format, readable by
    ``torch.load(path, weights_only=True)`` (and ``mmap=True``)."""
    writer = _PickleWriter()
    data = writer.dump(obj)
    digest = hashlib.sha256(data)
    for raw in writer.storages.values():
        digest.update(memoryview(np.ascontiguousarray(raw)))
    serialization_id = str(int.from_bytes(digest.digest()[:16], "little")).zfill(40)[:40]
    records = [("data.pkl", data), (".format_version", b"1"),
               (".storage_alignment", str(_STORAGE_ALIGNMENT).encode()),
               ("byteorder", b"little")]
    records += [(f"data/{key}", raw) for key, raw in writer.storages.items()]
    records += [("version", b"3\n"), (".data/serialization_id", serialization_id.encode())]
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, payload in records:
            full = f"{archive_name}/{name}"
            size = payload.nbytes if isinstance(payload, np.ndarray) else len(payload)
            info = _aligned_info(fileobj, full, size)
            with zf.open(info, "w", force_zip64=size * 1.05 > zipfile.ZIP64_LIMIT) as record:
                record.write(memoryview(np.ascontiguousarray(payload))
                             if isinstance(payload, np.ndarray) else payload)

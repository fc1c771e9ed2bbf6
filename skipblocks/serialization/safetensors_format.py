"""The safetensors format, read and written byte for byte as the
``safetensors`` package does.

Layout: an unsigned 64-bit little-endian header length N; N bytes of UTF-8
JSON, ``{"__metadata__": {str: str}, name: {"dtype": code, "shape": [...],
"data_offsets": [begin, end]}, ...}``, padded with spaces to a multiple of 8;
then the data buffer, each tensor's little-endian bytes at its offsets.

The reader makes the checks safetensors' own validation makes, all before
reading any tensor: header no larger than 100 MB and inside the file; JSON
an object, no name twice; every dtype known; offsets that tile the buffer
exactly, in order, without holes or overlaps; each tensor's byte count
equal to its shape's element count times its dtype's size.
The writer orders tensors as safetensors does (by dtype, larger first in
the format's dtype order, then by name), writes compact JSON with the
metadata first, and pads the header with spaces.
"""
import json
import struct
from collections import OrderedDict

import numpy as np

from ._common import (BY_SAFETENSORS, FileProblem, RawTensor, UNSUPPORTED_SAFETENSORS,
                      check_shape, decode, dtype_of_array)
from ._zip import file_size_of

MAX_HEADER_BYTES = 100_000_000
# the format's dtype order (safetensors' Dtype enum), which its writer sorts by
DTYPE_ORDER = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
               "C64", "F64", "I64", "U64")
_RANK = {code: rank for rank, code in enumerate(DTYPE_ORDER)}


def _no_duplicates(pairs):
    result = OrderedDict()
    for key, value in pairs:
        if key in result:
            raise FileProblem(f"safetensors header: name {key!r:.80} appears more than once")
        result[key] = value
    return result


def read_header(fileobj):
    """(entries: name -> (DType, shape, begin, end), metadata, data start)."""
    what = "safetensors header"
    file_size = file_size_of(fileobj)
    fileobj.seek(0)
    prefix = fileobj.read(8)
    if len(prefix) != 8:
        raise FileProblem(f"{what}: the file is truncated ({len(prefix)} bytes, shorter than "
                          f"the 8-byte header length)")
    length = struct.unpack("<Q", prefix)[0]
    if length > MAX_HEADER_BYTES:
        raise FileProblem(f"{what}: header length {length} is larger than safetensors' limit "
                          f"of {MAX_HEADER_BYTES} bytes")
    if 8 + length > file_size:
        raise FileProblem(f"{what}: header length {length} runs past the end of the "
                          f"{file_size}-byte file")
    raw = fileobj.read(length)
    if not raw.startswith(b"{"):
        raise FileProblem(f"{what}: the header does not start with '{{'")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except FileProblem:
        raise
    except RecursionError:
        raise FileProblem(f"{what}: the JSON nests too deeply") from None
    except ValueError as exc:      # JSONDecodeError and UnicodeDecodeError
        raise FileProblem(f"{what}: not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FileProblem(f"{what}: the JSON is not an object")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict) or any(not isinstance(v, str)
                                               for v in metadata.values()):
        raise FileProblem(f"{what}: __metadata__ must map strings to strings")
    data_start = 8 + length
    buffer_size = file_size - data_start
    entries = OrderedDict()
    for name, info in header.items():
        where = f"{what}: tensor {name!r:.80}"
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise FileProblem(f"{where}: needs dtype, shape and data_offsets")
        code = info["dtype"]
        if not isinstance(code, str):
            raise FileProblem(f"{where}: dtype {code!r:.40} is not a string")
        if code in UNSUPPORTED_SAFETENSORS:
            raise FileProblem(f"{where}: dtype {code} (6-bit floats packed four to three "
                              f"bytes) is not supported")
        if code not in BY_SAFETENSORS:
            raise FileProblem(f"{where}: unknown dtype {code!r:.40}")
        dtype = BY_SAFETENSORS[code]
        shape, numel = check_shape(info["shape"], where)
        offsets = info["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or any(type(o) is not int or o < 0 for o in offsets)):
            raise FileProblem(f"{where}: data_offsets {offsets!r:.80} must be two "
                              f"non-negative ints")
        begin, end = offsets
        if begin > end:
            raise FileProblem(f"{where}: data_offsets [{begin}, {end}] begin after they end")
        if (numel * dtype.bits) % 8:
            raise FileProblem(f"{where}: {numel} {code} values do not fill whole bytes")
        if numel * dtype.bits // 8 != end - begin:
            raise FileProblem(f"{where}: shape {list(shape)} of {code} needs "
                              f"{numel * dtype.bits // 8} bytes, data_offsets [{begin}, {end}] "
                              f"hold {end - begin}")
        entries[name] = (dtype, shape, begin, end)
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: (e[1][2], e[1][3])):
        if begin != position:
            kind = "overlap" if begin < position else "leave a hole"
            raise FileProblem(f"{what}: data_offsets of tensor {name!r:.80} start at {begin}, "
                              f"where the previous tensor ends at {position}: tensors may not "
                              f"{kind}")
        position = end
    if position != buffer_size:
        where = "past the end of" if position > buffer_size else "short of"
        raise FileProblem(f"{what}: the tensors' data ends at byte {position}, {where} the "
                          f"{buffer_size}-byte data buffer")
    return entries, metadata, data_start


def read(fileobj, *, mmap_array=None, keep_bits=False):
    """(OrderedDict name -> array, metadata dict)."""
    entries, metadata, data_start = read_header(fileobj)
    tensors = OrderedDict()
    for name, (dtype, shape, begin, end) in entries.items():
        if mmap_array is not None:
            raw = mmap_array[data_start + begin:data_start + end]
        else:
            buffer = bytearray(end - begin)
            fileobj.seek(data_start + begin)
            if fileobj.readinto(memoryview(buffer)) != end - begin:
                raise FileProblem(f"tensor {name!r:.80}: the file is truncated")
            raw = np.frombuffer(buffer, dtype=np.uint8)
        if dtype.name == "float4_e2m1fn":
            tensors[name] = (RawTensor(dtype, shape, raw) if keep_bits
                             else decode(dtype, raw).reshape(shape))
        elif dtype.exotic:
            bits = raw.view(dtype.bits_dtype).reshape(shape)
            tensors[name] = (RawTensor(dtype, shape, bits) if keep_bits
                             else decode(dtype, bits).reshape(shape))
        else:
            tensors[name] = raw.view(dtype.numpy).reshape(shape)
    return tensors, metadata


def _entry(name, value):
    if isinstance(value, RawTensor):
        if value.dtype.safetensors is None:
            raise ValueError(f"tensor {name!r}: safetensors cannot hold {value.dtype.name}")
        return value.dtype, value.shape, value.contiguous_bits()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"safetensors holds arrays only: {name!r} is a "
                        f"{type(value).__name__}; pass a flat mapping of names to arrays "
                        f"(skipblocks.state_dict_from(checkpoint) finds a checkpoint's)")
    dtype = dtype_of_array(value)
    if dtype is None or dtype.safetensors is None:
        raise TypeError(f"tensor {name!r}: safetensors cannot hold arrays of dtype {value.dtype}")
    data = np.ascontiguousarray(value)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    return dtype, value.shape, data


def write(tensors, fileobj, metadata=None):
    """Writes a flat mapping of names to arrays (and RawTensors) with
    optional metadata (str -> str), byte-compatible with safetensors."""
    if not isinstance(tensors, dict):
        raise TypeError(f"safetensors holds a mapping of names to arrays, got "
                        f"{type(tensors).__name__}")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"safetensors metadata must be a dict of str to str, got "
                            f"{type(metadata).__name__}")
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"safetensors metadata must map str to str: entry {key!r} is "
                                f"{type(value).__name__} {value!r:.40}")
    entries = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"safetensors names tensors with strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved by the safetensors format")
        entries.append((name,) + _entry(name, value))
    entries.sort(key=lambda e: (-_RANK[e[1].safetensors], e[0]))
    header = OrderedDict()
    if metadata is not None:          # as safetensors: an empty dict is written too
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, data in entries:
        header[name] = OrderedDict([("dtype", dtype.safetensors), ("shape", list(shape)),
                                    ("data_offsets", [offset, offset + data.nbytes])])
        offset += data.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    fileobj.write(struct.pack("<Q", len(text)))
    fileobj.write(text)
    for _, _, _, data in entries:
        fileobj.write(memoryview(data.reshape(-1).view(np.uint8)))

"""Builders of hostile and malformed weight files for the reader tests.

Everything hostile is written by hand: pickles opcode by opcode with the
constants of ``pickle``, zip archives header by header with ``struct`` (so
sizes, offsets, names and CRCs can lie), safetensors headers with ``json``
and ``.npy`` members with their header text. The valid base files come from
the libraries that define the formats: ``torch.save`` (zip and legacy),
the ``safetensors`` package and ``numpy.savez``; torch is imported only
inside the functions that write those base files.
"""
import io
import json
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np


# ---------------------------------------------------------------------------
# pickle assembly: each function returns the opcodes that push one object
# ---------------------------------------------------------------------------

def proto(n):
    return pickle.PROTO + bytes([n])


def pkl(body, protocol=2):
    """A complete pickle: PROTO, the opcodes of one object, STOP."""
    return proto(protocol) + body + pickle.STOP


def s(text):
    """A str (BINUNICODE)."""
    data = text.encode("utf-8", "surrogatepass")
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def b(data):
    """A bytes object (BINBYTES, protocol 3)."""
    return pickle.BINBYTES + struct.pack("<I", len(data)) + data


def i(n):
    """An int: the shortest of BININT1 / BININT2 / BININT / LONG1."""
    if 0 <= n < 256:
        return pickle.BININT1 + bytes([n])
    if 0 <= n < 65536:
        return pickle.BININT2 + struct.pack("<H", n)
    if -2**31 <= n < 2**31:
        return pickle.BININT + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(data)]) + data


def f(x):
    return pickle.BINFLOAT + struct.pack(">d", x)


def none():
    return pickle.NONE


def false():
    return pickle.NEWFALSE


def glob(module, name, how="GLOBAL"):
    """A global, named by the GLOBAL opcode (text line pair) or, for
    ``how="STACK_GLOBAL"``, by two strings and STACK_GLOBAL (protocol 4)."""
    if how == "GLOBAL":
        return pickle.GLOBAL + f"{module}\n{name}\n".encode("utf-8")
    if how == "STACK_GLOBAL":
        return s(module) + s(name) + pickle.STACK_GLOBAL
    raise ValueError(how)


def tup(*items):
    if not items:
        return pickle.EMPTY_TUPLE
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def lst(*items):
    if not items:
        return pickle.EMPTY_LIST
    return pickle.EMPTY_LIST + pickle.MARK + b"".join(items) + pickle.APPENDS


def dct(*pairs):
    """A dict of (key opcodes, value opcodes) pairs."""
    if not pairs:
        return pickle.EMPTY_DICT
    return pickle.EMPTY_DICT + pickle.MARK + b"".join(k + v for k, v in pairs) + pickle.SETITEMS


def call(func, *args):
    """func(*args) with REDUCE."""
    return func + tup(*args) + pickle.REDUCE


def persid(*items):
    """A persistent id tuple followed by BINPERSID."""
    return tup(*items) + pickle.BINPERSID


def storage_pid(key, numel, storage_type="FloatStorage", *, legacy=False, how="GLOBAL",
                view=None):
    """torch's persistent id of a storage: ('storage', torch.<type>Storage,
    key, 'cpu', numel), with the legacy format's sixth item (view metadata,
    None for a whole storage)."""
    items = [s("storage"), glob("torch", storage_type, how), s(key), s("cpu"), i(numel)]
    if legacy:
        items.append(none() if view is None else view)
    return persid(*items)


def contiguous_stride(size):
    stride, step = [], 1
    for n in reversed(size):
        stride.append(step)
        step *= max(n, 1)
    return tuple(reversed(stride))


def rebuild_v2(storage, offset, size, stride=None, *, how="GLOBAL", raw_args=None):
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
    OrderedDict()) as torch writes a tensor. ``storage`` is the opcodes of
    the persistent id; ``size``/``stride`` are int tuples (or opcodes when
    given as bytes); ``raw_args`` replaces the whole argument list."""
    if stride is None and raw_args is None:
        stride = contiguous_stride(size)
    as_ops = (lambda v: v if isinstance(v, bytes) else tup(*map(i, v)))
    args = raw_args if raw_args is not None else (
        storage, offset if isinstance(offset, bytes) else i(offset), as_ops(size),
        as_ops(stride), false(), call(glob("collections", "OrderedDict", how)))
    return call(glob("torch._utils", "_rebuild_tensor_v2", how), *args)


def tensor(key, numel, size, stride=None, offset=0, storage_type="FloatStorage", *,
           legacy=False, how="GLOBAL", view=None):
    """A tensor over storage ``key`` of ``numel`` elements."""
    return rebuild_v2(storage_pid(key, numel, storage_type, legacy=legacy, how=how, view=view),
                      offset, size, stride, how=how)


FLOATS6 = np.arange(6, dtype="<f4").tobytes()     # the 24-byte storage of the hand-built files


def weights_pickle(extra=(), *, legacy=False, how="GLOBAL", protocol=None):
    """The pickle of {"w": a 2x3 float32 tensor over storage "0", **extra},
    ``extra`` being (name, value opcodes) pairs. Protocol 2 as torch writes,
    4 when globals are STACK_GLOBAL."""
    if protocol is None:
        protocol = 4 if how == "STACK_GLOBAL" else 2
    pairs = [(s("w"), tensor("0", 6, (2, 3), legacy=legacy, how=how))]
    pairs += [(s(name), value) for name, value in extra]
    return pkl(dct(*pairs), protocol)


# ---------------------------------------------------------------------------
# zip archives, written field by field
# ---------------------------------------------------------------------------

class Entry:
    """One zip record. Every field that a hostile archive lies about can be
    given explicitly; the others are computed from ``data``.

    ``payload``: the bytes stored in the archive (default: ``data``, or its
    raw deflate stream for method 8); ``crc``/``compress_size``/
    ``file_size``: the declared values; ``local_name``: the local header's
    name when it differs from the central directory's; ``flags``: the
    general-purpose bits; ``zip64``: declare the sizes in a zip64 extra
    field (forced when a size does not fit 32 bits); ``header_offset``: the
    central directory's offset of the local header (default: where it is).
    """

    def __init__(self, name, data=b"", *, method=0, payload=None, crc=None, compress_size=None,
                 file_size=None, local_name=None, flags=0, zip64=False, header_offset=None,
                 align=True):
        self.name = name.encode("utf-8") if isinstance(name, str) else name
        self.data = data
        self.method = method
        if payload is None:
            if method == zipfile.ZIP_DEFLATED:
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                payload = c.compress(data) + c.flush()
            else:
                payload = data
        self.payload = payload
        self.crc = zlib.crc32(data) if crc is None else crc
        self.compress_size = len(payload) if compress_size is None else compress_size
        self.file_size = len(data) if file_size is None else file_size
        if local_name is None:
            self.local_name = self.name
        else:
            self.local_name = local_name.encode("utf-8") if isinstance(local_name, str) \
                else local_name
        self.flags = flags
        self.zip64 = zip64 or self.compress_size >= 0xFFFFFFFF or self.file_size >= 0xFFFFFFFF
        self.header_offset = header_offset
        self.align = align


_DOS_DATE_1980_01_01 = (0 << 9) | (1 << 5) | 1


def build_zip(entries, *, alignment=64, cd_offset=None, cd_count=None, comment=b""):
    """The bytes of a zip archive of ``entries`` (Entry objects), each
    record's data aligned to ``alignment`` bytes with an extra field, as
    torch.save aligns storages. ``cd_offset`` / ``cd_count`` make the end
    record lie about the central directory."""
    out = bytearray()
    central = bytearray()
    for e in entries:
        offset = len(out)
        sizes64 = struct.pack("<HHQQ", 0x0001, 16, e.file_size, e.compress_size)
        extra = sizes64 if e.zip64 else b""
        if alignment and e.align:
            start = offset + 30 + len(e.local_name) + len(extra) + 4
            pad = (-start) % alignment
            extra += struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        csize32 = 0xFFFFFFFF if e.zip64 else e.compress_size
        usize32 = 0xFFFFFFFF if e.zip64 else e.file_size
        version = 45 if e.zip64 else 20
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, version, e.flags, e.method, 0,
                           _DOS_DATE_1980_01_01, e.crc & 0xFFFFFFFF, csize32, usize32,
                           len(e.local_name), len(extra))
        out += e.local_name + extra + e.payload
        cextra = sizes64 if e.zip64 else b""
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, e.flags,
                               e.method, 0, _DOS_DATE_1980_01_01, e.crc & 0xFFFFFFFF, csize32,
                               usize32, len(e.name), len(cextra), 0, 0, 0, 0,
                               offset if e.header_offset is None else e.header_offset)
        central += e.name + cextra
    start = len(out)
    out += central
    count = len(entries) if cd_count is None else cd_count
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central),
                       start if cd_offset is None else cd_offset, len(comment)) + comment
    return bytes(out)


def torch_zip_entries(data_pkl, storages, *, prefix="archive", extra_entries=()):
    """The records torch.save writes, in its order: data.pkl, .format_version,
    .storage_alignment, byteorder, data/<key> for each storage, version,
    .data/serialization_id; then ``extra_entries``."""
    p = prefix + "/"
    entries = [Entry(p + "data.pkl", data_pkl), Entry(p + ".format_version", b"1"),
               Entry(p + ".storage_alignment", b"64"), Entry(p + "byteorder", b"little")]
    entries += [Entry(f"{p}data/{key}", raw) for key, raw in storages.items()]
    entries += [Entry(p + "version", b"3\n"),
                Entry(p + ".data/serialization_id", b"0" * 40)]
    return entries + list(extra_entries)


def torch_zip(data_pkl, storages=None, **kwargs):
    """A torch zip file of ``data_pkl`` and its storages (default: storage
    "0" holding six float32 values)."""
    if storages is None:
        storages = {"0": FLOATS6}
    return build_zip(torch_zip_entries(data_pkl, storages, **kwargs))


def record_offsets(data):
    """{name: (local header offset, data start, data end)} of a zip archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        result = {}
        for info in z.infolist():
            name_length, extra_length = struct.unpack(
                "<HH", data[info.header_offset + 26:info.header_offset + 30])
            start = info.header_offset + 30 + name_length + extra_length
            result[info.filename] = (info.header_offset, start, start + info.compress_size)
        return result


def central_directory_offset(data):
    eocd = data.rindex(b"PK\x05\x06")
    return struct.unpack("<I", data[eocd + 16:eocd + 20])[0]


def zero_deflate_bomb(nbytes):
    """(raw deflate stream of ``nbytes`` zero bytes, its CRC-32): the stream
    is a 1 MiB block repeated, each block ending in a full flush so the
    copies are independent (``nbytes`` is a multiple of 1 MiB). About
    1 KiB of stream per MiB of output."""
    chunk = bytes(1 << 20)
    assert nbytes % len(chunk) == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    stream = block * (nbytes // len(chunk)) + c.flush()
    crc = 0
    for _ in range(nbytes // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return stream, crc


# ---------------------------------------------------------------------------
# torch's legacy format
# ---------------------------------------------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
LEGACY_SYS_INFO = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                   "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_record(count, raw):
    """One storage as the legacy format stores it: int64 element count, bytes."""
    return struct.pack("<q", count) + raw


def legacy(obj_pickle, keys=("0",), records=None, *, magic_pickle=None, protocol_pickle=None,
           sys_info_pickle=None, keys_pickle=None):
    """A legacy torch file: the magic-number, protocol and sys_info pickles,
    the object's pickle, the pickle of the storage keys, then the storage
    records (default: one record of six float32 values). Any of the
    pickles can be replaced."""
    if records is None:
        records = [legacy_record(6, FLOATS6)]
    parts = [
        magic_pickle if magic_pickle is not None else pickle.dumps(LEGACY_MAGIC, protocol=2),
        protocol_pickle if protocol_pickle is not None
        else pickle.dumps(LEGACY_PROTOCOL, protocol=2),
        sys_info_pickle if sys_info_pickle is not None
        else pickle.dumps(LEGACY_SYS_INFO, protocol=2),
        obj_pickle,
        keys_pickle if keys_pickle is not None else pickle.dumps(list(keys), protocol=2),
    ]
    return b"".join(parts) + b"".join(records)


def legacy_layout(data):
    """[(start, end)] of the five pickles of a legacy file, and where the
    storage records start."""
    import pickletools
    stream = io.BytesIO(data)
    spans = []
    for _ in range(5):
        start = stream.tell()
        for _op in pickletools.genops(stream):
            pass
        spans.append((start, stream.tell()))
    return spans, stream.tell()


# ---------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------

def safetensors_bytes(header, data=b"", *, length=None, pad=True):
    """A safetensors file: u64 little-endian header length, the header
    (a dict, dumped as JSON and padded with spaces to 8 bytes as the
    safetensors package does, or given as raw bytes), the data. ``length``
    makes the prefix lie."""
    if isinstance(header, (bytes, bytearray)):
        text = bytes(header)
    else:
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        if pad:
            text += b" " * ((-len(text)) % 8)
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data


def st_entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


def st_base_header():
    """The header of the hand-built base: w (F32 2x3, bytes 0-24) and
    b (I64 [3], bytes 24-48)."""
    return {"__metadata__": {"format": "np"},
            "w": st_entry("F32", [2, 3], 0, 24),
            "b": st_entry("I64", [3], 24, 48)}


ST_BASE_DATA = FLOATS6 + np.arange(3, dtype="<i8").tobytes()


# ---------------------------------------------------------------------------
# .npy / .npz
# ---------------------------------------------------------------------------

def npy_bytes(header_text, data=b"", *, version=(1, 0), magic=b"\x93NUMPY"):
    """A .npy member: magic, version, header length, the header text
    (padded with spaces and a newline to 64 bytes as NumPy writes it),
    the data."""
    text = header_text.encode("latin1") if isinstance(header_text, str) else header_text
    length_format = "<H" if version[0] == 1 else "<I"
    prefix = len(magic) + 2 + struct.calcsize(length_format)
    total = prefix + len(text) + 1
    text += b" " * ((-total) % 64) + b"\n"
    return magic + bytes(version) + struct.pack(length_format, len(text)) + text + data


def npy_header(descr="<f4", shape=(2, 3), fortran=False):
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {tuple(shape)!r}, }}"


def npz_bytes(members, method=zipfile.ZIP_STORED):
    """An .npz written by zipfile: {name: member bytes}."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


# ---------------------------------------------------------------------------
# the valid base files, written by the libraries that define the formats
# ---------------------------------------------------------------------------

def base_checkpoint():
    """A small checkpoint as people save them: a module's state_dict (an
    OrderedDict with _metadata, written with BUILD), tensors of several
    dtypes, a transposed view sharing its base's storage, numbers, a str,
    a tuple and a set."""
    import torch
    gen = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(3, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(2, 3, generator=gen))
        linear.bias.copy_(torch.randn(2, generator=gen))
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return {
        "state_dict": linear.state_dict(),
        "half": torch.arange(4, dtype=torch.float16),
        "bf16": torch.arange(3, dtype=torch.bfloat16),
        "idx": torch.arange(3, dtype=torch.int64),
        "mask": torch.tensor([True, False]),
        "base": base,
        "view": base.t(),
        "step": 7,
        "lr": 0.5,
        "name": "base",
        "pair": (1, 2.5),
        "tags": {"a", "b"},
    }


def write_torch_zip_base(path, obj=None):
    import torch
    torch.save(base_checkpoint() if obj is None else obj, path)
    return path


def write_torch_legacy_base(path, obj=None):
    import torch
    torch.save(base_checkpoint() if obj is None else obj, path,
               _use_new_zipfile_serialization=False)
    return path


def base_arrays():
    return {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "b": np.arange(3, dtype=np.int64),
            "h": np.linspace(0, 1, 5).astype(np.float16),
            "m": np.array([True, False, True])}


def write_safetensors_base(path):
    from safetensors.numpy import save_file
    save_file(base_arrays(), str(path), metadata={"format": "np", "note": "base"})
    return path


def write_npz_base(path):
    np.savez(path, **base_arrays())
    return path


# ---------------------------------------------------------------------------
# payloads: pickled calls that, were they executed, would create ``marker``
# ---------------------------------------------------------------------------

EVIL_MODULE_SOURCE = '''\
"""Importing this module, instantiating EvilDict or calling boom creates
the marker file: a reader that imports or calls anything of it is caught."""
import collections
import pathlib

MARKER = {marker!r}
pathlib.Path(MARKER).touch()


class EvilDict(collections.OrderedDict):
    def __init__(self, *args, **kwargs):
        pathlib.Path(MARKER).touch()
        super().__init__(*args, **kwargs)

    def __setitem__(self, key, value):
        pathlib.Path(MARKER).touch()
        super().__setitem__(key, value)


def boom(*args, **kwargs):
    pathlib.Path(MARKER).touch()
'''


def payloads(marker, evil):
    """[(case id, pattern of the message, builder)]: the pattern is the
    dotted name of the global a reader must refuse, as a regular expression
    (its dots match themselves among others);
    each builder takes ``how`` ("GLOBAL" or "STACK_GLOBAL") and returns the
    opcodes of one object; ``evil`` is the name of an importable module
    written from EVIL_MODULE_SOURCE."""
    m = str(marker)
    touch = f"touch {m}"
    py_touch = f"open({m!r}, 'w').close()"

    def inner_pickle():
        # pickle.dumps(os.system(touch)) written out: bytes for pickle.loads
        return proto(2) + glob("os", "system") + s(touch) + pickle.TUPLE1 + pickle.REDUCE \
            + pickle.STOP

    return [
        ("os.system", "os.system",
         lambda how: call(glob("os", "system", how), s(touch))),
        ("posix.system", "posix.system",
         lambda how: call(glob("posix", "system", how), s(touch))),
        ("builtins.eval", "builtins.eval",
         lambda how: call(glob("builtins", "eval", how), s(py_touch))),
        ("builtins.exec", "builtins.exec",
         lambda how: call(glob("builtins", "exec", how), s(py_touch))),
        # protocol 2's name of builtins, which pickle maps to builtins
        ("__builtin__.eval", "(__builtin__|builtins).eval",
         lambda how: call(glob("__builtin__", "eval", how), s(py_touch))),
        ("builtins.__import__", "builtins.__import__",
         lambda how: call(glob("builtins", "__import__", how), s(evil))),
        ("builtins.getattr", "builtins.getattr",
         lambda how: call(call(glob("builtins", "getattr", how),
                               call(glob("builtins", "__import__", how), s("os")), s("system")),
                          s(touch))),
        ("subprocess.Popen", "subprocess.Popen",
         lambda how: call(glob("subprocess", "Popen", how), lst(s("touch"), s(m)))),
        ("numpy.runstring", "numpy.testing._private.utils.runstring",
         lambda how: call(glob("numpy.testing._private.utils", "runstring", how),
                          s(py_touch), dct())),
        ("numpy.core._reconstruct", "numpy.core.multiarray._reconstruct",
         lambda how: call(glob("numpy.core.multiarray", "_reconstruct", how),
                          glob("numpy", "ndarray", how), tup(i(0)), s("b"))),
        ("numpy._core._reconstruct", "numpy._core.multiarray._reconstruct",
         lambda how: call(glob("numpy._core.multiarray", "_reconstruct", how),
                          glob("numpy", "ndarray", how), tup(i(0)), s("b"))),
        ("torch.load", "torch.load",
         lambda how: call(glob("torch", "load", how), s(m))),
        ("torch.save", "torch.save",
         lambda how: call(glob("torch", "save", how), lst(), s(m))),
        ("pickle.loads", "pickle.loads",
         lambda how: call(glob("pickle", "loads", how),
                          call(glob("_codecs", "encode", how),
                               s(inner_pickle().decode("latin1")), s("latin1")))),
        ("evil.EvilDict", f"{evil}.EvilDict",
         lambda how: call(glob(evil, "EvilDict", how))
         + pickle.MARK + s("k") + i(1) + pickle.SETITEMS),
        ("collections.defaultdict", "collections.defaultdict",
         lambda how: call(glob("collections", "defaultdict", how), glob(evil, "boom", how))),
        ("copyreg._reconstructor", "copyreg._reconstructor",
         lambda how: call(glob("copyreg", "_reconstructor", how), glob(evil, "EvilDict", how),
                          glob("collections", "OrderedDict", how), none())),
    ]


def write(path, data):
    path = os.fspath(path)
    with open(path, "wb") as fh:
        fh.write(data)
    return path

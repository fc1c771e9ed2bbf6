"""What every weight-file format shares: the error type, the dtype table, the
decoders of the dtypes NumPy has no type for, and the size checks that run
before anything is allocated."""
import numpy as np


class WeightsFileError(ValueError):
    """A weight file is malformed, truncated, hostile or holds something
    skipblocks does not read. The message starts with the file's path and
    names what was wrong. Nothing from the file was executed."""


class FileProblem(Exception):
    """Raised inside the readers; ``load`` turns it into WeightsFileError with
    the file's path in front."""


# -- dtypes -----------------------------------------------------------------
# name: torch's dtype name (torch.<name>); numpy: the NumPy dtype it is read
# as; bits: storage bits per element; safetensors: the format's code (None:
# the format cannot hold it); storage: torch's legacy typed storage class
# (None: torch writes an UntypedStorage and passes the dtype to
# _rebuild_tensor_v3); exotic: NumPy has no such type, the bits are decoded.


class DType:
    __slots__ = ("name", "numpy", "bits", "safetensors", "storage", "decoded")

    def __init__(self, name, numpy, bits, safetensors, storage, decoded=None):
        self.name, self.bits, self.safetensors, self.storage = name, bits, safetensors, storage
        self.numpy = None if numpy is None else np.dtype(numpy)
        # exotic dtypes: the NumPy dtype their values are decoded to
        self.decoded = None if decoded is None else np.dtype(decoded)

    @property
    def exotic(self):
        return self.numpy is None

    @property
    def bits_dtype(self):
        """The unsigned integer dtype that holds one element's bits."""
        return np.dtype({8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[self.bits])

    @property
    def itemsize(self):
        return self.bits // 8

    def __repr__(self):
        return f"DType({self.name})"


DTYPES = {d.name: d for d in (
    DType("float64", "<f8", 64, "F64", "DoubleStorage"),
    DType("float32", "<f4", 32, "F32", "FloatStorage"),
    DType("float16", "<f2", 16, "F16", "HalfStorage"),
    DType("bfloat16", None, 16, "BF16", "BFloat16Storage", decoded="<f4"),
    DType("int64", "<i8", 64, "I64", "LongStorage"),
    DType("int32", "<i4", 32, "I32", "IntStorage"),
    DType("int16", "<i2", 16, "I16", "ShortStorage"),
    DType("int8", "i1", 8, "I8", "CharStorage"),
    DType("uint8", "u1", 8, "U8", "ByteStorage"),
    DType("bool", "?", 8, "BOOL", "BoolStorage"),
    DType("complex128", "<c16", 128, None, "ComplexDoubleStorage"),
    DType("complex64", "<c8", 64, "C64", "ComplexFloatStorage"),
    DType("complex32", None, 32, None, None, decoded="<c8"),
    DType("uint16", "<u2", 16, "U16", None),
    DType("uint32", "<u4", 32, "U32", None),
    DType("uint64", "<u8", 64, "U64", None),
    DType("float8_e4m3fn", None, 8, "F8_E4M3", None, decoded="<f4"),
    DType("float8_e5m2", None, 8, "F8_E5M2", None, decoded="<f4"),
    DType("float8_e4m3fnuz", None, 8, "F8_E4M3FNUZ", None, decoded="<f4"),
    DType("float8_e5m2fnuz", None, 8, "F8_E5M2FNUZ", None, decoded="<f4"),
    DType("float8_e8m0fnu", None, 8, "F8_E8M0", None, decoded="<f4"),
    # safetensors' F4: two 4-bit values per byte, the first in the low nibble
    DType("float4_e2m1fn", None, 4, "F4", None, decoded="<f4"),
)}
BY_STORAGE = {d.storage: d for d in DTYPES.values() if d.storage}
BY_SAFETENSORS = {d.safetensors: d for d in DTYPES.values() if d.safetensors}
# safetensors codes skipblocks refuses: 6-bit values packed four to three bytes
UNSUPPORTED_SAFETENSORS = {"F6_E2M3", "F6_E3M2"}


def dtype_of_array(array):
    """The DType of a NumPy array's dtype (any byte order), or None."""
    dt = array.dtype
    if dt.kind not in "biufc" or dt.fields is not None:
        return None
    for d in DTYPES.values():
        if d.numpy is not None and d.numpy.kind == dt.kind and d.numpy.itemsize == dt.itemsize:
            return d
    return None


# -- decoding the dtypes NumPy lacks ------------------------------------------

def _minifloat_table(exponent_bits, mantissa_bits, bias, specials):
    """float32 value of every bit pattern of a small float format.

    specials: "ieee" (all-ones exponent: inf / NaN), "fn" (no inf; only the
    all-ones pattern is NaN), "fnuz" (no inf, no negative zero; the pattern
    1000...0 is NaN), "none" (every pattern is a finite number)."""
    total = 1 + exponent_bits + mantissa_bits
    values = np.empty(1 << total, dtype=np.float64)
    top = (1 << exponent_bits) - 1
    for pattern in range(1 << total):
        sign = -1.0 if pattern >> (total - 1) else 1.0
        exponent = (pattern >> mantissa_bits) & top
        mantissa = pattern & ((1 << mantissa_bits) - 1)
        if exponent == 0:
            value = mantissa / (1 << mantissa_bits) * 2.0 ** (1 - bias)
        else:
            value = (1 + mantissa / (1 << mantissa_bits)) * 2.0 ** (exponent - bias)
        if specials == "ieee" and exponent == top:
            value = np.inf if mantissa == 0 else np.nan
        elif specials == "fn" and exponent == top and mantissa == (1 << mantissa_bits) - 1:
            value = np.nan
        elif specials == "fnuz" and pattern == 1 << (total - 1):
            value = np.nan
        values[pattern] = sign * value
    return values.astype(np.float32)


def _e8m0_table():
    values = np.ldexp(1.0, np.arange(256) - 127)
    values[255] = np.nan               # 2**128 is past float32's range: the NaN pattern
    return values.astype(np.float32)


_TABLES = {}


def _table(name):
    if name not in _TABLES:
        _TABLES[name] = {
            "float8_e4m3fn": lambda: _minifloat_table(4, 3, 7, "fn"),
            "float8_e5m2": lambda: _minifloat_table(5, 2, 15, "ieee"),
            "float8_e4m3fnuz": lambda: _minifloat_table(4, 3, 8, "fnuz"),
            "float8_e5m2fnuz": lambda: _minifloat_table(5, 2, 16, "fnuz"),
            "float8_e8m0fnu": _e8m0_table,
            "float4_e2m1fn": lambda: _minifloat_table(2, 1, 1, "none"),
        }[name]()
    return _TABLES[name]


def decode(dtype, bits):
    """Values of an exotic dtype from an array of its bits (any shape; for
    float4_e2m1fn a flat uint8 array of packed pairs), as an array of that
    shape (twice the length for float4_e2m1fn): float32 for bfloat16 and
    the float8/float4 formats (exact: float32 holds all their values),
    complex64 for complex32."""
    flat = np.asarray(bits).reshape(-1)
    if dtype.name == "bfloat16":
        values = (flat.astype(np.uint32) << 16).view(np.float32)
    elif dtype.name == "complex32":
        values = flat.view(np.float16).astype(np.float32).view(np.complex64)
    elif dtype.name == "float4_e2m1fn":
        table = _table(dtype.name)
        pairs = np.empty((flat.size, 2), dtype=np.float32)
        pairs[:, 0] = table[flat & 0x0F]
        pairs[:, 1] = table[flat >> 4]
        return pairs.reshape(-1)
    else:
        values = _table(dtype.name)[flat]
    return values.reshape(np.shape(bits))


class RawTensor:
    """A tensor of a dtype NumPy has no type for, kept as its stored bits so
    that a conversion between formats copies them exactly.

    ``dtype``: the DType; ``shape``: the tensor's shape; ``bits``: the bits,
    an unsigned integer array of that shape (for float4_e2m1fn, whose values
    are packed two per byte: the flat uint8 array of the packed bytes)."""

    __slots__ = ("dtype", "shape", "bits")

    def __init__(self, dtype, shape, bits):
        self.dtype, self.shape, self.bits = dtype, tuple(shape), bits

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=object))

    @property
    def nbytes(self):
        return self.size * self.dtype.bits // 8

    def decoded(self):
        """The values, decoded (see ``decode``), in this tensor's shape."""
        return decode(self.dtype, self.bits).reshape(self.shape)

    def contiguous_bits(self):
        return np.ascontiguousarray(self.bits)

    def __repr__(self):
        return f"RawTensor({self.dtype.name}, shape={self.shape})"


# -- sizes declared by files -----------------------------------------------

# No format skipblocks reads can describe a tensor of more elements than this:
# it keeps every byte count below 2**63 for the 16-byte complex128.
MAX_ELEMENTS = 1 << 58


def check_shape(shape, what):
    """A declared shape: a sequence of non-negative ints. Returns (shape
    tuple, element count), refusing counts no file could hold."""
    if not isinstance(shape, (list, tuple)):
        raise FileProblem(f"{what}: shape must be a list of integers, got {type(shape).__name__}")
    numel = 1
    for size in shape:
        if type(size) is not int or size < 0:
            raise FileProblem(f"{what}: shape {list(shape)!r} must hold non-negative integers")
        numel *= size
        if numel > MAX_ELEMENTS:
            raise FileProblem(f"{what}: shape {list(shape)!r} declares more elements than any "
                              f"file holds")
    return tuple(shape), numel


def walk_tensors(obj, prefix="", depth=0, seen=None):
    """(dotted key, value) of every array or RawTensor inside dicts, lists and
    tuples, in order; a container shared in the object is walked once."""
    if depth > 64:
        raise ValueError("the object nests containers more than 64 deep")
    seen = set() if seen is None else seen
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in seen:
            return
        seen.add(id(obj))
    if isinstance(obj, (np.ndarray, RawTensor)):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from walk_tensors(value, f"{prefix}.{key}" if prefix else str(key), depth + 1,
                                    seen)
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from walk_tensors(value, f"{prefix}.{index}" if prefix else str(index),
                                    depth + 1, seen)

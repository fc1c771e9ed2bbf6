"""Mutation fuzzing of the weight-file readers (issue 12, item 7).

Property, for every mutated file: ``skipblocks.load`` (mmap off and on)
either returns or raises ``WeightsFileError`` whose message starts with the
file's path -- no other exception escapes, nothing crashes -- and the file
is unchanged afterwards.

One test per reader, each mutating a valid base file written by the
library that defines the format:

* torch zip: byte flips / overwrites / insertions / deletions / truncation
  of the whole file (mostly stopped by the zip structure and CRCs), and
  mutations of data.pkl -- bytes, opcodes, global names, integers -- and of
  the storage records, repacked into a valid zip with correct CRCs so that
  the unpickler and the storage checks see them;
* torch legacy: the same byte mutations of the whole file, and opcode-level
  mutations of its object pickle;
* safetensors: byte mutations of the whole file, and structured mutations
  of the JSON header (dtype strings, shapes, offsets, metadata values)
  written with a correct length prefix;
* npz: byte mutations, and mutations of a member's .npy header repacked.

Budgets: examples are derandomized (the same cases on every run) and
counted so that each of the three main tests takes about 17-20 s on this
2-core machine (npz, the optional one, about 3 s), keeping the hostile-file
and fuzz suite under 90 s; a wall-clock guard stops doing work after 50 s
whatever the machine's speed.
Run with ``--hypothesis-show-statistics`` to see the outcome counts.
"""
import ast
import io
import json
import os
import pickletools
import shutil
import struct
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings, strategies as st

import skipblocks as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

WALL_CLOCK_S = 50.0


class WallClock:
    """Started by a test's first example; ``spent()`` is True once the
    test has run for WALL_CLOCK_S, after which examples do no work -- unless
    an example has failed: then every example runs, so that Hypothesis can
    shrink and replay the failure (``run`` records failures)."""

    def __init__(self):
        self.start = None
        self.failed = False

    def spent(self):
        if self.start is None:
            self.start = time.monotonic()
        return not self.failed and time.monotonic() - self.start > WALL_CLOCK_S

    def run(self, *args):
        try:
            check_load(*args)
        except BaseException:
            self.failed = True
            raise


def fuzz_settings(max_examples):
    # tmp_path is shared by all examples of a test on purpose: each example
    # writes its own file and deletes it, so the function-scoped fixture's
    # reuse is harmless and its health check is suppressed.
    return settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


_counter = [0]


def check_load(directory, name, data):
    """The property, on ``data`` written to a new file in ``directory``."""
    _counter[0] += 1
    path = Path(directory) / f"{_counter[0]}-{name}"
    path.write_bytes(data)
    try:
        for use_mmap in (False, True):
            try:
                result = sb.load(path, mmap=use_mmap)
            except sb.WeightsFileError as exc:
                message = str(exc)
                assert message.startswith(str(path)), message
                # the first words after the path and the format say what kind
                event(f"mmap={use_mmap}: refused: {message[len(str(path)) + 2:][:40]}")
            else:
                event(f"mmap={use_mmap}: returned {type(result).__name__}")
                del result
        assert path.read_bytes() == data, "load modified the file"
    finally:
        path.unlink()


# ---------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------

INTERESTING_INTS = [0, 1, -1, 2, 7, 8, 63, 64, 127, 128, 255, 256, 2**15, 2**16 - 1, 2**31 - 1,
                    2**31, 2**32 - 1, 2**32, 2**40, 2**62, 2**63 - 1, -2**63, 2**64 - 1]

_position = st.integers(0, 2**20)
_byte_op = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(0, 7)),
    st.tuples(st.just("set"), _position, st.integers(0, 255)),
    st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _position, st.integers(1, 32)),
    st.tuples(st.just("int"), _position, st.sampled_from([1, 2, 4, 8]),
              st.sampled_from(INTERESTING_INTS)),
)
byte_mutations = st.tuples(st.lists(_byte_op, min_size=1, max_size=6),
                           st.none() | st.integers(0, 2**20))


def apply_byte_mutations(data, mutations):
    """Applies (ops, truncation) from ``byte_mutations``; positions wrap
    around the data's length."""
    ops, truncate = mutations
    out = bytearray(data)
    for op in ops:
        if not out:
            break
        kind, pos = op[0], op[1] % len(out)
        if kind == "flip":
            out[pos] ^= 1 << op[2]
        elif kind == "set":
            out[pos] = op[2]
        elif kind == "insert":
            out[pos:pos] = op[2]
        elif kind == "delete":
            del out[pos:pos + op[2]]
        else:
            width, value = op[2], op[3]
            out[pos:pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    if truncate is not None and out:
        del out[truncate % (len(out) + 1):]
    return bytes(out)


GLOBAL_NAMES = [
    ("collections", "OrderedDict"), ("collections", "Counter"), ("builtins", "set"),
    ("builtins", "bytearray"), ("builtins", "complex"), ("_codecs", "encode"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_qtensor"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "FloatStorage"),
    ("torch", "HalfStorage"), ("torch", "LongStorage"), ("torch", "BFloat16Storage"),
    ("torch", "QInt8Storage"), ("torch", "Size"), ("torch", "device"), ("torch", "float32"),
    ("torch", "Tensor"), ("torch.nn.parameter", "Parameter"), ("os", "system"),
    ("builtins", "eval"), ("builtins", "getattr"), ("collections", "OrderedDict.__init__"),
    ("numpy", "ndarray"), ("copyreg", "_reconstructor"),
]
_OPCODE_BYTES = sorted({op.code.encode("latin1") for op in pickletools.opcodes})

_pickle_op = st.one_of(
    st.tuples(st.just("opcode"), st.integers(0, 2**16), st.sampled_from(_OPCODE_BYTES)),
    st.tuples(st.just("global"), st.integers(0, 2**16), st.sampled_from(GLOBAL_NAMES)),
    st.tuples(st.just("int"), st.integers(0, 2**16), st.sampled_from(INTERESTING_INTS)
              | st.integers(-2**70, 2**70)),
    st.tuples(st.just("drop"), st.integers(0, 2**16)),
    st.tuples(st.just("dup"), st.integers(0, 2**16)),
)
pickle_mutations = st.one_of(
    st.tuples(st.just("bytes"), byte_mutations),
    st.tuples(st.just("ops"), st.lists(_pickle_op, min_size=1, max_size=4)),
)

_INT_OPS = {"BININT1", "BININT2", "BININT", "LONG1"}


def _ops_of(data):
    """[(opcode name, start, end)] of a pickle's opcodes."""
    spans = []
    ops = list(pickletools.genops(data))
    for k, (op, _arg, pos) in enumerate(ops):
        end = ops[k + 1][2] if k + 1 < len(ops) else len(data)
        spans.append((op.name, pos, end))
    return spans


def apply_pickle_mutations(data, mutation):
    """Mutates a pickle at the byte level, or opcode by opcode: replace an
    opcode's byte, rename a GLOBAL, rewrite an integer, drop or duplicate
    an opcode with its argument."""
    kind, arg = mutation
    if kind == "bytes":
        return apply_byte_mutations(data, arg)
    for op in arg:
        spans = _ops_of(data)
        name, start, end = spans[op[1] % len(spans)]
        if op[0] == "opcode":
            data = data[:start] + op[2] + data[start + 1:]
        elif op[0] == "global":
            globals_ = [sp for sp in spans if sp[0] == "GLOBAL"]
            if globals_:
                _, start, end = globals_[op[1] % len(globals_)]
                data = data[:start] + H.glob(*op[2]) + data[end:]
        elif op[0] == "int":
            ints = [sp for sp in spans if sp[0] in _INT_OPS]
            if ints:
                _, start, end = ints[op[1] % len(ints)]
                data = data[:start] + H.i(op[2]) + data[end:]
        elif op[0] == "drop":
            data = data[:start] + data[end:]
        else:
            data = data[:end] + data[start:end] + data[end:]
        try:
            _ops_of(data)
        except Exception:
            break   # the rest needs a parseable pickle; this one goes to the reader as is
    return data


def _zip_records(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def _repack(records):
    """A stored zip of (name, bytes) records, with correct CRCs; duplicate
    names are a mutation here, so zipfile's warning about them is silenced."""
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
            for name, content in records:
                z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return out.getvalue()


_record_op = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 2**16), st.integers(0, 64)),
    st.tuples(st.just("extend"), st.integers(0, 2**16), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("drop"), st.integers(0, 2**16)),
    st.tuples(st.just("rename"), st.integers(0, 2**16),
              st.sampled_from(["data/9", "data/0", "data.pkl", "../x", "byteorder", ""])),
)

zip_mutations = st.one_of(
    st.tuples(st.just("file"), byte_mutations),
    st.tuples(st.just("data.pkl"), pickle_mutations),
    st.tuples(st.just("records"), st.lists(_record_op, min_size=1, max_size=3)),
)


def apply_zip_mutation(data, mutation):
    kind, arg = mutation
    if kind == "file":
        return apply_byte_mutations(data, arg)
    records = _zip_records(data)
    prefix = records[0][0].split("/")[0] + "/"
    if kind == "data.pkl":
        records = [(n, apply_pickle_mutations(c, arg) if n.endswith("/data.pkl") else c)
                   for n, c in records]
        return _repack(records)
    for op in arg:
        if not records:
            break
        k = op[1] % len(records)
        name, content = records[k]
        if op[0] == "truncate":
            records[k] = (name, content[:len(content) * op[2] // 64])
        elif op[0] == "extend":
            records[k] = (name, content + op[2])
        elif op[0] == "drop":
            del records[k]
        else:
            records[k] = (prefix + op[2], content)
    return _repack(records)


# ---------------------------------------------------------------------------
# base files
# ---------------------------------------------------------------------------

_BASES = {}


def base(fmt):
    """The base file of a format, written once (a module-level cache rather
    than a fixture: Hypothesis prints every argument of a failing example,
    and these are kilobytes of bytes)."""
    if not _BASES:
        directory = Path(tempfile.mkdtemp(prefix="sb-fuzz-bases-"))
        try:
            for name, (key, write) in {"base.pt": ("zip", H.write_torch_zip_base),
                                       "legacy.pt": ("legacy", H.write_torch_legacy_base),
                                       "base.safetensors": ("safetensors",
                                                            H.write_safetensors_base),
                                       "base.npz": ("npz", H.write_npz_base)}.items():
                _BASES[key] = Path(write(directory / name)).read_bytes()
        finally:
            shutil.rmtree(directory)
    return _BASES[fmt]


def test_mutators_keep_valid_files_valid(tmp_path):
    """Repacking, and mutations that change nothing, keep a base file
    loadable: the fuzzers' mutated files differ from a valid one only by
    their mutation."""
    for fmt, name in [("zip", "z.pt"), ("npz", "n.npz")]:
        path = tmp_path / name
        path.write_bytes(_repack(_zip_records(base(fmt))))
        assert sb.load(path, mmap=True).keys() == sb.load(path).keys()
    pkl = dict(_zip_records(base("zip")))["base/data.pkl"]
    first_global = next(arg for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL")
    same = ("global", 0, tuple(first_global.split(" ")))
    assert apply_pickle_mutations(pkl, ("ops", [same])) == pkl
    assert apply_pickle_mutations(pkl, ("ops", [("global", 0, ("os", "system"))])) != pkl
    assert apply_byte_mutations(b"abc", ([("set", 1, ord("b"))], None)) == b"abc"
    assert apply_byte_mutations(b"abcd", ([("delete", 5, 1)], 2)) == b"ac"


# ---------------------------------------------------------------------------
# the fuzz tests
# ---------------------------------------------------------------------------

ZIP_EXAMPLES = 2000
LEGACY_EXAMPLES = 2000
SAFETENSORS_EXAMPLES = 1700
NPZ_EXAMPLES = 400


_zip_clock = WallClock()


@fuzz_settings(ZIP_EXAMPLES)
@given(mutation=zip_mutations)
def test_fuzz_torch_zip(tmp_path, mutation):
    if _zip_clock.spent():
        return
    _zip_clock.run(tmp_path, "fuzz.pt", apply_zip_mutation(base("zip"), mutation))


legacy_mutations = st.one_of(
    st.tuples(st.just("file"), byte_mutations),
    st.tuples(st.just("object"), pickle_mutations),
)

_legacy_clock = WallClock()


@fuzz_settings(LEGACY_EXAMPLES)
@given(mutation=legacy_mutations)
def test_fuzz_torch_legacy(tmp_path, mutation):
    if _legacy_clock.spent():
        return
    data = base("legacy")
    kind, arg = mutation
    if kind == "file":
        data = apply_byte_mutations(data, arg)
    else:
        spans, _records = H.legacy_layout(data)
        start, end = spans[3]           # the object's pickle
        data = data[:start] + apply_pickle_mutations(data[start:end], arg) + data[end:]
    _legacy_clock.run(tmp_path, "fuzz.pt", data)


# safetensors: headers drawn as a consistent layout, then fields replaced

ST_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "C64": 8, "F8_E4M3": 1,
             "F8_E5M2": 1, "F8_E8M0": 1}
_dtype_junk = st.one_of(st.sampled_from(["F4", "F6_E2M3", "F6_E3M2", "f32", "float32", "F33",
                                         "", "C128"]),
                        st.text(max_size=6), st.integers(), st.none())
_dim_junk = st.one_of(st.integers(-3, 9), st.sampled_from([2**31, 2**32, 2**40, 2**62, 2**63,
                                                            2**64 - 1, 2**64, 10**12]),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=2),
                      st.none(), st.booleans())
_shape_junk = st.one_of(st.lists(_dim_junk, max_size=4), st.text(max_size=4), st.integers(),
                        st.none())
_offset_junk = st.one_of(st.integers(-9, 200), st.sampled_from([2**32, 2**63 - 1, 2**63, 2**64 - 1,
                                                               2**64]),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=2))
_offsets_junk = st.one_of(st.lists(_offset_junk, min_size=2, max_size=2),
                          st.lists(_offset_junk, max_size=3), st.none(), st.text(max_size=3))
_json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                           lambda kids: st.lists(kids, max_size=3)
                           | st.dictionaries(st.text(max_size=4), kids, max_size=3),
                           max_leaves=6)
_metadata = st.one_of(st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
                      st.dictionaries(st.text(max_size=6), _json_value, max_size=3), _json_value)

_tensor_spec = st.tuples(st.text(min_size=0, max_size=6), st.sampled_from(sorted(ST_DTYPES)),
                         st.lists(st.integers(0, 4), max_size=3))
_field_change = st.one_of(
    st.tuples(st.just("dtype"), st.integers(0, 7), _dtype_junk),
    st.tuples(st.just("shape"), st.integers(0, 7), _shape_junk),
    st.tuples(st.just("data_offsets"), st.integers(0, 7), _offsets_junk),
    st.tuples(st.just("delete"), st.integers(0, 7), st.sampled_from(["dtype", "shape",
                                                                     "data_offsets"])),
    st.tuples(st.just("extra"), st.integers(0, 7), _json_value),
    st.tuples(st.just("entry"), st.integers(0, 7), _json_value),
)

safetensors_structured = st.fixed_dictionaries({
    "tensors": st.lists(_tensor_spec, max_size=4),
    "order": st.permutations(range(4)),
    "metadata": st.none() | _metadata,
    "changes": st.lists(_field_change, max_size=3),
    "data_delta": st.integers(-16, 16),
    "text": st.none() | byte_mutations,
})


def build_safetensors(spec):
    """A header laid out contiguously from the drawn tensors (in a drawn
    order of their data), with the drawn fields replaced, a correct length
    prefix and a data buffer of the laid-out size plus ``data_delta``."""
    tensors = {}
    for name, dtype, shape in spec["tensors"]:
        tensors.setdefault(name, (dtype, shape))
    names = list(tensors)
    order = [k for k in spec["order"] if k < len(names)]
    header, offset = {}, 0
    for k in order:
        dtype, shape = tensors[names[k]]
        nbytes = int(np.prod(shape, dtype=np.int64)) * ST_DTYPES[dtype]
        header[names[k]] = {"dtype": dtype, "shape": shape,
                            "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    header = {name: header[name] for name in names}      # the header's own order
    for change, index, value in spec["changes"]:
        if not names:
            break
        entry = header[names[index % len(names)]]
        if change != "entry" and not isinstance(entry, dict):
            continue        # an earlier change replaced the entry with a non-object
        if change == "delete":
            entry.pop(value, None)
        elif change == "extra":
            entry["extra"] = value
        elif change == "entry":
            header[names[index % len(names)]] = value
        else:
            entry[change] = value
    if spec["metadata"] is not None:
        header["__metadata__"] = spec["metadata"]
    text = json.dumps(header).encode("utf-8")
    if spec["text"] is not None:
        text = apply_byte_mutations(text, spec["text"])
    data = bytes(range(256)) * (max(0, offset + spec["data_delta"]) // 256 + 1)
    return struct.pack("<Q", len(text)) + text + data[:max(0, offset + spec["data_delta"])]


safetensors_mutations = st.one_of(
    st.tuples(st.just("file"), byte_mutations),
    st.tuples(st.just("header"), safetensors_structured),
)

_st_clock = WallClock()


@fuzz_settings(SAFETENSORS_EXAMPLES)
@given(mutation=safetensors_mutations)
def test_fuzz_safetensors(tmp_path, mutation):
    if _st_clock.spent():
        return
    kind, arg = mutation
    data = apply_byte_mutations(base("safetensors"), arg) if kind == "file" \
        else build_safetensors(arg)
    _st_clock.run(tmp_path, "fuzz.safetensors", data)


# .npy shapes are Python literals: no strings (they would not parse as a header)
_npy_dim = st.one_of(st.integers(-3, 9), st.sampled_from([2**31, 2**32, 2**40, 2**62, 2**63,
                                                          2**64 - 1, 10**12]),
                     st.floats(allow_nan=False, allow_infinity=False), st.none(), st.booleans())
_npy_header_op = st.one_of(
    st.tuples(st.just("descr"), st.sampled_from(["<f4", ">f4", "|O", "<U3", "V8", "<x9", "[('a', '<f4')]",
                                                 "<m8[s]", "<f16", "|b1", "<c8", "|S2"])),
    st.tuples(st.just("shape"), st.lists(_npy_dim, max_size=3)),
    st.tuples(st.just("fortran"), st.sampled_from(["True", "False", "1", "'x'", "None"])),
    st.tuples(st.just("text"), byte_mutations),
)
npz_mutations = st.one_of(
    st.tuples(st.just("file"), byte_mutations),
    st.tuples(st.just("member"), st.integers(0, 3), st.lists(_npy_header_op, min_size=1,
                                                              max_size=3),
              st.integers(-8, 8)),
)


def apply_npz_mutation(data, mutation):
    if mutation[0] == "file":
        return apply_byte_mutations(data, mutation[1])
    _, index, ops, delta = mutation
    records = _zip_records(data)
    name, member = records[index % len(records)]
    header_length = struct.unpack("<H", member[8:10])[0]
    text = member[10:10 + header_length].decode("latin1")
    body = member[10 + header_length:]
    literal = ast.literal_eval(text)
    descr, fortran, shape = repr(literal["descr"]), repr(literal["fortran_order"]), \
        literal["shape"]
    raw = None
    for op in ops:
        if op[0] == "descr":
            descr = op[1] if op[1].startswith("[") else repr(op[1])
        elif op[0] == "shape":
            shape = tuple(op[1])
        elif op[0] == "fortran":
            fortran = op[1]
        else:
            raw = op[1]
    text = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    encoded = text.encode("latin1")
    if raw is not None:
        encoded = apply_byte_mutations(encoded, raw)
    body = body[:max(0, len(body) + delta)] if delta < 0 else body + bytes(delta)
    records[index % len(records)] = (name, H.npy_bytes(encoded, body))
    return _repack(records)


_npz_clock = WallClock()


@fuzz_settings(NPZ_EXAMPLES)
@given(mutation=npz_mutations)
def test_fuzz_npz(tmp_path, mutation):
    if _npz_clock.spent():
        return
    _npz_clock.run(tmp_path, "fuzz.npz", apply_npz_mutation(base("npz"), mutation))

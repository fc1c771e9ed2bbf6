"""skipblocks' .safetensors and .npz files against the safetensors package and
NumPy, and format detection from a file's content.

The oracles: ``safetensors`` (numpy and torch APIs) for .safetensors,
``numpy.savez`` / ``numpy.load`` for .npz, torch's ``.float()`` for the
values of bfloat16 and float8 tensors. skipblocks claims to write
.safetensors byte for byte as the safetensors package does, so those files
are compared as bytes.
"""
import io
import json
import struct

import numpy as np
import pytest
import safetensors
import safetensors.numpy as stn
import safetensors.torch as stt
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import skipblocks as sb
from skipblocks.serialization import _read, read_metadata
from skipblocks.serialization._common import RawTensor
from helpers import is_memory_mapped

# every NumPy dtype safetensors.numpy writes
SAFETENSORS_DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.float16, np.int32,
                      np.uint32, np.float32, np.complex64, np.float64, np.int64, np.uint64]
# torch dtypes NumPy lacks, with their safetensors codes
TORCH_ONLY = {torch.bfloat16: "BF16", torch.float8_e4m3fn: "F8_E4M3",
              torch.float8_e5m2: "F8_E5M2", torch.float8_e8m0fnu: "F8_E8M0"}
# names JSON has to escape, or that sort differently by bytes and by UTF-16
NAMES = ["weight", "na\u00efve.\u03a9mega", "\u65e5\u672c\u8a9e/\u5c64", 'say "hi"',
         "back\\slash", "ctl \x00\x01\x1f\x7f", "nl\n tab\t cr\r bs\b ff\f", "emoji \U0001F600",
         "\u2028\u2029", "\uffff\ue000", "", "Z", "a", "/", "__metadata"]


# -- helpers ---------------------------------------------------------------------------

def _random_array(dtype, rng, shape=(3, 4)):
    """Random bits of a dtype (NaN payloads and subnormals included); bools
    0 or 1."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 256, size=tuple(shape) + (dtype.itemsize,), dtype=np.uint8)
    return raw.view(dtype).reshape(shape).copy()


def _assert_same(actual, expected, *, exact_nan=True):
    """Same dtype, shape and bits (exact_nan=False: any NaN payload where
    expected holds NaN)."""
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    a = np.ascontiguousarray(actual).reshape(-1)
    e = np.ascontiguousarray(expected).reshape(-1)
    if a.dtype.kind in "SU":
        np.testing.assert_array_equal(a, e)
        return
    if a.dtype.kind == "c":
        part = np.dtype(f"{a.dtype.byteorder}f{a.dtype.itemsize // 2}".replace("|", ""))
        a, e = a.view(part), e.view(part)
    if a.dtype.kind == "b":
        a, e = a.view(np.uint8), e.view(np.uint8)
    if a.dtype.kind == "f":
        nan = np.isnan(e)
        np.testing.assert_array_equal(np.isnan(a), nan)
        if not exact_nan:
            a, e = a[~nan], e[~nan]
    uint = np.dtype(f"u{a.dtype.itemsize}")
    np.testing.assert_array_equal(a.view(uint), e.view(uint))


def _assert_same_arrays(loaded, original, **kw):
    assert sorted(loaded) == sorted(original)
    for key in original:
        _assert_same(loaded[key], original[key], **kw)


def _torch_oracle(tensor):
    return tensor.float().numpy() if tensor.dtype in TORCH_ONLY else tensor.numpy()




def _saved_bytes(tensors, **kw):
    buffer = io.BytesIO()
    sb.save(tensors, buffer, format="safetensors", **kw)
    return buffer.getvalue()


def _split(data):
    """(parsed header, data buffer) of safetensors bytes."""
    length = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + length]), data[8 + length:]


def _every_dtype(rng):
    tensors = {f"t_{np.dtype(d).name}": _random_array(d, rng) for d in SAFETENSORS_DTYPES}
    tensors.update({
        "scalar f32": np.array(1.5, np.float32), "scalar bool": np.array(True),
        "scalar u64": np.array(2 ** 64 - 1, np.uint64),
        "empty f32": np.zeros((0, 3), np.float32), "empty i8": np.zeros((2, 0), np.int8),
        "empty 1-d": np.zeros((0,), np.complex64),
    })
    for index, name in enumerate(NAMES):
        tensors[name] = _random_array(SAFETENSORS_DTYPES[index % 4 + 5], rng, (index % 3 + 1,))
    return tensors


# -- 1. the bytes safetensors writes -----------------------------------------------------

METADATA_ONE = {
    "none": None,
    "empty": {},
    "format": {"format": "pt"},
    "escaped": {'k "\\\n\x01\u00fc\U0001F600': 'v\u2028\x00\t"\\'},
}


@pytest.mark.parametrize("metadata", list(METADATA_ONE))
def test_bytes_equal_safetensors_numpy(tmp_path, rng, metadata):
    tensors = _every_dtype(rng)
    path = tmp_path / "x.safetensors"
    sb.save(tensors, path, metadata=METADATA_ONE[metadata])
    assert path.read_bytes() == stn.save(tensors, metadata=METADATA_ONE[metadata])


def test_several_metadata_entries_match_by_content(rng):
    # safetensors writes several metadata entries in a random order: compare parsed
    tensors = _every_dtype(rng)
    metadata = {"format": "pt", "a": "1", "\u00fc": "\x00", "long": "x" * 300}
    ours, theirs = _saved_bytes(tensors, metadata=metadata), stn.save(tensors, metadata=metadata)
    assert len(ours) == len(theirs)
    (header, data), (their_header, their_data) = _split(ours), _split(theirs)
    assert header == their_header and data == their_data
    assert header["__metadata__"] == metadata


NON_CONTIGUOUS = {
    "transposed": lambda b: b.T, "stepped": lambda b: b[:, ::2], "reversed": lambda b: b[::-1],
    "fortran": np.asfortranarray, "broadcast": lambda b: np.broadcast_to(b[0], (3, 6)),
    "big-endian": lambda b: b.astype(">f4"), "big-endian transposed": lambda b: b.astype(">i8").T,
    "big-endian complex": lambda b: (b + 1j).astype(">c8"),
}


@pytest.mark.parametrize("layout", list(NON_CONTIGUOUS))
def test_bytes_of_any_memory_layout_equal_safetensors_of_the_values(rng, layout):
    # safetensors.numpy 0.8 writes a non-contiguous array's raw memory rather
    # than its values, so the oracle is its file of a C-contiguous copy
    array = NON_CONTIGUOUS[layout](rng.standard_normal((4, 6)).astype(np.float32))
    contiguous = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))
    assert _saved_bytes({"x": array}) == stn.save({"x": contiguous})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bytes_equal_safetensors_numpy_for_any_names_and_shapes(data):
    names = data.draw(st.lists(st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
                               max_size=6, unique=True))
    seed = data.draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    tensors = {}
    for name in names:
        dtype = data.draw(st.sampled_from(SAFETENSORS_DTYPES))
        shape = tuple(data.draw(st.lists(st.integers(0, 3), max_size=3)))
        tensors[name] = _random_array(dtype, rng, shape)
    # one entry at most: safetensors orders several randomly; the empty dict
    # has its own test above
    metadata = data.draw(st.none() | st.dictionaries(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=6), min_size=1, max_size=1))
    assert _saved_bytes(tensors, metadata=metadata) == stn.save(tensors, metadata=metadata)


# -- 2. files safetensors writes, read by skipblocks -----------------------------------

@pytest.mark.parametrize("use_mmap", [False, True], ids=["read", "mmap"])
def test_reads_safetensors_numpy_files(tmp_path, rng, use_mmap):
    tensors = _every_dtype(rng)
    path = tmp_path / "x.safetensors"
    stn.save_file(tensors, path, metadata={"format": "np"})
    loaded = sb.load(path, mmap=use_mmap)
    _assert_same_arrays(loaded, tensors)
    if use_mmap:
        assert all(is_memory_mapped(a) for a in loaded.values() if a.size)
    assert read_metadata(path) == {"format": "np"}


def _torch_tensors(rng):
    tensors = {}
    for dtype in TORCH_ONLY:
        if torch.empty((), dtype=dtype).element_size() == 1:
            bits = np.arange(256, dtype=np.uint8)                       # every float8 pattern
        else:
            bits = rng.integers(0, 256, size=2 * 4096, dtype=np.uint8)  # random bfloat16s
        tensors[f"w {TORCH_ONLY[dtype]}"] = torch.from_numpy(bits).view(dtype).reshape(-1, 16)
    tensors.update({"float32": torch.randn(3, 5), "int64": torch.arange(-3, 3),
                    "half": torch.randn(7).half(), "bool": torch.tensor([True, False]),
                    "empty": torch.zeros(0, 4, dtype=torch.float8_e5m2)})
    return tensors


@pytest.mark.parametrize("use_mmap", [False, True], ids=["read", "mmap"])
def test_reads_safetensors_torch_files(tmp_path, rng, use_mmap):
    tensors = _torch_tensors(rng)
    metadata = {"format": "pt", "source": "test", "\u00fc": "\"quoted\""}
    path = tmp_path / "x.safetensors"
    stt.save_file(tensors, path, metadata=metadata)
    header, _ = _split(path.read_bytes())
    assert {header[k]["dtype"] for k in header if k != "__metadata__"} >= set(TORCH_ONLY.values())
    loaded = sb.load(path, mmap=use_mmap)
    assert sorted(loaded) == sorted(tensors)
    for key, tensor in tensors.items():
        _assert_same(loaded[key], _torch_oracle(tensor), exact_nan=tensor.dtype not in TORCH_ONLY)
    assert read_metadata(path) == metadata


@pytest.mark.parametrize("use_mmap", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("dtype", list(TORCH_ONLY), ids=list(TORCH_ONLY.values()))
def test_zero_d_tensors_of_torch_only_dtypes_read_as_0d_arrays(tmp_path, dtype, use_mmap):
    tensors = {"scalar": torch.tensor(2.0).to(dtype), "vector": torch.ones(3).to(dtype)}
    path = tmp_path / "x.safetensors"
    stt.save_file(tensors, path)
    loaded = sb.load(path, mmap=use_mmap)
    for key, tensor in tensors.items():
        _assert_same(loaded[key], _torch_oracle(tensor))


def test_safetensors_mmap_is_copy_on_write(tmp_path):
    path = tmp_path / "x.safetensors"
    stn.save_file({"w": np.zeros(64, np.float32)}, path)
    before = path.read_bytes()
    loaded = sb.load(path, mmap=True)
    loaded["w"][:] = 3.0
    assert (loaded["w"] == 3.0).all() and path.read_bytes() == before


# -- 3. files skipblocks writes, read by safetensors ----------------------------------

@pytest.mark.parametrize("metadata", [None, {"format": "pt", "epoch": "3", "\u00fc": "\n"}],
                         ids=["no metadata", "metadata"])
def test_safetensors_reads_skipblocks_files(tmp_path, rng, metadata):
    tensors = _every_dtype(rng)
    tensors["transposed"] = rng.standard_normal((3, 5)).T
    tensors["big-endian"] = rng.standard_normal(4).astype(">f8")
    path = tmp_path / "x.safetensors"
    sb.save(tensors, path, metadata=metadata)
    expected = {k: v.astype(v.dtype.newbyteorder("="), order="C") for k, v in tensors.items()}
    with safetensors.safe_open(path, "numpy") as opened:
        assert sorted(opened.keys()) == sorted(tensors)
        assert opened.metadata() == metadata
        _assert_same_arrays({k: opened.get_tensor(k) for k in opened.keys()}, expected)
    _assert_same_arrays(stn.load_file(path), expected)


def test_torch_only_dtypes_resaved_as_bits_read_identically(tmp_path, rng):
    tensors = _torch_tensors(rng)
    tensors.update({"scalar bf16": torch.tensor(2.5, dtype=torch.bfloat16),
                    "scalar f8": torch.tensor(-3.0).to(torch.float8_e4m3fn)})
    source = tmp_path / "source.safetensors"
    stt.save_file(tensors, source, metadata={"format": "pt"})
    fmt, raw, metadata = _read(source, keep_bits=True)
    assert fmt == "safetensors" and metadata == {"format": "pt"}
    for key, tensor in tensors.items():
        if tensor.dtype in TORCH_ONLY:
            assert isinstance(raw[key], RawTensor) and raw[key].shape == tuple(tensor.shape), key
    copy = tmp_path / "copy.safetensors"
    sb.save(raw, copy, metadata=metadata)
    loaded = stt.load_file(copy)
    for key, tensor in tensors.items():
        assert loaded[key].dtype == tensor.dtype and loaded[key].shape == tensor.shape, key
        bits = {1: torch.uint8, 2: torch.int16, 4: torch.int32,
                8: torch.int64}[tensor.element_size()]
        assert torch.equal(loaded[key].view(bits), tensor.view(bits)), key
    assert copy.read_bytes() == source.read_bytes()


# -- 4. what safetensors cannot hold ------------------------------------------------------

WRITE_ERRORS = {
    "nested dict": ({"outer": {"inner": np.zeros(2)}}, None, "'outer'"),
    "float": ({"lr": 0.5}, None, "'lr'"),
    "list": ({"ids": [1, 2]}, None, "'ids'"),
    "torch tensor": ({"t": torch.zeros(2)}, None, "'t'"),
    "complex128": ({"half": np.zeros(2, np.float16), "wave": np.zeros(2, np.complex128)}, None,
                   "'wave'"),
    "string array": ({"labels": np.array(["a", "b"])}, None, "'labels'"),
    "reserved name": ({"__metadata__": np.zeros(1)}, None, "'__metadata__'"),
    "int metadata value": ({"w": np.zeros(1)}, {"epoch": 3}, "epoch"),
    "None metadata value": ({"w": np.zeros(1)}, {"notes": None}, "notes"),
    "int metadata key": ({"w": np.zeros(1)}, {7: "seven"}, "7"),
}


@pytest.mark.parametrize("case", list(WRITE_ERRORS))
def test_write_errors_name_the_key_and_leave_no_file(tmp_path, case):
    tensors, metadata, named = WRITE_ERRORS[case]
    with pytest.raises((TypeError, ValueError)) as info:
        sb.save(tensors, tmp_path / "x.safetensors", metadata=metadata)
    assert named in str(info.value), str(info.value)
    assert list(tmp_path.iterdir()) == []


# -- 5. npz ---------------------------------------------------------------------------------

def _npz_arrays(rng):
    base = rng.standard_normal((4, 6))
    arrays = {f"a_{np.dtype(d).name}": _random_array(d, rng) for d in SAFETENSORS_DTYPES}
    arrays.update({
        "complex128": _random_array(np.complex128, rng), "fortran": np.asfortranarray(base),
        "transposed": base.T, "stepped": base[::2, ::-3], "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), np.int16), "strings": np.array(["ab", "\u00fc\u65e5", ""]),
        "bytes": np.array([b"x\x00y", b""]), "big-endian": base.astype(">f8"),
        "big-endian fortran": np.asfortranarray(base.astype(">i4")),
        "na\u00efve name": np.ones(2, np.float32),
    })
    return arrays


def test_npz_written_by_skipblocks_reads_in_numpy(tmp_path, rng):
    arrays = _npz_arrays(rng)
    path = tmp_path / "x.npz"
    sb.save(arrays, path)
    with np.load(path, allow_pickle=False) as npz:
        assert npz.files == list(arrays)
        _assert_same_arrays({k: npz[k] for k in npz.files}, arrays)


@pytest.mark.parametrize("use_mmap", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_npz_written_by_numpy_reads_in_skipblocks(tmp_path, rng, writer, use_mmap):
    arrays = _npz_arrays(rng)
    path = tmp_path / "x.npz"
    writer(path, **arrays)
    loaded = sb.load(path, mmap=use_mmap)
    assert list(loaded) == list(arrays)
    _assert_same_arrays(loaded, arrays)
    assert loaded["fortran"].flags.f_contiguous
    # stored members are views of the map; compressed ones are inflated into memory
    backed = {k: is_memory_mapped(a) for k, a in loaded.items() if a.size}
    assert backed == {k: use_mmap and writer is np.savez for k in backed}


def test_npz_mmap_is_copy_on_write(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, w=np.zeros(64))
    before = path.read_bytes()
    loaded = sb.load(path, mmap=True)
    loaded["w"][:] = 3.0
    assert (loaded["w"] == 3.0).all() and path.read_bytes() == before


@pytest.mark.parametrize("use_mmap", [False, True], ids=["read", "mmap"])
def test_npz_object_array_is_refused(tmp_path, use_mmap):
    path = tmp_path / "x.npz"
    np.savez(path, fine=np.ones(2), objects=np.array([1, "two", None], dtype=object))
    with pytest.raises(sb.WeightsFileError, match="pickle|object") as info:
        sb.load(path, mmap=use_mmap)
    assert str(info.value).startswith(str(path)) and "objects" in str(info.value)


def test_npz_keys_numpy_savez_cannot_take_as_keywords(tmp_path):
    arrays = {"file": np.arange(3), "allow_pickle": np.ones(2, bool), "args": np.zeros(1),
              "a/b": np.ones(1)}
    path = tmp_path / "x.npz"
    sb.save(arrays, path)
    with np.load(path, allow_pickle=False) as npz:
        _assert_same_arrays({k: npz[k] for k in npz.files}, arrays)
    loaded = sb.load(path)
    assert list(loaded) == list(arrays)
    _assert_same_arrays(loaded, arrays)


# -- 6. format detection -------------------------------------------------------------------

def test_safetensors_file_named_pt_is_read_as_safetensors(tmp_path, rng):
    tensors = {"w": _random_array(np.float32, rng)}
    path = tmp_path / "x.pt"
    stn.save_file(tensors, path, metadata={"format": "np"})
    _assert_same_arrays(sb.load(path), tensors)
    assert read_metadata(path) == {"format": "np"}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_file_named_safetensors_is_read_as_torch(tmp_path, legacy):
    original = {"w": torch.randn(3, 2), "epoch": 4}
    path = tmp_path / "x.safetensors"
    torch.save(original, path, _use_new_zipfile_serialization=not legacy)
    loaded = sb.load(path)
    assert loaded["epoch"] == 4
    _assert_same(loaded["w"], original["w"].numpy())


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_npz_named_bin_is_read_as_npz(tmp_path, rng, writer):
    arrays = {"w": _random_array(np.int32, rng), "b": _random_array(np.float64, rng)}
    path = tmp_path / "x.bin"
    with open(path, "wb") as f:
        writer(f, **arrays)
    loaded = sb.load(path)
    assert list(loaded) == list(arrays)
    _assert_same_arrays(loaded, arrays)


def test_unknown_extension_is_refused_listing_the_extensions(tmp_path):
    with pytest.raises(ValueError) as info:
        sb.save({"w": np.ones(2)}, tmp_path / "x.weird")
    for extension in (".weird", ".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".npz"):
        assert extension in str(info.value), extension
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["x.weird", "x.pt", "x.safetensors"])
def test_format_argument_overrides_the_extension(tmp_path, rng, name):
    arrays = {"w": _random_array(np.float32, rng)}
    path = tmp_path / name
    sb.save(arrays, path, format="npz")
    with np.load(path, allow_pickle=False) as npz:
        _assert_same_arrays({k: npz[k] for k in npz.files}, arrays)
    _assert_same_arrays(sb.load(path), arrays)


def test_format_safetensors_on_a_bin_path(tmp_path, rng):
    arrays = {"w": _random_array(np.float32, rng)}
    path = tmp_path / "x.bin"
    sb.save(arrays, path, format="safetensors")
    assert path.read_bytes() == stn.save(arrays)


def test_metadata_is_only_for_safetensors(tmp_path):
    for name in ("x.pt", "x.npz"):
        with pytest.raises(ValueError, match="safetensors"):
            sb.save({"w": np.ones(1)}, tmp_path / name, metadata={"a": "b"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["torch zip", "torch legacy", "npz", "safetensors without"])
def test_read_metadata_of_a_file_without_metadata_is_empty(tmp_path, kind):
    path = tmp_path / "x.bin"
    if kind.startswith("torch"):
        torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=kind == "torch zip")
    elif kind == "npz":
        with open(path, "wb") as f:
            np.savez(f, w=np.ones(2))
    else:
        stn.save_file({"w": np.ones(2)}, path)
    assert read_metadata(path) == {}

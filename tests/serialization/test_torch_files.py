"""skipblocks reads the files torch writes, and torch reads the files skipblocks
writes, in torch's zip format and (reading only) its legacy format.

torch is the oracle throughout: every file read here was written by
``torch.save`` during the test, and every file skipblocks writes is checked
with ``torch.load(weights_only=True)``. Values are compared bit for bit
(``_assert_same``), so a lost sign of zero or a changed NaN payload counts as
a difference; only values decoded from dtypes NumPy lacks may carry another
NaN payload than torch's ``.float()`` gives.
"""
import io
import struct
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks.serialization import _common, _read
from skipblocks.serialization._common import RawTensor
from helpers import is_memory_mapped

# Every dtype torch 2.13 stores, with the NumPy dtype skipblocks returns it as.
STORAGE_DTYPES = {
    torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16,
    torch.bfloat16: np.float32, torch.int64: np.int64, torch.int32: np.int32,
    torch.int16: np.int16, torch.int8: np.int8, torch.uint8: np.uint8, torch.bool: np.bool_,
    torch.complex128: np.complex128, torch.complex64: np.complex64,
    torch.uint16: np.uint16, torch.uint32: np.uint32, torch.uint64: np.uint64,
    torch.float8_e4m3fn: np.float32, torch.float8_e5m2: np.float32,
    torch.float8_e4m3fnuz: np.float32, torch.float8_e5m2fnuz: np.float32,
    torch.float8_e8m0fnu: np.float32, torch.complex32: np.complex64,
}
FLOAT8 = [torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz,
          torch.float8_e8m0fnu]
# dtypes NumPy has no type for: skipblocks decodes them (or keeps their bits)
EXOTIC = [torch.bfloat16, torch.complex32] + FLOAT8
# the NumPy dtypes skipblocks writes to torch files
NUMPY_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                np.uint8, np.uint16, np.uint32, np.uint64, np.bool_, np.complex64, np.complex128]
FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])

# torch warns whenever a complex32 tensor is made; the oracle's noise, not skipblocks'
pytestmark = pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")


def _ids(dtypes):
    return [str(d).replace("torch.", "") for d in dtypes]


# -- helpers -----------------------------------------------------------------------

def _save(obj, path, legacy=False):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def _random_tensor(dtype, rng, shape=(5, 7)):
    """A tensor of random bits (every bit pattern is a value torch stores,
    NaN payloads and subnormals included), with zeros of both signs,
    infinities and NaN written into float tensors."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    if dtype == torch.bool:
        raw = rng.integers(0, 2, size=shape, dtype=np.uint8)
    else:
        raw = rng.integers(0, 256, size=shape[:-1] + (shape[-1] * itemsize,), dtype=np.uint8)
    tensor = torch.from_numpy(raw).view(dtype).clone()
    if dtype.is_floating_point:
        specials = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1.0])
        tensor.view(-1)[:6] = specials.to(dtype)
    return tensor


def _oracle(tensor):
    """What skipblocks.load must return for a tensor: torch's own NumPy
    view, or for the dtypes NumPy lacks torch's conversion to float32
    (complex32: complex64)."""
    tensor = tensor.detach()
    if tensor.dtype == torch.complex32:
        return tensor.to(torch.complex64).numpy()
    if tensor.dtype in EXOTIC:
        return tensor.float().numpy()
    return tensor.numpy()


def _assert_same(actual, expected, *, exact_nan=True):
    """Same dtype, shape and bits. exact_nan=False: NaN where expected has
    NaN (any payload), identical bits elsewhere."""
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    a = np.ascontiguousarray(actual).reshape(-1)
    e = np.ascontiguousarray(expected).reshape(-1)
    if a.dtype.kind == "c":
        part = np.dtype(f"f{a.dtype.itemsize // 2}")
        a, e = a.view(part), e.view(part)
    if a.dtype.kind == "b":
        a, e = a.view(np.uint8), e.view(np.uint8)
    uint = np.dtype(f"u{a.dtype.itemsize}")
    if a.dtype.kind == "f":
        nan = np.isnan(e)
        np.testing.assert_array_equal(np.isnan(a), nan)
        if not exact_nan:
            a, e = a[~nan], e[~nan]
    np.testing.assert_array_equal(a.view(uint), e.view(uint))


def _assert_same_as_torch(actual, tensor):
    _assert_same(actual, _oracle(tensor), exact_nan=tensor.dtype not in EXOTIC)


def _assert_python_equal(loaded, original, where="obj"):
    """A loaded object equals what torch saved: the same container types,
    keys in the same order, _metadata, scalars of the same type, tensors as
    arrays equal to the oracle."""
    if isinstance(original, torch.Tensor):
        _assert_same_as_torch(loaded, original)
        return
    assert type(loaded) is type(original), (where, type(loaded), type(original))
    if isinstance(original, dict):
        assert list(loaded) == list(original), where
        assert getattr(loaded, "_metadata", None) == getattr(original, "_metadata", None), where
        for key in original:
            _assert_python_equal(loaded[key], original[key], f"{where}[{key!r}]")
    elif isinstance(original, (list, tuple)):
        assert len(loaded) == len(original), where
        for index, (a, b) in enumerate(zip(loaded, original)):
            _assert_python_equal(a, b, f"{where}[{index}]")
    elif isinstance(original, float) and original != original:
        assert loaded != loaded, where
    else:
        assert loaded == original, (where, loaded, original)


def _strides_in_bytes(tensor, array):
    return tuple(s * array.itemsize for s in tensor.stride())




# -- 1. every storage dtype torch writes ----------------------------------------------

@FORMATS
@pytest.mark.parametrize("dtype", list(STORAGE_DTYPES), ids=_ids(STORAGE_DTYPES))
def test_every_storage_dtype_reads_as_torch_stores_it(tmp_path, rng, dtype, legacy):
    tensor = _random_tensor(dtype, rng)
    loaded = sb.load(_save({"t": tensor}, tmp_path / "x.pt", legacy))["t"]
    assert loaded.dtype == STORAGE_DTYPES[dtype]
    _assert_same_as_torch(loaded, tensor)


@FORMATS
@pytest.mark.parametrize("dtype", FLOAT8, ids=_ids(FLOAT8))
def test_float8_every_bit_pattern_decodes_as_torch(tmp_path, dtype, legacy):
    tensor = torch.arange(256, dtype=torch.uint8).view(dtype)
    loaded = sb.load(_save({"t": tensor}, tmp_path / "x.pt", legacy))["t"]
    _assert_same(loaded, tensor.float().numpy(), exact_nan=False)


def test_bfloat16_every_bit_pattern_decodes_as_torch(tmp_path):
    tensor = torch.arange(-2 ** 15, 2 ** 15, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    loaded = sb.load(_save({"t": tensor}, tmp_path / "x.pt"))["t"]
    _assert_same(loaded, tensor.float().numpy(), exact_nan=False)


@pytest.mark.parametrize("dtype", EXOTIC, ids=_ids(EXOTIC))
def test_decoding_emits_no_warning(tmp_path, monkeypatch, dtype):
    # A warning raised inside load under -W error (or warnings filters set to
    # "error" by an application) turns a valid file into a WeightsFileError.
    # The decoding tables are cached: start from none so they are built here.
    monkeypatch.setattr(_common, "_TABLES", {})
    path = _save({"t": torch.arange(256, dtype=torch.uint8).view(dtype)
                  if torch.empty((), dtype=dtype).element_size() == 1
                  else torch.ones(4, dtype=dtype)}, tmp_path / "x.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb.load(path)


# -- 2. views of one storage ----------------------------------------------------------

def _views(dtype, rng):
    base = _random_tensor(dtype, rng, shape=(24,))
    matrix = base.view(4, 6)
    return OrderedDict([
        ("base", base), ("matrix", matrix), ("transposed", matrix.t()),
        ("block", matrix[1:3, 2:5]), ("stepped", matrix[:, ::2]), ("offset", base[5:]),
        ("scalar", base[7]), ("expanded", base[2:5].expand(4, 3)),
        ("empty view", base[6:6].view(0, 3)), ("empty", torch.zeros(0, 3, dtype=dtype)),
    ])


VIEW_DTYPES = [torch.float32, torch.int16, torch.bfloat16, torch.float8_e5m2]


@pytest.mark.parametrize("legacy, use_mmap", [(False, False), (False, True), (True, False)],
                         ids=["zip", "zip-mmap", "legacy"])
@pytest.mark.parametrize("dtype", VIEW_DTYPES, ids=_ids(VIEW_DTYPES))
def test_views_keep_shape_strides_and_share_memory(tmp_path, rng, dtype, legacy, use_mmap):
    views = _views(dtype, rng)
    loaded = sb.load(_save(views, tmp_path / "x.pt", legacy), mmap=use_mmap)
    assert list(loaded) == list(views)
    for key, tensor in views.items():
        _assert_same_as_torch(loaded[key], tensor)
        assert loaded[key].strides == _strides_in_bytes(tensor, loaded[key]), key
    base = loaded["base"]
    for key in views:
        if key != "base" and views[key].numel():
            assert np.shares_memory(base, loaded[key]), key
    if use_mmap and dtype not in EXOTIC:
        # decoded dtypes are converted into memory; the others view the map
        assert all(is_memory_mapped(loaded[k]) for k in views if views[k].numel())
    # a write through one view shows in every other, as it does in torch
    base[8] = 2
    views["base"][8] = 2
    for key, tensor in views.items():
        _assert_same_as_torch(loaded[key], tensor)


def test_legacy_file_with_mmap_is_refused_naming_the_format(tmp_path):
    path = _save({"t": torch.ones(3)}, tmp_path / "x.pt", legacy=True)
    with pytest.raises(sb.WeightsFileError, match="legacy") as info:
        sb.load(path, mmap=True)
    assert str(info.value).startswith(str(path))


def test_mmap_is_copy_on_write(tmp_path):
    path = _save({"t": torch.zeros(64)}, tmp_path / "x.pt")
    before = path.read_bytes()
    loaded = sb.load(path, mmap=True)
    loaded["t"][:] = 7.0
    assert (loaded["t"] == 7.0).all()
    assert path.read_bytes() == before


@FORMATS
def test_conjugate_and_negative_views_read_as_their_values(tmp_path, rng, legacy):
    # torch stores conj() and _neg_view() lazily: the storage holds the
    # original values and the tensor carries a flag skipblocks must apply
    complex_values = torch.from_numpy(rng.standard_normal((3, 4))
                                      + 1j * rng.standard_normal((3, 4)))
    real_values = torch.from_numpy(rng.standard_normal(5).astype(np.float32))
    views = {"values": complex_values, "conj": complex_values.conj(),
             "conj transposed": complex_values.t().conj(), "real": real_values,
             "neg": torch._neg_view(real_values)}
    assert views["conj"].is_conj() and views["neg"].is_neg()
    loaded = sb.load(_save(views, tmp_path / "x.pt", legacy))
    for key, tensor in views.items():
        _assert_same(loaded[key], tensor.resolve_conj().resolve_neg().numpy())


STORAGES = {
    "typed storage": lambda: torch.arange(6, dtype=torch.float32).storage(),
    "untyped storage": lambda: torch.arange(6, dtype=torch.int16).untyped_storage(),
}


@FORMATS
@pytest.mark.parametrize("kind", list(STORAGES))
def test_bare_storage_is_an_array_or_refused(tmp_path, kind, legacy):
    # torch.save accepts a storage as a value; what comes back must be data
    # (the storage's elements as a 1-D array) or a WeightsFileError, never a
    # reader-internal object
    storage = STORAGES[kind]()
    path = _save({"s": storage}, tmp_path / "x.pt", legacy)
    try:
        loaded = sb.load(path)
    except sb.WeightsFileError as error:
        assert "storage" in str(error).lower()
        return
    value = loaded["s"]
    assert isinstance(value, np.ndarray), type(value)
    if isinstance(storage, torch.TypedStorage):
        expected = torch.tensor([], dtype=storage.dtype).set_(storage).numpy()
    else:
        expected = np.frombuffer(bytes(storage), dtype=np.uint8)
    _assert_same(value, expected)


# -- 3. parameters and module state_dicts -------------------------------------------

@FORMATS
def test_parameters_read_as_arrays(tmp_path, legacy):
    tagged = nn.Parameter(torch.randn(2, 3))
    tagged.note = "kept by torch, dropped by skipblocks"   # pickled via _rebuild_from_type_v2
    attributed = torch.randn(4)
    attributed.note = 5
    params = {"weight": nn.Parameter(torch.randn(3, 2)),
              "frozen": nn.Parameter(torch.randn(2), requires_grad=False),
              "tagged": tagged, "attributed": attributed, "weight.T": tagged.t()}
    loaded = sb.load(_save(params, tmp_path / "x.pt", legacy))
    assert type(loaded) is dict and list(loaded) == list(params)
    for key, tensor in params.items():
        _assert_same_as_torch(loaded[key], tensor)
    assert np.shares_memory(loaded["tagged"], loaded["weight.T"])


@FORMATS
def test_module_state_dict_keeps_order_and_metadata(tmp_path, legacy):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4, 2))
    model(torch.randn(2, 3, 3, 3))      # training step: running stats, num_batches_tracked
    state_dict = model.state_dict()
    loaded = sb.load(_save(state_dict, tmp_path / "x.pt", legacy))
    assert type(loaded) is OrderedDict
    assert list(loaded) == list(state_dict)
    assert loaded._metadata == state_dict._metadata
    assert type(loaded._metadata) is type(state_dict._metadata)
    for key, tensor in state_dict.items():
        _assert_same_as_torch(loaded[key], tensor)
    tracked = loaded["1.num_batches_tracked"]
    assert tracked.dtype == np.int64 and tracked.shape == () and tracked == 1


# -- 4. checkpoints ----------------------------------------------------------------------

def _checkpoint():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    state_dict = model.state_dict()
    optimizer = {
        "state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.randn(2, 3)},
                  1: {"step": torch.tensor(5.0), "exp_avg": torch.randn(2)}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                          "weight_decay": None, "name": "main", "params": [0, 1],
                          "nested": [(1, [2.5, None]), ("x", ())]}],
    }
    return {"epoch": 3, "state_dict": state_dict, "optimizer": optimizer,
            "mask_values": [0, 1], "best": 0.5, "flags": {1, 2}, "blob": b"\x00\xff",
            "c": 1 + 2j, "worst": float("nan"), "huge": 2 ** 70, "negative": -2 ** 40,
            "done": True, "bytes array": bytearray(b"\x00\x80"),
            "name": "r\u00e9sum\u00e9 \U0001F600"}


@FORMATS
def test_checkpoint_comes_back_whole(tmp_path, legacy):
    checkpoint = _checkpoint()
    loaded = sb.load(_save(checkpoint, tmp_path / "x.pt", legacy))
    _assert_python_equal(loaded, checkpoint)
    assert type(loaded["flags"]) is set and type(loaded["c"]) is complex
    assert type(loaded["blob"]) is bytes and type(loaded["epoch"]) is int
    assert type(loaded["optimizer"]["param_groups"][0]["betas"]) is tuple


# -- 5. big-endian files ----------------------------------------------------------------

def _rewrite_big_endian(source, target, itemsize):
    """The torch zip file ``source`` as a big-endian machine writes it:
    byteorder ``big`` and every storage's elements byte-swapped. Records
    stay stored, their data at 64-byte aligned offsets as torch puts them."""
    with zipfile.ZipFile(source) as original, open(target, "wb") as out:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as rewritten:
            for info in original.infolist():
                data = original.read(info)
                parts = info.filename.split("/")
                if parts[-1] == "byteorder":
                    assert data == b"little"
                    data = b"big"
                elif len(parts) == 3 and parts[1] == "data":
                    data = np.frombuffer(data, dtype=f"u{itemsize}").byteswap().tobytes()
                record = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
                header = 30 + len(info.filename.encode())
                pad = (-(out.tell() + header + 4)) % 64
                record.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
                rewritten.writestr(record, data)
    return target


BIG_ENDIAN_DTYPES = [torch.float32, torch.int64, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("use_mmap", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("dtype", BIG_ENDIAN_DTYPES, ids=_ids(BIG_ENDIAN_DTYPES))
def test_big_endian_file_reads_as_torch_reads_it(tmp_path, rng, dtype, use_mmap):
    tensor = _random_tensor(dtype, rng, shape=(4, 6))
    original = {"t": tensor, "view": tensor.t()[1:], "scalar": tensor[2, 3]}
    little = _save(original, tmp_path / "little.pt")
    big = _rewrite_big_endian(little, tmp_path / "big.pt", tensor.element_size())
    oracle = torch.load(big, weights_only=True)
    # the rewrite is right only if torch undoes it
    for key in original:
        _assert_same(_oracle(oracle[key]), _oracle(original[key]))
    loaded = sb.load(big, mmap=use_mmap)
    for key in original:
        _assert_same_as_torch(loaded[key], oracle[key])
        assert loaded[key].strides == _strides_in_bytes(oracle[key], loaded[key])
    assert np.shares_memory(loaded["t"], loaded["view"])
    assert np.shares_memory(loaded["t"], loaded["scalar"])


# -- 6. files skipblocks writes, read by torch ----------------------------------------

def _random_array(dtype, rng, shape=(3, 5)):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 256, size=shape[:-1] + (shape[-1] * dtype.itemsize,), dtype=np.uint8)
    return raw.view(dtype).copy()


def _numpy_state_dict(rng):
    state_dict = OrderedDict((np.dtype(d).name, _random_array(d, rng)) for d in NUMPY_DTYPES)
    base = rng.standard_normal((4, 6)).astype(np.float32)
    state_dict.update([
        ("transposed", base.T), ("stepped", base[:, ::2]), ("offset", base[1:, 2:]),
        ("rows stepped", base[::2, 1::3]), ("scalar", np.array(2.5)),
        ("scalar view", base[1, 2, ...]), ("broadcast", np.broadcast_to(base[0], (3, 6))),
        ("empty", np.zeros((0, 3), np.float32)), ("empty int", np.zeros((2, 0, 4), np.int8)),
        ("big-endian", base.astype(">f4")),
        ("big-endian int", np.arange(6, dtype=">i8").reshape(2, 3)),
        ("big-endian complex", (base + 1j).astype(">c16")),
        ("fortran", np.asfortranarray(base)), ("reversed", base[::-1, ::-1]),
    ])
    state_dict._metadata = OrderedDict([("", {"version": 1}), ("layer", {"version": 2})])
    return state_dict


# arrays that are not views of a C-contiguous buffer of their dtype: written
# as contiguous copies, so only their values and shapes carry over
_COPIED = {"fortran", "reversed", "big-endian complex"}


def _assert_torch_holds(tensor, array, key):
    """torch's tensor has the array's dtype (native order), shape, bits and,
    for views of a C-contiguous buffer, strides."""
    assert isinstance(tensor, torch.Tensor), key
    expected = array.astype(array.dtype.newbyteorder("=")) if not array.dtype.isnative else array
    assert tensor.dtype == torch.from_numpy(np.zeros(1, expected.dtype)).dtype, key
    assert tuple(tensor.shape) == array.shape, key
    _assert_same(tensor.numpy(), expected)
    if array.size and key not in _COPIED:
        assert _strides_in_bytes(tensor, array) == array.strides, key


def _assert_torch_equal_to_numpy(loaded, original, where="obj", key=None):
    if isinstance(original, np.ndarray):
        _assert_torch_holds(loaded, original, key)
        return
    if isinstance(original, np.generic):          # NumPy scalars are written as Python numbers
        original = original.item()
    assert type(loaded) is type(original), (where, type(loaded), type(original))
    if isinstance(original, dict):
        assert list(loaded) == list(original), where
        assert getattr(loaded, "_metadata", None) == getattr(original, "_metadata", None), where
        for key in original:
            _assert_torch_equal_to_numpy(loaded[key], original[key], f"{where}[{key!r}]", key)
    elif isinstance(original, (list, tuple)):
        assert len(loaded) == len(original), where
        for index, (a, b) in enumerate(zip(loaded, original)):
            _assert_torch_equal_to_numpy(a, b, f"{where}[{index}]", index)
    else:
        assert loaded == original, (where, loaded, original)


@pytest.mark.parametrize("use_mmap", [False, True], ids=["torch.load", "torch.load-mmap"])
def test_saved_state_dict_reads_in_torch(tmp_path, rng, use_mmap):
    state_dict = _numpy_state_dict(rng)
    path = tmp_path / "x.pt"
    sb.save(state_dict, path)
    loaded = torch.load(path, weights_only=True, mmap=use_mmap)
    assert type(loaded) is OrderedDict
    _assert_torch_equal_to_numpy(loaded, state_dict)


@pytest.mark.parametrize("use_mmap", [False, True], ids=["torch.load", "torch.load-mmap"])
def test_saved_checkpoint_reads_in_torch(tmp_path, rng, use_mmap):
    checkpoint = {
        "epoch": 3, "state_dict": _numpy_state_dict(rng),
        "optimizer": {"state": {0: {"step": np.array(5.0), "exp_avg": rng.standard_normal(3)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "wd": None,
                                        "params": [0], "long": tuple(range(7))}]},
        "mask_values": [0, 1], "best": 0.5, "flags": {1, 2, ("a", 3)}, "blob": b"\x00\xff",
        "bytes array": bytearray(b"\x00\x80\xff"), "c": 1 + 2j, "huge": 2 ** 100,
        "negative": -2 ** 40, "small": [-1, 255, 256, 65535, 65536, 2 ** 31],
        "inf": float("inf"), "done": False, "empty": ((), [], {}, set(), ""),
        "numpy scalars": [np.float32(0.25), np.int64(-3), np.bool_(True), np.complex64(1j)],
        "long list": list(range(2500)), "many keys": {f"k{i}": i for i in range(1500)},
        "name": "r\u00e9sum\u00e9 \U0001F600", "none": None,
    }
    path = tmp_path / "x.ckpt"
    sb.save(checkpoint, path)
    _assert_torch_equal_to_numpy(torch.load(path, weights_only=True, mmap=use_mmap), checkpoint)


def _float32_view_of_bytes(rng):
    # a float32 array viewing a uint8 buffer that views bytes: the layout
    # skipblocks' own readers return
    raw = np.frombuffer(bytearray(rng.standard_normal(24).astype(np.float32).tobytes()), np.uint8)
    return raw.view(np.float32)


BASES = {
    "owning array": lambda rng: rng.standard_normal(24).astype(np.float32),
    "reshaped array": lambda rng: rng.standard_normal((2, 12)).astype(np.float32),
    "frombuffer": lambda rng: np.frombuffer(
        bytearray(rng.standard_normal(24).astype(np.float32).tobytes()), np.float32),
    "dtype view of bytes": _float32_view_of_bytes,
}


@pytest.mark.parametrize("use_mmap", [False, True], ids=["torch.load", "torch.load-mmap"])
@pytest.mark.parametrize("base_kind", list(BASES))
def test_views_of_one_array_share_one_storage(tmp_path, rng, base_kind, use_mmap):
    base = BASES[base_kind](rng)
    matrix = base.reshape(4, 6)
    arrays = {"whole": base, "rows": matrix[1:], "transposed": matrix.T,
              "stepped": matrix[:, ::3], "scalar": matrix[2, 3, ...], "tail": base.reshape(-1)[5:]}
    path = tmp_path / "x.pt"
    sb.save(arrays, path)
    loaded = torch.load(path, weights_only=True, mmap=use_mmap)
    pointer = loaded["whole"].untyped_storage().data_ptr()
    assert {k: t.untyped_storage().data_ptr() == pointer for k, t in loaded.items()} == \
        {k: True for k in arrays}
    assert loaded["whole"].untyped_storage().nbytes() == base.nbytes
    for key, array in arrays.items():
        _assert_torch_holds(loaded[key], array, key)
    loaded["whole"].view(-1)[9] = 100.0            # element [1, 3] of the matrix
    assert loaded["rows"][0, 3] == 100.0 and loaded["transposed"][3, 1] == 100.0
    assert loaded["stepped"][1, 1] == 100.0 and loaded["tail"][4] == 100.0


@pytest.mark.parametrize("name", ["x.pt", "model.pth", "mod\u00e8le \u65e5\u672c.ckpt",
                                  "weights.bin"])
def test_records_are_stored_at_64_byte_offsets(tmp_path, rng, name):
    path = tmp_path / name
    sb.save({"a": rng.standard_normal(3), "b": np.arange(5, dtype=np.int8),
             "c": np.zeros((0,)), "d": np.ones((7, 3), np.float16)}, path)
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        infos = archive.infolist()
        assert infos
        for info in infos:
            assert info.compress_type == zipfile.ZIP_STORED, info.filename
            raw.seek(info.header_offset)
            header = raw.read(30)
            assert header[:4] == b"PK\x03\x04"
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_length + extra_length
            assert start % 64 == 0, (info.filename, start)
    assert torch.load(path, weights_only=True, mmap=True)["d"].shape == (7, 3)


def _torch_round_trip_fixture(rng):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    base = torch.from_numpy(rng.standard_normal(24))
    matrix = base.view(4, 6)
    return {
        "epoch": 3, "state_dict": model.state_dict(),
        "views": [base, matrix.t(), base[5:], matrix[1:3, ::2], base[2:5].expand(3, 3), base[7]],
        "bytes": torch.arange(10, dtype=torch.uint8), "mask": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3),
        "optimizer": {"lr": 0.1, "betas": (0.9, 0.99), "none": None, "flags": {1, 2},
                      "blob": b"\x00\xff", "c": 1 + 2j},
    }


def _assert_torch_identical(a, b, layout, where="obj"):
    """a and b hold equal objects; tensors of equal dtype, shape, strides and
    bits. Differences in storage layout (offset, storage size) are appended
    to ``layout`` so that one run reports all of them."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert (a.dtype, a.shape, a.stride()) == (b.dtype, b.shape, b.stride()), where
        _assert_same(b.numpy(), a.numpy())
        if a.numel():
            if a.storage_offset() != b.storage_offset():
                layout.append(f"{where}: storage offset {b.storage_offset()}, "
                              f"torch wrote {a.storage_offset()}")
            if a.untyped_storage().nbytes() != b.untyped_storage().nbytes():
                layout.append(f"{where}: storage of {b.untyped_storage().nbytes()} bytes, "
                              f"torch wrote {a.untyped_storage().nbytes()}")
        return
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), where
        assert getattr(a, "_metadata", None) == getattr(b, "_metadata", None), where
        for key in a:
            _assert_torch_identical(a[key], b[key], layout, f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _assert_torch_identical(x, y, layout, f"{where}[{index}]")
    else:
        assert a == b, where


def _storage_groups(obj, where="obj"):
    """{path of a non-empty tensor: paths of the tensors sharing its storage}."""
    tensors = {}

    def walk(o, path):
        if isinstance(o, torch.Tensor):
            if o.numel():
                tensors[path] = o.untyped_storage().data_ptr()
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{path}[{k!r}]")
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{path}[{i}]")
    walk(obj, where)
    return {p: sorted(q for q in tensors if tensors[q] == tensors[p]) for p in tensors}


@pytest.mark.parametrize("use_mmap", [False, True], ids=["load", "load-mmap"])
def test_torch_skipblocks_torch_round_trip_is_identical(tmp_path, rng, use_mmap):
    original = _save(_torch_round_trip_fixture(rng), tmp_path / "original.pt")
    copy = tmp_path / "copy.pt"
    sb.save(sb.load(original, mmap=use_mmap), copy)
    before = torch.load(original, weights_only=True)
    after = torch.load(copy, weights_only=True)
    layout = []
    _assert_torch_identical(before, after, layout)
    shared_before, shared_after = _storage_groups(before), _storage_groups(after)
    layout += [f"{path} shares its storage with {shared_after[path]}, in torch's file with "
               f"{shared_before[path]}" for path in shared_before
               if shared_after[path] != shared_before[path]]
    assert not layout, "\n".join(layout)


NOT_DATA = {
    "module": (lambda: nn.Linear(2, 2), TypeError, ["Linear", "state_dict"]),
    "module inside a dict": (lambda: {"model": nn.Linear(2, 2)}, TypeError,
                             ["'model'", "Linear", "state_dict"]),
    "function": (lambda: {"fn": lambda x: x}, TypeError, ["'fn'", "function"]),
    "torch tensor": (lambda: {"t": torch.zeros(2)}, TypeError, ["'t'", "Tensor"]),
    "object array": (lambda: {"a": np.array([1, "x"], dtype=object)}, TypeError,
                     ["'a'", "object"]),
    "string array": (lambda: {"s": np.array(["ab"])}, TypeError, ["'s'", "U2"]),
    "cyclic list": (lambda: (lambda c: (c.append(c), c)[1])([1]), ValueError, ["cycle"]),
    "cyclic dict": (lambda: (lambda d: (d.__setitem__("me", d), d)[1])({}), ValueError,
                    ["'me'", "cycle"]),
}


@pytest.mark.parametrize("case", list(NOT_DATA))
def test_saving_non_data_raises_and_leaves_no_file(tmp_path, case):
    make, error, words = NOT_DATA[case]
    path = tmp_path / "x.pt"
    with pytest.raises(error) as info:
        sb.save(make(), path)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_existing_file(tmp_path):
    path = tmp_path / "x.pt"
    sb.save({"w": np.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        sb.save({"w": np.ones(3), "m": nn.Linear(1, 1)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_save_to_a_file_object_reads_in_torch(rng):
    array = rng.standard_normal((2, 3))
    buffer = io.BytesIO()
    sb.save({"w": array, "w.T": array.T}, buffer, format="torch")
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    _assert_torch_holds(loaded["w"], array, "w")
    _assert_torch_holds(loaded["w.T"], array.T, "w.T")


# -- 7. exotic dtypes carried over as bits ------------------------------------------------

@pytest.mark.parametrize("legacy, use_mmap", [(False, False), (False, True), (True, False)],
                         ids=["zip", "zip-mmap", "legacy"])
@pytest.mark.parametrize("dtype", EXOTIC, ids=_ids(EXOTIC))
def test_exotic_dtypes_round_trip_as_bits(tmp_path, rng, dtype, legacy, use_mmap):
    tensor = _random_tensor(dtype, rng, shape=(4, 6))
    original = {"t": tensor, "t.T": tensor.t(), "row": tensor[1]}
    path = _save(original, tmp_path / "x.pt", legacy)
    fmt, raw, _ = _read(path, mmap=use_mmap, keep_bits=True)
    assert fmt == ("torch-legacy" if legacy else "torch-zip")
    for key, value in original.items():
        assert isinstance(raw[key], RawTensor), key
        assert raw[key].shape == tuple(value.shape)
        _assert_same(raw[key].decoded(), _oracle(value), exact_nan=False)
    copy = tmp_path / "copy.pt"
    sb.save(raw, copy)
    loaded = torch.load(copy, weights_only=True)
    bits = {1: torch.uint8, 2: torch.int16, 4: torch.int32}[tensor.element_size()]
    for key, value in original.items():
        assert loaded[key].dtype == dtype, key
        assert (loaded[key].shape, loaded[key].stride()) == (value.shape, value.stride()), key
        assert torch.equal(loaded[key].view(bits), value.view(bits)), key
    pointers = {k: t.untyped_storage().data_ptr() for k, t in loaded.items()}
    assert len(set(pointers.values())) == 1, f"views of one storage written apart: {pointers}"
    assert loaded["t"].untyped_storage().nbytes() == tensor.untyped_storage().nbytes(), \
        "the storage written is not the tensor's storage"

"""float64 through the module API (issue 10, items 2 and 3), against torch 2.13
itself: every expected dtype, value and message is computed from torch at
test time.

- conversions: ``double()``, ``float()``, ``to(...)`` in each of torch's
  signatures, ``type(...)``; integer dtypes raise torch's errors; complex,
  which torch accepts, raises NotImplementedError (a departure);
- the ``dtype=`` factory argument of the layers and of the document's blocks;
  default initialisation in the module's dtype;
- registration, assignment and ``load_state_dict`` (in place: cast to the
  module's dtype as torch's copy_; ``assign=True``: the value's float dtype,
  as torch);
- pickle, deepcopy and repr of float64 modules;
- ``skipblocks.cat``'s promotion against torch.cat's;
- forward passes in float64 against torch's ``.double()`` modules within
  1e-12 (layers, blocks, the document's demos at its shapes and others,
  train and eval, fused and unfused), the rule that the module's dtype
  decides (a departure: torch raises on a mismatch), and the parity table.
"""
import copy
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks import functional as F
from skipblocks import demos, parity, runtime
from skipblocks import reference as ref
from skipblocks.reference import parity_error

from helpers import SB_BUILDERS, randomize_, torch_repr_as_skipblocks

# The bound for float64 against torch's .double() modules.
F64_BOUND = 1e-12


def _outcome(fn):
    """("ok", result) or (exception type, message)."""
    try:
        return "ok", fn()
    except Exception as e:  # the exception's type and message are the outcome
        return type(e), str(e)


def _sizes_as_tuples(message):
    """torch's message with torch.Size([3, 2]) printed as skipblocks prints
    shapes, (3, 2) (the README's documented difference)."""
    return re.sub(r"torch\.Size\((\[[^]]*\])\)", lambda m: str(tuple(eval(m.group(1)))), message)


def _torch_dtypes(module):
    return {k: str(v.dtype).replace("torch.", "") for k, v in module.state_dict().items()}


def _our_dtypes(module):
    return {k: v.dtype.name for k, v in module.state_dict().items()}


def _copy_weights(sb_module, torch_module):
    result = sb_module.load_state_dict(torch_module.state_dict())
    assert not result.missing_keys and not result.unexpected_keys, result
    return sb_module


# (torch module, skipblocks twin, input shape): every layer and block with
# parameters, in the variants whose state differs
PAIRS = {
    "conv": (lambda: nn.Conv2d(3, 5, 3, padding=1), lambda: sb.Conv2d(3, 5, 3, padding=1),
             (2, 3, 9, 8)),
    "conv-strided-nobias": (lambda: nn.Conv2d(4, 6, (3, 2), stride=2, bias=False, groups=2),
                            lambda: sb.Conv2d(4, 6, (3, 2), stride=2, bias=False, groups=2),
                            (2, 4, 11, 10)),
    "conv-same-even": (lambda: nn.Conv2d(2, 3, 4, padding="same"),
                       lambda: sb.Conv2d(2, 3, 4, padding="same"), (1, 2, 7, 6)),
    "bn": (lambda: nn.BatchNorm2d(4), lambda: sb.BatchNorm2d(4), (3, 4, 5, 6)),
    "bn-momentum-none": (lambda: nn.BatchNorm2d(4, momentum=None),
                         lambda: sb.BatchNorm2d(4, momentum=None), (3, 4, 5, 6)),
    "bn-no-affine": (lambda: nn.BatchNorm2d(4, affine=False),
                     lambda: sb.BatchNorm2d(4, affine=False), (3, 4, 5, 6)),
    "bn-no-stats": (lambda: nn.BatchNorm2d(4, track_running_stats=False),
                    lambda: sb.BatchNorm2d(4, track_running_stats=False), (3, 4, 5, 6)),
    "linear": (lambda: nn.Linear(6, 4), lambda: sb.Linear(6, 4), (5, 6)),
    "linear-3d-nobias": (lambda: nn.Linear(6, 4, bias=False),
                         lambda: sb.Linear(6, 4, bias=False), (2, 5, 6)),
    "residual": (lambda: ref.ResidualBlock(4, 4), lambda: sb.ResidualBlock(4, 4),
                 (2, 4, 9, 10)),
    "residual-downsample": (
        lambda: ref.ResidualBlock(4, 6, stride=[2, 1],
                                  downsample=ref.resnet_downsample(4, 6, 2)),
        lambda: sb.ResidualBlock(4, 6, stride=[2, 1],
                                 downsample=demos.resnet_downsample(4, 6, 2)),
        (2, 4, 11, 12)),
    "dense-layer": (lambda: ref.Dense_Layer(4, 3, 2), lambda: sb.DenseLayer(4, 3, 2),
                    (2, 4, 7, 8)),
    "dense-block": (lambda: ref.Dense_Block(3, 4, 3, 2), lambda: sb.DenseBlock(3, 4, 3, 2),
                    (2, 4, 7, 8)),
    "se": (lambda: ref.SEAttention(16, 4), lambda: sb.SEAttention(16, 4), (3, 16, 5, 4)),
    "sequential-conv-bn-relu": (
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
        lambda: sb.Sequential(sb.Conv2d(3, 4, 3, padding=1), sb.BatchNorm2d(4), sb.ReLU()),
        (2, 3, 8, 9)),
}


def _twins(name, seed=0):
    """torch's module (BatchNorms randomised) and skipblocks' with its weights."""
    make_torch, make_ours, shape = PAIRS[name]
    theirs = randomize_(make_torch(), seed)
    return theirs, _copy_weights(make_ours(), theirs), shape


def _forward_torch(module, x):
    """torch's output for a NumPy input (a fresh list for the dense layer,
    whose document code takes a list)."""
    with torch.no_grad():
        t = torch.from_numpy(np.array(x, copy=True))
        return module([t] if isinstance(module, ref.Dense_Layer) else t).numpy()


# ---------------------------------------------------------------------------
# double(), float(), to(), type(): as torch converts
# ---------------------------------------------------------------------------

# Calls torch accepts that make a module float64 (type() is apart: see below).
TO_FLOAT64 = {
    "double()": lambda m: m.double(),
    "to(torch.float64)": lambda m: m.to(torch.float64),
    "to(dtype=torch.float64)": lambda m: m.to(dtype=torch.float64),
    "to(torch.double)": lambda m: m.to(torch.double),
    "to('cpu', torch.float64)": lambda m: m.to("cpu", torch.float64),
    "to(device, dtype=, non_blocking=)": lambda m: m.to(torch.device("cpu"), dtype=torch.float64,
                                                        non_blocking=True),
    "to(torch.float64, True)": lambda m: m.to(torch.float64, True),
    "to(float64 tensor)": lambda m: m.to(torch.zeros(1, dtype=torch.float64)),
    "to(tensor=float64 tensor)": lambda m: m.to(tensor=torch.zeros(2, dtype=torch.float64)),
}

# torch's Module.type converts every tensor, num_batches_tracked too
TYPE_FLOAT64 = {
    "type(torch.float64)": lambda m: m.type(torch.float64),
    "type('torch.DoubleTensor')": lambda m: m.type("torch.DoubleTensor"),
    "type(torch.DoubleTensor)": lambda m: m.type(torch.DoubleTensor),
}

# The same in NumPy's spellings, which torch refuses and skipblocks accepts.
NUMPY_FLOAT64 = {
    "to(np.float64)": lambda m: m.to(np.float64),
    "to(np.dtype('float64'))": lambda m: m.to(np.dtype("float64")),
    "to(dtype=np.float64)": lambda m: m.to(dtype=np.float64),
    "to('cpu', np.float64)": lambda m: m.to("cpu", np.float64),
    "to(float64 array)": lambda m: m.to(np.zeros(3)),
    "to(another module's weight)": lambda m: m.to(sb.Linear(2, 2).double().weight),
    "type(np.float64)": lambda m: m.type(np.float64),
}


@pytest.mark.parametrize("call", list(TO_FLOAT64) + list(TYPE_FLOAT64))
@pytest.mark.parametrize("name", PAIRS)
def test_conversions_to_float64_give_torchs_dtypes_and_values(name, call):
    theirs, ours, _ = _twins(name)
    convert = {**TO_FLOAT64, **TYPE_FLOAT64}[call]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert convert(theirs) is theirs
    before = ours.state_dict().copy()
    version = {n: m._version for n, m in ours.named_modules()}
    assert convert(ours) is ours
    expected = _torch_dtypes(theirs)
    if call in TYPE_FLOAT64:
        # torch's type() converts num_batches_tracked to float64; skipblocks
        # keeps it int64 (the issue: it stays int64)
        assert all(v == "float64" for v in expected.values())
        expected = {k: "int64" if k.endswith("num_batches_tracked") else v
                    for k, v in expected.items()}
    assert _our_dtypes(ours) == expected
    for key, value in ours.state_dict().items():
        assert not value.flags.writeable, key
        np.testing.assert_array_equal(value, theirs.state_dict()[key].numpy(), err_msg=key)
        if value.dtype.kind == "f":  # new arrays; the old ones are left as they were
            assert value is not before[key] and before[key].dtype == np.float32, key
        else:
            assert value is before[key], key
    # every module whose arrays changed was bumped (its caches are rebuilt)
    for sub_name, module in ours.named_modules():
        if any(v is not None and v.dtype.kind == "f" for v in module._parameters.values()):
            assert module._version > version[sub_name], sub_name


@pytest.mark.parametrize("call", NUMPY_FLOAT64)
def test_numpy_spellings_of_float64_convert_too(call):
    theirs, ours, _ = _twins("residual-downsample")
    expected = _torch_dtypes(theirs.double())
    assert NUMPY_FLOAT64[call](ours) is ours
    assert _our_dtypes(ours) == expected
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, theirs.state_dict()[key].numpy(), err_msg=key)


# (skipblocks' call, torch's equivalent)
TO_FLOAT32 = {
    "float()": (lambda m: m.float(), None),
    "to(torch.float32)": (lambda m: m.to(torch.float32), None),
    "to(np.float32)": (lambda m: m.to(np.float32), lambda m: m.to(torch.float32)),
    "to(float32 tensor)": (lambda m: m.to(torch.zeros(1)), None),
    "to(float32 array)": (lambda m: m.to(np.zeros(1, np.float32)),
                          lambda m: m.to(torch.zeros(1))),
    "type(torch.float32)": (lambda m: m.type(torch.float32), None),
    "type('torch.FloatTensor')": (lambda m: m.type("torch.FloatTensor"), None),
}


@pytest.mark.parametrize("call", TO_FLOAT32)
def test_float64_module_back_to_float32_rounds_as_torch(call, rng):
    theirs, ours, _ = _twins("dense-block")
    theirs.double()
    ours.double()
    # values that float32 cannot hold, so the rounding is seen
    new = {k: (torch.from_numpy(rng.standard_normal(tuple(v.shape)))
               if v.is_floating_point() else v) for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(new)
    ours.load_state_dict(new)
    convert, convert_theirs = TO_FLOAT32[call]
    assert (convert_theirs or convert)(theirs) is theirs and convert(ours) is ours
    expected = _torch_dtypes(theirs)
    if call.startswith("type"):  # torch's type() converts num_batches_tracked too
        expected = {k: "int64" if k.endswith("num_batches_tracked") else v
                    for k, v in expected.items()}
    assert _our_dtypes(ours) == expected
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, theirs.state_dict()[key].numpy(), err_msg=key)


def test_converting_to_the_current_dtype_changes_nothing():
    """As torch's t.to(dtype) returns t itself: same arrays, same versions."""
    ours = sb.DenseBlock(2, 4, 3, 2, dtype=np.float64)
    before = dict(ours.state_dict())
    versions = [m._version for m in ours.modules()]
    for call in (lambda m: m.double(), lambda m: m.to(torch.float64), lambda m: m.to("cpu"),
                 lambda m: m.type(torch.float64), lambda m: m.cpu()):
        assert call(ours) is ours
    assert all(ours.state_dict()[k] is v for k, v in before.items())
    assert [m._version for m in ours.modules()] == versions


def test_a_module_registered_twice_is_converted_once():
    conv = sb.Conv2d(2, 2, 1)
    model = sb.Sequential(conv, sb.ReLU(), conv).double()
    twice = nn.Conv2d(2, 2, 1)
    theirs = nn.Sequential(twice, nn.ReLU(), twice).double()
    assert model[0] is model[2] and conv.weight.dtype == np.float64
    assert _our_dtypes(model) == _torch_dtypes(theirs) == {
        "0.weight": "float64", "0.bias": "float64", "2.weight": "float64", "2.bias": "float64"}
    assert model.state_dict()["0.weight"] is model.state_dict()["2.weight"]


@pytest.mark.parametrize("call", [
    lambda m: m.to(torch.int64),
    lambda m: m.to(dtype=torch.int32),
    lambda m: m.to(torch.uint8),
    lambda m: m.to(torch.bool),
    lambda m: m.to("cpu", torch.int16),
    lambda m: m.to(torch.zeros(1, dtype=torch.int64)),
    lambda m: m.to(torch.zeros(1, dtype=torch.bool), non_blocking=True),
], ids=["int64", "dtype=int32", "uint8", "bool", "cpu-int16", "int64-tensor", "bool-tensor"])
def test_to_an_integer_dtype_raises_torchs_error(call):
    theirs, ours, _ = _twins("bn")
    expected = _outcome(lambda: call(theirs))
    assert expected[0] is TypeError and "nn.Module.to only accepts floating point" in expected[1]
    before = dict(ours.state_dict())
    assert _outcome(lambda: call(ours)) == expected
    assert all(ours.state_dict()[k] is v for k, v in before.items())


@pytest.mark.parametrize("call", [
    lambda m: m.to(np.int64),
    lambda m: m.to(np.zeros(2, np.int32)),
], ids=["np.int64", "int32-array"])
def test_to_an_integer_numpy_dtype_raises_torchs_message(call):
    ours = sb.Linear(2, 3)
    with pytest.raises(TypeError) as info:
        call(ours)
    message = _outcome(lambda: nn.Linear(2, 3).to(torch.int64))[1]
    assert str(info.value) == message.replace("torch.int64", str(info.value).split("=")[-1])
    assert ours.weight.dtype == np.float32


@pytest.mark.parametrize("call", [
    lambda m: m.to(torch.complex64),
    lambda m: m.to(dtype=torch.complex128),
    lambda m: m.to("cpu", torch.cfloat),
    lambda m: m.to(torch.zeros(1, dtype=torch.complex64)),
], ids=["complex64", "dtype=complex128", "cpu-cfloat", "complex-tensor"])
def test_complex_dtypes_torch_accepts_raise_not_implemented(call):
    """A departure: torch makes the module complex (with a warning);
    skipblocks computes with real numbers only and says so."""
    theirs, ours, _ = _twins("linear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert call(theirs) is theirs
    assert theirs.weight.is_complex()
    before = dict(ours.state_dict())
    with pytest.raises(NotImplementedError) as info:
        call(ours)
    message = str(info.value)
    assert message.startswith("Linear.to(): skipblocks computes with real numbers only")
    assert "complex" in message and f"dtype={theirs.weight.dtype}" in message
    assert all(ours.state_dict()[k] is v for k, v in before.items())


def test_complex_numpy_dtype_raises_not_implemented():
    with pytest.raises(NotImplementedError, match="real numbers only.*dtype=complex128"):
        sb.Conv2d(2, 2, 1).to(np.complex128)


def test_type_with_an_integer_type_as_torch():
    """torch: a module with parameters raises RuntimeError (they cannot hold
    integers); one without tensors is returned as it is."""
    for make_theirs, make_ours in [(lambda: nn.Linear(2, 3), lambda: sb.Linear(2, 3)),
                                   (lambda: nn.BatchNorm2d(3), lambda: sb.BatchNorm2d(3))]:
        for dst in (torch.int64, "torch.LongTensor", torch.IntTensor, torch.bool):
            expected = _outcome(lambda: make_theirs().type(dst))
            assert expected[0] is RuntimeError
            ours = make_ours()
            assert _outcome(lambda: ours.type(dst)) == expected
            assert ours.weight.dtype == np.float32
    relu, theirs = sb.ReLU(), nn.ReLU()
    assert theirs.type(torch.int64) is theirs and relu.type(torch.int64) is relu


def test_type_integer_on_float_buffers_only_raises_not_implemented():
    """torch makes the running statistics integers; skipblocks cannot compute
    with them (a departure)."""
    theirs = nn.BatchNorm2d(3, affine=False).type(torch.int64)
    assert theirs.running_mean.dtype == torch.int64
    ours = sb.BatchNorm2d(3, affine=False)
    with pytest.raises(NotImplementedError, match="float32 or float64"):
        ours.type(torch.int64)
    assert ours.running_mean.dtype == np.float32


@pytest.mark.parametrize("dst", [torch.float16, torch.bfloat16, "torch.HalfTensor",
                                 torch.complex64, "torch.cuda.DoubleTensor", np.float16])
def test_type_other_types_raise_not_implemented(dst):
    ours = sb.Linear(2, 3)
    with pytest.raises(NotImplementedError, match="float32 or float64"):
        ours.type(dst)
    assert ours.weight.dtype == np.float32


# ---------------------------------------------------------------------------
# the dtype= factory argument, and initialisation in the module's dtype
# ---------------------------------------------------------------------------

FLOAT64_SPELLINGS = [torch.float64, torch.double, np.float64, np.dtype("float64"), "float64",
                     "double", "f8"]
FLOAT32_SPELLINGS = [None, torch.float32, np.float32, np.dtype("float32"), "float32"]

LAYERS = {
    "Conv2d": (lambda d: nn.Conv2d(4, 6, 3, groups=2, dtype=d),
               lambda d: sb.Conv2d(4, 6, 3, groups=2, dtype=d)),
    "BatchNorm2d": (lambda d: nn.BatchNorm2d(5, dtype=d), lambda d: sb.BatchNorm2d(5, dtype=d)),
    "BatchNorm2d-no-affine": (lambda d: nn.BatchNorm2d(5, affine=False, dtype=d),
                              lambda d: sb.BatchNorm2d(5, affine=False, dtype=d)),
    "Linear": (lambda d: nn.Linear(3, 4, dtype=d), lambda d: sb.Linear(3, 4, dtype=d)),
    "Linear-positional": (lambda d: nn.Linear(3, 4, True, "cpu", d),
                          lambda d: sb.Linear(3, 4, True, "cpu", d)),
}

# the document's blocks take no dtype in torch: compare with their .double()
BLOCKS = {
    "ResidualBlock": (lambda: ref.ResidualBlock(4, 6, stride=[2, 1]),
                      lambda d: sb.ResidualBlock(4, 6, [2, 1], dtype=d)),
    "DenseLayer": (lambda: ref.Dense_Layer(4, 3, 2), lambda d: sb.DenseLayer(4, 3, 2, dtype=d)),
    "DenseBlock": (lambda: ref.Dense_Block(3, 4, 3, 2),
                   lambda d: sb.DenseBlock(3, 4, 3, 2, dtype=d)),
    "SEAttention": (lambda: ref.SEAttention(16, 4), lambda d: sb.SEAttention(16, 4, dtype=d)),
}


@pytest.mark.parametrize("spelling", FLOAT64_SPELLINGS + FLOAT32_SPELLINGS, ids=str)
@pytest.mark.parametrize("layer", LAYERS)
def test_layers_dtype_argument_as_torchs(layer, spelling):
    make_theirs, make_ours = LAYERS[layer]
    wide = any(spelling is s for s in FLOAT64_SPELLINGS)  # == would take None for float64
    expected = _torch_dtypes(make_theirs(torch.float64 if wide else torch.float32))
    ours = make_ours(spelling)
    assert _our_dtypes(ours) == expected
    assert all(not v.flags.writeable for v in ours.state_dict().values())
    assert repr(ours) == repr(make_theirs(torch.float32))


@pytest.mark.parametrize("spelling", [torch.float64, np.float64, "float64", None], ids=str)
@pytest.mark.parametrize("block", BLOCKS)
def test_blocks_dtype_argument_is_their_layers(block, spelling):
    make_theirs, make_ours = BLOCKS[block]
    theirs = make_theirs()
    if spelling is not None:
        theirs.double()
    ours = make_ours(spelling)
    assert _our_dtypes(ours) == _torch_dtypes(theirs)
    assert repr(ours) == torch_repr_as_skipblocks(repr(theirs))
    # the modules without parameters are in the block's dtype too (for
    # parameters registered on them later)
    assert all(m._dtype == (np.float64 if spelling else np.float32) for m in ours.modules())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, np.int64])
@pytest.mark.parametrize("layer", ["Conv2d", "BatchNorm2d", "Linear"])
def test_integer_dtype_argument_raises_torchs_error(layer, dtype):
    make_theirs, make_ours = LAYERS[layer]
    expected = _outcome(lambda: make_theirs(torch.int64 if dtype is np.int64 else dtype))
    assert expected[0] is RuntimeError
    assert _outcome(lambda: make_ours(dtype)) == (RuntimeError, f"{layer}: {expected[1]}")


@pytest.mark.parametrize("block", BLOCKS)
def test_blocks_integer_dtype_raises_torchs_error(block):
    expected = _outcome(lambda: nn.Conv2d(2, 2, 1, dtype=torch.int64))
    assert _outcome(lambda: BLOCKS[block][1](torch.int64)) == (RuntimeError,
                                                               f"{block}: {expected[1]}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.complex64, np.float16,
                                   "complex128"], ids=str)
@pytest.mark.parametrize("layer", LAYERS)
def test_dtypes_torch_accepts_and_skipblocks_cannot_compute_raise(layer, dtype):
    """torch builds float16, bfloat16 and complex layers; skipblocks computes
    in float32 or float64 only: NotImplementedError naming the dtype."""
    make_theirs, make_ours = LAYERS[layer]
    torch_dtype = {np.float16: torch.float16, "complex128": torch.complex128}.get(dtype, dtype)
    assert _outcome(lambda: make_theirs(torch_dtype))[0] == "ok"
    with pytest.raises(NotImplementedError) as info:
        make_ours(dtype)
    message = str(info.value)
    assert message.startswith(layer.split("-")[0] + ": ") and repr(dtype) in message
    assert ("real numbers only" in message) == ("complex" in str(dtype))


def test_integer_dtype_for_a_batchnorm_without_parameters_raises_not_implemented():
    """torch makes integer running statistics; skipblocks cannot compute with them."""
    assert nn.BatchNorm2d(3, affine=False, dtype=torch.int64).running_mean.dtype == torch.int64
    with pytest.raises(NotImplementedError, match="float32 or float64 only"):
        sb.BatchNorm2d(3, affine=False, dtype=torch.int64)


@pytest.mark.parametrize("dtype", ["cpu", 3, "torch.float64"], ids=str)
def test_a_dtype_that_is_no_dtype_raises_type_error(dtype):
    with pytest.raises(TypeError, match="Conv2d: dtype must be a torch or NumPy dtype"):
        sb.Conv2d(2, 2, 1, dtype=dtype)


@pytest.mark.parametrize("make", [
    lambda d: sb.Conv2d(3, 8, (3, 2), dtype=d),
    lambda d: sb.Linear(7, 5, dtype=d),
], ids=["Conv2d", "Linear"])
def test_default_init_is_drawn_in_the_modules_dtype(make):
    """The same draws as the float32 module's (same seed), kept in float64,
    within torch's bound ±1/sqrt(fan_in); reset_parameters after double()
    draws in float64 too."""
    sb.manual_seed(123)
    narrow = make(None)
    sb.manual_seed(123)
    wide = make(np.float64)
    fan_in = np.prod(narrow.weight.shape[1:])
    for name in ("weight", "bias"):
        a, b = getattr(narrow, name), getattr(wide, name)
        assert a.dtype == np.float32 and b.dtype == np.float64
        np.testing.assert_array_equal(b.astype(np.float32), a)
        assert not np.array_equal(b, a.astype(np.float64))  # float64 draws, not widened float32
        assert np.abs(b).max() <= 1 / np.sqrt(fan_in)
    converted = make(None).double()
    sb.manual_seed(7)
    converted.reset_parameters()
    sb.manual_seed(7)
    fresh = make(np.float64)
    np.testing.assert_array_equal(converted.weight, fresh.weight)
    assert converted.weight.dtype == np.float64


# ---------------------------------------------------------------------------
# registration and assignment follow the module's dtype
# ---------------------------------------------------------------------------

def test_registration_and_assignment_in_a_float64_module():
    m = sb.Linear(2, 3).double()
    m.weight = np.zeros((3, 2), np.float32)
    m.extra = sb.Parameter(np.ones(2, np.float32))
    m.register_parameter("other", sb.Parameter([1, 2]))
    m.register_buffer("stat", np.ones(2, np.float32))
    m.register_buffer("count", np.array(3, np.int32))
    assert _our_dtypes(m) == {"weight": "float64", "bias": "float64", "extra": "float64",
                              "other": "float64", "stat": "float64", "count": "int64"}
    assert all(not v.flags.writeable for v in m.state_dict().values())
    # an existing float32 parameter keeps float32, as an assignment keeps the dtype
    n = sb.Linear(2, 3)
    n.weight = np.zeros((3, 2))
    assert n.weight.dtype == np.float32


def test_custom_modules_are_float32_until_converted():
    class Scale(sb.Module):
        def __init__(self):
            super().__init__()
            self.scale = sb.Parameter(np.ones(4))  # float64 data: stored float32
            self.register_buffer("shift", np.zeros(4))

    m = Scale()
    assert _our_dtypes(m) == {"scale": "float32", "shift": "float32"}
    m.double()
    assert _our_dtypes(m) == {"scale": "float64", "shift": "float64"}
    m.late = sb.Parameter(np.ones(1, np.float32))
    assert m.late.dtype == np.float64


# ---------------------------------------------------------------------------
# load_state_dict
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bn", "residual-downsample", "se"])
def test_load_into_float64_module_casts_in_place_like_copy_(name, rng):
    theirs, ours, _ = _twins(name)
    theirs.double()
    ours.double()
    source_module = randomize_(PAIRS[name][0](), seed=5)  # float32 values
    source = source_module.state_dict()
    before = dict(ours.state_dict())
    assert repr(ours.load_state_dict(source)) == repr(theirs.load_state_dict(source))
    assert _our_dtypes(ours) == _torch_dtypes(theirs)
    for key, value in ours.state_dict().items():
        assert value is before[key], key  # in place
        np.testing.assert_array_equal(value, theirs.state_dict()[key].numpy(), err_msg=key)


VALUE_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                torch.int32, torch.bool]


@pytest.mark.parametrize("module_dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("value_dtype", VALUE_DTYPES, ids=str)
@pytest.mark.parametrize("name", ["linear", "bn", "bn-no-affine"])
def test_load_assign_takes_the_values_float_dtype_as_torch(name, value_dtype, module_dtype):
    """torch: every array becomes the value's tensor, in its dtype (integer
    values for a parameter raise). skipblocks matches torch where that
    dtype is float32 or float64; otherwise (float16, bfloat16, an integer
    value for a float buffer, any value for num_batches_tracked) it casts
    to the dtype of the array replaced."""
    theirs, ours, _ = _twins(name)
    theirs.to(module_dtype)
    ours.to(module_dtype)
    before = _our_dtypes(ours)
    values = {k: (v.to(value_dtype) if not k.endswith("num_batches_tracked")
                  else v.to(value_dtype if value_dtype in (torch.float64, torch.int32)
                            else torch.int64))
              for k, v in theirs.state_dict().items()}
    expected = _outcome(lambda: theirs.load_state_dict(dict(values), assign=True))
    kept = {k: v for k, v in ours.state_dict().items()}
    got = _outcome(lambda: ours.load_state_dict(dict(values), assign=True))
    if expected[0] != "ok":
        assert got == (expected[0], _sizes_as_tuples(expected[1]))
        assert all(ours.state_dict()[k] is v for k, v in kept.items())  # all-or-nothing
        return
    assert got[0] == "ok" and repr(got[1]) == repr(expected[1])
    torch_dtypes = _torch_dtypes(theirs)
    for key, value in ours.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert value.dtype == np.int64  # torch: the value's dtype
        elif torch_dtypes[key] in ("float32", "float64"):
            assert value.dtype.name == torch_dtypes[key], key  # torch's
        else:
            assert value.dtype.name == before[key], key  # cast, where torch keeps it
        assert value is not kept[key]  # new arrays, as torch's are the values
        np.testing.assert_array_equal(value, values[key].float().numpy().astype(value.dtype),
                                      err_msg=key)


def test_load_assign_float64_makes_the_module_float64():
    """After assign=True with float64 values the module is float64 throughout:
    parameters registered later are float64 too."""
    ours = sb.BatchNorm2d(3)
    ours.load_state_dict({k: np.asarray(v, np.float64) if v.dtype.kind == "f" else v
                          for k, v in ours.state_dict().items()}, assign=True)
    assert _our_dtypes(ours) == _torch_dtypes(nn.BatchNorm2d(3).double())
    ours.extra = sb.Parameter(np.ones(3, np.float32))
    assert ours.extra.dtype == np.float64


# ---------------------------------------------------------------------------
# pickle, deepcopy, repr
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
@pytest.mark.parametrize("name", ["residual-downsample", "dense-block", "se"])
def test_pickle_and_deepcopy_keep_float64(name, how):
    _, ours, _ = _twins(name)
    ours.double()
    clone = pickle.loads(pickle.dumps(ours)) if how == "pickle" else copy.deepcopy(ours)
    assert _our_dtypes(clone) == _our_dtypes(ours)
    for (key, a), b in zip(ours.state_dict().items(), clone.state_dict().values()):
        assert not b.flags.writeable and not np.shares_memory(a, b), key
        np.testing.assert_array_equal(a, b, err_msg=key)
    assert [m._dtype for m in clone.modules()] == [np.float64] * len(list(clone.modules()))
    assert repr(clone) == repr(ours)


@pytest.mark.parametrize("name", PAIRS)
def test_repr_does_not_show_the_dtype_as_torch(name):
    theirs, ours, _ = _twins(name)
    text = repr(ours)
    theirs.double()
    ours.double()
    assert "float64" not in repr(theirs)
    assert repr(ours) == text == torch_repr_as_skipblocks(repr(theirs))


# ---------------------------------------------------------------------------
# skipblocks.cat promotes as torch.cat
# ---------------------------------------------------------------------------

CAT_DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
              torch.float16, torch.float32, torch.float64]


def _cat_values(dtype, shape):
    values = (np.arange(np.prod(shape)) % 4).reshape(shape)  # exact in every dtype
    return torch.from_numpy(values).to(dtype)


@pytest.mark.parametrize("second", CAT_DTYPES, ids=str)
@pytest.mark.parametrize("first", CAT_DTYPES, ids=str)
def test_cat_promotes_as_torch_cat(first, second):
    """float64 where torch.cat's result is float64, float32 everywhere else
    (torch's float32, and its integer, bool and float16 results, which
    skipblocks computes in float32); the values are torch's."""
    a, b = _cat_values(first, (2, 3)), _cat_values(second, (1, 3))
    expected = torch.cat([a, b])
    wanted = np.float64 if expected.dtype == torch.float64 else np.float32
    for inputs in ([a, b], [a.numpy(), b.numpy()], (a, b.numpy())):
        got = sb.cat(inputs)
        assert got.dtype == wanted, (first, second, expected.dtype)
        np.testing.assert_array_equal(got, expected.to(torch.float64).numpy().astype(wanted))


def test_cat_promotion_counts_the_empty_tensors_torch_skips():
    parts = [torch.zeros(0, dtype=torch.float64), torch.ones(2, 3)]
    assert torch.cat(parts).dtype == torch.float64
    got = sb.cat([p.numpy() for p in parts])
    assert got.dtype == np.float64 and got.shape == (2, 3)


def test_cat_float64_is_an_exact_copy(rng):
    parts = [rng.standard_normal((2, k, 3)) for k in (1, 4, 2)]
    got = sb.cat(parts, dim=1)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.concatenate(parts, axis=1))
    np.testing.assert_array_equal(got, torch.cat([torch.from_numpy(p) for p in parts], 1).numpy())


def test_cat_large_integers_convert_straight_to_float64():
    """int64 + float64: each int64 value is rounded once to float64, as torch."""
    big = torch.tensor([[2**53 + 1, 2**40 + 3]], dtype=torch.int64)
    parts = [big, torch.zeros(1, 2, dtype=torch.float64)]
    np.testing.assert_array_equal(sb.cat(parts), torch.cat(parts).numpy())


def test_as_real():
    """The conversion functional.as_real makes: dtype None keeps float32 and
    float64 and converts the rest to float32; a dtype forces it."""
    for value, dtype, wanted in [(np.ones(3, np.float32), None, np.float32),
                                 (np.ones(3), None, np.float64),
                                 (np.ones(3, np.int64), None, np.float32),
                                 (np.ones(3, np.float16), None, np.float32),
                                 (torch.ones(3, dtype=torch.float64), None, np.float64),
                                 (np.ones(3, np.float32), np.float64, np.float64),
                                 (np.ones(3), np.float32, np.float32),
                                 (np.ones(3, np.int32), np.float64, np.float64)]:
        got = F.as_real(value, "test", "input", dtype)
        assert isinstance(got, np.ndarray) and got.dtype == wanted, (value.dtype, dtype)
    with pytest.raises(TypeError, match="^test: x must hold real numbers"):
        F.as_real(np.ones(2, np.complex64), "test", "x", np.float64)


# ---------------------------------------------------------------------------
# forward in float64: parity with torch's .double() modules
# ---------------------------------------------------------------------------

def _check_float64_pair(theirs, ours, x, what):
    out = ours([x] if isinstance(ours, sb.DenseLayer) else x)
    expected = _forward_torch(theirs, x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64, (what, out.dtype)
    assert out.shape == expected.shape, what
    err = parity_error(out, expected)
    assert err <= F64_BOUND, f"{what}: parity error {err:.3e}"
    for key, value in theirs.state_dict().items():
        mine = ours.state_dict()[key]
        assert mine.dtype.name == str(value.dtype).replace("torch.", ""), (what, key)
        if key.endswith("num_batches_tracked"):
            assert int(mine) == int(value), (what, key)
        else:
            assert parity_error(mine, value) <= F64_BOUND, (what, key)
    return err


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", PAIRS)
def test_float64_forward_parity_with_torch_double(name, mode, fused, rng, isa):
    """On every instruction set (the isa fixture)."""
    theirs, ours, shape = _twins(name)
    theirs.double().train(mode == "train")
    ours.double().train(mode == "train")
    for step in range(2):  # the second forward sees the updated statistics
        x = rng.standard_normal(shape) * 2 + 0.5
        if fused:
            _check_float64_pair(theirs, ours, x, f"{name} {mode} #{step}")
        else:
            with runtime.unfused():
                _check_float64_pair(theirs, ours, x, f"{name} {mode} #{step}")


@pytest.mark.parametrize("name", PAIRS)
def test_float64_via_dtype_argument_or_assign_computes_in_float64(name, rng):
    """A module built float64 by assign=True with torch's float64 weights (as
    torch) computes in float64 too."""
    theirs, _, shape = _twins(name)
    theirs.double().eval()
    ours = PAIRS[name][1]()
    ours.load_state_dict(theirs.state_dict(), assign=True)
    ours.eval()
    _check_float64_pair(theirs, ours, rng.standard_normal(shape), name)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("demo", ["resnet", "densenet", "se"])
def test_document_demos_in_float64_within_1e_12(demo, mode, fused):
    """The document's three demos at its shapes: outputs and running
    statistics within 1e-12 of torch's .double() modules."""
    theirs = randomize_(ref.DOCUMENT_INPUTS[demo]["builder"](), seed=1).double()
    ours = _copy_weights(SB_BUILDERS[demo]().double(), theirs)
    theirs.train(mode == "train")
    ours.train(mode == "train")
    x = ref.document_input(demo).double().numpy()
    if fused:
        _check_float64_pair(theirs, ours, x, demo)
    else:
        with runtime.unfused():
            _check_float64_pair(theirs, ours, x, demo)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("demo, kwargs, shape", [
    ("resnet", dict(width=8, out_channels=12), (3, 3, 37, 41)),
    ("densenet", dict(width=8, n_layers=3, growthrate=4, bn_size=2), (2, 3, 45, 38)),
    ("se", dict(channel=24, reduction=3), (4, 24, 6, 5)),
])
def test_demos_in_float64_at_other_shapes(demo, kwargs, shape, mode, rng):
    theirs = randomize_(ref.DOCUMENT_INPUTS[demo]["builder"](**kwargs), seed=2).double()
    ours = _copy_weights(getattr(sb.demos, f"{demo}_demo")(**kwargs).double(), theirs)
    theirs.train(mode == "train")
    ours.train(mode == "train")
    _check_float64_pair(theirs, ours, rng.random(shape), demo)


def test_parity_table_for_float64_modules():
    """compare() with both modules .double(): every row within 1e-12, the
    input (float32 here) given to both in torch's dtype."""
    for demo in ("resnet", "densenet", "se"):
        theirs = randomize_(ref.DOCUMENT_INPUTS[demo]["builder"](), seed=3).double()
        ours = SB_BUILDERS[demo]().double()
        x = ref.document_input(demo).numpy()
        for fused in (False, True):
            table = parity.compare(theirs, ours, x, mode="both", fused=fused)
            assert table.over(F64_BOUND) == [], (demo, fused, str(table))
            assert any(r["parity_error"] is not None for r in table.rows)
        assert _our_dtypes(ours) == _torch_dtypes(theirs)  # restored as it was


# ---------------------------------------------------------------------------
# the module's dtype decides (a departure: torch raises on a mismatch)
# ---------------------------------------------------------------------------

def _input_variants(x):
    """x (float64 values exact in float16) in the other real forms a module takes."""
    return {"float32": x.astype(np.float32), "float16": x.astype(np.float16),
            "int32": np.round(x * 4).astype(np.int32), "list": x.astype(np.float32).tolist(),
            "torch-float32": torch.from_numpy(x.astype(np.float32)),
            "torch-bfloat16": torch.from_numpy(x.astype(np.float32)).bfloat16(),
            "fortran": np.asfortranarray(x.astype(np.float32))}


def _as_float64(value):
    if isinstance(value, torch.Tensor):
        return value.double().numpy()
    return np.asarray(value, np.float64)


@pytest.mark.parametrize("name", PAIRS)
def test_a_float64_module_converts_other_real_input_to_float64(name, rng):
    theirs, ours, shape = _twins(name)
    ours.double().eval()
    x = np.round(rng.standard_normal(shape) * 8) / 8  # exact in float16
    # the dense modules take a list of feature maps: a list input goes in one
    listed = isinstance(ours, (sb.DenseLayer, sb.DenseBlock))
    for kind, value in _input_variants(x).items():
        wanted = ours([_as_float64(value)] if listed else _as_float64(value))
        got = ours([value] if listed else value)
        assert got.dtype == np.float64, (name, kind)
        if kind == "list" and isinstance(ours, sb.Sequential):
            # a list does not take Sequential's Conv2d + BatchNorm2d fold
            # (an array does): the same numbers up to rounding, in float32 too
            assert parity_error(got, wanted) <= F64_BOUND, (name, kind)
        else:
            np.testing.assert_array_equal(got, wanted, err_msg=f"{name} {kind}")
    # torch refuses the mismatch (the departure is real)
    theirs.double().eval()
    with pytest.raises(RuntimeError):
        _forward_torch(theirs, x.astype(np.float32))


@pytest.mark.parametrize("name", ["conv", "bn", "linear", "residual-downsample", "dense-block",
                                  "se"])
def test_a_float32_module_converts_float64_input_to_float32(name, rng):
    _, ours, shape = _twins(name)
    ours.eval()
    x = rng.standard_normal(shape)
    got = ours([x] if isinstance(ours, sb.DenseLayer) else x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ours(x.astype(np.float32)))


def test_modules_without_parameters_follow_the_input_as_torch(rng):
    x64 = rng.standard_normal((2, 3, 6, 5))
    for ours, theirs in [(sb.ReLU(), nn.ReLU()), (sb.Sigmoid(), nn.Sigmoid()),
                         (sb.MaxPool2d(2), nn.MaxPool2d(2)),
                         (sb.AdaptiveAvgPool2d((2, None)), nn.AdaptiveAvgPool2d((2, None))),
                         (sb.BatchNorm2d(3, affine=False, track_running_stats=False),
                          nn.BatchNorm2d(3, affine=False, track_running_stats=False))]:
        ours.double()
        theirs.double()
        for x in (x64, x64.astype(np.float32)):
            got = ours(x)
            with torch.no_grad():
                expected = theirs(torch.from_numpy(x)).numpy()
            assert got.dtype == expected.dtype, type(ours).__name__
            assert parity_error(got, expected) <= (F64_BOUND if x.dtype == np.float64 else 1e-6)


def test_relu_inplace_on_float64(rng):
    x = rng.standard_normal((2, 3, 4))
    expected = np.maximum(x, 0)
    assert sb.ReLU(inplace=True)(x) is x
    np.testing.assert_array_equal(x, expected)


def test_packed_weights_follow_the_dtype(rng):
    """A module run in float32, converted, run, converted back: each forward
    uses weights packed in its dtype, matching torch's module in that dtype."""
    theirs, ours, _ = _twins("sequential-conv-bn-relu")
    theirs.eval()
    ours.eval()
    x = rng.standard_normal((2, 3, 8, 9))
    for dtype, bound in [(torch.float32, 1e-5), (torch.float64, F64_BOUND),
                         (torch.float32, 1e-5), (torch.float64, F64_BOUND)]:
        theirs.to(dtype)
        ours.to(dtype)
        xt = x.astype(np.float64 if dtype == torch.float64 else np.float32)
        got = ours(xt)
        assert got.dtype == xt.dtype
        assert parity_error(got, _forward_torch(theirs, xt)) <= bound


def test_mixed_dtype_children_run_layer_by_layer(rng):
    """A block whose BatchNorm alone was made float32 again: each layer
    converts its input to its own dtype, the fused path (one dtype for all)
    steps aside, and the result is the unfused one's."""
    for ours, shape in [(sb.ResidualBlock(4, 4), (2, 4, 7, 6)),
                        (sb.DenseLayer(4, 3, 2), (2, 4, 7, 6)),
                        (sb.SEAttention(8, 2), (2, 8, 3, 3))]:
        ours.double().eval()
        first = next(iter(ours.children()))
        first.float()
        x = rng.standard_normal(shape)
        got = ours(x)
        with runtime.unfused():
            np.testing.assert_array_equal(got, ours(x))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_float64_copies_compute_the_same(how, rng):
    ours = demos.resnet_demo(width=8, out_channels=12).double().eval()
    x = rng.random((2, 3, 30, 31))
    expected = ours(x)
    clone = pickle.loads(pickle.dumps(ours)) if how == "pickle" else copy.deepcopy(ours)
    got = clone(x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------
# functional: every floating argument float64 -> float64, as torch
# ---------------------------------------------------------------------------

def _functional_cases(rng):
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    mean, var = rng.standard_normal(4), rng.random(4) + 0.5
    lw, lb = rng.standard_normal((3, 6)), rng.standard_normal(3)
    return {
        "conv2d": (lambda m, t: m.conv2d(t(x), t(w), t(b), padding=1)),
        "batch_norm": (lambda m, t: m.batch_norm(t(x), t(mean), t(var), t(mean), t(var))),
        "relu": (lambda m, t: m.relu(t(x))),
        "sigmoid": (lambda m, t: (m.sigmoid if m is F else torch.sigmoid)(t(x))),
        "max_pool2d": (lambda m, t: m.max_pool2d(t(x), 3, 2, 1)),
        "adaptive_avg_pool2d": (lambda m, t: m.adaptive_avg_pool2d(t(x), (3, 2))),
        "linear": (lambda m, t: m.linear(t(x), t(lw), t(lb))),
    }


def test_functional_float64_in_float64_out(rng):
    for name, call in _functional_cases(rng).items():
        got = call(F, lambda a: a)
        with torch.no_grad():
            expected = call(torch.nn.functional, torch.from_numpy).numpy()
        assert got.dtype == np.float64, name
        assert parity_error(got, expected) <= F64_BOUND, name

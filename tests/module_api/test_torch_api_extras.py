"""torch.nn.Module / Sequential / ModuleDict methods that ported teaching code
calls, checked against torch 2.13 itself: ``to``/``cpu``/``float`` (no-ops for
float32 on the CPU, NotImplementedError for another device or a dtype other than
float32/float64; the float64 conversions are in test_dtype_api.py), ``requires_grad_``
and ``zero_grad`` (no autograd), ``get_submodule``/``get_parameter``/
``get_buffer``, the list-like Sequential methods, ModuleDict's dict methods,
``load_state_dict(..., assign=...)``, and the module hooks skipblocks refuses
(NotImplementedError pointing to skipblocks.parity).
"""
import copy
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks import module as sb_module
from skipblocks import reference as ref

from helpers import SB_BUILDERS, assert_parity, randomize_, to_torch


def _outcome(fn):
    """What a call does: ("ok", result) or (exception type, message)."""
    try:
        return "ok", fn()
    except Exception as e:  # the exception's type and message are the outcome
        return type(e), str(e)


def _same_outcome(ours, theirs, ours_self, theirs_self):
    """Both returned self, or both raised the same exception and message."""
    if theirs[0] == "ok":
        assert ours[0] == "ok" and ours[1] is ours_self and theirs[1] is theirs_self, (ours, theirs)
    else:
        assert ours == theirs


def _twin_linear():
    tm = nn.Linear(3, 2)
    sm = sb.Linear(3, 2)
    sm.load_state_dict(tm.state_dict())
    return tm, sm


# ---------------------------------------------------------------------------
# to / cpu / float / type and friends
# ---------------------------------------------------------------------------

# Calls torch accepts and that keep a module float32 on the CPU: both return self.
SAME_AS_TORCH_SELF = [
    lambda m: m.to(),
    lambda m: m.to("cpu"),
    lambda m: m.to("cpu:0"),
    lambda m: m.to("cpu:1"),
    lambda m: m.to(torch.device("cpu")),
    lambda m: m.to(None),
    lambda m: m.to(device=None),
    lambda m: m.to(dtype=None),
    lambda m: m.to("cpu", None),
    lambda m: m.to("cpu", torch.float32),
    lambda m: m.to("cpu", torch.float32, True),
    lambda m: m.to("cpu", dtype=torch.float32),
    lambda m: m.to(torch.device("cpu"), dtype=torch.float32),
    lambda m: m.to(torch.float32),
    lambda m: m.to(torch.float32, True),
    lambda m: m.to(torch.float32, non_blocking=True),
    lambda m: m.to(dtype=torch.float32),
    lambda m: m.to(device="cpu", dtype=torch.float32, non_blocking=True),
    lambda m: m.to(device="cpu", non_blocking=False, dtype=None),
    lambda m: m.to(torch.zeros(1)),
    lambda m: m.to(torch.zeros(1), True),
    lambda m: m.to(tensor=torch.zeros(1)),
    lambda m: m.to(non_blocking=True),
    lambda m: m.to(memory_format=torch.contiguous_format),
    lambda m: m.to(memory_format=torch.preserve_format),
    lambda m: m.to(memory_format=None),
    lambda m: m.cpu(),
    lambda m: m.float(),
    lambda m: m.type(torch.float32),
    lambda m: m.type("torch.FloatTensor"),
    lambda m: m.type(torch.FloatTensor),
    lambda m: m.to("cpu").float().eval(),
]

# Calls torch refuses: skipblocks raises the same exception with the same message.
SAME_AS_TORCH_ERROR = [
    lambda m: m.to("cpu", non_blocking=1),
    lambda m: m.to("cpu", non_blocking=None),
    lambda m: m.to("cpu", "cpu"),
    lambda m: m.to(torch.float32, torch.float32),
    lambda m: m.to(torch.float32, dtype=torch.float32),
    lambda m: m.to("cpu", torch.float32, True, 1),
    lambda m: m.to(foo=1),
    lambda m: m.to(tensor=None),
    lambda m: m.to(memory_format="x"),
    lambda m: m.to(torch.channels_last),
    lambda m: m.to("cpu", copy=True),
    lambda m: m.to("cpu", copy=False),
    lambda m: m.to(torch.float32, False, False),
    lambda m: m.to(torch.int32),
    lambda m: m.to(dtype=torch.int64),
    lambda m: m.to(torch.bool),
    lambda m: m.to(torch.zeros(1, dtype=torch.int32)),
    lambda m: m.to("foo"),
    lambda m: m.to("CPU"),
    lambda m: m.to("cpu_x"),
    lambda m: m.to(" cpu"),
    lambda m: m.to(""),
    lambda m: m.to("cpu:-1"),
    lambda m: m.to("cpu:01"),
    lambda m: m.to("cpu:"),
    lambda m: m.to("cpu:0:0"),
    lambda m: m.to(-1),
]


@pytest.mark.parametrize("call", SAME_AS_TORCH_SELF, ids=range(len(SAME_AS_TORCH_SELF)))
def test_to_cpu_float32_returns_self_like_torch(call):
    tm, sm = _twin_linear()
    before = {k: v for k, v in sm.state_dict().items()}
    assert call(tm) is tm
    assert call(sm) is sm
    # nothing moved or was cast: the very same arrays, still float32
    after = sm.state_dict()
    assert all(after[k] is v and v.dtype == np.float32 for k, v in before.items())
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    with torch.no_grad():
        assert_parity(sm(x), tm(to_torch(x)), "linear")


@pytest.mark.parametrize("call", SAME_AS_TORCH_ERROR, ids=range(len(SAME_AS_TORCH_ERROR)))
def test_to_invalid_arguments_raise_torchs_error(call):
    tm, sm = _twin_linear()
    theirs = _outcome(lambda: call(tm))
    assert theirs[0] != "ok"
    assert _outcome(lambda: call(sm)) == theirs


@pytest.mark.parametrize("call", [
    lambda m: m.to(dtype=np.float32),
    lambda m: m.to(np.float32),
    lambda m: m.to(np.dtype("float32")),
    lambda m: m.to("cpu", np.float32),
    lambda m: m.to(np.zeros(2, np.float32)),
    lambda m: m.to(np.zeros(2, np.float32), non_blocking=True),
    lambda m: m.type(np.float32),
], ids=range(7))
def test_to_accepts_numpy_float32(call):
    """NumPy spellings of float32 (torch itself would refuse them): self."""
    m = sb.Conv2d(2, 3, 3)
    assert call(m) is m


# (call, what the NotImplementedError must name)
UNSUPPORTED = [
    (lambda m: m.to("cuda"), "device='cuda'"),
    (lambda m: m.to("cuda:0"), "device='cuda:0'"),
    (lambda m: m.to(torch.device("cuda", 1)), "device=device(type='cuda', index=1)"),
    (lambda m: m.to(0), "device=0"),
    (lambda m: m.to("mps"), "device='mps'"),
    (lambda m: m.to("meta"), "device='meta'"),
    (lambda m: m.to(device="cuda", dtype=torch.float32), "device='cuda'"),
    (lambda m: m.to(torch.float16), "dtype=torch.float16"),
    (lambda m: m.to(torch.bfloat16), "dtype=torch.bfloat16"),
    (lambda m: m.to(dtype=torch.complex64), "dtype=torch.complex64"),
    (lambda m: m.to(memory_format=torch.channels_last), "memory_format=torch.channels_last"),
    (lambda m: m.half(), "half()"),
    (lambda m: m.bfloat16(), "bfloat16()"),
    (lambda m: m.cuda(), "cuda()"),
    (lambda m: m.cuda(0), "cuda()"),
    (lambda m: m.xpu(), "xpu()"),
    (lambda m: m.type("torch.cuda.FloatTensor"), "torch.cuda.FloatTensor"),
    (lambda m: m.type(torch.float16), "torch.float16"),
    (lambda m: m.type("torch.HalfTensor"), "torch.HalfTensor"),
    (lambda m: m.to("cpu", np.float16), "dtype=float16"),
    (lambda m: m.to(np.zeros(1, np.float16)), "dtype=float16"),
]


@pytest.mark.parametrize("call, named", UNSUPPORTED, ids=[n for _, n in UNSUPPORTED])
def test_other_devices_and_dtypes_raise_not_implemented(call, named):
    """What torch would do (move, cast; or fail for a device this machine
    lacks) skipblocks cannot: NotImplementedError naming it, the module unchanged."""
    sm = sb.BatchNorm2d(3)
    before = {k: v for k, v in sm.state_dict().items()}
    with pytest.raises(NotImplementedError) as info:
        call(sm)
    assert named in str(info.value) and "BatchNorm2d" in str(info.value)
    assert all(sm.state_dict()[k] is v for k, v in before.items())
    assert sm.running_mean.dtype == np.float32 and sm.num_batches_tracked.dtype == np.int64


def test_torch_accepts_what_skipblocks_refuses():
    """The NotImplementedErrors above are deliberate: torch casts or moves."""
    tm = nn.Linear(2, 2)
    assert tm.half() is tm and tm.weight.dtype == torch.float16
    assert tm.to("meta") is tm and tm.weight.is_meta


# ---------------------------------------------------------------------------
# requires_grad_ / zero_grad
# ---------------------------------------------------------------------------

def test_requires_grad_false_and_zero_grad_are_noops_like_torch(rng):
    """The inference snippet: eval, freeze, zero_grad, move to the CPU."""
    tm = ref.resnet_demo(width=8, out_channels=16)
    randomize_(tm)
    sm = SB_BUILDERS["resnet"](width=8, out_channels=16)
    sm.load_state_dict(tm.state_dict())
    before = {k: v for k, v in sm.state_dict().items()}
    for m in (tm, sm):
        assert m.eval() is m
        assert m.requires_grad_(False) is m
        assert m.zero_grad() is None
        assert m.zero_grad(set_to_none=False) is None
        assert m.to("cpu") is m and m.cpu() is m and m.float() is m
    assert not any(p.requires_grad for p in tm.parameters())
    assert all(sm.state_dict()[k] is v for k, v in before.items())
    x = rng.standard_normal((2, 3, 33, 35)).astype(np.float32)
    with torch.no_grad():
        assert_parity(sm(x), tm(to_torch(x)), "resnet_demo")


def test_requires_grad_true_raises_not_implemented():
    """No autograd: asking parameters to require gradients cannot be honoured."""
    for m in (sb.Linear(2, 2), sb.Sequential(sb.ReLU(), sb.Conv2d(1, 1, 1))):
        for call in (lambda: m.requires_grad_(), lambda: m.requires_grad_(True),
                     lambda: m.requires_grad_(requires_grad=True)):
            with pytest.raises(NotImplementedError, match="no autograd"):
                call()
    assert nn.Linear(2, 2).requires_grad_() is not None  # torch: fine


@pytest.mark.parametrize("value", [True, False, 1, "x", None])
def test_requires_grad_without_parameters_and_bad_types_like_torch(value):
    """torch sets the flag on each parameter: a module without parameters
    accepts anything; with parameters, a non-bool is torch's TypeError."""
    t, s = nn.ReLU(), sb.ReLU()
    _same_outcome(_outcome(lambda: s.requires_grad_(value)),
                  _outcome(lambda: t.requires_grad_(value)), s, t)
    if not isinstance(value, bool):
        t, s = nn.Linear(2, 2), sb.Linear(2, 2)
        theirs = _outcome(lambda: t.requires_grad_(value))
        assert theirs[0] is TypeError
        assert _outcome(lambda: s.requires_grad_(value)) == theirs


# ---------------------------------------------------------------------------
# get_submodule / get_parameter / get_buffer
# ---------------------------------------------------------------------------

SUBMODULES = ["", "0", "1", "2", "2.conv1", "2.bn", "4.downsample", "4.downsample.1",
              "2.bn.weight", "2.bn.eps", "9", "2.foo", "2.conv1.weight.x", "2..conv1", "x.y",
              "2.downsample", "2.training", "4.downsample.0.bias"]
PARAMETERS = ["0.weight", "2.bn.bias", "4.downsample.0.weight", "2.bn.running_mean", "0.bias",
              "0.training", "0.nothing", "x.weight", "2.conv1", "weight", "", "2.bn.",
              "4.downsample.1.num_batches_tracked"]
BUFFERS = ["2.bn.running_mean", "2.bn.num_batches_tracked", "4.downsample.1.running_var",
           "2.bn.weight", "0.weight", "2.bn.nothing", "2.bn", "running_mean", "", "9.x",
           "2.conv1.stride"]


def _resnet_twins():
    tm = ref.resnet_demo(width=4, out_channels=8)
    randomize_(tm)
    sm = SB_BUILDERS["resnet"](width=4, out_channels=8)
    sm.load_state_dict(tm.state_dict())
    return tm, sm


@pytest.mark.parametrize("target", SUBMODULES)
def test_get_submodule_like_torch(target):
    tm, sm = _resnet_twins()
    theirs = _outcome(lambda: tm.get_submodule(target))
    ours = _outcome(lambda: sm.get_submodule(target))
    if theirs[0] == "ok":
        name = {id(m): n for n, m in tm.named_modules()}[id(theirs[1])]
        assert ours[0] == "ok" and ours[1] is dict(sm.named_modules())[name]
    else:
        assert ours == theirs


@pytest.mark.parametrize("getter, target", [("get_parameter", t) for t in PARAMETERS] +
                         [("get_buffer", t) for t in BUFFERS])
def test_get_parameter_and_buffer_like_torch(getter, target):
    tm, sm = _resnet_twins()
    theirs = _outcome(lambda: getattr(tm, getter)(target))
    ours = _outcome(lambda: getattr(sm, getter)(target))
    if theirs[0] == "ok":
        assert ours[0] == "ok" and ours[1] is sm.state_dict()[target]
        np.testing.assert_array_equal(ours[1], theirs[1].detach().numpy())
    else:
        assert ours == theirs


def test_get_buffer_registered_as_none_like_torch():
    t, s = nn.BatchNorm2d(2, track_running_stats=False), sb.BatchNorm2d(2, track_running_stats=False)
    assert t.get_buffer("running_mean") is None and s.get_buffer("running_mean") is None
    t, s = nn.BatchNorm2d(2, affine=False), sb.BatchNorm2d(2, affine=False)
    assert _outcome(lambda: s.get_parameter("weight")) == _outcome(lambda: t.get_parameter("weight"))


# ---------------------------------------------------------------------------
# calling (hooks: tests/module_api/test_hooks.py)
# ---------------------------------------------------------------------------

def test_call_is_forward_and_forward_is_unwrapped():
    """No per-call wrapper: __call__ calls forward, and every forward is the
    class's own function."""
    assert sb.Conv2d.forward is sb.Conv2d.__dict__["forward"]
    assert not hasattr(sb.Sequential.forward, "__wrapped__")
    m = sb.Linear(3, 2)
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(m(x), m.forward(x))


# ---------------------------------------------------------------------------
# Sequential: the list-like methods of torch 2.13
# ---------------------------------------------------------------------------

def _leaves(lib):
    torch.manual_seed(0)
    mods = [lib.Linear(4, 4), lib.ReLU(), lib.Sigmoid(), lib.Linear(4, 4, bias=False), lib.ReLU()]
    return mods


def _norm(text):
    return (text.replace("torch.nn.modules.container.", "C.").replace("skipblocks.containers.", "C.")
            .replace("torch.nn.modules.module.", "M.").replace("skipblocks.module.", "M.")
            .replace("torch.nn.modules.linear.", "L.").replace("skipblocks.layers.", "L."))


def _describe(value, seq, leaves):
    """A framework-free picture of a result: which leaf is where, under which key."""
    if isinstance(value, (nn.Module, sb.Module)) and hasattr(value, "_modules"):
        index = {id(m): i for i, m in enumerate(leaves)}
        if id(value) in index:
            return ("leaf", index[id(value)])
        return ("container", value is seq, type(value).__name__,
                [(k, index.get(id(m), "?")) for k, m in value._modules.items()])
    return ("value", value)


SEQUENTIAL_OPS = {
    "append": lambda s, m, lib: s.append(m[3]),
    "insert0": lambda s, m, lib: s.insert(0, m[3]),
    "insert_end": lambda s, m, lib: s.insert(3, m[3]),
    "insert_neg": lambda s, m, lib: s.insert(-1, m[4]),
    "insert_neg_n": lambda s, m, lib: s.insert(-3, m[4]),
    "insert_out_of_range": lambda s, m, lib: s.insert(4, m[3]),
    "insert_too_negative": lambda s, m, lib: s.insert(-4, m[3]),
    "insert_not_module": lambda s, m, lib: s.insert(0, 5),
    "extend_seq": lambda s, m, lib: s.extend(lib.Sequential(m[3], m[4])),
    "extend_list": lambda s, m, lib: s.extend([m[3], m[4]]),
    "pop0": lambda s, m, lib: s.pop(0),
    "pop_neg": lambda s, m, lib: s.pop(-1),
    "pop_slice": lambda s, m, lib: s.pop(slice(0, 2)),
    "pop_out_of_range": lambda s, m, lib: s.pop(3),
    "pop_float": lambda s, m, lib: s.pop(1.0),
    "add": lambda s, m, lib: s + lib.Sequential(m[3], m[4]),
    "add_not_seq": lambda s, m, lib: s + [m[3]],
    "iadd": lambda s, m, lib: s.__iadd__(lib.Sequential(m[3], m[4])),
    "iadd_not_seq": lambda s, m, lib: s.__iadd__(m[3]),
    "mul": lambda s, m, lib: s * 2,
    "rmul": lambda s, m, lib: 2 * s,
    "mul_zero": lambda s, m, lib: s * 0,
    "mul_str": lambda s, m, lib: s * "a",
    "imul": lambda s, m, lib: s.__imul__(3),
    "imul_neg": lambda s, m, lib: s.__imul__(-1),
    "getitem": lambda s, m, lib: s[1],
    "getitem_neg": lambda s, m, lib: s[-3],
    "getitem_slice": lambda s, m, lib: s[1:],
    "getitem_bad": lambda s, m, lib: s[3],
    "getitem_float": lambda s, m, lib: s[1.5],
    "setitem": lambda s, m, lib: s.__setitem__(1, m[4]),
    "setitem_neg": lambda s, m, lib: s.__setitem__(-1, m[4]),
    "setitem_bad": lambda s, m, lib: s.__setitem__(7, m[4]),
    "delitem": lambda s, m, lib: s.__delitem__(0),
    "delitem_slice": lambda s, m, lib: s.__delitem__(slice(None, None, 2)),
    "len": lambda s, m, lib: len(s),
    "dir": lambda s, m, lib: [k for k in dir(s) if k.isdigit()],
    "chain": lambda s, m, lib: s.append(m[3]).insert(1, m[4]).extend([m[0]]),
}


@pytest.mark.parametrize("op", sorted(SEQUENTIAL_OPS))
def test_sequential_methods_like_torch(op):
    fn = SEQUENTIAL_OPS[op]
    results = []
    for lib in (nn, sb):
        leaves = _leaves(lib)
        seq = lib.Sequential(*leaves[:3])
        outcome = _outcome(lambda: fn(seq, leaves, lib))
        if outcome[0] == "ok":
            outcome = ("ok", _describe(outcome[1], seq, leaves))
        else:
            outcome = (outcome[0], _norm(outcome[1]))
        results.append((outcome, _describe(seq, seq, leaves),
                        _norm(repr(seq)).replace("Linear(in_features", "L(")))
    assert results[1] == results[0]


def test_sequential_slice_keeps_subclass_and_named_children_like_torch():
    class TSeq(nn.Sequential):
        pass

    class SSeq(sb.Sequential):
        pass

    for lib, cls in ((nn, TSeq), (sb, SSeq)):
        s = cls(OrderedDict([("a", lib.ReLU()), ("b", lib.Sigmoid()), ("c", lib.ReLU())]))
        assert type(s[1:]) is cls and list(s[1:]._modules) == ["b", "c"]
        assert type(s + s) is lib.Sequential and list((s + s)._modules) == list("012345")
    # torch's insert numbers by position, even in a named Sequential (KeyError)
    t = nn.Sequential(OrderedDict([("a", nn.ReLU())]))
    s = sb.Sequential(OrderedDict([("a", sb.ReLU())]))
    assert _outcome(lambda: s.insert(0, sb.ReLU())) == _outcome(lambda: t.insert(0, nn.ReLU()))


def test_sequential_with_a_none_child_raises_like_torch():
    """torch's Sequential.forward calls every entry of _modules, a None one
    too (a child set to None after it was registered): TypeError."""
    outcomes = []
    for lib, x in ((nn, torch.ones(2, 4)), (sb, np.ones((2, 4), np.float32))):
        for position in (0, 1, 2):
            children = [("a", lib.ReLU()), ("b", lib.Sigmoid())]
            children.insert(position, ("gap", None))
            seq = lib.Sequential(OrderedDict(children))
            outcomes.append(_outcome(lambda: seq(x)))
        # a Conv2d + BatchNorm2d pair around the None entry: no fused path
        # steps over it either
        seq = lib.Sequential(lib.Conv2d(1, 1, 1), lib.BatchNorm2d(1), lib.ReLU()).eval()
        seq[1] = None
        outcomes.append(_outcome(lambda: seq(x.reshape(2, 1, 2, 2))))
    assert outcomes[:4] == outcomes[4:] == [(TypeError, "'NoneType' object is not callable")] * 4


def test_sequential_built_with_the_new_methods_computes_as_torch(rng):
    tleaves, sleaves = _leaves(nn), _leaves(sb)
    for t, s in zip(tleaves, sleaves):
        s.load_state_dict(t.state_dict())
    models = []
    for lib, leaves in ((nn, tleaves), (sb, sleaves)):
        m = lib.Sequential(leaves[0])
        m.insert(0, leaves[1]).extend([leaves[2], leaves[3]])
        m += lib.Sequential(leaves[4])
        m = m + lib.Sequential(leaves[0])
        m.pop(0)
        models.append(m)
    assert repr(models[1]) == repr(models[0])
    assert list(models[1].state_dict()) == list(models[0].state_dict())
    x = rng.standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        assert_parity(models[1](x), models[0](to_torch(x)), "sequential")


# ---------------------------------------------------------------------------
# ModuleDict: dict methods of torch 2.13
# ---------------------------------------------------------------------------

MODULEDICT_OPS = {
    "pop": lambda d, m, lib: d.pop("b"),
    "pop_missing": lambda d, m, lib: d.pop("zz"),
    "clear": lambda d, m, lib: d.clear(),
    "keys": lambda d, m, lib: list(d.keys()),
    "values": lambda d, m, lib: [type(v).__name__ for v in d.values()],
    "items": lambda d, m, lib: [(k, type(v).__name__) for k, v in d.items()],
    "update_dict": lambda d, m, lib: d.update({"z": m[3], "a": m[4]}),
    "update_ordered": lambda d, m, lib: d.update(OrderedDict([("z", m[3]), ("b", m[4])])),
    "update_moduledict": lambda d, m, lib: d.update(lib.ModuleDict({"z": m[3]})),
    "update_pairs": lambda d, m, lib: d.update([("z", m[3]), ["y", m[4]]]),
    "update_not_iterable": lambda d, m, lib: d.update(5),
    "update_bad_element": lambda d, m, lib: d.update([("z", m[3]), 7]),
    "update_bad_length": lambda d, m, lib: d.update([("z", m[3], 1)]),
    "update_bad_name": lambda d, m, lib: d.update({"a.b": m[3]}),
    "update_not_module": lambda d, m, lib: d.update({"z": 3}),
    "contains": lambda d, m, lib: ("a" in d, "zz" in d),
    "iter_len": lambda d, m, lib: (list(d), len(d)),
    "delitem": lambda d, m, lib: d.__delitem__("a"),
    "setitem": lambda d, m, lib: d.__setitem__("a", m[4]),
}


@pytest.mark.parametrize("op", sorted(MODULEDICT_OPS))
def test_moduledict_methods_like_torch(op):
    fn = MODULEDICT_OPS[op]
    results = []
    for lib in (nn, sb):
        leaves = _leaves(lib)
        d = lib.ModuleDict({"a": leaves[0], "b": leaves[1], "c": leaves[2]})
        outcome = _outcome(lambda: fn(d, leaves, lib))
        if outcome[0] == "ok":
            outcome = ("ok", _describe(outcome[1], d, leaves))
        else:
            outcome = (outcome[0], _norm(outcome[1]))
        results.append((outcome, _describe(d, d, leaves)))
    assert results[1] == results[0]


def test_dense_block_is_a_moduledict_with_the_new_methods():
    t, s = ref.Dense_Block(2, 4, 3, 2), sb.DenseBlock(2, 4, 3, 2)
    assert type(s.pop("block")).__name__ == type(t.pop("block")).__name__ == "ModuleDict"
    assert list(s.keys()) == list(t.keys()) == []


# ---------------------------------------------------------------------------
# load_state_dict(..., assign=...)
# ---------------------------------------------------------------------------

def test_load_state_dict_assign_false_is_the_in_place_load(rng):
    tm, sm = _resnet_twins()
    weight = sm[0].weight
    source = SB_BUILDERS["resnet"](width=4, out_channels=8)
    result = sm.load_state_dict(source.state_dict(), assign=False)
    assert repr(result) == repr(tm.load_state_dict(tm.state_dict(), assign=False))
    assert sm[0].weight is weight
    np.testing.assert_array_equal(weight, source[0].weight)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_load_state_dict_assign_true_replaces_the_arrays(mode, rng):
    """torch: the module's parameters become the given tensors (old
    references keep the old values). skipblocks: new read-only copies; the
    caches follow them; the numbers are torch's."""
    tm, sm = _resnet_twins()
    tm.train(mode == "train")
    sm.train(mode == "train")
    x = rng.standard_normal((2, 3, 30, 27)).astype(np.float32)
    sm(x)  # builds the packed-weight caches (eval)
    new_t = ref.resnet_demo(width=4, out_channels=8)
    randomize_(new_t, seed=7)
    new_sd = new_t.state_dict()
    old_weight, old_sd = sm[0].weight, {k: v for k, v in sm.state_dict().items()}
    old_values = {k: v.copy() for k, v in old_sd.items()}
    t_old_weight = tm[0].weight
    assert repr(sm.load_state_dict(new_sd, assign=True)) == \
        repr(tm.load_state_dict(copy.deepcopy(new_sd), assign=True))
    assert tm[0].weight is not t_old_weight and sm[0].weight is not old_weight
    for key, value in sm.state_dict().items():
        assert value is not old_sd[key], key
        np.testing.assert_array_equal(old_sd[key], old_values[key])  # old references unchanged
        np.testing.assert_array_equal(value, new_sd[key].numpy())
        assert not value.flags.writeable and sb_module._is_frozen(value), key
        assert not np.shares_memory(value, new_sd[key].numpy()), key
        assert value.dtype == old_values[key].dtype
    with torch.no_grad():
        assert_parity(sm(x), tm(to_torch(x)), "resnet_demo")
    # a later in-place load writes into the assigned arrays
    weight = sm[0].weight
    sm.load_state_dict(old_values)
    assert sm[0].weight is weight
    np.testing.assert_array_equal(weight, old_values["0.weight"])


def test_load_state_dict_assign_true_errors_and_partial_like_torch():
    tm, sm = _twin_linear()
    for sd, strict in [({"weight": torch.zeros(2, 3)}, True),
                       ({"weight": torch.zeros(3, 3), "bias": torch.zeros(2)}, True),
                       ({"weight": torch.zeros(2, 3), "extra": torch.zeros(1)}, False)]:
        theirs = _outcome(lambda: tm.load_state_dict(dict(sd), strict, True))
        before = sm.weight
        ours = _outcome(lambda: sm.load_state_dict(dict(sd), strict, True))
        if theirs[0] == "ok":
            assert ours[0] == "ok" and repr(ours[1]) == repr(theirs[1])
            assert sm.weight is not before and not sm.weight.any()
        else:
            theirs = (theirs[0], re.sub(r"torch\.Size\((\[[^]]*\])\)",
                                        lambda m: str(tuple(eval(m.group(1)))), theirs[1]))
            assert ours == theirs and sm.weight is before  # all-or-nothing
    # a float64 value: torch keeps float64, and so does skipblocks (more in
    # test_dtype_api.py)
    sm.load_state_dict({"weight": np.ones((2, 3)), "bias": np.ones(2)}, assign=True)
    assert sm.weight.dtype == np.float64 and sm.bias.dtype == np.float64
    tm.load_state_dict({"weight": torch.ones(2, 3, dtype=torch.float64),
                        "bias": torch.ones(2, dtype=torch.float64)}, assign=True)
    assert tm.weight.dtype == torch.float64


def test_sequential_pop_takes_key_by_name_like_torch():
    ours = sb.Sequential(sb.ReLU(), sb.Sigmoid())
    theirs = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sigmoid())
    assert type(ours.pop(key=0)).__name__ == type(theirs.pop(key=0)).__name__ == "ReLU"
    assert len(ours) == len(theirs) == 1

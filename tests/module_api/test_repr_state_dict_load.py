"""skipblocks.Module behaves like torch.nn.Module where the issue says it must:
repr (character for character), state_dict keys/order/dtypes, the named_*
iterators, train/eval, load_state_dict (strict and not, torch's wording and
return value, old checkpoints without num_batches_tracked), round trips in both
directions, weights that are never stale, default initialisation, and
unsupported torch arguments.
"""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import skipblocks as sb
from skipblocks import reference as ref

from helpers import (SB_BUILDERS, assert_parity, assert_state_dict_parity, load_from_torch,
                     randn, randomize_, to_torch, torch_repr_as_skipblocks, uniform)


def _both(cls, *args, **kwargs):
    """(torch module, skipblocks module) built with the same call.  Document block names
    resolve to the reference (torch) and to skipblocks' classes."""
    tcls = getattr(ref, cls, None) or getattr(nn, cls)
    scls = getattr(sb, cls)
    return tcls(*args, **kwargs), scls(*args, **kwargs)


# (class, args, kwargs): every layer and block, with argument forms torch echoes differently
MODULE_CASES = [
    ("Conv2d", (3, 4, 3), {}),
    ("Conv2d", (3, 8, 7), dict(stride=2, padding=3, bias=False)),
    ("Conv2d", (4, 6, (3, 1)), dict(stride=(2, 1), padding="valid")),
    ("Conv2d", (4, 4, 3), dict(padding="same", dilation=2, groups=2, bias=False)),
    ("Conv2d", (3, 4, [3, 3]), dict(stride=[2, 2], padding=(1, 0))),
    ("Conv2d", (3, 4, 1), dict(padding=(0, 0), dilation=(1, 1))),
    ("BatchNorm2d", (3,), {}),
    ("BatchNorm2d", (5,), dict(eps=1e-3, momentum=None)),
    ("BatchNorm2d", (5,), dict(affine=False)),
    ("BatchNorm2d", (5,), dict(track_running_stats=False)),
    ("BatchNorm2d", (2,), dict(eps=0.001, momentum=0.01, affine=False, track_running_stats=False)),
    ("BatchNorm2d", (4,), dict(bias=False)),     # torch 2.13's keyword-only bias
    ("ReLU", (), {}),
    ("ReLU", (True,), {}),
    ("ReLU", (), dict(inplace=True)),
    ("Sigmoid", (), {}),
    ("MaxPool2d", (3,), {}),
    ("MaxPool2d", (3, 2), {}),
    ("MaxPool2d", (), dict(kernel_size=2, stride=2)),
    ("MaxPool2d", ((3, 2),), dict(stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True)),
    ("MaxPool2d", ([2, 2],), {}),
    ("MaxPool2d", (2,), dict(stride=[1, 1])),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("AdaptiveAvgPool2d", ((3, None),), {}),
    ("AdaptiveAvgPool2d", ([2, 3],), {}),
    ("Linear", (3, 4), {}),
    ("Linear", (512, 64), dict(bias=False)),
    ("Linear", (3, 0), dict(bias=False)),
    ("ResidualBlock", (4, 4), {}),
    ("ResidualBlock", (4, 8), dict(stride=[2, 1])),
    ("Dense_Layer", (6, 3, 2), {}),
    ("Dense_Block", (3, 5, 3, 2), {}),
    ("Dense_Block", (0, 5, 3, 2), {}),
    ("SEAttention", (), {}),
    ("SEAttention", (64, 8), {}),
    ("SEAttention", (6, 8), {}),
]


def _case_id(case):
    return "%s%s%s" % (case[0], case[1], case[2] or "")


# ---------------------------------------------------------------------------
# repr
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", MODULE_CASES, ids=[_case_id(c) for c in MODULE_CASES])
def test_repr_identical_to_torch(case):
    tm, sm = _both(case[0], *case[1], **case[2])
    assert repr(sm) == torch_repr_as_skipblocks(repr(tm))


def test_repr_of_containers_and_user_modules():
    assert repr(sb.Sequential()) == repr(nn.Sequential())
    assert repr(sb.ModuleDict()) == repr(nn.ModuleDict())
    assert (repr(sb.ModuleDict({"a": sb.ReLU(), "b": sb.Sigmoid()}))
            == repr(nn.ModuleDict({"a": nn.ReLU(), "b": nn.Sigmoid()})))
    ds_t = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
    ds_s = sb.Sequential(sb.Conv2d(4, 8, 1, stride=2, bias=False), sb.BatchNorm2d(8))
    assert (repr(sb.ResidualBlock(4, 8, stride=[2, 1], downsample=ds_s))
            == repr(ref.ResidualBlock(4, 8, stride=[2, 1], downsample=ds_t)))
    tm, sm = _user_modules()
    assert repr(sm) == repr(tm)


# ---------------------------------------------------------------------------
# state_dict structure, named_* iterators, train/eval
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", MODULE_CASES, ids=[_case_id(c) for c in MODULE_CASES])
def test_state_dict_keys_order_dtypes_readonly(case):
    tm, sm = _both(case[0], *case[1], **case[2])
    theirs, ours = tm.state_dict(), sm.state_dict()
    assert type(ours).__name__ == "OrderedDict"
    assert list(ours.keys()) == list(theirs.keys())
    for key, t in theirs.items():
        v = ours[key]
        assert isinstance(v, np.ndarray), key
        assert v.shape == tuple(t.shape), key
        expected_dtype = np.int64 if t.dtype == torch.int64 else np.float32
        assert v.dtype == expected_dtype, (key, v.dtype)
        assert not v.flags.writeable, "%s is writeable: in-place writes would go stale" % key


@pytest.mark.parametrize("case", MODULE_CASES, ids=[_case_id(c) for c in MODULE_CASES])
def test_named_iterators_match_torch(case):
    tm, sm = _both(case[0], *case[1], **case[2])
    names = lambda it: [n for n, _ in it]  # noqa: E731
    assert names(sm.named_parameters()) == names(tm.named_parameters())
    assert names(sm.named_buffers()) == names(tm.named_buffers())
    assert names(sm.named_children()) == names(tm.named_children())
    assert names(sm.named_modules()) == names(tm.named_modules())
    assert len(list(sm.parameters())) == len(list(tm.parameters()))
    assert len(list(sm.buffers())) == len(list(tm.buffers()))
    assert len(list(sm.children())) == len(list(tm.children()))
    assert len(list(sm.modules())) == len(list(tm.modules()))
    assert next(iter(sm.modules())) is sm
    for (n, p), (_, q) in zip(sm.named_parameters(), tm.named_parameters()):
        assert isinstance(p, np.ndarray) and p.shape == tuple(q.shape), n


@pytest.mark.parametrize("name", ["resnet", "densenet", "se"])
def test_demo_state_dict_keys_match_document(name):
    tm = ref.DOCUMENT_INPUTS[name]["builder"]()
    sm = SB_BUILDERS[name]()
    assert list(sm.state_dict().keys()) == list(tm.state_dict().keys())
    names = lambda it: [n for n, _ in it]  # noqa: E731
    assert names(sm.named_modules()) == names(tm.named_modules())


def test_batchnorm_optional_tensors_are_none_like_torch():
    for kwargs in [dict(affine=False), dict(track_running_stats=False)]:
        tm, sm = _both("BatchNorm2d", 3, **kwargs)
        for attr in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            assert (getattr(sm, attr) is None) == (getattr(tm, attr) is None), (kwargs, attr)


def test_dense_block_is_a_module_dict_with_one_entry():
    db = sb.DenseBlock(2, 4, 3, 2)
    assert isinstance(db, sb.ModuleDict)
    assert list(db.keys()) == ["block"]
    assert isinstance(db["block"], sb.ModuleDict)
    assert list(db["block"].keys()) == ["dense0", "dense1"]
    assert len(db["block"]) == 2
    assert [k for k, _ in db["block"].items()] == ["dense0", "dense1"]
    assert all(isinstance(v, sb.DenseLayer) for v in db["block"].values())


def test_sequential_indexing():
    layers = [sb.Conv2d(1, 2, 1), sb.ReLU(), sb.Sigmoid()]
    s = sb.Sequential(*layers)
    assert len(s) == 3
    assert s[0] is layers[0] and s[2] is layers[2] and s[-1] is layers[2]


def test_train_eval_return_self_and_propagate():
    sm = sb_resnet_small()
    assert sm.training
    assert all(m.training for m in sm.modules())
    assert sm.eval() is sm
    assert not any(m.training for m in sm.modules())
    assert sm.train() is sm
    assert all(m.training for m in sm.modules())
    assert sm.train(False) is sm
    assert not any(m.training for m in sm.modules())
    assert sm.train(mode=True) is sm and sm[2].bn.training


def sb_resnet_small():
    return SB_BUILDERS["resnet"](in_channels=2, width=4, out_channels=6)


# ---------------------------------------------------------------------------
# user-defined modules
# ---------------------------------------------------------------------------

def _user_modules():
    class Mine(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 1)
            self.scale = nn.Parameter(torch.rand(3) + 0.5)
            self.register_parameter("shift", nn.Parameter(torch.rand(3)))
            self.register_buffer("offset", torch.rand(3))
            self.add_module("bn", nn.BatchNorm2d(3))

        def forward(self, x):
            return (self.bn(self.conv(x)) * self.scale[:, None, None] + self.offset[:, None, None]
                    + self.shift[:, None, None])

    class MineSB(sb.Module):
        def __init__(self):
            super().__init__()
            self.conv = sb.Conv2d(2, 3, 1)
            self.scale = sb.Parameter(np.ones(3, np.float32))
            self.register_parameter("shift", sb.Parameter(np.zeros(3)))
            self.register_buffer("offset", np.zeros(3, np.float32))
            self.add_module("bn", sb.BatchNorm2d(3))

        def forward(self, x):
            return (self.bn(self.conv(x)) * self.scale[:, None, None] + self.offset[:, None, None]
                    + self.shift[:, None, None])

    MineSB.__name__ = MineSB.__qualname__ = "Mine"
    return Mine(), MineSB()


def test_user_module_registration_and_forward(rng):
    tm, sm = _user_modules()
    assert list(sm.state_dict().keys()) == list(tm.state_dict().keys())
    assert [n for n, _ in sm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in sm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    load_from_torch(sm, tm)
    assert sm.scale.dtype == np.float32 and not sm.scale.flags.writeable
    x = randn(rng, 2, 2, 4, 5)
    with torch.no_grad():
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, "sequential", what="user module")
    assert_state_dict_parity(sm, tm, what="user module")


# ---------------------------------------------------------------------------
# load_state_dict
# ---------------------------------------------------------------------------

def _torch_error(fn):
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


def test_load_state_dict_strict_missing_and_unexpected():
    tm, sm = _both("Conv2d", 3, 4, 3)
    sd = tm.state_dict()
    cases = [
        {"weight": sd["weight"]},
        {**dict(sd), "foo": torch.zeros(1)},
        {"weight": sd["weight"], "foo": torch.zeros(1), "bar": torch.ones(2)},
    ]
    for bad in cases:
        expected = _torch_error(lambda: tm.load_state_dict(dict(bad)))
        with pytest.raises(RuntimeError) as info:
            sm.load_state_dict(dict(bad))
        msg = str(info.value)
        assert "Error(s) in loading state_dict for Conv2d:" in msg, msg
        for line in expected.splitlines()[1:]:
            assert line.strip() in msg, "torch says %r; skipblocks says %r" % (line, msg)


def test_load_state_dict_non_strict_returns_torch_result():
    tm = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    sm = sb.Sequential(sb.Conv2d(1, 2, 1), sb.BatchNorm2d(2))
    sd = {k: v for k, v in tm.state_dict().items() if k not in ("0.bias", "1.running_var")}
    sd["2.weight"] = torch.zeros(3)
    sd["extra"] = torch.zeros(1)
    expected = tm.load_state_dict(dict(sd), strict=False)
    got = sm.load_state_dict(dict(sd), strict=False)
    assert got.missing_keys == expected.missing_keys
    assert got.unexpected_keys == expected.unexpected_keys
    assert tuple(got) == tuple(expected)
    assert got._fields == ("missing_keys", "unexpected_keys")
    ok = sm.load_state_dict(tm.state_dict())
    assert tuple(ok) == ([], [])
    # the keys that were present were copied
    np.testing.assert_array_equal(sm[0].weight, tm[0].weight.detach().numpy())


@pytest.mark.parametrize("strict", [True, False])
def test_load_state_dict_size_mismatch_raises_even_non_strict(strict):
    tm, sm = _both("Conv2d", 3, 4, 3)
    bad = {"weight": torch.zeros(4, 3, 2, 2), "bias": torch.zeros(4)}
    with pytest.raises(RuntimeError) as info:
        sm.load_state_dict(bad, strict=strict)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for Conv2d:" in msg
    assert re.search(r"size mismatch for weight: copying a param with shape .*4, 3, 2, 2.* from "
                     r"checkpoint, the shape in current model is .*4, 3, 3, 3", msg), msg


def test_load_state_dict_without_num_batches_tracked_old_checkpoint():
    """Old checkpoints have no num_batches_tracked: torch loads them strictly, keeping the
    module's current count."""
    tm = randomize_(nn.BatchNorm2d(3))
    sm = sb.BatchNorm2d(3)
    sm(np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 2, 2))   # count becomes 1
    sd = {k: v for k, v in tm.state_dict().items() if k != "num_batches_tracked"}
    result = sm.load_state_dict(sd)
    assert tuple(result) == ([], [])
    assert int(sm.num_batches_tracked) == 1
    np.testing.assert_array_equal(sm.running_mean, tm.running_mean.numpy())
    tm2 = nn.BatchNorm2d(3)
    tm2.num_batches_tracked.fill_(1)
    assert tuple(tm2.load_state_dict(sd)) == ([], []) and int(tm2.num_batches_tracked) == 1


def test_load_state_dict_accepts_torch_tensors_numpy_and_float64(rng):
    tm, sm = _both("Conv2d", 3, 4, 3)
    w64 = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    b_np = uniform(rng, 4).astype(np.float64)
    sm.load_state_dict({"weight": w64, "bias": b_np})
    assert sm.weight.dtype == np.float32 and sm.bias.dtype == np.float32
    tm.load_state_dict({"weight": w64, "bias": torch.from_numpy(b_np)})
    np.testing.assert_array_equal(sm.weight, tm.weight.detach().numpy())
    np.testing.assert_array_equal(sm.bias, tm.bias.detach().numpy())
    # non-contiguous tensor values
    wt = torch.randn(3, 3, 3, 4).permute(3, 2, 1, 0)
    sm.load_state_dict({"weight": wt, "bias": torch.zeros(4)})
    np.testing.assert_array_equal(sm.weight, wt.numpy())


def test_load_state_dict_copies_values(rng):
    """Changing the source after loading must not change the module."""
    tm, sm = _both("Linear", 4, 3)
    w = uniform(rng, 3, 4)
    b = uniform(rng, 3)
    sm.load_state_dict({"weight": w, "bias": b})
    w[...] = 0
    t = torch.ones(3)
    sm.load_state_dict({"weight": torch.ones(3, 4), "bias": t})
    t.zero_()
    np.testing.assert_array_equal(sm.bias, np.ones(3, np.float32))


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,shape", [
    ("resnet", dict(in_channels=2, width=6, out_channels=10), (2, 2, 23, 21)),
    ("densenet", dict(width=8, n_layers=3, growthrate=4, bn_size=2), (2, 3, 21, 19)),
    ("se", dict(channel=24, reduction=4), (3, 24, 4, 5)),
])
def test_state_dict_round_trips(name, kwargs, shape, rng):
    # torch -> skipblocks, with torch tensors as values
    tm = randomize_(ref.DOCUMENT_INPUTS[name]["builder"](**kwargs))
    sm = load_from_torch(SB_BUILDERS[name](**kwargs), tm)
    assert_state_dict_parity(sm, tm, what="torch -> skipblocks")
    # train skipblocks a little so its running stats differ from torch's
    for i in range(2):
        sm(randn(rng, *shape, shift=0.5 * i))
    # skipblocks -> torch, wrapping each value with torch.from_numpy (torch refuses NumPy)
    tm2 = ref.DOCUMENT_INPUTS[name]["builder"](**kwargs)
    result = tm2.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sm.state_dict().items()})
    assert tuple(result) == ([], [])
    assert_state_dict_parity(sm, tm2, what="skipblocks -> torch")
    sm.eval()
    tm2.eval()
    x = randn(rng, *shape)
    with torch.no_grad():
        expected = tm2(to_torch(x))
    assert_parity(sm(x), expected, "%s_demo" % name, what="%s eval after round trip" % name)


# ---------------------------------------------------------------------------
# weights are never silently stale
# ---------------------------------------------------------------------------

def _conv_ref(x, m):
    with torch.no_grad():
        return F.conv2d(to_torch(x), to_torch(m.weight), None if m.bias is None else to_torch(m.bias),
                        m.stride, m.padding, m.dilation, m.groups)


def test_assignment_is_used_by_next_forward(rng):
    conv = sb.Conv2d(3, 4, 3, padding=1)
    x = randn(rng, 2, 3, 6, 5)
    first = conv(x)
    new_w = rng.standard_normal((4, 3, 3, 3))        # float64: cast to float32 on assignment
    conv.weight = new_w
    assert conv.weight.dtype == np.float32 and not conv.weight.flags.writeable
    assert "weight" in dict(conv.named_parameters())
    np.testing.assert_array_equal(conv.state_dict()["weight"], new_w.astype(np.float32))
    second = conv(x)
    assert not np.array_equal(first, second)
    assert_parity(second, _conv_ref(x, conv), "conv2d", what="after weight assignment")
    new_w[...] = 0                                     # the module holds a copy
    assert_parity(conv(x), second, "conv2d", tol=0.0, what="source array changed after assignment")
    conv.bias = np.full(4, 3.0, np.float32)
    assert_parity(conv(x), _conv_ref(x, conv), "conv2d", what="after bias assignment")


def test_assignment_reaches_cached_block_paths(rng):
    """Assigning to a weight inside a block, or to BatchNorm's running stats, shows in the
    next forward, also in eval mode where an implementation may fold BN into the conv."""
    tm = randomize_(ref.ResidualBlock(4, 4))
    sm = load_from_torch(sb.ResidualBlock(4, 4), tm)
    tm.eval()
    sm.eval()
    x = randn(rng, 2, 4, 5, 5)
    sm(x)
    sm(x)                                              # warm any cache
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.2
    rm = rng.standard_normal(4).astype(np.float32)
    rv = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    g = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    sm.conv1.weight = w
    sm.bn.running_mean = rm
    sm.bn.running_var = rv
    sm.bn.weight = g
    with torch.no_grad():
        tm.conv1.weight.copy_(torch.from_numpy(w))
        tm.bn.running_mean.copy_(torch.from_numpy(rm))
        tm.bn.running_var.copy_(torch.from_numpy(rv))
        tm.bn.weight.copy_(torch.from_numpy(g))
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, "residual_block", what="after assigning conv1.weight and bn.*")


def test_load_state_dict_is_used_by_next_forward(rng):
    tm = randomize_(ref.SEAttention(16, 4))
    sm = sb.SEAttention(16, 4)
    x = randn(rng, 2, 16, 3, 3)
    sm(x)
    sm(x)
    load_from_torch(sm, tm)
    with torch.no_grad():
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, "se_attention", what="after load_state_dict")
    tb = randomize_(ref.Dense_Block(2, 4, 3, 2), seed=5)
    sbk = sb.DenseBlock(2, 4, 3, 2).eval()
    xb = randn(rng, 2, 4, 5, 5)
    sbk(xb)
    load_from_torch(sbk, tb)
    tb.eval()
    with torch.no_grad():
        expected = tb(to_torch(xb))
    assert_parity(sbk(xb), expected, "dense_block", what="DenseBlock after load_state_dict")


def test_in_place_writes_are_refused_or_seen(rng):
    """Parameter and buffer arrays are read-only: writing raises ValueError.  If the
    implementation lets a user flip the writeable flag back on, the write must then be
    seen by the next forward (never silently stale)."""
    conv = sb.Conv2d(2, 3, 3)
    bn = sb.BatchNorm2d(3).eval()
    x = randn(rng, 1, 2, 5, 5)
    before = conv(x)
    for arr in (conv.weight, conv.bias, conv.state_dict()["weight"], bn.running_mean,
                bn.running_var, bn.weight, bn.state_dict()["running_var"]):
        with pytest.raises(ValueError):
            arr[...] = 1.0
        with pytest.raises(ValueError):
            arr += 1.0
        with pytest.raises(ValueError):
            np.copyto(arr, np.zeros_like(arr))
    with pytest.raises(ValueError):
        bn.num_batches_tracked[...] = 7
    np.testing.assert_array_equal(conv(x), before)
    # flipping the flag back on: either refused, or honoured by the next forward
    w = conv.weight
    try:
        w.flags.writeable = True
    except ValueError:
        return
    w[...] = 0.25
    assert_parity(conv(x), _conv_ref(x, conv), "conv2d", what="write after re-enabling writeable")


# ---------------------------------------------------------------------------
# default initialisation, seeding
# ---------------------------------------------------------------------------

def test_manual_seed_reproducible_and_torch_like_distribution():
    sb.manual_seed(1234)
    a = sb.Conv2d(16, 32, 3)
    sb.manual_seed(1234)
    b = sb.Conv2d(16, 32, 3)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)
    sb.manual_seed(4321)
    c = sb.Conv2d(16, 32, 3)
    assert not np.array_equal(a.weight, c.weight)
    for m, fan_in in [(a, 16 * 9), (sb.Linear(50, 400), 50), (sb.Conv2d(8, 64, 3, groups=4), 2 * 9)]:
        bound = 1.0 / np.sqrt(fan_in)
        for name in ("weight", "bias"):
            v = getattr(m, name).astype(np.float64).ravel()
            assert np.all(np.abs(v) <= bound * (1 + 1e-6)), (name, fan_in)
            if v.size >= 400:
                # uniform(-bound, bound): covers the range, mean ~0, std ~ bound / sqrt(3)
                assert v.max() > 0.9 * bound and v.min() < -0.9 * bound, (name, fan_in)
                assert abs(v.mean()) < 0.1 * bound, (name, fan_in)
                assert abs(v.std() / (bound / np.sqrt(3)) - 1) < 0.1, (name, fan_in)


def test_batchnorm_default_init():
    bn = sb.BatchNorm2d(5)
    np.testing.assert_array_equal(bn.weight, np.ones(5, np.float32))
    np.testing.assert_array_equal(bn.bias, np.zeros(5, np.float32))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(5, np.float32))
    np.testing.assert_array_equal(bn.running_var, np.ones(5, np.float32))
    assert bn.num_batches_tracked.dtype == np.int64 and int(bn.num_batches_tracked) == 0


# ---------------------------------------------------------------------------
# unsupported and invalid constructor arguments
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda: sb.Conv2d(3, 4, 3, padding_mode="reflect"),
    lambda: sb.Conv2d(3, 4, 3, padding_mode="circular"),
    lambda: sb.Conv2d(3, 4, 3, device="cuda"),
    lambda: sb.Conv2d(3, 4, 3, dtype=np.float16),
    lambda: sb.BatchNorm2d(3, device="cuda"),
    lambda: sb.BatchNorm2d(3, dtype=np.float16),
    lambda: sb.Linear(3, 4, dtype=np.complex64),
    lambda: sb.Linear(3, 4, device="meta"),
    lambda: sb.MaxPool2d(2, return_indices=True),
], ids=["conv-reflect", "conv-circular", "conv-cuda", "conv-f16", "bn-cuda", "bn-f16",
        "linear-complex64", "linear-meta", "maxpool-indices"])
def test_unsupported_torch_arguments_raise(build):
    with pytest.raises(NotImplementedError):
        build()


def test_supported_device_and_dtype_accepted():
    for m in (sb.Conv2d(3, 4, 3, device="cpu", dtype=np.float32), sb.Conv2d(3, 4, 3, device=None, dtype=None),
              sb.BatchNorm2d(3, device="cpu", dtype=np.float32), sb.Linear(3, 4, device="cpu", dtype=np.float32)):
        assert all(v.dtype in (np.float32, np.int64) for v in m.state_dict().values())


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=3, out_channels=4, kernel_size=3, groups=2),
    dict(in_channels=4, out_channels=3, kernel_size=3, groups=2),
    dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding="same"),
    dict(in_channels=4, out_channels=4, kernel_size=3, padding="full"),
])
def test_invalid_conv_arguments_raise_like_torch(kwargs):
    with pytest.raises(Exception) as t_info:
        nn.Conv2d(**kwargs)
    with pytest.raises(type(t_info.value)):
        sb.Conv2d(**kwargs)

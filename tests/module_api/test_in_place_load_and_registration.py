"""A module's own state, compared with torch.nn.Module's:

* load_state_dict copies values in place, so references taken before a load
  (attributes, an earlier state_dict) see the loaded values and later
  updates, as torch's ``param.copy_`` does -- while the arrays stay
  read-only, the load stays all-or-nothing and weight-derived caches are
  rebuilt (never silently stale);
* add_module / register_buffer / register_parameter refuse the names torch
  refuses, with torch's exception types and messages.

(pickle / deepcopy of derived caches: module_api/test_copy_pickle.py.)
"""
import copy
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks import reference as ref

from helpers import assert_parity, load_from_torch, randn, randomize_, to_torch


def _torch_sd_as_numpy(sd):
    return OrderedDict((k, v.detach().numpy().copy()) for k, v in sd.items())


def _seven(sd):
    return {k: np.full(np.shape(v), 7, dtype=np.asarray(v).dtype) for k, v in sd.items()}


# ---------------------------------------------------------------------------
# B3: load_state_dict writes in place
# ---------------------------------------------------------------------------

def test_references_taken_before_load_see_loaded_values_like_torch():
    """The issue's repro: an earlier state_dict and an attribute reference show the
    loaded values, in skipblocks as in torch."""
    tbn, sbn = nn.BatchNorm2d(2), sb.BatchNorm2d(2)
    tsd, ssd = tbn.state_dict(), sbn.state_dict()
    trm, srm = tbn.running_mean, sbn.running_mean
    tw, sw = tbn.weight, sbn.weight
    tbn.load_state_dict({k: torch.full_like(v, 7) for k, v in tsd.items()})
    sbn.load_state_dict(_seven(ssd))
    assert float(tsd["weight"][0]) == 7.0 and float(trm[0]) == 7.0     # torch's behaviour
    for key in tsd:
        np.testing.assert_array_equal(ssd[key], tsd[key].numpy(), err_msg=key)
    np.testing.assert_array_equal(srm, trm.numpy())
    np.testing.assert_array_equal(sw, tw.detach().numpy())
    assert int(ssd["num_batches_tracked"]) == 7 and ssd["num_batches_tracked"].dtype == np.int64
    # the references are still the module's arrays
    assert sbn.running_mean is srm and sbn.weight is sw
    assert all(ssd[k] is v for k, v in sbn.state_dict().items())
    # ... so later running-statistics updates show through them too, as in torch
    x = np.random.default_rng(1).standard_normal((4, 2, 3, 3)).astype(np.float32)
    tbn(to_torch(x))
    sbn(x)
    assert int(ssd["num_batches_tracked"]) == int(tsd["num_batches_tracked"]) == 8
    assert_parity(ssd["running_mean"], tsd["running_mean"], "running_stats")
    assert_parity(srm, trm, "running_stats")
    assert_parity(ssd["running_var"], tsd["running_var"], "running_stats")


def test_loaded_arrays_stay_read_only():
    conv = sb.Conv2d(2, 3, 3)
    bn = sb.BatchNorm2d(3)
    w, rm = conv.weight, bn.running_mean
    view = w[0]                                        # a view taken before the load
    conv.load_state_dict({"weight": np.ones((3, 2, 3, 3)), "bias": np.zeros(3)})
    bn.load_state_dict(_seven(bn.state_dict()))
    np.testing.assert_array_equal(view, np.ones((2, 3, 3), np.float32))
    for arr in (w, conv.bias, rm, bn.weight, bn.num_batches_tracked, view):
        assert not arr.flags.writeable
        assert not arr.base.flags.writeable            # the owner too, after the load
        with pytest.raises(ValueError):
            arr[...] = 0
        with pytest.raises(ValueError):
            arr.flags.writeable = True


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_in_place_load_rebuilds_caches(mode, rng):
    """Loading in place must reach the next forward through every cache: a Conv2d's
    packed weights, the BatchNorm folded into a Conv2d (eval), SEAttention's
    packed Linear weights. Same numbers, bit for bit, as a module built with the
    loaded values, and torch's within tolerance."""
    tm = randomize_(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()))
    sm = sb.Sequential(sb.Conv2d(3, 4, 3, padding=1), sb.BatchNorm2d(4), sb.ReLU())
    tse, sse = randomize_(ref.SEAttention(16, 4)), sb.SEAttention(16, 4)
    for m in (tm, sm, tse, sse):
        m.train(mode == "train")
    x = randn(rng, 2, 3, 6, 5)
    xs = randn(rng, 2, 16, 3, 3)
    for _ in range(2):                                 # warm the caches
        sm(x)
        sse(xs)
    refs = sm.state_dict()
    sm.load_state_dict(tm.state_dict())
    sse.load_state_dict(tse.state_dict())
    assert all(sm.state_dict()[k] is refs[k] for k in refs)   # in place
    fresh = sb.Sequential(sb.Conv2d(3, 4, 3, padding=1), sb.BatchNorm2d(4), sb.ReLU())
    fresh.load_state_dict(tm.state_dict())
    fresh_se = sb.SEAttention(16, 4)
    fresh_se.load_state_dict(tse.state_dict())
    fresh.train(mode == "train")
    fresh_se.train(mode == "train")
    out, out_se = sm(x), sse(xs)
    np.testing.assert_array_equal(out, fresh(x))
    np.testing.assert_array_equal(out_se, fresh_se(xs))
    with torch.no_grad():
        expected, expected_se = tm(to_torch(x)), tse(to_torch(xs))
    assert_parity(out, expected, "sequential", what="after in-place load")
    assert_parity(out_se, expected_se, "se_attention", what="after in-place load")


def test_load_casts_like_torch_copy():
    """float64 -> float32, integers -> float32, float -> int64 (truncated) for
    num_batches_tracked: the values torch's copy_ gives."""
    tbn, sbn = nn.BatchNorm2d(3), sb.BatchNorm2d(3)
    values = {
        "weight": np.array([1 / 3, 2.5e-8, -7.1], np.float64),
        "bias": np.array([1, -2, 3], np.int32),
        "running_mean": np.array([True, False, True]),
        "running_var": np.array([0.1, 0.2, 0.3], np.float64),
        "num_batches_tracked": np.array(5.9),
    }
    ssd = sbn.state_dict()
    tbn.load_state_dict({k: torch.from_numpy(v) for k, v in values.items()})
    sbn.load_state_dict(values)
    for key, t in tbn.state_dict().items():
        assert ssd[key].dtype == t.numpy().dtype, key
        np.testing.assert_array_equal(ssd[key], t.numpy(), err_msg=key)
    assert int(ssd["num_batches_tracked"]) == 5


def test_non_strict_load_updates_earlier_state_dict_like_torch():
    """strict=False: the keys present are copied in place (seen through an earlier
    state_dict), the missing ones keep their values -- as in torch."""
    tm = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    sm = sb.Sequential(sb.Conv2d(1, 2, 1), sb.BatchNorm2d(2))
    load_from_torch(sm, tm)
    tsd, ssd = tm.state_dict(), sm.state_dict()
    before = _torch_sd_as_numpy(tsd)
    new = {"0.weight": np.full((2, 1, 1, 1), 3.0, np.float32),
           "1.running_var": np.full(2, 4.0, np.float32),
           "unexpected": np.zeros(1, np.float32)}
    expected = tm.load_state_dict({k: torch.from_numpy(v) for k, v in new.items()}, strict=False)
    got = sm.load_state_dict(new, strict=False)
    assert tuple(got) == tuple(expected)
    for key in tsd:
        np.testing.assert_array_equal(ssd[key], tsd[key].numpy(), err_msg=key)
        if key in new:
            np.testing.assert_array_equal(ssd[key], new[key], err_msg=key)
        else:
            np.testing.assert_array_equal(ssd[key], before[key], err_msg=key)


@pytest.mark.parametrize("failure", ["missing", "unexpected", "size", "dtype"])
def test_failed_load_changes_nothing_where_torch_copies_part(failure):
    """A load that raises: torch has already copied the matching keys in place (an
    earlier state_dict shows them); skipblocks is all-or-nothing -- the module and an
    earlier state_dict keep every old value."""
    tbn, sbn = nn.BatchNorm2d(2), sb.BatchNorm2d(2)
    tsd, ssd = tbn.state_dict(), sbn.state_dict()
    before = _torch_sd_as_numpy(tsd)
    bad = {k: np.full(v.shape, 5, v.numpy().dtype) for k, v in tsd.items()}
    if failure == "missing":
        del bad["running_var"]
    elif failure == "unexpected":
        bad["extra"] = np.zeros(1, np.float32)
    elif failure == "size":
        bad["bias"] = np.zeros(3, np.float32)
    if failure != "dtype":
        with pytest.raises(RuntimeError):
            tbn.load_state_dict({k: torch.from_numpy(v) for k, v in bad.items()})
        assert float(tsd["weight"][0]) == 5.0          # torch: partly loaded before raising
    else:
        bad["bias"] = np.zeros(2, np.complex64)        # torch has no counterpart to refuse
    with pytest.raises(RuntimeError) as info:
        sbn.load_state_dict(bad)
    assert "Error(s) in loading state_dict for BatchNorm2d:" in str(info.value)
    for key, value in before.items():
        np.testing.assert_array_equal(ssd[key], value, err_msg=key)
        np.testing.assert_array_equal(sbn.state_dict()[key], value, err_msg=key)


def test_reloading_own_or_swapped_arrays_reads_values_before_writing(rng):
    """Values that are the module's own arrays (its state_dict reloaded, or two
    layers' weights swapped through an earlier state_dict) are read as they were
    when load_state_dict was called."""
    sm = sb.Sequential(sb.Conv2d(3, 3, 1, bias=False), sb.Conv2d(3, 3, 1, bias=False),
                       sb.BatchNorm2d(3))
    sm(randn(rng, 2, 3, 4, 4))                         # running stats move
    sd = sm.state_dict()
    snapshot = {k: v.copy() for k, v in sd.items()}
    sm.load_state_dict(sd)
    for key, value in snapshot.items():
        np.testing.assert_array_equal(sm.state_dict()[key], value)
    swapped = dict(sd)
    swapped["0.weight"], swapped["1.weight"] = sd["1.weight"], sd["0.weight"]
    swapped["2.running_mean"], swapped["2.running_var"] = sd["2.running_var"], sd["2.running_mean"]
    sm.load_state_dict(swapped)
    np.testing.assert_array_equal(sd["0.weight"], snapshot["1.weight"])
    np.testing.assert_array_equal(sd["1.weight"], snapshot["0.weight"])
    np.testing.assert_array_equal(sd["2.running_mean"], snapshot["2.running_var"])
    np.testing.assert_array_equal(sd["2.running_var"], snapshot["2.running_mean"])


def test_assignment_still_replaces_the_array_like_torch():
    """``conv.weight = new`` replaces the array, as torch replaces the Parameter: an
    earlier reference and an earlier state_dict keep the old values."""
    tconv, sconv = nn.Conv2d(1, 2, 1), sb.Conv2d(1, 2, 1)
    load_from_torch(sconv, tconv)
    tw, sw = tconv.weight, sconv.weight
    tsd, ssd = tconv.state_dict(), sconv.state_dict()
    old = sw.copy()
    tconv.weight = nn.Parameter(torch.full((2, 1, 1, 1), 9.0))
    sconv.weight = np.full((2, 1, 1, 1), 9.0)
    assert tconv.weight is not tw and sconv.weight is not sw
    np.testing.assert_array_equal(tw.detach().numpy(), old)        # torch
    np.testing.assert_array_equal(tsd["weight"].numpy(), old)
    np.testing.assert_array_equal(sw, old)                         # skipblocks
    np.testing.assert_array_equal(ssd["weight"], old)
    np.testing.assert_array_equal(sconv.weight, np.full((2, 1, 1, 1), 9.0, np.float32))


def test_shallow_copy_shares_arrays_like_torch():
    """copy.copy shares the parameters with the original (torch too): a load into
    either is seen by both, and copying does not replace the original's arrays."""
    tconv, sconv = nn.Conv2d(1, 2, 1), sb.Conv2d(1, 2, 1)
    sw = sconv.weight
    tcopy, scopy = copy.copy(tconv), copy.copy(sconv)
    assert tcopy.weight is tconv.weight
    assert scopy.weight is sconv.weight is sw
    x = np.ones((1, 1, 2, 2), np.float32)
    sconv.eval()(x)                                    # a cache on the original
    new = {"weight": np.full((2, 1, 1, 1), 2.0), "bias": np.zeros(2)}
    tcopy.load_state_dict({k: torch.from_numpy(v) for k, v in new.items()})
    scopy.load_state_dict(new)
    np.testing.assert_array_equal(sw, tconv.weight.detach().numpy())
    np.testing.assert_array_equal(sconv(x), np.full((1, 2, 2, 2), 2.0, np.float32))


def test_loads_while_another_thread_runs_forwards_leave_no_stale_cache(rng):
    """A forward running in another thread during a load may see old or new
    values (as with torch), but once the loads are done every cache follows the
    last one: the output is bit-identical to a module built with its values."""
    conv = sb.Conv2d(8, 8, 3, padding=1).eval()
    bn = sb.BatchNorm2d(8).eval()
    model = sb.Sequential(conv, bn, sb.ReLU())
    x = randn(rng, 1, 8, 12, 12)
    states = []
    for seed in range(2):
        r = np.random.default_rng(seed)
        states.append({"0.weight": r.standard_normal((8, 8, 3, 3)).astype(np.float32),
                       "0.bias": r.standard_normal(8).astype(np.float32),
                       "1.weight": r.uniform(0.5, 1.5, 8).astype(np.float32),
                       "1.bias": r.standard_normal(8).astype(np.float32),
                       "1.running_mean": r.standard_normal(8).astype(np.float32),
                       "1.running_var": r.uniform(0.5, 2, 8).astype(np.float32),
                       "1.num_batches_tracked": np.array(seed)})
    stop = threading.Event()
    errors = []

    def run():
        try:
            while not stop.is_set():
                model(x)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for i in range(40):
            model.load_state_dict(states[i % 2])
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    fresh = sb.Sequential(sb.Conv2d(8, 8, 3, padding=1), sb.BatchNorm2d(8), sb.ReLU()).eval()
    fresh.load_state_dict(states[1])
    np.testing.assert_array_equal(model(x), fresh(x))


# ---------------------------------------------------------------------------
# B5: names given to add_module / register_buffer / register_parameter
# ---------------------------------------------------------------------------

# Names whose status (attribute, parameter, buffer, child, nothing) is the same on
# torch's BatchNorm2d and ours, so torch's answer is the one to give.
NAMES = ["training", "_modules", "_parameters", "_buffers", "forward", "eval", "train",
         "state_dict", "weight", "bias", "running_mean", "num_batches_tracked", "eps",
         "momentum", "num_features", "fresh", "a.b", ".", "", 5, None, 1.5, b"x",
         ("t",), np.int64(3)]

_VALUES = {
    "add_module": (lambda: nn.ReLU(), lambda: sb.ReLU()),
    "register_buffer": (lambda: torch.zeros(2), lambda: np.zeros(2, np.float32)),
    "register_parameter": (lambda: nn.Parameter(torch.zeros(2)),
                           lambda: sb.Parameter(np.zeros(2, np.float32))),
}


def _outcome(fn):
    try:
        fn()
    except Exception as e:  # the exception's type and message are the outcome
        return type(e), str(e)
    return None


@pytest.mark.parametrize("method", sorted(_VALUES))
@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_registration_names_checked_like_torch(method, name):
    tbn, sbn = nn.BatchNorm2d(2), sb.BatchNorm2d(2)
    tvalue, svalue = _VALUES[method]
    expected = _outcome(lambda: getattr(tbn, method)(name, tvalue()))
    got = _outcome(lambda: getattr(sbn, method)(name, svalue()))
    assert got == expected
    if expected is not None:
        # refused: nothing changed
        assert sbn.training is True and callable(sbn.forward) and callable(sbn.eval)
        assert list(sbn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                          "num_batches_tracked"]
        assert isinstance(sbn._modules, OrderedDict) and not sbn._modules
        assert list(sbn._parameters) == ["weight", "bias"]


def test_the_issue_examples_are_refused():
    bn = sb.BatchNorm2d(2)
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        bn.add_module("training", sb.ReLU())
    assert bn.training is True
    m = sb.Sequential(sb.ReLU())
    with pytest.raises(KeyError, match="attribute '_modules' already exists"):
        m.add_module("_modules", sb.ReLU())
    assert m(np.ones(2, np.float32)).tolist() == [1.0, 1.0]
    c = sb.Conv2d(1, 2, 1)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        c.register_buffer("weight", np.zeros((2, 1, 1, 1)))
    assert "weight" in dict(c.named_parameters()) and not dict(c.named_buffers())
    with pytest.raises(KeyError, match="attribute 'bias' already exists"):
        sb.BatchNorm2d(2).register_buffer("bias", np.zeros(2))


@pytest.mark.parametrize("name", ["training", "forward", "eval", "keys", "update", "_modules"])
def test_container_children_names_checked_like_torch(name):
    for build_t, build_s in [
        (lambda: nn.ModuleDict({name: nn.ReLU()}), lambda: sb.ModuleDict({name: sb.ReLU()})),
        (lambda: nn.ModuleDict().__setitem__(name, nn.ReLU()),
         lambda: sb.ModuleDict().__setitem__(name, sb.ReLU())),
        (lambda: nn.Sequential(OrderedDict([(name, nn.ReLU())])),
         lambda: sb.Sequential(OrderedDict([(name, sb.ReLU())]))),
    ]:
        expected = _outcome(build_t)
        assert _outcome(build_s) == expected
    # ModuleDict's own methods are attributes too: all of these are refused there
    assert _outcome(lambda: sb.ModuleDict({name: sb.ReLU()})) == (
        KeyError, repr(f"attribute '{name}' already exists"))


def test_same_kind_replacement_still_allowed_like_torch():
    """A parameter may be re-registered as a parameter, a buffer as a buffer, a child
    as a child (torch too); None entries count as registered names."""
    tconv, sconv = nn.Conv2d(1, 2, 1, bias=False), sb.Conv2d(1, 2, 1, bias=False)
    tconv.register_parameter("bias", nn.Parameter(torch.ones(2)))
    sconv.register_parameter("bias", sb.Parameter(np.ones(2)))
    assert [n for n, _ in sconv.named_parameters()] == [n for n, _ in tconv.named_parameters()]
    tbn, sbn = nn.BatchNorm2d(2), sb.BatchNorm2d(2)
    tbn.register_buffer("running_mean", torch.ones(2))
    sbn.register_buffer("running_mean", np.ones(2))
    np.testing.assert_array_equal(sbn.running_mean, tbn.running_mean.numpy())
    tseq, sseq = nn.Sequential(nn.ReLU()), sb.Sequential(sb.ReLU())
    tseq.add_module("0", nn.Sigmoid())
    sseq.add_module("0", sb.Sigmoid())
    assert type(sseq[0]).__name__ == type(tseq[0]).__name__ == "Sigmoid"
    tseq.add_module("0", None)
    sseq.add_module("0", None)
    assert list(sseq._modules) == list(tseq._modules) == ["0"]


def test_add_module_type_errors_like_torch():
    for value in (np.zeros(2), 5, "relu", nn.Parameter(torch.zeros(1))):
        expected = _outcome(lambda: nn.Sequential().add_module("x", value))
        if isinstance(value, torch.Tensor):
            # torch's typename of a tensor is its type(): ours reads it the same way
            assert expected == (TypeError, "torch.FloatTensor is not a Module subclass")
        assert _outcome(lambda: sb.Sequential().add_module("x", value)) == expected


def test_attribute_assignment_keeps_torch_semantics():
    """Plain attribute assignment is not add_module: as in torch, a Module or a
    Parameter may replace a plain attribute of that name; a Parameter whose name is
    a method is still refused by register_parameter."""
    for mod, Param, Relu, value in [(nn.Module(), lambda: nn.Parameter(torch.zeros(1)),
                                     nn.ReLU, torch.zeros(1)),
                                    (sb.Module(), lambda: sb.Parameter(np.zeros(1)),
                                     sb.ReLU, np.zeros(1))]:
        mod.act = None
        mod.act = Relu()
        assert "act" in mod._modules and "act" not in mod.__dict__
        mod.scale = 1.0
        mod.scale = Param()
        assert "scale" in mod._parameters and "scale" not in mod.__dict__
        mod.act = Param()                              # a child replaced by a parameter
        assert "act" in mod._parameters and "act" not in mod._modules
    t = _outcome(lambda: setattr(nn.Module(), "forward", nn.Parameter(torch.zeros(1))))
    s = _outcome(lambda: setattr(sb.Module(), "forward", sb.Parameter(np.zeros(1))))
    assert s == t == (KeyError, "\"attribute 'forward' already exists\"")


def test_registration_before_init_is_refused_like_torch():
    class T(nn.Module):
        def __init__(self, how):
            how(self)

    class S(sb.Module):
        def __init__(self, how):
            how(self)

    for how in ("register_buffer", "register_parameter"):
        expected = _outcome(lambda: T(lambda m: getattr(m, how)("x", None)))
        assert _outcome(lambda: S(lambda m: getattr(m, how)("x", None))) == expected
    for t_value, s_value in [(nn.ReLU(), sb.ReLU()),
                             (nn.Parameter(torch.zeros(1)), sb.Parameter(np.zeros(1)))]:
        expected = _outcome(lambda: T(lambda m: setattr(m, "x", t_value)))
        assert _outcome(lambda: S(lambda m: setattr(m, "x", s_value))) == expected


def test_partial_load_into_a_module_registered_twice_keeps_the_count_like_torch():
    """A BatchNorm reachable under two names ('1.' and '4.', as Sequential * 2
    makes): the checkpoint's num_batches_tracked under the first name must
    survive the second name's "keep the current count" fill, as in torch,
    whose copies run one after another."""
    import torch
    ours = sb.Sequential(sb.Conv2d(2, 2, 1), sb.BatchNorm2d(2)) * 2
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1), torch.nn.BatchNorm2d(2)) * 2
    values = {"1.running_mean": np.array([1.0, 2.0], np.float32),
              "1.num_batches_tracked": np.array(7, np.int64)}
    ours.load_state_dict(values, strict=False)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in values.items()}, strict=False)
    assert int(ours[1].num_batches_tracked) == int(theirs[1].num_batches_tracked) == 7
    np.testing.assert_array_equal(ours[1].running_mean, theirs[1].running_mean.numpy())

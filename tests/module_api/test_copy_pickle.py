"""copy.deepcopy and pickle keep a module's weights protected and its
numbers the same: the copies' arrays are read-only again (so a write
cannot go around the packed-weight caches) and share nothing with the
original."""
import copy
import pickle

import numpy as np
import pytest

import skipblocks as sb
from skipblocks import demos


def _in(dtype, model):
    """``model`` in ``dtype`` ("float32", as built, or "float64")."""
    return model.double() if dtype == "float64" else model


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_copies_are_frozen_independent_and_equal(how, mode, dtype):
    sb.manual_seed(3)
    model = _in(dtype, demos.resnet_demo(width=8, out_channels=16))
    model.train(mode == "train")
    x = np.random.default_rng(0).random((2, 3, 31, 29), dtype=dtype)
    model(x)  # builds the packed-weight caches (eval) and moves running stats (train)
    clone = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    for (name, a), (_, b) in zip(model.state_dict().items(), clone.state_dict().items()):
        assert not b.flags.writeable, f"{how} left {name} writable"
        with pytest.raises(ValueError):
            b.flags.writeable = True
        assert not np.shares_memory(a, b), f"{how} shares {name} with the original"
        assert a.dtype == b.dtype, f"{how} changed the dtype of {name}"
        np.testing.assert_array_equal(a, b)
    out = clone(x)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, model(x))
    # The copy's caches follow the copy's own weights.
    clone.eval()
    model.eval()
    first = clone[0]
    first.weight = first.weight * 2
    assert not np.array_equal(clone(x), model(x))


def _caches(model):
    return [name for name, m in model.named_modules() if "_packed_cache" in m.__dict__]


BUILDERS = {
    "resnet": (lambda: demos.resnet_demo(width=16, out_channels=32), (1, 3, 40, 36)),
    "densenet": (lambda: demos.densenet_demo(width=8, n_layers=3, growthrate=4, bn_size=2),
                 (2, 3, 21, 19)),
    "se": (lambda: demos.se_demo(channel=32, reduction=4), (3, 32, 4, 5)),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_pickle_does_not_carry_derived_caches(name, dtype):
    """The packed-weight caches a forward builds are derived from the weights: they
    are not pickled (a forward must not double the demo ResNet's pickle), and
    not copied by deepcopy."""
    build, shape = BUILDERS[name]
    sb.manual_seed(5)
    model = _in(dtype, build()).eval()
    before = pickle.dumps(model)
    x = np.random.default_rng(1).random(shape, dtype=dtype)
    model(x)
    assert _caches(model), "the forward built no cache: the test tests nothing"
    after = pickle.dumps(model)
    assert len(after) == len(before)     # eval forwards change no weight, no version
    assert after == before
    assert not _caches(pickle.loads(after))
    assert not _caches(copy.deepcopy(model))
    assert _caches(model)                # copying leaves the original's caches alone


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_copies_compute_the_same_and_follow_weight_changes(how, name, dtype):
    """A copy made after a forward computes bit-identical results, and its caches
    follow later changes of its own weights -- assignment and an in-place
    load_state_dict -- exactly as the original's follow the same changes."""
    build, shape = BUILDERS[name]
    sb.manual_seed(6)
    model = _in(dtype, build()).eval()
    rng = np.random.default_rng(2)
    x = rng.random(shape, dtype=dtype)
    first = model(x)
    assert first.dtype == np.dtype(dtype)
    clone = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone(x), first)
    # the same in-place load into both
    new = {k: (v * rng.uniform(0.5, 1.5, v.shape)).astype(v.dtype) if v.dtype.kind == "f"
           else v for k, v in model.state_dict().items()}
    for m in (model, clone):
        m.load_state_dict(new)
    second = model(x)
    assert not np.array_equal(second, first)
    np.testing.assert_array_equal(clone(x), second)
    # the same assignment to the first weight of both
    key = next(k for k in new if k.endswith("weight"))
    owner, attr = key.rpartition(".")[::2]
    for m in (model, clone):
        target = dict(m.named_modules())[owner]
        setattr(target, attr, getattr(target, attr) * -1)
    third = model(x)
    assert not np.array_equal(third, second)
    np.testing.assert_array_equal(clone(x), third)
    # the copy is independent: changing it leaves the original alone
    clone.load_state_dict({k: v * 0 if v.dtype.kind == "f" else v for k, v in new.items()})
    np.testing.assert_array_equal(model(x), third)

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


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_copies_are_frozen_independent_and_equal(how, mode):
    sb.manual_seed(3)
    model = demos.resnet_demo(width=8, out_channels=16)
    model.train(mode == "train")
    x = np.random.default_rng(0).random((2, 3, 31, 29), dtype=np.float32)
    model(x)  # builds the packed-weight caches (eval) and moves running stats (train)
    clone = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    for (name, a), (_, b) in zip(model.state_dict().items(), clone.state_dict().items()):
        assert not b.flags.writeable, f"{how} left {name} writable"
        with pytest.raises(ValueError):
            b.flags.writeable = True
        assert not np.shares_memory(a, b), f"{how} shares {name} with the original"
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(clone(x), model(x))
    # The copy's caches follow the copy's own weights.
    clone.eval()
    model.eval()
    first = clone[0]
    first.weight = first.weight * 2
    assert not np.array_equal(clone(x), model(x))

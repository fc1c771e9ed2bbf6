"""Flatten / skipblocks.flatten, Identity and ModuleList against torch 2.13
at test time: reprs, results (views where NumPy can make them, dtypes kept),
state_dict keys, list behaviour and errors (type and wording)."""
import numpy as np
import pytest
import torch

import skipblocks as sb


def _same_error(call_sb, call_torch, prefix=""):
    with pytest.raises(Exception) as want:
        call_torch()
    with pytest.raises(Exception) as got:
        call_sb()
    assert type(got.value) is type(want.value)
    assert str(got.value) == prefix + str(want.value)


# ---- flatten ----------------------------------------------------------------

SHAPES = [(), (5,), (2, 3), (2, 3, 4), (2, 0, 3), (1, 2, 3, 4, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_flatten_matches_torch(shape):
    x = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    t = torch.from_numpy(x)
    span = max(len(shape), 1)
    for start in range(-span - 1, span + 1):
        for end in range(-span - 1, span + 1):
            try:
                want = torch.flatten(t, start, end)
            except Exception:
                _same_error(lambda: sb.flatten(x, start, end), lambda: torch.flatten(t, start, end),
                            "flatten: ")
                _same_error(lambda: sb.Flatten(start, end)(x),
                            lambda: torch.nn.Flatten(start, end)(t), "Flatten: ")
                continue
            got = sb.flatten(x, start, end)
            assert got.shape == tuple(want.shape) and got.dtype == x.dtype
            assert np.array_equal(got, want.numpy())
            assert np.shares_memory(got, x) or x.size == 0   # a view
            if len(shape) and start % span == end % span:
                assert got is x   # torch returns self
    assert sb.flatten(x).shape == tuple(torch.flatten(t).shape)


def test_flatten_errors_named_in_the_brief():
    y = np.zeros((2, 3))
    with pytest.raises(IndexError, match=r"^flatten: Dimension out of range \(expected to be "
                                         r"in range of \[-2, 1\], but got 5\)$"):
        sb.flatten(y, 5)
    with pytest.raises(RuntimeError, match="^flatten: flatten\\(\\) has invalid args: "
                                           "start_dim cannot come after end_dim$"):
        sb.flatten(y, 1, 0)


def test_flatten_views_copies_and_inputs():
    x = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    t = x.transpose(2, 1, 0)            # not viewable: a copy, as torch's reshape
    got = sb.flatten(t, 1)
    assert np.array_equal(got, torch.flatten(torch.from_numpy(x).permute(2, 1, 0), 1).numpy())
    assert not np.shares_memory(got, x)
    assert np.shares_memory(sb.flatten(x[:, :, :], 1), x)
    assert sb.flatten(np.array(3.0)).shape == (1,)
    assert sb.flatten([[1, 2], [3, 4]]).tolist() == [1, 2, 3, 4]
    assert np.array_equal(sb.flatten(torch.ones(2, 3, dtype=torch.float64), 0),
                          np.ones(6))
    assert sb.Flatten()(np.zeros((4, 2, 3), np.float64)).shape == (4, 6)


def test_flatten_repr_and_attributes():
    for args in [(), (0,), (2, 3), (-3, -2)]:
        m, t = sb.Flatten(*args), torch.nn.Flatten(*args)
        assert repr(m) == repr(t)
        assert (m.start_dim, m.end_dim) == (t.start_dim, t.end_dim)
    assert sb.Flatten().state_dict() == {}


# ---- Identity ---------------------------------------------------------------

def test_identity():
    x = np.ones(3)
    for args, kwargs in [((), {}), ((3, "a"), {"k": 4})]:
        m, t = sb.Identity(*args, **kwargs), torch.nn.Identity(*args, **kwargs)
        assert repr(m) == repr(t) == "Identity()"
        assert m(x) is x
        obj = object()
        assert m(obj) is obj
    assert sb.Identity().state_dict() == {}


# ---- ModuleList -------------------------------------------------------------

def _pair(n_linear=3):
    def build(L):
        return L.ModuleList([L.Linear(2, 3) for _ in range(n_linear)] + [L.ReLU(), L.ReLU(),
                                                                       L.Linear(3, 3)])
    return build(sb), build(torch.nn)


def _assert_same(m, t):
    assert repr(m) == repr(t)
    assert len(m) == len(t)
    assert list(m.state_dict()) == list(t.state_dict())
    assert [type(c).__name__ for c in m] == [type(c).__name__ for c in t]
    assert list(m._modules) == list(t._modules)


def test_modulelist_repr_state_dict_and_indexing():
    m, t = _pair()
    _assert_same(m, t)
    assert "(0-2): 3 x Linear" in repr(m) and "(3-4): 2 x ReLU()" in repr(m)
    assert repr(sb.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"
    assert list(m.state_dict())[:2] == ["0.weight", "0.bias"]
    for i in range(-len(m), len(m)):
        assert type(m[i]).__name__ == type(t[i]).__name__
    for sl in [slice(1, 4), slice(None, None, -2), slice(5, 1, -1), slice(10, 20)]:
        _assert_same(m[sl], t[sl])
        assert type(m[sl]) is sb.ModuleList
    nested = sb.ModuleList([sb.Sequential(sb.ReLU()), sb.ModuleList([sb.ReLU()])])
    tnested = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.ReLU()),
                                   torch.nn.ModuleList([torch.nn.ReLU()])])
    assert repr(nested) == repr(tnested)
    assert dir(m) == [k for k in dir(m) if not k.isdigit()]
    assert not any(k.isdigit() for k in dir(m)) and not any(k.isdigit() for k in dir(t))


def test_modulelist_mutations_match_torch():
    m, t = _pair()
    for L, x in ((sb, m), (torch.nn, t)):
        x.append(L.Sigmoid())
        x.extend([L.ReLU(), L.Linear(1, 1)])
        x.insert(1, L.Sigmoid())
        x.insert(len(x), L.ReLU())
        x[0] = L.Linear(4, 4)
        x[-1] = L.Sigmoid()
        del x[2]
        del x[1:7:2]
        x += [L.ReLU()]
    _assert_same(m, t)
    assert type(m.pop(0)).__name__ == type(t.pop(0)).__name__
    _assert_same(m, t)
    popped, tpopped = m.pop(slice(0, 2)), t.pop(slice(0, 2))
    _assert_same(popped, tpopped)
    _assert_same(m, t)
    a, ta = m + sb.ModuleList([sb.ReLU()]), t + torch.nn.ModuleList([torch.nn.ReLU()])
    _assert_same(a, ta)
    _assert_same(m + [sb.ReLU()], t + [torch.nn.ReLU()])
    assert m.append(sb.ReLU()) is m and m.extend([]) is m


@pytest.mark.parametrize("expr", [
    "x[9]", "x[-9]", "x['a']", "x[1.0]", "x.__setitem__(9, L.ReLU())",
    "x.__delitem__(9)", "x.pop(9)", "x.extend(5)", "x.extend(L.ReLU())", "x.append(5)",
    "x.insert(-1, L.ReLU())", "x.__setitem__(0, 5)", "x + 5", "x(1)", "L.ModuleList(5)",
    "L.ModuleList([1])",
])
def test_modulelist_errors_match_torch(expr):
    m, t = _pair()

    def run(L, x):
        return lambda: eval(expr, {"L": L, "x": x})
    if expr == "x.__setitem__(0, 5)":
        # skipblocks' Module words this one itself (a known departure of
        # Module.__setattr__: "a Module or None is expected")
        with pytest.raises(TypeError, match="cannot assign 'int' as child module '0'"):
            run(sb, m)()
        return
    _same_error(run(sb, m), run(torch.nn, t))

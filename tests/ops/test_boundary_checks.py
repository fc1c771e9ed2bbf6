"""The C boundary's checks: parameters near the limits, arguments the
private _C functions must refuse, and torch's error messages for bad layer
arguments: each case is one a crash, a wrong answer or a misleading message
could hide in."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import skipblocks as sb
import skipblocks.functional as F
from skipblocks import _C

BIG = 2**31 - 1  # SB_CONV_PARAM_MAX / SB_POOL_PARAM_MAX: torch's int


def _message(exc):
    """skipblocks' error text without its leading "<layer>: "."""
    layer, _, text = str(exc).splitlines()[0].partition(": ")
    assert layer and text, exc
    return text


def _torch_message(exc):
    return str(exc).splitlines()[0]


def _outcome(fn):
    try:
        return ("ok", fn())
    except (RuntimeError, ValueError) as e:
        return ("error", e)


# -- convolution: sizes past int64 in the packed path's staging -------------------
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", [
    # stride = dilation = padding = 2^31 - 1: 2^31 phase planes per axis
    ((1, 1, 1, 1), (1, 1, 2, 2), BIG, BIG, BIG),
    ((1, 3, 1, 1), (1, 3, 2, 2), (2147460482, 954447473), (1073730241, 954447473),
     (2147460482, 954447473)),
    ((1, 1, 1, 1), (1, 1, 2, 2), BIG, 2**30, BIG),
    # one phase per tap: the packed path runs
    ((1, 1, 1, 1), (1, 1, 2, 2), BIG, 2**30, 2**30),
])
def test_conv_with_parameters_near_the_limit_matches_torch(x_shape, w_shape, stride,
                                                           padding, dilation):
    rng = np.random.default_rng(0)
    x = rng.random(x_shape, dtype=np.float32) + 1
    w = rng.random(w_shape, dtype=np.float32) + 1
    ours = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    theirs = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride,
                       padding=padding, dilation=dilation).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)  # at most one product per output


def test_conv_near_the_limit_reads_the_input():
    """The case above whose outputs are not all padding: each of the 2x2
    outputs takes one tap of the input pixel, so the values show the taps."""
    x = np.full((1, 1, 1, 1), 3.0, np.float32)
    w = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    ours = F.conv2d(x, w, stride=BIG, padding=BIG, dilation=BIG)
    np.testing.assert_array_equal(ours.ravel(), [12.0, 9.0, 6.0, 3.0])


def test_fused_conv_near_the_limit_refuses_with_the_parameters():
    x = np.ones((1, 1, 1, 1), np.float32)
    w = np.ones((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"^C: stride \(2147483647, 2147483647\).*too large"):
        _C.conv2d("C", x, w, None, (BIG, BIG), (BIG, BIG), (BIG, BIG), 1, relu=True)


# -- convolution: bad arguments get torch's message, naming the layer --------------
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=0), dict(kernel_size=3, stride=-1),
    dict(kernel_size=3, stride=(1, 0)), dict(kernel_size=3, padding=-1),
    dict(kernel_size=3, padding=(-1, 1)), dict(kernel_size=3, dilation=0),
    dict(kernel_size=3, dilation=-1), dict(kernel_size=0), dict(kernel_size=(0, 3)),
])
def test_conv_layer_argument_errors_follow_torch(kwargs):
    x = np.random.default_rng(1).random((1, 2, 30, 30), dtype=np.float32)
    with pytest.warns(UserWarning) if kwargs.get("kernel_size") in (0, (0, 3)) else \
            _no_warning():
        theirs = torch.nn.Conv2d(2, 3, **kwargs)
    with pytest.raises(RuntimeError) as expected:
        theirs(torch.from_numpy(x))
    with pytest.raises(RuntimeError) as got:
        sb.Conv2d(2, 3, **kwargs)(x)
    assert str(got.value).startswith("Conv2d: ")
    # torch's wording up to its details (", but got [0, 0]" and the like)
    assert str(expected.value).split(", but")[0] in str(got.value)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- max_pool2d: torch's checks, in torch's order ----------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2, stride=1, padding=2, dilation=3),   # pad > kernel / 2
    dict(kernel_size=(2, 3), padding=(1, 2), dilation=(1, 2)),
    dict(kernel_size=2, padding=-1),
    dict(kernel_size=(3, 2), padding=(2, -1)),               # height checked first
    dict(kernel_size=0), dict(kernel_size=2, stride=0), dict(kernel_size=2, dilation=0),
    dict(kernel_size=3, stride=-1), dict(kernel_size=-2, stride=1),
    dict(kernel_size=3, padding=1, dilation=-1),
    dict(kernel_size=2**31 - 1, padding=1),
    dict(kernel_size=3, stride=1, padding=1, dilation=2),    # valid
    dict(kernel_size=(1, 3), padding=(0, 1)),                # valid
])
def test_max_pool_argument_checks_follow_torch(kwargs):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    theirs = _outcome(lambda: TF.max_pool2d(torch.from_numpy(x), **kwargs).numpy())
    ours = _outcome(lambda: F.max_pool2d(x, **kwargs))
    assert ours[0] == theirs[0]
    if ours[0] == "ok":
        np.testing.assert_array_equal(ours[1], theirs[1])
    else:
        assert _message(ours[1]) == _torch_message(theirs[1])


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=(4294967297, 1), stride=(2, 1), dilation=(8589934592, 1)),
    dict(kernel_size=2, stride=2**31),
    dict(kernel_size=2, padding=-2**31 - 1),
])
def test_max_pool_parameters_beyond_int_are_refused_like_torch(kwargs):
    """They must not wrap in dilation * (kernel - 1) and give an output."""
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    with pytest.raises(RuntimeError) as expected:
        TF.max_pool2d(torch.from_numpy(x), **kwargs)
    with pytest.raises(RuntimeError) as got:
        F.max_pool2d(x, **kwargs)
    assert _message(got.value).startswith(str(expected.value))


# -- private _C functions: what the layers never pass, refused --------------------
@pytest.mark.parametrize("hidden, match", [(2**60, "do not match 15 channels"),
                                           (-1, "must be >= 0")])
def test_se_attention_checks_hidden(hidden, match):
    with pytest.raises(ValueError, match=match):
        _C.se_attention("SE", np.ones((2, 15, 1, 1), np.float32), np.zeros(0, np.float32),
                        np.zeros(16, np.float32), hidden)


def _misaligned_copy(a):
    raw = np.zeros(a.nbytes + 1, np.uint8)
    view = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    view[...] = a
    assert not view.flags.aligned
    return view


@pytest.mark.parametrize("spoil", ["byteswapped", "misaligned"])
def test_packed_weights_must_be_native_and_aligned(spoil):
    rng = np.random.default_rng(2)
    w = rng.random((4, 3, 3, 3), dtype=np.float32)
    x = rng.random((1, 3, 8, 8), dtype=np.float32)
    lw = rng.random((5, 7), dtype=np.float32)
    packed = _C.conv2d_pack("L", w, None, 1)
    lpacked = _C.linear_pack("L", lw, None)
    fix = (lambda a: a.astype(">f4")) if spoil == "byteswapped" else _misaligned_copy
    with pytest.raises(ValueError, match="packed weights do not match"):
        _C.conv2d("L", x, w, None, (1, 1), (0, 0), (1, 1), 1, packed=fix(packed))
    with pytest.raises(ValueError, match="packed weights do not match"):
        _C.linear("L", rng.random((2, 7), dtype=np.float32), lw, None, packed=fix(lpacked))


def test_conv_out_may_not_overlap_its_input():
    buf = np.random.default_rng(3).random((1, 8, 6, 6), dtype=np.float32)
    w = np.random.default_rng(4).random((4, 2, 1, 1), dtype=np.float32)
    before = buf.copy()
    with pytest.raises(ValueError, match="C: out overlaps the input"):
        _C.conv2d("C", buf[:, 0:4], w, None, (1, 1), (0, 0), (1, 1), 2, out=buf[:, 2:6])
    np.testing.assert_array_equal(buf, before)
    # disjoint parts of one buffer are fine
    expected = _C.conv2d("C", buf[:, 0:4].copy(), w, None, (1, 1), (0, 0), (1, 1), 2)
    _C.conv2d("C", buf[:, 0:4], w, None, (1, 1), (0, 0), (1, 1), 2, out=buf[:, 4:8])
    np.testing.assert_array_equal(buf[:, 4:8], expected)


def test_elementwise_out_is_the_input_or_apart():
    a = np.random.default_rng(5).standard_normal(10).astype(np.float32)
    expected = np.maximum(a, 0)
    _C.relu("R", a, out=a)  # the very same array: in place
    np.testing.assert_array_equal(a, expected)
    b = np.random.default_rng(6).standard_normal(10).astype(np.float32)
    with pytest.raises(ValueError, match="out overlaps the input"):
        _C.relu("R", b[:9], out=b[1:])


@pytest.mark.parametrize("training, eps, message", [
    (True, 0.0, "must be positive during training"),
    (False, -1.0, "must be non-negative"),
])
def test_batch_norm_eps_is_checked_at_the_boundary(training, eps, message):
    x = np.ones((2, 2, 3, 3), np.float32)
    zeros, ones = np.zeros(2, np.float32), np.ones(2, np.float32)
    with pytest.raises(ValueError, match=f"BN: batch_norm eps {message}"):
        _C.batch_norm("BN", x, zeros.copy(), ones.copy(), ones, zeros, training, 0.1, eps)
    if not training:
        # the eval-mode fold of a BatchNorm into a convolution's weights
        with pytest.raises(ValueError, match=f"BatchNorm2d: batch_norm eps {message}"):
            _C.conv2d_pack("Conv2d", np.ones((2, 1, 1, 1), np.float32), None, 1,
                           (zeros, ones, ones, zeros, eps))


# -- inputs users pass --------------------------------------------------------------
def test_inplace_relu_on_an_unaligned_array():
    a = _misaligned_copy(np.random.default_rng(7).standard_normal((3, 5)).astype(np.float32))
    expected = torch.relu(torch.from_numpy(np.array(a))).numpy()
    result = sb.ReLU(inplace=True)(a)
    assert result is a
    np.testing.assert_array_equal(a, expected)


def _plain_layers():
    yield sb.Conv2d(4, 4, 3), torch.nn.Conv2d(4, 4, 3)
    yield sb.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    yield sb.BatchNorm2d(4).eval(), torch.nn.BatchNorm2d(4).eval()
    yield sb.ReLU(), torch.nn.ReLU()
    yield sb.Sigmoid(), torch.nn.Sigmoid()
    yield sb.MaxPool2d(2), torch.nn.MaxPool2d(2)
    yield sb.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)
    yield sb.Linear(6, 3), torch.nn.Linear(6, 3)
    yield (sb.Sequential(sb.Conv2d(4, 4, 3), sb.BatchNorm2d(4)).eval(),
           torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3), torch.nn.BatchNorm2d(4)).eval())


@pytest.mark.parametrize("ours, theirs", list(_plain_layers()),
                         ids=lambda m: type(m).__name__)
def test_plain_layers_take_bfloat16_tensors(ours, theirs):
    """A bfloat16 tensor is read as float32 (exact), as the blocks read it."""
    x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(8)).bfloat16()
    ours.load_state_dict(theirs.state_dict())
    expected = ours(x.float().numpy())  # the float32 values of the same tensor
    np.testing.assert_array_equal(ours(x), expected)


def test_functional_takes_bfloat16_weights():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 4, 6, 6, generator=g).bfloat16()
    w = torch.randn(2, 4, 3, 3, generator=g).bfloat16()
    b = torch.randn(2, generator=g).bfloat16()
    lw = torch.randn(3, 6, generator=g).bfloat16()
    np.testing.assert_array_equal(F.conv2d(x, w, b),
                                  F.conv2d(x.float().numpy(), w.float().numpy(),
                                           b.float().numpy()))
    np.testing.assert_array_equal(F.linear(x, lw),
                                  F.linear(x.float().numpy(), lw.float().numpy()))


# -- runtime switches take what torch's take ----------------------------------------
def test_set_num_threads_takes_numpy_integers(restore_threads):
    sb.set_num_threads(np.int64(1))
    assert sb.get_num_threads() == 1
    torch.set_num_threads(np.int64(torch.get_num_threads()))  # torch takes them too
    for bad in (True, 2.0, None, "2"):
        with pytest.raises(TypeError, match="set_num_threads: expected an int"):
            sb.set_num_threads(bad)


def test_set_isa_names_the_choices_for_a_non_string():
    with pytest.raises(TypeError, match="set_isa: expected one of 'auto'"):
        sb.set_isa(None)


@pytest.mark.parametrize("seed", [-1, -2**63, 2**64 - 1, 1.7])
def test_manual_seed_takes_torchs_range(seed):
    torch.manual_seed(seed)  # accepted by torch
    sb.manual_seed(seed)
    first = sb.Conv2d(2, 2, 3).weight.copy()
    remapped = int(seed) if int(seed) >= 0 else 0xFFFF_FFFF_FFFF_FFFF + int(seed)
    sb.manual_seed(remapped)  # torch's remapping of a negative seed
    np.testing.assert_array_equal(sb.Conv2d(2, 2, 3).weight, first)


@pytest.mark.parametrize("seed", [2**64, -2**63 - 1])
def test_manual_seed_out_of_range_raises(seed):
    with pytest.raises(ValueError):
        torch.manual_seed(seed)
    with pytest.raises(ValueError, match="manual_seed: seed must be in"):
        sb.manual_seed(seed)


@pytest.mark.parametrize("pack, match", [
    (lambda: _C.conv2d_pack("L", np.ones((3, 2, 2), np.float32), None, 1),
     r"^L: cannot pack a weight of size \[3, 2, 2\] with groups=1"),
    (lambda: _C.conv2d_pack("L", np.ones((3, 2, 2, 2), np.float32), None, 2),
     r"^L: cannot pack a weight of size \[3, 2, 2, 2\] with groups=2"),
    (lambda: _C.linear_pack("L", np.ones(3, np.float32), None),
     r"^L: cannot pack a weight of size \[3\]: it must be 2-D"),
])
def test_packing_errors_give_the_shape(pack, match):
    with pytest.raises(RuntimeError, match=match):
        pack()

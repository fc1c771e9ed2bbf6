"""Per-op parity of ``skipblocks.functional`` against ``torch.nn.functional``.

Sweeps cover the kernels' edge paths: odd spatial sizes, channel counts that
are not multiples of 8/16 (and ones that are, and one past), every output
width from 1 to 17 (tile remainders), stride/padding/dilation/groups combos,
padding='same' with even kernels (torch pads asymmetrically), ceil_mode
windows that start in the padding, adaptive output sizes that do not divide
the input (and None entries), batch 1 and more.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import skipblocks as sb
import skipblocks.functional as sbF

from helpers import assert_parity, batch_norm_magnitude, poison_heap, randn, to_torch, uniform


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------

# N, C, O, H, W, kernel, stride, padding, dilation, groups, bias
CONV_CASES = [
    (1, 1, 1, 1, 1, 1, 1, 0, 1, 1, False),
    (1, 3, 5, 7, 9, 3, 1, 1, 1, 1, True),
    (2, 3, 17, 11, 13, 3, 2, 1, 1, 1, True),
    (3, 5, 7, 9, 10, (3, 2), (2, 1), (1, 0), (1, 2), 1, True),
    (1, 6, 9, 12, 7, 3, 1, 2, 2, 3, False),
    (2, 8, 8, 5, 5, 3, 1, 1, 1, 8, True),            # depthwise
    (1, 5, 10, 6, 7, 3, 1, 1, 1, 5, False),          # depthwise multiplier 2
    (1, 16, 16, 8, 8, 1, 1, 0, 1, 1, False),         # 1x1, channels a multiple of 16
    (1, 17, 33, 9, 17, 1, 2, 0, 1, 1, True),         # 1x1 strided, one past the tile
    (1, 3, 4, 13, 13, 7, 2, 3, 1, 1, False),         # the document's stem shape, smaller
    (2, 4, 6, 6, 6, 5, 3, 2, 1, 2, True),
    (1, 9, 15, 15, 16, 3, 1, "same", 1, 1, True),
    (1, 9, 15, 15, 16, (2, 4), 1, "same", (2, 1), 3, True),   # even kernel: asymmetric 'same'
    (1, 4, 6, 7, 5, 2, 1, "same", 3, 2, False),
    (1, 5, 3, 8, 6, 3, 1, "valid", 1, 1, True),
    (1, 2, 3, 4, 4, 4, 1, 0, 1, 1, True),            # kernel == input
    (1, 3, 4, 5, 5, 3, 4, 0, 1, 1, True),            # stride larger than the output
    (2, 24, 40, 7, 7, 3, 1, 1, 1, 4, True),
    (1, 3, 5, 1, 9, (1, 3), 1, (0, 1), 1, 1, True),  # H = 1
    (4, 7, 9, 6, 5, 2, (1, 2), (1, 1), 1, 1, True),  # even kernel, uneven stride
    (1, 2, 2, 3, 3, 3, 1, 4, 1, 1, True),            # padding larger than the kernel
    (2, 12, 18, 10, 9, 3, (2, 3), (2, 1), (2, 2), 6, True),
    (1, 32, 8, 6, 6, 3, 1, 1, 1, 1, False),          # fan-in 288 > 256
]


def _conv_id(case):
    return "N%d-C%d-O%d-%dx%d-k%s-s%s-p%s-d%s-g%d-%s" % (
        case[0], case[1], case[2], case[3], case[4], case[5], case[6], case[7],
        case[8], case[9], "bias" if case[10] else "nobias")


@pytest.mark.parametrize("case", CONV_CASES, ids=[_conv_id(c) for c in CONV_CASES])
def test_conv2d_sweep(case, rng, dtype):
    n, c, o, h, w, k, stride, padding, dilation, groups, bias = case
    kh, kw = _pair(k)
    x = uniform(rng, n, c, h, w, dtype=dtype)
    weight = uniform(rng, o, c // groups, kh, kw, dtype=dtype) / np.float32(np.sqrt(c // groups * kh * kw))
    b = uniform(rng, o, dtype=dtype) if bias else None
    expected = F.conv2d(to_torch(x), to_torch(weight), None if b is None else to_torch(b),
                        stride, padding, dilation, groups)
    poison_heap(expected.numel() * 4)
    got = sbF.conv2d(x, weight, b, stride, padding, dilation, groups)
    assert_parity(got, expected, "conv2d", what=_conv_id(case), fan_in=c // groups * kh * kw)
    # keyword form gives the same result
    got_kw = sbF.conv2d(x, weight, bias=b, stride=stride, padding=padding, dilation=dilation,
                        groups=groups)
    assert np.array_equal(got, got_kw, equal_nan=True)


@pytest.mark.parametrize("out_channels", [1, 3, 7, 8, 9, 15, 16, 17, 33])
@pytest.mark.parametrize("kernel,padding,stride", [(3, 1, 1), (1, 0, 1), (3, 1, 2)])
def test_conv2d_tile_edges(out_channels, kernel, padding, stride, rng, dtype):
    """Every output width 1..17 (below, at and above 4/8/16-wide tiles) for a few
    channel counts around the usual vector widths; failures are collected so one
    run shows every bad width."""
    failures = []
    for width in range(1, 18):
        c = 1 + width % 5
        x = uniform(rng, 2, c, 3 + width % 3, width, dtype=dtype)
        weight = uniform(rng, out_channels, c, kernel, kernel, dtype=dtype) / np.float32(kernel * np.sqrt(c))
        b = uniform(rng, out_channels, dtype=dtype)
        expected = F.conv2d(to_torch(x), to_torch(weight), to_torch(b), stride, padding)
        poison_heap(expected.numel() * 4)
        got = sbF.conv2d(x, weight, b, stride, padding)
        try:
            assert_parity(got, expected, "conv2d", what="W=%d C=%d" % (width, c))
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


def test_conv2d_unbatched(rng, dtype):
    x = uniform(rng, 5, 9, 8, dtype=dtype)
    weight = uniform(rng, 4, 5, 3, 3, dtype=dtype) / 7
    b = uniform(rng, 4, dtype=dtype)
    expected = F.conv2d(to_torch(x), to_torch(weight), to_torch(b), padding=1)
    got = sbF.conv2d(x, weight, b, padding=1)
    assert_parity(got, expected, "conv2d", what="unbatched (C,H,W)")


# ---------------------------------------------------------------------------
# max_pool2d  (exact)
# ---------------------------------------------------------------------------

# N, C, H, W, kernel, stride, padding, dilation, ceil_mode
POOL_CASES = [
    (1, 1, 1, 1, 1, None, 0, 1, False),
    (1, 3, 7, 9, 2, None, 0, 1, False),
    (2, 3, 7, 9, 2, None, 0, 1, True),
    (1, 5, 10, 10, 3, 2, 1, 1, False),
    (1, 5, 10, 10, 3, 2, 1, 1, True),
    (2, 4, 11, 8, (3, 2), (2, 1), (1, 0), (2, 1), True),
    (1, 17, 9, 9, 3, 1, 1, 1, False),
    (1, 2, 5, 5, 2, 2, 1, 1, True),     # ceil: a window that would start in the right padding is dropped
    (1, 2, 6, 6, 3, 2, 1, 1, True),
    (1, 3, 8, 8, 4, 3, 2, 1, True),
    (1, 3, 25, 25, 3, 2, 0, 1, False),  # the DenseNet demo's pool
    (1, 3, 50, 50, 2, 2, 0, 1, False),  # the ResNet demo's pool
    (3, 2, 9, 12, 3, 3, 1, 2, True),
    (1, 9, 4, 17, (1, 3), (1, 2), (0, 1), 1, True),
    (2, 16, 6, 6, 2, 1, 0, 1, False),
    (1, 3, 7, 7, 7, 1, 3, 1, False),    # kernel = input, padding = k // 2
    (1, 2, 112, 112, 3, 2, 1, 1, False),  # ResNet's stem pool: the vectorised interior runs
    (1, 2, 20, 45, 3, 1, 1, 1, True),
]


def _pool_id(case):
    return "N%s-C%s-%sx%s-k%s-s%s-p%s-d%s-%s" % (case[:8] + ("ceil" if case[8] else "floor",))


@pytest.mark.parametrize("case", POOL_CASES, ids=[_pool_id(c) for c in POOL_CASES])
@pytest.mark.parametrize("values", ["normal", "all_negative"])
def test_max_pool2d_sweep(case, values, rng, dtype):
    """Exact equality; the all-negative inputs catch padding with 0 instead of -inf."""
    n, c, h, w, k, stride, padding, dilation, ceil_mode = case
    x = randn(rng, n, c, h, w, dtype=dtype)
    if values == "all_negative":
        x = -np.abs(x) - 10
    expected = F.max_pool2d(to_torch(x), k, stride, padding, dilation, ceil_mode)
    poison_heap(expected.numel() * 4)
    got = sbF.max_pool2d(x, k, stride, padding, dilation, ceil_mode)
    assert_parity(got, expected, "max_pool2d", what=_pool_id(case))
    got_kw = sbF.max_pool2d(x, kernel_size=k, stride=stride, padding=padding, dilation=dilation,
                            ceil_mode=ceil_mode)
    assert np.array_equal(got, got_kw, equal_nan=True)


def test_max_pool2d_unbatched(rng, dtype):
    x = randn(rng, 3, 9, 8, dtype=dtype)
    assert_parity(sbF.max_pool2d(x, 3, 2, 1), F.max_pool2d(to_torch(x), 3, 2, 1), "max_pool2d",
                  what="unbatched (C,H,W)")


def test_max_pool2d_return_indices_not_supported(rng):
    with pytest.raises(NotImplementedError):
        sbF.max_pool2d(randn(rng, 1, 1, 4, 4), 2, return_indices=True)


# ---------------------------------------------------------------------------
# adaptive_avg_pool2d
# ---------------------------------------------------------------------------

# (H, W), output_size
ADAPTIVE_CASES = [
    ((7, 7), 1),
    ((7, 9), (3, 4)),
    ((10, 10), 3),
    ((5, 7), (5, 7)),          # identity
    ((3, 3), 5),               # output larger than input: overlapping windows
    ((13, 11), (None, 4)),
    ((6, 8), (4, None)),
    ((1, 1), (2, 3)),
    ((9, 17), (2, 5)),
    ((8, 8), [4, 2]),
    ((11, 5), (None, None)),
    ((7, 7), (7, 1)),
]


@pytest.mark.parametrize("n,c", [(1, 3), (2, 17)])
@pytest.mark.parametrize("hw,output_size", ADAPTIVE_CASES,
                         ids=["%dx%d->%s" % (hw + (str(o).replace(" ", ""),)) for hw, o in ADAPTIVE_CASES])
def test_adaptive_avg_pool2d_sweep(n, c, hw, output_size, rng, dtype):
    x = randn(rng, n, c, *hw, shift=0.5, dtype=dtype)
    expected = F.adaptive_avg_pool2d(to_torch(x), output_size)
    poison_heap(expected.numel() * 4)
    got = sbF.adaptive_avg_pool2d(x, output_size)
    assert_parity(got, expected, "adaptive_avg_pool2d", what="%s -> %s" % (x.shape, output_size))


def test_adaptive_avg_pool2d_unbatched(rng, dtype):
    x = randn(rng, 4, 9, 7, dtype=dtype)
    assert_parity(sbF.adaptive_avg_pool2d(x, (2, 3)), F.adaptive_avg_pool2d(to_torch(x), (2, 3)),
                  "adaptive_avg_pool2d", what="unbatched (C,H,W)")


# ---------------------------------------------------------------------------
# batch_norm
# ---------------------------------------------------------------------------

BN_SHAPES = [(2, 3, 5, 7), (1, 17, 3, 3), (4, 8, 1, 1), (3, 16, 9, 2), (1, 5, 1, 2)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "noaffine"])
@pytest.mark.parametrize("momentum,eps", [(0.1, 1e-5), (0.7, 1e-3)])
def test_batch_norm_sweep(shape, training, affine, momentum, eps, rng, dtype):
    c = shape[1]
    x = randn(rng, *shape, scale=3.0, shift=1.5, dtype=dtype)
    rm = randn(rng, c, scale=0.5, dtype=dtype)
    rv = uniform(rng, c, low=0.5, high=2.0, dtype=dtype)
    weight = uniform(rng, c, low=0.5, high=1.5, dtype=dtype) if affine else None
    bias = uniform(rng, c, dtype=dtype) if affine else None
    t_rm, t_rv = to_torch(rm), to_torch(rv)
    expected = F.batch_norm(to_torch(x), t_rm, t_rv,
                            None if weight is None else to_torch(weight),
                            None if bias is None else to_torch(bias),
                            training, momentum, eps)
    rm_arr, rv_arr = rm.copy(), rv.copy()
    poison_heap(expected.numel() * 4)
    got = sbF.batch_norm(x, rm_arr, rv_arr, weight, bias, training, momentum, eps)
    what = "batch_norm %s training=%s affine=%s" % (shape, training, affine)
    axes = (0,) + tuple(range(2, x.ndim))
    mean, var = (x.astype(np.float64).mean(axes), x.astype(np.float64).var(axes)) \
        if training else (rm, rv)
    assert_parity(got, expected, "batch_norm", what=what,
                  magnitude=batch_norm_magnitude(x, mean, var, weight, bias, eps))
    # running statistics: updated in place when training (unbiased variance), untouched otherwise
    assert_parity(rm_arr, t_rm, "running_stats", what=what + " running_mean")
    assert_parity(rv_arr, t_rv, "running_stats", what=what + " running_var")
    if not training:
        assert np.array_equal(rm_arr, rm) and np.array_equal(rv_arr, rv)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 6, 3, 1)])
def test_batch_norm_training_without_running_stats(shape, rng, dtype):
    x = randn(rng, *shape, scale=2.0, dtype=dtype)
    expected = F.batch_norm(to_torch(x), None, None, training=True)
    got = sbF.batch_norm(x, None, None, training=True)
    assert_parity(got, expected, "batch_norm", what="training, running stats None")


# ---------------------------------------------------------------------------
# relu, sigmoid  (any shape)
# ---------------------------------------------------------------------------

ELEMENTWISE_SHAPES = [(7,), (3, 5), (4, 9, 7), (2, 3, 5, 7), (1, 17, 1, 33), (2, 16, 8, 8)]


def _special_values(rng, shape):
    x = randn(rng, *shape, scale=10.0)
    flat = x.reshape(-1)
    specials = np.array([0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 100.0, -100.0, 1e30, -1e30,
                         3.4e38, -3.4e38], np.float32)
    m = min(flat.size, specials.size)
    flat[:m] = specials[:m]
    return x


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_relu_sweep(shape, rng, dtype):
    x = _special_values(rng, shape).astype(dtype)
    expected = F.relu(to_torch(x))
    poison_heap(x.nbytes)
    assert_parity(sbF.relu(x), expected, "relu", what="relu %s" % (shape,))


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sigmoid_sweep(shape, rng, dtype):
    x = _special_values(rng, shape).astype(dtype)
    expected = torch.sigmoid(to_torch(x))
    poison_heap(x.nbytes)
    got = sbF.sigmoid(x)
    assert_parity(got, expected, "sigmoid", what="sigmoid %s" % (shape,))
    assert np.all((got >= 0) & (got <= 1)), "sigmoid left [0, 1]"


# ---------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("lead", [(), (1,), (3,), (2, 3), (2, 1, 4), (0,)],
                         ids=lambda s: "lead" + "x".join(map(str, s)))
@pytest.mark.parametrize("in_f,out_f", [(5, 1), (7, 16), (16, 17), (33, 9), (300, 3)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_sweep(lead, in_f, out_f, bias, rng, dtype):
    x = uniform(rng, *lead, in_f, dtype=dtype)
    weight = uniform(rng, out_f, in_f, dtype=dtype) / np.float32(np.sqrt(in_f))
    b = uniform(rng, out_f, dtype=dtype) if bias else None
    expected = F.linear(to_torch(x), to_torch(weight), None if b is None else to_torch(b))
    got = sbF.linear(x, weight, b)
    assert_parity(got, expected, "linear", what="linear %s x %s" % (x.shape, weight.shape),
                  fan_in=in_f)


# ---------------------------------------------------------------------------
# cat  (exact)
# ---------------------------------------------------------------------------

CAT_CASES = [
    ([(1, 3, 4, 4), (1, 5, 4, 4)], 1),
    ([(2, 3, 4, 5), (2, 1, 4, 5), (2, 7, 4, 5)], 1),
    ([(1, 2, 3, 3), (3, 2, 3, 3)], 0),
    ([(2, 2, 3, 3), (2, 2, 5, 3)], 2),
    ([(2, 2, 3, 3), (2, 2, 3, 1), (2, 2, 3, 4)], 3),
    ([(2, 2, 3, 3), (2, 2, 3, 1)], -1),
    ([(2, 2, 3), (2, 4, 3)], -2),
    ([(1, 64, 5, 5)], 1),
    ([(0, 3, 2, 2), (2, 3, 2, 2)], 0),
    ([(2, 0, 2, 2), (2, 3, 2, 2)], 1),
    ([(5,), (3,)], 0),
]


@pytest.mark.parametrize("shapes,dim", CAT_CASES, ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("container", [list, tuple])
def test_cat_sweep(shapes, dim, container, rng, dtype):
    arrays = [randn(rng, *s, dtype=dtype) for s in shapes]
    expected = torch.cat([to_torch(a) for a in arrays], dim=dim)
    got = sb.cat(container(arrays), dim=dim)
    assert_parity(got, expected, "cat", what="cat %s dim=%d" % (shapes, dim))
    if dim == 0:
        assert np.array_equal(sb.cat(container(arrays)), got), "dim defaults to 0"

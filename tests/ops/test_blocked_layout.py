"""The channel-blocked layout (NCHW16c float32, NCHW8c float64) of the
planned networks (skipblocks._blocked):

1. to_blocked / from_blocked: the layout as documented, zero lanes, round
   trip, errors.
2. conv2d with in_blocked / out_blocked gives the same bits as the NCHW
   path, with every fusion (folded BatchNorm, input transform, residual,
   ReLU), across kernel sizes, strides, paddings, dilations, channel counts
   around the 16-lane block and the 128/256 K blocks, thread counts and
   every ISA; lanes past C_out come out 0 even from NaN input.
3. max_pool2d on blocked maps gives the same bits as on NCHW (NaN, signed
   zeros, ceil_mode, padding); so does avg_pool2d, alone and with an
   eval-mode BatchNorm and ReLU in front (DenseNet's transition), whose
   errors are clear.
4. Bad blocked arguments raise clear errors, never crash.
5. Planned networks (resnet18/resnet50, se_resnet50, densenet121, UNet and
   their blocks) give the same bits as the layer-by-layer path
   (runtime.unplanned), and a plan is not used where it must not be (train
   mode, hooks, float64, replaced modules).
6. The blocked SE operator (se_resnet's planned SEBottleneck) gives the NCHW
   operator's bits followed by the residual addition and ReLU.
"""
import re

import numpy as np
import pytest

import skipblocks as sb
from skipblocks import _C, _blocked, runtime

LANES = {"float32": 16, "float64": 8}


def _blocked_by_numpy(x, lanes):
    """The documented layout written with NumPy: [n, c // B, y, x, c % B]."""
    n, c, h, w = x.shape
    blocks = -(-c // lanes)
    out = np.zeros((n, blocks * lanes, h, w), x.dtype)
    out[:, :c] = x
    return np.ascontiguousarray(out.reshape(n, blocks, lanes, h, w).transpose(0, 1, 3, 4, 2))


@pytest.mark.parametrize("c", [1, 3, 8, 15, 16, 17, 40, 64])
def test_layout_round_trip(dtype, rng, c):
    x = rng.standard_normal((2, c, 5, 7)).astype(dtype)
    b = _C.to_blocked("t", x)
    expected = _blocked_by_numpy(x, LANES[dtype])
    assert b.shape == expected.shape and b.dtype == x.dtype
    np.testing.assert_array_equal(b, expected)
    back = _C.from_blocked("t", b, c)
    assert back.shape == x.shape
    np.testing.assert_array_equal(back, x)


def test_layout_errors():
    x = np.zeros((1, 20, 4, 4), np.float32)
    b = _C.to_blocked("Net", x)
    with pytest.raises(ValueError, match=r"Net: input of size \[1, 2, 4, 4, 16\] is not a "
                                         r"channel-blocked map: expected \[N, 3, H, W, 16\]"):
        _C.from_blocked("Net", b, 40)
    with pytest.raises(ValueError, match="expected \\[N, 2, H, W, 16\\]"):
        _C.from_blocked("Net", x, 20)  # 4-D, not blocked
    with pytest.raises(ValueError, match="expected \\[N, 3, H, W, 8\\]"):
        _C.from_blocked("Net", np.zeros((1, 3, 4, 4, 16)), 20)  # float64 blocks are 8 wide
    with pytest.raises(ValueError, match=r"Net: expected a 4-D \(N, C, H, W\) map"):
        _C.to_blocked("Net", np.zeros((4, 4), np.float32))


def _conv_pair(rng, dtype, c_in, c_out, k, stride, padding, dilation, n=2, hw=(9, 11),
               bias=True, fold=False):
    conv = sb.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation,
                     bias=bias, dtype=dtype)
    conv.weight = rng.standard_normal(conv.weight.shape).astype(dtype)
    bn = None
    if fold:
        bn = sb.BatchNorm2d(c_out, dtype=dtype).eval()
        bn.running_mean = rng.standard_normal(c_out).astype(dtype)
        bn.running_var = rng.uniform(0.5, 2, c_out).astype(dtype)
        bn.weight = rng.standard_normal(c_out).astype(dtype)
        bn.bias = rng.standard_normal(c_out).astype(dtype)
    x = rng.standard_normal((n, c_in) + hw).astype(dtype)
    return conv, bn, x


def _run(conv, x, bn=None, in_blocked=False, out_blocked=False, **fusion):
    residual = fusion.pop("residual", None)
    if residual is not None and out_blocked:
        residual = _C.to_blocked("t", residual)
    out = _C.conv2d("Conv2d", _C.to_blocked("t", x) if in_blocked else x, conv.weight,
                    conv.bias, conv.stride, conv._symmetric_padding(), conv.dilation, 1,
                    packed=conv._packed_weights(bn), residual=residual,
                    in_blocked=in_blocked, out_blocked=out_blocked, **fusion)
    return _C.from_blocked("t", out, conv.weight.shape[0]) if out_blocked else out


CASES = [  # c_in, c_out, kernel, stride, padding, dilation
    (16, 16, 1, 1, 0, 1), (64, 32, 1, 1, 0, 1), (17, 48, 1, 2, 0, 1), (3, 64, 7, 2, 3, 1),
    (16, 13, 3, 1, 1, 1), (40, 64, 3, 2, 1, 1), (8, 45, 3, 1, 2, 2), (32, 16, 3, 1, 0, 1),
    (130, 32, 1, 1, 0, 1), (30, 16, 3, 1, 1, 1), (20, 32, (1, 3), (1, 2), (0, 1), 1),
    (5, 16, 5, 3, 2, 1), (300, 16, 1, 1, 0, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layouts", [(True, False), (False, True), (True, True)])
def test_conv_blocked_same_bits(isa, dtype, rng, case, layouts):
    c_in, c_out, k, stride, padding, dilation = case
    assert _C.conv2d_blocked_ok(c_out, 1, dtype == "float64")
    in_blocked, out_blocked = layouts
    conv, bn, x = _conv_pair(rng, dtype, c_in, c_out, k, stride, padding, dilation,
                             fold=True)
    expected = _run(conv, x, bn)
    got = _run(conv, x, bn, in_blocked, out_blocked)
    np.testing.assert_array_equal(got, expected)
    # residual and ReLU in the epilogue
    res = rng.standard_normal(expected.shape).astype(dtype)
    expected = _run(conv, x, bn, residual=res, relu=True)
    got = _run(conv, x, bn, in_blocked, out_blocked, residual=res, relu=True)
    np.testing.assert_array_equal(got, expected)
    # the input transform (DenseLayer's BatchNorm + ReLU) while staging
    scale = rng.standard_normal(c_in).astype(dtype)
    shift = rng.standard_normal(c_in).astype(dtype)
    expected = _run(conv, x, in_scale=scale, in_shift=shift, in_relu=True)
    got = _run(conv, x, None, in_blocked, out_blocked, in_scale=scale, in_shift=shift,
               in_relu=True)
    np.testing.assert_array_equal(got, expected)



@pytest.mark.parametrize("c_out, hw", [(256, (7, 7)), (384, (5, 9)), (512, (1, 1)), (256, (12, 12))])
@pytest.mark.parametrize("threads", [1, 2])
def test_conv_batch_equals_images_alone(isa, dtype, rng, restore_threads, c_out, hw, threads):
    """A batch of pointwise convolutions on small maps, several channel
    chunks each, gives, bit for bit, each image's convolution alone, in both
    layouts, with a residual and ReLU."""
    sb.set_num_threads(threads)
    conv, bn, x = _conv_pair(rng, dtype, 64, c_out, 1, 1, 0, 1, n=3, hw=hw, fold=True)
    res = rng.standard_normal((3, c_out) + hw).astype(dtype)
    for layouts in [(False, False), (True, True)]:
        batch = _run(conv, x, bn, *layouts, residual=res, relu=True)
        for i in range(3):
            alone = _run(conv, x[i:i + 1], bn, *layouts, residual=res[i:i + 1], relu=True)
            np.testing.assert_array_equal(batch[i:i + 1], alone)

def test_conv_blocked_rejects_channel_rows():
    assert not _C.conv2d_blocked_ok(6, 1) and not _C.conv2d_blocked_ok(12, 1)
    assert _C.conv2d_blocked_ok(16, 1) and not _C.conv2d_blocked_ok(16, 2)
    conv = sb.Conv2d(4, 6, 1)
    x = np.ones((1, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="channel-blocked layout needs groups=1"):
        _C.conv2d("Conv2d", x, conv.weight, conv.bias, (1, 1), (0, 0), (1, 1), 1,
                  out_blocked=True)


def test_conv_blocked_bad_shapes():
    conv = sb.Conv2d(20, 16, 3, padding=1)
    x = np.ones((1, 20, 5, 5), np.float32)
    xb = _C.to_blocked("t", x)
    args = (conv.weight, conv.bias, (1, 1), (1, 1), (1, 1), 1)
    with pytest.raises(ValueError, match=r"Conv2d: input of size \[1, 20, 5, 5\] is not a "
                                         r"channel-blocked map: expected \[N, 2, H, W, 16\]"):
        _C.conv2d("Conv2d", x, *args, in_blocked=True)
    with pytest.raises(ValueError, match="expected \\[N, 1, H, W, 16\\]"):
        _C.conv2d("Conv2d", xb[:, :1].copy(), sb.Conv2d(16, 16, 3).weight, None, (1, 1),
                  (1, 1), (1, 1), 1, in_blocked=True, residual=xb, out_blocked=True)
    with pytest.raises(ValueError, match="residual of size .* expected \\[N, 1, H, W, 16\\]"):
        _C.conv2d("Conv2d", xb, *args, in_blocked=True, out_blocked=True, residual=xb)
    with pytest.raises(RuntimeError, match="residual has size"):
        _C.conv2d("Conv2d", x, *args, residual=np.ones((1, 16, 4, 4), np.float32))


def test_conv_blocked_pad_lanes_zero_with_nan(rng):
    conv, bn, x = _conv_pair(rng, "float32", 16, 45, 3, 1, 1, 1)
    assert _C.conv2d_blocked_ok(45, 1)
    x[0, 3, 2, 2] = np.nan
    out = _C.conv2d("Conv2d", x, conv.weight, conv.bias, (1, 1), (1, 1), (1, 1), 1,
                    packed=conv._packed_weights(None), out_blocked=True)
    assert out.shape == (2, 3, 9, 11, 16)
    assert np.isnan(out[0, 2, 2, 2, :13]).all()
    np.testing.assert_array_equal(out[:, 2, :, :, 13:], 0)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_conv_blocked_thread_counts(restore_threads, rng, threads):
    conv, bn, x = _conv_pair(rng, "float32", 64, 64, 3, 1, 1, 1, n=3, hw=(30, 30), fold=True)
    sb.set_num_threads(1)
    expected = _run(conv, x, bn, True, True)
    sb.set_num_threads(threads)
    np.testing.assert_array_equal(_run(conv, x, bn, True, True), expected)
    np.testing.assert_array_equal(_run(conv, x, bn), expected)


@pytest.mark.parametrize("params", [
    (2, 2, 0, False, True, None), (3, 2, 1, False, True, None), (3, 2, 1, True, False, None),
    (3, 1, 1, False, False, None), ((2, 3), (1, 2), (1, 0), True, True, None),
    (2, 2, 0, False, True, 3), (5, 3, 2, True, True, None), (64, 64, 0, False, True, None)])
@pytest.mark.parametrize("transform", ["none", "bn+relu", "bn", "relu", "bn without affine"])
@pytest.mark.parametrize("width", [12, 140])
def test_avg_pool_blocked_same_bits(isa, dtype, rng, restore_threads, params, transform,
                                    width):
    """The blocked pool (with bn(x) and/or relu first) against BatchNorm2d,
    ReLU and AvgPool2d on NCHW: the same bits, NaN positions included, lanes
    past C zero, at 1 and 2 threads; 140 columns take several of the
    kernel's pieces of output columns per row (windows across their
    boundaries, with padding and ceil_mode)."""
    k, s, p, ceil_mode, count_include_pad, divisor = params
    pool = sb.AvgPool2d(k, s, p, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                        divisor_override=divisor)
    c = 21
    affine = transform != "bn without affine"
    bn = sb.BatchNorm2d(c, affine=affine, dtype=dtype).eval()
    state = {"running_mean": rng.normal(0, 1, c), "running_var": rng.uniform(0.5, 2, c),
             "num_batches_tracked": np.array(3)}
    if affine:
        state.update(weight=rng.normal(0, 1, c), bias=rng.normal(0, 1, c))
    bn.load_state_dict(state)
    hw = (64, 70) if k == 64 else (13, width)
    x = rng.standard_normal((3 if width > 100 else 2, c) + hw).astype(dtype)
    x[0, 1, 3:5, 3:5] = np.nan
    x[1, 2, :, :] = -0.0
    x[1, 2, ::2, 1::3] = 0.0
    x[1, 3, 0, 0] = np.inf
    args = (pool.kernel_size, pool.stride, pool.padding)
    args = tuple(v if isinstance(v, tuple) else (v, v) for v in args)
    with_bn, relu = transform.startswith("bn"), transform.endswith("relu")
    y = bn(x) if with_bn else x
    expected = pool(sb.functional.relu(y) if relu else y)
    blocked = _blocked.to_blocked(x, "t")
    for threads in (1, 2):
        sb.set_num_threads(threads)
        got = _C.avg_pool2d("AvgPool2d", blocked.data, *args, ceil_mode, count_include_pad,
                            divisor, blocked_channels=c,
                            bn=bn._fold_args() if with_bn else None, relu=relu)
        out = _C.from_blocked("t", got, c)
        np.testing.assert_array_equal(out, expected)
        assert (np.signbit(out) == np.signbit(expected)).all()
        np.testing.assert_array_equal(got[:, -1, ..., c % LANES[dtype]:], 0)


def test_avg_pool_blocked_errors(rng):
    x = rng.standard_normal((1, 20, 8, 8)).astype(np.float32)
    blocked = _C.to_blocked("t", x)
    bn = sb.BatchNorm2d(20).eval()
    pool = ("AvgPool2d", blocked, (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match=r"AvgPool2d: a BatchNorm or ReLU applied before an "
                                         r"average pool needs a channel-blocked input"):
        _C.avg_pool2d("AvgPool2d", x, (2, 2), (2, 2), (0, 0), False, True, None,
                      bn=bn._fold_args(), relu=True)
    with pytest.raises(ValueError, match="needs a channel-blocked input"):
        _C.avg_pool2d("AvgPool2d", x, (2, 2), (2, 2), (0, 0), False, True, None, relu=True)
    with pytest.raises(ValueError, match=r"the BatchNorm its running statistics \(eval mode\)"):
        _C.avg_pool2d(*pool, blocked_channels=20, bn=(None, None, None, None, 1e-5))
    with pytest.raises(RuntimeError, match=r"^BatchNorm2d: mixed dtype \(CPU\): expect parameter "
                                           r"to have scalar type of Float"):
        _C.avg_pool2d(*pool, blocked_channels=20,
                      bn=tuple(a.astype(np.float64) for a in bn._fold_args()[:2])
                      + (None, None, 1e-5))
    # an empty batch: an empty result, the BatchNorm's arrays not read
    empty = _C.to_blocked("t", np.zeros((0, 8, 4, 4), np.float64))
    got = _C.avg_pool2d("AvgPool2d", empty, (2, 2), (2, 2), (0, 0), False, True, None,
                        blocked_channels=8, relu=True,
                        bn=(np.zeros(8, np.float32), np.ones(8, np.float32), None, None, 1e-5))
    assert got.shape == (0, 1, 2, 2, LANES["float64"]) and got.dtype == np.float64
    with pytest.raises(ValueError, match="kernel width of at most 64, got 65"):
        _C.avg_pool2d("AvgPool2d", _C.to_blocked("t", np.zeros((1, 2, 70, 70), np.float32)),
                      (1, 65), (1, 1), (0, 0), False, True, None, blocked_channels=2)
    with pytest.raises(RuntimeError, match=r"^BatchNorm2d: running_mean should contain 20 "
                                           r"elements not 16"):
        small = sb.BatchNorm2d(16).eval()
        _C.avg_pool2d(*pool, blocked_channels=20, bn=small._fold_args(), relu=True)
    with pytest.raises(ValueError, match=r"not a channel-blocked map"):
        _C.avg_pool2d(*pool, blocked_channels=40)
    before = blocked.copy()
    _C.avg_pool2d(*pool, blocked_channels=20, bn=bn._fold_args(), relu=True)
    np.testing.assert_array_equal(blocked, before)  # the input is never written


@pytest.mark.parametrize("params", [
    (3, 2, 1, 1, False), (2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False),
    ((2, 3), (1, 2), (1, 0), 1, True)])
def test_max_pool_blocked_same_bits(isa, dtype, rng, params):
    k, s, p, d, ceil_mode = params
    pool = sb.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode)
    x = rng.standard_normal((2, 21, 13, 12)).astype(dtype)
    x[0, 1, 3:5, 3:5] = np.nan
    x[1, 2, :, :] = -0.0
    x[1, 2, ::2, 1::3] = 0.0
    expected = pool(x)
    got = _blocked.max_pool(pool, _blocked.to_blocked(x, "t"))
    out = _blocked.to_nchw(got, "t")
    np.testing.assert_array_equal(out, expected)
    assert (np.signbit(out) == np.signbit(expected)).all()
    np.testing.assert_array_equal(got.data[:, -1, ..., 21 % LANES[dtype]:], 0)


# ---- planned networks ---------------------------------------------------

def _randomized(model, rng):
    state = {}
    for name, value in model.state_dict().items():
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
        elif value.dtype.kind == "f":
            value = (rng.standard_normal(value.shape) * 0.2).astype(value.dtype)
        state[name] = value
    model.load_state_dict(state)
    return model.eval()


@pytest.mark.parametrize("builder, shape", [("resnet18", (2, 3, 64, 64)),
                                            ("resnet50", (1, 3, 64, 48))])
def test_planned_resnet_same_bits(isa, rng, builder, shape):
    model = _randomized(getattr(sb.models, builder)(num_classes=10), rng)
    _assert_planned(model, rng.standard_normal(shape).astype(np.float32), lambda n: n > 0)


def _blocked_calls(model, x):
    """How many blocked convolutions (a dense layer counts two) one forward
    runs."""
    calls = []
    original, original_dense = _blocked.conv, _C.dense_layer

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    def counting_dense(*args, **kwargs):
        if kwargs.get("blocked"):
            calls.extend([1, 1])
        return original_dense(*args, **kwargs)
    _blocked.conv, _C.dense_layer = counting, counting_dense
    try:
        model(x)
    finally:
        _blocked.conv, _C.dense_layer = original, original_dense
    return len(calls)


def _assert_planned(model, x, calls):
    """model(x) runs ``calls`` blocked convolutions (an int, or a predicate
    on the count) and gives exactly the layer-by-layer result."""
    with runtime.unplanned():
        expected = model(x)
    count = _blocked_calls(model, x)
    assert calls(count) if callable(calls) else count == calls, count
    np.testing.assert_array_equal(model(x), expected)


@pytest.mark.parametrize("threads", [1, 2])
def test_planned_densenet_same_bits(isa, rng, restore_threads, threads):
    sb.set_num_threads(threads)
    model = _randomized(sb.models.densenet121(num_classes=10), rng)
    x = rng.standard_normal((2, 3, 64, 48)).astype(np.float32)
    # the stem, both convolutions of each of the 58 dense layers and the
    # three transitions' 1x1 convolutions (after the pool; 4x3 -> 2x1 last)
    _assert_planned(model, x, 1 + 2 * 58 + 3)



def test_planned_densenet_transition_on_nchw(rng):
    """A transition whose BatchNorm is in train mode (batch statistics) runs
    its own forward on NCHW inside the plan, the rest stays planned: the
    same bits as the layer-by-layer path."""
    model = _randomized(sb.models.densenet121(num_classes=10), rng)
    model.features.transition2.norm.train()
    x = rng.standard_normal((2, 3, 64, 48)).astype(np.float32)
    _assert_planned(model, x, 1 + 2 * 58 + 2)


@pytest.mark.parametrize("threads", [1, 2])
def test_planned_se_resnet_same_bits(isa, rng, restore_threads, threads):
    sb.set_num_threads(threads)
    model = _randomized(sb.models.se_resnet50(num_classes=10), rng)
    x = rng.standard_normal((2, 3, 64, 48)).astype(np.float32)
    # the stem, three convolutions in each of the 16 blocks, 4 downsamples
    _assert_planned(model, x, 1 + 3 * 16 + 4)



def test_planned_se_resnet_steps_aside(rng):
    """The stage holding an SE layer with a hook (which must see its call),
    an SE module whose forward is patched, or an SE module replaced by
    another module runs unplanned (the other stages stay planned); the
    results are the unplanned ones."""
    model = _randomized(sb.models.se_resnet50(num_classes=10), rng)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    full = 1 + 3 * 16 + 4
    partly = lambda count: 0 < count < full  # noqa: E731
    seen = []
    handle = model.layer2[1].se.fc1.register_forward_hook(lambda m, a, out: seen.append(1))
    _assert_planned(model, x, partly)
    assert seen
    handle.remove()
    block = model.layer3[0]
    block.se.forward = lambda y: y * 0.5
    _assert_planned(model, x, partly)
    del block.se.forward
    _assert_planned(model, x, full)
    block.se = sb.Identity()
    _assert_planned(model, x, partly)


def _se_operator_case(rng, dtype, n, c, h, w, hidden=5):
    se = sb.models.SEModule(c, rd_channels=hidden, dtype=dtype)
    for fc in (se.fc1, se.fc2):
        fc.weight = rng.standard_normal(fc.weight.shape).astype(dtype)
        fc.bias = rng.standard_normal(fc.bias.shape).astype(dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    residual = rng.standard_normal(x.shape).astype(dtype)
    return se, x, residual


@pytest.mark.parametrize("n, c, h, w", [(2, 40, 7, 7), (1, 16, 65, 64), (3, 33, 1, 2),
                                        (8, 64, 14, 14)])
@pytest.mark.parametrize("threads", [1, 2])
def test_se_attention_blocked_same_bits(isa, dtype, rng, restore_threads, n, c, h, w, threads):
    """The blocked SE operator (pool, gate, scale, + residual, ReLU) gives the
    NCHW operator's bits followed by the addition and torch.relu -- with NaN
    and signed zeros in the input, maps of more than one 4096-pixel pooling
    block, batch slices of larger blocked maps as input and residual, on 1
    and 2 threads -- and 0 in the lanes past C."""
    sb.set_num_threads(threads)
    se, x, residual = _se_operator_case(rng, dtype, n, c, h, w)
    x[0, 0, 0, 0] = np.nan
    x[-1, -1, -1, -1] = -0.0
    residual[0, -1, 0, 0] = -0.0
    fc1, fc2 = se._packed_for(4, c, np.dtype(dtype))
    hidden = se.fc1.weight.shape[0]
    scaled = _C.se_attention("SEModule", x, fc1, fc2, hidden)
    expected = scaled + residual
    expected = np.where(expected < 0, np.zeros_like(expected), expected)
    xb, rb = _C.to_blocked("t", x), _C.to_blocked("t", residual)
    # the same maps as every other image of a batch twice as long, and as
    # the first blocks of maps with more channel blocks
    x_sliced = np.concatenate([xb, xb + 1], axis=1)[:, :xb.shape[1]]
    r_sliced = np.stack([rb, rb], axis=1).reshape((2 * n,) + rb.shape[1:])[::2]
    for xi, res, relu, want in [(xb, rb, True, expected), (xb, None, False, scaled),
                                (x_sliced, rb, True, expected), (xb, r_sliced, True, expected),
                                (x_sliced, r_sliced, True, expected)]:
        got = _C.se_attention("SEModule", xi, fc1, fc2, hidden, blocked=True, channels=c,
                              residual=res, relu=relu)
        assert got.shape == xb.shape and got.flags.c_contiguous
        np.testing.assert_array_equal(_C.from_blocked("t", got, c), want)
        flat = got.transpose(0, 1, 4, 2, 3).reshape(n, -1, h, w)
        assert not flat[:, c:].any()



@pytest.mark.parametrize("bilinear, shape, threads", [(False, (1, 3, 64, 64), 1),
                                                      (False, (2, 3, 37, 45), 2),
                                                      (True, (1, 3, 50, 34), 1),
                                                      (True, (2, 3, 33, 64), 2)])
def test_planned_unet_same_bits(isa, rng, restore_threads, bilinear, shape, threads):
    """UNet, with transposed convolutions or bilinear upsampling, even and
    odd sizes (the decoder pads): every one of the 18 DoubleConv
    convolutions blocked, the layer-by-layer bits."""
    sb.set_num_threads(threads)
    model = _randomized(sb.UNet(3, 2, bilinear=bilinear), rng)
    _assert_planned(model, rng.standard_normal(shape).astype(np.float32), 18)


def test_planned_unet_steps_aside(rng):
    """A hook below UNet, or a replaced part, and UNet runs layer by layer
    (its Down steps, Sequentials of registered blocks, may still be
    planned on their own); the bits are the unplanned ones, the hook sees
    its call, and the plan is back once the hook is gone."""
    model = _randomized(sb.UNet(3, 2), rng)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    seen = []
    handle = model.up2.conv.double_conv[3].register_forward_hook(
        lambda m, a, out: seen.append(out.shape))
    _assert_planned(model, x, lambda count: count < 18)
    assert seen == [(1, 256, 8, 8)] * 3  # (_assert_planned runs it three times)
    handle.remove()
    _assert_planned(model, x, 18)

    class Probe(sb.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            seen.append([type(a) for a in args])
            return self.inner(*args)
    model.up3 = Probe(model.up3)
    seen.clear()
    _assert_planned(model, x, lambda count: count < 18)
    assert seen == [[np.ndarray, np.ndarray]] * 3
    _assert_same_error(model, np.ones((1, 4, 32, 32), np.float32))


def test_planned_unet_respects_instance_forwards(rng):
    """A forward set on the pooling of a Down or on an Up's upsampling is
    called (UNet then runs layer by layer), whatever it returns: a scaled
    map, or one channel fewer (torch's error)."""
    model = _randomized(sb.UNet(3, 2, bilinear=True), rng)
    x = rng.standard_normal((2, 3, 33, 35)).astype(np.float32)
    with runtime.unplanned():
        expected = model(x)
    pool = model.down3.maxpool_conv[0]
    pool.forward = lambda y: sb.MaxPool2d.forward(pool, y) * 0.5
    _assert_planned(model, x, lambda count: count < 18)
    assert not np.array_equal(model(x), expected)
    del pool.forward
    up = model.up3.up
    up.forward = lambda y: sb.Upsample.forward(up, y)[:, 1:]
    _assert_same_error(model, x)
    up.forward = lambda y: sb.Upsample.forward(up, y) * 2
    _assert_planned(model, x, lambda count: count < 18)
    del up.forward
    _assert_planned(model, x, 18)
    np.testing.assert_array_equal(model(x), expected)


def test_se_attention_blocked_errors(rng):
    se, x, residual = _se_operator_case(rng, "float32", 1, 20, 4, 4)
    fc1, fc2 = se._packed_for(4, 20, np.float32)
    xb = _C.to_blocked("t", x)
    with pytest.raises(ValueError, match=r"SEModule: input of size \[1, 20, 4, 4\] is not a "
                                         r"channel-blocked map"):
        _C.se_attention("SEModule", x, fc1, fc2, 5, blocked=True, channels=20)
    with pytest.raises(RuntimeError, match="the residual, of size \\[1, 2, 4, 3, 16\\]"):
        _C.se_attention("SEModule", xb, fc1, fc2, 5, blocked=True, channels=20,
                        residual=np.zeros((1, 2, 4, 3, 16), np.float32), relu=True)
    with pytest.raises(ValueError, match="residual, relu or channels and blocked go together"):
        _C.se_attention("SEModule", x, fc1, fc2, 5, residual=residual)
    with pytest.raises(ValueError, match="residual, relu or channels and blocked go together"):
        _C.se_attention("SEModule", x, fc1, fc2, 5, channels=20)
    with pytest.raises(RuntimeError,
                       match="residual has dtype float64 but the input has dtype float32"):
        _C.se_attention("SEModule", xb, fc1, fc2, 5, blocked=True, channels=20,
                        residual=xb.astype(np.float64), relu=True)
    with pytest.raises(ValueError, match="expected \\[N, 1, H, W, 16\\]"):
        _C.se_attention("SEModule", xb, fc1, fc2, 5, blocked=True, channels=16)

def test_planned_dense_block_needs_whole_blocks(rng):
    """Channels that are not whole 16-lane blocks (growth 12, or an input of
    40 channels): the block runs on NCHW, same bits."""
    for growth, width in ((12, 64), (32, 40)):
        seq = sb.Sequential(sb.Conv2d(3, width, 3, padding=1), sb.BatchNorm2d(width),
                            sb.Dense_Block(3, width, growthrate=growth, bn_size=4))
        _randomized(seq, rng)
        _assert_planned(seq, rng.standard_normal((1, 3, 20, 20)).astype(np.float32), 0)


def test_dense_layer_blocked_operator_errors(rng):
    layer = _randomized(sb.DenseLayer(32, 32, 4), rng)
    x = _C.to_blocked("t", rng.standard_normal((2, 32, 6, 6)).astype(np.float32))
    args = (layer.bn1._state()[0], layer.bn2._state()[0], layer.conv1._block_args(),
            layer.conv2._block_args())
    out = _C.dense_layer("DenseLayer", x, *args, blocked=True)
    expected = layer(_C.from_blocked("t", x, 32))
    np.testing.assert_array_equal(_C.from_blocked("t", out, 32), expected)
    # a slice of a larger blocked buffer, written in place
    buffer = np.zeros((2, 4, 6, 6, 16), np.float32)
    buffer[:, :2] = x
    assert _C.dense_layer("DenseLayer", buffer[:, :2], *args, out=buffer[:, 2:],
                          blocked=True) is not None
    np.testing.assert_array_equal(buffer[:, 2:], out)
    np.testing.assert_array_equal(buffer[:, :2], x)
    # an NCHW input is refused (None: the caller runs the layers one by one)
    assert _C.dense_layer("DenseLayer", _C.from_blocked("t", x, 32), *args,
                          blocked=True) is None
    layer.train()  # batch statistics: refused, the running statistics untouched
    from skipblocks.module import writable
    running = [layer.bn1.running_mean, layer.bn1.running_var]
    before = [r.copy() for r in running]
    with writable(*running, layer.bn2.running_mean, layer.bn2.running_var):
        assert _C.dense_layer("DenseLayer", x, layer.bn1._state()[0], layer.bn2._state()[0],
                              layer.conv1._block_args(), layer.conv2._block_args(),
                              blocked=True) is None
    for r, b in zip(running, before):
        np.testing.assert_array_equal(r, b)


def test_plan_not_used_where_it_must_not(rng):
    model = _randomized(sb.models.resnet18(num_classes=10), rng)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert _blocked_calls(model, x) > 0
    assert _blocked_calls(model, x.astype(np.float64)) > 0  # converted to float32 first
    model.train()
    assert _blocked_calls(model, np.concatenate([x, x])) == 0
    model.eval()
    seen = []
    everything = _blocked_calls(model, x)
    handle = model.layer2[0].conv1.register_forward_hook(
        lambda m, i, o: seen.append((type(o), o.shape)))
    with runtime.unplanned():
        expected = model(x)
    # the hooked stage runs layer by layer; the other stages keep their plans
    assert 0 < _blocked_calls(model, x) < everything - 4
    assert seen == [(np.ndarray, (1, 128, 4, 4))] * 2
    np.testing.assert_array_equal(model(x), expected)
    handle.remove()
    assert _blocked_calls(model, x) == everything
    with runtime.unfused():
        assert _blocked_calls(model, x) == 0
    model64 = _randomized(sb.models.resnet18(num_classes=10, dtype="float64"), rng)
    assert _blocked_calls(model64, x) == 0


def test_plan_skips_replaced_blocks(rng):
    """A replaced block: no plan for its stage (its forward sees NCHW
    arrays), same bits."""
    model = _randomized(sb.models.resnet18(num_classes=10), rng)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    seen = []

    class Probe(sb.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, y):
            seen.append(type(y))
            return self.inner(y)
    with runtime.unplanned():
        expected = model(x)
    everything = _blocked_calls(model, x)
    model.layer3[1] = Probe(model.layer3[1])
    # layer3 runs layer by layer; the other stages keep their plans
    assert 0 < _blocked_calls(model, x) < everything - 4
    seen.clear()
    np.testing.assert_array_equal(model(x), expected)
    assert seen == [np.ndarray]


@pytest.mark.parametrize("demo, shape", [("resnet_demo", (1, 3, 100, 100)),
                                         ("resnet_demo", (2, 3, 64, 80)),
                                         ("densenet_demo", (1, 3, 100, 100)),
                                         ("densenet_demo", (2, 3, 45, 61))])
def test_planned_document_demo_same_bits(isa, rng, demo, shape):
    from skipblocks import demos
    model = getattr(demos, demo)().eval()
    _randomized(model, rng)
    _assert_planned(model, rng.standard_normal(shape).astype(np.float32), lambda n: n > 0)


def test_planned_sequential_of_blocks(rng):
    """A Sequential of the document's blocks, with a lone Conv2d (bias), a
    Conv2d + BatchNorm2d, pools; and what keeps it unplanned."""
    seq = sb.Sequential(sb.Conv2d(5, 32, 3, padding=1), sb.MaxPool2d(3, 2, 1, ceil_mode=True),
                        sb.Conv2d(32, 48, 1), sb.BatchNorm2d(48), sb.ReLU(),
                        sb.ResidualBlock(48, 48),
                        sb.ResidualBlock(48, 64, stride=[2, 1], downsample=sb.Sequential(
                            sb.Conv2d(48, 64, 1, stride=2, bias=False), sb.BatchNorm2d(64))))
    _randomized(seq, rng)
    x = rng.standard_normal((2, 5, 23, 19)).astype(np.float32)
    with runtime.unplanned():
        expected = seq(x)
    assert _blocked_calls(seq, x) == 7  # 1 + 1 + 2 + 3 (the downsample)
    np.testing.assert_array_equal(seq(x), expected)
    seq[3].train()  # a BatchNorm in train mode: no plan
    assert _blocked_calls(seq, x) == 0
    seq[3].eval()
    seq[1] = sb.AvgPool2d(2)  # not a layer a plan knows
    assert _blocked_calls(seq, x) == 0
    plain = sb.Sequential(sb.Conv2d(5, 32, 3), sb.ReLU(), sb.Conv2d(32, 32, 3))
    assert _blocked_calls(plain.eval(), x) == 0  # no residual block: not worth converting


def test_plan_never_stale(rng):
    model = _randomized(sb.models.resnet18(num_classes=10), rng)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    model(x)
    conv = model.layer1[0].conv1
    conv.weight = conv.weight + np.float32(1.0)
    model.layer2[0].bn2.running_mean = model.layer2[0].bn2.running_mean + 0.5
    model.layer3[0].bn1.eps = 0.1
    with runtime.unplanned():
        expected = model(x)
    np.testing.assert_array_equal(model(x), expected)



def _same_as_unplanned(model, x):
    """model(x) gives the unplanned result, or raises the unplanned error."""
    try:
        with runtime.unplanned():
            expected = model(x)
    except (ValueError, RuntimeError) as e:
        with pytest.raises(type(e), match=re.escape(str(e))):
            model(x)
        return
    np.testing.assert_array_equal(model(x), expected)


def test_prepared_arguments_follow_every_change(rng):
    """What a planned forward gathers from its modules once per state epoch
    (each convolution's arguments and packed weights, a dense block's
    per-layer BatchNorm states and convolutions) follows every change made
    after a planned forward: the next forward gives the unplanned result,
    and deep copies and pickles carry none of it."""
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)

    def fresh():
        model = _randomized(sb.models.densenet121(num_classes=10), rng)
        model(x)
        return model

    layer = lambda m: m.features.denseblock2.denselayer3  # noqa: E731
    changes = [
        lambda m: setattr(layer(m).norm1, "running_var",
                          (layer(m).norm1.running_var * 3).astype(np.float32)),
        lambda m: setattr(layer(m).norm2, "eps", 0.5),
        lambda m: layer(m).conv2._parameters.__setitem__(
            "weight", (layer(m).conv2.weight * -2).astype(np.float32)),
        lambda m: setattr(m.features.conv0, "weight", (m.features.conv0.weight * 2)),
        lambda m: setattr(m.features.transition1.conv, "weight",
                          (m.features.transition1.conv.weight + 1).astype(np.float32)),
        lambda m: setattr(m.features.transition2.norm, "running_mean",
                          (m.features.transition2.norm.running_mean + 1).astype(np.float32)),
        lambda m: setattr(m.features.transition3.norm, "eps", 0.25),
    ]
    for change in changes:
        model = fresh()
        before = model(x)
        change(model)
        after = model(x)
        _same_as_unplanned(model, x)
        assert not np.array_equal(before, after)  # the change reached the result
    import copy
    import pickle
    model = fresh()
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert all("_prepared_cache" not in m.__dict__ for m in clone.modules())
        _same_as_unplanned(clone, x)


def test_cached_plan_rebuilt_after_any_change(rng):
    """A network's plan is cached per input shape and rebuilt after any
    change to any module: each change below, made after a planned forward,
    gives the unplanned result (a stale plan would run the old structure),
    and a plan is reused when nothing changed."""
    model = _randomized(sb.models.resnet18(num_classes=10), rng)
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    model(x)
    plan = model.__dict__["_plan_cache"][1][x.shape]
    model(x)
    assert model.__dict__["_plan_cache"][1][x.shape] is plan  # reused: nothing changed
    changes = [
        lambda m: setattr(m.layer1[0].conv2, "stride", (2, 2)),
        lambda m: setattr(m.layer2[0].conv1, "padding", (2, 2)),
        lambda m: m.layer1.__delitem__(1),
        lambda m: m.layer1.append(sb.models.resnet.BasicBlock(64, 64).eval()),
        lambda m: m.layer3.__setitem__(1, sb.Identity()),
        lambda m: m.layer2._modules.pop("1"),  # the children's dict itself
        lambda m: setattr(m, "relu", sb.Identity()),
        lambda m: m.layer4[0].__setattr__("downsample", None),
        lambda m: m.layer1[0].bn1.train(),
        lambda m: setattr(m.layer1[0].bn2, "track_running_stats", False),
        lambda m: m.layer2[0].bn1.__delattr__("running_var") or
        m.layer2[0].bn1.register_buffer("running_var", None),
    ]
    for change in changes:
        model = _randomized(sb.models.resnet18(num_classes=10), rng)
        model(x)
        change(model)
        _same_as_unplanned(model, x)
    # a store replaced by assignment stays tracked; direct edits of the
    # parameter dicts also move the layer's version (its packed weights)
    from collections import OrderedDict
    model = _randomized(sb.models.resnet18(num_classes=10), rng)
    model(x)
    model.layer1._modules = OrderedDict(model.layer1._modules)
    model(x)
    model.layer1._modules.pop("1")
    _same_as_unplanned(model, x)
    conv = model.layer2[0].conv1
    conv._parameters["weight"] = (conv.weight * 2).astype(np.float32)
    with runtime.unfused():
        expected = model(x)
    np.testing.assert_allclose(model(x), expected, rtol=1e-4, atol=1e-4)
    # several input shapes keep their plans side by side
    model(x)
    y = rng.standard_normal((1, 3, 48, 40)).astype(np.float32)
    model(y)
    plans = model.__dict__["_plan_cache"][1]
    assert x.shape in plans and y.shape in plans
    # copies and pickles carry no plan; their plans are their own
    import copy
    import pickle
    model = _randomized(sb.models.resnet18(num_classes=10), rng)
    model(x)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model)), copy.copy(model)):
        assert "_plan_cache" not in clone.__dict__
        _same_as_unplanned(clone, x)
        clone.layer1[1] = sb.Identity()
        _same_as_unplanned(clone, x)
        _same_as_unplanned(model, x)

def test_plan_errors_as_unplanned(rng):
    model = _randomized(sb.models.resnet18(num_classes=10), rng)
    x = np.ones((1, 3, 32, 32), np.float32)
    cases = [(model, np.ones((1, 4, 32, 32), np.float32))]
    no_downsample = _randomized(sb.models.resnet18(num_classes=10), rng)
    no_downsample.layer2[0].downsample = None  # the residual's shape no longer fits
    cases.append((no_downsample, x))
    wrong_width = _randomized(sb.models.resnet18(num_classes=10), rng)
    wrong_width.layer3[1].conv1 = sb.Conv2d(128, 256, 3, padding=1, bias=False)
    cases.append((wrong_width, x))
    for net, bad in cases:
        _assert_same_error(net, bad)


def _assert_same_error(net, x):
    """net(x) raises the same exception, with the same text, planned or not."""
    with runtime.unplanned():
        with pytest.raises(Exception) as unplanned_error:
            net(x)
    with pytest.raises(type(unplanned_error.value)) as planned_error:
        net(x)
    assert str(planned_error.value) == str(unplanned_error.value)


def test_layout_channel_count_errors():
    b = _C.to_blocked("t", np.zeros((1, 16, 2, 2), np.float32))
    for channels in (2 ** 63 - 1, -1, -30):
        with pytest.raises(ValueError, match=f"L: input: a channel-blocked map of {channels} "
                                             "channels: expected 0 to"):
            _C.from_blocked("L", b, channels)
    with pytest.raises(ValueError, match="map of -1 channels"):
        _C.max_pool2d("L", b, (2, 2), (2, 2), (0, 0), (1, 1), False, blocked_channels=-1)
    with pytest.raises(ValueError, match=r"expected a 4-D \(N, C, H, W\) map .* got size "
                                         r"\[16, 2, 2\]"):
        _C.to_blocked("L", np.zeros((16, 2, 2), np.float32))


@pytest.mark.parametrize("pool_args", [dict(kernel_size=(3,), stride=2, padding=1),
                                       dict(kernel_size=3, stride=[], padding=1),
                                       dict(kernel_size=3, stride=(2,), padding=(1,))])
def test_plan_pool_parameters_as_the_functional(rng, pool_args):
    seq = sb.Sequential(sb.Conv2d(3, 16, 3, padding=1), sb.MaxPool2d(**pool_args),
                        sb.ResidualBlock(16, 16))
    _randomized(seq, rng)
    _assert_planned(seq, rng.standard_normal((1, 3, 17, 15)).astype(np.float32), 3)


def test_plan_respects_instance_forwards(rng):
    """A forward set on a module instance (a user's patch, parity's
    recording wrappers) is called: that Sequential runs layer by layer."""
    seq = _randomized(sb.Sequential(sb.Conv2d(3, 16, 3, padding=1), sb.ResidualBlock(16, 16)),
                      rng)
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    calls = []
    block = seq[1]
    original = block.forward

    def patched(y):
        calls.append(1)
        return original(y) * 0
    block.forward = patched
    out = seq(x)
    assert calls == [1] and not out.any()
    del block.forward
    assert _blocked_calls(seq, x) == 3


def test_plan_errors_for_reassigned_conv_attributes(rng):
    for attribute, value in (("stride", 2), ("dilation", 1), ("padding", 1), ("stride", (2,))):
        net = _randomized(sb.models.resnet18(num_classes=10), rng)
        setattr(net.layer2[0].conv1, attribute, value)
        _assert_same_error(net, np.ones((1, 3, 32, 32), np.float32))


def test_batch_norm_reads_strided_5d_slices_as_copies(rng):
    """Only the operators that take blocked maps accept a 5-D slice with a
    gap between images as it is; others (F.batch_norm on 5-D input) read a
    copy, so the gap never shifts their images."""
    x = rng.standard_normal((2, 4, 3, 5, 6)).astype(np.float32)
    view = x[:, :2]
    zeros, ones = np.zeros(2, np.float32), np.ones(2, np.float32)
    out = sb.functional.batch_norm(view, zeros, ones, eps=0.0)
    np.testing.assert_array_equal(out, view)
    mean = zeros.copy()
    sb.functional.batch_norm(view, mean, ones.copy(), training=True, momentum=1.0, eps=1e-5)
    np.testing.assert_allclose(mean, view.mean(axis=(0, 2, 3, 4)), rtol=1e-6)

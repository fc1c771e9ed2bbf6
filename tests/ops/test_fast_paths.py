"""The convolution fast path (GEMM on 6x16 register tiles, K blocks of
<= 256 (<= 128 for 1x1 kernels), tiles of <= 192 pixels; "channel rows" = 6 output channels x 16
pixel columns, or "pixel rows" = 6 pixels x 16 output channels, the default
unless 16-channel panels pad C_out more than 5 % over 6-channel blocks: C_out
13, 16, 32, 64, ... run pixel rows, 1, 5, 6, 7, 12 channel rows) on every
ISA this machine runs, and the fusions built on it:

1. Conv2d against torch.nn.functional.conv2d across the tile edges of both
   orientations (C_out around MR=6 and around 16-channel panels, pixel
   counts around NR=16, 6 and the 192-pixel tile, K around the 256 and the
   1x1 kernels' 128 K blocks),
   strides, dilations, groups, paddings, views.
   Also the fusion arguments of Conv2d._conv (input BatchNorm+ReLU, folded
   BatchNorm, residual, ReLU) at those edges.
2. The fused blocks (ResidualBlock, DenseLayer, DenseBlock, the three demos)
   against the document's torch modules and against their own unfused path
   (``skipblocks.runtime.unfused()``), train and eval mode.
3. Bit-identical results for every thread count.
4. Packed-weight caches are never stale (every way a weight, BatchNorm
   parameter, running statistic or eps can change; ISA switches).
5. (fork: tests/module_api/test_threads_fork.py)
6. The environment variables and the argument checks of the runtime API.
7. Concurrent calls from Python threads (the GIL is released) are safe.
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch import nn

import skipblocks as sb
from skipblocks import demos as sb_demos
from skipblocks import reference as ref

from helpers import (as_dtype, assert_parity, assert_state_dict_parity, diff_report, load_from_torch,
                     poison_heap, randn, randomize_, to_torch, uniform)

ISAS = sb.available_isas()


def _fused_conv(conv, x, fold=None, **fusion):
    """The conv2d operator's fusions (input transform, residual, ReLU) on a
    Conv2d's cached packed weights, with an eval-mode BatchNorm ``fold``."""
    return sb._C.conv2d("Conv2d", x, conv.weight, conv.bias, conv.stride,
                        conv._symmetric_padding(), conv.dilation, conv.groups,
                        packed=conv._packed_weights(fold), **fusion)
_BEST_ISA = [isa for isa in ("avx512", "avx2", "scalar") if isa in ISAS][0]

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(sb.__file__)))


# ---------------------------------------------------------------------------
# fixtures: ISA and thread count, always restored
# ---------------------------------------------------------------------------


def test_available_isas_sane():
    assert "scalar" in ISAS, ISAS
    assert len(set(ISAS)) == len(ISAS)
    assert set(ISAS) <= {"scalar", "avx2", "avx512"}, ISAS
    # each ISA implies the ones below it (AVX-512 runs the AVX2 kernels too)
    assert "avx512" not in ISAS or "avx2" in ISAS, ISAS
    previous = sb.get_isa()
    try:
        sb.set_isa("auto")
        assert sb.get_isa() == _BEST_ISA
    finally:
        sb.set_isa(previous)


# ---------------------------------------------------------------------------
# 1. Conv2d parity across the tile edges
# ---------------------------------------------------------------------------

def _conv_case(n, cin, hw, cout, k=3, stride=1, pad=1, dil=1, groups=1, bias=True,
               view=None):
    return dict(n=n, cin=cin, hw=hw, cout=cout, k=k, stride=stride, pad=pad, dil=dil,
                groups=groups, bias=bias, view=view)


def _conv_cases():
    """Channel rows (C_out 1, 5, 6, 7, 12: padded less by 6-row blocks than
    by 16-channel panels): the kernel cuts each (image, group) GEMM into
    columns of "virtual" pixels: OH x Wph, Wph the width of a phase plane, ceil((W + 2*pad) /
    stride) (for stride 1 the padded width; extra columns are dropped);
    column blocks of up to 192 (fewer when
    several threads share few images), panels of NR=16; K blocks of equal
    size <= 256; rows in blocks of MR=6. The sizes below put the column count
    at 15, 16, 17, 191, 192, 193 in each of the three column layouts."""
    cases = []
    # stride 1, 3x3, padding 1: columns = H * (W + 2)
    padded = {15: (1, 13), 16: (1, 14), 17: (1, 15), 191: (1, 189), 192: (2, 94), 193: (1, 191)}
    # stride 1, 1x1, padding 0 (read in place): columns = H * W = output pixels
    direct = {15: (3, 5), 16: (4, 4), 17: (1, 17), 191: (1, 191), 192: (12, 16), 193: (1, 193)}
    # stride 2, 3x3, padding 1 (phase planes): columns = OH * ceil((W + 2) / 2)
    strided = {15: (5, 7), 16: (7, 6), 17: (1, 32), 191: (2, 379), 192: (47, 14),
               193: (1, 384)}
    for i, cout in enumerate((1, 5, 6, 7, 12, 13, 32, 64)):
        for j, (cols, hw) in enumerate(sorted(padded.items())):
            cases.append(("s1_3x3_cout%d_cols%d" % (cout, cols),
                          _conv_case(1 + 2 * ((i + j) % 2 == 0 and cols < 100), 3, hw, cout,
                                     bias=(i + j) % 3 != 0)))
    for layout, table, k, stride, pad in (("s1_1x1", direct, 1, 1, 0),
                                          ("s2_3x3", strided, 3, 2, 1)):
        for i, cout in enumerate((6, 7, 13)):
            for j, (cols, hw) in enumerate(sorted(table.items())):
                cases.append(("%s_cout%d_cols%d" % (layout, cout, cols),
                              _conv_case(1 + (i + j) % 2, 5, hw, cout, k=k, stride=stride,
                                         pad=pad, bias=(i + j) % 2 == 0)))
    # K around the K block: C_in*9 = 252, 261, 513 (and 2x K blocks exactly: 512 = 8*64).
    for cin in (28, 29, 57):
        for cout, hw in ((6, (4, 5)), (7, (1, 17)), (13, (12, 17))):
            cases.append(("K%d_cout%d" % (cin * 9, cout), _conv_case(1, cin, hw, cout)))
    # Pixel rows (C_out 13, 16, 32, 48, ...: the GEMM runs with 6 real
    # pixels x 16 output channels per tile, pixels in tiles of up to 192, or
    # fewer with many channels): pixel counts around 6 and the tile, channel
    # panels 1-3, K around the 256 block, strides, dilation, groups.
    for cout, hw in ((16, (1, 5)), (16, (2, 3)), (32, (1, 7)), (48, (13, 15)),
                     (16, (1, 191)), (32, (12, 16)), (16, (1, 193)), (128, (7, 29))):
        cases.append(("pixrows_K261_cout%d_pix%d" % (cout, hw[0] * hw[1]),
                      _conv_case(1 + (cout == 32), 29, hw, cout, bias=cout != 48)))
    cases += [
        ("pixrows_K256_1x1", _conv_case(2, 256, (5, 7), 32, k=1, pad=0)),
        ("pixrows_K513_stride2", _conv_case(1, 57, (14, 11), 16, stride=2)),
        ("pixrows_K288_dil2_groups2", _conv_case(2, 64, (9, 10), 32, dil=2, pad=2, groups=2)),
        ("pixrows_K1152_cout32", _conv_case(1, 128, (25, 25), 32, bias=False)),
        ("pixrows_K576_cout512_tile_limit", _conv_case(1, 64, (9, 8), 512, bias=False)),
        ("pixrows_slice", _conv_case(2, 30, (5, 9), 16, view="slice")),
        ("pixrows_strided_view", _conv_case(1, 32, (6, 17), 16, view="strided")),
    ]
    cases.append(("K256_1x1", _conv_case(2, 256, (5, 7), 13, k=1, pad=0)))
    cases.append(("K257_1x1", _conv_case(1, 257, (3, 6), 7, k=1, pad=0)))
    for cin in (127, 128, 129):  # around the 1x1 kernels' 128-row K block, both orientations
        cases.append(("K%d_1x1_pixrows" % cin, _conv_case(1, cin, (4, 9), 16, k=1, pad=0)))
        cases.append(("K%d_1x1_chanrows" % cin, _conv_case(1, cin, (4, 9), 6, k=1, pad=0)))
    # K tiny
    for cout, hw in ((1, (4, 4)), (7, (1, 17)), (64, (13, 15))):
        cases.append(("K1_cout%d" % cout, _conv_case(2, 1, hw, cout, k=1, pad=0)))
    cases.append(("K1_pad1", _conv_case(1, 1, (5, 3), 6, k=1, pad=1)))
    # strides, dilations, paddings
    cases += [
        ("stride2", _conv_case(1, 5, (11, 13), 7, stride=2)),
        ("stride2_1x1_pad0", _conv_case(2, 16, (9, 9), 13, k=1, stride=2, pad=0, bias=False)),
        ("stride2_7x7_pad3", _conv_case(1, 3, (37, 41), 64, k=7, stride=2, pad=3, bias=False)),
        ("stride3_pad0", _conv_case(2, 4, (20, 19), 12, k=3, stride=3, pad=0)),
        # phases no tap reads (kernel narrower than the stride), and phases
        # reached only through the dilation
        ("k2_stride3_dil2", _conv_case(2, 5, (17, 22), 7, k=2, stride=3, pad=1, dil=2)),
        ("k3_stride4_dil3_pad2", _conv_case(1, 3, (25, 19), 13, k=3, stride=4, pad=2, dil=3)),
        ("patchify_k4_stride4", _conv_case(2, 3, (16, 20), 12, k=4, stride=4, pad=0)),
        ("patchify_k32_stride32", _conv_case(1, 3, (64, 96), 8, k=32, stride=32, pad=0)),
        ("stride5_pad2_odd", _conv_case(1, 6, (23, 31), 7, k=(3, 7), stride=(5, 2),
                                        pad=(2, 3))),
        ("dil2", _conv_case(1, 4, (12, 11), 12, dil=2)),
        ("dil2_pad3", _conv_case(2, 6, (9, 17), 13, dil=2, pad=3)),
        ("dil2_stride2_pad0", _conv_case(1, 3, (23, 24), 7, dil=2, stride=2, pad=0)),
        ("dil2_stride1_pad0_groups2", _conv_case(2, 6, (9, 17), 14, dil=2, pad=0, groups=2)),
        ("pad0", _conv_case(1, 5, (6, 7), 6, pad=0)),
        ("pad3", _conv_case(1, 5, (2, 3), 7, pad=3)),
        ("kernel_bigger_than_input", _conv_case(1, 2, (2, 3), 5, k=5, pad=3)),
        ("pairs", _conv_case(1, 4, (9, 14), 13, k=(3, 5), stride=(1, 2), pad=(0, 2),
                             dil=(2, 1))),
        # groups
        ("groups2", _conv_case(2, 6, (8, 9), 14, groups=2)),
        ("groups2_cout_g6", _conv_case(1, 8, (5, 7), 12, groups=2, bias=False)),
        ("groups2_cout_g13_K261", _conv_case(1, 58, (6, 6), 26, groups=2)),
        ("groups4_stride2", _conv_case(3, 8, (10, 11), 20, groups=4, stride=2)),
        ("depthwise", _conv_case(2, 13, (9, 10), 13, groups=13)),
        ("depthwise_mult2", _conv_case(1, 5, (17, 12), 10, groups=5, bias=False)),
        ("depthwise_64_cols193", _conv_case(1, 64, (1, 191), 64, groups=64)),
        # batch
        ("batch3_cols193", _conv_case(3, 4, (1, 191), 13)),
        ("batch3_pix400", _conv_case(3, 7, (20, 20), 7, bias=False)),
        # views of a bigger array
        ("slice", _conv_case(1, 5, (6, 7), 7, view="slice")),
        ("slice_batch3_cols193", _conv_case(3, 5, (1, 191), 13, view="slice")),
        ("slice_K261", _conv_case(2, 29, (5, 4), 6, view="slice", bias=False)),
        ("slice_groups", _conv_case(1, 6, (7, 7), 12, groups=2, view="slice")),
        ("slice_1x1_in_place_batch3", _conv_case(3, 6, (4, 5), 7, k=1, pad=0, view="slice")),
        ("slice_stride2_pad0_in_place", _conv_case(2, 5, (9, 11), 13, stride=2, pad=0,
                                                   view="slice")),
        ("strided_view", _conv_case(2, 5, (9, 17), 7, view="strided")),
        ("transposed_hw", _conv_case(1, 4, (6, 19), 6, view="transposed")),
        # empty batch
        ("N0", _conv_case(0, 4, (5, 5), 6)),
        ("N0_K261", _conv_case(0, 29, (3, 17), 13, stride=2)),
    ]
    return cases


CONV_CASES = _conv_cases()


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def _make_input(rng, c, dtype=np.float32):
    n, cin, (h, w) = c["n"], c["cin"], c["hw"]
    view = c["view"]
    if view is None:
        return randn(rng, n, cin, h, w, dtype=dtype)
    if view == "slice":          # x[:, 2:2+cin] of a bigger array
        return randn(rng, n, cin + 7, h, w, dtype=dtype)[:, 2:2 + cin]
    if view == "strided":        # every other column of a wider array
        return randn(rng, n, cin, h, 2 * w, dtype=dtype)[..., ::2]
    if view == "transposed":     # (N, C, H, W) view of a (N, C, W, H) array
        return randn(rng, n, cin, w, h, dtype=dtype).transpose(0, 1, 3, 2)
    raise ValueError(view)


@pytest.mark.parametrize("name,case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d_tile_edges(isa, rng, restore_threads, name, case, dtype):
    c = case
    k, stride, pad, dil = _pair(c["k"]), _pair(c["stride"]), _pair(c["pad"]), _pair(c["dil"])
    conv = sb.Conv2d(c["cin"], c["cout"], k, stride=stride, padding=pad, dilation=dil,
                     groups=c["groups"], bias=c["bias"], dtype=dtype)
    # weights of a varied scale so that a dropped term or wrong tile is visible
    conv.weight = randn(rng, *conv.weight.shape, scale=0.3, dtype=dtype)
    if c["bias"]:
        conv.bias = randn(rng, c["cout"], dtype=dtype)
    x = _make_input(rng, c, dtype)
    fan_in = (c["cin"] // c["groups"]) * k[0] * k[1]
    with torch.no_grad():
        expected = TF.conv2d(to_torch(x), to_torch(conv.weight),
                             None if conv.bias is None else to_torch(conv.bias),
                             stride, pad, dil, c["groups"])
    x_before = x.copy()
    nbytes = int(np.prod(expected.shape)) * x.itemsize
    first = None
    # 1 thread: column blocks of up to 192; 3 threads: narrower blocks (when
    # the convolution is big enough to be split) -- same numbers either way.
    for threads in (1, 3):
        sb.set_num_threads(threads)
        for attempt in range(2):    # the second call uses the cached packed weights
            poison_heap(nbytes)
            got = conv(x)
            assert_parity(got, expected, "conv2d", fan_in=fan_in,
                          what="%s [%s] %d threads, module call %d" % (name, isa, threads,
                                                                       attempt))
            if first is None:
                first = got
            assert np.array_equal(got, first), "%s [%s] %d threads: %s" % (
                name, isa, threads, diff_report(got, first))
    poison_heap(nbytes)
    got_f = sb.functional.conv2d(x, conv.weight, conv.bias, stride, pad, dil, c["groups"])
    assert_parity(got_f, expected, "conv2d", fan_in=fan_in,
                  what="%s [%s] functional" % (name, isa))
    assert np.array_equal(x, x_before), "%s: the input was modified" % name


# Conv2d._conv's fusion arguments (the blocks' building blocks) at tile edges:
# out = relu(bn_fold(conv(relu(x * in_scale + in_shift))) + residual).
# cin, cout, (h, w), k, stride, pad, in_transform, fold, residual kind, out relu
FUSION_CASES = [
    ("in_bnrelu_pix17_cout7", 5, 7, (1, 17), 3, 1, 1, True, False, None, False),
    ("in_bnrelu_pad3_shift_nonzero", 4, 13, (5, 6), 3, 1, 3, True, False, None, False),
    ("in_bnrelu_1x1_K261", 261, 6, (3, 5), 1, 1, 0, True, False, None, False),
    ("in_bnrelu_K513_pix193", 57, 13, (1, 193), 3, 1, 1, True, False, None, True),
    ("fold_relu_pix192_cout64", 3, 64, (12, 16), 3, 1, 1, False, True, None, True),
    ("fold_stride2_cout13", 7, 13, (11, 9), 3, 2, 1, False, True, None, False),
    ("fold_residual_relu_pix193", 6, 13, (1, 193), 3, 1, 1, False, True, "contiguous", True),
    ("residual_slice_relu", 5, 7, (4, 5), 3, 1, 1, False, False, "slice", True),
    ("in_bnrelu_residual_relu", 12, 12, (6, 7), 3, 1, 1, True, False, "contiguous", True),
    ("all_fusions_K261", 29, 6, (3, 17), 3, 1, 1, True, True, "slice", True),
    # pixel rows (C_out a multiple of 16)
    ("pixrows_in_bnrelu_K288_pix193", 32, 32, (1, 193), 3, 1, 1, True, False, None, True),
    ("pixrows_fold_residual_relu", 64, 64, (5, 7), 3, 1, 1, False, True, "contiguous", True),
    ("pixrows_all_fusions_stride2", 29, 16, (9, 8), 3, 2, 1, True, True, "slice", True),
]


@pytest.mark.parametrize("case", FUSION_CASES, ids=[c[0] for c in FUSION_CASES])
def test_conv2d_fusion_arguments(isa, rng, case, dtype):
    name, cin, cout, (h, w), k, stride, pad, in_tf, fold, res_kind, relu = case
    conv = sb.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False, dtype=dtype)
    conv.weight = randn(rng, *conv.weight.shape, scale=0.3, dtype=dtype)
    x = randn(rng, 2, cin, h, w, dtype=dtype)
    xt = to_torch(x)
    kwargs = {}
    if in_tf:
        scale = uniform(rng, cin, low=0.5, high=1.5, dtype=dtype)
        shift = randn(rng, cin, scale=0.5, dtype=dtype)
        kwargs.update(in_scale=scale, in_shift=shift, in_relu=True)
        # torch pads the transformed map: padding stays zero
        xt = torch.relu(xt * to_torch(scale)[:, None, None] + to_torch(shift)[:, None, None])
    with torch.no_grad():
        expected = TF.conv2d(xt, to_torch(conv.weight), None, stride, pad)
    if fold:
        tbn, bn = as_dtype(nn.BatchNorm2d(cout, eps=1e-3), sb.BatchNorm2d(cout, eps=1e-3),
                           dtype)
        randomize_(tbn, seed=len(name))
        load_from_torch(bn, tbn)
        bn.eval()
        tbn.eval()
        kwargs["fold"] = bn
        with torch.no_grad():
            expected = tbn(expected)
    if res_kind is not None:
        shape = tuple(expected.shape)
        if res_kind == "contiguous":
            residual = randn(rng, *shape, dtype=dtype)
        else:
            residual = randn(rng, shape[0], shape[1] + 3, *shape[2:],
                             dtype=dtype)[:, 1:1 + shape[1]]
        kwargs["residual"] = residual
        expected = expected + to_torch(residual)
    if relu:
        kwargs["relu"] = True
        expected = torch.relu(expected)
    poison_heap(int(np.prod(expected.shape)) * 4)
    got = _fused_conv(conv, x, **kwargs)
    # measured 1e-7 .. 4e-7 on both ISAs: the fused epilogue and the folded
    # weights keep the convolution's own bound
    assert_parity(got, expected, "conv2d", fan_in=cin * k * k, what="%s [%s]" % (name, isa))


# ---------------------------------------------------------------------------
# 2. fused blocks vs unfused vs torch
# ---------------------------------------------------------------------------

def _conv_bn(mod, cin, cout, stride):
    return mod.Sequential(mod.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                          mod.BatchNorm2d(cout))


# kind -> (torch builder, skipblocks builder, input shape, op, torch takes a list)
BLOCKS = {
    "residual": (lambda: ref.ResidualBlock(13, 13), lambda: sb.ResidualBlock(13, 13),
                 (2, 13, 9, 11), "residual_block", False),
    "residual_downsample": (
        lambda: ref.ResidualBlock(7, 13, stride=[2, 1], downsample=_conv_bn(nn, 7, 13, 2)),
        lambda: sb.ResidualBlock(7, 13, stride=[2, 1], downsample=_conv_bn(sb, 7, 13, 2)),
        (2, 7, 17, 19), "residual_block", False),
    "dense_layer": (lambda: ref.Dense_Layer(10, 7, 4), lambda: sb.DenseLayer(10, 7, 4),
                    (2, 10, 9, 13), "dense_layer", True),
    "dense_block": (lambda: ref.Dense_Block(3, 10, 7, 4), lambda: sb.DenseBlock(3, 10, 7, 4),
                    (2, 10, 9, 13), "dense_block", True),
    "resnet_demo": (ref.resnet_demo, sb_demos.resnet_demo, (1, 3, 100, 100), "resnet_demo",
                    False),
    "densenet_demo": (ref.densenet_demo, sb_demos.densenet_demo, (1, 3, 100, 100),
                      "densenet_demo", False),
    "se_demo": (ref.se_demo, sb_demos.se_demo, (50, 512, 7, 7), "se_demo", False),
}


def _block_input(rng, kind, step=0, dtype=np.float32):
    shape = BLOCKS[kind][2]
    if kind in ("resnet_demo", "densenet_demo"):   # the document's torch.rand
        return uniform(rng, *shape, low=0.0, high=1.0, dtype=dtype)
    return randn(rng, *shape, scale=1.0 + 0.5 * step, shift=0.1 * step, dtype=dtype)


def _torch_call(tm, x, takes_list):
    with torch.no_grad():
        xt = to_torch(x)
        return tm([xt] if takes_list else xt)   # a fresh list: Dense_Block appends to it


def _block_models(kind, seed=0, dtype="float32"):
    """torch model (randomized BatchNorms), its skipblocks twin, and a second
    skipblocks twin for the unfused path, all in ``dtype``."""
    tbuild, sbuild = BLOCKS[kind][:2]
    tm, fused = as_dtype(randomize_(tbuild(), seed=seed), sbuild(), dtype)
    plain = as_dtype(tm, sbuild(), dtype)[1]
    return tm, load_from_torch(fused, tm), load_from_torch(plain, tm)


def _assert_state_dicts_close(a, b, op, what):
    sa, sb_ = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb_)
    for key in sa:
        if key.endswith("num_batches_tracked"):
            assert int(sa[key]) == int(sb_[key]), "%s: %s" % (what, key)
        else:
            assert_parity(sa[key], sb_[key], "running_stats", what="%s %s" % (what, key))


@pytest.mark.parametrize("kind", list(BLOCKS))
def test_block_train_fused_unfused_torch(isa, rng, kind, dtype):
    op, takes_list = BLOCKS[kind][3], BLOCKS[kind][4]
    tm, fused, plain = _block_models(kind, dtype=dtype)
    for m in (tm, fused, plain):
        m.train()
    for step in range(2):
        x = _block_input(rng, kind, step, dtype)
        expected = _torch_call(tm, x, takes_list)
        got = fused(x)
        with sb.runtime.unfused():
            assert not sb.runtime.fusion_enabled()
            got_plain = plain(x)
        assert sb.runtime.fusion_enabled()
        what = "%s [%s] train step %d" % (kind, isa, step)
        assert_parity(got, expected, op, what=what + " fused vs torch")
        assert_parity(got_plain, expected, op, what=what + " unfused vs torch")
        assert_parity(got, got_plain, op, what=what + " fused vs unfused")
    assert_state_dict_parity(fused, tm, what="%s [%s] fused after 2 train forwards" % (kind, isa))
    assert_state_dict_parity(plain, tm,
                             what="%s [%s] unfused after 2 train forwards" % (kind, isa))
    _assert_state_dicts_close(fused, plain, op, "%s [%s] fused vs unfused state" % (kind, isa))


@pytest.mark.parametrize("kind", list(BLOCKS))
def test_block_eval_fused_unfused_torch(isa, rng, kind, dtype):
    op, takes_list = BLOCKS[kind][3], BLOCKS[kind][4]
    tm, fused, plain = _block_models(kind, seed=1, dtype=dtype)
    for m in (tm, fused, plain):
        m.eval()
    for step in range(2):   # the second forward runs on the cached packed weights
        x = _block_input(rng, kind, step, dtype)
        expected = _torch_call(tm, x, takes_list)
        got = fused(x)
        with sb.runtime.unfused():
            got_plain = plain(x)
        what = "%s [%s] eval step %d" % (kind, isa, step)
        assert_parity(got, expected, op, what=what + " fused vs torch")
        assert_parity(got_plain, expected, op, what=what + " unfused vs torch")
        assert_parity(got, got_plain, op, what=what + " fused vs unfused")
    # eval mode changes no state
    assert_state_dict_parity(fused, tm, what="%s [%s] eval state" % (kind, isa))


def test_fused_paths_are_taken(monkeypatch, dtype):
    """The parity tests above compare something: with fusion on, an eval-mode
    ResidualBlock never calls its BatchNorm / convolutions as modules (they are
    folded into two fused convolutions), a DenseLayer never calls its
    BatchNorms, an eval Sequential Conv2d+BatchNorm2d+ReLU (and Conv2d+BatchNorm2d)
    runs as one folded convolution; under unfused() every layer is called.
    In float64 as in float32: the fast paths are keyed on dtype, not limited to float32."""
    calls = []
    for cls in (sb.BatchNorm2d, sb.Conv2d):
        original = cls.forward

        def spy(self, *args, _original=original, _name=cls.__name__, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(cls, "forward", spy)
    x = np.random.default_rng(0).standard_normal((1, 8, 6, 6)).astype(dtype)
    block = sb.ResidualBlock(8, 8, dtype=dtype).eval()
    assert block(x).dtype == np.dtype(dtype)
    assert calls == [], calls
    with sb.runtime.unfused():
        block(x)
    # (the first relu(bn(.)) goes through BatchNorm2d._run, the second bn is a call)
    assert sorted(calls) == ["BatchNorm2d", "Conv2d", "Conv2d"], calls
    del calls[:]
    layer = sb.DenseLayer(8, 4, 2, dtype=dtype)
    for training in (True, False):
        layer.train(training)
        assert layer(x).dtype == np.dtype(dtype)
        assert calls == [], (training, calls)
    del calls[:]
    for relu in (True, False):
        layers = [sb.Conv2d(8, 6, 3, dtype=dtype), sb.BatchNorm2d(6, dtype=dtype)]
        seq = sb.Sequential(*layers + [sb.ReLU()] * relu).eval()
        assert seq(x).dtype == np.dtype(dtype)
        assert calls == [], (relu, calls)
        with sb.runtime.unfused():
            seq(x)
        assert sorted(calls) == ["BatchNorm2d", "Conv2d"], (relu, calls)
        del calls[:]


# ---------------------------------------------------------------------------
# 3. bit-identical results for every thread count
# ---------------------------------------------------------------------------

THREAD_COUNTS = (1, 2, 3, 4)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", ["resnet_demo", "densenet_demo", "se_demo"])
def test_demo_thread_determinism(isa, rng, restore_threads, kind, training, dtype):
    tm = randomize_(BLOCKS[kind][0](), seed=2)
    x = _block_input(rng, kind, dtype=dtype)
    first = None
    for n in THREAD_COUNTS:
        sb.set_num_threads(n)
        assert sb.get_num_threads() == n
        model = load_from_torch(as_dtype(tm, BLOCKS[kind][1](), dtype)[1], tm).train(training)
        outputs = [model(x), model(x)]
        state = {k: v.copy() for k, v in model.state_dict().items()}
        if first is None:
            first = (outputs, state)
            continue
        for i, (a, b) in enumerate(zip(first[0], outputs)):
            assert np.array_equal(a, b), "%s [%s] %s forward %d: %d threads vs 1: %s" % (
                kind, isa, "train" if training else "eval", i, n, diff_report(b, a))
        for key in state:
            assert np.array_equal(first[1][key], state[key]), (
                "%s [%s] state %s: %d threads vs 1: %s" % (kind, isa, key, n,
                                                           diff_report(state[key], first[1][key])))


def test_demo_outputs_not_trivially_equal(rng):
    """Guard for the determinism test: the demos' outputs depend on the input."""
    model = sb_demos.resnet_demo()
    a, b = model(_block_input(rng, "resnet_demo")), model(_block_input(rng, "resnet_demo"))
    assert not np.array_equal(a, b)


# convs with many tiles in every direction: C_out tiles, column blocks, K blocks, images
THREAD_CONVS = [
    ("K261_cout13_pix420_batch3", dict(cin=29, cout=13, k=3, pad=1), (3, 29, 20, 21)),
    ("K513_cout64_pix193", dict(cin=57, cout=64, k=3, pad=1), (2, 57, 1, 193)),
    ("groups2_stride2", dict(cin=12, cout=26, k=3, pad=1, stride=2, groups=2), (3, 12, 41, 39)),
    ("tiny_one_tile", dict(cin=2, cout=3, k=1, pad=0), (1, 2, 2, 3)),
]


@pytest.mark.parametrize("name,spec,shape", THREAD_CONVS, ids=[c[0] for c in THREAD_CONVS])
def test_conv_thread_determinism(isa, rng, restore_threads, name, spec, shape, dtype):
    conv = sb.Conv2d(spec["cin"], spec["cout"], spec["k"], stride=spec.get("stride", 1),
                     padding=spec["pad"], groups=spec.get("groups", 1), dtype=dtype)
    x = randn(rng, *shape, dtype=dtype)
    bn = sb.BatchNorm2d(spec["cout"], dtype=dtype).eval()
    bn.running_mean = randn(rng, spec["cout"], scale=0.3, dtype=dtype)
    scale = uniform(rng, spec["cin"], low=0.5, high=1.5, dtype=dtype)
    shift = randn(rng, spec["cin"], scale=0.3, dtype=dtype)
    results = {}
    for n in THREAD_COUNTS + (7,):
        sb.set_num_threads(n)
        plain = conv(x)
        out_shape = plain.shape
        residual = np.random.default_rng(5).standard_normal(out_shape).astype(dtype)
        fused = _fused_conv(conv, x, fold=bn, in_scale=scale, in_shift=shift, in_relu=True,
                            residual=residual, relu=True)
        results[n] = (plain, fused)
    with torch.no_grad():
        expected = TF.conv2d(to_torch(x), to_torch(conv.weight), to_torch(conv.bias),
                             spec.get("stride", 1), spec["pad"], 1, spec.get("groups", 1))
    assert_parity(results[1][0], expected, "conv2d",
                  fan_in=spec["cin"] // spec.get("groups", 1) * spec["k"] ** 2)
    for n, (plain, fused) in results.items():
        assert np.array_equal(plain, results[1][0]), "%s [%s] %d threads: %s" % (
            name, isa, n, diff_report(plain, results[1][0]))
        assert np.array_equal(fused, results[1][1]), "%s [%s] fused, %d threads: %s" % (
            name, isa, n, diff_report(fused, results[1][1]))


# ---------------------------------------------------------------------------
# 4. packed-weight caches are never stale
# ---------------------------------------------------------------------------

def _cache_residual():
    return sb.ResidualBlock(7, 13, stride=[2, 1], downsample=_conv_bn(sb, 7, 13, 2))


def _cache_residual_torch():
    return ref.ResidualBlock(7, 13, stride=[2, 1], downsample=_conv_bn(nn, 7, 13, 2))


def _cache_seq():
    return sb.Sequential(sb.Conv2d(5, 13, 3, padding=1), sb.BatchNorm2d(13), sb.ReLU())


def _cache_seq_torch():
    return nn.Sequential(nn.Conv2d(5, 13, 3, padding=1), nn.BatchNorm2d(13), nn.ReLU())


def _cache_seq_nobias():   # Conv2d -> BatchNorm2d without a ReLU
    return sb.Sequential(sb.Conv2d(5, 7, 3, padding=1, bias=False), sb.BatchNorm2d(7))


def _cache_seq_nobias_torch():
    return nn.Sequential(nn.Conv2d(5, 7, 3, padding=1, bias=False), nn.BatchNorm2d(7))


# name -> (sb builder, torch builder, input shape, op, conv path, bn path, torch takes list)
CACHE_MODELS = {
    "residual_block": (_cache_residual, _cache_residual_torch, (2, 7, 11, 13),
                       "residual_block", "conv2", "bn", False),
    "residual_block_downsample": (_cache_residual, _cache_residual_torch, (2, 7, 11, 13),
                                  "residual_block", "downsample.0", "downsample.1", False),
    "sequential_conv_bn_relu": (_cache_seq, _cache_seq_torch, (2, 5, 9, 10), "sequential",
                                "0", "1", False),
    "sequential_conv_bn": (_cache_seq_nobias, _cache_seq_nobias_torch, (1, 5, 4, 17),
                           "sequential", "0", "1", False),
    "dense_layer": (lambda: sb.DenseLayer(10, 7, 4), lambda: ref.Dense_Layer(10, 7, 4),
                    (2, 10, 7, 9), "dense_layer", "conv2", "bn2", True),
}


def _get(model, path):
    for part in path.split("."):
        model = getattr(model, part) if not part.isdigit() else model[int(part)]
    return model


def _eps_of(model):
    return [m.eps for m in model.modules() if isinstance(m, (sb.BatchNorm2d, nn.BatchNorm2d))]


def _twins(name, model, dtype="float32"):
    """A freshly built skipblocks model and a torch model with ``model``'s state, in ``dtype``."""
    sbuild, tbuild = CACHE_MODELS[name][:2]
    tm, twin = as_dtype(tbuild(), sbuild(), dtype)
    twin.load_state_dict({k: v.copy() for k, v in model.state_dict().items()})
    tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    for clone in (twin, tm):
        bns = [m for m in clone.modules() if isinstance(m, (sb.BatchNorm2d, nn.BatchNorm2d))]
        for bn, eps in zip(bns, _eps_of(model)):
            bn.eps = eps
    return twin.eval(), tm.eval()


def _mutations(conv_path, bn_path, rng, x_train, dtype="float32"):
    """(label, fn(model)) in the order they are applied; each changes the eval output."""
    def conv_assign(m):
        conv = _get(m, conv_path)
        conv.weight = -0.5 * conv.weight + randn(rng, *conv.weight.shape, scale=0.05,
                                                 dtype=dtype)

    def conv_load_submodule(m):
        conv = _get(m, conv_path)
        sd = {k: v.copy() for k, v in conv.state_dict().items()}
        sd["weight"] = sd["weight"][::-1].copy()
        conv.load_state_dict(sd)

    def conv_load_whole_model(m):
        sd = {k: v.copy() for k, v in m.state_dict().items()}
        key = conv_path + ".weight"
        sd[key] = sd[key] * 1.5 + 0.01
        m.load_state_dict(sd)

    def bn_weight_assign(m):
        bn = _get(m, bn_path)
        bn.weight = bn.weight * 2.0 - 0.25

    def bn_bias_assign(m):
        bn = _get(m, bn_path)
        bn.bias = bn.bias + 0.5

    def bn_running_mean_load(m):
        bn = _get(m, bn_path)
        sd = {k: v.copy() for k, v in bn.state_dict().items()}
        sd["running_mean"] = sd["running_mean"] + 0.3
        bn.load_state_dict(sd)

    def bn_running_var_assign(m):
        bn = _get(m, bn_path)
        bn.running_var = bn.running_var * 3.0

    def bn_eps(m):
        _get(m, bn_path).eps = 0.5

    def train_forward_then_eval(m):
        m.train()
        m([x_train] if isinstance(m, sb.DenseLayer) else x_train)
        m.eval()

    def bn_alone_train_forward(m):
        # running statistics updated in place by the BatchNorm on its own: the
        # convolution whose packed weights fold it is not called meanwhile
        bn = _get(m, bn_path)
        bn.train()
        bn(randn(rng, 2, bn.num_features, 3, 4, scale=1.5, shift=0.7, dtype=dtype))
        bn.eval()

    return [("conv.weight = ...", conv_assign),
            ("conv.load_state_dict", conv_load_submodule),
            ("model.load_state_dict", conv_load_whole_model),
            ("bn.weight = ...", bn_weight_assign),
            ("bn.bias = ...", bn_bias_assign),
            ("bn.load_state_dict(running_mean)", bn_running_mean_load),
            ("bn.running_var = ...", bn_running_var_assign),
            ("bn.eps = 0.5", bn_eps),
            ("train forward, then eval", train_forward_then_eval),
            ("bn alone: train forward, then eval", bn_alone_train_forward)]


@pytest.mark.parametrize("name", list(CACHE_MODELS))
def test_packed_weights_never_stale(isa, rng, name, dtype):
    sbuild, tbuild, shape, op, conv_path, bn_path, takes_list = CACHE_MODELS[name]
    tm0, model = as_dtype(randomize_(tbuild(), seed=3), sbuild(), dtype)
    model = load_from_torch(model, tm0).eval()
    x = randn(rng, *shape, dtype=dtype)
    x_train = randn(rng, *shape, scale=2.0, shift=0.5, dtype=dtype)
    previous = model(x)
    model(x)   # caches built and used
    for label, mutate in _mutations(conv_path, bn_path, rng, x_train, dtype):
        mutate(model)
        got = model(x)
        twin, tm = _twins(name, model, dtype)
        fresh = twin(x)
        what = "%s [%s, %s] after %s" % (name, isa, dtype, label)
        assert all(v.dtype == np.dtype(dtype) for k, v in model.state_dict().items()
                   if not k.endswith("num_batches_tracked")), what + ": dtype changed"
        assert not np.array_equal(fresh, previous), what + ": the change changed nothing"
        assert np.array_equal(got, fresh), "%s: stale cache? vs a fresh twin: %s" % (
            what, diff_report(got, fresh))
        assert_parity(got, _torch_call(tm, x, takes_list), op, what=what + " vs torch")
        assert np.array_equal(model(x), got), what + ": second call differs"
        previous = got


def test_conv_cache_with_and_without_fold(isa, rng, dtype):
    """One Conv2d called inside eval Sequentials (a BatchNorm folded into its
    packed weights) and on its own (no fold): each call uses the right
    weights. The two BatchNorms have equal versions and eps, different values."""
    tconv, conv = as_dtype(nn.Conv2d(5, 7, 3, padding=1), sb.Conv2d(5, 7, 3, padding=1), dtype)
    tconv.load_state_dict({k: torch.from_numpy(np.array(v))
                           for k, v in conv.state_dict().items()})
    pairs = [as_dtype(randomize_(nn.BatchNorm2d(7), seed=s), sb.BatchNorm2d(7), dtype)
             for s in (4, 5)]
    tbns = [t.eval() for t, _ in pairs]
    bns = [load_from_torch(b, t).eval() for t, b in pairs]
    assert bns[0]._version == bns[1]._version and bns[0].eps == bns[1].eps
    seqs = [sb.Sequential(conv, bn) for bn in bns]
    x = randn(rng, 1, 5, 6, 17, dtype=dtype)
    with torch.no_grad():
        exp_conv = tconv(to_torch(x))
        exp_seqs = [t(exp_conv) for t in tbns]
    for i in range(2):
        for j in (0, 1):
            assert_parity(seqs[j](x), exp_seqs[j], "sequential", what="seq %d call %d" % (j, i))
            assert_parity(conv(x), exp_conv, "conv2d", what="conv alone, call %d" % i)
    for j in (1, 0, 0, 1):
        assert_parity(seqs[j](x), exp_seqs[j], "sequential", what="seq %d again" % j)


def test_cache_survives_isa_switch(rng, restore_threads, dtype):
    """Packed weights built under one ISA, used under another: the result is the
    same as a fresh model's under the new ISA."""
    if len(ISAS) < 2:
        pytest.skip("one ISA on this machine")
    tm = as_dtype(randomize_(_cache_residual_torch(), seed=5), _cache_residual(), dtype)[0]
    x = randn(rng, 2, 7, 11, 13, dtype=dtype)
    previous = sb.get_isa()
    try:
        for first, second in ((ISAS[0], ISAS[1]), (ISAS[1], ISAS[0])):
            model = load_from_torch(as_dtype(tm, _cache_residual(), dtype)[1], tm).eval()
            sb.set_isa(first)
            model(x)
            sb.set_isa(second)
            got = model(x)
            assert got.dtype == np.dtype(dtype)
            fresh = load_from_torch(as_dtype(tm, _cache_residual(), dtype)[1], tm).eval()(x)
            assert np.array_equal(got, fresh), "%s then %s: %s" % (first, second,
                                                                  diff_report(got, fresh))
    finally:
        sb.set_isa(previous)


def test_weights_read_only(rng):
    model = _cache_residual()
    arrays = {"conv1.weight": model.conv1.weight, "bn.weight": model.bn.weight,
              "bn.running_mean": model.bn.running_mean,
              "downsample.0.weight": model.downsample[0].weight}
    arrays.update({"state_dict()[%r]" % k: v for k, v in model.state_dict().items()})
    for name, a in arrays.items():
        assert not a.flags.writeable, name
        with pytest.raises(ValueError):
            a.flags.writeable = True
        assert not a.flags.writeable, name
        with pytest.raises(ValueError):
            a[...] = 0
    # still read-only after a train-mode forward updated the running stats in place
    model.train()
    model(randn(rng, 1, 7, 5, 5))
    for a in (model.bn.running_mean, model.bn.running_var, model.bn.num_batches_tracked):
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a.flags.writeable = True


# ---------------------------------------------------------------------------
# 6. environment variables and argument checks
# ---------------------------------------------------------------------------

def _python(code, **env_vars):
    env = dict(os.environ)
    env.pop("SKIPBLOCKS_ISA", None)
    env.pop("SKIPBLOCKS_NUM_THREADS", None)
    env.update(env_vars)
    env["PYTHONPATH"] = _PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=_PKG_PARENT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value", ISAS)
def test_env_isa(value):
    proc = _python("import skipblocks; print(skipblocks.get_isa())", SKIPBLOCKS_ISA=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == value


def test_env_isa_auto_and_invalid():
    auto = _python("import skipblocks; print(skipblocks.get_isa())", SKIPBLOCKS_ISA="auto")
    assert auto.returncode == 0, auto.stderr
    assert auto.stdout.strip() == _BEST_ISA, auto.stdout
    bad = _python("""
        try:
            import skipblocks
        except ImportError as exc:
            print("ImportError:", exc)
        else:
            print("imported, isa", skipblocks.get_isa())
        """, SKIPBLOCKS_ISA="nope")
    assert bad.returncode == 0, bad.stderr
    assert bad.stdout.startswith("ImportError:"), bad.stdout
    assert "SKIPBLOCKS_ISA" in bad.stdout, bad.stdout


def test_env_num_threads():
    proc = _python("import skipblocks; print(skipblocks.get_num_threads())",
                   SKIPBLOCKS_NUM_THREADS="3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3"
    default = _python("import os, skipblocks; "
                      "print(skipblocks.get_num_threads(), len(os.sched_getaffinity(0)))")
    assert default.returncode == 0, default.stderr
    n, cpus = default.stdout.split()
    assert n == cpus, default.stdout


def test_runtime_argument_checks(restore_threads):
    before = sb.get_num_threads()
    for bad in (0, -1):
        with pytest.raises(ValueError):
            sb.set_num_threads(bad)
    for bad in (2.0, "2", True, None):
        with pytest.raises(TypeError):
            sb.set_num_threads(bad)
    assert sb.get_num_threads() == before
    sb.set_num_threads(3)
    assert sb.get_num_threads() == 3
    isa_before = sb.get_isa()
    with pytest.raises(ValueError, match="'scalar', 'avx2' or 'avx512'"):
        sb.set_isa("nope")
    assert sb.get_isa() == isa_before
    # an ISA this CPU lacks is refused by name, and nothing changes
    for name in {"avx2", "avx512"} - set(ISAS):
        with pytest.raises(ValueError, match="cannot run " + name):
            sb.set_isa(name)
        assert sb.get_isa() == isa_before
    for name in ISAS:
        sb.set_isa(name)
        assert sb.get_isa() == name
    sb.set_isa(isa_before)
    assert sb.get_isa() == isa_before


# ---------------------------------------------------------------------------
# 7. concurrent calls from Python threads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 2])
def test_concurrent_python_threads(isa, rng, restore_threads, threads, dtype):
    sb.set_num_threads(threads)
    big = 64 if isa != "scalar" else 32
    convs = [sb.Conv2d(big, big, 3, padding=1, dtype=dtype),
             sb.Conv2d(29, 13, 3, stride=2, padding=1, dtype=dtype)]
    inputs = [randn(rng, 2, big, 40, 40, dtype=dtype), randn(rng, 3, 29, 37, 41, dtype=dtype)]
    expected = [conv(x) for conv, x in zip(convs, inputs)]
    with torch.no_grad():
        for conv, x, e in zip(convs, inputs, expected):
            t = TF.conv2d(to_torch(x), to_torch(conv.weight), to_torch(conv.bias),
                          conv.stride, conv.padding)
            assert_parity(e, t, "conv2d", fan_in=conv.weight[0].size)
    barrier = threading.Barrier(2)
    errors, results = [], [[], []]

    def work(i):
        try:
            barrier.wait(timeout=30)
            for _ in range(3):
                results[i].append(convs[i](inputs[i]))
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(repr(exc))

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a thread hung"
    assert not errors, errors
    for i in range(2):
        assert len(results[i]) == 3
        for j, r in enumerate(results[i]):
            assert np.array_equal(r, expected[i]), "thread %d call %d: %s" % (
                i, j, diff_report(r, expected[i]))


@pytest.mark.parametrize("kernel, dilation", [(4, 1), ((2, 3), 1), (2, 3), (2, (1, 2))])
def test_same_padding_with_an_even_total_packs_once_and_matches_torch(kernel, dilation, dtype):
    """torch's padding='same' puts the odd one of an even total padding at the
    bottom/right; Conv2d stages that extra zero row/column in C and keeps its
    packed weights between calls (they are packed once per weight change)."""
    torch_conv, conv = as_dtype(nn.Conv2d(3, 5, kernel, padding="same", dilation=dilation),
                                sb.Conv2d(3, 5, kernel, padding="same", dilation=dilation),
                                dtype)
    conv.load_state_dict(torch_conv.state_dict())
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8)).astype(dtype)
    with torch.no_grad():
        expected = torch_conv(torch.from_numpy(x)).numpy()
    first = conv(x)
    packed = conv._packed_cache[1]
    second = conv(x)
    assert conv._packed_cache[1] is packed  # not repacked
    np.testing.assert_array_equal(first, second)
    fan_in = 3 * int(np.prod(conv.kernel_size))
    assert_parity(first, expected, "conv2d", fan_in=fan_in)
    # the functional form gives the same numbers
    np.testing.assert_array_equal(
        first, sb.functional.conv2d(x, conv.weight, conv.bias, padding="same", dilation=dilation))

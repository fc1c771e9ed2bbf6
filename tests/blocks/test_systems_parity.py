"""The document's other systems -- U-Net's long skips (section 2.3) and SE
inside ResNet and Inception (section 4.2) -- against the torch references in
``skipblocks.reference.systems``: state_dict keys in order, repr, and outputs
and every state_dict entry through train- and eval-mode forwards, in float32
and float64.
"""

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks.reference import systems as ref

from tolerances import tolerance

from helpers import (as_dtype, assert_parity, assert_state_dict_parity, load_from_torch, randn,
                     randomize_, to_torch)

MODES = [True, False, True, False]   # train, eval, train, eval


def _run_modes(sm, tm, make_input, op, what, call=None, stats_op="running_stats"):
    """Forward both modules through MODES; compare outputs and state_dicts at
    each step (train mode updates the running statistics, so a wrong update
    shows in the next eval step too)."""
    call = call or (lambda m, x, is_torch: m(to_torch(x) if is_torch else x))
    for step, training in enumerate(MODES):
        tm.train(training)
        sm.train(training)
        x = make_input(step)
        x_before = x.copy()
        with torch.no_grad():
            expected = call(tm, x, True)
        got = call(sm, x, False)
        label = "%s step %d (%s)" % (what, step, "train" if training else "eval")
        assert_parity(got, expected, op, what=label)
        assert_state_dict_parity(sm, tm, what=label, stats_op=stats_op)
        np.testing.assert_array_equal(x, x_before, err_msg="%s: input modified" % label)


def _pair(torch_module, sb_module, dtype):
    tm, sm = as_dtype(randomize_(torch_module), sb_module, dtype)
    return tm, load_from_torch(sm, tm)


# ---------------------------------------------------------------------------
# structure: keys in order, repr
# ---------------------------------------------------------------------------

STRUCTURES = {
    "UNet(3, 2)": (lambda: ref.UNet(3, 2), lambda: sb.UNet(3, 2)),
    "UNet(1, 5, bilinear=True)": (lambda: ref.UNet(1, 5, bilinear=True),
                                  lambda: sb.UNet(1, 5, bilinear=True)),
    "DoubleConv(3, 8)": (lambda: ref.DoubleConv(3, 8), lambda: sb.DoubleConv(3, 8)),
    "DoubleConv(3, 8, 0)": (lambda: ref.DoubleConv(3, 8, 0), lambda: sb.DoubleConv(3, 8, 0)),
    "DoubleConv(3, 8, 5)": (lambda: ref.DoubleConv(3, 8, 5), lambda: sb.DoubleConv(3, 8, 5)),
    "Down(4, 8)": (lambda: ref.Down(4, 8), lambda: sb.Down(4, 8)),
    "Up(16, 4)": (lambda: ref.Up(16, 4), lambda: sb.Up(16, 4)),
    "Up(16, 4, False)": (lambda: ref.Up(16, 4, False), lambda: sb.Up(16, 4, False)),
    "OutConv(64, 3)": (lambda: ref.OutConv(64, 3), lambda: sb.OutConv(64, 3)),
    "SEResidualBlock(32, 32)": (lambda: ref.SEResidualBlock(32, 32),
                                lambda: sb.SEResidualBlock(32, 32)),
    "SEResidualBlock(16, 32, [2, 1], ds, 8)": (
        lambda: ref.SEResidualBlock(16, 32, [2, 1], nn.Sequential(
            nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32)), 8),
        lambda: sb.SEResidualBlock(16, 32, [2, 1], sb.Sequential(
            sb.Conv2d(16, 32, 1, stride=2, bias=False), sb.BatchNorm2d(32)), 8)),
    "BasicConv2d(3, 4, kernel_size=3, padding=1)": (
        lambda: ref.BasicConv2d(3, 4, kernel_size=3, padding=1),
        lambda: sb.BasicConv2d(3, 4, kernel_size=3, padding=1)),
    "Inception(192, 64, 96, 128, 16, 32, 32)": (
        lambda: ref.Inception(192, 64, 96, 128, 16, 32, 32),
        lambda: sb.Inception(192, 64, 96, 128, 16, 32, 32)),
    "SEInception(192, 64, 96, 128, 16, 32, 32)": (
        lambda: ref.SEInception(192, 64, 96, 128, 16, 32, 32),
        lambda: sb.SEInception(192, 64, 96, 128, 16, 32, 32)),
}


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_keys_shapes_and_repr_match_the_reference(name):
    make_torch, make_sb = STRUCTURES[name]
    tm, sm = make_torch(), make_sb()
    theirs, ours = tm.state_dict(), sm.state_dict()
    assert list(ours) == list(theirs), name
    for key, value in theirs.items():
        assert ours[key].shape == tuple(value.shape), (name, key)
        assert ours[key].dtype == value.numpy().dtype, (name, key)
    assert repr(sm) == repr(tm)


def test_unet_parts_follow_the_described_structure():
    """The channel plan of the issue: 64, 128, 256, 512, 1024 // f; Up's
    in_channels // 2 for the transposed convolution or the mid channels."""
    for bilinear, f in ((False, 1), (True, 2)):
        net = sb.UNet(3, 2, bilinear=bilinear)
        assert (net.n_channels, net.n_classes, net.bilinear) == (3, 2, bilinear)
        outs = [net.inc.double_conv[3].out_channels] + [
            getattr(net, "down%d" % i).maxpool_conv[1].double_conv[3].out_channels
            for i in range(1, 5)]
        assert outs == [64, 128, 256, 512, 1024 // f]
        ups = [(getattr(net, "up%d" % i).conv.double_conv[0].in_channels,
                getattr(net, "up%d" % i).conv.double_conv[3].out_channels) for i in range(1, 5)]
        assert ups == [(1024, 512 // f), (512, 256 // f), (256, 128 // f), (128, 64)]
        assert net.outc.conv.kernel_size == (1, 1) and net.outc.conv.bias is not None
        up = net.up1.up
        if bilinear:
            assert type(up) is sb.Upsample and up.mode == "bilinear" and up.align_corners
            assert net.up1.conv.double_conv[0].out_channels == 512   # mid = in // 2
        else:
            assert type(up) is sb.ConvTranspose2d
            assert (up.in_channels, up.out_channels, up.kernel_size, up.stride) == \
                (1024, 512, (2, 2), (2, 2))
    assert type(sb.Up(8, 4).up) is sb.Upsample          # Up's own default: bilinear
    mp = sb.Down(4, 8).maxpool_conv[0]
    assert type(mp) is sb.MaxPool2d and mp.kernel_size == 2


def test_inception_branches_follow_torchvision():
    m = sb.Inception(8, 4, 3, 5, 2, 6, 7)
    assert m.branch1.bn.eps == 0.001 and m.branch1.conv.bias is None
    assert m.branch3[1].conv.kernel_size == (3, 3)     # torchvision's 3x3, not the paper's 5x5
    pool = m.branch4[0]
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 1, 1, True)
    se = sb.SEInception(8, 4, 3, 5, 2, 6, 7, reduction=2).se
    assert se.fc[0].weight.shape == (11, 22)


# ---------------------------------------------------------------------------
# U-Net
# ---------------------------------------------------------------------------

# input sizes: odd ones make Up pad (the encoder floors), and H != W
UNET_SHAPES = [(2, 3, 17, 19), (2, 3, 16, 16), (2, 3, 33, 20)]


@pytest.mark.parametrize("bilinear", [False, True], ids=["transposed", "bilinear"])
@pytest.mark.parametrize("shape", UNET_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_unet_parity(bilinear, shape, rng, dtype):
    tm, sm = _pair(ref.UNet(shape[1], 3, bilinear=bilinear),
                   sb.UNet(shape[1], 3, bilinear=bilinear), dtype)
    _run_modes(sm, tm, lambda step: randn(rng, *shape, scale=1.0, shift=0.1 * step, dtype=dtype),
               "unet", "UNet(bilinear=%s) %s" % (bilinear, shape), stats_op="unet_running_stats")


@pytest.mark.parametrize("bilinear", [False, True], ids=["transposed", "bilinear"])
def test_up_pads_to_the_skip(bilinear, rng, dtype):
    """Up alone, with skips one and two pixels larger than the upsampled map
    and one smaller (torch's pad with a negative amount crops)."""
    tm, sm = _pair(ref.Up(8, 4, bilinear), sb.Up(8, 4, bilinear), dtype)
    deep_channels = 8 if not bilinear else 4
    for skip_hw in [(10, 10), (11, 12), (9, 10)]:
        x1 = randn(rng, 2, deep_channels, 5, 5, dtype=dtype)
        x2 = randn(rng, 2, 8 - (deep_channels // 2 if not bilinear else deep_channels), *skip_hw,
                   dtype=dtype)
        for training in (True, False):
            tm.train(training)
            sm.train(training)
            with torch.no_grad():
                expected = tm(to_torch(x1), to_torch(x2))
            assert_parity(sm(x1, x2), expected, "unet",
                          what="Up(bilinear=%s) skip %s" % (bilinear, skip_hw))
            assert_state_dict_parity(sm, tm)


def test_unet_rejects_inputs_its_poolings_cannot_take(rng):
    net = sb.UNet(3, 2)
    with pytest.raises(ValueError, match=r"UNet: .*H, W >= 16.*\(1, 3, 15, 32\)"):
        net(randn(rng, 1, 3, 15, 32))
    with pytest.raises(ValueError, match=r"UNet: .*\(3, 32, 32\)"):
        net(randn(rng, 3, 32, 32))


def test_unet_checkpoint_with_mask_values(rng):
    """milesial's training script saves state_dict() plus
    ``mask_values`` (a list): strict loading names it as unexpected, as
    torch's load_state_dict does; popping it (the README's recipe) or
    strict=False loads."""
    tm = randomize_(ref.UNet(3, 2))
    checkpoint = dict(tm.state_dict())
    checkpoint["mask_values"] = [0, 1]
    with pytest.raises(RuntimeError) as theirs:
        ref.UNet(3, 2).load_state_dict(checkpoint)
    sm = sb.UNet(3, 2)
    with pytest.raises(RuntimeError) as ours:
        sm.load_state_dict(checkpoint)
    assert 'Unexpected key(s) in state_dict: "mask_values"' in str(theirs.value)
    assert 'Unexpected key(s) in state_dict: "mask_values"' in str(ours.value)

    result = sm.load_state_dict(checkpoint, strict=False)
    assert list(result.unexpected_keys) == ["mask_values"] and not result.missing_keys
    popped = dict(checkpoint)
    assert popped.pop("mask_values", None) == [0, 1]
    sm2 = sb.UNet(3, 2)
    sm2.load_state_dict(popped)
    tm.eval()
    sm.eval()
    sm2.eval()
    x = randn(rng, 1, 3, 16, 16)
    with torch.no_grad():
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, "unet", what="UNet loaded with strict=False")
    assert_parity(sm2(x), expected, "unet", what="UNet loaded after popping mask_values")


# ---------------------------------------------------------------------------
# SE inside ResNet
# ---------------------------------------------------------------------------

# in, out, stride, downsample, reduction, input shape
SE_RESIDUAL_CASES = [
    (16, 16, [1, 1], False, 4, (2, 16, 9, 7)),
    (8, 32, [2, 1], True, 16, (1, 8, 11, 12)),
    (64, 64, [1, 1], False, 16, (2, 64, 14, 14)),
]


@pytest.mark.parametrize("case", SE_RESIDUAL_CASES, ids=lambda c: "%d-%d-s%d%d-r%d" % (
    c[0], c[1], c[2][0], c[2][1], c[4]))
def test_se_residual_block_parity(case, rng, dtype):
    cin, cout, stride, has_ds, reduction, shape = case
    t_ds = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride[0], bias=False),
                         nn.BatchNorm2d(cout)) if has_ds else None
    s_ds = sb.Sequential(sb.Conv2d(cin, cout, 1, stride=stride[0], bias=False),
                         sb.BatchNorm2d(cout)) if has_ds else None
    tm, sm = _pair(ref.SEResidualBlock(cin, cout, stride, t_ds, reduction),
                   sb.SEResidualBlock(cin, cout, stride, s_ds, reduction), dtype)
    _run_modes(sm, tm, lambda step: randn(rng, *shape, scale=1.5, shift=0.2 * step, dtype=dtype),
               "se_residual_block", "SEResidualBlock%s" % (case[:5],))


def test_se_residual_block_layer_by_layer_is_the_fused_result(rng):
    """With fusion off (the layers called one by one), the same numbers
    within the block's bound: the eval-mode fold changes only roundings."""
    sm = sb.SEResidualBlock(16, 16, reduction=4).eval()
    x = randn(rng, 2, 16, 8, 8)
    fused = sm(x)
    with sb.runtime.unfused():
        plain = sm(x)
    assert_parity(fused, plain, "se_residual_block")


# ---------------------------------------------------------------------------
# Inception and SE inside it
# ---------------------------------------------------------------------------

# in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, input shape
INCEPTION_CASES = [
    (8, 4, 3, 5, 2, 6, 7, (2, 8, 9, 7)),
    (192, 64, 96, 128, 16, 32, 32, (1, 192, 28, 28)),    # GoogLeNet's inception3a
    (5, 1, 1, 1, 1, 1, 1, (2, 5, 1, 1)),                  # 1x1 maps: the pool's ceil_mode edge
]


@pytest.mark.parametrize("se", [False, True], ids=["Inception", "SEInception"])
@pytest.mark.parametrize("case", INCEPTION_CASES, ids=lambda c: "in%d-%s" % (c[0], c[7]))
def test_inception_parity(case, se, rng, dtype):
    args, shape = case[:7], case[7]
    if se:
        reduction = 16 if sum(args[i] for i in (1, 3, 5, 6)) >= 16 else 2
        tm, sm = _pair(ref.SEInception(*args, reduction=reduction),
                       sb.SEInception(*args, reduction=reduction), dtype)
    else:
        tm, sm = _pair(ref.Inception(*args), sb.Inception(*args), dtype)
    _run_modes(sm, tm, lambda step: randn(rng, *shape, scale=1.2, shift=0.1 * step, dtype=dtype),
               "se_inception" if se else "inception", "%s%s" % (type(sm).__name__, args))


def test_inception_with_another_conv_block(rng):
    """torchvision's conv_block argument: the branches are built from it and
    called as they are (here a plain conv + ReLU)."""
    class TorchBlock(nn.Module):
        def __init__(self, cin, cout, **kwargs):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, **kwargs)

        def forward(self, x):
            return torch.relu(self.conv(x))

    class SbBlock(sb.Module):
        def __init__(self, cin, cout, **kwargs):
            super().__init__()
            self.conv = sb.Conv2d(cin, cout, **kwargs)

        def forward(self, x):
            return sb.functional.relu(self.conv(x))

    tm = ref.Inception(6, 2, 3, 4, 2, 3, 5, conv_block=TorchBlock)
    sm = load_from_torch(sb.Inception(6, 2, 3, 4, 2, 3, 5, conv_block=SbBlock), tm)
    assert list(sm.state_dict()) == list(tm.state_dict())
    x = randn(rng, 2, 6, 7, 8)
    with torch.no_grad():
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, "inception")


def test_inception_writes_no_stale_channels(rng):
    """Each branch writes its slice of one preallocated output: a NaN-filled
    heap block reused for it must not show through."""
    from helpers import poison_heap
    sm = sb.Inception(8, 4, 3, 5, 2, 6, 7).eval()
    x = randn(rng, 2, 8, 9, 7)
    with sb.runtime.unfused():
        plain = sm(x)
    for _ in range(3):
        poison_heap(plain.nbytes)
        out = sm(x)
        assert not np.isnan(out).any()
        assert_parity(out, plain, "inception")


@pytest.mark.parametrize("bilinear", [False, True], ids=["transposed", "bilinear"])
def test_unet_parity_table(bilinear, rng):
    """skipblocks.parity.compare on a whole U-Net: one row per layer call,
    ConvTranspose2d or Upsample included, Up's two inputs handled; every row
    within the network's bound, in train and eval mode (at 32x32, whose
    bottleneck BatchNorms see 8 values per channel)."""
    from skipblocks import parity
    tm = randomize_(ref.UNet(3, 2, bilinear=bilinear))
    table = parity.compare(tm, sb.UNet(3, 2, bilinear=bilinear),
                           randn(rng, 2, 3, 32, 32), mode="both")
    text = str(table)
    up_type = "Upsample" if bilinear else "ConvTranspose2d"
    assert any("up1.up" in line and up_type in line for line in text.splitlines()), text
    assert table.over(tolerance("unet")) == [], text
    assert table.worst <= tolerance("unet")


def test_se_residual_block_names_itself_in_a_residual_mismatch(rng):
    """No downsample where the channels change: torch's broadcasting error,
    naming the block the user built."""
    tm, sm = ref.SEResidualBlock(4, 8, reduction=2), sb.SEResidualBlock(4, 8, reduction=2)
    x = randn(rng, 1, 4, 5, 5)
    with pytest.raises(RuntimeError) as theirs:
        with torch.no_grad():
            tm(to_torch(x))
    with pytest.raises(RuntimeError) as ours:
        sm(x)
    assert str(ours.value) == "SEResidualBlock: " + str(theirs.value)

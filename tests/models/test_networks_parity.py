"""skipblocks.models against the torch references written from torchvision's
and timm's published source (skipblocks.reference.networks): state_dict keys
in order, shapes, dtypes and repr; outputs and every state_dict entry through
train- and eval-mode forwards at 2x3x64x64 (float32 and float64), and at
2x3x224x224 for one network per family; the constructor arguments beyond
the builders; initialisation; errors.
"""

import copy
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks import models
from skipblocks.reference import networks as ref

from helpers import (assert_exact, assert_parity, assert_state_dict_parity, network_outputs,
                     randn, randomize_network_, to_torch, without_dropout)

# skipblocks builder -> the reference's (timm names SE-ResNet "seresnet")
PAIRS = {name: name.replace("se_resnet", "seresnet") for name in models.__all__
         if name[0].islower()}
# one network per family also runs at 224 x 224
LARGE_INPUT = ("resnet50", "densenet121", "googlenet", "se_resnet50")
MODES = [True, False, True, False]   # train, eval, train, eval


def _outputs(result):
    """A network's output as a list of arrays: GoogLeNetOutputs gives three."""
    if isinstance(result, tuple):
        assert type(result).__name__ == "GoogLeNetOutputs"
    return network_outputs(result)


def _pair(make_torch, make_sb, dtype="float32"):
    """(torch, skipblocks) with the torch module's randomised weights and
    BatchNorm statistics copied, every dropout at p = 0."""
    tm = randomize_network_(make_torch())
    sm = make_sb()
    if dtype == "float64":
        tm, sm = tm.double(), sm.double()
    result = sm.load_state_dict(tm.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    return without_dropout(tm, nn.Dropout), without_dropout(sm, sb.Dropout)


def _run_modes(sm, tm, shape, op, what, rng, dtype="float32", modes=MODES):
    """Forward both through ``modes``; compare every output and the
    state_dicts (running statistics within ``op``'s bound) at each step,
    and check the input is left as it was."""
    for step, training in enumerate(modes):
        tm.train(training)
        sm.train(training)
        x = randn(rng, *shape, shift=0.1 * step, dtype=dtype)
        before = x.copy()
        with torch.no_grad():
            expected = _outputs(tm(to_torch(x)))
        got = _outputs(sm(x))
        label = "%s step %d (%s)" % (what, step, "train" if training else "eval")
        assert len(got) == len(expected), label
        for i, (ours, theirs) in enumerate(zip(got, expected)):
            assert_parity(ours, theirs, op, what="%s output %d" % (label, i))
        assert_state_dict_parity(sm, tm, what=label, stats_op=op)
        np.testing.assert_array_equal(x, before, err_msg="%s: input modified" % label)


# ---------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PAIRS))
def test_keys_shapes_dtypes_and_repr_match_the_reference(name):
    tm, sm = ref.NETWORKS[PAIRS[name]](), getattr(models, name)()
    theirs, ours = tm.state_dict(), sm.state_dict()
    assert list(ours) == list(theirs), name
    for key, value in theirs.items():
        assert ours[key].shape == tuple(value.shape), (name, key)
        assert ours[key].dtype == value.numpy().dtype, (name, key)
    if not name.startswith("se_"):
        # torchvision's classes print as ours; timm's SE-ResNet names its
        # parameter-free modules differently (act1, drop_block, aa, ...)
        assert repr(sm) == repr(tm)


def test_se_resnet_follows_timm():
    """timm's SEModule in each bottleneck: fc1/fc2 1x1 convolutions with
    bias at C/16, after bn3 and before downsample in the keys."""
    net = models.se_resnet50()
    widths = []
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in stage:
            se = block.se
            assert type(se) is models.SEModule
            assert se.fc1.kernel_size == (1, 1) and se.fc1.bias is not None
            assert se.fc2.kernel_size == (1, 1) and se.fc2.bias is not None
            assert se.fc2.out_channels == block.conv3.out_channels
            widths.append(se.fc1.out_channels)
    assert sorted(set(widths)) == [16, 32, 64, 128]
    keys = [k for k in net.state_dict() if k.startswith("layer1.0.")]
    assert keys.index("layer1.0.se.fc2.bias") < keys.index("layer1.0.downsample.0.weight")
    assert keys.index("layer1.0.bn3.num_batches_tracked") < keys.index("layer1.0.se.fc1.weight")


def test_googlenet_without_aux_heads_matches_the_reference():
    tm, sm = ref.GoogLeNet(aux_logits=False, init_weights=True), models.GoogLeNet(
        aux_logits=False)
    assert list(sm.state_dict()) == list(tm.state_dict())
    assert repr(sm) == repr(tm)
    assert sm.aux1 is None and sm.aux2 is None


# ---------------------------------------------------------------------------
# parity
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PAIRS))
def test_network_parity_64(name, rng, dtype):
    tm, sm = _pair(ref.NETWORKS[PAIRS[name]], getattr(models, name), dtype)
    _run_modes(sm, tm, (2, 3, 64, 64), name, "%s %s" % (name, dtype), rng, dtype)


@pytest.mark.parametrize("name", LARGE_INPUT)
def test_network_parity_224(name, rng):
    tm, sm = _pair(ref.NETWORKS[PAIRS[name]], getattr(models, name))
    _run_modes(sm, tm, (2, 3, 224, 224), name, name + " 224", rng, modes=[True, False])


VARIANTS = {
    # torchvision's constructor arguments beyond the builders
    "ResNeXt-style groups=4, width_per_group=16, 10 classes": (
        lambda: ref.ResNet(ref.Bottleneck, [1, 2, 1, 1], num_classes=10, groups=4,
                           width_per_group=16),
        lambda: models.ResNet(models.Bottleneck, [1, 2, 1, 1], num_classes=10, groups=4,
                              width_per_group=16)),
    "dilation instead of stride in layer3 and layer4": (
        lambda: ref.ResNet(ref.Bottleneck, [1, 1, 2, 1],
                           replace_stride_with_dilation=[False, True, True]),
        lambda: models.ResNet(models.Bottleneck, [1, 1, 2, 1],
                              replace_stride_with_dilation=[False, True, True])),
    "BasicBlock, zero_init_residual": (
        lambda: ref.ResNet(ref.BasicBlock, [1, 1, 1, 1], zero_init_residual=True),
        lambda: models.ResNet(models.BasicBlock, [1, 1, 1, 1], zero_init_residual=True)),
    "small DenseNet, odd sizes": (
        lambda: ref.DenseNet(growth_rate=8, block_config=(2, 3, 2), num_init_features=16,
                             bn_size=2, num_classes=7, memory_efficient=True),
        lambda: models.DenseNet(growth_rate=8, block_config=(2, 3, 2), num_init_features=16,
                                bn_size=2, num_classes=7, memory_efficient=True)),
    "GoogLeNet with transform_input, 5 classes": (
        lambda: ref.GoogLeNet(num_classes=5, transform_input=True, init_weights=True),
        lambda: models.GoogLeNet(num_classes=5, transform_input=True)),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_constructor_arguments_parity(variant, rng):
    make_torch, make_sb = VARIANTS[variant]
    tm, sm = _pair(make_torch, make_sb)
    assert list(sm.state_dict()) == list(tm.state_dict())
    assert repr(sm) == repr(tm)
    op = "densenet121" if "DenseNet" in variant else "googlenet" if "GoogLeNet" in variant \
        else "resnet50"
    _run_modes(sm, tm, (2, 3, 57, 61), op, variant, rng)


def test_transform_input_is_bit_exact(rng):
    """torchvision's per-channel x * (std / 0.5) + (mean - 0.5) / 0.5: one
    rounding for the product, one for the sum, as torch's."""
    tm = ref.GoogLeNet(transform_input=True, init_weights=True)
    sm = models.GoogLeNet(transform_input=True)
    for dtype in (np.float32, np.float64):
        x = randn(rng, 3, 3, 9, 7, dtype=dtype)
        assert_exact(sm._transform_input(x), tm._transform_input(to_torch(x)),
                     what="transform_input %s" % np.dtype(dtype).name)
    assert sm._transform_input(x) is not x
    sm.transform_input = False
    assert sm._transform_input(x) is x


def test_dense_layer_dropout_statistics():
    """drop_rate in train mode: each new feature is zeroed with probability
    drop_rate, the others are the features without dropout times
    1 / (1 - drop_rate); in eval mode nothing is dropped."""
    sb.manual_seed(3)
    rng = np.random.default_rng(0)
    layer = models.densenet._DenseLayer(16, growth_rate=32, bn_size=2, drop_rate=0.3)
    plain = models.densenet._DenseLayer(16, growth_rate=32, bn_size=2, drop_rate=0.0)
    plain.load_state_dict(layer.state_dict())
    x = randn(rng, 4, 16, 12, 12)
    dropped, reference = layer(x), plain(x)
    zero = dropped == 0
    assert abs(zero.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / zero.size)
    scale = np.float32(1 / (1 - 0.3))
    np.testing.assert_array_equal(dropped[~zero], reference[~zero] * scale)
    layer.eval()
    plain.eval()
    np.testing.assert_array_equal(layer(x), plain(x))


def test_googlenet_dropouts_act_in_train_mode_only(rng):
    """The dropout before fc (and the aux heads'): train-mode outputs vary
    with the mask, are reproducible with manual_seed, and eval mode is
    deterministic."""
    net = models.GoogLeNet(num_classes=10)
    x = randn(rng, 2, 3, 64, 64)
    net.train()
    sb.manual_seed(1)
    first = net(x)
    sb.manual_seed(1)
    again = net(x)
    sb.manual_seed(2)
    other = net(x)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, b) for a, b in zip(first, other))
    net.eval()
    np.testing.assert_array_equal(net(x), net(x))


# ---------------------------------------------------------------------------
# initialisation: torchvision's and timm's distributions
# ---------------------------------------------------------------------------

def _std_ratio(conv, fan):
    return float(conv.weight.std()) / np.sqrt(2.0 / fan)


def test_initialisation_follows_torchvision_and_timm():
    sb.manual_seed(0)
    net = models.resnet50()
    conv = net.layer3[0].conv2              # 256 x 256 x 3 x 3: fan_out 2304
    assert abs(_std_ratio(conv, 256 * 9) - 1) < 0.02
    assert np.all(net.layer1[0].bn3.weight == 1) and np.all(net.layer1[0].bn3.bias == 0)
    zeroed = models.resnet18(zero_init_residual=True)
    assert all(np.all(block.bn2.weight == 0) for stage in
               (zeroed.layer1, zeroed.layer4) for block in stage)
    assert np.all(zeroed.bn1.weight == 1)
    se = models.se_resnet50()                # timm's zero_init_last
    assert np.all(se.layer2[1].bn3.weight == 0) and np.all(se.layer2[1].bn2.weight == 1)
    dense = models.densenet121()
    conv = dense.features.denseblock3.denselayer5.conv2   # fan_in 128 * 9
    assert abs(_std_ratio(conv, 128 * 9) - 1) < 0.05
    assert np.all(dense.classifier.bias == 0)
    google = models.googlenet()
    w = google.inception4a.branch2[1].conv.weight
    assert abs(float(w.std()) / 0.01 - 1) < 0.02 and float(np.abs(w).max()) < 2
    assert abs(float(google.fc.weight.std()) / 0.01 - 1) < 0.02


def test_manual_seed_makes_networks_reproducible():
    sb.manual_seed(5)
    a = models.resnet18().state_dict()
    sb.manual_seed(5)
    b = models.resnet18().state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------
# errors: torchvision's, and the layers' torch wording
# ---------------------------------------------------------------------------

def _same_error(make_torch, make_sb, exc_type):
    with pytest.raises(exc_type) as theirs:
        make_torch()
    with pytest.raises(exc_type) as ours:
        make_sb()
    assert str(theirs.value) in str(ours.value), (str(ours.value), str(theirs.value))


def test_constructor_errors_match_torchvision():
    _same_error(lambda: ref.ResNet(ref.BasicBlock, [1, 1, 1, 1], groups=2),
                lambda: models.ResNet(models.BasicBlock, [1, 1, 1, 1], groups=2), ValueError)
    _same_error(lambda: ref.ResNet(ref.BasicBlock, [1, 1, 1, 2],
                                   replace_stride_with_dilation=[False, False, True]),
                lambda: models.ResNet(models.BasicBlock, [1, 1, 1, 2],
                                      replace_stride_with_dilation=[False, False, True]),
                NotImplementedError)
    _same_error(lambda: ref.ResNet(ref.Bottleneck, [1, 1, 1, 1],
                                   replace_stride_with_dilation=[False, True]),
                lambda: models.ResNet(models.Bottleneck, [1, 1, 1, 1],
                                      replace_stride_with_dilation=[False, True]), ValueError)
    _same_error(lambda: ref.GoogLeNet(blocks=[ref.BasicConv2d], init_weights=True),
                lambda: models.GoogLeNet(blocks=[sb.BasicConv2d]), ValueError)


def test_bad_inputs_raise_the_layers_errors(rng):
    net = models.resnet18().eval()
    with pytest.raises(RuntimeError, match=r"Conv2d: .*to have 3 channels, but got 4"):
        net(randn(rng, 1, 4, 32, 32))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input \(got 3D input\)"):
        net(randn(rng, 3, 32, 32))
    with pytest.raises(TypeError, match="ResNet"):
        net(np.zeros((1, 3, 32, 32), dtype=complex))
    dense = models.densenet121().eval()
    with pytest.raises(RuntimeError, match=r"Conv2d: .*to have 3 channels, but got 1"):
        dense(randn(rng, 2, 1, 32, 32))
    google = models.googlenet(transform_input=True).eval()
    with pytest.raises(IndexError, match=r"GoogLeNet: transform_input .*\(2, 2, 32, 32\)"):
        google(randn(rng, 2, 2, 32, 32))


def test_networks_accept_other_real_inputs_as_torch_would_convert_them(rng):
    """float64 and integer images go into a float32 network as float32."""
    net = models.resnet18(num_classes=4).eval()
    x = rng.integers(0, 255, size=(1, 3, 40, 40)).astype(np.uint8)
    np.testing.assert_array_equal(net(x), net(x.astype(np.float32)))
    assert net(x.astype(np.float64)).dtype == np.float32


# ---------------------------------------------------------------------------
# replaced modules are called; caches never stale; fused == unfused; pickling
# ---------------------------------------------------------------------------

REPLACEMENTS = {
    # (network, the path of a module both sides replace)
    "resnet18 block relu": ("resnet18", "layer2.1.relu"),
    "resnet18 stem relu": ("resnet18", "relu"),
    "resnet50 bottleneck relu": ("resnet50", "layer3.0.relu"),
    "se_resnet50 se.act": ("se_resnet50", "layer1.2.se.act"),
    "se_resnet50 se.gate": ("se_resnet50", "layer3.1.se.gate"),
    "densenet121 relu1": ("densenet121", "features.denseblock2.denselayer3.relu1"),
    "densenet121 relu2": ("densenet121", "features.denseblock1.denselayer1.relu2"),
    "densenet121 transition relu": ("densenet121", "features.transition1.relu"),
    "resnet50 bn3": ("resnet50", "layer2.0.bn3"),
    "resnet18 downsample (a shape error)": ("resnet18", "layer3.0.downsample"),
    "resnet50 first downsample (same shape)": ("resnet50", "layer1.0.downsample.1"),
}


def _replace(module, path, new):
    parent, _, name = path.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, name, new)


@pytest.mark.parametrize("case", list(REPLACEMENTS))
def test_replaced_modules_are_called(case, rng):
    """A module a user puts in place of a ReLU, a BatchNorm or a downsample
    runs, on the fused path's network too, as in torch."""
    name, path = REPLACEMENTS[case]
    tm, sm = _pair(ref.NETWORKS[PAIRS[name]], getattr(models, name))
    _replace(tm, path, nn.Identity())
    _replace(sm, path, sb.Identity())
    for training in (False, True):
        tm.train(training)
        sm.train(training)
        x = randn(rng, 2, 3, 64, 64)
        try:
            with torch.no_grad():
                expected = tm(to_torch(x))
        except RuntimeError as exc:   # an Identity downsample: the addition's shapes
            with pytest.raises(RuntimeError) as ours:
                sm(x)
            assert str(exc) in str(ours.value)
            continue
        assert_parity(sm(x), expected, name, what="%s (%s)" % (case, training))


def test_se_module_cache_follows_replaced_and_changed_convolutions(rng):
    se = models.SEModule(64).eval()
    x = randn(rng, 2, 64, 8, 8)
    se(x)
    for change in ("replace fc1", "assign fc2.weight", "load_state_dict"):
        if change == "replace fc1":
            se.fc1 = sb.Conv2d(64, 8, 1)        # at the same version count as the old one
        elif change == "assign fc2.weight":
            se.fc2.weight = se.fc2.weight * 2
        else:
            se.load_state_dict(models.SEModule(64).state_dict())
        got = se(x)
        with sb.runtime.unfused():
            expected = se(x)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=change)


def test_se_module_runs_its_convolutions_as_they_are(rng):
    """A padded fc1 is not a 1x1 projection: the fused path is not taken,
    and torch's broadcasting error comes out."""
    se = models.SEModule(64)
    se.fc1 = sb.Conv2d(64, 4, 1, padding=1)
    se.fc2 = sb.Conv2d(4, 64, 1)
    with pytest.raises(RuntimeError, match=r"SEModule: The size of tensor a \(8\) must match "
                                           r"the size of tensor b \(3\)"):
        se(randn(rng, 2, 64, 8, 8))
    se.fc1 = sb.Conv2d(64, 4, 1)
    se.fc2 = sb.Conv2d(4, 1, 1)                 # one gate for every channel: broadcast
    x = randn(rng, 2, 64, 8, 8)
    gate = se.gate(se.fc2(se.act(se.fc1(x.mean((2, 3), keepdims=True)))))
    np.testing.assert_allclose(se(x), x * gate, rtol=1e-6)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "densenet121", "googlenet",
                                  "se_resnet50"])
def test_fused_and_unfused_paths_agree(name, rng):
    _, net = _pair(ref.NETWORKS[PAIRS[name]], getattr(models, name))  # torch's weights
    x = randn(rng, 2, 3, 64, 64)
    for training in (False, True):
        net.train(training)
        without_dropout(net, sb.Dropout)
        fused_net, plain_net = copy.deepcopy(net), copy.deepcopy(net)
        fused = _outputs(fused_net(x))
        with sb.runtime.unfused():
            plain = _outputs(plain_net(x))
        for a, b in zip(fused, plain):
            assert_parity(a, b, name, what="%s fused vs unfused (%s)" % (name, training))
        ours, theirs = fused_net.state_dict(), plain_net.state_dict()
        for key in ours:
            assert_parity(ours[key], theirs[key], name, what=key) \
                if ours[key].dtype.kind == "f" else np.testing.assert_array_equal(
                    ours[key], theirs[key])


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "googlenet", "se_resnet50"])
def test_networks_pickle_and_deepcopy(name, rng):
    net = getattr(models, name)(num_classes=10).eval()
    x = randn(rng, 1, 3, 64, 64)
    expected = net(x)
    for twin in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        np.testing.assert_array_equal(twin(x), expected)
        assert repr(twin) == repr(net)


def test_user_blocks_get_torchvision_arguments(rng):
    """A block class of the user's, with torchvision's signature (no dtype),
    builds a ResNet; a norm_layer of the user's is called per layer."""
    class MyBlock(models.BasicBlock):
        def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1,
                     base_width=64, dilation=1, norm_layer=None):
            super().__init__(inplanes, planes, stride, downsample, groups, base_width,
                             dilation, norm_layer)

    calls = []

    def norm_layer(channels):
        calls.append(channels)
        return sb.BatchNorm2d(channels, momentum=None)

    net = models.ResNet(MyBlock, [1, 1, 1, 1], num_classes=3, norm_layer=norm_layer)
    assert type(net.layer1[0]) is MyBlock and net.layer2[0].bn1.momentum is None
    assert calls[:3] == [64, 64, 64]
    assert net.eval()(randn(rng, 1, 3, 32, 32)).shape == (1, 3)


def test_transition_pools_first_only_for_a_true_1x1_convolution(rng):
    """The weight decides the convolution (as in torch), not kernel_size: a
    3x3 weight put into the transition's conv runs before the pool; a
    channel mismatch names the unpooled input, as torch's error does."""
    tm = ref._Transition(16, 8).eval()
    sm = models.densenet._Transition(16, 8).eval()
    x = randn(rng, 2, 16, 8, 8)
    weight = randn(rng, 8, 16, 3, 3)
    with torch.no_grad():
        tm.conv.weight = nn.Parameter(to_torch(weight))
        expected = tm(to_torch(x))
    sm.conv.weight = weight
    assert_parity(sm(x), expected, "densenet121", what="3x3 weight in a transition")
    sm.conv.weight = randn(rng, 8, 12, 1, 1)
    with pytest.raises(RuntimeError, match=r"expected input\[2, 16, 8, 8\] to have 12 channels"):
        sm(x)


def test_a_failing_convolution_runs_before_the_downsample(rng):
    """torchvision's order: conv2 and bn2, then downsample. When conv2
    cannot run, its error comes out and the downsample has not run."""
    block = models.BasicBlock(16, 16, downsample=sb.BatchNorm2d(16)).eval()
    block.downsample.train()                       # it would count a call
    block.conv2.weight = randn(rng, 16, 5, 3, 3)   # wrong input channels
    with pytest.raises(RuntimeError, match=r"weight of size \[16, 5, 3, 3\], expected "
                                           r"input\[2, 16, 8, 8\]"):
        block(randn(rng, 2, 16, 8, 8))
    assert int(block.downsample.num_batches_tracked) == 0


def test_dense_layer_relu_set_to_none_raises_as_torch(rng):
    layer = models.densenet._DenseLayer(8, 4, 2, 0.0).eval()
    layer.relu1 = None
    with pytest.raises(TypeError, match="'NoneType' object is not callable"):
        layer(randn(rng, 1, 8, 5, 5))

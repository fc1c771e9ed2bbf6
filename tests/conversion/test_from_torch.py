"""skipblocks.from_torch against the torch modules it converts: every layer
skipblocks has (non-default arguments), the containers, the document's
blocks and demos, its other systems, every network of
skipblocks.reference.networks; what every conversion must give (classes,
repr, state_dict keys in order, values copied exactly into arrays of
torch's dtype that share no memory with torch, each module's train/eval
flag, the torch module left as it was), outputs and running statistics in
train and eval mode within tests/tolerances.py's bounds, float64 modules,
children a user replaced, and the errors for what does not convert.
"""

import os
import subprocess
import sys
import textwrap
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks import models
from skipblocks import reference as document
from skipblocks.reference import networks as ref_networks
from skipblocks.reference import systems as ref_systems

from helpers import (assert_exact, assert_parity, assert_state_dict_parity, import_blocker,
                     network_outputs, randn, randomize_, randomize_network_, to_torch,
                     without_dropout)


# ---------------------------------------------------------------------------
# what every conversion must give
# ---------------------------------------------------------------------------

def _snapshot(tm):
    """Everything from_torch could change on a torch module."""
    return ([(k, v.detach().clone()) for k, v in tm.state_dict().items()],
            [(name, m.training) for name, m in tm.named_modules()],
            [(name, p.requires_grad) for name, p in tm.named_parameters()])


def _assert_unchanged(tm, snapshot):
    tensors, flags, grads = _snapshot(tm)
    assert [k for k, _ in tensors] == [k for k, _ in snapshot[0]]
    for (key, now), (_, before) in zip(tensors, snapshot[0]):
        assert now.dtype == before.dtype and torch.equal(now, before), key
    assert flags == snapshot[1] and grads == snapshot[2]


def convert(tm, same_repr=True):
    """sb.from_torch(tm), checked: the torch module is left as it was; the
    state_dict keys are torch's in order, every value a NumPy array of
    torch's dtype and shape, equal to torch's and sharing no memory with
    it; every module named as in torch has torch's training flag; the
    repr is torch's (the document's dense classes print under skipblocks'
    names; timm's classes are not skipblocks')."""
    before = _snapshot(tm)
    sm = sb.from_torch(tm)
    _assert_unchanged(tm, before)
    ours, theirs = sm.state_dict(), tm.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        array = ours[key]
        assert isinstance(array, np.ndarray) and array.dtype == value.numpy().dtype, key
        assert_exact(array, value, what=key)
        assert not np.shares_memory(array, value.numpy()), key
    torch_flags = dict((name, m.training) for name, m in tm.named_modules())
    compared = 0
    for name, module in sm.named_modules():
        if name in torch_flags:
            assert module.training == torch_flags[name], name
            compared += 1
    assert compared >= len(torch_flags) // 2
    if same_repr:
        assert repr(sm) == repr(tm).replace("Dense_Block(", "DenseBlock(").replace(
            "Dense_Layer(", "DenseLayer(")
    return sm


def run_modes(tm, sm, make_input, op, what, modes=(True, False, True, False),
              stats_op=None, call=None):
    """Both modules through ``modes``: outputs within ``op``'s bound (of
    the input's dtype) and every state_dict entry (running statistics
    within ``stats_op``'s) after each step; the input left as it was."""
    call = call or (lambda module, x: module(x))
    for step, training in enumerate(modes):
        tm.train(training)
        sm.train(training)
        x = make_input(step)
        before = x.copy()
        with torch.no_grad():
            expected = network_outputs(call(tm, to_torch(x)))
        got = network_outputs(call(sm, x))
        label = "%s step %d (%s)" % (what, step, "train" if training else "eval")
        assert len(got) == len(expected), label
        for i, (ours, theirs) in enumerate(zip(got, expected)):
            assert_parity(ours, theirs, op, what="%s output %d" % (label, i))
        assert_state_dict_parity(sm, tm, what=label, stats_op=stats_op or "running_stats")
        np.testing.assert_array_equal(x, before, err_msg="%s: input modified" % label)


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

# id -> (torch layer, input shape, op of the bound, runs in train mode too)
LAYERS = {
    "Conv2d groups dilation stride": (
        lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                          groups=2), (2, 4, 9, 8), "conv2d"),
    "Conv2d same no bias": (lambda: nn.Conv2d(3, 5, 4, padding="same", bias=False),
                            (2, 3, 7, 6), "conv2d"),
    "Conv2d valid": (lambda: nn.Conv2d(3, 2, 3, padding="valid"), (1, 3, 6, 6), "conv2d"),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                   output_padding=1, groups=2, bias=False),
                        (2, 4, 5, 6), "conv_transpose2d"),
    "ConvTranspose2d dilation bias": (lambda: nn.ConvTranspose2d(3, 2, 2, stride=2,
                                                                 dilation=2),
                                      (1, 3, 4, 4), "conv_transpose2d"),
    "BatchNorm2d eps momentum": (lambda: nn.BatchNorm2d(5, eps=1e-3, momentum=0.3),
                                 (3, 5, 4, 4), "batch_norm"),
    "BatchNorm2d momentum None": (lambda: nn.BatchNorm2d(5, momentum=None), (3, 5, 4, 4),
                                  "batch_norm"),
    "BatchNorm2d affine False": (lambda: nn.BatchNorm2d(5, affine=False), (3, 5, 4, 4),
                                 "batch_norm"),
    "BatchNorm2d no running stats": (lambda: nn.BatchNorm2d(5, track_running_stats=False),
                                     (3, 5, 4, 4), "batch_norm"),
    "BatchNorm2d bias False": (lambda: nn.BatchNorm2d(5, bias=False), (3, 5, 4, 4),
                               "batch_norm"),
    "ReLU": (lambda: nn.ReLU(), (2, 3, 4, 4), "relu"),
    "ReLU inplace": (lambda: nn.ReLU(inplace=True), (2, 3, 4, 4), "relu"),
    "Sigmoid": (lambda: nn.Sigmoid(), (2, 3, 4, 4), "sigmoid"),
    "MaxPool2d ceil_mode padding": (lambda: nn.MaxPool2d(3, stride=2, padding=1,
                                                         ceil_mode=True),
                                    (2, 3, 8, 7), "max_pool2d"),
    "MaxPool2d pair dilation": (lambda: nn.MaxPool2d((2, 3), dilation=2), (1, 2, 9, 9),
                                "max_pool2d"),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                       count_include_pad=False, divisor_override=5),
                  (2, 3, 8, 7), "avg_pool2d"),
    "AdaptiveAvgPool2d None entry": (lambda: nn.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5),
                                     "adaptive_avg_pool2d"),
    "Linear": (lambda: nn.Linear(7, 5), (2, 3, 7), "linear"),
    "Linear no bias": (lambda: nn.Linear(7, 5, bias=False), (4, 7), "linear"),
    "Upsample bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear",
                                              align_corners=True),
                          (1, 2, 5, 4), "interpolate_bilinear"),
    "Upsample nearest size": (lambda: nn.Upsample(size=(5, 7)), (1, 2, 3, 3),
                              "interpolate_nearest"),
    "Dropout p=0": (lambda: nn.Dropout(p=0.0), (2, 3, 4), "dropout"),
    "Flatten": (lambda: nn.Flatten(2, 3), (2, 3, 4, 5), "cat"),
    "Identity": (lambda: nn.Identity(3, unused=1), (2, 3), "cat"),
}


@pytest.mark.parametrize("case", list(LAYERS))
def test_layer_round_trip(case, rng, dtype):
    make, shape, op = LAYERS[case]
    tm = randomize_(make())
    if dtype == "float64":
        tm = tm.double()
    tm.eval()  # converted in eval mode: the flag is copied
    sm = convert(tm)
    assert type(sm).__name__ == type(tm).__name__ and type(sm).__module__ == "skipblocks.layers"
    assert not sm.training
    if case == "ReLU inplace":  # writes into its input, in both: compare on copies
        x = randn(rng, *shape, dtype=dtype)
        theirs = to_torch(x)
        with torch.no_grad():
            tm(theirs)
        sm(x)
        assert_exact(x, theirs)
        return
    # the reverse direction (the README's): skipblocks' state_dict into a torch twin
    twin = make().to(torch.float64 if dtype == "float64" else torch.float32)
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sm.state_dict().items()})
    for key, value in tm.state_dict().items():
        assert torch.equal(twin.state_dict()[key], value), key
    run_modes(tm, sm, lambda step: randn(rng, *shape, shift=0.1 * step, dtype=dtype), op, case)


def test_layer_attributes_the_forward_reads_are_copied():
    dropout = sb.from_torch(nn.Dropout(p=0.3, inplace=True))
    assert (dropout.p, dropout.inplace) == (0.3, True)
    bn = sb.from_torch(nn.BatchNorm2d(4, eps=0.01, momentum=None, affine=False))
    assert (bn.eps, bn.momentum, bn.affine, bn.weight) == (0.01, None, False, None)
    up = sb.from_torch(nn.Upsample(scale_factor=(2, 3), mode="nearest"))
    assert up.scale_factor == (2.0, 3.0)


def test_an_int32_num_batches_tracked_keeps_its_dtype(rng):
    """torch keeps the dtype a checkpoint gave num_batches_tracked (int32
    here); so does the twin, which counts in it as torch does."""
    tm = randomize_(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)))
    tm[1].num_batches_tracked = tm[1].num_batches_tracked.int() + 5
    count = int(tm[1].num_batches_tracked)
    sm = convert(tm)   # torch's dtype and value, checked there
    assert sm[1].num_batches_tracked.dtype == np.int32
    x = randn(rng, 2, 3, 5, 5)
    with torch.no_grad():
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, "sequential", what="train mode")
    assert sm[1].num_batches_tracked.dtype == np.int32
    assert int(sm[1].num_batches_tracked) == int(tm[1].num_batches_tracked) == count + 1
    assert sm.state_dict()["1.num_batches_tracked"].dtype == np.int32


# ---------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------

def test_nested_containers(rng):
    head = nn.ModuleDict(OrderedDict([
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("heads", nn.ModuleList([nn.Linear(6, 3), nn.Linear(6, 2, bias=False)])),
    ]))
    body = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(3, 6, 3, padding=1)),
        ("inner", nn.Sequential(nn.BatchNorm2d(6), nn.ReLU())),
    ]))
    tm = randomize_(nn.ModuleDict({"body": body, "head": head}))
    sm = convert(tm)
    assert type(sm) is sb.ModuleDict and type(sm["body"]) is sb.Sequential
    assert type(sm["body"].inner) is sb.Sequential and type(sm["head"]["heads"]) is sb.ModuleList
    assert list(sm["body"]._modules) == ["conv", "inner"]
    assert len(sm["head"]["heads"]) == 2

    def call(module, x):
        features = module["head"]["pool"](module["body"](x)).reshape(x.shape[0], 6)
        return module["head"]["heads"][0](features), module["head"]["heads"][1](features)

    run_modes(tm, sm, lambda step: randn(rng, 2, 3, 6, 5, shift=0.1 * step), "sequential",
              "nested containers", call=call)


def test_a_module_shared_in_torch_is_shared_in_the_result(rng):
    conv = nn.Conv2d(3, 3, 3, padding=1)
    tm = nn.Sequential(conv, nn.ReLU(), conv)
    sm = convert(tm)
    assert sm[0] is sm[2]
    assert list(sm.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    run_modes(tm, sm, lambda step: randn(rng, 1, 3, 6, 6), "sequential", "shared conv",
              modes=(False,))


# ---------------------------------------------------------------------------
# the document's blocks and demos
# ---------------------------------------------------------------------------

def _torch_downsample(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(cout))


# id -> (torch module, input shape, op)
DOCUMENT = {
    "ResidualBlock": (lambda: document.ResidualBlock(4, 4), (2, 4, 7, 9), "residual_block"),
    "ResidualBlock with downsample": (
        lambda: document.ResidualBlock(3, 6, [2, 1], _torch_downsample(3, 6, 2)),
        (1, 3, 9, 8), "residual_block"),
    "Dense_Layer": (lambda: document.Dense_Layer(6, 4, 2), (2, 6, 5, 6), "dense_layer",
                    lambda module, x: module([x])),   # the document's takes a list
    "Dense_Block": (lambda: document.Dense_Block(3, 5, 4, 2), (2, 5, 6, 5), "dense_block"),
    "SEAttention": (lambda: document.SEAttention(24, 4), (3, 24, 5, 5), "se_attention"),
    "resnet demo": (document.resnet_demo, (1, 3, 100, 100), "resnet_demo"),
    "densenet demo": (document.densenet_demo, (1, 3, 100, 100), "densenet_demo"),
    "se demo": (document.se_demo, (5, 512, 7, 7), "se_demo"),
}


@pytest.mark.parametrize("case", list(DOCUMENT))
def test_document_blocks(case, rng, dtype):
    make, shape, op, call = (DOCUMENT[case] + (None,))[:4]
    tm = randomize_(make())
    if dtype == "float64":
        tm = tm.double()
    sm = convert(tm)
    run_modes(tm, sm, lambda step: randn(rng, *shape, shift=0.1 * step, dtype=dtype), op, case,
              call=call)


def test_document_classes_become_skipblocks_blocks():
    sm = sb.from_torch(document.resnet_demo())
    assert [type(m) for m in sm] == [sb.Conv2d, sb.MaxPool2d, sb.ResidualBlock,
                                     sb.ResidualBlock, sb.ResidualBlock]
    assert type(sm[4].downsample) is sb.Sequential and sm[2].downsample is None
    dense = sb.from_torch(document.densenet_demo())[3]
    assert type(dense) is sb.DenseBlock and type(dense.block) is sb.ModuleDict
    assert all(type(layer) is sb.DenseLayer for layer in dense.block.values())
    se = sb.from_torch(document.SEAttention(64, 8))
    assert type(se) is sb.SEAttention and se.fc[0].weight.shape == (8, 64)


# ---------------------------------------------------------------------------
# the document's other systems
# ---------------------------------------------------------------------------

SYSTEMS = {
    "UNet": (lambda: ref_systems.UNet(3, 2), (2, 3, 17, 19), "unet"),
    "UNet bilinear": (lambda: ref_systems.UNet(3, 2, bilinear=True), (2, 3, 16, 16), "unet"),
    "SEResidualBlock": (lambda: ref_systems.SEResidualBlock(8, 32, [2, 1],
                                                            _torch_downsample(8, 32, 2), 16),
                        (1, 8, 11, 12), "se_residual_block"),
    "BasicConv2d": (lambda: ref_systems.BasicConv2d(3, 4, kernel_size=3, padding=1),
                    (2, 3, 6, 7), "inception"),
    "Inception": (lambda: ref_systems.Inception(8, 4, 3, 5, 2, 6, 7), (2, 8, 9, 7),
                  "inception"),
    "SEInception": (lambda: ref_systems.SEInception(8, 4, 3, 5, 2, 6, 7, reduction=4),
                    (2, 8, 9, 7), "se_inception"),
}


@pytest.mark.parametrize("case", list(SYSTEMS))
def test_systems(case, rng, dtype):
    make, shape, op = SYSTEMS[case]
    tm = randomize_(make())
    if dtype == "float64":
        tm = tm.double()
    sm = convert(tm)
    stats = "unet_running_stats" if op == "unet" else None
    run_modes(tm, sm, lambda step: randn(rng, *shape, shift=0.1 * step, dtype=dtype), op, case,
              stats_op=stats)


def test_unet_parts_and_attributes():
    sm = sb.from_torch(ref_systems.UNet(1, 5, bilinear=True))
    assert type(sm) is sb.UNet and (sm.n_channels, sm.n_classes, sm.bilinear) == (1, 5, True)
    assert type(sm.up1) is sb.Up and type(sm.up1.up) is sb.Upsample
    assert type(sm.down2) is sb.Down and type(sm.inc) is sb.DoubleConv
    assert type(sm.outc) is sb.OutConv
    assert type(sb.from_torch(ref_systems.UNet(3, 2)).up4.up) is sb.ConvTranspose2d


# ---------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------

# the reference's builder -> the skipblocks class the conversion gives
NETWORK_CLASSES = {"resnet": models.ResNet, "densenet": models.DenseNet,
                   "googlenet": models.GoogLeNet, "seresnet": models.ResNet}
NETWORK_OPS = {name: name.replace("seresnet", "se_resnet") for name in ref_networks.NETWORKS}


@pytest.mark.parametrize("name", list(ref_networks.NETWORKS))
def test_network(name, rng):
    """Converted in train mode (GoogLeNet's aux heads run); then train and
    eval forwards at 2x3x64x64, the shape tests/tolerances.py's network
    bounds were measured at."""
    tm = without_dropout(randomize_network_(ref_networks.NETWORKS[name]()), nn.Dropout)
    sm = convert(tm, same_repr=not name.startswith("seresnet"))
    family = name.rstrip("0123456789")
    assert type(sm) is NETWORK_CLASSES[family]
    if name.startswith("seresnet"):
        assert all(type(block) is models.SEBottleneck for block in sm.layer3)
    run_modes(tm, sm, lambda step: randn(rng, 2, 3, 64, 64, shift=0.1 * step), NETWORK_OPS[name],
              name, modes=(True, False), stats_op=NETWORK_OPS[name])


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "seresnet50"])
def test_network_float64(name, rng):
    tm = without_dropout(randomize_network_(ref_networks.NETWORKS[name]()), nn.Dropout).double()
    sm = convert(tm, same_repr=not name.startswith("seresnet"))
    assert all(v.dtype == (np.int64 if k.endswith("num_batches_tracked") else np.float64)
               for k, v in sm.state_dict().items())
    run_modes(tm, sm, lambda step: randn(rng, 2, 3, 64, 64, shift=0.1 * step, dtype="float64"),
              NETWORK_OPS[name], name + " float64", modes=(False, True),
              stats_op=NETWORK_OPS[name])


def test_network_variants(rng):
    """Constructor arguments beyond the builders, read back from the torch
    module: ResNeXt groups and width, dilation instead of stride, a small
    DenseNet with dropout (drop_rate copied), GoogLeNet with
    transform_input and without aux heads, timm's ResNet without SE."""
    variants = {
        "resnext": (lambda: ref_networks.ResNet(ref_networks.Bottleneck, [1, 2, 1, 1],
                                                num_classes=10, groups=4, width_per_group=16),
                    "resnet50"),
        "dilated": (lambda: ref_networks.ResNet(ref_networks.Bottleneck, [1, 1, 2, 1],
                                                replace_stride_with_dilation=[False, True, True]),
                    "resnet50"),
        "small densenet": (lambda: ref_networks.DenseNet(growth_rate=8, block_config=(2, 3, 2),
                                                         num_init_features=16, bn_size=2,
                                                         drop_rate=0.2, num_classes=7),
                           "densenet121"),
        "googlenet": (lambda: ref_networks.GoogLeNet(num_classes=5, aux_logits=False,
                                                     transform_input=True, init_weights=True),
                      "googlenet"),
        "timm resnet": (lambda: ref_networks.TimmResNet(ref_networks.TimmBottleneck,
                                                        [1, 1, 1, 1], num_classes=6),
                        "resnet50"),
    }
    for variant, (make, op) in variants.items():
        tm = randomize_network_(make())
        sm = convert(tm, same_repr=variant != "timm resnet")
        if variant == "small densenet":
            assert sm.features.denseblock2.denselayer3.drop_rate == 0.2
        # train-mode outputs match torch's with dropout off (the masks differ)
        without_dropout(tm, nn.Dropout)
        without_dropout(sm, sb.Dropout)
        if variant == "googlenet":
            assert sm.transform_input and not sm.aux_logits and sm.aux1 is None
        if variant == "timm resnet":
            assert type(sm.layer1[0]) is models.Bottleneck and sm.fc.out_features == 6
        run_modes(tm, sm, lambda step: randn(rng, 2, 3, 57, 61, shift=0.1 * step), op, variant,
                  modes=(True, False), stats_op=op)


def test_plain_attributes_set_after_construction_are_copied(rng):
    """What a forward reads besides its children, changed on the torch
    module after it was built (so no constructor argument says it)."""
    tm = randomize_network_(_small_densenet())
    tm.features.denseblock2.denselayer2.drop_rate = 0.5
    tm.features.denseblock1.denselayer1.memory_efficient = True
    sm = convert(tm)
    assert sm.features.denseblock2.denselayer2.drop_rate == 0.5
    assert sm.features.denseblock2.denselayer1.drop_rate == 0.0
    assert sm.features.denseblock1.denselayer1.memory_efficient
    tm = ref_networks.GoogLeNet(num_classes=4, init_weights=True)
    tm.aux_logits = False   # the heads stay, and run in train mode, but are not returned
    tm.transform_input = True
    tm = without_dropout(randomize_network_(tm), nn.Dropout)
    sm = convert(tm)
    assert not sm.aux_logits and sm.transform_input and sm.aux1 is not None
    run_modes(tm, sm, lambda step: randn(rng, 1, 3, 64, 64), "googlenet", "aux_logits off",
              modes=(True,), stats_op="googlenet")
    tm = ref_systems.UNet(3, 2)
    tm.n_classes = 7  # milesial's UNet keeps it for its training script
    assert sb.from_torch(tm).n_classes == 7


def test_googlenet_with_its_aux_heads_dropped(rng):
    """torchvision's pretrained load keeps aux1 and aux2 as None children."""
    tm = ref_networks.googlenet_pretrained_like(
        ref_networks.GoogLeNet(init_weights=True).state_dict())
    sm = convert(tm)
    assert sm.aux1 is None and sm.aux2 is None and not sm.aux_logits and sm.transform_input
    run_modes(tm, sm, lambda step: randn(rng, 1, 3, 64, 64), "googlenet", "pretrained-like",
              modes=(False,))


def test_replaced_children_are_honoured(rng):
    """A child the user replaced converts as it is, where the twin's
    constructor would have made another one."""
    tm = ref_networks.resnet18()
    tm.layer1[0].relu = nn.Sigmoid()
    tm.layer2[0].conv1 = nn.Conv2d(64, 128, 3, stride=2, padding=2, dilation=2, bias=False)
    tm.fc = nn.Sequential(nn.Dropout(0.0), nn.Linear(512, 10))
    tm = randomize_network_(tm)
    sm = convert(tm)
    assert type(sm.layer1[0].relu) is sb.Sigmoid and sm.layer2[0].conv1.dilation == (2, 2)
    assert type(sm.fc) is sb.Sequential
    run_modes(tm, sm, lambda step: randn(rng, 2, 3, 64, 64, shift=0.1 * step), "resnet18",
              "replaced children", modes=(True, False), stats_op="resnet18")


def test_each_module_keeps_its_train_eval_flag(rng):
    tm = randomize_(document.resnet_demo()).train()
    tm[2].bn.eval()
    tm[4].downsample.eval()
    tm[4].downsample[0].train()
    sm = convert(tm)
    assert sm.training and not sm[2].bn.training and sm[2].conv1.training
    assert not sm[4].downsample.training and sm[4].downsample[0].training
    assert not sm[4].downsample[1].training
    # the mixed flags compute as torch's: bn of block 2 normalises with its running statistics
    x = randn(rng, 2, 3, 100, 100)
    with torch.no_grad():
        expected = tm(to_torch(x))
    assert_parity(sm(x), expected, "resnet_demo", what="mixed train/eval flags")
    assert_state_dict_parity(sm, tm, what="mixed train/eval flags")


def test_the_torch_module_is_not_modified_by_running_the_twin(rng):
    tm = randomize_(document.densenet_demo()).train()
    before = _snapshot(tm)
    sm = sb.from_torch(tm)
    sm(randn(rng, 2, 3, 40, 40))  # train mode: the twin's running statistics move
    _assert_unchanged(tm, before)
    assert int(sm[1].num_batches_tracked) == int(tm[1].num_batches_tracked) + 1


def test_readme_example():
    """The README's section, as written there."""
    import numpy as np
    import torch
    import skipblocks as sb
    from skipblocks.reference import networks

    torch_model = networks.resnet18().eval()          # any supported torch module
    sb_model = sb.from_torch(torch_model)             # weights, buffers, dtype, eval flag
    x = np.random.rand(1, 3, 64, 64).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    assert np.abs(sb_model(x) - expected).max() < 1e-4
    assert type(sb_model).__name__ == "ResNet"
    assert not sb_model.training
    # the other way: skipblocks' state_dict into the torch twin
    torch_model.load_state_dict({k: torch.from_numpy(np.array(v))
                                 for k, v in sb_model.state_dict().items()})


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

def _small_densenet():
    return ref_networks.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8,
                                 bn_size=2, num_classes=3)


class MyBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x) * 2


class ScaledConv2d(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


def test_unsupported_layer_names_its_path_and_class():
    tm = _small_densenet()
    tm.features.denseblock1.denselayer1.norm1 = nn.GELU()
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(tm)
    assert str(info.value) == ("from_torch: cannot convert features.denseblock1.denselayer1.norm1 "
                               "(GELU): skipblocks has no such layer")


@pytest.mark.parametrize("module, message", [
    (lambda: nn.Sequential(nn.Conv2d(3, 3, 1), MyBlock()),
     "cannot convert 1 (MyBlock): skipblocks has no such layer or block"),
    (lambda: nn.Sequential(ScaledConv2d(3, 3, 1)),
     "cannot convert 0 (ScaledConv2d): skipblocks has no such layer; it is a subclass of "
     "torch.nn.Conv2d, and only torch.nn.Conv2d itself converts"),
    (lambda: nn.GELU(), "cannot convert the top-level module (GELU): skipblocks has no such layer"),
    (lambda: nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")),
     "cannot convert 0 (Conv2d): Conv2d: padding_mode='reflect' is not supported"),
    (lambda: nn.Sequential(nn.Sequential(nn.MaxPool2d(2, return_indices=True))),
     "cannot convert 0.0 (MaxPool2d): MaxPool2d: return_indices=True is not supported"),
    (lambda: nn.Sequential(nn.Linear(3, 2)).half(),
     "cannot convert 0 (Linear): its weight is torch.float16; skipblocks computes in float32 or "
     "float64 only"),
    (lambda: nn.Sequential(nn.BatchNorm2d(3)).bfloat16(),
     "cannot convert 0 (BatchNorm2d): its weight is torch.bfloat16"),
    (lambda: nn.Sequential(nn.Linear(3, 2)).to_empty(device="meta"),
     "cannot convert 0 (Linear): its weight is a meta tensor"),
    (lambda: ref_networks.TimmResNet(ref_networks.TimmBottleneck, [1, 1, 1, 1],
                                     drop_rate=0.25),
     "cannot convert the top-level module (TimmResNet): drop_rate=0.25"),
])
def test_errors_name_the_path_and_the_class(module, message):
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(module())
    assert str(info.value).startswith("from_torch: " + message), str(info.value)


def test_mixed_dtypes_in_one_layer_are_refused():
    conv = nn.Conv2d(3, 2, 1)
    conv.bias = nn.Parameter(conv.bias.detach().double())
    with pytest.raises(NotImplementedError, match=r"cannot convert the top-level module "
                       r"\(Conv2d\): its tensors mix float32 and float64"):
        sb.from_torch(conv)


def test_a_known_block_with_another_layout_is_refused():
    tm = document.ResidualBlock(4, 4)
    tm.extra = nn.ReLU()
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(nn.Sequential(tm))
    assert str(info.value) == (
        "from_torch: cannot convert 0 (ResidualBlock): its children (conv1, conv2, bn, extra) "
        "are not laid out as the document's ResidualBlock (conv1, conv2, bn, "
        "downsample (optional))")


def test_a_block_with_its_own_parameters_is_refused():
    tm = ref_systems.OutConv(4, 2)
    tm.scale = nn.Parameter(torch.ones(2))
    with pytest.raises(NotImplementedError, match=r"cannot convert the top-level module "
                       r"\(OutConv\): its parameters \(scale\) are not those of skipblocks' "
                       r"OutConv \(\)"):
        sb.from_torch(tm)


def test_timm_settings_skipblocks_does_not_have():
    tm = ref_networks.TimmResNet(ref_networks.TimmBottleneck, [1, 1, 1, 1])
    tm.layer2[0].act2 = nn.Sigmoid()
    with pytest.raises(NotImplementedError, match=r"^from_torch: cannot convert layer2\.0\.act2 "
                       r"\(Sigmoid\): skipblocks' Bottleneck applies one ReLU"):
        sb.from_torch(tm)
    tm = ref_networks.TimmResNet(ref_networks.TimmBottleneck, [1, 1, 1, 1])
    tm.layer1[0].aa = nn.AvgPool2d(2)
    with pytest.raises(NotImplementedError, match=r"cannot convert layer1\.0\.aa \(AvgPool2d\): "
                       r"skipblocks' Bottleneck has no aa"):
        sb.from_torch(tm)
    se = ref_networks.SEModule(32, add_maxpool=True)
    with pytest.raises(NotImplementedError, match="add_maxpool=True"):
        sb.from_torch(se)


def test_forward_hooks_are_refused():
    tm = nn.Sequential(nn.ReLU(), nn.Conv2d(3, 3, 1))
    tm[1].register_forward_hook(lambda module, args, output: output * 2)
    with pytest.raises(NotImplementedError, match=r"cannot convert 1 \(Conv2d\): it has forward "
                       "hooks"):
        sb.from_torch(tm)


def _timm_block():
    return ref_networks.TimmBottleneck(16, 4)


def _timm_resnet():
    return ref_networks.TimmResNet(ref_networks.TimmBottleneck, [1, 1, 1, 1], num_classes=3)


def _hooked(make, dotted, register="register_forward_hook"):
    def build():
        tm = make()
        hook = (lambda module, args, output: output * 0) if register == "register_forward_hook" \
            else (lambda module, args: None) if register == "register_forward_pre_hook" \
            else (lambda module, grad_input, grad_output: None)
        getattr(tm.get_submodule(dotted), register)(hook)
        return tm
    return build


@pytest.mark.parametrize("module, message", [
    # modules the conversion absorbs (timm's act1 becomes relu) or drops
    (_hooked(_timm_block, "act1"), "cannot convert act1 (ReLU): it has forward hooks"),
    (_hooked(_timm_block, "act2"), "cannot convert act2 (ReLU): it has forward hooks"),
    (_hooked(_timm_block, "act3"), "cannot convert act3 (ReLU): it has forward hooks"),
    (_hooked(_timm_block, "drop_block"),
     "cannot convert drop_block (Identity): it has forward hooks"),
    (_hooked(_timm_block, "aa", "register_forward_pre_hook"),
     "cannot convert aa (Identity): it has forward pre-hooks"),
    (_hooked(_timm_resnet, "global_pool"),
     "cannot convert global_pool (SelectAdaptivePool2d): it has forward hooks"),
    (_hooked(_timm_resnet, "global_pool.flatten"),
     "cannot convert global_pool.flatten (Flatten): it has forward hooks"),
    (_hooked(_timm_resnet, "layer3.0.act2"),
     "cannot convert layer3.0.act2 (ReLU): it has forward hooks"),
    # converted modules: every kind of hook
    (_hooked(lambda: nn.Sequential(nn.ReLU(), nn.Conv2d(3, 3, 1)), "1",
             "register_forward_pre_hook"), "cannot convert 1 (Conv2d): it has forward pre-hooks"),
    (_hooked(lambda: nn.Sequential(nn.ReLU(), nn.Conv2d(3, 3, 1)), "1",
             "register_full_backward_hook"), "cannot convert 1 (Conv2d): it has backward hooks"),
    (_hooked(document.resnet_demo, ""),
     "cannot convert the top-level module (Sequential): it has forward hooks"),
])
def test_hooks_anywhere_in_the_torch_tree_are_refused(module, message):
    """Also on the modules the twin has no counterpart of, whose hooks
    would otherwise be dropped silently."""
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(module())
    assert str(info.value).startswith("from_torch: " + message), str(info.value)
    assert "which skipblocks modules would not run" in str(info.value)


@pytest.mark.parametrize("register, kind", [
    ("register_module_forward_hook", "forward hooks"),
    ("register_module_forward_pre_hook", "forward pre-hooks"),
    ("register_module_full_backward_hook", "backward hooks"),
])
def test_global_module_hooks_are_refused(register, kind):
    """torch.nn.modules.module's global hooks run on every torch module's
    call; the twin would run none."""
    hook = {"forward hooks": lambda module, args, output: output * 0,
            "forward pre-hooks": lambda module, args: None,
            "backward hooks": lambda module, grad_input, grad_output: None}[kind]
    handle = getattr(torch.nn.modules.module, register)(hook)
    try:
        with pytest.raises(NotImplementedError) as info:
            sb.from_torch(nn.Conv2d(2, 3, 1))
    finally:
        handle.remove()
    assert str(info.value) == (
        f"from_torch: cannot convert the top-level module (Conv2d): torch has global module "
        f"{kind} registered (torch.nn.modules.module.{register}), which skipblocks modules "
        "would not run (remove them before converting)")
    sb.from_torch(nn.Conv2d(2, 3, 1))  # removed: converts


def test_an_uninitialised_lazy_module_is_refused_as_such():
    """torch's lazy modules carry a pre-hook of their own until their first
    forward: the message says what is missing, not that it has hooks."""
    tm = nn.Sequential(nn.LazyConv2d(4, 1), nn.ReLU())
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(tm)
    assert str(info.value).startswith(
        "from_torch: cannot convert 0 (LazyConv2d): it is a lazy module that is not "
        "initialised yet"), str(info.value)
    assert "run a forward through the torch module" in str(info.value)
    assert "hooks" not in str(info.value)
    with torch.no_grad():
        tm(torch.ones(1, 3, 2, 2))  # initialised: a Conv2d now, without its hook
    assert type(convert(tm)[0]) is sb.Conv2d


def _plain_downsample(make, name="downsample"):
    def build():
        tm = make()
        setattr(tm, name, lambda x: x * 0.5)  # a plain attribute: torch's forward calls it
        return nn.Sequential(tm)
    return build


@pytest.mark.parametrize("module, message", [
    (_plain_downsample(lambda: document.ResidualBlock(4, 4)),
     "cannot convert 0 (ResidualBlock): its downsample is a plain attribute holding a "
     "function, not a child module or None"),
    (_plain_downsample(lambda: ref_systems.SEResidualBlock(32, 32)),
     "cannot convert 0 (SEResidualBlock): its downsample is a plain attribute"),
    (_plain_downsample(lambda: ref_networks.BasicBlock(4, 4)),
     "cannot convert 0 (BasicBlock): its downsample is a plain attribute"),
    (_plain_downsample(lambda: ref_networks.Bottleneck(16, 4)),
     "cannot convert 0 (Bottleneck): its downsample is a plain attribute"),
    (_plain_downsample(_timm_block),
     "cannot convert 0 (TimmBottleneck): its downsample is a plain attribute"),
    (_plain_downsample(_timm_block, "se"),
     "cannot convert 0 (TimmBottleneck): its se is a plain attribute holding a function"),
])
def test_a_child_that_is_not_a_module_is_refused(module, message):
    """The document's downsample is "a callable": a function there is run by
    torch's forward, and the twin would have no downsample."""
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(module())
    assert str(info.value).startswith("from_torch: " + message), str(info.value)


def test_timm_act1_must_be_relu():
    """act1 becomes the twin's one relu, applied after bn1, bn2 and the
    addition, so it is checked as act2 and act3 are."""
    tm = _timm_resnet()
    tm.layer2[0].act1 = nn.Sigmoid()
    with pytest.raises(NotImplementedError, match=r"^from_torch: cannot convert layer2\.0\.act1 "
                       r"\(Sigmoid\): skipblocks' Bottleneck applies one ReLU"):
        sb.from_torch(tm)
    tm = _timm_block()
    tm.act1 = nn.GELU()
    with pytest.raises(NotImplementedError, match=r"^from_torch: cannot convert act1 \(GELU\): "
                       r"skipblocks' Bottleneck applies one ReLU"):
        sb.from_torch(tm)
    tm = _timm_resnet()
    tm.act1 = nn.Sigmoid()   # the stem's act1 runs once: it converts as it is
    assert type(sb.from_torch(tm).relu) is sb.Sigmoid


@pytest.mark.parametrize("mode", ["nearest-exact", "bicubic", "area", "trilinear", "linear"])
def test_upsample_modes_skipblocks_has_not_are_refused(mode):
    """torch.nn.Upsample takes any mode and fails on its first call; the
    conversion refuses the modes skipblocks' interpolate has not."""
    tm = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Upsample(scale_factor=2, mode=mode))
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(tm)
    assert str(info.value) == (
        f"from_torch: cannot convert 1 (Upsample): mode={mode!r}: skipblocks' Upsample has "
        "mode 'nearest' (3-D or 4-D input) and 'bilinear' (4-D input) only")


class ResidualBlock(document.ResidualBlock):
    """A user's pre-activation variant under the document's name."""

    def forward(self, x):
        return self.conv2(torch.relu(self.bn(self.conv1(torch.relu(x))))) + x


class BasicBlock(ref_networks.BasicBlock):
    """A subclass keeping the name and torchvision's forward."""

    def extra_note(self):
        return "not a method BasicBlock has"


class Scaled:
    def forward(self, x):
        return super().forward(x) * 2


class OutConv(Scaled, ref_systems.OutConv):
    """A mixin's forward before the recognised class's."""


class _OutConvBase(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.conv(x) * 2


class _NamedOutConv(_OutConvBase):
    pass


_NamedOutConv.__name__ = _NamedOutConv.__qualname__ = "OutConv"


class TimmResNet(ref_networks.TimmResNet):
    def forward_head(self, x, pre_logits=False):
        return super().forward_head(x, pre_logits) * 2


class _Transition(ref_networks._Transition):
    def forward(self, x):
        return super().forward(x) * 2


class SelectAdaptivePool2d(ref_networks.SelectAdaptivePool2d):
    def forward(self, x):
        return super().forward(x) * 2


def _with_pool(make):
    tm = make()
    tm.global_pool = SelectAdaptivePool2d()
    return tm


class CallingBlock(ref_systems.OutConv):
    def __call__(self, *args):
        return super().__call__(*args) * 2


CallingBlock.__name__ = "OutConv"


@pytest.mark.parametrize("module, message", [
    (lambda: nn.Sequential(ResidualBlock(4, 4)),
     "cannot convert 0 (ResidualBlock): its class test_from_torch.ResidualBlock overrides "
     "forward of skipblocks.reference.document.ResidualBlock, which skipblocks recognises by "
     "its name and children and whose forward it reproduces: the override may compute "
     "something else (only that class itself converts)"),
    (lambda: OutConv(4, 2), "cannot convert the top-level module (OutConv): its class "
     "test_from_torch.OutConv overrides forward of skipblocks.reference.systems.OutConv"),
    (lambda: _NamedOutConv(), "cannot convert the top-level module (OutConv): its forward is "
     "test_from_torch._OutConvBase's, not one test_from_torch.OutConv defines itself"),
    (lambda: TimmResNet(ref_networks.TimmBottleneck, [1, 1, 1, 1]),
     "cannot convert the top-level module (TimmResNet): its class test_from_torch.TimmResNet "
     "overrides forward_head of skipblocks.reference.networks.TimmResNet"),
    (lambda: _with_pool(_timm_resnet), "cannot convert global_pool (SelectAdaptivePool2d): its "
     "class test_from_torch.SelectAdaptivePool2d overrides forward of "
     "skipblocks.reference.networks.SelectAdaptivePool2d"),
    (lambda: nn.Sequential(_Transition(4, 2)), "cannot convert 0 (_Transition): its class "
     "test_from_torch._Transition overrides forward of skipblocks.reference.networks."
     "_Transition"),
    (lambda: CallingBlock(4, 2), "cannot convert the top-level module (OutConv): its class "
     "test_from_torch.CallingBlock overrides torch.nn.Module's __call__, so calling it may "
     "not run the forward of skipblocks.reference.systems.OutConv"),
])
def test_a_recognised_class_with_another_forward_is_refused(module, message):
    """Blocks are recognised by class name and children: a subclass (or a
    mixin) that changes the forward, a helper of it or the call, or a
    class of that name whose forward another class defines, would convert
    into a twin computing the recognised forward."""
    with pytest.raises(NotImplementedError) as info:
        sb.from_torch(module())
    assert str(info.value).startswith("from_torch: " + message), str(info.value)


def test_a_subclass_keeping_the_forward_converts(rng):
    """A subclass of a recognised class that only adds methods runs the
    recognised forward: it converts."""
    tm = randomize_(nn.Sequential(BasicBlock(4, 4))).eval()
    sm = convert(tm)
    assert type(sm[0]) is models.BasicBlock
    run_modes(tm, sm, lambda step: randn(rng, 2, 4, 6, 6), "resnet18", "BasicBlock subclass",
              modes=(False,))


@pytest.mark.parametrize("value", [sb.Conv2d(3, 3, 1), torch.ones(3), None, "resnet18"])
def test_not_a_torch_module_is_a_type_error(value):
    with pytest.raises(TypeError, match="from_torch: expected a torch.nn.Module, got "):
        sb.from_torch(value)


# ---------------------------------------------------------------------------
# torch is imported by from_torch only
# ---------------------------------------------------------------------------

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(sb.__file__)))


def _python(code):
    env = dict(os.environ)
    env["PYTHONPATH"] = _PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


def test_importing_conversion_does_not_import_torch():
    proc = _python(textwrap.dedent("""
        import sys
        import skipblocks.conversion
        from skipblocks import from_torch
        assert from_torch is skipblocks.conversion.from_torch
        assert "torch" not in sys.modules, "torch imported"
        print("ok")
    """))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_from_torch_without_torch_raises_import_error():
    proc = _python(import_blocker("torch") + textwrap.dedent("""
        import skipblocks
        try:
            skipblocks.from_torch(object())
        except ImportError:
            print("ok")
    """))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]

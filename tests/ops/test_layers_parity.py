"""Module-level parity of every skipblocks layer against the torch.nn layer of
the same name, built with the same constructor arguments and loaded with the
torch module's state_dict: outputs in train and eval mode (several forwards,
alternating), and every state_dict entry after each forward.
"""

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb

from helpers import (as_dtype, assert_parity, assert_state_dict_parity,
                     batch_norm_magnitude, load_from_torch, randn, randomize_, to_torch)

# id, class name, args, kwargs, input shape, tolerance-table op
LAYER_CASES = [
    ("conv_default", "Conv2d", (3, 5, 3), {}, (2, 3, 9, 8), "conv2d"),
    ("conv_doc_stem", "Conv2d", (3, 8, 7), dict(stride=2, padding=3, bias=False), (1, 3, 21, 19), "conv2d"),
    ("conv_1x1_s2", "Conv2d", (6, 10, 1), dict(stride=2, bias=False), (2, 6, 9, 9), "conv2d"),
    ("conv_groups_dil", "Conv2d", (6, 9, (3, 2)), dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=3), (2, 6, 8, 9), "conv2d"),
    ("conv_same", "Conv2d", (4, 4, 4), dict(padding="same", dilation=2), (1, 4, 7, 6), "conv2d"),
    ("conv_valid_list", "Conv2d", (4, 3, [2, 3]), dict(padding="valid", stride=[1, 1]), (1, 4, 5, 6), "conv2d"),
    ("bn_default", "BatchNorm2d", (5,), {}, (3, 5, 4, 3), "batch_norm"),
    ("bn_eps_mom", "BatchNorm2d", (17,), dict(eps=1e-3, momentum=0.3), (2, 17, 3, 5), "batch_norm"),
    ("bn_mom_none", "BatchNorm2d", (4,), dict(momentum=None), (2, 4, 3, 3), "batch_norm"),
    ("bn_no_affine", "BatchNorm2d", (6,), dict(affine=False), (2, 6, 2, 2), "batch_norm"),
    ("bn_no_stats", "BatchNorm2d", (3,), dict(track_running_stats=False), (4, 3, 2, 3), "batch_norm"),
    ("bn_no_affine_no_stats", "BatchNorm2d", (3,), dict(affine=False, track_running_stats=False), (2, 3, 3, 1), "batch_norm"),
    ("bn_no_bias", "BatchNorm2d", (5,), dict(bias=False), (2, 5, 3, 4), "batch_norm"),
    ("bn_two_values", "BatchNorm2d", (8,), {}, (2, 8, 1, 1), "batch_norm"),
    ("relu", "ReLU", (), {}, (2, 3, 5, 5), "relu"),
    ("sigmoid", "Sigmoid", (), {}, (2, 3, 5, 5), "sigmoid"),
    ("maxpool_doc_resnet", "MaxPool2d", (), dict(kernel_size=2, stride=2), (1, 4, 11, 10), "max_pool2d"),
    ("maxpool_doc_dense", "MaxPool2d", (3, 2), {}, (2, 3, 13, 12), "max_pool2d"),
    ("maxpool_ceil", "MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), (1, 3, 10, 7), "max_pool2d"),
    ("maxpool_dil", "MaxPool2d", ((2, 3),), dict(stride=(1, 2), padding=(1, 1), dilation=(2, 1)), (2, 2, 9, 9), "max_pool2d"),
    ("adaptive_1", "AdaptiveAvgPool2d", (1,), {}, (3, 7, 7, 7), "adaptive_avg_pool2d"),
    # a large plane: the global mean sums blocks of 4096 floats, then adds them in double
    ("adaptive_1_large", "AdaptiveAvgPool2d", (1,), {}, (1, 3, 1024, 1024), "adaptive_avg_pool2d"),
    ("adaptive_3x4", "AdaptiveAvgPool2d", ((3, 4),), {}, (2, 5, 10, 9), "adaptive_avg_pool2d"),
    ("adaptive_none", "AdaptiveAvgPool2d", ((None, 2),), {}, (1, 3, 5, 7), "adaptive_avg_pool2d"),
    ("linear", "Linear", (12, 7), {}, (4, 12), "linear"),
    ("linear_nobias", "Linear", (9, 16), dict(bias=False), (2, 3, 9), "linear"),
    ("linear_doc_se", "Linear", (512, 64), dict(bias=False), (50, 512), "linear"),
]


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_parity_train_and_eval(case, rng, dtype):
    name, cls, args, kwargs, shape, op = case
    tm, sm = as_dtype(randomize_(getattr(nn, cls)(*args, **kwargs), seed=len(name)),
                      getattr(sb, cls)(*args, **kwargs), dtype)
    sm = load_from_torch(sm, tm)
    assert sm.training and tm.training
    fan_in = None
    if cls == "Linear":
        fan_in = args[0]
    elif cls == "Conv2d":
        fan_in = int(np.prod(tm.weight.shape[1:]))
    # train, train, eval, train, eval: running statistics must follow torch at every step
    for step, training in enumerate([True, True, False, True, False]):
        tm.train(training)
        assert sm.train(training) is sm
        assert sm.training is training
        x = randn(rng, *shape, scale=2.0, shift=0.3 * step, dtype=dtype)
        magnitude = None
        if cls == "BatchNorm2d":
            batch = training or tm.running_mean is None
            x64 = x.astype(np.float64)
            mean, var = (x64.mean((0, 2, 3)), x64.var((0, 2, 3))) if batch else (
                tm.running_mean.numpy(), tm.running_var.numpy())
            weight = None if tm.weight is None else tm.weight.detach().numpy()
            bias = None if tm.bias is None else tm.bias.detach().numpy()
            magnitude = batch_norm_magnitude(x, mean, var, weight, bias, tm.eps)
        with torch.no_grad():
            expected = tm(to_torch(x))
        got = sm(x)
        what = "%s step %d (%s)" % (name, step, "train" if training else "eval")
        assert_parity(got, expected, op, what=what, fan_in=fan_in, magnitude=magnitude)
        assert_state_dict_parity(sm, tm, what=what)


def test_sequential_of_layers_parity(rng, dtype):
    spec = [("Conv2d", (3, 6, 3), dict(padding=1, bias=False)), ("BatchNorm2d", (6,), {}),
            ("ReLU", (), {}), ("MaxPool2d", (2,), {}), ("Conv2d", (6, 4, 1), {}),
            ("AdaptiveAvgPool2d", ((2, 3),), {}), ("Sigmoid", (), {})]
    tm, sm = as_dtype(randomize_(nn.Sequential(*[getattr(nn, c)(*a, **k) for c, a, k in spec])),
                      sb.Sequential(*[getattr(sb, c)(*a, **k) for c, a, k in spec]), dtype)
    sm = load_from_torch(sm, tm)
    assert len(sm) == len(tm)
    for training in (True, False):
        tm.train(training)
        sm.train(training)
        x = randn(rng, 2, 3, 9, 11, dtype=dtype)
        with torch.no_grad():
            expected = tm(to_torch(x))
        assert_parity(sm(x), expected, "sequential", what="Sequential train=%s" % training)
        assert_state_dict_parity(sm, tm, what="Sequential train=%s" % training)


def test_batchnorm_momentum_none_is_cumulative_average(rng, dtype):
    """momentum=None: running stats are the plain average of all batches seen (torch's rule)."""
    tm, sm = as_dtype(nn.BatchNorm2d(3, momentum=None), sb.BatchNorm2d(3, momentum=None), dtype)
    sm = load_from_torch(sm, tm)
    for i in range(4):
        x = randn(rng, 2, 3, 3, 3, shift=float(i), dtype=dtype)
        with torch.no_grad():
            tm(to_torch(x))
        sm(x)
    assert int(sm.num_batches_tracked) == 4
    assert_state_dict_parity(sm, tm, what="momentum=None after 4 batches")


# torch's AVX2 kernels compute BatchNorm as x * alpha + beta with alpha =
# weight * invstd in float and beta = bias - mean * alpha, both multiply-adds
# contracted to FMAs by its compiler; invstd comes from running_var in float
# (eval) or, in train mode, from the batch's variance: a double sum of
# squares rounded to float, divided by n in float, then 1 / sqrt in double;
# the running variance update is summed in double. skipblocks' vector paths
# round the same way, so against torch's AVX2 kernels BatchNorm2d's output
# and running statistics are torch's, bit for bit -- also on inputs whose
# mean is far from 0, where the rounding shows most, over three forwards,
# and with momentum=None (a cumulative average: momentum 1, 1/2, 1/3). (The
# batch sums themselves are exact in double for inputs like these, so the
# order of summation does not matter here.) Only that pair was checked bit
# for bit on the development machine; any other pair (skipblocks' portable
# path, torch's DEFAULT or AVX-512 kernels) is held to the table's bound on
# centred inputs -- except the running statistics, which skipblocks updates
# the same way on every path and which match torch's AVX2 and DEFAULT
# kernels alike.
@pytest.mark.parametrize("mode", ["eval", "train", "train-cumulative"])
def test_batchnorm_bits_match_torch(isa, rng, mode):
    capability = torch.backends.cpu.get_cpu_capability()
    exact = capability == "AVX2" and isa in ("avx2", "avx512-source")
    momentum = None if mode == "train-cumulative" else 0.1
    for shift in (0.0, 1e2, 1e4) if exact else (0.0,):
        tm = nn.BatchNorm2d(19, momentum=momentum)
        with torch.no_grad():
            tm.weight.uniform_(0.5, 1.5)
            tm.bias.uniform_(-1.0, 1.0)
            tm.running_mean.copy_(torch.from_numpy(randn(rng, 19) + np.float32(shift)))
            tm.running_var.uniform_(0.2, 3.0)
        sm = load_from_torch(sb.BatchNorm2d(19, momentum=momentum), tm)
        tm.train(mode != "eval")
        sm.train(mode != "eval")
        for step in range(3 if mode != "eval" else 1):
            # planes of 7x9 = 63 floats: full vectors and a masked tail of 7
            x = randn(rng, 3, 19, 7, 9, scale=3.0, shift=shift)
            with torch.no_grad():
                expected = tm(to_torch(x))
            what = "BatchNorm2d %s, step %d, inputs around %g, skipblocks %s, torch %s" % (
                mode, step, shift, isa, capability)
            assert_parity(sm(x), expected, "batch_norm", what=what, tol=0.0 if exact else None)
            if mode != "eval":
                # the running statistics round the same on every skipblocks
                # path, as in torch's AVX2 and DEFAULT kernels (both checked)
                stats_exact = capability in ("AVX2", "DEFAULT")
                for name in ("running_mean", "running_var"):
                    assert_parity(getattr(sm, name), getattr(tm, name), "batch_norm",
                                  what=what + ", " + name, tol=0.0 if stats_exact else None)

"""Corner cases, each checked against torch where torch has an answer: shallow copies and caches, subclasses inside fused blocks, two
threads on one module, thread-local unfused(), load_state_dict corners,
eps checks, empty pooling outputs, cat's legacy empty tensors, Sequential
item assignment."""
import copy
import threading
import types

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks.reference import parity_error
from helpers import as_dtype
from tolerances import tolerance


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_shallow_copy_shares_the_cache_key(dtype):
    # copy.copy shares the parameter dicts (as torch's does), so a change made
    # through the copy must reach the original's next forward.
    conv, x = sb.Conv2d(2, 3, 3, dtype=dtype), _x((1, 2, 5, 5), dtype=dtype)
    conv(x)  # builds the packed weights
    clone = copy.copy(conv)
    clone.weight = np.zeros((3, 2, 3, 3))
    assert conv.weight.dtype == np.dtype(dtype)   # cast to the parameter's dtype
    np.testing.assert_array_equal(conv(x), sb.functional.conv2d(x, conv.weight, conv.bias))


def test_shallow_copy_of_batchnorm_in_train_mode_keeps_folds_fresh(dtype):
    model = sb.Sequential(sb.Conv2d(3, 4, 3), sb.BatchNorm2d(4)).to(getattr(np, dtype)).eval()
    x = _x((2, 3, 7, 7), dtype=dtype)
    model(x)  # folds the BatchNorm into the conv's packed weights
    clone = copy.copy(model[1]).train()
    clone(model[0](x))  # updates the running statistics both share
    fresh = sb.Sequential(sb.Conv2d(3, 4, 3), sb.BatchNorm2d(4)).to(getattr(np, dtype)).eval()
    fresh.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(model(x), fresh(x))


class _ConstantBN(sb.BatchNorm2d):
    def forward(self, x):
        return super().forward(x) * 0 + 1


class _ConstantConv(sb.Conv2d):
    def forward(self, x):
        return super().forward(x) * 0 + 2


class _ZeroLayer(sb.DenseLayer):
    def forward(self, prev_features):
        return super().forward(prev_features) * 0


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("case", ["residual-bn", "sequential-conv", "dense-layer"])
def test_fused_paths_call_a_subclass_forward(case, mode, dtype):
    x = _x((2, 8, 6, 6), dtype=dtype)
    if case == "residual-bn":
        model = sb.ResidualBlock(8, 8)
        model.bn = _ConstantBN(8)
    elif case == "sequential-conv":
        model = sb.Sequential(_ConstantConv(8, 8, 3, padding=1), sb.BatchNorm2d(8))
    else:
        model = sb.DenseBlock(2, 8, 4, 2)
        model.block["dense1"] = _ZeroLayer(12, 4, 2)
    model.to(getattr(np, dtype)).train(mode == "train")
    twin = copy.deepcopy(model)
    with sb.runtime.unfused():
        expected = twin(x)
    assert expected.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(model(x), expected)


def test_two_threads_train_one_batchnorm_without_spurious_errors(dtype):
    bn, x = sb.BatchNorm2d(4, dtype=dtype), _x((2, 4, 8, 8), dtype=dtype)
    errors, rounds, workers = [], 300, 4

    def work():
        try:
            for _ in range(rounds):
                bn(x)
        except Exception as exc:  # pragma: no cover - the failure being tested
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert int(bn.num_batches_tracked) == rounds * workers
    assert not bn.running_mean.flags.writeable
    assert bn.running_mean.dtype == bn.running_var.dtype == np.dtype(dtype)


def test_unfused_is_per_thread():
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def other():
        inside.wait()
        seen["other"] = sb.runtime.fusion_enabled()
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with sb.runtime.unfused():
        seen["self"] = sb.runtime.fusion_enabled()
        inside.set()
        release.wait(10)
    t.join()
    assert seen == {"self": False, "other": True}
    assert sb.runtime.fusion_enabled()


@pytest.mark.parametrize("extra", ["0", "0.weight.foo", "1.running_mean.x", "nothere"])
def test_unexpected_keys_follow_torch(extra):
    ours = sb.Sequential(sb.Conv2d(2, 3, 1), sb.BatchNorm2d(3))
    theirs = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))
    sd = {k: v.clone() for k, v in theirs.state_dict().items()}
    sd[extra] = torch.zeros(1)
    t_result = theirs.load_state_dict(sd, strict=False)
    s_result = ours.load_state_dict(sd, strict=False)
    assert list(s_result.unexpected_keys) == list(t_result.unexpected_keys) == [extra]
    with pytest.raises(RuntimeError, match="Unexpected key"):
        ours.load_state_dict(sd)


def test_load_state_dict_takes_any_mapping_and_bfloat16(dtype):
    theirs = nn.Linear(4, 3).to(torch.bfloat16)
    ours = sb.Linear(4, 3, dtype=dtype)
    ours.load_state_dict(types.MappingProxyType(theirs.state_dict()))
    assert ours.weight.dtype == np.dtype(dtype)   # cast to the module's dtype (exactly)
    np.testing.assert_array_equal(ours.weight,
                                  theirs.weight.detach().to(getattr(torch, dtype)).numpy())


@pytest.mark.parametrize("eps", [-1e-3, 0.0, float("nan")])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_eps_checks_follow_torch(eps, training, dtype):
    theirs, ours = as_dtype(nn.BatchNorm2d(3, eps=eps), sb.BatchNorm2d(3, eps=eps), dtype)
    ours.train(training)
    theirs.train(training)
    x = _x((2, 3, 4, 4), dtype=dtype)
    try:
        expected = theirs(torch.from_numpy(x)).detach().numpy()
    except ValueError as exc:
        with pytest.raises(ValueError, match="eps must be"):
            ours(x)
        assert "eps must be" in str(exc)
        return
    got = ours(x)
    assert got.dtype == expected.dtype
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    # 10x the table's BatchNorm bound: 1e-5 in float32, 4e-14 in float64
    assert parity_error(np.nan_to_num(got), np.nan_to_num(expected)) < 10 * tolerance(
        "batch_norm", dtype=dtype)


@pytest.mark.parametrize("size", [0, (0, 3), (2, 0)])
def test_adaptive_pool_to_an_empty_output(size, dtype):
    x = _x((1, 2, 4, 4), dtype=dtype)
    expected = nn.AdaptiveAvgPool2d(size)(torch.from_numpy(x))
    got = sb.AdaptiveAvgPool2d(size)(x)
    assert got.shape == tuple(expected.shape)
    assert got.dtype == expected.numpy().dtype


def test_cat_skips_legacy_empty_tensors_like_torch(dtype):
    a, b = _x((2, 3), dtype=dtype), np.zeros(0, dtype)
    expected = torch.cat([torch.from_numpy(a), torch.from_numpy(b)])
    got = sb.cat([a, b])
    assert got.dtype == expected.numpy().dtype
    np.testing.assert_array_equal(got, expected.numpy())


def test_dense_block_mixed_ndim_list_raises_runtime_error_like_torch(dtype):
    block = sb.DenseBlock(2, 4, 2, 2, dtype=dtype)
    # the first layer's torch.cat raises it, as in the document's block
    with pytest.raises(RuntimeError, match="DenseLayer: Tensors must have same number of "
                                           "dimensions: got 4 and 3"):
        block([_x((1, 4, 5, 5), dtype=dtype), _x((4, 5, 5), dtype=dtype)])


def test_sequential_item_assignment_and_deletion_like_torch():
    ours = sb.Sequential(sb.ReLU(), sb.Sigmoid(), sb.ReLU())
    theirs = nn.Sequential(nn.ReLU(), nn.Sigmoid(), nn.ReLU())
    ours[1], theirs[1] = sb.ReLU(inplace=True), nn.ReLU(inplace=True)
    del ours[0]
    del theirs[0]
    assert repr(ours) == repr(theirs)
    ours[-1] = sb.Sigmoid()
    theirs[-1] = nn.Sigmoid()
    assert repr(ours) == repr(theirs)
    with pytest.raises(IndexError):
        ours[5] = sb.ReLU()


def test_residual_shape_error_leaves_torchs_statistics_in_train_mode(dtype):
    theirs, ours = as_dtype(__import__(
        "skipblocks.reference", fromlist=["ResidualBlock"]).ResidualBlock(8, 16),
        sb.ResidualBlock(8, 16), dtype)
    ours.load_state_dict(theirs.state_dict())
    x = _x((2, 8, 6, 6), dtype=dtype)
    with pytest.raises(RuntimeError):
        theirs(torch.from_numpy(x))
    with pytest.raises(RuntimeError, match="ResidualBlock"):
        ours(x)
    assert int(ours.bn.num_batches_tracked) == int(theirs.bn.num_batches_tracked) == 2
    for name in ("running_mean", "running_var"):
        ours_stat, theirs_stat = getattr(ours.bn, name), getattr(theirs.bn, name).numpy()
        assert ours_stat.dtype == theirs_stat.dtype
        assert parity_error(ours_stat, theirs_stat) <= tolerance("running_stats", dtype=dtype)


def test_global_pool_of_an_empty_map_is_nan_like_torch(dtype):
    x = np.zeros((2, 3, 0, 5), dtype)
    expected = nn.AdaptiveAvgPool2d(1)(torch.from_numpy(x)).numpy()
    got = sb.AdaptiveAvgPool2d(1)(x)
    assert got.shape == expected.shape and np.isnan(got).all() and np.isnan(expected).all()
    assert got.dtype == expected.dtype
    with pytest.raises(RuntimeError, match="AdaptiveAvgPool2d"):
        sb.AdaptiveAvgPool2d(2)(x)


@pytest.mark.parametrize("fused", [True, False])
def test_se_attention_on_an_empty_map(fused, dtype):
    from skipblocks.reference import document
    theirs, se = as_dtype(document.SEAttention(16, 4), sb.SEAttention(16, 4), dtype)
    x = np.zeros((2, 16, 0, 5), dtype)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    if fused:
        got = se(x)
    else:
        with sb.runtime.unfused():
            got = se(x)
    assert got.shape == x.shape == expected.shape
    assert got.dtype == expected.dtype == np.dtype(dtype)


def test_eval_batch_norm_reads_running_stats_of_any_layout():
    x = _x((2, 3, 4, 4)).astype(np.float64)
    mean = np.arange(6, dtype=np.float64)[::2]   # strided: only read in eval
    var = np.linspace(1, 2, 3)
    expected = torch.nn.functional.batch_norm(torch.from_numpy(x), torch.tensor(mean),
                                              torch.tensor(var), training=False)
    got = sb.functional.batch_norm(x, mean, var, training=False)
    assert got.dtype == np.float64
    assert parity_error(got, expected) < 1e-15


def test_eval_batch_norm_with_running_stats_of_another_dtype_raises_like_torch(dtype):
    # the input in ``dtype``, the running statistics in the other one
    other = np.float32 if dtype == "float64" else np.float64
    x = _x((2, 3, 4, 4), dtype=dtype)
    mean, var = np.arange(3, dtype=other), np.linspace(1, 2, 3).astype(other)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.functional.batch_norm(torch.from_numpy(x), torch.tensor(mean),
                                       torch.tensor(var), training=False)
    with pytest.raises(RuntimeError) as ours:
        sb.functional.batch_norm(x, mean, var, training=False)
    assert str(ours.value) == "batch_norm: " + str(theirs.value)


# -- convolution shapes at the edges -----------------------------------------

def _torch_error(fn):
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


def test_conv_with_no_output_channels_raises_like_torch(dtype):
    x, w = _x((2, 3, 5, 5), dtype=dtype), np.zeros((0, 3, 3, 3), dtype)
    expected = _torch_error(lambda: torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), padding=1))
    with pytest.raises(RuntimeError) as info:
        sb.functional.conv2d(x, w, padding=1)
    assert expected in str(info.value)
    with pytest.raises(RuntimeError, match="expected weight to be at least 1 at dimension 0"):
        sb.Conv2d(3, 0, 3, dtype=dtype)(x)


@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 1), (1, 3)])
def test_conv_of_an_input_with_no_channels_has_no_channels_like_torch(stride, groups, dtype):
    # torch 2.13 returns (N, 0, OH, OW) for a zero-channel input, whatever
    # C_out is (not C_out maps of bias)
    x = np.zeros((2, 0, 5, 5), dtype)
    w, b = np.zeros((6, 0, 3, 3), dtype), np.ones(6, dtype)
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                        torch.from_numpy(b), stride=stride, padding=1,
                                        groups=groups)
    ours = sb.functional.conv2d(x, w, b, stride=stride, padding=1, groups=groups)
    assert ours.shape == tuple(theirs.shape)
    assert ours.dtype == theirs.numpy().dtype


@pytest.mark.parametrize("shape, k, pad", [((2, 3, 0, 5), 1, 1), ((2, 3, 5, 0), 3, 2)])
def test_conv_of_an_empty_map_raises_like_torch(shape, k, pad, dtype):
    x, w = np.zeros(shape, dtype), np.zeros((4, 3, k, k), dtype)
    expected = _torch_error(lambda: torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), padding=pad))
    with pytest.raises(RuntimeError) as info:
        sb.functional.conv2d(x, w, padding=pad)
    assert expected in str(info.value)


@pytest.mark.parametrize("k, stride, pad, dil", [
    (1, (10 ** 5, 10 ** 5), 0, 1),          # stride far beyond the input
    (2, (2 ** 31 - 1, 3), 1, 1),            # the largest stride accepted
    (3, (7, 7), (10 ** 4, 3), 1),           # padding far beyond the input
    ((2, 3), (9, 11), 2, (3, 4)),           # extent <= stride: one phase per tap
    ((5, 2), (2, 3), 1, (1, 2)),            # extent > stride in one dimension only
])
def test_conv_with_strides_larger_than_the_kernel_matches_torch(restore_threads, k, stride, pad,
                                                              dil, dtype):
    # a stride wider than the kernel's extent stages one phase plane per tap,
    # not stride**2 of them: fast, small, and exact
    x = _x((2, 3, 9, 13), seed=1, dtype=dtype)
    w = _x((5, 3) + ((k, k) if isinstance(k, int) else k), seed=2, dtype=dtype)
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride,
                                        padding=pad, dilation=dil).numpy()
    for threads in (1, 2):
        sb.set_num_threads(threads)
        ours = sb.functional.conv2d(x, w, stride=stride, padding=pad, dilation=dil)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        assert parity_error(ours, theirs) <= tolerance("conv2d", w[0].size, dtype)


def test_conv_arguments_beyond_int32_raise_a_clear_error():
    x, w = _x((1, 2, 2, 2)), np.ones((1, 2, 1, 1), np.float32)
    with pytest.raises(ValueError, match="must each be at most 2147483647"):
        sb.functional.conv2d(x, w, stride=(2 ** 32, 2 ** 32))
    with pytest.raises(ValueError, match="must each be at most 2147483647"):
        sb.functional.conv2d(x, w, padding=2 ** 40)


def _torch_twin(sb_module, torch_module):
    torch_module.load_state_dict({k: torch.from_numpy(np.array(v))
                                  for k, v in sb_module.state_dict().items()})
    return torch_module


def test_residual_block_whose_conv2_changes_the_channels_matches_torch_in_train_mode(dtype):
    # a BatchNorm without per-channel state normalises either convolution's
    # output; the fused block sizes its scratch for the larger one
    from skipblocks.reference import document
    ours = sb.ResidualBlock(8, 4)
    ours.conv2 = sb.Conv2d(4, 8, 3, padding=1, bias=False)
    ours.bn = sb.BatchNorm2d(4, affine=False, track_running_stats=False)
    theirs = document.ResidualBlock(8, 4)
    theirs.conv2 = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    theirs.bn = nn.BatchNorm2d(4, affine=False, track_running_stats=False)
    theirs, ours = as_dtype(theirs, ours, dtype)
    _torch_twin(ours, theirs)
    ours.train(), theirs.train()
    x = _x((2, 8, 5, 5), dtype=dtype)
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    got = ours(x)
    assert got.dtype == expected.dtype
    assert parity_error(got, expected) <= tolerance("residual_block", dtype=dtype)


def test_dense_layer_with_one_batchnorm_twice_and_cumulative_momentum_matches_torch(dtype):
    from skipblocks.reference import document
    ours, theirs = sb.DenseLayer(4, 2, 2), document.Dense_Layer(4, 2, 2)
    ours.bn1.momentum, theirs.bn1.momentum = None, None
    ours.bn2, theirs.bn2 = ours.bn1, theirs.bn1
    ours.conv1 = sb.Conv2d(4, 4, 1, bias=False)
    theirs.conv1 = nn.Conv2d(4, 4, 1, bias=False)
    ours.conv2 = sb.Conv2d(4, 2, 3, padding=1, bias=False)
    theirs.conv2 = nn.Conv2d(4, 2, 3, padding=1, bias=False)
    theirs, ours = as_dtype(theirs, ours, dtype)
    assert ours.bn2 is ours.bn1    # .double() keeps the one BatchNorm shared
    _torch_twin(ours, theirs)
    ours.train(), theirs.train()
    for seed in range(3):
        x = _x((2, 4, 5, 5), seed, dtype=dtype)
        got = ours(x)
        with torch.no_grad():
            expected = theirs([torch.from_numpy(x)])
        assert got.dtype == expected.numpy().dtype
        assert parity_error(got, expected.numpy()) <= tolerance("dense_layer", dtype=dtype)
    for name in ("running_mean", "running_var"):
        assert parity_error(getattr(ours.bn1, name),
                            getattr(theirs.bn1, name).numpy()) <= tolerance("running_stats",
                                                                            dtype=dtype)
    assert int(ours.bn1.num_batches_tracked) == int(theirs.bn1.num_batches_tracked) == 6


@pytest.mark.parametrize("bias_shape", [(1,), (), (1, 4), (3, 4), (3, 1), (1, 1)])
def test_linear_takes_every_bias_torch_broadcasts(bias_shape, dtype):
    x, w = _x((3, 5), dtype=dtype), _x((4, 5), 1, dtype=dtype)
    b = _x(bias_shape, 2, dtype=dtype) if bias_shape else np.dtype(dtype).type(0.5)
    expected = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                          torch.as_tensor(b)).numpy()
    got = sb.functional.linear(x, w, b)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert parity_error(got, expected) <= tolerance("linear", 5, dtype)
    layer = sb.Linear(5, 4, dtype=dtype)
    layer.weight, layer.bias = w, b
    got = layer(x)
    assert got.dtype == expected.dtype
    assert parity_error(got, expected) <= tolerance("linear", 5, dtype)


@pytest.mark.parametrize("bias_shape", [(4, 1), (5,), (2, 4), (1, 1, 4)])
def test_linear_bias_that_does_not_broadcast_raises_torchs_error(bias_shape, dtype):
    x, w, b = _x((3, 5), dtype=dtype), _x((4, 5), 1, dtype=dtype), _x(bias_shape, 2, dtype=dtype)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
    message = str(theirs.value).split("\nException raised from")[0]
    with pytest.raises(RuntimeError) as ours:
        sb.functional.linear(x, w, b)
    assert str(ours.value) == f"linear: {message}"

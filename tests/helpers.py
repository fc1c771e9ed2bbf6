"""Helpers shared by the parity tests: conversions, parity assertions that
report the maximum difference, state_dict comparison, and the document's demos
rebuilt from skipblocks classes (mirrors of ``skipblocks.reference`` builders).
"""

import textwrap

import numpy as np
import torch
from torch import nn

import skipblocks as sb
from skipblocks.reference import parity_error

from tolerances import tolerance


# ---------------------------------------------------------------------------
# conversions and inputs
# ---------------------------------------------------------------------------

def to_torch(a):
    """A torch tensor owning a copy of ``a`` (so torch never aliases our
    arrays): float64 when ``a`` is a float64 array, else float32."""
    dtype = np.float64 if getattr(a, "dtype", None) == np.float64 else np.float32
    return torch.from_numpy(np.array(a, dtype=dtype, copy=True))


def to_numpy(t):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def randn(rng, *shape, scale=1.0, shift=0.0, dtype=np.float32):
    return (rng.standard_normal(shape) * scale + shift).astype(dtype)


def uniform(rng, *shape, low=-1.0, high=1.0, dtype=np.float32):
    return rng.uniform(low, high, size=shape).astype(dtype)


def as_dtype(torch_module, sb_module, dtype):
    """Both modules in ``dtype`` ("float32" or "float64"): .double() for
    float64, as a torch user would write it; float32 leaves them as built."""
    if np.dtype(dtype) == np.float64:
        return torch_module.double(), sb_module.double()
    return torch_module, sb_module


def poison_heap(nbytes):
    """Allocate and free a NaN-filled block of ``nbytes``.

    The allocator tends to hand the freed block to the next allocation of the
    same size, so an output element that a kernel forgets to write shows up as
    NaN (NNPACK's NaN pre-fill, for outputs we do not allocate ourselves).
    """
    a = np.full(max(1, nbytes // 4), np.nan, dtype=np.float32)
    del a


# ---------------------------------------------------------------------------
# assertions
# ---------------------------------------------------------------------------

def diff_report(ours, theirs):
    """One line: max abs difference, where, and the two values there."""
    a = np.asarray(to_numpy(ours), dtype=np.float64)
    b = np.asarray(to_numpy(theirs), dtype=np.float64)
    if a.shape != b.shape:
        return "shape %s vs torch %s" % (a.shape, b.shape)
    if a.size == 0:
        return "empty"
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    d = np.where(same, 0.0, np.abs(a - b))
    d = np.where(np.isnan(d), np.inf, d)
    idx = np.unravel_index(int(np.argmax(d)), d.shape)
    return ("max|diff|=%.3e at %s (ours=%r, torch=%r), max|torch|=%.3e, %d/%d elements differ"
            % (d[idx], tuple(int(i) for i in idx), a[idx], b[idx],
               float(np.nanmax(np.abs(b))) if np.isfinite(b).any() else float("nan"),
               int((~same).sum()), a.size))


def batch_norm_magnitude(x, mean, var, weight, bias, eps):
    """The size of the two terms of BatchNorm's x * scale + shift (in float64,
    per channel, the largest): torch and skipblocks round each term, so the
    error follows their size, not the result's -- which is far smaller when a
    channel's values lie close together and the terms nearly cancel."""
    x = np.asarray(x, np.float64)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    if weight is not None:
        scale = scale * np.asarray(weight, np.float64)
    shift = -np.asarray(mean, np.float64) * scale
    if bias is not None:
        shift = shift + np.asarray(bias, np.float64)
    terms = np.abs(x * scale.reshape(shape)) + np.abs(shift).reshape(shape)
    return float(terms.max()) if terms.size else 0.0


def assert_parity(ours, theirs, op, what="", fan_in=None, tol=None, magnitude=None):
    """Assert skipblocks' ``ours`` matches torch's ``theirs`` within the table's bound for ``op``.

    Checks: ``ours`` is a NumPy array of torch's dtype (float32, or float64
    when torch computed in float64, whose column of the table then applies)
    and shape; then either bit equality (bound 0) or ``parity_error <= bound``.  With ``magnitude`` (the
    size of the terms the result is summed from, e.g. batch_norm_magnitude),
    the difference is measured against max(1, magnitude, max|torch|) instead.
    The message always carries the parity error and the max difference.
    Returns the error.
    """
    theirs = to_numpy(theirs)
    assert isinstance(ours, np.ndarray), "%s: expected a NumPy array, got %r" % (what, type(ours))
    dtype = np.float64 if theirs.dtype == np.float64 else np.float32
    assert ours.dtype == dtype, "%s: expected %s output, got %s" % (
        what, np.dtype(dtype).name, ours.dtype)
    assert ours.shape == tuple(theirs.shape), (
        "%s: shape %s, torch gives %s" % (what, ours.shape, tuple(theirs.shape)))
    bound = tolerance(op, fan_in, dtype) if tol is None else tol
    if bound == 0.0:
        ok = np.array_equal(ours, theirs, equal_nan=True)
        assert ok, "%s: %s must be bit-exact; %s" % (what, op, diff_report(ours, theirs))
        return 0.0
    err = parity_error(ours, theirs)
    if magnitude is not None and ours.size:
        diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
        err = float(np.nanmax(diff)) / max(1.0, magnitude, float(np.abs(theirs).max()))
    assert err <= bound, "%s: %s parity error %.3e > %.1e; %s" % (
        what, op, err, bound, diff_report(ours, theirs))
    return err


def assert_exact(ours, theirs, what=""):
    theirs = to_numpy(theirs)
    ours = np.asarray(ours)
    assert ours.shape == tuple(theirs.shape), "%s: shape %s vs %s" % (what, ours.shape, theirs.shape)
    assert np.array_equal(ours, theirs, equal_nan=True), "%s: not exact; %s" % (
        what, diff_report(ours, theirs))


def assert_state_dict_parity(sb_module, torch_module, what="", stats_op="running_stats"):
    """Every state_dict entry of the skipblocks module matches torch's.

    Same keys in the same order; num_batches_tracked exactly equal (0-d int64);
    parameters bit-exact and of torch's dtype (they were copied and nothing
    trains them); running statistics within the ``running_stats`` bound of
    their dtype.
    """
    ours = sb_module.state_dict()
    theirs = torch_module.state_dict()
    assert list(ours.keys()) == list(theirs.keys()), "%s: keys %s vs torch %s" % (
        what, list(ours.keys()), list(theirs.keys()))
    for key, t in theirs.items():
        v = ours[key]
        assert isinstance(v, np.ndarray), "%s: %s is %r, not a NumPy array" % (what, key, type(v))
        if key.endswith("num_batches_tracked"):
            assert v.dtype == np.int64 and v.shape == (), "%s: %s dtype %s shape %s" % (
                what, key, v.dtype, v.shape)
            assert int(v) == int(t), "%s: %s = %d, torch %d" % (what, key, int(v), int(t))
        elif key.endswith("running_mean") or key.endswith("running_var"):
            assert_parity(v, t, stats_op, what="%s state_dict[%r]" % (what, key))
        else:
            expected = to_numpy(t).dtype
            assert v.dtype == expected, "%s: %s dtype %s, torch %s" % (what, key, v.dtype,
                                                                        expected)
            assert_exact(v, t, what="%s state_dict[%r]" % (what, key))


def load_from_torch(sb_module, torch_module):
    """Copy torch's weights into skipblocks through the public path (torch tensors as values)."""
    result = sb_module.load_state_dict(torch_module.state_dict())
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == [], result
    return sb_module


def randomize_(torch_module, seed=0):
    """Give every BatchNorm non-trivial affine parameters and running statistics
    (torch's defaults 1/0/0/1 would hide a kernel that ignores them), and every
    num_batches_tracked a non-zero count (it matters for momentum=None)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in torch_module.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                if m.weight is not None:
                    m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(c, generator=g) - 0.5)
                if m.running_mean is not None:
                    m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                    m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                    m.num_batches_tracked.fill_(int(torch.randint(1, 10, (1,), generator=g)))
    return torch_module


def set_mode(modules, training):
    for m in modules:
        m.train(training)


# ---------------------------------------------------------------------------
# the document's demos rebuilt with skipblocks (mirror skipblocks.reference)
# ---------------------------------------------------------------------------

def sb_resnet_demo(in_channels=3, width=64, out_channels=128, down_stride=2):
    downsample = sb.Sequential(
        sb.Conv2d(width, out_channels, kernel_size=1, stride=down_stride, bias=False),
        sb.BatchNorm2d(out_channels),
    )
    return sb.Sequential(
        sb.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
        sb.MaxPool2d(kernel_size=2, stride=2),
        sb.ResidualBlock(width, width),
        sb.ResidualBlock(width, width),
        sb.ResidualBlock(width, out_channels, stride=[down_stride, 1], downsample=downsample),
    )


def sb_densenet_demo(in_channels=3, width=64, n_layers=6, growthrate=32, bn_size=4):
    return sb.Sequential(
        sb.Conv2d(in_channels, width, kernel_size=7, padding=3, stride=2, bias=False),
        sb.BatchNorm2d(width),
        sb.MaxPool2d(3, 2),
        sb.DenseBlock(n_layers, width, growthrate=growthrate, bn_size=bn_size),
    )


def sb_se_demo(channel=512, reduction=8):
    return sb.SEAttention(channel=channel, reduction=reduction)


SB_BUILDERS = {"resnet": sb_resnet_demo, "densenet": sb_densenet_demo, "se": sb_se_demo}


def torch_repr_as_skipblocks(text):
    """torch's repr with the document's class names replaced by skipblocks' own."""
    return text.replace("Dense_Block(", "DenseBlock(").replace("Dense_Layer(", "DenseLayer(")


def import_blocker(*blocked):
    """Python source that, run first in a subprocess, makes ``import`` of the
    given top-level packages (and their submodules) fail, and checks that it
    does: the torch-free processes of the no-torch tests."""
    return textwrap.dedent(f"""
        import sys

        class _Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ImportError("blocked for this test: " + name)
                return None

        sys.meta_path.insert(0, _Blocked())
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the torch blocker does not work")
    """)


def is_memory_mapped(array):
    """Whether an array's memory belongs to a memory map (np.memmap or mmap)."""
    import mmap
    base = array
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def without_dropout(module, dropout_type):
    """Every dropout of ``module`` at p = 0 -- its ``dropout_type`` modules
    (nn.Dropout or sb.Dropout) and any layer's ``drop_rate`` (torchvision's
    _DenseLayer) -- so that train-mode outputs can be compared with torch's:
    the masks are not torch's numbers. Returns the module."""
    for m in module.modules():
        if isinstance(m, dropout_type):
            m.p = 0.0
        if hasattr(m, "drop_rate"):
            m.drop_rate = 0.0
    return module


def randomize_network_(torch_module, seed=0):
    """randomize_, then the last BatchNorm weight of every residual branch
    (a Bottleneck's bn3, a BasicBlock's bn2) times 0.3. With every gamma
    drawn in [0.5, 1.5], each of a deep ResNet's blocks adds a branch as
    large as its input, and in train mode (batch statistics over a few
    values per channel at 64 x 64) torch's own float32 result drifts from
    float64 by 1e-3 at ResNet-152's depth; damped branches, as trained
    ResNets have (and zero_init_residual starts from), bring that to 2e-5,
    so the parity bound can stay a small multiple of it. Other networks
    are only randomised."""
    randomize_(torch_module, seed)
    with torch.no_grad():
        for m in torch_module.modules():
            name = type(m).__name__
            last = getattr(m, "bn3", None) if "Bottleneck" in name else \
                getattr(m, "bn2", None) if name == "BasicBlock" else None
            if last is not None and last.weight is not None:
                last.weight.mul_(0.3)
    return torch_module


def network_outputs(result):
    """A network's output as a list of NumPy arrays (torch's or skipblocks'):
    GoogLeNetOutputs gives its three fields, in order; anything else one."""
    results = list(result) if isinstance(result, tuple) else [result]
    return [to_numpy(r) for r in results]

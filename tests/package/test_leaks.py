"""Memory leaks: thousands of calls of each public entry point must not grow
the process's resident memory.

Each case calls one entry point WARMUP times (caches, packed weights and
allocator pools settle), then CALLS times more, and checks three things:
  - the resident set size (/proc/self/statm, what the operating system
    sees, so C allocations count, not only Python objects) grows by at most
    BOUND_BYTES. Inputs are small, so a leak of one output array per call
    (CALLS x 4 KiB = 8 MiB) is four times the bound;
  - the bytes malloc has handed out and not taken back (glibc's mallinfo2:
    uordblks + hblkhd) grow by at most BOUND_BYTES. This is the check a
    leak cannot hide from: in a process that has freed a lot (this test
    after the rest of the suite), a leak reuses freed, already resident
    pages, and the RSS does not move;
  - the memory blocks Python has allocated (sys.getallocatedblocks: every
    object and PyMem buffer, however small) grow by at most BOUND_BLOCKS,
    a tenth of the calls: a leaked tuple or shape per call shows here long
    before it shows in the RSS;
  - the reference counts of the arrays the call reads (inputs, weights,
    buffers) are unchanged: a missing Py_DECREF on an argument costs no
    memory when the same array is passed every time.
test_measurement_sees_a_leak keeps one output per call and must fail the
malloc and block bounds; test_measurement_sees_a_reference_leak must fail
the reference check.

The cases cover every function of skipblocks.functional, every layer and
block class in skipblocks (train and eval where the C call differs), the
paths that repack weights (load_state_dict before each call), in-place
ReLU, the unfused SE gate (a hooked SEAttention), the weight files (save
and load in each format, and a refused file), state_dict round trips,
pickling, the runtime settings, from_torch (1000 calls) and failing calls
(an error path must release what it took, too). Networks are their blocks:
those run the same C entry points as a whole resnet50 would.

Linux only (/proc). Not under AddressSanitizer, whose quarantine holds
freed memory on purpose (.ci/sanitize leaves this file out).
"""

import ctypes
import gc
import os
import pickle
import sys

import numpy as np
import pytest

import skipblocks as sb
import skipblocks.functional as F

WARMUP = 200
CALLS = 2000
BOUND_BYTES = 2 << 20  # 2 MiB
BOUND_BLOCKS = CALLS // 10

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc"),
    pytest.mark.skipif(sb._C.build_info()["sanitize"],
                       reason="ASan's quarantine keeps freed memory resident by design"),
]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2():
    """glibc's mallinfo2 (2.33 and later), or None (another C library)."""
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    function.restype = _MallInfo2
    return function


_MALLINFO2 = _mallinfo2()


def _malloc_bytes():
    """Bytes in use from malloc: small blocks plus mmap'ed large ones."""
    if _MALLINFO2 is None:
        return 0
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _arrays_read_by(call):
    """The arrays a case's closure holds, and its modules' parameters and
    buffers: what the calls pass to skipblocks' C functions."""
    found, seen, todo = [], set(), [call]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            found.append(obj)
        elif isinstance(obj, sb.Module):
            for module in obj.modules():
                todo.extend(v for v in module._parameters.values() if v is not None)
                todo.extend(v for v in module._buffers.values() if v is not None)
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)
        elif callable(obj) and hasattr(obj, "__closure__"):
            todo.extend(cell.cell_contents for cell in obj.__closure__ or ())
            todo.extend(obj.__defaults__ or ())
    return found


def _growth(call, calls=CALLS):
    """(RSS growth in bytes, malloc growth in bytes, allocated-block growth,
    arrays whose reference count changed) over `calls` calls after the
    warm-up."""
    for _ in range(WARMUP):
        call()
    arrays = _arrays_read_by(call)
    gc.collect()
    refs = [sys.getrefcount(a) for a in arrays]
    blocks = sys.getallocatedblocks()
    before, malloc_before = _rss_bytes(), _malloc_bytes()
    for _ in range(calls):
        call()
    gc.collect()
    after = [sys.getrefcount(a) for a in arrays]  # counted as `refs` was
    grown = [a.shape for a, r, r2 in zip(arrays, refs, after) if r2 != r]
    return (_rss_bytes() - before, _malloc_bytes() - malloc_before,
            sys.getallocatedblocks() - blocks, grown)


def _check(name, call, calls=CALLS):
    rss, malloced, blocks, grown = _growth(call, calls)
    assert rss <= BOUND_BYTES, (
        f"{name}: resident memory grew by {rss / 2**20:.2f} MiB over {calls} calls "
        f"(bound {BOUND_BYTES / 2**20:.0f} MiB)")
    assert malloced <= BOUND_BYTES, (
        f"{name}: memory in use from malloc grew by {malloced / 2**20:.2f} MiB over {calls} "
        f"calls (bound {BOUND_BYTES / 2**20:.0f} MiB)")
    assert blocks <= BOUND_BLOCKS, (
        f"{name}: Python's allocated blocks grew by {blocks} over {calls} calls "
        f"(bound {BOUND_BLOCKS})")
    assert not grown, f"{name}: the reference counts of arrays of shapes {grown} changed"


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _raises(error, call):
    def run():
        try:
            call()
        except error:
            return
        raise AssertionError(f"expected {error.__name__}")
    return run


def _module_call(module, x, training=False):
    module.train(training)
    return lambda: module(x)


def _functional_cases():
    x = _x((2, 4, 8, 8))
    w = _x((6, 4, 3, 3), 1)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    b = _x((6,), 2)
    mean, var = np.zeros(4, np.float32), np.ones(4, np.float32)
    lin_w, lin_b = _x((5, 16), 3), _x((5,), 4)
    wt = _x((4, 3, 2, 2), 5)
    return {
        "F.conv2d": lambda: F.conv2d(x, w, b, padding=1),
        "F.conv2d float64": lambda: F.conv2d(x64, w64, padding=1),
        "F.batch_norm eval": lambda: F.batch_norm(x, mean, var),
        "F.batch_norm train": lambda: F.batch_norm(x, mean.copy(), var.copy(), training=True),
        "F.relu": lambda: F.relu(x),
        "F.sigmoid": lambda: F.sigmoid(x),
        "F.max_pool2d": lambda: F.max_pool2d(x, 2),
        "F.avg_pool2d": lambda: F.avg_pool2d(x, 3, 1, 1),
        "F.adaptive_avg_pool2d": lambda: F.adaptive_avg_pool2d(x, (3, 3)),
        "F.linear": lambda: F.linear(_x((3, 16)), lin_w, lin_b),
        "F.cat": lambda: F.cat([x, x], 1),
        "F.conv_transpose2d": lambda: F.conv_transpose2d(x, wt, stride=2),
        "F.pad": lambda: F.pad(x, (1, 1, 2, 2), value=0.5),
        "F.pad refused": _raises(NotImplementedError,
                                 lambda: F.pad(x, (1, 1, 2, 2), mode="reflect")),
        "F.dropout": lambda: F.dropout(x, 0.5, training=True),
        "F.interpolate bilinear": lambda: F.interpolate(x, scale_factor=2, mode="bilinear",
                                                        align_corners=True),
        "F.conv2d refused": _raises(RuntimeError, lambda: F.conv2d(x, _x((6, 3, 3, 3)))),
        "F.linear refused": _raises(RuntimeError, lambda: F.linear(_x((3, 7)), lin_w)),
        "F.batch_norm refused": _raises(RuntimeError,
                                        lambda: F.batch_norm(x, mean[:3], var[:3])),
    }


def _module_cases():
    x8 = _x((2, 8, 8, 8))
    cases = {
        "Conv2d": _module_call(sb.Conv2d(8, 8, 3, padding=1), x8),
        "Conv2d groups stride": _module_call(sb.Conv2d(8, 4, 3, stride=2, groups=4), x8),
        "BatchNorm2d eval": _module_call(sb.BatchNorm2d(8), x8),
        "BatchNorm2d train": _module_call(sb.BatchNorm2d(8), x8, training=True),
        "ReLU": _module_call(sb.ReLU(), x8),
        "Sigmoid": _module_call(sb.Sigmoid(), x8),
        "MaxPool2d": _module_call(sb.MaxPool2d(3, 2, 1), x8),
        "AvgPool2d": _module_call(sb.AvgPool2d(2), x8),
        "AdaptiveAvgPool2d": _module_call(sb.AdaptiveAvgPool2d(1), x8),
        "Linear": _module_call(sb.Linear(8, 3), _x((4, 8))),
        "Flatten": _module_call(sb.Flatten(), x8),
        "Identity": _module_call(sb.Identity(), x8),
        "Dropout train": _module_call(sb.Dropout(0.2), x8, training=True),
        "ConvTranspose2d": _module_call(sb.ConvTranspose2d(8, 4, 2, stride=2), x8),
        "Upsample": _module_call(sb.Upsample(scale_factor=2, mode="nearest"), x8),
        "Sequential conv-bn-relu": _module_call(
            sb.Sequential(sb.Conv2d(8, 8, 3, padding=1, bias=False), sb.BatchNorm2d(8),
                          sb.ReLU()), x8),
        "ResidualBlock eval": _module_call(sb.ResidualBlock(8, 8), x8),
        "ResidualBlock train": _module_call(sb.ResidualBlock(8, 8), x8, training=True),
        "ResidualBlock downsample": _module_call(
            sb.ResidualBlock(8, 16, stride=[2, 1],
                             downsample=sb.Sequential(sb.Conv2d(8, 16, 1, stride=2, bias=False),
                                                      sb.BatchNorm2d(16))), x8),
        "DenseLayer": _module_call(sb.DenseLayer(8, 4, 2), x8),
        "DenseBlock eval": _module_call(sb.DenseBlock(3, 8, 4, 2), x8),
        "DenseBlock train": _module_call(sb.DenseBlock(3, 8, 4, 2), x8, training=True),
        "SEAttention": _module_call(sb.SEAttention(16, 4), _x((2, 16, 4, 4))),
        "SEResidualBlock": _module_call(sb.SEResidualBlock(16, 16, reduction=4),
                                        _x((2, 16, 4, 4))),
        "BasicConv2d": _module_call(sb.BasicConv2d(8, 4, kernel_size=3, padding=1), x8),
        "Inception": _module_call(sb.Inception(8, 4, 4, 4, 2, 2, 2), x8),
        "SEInception": _module_call(sb.SEInception(8, 4, 4, 4, 2, 2, 2, reduction=2), x8),
        "DoubleConv": _module_call(sb.DoubleConv(3, 8), _x((1, 3, 8, 8))),
        "Down": _module_call(sb.Down(8, 8), x8),
        "OutConv": _module_call(sb.OutConv(8, 2), x8),
        "Conv2d refused": _raises(RuntimeError, lambda m=sb.Conv2d(8, 8, 3): m(_x((2, 3, 8, 8)))),
    }
    relu_in_place, scratch = sb.ReLU(inplace=True), x8.copy()
    cases["ReLU inplace"] = lambda: relu_in_place(scratch)
    reloaded = sb.ResidualBlock(8, 8).eval()
    state = reloaded.state_dict()

    def load_then_call():
        reloaded.load_state_dict(state)  # new weight versions: the next call repacks
        return reloaded(x8)
    cases["load_state_dict then forward (repack)"] = load_then_call
    hooked = sb.SEAttention(16, 4).eval()
    hooked.fc[0].register_forward_hook(lambda module, args, output: None)
    se_input = _x((2, 16, 4, 4))
    cases["SEAttention hooked (unfused gate)"] = lambda: hooked(se_input)
    up_bilinear = sb.Up(16, 8, bilinear=True).eval()
    up_transposed = sb.Up(16, 8, bilinear=False).eval()
    small, large = _x((2, 8, 4, 4)), _x((2, 8, 8, 8))
    cases["Up bilinear"] = lambda: up_bilinear(small, large)
    cases["Up transposed"] = lambda: up_transposed(_x((2, 16, 4, 4)), large)
    return cases


def _weights_cases(directory):
    state = sb.ResidualBlock(4, 4).state_dict()
    cases = {}
    for suffix in (".safetensors", ".pth", ".npz"):
        path = os.path.join(directory, "weights" + suffix)
        sb.save(state, path)
        cases["save " + suffix] = lambda path=path: sb.save(state, path)
        cases["load " + suffix] = lambda path=path: sb.load(path)
    broken = os.path.join(directory, "broken.safetensors")
    with open(broken, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    cases["load refused"] = _raises(sb.WeightsFileError, lambda: sb.load(broken))
    return cases


def _api_cases():
    block = sb.ResidualBlock(4, 4)
    state = block.state_dict()
    buffer = pickle.dumps(block)
    isa = sb.get_isa()
    threads = sb.get_num_threads()
    return {
        "state_dict": block.state_dict,
        "load_state_dict": lambda: block.load_state_dict(state),
        "pickle round trip": lambda: pickle.loads(buffer),
        "set_isa": lambda: sb.set_isa(isa),
        "set_num_threads": lambda: sb.set_num_threads(threads),
        "set_num_threads refused": _raises(ValueError, lambda: sb.set_num_threads(0)),
        "build_info": sb._C.build_info,
        "available_isas": sb.available_isas,
        "manual_seed": lambda: sb.manual_seed(0),
    }


CASES = {**_functional_cases(), **_module_cases(), **_api_cases()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_growth(name):
    _check(name, CASES[name])


@pytest.mark.parametrize("name", ["save .safetensors", "load .safetensors", "save .pth",
                                  "load .pth", "save .npz", "load .npz", "load refused"])
def test_no_growth_weight_files(tmp_path, name):
    _check(name, _weights_cases(str(tmp_path))[name])


def test_no_growth_from_torch():
    torch = pytest.importorskip("torch")
    source = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                 torch.nn.ReLU())
    rss, malloced, blocks, _ = _growth(lambda: sb.from_torch(source), calls=CALLS // 2)
    assert rss <= BOUND_BYTES, f"from_torch: resident memory grew by {rss / 2**20:.2f} MiB"
    assert malloced <= BOUND_BYTES, f"from_torch: malloc grew by {malloced / 2**20:.2f} MiB"
    assert blocks <= BOUND_BLOCKS, f"from_torch: Python's allocated blocks grew by {blocks}"


def test_measurement_sees_a_leak():
    """The bounds are tight enough to see one 4 KiB output kept per call."""
    kept = []
    x = _x((1, 1, 32, 32))  # 4 KiB outputs
    _, malloced, blocks, _ = _growth(lambda: kept.append(F.relu(x)))
    assert _MALLINFO2 is not None, "glibc's mallinfo2 is needed (glibc 2.33 or later)"
    assert malloced > BOUND_BYTES, (
        f"a leak of {CALLS} x 4 KiB grew malloc's bytes in use by only {malloced}")
    assert blocks > BOUND_BLOCKS, f"a leak of {CALLS} arrays grew the blocks by only {blocks}"


def test_measurement_sees_a_reference_leak():
    kept = []
    x = _x((1, 1, 4, 4))
    _, _, _, grown = _growth(lambda: kept.append(x) or F.relu(x), calls=10)
    assert grown == [(1, 1, 4, 4)]

"""Shared fixtures for the skipblocks test suite.

torch (pinned to 2.13.0 in the test dependencies) is the oracle everywhere
except ``package/test_no_torch.py``, which runs skipblocks in a subprocess where torch
cannot be imported.
"""

import os
import sys
import zlib

import numpy as np
import pytest

import skipblocks as sb

# Make ``tolerances`` and ``helpers`` importable whatever pytest's import mode.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def rng(request):
    """A NumPy generator seeded from the test's node id: reproducible, distinct per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(autouse=True)
def _seed_torch(request):
    """Seed torch's generator per test so torch-side initialisation is reproducible."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(zlib.crc32(request.node.nodeid.encode()) & 0x7FFFFFFF)
    yield


def pytest_configure(config):
    # torch's own warnings about its oracle computations are noise here
    config.addinivalue_line("filterwarnings", "ignore:Initializing zero-element tensors:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore:Using padding='same' with even kernel:UserWarning")


# -- the fast paths: run a test on one instruction set, or restore threads --

# Every ISA this CPU can run, and on a CPU with AVX2 but without AVX-512,
# "avx512-source": the AVX-512 kernels' source compiled for AVX2, so the
# AVX-512 path's logic is held to the same parity tests here (on a CPU with
# AVX-512, "avx512" itself is a parameter).
ISA_PARAMS = sb.available_isas() + (
    ["avx512-source"] if "avx2" in sb.available_isas() and "avx512" not in sb.available_isas()
    else [])


@pytest.fixture(params=ISA_PARAMS)
def isa(request):
    """Runs the test with the kernels forced to one ISA (every ISA this CPU
    can run is a parameter, so CI covers them all); restores the ISA that
    was selected before (SKIPBLOCKS_ISA may have forced one for the run)."""
    previous = sb.get_isa()
    emulated = request.param == "avx512-source"
    sb.set_isa("avx2" if emulated else request.param)
    if emulated:
        assert sb._C._test_avx512_source_on_avx2(True)
    try:
        yield request.param
    finally:
        if emulated:
            sb._C._test_avx512_source_on_avx2(False)
        sb.set_isa(previous)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """The element type a parity sweep runs in: every layer sweep and block
    test runs once in float32 and once in float64 (torch's .double()
    modules, tests/tolerances.py's float64 column)."""
    return request.param


@pytest.fixture
def restore_threads():
    """Restores the thread count a test changes."""
    original = sb.get_num_threads()
    try:
        yield original
    finally:
        sb.set_num_threads(original)

"""Shared fixtures for the skipblocks test suite.

torch (pinned to 2.13.0 in the test dependencies) is the oracle everywhere
except ``test_no_torch.py``, which runs skipblocks in a subprocess where torch
cannot be imported.
"""

import os
import sys
import zlib

import numpy as np
import pytest

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

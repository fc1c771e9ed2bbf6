"""Wrong uses of skipblocks' API that the stubs must make ``mypy --strict``
reject: each line marked ``# error: <code>`` must get exactly that error, and
no other line any. Not run (several lines would raise), not collected by
pytest; tests/package/test_typing.py checks it. A stub that loosened to Any
would let one of these through and fail the test."""
from __future__ import annotations

import numpy as np

import skipblocks as sb
import skipblocks.functional as F
import skipblocks.parity
from skipblocks import models

x = np.zeros((1, 3, 8, 8), np.float32)

sb.Conv2d("3", 8, 3)  # error: arg-type
sb.Conv2d(3, 8, 3).reset_parameters(1)  # error: call-arg
sb.BatchNorm2d(8, momentum="fast")  # error: arg-type
sb.set_num_threads("2")  # error: arg-type
threads: str = sb.get_num_threads()  # error: assignment
sb.Sequential(sb.ReLU()).append(3)  # error: arg-type
sb.Up(4, 2)(x)  # error: call-arg
F.relu(x, inplace="yes")  # error: arg-type
F.conv3d(x, x)  # error: attr-defined
sb.load("weights.pt", mmap="yes")  # error: arg-type
sb.save({}, "weights.bin", format="pickle")  # error: arg-type
sb.Linear(4, 2).state_dict().missing_keys  # error: attr-defined
handle = sb.ReLU().register_forward_hook(print)
handle.id + "1"  # error: operator
models.googlenet(weights=3)  # error: arg-type
skipblocks.parity.compare(None, 3, x)  # error: arg-type
sb._C.build_info()["compilr"]  # error: typeddict-item
flag: bool = sb.available_isas()  # error: assignment

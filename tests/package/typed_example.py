"""A small program using skipblocks' public API with full annotations.

tests/package/test_typing.py runs ``mypy --strict`` on it (it must pass: the
stubs type every call below) and also runs it, so every line is valid at run
time too. It is not collected by pytest (no test_ prefix)."""
from __future__ import annotations

import os
import sys
import tempfile
from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray

import skipblocks as sb
import skipblocks.functional as F
import skipblocks.parity
from skipblocks import models
from skipblocks.hooks import RemovableHandle
from skipblocks.runtime import unfused


class TinyNet(sb.Module):
    """A user's module: layers as attributes, forward on NumPy arrays."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = sb.Sequential(
            sb.Conv2d(3, 8, kernel_size=3, padding=1, bias=False),
            sb.BatchNorm2d(8),
            sb.ReLU(inplace=True),
        )
        self.block = sb.ResidualBlock(8, 8)
        self.se = sb.SEAttention(channel=8, reduction=4)
        self.pool = sb.AdaptiveAvgPool2d((1, 1))
        self.fc = sb.Linear(8, classes)

    def forward(self, x: NDArray[np.float32]) -> NDArray[Any]:
        y = self.se(self.block(self.stem(x)))
        return self.fc(sb.flatten(self.pool(y), 1))


def build_and_run(x: NDArray[np.float32]) -> tuple[int, ...]:
    net = TinyNet().eval()
    out = net(x)
    logits: NDArray[np.float32] = net.fc(np.ones((2, 8), np.float32))
    assert logits.shape == (2, 10)
    return tuple(out.shape)


def state_dicts(path: str) -> int:
    net = TinyNet()
    state: OrderedDict[str, NDArray[Any]] = net.state_dict()
    weight: NDArray[Any] = state["fc.weight"]
    copy = TinyNet()
    result = copy.load_state_dict({k: v.copy() for k, v in state.items()})
    assert not result.missing_keys and not result.unexpected_keys
    sb.save(dict(state), path)
    loaded: Any = sb.load(path)
    restored = sb.state_dict_from(loaded)
    copy.load_state_dict(restored, strict=True)
    for name, param in copy.named_parameters():
        assert isinstance(name, str) and param.ndim >= 1
    n_buffers = sum(1 for _ in copy.buffers())
    conv = copy.stem[0]
    assert isinstance(conv, sb.Conv2d)
    kernel: tuple[int, int] = conv.kernel_size
    assert kernel == (3, 3)
    return int(weight.size) + n_buffers


def functional(x: NDArray[np.float32]) -> float:
    w = np.full((4, 3, 3, 3), 0.1, np.float32)
    y = F.conv2d(x, w, padding="same")
    y = F.batch_norm(y, None, None, training=True)
    y = F.relu(y)
    y = F.max_pool2d(y, 2)
    y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
    z = F.cat([y, y], dim=1)
    z = F.pad(z, [1, 1, 1, 1])
    z = F.avg_pool2d(z, kernel_size=2, stride=2)
    z = F.dropout(z, p=0.5, training=False)
    return float(F.sigmoid(z).mean())


def hooks_and_runtime(x: NDArray[np.float32]) -> list[str]:
    seen: list[str] = []
    conv = sb.Conv2d(3, 4, 3)

    def record(module: sb.Module, args: tuple[Any, ...], output: Any) -> None:
        seen.append(type(module).__name__)

    handle: RemovableHandle = conv.register_forward_hook(record)
    with conv.register_forward_pre_hook(lambda m, a: None, prepend=True):
        conv(x)
    handle.remove()
    previous = sb.get_num_threads()
    sb.set_num_threads(1)
    with unfused():  # every layer called in turn
        block_out = sb.ResidualBlock(3, 3).eval()(x)
    assert block_out.shape == x.shape
    sb.set_num_threads(previous)
    seen.append(sb.get_isa())
    return seen


def networks() -> int:
    resnet = models.resnet18(num_classes=3)
    dense = models.DenseNet(growth_rate=4, block_config=(1, 1), num_init_features=8,
                            num_classes=3)
    unet = sb.UNet(3, 2, bilinear=True)
    blocks: int = len(resnet.layer1) + len(dense.features)
    up: sb.Module = unet.up1.up
    return blocks + (1 if up is not None else 0)


def parity_signature() -> str:
    # the parity tools' types, without torch (compare needs it at run time)
    table = skipblocks.parity.ParityTable([], tol=1e-4)
    worst: float = table.worst
    return table.to_markdown() + str(worst)


def main() -> int:
    x = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    print(build_and_run(x))
    with tempfile.TemporaryDirectory() as folder:
        print(state_dicts(os.path.join(folder, "tiny.safetensors")))
    print(round(functional(x), 3))
    print(hooks_and_runtime(x))
    print(networks())
    print(len(parity_signature()) > 0, sb.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())

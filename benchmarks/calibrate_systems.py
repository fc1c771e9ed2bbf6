"""The calibration of tests/tolerances.py's entries for the document's other
systems (U-Net, SE inside ResNet and Inception) and their new layers' blocks,
and, with ``--networks``, for the whole networks of skipblocks.models.

    python benchmarks/calibrate_systems.py
    python benchmarks/calibrate_systems.py --networks [name ...]

For each system, at the test suite's shapes, in train and eval mode (train
first, so eval runs on updated running statistics), with the weights and
BatchNorm statistics the tests use (tests/helpers.randomize_), it prints the
tests' metric (skipblocks.reference.parity_error) for

* torch float32 against torch float64 -- the rounding error of an accurate
  float32 computation, which the float32 bound is a small multiple of;
  and the same three for the BatchNorm running statistics after train-mode
  forwards (the ``unet_running_stats`` bound; the blocks' statistics stay
  within the layers' ``running_stats``);
* skipblocks float32 against torch float32 -- what the float32 test checks;
* skipblocks float64 against torch float64 -- what the float64 test checks
  (both sides accurate to ~1e-16 per operation; the float64 bound is a small
  multiple of the largest seen, and far below F64_BLOCK_BOUND);

each the largest over three seeds, beside the table's bounds. A network's
one entry bounds its outputs and its running statistics; its dropouts run
with p = 0 in train mode, as in the tests; GoogLeNet's aux outputs are
measured with its logits. Networks run at the tests' 2x3x64x64 and, for the
one per family the tests also run there, 2x3x224x224 (one seed), with the
tests' weights (tests/helpers.randomize_network_: residual branches damped).

A measurement, not a test.
"""
import copy
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.dirname(HERE))  # the checkout's skipblocks, when not installed

import skipblocks as sb  # noqa: E402
from skipblocks.reference import parity_error  # noqa: E402
from skipblocks.reference import systems as ref  # noqa: E402
from skipblocks.reference import networks as torch_networks  # noqa: E402
from skipblocks import models  # noqa: E402
from helpers import (network_outputs, randomize_, randomize_network_,  # noqa: E402
                     without_dropout)
from tolerances import tolerance  # noqa: E402


def cases():
    """(tolerance entry, label, torch builder, skipblocks builder, input shape)."""
    for bilinear in (False, True):
        for shape in ((2, 3, 17, 19), (2, 3, 16, 16), (2, 3, 33, 20)):  # the tests' shapes
            yield ("unet", "UNet %s %s" % ("bilinear" if bilinear else "transposed",
                                           "x".join(map(str, shape))),
                   lambda b=bilinear: ref.UNet(3, 3, bilinear=b),
                   lambda b=bilinear: sb.UNet(3, 3, bilinear=b), shape)
    yield ("se_residual_block", "SEResidualBlock(64, 64) 2x64x14x14",
           lambda: ref.SEResidualBlock(64, 64), lambda: sb.SEResidualBlock(64, 64),
           (2, 64, 14, 14))
    yield ("se_residual_block", "SEResidualBlock(8, 32, [2, 1], ds) 1x8x11x12",
           lambda: ref.SEResidualBlock(8, 32, [2, 1], nn.Sequential(
               nn.Conv2d(8, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))),
           lambda: sb.SEResidualBlock(8, 32, [2, 1], sb.Sequential(
               sb.Conv2d(8, 32, 1, stride=2, bias=False), sb.BatchNorm2d(32))),
           (1, 8, 11, 12))
    args = (192, 64, 96, 128, 16, 32, 32)
    yield ("inception", "Inception 3a 1x192x28x28", lambda: ref.Inception(*args),
           lambda: sb.Inception(*args), (1, 192, 28, 28))
    yield ("se_inception", "SEInception 3a 1x192x28x28", lambda: ref.SEInception(*args),
           lambda: sb.SEInception(*args), (1, 192, 28, 28))


# skipblocks.models' builder -> the torch reference's (tests/models use the same table)
NETWORK_PAIRS = {name: name.replace("se_resnet", "seresnet") for name in models.__all__
                 if name[0].islower()}
LARGE_INPUT_NETWORKS = ("resnet50", "densenet121", "googlenet", "se_resnet50")


def network_cases(names):
    for name in names:
        sizes = (64, 224) if name in LARGE_INPUT_NETWORKS else (64,)
        for size in sizes:
            yield (name, "%s 2x3x%dx%d" % (name, size, size),
                   torch_networks.NETWORKS[NETWORK_PAIRS[name]], getattr(models, name),
                   (2, 3, size, size))


def measure(entry, label, make_torch, make_sb, shape, seed):
    rows = []
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    randomized = randomize_network_ if entry in NETWORK_PAIRS else randomize_
    t32 = without_dropout(randomized(make_torch(), seed), nn.Dropout)
    t64 = copy.deepcopy(t32).double()
    s32 = without_dropout(make_sb(), sb.Dropout)
    s32.load_state_dict(t32.state_dict())
    s64 = without_dropout(make_sb(), sb.Dropout).double()
    s64.load_state_dict(t64.state_dict())
    for step, training in enumerate((True, False, True, False)):
        x = (rng.standard_normal(shape) + 0.1 * step).astype(np.float32)
        for m in (t32, t64, s32, s64):
            m.train(training)
        with torch.no_grad():
            r32 = network_outputs(t32(torch.from_numpy(x)))
            r64 = network_outputs(t64(torch.from_numpy(x.astype(np.float64))))
        o32, o64 = network_outputs(s32(x)), network_outputs(s64(x.astype(np.float64)))
        rows.append((training,
                     max(parity_error(a, b) for a, b in zip(r32, r64)),
                     max(parity_error(a, b) for a, b in zip(o32, r32)),
                     max(parity_error(a, b) for a, b in zip(o64, r64)))
                    + stats_errors(t32, t64, s32, s64))
    return rows


def stats_errors(t32, t64, s32, s64):
    """The running statistics' errors, as the outputs': (torch32 vs torch64,
    sb32 vs torch32, sb64 vs torch64), the largest over every BatchNorm."""
    worst = [0.0, 0.0, 0.0]
    d32, d64, e32, e64 = (m.state_dict() for m in (t32, t64, s32, s64))
    for key in d32:
        if key.endswith(("running_mean", "running_var")):
            a32, a64 = d32[key].numpy(), d64[key].numpy()
            errs = (parity_error(a32, a64), parity_error(e32[key], a32),
                    parity_error(e64[key], a64))
            worst = [max(w, e) for w, e in zip(worst, errs)]
    return tuple(worst)


def main(argv):
    print("%-44s %5s %-6s %10s %10s %8s  %10s %8s" % (
        "case", "mode", "what", "torch32-64", "sb32-t32", "bound32", "sb64-t64", "bound64"))
    if argv[:1] == ["--networks"]:
        chosen = network_cases(argv[1:] or list(NETWORK_PAIRS))
    else:
        chosen = cases()
    for entry, label, make_torch, make_sb, shape in chosen:
        worst = {}
        for seed in range(1 if shape[-1] > 64 and entry in NETWORK_PAIRS else 3):
            for row in measure(entry, label, make_torch, make_sb, shape, seed):
                w = worst.setdefault(row[0], [0.0] * 6)
                worst[row[0]] = [max(a, b) for a, b in zip(w, row[1:])]
        stats_entry = entry + "_running_stats" if entry == "unet" else \
            entry if entry in NETWORK_PAIRS else "running_stats"
        for training, errs in worst.items():
            for what, (own, e32, e64), key in (("output", errs[:3], entry),
                                               ("stats", errs[3:], stats_entry)):
                if what == "stats" and not training:
                    continue  # eval mode leaves the statistics as they were
                print("%-44s %5s %-6s %10.2e %10.2e %8.0e  %10.2e %8.0e" % (
                    label, "train" if training else "eval", what, own, e32,
                    tolerance(key), e64, tolerance(key, dtype="float64")))


if __name__ == "__main__":
    main(sys.argv[1:])

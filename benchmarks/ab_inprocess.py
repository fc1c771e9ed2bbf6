"""Two builds of skipblocks in one process, forwards alternating: the speed
ratio of a change to a whole network, at the 1 % level this VM's noise hides
from separate processes, and whether the outputs are the same bits.

    python benchmarks/ab_inprocess.py --old /tmp/base --new . \\
        resnet50:1x3x224x224:1 densenet121:1x3x224x224:2 resnet_demo:1x3x100x100:2

Each build is a source tree whose extension was compiled in place (python
setup.py build_ext --inplace). Its ``skipblocks`` package is copied into a
scratch directory under another name (``sb_old``, ``sb_new``: the package
imports itself relatively, and each copy loads its own _C), so both run in
this process, each with its own thread pool. A case is NAME:SHAPE:THREADS,
NAME a builder of skipblocks.demos or skipblocks.models, or ``unet``
(UNet(3, 2) with transposed convolutions). Both models get the same weights
(the old build's seeded init, BatchNorm running statistics drawn from a
NumPy generator, loaded into both) and the same input. The forwards
alternate old, new, old, ... for --seconds; the report is each side's
median and old/new (above 1: the new build is faster), and whether the two
outputs are equal bit for bit. Never imports torch.
"""
import argparse
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np


def load_build(tree, name, scratch):
    src = os.path.join(os.path.abspath(tree), "skipblocks")
    if not os.path.isdir(src):
        sys.exit(f"{tree}: no skipblocks package")
    shutil.copytree(src, os.path.join(scratch, name))
    return importlib.import_module(name)


def build_model(sb, name):
    sb.random.manual_seed(0)
    if name == "unet":
        return importlib.import_module(sb.__name__ + ".unet").UNet(3, 2, bilinear=False)
    demos = importlib.import_module(sb.__name__ + ".demos")
    models = importlib.import_module(sb.__name__ + ".models")
    builder = getattr(demos, name, None) or getattr(models, name, None)
    if builder is None:
        sys.exit(f"no builder {name!r} in skipblocks.demos or skipblocks.models")
    return builder()


def run_case(builds, case, seconds):
    name, shape, threads = case.split(":")
    shape = tuple(int(v) for v in shape.split("x"))
    rng = np.random.default_rng(0)
    models = [build_model(sb, name).eval() for sb in builds]
    state = dict(models[0].state_dict())
    for key, value in state.items():
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
        elif key.endswith("running_mean"):
            state[key] = rng.uniform(-0.1, 0.1, value.shape).astype(value.dtype)
    for model in models:
        model.load_state_dict(state)
    for sb in builds:
        sb.set_num_threads(int(threads))
    x = rng.random(shape, dtype=np.float32)
    outputs = [model(x) for model in models]
    same = outputs[0].shape == outputs[1].shape and np.array_equal(
        outputs[0].view(np.uint32), outputs[1].view(np.uint32))
    times = ([], [])
    start, i = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or min(map(len, times)) < 3:
        t = time.perf_counter()
        models[i % 2](x)
        times[i % 2].append(time.perf_counter() - t)
        i += 1
    old, new = (statistics.median(t) * 1e3 for t in times)
    print(f"{name:14s} {'x'.join(map(str, shape)):12s} {threads} thread(s): old {old:9.3f} ms"
          f"  new {new:9.3f} ms  old/new {old / new:.3f}  bits "
          f"{'equal' if same else 'DIFFER'}  ({len(times[0])} forwards each)", flush=True)
    return same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="source tree of the old build")
    parser.add_argument("--new", required=True, help="source tree of the new build")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="time per case, both builds together (default 8)")
    parser.add_argument("cases", nargs="+", help="NAME:SHAPE:THREADS, e.g. resnet50:1x3x224x224:1")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        sys.path.insert(0, scratch)
        builds = [load_build(args.old, "sb_old", scratch), load_build(args.new, "sb_new", scratch)]
        results = [run_case(builds, case, args.seconds) for case in args.cases]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

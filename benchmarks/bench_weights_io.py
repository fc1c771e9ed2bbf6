"""Reading weight files: skipblocks.load against torch.load(weights_only=True)
and the safetensors package, on a state_dict with ResNet-50's tensor shapes
(about 25.6 M float32 parameters, 98 MB), written by torch and safetensors.

Each reader runs in rounds, alternating, and the median of each is reported
with the ratio other / skipblocks (above 1: skipblocks is faster). Files are
read from the page cache (each is read once before timing).

    python benchmarks/bench_weights_io.py [--rounds 7]
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from safetensors.numpy import load_file as safetensors_load
from safetensors.torch import save_file

import skipblocks as sb


def resnet50_like_state_dict():
    """ResNet-50's parameter and buffer shapes, random values."""
    g = torch.Generator().manual_seed(0)
    sd, inplanes = {}, 64
    sd["conv1.weight"] = torch.randn(64, 3, 7, 7, generator=g)
    for name in ("bn1",):
        for key in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{name}.{key}"] = torch.randn(64, generator=g)
        sd[f"{name}.num_batches_tracked"] = torch.tensor(0)
    for layer, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], 1):
        for block in range(blocks):
            prefix = f"layer{layer}.{block}"
            shapes = [(planes, inplanes, 1, 1), (planes, planes, 3, 3), (planes * 4, planes, 1, 1)]
            for index, shape in enumerate(shapes, 1):
                sd[f"{prefix}.conv{index}.weight"] = torch.randn(*shape, generator=g)
                for key in ("weight", "bias", "running_mean", "running_var"):
                    sd[f"{prefix}.bn{index}.{key}"] = torch.randn(shape[0], generator=g)
                sd[f"{prefix}.bn{index}.num_batches_tracked"] = torch.tensor(0)
            if block == 0:
                sd[f"{prefix}.downsample.0.weight"] = torch.randn(planes * 4, inplanes, 1, 1,
                                                                  generator=g)
            inplanes = planes * 4
    sd["fc.weight"] = torch.randn(1000, 2048, generator=g)
    sd["fc.bias"] = torch.randn(1000, generator=g)
    return sd


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp()
    sd = resnet50_like_state_dict()
    pt, st = os.path.join(folder, "r50.pth"), os.path.join(folder, "r50.safetensors")
    torch.save(sd, pt)
    save_file(sd, st)
    readers = {
        "pt: skipblocks.load": lambda: sb.load(pt),
        "pt: skipblocks.load(mmap=True)": lambda: sb.load(pt, mmap=True),
        "pt: torch.load(weights_only=True)": lambda: torch.load(pt, weights_only=True),
        "pt: torch.load(weights_only=True, mmap=True)":
            lambda: torch.load(pt, weights_only=True, mmap=True),
        "safetensors: skipblocks.load": lambda: sb.load(st),
        "safetensors: skipblocks.load(mmap=True)": lambda: sb.load(st, mmap=True),
        "safetensors: safetensors.numpy.load_file": lambda: safetensors_load(st),
    }
    times = {name: [] for name in readers}
    for reader in readers.values():
        reader()
    for _ in range(args.rounds):
        for name, reader in readers.items():
            start = time.perf_counter()
            result = reader()
            times[name].append(time.perf_counter() - start)
            del result
    print(f"{os.path.getsize(pt) / 1e6:.1f} MB .pth, {os.path.getsize(st) / 1e6:.1f} MB "
          f".safetensors, {len(sd)} tensors; medians of {args.rounds} alternating rounds")
    base = {"pt": statistics.median(times["pt: skipblocks.load"]),
            "safetensors": statistics.median(times["safetensors: skipblocks.load"])}
    for name, values in times.items():
        median = statistics.median(values)
        kind = name.split(":")[0]
        print(f"{name:48s} {median * 1e3:8.2f} ms   {median / base[kind]:5.2f}x skipblocks.load")


if __name__ == "__main__":
    np.random.seed(0)
    main()

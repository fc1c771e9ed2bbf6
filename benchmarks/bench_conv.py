"""Lone convolutions of ResNet-50's shapes at batch 1: time and % of the FMA peak.

    python benchmarks/bench_conv.py                       # 1 thread, every shape
    python benchmarks/bench_conv.py --threads 2 --batch 8
    python benchmarks/bench_conv.py --shapes 0 1 8        # some rows only
    python benchmarks/bench_conv.py --root /work/baseline # another build's tree
    python benchmarks/bench_conv.py --blocked --cold      # as inside a planned network

What tuning a kernel needs between two builds (run each build's tree in turn,
--root, and compare the tables): the 1x1 convolutions at 56x56 down to 7x7
(ResNet-50's bottlenecks, torchvision's v1.5 layout), layer2's stride-2 1x1
downsample and the stride-1 3x3 convolution of each stage. Each shape is an
eval-mode skipblocks.Conv2d without bias on a standard-normal input. Method:
one call per shape while setting up (which also packs its weights), 1 s of
calls of the first shape, then --rounds rounds over every shape in turn; per
round and shape the fastest of 3 batches of calls (each about 0.1 s of work
at the peak); the figure is the median over the rounds, with the spread of
the rounds beside it. FLOPs are 2 x multiply-adds; the peak is --peak
GFLOP/s per thread times --threads; by default it is measured here:
benchmarks/fma_peak.c at one thread (the best of three 0.5 s runs, common.run_peak),
with 512-bit FMAs when skipblocks runs its AVX-512 kernels, else 256-bit. Nothing is written: the table goes to stdout with
the machine and build lines of common.py.

--blocked runs each convolution as a planned network does, on a channel-blocked
input into a blocked output (skipblocks._blocked.conv, internal). --cold
writes a 64 MiB buffer before every call (evicting the caches: the weights,
the input and the output's memory come from DRAM, as for a network's layer
whose weights were last read one forward ago) and times the calls one by
one: per round the median of 9 calls.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# (C_in, C_out, input size, kernel, stride)
SHAPES = [
    (64, 256, 56, 1, 1), (256, 64, 56, 1, 1), (64, 64, 56, 1, 1), (256, 128, 56, 1, 1),
    (128, 512, 28, 1, 1), (512, 128, 28, 1, 1), (256, 1024, 14, 1, 1), (1024, 256, 14, 1, 1),
    (512, 2048, 7, 1, 1), (2048, 512, 7, 1, 1), (256, 512, 56, 1, 2),
    (64, 64, 56, 3, 1), (128, 128, 28, 3, 1), (256, 256, 14, 3, 1), (512, 512, 7, 3, 1),
]


def measured_peak(sb):
    """(GFLOP/s of one thread, how it was measured) from fma_peak.c, at the
    vector width of the ISA skipblocks runs; exits when it cannot run."""
    width = 512 if sb.runtime.get_isa() == "avx512" else 256
    with tempfile.TemporaryDirectory(prefix="skipblocks-peak-") as workdir:
        exe, build = common.build_peak(workdir)
        if exe is None:
            sys.exit("bench_conv: %s; give --peak" % build)
        runs = common.run_peak(exe, width=width)
    if not isinstance(runs, list):
        sys.exit("bench_conv: %s; give --peak" % runs)
    return max(r[0] for r in runs), "fma_peak.c, %d-bit, one thread x threads" % width


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", type=int, nargs="+", help="row numbers of SHAPES")
    ap.add_argument("--peak", type=float, default=None,
                    help="GFLOP/s per thread (default: measured with fma_peak.c)")
    ap.add_argument("--root", help="a source tree with an in-place build to import instead")
    ap.add_argument("--blocked", action="store_true",
                    help="channel-blocked input and output, as in a planned network")
    ap.add_argument("--cold", action="store_true",
                    help="evict the caches before every call (64 MiB written)")
    args = ap.parse_args(argv)
    if args.root:
        root = os.path.abspath(args.root)
        sys.path.insert(0, root)
        import skipblocks as sb
        if not os.path.abspath(sb.__file__).startswith(root + os.sep):
            sys.exit("--root %s: skipblocks was imported from %s instead (no in-place build "
                     "there?)" % (root, sb.__file__))
    else:
        sb = common.import_skipblocks()
    sb.set_num_threads(args.threads)
    per_thread, how = (args.peak, "--peak") if args.peak else measured_peak(sb)
    peak = per_thread * 1e9 * args.threads
    rng = np.random.default_rng(0)
    rows = args.shapes if args.shapes else range(len(SHAPES))
    cases = []
    for i in rows:
        c_in, c_out, size, k, stride = SHAPES[i]
        conv = sb.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False).eval()
        x = rng.standard_normal((args.batch, c_in, size, size), dtype=np.float32)
        out = conv(x).shape[2]
        flops = 2 * args.batch * c_in * c_out * out * out * k * k
        label = "%4d -> %4d  %dx%d s%d  %3dx%-3d" % (c_in, c_out, k, k, stride, size, size)
        if args.blocked:
            from skipblocks import _blocked
            xb = _blocked.to_blocked(x, "bench")
            run = (lambda conv, xb: lambda: _blocked.conv(conv, xb))(conv, xb)
        else:
            run = (lambda conv, x: lambda: conv(x))(conv, x)
        cases.append((label, run, flops, max(3, int(0.1 * peak / flops))))
    evict = np.zeros(64 << 18, np.float32) if args.cold else None  # 64 MiB
    start = time.perf_counter()
    while time.perf_counter() - start < 1.0:
        cases[0][1]()
    times = {label: [] for label, *_ in cases}
    for _ in range(args.rounds):
        for label, run, flops, calls in cases:
            if evict is not None:
                one = []
                for _ in range(9):
                    evict += 1.0
                    t = time.perf_counter()
                    run()
                    one.append(time.perf_counter() - t)
                times[label].append(statistics.median(one))
                continue
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(calls):
                    run()
                best = min(best, (time.perf_counter() - t) / calls)
            times[label].append(best)
    print(common.machine_line())
    print(common.build_line(common.build_info(sb)))
    print("threads %d, batch %d, %d rounds, peak %.1f GFLOP/s (%s)%s%s" % (
        args.threads, args.batch, args.rounds, peak / 1e9, how,
        ", blocked" if args.blocked else "", ", caches evicted before each call"
        if args.cold else ""))
    for label, run, flops, calls in cases:
        t = statistics.median(times[label])
        print("%s  %8.3f ms  %5.1f %% of peak  (rounds %.3f-%.3f ms)" % (
            label, t * 1e3, flops / t / peak * 100, min(times[label]) * 1e3,
            max(times[label]) * 1e3))


if __name__ == "__main__":
    main()

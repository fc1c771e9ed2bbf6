"""Benchmark skipblocks against torch on the document's demos.

    python benchmarks/bench_demos.py                 # 20 timed runs per case, torch at 1 thread
    python benchmarks/bench_demos.py --quick         # smoke run
    python benchmarks/bench_demos.py --threads 1 2 --cases resnet conv
    python benchmarks/bench_demos.py --threads 1 2 --cases '*-doc' --dtypes float64

Cases: the document's three demos at the document's shapes (train and eval),
the ResNet and DenseNet demos at 8x3x224x224 (eval), and one 3x3 64->64
convolution on 8x64x56x56 (the hot kernel of both), each in float32 and in
float64 (--dtypes; float64 = both sides' modules after .double(), on the
same values). Everything runs in this one process: torch under
torch.no_grad() with torch.set_num_threads(n), skipblocks on the same input
with the same weights. Below the table, skipblocks' own float64/float32
time ratio per case.

Method: warm-up runs, then runs that alternate torch and skipblocks (and
alternate which goes first), so drift in machine load hits both sides alike.
Reported: medians with [min-max]; ratio = torch time / skipblocks time (> 1
means skipblocks is faster). "threads" is torch's thread count. skipblocks
is given the same count (skipblocks.set_num_threads; a build without it
computes on one thread); the "sb thr" column and the JSON record what
skipblocks really used.

Networks (skipblocks.models against skipblocks.reference.networks, the torch
references written from torchvision's and timm's source): resnet18, resnet50,
densenet121, googlenet and se_resnet50 at 1x3x224x224 and 8x3x224x224 (cases
``<name>-b1`` and ``<name>-b8``, eval). The networks issue's table:

    python benchmarks/bench_demos.py --cases 'resnet18-*' 'resnet50-*' \
        'densenet121-*' 'googlenet-*' 'se_resnet50-*' --threads 1 2 --repeats 3 \
        --dtypes float32 --no-breakdown

Further cases: the document's other systems -- UNet (transposed and bilinear)
at 1x3x256x256 (eval), SEResidualBlock(128, 128) on 8x128x28x28 and
SEInception (GoogLeNet's inception3a with SE) on 8x192x28x28 (eval and
train).

After the table, per-layer breakdowns (--breakdowns; default all) of the
ResNet demo and of both UNets at 1x3x256x256, whose ``up*.up`` rows are the
ConvTranspose2d and the bilinear interpolate: the wall time of
each named submodule's call (children included), measured by wrapping the
forwards as skipblocks.parity does -- on skipblocks' default fused path and
with every layer called in turn -- next to torch's per-module time from
forward pre/post hooks.

GFLOP/s and % of peak (the 3x3 convolution case, the only one with a FLOP
count): 2*N*C_out*H_out*W_out*C_in*9 FLOPs whatever the algorithm, divided
by the median time. The peak is measured, not looked up: benchmarks/fma_peak.c
(a throughput loop of independent FMAs) is compiled with the system C
compiler into a temporary directory and run three times for 0.5 s on one
thread; the best of the three is the single-core peak. Its rate is per second
of the thread's CPU time (the wall rate is recorded too): on a machine shared
with other work, time slicing lowers the wall rate but not the core's
throughput, and a depressed peak would inflate % of peak. The 256-bit peak
(AVX2 + FMA3) is always measured; on a CPU whose flags show AVX-512F the
512-bit peak is measured the same way, and the JSON records both. A row's
% of peak is against the peak of the vector width skipblocks uses, times the
threads it used: the 512-bit peak when skipblocks.get_isa() is 'avx512' (and
that peak was measured), else the 256-bit one; the header says which. On a
CPU without AVX-512F the 512-bit peak cannot be measured (and skipblocks has
no 'avx512' path there), and the header says so. If the program cannot be
built or run, the header gives the reason and % of peak is left empty.

Above the table: the machine (CPU model, family/model, avx2/fma/avx512f
flags, core count), skipblocks' ISA, the versions, which build (git commit,
extension hash), the date and the command line; the JSON records the same
under "meta".

Two other measurements run each in its own process,
so they are separate scripts: bench_torch_interference.py (skipblocks at 2
threads with and without torch in the process) and bench_memory.py (peak
memory of a forward call).

Timings are measurements, not tests: nothing here asserts on speed.
"""
import argparse
import fnmatch
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import (RESULTS, avx512_peak_skip_reason, build_info, build_line,  # noqa: F401
                    build_peak, command_line, format_rows, import_skipblocks, load_average,
                    load_line, machine_info, machine_line, now_utc, run_peak, write_json)

skipblocks = import_skipblocks()

import torch  # noqa: E402 (after skipblocks: its import must not depend on torch)

from skipblocks import demos, parity
from skipblocks import reference as ref

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_JSON = os.path.join(RESULTS, "latest.json")


# -- cases ----------------------------------------------------------------
def _conv_pair():
    theirs = torch.nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1, bias=False)
    return theirs, skipblocks.Conv2d(64, 64, kernel_size=3, stride=1, padding=1, bias=False)


def _conv_flops(shape):
    n, cin, h, w = shape
    cout, k = 64, 3
    oh, ow = h, w  # stride 1, pad 1
    return 2 * n * cout * oh * ow * cin * k * k


def _demo_pair(name):
    return lambda: (ref.DOCUMENT_INPUTS[name]["builder"](), demos.DEMOS[name][0]())


def _systems_pair(name, *args, **kwargs):
    """(torch reference, skipblocks twin) of one of the document's other
    systems (skipblocks.reference.systems), the torch side's BatchNorms with
    non-trivial statistics, as the tests build them."""
    from skipblocks.reference import systems

    def build():
        return (_with_statistics(getattr(systems, name)(*args, **kwargs)),
                getattr(skipblocks, name)(*args, **kwargs))
    return build


def _with_statistics(theirs):
    """The torch module with non-trivial BatchNorm running statistics."""
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return theirs


def _network_pair(name):
    """(torch reference, skipblocks builder's network) of skipblocks.models'
    ``name``: the references of skipblocks.reference.networks, written from
    torchvision's and timm's published source, with non-trivial BatchNorm
    statistics."""
    def build():
        from skipblocks import models
        from skipblocks.reference import networks
        theirs = networks.NETWORKS[name.replace("se_resnet", "seresnet")]()
        return _with_statistics(theirs), getattr(models, name)()
    return build


NETWORKS = ("resnet18", "resnet50", "densenet121", "googlenet", "se_resnet50")

# (case, builder of (torch module, skipblocks module), input shape, how the
# input is drawn, modes, FLOP count function or None)
CASES = [
    ("resnet-doc", _demo_pair("resnet"), (1, 3, 100, 100), "rand", ("eval", "train"), None),
    ("densenet-doc", _demo_pair("densenet"), (1, 3, 100, 100), "rand", ("eval", "train"), None),
    ("se-doc", _demo_pair("se"), (50, 512, 7, 7), "randn", ("eval", "train"), None),
    ("resnet-224", _demo_pair("resnet"), (8, 3, 224, 224), "rand", ("eval",), None),
    ("densenet-224", _demo_pair("densenet"), (8, 3, 224, 224), "rand", ("eval",), None),
    ("conv3x3-64", _conv_pair, (8, 64, 56, 56), "randn", ("eval",), _conv_flops),
    # the document's other systems: U-Net (2.3), SE inside ResNet and Inception (4.2)
    ("unet-256", _systems_pair("UNet", 3, 2), (1, 3, 256, 256), "rand", ("eval",), None),
    ("unet-bilinear-256", _systems_pair("UNet", 3, 2, bilinear=True), (1, 3, 256, 256), "rand",
     ("eval",), None),
    ("se-residual-28", _systems_pair("SEResidualBlock", 128, 128), (8, 128, 28, 28), "randn",
     ("eval", "train"), None),
    ("se-inception-28", _systems_pair("SEInception", 192, 64, 96, 128, 16, 32, 32),
     (8, 192, 28, 28), "randn", ("eval", "train"), None),
] + [
    # whole networks (skipblocks.models) at batch 1 and 8, eval
    ("%s-b%d" % (name, batch), _network_pair(name), (batch, 3, 224, 224), "rand", ("eval",),
     None) for name in NETWORKS for batch in (1, 8)
]

# The per-layer breakdowns: (name, builder, input shape). The U-Net ones give
# ConvTranspose2d (up*.up, transposed) and interpolate (up*.up, bilinear)
# rows of their own.
BREAKDOWNS = {
    "resnet": (_demo_pair("resnet"), None),
    "unet": (_systems_pair("UNet", 3, 2), (1, 3, 256, 256)),
    "unet-bilinear": (_systems_pair("UNet", 3, 2, bilinear=True), (1, 3, 256, 256)),
}


# -- machine and peak ---------------------------------------------------------
def _best(runs, error):
    return max(r[0] for r in runs) if runs and not error else None


def peak_report(runs, build, error, isa, runs_512=(), error_512=None):
    """The peak as the JSON records it. An FMA loop cannot run faster than the
    hardware, so the best run (the least disturbed) is the estimate, not the
    median. The keys without a suffix are the 256-bit peak (as before the
    512-bit one existed); "*_512" the 512-bit peak, None with "avx512" saying
    why when it was not measured. "pct_of_peak_basis" is the peak % of peak
    is against: the width skipblocks' ISA in use (isa) computes with."""
    gflops, gflops_512 = _best(runs, error), _best(runs_512, error_512)
    if isa == "avx512" and gflops_512 is not None:
        basis = {"vector_bits": 512, "gflops_1core": gflops_512,
                 "why": "skipblocks' ISA in use is 'avx512' (512-bit FMAs)"}
    elif isa == "avx512":
        # The 256-bit peak is lower than a 512-bit one can be: % of peak overstates.
        basis = {"vector_bits": 256 if gflops is not None else None, "gflops_1core": gflops,
                 "why": "skipblocks' ISA in use is 'avx512' but the 512-bit peak was not "
                        "measured; 512-bit FMAs can exceed the 256-bit peak, so % of peak "
                        "may overstate"}
    else:
        basis = {"vector_bits": 256 if gflops is not None else None, "gflops_1core": gflops,
                 "why": f"skipblocks' ISA in use is '{isa}' (no wider than 256-bit)"}
    basis["isa"] = isa
    return {"vector": "256-bit (AVX2 + FMA3), 12 independent FMA chains, one thread",
            "build": build, "error": error,
            "runs_gflops_cpu_time": [r[0] for r in runs],
            "runs_gflops_wall_time": [r[1] for r in runs],
            "gflops_1core": gflops,
            "vector_512": "512-bit (AVX-512F), 12 independent FMA chains, one thread",
            # A string either way, as before: how the 512-bit peak went.
            "avx512": "measured: gflops_1core_512" if gflops_512 is not None else
            error_512 or "not measured",
            "runs_gflops_cpu_time_512": [r[0] for r in runs_512],
            "runs_gflops_wall_time_512": [r[1] for r in runs_512],
            "gflops_1core_512": gflops_512,
            "pct_of_peak_basis": basis}


def format_header(meta):
    p = meta["peak"]
    lines = [
        f"machine:   {machine_line(meta['machine_info'])}",
        f"software:  skipblocks {meta['skipblocks']} (ISA in use: {meta['skipblocks_isa']}; "
        f"available: {', '.join(meta['skipblocks_isas'])}), torch {meta['torch']}, numpy "
        f"{meta['numpy']}, python {meta['python']}",
        f"build:     {build_line(meta['skipblocks_build'])}",
    ]
    def measured(suffix):
        cpu = ", ".join(f"{v:.1f}" for v in p["runs_gflops_cpu_time" + suffix])
        wall = ", ".join(f"{v:.1f}" for v in p["runs_gflops_wall_time" + suffix])
        return (f"{p['gflops_1core' + suffix]:.1f} GFLOP/s on one core = best of [{cpu}] "
                f"per CPU second ([{wall}] per wall second); {p['vector' + suffix]}")

    basis = p.get("pct_of_peak_basis") or {}
    if p["gflops_1core"] is not None:
        lines.append(f"peak:      256-bit: {measured('')}")
    else:
        lines.append(f"peak:      256-bit: not available ({p['error']})")
    if p.get("gflops_1core_512") is not None:
        lines.append(f"           512-bit: {measured('_512')}")
    else:
        lines.append(f"           512-bit: {p['avx512']}")
    if basis.get("gflops_1core") is not None:
        lines.append(f"           % of peak is against the {basis['vector_bits']}-bit peak: "
                     f"{basis['why']}")
    else:
        lines.append("           % of peak left empty: no peak measured")
    lines += [f"date:      {meta['date']}",
              f"load:      {load_line(*meta['load_average_1min'])}",
              f"command:   {meta['command']}   (in {meta['cwd']})",
              f"method:    {meta['warmup']} warm-up + {meta['repeats']} timed runs per side, "
              "alternating torch/skipblocks, torch under no_grad"]
    return "\n".join(lines)


# -- threads ----------------------------------------------------------------
def _sb_thread_api():
    """(set, get) of skipblocks' thread count, or None for a single-threaded
    build. The public API is preferred; the extension's is the fallback while
    the Python wrapper is not there yet."""
    for owner in (skipblocks, getattr(skipblocks, "_C", None)):
        setter = getattr(owner, "set_num_threads", None)
        getter = getattr(owner, "get_num_threads", None)
        if setter is not None and getter is not None:
            return setter, getter
    return None


def set_threads(n):
    """torch to n threads, skipblocks too when it can; returns skipblocks' count."""
    torch.set_num_threads(n)
    api = _sb_thread_api()
    if api is None:
        return 1
    api[0](n)
    return int(api[1]())


# -- timing ---------------------------------------------------------------
def _summary(seconds):
    ms = [s * 1e3 for s in seconds]
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "runs": len(ms)}


def time_pair(theirs, ours, x, warmup, repeats):
    """Median-able wall times (seconds) of torch and skipblocks on x."""
    xt = torch.from_numpy(x.copy())

    def run_torch():
        start = time.perf_counter()
        theirs(xt)
        return time.perf_counter() - start

    def run_ours():
        start = time.perf_counter()
        ours(x)
        return time.perf_counter() - start

    with torch.no_grad():
        for _ in range(warmup):
            run_torch()
            run_ours()
        t_times, o_times = [], []
        for i in range(repeats):
            # Alternate who goes first: neither side always runs on a cache
            # the other has just warmed (or thrashed).
            if i % 2 == 0:
                t_times.append(run_torch())
                o_times.append(run_ours())
            else:
                o_times.append(run_ours())
                t_times.append(run_torch())
    return t_times, o_times


def run_cases(cases, threads, warmup, repeats, seed, log, dtypes=("float32",)):
    results = []
    for n_threads in threads:
        sb_threads = set_threads(n_threads)
        for case, builder, shape, how, modes, flops_of in cases:
            for dtype in dtypes:
                # the same weights and input values for every dtype and thread count
                rng = np.random.default_rng([seed, [c[0] for c in CASES].index(case)])
                torch.manual_seed(seed)
                skipblocks.manual_seed(seed)
                theirs, ours = builder()
                if dtype == "float64":
                    theirs, ours = theirs.double(), ours.double()
                ours.load_state_dict(theirs.state_dict())
                x = (rng.random(shape) if how == "rand" else rng.standard_normal(shape)).astype(
                    np.float32).astype(dtype)
                for mode in modes:
                    theirs.train(mode == "train")
                    ours.train(mode == "train")
                    log(f"  {case} {dtype} {mode} torch-threads={n_threads} ...")
                    t_times, o_times = time_pair(theirs, ours, x, warmup, repeats)
                    t, o = _summary(t_times), _summary(o_times)
                    row = {"case": case, "dtype": dtype, "input_shape": list(shape), "mode": mode,
                           "threads": n_threads, "skipblocks_threads": sb_threads,
                           "torch_ms": t, "skipblocks_ms": o,
                           "ratio": t["median"] / o["median"], "gflops": None}
                    if flops_of is not None:
                        flops = flops_of(shape)
                        row["flops"] = flops
                        # flops / ms / 1e6 = GFLOP/s
                        row["gflops"] = {"torch": flops / t["median"] / 1e6,
                                         "skipblocks": flops / o["median"] / 1e6}
                    results.append(row)
    return results


def add_peak_fraction(results, basis):
    """% of peak for rows with a FLOP count: skipblocks' GFLOP/s against the
    single-core peak of the vector width skipblocks uses (basis, the peak
    record's "pct_of_peak_basis") times the threads skipblocks ran on
    (1 thread: the single-core peak)."""
    peak_1core = basis["gflops_1core"]
    for r in results:
        r["peak_gflops"] = r["pct_of_peak"] = r["peak_vector_bits"] = None
        if r["gflops"] is not None and peak_1core:
            r["peak_vector_bits"] = basis["vector_bits"]
            # fma_peak.c times float32 FMAs; a vector holds half as many
            # doubles at the same instruction rate
            per_dtype = 0.5 if r.get("dtype") == "float64" else 1.0
            r["peak_gflops"] = peak_1core * per_dtype * r["skipblocks_threads"]
            r["pct_of_peak"] = 100.0 * r["gflops"]["skipblocks"] / r["peak_gflops"]


# -- per-layer breakdown ----------------------------------------------------
def _median_calls(runs):
    """[[(layer, type, seconds)] per run] -> (display names in call order,
    {display name: (type, median ms)}). Each call of a module used several
    times (ResidualBlock's shared bn) is its own entry: bn#1, bn#2."""
    names = parity._display_names(runs[0])
    return names, {display: (runs[0][j][1], statistics.median(r[j][2] * 1e3 for r in runs))
                   for j, display in enumerate(names)}


def _time_ours(ours, x, warmup, repeats):
    runs, calls = [], []

    def record(layer, module, result, seconds, kind):
        calls.append((layer, type(module).__name__, seconds))

    with parity.hook_forwards(ours, record):
        for i in range(warmup + repeats):
            calls.clear()
            ours(x)
            if i >= warmup:
                runs.append(list(calls))
    return _median_calls(runs)


def _time_torch(theirs, xt, warmup, repeats):
    runs, calls = [], []
    starts = {}  # module -> stack of start times (a module may be re-entered)

    def pre(module, args):
        starts.setdefault(module, []).append(time.perf_counter())

    def make_post(layer):
        def post(module, args, output):
            calls.append((layer, type(module).__name__,
                          time.perf_counter() - starts[module].pop()))
        return post

    handles = []
    for layer, module in theirs.named_modules():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(make_post(layer)))
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                calls.clear()
                theirs(xt)
                if i >= warmup:
                    runs.append(list(calls))
    finally:
        for h in handles:
            h.remove()
    return _median_calls(runs)


def layer_breakdown(name, warmup, repeats, seed, mode="eval"):
    """Median ms per named submodule call, children included: skipblocks on
    its default fused path, skipblocks with every layer called in turn
    (runtime.unfused, when the build has fused paths) and torch.

    On the fused path a layer folded into another has no row of its own, and
    a call's time includes the work fused into it (conv1's row in eval mode
    includes the folded BatchNorm and the ReLU)."""
    torch.manual_seed(seed)
    skipblocks.manual_seed(seed)
    builder, shape = BREAKDOWNS[name]
    theirs, ours = builder()
    ours.load_state_dict(theirs.state_dict())
    theirs.train(mode == "train")
    ours.train(mode == "train")
    x = ref.document_input(name, seed).numpy() if shape is None else \
        np.random.default_rng(seed).random(shape).astype(np.float32)

    fused_names, fused = _time_ours(ours, x, warmup, repeats)
    with parity._unfused():
        unfused_names, unfused = _time_ours(ours, x, warmup, repeats)
    torch_names, theirs_ms = _time_torch(theirs, torch.from_numpy(x.copy()), warmup, repeats)

    rows = []
    # torch's call order lists every layer; then anything only skipblocks called.
    for display in torch_names + [n for n in unfused_names + fused_names
                                  if n not in theirs_ms]:
        if any(r["layer"] == (display or "(model)") for r in rows):
            continue
        type_name = (theirs_ms.get(display) or unfused.get(display) or fused.get(display))[0]
        rows.append({"layer": display or "(model)", "type": type_name,
                     "skipblocks_ms": fused.get(display, (None, None))[1],
                     "skipblocks_unfused_ms": unfused.get(display, (None, None))[1],
                     "torch_ms": theirs_ms.get(display, (None, None))[1]})
    return {"demo": name, "mode": mode, "input_shape": list(x.shape), "rows": rows}


# -- output -------------------------------------------------------------------
def _ms(s):
    return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"


def format_table(results):
    headers = ["case", "dtype", "input shape", "mode", "threads", "sb thr", "torch ms",
               "skipblocks ms", "ratio", "GFLOP/s torch", "GFLOP/s sb", "% of peak"]
    lines = []
    for r in results:
        g, pct = r["gflops"], r.get("pct_of_peak")
        lines.append([r["case"], r.get("dtype", "float32"), "x".join(map(str, r["input_shape"])),
                      r["mode"],
                      str(r["threads"]), str(r["skipblocks_threads"]), _ms(r["torch_ms"]),
                      _ms(r["skipblocks_ms"]), f"{r['ratio']:.2f}",
                      "-" if g is None else f"{g['torch']:.1f}",
                      "-" if g is None else f"{g['skipblocks']:.1f}",
                      # blank, not "-": a FLOP count exists but no peak was measured
                      ("" if g is not None else "-") if pct is None else f"{pct:.0f} %"])
    out = format_rows(headers, lines, right=set(range(4, len(headers))))
    out.append("ms: median [min-max]; ratio = torch / skipblocks (> 1: skipblocks faster); "
               "threads = torch's, sb thr = skipblocks' (1 when its build has no threads).")
    out.append("GFLOP/s = 2*N*C_out*H_out*W_out*C_in*9 / median time; % of peak = skipblocks' "
               "GFLOP/s / (sb thr x measured single-core FMA peak of the vector width skipblocks "
               "uses, see the header; half of it for float64).")
    own = dtype_ratios(results)
    if own:
        out.append("")
        out.append("skipblocks' own float64 time / its float32 time (same case, mode, threads):")
        out += format_rows(["case", "mode", "threads", "float32 ms", "float64 ms", "f64 / f32"],
                           [[r["case"], r["mode"], str(r["threads"]), f"{r['float32_ms']:.2f}",
                             f"{r['float64_ms']:.2f}", f"{r['f64_over_f32']:.2f}"] for r in own],
                           right={2, 3, 4, 5})
    return "\n".join(out)


def dtype_ratios(results):
    """skipblocks' float64 median over its float32 median, for every case,
    mode and thread count measured in both dtypes."""
    by_key = {}
    for r in results:
        by_key.setdefault((r["case"], r["mode"], r["threads"]), {})[r.get("dtype", "float32")] = r
    rows = []
    for (case, mode, threads), pair in by_key.items():
        if "float32" in pair and "float64" in pair:
            f32 = pair["float32"]["skipblocks_ms"]["median"]
            f64 = pair["float64"]["skipblocks_ms"]["median"]
            rows.append({"case": case, "mode": mode, "threads": threads, "float32_ms": f32,
                         "float64_ms": f64, "f64_over_f32": f64 / f32})
    return rows


def format_breakdown(breakdown):
    rows = breakdown["rows"]
    width = max(len(r["layer"]) for r in rows)
    tw = max(len(r["type"]) for r in rows)

    def num(v, w):
        return "-".rjust(w) if v is None else f"{v:{w}.3f}"

    out = [f"per-layer time, {breakdown['demo']} demo, {breakdown['mode']} mode, input "
           f"{'x'.join(map(str, breakdown['input_shape']))} (median ms, children included; "
           "both sides at 1 thread)",
           f"{'layer'.ljust(width)}  {'type'.ljust(tw)}  {'sb fused':>9}  {'sb unfused':>10}  "
           f"{'torch':>8}  {'ratio':>6}"]
    for r in rows:
        sb_ms, t_ms = r["skipblocks_ms"], r["torch_ms"]
        ratio = f"{t_ms / sb_ms:6.2f}" if sb_ms and t_ms is not None else "-".rjust(6)
        out.append(f"{r['layer'].ljust(width)}  {r['type'].ljust(tw)}  {num(sb_ms, 9)}  "
                   f"{num(r['skipblocks_unfused_ms'], 10)}  {num(t_ms, 8)}  {ratio}")
    out.append("sb fused = skipblocks' default path: '-' where a layer is folded into another, "
               "whose row includes it; sb unfused = every layer called in turn; "
               "ratio = torch / sb fused.")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per case and side (default 20; 3 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed runs first (default 3; 1 with --quick)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="torch thread counts to run (default: 1)")
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    parser.add_argument("--cases", nargs="+", default=None,
                        help="only cases whose name starts with, or matches the glob, one "
                             f"of these ({', '.join(c[0] for c in CASES)})")
    parser.add_argument("--json", default=DEFAULT_JSON,
                        help="where to write the results (default benchmarks/results/latest.json)")
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip the per-layer breakdowns")
    parser.add_argument("--breakdowns", nargs="+", default=list(BREAKDOWNS),
                        choices=list(BREAKDOWNS),
                        help="which per-layer breakdowns to run (default: all)")
    parser.add_argument("--no-peak", action="store_true",
                        help="do not build and run the FMA peak program (no %% of peak)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"],
                        choices=["float32", "float64"],
                        help="element types to run every case in (default: both; float64 "
                             "runs torch's and skipblocks' modules after .double())")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if repeats < 1 or warmup < 0 or any(n < 1 for n in args.threads):
        parser.error("--repeats and --threads must be >= 1, --warmup >= 0")
    # Prefix, not substring: "se" must not select the densenet cases.
    cases = [c for c in CASES if args.cases is None or any(
        c[0].startswith(p) or fnmatch.fnmatchcase(c[0], p) for p in args.cases)]
    if not cases:
        parser.error(f"no case matches {args.cases}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load_before = load_average()
    log(f"torch {torch.__version__}, skipblocks {skipblocks.__version__}, numpy "
        f"{np.__version__}; {warmup} warm-up + {repeats} timed runs per side")

    # The ISA skipblocks computes with: recorded in meta, and it picks the
    # vector width % of peak is against.
    isa = skipblocks.get_isa()
    peak_runs, peak_error, build = [], None, None
    peak_runs_512, peak_error_512 = [], avx512_peak_skip_reason()
    if args.no_peak:
        peak_error = peak_error_512 = "not requested (--no-peak)"
    else:
        # Built at run time into a temporary directory: no binary in the repo.
        with tempfile.TemporaryDirectory(prefix="skipblocks-peak-") as workdir:
            exe, build = build_peak(workdir)
            if exe is None:
                peak_error, build = build, None
                peak_error_512 = peak_error_512 or f"not measured: {peak_error}"
            else:
                log("  FMA peak (256-bit) ...")
                got = run_peak(exe)
                peak_runs, peak_error = (got, None) if isinstance(got, list) else ([], got)
                if peak_error_512 is None:  # the CPU flags show AVX-512F
                    log("  FMA peak (512-bit) ...")
                    got = run_peak(exe, width=512)
                    peak_runs_512, peak_error_512 = ((got, None) if isinstance(got, list)
                                                     else ([], f"not measured: {got}"))
    peak = peak_report(peak_runs, build, peak_error, isa, peak_runs_512, peak_error_512)
    results = run_cases(cases, args.threads, warmup, repeats, args.seed, log, args.dtypes)
    add_peak_fraction(results, peak["pct_of_peak_basis"])

    meta = {
        "date": now_utc(), "command": command_line(), "cwd": os.getcwd(),
        "load_average_1min": [load_before, load_average()],
        "torch": torch.__version__, "skipblocks": skipblocks.__version__,
        "skipblocks_isa": isa,
        "skipblocks_isas": list(skipblocks.available_isas()),
        "skipblocks_build": build_info(skipblocks),
        "numpy": np.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpu_model": machine_info()["cpu_model"],
        "cpu_count": os.cpu_count(), "machine_info": machine_info(), "peak": peak,
        "repeats": repeats, "warmup": warmup, "quick": args.quick, "seed": args.seed,
        "note": "threads = torch.set_num_threads; skipblocks_threads = what skipblocks "
                "used (set to the same count when its build supports threads). "
                "ratio = torch median / skipblocks median. Times in ms. "
                "pct_of_peak = skipblocks GFLOP/s / (skipblocks_threads x "
                "peak.pct_of_peak_basis.gflops_1core): the single-core FMA peak measured "
                "by fma_peak.c for the vector width of skipblocks_isa (gflops_1core_512 "
                "for 'avx512' when measured, else the 256-bit gflops_1core).",
    }
    print(format_header(meta))
    print()
    print(format_table(results))

    breakdown = None
    if not args.no_breakdown:
        set_threads(1)
        breakdown = []
        for name in args.breakdowns:
            breakdown.append(layer_breakdown(name, warmup, repeats, args.seed))
            print()
            print(format_breakdown(breakdown[-1]))

    payload = {
        "meta": meta,
        "results": results,
        "float64_over_float32": dtype_ratios(results),
        "layer_breakdown": breakdown,
    }
    write_json(args.json, payload)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of one forward call, torch against skipblocks: the target is a
peak no larger than torch's for the same call, each measured in its own
process (max RSS after the call minus max RSS before it, weights already
loaded).

    python benchmarks/bench_memory.py                  # ~1-2 minutes
    python benchmarks/bench_memory.py --cases resnet-224 --threads 2

Cases: the document's three demos at the document's shapes (ResNet and
DenseNet on 1x3x100x100, SEAttention(512, 8) on 50x512x7x7), eval and train,
and the ResNet and DenseNet demos on 8x3x224x224, eval.

Each measurement is one fresh subprocess, for one side (torch or skipblocks,
never both: the skipblocks process does not import torch):
  1. set the thread count (torch.set_num_threads / skipblocks.set_num_threads);
  2. build the demo and load its weights -- the same weights on both sides,
     written once by this script to a temporary .npz;
  3. create the float32 input (drawn directly in float32: a float64
     temporary would raise the high-water mark before the first reading);
  4. torch only: enter torch.no_grad();
  5. give the memory freed so far back to the system (glibc's malloc_trim),
     so that the call cannot grow into pages the set-up left resident (the
     loaded .npz arrays, say) and look smaller than it is; then reset the
     kernel's RSS high-water mark to the current RSS (writing "5" to
     /proc/self/clear_refs; Linux >= 4.0) -- otherwise a transient peak
     during imports or set-up could hide part of the call's growth;
  6. read the max RSS, run one forward, keep its output, read the max RSS
     again: "first call" = after - before;
  7. drop the output, trim and reset again, and measure a second,
     identical call the same way: "second call" (steady state: lazily built
     state -- skipblocks' packed weights, torch/oneDNN's primitive caches,
     thread pools -- exists already). Without a resettable high-water mark
     the second call cannot be measured (ru_maxrss still holds the first
     call's peak) and is reported as unavailable.
Nothing else is allocated or touched between the readings. Both numbers
include the output array (the call returns it).

"Max RSS" is the kernel's high-water mark of the process's memory, VmHWM in
/proc/self/status. resource.getrusage's ru_maxrss is the same number except
for one thing: it never drops below the high-water mark at the moment any
thread of the process exited, and the reset does not clear that. A thread
pool resized at set-up (set_num_threads) leaves such a floor, which can hide
a small call entirely. ru_maxrss's deltas are in the JSON too (ru_*), with
"slack": ru_maxrss - current RSS before a reading, i.e. how much growth
ru_maxrss could have hidden. Without /proc, ru_maxrss is used.

ratio = skipblocks MiB / torch MiB (<= 1: skipblocks' call peaks no higher).
RSS grows in pages and by the allocator's decisions (glibc returns large
blocks to the system at free), so small deltas are coarse; the medians of
--repeats processes per cell are shown, min-max in the JSON.
"""
import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

from common import (RESULTS, build_info, build_line, command_line, format_rows,
                    import_skipblocks, load_average, load_line, machine_line, now_utc,
                    write_json)

DEFAULT_JSON = os.path.join(RESULTS, "memory.json")

# (case, demo, input shape, how the input is drawn, modes)
CASES = [
    ("resnet-doc", "resnet", (1, 3, 100, 100), "rand", ("eval", "train")),
    ("densenet-doc", "densenet", (1, 3, 100, 100), "rand", ("eval", "train")),
    ("se-doc", "se", (50, 512, 7, 7), "randn", ("eval", "train")),
    ("resnet-224", "resnet", (8, 3, 224, 224), "rand", ("eval",)),
    ("densenet-224", "densenet", (8, 3, 224, 224), "rand", ("eval",)),
]
SIDES = ("torch", "skipblocks")
MIB = 1024.0  # ru_maxrss is in KiB on Linux


# -- worker (a subprocess) ------------------------------------------------------
def _ru_maxrss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _hwm_kib():
    """VmHWM, the high-water mark of the address space (see the module doc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _ru_maxrss_kib()


def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _trim_heap():
    """Returns free heap memory to the system; False where there is no glibc."""
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def _reset_high_water_mark():
    """Sets the RSS high-water mark to the current RSS; False where the kernel
    refuses. Whether it took is measured, not assumed: "slack" below."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _measure(call):
    """({max RSS growth over call() in KiB, ...}, result of call())."""
    trimmed = _trim_heap()
    reset = _reset_high_water_mark()
    rss = _rss_kib()
    before, ru_before = _hwm_kib(), _ru_maxrss_kib()
    out = call()
    after, ru_after = _hwm_kib(), _ru_maxrss_kib()
    return {"reset": reset, "trimmed": trimmed, "delta_kib": after - before,
            "hwm_before_kib": before, "rss_before_kib": rss,
            "ru_delta_kib": ru_after - ru_before, "ru_slack_kib": max(0, ru_before - rss),
            "slack_kib": max(0, before - rss)}, out


def worker(side, demo, shape, how, mode, threads, weights_path, seed):
    import numpy as np
    skipblocks = import_skipblocks()
    from skipblocks import demos

    with np.load(weights_path) as f:
        state = {k: f[k] for k in f.files}
    if side == "torch":
        import torch
        from skipblocks import reference as ref
        torch.set_num_threads(threads)
        model = ref.DOCUMENT_INPUTS[demo]["builder"]()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    else:
        skipblocks.set_num_threads(threads)
        model = demos.DEMOS[demo][0]()
        model.load_state_dict(state)
    model.train(mode == "train")
    del state

    rng = np.random.default_rng(seed)
    x = (rng.random(shape, dtype=np.float32) if how == "rand"
         else rng.standard_normal(shape, dtype=np.float32))
    if side == "torch":
        xt = torch.from_numpy(x)  # shares x's memory: no copy
        torch.set_grad_enabled(False)  # what no_grad() does, for the rest of the process
        call = lambda: model(xt)  # noqa: E731
    else:
        call = lambda: model(x)  # noqa: E731
    gc.collect()  # no garbage from set-up may be freed during a reading

    first, out = _measure(call)
    shape_out = list(out.shape)
    del out
    gc.collect()
    second, out = _measure(call)
    if not second["reset"]:
        second = None  # the high-water mark still holds the first call's peak
    print(json.dumps({"side": side, "first": first, "second": second,
                      "output_shape": shape_out, "torch_imported": "torch" in sys.modules}))


# -- parent ----------------------------------------------------------------------
def write_weights(demo, seed, directory):
    """The demo's weights as an .npz: both sides load the same values."""
    import numpy as np
    skipblocks = import_skipblocks()
    from skipblocks import demos
    skipblocks.manual_seed(seed)
    state = demos.DEMOS[demo][0]().state_dict()
    path = os.path.join(directory, f"{demo}.npz")
    np.savez(path, **{k: np.array(v) for k, v in state.items()})
    return path


def run_worker(side, case, mode, threads, weights_path, seed):
    _, demo, shape, how, _ = case
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, "--demo", demo,
           "--shape", ",".join(map(str, shape)), "--how", how, "--mode", mode,
           "--threads", str(threads), "--weights", weights_path, "--seed", str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"worker {side} {case[0]} {mode} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if side == "skipblocks" and report["torch_imported"]:
        raise RuntimeError("the skipblocks worker imported torch")
    return report


def _mib_summary(values_kib):
    mib = [v / MIB for v in values_kib]
    return {"median": statistics.median(mib), "min": min(mib), "max": max(mib),
            "runs": len(mib)} if mib else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=None,
                        help="only cases whose name starts with one of these "
                             f"({', '.join(c[0] for c in CASES)})")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts, the same for both sides (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="processes per side and cell (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=DEFAULT_JSON,
                        help="where to write the results (default benchmarks/results/memory.json)")
    # worker arguments
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--demo", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--how", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.demo, tuple(map(int, args.shape.split(","))), args.how,
               args.mode, args.threads[0], args.weights, args.seed)
        return 0
    if args.repeats < 1 or any(t < 1 for t in args.threads):
        parser.error("--repeats and --threads must be >= 1")
    cases = [c for c in CASES if args.cases is None or any(c[0].startswith(p)
                                                           for p in args.cases)]
    if not cases:
        parser.error(f"no case matches {args.cases}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load_before = load_average()
    results = []
    with tempfile.TemporaryDirectory(prefix="skipblocks-mem-") as tmp:
        weights = {d: write_weights(d, args.seed, tmp) for d in {c[1] for c in cases}}
        for threads in args.threads:
            for case in cases:
                for mode in case[4]:
                    log(f"  {case[0]} {mode} threads={threads} ...")
                    reports = {s: [] for s in SIDES}
                    for i in range(args.repeats):
                        # Alternate which side goes first, as the timing scripts do.
                        for side in (SIDES if i % 2 == 0 else SIDES[::-1]):
                            reports[side].append(run_worker(side, case, mode, threads,
                                                            weights[case[1]], args.seed))
                    row = {"case": case[0], "input_shape": list(case[2]), "mode": mode,
                           "threads": threads,
                           "output_shape": reports["skipblocks"][0]["output_shape"]}
                    for call in ("first", "second"):
                        for side in SIDES:
                            runs = [r[call] for r in reports[side] if r[call] is not None]
                            row[f"{side}_{call}_mib"] = _mib_summary(
                                [r["delta_kib"] for r in runs])
                            row[f"{side}_{call}_slack_mib"] = max(
                                (r["slack_kib"] / MIB for r in runs), default=None)
                            row[f"{side}_{call}_ru_maxrss_mib"] = _mib_summary(
                                [r["ru_delta_kib"] for r in runs])
                            row[f"{side}_{call}_ru_slack_mib"] = max(
                                (r["ru_slack_kib"] / MIB for r in runs), default=None)
                        t, o = row[f"torch_{call}_mib"], row[f"skipblocks_{call}_mib"]
                        row[f"{call}_ratio"] = (o["median"] / t["median"]
                                                if t and o and t["median"] > 0 else None)
                    results.append(row)

    skipblocks = import_skipblocks()
    import numpy as np
    torch_version = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True, text=True).stdout.strip()
    meta = {"date": now_utc(), "command": command_line(), "cwd": os.getcwd(),
            "load_average_1min": [load_before, load_average()],
            "machine": machine_line(), "skipblocks": skipblocks.__version__,
            "skipblocks_build": build_info(skipblocks),
            "skipblocks_isa": skipblocks.get_isa(), "torch": torch_version,
            "numpy": np.__version__, "repeats": args.repeats, "seed": args.seed,
            "note": "MiB = max RSS (VmHWM) after one forward - max RSS before it, in a fresh "
                    "process per side, weights loaded and input created first, free heap "
                    "returned to the system (malloc_trim) and the high-water mark reset "
                    "to the current RSS before each reading; first = the process's "
                    "first forward, second = an identical second forward. "
                    "ratio = skipblocks / torch (<= 1: no larger). ru_*: the same with "
                    "getrusage's ru_maxrss, which keeps the high-water mark of exited "
                    "threads (ru_*_slack_mib: growth it may hide)."}

    print(f"machine:   {meta['machine']}")
    print(f"software:  skipblocks {meta['skipblocks']} (ISA {meta['skipblocks_isa']}), torch "
          f"{meta['torch']}, numpy {meta['numpy']}")
    print(f"build:     {build_line(meta['skipblocks_build'])}")
    print(f"date:      {meta['date']}")
    print(f"load:      {load_line(*meta['load_average_1min'])}")
    print(f"command:   {meta['command']}   (in {meta['cwd']})")
    print(f"method:    one process per side and measurement, {args.repeats} per cell "
          "(medians); max RSS after the call - max RSS before it")
    print()

    def mib(s):
        return "n/a" if s is None else f"{s['median']:.1f}"

    def ratio(v):
        return "-" if v is None else f"{v:.2f}"

    headers = ["case", "input shape", "mode", "threads", "torch MiB", "sb MiB", "sb/torch",
               "2nd: torch MiB", "2nd: sb MiB", "2nd: sb/torch"]
    rows = [[r["case"], "x".join(map(str, r["input_shape"])), r["mode"], str(r["threads"]),
             mib(r["torch_first_mib"]), mib(r["skipblocks_first_mib"]), ratio(r["first_ratio"]),
             mib(r["torch_second_mib"]), mib(r["skipblocks_second_mib"]),
             ratio(r["second_ratio"])] for r in results]
    print("\n".join(format_rows(headers, rows, right=set(range(3, len(headers))))))
    print("MiB: peak RSS growth during one forward (median of processes), output included; "
          "first columns: the process's first forward (includes lazily built state: "
          "packed weights, caches, thread start-up); 2nd: an identical second forward. "
          "sb/torch <= 1: skipblocks no larger.")
    slack = max((r[k] for r in results for k in r if k.endswith("_slack_mib")
                 and not k.endswith("ru_slack_mib") and r[k] is not None), default=0.0)
    if slack > 0.5:
        print(f"warning: the high-water mark could not be reset everywhere; up to "
              f"{slack:.1f} MiB of a call's growth may be hidden (see *_slack_mib in the JSON)")

    write_json(args.json, {"meta": meta, "results": results})
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Is skipblocks at 2 threads slower when torch is imported and running in the
same process? The target: with torch imported and running 2 threads in the
same process, skipblocks at 2 threads is no slower than without torch
imported (both are measured).

    python benchmarks/bench_torch_interference.py               # ~1-2 minutes
    python benchmarks/bench_torch_interference.py --rounds 2    # smoke run

What is timed: skipblocks' three demos at the document's shapes (ResNet and
DenseNet on 1x3x100x100, SEAttention on 50x512x7x7), eval mode,
skipblocks.set_num_threads(2), one forward per timing. SEAttention is the
sensitive one: about 0.4 ms of short, memory-bound loops, so a thread that
loses its core for a scheduler slice costs more than the whole call. Each measurement runs in a fresh subprocess of one of three kinds:

  no-torch    torch is never imported (checked: the worker reports whether
              'torch' is in sys.modules at the end, and a violation is an error).
  torch-busy  torch imported, torch.set_num_threads(2), the document's torch
              module of the same demo (same weights) built; before *every*
              timed skipblocks call, torch runs its own 2-thread forward of the
              same input (untimed). So skipblocks starts while torch's
              OpenMP threads have just finished a parallel region and may
              still be spin-waiting for the next one -- the case measured
              here -- and after torch has used the caches.
  torch-idle  as torch-busy, but torch runs its forwards only during the
              warm-up: imported, its thread pool created, then idle. The
              difference between busy and idle separates torch's running
              threads (and cache traffic) from the mere import.
  torch-busy-passive
              torch-busy with OMP_WAIT_POLICY=PASSIVE in the worker's
              environment: torch's OpenMP threads sleep as soon as a parallel
              region ends instead of spin-waiting. A diagnosis, not a
              user-facing setting: if this kind is much faster than
              torch-busy, the slowdown comes from torch's spinning threads
              taking the cores skipblocks' threads need.

The kinds alternate round by round (the starting kind rotates) so drift in
the machine's load hits all of them alike. A worker does warm-up calls, then
--repeats timed calls per demo; each kind's timings are pooled over its
rounds. Printed: medians with [min-max] in ms; slowdown = pooled median
with torch / pooled median without (<= 1.00: no slower with torch); and the
paired slowdown: in each round, that kind's median over the no-torch
median of the same round, then the median [min-max] over rounds. The paired
figure compares processes that ran seconds apart, so it is the steadier of
the two when other work comes and goes on the machine. Timings are
measurements, not tests: nothing asserts on speed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from common import (RESULTS, build_info, build_line, command_line, fmt_ms, format_rows,
                    import_skipblocks, load_average, load_line, machine_line, now_utc,
                    summary_ms, write_json)

DEMOS = ("resnet", "densenet", "se")
KINDS = ("no-torch", "torch-busy", "torch-idle", "torch-busy-passive")
DEFAULT_JSON = os.path.join(RESULTS, "torch_interference.json")


# -- worker (a subprocess) ------------------------------------------------------
def worker(kind, threads, warmup, repeats, seed):
    """Times skipblocks' demos in this process; prints one JSON line."""
    import numpy as np
    skipblocks = import_skipblocks()
    from skipblocks import demos

    skipblocks.set_num_threads(threads)
    torch = None
    if kind != "no-torch":
        import torch
        from skipblocks import reference as ref
        torch.set_num_threads(threads)

    times, spin = {}, {}
    for name in DEMOS:
        builder, shape, _ = demos.DEMOS[name]
        skipblocks.manual_seed(seed)
        ours = builder().eval()
        x = np.random.default_rng(seed).random(shape, dtype=np.float32)

        run_torch = None  # no-torch: nothing runs between the calls
        if torch is not None:
            theirs = ref.DOCUMENT_INPUTS[name]["builder"]().eval()
            theirs.load_state_dict({k: torch.from_numpy(np.array(v))
                                    for k, v in ours.state_dict().items()})
            xt = torch.from_numpy(x.copy())

            def run_torch():
                with torch.no_grad():
                    theirs(xt)

        for _ in range(warmup):
            if run_torch:
                run_torch()  # torch-idle too: its thread pool exists and has run
            ours(x)
        ms = []
        for _ in range(repeats):
            if run_torch and "busy" in kind:
                run_torch()
            start = time.perf_counter()
            ours(x)
            ms.append((time.perf_counter() - start) * 1e3)
        times[name] = ms
        if run_torch and kind == "torch-busy":
            spin[name] = torch_spin_after_forward(run_torch, threads, repeats)

    print(json.dumps({"kind": kind, "times_ms": times, "torch_spin_ms": spin,
                      "skipblocks_threads": skipblocks.get_num_threads(),
                      "skipblocks_isa": skipblocks.get_isa(),
                      "torch_imported": "torch" in sys.modules,
                      "torch": torch.__version__ if torch is not None else None}))


def other_threads_cpu_ns():
    """CPU time (ns) used so far by this process's threads other than the
    calling one, from /proc (Linux); None elsewhere. A running thread's figure
    is only brought up to date when it is descheduled, so read it only while
    the other threads are asleep."""
    me = threading.get_native_id()
    total = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            if int(tid) != me:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
    except OSError:
        return None
    return total


def torch_spin_after_forward(run_torch, threads, repeats, quiet_s=0.05):
    """How long torch's other threads keep a CPU busy after its forward
    returns: the premise of the torch-busy slowdown. Between two quiet points
    (every thread asleep: torch's OpenMP threads go to sleep well within
    quiet_s), the other threads' CPU time minus what they could have spent
    inside the forward ((threads - 1) x its wall time) is a lower bound on
    their spin-wait after it. Untimed phase, after the timed calls."""
    if threads < 2 or other_threads_cpu_ns() is None:
        return []
    spins = []
    for _ in range(repeats):
        time.sleep(quiet_s)
        before = other_threads_cpu_ns()
        start = time.perf_counter()
        run_torch()
        wall_ns = (time.perf_counter() - start) * 1e9
        time.sleep(quiet_s)
        used = other_threads_cpu_ns() - before
        spins.append(max(0.0, used - (threads - 1) * wall_ns) / 1e6)
    return spins


# -- parent ----------------------------------------------------------------------
def run_worker(kind, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind,
           "--threads", str(args.threads), "--warmup", str(args.warmup),
           "--repeats", str(args.repeats), "--seed", str(args.seed)]
    env = dict(os.environ)
    if kind.endswith("-passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # read by libgomp when torch loads it
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The premise of the comparison, not a timing: the baseline must be torch-free.
    if report["torch_imported"] != (kind != "no-torch"):
        raise RuntimeError(f"worker {kind}: torch_imported={report['torch_imported']}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6,
                        help="subprocesses per kind (default 6)")
    parser.add_argument("--repeats", type=int, default=30,
                        help="timed calls per demo in each subprocess (default 30)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed calls per demo first (default 5)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for skipblocks and torch (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=DEFAULT_JSON,
                        help="where to write the results (default "
                             "benchmarks/results/torch_interference.json)")
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.threads, args.warmup, args.repeats, args.seed)
        return 0
    if min(args.rounds, args.repeats, args.threads) < 1 or args.warmup < 0:
        parser.error("--rounds, --repeats and --threads must be >= 1, --warmup >= 0")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load_before = load_average()
    pooled = {k: {d: [] for d in DEMOS} for k in KINDS}
    per_round = {k: {d: [] for d in DEMOS} for k in KINDS}  # median of each process
    reports = []
    for r in range(args.rounds):
        # Rotate the starting kind: none is always first (or last) in a round.
        for kind in KINDS[r % len(KINDS):] + KINDS[:r % len(KINDS)]:
            log(f"  round {r + 1}/{args.rounds}: {kind} ...")
            report = run_worker(kind, args)
            reports.append(report)
            for d in DEMOS:
                pooled[kind][d] += report["times_ms"][d]
                per_round[kind][d].append(statistics.median(report["times_ms"][d]))

    spin = {d: [v for r in reports for v in r.get("torch_spin_ms", {}).get(d, [])]
            for d in DEMOS}
    skipblocks = import_skipblocks()
    from skipblocks import demos
    results = []
    for d in DEMOS:
        base = statistics.median(pooled["no-torch"][d])
        for kind in KINDS:
            s = summary_ms(pooled[kind][d])
            paired = [m / b for m, b in zip(per_round[kind][d], per_round["no-torch"][d])]
            results.append({"demo": d, "input_shape": list(demos.DEMOS[d][1]), "mode": "eval",
                            "threads": args.threads, "kind": kind, "skipblocks_ms": s,
                            "slowdown": s["median"] / base,
                            "paired_slowdown": summary_ms(paired),
                            "round_medians_ms": per_round[kind][d]})

    meta = {"date": now_utc(), "command": command_line(), "cwd": os.getcwd(),
            "load_average_1min": [load_before, load_average()],
            "machine": machine_line(), "skipblocks": skipblocks.__version__,
            "skipblocks_build": build_info(skipblocks),
            "skipblocks_isa": reports[0]["skipblocks_isa"],
            "skipblocks_threads": reports[0]["skipblocks_threads"],
            "torch": next(r["torch"] for r in reports if r["torch"]),
            "rounds": args.rounds, "repeats": args.repeats, "warmup": args.warmup,
            "seed": args.seed, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "note": "times in ms of one skipblocks forward; slowdown = median with torch / "
                    "median without torch (<= 1: no slower)"}
    print(f"machine:   {meta['machine']}")
    print(f"software:  skipblocks {meta['skipblocks']} (ISA {meta['skipblocks_isa']}, "
          f"{meta['skipblocks_threads']} threads), torch {meta['torch']} "
          f"({args.threads} threads)")
    print(f"build:     {build_line(meta['skipblocks_build'])}")
    print(f"date:      {meta['date']}")
    print(f"load:      {load_line(*meta['load_average_1min'])}")
    print(f"command:   {meta['command']}   (in {meta['cwd']})")
    print(f"method:    {args.rounds} subprocess(es) per kind, alternating; each {args.warmup} "
          f"warm-up + {args.repeats} timed skipblocks forwards per demo; pooled medians")
    print()
    headers = ["demo", "input shape", "mode", "threads", "process", "skipblocks ms",
               "slowdown", "paired slowdown"]
    rows = [[r["demo"], "x".join(map(str, r["input_shape"])), r["mode"], str(r["threads"]),
             r["kind"], fmt_ms(r["skipblocks_ms"]),
             "-" if r["kind"] == "no-torch" else f"{r['slowdown']:.2f}",
             "-" if r["kind"] == "no-torch" else fmt_ms(r["paired_slowdown"])]
            for r in results]
    print("\n".join(format_rows(headers, rows, right={3, 5, 6, 7})))
    print("skipblocks' time per forward: median [min-max]. no-torch: torch never imported; "
          "torch-busy: torch (same threads) ran its forward of the same demo right before "
          "each call; torch-idle: torch imported and warmed up, then idle; "
          "torch-busy-passive: torch-busy with OMP_WAIT_POLICY=PASSIVE. "
          "slowdown = median / no-torch median (<= 1.00: no slower with torch); paired "
          "slowdown = per round, median / that round's no-torch median: median [min-max] "
          "over rounds.")

    if any(spin.values()):
        # The bound this sets: torch's main thread is skipblocks' caller, so
        # with T threads on T cores torch leaves T - 1 threads spinning, each
        # sharing a core with one of skipblocks' workers. Fair scheduling
        # gives skipblocks 1 + (T - 1)/2 cores, so even perfectly parallel
        # work takes T / (1 + (T - 1)/2) = 2T / (T + 1) times as long.
        bound = 2 * args.threads / (args.threads + 1)
        print()
        print("torch's threads after its forward returns (torch-busy processes): CPU ms "
              "they keep using, a lower bound")
        for d in DEMOS:
            if spin[d]:
                print(f"  {d:9s} {fmt_ms(summary_ms(spin[d]))}")
        print(f"While they spin, skipblocks' {args.threads} threads share their cores: "
              f"with fair scheduling a perfectly parallel call takes at least "
              f"2T/(T+1) = {bound:.2f}x its time (T = {args.threads}).")
        meta["torch_spin_fair_share_bound"] = bound
    write_json(args.json, {"meta": meta, "results": results,
                           "raw_ms": pooled, "torch_spin_ms": spin})
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

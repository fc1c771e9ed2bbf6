"""How close are skipblocks' and torch's float32 results to the float64 truth?

    python benchmarks/fidelity.py                  # 8 inputs per demo and mode
    python benchmarks/fidelity.py --seeds 3 --demos resnet

For each of the document's three demos (at the document's shapes), in eval
and in train mode: torch's document module is built (seeded), and copies of
its weights go to torch's module after .double() (the truth: float64
throughout), to skipblocks' float32 module and to skipblocks' float64
module. The same input (the document's generator, seeded) runs through all
four. Reported, each against torch's float64 output:

  torch f32   torch's float32 error
  sb f32      skipblocks' float32 error
  sb / torch  their ratio (< 1: skipblocks' float32 is the closer one)
  sb f64      skipblocks' float64 error (how far skipblocks' float64 is
              from torch's: the parity the tests hold at 1e-12)

Error metric: max|x - truth| / max|truth| over the output, and the same for
the RMS error (rms(x - truth) / rms(truth)); each cell is the median over
--seeds inputs (a maximum over one output is noisy), with the spread
[min-max]. In train mode the modules start from the same state and run one
forward (batch statistics); the running statistics' errors are reported too.

A measurement, not a test: nothing here asserts. Writes
benchmarks/results/fidelity.json (--json).
"""
import argparse
import os
import platform
import statistics
import sys

import numpy as np

from common import (RESULTS, build_info, build_line, command_line, format_rows,
                    import_skipblocks, machine_info, machine_line, now_utc, write_json)

skipblocks = import_skipblocks()

import torch  # noqa: E402 (after skipblocks: its import must not depend on torch)

from skipblocks import demos  # noqa: E402
from skipblocks import reference as ref  # noqa: E402

DEMOS = ("resnet", "densenet", "se")


def _errors(x, truth):
    x = np.asarray(x, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    diff = x - truth
    return {"max": float(np.abs(diff).max() / max(np.abs(truth).max(), 1e-300)),
            "rms": float(np.sqrt(np.mean(diff ** 2)) / max(np.sqrt(np.mean(truth ** 2)), 1e-300))}


def _running_stats(state):
    return {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, np.float64)
            for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


def _stat_errors(stats, truth):
    """The largest relative error over all running statistics (each tensor
    against its own max |truth|)."""
    return max(_errors(stats[k], truth[k])["max"] for k in truth) if truth else 0.0


def measure(name, mode, seed):
    torch.manual_seed(seed)
    theirs32 = ref.DOCUMENT_INPUTS[name]["builder"]()
    state = {k: v.clone() for k, v in theirs32.state_dict().items()}
    theirs64 = ref.DOCUMENT_INPUTS[name]["builder"]().double()
    theirs64.load_state_dict(state)
    ours32 = demos.DEMOS[name][0]()
    ours32.load_state_dict(state)
    ours64 = demos.DEMOS[name][0]().double()
    ours64.load_state_dict(state)
    train = mode == "train"
    for m in (theirs32, theirs64, ours32, ours64):
        m.train(train)
    x = ref.document_input(name, seed)
    with torch.no_grad():
        truth = theirs64(x.double()).numpy()
        t32 = theirs32(x).numpy()
    s32 = ours32(x.numpy())
    s64 = ours64(x.numpy().astype(np.float64))
    row = {"torch_f32": _errors(t32, truth), "sb_f32": _errors(s32, truth),
           "sb_f64": _errors(s64, truth), "dtype_sb_f64": str(np.asarray(s64).dtype)}
    if train:
        truth_stats = _running_stats(theirs64.state_dict())
        row["running_stats"] = {
            "torch_f32": _stat_errors(_running_stats(theirs32.state_dict()), truth_stats),
            "sb_f32": _stat_errors(_running_stats(ours32.state_dict()), truth_stats),
            "sb_f64": _stat_errors(_running_stats(ours64.state_dict()), truth_stats)}
    return row


def _summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(demos_, modes, seeds, log):
    results = []
    for name in demos_:
        for mode in modes:
            log(f"  {name} {mode} ...")
            rows = [measure(name, mode, seed) for seed in range(seeds)]
            cell = {"demo": name, "mode": mode, "input_shape": list(ref.DOCUMENT_INPUTS[name]["shape"]),
                    "seeds": seeds}
            for metric in ("max", "rms"):
                for who in ("torch_f32", "sb_f32", "sb_f64"):
                    cell[f"{who}_{metric}"] = _summary([r[who][metric] for r in rows])
                cell[f"ratio_{metric}"] = _summary(
                    [r["sb_f32"][metric] / r["torch_f32"][metric] for r in rows])
            if mode == "train":
                for who in ("torch_f32", "sb_f32", "sb_f64"):
                    cell[f"running_stats_{who}"] = _summary(
                        [r["running_stats"][who] for r in rows])
            results.append(cell)
    return results


def _fmt(s, digits=2):
    return f"{s['median']:.{digits}e} [{s['min']:.1e}-{s['max']:.1e}]"


def format_table(results):
    out = []
    for metric, title in (("max", "max |x - truth| / max |truth|"),
                          ("rms", "rms(x - truth) / rms(truth)")):
        out.append(f"{title} (median over seeds [min-max]; truth = torch float64):")
        lines = [[r["demo"], r["mode"], _fmt(r[f"torch_f32_{metric}"]),
                  _fmt(r[f"sb_f32_{metric}"]),
                  f"{r[f'ratio_{metric}']['median']:.2f} [{r[f'ratio_{metric}']['min']:.2f}-"
                  f"{r[f'ratio_{metric}']['max']:.2f}]",
                  _fmt(r[f"sb_f64_{metric}"])] for r in results]
        out += format_rows(["demo", "mode", "torch f32", "sb f32", "sb / torch", "sb f64"], lines,
                           right=set())
        out.append("")
    train = [r for r in results if r["mode"] == "train"]
    if train:
        out.append("running statistics after one train-mode forward (largest relative error "
                   "over all BatchNorms):")
        out += format_rows(["demo", "torch f32", "sb f32", "sb f64"],
                           [[r["demo"], _fmt(r["running_stats_torch_f32"]),
                             _fmt(r["running_stats_sb_f32"]), _fmt(r["running_stats_sb_f64"])]
                            for r in train], right=set())
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8, help="inputs per demo and mode")
    parser.add_argument("--demos", nargs="+", default=list(DEMOS), choices=DEMOS)
    parser.add_argument("--modes", nargs="+", default=["eval", "train"],
                        choices=["eval", "train"])
    parser.add_argument("--json", default=os.path.join(RESULTS, "fidelity.json"))
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    torch.set_num_threads(1)
    skipblocks.set_num_threads(1)
    results = run(args.demos, args.modes, args.seeds, log)
    meta = {"date": now_utc(), "command": command_line(), "cwd": os.getcwd(),
            "torch": torch.__version__, "skipblocks": skipblocks.__version__,
            "skipblocks_isa": skipblocks.get_isa(), "skipblocks_build": build_info(skipblocks),
            "numpy": np.__version__, "python": platform.python_version(),
            "machine_info": machine_info()}
    print(f"machine:   {machine_line(meta['machine_info'])}")
    print(f"software:  skipblocks {meta['skipblocks']} (ISA {meta['skipblocks_isa']}), torch "
          f"{meta['torch']}, numpy {meta['numpy']}")
    print(f"build:     {build_line(meta['skipblocks_build'])}")
    print(f"command:   {meta['command']}")
    print()
    print(format_table(results))
    write_json(args.json, {"meta": meta, "results": results})
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every benchmark script records next to its numbers: the machine, the
command line, the date; and where it writes them.

Imports neither torch nor skipblocks: bench_torch_interference.py's workers
must be able to run without torch ever being imported.
"""
import datetime
import glob
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def import_skipblocks():
    """The skipblocks of the checkout next to benchmarks/ when it has a built
    extension (python setup.py build_ext --inplace), else the installed one.
    The checkout comes first because a benchmark run from a checkout is
    meant to measure that code: an older `pip install .` would otherwise be
    measured silently. The header names the extension file either way."""
    root = os.path.dirname(HERE)
    if glob.glob(os.path.join(root, "skipblocks", "_C*")):
        sys.path.insert(0, root)
    import skipblocks
    return skipblocks


def machine_info():
    """The CPU from /proc/cpuinfo where there is one (platform.processor() is
    empty on Linux), and the CPUs this process may use."""
    info = {"machine": platform.machine(), "system": platform.platform(),
            "cpu_count": os.cpu_count(),
            # What a thread count can actually use (cgroups, taskset).
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count()}
    first = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block describes them all
                key, _, value = line.partition(":")
                first[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(first.get("flags", "").split())
    info.update({
        "cpu_model": first.get("model name") or platform.processor() or "unknown",
        "vendor": first.get("vendor_id"), "cpu_family": first.get("cpu family"),
        "cpu_model_number": first.get("model"), "stepping": first.get("stepping"),
        # None: no /proc/cpuinfo flags to tell (not "absent").
        "flags": {f: (f in flags) if flags else None
                  for f in ("avx", "avx2", "fma", "avx512f", "hypervisor")},
    })
    return info


def machine_line(m=None):
    m = m or machine_info()
    flags = ", ".join(f"{k} {'yes' if v else 'no' if v is False else '?'}"
                      for k, v in m["flags"].items() if k != "avx")
    return (f"{m['cpu_model']} ({m['vendor']}, family {m['cpu_family']} model "
            f"{m['cpu_model_number']} stepping {m['stepping']}), {m['cpu_count']} cores "
            f"({m['usable_cpus']} usable); flags: {flags}")


def build_info(skipblocks):
    """Which build was measured: the extension file and its hash, and the git
    commit of the checkout (with a flag for uncommitted changes). Others may
    rebuild the extension between runs; this tells the numbers apart."""
    import hashlib
    import subprocess
    path = getattr(skipblocks._C, "__file__", None)
    info = {"extension": path, "extension_sha256": None, "git_commit": None,
            "git_dirty": None}
    if path and os.path.isfile(path):
        with open(path, "rb") as f:
            info["extension_sha256"] = hashlib.sha256(f.read()).hexdigest()[:16]
    root = os.path.dirname(HERE)
    try:
        info["git_commit"] = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=10).stdout.strip() or None
        status = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "csrc",
                                 "skipblocks", "setup.py"],
                                capture_output=True, text=True, timeout=10)
        info["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def build_line(b):
    commit = (b["git_commit"] or "?")[:10]
    dirty = " + uncommitted changes to csrc/skipblocks" if b["git_dirty"] else ""
    root = os.path.dirname(HERE)
    where = b["extension"] or "?"
    if b["extension"] and not os.path.abspath(b["extension"]).startswith(root + os.sep):
        where += " (installed, NOT built from this checkout: the commit may not match)"
    return (f"commit {commit}{dirty}; extension sha256 {b['extension_sha256']} "
            f"({where})")


def load_line(before, after):
    """The 1-minute load average around the run: on a machine with N cores, a
    load well above the threads a benchmark uses means it shared the cores
    with other work, and its times (more so its 2-thread times) are noisy."""
    line = (f"1-min load average {before:.2f} at the start, {after:.2f} at the end "
            f"({os.cpu_count()} cores)")
    # At the start, this process accounts for about 1 of the load; more than
    # half a core above that is other work.
    if before > 1.5:
        line += " -- other work was running: expect noisy times, 2-thread ones most"
    return line


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def command_line():
    """The command as the process received it: sys.orig_argv (3.10+) holds the
    interpreter and its options too."""
    return shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def summary_ms(ms):
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "runs": len(ms)}


def fmt_ms(s):
    return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"


def format_rows(headers, rows, right):
    """A plain-text table; columns whose index is in `right` are right-aligned."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def fmt(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def write_json(path, payload):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"  # benchmarks/results/*.tmp is gitignored
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)  # a reader never sees half a file


# -- the FMA peak (benchmarks/fma_peak.c) -----------------------------------------
PEAK_SOURCE = os.path.join(HERE, "fma_peak.c")


def _compiler():
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def build_peak(workdir):
    """Compiles fma_peak.c into workdir; (path, description) or (None, why not).
    One binary for both widths: its 512-bit loop is compiled for AVX-512F on
    its own (a target attribute), the rest needs AVX2 + FMA only."""
    flags = machine_info()["flags"]
    if platform.machine() not in ("x86_64", "AMD64") or not (flags["avx2"] and flags["fma"]):
        return None, "no AVX2+FMA on this CPU: the 256-bit FMA peak program cannot run"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler found (tried $CC, cc, gcc, clang)"
    exe = os.path.join(workdir, "fma_peak")
    # -mavx2 -mfma as well as the file's pragma: clang ignores GCC's pragma.
    cmd = [cc, "-O2", "-mavx2", "-mfma", "-o", exe, PEAK_SOURCE]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"compiling fma_peak.c failed: {exc}"
    if done.returncode != 0:
        return None, (f"compiling fma_peak.c failed (exit {done.returncode}): "
                      f"{done.stderr.strip()[:500]}")
    return exe, " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))


def run_peak(exe, runs=3, seconds=0.5, width=256):
    """[(GFLOP/s per CPU second, GFLOP/s per wall second)] of each run of the
    peak program (one thread) with width-bit FMAs, or an error string."""
    values = []
    for _ in range(runs):
        try:
            done = subprocess.run([exe, str(seconds), str(width)], capture_output=True,
                                  text=True, timeout=60 + 10 * seconds)
            if done.returncode != 0:
                # The program says why (e.g. no AVX-512F); a signal is a negative code.
                return (f"running fma_peak ({width}-bit) failed (exit {done.returncode}): "
                        f"{done.stderr.strip()[:300]}")
            cpu_rate, wall_rate = map(float, done.stdout.split()[:2])
            values.append((cpu_rate, wall_rate))
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            return (f"running fma_peak ({width}-bit) failed: {exc} "
                    f"{getattr(exc, 'stderr', '') or ''}")
    return values


def avx512_peak_skip_reason():
    """Why the 512-bit peak is not run on this CPU, or None when its flags
    show AVX-512F (the program checks again before any 512-bit instruction)."""
    avx512f = machine_info()["flags"]["avx512f"]
    if avx512f is None:
        return "not measured: no CPU flags (/proc/cpuinfo) to tell whether it has AVX-512F"
    if not avx512f:
        return "not measured: this CPU has no AVX-512F"
    return None

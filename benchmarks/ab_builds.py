"""A/B check of two builds of skipblocks: are the float32 results
bit-identical, and is the new build no slower?

    # results: every ISA path, exit 1 if any array differs (~15 s)
    python benchmarks/ab_builds.py bits  --old /work/baseline --new /work/main
    # speed: 5 rounds, exit 1 if any cell is > 3 % slower (~1 minute on a
    # quiet machine; up to ~6 with every busy-round rerun)
    python benchmarks/ab_builds.py speed --old /work/baseline --new /work/main
    python benchmarks/ab_builds.py speed --old ... --new ... --rounds 2 --isa avx2

Each build is a source tree whose extension was compiled in place
(python setup.py build_ext --inplace); it is imported by running a worker
subprocess of this script with PYTHONPATH=DIR (and nothing else on it), from
a scratch directory, and the worker checks that skipblocks and its _C
extension really came from DIR. Workers refuse to import torch (a meta-path
finder, as tests/test_no_torch.py does), so neither build may need it; the
parent process imports neither torch nor skipblocks.

What is run: the document's three demos at the shapes bench_demos.py uses --
resnet_demo() on 1x3x100x100, densenet_demo() on 1x3x100x100 (inputs
uniform in [0, 1)), se_demo() on 50x512x7x7 (standard normal) -- in eval and
in train mode, at 1 and 2 threads. Weights and inputs come from NumPy
Generators with fixed seeds, never from either build's RNG, so both builds
see the same bytes: every float entry of the model's own state_dict() is
drawn (seeded by the demo and the key, so the key order does not matter;
running_var positive), integer buffers (num_batches_tracked) are kept, and
the result is loaded with load_state_dict(). Each worker reports a SHA-256
of the weights and inputs it used; the parent checks they agree.

bits: for each ISA path -- scalar, avx2, avx512-source (set_isa("avx2") plus
_C._test_avx512_source_on_avx2(True), as tests/conftest.py does: the AVX-512
kernels' source compiled for AVX2) and, on a CPU with AVX-512F, avx512 --
one worker per build computes every cell (demo x mode x threads) with a
fresh model: eval mode records the output of one forward; train mode three
forwards on three different inputs in a row, recording each output and the
final state_dict (running_mean, running_var, num_batches_tracked updated by
BatchNorm; the parameters, which must not change). The arrays go to an .npz
per build and path in a temporary directory and are compared byte for byte
(dtype, shape and raw bytes, so NaN payloads and -0.0 count). A table per
cell says whether all its arrays are identical (the max |difference| and
the number of differing elements when not). The ISA each worker actually
ran (skipblocks.get_isa(), and whether the avx512-source switch took) is
printed, and a path that did not run as requested is a failure. Exit 1 if
anything differs or fails.

speed: --rounds rounds (default 5), each with a fresh worker subprocess per
build; every cell (demo x mode x threads, a fresh model per cell and
build) is timed one forward per timing (perf_counter): --warmup untimed
forwards (3), then --repeats timed ones (40); the worker's figure for the
cell is their median. How the two builds' workers share a round:

  --interleave cell (default): both workers are started, and per cell they
  take turns of --turn timed forwards (5), each turn opening with one
  untimed forward (the other build has just had the caches); who goes
  first alternates turn by turn, cell by cell and round by round. The
  waiting worker blocks on a pipe, so the two never compete for the cores,
  and old and new sample the same machine conditions within a fraction of
  a second. The CPU the waiting worker still uses (IPC; a thread pool
  winding down after its last call) is measured per wait: the same in
  both builds, it cancels in the ratio; if one build's mean exceeds the
  other's by more than 1 ms, the run fails (use --interleave process).
  --interleave process: one worker runs all its cells, then the other
  (old first in odd rounds, new first in even ones).

Why: this machine is a 2-core VM shared with other work (builds, test
runs); its speed drifts by tens of percent over seconds, which whole
1-2 s processes run one after the other do not sample alike.

Per cell: old ms and new ms, the median over rounds of each build's
per-round medians; ratio = old ms / new ms; and paired, the median over
rounds of each round's own old/new (> 1: the new build is faster). A cell
passes when its paired ratio (--verdict ratio: its ratio) is >= --min-ratio
(0.97). The verdict is on paired because it compares figures taken under
the same conditions: when the machine's speed moves from round to round,
the two builds' medians over rounds can come from different rounds (on
identical builds, ratio strays from 1.0 several times as far as paired).

The ISA is the best available (--isa auto) unless --isa says otherwise,
and both builds must report the same one. Other processes' CPU time during
each round is measured (/proc/stat minus this process tree's own, plus the
hypervisor's steal): a round in which that took more than 3 % of the cores
is discarded and rerun after --busy-wait seconds (10), at most
--busy-retries times (2) per round; rounds kept despite that are named in
a warning. Results, with every timing, go to
benchmarks/results/ab_builds.json (--json PATH). Exit 1 if
any cell fails.

Noise: 3 % is about the round-to-round noise of this machine's cells once
medianed over 5 rounds, so an unchanged build can fail a cell now and then;
run the self-test below to see the spread, and use more rounds (--rounds 15,
about 3 minutes when quiet) for a verdict to rely on.

Self-test: both commands with --old and --new naming the same build (or two
copies of it) must report all identical and ratios of about 1.0.
"""
import argparse
import hashlib
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

# Workers import skipblocks from the build directories, which someone may be
# editing: leave no __pycache__ behind there (the parent's own imports too).
sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, input shape, how the input is drawn): bench_demos.py's "*-doc" cases.
# Fixed here rather than read from either build's demos.DEMOS, so a build
# cannot change what it is compared on.
DEMOS = (("resnet", (1, 3, 100, 100), "rand"),
         ("densenet", (1, 3, 100, 100), "rand"),
         ("se", (50, 512, 7, 7), "randn"))
MODES = ("eval", "train")
THREADS = (1, 2)
TRAIN_CALLS = 3
SEED = 20240601
# speed: a round during which other processes and the hypervisor's steal
# took more than this share of the cores is rerun (an idle machine's
# daemons take well under 1 %).
BUSY_SHARE = 0.03
# speed --interleave cell: the most CPU per wait one build's waiting worker
# may use beyond the other's (both builds' IPC and pool wind-down measure
# a few tenths of a millisecond, the difference a tenth or so).
WAIT_EXCESS_MS = 1.0

# path -> (set_isa argument, whether the avx512-source test switch is on)
PATHS = {"scalar": ("scalar", False), "avx2": ("avx2", False),
         "avx512-source": ("avx2", True), "avx512": ("avx512", False)}


# -- worker (a subprocess with PYTHONPATH=<build dir>) -------------------------
class _NoTorch:
    """Meta-path finder refusing torch: a build that needs it fails loudly."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"ab_builds worker: torch must not be imported ({name})")
        return None


def _inside(path, directory):
    return os.path.realpath(path).startswith(os.path.realpath(directory) + os.sep)


def _import_build(build_dir):
    """skipblocks from build_dir, or SystemExit saying where it came from
    instead (skipblocks falls back to any other skipblocks/_C* on sys.path
    when its own extension is missing: that must not pass as this build)."""
    sys.meta_path.insert(0, _NoTorch())
    import skipblocks
    for what, path in (("skipblocks", skipblocks.__file__),
                       ("skipblocks._C", getattr(skipblocks._C, "__file__", None) or "?")):
        if not _inside(path, build_dir):
            raise SystemExit(f"{what} was imported from {path}, not from {build_dir} "
                             "(is the extension built there, in place?)")
    return skipblocks


def _select_path(sb, path):
    """Forces the ISA path; the label of what actually runs is checked by
    the parent (get_isa() after the work, and whether the switch took)."""
    if path == "auto":
        sb.set_isa("auto")
        return False
    isa, source = PATHS[path]
    sb.set_isa(isa)
    if source:
        toggle = getattr(sb._C, "_test_avx512_source_on_avx2", None)
        return bool(toggle(True)) if toggle is not None else False
    return False


def _ran_label(sb, source_on):
    isa = sb.get_isa()
    return "avx512-source" if source_on and isa == "avx2" else isa


def _stable_seed(*parts):
    """A Generator seed from names: the same in every process and build
    (Python's hash() of a str is salted per process)."""
    return [SEED] + [zlib.crc32(str(p).encode()) for p in parts]


def make_weights(demo, state):
    """New values for a state_dict: float entries drawn from a Generator
    seeded by (demo, key), in the entry's dtype; other entries copied.
    Scales keep activations O(1) through the demos' depth: conv/linear
    weights uniform +-1/sqrt(fan_in) (torch's default init range),
    BatchNorm weights in [0.5, 1.5), running_var in [0.5, 2) (positive),
    running_mean and biases N(0, 0.1^2). Nothing is 0 or 1, so folding a
    BatchNorm into a convolution is never an identity that hides rounding."""
    import numpy as np
    out = {}
    for key, value in state.items():
        value = np.asarray(value)
        if value.dtype.kind != "f":
            out[key] = value.copy()
            continue
        rng = np.random.default_rng(_stable_seed(demo, key))
        name = key.rsplit(".", 1)[-1]
        if name == "running_var":
            new = rng.uniform(0.5, 2.0, value.shape)
        elif value.ndim >= 2:
            bound = 1.0 / np.sqrt(np.prod(value.shape[1:]))
            new = rng.uniform(-bound, bound, value.shape)
        elif name == "weight":
            new = rng.uniform(0.5, 1.5, value.shape)
        else:
            new = rng.normal(0.0, 0.1, value.shape)
        out[key] = new.astype(value.dtype)
    return out


def make_inputs(demo, shape, how, count):
    import numpy as np
    rng = np.random.default_rng(_stable_seed(demo, "input"))
    draw = rng.random if how == "rand" else rng.standard_normal
    return [draw(shape).astype(np.float32) for _ in range(count)]


def _digest(arrays):
    """SHA-256 over (name, dtype, shape, bytes) of each array, in name order."""
    import numpy as np
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _set_threads(sb, n):
    sb.set_num_threads(n)
    got = sb.get_num_threads()
    if got != n:
        raise SystemExit(f"set_num_threads({n}) left get_num_threads() = {got}")


def _fresh_model(sb, demos, demo, weights, mode):
    sb.manual_seed(0)  # the build's own init is overwritten; seeded anyway
    model = getattr(demos, f"{demo}_demo")()
    model.load_state_dict(weights)
    model.train(mode == "train")
    return model


def given_digests(given):
    """{demo: digests of its weights and inputs}: the parent checks that both
    builds were fed the same bytes, and that neither wrote into them."""
    return {demo: {"weights": _digest(weights),
                   "inputs": _digest({f"x{i}": x for i, x in enumerate(inputs)})}
            for demo, (weights, inputs) in given.items()}


def _prepare(demos, sb, selected, n_inputs):
    """{demo: (weights, inputs)} and their digests."""
    given = {}
    for demo, shape, how in DEMOS:
        if demo in selected:
            weights = make_weights(demo, getattr(demos, f"{demo}_demo")().state_dict())
            given[demo] = (weights, make_inputs(demo, shape, how, n_inputs))
    return given, given_digests(given)


def _build_facts(sb, build_dir):
    """Which build ran: its extension's hash, and a hash of the package's
    Python sources (the refactor may change those too)."""
    ext = sb._C.__file__
    with open(ext, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()[:16]
    package = os.path.dirname(os.path.abspath(sb.__file__))
    py = hashlib.sha256()
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            full = os.path.join(root, name)
            py.update(os.path.relpath(full, package).encode() + b"\0")
            with open(full, "rb") as f:
                py.update(f.read())
    return {"dir": build_dir, "skipblocks_file": sb.__file__, "extension": ext,
            "extension_sha256": sha, "python_sha256": py.hexdigest()[:16],
            "version": getattr(sb, "__version__", None),
            "available_isas": list(sb.available_isas())}


def worker_bits(args):
    import numpy as np
    sb = _import_build(args.build)
    from skipblocks import demos
    given, digests = _prepare(demos, sb, args.demos, TRAIN_CALLS)
    source_on = _select_path(sb, args.path)
    isa_before = _ran_label(sb, source_on)
    arrays, cells = {}, []
    for demo, _, _ in DEMOS:
        if demo not in given:
            continue
        weights, inputs = given[demo]
        for threads in args.threads:
            _set_threads(sb, threads)
            for mode in MODES:
                cell = f"{demo}/{mode}/t{threads}"
                model = _fresh_model(sb, demos, demo, weights, mode)
                names = []
                # np.array copies: a build may hand out (and later reuse) its
                # own buffers, and the state_dict holds the module's arrays.
                for i, x in enumerate(inputs[:1] if mode == "eval" else inputs):
                    arrays[f"{cell}/out{i}"] = np.array(model(x), copy=True)
                    names.append(f"out{i}")
                if mode == "train":
                    for key, value in model.state_dict().items():
                        arrays[f"{cell}/state/{key}"] = np.array(value, copy=True)
                        names.append(f"state/{key}")
                cells.append({"cell": cell, "demo": demo, "mode": mode, "threads": threads,
                              "arrays": names})
    np.savez(args.out, **arrays)
    return {"build": _build_facts(sb, args.build), "path": args.path,
            "isa_before": isa_before, "isa_ran": _ran_label(sb, source_on),
            "cells": cells, "given": digests, "given_after": given_digests(given),
            "torch_imported": "torch" in sys.modules}


class SpeedSession:
    """The timing side of a speed worker: one build imported, the ISA path
    selected, weights and inputs made; measure() times one cell."""

    def __init__(self, args):
        self.sb = sb = _import_build(args.build)
        from skipblocks import demos
        self.demos, self.args = demos, args
        self.given, self.digests = _prepare(demos, sb, args.demos, 1)
        self.source_on = _select_path(sb, args.path)
        self.isa_before = _ran_label(sb, self.source_on)
        self.cells = [{"cell": f"{demo}/{mode}/t{threads}", "demo": demo, "mode": mode,
                       "threads": threads}
                      for demo, _, _ in DEMOS if demo in self.given
                      for mode in MODES for threads in args.threads]

    def prepare(self, cell):
        """A fresh model for the cell, and --warmup untimed forwards."""
        c = self.cell = next(c for c in self.cells if c["cell"] == cell)
        _set_threads(self.sb, c["threads"])
        weights, inputs = self.given[c["demo"]]
        self.model = _fresh_model(self.sb, self.demos, c["demo"], weights, c["mode"])
        self.x = inputs[0]
        for _ in range(self.args.warmup):
            self.model(self.x)

    def time_calls(self, n):
        """Wall ms of n forwards of the prepared cell, one by one."""
        ms = []
        for _ in range(n):
            start = time.perf_counter()
            self.model(self.x)
            ms.append((time.perf_counter() - start) * 1e3)
        return ms

    def measure(self, cell):
        self.prepare(cell)
        ms = self.time_calls(self.args.repeats)
        return {**self.cell, "times_ms": ms, "median_ms": statistics.median(ms)}

    def report(self, **extra):
        return {"build": _build_facts(self.sb, self.args.build), "path": self.args.path,
                "isa_before": self.isa_before, "isa_ran": _ran_label(self.sb, self.source_on),
                "given": self.digests, "given_after": given_digests(self.given),
                "torch_imported": "torch" in sys.modules, **extra}


def worker_speed(args):
    """--interleave process: every cell in turn, then the report."""
    session = SpeedSession(args)
    return session.report(cells=[session.measure(c["cell"]) for c in session.cells])


def worker_serve(args):
    """--interleave cell: the parent drives two of these (old and new) in
    turns over stdin/stdout, one JSON line each way: {"prepare": cell}, then
    {"turn": n}s -- one untimed forward (the other build has just had the
    caches), then n timed ones -- and {} for the final report. The waiting
    worker blocks on stdin; any CPU time it still uses while the other
    measures (a thread pool spinning after its last call) would slow the
    other build down, so each reply says how much it used during the wait
    before the request."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the protocol
    session = SpeedSession(args)

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    send({"cells": session.cells})
    idle_since = None
    for line in sys.stdin:
        request = json.loads(line)
        idle = None if idle_since is None else (time.process_time() - idle_since) * 1e3
        if "prepare" in request:
            session.prepare(request["prepare"])
            reply = {"idle_cpu_ms": idle}
        elif "turn" in request:
            session.time_calls(1)
            reply = {"idle_cpu_ms": idle, "times_ms": session.time_calls(request["turn"])}
        else:
            send(session.report())
            return 0
        idle_since = time.process_time()
        send(reply)
    return 1  # the parent went away


def worker_main(args):
    if args.kind == "serve":
        return worker_serve(args)
    report = worker_bits(args) if args.kind == "bits" else worker_speed(args)
    with open(args.report, "w") as f:
        json.dump(report, f)
    return 0


# -- parent --------------------------------------------------------------------
def worker_command(kind, build_dir, path, args, scratch, tag):
    """(argv, environment) of a worker of one build."""
    cmd = [sys.executable, os.path.abspath(__file__), "_worker", kind,
           "--build", build_dir, "--path", path,
           "--report", os.path.join(scratch, f"{tag}.json"),
           "--out", os.path.join(scratch, f"{tag}.npz"),
           "--threads", *map(str, args.threads), "--demos", *args.demos]
    if kind != "bits":
        cmd += ["--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    env = dict(os.environ)
    # Only the build under test on the path; the ISA and thread count are set
    # explicitly, so the environment's switches must not interfere (or fail
    # the import of one build and not the other).
    env["PYTHONPATH"] = build_dir
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for var in ("SKIPBLOCKS_ISA", "SKIPBLOCKS_NUM_THREADS", "PYTHONSTARTUP", "PYTHONHOME"):
        env.pop(var, None)
    return cmd, env


def _check_report(report, where):
    if report["torch_imported"]:  # the blocker makes this unreachable; checked anyway
        raise RuntimeError(f"worker ({where}): torch was imported")
    return report


def run_worker(kind, build_dir, path, args, scratch, tag):
    """Runs one worker to the end; (report dict, seconds, npz path), or
    raises RuntimeError with the worker's stderr."""
    cmd, env = worker_command(kind, build_dir, path, args, scratch, tag)
    start = time.perf_counter()
    # cwd: a scratch directory, so that `import skipblocks` cannot find a
    # source tree in the current directory first.
    done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True,
                          timeout=args.timeout)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"worker ({kind}, {build_dir}, {path}) exited {done.returncode}:\n"
                           + (done.stderr.strip()[-3000:] or done.stdout.strip()[-3000:]))
    with open(os.path.join(scratch, f"{tag}.json")) as f:
        report = _check_report(json.load(f), f"{kind}, {build_dir}")
    return report, seconds, os.path.join(scratch, f"{tag}.npz")


class Server:
    """A serve worker of one build (--interleave cell), asked for one cell
    at a time."""

    def __init__(self, build_dir, args, scratch, tag):
        cmd, env = worker_command("serve", build_dir, args.isa, args, scratch, tag)
        self.where, self.timeout = f"serve, {build_dir}", args.timeout
        # stderr to a file: a pipe nobody reads could fill up and block the worker.
        self.stderr = open(os.path.join(scratch, f"{tag}.err"), "w+")
        self.proc = subprocess.Popen(cmd, cwd=scratch, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr)

    def read(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self._kill()
            self.stderr.seek(0)
            raise RuntimeError(f"worker ({self.where}) "
                               f"{'timed out' if not ready else 'exited'}:\n"
                               + self.stderr.read().strip()[-3000:])
        return json.loads(line)

    def ask(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def finish(self):
        report = _check_report(self.ask({}), self.where)
        self.proc.wait(timeout=60)
        return report

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()  # this worker only: its own pid
            self.proc.wait()

    def stop(self):
        self._kill()
        self.stderr.close()


def git_facts(directory):
    """The git commit of a build directory and whether its sources have
    uncommitted changes; None when it is not a checkout (a plain copy)."""
    try:
        head = subprocess.run(["git", "-C", directory, "rev-parse", "--show-toplevel", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        top, commit = head.stdout.split()[:2]
        if os.path.realpath(top) != os.path.realpath(directory):
            return {"git_commit": None, "git_dirty": None}  # inside some other repository
        status = subprocess.run(["git", "-C", directory, "status", "--porcelain", "--",
                                 "csrc", "skipblocks", "setup.py"],
                                capture_output=True, text=True, timeout=10)
        return {"git_commit": commit, "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {"git_commit": None, "git_dirty": None}


def build_line(label, facts, git):
    commit = git["git_commit"][:12] if git["git_commit"] else "none: not a git checkout"
    dirty = " + uncommitted changes" if git["git_dirty"] else ""
    return (f"{label}: {facts['dir']}  (commit {commit}{dirty}; sha256 of _C "
            f"{facts['extension_sha256']}, of skipblocks/**.py {facts['python_sha256']}; "
            f"ISAs {', '.join(facts['available_isas'])})")


def same_build_note(args, facts):
    """A line when old and new cannot differ: the harness is testing itself."""
    if os.path.realpath(args.old) == os.path.realpath(args.new):
        return "note: --old and --new are the same directory (a self-test of the harness)"
    if {"old", "new"} <= facts.keys() and all(
            facts["old"][k] == facts["new"][k] for k in ("extension_sha256", "python_sha256")):
        return ("note: both builds have the same _C binary and Python sources (a self-test "
                "of the harness)")
    return None


def default_paths():
    """The ISA paths this CPU can run, from its flags (not from either build:
    a build that lost a path must fail, not shrink the test)."""
    from common import machine_info
    flags = machine_info()["flags"]
    paths = ["scalar"]
    if flags["avx2"] and flags["fma"]:
        paths += ["avx2", "avx512-source"]
        if flags["avx512f"]:
            paths.append("avx512")
    return paths


def _bytes_equal(a, b):
    import numpy as np
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return np.array_equal(np.ascontiguousarray(a).reshape(-1).view(np.uint8),
                          np.ascontiguousarray(b).reshape(-1).view(np.uint8))


def _difference(a, b):
    """(max |a - b| as text, number of elements whose bytes differ)."""
    import numpy as np
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}", max(a.size, b.size)
    n = a.size
    ra = np.ascontiguousarray(a).reshape(n, -1).view(np.uint8) if n else a
    rb = np.ascontiguousarray(b).reshape(n, -1).view(np.uint8) if n else b
    differing = int(np.count_nonzero((ra != rb).any(axis=1))) if n else 0
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(-1)
    finite = d[~np.isnan(d)]
    # 0 with differing elements: only -0.0/+0.0 or NaN bits differ.
    text = f"{finite.max():.3g}" if finite.size else "nan"
    if finite.size < d.size:
        text += " (+NaN)"
    return text, differing


def compare_npz(old_npz, new_npz, old_cells, new_cells):
    """One row per cell: arrays compared, identical, max |diff|, elements differing."""
    import numpy as np
    rows = []
    with np.load(old_npz) as old, np.load(new_npz) as new:
        order = [c["cell"] for c in old_cells]
        order += [c["cell"] for c in new_cells if c["cell"] not in order]
        for cell in order:
            names = sorted({k for k in old.files if k.startswith(cell + "/")}
                           | {k for k in new.files if k.startswith(cell + "/")})
            same, differing, notes = 0, 0, []
            for name in names:
                if name not in old.files or name not in new.files:
                    notes.append(f"{name[len(cell) + 1:]} only in "
                                 f"{'new' if name in new.files else 'old'}")
                    continue
                a, b = old[name], new[name]
                if _bytes_equal(a, b):
                    same += 1
                    continue
                text, n = _difference(a, b)
                differing += n
                notes.append(f"{name[len(cell) + 1:]}: max|diff| {text}, {n}/{a.size} elems")
            demo, mode, t = cell.split("/")
            rows.append({"cell": cell, "demo": demo, "mode": mode, "threads": int(t[1:]),
                         "arrays": len(names), "identical_arrays": same,
                         "identical": same == len(names) and bool(names),
                         "differing_elements": differing, "notes": notes})
    return rows


def thread_invariance(npz_path, cells):
    """Within one build: are the 1- and 2-thread results bit-identical (the
    runtime's documented promise)? Informational; not part of the verdict."""
    import numpy as np
    by_key = {}
    with np.load(npz_path) as z:
        for c in cells:
            for name in c["arrays"]:
                by_key.setdefault((c["demo"], c["mode"], name), []).append(
                    z[f"{c['cell']}/{name}"])
    return all(all(_bytes_equal(v[0], w) for w in v[1:]) for v in by_key.values())


def _check_given(reports, failures, where):
    """Both builds must have been fed the same weights and inputs, and left
    them as they were (a forward that writes into its input, or into the
    state_dict it was loaded from, would also skew the cells after it)."""
    old, new = reports["old"]["given"], reports["new"]["given"]
    if old != new:
        failures.append(f"{where}: the builds were not given the same weights/inputs "
                        f"(old {old}, new {new}) -- a state_dict key, shape or dtype changed?")
    for label, report in reports.items():
        if report["given_after"] != report["given"]:
            failures.append(f"{where}: the {label} build changed the weights or inputs it was "
                            f"given (before {report['given']}, after {report['given_after']})")


def cmd_bits(args):
    from common import format_rows, machine_line
    paths = args.paths or default_paths()
    print(f"machine: {machine_line()}")
    scratch = tempfile.mkdtemp(prefix="ab_builds-bits-")
    failures, table, isa_rows, timings, facts = [], [], [], [], {}
    t0 = time.perf_counter()
    try:
        for path in paths:
            reports, npzs = {}, {}
            for label in ("old", "new"):
                build_dir = getattr(args, label)
                try:
                    reports[label], secs, npzs[label] = run_worker(
                        "bits", build_dir, path, args, scratch, f"{label}-{path}")
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failures.append(f"{path}: {label} build: {exc}")
                    isa_rows.append([path, label, "(worker failed)", "-", "FAIL"])
                    continue
                timings.append((f"{path}/{label}", secs))
                r = reports[label]
                facts[label] = r["build"]
                ok = r["isa_ran"] == path and r["isa_before"] == path
                if not ok:
                    failures.append(f"{path}: {label} build ran {r['isa_ran']!r} "
                                    f"(before the work: {r['isa_before']!r})")
                invariant = thread_invariance(npzs[label], r["cells"])
                isa_rows.append([path, label, r["isa_ran"],
                                 "yes" if invariant else "NO", "ok" if ok else "FAIL"])
            if len(reports) < 2:
                continue
            _check_given(reports, failures, path)
            for row in compare_npz(npzs["old"], npzs["new"], reports["old"]["cells"],
                                   reports["new"]["cells"]):
                row["path"] = path
                table.append(row)
                if not row["identical"]:
                    failures.append(f"{path} {row['cell']}: " + "; ".join(row["notes"][:3]))
            if not args.keep:  # tens of MB each: drop them as we go
                for label in ("old", "new"):
                    os.remove(npzs[label])
    finally:
        if args.keep:
            print(f"(kept the workers' .npz and reports in {scratch})")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    total = time.perf_counter() - t0

    for label in ("old", "new"):
        if label in facts:
            print(build_line(label, facts[label], git_facts(getattr(args, label))))
    note = same_build_note(args, facts)
    if note:
        print(note)
    print()
    print("ISA each worker ran (skipblocks.get_isa(); avx512-source = 'avx2' with the "
          "_test_avx512_source_on_avx2 switch on)")
    print("\n".join(format_rows(["path", "build", "ran", "1 vs 2 threads identical", "check"],
                                isa_rows, right=set())))
    print()
    rows = [[r["path"], r["demo"], r["mode"], str(r["threads"]), str(r["arrays"]),
             "yes" if r["identical"] else "NO",
             "" if r["identical"] else "; ".join(r["notes"][:2])] for r in table]
    print("\n".join(format_rows(["path", "demo", "mode", "threads", "arrays", "identical",
                                 "difference"], rows, right={3, 4})))
    print(f"arrays: eval = the output; train = {TRAIN_CALLS} outputs + the final state_dict. "
          "identical = same dtype, shape and bytes.")
    print()
    print("time: " + ", ".join(f"{tag} {s:.1f} s" for tag, s in timings) +
          f"; total {total:.1f} s")
    if failures:
        print(f"\nFAIL ({len(failures)}):")
        for f in failures:
            print(f"  {f}")
        return 1
    n_arrays = sum(r["arrays"] for r in table)
    print(f"\nOK: {len(table)} cells, {n_arrays} arrays, all bit-identical")
    return 0


def cpu_snapshot():
    """(CPU seconds the machine's processes and kernel have run, seconds the
    hypervisor gave its CPUs to other machines, CPU seconds of this process
    and its finished children), or None without /proc/stat. Between two
    snapshots, run minus ours is what other processes took; with the stolen
    time, what the timings shared the cores with."""
    import resource
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:3]) + sum(fields[5:7])
    ours = sum(getattr(resource.getrusage(who), k)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for k in ("ru_utime", "ru_stime"))
    return busy / tick, fields[7] / tick, ours


def other_work(before, after, seconds):
    """CPU other processes used and the hypervisor stole between two
    snapshots, and both as a share of all cores over `seconds` of wall
    time; None when unknown."""
    if before is None or after is None or seconds <= 0:
        return None
    others = max(0.0, (after[0] - before[0]) - (after[2] - before[2]))
    steal = after[1] - before[1]
    return {"cpu_s": others, "steal_s": steal,
            "share_of_cores": (others + steal) / (seconds * (os.cpu_count() or 1))}


def speed_round_process(r, args, scratch, log):
    """One round, --interleave process: a worker of each build times every
    cell, the two one after the other (old first in even rounds)."""
    reports = {}
    for label in (("old", "new") if r % 2 == 0 else ("new", "old")):
        log(f"  round {r + 1}/{args.rounds}: {label} ...")
        reports[label], _, _ = run_worker("speed", getattr(args, label), args.isa, args,
                                          scratch, f"{label}-r{r}")
    return reports


def speed_round_cell(r, args, scratch, log):
    """One round, --interleave cell: a fresh worker of each build; per cell,
    both prepare it, then they take turns of --turn timed calls until each
    has --repeats (who goes first alternating turn by turn), so old and new
    sample the same machine conditions within a fraction of a second.

    Each cell's figures carry the CPU each worker used while waiting, per
    wait (see worker_serve), for cmd_speed's check of it."""
    log(f"  round {r + 1}/{args.rounds} ...")
    servers = {}
    try:
        for label in ("old", "new"):
            servers[label] = Server(getattr(args, label), args, scratch, f"{label}-r{r}")
        cells = [servers[label].read()["cells"] for label in ("old", "new")][0]
        measured = {"old": [], "new": []}
        for i, c in enumerate(cells):
            times, waits = {"old": [], "new": []}, {"old": [], "new": []}
            for label in ("old", "new"):
                servers[label].ask({"prepare": c["cell"]})
            turn = 0
            while len(times["old"]) < args.repeats:
                n = min(args.turn, args.repeats - len(times["old"]))
                for label in (("old", "new") if (r + i + turn) % 2 == 0 else ("new", "old")):
                    reply = servers[label].ask({"turn": n})
                    times[label] += reply["times_ms"]
                    waits[label].append(reply["idle_cpu_ms"])
                turn += 1
            for label in ("old", "new"):
                measured[label].append({**c, "times_ms": times[label],
                                        "median_ms": statistics.median(times[label]),
                                        "wait_cpu_ms": waits[label]})
        reports = {}
        for label in ("old", "new"):
            reports[label] = servers[label].finish()
            reports[label]["cells"] = measured[label]
        return reports
    finally:
        for server in servers.values():
            server.stop()


def cmd_speed(args):
    from common import (RESULTS, command_line, format_rows, load_average, load_line,
                        machine_info, machine_line, now_utc, write_json)
    json_path = args.json or os.path.join(RESULTS, "ab_builds.json")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    load_before = load_average()
    scratch = tempfile.mkdtemp(prefix="ab_builds-speed-")
    per_round = {"old": {}, "new": {}}  # build -> cell -> [median ms of each round]
    raw = {"old": {}, "new": {}}  # build -> cell -> [[ms of each timed call] per round]
    cell_info, isas, facts, failures = {}, {"old": set(), "new": set()}, {}, []
    waits = {"old": {}, "new": {}}  # build -> cell -> CPU ms of each wait, all rounds
    run_round = speed_round_cell if args.interleave == "cell" else speed_round_process
    background = []  # per round kept: other processes' CPU while it ran
    discarded = []  # rounds run again because other work took the cores
    t0, snap0 = time.perf_counter(), cpu_snapshot()
    try:
        for r in range(args.rounds):
            for attempt in range(args.busy_retries + 1):
                t_round, snap = time.perf_counter(), cpu_snapshot()
                reports = run_round(r, args, scratch, log)
                bg = other_work(snap, cpu_snapshot(), time.perf_counter() - t_round)
                if bg is None or bg["share_of_cores"] <= BUSY_SHARE \
                        or attempt == args.busy_retries:
                    break
                # Another process took CPU the workers needed: the round's
                # figures say little about the builds. Wait, then redo it.
                discarded.append({"round": r + 1, **bg})
                log(f"  round {r + 1}: other work took {100 * bg['share_of_cores']:.0f} % "
                    f"of the cores; discarded, rerun in {args.busy_wait:g} s")
                time.sleep(args.busy_wait)
            background.append(bg)
            for label, report in reports.items():
                facts[label] = report["build"]
                isas[label].update({report["isa_before"], report["isa_ran"]})
                for c in report["cells"]:
                    per_round[label].setdefault(c["cell"], []).append(c["median_ms"])
                    raw[label].setdefault(c["cell"], []).append(c["times_ms"])
                    waits[label].setdefault(c["cell"], []).extend(c.get("wait_cpu_ms", []))
                    cell_info[c["cell"]] = (c["demo"], c["mode"], c["threads"])
            _check_given(reports, failures, f"speed round {r + 1}")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"FAIL: {exc}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    total = time.perf_counter() - t0
    overall = other_work(snap0, cpu_snapshot(), total)

    # The ISA must be the requested one and the same in both builds: a
    # build that quietly fell back to a narrower path is not comparable.
    ran = sorted(isas["old"] | isas["new"])
    if len(ran) != 1 or (args.isa != "auto" and ran != [args.isa]):
        failures.append(f"ISA: requested {args.isa!r}; old ran {sorted(isas['old'])}, "
                        f"new ran {sorted(isas['new'])}")
    # A waiting worker's CPU use (IPC, a thread pool winding down) overlaps
    # the other's turn. Alike in both builds, it cancels in the ratio; one
    # build using much more than the other (a pool that spins for
    # milliseconds after its last call) would inflate the other's times.
    wait_ms = {k: statistics.mean(x for v in w.values() for x in v)
               for k, w in waits.items() if any(w.values())}
    if len(wait_ms) == 2 and abs(wait_ms["old"] - wait_ms["new"]) > WAIT_EXCESS_MS:
        more = max(wait_ms, key=wait_ms.get)
        failures.append(f"waiting for its turn, the {more} build's worker used "
                        f"{wait_ms[more]:.2f} ms of CPU per wait against the other's "
                        f"{min(wait_ms.values()):.2f} ms: it slowed the other build's turns "
                        "down; rerun with --interleave process")

    cells = []
    for cell, (demo, mode, threads) in cell_info.items():
        old_r, new_r = per_round["old"].get(cell, []), per_round["new"].get(cell, [])
        if len(old_r) != args.rounds or len(new_r) != args.rounds:
            failures.append(f"{cell}: measured in {len(old_r)} old / {len(new_r)} new rounds")
            continue
        old_ms, new_ms = statistics.median(old_r), statistics.median(new_r)
        ratio = old_ms / new_ms
        round_ratios = [o / n for o, n in zip(old_r, new_r)]
        paired = statistics.median(round_ratios)
        verdict = ratio if args.verdict == "ratio" else paired
        ok = verdict >= args.min_ratio
        if not ok:
            failures.append(f"{cell}: {args.verdict} {verdict:.3f} < {args.min_ratio}")
        cells.append({"cell": cell, "demo": demo, "mode": mode, "threads": threads,
                      "input_shape": list(next(s for d, s, _ in DEMOS if d == demo)),
                      "old_ms": old_ms, "new_ms": new_ms, "ratio": ratio, "pass": ok,
                      "paired_ratio": paired,
                      "old_round_medians_ms": old_r, "new_round_medians_ms": new_r,
                      "round_ratios": round_ratios,
                      "old_times_ms": raw["old"][cell], "new_times_ms": raw["new"][cell]})

    m = machine_info()
    meta = {"date": now_utc(), "command": command_line(), "cwd": os.getcwd(),
            "machine_info": m, "cpu_model": m["cpu_model"],
            "load_average_1min": [load_before, load_average()],
            "isa_requested": args.isa, "isa_ran": {k: sorted(v) for k, v in isas.items()},
            "builds": {k: {**facts[k], **git_facts(getattr(args, k))} for k in facts},
            "rounds": args.rounds, "warmup": args.warmup, "repeats": args.repeats,
            "interleave": args.interleave, "turn": args.turn, "verdict": args.verdict,
            "min_ratio": args.min_ratio,
            "threads": args.threads, "demos": args.demos, "seconds": total,
            "wait_cpu_ms_mean": wait_ms,
            "other_work": overall, "other_work_per_round": background,
            "discarded_busy_rounds": discarded, "busy_share": BUSY_SHARE,
            "note": "times in ms of one forward: per round, the median of `repeats` timed "
                    "calls after `warmup`; old_ms/new_ms = median over rounds; ratio = "
                    "old_ms / new_ms (> 1: new faster); paired_ratio = median over rounds "
                    "of that round's old/new; pass = the `verdict` one >= min_ratio."}

    print(f"machine: {machine_line(m)}")
    print(f"CPU:     {m['cpu_model']}")
    print(f"ISA:     requested {args.isa}; ran: old {', '.join(sorted(isas['old']))}, "
          f"new {', '.join(sorted(isas['new']))}")
    for label in ("old", "new"):
        print(build_line(label, facts[label], git_facts(getattr(args, label))))
    note = same_build_note(args, facts)
    if note:
        print(note)
    print(f"load:    {load_line(*meta['load_average_1min'])}")
    busy = [i for i, b in enumerate(background) if b and b["share_of_cores"] > BUSY_SHARE]
    if overall is not None:
        print(f"         during the run, other processes used {overall['cpu_s']:.1f} CPU s "
              f"and the hypervisor stole {overall['steal_s']:.1f} s "
              f"({100 * overall['share_of_cores']:.1f} % of the {os.cpu_count()} cores)"
              + (f"; {len(discarded)} round(s) discarded and rerun for that" if discarded
                 else "")
              + (f"; WARNING: kept rounds {', '.join(str(i + 1) for i in busy)} still shared "
                 "the cores with other work, their times are not to be trusted -- rerun on "
                 "a quiet machine" if busy else ""))
    if args.interleave == "cell":
        method = ("a fresh worker per build per round, the two taking turns cell by cell "
                  "(who goes first alternating)")
    else:
        method = ("a fresh worker per build per round, one after the other (who goes first "
                  "alternating)")
    print(f"method:  {args.rounds} rounds; {method}; {args.warmup} warm-up + {args.repeats} "
          "timed forwards per cell and build")
    if wait_ms:
        print("         CPU a waiting worker used, mean per wait: " + ", ".join(
            f"{k} {v:.2f} ms" for k, v in wait_ms.items())
              + f" (a difference above {WAIT_EXCESS_MS:g} ms fails the run)")
    print()
    rows = [[c["demo"], c["mode"], str(c["threads"]), f"{c['old_ms']:.3f}", f"{c['new_ms']:.3f}",
             f"{c['ratio']:.3f}", f"{c['paired_ratio']:.3f}",
             f"{min(c['round_ratios']):.3f}-{max(c['round_ratios']):.3f}",
             "yes" if c["pass"] else "NO"] for c in cells]
    print("\n".join(format_rows(["demo", "mode", "threads", "old ms", "new ms", "ratio",
                                 "paired", "round ratios", "pass"], rows,
                                right={2, 3, 4, 5, 6, 7})))
    print(f"ms: median over rounds of each round's median; ratio = old / new (> 1: new "
          "faster); paired: median over rounds of the round's old/new; round ratios: their "
          f"min-max; pass: {args.verdict} >= {args.min_ratio}.")
    print(f"\ntime: {total:.1f} s")
    write_json(json_path, {"meta": meta, "cells": cells, "failures": failures,
                           "passed": not failures})
    print(f"wrote {json_path}")
    if failures:
        print(f"\nFAIL ({len(failures)}):")
        for f in failures:
            print(f"  {f}")
        return 1
    print(f"\nOK: {len(cells)} cells, every {args.verdict} >= {args.min_ratio}")
    return 0


def main(argv=None):
    demo_names = [d for d, _, _ in DEMOS]
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{bits,speed}")

    def common_options(p):
        p.add_argument("--old", required=True, help="the old build's directory (on PYTHONPATH)")
        p.add_argument("--new", required=True, help="the new build's directory")
        p.add_argument("--threads", type=int, nargs="+", default=list(THREADS),
                       help="thread counts (default: 1 2)")
        p.add_argument("--demos", nargs="+", choices=demo_names, default=demo_names,
                       help="demos to run (default: all three)")
        p.add_argument("--timeout", type=float, default=900,
                       help="seconds one worker may take (default 900)")

    bits = sub.add_parser("bits", help="bit-identical results on every ISA path")
    common_options(bits)
    bits.add_argument("--paths", nargs="+", choices=list(PATHS),
                      help="ISA paths (default: all this CPU can run)")
    bits.add_argument("--keep", action="store_true",
                      help="keep the workers' .npz files (printed where)")

    speed = sub.add_parser("speed", help="no slowdown, cell by cell")
    common_options(speed)
    speed.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    speed.add_argument("--warmup", type=int, default=3,
                       help="untimed forwards per cell (default 3)")
    speed.add_argument("--repeats", type=int, default=40,
                       help="timed forwards per cell, build and round (default 40)")
    speed.add_argument("--isa", default="auto", choices=["auto"] + list(PATHS),
                       help="ISA path (default auto: the best available)")
    speed.add_argument("--turn", type=int, default=5,
                       help="--interleave cell: timed calls per turn (default 5)")
    speed.add_argument("--interleave", choices=["cell", "process"], default="cell",
                       help="cell (default): per cell, the two builds' workers take turns "
                            "of --turn timed calls; process: one worker runs all its cells, "
                            "then the other")
    speed.add_argument("--verdict", choices=["paired", "ratio"], default="paired",
                       help="what a cell's pass is decided on: paired (default), the median "
                            "over rounds of each round's old/new; ratio, the ratio of the "
                            "two builds' medians over rounds")
    speed.add_argument("--min-ratio", type=float, default=0.97,
                       help="a cell passes when old/new >= this (default 0.97)")
    speed.add_argument("--busy-retries", type=int, default=2,
                       help="rerun a round up to this many times when other processes "
                            f"and hypervisor steal took more than {100 * BUSY_SHARE:g} %% of "
                            "the cores during it (default 2)")
    speed.add_argument("--busy-wait", type=float, default=10,
                       help="seconds to wait before such a rerun (default 10)")
    speed.add_argument("--json", help="where to write the results "
                                      "(default benchmarks/results/ab_builds.json)")

    # The worker: run by the parent, never by hand.
    worker = sub.add_parser("_worker")
    worker.add_argument("kind", choices=["bits", "speed", "serve"])
    worker.add_argument("--build", required=True)
    worker.add_argument("--path", required=True)
    worker.add_argument("--report", required=True)
    worker.add_argument("--out", required=True)
    worker.add_argument("--threads", type=int, nargs="+", required=True)
    worker.add_argument("--demos", nargs="+", required=True)
    worker.add_argument("--warmup", type=int, default=3)
    worker.add_argument("--repeats", type=int, default=40)

    args = parser.parse_args(argv)
    if args.command == "_worker":
        return worker_main(args)
    if any(n < 1 for n in args.threads):
        parser.error("--threads must be >= 1")
    if args.command == "speed" and (min(args.rounds, args.repeats, args.turn) < 1
                                    or min(args.warmup, args.busy_retries, args.busy_wait) < 0):
        parser.error("--rounds, --repeats and --turn must be >= 1; --warmup, --busy-retries "
                     "and --busy-wait >= 0")
    for label in ("old", "new"):
        d = getattr(args, label)
        if not os.path.isdir(os.path.join(d, "skipblocks")):
            parser.error(f"--{label} {d}: no skipblocks/ package there")
        setattr(args, label, os.path.abspath(d))
    status = cmd_bits(args) if args.command == "bits" else cmd_speed(args)
    # The parent compares files and times processes: it must not have needed torch.
    assert "torch" not in sys.modules and "skipblocks" not in sys.modules
    return status


if __name__ == "__main__":
    sys.exit(main())

"""The command line of skipblocks: the ``skipblocks`` console script and
``python -m skipblocks`` (the same program).

Subcommands (``skipblocks COMMAND --help`` shows each one's options and
examples):

* ``demo`` (the default): the document's three demos, then U-Net and the SE
  systems; their output shapes and, when torch is installed, their parity
  errors against the document's torch modules.
* ``parity``: per-layer parity tables (skipblocks.parity.compare) against
  the torch reference; needs torch.
* ``bench``: a short benchmark against torch (skipblocks alone without it).
* ``info``: versions, instruction sets, threads, CPU and build flags.
* ``inspect`` and ``convert``: look into and convert weight files (.pt/.pth,
  .safetensors, .npz) without torch.

Exit status: 0 on success; 1 when a parity error exceeds its bound (demo,
parity) or a weight file cannot be read or written (inspect, convert); 2 for
a usage error, or when parity is asked for without torch installed.

torch is imported only by the commands that compare against it (demo
without --no-torch, parity, bench without --no-torch); ``--help``, ``info``,
``inspect`` and ``convert`` never import it.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import sys
import textwrap
import time

import numpy as np

from . import demos

__all__ = ["main"]

BOUND = 1e-4  # the document's blocks' parity bound, as in the tests

# name -> where the document has it (parity's and bench's headers)
DESCRIPTIONS = {
    "resnet": "section 3.1: the first five layers of ResNet34",
    "densenet": "section 3.2: stem and a 6-layer dense block",
    "se": "section 4.3: SEAttention(channel=512, reduction=8)",
    "unet": "section 2.3: UNet(3, 2), transposed convolutions",
    "unet-bilinear": "section 2.3: UNet(3, 2, bilinear=True)",
    "se-resnet": "section 4.2: SEResidualBlock(64, 64)",
    "se-inception": "section 4.2: SEInception(192, 64, 96, 128, 16, 32, 32)",
}

_FORMATTER = argparse.RawDescriptionHelpFormatter


# -- shared helpers ---------------------------------------------------------------------

def _input(shape, how, rng):
    return (rng.random(shape) if how == "rand" else rng.standard_normal(shape)).astype(np.float32)


def _all_demos():
    """name -> (skipblocks builder, input shape, how the input is drawn)."""
    return {**demos.DEMOS, **demos.SYSTEM_DEMOS}


def _torch_builder(reference, name):
    if name in reference.DOCUMENT_INPUTS:
        return reference.DOCUMENT_INPUTS[name]["builder"]
    from .reference import systems
    return systems.SYSTEM_DEMOS[name]


def _import_torch():
    """(torch, skipblocks.reference), or None when torch cannot be imported."""
    try:
        import torch
        from . import reference
    except ImportError:
        return None
    return torch, reference


def _shape(shape):
    return "x".join(str(d) for d in shape)


def _prog():
    """How the user ran us: "python -m skipblocks" when this process runs
    skipblocks/__main__.py as its main module, else "skipblocks" (the console
    script, or main() called from Python)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name in ("skipblocks.__main__", "skipblocks"):
        return "python -m skipblocks"
    if os.path.basename(sys.argv[0] if sys.argv else "") == "__main__.py" and \
            os.path.basename(os.path.dirname(os.path.abspath(sys.argv[0]))) == "skipblocks":
        return "python -m skipblocks"
    return "skipblocks"


# -- demo -----------------------------------------------------------------------------

def _run_without_torch(rng):
    for name, (builder, shape, how) in _all_demos().items():
        model = builder()
        out = model(_input(shape, how, rng))
        print(f"{name:13s} input {shape} -> output {out.shape}")


def _run_with_torch(rng, torch, reference):
    worst = 0.0
    print(f"{'demo':13s} {'input':>18s} {'output':>18s}  {'train':>9s} {'stats':>9s} "
          f"{'eval':>9s}")
    for name, (builder, shape, how) in _all_demos().items():
        theirs = _torch_builder(reference, name)()
        ours = builder()
        ours.load_state_dict(theirs.state_dict())
        x = _input(shape, how, rng)
        with torch.no_grad():
            ref_train = theirs(torch.from_numpy(x))
        out_train = ours(x)
        err_train = reference.parity_error(out_train, ref_train)
        ref_sd, our_sd = theirs.state_dict(), ours.state_dict()
        err_stats = max((reference.parity_error(np.asarray(our_sd[k], np.float64),
                                                ref_sd[k].double())
                         for k in ref_sd), default=0.0)
        theirs.eval()
        ours.eval()
        with torch.no_grad():
            ref_eval = theirs(torch.from_numpy(x))
        err_eval = reference.parity_error(ours(x), ref_eval)
        worst = max(worst, err_train, err_stats, err_eval)
        print(f"{name:13s} {str(shape):>18s} {str(out_train.shape):>18s}  {err_train:9.2e} "
              f"{err_stats:9.2e} {err_eval:9.2e}")
    print(f"parity error: max|skipblocks - torch| / max(1, max|torch|); worst {worst:.2e} "
          f"(bound 1e-4)")
    return worst


def _demo(args):
    import skipblocks
    skipblocks.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    found = None if args.no_torch else _import_torch()
    if found is None:
        if not args.no_torch:
            print("torch is not installed: showing skipblocks' output shapes only")
        _run_without_torch(rng)
        return 0
    torch, reference = found
    torch.manual_seed(args.seed)
    worst = _run_with_torch(rng, torch, reference)
    return 0 if worst <= BOUND else 1


# -- parity ---------------------------------------------------------------------------

def _with_statistics(theirs, torch, generator):
    """The torch module with non-trivial BatchNorm running statistics, so
    that eval mode checks them too (fresh ones are 0 and 1)."""
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and m.running_mean is not None:
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=generator)
                                     * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
    return theirs


def _parity(args):
    found = _import_torch()
    if found is None:
        print(f"{args.prog}: parity needs torch, the reference it compares skipblocks "
              "against, and torch is not installed (pip install torch; the CPU build "
              "is enough)", file=sys.stderr)
        return 2
    torch, reference = found
    from . import parity
    import skipblocks
    names = list(dict.fromkeys(args.names)) or list(_all_demos())
    tables = []
    for index, name in enumerate(names):
        builder, shape, how = _all_demos()[name]
        torch.manual_seed(args.seed)
        skipblocks.manual_seed(args.seed)
        theirs = _with_statistics(_torch_builder(reference, name)(), torch,
                                  torch.Generator().manual_seed(args.seed))
        ours = builder()
        x = _input(shape, how, np.random.default_rng([args.seed, index]))
        table = parity.compare(theirs, ours, x, mode=args.mode, fused=args.fused, tol=args.tol)
        tables.append((name, table))
        title = (f"{name} ({DESCRIPTIONS[name]}): input {_shape(shape)}, mode {args.mode}, "
                 f"{'fused fast paths' if args.fused else 'every layer called in turn'}")
        if args.markdown:
            print(f"### {title}\n")
            print(table.to_markdown())
        else:
            print(f"== {title}")
            print(table)
            print()
        sys.stdout.flush()
    rows = sum(len(t) for _, t in tables)
    over = sum(len(t.over()) for _, t in tables)
    worst_name, worst = max(((n, t.worst) for n, t in tables), key=lambda nw: nw[1])
    print(f"parity: {len(tables)} module(s), {rows} rows; worst parity error {worst:.2e} "
          f"({worst_name}); {over} row(s) above {args.tol:.0e}"
          + ("" if not over else " (flagged with !)" if not args.markdown else ""))
    return 1 if over else 0


# -- bench ----------------------------------------------------------------------------

def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model", "Processor"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _cpu_flags():
    """{flag: bool} for the SIMD flags the kernels use, from /proc/cpuinfo;
    None when there is no such file (or no flags line) to tell."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    present = set(value.split())
                    return {flag: flag in present for flag in ("avx2", "fma", "avx512f")}
    except OSError:
        pass
    return None


def _usable_cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def _ms(seconds):
    ms = [s * 1e3 for s in seconds]
    return statistics.median(ms), min(ms), max(ms)


def _fmt_ms(summary):
    return "-" if summary is None else f"{summary[0]:.2f} [{summary[1]:.2f}-{summary[2]:.2f}]"


def _table(headers, rows, right):
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _bench(args):
    import skipblocks
    found = None if args.no_torch else _import_torch()
    started = time.perf_counter()  # after importing torch: the budget is for the runs
    deadline = started + args.seconds
    torch, reference = found if found is not None else (None, None)
    names = list(dict.fromkeys(args.cases)) if args.cases else list(_all_demos())
    modes = ("eval", "train") if args.mode == "both" else (args.mode,)
    default_threads = skipblocks.get_num_threads()
    threads = list(dict.fromkeys(args.threads or [1, default_threads]))
    torch_threads = torch.get_num_threads() if torch is not None else None

    print(f"skipblocks {skipblocks.__version__} (ISA {skipblocks.get_isa()}), "
          + (f"torch {torch.__version__}, " if torch is not None else "")
          + f"NumPy {np.__version__}, Python {platform.python_version()}; "
          f"CPU {_cpu_model() or platform.machine()}, {_usable_cpus()} usable")
    if torch is None:
        print("torch is not installed: timing skipblocks alone" if not args.no_torch
              else "--no-torch: timing skipblocks alone")
    method = (f"budget {args.seconds:g} s for {len(names) * len(modes) * len(threads)} "
              "row(s): per row one warm-up and one probe call per engine, then as many "
              "rounds as its share of the budget holds (at least "
              f"{args.min_rounds}); "
              + ("each round calls torch (under no_grad) and skipblocks on the same input "
                 "and weights, alternating which goes first" if torch is not None else
                 "each round calls skipblocks once"))
    print(textwrap.fill(method, width=88, subsequent_indent="  "))
    sys.stdout.flush()

    rows = []
    done, total = 0, len(names) * len(modes) * len(threads)
    try:
        for index, name in enumerate(names):
            builder, shape, how = _all_demos()[name]
            skipblocks.manual_seed(args.seed)
            ours = builder()
            theirs = None
            if torch is not None:
                torch.manual_seed(args.seed)
                theirs = _torch_builder(reference, name)()
                ours.load_state_dict(theirs.state_dict())
            x = _input(shape, how, np.random.default_rng([args.seed, index]))
            xt = torch.from_numpy(x.copy()) if torch is not None else None
            for n in threads:
                skipblocks.set_num_threads(n)
                if torch is not None:
                    torch.set_num_threads(n)
                for mode in modes:
                    ours.train(mode == "train")
                    if theirs is not None:
                        theirs.train(mode == "train")
                    row = _bench_row(ours, theirs, x, xt, torch, deadline, total - done,
                                     args.min_rounds)
                    done += 1
                    rows.append((name, mode, _shape(shape), n, skipblocks.get_num_threads())
                                + row)
    finally:
        skipblocks.set_num_threads(default_threads)
        if torch is not None:
            torch.set_num_threads(torch_threads)

    headers = ["case", "mode", "input", "threads", "torch ms", "skipblocks ms", "ratio",
               "rounds"]
    cells = []
    for name, mode, shape, n, sb_n, t, o, rounds in rows:
        threads_cell = str(n) if sb_n == n else f"{n} (skipblocks {sb_n})"
        cells.append([name, mode, shape, threads_cell, _fmt_ms(t), _fmt_ms(o),
                      "-" if t is None else f"{t[0] / o[0]:.2f}", str(rounds)])
    if torch is None:  # no torch column, no ratio
        headers = [h for i, h in enumerate(headers) if i not in (4, 6)]
        cells = [[c for i, c in enumerate(row) if i not in (4, 6)] for row in cells]
    print()
    print(_table(headers, cells, right=set(range(3, len(headers)))))
    print()
    print("medians [min-max] in milliseconds per forward call"
          + ("; ratio = torch / skipblocks (> 1: skipblocks is faster)" if torch is not None
             else ""))
    print(f"total {time.perf_counter() - started:.1f} s (budget {args.seconds:g} s). Times "
          "on a machine shared with other work are noisy;")
    print("the full benchmark is benchmarks/bench_demos.py in the source repository.")
    return 0


def _bench_row(ours, theirs, x, xt, torch, deadline, rows_left, min_rounds):
    """(torch summary or None, skipblocks summary, rounds) of one row. After
    a warm-up call per engine, one timed probe round says what a round costs;
    the row then gets its share of what is left of the budget: as many rounds
    as fit in it (checked by the clock as they run, since the probe is one
    noisy sample), and at least ``min_rounds``."""
    run_ours = lambda: ours(x)  # noqa: E731
    if theirs is None:
        run_theirs = None
    else:
        def run_theirs():
            with torch.no_grad():
                theirs(xt)
        run_theirs()  # warm-up
    run_ours()
    probe = _timed(run_ours) + (_timed(run_theirs) if run_theirs is not None else 0.0)
    now = time.perf_counter()
    share = max(0.0, deadline - now) / max(1, rows_left)
    # the planned rounds; the clock may stop them earlier or let them run on
    planned = max(min_rounds, int(share // max(probe, 1e-9)))
    row_deadline = now + share
    t_times, o_times = [], []
    i = 0
    while i < min_rounds or (i < max(planned * 4, min_rounds) and i < 100000
                             and time.perf_counter() < row_deadline):
        if run_theirs is None:
            o_times.append(_timed(run_ours))
        elif i % 2 == 0:
            t_times.append(_timed(run_theirs))
            o_times.append(_timed(run_ours))
        else:
            o_times.append(_timed(run_ours))
            t_times.append(_timed(run_theirs))
        i += 1
    return (_ms(t_times) if t_times else None), _ms(o_times), i


# -- info -----------------------------------------------------------------------------

def _info_dict():
    import skipblocks
    from . import _C
    build_info = getattr(_C, "build_info", None)
    if build_info is not None:
        build = dict(build_info())
    else:
        build = {"compiler": None, "build_flags": None, "sanitize": None, "isas": None,
                 "note": "this build has no skipblocks._C.build_info()"}
    try:  # finds torch without importing it (None: not installed, or blocked)
        torch_spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        torch_spec = None
    torch_version = None
    if torch_spec is not None:
        try:
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:  # a source tree on the path
            torch_version = None
    return {
        "skipblocks": {"version": skipblocks.__version__,
                       "path": os.path.dirname(os.path.abspath(skipblocks.__file__)),
                       "extension": getattr(_C, "__file__", None)},
        "isa": {"in_use": skipblocks.get_isa(), "available": list(skipblocks.available_isas()),
                "compiled": build.get("isas", build.get("isas_compiled"))},
        "threads": {"in_use": skipblocks.get_num_threads(), "usable_cpus": _usable_cpus(),
                    "cpu_count": os.cpu_count()},
        "environment": {key: os.environ.get(key)
                        for key in ("SKIPBLOCKS_ISA", "SKIPBLOCKS_NUM_THREADS")},
        "numpy": np.__version__,
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "platform": {"system": platform.platform(), "machine": platform.machine(),
                     "cpu_model": _cpu_model(), "cpu_flags": _cpu_flags()},
        "build": build,
        "torch": {"installed": torch_spec is not None, "version": torch_version,
                  "imported": sys.modules.get("torch") is not None},
    }


def _info(args):
    info = _info_dict()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=False))
        return 0
    b, isa, thr = info["build"], info["isa"], info["threads"]
    flags = info["platform"]["cpu_flags"]
    flags_text = b.get("build_flags", b.get("flags"))
    if isinstance(flags_text, (list, tuple)):
        flags_text = " ".join(map(str, flags_text))
    build = ([f"compiler {b.get('compiler')}", f"flags {flags_text}",
              f"sanitize {'yes' if b.get('sanitize') else 'no'}"]
             if "note" not in b else [b["note"]])
    env = ", ".join(f"{k}={v}" for k, v in info["environment"].items() if v is not None)
    lines = [
        ("skipblocks", f"{info['skipblocks']['version']} ({info['skipblocks']['path']})"),
        ("ISA", f"{isa['in_use']} in use; this CPU can run: {', '.join(isa['available'])}"
                + (f"; compiled in: {', '.join(isa['compiled'])}" if isa["compiled"] else "")),
        ("threads", f"{thr['in_use']} ({thr['usable_cpus']} usable CPUs of "
                    f"{thr['cpu_count']})"),
        ("environment", env or "SKIPBLOCKS_ISA and SKIPBLOCKS_NUM_THREADS not set"),
        ("NumPy", info["numpy"]),
        ("Python", f"{info['python']['version']} ({info['python']['implementation']}, "
                   f"{info['python']['executable']})"),
        ("platform", info["platform"]["system"]),
        ("CPU", (info["platform"]["cpu_model"] or "unknown")
                + ("" if flags is None else "; " + ", ".join(
                    f"{k} {'yes' if v else 'no'}" for k, v in flags.items()))),
        ("build", "; ".join(build)),
        ("torch", ("installed" + (f" ({info['torch']['version']})"
                                   if info["torch"]["version"] else "")
                   + (", imported" if info["torch"]["imported"] else ", not imported"))
         if info["torch"]["installed"] else "not installed (demo shows shapes only; "
                                             "parity needs it)"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:{width}s}  {value}")
    return 0


# -- inspect, convert -------------------------------------------------------------------

def _weights(args):
    from .serialization import cli
    return cli.main(args.command, args)


# -- the parser -----------------------------------------------------------------------

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _thread_count(text):
    value = _positive_int(text)
    if value > 1024:
        raise argparse.ArgumentTypeError(f"expected at most 1024 threads, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _module_name(text):
    if text not in DESCRIPTIONS:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(DESCRIPTIONS)})")
    return text


def _seed_option(parser):
    parser.add_argument("--seed", type=int, default=argparse.SUPPRESS, metavar="N",
                        help="seed for weights and inputs (default 0)")


def _no_torch_option(parser, what):
    parser.add_argument("--no-torch", action="store_true", default=argparse.SUPPRESS,
                        help=what)


def _examples(items):
    """An epilog's "examples:" block: each command (``%(prog)s`` in it, which
    argparse substitutes), and under it what it does."""
    lines = ["examples:"]
    for command, comment in items:
        lines += [f"  {command}", f"      {comment}"]
    return "\n".join(lines)


ROOT_DESCRIPTION = """\
PyTorch-compatible skip-connection blocks (ResNet, DenseNet, Squeeze-and-Excitation,
U-Net, SE inside ResNet and Inception) as C kernels over NumPy arrays.

Without a command, runs `demo`. Exit status: 0 on success; 1 when a parity error
exceeds its bound (demo, parity) or a weight file cannot be read or written (inspect,
convert); 2 for a usage error, or parity without torch."""

ROOT_EPILOG = _examples([
    ('%(prog)s', 'the demos (as `%(prog)s demo`)'),
    ('%(prog)s parity resnet --mode eval', 'per-layer parity table of the ResNet demo'),
    ('%(prog)s bench --seconds 10', 'a 10-second benchmark against torch'),
    ('%(prog)s info --json', 'versions, ISAs, threads, build flags'),
    ('%(prog)s inspect model.pth', "a weight file's keys, shapes and dtypes"),
    ('%(prog)s convert model.pth model.safetensors', 'torch checkpoint to safetensors'),
    ('%(prog)s COMMAND --help', "a command's options and examples"),
])

DEMO_DESCRIPTION = """\
Runs the document's three demos with skipblocks (the ResNet demo of section 3.1,
the DenseNet demo of 3.2, SEAttention of 4.3), then demos of its other systems:
U-Net (transposed and bilinear, 2.3), SE inside a ResNet block and inside an
Inception module (4.2). Prints each demo's output shape, as the document does.

When torch is installed, also builds the document's torch modules
(skipblocks.reference), copies their weights into the skipblocks twins, and
prints the parity error max|skipblocks - torch| / max(1, max|torch|) of the
outputs in train mode (torch's default after construction, as the document runs)
and in eval mode, and of the BatchNorm running statistics after the train-mode
forward. Exit status 1 when one exceeds 1e-4."""

DEMO_EPILOG = _examples([
    ('%(prog)s', 'shapes and parity errors (shapes only without torch)'),
    ('%(prog)s --no-torch', 'shapes only, even with torch installed'),
    ('%(prog)s --seed 3', 'other weights and inputs'),
])

PARITY_DESCRIPTION = """\
For each module, builds the torch reference (skipblocks.reference) and its
skipblocks twin, copies torch's weights into it, and prints
skipblocks.parity.compare's table: one row per layer call, with the output's
max|diff| and parity error max|ours - torch| / max(1, max|torch|), and in train
mode the parity errors of the BatchNorm running statistics. The torch
modules' running statistics are drawn at random first (seeded), so that eval
mode checks them too. Rows above the bound are flagged with "!".

By default every layer is called in turn (skipblocks.runtime.unfused()), so
every layer gets its row; --fused checks the fused fast paths instead.

Needs torch (exit status 2 without it); exit status 1 when a row exceeds the
bound."""

PARITY_EPILOG = "modules:\n" + "\n".join(
    f"  {name:14s} {text}" for name, text in DESCRIPTIONS.items()) + "\n\n" + _examples([
        ("%(prog)s", "every module, train and eval"),
        ("%(prog)s resnet se --mode eval", "two modules, eval mode only"),
        ("%(prog)s unet --fused", "the fused fast paths"),
        ("%(prog)s densenet --markdown", "Markdown tables (for an issue or a notebook)"),
        ("%(prog)s se --tol 1e-7", "a tighter bound"),
    ])

BENCH_DESCRIPTION = """\
Times skipblocks against torch on the document's demos, in this one process:
both engines get the same input and weights, torch runs under no_grad, and
each round calls both, alternating which goes first, so that drift in machine
load hits both alike. Reports medians [min-max] in ms and the ratio torch /
skipblocks (> 1: skipblocks is faster). Without torch (or with --no-torch),
times skipblocks alone and says so.

The whole run takes about --seconds: each row gets an equal share of what is
left of the budget, and its rounds are counted from one timed call per engine
after a warm-up (at least --min-rounds rounds, so a tiny budget can overrun).
"threads" is both engines' thread count. Timings are measurements, not
guarantees: on a machine shared with other work they are noisy."""

BENCH_EPILOG = _examples([
    ('%(prog)s', '30 s, every demo, eval, 1 thread and the default'),
    ('%(prog)s --seconds 10 --cases resnet densenet --threads 1', '10 s, two demos, 1 thread'),
    ('%(prog)s --mode both --cases se', 'train and eval'),
    ('%(prog)s --no-torch', 'skipblocks alone'),
])

INFO_DESCRIPTION = """\
Prints skipblocks' version and location, the instruction set its kernels use and
the ones this CPU can run (and the build holds), the thread count, the versions of
NumPy and Python, the platform and CPU model, the build's compiler and flags, and
whether torch is installed (without importing it)."""

INFO_EPILOG = _examples([
    ('%(prog)s', 'one line per item'),
    ('%(prog)s --json > info.json', 'the same as one JSON object'),
    ('SKIPBLOCKS_ISA=scalar SKIPBLOCKS_NUM_THREADS=1 %(prog)s', 'what those variables select'),
])

INSPECT_EPILOG = _examples([
    ('%(prog)s resnet18.pth', 'a torch checkpoint (zip or legacy format)'),
    ('%(prog)s model.safetensors', 'with its metadata'),
])

CONVERT_EPILOG = _examples([
    ('%(prog)s model.pth model.safetensors', "a checkpoint's state_dict to safetensors"),
    ('%(prog)s model.safetensors model.npz --cast float32', 'bfloat16 and others as float32'),
    ('%(prog)s weights.npz weights.pt', 'to the format torch.load reads'),
])


def _parser(prog):
    from . import __version__
    parser = argparse.ArgumentParser(prog=prog, description=ROOT_DESCRIPTION,
                                     epilog=ROOT_EPILOG, formatter_class=_FORMATTER)
    parser.add_argument("--version", action="version", version=f"skipblocks {__version__}")
    # demo's options, also before (or without) a command: `skipblocks --no-torch`
    _seed_option(parser)
    _no_torch_option(parser, "demo: do not compare with torch even if it is installed")
    commands = parser.add_subparsers(dest="command", title="commands",
                                     metavar="{demo,parity,bench,info,inspect,convert}")

    def command(name, help, description, epilog):
        return commands.add_parser(name, help=help, description=description, epilog=epilog,
                                   formatter_class=_FORMATTER)

    demo = command("demo", "run the document's demos, U-Net and SE (the default)",
                   DEMO_DESCRIPTION, DEMO_EPILOG)
    _seed_option(demo)
    _no_torch_option(demo, "do not compare with torch even if it is installed")

    parity = command("parity", "per-layer parity tables against torch (needs torch)",
                     PARITY_DESCRIPTION, PARITY_EPILOG)
    # a type, not choices: argparse (before 3.12) checks an empty "*" against choices
    parity.add_argument("names", nargs="*", metavar="NAME", type=_module_name,
                        help="modules to compare (default: all; listed below)")
    parity.add_argument("--mode", choices=["train", "eval", "both"], default="both",
                        help="train mode, eval mode, or both (default both)")
    parity.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parity.add_argument("--fused", action="store_true",
                        help="run skipblocks' fused fast paths instead of calling every "
                             "layer in turn (layers fused into another get no output "
                             "comparison; see skipblocks.parity)")
    parity.add_argument("--tol", type=_positive_float, default=BOUND, metavar="BOUND",
                        help="flag rows above this parity error and exit 1 "
                             "(default 1e-4)")
    _seed_option(parity)

    bench = command("bench", "time skipblocks against torch (about 30 s)",
                    BENCH_DESCRIPTION, BENCH_EPILOG)
    bench.add_argument("--seconds", type=_positive_float, default=30.0, metavar="S",
                       help="the total time budget in seconds (default 30)")
    bench.add_argument("--threads", type=_thread_count, nargs="+", metavar="N",
                       help="thread counts to time, both engines (default: 1 and "
                            "skipblocks' default)")
    bench.add_argument("--cases", nargs="+", metavar="NAME", choices=list(DESCRIPTIONS),
                       help="demos to time (default all: " + ", ".join(DESCRIPTIONS) + ")")
    bench.add_argument("--mode", choices=["eval", "train", "both"], default="eval",
                       help="eval mode, train mode or both (default eval)")
    bench.add_argument("--min-rounds", type=_positive_int, default=3, metavar="N",
                       help="timed rounds per row at the least (default 3)")
    _no_torch_option(bench, "time skipblocks alone even if torch is installed")
    _seed_option(bench)

    info = command("info", "versions, instruction sets, threads, CPU and build flags",
                   INFO_DESCRIPTION, INFO_EPILOG)
    info.add_argument("--json", action="store_true", help="print one JSON object")

    inspect = command(
        "inspect", "list a weight file's tensors (keys, shapes, dtypes) and totals",
        "Lists a weight file's format, every tensor's key, shape and stored dtype, the "
        "other entries' values, and the totals; reads no tensor data where the format "
        "allows a memory map. Does not need torch. Exit status 1 when the file cannot be "
        "read.", INSPECT_EPILOG)
    inspect.add_argument("file", help="a .pt/.pth (torch), .safetensors or .npz file")
    convert = command(
        "convert", "convert a weight file between .pt, .safetensors and .npz",
        "Convert a weight file between torch .pt/.pth, .safetensors and .npz "
        "(the output format comes from OUT's extension), copying every "
        "tensor's bytes exactly. A checkpoint going to .safetensors or .npz "
        "keeps only the state_dict found in it. Does not need torch. Exit status 1 "
        "when the file cannot be read or written.", CONVERT_EPILOG)
    convert.add_argument("source", metavar="IN")
    convert.add_argument("destination", metavar="OUT")
    convert.add_argument("--cast", choices=["float32"],
                         help="write every floating-point tensor as float32 (complex as "
                              "complex64): needed for dtypes the output format cannot hold, "
                              "such as bfloat16 or float8 into .npz")
    return parser


RUN = {"demo": _demo, "parity": _parity, "bench": _bench, "info": _info,
       "inspect": _weights, "convert": _weights}


def main(argv=None):
    """Runs the command line on ``argv`` (default ``sys.argv[1:]``) and
    returns the exit status: 0 on success, 1 when a parity error exceeds its
    bound or a weight file cannot be read or written, 2 for a usage error
    (argparse's message on stderr; ``--help`` and ``--version`` return 0)
    or parity without torch. ``skipblocks --help`` lists the commands."""
    prog = _prog()
    parser = _parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    args.command = args.command or "demo"
    args.prog = prog
    given = [option for option, dest in (("--seed", "seed"), ("--no-torch", "no_torch"))
             if hasattr(args, dest)]
    if args.command in ("info", "inspect", "convert") and given:
        return _usage_error(parser, f"{' and '.join(given)}: not an option of "
                                    f"{args.command}")
    if args.command == "parity" and getattr(args, "no_torch", False):
        return _usage_error(parser, "--no-torch: parity compares against torch")
    if not hasattr(args, "seed"):
        args.seed = 0
    if not hasattr(args, "no_torch"):
        args.no_torch = False
    try:
        return RUN[args.command](args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `skipblocks parity | head`: the reader left; say nothing
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1


def _usage_error(parser, message):
    """argparse's usage line and ``error: message`` on stderr; the status 2."""
    try:
        parser.error(message)
    except SystemExit as exc:
        return exc.code
    return 2  # not reached: parser.error exits


if __name__ == "__main__":
    sys.exit(main())

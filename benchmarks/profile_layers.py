"""Per-layer profile at 1 thread: where skipblocks loses time against ONNX Runtime.

    python benchmarks/profile_layers.py --cases resnet-doc densenet-doc resnet50-b1 \
        densenet121-b1 --runs 50
    python benchmarks/profile_layers.py --quick          # resnet-doc, few runs, no files
    python benchmarks/profile_layers.py --quick --out /tmp/layers   # ... written to /tmp

writes benchmarks/results/layers_<cpu>.{txt,json} (<cpu> as bench_engines.py
names it, e.g. epyc_zen3_avx2; --out PREFIX elsewhere; --quick writes no
files unless --out is given). --cases takes bench_engines.py's case names,
name prefixes or globs (default: the four above).

What it measures, per case, both engines at one thread:

  * end-to-end forward times (median, p10, min) of skipblocks (model(x) on
    the NumPy input) and ONNX Runtime (bench_engines.py's session settings:
    CPUExecutionProvider, intra_op 1, inter_op 1, ORT_ENABLE_ALL,
    sequential), and of the two instrumented variants below;
  * skipblocks per call: every public entry point of skipblocks._C
    (conv2d, residual_block, dense_layer, max_pool2d, batch_norm, ...;
    not the packers and runtime queries) is wrapped with perf_counter
    timers for the instrumented forwards; each call's time is its median
    over those forwards;
  * ONNX Runtime per node: a second session with enable_profiling, whose
    per-node kernel times (the "<node>_kernel_time" events, warm-up runs
    dropped) give each node's median, and whose optimized graph
    (optimized_model_filepath) shows what ORT made of the export: the
    NCHWc (com.microsoft.nchwc) convolutions, their fused activations and
    sums, the ReorderInput/ReorderOutput layout changes, BatchNorms left
    as depthwise 1x1 convolutions;
  * the fused-block split: skipblocks' residual_block and dense_layer run
    two convolutions in one call. Each such call of the first instrumented
    forward is replayed standalone as two _C.conv2d calls with the same
    shapes, packed weights and epilogues (BN+ReLU / BN+residual+ReLU; the
    dense layer's BN+ReLU on staging, with arbitrary scales), and the
    block's in-run median is shared between its two convolutions in the
    ratio of their standalone medians (rows marked '*'); the JSON also has
    the block's standalone time and each convolution without epilogue.

Report per case: the end-to-end times; the per-convolution table (shape
C_in->C_out kxk sS HoxWo, MFLOP = 2 x multiply-adds, each engine's ms and %
of the FMA peak, sb/ORT ratio, gap = sb ms - ORT ms), skipblocks'
convolutions matched to ORT's by shape in call order (DenseNet's
transitions: skipblocks pools before the 1x1 convolution, ORT convolves the
full map at 4x the FLOPs -- marked 'T', each engine's % of peak on its own
FLOPs); the same grouped by shape; categories (stem = C_in <= 4, 1x1 and
kxk by stride, each by output map size >= 28, 14-27, <= 13, pools, other
non-conv, total); the non-conv items of each engine by op (calls, ms);
ORT's graph transformations (op counts by domain::op_type before and after
optimization, fused activations and sums, reorders and their time); and
skipblocks' Python glue: p10 end-to-end minus the sum of per-call medians
(time outside _C: Python, argument checks, allocation between calls; the
same for ORT is its session overhead), the instrumentation's own cost, and
a cProfile of a few forwards (self time in Python functions vs C calls per
forward, inflated by cProfile itself; the top Python functions).

Method: a torch process (bench_engines.py's torch worker, unchanged)
prepares each case as bench_engines.py does: seeded reference module,
input (.npy), weights (.pth read by skipblocks.load) and the ONNX export
(TorchScript exporter, opset 17), and counts FLOPs. The FMA peak at one
thread is bench_engines.py's (bench_demos.py's fma_peak.c via
bench_engines.peak_main) in its own process, as there. Each case is then
profiled in a fresh worker process (this script run as ``--worker
profile``) that never imports torch: it loads the case with
bench_engines.SkipblocksEngine and bench_engines.OnnxRuntimeEngine,
asserts ``'torch' not in sys.modules`` after the imports and at the end,
and holds both engines (ORT at intra_op 1 keeps no spinning pool threads).
After --warmup runs of each, --rounds rounds each run four tasks in an
order rotated by one per round, with 50 ms pauses: ORT plain, skipblocks
plain, ORT profiled, skipblocks instrumented, each ceil(--runs / --rounds)
forwards, so load drift hits every task alike. Times are measurements
taken on whatever else the machine was doing; the load line says how busy
it was. The checkout's skipblocks is used as bench_engines.py imports it;
--skipblocks-root DIR measures the package in DIR instead.

% of peak = FLOPs / time / the 1-thread FMA peak of the vector width
skipblocks' ISA computes with (bench_demos.py's rule). sb/ORT below 1:
skipblocks faster. Nothing here asserts on speed.
"""
import argparse
import collections
import cProfile
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time

import numpy as np

import bench_engines as be
from common import (RESULTS, build_line, command_line, format_rows, load_average, load_line,
                    machine_info, machine_line, now_utc, write_json)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CASES = ("resnet-doc", "densenet-doc", "resnet50-b1", "densenet121-b1")
QUICK_CASES = ("resnet-doc",)
# _C functions not timed: weight packing (cached after the first forward),
# runtime queries and settings.
NOT_TIMED = {"available_isas", "build_info", "get_isa", "get_num_threads", "set_isa",
             "set_num_threads", "conv2d_pack", "conv_transpose2d_pack", "linear_pack"}
FUSED_BLOCKS = ("residual_block", "dense_layer")
SB_POOLS = {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"}
ORT_POOLS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
ORT_CONVS = {"Conv", "FusedConv"}


def p10(xs):
    xs = sorted(xs)
    return xs[int(0.1 * (len(xs) - 1))]


def times_summary(ms):
    return {"median": statistics.median(ms), "p10": p10(ms), "min": min(ms), "runs": len(ms)}


def conv_desc(xshape, wshape, stride, outshape):
    """The shape fields and FLOPs (2 x multiply-adds) of one convolution.
    A channel-blocked input (N, C/16, H, W, 16) holds its channels rounded
    up to whole blocks; the planned convolutions that take one have one
    group, so C_in is the weight's."""
    cin, cout = (wshape[1] if len(xshape) == 5 else xshape[1]), wshape[0]
    groups = max(1, cin // wshape[1])
    return {"n": outshape[0], "cin": cin, "cout": cout, "k": wshape[2], "kw": wshape[3],
            "stride": stride[0], "groups": groups, "hin": xshape[2], "ho": outshape[2],
            "wo": outshape[3],
            "flops": 2 * outshape[0] * cout * outshape[2] * outshape[3] * (cin // groups)
            * wshape[2] * wshape[3]}


# -- the profiling worker (skipblocks + ONNX Runtime, never torch) -------------
class CallTimer:
    """Wraps the public functions of skipblocks._C with perf_counter timers
    while active. The first forward keeps each call's arguments and result
    (for the fused-block split); later ones keep names and seconds."""

    def __init__(self, _C):
        self._C = _C
        self.originals = {n: getattr(_C, n) for n in dir(_C)
                          if not n.startswith("_") and n not in NOT_TIMED
                          and type(getattr(_C, n)).__name__ == "builtin_function_or_method"}
        self.calls, self.keep = [], True

    def _wrap(self, name, fn):
        pc, calls = time.perf_counter, self.calls

        def timed(*a, **kw):
            t = pc()
            r = fn(*a, **kw)
            dt = pc() - t
            calls.append((name, dt, a, kw, r) if self.keep else (name, dt))
            return r
        return timed

    def __enter__(self):
        for n, f in self.originals.items():
            setattr(self._C, n, self._wrap(n, f))
        return self

    def __exit__(self, *exc):
        for n, f in self.originals.items():
            setattr(self._C, n, f)


def _arg(a, kw, i, name):
    return a[i] if len(a) > i else kw.get(name)


def describe_call(calls, j):
    """A dict describing call j of the first instrumented forward."""
    name, _, a, kw, r = calls[j]
    d = {"op": name}
    if name == "conv2d":
        x, w, stride = a[1], a[2], _arg(a, kw, 4, "stride")
        d.update(conv_desc(x.shape, w.shape, stride, r.shape))
        d["epilogue"] = "+".join(k for k in ("in_scale", "in_relu", "residual", "relu")
                                 if kw.get(k) is not None and kw.get(k) is not False) or "-"
        # DenseNet's transition in skipblocks: 2x2 average pool, then the 1x1 conv
        prev = next((c for c in reversed(calls[:j]) if c[0] != "as_real"), None)
        d["pool_first"] = bool(prev and prev[0] == "avg_pool2d" and d["k"] == 1
                               and tuple(getattr(prev[4], "shape", ())) == tuple(x.shape))
    else:
        d["shape"] = list(getattr(a[1], "shape", ()) if len(a) > 1 else ())
        d["out_shape"] = list(getattr(r, "shape", ()) or ())
    return d


def median_ms(fn, runs):
    for _ in range(min(3, runs)):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def split_block(call, conv2d, block_fn, runs):
    """A residual_block / dense_layer call replayed as two standalone
    conv2d calls (with and without their epilogues) and as itself."""
    name, _, a, kw, r = call
    if name == "residual_block":
        # (layer, x, residual, bn, momentum2, folded, conv1, conv2)
        xin, res, (w1, p1, s1, d1, l1, g1), (w2, p2, s2, d2, l2, g2) = a[1], a[2], a[6], a[7]
        resid = np.ascontiguousarray(np.broadcast_to(res, r.shape), dtype=r.dtype)
        kw1, kw2 = {"relu": True}, {"residual": resid, "relu": True}
        epi = ("bn+relu (folded)", "bn+residual+relu (folded)")
        extra = {}
    else:
        # (layer, x, bn1, bn2, conv1, conv2, out=)
        xin, (w1, p1, s1, d1, l1, g1), (w2, p2, s2, d2, l2, g2) = a[1], a[4], a[5]
        rng = np.random.default_rng(0)

        def affine(c):
            return {"in_scale": (rng.random(c) + 0.5).astype(xin.dtype),
                    "in_shift": (rng.random(c) - 0.5).astype(xin.dtype), "in_relu": True}
        # (a planned dense block's layers take and give channel-blocked
        # maps: blocked=True; their channels are the weights')
        kw1, kw2 = affine(w1.shape[1]), affine(w2.shape[1])
        epi = ("bn1+relu on staging", "bn2+relu on staging")
        extra = {"x_contiguous": bool(xin.flags.c_contiguous)}
    layout = ({"in_blocked": True, "out_blocked": True} if kw.get("blocked") else {})

    def c1(**k):
        return conv2d("Conv2d", xin, w1, None, s1, d1, l1, g1, packed=p1, **layout, **k)
    o1 = c1(**kw1)

    def c2(**k):
        return conv2d("Conv2d", o1, w2, None, s2, d2, l2, g2, packed=p2, **layout, **k)
    o2 = c2(**kw2)
    convs = []
    for (x_, w_, s_, o_, f, kws, e) in ((xin, w1, s1, o1, c1, kw1, epi[0]),
                                         (o1, w2, s2, o2, c2, kw2, epi[1])):
        d = conv_desc(x_.shape, w_.shape, s_, o_.shape)
        d.update(epilogue=e, ms=median_ms(lambda: f(**kws), runs),
                 ms_no_epilogue=median_ms(f, runs))
        convs.append(d)
    return dict(extra, op=name, block_ms_standalone=median_ms(lambda: block_fn(*a, **kw), runs),
                convs=convs)


def ort_session(ort, path, threads, **extra):
    """bench_engines.OnnxRuntimeEngine.load's session options, plus
    `extra` (profiling, optimized-model output)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for k, v in extra.items():
        setattr(so, k, v)
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def ort_node_rows(onnx, opt_path, prof_path, skip_runs):
    """Per-node medians from ORT's profile, with the optimized graph's
    attributes; the optimized graph's op counts and the profiled runs."""
    opt = onnx.load(opt_path, load_external_data=False)
    nodes = {n.name: n for n in opt.graph.node}
    op_counts = collections.Counter((n.domain or "ai.onnx") + "::" + n.op_type
                                    for n in opt.graph.node)

    def attr(n, key):
        for at in n.attribute:
            if at.name == key:
                v = onnx.helper.get_attribute_value(at)
                return v.decode() if isinstance(v, bytes) else v
        return None

    with open(prof_path) as f:
        events = json.load(f)
    durs, args, order, runs = {}, {}, [], []
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            runs.append(e["dur"] / 1e3)
        elif e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            nm = e["name"][:-len("_kernel_time")]
            if nm not in durs:
                durs[nm], args[nm] = [], e["args"]
                order.append(nm)
            durs[nm].append(e["dur"] / 1e3)
    rows = []
    for nm in order:
        a, n = args[nm], nodes.get(nm)
        row = {"node": nm, "op": a.get("op_name"), "provider": a.get("provider"),
               "domain": (n.domain or "ai.onnx") if n is not None else None,
               "ms": statistics.median(durs[nm][skip_runs:] or durs[nm]),
               "calls": len(durs[nm][skip_runs:] or durs[nm])}
        if n is not None:
            row["activation"] = attr(n, "activation")
            row["n_inputs"] = len(n.input)
        if row["op"] in ORT_CONVS:
            ish = list(a["input_type_shape"][0].values())[0]
            wsh = list(a["input_type_shape"][1].values())[0]
            osh = list(a["output_type_shape"][0].values())[0]
            st = (attr(n, "strides") if n is not None else None) or [1, 1]
            row.update(conv_desc(ish, wsh, st, osh))
            # NCHWc Conv's 4th input is a tensor added before the activation
            row["has_sum"] = bool(n is not None and n.domain == "com.microsoft.nchwc"
                                  and len(n.input) >= 4 and n.input[3])
        rows.append(row)
    return rows, dict(op_counts), runs[skip_runs:]


def profile_worker(args):
    eng = be.SkipblocksEngine(args.skipblocks_root)  # asserts torch is not imported
    sb = eng.sb
    files = be.case_files(args.workdir, args.case)
    eng.load(args.case, files, 1)
    model, x = eng.model, eng.x
    from skipblocks import _C
    import onnx
    import onnxruntime as ort
    eng.check_no_torch()
    torch_checks = {"after_imports": "torch" in sys.modules}

    ort_eng = be.OnnxRuntimeEngine(None)
    ort_settings = ort_eng.load(args.case, files, 1)
    out_dir = os.path.join(args.workdir, args.case)
    opt_path = os.path.join(out_dir, "model.ort_optimized.onnx")
    s_prof = ort_session(ort, files["onnx"], 1, enable_profiling=True,
                         profile_file_prefix=os.path.join(out_dir, "ort_profile"),
                         optimized_model_filepath=opt_path)
    feed, outs = ort_eng.feed, ort_eng.outputs

    for _ in range(args.warmup):
        model(x)
        ort_eng.run()
        s_prof.run(outs, feed)
    y_sb, y_ort = np.asarray(model(x)), ort_eng.run()
    max_diff = float(np.max(np.abs(y_sb.astype(np.float64) - y_ort)))

    timer = CallTimer(_C)
    k = max(1, math.ceil(args.runs / args.rounds))
    plain = {"skipblocks": [], "onnxruntime": []}
    instr_runs, first = [], None

    def sb_plain():
        for _ in range(k):
            t = time.perf_counter()
            model(x)
            plain["skipblocks"].append((time.perf_counter() - t) * 1e3)

    def ort_plain():
        for _ in range(k):
            t = time.perf_counter()
            ort_eng.run()
            plain["onnxruntime"].append((time.perf_counter() - t) * 1e3)

    def ort_prof():
        for _ in range(k):
            s_prof.run(outs, feed)

    def sb_instr():
        nonlocal first
        with timer:
            for _ in range(k):
                timer.calls.clear()
                t = time.perf_counter()
                model(x)
                total = (time.perf_counter() - t) * 1e3
                if first is None:
                    first, timer.keep = list(timer.calls), False
                instr_runs.append(([c[1] for c in timer.calls], total))

    tasks = [ort_plain, sb_plain, ort_prof, sb_instr]
    for r in range(args.rounds):
        for task in tasks[r % 4:] + tasks[:r % 4]:
            task()
            time.sleep(0.05)
    prof_path = s_prof.end_profiling()

    assert all(len(c) == len(first) for c, _ in instr_runs), \
        "skipblocks made a different number of _C calls in two forwards"
    sb_rows = []
    for j in range(len(first)):
        row = describe_call(first, j)
        row.update(i=j, ms=statistics.median(run[0][j] for run in instr_runs) * 1e3)
        sb_rows.append(row)
    splits = {}
    for j, call in enumerate(first):
        # a fused call that returned None fell back to layer-by-layer calls,
        # which are timed on their own: nothing to split
        if call[0] in FUSED_BLOCKS and call[4] is not None:
            splits[j] = split_block(call, timer.originals["conv2d"], timer.originals[call[0]],
                                    args.split_runs)
            splits[j]["block_ms_in_run"] = sb_rows[j]["ms"]
    first = None  # the kept arguments and results

    # cProfile of a few forwards: Python self time vs C calls
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    for _ in range(args.cprofile_runs):
        model(x)
    pr.disable()
    wall = (time.perf_counter() - t) * 1e3 / args.cprofile_runs
    st = pstats.Stats(pr)
    py_self, c_self, top = 0.0, 0.0, []
    pkg = os.path.dirname(os.path.abspath(sb.__file__))
    for (fname, line, func), (cc, nc, tt, ct, callers) in st.stats.items():
        if fname == "~":
            c_self += tt
        else:
            py_self += tt
            where = os.path.relpath(fname, os.path.dirname(pkg)) if fname.startswith(pkg) \
                else os.path.basename(fname)
            top.append({"function": f"{where}:{line}({func})", "calls": nc / args.cprofile_runs,
                        "self_ms": tt * 1e3 / args.cprofile_runs,
                        "cumulative_ms": ct * 1e3 / args.cprofile_runs})
    top.sort(key=lambda d: -d["self_ms"])
    cprof = {"runs": args.cprofile_runs, "wall_ms_per_forward": wall,
             "python_self_ms_per_forward": py_self * 1e3 / args.cprofile_runs,
             "c_calls_self_ms_per_forward": c_self * 1e3 / args.cprofile_runs,
             "top_python_functions": top[:args.cprofile_top]}

    ort_rows, ort_ops, ort_prof_runs = ort_node_rows(onnx, opt_path, prof_path, args.warmup)
    eng.check_no_torch()
    torch_checks["at_end"] = "torch" in sys.modules
    result = {
        "case": args.case, "isa": sb.get_isa(), "skipblocks_threads": int(sb.get_num_threads()),
        "versions": dict(eng.versions(), onnxruntime=ort.__version__, onnx=onnx.__version__),
        "ort_settings": ort_settings, "torch_in_sys_modules": torch_checks,
        "max_abs_diff_skipblocks_vs_ort": max_diff, "warmup": args.warmup,
        "rounds": args.rounds, "runs_per_task_per_round": k,
        "times_ms": {"skipblocks": plain["skipblocks"], "onnxruntime": plain["onnxruntime"],
                     "skipblocks_instrumented": [t for _, t in instr_runs],
                     "onnxruntime_profiled_model_run": ort_prof_runs},
        "skipblocks_calls": sb_rows, "fused_block_split": {str(j): s for j, s in splits.items()},
        "ort_nodes": ort_rows, "ort_optimized_op_counts": ort_ops, "cprofile": cprof,
        "ort_profile_file": prof_path, "ort_optimized_model": opt_path,
        "timed_C_functions": sorted(timer.originals),
    }
    write_json(args.result, result)
    return 0


def peak_worker(args):
    """bench_engines.peak_main at one thread, for the ISA skipblocks uses."""
    sb = be.import_skipblocks(args.skipblocks_root)
    return be.peak_main(args.skipblocks_root, [1], sb.get_isa(), args.result)


# -- analysis (the orchestrator: neither torch nor skipblocks) -----------------
def conv_key(d):
    return (d["n"], d["cin"], d["cout"], d["k"], d["kw"], d["stride"], d["groups"], d["ho"],
            d["wo"])


def is_bn_as_conv(row):
    """ORT keeps a BatchNorm it cannot fold as a depthwise 1x1 Conv."""
    return row["groups"] > 1 and row["groups"] == row["cin"] == row["cout"] and row["k"] == 1


def analyse(raw, info, peak_gflops):
    def pct(flops, ms):
        return 100.0 * flops / (ms * 1e6) / peak_gflops if peak_gflops and ms else None

    # skipblocks' convolutions in call order, fused blocks split
    splits = {int(j): s for j, s in raw["fused_block_split"].items()}
    sb_convs, sb_other = [], collections.OrderedDict()
    for row in raw["skipblocks_calls"]:
        if row["op"] == "conv2d":
            sb_convs.append(dict(row, src="conv2d"))
        elif row["i"] in splits:
            s = splits[row["i"]]
            tot = sum(c["ms"] for c in s["convs"])
            for c in s["convs"]:
                sb_convs.append(dict(c, ms=c["ms"] * row["ms"] / tot, src=row["op"],
                                     pool_first=False))
        else:
            e = sb_other.setdefault(row["op"], {"op": row["op"], "calls": 0, "ms": 0.0})
            e["calls"] += 1
            e["ms"] += row["ms"]
    ort_convs, ort_other = [], collections.OrderedDict()
    for row in raw["ort_nodes"]:
        if row["op"] in ORT_CONVS and not is_bn_as_conv(row):
            ort_convs.append(row)
            continue
        label = row["op"]
        if row["op"] in ORT_CONVS:
            label = "Conv (depthwise 1x1 = BatchNorm%s)" % (
                "+" + row["activation"] if row.get("activation") else "")
        e = ort_other.setdefault(label, {"op": label, "calls": 0, "ms": 0.0})
        e["calls"] += 1
        e["ms"] += row["ms"]

    pool = collections.defaultdict(list)
    for o in ort_convs:
        pool[conv_key(o)].append(o)
    pairs = []
    for c in sb_convs:
        key = conv_key(c)
        o, transition = None, False
        if c.get("pool_first"):  # ORT convolves the unpooled map
            k2 = key[:7] + (2 * c["ho"], 2 * c["wo"])
            if pool[k2]:
                o, transition = pool[k2].pop(0), True
        if o is None and pool[key]:
            o = pool[key].pop(0)
        pairs.append((c, o, transition))
    unmatched = [dict(o) for v in pool.values() for o in v]

    convs = []
    for c, o, transition in pairs:
        label = f"{c['cin']}->{c['cout']} {c['k']}x{c['kw']} s{c['stride']} {c['ho']}x{c['wo']}"
        if c["groups"] > 1:
            label += f" g{c['groups']}"
        if c["n"] > 1:
            label = f"N{c['n']} " + label
        if c["src"] != "conv2d":
            label += "*"
        if transition:
            label += " T"
        sb_ms, ort_ms = c["ms"], (o["ms"] if o else None)
        ort_flops = o["flops"] if o else None
        convs.append({
            "label": label, "src": c["src"], "epilogue": c.get("epilogue"),
            "transition_ort_full_map": transition, "cin": c["cin"], "cout": c["cout"],
            "k": c["k"], "stride": c["stride"], "ho": c["ho"], "wo": c["wo"],
            "flops": c["flops"], "ort_flops": ort_flops, "sb_ms": sb_ms, "ort_ms": ort_ms,
            "sb_pct_peak": pct(c["flops"], sb_ms),
            "ort_pct_peak": pct(ort_flops, ort_ms) if o else None,
            "ratio": sb_ms / ort_ms if ort_ms else None,
            "gap_ms": sb_ms - ort_ms if ort_ms is not None else None,
            "ort_node": o["node"] if o else None,
            "ort_fusion": ((o.get("activation") or "") + ("+Sum" if o.get("has_sum") else ""))
            if o else None})

    def group(keyfn):
        g = collections.OrderedDict()
        for c in convs:
            for lab in keyfn(c):
                e = g.setdefault(lab, {"label": lab, "n": 0, "flops": 0, "ort_flops": 0,
                                       "sb_ms": 0.0, "ort_ms": 0.0})
                e["n"] += 1
                e["flops"] += c["flops"]
                e["ort_flops"] += c["ort_flops"] or 0
                e["sb_ms"] += c["sb_ms"]
                e["ort_ms"] += c["ort_ms"] or 0.0
        for e in g.values():
            e.update(sb_pct_peak=pct(e["flops"], e["sb_ms"]),
                     ort_pct_peak=pct(e["ort_flops"], e["ort_ms"]),
                     ratio=e["sb_ms"] / e["ort_ms"] if e["ort_ms"] else None,
                     gap_ms=e["sb_ms"] - e["ort_ms"])
        return list(g.values())

    def category(c):
        if c["transition_ort_full_map"]:
            base = "transition 1x1 (sb pools first)"
        elif c["cin"] <= 4:
            base = "stem (C_in <= 4)"
        else:
            base = f"{c['k']}x{c['k']} s{c['stride']}"
        size = "map >= 28" if c["ho"] >= 28 else "map 14-27" if c["ho"] >= 14 else "map <= 13"
        return [base, f"{base}, {size}"]

    by_shape = group(lambda c: [c["label"]])
    categories = sorted(group(category), key=lambda e: e["label"])
    all_convs = group(lambda c: ["all convolutions"])
    sb_pool = sum(e["ms"] for k, e in sb_other.items() if k in SB_POOLS)
    ort_pool = sum(e["ms"] for k, e in ort_other.items() if k in ORT_POOLS)
    sb_rest = sum(e["ms"] for k, e in sb_other.items() if k not in SB_POOLS)
    ort_rest = sum(e["ms"] for k, e in ort_other.items() if k not in ORT_POOLS)
    for lab, a, b in (("pools", sb_pool, ort_pool), ("other non-conv", sb_rest, ort_rest)):
        categories.append({"label": lab, "sb_ms": a, "ort_ms": b,
                           "ratio": a / b if b else None, "gap_ms": a - b})
    sb_sum = (all_convs[0]["sb_ms"] if all_convs else 0.0) + sb_pool + sb_rest
    ort_sum = (all_convs[0]["ort_ms"] if all_convs else 0.0) + ort_pool + ort_rest
    categories.append({"label": "total (sum of per-call medians)", "sb_ms": sb_sum,
                       "ort_ms": ort_sum, "ratio": sb_sum / ort_sum if ort_sum else None,
                       "gap_ms": sb_sum - ort_sum})

    times = {k: times_summary(v) for k, v in raw["times_ms"].items() if v}
    glue = {
        "skipblocks_outside_C_ms": times["skipblocks"]["p10"] - sb_sum,
        "onnxruntime_outside_nodes_ms": times["onnxruntime"]["p10"] - ort_sum,
        "skipblocks_instrumentation_overhead_ms":
            times["skipblocks_instrumented"]["median"] - times["skipblocks"]["median"],
        "skipblocks_C_calls_per_forward": len(raw["skipblocks_calls"]),
        "ort_nodes_per_run": len(raw["ort_nodes"]), "cprofile": raw["cprofile"],
        "how": "p10 of the plain end-to-end times minus the sum of per-call (per-node) "
               "medians; instrumentation overhead = instrumented median - plain median"}

    opt_counts = raw["ort_optimized_op_counts"]
    nchwc = [r for r in raw["ort_nodes"] if r["op"] in ORT_CONVS]
    reorders = [r for r in raw["ort_nodes"] if r["op"] in ("ReorderInput", "ReorderOutput")]
    graph = {
        "exported_op_counts": info["export"].get("op_counts"),
        "optimized_op_counts": opt_counts,
        "conv_nodes": sum(1 for r in nchwc if not is_bn_as_conv(r)),
        "conv_activations": dict(collections.Counter(r.get("activation") or "none"
                                                     for r in nchwc if not is_bn_as_conv(r))),
        "conv_with_fused_sum": sum(1 for r in nchwc if r.get("has_sum")),
        "batchnorm_as_depthwise_conv": sum(1 for r in nchwc if is_bn_as_conv(r)),
        "reorders": {op: {"nodes": sum(1 for r in reorders if r["op"] == op),
                          "ms": sum(r["ms"] for r in reorders if r["op"] == op)}
                     for op in ("ReorderInput", "ReorderOutput")},
    }
    return {
        "case": raw["case"], "input_shape": info["input_shape"], "flops_torch_count":
        info["flops"], "isa": raw["isa"], "skipblocks_threads": raw["skipblocks_threads"],
        "max_abs_diff_skipblocks_vs_ort": raw["max_abs_diff_skipblocks_vs_ort"],
        "times_ms": times, "convolutions": convs, "by_shape": by_shape,
        "all_convolutions": all_convs[0] if all_convs else None,
        "categories": categories,
        "non_conv": {"skipblocks": list(sb_other.values()),
                     "onnxruntime": list(ort_other.values())},
        "unmatched_ort_convolutions": [{k: o.get(k) for k in ("node", "cin", "cout", "k",
                                                              "stride", "ho", "wo", "ms")}
                                       for o in unmatched],
        "ort_graph": graph, "glue": glue, "fused_block_split": raw["fused_block_split"],
        "raw": {k: raw[k] for k in ("times_ms", "skipblocks_calls", "ort_nodes",
                                    "torch_in_sys_modules", "warmup", "rounds",
                                    "runs_per_task_per_round", "timed_C_functions")},
    }


# -- output ---------------------------------------------------------------------
def _f(v, fmt="{:.3f}"):
    return "-" if v is None else fmt.format(v)


def conv_table(rows, with_counts=True):
    head = ["convolution"] + (["n"] if with_counts else []) + [
        "MFLOP", "sb ms", "sb %pk", "ORT ms", "ORT %pk", "sb/ORT", "gap ms"]
    out = []
    for r in rows:
        out.append([r["label"]] + ([str(r["n"])] if with_counts else []) + [
            _f(r.get("flops") and r["flops"] / 1e6, "{:.1f}"), _f(r["sb_ms"]),
            _f(r.get("sb_pct_peak"), "{:.1f}"), _f(r["ort_ms"]),
            _f(r.get("ort_pct_peak"), "{:.1f}"), _f(r.get("ratio"), "{:.2f}"),
            _f(r.get("gap_ms"), "{:+.3f}")])
    return format_rows(head, out, right=set(range(1, len(head))))


def format_case(a):
    t = a["times_ms"]
    lines = [f"== {a['case']}  (input {'x'.join(map(str, a['input_shape']))}, "
             f"{a['skipblocks_threads']} thread, ISA {a['isa']}, max |sb - ORT| "
             f"{a['max_abs_diff_skipblocks_vs_ort']:.1e})", "",
             "end-to-end ms (median / p10 / min over runs):"]
    for k, lab in (("skipblocks", "skipblocks"), ("onnxruntime", "ONNX Runtime"),
                   ("skipblocks_instrumented", "skipblocks, _C calls timed"),
                   ("onnxruntime_profiled_model_run", "ORT profiled (model_run)")):
        if k in t:
            lines.append(f"  {lab:28s} {t[k]['median']:9.3f} / {t[k]['p10']:9.3f} / "
                         f"{t[k]['min']:9.3f}   ({t[k]['runs']} runs)")
    lines.append(f"  sb/ORT median {t['skipblocks']['median'] / t['onnxruntime']['median']:.3f}"
                 f", gap {t['skipblocks']['median'] - t['onnxruntime']['median']:+.3f} ms")
    lines += ["", "per convolution, in skipblocks' call order ('*': inside a fused "
              "residual_block / dense_layer, split by standalone replay; 'T': transition, "
              "ORT at the 2x map):"]
    lines += conv_table(a["convolutions"] + ([dict(a["all_convolutions"],
                                                   label="ALL CONVOLUTIONS")]
                                             if a["all_convolutions"] else []),
                        with_counts=False)
    lines += ["", "grouped by shape (sums over occurrences):"]
    lines += conv_table(a["by_shape"])
    lines += ["", "categories:"]
    lines += conv_table([dict(c, n=c.get("n", "")) for c in a["categories"]])
    if a["unmatched_ort_convolutions"]:
        lines.append("ORT convolutions matched to no skipblocks one: " + ", ".join(
            f"{o['cin']}->{o['cout']} {o['k']}x{o['k']} s{o['stride']} {o['ho']}x{o['wo']} "
            f"({o['ms']:.3f} ms)" for o in a["unmatched_ort_convolutions"]))
    lines += ["", "non-conv items (sum of per-call medians, ms; calls per forward):"]
    for eng, lab in (("skipblocks", "skipblocks"), ("onnxruntime", "ORT")):
        items = sorted(a["non_conv"][eng], key=lambda e: -e["ms"])
        lines.append(f"  {lab}: " + (", ".join(f"{e['op']} x{e['calls']} {e['ms']:.3f}"
                                               for e in items) or "none"))
    g = a["ort_graph"]
    lines += ["", "ORT graph transformations (ORT_ENABLE_ALL):"]
    if g["exported_op_counts"]:
        lines.append("  exported: " + ", ".join(
            f"{k} {v}" for k, v in sorted(g["exported_op_counts"].items(), key=lambda kv: -kv[1])))
    lines.append("  optimized: " + ", ".join(
        f"{k} {v}" for k, v in sorted(g["optimized_op_counts"].items(), key=lambda kv: -kv[1])))
    lines.append(f"  {g['conv_nodes']} convolutions: fused activation " + ", ".join(
        f"{k} {v}" for k, v in g["conv_activations"].items()) +
        f"; {g['conv_with_fused_sum']} with a fused Sum (residual add); "
        f"{g['batchnorm_as_depthwise_conv']} BatchNorms left as depthwise 1x1 Convs")
    lines.append("  reorders: " + ", ".join(
        f"{k} {v['nodes']} nodes {v['ms']:.3f} ms" for k, v in g["reorders"].items()))
    gl, cp = a["glue"], a["glue"]["cprofile"]
    lines += ["", "Python glue (skipblocks) / session overhead (ORT):",
              f"  p10 end-to-end - sum of per-call medians: skipblocks "
              f"{gl['skipblocks_outside_C_ms']:+.3f} ms ({gl['skipblocks_C_calls_per_forward']} "
              f"_C calls), ORT {gl['onnxruntime_outside_nodes_ms']:+.3f} ms "
              f"({gl['ort_nodes_per_run']} nodes)",
              f"  timing every _C call costs {gl['skipblocks_instrumentation_overhead_ms']:+.3f}"
              " ms per forward (instrumented median - plain median)",
              f"  cProfile ({cp['runs']} forwards): {cp['wall_ms_per_forward']:.3f} ms per "
              f"forward under the profiler; self time in Python functions "
              f"{cp['python_self_ms_per_forward']:.3f} ms, in C calls "
              f"{cp['c_calls_self_ms_per_forward']:.3f} ms; top Python functions (self ms, "
              "calls per forward):"]
    for fn in cp["top_python_functions"]:
        lines.append(f"    {fn['self_ms']:7.3f}  {fn['calls']:6.0f}  {fn['function']}")
    return "\n".join(lines)


def format_header(meta):
    v = meta["versions"]
    p = meta["peak"]
    basis = p.get("pct_of_peak_basis") or {}
    peak = (f"{meta['peak_gflops_1thread']:.1f} GFLOP/s at 1 thread "
            f"({basis.get('vector_bits')}-bit FMAs, fma_peak.c, per CPU second)"
            if meta["peak_gflops_1thread"] else f"not measured ({p.get('error')})")
    lines = [
        f"machine:   {machine_line(meta['machine_info'])}",
        f"software:  skipblocks {v.get('skipblocks')} (ISA in use: {v.get('isa')}; available: "
        f"{', '.join(v.get('isas', []))}), onnxruntime {v.get('onnxruntime')}, onnx "
        f"{v.get('onnx')}, numpy {v.get('numpy')}, python {platform.python_version()}",
        f"build:     {build_line(v['build']) if 'build' in v else '?'}",
    ] + ([f"source:    {meta['skipblocks_source']}"] if meta.get("skipblocks_source") else []) + [
        f"peak:      {peak}",
        f"export:    torch.onnx.export(dynamo=False), opset {be.ONNX_OPSET}, static shapes, "
        "do_constant_folding=True (bench_engines.py's)",
        "settings:  1 thread; ORT CPUExecutionProvider intra_op=1 inter_op=1 ORT_ENABLE_ALL "
        "sequential; skipblocks set_num_threads(1); both in one process without torch",
        f"method:    {meta['warmup']} warm-up runs each, {meta['rounds']} rounds of 4 tasks "
        "(ORT, sb, ORT profiled, sb with _C calls timed) in rotated order, "
        f"{meta['runs_per_task_per_round']} forwards per task per round; fused blocks split "
        f"by {meta['split_runs']} standalone runs per conv",
        f"date:      {meta['date']}",
        f"load:      {load_line(*meta['load_average_1min'])}",
        f"command:   {meta['command']}   (in {meta['cwd']})",
        "",
        "sb = skipblocks; ms = median; %pk = FLOPs / time / the FMA peak; sb/ORT below 1: "
        "skipblocks faster; gap = sb ms - ORT ms.",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=["profile", "peak"], help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="+", default=None,
                        help="case names, prefixes or globs of bench_engines.py's cases "
                             f"(default: {' '.join(DEFAULT_CASES)})")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed forwards per task (default 50; 6 with --quick), spread "
                             "over the rounds")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of the four tasks (default 5; 2 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up forwards of each engine (default 10; 3 with --quick)")
    parser.add_argument("--split-runs", type=int, default=None,
                        help="standalone runs per replayed fused-block convolution (default "
                             "30; 5 with --quick)")
    parser.add_argument("--cprofile-runs", type=int, default=None,
                        help="forwards under cProfile (default 5; 2 with --quick)")
    parser.add_argument("--cprofile-top", type=int, default=8,
                        help="Python functions listed from the cProfile (default 8)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {', '.join(QUICK_CASES)} unless --cases, few runs; "
                             "writes files only with --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="path prefix of the .txt and .json (default "
                             "benchmarks/results/layers_<cpu>)")
    parser.add_argument("--workdir", default=None,
                        help="where inputs, weights, ONNX files, ORT profiles and optimized "
                             "graphs go (default: a temporary directory, removed at the end)")
    parser.add_argument("--skipblocks-root", default=None,
                        help="measure the skipblocks package in this directory")
    parser.add_argument("--skipblocks-source", default=None,
                        help="free text recorded in the header and JSON: where the measured "
                             "skipblocks build came from")
    args = parser.parse_args(argv)
    q = args.quick
    for name, full, quick in (("runs", 50, 6), ("rounds", 5, 2), ("warmup", 10, 3),
                              ("split_runs", 30, 5), ("cprofile_runs", 5, 2)):
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    if min(args.runs, args.rounds, args.warmup, args.split_runs, args.cprofile_runs) < 1:
        parser.error("--runs, --rounds, --warmup, --split-runs and --cprofile-runs must be >= 1")
    if args.skipblocks_root:
        args.skipblocks_root = os.path.abspath(args.skipblocks_root)
    if args.worker == "profile":
        return profile_worker(args)
    if args.worker == "peak":
        return peak_worker(args)

    patterns = args.cases or list(QUICK_CASES if q else DEFAULT_CASES)
    cases = be.select_cases(patterns)
    if not cases:
        parser.error(f"no case matches {patterns}")
    log = be.log

    load_before = load_average()
    tmp, workdir = be.open_workdir(args.workdir, "skipblocks-layers-")
    root_args = ["--skipblocks-root", args.skipblocks_root] if args.skipblocks_root else []

    def run_worker(kind, result, extra=()):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--result",
               result] + list(extra) + root_args
        done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{kind} worker failed (exit {done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
        with open(result) as f:
            return json.load(f)

    try:
        log("preparing (torch worker of bench_engines.py: input, weights, ONNX export) ...")
        torch_worker = be.Worker("torch", args.skipblocks_root, workdir)
        try:
            if not torch_worker.hello["ok"]:
                raise RuntimeError(f"torch worker failed to start:\n{torch_worker.hello['error']}")
            infos = {}
            for case in cases:
                log(f"  {case} ...")
                got = torch_worker.call(cmd="prepare", case=case, workdir=workdir, seed=args.seed)
                if not got["ok"]:
                    raise RuntimeError(f"preparing {case} failed:\n{got['error']}")
                infos[case] = got["info"]
        finally:
            torch_worker.close()

        log("FMA peak (1 thread) ...")
        peak = run_worker("peak", os.path.join(workdir, "peak.json"))
        peak_gflops = (peak.get("by_threads", {}).get("1") or {}).get("gflops")

        analyses, failed, versions, raws = [], {}, {}, {}
        for case in cases:
            if not infos[case]["export"].get("ok"):
                failed[case] = "ONNX export failed: " + infos[case]["export"].get("error", "")
                log(f"  {case}: {failed[case][:200]}")
                continue
            log(f"profiling {case} ...")
            try:
                raw = run_worker("profile", os.path.join(workdir, case, "profile.json"), [
                    "--case", case, "--workdir", workdir, "--runs", str(args.runs),
                    "--rounds", str(args.rounds), "--warmup", str(args.warmup),
                    "--split-runs", str(args.split_runs),
                    "--cprofile-runs", str(args.cprofile_runs),
                    "--cprofile-top", str(args.cprofile_top)])
            except RuntimeError as exc:
                failed[case] = str(exc)[-3000:]
                log(f"  {case} failed: {str(exc)[-500:]}")
                continue
            versions = versions or raw["versions"]
            raws[case] = raw
            a = analyse(raw, infos[case], peak_gflops)
            analyses.append(a)
            t = a["times_ms"]
            log(f"  sb {t['skipblocks']['median']:.3f} ms, ORT {t['onnxruntime']['median']:.3f}"
                " ms (medians)")
    finally:
        if tmp is not None:
            tmp.cleanup()
    if not analyses:
        log("no case was profiled")
        for case, err in failed.items():
            log(f"{case}: {err}")
        return 1

    m = machine_info()
    isa = versions.get("isa")
    slug = be.cpu_slug(m, isa)
    first = raws[analyses[0]["case"]]
    meta = {
        "date": now_utc(), "command": command_line(), "cwd": os.getcwd(),
        "load_average_1min": [load_before, load_average()], "machine_info": m, "slug": slug,
        "skipblocks_root": args.skipblocks_root or "this checkout (common.import_skipblocks)",
        "skipblocks_source": args.skipblocks_source, "versions": versions,
        "python": platform.python_version(), "peak": peak, "peak_gflops_1thread": peak_gflops,
        "threads": 1, "runs": args.runs, "rounds": args.rounds,
        "runs_per_task_per_round": first["runs_per_task_per_round"], "warmup": args.warmup,
        "split_runs": args.split_runs, "cprofile_runs": args.cprofile_runs, "seed": args.seed,
        "quick": q, "export": dict(be.EXPORT_OPTIONS), "ort_settings": first["ort_settings"],
        "cases": infos, "failed": failed,
        "workdir": None if tmp is not None else workdir,
        "note": "Times in ms. Per-call / per-node times are medians over the instrumented / "
                "profiled forwards; fused-block rows share the block's in-run median in the "
                "ratio of their standalone replays. pct_peak = flops / ms / "
                "peak_gflops_1thread. ratio = skipblocks / ORT (below 1: skipblocks faster).",
    }
    text = format_header(meta) + "\n\n" + "\n\n\n".join(format_case(a) for a in analyses)
    if failed:
        text += "\n\nfailed: " + "; ".join(f"{c}: {e.strip().splitlines()[-1]}"
                                           for c, e in failed.items())
    print(text)
    out = args.out
    if out is None and not q:
        out = os.path.join(RESULTS, f"layers_{slug}")
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out + ".txt.tmp", "w") as f:
            f.write(text + "\n")
        os.replace(out + ".txt.tmp", out + ".txt")
        write_json(out + ".json", {"meta": meta, "results": analyses})
        log(f"wrote {out}.txt and {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

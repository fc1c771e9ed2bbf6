"""Benchmark skipblocks against torch, ONNX Runtime and OpenVINO, eval mode.

    python benchmarks/bench_engines.py                    # the baseline: every case, 1 and 2 threads
    python benchmarks/bench_engines.py --quick            # smoke run (3 small cases, 2 rounds)
    python benchmarks/bench_engines.py --cases 'resnet50-*' --threads 1 --rounds 3

The baseline table (benchmarks/results/engines_<cpu>.{txt,json}) is

    pip install ".[bench]"
    python benchmarks/bench_engines.py --threads 1 2 --rounds 5

Cases (all float32, eval mode): the document's three demos at the
document's shapes (resnet-doc and densenet-doc 1x3x100x100, se-doc
50x512x7x7), the ResNet and DenseNet demos at 8x3x224x224 (resnet-224,
densenet-224), the whole networks resnet18, resnet50, densenet121 and
se_resnet50 at 1x3x224x224 and 8x3x224x224 (``<name>-b1``, ``<name>-b8``)
and UNet(3, 2) with transposed convolutions at 1x3x256x256 (unet-256).
--cases takes name prefixes or globs.

The torch side is skipblocks.reference (the document's modules, the
networks written from torchvision's and timm's source, the U-Net of
reference.systems), built with torch.manual_seed(--seed) and BatchNorm
running statistics drawn uniformly. A torch process builds each case once
(a --workdir reused by a later run keeps a case only when its seed,
exporter options, torch version and reference source match) and writes, into a work directory: the input (.npy,
drawn with NumPy), the weights (torch.save of the state_dict, a .pth file
that skipblocks.load reads without torch) and the ONNX file, exported from
that same module with torch's TorchScript exporter (torch.onnx.export(...,
dynamo=False), static shapes, opset 17, constant folding; the JSON records
the options, the exporter's warnings and the exported graph's op counts).

Method: four engines, each in its own worker process (this script run as
``--worker ENGINE``), which stay alive for the whole run and take one-line
JSON commands on stdin: load a case at a thread count, warm up, run k timed
forwards, write the output. skipblocks' worker never imports torch: it
asserts ``'torch' not in sys.modules`` after every command, and the JSON
records the check. The engines' settings:

    skipblocks    skipblocks.set_num_threads(n); model(x) on the NumPy input
    torch         torch.set_num_threads(n); torch.inference_mode(); model(torch.from_numpy(x))
    ONNX Runtime  CPUExecutionProvider, intra_op_num_threads=n, inter_op_num_threads=1,
                  GraphOptimizationLevel.ORT_ENABLE_ALL, ExecutionMode.ORT_SEQUENTIAL
    OpenVINO      read_model(the .onnx), compile_model on "CPU" with INFERENCE_NUM_THREADS=n,
                  NUM_STREAMS=1, PERFORMANCE_HINT=LATENCY, INFERENCE_PRECISION_HINT=f32;
                  one InferRequest, infer(share_inputs=True)

(the JSON also records the settings each engine reports back; ONNX
Runtime's are the ones set). For each case and thread count, every worker
loads the case and warms up (at least --warmup runs and 0.4 x
--batch-seconds); its warm-up time per run sizes its timed batch to
about --batch-seconds (at least one run). Then --rounds rounds: round r runs
each engine's batch in turn, the order rotated by one engine per round, with
a --pause between batches (spinning thread pools go quiet), so drift in the
machine's load hits every engine alike. An engine's time in a round is the
median of its batch; its reported time is the median over rounds
([min-max] of the round times in the JSON, with every run's time).

Parity: after warm-up each engine's output is compared with torch's output
at the same thread count: max |engine - torch|, and that divided by
max |torch|. A row "counts" only when every engine's error is <= 1e-4,
the error being max |engine - torch| / max(1, max |torch|): absolute for
outputs up to 1, relative beyond (resnet50's logits reach about 170,
where every engine, ONNX Runtime and OpenVINO included, is 2-4e-4 off in
absolute terms and 1e-6 in relative ones); the others are marked in the
table.

Table, per thread count: skipblocks' median ms, then ratio = engine time /
skipblocks time for torch, ONNX Runtime and OpenVINO (below 1: that engine
is faster, skipblocks slower), the FLOPs of one forward, skipblocks' % of
peak, and the largest parity error. FLOPs = 2 x the multiply-adds of the
convolutions (transposed ones included) and linear layers only, counted by
forward hooks on the torch module at the case's shape (Conv2d:
N*C_out*H_out*W_out*C_in/groups*kh*kw; ConvTranspose2d:
N*C_in*H_in*W_in*C_out/groups*kh*kw; Linear: rows*in*out; biases,
BatchNorm, pooling and activations not counted: torch's algorithm, the
same count for every engine, although skipblocks does less work in
DenseNet's transitions, where it pools before the 1x1 convolution). % of
peak = those FLOPs / skipblocks' median time against the FMA peak measured at that thread count:
benchmarks/fma_peak.c, built and run by bench_demos.py's own functions (the
best of three 0.5 s runs per CPU second, one thread), and at n threads n
copies run at once, their rates summed (best of three). The peak's vector
width is the one skipblocks' ISA in use computes with (bench_demos.py's
rule: 512-bit for 'avx512' when measured, else 256-bit).

Above the tables: the machine, skipblocks' ISA, every engine's version,
which skipblocks build (git commit, extension hash), the peaks, the date,
the load average around the run and the command line. Timings are
measurements taken on whatever else the machine was doing; the load line
says how busy it was. --skipblocks-root DIR measures the skipblocks
package in DIR (a checkout with a built extension) instead of this
checkout's; --quick writes no files unless --out is given.
"""
import argparse
import fnmatch
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

import numpy as np

from common import (RESULTS, build_info, build_line, command_line, format_rows,
                    load_average, load_line, machine_info, machine_line, now_utc, write_json)

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ("skipblocks", "torch", "onnxruntime", "openvino")
SHORT = {"skipblocks": "sb", "torch": "torch", "onnxruntime": "ORT", "openvino": "OpenVINO"}
PARITY_TOL = 1e-4
ONNX_OPSET = 17
EXPORT_OPTIONS = {"function": "torch.onnx.export", "dynamo": False, "opset_version": ONNX_OPSET,
                  "do_constant_folding": True, "input_names": ["input"],
                  "output_names": ["output"], "dynamic_axes": None,
                  "training": "torch.onnx.TrainingMode.EVAL (module in eval mode)"}

NETWORKS = ("resnet18", "resnet50", "densenet121", "se_resnet50")

# name -> (kind, argument, input shape, how the input is drawn)
CASES = {
    "resnet-doc": ("demo", "resnet", (1, 3, 100, 100), "rand"),
    "densenet-doc": ("demo", "densenet", (1, 3, 100, 100), "rand"),
    "se-doc": ("demo", "se", (50, 512, 7, 7), "randn"),
    "resnet-224": ("demo", "resnet", (8, 3, 224, 224), "rand"),
    "densenet-224": ("demo", "densenet", (8, 3, 224, 224), "rand"),
}
for _name in NETWORKS:
    for _batch in (1, 8):
        CASES["%s-b%d" % (_name, _batch)] = ("network", _name, (_batch, 3, 224, 224), "rand")
CASES["unet-256"] = ("unet", False, (1, 3, 256, 256), "rand")
QUICK_CASES = ("resnet-doc", "se-doc", "resnet18-b1")


def select_cases(patterns):
    """The case names matching any of the prefixes or globs (all: None)."""
    return [c for c in CASES if patterns is None or any(
        c.startswith(p) or fnmatch.fnmatchcase(c, p) for p in patterns)]


def open_workdir(path, prefix):
    """(TemporaryDirectory or None, absolute path): the given work directory,
    created if needed, or a temporary one removed when the first is."""
    tmp = None
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        path = tmp.name
    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    return tmp, path


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def case_files(workdir, case):
    d = os.path.join(workdir, case)
    return {"dir": d, "input": os.path.join(d, "input.npy"),
            "weights": os.path.join(d, "weights.pth"), "onnx": os.path.join(d, "model.onnx"),
            "info": os.path.join(d, "case.json")}


# -- skipblocks import ----------------------------------------------------------
def import_skipblocks(root=None):
    """common.import_skipblocks (this checkout's build, else the installed
    package), or the package in `root` when given."""
    if root:
        sys.path.insert(0, os.path.abspath(root))
        import skipblocks
        if not os.path.abspath(skipblocks.__file__).startswith(os.path.abspath(root) + os.sep):
            raise RuntimeError(f"skipblocks came from {skipblocks.__file__}, not {root}")
        return skipblocks
    from common import import_skipblocks as checkout_or_installed
    return checkout_or_installed()


# -- workers --------------------------------------------------------------------
class Engine:
    """One engine in a worker process: load(case, threads) -> settings,
    run() -> output (NumPy array)."""
    name = None

    def versions(self):
        return {}


class SkipblocksEngine(Engine):
    name = "skipblocks"

    def __init__(self, root):
        self.sb = import_skipblocks(root)
        self.check_no_torch()

    @staticmethod
    def check_no_torch():
        if "torch" in sys.modules:  # not an assert: python -O must not drop it
            raise RuntimeError("skipblocks' worker imported torch")

    def versions(self):
        sb = self.sb
        return {"skipblocks": sb.__version__, "isa": sb.get_isa(),
                "isas": list(sb.available_isas()), "build": build_info(sb),
                "build_flags": getattr(sb._C, "build_info", lambda: None)(),
                "numpy": np.__version__}

    def build(self, kind, arg):
        sb = self.sb
        if kind == "demo":
            from skipblocks import demos
            return demos.DEMOS[arg][0]()
        if kind == "network":
            from skipblocks import models
            return getattr(models, arg)()
        return sb.UNet(3, 2, bilinear=arg)

    def load(self, case, files, threads):
        sb = self.sb
        kind, arg, _, _ = CASES[case]
        model = self.build(kind, arg)
        model.load_state_dict(sb.state_dict_from(sb.load(files["weights"])))
        self.model = model.eval()
        self.x = np.load(files["input"])
        sb.set_num_threads(threads)
        self.check_no_torch()
        return {"set_num_threads": threads, "get_num_threads": int(sb.get_num_threads()),
                "isa": sb.get_isa(), "weights_file": "torch.save state_dict (.pth) read by "
                "skipblocks.load", "torch_in_sys_modules": "torch" in sys.modules}

    def run(self):
        return self.model(self.x)


def skipblocks_reference_file():
    """Where the torch references come from (part of a cached case's key)."""
    from skipblocks import reference
    return os.path.dirname(os.path.abspath(reference.__file__))


def torch_reference(kind, arg, seed):
    """The torch module of a case: seeded weights, BatchNorm running
    statistics drawn uniformly (so that eval mode's BatchNorm is not close
    to the identity)."""
    import torch
    from skipblocks import reference as ref
    torch.manual_seed(seed)
    if kind == "demo":
        model = ref.DOCUMENT_INPUTS[arg]["builder"]()
    elif kind == "network":
        from skipblocks.reference import networks
        model = networks.NETWORKS[arg.replace("se_resnet", "seresnet")]()
    else:
        from skipblocks.reference import systems
        model = systems.UNet(3, 2, bilinear=arg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def count_flops(model, x):
    """2 x multiply-adds of Conv2d, ConvTranspose2d and Linear (no biases),
    from forward hooks at x's shape."""
    import torch
    total = {"Conv2d": 0, "ConvTranspose2d": 0, "Linear": 0}

    def hook(module, args, out):
        inp = args[0]
        if isinstance(module, torch.nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            macs = inp.numel() * module.out_channels // module.groups * kh * kw
            total["ConvTranspose2d"] += 2 * macs
        elif isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs = out.numel() * module.in_channels // module.groups * kh * kw
            total["Conv2d"] += 2 * macs
        elif isinstance(module, torch.nn.Linear):
            macs = inp.numel() // module.in_features * module.in_features * module.out_features
            total["Linear"] += 2 * macs

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return sum(total.values()), total


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, root):
        import_skipblocks(root)  # skipblocks.reference comes from the same package
        import torch
        self.torch = torch

    def versions(self):
        return {"torch": self.torch.__version__, "numpy": np.__version__,
                "torch_parallel_info": self.torch.__config__.parallel_info()}

    def prepare(self, case, files, seed):
        """Builds the case's torch module and writes input, weights and ONNX
        file; kept for a later run with the same work directory only when
        case.json says they were made the same way (case, seed, exporter
        options, torch version, reference source) and the export worked."""
        import warnings
        torch = self.torch
        key = {"case": case, "seed": seed, "export_options": EXPORT_OPTIONS,
               "torch": torch.__version__, "reference": skipblocks_reference_file()}
        if os.path.exists(files["info"]):
            try:
                with open(files["info"]) as f:
                    cached = json.load(f)
            except ValueError:
                cached = {}
            if cached.get("key") == json.loads(json.dumps(key)) and \
                    cached.get("export", {}).get("ok"):
                return cached
        os.makedirs(files["dir"], exist_ok=True)
        kind, arg, shape, how = CASES[case]
        rng = np.random.default_rng([seed, zlib.crc32(case.encode())])
        x = (rng.random(shape) if how == "rand" else rng.standard_normal(shape)).astype(
            np.float32)
        np.save(files["input"], x)
        model = torch_reference(kind, arg, seed)
        torch.save(model.state_dict(), files["weights"])
        xt = torch.from_numpy(x.copy())
        flops, by_type = count_flops(model, xt)
        info = {"case": case, "input_shape": list(shape), "input_draw": how, "seed": seed,
                "flops": flops, "flops_by_type": by_type, "export": dict(EXPORT_OPTIONS),
                "key": key}
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with torch.no_grad():
                    torch.onnx.export(model, (xt,), files["onnx"], dynamo=False,
                                      opset_version=ONNX_OPSET, do_constant_folding=True,
                                      input_names=["input"], output_names=["output"])
            info["export"]["warnings"] = sorted({str(w.message)[:300] for w in caught})
            info["export"]["seconds"] = time.perf_counter() - start
            import onnx
            graph = onnx.load(files["onnx"])
            onnx.checker.check_model(graph)
            info["export"]["ok"] = True
            ops = {}
            for node in graph.graph.node:
                ops[node.op_type] = ops.get(node.op_type, 0) + 1
            info["export"].update({
                "onnx_opset_imports": {o.domain or "ai.onnx": o.version
                                       for o in graph.opset_import},
                "onnx_ir_version": graph.ir_version, "producer": f"{graph.producer_name} "
                f"{graph.producer_version}", "op_counts": ops,
                "file_bytes": os.path.getsize(files["onnx"])})
        except Exception as exc:  # recorded; the ONNX engines then fail to load
            info["export"]["ok"] = False
            info["export"]["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        # written whole or not at all: a run killed here leaves no half file
        with open(files["info"] + ".tmp", "w") as f:
            json.dump(info, f)
        os.replace(files["info"] + ".tmp", files["info"])
        return info

    def load(self, case, files, threads):
        torch = self.torch
        kind, arg, _, _ = CASES[case]
        model = torch_reference(kind, arg, 0)
        model.load_state_dict(torch.load(files["weights"], weights_only=True))
        self.model = model.eval()
        self.x = torch.from_numpy(np.load(files["input"]))
        torch.set_num_threads(threads)
        return {"set_num_threads": threads, "get_num_threads": torch.get_num_threads(),
                "get_num_interop_threads": torch.get_num_interop_threads(),
                "grad_mode": "torch.inference_mode()"}

    def run(self):
        with self.torch.inference_mode():
            return self.model(self.x)

    def output(self):
        return self.run().numpy()


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, root):
        import onnxruntime
        self.ort = onnxruntime

    def versions(self):
        return {"onnxruntime": self.ort.__version__, "device": self.ort.get_device(),
                "providers_available": self.ort.get_available_providers()}

    def load(self, case, files, threads):
        ort = self.ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = None  # the previous case's session goes first
        self.session = ort.InferenceSession(files["onnx"], sess_options=so,
                                            providers=["CPUExecutionProvider"])
        self.x = np.load(files["input"])
        self.feed = {self.session.get_inputs()[0].name: self.x}
        self.outputs = [self.session.get_outputs()[0].name]
        return {"providers": self.session.get_providers(),
                "intra_op_num_threads": so.intra_op_num_threads,
                "inter_op_num_threads": so.inter_op_num_threads,
                "graph_optimization_level": str(so.graph_optimization_level),
                "execution_mode": str(so.execution_mode),
                "run": "session.run([output], {input: x}) with the NumPy input"}

    def run(self):
        return self.session.run(self.outputs, self.feed)[0]


class OpenVinoEngine(Engine):
    name = "openvino"

    def __init__(self, root):
        import openvino
        self.ov = openvino
        self.core = openvino.Core()

    def versions(self):
        return {"openvino": self.ov.__version__,
                "runtime_version": str(self.ov.get_version()),
                "devices": self.core.available_devices,
                "cpu_device_name": self.core.get_property("CPU", "FULL_DEVICE_NAME")}

    def load(self, case, files, threads):
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                  "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        self.request = self.compiled = None
        model = self.core.read_model(files["onnx"])
        self.compiled = self.core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.x = np.load(files["input"])
        got = {}
        for key in ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT",
                    "INFERENCE_PRECISION_HINT", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING",
                    "SCHEDULING_CORE_TYPE", "EXECUTION_MODE_HINT",
                    "OPTIMAL_NUMBER_OF_INFER_REQUESTS"):
            try:
                got[key] = str(self.compiled.get_property(key))
            except Exception as exc:  # a key this version does not have
                got[key] = f"unavailable ({type(exc).__name__})"
        return {"requested": {k: str(v) for k, v in config.items()}, "compiled_model": got,
                "run": "one InferRequest, infer({0: x}, share_inputs=True) (outputs copied)"}

    def run(self):
        return self.request.infer({0: self.x}, share_inputs=True)[0]


ENGINE_CLASSES = {"skipblocks": SkipblocksEngine, "torch": TorchEngine,
                  "onnxruntime": OnnxRuntimeEngine, "openvino": OpenVinoEngine}


def worker_main(engine_name, root):
    """Reads one JSON command per line on stdin, answers one JSON line.
    The protocol has its own copy of stdout; fd 1 goes to stderr, so
    whatever a library prints cannot break it."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        engine = ENGINE_CLASSES[engine_name](root)
        reply({"ok": True, "versions": engine.versions(), "pid": os.getpid(),
               "torch_in_sys_modules": "torch" in sys.modules})
    except Exception:
        reply({"ok": False, "error": traceback.format_exc()})
        return 1
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            op = cmd["cmd"]
            if op == "quit":
                reply({"ok": True})
                break
            files = case_files(cmd["workdir"], cmd["case"]) if "case" in cmd else None
            if op == "check":
                out = {}
            elif op == "prepare":
                out = {"info": engine.prepare(cmd["case"], files, cmd["seed"])}
            elif op == "load":
                out = {"settings": engine.load(cmd["case"], files, cmd["threads"])}
            elif op == "warmup":
                times, start = [], time.perf_counter()
                while len(times) < cmd["max_runs"] and (
                        len(times) < cmd["min_runs"]
                        or time.perf_counter() - start < cmd["min_seconds"]):
                    t0 = time.perf_counter()
                    engine.run()
                    times.append(time.perf_counter() - t0)
                out = {"times": times}
            elif op == "time":
                times = []
                for _ in range(cmd["runs"]):
                    t0 = time.perf_counter()
                    engine.run()
                    times.append(time.perf_counter() - t0)
                out = {"times": times}
            elif op == "output":
                y = engine.output() if hasattr(engine, "output") else engine.run()
                np.save(cmd["path"], np.ascontiguousarray(y, dtype=np.float32))
                out = {"shape": list(np.shape(y))}
            else:
                raise ValueError(f"unknown command {op!r}")
            if engine_name == "skipblocks":
                SkipblocksEngine.check_no_torch()
            out["ok"] = True
            out["torch_in_sys_modules"] = "torch" in sys.modules
            reply(out)
        except Exception:
            reply({"ok": False, "error": traceback.format_exc()})
    return 0


class Worker:
    """The orchestrator's end of one worker process."""

    def __init__(self, engine, root, logdir):
        self.engine = engine
        self.log_path = os.path.join(logdir, f"worker_{engine}.log")
        self.log = open(self.log_path, "w")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", engine]
        if root:
            cmd += ["--skipblocks-root", root]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1, cwd=HERE)
        self.hello = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            with open(self.log_path) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"{self.engine} worker exited (code {self.proc.poll()}); "
                               f"its stderr ends:\n{tail}")
        return json.loads(line)

    def call(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            if self.proc.poll() is None:
                self.call(cmd="quit")
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        self.log.close()


# -- peak -------------------------------------------------------------------------
def peak_main(root, threads, isa, out_path):
    """Runs in its own process: bench_demos.py's FMA peak (its import pulls in
    torch, which must stay out of the orchestrator's and skipblocks'
    processes), plus n concurrent copies for n threads."""
    import_skipblocks(root)  # bench_demos then finds this skipblocks in sys.modules
    import bench_demos as bd
    peak_runs, peak_error, build = [], None, None
    runs_512, error_512 = [], bd.avx512_peak_skip_reason()
    multi = {}
    with tempfile.TemporaryDirectory(prefix="skipblocks-peak-") as workdir:
        exe, build = bd.build_peak(workdir)
        if exe is None:
            peak_error, build = build, None
            error_512 = error_512 or f"not measured: {peak_error}"
        else:
            got = bd.run_peak(exe)
            peak_runs, peak_error = (got, None) if isinstance(got, list) else ([], got)
            if error_512 is None:
                got = bd.run_peak(exe, width=512)
                runs_512, error_512 = ((got, None) if isinstance(got, list)
                                       else ([], f"not measured: {got}"))
        report = bd.peak_report(peak_runs, build, peak_error, isa, runs_512, error_512)
        width = report["pct_of_peak_basis"]["vector_bits"]
        for n in threads:
            if exe is None or width is None:
                multi[str(n)] = {"gflops": None, "error": peak_error}
            elif n == 1:
                multi["1"] = {"gflops": report["pct_of_peak_basis"]["gflops_1core"],
                              "how": "bench_demos.run_peak: best of 3 x 0.5 s, one process"}
            else:
                multi[str(n)] = concurrent_peak(exe, n, width)
    report["by_threads"] = multi
    with open(out_path, "w") as f:
        json.dump(report, f)
    return 0


def concurrent_peak(exe, n, width, runs=3, seconds=0.5):
    """n copies of fma_peak at once, their per-CPU-second rates summed; the
    best of `runs` tries (a machine cannot do more FMAs than its cores)."""
    sums, walls, each = [], [], []
    for _ in range(runs):
        procs = [subprocess.Popen([exe, str(seconds), str(width)], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for _ in range(n)]
        rates = []
        for p in procs:
            out, _ = p.communicate(timeout=60)
            if p.returncode != 0:
                return {"gflops": None, "error": f"fma_peak exited {p.returncode}"}
            rates.append(tuple(map(float, out.split()[:2])))
        each.append(rates)
        sums.append(sum(r[0] for r in rates))
        walls.append(sum(r[1] for r in rates))
    return {"gflops": max(sums), "runs_gflops_cpu_time": sums, "runs_gflops_wall_time": walls,
            "per_process": each, "vector_bits": width,
            "how": f"{n} fma_peak processes at once, per-CPU-second rates summed; best of "
                   f"{runs} x {seconds} s"}


# -- orchestration ------------------------------------------------------------
def cpu_slug(m, isa):
    """A short name for the CPU, as the existing results files use
    (epyc_zen3_avx2): brand, AMD core generation from the family/model
    numbers, skipblocks' ISA."""
    model = (m.get("cpu_model") or "").lower()
    fam = int(m["cpu_family"]) if (m.get("cpu_family") or "").isdigit() else None
    num = int(m["cpu_model_number"]) if (m.get("cpu_model_number") or "").isdigit() else None
    parts = []
    if "epyc" in model:
        parts.append("epyc")
    elif "ryzen" in model:
        parts.append("ryzen")
    elif "xeon" in model:
        parts.append("xeon")
    elif m.get("vendor"):
        parts.append(m["vendor"].lower().replace("authentic", "").replace("genuine", ""))
    if m.get("vendor") == "AuthenticAMD" and fam is not None:
        if fam == 23:
            parts.append("zen2" if num is not None and num >= 0x30 else "zen")
        elif fam == 25:
            parts.append("zen4" if num is not None and (0x10 <= num <= 0x1f or num >= 0x60)
                         else "zen3")
        elif fam == 26:
            parts.append("zen5")
    parts.append(isa or "unknown")
    return "_".join(p for p in parts if p) or platform.machine()


def summarize(times_ms):
    return {"median": statistics.median(times_ms), "min": min(times_ms),
            "max": max(times_ms), "n": len(times_ms)}


def parity(a, b):
    """Max |a - b| over max |b| (b = torch's output)."""
    if a.shape != b.shape:
        return {"max_abs": None, "rel": None, "error": f"shape {a.shape} vs torch {b.shape}"}
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    scale = float(np.max(np.abs(b)))
    return {"max_abs": diff, "rel": diff / scale if scale else None, "max_abs_torch": scale,
            # what the 1e-4 rule is applied to: absolute up to 1, relative beyond
            "scaled": diff / max(1.0, scale)}


def run_cell(workers, case, threads, workdir, args, log):
    """One case at one thread count: load, warm up, parity, rounds."""
    cell = {"case": case, "threads": threads, "engines": {}, "failed": {}}
    live = []
    for name, w in workers.items():
        got = w.call(cmd="load", case=case, workdir=workdir, threads=threads)
        if not got["ok"]:
            cell["failed"][name] = got["error"][-1500:]
            log(f"    {name}: load failed: {got['error'].strip().splitlines()[-1]}")
            continue
        cell["engines"][name] = {"settings": got["settings"]}
        live.append(name)
    for name in list(live):
        w = workers[name]
        got = w.call(cmd="warmup", min_runs=args.warmup, min_seconds=0.2 * args.batch_seconds
                     / 0.5, max_runs=50)
        if not got["ok"]:
            cell["failed"][name] = got["error"][-1500:]
            live.remove(name)
            continue
        warm = got["times"]
        est = statistics.median(warm[1:]) if len(warm) > 1 else warm[0]
        runs = max(1, min(args.max_batch, int(round(args.batch_seconds / est))))
        out = os.path.join(workdir, f"out_{name}.npy")
        got_out = w.call(cmd="output", case=case, workdir=workdir, path=out)
        if not got_out["ok"]:
            cell["failed"][name] = got_out["error"][-1500:]
            live.remove(name)
            continue
        cell["engines"][name].update({"warmup_ms": [t * 1e3 for t in warm], "batch_runs": runs,
                                      "output_path": out, "rounds": []})
    # parity against torch
    if "torch" in live:
        ref_out = np.load(cell["engines"]["torch"]["output_path"])
        cell["output_shape"] = list(ref_out.shape)
        for name in live:
            if name != "torch":
                cell["engines"][name]["parity"] = parity(
                    np.load(cell["engines"][name]["output_path"]), ref_out)
    for name in live:
        os.remove(cell["engines"][name].pop("output_path"))
    # the rounds
    for r in range(args.rounds):
        k = r % len(live) if live else 0
        order = live[k:] + live[:k]
        for pos, name in enumerate(order):
            time.sleep(args.pause)
            got = workers[name].call(cmd="time", runs=cell["engines"][name]["batch_runs"])
            if not got["ok"]:
                cell["failed"][name] = got["error"][-1500:]
                continue
            ms = [t * 1e3 for t in got["times"]]
            cell["engines"][name]["rounds"].append({"round": r, "position": pos, "times_ms": ms,
                                                    "median_ms": statistics.median(ms)})
    for name in live:
        e = cell["engines"][name]
        if e["rounds"]:
            e["round_median_ms"] = summarize([x["median_ms"] for x in e["rounds"]])
            e["median_ms"] = e["round_median_ms"]["median"]
    sb = cell["engines"].get("skipblocks", {}).get("median_ms")
    cell["ratio"] = {n: (cell["engines"][n]["median_ms"] / sb
                         if sb and cell["engines"][n].get("median_ms") else None)
                     for n in ENGINES if n != "skipblocks" and n in cell["engines"]}
    errs = [cell["engines"][n].get("parity", {}).get("scaled") for n in live if n != "torch"]
    # NaN-aware: max() would skip a NaN after the first element
    finite = bool(errs) and all(e is not None and math.isfinite(e) for e in errs)
    cell["max_parity_error"] = max(errs) if finite else (
        None if not errs or None in errs else float("nan"))
    cell["counts"] = (not cell["failed"] and len(live) == len(workers) and finite
                      and cell["max_parity_error"] <= PARITY_TOL)
    return cell


# -- output ---------------------------------------------------------------------
def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}"


def fmt_err(v):
    return "-" if v is None else f"{v:.1e}"


def format_tables(cells, meta):
    lines = []
    for n in meta["threads"]:
        rows, rows2 = [], []
        for c in (c for c in cells if c["threads"] == n):
            e = c["engines"]
            sb = e.get("skipblocks", {})
            flops = meta["cases"][c["case"]]["flops"]
            pct = None
            peak = (meta["peak"]["by_threads"].get(str(n)) or {}).get("gflops")
            if sb.get("median_ms") and flops and peak:
                pct = 100.0 * flops / (sb["median_ms"] * 1e6) / peak
            rows.append([
                c["case"] + ("" if c["counts"] else " *"),
                "x".join(map(str, meta["cases"][c["case"]]["input_shape"])),
                "-" if not sb.get("median_ms") else f"{sb['median_ms']:.2f}",
                fmt_ratio(c["ratio"].get("torch")), fmt_ratio(c["ratio"].get("onnxruntime")),
                fmt_ratio(c["ratio"].get("openvino")),
                f"{flops / 1e9:.2f}" if flops else "-",
                "-" if pct is None else f"{pct:.0f} %",
                fmt_err(c["max_parity_error"])])
            rows2.append([c["case"]] + [
                "-" if not e.get(k, {}).get("median_ms") else f"{e[k]['median_ms']:.2f}"
                for k in ENGINES] + [
                "-" if k not in e or "parity" not in e[k] else
                f"{fmt_err(e[k]['parity']['max_abs'])} ({fmt_err(e[k]['parity']['rel'])})"
                for k in ("skipblocks", "onnxruntime", "openvino")])
            if c["failed"]:
                rows2[-1][0] += "  [failed: " + ", ".join(c["failed"]) + "]"
        peak = (meta["peak"]["by_threads"].get(str(n)) or {}).get("gflops")
        lines.append(f"{n} thread{'s' if n > 1 else ''} (FMA peak {peak:.1f} GFLOP/s)"
                     if peak else f"{n} thread(s) (no FMA peak measured)")
        lines += format_rows(["case", "input", "sb ms", "torch", "ORT", "OpenVINO", "GFLOP",
                              "sb % peak", "max err"], rows, right=set(range(2, 9)))
        lines.append("")
        lines += format_rows(["case"] + [f"{SHORT[k]} ms" for k in ENGINES] +
                             ["err sb (rel)", "err ORT (rel)", "err OV (rel)"], rows2,
                             right=set(range(1, 8)))
        lines.append("")
    lines += [
        "sb ms: skipblocks' median over rounds of its per-round median; torch / ORT / OpenVINO: "
        "engine time / skipblocks time (below 1: skipblocks slower).",
        "GFLOP: 2 x multiply-adds of convolutions (transposed too) and linear layers per forward; "
        "sb % peak: skipblocks' GFLOP/s over the FMA peak measured at that thread count.",
        f"max err: the largest max |engine - torch| / max(1, max |torch output|) over "
        f"skipblocks, ORT and OpenVINO. '*': does not count (an error > {PARITY_TOL:g}, or an "
        "engine failed).",
    ]
    return "\n".join(lines)


def format_header(meta):
    v = meta["versions"]
    sbv = v.get("skipblocks", {})
    p = meta["peak"]
    peaks = "; ".join(f"{n} thread(s) {d['gflops']:.1f} GFLOP/s" if d.get("gflops") else
                      f"{n} thread(s) not measured ({d.get('error')})"
                      for n, d in p["by_threads"].items())
    basis = p.get("pct_of_peak_basis") or {}
    eng = ", ".join(f"{k} {v[k].get(k)}" for k in ("torch", "onnxruntime", "openvino")
                    if k in v)
    lines = [
        f"machine:   {machine_line(meta['machine_info'])}",
        f"software:  skipblocks {sbv.get('skipblocks')} (ISA in use: {sbv.get('isa')}; "
        f"available: {', '.join(sbv.get('isas', []))}), {eng}, numpy {np.__version__}, "
        f"python {platform.python_version()}",
        f"build:     {build_line(sbv['build']) if 'build' in sbv else '?'}",
    ] + ([f"source:    {meta['skipblocks_source']}"] if meta.get("skipblocks_source") else []) + [
        f"peak:      {peaks} ({basis.get('vector_bits')}-bit FMAs, fma_peak.c, per CPU "
        "second)",
        f"export:    torch.onnx.export(dynamo=False) (TorchScript exporter), opset {ONNX_OPSET}, "
        "static shapes, do_constant_folding=True",
        "settings:  ORT intra_op=n inter_op=1 ORT_ENABLE_ALL sequential; OpenVINO "
        "INFERENCE_NUM_THREADS=n NUM_STREAMS=1 LATENCY f32; torch set_num_threads(n) "
        "inference_mode; skipblocks set_num_threads(n)",
        f"method:    {meta['rounds']} rounds, engine order rotated per round, batches of "
        f"~{meta['batch_seconds']} s per engine after >= {meta['warmup']} warm-up runs, "
        f"{meta['pause']} s pause between batches",
        f"date:      {meta['date']}",
        f"load:      {load_line(*meta['load_average_1min'])}",
        f"command:   {meta['command']}   (in {meta['cwd']})",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=list(ENGINES) + ["peak"], help=argparse.SUPPRESS)
    parser.add_argument("--peak-out", help=argparse.SUPPRESS)
    parser.add_argument("--isa", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts (default: 1 2)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds per case (default 5; 2 with --quick)")
    parser.add_argument("--cases", nargs="+", default=None,
                        help="name prefixes or globs (" + ", ".join(CASES) + ")")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: cases {', '.join(QUICK_CASES)} unless --cases, "
                             "2 rounds, 0.1 s batches; writes files only with --out")
    parser.add_argument("--batch-seconds", type=float, default=None,
                        help="target length of one engine's timed batch (default 0.5; 0.1 "
                             "with --quick)")
    parser.add_argument("--max-batch", type=int, default=200, help="most runs in one batch")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs at least (2)")
    parser.add_argument("--pause", type=float, default=0.2,
                        help="seconds between two engines' batches (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="path prefix of the .txt and .json (default "
                             "benchmarks/results/engines_<cpu>)")
    parser.add_argument("--workdir", default=None,
                        help="where inputs, weights and ONNX files go (default: a temporary "
                             "directory, removed at the end)")
    parser.add_argument("--skipblocks-root", default=None,
                        help="measure the skipblocks package in this directory")
    parser.add_argument("--skipblocks-source", default=None,
                        help="free text recorded in the header and JSON: where the measured "
                             "skipblocks build came from (e.g. with --skipblocks-root)")
    args = parser.parse_args(argv)

    if args.worker == "peak":
        return peak_main(args.skipblocks_root, args.threads, args.isa, args.peak_out)
    if args.worker:
        return worker_main(args.worker, args.skipblocks_root)

    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    args.rounds = rounds
    if args.batch_seconds is None:
        args.batch_seconds = 0.1 if args.quick else 0.5
    if rounds < 1 or args.warmup < 1 or any(n < 1 for n in args.threads):
        parser.error("--rounds, --warmup and --threads must be >= 1")
    patterns = args.cases or (list(QUICK_CASES) if args.quick else None)
    cases = select_cases(patterns)
    if not cases:
        parser.error(f"no case matches {patterns}")

    load_before = load_average()
    tmp, workdir = open_workdir(args.workdir, "skipblocks-engines-")
    if args.skipblocks_root:
        args.skipblocks_root = os.path.abspath(args.skipblocks_root)
    workers = {}
    try:
        for name in ENGINES:
            log(f"starting the {name} worker ...")
            w = Worker(name, args.skipblocks_root, workdir)
            if not w.hello["ok"]:
                raise RuntimeError(f"{name} worker failed to start:\n{w.hello['error']}")
            workers[name] = w
        versions = {n: w.hello["versions"] for n, w in workers.items()}
        torch_in = {n: w.hello["torch_in_sys_modules"] for n, w in workers.items()}
        isa = versions["skipblocks"]["isa"]

        log("FMA peak ...")
        peak_path = os.path.join(workdir, "peak.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "peak", "--isa", isa,
               "--peak-out", peak_path, "--threads"] + [str(n) for n in args.threads]
        if args.skipblocks_root:
            cmd += ["--skipblocks-root", args.skipblocks_root]
        done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"peak process failed:\n{done.stderr[-3000:]}")
        with open(peak_path) as f:
            peak = json.load(f)

        case_info = {}
        for case in cases:
            log(f"preparing {case} (input, weights, ONNX export) ...")
            got = workers["torch"].call(cmd="prepare", case=case, workdir=workdir,
                                        seed=args.seed)
            if not got["ok"]:
                raise RuntimeError(f"preparing {case} failed:\n{got['error']}")
            case_info[case] = got["info"]
            if not got["info"]["export"]["ok"]:
                log(f"  ONNX export failed: {got['info']['export']['error'][:300]}")

        cells = []
        for n in args.threads:
            for case in cases:
                log(f"  {case} at {n} thread(s) ...")
                cell = run_cell(workers, case, n, workdir, args, log)
                cells.append(cell)
                log("    " + ", ".join(
                    f"{SHORT[k]} {e['median_ms']:.2f} ms" for k, e in cell["engines"].items()
                    if e.get("median_ms")) + f"; max err {fmt_err(cell['max_parity_error'])}")
        # skipblocks' worker checked after every command; this is the record.
        check = workers["skipblocks"].call(cmd="check")
        torch_in["skipblocks_at_end"] = check.get("torch_in_sys_modules") if check.get(
            "ok") else None
    finally:
        for w in workers.values():
            w.close()
        if tmp is not None:
            tmp.cleanup()

    m = machine_info()
    slug = cpu_slug(m, isa)
    meta = {
        "date": now_utc(), "command": command_line(), "cwd": os.getcwd(),
        "load_average_1min": [load_before, load_average()],
        "machine_info": m, "cpu_model": m["cpu_model"], "slug": slug,
        "skipblocks_root": args.skipblocks_root or "this checkout (common.import_skipblocks)",
        "skipblocks_source": args.skipblocks_source,
        "versions": versions, "python": platform.python_version(),
        "torch_in_sys_modules": torch_in,
        "skipblocks_worker_torch_check": "assert 'torch' not in sys.modules after import and "
                                         "after every command",
        "export": dict(EXPORT_OPTIONS),
        "engine_settings": {
            "skipblocks": "skipblocks.set_num_threads(n); model.eval(); model(x)",
            "torch": "torch.set_num_threads(n); model.eval(); torch.inference_mode(); "
                     "model(torch.from_numpy(x))",
            "onnxruntime": {"providers": ["CPUExecutionProvider"], "intra_op_num_threads": "n",
                            "inter_op_num_threads": 1,
                            "graph_optimization_level": "ORT_ENABLE_ALL",
                            "execution_mode": "ORT_SEQUENTIAL"},
            "openvino": {"device": "CPU", "INFERENCE_NUM_THREADS": "n", "NUM_STREAMS": 1,
                         "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                         "infer": "InferRequest.infer({0: x}, share_inputs=True)"},
        },
        "peak": peak, "threads": args.threads, "rounds": rounds,
        "batch_seconds": args.batch_seconds, "max_batch": args.max_batch,
        "warmup": args.warmup, "pause": args.pause, "seed": args.seed, "quick": args.quick,
        "parity_tolerance": PARITY_TOL, "cases": case_info,
        "note": "ratio = engine median / skipblocks median (below 1: skipblocks slower). "
                "Times in ms; an engine's median is the median over rounds of its per-round "
                "batch median. pct_of_peak = flops / skipblocks time / "
                "peak.by_threads[n].gflops. A cell counts when every engine loaded and every "
                "error against torch, max |engine - torch| / max(1, max |torch|), is <= "
                f"{PARITY_TOL:g}.",
    }
    for c in cells:
        flops = case_info[c["case"]]["flops"]
        sb = c["engines"].get("skipblocks", {}).get("median_ms")
        pk = (peak["by_threads"].get(str(c["threads"])) or {}).get("gflops")
        c["flops"] = flops
        c["skipblocks_gflops"] = flops / (sb * 1e6) if sb else None
        c["skipblocks_pct_of_peak"] = (100.0 * c["skipblocks_gflops"] / pk
                                       if sb and pk else None)
    text = format_header(meta) + "\n\n" + format_tables(cells, meta)
    print(text)
    out = args.out
    if out is None and not args.quick:
        out = os.path.join(RESULTS, f"engines_{slug}")
    if out:
        with open(out + ".txt.tmp", "w") as f:
            f.write(text + "\n")
        os.replace(out + ".txt.tmp", out + ".txt")
        write_json(out + ".json", {"meta": meta, "results": cells})
        log(f"wrote {out}.txt and {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

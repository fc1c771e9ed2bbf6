"""Per-layer parity tables between a torch module and its skipblocks twin.

For notebooks and debugging: instead of one assert on the final output,
:func:`compare` runs both modules on the same input and reports, for every
named submodule, how far skipblocks' output is from torch's -- so the first
layer that drifts is visible at a glance::

    from skipblocks import demos, parity, reference as ref

    theirs = ref.resnet_demo()
    ours = demos.resnet_demo()
    table = parity.compare(theirs, ours, ref.document_input("resnet"), mode="both")
    print(table)            # or just `table` as the last line of a Jupyter cell

How outputs are captured
------------------------
torch side: a forward hook on every module of ``named_modules()``.
skipblocks side: the modules' ``forward`` is temporarily shadowed by an
instance attribute that records the output (removed again in a ``finally``).

skipblocks' blocks normally take fused fast paths (BatchNorm folded into the
convolution, BatchNorm + ReLU applied while the next convolution packs its
input, residual + ReLU in a convolution's epilogue), in which most layers are
never called on their own. So by default (``fused=False``) compare runs the
skipblocks side under ``skipblocks.runtime.unfused()``: every layer is called
in turn, as in the document's torch code, and every layer gets a row. Pass
``fused=True`` to check the fast path itself; then:

* the private entry points the fused paths call instead of ``forward``
  (``_forward``, ``_run``, ``_conv``, whichever a class has) are wrapped too,
  so a layer called through one still gets its row;
* a call with a fused ReLU only (``bn._run(x, relu=True)``) is compared with
  ``relu(torch's output)`` -- what skipblocks computed -- and says so in its
  ``note``;
* a call with any other fusion (a folded BatchNorm, an input transform, a
  residual) computes something torch's layer does not output: its output is
  not compared (its running statistics still are), and the note says so;
* a layer skipblocks never calls on its own has only a torch row, noted "not
  called separately by skipblocks"; its output is covered by its parent's row.

Even unfused, BatchNorm + ReLU may run as one pass (the ReLU-only case above).

A module called several times in one forward (ResidualBlock's shared ``bn``
runs after both convolutions) gets one row per call, ``bn#1``, ``bn#2``, ...;
calls are matched by name and call order.

What compare does to the modules you pass in
--------------------------------------------
* torch module: untouched. Each mode runs on a ``copy.deepcopy`` of it, so
  its train/eval flag, running statistics and hooks stay as they were.
* skipblocks module: with ``copy_weights=True`` (default) torch's
  ``state_dict()`` is loaded into it first, and it **keeps** those weights
  afterwards (that is usually what you want in a notebook). Train mode
  updates BatchNorm running statistics, so the module's state_dict (after the
  optional load) is snapshotted and restored, along with every submodule's
  train/eval flag, when compare returns -- also on error. With ``mode="both"``
  each mode starts from that same state, so the eval rows do not see the
  statistics the train forward produced.

This module imports neither torch nor skipblocks.reference at import time;
only :func:`compare` needs them.
"""
import contextlib
import copy
import html
import inspect
import time

import numpy as np

from .module import Module, _state_changed
from .runtime import unplanned

__all__ = ["compare", "assert_parity", "ParityTable", "hook_forwards"]

# The entry points of skipblocks modules that are wrapped: ``forward`` and the
# private ones the fused paths call instead (DenseLayer._forward,
# BatchNorm2d._run, Conv2d._conv). Names a class does not have are skipped,
# so a renamed private method costs rows, never correctness.
_ENTRY_POINTS = ("forward", "_forward", "_run", "_conv")

# Arguments of those entry points that fuse other work into the output, with
# their neutral value. A call with any of them non-neutral computes something
# no single torch layer outputs. ``relu`` alone is handled apart: relu(torch).
_FUSION_ARGS = {"residual": None, "fold": None, "in_scale": None, "in_shift": None,
                "in_relu": False, "apply": True}

_MODES = {"train": ("train",), "eval": ("eval",), "both": ("train", "eval")}

_NOTE_FUSED_RELU = "fused ReLU: compared with relu(torch)"
_NOTE_FUSED = "fused with other work: output not compared"
_NOTE_TORCH_ONLY = "not called separately by skipblocks (fused into its parent)"
_NOTE_OURS_ONLY = "no torch call with this name"


def _call_kind(signature, args, kwargs):
    """"plain", "relu" (the layer followed by a ReLU) or "fused" (see
    _FUSION_ARGS) for one call. Arguments are bound by signature so a change
    in argument order does not silently break the detection."""
    if signature is None:
        return "plain"
    try:
        arguments = signature.bind(*args, **kwargs).arguments
    except TypeError:
        return "plain"
    for name, neutral in _FUSION_ARGS.items():
        if name in arguments:
            value = arguments[name]
            if (value is not None) if neutral is None else (bool(value) != neutral):
                return "fused"
    return "relu" if arguments.get("relu", False) else "plain"


@contextlib.contextmanager
def hook_forwards(module, callback):
    """Within the ``with`` block, every call of a named submodule of the
    skipblocks ``module`` (including ``module`` itself, named "") calls
    ``callback(name, submodule, output, seconds, kind)`` after it returns.
    ``seconds`` is the call's wall time, children included; ``kind`` is
    "plain", "relu" (the output went through a fused ReLU) or "fused" (the
    output includes other fused work; see the module docstring).

    Only the outermost entry into a submodule is reported: ``forward`` calling
    the same module's ``_forward`` is one call, not two. The wrappers are
    instance attributes shadowing the class's methods, deleted on exit.
    Networks run layer by layer meanwhile (``runtime.unplanned()``): a
    planned forward would not call the blocks it runs.
    """
    if not isinstance(module, Module):
        raise TypeError(f"expected a skipblocks Module, got {type(module).__name__}")
    installed = []
    try:
        for name, sub in module.named_modules():
            depth = [0]  # per module, shared by its wrapped entry points
            for entry in _ENTRY_POINTS:
                original = getattr(type(sub), entry, None)
                if original is None or entry in sub.__dict__:
                    continue
                bound = getattr(sub, entry)
                wrapper = _make_wrapper(name, sub, bound, depth, callback)
                # A plain instance attribute shadows the class's method for
                # this module only; other instances stay unwrapped.
                object.__setattr__(sub, entry, wrapper)
                installed.append((sub, entry))
        _state_changed()  # (instance forwards: cached plans step aside)
        with unplanned():
            yield module
    finally:
        for sub, entry in installed:
            sub.__dict__.pop(entry, None)
        _state_changed()


def _make_wrapper(name, sub, bound, depth, callback):
    try:
        signature = inspect.signature(bound)  # once: wrappers sit in timed code
    except (TypeError, ValueError):
        signature = None

    def wrapper(*args, **kwargs):
        if depth[0]:
            return bound(*args, **kwargs)
        kind = _call_kind(signature, args, kwargs)
        depth[0] += 1
        try:
            start = time.perf_counter()
            result = bound(*args, **kwargs)
            seconds = time.perf_counter() - start
        finally:
            depth[0] -= 1
        callback(name, sub, result, seconds, kind)
        return result

    return wrapper


def _stats_of(module, to_array):
    """A copy of (running_mean, running_var) of a BatchNorm-like module, else None."""
    mean = getattr(module, "running_mean", None)
    var = getattr(module, "running_var", None)
    if mean is None or var is None:
        return None
    return to_array(mean), to_array(var)


def _display_names(calls):
    """[(name, ...)] in call order -> ["name" or "name#k"]: a suffix only for
    modules called more than once."""
    totals = {}
    for call in calls:
        totals[call[0]] = totals.get(call[0], 0) + 1
    seen = {}
    names = []
    for call in calls:
        seen[call[0]] = seen.get(call[0], 0) + 1
        names.append(call[0] if totals[call[0]] == 1 else f"{call[0]}#{seen[call[0]]}")
    return names


def _label(name):
    return name if name else "(model)"


class ParityTable:
    """The result of :func:`compare`.

    ``rows``: one dict per layer call, in torch's call-completion order
    (a layer before the block containing it), with keys ``mode``, ``name``
    (the ``named_modules()`` name, "#k" for the k-th call of a module called
    more than once, "" for the whole model, shown as "(model)"), ``type``
    (torch's class name), ``shape``, ``max_abs_diff``, ``parity_error``
    (max|ours - theirs| / max(1, max|theirs|)), ``running_mean_error`` and
    ``running_var_error`` (parity errors of the BatchNorm statistics right
    after that call, train mode only; None elsewhere) and ``note``.
    Numbers are None when a side is missing.

    ``worst``: the largest parity error of any output or statistic (0.0 for an
    empty table); ``worst_row``: its row. ``tol`` only decides which rows the
    text/HTML renderings flag.
    """

    COLUMNS = [("mode", "mode"), ("name", "layer"), ("type", "type"), ("shape", "output shape"),
               ("max_abs_diff", "max|diff|"), ("parity_error", "parity err"),
               ("running_mean_error", "mean err"), ("running_var_error", "var err"),
               ("note", "note")]

    def __init__(self, rows, tol=1e-4):
        self.rows = list(rows)
        self.tol = tol

    @staticmethod
    def _row_worst(row):
        values = [row[k] for k in ("parity_error", "running_mean_error", "running_var_error")
                  if row[k] is not None]
        return max(values) if values else None

    @property
    def worst_row(self):
        """The row with the largest output or statistics error (the
        earliest on ties: the first layer to drift); None for a table
        without numbers."""
        scored = [(self._row_worst(r), i) for i, r in enumerate(self.rows)]
        scored = [(s, i) for s, i in scored if s is not None]
        if not scored:
            return None
        # max by error; the earliest row wins ties (the first layer to drift).
        return self.rows[max(scored, key=lambda si: (si[0], -si[1]))[1]]

    @property
    def worst(self):
        """The largest parity error of any output or statistic; 0.0 for an
        empty table."""
        row = self.worst_row
        return 0.0 if row is None else self._row_worst(row)

    def over(self, tol=None):
        """The rows whose output or statistics error exceeds ``tol`` (default self.tol)."""
        tol = self.tol if tol is None else tol
        return [r for r in self.rows if (self._row_worst(r) or 0.0) > tol]

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    # -- rendering ------------------------------------------------------
    @staticmethod
    def _cell(key, value):
        if value is None:
            return "-"
        if key == "shape":
            return "x".join(str(d) for d in value) if value else "()"
        if key == "name":
            return _label(value)
        if isinstance(value, float):
            return f"{value:.2e}"
        return str(value)

    def _cells(self):
        return [[self._cell(k, r[k]) for k, _ in self.COLUMNS] for r in self.rows]

    def _summary(self):
        flagged = len(self.over())
        return (f"{len(self.rows)} rows; worst parity error {self.worst:.2e}; "
                f"{flagged} row(s) above {self.tol:.0e}. "
                "parity err = max|ours-torch| / max(1, max|torch|)")

    def __str__(self):
        headers = [h for _, h in self.COLUMNS]
        cells = self._cells()
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
        numeric = {i for i, (k, _) in enumerate(self.COLUMNS)
                   if k in ("max_abs_diff", "parity_error", "running_mean_error",
                            "running_var_error")}

        def line(values, flag=" "):
            parts = [v.rjust(w) if i in numeric else v.ljust(w)
                     for i, (v, w) in enumerate(zip(values, widths))]
            return (flag + " " + "  ".join(parts)).rstrip()

        over = {id(r) for r in self.over()}
        out = [line(headers), line(["-" * w for w in widths])]
        out += [line(c, "!" if id(r) in over else " ") for c, r in zip(cells, self.rows)]
        out.append(self._summary())
        return "\n".join(out)

    def __repr__(self):
        return f"<ParityTable {len(self.rows)} rows, worst {self.worst:.2e}>"

    def to_markdown(self):
        """The table as GitHub Markdown, a summary line after it."""
        headers = [h.replace("|", "\\|") for _, h in self.COLUMNS]
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---" for _ in headers) + "|"]
        for cells in self._cells():
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(out) + "\n\n" + self._summary() + "\n"

    def _repr_html_(self):
        over = {id(r) for r in self.over()}
        head = "".join(f"<th>{html.escape(h)}</th>" for _, h in self.COLUMNS)
        body = []
        for cells, row in zip(self._cells(), self.rows):
            style = ' style="background-color:#fdd"' if id(row) in over else ""
            tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            body.append(f"<tr{style}>{tds}</tr>")
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
                f"<p>{html.escape(self._summary())}</p>")


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "skipblocks.parity.compare needs torch (it runs the torch module as the "
            "reference); install it, e.g. `pip install torch` or "
            "`pip install skipblocks[test]`") from exc
    return torch


def _input_dtype(torch_module, x, torch):
    """The dtype both modules get their input in: the torch module's (that
    of its first floating parameter or buffer: float64 after ``.double()``),
    since torch raises on a mismatch; for a torch module without any,
    float64 if ``x`` is float64, else float32."""
    for t in list(torch_module.parameters()) + list(torch_module.buffers()):
        if t.is_floating_point():
            return np.float64 if t.dtype == torch.float64 else np.float32
    first = x[0] if isinstance(x, (list, tuple)) and len(x) else x
    dtype = getattr(first, "dtype", None)
    return np.float64 if str(dtype) in ("float64", "torch.float64") else np.float32


def _inputs(x, torch, dtype=np.float32):
    """(numpy input, factory of fresh torch inputs), in ``dtype``. A
    list/tuple of arrays (a DenseLayer's input) is supported; fresh copies
    each time because the document's Dense_Block appends to the list it is
    given and torch's in-place ops may write into a tensor that shares our
    array's memory."""
    def as_np(a):
        if hasattr(a, "detach"):
            a = a.detach().cpu()
            if str(a.dtype) == "torch.bfloat16":
                a = a.float()
            a = a.numpy()
        return np.array(a, dtype=dtype, copy=True)

    if isinstance(x, (list, tuple)):
        arrays = [as_np(a) for a in x]
        return (lambda: [a.copy() for a in arrays],
                lambda: [torch.from_numpy(a.copy()) for a in arrays])
    array = as_np(x)
    return (lambda: array.copy()), (lambda: torch.from_numpy(array.copy()))


def _torch_array(value, torch):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    return None


def _run_torch(torch_module, make_input, training, torch):
    module = copy.deepcopy(torch_module)
    module.train(training)
    calls = []  # (name, type, output array or None, stats or None)

    def make_hook(name):
        def hook(mod, args, output):
            # Copy now: later in-place ops (ReLU(inplace=True)) may overwrite it.
            stats = _stats_of(mod, lambda t: t.detach().cpu().numpy().copy()) \
                if training else None
            calls.append((name, type(mod).__name__, _torch_array(output, torch), stats))
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in module.named_modules()]
    try:
        with torch.no_grad():
            module(make_input())
    finally:
        for h in handles:
            h.remove()
    return calls


def _unfused():
    """skipblocks.runtime.unfused(), or nothing for a build without fused paths."""
    try:
        from .runtime import unfused
    except ImportError:
        return contextlib.nullcontext()
    return unfused()


def _run_ours(sb_module, make_input, training, fused):
    sb_module.train(training)
    calls = []  # (name, type, output array or None, stats or None, kind)

    def record(name, mod, result, seconds, kind):
        output = np.array(result, dtype=np.float64, copy=True) if isinstance(
            result, np.ndarray) else None
        stats = _stats_of(mod, lambda a: np.array(a, copy=True)) if training else None
        calls.append((name, type(mod).__name__, output, stats, kind))

    with hook_forwards(sb_module, record), \
            (contextlib.nullcontext() if fused else _unfused()):
        sb_module(make_input())
    return calls


def _parity(ours, theirs):
    """(max abs diff, parity error, note) of two arrays; inf on shape mismatch."""
    from .reference import parity_error
    if ours.shape != theirs.shape:
        return (float("inf"), float("inf"),
                f"shape {tuple(ours.shape)} vs torch {tuple(theirs.shape)}")
    err = parity_error(ours, theirs)
    a = np.asarray(ours, np.float64)
    b = np.asarray(theirs, np.float64)
    if a.size == 0:
        return 0.0, err, ""
    # Same conventions as parity_error: NaN vs NaN (or equal infinities) is
    # no difference; any other non-finite mismatch is an infinite one.
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    return float(diff.max()), err, ""


def _rows_for_mode(mode, torch_calls, our_calls):
    from .reference import parity_error
    torch_names = _display_names(torch_calls)
    our_names = _display_names(our_calls)
    ours_by_name = dict(zip(our_names, our_calls))
    rows = []
    for display, (_, type_name, theirs, t_stats) in zip(torch_names, torch_calls):
        row = {"mode": mode, "name": display, "type": type_name,
               "shape": None if theirs is None else tuple(theirs.shape),
               "max_abs_diff": None, "parity_error": None,
               "running_mean_error": None, "running_var_error": None, "note": ""}
        rows.append(row)
        mine = ours_by_name.pop(display, None)
        if mine is None:
            row["note"] = _NOTE_TORCH_ONLY
            continue
        _, _, output, o_stats, kind = mine
        notes = []
        if kind == "fused":
            notes.append(_NOTE_FUSED)
        elif theirs is None or output is None:
            notes.append("non-array output, not compared")
        else:
            reference = np.maximum(theirs, 0) if kind == "relu" else theirs
            row["max_abs_diff"], row["parity_error"], note = _parity(output, reference)
            if kind == "relu":
                notes.append(_NOTE_FUSED_RELU)
            if note:
                notes.append(note)
        if t_stats is not None and o_stats is not None:
            row["running_mean_error"] = parity_error(o_stats[0], t_stats[0])
            row["running_var_error"] = parity_error(o_stats[1], t_stats[1])
        row["note"] = "; ".join(notes)
    for display, (_, type_name, output, _, _) in ours_by_name.items():
        rows.append({"mode": mode, "name": display, "type": type_name,
                     "shape": None if output is None else tuple(output.shape),
                     "max_abs_diff": None, "parity_error": None,
                     "running_mean_error": None, "running_var_error": None,
                     "note": _NOTE_OURS_ONLY})
    return rows


def compare(torch_module, sb_module, x, mode="eval", copy_weights=True, fused=False,
            tol=1e-4):
    """Run ``torch_module`` and ``sb_module`` on the input ``x`` (a NumPy array
    or torch tensor, or a list of them) and return a :class:`ParityTable` with
    one row per layer call, matched by ``named_modules()`` name.

    Both get ``x`` in the torch module's dtype: float32, or float64 after
    ``torch_module.double()`` (then call ``sb_module.double()`` too, or the
    skipblocks side computes in float32, its own dtype; with
    ``copy_weights`` torch's weights are cast to it).

    ``mode``: "train", "eval" or "both" (train rows, then eval rows, each from
    the same starting state). ``copy_weights``: load
    ``torch_module.state_dict()`` into ``sb_module`` first (it keeps them).
    ``fused``: run skipblocks' fused fast paths instead of calling every
    layer in turn (fewer rows; see the module docstring). ``tol``: which rows
    the table flags; it does not raise.

    Neither module's state is changed by the forwards themselves: see the
    module docstring for the exact contract.
    """
    torch = _import_torch()
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
    if not isinstance(sb_module, Module):
        raise TypeError(f"sb_module must be a skipblocks Module, got {type(sb_module).__name__}")
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(f"torch_module must be a torch.nn.Module, got "
                        f"{type(torch_module).__name__}")
    if copy_weights:
        sb_module.load_state_dict(torch_module.state_dict())
    make_ours, make_theirs = _inputs(x, torch, _input_dtype(torch_module, x, torch))
    snapshot = {k: np.array(v, copy=True) for k, v in sb_module.state_dict().items()}
    flags = [(m, m.training) for _, m in sb_module.named_modules()]
    rows = []
    try:
        for i, m in enumerate(_MODES[mode]):
            if i:
                sb_module.load_state_dict(snapshot)
            training = m == "train"
            torch_calls = _run_torch(torch_module, make_theirs, training, torch)
            our_calls = _run_ours(sb_module, make_ours, training, fused)
            rows += _rows_for_mode(m, torch_calls, our_calls)
    finally:
        sb_module.load_state_dict(snapshot)
        for m, flag in flags:
            object.__setattr__(m, "training", flag)
        _state_changed()
    return ParityTable(rows, tol=tol)


def assert_parity(torch_module, sb_module, x, tol=None, mode="eval"):
    """:func:`compare`, then raise AssertionError when a row's output or
    BatchNorm-statistics error exceeds ``tol`` (default 1e-4, the
    document's blocks' bound; NaN or a shape mismatch always fails). The
    message is the whole parity table, its failing rows flagged with "!",
    preceded by the first failing layer. Returns the table when every row
    passes, for a test or a notebook cell::

        parity.assert_parity(torch_model, sb_model, x, mode="both")

    ``mode``: "train", "eval" or "both", as in compare; torch's weights are
    copied into ``sb_module`` first (it keeps them), and every layer is
    called in turn, so every layer gets its row.
    """
    table = compare(torch_module, sb_module, x, mode=mode, tol=1e-4 if tol is None else tol)
    failing = table.over()
    if failing:
        first = failing[0]
        raise AssertionError(
            f"parity: {len(failing)} of {len(table)} rows above {table.tol:.0e}; the first is "
            f"{_label(first['name'])} ({first['type']}, {first['mode']}) at "
            f"{ParityTable._row_worst(first):.2e}\n{table}")
    return table

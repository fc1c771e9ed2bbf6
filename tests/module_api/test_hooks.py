"""Forward hooks (skipblocks.hooks) against torch's: the same hook programs
give the same calls, arguments and results; a hook on a layer inside a
fused block sees that layer's own call and output, in torch's order; only
the hooked subtree leaves its fast path; handles remove; functional calls
have no hooks."""

import copy
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import skipblocks as sb
from skipblocks import demos, models
from skipblocks import reference as ref
from skipblocks.reference import networks as ref_networks
from skipblocks.reference import systems as ref_systems

from helpers import (load_from_torch, network_outputs, randn, randomize_, randomize_network_,
                     to_numpy, to_torch, without_dropout)
from tolerances import INNER_LAYER_FACTOR, NETWORK_TOLERANCES, tolerance


# ---------------------------------------------------------------------------
# torch's semantics, one hook program run on both libraries
# ---------------------------------------------------------------------------

def _linear_pair():
    theirs = nn.Linear(3, 2)
    ours = sb.Linear(3, 2)
    load_from_torch(ours, theirs)
    return theirs, ours


def _run_program(lib, module, program, x):
    """Registers the hooks ``program(lib, module, events)`` makes, calls
    the module on ``x`` and returns (events, output or the exception's
    type and message)."""
    events = []
    program(lib, module, events)
    try:
        out = ("ok", np.round(to_numpy(module(x)), 5).tolist())
    except Exception as error:  # the outcome is compared, whatever it is
        out = ("raised", type(error).__name__, str(error).split(": ", 1)[-1][:60])
    return events, out


def _shape(value):
    if isinstance(value, tuple):
        return tuple(_shape(v) for v in value)
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return tuple(value.shape) if hasattr(value, "shape") else value


def _order(lib, m, events):
    m.register_forward_pre_hook(lambda mod, args: events.append("pre1"))
    m.register_forward_pre_hook(lambda mod, args: events.append("pre0"), prepend=True)
    m.register_forward_hook(lambda mod, args, out: events.append("post1"))
    m.register_forward_hook(lambda mod, args, out: events.append("post0"), prepend=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: events.append(("kw", kwargs)),
                            with_kwargs=True)


def _replace_input(lib, m, events):
    # a lone value is wrapped in a tuple
    m.register_forward_pre_hook(lambda mod, args: args[0] * 2)
    m.register_forward_pre_hook(lambda mod, args: events.append(_shape(args)))


def _replace_input_tuple(lib, m, events):
    m.register_forward_pre_hook(lambda mod, args: (args[0] + 1,))


def _replace_args_and_kwargs(lib, m, events):
    m.register_forward_pre_hook(lambda mod, args, kwargs: ((args[0] - 1,), {}),
                                with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: events.append(_shape((args, kwargs))),
                            with_kwargs=True)


def _bad_pre_hook_result(lib, m, events):
    m.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True)


def _replace_output(lib, m, events):
    m.register_forward_hook(lambda mod, args, out: out * 0 + 7)
    m.register_forward_hook(lambda mod, args, out: events.append(float(out.sum())))


def _always_call_on_error(lib, m, events):
    # forward raises (wrong feature count): only the always_call hook runs,
    # with output None, and the forward's error propagates
    m.register_forward_hook(lambda mod, args, out: events.append("plain"))
    m.register_forward_hook(lambda mod, args, out: events.append(("always", out)),
                            always_call=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: events.append(("always-kw", out)),
                            always_call=True, with_kwargs=True)


def _always_call_after_hook_error(lib, m, events):
    def boom(mod, args, out):
        events.append("boom")
        raise KeyError("from the hook")
    m.register_forward_hook(lambda mod, args, out: events.append("first"), always_call=True)
    m.register_forward_hook(boom)
    m.register_forward_hook(lambda mod, args, out: events.append(("late", _shape(out))),
                            always_call=True)


def _pre_hook_error(lib, m, events):
    def boom(mod, args):
        raise ValueError("pre")
    m.register_forward_pre_hook(boom)
    m.register_forward_hook(lambda mod, args, out: events.append(("always", out)),
                            always_call=True)


def _removed(lib, m, events):
    handle = m.register_forward_hook(lambda mod, args, out: events.append("removed"))
    kept = m.register_forward_pre_hook(lambda mod, args: events.append("kept"))
    handle.remove()
    handle.remove()  # a second remove does nothing
    with m.register_forward_hook(lambda mod, args, out: events.append("scoped")):
        pass
    events.append(kept.id != handle.id)


PROGRAMS = {
    "order-and-prepend": (_order, (1, 3)),
    "pre-hook-replaces-input": (_replace_input, (1, 3)),
    "pre-hook-returns-tuple": (_replace_input_tuple, (1, 3)),
    "pre-hook-with-kwargs": (_replace_args_and_kwargs, (1, 3)),
    "pre-hook-bad-result": (_bad_pre_hook_result, (1, 3)),
    "hook-replaces-output": (_replace_output, (1, 3)),
    "always-call-on-forward-error": (_always_call_on_error, (1, 4)),
    "always-call-after-hook-error": (_always_call_after_hook_error, (1, 3)),
    "always-call-after-pre-hook-error": (_pre_hook_error, (1, 3)),
    "removed-handles": (_removed, (1, 3)),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_hook_program_behaves_as_in_torch(name, rng):
    program, shape = PROGRAMS[name]
    theirs, ours = _linear_pair()
    x = randn(rng, *shape)
    with warnings.catch_warnings(record=True) as torch_warnings, torch.no_grad():
        warnings.simplefilter("always")
        expected = _run_program(torch, theirs, program, to_torch(x))
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        got = _run_program(sb, ours, program, x)
    assert got[0] == expected[0], name
    assert got[1][:2] == expected[1][:2], name
    if got[1][0] == "ok":
        assert got[1] == expected[1], name
    elif name in ("pre-hook-bad-result", "always-call-after-hook-error",
                  "always-call-after-pre-hook-error"):
        assert got[1] == expected[1], name  # the hook's own error, torch's wording
    assert [str(w.message) for w in our_warnings] == [str(w.message) for w in torch_warnings]


def test_hook_sees_the_module_and_the_call_arguments(rng):
    m = sb.Conv2d(2, 3, 3)
    seen = []
    m.register_forward_pre_hook(lambda mod, args, kwargs: seen.append((mod, args, kwargs)),
                                with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: seen.append((mod, args, out)))
    x = randn(rng, 1, 2, 5, 5)
    out = m(x)
    assert seen[0][0] is m and seen[0][1][0] is x and seen[0][2] == {}
    assert seen[1][0] is m and seen[1][2] is out


def test_forward_called_directly_and_functional_calls_run_no_hook(rng):
    conv = sb.Conv2d(2, 3, 3)
    calls = []
    conv.register_forward_hook(lambda *a: calls.append(1))
    conv.register_forward_pre_hook(lambda *a: calls.append(0))
    x = randn(rng, 1, 2, 5, 5)
    conv.forward(x)
    sb.functional.conv2d(x, conv.weight, conv.bias)
    assert calls == []
    conv(x)
    assert calls == [0, 1]


def test_a_non_callable_hook_is_refused():
    with pytest.raises(TypeError, match="Linear: the forward hook must be callable, got int"):
        sb.Linear(2, 2).register_forward_hook(3)
    with pytest.raises(TypeError, match="forward pre-hook must be callable"):
        sb.Linear(2, 2).register_forward_pre_hook(None)


def test_options_are_keyword_only_as_in_torch():
    m = sb.Linear(2, 2)
    with pytest.raises(TypeError):
        m.register_forward_hook(lambda *a: None, True)
    with pytest.raises(TypeError):
        m.register_forward_pre_hook(lambda *a: None, True)


def test_handle_does_not_keep_a_module_alive():
    import gc
    import weakref
    m = sb.Linear(2, 2)
    handle = m.register_forward_hook(lambda *a: None)
    alive = weakref.ref(m)
    del m
    gc.collect()
    assert alive() is None
    handle.remove()  # the dicts are gone: nothing to do, no error


# ---------------------------------------------------------------------------
# hooks inside fused blocks: every layer's own call, in torch's order
# ---------------------------------------------------------------------------

def _record_every_module(module, calls):
    handles = []
    for name, sub in module.named_modules():
        def hook(mod, args, out, name=name):
            # copies: torch's in-place ReLU overwrites a BatchNorm's output
            # tensor after its hook has seen it
            calls.append((name, [np.array(a, copy=True) for a in network_outputs(out)]
                          if out is not None else []))
        handles.append(sub.register_forward_hook(hook))
    return handles


def _document(name):
    return ref.DOCUMENT_INPUTS[name]["builder"], getattr(demos, name + "_demo"), \
        ref.DOCUMENT_INPUTS[name]["shape"], name + "_demo"


def _system(name, op):
    builder, shape, _ = demos.SYSTEM_DEMOS[name]
    return ref_systems.SYSTEM_DEMOS[name], builder, shape, op


def _network(name):
    return (ref_networks.NETWORKS[name.replace("se_resnet", "seresnet")],
            getattr(models, name), (2, 3, 64, 64), name)


CASES = {
    "resnet-demo": _document("resnet"),
    "densenet-demo": _document("densenet"),
    "se-demo": _document("se"),
    "unet": _system("unet", "unet"),
    "unet-bilinear": _system("unet-bilinear", "unet"),
    "se-resnet-block": _system("se-resnet", "se_residual_block"),
    "se-inception": _system("se-inception", "se_inception"),
    "resnet18": _network("resnet18"),
    "resnet50": _network("resnet50"),
    "densenet121": _network("densenet121"),
    "googlenet": _network("googlenet"),
    "se_resnet50": _network("se_resnet50"),
}


def _tolerance(op):
    """The bound of one layer's output inside model ``op`` (see
    INNER_LAYER_FACTOR), at least the document's block bound: an inner
    layer's output carries the rounding of every layer before it."""
    return INNER_LAYER_FACTOR * max(tolerance(op), tolerance("residual_block"))


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_hook_on_every_module_sees_torchs_calls(case, training, rng):
    """Every module hooked, on both sides: the same calls in the same order
    (a module called twice, like the document's shared bn, twice), and each
    call's output within the whole model's tolerance of torch's."""
    make_torch, make_sb, shape, op = CASES[case]
    theirs = make_torch()
    (randomize_network_ if op in NETWORK_TOLERANCES else randomize_)(theirs)
    ours = make_sb()
    load_from_torch(ours, theirs)
    without_dropout(theirs, nn.Dropout)
    without_dropout(ours, sb.Dropout)
    theirs.train(training)
    ours.train(training)
    x = randn(rng, *shape)
    torch_calls, our_calls = [], []
    _record_every_module(theirs, torch_calls)
    _record_every_module(ours, our_calls)
    with torch.no_grad():
        theirs(to_torch(x))
    ours(x)
    # timm names SE-ResNet's parameter-free modules act1, aa, drop_block, ...
    # where skipblocks keeps torchvision's relu: compare the modules both have
    shared = {n for n, _ in theirs.named_modules()} & {n for n, _ in ours.named_modules()}
    torch_calls = [c for c in torch_calls if c[0] in shared]
    our_calls = [c for c in our_calls if c[0] in shared]
    assert [n for n, _ in our_calls] == [n for n, _ in torch_calls]
    bound = _tolerance(op)
    for (name, got), (_, expected) in zip(our_calls, torch_calls):
        assert len(got) == len(expected), name
        for a, b in zip(got, expected):
            assert a.shape == b.shape, name
            assert ref.parity_error(a, b) <= bound, (name, ref.parity_error(a, b), bound)


def _count_calls(monkeypatch, cls):
    """Counts the calls of ``cls.forward`` (which the fused paths never
    call: they drive the layer's internals)."""
    counter = []
    original = cls.forward

    def counting(self, *args, **kwargs):
        counter.append(self)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(cls, "forward", counting)
    return counter


def test_only_the_hooked_block_leaves_its_fast_path(monkeypatch, rng):
    net = models.resnet18().eval()
    x = randn(rng, 1, 3, 64, 64)
    expected = net(x)
    convs = _count_calls(monkeypatch, sb.Conv2d)
    net(x)
    assert convs == []  # every convolution of ResNet-18 is fused in eval mode
    seen = []
    handle = net.layer2[0].bn1.register_forward_hook(lambda m, a, out: seen.append(out))
    out = net(x)
    block = net.layer2[0]
    # only the convolution whose BatchNorm is hooked is called on its own;
    # every other step keeps its fused path
    assert convs == [block.conv1]
    assert len(seen) == 1 and seen[0].shape == (1, 128, 8, 8)
    assert ref.parity_error(out, expected) <= NETWORK_TOLERANCES["resnet18"]
    # the hook saw bn1's output before the ReLU (negative values remain)
    assert seen[0].min() < 0
    handle.remove()
    convs.clear()
    net(x)
    assert convs == []  # back on the fast path


def test_hook_on_a_relu_inside_a_fused_tail_sees_each_call(rng):
    """ResNet's BasicBlock calls its one ReLU module twice, as torchvision's."""
    theirs = ref_networks.BasicBlock(8, 8).eval()
    randomize_(theirs)
    ours = models.BasicBlock(8, 8).eval()
    load_from_torch(ours, theirs)
    x = randn(rng, 2, 8, 6, 6)
    got, expected = [], []
    ours.relu.register_forward_hook(lambda m, a, out: got.append(out))
    theirs.relu.register_forward_hook(lambda m, a, out: expected.append(to_numpy(out)))
    with torch.no_grad():
        theirs(to_torch(x))
    ours(x)
    assert len(got) == len(expected) == 2
    for a, b in zip(got, expected):
        assert ref.parity_error(a, b) <= NETWORK_TOLERANCES["resnet18"]


def test_a_hook_replacing_a_layer_output_inside_a_block_changes_the_block(rng):
    """A forward hook's return value replaces the layer's output inside
    a fused block too (here: DenseBlock's second layer gives zeros)."""
    theirs, ours = ref.densenet_demo(), demos.densenet_demo()
    randomize_(theirs)
    load_from_torch(ours, theirs)
    theirs.eval()
    ours.eval()
    x = randn(rng, 1, 3, 40, 40)
    theirs[3].block.dense1.register_forward_hook(lambda m, a, out: out * 0)
    ours[3].block.dense1.register_forward_hook(lambda m, a, out: out * 0)
    with torch.no_grad():
        expected = to_numpy(theirs(to_torch(x)))
    got = ours(x)
    assert ref.parity_error(got, expected) <= tolerance("densenet_demo")
    assert np.all(got[:, 64 + 32:64 + 64] == 0)


def test_pre_hook_changing_the_input_of_an_inner_layer(rng):
    theirs, ours = ref.SEAttention(64, 8), sb.SEAttention(64, 8)
    randomize_(theirs)
    load_from_torch(ours, theirs)
    # the gate's input doubled, inside SEAttention's one-call fused path
    theirs.fc[3].register_forward_pre_hook(lambda m, args: args[0] * 2)
    ours.fc[3].register_forward_pre_hook(lambda m, args: args[0] * 2)
    x = randn(rng, 3, 64, 5, 5)
    with torch.no_grad():
        expected = to_numpy(theirs(to_torch(x)))
    assert ref.parity_error(ours(x), expected) <= tolerance("se_attention")


# ---------------------------------------------------------------------------
# copies
# ---------------------------------------------------------------------------

def _record_shape(module, args, output):
    _RECORDED.append(output.shape)


_RECORDED = []


def test_deepcopy_and_pickle_keep_hooks_as_torch(rng):
    m = sb.Sequential(sb.Conv2d(3, 4, 3), sb.BatchNorm2d(4)).eval()
    m[1].register_forward_hook(_record_shape)
    x = randn(rng, 1, 3, 6, 6)
    for twin in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        _RECORDED.clear()
        twin(x)
        assert _RECORDED == [(1, 4, 4, 4)]


def test_an_unpickled_hooked_model_runs_its_hooks_in_a_fresh_process(tmp_path):
    """The hook lives in a module both processes import; the fresh process
    has never registered a hook itself, yet the fused Sequential calls the
    hooked BatchNorm."""
    (tmp_path / "recorder.py").write_text(
        "CALLS = []\n"
        "def hook(module, args, output):\n"
        "    CALLS.append(output.shape)\n")
    script = (
        "import pickle, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import numpy as np, skipblocks as sb, recorder\n"
        "m = sb.Sequential(sb.Conv2d(3, 4, 3), sb.BatchNorm2d(4), sb.ReLU()).eval()\n"
        "m[1].register_forward_hook(recorder.hook)\n"
        "open(sys.argv[2], 'wb').write(pickle.dumps(m))\n")
    reader = (
        "import pickle, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import numpy as np, skipblocks as sb, recorder\n"
        "m = pickle.loads(open(sys.argv[2], 'rb').read())\n"
        "m(np.ones((1, 3, 6, 6), np.float32))\n"
        "print(recorder.CALLS)\n")
    blob = str(tmp_path / "model.pkl")
    subprocess.run([sys.executable, "-c", script, str(tmp_path), blob], check=True)
    out = subprocess.run([sys.executable, "-c", reader, str(tmp_path), blob], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[(1, 4, 4, 4)]"

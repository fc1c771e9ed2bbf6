"""Every public class, function and method of skipblocks' API has a
docstring (what ``help()`` and an IDE show), and every function of the C
extension has a text signature, so ``inspect.signature`` and ``help()``
show its parameters.

The public API: the names in ``__all__`` of skipblocks and of its public
modules (functional, models, parity, runtime, serialization, hooks, random,
demos, cli, conversion), each module's own docstring, and every public
method or property of those classes (``inspect.getdoc``: a method that
overrides a documented one, such as a layer's ``forward``, inherits its
docstring, as ``help()`` shows it).

``PENDING`` lists what is still undocumented in files whose owners are
adding the docstrings; it may only shrink: an entry that has its docstring
now fails test_pending_entries_are_still_missing, so that the entry is
removed."""
import importlib
import inspect
import pydoc
import types

import pytest

import skipblocks
from skipblocks import _C

PUBLIC_MODULES = ["skipblocks", "skipblocks.functional", "skipblocks.models",
                  "skipblocks.models.resnet", "skipblocks.models.densenet",
                  "skipblocks.models.googlenet", "skipblocks.models.se_resnet",
                  "skipblocks.parity", "skipblocks.runtime", "skipblocks.serialization",
                  "skipblocks.hooks", "skipblocks.random", "skipblocks.demos", "skipblocks.cli",
                  "skipblocks.conversion", "skipblocks.module", "skipblocks.layers",
                  "skipblocks.containers", "skipblocks.blocks", "skipblocks.inception",
                  "skipblocks.unet"]

# Undocumented entries in files other agents own and are editing (see the
# module docstring). Qualified names as _public_objects() yields them.
PENDING = set()


def _members(cls):
    """The public methods and properties ``cls`` defines (not inherited from
    object), by name."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property) or inspect.isfunction(value):
            yield name, value


def _public_objects():
    """(qualified name, object, docstring, inherited_from) for every public
    module, class, function, method and property; ``inherited_from``: for a
    method, the qualified names of the same method in the class's bases
    (where its docstring would come from), else ()."""
    seen = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        yield module_name, module, module.__doc__, ()
        names = getattr(module, "__all__", None)
        assert names is not None, f"{module_name} has no __all__"
        for name in names:
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType):
                continue  # listed itself
            if not (inspect.isclass(obj) or callable(obj)):
                continue  # data (demos.DEMOS)
            home = getattr(obj, "__module__", module_name)
            qualified = f"{home}.{obj.__qualname__}" if hasattr(obj, "__qualname__") \
                else f"{module_name}.{name}"
            if qualified in seen:
                continue
            seen.add(qualified)
            yield qualified, obj, inspect.getdoc(obj), ()
            if inspect.isclass(obj):
                for mname, member in _members(obj):
                    mq = f"{qualified}.{mname}"
                    if mq in seen:
                        continue
                    seen.add(mq)
                    doc = member.__doc__ if isinstance(member, property) \
                        else inspect.getdoc(getattr(obj, mname))
                    bases = tuple(f"{base.__module__}.{base.__qualname__}.{mname}"
                                  for base in obj.__mro__[1:] if mname in vars(base))
                    yield mq, member, doc, bases


def _missing():
    """{qualified name: the names its docstring would be inherited from}."""
    return {q: bases for q, _, doc, bases in _public_objects() if not (doc and doc.strip())}


def test_every_public_object_has_a_docstring():
    # a method overriding a PENDING one (a layer's forward overriding
    # Module.forward) inherits its docstring once that one has it
    missing = [q for q, bases in sorted(_missing().items())
               if q not in PENDING and not PENDING.intersection(bases)]
    assert not missing, "no docstring:\n  " + "\n  ".join(missing)


def test_pending_entries_are_still_missing():
    # an entry that got its docstring leaves PENDING
    documented = sorted(PENDING - set(_missing()))
    assert not documented, f"documented now, remove from PENDING: {documented}"


def test_docstrings_start_with_a_summary_line():
    # torch's style: the first line says what the object is or does
    bad = [q for q, _, doc, _ in _public_objects()
           if doc and doc.strip() and not doc.strip().splitlines()[0].strip()]
    assert not bad


def test_the_api_is_large_enough_to_mean_something():
    # guards the walk above against silently finding nothing
    names = {q for q, _, _, _ in _public_objects()}
    assert len(names) > 150
    assert "skipblocks.layers.Conv2d" in names
    assert "skipblocks.module.Module.load_state_dict" in names
    assert "skipblocks.models.resnet.resnet18" in names
    assert "skipblocks.functional.conv2d" in names


# -- the C extension ---------------------------------------------------------

C_FUNCTIONS = sorted(name for name in dir(_C) if callable(getattr(_C, name)))


def test_c_extension_lists_functions():
    assert {"conv2d", "batch_norm", "build_info", "set_num_threads"} <= set(C_FUNCTIONS)


@pytest.mark.parametrize("name", C_FUNCTIONS)
def test_c_function_has_a_text_signature(name):
    function = getattr(_C, name)
    signature = inspect.signature(function)  # raises ValueError without a text signature
    assert function.__text_signature__.startswith("($module")
    # the docstring proper follows the signature: help() shows both
    doc = inspect.getdoc(function)
    assert doc and doc.strip()
    assert not doc.startswith(name + "(")  # the signature was recognised and split off
    assert "layer" in signature.parameters or not _takes_layer(name)


def _takes_layer(name):
    return name not in ("get_num_threads", "set_num_threads", "get_isa", "set_isa",
                        "available_isas", "build_info", "_test_avx512_source_on_avx2",
                        "conv2d_blocked_ok")


@pytest.mark.parametrize("name", C_FUNCTIONS)
def test_c_signature_accepts_its_parameters_by_keyword(name):
    # the text signature is the parser's truth: the keyword names of
    # PyArg_ParseTupleAndKeywords, positional-only for METH_O / METH_NOARGS
    function = getattr(_C, name)
    params = list(inspect.signature(function).parameters.values())
    if not _takes_layer(name):
        assert all(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in params)
        return
    assert params[0].name == "layer"
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
    # the parser takes ``layer`` by that keyword and names the next required
    # parameter as the signature does
    with pytest.raises(TypeError, match=f"missing required argument '{params[1].name}'"):
        function(layer="x")


def test_help_shows_the_c_signature():
    text = pydoc.plain(pydoc.render_doc(_C.conv2d))
    assert "conv2d(layer, input, weight, bias, stride, padding, dilation, groups, out=None," \
        in text
    assert "torch.nn.functional.conv2d" in text  # the docstring proper
    assert str(inspect.signature(_C.build_info)) == "()"
    assert str(inspect.signature(_C.set_num_threads)) == "(n, /)"

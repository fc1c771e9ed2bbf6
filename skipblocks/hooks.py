"""Forward hooks on modules, with torch.nn.Module's semantics.

``module.register_forward_pre_hook(hook)`` and
``module.register_forward_hook(hook)`` run ``hook`` around every call of
``module(...)`` -- not of ``module.forward(...)``, and never of a
``skipblocks.functional`` call, as in torch:

* a pre-hook is called as ``hook(module, args)`` before ``forward``; when it
  returns something other than None, that becomes the positional arguments
  (a lone value is wrapped in a tuple). With ``with_kwargs=True`` it is
  called as ``hook(module, args, kwargs)`` and must return None or a pair
  ``(args, kwargs)``;
* a forward hook is called as ``hook(module, args, output)`` (with
  ``with_kwargs=True``: ``hook(module, args, kwargs, output)``) after
  ``forward``; a value other than None replaces the output;
* hooks run in the order they were registered; ``prepend=True`` puts a hook
  first;
* a forward hook registered with ``always_call=True`` also runs when
  ``forward`` or another hook raises (with the output it had so far, None
  when forward did not return); an exception inside it is turned into a
  warning, and the original exception propagates;
* each registration returns a :class:`RemovableHandle`; ``handle.remove()``
  (or leaving ``with handle:``) unregisters the hook.

Fused paths and hooks
---------------------
skipblocks' blocks normally run several layers as one C call (a BatchNorm
folded into a convolution, a residual block in two passes, SEAttention in
one call), in which the inner layers are never called. A fused path first
asks :func:`hooked` whether any module it would skip carries a hook; if one
does, that block calls its layers one by one, so every hook sees its
layer's own call with that layer's own output. Blocks without hooks below
them keep their fast paths. Until the first hook is registered in the
process, the question costs one global read.

The storage is torch's: ``_forward_pre_hooks``, ``_forward_hooks`` (ordered
dicts from a handle's id to the hook) and ``_forward_pre_hooks_with_kwargs``,
``_forward_hooks_with_kwargs``, ``_forward_hooks_always_called`` (the ids
registered with those options). There are no backward hooks (there is no
autograd) and no global hooks (``register_module_forward_hook``).
"""
import itertools
import warnings
import weakref
from collections import OrderedDict

__all__ = ["RemovableHandle"]

# The dicts every Module holds, in Module.__init__ and after unpickling.
HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
              "_forward_hooks_with_kwargs", "_forward_hooks_always_called")


class _InUse:
    """Whether any module of this process has been given a hook (never reset:
    a removed hook leaves only the cost of the subtree checks)."""
    value = False


_in_use = _InUse()
_next_id = itertools.count()


class RemovableHandle:
    """The handle register_forward_hook and register_forward_pre_hook
    return, as torch.utils.hooks.RemovableHandle: ``remove()`` unregisters
    the hook (again: nothing happens); ``with handle:`` removes it on exit.
    ``id`` is the hook's key in the module's hook dicts. The handle holds
    the dicts weakly, so it does not keep a deleted module alive."""

    def __init__(self, hooks, extra=()):
        self.id = next(_next_id)
        self._refs = tuple(weakref.ref(d) for d in (hooks, *extra))

    def remove(self):
        """Unregisters the hook; a second call does nothing."""
        for ref in self._refs:
            d = ref()
            if d is not None:
                d.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def __getstate__(self):
        # the dicts themselves (pickled with the module that holds them),
        # since weak references do not pickle
        return {"id": self.id, "dicts": tuple(ref() for ref in self._refs)}

    def __setstate__(self, state):
        self.id = state["id"]
        # a dict that was already gone gets a dead reference
        self._refs = tuple(weakref.ref(d if d is not None else OrderedDict())
                           for d in state["dicts"])

    def __repr__(self):
        return f"<skipblocks.hooks.RemovableHandle id={self.id}>"


def new_hook_dicts():
    """The empty hook dicts of a new module, by attribute name."""
    return {name: OrderedDict() for name in HOOK_DICTS}


def mark_in_use(module):
    """Records that hooks exist in this process when ``module`` (just
    unpickled or copied) carries one."""
    d = module.__dict__
    if d.get("_forward_hooks") or d.get("_forward_pre_hooks"):
        _in_use.value = True


def register(module, hook, pre, prepend, with_kwargs, always_call=False):
    """Module.register_forward_pre_hook / register_forward_hook."""
    if not callable(hook):
        kind = "forward pre-hook" if pre else "forward hook"
        raise TypeError(f"{module._get_name()}: the {kind} must be callable, got "
                        f"{type(hook).__name__}")
    d = module.__dict__
    if pre:
        hooks, options = d["_forward_pre_hooks"], (d["_forward_pre_hooks_with_kwargs"],)
    else:
        hooks = d["_forward_hooks"]
        options = (d["_forward_hooks_with_kwargs"], d["_forward_hooks_always_called"])
    handle = RemovableHandle(hooks, options)
    hooks[handle.id] = hook
    if with_kwargs:
        options[0][handle.id] = True
    if always_call:
        options[1][handle.id] = True
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    _in_use.value = True
    return handle


def has_hooks(module):
    """``module`` itself carries a forward or pre-forward hook."""
    d = module.__dict__
    return bool(d.get("_forward_hooks") or d.get("_forward_pre_hooks"))


def hooked(modules):
    """Some module among ``modules`` (entries that are not modules, such as
    the document's functional ReLU marker or None, are skipped) or among
    their descendants carries a hook: a fused path that would skip their
    calls must call them instead."""
    if not _in_use.value:
        return False
    for module in modules:
        if hasattr(module, "modules") and hasattr(module, "_forward_hooks"):
            for sub in module.modules():
                if has_hooks(sub):
                    return True
    return False


def call(module, args, kwargs):
    """``module(*args, **kwargs)`` with its hooks (torch's Module._call_impl
    for forward hooks)."""
    d = module.__dict__
    output = None
    always_done = set()
    try:
        pre_with_kwargs = d["_forward_pre_hooks_with_kwargs"]
        for hook_id, hook in list(d["_forward_pre_hooks"].items()):
            if hook_id in pre_with_kwargs:
                result = hook(module, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
            else:
                result = hook(module, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = module.forward(*args, **kwargs)
        with_kwargs, always = d["_forward_hooks_with_kwargs"], d["_forward_hooks_always_called"]
        for hook_id, hook in list(d["_forward_hooks"].items()):
            if hook_id in always:
                always_done.add(hook_id)
            result = hook(module, args, kwargs, output) if hook_id in with_kwargs \
                else hook(module, args, output)
            if result is not None:
                output = result
        return output
    except Exception:
        with_kwargs, always = d["_forward_hooks_with_kwargs"], d["_forward_hooks_always_called"]
        for hook_id, hook in list(d["_forward_hooks"].items()):
            if hook_id not in always or hook_id in always_done:
                continue
            try:
                result = hook(module, args, kwargs, output) if hook_id in with_kwargs \
                    else hook(module, args, output)
                if result is not None:
                    output = result
            except Exception as error:
                warnings.warn("module forward hook with ``always_call=True`` raised an "
                              "exception that was silenced as another error was raised in "
                              f"forward: {error}", stacklevel=3)
        raise

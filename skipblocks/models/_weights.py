"""``weights=`` of the network builders: a file or a state_dict, read
without torch, and the builder arguments a file decides."""
import os
import re
from collections.abc import Mapping

from ..serialization import load, state_dict_from

# torchvision's weight names ("IMAGENET1K_V1", "DEFAULT", "ResNet18_Weights.IMAGENET1K_V1"):
# an enum torchvision downloads, which skipblocks does not do.
_WEIGHTS_ENUM_NAME = re.compile(r"^(?:\w+_Weights\.)?(?:DEFAULT|[A-Z0-9]+(?:_[A-Z0-9]+)+)$")


def state_dict_of(weights, builder):
    """The state_dict ``weights`` stands for: a path (``str`` or
    ``os.PathLike``) of a torch ``.pt``/``.pth``, ``.safetensors`` or
    ``.npz`` file -- a state_dict, or a checkpoint holding one (see
    skipblocks.state_dict_from) -- or a mapping of names to arrays or torch
    tensors. Returns a new dict: the builders rewrite keys in it."""
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if isinstance(path, str) and not os.path.exists(path) and _WEIGHTS_ENUM_NAME.match(path):
            raise ValueError(
                f"{builder}: weights={path!r} names torchvision's download; skipblocks reads "
                "weight files but never downloads. Pass the path of the file, e.g. the one "
                "torchvision saved under ~/.cache/torch/hub/checkpoints/")
        return dict(state_dict_from(load(path)))
    if isinstance(weights, Mapping):
        return dict(state_dict_from(weights))
    raise TypeError(f"{builder}: weights must be a path of a weight file or a state_dict (a "
                    f"mapping of names to arrays), got {type(weights).__name__}")


def classes_from(state_dict, classifier, builder, kwargs):
    """torchvision's builders with weights: ``num_classes`` is the number of
    rows of the classifier's weight in the file (``state_dict[classifier]``;
    nothing is set when it is absent or not 2-D, and the strict load then
    names it). A different num_classes from the caller raises
    torchvision's _ovewrite_named_param ValueError."""
    shape = tuple(getattr(state_dict.get(classifier), "shape", ()))
    if len(shape) != 2:
        return
    classes = int(shape[0])
    if "num_classes" in kwargs and kwargs["num_classes"] != classes:
        raise ValueError(f"{builder}: The parameter 'num_classes' expected value {classes} "
                         f"but got {kwargs['num_classes']} instead.")
    kwargs["num_classes"] = classes


def builder_kwargs(builder, kwargs):
    """The builder's keyword arguments for the network's class, without the
    ones torchvision's builders take besides ``weights``: ``progress`` (a
    download progress bar: nothing to show) and the deprecated
    ``pretrained`` (torchvision maps True to a download; here it raises,
    pointing to ``weights=``)."""
    kwargs = dict(kwargs)
    kwargs.pop("progress", None)
    if kwargs.pop("pretrained", False):
        raise ValueError(f"{builder}: pretrained=True downloads published weights; "
                         "skipblocks never downloads. Pass weights=<the path of the file> "
                         "(torchvision keeps its downloads under ~/.cache/torch/hub/checkpoints/, "
                         "timm's come from the Hugging Face hub as model.safetensors)")
    return kwargs

"""skipblocks: PyTorch-compatible skip-connection blocks as C kernels on NumPy.

The document's ResidualBlock, Dense_Layer / Dense_Block and SEAttention, the
torch.nn layers they are built from, and torch.nn.functional counterparts,
with torch's class names, constructor arguments, state_dict keys, repr and
numbers -- and NumPy as the only run-time dependency (torch is never
imported here; skipblocks.reference, the test oracle, needs it).
"""


def _load_extension():
    """Imports the compiled kernels, skipblocks._C.

    Python run from the root of a source checkout imports this source
    package, which has no compiled extension after a plain `pip install .`
    (the build went to site-packages). In that case, and only then, the
    installed build of the extension is loaded, so the README's commands work
    from the checkout. After changing C code, `pip install .` again."""
    import importlib.machinery
    import importlib.util
    import os
    import sys
    try:
        from . import _C
        return _C
    except ImportError as exc:
        error = exc
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        package_dir = os.path.abspath(os.path.join(entry or os.getcwd(), "skipblocks"))
        if package_dir == here:
            continue
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(package_dir, "_C" + suffix)
            if os.path.isfile(path):
                spec = importlib.util.spec_from_file_location(__name__ + "._C", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                sys.modules[__name__ + "._C"] = module
                return module
    raise ImportError(
        "skipblocks' C extension (skipblocks._C) is not built: install the package with "
        "`pip install .` (or `pip install -e .` to work on it)") from error


_C = _load_extension()

from . import functional
from .blocks import (DenseBlock, DenseLayer, Dense_Block, Dense_Layer, ResidualBlock,
                     SEAttention, SEResidualBlock)
from .containers import ModuleDict, Sequential
from .functional import cat
from .inception import BasicConv2d, Inception, SEInception
from .layers import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU,
                     Sigmoid)
from .module import Module, Parameter
# conv_transpose2d
from .layers import ConvTranspose2d
# avg_pool2d and interpolate
from .layers import AvgPool2d, Upsample
from .random import manual_seed
# weight files: torch .pt/.pth, .safetensors, .npz
from .serialization import WeightsFileError, load, save, state_dict_from
from .runtime import available_isas, get_isa, get_num_threads, set_isa, set_num_threads
# whole networks: skipblocks.models (torchvision's ResNet, DenseNet, GoogLeNet; timm's SE-ResNet)
from . import models
from .unet import DoubleConv, Down, OutConv, UNet, Up
# pad and dropout; Flatten, Identity, ModuleList
from .containers import ModuleList
from .layers import Dropout, Flatten, Identity, flatten
from .conversion import from_torch

__version__ = "0.1.0"

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleDict",
    "Conv2d", "BatchNorm2d", "ReLU", "Sigmoid", "MaxPool2d", "AdaptiveAvgPool2d", "Linear",
    "ResidualBlock", "DenseLayer", "DenseBlock", "Dense_Layer", "Dense_Block", "SEAttention",
    # the document's other systems: U-Net (2.3), SE inside ResNet and Inception (4.2)
    "UNet", "DoubleConv", "Down", "Up", "OutConv",
    "SEResidualBlock", "BasicConv2d", "Inception", "SEInception",
    "functional", "cat", "manual_seed",
    "set_num_threads", "get_num_threads", "set_isa", "get_isa", "available_isas",
    # conv_transpose2d
    "ConvTranspose2d",
    # pad and dropout; Flatten, Identity, ModuleList
    "Dropout", "Flatten", "Identity", "ModuleList", "flatten",
    # avg_pool2d and interpolate
    "AvgPool2d", "Upsample",
    # weight files
    "load", "save", "state_dict_from", "WeightsFileError",
    # whole networks
    "models",
    "from_torch",
]

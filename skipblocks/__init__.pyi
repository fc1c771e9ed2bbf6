# The package's public API (skipblocks/__init__.py), re-exported from the
# modules' stubs.
from . import _C as _C
from . import blocks as blocks
from . import containers as containers
from . import conversion as conversion
from . import functional as functional
from . import hooks as hooks
from . import inception as inception
from . import layers as layers
from . import models as models
from . import module as module
from . import random as random
from . import runtime as runtime
from . import serialization as serialization
from . import unet as unet
from .blocks import DenseBlock as DenseBlock
from .blocks import DenseLayer as DenseLayer
from .blocks import Dense_Block as Dense_Block
from .blocks import Dense_Layer as Dense_Layer
from .blocks import ResidualBlock as ResidualBlock
from .blocks import SEAttention as SEAttention
from .blocks import SEResidualBlock as SEResidualBlock
from .containers import ModuleDict as ModuleDict
from .containers import ModuleList as ModuleList
from .containers import Sequential as Sequential
from .conversion import from_torch as from_torch
from .functional import cat as cat
from .inception import BasicConv2d as BasicConv2d
from .inception import Inception as Inception
from .inception import SEInception as SEInception
from .layers import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from .layers import AvgPool2d as AvgPool2d
from .layers import BatchNorm2d as BatchNorm2d
from .layers import Conv2d as Conv2d
from .layers import ConvTranspose2d as ConvTranspose2d
from .layers import Dropout as Dropout
from .layers import Flatten as Flatten
from .layers import Identity as Identity
from .layers import Linear as Linear
from .layers import MaxPool2d as MaxPool2d
from .layers import ReLU as ReLU
from .layers import Sigmoid as Sigmoid
from .layers import Upsample as Upsample
from .layers import flatten as flatten
from .module import Module as Module
from .module import Parameter as Parameter
from .random import manual_seed as manual_seed
from .runtime import available_isas as available_isas
from .runtime import get_isa as get_isa
from .runtime import get_num_threads as get_num_threads
from .runtime import set_isa as set_isa
from .runtime import set_num_threads as set_num_threads
from .serialization import WeightsFileError as WeightsFileError
from .serialization import load as load
from .serialization import save as save
from .serialization import state_dict_from as state_dict_from
from .unet import DoubleConv as DoubleConv
from .unet import Down as Down
from .unet import OutConv as OutConv
from .unet import UNet as UNet
from .unet import Up as Up

__version__: str

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleDict",
    "Conv2d", "BatchNorm2d", "ReLU", "Sigmoid", "MaxPool2d", "AdaptiveAvgPool2d", "Linear",
    "ResidualBlock", "DenseLayer", "DenseBlock", "Dense_Layer", "Dense_Block", "SEAttention",
    "UNet", "DoubleConv", "Down", "Up", "OutConv",
    "SEResidualBlock", "BasicConv2d", "Inception", "SEInception",
    "functional", "cat", "manual_seed",
    "set_num_threads", "get_num_threads", "set_isa", "get_isa", "available_isas",
    "ConvTranspose2d",
    "Dropout", "Flatten", "Identity", "ModuleList", "flatten",
    "AvgPool2d", "Upsample",
    "load", "save", "state_dict_from", "WeightsFileError",
    "models",
    "from_torch",
]

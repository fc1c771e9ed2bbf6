"""torchvision's GoogLeNet (torchvision.models.googlenet): ``GoogLeNet``,
``InceptionAux``, ``GoogLeNetOutputs`` and the builder ``googlenet``, with
torchvision's structure, constructor arguments, state_dict keys (in order),
repr and initialisation, on the Inception module and BasicConv2d of
skipblocks.inception.
"""
import functools
import warnings
from collections import namedtuple

import numpy as np

from .. import functional as F
from .. import random as _random
from ..inception import BasicConv2d, Inception
from ..layers import (AdaptiveAvgPool2d, Conv2d, Dropout, Linear, MaxPool2d,
                      _check_factory_kwargs, flatten)
from ..module import Module, _compute_dtype
from . import _weights

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "InceptionAux", "googlenet"]

# What a train-mode GoogLeNet with aux heads returns, as torchvision's.
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class InceptionAux(Module):
    """torchvision's auxiliary classifier: adaptive average pool to 4x4,
    ``conv`` = BasicConv2d(in_channels, 128, 1x1), flatten, relu(``fc1`` =
    Linear(2048, 1024)), ``dropout``, ``fc2`` = Linear(1024, num_classes)."""

    def __init__(self, in_channels, num_classes, conv_block=None, dropout=0.7, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("InceptionAux", None, dtype)
        if conv_block is None:
            conv_block = functools.partial(BasicConv2d, dtype=dtype)
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = Linear(2048, 1024, dtype=dtype)
        self.fc2 = Linear(1024, num_classes, dtype=dtype)
        self.dropout = Dropout(p=dropout)

    def forward(self, x):
        x = F.as_real(x, "InceptionAux", "input", _compute_dtype(self))
        # aux1: N x 512 x 14 x 14, aux2: N x 528 x 14 x 14 at 224 x 224
        x = F.adaptive_avg_pool2d(x, (4, 4), _layer="InceptionAux")
        x = flatten(self.conv(x), 1)
        x = F.relu(self.fc1(x), inplace=True)
        return self.fc2(self.dropout(x))


# transform_input: torchvision's mapping from ImageNet normalisation
# ((x - mean) / std) to the (x - 0.5) / 0.5 its weights were trained with,
# per channel as x * (std / 0.5) + (mean - 0.5) / 0.5.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class GoogLeNet(Module):
    """torchvision's GoogLeNet (Inception v1, with BatchNorm): the stem
    conv1 7x7/2, maxpool1, conv2 1x1, conv3 3x3, maxpool2, then
    inception3a/3b, maxpool3, inception4a-4e, maxpool4, inception5a/5b,
    global average pooling, ``dropout`` and ``fc`` = Linear(1024,
    num_classes); every max pool uses ceil_mode=True.

    Args (torchvision's):
        num_classes: 1000 by default.
        aux_logits: build the auxiliary classifiers ``aux1`` (after
            inception4a) and ``aux2`` (after inception4d). In train mode
            forward then returns GoogLeNetOutputs(logits, aux_logits2,
            aux_logits1), filled as torchvision fills it: aux_logits2 is
            aux1's output and aux_logits1 aux2's. Otherwise it returns the
            logits array.
        transform_input: map inputs normalised with ImageNet's mean and std
            to the (x - 0.5) / 0.5 the published weights expect (the
            pretrained builder turns it on).
        init_weights: torchvision's initialisation (truncated normal, std
            0.01, on every Conv2d and Linear weight; BatchNorm 1 and 0).
            None means True, as in torchvision, without its FutureWarning
            about scipy's speed, which does not apply here.
        blocks: [conv_block, inception_block, inception_aux_block] to build
            with instead of BasicConv2d, Inception and InceptionAux.
        dropout, dropout_aux: the dropout before ``fc`` and in the aux heads.
        dtype (keyword-only, beyond torchvision): float32 (default) or
            float64."""

    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False,
                 init_weights=None, blocks=None, dropout=0.2, dropout_aux=0.7, *, dtype=None):
        super().__init__()
        # a user's blocks are called without dtype unless one is asked for
        extra = {} if dtype is None else {"dtype": dtype}
        self._dtype = dtype = _check_factory_kwargs("GoogLeNet", None, dtype)
        if blocks is None:
            blocks = [BasicConv2d, Inception, InceptionAux]
        if init_weights is None:
            init_weights = True
        if len(blocks) != 3:
            raise ValueError(f"blocks length should be 3 instead of {len(blocks)}")
        conv_block, inception_block, inception_aux_block = blocks

        self.aux_logits = aux_logits
        self.transform_input = transform_input

        def conv(*args, **kwargs):
            return conv_block(*args, **extra, **kwargs)

        def inception(*args):
            return inception_block(*args, **extra)

        self.conv1 = conv(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = conv(64, 64, kernel_size=1)
        self.conv3 = conv(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = inception(832, 384, 192, 384, 48, 128, 128)
        if aux_logits:
            self.aux1 = inception_aux_block(512, num_classes, dropout=dropout_aux, **extra)
            self.aux2 = inception_aux_block(528, num_classes, dropout=dropout_aux, **extra)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.dropout = Dropout(p=dropout)
        self.fc = Linear(1024, num_classes, dtype=dtype)
        if init_weights:
            _init_googlenet(self)

    def _transform_input(self, x):
        """torchvision's transform_input, in the input's dtype: channel c
        becomes x[:, c] * (std[c] / 0.5) + (mean[c] - 0.5) / 0.5, one
        rounding for the product and one for the sum, as torch computes
        it."""
        if not self.transform_input:
            return x
        if x.ndim < 2 or x.shape[1] < 3:
            raise IndexError(f"GoogLeNet: transform_input reads channels 0, 1 and 2 of dim 1; "
                             f"the input has shape {x.shape}")
        dtype = x.dtype.type
        channels = [x[:, c:c + 1] * dtype(std / 0.5) + dtype((mean - 0.5) / 0.5)
                    for c, (mean, std) in enumerate(zip(_IMAGENET_MEAN, _IMAGENET_STD))]
        return np.concatenate(channels, axis=1)

    def forward(self, x):
        x = F.as_real(x, "GoogLeNet", "input", _compute_dtype(self))
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.conv3(self.conv2(x))
        x = self.maxpool2(x)
        x = self.inception3b(self.inception3a(x))
        x = self.maxpool3(x)
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = flatten(self.avgpool(x), 1)
        x = self.fc(self.dropout(x))
        if self.training and self.aux_logits:
            # torchvision's forward swaps the two heads' outputs twice
            # (`x, aux1, aux2 = self._forward(x)` of a `(x, aux2, aux1)`, then
            # eager_outputs(x, aux2, aux1)): its aux_logits2 field holds aux1's
            # output (the head on inception4a) and aux_logits1 aux2's.
            return GoogLeNetOutputs(x, aux1, aux2)
        return x


def _init_googlenet(model):
    """torchvision's GoogLeNet initialisation: trunc_normal_(std=0.01,
    a=-2, b=2) on every Conv2d and Linear weight (biases keep torch's
    default); BatchNorm2d starts at weight 1, bias 0 already."""
    for m in model.modules():
        if isinstance(m, (Conv2d, Linear)):
            m.weight = _random.normal(0.01, m.weight.shape, m.weight.dtype, low=-2.0, high=2.0)


def googlenet(*, weights=None, progress=True, **kwargs):
    """GoogLeNet (torchvision's ``googlenet``).

    Without ``weights``: GoogLeNet(**kwargs), aux heads included by default
    as in torchvision.

    With ``weights`` -- the path of a weight file (torch ``.pth``/``.pt``,
    ``.safetensors``, ``.npz``; a state_dict or a checkpoint holding one,
    e.g. torchvision's published ``googlenet-*.pth``) or a state_dict --
    as torchvision's pretrained builder: ``transform_input`` defaults to
    True, ``num_classes`` comes from the file's ``fc.weight``, the aux heads
    are built and loaded (strictly), then dropped unless
    ``aux_logits=True`` was passed, which warns, as torchvision does, that
    the published aux heads are not trained. Two departures: a file without
    aux keys (a model saved without aux heads) loads into a model built
    without them, and ``aux_logits=False`` or ``init_weights`` are accepted
    (torchvision raises for them with weights), since the result is the
    same model. ``progress`` is accepted for torchvision's signature;
    nothing is downloaded."""
    kwargs = _weights.builder_kwargs("googlenet", kwargs)
    if weights is None:
        return GoogLeNet(**kwargs)
    state_dict = _weights.state_dict_of(weights, "googlenet")
    wanted_aux = kwargs.pop("aux_logits", False)
    kwargs.pop("init_weights", None)
    kwargs.setdefault("transform_input", True)
    _weights.classes_from(state_dict, "fc.weight", "googlenet", kwargs)
    has_aux = any(key.startswith(("aux1.", "aux2.")) for key in state_dict)
    model = GoogLeNet(aux_logits=has_aux or wanted_aux, init_weights=False, **kwargs)
    model.load_state_dict(state_dict)
    if not wanted_aux:
        model.aux_logits = False
        model.aux1 = None
        model.aux2 = None
    else:
        warnings.warn("auxiliary heads in the pretrained googlenet model are NOT pretrained, so "
                      "make sure to train them", stacklevel=2)
    return model

"""Whole networks built from skipblocks' layers and blocks, with the
structure, constructor arguments and state_dict keys of their published
torch versions, loadable from their published weight files without torch:

* torchvision's ResNet (``resnet18`` ... ``resnet152``), DenseNet
  (``densenet121`` ... ``densenet201``) and GoogLeNet (``googlenet``);
* timm's SE-ResNet (``se_resnet50``, ``se_resnet101``; timm's
  ``seresnet50`` / ``seresnet101`` keys).

Each builder takes ``weights=``: the path of a ``.pth``, ``.safetensors``
or ``.npz`` file, or a state_dict, loaded as torchvision or timm load it.
"""
from .densenet import DenseNet, densenet121, densenet161, densenet169, densenet201
from .googlenet import GoogLeNet, GoogLeNetOutputs, InceptionAux, googlenet
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet101, \
    resnet152
from .se_resnet import SEBottleneck, SEModule, se_resnet50, se_resnet101

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152",
           "DenseNet", "densenet121", "densenet161", "densenet169", "densenet201",
           "GoogLeNet", "GoogLeNetOutputs", "InceptionAux", "googlenet",
           "SEModule", "SEBottleneck", "se_resnet50", "se_resnet101"]

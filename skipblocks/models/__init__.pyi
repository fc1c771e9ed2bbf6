from .densenet import DenseNet as DenseNet
from .densenet import densenet121 as densenet121
from .densenet import densenet161 as densenet161
from .densenet import densenet169 as densenet169
from .densenet import densenet201 as densenet201
from .googlenet import GoogLeNet as GoogLeNet
from .googlenet import GoogLeNetOutputs as GoogLeNetOutputs
from .googlenet import InceptionAux as InceptionAux
from .googlenet import googlenet as googlenet
from .resnet import BasicBlock as BasicBlock
from .resnet import Bottleneck as Bottleneck
from .resnet import ResNet as ResNet
from .resnet import resnet18 as resnet18
from .resnet import resnet34 as resnet34
from .resnet import resnet50 as resnet50
from .resnet import resnet101 as resnet101
from .resnet import resnet152 as resnet152
from .se_resnet import SEBottleneck as SEBottleneck
from .se_resnet import SEModule as SEModule
from .se_resnet import se_resnet50 as se_resnet50
from .se_resnet import se_resnet101 as se_resnet101

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152",
           "DenseNet", "densenet121", "densenet161", "densenet169", "densenet201",
           "GoogLeNet", "GoogLeNetOutputs", "InceptionAux", "googlenet",
           "SEModule", "SEBottleneck", "se_resnet50", "se_resnet101"]

"""The document's torch modules, reproduced as the parity oracle.

Source: ``shared/seed/000_b831e00f78ae79ec.txt`` ("卷积神经网络之ResNets、SENet"),
sections 3.1 (ResidualBlock), 3.2 (Dense_Layer, Dense_Block) and 4.3 (SEAttention).

The classes below keep the document's structure, names and attribute names so
that their ``state_dict()`` keys and ``repr`` are what the document's code
produces.  The one deliberate change is in ``ResidualBlock.forward``: the
document reads the module-level global ``downsample`` instead of
``self.downsample`` (a bug that only works in the document because the global
happens to be the right module); here ``self.downsample`` is used.

Everything else is as the document has it, including the quirks:

* one ``self.bn`` serves both convolutions of ``ResidualBlock`` (its running
  statistics update twice per train-mode forward);
* ``Dense_Block.forward`` appends the new features to the list it is given,
  i.e. it mutates the caller's list -- tests must pass it a fresh list;
* ``SEAttention`` uses ``nn.ReLU(inplace=True)`` and ``.view``.

This module imports torch; ``import skipblocks`` never imports it.
"""

import torch
from torch import nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------
# 3.1  ResNet - residual block
# ---------------------------------------------------------------------------

# basic resdidual block of ResNet
# This is generic in the sense, it could be used for downsampling of features.
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=[1, 1], downsample=None):
        """
        A basic residual block of ResNet
        Parameters
        ----------
            in_channels: Number of channels that the input have
            out_channels: Number of channels that the output have
            stride: strides in convolutional layers
            downsample: A callable to be applied before addition of residual mapping
        """
        super(ResidualBlock, self).__init__()

        self.conv1 = nn.Conv2d(
            in_channels, out_channels, kernel_size=3, stride=stride[0],
            padding=1, bias=False
        )

        self.conv2 = nn.Conv2d(
            out_channels, out_channels, kernel_size=3, stride=stride[1],
            padding=1, bias=False
        )

        self.bn = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        # applying a downsample function before adding it to the output
        if (self.downsample is not None):
            # FIX (the only change from the document): the document calls the
            # module-level global `downsample(residual)` here; we use the
            # block's own `self.downsample`, which is what was intended.
            residual = self.downsample(residual)

        out = F.relu(self.bn(self.conv1(x)))

        out = self.bn(self.conv2(out))
        # note that adding residual before activation
        out = out + residual
        out = F.relu(out)
        return out


# ---------------------------------------------------------------------------
# 3.2  DenseNet - dense layer and dense block
# ---------------------------------------------------------------------------

class Dense_Layer(nn.Module):
    def __init__(self, in_channels, growthrate, bn_size):
        super(Dense_Layer, self).__init__()

        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(
            in_channels, bn_size * growthrate, kernel_size=1, bias=False
        )
        self.bn2 = nn.BatchNorm2d(bn_size * growthrate)
        self.conv2 = nn.Conv2d(
            bn_size * growthrate, growthrate, kernel_size=3, padding=1, bias=False
        )

    def forward(self, prev_features):
        out1 = torch.cat(prev_features, dim=1)
        out1 = self.conv1(F.relu(self.bn1(out1)))  # [1,128,24,24]
        out2 = self.conv2(F.relu(self.bn2(out1)))  # [1,32,24,24]
        return out2


class Dense_Block(nn.ModuleDict):
    def __init__(self, n_layers, in_channels, growthrate, bn_size):
        """
        A Dense block consists of `n_layers` of `Dense_Layer`
        Parameters
        ----------
            n_layers: Number of dense layers to be stacked
            in_channels: Number of input channels for first layer in the block
            growthrate: Growth rate (k) as mentioned in DenseNet paper
            bn_size: Multiplicative factor for # of bottleneck layers
        """
        super(Dense_Block, self).__init__()

        layers = dict()
        for i in range(n_layers):
            layer = Dense_Layer(in_channels + i * growthrate, growthrate, bn_size)
            layers['dense{}'.format(i)] = layer

        self.block = nn.ModuleDict(layers)

    def forward(self, features):
        if (isinstance(features, torch.Tensor)):
            features = [features]

        # NOTE (kept from the document): this appends to the caller's list.
        for _, layer in self.block.items():
            new_features = layer(features)
            features.append(new_features)

        return torch.cat(features, dim=1)  # [1,256,24,24]


# ---------------------------------------------------------------------------
# 4.3  SENet - squeeze-and-excitation attention
# ---------------------------------------------------------------------------

class SEAttention(nn.Module):

    def __init__(self, channel=512, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)  # 全局均值池化  输出的是c×1×1
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),  # channel // reduction代表通道压缩
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),  # 还原
            nn.Sigmoid()
        )

    def forward(self, x):
        b, c, _, _ = x.size()  # 50×512×7×7
        y = self.avg_pool(x).view(b, c)  # maxpool之后得:50×512×1×1,view形状得到50×512
        y = self.fc(y).view(b, c, 1, 1)  # 50×512×1×1
        return x * y.expand_as(x)  # 根据x.size来扩展y


# ---------------------------------------------------------------------------
# The document's three demos, as builders (defaults = the document's values)
# ---------------------------------------------------------------------------

def resnet_downsample(in_channels=64, out_channels=128, stride=2):
    """The document's ``downsample``: 1x1 conv (stride 2, no bias) + BatchNorm2d."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels)
    )


def resnet_demo(in_channels=3, width=64, out_channels=128, down_stride=2):
    """First five layers of ResNet34, as in section 3.1.

    With the defaults this is exactly the document's ``resnet_blocks``:
    Conv2d(3, 64, 7, 2, 3, bias=False), MaxPool2d(2, 2), ResidualBlock(64, 64) x2,
    ResidualBlock(64, 128, stride=[2, 1], downsample=Sequential(Conv2d(64, 128, 1,
    stride=2, bias=False), BatchNorm2d(128))).  On 1x3x100x100 it gives 1x128x13x13.
    """
    downsample = resnet_downsample(width, out_channels, down_stride)
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
        nn.MaxPool2d(kernel_size=2, stride=2),
        ResidualBlock(width, width),
        ResidualBlock(width, width),
        ResidualBlock(width, out_channels, stride=[down_stride, 1], downsample=downsample)
    )


def densenet_demo(in_channels=3, width=64, n_layers=6, growthrate=32, bn_size=4):
    """Section 3.2's ``dense_block``: conv 7x7/2, BN, maxpool 3/2, Dense_Block(6, 64, 32, 4).

    On 1x3x100x100 it gives 1x256x24x24 with the defaults.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=7, padding=3, stride=2, bias=False),
        nn.BatchNorm2d(width),
        nn.MaxPool2d(3, 2),
        Dense_Block(n_layers, width, growthrate=growthrate, bn_size=bn_size),
    )


def se_demo(channel=512, reduction=8):
    """Section 4.3's ``se = SEAttention(channel=512, reduction=8)``."""
    return SEAttention(channel=channel, reduction=reduction)


# The document's demo inputs: name -> (builder, input shape, input generator, output shape).
# ``generator`` names the torch function the document uses to draw the input.
DOCUMENT_INPUTS = {
    "resnet": {"builder": resnet_demo, "shape": (1, 3, 100, 100),
               "generator": "rand", "output_shape": (1, 128, 13, 13)},
    "densenet": {"builder": densenet_demo, "shape": (1, 3, 100, 100),
                 "generator": "rand", "output_shape": (1, 256, 24, 24)},
    "se": {"builder": se_demo, "shape": (50, 512, 7, 7),
           "generator": "randn", "output_shape": (50, 512, 7, 7)},
}


def document_input(name, seed=0):
    """The document's input for demo ``name`` as a torch tensor (seeded)."""
    spec = DOCUMENT_INPUTS[name]
    g = torch.Generator().manual_seed(seed)
    fn = torch.rand if spec["generator"] == "rand" else torch.randn
    return fn(*spec["shape"], generator=g)


# ---------------------------------------------------------------------------
# Parity metric
# ---------------------------------------------------------------------------

def _to_numpy64(a):
    import numpy as np
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def parity_error(ours, theirs):
    """max|ours - theirs| / max(1, max|theirs|), for NumPy arrays or torch tensors.

    Shapes must match exactly (no broadcasting).  Positions where both sides are
    NaN, or both are the same infinity, count as equal; any other non-finite
    mismatch gives ``inf``.  Empty arrays give 0.0.
    """
    import numpy as np
    a = _to_numpy64(ours)
    b = _to_numpy64(theirs)
    if a.shape != b.shape:
        raise ValueError("parity_error: shape mismatch %s vs %s" % (a.shape, b.shape))
    if a.size == 0:
        return 0.0
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    finite = np.isfinite(a) & np.isfinite(b)
    if np.any(~same & ~finite):
        return float("inf")
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    scale = np.abs(b[np.isfinite(b)])
    denom = max(1.0, float(scale.max()) if scale.size else 0.0)
    return float(diff.max()) / denom

"""The fused steps the networks are made of: a convolution with the
BatchNorm after it (and a ReLU, and a residual) in one pass."""
import numpy as np

from .. import _C
from .. import functional as F
from .. import runtime
from ..blocks import ResidualBlock
from ..containers import _foldable
from ..layers import BatchNorm2d

__all__ = ["conv_bn", "conv_output_shape", "add_relu"]


def conv_output_shape(conv, shape):
    """The output shape of ``conv`` (a Conv2d with symmetric padding) on an
    input of 4-D ``shape``."""
    n, _, h, w = shape
    weight = conv.weight
    (ph, pw), (sh, sw), (dh, dw) = conv._symmetric_padding(), conv.stride, conv.dilation
    kh, kw = weight.shape[2], weight.shape[3]
    return (n, weight.shape[0], (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


def conv_bn(conv, bn, x, relu=False, residual=None, layer="BasicBlock"):
    """bn(conv(x)), then ``+ residual`` when given, then a ReLU when
    ``relu``: torchvision's ``out = self.bn(self.conv(x)); out += identity;
    out = self.relu(out)``.

    Eval mode: one convolution with bn folded into its packed weights, the
    residual and the ReLU applied as its tiles are stored. Otherwise (train
    mode, a user's own modules, shapes the fused path does not take) the
    layers run in turn, with torch's errors."""
    if runtime.fusion_enabled() and _foldable(conv, bn, x) and x.dtype == conv.weight.dtype \
            and (residual is None or (type(residual) is np.ndarray
                                      and residual.dtype == x.dtype
                                      and residual.shape == conv_output_shape(conv, x.shape))):
        return conv._conv(x, fold=bn, relu=relu, residual=residual)
    out = conv(x)
    if residual is None:
        if relu:
            return bn._run(out, relu=True) if type(bn) is BatchNorm2d else F.relu(bn(out))
        return bn(out)
    if not relu:
        raise ValueError(f"{layer}: a residual is added before a ReLU")
    return add_relu(bn(out), residual, layer)


def add_relu(out, residual, layer):
    """``out += residual`` (residual broadcast to out's shape, as torch's
    in-place add), then a ReLU."""
    out = F.as_real(out, layer, "output")
    residual = F.as_real(residual, layer, "residual", out.dtype)
    return _C.add_relu(layer, out, ResidualBlock._match_residual(residual, out.shape, layer))

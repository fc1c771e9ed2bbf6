"""The fused step the networks are made of: a convolution, the BatchNorm
after it, then the addition of a residual and a ReLU, in one pass."""
import numpy as np

from .. import _C
from .. import functional as F
from .. import runtime
from ..blocks import ResidualBlock
from ..containers import _foldable
from ..layers import BatchNorm2d, ReLU

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
    """bn(conv(x)), then ``+ residual()`` when ``residual`` is given, then
    the module ``relu`` unless it is False: torchvision's ``out = self.bn(self.conv(
    x)); out += identity; out = self.relu(out)``. ``residual`` is a function
    returning the residual array (the block's downsample of its input), so
    that it runs where torchvision runs it: after bn, on the layer-by-layer
    path.

    Eval mode, with ``relu`` a plain ReLU (or False): one convolution with
    bn folded into its packed weights, the residual and the ReLU applied as
    its tiles are stored. Otherwise (train mode, a user's own modules,
    shapes the fused path does not take) the modules are called in turn,
    with torch's errors."""
    plain_relu = relu is False or type(relu) is ReLU
    if runtime.fusion_enabled() and plain_relu and _foldable(conv, bn, x) \
            and x.dtype == conv.weight.dtype and _runs(conv, x):
        # (the convolution cannot fail now, so running the residual's
        # modules first changes no error and no side effect)
        identity = None if residual is None else residual()
        if identity is None or (type(identity) is np.ndarray and identity.dtype == x.dtype
                                and identity.shape == conv_output_shape(conv, x.shape)):
            return conv._conv(x, fold=bn, relu=relu is not False, residual=identity)
        out = bn(conv(x))
    else:
        out = conv(x)
        if residual is None and relu is not False and type(bn) is BatchNorm2d and plain_relu:
            return bn._run(out, relu=True)  # BatchNorm and ReLU in one pass
        out = bn(out)
        identity = None if residual is None else residual()
    if identity is not None:
        if relu is not False and plain_relu:
            return add_relu(out, identity, layer)
        out = _add(out, identity, layer)
    return out if relu is False else relu(out)


def _runs(conv, x):
    """conv (a packable Conv2d) accepts x: its channels, and an output of at
    least one pixel."""
    weight = conv.weight
    return x.shape[1] == weight.shape[1] * conv.groups and \
        min(conv_output_shape(conv, x.shape)[2:]) > 0


def add_relu(out, residual, layer):
    """``out += residual`` (residual broadcast to out's shape, as torch's
    in-place add), then a ReLU, in one pass."""
    out = F.as_real(out, layer, "output")
    residual = F.as_real(residual, layer, "residual", out.dtype)
    return _C.add_relu(layer, out, ResidualBlock._match_residual(residual, out.shape, layer))


def _add(out, residual, layer):
    """``out += residual`` alone (the ReLU after it is a user's module)."""
    out = F.as_real(out, layer, "output")
    residual = F.as_real(residual, layer, "residual", out.dtype)
    return out + ResidualBlock._match_residual(residual, out.shape, layer)

"""The fused step the networks are made of: a convolution, the BatchNorm
after it, then the addition of a residual and a ReLU, in one pass."""
import numpy as np

from .. import runtime
from ..blocks import _add_relu, _bn_relu
from ..containers import _foldable
from ..layers import ReLU

__all__ = ["conv_bn"]


def _output_shape_if_it_runs(conv, x):
    """The output shape of ``conv`` (a packable Conv2d with symmetric
    padding) on the 4-D ``x``, or None when it cannot run on x (a channel
    mismatch, an output of no pixel)."""
    n, c, h, w = x.shape
    weight = conv.weight
    if c != weight.shape[1] * conv.groups:
        return None
    (ph, pw), (sh, sw), (dh, dw) = conv._symmetric_padding(), conv.stride, conv.dilation
    kh, kw = weight.shape[2], weight.shape[3]
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return (n, weight.shape[0], oh, ow) if oh > 0 and ow > 0 else None


def conv_bn(conv, bn, x, relu=False, residual=None, layer="BasicBlock"):
    """bn(conv(x)), then ``+ residual()`` when ``residual`` is given, then
    the module ``relu`` unless it is False: torchvision's ``out = self.bn(
    self.conv(x)); out += identity; out = self.relu(out)``. ``residual`` (it
    comes with a ``relu``) is a function returning the residual array (the
    block's downsample of its input), so that it runs where torchvision
    runs it: after bn, on the layer-by-layer path.

    Eval mode, with ``relu`` a plain ReLU (or False): one convolution with
    bn folded into its packed weights, the residual and the ReLU applied as
    its tiles are stored. Otherwise (train mode, a user's own modules,
    shapes the fused path does not take) the modules are called in turn,
    with torch's errors."""
    plain_relu = relu is False or type(relu) is ReLU
    if runtime.fusion_enabled(conv, bn, relu) and plain_relu and _foldable(conv, bn, x) \
            and x.dtype == conv.weight.dtype:
        out_shape = _output_shape_if_it_runs(conv, x)
        if out_shape is not None:
            # (the convolution cannot fail now, so running the residual's
            # modules first changes no error and no side effect)
            identity = None if residual is None else residual()
            if identity is None or (type(identity) is np.ndarray and identity.dtype == x.dtype
                                    and identity.shape == out_shape):
                return conv._conv(x, fold=bn, relu=relu is not False, residual=identity)
            return _add_relu(bn(conv(x)), identity, layer, relu)
    out = conv(x)
    if residual is None:
        return bn(out) if relu is False else _bn_relu(bn, out, relu)
    out = bn(out)
    return _add_relu(out, residual(), layer, relu)

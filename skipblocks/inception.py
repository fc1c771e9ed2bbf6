"""GoogLeNet's Inception module, and SE inside it (the document's section
4.2 figure, left).

Structure, attribute names and state_dict keys are torchvision's
(torchvision.models.googlenet): four branches of BasicConv2d -- a
convolution without bias, BatchNorm2d(eps=0.001), ReLU -- whose outputs are
concatenated on channels. Like torchvision, ``branch3`` uses a 3x3 kernel
where the paper has 5x5 (torchvision keeps 3x3 for its published weights),
and ``branch4`` pools with MaxPool2d(3, stride=1, padding=1, ceil_mode=True).
"""
import numpy as np

from . import functional as F
from . import runtime
from .blocks import SEAttention, _bn_relu
from .hooks import has_hooks
from .containers import Sequential, _foldable
from .layers import BatchNorm2d, Conv2d, MaxPool2d, _check_factory_kwargs
from .module import Module, _compute_dtype

__all__ = ["BasicConv2d", "Inception", "SEInception"]


class BasicConv2d(Module):
    """torchvision's BasicConv2d: relu(bn(conv(x))) with ``conv`` =
    Conv2d(in_channels, out_channels, bias=False, **kwargs) and ``bn`` =
    BatchNorm2d(out_channels, eps=0.001). In eval mode the BatchNorm is
    folded into the convolution's weights and the ReLU applied as it stores
    its output. ``dtype`` (keyword-only): float32 (default) or float64."""

    def __init__(self, in_channels, out_channels, *, dtype=None, **kwargs):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs("BasicConv2d", None, dtype)
        self.conv = Conv2d(in_channels, out_channels, bias=False, dtype=dtype, **kwargs)
        self.bn = BatchNorm2d(out_channels, eps=0.001, dtype=dtype)

    def forward(self, x):
        return self._forward(x)

    def _forward(self, x, out=None):
        """forward, writing into ``out`` (a channel slice of the Inception
        module's output) when given."""
        conv, bn = self.conv, self.bn
        if type(x) is np.ndarray and runtime.fusion_enabled(conv, bn) and _foldable(conv, bn, x) \
                and x.dtype == conv.weight.dtype:
            return conv._conv(x, fold=bn, relu=True, out=out)
        y = _bn_relu(bn, conv(x))
        if out is None:
            return y
        out[...] = y
        return out


class Inception(Module):
    """torchvision's Inception module:
    cat([branch1(x), branch2(x), branch3(x), branch4(x)], dim=1) with

    - ``branch1``: BasicConv2d(in, ch1x1, 1x1);
    - ``branch2``: Sequential(BasicConv2d(in, ch3x3red, 1x1),
      BasicConv2d(ch3x3red, ch3x3, 3x3, padding 1));
    - ``branch3``: Sequential(BasicConv2d(in, ch5x5red, 1x1),
      BasicConv2d(ch5x5red, ch5x5, 3x3, padding 1)) -- 3x3, as torchvision;
    - ``branch4``: Sequential(MaxPool2d(3, stride=1, padding=1,
      ceil_mode=True), BasicConv2d(in, pool_proj, 1x1)).

    ``conv_block`` (torchvision's argument) replaces BasicConv2d: it is
    called as conv_block(in, out, kernel_size=..., padding=...). The output
    has ch1x1 + ch3x3 + ch5x5 + pool_proj channels and the input's size;
    each branch writes its channels straight into the output."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 conv_block=None, *, dtype=None):
        super().__init__()
        self._dtype = dtype = _check_factory_kwargs(type(self).__name__, None, dtype)
        if conv_block is None:
            def conv_block(cin, cout, **kwargs):
                return BasicConv2d(cin, cout, dtype=dtype, **kwargs)
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = Sequential(conv_block(in_channels, ch3x3red, kernel_size=1),
                                  conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = Sequential(conv_block(in_channels, ch5x5red, kernel_size=1),
                                  conv_block(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = Sequential(MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                  conv_block(in_channels, pool_proj, kernel_size=1))

    def _size_keeping_branches(self):
        """Each branch as (head, end) -- what runs before its last
        BasicConv2d (a module or None), and that BasicConv2d -- when every
        branch is still built as here and keeps the input's height and width
        (odd kernels, 'same' padding, stride 1; branch4's pool 3/1/1), so the
        four outputs can be written into slices of one array; else None."""
        def keeps_size(part):
            if type(part) is BasicConv2d:
                conv = part.conv
                return (type(conv) is Conv2d and conv.stride == (1, 1)
                        and conv.dilation == (1, 1) and conv.kernel_size[0] % 2 == 1
                        and conv.kernel_size[1] % 2 == 1 and conv.padding == tuple(
                            (k - 1) // 2 for k in conv.kernel_size))
            if type(part) is MaxPool2d:
                return (F.pair(part.kernel_size, "kernel_size", "MaxPool2d") == (3, 3)
                        and F.pair(part.stride, "stride", "MaxPool2d") == (1, 1)
                        and F.pair(part.padding, "padding", "MaxPool2d") == (1, 1)
                        and F.pair(part.dilation, "dilation", "MaxPool2d") == (1, 1))
            return False

        parts = []
        for branch in (self.branch1, self.branch2, self.branch3, self.branch4):
            if type(branch) is BasicConv2d:
                head, end = None, branch
            elif type(branch) is Sequential and len(branch) == 2:
                head, end = branch[0], branch[1]
            else:
                return None
            # a hook on a branch, or on its last BasicConv2d, must see its call
            if has_hooks(branch) or has_hooks(end) \
                    or not (keeps_size(end) and (head is None or keeps_size(head))):
                return None
            parts.append((head, end))
        return parts

    def forward(self, x):
        x = F.as_real(x, type(self).__name__, "input", _compute_dtype(self))
        return self._concat(x)

    def _concat(self, x):
        """torch.cat of the four branches. When they keep the input's size,
        each branch's last BasicConv2d writes its channels straight into
        their slice of one output array: the concatenation without the
        copy. The branches run in torch's order either way."""
        parts = self._size_keeping_branches() if x.ndim == 4 else None
        widths = None if parts is None else [end.conv.weight.shape[0] for _, end in parts]
        if parts is None or any(end.conv.weight.ndim != 4 or end.conv.weight.dtype != x.dtype
                                for _, end in parts):
            return F.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)],
                         1, _layer=type(self).__name__)
        n, _, height, width = x.shape
        out = np.empty((n, sum(widths), height, width), dtype=x.dtype)
        start = 0
        for (head, end), c in zip(parts, widths):
            end._forward(x if head is None else head(x), out=out[:, start:start + c])
            start += c
        return out


class SEInception(Inception):
    """Inception followed by ``se`` = SEAttention(ch1x1 + ch3x3 + ch5x5 +
    pool_proj, reduction) on the concatenation: each channel of the module's
    output is scaled by its squeeze-and-excitation weight."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 reduction=16, conv_block=None, *, dtype=None):
        super().__init__(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                         conv_block, dtype=dtype)
        self.se = SEAttention(ch1x1 + ch3x3 + ch5x5 + pool_proj, reduction,
                              dtype=self._dtype)

    def forward(self, x):
        return self.se(super().forward(x))

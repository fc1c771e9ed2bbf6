"""How far is torch's float64 from the exact result? The calibration of the
float64 column of tests/tolerances.py.

    python benchmarks/calibrate_float64.py

For each op of the tolerance table, at shapes like the tests' (and the
document's demos at the document's shapes), torch 2.13's float64 result is
compared with a reference computed in np.longdouble (x86-64: 80-bit extended
precision, 11 more mantissa bits than float64) by the plain formulas below,
from the same float64 inputs and weights. The metric is the tests' own
(skipblocks.reference.parity_error: max|x - ref| / max(1, max|ref|)); each
row is the largest over a few seeds. tests/tolerances.py's float64 bounds are
a small multiple of these numbers, as its float32 bounds are of torch
float32's distance from float64; the script prints the table's bound beside
each measurement and the headroom (bound / measured).

On a platform whose long double is plain double (ARM64 Linux has a 128-bit
long double in software; MSVC has none), the reference is no more precise
than float64 and the script says so.

A measurement, not a test.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from skipblocks.reference import document as doc  # noqa: E402
from skipblocks.reference import parity_error  # noqa: E402
from tolerances import tolerance  # noqa: E402

LD = np.longdouble


def ld(t):
    return (t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)).astype(LD)


# -- longdouble formulas ------------------------------------------------------
def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    s, p, d = (stride, stride) if np.isscalar(stride) else stride, \
        (padding, padding) if np.isscalar(padding) else padding, \
        (dilation, dilation) if np.isscalar(dilation) else dilation
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * p[0], wd + 2 * p[1]), LD)
    xp[:, :, p[0]:p[0] + h, p[1]:p[1] + wd] = x
    oh = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (wd + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    out = np.zeros((n, o, oh, ow), LD)
    og = o // groups
    for g in range(groups):
        cols = np.stack([xp[:, g * cg:(g + 1) * cg,
                            ky * d[0]:ky * d[0] + s[0] * (oh - 1) + 1:s[0],
                            kx * d[1]:kx * d[1] + s[1] * (ow - 1) + 1:s[1]]
                         for ky in range(kh) for kx in range(kw)], axis=2)  # n, cg, taps, oh, ow
        cols = cols.reshape(n, cg * kh * kw, oh * ow)
        wg = w[g * og:(g + 1) * og].reshape(og, cg * kh * kw)
        out[:, g * og:(g + 1) * og] = np.matmul(wg, cols).reshape(n, og, oh, ow)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def batch_norm(x, mean, var, weight, bias, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + LD(eps))
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def bn_module(m, x):
    if m.training:
        axes = (0,) + tuple(range(2, x.ndim))
        mean, var = x.mean(axes), x.var(axes)
    else:
        mean, var = ld(m.running_mean), ld(m.running_var)
    return batch_norm(x, mean, var, None if m.weight is None else ld(m.weight),
                      None if m.bias is None else ld(m.bias), m.eps)


def max_pool2d(x, k, s):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    return np.max(np.stack([x[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
                            for i in range(k) for j in range(k)]), axis=0)


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def forward(m, x):
    """The document's modules, in longdouble (eval or train, no state update)."""
    name = type(m).__name__
    if name == "Sequential":
        for child in m:
            x = forward(child, x)
        return x
    if name == "Conv2d":
        return conv2d(x, ld(m.weight), None if m.bias is None else ld(m.bias), m.stride,
                      m.padding, m.dilation, m.groups)
    if name == "BatchNorm2d":
        return bn_module(m, x)
    if name == "MaxPool2d":
        return max_pool2d(x, m.kernel_size, m.stride)
    if name == "ReLU":
        return relu(x)
    if name == "ResidualBlock":
        residual = x if m.downsample is None else forward(m.downsample, x)
        out = relu(bn_module(m.bn, forward(m.conv1, x)))
        return relu(bn_module(m.bn, forward(m.conv2, out)) + residual)
    if name == "Dense_Block":
        feats = [x]
        for layer in m.block.values():
            cat = np.concatenate(feats, axis=1)
            h = forward(layer.conv1, relu(bn_module(layer.bn1, cat)))
            feats.append(forward(layer.conv2, relu(bn_module(layer.bn2, h))))
        return np.concatenate(feats, axis=1)
    if name == "SEAttention":
        b, c = x.shape[:2]
        y = x.mean(axis=(2, 3))
        y = relu(y @ ld(m.fc[0].weight).T)
        y = sigmoid(y @ ld(m.fc[2].weight).T)
        return x * y.reshape(b, c, 1, 1)
    raise NotImplementedError(name)


# -- measurements ---------------------------------------------------------------
def worst(fn, seeds=3):
    return max(fn(torch.Generator().manual_seed(s)) for s in range(seeds))


def conv_case(n, c, o, hw, k, stride, pad):
    def one(g):
        x = torch.randn(n, c, hw, hw, generator=g, dtype=torch.float64)
        w = torch.randn(o, c, k, k, generator=g, dtype=torch.float64) / (c * k * k) ** 0.5
        b = torch.randn(o, generator=g, dtype=torch.float64)
        return parity_error(F.conv2d(x, w, b, stride, pad),
                            conv2d(ld(x), ld(w), ld(b), stride, pad))
    return worst(one), c * k * k


def linear_case(rows, i, o):
    def one(g):
        x = torch.randn(rows, i, generator=g, dtype=torch.float64)
        w = torch.randn(o, i, generator=g, dtype=torch.float64) / i ** 0.5
        return parity_error(F.linear(x, w), ld(x) @ ld(w).T)
    return worst(one), i


def bn_case(shape, training):
    def one(g):
        x = torch.randn(*shape, generator=g, dtype=torch.float64) * 2 + 0.3
        c = shape[1]
        rm, rv = torch.randn(c, generator=g, dtype=torch.float64) * 0.2, \
            torch.rand(c, generator=g, dtype=torch.float64) + 0.5
        w, b = torch.rand(c, generator=g, dtype=torch.float64) + 0.5, \
            torch.rand(c, generator=g, dtype=torch.float64) - 0.5
        got = F.batch_norm(x, rm.clone(), rv.clone(), w, b, training, 0.1, 1e-5)
        axes = (0, 2, 3)
        mean, var = (ld(x).mean(axes), ld(x).var(axes)) if training else (ld(rm), ld(rv))
        return parity_error(got, batch_norm(ld(x), mean, var, ld(w), ld(b), 1e-5))
    return worst(one)


def elementwise_case(op):
    def one(g):
        x = torch.randn(3, 17, 9, 11, generator=g, dtype=torch.float64) * 4
        if op == "sigmoid":
            return parity_error(torch.sigmoid(x), sigmoid(ld(x)))
        return parity_error(F.adaptive_avg_pool2d(x, 1), ld(x).mean(axis=(2, 3), keepdims=True))
    return worst(one)


def demo_case(name, training):
    def one(g):
        torch.manual_seed(int(torch.randint(0, 2 ** 31, (1,), generator=g)))
        m = doc.DOCUMENT_INPUTS[name]["builder"]().double()
        # non-trivial BatchNorm statistics, as the tests' randomize_ gives
        with torch.no_grad():
            for bn in m.modules():
                if isinstance(bn, torch.nn.BatchNorm2d):
                    bn.weight.uniform_(0.5, 1.5, generator=g)
                    bn.bias.uniform_(-0.5, 0.5, generator=g)
                    bn.running_mean.normal_(0, 0.2, generator=g)
                    bn.running_var.uniform_(0.5, 1.5, generator=g)
        m.train(training)
        x = doc.document_input(name, int(torch.randint(0, 1000, (1,), generator=g))).double()
        expected = forward(m, ld(x))
        with torch.no_grad():
            got = m(x)
        return parity_error(got, expected)
    return worst(one, seeds=2)


def main():
    print(f"np.longdouble: {np.finfo(LD).nmant + 1} mantissa bits (float64: 53); "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    if np.finfo(LD).nmant <= 52:
        print("long double is no wider than double here: the reference is not more precise")
    rows = []
    for n, c, o, hw, k, s, p in [(2, 3, 17, 11, 3, 2, 1), (1, 32, 8, 6, 3, 1, 1),
                                 (1, 64, 64, 25, 3, 1, 1), (1, 128, 128, 13, 3, 1, 1),
                                 (1, 3, 64, 100, 7, 2, 3), (1, 224, 128, 24, 1, 1, 0)]:
        err, fan_in = conv_case(n, c, o, hw, k, s, p)
        rows.append((f"conv2d {n}x{c}x{hw}x{hw} k{k} -> {o}", "conv2d", fan_in, err))
    for rows_, i, o in [(4, 12, 7), (50, 512, 64), (50, 64, 512), (3, 300, 3)]:
        err, fan_in = linear_case(rows_, i, o)
        rows.append((f"linear {rows_}x{i} -> {o}", "linear", fan_in, err))
    for training in (False, True):
        rows.append((f"batch_norm 3x5x4x3 {'train' if training else 'eval'}", "batch_norm", None,
                     bn_case((3, 5, 4, 3), training)))
        rows.append((f"batch_norm 2x17x24x24 {'train' if training else 'eval'}", "batch_norm",
                     None, bn_case((2, 17, 24, 24), training)))
    rows.append(("sigmoid 3x17x9x11", "sigmoid", None, elementwise_case("sigmoid")))
    rows.append(("adaptive_avg_pool2d(1) 3x17x9x11", "adaptive_avg_pool2d", None,
                 elementwise_case("pool")))
    for name, op in (("resnet", "resnet_demo"), ("densenet", "densenet_demo"), ("se", "se_demo")):
        for training in (False, True):
            rows.append((f"{name} demo {'train' if training else 'eval'}", op, None,
                         demo_case(name, training)))
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'torch f64 vs longdouble':>24}  {'table bound':>12}  "
          f"{'headroom':>9}")
    for label, op, fan_in, err in rows:
        bound = tolerance(op, fan_in, dtype="float64")
        head = f"{bound / err:9.1f}" if err > 0 else "     inf"
        print(f"{label.ljust(width)}  {err:24.2e}  {bound:12.1e}  {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The one table of parity bounds used by the whole test suite.

Metric, computed by ``skipblocks.reference.parity_error``::

    err = max|skipblocks - torch| / max(1, max|torch|)

Bounds are per op and tight.  They were calibrated against torch 2.13.0 (CPU)
itself: the listed bound is a small multiple (about 2-4x) of the difference
between torch's float32 result and the exact (float64) result at the shapes
the tests use, so an accurate float32 kernel passes and a kernel that drops a
term, mis-pads, or uses the wrong variance fails by orders of magnitude.

* ``0.0`` means bit-exact (``np.array_equal`` with NaN == NaN): relu, max-pool,
  concatenation and the channel copies they involve do no arithmetic that
  could round differently.
* Reductions (conv2d, linear) grow their rounding error like sqrt(fan-in);
  ``tolerance(op, fan_in=...)`` scales the bound by sqrt(fan_in / 256) above a
  fan-in of 256 (measured: torch's own conv error vs float64 is ~1e-6 at
  fan-in 1152 and ~2.4e-6 at fan-in 4608).
* The document's blocks are bounded at 1e-5 (2e-5 for the 5-layer ResNet
  stack with train-mode BatchNorm, whose torch-vs-float64 error alone is
  ~3e-6), far inside the issue's ceiling of 1e-4 -- ``ISSUE_BLOCK_BOUND``,
  which no entry may exceed (checked in ``test_tolerance_table_sane``).

float64 (``TOLERANCES_F64``, ``tolerance(op, fan_in, dtype="float64")``): the
same metric against torch's ``.double()`` result, calibrated the same way one
precision up -- a small multiple of torch float64's own distance from an
``np.longdouble`` reference at the test shapes, measured by
``benchmarks/calibrate_float64.py`` (which prints each bound beside the
measurement). The exact ops stay exact; the document's demos stay within
``F64_BLOCK_BOUND`` = 1e-12, the float64 issue's ceiling.
"""

import math

import numpy as np

# The issue's hard ceiling for the document's blocks.
ISSUE_BLOCK_BOUND = 1e-4

TOLERANCES = {
    # --- exact ops -------------------------------------------------------
    "relu": 0.0,
    "max_pool2d": 0.0,
    "cat": 0.0,
    # --- elementwise / small reductions ------------------------------------
    "sigmoid": 5e-7,               # torch vs float64: ~6e-8 (1 ulp)
    "adaptive_avg_pool2d": 1e-6,   # torch vs float64: ~1e-7
    "batch_norm": 1e-6,            # eval (running stats) and train (batch stats); torch vs f64 ~1e-7;
                                   # against the size of x * scale and shift (batch_norm_magnitude)
    "running_stats": 1e-6,         # running_mean / running_var after train-mode forwards
    # --- reductions over fan-in (scaled above fan-in 256) ----------------
    "conv2d": 2e-6,
    "linear": 2e-6,
    # --- the document's blocks (module level) ------------------------------
    "residual_block": 1e-5,
    "dense_layer": 1e-5,
    "dense_block": 1e-5,
    "se_attention": 1e-6,          # pool -> linear -> relu -> linear -> sigmoid -> scale; torch vs f64 ~1e-7
    "sequential": 1e-5,            # small hand-built Sequential stacks of the layers above
    "resnet_demo": 2e-5,
    "densenet_demo": 1e-5,
    "se_demo": 1e-6,
    # --- the document's other systems (benchmarks/calibrate_systems.py) -----
    "unet": 4e-4,                  # torch f32 vs f64: <= 2.7e-5 on Zen 5 (AVX-512) but 1.7e-4
                                   # on Zen 3 (AVX2), sb: <= 6.4e-5 (bilinear, train: BatchNorm
                                   # over 2 values per channel at the 1x1 bottleneck amplifies
                                   # every rounding); eval <= 3e-7
    "se_residual_block": 1e-6,     # torch f32 vs f64: <= 2.4e-7 (train), sb: <= 3.7e-7
    "inception": 4e-6,             # torch f32 vs f64: <= 1.4e-6 (inception3a), sb: <= 1.4e-6
    "se_inception": 4e-6,          # the same, the SE scale adds ~nothing
    "unet_running_stats": 1e-5,    # torch f32 vs f64: <= 1.3e-6, sb: <= 3.3e-6
    # conv_transpose2d: measured worst 1.2e-7 over tests/ops/test_conv_transpose2d.py's sweep
    # (fan-in up to 256 per tap, U-Net's k=2 s=2 at 256 -> 128 channels; its GEMM is a 1x1
    # convolution, summed in K blocks of 128)
    "conv_transpose2d": 1e-6,
    # pad and dropout: a copy, and x * (1 / (1 - p)) rounded as torch's (given the mask)
    "pad": 0.0,
    "dropout": 0.0,
    # --- avg_pool2d and interpolate ----------------------------------------
    "avg_pool2d": 0.0,             # torch's sum order and divisor: bit-exact
    "interpolate_nearest": 0.0,    # an index copy
    "interpolate_bilinear": 2e-5,  # times max(1, max|x|); sb vs torch <= 8.2e-6, torch f32 vs
                                   # f64 itself <= 1.9e-5 (its float scale and index weights;
                                   # maps up to 200x200, scale 1.99)
}

# float64: torch float64 vs longdouble (benchmarks/calibrate_float64.py,
# largest of 3 seeds): ~1.1e-16 sigmoid, ~1.7e-16 global average pool,
# 4e-16..2e-15 conv2d (fan-in 27..576; 3.8e-15 at 1152, within the sqrt
# scaling) and linear, up to 1.3e-15 BatchNorm (train, 2x17x24x24), and for
# the demos 9e-16 / 6.4e-15 (ResNet eval / train), 7e-16 / 2.1e-15
# (DenseNet), 1.7e-16 (SE).
F64_BLOCK_BOUND = 1e-12

TOLERANCES_F64 = {
    "relu": 0.0,
    "max_pool2d": 0.0,
    "cat": 0.0,
    "sigmoid": 1e-15,
    "adaptive_avg_pool2d": 1e-15,
    "batch_norm": 4e-15,
    "running_stats": 4e-15,
    "conv2d": 6e-15,
    "linear": 6e-15,
    "residual_block": 2e-14,
    "dense_layer": 2e-14,
    "dense_block": 2e-14,
    "se_attention": 4e-15,
    "sequential": 2e-14,
    "resnet_demo": 4e-14,
    "densenet_demo": 2e-14,
    "se_demo": 4e-15,
    "unet": 1e-12,                 # sb f64 vs torch f64: <= 2.6e-13 (train), <= 4.5e-16 (eval)
    "se_residual_block": 4e-15,    # sb f64 vs torch f64: <= 1.1e-15
    "inception": 8e-15,            # <= 2.3e-15
    "se_inception": 8e-15,         # <= 2.5e-15
    "unet_running_stats": 4e-14,   # <= 7.8e-15
    # conv_transpose2d: measured worst 1.1e-15 over the same sweep
    "conv_transpose2d": 4e-15,
    # pad and dropout: exact, as in float32
    "pad": 0.0,
    "dropout": 0.0,
    # avg_pool2d and interpolate
    "avg_pool2d": 0.0,
    "interpolate_nearest": 0.0,
    "interpolate_bilinear": 4e-14,  # times max(1, max|x|); measured <= 1.5e-14
}

# --- whole networks (skipblocks.models; benchmarks/calibrate_systems.py --networks) ---
# One entry per network bounds its outputs and its running statistics, in
# train and eval mode, at the tests' 2x3x64x64 (and 2x3x224x224 for one per
# family), with the tests' weights (helpers.randomize_network_). Each bound
# is about 4x the worst of torch f32 vs f64 and sb vs torch over 3 seeds,
# measured on Zen 3 (AVX2); the worst is always train mode at 64x64, whose
# last stages normalise over a few values per channel.
NETWORK_TOLERANCES = {            # measured worst (f32)
    "resnet18": 1e-5,             # 1.4e-6
    "resnet34": 1e-5,             # 1.8e-6
    "resnet50": 2e-5,             # 4.8e-6
    "resnet101": 1e-4,            # 1.4e-5
    "resnet152": 2e-4,            # 3.1e-5
    "densenet121": 5e-5,          # 1.1e-5
    "densenet161": 1e-4,          # 1.3e-5
    "densenet169": 1e-4,          # 1.3e-5
    "densenet201": 1e-4,          # 1.4e-5
    "googlenet": 2e-4,            # 3.1e-5 (torch f32 vs f64 itself 2.9e-5)
    "se_resnet50": 1e-5,          # 2.2e-6
    "se_resnet101": 2e-5,         # 3.3e-6
}
NETWORK_TOLERANCES_F64 = {        # measured worst (f64, sb vs torch)
    "resnet18": 2e-14,            # 2.8e-15
    "resnet34": 2e-14,            # 3.7e-15
    "resnet50": 5e-14,            # 1.2e-14
    "resnet101": 2e-13,           # 2.9e-14
    "resnet152": 3e-13,           # 6.6e-14
    "densenet121": 1e-13,         # 1.9e-14
    "densenet161": 2e-13,         # 3.6e-14
    "densenet169": 2e-13,         # 2.9e-14
    "densenet201": 2e-13,         # 3.2e-14
    "googlenet": 3e-13,           # 6.1e-14
    "se_resnet50": 2e-14,         # 4.5e-15
    "se_resnet101": 5e-14,        # 8.9e-15
}
TOLERANCES.update(NETWORK_TOLERANCES)
TOLERANCES_F64.update(NETWORK_TOLERANCES_F64)

# Whole networks (U-Net and skipblocks.models; the networks issue's ceiling):
# their train-mode BatchNorms over a few values per channel at the bottleneck
# amplify rounding.
NETWORK_BOUND = 1e-3
NETWORK_OPS = ("unet",) + tuple(NETWORK_TOLERANCES)

# The output of one layer inside a model (what a forward hook sees), against
# torch's, as a multiple of the model's tolerance above: the model's own bound
# is on its output, where global pooling and the classifier average the
# per-pixel rounding; a train-mode BatchNorm deep inside normalises over a
# few values per channel and shows it undamped. Measured at 2x3x64x64,
# every module hooked: worst 1.24x (resnet50 train, layer4.0.bn2 2.5e-5),
# 1.04x (se_resnet50 train); eval and the document's demos within 1x.
INNER_LAYER_FACTOR = 2

# Entries that are the document's blocks / demos (must stay <= ISSUE_BLOCK_BOUND).
BLOCK_OPS = ("residual_block", "dense_layer", "dense_block", "se_attention", "sequential",
             "resnet_demo", "densenet_demo", "se_demo")

_FAN_IN_SCALED = ("conv2d", "linear")
_FAN_IN_BASE = 256


def tolerance(op, fan_in=None, dtype="float32"):
    """Bound for ``op`` in ``dtype`` ("float32" or "float64", or a NumPy
    dtype); for conv2d/linear pass ``fan_in`` = C_in/groups * kh * kw (or
    in_features) to get the sqrt-scaled bound for long reductions."""
    tol = (TOLERANCES_F64 if str(np.dtype(dtype)) == "float64" else TOLERANCES)[op]
    if op in _FAN_IN_SCALED and fan_in is not None and fan_in > _FAN_IN_BASE:
        tol *= math.sqrt(fan_in / _FAN_IN_BASE)
    return tol

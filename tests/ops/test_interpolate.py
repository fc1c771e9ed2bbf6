"""interpolate / Upsample ('nearest', 'bilinear') against torch: parity
sweeps (nearest exact, bilinear within its tolerance), torch's scale-factor
semantics, errors computed from torch at test time, threads, repr."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import skipblocks as sb
from tolerances import tolerance

NEAREST = [dict(scale_factor=2), dict(scale_factor=1.7), dict(scale_factor=2.1),
           dict(scale_factor=0.6), dict(scale_factor=(2.1, 1.3)), dict(scale_factor=(1.3, 2.1)),
           dict(size=(14, 18)), dict(size=(8, 8)), dict(size=(5, 3)),
           dict(scale_factor=1.7, recompute_scale_factor=True), dict(scale_factor=3),
           # sizes kept by a scale: torch's generic kernel (oh + ow > 128) still
           # scales, its small-output one copies
           dict(scale_factor=1.01), dict(scale_factor=(1.1, 1.0))]
BILINEAR = [dict(scale_factor=2, align_corners=True), dict(scale_factor=2),
            dict(scale_factor=1.7), dict(size=(8, 11)), dict(size=(8, 11), align_corners=True),
            dict(scale_factor=0.6), dict(size=(3, 1)), dict(size=(1, 1), align_corners=True),
            dict(scale_factor=(2.5, 0.7)), dict(scale_factor=(2.5, 0.7), align_corners=True),
            dict(scale_factor=1.7, recompute_scale_factor=True)]
# (1, 2, 70, 70) and (1, 1, 100, 131): outputs with oh + ow > 128, torch's generic kernels
SHAPES = [(1, 1, 5, 5), (2, 3, 7, 9), (1, 4, 70, 9), (1, 2, 7, 80), (0, 2, 6, 6),
          (1, 2, 70, 70), (1, 1, 100, 131)]


def _check(got, expected, x, op, dtype):
    assert got.shape == expected.shape and got.dtype == x.dtype
    bound = tolerance(op, dtype=dtype) * max(1.0, float(np.abs(x).max(initial=0)))
    if bound == 0:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=bound)


@pytest.mark.parametrize("config", NEAREST)
@pytest.mark.parametrize("shape", SHAPES)
def test_nearest_2d(config, shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    before = x.copy()
    expected = F.interpolate(torch.from_numpy(x), **config).numpy()
    _check(sb.functional.interpolate(x, **config), expected, x, "interpolate_nearest", dtype)
    _check(sb.Upsample(**config)(x), expected, x, "interpolate_nearest", dtype)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("config", [dict(scale_factor=2), dict(scale_factor=2.1),
                                    dict(size=7), dict(scale_factor=0.5), dict(size=(13,)),
                                    dict(scale_factor=1.01), dict(scale_factor=1.1)])
@pytest.mark.parametrize("shape", [(1, 1, 5), (2, 300, 7), (3, 2, 11)])
def test_nearest_1d(config, shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    _check(sb.functional.interpolate(x, **config),
           F.interpolate(torch.from_numpy(x), **config).numpy(), x, "interpolate_nearest", dtype)


@pytest.mark.parametrize("config", BILINEAR)
@pytest.mark.parametrize("shape", SHAPES + [(2, 5, 5, 13), (1, 3, 2, 6)])
def test_bilinear(config, shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    before = x.copy()
    expected = F.interpolate(torch.from_numpy(x), mode="bilinear", **config).numpy()
    _check(sb.functional.interpolate(x, mode="bilinear", **config), expected, x,
           "interpolate_bilinear", dtype)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("shape", [(2, 512, 16, 16), (1, 64, 128, 128), (1, 16, 33, 17),
                                   (3, 5, 31, 64)])
def test_unet_upsample(shape, dtype, rng, restore_threads):
    x = rng.standard_normal(shape).astype(dtype)
    layer = sb.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    expected = torch.nn.Upsample(scale_factor=2, mode="bilinear",
                                 align_corners=True)(torch.from_numpy(x)).numpy()
    sb.set_num_threads(1)
    one = layer(x)
    sb.set_num_threads(2)
    two = layer(x)
    _check(one, expected, x, "interpolate_bilinear", dtype)
    np.testing.assert_array_equal(one, two)


def test_scale_and_size_differ_as_torch(dtype):
    # 5 -> 8 with scale 1.7 (the kernel uses 1/1.7) vs size 8 (uses 5/8)
    x = np.arange(5, dtype=dtype).reshape(1, 1, 1, 5)
    for mode in ("nearest", "bilinear"):
        a = sb.functional.interpolate(x, scale_factor=(1, 1.7), mode=mode)
        b = sb.functional.interpolate(x, size=(1, 8), mode=mode)
        ta = F.interpolate(torch.from_numpy(x), scale_factor=(1, 1.7), mode=mode).numpy()
        tb = F.interpolate(torch.from_numpy(x), size=(1, 8), mode=mode).numpy()
        assert not np.array_equal(ta, tb) and not np.array_equal(a, b)
        _check(a, ta, x, "interpolate_" + mode, dtype)
        _check(b, tb, x, "interpolate_" + mode, dtype)


def test_non_contiguous(dtype, rng):
    base = rng.standard_normal((2, 6, 9, 10)).astype(dtype)
    for x in (base[:, ::2], base.transpose(0, 1, 3, 2), np.asfortranarray(base)):
        for mode in ("nearest", "bilinear"):
            expected = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)),
                                     scale_factor=1.5, mode=mode).numpy()
            _check(sb.functional.interpolate(x, scale_factor=1.5, mode=mode), expected, x,
                   "interpolate_" + mode, dtype)


ERRORS = [
    ((1, 1, 4, 5), dict(size=(2, 3), align_corners=True)),
    ((1, 1, 4, 5), dict(size=(2, 3), mode="area", align_corners=False)),
    ((1, 1, 4, 5), dict(size=(2, 3), scale_factor=2)),
    ((1, 1, 4, 5), dict()),
    ((1, 1, 4, 5), dict(size=(2, 3, 4))),
    ((1, 1, 4, 5), dict(scale_factor=(2, 3, 4))),
    ((1, 1, 4, 5), dict(size=(2.0, 3))),
    ((1, 1, 4, 5), dict(size=(2, 3), recompute_scale_factor=True)),
    ((1, 1, 4, 5), dict(size=(2, 3), antialias=True)),
    ((1, 1, 4, 5), dict(size=(0, 3))),
    ((1, 1, 4, 5), dict(size=(-1, 3))),
    ((1, 1, 4, 5), dict(scale_factor=0.1)),
    ((1, 1, 4, 5), dict(scale_factor=0.1, mode="bilinear")),
    ((1, 1, 0, 5), dict(size=(2, 3))),
    ((1, 0, 4, 5), dict(size=(2, 3))),
    ((1, 0, 4, 5), dict(size=(2, 3), mode="bilinear")),
    ((1, 0, 5), dict(size=3)),
    ((1, 2, 5), dict(size=0)),
    ((1, 2, 0), dict(size=3)),
    ((1, 2, 5), dict(size=3, mode="bilinear")),
    ((1, 2, 5, 5), dict(size=3, mode="linear")),
    ((1, 2, 5, 5, 5), dict(size=3, mode="bilinear")),
    ((4, 5), dict(size=(2,))),
    ((4, 5), dict(size=2, mode="bilinear")),
    ((1, 2, 5, 5), dict(size=3, mode="foo")),
    ((1, 2, 5, 5), dict(size=3, mode="lanczos")),
    ((1, 2, 5, 5), dict(size=3, mode="nearest", antialias=True)),
]


@pytest.mark.parametrize("shape,config", ERRORS)
def test_errors_match_torch(shape, config):
    x = np.zeros(shape, np.float32)
    with pytest.raises(Exception) as want:
        F.interpolate(torch.from_numpy(x), **config)
    with pytest.raises(type(want.value)) as got:
        sb.functional.interpolate(x, **config)
    assert str(got.value) == f"interpolate: {want.value}"


@pytest.mark.parametrize("shape,config", [
    ((1, 1, 4, 5), dict(size=(2, 3), mode="bilinear", antialias=True)),
    ((1, 1, 4, 5), dict(size=(2, 3), mode="bicubic")),
    ((1, 1, 4, 5), dict(size=(2, 3), mode="nearest-exact")),
    ((1, 1, 4, 5), dict(size=(2, 3), mode="area")),
    ((1, 1, 5), dict(size=3, mode="linear")),
    ((1, 1, 2, 4, 5), dict(size=(2, 2, 3), mode="trilinear")),
    ((1, 1, 2, 4, 5), dict(size=(2, 2, 3))),
])
def test_not_implemented_names_mode(shape, config):
    x = np.zeros(shape, np.float32)
    F.interpolate(torch.from_numpy(x), **config)  # torch computes these
    with pytest.raises(NotImplementedError, match="skipblocks") as got:
        sb.functional.interpolate(x, **config)
    if "antialias" not in config:
        assert repr(config.get("mode", "nearest")) in str(got.value)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(scale_factor=2, mode="bilinear",
                                                               align_corners=True),
                                    dict(size=(3, 4)), dict(size=5, mode="bilinear"),
                                    dict(scale_factor=(2, 1.5)), dict(scale_factor=0)])
def test_upsample_repr_attributes(kwargs):
    ours, theirs = sb.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    assert repr(ours) == repr(theirs)
    for name in ("name", "size", "scale_factor", "mode", "align_corners",
                 "recompute_scale_factor"):
        assert getattr(ours, name) == getattr(theirs, name)
    assert type(ours.scale_factor) is type(theirs.scale_factor)
    assert ours.state_dict() == {}


def test_exports():
    assert "Upsample" in sb.__all__ and "interpolate" in sb.functional.__all__


@pytest.mark.parametrize("kwargs", [dict(scale_factor=float("nan")), dict(scale_factor=float("inf")),
                                    dict(scale_factor=float("nan"), recompute_scale_factor=True),
                                    dict(scale_factor=float("inf"), recompute_scale_factor=True),
                                    dict(size=3.5)])
def test_sizes_torch_refuses(kwargs):
    """A non-finite scale (torch's int64 conversion, or Python's int() when
    recomputed) and a fractional size raise torch's exception types; the
    scale's message is torch's too."""
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(Exception) as theirs:
        F.interpolate(torch.from_numpy(x), **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        sb.functional.interpolate(x, **kwargs)
    if "size" not in kwargs:
        assert str(ours.value) in (str(theirs.value), "interpolate: " + str(theirs.value))

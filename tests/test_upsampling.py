"""Upsample, UpsamplingNearest2d, UpsamplingBilinear2d and F.interpolate against torch."""
import numpy as np
import pytest
import torch

import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

CASES = [
    (dict(scale_factor=2), (2, 3, 4, 5)),
    (dict(size=(7, 11)), (2, 3, 4, 5)),
    (dict(scale_factor=1.7), (1, 2, 5, 6)),
    (dict(size=(3, 2)), (1, 2, 7, 5)),  # nearest downsampling: some inputs get no gradient
    (dict(scale_factor=(0.6, 2.3), mode="nearest-exact"), (1, 2, 5, 7)),
    (dict(scale_factor=3, mode="linear"), (2, 3, 5)),
    (dict(size=9, mode="linear", align_corners=True), (2, 3, 5)),
    (dict(size=(9, 4), mode="bilinear"), (1, 2, 5, 7)),
    (dict(scale_factor=2.5, mode="bilinear", align_corners=True), (1, 2, 3, 4)),
    (dict(scale_factor=2.5, mode="bilinear", recompute_scale_factor=True), (1, 2, 3, 4)),
    (dict(size=(4, 5, 3), mode="trilinear"), (1, 2, 3, 3, 4)),
    (dict(scale_factor=(2, 1, 0.5)), (1, 2, 2, 3, 4)),
    (dict(size=(4, 3), mode="area"), (1, 2, 9, 7)),
    (dict(scale_factor=2, mode="nearest"), (2, 3, 6)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs, shape", CASES, ids=lambda c: str(c))
def test_upsample_parity(kwargs, shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape)
    check_parity(nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs), x, dtype=dtype)


@pytest.mark.parametrize("name, kwargs", [
    ("UpsamplingNearest2d", dict(scale_factor=2)), ("UpsamplingNearest2d", dict(size=(5, 9))),
    ("UpsamplingBilinear2d", dict(scale_factor=2)), ("UpsamplingBilinear2d", dict(size=(6, 3))),
])
def test_upsampling2d_parity(name, kwargs):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    check_parity(getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), x, dtype=np.float32)
    assert repr(getattr(nn, name)(**kwargs)) == repr(getattr(torch.nn, name)(**kwargs))


@pytest.mark.parametrize("kwargs, shape", [
    (dict(scale_factor=2), (1, 2, 3, 3)), (dict(size=(5, 4), mode="bilinear"), (1, 2, 3, 3)),
    (dict(size=5, mode="linear", align_corners=True), (2, 2, 3)), (dict(size=(3, 2), mode="area"), (1, 1, 5, 4)),
])
def test_gradcheck(kwargs, shape):
    assert gradcheck(nn.Upsample(**kwargs).double(), np.random.default_rng(2).standard_normal(shape))


@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2), dict(size=(3, 4), mode="bilinear"), dict(scale_factor=(2, 3)), dict(size=5, mode="area"),
])
def test_repr_matches_torch(kwargs):
    assert repr(nn.Upsample(**kwargs)) == repr(torch.nn.Upsample(**kwargs))


def test_errors():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"^Upsample\(size=None, mode='nearest'\): either size or scale_factor"):
        nn.Upsample()(x)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating modes"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="but linear mode needs 3D input"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match=r"^UpsamplingNearest2d.*expected input \(N, C, H, W\)"):
        nn.UpsamplingNearest2d(scale_factor=2)(np.zeros((1, 2, 3)))

"""Bicubic Upsample / F.interpolate, and antialias=True (bilinear, bicubic), against torch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import assert_close, check_parity

SIZE_CASES = [
    (dict(size=(7, 11)), (2, 3, 4, 5)),
    (dict(size=(3, 2)), (1, 2, 7, 5)),
    (dict(size=(1, 1)), (1, 2, 5, 4)),  # 1-pixel output
    (dict(size=(4, 6)), (1, 2, 1, 1)),  # 1-pixel input
    (dict(size=(1, 5)), (1, 2, 1, 3)),
    (dict(size=5), (1, 1, 3, 8)),
]
SCALES = [2, 3, 1.7, 0.6, (2, 0.5), (1.1, 0.9)]  # (1.1, 0.9) keeps both sizes: the scale still moves the samples
SCALE_SHAPES = {2: (2, 3, 4, 5), 3: (1, 2, 3, 2), 1.7: (1, 2, 5, 6), 0.6: (1, 2, 7, 9), (2, 0.5): (1, 2, 5, 8),
                (1.1, 0.9): (1, 2, 5, 8)}
CASES = SIZE_CASES + [(dict(scale_factor=s, recompute_scale_factor=r), SCALE_SHAPES[s])
                      for s in SCALES for r in (None, False, True)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("kwargs, shape", CASES, ids=lambda c: str(c))
def test_upsample_bicubic_parity(kwargs, shape, align_corners, dtype):
    kwargs = dict(kwargs, mode="bicubic", align_corners=align_corners)
    x = np.random.default_rng(0).standard_normal(shape)
    check_parity(nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs), x, dtype=dtype)


def interpolate_parity(x, dtype, **kwargs):
    """F.interpolate and interpolate_backward against torch's output and input gradient."""
    x = x.astype(dtype)
    y, ctx = F.interpolate(x, **kwargs, return_context=True)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = TF.interpolate(tx, **kwargs)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    assert y.dtype == dtype
    assert_close(y, ty.detach().numpy(), dtype, "output")
    dx = F.interpolate_backward(g, ctx)
    assert dx.dtype == dtype
    assert_close(dx, tx.grad.numpy(), dtype, "grad of input")


AA_CASES = [
    (dict(size=(5, 3)), (1, 2, 11, 7)),
    (dict(size=(9, 11)), (1, 2, 4, 5)),
    (dict(size=(1, 1)), (1, 2, 6, 5)),
    (dict(size=(2, 3)), (2, 1, 9, 13)),
    (dict(scale_factor=0.6), (1, 2, 7, 9)),
    (dict(scale_factor=(2, 0.5)), (1, 2, 5, 8)),
    (dict(scale_factor=0.3, recompute_scale_factor=True), (1, 2, 10, 11)),
    (dict(scale_factor=(0.25, 1.7), recompute_scale_factor=False), (1, 1, 12, 4)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("kwargs, shape", AA_CASES, ids=lambda c: str(c))
def test_antialias_parity(kwargs, shape, mode, align_corners, dtype):
    x = np.random.default_rng(0).standard_normal(shape)
    interpolate_parity(x, dtype, mode=mode, align_corners=align_corners, antialias=True, **kwargs)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialias_width_one(mode):
    # torch 2.13's antialiased CPU forward repeats one row when the output width is 1 and the
    # height changes; resizing the height first, then the width, gives the true result, which
    # torch's backward also differentiates.
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 5))
    kwargs = dict(mode=mode, antialias=True)
    y, ctx = F.interpolate(x, size=(11, 1), return_context=True, **kwargs)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    expected = TF.interpolate(TF.interpolate(tx, size=(11, 5), **kwargs), size=(11, 1), **kwargs)
    assert_close(y, expected.detach().numpy(), np.float64, "output")
    g = np.random.default_rng(4).standard_normal(y.shape)
    TF.interpolate(tx, size=(11, 1), **kwargs).backward(torch.from_numpy(g))
    assert_close(F.interpolate_backward(g, ctx), tx.grad.numpy(), np.float64, "grad of input")


class Interpolate(nn.Module):
    """F.interpolate as a module, for gradcheck of options nn.Upsample lacks (antialias)."""

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, x):
        y, ctx = F.interpolate(x, **self.kwargs, return_context=True)
        self.save_for_backward(ctx)
        return y

    def backward(self, grad_output):
        (ctx,) = self.pop_saved()
        return F.interpolate_backward(grad_output, ctx)


@pytest.mark.parametrize("kwargs, shape", [
    (dict(size=(5, 4)), (1, 2, 3, 3)),
    (dict(size=(2, 5), align_corners=True), (1, 1, 4, 3)),
    (dict(scale_factor=0.6), (2, 1, 5, 5)),
    (dict(size=(1, 3)), (1, 1, 1, 2)),
])
def test_gradcheck_bicubic(kwargs, shape):
    assert gradcheck(nn.Upsample(mode="bicubic", **kwargs).double(), np.random.default_rng(2).standard_normal(shape))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("kwargs", [dict(size=(2, 5)), dict(size=(3, 1))])
def test_gradcheck_antialias(kwargs, mode):
    x = np.random.default_rng(2).standard_normal((1, 1, 6, 3))
    assert gradcheck(Interpolate(mode=mode, antialias=True, **kwargs), x)


def test_antialias_unchanged_axis():
    # scale_factor 1.1 keeps the height at 5: torch's forward leaves that axis alone (its
    # backward applies the 1/1.1 step anyway); ours is that forward and its true gradient
    x = np.random.default_rng(5).standard_normal((1, 2, 5, 8))
    kwargs = dict(scale_factor=(1.1, 0.5), mode="bicubic", antialias=True)
    expected = TF.interpolate(torch.from_numpy(x), **kwargs).numpy()
    assert_close(F.interpolate(x, **kwargs), expected, np.float64, "output")
    assert gradcheck(Interpolate(**kwargs), x)
    y = F.interpolate(x, size=(5, 8), mode="bicubic", antialias=True)
    assert np.array_equal(y, x) and y is not x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_functional_bicubic_parity(dtype):
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 6))
    interpolate_parity(x, dtype, scale_factor=(1.5, 0.7), mode="bicubic")


def test_repr_matches_torch():
    for kwargs in (dict(scale_factor=2, mode="bicubic"), dict(size=(3, 4), mode="bicubic", align_corners=True)):
        assert repr(nn.Upsample(**kwargs)) == repr(torch.nn.Upsample(**kwargs))


def test_errors():
    with pytest.raises(ValueError, match=r"^interpolate: got 3D input, but bicubic mode needs 4D input"):
        F.interpolate(np.zeros((2, 4, 4)), scale_factor=2, mode="bicubic")
    with pytest.raises(NotImplementedError):  # torch takes no unbatched (C, H, W) input for bicubic either
        TF.interpolate(torch.zeros(2, 4, 4), scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"^interpolate: got 5D input, but bicubic mode needs 4D input"):
        F.interpolate(np.zeros((1, 1, 2, 4, 4)), scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"^Upsample\(scale_factor=2\.0, mode='bicubic'\): got 3D input, but "
                                         r"bicubic mode needs 4D input"):
        nn.Upsample(scale_factor=2, mode="bicubic")(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"^Upsample\(scale_factor=2\.0, mode='bicubic'\): expected input"):
        nn.Upsample(scale_factor=2, mode="bicubic")(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="anti-alias option is restricted to bilinear and bicubic modes"):
        F.interpolate(np.zeros((1, 1, 4, 4)), scale_factor=2, mode="nearest", antialias=True)
    with pytest.raises(ValueError, match="requires a 4-D tensor as input"):
        F.interpolate(np.zeros((1, 1, 4)), scale_factor=2, mode="linear", antialias=True)
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful with an explicit size"):
        F.interpolate(np.zeros((1, 1, 4, 4)), size=3, mode="bicubic", recompute_scale_factor=True)

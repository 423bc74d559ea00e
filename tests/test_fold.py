"""Unfold (im2col) and Fold (col2im) against PyTorch: outputs and gradients over kernel sizes, dilation,
padding, stride (ints and pairs), batched and unbatched; their adjointness; gradchecks; reprs; errors."""
import numpy as np
import pytest
import torch

import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

DTYPES = [np.float64, np.float32]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# (kwargs, input shape)
CASES = [
    (dict(kernel_size=2), (2, 3, 4, 5)),
    (dict(kernel_size=3, padding=1), (1, 2, 5, 5)),
    (dict(kernel_size=(2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1)), (2, 2, 6, 7)),
    (dict(kernel_size=3, dilation=2, stride=2), (2, 1, 7, 8)),
    (dict(kernel_size=(1, 1)), (2, 3, 2, 3)),
    (dict(kernel_size=(3, 2), padding=2, stride=(3, 2)), (1, 2, 4, 3)),
    (dict(kernel_size=2, stride=2), (3, 4, 6)),                      # unbatched
    (dict(kernel_size=(2, 2), dilation=(2, 1), padding=1), (2, 5, 4)),  # unbatched
]
IDS = [f"{kw}-{shape}" for kw, shape in CASES]


def blocks(kw, shape):
    return torch.nn.functional.unfold(torch.zeros(shape), **kw).shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw,shape", CASES, ids=IDS)
def test_unfold_parity(kw, shape, dtype):
    out = check_parity(nn.Unfold(**kw), torch.nn.Unfold(**kw), rand(*shape), dtype=dtype)
    assert out.dtype == dtype and out.flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw,shape", CASES, ids=IDS)
def test_fold_parity(kw, shape, dtype):
    cols = rand(*blocks(kw, shape), seed=1)
    size = shape[-1] if shape[-1] == shape[-2] else shape[-2:]  # an int for square outputs
    out = check_parity(nn.Fold(size, **kw), torch.nn.Fold(size, **kw), cols, dtype=dtype)
    assert out.shape == shape and out.dtype == dtype


@pytest.mark.parametrize("kw,shape", CASES[:4], ids=IDS[:4])
def test_functional_forms_and_adjointness(kw, shape):
    x = rand(*shape)
    cols = F.unfold(x, **kw)
    np.testing.assert_allclose(cols, torch.nn.functional.unfold(torch.from_numpy(x), **kw).numpy(), rtol=1e-12)
    g = rand(*cols.shape, seed=2)
    # <unfold(x), g> == <x, fold(g)>: each is the other's backward
    np.testing.assert_allclose(np.sum(cols * g), np.sum(x * F.unfold_backward(g, x.shape, **kw)), rtol=1e-12)
    np.testing.assert_allclose(F.unfold_backward(g, x.shape, **kw), F.fold(g, shape[-2:], **kw), rtol=0)
    np.testing.assert_allclose(F.fold_backward(x, **kw), cols, rtol=0)
    ref = torch.nn.functional.fold(torch.from_numpy(g), shape[-2:], **kw).numpy()
    np.testing.assert_allclose(F.fold(g, shape[-2:], **kw), ref, rtol=1e-12)


def test_unfold_output_is_a_copy():
    x = rand(1, 2, 3, 3)
    F.unfold(x, 1)[...] = 0
    np.testing.assert_array_equal(x, rand(1, 2, 3, 3))


def test_gradcheck():
    assert gradcheck(nn.Unfold((2, 3), dilation=(2, 1), padding=1, stride=(1, 2)).double(), rand(2, 2, 5, 5))
    assert gradcheck(nn.Fold((5, 4), 2, padding=1, stride=2).double(), rand(2, 8, 9))


def test_reprs_match_torch():
    for args, kw in [((3,), {}), (((2, 3),), dict(dilation=(1, 2), padding=1, stride=(2, 1)))]:
        assert repr(nn.Unfold(*args, **kw)) == repr(torch.nn.Unfold(*args, **kw))
        assert repr(nn.Fold(4, *args, **kw)) == repr(torch.nn.Fold(4, *args, **kw))
        assert repr(nn.Fold((5, 6), *args, **kw)) == repr(torch.nn.Fold((5, 6), *args, **kw))


def test_errors_name_the_module():
    u = nn.Unfold(3)
    prefix = r"^Unfold\(kernel_size=3, dilation=1, padding=0, stride=1\): "
    with pytest.raises(ValueError, match=prefix + r"given input with spatial size \(2, 2\), kernel_size=\(3, 3\), "
                                                  r"dilation=\(1, 1\), padding=\(0, 0\), stride=\(1, 1\), calculated "
                                                  r"shape of the array of sliding blocks as \(0, 0\)"):
        u(rand(1, 2, 2, 2))
    with pytest.raises(ValueError, match=prefix + r"expected input \(N, C, H, W\) or \(C, H, W\)"):
        u(rand(5, 5))
    with pytest.raises(ValueError, match=r"^Unfold\(kernel_size=2, dilation=1, padding=-1, stride=1\): padding "
                                         r"should be non-negative, but got padding=\(-1, -1\)"):
        nn.Unfold(2, padding=-1)(rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"stride should be greater than zero, but got stride=\(0, 0\)"):
        F.unfold(rand(1, 1, 4, 4), 2, stride=0)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a tuple of 2 ints, got \(1, 2, 3\)"):
        F.unfold(rand(1, 1, 4, 4), (1, 2, 3))
    fold = nn.Fold((4, 4), 2)
    prefix = r"^Fold\(output_size=\(4, 4\), kernel_size=2, dilation=1, padding=0, stride=1\): "
    with pytest.raises(ValueError, match=prefix + r"expected size of input's dimension -2 to be divisible by the "
                                                  r"product of kernel_size \(2, 2\), got shape \(1, 7, 9\)"):
        fold(rand(1, 7, 9))
    with pytest.raises(ValueError, match=prefix + r"given output_size=\(4, 4\), .* calculated number of sliding "
                                                  r"blocks 3 \* 3 = 9, but got 8"):
        fold(rand(1, 8, 8))
    with pytest.raises(ValueError, match=prefix + r"expected input \(N, C\*kh\*kw, L\) or \(C\*kh\*kw, L\)"):
        fold(rand(1, 1, 8, 9))
    with pytest.raises(RuntimeError, match="nothing saved"):
        fold.backward(np.ones((1, 2, 4, 4)))

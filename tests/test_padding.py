"""Padding layers and F.pad against torch: every mode, 1d/2d/3d, negative amounts, backward, errors."""
import numpy as np
import pytest
import torch

import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

DTYPES = [np.float64, np.float32]

CASES = [
    ("ZeroPad2d", (1,), (2, 3, 4, 5)),
    ("ZeroPad2d", ((1, 0, 2, 3),), (3, 4, 5)),
    ("ZeroPad1d", ((2, -1),), (2, 3, 5)),
    ("ZeroPad3d", ((1, 0, 0, 2, 1, 1),), (1, 2, 2, 3, 3)),
    ("ConstantPad1d", (2, 3.5), (2, 3, 4)),
    ("ConstantPad2d", ((-1, 2, 0, 1), -1.0), (2, 2, 4, 5)),
    ("ConstantPad3d", (1, 0.5), (1, 2, 2, 3, 2)),
    ("ReflectionPad1d", ((3, 1),), (2, 3, 5)),
    ("ReflectionPad2d", ((1, 2, 3, 0),), (2, 2, 4, 5)),
    ("ReflectionPad2d", (2,), (2, 4, 5)),
    ("ReflectionPad2d", ((-1, 2, 1, -2),), (1, 2, 5, 5)),
    ("ReflectionPad3d", ((1, 0, 2, 1, 1, 1),), (1, 2, 3, 4, 3)),
    ("ReplicationPad1d", ((4, 2),), (2, 3, 3)),
    ("ReplicationPad2d", ((3, 1, 0, 5),), (2, 2, 3, 4)),
    ("ReplicationPad2d", ((2, -1, -1, 2),), (2, 4, 4)),
    ("ReplicationPad3d", (1,), (1, 2, 2, 3, 2)),
    ("CircularPad1d", ((2, 3),), (2, 3, 4)),
    ("CircularPad2d", ((1, 2, 3, 0),), (2, 2, 3, 5)),
    ("CircularPad2d", ((2, -1, -1, 2),), (1, 2, 4, 5)),
    ("CircularPad3d", ((1, 1, 0, 2, 1, 0),), (1, 2, 2, 3, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}{c[1]}")
def test_pad_layer_parity(case, dtype):
    name, args, shape = case
    x = np.random.default_rng(0).standard_normal(shape)
    out = check_parity(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x, dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad, shape", [((1, 2), (2, 3, 4)), ((2, 1, 0, 3), (2, 2, 4, 5)),
                                        ((1, 1, 2, 0, 1, 2), (1, 2, 3, 4, 3))])
def test_functional_pad_and_backward(mode, pad, shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    y = F.pad(x, pad, mode)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.pad(tx, pad, mode)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    g = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(F.pad_backward(g, x.shape, pad, mode), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_constant_pad_any_number_of_dims_and_value():
    x = np.arange(24.0).reshape(2, 3, 4)
    for pad in [(1, 1), (0, 1, 2, 0), (1, 0, 0, 2, 1, 1), (-1, 2, 1, -1)]:
        expected = torch.nn.functional.pad(torch.from_numpy(x), pad, value=7.0).numpy()
        np.testing.assert_array_equal(F.pad(x, pad, value=7.0), expected)
    assert F.pad(np.zeros(3, np.float32), (1, 1)).dtype == np.float32


@pytest.mark.parametrize("layer, shape", [
    (nn.ReflectionPad2d((2, 1, 1, 2)), (1, 2, 4, 4)),
    (nn.ReplicationPad1d((3, 2)), (2, 2, 3)),
    (nn.CircularPad2d((1, 2, 2, 1)), (1, 1, 3, 4)),
    (nn.ConstantPad3d((1, -1, 0, 1, 1, 0), 2.0), (1, 1, 2, 3, 3)),
])
def test_gradcheck(layer, shape):
    assert gradcheck(layer.double(), np.random.default_rng(2).standard_normal(shape))


@pytest.mark.parametrize("name, args", [
    ("ZeroPad2d", (1,)), ("ZeroPad1d", ((1, 2),)), ("ConstantPad2d", ((1, 2, 3, 4), 0.5)), ("ConstantPad1d", (2, 1)),
    ("ReflectionPad3d", (1,)), ("ReplicationPad2d", ((1, 0, 2, 0),)), ("CircularPad1d", (3,)),
])
def test_repr_matches_torch(name, args):
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_errors():
    with pytest.raises(ValueError, match=r"^ReflectionPad2d\(\(3, 3, 3, 3\)\): .*must be smaller than the dimension"):
        nn.ReflectionPad2d(3)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"^CircularPad1d\(\(4, 4\)\): .*wraps around more than once"):
        nn.CircularPad1d(4)(np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match=r"^ReplicationPad2d\(\(1, 1, 1, 1\)\): expected input \(N, C, H, W\)"):
        nn.ReplicationPad2d(1)(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="padding must be an int or a tuple of 4 ints"):
        nn.ZeroPad2d((1, 2, 3))
    with pytest.raises(ValueError, match="padding length must be divisible by 2"):
        F.pad(np.zeros((2, 2)), (1, 2, 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(np.zeros((1, 2, 2)), (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="doesn't take in value argument"):
        F.pad(np.zeros((1, 2, 2)), (1, 1), mode="reflect", value=3.0)
    with pytest.raises(ValueError, match="reflect padding of 2 dims needs a 3-d or 4-d input"):
        F.pad(np.zeros((4, 4)), (1, 1, 1, 1), mode="reflect")

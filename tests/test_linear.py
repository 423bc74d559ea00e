"""Linear, Bilinear, Identity, Flatten, Unflatten against torch, plus gradchecks."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from parity import check_parity
from torchlite.testing import gradcheck

rng = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,bias", [((5, 4), True), ((4,), True), ((2, 3, 4), False), ((2, 1, 3, 4), True),
                                        ((0, 4), True)])
def test_linear_parity(shape, bias, dtype):
    x = rng.standard_normal(shape)
    check_parity(nn.Linear(4, 3, bias=bias), torch.nn.Linear(4, 3, bias=bias), x, dtype=dtype)


def test_linear_gradcheck():
    assert gradcheck(nn.Linear(4, 3).double(), rng.standard_normal((2, 3, 4)))
    assert gradcheck(nn.Linear(4, 3, bias=False).double(), rng.standard_normal((5, 4)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bilinear_parity(dtype):
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    check_parity(nn.Bilinear(3, 4, 2), torch.nn.Bilinear(3, 4, 2), x1, x2, dtype=dtype)


def test_bilinear_gradcheck():
    assert gradcheck(nn.Bilinear(3, 4, 2).double(), rng.standard_normal((2, 3)), rng.standard_normal((2, 4)))


def test_linear_init_distribution_matches_torch():
    """kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(in), 1/sqrt(in)) for weight and bias."""
    lin = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    for p in (lin.weight.data, lin.bias.data):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.95 * bound
    np.testing.assert_allclose(lin.weight.data.std(), bound / np.sqrt(3), rtol=0.02)


def test_linear_float32_stays_float32_with_float64_input():
    lin = nn.Linear(3, 2)
    y = lin(np.ones((4, 3)))  # float64 data from numpy
    assert y.dtype == np.float32
    dx = lin.backward(np.ones((4, 2)))
    assert dx.dtype == np.float32 and lin.weight.grad.dtype == np.float32


def test_linear_errors_name_the_module():
    lin = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear\(in_features=4, out_features=3, bias=True\): "
                                         r"expected input \(\*, 4\), got shape \(2, 5\)"):
        lin(np.ones((2, 5)))
    with pytest.raises(TypeError, match="expected a floating-point input"):
        lin(np.array([["a"] * 4]))


def test_linear_repr_matches_torch():
    assert repr(nn.Linear(3, 2, bias=False)) == repr(torch.nn.Linear(3, 2, bias=False))
    assert repr(nn.Bilinear(3, 4, 2)) == repr(torch.nn.Bilinear(3, 4, 2))


def test_lazy_linear():
    lin = nn.LazyLinear(3)
    assert lin(np.ones((2, 7))).shape == (2, 3) and lin.weight.shape == (3, 7)


@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (2, 3), (0, 1), (-2, -1)])
def test_flatten_parity(start, end):
    x = rng.standard_normal((2, 3, 4, 5))
    check_parity(nn.Flatten(start, end), torch.nn.Flatten(start, end), x)
    assert repr(nn.Flatten(start, end)) == repr(torch.nn.Flatten(start, end))


@pytest.mark.parametrize("dim,size", [(1, (3, 20)), (1, (3, -1)), (-1, (2, 2, 15))])
def test_unflatten_parity(dim, size):
    x = rng.standard_normal((2, 60))
    check_parity(nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size), x)
    assert repr(nn.Unflatten(dim, size)) == repr(torch.nn.Unflatten(dim, size))


def test_flatten_errors():
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=2, end_dim=-1\)"):
        nn.Flatten(2)(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"Unflatten\(dim=1, unflattened_size=\(3, 5\)\)"):
        nn.Unflatten(1, (3, 5))(np.ones((2, 12)))


def test_identity():
    x = rng.standard_normal((2, 3))
    ident = nn.Identity(54, unused="x")
    assert ident(x) is x and ident.backward(x) is x
    assert repr(ident) == repr(torch.nn.Identity())


def test_seeded_init_repeats_bit_for_bit():
    torchlite.manual_seed(3)
    a = nn.Linear(5, 4).weight.data.copy()
    torchlite.manual_seed(3)
    b = nn.Linear(5, 4).weight.data.copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, nn.Linear(5, 4).weight.data)

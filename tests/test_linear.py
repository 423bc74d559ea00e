"""Linear, Bilinear, Identity, Flatten, Unflatten against torch, plus gradchecks."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
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


# ----------------------------------------------------------------------------- F.linear / F.bilinear shape rules
@pytest.mark.parametrize("x_shape, w_shape, b_shape", [
    ((3, 4), (5, 4), None), ((3, 4), (5, 4), (5,)), ((3, 4), (5, 4), ()), ((3, 4), (5, 4), (1,)),
    ((3, 4), (5, 4), (3, 5)), ((2, 3, 4), (5, 4), (5,)), ((2, 3, 4), (5, 4), (3, 5)), ((4,), (5, 4), (5,)),
    ((4,), (4,), ()), ((3, 4), (4,), None), ((2, 3, 4), (4,), None), ((0, 4), (5, 4), (5,))])
def test_functional_linear_takes_torchs_shapes(x_shape, w_shape, b_shape):
    rng = np.random.default_rng(len(x_shape) * 10 + len(w_shape))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = None if b_shape is None else rng.standard_normal(b_shape)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.linear(tx, tw, tb)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    y = F.linear(x, w, b)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    dx, dw, db = F.linear_backward(g, x, w, True, b is not None, None if b is None else b.shape)
    for ours, theirs in ((dx, tx), (dw, tw)) + (() if b is None else ((db, tb),)):
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, b_shape, message", [
    ((3, 4), (5, 3), None, r"expected input \(\*, 3\)"), ((3, 4), (5, 4), (4,), "does not broadcast"),
    ((3, 4), (2, 5, 4), None, "expected weight"), ((), (5, 1), None, "at least 1 dim"),
    ((3, 4), (4,), (), "1-D weight takes a bias only with 1-D input")])
def test_functional_linear_refuses_what_torch_refuses(x_shape, w_shape, b_shape, message):
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(torch.ones(x_shape), torch.ones(w_shape),
                                   None if b_shape is None else torch.ones(b_shape))
    with pytest.raises(ValueError, match=message):
        F.linear(np.ones(x_shape), np.ones(w_shape), None if b_shape is None else np.ones(b_shape))


def test_functional_linear_computes_in_the_weights_dtype():
    assert F.linear(np.ones((2, 4)), np.ones((3, 4), np.float32)).dtype == np.float32
    assert F.linear(np.ones((2, 4), np.int64), np.ones((3, 4), np.float32)).dtype == np.float32


@pytest.mark.parametrize("s1, s2, sw, sb, message", [
    ((3, 4), (2, 5), (6, 4, 5), None, "same leading"), ((3, 3), (3, 5), (6, 4, 5), None, "expected weight"),
    ((3, 4), (3, 5), (4, 5), None, "expected weight"), ((3, 4), (3, 5), (6, 4, 5), (5,), "expected bias"),
    ((), (5,), (6, 1, 5), None, "same number of dims")])
def test_functional_bilinear_refuses_what_torch_refuses(s1, s2, sw, sb, message):
    args = (np.ones(s1), np.ones(s2), np.ones(sw), None if sb is None else np.ones(sb))
    with pytest.raises(RuntimeError):
        torch.nn.functional.bilinear(*(None if a is None else torch.tensor(a) for a in args))
    with pytest.raises(ValueError, match=message):
        F.bilinear(*args)

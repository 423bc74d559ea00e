"""GLU, RReLU and Softmax2d (and functional forms) against PyTorch: values and gradients over dims,
shapes and options; RReLU's eval parity and the statistics of its training slopes; gradchecks;
reprs; errors."""
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

DTYPES = [np.float64, np.float32]


def data(shape, scale=2.0, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# ----------------------------------------------------------------------------- GLU
GLU_CASES = [((4, 6), -1), ((4, 6), 0), ((6,), 0), ((2, 4, 3), 1), ((2, 3, 4, 2), -1), ((2, 3, 4, 2), -2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", GLU_CASES, ids=str)
def test_glu_parity(shape, dim, dtype):
    out = check_parity(nn.GLU(dim), torch.nn.GLU(dim), data(shape), dtype=dtype)
    assert out.dtype == dtype


def test_glu_functional_gradcheck_and_extremes():
    x = data((4, 3))
    np.testing.assert_allclose(F.glu(x, 0), torch.nn.functional.glu(torch.from_numpy(x), 0).numpy(), rtol=1e-12)
    g = data((2, 3), seed=5)
    tx = torch.from_numpy(x).requires_grad_()
    torch.nn.functional.glu(tx, 0).backward(torch.from_numpy(g))
    np.testing.assert_allclose(F.glu_backward(g, x, 0), tx.grad.numpy(), rtol=1e-12)
    assert gradcheck(nn.GLU(0).double(), data((4, 3)))
    assert gradcheck(nn.GLU().double(), data((2, 3, 4)))
    big = np.array([[-1000.0, 1000.0, 1000.0, -1000.0], [3.0, -1000.0, 0.5, 1000.0]], np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        check_parity(nn.GLU(), torch.nn.GLU(), big, dtype=np.float32)


# ----------------------------------------------------------------------------- Softmax2d
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 5), (1, 1, 2, 2)], ids=str)
def test_softmax2d_parity(shape, dtype):
    out = check_parity(nn.Softmax2d(), torch.nn.Softmax2d(), data(shape), dtype=dtype)
    assert out.dtype == dtype


def test_softmax2d_gradcheck():
    assert gradcheck(nn.Softmax2d().double(), data((2, 3, 2, 2)))
    assert gradcheck(nn.Softmax2d().double(), data((3, 2, 2)))


# ----------------------------------------------------------------------------- RReLU
RRELU_OPTIONS = [{}, {"lower": 0.1, "upper": 0.3}, {"lower": 0.0, "upper": 0.5}, {"lower": 0.2, "upper": 0.2},
                 {"lower": -0.5, "upper": 0.25}, {"inplace": True}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 2, 3)], ids=str)
@pytest.mark.parametrize("kw", RRELU_OPTIONS, ids=str)
def test_rrelu_eval_parity(kw, shape, dtype):
    torch_kw = {k: v for k, v in kw.items() if k != "inplace"}
    x = data(shape)
    x.flat[0] = 0.0  # torch's slope at exactly 0
    out = check_parity(nn.RReLU(**kw).eval(), torch.nn.RReLU(**torch_kw).eval(), x, dtype=dtype)
    assert out.dtype == dtype


def rrelu_slopes(lower, upper, n):
    x = -np.random.default_rng(3).random(n) - 0.5  # all negative, away from 0
    return x, nn.RReLU(lower, upper)(x.copy())


@pytest.mark.parametrize("lower,upper", [(1 / 8, 1 / 3), (0.1, 0.9), (-0.2, 0.4)])
def test_rrelu_training_slopes_are_uniform_in_bounds(lower, upper):
    n = 20000
    x, out = rrelu_slopes(lower, upper, n)
    slopes = out / x
    assert slopes.min() >= lower and slopes.max() <= upper
    assert abs(slopes.mean() - (lower + upper) / 2) < 4 * (upper - lower) / np.sqrt(12 * n)
    assert abs(slopes.var() - (upper - lower) ** 2 / 12) < 0.05 * (upper - lower) ** 2 / 12
    assert stats.kstest(slopes, "uniform", args=(lower, upper - lower)).pvalue > 1e-3
    torch.manual_seed(0)
    tx = torch.from_numpy(x)
    t_slopes = (torch.nn.functional.rrelu(tx, lower, upper, training=True) / tx).numpy()
    assert stats.ks_2samp(slopes, t_slopes).pvalue > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_training_gradient_uses_the_forward_slopes(dtype):
    x = data((50, 40)).astype(dtype)
    x[0, :3] = [0.0, -0.0, 1e-30]
    m = nn.RReLU(0.1, 0.4)
    out = m(x)
    assert out.dtype == dtype and m.saved_count == 1
    pos = x > 0
    np.testing.assert_array_equal(out[pos], x[pos])
    g = data(x.shape, 1.0, seed=4).astype(dtype)
    dx = m.backward(g)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx[pos], g[pos])
    neg = x < 0
    np.testing.assert_allclose(dx[neg] / g[neg], out[neg] / x[neg], rtol=1e-6 if dtype == np.float32 else 1e-12)
    slopes_at_zero = dx[0, :2] / g[0, :2]  # x == 0 is on the random side, as in torch
    assert np.all((slopes_at_zero >= 0.1) & (slopes_at_zero <= 0.4))
    # torch: the gradient of its own training forward is its slopes too
    tx = torch.from_numpy(x.copy()).requires_grad_()
    t_out = torch.nn.functional.rrelu(tx, 0.1, 0.4, training=True)
    t_out.backward(torch.from_numpy(g))
    tneg = (tx < 0).detach().numpy()
    np.testing.assert_allclose(tx.grad.numpy()[tneg] / g[tneg], (t_out / tx).detach().numpy()[tneg], rtol=1e-5)


def test_rrelu_seeded_draws_repeat_and_calls_backpropagate_in_reverse():
    x = data((6, 7))
    torchlite.manual_seed(11)
    m = nn.RReLU()
    a = m(x)
    b = m(x)
    assert not np.array_equal(a, b)  # each call draws its own slopes
    gb, ga = m.backward(np.ones(x.shape)), m.backward(np.ones(x.shape))
    neg = x < 0
    np.testing.assert_allclose(ga[neg], a[neg] / x[neg], rtol=1e-12)
    np.testing.assert_allclose(gb[neg], b[neg] / x[neg], rtol=1e-12)
    torchlite.manual_seed(11)
    np.testing.assert_array_equal(nn.RReLU()(x), a)
    out, noise = F.rrelu(x, training=True, return_noise=True)
    np.testing.assert_array_equal(F.rrelu_backward(np.ones(x.shape), noise), noise)
    np.testing.assert_allclose(out, x * noise, rtol=0)


def test_rrelu_inplace_training_and_no_grad_eval():
    x = data((5, 6))
    ref = x.copy()
    m = nn.RReLU(inplace=True)
    out = m(x)
    assert out is x
    dx = m.backward(np.ones(x.shape))
    np.testing.assert_allclose(dx * ref, out, rtol=1e-12)
    m.eval()
    with torchlite.no_grad():
        y = m(ref.copy())
    assert m.saved_count == 0
    np.testing.assert_allclose(y, torch.nn.functional.rrelu(torch.from_numpy(ref)).numpy(), rtol=1e-12)


def test_rrelu_gradcheck_train_and_eval():
    x = data((3, 4))
    assert gradcheck(nn.RReLU(0.1, 0.6).double(), x)  # gradcheck replays the same random draws
    assert gradcheck(nn.RReLU(0.1, 0.6).eval().double(), x)


def test_rrelu_functional_eval_matches_torch():
    x = data((4, 5))
    for kw in ({}, {"lower": 0.05, "upper": 0.45}):
        ref = torch.nn.functional.rrelu(torch.from_numpy(x), **kw).numpy()
        np.testing.assert_allclose(F.rrelu(x, **kw), ref, rtol=1e-12)
        out, noise = F.rrelu(x, **kw, return_noise=True)
        np.testing.assert_allclose(out, ref, rtol=1e-12)
        np.testing.assert_allclose(noise, np.where(x > 0, 1, (kw.get("lower", 1 / 8) + kw.get("upper", 1 / 3)) / 2),
                                   rtol=1e-15)
    y = x.copy()
    assert F.rrelu(y, inplace=True) is y


# ----------------------------------------------------------------------------- reprs and errors
@pytest.mark.parametrize("name,args", [("GLU", ()), ("GLU", (1,)), ("RReLU", ()), ("RReLU", (0.1, 0.3)),
                                       ("RReLU", (0.1, 0.3, True)), ("Softmax2d", ())])
def test_repr_matches_torch(name, args):
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_errors_name_the_module():
    with pytest.raises(ValueError, match=r"^GLU\(dim=-1\): halving dimension must be even, but dimension -1 is "
                                         r"size 5 \(input shape \(3, 5\)\)"):
        nn.GLU()(data((3, 5)))
    with pytest.raises(ValueError, match=r"^GLU\(dim=0\): glu does not support scalars"):
        nn.GLU(0)(np.array(1.0))
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        nn.GLU(2)(data((3, 4)))
    with pytest.raises(ValueError, match=r"^glu: halving dimension must be even"):
        F.glu(data((3,)), 0)
    with pytest.raises(ValueError, match=r"^Softmax2d\(\): expected input to be 3D or 4D, \(N, C, H, W\) or "
                                         r"\(C, H, W\), got 2D shape \(3, 4\)"):
        nn.Softmax2d()(data((3, 4)))
    for m in (nn.RReLU(0.5, 0.1), nn.RReLU(0.5, 0.1).eval()):
        with pytest.raises(ValueError, match=r"^RReLU\(lower=0.5, upper=0.1\): lower bound should be less than or "
                                             r"equal to the upper bound"):
            m(data((3,)))
    with pytest.raises(ValueError, match=r"^rrelu: lower bound"):
        F.rrelu(data((3,)), 0.5, 0.1)
    with pytest.raises(RuntimeError, match="nothing saved"):
        nn.GLU().backward(np.ones(2))

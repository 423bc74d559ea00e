"""Activation layers and their functional forms against PyTorch: values, input gradients,
PReLU's weight gradient, in-place variants, extreme inputs, boundaries, reprs and errors."""
import warnings

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

DTYPES = [np.float64, np.float32]
SHAPES = [(7,), (4, 5), (2, 3, 2, 3)]

# (class name, constructor kwargs); torch's reference is always the out-of-place module
ACTIVATIONS = [
    ("ReLU", {}), ("ReLU", {"inplace": True}),
    ("ReLU6", {}), ("ReLU6", {"inplace": True}),
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.2, "inplace": True}),
    ("LeakyReLU", {"negative_slope": -0.3}), ("LeakyReLU", {"negative_slope": -0.3, "inplace": True}),
    ("ELU", {}), ("ELU", {"alpha": 0.5, "inplace": True}), ("ELU", {"alpha": -0.5, "inplace": True}),
    ("CELU", {}), ("CELU", {"alpha": 2.0}), ("CELU", {"alpha": 0.7, "inplace": True}),
    ("SELU", {}), ("SELU", {"inplace": True}),
    ("GELU", {}), ("GELU", {"approximate": "tanh"}),
    ("SiLU", {}), ("SiLU", {"inplace": True}), ("Mish", {}), ("Mish", {"inplace": True}),
    ("Sigmoid", {}), ("Tanh", {}),
    ("Hardtanh", {}), ("Hardtanh", {"min_val": -2.0, "max_val": 0.5, "inplace": True}),
    ("Hardsigmoid", {}), ("Hardsigmoid", {"inplace": True}),
    ("Hardswish", {}), ("Hardswish", {"inplace": True}),
    ("Softplus", {}), ("Softplus", {"beta": 2.0, "threshold": 3.0}), ("Softplus", {"beta": 0.5, "threshold": 1.0}),
    ("Softsign", {}), ("Tanhshrink", {}),
    ("Softshrink", {}), ("Softshrink", {"lambd": 1.5}), ("Hardshrink", {}), ("Hardshrink", {"lambd": 2.0}),
    ("LogSigmoid", {}),
    ("Threshold", {"threshold": 0.5, "value": -2.0}),
    ("Threshold", {"threshold": 0.5, "value": 3.0, "inplace": True}),
    ("Threshold", {"threshold": 0.5, "value": 0.1, "inplace": True}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in ACTIVATIONS]


def make(name, kw):
    torch_kw = {k: v for k, v in kw.items() if k != "inplace"}
    return getattr(nn, name)(**kw), getattr(torch.nn, name)(**torch_kw)


def data(shape, scale=3.0, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=IDS)
def test_parity(name, kw, shape, dtype):
    tl, ref = make(name, kw)
    x = data(shape).astype(dtype)
    out = check_parity(tl, ref, x, dtype=dtype)
    assert out.dtype == dtype and out.shape == shape
    tl(x.copy())
    dx = tl.backward(np.ones(shape, dtype))
    assert dx.dtype == dtype and dx.shape == shape


@pytest.mark.parametrize("name,kw", [a for a in ACTIVATIONS if not a[1].get("inplace")],
                         ids=[i for i, a in zip(IDS, ACTIVATIONS) if not a[1].get("inplace")])
def test_gradcheck(name, kw):
    assert gradcheck(getattr(nn, name)(**kw).double(), data((3, 4), 2.0, seed=1))


@pytest.mark.parametrize("name,kw", [a for a in ACTIVATIONS if a[1].get("inplace")],
                         ids=[i for i, a in zip(IDS, ACTIVATIONS) if a[1].get("inplace")])
def test_inplace_overwrites_input_and_keeps_gradient(name, kw):
    x = data((4, 5))
    tl, ref = make(name, kw)
    out = tl(x)
    assert out is x
    tl_plain, _ = make(name, {k: v for k, v in kw.items() if k != "inplace"})
    x2 = data((4, 5))
    np.testing.assert_allclose(out, tl_plain(x2), rtol=1e-12)
    g = data((4, 5), 1.0, seed=3)
    np.testing.assert_allclose(tl.backward(g), tl_plain.backward(g), rtol=1e-12, atol=1e-15)


EXTREME = np.array([-1000.0, -100.0, -20.0, -1.0, 0.5, 20.0, 100.0, 1000.0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=IDS)
def test_extreme_inputs_are_finite_and_silent(name, kw, dtype):
    """+-1000 in float32/64: no overflow/invalid/divide (underflow to 0 is exact IEEE and ignored), no NaN."""
    tl, ref = make(name, kw)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = check_parity(tl, ref, EXTREME.astype(dtype), dtype=dtype)
        out = tl(EXTREME.astype(dtype))
        dx = tl.backward(np.ones(EXTREME.shape, dtype))
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))


BOUNDARIES = np.array([-6.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0, 6.0])


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=IDS)
def test_gradient_at_kinks_matches_torch(name, kw):
    """Exactly at 0, +-0.5, +-1, +-3, 6, thresholds: torch's choice of one-sided derivative."""
    tl, ref = make(name, kw)
    check_parity(tl, ref, BOUNDARIES.copy(), dtype=np.float64)


SOFTMAXES = [(c, shape, dim) for c in ("Softmax", "LogSoftmax", "Softmin")
             for shape, dim in [((5,), 0), ((5,), -1), ((3, 4), 0), ((3, 4), 1), ((3, 4), -1),
                                ((2, 3, 4, 5), 1), ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 2)]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape,dim", SOFTMAXES)
def test_softmax_family_parity(name, shape, dim, dtype):
    out = check_parity(getattr(nn, name)(dim), getattr(torch.nn, name)(dim), data(shape), dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax", "Softmin"])
def test_softmax_family_gradcheck_and_extremes(name):
    assert gradcheck(getattr(nn, name)(1).double(), data((3, 4)))
    x = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0]], np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        check_parity(getattr(nn, name)(1), getattr(torch.nn, name)(1), x, dtype=np.float32)


@pytest.mark.parametrize("shape,expected_dim", [((5,), 0), ((3, 4), 1), ((2, 3, 4), 0), ((2, 3, 4, 5), 1)])
def test_softmax_implicit_dim_follows_torch_with_warning(shape, expected_dim):
    x = data(shape)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = nn.Softmax()(x)
    np.testing.assert_allclose(out, F.softmax(x, expected_dim), rtol=1e-12)
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        out = F.log_softmax(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.nn.functional.log_softmax(torch.from_numpy(x))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12)


def test_softmax_bad_dim_raises_index_error():
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got 2"):
        F.softmax(np.zeros((2, 3)), 2)


PRELU_CASES = [(1, (7,)), (1, (4, 5)), (5, (4, 5)), (3, (2, 3, 4)), (3, (2, 3, 2, 2)), (1, (2, 3, 2, 2))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num,shape", PRELU_CASES)
def test_prelu_parity_including_weight_grad(num, shape, dtype):
    ref = torch.nn.PReLU(num, init=0.1)
    with torch.no_grad():
        ref.weight.uniform_(-0.5, 0.5)
    tl = nn.PReLU(num, init=0.1)
    out = check_parity(tl, ref, data(shape), dtype=dtype)
    assert out.dtype == dtype and tl.weight.grad.dtype == dtype


def test_prelu_gradcheck_state_and_errors():
    m = nn.PReLU(3, init=0.2)
    assert list(m.state_dict()) == ["weight"] and np.all(m.weight.data == np.float32(0.2))
    m.double()
    assert gradcheck(m, data((2, 3, 4)))
    assert m.weight.dtype == np.float64
    assert nn.PReLU().weight.dtype == np.float32
    with pytest.raises(ValueError, match=r"^PReLU\(num_parameters=3\): expected input \(N, 3, \*\)"):
        m(np.zeros((2, 4)))


def test_one_relu_reused_three_times_backpropagates_in_reverse():
    relu = nn.ReLU()
    x = data((4, 6))
    a = relu(x)
    b = relu(a * 2.0 - 1.0)
    c = relu(b - 0.5 * a)
    assert relu.saved_count == 3
    g = data((4, 6), 1.0, seed=5)
    gb = relu.backward(g)                 # third call
    gb_pre = relu.backward(gb)            # second call
    ga = gb_pre * 2.0 - 0.5 * gb          # a feeds both the second and the third call
    gx = relu.backward(ga)                # first call
    assert relu.saved_count == 0
    tx = torch.from_numpy(x).requires_grad_()
    ta = torch.relu(tx)
    tc = torch.relu(torch.relu(ta * 2 - 1) - 0.5 * ta)
    tc.backward(torch.from_numpy(g))
    np.testing.assert_allclose(c, tc.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12)


def test_no_grad_saves_nothing_and_backward_without_forward_fails():
    m = nn.SiLU(inplace=True)
    with torchlite.no_grad():
        m(data((3,)))
    assert m.saved_count == 0
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward(np.ones(3))


@pytest.mark.parametrize("name", ["relu", "relu6", "leaky_relu", "elu", "celu", "selu", "silu", "mish", "hardtanh",
                                  "hardsigmoid", "hardswish", "threshold"])
def test_functional_inplace_matches_torch(name):
    args = (0.5, -1.0) if name == "threshold" else ()
    x = data((3, 4))
    out = getattr(F, name)(x, *args, inplace=True)
    assert out is x
    expected = getattr(torch.nn.functional, name)(torch.from_numpy(data((3, 4))), *args)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name,kw", ACTIVATIONS + [("PReLU", {"num_parameters": 3}), ("Softmax", {"dim": 1}),
                                                   ("LogSoftmax", {"dim": -1}), ("Softmin", {"dim": None}),
                                                   ("Hardtanh", {"min_val": 0, "max_val": 6, "inplace": True})])
def test_repr_matches_torch(name, kw):
    assert repr(getattr(nn, name)(**kw)) == repr(getattr(torch.nn, name)(**kw))


def test_integer_input_becomes_default_float_and_bad_arguments_raise():
    assert nn.ReLU()(np.array([-1, 2])).dtype == np.float32
    with pytest.raises(ValueError, match="max_val"):
        nn.Hardtanh(1.0, 0.0)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="lambd"):
        F.softshrink(np.zeros(2), -1.0)


def test_hardtanh_deprecated_min_value_max_value():
    with pytest.warns(FutureWarning, match="`min_value` is deprecated"):
        m = nn.Hardtanh(min_value=-2.0, max_value=3.0)
    assert (m.min_val, m.max_val) == (-2.0, 3.0)
    np.testing.assert_array_equal(m(np.array([-5.0, 0.5, 5.0])), [-2.0, 0.5, 3.0])

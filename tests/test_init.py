"""torchlite.nn.init against torch.nn.init: gains and fans exactly, distributions statistically."""
import math

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from torchlite.nn import init


@pytest.mark.parametrize("name,param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("wobble")


@pytest.mark.parametrize("shape", [(30, 20), (16, 8, 3, 3), (8, 4, 5)])
def test_fans_match_torch(shape):
    ours = init._calculate_fan_in_and_fan_out(np.zeros(shape))
    theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
    assert ours == theirs


def _bound_and_std(fn, shape, **kw):
    arr = np.zeros(shape, np.float32)
    fn(arr, **kw)
    return np.abs(arr).max(), arr.std(), arr


@pytest.mark.parametrize("fn,kw,kind,scale", [
    (init.xavier_uniform_, {}, "uniform", lambda fi, fo: math.sqrt(6 / (fi + fo))),
    (init.xavier_normal_, {"gain": 2.0}, "normal", lambda fi, fo: 2 * math.sqrt(2 / (fi + fo))),
    (init.kaiming_uniform_, {"a": math.sqrt(5)}, "uniform", lambda fi, fo: math.sqrt(3) * math.sqrt(2 / 6) / math.sqrt(fi)),
    (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, "normal", lambda fi, fo: math.sqrt(2 / fo)),
    (init.lecun_uniform_, {}, "uniform", lambda fi, fo: math.sqrt(3 / fi)),
])
def test_distributions(fn, kw, kind, scale):
    shape = (200, 100, 3)
    fan_in, fan_out = 300, 600
    bound, std, _ = _bound_and_std(fn, shape, **kw)
    s = scale(fan_in, fan_out)
    if kind == "uniform":
        assert bound <= s and bound > 0.99 * s
        np.testing.assert_allclose(std, s / math.sqrt(3), rtol=0.02)
    else:
        np.testing.assert_allclose(std, s, rtol=0.02)


def test_lecun_normal_std():
    _, std, arr = _bound_and_std(init.lecun_normal_, (400, 250))
    np.testing.assert_allclose(std, 1 / math.sqrt(250), rtol=0.03)


def test_trunc_normal_bounds_and_std():
    arr = np.zeros((300, 300))
    init.trunc_normal_(arr, mean=1.0, std=2.0, a=0.0, b=3.0)
    t = torch.empty(300, 300, dtype=torch.float64)
    torch.nn.init.trunc_normal_(t, mean=1.0, std=2.0, a=0.0, b=3.0)
    assert arr.min() >= 0.0 and arr.max() <= 3.0
    np.testing.assert_allclose(arr.mean(), t.mean().item(), atol=0.02)
    np.testing.assert_allclose(arr.std(), t.std().item(), rtol=0.02)


def test_uniform_normal_constant_ones_zeros():
    a = np.zeros((100, 100))
    init.uniform_(a, -2, 3)
    assert a.min() >= -2 and a.max() < 3 and abs(a.mean() - 0.5) < 0.05
    init.normal_(a, 1.0, 0.5)
    assert abs(a.mean() - 1) < 0.02 and abs(a.std() - 0.5) < 0.02
    assert np.all(init.constant_(a, 0.3) == 0.3) and np.all(init.ones_(a) == 1) and np.all(init.zeros_(a) == 0)


@pytest.mark.parametrize("shape,groups", [((6, 3, 3, 3), 1), ((4, 4, 5), 1), ((6, 2, 3, 3, 3), 2), ((8, 2, 3, 3), 2)])
def test_dirac_matches_torch_exactly(shape, groups):
    a = np.ones(shape)
    init.dirac_(a, groups)
    t = torch.ones(shape, dtype=torch.float64)
    torch.nn.init.dirac_(t, groups)
    np.testing.assert_array_equal(a, t.numpy())


def test_eye_matches_torch():
    a = np.ones((3, 5))
    init.eye_(a)
    np.testing.assert_array_equal(a, torch.nn.init.eye_(torch.ones(3, 5, dtype=torch.float64)).numpy())


@pytest.mark.parametrize("shape", [(10, 20), (20, 10), (6, 3, 2, 2)])
def test_orthogonal(shape):
    a = np.zeros(shape)
    init.orthogonal_(a, gain=2.0)
    flat = a.reshape(shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-10)


def test_sparse_zero_fraction():
    a = np.zeros((10, 50))
    init.sparse_(a, 0.3)
    assert np.all((a == 0).sum(axis=0) >= 3)


def test_works_on_parameters_and_is_seeded():
    torchlite.manual_seed(1)
    p = nn.Parameter(np.zeros((4, 4), np.float32))
    assert init.xavier_uniform_(p) is p and p.dtype == np.float32
    first = p.data.copy()
    torchlite.manual_seed(1)
    init.xavier_uniform_(p)
    np.testing.assert_array_equal(first, p.data)


def test_bad_inputs():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(np.zeros(3))
    with pytest.raises(ValueError, match="Mode fan_sideways not supported"):
        init.kaiming_uniform_(np.zeros((2, 2)), mode="fan_sideways")
    with pytest.raises(TypeError, match="expected a Parameter or ndarray"):
        init.zeros_([1, 2])

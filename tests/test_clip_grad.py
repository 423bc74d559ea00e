"""Gradient clipping and parameter flattening against torch.nn.utils."""
import math

import numpy as np
import pytest
import torch

from torchlite.nn import Parameter
from torchlite.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters

SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def make_pair(dtype, scale=1.0, seed=0, with_none=True):
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        value = rng.standard_normal(shape).astype(dtype)
        p, q = Parameter(value.copy()), torch.nn.Parameter(torch.from_numpy(value.copy()))
        if not (with_none and i == 1):  # one parameter has no gradient: it is ignored
            grad = np.asarray(rng.standard_normal(shape) * scale, dtype=dtype)
            p.grad, q.grad = grad.copy(), torch.from_numpy(grad.copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def assert_grads_equal(ours, theirs, dtype):
    tol = dict(rtol=1e-12, atol=0) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-7)
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            assert p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad, q.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm_type", [1, 2.0, 3.5, math.inf, -math.inf, 0.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    ours, theirs = make_pair(dtype)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type, foreach=False)
    assert isinstance(total, np.ndarray) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total, t_total.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    assert_grads_equal(ours, theirs, dtype)


def test_clip_grad_norm_scales_to_max_norm_and_accepts_a_single_parameter():
    p = Parameter(np.zeros(4))
    p.grad = np.array([3.0, 4.0, 0.0, 0.0])
    total = clip_grad_norm_(p, 1.0)
    assert float(total) == 5.0
    np.testing.assert_allclose(np.linalg.norm(p.grad), 1.0, rtol=1e-6)
    gen = (q for q in [p])
    clip_grad_norm_(gen, 0.5)
    np.testing.assert_allclose(np.linalg.norm(p.grad), 0.5, rtol=1e-5)


def test_clip_grad_norm_without_grads_returns_zero():
    total = clip_grad_norm_([Parameter(np.ones(2))], 1.0)
    assert float(total) == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0])
def test_non_finite_grads(bad, norm_type):
    ours, theirs = make_pair(np.float64)
    ours[0].grad[1, 2] = bad
    theirs[0].grad[1, 2] = bad
    before = [None if p.grad is None else p.grad.copy() for p in ours]
    with pytest.raises(RuntimeError) as t_err:
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as err:
        clip_grad_norm_(ours, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    assert str(err.value) == str(t_err.value)
    for p, b in zip(ours, before):
        np.testing.assert_array_equal(p.grad, b)  # the error leaves the gradients alone

    total = clip_grad_norm_(ours, 1.0, norm_type=norm_type, error_if_nonfinite=False)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type, error_if_nonfinite=False)
    np.testing.assert_equal(float(total), t_total.item())
    for p, q in zip(ours, theirs):
        if q.grad is not None:
            np.testing.assert_array_equal(p.grad, q.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("clip_value", [0.1, 0.7, 10])
def test_clip_grad_value_matches_torch(clip_value, dtype):
    ours, theirs = make_pair(dtype, scale=2.0)
    grads = [p.grad for p in ours]
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value, foreach=False)
    assert_grads_equal(ours, theirs, dtype)
    assert all(p.grad is g for p, g in zip(ours, grads))  # in place
    single = Parameter(np.array([5.0, -5.0]))
    single.grad = np.array([5.0, -5.0])
    clip_grad_value_(single, 1.0)
    np.testing.assert_array_equal(single.grad, [1.0, -1.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parameters_to_vector_and_back(dtype):
    ours, theirs = make_pair(dtype)
    vec = parameters_to_vector(ours)
    t_vec = torch.nn.utils.parameters_to_vector(theirs)
    assert vec.dtype == dtype
    np.testing.assert_array_equal(vec, t_vec.detach().numpy())

    new = np.arange(vec.size, dtype=dtype)
    data = [p.data for p in ours]
    vector_to_parameters(new, ours)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new.copy()), theirs)
    for p, q, d in zip(ours, theirs, data):
        assert p.data is d and p.data.dtype == dtype  # written in place
        np.testing.assert_array_equal(p.data, q.detach().numpy())
    new[0] = -1.0
    assert ours[0].data.flat[0] == 0.0  # no aliasing with the vector


def test_vector_to_parameters_checks_its_input():
    ps = [Parameter(np.ones((2, 2))), Parameter(np.ones(3))]
    with pytest.raises(TypeError, match="expected np.ndarray, but got: list"):
        vector_to_parameters([1.0] * 7, ps)
    with pytest.raises(ValueError, match=r"1-D array of 7 elements.*got shape \(6,\)"):
        vector_to_parameters(np.zeros(6), ps)
    np.testing.assert_array_equal(ps[0].data, 1.0)
    vector_to_parameters(np.zeros(4), ps[0])
    np.testing.assert_array_equal(ps[0].data, 0.0)

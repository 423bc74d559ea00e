"""Focused regressions for discrepancies with torch.nn.functional found by
tests/test_properties_functional.py, one test per fix, each against torch."""
import math

import numpy as np
import pytest
import torch

import torchlite.nn.functional as F

TF = torch.nn.functional


def test_hardtanh_takes_equal_bounds_and_refuses_crossed_ones():
    x = np.array([-2.0, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(F.hardtanh(x, 0.5, 0.5), TF.hardtanh(torch.from_numpy(x), 0.5, 0.5).numpy())
    with pytest.raises(ValueError, match="cannot be greater"):
        TF.hardtanh(torch.from_numpy(x), 1.0, -1.0)
    with pytest.raises(ValueError, match="cannot be greater"):
        F.hardtanh(x, 1.0, -1.0)


def test_prelu_refuses_a_weight_of_more_than_one_dim():
    x, w = np.ones((2, 1)), np.full((1, 1), 0.25)
    with pytest.raises(RuntimeError, match="scalar or 1D"):
        TF.prelu(torch.from_numpy(x), torch.from_numpy(w))
    with pytest.raises(ValueError, match="scalar or 1D"):
        F.prelu(x, w)


def test_gumbel_softmax_hard_over_an_empty_dim_is_refused_as_torch():
    with pytest.raises(IndexError):
        TF.gumbel_softmax(torch.zeros(2, 0), hard=True)
    with pytest.raises(IndexError, match="empty"):
        F.gumbel_softmax(np.zeros((2, 0)), hard=True)
    assert F.gumbel_softmax(np.zeros((0, 3)), hard=True).shape == (0, 3)


@pytest.mark.parametrize("name, kwargs", [
    ("batch_norm", dict(running_mean=np.zeros(3), running_var=np.ones(3), training=True)),
    ("batch_norm", dict(running_mean=np.zeros(2), running_var=np.ones(2), weight=np.ones(3))),
    ("instance_norm", dict(weight=np.ones((1, 2)))),
    ("group_norm", dict(num_groups=1, bias=np.ones(3))),
    ("layer_norm", dict(normalized_shape=(4,), weight=np.ones((1, 4)))),
    ("layer_norm", dict(normalized_shape=4)),
    ("layer_norm", dict(normalized_shape=())),
    ("rms_norm", dict(normalized_shape=[4], weight=np.ones(5))),
])
def test_normalization_refuses_arrays_that_do_not_fit_as_torch(name, kwargs):
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    t_kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    if name == "batch_norm":
        t_kwargs = dict(dict(running_mean=None, running_var=None), **t_kwargs)
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        getattr(TF, name)(torch.from_numpy(x), **t_kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        getattr(F, name)(x, **(dict(dict(running_mean=None, running_var=None), **kwargs)
                               if name == "batch_norm" else kwargs))


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
def test_layer_and_rms_norm_over_an_empty_normalized_shape(name):
    x = np.zeros((2, 0))
    out = getattr(F, name)(x, (0,), return_saved=True)
    assert out[0].shape == (2, 0)
    np.testing.assert_array_equal(out[0], getattr(TF, name)(torch.from_numpy(x), (0,)).numpy())


def test_embedding_checks_padding_idx_and_weight_rank_as_torch():
    w = np.ones((3, 2))
    for bad in (3, -4):
        with pytest.raises(AssertionError):
            TF.embedding(torch.tensor([0]), torch.from_numpy(w), padding_idx=bad)
        with pytest.raises(ValueError, match="padding_idx"):
            F.embedding(np.array([0]), w, padding_idx=bad)
    F.embedding(np.array([0]), w, padding_idx=-3)
    for weight in (np.ones(3), np.ones((3, 2, 2))):
        with pytest.raises(RuntimeError, match="2-D"):
            TF.embedding(torch.tensor([0]), torch.from_numpy(weight))
        with pytest.raises(ValueError, match="embedding: expected weight of shape"):
            F.embedding(np.array([0]), weight, max_norm=1.0)
        with pytest.raises(ValueError, match="embedding_bag: expected weight of shape"):
            F.embedding_bag(np.array([[0]]), weight)


@pytest.mark.parametrize("p", [-1.0, -math.inf, math.inf])
def test_pairwise_distance_refuses_a_norm_without_identity_over_an_empty_dim(p):
    with pytest.raises(RuntimeError, match="does not have an identity"):
        TF.pairwise_distance(torch.zeros(2, 0), torch.zeros(2, 0), p=p)
    with pytest.raises(ValueError, match="non-empty last dim"):
        F.pairwise_distance(np.zeros((2, 0)), np.zeros((2, 0)), p=p)
    assert F.pairwise_distance(np.zeros((0, 3)), np.zeros((0, 3)), p=p).shape == (0,)


def test_scaled_dot_product_attention_with_no_features_averages_the_values():
    q, k, v = np.zeros((2, 0)), np.zeros((3, 0)), np.random.default_rng(0).standard_normal((3, 2))
    expected = TF.scaled_dot_product_attention(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v))
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v), expected.numpy(), rtol=1e-12)
    out, attn, keep = F.scaled_dot_product_attention(q, k, v, return_weights=True)
    dq, dk, dv = F.scaled_dot_product_attention_backward(np.ones_like(out), q, k, v, attn, keep)
    assert dq.shape == q.shape and dk.shape == k.shape
    np.testing.assert_allclose(dv, np.full((3, 2), 2 / 3), rtol=1e-12)


def test_batch_norm_refuses_one_running_statistic_without_the_other():
    x = np.random.default_rng(0).standard_normal((4, 2))
    with pytest.raises(ValueError, match="both be None or neither"):
        TF.batch_norm(torch.from_numpy(x), torch.zeros(2, dtype=torch.float64), None, training=True)
    with pytest.raises(ValueError, match="both be None or neither"):
        F.batch_norm(x, np.zeros(2), None, training=True)

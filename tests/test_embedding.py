"""Embedding and EmbeddingBag against torch: lookups, weight gradients (repeats, padding,
frequency scaling), max_norm renormalisation, from_pretrained/freeze, index checks."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from parity import check_parity
from torchlite.testing import gradcheck

rng = np.random.default_rng(0)


def indices(shape, high=10):
    idx = rng.integers(0, high, shape)
    idx.reshape(-1)[:3] = 2  # repeated on purpose: their gradients must add up
    return idx


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", [{}, dict(padding_idx=2), dict(padding_idx=-1), dict(scale_grad_by_freq=True),
                                    dict(padding_idx=0, scale_grad_by_freq=True), dict(max_norm=1.0),
                                    dict(max_norm=1.5, norm_type=1.0)])
@pytest.mark.parametrize("shape", [(4, 5), (7,), (2, 3, 4), ()])
def test_embedding_matches_torch(shape, kwargs, dtype):
    tl, tm = nn.Embedding(10, 3, **kwargs), torch.nn.Embedding(10, 3, **kwargs)
    idx = np.asarray(indices(shape)) if shape else np.asarray(2)
    check_parity(tl, tm, idx, dtype=dtype)
    # max_norm rescales the used rows of the weight itself, in place
    np.testing.assert_allclose(tl.weight.data, tm.weight.detach().numpy(), rtol=1e-6)
    assert repr(tl) == repr(tm)


def test_repeated_indices_accumulate_and_padding_gets_nothing():
    emb = nn.Embedding(5, 2, padding_idx=-2)
    assert emb.padding_idx == 3 and not np.any(emb.weight.data[3])
    idx = np.array([[1, 1, 3], [1, 4, 3]])
    emb(idx)
    emb.backward(np.ones((2, 3, 2), np.float32))
    np.testing.assert_array_equal(emb.weight.grad[:, 0], [0, 3, 0, 0, 1])
    emb(idx)
    emb.backward(np.ones((2, 3, 2), np.float32))
    np.testing.assert_array_equal(emb.weight.grad[:, 1], [0, 6, 0, 0, 2])


def test_init_is_standard_normal_in_default_dtype():
    w = nn.Embedding(1000, 50, padding_idx=7).weight.data
    assert w.dtype == np.float32 and not np.any(w[7])
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    torchlite.set_default_dtype(np.float64)
    assert nn.Embedding(3, 2).weight.dtype == np.float64


def test_from_pretrained_and_freeze():
    table = rng.standard_normal((6, 3)).astype(np.float32)
    frozen = nn.Embedding.from_pretrained(table)
    assert frozen.weight.data is table and not frozen.weight.requires_grad
    frozen(np.array([1, 2]))
    frozen.backward(np.ones((2, 3), np.float32))
    assert frozen.weight.grad is None
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    np.testing.assert_array_equal(trainable(np.array([[1, 5]])), table[[[1, 5]]])
    trainable.backward(np.ones((1, 2, 3), np.float32))
    np.testing.assert_array_equal(trainable.weight.grad.sum(axis=1), [0, 0, 0, 0, 0, 3])
    assert repr(trainable) == repr(torch.nn.Embedding.from_pretrained(torch.tensor(table), padding_idx=1))
    with pytest.raises(ValueError, match="2-dimensional"):
        nn.Embedding.from_pretrained(np.ones(4))
    with pytest.raises(ValueError, match="does not match"):
        nn.Embedding(3, 2, _weight=np.ones((2, 3)))


def test_state_dict_round_trip_with_torch():
    tm = torch.nn.Embedding(7, 4, padding_idx=0)
    tl = nn.Embedding(7, 4, padding_idx=0)
    assert list(tl.state_dict()) == list(tm.state_dict()) == ["weight"]
    tl.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    idx = np.array([[0, 3, 6]])
    np.testing.assert_array_equal(tl(idx), tm(torch.tensor(idx)).detach().numpy())


def test_index_errors_name_the_module():
    emb = nn.Embedding(10, 3)
    with pytest.raises(IndexError, match=r"Embedding\(10, 3\): index out of range: expected indices in \[0, 10\), "
                                         r"got 10"):
        emb(np.array([1, 10]))
    with pytest.raises(IndexError, match="got -1"):
        emb(np.array([-1, 2]))
    with pytest.raises(TypeError, match=r"Embedding\(10, 3\): expected integer indices, got dtype float64"):
        emb(np.array([1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(10, 3, sparse=True)
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nn.Embedding(10, 3, padding_idx=10)
    emb(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"expected grad_output \(2, 3\), got shape \(2, 4\)"):
        emb.backward(np.ones((2, 4)))


def test_embedding_gradcheck():
    """Only the plain layer: padding_idx and scale_grad_by_freq deliberately differ from the true gradient."""
    torchlite.set_default_dtype(np.float64)
    assert gradcheck(nn.Embedding(6, 3), indices((3, 4), high=6))


def test_functional_backward_matches_add_at():
    """The sparse-matrix scatter equals the plain np.add.at definition."""
    idx = rng.integers(0, 50, (40, 7))
    grad = rng.standard_normal((40, 7, 5))
    expected = np.zeros((50, 5))
    np.add.at(expected, idx.reshape(-1), grad.reshape(-1, 5))
    np.testing.assert_allclose(F.embedding_backward(grad, idx, 50), expected, rtol=1e-12)
    assert F.embedding_backward(np.zeros((0, 5), np.float32), np.zeros(0, int), 4).shape == (4, 5)


# ---------------------------------------------------------------------- EmbeddingBag
BAG_INPUTS = [  # (input, offsets) with an empty bag and a bag of one
    (lambda: indices((4, 5)), None),
    (lambda: indices((12,)), np.array([0, 3, 3, 11])),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("inputs", BAG_INPUTS)
def test_embedding_bag_matches_torch(inputs, mode, padding_idx, dtype):
    make, offsets = inputs
    idx = make()
    args = (idx,) if offsets is None else (idx, offsets)
    tl = nn.EmbeddingBag(10, 3, mode=mode, padding_idx=padding_idx)
    tm = torch.nn.EmbeddingBag(10, 3, mode=mode, padding_idx=padding_idx)
    check_parity(tl, tm, *args, dtype=dtype)
    assert repr(tl) == repr(tm)
    if offsets is not None:
        last = dict(mode=mode, padding_idx=padding_idx, include_last_offset=True)
        check_parity(nn.EmbeddingBag(10, 3, **last), torch.nn.EmbeddingBag(10, 3, **last), idx,
                     np.append(offsets, len(idx)), dtype=dtype)


@pytest.mark.parametrize("padding_idx", [None, 4])
def test_embedding_bag_per_sample_weights(padding_idx):
    idx = indices((12,))
    idx[5] = 4
    tl = nn.EmbeddingBag(10, 3, mode="sum", padding_idx=padding_idx)
    tm = torch.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=padding_idx)
    check_parity(tl, tm, idx, np.array([0, 3, 3, 7]), rng.standard_normal(12))
    check_parity(tl, tm, idx.reshape(3, 4), None, rng.standard_normal((3, 4)))
    with pytest.raises(NotImplementedError, match="only mode='sum'"):
        nn.EmbeddingBag(10, 3, mode="mean")(idx, np.array([0]), np.ones(12))


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_scale_grad_by_freq(mode):
    """Checked against torch's Embedding + sum/mean over each bag: torch 2.13's own EmbeddingBag
    divides by the wrong counts on CPU (e.g. [[1, 2, 2], [3, 3, 3]] gives index 3 a gradient / 2)."""
    idx = np.array([[1, 2, 2], [3, 3, 3], [4, 2, 1]])
    tl = nn.EmbeddingBag(6, 2, mode=mode, scale_grad_by_freq=True).double()
    tm = torch.nn.Embedding(6, 2, scale_grad_by_freq=True).double()
    tl.load_state_dict({"weight": tm.weight.detach().numpy()})
    grad = rng.standard_normal((3, 2))
    out = getattr(tm(torch.tensor(idx)), mode)(dim=1)
    out.backward(torch.tensor(grad))
    np.testing.assert_allclose(tl(idx), out.detach().numpy(), rtol=1e-12)
    tl.backward(grad)
    np.testing.assert_allclose(tl.weight.grad, tm.weight.grad.numpy(), rtol=1e-12)


def test_embedding_bag_gradcheck():
    torchlite.set_default_dtype(np.float64)
    idx, offsets = indices((9,), high=6), np.array([0, 2, 2, 5])
    for mode in ("sum", "mean", "max"):
        assert gradcheck(nn.EmbeddingBag(6, 3, mode=mode, padding_idx=3), idx, offsets)
    assert gradcheck(nn.EmbeddingBag(6, 3, mode="sum"), idx, offsets, rng.standard_normal(9))


def test_embedding_bag_errors_and_from_pretrained():
    bag = nn.EmbeddingBag(10, 3)
    with pytest.raises(ValueError, match="offsets has to be None"):
        bag(np.zeros((2, 3), int), np.array([0, 1]))
    with pytest.raises(ValueError, match="offsets has to be a 1D"):
        bag(np.zeros(3, int))
    with pytest.raises(ValueError, match=r"offsets\[0\] has to be 0"):
        bag(np.zeros(3, int), np.array([1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        bag(np.zeros(3, int), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="last offset must be the input's length"):
        nn.EmbeddingBag(10, 3, include_last_offset=True)(np.zeros(3, int), np.array([0, 2]))
    with pytest.raises(IndexError, match=r"EmbeddingBag\(10, 3, mode='mean'\): index out of range"):
        bag(np.array([[11]]))
    with pytest.raises(ValueError, match="mode has to be one of"):
        nn.EmbeddingBag(10, 3, mode="median")
    table = rng.standard_normal((5, 2))
    frozen = nn.EmbeddingBag.from_pretrained(table, mode="max")
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(np.array([[0, 4]])), table[[0, 4]].max(axis=0, keepdims=True))

"""nn.utils.prune against torch.nn.utils.prune (torch 2.13).

Deterministic methods (identity, L1, Ln, custom masks, global L1) give torch's masks exactly (on
tie-free weights); random ones follow torch's rules (how many entries or channels, whole channels,
only what is not pruned yet), and their masks are then loaded into torch. Then: state_dict keys
and values, forward outputs, input gradients and the gradients of ``<name>_orig`` and the other
parameters (float64 rtol 1e-7, float32 rtol 1e-5) on Linear, Conv, RNN/LSTM/GRU and cells;
iterative and global pruning, remove, is_pruned, torch's errors, torch checkpoints, SGD.
"""
import copy
import inspect
import re

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from parity import assert_close, check_parity, copy_state

import torchlite
from torchlite import nn
from torchlite.nn.utils import prune
from torchlite.testing import gradcheck

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
T_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}

LAYERS = {  # name -> (constructor from a library's nn, input shape)
    "linear": (lambda lib: lib.Linear(6, 5), (4, 6)),
    "conv2d": (lambda lib: lib.Conv2d(3, 4, 3, padding=1), (2, 3, 5, 5)),
    "conv1d": (lambda lib: lib.Conv1d(3, 4, 3), (2, 3, 6)),
    "lstm": (lambda lib: lib.LSTM(3, 4, 2, bidirectional=True), (5, 2, 3)),
    "lstm_proj": (lambda lib: lib.LSTM(3, 4, proj_size=2), (5, 2, 3)),
    "gru": (lambda lib: lib.GRU(3, 4), (5, 2, 3)),
    "lstm_cell": (lambda lib: lib.LSTMCell(3, 4), (2, 3)),
    "rnn_cell": (lambda lib: lib.RNNCell(3, 4), (2, 3)),
}


def pair(layer, dtype=np.float64, seed=0):
    make, shape = LAYERS[layer]
    torch.manual_seed(seed)
    theirs = make(torch.nn).to(T_DTYPE[np.dtype(dtype)])
    ours = make(nn).to(dtype)
    copy_state(ours, theirs)
    return ours, theirs, np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def to_torch(value):
    return torch.from_numpy(np.array(value)) if isinstance(value, np.ndarray) else value


def both(fn, ours, theirs, name, **kwargs):
    """Prune ``ours`` with prune.<fn> and ``theirs`` with torch's, same arguments."""
    getattr(prune, fn)(ours, name, **kwargs)
    getattr(tprune, fn)(theirs, name, **{k: to_torch(v) for k, v in kwargs.items()})


def assert_state_equal(ours, theirs, dtype=np.float64):
    t_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(t_state)
    for key, value in ours.state_dict().items():
        assert value.dtype == dtype, key
        if key.endswith("_mask"):
            np.testing.assert_array_equal(value, t_state[key].numpy(), err_msg=key)
        else:
            assert_close(value, t_state[key].numpy(), dtype, key)


def sync_masks(ours, theirs):
    """Give torch our masks (random methods draw their own)."""
    t_buffers = dict(theirs.named_buffers())
    for key, value in ours.named_buffers():
        t_buffers[key].copy_(torch.from_numpy(value))
    for module in theirs.modules():  # torch's pruned tensors, which rank the next pruning, from our masks
        for hook in module._forward_pre_hooks.values():
            hook(module, None)


def assert_parity(ours, theirs, x, names, dtype=np.float64):
    """Forward, backward and every gradient against torch, then the pruned tensors themselves."""
    check_parity(ours, theirs, x, dtype=dtype, copy=False)
    for name in names:
        computed = getattr(ours, name)
        assert isinstance(computed, nn.Parameter) and computed.grad is None and computed.dtype == dtype
        assert_close(computed.data, getattr(theirs, name).detach().numpy(), dtype, name)


# ----------------------------------------------------------------------------- deterministic methods
METHODS = {  # id -> (function, kwargs, structured)
    "identity": ("identity", {}, False),
    "l1_int": ("l1_unstructured", {"amount": 3}, False),
    "l1_float": ("l1_unstructured", {"amount": 0.45}, False),
    "l1_none": ("l1_unstructured", {"amount": 0}, False),
    "l1_all": ("l1_unstructured", {"amount": 1.0}, False),
    "ln2_dim0": ("ln_structured", {"amount": 2, "n": 2, "dim": 0}, True),
    "ln1_last": ("ln_structured", {"amount": 0.5, "n": 1, "dim": -1}, True),
    "ln_inf_dim1": ("ln_structured", {"amount": 1, "n": float("inf"), "dim": 1}, True),
    "ln_ninf": ("ln_structured", {"amount": 1, "n": float("-inf"), "dim": 0}, True),
    "ln_fro": ("ln_structured", {"amount": 0.3, "n": "fro", "dim": 0}, True),
    "ln_neg": ("ln_structured", {"amount": 1, "n": -1.5, "dim": 1}, True),
    "ln_none": ("ln_structured", {"amount": 0.0, "n": 2, "dim": 0}, True),
}
TARGETS = [("linear", "weight"), ("linear", "bias"), ("conv2d", "weight"), ("lstm", "weight_hh_l0"),
           ("lstm", "weight_ih_l1_reverse"), ("lstm", "bias_ih_l0"), ("lstm_proj", "weight_hr_l0"),
           ("gru", "weight_ih_l0"), ("lstm_cell", "weight_hh"), ("rnn_cell", "bias_ih")]
CASES = [(layer, name, method) for layer, name in TARGETS for method, (_, _, structured) in METHODS.items()
         if not (structured and name.startswith("bias")) and not (layer == "conv2d" and method == "ln_fro")
         and (layer in ("linear", "conv2d") or method in ("l1_float", "ln2_dim0", "ln_inf_dim1", "identity"))]


@pytest.mark.parametrize("layer, name, method", CASES)
def test_deterministic_methods_match_torch(layer, name, method):
    fn, kwargs, _ = METHODS[method]
    ours, theirs, x = pair(layer)
    both(fn, ours, theirs, name, **kwargs)
    assert_state_equal(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [type(h).__name__ for h in ours._forward_pre_hooks.values()] == \
        [type(h).__name__ for h in theirs._forward_pre_hooks.values()]
    assert_parity(ours, theirs, x, [name])


@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1])
@pytest.mark.parametrize("n", [1, 2, 3.5, float("inf")])
def test_ln_structured_on_every_conv_axis(n, dim):
    ours, theirs, x = pair("conv2d")
    both("ln_structured", ours, theirs, "weight", amount=0.4, n=n, dim=dim)
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, ["weight"])


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_ln_structured_nuclear_norm_over_two_axes(dim):
    ours, theirs, x = pair("conv1d")  # a 3-D weight: two axes besides the channels
    both("ln_structured", ours, theirs, "weight", amount=1, n="nuc", dim=dim)
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, ["weight"])


def test_ln_structured_n0_counts_nonzeros_of_the_importance_scores():
    ours, theirs, x = pair("linear")
    scores = np.random.default_rng(1).standard_normal((5, 6))
    scores[np.arange(6)[None, :] < np.array([0, 3, 1, 5, 2])[:, None]] = 0  # rows with 0, 3, 1, 5, 2 zeros
    both("ln_structured", ours, theirs, "weight", amount=2, n=0, dim=0, importance_scores=scores)
    np.testing.assert_array_equal(ours.weight_mask.sum(axis=1), [6, 0, 6, 0, 6])
    assert_state_equal(ours, theirs)


@pytest.mark.parametrize("fn, kwargs", [("l1_unstructured", {"amount": 7}),
                                        ("ln_structured", {"amount": 2, "n": 1, "dim": 1})])
def test_importance_scores_choose_what_is_pruned(fn, kwargs):
    ours, theirs, x = pair("linear")
    scores = np.random.default_rng(3).standard_normal((5, 6))
    both(fn, ours, theirs, "weight", importance_scores=scores, **kwargs)
    assert_state_equal(ours, theirs)
    plain, _, _ = pair("linear")
    getattr(prune, fn)(plain, "weight", **kwargs)
    assert not np.array_equal(plain.weight_mask, ours.weight_mask)
    assert_parity(ours, theirs, x, ["weight"])


@pytest.mark.parametrize("layer, name", [("linear", "weight"), ("linear", "bias"), ("conv2d", "weight"),
                                         ("lstm", "weight_hh_l1")])
def test_custom_from_mask(layer, name):
    ours, theirs, x = pair(layer)
    shape = getattr(ours, name).shape
    mask = np.random.default_rng(2).random(shape) < 0.6
    both("custom_from_mask", ours, theirs, name, mask=mask)
    assert ours.state_dict()[name + "_mask"].dtype == np.float64
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, [name])


@pytest.mark.parametrize("layer, fn, kwargs", [("linear", "l1_unstructured", {"amount": 0.3}),
                                               ("conv2d", "ln_structured", {"amount": 1, "n": 2, "dim": 0}),
                                               ("lstm", "l1_unstructured", {"amount": 5})])
def test_float32_stays_float32(layer, fn, kwargs):
    ours, theirs, x = pair(layer, dtype=np.float32)
    name = "weight_hh_l0" if layer == "lstm" else "weight"
    both(fn, ours, theirs, name, **kwargs)
    assert_state_equal(ours, theirs, np.float32)
    assert_parity(ours, theirs, x, [name], dtype=np.float32)


def test_several_tensors_of_one_module_and_a_frozen_original():
    ours, theirs, x = pair("lstm")
    for name, amount in [("weight_ih_l0", 4), ("weight_hh_l0_reverse", 0.5), ("bias_hh_l1", 3)]:
        both("l1_unstructured", ours, theirs, name, amount=amount)
    ours.weight_ih_l0_orig.requires_grad_(False)
    theirs.weight_ih_l0_orig.requires_grad_(False)
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, ["weight_ih_l0", "weight_hh_l0_reverse", "bias_hh_l1"])
    assert ours.weight_ih_l0_orig.grad is None and ours.weight_ih_l0.requires_grad is False


# ----------------------------------------------------------------------------- random methods
@pytest.mark.parametrize("amount, expected", [(4, 4), (0.5, 15), (0.51, 15), (0.99, 30), (0, 0), (1.0, 30)])
def test_random_unstructured_prunes_amount_entries(amount, expected):
    ours, theirs, x = pair("linear")
    both("random_unstructured", ours, theirs, "weight", amount=amount)
    for mask in (ours.weight_mask, theirs.weight_mask.numpy()):
        assert set(np.unique(mask)) <= {0.0, 1.0} and int((mask == 0).sum()) == expected
    sync_masks(ours, theirs)
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, ["weight"])


def test_random_unstructured_is_uniform_and_seeded():
    method = prune.RandomUnstructured(3)
    counts = sum(method.compute_mask(np.zeros(12), np.ones(12)) == 0 for _ in range(3000))
    assert counts.sum() == 9000 and np.all(np.abs(counts - 750) < 5 * np.sqrt(3000 * 0.25 * 0.75))
    masks = []
    for _ in range(2):
        torchlite.manual_seed(7)
        masks.append(prune.random_unstructured(nn.Linear(20, 10), "weight", amount=0.5).weight_mask)
    np.testing.assert_array_equal(*masks)
    assert not np.array_equal(masks[0], prune.random_unstructured(nn.Linear(20, 10), "weight", 0.5).weight_mask)


@pytest.mark.parametrize("layer, name, dim, amount, k", [
    ("linear", "weight", 0, 2, 2), ("linear", "weight", 1, 0.5, 3), ("linear", "weight", -1, 6, 6),
    ("conv2d", "weight", 0, 0.25, 1), ("conv2d", "weight", 1, 2, 2), ("conv2d", "weight", 3, 1, 1),
    ("conv2d", "weight", -2, 0.0, 0), ("lstm", "weight_ih_l1", 1, 3, 3), ("lstm_cell", "weight_hh", 0, 0.5, 8)])
def test_random_structured_prunes_whole_channels(layer, name, dim, amount, k):
    ours, theirs, x = pair(layer)
    both("random_structured", ours, theirs, name, amount=amount, dim=dim)
    for mask in (getattr(ours, name + "_mask"), getattr(theirs, name + "_mask").numpy()):
        channels = np.moveaxis(mask, dim, 0).reshape(mask.shape[dim], -1)
        assert np.all((channels == 0).all(axis=1) | (channels == 1).all(axis=1))  # whole channels
        assert int((channels == 0).all(axis=1).sum()) == k
    sync_masks(ours, theirs)
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, [name])


def test_random_structured_is_uniform_and_seeded():
    method = prune.RandomStructured(1, dim=1)
    counts = sum((method.compute_mask(np.zeros((2, 4)), np.ones((2, 4))) == 0).all(axis=0) for _ in range(2000))
    assert counts.sum() == 2000 and np.all(np.abs(counts - 500) < 5 * np.sqrt(2000 * 0.25 * 0.75))
    masks = []
    for _ in range(2):
        torchlite.manual_seed(3)
        masks.append(prune.random_structured(nn.Linear(30, 10), "weight", amount=0.5, dim=1).weight_mask)
    np.testing.assert_array_equal(*masks)


# ----------------------------------------------------------------------------- iterative pruning
STEPS = [("l1_unstructured", {"amount": 5}), ("ln_structured", {"amount": 1, "n": 2, "dim": 0}),
         ("random_unstructured", {"amount": 0.25}), ("random_structured", {"amount": 1, "dim": 1}),
         ("l1_unstructured", {"amount": 0.2}), ("custom_from_mask", {"mask": None}),
         ("ln_structured", {"amount": 0.5, "n": 1, "dim": 1}), ("identity", {}),
         ("random_structured", {"amount": 0.5, "dim": 0}), ("random_unstructured", {"amount": 2})]


def _zero_channels(mask, dim):
    return int((np.moveaxis(mask, dim, 0).reshape(mask.shape[dim], -1) == 0).all(axis=1).sum())


def test_iterative_pruning_composes_masks_as_torch():
    ours, theirs, x = pair("linear")
    rng = np.random.default_rng(5)
    for fn, kwargs in STEPS:
        before = ours.weight_mask.copy() if prune.is_pruned(ours) else np.ones((5, 6))
        if fn == "custom_from_mask":
            kwargs = {"mask": rng.random((5, 6)) < 0.9}
        both(fn, ours, theirs, "weight", **kwargs)
        after = ours.weight_mask
        assert np.all(after <= before)  # what was pruned stays pruned
        alive = int(before.sum())
        if fn == "random_unstructured":  # the amount counts the entries not pruned yet
            amount = kwargs["amount"]
            assert int(before.sum() - after.sum()) == (amount if isinstance(amount, int) else round(amount * alive))
        if fn == "random_structured":  # ... and the channels not entirely pruned yet
            dim, amount = kwargs["dim"], kwargs["amount"]
            alive_channels = before.shape[dim] - _zero_channels(before, dim)
            k = amount if isinstance(amount, int) else round(amount * alive_channels)
            assert _zero_channels(after, dim) == _zero_channels(before, dim) + k
            sync_masks(ours, theirs)
        elif fn == "random_unstructured":
            sync_masks(ours, theirs)
        assert_state_equal(ours, theirs)
    hooks = list(ours._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], prune.PruningContainer) and len(hooks[0]) == len(STEPS)
    t_hook, = theirs._forward_pre_hooks.values()
    assert [type(m).__name__ for m in hooks[0]] == [type(m).__name__ for m in t_hook]
    assert hooks[0][-1] is list(hooks[0])[-1] and hooks[0][0].amount == 5
    assert_parity(ours, theirs, x, ["weight"])


def test_structured_after_unstructured_skips_pruned_channels():
    ours, theirs, x = pair("conv2d")
    mask = np.ones((4, 3, 3, 3))
    mask[1] = 0  # channel 1 of dim 0 already gone: amount 0.5 of the 3 left is 2 more
    both("custom_from_mask", ours, theirs, "weight", mask=mask)
    both("ln_structured", ours, theirs, "weight", amount=0.5, n=2, dim=0)
    assert _zero_channels(ours.weight_mask, 0) == 3
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, ["weight"])


@pytest.mark.parametrize("fn, kwargs, zeros", [("random_structured", {"amount": 1, "dim": 0}, 5),
                                               ("ln_structured", {"amount": 1, "n": 2, "dim": 0}, 5),
                                               ("ln_structured", {"amount": 2, "n": 1, "dim": -1}, 2)])
def test_structured_on_a_pruned_vector_follows_torch(fn, kwargs, zeros):
    # torch's channel sums over "no other axis" reduce the whole vector, and the one bool they give
    # indexes a (1, n) view: along dim 0 the vector is one channel, along dim -1 each entry is one
    ours, theirs, x = pair("linear")
    both("l1_unstructured", ours, theirs, "bias", amount=1)
    both(fn, ours, theirs, "bias", **kwargs)
    assert int((ours.bias_mask == 0).sum()) == zeros
    assert_state_equal(ours, theirs)


def test_pruning_between_forward_and_backward_keeps_the_forwards_mask():
    ours, theirs, x = pair("linear")
    both("l1_unstructured", ours, theirs, "weight", amount=5)
    y, ty = ours(x), theirs(tx := torch.from_numpy(x.copy()).requires_grad_())
    both("ln_structured", ours, theirs, "weight", amount=2, n=1, dim=0)
    g = np.random.default_rng(1).standard_normal(y.shape)
    dx = ours.backward(g)
    ty.backward(torch.from_numpy(g))
    assert_close(dx, tx.grad.numpy(), np.float64, "grad of input")
    assert_close(ours.weight_orig.grad, theirs.weight_orig.grad.numpy(), np.float64, "grad of weight_orig")
    assert_state_equal(ours, theirs)


def test_a_module_called_twice_is_backpropagated_twice():
    ours, theirs, x = pair("linear", seed=1)
    both("l1_unstructured", ours, theirs, "weight", amount=0.5)
    x2 = np.random.default_rng(9).standard_normal(x.shape)
    t1, t2 = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, x2))
    y1, y2 = ours(x), ours(x2)
    (theirs(t1).sum() + 2 * theirs(t2).sum()).backward()
    dx2 = ours.backward(2 * np.ones_like(y2))
    dx1 = ours.backward(np.ones_like(y1))
    assert_close(dx1, t1.grad.numpy(), np.float64, "dx1")
    assert_close(dx2, t2.grad.numpy(), np.float64, "dx2")
    for name in ("weight_orig", "bias"):
        assert_close(getattr(ours, name).grad, getattr(theirs, name).grad.numpy(), np.float64, name)


# ----------------------------------------------------------------------------- global pruning
def _net(lib):
    return lib.Sequential(lib.Linear(6, 5), lib.Tanh(), lib.Linear(5, 3))


def net_pair(seed=0):
    torch.manual_seed(seed)
    theirs = _net(torch.nn).double()
    ours = _net(nn).double()
    copy_state(ours, theirs)
    return ours, theirs, np.random.default_rng(seed).standard_normal((4, 6))


@pytest.mark.parametrize("amount", [10, 0.3, 0, 1.0])
@pytest.mark.parametrize("scores", [False, True])
def test_global_l1_matches_torch(amount, scores):
    ours, theirs, x = net_pair()
    both("l1_unstructured", ours[2], theirs[2], "weight", amount=4)  # pruned before: its zeros stay and don't count
    targets = [(0, "weight"), (2, "weight"), (0, "bias")]
    importance = {}
    if scores:
        s = np.random.default_rng(4).standard_normal((5, 6))
        importance = {(ours[0], "weight"): s}, {(theirs[0], "weight"): torch.from_numpy(s)}
    prune.global_unstructured(((ours[i], name) for i, name in targets), prune.L1Unstructured,
                              importance_scores=importance[0] if scores else None, amount=amount)
    tprune.global_unstructured([(theirs[i], name) for i, name in targets], tprune.L1Unstructured,
                               importance_scores=importance[1] if scores else None, amount=amount)
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, [])
    for i, name in targets:
        assert_close(getattr(ours[i], name).data, getattr(theirs[i], name).detach().numpy(), np.float64, name)


def test_global_random_unstructured_prunes_amount_among_the_unpruned():
    ours, theirs, x = net_pair()
    prune.l1_unstructured(ours[0], "weight", amount=6)
    prune.global_unstructured([(ours[0], "weight"), (ours[2], "weight")], prune.RandomUnstructured, amount=0.5)
    zeros = int((ours[0].weight_mask == 0).sum() + (ours[2].weight_mask == 0).sum())
    assert zeros == 6 + round(0.5 * (45 - 6))
    assert isinstance(ours[0]._forward_pre_hooks[next(iter(ours[0]._forward_pre_hooks))], prune.PruningContainer)
    assert isinstance(next(iter(ours[2]._forward_pre_hooks.values())), prune.CustomFromMask)


# ----------------------------------------------------------------------------- remove, is_pruned
@pytest.mark.parametrize("layer, name", [("linear", "weight"), ("linear", "bias"), ("conv2d", "weight"),
                                         ("lstm", "weight_hh_l0_reverse"), ("rnn_cell", "weight_ih")])
def test_remove_makes_the_pruning_permanent(layer, name):
    ours, theirs, x = pair(layer)
    orig = getattr(ours, name)
    both("l1_unstructured", ours, theirs, name, amount=0.3)
    both("identity", ours, theirs, name)
    assert getattr(ours, name + "_orig") is orig
    check_parity(ours, theirs, x, copy=False)  # a step of training before remove
    ours.zero_grad()
    theirs.zero_grad()
    assert prune.remove(ours, name) is ours
    tprune.remove(theirs, name)
    assert getattr(ours, name) is orig and ours._parameters[name] is orig and name not in ours.__dict__
    assert not prune.is_pruned(ours) and not tprune.is_pruned(theirs)
    assert not any((ours._forward_pre_hooks, ours._forward_hooks, ours._backward_pre_hooks, ours._backward_hooks))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert_state_equal(ours, theirs)
    check_parity(ours, theirs, x, copy=False)


def test_is_pruned_looks_at_every_submodule():
    ours, theirs, _ = net_pair()
    assert not prune.is_pruned(ours)
    prune.random_unstructured(ours[2], "bias", amount=1)
    assert prune.is_pruned(ours) and prune.is_pruned(ours[2]) and not prune.is_pruned(ours[0])
    prune.remove(ours[2], "bias")
    assert not prune.is_pruned(ours)


# ----------------------------------------------------------------------------- checkpoints, training
def test_a_pruned_torch_state_dict_loads_into_a_pruned_model(tmp_path):
    ours, theirs, x = pair("conv2d")
    tprune.random_unstructured(theirs, "weight", amount=0.4)
    tprune.random_structured(theirs, "weight", amount=1, dim=0)
    tprune.l1_unstructured(theirs, "bias", amount=1)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    with pytest.raises(ValueError, match='(?s)Missing key.*"weight".*Unexpected key.*"weight_orig", "bias_orig"'):
        ours.load_state_dict(state)
    prune.identity(ours, "weight")
    prune.identity(ours, "bias")
    ours.load_state_dict(state)
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, ["weight", "bias"])
    torchlite.save(ours.state_dict(), tmp_path / "pruned.npz")
    again, _, _ = pair("conv2d", seed=1)
    prune.identity(again, "weight")
    prune.identity(again, "bias")
    again.load_state_dict(torchlite.load(tmp_path / "pruned.npz"))
    assert_state_equal(again, theirs)


def test_sgd_keeps_pruned_entries_out_of_the_effective_weight():
    ours, theirs, x = net_pair()
    both("l1_unstructured", ours[0], theirs[0], "weight", amount=0.5)
    both("ln_structured", ours[2], theirs[2], "weight", amount=1, n=2, dim=1)
    both("l1_unstructured", ours[2], theirs[2], "bias", amount=1)
    opt = torchlite.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    loss, t_loss = nn.MSELoss(), torch.nn.MSELoss()
    target = np.random.default_rng(2).standard_normal((4, 3))
    for _ in range(4):
        opt.zero_grad()
        t_opt.zero_grad()
        value = loss(ours(x), target)
        ours.backward(loss.backward())
        t_value = t_loss(theirs(torch.from_numpy(x)), torch.from_numpy(target))
        t_value.backward()
        assert_close(value, t_value.item(), np.float64, "loss")
        opt.step()
        t_opt.step()
        assert_state_equal(ours, theirs)
        for layer, name in [(ours[0], "weight"), (ours[2], "weight"), (ours[2], "bias")]:
            assert not np.any(getattr(layer, name).data[getattr(layer, name + "_mask") == 0])


def test_gradcheck_and_deepcopy():
    torchlite.set_default_dtype(np.float64)
    for layer, name, kwargs in [("linear", "weight", {"amount": 0.4}), ("conv2d", "weight", {"amount": 20}),
                                ("lstm_cell", "weight_ih", {"amount": 0.5})]:
        ours, _, x = pair(layer)
        prune.l1_unstructured(ours, name, **kwargs)
        prune.l1_unstructured(ours, "bias" if layer != "lstm_cell" else "bias_hh", amount=1)
        assert gradcheck(ours, x)
        ours.zero_grad()
        clone = copy.deepcopy(ours)
        clone.zero_grad()
        clone.backward(*[np.ones_like(o) for o in _tuple(clone(x))])
        assert getattr(clone, name + "_orig").grad is not None and getattr(ours, name + "_orig").grad is None
        assert not np.any(getattr(clone, name + "_orig").grad[getattr(clone, name + "_mask") == 0])


def _tuple(out):
    return out if isinstance(out, tuple) else (out,)


# ----------------------------------------------------------------------------- errors and API
def _arr(lib, value):
    return torch.from_numpy(np.asarray(value, dtype=np.float32)) if lib is torch.nn else np.asarray(value, np.float32)


def _with_buffer(lib):
    m = lib.Linear(4, 3)
    m.register_buffer("buf", _arr(lib, np.ones(3)))
    return m


def _pruned(lib, p):
    m = lib.Linear(4, 3)
    p.l1_unstructured(m, "weight", 2)
    return m


def _named(p, cls, name, *args):
    method = cls(*args)
    method._tensor_name = name
    return method


ERRORS = {  # id -> fn(lib nn, lib prune)
    "amount_negative": lambda lib, p: p.l1_unstructured(lib.Linear(4, 3), "weight", -1),
    "amount_float": lambda lib, p: p.random_unstructured(lib.Linear(4, 3), "weight", 1.5),
    "amount_type": lambda lib, p: p.ln_structured(lib.Linear(4, 3), "weight", "a", 2, 0),
    "amount_too_big": lambda lib, p: p.l1_unstructured(lib.Linear(4, 3), "weight", 13),
    "channels_too_many": lambda lib, p: p.ln_structured(lib.Linear(4, 3), "weight", 4, 2, 0),
    "structured_vector": lambda lib, p: p.random_structured(lib.Linear(4, 3), "bias", 1, 0),
    "dim_out_of_range": lambda lib, p: p.ln_structured(lib.Linear(4, 3), "weight", 1, 2, 2),
    "dim_too_negative": lambda lib, p: p.random_structured(lib.Linear(4, 3), "weight", 1, -3),
    "nuc_one_axis": lambda lib, p: p.ln_structured(lib.Linear(4, 3), "weight", 1, "nuc", 0),
    "fro_three_axes": lambda lib, p: p.ln_structured(lib.Conv2d(2, 3, 2), "weight", 1, "fro", 0),
    "bad_order": lambda lib, p: p.ln_structured(lib.Conv2d(2, 3, 2), "weight", 1, "abc", 0),
    "scores_shape": lambda lib, p: p.l1_unstructured(lib.Linear(4, 3), "weight", 1,
                                                     importance_scores=_arr(lib, np.ones(3))),
    "no_such_name": lambda lib, p: p.l1_unstructured(lib.Linear(4, 3), "foo", 1),
    "a_buffer": lambda lib, p: p.l1_unstructured(_with_buffer(lib), "buf", 1),
    "remove_unpruned": lambda lib, p: p.remove(lib.Linear(4, 3), "weight"),
    "global_not_iterable": lambda lib, p: p.global_unstructured(3, p.L1Unstructured, amount=1),
    "global_structured": lambda lib, p: p.global_unstructured([(lib.Linear(4, 3), "weight")], p.RandomStructured,
                                                              amount=1),
    "global_scores_type": lambda lib, p: p.global_unstructured([(lib.Linear(4, 3), "weight")], p.L1Unstructured,
                                                               importance_scores=[1], amount=1),
    "custom_mask_shape": lambda lib, p: p.custom_from_mask(lib.Linear(4, 3), "bias", _arr(lib, np.ones(2))),
    "repruned_too_much": lambda lib, p: p.l1_unstructured(_pruned(lib, p), "weight", 11),
    "container_not_a_method": lambda lib, p: p.PruningContainer(_named(p, p.Identity, "w")).add_pruning_method(3),
    "container_other_tensor": lambda lib, p: p.PruningContainer(_named(p, p.Identity, "w"), _named(p, p.Identity, "v")),
    "container_unnamed": lambda lib, p: p.PruningContainer(p.L1Unstructured(1)),
    "prune_scores_shape": lambda lib, p: p.L1Unstructured(0.3).prune(_arr(lib, np.ones(4)),
                                                                     importance_scores=_arr(lib, np.ones(3))),
    "abstract": lambda lib, p: type("NoMask", (p.BasePruningMethod,), {})(),
}


def _normalized(message):
    """torch's message as torchlite words it: shapes as tuples, torchlite's names, no addresses."""
    message = re.sub(r"torch\.Size\(\[([\d, ]*)\]\)", lambda m: str(tuple(int(v) for v in m.group(1).split(",") if v)),
                     message)
    message = re.sub(r"'torch\.\w*Tensor'", "'ndarray'", message)
    return re.sub(r" at 0x[0-9a-f]+", "", message.replace("torch.nn.", "torchlite.nn."))


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_torchs(case):
    with pytest.raises(Exception) as theirs:
        ERRORS[case](torch.nn, tprune)
    with pytest.raises(Exception) as ours:
        ERRORS[case](nn, prune)
    assert type(ours.value) is type(theirs.value)
    assert _normalized(str(ours.value)) == _normalized(str(theirs.value))


def test_a_failed_pruning_leaves_the_module_usable():
    ours, theirs, x = pair("linear")
    for module, p in ((ours, prune), (theirs, tprune)):
        with pytest.raises(ValueError):
            p.l1_unstructured(module, "weight", 31)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]  # torch's order
    both("l1_unstructured", ours, theirs, "weight", amount=3)
    both("l1_unstructured", ours, theirs, "weight", amount=3)
    # torch drops its pre-hook here; torchlite keeps the pruning it had
    with pytest.raises(ValueError, match="amount=25 should be smaller than the number of parameters to prune=24"):
        prune.l1_unstructured(ours, "weight", 25)
    hook, = ours._forward_pre_hooks.values()
    assert isinstance(hook, prune.PruningContainer) and len(hook) == 2
    assert_state_equal(ours, theirs)
    assert_parity(ours, theirs, x, ["weight"])


def test_a_computed_or_missing_parameter_is_refused():
    m = nn.utils.weight_norm(nn.Linear(4, 3))
    with pytest.raises(TypeError, match="cannot assign 'ndarray' object to parameter 'weight_orig'"):
        prune.l1_unstructured(m, "weight", 1)
    with pytest.raises(TypeError, match="cannot prune 'bias' of Linear.*it is None"):
        prune.identity(nn.Linear(4, 3, bias=False), "bias")


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_are_torchs():
    for name in prune.__all__:
        ours, theirs = getattr(prune, name), getattr(tprune, name)
        if not isinstance(theirs, type):
            assert _params(ours) == _params(theirs), name
            continue
        for method in ("__init__", "__call__", "compute_mask", "apply_mask", "apply", "prune", "remove",
                       "add_pruning_method"):
            if method in vars(theirs) or method in vars(tprune.BasePruningMethod):
                assert _params(getattr(ours, method)) == _params(getattr(theirs, method)), (name, method)
        assert getattr(ours, "PRUNING_TYPE", None) == getattr(theirs, "PRUNING_TYPE", None)

"""F.linear_cross_entropy, its backward twin and nn.LinearCrossEntropyLoss against torch 2.13.

Outputs and every gradient (input, linear weight, linear bias) over reductions, class weights,
ignore_index (None, -100, a class that targets hit, one out of range), label smoothing,
K-dimensional out_features, bias on and off, class-index and probability targets, batched and
unbatched input, float32 and float64; torch's chunked path (``options``) against torchlite's
unchunked result; warnings, errors, signatures, and finite-difference gradchecks.
"""
import dataclasses
import inspect
import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from parity import TORCH_DTYPE, assert_close, copy_state
from torchlite.testing import gradcheck

IN, C, N = 5, 4, 6


def make_target(rng, kind, batch, out_features, ignore_index, dtype):
    """Class indices (some equal to the ignored value) or probabilities over C."""
    if kind == "probabilities":
        p = rng.random(batch + (C,) + out_features)
        return (p / p.sum(axis=len(batch), keepdims=True)).astype(dtype)
    t = rng.integers(0, C, size=batch + out_features)
    if t.ndim:
        hit = -100 if ignore_index is None else ignore_index
        t.reshape(-1)[::3] = hit
        t.reshape(-1)[1] = (hit + 1) % C if 0 <= hit < C else 1  # some target is not ignored
    return t


def torch_twin(tl_module, kwargs, dtype):
    th = torch.nn.LinearCrossEntropyLoss(IN, C, **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                                                   for k, v in kwargs.items()})
    th.to(TORCH_DTYPE[np.dtype(dtype)])
    tl_module.to(dtype)
    with torch.no_grad():  # random, not default, parameters
        for p in th.parameters():
            p.add_(torch.rand(p.shape, dtype=p.dtype) - 0.5)
    copy_state(tl_module, th)
    return th


def compare_module(tl, th, x, t, dtype, seed=0):
    """Loss, dLoss/dinput and the linear layer's gradients for one random upstream gradient."""
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    out = tl(x, t)
    t_out = th(tx, torch.from_numpy(np.asarray(t)))
    assert out.dtype == dtype
    assert_close(out, t_out.detach().numpy(), dtype, "loss")
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    t_out.backward(torch.from_numpy(g))
    dx = tl.backward(g)
    assert dx.dtype == dtype
    assert_close(dx, tx.grad.numpy(), dtype, "grad of input")
    t_params = dict(th.named_parameters())
    for name, p in tl.named_parameters():
        assert p.grad.dtype == dtype, name
        assert_close(p.grad, t_params[name].grad.numpy(), dtype, f"grad of {name}")
    assert tl.saved_count == 0


# bias only adds a constant to each logit, whatever the loss does with them: it alternates over the grid
GRID = [case + (i % 2 == 1,) for i, case in enumerate(itertools.product(
    ["mean", "sum", "none"], [False, True], [None, -100, 1, C + 5], [0.0, 0.1], [(), (3, 2)]))]


@pytest.mark.parametrize("reduction,weighted,ignore_index,smoothing,out_features,bias", GRID)
def test_module_matches_torch_class_indices(reduction, weighted, ignore_index, smoothing, out_features, bias):
    for dtype in (np.float64, np.float32):
        rng = np.random.default_rng(len(out_features) + 7 * abs(ignore_index or 0))
        kwargs = dict(out_features=out_features, bias=bias, reduction=reduction, ignore_index=ignore_index,
                      label_smoothing=smoothing)
        if weighted:
            kwargs["weight"] = rng.random(C) + 0.5
        tl = nn.LinearCrossEntropyLoss(IN, C, **kwargs)
        th = torch_twin(tl, kwargs, dtype)
        x = rng.standard_normal((N, IN)).astype(dtype)
        t = make_target(rng, "indices", (N,), out_features, ignore_index, dtype)
        compare_module(tl, th, x, t, np.dtype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction,weighted,smoothing,out_features,bias",
                         list(itertools.product(["mean", "sum", "none"], [False, True], [0.0, 0.2], [(), (2,)],
                                                [False, True])))
def test_module_matches_torch_probabilities(reduction, weighted, smoothing, out_features, bias, dtype):
    rng = np.random.default_rng(3)
    kwargs = dict(out_features=out_features, bias=bias, reduction=reduction, label_smoothing=smoothing)
    if weighted:
        kwargs["weight"] = rng.random(C) + 0.5
    tl = nn.LinearCrossEntropyLoss(IN, C, **kwargs)
    th = torch_twin(tl, kwargs, dtype)
    x = rng.standard_normal((N, IN)).astype(dtype)
    compare_module(tl, th, x, make_target(rng, "probabilities", (N,), out_features, None, dtype), np.dtype(dtype))


@pytest.mark.parametrize("kind", ["indices", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [False, True])
def test_module_unbatched(kind, reduction, bias):
    rng = np.random.default_rng(5)
    kwargs = dict(bias=bias, reduction=reduction, weight=rng.random(C) + 0.5, label_smoothing=0.1)
    tl = nn.LinearCrossEntropyLoss(IN, C, **kwargs)
    th = torch_twin(tl, kwargs, np.float64)
    t = np.asarray(2) if kind == "indices" else make_target(rng, kind, (), (), None, np.float64)
    compare_module(tl, th, rng.standard_normal(IN), t, np.dtype(np.float64))


def test_module_every_target_ignored_and_empty_batch():
    """'mean' over nothing is NaN with zero gradients, as torch."""
    for reduction, t in itertools.product(["mean", "sum", "none"], [np.full(N, 2), np.zeros(0, np.int64)]):
        kwargs = dict(bias=True, reduction=reduction, ignore_index=2)
        tl = nn.LinearCrossEntropyLoss(IN, C, **kwargs)
        th = torch_twin(tl, kwargs, np.float64)
        x = np.random.default_rng(0).standard_normal((len(t), IN))
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        out, t_out = tl(x, t), th(tx, torch.from_numpy(t))
        np.testing.assert_array_equal(np.isnan(out), torch.isnan(t_out).numpy())
        g = np.ones(np.shape(out))
        t_out.backward(torch.from_numpy(g))
        np.testing.assert_allclose(tl.backward(g), tx.grad.numpy())
        np.testing.assert_allclose(tl.linear.weight.grad, th.linear.weight.grad.numpy())


# ----------------------------------------------------------------------------- functional
def functional_case(rng, dtype, out_features, bias, kind, batched=True, ignore_index=None):
    x = rng.standard_normal((N, IN) if batched else (IN,)).astype(dtype)
    lw = rng.standard_normal((C,) + out_features + (IN,)).astype(dtype)
    lb = rng.standard_normal((C,) + out_features).astype(dtype) if bias else None
    t = make_target(rng, kind, (N,) if batched else (), out_features, ignore_index, dtype)
    return x, lw, lb, t


def torch_grads(x, lw, lb, t, g, **kwargs):
    tx, tw = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (x, lw))
    tb = None if lb is None else torch.from_numpy(lb.copy()).requires_grad_(True)
    kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = TF.linear_cross_entropy(tx, tw, torch.from_numpy(np.asarray(t)), linear_bias=tb, **kwargs)
    out.backward(torch.from_numpy(np.asarray(g)))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("out_features", [(), (3,), (2, 3)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("kind", ["indices", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_functional_and_backward_match_torch(dtype, out_features, bias, kind, reduction):
    rng = np.random.default_rng(11)
    ignore_index = 1 if kind == "indices" else None
    x, lw, lb, t = functional_case(rng, dtype, out_features, bias, kind, ignore_index=ignore_index)
    kwargs = dict(weight=(rng.random(C) + 0.5).astype(dtype), reduction=reduction, label_smoothing=0.1,
                  ignore_index=ignore_index)
    out = F.linear_cross_entropy(x, lw, t, linear_bias=lb, **kwargs)
    g = rng.standard_normal(out.shape).astype(dtype)
    expected = torch_grads(x, lw, lb, t, g, **kwargs)
    grads = F.linear_cross_entropy_backward(g, x, lw, t, linear_bias=lb, **kwargs)
    assert out.dtype == dtype and all(a is None or a.dtype == dtype for a in grads)
    for what, a, e in zip(["loss", "d_input", "d_linear_weight", "d_linear_bias"], (out,) + grads, expected):
        assert (a is None) == (e is None), what
        if e is not None:
            assert_close(a, e, np.dtype(dtype), what)


@pytest.mark.parametrize("kind", ["indices", "probabilities"])
def test_functional_unbatched(kind):
    rng = np.random.default_rng(2)
    x, lw, lb, t = functional_case(rng, np.float64, (), True, kind, batched=False)
    out = F.linear_cross_entropy(x, lw, t, linear_bias=lb)
    expected = torch_grads(x, lw, lb, t, 1.0)
    for a, e in zip((out,) + F.linear_cross_entropy_backward(1.0, x, lw, t, linear_bias=lb), expected):
        assert_close(a, e, np.float64, "unbatched")


def test_functional_equals_linear_then_cross_entropy():
    """torch's own definition, in torchlite's functions: logits (N, C, d1, ...) from the flat weight."""
    rng = np.random.default_rng(0)
    x, lw, lb, t = functional_case(rng, np.float64, (3, 2), True, "indices")
    logits = F.linear(x, lw.reshape(-1, IN), lb.reshape(-1)).reshape((N, C, 3, 2))
    np.testing.assert_allclose(F.linear_cross_entropy(x, lw, t, linear_bias=lb, label_smoothing=0.3),
                               F.cross_entropy(logits, t, label_smoothing=0.3), rtol=1e-14)


OPTIONS = [dict(), dict(batch_chunk_size=2), dict(batch_chunk_size=5, allow_retain_graph=True),
           dict(chunking_method="aspect_ratio"), dict(chunking_method="aspect_ratio:2", acc_policy="accurate"),
           dict(chunking_method=None, acc_policy="compact")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torchs_chunked_path_equals_unchunked(options, reduction, dtype):
    """torch chunks the batch with ``options``; torchlite's unchunked result is the same to rounding."""
    rng = np.random.default_rng(4)
    x, lw, lb, t = functional_case(rng, dtype, (), True, "indices")
    x, t = np.concatenate([x, x[:3]]), np.concatenate([t, [0, 3, -100]])  # 9 rows: chunks of unequal size
    kwargs = dict(weight=(rng.random(C) + 0.5).astype(dtype), reduction=reduction)
    out = F.linear_cross_entropy(x, lw, t, linear_bias=lb, options=nn.LinearCrossEntropyOptions(**options), **kwargs)
    g = rng.standard_normal(out.shape).astype(dtype)
    expected = torch_grads(x, lw, lb, t, g, options=torch.nn.LinearCrossEntropyOptions(**options), **kwargs)
    grads = F.linear_cross_entropy_backward(g, x, lw, t, linear_bias=lb, **kwargs)
    for what, a, e in zip(["loss", "d_input", "d_linear_weight", "d_linear_bias"], (out,) + grads, expected):
        assert_close(a, e, np.dtype(dtype), what)


def _warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("case", ["plain", "smoothing", "out_features", "probabilities", "uint8", "unbatched", "int32"])
def test_options_warn_where_torch_ignores_them(case):
    rng = np.random.default_rng(0)
    x, lw, lb, t = functional_case(rng, np.float64, (2,) if case == "out_features" else (), True,
                                   "probabilities" if case == "probabilities" else "indices",
                                   batched=case != "unbatched")
    t = np.clip(t, 0, None).astype(case) if case in ("uint8", "int32") else t
    kwargs = dict(label_smoothing=0.1 if case == "smoothing" else 0.0)
    ours = _warnings(lambda: F.linear_cross_entropy(x, lw, t, linear_bias=lb, options=nn.LinearCrossEntropyOptions(),
                                                    **kwargs))
    tt = torch.from_numpy(t.astype(np.int64) if case == "int32" else t)  # torchlite reads int32 as torch's int64
    theirs = _warnings(lambda: TF.linear_cross_entropy(*map(torch.from_numpy, (x, lw)), tt,
                                                       linear_bias=torch.from_numpy(lb),
                                                       options=torch.nn.LinearCrossEntropyOptions(), **kwargs))
    assert len(ours) == len(theirs) == (case not in ("plain", "unbatched", "int32"))
    assert all(m.startswith("linear_cross_entropy: ``options`` ignored") for m in ours)
    assert not _warnings(lambda: F.linear_cross_entropy(x, lw, t, linear_bias=lb, **kwargs))


# ----------------------------------------------------------------------------- errors
def _errors():
    """(name, arguments for both libraries): torch refuses each; torchlite must too."""
    r = np.random.default_rng(0)
    x, w, t = r.standard_normal((N, IN)), r.standard_normal((C, IN)), r.integers(0, C, N)
    w3 = r.standard_normal((C, 2, IN))
    return {
        "3-d input": ((x[None], w, t), {}),
        "0-d input": ((x[0, 0], w, t), {}),
        "1-d linear_weight": ((x, w[0], t), {}),
        "in_features": ((x, w[:, :3], t), {}),
        "bias shape": ((x, w, t), dict(linear_bias=np.zeros(C + 1))),
        "K-dim bias flat": ((x, w3, np.zeros((N, 2), np.int64)), dict(linear_bias=np.zeros(2 * C))),
        "K-dim unbatched": ((x[0], w3, np.zeros(2, np.int64)), {}),
        "K-dim target shape": ((x, w3, t), {}),
        "probabilities with ignore_index": ((x, w, r.random((N, C))), dict(ignore_index=-100)),
        "integer probabilities": ((x, w, np.zeros((N, C), np.int64)), {}),
        "float indices": ((x, w, t.astype(np.float64)), {}),
        "target out of range": ((x, w, t + C), {}),
        "negative target": ((x, w, t - C), dict(ignore_index=-1)),
        "weight shape": ((x, w, t), dict(weight=np.ones(C + 1))),
        "reduction": ((x, w, t), dict(reduction="avg")),
        "label_smoothing": ((x, w, t), dict(label_smoothing=1.5)),
        "batch sizes": ((x, w, t[:-1]), {}),
        "chunk size conflict": ((x, w, t), dict(options=("batch_chunk_size", 3, "chunking_method", "aspect_ratio"))),
        "acc_dtype": ((x, w, t), dict(options=("acc_dtype", "float32"))),
    }


def _options(v, lib):
    """("name", value, ...) as ``lib``'s options (a dtype named by string becomes torch's dtype for torch)."""
    if not isinstance(v, tuple):
        return v
    kwargs = {k: getattr(torch, a) if lib is torch.nn and k == "acc_dtype" else a for k, a in zip(v[::2], v[1::2])}
    return lib.LinearCrossEntropyOptions(**kwargs)


@pytest.mark.parametrize("name", sorted(_errors()))
def test_errors_where_torch_refuses(name):
    args, kwargs = _errors()[name]
    with pytest.raises(Exception):
        TF.linear_cross_entropy(*[torch.from_numpy(np.asarray(a)) for a in args],
                                **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else _options(v, torch.nn)
                                   for k, v in kwargs.items()})
    with pytest.raises((ValueError, TypeError)) as info:
        F.linear_cross_entropy(*args, **{k: _options(v, nn) for k, v in kwargs.items()})
    assert str(info.value).startswith("linear_cross_entropy")


def test_error_messages_say_what_was_expected():
    x, w = np.zeros((N, IN)), np.zeros((C, 2, IN))
    with pytest.raises(ValueError, match=r"^linear_cross_entropy: K-dimensional loss .* needs batched input \(N, 5\)"):
        F.linear_cross_entropy(x[0], w, np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"expected linear_bias of shape \(4, 2\)"):
        F.linear_cross_entropy(x, w, np.zeros((N, 2), np.int64), linear_bias=np.zeros(8))
    with pytest.raises(ValueError, match=r"\(logits \(6, 4, 2\)\): expected target shape"):
        F.linear_cross_entropy(x, w, np.zeros(N, np.int64))
    with pytest.raises(TypeError, match="LinearCrossEntropyOptions, got dict"):
        F.linear_cross_entropy(x, w[:, 0], np.zeros(N, np.int64), options={})
    with pytest.raises(TypeError, match="floating-point input"):
        F.linear_cross_entropy(np.array(["a"] * IN), w[:, 0], np.zeros((), np.int64))


def test_module_errors():
    for kwargs in [dict(weight=np.ones(C + 1)), dict(label_smoothing=-0.1), dict(label_smoothing=1.5)]:
        with pytest.raises(Exception):
            torch.nn.LinearCrossEntropyLoss(IN, C, **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                                                      for k, v in kwargs.items()})
        with pytest.raises(ValueError, match="^LinearCrossEntropyLoss: expected"):
            nn.LinearCrossEntropyLoss(IN, C, **kwargs)
    with pytest.raises(ValueError, match="^LinearCrossEntropyLoss"):
        nn.LinearCrossEntropyLoss(IN, C, device="cuda")
    m = nn.LinearCrossEntropyLoss(IN, C, out_features=(2,))
    with pytest.raises(ValueError, match=r"^LinearCrossEntropyLoss\(in_features=5, num_classes=4, out_features=\(2,\), "
                                         r".*\): expected input and linear_weight with equal last dimensions"):
        m(np.zeros((N, IN + 1)), np.zeros((N, 2), np.int64))
    assert m.saved_count == 0
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward()


@pytest.mark.parametrize("kwargs", [dict(batch_chunk_size=0), dict(batch_chunk_size=2.0), dict(acc_policy="fast"),
                                    dict(chunking_method="aspect_ratio:0"), dict(chunking_method="ratio"),
                                    dict(acc_dtype="int32")])
def test_options_refuse_what_torch_refuses(kwargs):
    with pytest.raises(ValueError):
        torch.nn.LinearCrossEntropyOptions(**dict(kwargs, acc_dtype=torch.int32) if "acc_dtype" in kwargs else kwargs)
    with pytest.raises(ValueError, match="^LinearCrossEntropyOptions: "):
        nn.LinearCrossEntropyOptions(**kwargs)


def test_options_are_torchs_dataclass():
    ours, theirs = dataclasses.fields(nn.LinearCrossEntropyOptions), dataclasses.fields(torch.nn.LinearCrossEntropyOptions)
    assert [(f.name, f.default) for f in ours] == [(f.name, f.default) for f in theirs]
    assert repr(nn.LinearCrossEntropyOptions(batch_chunk_size=2)) == repr(
        torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        nn.LinearCrossEntropyOptions().batch_chunk_size = 3
    assert nn.LinearCrossEntropyOptions(batch_chunk_size=True, acc_dtype=np.float16).batch_chunk_size is True


# ----------------------------------------------------------------------------- module contract
def test_signatures_are_torchs():
    def entries(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
    assert entries(F.linear_cross_entropy) == entries(TF.linear_cross_entropy)
    assert entries(nn.LinearCrossEntropyLoss.__init__) == entries(torch.nn.LinearCrossEntropyLoss.__init__)
    backward = entries(F.linear_cross_entropy_backward)
    assert backward[0][0] == "grad_output" and backward[1:] == entries(TF.linear_cross_entropy)[:-1]


def test_repr_state_dict_and_layout_are_torchs():
    kwargs = dict(out_features=(3, 2), bias=True, weight=np.ones(C), reduction="sum", ignore_index=1,
                  label_smoothing=0.1, options=nn.LinearCrossEntropyOptions(batch_chunk_size=4))
    tl = nn.LinearCrossEntropyLoss(IN, C, **kwargs)
    th = torch.nn.LinearCrossEntropyLoss(IN, C, **dict(kwargs, weight=torch.ones(C),
                                                       options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4)))
    assert repr(tl) == repr(th)
    assert {k: v.shape for k, v in tl.state_dict().items()} == {k: tuple(v.shape) for k, v in th.state_dict().items()}
    assert list(tl.state_dict()) == ["weight", "linear.weight", "linear.bias"]
    assert tl.linear.weight.dtype == np.float32 and tl.linear.bias.shape == (C * 6,)
    assert nn.LinearCrossEntropyLoss(IN, C, dtype=np.float64).linear.weight.dtype == np.float64
    assert nn.LinearCrossEntropyLoss(IN, C).linear.bias is None


def test_saved_stack_no_grad_and_needs_input_grad():
    rng = np.random.default_rng(0)
    m = nn.LinearCrossEntropyLoss(IN, C, bias=True)
    x1, x2 = rng.standard_normal((N, IN)), rng.standard_normal((N, IN))
    t1, t2 = rng.integers(0, C, N), rng.integers(0, C, N)
    with torchlite.no_grad():
        m(x1, t1)
    assert m.saved_count == 0
    m(x1, t1), m(x2, t2)
    d2, d1 = m.backward(), m.backward()  # reverse order
    single = nn.LinearCrossEntropyLoss(IN, C, bias=True)
    single.load_state_dict(m.state_dict())
    single(x1, t1)
    np.testing.assert_allclose(d1, single.backward(), rtol=1e-6)
    assert not np.allclose(d1, d2)
    m.zero_grad()
    m.needs_input_grad = False
    m(x1, t1)
    assert m.backward() is None
    np.testing.assert_allclose(m.linear.weight.grad, single.linear.weight.grad, rtol=1e-6)
    m.linear.bias.requires_grad_(False)
    m(x1, t1)
    m.backward()
    assert m.linear.bias.grad is None


def test_float32_stays_float32_with_integer_input():
    m = nn.LinearCrossEntropyLoss(IN, C, bias=True, weight=np.ones(C), label_smoothing=0.1)
    out = m(np.ones((N, IN), np.int64), np.zeros(N, np.int64))
    assert out.dtype == np.float32
    assert m.backward(np.float64(2.0)).dtype == np.float32
    assert m.linear.weight.grad.dtype == np.float32


@pytest.mark.parametrize("kwargs,kind", [
    (dict(out_features=(2, 3), bias=True, weight=True, ignore_index=1, label_smoothing=0.2, reduction="mean"),
     "indices"),
    (dict(bias=True, reduction="none", label_smoothing=0.1), "indices"),
    (dict(out_features=(2,), bias=True, weight=True, reduction="sum", label_smoothing=0.3), "probabilities"),
])
def test_gradcheck(kwargs, kind):
    rng = np.random.default_rng(1)
    if kwargs.get("weight"):
        kwargs = dict(kwargs, weight=rng.random(C) + 0.5)
    m = nn.LinearCrossEntropyLoss(IN, C, **kwargs).double()
    of = kwargs.get("out_features", ())
    t = make_target(rng, kind, (3,), of, kwargs.get("ignore_index"), np.float64)
    assert gradcheck(m, rng.standard_normal((3, IN)), t)

"""Losses and their functional forms against PyTorch: loss values and input gradients over all
reductions, weights, ignore_index, label smoothing, probability targets, K-dimensional inputs,
pos_weight broadcasting; gradchecks; extreme inputs; buffers; errors."""
import warnings

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import assert_close

DTYPES = [np.float64, np.float32]
REDUCTIONS = ["mean", "sum", "none"]
RNG = np.random.default_rng(1234)


def rand(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


def signs(*shape):
    return np.where(RNG.random(shape) < 0.5, -1.0, 1.0)


def to_torch(a, requires_grad=False):
    if not isinstance(a, np.ndarray):
        return a
    t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_() if requires_grad else t


def loss_parity(tl_loss, torch_loss, *inputs, dtype=np.float64, diff=(0,), seed=0):
    """Forward both losses on the same data, feed both the same upstream gradient, compare
    the loss and the gradients of the inputs at positions ``diff``. Returns (loss, grads)."""
    dtype = np.dtype(dtype)
    inputs = [a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in inputs]
    t_inputs = [to_torch(a, i in diff) for i, a in enumerate(inputs)]
    tl_loss.to(dtype)
    torch_loss.to({np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[dtype])
    out = tl_loss(*[a.copy() if isinstance(a, np.ndarray) else a for a in inputs])
    t_out = torch_loss(*t_inputs)
    assert isinstance(out, np.ndarray) and out.dtype == dtype, f"loss dtype {getattr(out, 'dtype', type(out))}"
    assert_close(out, t_out.detach().numpy(), dtype, "loss")
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    t_out.backward(torch.from_numpy(g))
    grads = tl_loss.backward(float(g) if g.ndim == 0 else g)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for i in diff:
        assert grads[i] is not None and grads[i].dtype == dtype, f"grad {i}"
        assert_close(grads[i], t_inputs[i].grad.numpy(), dtype, f"grad of input {i}")
    return out, grads


# ----------------------------------------------------------------------------- regression
REGRESSION = [("MSELoss", {}), ("L1Loss", {}), ("SmoothL1Loss", {}), ("SmoothL1Loss", {"beta": 0.5}),
              ("SmoothL1Loss", {"beta": 0.0}), ("HuberLoss", {}), ("HuberLoss", {"delta": 2.5})]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 4)])
@pytest.mark.parametrize("name,kw", REGRESSION)
def test_regression_parity(name, kw, shape, reduction, dtype):
    loss_parity(getattr(nn, name)(reduction=reduction, **kw), getattr(torch.nn, name)(reduction=reduction, **kw),
                rand(*shape, scale=2.0), rand(*shape, scale=2.0), dtype=dtype)


@pytest.mark.parametrize("name,kw", REGRESSION)
def test_regression_gradcheck(name, kw):
    for reduction in REDUCTIONS:
        assert gradcheck(getattr(nn, name)(reduction=reduction, **kw).double(), rand(3, 4, scale=2.0), rand(3, 4))


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"])
def test_regression_broadcast_target_warns_and_sums_gradient_like_torch(name):
    with pytest.warns(UserWarning, match="different to the input size"):
        loss_parity(getattr(nn, name)(), getattr(torch.nn, name)(), rand(4, 5), rand(5))
    with pytest.warns(UserWarning, match="different to the input size"):
        loss_parity(getattr(nn, name)(reduction="none"), getattr(torch.nn, name)(reduction="none"),
                    rand(1, 5), rand(3, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_functional_elementwise_weight(name, reduction):
    x, t, w = rand(4, 3), rand(4, 3), RNG.random((4, 3))
    tx = to_torch(x, True)
    ref = getattr(torch.nn.functional, name)(tx, to_torch(t), reduction=reduction, weight=to_torch(w))
    out = getattr(F, name)(x, t, reduction=reduction, weight=w)
    assert_close(out, ref.detach().numpy(), np.float64, "loss")
    g = np.asarray(rand(*out.shape))
    ref.backward(torch.from_numpy(g))
    dx = getattr(F, name + "_backward")(g, x, t, reduction=reduction, weight=w)
    assert_close(dx, tx.grad.numpy(), np.float64, "grad")


# ----------------------------------------------------------------------------- classification
# (input shape, class-index target shape)
CLASS_SHAPES = [((6, 5), (6,)), ((5,), ()), ((3, 5, 4), (3, 4)), ((2, 5, 3, 2), (2, 3, 2))]
CE_OPTIONS = [{}, {"weight": True}, {"ignore_index": -100}, {"ignore_index": 1}, {"weight": True, "ignore_index": 2},
              {"label_smoothing": 0.25}, {"label_smoothing": 0.2, "weight": True},
              {"label_smoothing": 0.3, "weight": True, "ignore_index": 0}, {"label_smoothing": 1.0}]


def class_targets(shape, classes, ignore_index=None):
    t = RNG.integers(0, classes, size=shape)
    if ignore_index is not None and t.size > 1:
        t.flat[1] = ignore_index  # ignored target present, but not all of them
    return t


def class_kwargs(opts, classes):
    kw = dict(opts)
    if kw.pop("weight", False):
        kw["weight"] = RNG.random(classes) + 0.5
    return kw, {k: to_torch(v) for k, v in kw.items()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", CE_OPTIONS, ids=str)
@pytest.mark.parametrize("in_shape,t_shape", CLASS_SHAPES)
def test_cross_entropy_class_indices(in_shape, t_shape, opts, reduction, dtype):
    classes = in_shape[0 if len(in_shape) == 1 else 1]
    kw, tkw = class_kwargs(opts, classes)
    target = class_targets(t_shape, classes, kw.get("ignore_index"))
    loss_parity(nn.CrossEntropyLoss(reduction=reduction, **kw), torch.nn.CrossEntropyLoss(reduction=reduction, **tkw),
                rand(*in_shape, scale=2.0), target, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"label_smoothing": 0.2},
                                  {"label_smoothing": 0.1, "weight": True}], ids=str)
@pytest.mark.parametrize("in_shape", [s for s, _ in CLASS_SHAPES])
def test_cross_entropy_class_probabilities(in_shape, opts, reduction, dtype):
    classes = in_shape[0 if len(in_shape) == 1 else 1]
    kw, tkw = class_kwargs(opts, classes)
    probs = torch.softmax(torch.from_numpy(rand(*in_shape)), dim=0 if len(in_shape) == 1 else 1).numpy()
    loss_parity(nn.CrossEntropyLoss(reduction=reduction, **kw), torch.nn.CrossEntropyLoss(reduction=reduction, **tkw),
                rand(*in_shape, scale=2.0), probs, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [o for o in CE_OPTIONS if "label_smoothing" not in o], ids=str)
@pytest.mark.parametrize("in_shape,t_shape", CLASS_SHAPES)
def test_nll_loss(in_shape, t_shape, opts, reduction, dtype):
    classes = in_shape[0 if len(in_shape) == 1 else 1]
    kw, tkw = class_kwargs(opts, classes)
    target = class_targets(t_shape, classes, kw.get("ignore_index"))
    loss_parity(nn.NLLLoss(reduction=reduction, **kw), torch.nn.NLLLoss(reduction=reduction, **tkw),
                rand(*in_shape), target, dtype=dtype)


def test_class_losses_gradcheck():
    x = rand(4, 5, 3)
    t = RNG.integers(0, 5, (4, 3))
    t[0, 0] = -100
    w = RNG.random(5) + 0.5
    for reduction in REDUCTIONS:
        assert gradcheck(nn.CrossEntropyLoss(w, reduction=reduction, label_smoothing=0.2).double(), x, t)
        assert gradcheck(nn.NLLLoss(w, reduction=reduction).double(), x, t)
        probs = torch.softmax(torch.from_numpy(rand(4, 5, 3)), 1).numpy()
        assert gradcheck(nn.CrossEntropyLoss(w, reduction=reduction, label_smoothing=0.1).double(), x, probs)


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient_like_torch():
    x = rand(4, 3)
    t = np.full(4, -100)
    for kw in ({}, {"label_smoothing": 0.1}):
        out, (dx,) = loss_parity(nn.CrossEntropyLoss(**kw), torch.nn.CrossEntropyLoss(**kw), x, t)
        assert np.isnan(out) and not np.any(dx)


def test_functional_cross_entropy_and_twin_match_module():
    x, t = rand(6, 4), RNG.integers(0, 4, 6)
    m = nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")
    out = m(x, t)
    assert_close(F.cross_entropy(x, t, label_smoothing=0.1, reduction="sum"), out, np.float64, "loss")
    assert_close(F.cross_entropy_backward(0.7, x, t, label_smoothing=0.1, reduction="sum"), m.backward(0.7),
                 np.float64, "grad")
    dlogp = F.nll_loss_backward(1.0, F.log_softmax(x, 1), t)
    assert_close(F.log_softmax_backward(dlogp, F.log_softmax(x, 1), 1), F.cross_entropy_backward(1.0, x, t),
                 np.float64, "composed grad")


# ----------------------------------------------------------------------------- binary
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (4,), (6, 4), (6, 1)])
def test_bce(weight_shape, reduction, dtype):
    x = 1 / (1 + np.exp(-rand(6, 4, scale=2.0)))
    t = RNG.random((6, 4))
    w = None if weight_shape is None else RNG.random(weight_shape) + 0.5
    loss_parity(nn.BCELoss(w, reduction=reduction), torch.nn.BCELoss(to_torch(w), reduction=reduction), x, t,
                dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weight_shape,pos_shape", [
    ((6, 4), None, None), ((6, 4), (4,), None), ((6, 4), None, (4,)), ((6, 4), (6, 1), (1, 4)),
    ((2, 3, 4), (3, 4), (4,)), ((2, 3, 4), None, (3, 1)), ((5,), (5,), (5,))])
def test_bce_with_logits(shape, weight_shape, pos_shape, reduction, dtype):
    w = None if weight_shape is None else RNG.random(weight_shape) + 0.5
    pw = None if pos_shape is None else RNG.random(pos_shape) * 3
    loss_parity(nn.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw),
                torch.nn.BCEWithLogitsLoss(to_torch(w), reduction=reduction, pos_weight=to_torch(pw)),
                rand(*shape, scale=3.0), RNG.random(shape), dtype=dtype)


def test_binary_gradcheck():
    x = 0.05 + 0.9 * RNG.random((3, 4))
    for reduction in REDUCTIONS:
        assert gradcheck(nn.BCELoss(RNG.random(4), reduction=reduction).double(), x, RNG.random((3, 4)))
        m = nn.BCEWithLogitsLoss(RNG.random(4), reduction=reduction, pos_weight=RNG.random(4) * 2)
        assert gradcheck(m.double(), rand(3, 4), RNG.random((3, 4)))


# ----------------------------------------------------------------------------- other losses
def kl_data(shape, log_target):
    x = torch.log_softmax(torch.from_numpy(rand(*shape)), -1).numpy()
    t = torch.softmax(torch.from_numpy(rand(*shape)), -1).numpy()
    t[..., 0] = 0.0  # xlogy(0, 0) = 0
    return x, (np.log(t + 1e-3) if log_target else t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4), (6,)])
def test_kl_div(shape, log_target, reduction, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'mean' warns in both libraries
        loss_parity(nn.KLDivLoss(reduction=reduction, log_target=log_target),
                    torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), *kl_data(shape, log_target),
                    dtype=dtype)


def test_kl_div_mean_warns_like_torch():
    with pytest.warns(UserWarning, match="batchmean"):
        nn.KLDivLoss()(*kl_data((2, 3), False))


MARGIN_CASES = [
    ("SoftMarginLoss", {}, lambda s: (rand(*s, scale=2.0), signs(*s)), (0,)),
    ("HingeEmbeddingLoss", {}, lambda s: (rand(*s, scale=2.0), signs(*s)), (0,)),
    ("HingeEmbeddingLoss", {"margin": 0.5}, lambda s: (rand(*s, scale=2.0), signs(*s)), (0,)),
    ("MarginRankingLoss", {}, lambda s: (rand(*s), rand(*s), signs(*s)), (0, 1)),
    ("MarginRankingLoss", {"margin": 0.5}, lambda s: (rand(*s), rand(*s), signs(*s)), (0, 1)),
    ("PoissonNLLLoss", {}, lambda s: (rand(*s), RNG.poisson(2.0, s).astype(float)), (0,)),
    ("PoissonNLLLoss", {"log_input": False, "full": True},
     lambda s: (RNG.random(s) + 0.1, RNG.poisson(3.0, s).astype(float)), (0,)),
    ("PoissonNLLLoss", {"full": True}, lambda s: (rand(*s), RNG.poisson(3.0, s).astype(float)), (0,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6,), (4, 5)])
@pytest.mark.parametrize("name,kw,make,diff", MARGIN_CASES, ids=[f"{c[0]}{c[1]}" for c in MARGIN_CASES])
def test_margin_and_poisson_losses(name, kw, make, diff, shape, reduction, dtype):
    loss_parity(getattr(nn, name)(reduction=reduction, **kw), getattr(torch.nn, name)(reduction=reduction, **kw),
                *make(shape), dtype=dtype, diff=diff)


@pytest.mark.parametrize("name,kw,make,diff", MARGIN_CASES, ids=[f"{c[0]}{c[1]}" for c in MARGIN_CASES])
def test_margin_and_poisson_gradcheck(name, kw, make, diff):
    for reduction in REDUCTIONS:
        assert gradcheck(getattr(nn, name)(reduction=reduction, **kw).double(), *make((3, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(6, 4), (4,)])
def test_cosine_embedding(shape, margin, reduction, dtype):
    target = signs(*shape[:-1]) if len(shape) > 1 else np.array(-1.0)
    loss_parity(nn.CosineEmbeddingLoss(margin, reduction=reduction),
                torch.nn.CosineEmbeddingLoss(margin, reduction=reduction),
                rand(*shape), rand(*shape), target, dtype=dtype, diff=(0, 1))


def test_cosine_embedding_gradcheck():
    for reduction in REDUCTIONS:
        assert gradcheck(nn.CosineEmbeddingLoss(-0.5, reduction=reduction).double(), rand(5, 3), rand(5, 3), signs(5))


GAUSSIAN_VARS = [("same", lambda s: RNG.random(s) + 0.1), ("no last dim", lambda s: RNG.random(s[:-1]) + 0.1),
                 ("one dim of 1", lambda s: RNG.random(s[:-1] + (1,)) + 0.1),
                 ("below eps", lambda s: np.where(RNG.random(s) < 0.3, 1e-8, RNG.random(s) + 0.1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_kind,make_var", GAUSSIAN_VARS, ids=[v[0] for v in GAUSSIAN_VARS])
def test_gaussian_nll(var_kind, make_var, full, reduction, dtype):
    shape = (4, 3)
    loss_parity(nn.GaussianNLLLoss(full=full, reduction=reduction),
                torch.nn.GaussianNLLLoss(full=full, reduction=reduction),
                rand(*shape), rand(*shape), make_var(shape), dtype=dtype, diff=(0, 2))


def test_gaussian_nll_float_var_and_gradcheck():
    out, (dx, dt, dvar) = loss_parity(nn.GaussianNLLLoss(), torch.nn.GaussianNLLLoss(), rand(4, 3), rand(4, 3), 0.5)
    assert dt is None and dvar is None
    for reduction in REDUCTIONS:
        assert gradcheck(nn.GaussianNLLLoss(reduction=reduction, full=True).double(), rand(4, 3), rand(4, 3),
                         RNG.random(4) + 0.5)


# ----------------------------------------------------------------------------- extremes
def quiet():
    """Warnings become errors and numpy raises on overflow, division by zero and invalid values.

    Underflow (exp(-2000) == 0) is exact IEEE behaviour, ignored by numpy's defaults and by torch.
    """
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    return ctx, np.errstate(over="raise", divide="raise", invalid="raise")


BIG = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1000.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs_are_finite_and_silent(dtype):
    ctx, err = quiet()
    try:
        with err:
            for reduction in REDUCTIONS:
                cases = [
                    (nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.1),
                     torch.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.1), (BIG, np.array([0, 2, 1]))),
                    (nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
                     (BIG, np.full((3, 3), 1 / 3))),
                    (nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=np.array([2.0, 1.0, 0.5])),
                     torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor([2.0, 1.0, 0.5])),
                     (BIG, np.array([[1.0, 0.5, 0.0]] * 3))),
                    (nn.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction),
                     (np.array([0.0, 1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0]))),
                    (nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), (BIG, -BIG)),
                    (nn.HuberLoss(reduction=reduction), torch.nn.HuberLoss(reduction=reduction), (BIG, -BIG)),
                    (nn.SmoothL1Loss(reduction=reduction), torch.nn.SmoothL1Loss(reduction=reduction), (BIG, -BIG)),
                    (nn.L1Loss(reduction=reduction), torch.nn.L1Loss(reduction=reduction), (BIG, -BIG)),
                    (nn.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"),
                     (BIG - 1000, np.array([[0.0, 0.5, 0.5]] * 3))),
                    (nn.HingeEmbeddingLoss(reduction=reduction), torch.nn.HingeEmbeddingLoss(reduction=reduction),
                     (BIG, np.sign(BIG + 0.5))),
                ]
                for tl, ref, args in cases:
                    out, grads = loss_parity(tl, ref, *args, dtype=dtype)
                    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grads[0]))
                # torch's soft margin loss overflows here (log1p(exp(1000)) = inf); ours is exact
                x, y = BIG.astype(dtype), np.sign(BIG + 0.5).astype(dtype)
                m = nn.SoftMarginLoss(reduction="none")
                out, dx = m(x, y), m.backward(np.ones(x.shape, dtype))
                tx = torch.from_numpy(-y * x)
                assert_close(out, torch.nn.functional.softplus(tx).numpy(), dtype, "soft margin")
                assert_close(dx, (-y * torch.sigmoid(tx).numpy()), dtype, "soft margin grad")
    finally:
        ctx.__exit__(None, None, None)


# ----------------------------------------------------------------------------- module behaviour
def test_weights_are_buffers_in_state_dict_like_torch():
    w = np.arange(1.0, 4.0)
    for name, kw in [("CrossEntropyLoss", {"weight": w}), ("NLLLoss", {"weight": w}), ("BCELoss", {"weight": w}),
                     ("BCEWithLogitsLoss", {"weight": w, "pos_weight": w + 1}), ("BCEWithLogitsLoss", {}),
                     ("CrossEntropyLoss", {})]:
        ours = getattr(nn, name)(**kw)
        theirs = getattr(torch.nn, name)(**{k: torch.from_numpy(v) for k, v in kw.items()})
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict({k: v.numpy() * 2 for k, v in theirs.state_dict().items()})
        for k, v in ours.state_dict().items():
            np.testing.assert_array_equal(v, theirs.state_dict()[k].numpy() * 2)
    m = nn.CrossEntropyLoss(weight=[1, 2, 3]).double()
    assert m.weight.dtype == np.float64
    assert nn.CrossEntropyLoss(weight=[1, 2, 3]).weight.dtype == np.float32


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss",
                                  "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "SoftMarginLoss", "MarginRankingLoss",
                                  "HingeEmbeddingLoss", "CosineEmbeddingLoss", "GaussianNLLLoss", "PoissonNLLLoss"])
def test_repr_and_attributes_match_torch(name):
    ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
    assert repr(ours) == repr(theirs)
    for attr in ("reduction", "ignore_index", "label_smoothing", "beta", "delta", "log_target", "margin", "full",
                 "eps", "log_input"):
        if hasattr(theirs, attr):
            assert getattr(ours, attr) == getattr(theirs, attr), attr


def test_float32_stays_float32_and_default_upstream_is_one():
    x = rand(5, 3).astype(np.float32)
    t = RNG.integers(0, 3, 5)
    m = nn.CrossEntropyLoss(weight=np.ones(3))  # float64 weight must not upcast
    out = m(x, t)
    dx = m.backward()
    assert out.dtype == np.float32 and out.shape == () and dx.dtype == np.float32
    m2 = nn.MSELoss()
    assert m2(x, np.zeros((5, 3))).dtype == np.float32 and m2.backward().dtype == np.float32
    for name, args in [("mse_loss", (x, rand(5, 3))), ("binary_cross_entropy_with_logits", (x, RNG.random((5, 3)))),
                       ("kl_div", (x, RNG.random((5, 3)))), ("margin_ranking_loss", (x, rand(5, 3), signs(5, 3)))]:
        grads = getattr(F, name + "_backward")(1.0, *args)
        assert all(g.dtype == np.float32 for g in (grads if isinstance(grads, tuple) else (grads,))), name


def test_unbatched_none_reduction_is_0d_and_stack_order():
    m = nn.CrossEntropyLoss(reduction="none")
    assert m(rand(4), np.array(2)).shape == ()
    m.backward(1.0)
    x1, x2 = rand(3, 4), rand(3, 4)
    t1, t2 = RNG.integers(0, 4, 3), RNG.integers(0, 4, 3)
    m = nn.CrossEntropyLoss()
    m(x1, t1)
    m(x2, t2)
    g2, g1 = m.backward(), m.backward()
    np.testing.assert_allclose(g1, F.cross_entropy_backward(1.0, x1, t1), rtol=1e-12)
    np.testing.assert_allclose(g2, F.cross_entropy_backward(1.0, x2, t2), rtol=1e-12)
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward()
    with torchlite.no_grad():
        m(x1, t1)
    assert m.saved_count == 0


# ----------------------------------------------------------------------------- errors
def test_class_target_errors_name_the_loss():
    x = rand(8, 10)
    t = RNG.integers(0, 10, 8)
    t[3] = 12
    expected = r"^CrossEntropyLoss\(\): target class 12 out of range \[0, 10\) at position 3"
    with pytest.raises(ValueError, match=expected):
        nn.CrossEntropyLoss()(x, t)
    with pytest.raises(ValueError, match=r"^NLLLoss\(\): target class -1 out of range \[0, 10\) at position \(1, 2\)"):
        nn.NLLLoss()(rand(2, 10, 3), np.array([[0, 0, 0], [0, 0, -1]]))
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss\(\): expected target shape \(N,\) = \(8,\) for input "
                                         r"\(8, 10\), got \(8, 1\)"):
        nn.CrossEntropyLoss()(x, np.zeros((8, 1), int))
    with pytest.raises(ValueError, match=r"expected target shape \(N, d1, d2\) = \(2, 4, 5\) for input \(2, 3, 4, 5\)"):
        nn.NLLLoss()(rand(2, 3, 4, 5), np.zeros((2, 4, 4), int))
    with pytest.raises(TypeError, match=r"^CrossEntropyLoss\(\): class-index target must be an integer array"):
        nn.CrossEntropyLoss()(x, np.zeros(8))
    with pytest.raises(TypeError, match=r"^NLLLoss\(\): class-index target must be an integer array"):
        nn.NLLLoss()(x, np.zeros(8, bool))
    with pytest.raises(TypeError, match="must be floating-point"):
        nn.CrossEntropyLoss()(x, np.zeros((8, 10), int))
    with pytest.raises(ValueError, match="ignore_index is not supported"):
        nn.CrossEntropyLoss(ignore_index=0)(x, np.full((8, 10), 0.1))
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss\(\): expected weight of shape \(10,\)"):
        nn.CrossEntropyLoss(weight=np.ones(9))(x, np.zeros(8, int))
    with pytest.raises(ValueError, match="^cross_entropy: target class 10 out of range"):
        F.cross_entropy(x, np.full(8, 10))
    # an out-of-range ignore_index is fine
    nn.CrossEntropyLoss(ignore_index=99)(x, np.full(8, 99))


def test_other_errors_name_the_loss():
    with pytest.raises(ValueError, match=r"^BCELoss\(\): all elements of input should be between 0 and 1"):
        nn.BCELoss()(np.array([0.5, 1.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"^BCEWithLogitsLoss\(\): expected target shape \(3,\)"):
        nn.BCEWithLogitsLoss()(rand(3), rand(3, 1))
    with pytest.raises(ValueError, match=r"^BCEWithLogitsLoss\(\): pos_weight of shape \(4,\) does not broadcast"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones(4))(rand(2, 3), RNG.random((2, 3)))
    with pytest.raises(ValueError, match=r"^MSELoss\(\): target of shape \(4,\) does not broadcast"):
        nn.MSELoss()(rand(2, 3), rand(4))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        nn.CrossEntropyLoss(reduction="batchmean")
    with pytest.raises(ValueError, match=r"^GaussianNLLLoss\(\): var has negative"):
        nn.GaussianNLLLoss()(rand(3), rand(3), -np.ones(3))
    with pytest.raises(ValueError, match=r"^GaussianNLLLoss\(\): var of shape \(2,\) is of incorrect size"):
        nn.GaussianNLLLoss()(rand(3, 4), rand(3, 4), np.ones(2))
    with pytest.raises(ValueError, match=r"^CosineEmbeddingLoss\(\): expected input1 and input2"):
        nn.CosineEmbeddingLoss()(rand(3, 4), rand(3, 5), signs(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)(rand(2, 3), np.zeros(2, int))
    with pytest.raises(TypeError, match=r"^L1Loss\(\): expected a floating-point input"):
        nn.L1Loss()(np.array(["a"]), np.zeros(1))


FUNCTIONAL = [
    ("mse_loss", lambda: (rand(4, 3), rand(4, 3)), {"reduction": "sum"}, (0,)),
    ("l1_loss", lambda: (rand(4, 3), rand(4, 3)), {}, (0,)),
    ("smooth_l1_loss", lambda: (rand(4, 3), rand(4, 3)), {"beta": 0.5}, (0,)),
    ("huber_loss", lambda: (rand(4, 3), rand(4, 3)), {"delta": 0.7, "reduction": "none"}, (0,)),
    ("nll_loss", lambda: (rand(4, 3, 2), RNG.integers(0, 3, (4, 2))), {"weight": RNG.random(3), "ignore_index": 1},
     (0,)),
    ("cross_entropy", lambda: (rand(4, 3), RNG.integers(0, 3, 4)), {"weight": RNG.random(3), "label_smoothing": 0.3},
     (0,)),
    ("binary_cross_entropy", lambda: (RNG.random((4, 3)), RNG.random((4, 3))), {"weight": RNG.random(3)}, (0,)),
    ("binary_cross_entropy_with_logits", lambda: (rand(4, 3), RNG.random((4, 3))), {"pos_weight": RNG.random(3)},
     (0,)),
    ("kl_div", lambda: kl_data((4, 3), True), {"reduction": "batchmean", "log_target": True}, (0,)),
    ("soft_margin_loss", lambda: (rand(4, 3), signs(4, 3)), {"reduction": "none"}, (0,)),
    ("margin_ranking_loss", lambda: (rand(5), rand(5), signs(5)), {"margin": 0.2}, (0, 1)),
    ("hinge_embedding_loss", lambda: (rand(5), signs(5)), {"margin": 0.5}, (0,)),
    ("cosine_embedding_loss", lambda: (rand(5, 3), rand(5, 3), signs(5)), {"margin": 0.1}, (0, 1)),
    ("gaussian_nll_loss", lambda: (rand(5, 3), rand(5, 3), RNG.random(5) + 0.1), {"full": True}, (0, 2)),
    ("poisson_nll_loss", lambda: (RNG.random(5) + 0.1, RNG.poisson(3.0, 5).astype(float)),
     {"log_input": False, "full": True}, (0,)),
]


@pytest.mark.parametrize("name,make,kw,diff", FUNCTIONAL, ids=[f[0] for f in FUNCTIONAL])
def test_functional_forms_and_backward_twins_match_torch(name, make, kw, diff):
    args = make()
    t_args = [to_torch(a, i in diff) for i, a in enumerate(args)]
    ref = getattr(torch.nn.functional, name)(*t_args, **{k: to_torch(v) for k, v in kw.items()})
    out = getattr(F, name)(*args, **kw)
    assert_close(out, ref.detach().numpy(), np.float64, "loss")
    g = np.asarray(rand(*out.shape))
    ref.backward(torch.from_numpy(g))
    grads = getattr(F, name + "_backward")(g, *args, **kw)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if name == "gaussian_nll_loss":
        grads = (grads[0], None, grads[1])
    for i in diff:
        assert_close(grads[i], t_args[i].grad.numpy(), np.float64, f"grad {i}")


LEGACY_LOSSES = ["MSELoss", "L1Loss", "SmoothL1Loss", "NLLLoss", "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss",
                 "KLDivLoss", "SoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
                 "PoissonNLLLoss", "MultiMarginLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss",
                 "TripletMarginLoss"]


@pytest.mark.parametrize("name", LEGACY_LOSSES)
@pytest.mark.parametrize("size_average, reduce", [(None, None), (True, None), (False, None), (None, False),
                                                  (False, True), (True, False)])
def test_deprecated_size_average_and_reduce_read_as_torch(name, size_average, reduce):
    import warnings as _w

    with _w.catch_warnings(record=True) as ours:
        _w.simplefilter("always")
        tl = getattr(nn, name)(size_average=size_average, reduce=reduce, reduction="sum")
    with _w.catch_warnings(record=True) as theirs:
        _w.simplefilter("always")
        th = getattr(torch.nn, name)(size_average=size_average, reduce=reduce, reduction="sum")
    assert tl.reduction == th.reduction
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]


def test_loss_positional_arguments_follow_torch():
    w = np.ones(3, np.float32)
    loss = nn.NLLLoss(w, None, 2, None, "sum")
    assert loss.ignore_index == 2 and loss.reduction == "sum"
    assert nn.MSELoss(None, None, "none").reduction == "none"
    assert nn.TripletMarginLoss(1.0, 2.0, 1e-6, False, None, None, "sum").reduction == "sum"

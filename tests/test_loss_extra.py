"""MultiMarginLoss, MultiLabelMarginLoss, MultiLabelSoftMarginLoss, TripletMarginLoss,
TripletMarginWithDistanceLoss and CTCLoss (and their functional forms) against PyTorch: loss values
and input gradients over reductions, options, shapes (incl. unbatched), boundaries; gradchecks;
reprs and buffers; errors."""
import warnings

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import TORCH_DTYPE, assert_close

DTYPES = [np.float64, np.float32]
REDUCTIONS = ["mean", "sum", "none"]
RNG = np.random.default_rng(4321)


def rand(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


def to_torch(a, requires_grad=False):
    if not isinstance(a, np.ndarray):
        return a
    t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_() if requires_grad else t


def loss_parity(tl_loss, torch_loss, *inputs, dtype=np.float64, diff=(0,)):
    """Both losses on the same data and upstream gradient: compare the loss and the gradients of the
    inputs at positions ``diff``. Returns (loss, grads)."""
    dtype = np.dtype(dtype)
    inputs = [a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in inputs]
    t_inputs = [to_torch(a, i in diff) for i, a in enumerate(inputs)]
    tl_loss.to(dtype)
    torch_loss.to(TORCH_DTYPE[dtype])
    out = tl_loss(*[a.copy() if isinstance(a, np.ndarray) else a for a in inputs])
    t_out = torch_loss(*t_inputs)
    assert isinstance(out, np.ndarray) and out.dtype == dtype, f"loss dtype {getattr(out, 'dtype', type(out))}"
    assert_close(out, t_out.detach().numpy(), dtype, "loss")
    g = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    t_out.backward(torch.from_numpy(g))
    grads = tl_loss.backward(float(g) if g.ndim == 0 else g)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for i in diff:
        assert grads[i] is not None and grads[i].dtype == dtype, f"grad {i}"
        assert_close(grads[i], t_inputs[i].grad.numpy(), dtype, f"grad of input {i}")
    return out, grads


def classes(shape, c):
    return RNG.integers(0, c, shape)


# ----------------------------------------------------------------------------- multi-class margins
MULTI_MARGIN = [{}, {"p": 2}, {"margin": 0.3, "weight": True}, {"p": 2, "margin": 2.5, "weight": True}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 5), (5,)], ids=str)
@pytest.mark.parametrize("opts", MULTI_MARGIN, ids=str)
def test_multi_margin(opts, shape, reduction, dtype):
    kw = dict(opts)
    if kw.pop("weight", False):
        kw["weight"] = RNG.random(shape[-1]) + 0.5
    target = classes(shape[:-1], shape[-1])
    loss_parity(nn.MultiMarginLoss(reduction=reduction, **kw),
                torch.nn.MultiMarginLoss(reduction=reduction, **{k: to_torch(v) for k, v in kw.items()}),
                rand(*shape), target, dtype=dtype)


def test_multi_margin_exact_boundary_is_inactive_like_torch():
    x = np.array([[3.0, 2.0, 1.0, 2.5], [0.0, 1.0, 0.0, 1.0]])  # margins of exactly 0 do not count
    for p in (1, 2):
        loss_parity(nn.MultiMarginLoss(p, reduction="none"), torch.nn.MultiMarginLoss(p, reduction="none"),
                    x, np.array([0, 1]))


def multilabel_targets(n, c):
    """Target lists of varied length (duplicates included), ended by -1, with junk after the -1."""
    t = RNG.integers(0, c, (n, c))
    for i in range(n):
        length = i % (c + 1)
        if length < c:
            t[i, length] = -1
    return t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7, 5), (4,)], ids=str)
def test_multilabel_margin(shape, reduction, dtype):
    target = multilabel_targets(7, shape[-1]) if len(shape) == 2 else np.array([3, 0, 3, -1])
    loss_parity(nn.MultiLabelMarginLoss(reduction=reduction), torch.nn.MultiLabelMarginLoss(reduction=reduction),
                rand(*shape), target, dtype=dtype)


def test_multilabel_margin_exact_boundary_and_full_target_list():
    x = np.array([[1.0, 0.0, 2.0, 0.5], [0.3, 0.2, 0.1, 0.0]])  # 1 - (x[0] - x[1]) == 0 exactly
    loss_parity(nn.MultiLabelMarginLoss(reduction="none"), torch.nn.MultiLabelMarginLoss(reduction="none"),
                x, np.array([[0, -1, 1, 2], [0, 1, 2, 3]]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weight_shape", [((6, 4), None), ((6, 4), (4,)), ((6, 4), (6, 1)), ((4,), (4,)),
                                                ((2, 3, 4), (4,))], ids=str)
def test_multilabel_soft_margin(shape, weight_shape, reduction, dtype):
    w = None if weight_shape is None else RNG.random(weight_shape) + 0.5
    target = (RNG.random(shape) < 0.5).astype(float)
    loss_parity(nn.MultiLabelSoftMarginLoss(w, reduction=reduction),
                torch.nn.MultiLabelSoftMarginLoss(to_torch(w), reduction=reduction),
                rand(*shape, scale=3.0), target, dtype=dtype)


def test_multilabel_soft_margin_extremes_are_finite_and_silent():
    x = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0]])
    t = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        for dtype in DTYPES:
            out, (dx,) = loss_parity(nn.MultiLabelSoftMarginLoss(), torch.nn.MultiLabelSoftMarginLoss(), x, t,
                                     dtype=dtype)
            assert np.isfinite(out) and np.all(np.isfinite(dx))


def test_margin_losses_gradcheck():
    x = rand(4, 5)
    t = classes(4, 5)
    w = RNG.random(5) + 0.5
    for reduction in REDUCTIONS:
        for p in (1, 2):
            assert gradcheck(nn.MultiMarginLoss(p, 0.7, w, reduction=reduction).double(), x, t)
        assert gradcheck(nn.MultiLabelMarginLoss(reduction=reduction).double(), x, multilabel_targets(4, 5))
        assert gradcheck(nn.MultiLabelSoftMarginLoss(w, reduction=reduction).double(), x,
                         (RNG.random((4, 5)) < 0.5).astype(float))


# ----------------------------------------------------------------------------- triplets
TRIPLET = [{}, {"margin": 0.5, "p": 1.0}, {"p": 3.0, "eps": 1e-3}, {"swap": True}, {"swap": True, "p": 1.0},
           {"margin": 2.0, "p": float("inf"), "swap": True}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 4), (4,)], ids=str)
@pytest.mark.parametrize("opts", TRIPLET, ids=str)
def test_triplet_margin(opts, shape, reduction, dtype):
    loss_parity(nn.TripletMarginLoss(reduction=reduction, **opts),
                torch.nn.TripletMarginLoss(reduction=reduction, **opts),
                rand(*shape), rand(*shape), rand(*shape), dtype=dtype, diff=(0, 1, 2))


def test_triplet_boundaries_hinge_at_zero_and_swap_ties_split_like_torch():
    a, p = np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[3.0, 4.0], [0.0, 2.0]])
    n = np.array([[6.0, 0.0], [0.0, 1.0]])  # row 0: 1 + 5 - 6 == 0; row 1: d(a, n) == d(p, n) == 1
    for swap in (False, True):
        kw = dict(eps=0.0, swap=swap, reduction="none")
        loss_parity(nn.TripletMarginLoss(**kw), torch.nn.TripletMarginLoss(**kw), a, p, n, diff=(0, 1, 2))


DISTANCES = [("default", lambda: (None, None)),
             ("l1", lambda: (nn.PairwiseDistance(p=1.0), torch.nn.PairwiseDistance(p=1.0))),
             ("cosine", lambda: (nn.CosineSimilarity(dim=-1), torch.nn.CosineSimilarity(dim=-1)))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("name,make", DISTANCES, ids=[d[0] for d in DISTANCES])
def test_triplet_margin_with_distance(name, make, swap, reduction, dtype):
    ours, theirs = make()
    kw = dict(margin=0.7, swap=swap, reduction=reduction)
    tl = nn.TripletMarginWithDistanceLoss(distance_function=ours, **kw)
    ref = torch.nn.TripletMarginWithDistanceLoss(distance_function=theirs, **kw)
    assert repr(tl) == repr(ref)
    loss_parity(tl, ref, rand(5, 3), rand(5, 3), rand(5, 3), dtype=dtype, diff=(0, 1, 2))
    assert tl.distance_function.saved_count == 0


def test_triplet_gradcheck():
    a, p, n = rand(4, 3), rand(4, 3), rand(4, 3)
    for reduction in REDUCTIONS:
        for kw in ({}, {"p": 1.0, "swap": True}, {"p": 3.0, "margin": 3.0}):
            assert gradcheck(nn.TripletMarginLoss(reduction=reduction, **kw).double(), a, p, n)
        m = nn.TripletMarginWithDistanceLoss(distance_function=nn.PairwiseDistance(1.5), swap=True, margin=2.0,
                                             reduction=reduction)
        assert gradcheck(m.double(), a, p, n)


# ----------------------------------------------------------------------------- CTC
def ctc_case(steps, target_lengths, input_lengths, classes=5, blank=0, layout="padded", seed=0):
    """(log_probs (T, N, C), targets, input_lengths, target_lengths) with labels != blank."""
    rng = np.random.default_rng(seed)
    n = len(target_lengths)
    lp = torch.log_softmax(torch.from_numpy(rng.standard_normal((steps, n, classes)) * 2), 2).numpy()
    width = max(max(target_lengths), 1)
    tg = (blank + rng.integers(1, classes, (n, width))) % classes
    if layout == "concat":
        tg = np.concatenate([tg[i, :target_lengths[i]] for i in range(n)])
    return lp, tg, np.array(input_lengths), np.array(target_lengths)


CTC_CASES = [
    ("padded", dict(steps=8, target_lengths=[3, 2, 4], input_lengths=[8, 6, 7])),
    ("concat", dict(steps=8, target_lengths=[3, 2, 4], input_lengths=[8, 6, 7], layout="concat")),
    ("blank=2", dict(steps=7, target_lengths=[2, 3], input_lengths=[7, 5], blank=2, classes=4)),
    ("blank=last", dict(steps=6, target_lengths=[1, 3], input_lengths=[6, 6], blank=3, classes=4)),
    ("empty targets", dict(steps=5, target_lengths=[0, 2, 0], input_lengths=[5, 4, 3])),
    ("empty input", dict(steps=5, target_lengths=[0, 2], input_lengths=[0, 5])),
    ("one step", dict(steps=1, target_lengths=[1, 0], input_lengths=[1, 1])),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,case", CTC_CASES, ids=[c[0] for c in CTC_CASES])
def test_ctc(name, case, reduction, dtype):
    case = dict(case)
    blank = case.get("blank", 0)
    lp, tg, il, tl = ctc_case(**case)
    _, (dlp,) = loss_parity(nn.CTCLoss(blank, reduction), torch.nn.CTCLoss(blank, reduction), lp, tg, il, tl,
                            dtype=dtype)
    assert np.all(dlp[np.arange(lp.shape[0])[:, None] >= il] == 0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_repeats_and_impossible_targets(reduction):
    """Repeated labels need a blank between them: [1, 1, 1] fits in 5 steps, not in 4, and 2 labels not in 0."""
    lp, _, _, _ = ctc_case(6, [3, 3, 2, 2], [5, 4, 6, 0])
    tg = np.array([[1, 1, 1], [1, 1, 1], [2, 2, 0], [3, 4, 0]])
    il, tl = np.array([5, 4, 6, 0]), np.array([3, 3, 2, 2])
    with np.errstate(invalid="raise", over="raise"):
        out, (dlp,) = loss_parity(nn.CTCLoss(reduction=reduction, zero_infinity=True),
                                  torch.nn.CTCLoss(reduction=reduction, zero_infinity=True), lp, tg, il, tl)
    assert np.all(np.isfinite(dlp)) and not np.any(dlp[:, [1, 3]])
    # without zero_infinity: infinite losses and torch's NaN gradient for the impossible samples
    ours, tlp = nn.CTCLoss(reduction=reduction), torch.from_numpy(lp.copy()).requires_grad_()
    ref = torch.nn.CTCLoss(reduction=reduction)(tlp, torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl))
    out = ours(lp, tg, il, tl)
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-7)
    g = np.ones(out.shape)
    ref.backward(torch.from_numpy(g))
    dlp = ours.backward(g if g.ndim else 1.0)
    np.testing.assert_allclose(dlp, tlp.grad.numpy(), rtol=1e-7, atol=1e-9)  # NaNs in the same places
    assert np.isinf(out).any() and np.isnan(dlp[:4, 1]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_unbatched_and_length_forms(reduction, dtype):
    lp, tg, _, _ = ctc_case(7, [3], [6])
    ours, theirs = nn.CTCLoss(reduction=reduction), torch.nn.CTCLoss(reduction=reduction)
    out, (dlp,) = loss_parity(ours, theirs, lp[:, 0], tg[0], np.array(6), np.array(3), dtype=dtype)
    assert dlp.shape == (7, 5) and out.shape == ()
    batched = nn.CTCLoss(reduction=reduction)(lp, tg, [6], (3,))
    np.testing.assert_allclose(np.reshape(batched, ()), nn.CTCLoss(reduction=reduction)(lp[:, 0], tg[0], 6, 3),
                               rtol=1e-12)


def test_ctc_long_sequence_is_finite_and_matches_torch():
    lp, tg, il, tl = ctc_case(60, [12, 20, 5], [60, 55, 41], classes=8, seed=3)
    for dtype in DTYPES:
        _, (dlp,) = loss_parity(nn.CTCLoss(reduction="sum"), torch.nn.CTCLoss(reduction="sum"), lp, tg, il, tl,
                                dtype=dtype)
        assert np.all(np.isfinite(dlp))


class LogSoftmaxCTC(nn.Module):
    """log_softmax then CTC: the composition whose gradient torch's CTC gradient is meant for."""

    def __init__(self, **kw):
        super().__init__()
        self.log_softmax = nn.LogSoftmax(2)
        self.ctc = nn.CTCLoss(**kw)

    def forward(self, logits, targets, input_lengths, target_lengths):
        return self.ctc(self.log_softmax(logits), targets, input_lengths, target_lengths)

    def backward(self, grad_output=1.0):
        return self.log_softmax.backward(self.ctc.backward(grad_output))


def test_ctc_gradcheck_through_log_softmax_and_the_free_log_probs_derivative():
    lp, tg, il, tl = ctc_case(6, [2, 3, 0], [6, 5, 4], classes=4)
    logits = lp + rand(*lp.shape) * 0.1
    for reduction in REDUCTIONS:
        assert gradcheck(LogSoftmaxCTC(reduction=reduction, blank=1).double(), logits, tg, il, tl)
    # torch's gradient minus exp(log_probs) (times the per-sample upstream) is the plain partial derivative
    live = (np.arange(6)[:, None] < il)[..., None]
    grad = F.ctc_loss_backward(1.0, lp, tg, il, tl, reduction="sum") - np.exp(lp) * live
    numeric = np.zeros_like(lp)
    for idx in np.ndindex(*lp.shape):
        step = np.zeros_like(lp)
        step[idx] = 1e-6
        numeric[idx] = (F.ctc_loss(lp + step, tg, il, tl, reduction="sum")
                        - F.ctc_loss(lp - step, tg, il, tl, reduction="sum")) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


# ----------------------------------------------------------------------------- functional forms
FUNCTIONAL = [
    ("multi_margin_loss", lambda: (rand(5, 4), classes(5, 4)), {"p": 2, "margin": 0.5, "weight": RNG.random(4)}, (0,)),
    ("multilabel_margin_loss", lambda: (rand(5, 4), multilabel_targets(5, 4)), {"reduction": "sum"}, (0,)),
    ("multilabel_soft_margin_loss", lambda: (rand(5, 4), (RNG.random((5, 4)) < 0.5).astype(float)),
     {"weight": RNG.random(4), "reduction": "none"}, (0,)),
    ("triplet_margin_loss", lambda: (rand(5, 3), rand(5, 3), rand(5, 3)), {"p": 1.0, "swap": True}, (0, 1, 2)),
    ("triplet_margin_with_distance_loss", lambda: (rand(5, 3), rand(5, 3), rand(5, 3)),
     {"swap": True, "reduction": "none"}, (0, 1, 2)),
    ("ctc_loss", lambda: ctc_case(6, [2, 3], [6, 5]), {"blank": 0, "reduction": "mean"}, (0,)),
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
    for i in diff:
        assert_close(grads[i], t_args[i].grad.numpy(), np.float64, f"grad {i}")


def test_functional_triplet_with_distance_module():
    a, p, n = rand(4, 3), rand(4, 3), rand(4, 3)
    dist = nn.PairwiseDistance(p=1.0)
    kw = dict(distance_function=dist, margin=1.5, swap=True, reduction="sum")
    out = F.triplet_margin_with_distance_loss(a, p, n, **kw)
    assert dist.saved_count == 0
    np.testing.assert_allclose(out, F.triplet_margin_loss(a, p, n, 1.5, 1.0, swap=True, reduction="sum"), rtol=1e-12)
    grads = F.triplet_margin_with_distance_loss_backward(0.5, a, p, n, **kw)
    expected = F.triplet_margin_loss_backward(0.5, a, p, n, 1.5, 1.0, swap=True, reduction="sum")
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert dist.saved_count == 0


# ----------------------------------------------------------------------------- module behaviour
NAMES = ["MultiMarginLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "TripletMarginLoss",
         "TripletMarginWithDistanceLoss", "CTCLoss"]


@pytest.mark.parametrize("name", NAMES)
def test_repr_and_attributes_match_torch(name):
    ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
    assert repr(ours) == repr(theirs)
    for attr in ("reduction", "p", "margin", "eps", "swap", "blank", "zero_infinity"):
        if hasattr(theirs, attr):
            assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_weights_are_buffers_and_float32_stays_float32():
    for name in ("MultiMarginLoss", "MultiLabelSoftMarginLoss"):
        ours = getattr(nn, name)(weight=np.arange(1.0, 4.0))
        theirs = getattr(torch.nn, name)(weight=torch.arange(1.0, 4.0))
        assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
        assert ours.weight.dtype == np.float64  # a floating weight keeps its dtype, as in the other losses
        assert getattr(nn, name)(weight=[1, 2, 3]).weight.dtype == np.float32
    x = rand(4, 3).astype(np.float32)
    cases = [(nn.MultiMarginLoss(weight=np.ones(3)), (x, classes(4, 3))),
             (nn.MultiLabelMarginLoss(), (x, multilabel_targets(4, 3))),
             (nn.MultiLabelSoftMarginLoss(np.ones(3)), (x, np.ones((4, 3)))),
             (nn.TripletMarginLoss(swap=True), (x, x[::-1].copy(), x + 1)),
             (nn.TripletMarginWithDistanceLoss(swap=True), (x, x[::-1].copy(), x + 1))]
    for m, args in cases:
        out = m(*args)
        grads = m.backward()
        grads = grads if isinstance(grads, tuple) else (grads,)
        assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads), m
    lp, tg, il, tl = ctc_case(5, [2, 1], [5, 4])
    m = nn.CTCLoss()
    assert m(lp.astype(np.float32), tg, il, tl).dtype == np.float32 and m.backward().dtype == np.float32


def test_stack_order_and_no_grad():
    m = nn.TripletMarginLoss(swap=True)
    a1, a2 = (rand(3, 4), rand(3, 4), rand(3, 4)), (rand(3, 4), rand(3, 4), rand(3, 4))
    m(*a1)
    m(*a2)
    g2, g1 = m.backward(), m.backward()
    for got, want in zip(g1, F.triplet_margin_loss_backward(1.0, *a1, swap=True)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    for got, want in zip(g2, F.triplet_margin_loss_backward(1.0, *a2, swap=True)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    m = nn.TripletMarginWithDistanceLoss(swap=True)
    with torchlite.no_grad():
        m(*a1)
    assert m.saved_count == 0 and m.distance_function.saved_count == 0
    with pytest.raises(RuntimeError, match="nothing saved"):
        nn.CTCLoss().backward()


# ----------------------------------------------------------------------------- errors
def test_errors_name_the_loss():
    x = rand(4, 5)
    with pytest.raises(ValueError, match=r"^MultiMarginLoss\(\): target class 5 out of range \[0, 5\) at position 2"):
        nn.MultiMarginLoss()(x, np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match=r"^MultiMarginLoss\(\): expected target of shape \(4,\)"):
        nn.MultiMarginLoss()(x, np.array([0, 1]))
    with pytest.raises(TypeError, match=r"^MultiMarginLoss\(\): target must be an integer array"):
        nn.MultiMarginLoss()(x, np.zeros(4))
    with pytest.raises(ValueError, match=r"^MultiMarginLoss\(\): expected weight of shape \(5,\)"):
        nn.MultiMarginLoss(weight=np.ones(3))(x, np.zeros(4, int))
    with pytest.raises(ValueError, match=r"^MultiMarginLoss\(\): expected input \(N, C\) or \(C,\)"):
        nn.MultiMarginLoss()(rand(2, 3, 4), np.zeros(2, int))
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="expected weight to be None or 1D, got 2D"):
        nn.MultiMarginLoss(weight=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"^MultiLabelMarginLoss\(\): target values must be class indices in "
                                         r"\[0, 5\) or -1 \(end of the list\), got 7"):
        nn.MultiLabelMarginLoss()(x, np.array([[1, -1, 7, 0, 0]] * 4))
    with pytest.raises(ValueError, match=r"^MultiLabelMarginLoss\(\): expected target of the input's shape"):
        nn.MultiLabelMarginLoss()(x, np.zeros((4, 3), int))
    with pytest.raises(ValueError, match=r"^MultiLabelSoftMarginLoss\(\): target of shape \(4, 3\) does not broadcast"):
        nn.MultiLabelSoftMarginLoss()(x, np.ones((4, 3)))
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater than 0, got 0"):
        nn.TripletMarginLoss(margin=0)
    with pytest.raises(ValueError, match=r"^TripletMarginLoss\(\): expected anchor, positive and negative with the "
                                         r"same number of dimensions, got shapes \(3, 4\), \(4,\) and \(3, 4\)"):
        nn.TripletMarginLoss()(rand(3, 4), rand(4), rand(3, 4))
    with pytest.raises(ValueError, match=r"^TripletMarginLoss\(\): x1 of shape \(3, 4\) and x2 of shape \(2, 4\)"):
        nn.TripletMarginLoss()(rand(3, 4), rand(2, 4), rand(3, 4))
    with pytest.raises(TypeError, match=r"^TripletMarginWithDistanceLoss: distance_function must be a torchlite "
                                        r"Module"):
        nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: np.abs(a - b).sum(-1))
    with pytest.raises(TypeError, match="^triplet_margin_with_distance_loss: distance_function must be"):
        F.triplet_margin_with_distance_loss(rand(3), rand(3), rand(3), distance_function=np.subtract)


def test_ctc_errors_name_the_loss():
    lp, tg, il, tl = ctc_case(6, [3, 2], [6, 5])
    m = nn.CTCLoss()
    with pytest.raises(ValueError, match=r"^CTCLoss\(\): expected input_lengths to have value at most 6 \(T\), got 7"):
        m(lp, tg, [7, 5], tl)
    with pytest.raises(ValueError, match=r"^CTCLoss\(\): expected targets \(N, S\) with N = 2 and S >= "
                                         r"max\(target_lengths\) = 4"):
        m(lp, tg, il, [4, 2])
    with pytest.raises(ValueError, match=r"^CTCLoss\(\): expected target_lengths of size 2 \(the batch size\), got 3"):
        m(lp, tg, il, [3, 2, 1])
    with pytest.raises(ValueError, match=r"^CTCLoss\(\): expected input_lengths >= 0, got -1"):
        m(lp, tg, [-1, 5], tl)
    with pytest.raises(ValueError, match=r"^CTCLoss\(\): concatenated targets must hold sum\(target_lengths\) = 5 "
                                         r"labels, got 4"):
        m(lp, np.array([1, 2, 2, 3]), il, tl)
    with pytest.raises(ValueError, match=r"^CTCLoss\(blank=5\)|^CTCLoss\(\): blank must be in label range \[0, 5\)"):
        nn.CTCLoss(blank=5)(lp, tg, il, tl)
    with pytest.raises(ValueError, match=r"^CTCLoss\(\): target labels must lie in \[0, 5\), got 7"):
        m(lp, np.array([[1, 7, 2], [3, 1, 0]]), il, tl)
    with pytest.raises(TypeError, match=r"^CTCLoss\(\): input_lengths must be integers"):
        m(lp, tg, np.array([6.0, 5.0]), tl)
    with pytest.raises(TypeError, match=r"^CTCLoss\(\): targets must be integer class indices"):
        m(lp, tg.astype(float), il, tl)
    with pytest.raises(ValueError, match=r"^CTCLoss\(\): expected log_probs \(T, N, C\) or \(T, C\), got shape"):
        m(lp[0, 0], tg, il, tl)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        nn.CTCLoss(reduction="batchmean")


FUNCTIONAL_LEGACY = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss",
                     "cross_entropy", "hinge_embedding_loss", "kl_div", "l1_loss", "margin_ranking_loss", "mse_loss",
                     "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss", "nll_loss",
                     "poisson_nll_loss", "smooth_l1_loss", "soft_margin_loss", "triplet_margin_loss"]


@pytest.mark.parametrize("name", FUNCTIONAL_LEGACY)
def test_functional_losses_take_torchs_arguments(name):
    import inspect

    ours = list(inspect.signature(getattr(F, name)).parameters)
    theirs = list(inspect.signature(getattr(torch.nn.functional, name)).parameters)
    assert ours == theirs


@pytest.mark.parametrize("size_average, reduce, expected", [(False, None, "sum"), (None, False, "none"),
                                                            (True, True, "mean")])
def test_functional_deprecated_flags_reduce_as_torch(size_average, reduce, expected):
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    y = np.ones((2, 3))
    with pytest.warns(UserWarning, match=f"reduction='{expected}'"):
        got = F.mse_loss(x, y, size_average=size_average, reduce=reduce)
    want = torch.nn.functional.mse_loss(torch.from_numpy(x), torch.from_numpy(y), reduction=expected).numpy()
    np.testing.assert_allclose(got, want)

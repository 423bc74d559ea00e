"""PairwiseDistance and CosineSimilarity (and their functional forms) against PyTorch: values and
both input gradients over norms, shapes, broadcasting, keepdim, tiny norms; gradchecks; reprs; errors."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import assert_close, check_parity

DTYPES = [np.float64, np.float32]
RNG = np.random.default_rng(7)


def rand(*shape):
    return RNG.standard_normal(shape)


NORMS = [2.0, 1.0, 3.0, 1.5, 0.5, -1.0, float("inf"), float("-inf")]  # p = 0: see below
PAIR_SHAPES = [((5, 4), (5, 4)), ((4,), (4,)), ((3, 4), (4,)), ((3, 1), (3, 4)), ((2, 3, 4), (3, 4))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shapes", PAIR_SHAPES, ids=str)
@pytest.mark.parametrize("p", NORMS)
def test_pairwise_distance_parity(p, shapes, keepdim, dtype):
    kw = dict(p=p, eps=1e-6, keepdim=keepdim)
    out = check_parity(nn.PairwiseDistance(**kw), torch.nn.PairwiseDistance(**kw), rand(*shapes[0]),
                       rand(*shapes[1]), dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_pairwise_distance_eps_and_zero_difference_like_torch(p):
    """x1 == x2 - eps gives a zero difference: torch's 0 subgradient, not NaN."""
    x2 = rand(3, 4)
    x1 = x2 - 1e-6
    x1[0] = rand(4)
    check_parity(nn.PairwiseDistance(p, 1e-6), torch.nn.PairwiseDistance(p, 1e-6), x1, x2)
    check_parity(nn.PairwiseDistance(p, eps=0.5), torch.nn.PairwiseDistance(p, eps=0.5), rand(3, 4), rand(3, 4))


def test_pairwise_distance_zero_norm_counts_and_has_zero_gradient():
    x1, x2 = rand(4, 3), rand(4, 3)
    x1[0, 1] = x2[0, 1] - 1e-6
    ref = torch.nn.PairwiseDistance(0.0)(torch.from_numpy(x1).requires_grad_(), torch.from_numpy(x2))
    m = nn.PairwiseDistance(0.0)
    np.testing.assert_array_equal(m(x1, x2), ref.detach().numpy())
    g1, g2 = m.backward(np.ones(4))
    assert not np.any(g1) and not np.any(g2)  # torch: no gradient at all


def test_pairwise_distance_inf_norm_shares_ties():
    x1 = np.array([[1.0, -1.0, 0.5], [2.0, 2.0, 2.0]])
    check_parity(nn.PairwiseDistance(float("inf"), eps=0.0), torch.nn.PairwiseDistance(float("inf"), eps=0.0),
                 x1, np.zeros((2, 3)))


COS_CASES = [((5, 4), (5, 4), 1), ((5, 4), (5, 4), 0), ((4,), (4,), 0), ((3, 4), (4,), -1), ((2, 3, 4), (3, 1), 1),
             ((2, 3, 4), (2, 3, 4), -1), ((2, 1, 4), (1, 3, 4), 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [1e-8, 0.5])
@pytest.mark.parametrize("s1,s2,dim", COS_CASES, ids=str)
def test_cosine_similarity_parity(s1, s2, dim, eps, dtype):
    out = check_parity(nn.CosineSimilarity(dim, eps), torch.nn.CosineSimilarity(dim, eps), rand(*s1), rand(*s2),
                       dtype=dtype)
    assert out.dtype == dtype


def test_cosine_similarity_tiny_and_zero_norms_match_torch():
    """Norms clamped at eps without telling the gradient (torch clamps under no_grad); zero vectors give 0."""
    x1 = rand(4, 3)
    x1[0] *= 1e-10
    x1[1] = 0.0
    x2 = rand(4, 3)
    x2[2] *= 1e-12
    check_parity(nn.CosineSimilarity(), torch.nn.CosineSimilarity(), x1, x2)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 1.5, float("inf")])
def test_pairwise_distance_gradcheck(p):
    m = nn.PairwiseDistance(p).double()
    assert gradcheck(m, rand(3, 4), rand(3, 4))
    assert gradcheck(nn.PairwiseDistance(p, keepdim=True).double(), rand(3, 4), rand(4))


@pytest.mark.parametrize("dim", [0, 1])
def test_cosine_similarity_gradcheck(dim):
    assert gradcheck(nn.CosineSimilarity(dim).double(), rand(3, 4), rand(3, 4))
    assert gradcheck(nn.CosineSimilarity(-1).double(), rand(2, 3, 4), rand(3, 4))


FUNCTIONAL = [("pairwise_distance", (rand(4, 3), rand(4, 3)), {"p": 1.0, "keepdim": True}),
              ("pairwise_distance", (rand(4, 3), rand(3)), {"p": 3.0, "eps": 0.1}),
              ("cosine_similarity", (rand(4, 3), rand(4, 3)), {"dim": 0}),
              ("cosine_similarity", (rand(2, 4, 3), rand(4, 1)), {"dim": 1, "eps": 1e-3})]


@pytest.mark.parametrize("name,args,kw", FUNCTIONAL, ids=[f[0] for f in FUNCTIONAL])
def test_functional_forms_and_backward_twins(name, args, kw):
    t_args = [torch.from_numpy(a.copy()).requires_grad_() for a in args]
    ref = getattr(torch.nn.functional, name)(*t_args, **kw)
    out = getattr(F, name)(*args, **kw)
    assert_close(out, ref.detach().numpy(), np.float64, "value")
    g = rand(*out.shape)
    ref.backward(torch.from_numpy(g))
    grads = getattr(F, name + "_backward")(g, *args, **kw)
    for i, (a, t) in enumerate(zip(grads, t_args)):
        assert a.shape == args[i].shape
        assert_close(a, t.grad.numpy(), np.float64, f"grad {i}")


def test_float32_stays_float32_and_mixed_dtypes_promote_like_torch():
    x1, x2 = rand(3, 4).astype(np.float32), rand(3, 4).astype(np.float32)
    for m in (nn.PairwiseDistance(), nn.CosineSimilarity()):
        out = m(x1, x2)
        g1, g2 = m.backward(np.ones(out.shape, np.float32))
        assert out.dtype == g1.dtype == g2.dtype == np.float32
    assert nn.PairwiseDistance()(x1, x2.astype(np.float64)).dtype == np.float64
    assert nn.PairwiseDistance()(np.arange(4), np.ones(4, int)).dtype == torchlite.get_default_dtype()


def test_reprs_attributes_stack_and_errors():
    for args in [(), (1.0, 1e-3, True)]:
        ours, theirs = nn.PairwiseDistance(*args), torch.nn.PairwiseDistance(*args)
        assert repr(ours) == repr(theirs) == "PairwiseDistance()"
        assert (ours.norm, ours.eps, ours.keepdim) == (theirs.norm, theirs.eps, theirs.keepdim)
    ours, theirs = nn.CosineSimilarity(0, 1e-4), torch.nn.CosineSimilarity(0, 1e-4)
    assert repr(ours) == repr(theirs) and (ours.dim, ours.eps) == (theirs.dim, theirs.eps)
    m = nn.PairwiseDistance()
    a, b = rand(3, 4), rand(3, 4)
    m(a, b)
    m(b, a)
    gb, _ = m.backward(np.ones(3))  # second call first: its x1 was b
    np.testing.assert_allclose(gb, F.pairwise_distance_backward(np.ones(3), b, a)[0], rtol=1e-12)
    ga, _ = m.backward(np.ones(3))
    np.testing.assert_allclose(ga, F.pairwise_distance_backward(np.ones(3), a, b)[0], rtol=1e-12)
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward(np.ones(3))
    with pytest.raises(ValueError, match=r"^PairwiseDistance\(\): x1 of shape \(3, 4\) and x2 of shape \(3, 5\) "
                                         "do not broadcast"):
        m(rand(3, 4), rand(3, 5))
    with pytest.raises(ValueError, match=r"^CosineSimilarity\(\): x1 of shape"):
        nn.CosineSimilarity()(rand(3, 4), rand(2, 4))
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.CosineSimilarity(dim=2)(rand(3, 4), rand(3, 4))

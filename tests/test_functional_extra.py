"""torch.nn.functional odds and ends against PyTorch: one_hot, normalize, pdist, gumbel_softmax
(with their backward twins against torch autograd and finite differences), the in-place
activation aliases, the deprecated upsample aliases, adaptive_max_pool*_with_indices, and
nn.utils' get_total_norm / clip_grads_with_norm_ / clip_grad_norm."""
import math
import warnings

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn.functional as F
from torchlite.nn import Parameter
from torchlite.nn.utils import clip_grad_norm, clip_grad_norm_, clip_grads_with_norm_, get_total_norm

from parity import assert_close

TF = torch.nn.functional
DTYPES = [np.float64, np.float32]
INF = math.inf


def torch_error(fn):
    with pytest.raises(Exception) as err:
        fn()
    return str(err.value)


def finite_difference(f, x, g, eps=1e-6):
    """d/dx of sum(g * f(x)) by central differences, in float64."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        grad[i] = np.sum(g * (f(xp) - f(xm))) / (2 * eps)
    return grad


def torch_grad(fn, x, g):
    """(output, dLoss/dx) of torch ``fn`` at x with upstream gradient g."""
    t = torch.tensor(x, requires_grad=True)
    out = fn(t)
    out.backward(torch.tensor(g))
    return out.detach().numpy(), t.grad.numpy()


# ----------------------------------------------------------------------------- one_hot
ONE_HOT_CASES = [(shape, n) for shape in [(5,), (2, 3), ()] for n in (-1, 4, 7)] + [((2, 0, 3), 4)]


@pytest.mark.parametrize("shape, num_classes", ONE_HOT_CASES, ids=str)
def test_one_hot_matches_torch(shape, num_classes):
    idx = np.random.default_rng(0).integers(0, 4, size=shape)
    ours = F.one_hot(idx, num_classes)
    expected = TF.one_hot(torch.from_numpy(idx), num_classes).numpy()
    assert ours.dtype == np.int64 and ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)


def test_one_hot_takes_any_integer_dtype():
    np.testing.assert_array_equal(F.one_hot(np.array([2, 0], np.int32)), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(F.one_hot([1, 0], 3), [[0, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize("values, num_classes, error", [
    ([0, -1, 2], -1, ValueError), ([-3], 3, IndexError), ([0, 1, 2], 2, ValueError), ([1, 2], 0, IndexError),
    ([1, 2], -2, ValueError), ([], -1, ValueError), ([], 0, ValueError)])
def test_one_hot_errors_are_torchs(values, num_classes, error):
    idx = np.array(values, dtype=np.int64)
    expected = torch_error(lambda: TF.one_hot(torch.from_numpy(idx), num_classes))
    with pytest.raises(error) as err:
        F.one_hot(idx, num_classes)
    assert str(err.value).startswith("one_hot: ")
    assert expected.rstrip(".") in str(err.value)


@pytest.mark.parametrize("bad", [np.array([1.0, 2.0]), np.array([True, False])])
def test_one_hot_refuses_non_integer_input(bad):
    with pytest.raises(TypeError, match="one_hot: .*integer"):
        F.one_hot(bad)
    with pytest.raises(TypeError, match="one_hot: num_classes must be an int"):
        F.one_hot(np.array([1]), 2.0)


# ----------------------------------------------------------------------------- normalize
NORMALIZE_P = [2.0, 1.0, 3.0, 1.5, 0.5, 0.0, -1.0, INF, -INF]
NORMALIZE_CASES = [((3, 4), 1), ((3, 4), -1), ((2, 3, 4), 0), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 1)),
                   ((2, 3, 4), ()), ((4,), 0), ((), 0), ((0, 3), 1)]


def normalize_input(shape, dtype, seed=0):
    """Random values with a zero vector and a tiny one (its norm below eps = 1e-3) where the shape allows."""
    x = np.random.default_rng(seed).standard_normal(shape)
    if x.ndim >= 2 and x.shape[0] >= 2:
        x[0] = 0
        x[1] *= 1e-5
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [1e-12, 1e-3])
@pytest.mark.parametrize("case", NORMALIZE_CASES, ids=str)
@pytest.mark.parametrize("p", NORMALIZE_P)
def test_normalize_and_backward_match_torch(p, case, eps, dtype):
    shape, dim = case
    x = normalize_input(shape, dtype)
    g = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    out, dx = torch_grad(lambda t: TF.normalize(t, p, dim, eps), x, g)
    ours = F.normalize(x, p, dim, eps)
    grad = F.normalize_backward(g, x, p, dim, eps)
    assert isinstance(ours, np.ndarray) and ours.dtype == dtype and ours.shape == shape
    assert isinstance(grad, np.ndarray) and grad.dtype == dtype and grad.shape == shape
    assert_close(ours, out, dtype, "output")
    assert_close(grad, dx, dtype, "grad")


@pytest.mark.parametrize("p", [2.0, 3.0, 1.5, -1.0, INF])
@pytest.mark.parametrize("case", [((3, 4), 1), ((2, 3, 2), (0, 2))], ids=str)
def test_normalize_backward_matches_finite_differences(p, case):
    shape, dim = case
    x = np.random.default_rng(2).standard_normal(shape)
    g = np.random.default_rng(3).standard_normal(shape)
    numeric = finite_difference(lambda v: F.normalize(v, p, dim), x, g)
    np.testing.assert_allclose(F.normalize_backward(g, x, p, dim), numeric, rtol=1e-5, atol=1e-7)


def test_normalize_defaults_and_integer_input():
    x = np.array([[3, 4], [0, 0]])
    out = F.normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0]], rtol=1e-7)


def test_normalize_errors():
    x = np.ones((2, 3))
    with pytest.raises(IndexError, match=r"normalize: Dimension out of range \(expected to be in range of \[-2, 1\]"):
        F.normalize(x, dim=2)
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1"):
        F.normalize(np.array(2.0), dim=1)
    assert "appears multiple times" in torch_error(lambda: TF.normalize(torch.ones(2, 3), dim=(1, -1)))
    with pytest.raises(ValueError, match="normalize: dim 1 appears multiple times in the list of dims"):
        F.normalize(x, dim=(1, -1))
    for p in (INF, -1.0):
        torch_error(lambda: TF.normalize(torch.ones(2, 0), p, dim=1))
        with pytest.raises(ValueError, match="normalize: cannot take the .* norm over empty dims"):
            F.normalize(np.ones((2, 0)), p, dim=1)
    with pytest.raises(NotImplementedError, match="normalize: out= is not supported"):
        F.normalize(x, out=np.empty_like(x))


def test_normalize_keeps_float32_with_numpy_scalars():
    x = np.ones((2, 3), np.float32)
    assert F.normalize(x, np.float64(2), eps=np.float64(1e-12)).dtype == np.float32
    assert F.normalize_backward(x, x, np.float64(3), eps=np.float64(1e-12)).dtype == np.float32


# ----------------------------------------------------------------------------- pdist
PDIST_P = [2.0, 1.0, 3.0, 1.5, 0.5, 0.0, INF]


def pdist_input(shape, dtype):
    """Random rows with a repeated row (distance 0), a shared coordinate (zero differences) and
    tied largest differences (the inf norm's ties)."""
    x = np.random.default_rng(4).standard_normal(shape)
    if shape[0] >= 4 and shape[1] >= 3:
        x[3] = x[1]
        x[2, 0] = x[0, 0]
        x[2, 1] = x[0, 1] + 5
        x[2, 2] = x[0, 2] - 5
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 6), (2, 1), (1, 3), (0, 3), (4, 0)], ids=str)
@pytest.mark.parametrize("p", PDIST_P)
def test_pdist_and_backward_match_torch(p, shape, dtype):
    x = pdist_input(shape, dtype)
    n = shape[0] * (shape[0] - 1) // 2
    g = np.random.default_rng(5).standard_normal(n).astype(dtype)
    if shape[0] == 0:  # torch 2.13's pdist backward crashes the process on 0 rows: forward only
        out, dx = TF.pdist(torch.from_numpy(x), p).numpy(), np.zeros_like(x)
    else:
        out, dx = torch_grad(lambda t: TF.pdist(t, p), x, g)
    ours = F.pdist(x, p)
    grad = F.pdist_backward(g, x, p)
    assert ours.dtype == dtype and ours.shape == (n,)
    assert grad.dtype == dtype and grad.shape == shape
    assert_close(ours, out, dtype, "output")
    assert_close(grad, dx, dtype, "grad")


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 1.5, 0.7, INF])
def test_pdist_backward_matches_finite_differences(p):
    x = np.random.default_rng(6).standard_normal((4, 3))
    g = np.random.default_rng(7).standard_normal(6)
    numeric = finite_difference(lambda v: F.pdist(v, p), x, g)
    np.testing.assert_allclose(F.pdist_backward(g, x, p), numeric, rtol=1e-5, atol=1e-7)


def test_pdist_is_scipys():
    from scipy.spatial.distance import pdist as scipy_pdist

    x = np.random.default_rng(8).standard_normal((6, 4))
    np.testing.assert_allclose(F.pdist(x, 3.0), scipy_pdist(x, "minkowski", p=3.0), rtol=1e-12)
    np.testing.assert_allclose(F.pdist(x, 0.0), scipy_pdist(x, "hamming") * 4, rtol=1e-12)


def test_pdist_errors():
    assert "2D" in torch_error(lambda: TF.pdist(torch.ones(2, 3, 4)))
    with pytest.raises(ValueError, match=r"pdist: expected a 2-D input \(N, M\), got shape \(2, 3, 4\)"):
        F.pdist(np.ones((2, 3, 4)))
    for p in (-1.0, math.nan):
        assert "non-negative p" in torch_error(lambda: TF.pdist(torch.ones(3, 2), p))
        with pytest.raises(ValueError, match="pdist: expected a non-negative p"):
            F.pdist(np.ones((3, 2)), p)
        with pytest.raises(ValueError, match="pdist: expected a non-negative p"):
            F.pdist_backward(np.ones(3), np.ones((3, 2)), p)


# ----------------------------------------------------------------------------- gumbel_softmax
def torch_gumbel_softmax(logits, gumbels, tau, hard, dim):
    """torch's F.gumbel_softmax body on given noise."""
    y_soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = torch.zeros_like(logits).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def gumbels(shape, dtype, seed):
    return np.asarray(-np.log(np.random.default_rng(seed).standard_exponential(shape)), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", [1, 0.5, 3.0])
@pytest.mark.parametrize("case", [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((4,), 0), ((), -1)], ids=str)
def test_gumbel_softmax_and_backward_match_torch_on_the_same_noise(case, tau, hard, dtype):
    shape, dim = case
    x = np.random.default_rng(9).standard_normal(shape).astype(dtype)
    noise = gumbels(shape, dtype, 10)
    g = np.random.default_rng(11).standard_normal(shape).astype(dtype)
    expected, dx = torch_grad(lambda t: torch_gumbel_softmax(t, torch.from_numpy(noise), tau, hard, dim), x, g)
    out, soft = F.gumbel_softmax(x, tau, hard, dim=dim, return_soft=True, _gumbels=noise)
    grad = F.gumbel_softmax_backward(g, soft, tau, dim)
    assert out.dtype == soft.dtype == grad.dtype == dtype
    assert out.shape == soft.shape == grad.shape == shape
    if hard:
        np.testing.assert_array_equal(out, expected)  # the same straight-through arithmetic
    else:
        assert_close(out, expected, dtype, "output")
    assert_close(grad, dx, dtype, "grad")


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_backward_matches_finite_differences(hard):
    x = np.random.default_rng(12).standard_normal((3, 4))
    noise = gumbels(x.shape, np.float64, 13)
    g = np.random.default_rng(14).standard_normal(x.shape)
    _, soft = F.gumbel_softmax(x, 0.7, hard, return_soft=True, _gumbels=noise)
    # straight-through: the hard sample is differentiated as the soft one
    numeric = finite_difference(lambda v: F.gumbel_softmax(v, 0.7, False, _gumbels=noise), x, g)
    np.testing.assert_allclose(F.gumbel_softmax_backward(g, soft, 0.7), numeric, rtol=1e-5, atol=1e-8)


def test_gumbel_softmax_samples_from_torchlites_generator():
    logits = np.log(np.array([0.2, 0.5, 0.3], np.float32))
    torchlite.manual_seed(3)
    first = F.gumbel_softmax(np.tile(logits, (4000, 1)), hard=True)
    torchlite.manual_seed(3)
    again = F.gumbel_softmax(np.tile(logits, (4000, 1)), hard=True)
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first.sum(axis=1), 1)
    assert set(np.unique(first)) == {0.0, 1.0}
    # the argmax of logits + Gumbel noise is a draw from softmax(logits)
    np.testing.assert_allclose(first.mean(axis=0), [0.2, 0.5, 0.3], atol=0.03)
    soft = F.gumbel_softmax(np.tile(logits, (5, 1)), tau=2.0)
    np.testing.assert_allclose(soft.sum(axis=1), 1, rtol=1e-6)
    assert not np.array_equal(soft[0], soft[1])


def test_gumbel_softmax_eps_warning_and_noise_shape():
    with pytest.warns(UserWarning) as torch_warning:
        TF.gumbel_softmax(torch.zeros(2, 3), eps=1e-5)
    with pytest.warns(UserWarning) as warning:
        F.gumbel_softmax(np.zeros((2, 3)), eps=1e-5)
    assert str(warning[0].message) == str(torch_warning[0].message)
    assert warning[0].filename == __file__
    with pytest.raises(ValueError, match=r"gumbel_softmax: expected _gumbels of the logits' shape \(2, 3\)"):
        F.gumbel_softmax(np.zeros((2, 3)), _gumbels=np.zeros((3, 2)))


# ----------------------------------------------------------------------------- in-place aliases
INPLACE = [("relu_", (), {}), ("elu_", (0.7,), {}), ("leaky_relu_", (), {"negative_slope": 0.2}),
           ("hardtanh_", (), {"min_val": -0.5, "max_val": 0.8}), ("threshold_", (0.1, -2.0), {}),
           ("selu_", (), {}), ("celu_", (), {"alpha": 1.5}), ("rrelu_", (0.1, 0.4), {"training": False})]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4), ()], ids=str)
@pytest.mark.parametrize("name, args, kwargs", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_aliases_overwrite_their_input_as_torch(name, args, kwargs, shape, dtype):
    x = np.random.default_rng(15).standard_normal(shape).astype(dtype)
    t = torch.from_numpy(x.copy())
    expected = getattr(TF, name)(t, *args, **kwargs)
    assert expected is t
    returned = getattr(F, name)(x, *args, **kwargs)
    assert returned is x and x.dtype == dtype
    assert_close(x, t.numpy(), dtype, name)


def test_rrelu_inplace_in_training_draws_from_torchlites_generator():
    x = np.random.default_rng(16).standard_normal((4, 5))
    torchlite.manual_seed(1)
    expected = F.rrelu(x, 0.1, 0.3, training=True)
    torchlite.manual_seed(1)
    y = x.copy()
    assert F.rrelu_(y, 0.1, 0.3, True) is y
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("bad", [[1.0, -2.0], np.array([1, -2])], ids=["list", "int64"])
def test_inplace_aliases_need_a_floating_array(bad):
    with pytest.raises(TypeError, match="relu_: expected a floating-point ndarray to modify in place"):
        F.relu_(bad)


# ----------------------------------------------------------------------------- deprecated upsample aliases
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, args, kwargs", [
    ("upsample", ((5, 7),), {}), ("upsample", (None, 2), {"mode": "bilinear", "align_corners": False}),
    ("upsample", (None, 1.5), {"mode": "bicubic", "align_corners": True}),
    ("upsample_nearest", (None, 2), {}), ("upsample_nearest", ((3, 9),), {}),
    ("upsample_bilinear", (None, 2), {}), ("upsample_bilinear", ((5, 3),), {})], ids=str)
def test_upsample_aliases_match_torch_and_warn_as_torch(name, args, kwargs, dtype):
    x = np.random.default_rng(17).standard_normal((2, 3, 4, 5)).astype(dtype)
    with pytest.warns(UserWarning) as torch_warning:
        t = torch.tensor(x, requires_grad=True)
        expected = getattr(TF, name)(t, *args, **kwargs)
    g = np.random.default_rng(18).standard_normal(expected.shape).astype(dtype)
    expected.backward(torch.from_numpy(g))
    with pytest.warns(UserWarning) as warning:
        out, ctx = getattr(F, name)(x, *args, return_context=True, **kwargs)
    assert str(warning[0].message) == str(torch_warning[0].message)
    assert warning[0].filename == __file__
    assert out.dtype == dtype
    assert_close(out, expected.detach().numpy(), dtype, "output")
    assert_close(F.interpolate_backward(g, ctx), t.grad.numpy(), dtype, "grad")


# ----------------------------------------------------------------------------- adaptive max pool with indices
@pytest.mark.parametrize("d, shape, output_size", [(1, (2, 3, 7), 3), (1, (3, 8), 5), (2, (2, 3, 5, 7), (3, 4)),
                                                   (2, (2, 6, 5), (None, 2)), (3, (1, 2, 4, 5, 6), (2, 3, 4))],
                         ids=str)
@pytest.mark.parametrize("return_indices", [False, True])
def test_adaptive_max_pool_with_indices_match_torch(d, shape, output_size, return_indices):
    x = np.random.default_rng(19).standard_normal(shape)
    name = f"adaptive_max_pool{d}d_with_indices"
    out, indices = getattr(F, name)(x, output_size, return_indices)
    t_out, t_indices = getattr(TF, name)(torch.from_numpy(x), output_size, return_indices)
    np.testing.assert_array_equal(out, t_out.numpy())
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, t_indices.numpy())


# ----------------------------------------------------------------------------- nn.utils clipping halves
SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def make_grads(dtype, scale=1.0, seed=20):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s) * scale, dtype=dtype) for s in SHAPES]


def make_params(grads):
    ours, theirs = [], []
    for i, g in enumerate(grads):
        p, q = Parameter(np.zeros_like(g)), torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype))
        if i != 1:  # one parameter without a gradient: ignored
            p.grad, q.grad = g.copy(), torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, INF, -INF, 0.0, "inf"])
def test_get_total_norm_matches_torch(norm_type, dtype):
    grads = make_grads(dtype)
    total = get_total_norm(grads, norm_type)
    expected = torch.nn.utils.get_total_norm([torch.from_numpy(g) for g in grads], norm_type)
    assert isinstance(total, np.ndarray) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total, expected.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    single = get_total_norm(grads[0], norm_type)
    np.testing.assert_allclose(single, torch.nn.utils.get_total_norm(torch.from_numpy(grads[0]), norm_type).item(),
                               rtol=1e-6)


def test_get_total_norm_of_nothing_and_of_a_generator():
    assert get_total_norm([]).shape == () and float(get_total_norm([])) == 0.0
    grads = make_grads(np.float64)
    assert float(get_total_norm(g for g in grads)) == float(get_total_norm(grads))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_get_total_norm_error_if_nonfinite_is_torchs(bad):
    grads = make_grads(np.float64)
    grads[0][1, 1] = bad
    expected = torch_error(lambda: torch.nn.utils.get_total_norm([torch.from_numpy(g) for g in grads],
                                                                 error_if_nonfinite=True))
    with pytest.raises(RuntimeError) as err:
        get_total_norm(grads, error_if_nonfinite=True)
    assert str(err.value) == expected
    assert not math.isfinite(float(get_total_norm(grads)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("total_norm", [None, 2.0, 1e-9])
def test_clip_grads_with_norm_matches_torch(total_norm, max_norm, dtype):
    ours, theirs = make_params(make_grads(dtype))
    if total_norm is None:
        ours_total = get_total_norm([p.grad for p in ours if p.grad is not None])
        theirs_total = torch.nn.utils.get_total_norm([q.grad for q in theirs if q.grad is not None])
    else:
        ours_total, theirs_total = total_norm, torch.tensor(total_norm)
    assert clip_grads_with_norm_(ours, max_norm, ours_total) is None
    torch.nn.utils.clip_grads_with_norm_(theirs, max_norm, theirs_total)
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
            continue
        assert p.grad.dtype == dtype
        assert_close(p.grad, q.grad.numpy(), dtype, "grad")


def test_clip_grads_with_norm_accepts_a_single_parameter_and_no_grads():
    p = Parameter(np.zeros(2))
    clip_grads_with_norm_(p, 1.0, 5.0)
    assert p.grad is None
    p.grad = np.array([3.0, 4.0])
    clip_grads_with_norm_(p, 1.0, np.array(5.0))
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)


def test_clip_grad_norm_is_deprecated_and_clips_as_clip_grad_norm_():
    ours, theirs = make_params(make_grads(np.float64, scale=3.0))
    with pytest.warns(FutureWarning) as torch_warning:
        expected = torch.nn.utils.clip_grad_norm(theirs, 1.0)
    with pytest.warns(FutureWarning, match="`torchlite.nn.utils.clip_grad_norm` is now deprecated in favor of "
                                           "`torchlite.nn.utils.clip_grad_norm_`") as warning:
        total = clip_grad_norm(ours, 1.0)
    assert str(torch_warning[0].message).replace("torch.", "torchlite.") == str(warning[0].message)
    assert warning[0].filename == __file__
    np.testing.assert_allclose(total, expected.item(), rtol=1e-12)
    for p, q in zip(ours, theirs):
        if q.grad is not None:
            assert_close(p.grad, q.grad.numpy(), np.float64, "grad")


def test_clip_grad_norm_warns_on_an_empty_generator_as_torch():
    with pytest.warns(UserWarning) as torch_warning:
        torch.nn.utils.clip_grad_norm_((q for q in []), 1.0)
    with pytest.warns(UserWarning) as warning:
        total = clip_grad_norm_((p for p in []), 1.0)
    assert str(warning[0].message) == str(torch_warning[0].message)
    assert warning[0].filename == __file__
    assert float(total) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clip_grad_norm_([], 1.0)  # an empty list is not a generator: no warning, as torch

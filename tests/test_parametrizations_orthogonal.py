"""nn.utils.parametrizations.orthogonal against torch 2.13: every map, with and without the
dynamic trivialization, on tall, wide and square Linear weights and Conv2d weights (batches of
kernels); state_dict keys, initial and parametrized weights, gradients, SGD trajectories."""
import numpy as np
import pytest
import torch
from parity import assert_close, check_parity, copy_state

import torchlite
from torchlite import nn
from torchlite.nn.utils import parametrizations, parametrize
from torchlite.nn.utils.parametrizations import householder_product, householder_product_backward
from torchlite.testing import gradcheck

MAPS = ["matrix_exp", "cayley", "householder"]
LAYERS = {  # name -> (constructor, input shape); weights (5, 3), (3, 5), (4, 4), (3, 2, 3, 2), (2, 2, 3, 3)
    "tall": (lambda lib: lib.Linear(3, 5), (2, 3)),
    "wide": (lambda lib: lib.Linear(5, 3), (2, 5)),
    "square": (lambda lib: lib.Linear(4, 4), (2, 4)),
    "conv2d": (lambda lib: lib.Conv2d(2, 3, (3, 2)), (2, 2, 5, 4)),
    "conv2d_square": (lambda lib: lib.Conv2d(2, 2, 3, padding=1), (1, 2, 4, 4)),
}
T_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def pair(layer, orthogonal_map, use_trivialization, seed=0, dtype=np.float32):
    """The same layer in both libraries, in ``dtype``, orthogonal registered on the same starting weight."""
    make, shape = LAYERS[layer]
    torch.manual_seed(seed)
    ours, theirs = make(nn).to(dtype), make(torch.nn).to(T_DTYPE[np.dtype(dtype)])
    copy_state(ours, theirs)
    parametrizations.orthogonal(ours, orthogonal_map=orthogonal_map, use_trivialization=use_trivialization)
    torch.nn.utils.parametrizations.orthogonal(theirs, orthogonal_map=orthogonal_map,
                                                use_trivialization=use_trivialization)
    return ours, theirs, np.random.default_rng(seed).standard_normal(shape)


def perturb(theirs, seed=1):
    """Move torch's original off the identity (off the diagonal: householder reads its diagonal as signs)."""
    with torch.no_grad():
        original = theirs.parametrizations.weight.original
        noise = 0.5 * torch.randn(original.shape, generator=torch.Generator().manual_seed(seed), dtype=original.dtype)
        original.add_(noise * (1 - torch.eye(*original.shape[-2:], dtype=original.dtype)))


def assert_orthogonal(w, dtype):
    w = np.asarray(w)
    m, n = w.shape[-2:]
    gram = np.swapaxes(w, -1, -2) @ w if m >= n else w @ np.swapaxes(w, -1, -2)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(min(m, n)), gram.shape),
                               atol=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use_trivialization", [True, False])
@pytest.mark.parametrize("orthogonal_map", MAPS)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_matches_torch(layer, orthogonal_map, use_trivialization, dtype):
    ours, theirs, x = pair(layer, orthogonal_map, use_trivialization, dtype=dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    # the initial weight (for a non-square trivialization only the random completion of base differs)
    assert_close(ours.weight.data, theirs.weight.detach().numpy(), dtype, "initial weight")
    if orthogonal_map == "householder" or use_trivialization:
        assert_orthogonal(ours.weight.data, dtype)
    perturb(theirs)
    check_parity(ours, theirs, x, dtype=dtype)
    assert ours.weight.dtype == dtype
    assert_close(ours.weight.data, theirs.weight.detach().numpy(), dtype, "weight")
    assert_orthogonal(ours.weight.data, dtype)


@pytest.mark.parametrize("use_trivialization", [True, False])
@pytest.mark.parametrize("orthogonal_map", MAPS)
@pytest.mark.parametrize("layer", ["tall", "wide", "square", "conv2d"])
def test_gradcheck(layer, orthogonal_map, use_trivialization):
    ours, _, x = pair(layer, orthogonal_map, use_trivialization, dtype=np.float64)
    original = ours.parametrizations.weight.original.data
    original += 0.3 * np.random.default_rng(2).standard_normal(original.shape)
    diag = np.diagonal(original, axis1=-2, axis2=-1)
    # householder truncates the diagonal to integer signs: keep it away from the jumps at +-1
    original[..., np.arange(diag.shape[-1]), np.arange(diag.shape[-1])] = np.where(diag < 0, -1.5, 1.5)
    assert gradcheck(ours, x, max_elements=12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use_trivialization", [True, False])
@pytest.mark.parametrize("orthogonal_map", MAPS)
def test_sgd_trajectory_matches_torch_and_stays_orthogonal(orthogonal_map, use_trivialization, dtype):
    torch.manual_seed(0)
    ours = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).to(dtype)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    theirs.to(T_DTYPE[np.dtype(dtype)])
    copy_state(ours, theirs)
    for i in (0, 2):
        parametrizations.orthogonal(ours[i], orthogonal_map=orthogonal_map, use_trivialization=use_trivialization)
        torch.nn.utils.parametrizations.orthogonal(theirs[i], orthogonal_map=orthogonal_map,
                                                    use_trivialization=use_trivialization)
    copy_state(ours, theirs)
    opt = torchlite.optim.SGD(ours.parameters(), lr=0.5, momentum=0.9)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.5, momentum=0.9)
    rng = np.random.default_rng(0)
    crit, t_crit = nn.MSELoss(), torch.nn.MSELoss()
    for _ in range(5):
        x = rng.standard_normal((8, 4)).astype(dtype)
        target = rng.standard_normal((8, 3)).astype(dtype)
        opt.zero_grad()
        t_opt.zero_grad()
        loss = crit(ours(x), target)
        ours.backward(crit.backward())
        t_loss = t_crit(theirs(torch.from_numpy(x)), torch.from_numpy(target))
        t_loss.backward()
        assert_close(loss, t_loss.item(), dtype, "loss")
        opt.step()
        t_opt.step()
        for i in (0, 2):
            assert_orthogonal(ours[i].weight.data, dtype)
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value.numpy(), dtype, key, scale=10.0)
    for i in (0, 2):
        assert_close(ours[i].weight.data, theirs[i].weight.detach().numpy(), dtype, f"weight of layer {i}")


def test_state_dict_keys_buffer_and_repr():
    ours, theirs, _ = pair("tall", None, True)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == \
        ["bias", "parametrizations.weight.original", "parametrizations.weight.0.base"]
    assert ours.parametrizations.weight[0].base.shape == (5, 5)
    assert_orthogonal(ours.parametrizations.weight[0].base, np.float32)
    np.testing.assert_array_equal(ours.parametrizations.weight.original.data, -np.eye(5, 3))
    assert repr(ours) == repr(theirs)
    ours, theirs, _ = pair("tall", "cayley", False)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "parametrizations.weight.original"]


@pytest.mark.parametrize("layer, expected", [("tall", "householder"), ("wide", "householder"),
                                             ("square", "matrix_exp"), ("conv2d", "householder"),
                                             ("conv2d_square", "matrix_exp")])
def test_default_map(layer, expected):
    ours, theirs, _ = pair(layer, None, True)
    assert ours.parametrizations.weight[0].orthogonal_map.name == expected
    assert theirs.parametrizations.weight[0].orthogonal_map.name == expected


def test_householder_without_trivialization_keeps_torchs_reflectors():
    """right_inverse is LAPACK's geqrf with the signs of R's diagonal: the same original as torch's."""
    for layer in ("tall", "wide", "square", "conv2d"):
        ours, theirs, _ = pair(layer, "householder", False)
        assert_close(ours.parametrizations.weight.original.data,
                     theirs.parametrizations.weight.original.detach().numpy(), np.float32, layer)


@pytest.mark.parametrize("orthogonal", [True, False])
def test_assignment_goes_through_right_inverse_as_torch(orthogonal):
    ours, theirs, _ = pair("square", "matrix_exp", True)
    q = np.random.default_rng(3).standard_normal((4, 4)).astype(np.float32)
    if orthogonal:
        q = np.linalg.qr(q)[0]
    ours.weight = q
    with torch.no_grad():
        theirs.weight = torch.from_numpy(q)
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value.numpy(), np.float32, key)
    assert_close(ours.weight.data, theirs.weight.detach().numpy(), np.float32, "weight")
    if orthogonal:
        np.testing.assert_allclose(ours.weight.data, q, atol=1e-6)


def test_remove_parametrizations_keeps_the_orthogonal_weight():
    ours, theirs, x = pair("wide", "cayley", True)
    perturb(theirs)
    copy_state(ours, theirs)
    parametrize.remove_parametrizations(ours, "weight")
    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight")
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    assert_orthogonal(ours.weight.data, np.float32)
    check_parity(ours, theirs, x, copy=False, dtype=np.float32)


def test_errors_match_torch():
    for lib, orth in ((nn, parametrizations.orthogonal), (torch.nn, torch.nn.utils.parametrizations.orthogonal)):
        with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions"):
            orth(lib.Linear(3, 4), "bias")
        with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder"'):
            orth(lib.Linear(3, 4), orthogonal_map="qr")
        with pytest.raises(ValueError, match="has no parameter or buffer with name 'nope'"):
            orth(lib.Linear(3, 4), "nope")
        m = orth(lib.Linear(3, 3), orthogonal_map="cayley", use_trivialization=False)
        with pytest.raises(NotImplementedError, match="not possible to assign to the matrix exponential"):
            m.weight = np.eye(3, dtype=np.float32) if lib is nn else torch.eye(3)
        m = orth(lib.Linear(3, 3))
        with pytest.raises(ValueError, match="Expected a matrix or batch of matrices of shape"):
            m.parametrizations.weight[0].right_inverse(np.eye(2, dtype=np.float32) if lib is nn else torch.eye(2))


@pytest.mark.parametrize("shape", [(5, 3), (4, 4), (2, 6, 2)])
def test_householder_product_matches_torch_for_any_tau(shape):
    """The general product (tau not only 2 / |v|^2) and both its gradients against torch.linalg."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal(shape)
    tau = rng.uniform(0.2, 1.5, shape[:-2] + (shape[-1],))
    grad = rng.standard_normal(shape)
    t_a, t_tau = torch.tensor(a, requires_grad=True), torch.tensor(tau, requires_grad=True)
    t_q = torch.linalg.householder_product(t_a, t_tau)
    t_q.backward(torch.tensor(grad))
    q = householder_product(a, tau)
    assert_close(q, t_q.detach().numpy(), np.float64, "product")
    d_a, d_tau = householder_product_backward(grad, a, tau, q)
    assert_close(d_tau, t_tau.grad.numpy(), np.float64, "grad of tau")
    assert_close(np.tril(d_a, -1), np.tril(t_a.grad.numpy(), -1), np.float64, "grad of a")


def test_complex_weight_is_refused():
    m = nn.Linear(3, 3)
    m.weight = nn.Parameter(m.weight.data.astype(np.complex64))
    with pytest.raises(TypeError, match="real tensors only"):
        parametrizations.orthogonal(m)

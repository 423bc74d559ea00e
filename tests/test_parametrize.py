"""nn.utils.parametrize and nn.utils.parametrizations (weight_norm, spectral_norm) against torch 2.13."""
import numpy as np
import pytest
import torch
from parity import assert_close, check_parity, copy_state

import torchlite
from torchlite import nn
from torchlite.nn.utils import parametrizations, parametrize
from torchlite.testing import gradcheck

LAYERS = {
    "linear": (lambda lib: lib.Linear(4, 4), (3, 4)),
    "conv2d": (lambda lib: lib.Conv2d(3, 3, 3, padding=1), (2, 3, 4, 4)),
}


# ----------------------------------------------------------------------------- custom parametrizations
class Symmetric(nn.Module):
    """Square weight (or each 2-d slice over the last two axes) made symmetric from its upper triangle."""

    def forward(self, X):
        return np.triu(X) + np.swapaxes(np.triu(X, 1), -1, -2)

    def backward(self, grad):
        return np.triu(grad) + np.triu(np.swapaxes(grad, -1, -2), 1)

    def right_inverse(self, A):
        return np.triu(A)


class TSymmetric(torch.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):
    """W = scale * X, scale a learnable scalar."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.array(1.5, dtype=torchlite.get_default_dtype()))

    def forward(self, X):
        self.save_for_backward(X, self.scale.data)
        return X * self.scale.data

    def backward(self, grad):
        X, scale = self.pop_saved()
        self.scale.accumulate_grad(np.asarray(np.sum(grad * X)))
        return grad * scale


class TScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.5))

    def forward(self, X):
        return X * self.scale


CUSTOM = {"symmetric": ([Symmetric], [TSymmetric]), "scale": ([Scale], [TScale]),
          "symmetric+scale": ([Symmetric, Scale], [TSymmetric, TScale])}


def pair(layer, seed=0):
    make, shape = LAYERS[layer]
    torch.manual_seed(seed)
    ours, theirs = make(nn), make(torch.nn)
    copy_state(ours, theirs)  # the same weights before registration: right_inverse sees them
    return ours, theirs, np.random.default_rng(seed).standard_normal(shape)


def register(ours, theirs, kind):
    for mine, torchs in zip(*CUSTOM[kind]):
        parametrize.register_parametrization(ours, "weight", mine())
        torch.nn.utils.parametrize.register_parametrization(theirs, "weight", torchs())


def assert_state_keys(ours, theirs):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", list(CUSTOM))
@pytest.mark.parametrize("layer", list(LAYERS))
def test_custom_parametrizations_match_torch(layer, kind, dtype):
    ours, theirs, x = pair(layer)
    register(ours, theirs, kind)
    assert_state_keys(ours, theirs)
    assert type(ours).__name__ == type(theirs).__name__ == f"Parametrized{type(theirs).__bases__[0].__name__}"
    check_parity(ours, theirs, x, dtype=dtype)
    assert_close(ours.weight, theirs.weight.detach().numpy(), dtype, "weight")
    assert ours.weight.dtype == dtype


def test_right_inverse_sets_original_and_assignment_goes_through_it():
    ours, theirs, _ = pair("linear")
    register(ours, theirs, "symmetric")
    assert_close(ours.parametrizations.weight.original, theirs.parametrizations.weight.original.detach().numpy(),
                 np.float32, "original")
    a = np.random.default_rng(1).standard_normal((4, 4)).astype(np.float32)
    a = a + a.T
    ours.weight = a
    np.testing.assert_allclose(ours.weight.data, a, rtol=1e-6)
    np.testing.assert_allclose(ours.parametrizations.weight.original, np.triu(a))


def test_registration_checks_shape_unless_unsafe():
    class Flatten(nn.Module):
        def forward(self, X):
            return X.reshape(-1)

    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(nn.Linear(3, 2), "weight", Flatten())
    m = parametrize.register_parametrization(nn.Linear(3, 2), "weight", Flatten(), unsafe=True)
    assert m.weight.shape == (6,)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
        parametrize.register_parametrization(nn.Linear(3, 2), "nope", Flatten())


def test_is_parametrized_and_type_before():
    m = nn.Linear(4, 4)
    assert not parametrize.is_parametrized(m)
    parametrize.register_parametrization(m, "weight", Symmetric())
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    assert parametrize.type_before_parametrizations(m) is nn.Linear and isinstance(m, nn.Linear)


@pytest.mark.parametrize("leave", [True, False])
def test_remove_parametrizations_matches_torch(leave):
    ours, theirs, x = pair("linear")
    register(ours, theirs, "symmetric+scale")
    copy_state(ours, theirs)
    parametrize.remove_parametrizations(ours, "weight", leave_parametrized=leave)
    torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight", leave_parametrized=leave)
    assert type(ours) is nn.Linear and not parametrize.is_parametrized(ours)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    assert_close(ours.weight.data, theirs.weight.detach().numpy(), np.float32, "weight")
    assert not ours._forward_pre_hooks and not ours._backward_hooks
    check_parity(ours, theirs, x, copy=False)


def test_remove_several_originals_needs_leave_parametrized():
    m = parametrizations.weight_norm(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    w = m.weight.data.copy()
    parametrize.remove_parametrizations(m, "weight")
    assert list(m.state_dict()) == ["bias", "weight"]
    np.testing.assert_array_equal(m.weight.data, w)
    with pytest.raises(ValueError, match="does not have a parametrization"):
        parametrize.remove_parametrizations(m, "weight")


def test_loads_torch_state_dict_and_sgd_steps_match():
    ours, theirs, x = pair("conv2d")
    register(ours, theirs, "symmetric+scale")
    ours.to(np.float64)
    theirs.double()
    copy_state(ours, theirs)
    opt = torchlite.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    t_x = torch.from_numpy(x)
    for _ in range(3):
        opt.zero_grad()
        t_opt.zero_grad()
        out = ours(x)
        ours.backward(2 * out)
        (theirs(t_x) ** 2).sum().backward()
        opt.step()
        t_opt.step()
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value.numpy(), np.float64, key)


def test_a_layer_called_twice_gets_each_forwards_weight():
    ours, theirs, x = pair("linear")
    register(ours, theirs, "scale")
    ours.to(np.float64)
    theirs.double()
    copy_state(ours, theirs)
    y1 = ours(x)
    ours.parametrizations.weight[0].scale.data = np.array(2.0)  # the second forward sees another weight
    y2 = ours(y1)
    g1 = ours.backward(np.ones_like(y2))
    ours.backward(g1)
    first = theirs.parametrizations.weight[0].scale
    t1 = theirs(torch.from_numpy(x))
    second = theirs.parametrizations.weight[0].scale = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
    theirs(t1).sum().backward()
    assert_close(ours.parametrizations.weight[0].scale.grad, (first.grad + second.grad).numpy(), np.float64, "scale")
    for name in ("bias", "parametrizations.weight.original"):
        assert_close(ours.get_parameter(name).grad, theirs.get_parameter(name).grad.numpy(), np.float64, name)


def test_cached_runs_the_chain_once_and_sums_gradients():
    ours, theirs, x = pair("linear")
    register(ours, theirs, "symmetric+scale")
    ours.to(np.float64)
    theirs.double()
    copy_state(ours, theirs)
    with parametrize.cached():
        y = ours(ours(x))
        assert ours.parametrizations.weight[1].saved_count == 1
    g = ours.backward(np.ones_like(y))
    ours.backward(g)
    assert ours.parametrizations.weight[1].saved_count == 0
    with torch.nn.utils.parametrize.cached():
        theirs(theirs(torch.from_numpy(x))).sum().backward()
    for name, p in theirs.named_parameters():
        assert_close(dict(ours.named_parameters())[name].grad, p.grad.numpy(), np.float64, name)


def test_no_grad_and_eval_hold_no_saved_state():
    m = nn.Linear(4, 4)
    parametrize.register_parametrization(m, "weight", Scale())
    with torchlite.no_grad():
        m(np.ones((2, 4), dtype=np.float32))
    assert all(sub.saved_count == 0 for sub in m.modules())
    m(np.ones((2, 4), dtype=np.float32))
    m.eval()
    assert all(sub.saved_count == 0 for sub in m.modules())


def test_gradcheck_custom_chain():
    m = nn.Linear(3, 3)
    parametrize.register_parametrization(m, "weight", Symmetric())
    parametrize.register_parametrization(m, "weight", Scale())
    assert gradcheck(m.double(), np.random.default_rng(0).standard_normal((2, 3)))


# ----------------------------------------------------------------------------- weight_norm
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer, dim", [("linear", 0), ("linear", 1), ("linear", None),
                                        ("conv2d", 0), ("conv2d", None), ("conv2d", -2)])
def test_weight_norm_matches_torch(layer, dim, dtype):
    ours, theirs, x = pair(layer)
    parametrizations.weight_norm(ours, dim=dim)
    torch.nn.utils.parametrizations.weight_norm(theirs, dim=dim)
    assert_state_keys(ours, theirs)
    g = ours.parametrizations.weight.original0
    assert g.shape == tuple(theirs.parametrizations.weight.original0.shape)
    assert_close(g, theirs.parametrizations.weight.original0.detach().numpy(), np.float32, "g at registration")
    check_parity(ours, theirs, x, dtype=dtype)
    assert g.grad.dtype == dtype


def test_weight_norm_gradcheck():
    m = parametrizations.weight_norm(nn.Conv2d(2, 3, 2), dim=None)
    assert gradcheck(m.double(), np.random.default_rng(0).standard_normal((1, 2, 3, 3)))


# ----------------------------------------------------------------------------- spectral_norm
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer, n_iter, dim", [("linear", 1, None), ("linear", 3, 1),
                                                ("conv2d", 1, None), ("conv2d", 2, -1)])
def test_spectral_norm_matches_torch(layer, n_iter, dim, dtype):
    ours, theirs, x = pair(layer)
    parametrizations.spectral_norm(ours, n_power_iterations=n_iter, dim=dim)
    torch.nn.utils.parametrizations.spectral_norm(theirs, n_power_iterations=n_iter, dim=dim)
    assert_state_keys(ours, theirs)
    assert ours.parametrizations.weight[0]._u.shape == tuple(theirs.parametrizations.weight[0]._u.shape)
    check_parity(ours, theirs, x, dtype=dtype)  # training: one more power iteration, buffers compared
    ours.eval()
    theirs.eval()
    check_parity(ours, theirs, x, dtype=dtype, copy=False)


def test_spectral_norm_registration_estimates_sigma():
    torchlite.manual_seed(0)
    m = parametrizations.spectral_norm(nn.Linear(6, 5))
    w = m.parametrizations.weight.original.data
    sn = m.parametrizations.weight[0]
    sigma = sn._u @ w @ sn._v
    assert abs(sigma - np.linalg.norm(w, 2)) < 1e-3 * np.linalg.norm(w, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        parametrizations.spectral_norm(nn.Linear(6, 5), dim=2)


def test_spectral_norm_of_a_vector_matches_torch():
    ours, theirs = nn.Linear(3, 4), torch.nn.Linear(3, 4)
    parametrizations.spectral_norm(ours, name="bias")
    torch.nn.utils.parametrizations.spectral_norm(theirs, name="bias")
    assert_state_keys(ours, theirs)
    check_parity(ours, theirs, np.random.default_rng(0).standard_normal((2, 3)))


def test_spectral_norm_sgd_steps_match_torch():
    ours, theirs, x = pair("linear")
    parametrizations.spectral_norm(ours)
    torch.nn.utils.parametrizations.spectral_norm(theirs)
    ours.to(np.float64)
    theirs.double()
    copy_state(ours, theirs)
    opt = torchlite.optim.SGD(ours.parameters(), lr=0.1)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        t_opt.zero_grad()
        out = ours(x)
        ours.backward(2 * out)
        (theirs(torch.from_numpy(x)) ** 2).sum().backward()
        opt.step()
        t_opt.step()
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value.numpy(), np.float64, key)


def test_parametrized_weight_norm_loads_a_classic_weight_norm_checkpoint_as_torch():
    from torchlite.nn.utils import parametrizations
    from torchlite.nn.utils import weight_norm as classic_weight_norm

    old = nn.Sequential(classic_weight_norm(nn.Linear(3, 4)))
    new = nn.Sequential(parametrizations.weight_norm(nn.Linear(3, 4)))
    state = old.state_dict()
    assert {"0.weight_g", "0.weight_v"} <= set(state)
    new.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(new(x), old(x), rtol=1e-6)
    assert set(state) == {"0.weight_g", "0.weight_v", "0.bias"}  # the caller's dict is not edited

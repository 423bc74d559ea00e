"""nn.utils.weight_norm / spectral_norm and their remove_* against torch.nn.utils (torch 2.13)."""
import copy
import warnings

import numpy as np
import pytest
import torch
from parity import assert_close, check_parity, copy_state

import torchlite
from torchlite import nn
from torchlite.nn.utils import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm
from torchlite.testing import gradcheck

LAYERS = {
    "linear": (lambda lib: lib.Linear(5, 4), (3, 5)),
    "conv2d": (lambda lib: lib.Conv2d(3, 4, 3, padding=1), (2, 3, 5, 5)),
    "convT2d": (lambda lib: lib.ConvTranspose2d(3, 4, 3, stride=2), (2, 3, 3, 3)),
}


def t_weight_norm(module, **kwargs):
    with warnings.catch_warnings():  # torch deprecates it in favour of parametrizations.weight_norm
        warnings.simplefilter("ignore", FutureWarning)
        return torch.nn.utils.weight_norm(module, **kwargs)


def pair(layer, seed=0):
    make, shape = LAYERS[layer]
    torch.manual_seed(seed)
    return make(nn), make(torch.nn), np.random.default_rng(seed).standard_normal(shape)


def assert_state_equal(ours, theirs, dtype):
    t_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(t_state)
    for key, value in ours.state_dict().items():
        assert value.dtype == dtype, key
        assert_close(value, t_state[key].numpy(), dtype, key)


# ----------------------------------------------------------------------------- weight_norm
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer, dim", [("linear", 0), ("linear", 1), ("linear", None), ("linear", -1),
                                        ("conv2d", 0), ("conv2d", None), ("conv2d", -2), ("conv2d", 3),
                                        ("convT2d", 1), ("convT2d", 0)])
def test_weight_norm_matches_torch(layer, dim, dtype):
    ours, theirs, x = pair(layer)
    weight_norm(ours, dim=dim)
    t_weight_norm(theirs, dim=dim)
    assert ours.weight_g.shape == tuple(theirs.weight_g.shape)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    check_parity(ours, theirs, x, dtype=dtype)
    assert ours.weight.dtype == dtype and ours.weight.grad is None
    assert_close(ours.weight.data, theirs.weight.detach().numpy(), dtype, "weight")


def test_weight_norm_keeps_the_magnitude_and_frozen_parts_get_no_gradient():
    m = weight_norm(nn.Linear(5, 4), dim=None)
    assert m.weight_g.shape == () and m.weight_v.shape == (4, 5)
    np.testing.assert_allclose(m.weight_g.data, np.linalg.norm(m.weight_v.data), rtol=1e-6)
    np.testing.assert_allclose(m.weight.data, m.weight_v.data, rtol=1e-6)
    m.weight_v.requires_grad_(False)
    m(np.ones((2, 5)))
    m.backward(np.ones((2, 4), np.float32))
    assert m.weight_v.grad is None and m.weight_g.grad.shape == () and m.weight_g.grad.dtype == np.float32
    m.weight_g.requires_grad_(False)
    m(np.ones((2, 5)))
    m.backward(np.ones((2, 4), np.float32))
    assert m.weight.grad is None and not m.weight.requires_grad


# ----------------------------------------------------------------------------- spectral_norm
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("layer, iterations", [("linear", 1), ("linear", 3), ("conv2d", 1), ("convT2d", 2)])
def test_spectral_norm_matches_torch(layer, iterations, training, dtype):
    ours, theirs, x = pair(layer)
    spectral_norm(ours, n_power_iterations=iterations)
    torch.nn.utils.spectral_norm(theirs, n_power_iterations=iterations)
    assert ours.weight_v.shape == tuple(theirs.weight_v.shape)  # ConvTranspose: dim 1 by default
    ours.train(training)
    theirs.train(training)
    before = theirs.weight_u.detach().clone()
    check_parity(ours, theirs, x, dtype=dtype)  # compares weight_u and weight_v after the forward
    assert torch.equal(theirs.weight_u, before.to(theirs.weight_u.dtype)) != training
    assert_close(ours.weight.data, theirs.weight.detach().numpy(), dtype, "weight")


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_spectral_norm_dim_and_eps(dim):
    ours, theirs, x = pair("conv2d")
    spectral_norm(ours, dim=dim, eps=1e-3)
    torch.nn.utils.spectral_norm(theirs, dim=dim, eps=1e-3)
    check_parity(ours, theirs, x, dtype=np.float64)


def test_spectral_norm_init_draws_from_torchlite_generator():
    torchlite.manual_seed(3)
    a = spectral_norm(nn.Linear(6, 4))
    torchlite.manual_seed(3)
    b = spectral_norm(nn.Linear(6, 4))
    np.testing.assert_array_equal(a.weight_u, b.weight_u)
    assert a.weight_u.dtype == np.float32 and a.weight_v.shape == (6,)
    np.testing.assert_allclose(np.linalg.norm(a.weight_u), 1, rtol=1e-6)
    assert a.weight is not a.weight_orig and a.weight.data is a.weight_orig.data  # torch's: W_orig until a forward


# ----------------------------------------------------------------------------- stacks of calls
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer", ["linear", "conv2d"])
def test_several_forwards_then_backwards_in_reverse_order(layer, dtype):
    """Each spectral-norm training forward has its own sigma; each backward must use its own forward's."""
    ours, theirs, x = pair(layer)
    spectral_norm(ours)
    torch.nn.utils.spectral_norm(theirs)
    weight_norm(ours, name="bias")
    t_weight_norm(theirs, name="bias")
    theirs.to(dict(float64=torch.float64, float32=torch.float32)[np.dtype(dtype).name])
    ours.to(dtype)
    copy_state(ours, theirs)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(x.shape).astype(dtype) for _ in range(3)]
    t_xs = [torch.tensor(v, requires_grad=True) for v in xs]
    y0, y1 = ours(xs[0]), ours(xs[1])
    t_y = [theirs(t_xs[0]), theirs(t_xs[1])]
    gs = [rng.standard_normal(y0.shape).astype(dtype) for _ in range(3)]
    dx = {1: ours.backward(gs[1])}
    y2 = ours(xs[2])  # forward 0, 1, backward 1, forward 2, backward 2, backward 0: still a stack
    t_y.append(theirs(t_xs[2]))
    dx[2] = ours.backward(gs[2])
    dx[0] = ours.backward(gs[0])
    sum((ty * torch.tensor(g)).sum() for ty, g in zip(t_y, gs)).backward()
    for i, y in enumerate([y0, y1, y2]):
        assert_close(y, t_y[i].detach().numpy(), dtype, f"output {i}")
        assert_close(dx[i], t_xs[i].grad.numpy(), dtype, f"grad of input {i}")
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad.dtype == dtype
        assert_close(p.grad, t_params[name].grad.numpy(), dtype, f"grad of {name}")
    assert_state_equal(ours, theirs, dtype)


def test_dropped_forwards_hold_no_state():
    m = spectral_norm(weight_norm(nn.Linear(5, 4), name="bias"))
    hooks = list(m._forward_pre_hooks.values())
    x = np.ones((2, 5), np.float32)
    m(x)
    m(x)
    assert [len(h._calls) for h in hooks] == [2, 2]
    m.eval()  # drops saved state: no backward will come for these forwards
    with torchlite.no_grad():
        m(x)
    assert [len(h._calls) for h in hooks] == [0, 0]
    m.train()
    m(x)
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward(np.ones((2, 4), np.float32))
        m.backward(np.ones((2, 4), np.float32))
    assert m.weight.grad is None and [len(h._calls) for h in hooks] == [0, 0]


def test_forward_undone_by_a_failing_outer_call_and_deepcopy():
    ours, theirs, x = pair("linear")
    spectral_norm(ours)
    torch.nn.utils.spectral_norm(theirs)
    copy_state(ours, theirs)
    model = nn.Sequential(ours, nn.Linear(3, 2))  # 4 outputs into 3 inputs: the second layer refuses
    x = x.astype(np.float32)
    with pytest.raises(ValueError, match="expected input"):
        model(x)
    theirs(torch.tensor(x))  # the failed call still ran the power iteration, in torch too
    twin = copy.deepcopy(ours)
    t_twin = torch.nn.utils.spectral_norm(torch.nn.Linear(5, 4))  # torch cannot deepcopy it (weight is no leaf)
    t_twin.load_state_dict(theirs.state_dict())
    for m, t_m in [(ours, theirs), (twin, t_twin)]:
        check_parity(m, t_m, x, dtype=np.float32, copy=False)
    assert twin.weight_orig is not ours.weight_orig and twin.weight is not ours.weight
    assert not any(len(h._calls) for h in twin._forward_pre_hooks.values())


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_steps_match_torch(dtype):
    def build(lib):
        return lib.Sequential(lib.Conv2d(2, 3, 3), lib.Tanh(), lib.Flatten(), lib.Linear(27, 4),
                              lib.Tanh(), lib.Unflatten(1, (1, 2, 2)), lib.ConvTranspose2d(1, 2, 2))

    torch.manual_seed(0)
    ours, theirs = build(nn), build(torch.nn)
    weight_norm(ours[0])
    t_weight_norm(theirs[0])
    spectral_norm(ours[3], n_power_iterations=2)
    torch.nn.utils.spectral_norm(theirs[3], n_power_iterations=2)
    spectral_norm(ours[6])
    torch.nn.utils.spectral_norm(theirs[6])
    weight_norm(ours[6], name="bias", dim=None)
    t_weight_norm(theirs[6], name="bias", dim=None)
    theirs.to(dict(float64=torch.float64, float32=torch.float32)[np.dtype(dtype).name])
    ours.to(dtype)
    copy_state(ours, theirs)
    opt = torchlite.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((3, 2, 5, 5)).astype(dtype)
        target = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
        opt.zero_grad()
        t_opt.zero_grad()
        out = ours(x)
        crit, t_crit = nn.MSELoss(), torch.nn.MSELoss()
        loss = crit(out, target)
        ours.backward(crit.backward())
        t_loss = t_crit(theirs(torch.tensor(x)), torch.tensor(target))
        t_loss.backward()
        assert_close(loss, t_loss.item(), dtype, "loss")
        opt.step()
        t_opt.step()
    assert_state_equal(ours, theirs, dtype)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 2, 5, 5)).astype(dtype)
    u = ours[3].weight_u.copy()
    with torchlite.no_grad():
        out = ours(x)
    assert_close(out, theirs(torch.tensor(x)).detach().numpy(), dtype, "eval output")
    np.testing.assert_array_equal(ours[3].weight_u, u)  # eval: no power iteration
    assert_state_equal(ours, theirs, dtype)


# ----------------------------------------------------------------------------- state_dict and remove
def both_reparametrized(lib):
    m = lib.Linear(5, 4)
    spectral_norm(m) if lib is nn else torch.nn.utils.spectral_norm(m)
    weight_norm(m, name="bias") if lib is nn else t_weight_norm(m, name="bias")
    return m


def test_state_dict_keys_are_torchs_and_a_torch_state_dict_loads():
    torch.manual_seed(0)
    theirs = both_reparametrized(torch.nn)
    theirs(torch.randn(3, 5))  # moves u and v
    ours = both_reparametrized(nn)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight_orig", "bias_g", "bias_v",
                                                                    "weight_u", "weight_v"]
    assert [n for n, _ in ours.named_parameters()] == ["weight_orig", "bias_g", "bias_v"]
    assert "weight" not in ours._parameters and "bias" not in ours._parameters
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    for training in (False, True):
        ours.train(training)
        theirs.train(training)
        assert_close(ours(x), theirs(torch.tensor(x)).detach().numpy(), np.float32, f"training={training}")
    assert_state_equal(ours, theirs, np.float32)
    back = torch.nn.Linear(5, 4)  # and the other way: ours loads into torch
    torch.nn.utils.spectral_norm(back)
    t_weight_norm(back, name="bias")
    back.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    back.eval()
    ours.eval()
    assert_close(ours(x), back(torch.tensor(x)).detach().numpy(), np.float32, "torch loading ours")


@pytest.mark.parametrize("layer", ["linear", "conv2d", "convT2d"])
def test_remove_round_trip(layer):
    ours, theirs, x = pair(layer)
    spectral_norm(ours)
    torch.nn.utils.spectral_norm(theirs)
    weight_norm(ours, name="bias")
    t_weight_norm(theirs, name="bias")
    copy_state(ours, theirs)
    x = x.astype(np.float32)
    out = ours(x)
    theirs(torch.tensor(x))
    ours.backward(np.ones_like(out))
    remove_weight_norm(ours, "bias")
    torch.nn.utils.remove_weight_norm(theirs, "bias")
    remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    assert_state_equal(ours, theirs, np.float32)
    assert isinstance(ours.weight, nn.Parameter) and [n for n, _ in ours.named_parameters()] == ["bias", "weight"]
    assert not ours._has_hooks() and not ours._buffers
    with torchlite.no_grad():  # the plain layer computes what the last reparametrized forward computed
        assert_close(ours(x), theirs(torch.tensor(x)).detach().numpy(), np.float32, "output after remove")
    check_parity(ours, theirs, x, dtype=np.float32)
    spectral_norm(ours)  # and it can be applied again
    weight_norm(ours, name="bias")
    assert list(ours.state_dict()) == ["weight_orig", "bias_g", "bias_v", "weight_u", "weight_v"]


def test_weight_norm_remove_keeps_the_weight():
    m = weight_norm(nn.Conv2d(2, 3, 3), dim=None)
    m.weight_g.data[...] = 2.0
    m(np.ones((1, 2, 4, 4)))
    w = m.weight.data.copy()
    remove_weight_norm(m)
    np.testing.assert_allclose(m.weight.data, w)
    np.testing.assert_allclose(np.linalg.norm(m.weight.data), 2.0, rtol=1e-6)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight"] and m.weight.requires_grad


# ----------------------------------------------------------------------------- errors
def outcome(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the outcome is compared with torch's
        return type(e), str(e)
    return None


OURS = dict(weight_norm=weight_norm, remove_weight_norm=remove_weight_norm, spectral_norm=spectral_norm,
            remove_spectral_norm=remove_spectral_norm)
THEIRS = dict(weight_norm=t_weight_norm, remove_weight_norm=torch.nn.utils.remove_weight_norm,
              spectral_norm=torch.nn.utils.spectral_norm, remove_spectral_norm=torch.nn.utils.remove_spectral_norm)
MODULES = {"linear": lambda lib: lib.Linear(3, 4), "no bias": lambda lib: lib.Linear(3, 4, bias=False),
           "conv": lambda lib: lib.Conv2d(2, 3, 2), "batchnorm": lambda lib: lib.BatchNorm1d(3)}
ERROR_CASES = {  # case: (module, utilities applied first, the refused call and its keywords)
    "weight_norm twice": ("linear", ["weight_norm"], "weight_norm", {}),
    "weight_norm unknown name": ("linear", [], "weight_norm", dict(name="foo")),
    "weight_norm of a buffer": ("batchnorm", [], "weight_norm", dict(name="running_mean")),
    "weight_norm dim out of range": ("conv", [], "weight_norm", dict(dim=4)),
    "weight_norm dim below range": ("linear", [], "weight_norm", dict(dim=-3)),
    "weight_norm after spectral_norm": ("linear", ["spectral_norm"], "weight_norm", {}),
    "remove_weight_norm without": ("linear", [], "remove_weight_norm", {}),
    "remove_weight_norm other name": ("linear", ["weight_norm"], "remove_weight_norm", dict(name="bias")),
    "spectral_norm twice": ("linear", ["spectral_norm"], "spectral_norm", {}),
    "spectral_norm unknown name": ("linear", [], "spectral_norm", dict(name="foo")),
    "spectral_norm of None": ("no bias", [], "spectral_norm", dict(name="bias")),
    "spectral_norm iterations": ("linear", [], "spectral_norm", dict(n_power_iterations=0)),
    "spectral_norm of a buffer": ("batchnorm", [], "spectral_norm", dict(name="running_mean")),
    "remove_spectral_norm without": ("linear", ["weight_norm"], "remove_spectral_norm", {}),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_match_torch(case):
    module, before, call, kwargs = ERROR_CASES[case]
    results = []
    for lib, utils in [(nn, OURS), (torch.nn, THEIRS)]:
        m = MODULES[module](lib)
        for name in before:
            utils[name](m)
        keys = list(m.state_dict())
        results.append(outcome(lambda: utils[call](m, **kwargs)))
        if lib is nn:
            assert list(m.state_dict()) == keys  # a refusal changes nothing
    assert results[0] is not None and results[0] == results[1]


def test_other_errors():
    with pytest.raises(TypeError, match="'bias' of Linear must be a Parameter, got NoneType"):
        weight_norm(nn.Linear(3, 4, bias=False), name="bias")
    with pytest.raises(RuntimeError, match=r"dim=2 is out of range for parameter 'weight' of shape \(4, 3\)"):
        spectral_norm(nn.Linear(3, 4), dim=2)
    with pytest.raises(RuntimeError, match="out of range"):
        spectral_norm(nn.Linear(3, 4), dim=-1)  # torch refuses negative dims too
    for fn, hook, what in [(weight_norm, "WeightNorm", "weight"), (spectral_norm, "SpectralNorm", "spectral")]:
        with pytest.raises(ValueError, match=f"The module passed to `{hook}` can't have uninitialized parameters. "
                                             f"Make sure to run the dummy forward before applying {what}"):
            fn(nn.LazyLinear(4))
    m = nn.LazyLinear(4)
    m(np.ones((2, 3)))
    weight_norm(m)  # fine once materialized
    assert m.weight_v.shape == (4, 3)


# ----------------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("make, shape", [
    (lambda: weight_norm(nn.Conv2d(2, 3, 2)), (2, 2, 3, 3)),
    (lambda: weight_norm(nn.Linear(4, 3), dim=None), (2, 4)),
    (lambda: weight_norm(nn.ConvTranspose2d(2, 3, 2), dim=1), (1, 2, 2, 2)),
    (lambda: spectral_norm(nn.Linear(4, 3)).eval(), (2, 4)),  # eval: u and v stay put, as gradcheck needs
    (lambda: spectral_norm(nn.ConvTranspose2d(2, 3, 2)).eval(), (1, 2, 2, 2)),
])
def test_gradcheck(make, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    assert gradcheck(make().double(), x)

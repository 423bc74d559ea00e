"""Optimizers against torch.optim: same parameters after many steps, state_dict layout and resume."""
import copy

import numpy as np
import pytest
import torch

import torchlite
from torchlite import optim
from torchlite.nn import Parameter

SHAPES = [(4, 3), (3,), (2, 2, 2), ()]
STEPS = 12

CONFIGS = {
    "SGD": [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, dampening=0.5),
            dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, weight_decay=0.1),
            dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.2, maximize=True)],
    "Adam": [dict(lr=0.05), dict(lr=0.05, amsgrad=True), dict(lr=0.05, weight_decay=0.1),
             dict(lr=0.05, maximize=True), dict(lr=0.05, betas=(0.8, 0.9), eps=1e-3),
             dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
             dict(lr=0.05, amsgrad=True, maximize=True, weight_decay=0.3)],
    "AdamW": [dict(lr=0.05), dict(lr=0.05, amsgrad=True), dict(lr=0.05, weight_decay=0.5),
              dict(lr=0.05, maximize=True, betas=(0.5, 0.6))],
    "RMSprop": [dict(lr=0.01), dict(lr=0.01, centered=True), dict(lr=0.01, momentum=0.9),
                dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1), dict(lr=0.01, maximize=True),
                dict(lr=0.01, alpha=0.3, eps=1e-2)],
    "Adagrad": [dict(lr=0.1), dict(lr=0.1, lr_decay=0.1), dict(lr=0.1, weight_decay=0.1),
                dict(lr=0.1, initial_accumulator_value=0.5), dict(lr=0.1, maximize=True, eps=1e-3)],
    "NAdam": [dict(lr=0.05), dict(lr=0.05, weight_decay=0.1),
              dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), dict(lr=0.05, momentum_decay=1e-2),
              dict(lr=0.05, maximize=True, betas=(0.7, 0.8))],
    "RAdam": [dict(lr=0.05), dict(lr=0.05, weight_decay=0.1),
              dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), dict(lr=0.05, maximize=True),
              dict(lr=0.05, betas=(0.9, 0.9))],
    "Adamax": [dict(lr=0.05), dict(lr=0.05, weight_decay=0.1), dict(lr=0.05, maximize=True),
               dict(lr=0.05, betas=(0.5, 0.7), eps=1e-3)],
}
CASES = [(name, cfg) for name, cfgs in CONFIGS.items() for cfg in cfgs]
NAMES = list(CONFIGS)


def case_id(case):
    name, cfg = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in cfg.items())


def init_values(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def coefficients(cfg=None, seed=1):
    """Per-parameter coefficients of the objective; its sign flips for ``maximize`` so runs stay bounded."""
    rng = np.random.default_rng(seed)
    sign = -1.0 if (cfg or {}).get("maximize") else 1.0
    return [(rng.uniform(0.5, 2.0, s), rng.standard_normal(s), sign) for s in SHAPES]


def gradient(x, coef):
    """Gradient of sign * sum(a x^2 / 2 + b x + x^4 / 40): a fixed, non-quadratic function of the parameters."""
    a, b, sign = coef
    return np.asarray(sign * (a * x + b + 0.1 * x ** 3), dtype=x.dtype)


def make_pair(dtype, values=None):
    values = init_values(dtype) if values is None else values
    tl = [Parameter(v.copy()) for v in values]
    tp = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    return tl, tp


def set_grads(tl, tp, coefs):
    for p, q, c in zip(tl, tp, coefs):
        p.grad = gradient(p.data, c)
        q.grad = torch.from_numpy(gradient(q.detach().numpy(), c))


def run(opt, params, coefs, steps):
    for _ in range(steps):
        opt.zero_grad()
        for p, c in zip(params, coefs):
            p.grad = gradient(p.data, c)
        opt.step()


def assert_params_equal(tl, tp, dtype):
    tol = dict(rtol=1e-7, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for i, (p, q) in enumerate(zip(tl, tp)):
        assert p.data.dtype == dtype, f"param {i} became {p.data.dtype}"
        np.testing.assert_allclose(p.data, q.detach().numpy(), err_msg=f"param {i}", **tol)


def torch_state_numpy(sd):
    """A torch optimizer state_dict with tensors converted by ``.numpy()``."""
    state = {k: {kk: (vv.numpy() if isinstance(vv, torch.Tensor) else vv) for kk, vv in v.items()}
             for k, v in sd["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch(case, dtype):
    name, cfg = case
    tl, tp = make_pair(dtype)
    opt = getattr(optim, name)(tl, **cfg)
    topt = getattr(torch.optim, name)(tp, foreach=False, **cfg)
    coefs = coefficients(cfg)
    for _ in range(STEPS):
        opt.zero_grad()
        topt.zero_grad()
        set_grads(tl, tp, coefs)
        opt.step()
        topt.step()
    assert_params_equal(tl, tp, dtype)
    for p in tl:
        for key, value in opt.state[p].items():
            if isinstance(value, np.ndarray) and value.ndim:
                assert value.dtype == dtype, f"state {key} is {value.dtype}"


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_their_own_options(name):
    tl, tp = make_pair(np.float64)
    cfg = CONFIGS[name][1]
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.01, "weight_decay": 0.2}]  # noqa: E731
    opt = getattr(optim, name)(groups(tl), **cfg)
    topt = getattr(torch.optim, name)(groups(tp), foreach=False, **cfg)
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[0]["lr"] == cfg["lr"]
    coefs = coefficients(cfg)
    for _ in range(STEPS):
        set_grads(tl, tp, coefs)
        opt.step()
        topt.step()
    assert_params_equal(tl, tp, np.float64)


@pytest.mark.parametrize("case", [(n, c[-1]) for n, c in CONFIGS.items()], ids=case_id)
def test_resume_from_saved_state_dict(case, tmp_path):
    name, cfg = case
    coefs = coefficients(cfg)
    values = init_values(np.float32)
    cls = getattr(optim, name)
    groups = lambda ps: [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}]  # noqa: E731

    straight = [Parameter(v.copy()) for v in values]
    run(cls(groups(straight), **cfg), straight, coefs, STEPS)

    first = [Parameter(v.copy()) for v in values]
    opt = cls(groups(first), **cfg)
    run(opt, first, coefs, STEPS // 2)
    saved = copy.deepcopy(opt.state_dict())
    torchlite.save({"optimizer": opt.state_dict(), "params": [p.data for p in first]}, tmp_path / "ckpt.npz")
    del opt

    ckpt = torchlite.load(tmp_path / "ckpt.npz")
    resumed = [Parameter(v.copy()) for v in ckpt["params"]]
    opt = cls(groups(resumed), **cfg)
    assert ckpt["optimizer"]["param_groups"] == saved["param_groups"]  # tuples (betas), None, bools survive
    assert list(ckpt["optimizer"]["state"]) == list(saved["state"])  # int keys survive
    opt.load_state_dict(ckpt["optimizer"])
    assert opt.param_groups[1]["lr"] == 0.02
    run(opt, resumed, coefs, STEPS - STEPS // 2)
    for a, b in zip(resumed, straight):
        assert a.data.dtype == np.float32
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("case", [(n, c[-1]) for n, c in CONFIGS.items()], ids=case_id)
def test_state_dict_layout_and_loading_torchs(case):
    """Same keys, shapes and group options as torch's state_dict; torch's (as numpy) loads and continues."""
    name, cfg = case
    coefs = coefficients(cfg)
    tl, tp = make_pair(np.float64)
    opt = getattr(optim, name)(tl, **cfg)
    topt = getattr(torch.optim, name)(tp, **cfg)
    for _ in range(STEPS // 2):
        set_grads(tl, tp, coefs)
        opt.step()
        topt.step()
    ours, theirs = opt.state_dict(), torch_state_numpy(topt.state_dict())
    assert ours["param_groups"] == theirs["param_groups"]
    assert list(ours["state"]) == list(theirs["state"])
    for index, t_state in theirs["state"].items():
        assert list(ours["state"][index]) == list(t_state)
        for key, value in t_state.items():
            np.testing.assert_allclose(ours["state"][index][key], value, rtol=1e-7, atol=1e-12, err_msg=key)
            assert np.shape(ours["state"][index][key]) == np.shape(value)

    fresh = [Parameter(q.detach().numpy().copy()) for q in tp]
    opt2 = getattr(optim, name)(fresh, **cfg)
    opt2.load_state_dict(theirs)
    for _ in range(STEPS - STEPS // 2):
        set_grads(fresh, tp, coefs)
        opt2.step()
        topt.step()
    assert_params_equal(fresh, tp, np.float64)


def test_scalar_state_dtype_follows_torch():
    tl, tp = make_pair(np.float64)
    opt, topt = optim.NAdam(tl), torch.optim.NAdam(tp)
    set_grads(tl, tp, coefficients())
    opt.step()
    topt.step()
    for key in ("step", "mu_product"):
        ours, theirs = opt.state[tl[0]][key], topt.state[tp[0]][key].numpy()
        assert ours.shape == () and ours.dtype == theirs.dtype == np.float32
        assert ours == theirs


def test_load_keeps_scalar_state_dtype_and_accepts_plain_numbers(tmp_path):
    p = Parameter(np.ones(3))
    opt = optim.NAdam([p])
    p.grad = np.ones(3)
    opt.step()
    torchlite.save(opt.state_dict(), tmp_path / "nadam.npz")
    fresh = optim.NAdam([Parameter(np.ones(3))])
    fresh.load_state_dict(torchlite.load(tmp_path / "nadam.npz"))
    state = next(iter(fresh.state.values()))
    for key in ("step", "mu_product"):
        assert isinstance(state[key], np.ndarray) and state[key].dtype == np.float32
        assert state[key] == opt.state[p][key]
    assert state["exp_avg"].dtype == np.float64

    sd = opt.state_dict()
    sd["state"][0] = dict(sd["state"][0], step=3, mu_product=0.5)
    fresh.load_state_dict(sd)
    state = next(iter(fresh.state.values()))
    assert state["step"].shape == () and state["step"].dtype == np.float32 and float(state["step"]) == 3.0
    assert state["mu_product"].dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_skips_params_without_grad_or_frozen(name):
    a, b, c = (Parameter(np.ones(3)) for _ in range(3))
    c.requires_grad = False
    opt = getattr(optim, name)([a, b, c], lr=0.1)
    a.grad = np.full(3, 0.5)
    c.grad = np.full(3, 0.5)
    opt.step()
    assert not np.allclose(a.data, 1.0)
    np.testing.assert_array_equal(b.data, 1.0)
    np.testing.assert_array_equal(c.data, 1.0)
    if name != "Adagrad":  # Adagrad creates its state at construction, as torch
        assert b not in opt.state and c not in opt.state


@pytest.mark.parametrize("name", NAMES)
def test_update_is_in_place_and_keeps_float32(name):
    p = Parameter(np.ones((2, 3), dtype=np.float32))
    data = p.data
    opt = getattr(optim, name)([p], lr=0.1)
    for _ in range(3):
        p.grad = np.full((2, 3), 0.25, dtype=np.float32)
        opt.step()
    assert p.data is data and p.data.dtype == np.float32
    assert all(v.dtype in (np.float32,) for v in opt.state[p].values() if isinstance(v, np.ndarray))


BAD_ARGS = [
    ("SGD", dict(lr=-1)), ("SGD", dict(momentum=-0.5)), ("SGD", dict(weight_decay=-1e-3)),
    ("SGD", dict(nesterov=True)), ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True)),
    ("Adam", dict(lr=-1)), ("Adam", dict(eps=-1.0)), ("Adam", dict(betas=(1.0, 0.9))),
    ("Adam", dict(betas=(0.9, -0.1))), ("Adam", dict(weight_decay=-0.5)), ("AdamW", dict(lr=-0.01)),
    ("AdamW", dict(betas=(0.9, 1.5))), ("RMSprop", dict(lr=-1)), ("RMSprop", dict(alpha=-0.1)),
    ("RMSprop", dict(momentum=-1)), ("RMSprop", dict(eps=-1e-8)), ("RMSprop", dict(weight_decay=-2)),
    ("Adagrad", dict(lr=-1)), ("Adagrad", dict(lr_decay=-1)), ("Adagrad", dict(initial_accumulator_value=-1)),
    ("Adagrad", dict(eps=-1.0)), ("Adagrad", dict(weight_decay=-1)), ("NAdam", dict(momentum_decay=-1)),
    ("NAdam", dict(betas=(-0.1, 0.9))), ("RAdam", dict(lr=-3)), ("RAdam", dict(eps=-1.0)),
    ("Adamax", dict(betas=(0.9, 1.0))), ("Adamax", dict(weight_decay=-1)),
]


@pytest.mark.parametrize("name,kwargs", BAD_ARGS, ids=lambda v: str(v))
def test_bad_hyperparameters_raise_torchs_message(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)([Parameter(np.ones(2))], **kwargs)
    assert str(ours.value) == str(theirs.value)
    if "nesterov" not in kwargs:
        assert str(ours.value).endswith(str(next(iter(kwargs.values())))) or "beta" in str(ours.value)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_and_repr_match_torch(name):
    ours = getattr(optim, name)([Parameter(np.ones(2))])
    theirs = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))])
    assert ours.defaults == theirs.defaults
    assert repr(ours) == repr(theirs)


def test_constructor_checks():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Parameters"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Parameters.*ndarray"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)


def test_add_param_group_fills_defaults_and_rejects_shared_params():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["params"] == [b]
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([a])
    assert len(opt.param_groups) == 2


def test_named_parameters_give_param_names():
    model = torchlite.nn.Linear(3, 2)
    opt = optim.Adam(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


def test_zero_grad_both_ways():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=0.1)
    a.grad = np.ones(2)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, 0.0)
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_step_with_closure_returns_loss():
    p = Parameter(np.array([3.0]))
    opt = optim.SGD([p], lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        calls.append(torchlite.is_grad_enabled())
        p.grad = 2 * p.data
        return float(p.data[0] ** 2)

    with torchlite.no_grad():
        loss = opt.step(closure)
    assert loss == 9.0 and calls == [True]
    np.testing.assert_allclose(p.data, [3.0 - 0.1 * 6.0])


def snapshot(opt):
    return copy.deepcopy((opt.state_dict(), [dict(g) for g in opt.param_groups]))


def test_load_state_dict_validates_and_changes_nothing():
    a, b = Parameter(np.ones((2, 3))), Parameter(np.ones(4))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = np.ones((2, 3)), np.ones(4)
    opt.step()
    good = opt.state_dict()
    before = snapshot(opt)

    two_groups = optim.Adam([{"params": [a]}, {"params": [b]}]).state_dict()
    with pytest.raises(ValueError, match=r"different number of parameter groups \(2, this optimizer has 1\)"):
        opt.load_state_dict(two_groups)
    one_param = optim.Adam([a]).state_dict()
    with pytest.raises(ValueError, match=r"doesn't match the size.*1 parameters saved, 2 in this"):
        opt.load_state_dict(one_param)
    bad_shape = copy.deepcopy(good)
    bad_shape["state"][1]["exp_avg"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 1 has shape \(5,\).*\(4,\)"):
        opt.load_state_dict(bad_shape)
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({"weight": np.ones(2)})

    after = snapshot(opt)
    assert after[0]["param_groups"] == before[0]["param_groups"]
    for k in before[0]["state"]:
        for key, v in before[0]["state"][k].items():
            np.testing.assert_array_equal(after[0]["state"][k][key], v)


def test_load_state_dict_copies_and_casts_arrays():
    a = Parameter(np.ones(3, dtype=np.float32))
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    source = {"state": {0: {"momentum_buffer": np.arange(3.0)}},
              "param_groups": [dict(opt.state_dict()["param_groups"][0], lr=0.5)]}
    opt.load_state_dict(source)
    buf = opt.state[a]["momentum_buffer"]
    assert buf.dtype == np.float32 and buf is not source["state"][0]["momentum_buffer"]
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["params"] == [a]

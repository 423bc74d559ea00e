"""Adafactor and Muon against torch.optim (2.13): the same parameters and gradients stepped side by side give
the same parameters and optimizer state after every step; state_dict round trips (ours and torch's);
torch's argument errors and constructor signatures."""
import inspect
import re

import numpy as np
import pytest
import torch

import torchlite
from torchlite import optim
from torchlite.nn import Parameter

STEPS = 5
TOL = {np.float64: dict(rtol=1e-7, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-7)}

# 0-d and 1-d parameters keep a full variance; the others are factored over their last two dims
ADAFACTOR_SHAPES = [(5,), (3, 4), (2, 3, 4), (), (4, 1)]
# wide, tall (transposed inside Newton-Schulz), square, and a single row or column
MUON_SHAPES = [(3, 5), (6, 2), (4, 4), (1, 3), (3, 1)]

CONFIGS = {
    "Adafactor": [
        dict(), dict(lr=0.05), dict(lr=0.9),  # lr=0.9 > 1/sqrt(t): rho follows the step count
        dict(beta2_decay=-0.5), dict(beta2_decay=-1.0), dict(beta2_decay=0.0),
        dict(eps=(1e-3, 1e-3)), dict(eps=(None, 0.0)), dict(eps=(0.0, 0.5)), dict(eps=(1e-30, 1e-2)),
        dict(d=1.5), dict(d=100.0), dict(weight_decay=0.1), dict(weight_decay=0.5, lr=0.1),
        dict(maximize=True), dict(lr=0.2, beta2_decay=-0.6, eps=(1e-4, 1e-2), d=2.0, weight_decay=0.2, maximize=True),
        dict(foreach=False),
    ],
    "Muon": [
        dict(), dict(lr=0.02), dict(weight_decay=0.0), dict(weight_decay=0.5, lr=0.05),
        dict(momentum=0.0), dict(momentum=0.5), dict(nesterov=False), dict(nesterov=False, momentum=0.9),
        dict(ns_steps=0), dict(ns_steps=1), dict(ns_steps=3), dict(ns_steps=7),
        dict(adjust_lr_fn="original"), dict(adjust_lr_fn="match_rms_adamw"),
        dict(ns_coefficients=(2.0, -1.5, 0.5)), dict(eps=1e-2),
        dict(lr=0.05, weight_decay=0.2, momentum=0.8, nesterov=False, ns_steps=4, adjust_lr_fn="match_rms_adamw"),
    ],
}
CASES = [(name, cfg) for name, cfgs in CONFIGS.items() for cfg in cfgs]


def case_id(case):
    name, cfg = case
    return name + "-" + (",".join(f"{k}={v}" for k, v in cfg.items()) or "default")


def shapes_of(name):
    return ADAFACTOR_SHAPES if name == "Adafactor" else MUON_SHAPES


def make_params(name, dtype, seed=0):
    """The same starting values as torchlite Parameters and torch leaf tensors."""
    rng = np.random.default_rng(seed)
    values = [np.asarray(rng.standard_normal(shape), dtype=dtype) for shape in shapes_of(name)]
    return [Parameter(v.copy()) for v in values], [torch.tensor(v, requires_grad=True) for v in values]


def make_grads(name, dtype, steps=STEPS, seed=1, scale=1.0):
    rng = np.random.default_rng(seed)
    return [[np.asarray(scale * rng.standard_normal(shape), dtype=dtype) for shape in shapes_of(name)]
            for _ in range(steps)]


def step_both(opt, topt, params, tparams, grads):
    for p, t, g in zip(params, tparams, grads):
        p.grad = g.copy()
        t.grad = torch.from_numpy(g.copy())
    opt.step()
    topt.step()


def torch_state_numpy(sd):
    """torch's optimizer state_dict with its tensors converted by ``.numpy()``."""
    state = {k: {kk: (vv.numpy() if isinstance(vv, torch.Tensor) else vv) for kk, vv in v.items()}
             for k, v in sd["state"].items()}
    return {"state": state, "param_groups": [dict(g) for g in sd["param_groups"]]}


def assert_same(opt, topt, params, tparams, dtype, what):
    tol = TOL[dtype]
    for i, (p, t) in enumerate(zip(params, tparams)):
        assert p.data.dtype == dtype
        np.testing.assert_allclose(p.data, t.detach().numpy(), err_msg=f"{what}: param {i}", **tol)
    ours, theirs = opt.state_dict(), torch_state_numpy(topt.state_dict())
    assert ours["param_groups"] == theirs["param_groups"], what
    assert list(ours["state"]) == list(theirs["state"]), what
    for index, t_state in theirs["state"].items():
        assert list(ours["state"][index]) == list(t_state), f"{what}: state {index}"
        for key, value in t_state.items():
            mine = ours["state"][index][key]
            assert mine.shape == value.shape and mine.dtype == value.dtype, f"{what}: state {index} {key}"
            np.testing.assert_allclose(mine, value, err_msg=f"{what}: state {index} {key}", **tol)


def run_side_by_side(name, cfg, dtype, scale=1.0):
    params, tparams = make_params(name, dtype)
    opt, topt = getattr(optim, name)(params, **cfg), getattr(torch.optim, name)(tparams, **cfg)
    for step, grads in enumerate(make_grads(name, dtype, scale=scale), 1):
        step_both(opt, topt, params, tparams, grads)
        assert_same(opt, topt, params, tparams, dtype, f"step {step}")
    return params, tparams


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch_every_step(case, dtype):
    name, cfg = case
    params, tparams = run_side_by_side(name, cfg, dtype)
    start = make_params(name, dtype)[0]
    assert all(not np.array_equal(p.data, s.data) for p, s in zip(params, start)), "a step did nothing"


@pytest.mark.parametrize("scale", [1e-9, 1e-20, 0.0])
@pytest.mark.parametrize("eps", [(None, 1e-3), (1e-6, 1e-3)])
def test_adafactor_tiny_and_zero_gradients_hit_eps1_as_torch(scale, eps):
    run_side_by_side("Adafactor", dict(eps=eps), np.float64, scale=scale)


@pytest.mark.parametrize("scale", [1e-12, 0.0])
def test_muon_tiny_and_zero_gradients_hit_eps_as_torch(scale):
    run_side_by_side("Muon", dict(), np.float64, scale=scale)


@pytest.mark.parametrize("name", CONFIGS)
def test_param_groups_with_their_own_options(name):
    params, tparams = make_params(name, np.float64)
    own = dict(lr=0.3, weight_decay=0.05) if name == "Adafactor" else dict(lr=0.05, momentum=0.5, nesterov=False)

    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], **own}]

    opt, topt = getattr(optim, name)(groups(params)), getattr(torch.optim, name)(groups(tparams))
    for grads in make_grads(name, np.float64):
        step_both(opt, topt, params, tparams, grads)
        assert_same(opt, topt, params, tparams, np.float64, "groups")


def test_adafactor_default_eps1_comes_from_the_first_parameter_in_the_group():
    rng = np.random.default_rng(3)
    values = [rng.standard_normal(3), rng.standard_normal((2, 3)).astype(np.float32)]
    params = [Parameter(v.copy()) for v in values]
    tparams = [torch.tensor(v, requires_grad=True) for v in values]
    opt, topt = optim.Adafactor(params), torch.optim.Adafactor(tparams)
    for _ in range(3):
        grads = [1e-5 * rng.standard_normal(v.shape).astype(v.dtype) for v in values]
        step_both(opt, topt, params, tparams, grads)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.data, t.detach().numpy(), **TOL[np.float32])


@pytest.mark.parametrize("name", CONFIGS)
def test_float32_stays_float32(name):
    params, _ = make_params(name, np.float32)
    opt = getattr(optim, name)(params)
    datas = [p.data for p in params]
    for grads in make_grads(name, np.float32):
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    assert all(p.data is d and d.dtype == np.float32 for p, d in zip(params, datas))
    for state in opt.state.values():
        for key, value in state.items():
            assert value.dtype == np.float32, key


@pytest.mark.parametrize("case", [(n, c[-1]) for n, c in CONFIGS.items()], ids=case_id)
def test_state_dict_round_trip_through_a_file_continues_identically(case, tmp_path):
    name, cfg = case
    params, _ = make_params(name, np.float64)
    opt = getattr(optim, name)(params, **cfg)
    grads = make_grads(name, np.float64)
    for step_grads in grads[:2]:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
    torchlite.save({"params": [p.data for p in params], "optim": opt.state_dict()}, tmp_path / "ckpt.npz")
    ckpt = torchlite.load(tmp_path / "ckpt.npz")
    params2 = [Parameter(d.copy()) for d in ckpt["params"]]
    opt2 = getattr(optim, name)(params2)
    opt2.load_state_dict(ckpt["optim"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for step_grads in grads[2:]:
        for ps in (params, params2):
            for p, g in zip(ps, step_grads):
                p.grad = g.copy()
        opt.step()
        opt2.step()
    for p, p2 in zip(params, params2):
        np.testing.assert_array_equal(p.data, p2.data)
    for key, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            np.testing.assert_array_equal(opt2.state_dict()["state"][key][k], v)


@pytest.mark.parametrize("case", [(n, c[-1]) for n, c in CONFIGS.items()], ids=case_id)
def test_loads_torchs_state_dict_and_continues_as_torch(case):
    name, cfg = case
    _, tparams = make_params(name, np.float64)
    topt = getattr(torch.optim, name)(tparams, **cfg)
    grads = make_grads(name, np.float64)
    for step_grads in grads[:3]:
        for t, g in zip(tparams, step_grads):
            t.grad = torch.from_numpy(g.copy())
        topt.step()
    params = [Parameter(t.detach().numpy().copy()) for t in tparams]
    opt = getattr(optim, name)(params)
    converted = torch_state_numpy(topt.state_dict())
    opt.load_state_dict(converted)
    ours = opt.state_dict()
    assert ours["param_groups"] == converted["param_groups"]
    assert list(ours["state"]) == list(converted["state"])
    assert all(list(ours["state"][k]) == list(v) for k, v in converted["state"].items())
    for step_grads in grads[3:]:
        step_both(opt, topt, params, tparams, step_grads)
        assert_same(opt, topt, params, tparams, np.float64, "after loading torch's state")


def test_adafactor_load_refuses_wrongly_shaped_factors():
    params, tparams = make_params("Adafactor", np.float64)
    topt = torch.optim.Adafactor(tparams)
    for t, g in zip(tparams, make_grads("Adafactor", np.float64, steps=1)[0]):
        t.grad = torch.from_numpy(g)
    topt.step()
    opt = optim.Adafactor(params)
    bad = torch_state_numpy(topt.state_dict())
    bad["state"][1]["row_var"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"state 'row_var' of parameter 1 has shape \(3, 4\), but the parameter "
                                         r"has shape \(3, 4\), so it should be \(3, 1\)"):
        opt.load_state_dict(bad)
    bad = torch_state_numpy(topt.state_dict())
    bad["state"][0]["col_var"] = np.zeros((1, 5))
    with pytest.raises(ValueError, match=r"state 'col_var' of parameter 0: a parameter of shape \(5,\) keeps"):
        opt.load_state_dict(bad)
    assert len(opt.state) == 0  # nothing loaded


def test_repr_is_torchs():
    for name in CONFIGS:
        params, tparams = make_params(name, np.float64)
        assert repr(getattr(optim, name)(params)) == repr(getattr(torch.optim, name)(tparams))


INVALID = [
    ("Adafactor", dict(lr=-0.1)), ("Adafactor", dict(beta2_decay=0.5)), ("Adafactor", dict(eps=(-1e-3, 1e-3))),
    ("Adafactor", dict(eps=(None, -1e-3))), ("Adafactor", dict(d=0.5)), ("Adafactor", dict(weight_decay=-0.1)),
    ("Muon", dict(lr=-1e-3)), ("Muon", dict(momentum=-0.5)), ("Muon", dict(weight_decay=-0.1)),
    ("Muon", dict(adjust_lr_fn="unknown")),
]


@pytest.mark.parametrize("case", INVALID, ids=case_id)
def test_invalid_arguments_raise_torchs_errors(case):
    name, cfg = case
    params, tparams = make_params(name, np.float64)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)(tparams, **cfg)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)(params, **cfg)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
def test_muon_refuses_parameters_that_are_not_2d(shape):
    with pytest.raises(ValueError, match="Muon only supports 2D parameters whereas we found a parameter with size"):
        torch.optim.Muon([torch.zeros(4, 4, requires_grad=True), torch.zeros(shape, requires_grad=True)])
    with pytest.raises(ValueError, match=r"Muon only supports 2D parameters whereas we found a parameter with "
                                         rf"size: {re.escape(str(shape))}$"):
        optim.Muon([Parameter(np.zeros((4, 4))), Parameter(np.zeros(shape))])


STEP_ERRORS = [(dict(ns_steps=100), "Number of steps must be less than 100 for computational efficiency"),
               (dict(ns_coefficients=(3.0, -4.0)), "Coefficients must be a tuple of exactly 3 values")]


@pytest.mark.parametrize("cfg, message", STEP_ERRORS)
def test_muon_step_errors_are_torchs(cfg, message):
    params, tparams = make_params("Muon", np.float64)
    opt, topt = optim.Muon(params, **cfg), torch.optim.Muon(tparams, **cfg)
    for lib_opt, ps in ((topt, tparams), (opt, params)):
        for p, g in zip(ps, make_grads("Muon", np.float64, steps=1)[0]):
            p.grad = torch.from_numpy(g) if isinstance(p, torch.Tensor) else g
        with pytest.raises(ValueError, match=f"^{message}$"):
            lib_opt.step()
    assert all(np.array_equal(p.data, s.data) for p, s in zip(params, make_params("Muon", np.float64)[0]))


def test_muon_param_group_added_later_with_a_vector_fails_at_step_as_torch():
    opt = optim.Muon([Parameter(np.ones((2, 2)))])
    topt = torch.optim.Muon([torch.ones(2, 2, requires_grad=True)])
    vector, tvector = Parameter(np.ones(3)), torch.ones(3, requires_grad=True)
    opt.add_param_group({"params": [vector]})
    topt.add_param_group({"params": [tvector]})
    vector.grad, tvector.grad = np.ones(3), torch.ones(3)
    for o in (topt, opt):
        with pytest.raises(ValueError, match="^Param gradient must be a 2D matrix$"):
            o.step()


@pytest.mark.parametrize("name", CONFIGS)
def test_complex_parameters_are_refused_as_torch(name):
    shape = (2, 2)
    p, t = Parameter(np.ones(shape, dtype=np.complex128)), torch.ones(shape, dtype=torch.complex128, requires_grad=True)
    p.grad, t.grad = np.ones(shape, dtype=np.complex128), torch.ones(shape, dtype=torch.complex128)
    message = f"{name} does not support complex parameters"
    for o in (getattr(torch.optim, name)([t]), getattr(optim, name)([p])):
        with pytest.raises(RuntimeError, match=f"^{message}$"):
            o.step()


@pytest.mark.parametrize("name", CONFIGS)
def test_constructor_signature_is_torchs(name):
    ours = inspect.signature(getattr(optim, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    assert list(ours) == list(theirs)
    for key, param in ours.items():
        assert param.kind == theirs[key].kind, key
        assert (type(param.default), param.default) == (type(theirs[key].default), theirs[key].default), key


@pytest.mark.parametrize("name", CONFIGS)
def test_exported(name):
    assert name in optim.__all__ and getattr(optim, name).__module__ == f"torchlite.optim.{name.lower()}"

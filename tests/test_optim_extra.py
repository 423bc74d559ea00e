"""Adadelta, Rprop, ASGD and LBFGS against torch.optim: a Linear layer and a small MLP trained side by
side end with the same parameters and optimizer state; state_dict round trips; torch's errors."""
import copy

import numpy as np
import pytest
import torch

import torchlite
from parity import copy_state
from torchlite import nn, optim

STEPS = 12
LBFGS_STEPS = 3

CONFIGS = {
    "Adadelta": [dict(), dict(lr=0.5, rho=0.5, eps=1e-3), dict(weight_decay=0.1), dict(maximize=True),
                 dict(lr=0.3, rho=0.95, weight_decay=0.2, maximize=True)],
    "Rprop": [dict(), dict(lr=0.05, etas=(0.3, 1.5)), dict(lr=0.02, step_sizes=(1e-3, 0.03)),
              dict(maximize=True), dict(lr=0.03, etas=(0.6, 1.1), step_sizes=(5e-3, 0.1), maximize=True)],
    "ASGD": [dict(), dict(lr=0.05, t0=3), dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=2, weight_decay=0.1),
             dict(lr=0.02, maximize=True), dict(lr=0.05, lambd=0.05, t0=4, weight_decay=0.2, maximize=True)],
}
CASES = [(name, cfg) for name, cfgs in CONFIGS.items() for cfg in cfgs]
LBFGS_CONFIGS = [
    dict(), dict(lr=0.5, history_size=2), dict(max_iter=5, history_size=3), dict(max_iter=4, max_eval=6),
    dict(tolerance_grad=1e-3, tolerance_change=1e-6), dict(line_search_fn="strong_wolfe"),
    dict(line_search_fn="strong_wolfe", history_size=2, max_iter=6),
    dict(line_search_fn="strong_wolfe", lr=0.3, max_iter=3, max_eval=5),
    # a long first step: the zoom phase shrinks the bracket; a short one: the bracketing phase
    # extrapolates, and with max_eval=4 the line search runs out of evaluations
    dict(line_search_fn="strong_wolfe", lr=10.0, max_iter=5),
    dict(line_search_fn="strong_wolfe", lr=0.01, max_iter=5),
    dict(line_search_fn="strong_wolfe", lr=0.01, max_iter=5, max_eval=4),
]
# minibatch L-BFGS: every step sees a new batch; few iterations per step keep the curvature pairs
# well above rounding noise (long runs to convergence then a new batch are chaotic, in torch too)
LBFGS_MINIBATCH = [cfg for cfg in LBFGS_CONFIGS if cfg.get("max_iter", 20) <= 6]
MODELS = ["linear", "mlp"]


def case_id(case):
    name, cfg = case
    return name + "-" + (",".join(f"{k}={v}" for k, v in cfg.items()) or "default")


def lbfgs_id(cfg):
    return ",".join(f"{k}={v}" for k, v in cfg.items()) or "default"


def make_models(kind, dtype=np.float64, seed=0):
    torch.manual_seed(seed)
    if kind == "linear":
        ours, theirs = nn.Linear(5, 3), torch.nn.Linear(5, 3)
    else:
        ours = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        theirs = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    if dtype == np.float64:
        ours, theirs = ours.double(), theirs.double()
    copy_state(ours, theirs)
    return ours, theirs


def batches(dtype, n, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((8, 5)).astype(dtype), rng.standard_normal((8, 3)).astype(dtype)) for _ in range(n)]


def closure_for(opt, model, x, y):
    crit = nn.MSELoss()

    def closure():
        opt.zero_grad()
        loss = crit(model(x), y)
        model.backward(crit.backward())
        return loss
    return closure


def torch_closure_for(opt, model, x, y):
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        return loss
    return closure


def train(opt, model, data):
    for x, y in data:
        opt.step(closure_for(opt, model, x, y))


def train_torch(opt, model, data):
    for x, y in data:
        opt.step(torch_closure_for(opt, model, x, y))


def to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, list):
        return [to_numpy(v) for v in value]
    return value


def torch_state_numpy(sd):
    """A torch optimizer state_dict with tensors (also inside lists) converted by ``.numpy()``."""
    state = {k: {kk: to_numpy(vv) for kk, vv in v.items()} for k, v in sd["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}


def assert_same_value(ours, theirs, what, tol):
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), what
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_value(a, b, f"{what}[{i}]", tol)
    elif theirs is None:
        assert ours is None, what
    else:
        assert np.shape(ours) == np.shape(theirs), what
        np.testing.assert_allclose(ours, theirs, err_msg=what, **tol)


def assert_state_equal(opt, topt, tol):
    ours, theirs = opt.state_dict(), torch_state_numpy(topt.state_dict())
    assert ours["param_groups"] == theirs["param_groups"]
    assert list(ours["state"]) == list(theirs["state"])
    for index, t_state in theirs["state"].items():
        assert list(ours["state"][index]) == list(t_state)
        for key, value in t_state.items():
            assert_same_value(ours["state"][index][key], value, f"state {index} {key!r}", tol)


def assert_params_equal(model, tmodel, tol):
    theirs = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        assert p.data.dtype == theirs[name].detach().numpy().dtype, name
        np.testing.assert_allclose(p.data, theirs[name].detach().numpy(), err_msg=name, **tol)


TOL64 = dict(rtol=1e-7, atol=1e-10)
TOL32 = dict(rtol=1e-4, atol=1e-5)
STATE_TOL = dict(rtol=1e-7, atol=1e-12)
# L-BFGS state after dozens of iterations: curvature pairs are differences of nearby gradients and
# H_diag a ratio of their dot products, so rounding differences (BLAS dot order, fused multiply-adds)
# show at a relative 1e-7 there even while the parameters agree to 1e-14
LBFGS_STATE_TOL = dict(rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch(case, kind):
    name, cfg = case
    model, tmodel = make_models(kind)
    opt = getattr(optim, name)(model.parameters(), foreach=False, **cfg)
    topt = getattr(torch.optim, name)(tmodel.parameters(), foreach=False, **cfg)
    data = batches(np.float64, STEPS)
    train(opt, model, data)
    train_torch(topt, tmodel, data)
    assert_params_equal(model, tmodel, TOL64)
    assert_state_equal(opt, topt, STATE_TOL)


@pytest.mark.parametrize("case", [(n, c[-1]) for n, c in CONFIGS.items()], ids=case_id)
def test_float32_matches_torch_and_stays_float32(case):
    name, cfg = case
    model, tmodel = make_models("mlp", np.float32)
    opt = getattr(optim, name)(model.parameters(), **cfg)
    topt = getattr(torch.optim, name)(tmodel.parameters(), **cfg)
    data = batches(np.float32, STEPS)
    datas = [p.data for p in model.parameters()]
    train(opt, model, data)
    train_torch(topt, tmodel, data)
    assert_params_equal(model, tmodel, TOL32)
    assert all(p.data is d for p, d in zip(model.parameters(), datas))
    for state in opt.state.values():
        for key, value in state.items():
            assert value.dtype == np.float32, key  # torch's 0-d scalars are float32 too
    assert_state_equal(opt, topt, TOL32)


def test_asgd_averages_after_t0():
    model, _ = make_models("linear")
    opt = optim.ASGD(model.parameters(), lr=0.1, t0=5)
    data = batches(np.float64, STEPS)
    train(opt, model, data)
    state = opt.state[model.weight]
    assert state["mu"] == np.float32(1.0 / (STEPS - 5))
    assert not np.allclose(state["ax"], model.weight.data)  # the average lags the iterate
    assert state["eta"] < 0.1


def check_lbfgs(cfg, kind, data):
    model, tmodel = make_models(kind)
    opt = optim.LBFGS(model.parameters(), **cfg)
    topt = torch.optim.LBFGS(tmodel.parameters(), **cfg)
    for x, y in data:
        loss = opt.step(closure_for(opt, model, x, y))
        tloss = topt.step(torch_closure_for(topt, tmodel, x, y))
        np.testing.assert_allclose(loss, tloss.item(), **TOL64)
        assert_params_equal(model, tmodel, TOL64)
    assert_state_equal(opt, topt, LBFGS_STATE_TOL)
    assert opt.state[model.weight if kind == "linear" else model[0].weight]["n_iter"] >= len(data)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("cfg", LBFGS_CONFIGS, ids=lbfgs_id)
def test_lbfgs_full_batch_matches_torch(cfg, kind):
    (x, y), = batches(np.float64, 1)
    check_lbfgs(cfg, kind, [(x, y)] * LBFGS_STEPS)


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("cfg", LBFGS_MINIBATCH, ids=lbfgs_id)
def test_lbfgs_minibatches_match_torch(cfg, kind):
    check_lbfgs(cfg, kind, batches(np.float64, 6))


def test_lbfgs_float32_matches_torch_and_stays_float32():
    model, tmodel = make_models("mlp", np.float32)
    opt = optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe", max_iter=5)
    topt = torch.optim.LBFGS(tmodel.parameters(), line_search_fn="strong_wolfe", max_iter=5)
    datas = [p.data for p in model.parameters()]
    (x, y), = batches(np.float32, 1)
    for _ in range(2):
        opt.step(closure_for(opt, model, x, y))
        topt.step(torch_closure_for(topt, tmodel, x, y))
    assert_params_equal(model, tmodel, TOL32)
    assert all(p.data is d and p.data.dtype == np.float32 for p, d in zip(model.parameters(), datas))
    state = opt.state[model[0].weight]
    for key in ("d", "prev_flat_grad", "H_diag"):
        assert state[key].dtype == np.float32, key
    assert all(v.dtype == np.float32 for v in state["old_dirs"] + state["ro"])


def test_lbfgs_converges_on_least_squares():
    model, _ = make_models("linear")
    (x, y), = batches(np.float64, 1)
    opt = optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe", max_iter=50, tolerance_grad=1e-12,
                      tolerance_change=1e-15)
    closure = closure_for(opt, model, x, y)
    opt.step(closure)
    xb = np.hstack([x, np.ones((len(x), 1))])
    solution = np.linalg.lstsq(xb, y, rcond=None)[0]
    np.testing.assert_allclose(model.weight.data, solution[:5].T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.bias.data, solution[5], rtol=1e-5, atol=1e-6)


def test_lbfgs_accepts_a_float_loss_and_stops_at_a_flat_gradient():
    p = torchlite.nn.Parameter(np.array([3.0, -2.0]))
    opt = optim.LBFGS([p], tolerance_grad=1e-5)
    calls = []

    def closure():
        opt.zero_grad()
        calls.append(torchlite.is_grad_enabled())
        p.grad = 2 * p.data
        return float(p.data @ p.data)

    with torchlite.no_grad():
        assert opt.step(closure) == 13.0
    assert all(calls) and len(calls) > 1
    np.testing.assert_allclose(p.data, 0.0, atol=1e-5)
    evals = opt.state[p]["func_evals"]
    assert opt.step(closure) < 1e-9
    assert opt.state[p]["func_evals"] == evals + 1  # a single evaluation at the optimum, no iteration


def test_lbfgs_needs_a_closure_and_a_single_group():
    p = torchlite.nn.Parameter(np.ones(3))
    opt = optim.LBFGS([p])
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'closure'"):
        opt.step()  # closure is required, as in torch's signature
    with pytest.raises(TypeError, match="LBFGS.step needs a closure"):
        opt.step(None)
    with pytest.raises(TypeError, match="got float"):
        opt.step(1.0)
    groups = [{"params": [torchlite.nn.Parameter(np.ones(2))]}, {"params": [p]}]
    with pytest.raises(ValueError) as ours:
        optim.LBFGS(groups)
    with pytest.raises(ValueError) as theirs:
        torch.optim.LBFGS([{"params": [torch.nn.Parameter(torch.ones(2))]},
                           {"params": [torch.nn.Parameter(torch.ones(3))]}])
    assert str(ours.value) == str(theirs.value)


def test_lbfgs_unknown_line_search_raises_torchs_error():
    model, tmodel = make_models("linear")
    (x, y), = batches(np.float64, 1)
    opt = optim.LBFGS(model.parameters(), line_search_fn="armijo")
    topt = torch.optim.LBFGS(tmodel.parameters(), line_search_fn="armijo")
    with pytest.raises(RuntimeError) as theirs:
        topt.step(torch_closure_for(topt, tmodel, x, y))
    with pytest.raises(RuntimeError) as ours:
        opt.step(closure_for(opt, model, x, y))
    assert str(ours.value) == str(theirs.value)


RESUME = [(n, c[-1]) for n, c in CONFIGS.items()] + [
    ("LBFGS", dict(history_size=3, max_iter=4)),
    ("LBFGS", dict(line_search_fn="strong_wolfe", history_size=2, max_iter=6))]


@pytest.mark.parametrize("case", RESUME, ids=case_id)
def test_resume_from_saved_state_dict(case, tmp_path):
    name, cfg = case
    cls = getattr(optim, name)
    n = 4 if name == "LBFGS" else STEPS
    data = batches(np.float64, n)

    straight, _ = make_models("mlp")
    train(cls(straight.parameters(), **cfg), straight, data)

    first, _ = make_models("mlp")
    opt = cls(first.parameters(), **cfg)
    train(opt, first, data[:n // 2])
    saved = copy.deepcopy(opt.state_dict())
    torchlite.save({"optimizer": opt.state_dict(), "model": first.state_dict()}, tmp_path / "ckpt.npz")
    del opt

    ckpt = torchlite.load(tmp_path / "ckpt.npz")
    resumed, _ = make_models("mlp", seed=1)
    resumed.load_state_dict(ckpt["model"])
    opt = cls(resumed.parameters(), **cfg)
    assert ckpt["optimizer"]["param_groups"] == saved["param_groups"]
    opt.load_state_dict(ckpt["optimizer"])
    train(opt, resumed, data[n // 2:])
    for (key, a), b in zip(resumed.named_parameters(), straight.parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=key)


@pytest.mark.parametrize("case", RESUME, ids=case_id)
def test_loads_torchs_state_dict_and_continues(case):
    name, cfg = case
    n = 4 if name == "LBFGS" else STEPS
    data = batches(np.float64, n)
    model, tmodel = make_models("mlp")
    opt = getattr(optim, name)(model.parameters(), **cfg)
    topt = getattr(torch.optim, name)(tmodel.parameters(), **cfg)
    train(opt, model, data[:n // 2])
    train_torch(topt, tmodel, data[:n // 2])
    state_tol = LBFGS_STATE_TOL if name == "LBFGS" else STATE_TOL
    assert_state_equal(opt, topt, state_tol)

    fresh, _ = make_models("mlp", seed=1)
    copy_state(fresh, tmodel)
    opt2 = getattr(optim, name)(fresh.parameters(), **cfg)
    opt2.load_state_dict(torch_state_numpy(topt.state_dict()))
    train(opt2, fresh, data[n // 2:])
    train_torch(topt, tmodel, data[n // 2:])
    assert_params_equal(fresh, tmodel, TOL64)
    assert_state_equal(opt2, topt, state_tol)


def test_lbfgs_load_checks_flat_state_length():
    model, _ = make_models("linear")
    opt = optim.LBFGS(model.parameters(), max_iter=3)
    (x, y), = batches(np.float64, 1)
    opt.step(closure_for(opt, model, x, y))
    sd = opt.state_dict()
    sd["state"][0]["d"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"state 'd' has shape \(4,\), but the parameters have 18 elements"):
        opt.load_state_dict(sd)


@pytest.mark.parametrize("name", ["Adadelta", "Rprop", "ASGD"])
def test_skips_params_without_grad_or_frozen(name):
    a, b, c = (torchlite.nn.Parameter(np.ones(3)) for _ in range(3))
    c.requires_grad = False
    opt = getattr(optim, name)([a, b, c])
    a.grad = np.full(3, 0.5)
    c.grad = np.full(3, 0.5)
    opt.step()
    assert not np.allclose(a.data, 1.0)
    np.testing.assert_array_equal(b.data, 1.0)
    np.testing.assert_array_equal(c.data, 1.0)
    assert b not in opt.state and c not in opt.state


@pytest.mark.parametrize("name", ["Adadelta", "Rprop", "ASGD"])
def test_param_groups_with_their_own_options(name):
    model, tmodel = make_models("mlp")
    cfg = CONFIGS[name][1]
    own = {"Adadelta": dict(rho=0.7, lr=0.2), "Rprop": dict(etas=(0.4, 1.3), lr=0.01),
           "ASGD": dict(lr=0.01, t0=1)}[name]
    opt = getattr(optim, name)([{"params": model[0].parameters()}, dict(params=model[2].parameters(), **own)], **cfg)
    topt = getattr(torch.optim, name)([{"params": tmodel[0].parameters()},
                                       dict(params=tmodel[2].parameters(), **own)], **cfg)
    data = batches(np.float64, STEPS)
    train(opt, model, data)
    train_torch(topt, tmodel, data)
    assert_params_equal(model, tmodel, TOL64)


BAD_ARGS = [
    ("Adadelta", dict(lr=-1)), ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(rho=-0.1)),
    ("Adadelta", dict(eps=-1e-6)), ("Adadelta", dict(weight_decay=-1)),
    ("Rprop", dict(lr=-0.1)), ("Rprop", dict(etas=(1.2, 0.5))), ("Rprop", dict(etas=(0.0, 1.2))),
    ("Rprop", dict(etas=(0.5, 1.0))), ("ASGD", dict(lr=-1)), ("ASGD", dict(weight_decay=-0.1)),
    ("LBFGS", dict(lr=-1)),
]


@pytest.mark.parametrize("name,kwargs", BAD_ARGS, ids=lambda v: str(v))
def test_bad_hyperparameters_raise_torchs_message(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)([torchlite.nn.Parameter(np.ones(2))], **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", ["Adadelta", "Rprop", "ASGD", "LBFGS"])
def test_defaults_and_repr_match_torch(name):
    ours = getattr(optim, name)([torchlite.nn.Parameter(np.ones(2))])
    theirs = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))])
    assert ours.defaults == theirs.defaults
    assert repr(ours) == repr(theirs)


def test_lbfgs_max_eval_defaults_to_five_quarters_of_max_iter():
    ours = optim.LBFGS([torchlite.nn.Parameter(np.ones(2))], max_iter=9)
    theirs = torch.optim.LBFGS([torch.nn.Parameter(torch.ones(2))], max_iter=9)
    assert ours.defaults["max_eval"] == theirs.defaults["max_eval"] == 11


def rosenbrock_wiggly(z):
    """A non-convex test function (a mild Rosenbrock plus strong ripples): value and gradient."""
    a, b = z[:-1], z[1:]
    f = np.sum((1 - a) ** 2 + 10 * (b - a ** 2) ** 2) + np.sum(np.sin(7 * z))
    g = 7 * np.cos(7 * z)
    g[:-1] += -2 * (1 - a) - 40 * a * (b - a ** 2)
    g[1:] += 20 * (b - a ** 2)
    return float(f), g


# (max_ls, c2, tolerance_change): small c2 and max_ls reach the zoom's boundary moves, the end of
# the evaluations while bracketing, and the bracket-too-small exit
LINE_SEARCHES = [(25, 0.9, 1e-9), (3, 0.9, 1e-9), (25, 0.1, 1e-9), (25, 0.01, 1e-9), (4, 0.1, 1e-9),
                 (25, 0.01, 1e-3), (25, 0.01, 0.5), (2, 0.1, 1e-9), (1, 0.01, 1e-9)]


@pytest.mark.parametrize("max_ls,c2,tolerance_change", LINE_SEARCHES)
def test_strong_wolfe_line_search_matches_torch(max_ls, c2, tolerance_change):
    from torch.optim.lbfgs import _strong_wolfe as torch_strong_wolfe

    from torchlite.optim.lbfgs import _strong_wolfe

    def ours(x, step, d):
        return rosenbrock_wiggly(x + step * d)

    def theirs(x, step, d):
        value, grad = rosenbrock_wiggly(x.numpy() + float(step) * d.numpy())
        return value, torch.from_numpy(grad)

    rng = np.random.default_rng(max_ls)
    for t in [1e-3, 0.05, 0.3, 1.0, 4.0, 30.0, 500.0]:
        for _ in range(4):
            z = rng.uniform(-1.5, 1.5, 6)
            f, g = rosenbrock_wiggly(z)
            d = -g * rng.uniform(0.2, 1.0, 6)  # a descent direction, not the steepest one
            kwargs = dict(c2=c2, tolerance_change=tolerance_change, max_ls=max_ls)
            got = _strong_wolfe(ours, z, t, d, f, g, g.dot(d), **kwargs)
            tg, td = torch.from_numpy(g), torch.from_numpy(d)
            want = torch_strong_wolfe(theirs, torch.from_numpy(z), t, td, f, tg, tg.dot(td), **kwargs)
            assert got[3] == want[3]  # evaluations
            np.testing.assert_allclose(float(got[2]), float(want[2]), rtol=1e-12)  # step
            np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
            np.testing.assert_allclose(got[1], want[1].numpy(), rtol=1e-12, atol=1e-14)


def test_cubic_interpolate_matches_torch():
    from torch.optim.lbfgs import _cubic_interpolate as torch_cubic

    from torchlite.optim.lbfgs import _cubic_interpolate
    rng = np.random.default_rng(0)
    for _ in range(200):
        x1, f1, g1, x2, f2, g2 = rng.standard_normal(6)
        bounds = tuple(sorted(rng.uniform(-2, 2, 2))) if rng.random() < 0.5 else None
        got = _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds)
        want = torch_cubic(x1, f1, torch.tensor(g1), x2, f2, torch.tensor(g2), bounds)
        np.testing.assert_allclose(float(got), float(want), rtol=1e-13)

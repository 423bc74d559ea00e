"""Learning-rate schedulers against torch.optim.lr_scheduler: same sequences, resumable half-way."""
import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as TL

import torchlite
from torchlite import optim
from torchlite.nn import Parameter
from torchlite.optim import lr_scheduler as L

STEPS = 40
LRS = (0.1, 0.03)


def scale_fn(x):
    return 1.0 / (1.0 + 0.05 * x)


SCHEDULERS = {
    "LambdaLR": lambda S, o: S.LambdaLR(o, lambda e: 0.95 ** e),
    "LambdaLR-per-group": lambda S, o: S.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1.0 / (1 + e)]),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.97),
    "StepLR": lambda S, o: S.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[5, 12, 12, 25], gamma=0.3),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=8),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=15),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.93),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=20, power=2.0),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
    "CosineAnnealingLR-default": lambda S, o: S.CosineAnnealingLR(o, T_max=7),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4),
    "CosineAnnealingWarmRestarts-mult1": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=6),
    "OneCycleLR-cos": lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=STEPS + 1),
    "OneCycleLR-linear": lambda S, o: S.OneCycleLR(o, max_lr=0.4, epochs=7, steps_per_epoch=6,
                                                   anneal_strategy="linear", pct_start=0.25, div_factor=10.0),
    "OneCycleLR-three-phase": lambda S, o: S.OneCycleLR(o, max_lr=0.3, total_steps=STEPS, three_phase=True,
                                                        base_momentum=0.8, max_momentum=0.9),
    "OneCycleLR-no-momentum": lambda S, o: S.OneCycleLR(o, max_lr=0.3, total_steps=STEPS, cycle_momentum=False,
                                                        final_div_factor=100.0),
    "CyclicLR-triangular": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.05], step_size_up=4,
                                                   step_size_down=6),
    "CyclicLR-triangular2": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                    mode="triangular2"),
    "CyclicLR-exp_range": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, mode="exp_range",
                                                  gamma=0.9, base_momentum=0.7, max_momentum=0.95),
    "CyclicLR-scale_fn": lambda S, o: S.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.2, step_size_up=4,
                                                 scale_fn=scale_fn, scale_mode="iterations",
                                                 cycle_momentum=False),
    "SequentialLR": lambda S, o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                    S.ExponentialLR(o, gamma=0.9)], milestones=[5]),
    "SequentialLR-three": lambda S, o: S.SequentialLR(o, [S.ConstantLR(o, factor=0.5, total_iters=3),
                                                          S.StepLR(o, step_size=4, gamma=0.5),
                                                          S.CosineAnnealingLR(o, T_max=12)], milestones=[6, 20]),
    "ChainedScheduler": lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.5, total_iters=4),
                                                         S.ExponentialLR(o, gamma=0.9)]),
    "ChainedScheduler-warmup-cosine": lambda S, o: S.ChainedScheduler([S.LinearLR(o, start_factor=0.3, total_iters=6),
                                                                       S.CosineAnnealingLR(o, T_max=15)], optimizer=o),
}


def make_optimizers(kind):
    """Two param groups (different lrs) in torchlite and torch: SGD with momentum, or Adam (betas)."""
    ours = [Parameter(np.ones(2)), Parameter(np.ones(3))]
    theirs = [torch.nn.Parameter(torch.ones(n, dtype=torch.float64)) for n in (2, 3)]
    groups = lambda ps: [{"params": ps[:1], "lr": LRS[0]}, {"params": ps[1:], "lr": LRS[1]}]  # noqa: E731
    if kind == "sgd":
        return optim.SGD(groups(ours), momentum=0.9), torch.optim.SGD(groups(theirs), momentum=0.9)
    return optim.Adam(groups(ours)), torch.optim.Adam(groups(theirs))


def trace(opt, sched):
    return (list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups],
            [g.get("momentum", g.get("betas")) for g in opt.param_groups])


def assert_trace_equal(ours, theirs, where):
    for a, b, what in zip(ours, theirs, ("get_last_lr", "group lr", "momentum/betas")):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=0,
                                   err_msg=f"{what} at {where}")


def step_both(opt, sched, topt, tsched):
    opt.step()
    topt.step()
    sched.step()
    tsched.step()


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_sequence_matches_torch_and_resumes(name, kind, tmp_path):
    build = SCHEDULERS[name]
    opt, topt = make_optimizers(kind)
    sched, tsched = build(L, opt), build(TL, topt)
    assert_trace_equal(trace(opt, sched), trace(topt, tsched), "construction")
    assert sorted(sched.state_dict()) == sorted(tsched.state_dict())
    lrs = [sched.get_last_lr()[0]]
    for i in range(STEPS // 2):
        step_both(opt, sched, topt, tsched)
        assert_trace_equal(trace(opt, sched), trace(topt, tsched), f"step {i + 1}")
        lrs.append(sched.get_last_lr()[0])

    torchlite.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "ckpt.npz")
    ckpt = torchlite.load(tmp_path / "ckpt.npz")
    opt, _ = make_optimizers(kind)
    sched = build(L, opt)
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    for i in range(STEPS // 2, STEPS):
        step_both(opt, sched, topt, tsched)
        assert_trace_equal(trace(opt, sched), trace(topt, tsched), f"step {i + 1} (resumed)")
        lrs.append(sched.get_last_lr()[0])
    assert len(set(lrs)) > 1, "the schedule never changed the learning rate"


PLATEAU = {
    "min-rel": dict(),
    "min-abs-cooldown": dict(threshold_mode="abs", threshold=0.05, patience=2, cooldown=3, factor=0.5),
    "max-rel": dict(mode="max", patience=1, factor=0.7, min_lr=[0.01, 0.005]),
    "max-abs-eps": dict(mode="max", threshold_mode="abs", threshold=0.0, patience=0, factor=0.5, eps=1e-3),
}


@pytest.mark.parametrize("name", list(PLATEAU))
def test_reduce_lr_on_plateau_matches_torch_and_resumes(name, tmp_path):
    cfg = PLATEAU[name]
    metrics = [1.0 / (1 + i) if i < 8 else 0.1 + 0.01 * math.sin(i) for i in range(STEPS)]
    if cfg.get("mode") == "max":
        metrics = [-m for m in metrics]
    opt, topt = make_optimizers("sgd")
    sched, tsched = L.ReduceLROnPlateau(opt, **cfg), TL.ReduceLROnPlateau(topt, **cfg)
    assert sorted(sched.state_dict()) == sorted(tsched.state_dict())
    seen = set()
    for i, m in enumerate(metrics):
        if i == STEPS // 2:
            torchlite.save(sched.state_dict(), tmp_path / "plateau.npz")
            opt2, _ = make_optimizers("sgd")
            for g, g2 in zip(opt.param_groups, opt2.param_groups):
                g2["lr"] = g["lr"]
            sched = L.ReduceLROnPlateau(opt2)
            sched.load_state_dict(torchlite.load(tmp_path / "plateau.npz"))
            opt = opt2
        sched.step(m)
        tsched.step(m)
        assert sched.get_last_lr() == tsched.get_last_lr(), f"step {i}"
        assert (sched.num_bad_epochs, sched.cooldown_counter, sched.best) == \
            (tsched.num_bad_epochs, tsched.cooldown_counter, tsched.best)
        seen.add(sched.get_last_lr()[0])
    assert len(seen) > 1


def test_resume_with_last_epoch():
    opt, topt = make_optimizers("sgd")
    for o in (opt, topt):
        for g in o.param_groups:
            g["initial_lr"] = g["lr"]
    sched, tsched = L.StepLR(opt, 3, gamma=0.5, last_epoch=5), TL.StepLR(topt, 3, gamma=0.5, last_epoch=5)
    assert sched.last_epoch == tsched.last_epoch == 6
    assert sched.get_last_lr() == tsched.get_last_lr()
    fresh, _ = make_optimizers("sgd")
    with pytest.raises(KeyError, match="initial_lr"):
        L.StepLR(fresh, 3, last_epoch=5)


def test_initial_lr_recorded_and_kept():
    opt, _ = make_optimizers("sgd")
    L.StepLR(opt, 2)
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)
    opt.param_groups[0]["lr"] = 1.0
    sched = L.ExponentialLR(opt, 0.5)
    assert sched.base_lrs == list(LRS)


def test_epoch_argument_uses_closed_form():
    opt, topt = make_optimizers("sgd")
    sched, tsched = L.MultiStepLR(opt, [3, 6], gamma=0.1), TL.MultiStepLR(topt, [3, 6], gamma=0.1)
    opt.step()
    topt.step()
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(7)
    with pytest.warns(UserWarning):
        tsched.step(7)
    assert sched.get_last_lr() == tsched.get_last_lr()


def test_warnings_as_torch():
    opt, _ = make_optimizers("sgd")
    sched = L.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()


def test_lambdas_are_not_saved_but_callable_objects_are():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate ** epoch

    opt, _ = make_optimizers("sgd")
    sched = L.LambdaLR(opt, [lambda e: 1.0, Decay(0.5)])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [None, {"rate": 0.5}]
    other = L.LambdaLR(make_optimizers("sgd")[0], [lambda e: 1.0, Decay(0.9)])
    other.load_state_dict(state)
    assert other.lr_lambdas[1].rate == 0.5


def test_one_cycle_refuses_extra_steps():
    opt, _ = make_optimizers("sgd")
    sched = L.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    opt.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total steps is 3"):
        sched.step()


@pytest.mark.parametrize("build,value", [
    (lambda o: L.ConstantLR(o, factor=1.5), "1.5"),
    (lambda o: L.LinearLR(o, start_factor=0.0), "0.0"),
    (lambda o: L.LinearLR(o, end_factor=2.0), "2.0"),
    (lambda o: L.ReduceLROnPlateau(o, factor=1.0), "1.0"),
    (lambda o: L.ReduceLROnPlateau(o, mode="median"), "median"),
    (lambda o: L.ReduceLROnPlateau(o, threshold_mode="pct"), "pct"),
    (lambda o: L.ReduceLROnPlateau(o, min_lr=[0.1]), "got 1"),
    (lambda o: L.CosineAnnealingWarmRestarts(o, T_0=0), "0"),
    (lambda o: L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), "0"),
    (lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=-2), "-2"),
    (lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5), "1.5"),
    (lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"), "exp"),
    (lambda o: L.OneCycleLR(o, max_lr=[0.1], total_steps=10), "1 values"),
    (lambda o: L.CyclicLR(o, 0.01, 0.1, mode="sawtooth"), "sawtooth"),
    (lambda o: L.LambdaLR(o, [lambda e: 1.0]), "got 1"),
])
def test_bad_arguments_name_the_value(build, value):
    opt, _ = make_optimizers("sgd")
    with pytest.raises(ValueError, match=value):
        build(opt)


def test_children_must_share_the_optimizer():
    opt, _ = make_optimizers("sgd")
    other, _ = make_optimizers("sgd")
    with pytest.raises(ValueError, match="same optimizer"):
        L.SequentialLR(opt, [L.StepLR(opt, 2), L.StepLR(other, 2)], milestones=[3])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        L.ChainedScheduler([L.StepLR(opt, 2), L.ReduceLROnPlateau(opt)])
    with pytest.raises(TypeError, match="is not an Optimizer"):
        L.StepLR(object(), 2)
    with pytest.raises(ValueError, match="momentum or beta1"):
        L.OneCycleLR(optim.Adagrad([Parameter(np.ones(1))]), max_lr=0.1, total_steps=5)


def test_custom_scheduler_on_the_old_base_class_name():
    """Schedulers written against torch's older ``_LRScheduler`` run the same sequence here."""
    def make(S, optimizer):
        class Halving(S._LRScheduler):
            def get_lr(self):
                return [base * 0.5 ** (self.last_epoch // 3) for base in self.base_lrs]

        return Halving(optimizer)

    tparam = torch.nn.Parameter(torch.zeros(2))
    topt = torch.optim.SGD([tparam], lr=0.2)
    opt = optim.SGD([Parameter(np.zeros(2))], lr=0.2)
    ours, theirs = make(L, opt), make(TL, topt)
    assert isinstance(ours, L.LRScheduler)
    for _ in range(10):
        opt.step()
        topt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-15)

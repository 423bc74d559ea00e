"""optim.swa_utils against torch.optim.swa_utils: AveragedModel (SWA/EMA, buffers), SWALR and update_bn."""
import copy
import warnings

import numpy as np
import pytest
import torch
import torch.optim.swa_utils as TS

import torchlite
from torchlite import nn, optim
from torchlite.nn import Parameter
from torchlite.optim import swa_utils as S

from parity import copy_state, to_numpy, tol

TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def make_models(dtype):
    """The same small BatchNorm network in torchlite and torch (torch's weights copied into ours).

    The default dtype stays float32 in both: it sets the dtype of torch's count divisions.
    """
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
                                 torch.nn.Linear(4, 2)).to(TORCH_DTYPE[dtype])
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).to(dtype)
    copy_state(ours, theirs)
    return ours, theirs


def train_step(model, tmodel, opt, topt, x, g):
    """One SGD step of both models on ``sum(model(x) * g)``."""
    opt.zero_grad()
    topt.zero_grad()
    model(x)
    model.backward(g)
    tmodel(torch.from_numpy(x)).backward(torch.from_numpy(g))
    opt.step()
    topt.step()


def assert_state_equal(ours, theirs, dtype, where):
    tstate = theirs.state_dict()
    state = ours.state_dict()
    assert list(state) == list(tstate), where
    for key, value in tstate.items():
        expected = to_numpy(value)
        assert state[key].dtype == expected.dtype, f"{where}: {key} dtype"
        np.testing.assert_allclose(state[key], expected, err_msg=f"{where}: {key}", **tol(dtype))


AVERAGING = {
    "default": lambda F: {},
    "swa_avg_fn": lambda F: dict(avg_fn=F.get_swa_avg_fn()),
    "ema_avg_fn": lambda F: dict(avg_fn=F.get_ema_avg_fn(0.8)),
    "ema_multi_avg_fn": lambda F: dict(multi_avg_fn=F.get_ema_multi_avg_fn(0.7)),
    "swa_multi_avg_fn": lambda F: dict(multi_avg_fn=F.get_swa_multi_avg_fn()),
    "custom_avg_fn": lambda F: dict(avg_fn=lambda avg, cur, n: 0.25 * avg + 0.75 * cur),
}


# torch's foreach SWA refuses integer buffers: test_swa_multi_avg_fn_refuses_integer_buffers_as_torch
AVERAGING_CASES = [(name, use_buffers) for name in AVERAGING for use_buffers in (False, True)
                   if not (name == "swa_multi_avg_fn" and use_buffers)]


@pytest.mark.parametrize("name, use_buffers", AVERAGING_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_averaged_model_matches_torch(dtype, name, use_buffers):
    model, tmodel = make_models(dtype)
    swa = S.AveragedModel(model, use_buffers=use_buffers, **AVERAGING[name](S))
    tswa = TS.AveragedModel(tmodel, use_buffers=use_buffers, **AVERAGING[name](TS))
    assert_state_equal(swa, tswa, dtype, "construction")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for i in range(5):
        x = rng.standard_normal((6, 3)).astype(dtype)
        train_step(model, tmodel, opt, topt, x, rng.standard_normal((6, 2)).astype(dtype))
        swa.update_parameters(model)
        tswa.update_parameters(tmodel)
        assert_state_equal(swa, tswa, dtype, f"update {i + 1}")
    assert int(swa.n_averaged) == 5
    assert not np.allclose(swa.module[0].weight.data, model[0].weight.data), "nothing was averaged"
    swa.eval()
    tswa.eval()
    x = rng.standard_normal((4, 3)).astype(dtype)
    np.testing.assert_allclose(swa(x), to_numpy(tswa(torch.from_numpy(x))), **tol(dtype))


def test_swa_multi_avg_fn_refuses_integer_buffers_as_torch():
    model, tmodel = make_models(np.float32)
    swa = S.AveragedModel(model, multi_avg_fn=S.get_swa_multi_avg_fn(), use_buffers=True)
    tswa = TS.AveragedModel(tmodel, multi_avg_fn=TS.get_swa_multi_avg_fn(), use_buffers=True)
    swa.update_parameters(model)
    tswa.update_parameters(tmodel)
    with pytest.raises(RuntimeError):
        tswa.update_parameters(tmodel)
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        swa.update_parameters(model)


def test_avg_fns_on_arrays_match_torch():
    """The functions alone, with float32, float64 and int64 arrays and a 0-d count as AveragedModel passes."""
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        avg, cur = rng.standard_normal(7).astype(dtype), rng.standard_normal(7).astype(dtype)
        n = np.array(2, dtype=np.int64)
        for ours, theirs in ((S.get_swa_avg_fn(), TS.get_swa_avg_fn()),
                             (S.get_ema_avg_fn(0.3), TS.get_ema_avg_fn(0.3))):
            out = ours(avg, cur, n)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, to_numpy(theirs(torch.from_numpy(avg), torch.from_numpy(cur),
                                                            torch.tensor(2))), rtol=1e-15 if dtype == np.float64
                                       else 1e-7)
        for ours, theirs in ((S.get_swa_multi_avg_fn(), TS.get_swa_multi_avg_fn()),
                             (S.get_ema_multi_avg_fn(0.6), TS.get_ema_multi_avg_fn(0.6))):
            for count in (2, n):
                a, t = [avg.copy()], [torch.from_numpy(avg.copy())]
                ours(a, [cur], count)
                theirs(t, [torch.from_numpy(cur)], torch.tensor(2) if count is n else 2)
                np.testing.assert_allclose(a[0], to_numpy(t[0]), rtol=1e-15 if dtype == np.float64 else 1e-6)
    ints, tints = np.array([3, 5, 9, 0]), torch.tensor([3, 5, 9, 0])
    cur = np.array([10, 1, 2, 7])
    out = S.get_swa_avg_fn()(ints, cur, np.array(1))
    assert out.dtype == np.float32  # torch divides integer tensors in the default dtype
    np.testing.assert_array_equal(np.trunc(out), TS.get_swa_avg_fn()(tints, torch.from_numpy(cur),
                                                                      torch.tensor(1)).trunc().numpy())
    S.get_ema_multi_avg_fn(0.9)([ints], [cur], 1)
    TS.get_ema_multi_avg_fn(0.9)([tints], [torch.from_numpy(cur)], 1)
    np.testing.assert_array_equal(ints, tints.numpy())


def test_state_dict_repr_and_checkpoint(tmp_path):
    model, tmodel = make_models(np.float32)
    swa = S.AveragedModel(model)
    tswa = TS.AveragedModel(tmodel)
    assert repr(swa) == repr(tswa)
    assert swa.n_averaged.dtype == np.int64 and swa.n_averaged.shape == ()
    swa.update_parameters(model)
    swa.update_parameters(model)
    torchlite.save(swa.state_dict(), tmp_path / "swa.npz")
    other = S.AveragedModel(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)))
    other.load_state_dict(torchlite.load(tmp_path / "swa.npz"))
    assert int(other.n_averaged) == 2
    np.testing.assert_array_equal(other.module[3].weight.data, swa.module[3].weight.data)
    tswa.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in swa.state_dict().items()})
    assert int(tswa.n_averaged) == 2


def test_module_is_an_independent_copy():
    model, _ = make_models(np.float64)
    model(np.ones((5, 3)))  # pending backward state in the original
    swa = S.AveragedModel(model, device="cpu")
    assert swa.module is not model and swa.module[0].weight is not model[0].weight
    assert swa.module[0].saved_count == 0 and model[0].saved_count == 1
    before = swa.module[0].weight.data.copy()
    model[0].weight.data += 1
    np.testing.assert_array_equal(swa.module[0].weight.data, before)
    assert [name for name, _ in swa.named_parameters()] == ["module." + n for n, _ in model.named_parameters()]


def test_backward_goes_through_the_copy():
    torchlite.set_default_dtype(np.float64)
    swa = S.AveragedModel(nn.Linear(3, 2))
    x = np.ones((4, 3))
    swa(x)
    dx = swa.backward(np.ones((4, 2)))
    np.testing.assert_allclose(dx, np.ones((4, 2)) @ swa.module.weight.data)
    np.testing.assert_allclose(swa.module.bias.grad, [4.0, 4.0])


def test_errors_as_torch():
    with pytest.raises(ValueError, match="only one of avg_fn and multi_avg_fn"):
        S.AveragedModel(nn.Linear(2, 2), avg_fn=S.get_swa_avg_fn(), multi_avg_fn=S.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="cuda"):
        S.AveragedModel(nn.Linear(2, 2), device="cuda")
    for fn, tfn in ((S.get_ema_avg_fn, TS.get_ema_avg_fn), (S.get_ema_multi_avg_fn, TS.get_ema_multi_avg_fn)):
        for decay in (-0.1, 1.5):
            with pytest.raises(ValueError) as ours:
                fn(decay)
            with pytest.raises(ValueError) as theirs:
                tfn(decay)
            assert str(ours.value) == str(theirs.value)


# update_bn ------------------------------------------------------------------------------------
@pytest.mark.parametrize("batches", ["tuples", "arrays"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_update_bn_matches_torch(dtype, batches):
    model, tmodel = make_models(dtype)
    model.add_module("4", nn.BatchNorm1d(2, momentum=0.3).to(dtype))
    tmodel.add_module("4", torch.nn.BatchNorm1d(2, momentum=0.3).to(TORCH_DTYPE[dtype]))
    rng = np.random.default_rng(2)
    data = [(rng.standard_normal((n, 3)).astype(dtype) * 3 + 1, np.zeros(n)) for n in (5, 8, 3)]
    model(data[0][0])  # stale statistics that update_bn must reset
    model.eval()
    tmodel.eval()
    loader = data if batches == "tuples" else [x for x, _ in data]
    tloader = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
    S.update_bn(loader, model)
    TS.update_bn(tloader, tmodel)
    assert_state_equal(model, tmodel, dtype, "after update_bn")
    assert not model.training and not model[1].training
    assert model[1].momentum == 0.1 and model[4].momentum == 0.3
    assert all(m.saved_count == 0 for m in model.modules())


def test_update_bn_on_averaged_model_and_train_mode_kept():
    model, tmodel = make_models(np.float64)
    swa, tswa = S.AveragedModel(model), TS.AveragedModel(tmodel)
    swa.update_parameters(model)
    tswa.update_parameters(tmodel)
    data = [np.random.default_rng(3).standard_normal((6, 3))]
    S.update_bn(data, swa, device="cpu")
    TS.update_bn([torch.from_numpy(data[0])], tswa)
    assert swa.training
    assert_state_equal(swa, tswa, np.float64, "AveragedModel after update_bn")


def test_update_bn_without_batch_norm_reads_nothing():
    def loader():
        raise AssertionError("update_bn must not iterate the loader of a model without BatchNorm")
        yield

    S.update_bn(loader(), nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="cuda"):
        S.update_bn([], nn.BatchNorm1d(2), device="cuda")


# SWALR ----------------------------------------------------------------------------------------
def make_optimizers():
    ours = optim.SGD([{"params": [Parameter(np.ones(2))], "lr": 0.5}, {"params": [Parameter(np.ones(3))]}],
                     lr=0.2, momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.5},
                              {"params": [torch.nn.Parameter(torch.ones(3))]}], lr=0.2, momentum=0.9)
    return ours, theirs


SWALR_CASES = {
    "cos-default": dict(swa_lr=0.05),
    "linear-3": dict(swa_lr=0.05, anneal_epochs=3, anneal_strategy="linear"),
    "cos-per-group": dict(swa_lr=[0.01, 0.3], anneal_epochs=4),
    "no-annealing": dict(swa_lr=0.07, anneal_epochs=0),
    "one-epoch-linear": dict(swa_lr=[0.1, 0.02], anneal_epochs=1, anneal_strategy="linear"),
}


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", list(SWALR_CASES))
def test_swalr_sequence_matches_torch_and_resumes(name, tmp_path):
    opt, topt = make_optimizers()
    cfg = SWALR_CASES[name]
    sched, tsched = S.SWALR(opt, **cfg), TS.SWALR(topt, **cfg)
    assert sorted(sched.state_dict()) == sorted(tsched.state_dict())
    trace, ttrace = [sched.get_last_lr()], [tsched.get_last_lr()]
    for _ in range(6):
        opt.step(), topt.step(), sched.step(), tsched.step()
        trace.append(sched.get_last_lr())
        ttrace.append(tsched.get_last_lr())
    torchlite.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "ckpt.npz")
    ckpt = torchlite.load(tmp_path / "ckpt.npz")
    opt, _ = make_optimizers()
    sched = S.SWALR(opt, swa_lr=1.0, anneal_strategy="cos" if "linear" in name else "linear")
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    for _ in range(8):
        opt.step(), topt.step(), sched.step(), tsched.step()
        trace.append(sched.get_last_lr())
        ttrace.append(tsched.get_last_lr())
    np.testing.assert_allclose(trace, ttrace, rtol=1e-12, atol=0)
    assert [g["lr"] for g in opt.param_groups] == trace[-1]
    assert [g["swa_lr"] for g in opt.param_groups] == [g["swa_lr"] for g in topt.param_groups]
    assert sched.anneal_func is (S.SWALR._linear_anneal if "linear" in name else S.SWALR._cosine_anneal)


def test_swalr_after_another_schedule_matches_torch():
    """SWALR anneals from whatever lr the group holds (torch's recursive form), here after a StepLR."""
    opt, topt = make_optimizers()
    first, tfirst = optim.lr_scheduler.StepLR(opt, 2, 0.5), torch.optim.lr_scheduler.StepLR(topt, 2, 0.5)
    for _ in range(3):
        opt.step(), topt.step(), first.step(), tfirst.step()
    sched, tsched = S.SWALR(opt, 0.01, anneal_epochs=5), TS.SWALR(topt, 0.01, anneal_epochs=5)
    for _ in range(7):
        opt.step(), topt.step(), sched.step(), tsched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=0)


def test_swalr_errors_and_warning_as_torch():
    opt, topt = make_optimizers()
    for kwargs in (dict(anneal_strategy="step"), dict(anneal_epochs=-1), dict(anneal_epochs=2.0),
                   dict(swa_lr=[0.1, 0.2, 0.3])):
        kwargs = {"swa_lr": 0.1, **kwargs}
        with pytest.raises(ValueError) as ours:
            S.SWALR(opt, **kwargs)
        with pytest.raises(ValueError) as theirs:
            TS.SWALR(topt, **kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError):
        S.SWALR(object(), 0.1)
    sched = S.SWALR(opt, 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sched.get_lr()
    assert any("get_last_lr()" in str(w.message) for w in caught)
    assert copy.deepcopy(sched.state_dict())["_anneal_strategy"] == "cos"

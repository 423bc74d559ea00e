"""torchlite.distributed: data-parallel training over MPI, and its single-process path.

The MPI tests start ``mpiexec -n 2`` on tests/distributed_scripts/ddp_worker.py once and check
what each rank saved against single-process runs over the same global batches (float64,
rtol 1e-10). mpi4py and mpiexec (the ``mpi`` extra: mpi4py + the mpich wheel) are required:
without them these tests fail, they never skip.
"""
import math
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.utils.data.distributed as torch_dist

import torchlite
import torchlite.distributed as dist
from torchlite import nn
from torchlite.distributed import comm

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "distributed_scripts"
sys.path.insert(0, str(SCRIPTS))

import dist_common  # noqa: E402
from dist_common import make_data, make_loader, make_model, make_optimizer, reference, train_epochs  # noqa: E402

RTOL = 1e-10
MPI_TIMEOUT_S = 120


def mpiexec():
    """The mpiexec beside this Python (a venv with the mpich wheel), else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.fail('mpiexec not found (beside sys.executable or on PATH): pip install "torchlite[mpi]"')
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.fail('mpi4py is not installed: pip install "torchlite[mpi]"')
    return found


def run_mpi(script, *args, n=2):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([mpiexec(), "-n", str(n), sys.executable, str(SCRIPTS / script), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=MPI_TIMEOUT_S)


@pytest.fixture(scope="module")
def mpi_run(tmp_path_factory):
    """Both ranks' results of ddp_worker.py, and the folder holding them."""
    out = tmp_path_factory.mktemp("ddp")
    proc = run_mpi("ddp_worker.py", out)
    assert proc.returncode == 0, f"mpiexec failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    ranks = [torchlite.load(out / f"rank{r}.npz") for r in range(2)]
    return ranks, out


@pytest.fixture
def no_mpi(monkeypatch):
    """A process not started by mpiexec, where mpi4py cannot be imported."""
    for var in comm._LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(comm._State, "comm", None)
    monkeypatch.setattr(comm._State, "initialized", False)


def state(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def assert_states_close(got, want, rtol=RTOL):
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=1e-14, err_msg=key)


# ------------------------------------------------------------------ two ranks under mpiexec
def test_mpi_world_is_two_ranks(mpi_run):
    ranks, _ = mpi_run
    assert [(r["rank"], r["world"], r["initialized"]) for r in ranks] == [(0, 2, True), (1, 2, True)]


@pytest.mark.parametrize("run", ["copy", "view", "functional"])
def test_ranks_hold_identical_parameters_equal_to_one_process(mpi_run, run):
    """DDP (grads copied through buckets, or grads as bucket views) and allreduce_gradients:
    8 SGD steps on 2 ranks give the parameters of one process over the same global batches."""
    ranks, _ = mpi_run
    for key in ranks[0][run]:
        np.testing.assert_array_equal(ranks[0][run][key], ranks[1][run][key], err_msg=key)
    assert_states_close(ranks[0][run], state(reference([0, 1])))


def test_gradients_travel_in_several_buckets_and_views_alias_them(mpi_run):
    ranks, _ = mpi_run
    assert ranks[0]["n_buckets"] == 4  # bucket_cap_mb=1e-4 (105 bytes) splits each of the 4 params
    assert ranks[0]["view_grads_are_views"] and ranks[1]["view_grads_are_views"]


def test_no_sync_accumulates_then_averages(mpi_run):
    ranks, _ = mpi_run
    model = make_model()
    opt = make_optimizer(model)
    loader, sampler = make_loader(make_data(), world_size=1, rank=0)
    criterion = nn.CrossEntropyLoss()
    batches = list(loader)
    for first, second in zip(batches[0::2], batches[1::2]):
        opt.zero_grad()
        for x, y in (first, second):
            criterion(model(x), y)
            model.backward(criterion.backward())
        opt.step()
    for r in ranks:
        assert_states_close(r["no_sync"], state(model))


def test_checkpoint_from_two_ranks_resumes_in_one_rank(mpi_run, no_mpi):
    """Rank 0 saved after epoch 0; a plain process (no MPI) loads it and trains epoch 1 to the
    parameters the 2-rank run reached."""
    ranks, out = mpi_run
    ckpt = torchlite.load(out / "ckpt.npz")
    assert ckpt["epoch"] == 1 and not any(k.startswith("module.") for k in ckpt["model"])
    model = dist.DistributedDataParallel(make_model(seed=99))
    model.module.load_state_dict(ckpt["model"])
    opt = make_optimizer(model)
    opt.load_state_dict(ckpt["optim"])
    loader, sampler = make_loader(make_data())
    assert sampler.num_replicas == 1 and len(loader) == 4
    train_epochs(model, opt, loader, sampler, [1])
    assert_states_close(state(model.module), ranks[0]["checkpoint_final"])


def test_sync_batchnorm_equals_batchnorm_over_the_global_batch(mpi_run):
    ranks, _ = mpi_run
    want = state(reference([0, 1], batch_norm=True))
    for r in ranks:
        assert_states_close(r["sync_bn"], want)


def test_sync_batchnorm_4d_forward_backward_match_batchnorm2d_on_the_whole_batch(mpi_run):
    ranks, _ = mpi_run
    rng = np.random.default_rng(7)
    x, g = rng.standard_normal((2, 8, 3, 5, 2))
    torchlite.set_default_dtype(np.float64)
    bn = nn.BatchNorm2d(3, momentum=None)
    bn.weight.data[:] = [0.5, 1.5, -2.0]
    bn.bias.data[:] = [0.1, -0.2, 0.3]
    out, dx = bn(x), bn.backward(g)
    for rank, r in enumerate(ranks):
        local = slice(4 * rank, 4 * rank + 4)
        res = r["sync_bn_4d"]
        np.testing.assert_allclose(res["out"], out[local], rtol=RTOL, atol=1e-14)
        np.testing.assert_allclose(res["dx"], dx[local], rtol=RTOL, atol=1e-14)
        np.testing.assert_allclose(res["running_mean"], bn.running_mean, rtol=RTOL)
        np.testing.assert_allclose(res["running_var"], bn.running_var, rtol=RTOL)
    # weight/bias grads stay local: their sum over ranks is the global batch's
    for name, want in (("dweight", bn.weight.grad), ("dbias", bn.bias.grad)):
        np.testing.assert_allclose(ranks[0]["sync_bn_4d"][name] + ranks[1]["sync_bn_4d"][name], want, rtol=RTOL)


def test_plain_batchnorm_keeps_per_rank_batch_statistics(mpi_run):
    """As torch's DDP: running stats start from rank 0's (broadcast_buffers), then each rank
    moves them with its own local batch."""
    ranks, _ = mpi_run
    model = make_model(batch_norm=True)
    for r in ranks:
        h = model[0](r["local_bn_batch"])
        np.testing.assert_allclose(r["local_bn_running_mean"], 0.1 * h.mean(axis=0), rtol=RTOL)
    assert not np.allclose(ranks[0]["local_bn_running_mean"], ranks[1]["local_bn_running_mean"])


def test_collectives(mpi_run):
    ranks, _ = mpi_run
    for r in ranks:
        assert r["mean"] == 1.5 and isinstance(r["mean"], float)
        np.testing.assert_array_equal(r["mean_array"], [0.5, 1.0])
        np.testing.assert_array_equal(r["max"], [1.0])
        np.testing.assert_array_equal(r["broadcast"], [11.0, 21.0])


def test_default_sampler_uses_world_and_rank(mpi_run):
    ranks, _ = mpi_run
    want = [list(torch_dist.DistributedSampler(range(11), num_replicas=2, rank=r, shuffle=False)) for r in range(2)]
    assert [r["sampler"].tolist() for r in ranks] == want


def test_save_on_rank0_failure_reaches_every_rank(mpi_run):
    ranks, _ = mpi_run
    assert ranks[0]["save_error"].startswith("FileNotFoundError")
    assert ranks[1]["save_error"].startswith("RuntimeError: save_on_rank0: rank 0 could not write")


def test_uncaught_exception_on_one_rank_aborts_the_job():
    proc = run_mpi("crash_worker.py")
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr + proc.stdout


# ------------------------------------------------------------------ one process, no MPI
def test_torchlite_never_imports_mpi4py_and_trains_without_it():
    """A fresh interpreter where mpi4py cannot be imported: DDP, the sampler, collectives and
    save_on_rank0 run as one rank; asking for MPI explicitly says how to install it."""
    code = f"""
import sys
sys.modules["mpi4py"] = None
sys.path.insert(0, {str(SCRIPTS)!r})
import torchlite, torchlite.distributed as dist
from dist_common import make_data, make_loader, make_model, make_optimizer, train_epochs
model = dist.DistributedDataParallel(make_model())
opt = make_optimizer(model)
loader, sampler = make_loader(make_data())
train_epochs(model, opt, loader, sampler, [0])
dist.save_on_rank0(model.module.state_dict(), sys.argv[1])
assert (dist.get_rank(), dist.get_world_size(), dist.is_initialized(), dist.is_available()) == (0, 1, False, False)
assert dist.all_reduce_mean(3.0) == 3.0
try:
    dist.init_process_group()
except ImportError as e:
    assert 'pip install "torchlite[mpi]"' in str(e), e
else:
    raise AssertionError("init_process_group without mpi4py did not raise")
print("OK")
"""
    env = {k: v for k, v in os.environ.items() if k not in comm._LAUNCHER_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    path = SCRIPTS.parent / "_no_mpi_ckpt.npz"
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr
        assert set(torchlite.load(path)) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    finally:
        path.unlink(missing_ok=True)


def test_import_torchlite_does_not_import_mpi4py():
    code = "import sys, torchlite, torchlite.distributed; print('mpi4py' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


@pytest.mark.parametrize("view", [False, True])
def test_single_rank_ddp_is_the_plain_model(no_mpi, view):
    model = dist.DistributedDataParallel(make_model(), gradient_as_bucket_view=view)
    opt = make_optimizer(model)
    loader, sampler = make_loader(make_data())
    train_epochs(model, opt, loader, sampler, [0, 1])
    want = state(reference([0, 1]))
    got = state(model.module)
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_single_rank_functions_are_no_ops(no_mpi):
    model = make_model()
    model[0].weight.grad = np.ones_like(model[0].weight.data)
    before = state(model)
    dist.broadcast_parameters(model)
    dist.allreduce_gradients(model)
    assert all(np.array_equal(v, before[k]) for k, v in state(model).items())
    np.testing.assert_array_equal(model[0].weight.grad, 1.0)
    a = np.arange(3.0)
    assert dist.all_reduce(a) is a and dist.broadcast(a) is a
    np.testing.assert_array_equal(a, [0, 1, 2])
    np.testing.assert_array_equal(dist.all_reduce_mean(a), a)
    dist.barrier()


def test_collective_argument_errors(no_mpi):
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.all_reduce(np.zeros((3, 4))[:, 1])
    with pytest.raises(TypeError, match="numpy.ndarray"):
        dist.broadcast([1.0])
    with pytest.raises(ValueError, match="backend"):
        dist.init_process_group(backend="nccl")
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(np.zeros(2), op="mean")


def test_init_process_group_without_a_launcher_is_a_world_of_one():
    """Plain python + init_process_group(): MPI starts as a singleton; every call works."""
    mpiexec()  # fails the test when mpi4py is missing
    code = """
import numpy as np, torchlite.distributed as dist
dist.init_process_group()
assert (dist.get_world_size(), dist.get_rank(), dist.is_initialized()) == (1, 0, True)
np.testing.assert_array_equal(dist.all_reduce(np.ones(2), op="max"), [1.0, 1.0])
dist.barrier()
print("OK")
"""
    env = {k: v for k, v in os.environ.items() if k not in comm._LAUNCHER_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "OK", proc.stderr


def test_ddp_state_dict_and_prefix_consumption(no_mpi):
    model = make_model()
    ddp = dist.DistributedDataParallel(model)
    assert ddp.module is model and list(ddp.parameters()) == list(model.parameters())
    sd = ddp.state_dict()
    assert list(sd) == ["module." + k for k in model.state_dict()]
    assert dist.consume_prefix_in_state_dict_if_present(sd, "module.") is None
    assert list(sd) == list(model.state_dict())
    model.load_state_dict(sd)
    assert repr(ddp).startswith("DistributedDataParallel(\n  (module): Sequential(")


def test_ddp_argument_errors(no_mpi):
    frozen = make_model().requires_grad_(False)
    with pytest.raises(RuntimeError, match="doesn't have any parameter that requires a gradient"):
        dist.DistributedDataParallel(frozen)
    with pytest.raises(TypeError, match="Module"):
        dist.DistributedDataParallel(lambda x: x)
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        dist.DistributedDataParallel(make_model(), bucket_cap_mb=0)


def test_buckets_pack_in_reverse_order_by_dtype_within_the_cap():
    from torchlite.distributed.ddp import _make_buckets
    from torchlite.nn import Parameter
    params = [Parameter(np.zeros(n, dtype=dt)) for n, dt in
              [(100_000, np.float32), (200_000, np.float32), (10, np.float64), (300_000, np.float32), (5, np.float64)]]
    buckets = _make_buckets(params, bucket_cap_mb=1)  # 1 MiB = 262144 float32
    layout = [[params.index(p) for p in b.params] for b in buckets]
    assert layout == [[3], [1], [4, 2], [0]]  # 3 alone (over the cap), 1 + 0 would pass it
    assert all(b.buffer.dtype == b.params[0].dtype for b in buckets)


# ------------------------------------------------------------------ DistributedSampler
SAMPLER_GRID = [(n, replicas, drop_last) for n in (1, 7, 10, 12) for replicas in (1, 2, 3, 5) for drop_last in
                (False, True) if not (drop_last and n < replicas)]


@pytest.mark.parametrize("n, replicas, drop_last", SAMPLER_GRID)
def test_sampler_without_shuffle_equals_torch(n, replicas, drop_last):
    for rank in range(replicas):
        ours = dist.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_dist.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert (len(ours), ours.num_samples, ours.total_size) == (len(theirs), theirs.num_samples, theirs.total_size)


@pytest.mark.parametrize("n, replicas, drop_last", SAMPLER_GRID)
def test_sampler_shuffled_shards_follow_torch_rules(n, replicas, drop_last):
    """Shuffle order differs from torch's randperm; the shard and padding rules are torch's:
    rank r takes positions r, r + R, ... of the permutation padded with its own head."""
    for epoch in (0, 1):
        shards = []
        for rank in range(replicas):
            s = dist.DistributedSampler(range(n), replicas, rank, shuffle=True, seed=5, drop_last=drop_last)
            s.set_epoch(epoch)
            shards.append(list(s))
        perm = np.random.Generator(np.random.PCG64(5 + epoch)).permutation(n).tolist()
        total = len(shards[0]) * replicas
        padded = (perm * math.ceil(total / n))[:total]
        interleaved = [shards[i % replicas][i // replicas] for i in range(total)]
        assert interleaved == padded
        assert len(shards[0]) == len(torch_dist.DistributedSampler(range(n), replicas, 0, drop_last=drop_last))
        if not drop_last:
            assert sorted(set(interleaved)) == list(range(n))  # every index at least once
            assert sorted(interleaved[:n]) == list(range(n))   # exactly once before the padding
        else:
            assert len(set(interleaved)) == total               # disjoint shards, no repeats


def test_sampler_epochs_reorder_and_seed_repeats():
    a = dist.DistributedSampler(range(50), 2, 0, seed=1)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first == list(dist.DistributedSampler(range(50), 2, 0, seed=1))


@pytest.mark.parametrize("rank", [-1, 2])
def test_sampler_invalid_rank_message_is_torchs(rank):
    with pytest.raises(ValueError) as ours:
        dist.DistributedSampler(range(4), num_replicas=2, rank=rank)
    with pytest.raises(ValueError) as theirs:
        torch_dist.DistributedSampler(range(4), num_replicas=2, rank=rank)
    assert str(ours.value) == str(theirs.value)


def test_sampler_defaults_to_one_rank_without_mpi(no_mpi):
    s = dist.DistributedSampler(range(5), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (1, 0, [0, 1, 2, 3, 4])


# ------------------------------------------------------------------ SyncBatchNorm, one process
def test_sync_batchnorm_single_process_matches_torch(no_mpi):
    """In a world of one SyncBatchNorm is BatchNorm (torch's SyncBatchNorm falls back the same way)."""
    torchlite.set_default_dtype(np.float64)
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((2, 4, 3, 5))
    ours = dist.SyncBatchNorm(3)
    theirs = torch.nn.BatchNorm1d(3).double()
    xt = torch.tensor(x, requires_grad=True)
    out = theirs(xt)
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(ours(x), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(g), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-10)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.eval()
    np.testing.assert_allclose(ours(x), theirs.eval()(xt).detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"SyncBatchNorm\(3.*expected input \(N, 3, \*\), got shape \(4,\)"):
        ours(np.zeros(4))


def test_convert_sync_batchnorm_shares_state_like_torch(no_mpi):
    model = make_model(batch_norm=True)
    bn = model[1]
    bn.running_mean += 1.0
    model.eval()
    converted = dist.SyncBatchNorm.convert_sync_batchnorm(model)
    sync = converted[1]
    assert type(sync) is dist.SyncBatchNorm and not sync.training
    assert sync.weight is bn.weight and sync.bias is bn.bias and sync.running_mean is bn.running_mean
    assert repr(sync) == repr(torch.nn.SyncBatchNorm(16))
    torch_converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm1d(16)))
    assert list(converted.state_dict())[2:7] == ["1." + k for k in torch_converted[0].state_dict()]

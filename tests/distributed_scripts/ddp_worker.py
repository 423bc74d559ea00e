"""Run under ``mpiexec -n 2``: data-parallel scenarios, each rank saving what it ended with.

Usage: ddp_worker.py OUT_DIR. Writes OUT_DIR/rank{r}.npz (torchlite.save) and, on rank 0,
OUT_DIR/ckpt.npz (a checkpoint after the first epoch). tests/test_distributed.py compares.
"""
import os
import sys

import numpy as np

import torchlite
import torchlite.distributed as dist
from torchlite import nn

from dist_common import (GLOBAL_BATCH, make_data, make_loader, make_model, make_optimizer, train_epochs)


def params(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def ddp_run(rank, **ddp_kwargs):
    """Two epochs of DDP training; ranks start from different seeds (DDP broadcasts rank 0's)."""
    model = dist.DistributedDataParallel(make_model(seed=rank), **ddp_kwargs)
    opt = make_optimizer(model)
    loader, sampler = make_loader(make_data())
    train_epochs(model, opt, loader, sampler, [0, 1])
    return params(model.module), model


def functional_run(rank):
    model = make_model(seed=0)
    opt = make_optimizer(model)
    loader, sampler = make_loader(make_data())
    train_epochs(model, opt, loader, sampler, [0, 1], reduce=lambda m: dist.allreduce_gradients(m, bucket_cap_mb=1e-4))
    return params(model)


def checkpoint_run(out_dir):
    """One epoch, a rank-0 checkpoint, then the second epoch."""
    model = dist.DistributedDataParallel(make_model())
    opt = make_optimizer(model)
    loader, sampler = make_loader(make_data())
    train_epochs(model, opt, loader, sampler, [0])
    dist.save_on_rank0({"model": model.module.state_dict(), "optim": opt.state_dict(), "epoch": 1},
                       os.path.join(out_dir, "ckpt.npz"))
    train_epochs(model, opt, loader, sampler, [1])
    return params(model.module)


def no_sync_run():
    """Gradient accumulation: two local micro-batches per step, the first under no_sync()."""
    model = dist.DistributedDataParallel(make_model(), gradient_as_bucket_view=True)
    opt = make_optimizer(model)
    loader, sampler = make_loader(make_data())
    criterion = nn.CrossEntropyLoss()
    batches = list(loader)
    for first, second in zip(batches[0::2], batches[1::2]):
        opt.zero_grad()
        with model.no_sync():
            criterion(model(first[0]), first[1])
            model.backward(criterion.backward())
        criterion(model(second[0]), second[1])
        model.backward(criterion.backward())
        opt.step()
    return params(model.module)


def batch_norm_runs(rank):
    """SyncBatchNorm training, and what plain BatchNorm's first forward does with its statistics."""
    sync = dist.DistributedDataParallel(dist.SyncBatchNorm.convert_sync_batchnorm(make_model(batch_norm=True)))
    opt = make_optimizer(sync)
    loader, sampler = make_loader(make_data())
    train_epochs(sync, opt, loader, sampler, [0, 1])
    local = dist.DistributedDataParallel(make_model(batch_norm=True, seed=rank))
    local.module[1].running_mean += rank  # differs per rank until DDP broadcasts rank 0's
    x, _ = next(iter(loader))
    local(x)
    return params(sync.module), np.array(local.module[1].running_mean), x


def sync_batch_norm_4d(rank, world):
    """SyncBatchNorm forward/backward on this rank's slice of one global (N, C, H, W) batch."""
    rng = np.random.default_rng(7)
    x, g = rng.standard_normal((2, 4 * world, 3, 5, 2))
    local = slice(4 * rank, 4 * rank + 4)
    torchlite.set_default_dtype(np.float64)
    bn = dist.SyncBatchNorm(3, momentum=None)
    bn.weight.data[:] = [0.5, 1.5, -2.0]
    bn.bias.data[:] = [0.1, -0.2, 0.3]
    out = bn(x[local])
    dx = bn.backward(g[local])
    return {"out": out, "dx": dx, "dweight": bn.weight.grad, "dbias": bn.bias.grad,
            "running_mean": bn.running_mean, "running_var": bn.running_var}


def save_errors(out_dir):
    try:
        dist.save_on_rank0({"a": np.zeros(1)}, os.path.join(out_dir, "missing-dir", "x.npz"))
    except (OSError, RuntimeError) as e:
        return f"{type(e).__name__}: {e}"
    return "no error"


def main(out_dir):
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {"rank": rank, "world": world, "initialized": dist.is_initialized()}
    results["copy"], ddp = ddp_run(rank, bucket_cap_mb=1e-4)
    results["n_buckets"] = len(ddp.bucket_sizes())
    results["view"], ddp = ddp_run(rank, gradient_as_bucket_view=True)
    results["view_grads_are_views"] = all(
        any(np.shares_memory(p.grad, b.buffer) for b in ddp._reducer.buckets) for p in ddp.parameters())
    results["functional"] = functional_run(rank)
    results["checkpoint_final"] = checkpoint_run(out_dir)
    results["no_sync"] = no_sync_run()
    results["sync_bn"], results["local_bn_running_mean"], results["local_bn_batch"] = batch_norm_runs(rank)
    results["sync_bn_4d"] = sync_batch_norm_4d(rank, world)
    results["mean"] = dist.all_reduce_mean(float(rank + 1))
    results["mean_array"] = dist.all_reduce_mean(np.array([rank, 2.0 * rank]))
    results["max"] = dist.all_reduce(np.array([float(rank)]), op="max")
    results["broadcast"] = dist.broadcast(np.array([rank + 10.0, rank + 20.0]), src=1)
    results["sampler"] = np.array(list(dist.DistributedSampler(range(11), shuffle=False)))
    results["save_error"] = save_errors(out_dir)
    results["global_batch"] = GLOBAL_BATCH
    dist.barrier()
    torchlite.save(results, os.path.join(out_dir, f"rank{rank}.npz"))


if __name__ == "__main__":
    main(sys.argv[1])

"""Data-parallel training over MPI (``torchlite.distributed``), torch.distributed's names.

Every rank runs the same script on its shard of the data::

    import torchlite.distributed as dist
    model = dist.DistributedDataParallel(Net())          # same start weights on every rank
    sampler = dist.DistributedSampler(train_set, seed=0)  # disjoint shards
    loader = DataLoader(train_set, batch_size=64, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            loss = criterion(model(x), y)
            model.backward(criterion.backward())           # + gradient average over ranks
            opt.step()
        dist.save_on_rank0({"model": model.module.state_dict()}, "ckpt.npz")

started as ``mpiexec -n 4 python train.py``. With plain ``python`` the same script is one
process (rank 0 of 1) and needs no MPI. MPI comes from the optional extra:
``pip install "torchlite[mpi]"`` (mpi4py and the ``mpich`` wheel, which provides ``mpiexec``);
``import torchlite`` never imports mpi4py.
"""
from .comm import (all_reduce, all_reduce_mean, barrier, broadcast, destroy_process_group, get_comm, get_rank,
                   get_world_size, init_process_group, is_available, is_initialized, save_on_rank0)
from .ddp import (DistributedDataParallel, allreduce_gradients, broadcast_parameters,
                  consume_prefix_in_state_dict_if_present)
from .sampler import DistributedSampler
from .sync_batchnorm import SyncBatchNorm

__all__ = [
    "is_available", "init_process_group", "is_initialized", "destroy_process_group", "get_rank", "get_world_size",
    "get_comm", "barrier", "all_reduce", "broadcast", "all_reduce_mean", "save_on_rank0",
    "DistributedDataParallel", "allreduce_gradients", "broadcast_parameters", "consume_prefix_in_state_dict_if_present",
    "DistributedSampler", "SyncBatchNorm",
]

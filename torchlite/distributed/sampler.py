"""DistributedSampler: each rank's disjoint shard of the dataset indices, as torch's."""
import math

import numpy as np

from ..data.sampler import Sampler
from . import comm

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` visits this epoch.

    torch's rules exactly: the (shuffled) index list is padded by repeating its head (or cut,
    with ``drop_last``) to ``num_samples * num_replicas`` and rank r takes every
    ``num_replicas``-th index starting at r, so shards are disjoint and equally long. With
    ``shuffle=False`` the indices equal torch's; with ``shuffle=True`` the order is a
    permutation seeded by ``seed + epoch`` (NumPy's PCG64, so not torch's ``randperm`` order),
    the same on every rank. Call ``set_epoch(epoch)`` before each epoch for a new order.

    Args:
        dataset: anything with ``len``.
        num_replicas: number of ranks (default ``get_world_size()``).
        rank: this rank (default ``get_rank()``).
        shuffle: shuffle each epoch. seed: must be the same on every rank.
        drop_last: drop the tail so the dataset splits evenly instead of padding.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None:
            num_replicas = comm.get_world_size()
        if rank is None:
            rank = comm.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if self.drop_last and len(self.dataset) % self.num_replicas != 0:
            self.num_samples = math.ceil((len(self.dataset) - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(len(self.dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.Generator(np.random.PCG64(self.seed + self.epoch)).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding_size = self.total_size - len(indices)
            if padding_size <= len(indices):
                indices += indices[:padding_size]
            else:
                indices += (indices * math.ceil(padding_size / len(indices)))[:padding_size]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Set the epoch: with ``shuffle=True`` each epoch gets its own order (same on all ranks)."""
        self.epoch = epoch

"""Datasets, samplers and DataLoader (``torchlite.data``), as torch.utils.data, yielding NumPy batches.

MNIST and Fashion-MNIST live in ``torchlite.data.datasets``.
"""
from .collate import default_collate, default_convert
from .dataset import ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)
from .dataloader import DataLoader
from .stack import StackDataset
from .worker import get_worker_info
from . import datasets

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "random_split",
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
    "BatchSampler", "DataLoader", "default_collate", "default_convert", "datasets",
]
__all__ += ["StackDataset", "get_worker_info"]


def __getattr__(name):
    """``data.DistributedSampler`` as torch.utils.data's; it lives in torchlite.distributed, which imports data."""
    if name == "DistributedSampler":
        from ..distributed import DistributedSampler
        return DistributedSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Datasets: map-style (``__getitem__`` + ``__len__``) and iterable-style, as in torch.utils.data.

The batched fast path: a map-style dataset may define ``get_batch(indices)`` returning exactly
what ``default_collate([self[i] for i in indices])`` would, built with one fancy index per
array instead of a Python call per sample. The DataLoader uses it whenever the collate_fn is
the default one. ``TensorDataset``, ``Subset`` of such a dataset, and the MNIST datasets have it.
``__getitems__(indices)`` keeps torch's meaning (a list of samples, handed to a custom collate_fn).
"""
import bisect
import itertools
import math
import warnings

import numpy as np

from ..random import get_generator

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset",
           "random_split"]


class Dataset:
    """A map from indices to samples. Subclasses define ``__getitem__`` and usually ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples. Subclasses define ``__iter__``; the DataLoader batches what it yields."""

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are rows of arrays that share their first dimension: ``ds[i] == (a[i], b[i], ...)``.

    Args:
        *tensors: arrays (or anything ``np.asarray`` accepts) with the same length along axis 0.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one array, got none")
        tensors = tuple(np.asarray(t) for t in tensors)
        for t in tensors:
            if t.ndim == 0:
                raise ValueError("TensorDataset: expected arrays with a first dimension, got a 0-d array")
        sizes = [t.shape[0] for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dimensions {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def get_batch(self, indices):
        """The collated batch of ``indices``: one fancy index per array."""
        idx = np.asarray(indices, dtype=np.intp)
        return [t[idx] for t in self.tensors]

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (a sequence of ints), in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices
        self._index_array = None

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        """A list of samples, as torch's ``Subset.__getitems__``."""
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __getattr__(self, name):
        # Expose get_batch only when the wrapped dataset has it, so the DataLoader's check holds.
        if name == "get_batch" and callable(getattr(self.dataset, "get_batch", None)):
            return self._get_batch
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _get_batch(self, indices):
        if self._index_array is None or len(self._index_array) != len(self.indices):
            self._index_array = np.asarray(self.indices, dtype=np.intp)
        return self.dataset.get_batch(self._index_array[np.asarray(indices, dtype=np.intp)])

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several map-style datasets one after another. ``cumulative_sizes[i]`` is the end of dataset i."""

    @staticmethod
    def cumsum(sequence):
        return list(itertools.accumulate(len(e) for e in sequence))

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset (use ChainDataset)")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return self.datasets[dataset_idx][sample_idx]


class ChainDataset(IterableDataset):
    """Several iterable datasets one after another, chained lazily."""

    def __init__(self, datasets):
        self.datasets = datasets

    def _checked(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got {type(d).__name__}")
            yield d

    def __iter__(self):
        for d in self._checked():
            yield from d

    def __len__(self):
        return sum(len(d) for d in self._checked())


def _split_lengths(n, lengths):
    """Counts from ``lengths``: used as given, or as fractions of ``n`` when they sum to 1 (torch's rule)."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            counts.append(math.floor(n * frac))
        # The remainder goes round-robin to the first splits, one each.
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=3)
        return counts
    return list(lengths)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    Args:
        dataset: a map-style dataset.
        lengths: counts summing to ``len(dataset)``, or fractions summing to 1 (each split gets
            ``floor(frac * len)``, the remainder is handed out one by one from the first split).
        generator: a ``numpy.random.Generator``; default: torchlite's global generator.
    """
    n = len(dataset)
    counts = _split_lengths(n, lengths)
    if sum(counts) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    rng = get_generator() if generator is None else generator
    indices = rng.permutation(n).tolist()
    ends = list(itertools.accumulate(counts))
    return [Subset(dataset, indices[end - c:end]) for end, c in zip(ends, counts)]

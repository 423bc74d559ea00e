"""DataLoader: batches of NumPy arrays from a dataset, with torch's arguments and checks.

Loading always runs in the calling process: a batch of an array-backed dataset is one fancy
index (``dataset.get_batch``), cheaper than handing work to worker processes. The
multiprocessing arguments (``num_workers``, ``prefetch_factor``, ``persistent_workers``, ...)
are accepted and checked as torch checks them, so torch code runs unchanged.
"""
import copy
import itertools

import numpy as np

from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader"]

_FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: map-style (``__getitem__``/``__len__``) or an ``IterableDataset``.
        batch_size: samples per batch; None turns batching off (each sample is yielded
            through ``default_convert``).
        shuffle: reshuffle every epoch (a ``RandomSampler``). Exclusive with ``sampler``.
        sampler: an iterable of indices (e.g. ``WeightedRandomSampler``).
        batch_sampler: an iterable of lists of indices; exclusive with batch_size, shuffle,
            sampler and drop_last.
        num_workers: accepted for compatibility; loading runs in this process.
        collate_fn: list of samples -> batch (default ``default_collate``: stacked arrays).
        drop_last: drop the last incomplete batch.
        generator: ``numpy.random.Generator`` for shuffling. None: each epoch draws one seed from
            torchlite's global generator, so ``torchlite.manual_seed`` fixes the order and
            ``torchlite.set_rng_state`` replays it; a loader's own generator is saved and
            restored with ``state_dict()`` / ``load_state_dict()``.

    Yields what ``collate_fn`` makes: for ``TensorDataset(x, y)`` a list ``[x_batch, y_batch]``.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        self.__dict__["_initialized"] = False
        _check_workers(num_workers, timeout, prefetch_factor, persistent_workers, multiprocessing_context)
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator should be a numpy.random.Generator or None, "
                            f"got {type(generator).__name__}")
        iterable = isinstance(dataset, IterableDataset)
        # checked here, not at the first batch: torch fails later with a bare TypeError
        if not iterable and not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: expected a dataset (indexable, with __getitem__, or an IterableDataset), "
                            f"got {type(dataset).__name__}")
        if sampler is not None and not hasattr(sampler, "__iter__"):
            raise TypeError(f"DataLoader: expected an iterable sampler (of indices), got {type(sampler).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: expected a callable collate_fn, got {type(collate_fn).__name__}")
        if iterable:
            if shuffle not in {False, None}:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")

        if sampler is None and not iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if batch_size is not None and iterable:
            BatchSampler([], batch_size, drop_last)  # the same checks on batch_size and drop_last
        auto_collation = batch_sampler is not None or (iterable and batch_size is not None)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if auto_collation else default_convert)
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = 2 if num_workers > 0 and prefetch_factor is None else prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._iterable = iterable
        self._auto_collation = auto_collation
        self._initialized = True

    def __setattr__(self, name, value):
        if self.__dict__.get("_initialized") and name in _FROZEN:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    # ----------------------------------------------------------------- iteration
    def __iter__(self):
        if self._iterable:
            return self._iter_stream()
        if not self._auto_collation:
            return (self.collate_fn(self.dataset[i]) for i in self.sampler)
        fetch = self._fetcher()
        return (fetch(indices) for indices in self.batch_sampler)

    def _fetcher(self):
        """indices -> batch: the dataset's own ``get_batch`` when collation is the default one."""
        dataset, collate = self.dataset, self.collate_fn
        get_batch = getattr(dataset, "get_batch", None)
        if collate is default_collate and callable(get_batch):
            return get_batch
        getitems = getattr(dataset, "__getitems__", None)
        if callable(getitems):
            return lambda indices: collate(getitems(indices))
        return lambda indices: collate([dataset[i] for i in indices])

    def _iter_stream(self):
        it = iter(self.dataset)
        if not self._auto_collation:
            for sample in it:
                yield self.collate_fn(sample)
            return
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield self.collate_fn(batch)

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self._auto_collation else self.sampler)

    # ----------------------------------------------------------------- resumable order
    def _own_generator(self):
        return self.generator if self.generator is not None else getattr(self.sampler, "generator", None)

    def state_dict(self):
        """``{"generator": state}``: the state of the generator this loader (or its sampler) owns,
        or None when shuffling follows the global stream (save ``torchlite.get_rng_state()`` then).
        Saved between epochs and restored with ``load_state_dict``, the next epoch's order repeats."""
        g = self._own_generator()
        return {"generator": None if g is None else copy.deepcopy(g.bit_generator.state)}

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned."""
        g, state = self._own_generator(), state_dict.get("generator")
        if (g is None) != (state is None):
            raise ValueError("DataLoader.load_state_dict: the saved state and this loader disagree on whether "
                             "the loader owns a generator (generator=...)")
        if g is not None:
            if state.get("bit_generator") != type(g.bit_generator).__name__:
                raise ValueError(f"DataLoader.load_state_dict: saved state is for {state.get('bit_generator')}, "
                                 f"this loader's generator is {type(g.bit_generator).__name__}")
            g.bit_generator.state = state


def _check_workers(num_workers, timeout, prefetch_factor, persistent_workers, multiprocessing_context):
    if num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                         "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
    if prefetch_factor is not None and prefetch_factor < 0:
        raise ValueError("prefetch_factor option should be non-negative")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
    if multiprocessing_context is not None and num_workers == 0:
        raise ValueError("multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")

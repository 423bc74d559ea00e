"""DataLoader: batches of NumPy arrays from a dataset, with torch's arguments, checks and workers.

With ``num_workers=0`` (the default) batches are read in the calling process: a batch of an
array-backed dataset is one fancy index (``dataset.get_batch``), the fastest way there is.
With ``num_workers > 0`` they are read and collated in that many worker processes, as torch
does (see _multiprocessing.py and worker.py): worth it when ``__getitem__`` does real work
(decoding, augmentation, I/O).
"""
import copy
import itertools
import multiprocessing
import os
import warnings

import numpy as np

from ._fetch import create_fetcher
from ._multiprocessing import _MultiProcessingDataLoaderIter, _draw_base_seed
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
        num_workers: how many worker processes read and collate batches; 0 reads them in this
            process. Each worker gets a copy of the dataset (inherited with the default ``fork``
            start method on Linux, pickled with ``spawn``/``forkserver``); an ``IterableDataset``
            is iterated whole in every worker unless it shards itself with ``get_worker_info()``.
        collate_fn: list of samples -> batch (default ``default_collate``: stacked arrays); runs
            in the workers, whose batches are pickled back.
        pin_memory: accepted for torch code; ignored (no accelerator memory to pin).
        drop_last: drop the last incomplete batch (with an ``IterableDataset`` and workers, each
            worker's own last batch).
        timeout: seconds to wait for a batch from the workers before raising RuntimeError;
            0 waits forever.
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker, after seeding and
            before loading.
        multiprocessing_context: a start method name (``"fork"``, ``"spawn"``, ``"forkserver"``)
            or a ``multiprocessing`` context; None uses the default one.
        generator: ``numpy.random.Generator`` for shuffling and for the workers' ``base_seed``.
            None: each epoch draws one seed from torchlite's global generator, so
            ``torchlite.manual_seed`` fixes the order and ``torchlite.set_rng_state`` replays it;
            a loader's own generator is saved and restored with ``state_dict()`` / ``load_state_dict()``.
        prefetch_factor: batches in flight per worker (default 2 with workers; None without).
        persistent_workers: keep the workers (and their dataset copies) from one epoch to the next.
        pin_memory_device: accepted for torch code; ignored.
        in_order: yield the workers' batches in sampler order; False yields each as it arrives.

    Yields what ``collate_fn`` makes: for ``TensorDataset(x, y)`` a list ``[x_batch, y_batch]``.

    Workers and randomness, as torch: each iterator (each epoch, unless workers persist) draws
    ``base_seed`` from ``generator`` (or torchlite's global generator), before the sampler draws;
    also without workers, so the order of the data does not depend on ``num_workers``. Worker ``i``
    seeds torchlite's global generator (and Python's ``random`` and NumPy's legacy ``np.random``)
    with ``base_seed + i``, which ``get_worker_info().seed`` reports: random transforms differ
    between workers, and a run repeats after ``torchlite.manual_seed``.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        self.__dict__["_initialized"] = False
        _check_workers(num_workers, timeout, prefetch_factor, persistent_workers)
        self.num_workers = num_workers
        self.multiprocessing_context = multiprocessing_context
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
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = 2 if num_workers > 0 and prefetch_factor is None else prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._iterable = iterable
        self._auto_collation = auto_collation
        self._iterator = None
        self._initialized = True
        self._check_worker_number_rationality()

    def __setattr__(self, name, value):
        if self.__dict__.get("_initialized") and name in _FROZEN:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def multiprocessing_context(self):
        """The ``multiprocessing`` context workers start in (None: the default one)."""
        return self._multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, context):
        if context is not None:
            if self.num_workers == 0:
                raise ValueError("multiprocessing_context can only be used with multi-process loading "
                                 f"(num_workers > 0), but got num_workers={self.num_workers}")
            if isinstance(context, str):
                methods = multiprocessing.get_all_start_methods()
                if context not in methods:
                    raise ValueError(f"multiprocessing_context option should specify a valid start method in "
                                     f"{methods!r}, but got multiprocessing_context={context!r}")
                context = multiprocessing.get_context(context)
            if not isinstance(context, multiprocessing.context.BaseContext):
                raise TypeError(f"multiprocessing_context option should be a valid context object or a string "
                                f"specifying the start method, but got multiprocessing_context={context}")
        self._multiprocessing_context = context

    # ----------------------------------------------------------------- iteration
    def __iter__(self):
        if self.num_workers == 0:
            # drawn and unused, as torch: the data order then does not depend on num_workers
            _draw_base_seed(self.generator)
            return self._single_process_iter()
        if not self.persistent_workers:
            return self._get_iterator()
        # one iterator for the loader's lifetime, so its workers serve every epoch
        if self._iterator is None:
            self._iterator = self._get_iterator()
        else:
            self._iterator._reset()
        return self._iterator

    def _get_iterator(self):
        if self.prefetch_factor == 0:  # torch fails here too, on an assertion
            raise ValueError("prefetch_factor must be greater than 0 for multi-process loading (num_workers > 0)")
        self._check_worker_number_rationality()
        return _MultiProcessingDataLoaderIter(self)

    @property
    def _index_sampler(self):
        """What each fetch gets: lists of indices, single indices, or for an IterableDataset
        (which ignores them) placeholders whose length is the batch size, without end."""
        if self._iterable:
            return itertools.repeat([None] * self.batch_size if self._auto_collation else None)
        return self.batch_sampler if self._auto_collation else self.sampler

    def _single_process_iter(self):
        fetcher = create_fetcher(self._iterable, self.dataset, self._auto_collation, self.collate_fn,
                                 self.drop_last)
        for index in self._index_sampler:
            try:
                batch = fetcher.fetch(index)
            except StopIteration:  # the IterableDataset is spent
                return
            yield batch

    def _check_worker_number_rationality(self):
        """Warn, as torch, when there are more workers than CPUs this process may use."""
        if self.num_workers == 0:
            return
        cpuset_checked = hasattr(os, "sched_getaffinity")
        cpus = len(os.sched_getaffinity(0)) if cpuset_checked else os.cpu_count()
        if cpus is not None and self.num_workers <= cpus:
            return
        if cpus is None:
            suggestion = "DataLoader is not able to compute a suggested max number of worker in current system."
        else:
            suggestion = (f"Our suggested max number of worker in current system is {cpus}"
                          f"{'' if cpuset_checked else ' (`cpuset` is not taken into account)'}, which is smaller "
                          "than what this DataLoader is going to create.")
        warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in total. {suggestion} "
                      "Please be aware that excessive worker creation might get DataLoader running slow or even "
                      "freeze, lower the worker number to avoid potential slowness/freeze if necessary.",
                      stacklevel=3)

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


def _check_workers(num_workers, timeout, prefetch_factor, persistent_workers):
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

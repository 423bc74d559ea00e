"""Fetchers: one batch (or sample) from an index, the same code in the main process and in workers.

As torch's ``_utils/fetch.py``. A map-style fetch reads its indices (through ``dataset.get_batch``
when the collate_fn is the default one, see dataset.py), an iterable-style fetch takes the next
``len(index)`` samples of its own iterator; both collate what they read.
"""
from .collate import default_collate

__all__ = []


class _MapFetcher:
    def __init__(self, dataset, auto_collation, collate_fn):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        get_batch = getattr(dataset, "get_batch", None)
        use_get_batch = auto_collation and collate_fn is default_collate and callable(get_batch)
        self._get_batch = get_batch if use_get_batch else None

    def fetch(self, index):
        if self._get_batch is not None:
            return self._get_batch(index)
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return self.collate_fn(getitems(index))
        return self.collate_fn([self.dataset[i] for i in index])


class _IterableFetcher:
    """Reads from one ``iter(dataset)``; raises StopIteration once it is spent (or only a batch
    shorter than ``len(index)`` is left under ``drop_last``)."""

    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset_iter = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.dataset_iter))
        data = []
        for _ in index:
            try:
                data.append(next(self.dataset_iter))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def create_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last):
    if iterable:
        return _IterableFetcher(dataset, auto_collation, collate_fn, drop_last)
    return _MapFetcher(dataset, auto_collation, collate_fn)

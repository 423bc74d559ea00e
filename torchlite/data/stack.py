"""StackDataset: several datasets of the same length read side by side, as torch.utils.data.StackDataset."""
from .dataset import Dataset

__all__ = ["StackDataset"]


class StackDataset(Dataset):
    """Sample i is ``(d0[i], d1[i], ...)`` for positional datasets, ``{"k": dk[i], ...}`` for keyword ones.

    Args:
        *args: datasets stacked into tuple samples.
        **kwargs: datasets stacked into dict samples (not together with ``args``).
    Raises:
        ValueError: both or neither of args and kwargs given, or the lengths differ.

    With the default collate_fn, the DataLoader batches it through ``get_batch`` when every
    stacked dataset has one (a list of batches, or a dict of them: what ``default_collate`` makes).
    """

    def __init__(self, *args, **kwargs):
        if args:
            if kwargs:
                raise ValueError("Supported either ``tuple``- (via ``args``) or"
                                 "``dict``- (via ``kwargs``) like input/output, but both types are given.")
            parts = args
        elif kwargs:
            parts = list(kwargs.values())
        else:
            raise ValueError("At least one dataset should be passed")
        self._length = len(parts[0])
        if any(self._length != len(dataset) for dataset in parts):
            raise ValueError("Size mismatch between datasets")
        self.datasets = args or kwargs

    def _items(self):
        """(key, dataset) pairs: positions for a tuple stack, names for a dict stack."""
        if isinstance(self.datasets, dict):
            return self.datasets.items()
        return enumerate(self.datasets)

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: dataset[index] for k, dataset in self.datasets.items()}
        return tuple(dataset[index] for dataset in self.datasets)

    def __getitems__(self, indices):
        """A list of samples; each stacked dataset's own ``__getitems__`` is used where it has one."""
        columns = {}
        for k, dataset in self._items():
            if callable(getattr(dataset, "__getitems__", None)):
                items = dataset.__getitems__(indices)
                if len(items) != len(indices):
                    raise ValueError(f"Nested dataset's output size mismatch. Expected {len(indices)}, "
                                     f"got {len(items)}")
                columns[k] = items
            else:
                columns[k] = [dataset[i] for i in indices]
        rows = range(len(indices))
        if isinstance(self.datasets, dict):
            return [{k: col[r] for k, col in columns.items()} for r in rows]
        return [tuple(col[r] for col in columns.values()) for r in rows]

    def __getattr__(self, name):
        # get_batch exists only when every stacked dataset has one, so the DataLoader's check holds
        datasets = self.__dict__.get("datasets")
        if name == "get_batch" and datasets is not None and all(
                callable(getattr(d, "get_batch", None)) for _, d in self._items()):
            return self._get_batch
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def _get_batch(self, indices):
        if isinstance(self.datasets, dict):
            return {k: d.get_batch(indices) for k, d in self.datasets.items()}
        return [d.get_batch(indices) for d in self.datasets]

    def __len__(self):
        return self._length

"""Turning a list of samples into a batch, as torch's ``default_collate``, but with NumPy arrays.

Where torch makes tensors, these make ndarrays: arrays are stacked along a new first axis,
Python ints become int64, floats float64, bools bool, and NumPy scalars keep their dtype.
Containers keep their structure: dicts collate per key, namedtuples per field, tuples and
lists per position (a tuple sample gives a list of batches, as in torch).
"""
import collections.abc
import copy
import re

import numpy as np

__all__ = ["default_collate", "default_convert"]

_STR_OR_OBJECT = re.compile(r"[SaUO]")
_ERR = "default_collate: batch must contain numpy arrays, numbers, strings, dicts or lists; found {}"


def _rebuild(elem, values):
    """A container like ``elem`` holding ``values`` (a dict for mappings, a list for sequences)."""
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        if isinstance(elem, collections.abc.Mapping):
            return type(elem)(values)
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, v in enumerate(values):
                clone[i] = v
            return clone
        return type(elem)(values)
    except TypeError:
        # Some containers cannot be copied or built from an iterable (e.g. range).
        return values


def _stack(batch):
    first = batch[0]
    for i, a in enumerate(batch):
        if a.shape != first.shape:
            raise RuntimeError(f"default_collate: cannot stack arrays of different shapes: {first.shape} at "
                               f"position 0 and {a.shape} at position {i}; pad them in a custom collate_fn")
    return np.stack(batch)


def default_collate(batch):
    """Collate a list of samples into one batch (arrays stacked on a new axis 0).

    >>> default_collate([(np.zeros(3), 1), (np.ones(3), 2)])  # -> [array (2, 3), array([1, 2])]
    """
    elem = batch[0]
    if isinstance(elem, np.ndarray):
        if _STR_OR_OBJECT.search(elem.dtype.str):
            raise TypeError(_ERR.format(elem.dtype))
        return _stack(batch)
    if isinstance(elem, np.generic):
        if _STR_OR_OBJECT.search(elem.dtype.str):
            raise TypeError(_ERR.format(elem.dtype))
        return np.array(batch, dtype=elem.dtype)
    if isinstance(elem, bool):
        return np.array(batch, dtype=np.bool_)
    if isinstance(elem, int):
        return np.array(batch, dtype=np.int64)
    if isinstance(elem, float):
        return np.array(batch, dtype=np.float64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _rebuild(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(s) for s in zip(*batch)]  # a column of strings stays a tuple, as torch
        return columns if isinstance(elem, tuple) else _rebuild(elem, columns)
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """What the DataLoader applies to each sample when batching is off (``batch_size=None``).

    Arrays pass through; NumPy scalars become 0-d arrays; tuples become lists (as in torch);
    other containers keep their type with converted contents.
    """
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return data if _STR_OR_OBJECT.search(data.dtype.str) else np.asarray(data)
    if isinstance(data, collections.abc.Mapping):
        return _rebuild(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild(data, [default_convert(d) for d in data])
    return data

"""ParameterList and ParameterDict: Parameters held in a list or a dict, registered on the module.

As in torch, entries live as the container's attributes ("0", "1", ... or the dict's keys), so
Parameters land in ``_parameters`` (found by ``parameters()``, ``state_dict()``, ``to()`` and
optimizers, keys ``params.0`` / ``params.left``), Modules in ``_modules``, and anything else is
kept as a plain attribute. A plain ndarray put in is wrapped into a Parameter (torch wraps tensors).
"""
import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import numpy as np

from .module import Module
from .parameter import Parameter

__all__ = ["ParameterList", "ParameterDict"]


def _as_entry(value):
    return Parameter(value) if isinstance(value, np.ndarray) else value


def _entry_line(key, value):
    """torch's line for one entry, with numpy's dtype names: ``  (0): Parameter containing: [float32 of size 3x4]``."""
    if isinstance(value, Parameter):
        size = "x".join(str(s) for s in value.shape)
        return f"  ({key}): Parameter containing: [{value.dtype} of size {size}]"
    return f"  ({key}): Object of type: {type(value).__name__}"


def _checked_pair(j, p):
    if not isinstance(p, Iterable):
        raise TypeError(f"ParameterDict update sequence element #{j} should be Iterable; is" + type(p).__name__)
    if len(p) != 2:
        raise ValueError(f"ParameterDict update sequence element #{j} has length {len(p)}; 2 is required")
    return p[0], p[1]


class ParameterList(Module):
    """Holds parameters in a list; each entry ``i`` is registered under the name ``str(i)``.

    Args:
        values (iterable, optional): entries to add; ndarrays become Parameters, other objects
            (Modules, None, ...) are kept as they are.

    Example::

        self.weights = nn.ParameterList([nn.Parameter(np.zeros((4, 4))) for _ in range(3)])
        # state_dict keys: weights.0, weights.1, weights.2
    """

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def _get_abs_string_index(self, idx):
        idx = operator.index(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} is out of range")
        return str(idx + len(self) if idx < 0 else idx)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            out = self.__class__()
            for i in range(*idx.indices(len(self))):
                out.append(self[i])
            return out
        return getattr(self, self._get_abs_string_index(idx))

    def __setitem__(self, idx, param):
        setattr(self, self._get_abs_string_index(idx), _as_entry(param))

    def __len__(self):
        return self._size

    def __iter__(self):
        return iter(self[i] for i in range(len(self)))

    def __iadd__(self, parameters):
        return self.extend(parameters)

    def __dir__(self):
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, value):
        """Add ``value`` at the end. Returns self."""
        value = _as_entry(value)  # a value refused here leaves the length as it was
        new_idx = len(self)
        self._size += 1
        self[new_idx] = value
        return self

    def extend(self, values):
        """Append each entry of the iterable ``values`` (an array is refused, not unpacked). Returns self."""
        if not isinstance(values, Iterable) or isinstance(values, np.ndarray):
            raise TypeError("ParameterList.extend should be called with an iterable, but got " + type(values).__name__)
        for value in values:
            self.append(value)
        return self

    def extra_repr(self):
        return "\n".join(_entry_line(k, p) for k, p in enumerate(self))

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """Holds parameters in an ordered dict; each entry is registered under its (string) key.

    Args:
        parameters (optional): a mapping of string keys to entries, or an iterable of
            ``(key, value)`` pairs. As torch: a plain ``dict`` is added in sorted key order,
            an ``OrderedDict``, a ParameterDict or pairs in their own order. ndarrays become
            Parameters; other objects are kept as they are.

    Example::

        self.params = nn.ParameterDict({"left": nn.Parameter(np.zeros((5, 10))),
                                        "right": nn.Parameter(np.zeros((5, 10)))})
        # state_dict keys: params.left, params.right
    """

    def __init__(self, parameters=None):
        super().__init__()
        self._keys = {}
        if parameters is not None:
            self.update(parameters)

    def _key_to_attr(self, key):
        if not isinstance(key, str):
            raise TypeError("Index given to ParameterDict cannot be used as a key as it is "
                            f"not a string (type is '{type(key).__name__}'). Open an issue on "
                            "github if you need non-string keys.")
        return key

    def __getitem__(self, key):
        return getattr(self, self._key_to_attr(key))

    def __setitem__(self, key, value):
        # torch records the key before checking it; a refused key here leaves the dict unchanged
        setattr(self, self._key_to_attr(key), _as_entry(value))
        self._keys[key] = None

    def __delitem__(self, key):
        del self._keys[key]
        delattr(self, self._key_to_attr(key))

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __reversed__(self):
        return reversed(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def copy(self):
        """A new ParameterDict holding the same entries (the Parameters are shared, not copied)."""
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def setdefault(self, key, default=None):
        """The entry at ``key``, after setting it to ``default`` if it was missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self):
        for k in self._keys.copy():
            del self[k]

    def pop(self, key):
        """Remove the entry at ``key`` and return it."""
        v = self[key]
        del self[key]
        return v

    def popitem(self):
        """Remove and return the last inserted ``(key, value)`` pair."""
        k, _ = self._keys.popitem()
        self._keys[k] = None
        val = self[k]
        del self[k]
        return k, val

    def get(self, key, default=None):
        return self[key] if key in self else default

    def fromkeys(self, keys, default=None):
        """A new ParameterDict with ``keys``, each holding ``default`` (an instance method, as torch's)."""
        return ParameterDict((k, default) for k in keys)

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def update(self, parameters):
        """Set entries from a mapping or an iterable of ``(key, value)`` pairs, overwriting existing keys."""
        if not isinstance(parameters, Iterable):
            raise TypeError("ParametersDict.update should be called with an iterable of key/value pairs, but got "
                            + type(parameters).__name__)
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = list(parameters.items())
        elif isinstance(parameters, Mapping):
            pairs = sorted(parameters.items())
        else:  # every pair is checked before any is set
            pairs = [_checked_pair(j, p) for j, p in enumerate(parameters)]
        for key, value in pairs:
            self[key] = value

    def extra_repr(self):
        return "\n".join(_entry_line(k, p) for k, p in self.items())

    def __call__(self, input):
        raise RuntimeError("ParameterDict should not be called.")

    def __or__(self, other):
        copy = self.copy()
        copy.update(other)
        return copy

    def __ror__(self, other):
        copy = other.copy()
        copy.update(self)
        return copy

    def __ior__(self, other):
        self.update(other)
        return self

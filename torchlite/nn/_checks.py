"""Input checks shared by layers: errors name the module as it prints and what it expected."""
import functools

import numpy as np


class IndexRangeError(IndexError, ValueError):
    """An index or dim out of range: an IndexError, as torch raises, and a ValueError like every
    other bad-input error here (so ``except ValueError`` catches all of them)."""


def as_float_input(module, x, dtype, name="input"):
    """``x`` as an ndarray of ``dtype``; a TypeError naming ``module`` for non-numeric input."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{module!r}: expected a floating-point {name}, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def shape_error(module, expected, x, name="input"):
    """A ValueError: ``Linear(in_features=4, ...): expected input (*, 4), got shape (2, 3)``."""
    return ValueError(f"{module!r}: expected {name} {expected}, got shape {tuple(np.shape(x))}")


def zero_d_safe(fn):
    """Let the elementwise function ``fn`` take 0-d arrays, as torch's ops take 0-d tensors.

    NumPy turns 0-d ufunc results into scalars, which cannot be ``out=`` targets. When every
    array argument is 0-d, they go in with shape (1,) (views: in-place writes still land) and
    results of shape (1,) come back 0-d.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if args and getattr(args[0], "ndim", 0):  # the hot path: not every array is 0-d
            return fn(*args, **kwargs)
        arrays = [a for a in (*args, *kwargs.values()) if isinstance(a, (np.ndarray, np.generic))]
        if not arrays or any(a.ndim for a in arrays):
            return fn(*args, **kwargs)
        lifted = [a.reshape(1) if isinstance(a, (np.ndarray, np.generic)) else a for a in args]
        return _as_0d(fn(*lifted, **kwargs))
    return wrapper


def _as_0d(out):
    if isinstance(out, tuple):
        return tuple(_as_0d(o) for o in out)
    if isinstance(out, np.ndarray) and out.shape == (1,):
        return out.reshape(())
    return out

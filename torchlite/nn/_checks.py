"""Input checks shared by layers: errors name the module as it prints and what it expected."""
import numpy as np


def as_float_input(module, x, dtype, name="input"):
    """``x`` as an ndarray of ``dtype``; a TypeError naming ``module`` for non-numeric input."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{module!r}: expected a floating-point {name}, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def shape_error(module, expected, x, name="input"):
    """A ValueError: ``Linear(in_features=4, ...): expected input (*, 4), got shape (2, 3)``."""
    return ValueError(f"{module!r}: expected {name} {expected}, got shape {tuple(np.shape(x))}")

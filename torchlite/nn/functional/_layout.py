"""Memory layouts that convolutions and max pooling hand each other (see nn/_fusion.py)."""
import numpy as np


def empty_nd(shape, dtype, channels_last, zero=False):
    """An (N, C, *spatial) array of ``shape``, a view of (N, *spatial, C) memory if ``channels_last``
    (zeroed if ``zero``)."""
    make = np.zeros if zero else np.empty
    if not channels_last:
        return make(shape, dtype)
    return np.moveaxis(make((shape[0],) + tuple(shape[2:]) + (shape[1],), dtype), -1, 1)


def is_channels_last(a):
    """Whether (N, C, *spatial) ``a`` is a view of C-contiguous (N, *spatial, C) memory (and not C-contiguous)."""
    return a.ndim > 2 and not a.flags.c_contiguous and np.moveaxis(a, 1, -1).flags.c_contiguous

"""Memory layouts that convolutions and max pooling hand each other (see nn/_fusion.py)."""
import numpy as np


def is_channels_last(a):
    """Whether (N, C, *spatial) ``a`` is a view of C-contiguous (N, *spatial, C) memory (and not C-contiguous)."""
    return a.ndim > 2 and not a.flags.c_contiguous and np.moveaxis(a, 1, -1).flags.c_contiguous

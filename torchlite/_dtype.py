"""Default floating dtype policy: float32 like torch, float64 for gradchecks."""
import numpy as np

_default_dtype = np.dtype(np.float32)


def set_default_dtype(dtype):
    """Set the dtype new parameters and buffers are created in (float32 or float64)."""
    global _default_dtype
    d = np.dtype(dtype)
    if d not in (np.float16, np.float32, np.float64):
        raise TypeError(f"set_default_dtype: expected a floating dtype (float16, float32, float64), got {d}")
    _default_dtype = d


def get_default_dtype():
    """The dtype new parameters are created in (a numpy dtype, float32 unless changed)."""
    return _default_dtype

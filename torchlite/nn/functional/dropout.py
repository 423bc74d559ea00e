"""Dropout math: element-wise, channel-wise (1d/2d/3d) and alpha dropout.

Each forward returns the output, or with ``return_mask=True`` ``(output, mask)``: the
multiplier the input was scaled by (broadcastable to it; None where the input passed
through untouched). Every variant is then ``output = input * mask (+ a constant)``, so one
twin, ``dropout_backward(grad_output, mask)``, serves them all.

Masks are drawn from ``torchlite.random.get_generator()`` (``manual_seed`` repeats them),
uniform in float32 for float32 input (cheaper than float64), and kept in the input's dtype.
"""
import math
import warnings

import numpy as np

from ...random import get_generator

__all__ = [
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "dropout_backward",
]

# SELU's alpha * scale: alpha dropout sets dropped units to -_ALPHA, SELU's negative saturation.
_ALPHA = 1.7580993408473766


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _float(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _keep(shape, p, dtype):
    """1 with probability 1 - p, else 0, as an array of ``dtype``."""
    draw = dtype if dtype in (np.float32, np.float64) else np.float32
    u = get_generator().random(shape, dtype=draw)
    return np.greater_equal(u, p, out=u).astype(dtype, copy=False)


def _noise_shape(x, feature):
    """Feature dropout draws one value per (sample, channel): shape (N, C, 1, ...)."""
    if not feature:
        return x.shape
    if x.ndim < 2:
        raise ValueError(f"Feature dropout requires at least 2 dimensions in the input, got shape {x.shape}")
    return x.shape[:2] + (1,) * (x.ndim - 2)


def _dropout(x, p, training, inplace, feature, alpha):
    """(output, mask) of torch's ``_dropout_impl``: output = x * mask (+ b for alpha dropout)."""
    _check_p(p)
    x = _float(x)
    shape = _noise_shape(x, feature)
    if p == 0 or not training or x.size == 0:
        return x, None
    if p == 1:
        mask = np.zeros((1,) * x.ndim, dtype=x.dtype)
        shift = None
    else:
        keep = _keep(shape, p, x.dtype)
        if alpha:
            a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
            shift = (keep + (p - 1)) * (_ALPHA * a)
            mask = keep
            mask *= a
        else:
            shift = None
            mask = keep
            mask /= 1 - p
    out = np.multiply(x, mask, out=x if inplace else None)
    if shift is not None:
        out += shift
    return out, mask


def dropout(input, p=0.5, training=True, inplace=False, *, return_mask=False):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (inverted dropout).

    Identity when not training or p == 0; zeros when p == 1. input: any shape; output the same.
    ``inplace`` writes into ``input`` (a floating ndarray).
    """
    out, mask = _dropout(input, p, training, inplace, False, False)
    return (out, mask) if return_mask else out


def dropout1d(input, p=0.5, training=True, inplace=False, *, return_mask=False):
    """Zero whole channels of input (N, C, L) or (C, L) with probability p, scale the rest by 1 / (1 - p)."""
    _check_p(p)
    x = _float(input)
    if x.ndim not in (2, 3):
        raise ValueError(f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input. Note that dropout1d "
                         "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a channel "
                         "dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    return _unbatched(x, x.ndim == 2, p, training, inplace, return_mask)


def dropout2d(input, p=0.5, training=True, inplace=False, *, return_mask=False):
    """Zero whole channels of input (N, C, H, W) with probability p, scale the rest by 1 / (1 - p).

    As torch, a 3D input is read as (N, C, L) (with a warning), other ranks warn and drop
    per (dim 0, dim 1) entry.
    """
    _check_p(p)
    x = _float(input)
    if x.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated and will result "
                      "in an error in a future release. To retain the behavior and silence this warning, please "
                      "use dropout instead. Note that dropout2d exists to provide channel-wise dropout on inputs "
                      "with 2 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).", stacklevel=2)
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.", stacklevel=2)
    out, mask = _dropout(x, p, training, inplace, True, False)
    return (out, mask) if return_mask else out


def dropout3d(input, p=0.5, training=True, inplace=False, *, return_mask=False):
    """Zero whole channels of input (N, C, D, H, W) or (C, D, H, W) with probability p, scale by 1 / (1 - p).

    As torch, other ranks warn and get a leading batch axis of 1.
    """
    _check_p(p)
    x = _float(input)
    if x.ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated and will result "
                      "in an error in a future release. To retain the behavior and silence this warning, please "
                      "use dropout instead. Note that dropout3d exists to provide channel-wise dropout on inputs "
                      "with 3 spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 4D or 5D inputs).", stacklevel=2)
    return _unbatched(x, x.ndim != 5, p, training, inplace, return_mask)


def _unbatched(x, add_batch, p, training, inplace, return_mask):
    """Channel dropout of ``x``, seen with a leading batch axis of 1 when ``add_batch``."""
    out, mask = _dropout(x[None] if add_batch else x, p, training, inplace, True, False)
    if add_batch:
        out = out[0]
        mask = None if mask is None else mask[0]
    return (out, mask) if return_mask else out


def alpha_dropout(input, p=0.5, training=False, inplace=False, *, return_mask=False):
    """Dropout for SELU networks: keeps zero mean and unit variance.

    Dropped elements become -alpha' (SELU's saturation), then out = a * x + b with a, b
    chosen to restore the statistics. Note torch's default ``training=False`` here.
    """
    out, mask = _dropout(input, p, training, inplace, False, True)
    return (out, mask) if return_mask else out


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, *, return_mask=False):
    """Alpha dropout of whole channels of input (N, C, *); see ``alpha_dropout``."""
    out, mask = _dropout(input, p, training, inplace, True, True)
    return (out, mask) if return_mask else out


def dropout_backward(grad_output, mask):
    """dLoss/dinput of every dropout above: grad_output * mask (grad_output when mask is None)."""
    g = np.asarray(grad_output)
    return g if mask is None else g.astype(mask.dtype, copy=False) * mask

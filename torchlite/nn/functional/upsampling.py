"""Resizing as torch's ``F.interpolate``: nearest, nearest-exact, (bi/tri)linear and area, with backward.

Every mode except 'area' is separable: each spatial axis is resampled on its own by a gather
(nearest: one source index per output position; linear: two indices and their weights), so
the backward is the matching scatter-add per axis. Source indices follow torch's CPU
kernels, including their float32 arithmetic, so the same pixels are picked.
(Exported through ``functional.pooling``; 'area' is adaptive average pooling.)
"""
import math
from collections import namedtuple

import numpy as np

from .padding import _take_backward

__all__ = ["interpolate", "interpolate_backward", "InterpolateContext"]

InterpolateContext = namedtuple("InterpolateContext", ["mode", "input_shape", "dtype", "steps"])
InterpolateContext.__doc__ = "Per-axis resampling steps of one interpolate call, for its backward."

_LINEAR_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")


def _sizes(x, size, scale_factor, mode, recompute_scale_factor, who):
    """Output sizes and the scale factors torch's kernels see (None where they use in/out)."""
    d = x.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError(f"{who}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{who}: either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{who}: recompute_scale_factor is not meaningful with an explicit size.")
        out = tuple(int(s) for s in size) if isinstance(size, (tuple, list)) else (int(size),) * d
        if len(out) != d:
            raise ValueError(f"{who}: input and output must have the same number of spatial dimensions, but got "
                             f"input with spatial dimensions of {list(x.shape[2:])} and output size of {size}")
        scales = (None,) * d
    else:
        scales = tuple(float(s) for s in scale_factor) if isinstance(scale_factor, (tuple, list)) \
            else (float(scale_factor),) * d
        if len(scales) != d:
            raise ValueError(f"{who}: input and scale_factor must have the same number of spatial dimensions, but "
                             f"got input with spatial dimensions of {list(x.shape[2:])} and scale_factor of "
                             f"{scale_factor}")
        out = tuple(math.floor(s * f) for s, f in zip(x.shape[2:], scales))
        if recompute_scale_factor or mode == "area":
            scales = (None,) * d
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{who}: expected spatial sizes of at least 1, got input shape {x.shape}")
    if min(out) < 1:
        raise ValueError(f"{who}: output size {out} must be positive (input {x.shape})")
    return out, scales


def _nearest_index(size, out, scale, exact):
    """torch's nearest source index (float32 arithmetic, exact for out == size and out == 2*size)."""
    dst = np.arange(out)
    if not exact and out == size:
        return dst
    if not exact and out == 2 * size:
        return dst >> 1
    step = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(size) / np.float32(out)
    src = (dst + 0.5).astype(np.float32) * step if exact else dst.astype(np.float32) * step
    return np.minimum(np.floor(src).astype(np.int64), size - 1)


def _linear_weights(size, out, scale, align_corners, dtype):
    """(i0, i1, w0, w1): output j = w0[j] * x[i0[j]] + w1[j] * x[i1[j]], in the input's precision."""
    dst = np.arange(out).astype(dtype)
    if align_corners:
        step = dtype.type(size - 1) / dtype.type(out - 1) if out > 1 else dtype.type(0)
        src = step * dst
    else:
        step = dtype.type(1.0 / scale) if scale is not None and scale > 0 else dtype.type(size) / dtype.type(out)
        src = np.maximum(step * (dst + dtype.type(0.5)) - dtype.type(0.5), dtype.type(0))
    i0 = src.astype(np.int64)
    i1 = i0 + (i0 < size - 1)
    w1 = src - i0.astype(dtype)
    return i0, i1, dtype.type(1) - w1, w1


def _along(w, axis, ndim):
    shape = [1] * ndim
    shape[axis] = len(w)
    return w.reshape(shape)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False, return_context=False):
    """Resize (N, C, *spatial) to (N, C, *size) or (N, C, *floor(spatial * scale_factor)).

    mode: 'nearest', 'nearest-exact', 'linear' (3-d input), 'bilinear' (4-d), 'trilinear'
    (5-d) or 'area'; align_corners only for the linear modes (default False).
    With ``return_context=True`` also returns the InterpolateContext for ``interpolate_backward``.
    """
    who = "interpolate"
    x = np.asarray(input)
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{who}: expected a 3-d, 4-d or 5-d input (N, C, *spatial), got shape {x.shape}")
    if mode not in _MODES:
        raise ValueError(f"{who}: mode must be one of {_MODES}, got {mode!r}")
    if antialias:
        raise ValueError(f"{who}: antialias is not supported")
    if mode in _LINEAR_DIMS:
        if x.ndim - 2 != _LINEAR_DIMS[mode]:
            raise ValueError(f"{who}: got {x.ndim}D input, but {mode} mode needs {_LINEAR_DIMS[mode] + 2}D input")
        align_corners = bool(align_corners)
    elif align_corners is not None:
        raise ValueError(f"{who}: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    out, scales = _sizes(x, size, scale_factor, mode, recompute_scale_factor, who)
    if mode == "area":
        from .pooling import adaptive_avg_pool_nd

        y, ctx = adaptive_avg_pool_nd(x, x.ndim - 2, out, return_context=True, who=who)
        steps = ctx
    else:
        y, steps = x, []
        for axis, (s, o, sc) in enumerate(zip(x.shape[2:], out, scales), start=2):
            if mode in _LINEAR_DIMS:
                i0, i1, w0, w1 = _linear_weights(s, o, sc, align_corners, x.dtype)
                y = np.take(y, i0, axis=axis) * _along(w0, axis, y.ndim) + \
                    np.take(y, i1, axis=axis) * _along(w1, axis, y.ndim)
                steps.append((axis, s, (i0, w0), (i1, w1)))
            else:
                index = _nearest_index(s, o, sc, mode == "nearest-exact")
                y = np.take(y, index, axis=axis)
                steps.append((axis, s, (index, None)))
    if return_context:
        return y, InterpolateContext(mode, x.shape, x.dtype, steps)
    return y


def interpolate_backward(grad_output, ctx):
    """dx of ``interpolate`` from its context: the per-axis gathers scattered back in reverse."""
    grad = np.asarray(grad_output, dtype=ctx.dtype)
    if ctx.mode == "area":
        from .pooling import adaptive_avg_pool_nd_backward

        return adaptive_avg_pool_nd_backward(grad, ctx.steps)
    for axis, size, *terms in reversed(ctx.steps):
        total = None
        for index, weight in terms:
            g = grad if weight is None else grad * _along(weight, axis, grad.ndim)
            part = _take_backward(g, index, size, axis)
            total = part if total is None else total + part
        grad = total
    return grad

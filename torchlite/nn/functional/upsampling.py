"""Resizing as torch's ``F.interpolate``: nearest, nearest-exact, (bi/tri)linear, bicubic and area, with backward.

Every mode except 'area' is separable: each spatial axis is resampled on its own by weighted
gathers (nearest: one source index per output position; linear: two taps; bicubic: four;
antialiased: as many as the stretched filter covers), so the backward is the matching
scatter-add per axis. Source indices follow torch's CPU
kernels, including their float32 arithmetic, so the same pixels are picked.
(Exported through ``functional.pooling``; 'area' is adaptive average pooling.) The deprecated
``upsample``, ``upsample_nearest`` and ``upsample_bilinear`` are torch's thin aliases of it.
"""
import math
import warnings
from collections import namedtuple

import numpy as np

from .padding import _take_backward

__all__ = ["interpolate", "interpolate_backward", "InterpolateContext", "upsample", "upsample_nearest",
           "upsample_bilinear"]

InterpolateContext = namedtuple("InterpolateContext", ["mode", "input_shape", "dtype", "steps"])
InterpolateContext.__doc__ = "Per-axis resampling steps of one interpolate call, for its backward."

_INTERP_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


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


def _source_step(size, out, scale, align_corners, dtype):
    """torch's area_pixel_compute_scale: input pixels per output pixel, in the input's precision."""
    if align_corners:
        return dtype.type(size - 1) / dtype.type(out - 1) if out > 1 else dtype.type(0)
    return dtype.type(1.0 / scale) if scale is not None and scale > 0 else dtype.type(size) / dtype.type(out)


def _source_coord(size, out, scale, align_corners, dtype):
    """The real-valued source position of each output position (half-pixel centres unless align_corners)."""
    dst = np.arange(out).astype(dtype)
    step = _source_step(size, out, scale, align_corners, dtype)
    return step * dst if align_corners else step * (dst + dtype.type(0.5)) - dtype.type(0.5)


def _linear_weights(size, out, scale, align_corners, dtype):
    """[(i0, w0), (i1, w1)]: output j = w0[j] * x[i0[j]] + w1[j] * x[i1[j]]."""
    src = np.maximum(_source_coord(size, out, scale, align_corners, dtype), dtype.type(0))
    i0 = src.astype(np.int64)
    i1 = i0 + (i0 < size - 1)
    w1 = src - i0.astype(dtype)
    return [(i0, dtype.type(1) - w1), (i1, w1)]


def _cubic(x, a):
    """Keys' cubic convolution kernel with parameter ``a`` (even, zero beyond |x| = 2)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0)).astype(x.dtype, copy=False)


def _cubic_weights(size, out, scale, align_corners, dtype):
    """Four (index, weight) taps around each source position, A = -0.75 as torch's bicubic.

    Unlike linear, the source position is not clamped at 0; indices past the border read
    the border pixel (torch clamps the access, it does not reflect).
    """
    src = _source_coord(size, out, scale, align_corners, dtype)
    base = np.floor(src)
    t = src - base
    base = base.astype(np.int64)
    a = dtype.type(-0.75)
    return [(np.clip(base + k, 0, size - 1), _cubic(t - dtype.type(k), a)) for k in (-1, 0, 1, 2)]


def _triangle(x):
    return np.maximum(1 - np.abs(x), 0).astype(x.dtype, copy=False)


def _antialias_weights(size, out, scale, align_corners, dtype, mode):
    """Taps of torch's antialiased bilinear/bicubic resize (Pillow's scheme).

    When shrinking, the filter (triangle, or Keys' cubic with a = -0.5) is stretched by the
    shrink factor so every input pixel contributes; the weights of each output position are
    normalised to sum to one. Positions are pixel centres even with align_corners, which only
    changes the step, as in torch.
    """
    step = float(_source_step(size, out, scale, align_corners, dtype))
    support = float(dtype.type((1.0 if mode == "bilinear" else 2.0) * max(step, 1.0)))
    inv = float(dtype.type(1.0 / step)) if step >= 1.0 else 1.0
    taps = 2 * math.ceil(support) + 1
    center = (step * (np.arange(out) + 0.5)).astype(dtype).astype(np.float64)
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)
    xsize = np.clip(np.minimum((center + support + 0.5).astype(np.int64), size) - xmin, 0, taps)
    j = np.arange(taps)[:, None]
    x = ((j + xmin - center + 0.5) * inv).astype(dtype)
    w = _triangle(x) if mode == "bilinear" else _cubic(x, dtype.type(-0.5))
    w = np.where(j < xsize, w, dtype.type(0))
    total = w.sum(axis=0)
    w = w / np.where(total != 0, total, dtype.type(1))
    return [(np.minimum(xmin + k, size - 1), w[k]) for k in range(taps)]


def _along(w, axis, ndim):
    shape = [1] * ndim
    shape[axis] = len(w)
    return w.reshape(shape)


def _axis_terms(mode, size, out, scale, align_corners, antialias, dtype):
    """(index, weight) taps resampling one axis from ``size`` to ``out``; weight None for a plain gather."""
    if antialias:
        return _antialias_weights(size, out, scale, align_corners, dtype, mode)
    if mode == "bicubic":
        return _cubic_weights(size, out, scale, align_corners, dtype)
    if mode in _INTERP_DIMS:
        return _linear_weights(size, out, scale, align_corners, dtype)
    return [(_nearest_index(size, out, scale, mode == "nearest-exact"), None)]


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False, *, return_context=False):
    """Resize (N, C, *spatial) to (N, C, *size) or (N, C, *floor(spatial * scale_factor)).

    mode: 'nearest', 'nearest-exact', 'linear' (3-d input), 'bilinear' (4-d), 'bicubic' (4-d),
    'trilinear' (5-d) or 'area'; align_corners only for the interpolating modes (default False).
    antialias=True (bilinear and bicubic only) low-pass filters when downsampling, as torch.
    (torch 2.13's antialiased CPU forward is wrong for an output width of 1 with a resized
    height, repeating one row; this computes the true resize there, matching torch's backward.)
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
    if antialias and not (mode in ("bilinear", "bicubic") and x.ndim == 4):
        raise ValueError(f"{who}: anti-alias option is restricted to bilinear and bicubic modes and requires "
                         f"a 4-D tensor as input, got mode {mode!r} and shape {x.shape}")
    if mode in _INTERP_DIMS:
        if x.ndim - 2 != _INTERP_DIMS[mode]:
            raise ValueError(f"{who}: got {x.ndim}D input, but {mode} mode needs {_INTERP_DIMS[mode] + 2}D input")
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
            if antialias and s == o:
                # torch's antialiased forward leaves such an axis alone even when a scale_factor
                # would shift its samples (its backward does not: we keep the forward and its true gradient)
                continue
            terms = _axis_terms(mode, s, o, sc, align_corners, antialias, x.dtype)
            y = _resample(y, axis, terms)
            steps.append((axis, s, *terms))
        if not steps:
            y = x.copy()
    if return_context:
        return y, InterpolateContext(mode, x.shape, x.dtype, steps)
    return y


def _resample(x, axis, terms):
    """sum_k weight_k * x[..., index_k, ...] along ``axis``."""
    total = None
    for index, weight in terms:
        part = np.take(x, index, axis=axis)
        if weight is not None:
            part *= _along(weight, axis, x.ndim)
        total = part if total is None else total + part
    return total


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
    return grad.copy() if grad is grad_output else grad


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None, *, return_context=False):
    """Deprecated: ``interpolate(input, size, scale_factor, mode, align_corners)``, with a warning as torch's."""
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners, return_context=return_context)


def upsample_nearest(input, size=None, scale_factor=None, *, return_context=False):
    """Deprecated: ``interpolate(input, size, scale_factor, mode='nearest')``, with a warning as torch's."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest", return_context=return_context)


def upsample_bilinear(input, size=None, scale_factor=None, *, return_context=False):
    """Deprecated: ``interpolate(input, size, scale_factor, mode='bilinear', align_corners=True)``, with a
    warning as torch's. Shape: (N, C, H, W) -> (N, C, H_out, W_out)."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True, return_context=return_context)

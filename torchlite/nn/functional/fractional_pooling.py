"""Fractional max pooling (Graham, 2014), 2d and 3d from one N-d implementation, as torch computes it.

Inputs are (N, C, *spatial) or unbatched (C, *spatial). Each (sample, channel) plane gets its
own pseudo-random window starts from one number u in [0, 1) per spatial dim (the
``_random_samples``, shape (N, C, d), drawn from ``torchlite.random.get_generator()`` when not
given). Along a dim of size ``s`` pooled to ``o`` outputs with kernel ``k``, torch's rule is

    alpha = (s - k) / (o - 1);  start_i = int((i + u) * alpha) - int(u * alpha) for i < o - 1;
    start_{o-1} = s - k,

evaluated in the input's dtype (float32 rounding moves some starts against float64). Each
output is the max over the k-wide window at its starts; ``indices`` are flat positions in the
input plane, as MaxPool's. Ties go to the first maximum in row-major window order, a NaN wins
(the last one seen), and the gradient goes to the recorded position.
"""
import math

import numpy as np

from ..._dtype import get_default_dtype
from ...random import get_generator
from .conv import _ntuple

__all__ = [
    "fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d_with_indices", "fractional_max_pool2d_backward", "fractional_max_pool3d_backward",
    "fractional_max_pool_nd", "fractional_max_pool_nd_backward",
]

_SPATIAL = {2: "H, W", 3: "D, H, W"}
_DIM_NAMES = {2: ("height", "width"), 3: ("time", "height", "width")}
# torch's 2d kernel reads a plane's samples as (u_W, u_H), its 3d kernel as (u_T, u_H, u_W)
_SAMPLE_COLUMN = {2: (1, 0), 3: (0, 1, 2)}


def _as_input(input, d, who):
    x = np.asarray(input)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{who}: expected a floating-point input, got dtype {x.dtype}")
    if x.ndim not in (d + 1, d + 2) or 0 in x.shape[1:]:
        spatial = _SPATIAL[d]
        raise ValueError(f"{who}: expected input (N, C, {spatial}) or (C, {spatial}) with non-empty C and "
                         f"{spatial}, got shape {x.shape}")
    return x if x.dtype.kind == "f" else x.astype(get_default_dtype())


def _output_size(size, d, output_size, output_ratio, who):
    if output_size is None and output_ratio is None:
        raise ValueError(f"{who}: fractional_max_pool requires specifying either an output_size or an output_ratio")
    if output_size is not None:  # it wins over output_ratio, as in torch's functional (the modules refuse both)
        out = _ntuple(output_size, d, "output_size", who)
        if min(out) < 0:
            raise ValueError(f"{who}: output_size must be non-negative, got {output_size!r}")
        return out
    ratio = (output_ratio,) * d if np.ndim(output_ratio) == 0 else tuple(output_ratio)
    if len(ratio) != d or not all(0 < float(r) < 1 for r in ratio):
        raise ValueError(f"{who}: output_ratio must be a number or a tuple of {d} numbers between 0 and 1 "
                         f"(exclusive), got {output_ratio!r}")
    return tuple(int(s * float(r)) for s, r in zip(size, ratio))


def _check_fits(size, kernel, out, d, who):
    """torch's bounds: out + kernel - 1 <= size in 2d; strictly below size in 3d (kernel >= 1 is ours:
    torch's 2d kernel takes 0 and returns -inf)."""
    if min(kernel) < 1:
        raise ValueError(f"{who}: kernel_size must be greater than 0, but got {kernel}")
    for name, s, k, o in zip(_DIM_NAMES[d], size, kernel, out):
        if not (o + k - 1 <= s if d == 2 else o + k - 1 < s):
            need = "<=" if d == 2 else "<"
            raise ValueError(f"{who}: pool {name} {k} too large relative to input {name} {s} (needs output_size + "
                             f"kernel_size - 1 {need} input size; output_size is {o})")


def _samples(random_samples, n, c, d, dtype, who):
    """(n, C, d) samples: the given ones (their first n rows) or fresh draws from the global generator."""
    if random_samples is None:
        draw = dtype if dtype in (np.float32, np.float64) else np.float64
        return get_generator().random((n, c, d), dtype=draw).astype(dtype, copy=False)
    s = np.asarray(random_samples)
    if s.dtype != dtype:
        raise TypeError(f"{who}: expected _random_samples of the input's dtype {dtype}, got {s.dtype}")
    if s.ndim != 3 or s.shape[0] < n or s.shape[1] != c or s.shape[2] != d:
        raise ValueError(f"{who}: expected _random_samples of shape (N, {c}, {d}) with N >= {n} (the batch size), "
                         f"got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{who}: _random_samples must be finite (uniform in [0, 1)), got NaN or infinity")
    return s[:n]


def _window_starts(u, size, out, kernel, who):
    """torch's window starts along one dim for samples ``u`` (N, C): int64 (N, C, out)."""
    last = np.full(u.shape + (min(out, 1),), size - kernel, dtype=np.int64)
    if out <= 1:
        return last
    alpha = u.dtype.type(size - kernel) / u.dtype.type(out - 1)
    i = np.arange(out - 1, dtype=u.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        starts = ((i + u[..., None]) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)[..., None]
    if starts.size and (starts.min() < 0 or starts.max() > size - kernel):  # huge samples round badly
        raise ValueError(f"{who}: _random_samples put windows outside the input (samples belong in [0, 1))")
    return np.concatenate([starts, last], axis=-1)


def fractional_max_pool_nd(input, d, kernel_size, output_size=None, output_ratio=None, _random_samples=None,
                           who=None):
    """Fractional max pooling over the last ``d`` dims: (N, C, *size) or (C, *size) -> (..., *out).

    out = output_size, or int(size * output_ratio) (exactly one of them; ratio in (0, 1)).
    Returns (output, indices): indices int64, flat positions inside each input plane.
    """
    who = who or f"fractional_max_pool{d}d"
    x = _as_input(input, d, who)
    kernel = _ntuple(kernel_size, d, "kernel_size", who)
    size = x.shape[-d:]
    out = _output_size(size, d, output_size, output_ratio, who)
    _check_fits(size, kernel, out, d, who)
    xb = x if x.ndim == d + 2 else x[None]
    n, c = xb.shape[:2]
    samples = _samples(_random_samples, n, c, d, x.dtype, who)

    strides = [math.prod(size[a + 1:]) for a in range(d)]
    planes = (np.arange(n * c, dtype=np.int64) * math.prod(size)).reshape((n, c) + (1,) * d)
    first = planes  # flat position, in the whole array, of each window's first element
    for axis, (col, s, o, k, st) in enumerate(zip(_SAMPLE_COLUMN[d], size, out, kernel, strides)):
        shape = [n, c] + [1] * d
        shape[2 + axis] = o
        first = first + (_window_starts(samples[..., col], s, o, k, who) * st).reshape(shape)
    first = np.broadcast_to(first, (n, c) + out)

    flat = np.ascontiguousarray(xb).reshape(-1)
    best = arg = None
    for offset in np.ndindex(*kernel):
        at = first + sum(t * st for t, st in zip(offset, strides))
        value = flat[at]
        if best is None:
            best, arg = value, at
            continue
        take = (value > best) | np.isnan(value)
        np.copyto(best, value, where=take)
        np.copyto(arg, at, where=take)
    indices = arg - planes
    return (best, indices) if x.ndim == d + 2 else (best[0], indices[0])


def fractional_max_pool_nd_backward(grad_output, indices, input_shape, d):
    """dx of ``fractional_max_pool_nd`` over ``d`` spatial dims: each output's gradient added at its index.

    grad_output and indices (N, C, *out) or (C, *out); ``input_shape`` is the forward input's shape.
    """
    grad = np.asarray(grad_output)
    if grad.dtype.kind != "f":
        grad = grad.astype(get_default_dtype())
    index = np.asarray(indices)
    input_shape = tuple(input_shape)
    if grad.shape != index.shape or len(input_shape) != index.ndim or input_shape[:-d] != index.shape[:-d]:
        raise ValueError(f"fractional_max_pool{d}d_backward: expected grad_output of the indices' shape "
                         f"{index.shape} and an input of the same leading dims, got {grad.shape} and input "
                         f"shape {input_shape}")
    lead, plane = input_shape[:-d], math.prod(input_shape[-d:])
    offsets = (np.arange(math.prod(lead), dtype=np.int64) * plane).reshape(lead + (1,) * d)
    # bincount sums in float64 and is one pass; np.add.at would keep the dtype but is ~20x slower
    total = np.bincount((index + offsets).ravel(), weights=grad.ravel(), minlength=math.prod(input_shape))
    return total.astype(grad.dtype, copy=False).reshape(input_shape)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                                       _random_samples=None):
    """(output, indices) of ``fractional_max_pool2d``, whatever ``return_indices`` says (as torch)."""
    return fractional_max_pool_nd(input, 2, kernel_size, output_size, output_ratio, _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                                       _random_samples=None):
    """(output, indices) of ``fractional_max_pool3d``, whatever ``return_indices`` says (as torch)."""
    return fractional_max_pool_nd(input, 3, kernel_size, output_size, output_ratio, _random_samples)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional max pooling over H, W: (N, C, H, W) or (C, H, W) -> (..., oH, oW).

    kernel_size int or (kH, kW); exactly one of output_size (int or (oH, oW), with
    oH + kH - 1 <= H) and output_ratio (number or pair in (0, 1): oH = int(H * ratio)).
    _random_samples (N, C, 2) in the input's dtype, read as (u_W, u_H); drawn from
    ``torchlite.random.get_generator()`` when None. With ``return_indices`` also the int64 indices.
    """
    out = fractional_max_pool_nd(input, 2, kernel_size, output_size, output_ratio, _random_samples)
    return out if return_indices else out[0]


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional max pooling over D, H, W: (N, C, D, H, W) or (C, D, H, W) -> (..., oD, oH, oW).

    As ``fractional_max_pool2d`` with triples, except torch's stricter bound oD + kD - 1 < D
    (each dim); _random_samples (N, C, 3) read as (u_D, u_H, u_W).
    """
    out = fractional_max_pool_nd(input, 3, kernel_size, output_size, output_ratio, _random_samples)
    return out if return_indices else out[0]


def fractional_max_pool2d_backward(grad_output, indices, input_shape):
    """dx of ``fractional_max_pool2d`` from its indices: (N, C, oH, oW) -> ``input_shape``."""
    return fractional_max_pool_nd_backward(grad_output, indices, input_shape, 2)


def fractional_max_pool3d_backward(grad_output, indices, input_shape):
    """dx of ``fractional_max_pool3d`` from its indices: (N, C, oD, oH, oW) -> ``input_shape``."""
    return fractional_max_pool_nd_backward(grad_output, indices, input_shape, 3)

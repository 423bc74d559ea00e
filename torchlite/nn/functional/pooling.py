"""Pooling, 1d/2d/3d from one N-d implementation: max, average, adaptive, LP and max-unpooling.

Inputs are (N, C, *spatial) or unbatched (C, *spatial); the last d dims are pooled. A window
is visited as its kernel taps: tap t is the strided slice ``x[..., t*dilation :: stride]``, so
max and average pooling are kernel-size passes of whole-array ufuncs, with no im2col copy.
Max pooling records which tap won (the first maximum in window order, as torch, so ties after
a ReLU send the gradient to one element), and its backward writes the gradient tap by tap.
``indices`` follow torch: flat positions inside each (unpadded) input plane.
"""
import math
from collections import namedtuple

import numpy as np

from ..._dtype import get_default_dtype
from ._layout import empty_nd, is_channels_last
from .conv import _ntuple
from .upsampling import interpolate, interpolate_backward, upsample, upsample_bilinear, upsample_nearest

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
    "max_pool3d_with_indices", "max_pool_nd", "max_pool_nd_backward",
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "avg_pool_nd", "avg_pool_nd_backward",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_avg_pool_nd",
    "adaptive_avg_pool_nd_backward", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_max_pool_nd", "adaptive_max_pool_nd_backward", "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "max_unpool_nd", "max_unpool_nd_backward", "lp_pool1d", "lp_pool2d", "lp_pool3d", "lp_pool_nd",
    "lp_pool_nd_backward", "interpolate", "interpolate_backward", "PoolContext",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
    "upsample", "upsample_nearest", "upsample_bilinear", "max_pool_blocks", "max_pool_blocks_backward",
]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}

PoolContext = namedtuple("PoolContext", ["geometry", "input_shape", "dtype", "saved", "channels_last"],
                         defaults=(False,))
PoolContext.__doc__ = ("What a pooling backward needs: geometry, input shape and dtype, its own saved array, and "
                       "whether the input was a view of channels-last memory (the gradient comes back so too).")


class _PoolGeometry(namedtuple("_PoolGeometry", "size kernel stride padding dilation out")):
    """Window layout over the last d dims; the padded array spans ``extent`` per dim."""

    @property
    def extent(self):
        """Padded size covering every window (ceil_mode windows may run past the right padding)."""
        return tuple(max(s + 2 * p, (o - 1) * st + dl * (k - 1) + 1)
                     for s, p, o, st, dl, k in zip(self.size, self.padding, self.out, self.stride, self.dilation,
                                                   self.kernel))

    @property
    def padded(self):
        return any(e != s for e, s in zip(self.extent, self.size))

    @property
    def overlapping(self):
        return any(dl * (k - 1) >= st for k, st, dl in zip(self.kernel, self.stride, self.dilation))

    @property
    def tiled(self):
        """Windows cover the padded array exactly once (kernel == stride, nothing left over)."""
        return all(k == st and (dl == 1 or k == 1) and o * st == e for k, st, dl, o, e in
                   zip(self.kernel, self.stride, self.dilation, self.out, self.extent))

    def windows(self):
        """(tap number, index tuple selecting that tap of every window) over the padded array."""
        for t, offset in enumerate(np.ndindex(*self.kernel)):
            yield t, (Ellipsis,) + tuple(slice(k * dl, k * dl + st * (o - 1) + 1, st)
                                         for k, dl, st, o in zip(offset, self.dilation, self.stride, self.out))

    def interior(self):
        return (Ellipsis,) + tuple(slice(p, p + s) for p, s in zip(self.padding, self.size))


def _check_input(x, d, who, keep_integers=False):
    """``x`` as an array of (N, C, *spatial) or (C, *spatial), floating unless ``keep_integers``."""
    x = np.asarray(x)
    if x.ndim not in (d + 1, d + 2) or 0 in x.shape[-d:]:
        raise ValueError(f"{who}: expected input (N, C, {_SPATIAL[d]}) or (C, {_SPATIAL[d]}) with non-empty "
                         f"spatial dims, got shape {x.shape}")
    if x.dtype.kind != "f" and not (keep_integers and x.dtype.kind in "iu"):
        x = x.astype(get_default_dtype())
    return x


def _pool_geometry(shape, d, kernel_size, stride, padding, dilation, ceil_mode, who, avg=False):
    kernel = _ntuple(kernel_size, d, "kernel_size", who)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
        _ntuple(stride, d, "stride", who)
    padding = _ntuple(padding, d, "padding", who)
    dilation = _ntuple(dilation, d, "dilation", who)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{who}: kernel_size, stride and dilation must be positive and padding non-negative, got "
                         f"kernel_size={kernel}, stride={stride}, padding={padding}, dilation={dilation}")
    for k, p, dl in zip(kernel, padding, dilation):
        if avg and p > k // 2:
            raise ValueError(f"{who}: pad should be at most half of kernel size, but got pad={p}, kernel_size={k}")
        if not avg and p > (dl * (k - 1) + 1) // 2:
            raise ValueError(f"{who}: pad should be at most half of effective kernel size, but got pad={p}, "
                             f"kernel_size={k} and dilation={dl}")
    size = tuple(shape[-d:])
    out = []
    for s, k, st, p, dl in zip(size, kernel, stride, padding, dilation):
        o = (s + 2 * p - dl * (k - 1) - 1 + (st - 1 if ceil_mode else 0)) // st + 1
        if ceil_mode and (o - 1) * st >= s + p:
            o -= 1
        out.append(o)
    if min(out) < 1:
        raise ValueError(f"{who}: given input size {size}, the calculated output size {tuple(out)} is too small "
                         f"(kernel_size={kernel}, stride={stride}, padding={padding}, dilation={dilation})")
    return _PoolGeometry(size, kernel, stride, padding, dilation, tuple(out))


def _pad_to(x, geo, value):
    """``x`` inside an array of ``geo.extent`` filled with ``value`` (``x`` itself when nothing is added)."""
    if not geo.padded:
        return x
    xp = np.full(x.shape[:-len(geo.size)] + geo.extent, value, dtype=x.dtype)
    xp[geo.interior()] = x
    return xp


def _plane_strides(size):
    """Row-major strides, in elements, of an array of spatial ``size``."""
    return tuple(math.prod(size[i + 1:]) for i in range(len(size)))


def _tap_dtype(taps):
    return np.uint8 if taps < 256 else np.int32


# ------------------------------------------------------------------------------ max pooling
def max_pool_nd(input, d, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
                return_context=False, who=None):
    """Max over each window of the last ``d`` dims: (N, C, *size) or (C, *size) -> (..., *out).

    out = (size + 2*padding - dilation*(kernel-1) - 1) / stride + 1, rounded down (up with
    ceil_mode, keeping the last window starting inside the input or left padding).
    Returns out, then the int64 indices if ``return_indices``, then the PoolContext for
    ``max_pool_nd_backward`` if ``return_context``.
    """
    who = who or f"max_pool{d}d"
    x = _check_input(input, d, who, keep_integers=True)  # a max of integers stays integer, as torch
    geo = _pool_geometry(x.shape, d, kernel_size, stride, padding, dilation, ceil_mode, who)
    xp = _pad_to(x, geo, -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min)
    need_arg = return_indices or return_context
    # a channels-last input gives a channels-last output, as torch: every tap pass then runs on
    # matching layouts (a transposing write per pass otherwise)
    channels_last = x.ndim == d + 2 and is_channels_last(xp)
    best = empty_nd(xp.shape[:-d] + geo.out, x.dtype, channels_last)
    arg = np.empty_like(best, dtype=_tap_dtype(math.prod(geo.kernel))) if need_arg else None

    views = [xp[w] for _, w in geo.windows()]
    if need_arg:
        _max_and_first_tap(views, best, arg)
    else:
        _running_max(views, best)
    result = [best]
    if return_indices:
        result.append(_flat_indices(arg, geo))
    if return_context:
        result.append(PoolContext(geo, x.shape, x.dtype, arg, channels_last))
    return result[0] if len(result) == 1 else tuple(result)


def _running_max(views, best):
    np.copyto(best, views[0])
    for v in views[1:]:
        np.maximum(best, v, out=best)


def _max_and_first_tap(views, best, arg):
    """Max over the taps into ``best`` and, per window, the first tap holding it into ``arg``
    (the last NaN if any, as torch).

    A later tap replaces the running max only when strictly greater, so the winner is the
    largest t whose tap beat the running max: max over t of t * beat_t, in uint8 arithmetic
    (np.where, putmask and copyto(where=) are each about 10x slower than these ufuncs).
    """
    # a strided tap is copied once into a buffer laid out as ``best``: the compare and max then run
    # vectorized (a 2x2 pool of 64x32x28x28: 1.71 -> 1.18 ms, against reading the strided tap twice);
    # a tap already laid out so (a block of F.conv_nd_blocks) is read as it is
    dtype = arg.dtype.type
    buffer = np.empty_like(best)
    beat = np.empty_like(best, dtype=np.bool_)
    step = np.empty_like(arg)
    np.copyto(best, views[0])
    arg.fill(0)
    for t, v in enumerate(views[1:], 1):
        tap = v if v.strides == best.strides else buffer
        if tap is buffer:
            np.copyto(buffer, v)
        np.greater(tap, best, out=beat)
        np.maximum(best, tap, out=best)
        np.multiply(beat.view(np.uint8), dtype(t), out=step, casting="unsafe")
        np.maximum(arg, step, out=arg)
    nan = np.isnan(best)
    if nan.any():
        last_nan = np.zeros_like(arg)
        for t, v in enumerate(views):
            np.maximum(last_nan, np.isnan(v).view(np.uint8) * dtype(t), out=last_nan)
        np.copyto(arg, last_nan, where=nan)


def _flat_indices(arg, geo):
    """Flat index inside each unpadded input plane of the tap ``arg`` of every window."""
    plane = _plane_strides(geo.size)
    offsets = np.array([sum(t * dl * st for t, dl, st in zip(offset, geo.dilation, plane))
                        for offset in np.ndindex(*geo.kernel)], dtype=np.int64)
    index = offsets[arg]
    d = len(geo.size)
    for axis, (o, st, p, ps) in enumerate(zip(geo.out, geo.stride, geo.padding, plane)):
        shape = [1] * d
        shape[axis] = o
        index += ((np.arange(o) * st - p) * ps).reshape(shape)
    return index


def max_pool_nd_backward(grad_output, ctx):
    """dx of ``max_pool_nd`` from its context: each window's gradient goes to its winning tap."""
    geo, arg = ctx.geometry, ctx.saved
    grad = np.asarray(grad_output, dtype=ctx.dtype)
    if grad.shape != arg.shape:
        raise ValueError(f"max_pool{len(geo.size)}d_backward: expected grad_output of shape {arg.shape}, "
                         f"got {grad.shape}")
    # grad * (arg == t) rather than np.where: 10x faster; differs only for non-finite upstream gradients.
    # The mask is cast to the float dtype first: float * float runs 1.4x faster than float * bool.
    dxp = empty_nd(ctx.input_shape[:-len(geo.size)] + geo.extent, ctx.dtype, ctx.channels_last, zero=not geo.tiled)
    grad, mask = _grad_and_mask(grad, arg)
    for t, w in geo.windows():
        np.copyto(mask, arg == t)
        if geo.overlapping:
            mask *= grad
            dxp[w] += mask
        else:
            np.multiply(grad, mask, out=dxp[w])
    return np.ascontiguousarray(dxp[geo.interior()]) if geo.padded else dxp


def max_pool_blocks(blocks, return_context=False):
    """Max over axis 0 of ``blocks`` (T, N, C, *out), a convolution's output grouped by window tap
    (``F.conv_nd_blocks``): the max pool over those windows, first maximum winning and NaN propagating
    as in ``max_pool_nd``. Returns (N, C, *out) laid out as one block, and with ``return_context`` the
    winning taps that ``max_pool_blocks_backward`` takes.
    """
    best = np.empty_like(blocks[0])
    if not return_context:
        _running_max(blocks, best)
        return best
    arg = np.empty_like(best, dtype=_tap_dtype(len(blocks)))
    _max_and_first_tap(blocks, best, arg)
    return best, arg


def max_pool_blocks_backward(grad_output, arg, taps, dtype):
    """The gradient of ``max_pool_blocks``' input, (taps, N, C, *out) as a view of (taps, N, *out, C)
    memory (the layout ``conv_nd_blocks`` makes), from grad_output (N, C, *out) and the winning taps ``arg``."""
    grad = np.asarray(grad_output, dtype=dtype)
    if grad.shape != arg.shape:
        raise ValueError(f"max_pool{arg.ndim - 2}d_backward: expected grad_output of shape {arg.shape}, "
                         f"got {grad.shape}")
    n, c, *out = arg.shape
    blocks = np.moveaxis(np.empty((taps, n) + tuple(out) + (c,), dtype), -1, 2)
    grad, mask = _grad_and_mask(grad, arg)
    for t in range(taps):
        np.copyto(mask, arg == t)  # float * float: faster than float * bool (see max_pool_nd_backward)
        np.multiply(grad, mask, out=blocks[t])
    return blocks


def _grad_and_mask(grad, arg):
    """``grad`` in ``arg``'s layout (the forward took it from its input) and a float mask buffer laid out
    the same: a gradient of the other layout is copied once, not read transposed in every tap pass."""
    mask = np.empty_like(arg, dtype=grad.dtype)
    if is_channels_last(grad) != is_channels_last(arg):
        np.copyto(mask, grad)
        grad, mask = mask, np.empty_like(mask)
    return grad, mask


def _scatter_taps(per_tap, input_shape, dtype, geo):
    """dx holding at each window tap t the values ``per_tap(t)``, summed where windows overlap.

    ``per_tap(t, out=view)`` must write into ``view``; without ``out`` it returns the values.
    """
    dxp = (np.empty if geo.tiled else np.zeros)(input_shape[:-len(geo.size)] + geo.extent, dtype=dtype)
    for t, w in geo.windows():
        view = dxp[w]
        if geo.overlapping:
            view += per_tap(t)
        else:
            per_tap(t, out=view)
    return np.ascontiguousarray(dxp[geo.interior()]) if geo.padded else dxp


def _max_pool(d, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    return max_pool_nd(input, d, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over L: (N, C, L) -> (N, C, L_out); with ``return_indices`` also the indices."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over H, W: (N, C, H, W) -> (N, C, H_out, W_out); with ``return_indices`` also the indices."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over D, H, W: (N, C, D, H, W) -> (N, C, *out); with ``return_indices`` also the indices."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """(output, indices) of ``max_pool1d``, whatever ``return_indices`` says (as torch)."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """(output, indices) of ``max_pool2d``, whatever ``return_indices`` says (as torch)."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """(output, indices) of ``max_pool3d``, whatever ``return_indices`` says (as torch)."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, True)


# ------------------------------------------------------------------------------ average pooling
def _divisor(geo, ceil_padding_counts, count_include_pad, divisor_override, dtype):
    """Per-window divisor: override, or the window's size clipped to the padded (or real) input."""
    if divisor_override is not None:
        return dtype.type(divisor_override)
    d = len(geo.size)
    total = np.ones((1,) * d, dtype=np.int64)
    for axis, (s, k, st, p, o) in enumerate(zip(geo.size, geo.kernel, geo.stride, geo.padding, geo.out)):
        start = np.arange(o) * st - p
        end = np.minimum(start + k, s + p)
        if not count_include_pad:
            end = np.minimum(end, s)
            start = np.maximum(start, 0)
        elif not ceil_padding_counts:
            start = np.maximum(start, -p)
        shape = [1] * d
        shape[axis] = o
        total = total * (end - start).reshape(shape)
    return total.astype(dtype)


def avg_pool_nd(input, d, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None, return_context=False, who=None):
    """Mean over each window of the last ``d`` dims: (N, C, *size) or (C, *size) -> (..., *out).

    Zero padding; count_include_pad counts padded positions in the divisor (never the part of
    a ceil_mode window past the padding); divisor_override replaces the divisor.
    """
    who = who or f"avg_pool{d}d"
    x = _check_input(input, d, who)
    geo = _pool_geometry(x.shape, d, kernel_size, stride, padding, 1, ceil_mode, who, avg=True)
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{who}: divisor must be not zero")
    divisor = _divisor(geo, True, count_include_pad, divisor_override, x.dtype)
    xp = _pad_to(x, geo, 0)
    total = None
    for _, w in geo.windows():
        total = xp[w].copy() if total is None else np.add(total, xp[w], out=total)
    total /= divisor
    if return_context:
        return total, PoolContext(geo, x.shape, x.dtype, divisor)
    return total


def avg_pool_nd_backward(grad_output, ctx):
    """dx of ``avg_pool_nd``: every tap of a window gets grad / divisor."""
    geo = ctx.geometry
    grad = np.asarray(grad_output, dtype=ctx.dtype)
    expected = ctx.input_shape[:-len(geo.size)] + geo.out
    if grad.shape != expected:
        raise ValueError(f"avg_pool{len(geo.size)}d_backward: expected grad_output of shape {expected}, "
                         f"got {grad.shape}")
    share = grad / ctx.saved

    def put(t, out=None):
        if out is None:
            return share
        out[...] = share

    return _scatter_taps(put, ctx.input_shape, ctx.dtype, geo)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling over L: (N, C, L) -> (N, C, L_out)."""
    return avg_pool_nd(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling over H, W: (N, C, H, W) -> (N, C, H_out, W_out)."""
    return avg_pool_nd(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling over D, H, W: (N, C, D, H, W) -> (N, C, *out)."""
    return avg_pool_nd(input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


# ------------------------------------------------------------------------------ LP pooling
def lp_pool_nd(input, d, norm_type, kernel_size, stride=None, ceil_mode=False, return_context=False, who=None):
    """(sum of x**p over each window) ** (1/p), computed as torch does: (avg_pool(x**p) * k) ** (1/p);
    norm_type=inf is the max of |x| over each window, as torch."""
    who = who or f"lp_pool{d}d"
    x = _check_input(input, d, who)
    if norm_type == math.inf:
        y, max_ctx = max_pool_nd(np.abs(x), d, kernel_size, stride, 0, 1, ceil_mode, return_context=True, who=who)
        saved = (max_ctx, x, None, math.inf, None)
        return (y, PoolContext(max_ctx.geometry, x.shape, x.dtype, saved)) if return_context else y
    p = x.dtype.type(norm_type)
    taps = x.dtype.type(math.prod(_ntuple(kernel_size, d, "kernel_size", who)))
    powered = np.power(x, p)
    mean, ctx = avg_pool_nd(powered, d, kernel_size, stride, 0, ceil_mode, return_context=True, who=who)
    y = np.power(mean * taps, 1 / p)
    if return_context:
        return y, PoolContext(ctx.geometry, x.shape, x.dtype, (ctx, x, mean, p, taps))
    return y


def lp_pool_nd_backward(grad_output, ctx):
    """dx of ``lp_pool_nd`` by the chain rule through the power, the average and the root."""
    avg_ctx, x, mean, p, taps = ctx.saved
    grad = np.asarray(grad_output, dtype=ctx.dtype)
    if p == math.inf:  # the max of |x|: the gradient goes to each window's first largest |x|, signed
        return max_pool_nd_backward(grad, avg_ctx) * np.sign(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_mean = grad * taps * (1 / p) * np.power(mean * taps, 1 / p - 1)
        d_mean[mean == 0] = 0  # torch's sign(0) = 0: a window summing to 0 passes no gradient
        return avg_pool_nd_backward(d_mean, avg_ctx) * p * np.power(x, p - 1)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over L: (N, C, L) -> (N, C, L_out)."""
    return lp_pool_nd(input, 1, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over H, W: (N, C, H, W) -> (N, C, H_out, W_out)."""
    return lp_pool_nd(input, 2, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over D, H, W: (N, C, D, H, W) -> (N, C, *out)."""
    return lp_pool_nd(input, 3, norm_type, kernel_size, stride, ceil_mode)


# ------------------------------------------------------------------------------ adaptive pooling
def _adaptive_sizes(x, d, output_size, who):
    out = _ntuple(tuple(s if s is not None else -1 for s in output_size)
                  if isinstance(output_size, (tuple, list)) else output_size, d, "output_size", who)
    out = tuple(s if o == -1 else o for o, s in zip(out, x.shape[-d:]))
    if min(out) < 1:
        raise ValueError(f"{who}: output_size must be positive, got {output_size!r}")
    return out


def _bins(size, out):
    """torch's adaptive windows along one axis: [floor(i*size/out), ceil((i+1)*size/out))."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _mean_matrix(size, out, dtype):
    start, end = _bins(size, out)
    cols = np.arange(size)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _apply_axis(x, matrix, axis):
    """``matrix`` (out, size) applied along ``axis`` of x."""
    return np.moveaxis(np.moveaxis(x, axis, -1) @ matrix.T, -1, axis)


def adaptive_avg_pool_nd(input, d, output_size, return_context=False, who=None):
    """Mean over torch's adaptive windows: (N, C, *size) -> (N, C, *output_size); None keeps a size.

    The windows of different dims are independent, so the mean is one small averaging
    matrix applied per dim.
    """
    who = who or f"adaptive_avg_pool{d}d"
    x = _check_input(input, d, who)
    out = _adaptive_sizes(x, d, output_size, who)
    matrices = [_mean_matrix(s, o, x.dtype) for s, o in zip(x.shape[-d:], out)]
    y = x
    for axis, m in zip(range(-d, 0), matrices):
        y = _apply_axis(y, m, axis)
    y = np.ascontiguousarray(y)
    if return_context:
        return y, PoolContext(d, x.shape, x.dtype, matrices)
    return y


def adaptive_avg_pool_nd_backward(grad_output, ctx):
    """dx of ``adaptive_avg_pool_nd``: the averaging matrices transposed."""
    grad = np.asarray(grad_output, dtype=ctx.dtype)
    for axis, m in zip(range(-ctx.geometry, 0), ctx.saved):
        grad = _apply_axis(grad, m.T, axis)
    return np.ascontiguousarray(grad)


def adaptive_max_pool_nd(input, d, output_size, return_indices=False, return_context=False, who=None):
    """Max over torch's adaptive windows: (N, C, *size) -> (N, C, *output_size).

    Max (and the first maximum's position) is taken one dim at a time, last dim first, which
    picks the first maximum in row-major window order as torch does.
    """
    who = who or f"adaptive_max_pool{d}d"
    x = _check_input(input, d, who)
    out = _adaptive_sizes(x, d, output_size, who)
    plane = _plane_strides(x.shape[-d:])
    values, index = x, None
    for axis in range(-1, -d - 1, -1):
        size, o = x.shape[axis], out[axis]
        start, end = _bins(size, o)
        shape = [1] * d
        shape[axis] = o
        best = best_index = None
        for t in range(int(np.max(end - start))):
            pos = np.minimum(start + t, end - 1)
            v = np.take(values, pos, axis=axis)
            i = (pos * plane[axis]).reshape(shape)
            if index is not None:
                i = np.take(index, pos, axis=axis) + i
            if best is None:
                best, best_index = v.copy(), np.broadcast_to(i, v.shape).copy()
                continue
            take = (v > best) | np.isnan(v)
            np.copyto(best, v, where=take)
            np.copyto(best_index, i, where=take)
        values, index = best, best_index
    result = [values]
    if return_indices:
        result.append(index.astype(np.int64))
    if return_context:
        result.append(PoolContext(d, x.shape, x.dtype, index))
    return result[0] if len(result) == 1 else tuple(result)


def _scatter_add(values, index, input_shape, d):
    """Sum ``values`` into zeros of ``input_shape`` at flat in-plane positions ``index`` (last d dims)."""
    plane = math.prod(input_shape[-d:])
    planes = math.prod(input_shape[:-d])
    offsets = (np.arange(planes, dtype=np.int64) * plane).reshape(input_shape[:-d] + (1,) * d)
    flat = np.bincount((index + offsets).ravel(), weights=values.ravel(), minlength=planes * plane)
    return flat.astype(values.dtype, copy=False).reshape(input_shape)


def adaptive_max_pool_nd_backward(grad_output, ctx):
    """dx of ``adaptive_max_pool_nd``: each window's gradient to its maximum (windows may overlap)."""
    grad = np.asarray(grad_output, dtype=ctx.dtype)
    if grad.shape != ctx.saved.shape:
        raise ValueError(f"adaptive_max_pool_backward: expected grad_output of shape {ctx.saved.shape}, "
                         f"got {grad.shape}")
    return _scatter_add(grad, ctx.saved, ctx.input_shape, ctx.geometry)


def adaptive_avg_pool1d(input, output_size):
    """Adaptive average pooling: (N, C, L) -> (N, C, output_size)."""
    return adaptive_avg_pool_nd(input, 1, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling: (N, C, H, W) -> (N, C, *output_size) (int or pair; None keeps a size)."""
    return adaptive_avg_pool_nd(input, 2, output_size)


def adaptive_avg_pool3d(input, output_size):
    """Adaptive average pooling: (N, C, D, H, W) -> (N, C, *output_size)."""
    return adaptive_avg_pool_nd(input, 3, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive max pooling: (N, C, L) -> (N, C, output_size); with ``return_indices`` also the indices."""
    return adaptive_max_pool_nd(input, 1, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling: (N, C, H, W) -> (N, C, *output_size); with ``return_indices`` also the indices."""
    return adaptive_max_pool_nd(input, 2, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive max pooling: (N, C, D, H, W) -> (N, C, *output_size); with ``return_indices`` also the indices."""
    return adaptive_max_pool_nd(input, 3, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    """(output, indices) of ``adaptive_max_pool1d``, whatever ``return_indices`` says (as torch)."""
    return adaptive_max_pool_nd(input, 1, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    """(output, indices) of ``adaptive_max_pool2d``, whatever ``return_indices`` says (as torch)."""
    return adaptive_max_pool_nd(input, 2, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    """(output, indices) of ``adaptive_max_pool3d``, whatever ``return_indices`` says (as torch)."""
    return adaptive_max_pool_nd(input, 3, output_size, True)


# ------------------------------------------------------------------------------ max unpooling
def _unpool_size(x, d, kernel, stride, padding, output_size, who):
    default = tuple((i - 1) * s - 2 * p + k for i, s, p, k in zip(x.shape[-d:], stride, padding, kernel))
    if output_size is None:
        if min(default) < 0:
            raise ValueError(f"{who}: input {x.shape} with kernel {kernel}, stride {stride} and padding {padding} "
                             f"gives a negative output size {default}")
        return default
    size = tuple(int(v) for v in output_size)
    if len(size) == d + 2:
        size = size[-d:]
    if len(size) != d:
        raise ValueError(f"{who}: output_size should be a sequence containing {d} or {d + 2} elements, "
                         f"but it has a length of {len(size)}")
    for axis, (v, dflt, s) in enumerate(zip(size, default, stride)):
        if not dflt - s < v < dflt + s:
            raise ValueError(f"{who}: invalid output_size {size} (dim {axis} must be between {dflt - s} "
                             f"and {dflt + s})")
    return size


def max_unpool_nd(input, indices, d, kernel_size, stride=None, padding=0, output_size=None, who=None):
    """Partial inverse of max pooling: zeros of the unpooled size with ``input`` put at ``indices``.

    input and indices (N, C, *size) -> (N, C, *out), out = (size-1)*stride - 2*padding + kernel
    unless ``output_size`` is given.
    """
    who = who or f"max_unpool{d}d"
    x = _check_input(input, d, who)
    index = np.asarray(indices)
    if index.shape != x.shape or index.dtype.kind not in "iu":
        raise ValueError(f"{who}: expected integer indices of the input's shape {x.shape}, "
                         f"got {index.dtype} {index.shape}")
    kernel = _ntuple(kernel_size, d, "kernel_size", who)
    stride = kernel if stride is None else _ntuple(stride, d, "stride", who)
    padding = _ntuple(padding, d, "padding", who)
    out = _unpool_size(x, d, kernel, stride, padding, output_size, who)
    plane = math.prod(out)
    if plane == 0:  # nothing to put anywhere, as torch
        return np.zeros(x.shape[:-d] + out, dtype=x.dtype)
    if index.size and (index.min() < 0 or index.max() >= plane):
        bad = int(index.max() if index.max() >= plane else index.min())
        raise ValueError(f"{who}: found an invalid max index {bad} (output plane {out} has {plane} elements)")
    lead = x.shape[:-d]
    y = np.zeros((math.prod(lead), plane), dtype=x.dtype)
    per_row = math.prod(x.shape[-d:])  # explicit: reshape(0, -1) fails on an empty batch
    np.put_along_axis(y, index.reshape(len(y), per_row), x.reshape(len(y), per_row), axis=1)
    return y.reshape(lead + out)


def max_unpool_nd_backward(grad_output, indices, d):
    """dx of ``max_unpool_nd`` over ``d`` spatial dims: the gradient read back at ``indices``."""
    grad = np.asarray(grad_output)
    index = np.asarray(indices)
    rows = math.prod(grad.shape[:-d])
    flat_grad = grad.reshape(rows, math.prod(grad.shape[-d:]))
    return np.take_along_axis(flat_grad, index.reshape(rows, math.prod(index.shape[-d:])), axis=1).reshape(index.shape)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Max unpooling: (N, C, L) -> (N, C, L_out)."""
    return max_unpool_nd(input, indices, 1, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Max unpooling: (N, C, H, W) -> (N, C, H_out, W_out)."""
    return max_unpool_nd(input, indices, 2, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Max unpooling: (N, C, D, H, W) -> (N, C, *out)."""
    return max_unpool_nd(input, indices, 3, kernel_size, stride, padding, output_size)

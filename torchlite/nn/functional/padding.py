"""Padding (constant, reflect, replicate, circular) as torch's ``F.pad``, with its backward.

``pad`` lists (before, after) amounts starting from the LAST dimension, as torch does:
(left, right) pads the last dim, (left, right, top, bottom) the last two. Negative amounts crop.
Non-constant modes are index maps along each padded axis (a gather), so their backward is
the matching scatter-add, done by sorting the map once and summing runs (``np.add.reduceat``).
"""
import numpy as np

__all__ = ["pad", "pad_backward"]

_MODES = ("constant", "reflect", "replicate", "circular")


def _pairs(pad, ndim, mode, who):
    """((axis, before, after), ...) for the padded axes, validated as torch does."""
    try:
        pad = tuple(int(p) for p in pad)
    except TypeError:
        raise TypeError(f"{who}: pad must be a tuple of ints, got {pad!r}") from None
    if len(pad) % 2:
        raise ValueError(f"{who}: padding length must be divisible by 2, got {len(pad)}")
    k = len(pad) // 2
    if k > ndim:
        raise ValueError(f"{who}: padding length {len(pad)} is too large for a {ndim}-d input")
    if mode not in _MODES:
        raise ValueError(f"{who}: mode must be one of {_MODES}, got {mode!r}")
    if mode != "constant" and not (1 <= k <= 3 and ndim in (k + 1, k + 2)):
        raise ValueError(f"{who}: {mode} padding of {k} dims needs a {k + 1}-d or {k + 2}-d input "
                         f"(padding size {len(pad)}), got {ndim}-d")
    return tuple((ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(k))


def _index_map(size, before, after, mode, who):
    """Source index for each output position along one axis."""
    out = size + before + after
    if out <= 0:
        raise ValueError(f"{who}: padding ({before}, {after}) leaves no elements of a dimension of size {size}")
    if mode == "reflect":
        if before >= size or after >= size:
            raise ValueError(f"{who}: reflect padding ({before}, {after}) must be smaller than the "
                             f"dimension it pads ({size})")
        i = np.arange(-before, size + after)
        i = np.abs(i)
        return np.where(i >= size, 2 * (size - 1) - i, i)
    if mode == "replicate":
        if size == 0:
            raise ValueError(f"{who}: cannot replicate-pad an empty dimension")
        return np.clip(np.arange(-before, size + after), 0, size - 1)
    # circular: crop negative amounts first, then wrap around what is left (torch's order)
    kept = np.arange(max(-before, 0), size - max(-after, 0))
    if max(before, 0) > len(kept) or max(after, 0) > len(kept):
        raise ValueError(f"{who}: circular padding ({before}, {after}) wraps around more than once "
                         f"(dimension of size {size})")
    return kept[np.arange(-max(before, 0), len(kept) + max(after, 0)) % len(kept)]


def pad(input, pad, mode="constant", value=None):
    """Pad ``input`` by ``pad`` = (last_before, last_after, prev_before, prev_after, ...).

    mode: 'constant' (with ``value``, default 0; any number of dims), 'reflect' (mirror,
    edge not repeated), 'replicate' (repeat the edge) or 'circular' (wrap around); the last
    three pad the last 1-3 dims of an input with one or two leading dims.
    """
    x = np.asarray(input)
    pairs = _pairs(pad, x.ndim, mode, "pad")
    if mode == "constant":
        return _constant(x, pairs, 0 if value is None else value)
    if value not in (None, 0):
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    for axis, before, after in pairs:
        x = np.take(x, _index_map(x.shape[axis], before, after, mode, "pad"), axis=axis)
    return x


def _constant(x, pairs, value):
    crop = [slice(None)] * x.ndim
    shape = list(x.shape)
    place = [slice(None)] * x.ndim
    for axis, before, after in pairs:
        size = x.shape[axis]
        if size + min(before, 0) + min(after, 0) < 0:  # torch crops first, then pads
            raise ValueError(f"pad: padding ({before}, {after}) crops more than a dimension of size {size}")
        crop[axis] = slice(max(-before, 0), size - max(-after, 0))
        shape[axis] = size + before + after
        place[axis] = slice(max(before, 0), max(before, 0) + max(size - max(-before, 0) - max(-after, 0), 0))
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(place)] = x[tuple(crop)]
    return out


def _take_backward(grad, index, size, axis):
    """Adjoint of ``np.take(x, index, axis)`` for an x with ``size`` entries along ``axis``."""
    order = np.argsort(index, kind="stable")
    ordered = index[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sums = np.add.reduceat(np.take(grad, order, axis=axis), starts, axis=axis)
    if len(starts) == size:
        return sums
    shape = list(grad.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=grad.dtype)
    where = [slice(None)] * grad.ndim
    where[axis] = ordered[starts]
    out[tuple(where)] = sums
    return out


def pad_backward(grad_output, input_shape, pad, mode="constant"):
    """Gradient of ``pad`` with respect to its input (of shape ``input_shape``)."""
    grad = np.asarray(grad_output)
    input_shape = tuple(input_shape)
    pairs = _pairs(pad, len(input_shape), mode, "pad_backward")
    expected = list(input_shape)
    for axis, before, after in pairs:
        expected[axis] += before + after
    if grad.shape != tuple(expected):
        raise ValueError(f"pad_backward: expected grad_output of shape {tuple(expected)}, got {grad.shape}")
    if mode == "constant":
        crop = [slice(None)] * grad.ndim
        for axis, before, after in pairs:
            crop[axis] = slice(max(before, 0), grad.shape[axis] - max(after, 0))
        inner = grad[tuple(crop)]
        back = [(axis, -min(before, 0), -min(after, 0)) for axis, before, after in pairs]
        return _constant(inner, back, 0) if any(b or a for _, b, a in back) else inner.copy()
    sizes = list(input_shape)
    for axis, before, after in reversed(pairs):
        index = _index_map(sizes[axis], before, after, mode, "pad_backward")
        grad = _take_backward(grad, index, sizes[axis], axis)
    return grad

"""Unfold (im2col) and fold (col2im) of 2-d images, each the other's backward.

``unfold``: (N, C, H, W) -> (N, C*kh*kw, L), column ``l`` holding the (dilated) kernel window
at block ``l`` (row-major over the (oh, ow) grid of blocks), channels outermost, as torch.
``fold``: (N, C*kh*kw, L) -> (N, C, H, W), summing overlapping entries. Unbatched inputs drop N.

Unfold is one strided view of the padded input, copied once; fold is kh*kw slice-adds into
the padded output, never a loop over pixels or samples.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["unfold", "unfold_backward", "fold", "fold_backward"]


def _pair(value, name, who):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * 2
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        out = ()
    if len(out) != 2:
        raise ValueError(f"{who}: {name} must be an int or a tuple of 2 ints, got {value!r}")
    return out


def _geometry(kernel_size, dilation, padding, stride, who):
    k, d = _pair(kernel_size, "kernel_size", who), _pair(dilation, "dilation", who)
    p, s = _pair(padding, "padding", who), _pair(stride, "stride", who)
    for name, v, least in (("kernel_size", k, 1), ("dilation", d, 1), ("padding", p, 0), ("stride", s, 1)):
        if min(v) < least:
            raise ValueError(f"{who}: {name} should be {'non-negative' if least == 0 else 'greater than zero'}, "
                             f"but got {name}={v}")
    return k, d, p, s


def _blocks(size, k, d, p, s):
    """The (oh, ow) grid of sliding blocks over an image of spatial ``size``."""
    return tuple((n + 2 * pad - dl * (kk - 1) - 1) // st + 1 for n, kk, dl, pad, st in zip(size, k, d, p, s))


def _describe(k, d, p, s):
    return f"kernel_size={k}, dilation={d}, padding={p}, stride={s}"


def _unfold(input, kernel_size, dilation, padding, stride, who):
    k, d, p, s = _geometry(kernel_size, dilation, padding, stride, who)
    x = np.asarray(input)
    if x.ndim not in (3, 4) or 0 in x.shape[-3:]:
        raise ValueError(f"{who}: expected input (N, C, H, W) or (C, H, W) with non-zero C, H, W, "
                         f"got shape {x.shape}")
    batched = x.ndim == 4
    x = x if batched else x[None]
    n, c, h, w = x.shape
    blocks = _blocks((h, w), k, d, p, s)
    if min(blocks) < 1:
        raise ValueError(f"{who}: given input with spatial size {(h, w)}, {_describe(k, d, p, s)}, calculated "
                         f"shape of the array of sliding blocks as {blocks}, but its components must be at least one")
    if any(p):
        xp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), x.dtype)
        xp[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
    else:
        xp = x
    sn, sc, sh, sw = xp.strides
    view = as_strided(xp, (n, c) + k + blocks, (sn, sc, d[0] * sh, d[1] * sw, s[0] * sh, s[1] * sw), writeable=False)
    cols = np.array(view).reshape(n, c * k[0] * k[1], blocks[0] * blocks[1])
    return cols if batched else cols[0]


def _fold(input, output_size, kernel_size, dilation, padding, stride, who):
    k, d, p, s = _geometry(kernel_size, dilation, padding, stride, who)
    size = _pair(output_size, "output_size", who)
    cols = np.asarray(input)
    shape = cols.shape
    if cols.ndim not in (2, 3) or 0 in shape[-2:]:
        raise ValueError(f"{who}: expected input (N, C*kh*kw, L) or (C*kh*kw, L) with non-zero C*kh*kw and L, "
                         f"got shape {shape}")
    batched = cols.ndim == 3
    cols = cols if batched else cols[None]
    n, ck, length = cols.shape
    taps = k[0] * k[1]
    if ck % taps:
        raise ValueError(f"{who}: expected size of input's dimension -2 to be divisible by the product of "
                         f"kernel_size {k}, got shape {shape}")
    blocks = _blocks(size, k, d, p, s)
    if min(blocks) < 1 or blocks[0] * blocks[1] != length:
        raise ValueError(f"{who}: given output_size={size}, {_describe(k, d, p, s)}, expected size of input's "
                         f"last dimension to match the calculated number of sliding blocks "
                         f"{blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got {length}")
    c = ck // taps
    cols = cols.reshape((n, c) + k + blocks)
    out = np.zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]), cols.dtype)
    for i, j in np.ndindex(*k):
        rows = slice(i * d[0], i * d[0] + s[0] * (blocks[0] - 1) + 1, s[0])
        columns = slice(j * d[1], j * d[1] + s[1] * (blocks[1] - 1) + 1, s[1])
        out[:, :, rows, columns] += cols[:, :, i, j]
    out = out[:, :, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]
    out = np.ascontiguousarray(out) if any(p) else out
    return out if batched else out[0]


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks as columns: (N, C, H, W) -> (N, C*kh*kw, L), or (C, H, W) -> (C*kh*kw, L).

    L = oh * ow with o = (size + 2 padding - dilation (k - 1) - 1) // stride + 1 per spatial dim.
    """
    return _unfold(input, kernel_size, dilation, padding, stride, "unfold")


def unfold_backward(grad_output, input_shape, kernel_size, dilation=1, padding=0, stride=1):
    """dx = fold(grad_output) onto the input's spatial size: every tap adds back where it was read."""
    return _fold(grad_output, tuple(input_shape)[-2:], kernel_size, dilation, padding, stride, "unfold_backward")


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Columns back into an image, summing overlaps: (N, C*kh*kw, L) -> (N, C, *output_size).

    Unbatched (C*kh*kw, L) -> (C, *output_size). L must equal the number of blocks unfold would make.
    """
    return _fold(input, output_size, kernel_size, dilation, padding, stride, "fold")


def fold_backward(grad_output, kernel_size, dilation=1, padding=0, stride=1):
    """dx = unfold(grad_output): each column entry reads the output pixel it was added to."""
    return _unfold(grad_output, kernel_size, dilation, padding, stride, "fold_backward")

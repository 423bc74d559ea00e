"""Spatial transformer sampling as torch's ``F.affine_grid`` and ``F.grid_sample``, with backward twins.

``affine_grid`` maps each output pixel's normalized position through a batch of affine matrices;
``grid_sample`` reads the input at such positions, (N, C, *in) and (N, *out, d) -> (N, C, *out),
with bilinear (trilinear for 5-d), nearest or bicubic (4-d only) interpolation and zeros, border
or reflection padding. Coordinates are unnormalized, clipped and reflected with torch's formulas in
the input's precision, so the same pixels are picked and the same one-sided gradients come out
at borders and integer positions.

Every interpolation is a sum over taps: per spatial axis a few (index, weight, d weight / d coord)
triples (nearest 1, linear 2, cubic 4), combined over axes. The forward gathers the taps; the
backward scatters ``grad_output`` back with ``np.bincount`` and sums the weight derivatives
against the gathered values for the grid's gradient.
"""
import itertools
import math
import warnings

import numpy as np

__all__ = ["affine_grid", "affine_grid_backward", "grid_sample", "grid_sample_backward"]

_MODES = ("bilinear", "nearest", "bicubic")
_PADDING_MODES = ("zeros", "border", "reflection")
_CUBIC_A = -0.75  # torch's bicubic constant (OpenCV's; PIL uses -0.5)


def _resolve_align_corners(align_corners, warn):
    if align_corners is None:
        if warn:
            warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners=False since "
                          "1.3.0. Please specify align_corners=True if the old behavior is desired. See the "
                          "documentation of grid_sample for details.", stacklevel=3)
        return False
    return bool(align_corners)


# ---------------------------------------------------------------- affine_grid

def _linspace(steps, align_corners, dtype):
    """torch's linspace_from_neg_one: normalized pixel centres (or corners) along one axis."""
    if steps <= 1:
        return np.zeros(steps, dtype)
    # torch's linspace fills each half from its own end, so both -1 and 1 come out exact
    i = np.arange(steps)
    step = dtype.type(2) / dtype.type(steps - 1)
    r = np.where(i < steps // 2, -1 + step * i.astype(dtype), 1 - step * (steps - 1 - i).astype(dtype))
    if not align_corners:
        r = r * dtype.type(steps - 1) / dtype.type(steps)
    return r.astype(dtype, copy=False)


def _base_grid(spatial, align_corners, dtype):
    """(prod(spatial), d + 1) rows (x, y[, z], 1) of every output position, x along the last axis."""
    axes = np.meshgrid(*[_linspace(s, align_corners, dtype) for s in spatial], indexing="ij")
    columns = list(axes[::-1]) + [np.ones(tuple(spatial), dtype)]
    return np.stack(columns, axis=-1).reshape(-1, len(spatial) + 1)


def _affine_size(size, who):
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise NotImplementedError(f"{who}: only 4D and 5D sizes are supported, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    return size


def affine_grid(theta, size, align_corners=None):
    """Sampling grid of a batch of affine maps, for ``grid_sample``.

    theta (N, 2, 3) with size (N, C, H, W) gives (N, H, W, 2); theta (N, 3, 4) with size
    (N, C, D, H, W) gives (N, D, H, W, 3). Entry [..., :] = theta[n] @ (x, y[, z], 1) for the
    output position's normalized coordinates: pixel centres in (-1, 1), or corners at -1 and 1
    with align_corners=True (None means False, with torch's warning).
    """
    who = "affine_grid"
    align_corners = _resolve_align_corners(align_corners, warn=True)
    theta = np.asarray(theta)
    if theta.dtype.kind != "f":
        raise ValueError(f"{who}: expected theta to have floating point type, but got {theta.dtype}")
    size = _affine_size(size, who)
    d = len(size) - 2
    if theta.ndim != 3 or theta.shape[1:] != (d, d + 1):
        raise ValueError(f"{who}: expected a batch of {d}D affine matrices of shape Nx{d}x{d + 1} for size {size}, "
                         f"got shape {theta.shape}")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"{who}: expected non-zero, positive output size, got {size}")
    if theta.shape[0] != size[0]:
        raise ValueError(f"{who}: expected theta of batch size {size[0]} for size {size}, got shape {theta.shape}")
    base = _base_grid(spatial, align_corners, theta.dtype)
    return np.matmul(base, theta.transpose(0, 2, 1)).reshape(size[0], *spatial, d)


def affine_grid_backward(grad_grid, size, align_corners=None):
    """dtheta (N, d, d + 1) from the gradient of ``affine_grid``'s output (N, *spatial, d).

    The grid is linear in theta, so theta itself is not needed. align_corners None means False.
    """
    who = "affine_grid_backward"
    g = np.asarray(grad_grid)
    size = _affine_size(size, who)
    d = len(size) - 2
    if g.shape != (size[0], *size[2:], d):
        raise ValueError(f"{who}: expected grad_grid of shape {(size[0], *size[2:], d)} for size {size}, "
                         f"got {g.shape}")
    base = _base_grid(size[2:], _resolve_align_corners(align_corners, warn=False), g.dtype)
    return np.matmul(g.reshape(size[0], math.prod(size[2:]), d).transpose(0, 2, 1), base)


# ---------------------------------------------------------------- grid_sample: coordinates

def _unnormalize(coord, size, align_corners):
    """Grid values in [-1, 1] to pixel positions, and d position / d grid value."""
    dtype = coord.dtype.type
    if align_corners:
        return (coord + 1) / 2 * dtype(size - 1), dtype(size - 1) / 2
    return ((coord + 1) * dtype(size) - 1) / 2, dtype(size) / 2


def _clip(x, size):
    """clip_coordinates into [0, size - 1] (NaN to 0, as torch's CPU kernel); gradient 1 strictly inside."""
    inside = (x > 0) & (x < size - 1)
    return np.fmin(np.fmax(x, 0), x.dtype.type(size - 1)), inside


def _reflect(x, size, align_corners):
    """reflect_coordinates: fold x into [low, high] (pixel centres, or pixel edges unless align_corners).

    Returns the folded coordinate and the sign of d folded / d x.
    """
    dtype = x.dtype.type
    if align_corners and size == 1:
        return np.zeros_like(x), np.zeros_like(x)
    low, span = (dtype(0), dtype(size - 1)) if align_corners else (dtype(-0.5), dtype(size))
    rel = x - low
    sign = np.where(rel < 0, dtype(-1), dtype(1))
    rel = np.abs(rel)
    extra = np.fmod(rel, span)
    odd = np.fmod(np.floor(rel / span), 2) == 1
    return np.where(odd, span - extra + low, extra + low), np.where(odd, -sign, sign)


def _pad(x, size, padding_mode, align_corners):
    """compute_coordinates: map a pixel position into the input by the padding rule, and d out / d x."""
    if padding_mode == "zeros":
        return x, None
    mult = None
    if padding_mode == "reflection":
        x, mult = _reflect(x, size, align_corners)
    x, inside = _clip(x, size)
    return x, inside if mult is None else mult * inside


def _index(x, size):
    """Integer index of a whole-valued position, and whether it lies in the input (out: index 0)."""
    valid = (x > -1) & (x < size)
    return np.where(valid, x, 0).astype(np.intp), valid


# ---------------------------------------------------------------- grid_sample: taps per axis

def _cubic_weights(t):
    """Keys' cubic weights of the taps at offsets -1, 0, 1, 2 from floor(x), t = x - floor(x)."""
    a = t.dtype.type(_CUBIC_A)
    far = lambda s: ((a * s - 5 * a) * s + 8 * a) * s - 4 * a  # noqa: E731  1 <= |s| < 2
    near = lambda s: ((a + 2) * s - (a + 3)) * s * s + 1  # noqa: E731  |s| <= 1
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _cubic_slopes(t):
    """d weight / d t of ``_cubic_weights``."""
    a = t.dtype.type(_CUBIC_A)
    far = lambda s: (3 * a * s - 10 * a) * s + 8 * a  # noqa: E731
    near = lambda s: (3 * (a + 2) * s - 2 * (a + 3)) * s  # noqa: E731
    return [far(t + 1), near(t), -near(1 - t), -far(2 - t)]


def _axis_taps(coord, size, mode, padding_mode, align_corners, need_slopes):
    """[(index, valid, weight, d weight / d grid value)] for one spatial axis.

    Nearest and linear pad the position once (its derivative scales the slopes); bicubic pads
    each of its four integer taps, whose positions do not move with the grid value.
    """
    x, scale = _unnormalize(coord, size, align_corners)
    if mode == "bicubic":
        base = np.floor(x)
        t = x - base
        slopes = [s * scale for s in _cubic_slopes(t)] if need_slopes else [None] * 4
        taps = []
        for k, w, s in zip((-1, 0, 1, 2), _cubic_weights(t), slopes):
            index, valid = _index(_pad(base + k, size, padding_mode, align_corners)[0], size)
            taps.append((index, valid, w, s))
        return taps
    x, mult = _pad(x, size, padding_mode, align_corners)
    if mode == "nearest":
        return [(*_index(np.rint(x), size), None, None)]
    base = np.floor(x)
    frac = x - base
    slope = None
    if need_slopes:
        slope = np.full_like(x, scale) if mult is None else mult * scale
    i0, valid0 = _index(base, size)
    i1, valid1 = _index(base + 1, size)
    return [(i0, valid0, 1 - frac, -slope if need_slopes else None), (i1, valid1, frac, slope)]


def _corners(grid, sizes, mode, padding_mode, align_corners, need_slopes):
    """Yield (flat index (N, P), valid, weight, [d weight / d grid[..., k] for each k]) per corner.

    grid[..., 0] is x along the last input axis, grid[..., 1] y along the one before, ...
    """
    d = len(sizes)
    strides = np.cumprod((1,) + sizes[:0:-1])  # flat stride of x, y, z
    points = grid.reshape(grid.shape[0], math.prod(grid.shape[1:-1]), d)
    axes = [_axis_taps(points[..., k], sizes[d - 1 - k], mode, padding_mode, align_corners, need_slopes)
            for k in range(d)]
    for taps in itertools.product(*axes):
        index = sum(i * s for (i, _, _, _), s in zip(taps, strides))
        valid = np.logical_and.reduce([v for _, v, _, _ in taps])
        if mode == "nearest":
            yield index, valid, None, None
            continue
        weight = taps[0][2]
        for tap in taps[1:]:
            weight = weight * tap[2]
        slopes = None
        if need_slopes:
            slopes = []
            for k in range(d):
                s = taps[k][3]
                for j in range(d):
                    if j != k:
                        s = s * taps[j][2]
                slopes.append(s)
        yield index, valid, weight, slopes


# ---------------------------------------------------------------- grid_sample

def _check_sample(input, grid, mode, padding_mode, who):
    if mode not in _MODES:
        raise ValueError(f"{who}: expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: {mode!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"{who}: expected padding_mode to be 'zeros', 'border', or 'reflection', "
                         f"but got: {padding_mode!r}")
    x, g = np.asarray(input), np.asarray(grid)
    if x.dtype.kind != "f" or g.dtype != x.dtype:
        raise TypeError(f"{who}: expected floating point input and grid of the same dtype, "
                        f"got {x.dtype} and {g.dtype}")
    if x.ndim not in (4, 5) or g.ndim != x.ndim:
        raise ValueError(f"{who}: expected 4D or 5D input and grid with the same number of dimensions, "
                         f"got input shape {x.shape} and grid shape {g.shape}")
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"{who}: expected grid and input to have the same batch size, "
                         f"got input shape {x.shape} and grid shape {g.shape}")
    if g.shape[-1] != x.ndim - 2:
        raise ValueError(f"{who}: expected grid to have size {x.ndim - 2} in the last dimension, "
                         f"got grid shape {g.shape}")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{who}: expected input to have non-empty spatial dimensions, got shape {x.shape}")
    if mode == "bicubic" and x.ndim == 5:
        raise ValueError(f"{who}: bicubic interpolation only supports 4D input, got shape {x.shape}")
    return x, g


def _gather(flat, index, valid):
    """flat (N, C, S) at index (N, P) -> (N, C, P); taps outside the input read 0."""
    values = np.take_along_axis(flat, index[:, None, :], axis=2)
    return np.where(valid[:, None, :], values, flat.dtype.type(0))


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample input (N, C, H_in, W_in) at grid (N, H, W, 2) -> (N, C, H, W); 5-d: (N, C, D_in, H_in, W_in)
    at (N, D, H, W, 3) -> (N, C, D, H, W).

    grid[..., 0] is x (width), grid[..., 1] y (height), grid[..., 2] z (depth), normalized so -1
    and 1 are the input's edges (the centres of its corner pixels with align_corners=True; None
    means False, with torch's warning). mode: 'bilinear' (trilinear for 5-d), 'nearest' (half
    to even) or 'bicubic' (4-d only, A = -0.75); padding_mode: 'zeros', 'border' or 'reflection'.
    """
    who = "grid_sample"
    x, g = _check_sample(input, grid, mode, padding_mode, who)
    align_corners = _resolve_align_corners(align_corners, warn=True)
    n, c, *sizes = x.shape
    flat = x.reshape(n, c, math.prod(sizes))
    out = np.zeros((n, c, math.prod(g.shape[1:-1])), x.dtype)
    for index, valid, weight, _ in _corners(g, tuple(sizes), mode, padding_mode, align_corners, False):
        values = _gather(flat, index, valid)
        out += values if weight is None else values * weight[:, None, :]
    return out.reshape(n, c, *g.shape[1:-1])


def grid_sample_backward(grad_output, input, grid, mode="bilinear", padding_mode="zeros", align_corners=None,
                         needs_input_grad=True):
    """(dinput, dgrid) of ``grid_sample`` for grad_output (N, C, *grid.shape[1:-1]).

    dinput scatters grad_output to the taps it was read from (None when not needs_input_grad);
    dgrid follows the weights' slopes times the clip/reflect multipliers (zero where a position
    was clamped to a border or sits on it). Nearest gives a zero dgrid, as torch.
    align_corners None means False.
    """
    who = "grid_sample_backward"
    x, g = _check_sample(input, grid, mode, padding_mode, who)
    align_corners = _resolve_align_corners(align_corners, warn=False)
    n, c, *sizes = x.shape
    gout = np.asarray(grad_output)
    if gout.shape != (n, c, *g.shape[1:-1]):
        raise ValueError(f"{who}: expected grad_output of shape {(n, c, *g.shape[1:-1])}, got {gout.shape}")
    gout = gout.astype(x.dtype, copy=False).reshape(n, c, math.prod(g.shape[1:-1]))
    flat = x.reshape(n, c, math.prod(sizes))
    d, s = len(sizes), flat.shape[2]
    need_slopes = mode != "nearest"
    dgrid = np.zeros((n, gout.shape[2], d), x.dtype)
    dflat = np.zeros(n * c * s) if needs_input_grad else None
    # flat offset of each (sample, channel) plane in dinput
    plane = (np.arange(n * c, dtype=np.intp) * s).reshape(n, c, 1)
    for index, valid, weight, slopes in _corners(g, tuple(sizes), mode, padding_mode, align_corners, need_slopes):
        if needs_input_grad:
            kept = valid if weight is None else np.where(valid, weight, 0)
            contribution = gout * kept[:, None, :]
            dflat += np.bincount((plane + index[:, None, :]).ravel(), contribution.ravel(), minlength=dflat.size)
        if need_slopes:
            dot = np.einsum("ncp,ncp->np", _gather(flat, index, valid), gout)
            for k, slope in enumerate(slopes):
                dgrid[..., k] += dot * slope
    dinput = dflat.reshape(x.shape).astype(x.dtype, copy=False) if needs_input_grad else None
    return dinput, dgrid.reshape(g.shape)

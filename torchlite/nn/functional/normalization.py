"""Normalization math: batch, instance, layer, group, RMS and local response norm (and torch's legacy
cross-map LRN), and L_p normalize.

Every forward takes torch's arguments and returns the output. With ``return_saved=True`` it
returns ``(output, *stats)``, the statistics its ``*_backward`` twin takes after
``grad_output`` and ``input`` (torch's ``native_*_norm`` design): ``mean`` and
``invstd`` = 1 / sqrt(var + eps) of the statistics that were used. Saving the input rather than
the normalized values keeps one fresh array per forward (the output) and one per backward
(dinput): fresh multi-megabyte arrays cost page faults, and batch norm runs every CNN step.

Reductions run in the input's dtype (float32 stays float32, as torch's CPU kernels) through
``np.einsum``, which sums over the batch and spatial axes without transposed copies.
"""
import math

import numpy as np

from .._checks import IndexRangeError
from .distance import _vector_norm, _vector_norm_backward

__all__ = [
    "batch_norm", "batch_norm_backward", "instance_norm", "instance_norm_backward",
    "layer_norm", "layer_norm_backward", "group_norm", "group_norm_backward",
    "rms_norm", "rms_norm_backward", "local_response_norm", "local_response_norm_backward",
    "normalize", "normalize_backward",
]  # cross_map_lrn2d (nn.CrossMapLRN2d's math) is not exported: torch.nn.functional has no such function


# ------------------------------------------------------------------------------- helpers
def _float(x):
    """``x`` as a floating ndarray (integers become float32)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _verify_batch_size(shape):
    """Training statistics need more than one value per channel (torch's check)."""
    if shape[0] * int(np.prod(shape[2:], dtype=np.int64)) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(shape)}")


def _verify_spatial_size(shape):
    if int(np.prod(shape[2:], dtype=np.int64)) == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {list(shape)}")


def _channel_view(x):
    """(N, C, *) as (N, C, L), or as (N, C) when there is no spatial extent (L == 1).

    Returns the view and a function shaping a per-channel vector (C,) to broadcast against it.
    """
    n, c = x.shape[:2]
    if x.size == n * c:
        return x.reshape(n, c), lambda v: v
    return x.reshape(n, c, math.prod(x.shape[2:])), lambda v: v[:, None]


def _channel_sum(a):
    """Per-channel sum over the batch and spatial axes of a ``_channel_view`` array."""
    return np.einsum("nc->c", a) if a.ndim == 2 else np.einsum("ncl->c", a)


def _channel_dot(a, b):
    """Per-channel sum of ``a * b`` over the batch and spatial axes."""
    return np.einsum("nc,nc->c", a, b) if a.ndim == 2 else np.einsum("ncl,ncl->c", a, b)


def _update_running(running, value, momentum):
    """running = (1 - momentum) * running + momentum * value, in place."""
    if running is not None:
        running *= 1 - momentum
        running += momentum * value.astype(running.dtype, copy=False)


def _affine_(xhat, weight, bias):
    """xhat (N, C, L) times weight plus bias (C,) per channel, in place."""
    if weight is not None:
        xhat *= weight[:, None]
    if bias is not None:
        xhat += bias[:, None]
    return xhat


def _center_rows(rows, eps):
    """Rows of an (R, K) array minus their mean: (centered, mean, var, invstd), var biased, stats (R,)."""
    k = max(rows.shape[1], 1)  # empty rows: zero statistics, not 0 / 0
    mean = np.einsum("rk->r", rows) / k
    centered = rows - mean[:, None]
    var = np.einsum("rk,rk->r", centered, centered) / k
    return centered, mean, var, 1 / np.sqrt(var + eps)


def _normalized_rows(rows, mean, invstd):
    """xhat = (rows - mean) * invstd per row: a fresh (R, K) array."""
    xhat = rows - mean[:, None]
    xhat *= invstd[:, None]
    return xhat


def _rows_backward_into(xhat, dxhat, invstd):
    """dLoss/dx of xhat = (x - mean(x)) * invstd per row, given dLoss/dxhat; overwrites and returns xhat.

    dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)).
    """
    k = max(xhat.shape[1], 1)
    mean_dxhat = np.einsum("rk->r", dxhat) / k
    mean_dxhat_xhat = np.einsum("rk,rk->r", dxhat, xhat) / k
    dx = xhat
    dx *= -mean_dxhat_xhat[:, None]
    dx += dxhat
    dx -= mean_dxhat[:, None]
    dx *= invstd[:, None]
    return dx


def _check_channel_arrays(who, c, vector, **arrays):
    """Per-channel arrays (weight, bias, running statistics) hold C values, as torch checks: any shape of C
    elements for batch norm, a vector (C,) where ``vector`` (instance and group norm)."""
    for name, a in arrays.items():
        if a is not None and (np.size(a) != c or (vector and np.ndim(a) != 1)):
            raise ValueError(f"{who}: expected {name} of shape ({c},), one value per channel of the input, "
                             f"got shape {np.shape(a)}")


def _check_eps(eps, training, name):
    if training and eps <= 0.0:
        raise ValueError(f"{name} eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"{name} eps must be non-negative, but got {eps}")


# ------------------------------------------------------------------------------- batch norm
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5, *, return_saved=False):
    """Batch normalization over the batch and spatial axes of input (N, C, *), per channel.

    training=True normalizes with the batch statistics (biased variance) and, where given,
    updates ``running_mean`` / ``running_var`` in place with ``momentum`` (the variance
    enters as its unbiased estimate, as torch). training=False uses the running statistics.
    weight, bias: (C,) or None. Returns the output (N, C, *), or with ``return_saved=True``
    ``(output, mean, invstd)`` (C,) for ``batch_norm_backward``.
    """
    x = _float(input)
    _check_eps(eps, training, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, *), got shape {x.shape}")
    _check_channel_arrays("batch_norm", x.shape[1], False, running_mean=running_mean, running_var=running_var,
                          weight=weight, bias=bias)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must either both be None or neither be None")
    xv, vec = _channel_view(x)
    if training:
        _verify_batch_size(x.shape)
        m = x.shape[0] * math.prod(x.shape[2:])
        mean = _channel_sum(xv) / max(m, 1)
        out = xv - vec(mean)
        var = _channel_dot(out, out) / max(m, 1)
        invstd = 1 / np.sqrt(var + eps)
        if m:  # an empty batch leaves the running statistics alone, as torch
            _update_running(running_mean, mean, momentum)
            _update_running(running_var, var * (m / (m - 1)), momentum)
        out *= vec(invstd if weight is None else invstd * weight)
        if bias is not None:
            out += vec(bias)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var must be defined when training=False")
        mean = np.array(running_mean, dtype=x.dtype)  # a snapshot: the buffer may move before backward
        invstd = 1 / np.sqrt(running_var.astype(x.dtype, copy=False) + eps)
        scale = invstd if weight is None else invstd * weight
        out = xv * vec(scale)
        out += vec(-mean * scale if bias is None else bias - mean * scale)
    out = out.reshape(x.shape)
    return (out, mean, invstd) if return_saved else out


def batch_norm_backward(grad_output, input, mean, invstd, weight=None, bias=None, training=True,
                        need_input_grad=True):
    """Gradients of ``batch_norm``: (dinput, dweight, dbias), from its input and saved statistics.

    training=True differentiates through the batch statistics, the closed form
    dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)) per channel; training=False is
    the affine map of the running statistics, dx = g * w * invstd. dweight / dbias are None
    when weight / bias are; dinput is None when ``need_input_grad`` is False.
    """
    x = _float(input)
    g = np.asarray(grad_output).astype(x.dtype, copy=False)
    gv, vec = _channel_view(g)
    dbias = _channel_sum(gv)
    if weight is None and not need_input_grad:
        return None, None, dbias if bias is not None else None
    work = _channel_view(x)[0] - vec(mean)
    dweight = _channel_dot(gv, work) * invstd
    dx = None
    if need_input_grad:
        scale = invstd if weight is None else invstd * weight
        if training:
            m = max(g.shape[0] * math.prod(g.shape[2:]), 1)
            work *= vec(-invstd * dweight / m)
            work += gv
            work -= vec(dbias / m)
            work *= vec(scale)
        else:
            np.multiply(gv, vec(scale), out=work)
        dx = work.reshape(g.shape)
    return dx, dweight if weight is not None else None, dbias if bias is not None else None


# ------------------------------------------------------------------------------- instance norm
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5, *, return_saved=False):
    """Instance normalization: each (sample, channel) of input (N, C, *) over its spatial axes.

    With ``use_input_stats`` the running statistics (C,), where given, move by ``momentum``
    toward the batch average of the per-instance mean and unbiased variance (torch's rule);
    otherwise the running statistics normalize, as batch norm in eval mode.
    Returns the output, or ``(output, mean, invstd)`` with ``return_saved=True``: (N, C)
    per-instance statistics, or the running ones (C,).
    """
    x = _float(input)
    if not use_input_stats:
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps, return_saved=return_saved)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: expected input (N, C, *) with spatial axes, got shape {x.shape}")
    _check_channel_arrays("instance_norm", x.shape[1], True, running_mean=running_mean, running_var=running_var,
                          weight=weight, bias=bias)
    _verify_spatial_size(x.shape)
    n, c = x.shape[:2]
    length = math.prod(x.shape[2:])
    out, mean, var, invstd = _center_rows(x.reshape(n * c, length), eps)
    if n and length:  # an empty input leaves the running statistics alone (torch writes NaN for N = 0)
        _update_running(running_mean, mean.reshape(n, c).mean(axis=0), momentum)
        _update_running(running_var, (var * (length / (length - 1))).reshape(n, c).mean(axis=0), momentum)
    out *= invstd[:, None]
    out = _affine_(out.reshape(n, c, length), weight, bias).reshape(x.shape)
    return (out, mean.reshape(n, c), invstd.reshape(n, c)) if return_saved else out


def instance_norm_backward(grad_output, input, mean, invstd, weight=None, bias=None, use_input_stats=True,
                           need_input_grad=True):
    """Gradients of ``instance_norm``: (dinput, dweight, dbias), from its input and saved statistics."""
    if not use_input_stats:
        return batch_norm_backward(grad_output, input, mean, invstd, weight, bias, False, need_input_grad)
    return _grouped_backward(grad_output, input, mean, invstd, weight, bias, need_input_grad)


def _grouped_backward(grad_output, input, mean, invstd, weight, bias, need_input_grad):
    """Backward of instance and group norm: rows of (N, C, L) normalized per (N, groups), affine per channel."""
    x = _float(input)
    g = np.asarray(grad_output).astype(x.dtype, copy=False)
    n, c = g.shape[:2]
    rows = (mean.size, x.size // mean.size if mean.size else 0)
    xhat = _normalized_rows(x.reshape(rows), mean.reshape(-1), invstd.reshape(-1))
    spatial = math.prod(g.shape[2:])
    gv, xv = g.reshape(n, c, spatial), xhat.reshape(n, c, spatial)
    dweight = np.einsum("ncl,ncl->c", gv, xv) if weight is not None else None
    dbias = np.einsum("ncl->c", gv) if bias is not None else None
    dx = None
    if need_input_grad:
        dxhat = gv if weight is None else gv * weight[:, None]
        dx = _rows_backward_into(xhat, dxhat.reshape(rows), invstd.reshape(-1)).reshape(g.shape)
    return dx, dweight, dbias


# ------------------------------------------------------------------------------- layer norm
def _check_trailing(x, normalized_shape, name, **params):
    """The normalized size; the input ends in ``normalized_shape`` (a non-empty sequence, as torch's
    functional takes) and each of ``params`` (weight, bias) is None or of that shape."""
    if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape:
        raise TypeError(f"{name}: expected normalized_shape to be a non-empty tuple or list of ints, "
                        f"got {normalized_shape!r}")
    normalized_shape = tuple(normalized_shape)
    for key, p in params.items():
        if p is not None and np.shape(p) != normalized_shape:
            raise ValueError(f"{name}: expected {key} of shape {normalized_shape} (normalized_shape), "
                             f"got shape {np.shape(p)}")
    if x.ndim < len(normalized_shape) or x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"{name}: given normalized_shape={list(normalized_shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, normalized_shape))}], but got input of size {list(x.shape)}")
    return int(np.prod(normalized_shape, dtype=np.int64))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *, return_saved=False):
    """Normalize input (*, *normalized_shape) over its trailing ``normalized_shape`` axes.

    weight, bias: ``normalized_shape`` or None. Returns the output, or
    ``(output, mean, invstd)`` with ``return_saved=True`` (both of the leading shape).
    """
    x = _float(input)
    d = _check_trailing(x, normalized_shape, "layer_norm", weight=weight, bias=bias)
    lead = x.shape[:x.ndim - len(tuple(normalized_shape))]
    out, mean, _, invstd = _center_rows(x.reshape(math.prod(lead), d), eps)
    out *= invstd[:, None]
    if weight is not None:
        out *= weight.reshape(d)
    if bias is not None:
        out += bias.reshape(d)
    out = out.reshape(x.shape)
    return (out, mean.reshape(lead), invstd.reshape(lead)) if return_saved else out


def layer_norm_backward(grad_output, input, mean, invstd, weight=None, bias=None, need_input_grad=True):
    """Gradients of ``layer_norm``: (dinput, dweight, dbias), from its input and saved statistics."""
    x = _float(input)
    g = np.asarray(grad_output).astype(x.dtype, copy=False)
    d = math.prod(x.shape[mean.ndim:])  # the normalized size (mean has the leading shape)
    gv = g.reshape(mean.size, d)
    dbias = np.einsum("rk->k", gv).reshape(bias.shape) if bias is not None else None
    if weight is None and not need_input_grad:
        return None, None, dbias
    xhat = _normalized_rows(x.reshape(mean.size, d), mean.reshape(-1), invstd.reshape(-1))
    dweight = np.einsum("rk,rk->k", gv, xhat).reshape(weight.shape) if weight is not None else None
    dx = None
    if need_input_grad:
        dxhat = gv if weight is None else gv * weight.reshape(d)
        dx = _rows_backward_into(xhat, dxhat, invstd.reshape(-1)).reshape(g.shape)
    return dx, dweight, dbias


# ------------------------------------------------------------------------------- group norm
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, *, return_saved=False):
    """Normalize input (N, C, *) over each group of C / num_groups channels (and all spatial axes).

    weight, bias: (C,) or None, applied per channel. Returns the output, or
    ``(output, mean, invstd)`` with ``return_saved=True``, both (N, num_groups).
    """
    x = _float(input)
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected at least 2 dimensions for input tensor but received {x.ndim}")
    n, c = x.shape[:2]
    _check_channel_arrays("group_norm", c, True, weight=weight, bias=bias)
    if c % num_groups:
        raise ValueError(f"group_norm: expected number of channels in input to be divisible by num_groups, "
                         f"but got input of shape {list(x.shape)} and num_groups={num_groups}")
    _verify_batch_size([n * c // num_groups, num_groups] + list(x.shape[2:]))
    spatial = math.prod(x.shape[2:])
    out, mean, _, invstd = _center_rows(x.reshape(n * num_groups, c // num_groups * spatial), eps)
    out *= invstd[:, None]
    out = _affine_(out.reshape(n, c, spatial), weight, bias).reshape(x.shape)
    return (out, mean.reshape(n, num_groups), invstd.reshape(n, num_groups)) if return_saved else out


def group_norm_backward(grad_output, input, mean, invstd, weight=None, bias=None, need_input_grad=True):
    """Gradients of ``group_norm``: (dinput, dweight, dbias), from its input and saved statistics."""
    return _grouped_backward(grad_output, input, mean, invstd, weight, bias, need_input_grad)


# ------------------------------------------------------------------------------- RMS norm
def rms_norm(input, normalized_shape, weight=None, eps=None, *, return_saved=False):
    """x / sqrt(mean(x**2) + eps) over the trailing ``normalized_shape`` axes, times weight.

    eps=None uses the machine epsilon of the input's dtype (torch's default). Returns the
    output, or ``(output, rinv)`` with ``return_saved=True``, rinv = 1 / sqrt(mean(x**2) + eps)
    of the leading shape.
    """
    x = _float(input)
    d = _check_trailing(x, normalized_shape, "rms_norm", weight=weight)
    lead = x.shape[:x.ndim - len(tuple(normalized_shape))]
    eps = np.finfo(x.dtype).eps if eps is None else eps
    rows = x.reshape(math.prod(lead), d)
    rinv = 1 / np.sqrt(np.einsum("rk,rk->r", rows, rows) / max(d, 1) + x.dtype.type(eps))
    out = rows * rinv[:, None]
    if weight is not None:
        out *= weight.reshape(d)
    out = out.reshape(x.shape)
    return (out, rinv.reshape(lead)) if return_saved else out


def rms_norm_backward(grad_output, input, rinv, weight=None, need_input_grad=True):
    """Gradients of ``rms_norm``: (dinput, dweight), from its input and saved ``rinv``.

    dx = rinv * (dxhat - xhat * mean(dxhat * xhat)) per row, xhat = x * rinv, dxhat = grad * weight.
    """
    x = _float(input)
    g = np.asarray(grad_output).astype(x.dtype, copy=False)
    d = math.prod(x.shape[rinv.ndim:])  # the normalized size (rinv has the leading shape)
    gv = g.reshape(rinv.size, d)
    r = rinv.reshape(-1)[:, None]
    xhat = x.reshape(rinv.size, d) * r
    dweight = np.einsum("rk,rk->k", gv, xhat).reshape(weight.shape) if weight is not None else None
    dx = None
    if need_input_grad:
        dxhat = gv if weight is None else gv * weight.reshape(d)
        dx = xhat
        dx *= -(np.einsum("rk,rk->r", dxhat, xhat) / max(d, 1))[:, None]
        dx += dxhat
        dx *= r
        dx = dx.reshape(g.shape)
    return dx, dweight


# ------------------------------------------------------------------------------- local response norm
def _window_sum(a, before, after):
    """out[:, c] = sum of a[:, c - before : c + after + 1] along axis 1 (zeros outside)."""
    c = a.shape[1]
    out = a.copy()
    for o in range(-before, after + 1):
        if o == 0 or abs(o) >= c:
            continue
        lo, hi = max(0, -o), min(c, c - o)
        out[:, lo:hi] += a[:, lo + o:hi + o]
    return out


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0, *, return_saved=False):
    """Normalize input (N, C, *) across neighbouring channels (AlexNet's LRN).

    out = x / (k + alpha / size * sum over the ``size`` channels around c of x**2) ** beta,
    the window running from c - size // 2 to c + (size - 1) // 2. Returns the output, or
    ``(output, base)`` with ``return_saved=True`` (base is the bracket before the power).
    """
    x = _float(input)
    if x.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {x.ndim} dimensions)")
    xv = x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))
    base = _window_sum(xv * xv, size // 2, (size - 1) // 2)
    base *= alpha / size
    base += k
    out = (xv / base ** beta).reshape(x.shape)
    return (out, base.reshape(x.shape)) if return_saved else out


def local_response_norm_backward(grad_output, input, base, size, alpha=1e-4, beta=0.75):
    """dLoss/dinput of ``local_response_norm`` from its input and saved ``base``.

    dx_j = g_j * base_j**-beta - 2 * alpha * beta / size * x_j * sum over the channels c
    whose window holds j of g_c * x_c * base_c**(-beta - 1).
    """
    x = _float(input)
    g = np.asarray(grad_output).astype(x.dtype, copy=False)
    shape3 = (x.shape[0], x.shape[1], math.prod(x.shape[2:]))
    xv, gv, bv = x.reshape(shape3), g.reshape(shape3), base.reshape(shape3)
    inv_pow = bv ** -beta
    t = gv * xv * inv_pow / bv
    dx = gv * inv_pow
    dx -= (2 * alpha * beta / size) * xv * _window_sum(t, (size - 1) // 2, size // 2)
    return dx.reshape(x.shape)


def cross_map_lrn2d(input, size, alpha=1e-4, beta=0.75, k=1):
    """torch's legacy ``nn.CrossMapLRN2d`` forward (Lua Torch's SpatialCrossMapLRN): (output, scale).

    input (N, C, H, W); output = x * scale**-beta with scale_c = k + alpha / size * s_c, s_c the
    sum of x**2 over channels c - p + 1 .. c + p - 1 (p = (size - 1) // 2 + 1, clipped to the
    channels), plus channel 0's square once channel 0 has left that window: Lua's running sum
    never subtracts it.
    """
    pre_pad = int((size - 1) / 2 + 1)
    sq = input * input
    s = _window_sum(sq, pre_pad - 1, pre_pad - 1)
    s[:, pre_pad:] += sq[:, :1]
    s *= alpha / size
    s += k
    return s ** -beta * input, s


def cross_map_lrn2d_backward(grad_output, input, output, scale, size, alpha=1e-4, beta=0.75,
                             who="cross_map_lrn2d_backward"):
    """dLoss/dinput of ``cross_map_lrn2d`` as torch's legacy backward computes it.

    dx_c = g_c * scale_c**-beta - 2 * alpha * beta / size * x_c * sum of g_j * y_j / scale_j over
    j = c - q .. c + size - 1 - q, q = size - (size - 1) / 2 rounded down. That window is not the
    forward's and channel 0's extra term is left out, so for C > 1 this is torch's number, not
    the exact derivative of the forward (``local_response_norm`` has the exact one).
    """
    if size < 2:
        raise ValueError(f"{who}: the legacy backward needs size >= 2 (torch's fails for size {size})")
    shift = int(size - (size - 1) / 2)
    grad = np.asarray(grad_output).astype(input.dtype, copy=False)
    ratio = grad * output / scale
    dx = scale ** -beta * grad
    dx -= (2 * alpha * beta / size) * input * _window_sum(ratio, shift, size - 1 - shift)
    return dx


# ------------------------------------------------------------------------------- L_p normalize
def _norm_axes(dim, ndim):
    """``dim`` (an int or a sequence of ints; an empty one means every dim) as sorted axes of an ndim array."""
    rank = max(ndim, 1)  # a 0-d array takes dim 0 or -1, as torch's
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    axes = []
    for d in dims:
        if not -rank <= d < rank:
            raise IndexRangeError(f"normalize: Dimension out of range (expected to be in range of [{-rank}, "
                                  f"{rank - 1}], but got {d})")
        if d % rank in axes:
            raise ValueError(f"normalize: dim {d % rank} appears multiple times in the list of dims")
        axes.append(d % rank)
    if not ndim:
        return ()
    return tuple(sorted(axes)) if axes else tuple(range(ndim))


def _as_rows(x, axes):
    """``x`` with ``axes`` moved last and merged into one: (*rest, K), and the moved shape to undo it."""
    moved = np.moveaxis(x, axes, range(x.ndim - len(axes), x.ndim))
    rest = moved.shape[:x.ndim - len(axes)]
    return moved.reshape(rest + (math.prod(moved.shape[len(rest):]),)), moved.shape


def _from_rows(rows, moved_shape, axes):
    """Undo ``_as_rows``: (*rest, K) back to the original layout."""
    ndim = len(moved_shape)
    return np.moveaxis(rows.reshape(moved_shape), range(ndim - len(axes), ndim), axes)


def _lp_norm(x, p, axes):
    """(rows, row norms (*rest, 1), the norms shaped as x with ``axes`` kept at size 1, moved shape)."""
    rows, moved_shape = _as_rows(x, axes)
    if (p < 0 or math.isinf(p)) and rows.shape[-1] == 0:  # these norms have no value over nothing (torch agrees)
        raise ValueError(f"normalize: cannot take the {p} norm over empty dims {axes} of input shape {x.shape}")
    with np.errstate(divide="ignore", over="ignore"):  # a negative p sends zeros to inf on the way to norm 0
        norm = _vector_norm(rows, p)
    return rows, norm, np.expand_dims(norm[..., 0], axes), moved_shape


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """v / max(||v||_p, eps) for each vector v along ``dim`` (an int or a tuple of ints).

    p may be any float: 0 counts non-zeros, +-inf take the largest/smallest |v_i|.
    ``out=`` (torch's non-differentiable variant) is not supported.
    Shape: input (*) -> output (*), the same shape.
    """
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported; use the returned array")
    x = _float(input)
    _, _, norm, _ = _lp_norm(x, float(p), _norm_axes(dim, x.ndim))
    return np.asarray(x / np.maximum(norm, float(eps)))  # asarray: 0-d arithmetic gives numpy scalars


def normalize_backward(grad_output, input, p=2.0, dim=1, eps=1e-12):
    """dLoss/dinput of ``normalize`` from ``grad_output`` (the input's shape).

    Through y = x / c, c = max(||x||_p, eps): the clamp passes the gradient where the norm is
    at least ``eps``, and the norm's own gradient is torch's (0 at a zero vector, shared by ties of inf).
    """
    x = _float(input)
    p = float(p)
    axes = _norm_axes(dim, x.ndim)
    rows, row_norm, norm, moved_shape = _lp_norm(x, p, axes)
    g = np.asarray(grad_output, dtype=x.dtype)
    eps = float(eps)  # a numpy float64 eps would upcast float32
    c = np.maximum(norm, eps)
    dx = g / c
    dc = -(g * (x / c / c)).sum(axis=axes, keepdims=True)
    dc = dc * (norm >= eps)
    dnorm_rows = _as_rows(dc, axes)[0]
    dx = dx + _from_rows(_vector_norm_backward(dnorm_rows, rows, row_norm, p), moved_shape, axes)
    return np.asarray(dx)

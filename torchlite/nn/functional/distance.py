"""Distances between vectors, each beside its ``*_backward`` twin.

``pairwise_distance`` is the p-norm of ``x1 - x2 + eps`` over the last dim, ``cosine_similarity``
the cosine along ``dim``. Both broadcast ``x1`` against ``x2`` as torch does; the backward twins
return ``(grad_x1, grad_x2)``, each summed back to its input's own shape, in the inputs' dtype.

Gradients are torch's, including where they are a choice: the p-norm's subgradient at 0 is 0,
the inf-norm's gradient is shared among tied maxima, and cosine_similarity clamps each norm at
``eps`` without telling the gradient (torch clamps under no_grad), so below ``eps`` the
gradient is torch's rather than the derivative of the clamped formula.

``pdist`` is the p-norm between every pair of rows of an (N, M) input, the condensed upper
triangle; its backward is torch's ``_pdist_backward`` kernel, whose choices differ from the
p-norm's above: every tied maximum of the inf norm gets the whole gradient, and p < 1 sends
nothing to coordinates where the rows agree.
"""
import math

import numpy as np

from ._broadcast import sum_to
from .activation import _as_float, _dim_index

__all__ = ["pairwise_distance", "pairwise_distance_backward", "cosine_similarity", "cosine_similarity_backward",
           "pdist", "pdist_backward"]


def _pair(who, x1, x2):
    """Both inputs as floating arrays of their common dtype; a ValueError when they do not broadcast."""
    a, b = _as_float(x1), _as_float(x2)
    dtype = np.result_type(a.dtype, b.dtype)
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{who}: x1 of shape {a.shape} and x2 of shape {b.shape} do not broadcast") from None
    return a, b


# ----------------------------------------------------------------------------- p-norm distance
def _difference(a, b, eps):
    """x1 - x2 + eps, at least 1-d (a 0-d pair is a vector of one)."""
    d = np.subtract(a, b)
    d += eps
    return d.reshape(1) if d.ndim == 0 else d


def _vector_norm(d, p):
    """The p-norm over the last dim, kept as a dim of size 1 (p = 0 counts non-zeros, +-inf: max/min |d|)."""
    if p == 2:
        return np.sqrt(np.einsum("...i,...i->...", d, d))[..., None]
    if p == 1:
        return np.abs(d).sum(axis=-1, keepdims=True)
    if p == 0:
        return np.count_nonzero(d, axis=-1, keepdims=True).astype(d.dtype)
    if math.isinf(p):
        return (np.max if p > 0 else np.min)(np.abs(d), axis=-1, keepdims=True)
    s = np.abs(d) ** p
    return s.sum(axis=-1, keepdims=True) ** (1.0 / p)


def _vector_norm_backward(g, d, norm, p):
    """torch's norm_backward: ``g`` and ``norm`` keep the reduced dim (size 1)."""
    if p == 0:
        return np.zeros_like(d)
    if p == 1:
        return np.sign(d) * g
    zero_norm = norm == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if p == 2:
            return g * np.where(zero_norm, 0, d / norm)
        if math.isinf(p):
            ties = np.abs(d) == norm
            ties |= np.isnan(d)
            return np.sign(d) * ((g / ties.sum(axis=-1, keepdims=True).astype(d.dtype)) * ties)
        if p < 1:
            scaled = np.where(d == 0, 0, np.sign(d) * np.abs(d) ** (p - 1))
            return scaled * g * norm ** (1 - p)
        scaled = np.sign(d) * np.abs(d) ** (p - 1) if p < 2 else d * np.abs(d) ** (p - 2)
        return scaled * np.where(zero_norm, 0, g / norm ** (p - 1))


def _pairwise_distance(x1, x2, p, eps, keepdim, who):
    """(distance, (d, norm, scalar)): what the backward needs besides the input shapes."""
    a, b = _pair(who, x1, x2)
    scalar = a.ndim == 0 and b.ndim == 0
    d = _difference(a, b, eps)
    if (math.isinf(p) or p < 0) and d.shape[-1] == 0:  # as torch: a max, min or negative power over nothing
        raise ValueError(f"{who}: expected a non-empty last dim for the {p} norm, got x1 of shape {a.shape} "
                         f"and x2 of shape {b.shape}")
    norm = _vector_norm(d, p)
    out = norm if keepdim else norm[..., 0]
    return (out.reshape(()) if scalar else out), (d, norm)


def _pairwise_distance_backward(grad_output, d, norm, p, shape1, shape2):
    g = np.asarray(grad_output, dtype=d.dtype)
    if g.size != math.prod(norm.shape[:-1]):  # a triplet loss hands in its broadcast shape
        g = sum_to(g, norm.shape[:-1])
    g = g.reshape(norm.shape[:-1] + (1,))
    dd = _vector_norm_backward(g, d, norm, p).reshape(np.broadcast_shapes(shape1, shape2))
    return sum_to(dd, shape1), sum_to(np.negative(dd), shape2)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """p-norm of ``x1 - x2 + eps`` over the last dim.

    Shape: x1 (N, D) or (D,), x2 the same or broadcastable (any leading dims work); output
    (N,) or () ((N, 1) or (1,) with ``keepdim``).
    """
    return _pairwise_distance(x1, x2, p, eps, keepdim, "pairwise_distance")[0]


def pairwise_distance_backward(grad_output, x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """Returns (grad_x1, grad_x2); ``grad_output`` is shaped like the distance."""
    _, (d, norm) = _pairwise_distance(x1, x2, p, eps, keepdim, "pairwise_distance")
    return _pairwise_distance_backward(grad_output, d, norm, p, np.shape(x1), np.shape(x2))


# ----------------------------------------------------------------------------- cosine similarity
def _cosine_similarity(x1, x2, dim, eps, who):
    """(cosine, saved for the backward): torch's x1 / max(|x1|, eps) . x2 / max(|x2|, eps) along ``dim``."""
    a, b = _pair(who, x1, x2)
    a, b = np.broadcast_arrays(a, b)
    axis = _dim_index(dim, max(a.ndim, 1), who)
    if a.ndim == 0:
        a, b = a.reshape(1), b.reshape(1)
    n1 = np.sqrt(np.square(a).sum(axis=axis, keepdims=True))
    n2 = np.sqrt(np.square(b).sum(axis=axis, keepdims=True))
    a_hat = a / np.maximum(n1, eps)
    b_hat = b / np.maximum(n2, eps)
    return (a_hat * b_hat).sum(axis=axis), (a, b, a_hat, b_hat, n1, n2, axis)


def _cosine_similarity_backward(grad_output, saved, eps, shape1, shape2):
    a, b, a_hat, b_hat, n1, n2, axis = saved
    g = np.expand_dims(np.asarray(grad_output, dtype=a.dtype), axis)

    def one_side(x, other_hat, n):
        # d/dx of (x / nc) . other_hat with nc = max(|x|, eps) and dnc/dx = x / |x| (0 where |x| = 0)
        nc = np.maximum(n, eps)
        radial = (x * other_hat).sum(axis=axis, keepdims=True)
        radial /= nc * nc
        with np.errstate(divide="ignore", invalid="ignore"):
            direction = np.where(n == 0, 0, x / n)
        return g * (other_hat / nc - radial * direction)

    shape = np.broadcast_shapes(shape1, shape2)
    g1 = one_side(a, b_hat, n1).reshape(shape)
    g2 = one_side(b, a_hat, n2).reshape(shape)
    return sum_to(g1, shape1), sum_to(g2, shape2)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``, each norm clamped at ``eps``.

    Shape: x1 and x2 broadcastable, ``dim`` indexing their common shape (*1, D, *2);
    output (*1, *2).
    """
    return _cosine_similarity(x1, x2, dim, eps, "cosine_similarity")[0]


def cosine_similarity_backward(grad_output, x1, x2, dim=1, eps=1e-8):
    """Returns (grad_x1, grad_x2); ``grad_output`` is shaped like the similarity."""
    _, saved = _cosine_similarity(x1, x2, dim, eps, "cosine_similarity")
    return _cosine_similarity_backward(grad_output, saved, eps, np.shape(x1), np.shape(x2))


# ----------------------------------------------------------------------------- pdist
def _pdist_input(input, p):
    """The input as a floating (N, M) array and p as a python float (a numpy p would upcast float32)."""
    x = _as_float(input)
    if x.ndim != 2:
        raise ValueError(f"pdist: expected a 2-D input (N, M), got shape {x.shape}")
    if not p >= 0:
        raise ValueError(f"pdist: expected a non-negative p, got {p}")
    return x, float(p)


def _row_pairs(n):
    """(i, slice of the condensed output) for each row i: its pairs with rows i+1..n-1, in torch's order."""
    start = 0
    for i in range(n - 1):
        yield i, slice(start, start + n - 1 - i)
        start += n - 1 - i


def pdist(input, p=2):
    """p-norm distance between every pair of rows: ``||x[i] - x[j]||_p`` for i < j, row-major.

    p = 0 counts the coordinates that differ, p = inf takes the largest |difference|.
    Shape: input (N, M) -> (N * (N - 1) / 2,).
    """
    x, p = _pdist_input(input, p)
    n = x.shape[0]
    out = np.zeros(n * (n - 1) // 2, dtype=x.dtype)
    if x.shape[1] == 0:
        return out
    with np.errstate(divide="ignore", over="ignore"):
        for i, seg in _row_pairs(n):
            out[seg] = _vector_norm(x[i] - x[i + 1:], p)[:, 0]
    return out


def _pdist_pair_backward(d, g, dist, p):
    """torch's per-pair gradient w.r.t. the first row for differences ``d`` (K, M), grad and distance (K, 1)."""
    if p == 1:
        return np.sign(d) * g
    with np.errstate(divide="ignore", invalid="ignore"):
        if math.isinf(p):
            return g * np.sign(d) * (np.abs(d) == dist)
        if p < 2:
            result = np.sign(d) * np.abs(d) ** (p - 1) * g / dist ** (p - 1)
            if p < 1:
                result[d == 0] = 0
        elif p == 2:
            result = g * d / dist
        else:
            result = d * np.abs(d) ** (p - 2) * g / dist ** (p - 1)
    result[np.broadcast_to(dist == 0, result.shape)] = 0
    return result


def pdist_backward(grad_output, input, p=2):
    """dLoss/dinput (N, M) of ``pdist`` from ``grad_output`` (N * (N - 1) / 2,).

    Pair (i, j) adds its gradient to row i and subtracts it from row j; p = 0 passes none.
    """
    x, p = _pdist_input(input, p)
    dist = pdist(x, p)
    g = np.asarray(grad_output, dtype=x.dtype).reshape(dist.shape)
    dx = np.zeros_like(x)
    if p == 0 or x.size == 0:
        return dx
    for i, seg in _row_pairs(x.shape[0]):
        part = _pdist_pair_backward(x[i] - x[i + 1:], g[seg, None], dist[seg, None], p)
        dx[i] += part.sum(axis=0)
        dx[i + 1:] -= part
    return dx

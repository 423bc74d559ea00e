"""Loss functions, each beside its ``*_backward`` twin.

``xxx_loss(input, target, ...)`` returns the loss: a 0-d array for ``reduction='mean'`` or
``'sum'``, an array shaped like the per-element loss for ``'none'``. ``xxx_loss_backward(
grad_output, input, target, ...)`` takes the same arguments after ``grad_output`` (a scalar
for 'mean'/'sum', an array shaped like the loss for 'none') and returns dLoss/dInput; the
losses with two differentiable inputs return a tuple. Targets get no gradient. Formulas,
reductions and edge cases (weighted means, ignore_index, label smoothing, log clamped at
-100, means over nothing giving NaN) are torch's; the loss and its gradient take the input's
dtype, so float32 stays float32.

Each public forward is a thin wrapper around a private ``_xxx(..., who)`` that validates its
arguments, raising errors that start with ``who`` (the function's name here, the module's
repr when a loss module calls it), and returns ``(loss, validated arguments)``: the loss
modules keep those for their backward. Backward twins trust arguments that forward accepted.
"""
import math
import warnings

import numpy as np
from ..._scipy import special

from ...grad_mode import enable_grad, no_grad
from .._checks import zero_d_safe
from ._broadcast import sum_to
from .activation import _as_float, _log_softmax, _softplus1
from .distance import _pairwise_distance, _pairwise_distance_backward

__all__ = [
    "mse_loss", "mse_loss_backward", "l1_loss", "l1_loss_backward", "smooth_l1_loss", "smooth_l1_loss_backward",
    "huber_loss", "huber_loss_backward", "nll_loss", "nll_loss_backward", "cross_entropy", "cross_entropy_backward",
    "binary_cross_entropy", "binary_cross_entropy_backward", "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward", "kl_div", "kl_div_backward", "soft_margin_loss",
    "soft_margin_loss_backward", "margin_ranking_loss", "margin_ranking_loss_backward", "hinge_embedding_loss",
    "hinge_embedding_loss_backward", "cosine_embedding_loss", "cosine_embedding_loss_backward",
    "gaussian_nll_loss", "gaussian_nll_loss_backward", "poisson_nll_loss", "poisson_nll_loss_backward",
    "multi_margin_loss", "multi_margin_loss_backward", "multilabel_margin_loss", "multilabel_margin_loss_backward",
    "multilabel_soft_margin_loss", "multilabel_soft_margin_loss_backward", "triplet_margin_loss",
    "triplet_margin_loss_backward", "triplet_margin_with_distance_loss", "triplet_margin_with_distance_loss_backward",
    "ctc_loss", "ctc_loss_backward",
]

_REDUCTIONS = ("none", "mean", "sum")
_BCE_EPSILON = 1e-12  # torch's floor on x * (1 - x) in the BCE gradient
_COSINE_EPSILON = 1e-12  # torch's EPSILON added to squared norms in cosine_embedding_loss
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ----------------------------------------------------------------------------- validation
def _legacy_reduction(size_average, reduce, reduction):
    """``reduction``, or torch's reading of the deprecated ``size_average`` / ``reduce`` flags when either is given
    (with torch's warning): both true (None counts as true) -> 'mean', reduce only -> 'sum', else 'none'."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    legacy = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{legacy}' instead.")
    return legacy


def _check_reduction(who, reduction, allowed=_REDUCTIONS):
    """Raise a ValueError naming ``who`` unless ``reduction`` is one of ``allowed``."""
    if reduction not in allowed:
        raise ValueError(f"{who}: {reduction!r} is not a valid value for reduction (expected one of {allowed})")
    return reduction


def _float_arg(who, value, name="input"):
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{who}: expected a floating-point {name}, got dtype {arr.dtype}")
    return _as_float(arr)


def _like(who, value, x, name):
    """``value`` (target, weight, ...) as an array of the input's dtype."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{who}: expected a numeric {name}, got dtype {arr.dtype}")
    return arr.astype(x.dtype, copy=False)


def _broadcastable(who, shape, other, name, to_input=False):
    """Check that ``other`` broadcasts with the input's ``shape`` (``to_input``: without enlarging it)."""
    try:
        joint = np.broadcast_shapes(shape, other.shape)
    except ValueError:
        joint = None
    if joint is None or (to_input and joint != shape):
        raise ValueError(f"{who}: {name} of shape {other.shape} does not broadcast to input shape {shape}")


def _pair(who, input, target, warn=True):
    """Input and target of an elementwise loss; torch's warning when their shapes differ."""
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    if t.shape != x.shape:
        _broadcastable(who, x.shape, t, "target")
        if warn:
            warnings.warn(f"{who}: Using a target size ({t.shape}) that is different to the input size ({x.shape}). "
                          "This will likely lead to incorrect results due to broadcasting. "
                          "Please ensure they have the same size.", UserWarning, stacklevel=5)
    return x, t


def _same_shape(who, x, t):
    if t.shape != x.shape:
        raise ValueError(f"{who}: expected target shape {x.shape} (the input's), got {t.shape}")


def _elementwise_weight(who, weight, x):
    """The optional per-element ``weight`` of mse/l1/huber: exactly the input's shape."""
    if weight is None:
        return None
    w = _like(who, weight, x, "weight")
    if w.shape != x.shape:
        raise ValueError(f"{who}: weights and input must have the same size, got weight {w.shape} for input {x.shape}")
    return w


def _in_dtype(input, *others):
    """A backward twin's arrays in the input's dtype (None stays None): a float64 target must not
    turn a float32 gradient into float64."""
    x = _as_float(input)
    return (x,) + tuple(None if a is None else np.asarray(a, dtype=x.dtype) for a in others)


# ----------------------------------------------------------------------------- reductions
def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=loss.dtype)
    if loss.size == 0:
        return np.asarray(np.nan, dtype=loss.dtype)
    return np.asarray(loss.mean(), dtype=loss.dtype)


def _upstream(grad_output, reduction, count, dtype):
    """The upstream gradient in ``dtype``, divided by ``count`` for 'mean'."""
    g = np.asarray(grad_output, dtype=dtype)
    if reduction == "mean":
        g = g / max(count, 1)
    return g


def _weighted(loss, weight, reduction, mean_over_weight):
    """Apply the optional per-element weight of mse/l1/huber and reduce as torch does."""
    if weight is None:
        return _reduce(loss, reduction)
    loss *= weight
    if reduction == "mean" and mean_over_weight:
        return np.asarray(loss.sum() / weight.sum(), dtype=loss.dtype)
    return _reduce(loss, reduction)


def _weighted_upstream(grad_output, reduction, shape, weight, mean_over_weight, dtype):
    """Upstream gradient per element for mse/l1/huber, including the weight and the mean's divisor."""
    if weight is None:
        return _upstream(grad_output, reduction, math.prod(shape), dtype)
    if reduction == "mean" and mean_over_weight:
        g = np.asarray(grad_output, dtype=dtype) / weight.sum()
    else:
        g = _upstream(grad_output, reduction, math.prod(shape), dtype)
    return g * weight


# ----------------------------------------------------------------------------- regression
@zero_d_safe  # 0-d input and target, as torch takes
def _mse_loss(input, target, reduction, weight, who):
    _check_reduction(who, reduction)
    x, t = _pair(who, input, target)
    w = _elementwise_weight(who, weight, x)
    d = np.subtract(x, t)
    np.multiply(d, d, out=d)
    return _weighted(d, w, reduction, True), (x, t)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Squared error (x - y)^2, reduced.

    ``weight`` (the input's shape) weights the elements; its 'mean' is sum(w l) / sum(w).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _mse_loss(input, target, reduction, weight, "mse_loss")[0]


@zero_d_safe
def mse_loss_backward(grad_output, input, target, *, reduction="mean", weight=None):
    """dx = 2 (x - y) * upstream."""
    input, target, weight = _in_dtype(input, target, weight)
    d = np.subtract(input, target)
    d *= 2
    d *= _weighted_upstream(grad_output, reduction, d.shape, weight, True, d.dtype)
    return sum_to(d, input.shape)


@zero_d_safe
def _l1_loss(input, target, reduction, weight, who):
    _check_reduction(who, reduction)
    x, t = _pair(who, input, target)
    w = _elementwise_weight(who, weight, x)
    d = np.subtract(x, t)
    np.abs(d, out=d)
    return _weighted(d, w, reduction, True), (x, t)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Absolute error |x - y|, reduced (``weight`` as in mse_loss)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _l1_loss(input, target, reduction, weight, "l1_loss")[0]


@zero_d_safe
def l1_loss_backward(grad_output, input, target, *, reduction="mean", weight=None):
    """dx = sign(x - y) * upstream (0 where x == y)."""
    input, target, weight = _in_dtype(input, target, weight)
    d = np.subtract(input, target)
    np.sign(d, out=d)
    d *= _weighted_upstream(grad_output, reduction, d.shape, weight, True, d.dtype)
    return sum_to(d, input.shape)


def _huber_elementwise(x, t, delta):
    """c (|d| - c / 2) with c = min(|d|, delta): 0.5 d^2 inside, delta (|d| - delta / 2) outside."""
    a = np.subtract(x, t)
    np.abs(a, out=a)
    c = np.minimum(a, delta)
    c *= -0.5
    c += a
    c *= np.minimum(a, delta, out=a)
    return c


@zero_d_safe
def _smooth_l1_loss(input, target, reduction, beta, who):
    _check_reduction(who, reduction)
    if beta < 0:
        raise ValueError(f"{who}: beta must be >= 0, got {beta}")
    x, t = _pair(who, input, target)
    if beta == 0:
        loss = np.abs(np.subtract(x, t))
    else:
        loss = _huber_elementwise(x, t, beta)
        loss /= beta
    return _reduce(loss, reduction), (x, t)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (d = x - y); L1 when beta == 0."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _smooth_l1_loss(input, target, reduction, beta, "smooth_l1_loss")[0]


@zero_d_safe
def smooth_l1_loss_backward(grad_output, input, target, *, reduction="mean", beta=1.0):
    """dx = clip(d / beta, -1, 1) * upstream (sign(d) when beta == 0)."""
    input, target = _in_dtype(input, target)
    d = np.subtract(input, target)
    if beta == 0:
        np.sign(d, out=d)
    else:
        np.clip(d, -beta, beta, out=d)
        d /= beta
    d *= _upstream(grad_output, reduction, d.size, d.dtype)
    return sum_to(d, input.shape)


@zero_d_safe
def _huber_loss(input, target, reduction, delta, weight, who):
    _check_reduction(who, reduction)
    if delta <= 0:
        raise ValueError(f"{who}: delta must be > 0, got {delta}")
    x, t = _pair(who, input, target)
    w = _elementwise_weight(who, weight, x)
    return _weighted(_huber_elementwise(x, t, delta), w, reduction, False), (x, t)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2).

    ``weight`` (the input's shape) scales the elements; 'mean' still divides by their count.
    """
    return _huber_loss(input, target, reduction, delta, weight, "huber_loss")[0]


@zero_d_safe
def huber_loss_backward(grad_output, input, target, reduction="mean", delta=1.0, weight=None):
    """dx = clip(d, -delta, delta) * upstream."""
    input, target, weight = _in_dtype(input, target, weight)
    d = np.subtract(input, target)
    np.clip(d, -delta, delta, out=d)
    d *= _weighted_upstream(grad_output, reduction, d.shape, weight, False, d.dtype)
    return sum_to(d, input.shape)


# ----------------------------------------------------------------------------- classification
def _class_args(who, input, target, weight, ignore_index, probabilities_allowed):
    """Validate (input, target, weight) of nll_loss / cross_entropy.

    Input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``; target class indices of shape ``(N,)``,
    ``()`` or ``(N, d1, ...)`` in ``[0, C)`` or equal to ``ignore_index``, or (cross_entropy)
    class probabilities of the input's shape. Returns (x, t, w, probabilities).
    """
    x = _float_arg(who, input)
    if x.ndim == 0:
        raise ValueError(f"{who}: expected input (N, C), (C,) or (N, C, d1, ...), got a 0-d array")
    classes = x.shape[0 if x.ndim == 1 else 1]
    if classes == 0:  # torch takes it only when every target is ignore_index (and returns NaN)
        raise ValueError(f"{who}: expected input with at least one class (C > 0), got shape {x.shape}")
    w = None
    if weight is not None:
        w = _like(who, weight, x, "weight")
        if w.shape != (classes,):
            raise ValueError(f"{who}: expected weight of shape ({classes},) (one per class), got {w.shape}")
    t = np.asarray(target)
    if probabilities_allowed and t.shape == x.shape:
        if t.dtype.kind != "f":
            raise TypeError(f"{who}: a target shaped like the input {x.shape} holds class probabilities and must "
                            f"be floating-point, got {t.dtype}")
        if ignore_index >= 0:
            raise ValueError(f"{who}: ignore_index is not supported for class-probability targets")
        return x, t.astype(x.dtype, copy=False), w, True
    expected = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    if t.shape != expected:
        if x.ndim == 1:
            names = ""
        elif x.ndim == 2:
            names = "(N,) = "
        else:
            names = "(N, " + ", ".join(f"d{i}" for i in range(1, x.ndim - 1)) + ") = "
        hint = "; class probabilities take the input's shape" if probabilities_allowed else ""
        raise ValueError(f"{who}: expected target shape {names}{expected} for input {x.shape}, got {t.shape}{hint}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{who}: class-index target must be an integer array, got {t.dtype}")
    _check_classes(who, t, classes, ignore_index)
    return x, t, w, False


def _check_classes(who, t, classes, ignore_index):
    if t.size == 0 or (t.min() >= 0 and t.max() < classes):
        return
    bad = (t < 0) | (t >= classes)
    bad &= t != ignore_index
    if bad.any():
        pos = np.argwhere(bad)[0]
        where = "" if t.ndim == 0 else f" at position {int(pos[0]) if t.ndim == 1 else tuple(int(i) for i in pos)}"
        raise ValueError(f"{who}: target class {int(t[tuple(pos)])} out of range [0, {classes}){where}")


def _batched(x, t):
    """Unbatched ``(C,)`` input and ``()`` target as a batch of one."""
    return (x[None], t[None]) if x.ndim == 1 else (x, t)


def _class_weights(t, w, ignore_index, dtype):
    """(safe targets, valid mask, per-element weight w[t] (1 without weights), 0 where ignored)."""
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    wt = valid.astype(dtype) if w is None else w[safe] * valid
    return safe, valid, wt


def _per_class(w, ndim):
    """Class weights shaped to broadcast along dim 1."""
    return w.reshape((1, -1) + (1,) * (ndim - 2))


def _class_reduce(loss, reduction, total):
    if reduction == "none":
        return loss
    s = loss.sum()
    if reduction == "mean":
        # torch: weighted mean, NaN when every target is ignored
        s = s / total if total != 0 else np.nan
    return np.asarray(s, dtype=loss.dtype)


def _class_upstream(grad_output, reduction, total, shape, dtype):
    """Upstream gradient per target element; for 'mean' divided by the total weight (0 if none)."""
    g = np.asarray(grad_output, dtype=dtype)
    if reduction == "none":
        return g.reshape(shape)
    if reduction == "mean":
        g = g / total if total != 0 else np.zeros_like(g)
    return g


def _at_class(a, index):
    """a[n, index[n, ...], ...]: (N, C, *d) at (N, *d) class indices -> (N, *d), a new array.

    Plain fancy indexing for the common (N, C) case: np.take_along_axis costs ~12 us of
    Python per call, a fifth of a small model's loss forward and backward.
    """
    if a.ndim == 2:
        return a[np.arange(len(index)), index]
    return np.take_along_axis(a, index[:, None], axis=1)[:, 0]


def _put_at_class(a, index, values):
    """a[n, index[n, ...], ...] = values, in place."""
    if a.ndim == 2:
        a[np.arange(len(index)), index] = values
    else:
        np.put_along_axis(a, index[:, None], values[:, None], axis=1)


def _nll(logp, t, w, ignore_index, reduction):
    safe, valid, wt = _class_weights(t, w, ignore_index, logp.dtype)
    loss = _at_class(logp, safe)
    loss *= wt
    np.negative(loss, out=loss)
    return _class_reduce(loss, reduction, wt.sum()), valid, wt


def _unbatch(loss, unbatched, reduction):
    return loss.reshape(()) if unbatched and reduction == "none" else loss


def _nll_loss(input, target, weight, ignore_index, reduction, who):
    _check_reduction(who, reduction)
    x, t, w, _ = _class_args(who, input, target, weight, ignore_index, False)
    loss = _nll(*_batched(x, t), w, ignore_index, reduction)[0]
    return _unbatch(loss, x.ndim == 1, reduction), (x, t, w)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log likelihood -w[y] x[y] of log-probabilities ``input`` at class indices ``target``.

    Shapes: input (N, C), (C,) or (N, C, d1, ...); target (N,), () or (N, d1, ...) integer.
    'mean' divides by the sum of the targets' weights (ignored targets count 0).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _nll_loss(input, target, weight, ignore_index, reduction, "nll_loss")[0]


def nll_loss_backward(grad_output, input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """dx = -w[y] * upstream at each target's class, 0 elsewhere."""
    x, t = _batched(np.asarray(input), np.asarray(target))
    safe, _, wt = _class_weights(t, None if weight is None else np.asarray(weight, x.dtype), ignore_index, x.dtype)
    g = _class_upstream(grad_output, reduction, wt.sum(), t.shape, x.dtype)
    dx = np.zeros_like(x)
    _put_at_class(dx, safe, np.negative(g * wt))
    return dx.reshape(np.shape(input))


def _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing, who):
    _check_reduction(who, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{who}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    x, t, w, probabilities = _class_args(who, input, target, weight, ignore_index, True)
    unbatched = x.ndim == 1
    logp, t = _batched(x, t)
    logp = _log_softmax(logp, 1)
    if probabilities:
        loss = _soft_cross_entropy(logp, t, w, reduction, label_smoothing)
    else:
        loss = _hard_cross_entropy(logp, t, w, ignore_index, reduction, label_smoothing)
    return _unbatch(loss, unbatched, reduction), (logp.reshape(x.shape), t.reshape(np.shape(target)), w)


def _plain(logp, t, w, ignore_index, label_smoothing):
    """True for the common case that takes the short path: (N, C) log-probabilities, no class
    weights, no smoothing, no ignored target (the general path costs ~20 us more per step)."""
    return w is None and label_smoothing == 0 and logp.ndim == 2 and not (t == ignore_index).any()


def _hard_cross_entropy(logp, t, w, ignore_index, reduction, label_smoothing):
    if _plain(logp, t, w, ignore_index, label_smoothing):
        loss = logp[np.arange(len(t)), t]
        np.negative(loss, out=loss)
        return _class_reduce(loss, reduction, len(t))
    nll, valid, wt = _nll(logp, t, w, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    # torch: (1 - eps) * nll + eps / C * (sum over classes of -w_c log p_c), reduced like nll
    classes = logp.shape[1]
    smooth = (logp if w is None else logp * _per_class(w, logp.ndim)).sum(axis=1)
    smooth *= valid
    np.negative(smooth, out=smooth)
    smooth = _class_reduce(smooth, reduction, wt.sum())
    return np.asarray((1 - label_smoothing) * nll + smooth * (label_smoothing / classes), dtype=logp.dtype)


def _smoothed(q, label_smoothing, classes):
    return q * (1 - label_smoothing) + label_smoothing / classes if label_smoothing > 0 else q


def _soft_cross_entropy(logp, q, w, reduction, label_smoothing):
    classes = logp.shape[1]
    prod = logp * _smoothed(q, label_smoothing, classes)
    if w is not None:
        prod *= _per_class(w, logp.ndim)
    loss = prod.sum(axis=1)
    np.negative(loss, out=loss)
    if reduction == "mean":
        # torch divides by the number of samples (N * d1 * ...), not by weights
        return np.asarray(loss.sum() / loss.size if loss.size else np.nan, dtype=logp.dtype)
    return _reduce(loss, reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross entropy between logits ``input`` and class indices or class probabilities ``target``.

    Shapes: input (N, C), (C,) or (N, C, d1, ...); target either integer class indices of shape
    (N,), () or (N, d1, ...), or floating probabilities of the input's shape. Computed through
    log-softmax, so any logits are safe. ``weight`` (C,) rescales classes; ``ignore_index``
    targets contribute nothing; ``label_smoothing`` mixes the target with the uniform
    distribution. 'mean' with class indices divides by the sum of the targets' weights.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing, "cross_entropy")[0]


def cross_entropy_backward(grad_output, input, target, weight=None, *, ignore_index=-100, reduction="mean",
                           label_smoothing=0.0, log_probs=None):
    """dx = (softmax(x) * sum_c w_c q_c - w * q) * upstream, q the (smoothed) target distribution.

    ``log_probs``: log_softmax(input) over the class dim, if the caller kept it from forward
    (``input`` may then be None); otherwise it is recomputed from ``input``.
    """
    if log_probs is None:
        x = np.asarray(input)
        log_probs = _log_softmax(x, 0 if x.ndim == 1 else 1)
    shape = log_probs.shape
    t = np.asarray(target)
    logp, t = _batched(log_probs, t)
    w = None if weight is None else np.asarray(weight, dtype=logp.dtype)
    if t.shape == logp.shape and t.dtype.kind == "f":
        dx = _soft_cross_entropy_backward(grad_output, logp, t, w, reduction, label_smoothing)
    else:
        dx = _hard_cross_entropy_backward(grad_output, logp, t, w, ignore_index, reduction, label_smoothing)
    return dx.reshape(shape)


def _hard_cross_entropy_backward(grad_output, logp, t, w, ignore_index, reduction, label_smoothing):
    if _plain(logp, t, w, ignore_index, label_smoothing):
        g = _class_upstream(grad_output, reduction, len(t), t.shape, logp.dtype)  # () or, for 'none', (N,)
        dx = np.exp(logp)
        dx *= g[:, None] if g.ndim else g
        dx[np.arange(len(t)), t] -= g
        return dx
    safe, valid, wt = _class_weights(t, w, ignore_index, logp.dtype)
    g = _class_upstream(grad_output, reduction, wt.sum(), t.shape, logp.dtype)
    at_target = np.multiply(g, wt)
    at_target *= 1 - label_smoothing
    row = at_target.copy()
    if label_smoothing > 0:
        uniform = g * valid * (label_smoothing / logp.shape[1])
        row += uniform * (logp.shape[1] if w is None else w.sum())
    dx = np.exp(logp)
    dx *= row[:, None]
    picked = _at_class(dx, safe)
    picked -= at_target
    _put_at_class(dx, safe, picked)
    if label_smoothing > 0:
        dx -= uniform[:, None] if w is None else uniform[:, None] * _per_class(w, logp.ndim)
    return dx


def _soft_cross_entropy_backward(grad_output, logp, q, w, reduction, label_smoothing):
    wq = _smoothed(q, label_smoothing, logp.shape[1])
    if w is not None:
        wq = wq * _per_class(w, logp.ndim)
    count = logp.size // logp.shape[1] if logp.shape[1] else 0
    g = _upstream(grad_output, reduction, count, logp.dtype)
    if reduction == "none":
        g = g.reshape((logp.shape[0], 1) + logp.shape[2:])
    dx = np.exp(logp)
    dx *= wq.sum(axis=1, keepdims=True)
    dx -= wq
    dx *= g
    return dx


def _clamped_log(x, log_fn, defined):
    """max(log_fn(x), -100), silent where the log is -inf (``defined`` False)."""
    out = np.full_like(x, -100.0)
    log_fn(x, out=out, where=defined)
    return np.maximum(out, -100.0, out=out)


@zero_d_safe
def _bce(input, target, weight, reduction, who):
    _check_reduction(who, reduction)
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    _same_shape(who, x, t)
    if x.size and not (x.min() >= 0 and x.max() <= 1):
        raise ValueError(f"{who}: all elements of input should be between 0 and 1 (probabilities; use "
                         f"BCEWithLogitsLoss / binary_cross_entropy_with_logits for logits), got values in "
                         f"[{x.min()}, {x.max()}]")
    w = None
    if weight is not None:
        w = _like(who, weight, x, "weight")
        _broadcastable(who, x.shape, w, "weight", to_input=True)
    # torch: (y - 1) * max(log(1 - x), -100) - y * max(log(x), -100)
    loss = np.subtract(t, 1)
    loss *= _clamped_log(np.negative(x), np.log1p, x < 1)
    loss -= t * _clamped_log(x, np.log, x > 0)
    if w is not None:
        loss *= w
    return _reduce(loss, reduction), (x, t, w)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w (y log x + (1 - y) log(1 - x)) for probabilities x in [0, 1], each log clamped at -100.

    Shapes: input, target (*) alike; weight broadcasts to them.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _bce(input, target, weight, reduction, "binary_cross_entropy")[0]


@zero_d_safe
def binary_cross_entropy_backward(grad_output, input, target, weight=None, *, reduction="mean"):
    """dx = w (x - y) / max(x (1 - x), 1e-12) * upstream (torch's floor)."""
    input, target, weight = _in_dtype(input, target, weight)
    x = input
    denom = np.subtract(1, x)
    denom *= x
    np.maximum(denom, _BCE_EPSILON, out=denom)
    dx = np.subtract(x, target)
    dx /= denom
    if weight is not None:
        dx *= weight
    dx *= _upstream(grad_output, reduction, x.size, x.dtype)
    return dx


@zero_d_safe
def _bce_logits(input, target, weight, pos_weight, reduction, who):
    _check_reduction(who, reduction)
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    _same_shape(who, x, t)
    w = pw = None
    if weight is not None:
        w = _like(who, weight, x, "weight")
        _broadcastable(who, x.shape, w, "weight", to_input=True)
    if pos_weight is not None:
        pw = _like(who, pos_weight, x, "pos_weight")
        _broadcastable(who, x.shape, pw, "pos_weight", to_input=True)
    # torch: (1 - y) x - log_weight * logsigmoid(x), log_weight = 1 + (pos_weight - 1) y
    log_sig = np.negative(_softplus1(np.negative(x)))
    if pw is not None:
        log_weight = (pw - 1) * t
        log_weight += 1
        log_sig *= log_weight
    loss = np.subtract(1, t)
    loss *= x
    loss -= log_sig
    if w is not None:
        loss *= w
    return _reduce(loss, reduction), (x, t, w, pw)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross entropy in one stable formula (finite for any logits).

    Shapes: input, target (*) alike; weight broadcasts to them; pos_weight (weight of positive
    examples) broadcasts along the last dims, e.g. (C,) for input (N, C).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _bce_logits(input, target, weight, pos_weight, reduction, "binary_cross_entropy_with_logits")[0]


@zero_d_safe
def binary_cross_entropy_with_logits_backward(grad_output, input, target, weight=None, *, reduction="mean",
                                              pos_weight=None):
    """dx = w ((p y + 1 - y) sigmoid(x) - p y) * upstream, p = pos_weight (1 without)."""
    input, target, weight, pos_weight = _in_dtype(input, target, weight, pos_weight)
    x = input
    s = special.expit(x)
    if pos_weight is None:
        s -= target
    else:
        py = pos_weight * target
        factor = py + 1
        factor -= target
        s *= factor
        s -= py
    if weight is not None:
        s *= weight
    s *= _upstream(grad_output, reduction, x.size, x.dtype)
    return s


# ----------------------------------------------------------------------------- distributions
@zero_d_safe
def _kl_div(input, target, reduction, log_target, who):
    _check_reduction(who, reduction, _REDUCTIONS + ("batchmean",))
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    if t.shape != x.shape:
        _broadcastable(who, x.shape, t, "target")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=5)
    if log_target:
        loss = np.subtract(t, x)
        loss *= np.exp(t)
    else:
        loss = special.xlogy(t, t) - t * x
    if reduction == "batchmean":
        with np.errstate(invalid="ignore", divide="ignore"):  # an empty batch gives NaN, as torch, silently
            total = loss.sum() / x.shape[0] if x.ndim else loss.sum()
        return np.asarray(total, dtype=x.dtype), (x, t)
    return _reduce(loss, reduction), (x, t)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise: y (log y - x), or exp(y) (y - x) with ``log_target``.

    ``input`` holds log-probabilities. 'batchmean' divides the sum by the batch size (the
    true KL divergence); 'mean' divides by every element (with torch's warning).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _kl_div(input, target, reduction, log_target, "kl_div")[0]


@zero_d_safe
def kl_div_backward(grad_output, input, target, *, reduction="mean", log_target=False):
    """dx = -y * upstream (-exp(y) with ``log_target``)."""
    input, target = _in_dtype(input, target)
    x = input
    d = np.exp(target) if log_target else np.array(target, dtype=x.dtype)
    d = np.negative(np.broadcast_to(d, np.broadcast_shapes(x.shape, d.shape)))
    if reduction == "batchmean":
        with np.errstate(invalid="ignore", divide="ignore"):
            d *= np.asarray(grad_output, dtype=x.dtype) / (x.shape[0] if x.ndim else 1)
    else:
        d *= _upstream(grad_output, reduction, d.size, x.dtype)
    return sum_to(d, x.shape)


def _gaussian_var(who, var, x):
    """torch's accepted var shapes: the input's, the input's without its last dim, or one dim of size 1."""
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError(f"{who}: var has negative entry/entries")
        return np.full_like(x, var), False
    v = _like(who, var, x, "var")
    if np.any(v < 0):
        raise ValueError(f"{who}: var has negative entry/entries")
    if v.shape != x.shape:
        if x.shape[:-1] == v.shape:
            v = v[..., None]
        elif not (v.ndim == x.ndim and sum(b for a, b in zip(x.shape, v.shape) if a != b) == 1):
            raise ValueError(f"{who}: var of shape {v.shape} is of incorrect size for input shape {x.shape} "
                             "(expected the input's shape, that shape without the last dim, or one dim of size 1)")
    return v, True


@zero_d_safe
def _gaussian_nll_loss(input, target, var, full, eps, reduction, who):
    _check_reduction(who, reduction)
    x, t = _pair(who, input, target, warn=False)
    v, var_is_array = _gaussian_var(who, var, x)
    vc = np.maximum(v, eps)
    loss = np.subtract(x, t)
    np.multiply(loss, loss, out=loss)
    loss /= vc
    loss += np.log(vc)
    loss *= 0.5
    if full:
        loss += _HALF_LOG_2PI
    return _reduce(loss, reduction), (x, t, var if not var_is_array else np.asarray(var, dtype=x.dtype))


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log v + (x - y)^2 / v) (+ 0.5 log 2 pi if ``full``), v = max(var, eps).

    Shapes: input (N, *) or (*); target like the input; var like the input, or without its
    last dim, or with one dim of size 1 (homoscedastic), or a python float.
    """
    return _gaussian_nll_loss(input, target, var, full, eps, reduction, "gaussian_nll_loss")[0]


@zero_d_safe
def gaussian_nll_loss_backward(grad_output, input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Returns (grad_input, grad_var); grad_var is None for a python-float var.

    The clamp at eps is invisible to the gradient, as in torch (it clamps under no_grad).
    """
    input, target = _in_dtype(input, target)
    x = input
    v, var_is_array = _gaussian_var("gaussian_nll_loss", var, x)
    vc = np.maximum(v, eps)
    d = np.subtract(x, target)
    d /= vc
    g = _upstream(grad_output, reduction, math.prod(np.broadcast_shapes(d.shape, vc.shape)), x.dtype)
    d *= g
    grad_var = None
    if var_is_array:
        # 0.5 (1 / v - (x - y)^2 / v^2) = 0.5 (1 - d^2 v) / v with d = (x - y) / v
        dv = np.subtract(x, target)
        dv /= vc
        np.multiply(dv, dv, out=dv)
        np.subtract(np.reciprocal(vc), dv, out=dv)
        dv *= 0.5 * g
        grad_var = sum_to(dv, v.shape).reshape(np.shape(var))
    return sum_to(d, x.shape), grad_var


@zero_d_safe
def _poisson_nll_loss(input, target, log_input, full, eps, reduction, who):
    _check_reduction(who, reduction)
    x, t = _pair(who, input, target, warn=False)
    if log_input:
        with np.errstate(over="ignore"):  # exp(x) beyond the dtype's range is inf, as in torch
            loss = np.exp(x)
        loss = loss - t * x
    else:
        loss = x - t * np.log(x + eps)
    if full:
        # Stirling's term t log t - t + 0.5 log(2 pi t), only where t > 1
        big = np.where(t > 1, t, 1)
        stirling = special.xlogy(big, big)
        stirling -= big
        stirling += 0.5 * np.log(2 * math.pi * big)
        stirling *= t > 1
        loss = loss + stirling
    return _reduce(loss, reduction), (x, t)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """Poisson negative log likelihood: exp(x) - y x (``log_input``), else x - y log(x + eps)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _poisson_nll_loss(input, target, log_input, full, eps, reduction, "poisson_nll_loss")[0]


@zero_d_safe
def poisson_nll_loss_backward(grad_output, input, target, log_input=True, full=False, *, eps=1e-8,
                              reduction="mean"):
    """dx = (exp(x) - y) * upstream, or (1 - y / (x + eps)) * upstream."""
    input, target = _in_dtype(input, target)
    x = input
    if log_input:
        with np.errstate(over="ignore"):
            d = np.exp(x)
        d = d - target
    else:
        d = np.divide(target, x + eps)
        np.subtract(1, d, out=d)
    d *= _upstream(grad_output, reduction, d.size, x.dtype)
    return sum_to(d, x.shape)


# ----------------------------------------------------------------------------- margins
@zero_d_safe
def _soft_margin_loss(input, target, reduction, who):
    _check_reduction(who, reduction)
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    _same_shape(who, x, t)
    return _reduce(_softplus1(np.negative(t * x)), reduction), (x, t)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-y x)) for labels y = +-1, finite for any x. Shapes: input, target (*) alike."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _soft_margin_loss(input, target, reduction, "soft_margin_loss")[0]


@zero_d_safe
def soft_margin_loss_backward(grad_output, input, target, *, reduction="mean"):
    """dx = -y sigmoid(-y x) * upstream."""
    input, target = _in_dtype(input, target)
    x = input
    z = np.multiply(target, x)
    np.negative(z, out=z)
    d = special.expit(z)
    d *= target
    np.negative(d, out=d)
    d *= _upstream(grad_output, reduction, x.size, x.dtype)
    return d


@zero_d_safe
def _margin_ranking_loss(input1, input2, target, margin, reduction, who):
    _check_reduction(who, reduction)
    x1 = _float_arg(who, input1, "input1")
    x2 = _like(who, input2, x1, "input2")
    t = _like(who, target, x1, "target")
    if not x1.ndim == x2.ndim == t.ndim:  # torch broadcasts, but only between arrays of one rank
        raise ValueError(f"{who}: expected input1, input2 and target of the same number of dimensions, "
                         f"got shapes {x1.shape}, {x2.shape} and {t.shape}")
    _broadcastable(who, x1.shape, x2, "input2")
    _broadcastable(who, np.broadcast_shapes(x1.shape, x2.shape), t, "target")
    v = np.multiply(t, np.subtract(x1, x2))
    np.subtract(margin, v, out=v)
    return _reduce(np.maximum(v, 0, out=v), reduction), (x1, x2, t)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -y (x1 - x2) + margin) for y = +-1. Shapes: input1, input2, target (*) alike (or broadcast)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _margin_ranking_loss(input1, input2, target, margin, reduction, "margin_ranking_loss")[0]


@zero_d_safe
def margin_ranking_loss_backward(grad_output, input1, input2, target, margin=0, *, reduction="mean"):
    """Returns (grad_input1, grad_input2) = (-y, y) * upstream where the margin is not met (>= 0, as torch's clamp)."""
    input1, input2, target = _in_dtype(input1, input2, target)
    v = np.multiply(target, np.subtract(input1, input2))
    np.subtract(margin, v, out=v)
    d = np.multiply(target, v >= 0)
    d *= _upstream(grad_output, reduction, d.size, d.dtype)
    return sum_to(np.negative(d), np.shape(input1)), sum_to(d, np.shape(input2))


@zero_d_safe
def _hinge_embedding_loss(input, target, margin, reduction, who):
    _check_reduction(who, reduction)
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    _broadcastable(who, x.shape, t, "target")
    # torch: max(0, margin - x) where y != 1, plus x where y != -1
    loss = np.asarray(np.subtract(margin, x))  # an array even for 0-d x (then with a larger target)
    np.maximum(loss, 0, out=loss)
    loss = loss * (t != 1)
    loss += x * (t != -1)
    return _reduce(loss, reduction), (x, t)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """x where y == 1, max(0, margin - x) where y == -1. Shapes: input, target (*) alike."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _hinge_embedding_loss(input, target, margin, reduction, "hinge_embedding_loss")[0]


@zero_d_safe
def hinge_embedding_loss_backward(grad_output, input, target, margin=1.0, *, reduction="mean"):
    """dx = (y != -1) - (y != 1) * (margin - x >= 0), times upstream."""
    input, target = _in_dtype(input, target)
    x = input
    d = np.multiply(np.subtract(margin, x) >= 0, target != 1, dtype=x.dtype)
    np.subtract(target != -1, d, out=d)
    d *= _upstream(grad_output, reduction, d.size, x.dtype)
    return sum_to(d, x.shape)


def _cosine_parts(x1, x2):
    """(cos, x1's squared norm + eps, x2's, sqrt of their product), over the last dim."""
    m1 = np.einsum("...i,...i->...", x1, x1) + _COSINE_EPSILON
    m2 = np.einsum("...i,...i->...", x2, x2) + _COSINE_EPSILON
    denom = np.sqrt(m1 * m2)
    return np.einsum("...i,...i->...", x1, x2) / denom, m1, m2, denom


def _cosine_embedding_loss(input1, input2, target, margin, reduction, who):
    _check_reduction(who, reduction)
    x1 = _float_arg(who, input1, "input1")
    x2 = _like(who, input2, x1, "input2")
    t = _like(who, target, x1, "target")
    if x1.ndim not in (1, 2) or x2.shape != x1.shape or t.shape != x1.shape[:-1]:
        raise ValueError(f"{who}: expected input1 and input2 of shape (N, D) or (D,) and target (N,) or (), "
                         f"got {x1.shape}, {x2.shape} and {t.shape}")
    cos = _cosine_parts(x1, x2)[0]
    loss = np.subtract(1, cos) * (t == 1)
    loss += np.maximum(cos - margin, 0) * (t == -1)
    return _reduce(np.asarray(loss, dtype=x1.dtype), reduction), (x1, x2, t)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where y == 1, max(0, cos(x1, x2) - margin) where y == -1.

    Shapes: input1, input2 (N, D) or (D,); target (N,) or ().
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _cosine_embedding_loss(input1, input2, target, margin, reduction, "cosine_embedding_loss")[0]


def cosine_embedding_loss_backward(grad_output, input1, input2, target, margin=0, *, reduction="mean"):
    """Returns (grad_input1, grad_input2); d cos / d x1 = x2 / |x1||x2| - cos x1 / |x1|^2."""
    input1, input2, target = _in_dtype(input1, input2, target)
    x1, x2, t = input1, input2, target
    cos, m1, m2, denom = _cosine_parts(x1, x2)
    dcos = np.multiply(cos - margin >= 0, t == -1, dtype=x1.dtype)
    dcos -= t == 1
    dcos *= _upstream(grad_output, reduction, dcos.size, x1.dtype)
    dcos = np.asarray(dcos)[..., None]
    cos, denom = cos[..., None], denom[..., None]
    g1 = x2 / denom - cos * x1 / m1[..., None]
    g2 = x1 / denom - cos * x2 / m2[..., None]
    return g1 * dcos, g2 * dcos


# ----------------------------------------------------------------------------- multi-class margins
def _margin_class_args(who, input, target):
    """Input (N, C), (C,) or () and class indices (N,) or (): returns (x, x as (N, C), t as (N,))."""
    x = _float_arg(who, input)
    if x.ndim > 2 or (x.ndim and x.shape[-1] == 0):
        raise ValueError(f"{who}: expected input (N, C) or (C,) with C > 0, got shape {x.shape}")
    x2 = x.reshape(-1, x.shape[-1] if x.ndim else 1)
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{who}: target must be an integer array of class indices, got dtype {t.dtype}")
    if t.ndim > 1 or t.size != x2.shape[0]:
        raise ValueError(f"{who}: expected target of shape ({x2.shape[0]},) (one class index per sample) for input "
                         f"{x.shape}, got {t.shape}")
    t = t.reshape(-1)
    _check_classes(who, t, x2.shape[1], None)
    return x, x2, t


def _multi_margin_loss(input, target, p, margin, weight, reduction, who):
    _check_reduction(who, reduction)
    if p not in (1, 2):
        raise ValueError(f"{who}: only p == 1 and p == 2 supported, got p={p}")
    x, x2, t = _margin_class_args(who, input, target)
    w = None
    if weight is not None:
        w = _like(who, weight, x, "weight")
        if w.shape != (x2.shape[1],):
            raise ValueError(f"{who}: expected weight of shape ({x2.shape[1]},) (one per class), got {w.shape}")
    z = _class_margins(x2, t, margin)
    h = z if p == 1 else np.multiply(z, z)
    if w is not None:
        h *= w[t][:, None]
    loss = h.sum(axis=1)
    loss /= x2.shape[1]
    loss = _reduce(loss, reduction)
    return (loss.reshape(np.shape(target)) if reduction == "none" else loss), (x, t, w)  # torch: the target's shape


def _class_margins(x2, t, margin):
    """max(0, margin - x[y] + x[j]) for every class j, 0 at j = y."""
    rows = np.arange(x2.shape[0])
    z = x2 - x2[rows, t][:, None]
    z += margin
    z[rows, t] = 0
    return np.maximum(z, 0, out=z)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Multi-class hinge: sum over j != y of w[y] max(0, margin - x[y] + x[j])^p / C, p in {1, 2}.

    Shapes: input (N, C) or (C,); target integer (N,) or (); weight (C,); output () or, for
    'none', (N,) or ().
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _multi_margin_loss(input, target, p, margin, weight, reduction, "multi_margin_loss")[0]


def multi_margin_loss_backward(grad_output, input, target, p=1, margin=1.0, weight=None, *, reduction="mean"):
    """dx[j] = w[y] dh_j / C * upstream over active margins (dh = 1, or 2 z for p = 2); dx[y] = -sum_j dx[j]."""
    input, weight = _in_dtype(input, weight)
    x2 = input.reshape(-1, input.shape[-1] if input.ndim else 1)
    t = np.asarray(target).reshape(-1)
    z = _class_margins(x2, t, margin)
    d = (z > 0).astype(x2.dtype) if p == 1 else np.multiply(z, 2)
    if weight is not None:
        d *= weight[t][:, None]
    g = _upstream(grad_output, reduction, x2.shape[0], x2.dtype)
    d *= np.reshape(g, (-1, 1)) / x2.shape[1]
    rows = np.arange(x2.shape[0])
    d[rows, t] = -d.sum(axis=1)
    return d.reshape(input.shape)


def _multilabel_args(who, input, target):
    """Input (N, C), (C,) or () and its targets: class indices padded with -1 (the first -1 ends them).

    Returns (x, x2 (N, C), counts (N, C): how often each class is listed as a target).
    """
    x = _float_arg(who, input)
    if x.ndim > 2 or (x.ndim and x.shape[-1] == 0):
        raise ValueError(f"{who}: expected input (N, C) or (C,) with C > 0, got shape {x.shape}")
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{who}: target must be an integer array of class indices, got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"{who}: expected target of the input's shape {x.shape}, got {t.shape}")
    n, c = (x.shape[0] if x.ndim == 2 else 1), (x.shape[-1] if x.ndim else 1)
    t2 = t.reshape(n, c)
    if t2.size and (t2.min() < -1 or t2.max() >= c):
        bad = t2[(t2 < -1) | (t2 >= c)][0]
        raise ValueError(f"{who}: target values must be class indices in [0, {c}) or -1 (end of the list), got {bad}")
    listed = np.cumprod(t2 != -1, axis=1).astype(bool)
    index = (np.arange(n)[:, None] * c + t2)[listed]
    counts = np.bincount(index, minlength=n * c).reshape(n, c).astype(x.dtype)
    return x, x.reshape(n, c), counts


def _multilabel_pairs(x2, counts):
    """(z, m): z[n, j, k] = 1 - x[j] + x[k]; m its multiplicity (target j listed m times, k not a target, z > 0)."""
    z = np.subtract(1, x2)[:, :, None] + x2[:, None, :]
    m = counts[:, :, None] * (counts == 0)[:, None, :]
    m *= z > 0
    return z, m


def _multilabel_margin_loss(input, target, reduction, who):
    _check_reduction(who, reduction)
    x, x2, counts = _multilabel_args(who, input, target)
    z, m = _multilabel_pairs(x2, counts)
    z *= m
    loss = z.sum(axis=(1, 2))
    loss /= x2.shape[1]
    loss = _reduce(loss, reduction)
    return (loss.reshape(()) if x.ndim < 2 and reduction == "none" else loss), (x, np.asarray(target))


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Multi-label hinge: sum over targets j and non-targets k of max(0, 1 - (x[j] - x[k])) / C.

    Shapes: input (N, C) or (C,); target integer of the same shape, holding the target classes
    first and then -1 (entries after the first -1 are ignored); output () or, for 'none', (N,) or ().
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _multilabel_margin_loss(input, target, reduction, "multilabel_margin_loss")[0]


def multilabel_margin_loss_backward(grad_output, input, target, *, reduction="mean"):
    """dx[k] += m_jk g / C for each active (target j, non-target k) pair, dx[j] -= the same."""
    x, x2, counts = _multilabel_args("multilabel_margin_loss", _as_float(input), target)
    _, m = _multilabel_pairs(x2, counts)
    g = _upstream(grad_output, reduction, x2.shape[0], x2.dtype)
    m *= np.reshape(g, (-1, 1, 1)) / x2.shape[1]
    d = m.sum(axis=1)
    d -= m.sum(axis=2)
    return d.reshape(x.shape)


def _multilabel_soft_margin_loss(input, target, weight, reduction, who):
    _check_reduction(who, reduction)
    x = _float_arg(who, input)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"{who}: expected input (N, C) or (C,) with C > 0, got shape {x.shape}")
    t = _like(who, target, x, "target")
    _broadcastable(who, x.shape, t, "target", to_input=True)
    w = None
    if weight is not None:
        w = _like(who, weight, x, "weight")
        _broadcastable(who, x.shape, w, "weight", to_input=True)
    # torch: -(y logsigmoid(x) + (1 - y) logsigmoid(-x)), with -logsigmoid(x) = softplus(-x)
    loss = t * _softplus1(np.negative(x))
    loss += (1 - t) * _softplus1(x)
    if w is not None:
        loss *= w
    loss = np.asarray(loss.sum(axis=-1))
    loss /= x.shape[-1]
    return _reduce(loss, reduction), (x, t, w)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Per-class logistic loss averaged over the C classes: mean_c w_c softplus(-y_c x_c) for y in {0, 1}.

    Shapes: input (N, C) or (C,) (any leading dims; classes last); target like the input;
    weight broadcasts to it, e.g. (C,); output () or, for 'none', the input's shape without C.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _multilabel_soft_margin_loss(input, target, weight, reduction, "multilabel_soft_margin_loss")[0]


def multilabel_soft_margin_loss_backward(grad_output, input, target, weight=None, *, reduction="mean"):
    """dx = w (sigmoid(x) - y) / C * upstream."""
    input, target, weight = _in_dtype(input, target, weight)
    x = input
    d = special.expit(x)
    d -= target
    if weight is not None:
        d *= weight
    g = _upstream(grad_output, reduction, math.prod(x.shape[:-1]), x.dtype)
    d *= np.expand_dims(g, -1) / x.shape[-1]
    return d


# ----------------------------------------------------------------------------- triplets
def _triplet_args(who, anchor, positive, negative, margin):
    if margin <= 0:
        raise ValueError(f"{who}: margin must be greater than 0, got {margin}")
    a = _float_arg(who, anchor, "anchor")
    p = _like(who, positive, a, "positive")
    n = _like(who, negative, a, "negative")
    if not a.ndim == p.ndim == n.ndim:
        raise ValueError(f"{who}: expected anchor, positive and negative with the same number of dimensions, "
                         f"got shapes {a.shape}, {p.shape} and {n.shape}")
    return a, p, n


def _triplet_from_distances(d_pos, d_neg, d_swap, margin, reduction):
    """(loss, v) with v = margin + d(a, p) - d(a, n) (d(a, n) replaced by min(d(a, n), d(p, n)) with swap)."""
    closest = d_neg if d_swap is None else np.minimum(d_neg, d_swap)
    v = np.asarray(margin + d_pos - closest)
    return _reduce(np.asarray(np.maximum(v, 0)), reduction), v


def _triplet_distance_grads(grad_output, v, d_neg, d_swap, reduction):
    """Upstream gradients of d(a, p), d(a, n) and d(p, n) (None without swap).

    The hinge passes where v >= 0 and the minimum splits ties evenly, as torch's clamp_min and minimum.
    """
    g = _upstream(grad_output, reduction, v.size, v.dtype) * (v >= 0)
    if d_swap is None:
        return g, np.negative(g), None
    tie = (d_neg == d_swap).astype(v.dtype) * 0.5
    to_neg = tie + (d_neg < d_swap)
    to_swap = tie + (d_swap < d_neg)
    return g, -g * to_neg, -g * to_swap


def _triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction, who):
    _check_reduction(who, reduction)
    a, pos, neg = _triplet_args(who, anchor, positive, negative, margin)
    d_pos, s_pos = _pairwise_distance(a, pos, p, eps, False, who)
    d_neg, s_neg = _pairwise_distance(a, neg, p, eps, False, who)
    d_swap, s_swap = _pairwise_distance(pos, neg, p, eps, False, who) if swap else (None, None)
    loss, v = _triplet_from_distances(d_pos, d_neg, d_swap, margin, reduction)
    shapes = (a.shape, pos.shape, neg.shape)
    return loss, (v, d_neg, d_swap, s_pos, s_neg, s_swap, shapes)


def _triplet_margin_loss_backward(grad_output, saved, p, reduction):
    v, d_neg, d_swap, s_pos, s_neg, s_swap, (sa, sp, sn) = saved
    g_pos, g_neg, g_swap = _triplet_distance_grads(grad_output, v, d_neg, d_swap, reduction)
    da, dp = _pairwise_distance_backward(g_pos, *s_pos, p, sa, sp)
    da2, dn = _pairwise_distance_backward(g_neg, *s_neg, p, sa, sn)
    da += da2
    if g_swap is not None:
        dp2, dn2 = _pairwise_distance_backward(g_swap, *s_swap, p, sp, sn)
        dp += dp2
        dn += dn2
    return da, dp, dn


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)), d the p-norm distance of ``pairwise_distance`` (with ``eps``).

    ``swap``: d(a, n) becomes min(d(a, n), d(p, n)). Shapes: anchor, positive, negative (N, D)
    or (D,), all with the same number of dims (broadcasting); output () or, for 'none', (N,) or ().
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction,
                                "triplet_margin_loss")[0]


def triplet_margin_loss_backward(grad_output, anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, *,
                                 reduction="mean"):
    """Returns (grad_anchor, grad_positive, grad_negative)."""
    _, saved = _triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction,
                                    "triplet_margin_loss")
    return _triplet_margin_loss_backward(grad_output, saved, p, reduction)


def _check_distance_function(who, distance_function):
    if not (callable(distance_function) and callable(getattr(distance_function, "backward", None))):
        raise TypeError(f"{who}: distance_function must be a torchlite Module with forward(x1, x2) and backward "
                        f"(there is no autograd to differentiate a plain function), got {distance_function!r}")


def _triplet_with_distance(anchor, positive, negative, distance_function, margin, swap, reduction, who):
    """Calls ``distance_function`` (a Module) on (a, p), (a, n) and with swap (p, n): backward pops them in reverse."""
    _check_reduction(who, reduction)
    _check_distance_function(who, distance_function)
    a, pos, neg = _triplet_args(who, anchor, positive, negative, margin)
    d_pos = distance_function(a, pos)
    d_neg = distance_function(a, neg)
    d_swap = distance_function(pos, neg) if swap else None
    loss, v = _triplet_from_distances(d_pos, d_neg, d_swap, margin, reduction)
    return loss, (v, d_neg, d_swap)


def _triplet_with_distance_backward(grad_output, distance_function, v, d_neg, d_swap, reduction):
    g_pos, g_neg, g_swap = _triplet_distance_grads(grad_output, v, d_neg, d_swap, reduction)
    if g_swap is not None:
        dp2, dn2 = distance_function.backward(g_swap)
    da2, dn = distance_function.backward(g_neg)
    da, dp = distance_function.backward(g_pos)
    da = da + da2
    if g_swap is not None:
        dp = dp + dp2
        dn = dn + dn2
    return da, dp, dn


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)) for a distance Module ``d`` (default: pairwise_distance).

    ``distance_function`` must be a torchlite Module (its backward gives the gradients), e.g.
    ``nn.PairwiseDistance(p=1)``; it is run under ``no_grad`` here, so it keeps nothing.
    Shapes: anchor, positive, negative alike, as the distance takes them; output () or, for
    'none', the distance's shape.
    """
    who = "triplet_margin_with_distance_loss"
    if distance_function is None:
        return _triplet_margin_loss(anchor, positive, negative, margin, 2.0, 1e-6, swap, reduction, who)[0]
    with no_grad():
        return _triplet_with_distance(anchor, positive, negative, distance_function, margin, swap, reduction, who)[0]


def triplet_margin_with_distance_loss_backward(grad_output, anchor, positive, negative, *, distance_function=None,
                                               margin=1.0, swap=False, reduction="mean"):
    """Returns (grad_anchor, grad_positive, grad_negative), running the distance Module forward and backward."""
    who = "triplet_margin_with_distance_loss"
    if distance_function is None:
        _, saved = _triplet_margin_loss(anchor, positive, negative, margin, 2.0, 1e-6, swap, reduction, who)
        return _triplet_margin_loss_backward(grad_output, saved, 2.0, reduction)
    with enable_grad():
        _, saved = _triplet_with_distance(anchor, positive, negative, distance_function, margin, swap, reduction, who)
    return _triplet_with_distance_backward(grad_output, distance_function, *saved, reduction)


# ----------------------------------------------------------------------------- CTC
def _ctc_lengths(who, lengths, n, name):
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{who}: {name} must be integers (an int, a sequence or an integer array), "
                        f"got dtype {arr.dtype}")
    arr = arr.reshape(-1).astype(np.int64)
    if arr.size != n:
        raise ValueError(f"{who}: expected {name} of size {n} (the batch size), got {arr.size} values")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{who}: expected {name} >= 0, got {int(arr.min())}")
    return arr


def _ctc_args(who, log_probs, targets, input_lengths, target_lengths, blank):
    """(log_probs (T, N, C), padded targets (N, S), input_lengths (N,), target_lengths (N,), unbatched)."""
    lp = _float_arg(who, log_probs, "log_probs")
    if lp.ndim not in (2, 3):
        raise ValueError(f"{who}: expected log_probs (T, N, C) or (T, C), got shape {lp.shape}")
    unbatched = lp.ndim == 2
    lp = lp[:, None] if unbatched else lp
    steps, n, classes = lp.shape
    if not 0 <= blank < classes:
        raise ValueError(f"{who}: blank must be in label range [0, {classes}), got {blank}")
    il = _ctc_lengths(who, input_lengths, n, "input_lengths")
    tl = _ctc_lengths(who, target_lengths, n, "target_lengths")
    if il.size and il.max() > steps:
        raise ValueError(f"{who}: expected input_lengths to have value at most {steps} (T), got {int(il.max())}")
    tg = np.asarray(targets)
    if tg.dtype.kind not in "iu":
        raise TypeError(f"{who}: targets must be integer class indices, got dtype {tg.dtype}")
    tg = tg[None] if unbatched and tg.ndim == 0 else tg  # (S,) is read as concatenated: exactly the length
    longest = int(tl.max()) if tl.size else 0
    if tg.ndim == 1:
        if tg.size != tl.sum():
            raise ValueError(f"{who}: concatenated targets must hold sum(target_lengths) = {int(tl.sum())} labels, "
                             f"got {tg.size}")
        padded = np.full((n, longest), blank, np.int64)
        padded[np.arange(longest) < tl[:, None]] = tg
    elif tg.ndim == 2 and tg.shape[0] == n and tg.shape[1] >= longest:
        padded = np.where(np.arange(longest) < tl[:, None], tg[:, :longest], blank)
    else:
        raise ValueError(f"{who}: expected targets (N, S) with N = {n} and S >= max(target_lengths) = {longest}, "
                         f"or 1-d concatenated targets, got shape {np.shape(targets)}")
    bad = padded[(padded < 0) | (padded >= classes)]
    if bad.size:
        raise ValueError(f"{who}: target labels must lie in [0, {classes}), got {int(bad[0])}")
    return lp, padded, il, tl, unbatched


def _logsumexp3(a, b, c):
    """log(e^a + e^b + e^c), torch's CTC formula (shifted by the max; all -inf gives -inf)."""
    m = np.maximum(np.maximum(a, b), c)
    m[np.isneginf(m)] = 0
    s = np.exp(a - m)
    s += np.exp(b - m)
    s += np.exp(c - m)
    with np.errstate(divide="ignore"):
        np.log(s, out=s)
    s += m
    return s


def _ctc_extended(padded, blank):
    """The label sequence with blanks around and between labels (N, 2S+1), and where a step may skip
    one position (s >= 2 and label(s) != label(s - 2): not onto a blank, nor between repeats)."""
    n, longest = padded.shape
    ext = np.full((n, 2 * longest + 1), blank, np.int64)
    ext[:, 1::2] = padded
    skip = np.zeros(ext.shape, bool)
    skip[:, 2:] = ext[:, 2:] != ext[:, :-2]
    return ext, skip


def _shift(a, k, fill):
    """``a`` moved k positions along the last axis (right for k > 0, left for k < 0), ``fill`` coming in."""
    out = np.full_like(a, fill)
    if k > 0:
        out[..., k:] = a[..., :-k]
    else:
        out[..., :k] = a[..., -k:]
    return out


def _ctc_alpha(lpe, skip, tl):
    """Forward variables log alpha (T, N, L) over the extended labels (lpe: log_probs at them)."""
    alpha = np.full(lpe.shape, -np.inf, lpe.dtype)
    alpha[0, :, 0] = lpe[0, :, 0]
    if lpe.shape[2] > 1:
        alpha[0, :, 1] = np.where(tl > 0, lpe[0, :, 1], -np.inf)
    for t in range(1, lpe.shape[0]):
        prev = alpha[t - 1]
        alpha[t] = _logsumexp3(prev, _shift(prev, 1, -np.inf), np.where(skip, _shift(prev, 2, -np.inf), -np.inf))
        alpha[t] += lpe[t]
    return alpha


def _ctc_nll(alpha, il, tl):
    """-log p(target | input) per sample: from alpha at the last input step, its last blank and label."""
    n = np.arange(alpha.shape[1])
    last = np.maximum(il - 1, 0)
    l1 = alpha[last, n, 2 * tl]
    l2 = np.where(tl > 0, alpha[last, n, np.maximum(2 * tl - 1, 0)], -np.inf)
    m = np.maximum(l1, l2)
    m[np.isneginf(m)] = 0
    with np.errstate(divide="ignore"):
        nll = -(np.log(np.exp(l1 - m) + np.exp(l2 - m)) + m)
    # an empty input emits the empty target with probability 1 and nothing else
    return np.where(il == 0, np.where(tl == 0, 0, np.inf), nll).astype(alpha.dtype)


def _ctc_beta(lpe, skip, il, tl):
    """Backward variables log beta (T, N, L), each sample starting at its own last input step."""
    steps, _, length = lpe.shape
    beta = np.full(lpe.shape, -np.inf, lpe.dtype)
    pos = np.arange(length)
    ends = (pos == 2 * tl[:, None]) | ((pos == 2 * tl[:, None] - 1) & (tl[:, None] > 0))
    skip_up = _shift(skip, -2, False)
    for t in range(steps - 1, -1, -1):
        step = np.full(lpe.shape[1:], -np.inf, lpe.dtype)
        if t < steps - 1:
            nxt = beta[t + 1]
            step = _logsumexp3(nxt, _shift(nxt, -1, -np.inf), np.where(skip_up, _shift(nxt, -2, -np.inf), -np.inf))
            step += lpe[t]
        beta[t] = np.where((t < il - 1)[:, None], step, np.where(ends & (t == il - 1)[:, None], lpe[t], -np.inf))
    return beta


def _ctc_reduce(nll, tl, reduction, zero_infinity):
    loss = np.where(np.isposinf(nll), 0, nll).astype(nll.dtype) if zero_infinity else nll
    if reduction == "mean":
        return np.asarray((loss / np.maximum(tl, 1).astype(nll.dtype)).mean(), dtype=nll.dtype)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=nll.dtype)
    return loss


def _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, who):
    _check_reduction(who, reduction)
    lp, padded, il, tl, unbatched = _ctc_args(who, log_probs, targets, input_lengths, target_lengths, blank)
    ext, skip = _ctc_extended(padded, blank)
    lpe = np.take_along_axis(lp, np.broadcast_to(ext, lp.shape[:1] + ext.shape), axis=2)
    with np.errstate(invalid="ignore"):
        alpha = _ctc_alpha(lpe, skip, tl)
    nll = _ctc_nll(alpha, il, tl)
    loss = _ctc_reduce(nll, tl, reduction, zero_infinity)
    loss = loss.reshape(()) if unbatched and reduction == "none" else loss
    return loss, (lp, ext, skip, lpe, alpha, nll, il, tl, unbatched)


def _ctc_loss_backward(grad_output, saved, reduction, zero_infinity):
    """torch's gradient: exp(lp) - exp(log sum of alpha beta at c + nll - lp), per input step t < input_length."""
    lp, ext, skip, lpe, alpha, nll, il, tl, unbatched = saved
    steps, n, classes = lp.shape
    g = np.asarray(grad_output, dtype=lp.dtype)
    g = np.broadcast_to(g.reshape(-1) if reduction == "none" else g, (n,))
    if reduction == "mean":
        g = g / (n * np.maximum(tl, 1)).astype(lp.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        ab = alpha + _ctc_beta(lpe, skip, il, tl)
        m = ab.max(axis=2, keepdims=True)
        m[~np.isfinite(m)] = 0
        index = (np.arange(steps)[:, None, None] * n + np.arange(n)[:, None]) * classes + ext
        sums = np.bincount(index.ravel(), weights=np.exp(ab - m).ravel(), minlength=steps * n * classes)
        with np.errstate(divide="ignore"):
            lab = np.log(sums.reshape(steps, n, classes).astype(lp.dtype))
        lab += m
        lab += nll[:, None]
        lab -= lp
        grad = np.exp(lp)
        grad -= np.exp(lab)
    grad *= g[:, None]
    # steps past each input length get 0; so does an impossible target under zero_infinity (not NaN)
    keep = np.arange(steps)[:, None] < il
    if zero_infinity:
        keep &= ~np.isposinf(nll)
    grad = np.where(keep[:, :, None], grad, 0).astype(lp.dtype, copy=False)
    return grad[:, 0] if unbatched else grad


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """Connectionist temporal classification: -log of the summed probability of every alignment
    of ``targets`` to the input (blanks between labels, repeats merged), by the forward algorithm
    in log space, vectorised over the batch.

    Shapes: log_probs (T, N, C) or (T, C), log-softmax outputs; targets (N, S) padded, or 1-d
    holding the N targets one after another, or (S,) unbatched, labels in [0, C); input_lengths
    and target_lengths (N,) (ints, sequences or arrays; an int unbatched). Output: 'none' gives
    (N,) (() unbatched); 'mean' divides each loss by its target length (at least 1), then
    averages; 'sum' sums. ``zero_infinity`` turns the infinite loss of impossible alignments
    (and its gradient) into 0.
    """
    return _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity,
                     "ctc_loss")[0]


def ctc_loss_backward(grad_output, log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
                      zero_infinity=False):
    """Gradient with respect to ``log_probs`` (T, N, C), 0 after each input length, as torch computes it.

    Like torch, it is exp(log_probs) - posterior: the gradient through a log_softmax that made
    ``log_probs`` (whose backward then passes it unchanged), not the partial derivative with
    respect to free log_probs (which lacks the exp(log_probs) term).
    """
    _, saved = _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity,
                         "ctc_loss")
    return _ctc_loss_backward(grad_output, saved, reduction, zero_infinity)

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
from scipy import special

from .activation import _as_float, _log_softmax, _softplus1

__all__ = [
    "mse_loss", "mse_loss_backward", "l1_loss", "l1_loss_backward", "smooth_l1_loss", "smooth_l1_loss_backward",
    "huber_loss", "huber_loss_backward", "nll_loss", "nll_loss_backward", "cross_entropy", "cross_entropy_backward",
    "binary_cross_entropy", "binary_cross_entropy_backward", "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward", "kl_div", "kl_div_backward", "soft_margin_loss",
    "soft_margin_loss_backward", "margin_ranking_loss", "margin_ranking_loss_backward", "hinge_embedding_loss",
    "hinge_embedding_loss_backward", "cosine_embedding_loss", "cosine_embedding_loss_backward",
    "gaussian_nll_loss", "gaussian_nll_loss_backward", "poisson_nll_loss", "poisson_nll_loss_backward",
]

_REDUCTIONS = ("none", "mean", "sum")
_BCE_EPSILON = 1e-12  # torch's floor on x * (1 - x) in the BCE gradient
_COSINE_EPSILON = 1e-12  # torch's EPSILON added to squared norms in cosine_embedding_loss
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ----------------------------------------------------------------------------- validation
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
                          "Please ensure they have the same size.", UserWarning, stacklevel=4)
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


def _sum_to(grad, shape):
    """Sum a gradient taken over a broadcast shape back to the array's own ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead:
        grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


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
def _mse_loss(input, target, reduction, weight, who):
    _check_reduction(who, reduction)
    x, t = _pair(who, input, target)
    w = _elementwise_weight(who, weight, x)
    d = np.subtract(x, t)
    np.multiply(d, d, out=d)
    return _weighted(d, w, reduction, True), (x, t)


def mse_loss(input, target, *, reduction="mean", weight=None):
    """Squared error (x - y)^2, reduced.

    ``weight`` (the input's shape) weights the elements; its 'mean' is sum(w l) / sum(w).
    """
    return _mse_loss(input, target, reduction, weight, "mse_loss")[0]


def mse_loss_backward(grad_output, input, target, *, reduction="mean", weight=None):
    """dx = 2 (x - y) * upstream."""
    input, target, weight = _in_dtype(input, target, weight)
    d = np.subtract(input, target)
    d *= 2
    d *= _weighted_upstream(grad_output, reduction, d.shape, weight, True, d.dtype)
    return _sum_to(d, input.shape)


def _l1_loss(input, target, reduction, weight, who):
    _check_reduction(who, reduction)
    x, t = _pair(who, input, target)
    w = _elementwise_weight(who, weight, x)
    d = np.subtract(x, t)
    np.abs(d, out=d)
    return _weighted(d, w, reduction, True), (x, t)


def l1_loss(input, target, *, reduction="mean", weight=None):
    """Absolute error |x - y|, reduced (``weight`` as in mse_loss)."""
    return _l1_loss(input, target, reduction, weight, "l1_loss")[0]


def l1_loss_backward(grad_output, input, target, *, reduction="mean", weight=None):
    """dx = sign(x - y) * upstream (0 where x == y)."""
    input, target, weight = _in_dtype(input, target, weight)
    d = np.subtract(input, target)
    np.sign(d, out=d)
    d *= _weighted_upstream(grad_output, reduction, d.shape, weight, True, d.dtype)
    return _sum_to(d, input.shape)


def _huber_elementwise(x, t, delta):
    """c (|d| - c / 2) with c = min(|d|, delta): 0.5 d^2 inside, delta (|d| - delta / 2) outside."""
    a = np.subtract(x, t)
    np.abs(a, out=a)
    c = np.minimum(a, delta)
    c *= -0.5
    c += a
    c *= np.minimum(a, delta, out=a)
    return c


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


def smooth_l1_loss(input, target, *, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (d = x - y); L1 when beta == 0."""
    return _smooth_l1_loss(input, target, reduction, beta, "smooth_l1_loss")[0]


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
    return _sum_to(d, input.shape)


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


def huber_loss_backward(grad_output, input, target, reduction="mean", delta=1.0, weight=None):
    """dx = clip(d, -delta, delta) * upstream."""
    input, target, weight = _in_dtype(input, target, weight)
    d = np.subtract(input, target)
    np.clip(d, -delta, delta, out=d)
    d *= _weighted_upstream(grad_output, reduction, d.shape, weight, False, d.dtype)
    return _sum_to(d, input.shape)


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


def _nll(logp, t, w, ignore_index, reduction):
    safe, valid, wt = _class_weights(t, w, ignore_index, logp.dtype)
    loss = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
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


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """Negative log likelihood -w[y] x[y] of log-probabilities ``input`` at class indices ``target``.

    Shapes: input (N, C), (C,) or (N, C, d1, ...); target (N,), () or (N, d1, ...) integer.
    'mean' divides by the sum of the targets' weights (ignored targets count 0).
    """
    return _nll_loss(input, target, weight, ignore_index, reduction, "nll_loss")[0]


def nll_loss_backward(grad_output, input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """dx = -w[y] * upstream at each target's class, 0 elsewhere."""
    x, t = _batched(np.asarray(input), np.asarray(target))
    safe, _, wt = _class_weights(t, None if weight is None else np.asarray(weight, x.dtype), ignore_index, x.dtype)
    g = _class_upstream(grad_output, reduction, wt.sum(), t.shape, x.dtype)
    dx = np.zeros_like(x)
    np.put_along_axis(dx, safe[:, None], np.negative(g * wt)[:, None], axis=1)
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


def _hard_cross_entropy(logp, t, w, ignore_index, reduction, label_smoothing):
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


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross entropy between logits ``input`` and class indices or class probabilities ``target``.

    Shapes: input (N, C), (C,) or (N, C, d1, ...); target either integer class indices of shape
    (N,), () or (N, d1, ...), or floating probabilities of the input's shape. Computed through
    log-softmax, so any logits are safe. ``weight`` (C,) rescales classes; ``ignore_index``
    targets contribute nothing; ``label_smoothing`` mixes the target with the uniform
    distribution. 'mean' with class indices divides by the sum of the targets' weights.
    """
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
    picked = np.take_along_axis(dx, safe[:, None], axis=1)
    picked -= at_target[:, None]
    np.put_along_axis(dx, safe[:, None], picked, axis=1)
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


def binary_cross_entropy(input, target, weight=None, *, reduction="mean"):
    """-w (y log x + (1 - y) log(1 - x)) for probabilities x in [0, 1], each log clamped at -100.

    Shapes: input, target (*) alike; weight broadcasts to them.
    """
    return _bce(input, target, weight, reduction, "binary_cross_entropy")[0]


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


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy in one stable formula (finite for any logits).

    Shapes: input, target (*) alike; weight broadcasts to them; pos_weight (weight of positive
    examples) broadcasts along the last dims, e.g. (C,) for input (N, C).
    """
    return _bce_logits(input, target, weight, pos_weight, reduction, "binary_cross_entropy_with_logits")[0]


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
                      UserWarning, stacklevel=4)
    if log_target:
        loss = np.subtract(t, x)
        loss *= np.exp(t)
    else:
        loss = special.xlogy(t, t) - t * x
    if reduction == "batchmean":
        total = loss.sum()
        return np.asarray(total / x.shape[0] if x.ndim else total, dtype=x.dtype), (x, t)
    return _reduce(loss, reduction), (x, t)


def kl_div(input, target, *, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise: y (log y - x), or exp(y) (y - x) with ``log_target``.

    ``input`` holds log-probabilities. 'batchmean' divides the sum by the batch size (the
    true KL divergence); 'mean' divides by every element (with torch's warning).
    """
    return _kl_div(input, target, reduction, log_target, "kl_div")[0]


def kl_div_backward(grad_output, input, target, *, reduction="mean", log_target=False):
    """dx = -y * upstream (-exp(y) with ``log_target``)."""
    input, target = _in_dtype(input, target)
    x = input
    d = np.exp(target) if log_target else np.array(target, dtype=x.dtype)
    d = np.negative(np.broadcast_to(d, np.broadcast_shapes(x.shape, d.shape)))
    if reduction == "batchmean":
        d *= np.asarray(grad_output, dtype=x.dtype) / (x.shape[0] if x.ndim else 1)
    else:
        d *= _upstream(grad_output, reduction, d.size, x.dtype)
    return _sum_to(d, x.shape)


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
        grad_var = _sum_to(dv, v.shape).reshape(np.shape(var))
    return _sum_to(d, x.shape), grad_var


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


def poisson_nll_loss(input, target, log_input=True, full=False, *, eps=1e-8, reduction="mean"):
    """Poisson negative log likelihood: exp(x) - y x (``log_input``), else x - y log(x + eps)."""
    return _poisson_nll_loss(input, target, log_input, full, eps, reduction, "poisson_nll_loss")[0]


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
    return _sum_to(d, x.shape)


# ----------------------------------------------------------------------------- margins
def _soft_margin_loss(input, target, reduction, who):
    _check_reduction(who, reduction)
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    _same_shape(who, x, t)
    return _reduce(_softplus1(np.negative(t * x)), reduction), (x, t)


def soft_margin_loss(input, target, *, reduction="mean"):
    """log(1 + exp(-y x)) for labels y = +-1, finite for any x. Shapes: input, target (*) alike."""
    return _soft_margin_loss(input, target, reduction, "soft_margin_loss")[0]


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


def _margin_ranking_loss(input1, input2, target, margin, reduction, who):
    _check_reduction(who, reduction)
    x1 = _float_arg(who, input1, "input1")
    x2 = _like(who, input2, x1, "input2")
    t = _like(who, target, x1, "target")
    _broadcastable(who, x1.shape, x2, "input2")
    _broadcastable(who, np.broadcast_shapes(x1.shape, x2.shape), t, "target")
    v = np.multiply(t, np.subtract(x1, x2))
    np.subtract(margin, v, out=v)
    return _reduce(np.maximum(v, 0, out=v), reduction), (x1, x2, t)


def margin_ranking_loss(input1, input2, target, margin=0.0, *, reduction="mean"):
    """max(0, -y (x1 - x2) + margin) for y = +-1. Shapes: input1, input2, target (*) alike (or broadcast)."""
    return _margin_ranking_loss(input1, input2, target, margin, reduction, "margin_ranking_loss")[0]


def margin_ranking_loss_backward(grad_output, input1, input2, target, margin=0.0, *, reduction="mean"):
    """Returns (grad_input1, grad_input2) = (-y, y) * upstream where the margin is not met (>= 0, as torch's clamp)."""
    input1, input2, target = _in_dtype(input1, input2, target)
    v = np.multiply(target, np.subtract(input1, input2))
    np.subtract(margin, v, out=v)
    d = np.multiply(target, v >= 0)
    d *= _upstream(grad_output, reduction, d.size, d.dtype)
    return _sum_to(np.negative(d), np.shape(input1)), _sum_to(d, np.shape(input2))


def _hinge_embedding_loss(input, target, margin, reduction, who):
    _check_reduction(who, reduction)
    x = _float_arg(who, input)
    t = _like(who, target, x, "target")
    _broadcastable(who, x.shape, t, "target")
    # torch: max(0, margin - x) where y != 1, plus x where y != -1
    loss = np.subtract(margin, x)
    np.maximum(loss, 0, out=loss)
    loss = loss * (t != 1)
    loss += x * (t != -1)
    return _reduce(loss, reduction), (x, t)


def hinge_embedding_loss(input, target, margin=1.0, *, reduction="mean"):
    """x where y == 1, max(0, margin - x) where y == -1. Shapes: input, target (*) alike."""
    return _hinge_embedding_loss(input, target, margin, reduction, "hinge_embedding_loss")[0]


def hinge_embedding_loss_backward(grad_output, input, target, margin=1.0, *, reduction="mean"):
    """dx = (y != -1) - (y != 1) * (margin - x >= 0), times upstream."""
    input, target = _in_dtype(input, target)
    x = input
    d = np.multiply(np.subtract(margin, x) >= 0, target != 1, dtype=x.dtype)
    np.subtract(target != -1, d, out=d)
    d *= _upstream(grad_output, reduction, d.size, x.dtype)
    return _sum_to(d, x.shape)


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


def cosine_embedding_loss(input1, input2, target, margin=0.0, *, reduction="mean"):
    """1 - cos(x1, x2) where y == 1, max(0, cos(x1, x2) - margin) where y == -1.

    Shapes: input1, input2 (N, D) or (D,); target (N,) or ().
    """
    return _cosine_embedding_loss(input1, input2, target, margin, reduction, "cosine_embedding_loss")[0]


def cosine_embedding_loss_backward(grad_output, input1, input2, target, margin=0.0, *, reduction="mean"):
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

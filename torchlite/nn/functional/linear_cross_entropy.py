"""Cross entropy of a linear map's logits: ``linear_cross_entropy`` and its backward twin (torch 2.13).

``linear_cross_entropy(input, linear_weight, target, ...)`` is
``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)`` with the logits laid
out (*, C, d1, ..., dK) when ``linear_weight`` is (C, d1, ..., dK, in_features): a K-dimensional
loss. It is built from ``linear`` and ``cross_entropy`` and their backward twins, not a copy.

torch's ``options`` (``LinearCrossEntropyOptions``) pick how its chunked path splits the batch
so that the (N, C) logits never exist at once. Chunking changes the result only by rounding
(the chunked sums are the same sums), so torchlite validates the options as torch does, warns
where torch ignores them, and always computes unchunked.
"""
import dataclasses
import math
import warnings

import numpy as np

from .linear import linear, linear_backward
from .loss import _REDUCTIONS, _cross_entropy, _float_arg, _like, cross_entropy_backward

__all__ = ["linear_cross_entropy", "linear_cross_entropy_backward"]

_ACC_POLICIES = ("auto", "accurate", "balanced", "compact")
_ACC_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _is_acc_dtype(value):
    try:
        return np.dtype(value) in _ACC_DTYPES
    except TypeError:
        return False


@dataclasses.dataclass(slots=True, frozen=True)
class LinearCrossEntropyOptions:
    """torch's configuration of the chunked ``linear_cross_entropy``: same fields, defaults and checks.

    Fields: ``allow_retain_graph`` (bool), ``batch_chunk_size`` (positive int or None),
    ``chunking_method`` ("auto", "aspect_ratio", "aspect_ratio:N" or None), ``acc_policy``
    ("auto", "accurate", "balanced", "compact"), ``acc_dtype`` (None or a NumPy float16/32/64
    dtype; NumPy has no bfloat16). torchlite computes unchunked in the input's dtype whatever the
    options say (chunking changes nothing but rounding); like torch it refuses, at call time, a
    ``batch_chunk_size`` that an explicit ``chunking_method`` contradicts.
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None

    def __post_init__(self):
        who = "LinearCrossEntropyOptions"
        if self.acc_policy not in _ACC_POLICIES:
            raise ValueError(f"{who}: invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = str(self.chunking_method).partition(":")
            factor = factor if sep else "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ValueError(f"{who}: invalid chunking_method: {self.chunking_method!r}")
        size = self.batch_chunk_size
        if not (size is None or (isinstance(size, int) and size > 0)):
            raise ValueError(f"{who}: batch_chunk_size must be positive int or None, got {size!r}")
        if self.acc_dtype is not None and not _is_acc_dtype(self.acc_dtype):
            raise ValueError(f"{who}: acc_dtype must be None or one of float16, float32, float64, "
                             f"got {self.acc_dtype!r}")


def _check_options(who, options, dtype, in_features, logits_shape, reduction, label_smoothing, target, bias_shape):
    """What torch does with ``options`` before computing: warn where its chunked path does not apply,
    else refuse an ``acc_dtype`` it cannot accumulate ``dtype`` in, and a ``batch_chunk_size`` that an
    explicit ``chunking_method`` contradicts."""
    if not isinstance(options, LinearCrossEntropyOptions):
        raise TypeError(f"{who}: expected options to be None or a LinearCrossEntropyOptions, "
                        f"got {type(options).__name__}")
    batched = len(logits_shape) > 1
    out_features = logits_shape[2:] if batched else ()
    # signed integer targets stand for torch's int64 here; uint8 is torch's Byte, which its chunked path refuses
    if out_features or reduction not in _REDUCTIONS or label_smoothing != 0.0 or target.dtype.kind != "i":
        warnings.warn("linear_cross_entropy: ``options`` ignored; chunked path needs reduction in "
                      "{'mean','sum','none'}, label_smoothing == 0, target.dtype == int64, out_features == (). "
                      f"Got reduction={reduction!r}, label_smoothing={label_smoothing}, target.dtype={target.dtype}, "
                      f"out_features={out_features}, linear_bias.shape={bias_shape}.", stacklevel=4)
        return
    acc = dtype if options.acc_dtype is None else np.dtype(options.acc_dtype)
    if acc != dtype and not (dtype == np.float16 and acc == np.float32):
        raise ValueError(f"{who}: the chunked path (options) supports float32 acc_dtype with float16 inputs, "
                         f"but got {acc} acc_dtype and {dtype} inputs")
    method, size = options.chunking_method, options.batch_chunk_size
    classes = logits_shape[-1]
    # torch divides by in_features and C here (ZeroDivisionError); unchunked, they need no chunk size
    if size is None or method in (None, "auto") or in_features == 0 or classes == 0:
        return
    batches = logits_shape[0] if batched else 1
    resolved = _chunk_size(method, batches, in_features, classes)
    if resolved != size:
        raise ValueError(f"{who}: batch_chunk_size (={size}) and chunking_method ('{method}') give different "
                         f"chunk sizes ({size} vs {resolved}); pass only one.")


def _chunk_size(method, batches, in_features, classes):
    """torch's ``aspect_ratio[:N]`` rule: chunks whose (chunk, C) logits match the (N, in) input in size, / N."""
    factor = int(method.partition(":")[2] or 1)
    target = -(-batches // -(-classes // in_features))
    return min((1 << (target - 1).bit_length()) // factor, batches)


def _linear_cross_entropy(input, linear_weight, target, linear_bias, weight, reduction, ignore_index, label_smoothing,
                          options, who):
    """Validate and compute; returns ``(loss, saved)``, saved = what ``_linear_cross_entropy_backward`` takes.

    Errors start with ``who`` (the function's name, or the loss module's description)."""
    lw = _float_arg(who, linear_weight, "linear_weight")
    x = _float_arg(who, input).astype(lw.dtype, copy=False)
    if x.ndim not in (1, 2):
        raise ValueError(f"{who}: expected input (in_features,) or (N, in_features), got shape {x.shape}")
    if lw.ndim < 2:
        raise ValueError(f"{who}: expected linear_weight (C, in_features) or (C, d1, ..., dK, in_features), "
                         f"got shape {lw.shape}")
    in_features = lw.shape[-1]
    if x.shape[-1] != in_features:
        raise ValueError(f"{who}: expected input and linear_weight with equal last dimensions (in_features), "
                         f"got input shape {x.shape} and linear_weight shape {lw.shape}")
    b = None
    if linear_bias is not None:
        b = _like(who, linear_bias, lw, "linear_bias")
        if b.shape != lw.shape[:-1]:
            raise ValueError(f"{who}: expected linear_bias of shape {lw.shape[:-1]} (linear_weight's without "
                             f"in_features), got {b.shape}")
    if lw.ndim > 2 and x.ndim == 1:
        raise ValueError(f"{who}: K-dimensional loss (linear_weight shape {lw.shape}) needs batched input "
                         f"(N, {in_features}), got shape {x.shape}")
    logits_shape = x.shape[:-1] + lw.shape[:-1]
    t = np.asarray(target)
    if t.shape == logits_shape and ignore_index is not None:
        raise ValueError(f"{who}: ignore_index cannot be specified when target contains probabilities "
                         f"(target of the logits' shape {logits_shape})")
    if options is not None:
        _check_options(who, options, lw.dtype, in_features, logits_shape, reduction, label_smoothing, t,
                       None if b is None else b.shape)
    ignore_index = -100 if ignore_index is None else ignore_index
    w2 = lw.reshape(math.prod(lw.shape[:-1]), in_features)
    logits = linear(x, w2, None if b is None else b.reshape(-1)).reshape(logits_shape)
    # cross_entropy's messages say "input" for what is here the logits
    loss, (log_probs, t, w) = _cross_entropy(logits, t, weight, ignore_index, reduction, label_smoothing,
                                             f"{who} (logits {logits_shape})")
    return loss, (x, w2, log_probs, t, w, ignore_index)


def _linear_cross_entropy_backward(grad_output, saved, reduction, label_smoothing, need_input_grad=True,
                                   need_bias_grad=True):
    """(dx or None, dweight (C * d1 * ... * dK, in_features), dbias flat or None) from ``saved``."""
    x, w2, log_probs, t, w, ignore_index = saved
    dlogits = cross_entropy_backward(grad_output, None, t, w, ignore_index=ignore_index, reduction=reduction,
                                     label_smoothing=label_smoothing, log_probs=log_probs)
    return linear_backward(dlogits.reshape(x.shape[:-1] + (w2.shape[0],)), x, w2, need_input_grad, need_bias_grad)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    """Cross entropy between ``linear(input, linear_weight, linear_bias)`` and ``target``, as torch's.

    Shapes:
        input (in_features,) or (N, in_features) (cast to linear_weight's dtype);
        linear_weight (C, in_features), or (C, d1, ..., dK, in_features) for a K-dimensional
        loss (batched input only); linear_bias (C,) or (C, d1, ..., dK);
        target: class indices (), (N,) or (N, d1, ..., dK), or floating class probabilities of
        the logits' shape (C,), (N, C) or (N, C, d1, ..., dK);
        weight (C,). Output: () for 'mean'/'sum'; for 'none' the shape of the indices.
    ``ignore_index=None`` means torch's -100 for class indices; with probabilities it must stay
    None. ``reduction``, ``weight`` and ``label_smoothing`` as ``cross_entropy``. ``options``
    (LinearCrossEntropyOptions) is checked as torch checks it; the result is computed unchunked.
    """
    return _linear_cross_entropy(input, linear_weight, target, linear_bias, weight, reduction, ignore_index,
                                 label_smoothing, options, "linear_cross_entropy")[0]


def linear_cross_entropy_backward(grad_output, input, linear_weight, target, *, linear_bias=None, weight=None,
                                  reduction="mean", ignore_index=None, label_smoothing=0.0):
    """Gradients of ``linear_cross_entropy``: (d_input, d_linear_weight, d_linear_bias or None).

    ``grad_output`` is a scalar for 'mean'/'sum', an array of the loss's shape for 'none'; the
    other arguments are forward's (the logits are recomputed). Gradients take the shapes of
    input, linear_weight and linear_bias.
    """
    lw = np.asarray(linear_weight)
    _, saved = _linear_cross_entropy(input, lw, target, linear_bias, weight, reduction, ignore_index, label_smoothing,
                                     None, "linear_cross_entropy_backward")
    dx, dw, db = _linear_cross_entropy_backward(grad_output, saved, reduction, label_smoothing,
                                                need_bias_grad=linear_bias is not None)
    return dx.reshape(np.shape(input)), dw.reshape(lw.shape), None if db is None else db.reshape(lw.shape[:-1])

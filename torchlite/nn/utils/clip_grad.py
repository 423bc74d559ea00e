"""Gradient clipping: by total norm (``clip_grad_norm_``, or its two halves ``get_total_norm`` and
``clip_grads_with_norm_``) or by value (``clip_grad_value_``)."""
import math
import types
import warnings

import numpy as np

from ..parameter import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _as_list(parameters):
    return [parameters] if isinstance(parameters, Parameter) else list(parameters)


def _vector_norm(x, norm_type):
    """torch.linalg.vector_norm of a flat array, in float64 for the reduction."""
    a = np.abs(x.ravel())
    if norm_type == math.inf:
        return float(a.max()) if a.size else 0.0
    if norm_type == -math.inf:
        return float(a.min()) if a.size else math.inf
    if norm_type == 0:
        return float(np.count_nonzero(a))
    a = a.astype(np.float64, copy=False)
    if norm_type == 2:
        return math.sqrt(float(np.dot(a, a)))
    if norm_type == 1:
        return float(a.sum())
    return float(np.sum(a ** norm_type)) ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type`` norm of the per-array norms of ``tensors``: their norm as one vector.

    Args:
        tensors: an array (a Parameter counts as its values) or an iterable of arrays,
            typically ``[p.grad for p in parameters if p.grad is not None]``.
        norm_type (float): the p of the p-norm; ``math.inf`` for the max norm (default: 2).
        error_if_nonfinite (bool): raise RuntimeError if the total norm is nan or inf (default: False).
        foreach: accepted for torch compatibility; it only selects torch kernels.

    Returns:
        the total norm, a 0-d float64 array (0.0 for no arrays).
    """
    arrays = [tensors] if isinstance(tensors, (np.ndarray, Parameter)) else list(tensors)
    norm_type = float(norm_type)
    if not arrays:
        return np.array(0.0)
    norms = np.array([_vector_norm(np.asarray(a), norm_type) for a in arrays])
    total_norm = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    return np.array(total_norm)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale gradients in place by ``min(1, max_norm / (total_norm + 1e-6))``, given their total norm.

    ``clip_grad_norm_`` is ``get_total_norm`` of the gradients followed by this. A nan total
    norm makes every gradient nan, and an inf one makes them 0 (nan where they are inf), as torch.

    Args:
        parameters: a Parameter or an iterable of Parameters (those without a gradient are ignored).
        max_norm (float): the largest norm allowed.
        total_norm: the gradients' total norm (a 0-d array or a float), as ``get_total_norm`` gives.
        foreach: accepted for torch compatibility; it only selects torch kernels.
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    clip_coef = float(np.minimum(float(max_norm) / (float(total_norm) + 1e-6), 1.0))
    if clip_coef != 1.0:
        with np.errstate(invalid="ignore"):  # an inf gradient times 0 is nan, as in torch
            for g in grads:
                g *= clip_coef


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale gradients in place so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type`` norm of the per-parameter gradient norms (as if all
    gradients were one vector); gradients are multiplied by ``min(1, max_norm / (total + 1e-6))``.
    Parameters without a gradient are ignored. This is ``get_total_norm`` then ``clip_grads_with_norm_``.

    Args:
        parameters: a Parameter or an iterable of Parameters.
        max_norm (float): the largest norm allowed.
        norm_type (float): the p of the p-norm; ``math.inf`` for the max norm (default: 2).
        error_if_nonfinite (bool): raise RuntimeError if the total norm is nan or inf
            (default: False, the gradients are then scaled by the non-finite norm, as torch).
        foreach: accepted for torch compatibility; it only selects torch kernels.

    Returns:
        the total norm before clipping, a 0-d float64 array.
    """
    is_generator = isinstance(parameters, types.GeneratorType)
    parameters = _as_list(parameters)
    if is_generator and not parameters:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    total_norm = get_total_norm([p.grad for p in parameters if p.grad is not None], norm_type, error_if_nonfinite,
                                foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated alias of ``clip_grad_norm_`` (a FutureWarning, as torch's)."""
    warnings.warn("`torchlite.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torchlite.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp gradients in place to ``[-clip_value, clip_value]``.

    Args:
        parameters: a Parameter or an iterable of Parameters (those without a gradient are ignored).
        clip_value (float): the largest absolute value allowed.
        foreach: accepted for torch compatibility; it only selects torch kernels.
    """
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)

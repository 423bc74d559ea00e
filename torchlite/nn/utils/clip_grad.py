"""Gradient clipping: by total norm (``clip_grad_norm_``) or by value (``clip_grad_value_``)."""
import math

import numpy as np

from ..parameter import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


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


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale gradients in place so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type`` norm of the per-parameter gradient norms (as if all
    gradients were one vector); gradients are multiplied by ``min(1, max_norm / (total + 1e-6))``.
    Parameters without a gradient are ignored.

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
    parameters = _as_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    norm_type = float(norm_type)
    max_norm = float(max_norm)
    if not grads:
        return np.array(0.0)
    norms = np.array([_vector_norm(g, norm_type) for g in grads])
    total_norm = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    clip_coef = float(np.minimum(max_norm / (total_norm + 1e-6), 1.0))
    if clip_coef != 1.0:
        with np.errstate(invalid="ignore"):  # an inf gradient times 0 is nan, as in torch
            for g in grads:
                g *= clip_coef
    return np.array(total_norm)


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

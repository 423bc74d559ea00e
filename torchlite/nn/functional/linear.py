"""Affine maps: ``linear`` and ``bilinear`` with their backward twins."""
import math

import numpy as np

from ._broadcast import sum_to

__all__ = ["linear", "linear_backward", "bilinear", "bilinear_backward"]


def _rows(a):
    """(*, k) -> (prod(*), k); explicit, since reshape(-1, k) fails on empty arrays."""
    return a if a.ndim == 2 else a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias.  input: (*, in), weight: (out, in) -> (*, out), or weight (in,) -> (*).

    ``bias`` broadcasts to the output ((out,) usually; torch takes a 1-D weight's bias only with
    1-D input). Input is computed in the weight's dtype; leading dims fold into one GEMM.
    """
    x, w = _linear_args(input, weight, bias)
    if w.ndim == 1:
        y = x @ w
        return y if bias is None else np.add(y, bias, dtype=w.dtype)
    return _affine(x, w, bias)


def _affine(x, w, bias):
    """``linear`` for arrays already checked: x (*, in) of w's dtype, w (out, in), bias broadcasting."""
    y = _rows(x) @ w.T
    if x.ndim != 2:
        y = y.reshape(x.shape[:-1] + (w.shape[0],))
    if bias is not None:
        y += bias
    return y


def _linear_args(input, weight, bias):
    x, w = np.asarray(input), np.asarray(weight)
    if x.ndim == 0 or w.ndim == 0:
        raise ValueError(f"linear: input and weight need at least 1 dim, got shapes {x.shape} and {w.shape}")
    if w.ndim > 2:
        raise ValueError(f"linear: expected weight (out_features, in_features) or (in_features,), got shape {w.shape}")
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: expected input (*, {w.shape[-1]}) for weight {w.shape}, got shape {x.shape}")
    if bias is not None:
        out = x.shape[:-1] + w.shape[:-1]
        b = np.shape(bias)
        if w.ndim == 1 and x.ndim > 1:
            raise ValueError(f"linear: a 1-D weight takes a bias only with 1-D input (as torch), got input {x.shape}")
        if len(b) > len(out) or any(i != 1 and i != o for i, o in zip(b[::-1], out[::-1])):
            raise ValueError(f"linear: bias of shape {b} does not broadcast to the output shape {out}")
    if w.dtype.kind == "f" and x.dtype != w.dtype:
        x = x.astype(w.dtype)
    return x, w


def linear_backward(grad, x, weight, need_input_grad=True, need_bias_grad=True, bias_shape=None):
    """Gradients of ``linear``: returns (dx or None, dweight, dbias or None).

    ``bias_shape``: the bias's shape when it is not (out,) (its gradient is summed down to it).
    """
    if weight.ndim == 1:
        g = np.asarray(grad, dtype=weight.dtype)
        dweight = np.tensordot(g, x, axes=g.ndim)
        dbias = sum_to(g, bias_shape or ()) if need_bias_grad else None
        dx = np.multiply.outer(g, weight) if need_input_grad else None
        return dx, dweight, dbias
    g2 = _rows(grad)
    x2 = _rows(x)
    dweight = g2.T @ x2
    dbias = None
    if need_bias_grad:
        dbias = g2.sum(axis=0) if bias_shape in (None, (weight.shape[0],)) else sum_to(grad, bias_shape)
    dx = (g2 @ weight).reshape(x.shape) if need_input_grad else None
    return dx, dweight, dbias


def bilinear(input1, input2, weight, bias=None):
    """y_k = input1 @ weight[k] @ input2 + bias_k.  input1: (*, in1), input2: (*, in2), weight: (out, in1, in2)."""
    _check_bilinear(np.shape(input1), np.shape(input2), np.shape(weight), None if bias is None else np.shape(bias))
    y = np.einsum("...i,kij,...j->...k", input1, weight, input2, optimize=True)
    if bias is not None:
        y += bias
    return y


def _check_bilinear(s1, s2, sw, sb):
    """torch's shape rules for ``bilinear``, as clear errors."""
    if len(s1) != len(s2) or not s1:
        raise ValueError(f"bilinear: input1 and input2 need the same number of dims (at least 1), got {s1} and {s2}")
    if s1[:-1] != s2[:-1]:
        raise ValueError(f"bilinear: input1 {s1} and input2 {s2} must have the same leading (batch) dims")
    if len(sw) != 3 or sw[1:] != (s1[-1], s2[-1]):
        raise ValueError(f"bilinear: expected weight (out_features, {s1[-1]}, {s2[-1]}) for inputs {s1} and {s2}, "
                         f"got {sw}")
    if sb is not None and sb != sw[:1]:
        raise ValueError(f"bilinear: expected bias ({sw[0]},), got {sb}")


def bilinear_backward(grad, x1, x2, weight):
    """Gradients of ``bilinear``: (dx1, dx2, dweight, dbias)."""
    dx1 = np.einsum("...k,kij,...j->...i", grad, weight, x2, optimize=True)
    dx2 = np.einsum("...k,kij,...i->...j", grad, weight, x1, optimize=True)
    g = _rows(grad)
    dweight = np.einsum("nk,ni,nj->kij", g, _rows(x1), _rows(x2), optimize=True)
    return dx1, dx2, dweight, g.sum(axis=0)

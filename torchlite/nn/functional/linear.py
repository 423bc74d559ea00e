"""Affine maps: ``linear`` and ``bilinear`` with their backward twins."""
import math

import numpy as np

__all__ = ["linear", "linear_backward", "bilinear", "bilinear_backward"]


def _rows(a):
    """(*, k) -> (prod(*), k); explicit, since reshape(-1, k) fails on empty arrays."""
    return a if a.ndim == 2 else a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias.  input: (*, in), weight: (out, in), bias: (out,) -> (*, out).

    Leading dimensions are folded into one GEMM.
    """
    y = _rows(input) @ weight.T
    if bias is not None:
        y += bias
    return y if input.ndim == 2 else y.reshape(input.shape[:-1] + (weight.shape[0],))


def linear_backward(grad, x, weight, need_input_grad=True, need_bias_grad=True):
    """Gradients of ``linear``: returns (dx or None, dweight, dbias or None)."""
    g2 = _rows(grad)
    x2 = _rows(x)
    dweight = g2.T @ x2
    dbias = g2.sum(axis=0) if need_bias_grad else None
    dx = (g2 @ weight).reshape(x.shape) if need_input_grad else None
    return dx, dweight, dbias


def bilinear(input1, input2, weight, bias=None):
    """y_k = input1 @ weight[k] @ input2 + bias_k.  input1: (*, in1), input2: (*, in2), weight: (out, in1, in2)."""
    y = np.einsum("...i,kij,...j->...k", input1, weight, input2, optimize=True)
    if bias is not None:
        y += bias
    return y


def bilinear_backward(grad, x1, x2, weight):
    """Gradients of ``bilinear``: (dx1, dx2, dweight, dbias)."""
    dx1 = np.einsum("...k,kij,...j->...i", grad, weight, x2, optimize=True)
    dx2 = np.einsum("...k,kij,...i->...j", grad, weight, x1, optimize=True)
    g = _rows(grad)
    dweight = np.einsum("nk,ni,nj->kij", g, _rows(x1), _rows(x2), optimize=True)
    return dx1, dx2, dweight, g.sum(axis=0)

"""ReLU forward and backward kernels: the two elementwise ops of nearly every training step.

Measured on 64x32x28x28 float32, one core: ``np.maximum(x, 0)`` 0.70 ms, but the same
against a row of zeros 0.42 ms (numpy vectorizes the two-array loop, not the scalar one).
Backward ``grad * (out > 0)`` 0.98 ms, as the mask cast to the float dtype first and then
multiplied 0.47 ms (the bool-times-float loop is slow). Both walk the flattened arrays as
rows of ``BLOCK`` elements (the forward; the backward's ops are all two-array).

Splitting these over a thread pool (numpy releases the GIL) halved them in isolation but
gained nothing inside a training step: after each GEMM, OpenBLAS's worker threads keep
spinning on the other cores for a while, and cache misses dominate there anyway.
"""
import numpy as np

__all__ = ["relu_into", "relu_backward_into"]

BLOCK = 4096
_zero_rows = {}


def _zero_row(dtype):
    row = _zero_rows.get(dtype)
    if row is None:
        row = _zero_rows[dtype] = np.zeros(BLOCK, dtype)
        row.flags.writeable = False
    return row


def _flat(*arrays):
    """The arrays flattened without copying, or None unless all are C-contiguous of one shape and dtype."""
    first = arrays[0]
    for a in arrays:
        if not a.flags.c_contiguous or a.dtype != first.dtype or a.shape != first.shape:
            return None
    return [a.reshape(-1) for a in arrays]


def relu_into(x, out):
    """out = max(x, 0) (NaN stays NaN); ``out`` may be ``x``. Returns ``out``."""
    flat = _flat(x, out) if x.size > BLOCK else None
    if flat is None or x.dtype.kind != "f":
        return np.maximum(x, 0, out=out)
    fx, fo = flat
    full = x.size // BLOCK * BLOCK
    np.maximum(fx[:full].reshape(-1, BLOCK), _zero_row(x.dtype), out=fo[:full].reshape(-1, BLOCK))
    if full < x.size:
        np.maximum(fx[full:], 0, out=fo[full:])
    return out


def relu_backward_into(grad, output, out):
    """out = grad where output is not <= 0 (NaN passes it, as torch), else grad * 0. Returns ``out``.

    ``out`` must not overlap ``grad`` (it holds the mask before the product).
    """
    flat = _flat(grad, output, out) if grad.size > BLOCK else None
    if flat is None or np.may_share_memory(out, grad):
        return np.multiply(grad, ~(output <= 0), out=out)
    fg, fy, fo = flat
    keep = np.less_equal(fy, 0)
    np.logical_not(keep, out=keep)
    np.copyto(fo, keep)
    np.multiply(fo, fg, out=fo)
    return out

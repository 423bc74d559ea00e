"""Finite-difference gradient checks for modules with hand-written backward passes.

``gradcheck(module, *inputs)`` runs ``module(*inputs)`` in float64, draws a random upstream
gradient for every output, calls ``module.backward(...)`` and compares the returned input
gradients and every parameter's ``grad`` with central differences of
``sum(output * upstream)``. The random generator is reset before each forward, so layers
that draw random numbers (dropout) see the same draws in every evaluation.
"""
import numpy as np

from . import random as _random
from .grad_mode import no_grad


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences."""


def _flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flat_outputs(o)]
    return [] if out is None else [np.asarray(out)]


def _like(out, rng):
    """Random upstream gradients with the nesting of ``out``; 0-d outputs get a python float."""
    if isinstance(out, (tuple, list)):
        items = [_like(o, rng) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else type(out)(items)  # namedtuples: positional
    if out is None:
        return None
    arr = np.asarray(out)
    if arr.dtype.kind != "f":
        return None
    g = rng.standard_normal(arr.shape)
    return float(g) if arr.ndim == 0 else g


def _dot(outs, grads):
    total = 0.0
    for o, g in zip(_flat_outputs(outs), _flat_outputs(grads)):
        if o.dtype.kind == "f":
            total += float(np.sum(o.astype(np.float64) * g))
    return total


def _check_float64(module, inputs):
    for name, p in module.named_parameters():
        if p.data.dtype != np.float64:
            raise TypeError(f"gradcheck: parameter {name!r} is {p.data.dtype}; call module.double() first")
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {x.dtype}; pass float64 inputs")


def _compare(label, analytic, numeric, mask, atol, rtol):
    analytic = np.broadcast_to(np.asarray(analytic, dtype=np.float64), numeric.shape)
    err = np.where(mask, np.abs(analytic - numeric), 0.0)
    bound = atol + rtol * np.abs(numeric)
    if analytic.size and np.any(err > bound):
        idx = np.unravel_index(np.argmax(err - bound), err.shape)
        raise GradcheckError(
            f"gradcheck failed for {label} at index {tuple(int(i) for i in idx)}: analytic {analytic[idx]:.10g}, "
            f"numeric {numeric[idx]:.10g} (abs error {err[idx]:.3g}, allowed {bound[idx]:.3g}; "
            f"{int(np.sum(err > bound))} of {err.size} elements off)")


def gradcheck(module, *inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=0, kwargs=None, max_elements=None,
              raise_exception=True):
    """Check ``module.backward`` against central finite differences; returns True or raises.

    Args:
        module: a Module in float64 (``.double()``) with forward/backward.
        *inputs: forward's inputs; floating arrays are differentiated, others (indices,
            targets) passed through unchanged.
        eps, atol, rtol: step and tolerances (float64).
        kwargs: keyword arguments for forward.
        max_elements: check at most this many elements per array (picked at random) to
            keep large layers fast; None checks all.
    Raises:
        GradcheckError naming the input or parameter and the worst element.
    """
    kwargs = kwargs or {}
    inputs = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in inputs]
    _check_float64(module, inputs)
    rng = np.random.default_rng(seed)
    rng_state = _random.get_rng_state()
    buffers = {name: b.copy() for name, b in module.named_buffers()}

    def forward():
        _random.set_rng_state(rng_state)
        return module(*inputs, **kwargs)

    try:
        module.clear_saved()
        module.zero_grad()
        out = forward()
        upstream = _like(out, rng)
        if isinstance(out, (tuple, list)):
            dinputs = module.backward(*upstream)
        else:
            dinputs = module.backward(upstream)
        if not isinstance(dinputs, (tuple, list)):
            dinputs = (dinputs,)

        def numeric(arr):
            flat = arr.reshape(-1)
            grad = np.zeros(flat.size)
            picks = range(flat.size)
            if max_elements is not None and flat.size > max_elements:
                picks = rng.choice(flat.size, max_elements, replace=False)
            for i in picks:
                orig = flat[i]
                flat[i] = orig + eps
                with no_grad():
                    plus = _dot(forward(), upstream)
                flat[i] = orig - eps
                with no_grad():
                    minus = _dot(forward(), upstream)
                flat[i] = orig
                grad[i] = (plus - minus) / (2 * eps)
            mask = np.zeros(flat.size, bool)
            mask[list(picks)] = True
            return grad.reshape(arr.shape), mask.reshape(arr.shape)

        for i, x in enumerate(inputs):
            if not (isinstance(x, np.ndarray) and x.dtype.kind == "f") or i >= len(dinputs) or dinputs[i] is None:
                continue
            num, mask = numeric(x)
            _compare(f"input {i}", dinputs[i], num, mask, atol, rtol)
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            analytic = np.zeros(p.shape) if p.grad is None else p.grad.copy()
            num, mask = numeric(p.data)
            _compare(f"parameter {name!r}", analytic, num, mask, atol, rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    finally:
        for name, b in module.named_buffers():
            if name in buffers:
                b[...] = buffers[name]
        module.clear_saved()
        _random.set_rng_state(rng_state)
    return True

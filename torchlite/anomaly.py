"""Anomaly mode, like ``torch.autograd.detect_anomaly``: find the first module that makes NaN/inf.

When on, every module call checks its output for NaN/inf after ``forward`` and every
``backward`` checks the gradient it returns and the parameter gradients it wrote; the first
non-finite value raises ``AnomalyError`` naming the module, its path in the model (e.g.
``features.3``) and the phase. It costs a pass over each output, so it is off by default.
"""
import functools
import threading

import numpy as np

_state = threading.local()


class AnomalyError(FloatingPointError, RuntimeError):
    """A module produced NaN or inf while anomaly mode was on."""


def is_anomaly_enabled():
    return getattr(_state, "enabled", False)


class set_detect_anomaly:
    """``set_detect_anomaly(mode)``: switch anomaly mode now; as a context manager, restore on exit."""

    def __init__(self, mode):
        self.prev = is_anomaly_enabled()
        _state.enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.enabled = self.prev
        return False


class detect_anomaly:
    """Context manager and decorator turning anomaly mode on inside it."""

    def __enter__(self):
        self.prev = is_anomaly_enabled()
        _state.enabled = True
        return self

    def __exit__(self, *exc):
        _state.enabled = self.prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly():
                return fn(*args, **kwargs)

        return wrapper


def _arrays(value):
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _arrays(v)


def _bad(value):
    """'nan' or 'inf' when a floating array in ``value`` holds one, else None."""
    for arr in _arrays(value):
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            return "nan" if np.isnan(arr).any() else "inf"
    return None


def _path(module):
    root = getattr(_state, "root", None)
    if root is not None:
        for name, m in root.named_modules():
            if m is module:
                return name or "<model>"
    return "<model>"


def _raise(module, what, phase, kind):
    raise AnomalyError(f"anomaly detected: {module._get_name()} at '{_path(module)}' ({module!r}) "
                       f"produced {kind} in its {what} during {phase}")


def checked_call(module, fn, args, kwargs, phase):
    """Run ``fn(*args, **kwargs)`` for ``module`` with anomaly checks; sets the root on entry."""
    depth = getattr(_state, "depth", 0)
    if depth == 0:
        _state.root = module
        kind = _bad(args)
        if kind:
            raise AnomalyError(f"anomaly detected: the {'input' if phase == 'forward' else 'gradient'} given to "
                               f"{module._get_name()} during {phase} already contains {kind}")
    _state.depth = depth + 1
    try:
        out = fn(*args, **kwargs)
    finally:
        _state.depth = depth
    kind = _bad(out)
    if kind:
        _raise(module, "output" if phase == "forward" else "input gradient", phase, kind)
    if phase == "backward":
        for name, p in module._parameters.items():
            if p is not None and p.grad is not None and _bad(p.grad):
                _raise(module, f"gradient of parameter '{name}'", phase, _bad(p.grad))
    return out


def wrap_backward(fn):
    """Wrap a Module subclass's ``backward`` so anomaly mode can check it."""

    @functools.wraps(fn)
    def backward(self, *args, **kwargs):
        if not getattr(_state, "enabled", False):
            return fn(self, *args, **kwargs)
        return checked_call(self, lambda *a, **k: fn(self, *a, **k), args, kwargs, "backward")

    backward._anomaly_wrapped = True
    return backward

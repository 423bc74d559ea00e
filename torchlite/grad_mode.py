"""Gradient mode: whether forward passes keep what backward needs.

Under ``no_grad()`` modules save nothing, so inference holds no activations.
"""
import functools
import threading

_state = threading.local()


def is_grad_enabled():
    """True unless inside ``no_grad()`` (per thread)."""
    return getattr(_state, "enabled", True)


def _set(mode):
    _state.enabled = bool(mode)


class _GradModeContext:
    """Base for context managers that also work as decorators."""

    mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set(self.mode)
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager and decorator: forward passes inside save nothing for backward."""

    mode = False


class enable_grad(_GradModeContext):
    """Context manager and decorator: turn gradient mode back on inside ``no_grad``."""

    mode = True


class set_grad_enabled(_GradModeContext):
    """``set_grad_enabled(mode)``: set gradient mode now; as a context manager, restore on exit."""

    def __init__(self, mode):
        self._prev = is_grad_enabled()
        self.mode = bool(mode)
        _set(self.mode)

    def __enter__(self):
        return self

    def __call__(self, fn):
        mode = self.mode
        _set(self._prev)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class inference_mode(no_grad):
    """Alias of ``no_grad`` for torch users."""

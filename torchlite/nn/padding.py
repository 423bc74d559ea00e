"""Padding layers: Zero/Constant/Reflection/Replication/CircularPad 1d, 2d and 3d.

``padding`` is an int (all sides) or a tuple ordered from the last dimension, as ``F.pad``:
(left, right) for 1d, (left, right, top, bottom) for 2d, plus (front, back) for 3d.
Inputs are (N, C, *spatial) or unbatched (C, *spatial); negative padding crops.
"""
import numpy as np

from . import functional as F
from ._checks import shape_error
from .module import Module

__all__ = [
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
    "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _padding_tuple(padding, dims):
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return (int(padding),) * (2 * dims)
    out = tuple(int(p) for p in padding)
    if len(out) != 2 * dims:
        raise ValueError(f"padding must be an int or a tuple of {2 * dims} ints, got {padding!r}")
    return out


class _PadNd(Module):
    """Shared forward/backward: F.pad with this layer's mode; the input shape is kept for backward."""

    mode = "constant"
    dims = 2

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding_tuple(padding, self.dims)

    def _value(self):
        return None

    def forward(self, input):
        x = np.asarray(input)
        ndim_ok = x.ndim >= self.dims if self.mode == "constant" else x.ndim in (self.dims + 1, self.dims + 2)
        if not ndim_ok:
            raise shape_error(self, f"(N, C, {_SPATIAL[self.dims]}) or (C, {_SPATIAL[self.dims]})", x)
        try:
            out = F.pad(x, self.padding, self.mode, self._value())
        except ValueError as e:
            raise ValueError(f"{self!r}: {str(e).split(': ', 1)[-1]} (input shape {x.shape})") from None
        self.save_for_backward(x.shape)
        return out

    def backward(self, grad_output):
        (shape,) = self.pop_saved()
        if not self.needs_input_grad:
            return None
        return F.pad_backward(grad_output, shape, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def _value(self):
        return self.value

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with ``value``: (N, C, L) -> (N, C, L + left + right)."""

    dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dims with ``value``: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""

    dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last three dims with ``value``: (N, C, D, H, W) -> (N, C, D', H', W')."""

    dims = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pads the last dim with zeros: (N, C, L) -> (N, C, L + left + right)."""

    dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pads the last two dims with zeros: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""

    dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pads the last three dims with zeros: (N, C, D, H, W) -> (N, C, D', H', W')."""

    dims = 3


class ReflectionPad1d(_PadNd):
    """Mirror padding without repeating the edge (each amount < the size it pads): (N, C, L) -> (N, C, L')."""

    mode, dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    """Mirror padding without repeating the edge: (N, C, H, W) -> (N, C, H', W')."""

    mode, dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    """Mirror padding without repeating the edge: (N, C, D, H, W) -> (N, C, D', H', W')."""

    mode, dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    """Repeats the edge values: (N, C, L) -> (N, C, L')."""

    mode, dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    """Repeats the edge values: (N, C, H, W) -> (N, C, H', W')."""

    mode, dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    """Repeats the edge values: (N, C, D, H, W) -> (N, C, D', H', W')."""

    mode, dims = "replicate", 3


class CircularPad1d(_PadNd):
    """Wraps around (each amount <= the size it pads): (N, C, L) -> (N, C, L')."""

    mode, dims = "circular", 1


class CircularPad2d(_PadNd):
    """Wraps around: (N, C, H, W) -> (N, C, H', W')."""

    mode, dims = "circular", 2


class CircularPad3d(_PadNd):
    """Wraps around: (N, C, D, H, W) -> (N, C, D', H', W')."""

    mode, dims = "circular", 3

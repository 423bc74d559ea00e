"""Flatten and Unflatten: reshape layers whose backward reshapes back."""
import numpy as np

from ._checks import shape_error
from .module import Module

__all__ = ["Flatten", "Unflatten"]


def _dim(d, ndim):
    return d + ndim if d < 0 else d


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        x = np.asarray(input)
        ndim = max(x.ndim, 1)
        start, end = _dim(self.start_dim, ndim), _dim(self.end_dim, ndim)
        if not (0 <= start < ndim and 0 <= end < ndim) or start > end:
            raise shape_error(self, f"at least {max(self.start_dim, self.end_dim) + 1} dimensions "
                              f"(start_dim={self.start_dim} <= end_dim={self.end_dim})", x)
        self.save_for_backward(x.shape)
        if x.ndim == 0:
            return x.reshape(1)
        return x.reshape(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:])

    def backward(self, grad_output):
        (shape,) = self.pop_saved()
        return np.asarray(grad_output).reshape(shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size``: (N, 784) -> (N, 1, 28, 28) with (1, 28, 28)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input):
        x = np.asarray(input)
        if x.ndim == 0:
            raise shape_error(self, "at least 1 dimension", x)
        d = _dim(self.dim, x.ndim)
        known = int(np.prod([s for s in self.unflattened_size if s != -1]))
        size = x.shape[d] if 0 <= d < x.ndim else None
        free = self.unflattened_size.count(-1)
        if size is None or free > 1 or (not free and known != size) or (free and (not known or size % known)):
            raise shape_error(self, f"dim {self.dim} of size {known} (= prod{self.unflattened_size})", x)
        self.save_for_backward(x.shape)
        # -1 spelled out: numpy cannot infer it for an empty array
        sizes = tuple(size // known if s == -1 else s for s in self.unflattened_size)
        return x.reshape(x.shape[:d] + sizes + x.shape[d + 1:])

    def backward(self, grad_output):
        (shape,) = self.pop_saved()
        return np.asarray(grad_output).reshape(shape)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

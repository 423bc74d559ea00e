"""FractionalMaxPool2d and FractionalMaxPool3d: max pooling with pseudo-random window starts.

Arguments, the ``_random_samples`` buffer and reprs follow torch (whose repr shows no
arguments). The math is in ``functional/fractional_pooling.py``.
"""
import numpy as np

from . import functional as F
from ._checks import as_float_input
from .functional.conv import _ntuple
from .module import Module

__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d"]


class _FractionalMaxPoolNd(Module):
    dims = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices=False, _random_samples=None):
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, self.dims, "kernel_size", repr(self))
        if min(self.kernel_size) < 1:
            raise ValueError(f"{self!r}: kernel_size must be greater than 0, but got {kernel_size!r}")
        self.return_indices = return_indices
        self.register_buffer("_random_samples", None if _random_samples is None else np.asarray(_random_samples))
        if output_size is None and output_ratio is None:
            raise ValueError(f"{self!r}: requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError(f"{self!r}: only one of output_size and output_ratio may be specified")
        self.output_size = None if output_size is None else _ntuple(output_size, self.dims, "output_size", repr(self))
        self.output_ratio = None
        if output_ratio is not None:
            ratio = (output_ratio,) * self.dims if np.ndim(output_ratio) == 0 else tuple(output_ratio)
            if len(ratio) != self.dims or not all(0 < r < 1 for r in ratio):
                raise ValueError(f"{self!r}: output_ratio must be between 0 and 1 (got {output_ratio!r})")
            self.output_ratio = ratio

    def forward(self, input):
        if self._random_samples is not None:  # the samples set the layer's dtype, as parameters do
            input = as_float_input(self, input, self._random_samples.dtype)
        y, indices = F.fractional_max_pool_nd(input, self.dims, self.kernel_size, self.output_size, self.output_ratio,
                                              self._random_samples, who=repr(self))
        self.save_for_backward(indices, np.shape(input), y.dtype)
        return (y, indices) if self.return_indices else y

    def backward(self, grad_output, grad_indices=None):
        indices, input_shape, dtype = self.pop_saved()
        if not self.needs_input_grad:
            return None
        grad = np.asarray(grad_output, dtype=dtype)
        return F.fractional_max_pool_nd_backward(grad, indices, input_shape, self.dims)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Max over kH x kW windows at pseudo-random starts: (N, C, H, W) or (C, H, W) -> (..., oH, oW).

    Args (torch's): kernel_size (int or (kH, kW)); exactly one of output_size (int or (oH, oW),
    oH + kH - 1 <= H) and output_ratio (number or pair in (0, 1): oH = int(H * ratio));
    return_indices=False (also return int64 flat indices into each input plane, for MaxUnpool2d);
    _random_samples=None ((N, C, 2) in [0, 1), read per plane as (u_W, u_H), kept as a buffer;
    None draws fresh ones each call from ``torchlite.random.get_generator()``).
    """

    dims = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Max over kD x kH x kW windows at pseudo-random starts: (N, C, D, H, W) or (C, D, H, W) -> (..., *out).

    Args as FractionalMaxPool2d with triples; torch's bound is strict here (oD + kD - 1 < D);
    _random_samples (N, C, 3) read as (u_D, u_H, u_W).
    """

    dims = 3

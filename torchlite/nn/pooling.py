"""Pooling layers: MaxPool, AvgPool, AdaptiveAvgPool, AdaptiveMaxPool, LPPool (1d/2d/3d) and MaxUnpool.

Arguments, defaults and reprs follow torch. Inputs are (N, C, *spatial) or unbatched
(C, *spatial). Max pooling sends each window's gradient to its first maximum, as torch does.
"""
from collections import namedtuple

import numpy as np

from .._dtype import get_default_dtype
from ..grad_mode import is_grad_enabled
from . import functional as F
from ._checks import shape_error
from .module import Module

__all__ = [
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


_Blocks = namedtuple("_Blocks", ["arg", "taps", "dtype"])  # what a max pool fed by conv blocks keeps


def _as_tuple(value, n):
    return (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)


class _Pool(Module):
    """Input checks and the save/pop pattern shared by the pooling layers."""

    dims = 2

    def _input(self, input):
        x = np.asarray(input)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{self!r}: expected a floating-point input, got dtype {x.dtype}")
        if x.dtype.kind != "f":
            x = x.astype(get_default_dtype())
        spatial = _SPATIAL[self.dims]
        if x.ndim not in (self.dims + 1, self.dims + 2):
            raise shape_error(self, f"(N, C, {spatial}) or (C, {spatial})", x)
        return x

    def _saved_context(self):
        (ctx,) = self.pop_saved()
        return ctx if self.needs_input_grad else None

    def _max_forward(self, pool, *args):
        """``pool(x, *args, return_indices, return_context=...)``: the output (and indices), keeping
        the context for backward only while gradients are enabled (max pools need no context otherwise)."""
        keep = is_grad_enabled()
        out = pool(*args, self.return_indices, return_context=keep, who=repr(self))
        if not keep:
            return out
        *out, ctx = out
        self.save_for_backward(ctx)
        return tuple(out) if self.return_indices else out[0]


class _MaxPoolNd(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        x = self._input(input)
        return self._max_forward(F.max_pool_nd, x, self.dims, self.kernel_size, self.stride, self.padding,
                                 self.dilation, self.ceil_mode)

    def forward_blocks(self, blocks, batched):
        """forward from a convolution's output grouped by this pool's window taps (``F.conv_nd_blocks``;
        Sequential calls it); backward then returns the gradient in that form."""
        best, arg = F.max_pool_blocks(blocks, return_context=True)
        self.save_for_backward(_Blocks(arg, len(blocks), blocks.dtype))
        return best if batched else best[0]

    def backward(self, grad_output, grad_indices=None):
        ctx = self._saved_context()
        if ctx is None:
            return None
        if isinstance(ctx, _Blocks):
            grad = np.asarray(grad_output)
            return F.max_pool_blocks_backward(grad if grad.ndim == ctx.arg.ndim else grad[None], *ctx)
        return F.max_pool_nd_backward(grad_output, ctx)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max over windows of L: (N, C, L) -> (N, C, L_out).

    Args (torch's): kernel_size, stride=None (= kernel_size), padding=0 (implicit -inf),
    dilation=1, return_indices=False (also return torch-style flat indices), ceil_mode=False.
    """

    dims = 1


class MaxPool2d(_MaxPoolNd):
    """Max over windows of H, W: (N, C, H, W) -> (N, C, H_out, W_out); args as MaxPool1d."""

    dims = 2


class MaxPool3d(_MaxPoolNd):
    """Max over windows of D, H, W: (N, C, D, H, W) -> (N, C, *out); args as MaxPool1d."""

    dims = 3


class _AvgPoolNd(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        x = self._input(input)
        y, ctx = F.avg_pool_nd(x, self.dims, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                               self.count_include_pad, self.divisor_override, return_context=True, who=repr(self))
        self.save_for_backward(ctx)
        return y

    def backward(self, grad_output):
        ctx = self._saved_context()
        return None if ctx is None else F.avg_pool_nd_backward(grad_output, ctx)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean over windows of L: (N, C, L) -> (N, C, L_out).

    Args (torch's): kernel_size, stride=None (= kernel_size), padding=0 (zeros),
    ceil_mode=False, count_include_pad=True (padded zeros count in the divisor).
    """

    dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(_as_tuple(kernel_size, 1), _as_tuple(stride if stride is not None else kernel_size, 1),
                         _as_tuple(padding, 1), ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Mean over windows of H, W: (N, C, H, W) -> (N, C, H_out, W_out).

    Args as AvgPool1d, plus divisor_override=None (divide every window by this instead).
    """

    dims = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over windows of D, H, W: (N, C, D, H, W) -> (N, C, *out); args as AvgPool2d."""

    dims = 3


class _LPPoolNd(_Pool):
    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input):
        x = self._input(input)
        y, ctx = F.lp_pool_nd(x, self.dims, self.norm_type, self.kernel_size, self.stride, self.ceil_mode,
                              return_context=True, who=repr(self))
        self.save_for_backward(ctx)
        return y

    def backward(self, grad_output):
        ctx = self._saved_context()
        return None if ctx is None else F.lp_pool_nd_backward(grad_output, ctx)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Power-average pooling (sum of x**p over each window) ** (1/p): (N, C, L) -> (N, C, L_out).

    Args (torch's): norm_type p, kernel_size, stride=None (= kernel_size), ceil_mode=False.
    """

    dims = 1


class LPPool2d(_LPPoolNd):
    """Power-average pooling over H, W: (N, C, H, W) -> (N, C, H_out, W_out); args as LPPool1d."""

    dims = 2


class LPPool3d(_LPPoolNd):
    """Power-average pooling over D, H, W: (N, C, D, H, W) -> (N, C, *out); args as LPPool1d."""

    dims = 3


class _AdaptiveAvgPoolNd(_Pool):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        x = self._input(input)
        y, ctx = F.adaptive_avg_pool_nd(x, self.dims, self.output_size, return_context=True, who=repr(self))
        self.save_for_backward(ctx)
        return y

    def backward(self, grad_output):
        ctx = self._saved_context()
        return None if ctx is None else F.adaptive_avg_pool_nd_backward(grad_output, ctx)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Mean over torch's adaptive windows: (N, C, L) -> (N, C, output_size)."""

    dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Mean over adaptive windows: (N, C, H, W) -> (N, C, *output_size); int, pair, None keeps a size."""

    dims = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Mean over adaptive windows: (N, C, D, H, W) -> (N, C, *output_size)."""

    dims = 3


class _AdaptiveMaxPoolNd(_Pool):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input):
        x = self._input(input)
        return self._max_forward(F.adaptive_max_pool_nd, x, self.dims, self.output_size)

    def backward(self, grad_output, grad_indices=None):
        ctx = self._saved_context()
        return None if ctx is None else F.adaptive_max_pool_nd_backward(grad_output, ctx)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max over adaptive windows: (N, C, L) -> (N, C, output_size); return_indices as MaxPool1d."""

    dims = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max over adaptive windows: (N, C, H, W) -> (N, C, *output_size); return_indices as MaxPool2d."""

    dims = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max over adaptive windows: (N, C, D, H, W) -> (N, C, *output_size)."""

    dims = 3


class _MaxUnpoolNd(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _as_tuple(kernel_size, self.dims)
        self.stride = _as_tuple(stride if stride is not None else kernel_size, self.dims)
        self.padding = _as_tuple(padding, self.dims)

    def forward(self, input, indices, output_size=None):
        x = self._input(input)
        y = F.max_unpool_nd(x, indices, self.dims, self.kernel_size, self.stride, self.padding, output_size,
                            who=repr(self))
        self.save_for_backward(np.asarray(indices))
        return y

    def backward(self, grad_output):
        indices = self._saved_context()
        return None if indices is None else F.max_unpool_nd_backward(grad_output, indices, self.dims)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Partial inverse of MaxPool1d: forward(input, indices, output_size=None), (N, C, L) -> (N, C, L_out).

    L_out = (L-1)*stride - 2*padding + kernel_size unless output_size is given.
    """

    dims = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Partial inverse of MaxPool2d: forward(input, indices, output_size=None), (N, C, H, W) -> (N, C, *out)."""

    dims = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """Partial inverse of MaxPool3d: forward(input, indices, output_size=None), (N, C, D, H, W) -> (N, C, *out)."""

    dims = 3

"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d, thin wrappers over F.conv_nd.

Arguments, defaults, parameter shapes, initialisation and reprs are torch's. The forward keeps
the im2col column buffer for the weight gradient; a layer whose ``needs_input_grad`` is False
(a model's first layer) skips the input gradient, a frozen weight skips the weight gradient.
"""
import math

import numpy as np

from .._dtype import get_default_dtype
from ..grad_mode import is_grad_enabled
from . import functional as F
from . import init
from ._checks import as_float_input, shape_error
from .module import Module, _check_device
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, n, name, cls):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        out = ()
    if len(out) != n:
        raise ValueError(f"{cls}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


class _ConvNd(Module):
    """Shared state and checks; subclasses set ``dims`` and ``transposed``."""

    dims = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                 bias, padding_mode, dtype):
        super().__init__()
        cls = type(self).__name__
        n = self.dims
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
            raise ValueError(f"{cls}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups != 0:
            raise ValueError(f"{cls}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{cls}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        kernel_size = _tuple(kernel_size, n, "kernel_size", cls)
        stride = _tuple(stride, n, "stride", cls)
        dilation = _tuple(dilation, n, "dilation", cls)
        if min(kernel_size) < 1 or min(stride) < 1 or min(dilation) < 1:
            raise ValueError(f"{cls}: kernel_size, stride and dilation must be positive, got "
                             f"kernel_size={kernel_size}, stride={stride}, dilation={dilation}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{cls}: invalid padding string {padding!r}, should be one of {{'same', 'valid'}}")
            if self.transposed:
                raise ValueError(f"{cls}: padding must be an int or a tuple of {n} ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{cls}: padding='same' is not supported for strided convolutions")
        else:
            padding = _tuple(padding, n, "padding", cls)
            if min(padding) < 0:
                raise ValueError(f"{cls}: padding must be non-negative, got {padding}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be one of {set(_PADDING_MODES)}, "
                             f"but got padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.output_padding = _tuple(output_padding, n, "output_padding", cls)
        self.groups = int(groups)
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = self._pad_for_mode()
        self._workspace = F.Workspace()  # big scratch buffers reused from step to step
        dtype = dtype or get_default_dtype()
        shape = ((in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups))
        self.weight = Parameter(np.empty(shape + kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _drop_scratch(self):
        self._workspace.clear()

    def _pad_for_mode(self):
        """(last_before, last_after, ...) as F.pad takes it, for non-zero padding modes."""
        if self.padding == "same":
            pairs = [(dl * (k - 1) // 2, dl * (k - 1) - dl * (k - 1) // 2)
                     for k, dl in zip(self.kernel_size, self.dilation)]
        elif self.padding == "valid":
            pairs = [(0, 0)] * self.dims
        else:
            pairs = [(p, p) for p in self.padding]
        return [p for pair in reversed(pairs) for p in pair]

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _batched_input(self, input):
        """The input as (N, C, *spatial) float of the weight's dtype, and whether it came batched."""
        x = as_float_input(self, input, self.weight.dtype)
        spatial, c = _SPATIAL[self.dims], self.in_channels
        if x.ndim not in (self.dims + 1, self.dims + 2) or x.shape[-self.dims - 1] != c:
            raise shape_error(self, f"(N, {c}, {spatial}) or ({c}, {spatial})", x)
        batched = x.ndim == self.dims + 2
        if 0 in x.shape[-self.dims:]:  # a transposed conv would make a non-empty output out of nothing
            raise shape_error(self, f"(N, {c}, {spatial}) with non-empty {spatial}", x)
        return (x if batched else x[None]), batched

    def _accumulate(self, dw, db):
        if dw is not None:
            self.weight.accumulate_grad(dw, fresh=True)
        if db is not None and self.bias.requires_grad:
            self.bias.accumulate_grad(db, fresh=True)


class _Conv(_ConvNd):
    INFERENCE_COLUMNS = 1 << 19  # 2 MB of float32 columns per chunk under no_grad: the GEMM reads them from cache
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        _check_device(self, device)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0, groups, bias,
                         padding_mode, dtype)

    def forward(self, input):
        return self._forward(input, channels_last=False)

    def forward_channels_last(self, input):
        """forward whose output may be a view of channels-last memory, same values (Sequential calls
        it when a max pool, which reads any layout, comes next)."""
        return self._forward(input, channels_last=True)

    def forward_pool_blocks(self, input, tile, ceil_mode):
        """forward for a max pool of kernel = stride = ``tile`` (no padding or dilation) that comes next
        (Sequential calls it): (blocks, batched), the output pixels that pool reads grouped by window tap
        (``F.conv_nd_blocks``), or None where that does not apply (call ``forward_channels_last`` then)."""
        if not is_grad_enabled():
            return None
        x, shape, batched, padding, bias = self._prepared(input)
        found = F.conv_nd_blocks(x, self.weight.data, bias, self.stride, padding, self.dilation, self.groups, tile,
                                 ceil_mode, who=repr(self), workspace=self._workspace)
        if found is None:
            return None
        blocks, ctx = found
        self.save_for_backward(ctx, shape, batched)
        return blocks, batched

    def _prepared(self, input):
        """(x, its shape before mode padding, batched, padding left for conv_nd, bias array)."""
        x, batched = self._batched_input(input)
        shape = x.shape
        padding = self.padding
        if self.padding_mode != "zeros":
            try:
                x = F.pad(x, self._reversed_padding_repeated_twice, self.padding_mode)
            except ValueError as e:
                raise ValueError(f"{self!r}: {str(e).split(': ', 1)[-1]} (input shape {shape})") from None
            padding = 0
        return x, shape, batched, padding, None if self.bias is None else self.bias.data

    def _forward(self, input, channels_last):
        x, shape, batched, padding, bias = self._prepared(input)
        keep = is_grad_enabled()
        if not keep:
            y = self._inference(x, bias, padding)
            return y if batched else y[0]
        y, ctx = F.conv_nd(x, self.weight.data, bias, self.stride, padding, self.dilation, self.groups,
                           return_context=True, who=repr(self), workspace=self._workspace,
                           channels_last_output=channels_last)
        self.save_for_backward(ctx, shape, batched)
        return y if batched else y[0]

    def _inference(self, x, bias, padding):
        """Forward under no_grad in chunks of samples, so the column buffer stays under
        ``INFERENCE_COLUMNS`` elements whatever the batch (a 1000-image batch through a
        32->64 3x3 conv on 14x14 would otherwise need a 226 MB buffer)."""
        return F.conv_nd(x, self.weight.data, bias, self.stride, padding, self.dilation, self.groups,
                         who=repr(self), workspace=self._workspace, max_columns=self.INFERENCE_COLUMNS)

    def backward(self, grad_output):
        ctx, shape, batched = self.pop_saved()
        grad = np.asarray(grad_output)
        if not batched and ctx.geometry.tile is None:
            grad = grad[None]
        dx, dw, db = F.conv_nd_backward(grad, ctx, self.needs_input_grad,
                                        self.weight.requires_grad, self._workspace)
        self._accumulate(dw, db)
        if dx is None:
            return None
        if self.padding_mode != "zeros":
            dx = F.pad_backward(dx, shape, self._reversed_padding_repeated_twice, self.padding_mode)
        return dx if batched else dx[0]


class Conv1d(_Conv):
    """1d convolution over (N, C_in, L) or (C_in, L) -> (N, C_out, L_out).

    Args (torch's): in_channels, out_channels, kernel_size, stride=1, padding=0 (int, tuple,
    'valid' or 'same'), dilation=1, groups=1, bias=True, padding_mode='zeros' ('reflect',
    'replicate', 'circular'). L_out = (L + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1.
    Attributes: weight (C_out, C_in/groups, k) and bias (C_out,), both U(-b, b), b = 1/sqrt(fan_in).
    """

    dims = 1


class Conv2d(_Conv):
    """2d convolution over (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, H_out, W_out).

    Args (torch's): in_channels, out_channels, kernel_size, stride=1, padding=0 (int, tuple,
    'valid' or 'same'), dilation=1, groups=1, bias=True, padding_mode='zeros' ('reflect',
    'replicate', 'circular'). H_out = (H + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1.
    Attributes: weight (C_out, C_in/groups, kh, kw) and bias (C_out,), both U(-b, b), b = 1/sqrt(fan_in).
    """

    dims = 2


class Conv3d(_Conv):
    """3d convolution over (N, C_in, D, H, W) or (C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out).

    Args as Conv2d; weight (C_out, C_in/groups, kd, kh, kw), bias (C_out,).
    """

    dims = 3


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        _check_device(self, device)
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                         bias, padding_mode, dtype)

    def _output_padding(self, x, output_size):
        """output_padding giving ``output_size`` (torch's rule), or the layer's own when it is None."""
        if output_size is None:
            return self.output_padding
        size = [int(s) for s in output_size]
        if len(size) == self.dims + 2:
            size = size[2:]
        if len(size) != self.dims:
            raise ValueError(f"{self!r}: output_size must have {self.dims} or {self.dims + 2} elements "
                             f"(got {len(size)})")
        lows = [(i - 1) * s - 2 * p + dl * (k - 1) + 1 for i, s, p, dl, k in
                zip(x.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        highs = [lo + s - 1 for lo, s in zip(lows, self.stride)]
        if any(not lo <= v <= hi for v, lo, hi in zip(size, lows, highs)):
            raise ValueError(f"{self!r}: requested an output size of {size}, but valid sizes range from {lows} "
                             f"to {highs} (for an input of {list(x.shape[2:])})")
        return tuple(v - lo for v, lo in zip(size, lows))

    def forward(self, input, output_size=None):
        x, batched = self._batched_input(input)
        output_padding = self._output_padding(x, output_size)
        bias = None if self.bias is None else self.bias.data
        keep = is_grad_enabled()
        y = F.conv_transpose_nd(x, self.weight.data, bias, self.stride, self.padding, output_padding, self.groups,
                                self.dilation, return_context=keep, who=repr(self), workspace=self._workspace)
        if keep:
            y, ctx = y
            self.save_for_backward(ctx, batched)
        return y if batched else y[0]

    def backward(self, grad_output):
        ctx, batched = self.pop_saved()
        grad = np.asarray(grad_output)
        dx, dw, db = F.conv_transpose_nd_backward(grad if batched else grad[None], ctx, self.needs_input_grad,
                                                  self.weight.requires_grad, self._workspace)
        self._accumulate(dw, db)
        if dx is None:
            return None
        return dx if batched else dx[0]


class ConvTranspose1d(_ConvTranspose):
    """1d transposed convolution (the input gradient of Conv1d): (N, C_in, L) -> (N, C_out, L_out).

    Args (torch's): in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
    groups=1, bias=True, dilation=1; forward(input, output_size=None).
    L_out = (L-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1.
    Attributes: weight (C_in, C_out/groups, k), bias (C_out,).
    """

    dims = 1


class ConvTranspose2d(_ConvTranspose):
    """2d transposed convolution: (N, C_in, H, W) -> (N, C_out, H_out, W_out); args as ConvTranspose1d.

    Attributes: weight (C_in, C_out/groups, kh, kw), bias (C_out,).
    """

    dims = 2


class ConvTranspose3d(_ConvTranspose):
    """3d transposed convolution: (N, C_in, D, H, W) -> (N, C_out, *out); args as ConvTranspose1d.

    Attributes: weight (C_in, C_out/groups, kd, kh, kw), bias (C_out,).
    """

    dims = 3

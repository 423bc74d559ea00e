"""Upsample, UpsamplingNearest2d and UpsamplingBilinear2d: layers over F.interpolate."""
import numpy as np

from ..grad_mode import is_grad_enabled
from . import functional as F
from ._checks import shape_error
from .module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    """Resize (N, C, *spatial) to ``size`` or by ``scale_factor``.

    Args (torch's): size=None, scale_factor=None (exactly one of them), mode='nearest'
    ('nearest-exact', 'linear' for 3-d input, 'bilinear' or 'bicubic' 4-d, 'trilinear' 5-d,
    'area'), align_corners=None (linear and bicubic modes only; False when None),
    recompute_scale_factor=None (True: derive the sampling step from the output size instead
    of scale_factor).
    Shape: (N, C, *in) -> (N, C, *out), out = size or floor(in * scale_factor).
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        x = np.asarray(input)
        if x.ndim not in (3, 4, 5):
            raise shape_error(self, "(N, C, L), (N, C, H, W) or (N, C, D, H, W)", x)
        try:
            y, ctx = F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                                   self.recompute_scale_factor, return_context=True)
        except ValueError as e:
            raise ValueError(f"{self!r}: {str(e).split(': ', 1)[-1]}") from None
        if is_grad_enabled():
            self.save_for_backward(ctx)
        return y

    def backward(self, grad_output):
        (ctx,) = self.pop_saved()
        return F.interpolate_backward(grad_output, ctx) if self.needs_input_grad else None

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour 2d upsampling: (N, C, H, W) -> (N, C, H_out, W_out); size or scale_factor."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")

    def forward(self, input):
        if np.ndim(input) != 4:
            raise shape_error(self, "(N, C, H, W)", input)
        return super().forward(input)


class UpsamplingBilinear2d(Upsample):
    """Bilinear 2d upsampling with align_corners=True: (N, C, H, W) -> (N, C, H_out, W_out)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)

    def forward(self, input):
        if np.ndim(input) != 4:
            raise shape_error(self, "(N, C, H, W)", input)
        return super().forward(input)

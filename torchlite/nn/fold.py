"""Unfold (im2col) and Fold (col2im) layers: each one's backward is the other's forward.

Arguments are torch's: an int or a pair for ``kernel_size``, ``dilation``, ``padding``,
``stride`` (and Fold's ``output_size``), printed back as given.
"""
import numpy as np

from .functional.fold import _fold, _unfold, fold_backward, unfold_backward
from .module import Module

__all__ = ["Unfold", "Fold"]


class Unfold(Module):
    """Sliding blocks as columns: (N, C, H, W) -> (N, C*kh*kw, L), or (C, H, W) -> (C*kh*kw, L).

    L = oh * ow, o = (size + 2 padding - dilation (kernel - 1) - 1) // stride + 1 per spatial dim.
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        out = _unfold(input, self.kernel_size, self.dilation, self.padding, self.stride, repr(self))
        self.save_for_backward(np.shape(input))
        return out

    def backward(self, grad_output):
        (shape,) = self.pop_saved()
        return unfold_backward(grad_output, shape, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """Columns back into an image, summing overlaps: (N, C*kh*kw, L) -> (N, C, *output_size).

    Unbatched (C*kh*kw, L) -> (C, *output_size); L must be the number of blocks Unfold makes.
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        out = _fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride,
                       repr(self))
        self.save_for_backward()
        return out

    def backward(self, grad_output):
        self.pop_saved()
        return fold_backward(grad_output, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")

"""PixelShuffle, PixelUnshuffle and ChannelShuffle: rearranging layers whose backward rearranges back.

They keep nothing but a marker for backward (each forward still needs its own backward call).
"""
from .functional import pixelshuffle as FP
from .module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r) with r = ``upscale_factor`` (sub-pixel convolution)."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        out = FP._pixel_shuffle(input, self.upscale_factor, repr(self))
        self.save_for_backward()
        return out

    def backward(self, grad_output):
        self.pop_saved()
        return FP.pixel_shuffle_backward(grad_output, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W) with r = ``downscale_factor``; inverse of PixelShuffle."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        out = FP._pixel_unshuffle(input, self.downscale_factor, repr(self))
        self.save_for_backward()
        return out

    def backward(self, grad_output):
        self.pop_saved()
        return FP.pixel_unshuffle_backward(grad_output, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    """(N, C, *) -> (N, C, *): the channels, seen as (groups, C / groups), transposed (ShuffleNet)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        out = FP._channel_shuffle(input, self.groups, repr(self))
        self.save_for_backward()
        return out

    def backward(self, grad_output):
        self.pop_saved()
        return FP.channel_shuffle_backward(grad_output, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"

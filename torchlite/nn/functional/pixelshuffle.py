"""Pixel and channel shuffles: pure rearrangements, each undone by its backward twin.

``pixel_shuffle`` moves channel blocks into space, ``(*, C r^2, H, W) -> (*, C, H r, W r)``;
``pixel_unshuffle`` is its inverse; ``channel_shuffle`` interleaves ``groups`` channel groups of
``(N, C, *)`` (``native_channel_shuffle`` is torch's other name for it). Each backward applies the inverse rearrangement to ``grad_output``. Any dtype
passes through unchanged.
"""
import numpy as np

__all__ = ["pixel_shuffle", "pixel_shuffle_backward", "pixel_unshuffle", "pixel_unshuffle_backward",
           "channel_shuffle", "channel_shuffle_backward", "native_channel_shuffle"]


def _check_factor(factor, name, who):
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"{who}: expected a positive integer {name}, got {factor!r}")


def _pixel_shuffle(input, r, who):
    _check_factor(r, "upscale_factor", who)
    x = np.asarray(input)
    if x.ndim < 3:
        raise ValueError(f"{who}: expected input (*, C*{r * r}, H, W) with at least 3 dimensions, got shape {x.shape}")
    *batch, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"{who}: expected the channel dim (-3) divisible by upscale_factor^2 = {r * r}, "
                         f"got shape {x.shape}")
    b = len(batch)
    y = x.reshape(*batch, c // (r * r), r, r, h, w)
    y = y.transpose(*range(b), b, b + 3, b + 1, b + 4, b + 2)
    return y.reshape(*batch, c // (r * r), h * r, w * r)


def _pixel_unshuffle(input, r, who):
    _check_factor(r, "downscale_factor", who)
    x = np.asarray(input)
    if x.ndim < 3:
        raise ValueError(f"{who}: expected input (*, C, H*{r}, W*{r}) with at least 3 dimensions, got shape {x.shape}")
    *batch, c, h, w = x.shape
    if h % r or w % r:
        raise ValueError(f"{who}: expected height and width divisible by downscale_factor={r}, got shape {x.shape}")
    b = len(batch)
    y = x.reshape(*batch, c, h // r, r, w // r, r)
    y = y.transpose(*range(b), b, b + 2, b + 4, b + 1, b + 3)
    return y.reshape(*batch, c * r * r, h // r, w // r)


def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r): output[..., c, h r + i, w r + j] = input[..., c r^2 + i r + j, h, w]."""
    return _pixel_shuffle(input, upscale_factor, "pixel_shuffle")


def pixel_shuffle_backward(grad_output, upscale_factor):
    """dx = pixel_unshuffle(grad_output, upscale_factor)."""
    return _pixel_unshuffle(grad_output, upscale_factor, "pixel_shuffle_backward")


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of ``pixel_shuffle``."""
    return _pixel_unshuffle(input, downscale_factor, "pixel_unshuffle")


def pixel_unshuffle_backward(grad_output, downscale_factor):
    """dx = pixel_shuffle(grad_output, downscale_factor)."""
    return _pixel_shuffle(grad_output, downscale_factor, "pixel_unshuffle_backward")


def _check_channels(x, groups, who):
    _check_factor(groups, "groups", who)
    if x.ndim < 3:
        raise ValueError(f"{who}: expected input (N, C, *) with at least 3 dimensions, got shape {x.shape}")
    if x.shape[1] % groups:
        raise ValueError(f"{who}: expected the number of channels (dim 1) divisible by groups={groups}, "
                         f"got shape {x.shape}")


def _shuffle(x, groups):
    n, c, *rest = x.shape
    return x.reshape(n, groups, c // groups, *rest).swapaxes(1, 2).reshape(x.shape)


def _channel_shuffle(input, groups, who):
    x = np.asarray(input)
    _check_channels(x, groups, who)
    return _shuffle(x, groups)


def channel_shuffle(input, groups):
    """(N, C, *) -> (N, C, *) with channels seen as (groups, C / groups) and transposed."""
    return _channel_shuffle(input, groups, "channel_shuffle")


def native_channel_shuffle(input, groups):
    """``channel_shuffle`` under the name of torch's native kernel (same result; ``channel_shuffle_backward``)."""
    return _channel_shuffle(input, groups, "native_channel_shuffle")


def channel_shuffle_backward(grad_output, groups):
    """dx = channel_shuffle(grad_output, C / groups), the inverse permutation."""
    g = np.asarray(grad_output)
    _check_channels(g, groups, "channel_shuffle_backward")
    return _shuffle(g, g.shape[1] // groups)

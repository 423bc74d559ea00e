"""PixelShuffle, PixelUnshuffle, ChannelShuffle (and functional forms) against PyTorch: outputs and
gradients over factors and batch shapes (incl. unbatched and extra batch dims), inverses, gradchecks,
reprs, errors."""
import math

import numpy as np
import pytest
import torch

import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

DTYPES = [np.float64, np.float32]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


SHUFFLE = [(1, (2, 3, 4, 5)), (2, (2, 8, 3, 4)), (2, (4, 2, 3)), (3, (1, 18, 2, 2)), (2, (2, 3, 8, 2, 3))]
UNSHUFFLE = [(1, (2, 3, 4, 5)), (2, (2, 2, 6, 4)), (2, (3, 4, 6)), (3, (1, 2, 6, 9)), (2, (2, 3, 1, 4, 2))]
CHANNEL = [(1, (2, 3, 4)), (2, (2, 6, 3, 3)), (3, (1, 6, 2)), (3, (2, 9, 2, 2, 2)), (4, (3, 8, 5))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r,shape", SHUFFLE, ids=str)
def test_pixel_shuffle_parity(r, shape, dtype):
    out = check_parity(nn.PixelShuffle(r), torch.nn.PixelShuffle(r), rand(*shape), dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r,shape", UNSHUFFLE, ids=str)
def test_pixel_unshuffle_parity(r, shape, dtype):
    out = check_parity(nn.PixelUnshuffle(r), torch.nn.PixelUnshuffle(r), rand(*shape), dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups,shape", CHANNEL, ids=str)
def test_channel_shuffle_parity(groups, shape, dtype):
    out = check_parity(nn.ChannelShuffle(groups), torch.nn.ChannelShuffle(groups), rand(*shape), dtype=dtype)
    assert out.dtype == dtype


def test_exact_values_inverses_and_integer_input():
    x = np.arange(2 * 8 * 2 * 3).reshape(2, 8, 2, 3)
    y = F.pixel_shuffle(x, 2)
    np.testing.assert_array_equal(y, torch.nn.functional.pixel_shuffle(torch.from_numpy(x), 2).numpy())
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(F.pixel_unshuffle(y, 2), x)
    c = F.channel_shuffle(x, 4)
    np.testing.assert_array_equal(c, torch.nn.functional.channel_shuffle(torch.from_numpy(x), 4).numpy())
    np.testing.assert_array_equal(F.channel_shuffle_backward(c, 4), x)
    np.testing.assert_array_equal(F.pixel_shuffle_backward(y, 2), x)
    np.testing.assert_array_equal(F.pixel_unshuffle_backward(x, 2), y)


@pytest.mark.parametrize("groups,shape", CHANNEL, ids=str)
def test_native_channel_shuffle_is_torchs(groups, shape):
    x = np.arange(math.prod(shape)).reshape(shape)
    y = F.native_channel_shuffle(x, groups)
    np.testing.assert_array_equal(y, torch.nn.functional.native_channel_shuffle(torch.from_numpy(x), groups).numpy())
    np.testing.assert_array_equal(F.channel_shuffle_backward(y, groups), x)
    with pytest.raises(ValueError, match=r"^native_channel_shuffle: expected input \(N, C, \*\) with at least 3"):
        F.native_channel_shuffle(x.reshape(shape[0], -1), groups)


@pytest.mark.parametrize("module", [nn.PixelShuffle(2), nn.PixelUnshuffle(2), nn.ChannelShuffle(2)], ids=repr)
def test_gradcheck(module):
    shape = (2, 4, 2, 2) if isinstance(module, (nn.PixelShuffle, nn.ChannelShuffle)) else (2, 1, 4, 4)
    assert gradcheck(module.double(), rand(*shape))


def test_reprs_stack_and_errors():
    for ours, theirs in [(nn.PixelShuffle(3), torch.nn.PixelShuffle(3)),
                         (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2)),
                         (nn.ChannelShuffle(4), torch.nn.ChannelShuffle(4))]:
        assert repr(ours) == repr(theirs)
    m = nn.PixelShuffle(2)
    m(rand(1, 4, 2, 2))
    m.backward(np.ones((1, 1, 4, 4)))
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"^PixelShuffle\(upscale_factor=2\): expected input \(\*, C\*4, H, W\) "
                                         r"with at least 3 dimensions, got shape \(4, 4\)"):
        m(rand(4, 4))
    with pytest.raises(ValueError, match=r"^PixelShuffle\(upscale_factor=2\): expected the channel dim \(-3\) "
                                         r"divisible by upscale_factor\^2 = 4, got shape \(1, 6, 2, 2\)"):
        m(rand(1, 6, 2, 2))
    with pytest.raises(ValueError, match=r"^PixelUnshuffle\(downscale_factor=2\): expected height and width "
                                         r"divisible by downscale_factor=2, got shape \(1, 5, 4\)"):
        nn.PixelUnshuffle(2)(rand(1, 5, 4))
    with pytest.raises(ValueError, match=r"^ChannelShuffle\(groups=4\): expected the number of channels \(dim 1\) "
                                         r"divisible by groups=4, got shape \(2, 6, 3\)"):
        nn.ChannelShuffle(4)(rand(2, 6, 3))
    with pytest.raises(ValueError, match=r"^ChannelShuffle\(groups=2\): expected input \(N, C, \*\) with at least 3"):
        nn.ChannelShuffle(2)(rand(2, 6))
    with pytest.raises(ValueError, match=r"^pixel_shuffle: expected a positive integer upscale_factor, got 0"):
        F.pixel_shuffle(rand(4, 2, 2), 0)
    with pytest.raises(ValueError, match=r"^channel_shuffle: expected a positive integer groups, got -1"):
        F.channel_shuffle(rand(2, 4, 2), -1)

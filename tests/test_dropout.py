"""Dropout layers: torch's RNG cannot be matched, so masks are checked by their statistics and
structure, values against torch where both libraries kept (or dropped) the same element, and
gradients with gradcheck (which replays the same draws)."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

ALPHA = 1.7580993408473766  # SELU's alpha * scale


def big(dtype=np.float32, shape=(200, 1000)):
    """Strictly positive data, so a zero output means a dropped element."""
    return (np.random.default_rng(0).random(shape) + 0.5).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_fraction_scale_and_backward_mask(p, dtype):
    m = nn.Dropout(p)
    x = big(dtype)
    out = m(x)
    dropped = out == 0
    sigma = np.sqrt(p * (1 - p) / x.size)
    assert abs(dropped.mean() - p) < 5 * sigma
    assert out.dtype == dtype
    np.testing.assert_allclose(out[~dropped] / x[~dropped], 1 / (1 - p), rtol=2 * np.finfo(dtype).eps)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    dx = m.backward(g)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx == 0, dropped)
    np.testing.assert_allclose(dx[~dropped], g[~dropped] / (1 - p), rtol=2 * np.finfo(dtype).eps)


def test_dropout_kept_values_equal_torchs():
    x = big(np.float32, (100, 100))
    ours = nn.Dropout(0.3)(x)
    theirs = torch.nn.Dropout(0.3)(torch.from_numpy(x)).numpy()
    both = (ours != 0) & (theirs != 0)
    assert both.sum() > 1000
    np.testing.assert_array_equal(ours[both], theirs[both])


def test_dropout_edge_probabilities_and_eval():
    x = big(np.float64, (30, 40))
    m = nn.Dropout(0.0)
    np.testing.assert_array_equal(m(x), x)
    np.testing.assert_array_equal(m.backward(np.ones_like(x)), np.ones_like(x))
    ones = nn.Dropout(1.0)
    assert not ones(x).any() and ones(x).shape == x.shape
    assert not ones.backward(np.ones_like(x)).any()
    ev = nn.Dropout(0.5).eval()
    assert ev(x) is x
    g = np.random.default_rng(0).standard_normal(x.shape)
    np.testing.assert_array_equal(ev.backward(g), g)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_out_of_range_raises(p):
    msg = f"dropout probability has to be between 0 and 1, but got {p}"
    for cls in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout):
        with pytest.raises(ValueError, match=msg):
            cls(p)
    for fn in (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout):
        with pytest.raises(ValueError, match=msg):
            fn(np.ones((2, 3, 4)), p)


def test_manual_seed_repeats_masks():
    x = big(np.float32, (50, 60))
    torchlite.manual_seed(7)
    a = nn.Dropout()(x)
    torchlite.manual_seed(7)
    b = nn.Dropout()(x)
    torchlite.manual_seed(8)
    c = nn.Dropout()(x)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_inplace_writes_into_input_and_backward_uses_the_mask():
    x = big(np.float32, (40, 50))
    before = x.copy()
    m = nn.Dropout(0.5, inplace=True)
    out = m(x)
    assert out is x
    kept = out != 0
    np.testing.assert_allclose(x[kept], before[kept] * 2, rtol=1e-7)
    np.testing.assert_array_equal(m.backward(np.ones_like(x)) != 0, kept)


def test_called_twice_backprops_each_mask_in_reverse_order():
    m = nn.Dropout(0.5)
    x = big(np.float64, (20, 30))
    out1, out2 = m(x), m(x)
    assert (out1 != out2).any()
    g = np.ones_like(x)
    np.testing.assert_array_equal(m.backward(g) != 0, out2 != 0)
    np.testing.assert_array_equal(m.backward(g) != 0, out1 != 0)
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward(g)


# ----------------------------------------------------------------------------------- channel dropout
def channel_constant(out, x, batch_axes):
    """out / x must be one value per (sample, channel): 0 or 1 / (1 - p). Returns those values."""
    ratio = out / x
    flat = ratio.reshape(*ratio.shape[:batch_axes], -1)
    np.testing.assert_allclose(flat, np.broadcast_to(flat[..., :1], flat.shape), rtol=1e-6)
    return flat[..., 0]


@pytest.mark.parametrize("cls,shape,batch_axes", [
    (nn.Dropout1d, (40, 50, 7), 2), (nn.Dropout1d, (50, 7), 1),
    (nn.Dropout2d, (40, 50, 3, 4), 2),
    (nn.Dropout3d, (20, 50, 2, 3, 2), 2), (nn.Dropout3d, (50, 2, 3, 2), 1),
])
def test_channel_dropout_zeroes_whole_channels(cls, shape, batch_axes):
    m = cls(0.4)
    x = big(np.float32, shape)
    out = m(x)
    per_channel = channel_constant(out, x, batch_axes)
    kept = per_channel != 0
    np.testing.assert_allclose(per_channel[kept], 1 / 0.6, rtol=1e-6)
    assert abs((per_channel == 0).mean() - 0.4) < 0.15
    dx = m.backward(np.ones_like(x))
    np.testing.assert_allclose(channel_constant(dx, np.ones_like(x), batch_axes), per_channel, rtol=1e-6)
    assert out.dtype == dx.dtype == np.float32


def test_dropout2d_torch_rank_rules():
    x = big(np.float32, (30, 40, 5))
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        out = nn.Dropout2d(0.5)(x)
    channel_constant(out, x, 2)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        out = F.dropout2d(big(np.float32, (30, 40)), 0.5)
    assert 0 < (out == 0).mean() < 1
    with pytest.raises(ValueError, match=r"^Dropout1d\(p=0.5, inplace=False\): dropout1d: Expected 2D or 3D input"):
        nn.Dropout1d()(np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"^Dropout2d\(p=0.5, inplace=False\): Feature dropout requires at least "
                                         r"2 dimensions"), pytest.warns(UserWarning):
        nn.Dropout2d()(np.ones(3))


def test_channel_dropout_eval_is_identity():
    x = big(np.float64, (2, 3, 4, 5))
    for cls in (nn.Dropout2d, nn.Dropout3d, nn.FeatureAlphaDropout, nn.AlphaDropout):
        np.testing.assert_array_equal(cls(0.5).eval()(x), x)


# ----------------------------------------------------------------------------------- alpha dropout
def alpha_constants(p):
    a = 1 / np.sqrt((ALPHA**2 * p + 1) * (1 - p))
    return a, ALPHA * a * p, ALPHA * a * (p - 1)  # scale, shift of kept values, value of dropped ones


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_alpha_dropout_values_statistics_and_torch(p):
    x = np.random.default_rng(0).standard_normal((400, 500)).astype(np.float32)
    m = nn.AlphaDropout(p)
    out = m(x)
    a, shift, dropped_value = alpha_constants(p)
    dropped = np.isclose(out, dropped_value, rtol=0, atol=1e-6)
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_allclose(out[~dropped], a * x[~dropped] + shift, rtol=1e-5, atol=1e-6)
    assert abs(out.mean()) < 0.01 and abs(out.std() - 1) < 0.01  # self-normalizing
    theirs = torch.nn.AlphaDropout(p)(torch.from_numpy(x)).numpy()
    their_dropped = np.isclose(theirs, dropped_value, rtol=0, atol=1e-6)
    np.testing.assert_allclose(theirs[their_dropped], out[dropped][0], rtol=1e-6)
    both = ~dropped & ~their_dropped
    np.testing.assert_allclose(out[both], theirs[both], rtol=1e-5, atol=1e-6)
    dx = m.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, np.where(dropped, 0, a), rtol=1e-6)
    assert out.dtype == dx.dtype == np.float32


def test_feature_alpha_dropout_drops_channels():
    x = np.random.default_rng(0).standard_normal((60, 40, 3, 3))
    out = nn.FeatureAlphaDropout(0.5)(x)
    a, shift, dropped_value = alpha_constants(0.5)
    dropped = np.isclose(out, dropped_value, rtol=0, atol=1e-12)
    flat = dropped.reshape(60, 40, -1)
    np.testing.assert_array_equal(flat, np.broadcast_to(flat[..., :1], flat.shape))
    np.testing.assert_allclose(out[~dropped], a * x[~dropped] + shift, rtol=1e-12)
    assert 0.4 < dropped.mean() < 0.6


def test_functional_training_defaults_follow_torch():
    x = big(np.float64, (10, 10))
    assert F.alpha_dropout(x) is x and F.feature_alpha_dropout(x) is x
    assert (F.dropout(x) == 0).any()


# ----------------------------------------------------------------------------------- shared
@pytest.mark.parametrize("cls,shape", [
    (nn.Dropout, (3, 4)), (nn.Dropout1d, (2, 3, 4)), (nn.Dropout1d, (3, 4)), (nn.Dropout2d, (2, 3, 2, 2)),
    (nn.Dropout3d, (2, 2, 2, 1, 2)), (nn.Dropout3d, (2, 2, 1, 2)), (nn.AlphaDropout, (3, 4)),
    (nn.FeatureAlphaDropout, (2, 3, 2)),
])
def test_gradcheck(cls, shape):
    assert gradcheck(cls(0.4), np.random.default_rng(0).standard_normal(shape))


@pytest.mark.parametrize("cls", ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                                 "FeatureAlphaDropout"])
def test_repr_matches_torch(cls):
    assert repr(getattr(nn, cls)()) == repr(getattr(torch.nn, cls)())
    assert repr(getattr(nn, cls)(0.25, True)) == repr(getattr(torch.nn, cls)(0.25, True))
    assert getattr(nn, cls)().state_dict() == {}

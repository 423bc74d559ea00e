"""Pooling layers against torch: max (ties, indices), average, adaptive, LP and max-unpooling,
1d/2d/3d, with gradchecks, reprs and errors."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

DTYPES = [np.float64, np.float32]


def _pair(name, *args, **kwargs):
    return getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)


MAX_CASES = [
    ("MaxPool2d", (2,), (2, 3, 8, 6)),
    ("MaxPool2d", (3, 2, 1), (2, 2, 7, 8)),
    ("MaxPool2d", ((3, 2), (2, 3)), dict(padding=(1, 1), dilation=(2, 1), ceil_mode=True), (1, 2, 9, 7)),
    ("MaxPool2d", (2, 3), dict(ceil_mode=True, return_indices=True), (2, 2, 7, 7)),
    ("MaxPool2d", (3, 1, 1), dict(return_indices=True), (2, 5, 6)),  # unbatched, overlapping
    ("MaxPool1d", (3, 2, 1), dict(dilation=2, return_indices=True), (2, 3, 11)),
    ("MaxPool1d", (2,), dict(ceil_mode=True), (2, 3, 9)),
    ("MaxPool3d", (2,), dict(return_indices=True), (1, 2, 4, 6, 4)),
    ("MaxPool3d", ((2, 3, 2), (1, 2, 2), (1, 0, 1)), dict(ceil_mode=True), (1, 2, 3, 5, 5)),
    # windows tiling the input exactly (kernel == stride), unbatched, kernel 1 along an axis
    ("MaxPool2d", ((3, 2),), (2, 2, 6, 8)),
    ("MaxPool2d", ((1, 2),), (2, 2, 3, 8)),
    ("MaxPool2d", (2,), (3, 6, 4)),  # unbatched
    ("MaxPool1d", (3,), (2, 3, 9)),
    ("MaxPool3d", (2,), (1, 2, 4, 6, 4)),
    ("MaxPool3d", ((2, 1, 3),), (2, 1, 4, 3, 6)),
]


def _split(case):
    name, args, *rest = case
    return name, args, (rest[0] if len(rest) == 2 else {}), rest[-1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=lambda c: f"{c[0]}{c[1]}{c[2] if len(c) == 4 else ''}")
def test_max_pool_parity(case, dtype):
    name, args, kwargs, shape = _split(case)
    x = np.random.default_rng(0).standard_normal(shape)
    check_parity(*_pair(name, *args, **kwargs), x, dtype=dtype)


@pytest.mark.parametrize("name, kwargs, shape", [
    ("MaxPool2d", dict(kernel_size=2), (2, 3, 6, 6)),
    ("MaxPool2d", dict(kernel_size=3, stride=1, padding=1), (2, 2, 5, 5)),
    ("MaxPool1d", dict(kernel_size=3, stride=2, ceil_mode=True), (2, 2, 8)),
    ("MaxPool3d", dict(kernel_size=2), (1, 2, 4, 4, 4)),
    ("AdaptiveMaxPool2d", dict(output_size=(2, 3)), (2, 2, 5, 7)),
])
def test_max_pool_ties_send_gradient_to_first_maximum(name, kwargs, shape):
    """After a ReLU many entries are equal zeros: exactly one per window gets the gradient, as torch."""
    rng = np.random.default_rng(1)
    x = np.maximum(rng.integers(-3, 2, size=shape), 0).astype(np.float32)
    tl, th = _pair(name, **kwargs)
    check_parity(tl, th, x, dtype=np.float32)
    y = tl(x)
    dx = tl.backward(np.ones_like(y))
    assert dx.sum() == y.size  # one element per window, never split across tied ones


def test_max_pool_nan_propagates_like_torch():
    x = np.random.default_rng(2).standard_normal((1, 1, 4, 4))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    tl, th = _pair("MaxPool2d", 2, return_indices=True)
    check_parity(tl, th, x)


@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool_nan_in_tiled_windows_like_torch(return_indices):
    x = np.random.default_rng(2).standard_normal((2, 2, 4, 6))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[1, 1, 3, 5] = np.nan
    check_parity(*_pair("MaxPool2d", 2, return_indices=return_indices), x)


def test_max_pool_indices_feed_max_unpool():
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 8))
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    ty, tidx = torch.nn.MaxPool2d(2, return_indices=True)(torch.from_numpy(x))
    np.testing.assert_array_equal(idx, tidx.numpy())
    assert idx.dtype == np.int64
    up = nn.MaxUnpool2d(2)(y, idx)
    np.testing.assert_array_equal(up, torch.nn.MaxUnpool2d(2)(ty, tidx).numpy())


AVG_CASES = [
    ("AvgPool2d", (2,), {}, (2, 3, 8, 6)),
    ("AvgPool2d", (3, 2, 1), dict(ceil_mode=True), (2, 2, 8, 7)),
    ("AvgPool2d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False), (2, 2, 8, 7)),
    ("AvgPool2d", ((3, 2), (2, 1), (1, 1)), dict(divisor_override=4), (1, 2, 7, 6)),
    ("AvgPool2d", (2, 3), dict(ceil_mode=True, count_include_pad=False), (3, 7, 8)),  # unbatched
    ("AvgPool1d", (3, 2, 1), dict(ceil_mode=True), (2, 3, 10)),
    ("AvgPool1d", (4, 3, 2), dict(count_include_pad=False), (2, 3, 9)),
    ("AvgPool3d", (2,), {}, (1, 2, 4, 6, 4)),
    ("AvgPool3d", ((2, 3, 2), (1, 2, 2), (1, 1, 0)), dict(ceil_mode=True, count_include_pad=False), (1, 2, 3, 5, 5)),
    ("AvgPool3d", (3, 2, 1), dict(divisor_override=5, ceil_mode=True), (1, 1, 5, 4, 5)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_CASES, ids=lambda c: f"{c[0]}{c[1]}{c[2]}")
def test_avg_pool_parity(case, dtype):
    name, args, kwargs, shape = case
    x = np.random.default_rng(4).standard_normal(shape)
    check_parity(*_pair(name, *args, **kwargs), x, dtype=dtype)


ADAPTIVE_CASES = [
    ("AdaptiveAvgPool2d", ((3, 4),), (2, 3, 7, 9)),
    ("AdaptiveAvgPool2d", (1,), (2, 3, 5, 5)),
    ("AdaptiveAvgPool2d", ((None, 3),), (2, 6, 8)),
    ("AdaptiveAvgPool2d", ((7, 8),), (1, 2, 5, 5)),  # larger than the input
    ("AdaptiveAvgPool1d", (4,), (2, 3, 10)),
    ("AdaptiveAvgPool3d", ((2, 3, 1),), (1, 2, 5, 6, 4)),
    ("AdaptiveMaxPool2d", ((3, 4),), (2, 3, 7, 9)),
    ("AdaptiveMaxPool2d", ((2, 2), True), (2, 4, 4)),
    ("AdaptiveMaxPool2d", ((5, 6), True), (1, 2, 4, 4)),
    ("AdaptiveMaxPool1d", (3, True), (2, 3, 8)),
    ("AdaptiveMaxPool3d", ((2, 3, 2), True), (1, 2, 5, 4, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=lambda c: f"{c[0]}{c[1]}")
def test_adaptive_pool_parity(case, dtype):
    name, args, shape = case
    x = np.random.default_rng(5).standard_normal(shape)
    check_parity(*_pair(name, *args), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, args, shape", [
    ("LPPool2d", (2, 3, 2), (2, 3, 7, 8)),
    ("LPPool2d", (3, (2, 3), None, True), (1, 2, 7, 7)),
    ("LPPool1d", (1.5, 3, 2), (2, 3, 9)),
    ("LPPool3d", (2, 2), (1, 2, 4, 4, 4)),
])
def test_lp_pool_parity(name, args, shape, dtype):
    x = np.abs(np.random.default_rng(6).standard_normal(shape)) + 0.1
    check_parity(*_pair(name, *args), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims, kwargs, shape, output_size", [
    (2, dict(kernel_size=2), (2, 3, 6, 8), None),
    (2, dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 7), [2, 2, 8, 8]),
    (1, dict(kernel_size=2), (2, 3, 9), [9]),
    (3, dict(kernel_size=2), (1, 2, 4, 4, 6), None),
])
def test_max_unpool_parity(dims, kwargs, shape, output_size, dtype):
    x = np.random.default_rng(7).standard_normal(shape)
    pooled, idx = getattr(torch.nn, f"MaxPool{dims}d")(return_indices=True, **kwargs)(torch.from_numpy(x))
    fkw = None if output_size is None else {"output_size": output_size}
    check_parity(*_pair(f"MaxUnpool{dims}d", **kwargs), pooled.numpy(), idx.numpy(), dtype=dtype, forward_kwargs=fkw)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (1, 2, 6, 7)),
    (lambda: nn.MaxPool1d(2, dilation=2), (2, 2, 7)),
    (lambda: nn.MaxPool3d(2, padding=1), (1, 1, 3, 4, 3)),
    (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (1, 2, 6, 7)),
    (lambda: nn.AvgPool1d(3, 2, 1), (2, 2, 7)),
    (lambda: nn.AvgPool3d(2, divisor_override=3), (1, 1, 4, 4, 2)),
    (lambda: nn.AdaptiveAvgPool2d((3, 2)), (1, 2, 5, 7)),
    (lambda: nn.AdaptiveMaxPool2d((3, 2)), (1, 2, 5, 7)),
    (lambda: nn.AdaptiveMaxPool1d(4), (2, 2, 7)),
    (lambda: nn.AdaptiveAvgPool3d(2), (1, 1, 3, 4, 3)),
    (lambda: nn.LPPool2d(2, 2), (1, 2, 4, 6)),
])
def test_gradcheck(make, shape):
    x = np.random.default_rng(8).standard_normal(shape)
    if "LPPool" in repr(make()):
        x = np.abs(x) + 0.5
    assert gradcheck(make().double(), x)


def test_max_unpool_gradcheck():
    x = np.random.default_rng(9).standard_normal((1, 2, 4, 6))
    _, idx = F.max_pool2d(x, 2, return_indices=True)
    assert gradcheck(nn.MaxUnpool2d(2).double(), np.random.default_rng(10).standard_normal(idx.shape), idx)


def test_no_grad_and_eval_save_nothing():
    pool = nn.MaxPool2d(2)
    with torchlite.no_grad():
        out = pool(np.zeros((1, 1, 4, 4), np.float32))
    assert pool.saved_count == 0 and out.dtype == np.float32


def test_needs_input_grad_false_returns_none():
    pool = nn.AvgPool2d(2)
    pool.needs_input_grad = False
    y = pool(np.ones((1, 1, 4, 4), np.float32))
    assert pool.backward(np.ones_like(y)) is None and pool.saved_count == 0


@pytest.mark.parametrize("name, args, kwargs", [
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", ((2, 3), 1), dict(ceil_mode=True)),
    ("MaxPool1d", (3, 2, 1, 2), dict(return_indices=True)),
    ("MaxPool3d", (2,), {}),
    ("AvgPool2d", (2,), dict(divisor_override=3)),
    ("AvgPool1d", (3,), {}),
    ("AvgPool3d", ((1, 2, 2), None, 1), {}),
    ("AdaptiveAvgPool2d", ((None, 3),), {}),
    ("AdaptiveMaxPool2d", (3, True), {}),
    ("AdaptiveAvgPool1d", (5,), {}),
    ("LPPool2d", (2, 3), {}),
    ("LPPool1d", (1.5, 3, 2, True), {}),
    ("MaxUnpool2d", (2,), {}),
    ("MaxUnpool1d", (3, 2, 1), {}),
    ("MaxUnpool3d", (2,), {}),
])
def test_repr_matches_torch(name, args, kwargs):
    tl, th = _pair(name, *args, **kwargs)
    assert repr(tl) == repr(th)


def test_errors_name_the_module():
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=2.*expected input \(N, C, H, W\) or \(C, H, W\)"):
        nn.MaxPool2d(2)(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=3.*pad should be at most half"):
        nn.MaxPool2d(3, padding=2)(np.zeros((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"^AvgPool2d\(kernel_size=2.*pad should be at most half of kernel size"):
        nn.AvgPool2d(2, padding=2)(np.zeros((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=5.*output size .* is too small"):
        nn.MaxPool2d(5)(np.zeros((1, 1, 3, 8)))
    with pytest.raises(ValueError, match=r"^AvgPool2d.*divisor must be not zero"):
        nn.AvgPool2d(2, divisor_override=0)(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"^AdaptiveAvgPool2d.*output_size must be positive"):
        nn.AdaptiveAvgPool2d((0, 2))(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"^MaxUnpool2d.*invalid output_size"):
        nn.MaxUnpool2d(2)(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64), output_size=(9, 9))
    with pytest.raises(ValueError, match=r"^MaxUnpool2d.*invalid max index"):
        nn.MaxUnpool2d(2)(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), 99, np.int64))
    with pytest.raises(TypeError, match=r"^AvgPool1d"):
        nn.AvgPool1d(2)(np.array([["a", "b"]]))


def test_functional_twins_match_torch():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 7, 6))
    y, idx = F.max_pool2d_with_indices(x, 3, 2, 1)
    ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_allclose(F.avg_pool1d(x[0], 2), torch.nn.functional.avg_pool1d(torch.from_numpy(x[0]), 2))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(F.lp_pool2d(np.abs(x), 2, 2),
                               torch.nn.functional.lp_pool2d(torch.from_numpy(np.abs(x)), 2, 2).numpy(), rtol=1e-12)


@pytest.mark.parametrize("d, shape, kernel, stride, ceil_mode", [
    (1, (2, 3, 7), 2, None, False), (2, (2, 3, 5, 5), 2, None, False), (2, (2, 3, 5, 5), 3, 2, True),
    (3, (1, 2, 4, 4, 4), 2, None, False)])
def test_lp_pool_with_infinite_norm_is_torchs_max_of_magnitudes(d, shape, kernel, stride, ceil_mode):
    x = np.random.default_rng(d).standard_normal(shape)
    ours = getattr(nn, f"LPPool{d}d")(float("inf"), kernel, stride, ceil_mode)
    theirs = getattr(torch.nn, f"LPPool{d}d")(float("inf"), kernel, stride, ceil_mode)
    check_parity(ours, theirs, x, dtype=np.float64)


def test_average_pools_cast_integer_input_to_the_default_dtype():
    x = np.arange(16, dtype=np.int64).reshape(1, 1, 4, 4)
    assert F.avg_pool2d(x, 2).dtype == np.float32
    assert F.adaptive_avg_pool2d(x, 2).dtype == np.float32


def test_max_unpool_takes_an_empty_batch_and_torchs_output_size_lengths():
    x, i = np.zeros((0, 2, 4, 4)), np.zeros((0, 2, 4, 4), np.int64)
    expected = torch.nn.functional.max_unpool2d(torch.tensor(x), torch.tensor(i), 2)
    assert F.max_unpool2d(x, i, 2).shape == tuple(expected.shape) == (0, 2, 8, 8)
    assert F.max_unpool_nd_backward(np.zeros((0, 2, 8, 8)), i, 2).shape == i.shape
    x, i = np.ones((2, 4, 4)), np.zeros((2, 4, 4), np.int64)
    assert F.max_unpool2d(x, i, 2, output_size=(1, 2, 8, 8)).shape == (2, 8, 8)
    with pytest.raises(ValueError):
        torch.nn.functional.max_unpool2d(torch.tensor(x), torch.tensor(i), 2, output_size=(2, 8, 8))
    with pytest.raises(ValueError, match="2 or 4 elements"):
        F.max_unpool2d(x, i, 2, output_size=(2, 8, 8))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.int8])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)])
def test_max_pool_keeps_integer_input_integer_as_torch(dtype, kwargs):
    x = np.random.default_rng(0).integers(0, 9, (2, 3, 5, 5)).astype(dtype)
    out, index = F.max_pool2d_with_indices(x, **kwargs)
    t_out, t_index = torch.nn.functional.max_pool2d_with_indices(torch.tensor(x), **kwargs)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(index, t_index.numpy())

"""The blocked ReLU kernels against plain NumPy on sizes around the block size."""
import numpy as np
import pytest

import torchlite
from torchlite.nn.functional._relu_kernel import BLOCK, relu_backward_into, relu_into


SIZES = [0, 1, BLOCK - 1, BLOCK, 3 * BLOCK + 5, (1 << 19) + 17]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_matches_numpy(size, dtype):
    rng = np.random.default_rng(size)
    x = rng.standard_normal(size).astype(dtype)
    x[::97] = np.nan
    x[::89] = 0.0
    out = relu_into(x, np.empty_like(x))
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    assert out.dtype == dtype


@pytest.mark.parametrize("size", SIZES)
def test_relu_in_place(size):
    x = np.random.default_rng(1).standard_normal(size).astype(np.float32)
    want = np.maximum(x, 0)
    assert relu_into(x, x) is x
    np.testing.assert_array_equal(x, want)


def test_relu_non_contiguous_falls_back():
    x = np.random.default_rng(2).standard_normal((64, 70)).astype(np.float32)[:, ::3]
    np.testing.assert_array_equal(relu_into(x, np.empty_like(x)), np.maximum(x, 0))


@pytest.mark.parametrize("size", SIZES)
def test_relu_backward_matches_numpy(size):
    rng = np.random.default_rng(size + 1)
    y = np.maximum(rng.standard_normal(size), 0).astype(np.float32)
    y[::103] = np.nan  # torch passes the gradient where the output is NaN
    g = rng.standard_normal(size).astype(np.float32)
    g[::101] = np.nan
    out = relu_backward_into(g, y, np.empty_like(y))
    np.testing.assert_array_equal(out, g * ~(y <= 0))


def test_relu_backward_into_its_own_grad_buffer():
    rng = np.random.default_rng(3)
    y = np.maximum(rng.standard_normal((8, 1000)), 0)
    g = rng.standard_normal((8, 1000))
    want = g * ~(y <= 0)
    np.testing.assert_array_equal(relu_backward_into(g, y, g), want)


def test_relu_backward_broadcast_grad_falls_back():
    y = np.maximum(np.random.default_rng(4).standard_normal((5, 6)), 0)
    g = np.ones(6)
    np.testing.assert_array_equal(torchlite.nn.functional.relu_backward(g, y), (y > 0).astype(float))

"""FractionalMaxPool2d/3d and their functional twins against torch: the same _random_samples go
to both, and outputs, indices and input gradients must agree (float64 and float32), over kernel
shapes, output_size and output_ratio, unbatched input, ties, NaNs and output size 1 and 0; plus
gradchecks, sampling from torchlite's generator, reprs, state_dict and errors."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import check_parity

DTYPES = [np.float64, np.float32]

CASES = [  # (dims, kernel_size, options, input shape)
    (2, 2, dict(output_size=4), (2, 3, 9, 9)),
    (2, (2, 3), dict(output_size=(5, 3)), (2, 2, 8, 7)),
    (2, (3, 1), dict(output_ratio=0.5), (1, 3, 10, 9)),
    (2, 3, dict(output_ratio=(0.6, 0.4), return_indices=True), (2, 2, 11, 12)),
    (2, 2, dict(output_size=(3, 4)), (3, 7, 6)),  # unbatched
    (2, 2, dict(output_size=1, return_indices=True), (2, 2, 5, 5)),
    (2, 1, dict(output_size=(4, 4)), (1, 2, 4, 4)),  # kernel 1, every input an output
    (2, 3, dict(output_size=(5, 2)), (2, 2, 7, 4)),  # output + kernel - 1 == input: alpha 1
    (3, 2, dict(output_size=2), (2, 2, 5, 5, 5)),
    (3, (2, 1, 3), dict(output_size=(3, 4, 2)), (1, 3, 5, 6, 6)),
    (3, 2, dict(output_ratio=0.5, return_indices=True), (2, 7, 6, 8)),  # unbatched
    (3, 3, dict(output_size=1), (1, 2, 4, 4, 4)),
]


def _samples(shape, dims, seed=0):
    n = 1 if len(shape) == dims + 1 else shape[0]
    return np.random.default_rng(seed).random((n, shape[-dims - 1], dims))


def _modules(dims, kernel_size, samples=None, **options):
    name = f"FractionalMaxPool{dims}d"
    t_samples = None if samples is None else torch.from_numpy(samples.copy())
    return (getattr(nn, name)(kernel_size, _random_samples=samples, **options),
            getattr(torch.nn, name)(kernel_size, _random_samples=t_samples, **options))


def _input(shape, ties, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dims, kernel_size, options, shape", CASES)
def test_module_parity(dims, kernel_size, options, shape, ties, dtype):
    tl, tm = _modules(dims, kernel_size, _samples(shape, dims), **options)
    out = check_parity(tl, tm, _input(shape, ties), dtype=dtype)
    y = out[0] if options.get("return_indices") else out
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dims, kernel_size, options, shape", CASES)
def test_functional_parity(dims, kernel_size, options, shape, dtype):
    options = {k: v for k, v in options.items() if k != "return_indices"}
    samples = _samples(shape, dims).astype(dtype)
    x = _input(shape, ties=True, seed=2).astype(dtype)
    fn = getattr(F, f"fractional_max_pool{dims}d")
    y, idx = fn(x, kernel_size, return_indices=True, _random_samples=samples, **options)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    t_options = dict(options)
    if np.ndim(options.get("output_ratio", ())) == 0:  # torch's 2d functional takes no scalar ratio
        t_options["output_ratio"] = (options["output_ratio"],) * dims
    ty, tidx = getattr(torch.nn.functional, f"fractional_max_pool{dims}d")(
        xt, kernel_size, return_indices=True, _random_samples=torch.from_numpy(samples), **t_options)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    assert idx.dtype == np.int64 and y.dtype == dtype
    np.testing.assert_array_equal(fn(x, kernel_size, _random_samples=samples, **options), y)
    y2, idx2 = getattr(F, f"fractional_max_pool{dims}d_with_indices")(x, kernel_size, _random_samples=samples,
                                                                       **options)
    np.testing.assert_array_equal(idx2, idx)

    g = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    dx = getattr(F, f"fractional_max_pool{dims}d_backward")(g, idx, x.shape)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7 if dtype == np.float64 else 1e-5, atol=1e-6)


def test_float32_window_starts_round_as_torch():
    # alpha = 29/5 and this u: (4 + u) * alpha is just below 24 in float64 and 24 in float32,
    # so the 5th window starts at 24 in torch's float32 kernel (23 when computed in float64)
    u = np.float32(float.fromhex("0x1.1a7b7cp-3"))
    x = np.tile(np.arange(31, dtype=np.float32), (1, 1, 2, 1))
    samples = np.array([[[u, 0.5]]], dtype=np.float32)
    _, idx = F.fractional_max_pool2d(x, 2, output_size=(1, 6), return_indices=True, _random_samples=samples)
    _, tidx = torch.nn.functional.fractional_max_pool2d(torch.from_numpy(x), 2, output_size=(1, 6),
                                                        return_indices=True, _random_samples=torch.from_numpy(samples))
    np.testing.assert_array_equal(idx, tidx.numpy())
    assert idx[0, 0, 0, 4] == 25  # window columns 24, 25: its max (first row on the tie) at 25
    _, idx64 = F.fractional_max_pool2d(x.astype(np.float64), 2, output_size=(1, 6), return_indices=True,
                                       _random_samples=samples.astype(np.float64))
    assert idx64[0, 0, 0, 4] == 24


@pytest.mark.parametrize("dims", [2, 3])
def test_nan_wins_as_torch(dims):
    shape = (2, 2) + (7,) * dims
    x = np.random.default_rng(4).standard_normal(shape)
    x.reshape(-1)[np.random.default_rng(5).choice(x.size, 40, replace=False)] = np.nan
    samples = _samples(shape, dims)
    fn = getattr(F, f"fractional_max_pool{dims}d")
    y, idx = fn(x, 3, output_size=3, return_indices=True, _random_samples=samples)
    ty, tidx = getattr(torch.nn.functional, f"fractional_max_pool{dims}d")(
        torch.from_numpy(x), 3, output_size=3, return_indices=True, _random_samples=torch.from_numpy(samples))
    assert np.isnan(y).any()
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("dims", [2, 3])
def test_output_size_zero(dims):
    shape = (2, 3) + (6,) * dims
    x = np.random.default_rng(6).standard_normal(shape)
    tl, tm = _modules(dims, 2, _samples(shape, dims), output_size=(0,) + (2,) * (dims - 1))
    y = tl(x)
    assert y.shape == tuple(tm(torch.from_numpy(x)).shape) == (2, 3, 0) + (2,) * (dims - 1)
    dx = tl.backward(np.zeros(y.shape))
    assert dx.shape == x.shape and not dx.any()


def test_empty_batch():
    m = nn.FractionalMaxPool2d(2, output_size=3, return_indices=True)
    y, idx = m(np.zeros((0, 2, 6, 6), np.float32))
    assert y.shape == idx.shape == (0, 2, 3, 3)
    assert m.backward(np.zeros(y.shape, np.float32)).shape == (0, 2, 6, 6)


@pytest.mark.parametrize("dims", [2, 3])
def test_gradcheck(dims):
    x = np.random.default_rng(7).standard_normal((2, 2) + (5,) * dims)
    assert gradcheck(getattr(nn, f"FractionalMaxPool{dims}d")(2, output_ratio=0.5).double(), x)
    samples = _samples(x.shape, dims)
    assert gradcheck(getattr(nn, f"FractionalMaxPool{dims}d")((2, 3) + (2,) * (dims - 2), output_size=2,
                                                               _random_samples=samples).double(), x)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_samples_come_from_torchlite_generator(dims, dtype):
    """Without _random_samples, (N, C, dims) uniform draws in the input's dtype from get_generator()."""
    for shape in [(3, 2) + (9,) * dims, (2,) + (9,) * dims]:
        x = np.random.default_rng(8).standard_normal(shape).astype(dtype)
        fn = getattr(F, f"fractional_max_pool{dims}d")
        torchlite.manual_seed(11)
        y, idx = fn(x, 2, output_size=4, return_indices=True)
        torchlite.manual_seed(11)
        n = shape[0] if len(shape) == dims + 2 else 1
        samples = torchlite.random.get_generator().random((n, shape[-dims - 1], dims), dtype=dtype)
        y2, idx2 = fn(x, 2, output_size=4, return_indices=True, _random_samples=samples)
        np.testing.assert_array_equal(y, y2)
        np.testing.assert_array_equal(idx, idx2)
        assert y.dtype == dtype


def test_manual_seed_repeats_and_calls_draw_afresh():
    m = nn.FractionalMaxPool2d(2, output_size=8)
    x = np.random.default_rng(9).standard_normal((2, 3, 21, 21)).astype(np.float32)
    torchlite.manual_seed(3)
    a, b = m(x), m(x)
    torchlite.manual_seed(3)
    np.testing.assert_array_equal(m(x), a)
    assert not np.array_equal(a, b)  # alpha = 19/7: windows move with the samples


def test_repeated_calls_backpropagate_in_reverse():
    m = nn.FractionalMaxPool2d(3, output_size=4, _random_samples=np.full((2, 2, 2), 0.3, np.float32))
    rng = np.random.default_rng(10)
    x1, x2 = rng.standard_normal((2, 2, 8, 8), np.float32), rng.standard_normal((2, 2, 8, 8), np.float32)
    g1, g2 = rng.standard_normal((2, 2, 4, 4), np.float32), rng.standard_normal((2, 2, 4, 4), np.float32)
    m(x1)
    expected1 = m.backward(g1)
    m(x2)
    expected2 = m.backward(g2)
    m(x1), m(x2)
    np.testing.assert_array_equal(m.backward(g2), expected2)
    np.testing.assert_array_equal(m.backward(g1), expected1)
    assert expected1.dtype == np.float32


def test_no_grad_saves_nothing_and_needs_input_grad():
    m = nn.FractionalMaxPool2d(2, output_ratio=0.5)
    with torchlite.no_grad():
        m(np.ones((1, 1, 6, 6)))
    with pytest.raises(RuntimeError, match="nothing saved"):
        m.backward(np.ones((1, 1, 3, 3)))
    m.needs_input_grad = False
    m(np.ones((1, 1, 6, 6)))
    assert m.backward(np.ones((1, 1, 3, 3))) is None and m.saved_count == 0


def test_integer_input_uses_default_dtype():
    y = nn.FractionalMaxPool2d(2, output_size=2)(np.arange(36).reshape(1, 1, 6, 6))
    assert y.dtype == np.float32


def test_repr_attributes_and_state_dict_as_torch():
    samples = _samples((2, 3, 8, 8), 2)
    for dims, kwargs in [(2, dict(output_size=3)), (2, dict(output_ratio=(0.5, 0.25), _random_samples=samples)),
                         (3, dict(output_ratio=0.5, return_indices=True))]:
        tl, tm = _modules(dims, 2, kwargs.pop("_random_samples", None), **kwargs)
        assert repr(tl) == repr(tm)
        for attr in ("kernel_size", "output_size", "output_ratio", "return_indices"):
            assert getattr(tl, attr) == getattr(tm, attr), attr
        assert list(tl.state_dict()) == list(tm.state_dict())
        tl.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})


MODULE_ERRORS = [
    (dict(kernel_size=2), ValueError, r"^FractionalMaxPool2d\(\): requires specifying either an output size"),
    (dict(kernel_size=2, output_size=2, output_ratio=0.5), ValueError, "only one of output_size and output_ratio"),
    (dict(kernel_size=2, output_ratio=1.0), ValueError, r"output_ratio must be between 0 and 1 \(got 1.0\)"),
    (dict(kernel_size=2, output_ratio=(0.5, 0)), ValueError, "output_ratio must be between 0 and 1"),
    (dict(kernel_size=0, output_size=2), ValueError, "kernel_size must be greater than 0, but got 0"),
    (dict(kernel_size=(2, 2, 2), output_size=2), ValueError, "kernel_size must be an int or a tuple of 2 ints"),
]


@pytest.mark.parametrize("kwargs, error, match", MODULE_ERRORS)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        nn.FractionalMaxPool2d(**kwargs)


def test_forward_errors():
    m = nn.FractionalMaxPool2d(3, output_size=5)
    with pytest.raises(ValueError, match=r"^FractionalMaxPool2d\(\): expected input \(N, C, H, W\) or \(C, H, W\)"):
        m(np.zeros((7, 7)))
    with pytest.raises(ValueError, match=r"with non-empty C and H, W, got shape \(1, 0, 7, 7\)"):
        m(np.zeros((1, 0, 7, 7)))
    with pytest.raises(TypeError, match="expected a floating-point input, got dtype <U1"):
        m(np.array([[["a"]]]))
    m(np.zeros((1, 1, 7, 7)))  # 5 + 3 - 1 == 7 fits in 2d
    with pytest.raises(ValueError, match=r"^FractionalMaxPool2d\(\): pool width 3 too large relative to input "
                                         r"width 6"):
        m(np.zeros((1, 1, 7, 6)))
    m3 = nn.FractionalMaxPool3d(3, output_size=(4, 3, 3))
    with pytest.raises(ValueError, match="pool time 3 too large relative to input time 6"):
        m3(np.zeros((1, 1, 6, 6, 6)))  # torch's 3d bound is strict: 4 + 3 - 1 == 6 does not fit
    with pytest.raises(ValueError, match=r"expected input \(N, C, D, H, W\) or \(C, D, H, W\)"):
        m3(np.zeros((6, 6, 6)))


def test_module_casts_its_input_to_the_samples_dtype():
    """The samples are the layer's state: its input takes their dtype, as parameters set a layer's dtype."""
    pool = nn.FractionalMaxPool2d(2, output_size=3, _random_samples=np.full((1, 2, 2), 0.5))
    y = pool(np.arange(2 * 36, dtype=np.float32).reshape(1, 2, 6, 6))
    assert y.dtype == np.float64 and y.shape == (1, 2, 3, 3)


def test_random_samples_errors():
    x = np.zeros((2, 3, 8, 8), np.float32)
    cases = [
        (np.zeros((1, 3, 2), np.float32), ValueError, r"shape \(N, 3, 2\) with N >= 2 .*got shape \(1, 3, 2\)"),
        (np.zeros((2, 4, 2), np.float32), ValueError, r"got shape \(2, 4, 2\)"),
        (np.zeros((2, 3, 3), np.float32), ValueError, r"got shape \(2, 3, 3\)"),
        (np.zeros((2, 3), np.float32), ValueError, r"got shape \(2, 3\)"),
        (np.full((2, 3, 2), np.nan, np.float32), ValueError, "must be finite"),
    ]
    for samples, error, match in cases:
        with pytest.raises(error, match=r"^FractionalMaxPool2d\(\): .*" + match):
            nn.FractionalMaxPool2d(2, output_size=4, _random_samples=samples)(x)
    huge = np.array([[[-5.1398052e07, 0.5]]], np.float32)  # float32 rounding puts a window past the edge;
    with pytest.raises(ValueError, match="put windows outside the input"):  # torch's kernel asserts there
        F.fractional_max_pool2d(np.zeros((1, 1, 2, 9), np.float32), 2, output_size=(1, 4), _random_samples=huge)
    y = nn.FractionalMaxPool2d(2, output_size=4, _random_samples=np.full((3, 3, 2), 0.5, np.float32))(x)
    assert y.shape == (2, 3, 4, 4)  # extra sample rows are allowed, as torch


def test_functional_errors():
    x = np.zeros((1, 2, 8, 8))
    with pytest.raises(ValueError, match="^fractional_max_pool2d: fractional_max_pool requires specifying either"):
        F.fractional_max_pool2d(x, 2)
    samples = np.full((1, 2, 2), 0.5)  # both given: output_size wins, as in torch's functional
    np.testing.assert_array_equal(F.fractional_max_pool2d(x, 2, output_size=3, output_ratio=0.5, _random_samples=samples),
                                  F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=samples))
    with pytest.raises(ValueError, match="^fractional_max_pool3d: output_ratio must be a number or a tuple of 3"):
        F.fractional_max_pool3d(np.zeros((1, 8, 8, 8)), 2, output_ratio=(0.5, 0.5))
    with pytest.raises(ValueError, match="output_size must be non-negative"):
        F.fractional_max_pool2d(x, 2, output_size=-1)
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of 2 ints"):
        F.fractional_max_pool2d(x, 2.0, output_size=3)
    with pytest.raises(ValueError, match=r"kernel_size must be greater than 0, but got \(0, 0\)"):
        F.fractional_max_pool2d(x, 0, output_size=3)
    with pytest.raises(ValueError, match=r"^fractional_max_pool2d_backward: expected grad_output of the indices' "
                                         r"shape \(1, 2, 3, 3\)"):
        F.fractional_max_pool2d_backward(np.zeros((1, 2, 3, 4)), np.zeros((1, 2, 3, 3), np.int64), x.shape)


def test_functional_refuses_samples_of_another_dtype_as_torch():
    x = np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(TypeError, match="expected _random_samples of the input's dtype float32, got float64"):
        F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=np.full((1, 2, 2), 0.5))
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.nn.functional.fractional_max_pool2d(torch.from_numpy(x), 2, output_size=3,
                                                  _random_samples=torch.full((1, 2, 2), 0.5, dtype=torch.float64))

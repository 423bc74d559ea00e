"""F.affine_grid and F.grid_sample (and their backward twins) against PyTorch: outputs, input and
grid gradients and dtheta in float64 and float32 over modes x padding modes x align_corners x 2-D/3-D,
on grids holding borders, pixel centres, rounding ties and points far outside; finite differences;
the align_corners warning; empty shapes; errors."""
import warnings

import numpy as np
import pytest
import torch

import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.testing import gradcheck

from parity import assert_close

DTYPES = [np.float64, np.float32]
PADDING = ["zeros", "border", "reflection"]
CASES = [(d, mode) for d in (2, 3) for mode in ("bilinear", "nearest", "bicubic") if not (d == 3 and mode == "bicubic")]


def special_values(size, align_corners):
    """Normalized coordinates where torch's branches meet: borders, pixel centres and edges, ties."""
    pixels = np.arange(-1, size + 1)
    if align_corners:
        at = [2 * pixels / max(size - 1, 1) - 1, (2 * pixels + 1) / max(size - 1, 1) - 1]
    else:
        at = [(2 * pixels + 1) / size - 1, 2 * pixels / size - 1]
    return np.concatenate(at + [[-1, 1, 0, -0.5, 0.5, -1.5, 1.5, -2, 2, -3, 3, 7.25, -9.5]])


def make_grid(rng, batch, out, in_sizes, align_corners, dtype):
    """Random coordinates in [-2.5, 2.5], about half of them replaced by special values."""
    d = len(in_sizes)
    grid = rng.uniform(-2.5, 2.5, (batch, *out, d))
    for k in range(d):
        special = special_values(in_sizes[d - 1 - k], align_corners)
        pick = rng.random(grid.shape[:-1]) < 0.5
        grid[..., k] = np.where(pick, rng.choice(special, grid.shape[:-1]), grid[..., k])
    return grid.astype(dtype)


def torch_sample(x, grid, gout, **kw):
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tg = torch.from_numpy(grid.copy()).requires_grad_(True)
    out = torch.nn.functional.grid_sample(tx, tg, **kw)
    out.backward(torch.from_numpy(gout.copy()))
    return out.detach().numpy(), tx.grad.numpy(), tg.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("d,mode", CASES, ids=str)
def test_grid_sample_parity(d, mode, padding_mode, align_corners, dtype):
    rng = np.random.default_rng(7 * d + len(mode) + len(padding_mode) + align_corners)
    in_sizes, out = ((4, 5), (6, 7)) if d == 2 else ((3, 4, 5), (3, 4, 5))
    x = rng.standard_normal((2, 3, *in_sizes)).astype(dtype)
    grid = make_grid(rng, 2, out, in_sizes, align_corners, dtype)
    gout = rng.standard_normal((2, 3, *out)).astype(dtype)
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)

    y = F.grid_sample(x, grid, **kw)
    dx, dgrid = F.grid_sample_backward(gout, x, grid, **kw)
    ty, tdx, tdgrid = torch_sample(x, grid, gout, **kw)
    assert y.dtype == dx.dtype == dgrid.dtype == dtype
    assert_close(y, ty, dtype, "output")
    assert_close(dx, tdx, dtype, "grad of input")
    assert_close(dgrid, tdgrid, dtype, "grad of grid")
    if mode == "nearest":
        assert not np.any(dgrid)


@pytest.mark.parametrize("d", [2, 3])
def test_unit_sized_input_axes(d):
    """A size-1 axis: reflection with align_corners=True pins every coordinate to 0 (zero gradient)."""
    rng = np.random.default_rng(1)
    in_sizes = (1, 3) if d == 2 else (1, 2, 1)
    x = rng.standard_normal((1, 2, *in_sizes))
    gout = rng.standard_normal((1, 2, 3, 4) if d == 2 else (1, 2, 2, 3, 4))
    for align_corners in (False, True):
        grid = make_grid(rng, 1, gout.shape[2:], in_sizes, align_corners, np.float64)
        for mode, padding_mode in [("bilinear", p) for p in PADDING] + [("nearest", "reflection")]:
            kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
            ty, tdx, tdgrid = torch_sample(x, grid, gout, **kw)
            assert_close(F.grid_sample(x, grid, **kw), ty, np.float64, f"output {kw}")
            dx, dgrid = F.grid_sample_backward(gout, x, grid, **kw)
            assert_close(dx, tdx, np.float64, f"grad of input {kw}")
            assert_close(dgrid, tdgrid, np.float64, f"grad of grid {kw}")


def test_nearest_rounds_half_to_even():
    # size 5 with align_corners=True: x = 2 g + 2, so g = -0.75, -0.25, 0.25, 0.75 land on 0.5, 1.5, 2.5, 3.5
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    g = np.array([-0.75, -0.25, 0.25, 0.75])
    grid = np.stack([g, np.zeros(4)], axis=-1).reshape(1, 1, 4, 2)
    y = F.grid_sample(x, grid, mode="nearest", align_corners=True)
    np.testing.assert_array_equal(y.ravel(), [0, 2, 2, 4])
    ty = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode="nearest",
                                         align_corners=True)
    np.testing.assert_array_equal(y, ty.numpy())


class GridSample(nn.Module):
    """Test-only wrapper, so torchlite.testing.gradcheck can differentiate both inputs."""

    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x, grid):
        self.save_for_backward(x, grid)
        return F.grid_sample(x, grid, **self.kw)

    def backward(self, grad_output):
        x, grid = self.pop_saved()
        return F.grid_sample_backward(grad_output, x, grid, **self.kw)


@pytest.mark.parametrize("d,mode", CASES, ids=str)
@pytest.mark.parametrize("padding_mode", PADDING)
def test_gradcheck(d, mode, padding_mode):
    """Finite differences for input and grid; random coordinates keep clear of the kinks."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 3, 4) if d == 2 else (1, 2, 2, 3, 3))
    grid = rng.uniform(-1.4, 1.4, (1, 2, 3, 2) if d == 2 else (1, 2, 2, 2, 3))
    assert gradcheck(GridSample(mode=mode, padding_mode=padding_mode, align_corners=False), x, grid)


def torch_affine(theta, size, align_corners, gout):
    t = torch.from_numpy(theta.copy()).requires_grad_(True)
    grid = torch.nn.functional.affine_grid(t, size, align_corners=align_corners)
    grid.backward(torch.from_numpy(gout.copy()))
    return grid.detach().numpy(), t.grad.numpy()


AFFINE_SIZES = [(2, 3, 4, 5), (1, 1, 1, 6), (3, 2, 7, 1), (2, 1, 3, 4, 5), (1, 2, 1, 2, 3), (2, 1, 2, 1, 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", AFFINE_SIZES, ids=str)
def test_affine_grid_parity(size, align_corners, dtype):
    rng = np.random.default_rng(len(size) + sum(size))
    d = len(size) - 2
    theta = rng.standard_normal((size[0], d, d + 1)).astype(dtype)
    gout = rng.standard_normal((size[0], *size[2:], d)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit sizes with align_corners=True warn, as torch
        grid = F.affine_grid(theta, size, align_corners=align_corners)
        tgrid, tdtheta = torch_affine(theta, size, align_corners, gout)
    dtheta = F.affine_grid_backward(gout, size, align_corners=align_corners)
    assert grid.dtype == dtheta.dtype == dtype
    assert_close(grid, tgrid, dtype, "grid")
    assert_close(dtheta, tdtheta, dtype, "dtheta")


def test_identity_grid_hits_pixel_centres_and_corners():
    eye = np.array([[[1.0, 0, 0], [0, 1, 0]]])
    grid = F.affine_grid(eye, (1, 1, 3, 5), align_corners=True)
    np.testing.assert_array_equal(grid[0, 0, :, 0], [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_array_equal(grid[0, :, 0, 1], [-1, 0, 1])
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 5))
    for align_corners in (False, True):
        grid = F.affine_grid(eye, x.shape, align_corners=align_corners)
        for mode in ("bilinear", "nearest", "bicubic"):
            np.testing.assert_allclose(F.grid_sample(x, grid, mode=mode, align_corners=align_corners), x,
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("d", [2, 3])
def test_spatial_transformer_chain(d, dtype):
    """affine_grid then grid_sample: dtheta through both backward twins, as torch's autograd."""
    rng = np.random.default_rng(d)
    size = (2, 3, 5, 6) if d == 2 else (2, 3, 3, 4, 5)
    x = rng.standard_normal(size).astype(dtype)
    theta = (np.eye(d, d + 1) + 0.3 * rng.standard_normal((2, d, d + 1))).astype(dtype)
    gout = rng.standard_normal(size).astype(dtype)
    grid = F.affine_grid(theta, size, align_corners=False)
    y = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    dx, dgrid = F.grid_sample_backward(gout, x, grid, padding_mode="border", align_corners=False)
    dtheta = F.affine_grid_backward(dgrid, size, align_corners=False)

    tx = torch.from_numpy(x).requires_grad_(True)
    ttheta = torch.from_numpy(theta).requires_grad_(True)
    tgrid = torch.nn.functional.affine_grid(ttheta, size, align_corners=False)
    ty = torch.nn.functional.grid_sample(tx, tgrid, padding_mode="border", align_corners=False)
    ty.backward(torch.from_numpy(gout))
    assert_close(y, ty.detach().numpy(), dtype, "output")
    assert_close(dx, tx.grad.numpy(), dtype, "grad of input")
    assert_close(dtheta, ttheta.grad.numpy(), dtype, "dtheta")


def test_empty_shapes_and_input_grad_flag():
    rng = np.random.default_rng(0)
    for x_shape, g_shape in [((0, 2, 3, 4), (0, 2, 2, 2)), ((2, 0, 3, 4), (2, 2, 2, 2)),
                             ((2, 3, 3, 4), (2, 0, 5, 2)), ((1, 2, 2, 3, 4), (1, 2, 0, 1, 3))]:
        x, grid = rng.standard_normal(x_shape), rng.uniform(-1, 1, g_shape)
        ty = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), align_corners=False)
        y = F.grid_sample(x, grid, align_corners=False)
        assert y.shape == tuple(ty.shape)
        dx, dgrid = F.grid_sample_backward(np.ones(y.shape), x, grid, align_corners=False)
        assert dx.shape == x.shape and dgrid.shape == grid.shape and not np.any(dx)
    x, grid = rng.standard_normal((1, 2, 3, 4)), rng.uniform(-1, 1, (1, 3, 3, 2))
    gout = rng.standard_normal((1, 2, 3, 3))
    dx, dgrid = F.grid_sample_backward(gout, x, grid, align_corners=True, needs_input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(dgrid, F.grid_sample_backward(gout, x, grid, align_corners=True)[1])


def test_align_corners_default_warns_as_torch():
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 3))
    theta = np.array([[[0.9, 0.1, 0.0], [0.0, 1.1, 0.2]]])
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        grid = F.affine_grid(theta, x.shape)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        y = F.grid_sample(x, grid)
    np.testing.assert_array_equal(grid, F.affine_grid(theta, x.shape, align_corners=False))
    np.testing.assert_array_equal(y, F.grid_sample(x, grid, align_corners=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.grid_sample_backward(np.ones_like(y), x, grid)
        F.affine_grid_backward(np.ones_like(grid), x.shape)
    with pytest.warns(UserWarning, match="unit-size grids"):
        F.affine_grid(theta, (1, 1, 1, 3), align_corners=True)


X4, G4 = np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 3, 2))
GRID_SAMPLE_ERRORS = [
    (ValueError, r"^grid_sample: expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: 'linear'",
     (X4, G4), dict(mode="linear")),
    (ValueError, r"^grid_sample: expected padding_mode to be 'zeros', 'border', or 'reflection', but got: 'zero'",
     (X4, G4), dict(padding_mode="zero")),
    (ValueError, r"^grid_sample: expected 4D or 5D input and grid with the same number of dimensions, "
                 r"got input shape \(3, 4, 5\) and grid shape \(3, 3, 2\)", (X4[0], G4[0]), {}),
    (ValueError, r"^grid_sample: expected 4D or 5D input and grid with the same number of dimensions, "
                 r"got input shape \(2, 3, 4, 5\) and grid shape \(2, 1, 3, 3, 2\)", (X4, G4[:, None]), {}),
    (ValueError, r"^grid_sample: expected grid and input to have the same batch size", (X4[:1], G4), {}),
    (ValueError, r"^grid_sample: expected grid to have size 2 in the last dimension, got grid shape "
                 r"\(2, 3, 3, 1\)", (X4, G4[..., :1]), {}),
    (ValueError, r"^grid_sample: expected input to have non-empty spatial dimensions, got shape \(2, 3, 0, 5\)",
     (X4[:, :, :0], G4), {}),
    (ValueError, r"^grid_sample: bicubic interpolation only supports 4D input, got shape \(2, 3, 1, 4, 5\)",
     (X4[:, :, None], np.zeros((2, 1, 3, 3, 3))), dict(mode="bicubic")),
    (TypeError, r"^grid_sample: expected floating point input and grid of the same dtype, got float64 and "
                r"float32", (X4, G4.astype(np.float32)), {}),
    (TypeError, r"^grid_sample: expected floating point input and grid of the same dtype, got int64 and int64",
     (X4.astype(np.int64), G4.astype(np.int64)), {}),
]


@pytest.mark.parametrize("exc,match,args,kw", GRID_SAMPLE_ERRORS, ids=[m[18:60] for _, m, _, _ in GRID_SAMPLE_ERRORS])
def test_grid_sample_errors(exc, match, args, kw):
    with pytest.raises(Exception):
        torch.nn.functional.grid_sample(*[torch.from_numpy(a) for a in args], align_corners=False, **kw)
    with pytest.raises(exc, match=match):
        F.grid_sample(*args, align_corners=False, **kw)
    with pytest.raises(exc, match=match.replace("grid_sample:", "grid_sample_backward:")):
        F.grid_sample_backward(np.zeros(1), *args, align_corners=False, **kw)


def test_grid_sample_backward_checks_grad_shape():
    with pytest.raises(ValueError, match=r"^grid_sample_backward: expected grad_output of shape \(2, 3, 3, 3\), "
                                         r"got \(2, 3, 3\)"):
        F.grid_sample_backward(np.zeros((2, 3, 3)), X4, G4, align_corners=False)


THETA = np.zeros((2, 2, 3))
AFFINE_ERRORS = [
    (ValueError, r"^affine_grid: expected theta to have floating point type, but got int64",
     THETA.astype(np.int64), (2, 3, 4, 5)),
    (ValueError, r"^affine_grid: expected a batch of 2D affine matrices of shape Nx2x3 for size \(2, 3, 4, 5\), "
                 r"got shape \(2, 3\)", THETA[0], (2, 3, 4, 5)),
    (ValueError, r"^affine_grid: expected a batch of 3D affine matrices of shape Nx3x4 for size "
                 r"\(2, 3, 4, 5, 6\), got shape \(2, 2, 3\)", THETA, (2, 3, 4, 5, 6)),
    (NotImplementedError, r"^affine_grid: only 4D and 5D sizes are supported", THETA, (2, 3, 4)),
    (ValueError, r"^affine_grid: expected non-zero, positive output size, got \(2, 3, 0, 5\)", THETA, (2, 3, 0, 5)),
    (ValueError, r"^affine_grid: expected theta of batch size 3 for size \(3, 3, 4, 5\), got shape \(2, 2, 3\)",
     THETA, (3, 3, 4, 5)),
]


@pytest.mark.parametrize("exc,match,theta,size", AFFINE_ERRORS, ids=[m[14:50] for _, m, _, _ in AFFINE_ERRORS])
def test_affine_grid_errors(exc, match, theta, size):
    with pytest.raises(Exception):
        torch.nn.functional.affine_grid(torch.from_numpy(theta), size, align_corners=False)
    with pytest.raises(exc, match=match):
        F.affine_grid(theta, size, align_corners=False)


def test_affine_grid_backward_checks_shape():
    with pytest.raises(ValueError, match=r"^affine_grid_backward: expected grad_grid of shape \(2, 4, 5, 2\) for "
                                         r"size \(2, 3, 4, 5\), got \(2, 5, 4, 2\)"):
        F.affine_grid_backward(np.zeros((2, 5, 4, 2)), (2, 3, 4, 5))

"""Conv1d/2d/3d and ConvTranspose1d/2d/3d against torch: outputs, input and parameter gradients,
both im2col layouts, gradchecks, reprs, init, needs_input_grad and errors."""
import math

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from torchlite.nn.functional import conv as conv_impl
from torchlite.testing import gradcheck

from parity import check_parity

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")  # torch's, not ours

DTYPES = [np.float64, np.float32]

# (dims, in, out, kernel, kwargs, input shape): odd sizes, non-square kernels, stride > kernel,
# dilation, groups (depthwise too), every padding mode, 'same' (even kernel) and 'valid', no bias.
CONV_CASES = [
    (2, 3, 4, 3, {}, (2, 3, 7, 6)),
    (2, 3, 4, (3, 2), dict(stride=(2, 1), padding=(1, 2)), (2, 3, 9, 7)),
    (2, 2, 4, 2, dict(stride=3), (2, 2, 8, 7)),
    (2, 4, 6, 3, dict(dilation=(2, 1), padding=2, groups=2, bias=False), (1, 4, 9, 8)),
    (2, 4, 8, 3, dict(groups=4, padding=1), (2, 4, 6, 5)),
    (2, 4, 4, 4, dict(padding="same", dilation=1), (2, 4, 7, 6)),
    (2, 3, 5, (2, 3), dict(padding="same", dilation=2), (1, 3, 6, 7)),
    (2, 3, 5, 3, dict(padding="valid"), (2, 3, 5, 5)),
    (2, 3, 4, 3, dict(padding=1, padding_mode="reflect"), (2, 3, 5, 6)),
    (2, 3, 4, (2, 3), dict(padding=(1, 2), padding_mode="replicate", stride=2), (2, 3, 5, 6)),
    (2, 2, 4, 3, dict(padding=2, padding_mode="circular", groups=2), (2, 2, 5, 4)),
    (2, 3, 4, 4, dict(padding="same", padding_mode="reflect"), (2, 3, 6, 5)),
    (2, 3, 4, 3, dict(padding=1), (3, 5, 6)),  # unbatched
    (2, 1, 6, 5, {}, (3, 1, 12, 12)),  # LeNet-like first layer
    (1, 3, 5, 3, dict(stride=2, padding=1), (2, 3, 11)),
    (1, 4, 6, 4, dict(padding="same", dilation=3, groups=2, padding_mode="circular"), (2, 4, 13)),
    (1, 2, 4, 1, dict(bias=False), (3, 2, 5)),
    (3, 2, 3, (2, 3, 2), dict(stride=(1, 2, 1), padding=1), (2, 2, 4, 5, 3)),
    (3, 4, 4, 3, dict(groups=2, dilation=(1, 2, 1), padding=(1, 2, 0), padding_mode="replicate"), (1, 4, 4, 5, 3)),
]


def _modules(dims, cin, cout, k, kwargs, transposed=False):
    name = f"ConvTranspose{dims}d" if transposed else f"Conv{dims}d"
    return getattr(nn, name)(cin, cout, k, **kwargs), getattr(torch.nn, name)(cin, cout, k, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-{c[1]}-{c[2]}-{c[3]}-{c[4]}")
def test_conv_parity(case, dtype):
    dims, cin, cout, k, kwargs, shape = case
    tl, th = _modules(dims, cin, cout, k, kwargs)
    x = np.random.default_rng(1).standard_normal(shape)
    out = check_parity(tl, th, x, dtype=dtype)
    assert out.dtype == dtype and out.flags.c_contiguous


# (dims, in, out, kernel, kwargs, input shape, output_size)
TRANSPOSE_CASES = [
    (2, 3, 4, 3, {}, (2, 3, 4, 5), None),
    (2, 3, 4, (3, 2), dict(stride=2, padding=1, output_padding=1), (2, 3, 4, 3), None),
    (2, 4, 6, 3, dict(stride=(3, 2), groups=2, bias=False), (1, 4, 3, 4), [10, 9]),
    (2, 4, 4, 2, dict(groups=4, dilation=2, stride=1, output_padding=1), (2, 4, 3, 3), None),
    (2, 3, 2, 3, dict(stride=2, padding=1), (3, 4, 4), [8, 7]),  # unbatched, output_size picks the padding
    (1, 3, 5, 4, dict(stride=3, padding=2, output_padding=2), (2, 3, 5), None),
    (1, 2, 4, 3, dict(dilation=3, output_padding=2, groups=2), (2, 2, 4), None),
    (3, 2, 3, (2, 3, 2), dict(stride=(2, 1, 2), padding=(0, 1, 1)), (1, 2, 3, 3, 2), [1, 2, 7, 3, 3]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=lambda c: f"{c[0]}d-{c[3]}-{c[4]}-{c[6]}")
def test_conv_transpose_parity(case, dtype):
    dims, cin, cout, k, kwargs, shape, output_size = case
    tl, th = _modules(dims, cin, cout, k, kwargs, transposed=True)
    x = np.random.default_rng(2).standard_normal(shape)
    kw = None if output_size is None else {"output_size": output_size}
    out = check_parity(tl, th, x, dtype=dtype, forward_kwargs=kw)
    assert out.dtype == dtype


@pytest.mark.parametrize("samples", [1, 2])  # one sample per chunk; two, the last chunk short
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[3], CONV_CASES[17]], ids=lambda c: f"{c[0]}d-{c[4]}")
def test_input_grad_in_sample_chunks(case, transposed, samples, monkeypatch):
    """The input gradient (and a transposed conv's forward) built chunk by chunk of samples equals torch's."""
    monkeypatch.setattr(conv_impl, "_input_grad_chunk", lambda geo: samples)
    dims, cin, cout, k, kwargs, shape = case
    kwargs = {key: v for key, v in kwargs.items() if key != "padding_mode"}
    if transposed:
        kwargs.pop("padding", None)
    tl, th = _modules(dims, cin, cout, k, kwargs, transposed)
    x = np.random.default_rng(5).standard_normal((5,) + shape[1:])
    check_parity(tl, th, x, dtype=np.float64)


# Both column layouts on the same convolutions, through the functional twins.
LAYOUT_CASES = [
    (2, (2, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)),
    (2, (2, 3, 6, 7), (4, 3, 3, 3), dict(stride=3, padding=(2, 1))),
    (2, (1, 4, 5, 5), (8, 1, 3, 3), dict(groups=4, padding="same")),
    (1, (2, 3, 9), (4, 3, 2), dict(padding="same", dilation=3)),
    (3, (1, 2, 4, 5, 4), (4, 1, 2, 3, 2), dict(groups=2, stride=(1, 2, 1), padding=1)),
    (2, (2, 3, 3, 3), (8, 3, 2, 2), dict(stride=2)),  # more channels than output pixels
]


@pytest.mark.parametrize("per_sample", [True, False])
@pytest.mark.parametrize("pixel_major", [True, False])
@pytest.mark.parametrize("case", LAYOUT_CASES, ids=lambda c: f"{c[0]}d-{c[3]}")
def test_functional_both_layouts(case, pixel_major, per_sample, monkeypatch):
    """Every column layout and GEMM arrangement, whatever the size heuristics would pick."""
    monkeypatch.setattr(conv_impl, "_prefer_pixel_major", lambda geo: pixel_major)
    monkeypatch.setattr(conv_impl, "_per_sample", lambda geo: per_sample)
    dims, xshape, wshape, kwargs = case
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal(xshape), rng.standard_normal(wshape), rng.standard_normal(wshape[0])
    conv, conv_backward = getattr(F, f"conv{dims}d"), getattr(F, f"conv{dims}d_backward")
    y = conv(x, w, b, **kwargs)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(torch.nn.functional, f"conv{dims}d")(tx, tw, tb, **kwargs)
    g = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    dx, dw, db = conv_backward(g, x, w, b, **kwargs)
    _, dw_only, _ = conv_backward(g, x, w, b, needs_input_grad=False, **kwargs)  # per-sample dW GEMMs
    for mine, theirs in [(y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad), (dw_only, tw.grad)]:
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)
    _, ctx = F.conv_nd(x, w, b, return_context=True, **kwargs)
    assert ctx.geometry.pixel_major is pixel_major


@pytest.mark.parametrize("pixel_major", [True, False])
def test_functional_transpose_both_layouts(pixel_major, monkeypatch):
    monkeypatch.setattr(conv_impl, "_prefer_pixel_major", lambda geo: pixel_major)
    monkeypatch.setattr(conv_impl, "_per_sample", lambda geo: pixel_major)
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(6)
    kwargs = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2))
    y = F.conv_transpose2d(x, w, b, **kwargs)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kwargs)
    g = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    dx, dw, db = F.conv_transpose2d_backward(g, x, w, b, **kwargs)
    for mine, theirs in [(y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)]:
        np.testing.assert_allclose(mine, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1, padding_mode="reflect"), (2, 2, 7)),
    (lambda: nn.Conv2d(2, 4, (3, 2), padding="same", dilation=(1, 2), groups=2), (1, 2, 5, 6)),
    (lambda: nn.Conv3d(2, 2, 2, padding=1, padding_mode="circular", bias=False), (1, 2, 3, 3, 2)),
    (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1), (2, 2, 4)),
    (lambda: nn.ConvTranspose2d(2, 4, (2, 3), stride=(2, 1), padding=1, groups=2), (1, 2, 3, 3)),
    (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, dilation=(1, 2, 1)), (1, 2, 2, 2, 2)),
])
def test_gradcheck(make, shape):
    x = np.random.default_rng(5).standard_normal(shape)
    assert gradcheck(make().double(), x)


def test_lenet_shapes_match_torch():
    tl = nn.Sequential(nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2))
    th = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5), torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 16, 5),
                             torch.nn.MaxPool2d(2))
    x = np.random.default_rng(6).standard_normal((4, 1, 28, 28))
    out = check_parity(tl, th, x, dtype=np.float32)
    assert out.shape == (4, 16, 4, 4)


@pytest.mark.parametrize("transposed", [False, True])
def test_needs_input_grad_false_skips_dx_only(transposed):
    cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    a, b = cls(3, 4, 3, padding=1), cls(3, 4, 3, padding=1)
    b.load_state_dict(a.state_dict())
    b.needs_input_grad = False
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 5)).astype(np.float32)
    g = np.random.default_rng(8).standard_normal(a(x).shape).astype(np.float32)
    a.clear_saved()
    a(x), b(x)
    assert a.backward(g) is not None and b.backward(g) is None
    np.testing.assert_allclose(a.weight.grad, b.weight.grad, rtol=1e-5, atol=1e-5)  # another GEMM order
    np.testing.assert_allclose(a.bias.grad, b.bias.grad, rtol=1e-6)


def test_sequential_passes_needs_input_grad_to_first_conv():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3))
    model.needs_input_grad = False
    assert model[0].needs_input_grad is False and model[1].needs_input_grad is True
    x = np.zeros((1, 1, 6, 6), np.float32)
    y = model(x)
    assert model.backward(np.ones_like(y)) is None


def test_frozen_weight_gets_no_grad_but_input_grad_is_right():
    tl, th = nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3)
    tl.weight.requires_grad_(False)
    th.weight.requires_grad_(False)
    check_parity(tl, th, np.random.default_rng(9).standard_normal((2, 2, 5, 5)))
    assert tl.weight.grad is None and tl.bias.grad is not None


def test_repeated_calls_backprop_in_reverse_order():
    conv = nn.Conv2d(2, 2, 3, padding=1).double()
    th = torch.nn.Conv2d(2, 2, 3, padding=1).double()
    conv.load_state_dict({k: v.detach().numpy() for k, v in th.state_dict().items()})
    rng = np.random.default_rng(10)
    x1, x2, g1, g2 = (rng.standard_normal((1, 2, 4, 4)) for _ in range(4))
    conv(x1), conv(x2)
    dx2, dx1 = conv.backward(g2), conv.backward(g1)
    t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    (th(t1) * torch.tensor(g1)).sum().backward()
    (th(t2) * torch.tensor(g2)).sum().backward()
    np.testing.assert_allclose(dx1, t1.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dx2, t2.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(conv.weight.grad, th.weight.grad.numpy(), rtol=1e-10)


def test_no_grad_saves_nothing():
    conv = nn.Conv2d(1, 2, 3)
    with torchlite.no_grad():
        conv(np.zeros((1, 1, 5, 5), np.float32))
    assert conv.saved_count == 0


@pytest.mark.parametrize("args, kwargs", [
    ((1, 32, 3), dict(padding=1)),
    ((3, 16, (3, 5)), dict(stride=(2, 1), padding=(1, 2), dilation=2, bias=False)),
    ((4, 8, 4), dict(padding="same", groups=4, padding_mode="reflect")),
    ((4, 8, 3), dict(padding="valid", padding_mode="circular")),
])
def test_repr_and_state_dict_match_torch(args, kwargs):
    for dims in (1, 2, 3):
        if dims != 2 and isinstance(args[2], tuple):
            continue
        tl = getattr(nn, f"Conv{dims}d")(*args, **kwargs)
        th = getattr(torch.nn, f"Conv{dims}d")(*args, **kwargs)
        assert repr(tl) == repr(th)
        assert list(tl.state_dict()) == list(th.state_dict())
        assert all(tl.state_dict()[k].shape == tuple(v.shape) for k, v in th.state_dict().items())


def test_transpose_repr_matches_torch():
    for kwargs in (dict(stride=2, output_padding=1), dict(padding=(1, 2), groups=2, dilation=2, bias=False)):
        assert repr(nn.ConvTranspose2d(4, 6, 3, **kwargs)) == repr(torch.nn.ConvTranspose2d(4, 6, 3, **kwargs))
    assert repr(nn.ConvTranspose1d(2, 3, 4)) == repr(torch.nn.ConvTranspose1d(2, 3, 4))


@pytest.mark.parametrize("cls, args, weight_shape, fan_in", [
    (nn.Conv2d, (6, 16, 5), (16, 6, 5, 5), 150),
    (nn.Conv1d, (4, 8, 3, 1, 0, 1, 2), (8, 2, 3), 6),
    (nn.ConvTranspose2d, (4, 6, 3, 1, 0, 0, 2), (4, 3, 3, 3), 27),
])
def test_init_bounds_and_seeding(cls, args, weight_shape, fan_in):
    torchlite.manual_seed(3)
    a = cls(*args)
    torchlite.manual_seed(3)
    b = cls(*args)
    assert a.weight.shape == weight_shape and a.weight.dtype == np.float32
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives exactly this bound
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.weight.data).max() > 0.8 * bound
    assert np.abs(a.bias.data).max() <= bound


def test_default_dtype_float64():
    torchlite.set_default_dtype(np.float64)
    conv = nn.Conv2d(1, 2, 3)
    assert conv.weight.dtype == np.float64
    assert conv(np.zeros((1, 1, 4, 4), np.float32)).dtype == np.float64


def test_input_shape_errors_name_the_module():
    conv = nn.Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))
    with pytest.raises(ValueError) as e:
        conv(np.zeros((8, 1, 28, 28), np.float32))
    assert str(e.value) == ("Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected input (N, 3, H, W) or "
                            "(3, H, W), got shape (8, 1, 28, 28)")
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 16.*smaller than the kernel"):
        conv(np.zeros((1, 3, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"^Conv1d\(2, 2, .*expected input \(N, 2, L\) or \(2, L\)"):
        nn.Conv1d(2, 2, 3)(np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"^ConvTranspose2d\(2, 2, .*requested an output size of \[9, 9\]"):
        nn.ConvTranspose2d(2, 2, 3, stride=2)(np.zeros((1, 2, 3, 3)), output_size=[9, 9])
    with pytest.raises(TypeError, match=r"^Conv2d"):
        conv(np.array([["a"]]))


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "in_channels .* divisible by groups"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), "out_channels .* divisible by groups"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), "groups must be a positive integer"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), "invalid padding string 'full'"),
    (lambda: nn.Conv2d(3, 4, 3, padding="same", stride=2), "'same' is not supported for strided"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode must be one of"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), "kernel_size must be an int or a tuple of 2 ints"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), "padding must be non-negative"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), 'Only "zeros" padding mode'),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding="same"), "padding must be an int or a tuple"),
])
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_functional_errors():
    x, w = np.zeros((1, 4, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="conv2d: expected input with 4 channels"):
        F.conv2d(np.zeros((1, 3, 5, 5)), w, groups=2)
    with pytest.raises(ValueError, match="conv2d: out channels 2 not divisible by groups=4"):
        F.conv2d(x, np.zeros((2, 1, 3, 3)), groups=4)
    with pytest.raises(ValueError, match="expected weight with 4 dims"):
        F.conv2d(x, np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="expected bias of shape"):
        F.conv2d(x, w, np.zeros(3), groups=2)
    with pytest.raises(ValueError, match="output padding must be smaller than either stride or dilation"):
        F.conv_transpose2d(x, np.zeros((4, 2, 3, 3)), output_padding=1)


def test_float32_stays_float32_with_float64_input():
    conv = nn.Conv2d(2, 3, 3)
    y = conv(np.random.default_rng(11).standard_normal((2, 2, 5, 5)))
    dx = conv.backward(np.ones_like(y, dtype=np.float64))
    assert y.dtype == dx.dtype == conv.weight.grad.dtype == conv.bias.grad.dtype == np.float32


def test_functional_accepts_unbatched_input():
    rng = np.random.default_rng(12)
    x, w, g = rng.standard_normal((3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal((4, 4, 4))
    y = F.conv2d(x, w, padding=(0, 0))
    np.testing.assert_allclose(y, F.conv2d(x[None], w)[0])
    dx, dw, db = F.conv2d_backward(g, x, w)
    dx1, dw1, _ = F.conv2d_backward(g[None], x[None], w)
    np.testing.assert_allclose(dx, dx1[0])
    np.testing.assert_allclose(dw, dw1)
    assert db is None
    wt = rng.standard_normal((3, 2, 2, 2))
    yt = F.conv_transpose2d(x, wt, stride=2)
    np.testing.assert_allclose(yt, torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt),
                                                                        stride=2).numpy(), rtol=1e-12)
    dxt, dwt, _ = F.conv_transpose2d_backward(np.ones_like(yt), x, wt, stride=2)
    assert dxt.shape == x.shape and dwt.shape == wt.shape


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(1, 2, 3, padding=1), (2, 1, 5, 5)),
    (lambda: nn.Conv2d(3, 4, 2), (2, 3, 4, 4)),
    (lambda: nn.ConvTranspose2d(2, 1, 3, padding=1), (2, 2, 4, 4)),
])
def test_outputs_and_gradients_never_alias_reused_buffers(make, shape):
    """The layer reuses its scratch buffers between steps; what it returns must stay untouched."""
    layer = make().double()
    rng = np.random.default_rng(13)
    x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape)
    with torchlite.no_grad():
        y1 = layer(x1)
        kept = y1.copy()
        layer(x2)
    np.testing.assert_array_equal(y1, kept)
    g = rng.standard_normal(y1.shape)
    layer(x1)
    dx1 = layer.backward(g)
    kept = dx1.copy()
    layer(x2)
    layer.backward(-g)
    np.testing.assert_array_equal(dx1, kept)


def test_inference_in_chunks_equals_one_pass():
    """Under no_grad a large batch runs in chunks (bounded column buffer); results are identical."""
    conv = nn.Conv2d(3, 5, 3, padding=1, stride=2)
    x = np.random.default_rng(0).standard_normal((7, 3, 9, 9)).astype(np.float32)
    with torchlite.no_grad():
        whole = conv(x)
        conv.INFERENCE_COLUMNS = 3 * 9 * 9 * 9 * 2  # two samples per chunk
        chunked = conv(x)
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("make, shape", [
    (lambda m: m.Conv2d(3, 4, 3, padding=1), (0, 3, 5, 5)),
    (lambda m: m.Conv2d(4, 4, 3, groups=2, stride=2, bias=False), (0, 4, 7, 7)),
    (lambda m: m.Conv1d(2, 3, 2, padding_mode="reflect", padding=1), (0, 2, 5)),
    (lambda m: m.Conv3d(2, 3, 2), (0, 2, 3, 3, 3)),
    (lambda m: m.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1), (0, 3, 4, 4)),
    (lambda m: m.ConvTranspose1d(4, 2, 3, groups=2), (0, 4, 4)),
])
def test_empty_batch_gives_empty_output_and_zero_grads(make, shape):
    tl = make(nn)
    out = check_parity(tl, make(torch.nn), np.zeros(shape))
    assert out.shape[0] == 0
    assert not tl.weight.grad.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("pad", [0, 1, 3])
@pytest.mark.parametrize("kernel", [1, 3])
def test_conv_tbc_matches_torch(dtype, pad, kernel):
    rng = np.random.default_rng(pad * 10 + kernel)
    x = rng.standard_normal((6, 2, 4)).astype(dtype)
    w = rng.standard_normal((kernel, 4, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv_tbc(tx, tw, tb, pad)
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(g))
    y = F.conv_tbc(x, w, b, pad)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    rtol = 1e-7 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=rtol, atol=rtol)
    for ours, theirs in zip(F.conv_tbc_backward(g, x, w, b, pad), (tx, tw, tb)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=rtol, atol=rtol)


def test_conv_tbc_refuses_mismatched_channels():
    with pytest.raises(ValueError, match="conv_tbc: input has 3 channels"):
        F.conv_tbc(np.zeros((5, 2, 3)), np.zeros((2, 4, 1)), np.zeros(1))


@pytest.mark.parametrize("fn, x_shape, w_shape, message", [
    ("conv2d", (1, 3, 5, 5), (0, 3, 3, 3), "at least 1 filter"),
    ("conv2d", (1, 3, 5, 5), (4, 3, 0, 3), "kernel size should be greater than zero"),
    ("conv_transpose2d", (1, 0, 5, 5), (0, 4, 3, 3), "at least 1 filter"),
    ("conv_transpose2d", (1, 3, 5, 5), (3, 4, 0, 3), "kernel size should be greater than zero"),
    ("conv1d", (1, 3, 5), (2, 3, 0), "kernel size should be greater than zero"),
    *[(f"conv_transpose{d}d", (1, 3) + (4,) * d, (3, 0) + (2,) * d, "at least 1 output channel") for d in (1, 2, 3)]])
def test_empty_weights_are_refused_as_torch(fn, x_shape, w_shape, message):
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, fn)(torch.ones(x_shape), torch.ones(w_shape))
    with pytest.raises(ValueError, match=message):
        getattr(F, fn)(np.ones(x_shape), np.ones(w_shape))


def test_conv_tbc_one_step_short_gives_an_empty_output_as_torch():
    x, w, b = np.ones((2, 3, 4)), np.ones((5, 4, 6)), np.ones(6)
    expected = torch.nn.functional.conv_tbc(torch.tensor(x), torch.tensor(w), torch.tensor(b), 1)
    assert F.conv_tbc(x, w, b, 1).shape == tuple(expected.shape) == (0, 3, 6)
    dx, dw, db = F.conv_tbc_backward(np.zeros((0, 3, 6)), x, w, b, 1)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape) and not dx.any() and not dw.any()


@pytest.mark.parametrize("fn, w_shape", [("conv2d", (4, 3, 1, 1)), ("conv_transpose2d", (3, 4, 1, 1))])
def test_empty_spatial_dims_need_an_empty_batch_as_torch(fn, w_shape):
    with pytest.raises(RuntimeError):
        getattr(torch.nn.functional, fn)(torch.ones(1, 3, 0, 5), torch.ones(w_shape), padding=1)
    with pytest.raises(ValueError, match="empty spatial dim"):
        getattr(F, fn)(np.ones((1, 3, 0, 5)), np.ones(w_shape), padding=1)

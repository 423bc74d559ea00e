"""nn.utils fusion (fuse_conv_bn_eval, fuse_linear_bn_eval and their *_weights) and skip_init, against torch 2.13."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from torchlite.nn.utils import (fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights,
                                skip_init)

from parity import assert_close, copy_state, to_numpy

F64 = np.float64


def _randomize_bn(tl_bn, torch_bn, rng):
    """Non-trivial running statistics and affine parameters, the same in both."""
    n = torch_bn.num_features
    with torch.no_grad():
        if torch_bn.affine:
            torch_bn.weight.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, n)))
            if torch_bn.bias is not None:
                torch_bn.bias.copy_(torch.from_numpy(rng.standard_normal(n)))
        torch_bn.running_mean.copy_(torch.from_numpy(rng.standard_normal(n)))
        torch_bn.running_var.copy_(torch.from_numpy(rng.uniform(0.2, 3.0, n)))
    copy_state(tl_bn, torch_bn)


def _pair(build):
    """The same layers in torchlite and torch (float64), torch's weights copied in, both in eval mode."""
    torchlite.set_default_dtype(F64)
    try:
        tl = build(nn)
    finally:
        torchlite.set_default_dtype(np.float32)
    th = tuple(m.double() for m in build(torch.nn))
    return tl, th


def _check_fused(tl_layer, tl_bn, th_layer, th_bn, fuse, x, **kw):
    rng = np.random.default_rng(0)
    copy_state(tl_layer, th_layer)
    _randomize_bn(tl_bn, th_bn, rng)
    for m in (tl_layer, tl_bn, th_layer, th_bn):
        m.eval()
    fused = fuse(tl_layer, tl_bn, **kw)
    th_fused = getattr(torch.nn.utils, fuse.__name__)(th_layer, th_bn, **kw)
    with torchlite.no_grad():
        reference = tl_bn(tl_layer(x))
        out = fused(x)
    with torch.no_grad():
        th_out = th_fused(torch.from_numpy(x)).numpy()
    assert type(fused) is type(tl_layer) and fused is not tl_layer
    assert_close(out, reference, F64, "fused vs layer+bn")
    assert_close(out, th_out, F64, "fused vs torch's fused")
    assert sorted(fused.state_dict()) == sorted(th_fused.state_dict())
    for k, v in th_fused.state_dict().items():
        assert_close(fused.state_dict()[k], to_numpy(v), F64, k)
    for name, p in th_fused.named_parameters():
        assert fused.get_parameter(name).requires_grad == p.requires_grad, name
    return fused


CONVS = [
    ("Conv1d", "BatchNorm1d", dict(), (2, 3, 7)),
    ("Conv2d", "BatchNorm2d", dict(stride=2, padding=1), (2, 3, 6, 5)),
    ("Conv2d", "BatchNorm2d", dict(bias=False, groups=3, dilation=2), (2, 3, 7, 7)),
    ("Conv3d", "BatchNorm3d", dict(padding=1, bias=False), (1, 3, 4, 3, 4)),
]


@pytest.mark.parametrize("conv,bn,kw,shape", CONVS)
@pytest.mark.parametrize("bn_kw", [dict(), dict(affine=False), dict(eps=1e-2, momentum=None)])
def test_fuse_conv_bn_eval(conv, bn, kw, shape, bn_kw):
    (tl_conv, tl_bn), (th_conv, th_bn) = _pair(lambda m: (getattr(m, conv)(3, 6, 3, **kw),
                                                          getattr(m, bn)(6, **bn_kw)))
    x = np.random.default_rng(1).standard_normal(shape)
    fused = _check_fused(tl_conv, tl_bn, th_conv, th_bn, fuse_conv_bn_eval, x)
    assert fused.bias is not None and fused.bias.shape == (6,)
    assert tl_conv.bias is None if kw.get("bias") is False else tl_conv.bias is not None  # original untouched


@pytest.mark.parametrize("conv,bn,shape", [("ConvTranspose1d", "BatchNorm1d", (2, 3, 5)),
                                           ("ConvTranspose2d", "BatchNorm2d", (2, 3, 4, 3))])
@pytest.mark.parametrize("bias", [True, False])
def test_fuse_conv_transpose_bn_eval(conv, bn, shape, bias):
    (tl_conv, tl_bn), (th_conv, th_bn) = _pair(lambda m: (getattr(m, conv)(3, 4, 3, stride=2, bias=bias),
                                                          getattr(m, bn)(4)))
    x = np.random.default_rng(2).standard_normal(shape)
    _check_fused(tl_conv, tl_bn, th_conv, th_bn, fuse_conv_bn_eval, x, transpose=True)


@pytest.mark.parametrize("out,bn_features", [(5, 5), (5, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_fuse_linear_bn_eval(out, bn_features, bias):
    (tl_lin, tl_bn), (th_lin, th_bn) = _pair(lambda m: (m.Linear(4, out, bias=bias), m.BatchNorm1d(bn_features)))
    x = np.random.default_rng(3).standard_normal((6, 4))
    if bn_features == out:
        _check_fused(tl_lin, tl_bn, th_lin, th_bn, fuse_linear_bn_eval, x)
    else:  # a (1,) BatchNorm folds in as a broadcast; its own forward would need 1 channel
        copy_state(tl_lin, th_lin)
        _randomize_bn(tl_bn, th_bn, np.random.default_rng(0))
        for m in (tl_lin, tl_bn, th_lin, th_bn):
            m.eval()
        fused = fuse_linear_bn_eval(tl_lin, tl_bn)
        th_fused = torch.nn.utils.fuse_linear_bn_eval(th_lin, th_bn)
        assert fused.bias.shape == tuple(th_fused.bias.shape)
        with torch.no_grad():
            assert_close(fused(x), th_fused(torch.from_numpy(x)).numpy(), F64, "fused linear, broadcast bn")


def test_fuse_linear_bn_without_affine_matches_linear_then_bn():
    # torch fails on a BatchNorm without affine here (None * tensor); torchlite folds it in
    (tl_lin, tl_bn), (th_lin, th_bn) = _pair(lambda m: (m.Linear(4, 3), m.BatchNorm1d(3, affine=False)))
    copy_state(tl_lin, th_lin)
    _randomize_bn(tl_bn, th_bn, np.random.default_rng(0))
    for m in (tl_lin, tl_bn, th_lin, th_bn):
        m.eval()
    x = np.random.default_rng(4).standard_normal((5, 4))
    fused = fuse_linear_bn_eval(tl_lin, tl_bn)
    with torch.no_grad():
        expected = th_bn(th_lin(torch.from_numpy(x))).numpy()
    assert_close(fused(x), expected, F64, "fused linear, bn without affine")


def test_fuse_weights_functions_match_torch_on_arrays_and_dtypes():
    rng = np.random.default_rng(5)
    w32 = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b32 = rng.standard_normal(4).astype(np.float32)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)  # float64 statistics with a float32 conv
    bw, bb = rng.standard_normal(4), rng.standard_normal(4)
    for conv_b in (b32, None):
        w, b = fuse_conv_bn_weights(w32, conv_b, rm, rv, 1e-3, bw, bb)
        tw, tb = torch.nn.utils.fuse_conv_bn_weights(*[None if a is None else torch.from_numpy(a) if
                                                       isinstance(a, np.ndarray) else a
                                                       for a in (w32, conv_b, rm, rv, 1e-3, bw, bb)])
        assert isinstance(w, torchlite.nn.Parameter) and isinstance(b, torchlite.nn.Parameter)
        assert w.dtype == np.float32 and b.dtype == np.float32
        assert (w.requires_grad, b.requires_grad) == (tw.requires_grad, tb.requires_grad) == (False, False)
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(b.data, tb.detach().numpy(), rtol=1e-6, atol=1e-6)
    lw = nn.Parameter(rng.standard_normal((4, 3)).astype(np.float32))
    w, b = fuse_linear_bn_weights(lw, None, rm, rv, 1e-5, bw, bb)
    tw, tb = torch.nn.utils.fuse_linear_bn_weights(torch.nn.Parameter(torch.from_numpy(lw.data)), None,
                                                   *[torch.from_numpy(a) for a in (rm, rv)], 1e-5,
                                                   torch.from_numpy(bw), torch.from_numpy(bb))
    assert (w.requires_grad, b.requires_grad) == (tw.requires_grad, tb.requires_grad) == (True, False)
    assert w.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b.data, tb.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_float32_fused_conv_stays_float32():
    conv, bn = nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)
    conv.eval(), bn.eval()
    fused = fuse_conv_bn_eval(conv, bn)
    assert fused.weight.dtype == np.float32 and fused.bias.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    with torchlite.no_grad():
        assert fused(x).dtype == np.float32
        np.testing.assert_allclose(fused(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lib", ["torchlite", "torch"])
def test_errors_as_torch(lib):
    m = nn if lib == "torchlite" else torch.nn
    utils = m.utils
    conv, bn = m.Conv2d(2, 3, 1), m.BatchNorm2d(3)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        utils.fuse_conv_bn_eval(conv, bn)
    conv.eval()
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        utils.fuse_conv_bn_eval(conv, bn)
    no_stats = m.BatchNorm2d(3, track_running_stats=False).eval()
    with pytest.raises(AssertionError, match="bn.running_mean and bn.running_var must not be None"):
        utils.fuse_conv_bn_eval(conv, no_stats)
    lin, bn4 = m.Linear(2, 3).eval(), m.BatchNorm1d(4).eval()
    with pytest.raises(AssertionError, match=r"linear.out_features=3 and bn.num_features=4"):
        utils.fuse_linear_bn_eval(lin, bn4)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        utils.fuse_linear_bn_eval(lin.train(), m.BatchNorm1d(3).eval())
    with pytest.raises(RuntimeError, match="Expected a Module; got <class 'int'>"):
        utils.skip_init(int, 3)


def test_skip_init_shapes_dtypes_and_untouched_generator():
    torchlite.manual_seed(0)
    expected = torchlite.random.get_generator().random(3)
    torchlite.manual_seed(0)
    lin = skip_init(nn.Linear, 5, out_features=2, bias=True, dtype=np.float64)
    bn = skip_init(nn.BatchNorm2d, 3)
    assert torchlite.random.get_generator().random(3).tolist() == expected.tolist()  # torch: the stream stays
    th = torch.nn.utils.skip_init(torch.nn.Linear, 5, out_features=2)
    assert type(lin) is nn.Linear and repr(lin) == repr(th)
    assert lin.weight.shape == tuple(th.weight.shape) and lin.weight.dtype == np.float64
    assert sorted(lin.state_dict()) == sorted(th.state_dict())
    th_bn = torch.nn.utils.skip_init(torch.nn.BatchNorm2d, 3)
    assert {k: np.shape(v) for k, v in bn.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in th_bn.state_dict().items()}
    assert bn.num_batches_tracked.dtype == np.int64
    # fresh memory: nothing shared with another module's arrays
    other = nn.Linear(5, 2)
    assert not np.shares_memory(lin.weight.data, other.weight.data)
    lin.load_state_dict({"weight": np.ones((2, 5)), "bias": np.zeros(2)})
    assert lin(np.ones((1, 5))).tolist() == [[5.0, 5.0]]


def test_skip_init_nested_modules_and_bad_args():
    seq = skip_init(nn.Sequential, nn.Linear(3, 4), nn.ReLU())
    assert seq[0].weight.shape == (4, 3)
    with pytest.raises(TypeError):
        skip_init(nn.Linear, 3)  # constructor errors pass through
    assert skip_init(nn.Linear, 3, 4, device="cpu").weight.shape == (4, 3)


def test_memory_format_converters_return_the_module_unchanged():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Conv3d(3, 1, 1))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    assert nn.utils.convert_conv2d_weight_memory_format(model, "channels_last") is model
    assert nn.utils.convert_conv3d_weight_memory_format(model, "channels_last_3d") is model
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())

"""Normalization layers against torch: outputs, input/weight/bias grads, running statistics
over several training steps then eval, plus float64 gradchecks, dtypes, reprs and errors."""
import warnings

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from parity import assert_close, check_parity, to_numpy
from torchlite.testing import gradcheck

DTYPES = [np.float64, np.float32]
BN_CASES = {  # name: (torchlite class, torch class, input shape with C = 3)
    "1d_NC": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
    "1d_NCL": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
    "2d": (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 3, 5)),
    "3d": (nn.BatchNorm3d, torch.nn.BatchNorm3d, (3, 3, 2, 3, 4)),
}
IN_CASES = {
    "1d": (nn.InstanceNorm1d, torch.nn.InstanceNorm1d, (4, 3, 7)),
    "2d": (nn.InstanceNorm2d, torch.nn.InstanceNorm2d, (3, 3, 4, 5)),
    "3d": (nn.InstanceNorm3d, torch.nn.InstanceNorm3d, (2, 3, 2, 3, 4)),
}


def randomize(torch_module, rng):
    """Non-trivial weights and running statistics, so every term of the math shows."""
    with torch.no_grad():
        for p in torch_module.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)) * 0.5 + 1))
        for name, b in torch_module.named_buffers():
            if name == "running_mean":
                b.copy_(torch.from_numpy(rng.standard_normal(tuple(b.shape))))
            elif name == "running_var":
                b.copy_(torch.from_numpy(rng.random(tuple(b.shape)) + 0.5))
            elif name == "num_batches_tracked":
                b.fill_(2)
    return torch_module


def data(rng, shape):
    return rng.standard_normal(shape) * 2 + 0.7


def train_then_eval(tl, tm, shape, dtype, steps=3):
    """Several training steps (buffers compared after each), then eval with and without grad."""
    rng = np.random.default_rng(1)
    for step in range(steps):
        check_parity(tl, tm, data(rng, shape), dtype=dtype, copy=step == 0)
    tl.eval()
    tm.eval()
    x = data(rng, shape)
    check_parity(tl, tm, x, dtype=dtype, copy=False)
    with torchlite.no_grad(), torch.no_grad():
        out = tl(x.astype(dtype))
        expected = to_numpy(tm(torch.from_numpy(x.astype(dtype))))
    assert out.dtype == dtype
    assert_close(out, expected, dtype, "eval output under no_grad")
    assert tl.saved_count == 0


# ----------------------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("case", list(BN_CASES))
def test_batchnorm_parity(case, affine, track, momentum, dtype):
    tl_cls, t_cls, shape = BN_CASES[case]
    kwargs = dict(momentum=momentum, affine=affine, track_running_stats=track)
    tm = randomize(t_cls(3, **kwargs).double(), np.random.default_rng(0))
    train_then_eval(tl_cls(3, **kwargs), tm, shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_without_bias_and_eps(dtype):
    tm = randomize(torch.nn.BatchNorm2d(3, eps=1e-3, bias=False).double(), np.random.default_rng(0))
    tl = nn.BatchNorm2d(3, eps=1e-3, bias=False)
    assert list(tl.state_dict()) == list(tm.state_dict())
    train_then_eval(tl, tm, (4, 3, 2, 3), dtype)


def test_batchnorm_called_twice_backprops_in_reverse_order():
    tm = randomize(torch.nn.BatchNorm2d(3).double(), np.random.default_rng(0))
    tl = nn.BatchNorm2d(3).double()
    tl.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(2)
    xs = [data(rng, (4, 3, 2, 2)) for _ in range(2)]
    gs = [rng.standard_normal((4, 3, 2, 2)) for _ in range(2)]
    txs = [torch.from_numpy(x).requires_grad_() for x in xs]
    outs = [tl(x) for x in xs]
    t_outs = [tm(t) for t in txs]
    dxs = [tl.backward(gs[1]), tl.backward(gs[0])][::-1]
    torch.autograd.backward(t_outs, [torch.from_numpy(g) for g in gs])
    for out, t_out, dx, t in zip(outs, t_outs, dxs, txs):
        assert_close(out, to_numpy(t_out), np.float64, "output")
        assert_close(dx, t.grad.numpy(), np.float64, "grad of input")
    assert_close(tl.weight.grad, tm.weight.grad.numpy(), np.float64, "grad of weight")
    assert_close(tl.running_var, tm.running_var.numpy(), np.float64, "running_var")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("case", list(BN_CASES))
def test_batchnorm_gradcheck(case, training):
    tl_cls, _, shape = BN_CASES[case]
    m = tl_cls(3).double()
    m.weight.data[:] = [0.5, 1.5, -2.0]
    m.bias.data[:] = [0.1, -0.3, 0.7]
    m.running_mean[:] = [0.2, -0.1, 0.4]
    m.running_var[:] = [0.5, 2.0, 1.3]
    m.train(training)
    assert gradcheck(m, data(np.random.default_rng(3), shape))


def test_batchnorm_float32_end_to_end_and_buffers():
    m = nn.BatchNorm2d(4)
    x = np.random.default_rng(0).standard_normal((5, 4, 3, 3)).astype(np.float32)
    out = m(x)
    dx = m.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == m.weight.grad.dtype == m.running_var.dtype == np.float32
    assert m.num_batches_tracked.dtype == np.int64 and m.num_batches_tracked.shape == ()
    assert int(m.num_batches_tracked) == 1
    state = m.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert state["num_batches_tracked"] is m.num_batches_tracked
    m.reset_running_stats()
    assert int(m.num_batches_tracked) == 0 and not m.running_mean.any() and (m.running_var == 1).all()
    m.weight.data[:] = 3
    m.reset_parameters()
    assert (m.weight.data == 1).all() and not m.bias.data.any()
    untracked = nn.BatchNorm1d(4, track_running_stats=False)
    assert untracked.running_mean is None and untracked.running_var is None
    assert untracked.num_batches_tracked is None and list(untracked.state_dict()) == ["weight", "bias"]


def test_batchnorm_errors():
    m = nn.BatchNorm2d(32)
    with pytest.raises(ValueError, match=r"^BatchNorm2d\(32, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                       r"track_running_stats=True\): expected input \(N, 32, H, W\), got shape \(8, 16, 5, 5\)$"):
        m(np.zeros((8, 16, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected input \(N, 32, H, W\), got shape \(8, 32, 5\)"):
        m(np.zeros((8, 32, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected input \(N, 3\) or \(N, 3, L\), got shape \(2, 3, 4, 4\)"):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"expected input \(N, 3, D, H, W\)"):
        nn.BatchNorm3d(3)(np.zeros((2, 3, 4, 4)))
    one = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, "
                                         r"got input size \[1, 3\]"):
        one(np.zeros((1, 3)))
    assert int(one.num_batches_tracked) == 0
    one.eval()
    assert one(np.zeros((1, 3))).shape == (1, 3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        nn.BatchNorm2d(3, track_running_stats=False).eval()(np.zeros((1, 3, 1, 1)))
    with pytest.raises(ValueError, match="eps must be positive during training"):
        F.batch_norm(np.ones((2, 3)), None, None, training=True, eps=0.0)
    with pytest.raises(RuntimeError, match="nothing saved"):
        nn.BatchNorm1d(3).backward(np.zeros((2, 3)))


def test_batchnorm_no_grad_and_mode_switch_keep_nothing():
    m = nn.BatchNorm2d(2)
    x = np.ones((3, 2, 2, 2), np.float32) * np.arange(3, dtype=np.float32)[:, None, None, None]
    with torchlite.no_grad():
        m(x)
    assert m.saved_count == 0
    m(x)
    assert m.saved_count == 1
    m.eval()
    assert m.saved_count == 0


# ----------------------------------------------------------------------------------- instance norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("track", [False, True])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("case", list(IN_CASES))
def test_instancenorm_parity(case, affine, track, momentum, dtype):
    tl_cls, t_cls, shape = IN_CASES[case]
    kwargs = dict(momentum=momentum, affine=affine, track_running_stats=track)
    tm = randomize(t_cls(3, **kwargs).double(), np.random.default_rng(0))
    train_then_eval(tl_cls(3, **kwargs), tm, shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(IN_CASES))
def test_instancenorm_unbatched(case, dtype):
    tl_cls, t_cls, shape = IN_CASES[case]
    kwargs = dict(affine=True, track_running_stats=True)
    tm = randomize(t_cls(3, **kwargs).double(), np.random.default_rng(0))
    train_then_eval(tl_cls(3, **kwargs), tm, shape[1:], dtype, steps=2)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("case", list(IN_CASES))
def test_instancenorm_gradcheck(case, training):
    tl_cls, _, shape = IN_CASES[case]
    m = tl_cls(3, affine=True, track_running_stats=True).double()
    m.weight.data[:] = [0.5, 1.5, -2.0]
    m.bias.data[:] = [0.1, -0.3, 0.7]
    m.running_var[:] = [0.5, 2.0, 1.3]
    m.train(training)
    assert gradcheck(m, data(np.random.default_rng(3), shape))
    assert gradcheck(m, data(np.random.default_rng(4), shape[1:]))


def test_instancenorm_errors_and_warning():
    m = nn.InstanceNorm2d(3, affine=True)
    with pytest.raises(ValueError, match=r"^InstanceNorm2d\(3, .*\): expected input \(N, 3, H, W\) or "
                                         r"\(3, H, W\), got shape \(2, 4, 5, 5\)$"):
        m(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"got shape \(5, 5\)"):
        m(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        nn.InstanceNorm1d(3)(np.zeros((2, 3, 1)))
    with pytest.warns(UserWarning, match="does not match num_features"):
        out = nn.InstanceNorm1d(3)(np.random.default_rng(0).standard_normal((2, 4, 6)))
    expected = torch.nn.functional.instance_norm(torch.from_numpy(np.random.default_rng(0).standard_normal((2, 4, 6))))
    assert_close(out, expected.numpy(), np.float64, "output")


# ----------------------------------------------------------------------------------- layer norm
LN_SHAPES = [(6,), (5, 6), (3, 5, 6)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("normalized_shape", LN_SHAPES)
def test_layernorm_parity(normalized_shape, affine, bias, dtype):
    rng = np.random.default_rng(0)
    tm = randomize(torch.nn.LayerNorm(normalized_shape, 1e-4, affine, bias).double(), rng)
    tl = nn.LayerNorm(normalized_shape, 1e-4, affine, bias)
    for i, lead in enumerate([(4,), (2, 3), ()]):
        check_parity(tl, tm, data(rng, (*lead, *(3, 5, 6)[3 - len(normalized_shape):])), dtype=dtype, copy=i == 0)


def test_layernorm_int_shape_and_gradcheck():
    m = nn.LayerNorm(4).double()
    assert m.normalized_shape == (4,)
    m.weight.data[:] = [0.5, 1.5, -2.0, 1.0]
    m.bias.data[:] = [0.1, -0.3, 0.7, 0.0]
    assert gradcheck(m, data(np.random.default_rng(0), (3, 4)))
    assert gradcheck(nn.LayerNorm((2, 3), elementwise_affine=False).double(), data(np.random.default_rng(1), (2, 2, 3)))


def test_layernorm_error():
    with pytest.raises(ValueError, match=r"^LayerNorm\(\(4, 5\), eps=1e-05, elementwise_affine=True, bias=True\): "
                                         r"expected input \(\*, 4, 5\), got shape \(2, 5, 4\)$"):
        nn.LayerNorm((4, 5))(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match=r"expected input \(\*, 4, 5\), got shape \(5,\)"):
        nn.LayerNorm((4, 5))(np.zeros(5))


# ----------------------------------------------------------------------------------- group norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("groups", [1, 2, 3, 6])
@pytest.mark.parametrize("shape", [(4, 6), (3, 6, 5), (2, 6, 3, 4), (2, 6, 2, 2, 3)])
def test_groupnorm_parity(shape, groups, affine, dtype):
    rng = np.random.default_rng(0)
    tm = randomize(torch.nn.GroupNorm(groups, 6, 1e-4, affine).double(), rng)
    if groups == 6 and len(shape) == 2:
        shape = (4, 6, 2)  # one value per group: the true input gradient is 0, torch's float32 one is rounding noise
    check_parity(nn.GroupNorm(groups, 6, 1e-4, affine), tm, data(rng, shape), dtype=dtype)


def test_groupnorm_without_bias_gradcheck_and_errors():
    tm = randomize(torch.nn.GroupNorm(2, 4, bias=False).double(), np.random.default_rng(0))
    check_parity(nn.GroupNorm(2, 4, bias=False), tm, data(np.random.default_rng(1), (3, 4, 5)))
    m = nn.GroupNorm(2, 4).double()
    m.weight.data[:] = [0.5, 1.5, -2.0, 1.0]
    m.bias.data[:] = [0.1, -0.3, 0.7, 0.0]
    assert gradcheck(m, data(np.random.default_rng(0), (2, 4, 3)))
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_groups \(2\)"):
        nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match=r"^GroupNorm\(2, 4, eps=1e-05, affine=True, bias=True\): "
                                         r"expected input \(N, 4, \*\), got shape \(2, 6, 3\)$"):
        m(np.zeros((2, 6, 3)))
    # Without affine parameters torch takes any channel count the groups divide.
    free = nn.GroupNorm(2, 4, affine=False)
    x = data(np.random.default_rng(2), (2, 6, 3))
    expected = torch.nn.functional.group_norm(torch.from_numpy(x), 2)
    assert_close(free(x), expected.numpy(), np.float64, "output")


# ----------------------------------------------------------------------------------- RMS norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("normalized_shape", LN_SHAPES)
def test_rmsnorm_parity(normalized_shape, affine, eps, dtype):
    rng = np.random.default_rng(0)
    tm = randomize(torch.nn.RMSNorm(normalized_shape, eps, affine).double(), rng)
    shape = (2, 3, 5, 6)[4 - len(normalized_shape) - 1:]
    check_parity(nn.RMSNorm(normalized_shape, eps, affine), tm, data(rng, shape) * 0.1, dtype=dtype)


def test_rmsnorm_gradcheck():
    m = nn.RMSNorm((2, 3), eps=1e-4).double()
    m.weight.data[:] = np.arange(6).reshape(2, 3) * 0.5 - 1
    assert gradcheck(m, data(np.random.default_rng(0), (3, 2, 3)))
    assert gradcheck(nn.RMSNorm(3, elementwise_affine=False).double(), data(np.random.default_rng(1), (4, 3)))


# ----------------------------------------------------------------------------------- local response norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("shape", [(2, 5, 4), (2, 5, 3, 4), (2, 5, 2, 2, 3)])
def test_local_response_norm_parity(shape, size, dtype):
    args = (size, 0.3, 0.6, 1.5)
    check_parity(nn.LocalResponseNorm(*args), torch.nn.LocalResponseNorm(*args), data(np.random.default_rng(0), shape),
                 dtype=dtype)


def test_local_response_norm_gradcheck_and_dtype():
    m = nn.LocalResponseNorm(3, 0.5, 0.75, 1.0)
    assert gradcheck(m, data(np.random.default_rng(0), (2, 5, 2, 3)))
    x = data(np.random.default_rng(1), (2, 5, 3)).astype(np.float32)
    assert m(x).dtype == m.backward(np.ones_like(x)).dtype == np.float32


# ----------------------------------------------------------------------------------- CrossMapLRN2d (legacy)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("shape", [(2, 1, 3, 2), (2, 3, 2, 3), (1, 9, 2, 2)])
def test_cross_map_lrn2d_parity(shape, size, dtype):
    # torch's legacy forward (channel 0 never leaves the running sum) and its legacy backward, number for number
    args = (size, 0.3, 0.6, 1.5)
    check_parity(nn.CrossMapLRN2d(*args), torch.nn.CrossMapLRN2d(*args), data(np.random.default_rng(0), shape),
                 dtype=dtype)


def test_cross_map_lrn2d_size_one_and_defaults():
    x = data(np.random.default_rng(0), (2, 4, 2, 3))
    m = nn.CrossMapLRN2d(1)
    out = m(x)  # forward as torch's; its backward fails in torch and here
    assert_close(out, torch.nn.CrossMapLRN2d(1)(torch.from_numpy(x)).numpy(), np.float64, "output")
    with pytest.raises(ValueError, match=r"^CrossMapLRN2d\(1, alpha=0.0001, beta=0.75, k=1\): the legacy backward "
                                         r"needs size >= 2"):
        m.backward(np.ones_like(out))
    check_parity(nn.CrossMapLRN2d(3), torch.nn.CrossMapLRN2d(3), x * 30)  # default alpha, beta and k


def test_cross_map_lrn2d_is_lrn_for_one_channel_and_not_beyond():
    # one channel: the exact LocalResponseNorm (a true gradient); more: torch's legacy numbers, not the exact ones
    x = data(np.random.default_rng(0), (2, 1, 2, 3))
    m = nn.CrossMapLRN2d(3, 0.5, 0.75, 1.0)
    assert gradcheck(m, x)
    x = data(np.random.default_rng(1), (2, 4, 2, 3))
    lrn, legacy = nn.LocalResponseNorm(3, 0.5, 0.75, 1.0), nn.CrossMapLRN2d(3, 0.5, 0.75, 1.0)
    assert np.abs(legacy(x) - lrn(x)).max() > 1e-3  # channel 0's square stays in every window
    torch_legacy = torch.nn.CrossMapLRN2d(3, 0.5, 0.75, 1.0)
    xt = torch.from_numpy(x)
    assert not torch.autograd.gradcheck(torch_legacy, (xt.requires_grad_(),), raise_exception=False)
    assert not gradcheck(legacy, x, raise_exception=False)


def test_cross_map_lrn2d_errors_dtype_and_no_grad():
    m = nn.CrossMapLRN2d(3)
    with pytest.raises(ValueError, match=r"^CrossMapLRN2d\(3, alpha=0.0001, beta=0.75, k=1\): expected input "
                                         r"\(N, C, H, W\), got shape \(2, 3, 4\)"):
        m(np.ones((2, 3, 4)))
    x = data(np.random.default_rng(0), (2, 3, 2, 2)).astype(np.float32)
    assert m(x).dtype == m.backward(np.ones_like(x)).dtype == np.float32
    with torchlite.no_grad():
        m(x)
    with pytest.raises(RuntimeError):
        m.backward(np.ones_like(x))


# ----------------------------------------------------------------------------------- shared
@pytest.mark.parametrize("build", [
    lambda m: m.BatchNorm1d(3), lambda m: m.BatchNorm2d(32, momentum=None, affine=False),
    lambda m: m.BatchNorm3d(4, eps=1e-3, track_running_stats=False, bias=False),
    lambda m: m.InstanceNorm1d(3), lambda m: m.InstanceNorm2d(5, affine=True, track_running_stats=True),
    lambda m: m.InstanceNorm3d(2, momentum=None),
    lambda m: m.LayerNorm(4), lambda m: m.LayerNorm([4, 5], eps=1e-6, elementwise_affine=False),
    lambda m: m.LayerNorm((2, 3), bias=False), lambda m: m.GroupNorm(2, 4), lambda m: m.GroupNorm(3, 6, affine=False),
    lambda m: m.RMSNorm(4), lambda m: m.RMSNorm([2, 3], eps=1e-5, elementwise_affine=False),
    lambda m: m.LocalResponseNorm(2), lambda m: m.LocalResponseNorm(3, alpha=1e-3, beta=0.5, k=2.0),
    lambda m: m.CrossMapLRN2d(5), lambda m: m.CrossMapLRN2d(2, alpha=1e-3, beta=0.5, k=2.0),
])
def test_repr_and_state_dict_keys_match_torch(build):
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].shape == tuple(value.shape)
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())


@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("build,shape", [
    (lambda: nn.InstanceNorm2d(3, affine=True), (2, 3, 4, 4)), (lambda: nn.LayerNorm(4), (3, 4)),
    (lambda: nn.GroupNorm(2, 4), (2, 4, 3)), (lambda: nn.RMSNorm(4), (3, 4)),
    (lambda: nn.BatchNorm1d(4, affine=False), (3, 4)),
])
def test_float32_layers_stay_float32(build, shape, input_dtype):
    m = build()
    out = m(np.random.default_rng(0).standard_normal(shape).astype(input_dtype))
    dx = m.backward(np.ones(shape, input_dtype))
    assert out.dtype == dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in m.parameters())


def test_needs_input_grad_false_skips_input_gradient():
    m = nn.BatchNorm2d(3)
    m.needs_input_grad = False
    m(np.random.default_rng(0).standard_normal((2, 3, 2, 2)))
    assert m.backward(np.ones((2, 3, 2, 2))) is None
    assert m.weight.grad is not None


def test_functional_matches_torch_functional():
    rng = np.random.default_rng(0)
    x = data(rng, (4, 3, 5))
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = np.zeros(3), np.ones(3)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
    expected = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.3)
    assert_close(out, expected.numpy(), np.float64, "batch_norm")
    assert_close(rv, trv.numpy(), np.float64, "running_var")
    assert_close(F.layer_norm(x, (5,)), torch.nn.functional.layer_norm(tx, (5,)).numpy(), np.float64, "layer_norm")
    assert_close(F.group_norm(x, 3, w, b), torch.nn.functional.group_norm(tx, 3, tw, tb).numpy(), np.float64, "gn")
    assert_close(F.instance_norm(x), torch.nn.functional.instance_norm(tx).numpy(), np.float64, "instance_norm")
    assert_close(F.rms_norm(x, (3, 5)), torch.nn.functional.rms_norm(tx, (3, 5)).numpy(), np.float64, "rms_norm")


def test_functional_backward_twins_match_torch_autograd():
    rng = np.random.default_rng(0)
    x, g = data(rng, (4, 6, 5)), rng.standard_normal((4, 6, 5))
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    rm, rv = rng.standard_normal(6), rng.random(6) + 0.5
    tf = torch.nn.functional
    cases = [  # (ours forward, ours backward, torch forward of (x, w, b))
        (lambda: F.batch_norm(x, rm.copy(), rv.copy(), w, b, True, return_saved=True),
         lambda *s: F.batch_norm_backward(g, x, *s, w, b, True),
         lambda tx, tw, tb: tf.batch_norm(tx, None, None, tw, tb, True)),
        (lambda: F.batch_norm(x, rm, rv, w, b, False, return_saved=True),
         lambda *s: F.batch_norm_backward(g, x, *s, w, b, False),
         lambda tx, tw, tb: tf.batch_norm(tx, torch.from_numpy(rm), torch.from_numpy(rv), tw, tb, False)),
        (lambda: F.instance_norm(x, weight=w, bias=b, return_saved=True),
         lambda *s: F.instance_norm_backward(g, x, *s, w, b),
         lambda tx, tw, tb: tf.instance_norm(tx, weight=tw, bias=tb)),
        (lambda: F.group_norm(x, 3, w, b, return_saved=True),
         lambda *s: F.group_norm_backward(g, x, *s, w, b),
         lambda tx, tw, tb: tf.group_norm(tx, 3, tw, tb)),
        (lambda: F.layer_norm(x, (5,), w[:5], b[:5], return_saved=True),
         lambda *s: F.layer_norm_backward(g, x, *s, w[:5], b[:5]),
         lambda tx, tw, tb: tf.layer_norm(tx, (5,), tw[:5], tb[:5])),
        (lambda: F.rms_norm(x, (5,), w[:5], return_saved=True),
         lambda *s: (*F.rms_norm_backward(g, x, *s, w[:5]), None),
         lambda tx, tw, tb: tf.rms_norm(tx, (5,), tw[:5])),
        (lambda: F.local_response_norm(x, 3, return_saved=True),
         lambda *s: (F.local_response_norm_backward(g, x, *s, 3), None, None),
         lambda tx, tw, tb: tf.local_response_norm(tx, 3)),
    ]
    for i, (forward, backward, torch_forward) in enumerate(cases):
        out, *saved = forward()
        grads = backward(*saved)
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        t_out = torch_forward(tx, tw, tb)
        t_out.backward(torch.from_numpy(g))
        assert_close(out, t_out.detach().numpy(), np.float64, f"case {i} output")
        for name, ours, t in zip(("input", "weight", "bias"), grads, (tx, tw, tb)):
            if ours is not None:
                assert_close(ours, t.grad.numpy()[:ours.shape[0]] if name != "input" else t.grad.numpy(),
                             np.float64, f"case {i} grad of {name}")


def test_sync_batch_norm_in_nn_is_batch_norm_in_one_process():
    import torchlite.distributed as dist

    assert nn.SyncBatchNorm is dist.SyncBatchNorm
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    check_parity(nn.SyncBatchNorm(3), torch.nn.BatchNorm2d(3), x)


@pytest.mark.parametrize("make", [lambda **k: nn.BatchNorm2d(3, **k), lambda **k: nn.InstanceNorm1d(3, affine=True, **k),
                                  lambda **k: nn.LayerNorm(3, **k), lambda **k: nn.GroupNorm(1, 3, **k),
                                  lambda **k: nn.RMSNorm(3, **k)])
def test_norm_layers_take_device_and_dtype_as_torch(make):
    m = make(device="cpu", dtype=np.float64)
    assert all(v.dtype == np.float64 for v in m.state_dict().values() if v.dtype.kind == "f")
    with pytest.raises(ValueError, match="runs on the CPU"):
        make(device="cuda")


@pytest.mark.parametrize("make", [lambda: nn.Linear(2, 2, device="cuda"), lambda: nn.Conv2d(1, 1, 1, device="cuda"),
                                  lambda: nn.LSTM(2, 2, device="cuda"), lambda: nn.Embedding(3, 2, device="cuda"),
                                  lambda: nn.MultiheadAttention(4, 2, device="cuda"), lambda: nn.PReLU(device="cuda")])
def test_layers_refuse_other_devices(make):
    with pytest.raises(ValueError, match="runs on the CPU"):
        make()

"""Lazy convolutions and norms against torch's: materialization at the first forward (shapes,
init, class and repr after), outputs and every gradient once materialized, state_dict loading
before the first forward, reprs before, errors."""
import re
import warnings

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from parity import check_parity, copy_state
from torchlite.testing import gradcheck

DTYPES = [np.float64, np.float32]

# (class name, constructor args, input shape): strides, padding (numbers, 'same', non-zero
# modes), dilation, groups, output_padding, no bias, unbatched inputs.
CONV_CASES = [
    ("LazyConv1d", (4, 3), dict(stride=2, padding=1), (2, 3, 9)),
    ("LazyConv1d", (4, 2), dict(groups=2, bias=False), (6, 5)),
    ("LazyConv2d", (4, 3), {}, (2, 3, 6, 5)),
    ("LazyConv2d", (6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False),
     (2, 4, 7, 6)),
    ("LazyConv2d", (4, 3), dict(padding=1, padding_mode="reflect"), (3, 5, 6)),
    ("LazyConv2d", (2, 2), dict(padding="same", dilation=2), (1, 3, 5, 4)),
    ("LazyConv3d", (2, 2), dict(stride=(1, 2, 1), padding=1), (1, 2, 3, 4, 3)),
    ("LazyConvTranspose1d", (4, 3), dict(stride=2, output_padding=1, groups=2), (2, 6, 5)),
    ("LazyConvTranspose2d", (3, (3, 2)), dict(stride=2, padding=1, output_padding=(1, 0), bias=False), (2, 2, 4, 3)),
    ("LazyConvTranspose2d", (4, 3), dict(stride=2, groups=2, dilation=2), (4, 3, 4)),
    ("LazyConvTranspose3d", (2, 2), dict(stride=2, padding=(0, 1, 0)), (1, 3, 2, 3, 2)),
]

# (class name, kwargs, input shape, train): affine / bias / track_running_stats / momentum on
# and off, eval with running statistics, unbatched instance norm (C == L: torch reads dim 1).
NORM_CASES = [
    ("LazyBatchNorm1d", {}, (4, 3), True),
    ("LazyBatchNorm1d", dict(momentum=None, eps=1e-3), (4, 3, 5), True),
    ("LazyBatchNorm1d", dict(affine=False), (4, 3, 5), False),
    ("LazyBatchNorm2d", {}, (3, 3, 2, 4), False),
    ("LazyBatchNorm2d", dict(bias=False, momentum=0.3), (3, 2, 2, 4), True),
    ("LazyBatchNorm2d", dict(track_running_stats=False), (3, 2, 2, 3), True),
    ("LazyBatchNorm3d", {}, (2, 3, 2, 3, 2), True),
    ("LazyInstanceNorm1d", {}, (2, 3, 5), True),
    ("LazyInstanceNorm1d", {}, (2, 3, 5), False),
    ("LazyInstanceNorm1d", dict(affine=False), (4, 4), True),
    ("LazyInstanceNorm2d", dict(affine=False, track_running_stats=False), (2, 3, 4, 5), True),
    ("LazyInstanceNorm2d", dict(bias=False), (3, 3, 4), True),
    ("LazyInstanceNorm3d", dict(track_running_stats=False), (2, 2, 3, 2, 3), True),
    ("LazyInstanceNorm3d", {}, (3, 3, 2, 2), False),
]


def data(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def materialize(tl, th, x):
    """One forward on each (torch's lazy parameters must exist before their state can be copied)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's 'num_features not used' for a stateless InstanceNorm
        with torch.no_grad():
            th(torch.from_numpy(x).float())
    with torchlite.no_grad():
        tl(x.astype(np.float32))


def randomize(th, rng):
    """Non-trivial parameters and running statistics, so every term shows in the comparison."""
    with torch.no_grad():
        for p in th.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)) * 0.5 + 1))
        for name, b in th.named_buffers():
            if name == "running_mean":
                b.copy_(torch.from_numpy(rng.standard_normal(tuple(b.shape))))
            elif name == "running_var":
                b.copy_(torch.from_numpy(rng.random(tuple(b.shape)) + 0.5))


def has_state(th):
    return any(True for _ in th.parameters()) or th.running_mean is not None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}")
def test_conv_parity(case, dtype):
    name, args, kwargs, shape = case
    tl, th = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(tl) == repr(th)
    assert tl.has_uninitialized_params() and th.has_uninitialized_params()
    x = data(shape)
    materialize(tl, th, x)
    eager = name.replace("Lazy", "")
    assert type(tl) is getattr(nn, eager) and type(th) is getattr(torch.nn, eager)
    assert repr(tl) == repr(th)
    assert tl.weight.shape == tuple(th.weight.shape)
    out = check_parity(tl, th, x, dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", NORM_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{'train' if c[3] else 'eval'}")
def test_norm_parity(case, dtype):
    name, kwargs, shape, train = case
    tl, th = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(tl) == repr(th)
    assert tl.has_uninitialized_params() == th.has_uninitialized_params() == has_state(th)
    assert list(tl.state_dict()) == list(th.state_dict())
    x = data(shape)
    materialize(tl, th, x)
    eager = name.replace("Lazy", "")
    assert type(tl) is getattr(nn, eager) and type(th) is getattr(torch.nn, eager)
    channels = shape[1] if "Batch" in name or len(shape) == int(name[-2]) + 2 else shape[0]
    # torch never learns num_features of a module with nothing to shape; here it is always read.
    expected = repr(th) if has_state(th) else repr(th).replace("(0, ", f"({channels}, ", 1)
    assert repr(tl) == expected and tl.num_features == channels
    assert dict(tl.named_buffers()).keys() == dict(th.named_buffers()).keys()
    randomize(th, np.random.default_rng(2))
    tl.train(train), th.train(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = check_parity(tl, th, x, dtype=dtype)
    assert out.dtype == dtype


def test_norm_unbatched_channels_from_dim_0():
    """(C, L) with C != L: the channels are dim 0 (torch's lazy norm reads dim 1 and then fails)."""
    tl = nn.LazyInstanceNorm1d()
    x = data((3, 5))
    with torchlite.no_grad():
        tl(x)
    assert tl.num_features == 3 and tl.weight.shape == (3,) and tl.running_mean.shape == (3,)
    th = torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=True)
    randomize(th, np.random.default_rng(0))
    check_parity(tl, th, x, dtype=np.float64)


def test_conv_transpose_output_size():
    tl, th = nn.LazyConvTranspose2d(3, 3, stride=2), torch.nn.LazyConvTranspose2d(3, 3, stride=2)
    x = data((2, 4, 3, 4))
    with torch.no_grad():
        th(torch.from_numpy(x).float(), output_size=[8, 10])
    assert tl(x, output_size=[8, 10]).shape == (2, 3, 8, 10) and type(tl) is nn.ConvTranspose2d
    tl.clear_saved()
    check_parity(tl, th, x, forward_kwargs=dict(output_size=[8, 9]))


def test_sequential_of_lazy_layers():
    def build(lib):
        return lib.Sequential(lib.LazyConv2d(4, 3, padding=1), lib.LazyBatchNorm2d(), lib.ReLU(),
                              lib.LazyConvTranspose2d(2, 2, stride=2), lib.LazyInstanceNorm2d(), lib.Flatten(),
                              lib.LazyLinear(3))
    tl, th = build(nn), build(torch.nn)
    x = data((2, 3, 4, 5))
    materialize(tl, th, x)
    assert [type(m).__name__ for m in tl] == [type(m).__name__ for m in th]
    randomize(th, np.random.default_rng(3))
    for dtype in DTYPES:
        check_parity(tl, th, x, dtype=dtype)


def test_init_is_the_eager_layers_and_construction_draws_nothing():
    torchlite.manual_seed(5)
    lazy = nn.LazyConv2d(4, 3, groups=2)
    lazy(data((1, 6, 5, 5)).astype(np.float32))
    torchlite.manual_seed(5)
    eager = nn.Conv2d(6, 4, 3, groups=2)
    np.testing.assert_array_equal(lazy.weight.data, eager.weight.data)
    np.testing.assert_array_equal(lazy.bias.data, eager.bias.data)
    torchlite.manual_seed(5)
    lazy_t = nn.LazyConvTranspose1d(4, 3)
    lazy_t(data((2, 5, 3)).astype(np.float32))
    torchlite.manual_seed(5)
    eager_t = nn.ConvTranspose1d(5, 4, 3)
    np.testing.assert_array_equal(lazy_t.weight.data, eager_t.weight.data)
    np.testing.assert_array_equal(lazy_t.bias.data, eager_t.bias.data)
    bn = nn.LazyBatchNorm1d()
    with torchlite.no_grad():
        bn.eval()(data((2, 4)))
    np.testing.assert_array_equal(bn.weight.data, np.ones(4))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var, np.ones(4))
    assert bn.num_batches_tracked == 0 and bn.num_batches_tracked.dtype == np.int64


def test_parameters_keep_identity_and_dtype():
    m = nn.LazyConv1d(3, 2)
    params = list(m.parameters())
    m(data((2, 4, 6)).astype(np.float32))
    assert all(a is b for a, b in zip(params, m.parameters())) and len(params) == 2
    assert m.weight.dtype == np.float32
    m = nn.LazyConv1d(3, 2, dtype=np.float64)
    assert m(data((4, 6)).astype(np.float32)).dtype == np.float64
    m = nn.LazyBatchNorm1d(dtype=np.float64)
    m(data((3, 2)))
    assert m.weight.dtype == m.running_mean.dtype == np.float64
    m = nn.LazyInstanceNorm2d().double()  # a dtype set before the dry run is kept, as torch's
    m(data((2, 2, 3, 3)).astype(np.float32))
    assert m.weight.dtype == m.running_var.dtype == np.float64
    m = nn.LazyBatchNorm2d()
    assert m(data((2, 3, 2, 2)).astype(np.float32)).dtype == np.float32


def test_before_first_forward():
    for tl, th in [(nn.LazyConvTranspose3d(4, 3, groups=2), torch.nn.LazyConvTranspose3d(4, 3, groups=2)),
                   (nn.LazyBatchNorm2d(), torch.nn.LazyBatchNorm2d())]:
        assert repr(tl) == repr(th)
        assert tl.has_uninitialized_params()
        assert list(tl.state_dict()) == list(th.state_dict())
        assert all(v.size == 0 for k, v in tl.state_dict().items() if k != "num_batches_tracked")  # no values yet
        assert [n for n, _ in tl.named_parameters()] == [n for n, _ in th.named_parameters()]
        with pytest.raises(RuntimeError, match="nothing saved"):
            tl.backward(np.zeros((1, 4, 2, 2, 2)))
    assert not nn.LazyInstanceNorm1d(affine=False, track_running_stats=False).has_uninitialized_params()
    assert isinstance(nn.LazyConv2d(2, 1), nn.Conv2d) and isinstance(nn.LazyBatchNorm1d(), nn.BatchNorm1d)
    # the uninitialized state saves and loads as such: the module stays lazy
    lazy = nn.LazyConv2d(4, 3)
    other = nn.LazyConv2d(4, 3)
    assert other.load_state_dict(lazy.state_dict()) == ([], [])
    assert other.has_uninitialized_params() and other.in_channels == 0


@pytest.mark.parametrize("name, args, kwargs, shape", [
    ("Conv2d", (6, 4, 3), dict(groups=2), (2, 6, 5, 5)),
    ("ConvTranspose1d", (6, 4, 3), dict(groups=2, stride=2), (2, 6, 4)),
    ("Conv3d", (2, 3, 2), dict(bias=False), (1, 2, 3, 3, 3)),
    ("BatchNorm1d", (3,), {}, (4, 3, 2)),
    ("BatchNorm2d", (3,), dict(affine=False), (4, 3, 2, 2)),
    ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True), (2, 3, 3, 3)),
])
def test_load_state_dict_before_first_forward(name, args, kwargs, shape):
    th = getattr(torch.nn, name)(*args, **kwargs)
    randomize(th, np.random.default_rng(4))
    with torch.no_grad():
        for b in th.buffers():
            if b.dtype == torch.long:
                b.fill_(7)
    tl = getattr(nn, "Lazy" + name)(*args[1:], **kwargs)
    copy_state(tl, th)
    assert not tl.has_uninitialized_params() and type(tl).__name__ == "Lazy" + name
    for key, value in th.state_dict().items():
        np.testing.assert_array_equal(tl.state_dict()[key], value.numpy())
    assert repr(tl) == "Lazy" + repr(th)
    check_parity(tl, th, data(shape), copy=False)
    assert type(tl) is getattr(nn, name) and repr(tl) == repr(th)


def test_load_state_dict_assign_and_partial():
    src = nn.Conv1d(4, 2, 3)
    tl = nn.LazyConv1d(2, 3)
    tl.load_state_dict(src.state_dict(), assign=True)
    np.testing.assert_array_equal(tl.weight.data, src.weight.data)
    assert tl.weight.data is not src.weight.data and tl.in_channels == 4
    bn = nn.LazyBatchNorm1d()
    missing, unexpected = bn.load_state_dict({"weight": np.full(3, 2.0)}, strict=False)
    assert missing == ["bias", "running_mean", "running_var", "num_batches_tracked"] and unexpected == []
    np.testing.assert_array_equal(bn.weight.data, np.full(3, 2.0))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(3))
    np.testing.assert_array_equal(bn.running_var, np.ones(3))
    assert bn.weight.dtype == np.float32


def test_failed_load_leaves_the_module_lazy():
    tl = nn.LazyConv2d(4, 2)
    before = repr(tl)
    with pytest.raises(ValueError, match=r"size mismatch for weight.*\(4, 6, 3, 3\).*\(4, 6, 2, 2\)"):
        tl.load_state_dict(nn.Conv2d(6, 4, 3).state_dict())
    assert tl.has_uninitialized_params() and repr(tl) == before and tl.weight.shape == (4, 0, 2, 2)
    bn = nn.LazyBatchNorm1d()
    state = nn.BatchNorm1d(3).state_dict()
    with pytest.raises(ValueError, match="Unexpected key"):
        bn.load_state_dict(dict(state, extra=np.zeros(1)))
    assert bn.has_uninitialized_params() and bn.num_features == 0 and bn.running_mean.shape == (0,)
    assert tl(data((2, 5, 4, 4))).shape == (2, 4, 3, 3) and tl.in_channels == 5


def test_gradcheck_after_materialization():
    conv = nn.LazyConvTranspose2d(2, 3, stride=2, groups=2, dtype=np.float64)
    x = data((2, 4, 3, 2))
    conv(x)
    conv.clear_saved()
    assert gradcheck(conv, x)
    bn = nn.LazyBatchNorm2d(dtype=np.float64)
    bn(x)
    bn.clear_saved()
    assert gradcheck(bn, x)


@pytest.mark.parametrize("name, args, shape", [
    ("LazyConv2d", (4, 3), (6, 5)),
    ("LazyConv1d", (4, 3), (2, 3, 5, 5)),
    ("LazyConvTranspose3d", (4, 3), (2, 3, 5)),
    ("LazyBatchNorm2d", (), (2, 3, 5)),
    ("LazyBatchNorm1d", (), (6,)),
    ("LazyInstanceNorm1d", (), (2, 3, 4, 5)),
])
def test_wrong_rank_is_refused_and_leaves_the_module_lazy(name, args, shape):
    module = getattr(nn, name)(*args)
    before = repr(module)
    with pytest.raises(ValueError, match=r"^" + re.escape(before) + r": expected input \(.*C.*\), got shape "
                       + re.escape(str(shape))):
        module(np.zeros(shape, dtype=np.float32))
    assert module.has_uninitialized_params() and repr(module) == before


def test_other_errors():
    m = nn.LazyConv2d(4, 3, groups=2)
    with pytest.raises(ValueError, match=r"^LazyConv2d\(0, 4.*groups=2\): in_channels \(3\) .* divisible by groups"):
        m(np.zeros((1, 3, 5, 5)))
    assert m.has_uninitialized_params()
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.LazyConv2d(3, 3, groups=2)  # out_channels is known: checked at construction
    with pytest.raises(TypeError, match=r"^LazyBatchNorm1d\(0.*floating-point input"):
        nn.LazyBatchNorm1d()(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="cuda"):
        nn.LazyBatchNorm1d(device="cuda")
    with pytest.raises(ValueError, match="cuda"):
        nn.LazyConv1d(2, 3, device="cuda:0")
    m = nn.LazyConv2d(2, 3)
    m(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 2.*expected input \(N, 3, H, W\)"):
        m(np.zeros((1, 4, 4, 4)))  # materialized: the eager layer's checks from now on


def test_state_dict_loads_into_lazy_layers_inside_a_container():
    src = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    dst = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d())
    dst.load_state_dict(src.state_dict())
    for (k, v), w in zip(src.state_dict().items(), dst.state_dict().values()):
        np.testing.assert_array_equal(v, w, err_msg=k)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    src.eval(), dst.eval()
    np.testing.assert_array_equal(src(x), dst(x))


def test_refused_nested_load_leaves_the_lazy_layer_lazy():
    dst = nn.Sequential(nn.LazyConv2d(4, 3), nn.Linear(2, 2))
    bad = {**nn.Sequential(nn.Conv2d(3, 4, 3)).state_dict(), "1.weight": np.zeros((5, 5), np.float32)}
    with pytest.raises(ValueError):
        dst.load_state_dict(bad, strict=False)
    assert dst[0].has_uninitialized_params()


def test_lazy_linear_matches_torch_and_loads_before_forward():
    tl, th = nn.LazyLinear(3), torch.nn.LazyLinear(3)
    assert repr(tl) == repr(th) and tl.has_uninitialized_params()
    x = data((2, 5))
    materialize(tl, th, x)
    assert type(tl) is nn.Linear and repr(tl) == repr(th)
    randomize(th, np.random.default_rng(4))
    for dtype in DTYPES:
        check_parity(tl, th, x, dtype=dtype)
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(tl.state_dict())
    assert fresh.in_features == 5
    np.testing.assert_array_equal(fresh(x.astype(np.float32)), tl.float()(x.astype(np.float32)))


def test_lazy_linear_weights_equal_an_eager_layer_after_the_same_seed():
    torchlite.manual_seed(7)
    eager = nn.Linear(4, 3)
    torchlite.manual_seed(7)
    lazy = nn.LazyLinear(3)
    lazy(np.zeros((1, 4), np.float32))
    np.testing.assert_array_equal(eager.weight.data, lazy.weight.data)
    np.testing.assert_array_equal(eager.bias.data, lazy.bias.data)

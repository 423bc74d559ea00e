"""Sequential's execution plan: a ReLU before a max pool runs after it, and a ReLU overwrites arrays
only Sequential holds. Values and gradients must stay torch's, and no user array may change."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from torchlite.nn import _fusion
from torchlite.nn._fusion import plan


@pytest.fixture(autouse=True)
def _blocks_for_small_layers(monkeypatch):
    """These tests use few channels: plan the blocks hand-off for them too (see test_plan_blocks_threshold)."""
    monkeypatch.setattr(_fusion, "BLOCKS_MIN_CHANNELS", 1)

from parity import check_parity


def _both(build):
    return build(nn), build(torch.nn)


def _cnn(m):
    return m.Sequential(
        m.Conv2d(2, 4, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
        m.Conv2d(4, 6, 3), m.ReLU(), m.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        m.Flatten(), m.Linear(6 * 2 * 2, 5), m.ReLU(), m.Linear(5, 3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("data", ["normal", "ties"])
def test_fused_cnn_matches_torch(dtype, data):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 8, 8))
    if data == "ties":  # many equal values and exact zeros, before and after the ReLU
        x = rng.integers(-2, 3, size=x.shape).astype(float)
    check_parity(*_both(_cnn), x, dtype=dtype)


def test_fused_relu_pool_with_nan_matches_torch():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 6))
    x[0, 1, 1, 2] = np.nan
    x[1, 2, 0, 0] = -np.inf
    tl = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))
    th = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.MaxPool2d(2))
    check_parity(tl, th, x)


def test_plan_runs_pool_before_relu_overwrites_fresh_outputs_and_hands_pools_conv_output():
    conv, relu, pool = nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2)
    lin, relu2 = nn.Linear(2, 2), nn.ReLU()
    steps = plan([conv, relu, pool, nn.Flatten(), lin, relu2])
    assert [(type(m).__name__, how) for m, how in steps] == [
        ("Conv2d", ("pool_blocks", (2, 2), False)), ("MaxPool2d", "from_blocks"), ("ReLU", "overwrite"),
        ("Flatten", None), ("Linear", None), ("ReLU", "overwrite")]
    # a pool whose windows overlap, or a grouped convolution, gets the output channels-last instead
    for conv, pool in [(nn.Conv2d(1, 2, 3), nn.MaxPool2d(3, stride=2)), (nn.Conv2d(2, 2, 3, groups=2), pool),
                       (nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, padding=1)), (nn.Conv1d(1, 2, 3), pool)]:
        assert [how for _, how in plan([conv, pool])] == ["channels_last", None]


@pytest.mark.parametrize("modules", [
    lambda: [nn.ReLU()],                                      # the user's own input
    lambda: [nn.Identity(), nn.ReLU()],                       # still the user's input
    lambda: [nn.Flatten(), nn.ReLU()],                        # a view of it
    lambda: [nn.ReLU(inplace=True), nn.MaxPool2d(2)],         # asked to write in place: torch's order
    lambda: [nn.ReLU(), nn.MaxPool2d(2, return_indices=True)],  # indices would differ on ties
    lambda: [nn.Sigmoid(), nn.ReLU()],                        # keeps its output for backward
])
def test_plan_leaves_other_arrays_alone(modules):
    steps = plan(modules())
    assert [type(m) for m, _ in steps] == [type(m) for m in modules()]
    assert not any(o for _, o in steps)


@pytest.mark.parametrize("grad", [True, False])
def test_user_input_and_saved_arrays_are_never_overwritten(grad):
    x = np.random.default_rng(2).standard_normal((2, 1, 6, 6)).astype(np.float32)
    keep = x.copy()
    model = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
    with torchlite.set_grad_enabled(grad):
        y = model(x)
    np.testing.assert_array_equal(x, keep)
    assert y.min() >= 0


def test_relu_module_reused_in_one_model():
    def build(m):
        relu = m.ReLU()
        return m.Sequential(m.Conv2d(1, 3, 3), relu, m.MaxPool2d(2), m.Conv2d(3, 3, 1), relu, m.Flatten(),
                            m.Linear(12, 4), relu)
    tl, th = _both(build)
    check_parity(tl, th, np.random.default_rng(3).standard_normal((2, 1, 6, 6)))


def test_two_forwards_then_two_backwards():
    tl, th = _both(_cnn)
    tl.to(np.float64), th.to(torch.float64)
    tl.load_state_dict({k: v.numpy() for k, v in th.state_dict().items()})
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((2, 2, 8, 8)) for _ in range(2)]
    gs = []
    for x in xs:
        y = tl(x)
        gs.append(rng.standard_normal(y.shape))
    dxs = [tl.backward(g) for g in reversed(gs)][::-1]
    for x, g, dx in zip(xs, gs, dxs):
        tx = torch.from_numpy(x).requires_grad_()
        th(tx).backward(torch.from_numpy(g))
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_anomaly_mode_runs_children_in_their_own_order():
    tl, th = _both(_cnn)
    with torchlite.detect_anomaly():
        check_parity(tl, th, np.random.default_rng(5).standard_normal((2, 2, 8, 8)))


def test_subclass_with_its_own_forward_still_backpropagates():
    class Net(nn.Sequential):
        def forward(self, x):
            for m in self:
                x = m(x)
            return x

    net = Net(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = np.ones((2, 3), np.float32)
    y = net(x)
    assert net.backward(np.ones_like(y)).shape == x.shape


def test_relu_gradient_passes_at_nan_like_torch():
    x = np.array([[-1.0, np.nan, 0.0, 2.0]])
    check_parity(nn.ReLU(), torch.nn.ReLU(), x)


# Convolutions that take the channels-last path (pixel-major columns, one GEMM: C_in/groups * taps >= 256)
# into max pools of every kind: tiled, overlapping, padded, ceil_mode, 1d/2d/3d.
CHANNELS_LAST_CASES = {
    "2d-groups-overlap": (lambda m: m.Sequential(m.Conv2d(64, 8, 3, groups=2, bias=False),
                                                 m.MaxPool2d(3, stride=1), m.ReLU()), (2, 64, 7, 6)),
    "2d-padded-ceil": (lambda m: m.Sequential(m.Conv2d(32, 5, (3, 2), stride=(1, 2), padding_mode="reflect",
                                                        padding=1), m.MaxPool2d(3, 2, padding=1, ceil_mode=True)),
                       (3, 32, 7, 9)),
    "2d-stride-overlap": (lambda m: m.Sequential(m.Conv2d(32, 6, 3, padding=1), m.ReLU(), m.MaxPool2d(2, 1)),
                          (2, 32, 6, 6)),
    "1d-dilated-pool": (lambda m: m.Sequential(m.Conv1d(64, 4, 5, padding=2), m.ReLU(), m.MaxPool1d(2, dilation=2),
                                               m.Linear(4, 3)), (2, 64, 10)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CHANNELS_LAST_CASES)
def test_conv_into_pool_channels_last_matches_torch(name, dtype):
    build, shape = CHANNELS_LAST_CASES[name]
    tl, th = _both(build)
    assert plan(list(tl))[0][1] == "channels_last"
    x = np.random.default_rng(3).standard_normal(shape)
    check_parity(tl, th, x, dtype=dtype)


def test_channels_last_conv_output_and_pool_gradient_keep_the_layout():
    conv, pool = nn.Conv2d(32, 6, 3, padding=1), nn.MaxPool2d(2)
    x = np.random.default_rng(4).standard_normal((2, 32, 6, 6)).astype(np.float32)
    y = conv.forward_channels_last(x)
    assert not y.flags.c_contiguous and np.moveaxis(y, 1, -1).flags.c_contiguous
    conv.backward(np.ones_like(y))
    np.testing.assert_allclose(y, conv(x), rtol=1e-6)
    conv.backward(np.ones_like(y))
    pool(y)
    dy = pool.backward(np.ones((2, 6, 3, 3), np.float32))
    assert np.moveaxis(dy, 1, -1).flags.c_contiguous and dy.shape == y.shape


def test_max_pool_indices_of_a_channels_last_view_match_torch():
    x = np.random.default_rng(5).integers(-2, 3, size=(2, 5, 6, 3)).astype(np.float64)  # ties
    view = np.moveaxis(x, -1, 1)  # (2, 3, 5, 6) over channels-last memory
    out, idx = torchlite.nn.functional.max_pool2d(view, 2, return_indices=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(torch.from_numpy(np.ascontiguousarray(view)), 2,
                                                  return_indices=True)
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(idx, t_idx.numpy())


# Convolutions into max pools whose windows tile their output (kernel = stride, no padding or dilation):
# the convolution computes only the pixels the pool reads, grouped by window tap (F.conv_nd_blocks).
# Tap-major and pixel-major columns, cropped edges (floor mode), strided/dilated/rectangular cases,
# padding modes, 1d/2d/3d, unbatched, and a second convolution whose input gradient goes through blocks.
BLOCKS_CASES = {
    "2d-pixel-major": (lambda m: m.Sequential(m.Conv2d(32, 6, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
                                              m.Flatten()), (2, 32, 6, 6)),
    "2d-tap-major-cropped": (lambda m: m.Sequential(m.Conv2d(1, 4, 3), m.ReLU(), m.MaxPool2d(2)), (3, 1, 9, 8)),
    "2d-rect-strided-dilated": (lambda m: m.Sequential(m.Conv2d(2, 3, (3, 2), stride=(2, 1), dilation=(1, 2),
                                                                bias=False), m.MaxPool2d((2, 3))), (2, 2, 11, 12)),
    "2d-reflect-same": (lambda m: m.Sequential(m.Conv2d(3, 4, 3, padding="same", padding_mode="reflect"), m.ReLU(),
                                               m.MaxPool2d(2, 2)), (2, 3, 6, 6)),
    "2d-ceil-whole": (lambda m: m.Sequential(m.Conv2d(3, 4, 3), m.MaxPool2d(2, ceil_mode=True)), (2, 3, 6, 8)),
    "2d-ceil-partial": (lambda m: m.Sequential(m.Conv2d(3, 4, 3), m.MaxPool2d(2, ceil_mode=True)), (2, 3, 7, 8)),
    "2d-pool-1": (lambda m: m.Sequential(m.Conv2d(3, 4, 3), m.MaxPool2d(1)), (2, 3, 5, 5)),
    "2d-unbatched": (lambda m: m.Sequential(m.Conv2d(32, 6, 3, padding=1), m.ReLU(), m.MaxPool2d(2)), (32, 6, 6)),
    "1d": (lambda m: m.Sequential(m.Conv1d(64, 4, 5, padding=2), m.ReLU(), m.MaxPool1d(2), m.Linear(5, 3)),
           (2, 64, 10)),
    "1d-tap-major": (lambda m: m.Sequential(m.Conv1d(2, 4, 3), m.ReLU(), m.MaxPool1d(3)), (2, 2, 12)),
    "3d": (lambda m: m.Sequential(m.Conv3d(16, 4, (2, 3, 3)), m.MaxPool3d((1, 2, 2)), m.ReLU()), (2, 16, 3, 6, 6)),
    "two-convs": (lambda m: m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
                                         m.Conv2d(4, 8, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.Flatten(),
                                         m.Linear(8 * 2 * 2, 3)), (3, 1, 9, 10)),
    "two-convs-wide": (lambda m: m.Sequential(m.Conv2d(3, 32, 3, padding=1), m.ReLU(), m.MaxPool2d(2),
                                              m.Conv2d(32, 16, 3, padding=1), m.ReLU(), m.MaxPool2d(2)),
                       (2, 3, 8, 8)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("data", ["normal", "ties"])
@pytest.mark.parametrize("name", BLOCKS_CASES)
def test_conv_into_tiling_pool_matches_torch(name, data, dtype, monkeypatch):
    build, shape = BLOCKS_CASES[name]
    tl, th = _both(build)
    assert plan(list(tl))[0][1][0] == "pool_blocks"
    calls = []
    pool_blocks = torchlite.nn.functional.max_pool_blocks
    monkeypatch.setattr(torchlite.nn.functional, "max_pool_blocks", lambda *a, **k: calls.append(1) or
                        pool_blocks(*a, **k))
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape) if data == "normal" else rng.integers(-1, 2, size=shape).astype(float)
    check_parity(tl, th, x, dtype=dtype)
    # every case runs its pools from blocks but the one whose ceil_mode windows hang over the edge
    assert len(calls) == (0 if name == "2d-ceil-partial" else 2 if name.startswith("two-convs") else 1)


@pytest.mark.parametrize("name", ["2d-tap-major-cropped", "2d-pixel-major", "two-convs"])
def test_first_conv_into_pool_without_input_gradient_matches_torch(name):
    build, shape = BLOCKS_CASES[name]
    tl, th = _both(build)
    tl.needs_input_grad = False
    tl.load_state_dict({k: v.numpy() for k, v in th.state_dict().items()})
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    y = tl(x)
    g = np.random.default_rng(8).standard_normal(y.shape).astype(np.float32)
    assert tl.backward(g) is None
    th(torch.from_numpy(x)).backward(torch.from_numpy(g))
    for (name_, p), (_, tp) in zip(tl.named_parameters(), th.named_parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name_)


def test_conv_into_tiling_pool_same_values_with_and_without_grad():
    build, shape = BLOCKS_CASES["two-convs"]
    model = build(nn)
    x = np.random.default_rng(9).standard_normal(shape)
    y = model(x)
    model.backward(np.ones_like(y))
    with torchlite.no_grad():
        np.testing.assert_allclose(model(x), y, rtol=1e-12)
    with torchlite.detect_anomaly():  # children one by one, unfused
        np.testing.assert_allclose(model(x), y, rtol=1e-12)


def test_blocks_pool_output_is_channels_last_and_its_gradient_comes_back_as_blocks():
    conv, pool = nn.Conv2d(3, 4, 3), nn.MaxPool2d(2)
    x = np.random.default_rng(10).standard_normal((2, 3, 7, 9)).astype(np.float32)
    blocks, batched = conv.forward_pool_blocks(x, (2, 2), False)
    assert blocks.shape == (4, 2, 4, 2, 3) and batched
    y = pool.forward_blocks(blocks, batched)
    np.testing.assert_allclose(y, torchlite.nn.functional.max_pool2d(conv(x), 2), rtol=1e-6)
    conv.backward(np.ones((2, 4, 5, 7), np.float32))  # the plain forward's context
    assert np.moveaxis(y, 1, -1).flags.c_contiguous
    dblocks = pool.backward(np.ones_like(y))
    assert dblocks.shape == blocks.shape and dblocks.sum() == y.size
    dx = conv.backward(dblocks)
    assert dx.shape == x.shape
    with pytest.raises(ValueError, match="expected grad_output of shape"):
        conv.forward_pool_blocks(x, (2, 2), False)
        conv.backward(np.ones((2, 4, 5, 7), np.float32))


def test_plan_blocks_threshold(monkeypatch):
    monkeypatch.setattr(_fusion, "BLOCKS_MIN_CHANNELS", 32)
    pool = nn.MaxPool2d(2)
    assert [how for _, how in plan([nn.Conv2d(1, 31, 3), pool])] == ["channels_last", None]
    assert [how for _, how in plan([nn.Conv2d(1, 32, 3), pool])] == [("pool_blocks", (2, 2), False), "from_blocks"]

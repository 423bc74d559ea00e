"""RNN, LSTM, GRU and their cells against torch: outputs, final states and every gradient
(input, initial states, parameters), over layers, directions, layouts, states and upstreams."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from parity import assert_close, check_parity, copy_state, flatten, to_numpy
from torchlite.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchlite.testing import gradcheck

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
T, N, I, H = 5, 3, 3, 4
MODES = {  # name -> (torchlite class, torch class, constructor kwargs)
    "rnn_tanh": (nn.RNN, torch.nn.RNN, {}),
    "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, torch.nn.LSTM, {}),
    "lstm_proj": (nn.LSTM, torch.nn.LSTM, {"proj_size": 2}),
    "gru": (nn.GRU, torch.nn.GRU, {}),
}
CELLS = {"rnn_tanh": (nn.RNNCell, torch.nn.RNNCell, {}),
         "rnn_relu": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
         "lstm": (nn.LSTMCell, torch.nn.LSTMCell, {}),
         "gru": (nn.GRUCell, torch.nn.GRUCell, {})}


def make(mode, *args, table=MODES, **kwargs):
    tl_cls, torch_cls, extra = table[mode]
    return tl_cls(*args, **extra, **kwargs), torch_cls(*args, **extra, **kwargs)


def initial_state(tl, batch_shape, rng):
    """Random initial state(s) for ``tl``: (D*layers, *batch_shape, P), plus c_0 for LSTM."""
    k = tl.num_layers * (2 if tl.bidirectional else 1)
    h = rng.standard_normal((k,) + batch_shape + (tl.proj_size or tl.hidden_size,))
    if isinstance(tl, nn.LSTM):
        return h, rng.standard_normal((k,) + batch_shape + (tl.hidden_size,))
    return h


def compare(tl, tm, x, hx=None, grad_states=True, dtype=np.float64, seed=1):
    """Forward and backward of both; upstream for the final states random or None.

    Checks output, final states, dx, initial-state gradients and every parameter gradient.
    """
    dtype = np.dtype(dtype)
    tm.to({np.float64: torch.float64, np.float32: torch.float32}[dtype.type])
    tl.to(dtype)
    copy_state(tl, tm)
    x = x.astype(dtype)
    hx = None if hx is None else (tuple(h.astype(dtype) for h in hx) if isinstance(hx, tuple) else hx.astype(dtype))
    xt = torch.tensor(x, requires_grad=True)
    hxt = None if hx is None else (tuple(torch.tensor(h, requires_grad=True) for h in hx) if isinstance(hx, tuple)
                                   else torch.tensor(hx, requires_grad=True))
    out, states = tl(x, hx)
    t_out, t_states = tm(xt, hxt)
    assert out.dtype == dtype
    for i, (a, e) in enumerate(zip(flatten((out, states)), flatten(to_numpy((t_out, t_states))))):
        assert_close(a, e, dtype, f"forward output {i}")
    rng = np.random.default_rng(seed)
    g_out = rng.standard_normal(out.shape).astype(dtype)
    g_states = None
    t_outs, t_grads = [t_out], [torch.tensor(g_out)]
    if grad_states:
        g_states = (tuple(rng.standard_normal(s.shape).astype(dtype) for s in states) if isinstance(states, tuple)
                    else rng.standard_normal(states.shape).astype(dtype))
        t_outs += flatten(t_states)
        t_grads += [torch.tensor(g) for g in flatten(g_states)]
    torch.autograd.backward(t_outs, t_grads)
    grads = tl.backward(g_out, g_states)
    if hx is None:
        assert_close(grads, xt.grad.numpy(), dtype, "grad of input")
    else:
        dx, dhx = grads
        assert_close(dx, xt.grad.numpy(), dtype, "grad of input")
        for i, (a, t) in enumerate(zip(flatten(dhx), flatten(hxt))):
            assert_close(a, t.grad.numpy(), dtype, f"grad of initial state {i}")
    t_params = dict(tm.named_parameters())
    for name, p in tl.named_parameters():
        assert p.grad.dtype == dtype
        assert_close(p.grad, t_params[name].grad.numpy(), dtype, f"grad of {name}")
    return out, states


# ---------------------------------------------------------------------- layers vs torch
@pytest.mark.parametrize("grad_states", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("mode", list(MODES))
def test_layer_matches_torch(mode, num_layers, bidirectional, batch_first, with_state, grad_states):
    rng = np.random.default_rng(0)
    tl, tm = make(mode, I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I))
    hx = initial_state(tl, (N,), rng) if with_state else None
    compare(tl, tm, x, hx, grad_states)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", list(MODES))
def test_layer_without_bias(mode, bidirectional):
    rng = np.random.default_rng(1)
    tl, tm = make(mode, I, H, 2, bias=False, bidirectional=bidirectional)
    assert [n for n, _ in tl.named_parameters()] == [n for n, _ in tm.named_parameters()]
    compare(tl, tm, rng.standard_normal((T, N, I)), initial_state(tl, (N,), rng))


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("mode", list(MODES))
def test_unbatched_input(mode, with_state):
    rng = np.random.default_rng(2)
    tl, tm = make(mode, I, H, 2, bidirectional=True, batch_first=True)  # batch_first is ignored unbatched
    out, states = compare(tl, tm, rng.standard_normal((T, I)), initial_state(tl, (), rng) if with_state else None)
    assert out.shape == (T, 2 * (tl.proj_size or H))


@pytest.mark.parametrize("mode", ["rnn_tanh", "lstm", "lstm_proj", "gru"])
def test_float32_matches_torch(mode):
    rng = np.random.default_rng(3)
    tl, tm = make(mode, I, H, 2, bidirectional=True)
    out, states = compare(tl, tm, rng.standard_normal((T, N, I)), initial_state(tl, (N,), rng), dtype=np.float32)
    assert all(s.dtype == np.float32 for s in flatten(states))


@pytest.mark.parametrize("mode", ["rnn_relu", "gru"])
def test_check_parity_helper(mode):
    """The shared parity helper (tuple outputs, random upstream for h_n) agrees too."""
    rng = np.random.default_rng(4)
    tl, tm = make(mode, I, H, 2, bidirectional=True)
    check_parity(tl, tm, rng.standard_normal((T, N, I)), rng.standard_normal((4, N, H)))
    check_parity(tl, tm, rng.standard_normal((T, N, I)), rng.standard_normal((4, N, H)), dtype=np.float32)


def test_float64_input_to_float32_layer_stays_float32():
    lstm = nn.LSTM(I, H)
    out, (h, c) = lstm(np.ones((T, N, I)), (np.zeros((1, N, H)), np.zeros((1, N, H))))
    assert out.dtype == h.dtype == c.dtype == np.float32
    dx, (dh, dc) = lstm.backward(np.ones((T, N, H)), (np.ones((1, N, H)), None))
    assert dx.dtype == dh.dtype == dc.dtype == lstm.weight_hh_l0.grad.dtype == np.float32


# ---------------------------------------------------------------------- variable lengths
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", list(MODES))
def test_packed_sequence_matches_torch(mode, bidirectional):
    rng = np.random.default_rng(5)
    lengths = np.array([3, 5, 1, 5])
    tl, tm = make(mode, I, H, 2, batch_first=True, bidirectional=bidirectional)
    tm.double()
    tl.double()
    copy_state(tl, tm)
    x = rng.standard_normal((4, T, I))
    hx = initial_state(tl, (4,), rng)
    xt = torch.tensor(x, requires_grad=True)
    hxt = tuple(torch.tensor(h, requires_grad=True) for h in flatten(hx))
    t_packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True,
                                                       enforce_sorted=False)
    t_out, t_states = tm(t_packed, hxt if isinstance(hx, tuple) else hxt[0])
    t_padded, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True)

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, states = tl(packed, hx)
    padded, out_lengths = pad_packed_sequence(out, batch_first=True)
    np.testing.assert_array_equal(out_lengths, lengths)
    assert_close(padded, t_padded.detach().numpy(), np.float64, "padded output")
    for a, e in zip(flatten(states), flatten(to_numpy(t_states))):
        assert_close(a, e, np.float64, "final state")

    g_padded = rng.standard_normal(padded.shape)
    g_states = tuple(rng.standard_normal(s.shape) for s in flatten(states))
    torch.autograd.backward([t_padded] + flatten(t_states), [torch.tensor(g_padded)] +
                            [torch.tensor(g) for g in g_states])
    g_packed = pack_padded_sequence(g_padded, lengths, batch_first=True, enforce_sorted=False)
    dpacked, dhx = tl.backward(g_packed, g_states if isinstance(hx, tuple) else g_states[0])
    dx = pad_packed_sequence(dpacked, batch_first=True, total_length=T)[0]
    assert_close(dx, xt.grad.numpy(), np.float64, "grad of input")
    for a, t in zip(flatten(dhx), hxt):
        assert_close(a, t.grad.numpy(), np.float64, "grad of initial state")
    t_params = dict(tm.named_parameters())
    for name, p in tl.named_parameters():
        assert_close(p.grad, t_params[name].grad.numpy(), np.float64, f"grad of {name}")


def test_pack_and_pad_round_trip():
    from torchlite.nn.utils.rnn import pack_sequence, pad_sequence, unpack_sequence
    rng = np.random.default_rng(6)
    seqs = [rng.standard_normal((n, 2)) for n in (2, 4, 3)]
    packed = pack_sequence(seqs, enforce_sorted=False)
    t_packed = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(packed.batch_sizes, t_packed.batch_sizes.numpy())
    np.testing.assert_array_equal(packed.data, t_packed.data.numpy())
    np.testing.assert_array_equal(packed.sorted_indices, t_packed.sorted_indices.numpy())
    for a, b in zip(unpack_sequence(packed), seqs):
        np.testing.assert_array_equal(a, b)
    for side in ("left", "right"):
        np.testing.assert_array_equal(
            pad_sequence(seqs, batch_first=True, padding_value=-1.0, padding_side=side),
            torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True, padding_value=-1.0,
                                            padding_side=side).numpy())
    with pytest.raises(ValueError, match="sorted in decreasing order"):
        pack_padded_sequence(np.zeros((4, 2, 1)), [2, 3])
    with pytest.raises(ValueError, match="greater than 0"):
        pack_padded_sequence(np.zeros((4, 2, 1)), [2, 0])


# ---------------------------------------------------------------------- cells
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("mode", list(CELLS))
def test_cell_matches_torch(mode, batched, dtype):
    rng = np.random.default_rng(7)
    shape = (N,) if batched else ()
    for with_state in (True, False):
        tl, tm = make(mode, I, H, table=CELLS)
        x = rng.standard_normal(shape + (I,))
        if mode == "lstm":
            hx = (rng.standard_normal(shape + (H,)), rng.standard_normal(shape + (H,)))
        else:
            hx = rng.standard_normal(shape + (H,))
        args = (x, hx) if with_state else (x,)
        check_parity(tl, tm, *[a.astype(dtype) if isinstance(a, np.ndarray) else tuple(h.astype(dtype) for h in a)
                               for a in args], dtype=dtype)


def test_cell_state_gradients_match_torch():
    """Initial-state gradients of the cells (check_parity compares array inputs only)."""
    rng = np.random.default_rng(8)
    x, h, c, gh, gc = (rng.standard_normal((N, s)) for s in (I, H, H, H, H))
    for mode in CELLS:
        tl, tm = make(mode, I, H, table=CELLS)
        tm.double()
        tl.double()
        copy_state(tl, tm)
        ts = [torch.tensor(a, requires_grad=True) for a in (x, h, c)]
        if mode == "lstm":
            th, tc = tm(ts[0], (ts[1], ts[2]))
            torch.autograd.backward([th], [torch.tensor(gh)])  # no gradient reaches c'
            tl(x, (h, c))
            dx, (dh, dc) = tl.backward(gh, None)
            assert_close(dc, ts[2].grad.numpy(), np.float64, "dc")
        else:
            torch.autograd.backward([tm(ts[0], ts[1])], [torch.tensor(gh)])
            tl(x, h)
            dx, dh = tl.backward(gh)
        assert_close(dx, ts[0].grad.numpy(), np.float64, "dx")
        assert_close(dh, ts[1].grad.numpy(), np.float64, "dh")


def test_cell_unrolled_equals_layer():
    """An LSTMCell stepped by hand gives the LSTM layer's output with the same weights."""
    rng = np.random.default_rng(9)
    lstm, cell = nn.LSTM(I, H).double(), nn.LSTMCell(I, H).double()
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    x = rng.standard_normal((T, N, I))
    out, (h_n, c_n) = lstm(x)
    h = c = np.zeros((N, H))
    for t in range(T):
        h, c = cell(x[t], (h, c))
        np.testing.assert_allclose(h, out[t], rtol=1e-12)
    np.testing.assert_allclose(c, c_n[0], rtol=1e-12)


# ---------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("mode", list(MODES))
def test_layer_gradcheck(mode):
    torchlite.set_default_dtype(np.float64)
    rng = np.random.default_rng(10)
    tl = MODES[mode][0](2, 3, 2, bidirectional=True, **MODES[mode][2])
    x = rng.standard_normal((3, 2, 2))
    hx = initial_state(tl, (2,), rng)
    assert gradcheck(tl, x, max_elements=8)
    assert gradcheck(tl, x, hx, max_elements=8)  # LSTM's (h_0, c_0) tuple is passed through, not perturbed


@pytest.mark.parametrize("mode", list(CELLS))
def test_cell_gradcheck(mode):
    torchlite.set_default_dtype(np.float64)
    rng = np.random.default_rng(11)
    tl = CELLS[mode][0](3, 2, **CELLS[mode][2])
    x = rng.standard_normal((2, 3))
    assert gradcheck(tl, x)
    if mode != "lstm":
        assert gradcheck(tl, x, rng.standard_normal((2, 2)))


def test_gradcheck_train_mode_dropout():
    """With dropout between layers, backward uses the masks of its forward."""
    torchlite.set_default_dtype(np.float64)
    gru = nn.GRU(2, 3, 3, dropout=0.4).train()
    assert gradcheck(gru, np.random.default_rng(12).standard_normal((4, 2, 2)), max_elements=6)


# ---------------------------------------------------------------------- dropout
def test_dropout_eval_mode_matches_torch():
    rng = np.random.default_rng(13)
    tl, tm = make("lstm", I, H, 3, dropout=0.5)
    tl.eval()
    tm.eval()
    compare(tl, tm, rng.standard_normal((T, N, I)), initial_state(tl, (N,), rng))


def test_dropout_one_in_train_mode_matches_torch():
    """p = 1 zeroes every layer's input but the first's, deterministically in both libraries."""
    rng = np.random.default_rng(14)
    tl, tm = make("gru", I, H, 2, dropout=1.0)
    compare(tl.train(), tm.train(), rng.standard_normal((T, N, I)), initial_state(tl, (N,), rng))


def test_dropout_masks_statistics_and_seeding():
    x = np.random.default_rng(15).standard_normal((T * 64, I)).astype(np.float32)
    weights = nn.LSTM(I, 50, 3, dropout=0.3)._weights()
    states = (np.zeros((3, 64, 50), np.float32),) * 2

    def run(training=True):
        return F.recurrent_stack("LSTM", x, states, weights, [64] * T, 3, dropout=0.3, training=training)

    torchlite.manual_seed(7)
    out, _, cache = run()
    masks = cache[3]
    assert len(masks) == 2 and masks[0].dtype == np.float32
    for m in masks:
        kept = m != 0
        assert abs(kept.mean() - 0.7) < 0.02  # 16,000 draws: std of the mean ~0.004
        np.testing.assert_allclose(m[kept], 1 / 0.7, rtol=1e-6)
    assert np.any(masks[0] != masks[1])
    torchlite.manual_seed(7)
    np.testing.assert_array_equal(out, run()[0])
    assert run(training=False)[2][3] == []


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.5)


# ---------------------------------------------------------------------- module surface
def test_torch_lstm_state_dict_loads_and_gives_same_outputs():
    torch.manual_seed(0)
    tm = torch.nn.LSTM(I, H, 2, bidirectional=True, batch_first=True)
    tl = nn.LSTM(I, H, 2, bidirectional=True, batch_first=True)
    assert list(tl.state_dict()) == list(tm.state_dict())
    tl.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(16).standard_normal((N, T, I)).astype(np.float32)
    out, (h, c) = tl(x)
    t_out, (t_h, t_c) = tm(torch.tensor(x))
    for a, e in ((out, t_out), (h, t_h), (c, t_c)):
        np.testing.assert_allclose(a, e.detach().numpy(), rtol=1e-5, atol=1e-6)
    tm2 = torch.nn.LSTM(I, H, 2, bidirectional=True, batch_first=True)
    tm2.load_state_dict({k: torch.tensor(v) for k, v in tl.state_dict().items()})
    np.testing.assert_allclose(tm2(torch.tensor(x))[0].detach().numpy(), out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", list(MODES))
def test_parameters_names_shapes_and_init_match_torch(mode):
    tl, tm = make(mode, 6, 20, 2, bidirectional=True)
    assert [(n, p.shape) for n, p in tl.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in tm.named_parameters()]
    bound = 1 / np.sqrt(20)
    for p in tl.parameters():
        assert p.dtype == np.float32 and np.abs(p.data).max() <= bound
    values = np.concatenate([p.data.ravel() for p in tl.parameters()])
    assert np.abs(values).max() > 0.95 * bound
    np.testing.assert_allclose(values.std(), bound / np.sqrt(3), rtol=0.05)
    assert len(tl.all_weights) == 4 and tl.all_weights[1][0] is tl.weight_ih_l0_reverse


@pytest.mark.parametrize("args,kwargs", [
    ((10, 20), {}), ((10, 20, 2), dict(batch_first=True)), ((10, 20), dict(bias=False, bidirectional=True)),
    ((10, 20, 3), dict(dropout=0.5)), ((10, 20), dict(nonlinearity="relu")),
])
def test_reprs_match_torch(args, kwargs):
    for tl_cls, torch_cls in ((nn.RNN, torch.nn.RNN), (nn.LSTM, torch.nn.LSTM), (nn.GRU, torch.nn.GRU)):
        if "nonlinearity" in kwargs and tl_cls is not nn.RNN:
            continue
        assert repr(tl_cls(*args, **kwargs)) == repr(torch_cls(*args, **kwargs))
    assert repr(nn.LSTM(10, 20, proj_size=5)) == repr(torch.nn.LSTM(10, 20, proj_size=5))
    assert repr(nn.LSTM(10, 20, num_layers=2, batch_first=True)) == "LSTM(10, 20, num_layers=2, batch_first=True)"
    for cell, kw in ((nn.RNNCell, dict(nonlinearity="relu")), (nn.LSTMCell, dict(bias=False)), (nn.GRUCell, {})):
        assert repr(cell(3, 4, **kw)) == repr(getattr(torch.nn, cell.__name__)(3, 4, **kw))


def test_called_twice_backpropagated_twice():
    """A layer applied to two sequences accumulates both gradients, backward in reverse order."""
    rng = np.random.default_rng(17)
    tl, tm = make("lstm", I, H)
    tm.double()
    tl.double()
    copy_state(tl, tm)
    x1, x2, g1, g2 = (rng.standard_normal((T, N, s)) for s in (I, I, H, H))
    xt1, xt2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    torch.autograd.backward([tm(xt1)[0], tm(xt2)[0]], [torch.tensor(g1), torch.tensor(g2)])
    tl(x1)
    tl(x2)
    assert tl.saved_count == 2
    assert_close(tl.backward(g2), xt2.grad.numpy(), np.float64, "dx2")
    assert_close(tl.backward(g1, (None, None)), xt1.grad.numpy(), np.float64, "dx1")
    t_params = dict(tm.named_parameters())
    for name, p in tl.named_parameters():
        assert_close(p.grad, t_params[name].grad.numpy(), np.float64, name)


def test_no_grad_saves_nothing_and_needs_input_grad():
    gru = nn.GRU(I, H, 2)
    with torchlite.no_grad():
        gru(np.ones((T, N, I)))
    assert gru.saved_count == 0
    with pytest.raises(RuntimeError, match="nothing saved"):
        gru.backward(np.ones((T, N, H)))
    gru.needs_input_grad = False
    gru(np.ones((T, N, I)))
    assert gru.backward(np.ones((T, N, H))) is None and gru.weight_ih_l0.grad is not None


def test_frozen_parameters_get_no_gradient():
    lstm = nn.LSTM(I, H).requires_grad_(False)
    lstm(np.ones((T, N, I)))
    lstm.backward(np.ones((T, N, H)))
    assert all(p.grad is None for p in lstm.parameters())


def test_errors_name_the_module():
    lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True)
    name = r"LSTM\(10, 20, num_layers=2, batch_first=True\): "
    with pytest.raises(ValueError, match=name + r"expected input \(N, L, 10\) or \(L, 10\), got shape \(3, 5, 7\)"):
        lstm(np.ones((3, 5, 7)))
    with pytest.raises(ValueError, match=name + r"expected input .* got shape \(2, 3, 5, 10\)"):
        lstm(np.ones((2, 3, 5, 10)))
    with pytest.raises(ValueError, match=name + r"expected h_0 \(2, 3, 20\), got shape \(1, 3, 20\)"):
        lstm(np.ones((3, 5, 10)), (np.zeros((1, 3, 20)), np.zeros((2, 3, 20))))
    with pytest.raises(ValueError, match=name + r"expected c_0 \(2, 3, 20\), got shape \(2, 4, 20\)"):
        lstm(np.ones((3, 5, 10)), (np.zeros((2, 3, 20)), np.zeros((2, 4, 20))))
    with pytest.raises(TypeError, match=name + r"expected the state as a tuple \(h, c\)"):
        lstm(np.ones((3, 5, 10)), np.zeros((2, 3, 20)))
    with pytest.raises(ValueError, match=r"GRU\(10, 20\): expected h_0 \(1, 20\), got shape \(1, 3, 20\)"):
        nn.GRU(10, 20)(np.ones((5, 10)), np.zeros((1, 3, 20)))
    with pytest.raises(ValueError, match=r"GRUCell\(10, 20\): expected input \(N, 10\) or \(10,\)"):
        nn.GRUCell(10, 20)(np.ones((3, 9)))
    with pytest.raises(TypeError, match=r"RNN\(10, 20\): expected a floating-point input"):
        nn.RNN(10, 20)(np.array([["a"] * 10]))
    rnn = nn.RNN(10, 20)
    rnn(np.ones((5, 3, 10)))
    with pytest.raises(ValueError, match=r"RNN\(10, 20\): expected grad_output \(5, 3, 20\)"):
        rnn.backward(np.ones((5, 3, 21)))


@pytest.mark.parametrize("cls,kwargs,match", [
    (nn.GRU, dict(proj_size=2), "only supported for LSTM"),
    (nn.RNN, dict(proj_size=2), "only supported for LSTM"),
    (nn.LSTM, dict(proj_size=20), "smaller than hidden_size"),
    (nn.RNN, dict(nonlinearity="sigmoid"), "Unknown nonlinearity"),
    (nn.LSTM, dict(dropout=1.5), "dropout should be a number"),
    (nn.LSTM, dict(num_layers=0), "num_layers"),
])
def test_bad_constructor_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(10, 20, **kwargs)
    with pytest.raises(TypeError, match="bias should be of type bool"):
        nn.GRU(3, 4, bias=1)

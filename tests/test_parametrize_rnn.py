"""weight_norm, spectral_norm, parametrize and parametrizations.* on recurrent weights (any
parameter name: ``weight_hh_l0``, ``weight_ih_l1_reverse``, ``weight_hr_l0``) against torch 2.13:
state_dict keys, forward outputs, input gradients and the gradients of the parameters the
weight is computed from."""
import numpy as np
import pytest
import torch
from parity import assert_close, check_parity, copy_state

import torchlite
from torchlite import nn
from torchlite.nn.utils import parametrizations, parametrize
from torchlite.testing import gradcheck

pytestmark = [pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")]
T, N, I, H = 4, 2, 3, 4
MODES = {  # name -> (class name, constructor kwargs)
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {"proj_size": 2}),
    "gru": ("GRU", {}),
    "rnn": ("RNN", {}),
}
REGISTER = {  # name -> (torchlite's, torch's)
    "weight_norm": (nn.utils.weight_norm, torch.nn.utils.weight_norm),
    "weight_norm_whole": (lambda m, name: nn.utils.weight_norm(m, name, dim=None),
                          lambda m, name: torch.nn.utils.weight_norm(m, name, dim=None)),
    "spectral_norm": (nn.utils.spectral_norm, torch.nn.utils.spectral_norm),
    "p_weight_norm": (parametrizations.weight_norm, torch.nn.utils.parametrizations.weight_norm),
    # torch's RNN forward reads each parametrized weight four times (hasattr and getattr in
    # _weights_have_changed, again in _init_flat_weights), so a training-mode forward runs four
    # power iterations; torchlite computes the weight once per forward, as for any layer.
    "p_spectral_norm": (lambda m, name: parametrizations.spectral_norm(m, name, n_power_iterations=4),
                        torch.nn.utils.parametrizations.spectral_norm),
    "p_orthogonal": (parametrizations.orthogonal, torch.nn.utils.parametrizations.orthogonal),
}
T_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def pair(mode, dtype=np.float64, seed=0, **kwargs):
    """Two-layer bidirectional layers with the same weights, in ``dtype``."""
    cls, extra = MODES[mode]
    torch.manual_seed(seed)
    ours = getattr(nn, cls)(I, H, 2, bidirectional=True, **extra, **kwargs).to(dtype)
    theirs = getattr(torch.nn, cls)(I, H, 2, bidirectional=True, **extra, **kwargs).to(T_DTYPE[np.dtype(dtype)])
    copy_state(ours, theirs)
    return ours, theirs


def inputs(ours, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    k = ours.num_layers * 2
    h = rng.standard_normal((k, N, ours.proj_size or H)).astype(dtype)
    state = (h, rng.standard_normal((k, N, H)).astype(dtype)) if isinstance(ours, nn.LSTM) else h
    return rng.standard_normal((T, N, I)).astype(dtype), state


def register(ours, theirs, kind, names):
    mine, torchs = REGISTER[kind]
    for name in names:
        mine(ours, name)
        torchs(theirs, name)


def assert_same_keys(ours, theirs):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


CASES = [(mode, name) for mode in ("lstm", "gru") for name in ("weight_hh_l0", "weight_ih_l1_reverse")]
CASES += [("lstm_proj", "weight_hr_l0"), ("lstm_proj", "weight_hh_l1"), ("rnn", "weight_ih_l0")]


@pytest.mark.parametrize("mode, name", CASES)
@pytest.mark.parametrize("kind", list(REGISTER))
def test_matches_torch(kind, mode, name):
    ours, theirs = pair(mode)
    register(ours, theirs, kind, [name])
    assert_same_keys(ours, theirs)
    copy_state(ours, theirs)  # spectral norm's u, v and orthogonal's base are drawn by each library
    check_parity(ours, theirs, *inputs(ours))
    ours.eval()  # a read in training mode is one more power iteration, n_power_iterations apart
    theirs.eval()
    assert_close(getattr(ours, name).data, getattr(theirs, name).detach().numpy(), np.float64, name)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_several_weights_and_float32(mode):
    ours, theirs = pair(mode, dtype=np.float32)
    register(ours, theirs, "weight_norm", ["weight_ih_l0", "weight_hh_l1_reverse"])
    register(ours, theirs, "p_orthogonal", ["weight_hh_l0"])
    register(ours, theirs, "spectral_norm", ["weight_ih_l1"])
    parametrize.register_parametrization(ours, "weight_hh_l0_reverse", Scale())
    torch.nn.utils.parametrize.register_parametrization(theirs, "weight_hh_l0_reverse", TScale())
    assert_same_keys(ours, theirs)
    copy_state(ours, theirs)
    out = check_parity(ours, theirs, *inputs(ours, dtype=np.float32), dtype=np.float32)
    assert out[0].dtype == np.float32


class Scale(nn.Module):
    def forward(self, X):
        return 2.0 * X

    def backward(self, grad):
        return 2.0 * grad


class TScale(torch.nn.Module):
    def forward(self, X):
        return 2.0 * X


def test_parametrized_spectral_norm_in_eval_mode():
    """Without power iteration both read the same u, v: one spectral_norm setting for both."""
    ours, theirs = pair("gru")
    parametrizations.spectral_norm(ours, "weight_hh_l1_reverse")
    torch.nn.utils.parametrizations.spectral_norm(theirs, "weight_hh_l1_reverse")
    ours.eval()
    theirs.eval()
    check_parity(ours, theirs, *inputs(ours))


def test_unbatched_and_batch_first_inputs():
    ours, theirs = pair("lstm", batch_first=True)
    register(ours, theirs, "p_weight_norm", ["weight_hh_l0"])
    x, _ = inputs(ours)
    check_parity(ours, theirs, np.swapaxes(x, 0, 1))
    check_parity(ours, theirs, x[:, 0])


def test_sgd_steps_match_torch():
    ours, theirs = pair("lstm")
    register(ours, theirs, "weight_norm", ["weight_hh_l0"])
    register(ours, theirs, "p_orthogonal", ["weight_hh_l1"])
    copy_state(ours, theirs)
    opt = torchlite.optim.SGD(ours.parameters(), lr=0.3, momentum=0.9)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=0.3, momentum=0.9)
    x, _ = inputs(ours)
    for _ in range(3):
        opt.zero_grad()
        t_opt.zero_grad()
        out, _ = ours(x)
        ours.backward(2 * out, None)
        (theirs(torch.from_numpy(x))[0] ** 2).sum().backward()
        opt.step()
        t_opt.step()
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value.numpy(), np.float64, key)


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm", "p_weight_norm", "p_orthogonal"])
def test_remove_restores_a_plain_weight(kind):
    ours, theirs = pair("gru")
    register(ours, theirs, kind, ["weight_hh_l0"])
    copy_state(ours, theirs)
    if kind.startswith("p_"):
        parametrize.remove_parametrizations(ours, "weight_hh_l0")
        torch.nn.utils.parametrize.remove_parametrizations(theirs, "weight_hh_l0")
    else:
        getattr(nn.utils, "remove_" + kind)(ours, "weight_hh_l0")
        getattr(torch.nn.utils, "remove_" + kind)(theirs, "weight_hh_l0")
    assert_same_keys(ours, theirs)
    assert "weight_hh_l0" in ours._parameters
    check_parity(ours, theirs, *inputs(ours), copy=False)


def test_cells():
    torch.manual_seed(0)
    ours, theirs = nn.LSTMCell(I, H).double(), torch.nn.LSTMCell(I, H).double()
    copy_state(ours, theirs)
    register(ours, theirs, "p_weight_norm", ["weight_hh"])
    register(ours, theirs, "weight_norm", ["weight_ih"])
    assert_same_keys(ours, theirs)
    rng = np.random.default_rng(0)
    check_parity(ours, theirs, rng.standard_normal((N, I)), (rng.standard_normal((N, H)), rng.standard_normal((N, H))))


@pytest.mark.parametrize("kind", ["weight_norm", "p_weight_norm", "p_orthogonal"])
def test_gradcheck(kind):
    torchlite.set_default_dtype(np.float64)
    m = nn.LSTM(2, 3)
    REGISTER[kind][0](m, "weight_hh_l0")
    if kind == "p_orthogonal":  # householder reads the diagonal as integer signs: keep it off the jumps at -1
        m.parametrizations.weight_hh_l0.original.data[np.arange(3), np.arange(3)] = -1.5
    assert gradcheck(m, np.random.default_rng(0).standard_normal((3, 2, 2)))


def test_unparametrized_layers_read_their_own_parameters():
    """Without a parametrization the layer reads the registered Parameter objects, as before."""
    ours, _ = pair("lstm")
    for name in ours._flat_weights_names:
        assert getattr(ours, name) is ours._parameters[name]

"""TransformerEncoderLayer and TransformerEncoder against torch (dropout 0 or eval), gradchecks, errors."""
import copy

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from torchlite.testing import gradcheck

from parity import assert_close, check_parity, copy_state

D, NHEAD, FF, S, N = 8, 2, 16, 5, 3


def _src(batch_first=False, batched=True, seed=0):
    rng = np.random.default_rng(seed)
    if not batched:
        return rng.standard_normal((S, D))
    return rng.standard_normal((N, S, D) if batch_first else (S, N, D))


def _kpm(batched=True):
    m = np.zeros((N, S) if batched else (S,), bool)
    m[..., -2:] = True
    if batched:
        m[0] = False
    return m


CAUSAL_BOOL = np.triu(np.ones((S, S), bool), 1)
MASKS = {
    "none": lambda: {},
    "causal_bool": lambda: dict(src_mask=CAUSAL_BOOL),
    "causal_hint": lambda: dict(src_mask=CAUSAL_BOOL, is_causal=True),
    "kpm": lambda: dict(src_key_padding_mask=_kpm()),
    "both_float": lambda: dict(src_mask=np.random.default_rng(3).standard_normal((S, S)),
                               src_key_padding_mask=np.where(_kpm(), -np.inf, 0.0)),
    # random 3-D bool mask; the diagonal stays open so no query is fully masked
    "mask3d": lambda: dict(src_mask=(np.random.default_rng(4).random((N * NHEAD, S, S)) < 0.3)
                           & ~np.eye(S, dtype=bool)),
}


def _layers(**kw):
    kw = dict(dim_feedforward=FF, dropout=0.0) | kw
    return nn.TransformerEncoderLayer(D, NHEAD, **kw), torch.nn.TransformerEncoderLayer(D, NHEAD, **kw)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mask", sorted(MASKS))
def test_layer_parity(mask, norm_first, activation, batch_first):
    tl, th = _layers(norm_first=norm_first, activation=activation, batch_first=batch_first)
    check_parity(tl, th, _src(batch_first), forward_kwargs=MASKS[mask]())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", [dict(bias=False), dict(layer_norm_eps=1e-3, norm_first=True),
                                 dict(activation="gelu", dim_feedforward=4)])
def test_layer_options(cfg, dtype):
    tl, th = _layers(**cfg)
    out = check_parity(tl, th, _src(), dtype=dtype, forward_kwargs=dict(src_key_padding_mask=_kpm()))
    assert out.dtype == dtype


def test_layer_activation_module():
    tl = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0, activation=nn.GELU(approximate="tanh"))
    th = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0, activation=torch.nn.GELU(approximate="tanh"))
    assert repr(tl) == repr(th)
    assert tl.activation_relu_or_gelu == th.activation_relu_or_gelu == 2
    check_parity(tl, th, _src())
    assert nn.TransformerEncoderLayer(D, NHEAD, activation=nn.functional.relu).activation_relu_or_gelu == 1


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_unbatched(norm_first):
    tl, th = _layers(norm_first=norm_first, batch_first=True)
    check_parity(tl, th, _src(batched=False), forward_kwargs=dict(src_key_padding_mask=_kpm(False),
                                                                 src_mask=CAUSAL_BOOL))


def test_layer_keys_and_repr_like_torch():
    tl = nn.TransformerEncoderLayer(D, NHEAD, FF)
    th = torch.nn.TransformerEncoderLayer(D, NHEAD, FF)
    assert list(tl.state_dict()) == list(th.state_dict())
    assert repr(tl) == repr(th)
    assert tl.norm_first is False and tl.self_attn.dropout == 0.1 and tl.dropout.p == 0.1


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_with_final_norm(norm_first):
    tl_layer, th_layer = _layers(norm_first=norm_first, activation="gelu")
    tl = nn.TransformerEncoder(tl_layer, 2, norm=nn.LayerNorm(D))
    th = torch.nn.TransformerEncoder(th_layer, 2, norm=torch.nn.LayerNorm(D), enable_nested_tensor=False)
    keys = list(tl.state_dict())
    assert keys == list(th.state_dict())
    assert keys[0] == "layers.0.self_attn.in_proj_weight" and keys[-2:] == ["norm.weight", "norm.bias"]
    assert repr(tl) == repr(th)
    for kw in (dict(), dict(mask=CAUSAL_BOOL, src_key_padding_mask=_kpm()),
               dict(mask=np.where(CAUSAL_BOOL, -np.inf, 0.0))):  # a float causal mask: detected as causal
        check_parity(tl, th, _src(), forward_kwargs=kw)
    tl_plain = nn.TransformerEncoder(tl_layer, 1)
    th_plain = torch.nn.TransformerEncoder(th_layer, 1, enable_nested_tensor=False)
    check_parity(tl_plain, th_plain, _src())


def test_encoder_clones_are_independent_identical_copies():
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF)
    enc = nn.TransformerEncoder(layer, 3)
    a, b = enc.layers[0], enc.layers[1]
    assert a is not layer and a is not b
    for (name, pa), pb, p0 in zip(a.named_parameters(), b.parameters(), layer.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
        np.testing.assert_array_equal(pa.data, p0.data, err_msg=name)
        assert pa.data is not pb.data and pa is not pb
    a.linear1.weight.data += 1
    assert not np.array_equal(a.linear1.weight.data, b.linear1.weight.data)
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters()))


@pytest.mark.parametrize("batch_first", [False, True])
def test_torch_state_dict_loads_and_matches_in_eval(batch_first):
    """A trained-in-torch encoder (default dropout 0.1) loads and gives torch's eval numbers."""
    torch.manual_seed(0)
    th_layer = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=batch_first, activation="gelu")
    th = torch.nn.TransformerEncoder(th_layer, 2, norm=torch.nn.LayerNorm(D), enable_nested_tensor=batch_first)
    th.double().eval()
    tl = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=batch_first, activation="gelu"),
                               2, norm=nn.LayerNorm(D)).double().eval()
    copy_state(tl, th)
    src = _src(batch_first)
    kpm = _kpm()
    with torch.no_grad():  # torch's fused fast paths
        t_plain = th(torch.from_numpy(src)).numpy()
        t_masked = th(torch.from_numpy(src), src_key_padding_mask=torch.from_numpy(kpm)).numpy()
    with torchlite.no_grad():
        out = tl(src)
        out_masked = tl(src, src_key_padding_mask=kpm)
    assert_close(out, t_plain, np.float64, "encoder output")
    keep = ~kpm if batch_first else ~kpm.T  # torch's nested-tensor path zeroes padded positions
    assert_close(out_masked[keep], t_masked[keep], np.float64, "encoder output (not padded)")
    assert tl.saved_count == 0 and all(m.saved_count == 0 for m in tl.modules())


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradcheck(norm_first):
    torchlite.set_default_dtype(np.float64)
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.2, norm_first=norm_first, activation="gelu")
    gradcheck(layer, _src(), kwargs=dict(src_mask=CAUSAL_BOOL, src_key_padding_mask=_kpm()), max_elements=12)


def test_encoder_gradcheck():
    torchlite.set_default_dtype(np.float64)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.1), 2, norm=nn.LayerNorm(D))
    gradcheck(enc, _src(batched=False), kwargs=dict(mask=CAUSAL_BOOL), max_elements=8)


def test_dropout_active_in_train_only():
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.5).double()
    x = _src()
    torchlite.manual_seed(0)
    a = layer(x)
    torchlite.manual_seed(1)
    b = layer(x)
    assert not np.allclose(a, b)
    layer.eval()
    assert layer.saved_count == 0
    np.testing.assert_array_equal(layer(x), layer(x))


def test_train_eval_loop_holds_no_saved_state():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF), 2)
    x = _src()
    for _ in range(3):
        enc.train()
        out = enc(x)
        enc.backward(np.ones_like(out))
        enc.eval()
        enc(x)  # evaluation without no_grad: saved state is dropped at the next mode switch
    enc.train()
    assert all(m.saved_count == 0 for m in enc.modules())


def test_deepcopy_of_layer_keeps_working():
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0).double()
    clone = copy.deepcopy(layer)
    x = _src()
    np.testing.assert_array_equal(layer(x), clone(x))
    np.testing.assert_array_equal(layer.backward(np.ones((S, N, D))), clone.backward(np.ones((S, N, D))))


def test_errors_name_the_module():
    with pytest.raises(ValueError, match="TransformerEncoderLayer: d_model must be a positive multiple of nhead, "
                                         "got d_model=10 and nhead=3"):
        nn.TransformerEncoderLayer(10, 3)
    with pytest.raises(ValueError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(D, NHEAD, activation="tanh")
    with pytest.raises(TypeError, match="activation must be"):
        nn.TransformerEncoderLayer(D, NHEAD, activation=lambda x: x)
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=True)
    msg = r"^TransformerEncoderLayer\(d_model=8, nhead=2, batch_first=True\): expected "
    with pytest.raises(ValueError, match=msg + r"src \(N, S, 8\) or unbatched \(S, 8\), got shape \(3, 5, 6\)"):
        layer(np.zeros((N, S, 6)))
    with pytest.raises(ValueError, match=msg + r"src_mask of shape \(5, 5\) or \(6, 5, 5\), got shape \(4, 4\)"):
        layer(np.zeros((N, S, D)), src_mask=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=msg + r"src_key_padding_mask of shape \(3, 5\), got shape \(5, 3\)"):
        layer(np.zeros((N, S, D)), src_key_padding_mask=np.zeros((S, N), bool))
    with pytest.raises(TypeError, match=msg + "a floating-point src"):
        layer(np.zeros((N, S, D)).astype(str))
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        layer(np.zeros((N, S, D)), is_causal=True)

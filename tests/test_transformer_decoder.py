"""TransformerDecoderLayer, TransformerDecoder and Transformer against torch (dropout 0 or eval),
gradchecks, torch checkpoints, reprs, generate_square_subsequent_mask and errors."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from torchlite.testing import gradcheck

from parity import assert_close, check_parity, copy_state

D, NHEAD, FF, T, S, N = 8, 2, 16, 4, 5, 3


def _seq(length, batch_first=False, batched=True, seed=0):
    rng = np.random.default_rng(seed)
    if not batched:
        return rng.standard_normal((length, D))
    return rng.standard_normal((N, length, D) if batch_first else (length, N, D))


def _tgt_mem(batch_first=False, batched=True):
    return _seq(T, batch_first, batched, seed=1), _seq(S, batch_first, batched, seed=2)


def _kpm(length, batched=True):
    """Last two positions padded, except in the first sample (no row is fully masked)."""
    m = np.zeros((N, length) if batched else (length,), bool)
    m[..., -2:] = True
    if batched:
        m[0] = False
    return m


CAUSAL = np.triu(np.ones((T, T), bool), 1)
MEMORY_CAUSAL = np.triu(np.ones((T, S), bool), 1)  # top-left aligned, as the is_causal hint means
MASKS = {
    "none": lambda: {},
    "causal_bool": lambda: dict(tgt_mask=CAUSAL),
    "causal_hints": lambda: dict(tgt_mask=CAUSAL, tgt_is_causal=True, memory_mask=MEMORY_CAUSAL,
                                 memory_is_causal=True),
    "padding": lambda: dict(tgt_mask=CAUSAL, tgt_key_padding_mask=_kpm(T), memory_key_padding_mask=_kpm(S)),
    "float": lambda: dict(tgt_mask=np.where(CAUSAL, -np.inf, 0.0),
                          memory_mask=np.random.default_rng(3).standard_normal((T, S)),
                          memory_key_padding_mask=np.where(_kpm(S), -np.inf, 0.0)),
    # random 3-D bool masks; the first key stays open so no query is fully masked
    "mask3d": lambda: dict(tgt_mask=(np.random.default_rng(4).random((N * NHEAD, T, T)) < 0.3) & ~np.eye(T, dtype=bool),
                           memory_mask=np.random.default_rng(5).random((N * NHEAD, T, S)) < np.r_[0, [0.4] * (S - 1)]),
}


def _layers(**kw):
    kw = dict(dim_feedforward=FF, dropout=0.0) | kw
    return nn.TransformerDecoderLayer(D, NHEAD, **kw), torch.nn.TransformerDecoderLayer(D, NHEAD, **kw)


def _transformers(enc=1, dec=2, **kw):
    kw = dict(num_encoder_layers=enc, num_decoder_layers=dec, dim_feedforward=FF, dropout=0.0) | kw
    return nn.Transformer(D, NHEAD, **kw), torch.nn.Transformer(D, NHEAD, **kw)


# ----------------------------------------------------------------- decoder layer
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mask", sorted(MASKS))
def test_layer_parity(mask, norm_first, activation, batch_first):
    tl, th = _layers(norm_first=norm_first, activation=activation, batch_first=batch_first)
    check_parity(tl, th, *_tgt_mem(batch_first), forward_kwargs=MASKS[mask]())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", [dict(bias=False), dict(layer_norm_eps=1e-3, norm_first=True),
                                 dict(activation="gelu", dim_feedforward=4)])
def test_layer_options(cfg, dtype):
    tl, th = _layers(**cfg)
    out = check_parity(tl, th, *_tgt_mem(), dtype=dtype, forward_kwargs=MASKS["padding"]())
    assert out.dtype == dtype
    tl(*_tgt_mem())
    dtgt, dmem = tl.backward(np.ones((T, N, D), dtype))
    assert dtgt.dtype == dmem.dtype == dtype


def test_layer_activation_module():
    tl = nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, activation=nn.GELU(approximate="tanh"))
    th = torch.nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, activation=torch.nn.GELU(approximate="tanh"))
    assert repr(tl) == repr(th)
    assert list(tl.state_dict()) == list(th.state_dict())
    check_parity(tl, th, *_tgt_mem(), forward_kwargs=dict(tgt_mask=CAUSAL))
    tl = nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, activation=nn.functional.gelu)
    th = torch.nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0, activation=torch.nn.functional.gelu)
    check_parity(tl, th, *_tgt_mem())


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_unbatched(norm_first):
    tl, th = _layers(norm_first=norm_first, batch_first=True)
    kw = dict(tgt_mask=CAUSAL, tgt_key_padding_mask=_kpm(T, False), memory_key_padding_mask=_kpm(S, False))
    check_parity(tl, th, *_tgt_mem(batched=False), forward_kwargs=kw)


def test_layer_keys_and_repr_like_torch():
    tl = nn.TransformerDecoderLayer(D, NHEAD, FF)
    th = torch.nn.TransformerDecoderLayer(D, NHEAD, FF)
    assert list(tl.state_dict()) == list(th.state_dict())
    assert [n for n, _ in tl.named_children()] == [n for n, _ in th.named_children()]
    assert repr(tl) == repr(th)
    assert tl.norm_first is False and tl.multihead_attn.dropout == 0.1 and tl.dropout3.p == 0.1


# ----------------------------------------------------------------- decoder stack
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_with_final_norm(norm_first):
    tl_layer, th_layer = _layers(norm_first=norm_first, activation="gelu")
    tl = nn.TransformerDecoder(tl_layer, 2, norm=nn.LayerNorm(D))
    th = torch.nn.TransformerDecoder(th_layer, 2, norm=torch.nn.LayerNorm(D))
    keys = list(tl.state_dict())
    assert keys == list(th.state_dict())
    assert keys[0] == "layers.0.self_attn.in_proj_weight" and keys[-2:] == ["norm.weight", "norm.bias"]
    assert repr(tl) == repr(th)
    for name in ("none", "padding", "float", "causal_hints"):  # "float" holds a float causal tgt_mask: detected
        check_parity(tl, th, *_tgt_mem(), forward_kwargs=MASKS[name]())
    tl_plain = nn.TransformerDecoder(tl_layer, 1)
    th_plain = torch.nn.TransformerDecoder(th_layer, 1)
    check_parity(tl_plain, th_plain, *_tgt_mem(batched=False), forward_kwargs=dict(tgt_mask=CAUSAL))


def test_decoder_clones_are_independent_identical_copies():
    layer = nn.TransformerDecoderLayer(D, NHEAD, FF)
    dec = nn.TransformerDecoder(layer, 2)
    a, b = dec.layers
    assert a is not layer and a is not b
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
        assert pa.data is not pb.data
    assert len(list(dec.parameters())) == 2 * len(list(layer.parameters()))


# ----------------------------------------------------------------- full Transformer
@pytest.mark.parametrize("layers", [(1, 1), (2, 2), (1, 2)])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_parity(layers, norm_first, batch_first):
    tl, th = _transformers(*layers, norm_first=norm_first, batch_first=batch_first, activation="gelu")
    src, tgt = _seq(S, batch_first, seed=1), _seq(T, batch_first, seed=2)
    kw = dict(src_key_padding_mask=_kpm(S), tgt_mask=nn.Transformer.generate_square_subsequent_mask(T),
              tgt_key_padding_mask=_kpm(T), memory_key_padding_mask=_kpm(S))
    check_parity(tl, th, src, tgt, forward_kwargs=kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transformer_masks_and_dtypes(dtype):
    tl, th = _transformers(2, 1, bias=False, layer_norm_eps=1e-4)
    src_mask = np.random.default_rng(6).standard_normal((S, S)).astype(dtype)  # torch wants the input's dtype
    kw = dict(src_mask=src_mask, tgt_mask=CAUSAL, tgt_is_causal=True,
              memory_mask=MASKS["mask3d"]()["memory_mask"], src_is_causal=False)
    out = check_parity(tl, th, _seq(S, seed=1), _seq(T, seed=2), dtype=dtype, forward_kwargs=kw)
    assert out.dtype == dtype
    tl, th = _transformers(1, 1, batch_first=True)
    kw = dict(src_mask=np.triu(np.ones((S, S), bool), 1), tgt_mask=CAUSAL, src_key_padding_mask=_kpm(S, False))
    check_parity(tl, th, _seq(S, batched=False, seed=1), _seq(T, batched=False, seed=2), dtype=dtype,
                 forward_kwargs=kw)


def test_transformer_custom_encoder_and_decoder():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0), 1)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0), 1)
    th_enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0), 1,
                                         enable_nested_tensor=False)
    th_dec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.0), 1)
    tl = nn.Transformer(D, NHEAD, custom_encoder=enc, custom_decoder=dec)
    th = torch.nn.Transformer(D, NHEAD, custom_encoder=th_enc, custom_decoder=th_dec)
    assert tl.encoder is enc and tl.decoder is dec
    assert list(tl.state_dict()) == list(th.state_dict())
    assert repr(tl) == repr(th)
    check_parity(tl, th, _seq(S, seed=1), _seq(T, seed=2), forward_kwargs=dict(tgt_mask=CAUSAL))


def test_transformer_keys_repr_and_init_like_torch():
    tl = nn.Transformer(D, NHEAD, 2, 2, FF)
    th = torch.nn.Transformer(D, NHEAD, 2, 2, FF)
    assert list(tl.state_dict()) == list(th.state_dict())
    assert repr(tl) == repr(th)
    assert (tl.d_model, tl.nhead, tl.batch_first) == (D, NHEAD, False)
    layers = tl.encoder.layers
    assert not np.array_equal(layers[0].linear1.weight.data, layers[1].linear1.weight.data)  # re-drawn per layer
    for name, p in tl.named_parameters():
        if p.data.ndim > 1:
            bound = np.sqrt(6.0 / sum(p.shape))
            assert np.all(np.abs(p.data) <= bound) and np.abs(p.data).max() > bound / 2, name
        elif "norm" in name:
            np.testing.assert_array_equal(p.data, 1.0 if name.endswith("weight") else 0.0, err_msg=name)
        assert p.data.dtype == np.float32
    torchlite.manual_seed(3)
    a = nn.Transformer(D, NHEAD, 1, 1, FF).state_dict()
    torchlite.manual_seed(3)
    b = nn.Transformer(D, NHEAD, 1, 1, FF).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert nn.Transformer(D, NHEAD, 1, 1, FF, dtype=np.float64).decoder.norm.weight.dtype == np.float64


@pytest.mark.parametrize("batch_first", [False, True])
def test_torch_state_dict_loads_and_matches_in_eval(batch_first):
    """A torch Transformer (default dropout 0.1) loads and gives torch's eval numbers."""
    torch.manual_seed(0)
    th = torch.nn.Transformer(D, NHEAD, 2, 2, FF, batch_first=batch_first).double().eval()
    tl = nn.Transformer(D, NHEAD, 2, 2, FF, batch_first=batch_first).double().eval()
    copy_state(tl, th)
    src, tgt = _seq(S, batch_first, seed=1), _seq(T, batch_first, seed=2)
    mask = nn.Transformer.generate_square_subsequent_mask(T, dtype=np.float64)
    # the padded memory rows are masked in cross-attention too: torch's nested-tensor encoder zeroes them
    kw = dict(tgt_mask=mask, src_key_padding_mask=_kpm(S), memory_key_padding_mask=_kpm(S))
    with torch.no_grad():  # torch's fused fast paths
        expected = th(torch.from_numpy(src), torch.from_numpy(tgt), **{k: torch.from_numpy(v) for k, v in kw.items()})
    with torchlite.no_grad():
        out = tl(src, tgt, **kw)
    assert_close(out, expected.numpy(), np.float64, "transformer output")
    assert all(m.saved_count == 0 for m in tl.modules())


def test_generate_square_subsequent_mask_like_torch():
    for sz in (0, 1, 5):
        mask = nn.Transformer.generate_square_subsequent_mask(sz)
        assert mask.dtype == np.float32
        np.testing.assert_array_equal(mask, torch.nn.Transformer.generate_square_subsequent_mask(sz).numpy())
    mask = nn.Transformer(D, NHEAD, 1, 1, FF).generate_square_subsequent_mask(3, dtype=np.float64)
    assert mask.dtype == np.float64
    np.testing.assert_array_equal(mask, torch.nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.float64))
    torchlite.set_default_dtype(np.float64)
    assert nn.Transformer.generate_square_subsequent_mask(2).dtype == np.float64


# ----------------------------------------------------------------- gradchecks
@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradcheck(norm_first):
    torchlite.set_default_dtype(np.float64)
    layer = nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.2, norm_first=norm_first, activation="gelu")
    gradcheck(layer, *_tgt_mem(), kwargs=MASKS["padding"](), max_elements=10)


def test_decoder_gradcheck():
    torchlite.set_default_dtype(np.float64)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.1), 2, norm=nn.LayerNorm(D))
    gradcheck(dec, *_tgt_mem(batched=False), kwargs=dict(tgt_mask=CAUSAL), max_elements=6)


def test_transformer_gradcheck():
    torchlite.set_default_dtype(np.float64)
    model = nn.Transformer(D, NHEAD, 1, 1, FF, dropout=0.1, batch_first=True)
    gradcheck(model, _seq(S, True, seed=1), _seq(T, True, seed=2),
              kwargs=dict(tgt_mask=CAUSAL, src_key_padding_mask=_kpm(S)), max_elements=5)


# ----------------------------------------------------------------- training behaviour
def test_dropout_active_in_train_only_and_no_saved_state_leaks():
    model = nn.Transformer(D, NHEAD, 1, 1, FF, dropout=0.5).double()
    src, tgt = _seq(S, seed=1), _seq(T, seed=2)
    torchlite.manual_seed(0)
    a = model(src, tgt)
    torchlite.manual_seed(1)
    b = model(src, tgt)
    assert not np.allclose(a, b)
    for _ in range(2):
        model.train()
        dsrc, dtgt = model.backward(np.ones_like(model(src, tgt)))
        assert dsrc.shape == src.shape and dtgt.shape == tgt.shape
        model.eval()
        np.testing.assert_array_equal(model(src, tgt), model(src, tgt))
    model.train()
    assert all(m.saved_count == 0 for m in model.modules())


# ----------------------------------------------------------------- errors
def test_errors_name_the_module():
    with pytest.raises(ValueError, match="TransformerDecoderLayer: d_model must be a positive multiple of nhead, "
                                         "got d_model=10 and nhead=3"):
        nn.TransformerDecoderLayer(10, 3)
    with pytest.raises(ValueError, match="TransformerDecoderLayer: activation should be relu/gelu, not tanh"):
        nn.TransformerDecoderLayer(D, NHEAD, activation="tanh")
    with pytest.raises(TypeError, match="TransformerDecoderLayer: activation must be"):
        nn.TransformerDecoderLayer(D, NHEAD, activation=lambda x: x)

    layer = nn.TransformerDecoderLayer(D, NHEAD, FF, batch_first=True)
    msg = r"^TransformerDecoderLayer\(d_model=8, nhead=2, batch_first=True\): expected "
    tgt, mem = np.zeros((N, T, D)), np.zeros((N, S, D))
    with pytest.raises(ValueError, match=msg + r"tgt \(N, T, 8\) or unbatched \(T, 8\), got shape \(3, 4, 6\)"):
        layer(np.zeros((N, T, 6)), mem)
    with pytest.raises(ValueError, match=msg + r"memory \(N, S, 8\) or unbatched \(S, 8\), got shape \(3, 5\)"):
        layer(tgt, np.zeros((N, S)))
    with pytest.raises(ValueError, match=msg + r"tgt and memory both batched with the same batch size or both "
                                               r"unbatched, got tgt shape \(3, 4, 8\) and memory shape \(2, 5, 8\)"):
        layer(tgt, np.zeros((2, S, D)))
    with pytest.raises(ValueError, match=msg + r"tgt and memory both batched"):
        layer(tgt, np.zeros((S, D)))
    with pytest.raises(ValueError, match=msg + r"tgt_mask of shape \(4, 4\) or \(6, 4, 4\), got shape \(5, 5\)"):
        layer(tgt, mem, tgt_mask=np.zeros((S, S), bool))
    with pytest.raises(ValueError, match=msg + r"memory_mask of shape \(4, 5\) or \(6, 4, 5\), got shape \(4, 4\)"):
        layer(tgt, mem, memory_mask=np.zeros((T, T), bool))
    with pytest.raises(ValueError, match=msg + r"tgt_key_padding_mask of shape \(3, 4\), got shape \(3, 5\)"):
        layer(tgt, mem, tgt_key_padding_mask=np.zeros((N, S), bool))
    with pytest.raises(ValueError, match=msg + r"memory_key_padding_mask of shape \(3, 5\), got shape \(3, 4\)"):
        layer(tgt, mem, memory_key_padding_mask=np.zeros((N, T), bool))
    with pytest.raises(TypeError, match=msg + "a floating-point memory"):
        layer(tgt, mem.astype(str))
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        layer(tgt, mem, memory_is_causal=True)
    with pytest.raises(RuntimeError, match="nothing saved"):
        layer.backward(tgt)

    model = nn.Transformer(D, NHEAD, 1, 1, FF, batch_first=True)
    msg = r"^Transformer\(d_model=8, nhead=2, batch_first=True\): "
    with pytest.raises(ValueError, match=msg + r"the batch number of src and tgt must be equal, "
                                               r"got src shape \(3, 5, 8\) and tgt shape \(2, 4, 8\)"):
        model(np.zeros((N, S, D)), np.zeros((2, T, D)))
    with pytest.raises(ValueError, match=msg + r"the feature number of src and tgt must be equal to d_model \(8\), "
                                               r"got src shape \(3, 5, 8\) and tgt shape \(3, 4, 6\)"):
        model(np.zeros((N, S, D)), np.zeros((N, T, 6)))
    with pytest.raises(ValueError, match=msg + "the feature number"):
        model(np.zeros((S, 6)), np.zeros((T, D)))

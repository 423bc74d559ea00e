"""scaled_dot_product_attention and MultiheadAttention against torch, plus gradchecks and errors."""
import copy

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn.functional as F
from torchlite.nn import MultiheadAttention
from torchlite.testing import gradcheck

from parity import assert_close, check_parity, to_numpy

E, H, L, S, N = 8, 2, 5, 4, 3


# ------------------------------------------------------------------------------------ sdpa
def _sdpa_both(q, k, v, dtype=np.float64, **kw):
    """Run both libraries' sdpa forward and backward on the same inputs and upstream grad."""
    q, k, v = (x.astype(dtype) for x in (q, k, v))
    out, attn, keep = F.scaled_dot_product_attention(q, k, v, return_weights=True, **kw)
    tq, tk, tv = (torch.from_numpy(x.copy()).requires_grad_() for x in (q, k, v))
    tkw = {key: torch.from_numpy(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()}
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkw)
    assert out.dtype == dtype
    assert_close(out, to_numpy(t_out), dtype, "sdpa output")
    g = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    t_out.backward(torch.from_numpy(g))
    grads = F.scaled_dot_product_attention_backward(g, q, k, v, attn, keep, scale=kw.get("scale"),
                                                    enable_gqa=kw.get("enable_gqa", False))
    for name, d, t in zip("qkv", grads, (tq, tk, tv)):
        assert d.dtype == dtype, name
        assert_close(d, t.grad.numpy(), dtype, f"sdpa grad {name}")
    return out


def _qkv(batch=(N, H), lq=L, ls=S, e=4, ev=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(batch + (lq, e)), rng.standard_normal(batch + (ls, e)),
            rng.standard_normal(batch + (ls, ev)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sdpa_plain_scale_and_causal(dtype):
    q, k, v = _qkv()
    _sdpa_both(q, k, v, dtype)
    _sdpa_both(q, k, v, dtype, scale=0.3)
    _sdpa_both(q, k, v, dtype, is_causal=True)          # L > S: top-left aligned
    _sdpa_both(*_qkv(lq=3, ls=6), dtype, is_causal=True)  # L < S


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sdpa_masks(dtype):
    rng = np.random.default_rng(2)
    q, k, v = _qkv()
    _sdpa_both(q, k, v, dtype, attn_mask=rng.random((L, S)) < 0.7)          # broadcast bool
    _sdpa_both(q, k, v, dtype, attn_mask=rng.random((N, 1, L, S)) < 0.7)
    _sdpa_both(q, k, v, dtype, attn_mask=rng.standard_normal((N, H, L, S)).astype(dtype))  # float added


def test_sdpa_fully_masked_rows_give_zeros_like_torch():
    q, k, v = _qkv()
    mask = np.ones((L, S), bool)
    mask[1] = False
    out = _sdpa_both(q, k, v, attn_mask=mask)
    assert np.all(out[..., 1, :] == 0)
    fmask = np.zeros((L, S))
    fmask[2] = -np.inf
    out = _sdpa_both(q, k, v, attn_mask=fmask)
    assert np.all(out[..., 2, :] == 0) and np.all(np.isfinite(out))


def test_sdpa_broadcast_batch_and_gqa():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((N, H, L, 4))
    _sdpa_both(q, rng.standard_normal((1, H, S, 4)), rng.standard_normal((1, H, S, 5)))  # shared keys
    q4 = rng.standard_normal((N, 4, L, 4))
    _sdpa_both(q4, rng.standard_normal((N, 2, S, 4)), rng.standard_normal((N, 2, S, 3)), enable_gqa=True)
    _sdpa_both(rng.standard_normal((L, 4)), rng.standard_normal((S, 4)), rng.standard_normal((S, 2)))  # 2-D


def test_sdpa_stable_for_large_scores():
    q, k, v = _qkv()
    out = _sdpa_both(q * 300, k * 300, v)
    assert np.all(np.isfinite(out))


def test_sdpa_dropout_uses_global_generator():
    q, k, v = _qkv()
    torchlite.manual_seed(5)
    a, attn, keep = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, return_weights=True)
    torchlite.manual_seed(5)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(keep)) == {0.0, 2.0}
    np.testing.assert_allclose(a, (attn * keep) @ v)
    assert np.all(F.scaled_dot_product_attention(q, k, v, dropout_p=1.0) == 0)
    # backward through the same dropout draw, checked by finite differences
    g = np.random.default_rng(0).standard_normal(a.shape)
    dq, dk, dv = F.scaled_dot_product_attention_backward(g, q, k, v, attn, keep)
    eps, i = 1e-6, (0, 1, 2, 3)
    for x, dx in ((q, dq), (k, dk), (v, dv)):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        args = [(plus if y is x else y) for y in (q, k, v)], [(minus if y is x else y) for y in (q, k, v)]
        f = [np.sum(((_softmax(a_[0] @ np.swapaxes(a_[1], -1, -2) / 2.0) * keep) @ a_[2]) * g) for a_ in args]
        np.testing.assert_allclose(dx[i], (f[0] - f[1]) / (2 * eps), rtol=1e-6, atol=1e-8)


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_sdpa_float32_stays_float32():
    q, k, v = (x.astype(np.float32) for x in _qkv())
    out, attn, keep = F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((L, S), bool), dropout_p=0.2,
                                                     return_weights=True)
    assert out.dtype == attn.dtype == keep.dtype == np.float32
    grads = F.scaled_dot_product_attention_backward(out, q, k, v, attn, keep)
    assert all(d.dtype == np.float32 for d in grads)


def test_sdpa_errors():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((L, S), bool), is_causal=True)
    with pytest.raises(ValueError, match="same feature size"):
        F.scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="same sequence length"):
        F.scaled_dot_product_attention(q, k, v[..., :2, :])
    with pytest.raises(ValueError, match="does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((L, S + 1), bool))
    with pytest.raises(TypeError, match="same dtype"):
        F.scaled_dot_product_attention(q.astype(np.float32), k, v)
    with pytest.raises(TypeError, match="bool or floating"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((L, S), int))
    with pytest.raises(ValueError, match="multiple of the key heads"):
        F.scaled_dot_product_attention(_qkv(batch=(N, 3))[0], *_qkv(batch=(N, 2))[1:], enable_gqa=True)


# ------------------------------------------------------------------------------------ MultiheadAttention
def _inputs(batch_first=False, batched=True, kdim=E, vdim=E, seed=0, lq=L, ls=S):
    rng = np.random.default_rng(seed)

    def make(t, f):
        if not batched:
            return rng.standard_normal((t, f))
        return rng.standard_normal((N, t, f) if batch_first else (t, N, f))
    return make(lq, E), make(ls, kdim), make(ls, vdim)


def _pair(**kw):
    return MultiheadAttention(E, H, **kw), torch.nn.MultiheadAttention(E, H, **kw)


CONFIGS = [
    dict(),
    dict(batch_first=True),
    dict(bias=False),
    dict(add_bias_kv=True),
    dict(add_zero_attn=True),
    dict(add_bias_kv=True, add_zero_attn=True, batch_first=True),
    dict(kdim=3, vdim=6),
    dict(kdim=3, vdim=6, bias=False, add_bias_kv=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("fwd", [dict(), dict(need_weights=False), dict(average_attn_weights=False)],
                         ids=["weights", "no_weights", "per_head"])
def test_mha_cross_attention_parity(cfg, fwd, dtype):
    tl, th = _pair(**cfg)
    q, k, v = _inputs(cfg.get("batch_first", False), kdim=cfg.get("kdim", E), vdim=cfg.get("vdim", E))
    out, w = check_parity(tl, th, q, k, v, dtype=dtype, forward_kwargs=fwd)
    assert (w is None) == (fwd.get("need_weights") is False)
    assert out.dtype == dtype


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_self_attention_same_array(batch_first, need_weights):
    """One array passed three times: the packed single-GEMM path; dx is the sum of the three grads."""
    tl, th = _pair(batch_first=batch_first)
    th.double()
    tl.double()
    tl.load_state_dict({k: v.numpy() for k, v in th.state_dict().items()})
    x = _inputs(batch_first)[0]
    tx = torch.from_numpy(x.copy()).requires_grad_()
    t_out, t_w = th(tx, tx, tx, need_weights=need_weights)
    out, w = tl(x, x, x, need_weights=need_weights)
    assert_close(out, to_numpy(t_out), np.float64, "output")
    g = np.random.default_rng(1).standard_normal(out.shape)
    (t_out * torch.from_numpy(g)).sum().backward()
    dx = sum(tl.backward(g))
    assert_close(dx, tx.grad.numpy(), np.float64, "dx")
    for name, p in tl.named_parameters():
        assert_close(p.grad, dict(th.named_parameters())[name].grad.numpy(), np.float64, name)


def _masks(kind, batched=True, rng=None, ls=S):
    rng = rng or np.random.default_rng(7)
    n = N if batched else 1
    shapes = {"2d": (L, ls), "3d": (n * H, L, ls), "kpm": (N, ls) if batched else (ls,)}
    m = rng.random(shapes[kind]) < 0.3
    # keep at least one key per query, so no row is fully masked (tested separately)
    m[..., 0] = False
    return m


MASK_CASES = {
    "attn2d_bool": lambda: dict(attn_mask=_masks("2d")),
    "attn3d_bool": lambda: dict(attn_mask=_masks("3d")),
    "attn2d_float": lambda: dict(attn_mask=np.random.default_rng(1).standard_normal((L, S))),
    "attn3d_float": lambda: dict(attn_mask=np.random.default_rng(1).standard_normal((N * H, L, S))),
    "kpm_bool": lambda: dict(key_padding_mask=_masks("kpm")),
    "kpm_float": lambda: dict(key_padding_mask=np.random.default_rng(2).standard_normal((N, S))),
    "both_bool": lambda: dict(attn_mask=_masks("3d"), key_padding_mask=_masks("kpm")),
    "both_float": lambda: dict(attn_mask=np.random.default_rng(1).standard_normal((L, S)),
                               key_padding_mask=np.random.default_rng(2).standard_normal((N, S))),
}


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_mha_masks(case, need_weights):
    tl, th = _pair(add_bias_kv=True, add_zero_attn=case.startswith("both"))
    fwd = dict(MASK_CASES[case](), need_weights=need_weights)
    check_parity(tl, th, *_inputs(), forward_kwargs=fwd)


def test_mha_causal_hint():
    causal = np.triu(np.ones((L, L), bool), 1)
    tl, th = _pair()
    q = _inputs(ls=L)
    for need_weights in (True, False):
        check_parity(tl, th, *q, forward_kwargs=dict(attn_mask=causal, is_causal=True, need_weights=need_weights))
    # on the no-weights path torch trusts the hint and ignores the mask; so do we
    wrong = np.zeros((L, L), bool)
    check_parity(tl, th, *q, forward_kwargs=dict(attn_mask=wrong, is_causal=True, need_weights=False))
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        tl(*q, is_causal=True)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("cfg", [dict(), dict(add_bias_kv=True, add_zero_attn=True, kdim=3, vdim=6)])
def test_mha_unbatched(cfg, need_weights):
    tl, th = _pair(batch_first=True, **cfg)
    q, k, v = _inputs(batched=False, kdim=cfg.get("kdim", E), vdim=cfg.get("vdim", E))
    fwd = dict(need_weights=need_weights, key_padding_mask=_masks("kpm", batched=False),
               attn_mask=_masks("3d", batched=False))
    out, w = check_parity(tl, th, q, k, v, forward_kwargs=fwd)
    assert out.shape == (L, E)
    check_parity(tl, th, q, k, v, forward_kwargs=dict(need_weights=need_weights, average_attn_weights=False,
                                                        attn_mask=_masks("2d", batched=False)))


def test_mha_fully_masked_rows_match_torch():
    """torch gives NaN rows when it returns the weights, zeros through its sdpa path otherwise."""
    tl, th = _pair()
    th.double()
    tl.double()
    tl.load_state_dict({k: v.numpy() for k, v in th.state_dict().items()})
    q, k, v = _inputs()
    kpm = np.zeros((N, S), bool)
    kpm[1] = True
    for need_weights in (True, False):
        out, w = tl(q, k, v, key_padding_mask=kpm, need_weights=need_weights)
        t_out, t_w = th(*(torch.from_numpy(x) for x in (q, k, v)), key_padding_mask=torch.from_numpy(kpm),
                        need_weights=need_weights)
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-7, equal_nan=True)
        assert np.isnan(out[:, 1]).all() == need_weights
        if need_weights:
            np.testing.assert_allclose(w, t_w.detach().numpy(), rtol=1e-7, equal_nan=True)
    tl.clear_saved()


def test_mha_parameters_like_torch():
    for cfg in CONFIGS:
        tl, th = _pair(**cfg)
        assert list(tl.state_dict()) == list(th.state_dict()), cfg
        assert [n for n, _ in tl.named_parameters()] == [n for n, _ in th.named_parameters()]
        for (name, p), tp in zip(tl.state_dict().items(), th.state_dict().values()):
            assert p.shape == tuple(tp.shape) and p.dtype == np.float32, name
        assert repr(tl) == repr(th)
        assert (tl.head_dim, tl.kdim, tl.vdim, tl._qkv_same_embed_dim) == \
               (th.head_dim, th.kdim, th.vdim, th._qkv_same_embed_dim)
    tl = MultiheadAttention(64, 4, add_bias_kv=True)
    assert not tl.in_proj_bias.data.any() and not tl.out_proj.bias.data.any()
    bound = np.sqrt(6 / (64 + 64 * 3))  # xavier_uniform_ on (3E, E)
    w = tl.in_proj_weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert 0.5 < tl.bias_k.data.std() / np.sqrt(2 / 128) < 1.5  # xavier_normal_ on (1, 1, E)
    assert tl.bias_k is not None and MultiheadAttention(E, H).bias_k is None


@pytest.mark.parametrize("cfg", [dict(), dict(add_bias_kv=True, add_zero_attn=True, kdim=3, vdim=6, batch_first=True),
                                 dict(bias=False, dropout=0.3)])
def test_mha_gradcheck(cfg):
    torchlite.set_default_dtype(np.float64)
    mha = MultiheadAttention(E, H, **cfg)
    q, k, v = _inputs(cfg.get("batch_first", False), kdim=cfg.get("kdim", E), vdim=cfg.get("vdim", E))
    # float masks so the random upstream grad of the weights is finite
    gradcheck(mha, q, k, v, kwargs=dict(attn_mask=np.random.default_rng(0).standard_normal((L, S)),
                                        average_attn_weights=False))
    gradcheck(mha, q, k, v, kwargs=dict(key_padding_mask=_masks("kpm"), need_weights=False))


def test_mha_dropout_train_vs_eval():
    mha = MultiheadAttention(E, H, dropout=0.5).double()
    q, k, v = _inputs()
    torchlite.manual_seed(1)
    _, w1 = mha(q, k, v, average_attn_weights=False)
    mha.eval()
    _, w2 = mha(q, k, v, average_attn_weights=False)
    np.testing.assert_allclose(w2.sum(-1), 1.0)
    dropped = w1 == 0
    assert 0.3 < dropped.mean() < 0.7
    np.testing.assert_allclose(w1[~dropped], 2 * w2[~dropped])  # kept weights rescaled by 1/(1-p)
    mha.train()
    torchlite.manual_seed(1)
    _, w3 = mha(q, k, v, average_attn_weights=False)
    np.testing.assert_array_equal(w1, w3)


def test_mha_saved_state_stack_and_no_grad():
    mha = MultiheadAttention(E, H).double()
    a, b = _inputs(seed=1), _inputs(seed=2)
    ref = copy.deepcopy(mha)
    ya, _ = mha(*a)
    yb, _ = mha(*b)
    gb = mha.backward(np.ones_like(yb))
    ga = mha.backward(np.ones_like(ya))
    ref(*a)
    np.testing.assert_allclose(ref.backward(np.ones_like(ya))[0], ga[0])
    assert not np.allclose(ga[0], gb[0])
    with torchlite.no_grad():
        mha(*a)
    assert mha.saved_count == 0
    with pytest.raises(RuntimeError, match="nothing saved"):
        mha.backward(np.ones_like(ya))


def test_mha_float32_end_to_end():
    mha = MultiheadAttention(E, H, add_bias_kv=True, add_zero_attn=True, dropout=0.1)
    q, k, v = _inputs()
    out, w = mha(q.astype(np.float32), k, v, key_padding_mask=np.zeros((N, S)), attn_mask=np.zeros((L, S)))
    assert out.dtype == w.dtype == np.float32
    grads = mha.backward(np.ones_like(out), np.ones_like(w))
    assert all(g.dtype == np.float32 for g in grads)
    assert all(p.grad.dtype == np.float32 for p in mha.parameters())


def test_mha_errors_name_the_module():
    with pytest.raises(ValueError, match=r"MultiheadAttention: embed_dim must be divisible by num_heads"):
        MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        MultiheadAttention(0, 2)
    mha = MultiheadAttention(E, H, kdim=3, vdim=6)
    q, k, v = _inputs(kdim=3, vdim=6)
    msg = r"^MultiheadAttention\(embed_dim=8, num_heads=2, kdim=3, vdim=6\): expected "
    with pytest.raises(ValueError, match=msg + r"query \(L, N, 8\) or unbatched \(L, 8\), got shape \(5, 3, 7\)"):
        mha(q[..., :7], k, v)
    with pytest.raises(ValueError, match=msg + r"key \(S, N, 3\)"):
        mha(q, v, v)
    with pytest.raises(ValueError, match=msg + r"value \(S, N, 6\)"):
        mha(q, k, k)
    with pytest.raises(ValueError, match=msg + "key and value with the same sequence length"):
        mha(q, k, v[:2])
    with pytest.raises(ValueError, match=msg + "query and key with the same batch size"):
        mha(q, k[:, :2], v[:, :2])
    with pytest.raises(ValueError, match=msg + r"key_padding_mask of shape \(3, 4\), got shape \(4,\)"):
        mha(q, k, v, key_padding_mask=np.zeros(S, bool))
    with pytest.raises(ValueError, match=msg + r"attn_mask of shape \(5, 4\) or \(6, 5, 4\), got shape \(3, 5, 4\)"):
        mha(q, k, v, attn_mask=np.zeros((N, L, S), bool))
    with pytest.raises(TypeError, match=msg + "attn_mask of dtype bool or floating"):
        mha(q, k, v, attn_mask=np.zeros((L, S), int))
    with pytest.raises(TypeError, match=msg + "a floating-point query"):
        mha(q.astype(str), k, v)


def test_mha_backward_refuses_weights_grad_it_did_not_return():
    mha = MultiheadAttention(E, H).double()
    q, k, v = _inputs()
    out, w = mha(q, k, v, need_weights=False)
    with pytest.raises(ValueError, match="got grad_weights, but forward ran with need_weights=False"):
        mha.backward(np.ones_like(out), np.ones((N, L, S)))

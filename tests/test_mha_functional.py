"""F.multi_head_attention_forward and its backward twin against torch's functional, argument by argument.

Forward outputs (attention output and weights) and every gradient (query, key, value, packed or
separate projection weights, biases, bias_k/bias_v, static_k/static_v, the output projection)
over: packed and separate projections (kdim/vdim), biases on and off, add_bias_kv,
add_zero_attn, key_padding_mask and attn_mask (bool and float, 2-D and 3-D), need_weights,
average_attn_weights, batched and unbatched, self-attention (one array three times), static
keys and values, the is_causal hint, float32 and float64. Dropout is checked with training=False
against torch, statistically, and by finite differences through a fixed draw. nn.MultiheadAttention
must give exactly what the functional gives on its parameters.
"""
import inspect
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import torchlite
import torchlite.nn as nn
import torchlite.nn.functional as F
from parity import assert_close

E, H, L, S, N = 8, 2, 5, 4, 3
D = E // H
PARAMS = ("in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj_weight", "out_proj_bias", "q_proj_weight",
          "k_proj_weight", "v_proj_weight", "static_k", "static_v")


def make_params(rng, dtype, separate=False, bias=True, bias_kv=False, zero_attn=False, kdim=E, vdim=E):
    """Keyword arguments of multi_head_attention_forward (besides the inputs and forward options)."""
    def r(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(dtype)
    return dict(embed_dim_to_check=E, num_heads=H,
                in_proj_weight=None if separate else r(3 * E, E), in_proj_bias=r(3 * E) if bias else None,
                bias_k=r(1, 1, E) if bias_kv else None, bias_v=r(1, 1, E) if bias_kv else None,
                add_zero_attn=zero_attn, dropout_p=0.0, out_proj_weight=r(E, E), out_proj_bias=r(E) if bias else None,
                use_separate_proj_weight=separate, q_proj_weight=r(E, E) if separate else None,
                k_proj_weight=r(E, kdim) if separate else None, v_proj_weight=r(E, vdim) if separate else None)


def make_inputs(rng, dtype, kdim=E, vdim=E, batched=True, self_attention=False):
    lead = (N,) if batched else ()

    def seq(t, f):
        return rng.standard_normal((t,) + lead + (f,)).astype(dtype)
    q = seq(L, E)
    if self_attention:
        return q, q, q
    return q, seq(S, kdim), seq(S, vdim)


def masks(rng, kind, dtype, batched=True, s=S):
    """key_padding_mask / attn_mask of ``kind``; key 0 always allowed, so that no row is fully masked."""
    n = N if batched else 1
    kpm_shape = (N, s) if batched else (s,)
    if kind == "none":
        return {}
    if kind == "kpm_bool":
        m = rng.random(kpm_shape) < 0.4
        m[..., 0] = False
        return dict(key_padding_mask=m)
    if kind == "attn2d_bool":
        m = rng.random((L, s)) < 0.4
        m[..., 0] = False
        return dict(attn_mask=m)
    if kind == "both_float":
        return dict(key_padding_mask=rng.standard_normal(kpm_shape).astype(dtype),
                    attn_mask=rng.standard_normal((n * H, L, s)).astype(dtype))
    raise AssertionError(kind)


def to_torch(v):
    if isinstance(v, np.ndarray):
        t = torch.from_numpy(v.copy())
        return t.requires_grad_(True) if t.is_floating_point() else t
    return v


def run_both(inputs, params, fwd, dtype, seed=0):
    """Forward both libraries, feed the same upstream gradients, compare outputs and every gradient."""
    dtype = np.dtype(dtype)
    out, w, saved = F.multi_head_attention_forward(*inputs, **params, **fwd, return_saved=True)
    t_inputs = {}
    for x in inputs:  # one array passed several times is one tensor, as in torch self-attention
        t_inputs.setdefault(id(x), to_torch(x))
    tq, tk, tv = (t_inputs[id(x)] for x in inputs)
    t_params = {k: to_torch(v) for k, v in params.items()}
    t_out, t_w = TF.multi_head_attention_forward(tq, tk, tv, **t_params, **{k: to_torch(v) for k, v in fwd.items()})
    assert out.dtype == dtype
    assert_close(out, t_out.detach().numpy(), dtype, "attn_output")
    assert (w is None) == (t_w is None)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(out.shape).astype(dtype)
    gw = None if w is None else rng.standard_normal(w.shape).astype(dtype)
    if w is not None:
        assert w.dtype == dtype
        assert_close(w, t_w.detach().numpy(), dtype, "attn_weights")
    torch.autograd.backward([t_out] + ([t_w] if w is not None else []),
                            [torch.from_numpy(g)] + ([torch.from_numpy(gw)] if w is not None else []))
    grads = F.multi_head_attention_backward(g, saved, gw)
    dx = {}
    for x, d in zip(inputs, grads[:3]):
        if d is not None:
            dx[id(x)] = dx[id(x)] + d if id(x) in dx else d
    for i, x in enumerate(inputs):
        expected = t_inputs[id(x)].grad
        if expected is None:  # a static key/value replaced this input
            assert id(x) not in dx, f"input {i}: torch has no gradient"
        else:
            assert dx[id(x)].dtype == dtype
            assert_close(dx[id(x)], expected.numpy(), dtype, f"grad of input {i}")
    for name in PARAMS:
        ours, t = getattr(grads, name), t_params.get(name)
        if not isinstance(t, torch.Tensor):
            assert ours is None, name
        elif t.grad is None:  # unused (e.g. k_proj_weight under static_k): nothing or zeros
            assert ours is None or not ours.any(), name
        else:
            assert ours.dtype == dtype, name
            assert_close(ours, t.grad.numpy(), dtype, f"grad of {name}")
    return out, w


PROJECTIONS = [dict(separate=s, bias=b, bias_kv=kv, zero_attn=z)
               for s, b, kv, z in itertools.product([False, True], [True, False], [False, True], [False, True])]
WEIGHTS = [dict(need_weights=True), dict(need_weights=True, average_attn_weights=False), dict(need_weights=False)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mask", ["none", "kpm_bool", "attn2d_bool", "both_float"])
@pytest.mark.parametrize("proj", PROJECTIONS, ids=lambda p: ",".join(k for k, v in p.items() if v) or "packed")
def test_forward_and_backward_match_torch(proj, mask, dtype):
    rng = np.random.default_rng(hash((mask, *proj.values())) % 2**32)
    kdim, vdim = (3, 6) if proj["separate"] else (E, E)
    params = make_params(rng, dtype, kdim=kdim, vdim=vdim, **proj)
    inputs = make_inputs(rng, dtype, kdim, vdim)
    for fwd in WEIGHTS:
        run_both(inputs, params, dict(fwd, **masks(rng, mask, dtype)), dtype)


@pytest.mark.parametrize("mask", ["none", "kpm_bool", "both_float"])
@pytest.mark.parametrize("proj", [dict(), dict(bias_kv=True, zero_attn=True), dict(separate=True)],
                         ids=["packed", "bias_kv,zero_attn", "separate"])
def test_unbatched(proj, mask):
    rng = np.random.default_rng(1)
    params = make_params(rng, np.float64, **proj)
    inputs = make_inputs(rng, np.float64, batched=False)
    for fwd in WEIGHTS:
        out, w = run_both(inputs, params, dict(fwd, **masks(rng, mask, np.float64, batched=False)), np.float64)
        assert out.shape == (L, E)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("proj", [dict(), dict(bias=False, bias_kv=True, zero_attn=True), dict(separate=True)],
                         ids=["packed", "bias_kv,zero_attn", "separate"])
def test_self_attention_one_array(proj, dtype):
    """query, key and value one array: torchlite's single packed GEMM; the input's gradient is the sum."""
    rng = np.random.default_rng(2)
    params = make_params(rng, dtype, **proj)
    inputs = make_inputs(rng, dtype, self_attention=True)
    for fwd in WEIGHTS:
        run_both(inputs, params, dict(fwd, **masks(rng, "kpm_bool", dtype, s=L)), dtype)


STATICS = {"k": ("static_k",), "v": ("static_v",), "kv": ("static_k", "static_v")}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("statics", sorted(STATICS))
@pytest.mark.parametrize("proj", [dict(), dict(zero_attn=True), dict(separate=True, bias=False)],
                         ids=["packed", "zero_attn", "separate"])
def test_static_keys_and_values(statics, proj, dtype):
    """static_k / static_v (N * H, S', D) replace the projected keys / values; they get gradients."""
    rng = np.random.default_rng(3)
    s_static = S if statics == "v" else S + 2  # static keys may have their own length
    params = make_params(rng, dtype, **proj)
    for name in STATICS[statics]:
        params[name] = rng.standard_normal((N * H, s_static, D)).astype(dtype)
    inputs = make_inputs(rng, dtype)
    if statics == "k":  # static keys only: the values must be as many
        inputs = make_inputs(rng, dtype)[:1] + tuple(rng.standard_normal((s_static, N, E)).astype(dtype)
                                                     for _ in range(2))
    for fwd in WEIGHTS:
        kpm = rng.random((N, s_static)) < 0.3
        kpm[:, 0] = False
        run_both(inputs, params, dict(fwd, key_padding_mask=kpm), dtype)


def test_is_causal_hint():
    """Trusted (attn_mask dropped) only without weights and key_padding_mask, as torch."""
    rng = np.random.default_rng(4)
    params = make_params(rng, np.float64)
    q = make_inputs(rng, np.float64, self_attention=True)
    causal = np.triu(np.ones((L, L), bool), 1)
    wrong = np.zeros((L, L), bool)
    for mask, need_weights in itertools.product([causal, wrong], [True, False]):
        run_both(q, params, dict(attn_mask=mask, is_causal=True, need_weights=need_weights), np.float64)
        kpm = dict(key_padding_mask=np.zeros((N, L), bool))
        run_both(q, params, dict(attn_mask=mask, is_causal=True, need_weights=need_weights, **kpm), np.float64)
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        F.multi_head_attention_forward(*q, **params, is_causal=True)


def test_training_false_turns_dropout_off():
    rng = np.random.default_rng(5)
    params = dict(make_params(rng, np.float64, bias_kv=True), dropout_p=0.7)
    for fwd in WEIGHTS:
        run_both(make_inputs(rng, np.float64), params, dict(fwd, training=False), np.float64)


def test_dropout_statistics():
    """Kept weights are the undropped ones times 1/(1-p), about p of them dropped; the mean output over
    many draws approaches the output without dropout."""
    rng = np.random.default_rng(6)
    params = dict(make_params(rng, np.float64), dropout_p=0.25)
    inputs = make_inputs(rng, np.float64)
    ref, ref_w = F.multi_head_attention_forward(*inputs, **params, training=False, average_attn_weights=False)
    torchlite.manual_seed(0)
    outs, dropped = [], []
    for _ in range(400):
        out, w = F.multi_head_attention_forward(*inputs, **params, average_attn_weights=False)
        kept = w != 0
        np.testing.assert_allclose(w[kept], ref_w[kept] / 0.75, rtol=1e-12)
        dropped.append(1 - kept.mean())
        outs.append(out)
    assert abs(np.mean(dropped) - 0.25) < 0.01
    outs = np.array(outs)  # dropout is unbiased: the mean is the undropped output, within 5 standard errors
    assert np.all(np.abs(outs.mean(axis=0) - ref) <= 5 * outs.std(axis=0) / np.sqrt(len(outs)) + 1e-12)
    _, w_nw = F.multi_head_attention_forward(*inputs, **params, need_weights=False)
    assert w_nw is None


def test_dropout_backward_by_finite_differences():
    """The backward goes through the same dropout draw the forward made (the generator reset for each call)."""
    rng = np.random.default_rng(7)
    params = dict(make_params(rng, np.float64, bias_kv=True, zero_attn=True), dropout_p=0.4)
    inputs = list(make_inputs(rng, np.float64))
    fwd = dict(average_attn_weights=False, key_padding_mask=masks(rng, "kpm_bool", np.float64)["key_padding_mask"])
    g = rng.standard_normal((L, N, E))
    gw = rng.standard_normal((N, H, L, S + 2))

    def loss():
        torchlite.manual_seed(3)
        out, w = F.multi_head_attention_forward(*inputs, **params, **fwd)
        return np.sum(out * g) + np.sum(w * gw)
    torchlite.manual_seed(3)
    _, w, saved = F.multi_head_attention_forward(*inputs, **params, **fwd, return_saved=True)
    assert (w == 0).any()
    grads = F.multi_head_attention_backward(g, saved, gw)
    targets = [(inputs[0], grads.query), (inputs[1], grads.key), (inputs[2], grads.value),
               (params["in_proj_weight"], grads.in_proj_weight), (params["bias_k"], grads.bias_k),
               (params["out_proj_weight"], grads.out_proj_weight)]
    for arr, d in targets:
        flat, dflat = arr.reshape(-1), d.reshape(-1)
        for i in np.random.default_rng(0).choice(flat.size, 6, replace=False):
            orig = flat[i]
            flat[i] = orig + 1e-6
            plus = loss()
            flat[i] = orig - 1e-6
            minus = loss()
            flat[i] = orig
            np.testing.assert_allclose(dflat[i], (plus - minus) / 2e-6, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("cfg", [dict(), dict(kdim=3, vdim=6, add_bias_kv=True, add_zero_attn=True)])
def test_module_is_the_functional(cfg, batch_first):
    """nn.MultiheadAttention gives exactly what the functional gives on its parameters (torch's module passes them
    the same way), and backpropagates the same gradients."""
    m = nn.MultiheadAttention(E, H, batch_first=batch_first, **cfg).double()
    rng = np.random.default_rng(8)
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    q, k, v = make_inputs(rng, np.float64, cfg.get("kdim", E), cfg.get("vdim", E))
    kpm = masks(rng, "kpm_bool", np.float64)["key_padding_mask"]
    t = (lambda x: x.transpose(1, 0, 2)) if batch_first else (lambda x: x)
    out, w = m(t(q), t(k), t(v), key_padding_mask=kpm)
    args = dict(embed_dim_to_check=E, num_heads=H, in_proj_weight=getattr(m.in_proj_weight, "data", None),
                in_proj_bias=m.in_proj_bias.data, bias_k=getattr(m.bias_k, "data", None),
                bias_v=getattr(m.bias_v, "data", None), add_zero_attn=m.add_zero_attn, dropout_p=0.0,
                out_proj_weight=m.out_proj.weight.data, out_proj_bias=m.out_proj.bias.data,
                use_separate_proj_weight=not m._qkv_same_embed_dim,
                **{f"{c}_proj_weight": getattr(getattr(m, f"{c}_proj_weight"), "data", None) for c in "qkv"})
    f_out, f_w, saved = F.multi_head_attention_forward(q, k, v, **args, key_padding_mask=kpm, return_saved=True)
    np.testing.assert_array_equal(t(f_out), out)
    np.testing.assert_array_equal(f_w, w)
    g = rng.standard_normal(f_out.shape)
    dq, dk, dv = m.backward(t(g))
    grads = F.multi_head_attention_backward(g, saved)
    for a, b in zip((dq, dk, dv), grads[:3]):
        np.testing.assert_allclose(a, t(b), rtol=1e-12)
    for name, p in m.named_parameters():
        key = name.replace("out_proj.", "out_proj_")
        np.testing.assert_allclose(p.grad, getattr(grads, key), rtol=1e-12, err_msg=name)


def test_float32_stays_float32():
    rng = np.random.default_rng(9)
    params = dict(make_params(rng, np.float32, bias_kv=True, zero_attn=True), dropout_p=0.1)
    q, k, v = make_inputs(rng, np.float64)  # float64 inputs are cast to the parameters' dtype
    out, w, saved = F.multi_head_attention_forward(q, k, v, **params, key_padding_mask=np.zeros((N, S)),
                                                   return_saved=True)
    assert out.dtype == w.dtype == np.float32
    grads = F.multi_head_attention_backward(np.ones(out.shape), saved, np.ones(w.shape))
    assert all(g.dtype == np.float32 for g in grads if g is not None)


def test_signature_is_torchs():
    def entries(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
    ours = entries(F.multi_head_attention_forward)
    assert ours[-1] == ("return_saved", inspect.Parameter.KEYWORD_ONLY, False)
    assert ours[:-1] == entries(TF.multi_head_attention_forward)
    grads = F.multi_head_attention_backward(*_backward_args())
    assert grads._fields == ("query", "key", "value") + PARAMS


def _backward_args():
    rng = np.random.default_rng(0)
    out, _, saved = F.multi_head_attention_forward(*make_inputs(rng, np.float64), **make_params(rng, np.float64),
                                                   return_saved=True)
    return np.ones(out.shape), saved


def _error_cases():
    """name -> (inputs, parameter overrides, forward options): torch refuses each."""
    r = np.random.default_rng(0)
    q, k, v = make_inputs(r, np.float64)
    z = np.zeros
    return {
        "embed_dim_to_check": ((q, k, v), dict(embed_dim_to_check=E + 2), {}),
        "num_heads": ((q, k, v), dict(num_heads=3), {}),
        "no in_proj_weight": ((q, k, v), dict(in_proj_weight=None), {}),
        "separate without weights": ((q, k, v), dict(use_separate_proj_weight=True), {}),
        "in_proj_weight shape": ((q, k, v), dict(in_proj_weight=z((3 * E, E + 1))), {}),
        "bias_k without bias_v": ((q, k, v), dict(bias_k=z((1, 1, E))), {}),
        "static_k with bias_k": ((q, k, v), dict(bias_k=z((1, 1, E)), bias_v=z((1, 1, E)),
                                                 static_k=z((N * H, S, D))), {}),
        "static_k shape": ((q, k, v), dict(static_k=z((N, S, D))), {}),
        "4-d query": ((q[None], k, v), {}, {}),
        "2-d key": ((q, k[:, 0], v), {}, {}),
        "key and value shapes": ((q, k, v[:, :, :6]), {}, {}),
        "batch sizes": ((q, k[:, :2], v[:, :2]), {}, {}),
        "attn_mask shape": ((q, k, v), {}, dict(attn_mask=z((L, S + 1), bool))),
        "3-d attn_mask shape": ((q, k, v), {}, dict(attn_mask=z((N, L, S), bool))),
        "attn_mask dtype": ((q, k, v), {}, dict(attn_mask=z((L, S), np.int64))),
        "key_padding_mask shape": ((q, k, v), {}, dict(key_padding_mask=z((N, S + 1), bool))),
        "is_causal without attn_mask": ((q, k, v), {}, dict(is_causal=True)),
        "dropout_p": ((q, k, v), dict(dropout_p=1.5), {}),
    }


@pytest.mark.parametrize("name", sorted(_error_cases()))
def test_errors_where_torch_refuses(name):
    inputs, overrides, fwd = _error_cases()[name]
    params = dict(make_params(np.random.default_rng(1), np.float64), **overrides)
    with pytest.raises(Exception):
        TF.multi_head_attention_forward(*map(to_torch, inputs), **{k: to_torch(v) for k, v in params.items()},
                                        **{k: to_torch(v) for k, v in fwd.items()})
    with pytest.raises((ValueError, TypeError)) as info:
        F.multi_head_attention_forward(*inputs, **params, **fwd)
    assert str(info.value).startswith("multi_head_attention_forward: ")


def test_error_messages_say_what_was_expected():
    rng = np.random.default_rng(0)
    q, k, v = make_inputs(rng, np.float64)
    params = make_params(rng, np.float64)
    with pytest.raises(ValueError, match=r"expected query \(L, N, 8\) or unbatched \(L, 8\), got shape \(5, 3, 6\)"):
        F.multi_head_attention_forward(q[..., :6], k, v, **params)
    with pytest.raises(ValueError, match=r"expected in_proj_weight of shape \(24, 8\), got shape \(24, 9\)"):
        F.multi_head_attention_forward(q, k, v, **dict(params, in_proj_weight=np.zeros((3 * E, E + 1))))
    with pytest.raises(ValueError, match=r"expected static_k of shape \(N \* num_heads, S, head_dim\) = \(6, S, 4\)"):
        F.multi_head_attention_forward(q, k, v, **dict(params, static_k=np.zeros((N, S, D))))
    with pytest.raises(ValueError, match=r"expected attn_mask of shape \(5, 4\) or \(6, 5, 4\), got shape \(3, 5, 4\)"):
        F.multi_head_attention_forward(q, k, v, **params, attn_mask=np.zeros((N, L, S), bool))
    out, _, saved = F.multi_head_attention_forward(q, k, v, **params, need_weights=False, return_saved=True)
    with pytest.raises(ValueError, match="^multi_head_attention_backward: got grad_weights, but forward ran with "
                                         "need_weights=False"):
        F.multi_head_attention_backward(np.ones(out.shape), saved, np.ones((N, L, S)))


def test_mismatched_mask_dtypes_warn_as_torch():
    rng = np.random.default_rng(0)
    q, k, v = make_inputs(rng, np.float32)
    params = make_params(rng, np.float32)
    fwd = dict(key_padding_mask=np.zeros((N, S), bool), attn_mask=np.zeros((L, S), np.float32))
    with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask is deprecated"):
        TF.multi_head_attention_forward(*map(to_torch, (q, k, v)), **{k_: to_torch(x) for k_, x in params.items()},
                                        **{k_: to_torch(x) for k_, x in fwd.items()})
    with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask is deprecated"):
        F.multi_head_attention_forward(q, k, v, **params, **fwd)

"""Scaled dot-product attention and multi-head attention, each beside its backward twin.

softmax(Q K^T * scale + bias) V, batched over any leading dimensions (they broadcast, as in
torch's matmul). Masks become one additive ``bias``: a boolean mask keeps the positions that
are True (False -> -inf), a floating mask is added as is, ``is_causal`` keeps j <= i.
Multi-head attention (torch's ``multi_head_attention_forward``, which ``nn.MultiheadAttention``
runs) projects query, key and value, splits E into heads, attends, and projects back; its masks
follow torch's MultiheadAttention convention (bool True = masked out).
"""
import math
import warnings
from collections import namedtuple

import numpy as np

from ...random import get_generator
from ._broadcast import sum_to
from .linear import _rows, linear, linear_backward  # _rows: one BLAS call, not numpy's stacked 3-D @ 2-D

__all__ = ["scaled_dot_product_attention", "scaled_dot_product_attention_backward", "multi_head_attention_forward",
           "multi_head_attention_backward"]


def attention_bias(attn_mask, is_causal, L, S, dtype, who="scaled_dot_product_attention"):
    """The additive bias (broadcastable to (*, L, S)) for a mask and/or causal flag; None if neither.

    ``attn_mask`` follows sdpa's convention: bool True = may attend, float = added.
    """
    if is_causal and attn_mask is not None:
        raise ValueError(f"{who}: Explicit attn_mask should not be set when is_causal=True")
    if is_causal:
        # torch aligns the causal mask top-left: row i sees keys 0..i, also when L != S
        return np.where(np.tri(L, S, dtype=bool), dtype.type(0), dtype.type(-np.inf))
    if attn_mask is None:
        return None
    mask = np.asarray(attn_mask)
    if mask.dtype == bool:
        return np.where(mask, dtype.type(0), dtype.type(-np.inf))
    if mask.dtype.kind != "f":
        raise TypeError(f"{who}: expected attn_mask of dtype bool or floating, got {mask.dtype}")
    return mask.astype(dtype, copy=False)


def softmax_lastdim(scores, fully_masked="zero"):
    """Stable softmax over the last axis, in place on ``scores``.

    A row that is -inf everywhere has no distribution: ``fully_masked="zero"`` gives zeros
    (torch's scaled_dot_product_attention), ``"nan"`` gives NaN (torch's plain softmax,
    which MultiheadAttention uses when it returns its weights).
    """
    if scores.shape[-1] == 0:  # no keys: nothing to normalize (max over an empty axis would fail)
        return scores
    row_max = scores.max(axis=-1, keepdims=True)
    dead = np.isneginf(row_max)
    if dead.any():
        row_max[dead] = 0
    scores -= row_max
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    if dead.any():
        total[dead] = 1 if fully_masked == "zero" else np.nan
    scores /= total
    return scores


def _check(query, key, value, enable_gqa):
    for name, x in (("query", query), ("key", key), ("value", value)):
        if x.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: expected {name} of shape (*, seq, features), "
                             f"got shape {x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(f"scaled_dot_product_attention: expected a floating-point {name}, got dtype {x.dtype}")
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError("scaled_dot_product_attention: expected query, key, and value to have the same dtype, "
                        f"got {query.dtype}, {key.dtype} and {value.dtype}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: query (*, L, {query.shape[-1]}) and key (*, S, E) need the "
                         f"same feature size E, got query shape {query.shape} and key shape {key.shape}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key and value need the same sequence length S, "
                         f"got key shape {key.shape} and value shape {value.shape}")
    lead = [x.shape[:-3 if enable_gqa and x.ndim > 2 else -2] for x in (query, key, value)]
    try:
        np.broadcast_shapes(*lead)
    except ValueError:
        raise ValueError(f"scaled_dot_product_attention: the batch shape of query {query.shape}, key {key.shape} and "
                         f"value {value.shape} does not broadcast") from None
    if enable_gqa:
        hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if not hk or not hv or hq % hk or hq % hv:
            raise ValueError(f"scaled_dot_product_attention: with enable_gqa the query heads ({hq}) must be a "
                             f"multiple of the key heads ({hk}) and value heads ({hv})")


def _broadcasts(shape, target):
    """Whether ``shape`` broadcasts to ``target`` without growing it."""
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(shape[::-1], target[::-1]))


def _repeat_heads(x, heads):
    """Grouped-query attention: each key/value head serves heads // x.shape[-3] query heads."""
    reps = heads // x.shape[-3]
    return x if reps == 1 else np.repeat(x, reps, axis=-3)


def _sum_heads(grad, heads):
    """Backward of ``_repeat_heads``: fold the repeated query heads back onto their key/value head."""
    reps = grad.shape[-3] // heads
    if reps == 1:
        return grad
    return grad.reshape(grad.shape[:-3] + (heads, reps) + grad.shape[-2:]).sum(axis=-3)


def dropout_keep(shape, p, dtype):
    """The dropout multiplier: 0 where dropped, 1/(1-p) where kept (from the global generator)."""
    if p >= 1:
        return np.zeros(shape, dtype=dtype)
    keep = get_generator().random(shape, dtype=np.float64 if dtype == np.float64 else np.float32) >= p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def attention(q, k, v, bias, scale, dropout_p=0.0, fully_masked="zero"):
    """softmax(q k^T scale + bias) v -> (output, attn, keep); attn before dropout, keep None without it."""
    scores = np.matmul(q * q.dtype.type(scale), np.swapaxes(k, -1, -2))
    if bias is not None:
        scores = scores + bias
    attn = softmax_lastdim(scores, fully_masked)
    keep = dropout_keep(attn.shape, dropout_p, attn.dtype) if dropout_p > 0 else None
    out = np.matmul(attn if keep is None else attn * keep, v)
    return out, attn, keep


def attention_backward(grad, q, k, v, attn, keep, scale, grad_weights=None):
    """(dq, dk, dv) of ``attention`` from d output and, optionally, d of the post-dropout weights."""
    weights = attn if keep is None else attn * keep
    dv = np.matmul(np.swapaxes(weights, -1, -2), grad)
    dweights = np.matmul(grad, np.swapaxes(v, -1, -2))
    if grad_weights is not None:
        dweights += grad_weights
    return scores_backward(dweights, q, k, attn, keep, scale) + (dv,)


def scores_backward(dweights, q, k, attn, keep, scale):
    """(dq, dk) from the gradient of the (post-dropout) attention weights."""
    dattn = dweights if keep is None else dweights * keep
    # softmax Jacobian: dS = P * (dP - sum_j dP_j P_j)
    dscores = attn * (dattn - np.sum(dattn * attn, axis=-1, keepdims=True))
    s = q.dtype.type(scale)
    dq = np.matmul(dscores, k) * s
    dk = np.matmul(np.swapaxes(dscores, -1, -2), q) * s
    return dq, dk


def _default_scale(query):
    """1 / sqrt(E); with E = 0 every score is 0 whatever the scale (torch scales q and k, both empty)."""
    e = query.shape[-1]
    return 1.0 / math.sqrt(e) if e else 1.0


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, *, return_weights=False):
    """softmax(Q K^T * scale + mask) V, as ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        query: (*, L, E); key: (*, S, E); value: (*, S, Ev). Leading dimensions broadcast;
            with ``enable_gqa`` the head axis (-3) of key/value may divide that of query.
        attn_mask: bool (True = take part) or float (added), broadcastable to (*, L, S).
        dropout_p: dropout on the attention weights, always applied when > 0 (as torch;
            pass 0.0 in evaluation). Draws from ``torchlite.random.get_generator()``.
        is_causal: keep only keys j <= i (top-left aligned); excludes ``attn_mask``.
        scale: default 1/sqrt(E).
        return_weights: torchlite addition; also return ``attn`` (*, L, S), the softmax
            weights before dropout, and ``keep``, the dropout multiplier or None: the two
            things ``scaled_dot_product_attention_backward`` needs.
    Returns:
        output (*, L, Ev), or (output, attn, keep) with ``return_weights``. A query row whose
        keys are all masked gets zeros (and zero gradient), as torch.
    """
    query, key, value = np.asarray(query), np.asarray(key), np.asarray(value)
    _check(query, key, value, enable_gqa)
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    L, S = query.shape[-2], key.shape[-2]
    bias = attention_bias(attn_mask, is_causal, L, S, query.dtype)
    if bias is not None and not _broadcasts(bias.shape, query.shape[:-1] + (S,)):
        raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {bias.shape} does not broadcast to "
                         f"(*, L, S) = {query.shape[:-1] + (S,)}")
    if enable_gqa:
        key, value = _repeat_heads(key, query.shape[-3]), _repeat_heads(value, query.shape[-3])
    scale = _default_scale(query) if scale is None else scale
    out, attn, keep = attention(query, key, value, bias, scale, dropout_p)
    return (out, attn, keep) if return_weights else out


def scaled_dot_product_attention_backward(grad_output, query, key, value, attn, keep=None, scale=None,
                                          enable_gqa=False):
    """Gradients of ``scaled_dot_product_attention``: (dquery, dkey, dvalue), shaped as the inputs.

    ``attn`` and ``keep`` are what the forward returned with ``return_weights=True``.
    """
    query, key, value = np.asarray(query), np.asarray(key), np.asarray(value)
    k, v = key, value
    if enable_gqa:
        k, v = _repeat_heads(key, query.shape[-3]), _repeat_heads(value, query.shape[-3])
    scale = _default_scale(query) if scale is None else scale
    grad = np.asarray(grad_output, dtype=query.dtype)
    dq, dk, dv = attention_backward(grad, query, k, v, attn, keep, scale)
    if enable_gqa:
        dk, dv = _sum_heads(dk, key.shape[-3]), _sum_heads(dv, value.shape[-3])
    return sum_to(dq, query.shape), sum_to(dk, key.shape), sum_to(dv, value.shape)


# ----------------------------------------------------------------------------- multi-head attention
#: What ``multi_head_attention_backward`` returns: one gradient per differentiable argument of
#: ``multi_head_attention_forward``, named after it (None where that argument was None or unused).
MultiheadAttentionGrads = namedtuple("MultiheadAttentionGrads", [
    "query", "key", "value", "in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj_weight",
    "out_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight", "static_k", "static_v"])

# What the forward keeps for the backward (``return_saved=True``).
_MHASaved = namedtuple("_MHASaved", [
    "q", "k", "v", "fused", "packed", "proj_weights", "has_in_bias", "qh", "kh", "vh", "attn", "keep", "merged",
    "out_proj_weight", "has_out_bias", "bias_kv", "add_zero_attn", "static_k", "static_v", "batch_first", "batched",
    "need_weights", "average_attn_weights"])


def _heads(x, num_heads):
    """(N, T, E) -> (N, H, T, E // H) (a view)."""
    N, T, E = x.shape
    return x.reshape(N, T, num_heads, E // num_heads).transpose(0, 2, 1, 3)


def _merge_heads(x):
    """Inverse of ``_heads``: (N, H, T, D) -> (N, T, H * D)."""
    N, H, T, D = x.shape
    return x.transpose(0, 2, 1, 3).reshape(N, T, H * D)


def _to_batch_first(x, batched, batch_first):
    """An input (or output gradient) as (N, T, F): unbatched gets N = 1, time-first a transposed view.

    Time-first inputs are computed batch first, as the module always has: measured faster than
    projecting (T, N, E) rows and splitting heads from there."""
    if not batched:
        return x[None]
    return x if batch_first else x.transpose(1, 0, 2)


def _from_batch_first(x, batched, batch_first):
    """Inverse of ``_to_batch_first``."""
    if not batched:
        return x[0]
    return x if batch_first else x.transpose(1, 0, 2)


def _pad_last(mask):
    """Append one allowed (0) column: the key added by add_bias_kv or add_zero_attn."""
    if mask is None:
        return None
    return np.concatenate([mask, np.zeros(mask.shape[:-1] + (1,), dtype=mask.dtype)], axis=-1)


def _append_key(x, row):
    """Append ``row`` (broadcast to (N, H, 1, D)) to the keys or values (N, H, S, D)."""
    return np.concatenate([x, np.broadcast_to(row, x.shape[:2] + (1, x.shape[3]))], axis=2)


def _fail(who, what, got, cls=ValueError):
    return cls(f"{who}: expected {what}, got {got}")


def _each(fn, query, key, value):
    """``fn(x, name)`` for query, key and value; an array passed as several of them is mapped once, so that
    self-attention (one array three times) stays recognizable by identity."""
    q = fn(query, "query")
    k = q if key is query else fn(key, "key")
    v = k if value is key else q if value is query else fn(value, "value")
    return q, k, v


def _cast_input(who, dtype):
    def cast(x, name):
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiub":
            raise _fail(who, f"a floating-point {name}", f"dtype {arr.dtype}", TypeError)
        return arr.astype(dtype, copy=False)
    return cast


def _check_inputs(who, q, k, v, embed_dim, kdim, vdim, batch_first):
    def layout(seq, feat):
        batched = f"(N, {seq}, {feat})" if batch_first else f"({seq}, N, {feat})"
        return f"{batched} or unbatched ({seq}, {feat})"
    if q.ndim not in (2, 3) or q.shape[-1] != embed_dim:
        raise _fail(who, f"query {layout('L', embed_dim)}", f"shape {q.shape}")
    if k.ndim != q.ndim or k.shape[-1] != kdim:
        raise _fail(who, f"key {layout('S', kdim)} ({q.ndim}-D like the query)", f"shape {k.shape}")
    if v.ndim != q.ndim or v.shape[-1] != vdim:
        raise _fail(who, f"value {layout('S', vdim)} ({q.ndim}-D like the query)", f"shape {v.shape}")
    if k.shape[:-1] != v.shape[:-1]:
        raise _fail(who, "key and value with the same sequence length and batch size",
                    f"key shape {k.shape} and value shape {v.shape}")
    batch_axis = 0 if batch_first else 1
    if q.ndim == 3 and q.shape[batch_axis] != k.shape[batch_axis]:
        raise _fail(who, "query and key with the same batch size", f"query shape {q.shape} and key shape {k.shape}")


def _additive_mask(who, mask, name, expected, dtype):
    """A bool or float mask as an additive float mask (bool True -> -inf), shape-checked."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool and m.dtype.kind != "f":
        raise _fail(who, f"{name} of dtype bool or floating", f"dtype {m.dtype}", TypeError)
    if m.shape not in expected:
        raise _fail(who, f"{name} of shape {' or '.join(str(s) for s in expected)}", f"shape {m.shape}")
    if m.dtype == bool:
        return np.where(m, dtype.type(-np.inf), dtype.type(0))
    return m.astype(dtype, copy=False)


def _static(who, x, name, N, H, D, dtype):
    """A static key or value (N * H, S, D) as (N, H, S, D)."""
    if x is None:
        return None
    arr = np.asarray(x)
    if arr.ndim != 3 or arr.shape[0] != N * H or arr.shape[2] != D:
        raise _fail(who, f"{name} of shape (N * num_heads, S, head_dim) = ({N * H}, S, {D})", f"shape {arr.shape}")
    return arr.astype(dtype, copy=False).reshape(N, H, arr.shape[1], D)


def _multi_head_attention(who, query, key, value, num_heads, packed, proj_weights, in_proj_bias, bias_k, bias_v,
                          add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, key_padding_mask, need_weights,
                          attn_mask, average_attn_weights, is_causal, static_k=None, static_v=None,
                          batch_first=False):
    """Validate the inputs and masks (errors start with ``who``) and compute multi-head attention.

    ``packed`` is the (3E, E) in_proj_weight or None; ``proj_weights`` its three row blocks or the
    separate q/k/v weights; inputs are (T, N, F) or, ``batch_first``, (N, T, F), or unbatched (T, F).
    Returns (output, weights or None, saved for ``_multi_head_attention_backward``).
    """
    dtype = out_proj_weight.dtype
    q, k, v = _each(_cast_input(who, dtype), query, key, value)
    E, H = proj_weights[0].shape[0], num_heads
    _check_inputs(who, q, k, v, E, proj_weights[1].shape[1], proj_weights[2].shape[1], batch_first)
    batched = q.ndim == 3
    q, k, v = _each(lambda x, name: _to_batch_first(x, batched, batch_first), q, k, v)
    N, L, S = q.shape[0], q.shape[1], k.shape[1]
    D = E // H
    sk, sv = _static(who, static_k, "static_k", N, H, D, dtype), _static(who, static_v, "static_v", N, H, D, dtype)
    Sk = S if sk is None else sk.shape[2]
    if (S if sv is None else sv.shape[2]) != Sk:
        raise _fail(who, "keys and values of the same sequence length (static_k/static_v included)",
                    f"{Sk} keys and {S if sv is None else sv.shape[2]} values")
    kpm = _additive_mask(who, key_padding_mask, "key_padding_mask", [(N, Sk)] if batched else [(Sk,)], dtype)
    if is_causal and attn_mask is None:
        raise ValueError(f"{who}: Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                         "module method `generate_square_subsequent_mask` to create this mask.")
    if key_padding_mask is not None and attn_mask is not None and np.asarray(key_padding_mask).dtype != np.asarray(
            attn_mask).dtype:
        warnings.warn("Support for mismatched key_padding_mask and attn_mask is deprecated. Use same type for both "
                      "instead.", stacklevel=3)
    # torch trusts the is_causal hint (and drops attn_mask) only on its fused no-weights path
    causal = is_causal and kpm is None and not need_weights
    mask = None if causal else _additive_mask(who, attn_mask, "attn_mask", [(L, S), (N * H, L, S)], dtype)
    if mask is not None and Sk != S:
        raise _fail(who, f"static_k of the key's sequence length {S} when attn_mask is given", f"length {Sk}")

    fused = packed is not None and q is k is v and sk is None and sv is None
    qp, kp, vp = _project(q, k, v, fused, packed, proj_weights, in_proj_bias, sk is None, sv is None)
    qh = _heads(qp, H)
    kh = sk if sk is not None else _heads(kp, H)
    vh = sv if sv is not None else _heads(vp, H)
    if bias_k is not None:
        kh = _append_key(kh, bias_k.reshape(1, H, 1, D))
        vh = _append_key(vh, bias_v.reshape(1, H, 1, D))
        mask, kpm = _pad_last(mask), _pad_last(kpm)
    if add_zero_attn:
        kh, vh = _append_key(kh, dtype.type(0)), _append_key(vh, dtype.type(0))
        mask, kpm = _pad_last(mask), _pad_last(kpm)

    Lk = kh.shape[2]
    if causal:
        bias = np.where(np.tri(L, Lk, dtype=bool), dtype.type(0), dtype.type(-np.inf))
    else:
        # a 2-D (L, S) mask broadcasts; a 3-D one is laid out (N * H, L, S)
        bias = mask.reshape(N, H, L, Lk) if mask is not None and mask.ndim == 3 else mask
        if kpm is not None:
            kb = kpm.reshape(N, 1, 1, Lk)
            bias = kb if bias is None else bias + kb
    out, attn, keep = attention(qh, kh, vh, bias, 1.0 / math.sqrt(D), dropout_p, "nan" if need_weights else "zero")
    merged = _merge_heads(out)
    y = linear(merged, out_proj_weight, out_proj_bias)
    saved = _MHASaved(q, k, v, fused, packed is not None, proj_weights, in_proj_bias is not None, qh, kh, vh, attn,
                      keep, merged, out_proj_weight, out_proj_bias is not None, bias_k is not None, add_zero_attn,
                      sk is not None, sv is not None, batch_first, batched, need_weights, average_attn_weights)
    y = _from_batch_first(y, batched, batch_first)
    if not need_weights:
        return y, None, saved
    weights = attn if keep is None else attn * keep
    if average_attn_weights:
        weights = weights.mean(axis=1)
    return y, (weights if batched else weights[0]), saved


def _thirds(a):
    """The q, k and v blocks (views) of packed in-projection rows or a packed bias (np.split costs ~5 us more)."""
    E = a.shape[0] // 3
    return a[:E], a[E:2 * E], a[2 * E:]


def _project(q, k, v, fused, packed, proj_weights, in_proj_bias, need_k, need_v):
    """The in-projections of q, k, v (None for one a static key/value replaces); one GEMM for packed self-attention."""
    if fused:
        qkv = _rows(q) @ packed.T
        if in_proj_bias is not None:
            qkv += in_proj_bias
        E = qkv.shape[1] // 3
        return [qkv[:, i * E:(i + 1) * E].reshape(q.shape[:-1] + (E,)) for i in range(3)]
    biases = (None,) * 3 if in_proj_bias is None else _thirds(in_proj_bias)
    return [linear(x, w, b) if need else None
            for x, w, b, need in zip((q, k, v), proj_weights, biases, (True, need_k, need_v))]


def _project_backward(grads, s):
    """(dq, dk, dv, d in_proj_weight or None, d q/k/v weights or None, d in_proj_bias or None).

    A projection a static key/value replaced (its grad None) gets zero weight and bias gradients, no input one."""
    rows = [None if g is None else _rows(g) for g in grads]
    d_packed = d_separate = d_bias = None
    if s.fused:
        dqkv = np.concatenate(rows, axis=1)
        d_packed = dqkv.T @ _rows(s.q)
        if s.has_in_bias:
            d_bias = dqkv.sum(axis=0)
    else:
        d_separate = [np.zeros(w.shape, w.dtype) if r is None else r.T @ _rows(x)
                      for r, x, w in zip(rows, (s.q, s.k, s.v), s.proj_weights)]
        if s.packed:
            d_packed, d_separate = np.concatenate(d_separate, axis=0), None
        if s.has_in_bias:
            d_bias = np.concatenate([np.zeros(w.shape[0], w.dtype) if r is None else r.sum(axis=0)
                                     for r, w in zip(rows, s.proj_weights)])
    dxs = [None if r is None else (r @ w).reshape(x.shape) for r, w, x in zip(rows, s.proj_weights, (s.q, s.k, s.v))]
    return dxs, d_packed, d_separate, d_bias


def _multi_head_attention_backward(grad_output, grad_weights, s, who):
    """``MultiheadAttentionGrads`` from the upstream gradients of the output and (optionally) the returned weights."""
    dtype = s.q.dtype
    g = _to_batch_first(np.asarray(grad_output, dtype=dtype), s.batched, s.batch_first)
    dmerged, d_out_w, d_out_b = linear_backward(g, s.merged, s.out_proj_weight, True, s.has_out_bias)
    N, H, _, D = s.qh.shape
    gw = None
    if grad_weights is not None and not s.need_weights:
        raise ValueError(f"{who}: got grad_weights, but forward ran with need_weights=False and returned no weights")
    if grad_weights is not None:
        gw = np.asarray(grad_weights, dtype=dtype)
        if not s.batched:
            gw = gw[None]
        if s.average_attn_weights:
            gw = np.broadcast_to(gw[:, None] / dtype.type(H), s.attn.shape)
    dqh, dkh, dvh = attention_backward(_heads(dmerged, H), s.qh, s.kh, s.vh, s.attn, s.keep,
                                       1.0 / math.sqrt(D), gw)
    if s.add_zero_attn:
        dkh, dvh = dkh[:, :, :-1], dvh[:, :, :-1]
    d_bias_k = d_bias_v = None
    if s.bias_kv:
        d_bias_k = dkh[:, :, -1].sum(axis=0).reshape(1, 1, H * D)
        d_bias_v = dvh[:, :, -1].sum(axis=0).reshape(1, 1, H * D)
        dkh, dvh = dkh[:, :, :-1], dvh[:, :, :-1]
    d_static_k = dkh.reshape(N * H, -1, D) if s.static_k else None
    d_static_v = dvh.reshape(N * H, -1, D) if s.static_v else None
    grads = (_merge_heads(dqh), None if s.static_k else _merge_heads(dkh), None if s.static_v else _merge_heads(dvh))
    dxs, d_packed, d_separate, d_in_bias = _project_backward(grads, s)
    dxs = [None if d is None else _from_batch_first(d, s.batched, s.batch_first) for d in dxs]
    return MultiheadAttentionGrads(*dxs, d_packed, d_in_bias, d_bias_k, d_bias_v, d_out_w, d_out_b,
                                   *(d_separate or (None,) * 3), d_static_k, d_static_v)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False, *, return_saved=False):
    """torch's ``multi_head_attention_forward``: the math of ``nn.MultiheadAttention``, which runs it.

    Shapes (E = embed_dim_to_check, H = num_heads, D = E // H):
        query (L, N, E) or unbatched (L, E); key (S, N, kdim), value (S, N, vdim) (unbatched (S, *)).
        in_proj_weight (3E, E) packed q/k/v rows, or with ``use_separate_proj_weight``
        q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim); in_proj_bias (3E,);
        bias_k, bias_v (1, 1, E), appended to the keys and values; out_proj_weight (E, E), out_proj_bias (E,).
        static_k, static_v (N * H, S', D): used instead of the projected keys / values.
        key_padding_mask (N, S) or (S,); attn_mask (L, S) or (N * H, L, S): bool True = masked out,
        float = added. ``is_causal`` is a hint that attn_mask is causal, trusted (the mask
        dropped) only with need_weights=False and no key_padding_mask, as torch.
        Dropout (``dropout_p`` when ``training``) draws from ``torchlite.random.get_generator()``.
    Returns:
        (attn_output (L, N, E) or (L, E), attn_weights or None): weights (N, L, S) averaged over
        heads or (N, H, L, S) per head (no N unbatched), after dropout. S grows by one with bias_k
        and one with add_zero_attn. ``return_saved=True`` (torchlite) adds a third item, what
        ``multi_head_attention_backward`` needs. Inputs, masks and parameters are cast to
        out_proj_weight's dtype.
    """
    who = "multi_head_attention_forward"
    out_w = np.asarray(out_proj_weight)
    if out_w.dtype.kind != "f":
        raise _fail(who, "a floating-point out_proj_weight", f"dtype {out_w.dtype}", TypeError)
    E, dtype = embed_dim_to_check, out_w.dtype
    if num_heads <= 0 or E % num_heads:
        raise ValueError(f"{who}: embed_dim {E} not divisible by num_heads {num_heads}")
    param = _param(who, dtype)
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError(f"{who}: use_separate_proj_weight is True but q_proj_weight, k_proj_weight or "
                             "v_proj_weight is None")
        packed = None
        proj_weights = (param(q_proj_weight, "q_proj_weight", (E, E)),
                        param(k_proj_weight, "k_proj_weight", (E, None)),
                        param(v_proj_weight, "v_proj_weight", (E, None)))
    else:
        if in_proj_weight is None:
            raise ValueError(f"{who}: use_separate_proj_weight is False but in_proj_weight is None")
        packed = param(in_proj_weight, "in_proj_weight", (3 * E, E))
        proj_weights = _thirds(packed)
    if (bias_k is None) != (bias_v is None):
        raise ValueError(f"{who}: expected bias_k and bias_v both given or both None")
    if bias_k is not None and (static_k is not None or static_v is not None):
        raise ValueError(f"{who}: bias_k and bias_v cannot be added to a static key or value")
    if training and not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{who}: dropout probability has to be between 0 and 1, but got {dropout_p}")
    out = _multi_head_attention(
        who, query, key, value, num_heads, packed, proj_weights, param(in_proj_bias, "in_proj_bias", (3 * E,)),
        param(bias_k, "bias_k", (1, 1, E)), param(bias_v, "bias_v", (1, 1, E)), add_zero_attn,
        dropout_p if training else 0.0, param(out_w, "out_proj_weight", (E, E)),
        param(out_proj_bias, "out_proj_bias", (E,)), key_padding_mask, need_weights, attn_mask, average_attn_weights,
        is_causal, static_k, static_v)
    return out if return_saved else out[:2]


def _param(who, dtype):
    """A parameter check: None passes; else an array of ``dtype`` whose shape matches (None = any size)."""
    def check(value, name, shape):
        if value is None:
            return None
        arr = np.asarray(value)
        if arr.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, arr.shape)):
            expected = "(" + ", ".join("*" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
            raise _fail(who, f"{name} of shape {expected}", f"shape {arr.shape}")
        return arr.astype(dtype, copy=False)
    return check


def multi_head_attention_backward(grad_output, saved, grad_weights=None):
    """Gradients of ``multi_head_attention_forward``, a ``MultiheadAttentionGrads`` named after its arguments.

    ``saved`` is what forward returned third with ``return_saved=True``; ``grad_weights`` the
    gradient of the returned weights, if any. Entries are None for arguments that were None
    (and for key/value replaced by static_k/static_v); an array passed as several of query, key
    and value gets the sum of their gradients.
    """
    return _multi_head_attention_backward(grad_output, grad_weights, saved, "multi_head_attention_backward")

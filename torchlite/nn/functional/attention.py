"""Scaled dot-product attention and its backward twin.

softmax(Q K^T * scale + bias) V, batched over any leading dimensions (they broadcast, as in
torch's matmul). Masks become one additive ``bias``: a boolean mask keeps the positions that
are True (False -> -inf), a floating mask is added as is, ``is_causal`` keeps j <= i.
"""
import math

import numpy as np

from ...random import get_generator

__all__ = ["scaled_dot_product_attention", "scaled_dot_product_attention_backward"]


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
    if enable_gqa:
        hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if hq % hk or hq % hv:
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


def _reduce_to(grad, shape):
    """Sum a broadcast gradient back to the shape of the input it came from."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


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
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
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
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    grad = np.asarray(grad_output, dtype=query.dtype)
    dq, dk, dv = attention_backward(grad, query, k, v, attn, keep, scale)
    if enable_gqa:
        dk, dv = _sum_heads(dk, key.shape[-3]), _sum_heads(dv, value.shape[-3])
    return _reduce_to(dq, query.shape), _reduce_to(dk, key.shape), _reduce_to(dv, value.shape)

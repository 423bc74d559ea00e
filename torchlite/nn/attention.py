"""MultiheadAttention, as ``torch.nn.MultiheadAttention``: same parameters, masks and outputs."""
import math

import numpy as np

from .._dtype import get_default_dtype
from .functional.attention import attention, attention_backward
from . import init
from .linear import Linear
from .module import Module, _check_device
from .parameter import Parameter

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """The Linear class torch uses for ``MultiheadAttention.out_proj`` (same math; kept for equal reprs)."""


class MultiheadAttention(Module):
    """Attention from L queries to S key/value pairs over ``num_heads`` heads of size embed_dim // num_heads.

    Args:
        embed_dim: E, the query and output feature size.
        num_heads: heads; must divide ``embed_dim``.
        dropout: dropout on the attention weights in training (``torchlite.random`` generator).
        bias: learn ``in_proj_bias`` and ``out_proj.bias``.
        add_bias_kv: learn ``bias_k`` and ``bias_v`` (1, 1, E), appended to the keys and values.
        add_zero_attn: append a zero key and value (per head) after the projections.
        kdim, vdim: key and value feature sizes (default E). When both equal E the projections
            are packed in ``in_proj_weight`` (3E, E); else ``q_proj_weight`` (E, E),
            ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim).
        batch_first: inputs and outputs are (N, L, E) instead of (L, N, E).
    Shape:
        query (L, N, E), key (S, N, kdim), value (S, N, vdim) (batch first: N leads; unbatched:
        no N). Output (L, N, E) as the query; weights (N, L, S) averaged over heads or
        (N, num_heads, L, S) per head (no N unbatched). S grows by one for ``add_bias_kv`` and
        one for ``add_zero_attn``.
    Masks (torch's convention, the opposite of scaled_dot_product_attention's):
        key_padding_mask (N, S) or (S,): bool True = ignore that key; float = added.
        attn_mask (L, S) or (N * num_heads, L, S): bool True = not allowed; float = added.
        A query whose keys are all masked gives NaN with ``need_weights=True`` and zeros
        with ``need_weights=False``, exactly as torch.
    Backward:
        ``backward(grad_output, grad_weights=None)`` returns (dquery, dkey, dvalue). In
        self-attention, where one array x is passed as query, key and value, dLoss/dx is
        the sum of the three.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        _check_device(self, device)
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than 0, "
                             f"got embed_dim={embed_dim} and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim must be divisible by num_heads, "
                             f"got embed_dim={embed_dim} and num_heads={num_heads}")
        super().__init__()
        dtype = dtype or get_default_dtype()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads

        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, embed_dim), dtype=dtype))
            self.bias_v = Parameter(np.empty((1, 1, embed_dim), dtype=dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    # ----------------------------------------------------------------- checks
    def _describe(self):
        """One line naming this module in error messages (its repr spans several lines)."""
        parts = [f"embed_dim={self.embed_dim}", f"num_heads={self.num_heads}"]
        if self.kdim != self.embed_dim:
            parts.append(f"kdim={self.kdim}")
        if self.vdim != self.embed_dim:
            parts.append(f"vdim={self.vdim}")
        if self.batch_first:
            parts.append("batch_first=True")
        return f"MultiheadAttention({', '.join(parts)})"

    def _fail(self, what, got, cls=ValueError):
        return cls(f"{self._describe()}: expected {what}, got {got}")

    def _cast(self, x, name, dtype):
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiub":
            raise self._fail(f"a floating-point {name}", f"dtype {arr.dtype}", TypeError)
        return arr.astype(dtype, copy=False)

    def _layout(self, seq, feat):
        batched = f"({seq}, N, {feat})" if not self.batch_first else f"(N, {seq}, {feat})"
        return f"{batched} or unbatched ({seq}, {feat})"

    def _check_inputs(self, q, k, v):
        if q.ndim not in (2, 3) or q.shape[-1] != self.embed_dim:
            raise self._fail(f"query {self._layout('L', self.embed_dim)}", f"shape {q.shape}")
        if k.ndim != q.ndim or k.shape[-1] != self.kdim:
            raise self._fail(f"key {self._layout('S', self.kdim)} ({q.ndim}-D like the query)", f"shape {k.shape}")
        if v.ndim != q.ndim or v.shape[-1] != self.vdim:
            raise self._fail(f"value {self._layout('S', self.vdim)} ({q.ndim}-D like the query)", f"shape {v.shape}")
        if k.shape[:-1] != v.shape[:-1]:
            raise self._fail("key and value with the same sequence length and batch size",
                             f"key shape {k.shape} and value shape {v.shape}")
        batch_axis = 0 if self.batch_first else 1
        if q.ndim == 3 and q.shape[batch_axis] != k.shape[batch_axis]:
            raise self._fail("query and key with the same batch size", f"query shape {q.shape} and key shape {k.shape}")

    def _mask(self, mask, name, expected, dtype, invert_bool=True):
        """A bool or float mask as an additive float mask (bool True -> -inf), shape-checked."""
        if mask is None:
            return None
        m = np.asarray(mask)
        if m.dtype != bool and m.dtype.kind != "f":
            raise self._fail(f"{name} of dtype bool or floating", f"dtype {m.dtype}", TypeError)
        if m.shape not in expected:
            shapes = " or ".join(str(s) for s in expected)
            raise self._fail(f"{name} of shape {shapes}", f"shape {m.shape}")
        if m.dtype == bool:
            return np.where(m, dtype.type(-np.inf), dtype.type(0))
        return m.astype(dtype, copy=False)

    # ----------------------------------------------------------------- projections
    def _in_proj_parts(self):
        """(weight, bias) for q, k and v; views into the packed parameters when packed."""
        E = self.embed_dim
        b = self.in_proj_bias.data if self.in_proj_bias is not None else None
        bs = [None] * 3 if b is None else [b[:E], b[E:2 * E], b[2 * E:]]
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight.data
            ws = [w[:E], w[E:2 * E], w[2 * E:]]
        else:
            ws = [self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data]
        return ws, bs

    def _project(self, q, k, v, self_attention):
        """q, k, v (N, *, in) -> projected (N, *, E); one GEMM for packed self-attention."""
        # 2-D GEMMs: numpy's stacked (3-D @ 2-D) matmul is many times slower than one BLAS call
        if self_attention and self._qkv_same_embed_dim:
            qkv = _rows(q) @ self.in_proj_weight.data.T
            if self.in_proj_bias is not None:
                qkv += self.in_proj_bias.data
            return [part.reshape(q.shape[:-1] + (self.embed_dim,)) for part in np.split(qkv, 3, axis=-1)]
        ws, bs = self._in_proj_parts()
        out = []
        for x, w, b in zip((q, k, v), ws, bs):
            y = _rows(x) @ w.T
            if b is not None:
                y += b
            out.append(y.reshape(x.shape[:-1] + (self.embed_dim,)))
        return out

    def _project_backward(self, grads, inputs):
        """Accumulate the in-projection parameter grads; return d inputs."""
        ws, _ = self._in_proj_parts()
        grads = [_rows(g) for g in grads]
        if self._qkv_same_embed_dim and inputs[0] is inputs[1] is inputs[2]:
            dqkv = np.concatenate(grads, axis=1)
            self.in_proj_weight.accumulate_grad(dqkv.T @ _rows(inputs[0]))
            dbias = dqkv.sum(axis=0)
        else:
            dws = [g.T @ _rows(x) for g, x in zip(grads, inputs)]
            if self._qkv_same_embed_dim:
                self.in_proj_weight.accumulate_grad(np.concatenate(dws, axis=0))
            else:
                for p, dw in zip((self.q_proj_weight, self.k_proj_weight, self.v_proj_weight), dws):
                    p.accumulate_grad(dw)
            dbias = np.concatenate([g.sum(axis=0) for g in grads])
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate_grad(dbias)
        return [(g @ w).reshape(x.shape) for g, w, x in zip(grads, ws, inputs)]

    def _split_heads(self, x):
        N, T, _ = x.shape
        return x.reshape(N, T, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def _merge_heads(self, x):
        N, H, T, D = x.shape
        return x.transpose(0, 2, 1, 3).reshape(N, T, H * D)

    # ----------------------------------------------------------------- forward and backward
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """Returns (attn_output, attn_weights or None); see the class docstring for shapes."""
        dtype = self.out_proj.weight.dtype
        self_attention = key is query and value is query
        q = self._cast(query, "query", dtype)
        k = q if key is query else self._cast(key, "key", dtype)
        v = k if value is key else self._cast(value, "value", dtype)
        self._check_inputs(q, k, v)
        batched = q.ndim == 3
        if not batched:
            q, k, v = q[None], k[None], v[None]
        elif not self.batch_first:
            q, k, v = (x.transpose(1, 0, 2) for x in (q, k, v))
        N, L, _ = q.shape
        S, H = k.shape[1], self.num_heads

        kpm = self._mask(key_padding_mask, "key_padding_mask", [(N, S)] if batched else [(S,)], dtype)
        if is_causal and attn_mask is None:
            raise ValueError(f"{self._describe()}: Need attn_mask if specifying the is_causal hint. You may use the "
                             "Transformer module method `generate_square_subsequent_mask` to create this mask.")
        # torch trusts the is_causal hint (and drops attn_mask) only on its fused no-weights path
        causal = is_causal and kpm is None and not need_weights
        mask = None if causal else self._mask(attn_mask, "attn_mask", [(L, S), (N * H, L, S)], dtype)

        qp, kp, vp = self._project(q, k, v, self_attention)
        if self.bias_k is not None:
            kp = np.concatenate([kp, np.broadcast_to(self.bias_k.data, (N, 1, self.embed_dim))], axis=1)
            vp = np.concatenate([vp, np.broadcast_to(self.bias_v.data, (N, 1, self.embed_dim))], axis=1)
            mask, kpm = _pad_last(mask), _pad_last(kpm)
        qh, kh, vh = self._split_heads(qp), self._split_heads(kp), self._split_heads(vp)
        if self.add_zero_attn:
            kh, vh = _pad_seq(kh), _pad_seq(vh)
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
        p = self.dropout if self.training else 0.0
        scale = 1.0 / math.sqrt(self.head_dim)
        out, attn, keep = attention(qh, kh, vh, bias, scale, p, "nan" if need_weights else "zero")
        y = self.out_proj(self._merge_heads(out))
        self.save_for_backward(q, k, v, qh, kh, vh, attn, keep, batched, need_weights, average_attn_weights)

        if not batched:
            y = y[0]
        elif not self.batch_first:
            y = y.transpose(1, 0, 2)
        if not need_weights:
            return y, None
        weights = attn if keep is None else attn * keep
        if average_attn_weights:
            weights = weights.mean(axis=1)
        return y, (weights if batched else weights[0])

    def backward(self, grad_output, grad_weights=None):
        """(dquery, dkey, dvalue) in the inputs' layout; ``grad_weights`` is d of the returned weights."""
        q, k, v, qh, kh, vh, attn, keep, batched, need_weights, average = self.pop_saved()
        dtype = q.dtype
        g = np.asarray(grad_output, dtype=dtype)
        if not batched:
            g = g[None]
        elif not self.batch_first:
            g = g.transpose(1, 0, 2)
        dout = self._split_heads(self.out_proj.backward(g))

        gw = None
        if grad_weights is not None and not need_weights:
            raise ValueError(f"{self._describe()}: got grad_weights, but forward ran with need_weights=False "
                             "and returned no weights")
        if grad_weights is not None:
            gw = np.asarray(grad_weights, dtype=dtype)
            if not batched:
                gw = gw[None]
            if average:
                gw = np.broadcast_to(gw[:, None] / dtype.type(self.num_heads), attn.shape)
        dqh, dkh, dvh = attention_backward(dout, qh, kh, vh, attn, keep, 1.0 / math.sqrt(self.head_dim), gw)
        if self.add_zero_attn:
            dkh, dvh = dkh[:, :, :-1], dvh[:, :, :-1]
        dqp, dkp, dvp = self._merge_heads(dqh), self._merge_heads(dkh), self._merge_heads(dvh)
        if self.bias_k is not None:
            self.bias_k.accumulate_grad(dkp[:, -1:].sum(axis=0, keepdims=True))
            self.bias_v.accumulate_grad(dvp[:, -1:].sum(axis=0, keepdims=True))
            dkp, dvp = dkp[:, :-1], dvp[:, :-1]
        dq, dk, dv = self._project_backward((dqp, dkp, dvp), (q, k, v))
        if not batched:
            return dq[0], dk[0], dv[0]
        if not self.batch_first:
            return tuple(d.transpose(1, 0, 2) for d in (dq, dk, dv))
        return dq, dk, dv


def _rows(x):
    """(..., F) as a 2-D (rows, F) array for one GEMM."""
    return x.reshape(-1, x.shape[-1])


def _pad_last(mask):
    """Append one allowed (0) column: the key added by add_bias_kv or add_zero_attn."""
    if mask is None:
        return None
    return np.concatenate([mask, np.zeros(mask.shape[:-1] + (1,), dtype=mask.dtype)], axis=-1)


def _pad_seq(x):
    """Append a zero key/value row to (N, H, S, D)."""
    return np.concatenate([x, np.zeros(x.shape[:2] + (1, x.shape[3]), dtype=x.dtype)], axis=2)

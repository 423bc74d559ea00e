"""MultiheadAttention, as ``torch.nn.MultiheadAttention``: same parameters, masks and outputs."""
import numpy as np

from .._dtype import get_default_dtype
from .functional.attention import _multi_head_attention, _multi_head_attention_backward, _thirds
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
    The math is ``functional.multi_head_attention_forward`` and ``multi_head_attention_backward``,
    run on these parameters as torch's module runs its functional (out_proj through F.linear).
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

    def _describe(self):
        """One line naming this module in error messages (its repr spans several)."""
        parts = [f"embed_dim={self.embed_dim}", f"num_heads={self.num_heads}"]
        if self.kdim != self.embed_dim:
            parts.append(f"kdim={self.kdim}")
        if self.vdim != self.embed_dim:
            parts.append(f"vdim={self.vdim}")
        if self.batch_first:
            parts.append("batch_first=True")
        return f"MultiheadAttention({', '.join(parts)})"

    def _in_proj_weights(self):
        """(packed in_proj_weight or None, (q, k, v) weights: its row blocks or the separate ones)."""
        if self._qkv_same_embed_dim:
            packed = self.in_proj_weight.data
            return packed, _thirds(packed)
        return None, (self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """Returns (attn_output, attn_weights or None); see the class docstring for shapes."""
        packed, proj_weights = self._in_proj_weights()
        data = lambda p: None if p is None else p.data  # noqa: E731
        y, weights, saved = _multi_head_attention(
            self._describe(), query, key, value, self.num_heads, packed, proj_weights, data(self.in_proj_bias),
            data(self.bias_k), data(self.bias_v), self.add_zero_attn, self.dropout if self.training else 0.0,
            self.out_proj.weight.data, data(self.out_proj.bias), key_padding_mask, need_weights, attn_mask,
            average_attn_weights, is_causal, batch_first=self.batch_first)
        self.save_for_backward(saved)
        return y, weights

    def backward(self, grad_output, grad_weights=None):
        """(dquery, dkey, dvalue) in the inputs' layout; ``grad_weights`` is d of the returned weights."""
        (saved,) = self.pop_saved()
        g = _multi_head_attention_backward(grad_output, grad_weights, saved, self._describe())
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k",
                     "bias_v"):
            if getattr(g, name) is not None:
                getattr(self, name).accumulate_grad(getattr(g, name), fresh=True)
        self.out_proj.weight.accumulate_grad(g.out_proj_weight, fresh=True)
        if g.out_proj_bias is not None:
            self.out_proj.bias.accumulate_grad(g.out_proj_bias, fresh=True)
        return g.query, g.key, g.value

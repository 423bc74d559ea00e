"""TransformerEncoderLayer and TransformerEncoder, as torch's (same submodules and state_dict keys)."""
import copy

import numpy as np

from . import functional as F
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

__all__ = ["TransformerEncoderLayer", "TransformerEncoder"]


def _activation_backward(fn):
    """(backward twin, whether it reads the output rather than the input) of a functional activation."""
    if fn is F.relu:
        return F.relu_backward, True
    if fn is F.gelu:
        return F.gelu_backward, False
    return None


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and LayerNorm.

    post-norm (default): x = norm1(x + sa(x)); x = norm2(x + ff(x))
    pre-norm (``norm_first``): x = x + sa(norm1(x)); x = x + ff(norm2(x))
    with sa = dropout1(self_attn(x, x, x)) and ff = dropout2(linear2(dropout(activation(linear1(x))))).

    Args:
        d_model: feature size E; nhead: attention heads (must divide d_model).
        dim_feedforward: hidden size of the feed-forward block (default 2048).
        dropout: probability for every dropout and the attention weights (default 0.1).
        activation: "relu" (default), "gelu", ``F.relu``, ``F.gelu`` or a Module with a
            backward (e.g. ``nn.GELU(approximate="tanh")``; registered as ``activation``).
        layer_norm_eps, batch_first, norm_first, bias: as torch.
    Shape:
        src (S, N, E), (N, S, E) with ``batch_first``, or unbatched (S, E); output the same.
        src_mask (S, S) or (N * nhead, S, S), src_key_padding_mask (N, S) or (S,): bool True
        = masked, float = added (MultiheadAttention's convention).
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        if d_model <= 0 or nhead <= 0 or d_model % nhead:
            raise ValueError(f"TransformerEncoderLayer: d_model must be a positive multiple of nhead, "
                             f"got d_model={d_model} and nhead={nhead}")
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if dtype is not None:
            self.norm1.to(dtype)
            self.norm2.to(dtype)
        if isinstance(activation, str):
            if activation not in ("relu", "gelu"):
                raise ValueError(f"TransformerEncoderLayer: activation should be relu/gelu, not {activation}")
            activation = F.relu if activation == "relu" else F.gelu
        elif not isinstance(activation, Module) and _activation_backward(activation) is None:
            raise TypeError("TransformerEncoderLayer: activation must be 'relu', 'gelu', torchlite.nn.functional."
                            f"relu/gelu or a Module with a backward, got {activation!r}")
        if activation is F.relu or isinstance(activation, ReLU):
            self.activation_relu_or_gelu = 1
        elif activation is F.gelu or isinstance(activation, GELU):
            self.activation_relu_or_gelu = 2
        else:
            self.activation_relu_or_gelu = 0
        self.activation = activation

    def _describe(self):
        a = self.self_attn
        first = ", batch_first=True" if a.batch_first else ""
        return f"TransformerEncoderLayer(d_model={a.embed_dim}, nhead={a.num_heads}{first})"

    def _check(self, x, src_mask, src_key_padding_mask):
        E, first = self.self_attn.embed_dim, self.self_attn.batch_first
        if x.ndim not in (2, 3) or x.shape[-1] != E:
            layout = "(N, S, {E})" if first else "(S, N, {E})"
            raise ValueError(f"{self._describe()}: expected src {layout.format(E=E)} or unbatched (S, {E}), "
                             f"got shape {x.shape}")
        S = x.shape[1 if first else 0] if x.ndim == 3 else x.shape[0]
        N = x.shape[0 if first else 1] if x.ndim == 3 else 1
        mask_shapes = [(S, S), (N * self.self_attn.num_heads, S, S)]
        if src_mask is not None and np.shape(src_mask) not in mask_shapes:
            raise ValueError(f"{self._describe()}: expected src_mask of shape {mask_shapes[0]} or {mask_shapes[1]}, "
                             f"got shape {np.shape(src_mask)}")
        kpm_shape = (N, S) if x.ndim == 3 else (S,)
        if src_key_padding_mask is not None and np.shape(src_key_padding_mask) != kpm_shape:
            raise ValueError(f"{self._describe()}: expected src_key_padding_mask of shape {kpm_shape}, "
                             f"got shape {np.shape(src_key_padding_mask)}")

    def _act(self, x):
        """activation(x) and what its functional backward needs (None for a Module: it saves its own)."""
        if isinstance(self.activation, Module):
            return self.activation(x), None
        y = self.activation(x)
        return y, (y if _activation_backward(self.activation)[1] else x)

    def _act_backward(self, grad, saved):
        if isinstance(self.activation, Module):
            return self.activation.backward(grad)
        return _activation_backward(self.activation)[0](grad, saved)

    def _sa_block(self, x, src_mask, src_key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, attn_mask=src_mask, key_padding_mask=src_key_padding_mask,
                                need_weights=False, is_causal=is_causal)
        return self.dropout1(out)

    def _sa_block_backward(self, grad):
        return sum(self.self_attn.backward(self.dropout1.backward(grad)))

    def _ff_block(self, x):
        h, act_saved = self._act(self.linear1(x))
        return self.dropout2(self.linear2(self.dropout(h))), act_saved

    def _ff_block_backward(self, grad, act_saved):
        g = self.dropout.backward(self.linear2.backward(self.dropout2.backward(grad)))
        return self.linear1.backward(self._act_backward(g, act_saved))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """src -> output of the same shape; see the class docstring for the masks."""
        x = np.asarray(src)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{self._describe()}: expected a floating-point src, got dtype {x.dtype}")
        x = x.astype(self.linear1.weight.dtype, copy=False)
        self._check(x, src_mask, src_key_padding_mask)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            ff, act_saved = self._ff_block(self.norm2(x))
            x = x + ff
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            ff, act_saved = self._ff_block(x)
            x = self.norm2(x + ff)
        self.save_for_backward(act_saved)
        return x

    def backward(self, grad_output):
        """d src from d output."""
        (act_saved,) = self.pop_saved()
        g = np.asarray(grad_output, dtype=self.linear1.weight.dtype)
        if self.norm_first:
            g = g + self.norm2.backward(self._ff_block_backward(g, act_saved))
            return g + self.norm1.backward(self._sa_block_backward(g))
        g = self.norm2.backward(g)
        g = g + self._ff_block_backward(g, act_saved)
        g = self.norm1.backward(g)
        return g + self._sa_block_backward(g)


def _is_causal_mask(mask, src, batch_first):
    """Whether ``mask`` (bool True = masked, or float) is exactly the causal mask for ``src``'s length."""
    x, m = np.asarray(src), np.asarray(mask)
    if x.ndim not in (2, 3):  # the layers refuse such a src with their own error
        return False
    size = x.shape[0] if x.ndim == 2 else x.shape[1 if batch_first else 0]
    if m.shape != (size, size):
        return False
    upper = np.triu(np.ones((size, size), bool), 1)
    if m.dtype == bool:
        return bool(np.array_equal(m, upper))
    return bool(np.all(np.isneginf(m[upper])) and np.all(m[~upper] == 0))


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` (identical weights, as torch), then ``norm``.

    Args:
        encoder_layer: a TransformerEncoderLayer (or any Module with forward(src, src_mask=,
            src_key_padding_mask=, is_causal=) and backward).
        num_layers: how many copies; ``norm``: optional final Module (e.g. LayerNorm).
        enable_nested_tensor, mask_check: accepted for torch compatibility; no effect (torch's
            nested-tensor inference path writes 0 at padded positions before ``norm``; here
            padded positions are computed like any other, and other positions are equal).
    Keys: ``layers.0.self_attn.in_proj_weight``, ..., ``norm.weight``.
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """src -> output of the same shape. ``is_causal=None`` detects a float causal ``mask`` as torch does."""
        if is_causal is None:
            is_causal = False
            if mask is not None:
                is_causal = _is_causal_mask(mask, src, self.layers[0].self_attn.batch_first)
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output

    def backward(self, grad_output):
        """d src from d output."""
        grad = grad_output
        if self.norm is not None:
            grad = self.norm.backward(grad)
        for layer in reversed(list(self.layers)):
            grad = layer.backward(grad)
        return grad

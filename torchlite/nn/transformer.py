"""The Transformer family, as torch's (same submodules, state_dict keys and reprs):
TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer, TransformerDecoder and
the encoder-decoder Transformer."""
import copy

import numpy as np

from .._dtype import get_default_dtype
from . import functional as F
from . import init
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module, _check_device
from .normalization import LayerNorm

__all__ = ["Transformer", "TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer",
           "TransformerDecoder"]


def _activation_backward(fn):
    """(backward twin, whether it reads the output rather than the input) of a functional activation."""
    if fn is F.relu:
        return F.relu_backward, True
    if fn is F.gelu:
        return F.gelu_backward, False
    return None


def _layer_norm(d_model, eps, bias, dtype):
    norm = LayerNorm(d_model, eps=eps, bias=bias)
    return norm if dtype is None else norm.to(dtype)


def _check_heads(cls, d_model, nhead):
    if d_model <= 0 or nhead <= 0 or d_model % nhead:
        raise ValueError(f"{cls.__name__}: d_model must be a positive multiple of nhead, "
                         f"got d_model={d_model} and nhead={nhead}")


class _TransformerLayer(Module):
    """What the encoder and decoder layers share: the activation, the self-attention and
    feed-forward blocks, and input checks whose errors name the layer."""

    def _set_activation(self, activation):
        if isinstance(activation, str):
            if activation not in ("relu", "gelu"):
                raise ValueError(f"{self._get_name()}: activation should be relu/gelu, not {activation}")
            activation = F.relu if activation == "relu" else F.gelu
        elif not isinstance(activation, Module) and _activation_backward(activation) is None:
            raise TypeError(f"{self._get_name()}: activation must be 'relu', 'gelu', torchlite.nn.functional."
                            f"relu/gelu or a Module with a backward, got {activation!r}")
        self.activation = activation

    def _describe(self):
        a = self.self_attn
        first = ", batch_first=True" if a.batch_first else ""
        return f"{self._get_name()}(d_model={a.embed_dim}, nhead={a.num_heads}{first})"

    def _float_input(self, x, name):
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{self._describe()}: expected a floating-point {name}, got dtype {arr.dtype}")
        return arr.astype(self.linear1.weight.dtype, copy=False)

    def _check_sequence(self, x, name, seq):
        """(length, batch) of a (seq, N, E) / (N, seq, E) / unbatched (seq, E) input; batch 1 when unbatched."""
        E, first = self.self_attn.embed_dim, self.self_attn.batch_first
        if x.ndim not in (2, 3) or x.shape[-1] != E:
            layout = f"(N, {seq}, {E})" if first else f"({seq}, N, {E})"
            raise ValueError(f"{self._describe()}: expected {name} {layout} or unbatched ({seq}, {E}), "
                             f"got shape {x.shape}")
        if x.ndim == 2:
            return x.shape[0], 1
        return (x.shape[1], x.shape[0]) if first else x.shape[:2]

    def _check_mask(self, mask, name, shapes):
        if mask is not None and np.shape(mask) not in shapes:
            raise ValueError(f"{self._describe()}: expected {name} of shape {' or '.join(map(str, shapes))}, "
                             f"got shape {np.shape(mask)}")

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

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)
        return self.dropout1(out)

    def _sa_block_backward(self, grad):
        # x was query, key and value at once: its gradient is the sum of the three
        return sum(self.self_attn.backward(self.dropout1.backward(grad)))

    def _ff_block(self, x, dropout_out):
        """dropout_out(linear2(dropout(activation(linear1(x))))) and what the activation's backward needs."""
        h, act_saved = self._act(self.linear1(x))
        return dropout_out(self.linear2(self.dropout(h))), act_saved

    def _ff_block_backward(self, grad, act_saved, dropout_out):
        g = self.dropout.backward(self.linear2.backward(dropout_out.backward(grad)))
        return self.linear1.backward(self._act_backward(g, act_saved))


class TransformerEncoderLayer(_TransformerLayer):
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
        _check_device(self, device)
        _check_heads(type(self), d_model, nhead)
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = _layer_norm(d_model, layer_norm_eps, bias, dtype)
        self.norm2 = _layer_norm(d_model, layer_norm_eps, bias, dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self._set_activation(activation)
        if self.activation is F.relu or isinstance(self.activation, ReLU):
            self.activation_relu_or_gelu = 1
        elif self.activation is F.gelu or isinstance(self.activation, GELU):
            self.activation_relu_or_gelu = 2
        else:
            self.activation_relu_or_gelu = 0

    def _check(self, x, src_mask, src_key_padding_mask):
        S, N = self._check_sequence(x, "src", "S")
        self._check_mask(src_mask, "src_mask", [(S, S), (N * self.self_attn.num_heads, S, S)])
        self._check_mask(src_key_padding_mask, "src_key_padding_mask", [(N, S) if x.ndim == 3 else (S,)])

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """src -> output of the same shape; see the class docstring for the masks."""
        x = self._float_input(src, "src")
        self._check(x, src_mask, src_key_padding_mask)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            ff, act_saved = self._ff_block(self.norm2(x), self.dropout2)
            x = x + ff
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            ff, act_saved = self._ff_block(x, self.dropout2)
            x = self.norm2(x + ff)
        self.save_for_backward(act_saved)
        return x

    def backward(self, grad_output):
        """d src from d output."""
        (act_saved,) = self.pop_saved()
        g = np.asarray(grad_output, dtype=self.linear1.weight.dtype)
        if self.norm_first:
            g = g + self.norm2.backward(self._ff_block_backward(g, act_saved, self.dropout2))
            return g + self.norm1.backward(self._sa_block_backward(g))
        g = self.norm2.backward(g)
        g = g + self._ff_block_backward(g, act_saved, self.dropout2)
        g = self.norm1.backward(g)
        return g + self._sa_block_backward(g)


class TransformerDecoderLayer(_TransformerLayer):
    """Self-attention over tgt, cross-attention to memory, then a feed-forward block, each with a
    residual connection and LayerNorm.

    post-norm (default): x = norm1(x + sa(x)); x = norm2(x + mha(x, m)); x = norm3(x + ff(x))
    pre-norm (``norm_first``): x = x + sa(norm1(x)); x = x + mha(norm2(x), m); x = x + ff(norm3(x))
    with sa = dropout1(self_attn(x, x, x)), mha = dropout2(multihead_attn(x, m, m)) and
    ff = dropout3(linear2(dropout(activation(linear1(x))))).

    Args:
        d_model: feature size E; nhead: attention heads (must divide d_model).
        dim_feedforward: hidden size of the feed-forward block (default 2048).
        dropout: probability for every dropout and the attention weights (default 0.1).
        activation: "relu" (default), "gelu", ``F.relu``, ``F.gelu`` or a Module with a
            backward (registered as ``activation``).
        layer_norm_eps, batch_first, norm_first, bias: as torch.
    Shape:
        tgt (T, N, E), (N, T, E) with ``batch_first``, or unbatched (T, E); output the same.
        memory (S, N, E), (N, S, E) or unbatched (S, E), batched like tgt.
        tgt_mask (T, T) or (N * nhead, T, T); memory_mask (T, S) or (N * nhead, T, S);
        tgt_key_padding_mask (N, T) or (T,); memory_key_padding_mask (N, S) or (S,).
        Masks: bool True = masked, float = added (MultiheadAttention's convention).
    Backward:
        ``backward(grad_output)`` returns (dtgt, dmemory).
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        _check_device(self, device)
        _check_heads(type(self), d_model, nhead)
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = _layer_norm(d_model, layer_norm_eps, bias, dtype)
        self.norm2 = _layer_norm(d_model, layer_norm_eps, bias, dtype)
        self.norm3 = _layer_norm(d_model, layer_norm_eps, bias, dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self._set_activation(activation)

    def _check(self, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask):
        T, N = self._check_sequence(tgt, "tgt", "T")
        S, N_memory = self._check_sequence(memory, "memory", "S")
        if memory.ndim != tgt.ndim or N_memory != N:
            raise ValueError(f"{self._describe()}: expected tgt and memory both batched with the same batch size "
                             f"or both unbatched, got tgt shape {tgt.shape} and memory shape {memory.shape}")
        H = self.self_attn.num_heads
        self._check_mask(tgt_mask, "tgt_mask", [(T, T), (N * H, T, T)])
        self._check_mask(memory_mask, "memory_mask", [(T, S), (N * H, T, S)])
        batched = tgt.ndim == 3
        self._check_mask(tgt_key_padding_mask, "tgt_key_padding_mask", [(N, T) if batched else (T,)])
        self._check_mask(memory_key_padding_mask, "memory_key_padding_mask", [(N, S) if batched else (S,)])

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        out, _ = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                     need_weights=False, is_causal=is_causal)
        return self.dropout2(out)

    def _mha_block_backward(self, grad):
        """(d x, d memory); memory was both key and value."""
        dx, dkey, dvalue = self.multihead_attn.backward(self.dropout2.backward(grad))
        return dx, dkey + dvalue

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        """(tgt, memory) -> output shaped like tgt; see the class docstring for the masks."""
        x = self._float_input(tgt, "tgt")
        mem = self._float_input(memory, "memory")
        self._check(x, mem, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask)
        sa_masks = (tgt_mask, tgt_key_padding_mask, tgt_is_causal)
        mha_masks = (memory_mask, memory_key_padding_mask, memory_is_causal)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), *sa_masks)
            x = x + self._mha_block(self.norm2(x), mem, *mha_masks)
            ff, act_saved = self._ff_block(self.norm3(x), self.dropout3)
            x = x + ff
        else:
            x = self.norm1(x + self._sa_block(x, *sa_masks))
            x = self.norm2(x + self._mha_block(x, mem, *mha_masks))
            ff, act_saved = self._ff_block(x, self.dropout3)
            x = self.norm3(x + ff)
        self.save_for_backward(act_saved)
        return x

    def backward(self, grad_output):
        """(d tgt, d memory) from d output."""
        (act_saved,) = self.pop_saved()
        g = np.asarray(grad_output, dtype=self.linear1.weight.dtype)
        if self.norm_first:
            g = g + self.norm3.backward(self._ff_block_backward(g, act_saved, self.dropout3))
            dx, dmemory = self._mha_block_backward(g)
            g = g + self.norm2.backward(dx)
            return g + self.norm1.backward(self._sa_block_backward(g)), dmemory
        g = self.norm3.backward(g)
        g = g + self._ff_block_backward(g, act_saved, self.dropout3)
        g = self.norm2.backward(g)
        dx, dmemory = self._mha_block_backward(g)
        g = self.norm1.backward(g + dx)
        return g + self._sa_block_backward(g), dmemory


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


class TransformerDecoder(Module):
    """``num_layers`` deep copies of ``decoder_layer`` (identical weights, as torch), then ``norm``.

    Args:
        decoder_layer: a TransformerDecoderLayer (or any Module with forward(tgt, memory,
            tgt_mask=, memory_mask=, tgt_key_padding_mask=, memory_key_padding_mask=,
            tgt_is_causal=, memory_is_causal=) and a backward returning (dtgt, dmemory)).
        num_layers: how many copies; ``norm``: optional final Module (e.g. LayerNorm).
    Shape: as TransformerDecoderLayer. ``backward(grad_output)`` returns (dtgt, dmemory), with
    dmemory summed over the layers (every layer attends to the same memory).
    Keys: ``layers.0.self_attn.in_proj_weight``, ..., ``norm.weight``.
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        """(tgt, memory) -> output shaped like tgt.

        ``tgt_is_causal=None`` detects a causal ``tgt_mask`` as torch does."""
        if tgt_is_causal is None:
            tgt_is_causal = tgt_mask is not None and _is_causal_mask(tgt_mask, tgt,
                                                                     self.layers[0].self_attn.batch_first)
        output = tgt
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask,
                           tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output

    def backward(self, grad_output):
        """(d tgt, d memory) from d output."""
        grad = grad_output
        if self.norm is not None:
            grad = self.norm.backward(grad)
        dmemory = None
        for layer in reversed(list(self.layers)):
            grad, dm = layer.backward(grad)
            dmemory = dm if dmemory is None else dmemory + dm
        return grad, dmemory


class Transformer(Module):
    """The encoder-decoder Transformer of "Attention Is All You Need", as ``torch.nn.Transformer``.

    memory = encoder(src); output = decoder(tgt, memory). The encoder and decoder each end with
    a LayerNorm; every parameter with more than one dimension is then re-drawn with
    ``xavier_uniform_`` (torch's ``_reset_parameters``, over custom encoders/decoders too).

    Args:
        d_model (512), nhead (8), num_encoder_layers (6), num_decoder_layers (6),
        dim_feedforward (2048), dropout (0.1), activation ("relu", "gelu", F.relu, F.gelu or a
        Module with a backward), layer_norm_eps (1e-5), batch_first, norm_first, bias: as torch.
        custom_encoder, custom_decoder: Modules used in place of the built ones, with the
            TransformerEncoder / TransformerDecoder forward and backward signatures.
    Shape:
        src (S, N, E), tgt (T, N, E) ((N, S, E), (N, T, E) with ``batch_first``; or unbatched
        (S, E), (T, E)); output shaped like tgt. src_mask (S, S) or (N * nhead, S, S);
        tgt_mask (T, T) or (N * nhead, T, T); memory_mask (T, S) or (N * nhead, T, S);
        {src, tgt, memory}_key_padding_mask (N, S), (N, T), (N, S), or (S,), (T,), (S,)
        unbatched. Bool True = masked, float = added.
    Backward:
        ``backward(grad_output)`` returns (dsrc, dtgt).
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
                      bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(*layer_args, dtype=dtype), num_encoder_layers,
                                              _layer_norm(d_model, layer_norm_eps, bias, dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(*layer_args, dtype=dtype), num_decoder_layers,
                                              _layer_norm(d_model, layer_norm_eps, bias, dtype))
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self):
        for p in self.parameters():
            if p.data.ndim > 1:
                init.xavier_uniform_(p)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """(sz, sz) float mask: -inf above the diagonal, 0 elsewhere; ``dtype`` defaults to the default dtype."""
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        return np.triu(np.full((sz, sz), -np.inf, dtype=dtype), 1)

    def _describe(self):
        first = ", batch_first=True" if self.batch_first else ""
        return f"{self._get_name()}(d_model={self.d_model}, nhead={self.nhead}{first})"

    def _check(self, src, tgt):
        s, t = np.shape(src), np.shape(tgt)
        batch = 0 if self.batch_first else 1
        if len(s) == 3 and (len(t) != 3 or s[batch] != t[batch]):
            raise ValueError(f"{self._describe()}: the batch number of src and tgt must be equal, "
                             f"got src shape {s} and tgt shape {t}")
        if not s or not t or s[-1] != self.d_model or t[-1] != self.d_model:
            raise ValueError(f"{self._describe()}: the feature number of src and tgt must be equal to d_model "
                             f"({self.d_model}), got src shape {s} and tgt shape {t}")

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        """(src, tgt) -> output shaped like tgt; see the class docstring for the masks."""
        self._check(src, tgt)
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    def backward(self, grad_output):
        """(d src, d tgt) from d output."""
        dtgt, dmemory = self.decoder.backward(grad_output)
        return self.encoder.backward(dmemory), dtgt

"""Lookup tables: Embedding and EmbeddingBag (torch's arguments, init and state_dict key ``weight``)."""
import numpy as np

from .._dtype import get_default_dtype
from . import functional as F
from . import init
from ._checks import shape_error
from .functional.embedding import _padding, check_indices
from .module import Module, _check_device
from .parameter import Parameter

__all__ = ["Embedding", "EmbeddingBag"]


def _initial_weight(module, num_embeddings, embedding_dim, _weight, freeze, dtype):
    if _weight is None:
        module.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype or get_default_dtype()),
                                  requires_grad=not freeze)
        module.reset_parameters()
        return
    weight = np.asarray(_weight.data if isinstance(_weight, Parameter) else _weight)
    if weight.shape != (num_embeddings, embedding_dim):
        raise ValueError(f"Shape of weight {weight.shape} does not match num_embeddings and embedding_dim "
                         f"({num_embeddings}, {embedding_dim})")
    module.weight = Parameter(weight, requires_grad=not freeze)


def _pretrained(cls, embeddings, freeze, **kwargs):
    weight = np.asarray(embeddings.data if isinstance(embeddings, Parameter) else embeddings)
    if weight.ndim != 2:
        raise ValueError(f"Embeddings parameter is expected to be 2-dimensional, got shape {weight.shape}")
    module = cls(*weight.shape, _weight=weight, **kwargs)
    module.weight.requires_grad_(not freeze)
    return module


class Embedding(Module):
    """A lookup table: integer indices (*) -> rows of ``weight``, (*, embedding_dim).

    Args:
        num_embeddings, embedding_dim: table size.
        padding_idx: this row (negative counts from the end) starts at zeros and gets no gradient.
        max_norm: rows used in a forward whose ``norm_type``-norm exceeds it are rescaled in place.
        scale_grad_by_freq: divide each row's gradient by its count in the batch.
        sparse: only False (dense gradients).
    Attributes:
        weight (num_embeddings, embedding_dim), init N(0, 1).
    ``backward(grad_output)`` accumulates the weight gradient and returns None (indices have no gradient).
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        if sparse:
            raise NotImplementedError("Embedding: sparse gradients are not supported; use sparse=False")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _padding(padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        _initial_weight(self, num_embeddings, embedding_dim, _weight, _freeze, dtype)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding holding ``embeddings`` (num_embeddings, embedding_dim) as its weight (not copied);
        ``freeze`` (default) sets ``weight.requires_grad = False``."""
        return _pretrained(cls, embeddings, freeze, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                           scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)

    def forward(self, input):
        idx = check_indices(input, self.num_embeddings, repr(self))
        self.save_for_backward(idx)
        return F.embedding(idx, self.weight.data, self.padding_idx, self.max_norm, self.norm_type)

    def backward(self, grad_output):
        (idx,) = self.pop_saved()
        grad = np.asarray(grad_output, dtype=self.weight.dtype)
        if grad.shape != idx.shape + (self.embedding_dim,):
            raise shape_error(self, str(idx.shape + (self.embedding_dim,)), grad, "grad_output")
        if self.weight.requires_grad:
            self.weight.accumulate_grad(F.embedding_backward(grad, idx, self.num_embeddings, self.padding_idx,
                                                             self.scale_grad_by_freq))

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        return s


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings, without building the (bag, entry, D) array.

    ``forward(input, offsets=None, per_sample_weights=None)``: input (B, N) is B bags of N
    indices; input (n,) with offsets (B,) gives bags starting at each offset ((B+1,) ending with
    n when ``include_last_offset``). Returns (B, embedding_dim); empty bags give zeros.
    ``padding_idx`` entries are left out of each bag. ``per_sample_weights`` (like input)
    weights each entry, mode 'sum' only. ``backward(grad_output)`` accumulates the weight
    gradient and returns None, or (None, None, dper_sample_weights) when weights were given.
    Attributes: weight (num_embeddings, embedding_dim), init N(0, 1).
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, device=None,
                 dtype=None):
        _check_device(self, device)
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode has to be one of 'sum', 'mean', 'max', got {mode!r}")
        if sparse:
            raise NotImplementedError("EmbeddingBag: sparse gradients are not supported; use sparse=False")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _padding(padding_idx, num_embeddings)
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset
        _initial_weight(self, num_embeddings, embedding_dim, _weight, False, dtype)

    reset_parameters = Embedding.reset_parameters

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        """An EmbeddingBag holding ``embeddings`` as its weight; ``freeze`` (default) stops its gradient."""
        return _pretrained(cls, embeddings, freeze, max_norm=max_norm, norm_type=norm_type,
                           scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                           include_last_offset=include_last_offset, padding_idx=padding_idx)

    def forward(self, input, offsets=None, per_sample_weights=None):
        idx = check_indices(input, self.num_embeddings, repr(self))
        if per_sample_weights is not None and self.mode != "sum":  # NotImplementedError, as torch
            raise NotImplementedError(f"{self!r}: per_sample_weights was not None; only mode='sum' supports it, "
                                      f"got mode={self.mode!r}")
        if per_sample_weights is not None:
            per_sample_weights = np.asarray(per_sample_weights, dtype=self.weight.dtype)
            if per_sample_weights.shape != idx.shape:
                raise shape_error(self, f"per_sample_weights of the input's shape {idx.shape}", per_sample_weights)
        args = (offsets, self.scale_grad_by_freq, self.mode, per_sample_weights, self.include_last_offset,
                self.padding_idx)
        try:
            out = F.embedding_bag(idx, self.weight.data, offsets, self.max_norm, self.norm_type,
                                  self.scale_grad_by_freq, self.mode, False, per_sample_weights,
                                  self.include_last_offset, self.padding_idx)
        except ValueError as e:  # offsets that do not fit the input
            raise ValueError(f"{self!r}: {str(e).split(': ', 1)[-1]}") from None
        self.save_for_backward(idx, args)
        return out

    def backward(self, grad_output):
        idx, args = self.pop_saved()
        grad = np.asarray(grad_output, dtype=self.weight.dtype)
        dweight, dpsw = F.embedding_bag_backward(grad, idx, self.weight.data, *args)
        self.weight.accumulate_grad(dweight)
        return None if dpsw is None else (None, None, dpsw)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx!r}"
        return s

"""Dropout layers: Dropout, Dropout1d/2d/3d (whole channels), AlphaDropout, FeatureAlphaDropout.

Active in training mode, the identity in eval mode. Masks come from
``torchlite.random.get_generator()``, so ``torchlite.manual_seed`` repeats them; backward
multiplies by the mask its forward drew.
"""
from . import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    """Shared state: the drop probability ``p`` and ``inplace``; subclasses name their function."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def _drop(self, input):
        return self._function(input, self.p, self.training, self.inplace, return_mask=True)

    def forward(self, input):
        """Input of any shape the variant accepts; output the same shape."""
        try:
            out, mask = self._drop(input)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None
        self.save_for_backward(mask)
        return out

    def backward(self, grad_output):
        """grad_output times the mask of the matching forward (unchanged in eval mode)."""
        (mask,) = self.pop_saved()
        return F.dropout_backward(grad_output, mask)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """During training, zero each element with probability ``p`` and scale the others by
    1 / (1 - p), so eval mode (the identity) sees the same expected activations.

    Args: p=0.5, inplace=False (overwrite the input array).
    Shape: any; output the same.
    """

    _function = staticmethod(F.dropout)


class Dropout1d(_DropoutNd):
    """Zero whole channels (each a length-L signal) with probability ``p``, scale the rest by 1 / (1 - p).

    Shape: input (N, C, L) or (C, L); output the same.
    """

    _function = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Zero whole channels (each an H x W map) with probability ``p``, scale the rest by 1 / (1 - p).

    Shape: input (N, C, H, W); output the same. As torch, a 3D input is read as (N, C, L)
    with a warning.
    """

    _function = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Zero whole channels (each a D x H x W volume) with probability ``p``, scale the rest by 1 / (1 - p).

    Shape: input (N, C, D, H, W) or (C, D, H, W); output the same.
    """

    _function = staticmethod(F.dropout3d)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks: dropped units take SELU's negative saturation value and an
    affine correction keeps zero mean and unit variance. As torch, ``inplace`` is ignored.

    Shape: any; output the same.
    """

    def _drop(self, input):
        return F.alpha_dropout(input, self.p, self.training, return_mask=True)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels; see ``AlphaDropout``. As torch, ``inplace`` is ignored.

    Shape: input (N, C, *); output the same.
    """

    def _drop(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training, return_mask=True)

"""Distance layers: thin wrappers around ``torchlite.nn.functional.distance``.

``forward(x1, x2)`` returns one value per vector pair; ``backward(grad_output)`` returns
``(grad_x1, grad_x2)``. Inputs broadcast against each other as in torch.
"""
import numpy as np

from .functional.distance import (_cosine_similarity, _cosine_similarity_backward, _pairwise_distance,
                                  _pairwise_distance_backward)
from .module import Module

__all__ = ["PairwiseDistance", "CosineSimilarity"]


class PairwiseDistance(Module):
    """p-norm of ``x1 - x2 + eps`` over the last dim.

    Shape: x1 (N, D) or (D,), x2 the same (or broadcastable); output (N,) or (), with a
    trailing dim of 1 when ``keepdim``. Attribute ``norm`` holds ``p``, as in torch.
    """

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1, x2):
        out, (d, norm) = _pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim, repr(self))
        self.save_for_backward(d, norm, np.shape(x1), np.shape(x2))
        return out

    def backward(self, grad_output):
        d, norm, shape1, shape2 = self.pop_saved()
        return _pairwise_distance_backward(grad_output, d, norm, self.norm, shape1, shape2)


class CosineSimilarity(Module):
    """x1 . x2 / (max(|x1|, eps) max(|x2|, eps)) along ``dim``.

    Shape: x1 (*1, D, *2), x2 the same (or broadcastable); output (*1, *2).
    """

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1, x2):
        out, saved = _cosine_similarity(x1, x2, self.dim, self.eps, repr(self))
        self.save_for_backward(saved, np.shape(x1), np.shape(x2))
        return out

    def backward(self, grad_output):
        saved, shape1, shape2 = self.pop_saved()
        return _cosine_similarity_backward(grad_output, saved, self.eps, shape1, shape2)

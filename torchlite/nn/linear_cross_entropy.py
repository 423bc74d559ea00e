"""LinearCrossEntropyLoss: a Linear layer's logits and cross entropy in one loss, as torch 2.13's."""
import math

import numpy as np

from .functional.linear_cross_entropy import (LinearCrossEntropyOptions, _linear_cross_entropy,
                                              _linear_cross_entropy_backward)
from .linear import Linear
from .loss import _WeightedLoss
from .module import _check_device

__all__ = ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions"]


class LinearCrossEntropyLoss(_WeightedLoss):
    """Cross entropy between ``target`` and the logits of ``input`` through an owned Linear layer.

    Args:
        in_features: size of each input sample.
        num_classes: C.
        out_features: (d1, ..., dK) for a K-dimensional loss (default ()).
        bias: the Linear layer learns a bias (default False).
        dtype: parameter dtype (default ``torchlite.get_default_dtype()``).
        reduction, weight (C,), label_smoothing: as ``CrossEntropyLoss``.
        ignore_index: None (default) means -100 for class-index targets and nothing for
            probability targets, which refuse any other value.
        options: ``LinearCrossEntropyOptions``; torchlite computes unchunked (see
            ``functional.linear_cross_entropy``).
    Shape:
        input (in_features,) or (N, in_features); target class indices (), (N,) or
        (N, d1, ..., dK), or probabilities (C,), (N, C) or (N, C, d1, ..., dK);
        output () or, for 'none', the indices' shape.
    Attributes:
        linear: ``Linear(in_features, C * d1 * ... * dK, bias)``; its flat weight and bias are
            read as (C, d1, ..., dK, in_features) and (C, d1, ..., dK). State dict keys
            ``weight`` (when given), ``linear.weight``, ``linear.bias``, as torch's.
    Backward: ``backward(grad_output=1.0)`` accumulates ``linear``'s gradients and returns dLoss/dInput.
    """

    def __init__(self, in_features, num_classes, *, out_features=(), bias=False, device=None, dtype=None,
                 reduction="mean", weight=None, ignore_index=None, label_smoothing=0.0, options=None):
        _check_device(self, device)
        name = type(self).__name__
        if weight is not None and np.shape(weight) != (num_classes,):
            raise ValueError(f"{name}: expected weight of shape ({num_classes},), got {np.shape(weight)}")
        if not 0 <= label_smoothing <= 1.0:
            raise ValueError(f"{name}: expected label_smoothing in [0, 1], got {label_smoothing}")
        super().__init__(weight, reduction)
        self.num_classes = num_classes
        self.out_features = out_features
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        # torch keeps the (C, d1, ..., dK, in) weight flat in a Linear and reshapes it in forward
        self.linear = Linear(in_features, math.prod(out_features, start=num_classes), bias=bias, dtype=dtype)
        self.options = options

    def _describe(self):
        """This loss in one line for error messages (its repr spans several)."""
        return f"{self._get_name()}({self.extra_repr()})"

    def forward(self, input, target):
        lin = self.linear
        logical = (self.num_classes, *self.out_features)
        weight = lin.weight.data.reshape(logical + (lin.in_features,))
        bias = None if lin.bias is None else lin.bias.data.reshape(logical)
        loss, saved = _linear_cross_entropy(input, weight, target, bias, self.weight, self.reduction,
                                            self.ignore_index, self.label_smoothing, self.options, self._describe())
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        saved = self.pop_saved()
        lin = self.linear
        need_db = lin.bias is not None and lin.bias.requires_grad
        dx, dw, db = _linear_cross_entropy_backward(grad_output, saved, self.reduction, self.label_smoothing,
                                                    self.needs_input_grad, need_db)
        lin.weight.accumulate_grad(dw, fresh=True)
        if need_db:
            lin.bias.accumulate_grad(db, fresh=True)
        return dx

    def extra_repr(self):
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
                f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
                f"label_smoothing={self.label_smoothing}, options={self.options}")

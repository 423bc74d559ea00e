"""Loss modules: ``loss = criterion(input, target)``, then ``criterion.backward()`` returns dLoss/dInput.

``forward`` returns a 0-d array for ``reduction='mean'`` / ``'sum'`` and the per-element loss
for ``'none'``; ``backward(grad_output=1.0)`` takes the upstream gradient of that result
(an array shaped like the loss for 'none'). Losses comparing two inputs (MarginRankingLoss,
CosineEmbeddingLoss) return one gradient per input; GaussianNLLLoss returns
``(grad_input, None, grad_var)``, aligned with its forward arguments. Targets get no gradient.

Arguments, defaults, attribute names and buffers (``weight``, ``pos_weight``, in state_dict
when given) are torch's, without the deprecated ``size_average`` / ``reduce``; options after
the first few are keyword-only, since torch's positional slots hold those deprecated ones.
Bad input raises an error that starts with the loss's repr, e.g.
``CrossEntropyLoss(): target class 12 out of range [0, 10) at position 3``.
"""
import numpy as np

from .._dtype import get_default_dtype
from .distance import PairwiseDistance
from .functional import loss as FL
from .module import Module

__all__ = [
    "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "NLLLoss", "CrossEntropyLoss", "BCELoss",
    "BCEWithLogitsLoss", "KLDivLoss", "SoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
    "CosineEmbeddingLoss", "GaussianNLLLoss", "PoissonNLLLoss", "MultiMarginLoss", "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "CTCLoss",
]


def _buffer(value):
    """An optional weight as an array buffer of its own (non-floating values become the default dtype).

    A copy, unlike torch's shared tensor: loading a state_dict must not write into the caller's array.
    """
    if value is None:
        return None
    arr = np.array(value)
    return arr if arr.dtype.kind == "f" else arr.astype(get_default_dtype())


class _Loss(Module):
    _reductions = FL._REDUCTIONS

    def __init__(self, reduction="mean"):
        super().__init__()
        FL._check_reduction(f"{type(self).__name__}()", reduction, self._reductions)
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))


class MSELoss(_Loss):
    """Mean squared error (x - y)^2.

    Shape: input (*), target (*) of the same shape (other broadcastable shapes work, with
    torch's warning); output () or, for 'none', the elementwise shape.
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))

    def forward(self, input, target):
        loss, saved = FL._mse_loss(input, target, self.reduction, None, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.mse_loss_backward(grad_output, x, t, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error |x - y|. Shapes as MSELoss."""

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))

    def forward(self, input, target):
        loss, saved = FL._l1_loss(input, target, self.reduction, None, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.l1_loss_backward(grad_output, x, t, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (d = x - y). Shapes as MSELoss."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.beta = beta

    def forward(self, input, target):
        loss, saved = FL._smooth_l1_loss(input, target, self.reduction, self.beta, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.smooth_l1_loss_backward(grad_output, x, t, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2) (d = x - y). Shapes as MSELoss."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        loss, saved = FL._huber_loss(input, target, self.reduction, self.delta, None, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.huber_loss_backward(grad_output, x, t, self.reduction, self.delta)


class NLLLoss(_WeightedLoss):
    """Negative log likelihood of log-probabilities at class indices.

    Shape: input (N, C), (C,) or (N, C, d1, ...); target integer (N,), () or (N, d1, ...) with
    values in [0, C) or ``ignore_index``; output () or, for 'none', the target's shape.
    'mean' divides by the summed weights of the non-ignored targets (NaN if there are none).
    Buffers: ``weight`` (C,) when given.
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, FL._legacy_reduction(size_average, reduce, reduction))
        self.ignore_index = ignore_index

    def forward(self, input, target):
        loss, saved = FL._nll_loss(input, target, self.weight, self.ignore_index, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t, w = self.pop_saved()
        return FL.nll_loss_backward(grad_output, x, t, w, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits against class indices or class probabilities (log-softmax inside).

    Shape: input (N, C), (C,) or (N, C, d1, ...); target either integer class indices (N,),
    () or (N, d1, ...) in [0, C) or ``ignore_index``, or floating probabilities of the input's
    shape; output () or, for 'none', (N,), () or (N, d1, ...).
    ``label_smoothing`` in [0, 1] mixes the target with the uniform distribution (torch's
    formula, including with ``weight`` and ``ignore_index``). 'mean' with class indices divides
    by the summed weights of the non-ignored targets; with probabilities, by N * d1 * ...
    Buffers: ``weight`` (C,) when given. Backward reuses the log-softmax kept by forward.
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, FL._legacy_reduction(size_average, reduce, reduction))
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        loss, saved = FL._cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                                        self.label_smoothing, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        log_probs, t, w = self.pop_saved()
        return FL.cross_entropy_backward(grad_output, None, t, w, ignore_index=self.ignore_index,
                                         reduction=self.reduction, label_smoothing=self.label_smoothing,
                                         log_probs=log_probs)


class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities in [0, 1], each log clamped at -100.

    Shape: input (*), target (*) alike; ``weight`` broadcasts to them; output () or (*).
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(weight, FL._legacy_reduction(size_average, reduce, reduction))

    def forward(self, input, target):
        loss, saved = FL._bce(input, target, self.weight, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t, w = self.pop_saved()
        return FL.binary_cross_entropy_backward(grad_output, x, t, w, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross entropy in one stable formula (finite for any logits).

    Shape: input (*), target (*) alike; ``weight`` broadcasts to them; ``pos_weight``
    (weight of positives) broadcasts along the trailing dims, e.g. (C,) for input (N, C).
    Buffers: ``weight`` and ``pos_weight`` when given.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.register_buffer("weight", _buffer(weight))
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input, target):
        loss, saved = FL._bce_logits(input, target, self.weight, self.pos_weight, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t, w, pw = self.pop_saved()
        return FL.binary_cross_entropy_with_logits_backward(grad_output, x, t, w, reduction=self.reduction,
                                                            pos_weight=pw)


class KLDivLoss(_Loss):
    """Pointwise KL divergence y (log y - x) of log-probabilities x (``log_target``: y given as log too).

    Shape: input (*), target (*) alike (or broadcastable); output () or (*).
    ``reduction='batchmean'`` gives the true KL divergence (sum / N); 'mean' divides by every
    element and warns, as in torch.
    """

    _reductions = FL._REDUCTIONS + ("batchmean",)

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.log_target = log_target

    def forward(self, input, target):
        loss, saved = FL._kl_div(input, target, self.reduction, self.log_target, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.kl_div_backward(grad_output, x, t, reduction=self.reduction, log_target=self.log_target)


class SoftMarginLoss(_Loss):
    """log(1 + exp(-y x)) for labels y = +-1. Shape: input (*), target (*) alike; output () or (*)."""

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))

    def forward(self, input, target):
        loss, saved = FL._soft_margin_loss(input, target, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.soft_margin_loss_backward(grad_output, x, t, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """max(0, -y (x1 - x2) + margin) for y = +-1; ``forward(input1, input2, target)``.

    Shape: input1, input2, target (*) alike (or broadcastable); output () or (*).
    ``backward`` returns (grad_input1, grad_input2).
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.margin = margin

    def forward(self, input1, input2, target):
        loss, saved = FL._margin_ranking_loss(input1, input2, target, self.margin, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x1, x2, t = self.pop_saved()
        return FL.margin_ranking_loss_backward(grad_output, x1, x2, t, self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """x where y == 1, max(0, margin - x) where y == -1. Shape: input (*), target (*); output () or (*)."""

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.margin = margin

    def forward(self, input, target):
        loss, saved = FL._hinge_embedding_loss(input, target, self.margin, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.hinge_embedding_loss_backward(grad_output, x, t, self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """1 - cos(x1, x2) where y == 1, max(0, cos(x1, x2) - margin) where y == -1.

    Shape: input1, input2 (N, D) or (D,); target (N,) or (); output () or, for 'none', (N,) or ().
    ``backward`` returns (grad_input1, grad_input2).
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.margin = margin

    def forward(self, input1, input2, target):
        loss, saved = FL._cosine_embedding_loss(input1, input2, target, self.margin, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x1, x2, t = self.pop_saved()
        return FL.cosine_embedding_loss_backward(grad_output, x1, x2, t, self.margin, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log likelihood 0.5 (log v + (x - y)^2 / v), v = max(var, eps).

    ``forward(input, target, var)``. Shape: input (N, *) or (*); target like the input; var
    like the input, or without its last dim, or with one dim of size 1, or a python float.
    ``backward`` returns (grad_input, None, grad_var) (grad_var None for a float var).
    """

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction)
        self.full = full
        self.eps = eps

    def forward(self, input, target, var):
        loss, saved = FL._gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t, var = self.pop_saved()
        dx, dvar = FL.gaussian_nll_loss_backward(grad_output, x, t, var, self.full, self.eps, self.reduction)
        return dx, None, dvar


class PoissonNLLLoss(_Loss):
    """Poisson negative log likelihood: exp(x) - y x (``log_input``), else x - y log(x + eps).

    ``full`` adds Stirling's approximation of log(y!) where y > 1. Shape: input (*), target (*);
    output () or (*).
    """

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, input, target):
        loss, saved = FL._poisson_nll_loss(input, target, self.log_input, self.full, self.eps, self.reduction,
                                           repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.poisson_nll_loss_backward(grad_output, x, t, self.log_input, self.full, eps=self.eps,
                                            reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge: sum over j != y of w[y] max(0, margin - x[y] + x[j])^p / C, p in {1, 2}.

    Shape: input (N, C) or (C,); target integer (N,) or (); output () or, for 'none', (N,) or ().
    Buffers: ``weight`` (C,) when given.
    """

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 supported, got p={p}")
        if weight is not None and np.ndim(weight) != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D, got {np.ndim(weight)}D instead")
        super().__init__(weight, FL._legacy_reduction(size_average, reduce, reduction))
        self.p = p
        self.margin = margin

    def forward(self, input, target):
        loss, saved = FL._multi_margin_loss(input, target, self.p, self.margin, self.weight, self.reduction,
                                            repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t, w = self.pop_saved()
        return FL.multi_margin_loss_backward(grad_output, x, t, self.p, self.margin, w, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge: sum over targets j and non-targets k of max(0, 1 - (x[j] - x[k])) / C.

    Shape: input (N, C) or (C,); target integer of the same shape, the target classes first,
    then -1 (what follows the first -1 is ignored); output () or, for 'none', (N,) or ().
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))

    def forward(self, input, target):
        loss, saved = FL._multilabel_margin_loss(input, target, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t = self.pop_saved()
        return FL.multilabel_margin_loss_backward(grad_output, x, t, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Per-class logistic loss averaged over classes: mean_c w_c softplus(-y'_c x_c), y' = 2y - 1 for y in {0, 1}.

    Shape: input (N, C) or (C,); target like the input; ``weight`` broadcasts to it, e.g. (C,);
    output () or, for 'none', (N,) or (). Buffers: ``weight`` when given.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(weight, FL._legacy_reduction(size_average, reduce, reduction))

    def forward(self, input, target):
        loss, saved = FL._multilabel_soft_margin_loss(input, target, self.weight, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        x, t, w = self.pop_saved()
        return FL.multilabel_soft_margin_loss_backward(grad_output, x, t, w, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """max(0, margin + d(a, p) - d(a, n)), d the p-norm of the difference (+ eps), as PairwiseDistance.

    ``forward(anchor, positive, negative)``; ``swap`` uses min(d(a, n), d(p, n)) for d(a, n).
    Shape: anchor, positive, negative (N, D) or (D,); output () or, for 'none', (N,) or ().
    ``backward`` returns (grad_anchor, grad_positive, grad_negative).
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None,
                 reduction="mean"):
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
        super().__init__(FL._legacy_reduction(size_average, reduce, reduction))
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor, positive, negative):
        loss, saved = FL._triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps, self.swap,
                                              self.reduction, repr(self))
        self.save_for_backward(saved)
        return loss

    def backward(self, grad_output=1.0):
        (saved,) = self.pop_saved()
        return FL._triplet_margin_loss_backward(grad_output, saved, self.p, self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """max(0, margin + d(a, p) - d(a, n)) for a distance Module d (default ``PairwiseDistance()``).

    ``distance_function`` must be a torchlite Module whose forward(x1, x2) returns distances and
    whose backward returns (grad_x1, grad_x2) (there is no autograd to differentiate a lambda);
    it is registered as a child, as in torch. Shapes: whatever the distance takes; output ()
    or, for 'none', the distance's shape. ``backward`` returns (grad_anchor, grad_positive,
    grad_negative).
    """

    def __init__(self, *, distance_function=None, margin=1.0, swap=False, reduction="mean"):
        super().__init__(reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                             "instead")
        distance_function = PairwiseDistance() if distance_function is None else distance_function
        FL._check_distance_function("TripletMarginWithDistanceLoss", distance_function)
        self.distance_function = distance_function
        self.margin = margin
        self.swap = swap

    def forward(self, anchor, positive, negative):
        loss, saved = FL._triplet_with_distance(anchor, positive, negative, self.distance_function, self.margin,
                                                self.swap, self.reduction, repr(self))
        self.save_for_backward(*saved)
        return loss

    def backward(self, grad_output=1.0):
        v, d_neg, d_swap = self.pop_saved()
        return FL._triplet_with_distance_backward(grad_output, self.distance_function, v, d_neg, d_swap,
                                                  self.reduction)


class CTCLoss(_Loss):
    """Connectionist temporal classification loss: ``forward(log_probs, targets, input_lengths, target_lengths)``.

    -log of the summed probability of all alignments of each target to its input (blanks between
    labels, repeats merged), by the forward-backward algorithm in log space, vectorised over the batch.
    Shape: log_probs (T, N, C) or (T, C) (log-softmax outputs); targets (N, S) padded, or 1-d
    concatenated, or (S,) unbatched, labels in [0, C); input_lengths, target_lengths (N,) (ints,
    sequences or integer arrays). Output: 'none' (N,) (or ()), 'mean' the batch mean of each loss
    divided by its target length (at least 1), 'sum'. ``zero_infinity`` zeroes impossible targets'
    infinite losses and their gradients.
    ``backward`` returns the gradient for log_probs only, torch's: exp(log_probs) - posterior, exact
    through the log_softmax that produced log_probs (see ``functional.ctc_loss_backward``).
    """

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        loss, saved = FL._ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                                   self.zero_infinity, repr(self))
        self.save_for_backward(saved)
        return loss

    def backward(self, grad_output=1.0):
        (saved,) = self.pop_saved()
        return FL._ctc_loss_backward(grad_output, saved, self.reduction, self.zero_infinity)

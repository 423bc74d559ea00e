"""AdaptiveLogSoftmaxWithLoss: the adaptive softmax of Grave et al. (https://arxiv.org/abs/1609.04309).

The classes are split by ``cutoffs`` into a shortlist, scored by the ``head`` together with one
logit per tail cluster, and clusters of rarer classes, each scored through a low-rank
projection ``tail[i] = Sequential(Linear(in_features, hsz), Linear(hsz, osz))`` (no biases,
``hsz = in_features // div_value ** (i + 1)``). A class in cluster i gets
``log p = log_softmax(head)[shortlist + i] + log_softmax(tail[i](x))[class - cutoffs[i]]``.
Only the clusters that some target falls in are evaluated, as in torch.

Parameters and state_dict keys are torch's (``head.weight``, ``head.bias``, ``tail.0.0.weight``,
``tail.0.1.weight``, ...). The submodules hold the weights; this module computes with them
directly, so they keep no saved state of their own.
"""
from collections import namedtuple

import numpy as np

from . import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class _TargetError(RuntimeError, ValueError):
    """A target torch refuses with RuntimeError; a ValueError like every other bad-input error here."""


class AdaptiveLogSoftmaxWithLoss(Module):
    """Efficient softmax approximation for large, Zipf-distributed output spaces.

    Args:
        in_features: size of each input sample.
        n_classes: number of classes; labels must be sorted by frequency (0 the most frequent).
        cutoffs: increasing, unique integers in [1, n_classes - 1]; ``[10, 100]`` puts classes
            0..9 in the head, 10..99 in the first cluster and 100..n_classes-1 in the second.
        div_value: cluster i (from 1) projects to ``in_features // div_value ** i`` features. Default 4.0.
        head_bias: give the head a bias. Default False.
    Shape:
        forward: input (N, in_features) or (in_features,), target integer (N,) or () in
        [0, n_classes) -> ``_ASMoutput(output, loss)``: output (N,) or (), each target's log
        probability; loss (), the mean negative log likelihood ``-output.mean()``.
        log_prob: (N, in_features) -> (N, n_classes). predict: (N, in_features) -> (N,) int64.
    Backward:
        ``backward(grad_output=None, grad_loss=None)`` takes the gradients of (output, loss),
        as forward returned them; with neither given, the loss's gradient is 1.0. Returns
        dLoss/dInput (the target gets none).
    """

    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False, device=None, dtype=None):
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             "order, where each value is between 1 and n_classes-1")
        if not all(isinstance(c, (int, np.integer)) for c in cutoffs):
            raise TypeError(f"{self._get_name()}: cutoffs must be integers, got {cutoffs}")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, device=device, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            if hsz < 0:
                raise ValueError(f"{self._describe()}: div_value={div_value} gives cluster {i + 1} "
                                 f"a negative size {hsz}")
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, device=device, dtype=dtype),
                                        Linear(hsz, osz, bias=False, device=device, dtype=dtype)))

    def reset_parameters(self):
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def _describe(self):
        """One line naming this module in error messages (its repr spans several lines)."""
        return (f"{self._get_name()}(in_features={self.in_features}, n_classes={self.n_classes}, "
                f"cutoffs={self.cutoffs[:-1]})")

    # ----------------------------------------------------------------- checks
    def _float(self, input):
        x = np.asarray(input)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{self._describe()}: expected a floating-point input, got dtype {x.dtype}")
        return x.astype(self.head.weight.dtype, copy=False)

    def _input(self, input, batched_only=False):
        x = self._float(input)
        ranks = (2,) if batched_only else (1, 2)
        if x.ndim not in ranks or x.shape[-1] != self.in_features:
            layout = f"(N, {self.in_features})" + ("" if batched_only else f" or ({self.in_features},)")
            raise ValueError(f"{self._describe()}: expected input {layout}, got shape {x.shape}")
        return x

    def _target(self, target, x):
        t = np.asarray(target)
        if t.dtype not in (np.int64, np.int32):
            raise TypeError(f"{self._describe()}: expected an integer target of dtype int64 or int32, "
                            f"got dtype {t.dtype}")
        if t.ndim == 1:
            if x.ndim == 0 or x.shape[0] != t.shape[0]:
                raise _TargetError(f"{self._describe()}: Input and target should have the same size in the batch "
                                   f"dimension, got input shape {x.shape} and target shape {t.shape}")
            if x.ndim != 2:
                raise _TargetError(f"{self._describe()}: 1D target tensor expects 2D input tensors, but found "
                                   f"inputs with size {x.shape}")
        elif t.ndim == 0:
            if x.ndim != 1:
                raise _TargetError(f"{self._describe()}: 0D target tensor expects 1D input tensors, but found "
                                   f"inputs with size {x.shape}")
        else:
            raise _TargetError(f"{self._describe()}: 0D or 1D target tensor expected, multi-target not supported, "
                               f"got target shape {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= self.n_classes):
            raise _TargetError(f"{self._describe()}: Target values should be in [0, {self.n_classes - 1}], "
                               f"but values in range [{t.min()}, {t.max()}] were found.")
        return t

    # ----------------------------------------------------------------- forward and backward
    def forward(self, input, target):
        """``_ASMoutput(output, loss)``: each target's log probability and their negative mean."""
        x = self._float(input)
        t = self._target(target, x)
        self._input(x)
        batched = t.ndim == 1
        x2, t = (x, t) if batched else (x[None], t[None])
        n = t.shape[0]
        rows = np.arange(n)
        output = np.zeros(n, dtype=x2.dtype)
        head_index = t.astype(np.int64)  # the head column each row's log probability starts from
        clusters = []  # (cluster, rows, relative targets, hidden, log-softmax) for each used cluster
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            (idx,) = np.nonzero((t >= low) & (t < high))
            if idx.size == 0:
                continue
            i2h, h2o = self.tail[i]
            xi = x2[idx]
            hidden = F.linear(xi, i2h.weight.data)
            logprob = F.log_softmax(F.linear(hidden, h2o.weight.data), dim=1)
            rel = t[idx] - low
            output[idx] = logprob[np.arange(idx.size), rel]
            head_index[idx] = self.shortlist_size + i
            clusters.append((i, idx, rel, hidden, logprob))
        head_logprob = F.log_softmax(self._head(x2), dim=1)
        output += head_logprob[rows, head_index]
        loss = np.negative(output).mean(dtype=output.dtype) if n else np.asarray(np.nan, dtype=output.dtype)
        self.save_for_backward(x2, batched, head_index, head_logprob, clusters)
        return _ASMoutput(output if batched else output.reshape(()), np.asarray(loss))

    def backward(self, grad_output=None, grad_loss=None):
        """dLoss/dInput from the gradients of (output, loss); neither given: loss gradient 1.0."""
        x, batched, head_index, head_logprob, clusters = self.pop_saved()
        n = x.shape[0]
        if grad_output is None and grad_loss is None:
            grad_loss = 1.0
        g = np.zeros(n, dtype=x.dtype)
        if grad_output is not None:
            g += np.asarray(grad_output, dtype=x.dtype)
        if grad_loss is not None and n:
            g -= np.asarray(grad_loss, dtype=x.dtype) / x.dtype.type(n)  # loss = -mean(output)
        rows = np.arange(n)
        dx = self.head._backward_at(x, _one_hot_backward(g, head_logprob, rows, head_index))
        for i, idx, rel, hidden, logprob in clusters:
            i2h, h2o = self.tail[i]
            d_logits = _one_hot_backward(g[idx], logprob, np.arange(idx.size), rel)
            d_hidden = h2o._backward_at(hidden, d_logits)
            dx[idx] += i2h._backward_at(x[idx], d_hidden)
        return dx if batched else dx.reshape(x.shape[1:])

    # ----------------------------------------------------------------- inference
    def _full_log_prob(self, x, head_output):
        out = np.empty((x.shape[0], self.n_classes), dtype=x.dtype)
        head_logprob = F.log_softmax(head_output, dim=1)
        out[:, :self.shortlist_size] = head_logprob[:, :self.shortlist_size]
        for i, (i2h, h2o) in enumerate(self.tail):
            cluster = F.log_softmax(F.linear(F.linear(x, i2h.weight.data), h2o.weight.data), dim=1)
            out[:, self.cutoffs[i]:self.cutoffs[i + 1]] = cluster + head_logprob[:, self.shortlist_size + i, None]
        return out

    def _head(self, x):
        return F.linear(x, self.head.weight.data, None if self.head.bias is None else self.head.bias.data)

    def log_prob(self, input):
        """Log probabilities of all classes: (N, in_features) -> (N, n_classes). Keeps nothing for backward."""
        x = self._input(input, batched_only=True)
        return self._full_log_prob(x, self._head(x))

    def predict(self, input):
        """The most probable class of each row, (N, in_features) -> (N,) int64; ``log_prob(input).argmax(1)``
        evaluating the tail only for rows whose head prefers a cluster."""
        x = self._input(input, batched_only=True)
        head_output = self._head(x)
        output = np.argmax(head_output, axis=1)
        (rare,) = np.nonzero(output >= self.shortlist_size)
        if rare.size:
            output[rare] = np.argmax(self._full_log_prob(x[rare], head_output[rare]), axis=1)
        return output.astype(np.int64, copy=False)


def _one_hot_backward(g, logprob, rows, cols):
    """Gradient of ``logprob[rows, cols] * g`` through log_softmax, back to its logits."""
    grad = np.zeros_like(logprob)
    grad[rows, cols] = g
    return F.log_softmax_backward(grad, logprob, 1)

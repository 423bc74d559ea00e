"""SGD: stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _effective_grad

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), torch's update rule.

    ``g = grad + weight_decay * p``; with momentum ``b = momentum * b + (1 - dampening) * g``
    (``b = g`` on the first step) and ``g = g + momentum * b`` (nesterov) or ``g = b``;
    then ``p -= lr * g``. ``maximize`` ascends instead.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 1e-3).
        momentum (float): momentum factor (default: 0).
        dampening (float): dampening for momentum (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        nesterov (bool): Nesterov momentum; needs momentum > 0 and dampening 0 (default: False).
        maximize (bool): maximize the objective (default: False).
        foreach, fused: accepted; they select among torch's kernels for the same update.
        differentiable: must be False (no autograd here; see ``_flags.py``).

    State per parameter: ``momentum_buffer`` (when momentum != 0).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                    "differentiable": differentiable, "fused": fused}
        check_flags(self, differentiable=differentiable, foreach=foreach, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        for p in params:
            d_p = _effective_grad(p, weight_decay, group["maximize"])
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = np.array(d_p, dtype=p.dtype, copy=True)
                    state["momentum_buffer"] = buf
                else:
                    buf *= momentum
                    buf += d_p if dampening == 0 else np.multiply(d_p, 1.0 - dampening)
                d_p = np.multiply(buf, momentum) + d_p if group["nesterov"] else buf
            p.data -= np.multiply(d_p, lr)

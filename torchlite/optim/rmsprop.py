"""RMSprop: gradient divided by a running root-mean-square, optionally centered and with momentum."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _effective_grad, _lerp_, _scalar_state

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, torch's update rule.

    ``v = alpha * v + (1 - alpha) * g**2``; ``avg = sqrt(v) + eps``, or when centered
    ``avg = sqrt(v - m**2) + eps`` with ``m = lerp(m, g, 1 - alpha)``; with momentum
    ``b = momentum * b + g / avg`` and ``p -= lr * b``, else ``p -= lr * g / avg``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 1e-2).
        alpha (float): smoothing constant (default: 0.99).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): L2 penalty (default: 0).
        momentum (float): momentum factor (default: 0).
        centered (bool): normalize by an estimate of the gradient's variance (default: False).
        maximize (bool): maximize the objective (default: False).
        foreach: accepted, a choice among torch kernels (the update is the same).
        capturable and differentiable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step`` (0-d), ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        check_flags(self, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        alpha = float(group["alpha"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        momentum = float(group["momentum"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["square_avg"] = np.zeros_like(p.data)
                if momentum > 0:
                    state["momentum_buffer"] = np.zeros_like(p.data)
                if group["centered"]:
                    state["grad_avg"] = np.zeros_like(p.data)
            state["step"] += 1
            grad = _effective_grad(p, weight_decay, group["maximize"])
            square_avg = state["square_avg"]
            avg = np.empty_like(p.data)
            square_avg *= alpha
            np.multiply(grad, grad, out=avg)
            avg *= 1.0 - alpha
            square_avg += avg
            if group["centered"]:
                grad_avg = state["grad_avg"]
                _lerp_(grad_avg, grad, 1.0 - alpha, avg)
                np.multiply(grad_avg, grad_avg, out=avg)
                np.subtract(square_avg, avg, out=avg)
                np.sqrt(avg, out=avg)
            else:
                np.sqrt(square_avg, out=avg)
            avg += eps
            np.divide(grad, avg, out=avg)
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += avg
                np.multiply(buf, lr, out=avg)
            else:
                avg *= lr
            p.data -= avg

"""Adadelta: steps scaled by the ratio of running RMS of past updates to running RMS of gradients."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _effective_grad, _scalar_state

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta, torch's update rule.

    ``v = rho * v + (1 - rho) * g**2``, ``delta = sqrt(u + eps) / sqrt(v + eps) * g``,
    ``u = rho * u + (1 - rho) * delta**2``, ``p -= lr * delta``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): scales the delta before it is applied (default: 1.0).
        rho (float): running-average coefficient, in [0, 1] (default: 0.9).
        eps (float): added inside both square roots (default: 1e-6).
        weight_decay (float): L2 penalty (default: 0).
        maximize (bool): maximize the objective (default: False).
        foreach: accepted, a choice among torch kernels (the update is the same).
        capturable and differentiable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step`` (0-d), ``square_avg``, ``acc_delta``.
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        check_flags(self, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        rho = float(group["rho"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["square_avg"] = np.zeros_like(p.data)
                state["acc_delta"] = np.zeros_like(p.data)
            state["step"] += 1
            grad = _effective_grad(p, weight_decay, group["maximize"])
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            std = np.multiply(grad, grad, out=np.empty_like(p.data))
            std *= 1.0 - rho
            square_avg *= rho
            square_avg += std
            np.add(square_avg, eps, out=std)
            np.sqrt(std, out=std)
            delta = np.add(acc_delta, eps, out=np.empty_like(p.data))
            np.sqrt(delta, out=delta)
            delta /= std
            delta *= grad
            np.multiply(delta, delta, out=std)
            std *= 1.0 - rho
            acc_delta *= rho
            acc_delta += std
            delta *= lr
            p.data -= delta

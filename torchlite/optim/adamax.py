"""Adamax: Adam with the infinity norm in place of the second moment."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _check_adam_args, _effective_grad, _lerp_, _scalar_state

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax, torch's update rule.

    ``m = lerp(m, g, 1 - beta1)``, ``u = max(beta2 * u, |g| + eps)``,
    ``p -= lr / (1 - beta1**t) * m / u``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 2e-3).
        betas (tuple[float, float]): running-average coefficients (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): L2 penalty (default: 0).
        maximize (bool): maximize the objective (default: False).
        foreach: accepted, a choice among torch kernels (the update is the same).
        differentiable and capturable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step`` (0-d), ``exp_avg``, ``exp_inf``.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        check_flags(self, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_inf"] = np.zeros_like(p.data)
            state["step"] += 1
            step = float(state["step"])
            grad = _effective_grad(p, weight_decay, group["maximize"])
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            tmp = np.empty_like(p.data)
            _lerp_(exp_avg, grad, 1.0 - beta1, tmp)
            exp_inf *= beta2
            np.abs(grad, out=tmp)
            tmp += eps
            np.maximum(exp_inf, tmp, out=exp_inf)
            np.divide(exp_avg, exp_inf, out=tmp)
            tmp *= lr / (1.0 - beta1 ** step)
            p.data -= tmp

"""RAdam: Adam with a rectified (variance-corrected) adaptive learning rate."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _check_adam_args, _effective_grad, _lerp_, _scalar_state

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam, torch's update rule.

    ``m``, ``v`` as Adam; ``rho_inf = 2 / (1 - beta2) - 1``,
    ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``. When ``rho_t > 5`` the step is
    ``lr * m_hat * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r_t`` with the rectification
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``,
    otherwise plain momentum ``lr * m_hat``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 1e-3).
        betas (tuple[float, float]): running-average coefficients (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        decoupled_weight_decay (bool): decay the parameter directly, as AdamW (default: False).
        maximize (bool): maximize the objective (default: False).
        foreach: accepted, a choice among torch kernels (the update is the same).
        capturable and differentiable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step`` (0-d), ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay, "differentiable": differentiable}
        check_flags(self, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            step = float(state["step"])
            if weight_decay != 0 and group["decoupled_weight_decay"]:
                p.data *= 1.0 - lr * weight_decay
                grad = _effective_grad(p, 0.0, group["maximize"])
            else:
                grad = _effective_grad(p, weight_decay, group["maximize"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            update = np.empty_like(p.data)
            _lerp_(exp_avg, grad, 1.0 - beta1, update)
            exp_avg_sq *= beta2
            np.multiply(grad, grad, out=update)
            update *= 1.0 - beta2
            exp_avg_sq += update

            bias_correction1 = 1.0 - beta1 ** step
            bias_correction2 = 1.0 - beta2 ** step
            rho_t = rho_inf - 2.0 * step * (beta2 ** step) / bias_correction2
            np.divide(exp_avg, bias_correction1, out=update)
            update *= lr
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                adaptive = np.sqrt(exp_avg_sq, out=np.empty_like(p.data))
                adaptive += eps
                np.divide(bias_correction2 ** 0.5, adaptive, out=adaptive)
                update *= adaptive
                update *= rect
            p.data -= update

"""NAdam: Adam with Nesterov momentum and a momentum-decay schedule."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _check_adam_args, _effective_grad, _lerp_, _scalar_state

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam, torch's update rule.

    ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay))``; ``mu_product *= mu_t``;
    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 * v + (1 - beta2) * g**2``,
    ``d = sqrt(v / (1 - beta2**t)) + eps``;
    ``p -= lr * (1 - mu_t) / (1 - mu_product) * g / d + lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / d``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 2e-3).
        betas (tuple[float, float]): running-average coefficients (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        momentum_decay (float): momentum decay (default: 4e-3).
        decoupled_weight_decay (bool): decay the parameter directly, as AdamW (default: False).
        maximize (bool): maximize the objective (default: False).
        foreach: accepted, a choice among torch kernels (the update is the same).
        capturable and differentiable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step`` (0-d), ``mu_product`` (0-d), ``exp_avg``, ``exp_avg_sq``.
    """

    _scalar_state_keys = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        check_flags(self, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        momentum_decay = float(group["momentum_decay"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["mu_product"] = _scalar_state(1.0)
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            step = float(state["step"])
            if weight_decay != 0 and group["decoupled_weight_decay"]:
                p.data *= 1.0 - lr * weight_decay
                grad = _effective_grad(p, 0.0, group["maximize"])
            else:
                grad = _effective_grad(p, weight_decay, group["maximize"])
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            state["mu_product"] *= mu
            mu_product = float(state["mu_product"])

            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            denom = np.empty_like(p.data)
            _lerp_(exp_avg, grad, 1.0 - beta1, denom)
            exp_avg_sq *= beta2
            np.multiply(grad, grad, out=denom)
            denom *= 1.0 - beta2
            exp_avg_sq += denom
            np.divide(exp_avg_sq, 1.0 - beta2 ** step, out=denom)
            np.sqrt(denom, out=denom)
            denom += eps
            update = np.divide(grad, denom, out=np.empty_like(p.data))
            update *= lr * (1.0 - mu) / (1.0 - mu_product)
            p.data -= update
            np.divide(exp_avg, denom, out=update)
            update *= lr * mu_next / (1.0 - mu_product * mu_next)
            p.data -= update

"""Adam (and its decoupled-weight-decay form, the base of AdamW)."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _check_adam_args, _effective_grad, _lerp_, _scalar_state

__all__ = ["Adam"]


class Adam(Optimizer):
    """Adam, torch's update rule.

    ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 * v + (1 - beta2) * g**2`` (``v_max = max(v_max, v)``
    with amsgrad), ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.
    Weight decay is added to the gradient (L2), or with ``decoupled_weight_decay=True`` the
    parameter is first scaled by ``1 - lr * weight_decay`` (AdamW).

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 1e-3).
        betas (tuple[float, float]): running-average coefficients (default: (0.9, 0.999)).
        eps (float): added to the denominator (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        amsgrad (bool): use the AMSGrad variant (default: False).
        maximize (bool): maximize the objective (default: False).
        decoupled_weight_decay (bool): decay the parameter directly, as AdamW (default: False).
        foreach, fused: accepted, as torch's kernel choices (the update is the same).
        capturable and differentiable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step`` (0-d), ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        check_flags(self, capturable=capturable, differentiable=differentiable, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        decoupled = group["decoupled_weight_decay"]
        amsgrad = group["amsgrad"]
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
                if amsgrad:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            step = float(state["step"])
            if weight_decay != 0 and decoupled:
                p.data *= 1.0 - lr * weight_decay
                grad = _effective_grad(p, 0.0, group["maximize"])
            else:
                grad = _effective_grad(p, weight_decay, group["maximize"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            tmp = np.empty_like(p.data)
            _lerp_(exp_avg, grad, 1.0 - beta1, tmp)
            exp_avg_sq *= beta2
            np.multiply(grad, grad, out=tmp)
            tmp *= 1.0 - beta2
            exp_avg_sq += tmp

            step_size = lr / (1.0 - beta1 ** step)
            bias_correction2_sqrt = (1.0 - beta2 ** step) ** 0.5
            if amsgrad:
                np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                np.sqrt(state["max_exp_avg_sq"], out=tmp)
            else:
                np.sqrt(exp_avg_sq, out=tmp)
            tmp /= bias_correction2_sqrt
            tmp += eps
            np.divide(exp_avg, tmp, out=tmp)
            tmp *= step_size
            p.data -= tmp

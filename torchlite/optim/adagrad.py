"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _effective_grad, _scalar_state

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, torch's update rule.

    ``clr = lr / (1 + (t - 1) * lr_decay)``, ``s += g**2``, ``p -= clr * g / (sqrt(s) + eps)``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 1e-2).
        lr_decay (float): learning-rate decay (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        initial_accumulator_value (float): starting value of the sums (default: 0).
        eps (float): added to the denominator (default: 1e-10).
        maximize (bool): maximize the objective (default: False).
        foreach, fused: accepted, as torch's kernel choices (the update is the same).
        differentiable: must be False (no autograd here; ValueError).

    State per parameter (created at construction, as torch): ``step`` (0-d), ``sum``.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        check_flags(self, differentiable=differentiable, foreach=foreach, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p):
        # torch reads the accumulator's start from ``defaults``, not from the param group
        state = self.state[p]
        state["step"] = _scalar_state(0.0)
        state["sum"] = np.full_like(p.data, self.defaults["initial_accumulator_value"])

    def _step_group(self, group, params):
        lr = float(group["lr"])
        lr_decay = float(group["lr_decay"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                self._init_state(p)
            state["step"] += 1
            step = float(state["step"])
            grad = _effective_grad(p, weight_decay, group["maximize"])
            clr = lr / (1.0 + (step - 1.0) * lr_decay)
            state_sum = state["sum"]
            std = np.multiply(grad, grad, out=np.empty_like(p.data))
            state_sum += std
            np.sqrt(state_sum, out=std)
            std += eps
            np.divide(grad, std, out=std)
            std *= clr
            p.data -= std

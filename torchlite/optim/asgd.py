"""ASGD: averaged stochastic gradient descent (SGD whose iterates are also averaged after ``t0`` steps)."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _effective_grad, _scalar_state

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """Averaged SGD, torch's update rule.

    ``p = p * (1 - lambd * eta) - eta * g``; the average ``ax += mu * (p - ax)`` (``ax = p``
    while ``mu == 1``); then ``eta = lr / (1 + lambd * lr * t)**alpha`` and
    ``mu = 1 / max(1, t - t0)``. The parameters follow plain (decayed) SGD; ``ax`` holds the
    averaged iterate, to be copied into the model for evaluation.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): learning rate (default: 1e-2).
        lambd (float): decay term (default: 1e-4).
        alpha (float): power for the eta update (default: 0.75).
        t0 (float): step at which averaging starts (default: 1e6).
        weight_decay (float): L2 penalty (default: 0).
        maximize (bool): maximize the objective (default: False).
        foreach: accepted, a choice among torch kernels (the update is the same).
        differentiable and capturable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step``, ``eta``, ``mu`` (0-d, in the scalar dtype like torch's, so
    ``eta`` and ``mu`` are rounded to float32 under a float32 default dtype), ``ax``.
    """

    _scalar_state_keys = ("step", "eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        check_flags(self, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        lr = float(group["lr"])
        lambd = float(group["lambd"])
        alpha = float(group["alpha"])
        t0 = float(group["t0"])
        weight_decay = float(group["weight_decay"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["eta"] = _scalar_state(lr)
                state["mu"] = _scalar_state(1.0)
                state["ax"] = np.zeros_like(p.data)
            state["step"] += 1
            grad = _effective_grad(p, weight_decay, group["maximize"])
            eta = float(state["eta"])
            p.data *= 1.0 - lambd * eta
            p.data -= np.multiply(grad, eta)
            mu = float(state["mu"])
            ax = state["ax"]
            if mu != 1:
                diff = np.subtract(p.data, ax)
                diff *= mu
                ax += diff
            else:
                np.copyto(ax, p.data)
            step = float(state["step"])
            state["eta"][...] = lr / ((1.0 + lambd * lr * step) ** alpha)
            state["mu"][...] = 1.0 / max(1.0, step - t0)

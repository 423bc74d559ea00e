"""Rprop: resilient backpropagation, per-coordinate step sizes adapted from gradient signs."""
import numpy as np

from ._flags import check_flags
from .optimizer import Optimizer, _scalar_state

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """Rprop, torch's update rule.

    Each coordinate keeps its own step size: multiplied by ``etaplus`` when the gradient keeps
    its sign, by ``etaminus`` when it flips (and that coordinate's gradient is then taken as 0,
    so it does not move), clamped to ``step_sizes``; then ``p -= sign(g) * step_size``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): initial step size (default: 1e-2).
        etas (tuple[float, float]): ``(etaminus, etaplus)``, with
            ``0 < etaminus < 1 < etaplus`` (default: (0.5, 1.2)).
        step_sizes (tuple[float, float]): smallest and largest step size (default: (1e-6, 50)).
        maximize (bool): maximize the objective (default: False).
        foreach: accepted, a choice among torch kernels (the update is the same).
        capturable and differentiable: must be False (no accelerator, no autograd; ValueError).

    State per parameter: ``step`` (0-d), ``prev`` (the last gradient used), ``step_size``.
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False,
                 foreach=None, maximize=False, differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": tuple(etas), "step_sizes": tuple(step_sizes), "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        check_flags(self, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        etaminus, etaplus = (float(e) for e in group["etas"])
        step_size_min, step_size_max = (float(s) for s in group["step_sizes"])
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _scalar_state(0.0)
                state["prev"] = np.zeros_like(p.data)
                state["step_size"] = np.full_like(p.data, float(group["lr"]))
            state["step"] += 1
            grad = np.negative(p.grad) if group["maximize"] else np.array(p.grad, copy=True)
            prev, step_size = state["prev"], state["step_size"]
            sign = np.sign(np.multiply(grad, prev, out=np.empty_like(p.data)))
            flipped = sign < 0
            # NaN signs stay NaN, as in torch, and poison the step size
            sign[sign > 0] = etaplus
            sign[flipped] = etaminus
            sign[sign == 0] = 1.0
            step_size *= sign
            np.clip(step_size, step_size_min, step_size_max, out=step_size)
            grad[flipped] = 0
            np.sign(grad, out=sign)
            sign *= step_size
            p.data -= sign
            np.copyto(prev, grad)

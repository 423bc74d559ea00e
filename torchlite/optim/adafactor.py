"""Adafactor: Adam-like steps with a factored (row x column) second moment, torch's variant."""
import numpy as np

from .optimizer import Optimizer, _lerp_, _scalar_state

__all__ = ["Adafactor"]

# State arrays shaped like the parameter with one of the last two dimensions reduced to 1.
_FACTOR_KEYS = ("row_var", "col_var")


def _factor_shape(shape, key):
    """Shape of ``row_var`` (last dim reduced) or ``col_var`` (second-last dim reduced)."""
    axis = -1 if key == "row_var" else -2
    reduced = list(shape)
    reduced[axis] = 1
    return tuple(reduced)


def _norm(x):
    return float(np.linalg.norm(x.ravel()))


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018) with torch's update rule.

    At step ``t``: ``beta2_t = 1 - t**beta2_decay``, ``rho = min(lr, 1/sqrt(t))`` and
    ``alpha = max(eps2, RMS(p)) * rho``; the parameter is first decayed, ``p *= 1 - lr * weight_decay``.
    For a parameter of two or more dimensions the second moment is factored over the last two:
    ``R = lerp(R, mean(g**2, -1), 1 - beta2_t)``, ``C = lerp(C, mean(g**2, -2), 1 - beta2_t)``,
    ``V = R C / max(mean(R, -2), eps1)`` (leading dimensions are a batch); a 0-d or 1-d parameter
    keeps the full ``V = lerp(V, g**2, 1 - beta2_t)``. Then ``U = g / sqrt(max(V, eps1**2))`` and
    ``p -= alpha * U / max(1, RMS(U) / d)``.

    Args:
        params: parameters or param groups (see ``Optimizer``).
        lr (float): the maximum relative step size ``rho`` and the weight-decay rate (default: 1e-2).
        beta2_decay (float): decay exponent of ``beta2_t``, <= 0 (default: -0.8).
        eps (tuple[float or None, float]): ``(eps1, eps2)``: eps1 floors the variance estimate
            (None: the machine epsilon of the group's first parameter with a gradient, as torch);
            eps2 floors the parameter RMS in the step size (default: (None, 1e-3)).
        d (float): update clipping threshold, >= 1 (default: 1.0).
        weight_decay (float): decoupled weight decay coefficient (default: 0.0).
        foreach: accepted for torch compatibility; it only selects a torch kernel.
        maximize (bool): maximize the objective (default: False).

    State per parameter: ``step`` (0-d), then ``row_var`` (shape ``(..., m, 1)``) and ``col_var``
    (shape ``(..., 1, n)``) for a parameter of shape ``(..., m, n)``, or ``variance`` (the
    parameter's shape) for 0-d and 1-d parameters.
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize}
        super().__init__(params, defaults)

    def _step_group(self, group, params):
        for p in params:
            if np.iscomplexobj(p.data):
                raise RuntimeError("Adafactor does not support complex parameters")
        eps1, eps2 = group["eps"]
        if eps1 is None:
            # torch resolves it once, from the first parameter it updates, for the whole group
            eps1 = float(np.finfo(params[0].dtype).eps)
        for p in params:
            self._update(p, self._param_state(p), group, eps1, float(eps2))

    def _param_state(self, p):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _scalar_state(0.0)
            if p.grad.ndim > 1:
                for key in _FACTOR_KEYS:
                    state[key] = np.zeros(_factor_shape(p.grad.shape, key), dtype=p.grad.dtype)
            else:
                state["variance"] = np.zeros_like(p.grad)
        return state

    def _update(self, p, state, group, eps1, eps2):
        lr = float(group["lr"])
        weight_decay = float(group["weight_decay"])
        grad = np.negative(p.grad) if group["maximize"] else p.grad
        state["step"] += 1
        step = float(state["step"])
        one_minus_beta2 = step ** float(group["beta2_decay"])
        alpha = max(eps2, _norm(p.data) / p.data.size ** 0.5) * min(lr, 1 / step ** 0.5)
        if weight_decay != 0:
            p.data *= 1 - lr * weight_decay

        grad_sq = np.multiply(grad, grad, out=np.empty_like(p.data))
        if grad.ndim > 1:
            row_var, col_var = state["row_var"], state["col_var"]
            _lerp_(row_var, grad_sq.mean(axis=-1, keepdims=True), one_minus_beta2, np.empty_like(row_var))
            _lerp_(col_var, grad_sq.mean(axis=-2, keepdims=True), one_minus_beta2, np.empty_like(col_var))
            var_estimate = np.multiply(row_var, col_var, out=grad_sq)  # torch's row_var @ col_var
            var_estimate /= np.maximum(row_var.mean(axis=-2, keepdims=True), eps1)
        else:
            _lerp_(state["variance"], grad_sq, one_minus_beta2, np.empty_like(grad_sq))
            np.copyto(grad_sq, state["variance"])  # the update is built in a copy, never in the state
            var_estimate = grad_sq

        # eps1 is squared because the square root follows
        update = np.maximum(var_estimate, eps1 * eps1, out=var_estimate)
        np.sqrt(update, out=update)
        np.reciprocal(update, out=update)
        update *= grad
        update *= -alpha / max(1.0, _norm(update) / (update.size ** 0.5 * float(group["d"])))
        p.data += update

    def _load_param_state(self, p, index, saved, name):
        """The base checks, plus ``row_var``/``col_var``, which are not shaped like the parameter."""
        if not isinstance(saved, dict):
            return super()._load_param_state(p, index, saved, name)
        factors = {key: saved[key] for key in _FACTOR_KEYS if key in saved}
        rest = super()._load_param_state(p, index, {k: v for k, v in saved.items() if k not in factors}, name)
        for key, value in factors.items():
            arr = np.asarray(value)
            if p.ndim < 2:
                raise ValueError(f"{name}: state {key!r} of parameter {index}: a parameter of shape {p.shape} "
                                 "keeps 'variance', not factored row/column state")
            expected = _factor_shape(p.shape, key)
            if arr.shape != expected:
                raise ValueError(f"{name}: state {key!r} of parameter {index} has shape {arr.shape}, but the "
                                 f"parameter has shape {p.shape}, so it should be {expected}")
            rest[key] = np.array(arr, dtype=p.dtype, copy=True)
        return {key: rest[key] for key in saved}

"""Muon: momentum SGD whose update is orthogonalized by a Newton-Schulz iteration, for 2-D weights."""
import math

import numpy as np

from .optimizer import Optimizer, _lerp_

__all__ = ["Muon"]

# Keller Jordan's constants, torch's defaults: https://kellerjordan.github.io/posts/muon/
EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


def _bfloat16(x):
    """``x`` rounded to the nearest bfloat16 (ties to even, through float32 as torch's ``.bfloat16()``).

    NumPy has no bfloat16: the upper 16 bits of a float32 are one, and the result comes back
    as float64 so that products of such values are exact.
    """
    x = np.array(x, dtype=np.float32)
    nan = np.isnan(x)
    bits = x.view(np.uint32)
    bits += np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))
    bits &= np.uint32(0xFFFF0000)
    x[nan] = np.nan  # a NaN's carry would run into the sign bit
    return x.astype(np.float64)


def _zeropower_via_newtonschulz(grad, ns_coefficients, ns_steps, eps):
    """``ns_steps`` quintic Newton-Schulz steps towards the orthogonal factor of ``grad`` (m, n); returns (m, n).

    torch runs this in bfloat16 whatever the parameter dtype, so every intermediate is rounded
    to bfloat16 in torch's places and the numbers are torch's (not a more precise
    orthogonalization). Between roundings the arithmetic is float64: products of bfloat16
    values are then exact and sums nearly so, as in torch's float32-accumulating kernels,
    whereas a float32 matmul here rounds differently often enough to flip some bfloat16 results.
    """
    a, b, c = ns_coefficients
    x = _bfloat16(grad)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    norm = _bfloat16(np.sqrt(np.sum(np.square(x))))
    x = _bfloat16(x / max(norm, _bfloat16(eps)))
    for _ in range(ns_steps):
        gram = _bfloat16(x @ x.T)
        gram_update = _bfloat16(b * gram + c * (gram @ gram))
        x = _bfloat16(a * x + gram_update @ x)
    return x.T if tall else x


def _adjust_lr(lr, adjust_lr_fn, shape):
    """The learning rate scaled for a weight of ``shape`` so updates have comparable RMS."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:  # an unknown name set on a param group after construction: torch leaves lr as is
        ratio = 1.0
    return lr * ratio


class Muon(Optimizer):
    """Muon (MomentUm Orthogonalized by Newton-Schulz), torch's update rule, for 2-D parameters only.

    ``B = lerp(B, g, 1 - momentum)``; ``U = lerp(g, B, momentum)`` (nesterov) or ``U = B``;
    ``O = NS(U)``, ``ns_steps`` Newton-Schulz steps with coefficients ``(a, b, c)`` on ``U``
    scaled to unit Frobenius norm (at least ``eps``), in bfloat16 precision as torch;
    ``p *= 1 - lr * weight_decay``; ``p -= lr' * O`` where ``lr' = lr * sqrt(max(1, A / B))``
    (``adjust_lr_fn`` None or "original") or ``lr * 0.2 * sqrt(max(A, B))`` ("match_rms_adamw")
    for a parameter of shape ``(A, B)``. As torch's on every device, the orthogonalized update
    ``O`` has bfloat16 precision (about 3 significant digits) whatever the parameter dtype.

    Args:
        params: 2-D parameters or param groups (see ``Optimizer``); biases, embeddings and
            other parameters belong to another optimizer such as AdamW.
        lr (float): learning rate (default: 1e-3).
        weight_decay (float): decoupled weight decay (default: 0.1).
        momentum (float): momentum factor (default: 0.95).
        nesterov (bool): Nesterov momentum (default: True).
        ns_coefficients (tuple[float, float, float]): the quintic's coefficients ``(a, b, c)``
            (default: (3.4445, -4.7750, 2.0315)).
        eps (float): floor of the norm the update is divided by (default: 1e-7).
        ns_steps (int): Newton-Schulz steps, less than 100 (default: 5).
        adjust_lr_fn (str or None): None, "original" or "match_rms_adamw" (default: None).

    State per parameter: ``momentum_buffer``.
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(DEFAULT_A, DEFAULT_B, DEFAULT_C), eps=EPS, ns_steps=DEFAULT_NS_STEPS,
                 adjust_lr_fn=None):
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ["original", "match_rms_adamw"]:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                    "ns_coefficients": ns_coefficients, "eps": eps, "ns_steps": ns_steps,
                    "adjust_lr_fn": adjust_lr_fn}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{p.size()}")

    def _step_group(self, group, params):
        # checked for every parameter before any is changed (torch checks some of it mid-way)
        for p in params:
            if np.iscomplexobj(p.data):
                raise RuntimeError("Muon does not support complex parameters")
            if p.grad.ndim != 2:
                raise ValueError("Param gradient must be a 2D matrix")
        if group["ns_steps"] >= 100:
            raise ValueError("Number of steps must be less than 100 for computational efficiency")
        if len(group["ns_coefficients"]) != 3:
            raise ValueError("Coefficients must be a tuple of exactly 3 values")
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.zeros_like(p.grad)
            buf = state["momentum_buffer"]
            tmp = np.empty_like(buf)
            _lerp_(buf, p.grad, 1 - momentum, tmp)
            if group["nesterov"]:
                update = np.array(p.grad, copy=True)
                _lerp_(update, buf, momentum, tmp)
            else:
                update = buf
            ortho = _zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"],
                                                float(group["eps"]))
            p.data *= 1 - lr * float(group["weight_decay"])
            step = np.multiply(ortho.astype(p.dtype, copy=False), _adjust_lr(lr, group["adjust_lr_fn"], p.shape),
                               out=tmp)
            p.data -= step

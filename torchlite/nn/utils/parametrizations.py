"""Weight and spectral normalization as parametrizations (torch.nn.utils.parametrizations, torch 2.13).

The same math as the hook versions in weight_norm.py and spectral_norm.py, written as
parametrization modules (``forward(X) -> W``, ``backward(grad_W) -> grad_X``) registered with
``parametrize.register_parametrization``: state_dict keys ``parametrizations.weight.original0``
(g) and ``original1`` (v) for weight_norm, ``parametrizations.weight.original`` and
``parametrizations.weight.0._u`` / ``._v`` for spectral_norm, as torch's.
"""
import numpy as np

from ...random import get_generator
from ..conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..module import Module
from ..parameter import Parameter
from . import parametrize
from .spectral_norm import _normalize
from .weight_norm import _norm_except_dim

__all__ = ["weight_norm", "spectral_norm"]


class _WeightNorm(Module):
    """``forward(g, v) = g * v / ||v||``, the norm over every axis but ``dim`` (the whole tensor when -1)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def _axis(self, v):
        return -1 if self.dim == -1 else self.dim % max(v.ndim, 1)

    def forward(self, weight_g, weight_v):
        norm = _norm_except_dim(weight_v, self._axis(weight_v))
        self.save_for_backward(weight_g, weight_v, norm)
        return weight_v * (weight_g / norm)

    def backward(self, grad_output):
        g, v, norm = self.pop_saved()
        axis = self._axis(v)
        axes = None if axis == -1 else tuple(a for a in range(v.ndim) if a != axis)
        dot = np.sum(grad_output * v, axis=axes, keepdims=axes is not None)
        grad_g = np.asarray(dot / norm).reshape(np.shape(g)).astype(v.dtype, copy=False)
        grad_v = (g / norm) * (grad_output - v * (dot / (norm * norm)))
        return grad_g, grad_v

    def right_inverse(self, weight):
        norm = np.asarray(_norm_except_dim(weight, self._axis(weight)), dtype=weight.dtype)
        return norm, weight


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (https://arxiv.org/abs/1602.07868).

    g (``parametrizations.<name>.original0``) has the weight's shape with every axis but ``dim``
    of size 1 (a scalar for ``dim=None``); v (``original1``) is the weight. Gradients of the
    weight reach g and v.

    Args:
        module: the module holding the parameter.
        name: the parameter's name (default ``'weight'``).
        dim: the axis the norm keeps (default 0); None normalizes the whole tensor.
    Returns:
        ``module`` (a ``Parametrized<Class>``).

    Example::

        >>> m = weight_norm(nn.Linear(20, 40))
        >>> m.parametrizations.weight.original0.shape
        (40, 1)
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def _weight_norm_compat_hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                 error_msgs):
        """A checkpoint of the classic ``nn.utils.weight_norm`` (``<name>_g``, ``<name>_v``) loads, as torch's."""
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module.register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


class _SpectralNorm(Module):
    """``forward(W) = W / sigma(W)``, sigma estimated by power iteration on the buffers ``_u``, ``_v``.

    Each training-mode forward runs ``n_power_iterations`` steps in place (u first, then v, as
    torch's parametrization); registration runs 15. The gradient treats u and v as constants,
    as torch's (they are cloned out of the graph). A 1-d weight is just normalized.
    """

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            h, w = self._reshape_weight_to_matrix(weight).shape
            gen = get_generator()
            self.register_buffer("_u", _normalize(gen.standard_normal(h).astype(weight.dtype), eps))
            self.register_buffer("_v", _normalize(gen.standard_normal(w).astype(weight.dtype), eps))
            self._power_method(self._reshape_weight_to_matrix(np.asarray(weight)), 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = np.moveaxis(weight, self.dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, mat, n_power_iterations):
        for _ in range(n_power_iterations):  # in place: the buffers carry the estimate across steps
            _normalize(mat @ self._v, self.eps, out=self._u)
            _normalize(mat.T @ self._u, self.eps, out=self._v)

    def forward(self, weight):
        if weight.ndim == 1:
            norm = max(float(np.sqrt(np.dot(weight, weight))), self.eps)
            self.save_for_backward(weight, norm)
            return weight / weight.dtype.type(norm)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        u, v = self._u.copy(), self._v.copy()
        sigma = np.dot(u, mat @ v)
        self.save_for_backward(weight, u, v, sigma)
        return weight / sigma

    def backward(self, grad_output):
        saved = self.pop_saved()
        if len(saved) == 2:
            weight, norm = saved
            if norm == self.eps:  # the norm was clamped: a constant divisor
                return grad_output / weight.dtype.type(norm)
            norm = weight.dtype.type(norm)
            return (grad_output - weight * (np.dot(weight, grad_output) / (norm * norm))) / norm
        weight, u, v, sigma = saved
        outer = np.outer(u, v).reshape((weight.shape[self.dim],) + weight.shape[:self.dim]
                                       + weight.shape[self.dim + 1:])
        outer = np.moveaxis(outer, 0, self.dim)
        return grad_output / sigma - (np.sum(grad_output * weight) / (sigma * sigma)) * outer

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Rescale ``module.<name>`` by its spectral norm (https://arxiv.org/abs/1802.05957).

    The weight moves to ``parametrizations.<name>.original``; the parametrization holds the
    power-iteration vectors as buffers ``parametrizations.<name>.0._u`` (shape[dim],) and
    ``._v`` (numel / shape[dim],), drawn from torchlite's generator and refined by 15 steps at
    registration. Reading ``module.<name>`` in training mode runs ``n_power_iterations`` more.

    Args:
        module: the module holding the parameter.
        name: the parameter's name (default ``'weight'``).
        n_power_iterations: power iteration steps per training forward (positive, default 1).
        eps: floor of the norms when normalizing (default 1e-12).
        dim: the axis of output units; None means 1 for ConvTranspose1d/2d/3d, else 0.
    Returns:
        ``module`` (a ``Parametrized<Class>``).
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, (Parameter, np.ndarray)):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(np.asarray(weight), n_power_iterations,
                                                                      dim, eps))
    return module

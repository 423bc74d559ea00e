"""Spectral normalization (torch.nn.utils.spectral_norm): ``w = w_orig / sigma(w_orig)``.

sigma is estimated as ``u @ W @ v``, W the weight as a matrix (``dim`` first, the rest
flattened), with ``u`` and ``v`` buffers refined by power iteration in place at each training
forward, as torch's. The gradient treats u and v as constants (torch clones them out of the
graph): ``d(w_orig / sigma) = grad / sigma - sum(grad * w_orig) / sigma**2 * outer(u, v)``.
The hook mechanics (the weight as an unregistered Parameter recomputed before each forward)
are ``_Reparametrization``'s, in weight_norm.py.
"""
import numpy as np

from ...random import get_generator
from ..conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..parameter import Parameter
from .weight_norm import _refuse_uninitialized, _Reparametrization

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


def _normalize(x, eps, out=None):
    """x / max(||x||, eps), written into ``out`` when given (torch's F.normalize(..., out=))."""
    return np.divide(x, max(float(np.sqrt(np.dot(x, x))), eps), out=out)


class SpectralNorm(_Reparametrization):
    """The hook ``spectral_norm`` registers; ``dim`` is the axis of output units (rows of W)."""

    _version = 1

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight):
        """(shape[dim], rest) with axis ``dim`` moved first, the others in order."""
        if self.dim != 0:
            weight = np.moveaxis(weight, self.dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        return self._compute(module, do_power_iteration)[0]

    def _compute(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig").data
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            for _ in range(self.n_power_iterations):  # in place: the buffers carry the estimate across steps
                _normalize(mat.T @ u, self.eps, out=v)
                _normalize(mat @ v, self.eps, out=u)
        u, v = u.copy(), v.copy()  # this call's constants, whatever later forwards do to the buffers
        sigma = np.dot(u, mat @ v)
        return weight / sigma, (weight, u, v, sigma)

    def _compute_for_forward(self, module):
        return self._compute(module, module.training)

    def _backward(self, module, grad, ctx):
        weight, u, v, sigma = ctx
        shape = weight.shape
        outer = np.outer(u, v).reshape((shape[self.dim],) + shape[:self.dim] + shape[self.dim + 1:])
        outer = np.moveaxis(outer, 0, self.dim)
        dweight = grad / sigma - (np.sum(grad * weight) / (sigma * sigma)) * outer
        getattr(module, self.name + "_orig").accumulate_grad(dweight, fresh=True)

    def _requires_grad(self, module):
        return getattr(module, self.name + "_orig").requires_grad

    def remove(self, module):
        weight = self.compute_weight(module, do_power_iteration=False)
        self._uninstall(module)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight))

    @staticmethod
    def apply(module, name, n_power_iterations, dim, eps):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        _refuse_uninitialized(module, name, "SpectralNorm", "spectral")
        if not 0 <= dim < weight.ndim:
            raise RuntimeError(f"spectral_norm: dim={dim} is out of range for parameter '{name}' of shape "
                               f"{weight.shape} (expected 0 <= dim < {weight.ndim})")
        h, w = fn.reshape_weight_to_matrix(weight.data).shape
        gen = get_generator()
        u = _normalize(gen.standard_normal(h).astype(weight.dtype), eps)
        v = _normalize(gen.standard_normal(w).astype(weight.dtype), eps)
        del module._parameters[name]
        module.register_parameter(name + "_orig", weight)
        fn._install(module, weight.data)  # torch's module.weight is weight_orig's data until the first forward
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        return fn


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Rescale ``module.<name>`` by its spectral norm before each forward (https://arxiv.org/abs/1802.05957).

    The parameter becomes ``<name>_orig``, with buffers ``<name>_u`` (shape[dim],) and
    ``<name>_v`` (numel / shape[dim],), torch's state_dict keys. Each forward in training mode
    runs ``n_power_iterations`` steps of power iteration on u and v (in place); in eval mode
    they are used as they are. u and v start as normalized standard normal draws from
    torchlite's generator.

    Args:
        module: the module holding the parameter.
        name: the parameter's name (default ``'weight'``).
        n_power_iterations: power iteration steps per training forward (positive, default 1).
        eps: floor of the norms when normalizing u and v (default 1e-12).
        dim: the axis of output units; None means 1 for ConvTranspose1d/2d/3d, else 0.
    Returns:
        ``module``, with the hook.

    Example::

        >>> m = spectral_norm(nn.Linear(20, 40))
        >>> m.weight_u.shape
        (40,)
    """
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo ``spectral_norm``: ``module.<name>`` becomes a registered Parameter holding
    ``<name>_orig / sigma`` with the current u and v (no power iteration)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")

"""Weight normalization (torch.nn.utils.weight_norm): ``w = g * v / ||v||``.

torchlite has no autograd, so a reparametrization lives in module hooks (``_Reparametrization``,
shared with spectral_norm.py):

- ``module.<name>`` stays a Parameter the layer reads and accumulates its gradient into, but it
  is not registered: ``parameters()``, optimizers and ``state_dict()`` see only the parameters
  it is computed from, under torch's keys (``weight_g``, ``weight_v``).
- A forward pre-hook recomputes it before each forward, as torch's hook does.
- Backward runs with the weight its own forward used (a module called twice is backpropagated
  twice, in reverse order, and the weight may differ between the calls), and a backward hook
  turns the gradient the layer accumulated into it into the gradients of the parameters it
  is computed from.
"""
import numpy as np

from ..parameter import Parameter

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class _Reparametrization:
    """Hooks that keep ``module.<name>`` computed from other parameters and carry its gradient back to them.

    A subclass defines ``_compute_for_forward(module) -> (weight, ctx)``, ``_backward(module, grad, ctx)``
    (accumulates the gradients of its parameters from ``grad``, dLoss/dweight) and ``_requires_grad(module)``.
    """

    name: str

    def _install(self, module, data):
        object.__setattr__(module, self.name, Parameter(data))  # Module.__setattr__ would register it
        self._calls = []  # (the layer's saved entry, weight, ctx) for each forward awaiting its backward
        self._pending = None
        self._active = None
        self._handles = [module.register_forward_pre_hook(self), module.register_forward_hook(self._after_forward),
                         module.register_full_backward_pre_hook(self._before_backward),
                         module.register_full_backward_hook(self._after_backward)]

    def _uninstall(self, module):
        for handle in self._handles:
            handle.remove()
        self._calls = []
        delattr(module, self.name)

    def __call__(self, module, inputs):
        weight = module.__dict__[self.name]
        weight.data, ctx = self._compute_for_forward(module)
        weight.requires_grad = self._requires_grad(module)
        self._pending = (len(module._saved), weight.data, ctx)

    def _prune(self, module):
        # A forward whose saved entry the module dropped (train()/eval()/clear_saved(), or a failed
        # outer call) gets no backward. Holding the entries keeps their ids unique, so ids compare safely.
        alive = {id(entry) for entry in module._saved}
        self._calls = [call for call in self._calls if id(call[0]) in alive]

    def _after_forward(self, module, args, output):
        count, weight, ctx = self._pending
        self._pending = None
        self._prune(module)
        if len(module._saved) > count:  # gradients enabled: the layer saved one entry for its backward
            self._calls.append((module._saved[-1], weight, ctx))

    def _before_backward(self, module, grad_output):
        self._prune(module)
        self._active = None
        if self._calls and module._saved and self._calls[-1][0] is module._saved[-1]:
            _, data, ctx = self._calls.pop()
            weight = module.__dict__[self.name]
            self._active = (weight.data, ctx)
            weight.data = data

    def _after_backward(self, module, grad_input, grad_output):
        if self._active is None:
            return
        latest, ctx = self._active
        self._active = None
        weight = module.__dict__[self.name]
        grad, weight.grad, weight.data = weight.grad, None, latest
        if grad is not None:
            self._backward(module, grad, ctx)


def _norm_except_dim(v, dim):
    """The 2-norm of ``v`` over every axis but ``dim`` (kept with size 1); over all of it when ``dim`` is -1."""
    if dim == -1:
        return np.sqrt(np.sum(v * v))
    axes = tuple(a for a in range(v.ndim) if a != dim)
    return np.sqrt(np.sum(v * v, axis=axes, keepdims=True))


class WeightNorm(_Reparametrization):
    """The hook ``weight_norm`` registers: ``<name> = <name>_g * <name>_v / ||<name>_v||``.

    ``dim`` is the axis kept by the norm (g has v's shape with every other axis of size 1);
    -1 (or None) takes the norm of the whole tensor (g is a scalar), as torch's.
    """

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        return self._compute_for_forward(module)[0]

    def _compute_for_forward(self, module):
        g = getattr(module, self.name + "_g").data
        v = getattr(module, self.name + "_v").data
        norm = _norm_except_dim(v, self.dim)
        return v * (g / norm), (g, v, norm)

    def _backward(self, module, grad, ctx):
        g, v, norm = ctx
        if self.dim == -1:
            dot = np.sum(grad * v)
        else:
            dot = np.sum(grad * v, axis=tuple(a for a in range(v.ndim) if a != self.dim), keepdims=True)
        getattr(module, self.name + "_g").accumulate_grad(np.asarray(dot / norm).reshape(g.shape))
        getattr(module, self.name + "_v").accumulate_grad((g / norm) * (grad - v * (dot / (norm * norm))),
                                                          fresh=True)

    def _requires_grad(self, module):
        return getattr(module, self.name + "_g").requires_grad or getattr(module, self.name + "_v").requires_grad

    @staticmethod
    def apply(module, name, dim):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        if not isinstance(weight, (Parameter, np.ndarray)):
            raise TypeError(f"weight_norm: '{name}' of {module._get_name()} must be a Parameter, "
                            f"got {type(weight).__name__}")
        _refuse_uninitialized(module, name, "WeightNorm", "weight")
        if name not in module._parameters:  # a buffer, or a weight another hook already computes
            raise KeyError(name)
        ndim = max(weight.ndim, 1)
        if fn.dim != -1:
            if not -ndim <= fn.dim < ndim:
                raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                                 f"but got {fn.dim})")
            fn.dim %= ndim
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight.data, fn.dim)))
        module.register_parameter(name + "_v", Parameter(weight.data))
        fn._install(module, fn.compute_weight(module))
        return fn

    def remove(self, module):
        weight = self.compute_weight(module)
        self._uninstall(module)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        module.register_parameter(self.name, Parameter(weight))


def _refuse_uninitialized(module, name, hook, what):
    """torch's error for a lazy layer's parameter that has no shape yet."""
    if name in getattr(module, "_lazy_names", ()) and module.has_uninitialized_params():
        raise ValueError(f"The module passed to `{hook}` can't have uninitialized parameters. "
                         f"Make sure to run the dummy forward before applying {what} normalization")


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (https://arxiv.org/abs/1602.07868).

    Replaces the parameter ``name`` by ``<name>_g`` (the magnitude, v's shape with every axis
    but ``dim`` of size 1) and ``<name>_v`` (the direction, the weight's shape), torch's
    state_dict keys; the weight is recomputed before every forward and its gradient goes to
    g and v. ``dim=None`` (or -1) normalizes the whole tensor (g is a scalar).

    Args:
        module: the module holding the parameter.
        name: the parameter's name (default ``'weight'``).
        dim: the axis the norm keeps (default 0: one norm per output unit; ConvTranspose
            layers keep their output channels on axis 1).
    Returns:
        ``module``, with the hook.

    Example::

        >>> m = weight_norm(nn.Linear(20, 40), name='weight')
        >>> m.weight_g.shape, m.weight_v.shape
        ((40, 1), (40, 20))
    """
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo ``weight_norm``: ``module.<name>`` becomes a registered Parameter holding the current weight."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")

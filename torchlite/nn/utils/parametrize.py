"""Parametrizations of parameters and buffers (torch.nn.utils.parametrize, torch 2.13).

``register_parametrization(module, "weight", p)`` makes ``module.weight`` read as
``p(original)``, with ``original`` kept at ``module.parametrizations.weight.original`` (or
``original0``, ``original1``, ... when ``p.right_inverse`` returns several arrays): torch's
state_dict keys, torch's ``Parametrized<Layer>`` class with a ``weight`` property.

A parametrization is a torchlite Module: ``forward(X) -> W`` (saving what it needs) and
``backward(grad_W) -> grad_X`` (a tuple when forward takes several originals), accumulating
its own parameters' gradients. With no autograd, the chain rule runs in hooks on the layer:

- A forward pre-hook computes ``W = p_n(...p_1(original))`` once per forward and puts it in an
  unregistered Parameter, the one ``module.weight`` returns while the layer runs, so the layer
  reads it and accumulates its gradient into it as into any weight.
- Each forward that saved state for backward is recorded beside the layer's saved entry, so
  backward (one per forward, in reverse order) sees the weight its own forward used.
- A backward hook runs the chain's backwards in reverse with the gradient the layer left in
  that Parameter, accumulating into the originals and the parametrizations' parameters.

Read outside the layer's forward and backward, ``module.weight`` is computed afresh (as torch's
property: a training-mode spectral norm runs its power iteration on every read). Inside
``cached()`` it is computed once per tensor, and a layer called several times sums its
gradients before running the chain backward once.
"""
import collections.abc
from contextlib import contextmanager

import numpy as np

from ...grad_mode import is_grad_enabled, no_grad
from ..container import ModuleDict, ModuleList
from ..module import Module
from ..parameter import Parameter

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations", "transfer_parametrizations_and_params"]

_cache_enabled = 0
_cache = {}


@contextmanager
def cached():
    """Compute each parametrized tensor once inside the block (torch's ``parametrize.cached``).

    Useful when a parametrized layer runs several times in one forward (an RNN cell in a
    loop, shared weights): the parametrization runs once and backward runs it backward once,
    with the gradients of every use summed.
    """
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _register_parameter_or_buffer(module, name, x):
    if isinstance(x, Parameter):
        module.register_parameter(name, x)
    else:
        module.register_buffer(name, x)


def _set_data(owner, name, value):
    """Give ``owner.<name>`` (a Parameter or a buffer) the values of ``value``, keeping the Parameter
    object (torch's ``set_``: optimizers holding it see the new values)."""
    value = np.array(getattr(value, "data", value), copy=True)
    if name in owner._parameters:
        owner._parameters[name].data = value
    else:
        owner._buffers[name] = value


def _is_array(x):
    return isinstance(x, (np.ndarray, Parameter))


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor and its original(s): ``module.parametrizations[tensor_name]``.

    Holds ``original`` (a Parameter, or a buffer when the parametrized tensor is one), or
    ``original0``, ``original1``, ... when the first parametrization's ``right_inverse`` returns
    a sequence. ``forward()`` gives the parametrized tensor; ``backward(grad)`` runs the chain
    backward and accumulates into the originals. Made by ``register_parametrization`` only.
    """

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        shape, dtype = original.shape, original.dtype
        new = original.data if isinstance(original, Parameter) else original
        with no_grad():
            for module in reversed(self):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        if not _is_array(new) and not isinstance(new, collections.abc.Sequence):
            raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                             f"Got {type(new).__name__}")
        self.is_tensor = _is_array(new)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if new.dtype != dtype:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                                 f"original.dtype: {dtype}\nright_inverse(original).dtype: {new.dtype}")
            _register_parameter_or_buffer(self, "original", original)
            if new is not original and new is not getattr(original, "data", None):
                _set_data(self, "original", new)
        else:
            for i, part in enumerate(new):
                if not _is_array(part):
                    raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors "
                                     f"(list, tuple...). Got element {i} of the sequence with type "
                                     f"{type(part).__name__}.")
                part = np.array(getattr(part, "data", part), copy=True)
                if isinstance(original, Parameter):
                    part = Parameter(part, original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", part)
        if not self.unsafe:
            with no_grad():
                z = self()
            if not isinstance(z, np.ndarray):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if z.dtype != dtype:
                raise ValueError("Registering a parametrization may not change the dtype of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized dtype: {dtype}\n"
                                 f"parametrized dtype: {z.dtype}")
            if z.shape != shape:
                raise ValueError("Registering a parametrization may not change the shape of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized shape: {shape}\n"
                                 f"parametrized shape: {z.shape}")

    def originals(self):
        """The original(s) as stored: ``[original]`` or ``[original0, original1, ...]``."""
        if self.is_tensor:
            return [self.original]
        return [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def right_inverse(self, value):
        """Set the original(s) so the chain gives ``value``: every parametrization's ``right_inverse``,
        last registered first."""
        value = value.data if isinstance(value, Parameter) else value
        with no_grad():
            for module in reversed(self):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
                value = module.right_inverse(value)
        if self.is_tensor:
            if not _is_array(value):
                raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
            if value.dtype != self.original.dtype:
                raise ValueError(f"The tensor returned by `right_inverse` has dtype {value.dtype} "
                                 f"while `original` has dtype {self.original.dtype}")
            _set_data(self, "original", value)
            return
        if not isinstance(value, collections.abc.Sequence):
            raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(value).__name__}.")
        if len(value) != self.ntensors:
            raise ValueError(f"'right_inverse' must return a sequence of tensors of length {self.ntensors}. "
                             f"Got a sequence of length {len(value)}.")
        for i, (original, part) in enumerate(zip(self.originals(), value)):
            if original.dtype != part.dtype:
                raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype {part.dtype} "
                                 f"while `original{i}` has dtype {original.dtype}")
            _set_data(self, f"original{i}", part)

    def forward(self):
        """The parametrized tensor: ``p_n(...p_1(original))``."""
        x = self[0](*[getattr(o, "data", o) for o in self.originals()])
        for module in list(self)[1:]:
            x = module(x)
        return x

    def backward(self, grad_output):
        """Run the chain backward from dLoss/dtensor; accumulates into the originals. Returns None."""
        grad = grad_output
        for module in reversed(list(self)[1:]):
            grad = module.backward(grad)
        grads = self[0].backward(grad)
        grads = (grads,) if self.is_tensor else grads
        for original, g in zip(self.originals(), grads):
            if isinstance(original, Parameter) and g is not None:
                original.accumulate_grad(np.asarray(g, dtype=original.dtype))

    def requires_grad(self):
        return any(p.requires_grad for p in self.parameters())


class _Use:
    """One computation of the parametrized tensor and the layer forwards that use it."""

    __slots__ = ("weight", "saved", "uses", "grad")

    def __init__(self, weight, saved):
        self.weight = weight
        self.saved = saved  # the chain saved state, so one backward through it is owed
        self.uses = 0
        self.grad = None


class _Hooks:
    """The layer hooks of one parametrized Parameter (see the module docstring)."""

    def __init__(self, module, name):
        self.name = name
        self.param = Parameter(np.empty(0))  # what module.<name> is while the layer runs
        self.busy = False
        self._calls = []  # (the layer's saved entry, _Use) for each forward awaiting its backward
        self._pending = None
        self._active = None
        self._handles = [module.register_forward_pre_hook(self.before_forward),
                         module.register_forward_hook(self.after_forward),
                         module.register_full_backward_pre_hook(self.before_backward),
                         module.register_full_backward_hook(self.after_backward)]

    def remove(self):
        for handle in self._handles:
            handle.remove()
        self._calls = []

    def compute(self, module):
        """Compute the tensor afresh (or take it from ``cached()``), saving state for backward when needed."""
        plist = module.parametrizations[self.name]
        key = (id(module), self.name)
        if _cache_enabled and key in _cache:
            return _cache[key]
        if is_grad_enabled() and plist.requires_grad():
            use = _Use(plist(), True)
        else:
            with no_grad():
                use = _Use(plist(), False)
        if _cache_enabled:
            _cache[key] = use
        return use

    def read(self, module):
        """``module.<name>`` outside the layer's forward and backward: a value, no gradient path."""
        if not self.busy:
            cached = _cache.get((id(module), self.name)) if _cache_enabled else None
            if cached is None:
                with no_grad():
                    self.param.data = module.parametrizations[self.name]()
            else:
                self.param.data = cached.weight
        self.param.requires_grad = module.parametrizations[self.name].requires_grad()
        return self.param

    def before_forward(self, module, args):
        use = self.compute(module)
        self.param.data = use.weight
        self.param.requires_grad = module.parametrizations[self.name].requires_grad()
        self.busy = True
        self._pending = (len(module._saved), use)

    def _prune(self, module):
        # Forwards whose saved entry the layer dropped (train()/eval()/clear_saved()) get no backward.
        alive = {id(entry) for entry in module._saved}
        self._calls = [call for call in self._calls if id(call[0]) in alive]

    def after_forward(self, module, args, output):
        count, use = self._pending
        self._pending = None
        self.busy = False
        self._prune(module)
        if len(module._saved) > count:  # gradients enabled: the layer saved one entry for its backward
            use.uses += 1
            self._calls.append((module._saved[-1], use))

    def before_backward(self, module, grad_output):
        self._prune(module)
        self._active = None
        self.busy = True
        if self._calls and module._saved and self._calls[-1][0] is module._saved[-1]:
            _, use = self._calls.pop()
            self._active = (self.param.data, use)
            self.param.data = use.weight

    def after_backward(self, module, grad_input, grad_output):
        self.busy = False
        if self._active is None:
            return
        latest, use = self._active
        self._active = None
        grad, self.param.grad, self.param.data = self.param.grad, None, latest
        if not use.saved:
            return
        if grad is not None:
            use.grad = grad if use.grad is None else use.grad + grad
        use.uses -= 1
        if use.uses == 0:  # the last use backpropagated: the chain's own backward, once
            grad = np.zeros_like(use.weight) if use.grad is None else use.grad
            module.parametrizations[self.name].backward(grad)


def _inject_new_class(module):
    """Give ``module`` its own subclass ``Parametrized<Class>``, where the properties live."""
    cls = module.__class__
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {})


def _inject_property(module, tensor_name):
    if hasattr(module, tensor_name):
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")

    def get_parametrized(self):
        plist = self.parametrizations[tensor_name]
        if isinstance(plist.originals()[0], Parameter):
            return self.__dict__["_parametrization_hooks"][tensor_name].read(self)
        key = (id(self), tensor_name)
        if _cache_enabled and key in _cache:
            return _cache[key].weight
        with no_grad():  # a parametrized buffer: no gradient to carry
            weight = plist()
        if _cache_enabled:
            _cache[key] = _Use(weight, False)
        return weight

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Make ``module.<tensor_name>`` read as ``parametrization(original)`` (torch's semantics).

    The first registration on a tensor moves it to ``module.parametrizations[tensor_name].original``
    (``right_inverse(tensor)`` when the parametrization defines it; ``original0``, ... when that
    returns a sequence). Registering again on the same tensor chains: the new parametrization
    is applied to the current result. ``parametrization`` is a Module with ``forward(X)`` and
    ``backward(grad) -> grad_X``, and may define ``right_inverse(W)``; then assigning
    ``module.<tensor_name> = W`` sets the original(s) through it.

    Args:
        module: the module holding the parameter or buffer.
        tensor_name: its name.
        parametrization: the Module to apply.
        unsafe: allow the parametrization to change the tensor's shape or dtype (unchecked).
    Returns:
        ``module``, now of class ``Parametrized<Class>``.
    Raises:
        ValueError: when ``module`` has no parameter, buffer or parametrized tensor of that name.
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            _check_appended(module, tensor_name, parametrization)
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
            object.__setattr__(module, "_parametrization_hooks", {})
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
        if isinstance(original, Parameter):
            module.__dict__["_parametrization_hooks"][tensor_name] = _Hooks(module, tensor_name)
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a "
                         f"parametrized element with name '{tensor_name}'")
    return module


def _check_appended(module, tensor_name, parametrization):
    y = np.asarray(getattr(module, tensor_name))
    with no_grad():
        x = parametrization(y)
        if not isinstance(x, np.ndarray):
            raise ValueError(f"A parametrization must return a tensor. Got {type(x).__name__}.")
        if x.dtype != y.dtype:
            raise ValueError("Registering a parametrization may not change the dtype of the tensor, unless the "
                             f"`unsafe` flag is enabled.\nmodule.{tensor_name}.dtype: {y.dtype}\n"
                             f"parametrization(module.{tensor_name}).dtype: {x.dtype}")
        if x.shape != y.shape:
            raise ValueError("Registering a parametrization may not change the shape of the tensor, unless the "
                             f"`unsafe` flag is enabled.\nmodule.{tensor_name}.shape: {y.shape}\n"
                             f"parametrization(module.{tensor_name}).shape: {x.shape}")
        if not hasattr(parametrization, "right_inverse"):
            return
        try:
            z = parametrization.right_inverse(x)
        except NotImplementedError:
            return
    if not _is_array(z):
        raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(z).__name__}")
    if z.dtype != y.dtype:
        raise ValueError("The tensor returned by parametrization.right_inverse must have the same dtype "
                         f"as module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                         f"module.{tensor_name}.dtype: {y.dtype}\nreturned dtype: {z.dtype}")
    if z.shape != y.shape:
        raise ValueError("The tensor returned by parametrization.right_inverse must have the same shape "
                         f"as module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                         f"module.{tensor_name}.shape: {y.shape}\nreturned shape: {z.shape}")


def is_parametrized(module, tensor_name=None):
    """True if ``module`` has a parametrization on ``tensor_name`` (on any tensor when None)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Remove the parametrizations on ``module.<tensor_name>``, making it a plain parameter (or buffer) again.

    ``leave_parametrized=True`` keeps its current (parametrized) value; False restores
    ``original`` (impossible when the parametrization has several originals). Returns ``module``.
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        if leave_parametrized:
            _set_data(plist, "original", getattr(module, tensor_name))
        original = plist.original
    elif leave_parametrized:
        t = np.array(getattr(module, tensor_name), copy=True)
        original = Parameter(t) if plist.requires_grad() else t
    else:
        raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                         "that is parametrized in terms of a sequence of tensors.")
    hooks = module.__dict__["_parametrization_hooks"].pop(tensor_name, None)
    if hooks is not None:
        hooks.remove()
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        object.__delattr__(module, "_parametrization_hooks")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module):
    """The module's class before any parametrization (``Linear`` for a ``ParametrizedLinear``)."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def transfer_parametrizations_and_params(from_module, to_module, tensor_name=None):
    """Register ``from_module``'s parametrizations (all, or ``tensor_name``'s) on ``to_module``,
    sharing their modules and originals; creates the parameters ``to_module`` lacks. Returns ``to_module``."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(np.array(getattr(from_module, name), copy=True)))
        for param_func in from_module.parametrizations[name]:
            register_parametrization(to_module, name, param_func)
        source, target = from_module.parametrizations[name], to_module.parametrizations[name]
        if source.is_tensor:
            target.original = source.original
        else:
            for i in range(source.ntensors):
                setattr(target, f"original{i}", getattr(source, f"original{i}"))
    return to_module

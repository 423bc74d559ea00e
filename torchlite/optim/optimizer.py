"""Optimizer: the base every optimizer builds on (param groups, per-parameter state, state_dict).

A subclass passes its hyperparameter ``defaults`` to ``Optimizer.__init__`` and implements
``_step_group(group, params)``, which updates ``p.data`` in place for the parameters of one group
that have a gradient. Updates stay in the parameter's dtype: hyperparameters are Python floats
(NumPy casts them to the array's dtype) and results are written with ``out=``.

Hooks, as torch's: ``register_step_pre_hook`` / ``register_step_post_hook`` on one optimizer and
``register_optimizer_step_pre_hook`` / ``register_optimizer_step_post_hook`` on all of them run
around every ``step`` (a subclass's own ``step`` is wrapped at class creation, and a ``step`` that
calls ``super().step()`` runs them once); ``register_(load_)state_dict_pre/post_hook`` run around
``state_dict`` and ``load_state_dict``. Each returns a ``RemovableHandle``.
"""
import copy
import functools
import numbers
import warnings
from collections import OrderedDict, defaultdict
from itertools import chain

import numpy as np

from .._dtype import get_default_dtype
from ..grad_mode import enable_grad
from ..nn.hooks import add_hook
from ..nn.module import Module
from ..nn.parameter import Parameter

__all__ = ["Optimizer", "required", "register_optimizer_step_pre_hook", "register_optimizer_step_post_hook"]

_global_optimizer_pre_hooks = OrderedDict()
_global_optimizer_post_hooks = OrderedDict()


def register_optimizer_step_pre_hook(hook):
    """Register ``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)`` before every optimizer's step.

    ``args`` starts with the optimizer itself, as torch's. Global pre-hooks run before each
    optimizer's own. Returns a ``RemovableHandle``.
    """
    return add_hook(_global_optimizer_pre_hooks, hook, False)


def register_optimizer_step_post_hook(hook):
    """Register ``hook(optimizer, args, kwargs)`` after every optimizer's step (after each optimizer's own).

    Returns a ``RemovableHandle``.
    """
    return add_hook(_global_optimizer_post_hooks, hook, False)


def _hooked_step(step):
    """Wrap a ``step`` so the step hooks run around the outermost call, as torch's ``profile_hook_step``."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        hooked = (_global_optimizer_pre_hooks or _global_optimizer_post_hooks or self._optimizer_step_pre_hooks
                  or self._optimizer_step_post_hooks)
        if not hooked or self.__dict__.get("_in_hooked_step"):
            return step(self, *args, **kwargs)
        args = (self, *args)
        for hook in chain(list(_global_optimizer_pre_hooks.values()), list(self._optimizer_step_pre_hooks.values())):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"optimizer step pre-hook {hook!r} must return None or a tuple of "
                                       f"(new_args, new_kwargs), but got {result!r}")
                args, kwargs = result
        self._in_hooked_step = True  # a super().step() call inside runs no hooks again
        try:
            out = step(*args, **kwargs)
        finally:
            self._in_hooked_step = False
        for hook in chain(list(self._optimizer_step_post_hooks.values()), list(_global_optimizer_post_hooks.values())):
            hook(self, args, kwargs)
        return out

    wrapper._step_hooked = True
    return wrapper


class _RequiredParameter:
    """Marks a hyperparameter that every param group must set itself."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj):
    cls = type(obj)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _scalar_dtype():
    """dtype of 0-d state such as ``step``: float64 under a float64 default dtype, else float32 (as torch)."""
    return np.dtype(np.float64) if get_default_dtype() == np.float64 else np.dtype(np.float32)


def _scalar_state(value):
    """A 0-d array counter, updated in place like torch's 0-d ``step`` tensor."""
    return np.array(value, dtype=_scalar_dtype())


def _effective_grad(p, weight_decay, maximize):
    """The gradient to descend: ``grad`` (negated when maximizing) plus ``weight_decay * param``.

    May return ``p.grad`` itself, so callers must not write into the result.
    """
    grad = p.grad
    if weight_decay != 0:
        out = np.multiply(p.data, weight_decay, out=np.empty_like(p.data))
        return np.subtract(out, grad, out=out) if maximize else np.add(out, grad, out=out)
    return np.negative(grad) if maximize else grad


def _lerp_(start, end, weight, tmp):
    """``start += weight * (end - start)`` in place, with torch's two-sided formula for accuracy."""
    np.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        tmp *= weight
        start += tmp
    else:
        tmp *= 1.0 - weight
        np.subtract(end, tmp, out=start)


def _check_adam_args(lr, betas, eps, weight_decay):
    """Validation shared by the Adam family, with torch's messages."""
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Optimizer:
    """Base class for all optimizers.

    Args:
        params: an iterable of ``Parameter`` s, of ``(name, Parameter)`` pairs, or of dicts
            (param groups: ``{'params': [...], 'lr': ...}``) whose missing options come from
            ``defaults``. Use ordered collections (lists), never sets.
        defaults (dict): default values of the optimization options.

    Attributes:
        param_groups (list[dict]): the groups, each with its ``params`` and options.
        state (defaultdict): per-parameter state (moment buffers, ``step`` ...), keyed by Parameter.
        defaults (dict): the options given at construction.

    Parameters whose ``grad`` is None or whose ``requires_grad`` is False are skipped by ``step``.
    """

    # State entries that are 0-d counters rather than arrays shaped like the parameter.
    _scalar_state_keys = ("step",)

    def __init__(self, params, defaults):
        self.defaults = defaults
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, (Parameter, np.ndarray, Module)) or not hasattr(params, "__iter__"):
            hint = " (pass model.parameters())" if isinstance(params, Module) else ""
            raise TypeError("params argument given to the optimizer should be an iterable of Parameters "
                            f"or dicts, but got {_typename(params)}{hint}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("step")
        if own is not None and not getattr(own, "_step_hooked", False):
            cls.step = _hooked_step(own)

    def __repr__(self):
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"

    # param groups -------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group (a dict with ``params`` and optional options) to ``param_groups``.

        Options the group leaves out are taken from ``defaults``. A parameter may belong to
        one group only.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        param_group["params"] = params
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            param_group["param_names"] = names
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer can only optimize Parameters, but one of the params is {_typename(p)}")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        if len(params) != len(set(params)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = set()
        for group in self.param_groups:
            seen.update(group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if not seen.isdisjoint(params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # stepping -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Reset the gradients: to None (default, and ``step`` then skips them) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.fill(0)

    @_hooked_step
    def step(self, closure=None):
        """Perform one optimization step.

        Args:
            closure (callable, optional): re-evaluates the model (forward, backward) and
                returns the loss; it runs with gradients enabled, before the update.

        Returns:
            the closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None and p.requires_grad]
            if params:
                self._step_group(group, params)
        return loss

    def _step_group(self, group, params):
        """Update, in place, the ``params`` (all with gradients) of one group."""
        raise NotImplementedError(f"{type(self).__name__} must implement _step_group or step")

    # hooks --------------------------------------------------------------------------------
    def register_step_pre_hook(self, hook):
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)`` before each ``step``.

        ``args`` starts with the optimizer itself (as torch's); returned args and kwargs replace
        the call's. Runs after the global pre-hooks. Returns a ``RemovableHandle``.
        """
        return add_hook(self._optimizer_step_pre_hooks, hook, False)

    def register_step_post_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` after each ``step``, before the global post-hooks."""
        return add_hook(self._optimizer_step_post_hooks, hook, False)

    def register_state_dict_pre_hook(self, hook, prepend=False):
        """``hook(optimizer)`` before ``state_dict`` builds the dict (first if ``prepend``)."""
        return add_hook(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook, prepend=False):
        """``hook(optimizer, state_dict) -> state_dict or None`` after ``state_dict``: it may edit the dict
        in place or return a new one."""
        return add_hook(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook, prepend=False):
        """``hook(optimizer, state_dict) -> state_dict or None`` before ``load_state_dict``: it gets a
        shallow copy of the user's dict, may edit it in place or return the dict to load."""
        return add_hook(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook, prepend=False):
        """``hook(optimizer)`` after ``load_state_dict`` has loaded the state."""
        return add_hook(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # state_dict ---------------------------------------------------------------------------
    def state_dict(self):
        """The optimizer state as torch lays it out.

        ``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}``: parameters
        are numbered in group order. The state arrays are the optimizer's own (not copies),
        like torch's; ``torchlite.save`` writes them as they are at that moment.
        """
        for hook in list(self._optimizer_state_dict_pre_hooks.values()):
            hook(self)
        mapping = {}
        start = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            mapping.update({id(p): i for i, p in enumerate(group["params"], start) if id(p) not in mapping})
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {(mapping[id(k)] if isinstance(k, Parameter) else k): dict(v) for k, v in self.state.items()}
        state_dict = {"state": state, "param_groups": groups}
        for hook in list(self._optimizer_state_dict_post_hooks.values()):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    def load_state_dict(self, state_dict):
        """Load a state from ``state_dict()`` (also torch's, converted with ``.numpy()``).

        Group and parameter counts and the shapes of state arrays are checked first; on a
        mismatch a ValueError says what differs and nothing is changed. Arrays are copied and
        cast to their parameter's dtype; 0-d counters (``step``) keep their dtype, and plain
        numbers there become 0-d arrays of float32 (float64 under a float64 default dtype).
        """
        name = f"{type(self).__name__}.load_state_dict"
        if isinstance(state_dict, dict):
            state_dict = state_dict.copy()  # the pre-hooks may edit it, never the caller's dict
            for hook in list(self._optimizer_load_state_dict_pre_hooks.values()):
                result = hook(self, state_dict)
                if result is not None:
                    state_dict = result
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups', "
                             f"got {_typename(state_dict)}" + (f" with keys {sorted(map(str, state_dict))}"
                                                               if isinstance(state_dict, dict) else ""))
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(f"{name}: loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}, this optimizer has {len(groups)})")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}: loaded state dict contains a parameter group that doesn't match the "
                                 f"size of optimizer's group (group {i}: {len(s['params'])} parameters saved, "
                                 f"{len(g['params'])} in this optimizer)")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                state[id_map[key]] = self._load_param_state(id_map[key], key, value, name)
            else:
                state[key] = copy.deepcopy(value)
        new_groups = []
        for g, s in zip(groups, saved_groups):
            new_group = copy.deepcopy({k: v for k, v in s.items() if k != "params"})
            new_group["params"] = g["params"]
            if "param_names" in g and "param_names" not in new_group:
                new_group["param_names"] = g["param_names"]
            new_groups.append(new_group)
        self.state = state
        self.param_groups = new_groups
        for hook in list(self._optimizer_load_state_dict_post_hooks.values()):
            hook(self)

    def _load_param_state(self, p, index, saved, name):
        if not isinstance(saved, dict):
            raise ValueError(f"{name}: state of parameter {index} should be a dict, got {_typename(saved)}")
        out = {}
        for key, value in saved.items():
            if key in self._scalar_state_keys and isinstance(value, (numbers.Real, np.ndarray, np.generic)):
                arr = np.asarray(value)
                if arr.ndim != 0:
                    raise ValueError(f"{name}: state {key!r} of parameter {index} should be a scalar, "
                                     f"got shape {arr.shape}")
                is_float_array = isinstance(value, (np.ndarray, np.generic)) and arr.dtype.kind == "f"
                dtype = arr.dtype if is_float_array else _scalar_dtype()
                out[key] = np.array(arr, dtype=dtype, copy=True)
            elif isinstance(value, (np.ndarray, np.generic)):
                arr = np.asarray(value)
                if arr.shape != p.shape:
                    raise ValueError(f"{name}: state {key!r} of parameter {index} has shape {arr.shape}, "
                                     f"but the parameter has shape {p.shape}")
                out[key] = np.array(arr, dtype=p.dtype, copy=True)
            else:
                out[key] = copy.deepcopy(value)
        return out

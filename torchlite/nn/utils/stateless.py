"""Calling a module with other parameters and buffers (torch.nn.utils.stateless, torch.func.functional_call).

``functional_call(model, {"0.weight": w, "0.bias": b}, x)`` runs ``model(x)`` with ``w`` and ``b``
in place of the model's own ``0.weight`` and ``0.bias`` and puts the originals back afterwards,
also when the forward raises. Keys are ``named_parameters()`` / ``named_buffers()`` names; values
are ndarrays, torchlite Parameters or None.

There is no autograd, so the output of ``functional_call`` carries no graph: a layer reads its
parameters as attributes (``self.weight``) in backward as well as in forward. To backpropagate
through swapped-in parameters, run forward and backward inside the context manager::

    params = {name: Parameter(value) for name, value in values.items()}
    with _reparametrize_module(model, params):
        loss = criterion(model(x), y)
        model.backward(criterion.backward())
    grads = {name: p.grad for name, p in params.items()}

- A Parameter given for a parameter receives its gradient in ``.grad`` (accumulated, as always);
  the module's own parameters' ``.grad`` stay as they were.
- A plain ndarray given for a parameter is a constant: it is wrapped for the duration in a Parameter
  with ``requires_grad=False`` that shares its memory, so forward reads it and backward computes no
  gradient for it (torch's behaviour for a tensor that does not require grad).
- A Parameter given for a buffer is used through its ``.data``.
- In-place updates reach the given arrays (training-mode BatchNorm moves the running statistics and
  ``num_batches_tracked`` you pass, as in torch). A module that assigns a new array to a buffer
  leaves it in the given dict in place of the old one (torch's write-back).
- What the module's forward saved for backward inside the block and did not backpropagate there is
  dropped on exit: a backward after the block would read the module's own parameters and give wrong
  gradients, so it fails with "nothing saved" instead, and ``functional_call`` leaks no saved state.

Tied weights (one Parameter or buffer registered under several names, e.g. a shared submodule):
with ``tie_weights=True`` a value given for one of the names is used for all of them, and different
values for two of them are an error. Originals are restored last-in first-out, so a module reached
under two names gets its own parameter back (torch 2.13 restores in insertion order and can leave
the replacement in such a module).

A parametrized tensor is replaced through its original, e.g. key ``"parametrizations.weight.original"``;
the parametrization runs on the value given.
"""
from collections.abc import Sequence
from contextlib import contextmanager
from itertools import chain

import numpy as np

from ..parameter import Parameter

__all__ = ["functional_call"]

_MISSING = object()


def _untie(module, parameters_and_buffers):
    """A copy of ``parameters_and_buffers`` where a value for one name of a tied tensor stands for all its names."""
    names_of = {}
    for name, tensor in chain(module.named_parameters(remove_duplicate=False),
                              module.named_buffers(remove_duplicate=False)):
        names_of.setdefault(id(tensor), []).append(name)
    untied = dict(parameters_and_buffers)
    for names in names_of.values():
        given = [name for name in names if name in parameters_and_buffers]
        if len(names) < 2 or not given:
            continue
        if len({id(parameters_and_buffers[name]) for name in given}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, which are tied. "
                             "Consider using tie_weights=False")
        for name in names:
            untied[name] = parameters_and_buffers[given[0]]
    return untied


def _check_keys(module, keys):
    valid = {name for name, _ in chain(module.named_parameters(remove_duplicate=False),
                                       module.named_buffers(remove_duplicate=False))}
    msgs = []
    unexpected, missing = sorted(set(keys) - valid), sorted(valid - set(keys))
    if unexpected:
        msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if msgs:
        raise RuntimeError(f"Error(s) in reparametrizing for {module._get_name()}:\n\t" + "\n\t".join(msgs))


def _fitted(owner, name, value, wrappers):
    """``value`` as the slot holds it: a Parameter in a parameter slot (one shared wrapper per plain array,
    so tied names stay one object), an array in a buffer slot."""
    if name in owner._parameters and isinstance(value, np.ndarray):
        if id(value) not in wrappers:
            wrappers[id(value)] = Parameter(value, requires_grad=False)
        return wrappers[id(value)]
    if name in owner._buffers and isinstance(value, Parameter):
        return value.data
    return value


def _swap(owner, name, value):
    """Put ``value`` at ``owner.<name>`` (``_MISSING``: remove it); returns what was there (``_MISSING`` if nothing).

    Parameters and buffers change in their dicts. Any other name is a plain attribute, swapped in
    ``__dict__`` when it lives there (weight_norm keeps its computed weight there) and through setattr
    otherwise (a parametrization's property, or a name the module lacks)."""
    for store in (owner._parameters, owner._buffers):
        if name in store:
            old = store[name]
            _put(store, name, value)
            return old
    old = getattr(owner, name, _MISSING)
    if old is not _MISSING and old is not None and not isinstance(old, (np.ndarray, Parameter)):
        raise TypeError(f"attribute `{name}`: {old!r} is not an ndarray or a Parameter")
    if name in owner.__dict__:
        _put(owner.__dict__, name, value)
    elif value is not _MISSING:
        setattr(owner, name, value)
    elif old is not _MISSING:
        delattr(owner, name)
    return old


def _put(store, name, value):
    if value is _MISSING:
        del store[name]
    else:
        store[name] = value


@contextmanager
def _reparametrize_module(module, parameters_and_buffers, tie_weights=False, strict=False):
    """Inside the block, ``module``'s parameters and buffers named in ``parameters_and_buffers`` are the given values.

    Run forward and backward inside the block to get gradients in the Parameters given (see the
    module docstring). On exit the originals come back, also when the block raises, and saved
    state the block left is dropped.

    Args:
        module: the Module.
        parameters_and_buffers: dict of dotted name -> ndarray, Parameter or None.
        tie_weights: a value given for one name of a tied tensor is used for all its names.
        strict: the keys must be exactly the module's parameter and buffer names.
    Raises:
        RuntimeError: with ``strict``, missing or unexpected keys.
        ValueError: with ``tie_weights``, different values for one tied tensor.
        AttributeError: a key whose submodule path does not exist.
        TypeError: a value that is not an ndarray, a Parameter or None.
    """
    values = _untie(module, parameters_and_buffers) if tie_weights else parameters_and_buffers
    if strict:
        _check_keys(module, values)
    slots = []
    for path, value in values.items():
        if value is not None and not isinstance(value, (np.ndarray, Parameter)):
            raise TypeError(f"functional_call: the value for {path!r} is a {type(value).__name__}; expected an "
                            "ndarray, a torchlite Parameter or None")
        prefix, _, name = path.rpartition(".")
        slots.append((path, module.get_submodule(prefix), name, value))
    marks = [(m, len(m._saved)) for m in module.modules()]
    placed, swapped, wrappers = {}, [], {}
    try:
        for path, owner, name, value in slots:
            placed[path] = _fitted(owner, name, value, wrappers)
            swapped.append((path, owner, name, _swap(owner, name, placed[path])))
        yield
    finally:
        for path, owner, name, old in reversed(swapped):
            final = _swap(owner, name, old)
            if path in parameters_and_buffers and final is not placed[path]:
                parameters_and_buffers[path] = final  # the module assigned a new value: the caller gets it
        for m, mark in marks:
            del m._saved[mark:]


def _one_dict(parameter_and_buffer_dicts):
    """A dict as is; a list or tuple of dicts with distinct keys merged into one."""
    if isinstance(parameter_and_buffer_dicts, dict):
        return parameter_and_buffer_dicts
    if not isinstance(parameter_and_buffer_dicts, Sequence):
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, "
                         f"but got {type(parameter_and_buffer_dicts)}")
    if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
        raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
    counts = {}
    for key in (k for d in parameter_and_buffer_dicts for k in d):
        counts[key] = counts.get(key, 0) + 1
    repeated = [key for key, n in counts.items() if n > 1]
    if repeated:
        raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous")
    return {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """Call ``module(*args, **kwargs)`` with the given parameters and buffers in place of its own.

    The module's own come back afterwards, also when forward raises. The output carries no
    gradient path: for backward use ``_reparametrize_module`` (module docstring).

    Args:
        module: the Module to call.
        parameters_and_buffers: dict of dotted name (``"0.weight"``, ``"bn.running_mean"``) -> ndarray,
            Parameter or None; or a list/tuple of such dicts with distinct keys (as torch.func's).
        args: the positional arguments; a value that is not a tuple is the single argument.
        kwargs: the keyword arguments.
        tie_weights: parameters and buffers tied in the module (one object under several names) stay
            tied: a value given for one name is used for all, and different values for them are an error.
        strict: the keys must be exactly the module's parameter and buffer names (RuntimeError otherwise).
    Returns:
        What ``module`` returns.
    """
    parameters_and_buffers = _one_dict(parameters_and_buffers)
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    with _reparametrize_module(module, parameters_and_buffers, tie_weights=tie_weights, strict=strict):
        return module(*args, **kwargs)

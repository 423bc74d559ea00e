"""Module: the base class of every layer, loss and model.

A module registers its Parameters, buffers and child Modules by attribute name, exactly as
torch does, so ``named_parameters()`` and ``state_dict()`` give torch's keys in torch's order.
Unlike torch there is no autograd: each module writes ``forward`` and ``backward``.

The contract:
- ``forward(*inputs)`` computes outputs; while gradients are enabled it keeps what backward
  needs with ``self.save_for_backward(...)``. Under ``torchlite.no_grad()`` nothing is kept.
- ``backward(grad_output)`` pops what the matching forward saved, adds parameter gradients
  into ``p.grad`` (``p.accumulate_grad``) and returns dLoss/dInput (a tuple for several inputs).
- Saved state is a stack: a module called k times is backpropagated k times, in reverse order.
- ``train()``, ``eval()`` and ``clear_saved()`` drop everything saved, so an evaluation pass
  run without ``no_grad()`` cannot leak memory across epochs.
"""
import copy
import functools
import threading
from collections import OrderedDict, namedtuple

import numpy as np

from .. import anomaly
from ..grad_mode import is_grad_enabled
from . import hooks as _hooks
from .parameter import Buffer, Parameter


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: keys the model has but the dict lacked, and the reverse."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` refused a dict; the model is unchanged."""


def _addindent(s, num_spaces):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * num_spaces + line for line in lines)


class _CallJournal(threading.local):
    """Which modules saved state during the outermost module call running in this thread.

    A forward that raises partway (a shape error three layers deep) would otherwise leave the
    layers before it holding saved state that no backward pops; ``Module.__call__`` pops it.
    """

    def __init__(self):
        self.depth = 0
        self.saved_by = []


_journal = _CallJournal()


def _is_dtype_name(name):
    try:
        np.dtype(name)
        return True
    except TypeError:
        return False


def _check_device(module, device):
    if device is None:
        return
    name = str(device)
    if name.split(":")[0] != "cpu" or name.count(":") > 1:
        raise ValueError(f"{module._get_name()}: torchlite runs on the CPU with NumPy; device {name!r} is not "
                         "available (use 'cpu')")


_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")
_HOOK_FLAGS = ("_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs", "_forward_hooks_always_called")
_STATE_HOOK_DICTS = ("_state_dict_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks",
                     "_load_state_dict_post_hooks")
_EXTRA_STATE_KEY_SUFFIX = "_extra_state"


def _wrapped_backward(fn):
    """Wrap a subclass's ``backward``: its module's backward hooks run once around the outermost call,
    and anomaly mode checks what it returns. One wrapper, so the common case (neither) costs one test."""

    @functools.wraps(fn)
    def backward(self, *args, **kwargs):
        hooked = (self._backward_pre_hooks or self._backward_hooks) and not self.__dict__.get("_in_hooked_backward")
        if not hooked and not anomaly.is_anomaly_enabled():
            return fn(self, *args, **kwargs)
        checked = anomaly.wrap_backward(fn)
        if not hooked:
            return checked(self, *args, **kwargs)
        object.__setattr__(self, "_in_hooked_backward", True)  # a super().backward() call runs no hooks again
        try:
            return _hooks.call_backward(self, functools.partial(checked, self), args, kwargs)
        finally:
            object.__setattr__(self, "_in_hooked_backward", False)

    backward._anomaly_wrapped = True
    return backward


class Module:
    """Base class for all layers and models.

    Subclasses call ``super().__init__()`` first, assign Parameters, Modules and buffers as
    attributes, and define ``forward`` and ``backward``.
    """

    training: bool
    #: When False the module's backward may skip computing dLoss/dInput and return None
    #: (set it on a model's first layer: its input is data). Sequential passes it to its first child.
    needs_input_grad = True

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_saved", [])
        for name in _HOOK_DICTS + _STATE_HOOK_DICTS:
            object.__setattr__(self, name, OrderedDict())
        for name in _HOOK_FLAGS:
            object.__setattr__(self, name, set())

    # ----------------------------------------------------------------- forward and backward
    def forward(self, *inputs):
        raise NotImplementedError(f'Module [{self._get_name()}] is missing the required "forward" function')

    def backward(self, grad_output):
        raise NotImplementedError(f'Module [{self._get_name()}] is missing the required "backward" function')

    def __call__(self, *inputs, **kwargs):
        journal = _journal
        mark = len(journal.saved_by)
        journal.depth += 1
        try:
            forward = self.forward
            if anomaly.is_anomaly_enabled():
                def forward(*args, **kw):
                    return anomaly.checked_call(self, self.forward, args, kw, "forward")
            if self._forward_pre_hooks or self._forward_hooks:
                return _hooks.call_forward(self, forward, inputs, kwargs)
            return forward(*inputs, **kwargs)
        except BaseException:
            for module in reversed(journal.saved_by[mark:]):  # undo this call's saves, latest first
                module._saved.pop()
            del journal.saved_by[mark:]
            raise
        finally:
            journal.depth -= 1
            if journal.depth == 0:
                journal.saved_by.clear()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("backward")
        if own is not None and not getattr(own, "_anomaly_wrapped", False):
            cls.backward = _wrapped_backward(own)

    # ----------------------------------------------------------------- hooks (see hooks.py)
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """``hook(module, args)`` (or ``(module, args, kwargs)``) before each forward; returns a handle."""
        flags = (self._forward_pre_hooks_with_kwargs,)
        handle = _hooks.add_hook(self._forward_pre_hooks, hook, prepend, *flags)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        return handle

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """``hook(module, args, output)`` (or ``(module, args, kwargs, output)``) after each forward."""
        flags = (self._forward_hooks_with_kwargs, self._forward_hooks_always_called)
        handle = _hooks.add_hook(self._forward_hooks, hook, prepend, *flags)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """``hook(module, grad_output)`` before each backward; may return a new grad_output tuple."""
        return _hooks.add_hook(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook, prepend=False):
        """``hook(module, grad_input, grad_output)`` after each backward; may return a new grad_input."""
        return _hooks.add_hook(self._backward_hooks, hook, prepend)

    def register_backward_hook(self, hook):
        """torch's deprecated name: here the same as ``register_full_backward_hook`` (backward is the module's own)."""
        return self.register_full_backward_hook(hook)

    def register_state_dict_pre_hook(self, hook):
        """``hook(module, prefix, keep_vars)`` before this module's entries join ``state_dict()``."""
        return _hooks.add_hook(self._state_dict_pre_hooks, hook, False)

    def register_state_dict_post_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata) -> None`` after this module's entries and
        its children's are in ``state_dict``; it may edit the dict in place. ``local_metadata`` is an
        empty dict: torchlite keeps no ``_metadata`` (torch's holds a version number)."""
        return _hooks.add_hook(self._state_dict_hooks, hook, False)

    def register_load_state_dict_pre_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs) -> None`` before ``load_state_dict`` checks anything, as torch's.

        ``state_dict`` holds the keys under ``prefix`` (a copy: the caller's dict is never edited); the
        hook may edit it in place, e.g. rename legacy keys. ``local_metadata`` is an empty dict
        (torchlite keeps no ``_metadata``). Keys or messages added to the three lists join the result
        and the error."""
        return _hooks.add_hook(self._load_state_dict_pre_hooks, hook, False)

    def register_load_state_dict_post_hook(self, hook):
        """``hook(module, incompatible_keys) -> None`` after the values are loaded; it may edit the
        ``missing_keys`` / ``unexpected_keys`` lists in place. With ``strict=True`` keys left in them
        raise (a hook may clear them) and the module is restored to what it held before the load."""
        return _hooks.add_hook(self._load_state_dict_post_hooks, hook, False)

    def _has_hooks(self):
        d = self.__dict__  # not getattr: _has_hooks runs for every child on every Sequential forward
        return any(d[name] for name in _HOOK_DICTS)

    def save_for_backward(self, *values):
        """Push ``values`` for the next ``backward``; a no-op under ``no_grad()``."""
        if is_grad_enabled():
            self._saved.append(values)
            if _journal.depth:
                _journal.saved_by.append(self)

    def pop_saved(self):
        """Pop the tuple the latest unmatched forward saved; a clear error when there is none."""
        if not self._saved:
            raise RuntimeError(
                f"{self._get_name()}.backward() called with nothing saved: run forward with gradients "
                "enabled (not under torchlite.no_grad()) before backward, one backward per forward call; "
                "train()/eval()/clear_saved() drop saved state")
        return self._saved.pop()

    @property
    def saved_count(self):
        """How many forward calls are waiting for their backward."""
        return len(self._saved)

    def clear_saved(self):
        """Drop everything saved for backward, in this module and all below it."""
        for m in self.modules():
            m._saved.clear()
        return self

    # ----------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(torchlite.nn.Parameter or None expected)")
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            modules = self.__dict__.get("_modules")
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._parameters, self._buffers, self._non_persistent_buffers_set)
            modules[name] = value
        elif self.__dict__.get("_modules") is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(torchlite.nn.Module or None expected)")
            self._modules[name] = value
        elif isinstance(value, Buffer):  # nn.Buffer: registered as register_buffer would, as a plain ndarray
            self.register_buffer(name, np.asarray(value), value.persistent)
        elif self.__dict__.get("_buffers") is not None and name in self._buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (ndarray or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, *containers):
        for c in containers:
            if name in c:
                if isinstance(c, set):
                    c.discard(name)
                else:
                    del c[name]

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def _check_name(self, name, kind):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
        if hasattr(self, name) and not any(name in s for s in (self._parameters, self._buffers, self._modules)):
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name, param):
        """Add a Parameter (or None) under ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(torchlite.nn.Parameter or None required)")
        self._remove_from(name, self._buffers, self._modules, self._non_persistent_buffers_set)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add non-trained state (e.g. running statistics); ``persistent=False`` keeps it out of state_dict."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (ndarray or None required)")
        self._remove_from(name, self._parameters, self._modules)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Add a child module (or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        self._remove_from(name, self._parameters, self._buffers, self._non_persistent_buffers_set)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The module at dotted path ``target`` ('' is self)."""
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if not isinstance(mod, Module) or item not in mod._modules or mod._modules[item] is None:
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def set_submodule(self, target, module, strict=False):
        """Put ``module`` at dotted path ``target``, replacing a submodule there or, unless ``strict``,
        adding one under an existing parent."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if hasattr(parent, name):
            if not isinstance(getattr(parent, name), Module):
                raise AttributeError(f"`{name}` is not an nn.Module")
        elif strict:
            raise AttributeError(f"{parent._get_name()} has no attribute `{name}`")
        setattr(parent, name, module)

    def _get_leaf(self, target, store, kind):
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in getattr(mod, store):
            raise AttributeError(f"{mod._get_name()} has no {kind} `{name}`")
        return getattr(mod, store)[name]

    def get_parameter(self, target):
        """The Parameter at dotted path ``target``."""
        return self._get_leaf(target, "_parameters", "parameter")

    def get_buffer(self, target):
        """The buffer at dotted path ``target``."""
        return self._get_leaf(target, "_buffers", "buffer")

    # ----------------------------------------------------------------- iteration
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self, remove_duplicate=True):
        for _, m in self.named_modules(remove_duplicate=remove_duplicate):
            yield m

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, store, prefix, recurse, remove_duplicate):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, store).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ----------------------------------------------------------------- modes and grads
    def train(self, mode=True):
        """Set training mode here and below; drops saved state and scratch buffers. Returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
            m._saved.clear()
            m._drop_scratch()
        return self

    def _drop_scratch(self):
        """Free buffers kept between calls for speed (a training batch's are the wrong size for evaluation)."""

    def eval(self):
        """Evaluation mode (dropout off, batch norm uses running statistics). Returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            p.zero_grad_(set_to_none)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter. Returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn):
        """Call ``fn`` on every child (recursively) and then on self. Returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ----------------------------------------------------------------- dtype
    def to(self, *args, device=None, dtype=None, non_blocking=False, memory_format=None):
        """Cast floating parameters, gradients and buffers to ``dtype``. Returns self.

        As torch: ``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or keywords. The only
        device is the CPU ('cpu', 'cpu:0'); another device is a clear error. ``memory_format``
        is accepted and changes nothing: layers choose their own layouts, values are the same.
        """
        for arg in args:
            if isinstance(arg, str) and not _is_dtype_name(arg):
                device = arg
            else:
                dtype = arg
        _check_device(self, device)
        if dtype is None:
            return self
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{self._get_name()}.to: expected a floating dtype or 'cpu', got {dtype!r}") from None
        if dtype.kind != "f":
            raise TypeError(f"{self._get_name()}.to: expected a floating dtype, got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dtype, copy=False)
                    if p.grad is not None:
                        p.grad = p.grad.astype(dtype, copy=False)
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype, copy=False)
            m._saved.clear()
        return self

    def cpu(self):
        """Already there: torchlite computes on the CPU. Returns self."""
        return self

    def cuda(self, device=None):
        _check_device(self, "cuda")

    def xpu(self, device=None):
        _check_device(self, "xpu")

    def ipu(self, device=None):
        _check_device(self, "ipu")

    def mtia(self, device=None):
        _check_device(self, "mtia")

    def to_empty(self, *, device, recurse=True):
        """Replace parameters and buffers with uninitialized arrays of the same shape and dtype
        (torch's way to materialize a model built without storage). Returns self."""
        _check_device(self, device)
        for m in (self.modules() if recurse else [self]):
            for p in m._parameters.values():
                if p is not None:
                    p.data, p.grad = np.empty_like(p.data), None
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = np.empty_like(b)
        return self

    def share_memory(self):
        """Returns self: torchlite's arrays live in this process (DataLoader workers get copies)."""
        return self

    def compile(self, *args, **kwargs):
        """Accepted for torch code that calls it; torchlite runs its NumPy forward and backward as written."""

    def type(self, dst_type):
        """Cast to ``dst_type`` (a floating dtype). Returns self."""
        return self.to(dst_type)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def bfloat16(self):
        raise TypeError(f"{self._get_name()}.bfloat16: NumPy has no bfloat16; use float(), double() or half()")

    # ----------------------------------------------------------------- state dict
    def get_extra_state(self):
        """Override (with ``set_extra_state``) to store more state under the key ``"_extra_state"``.

        ``torchlite.save`` holds arrays, numbers, strings, bools, None, lists, tuples and dicts.
        """
        raise RuntimeError("Module.get_extra_state() is only called when a subclass overrides it")

    def set_extra_state(self, state):
        """Restore what ``get_extra_state`` returned; ``load_state_dict`` calls it."""
        raise RuntimeError("Module.set_extra_state() is only called when a subclass overrides it")

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters, then persistent buffers, then extra state, then children: torch's keys and order.

        The arrays are the module's own (not copies), like torch's; ``keep_vars=True`` gives
        the Parameter objects. State-dict pre-hooks run first, post-hooks last (see the
        ``register_*`` methods).
        """
        if destination is None:
            destination = OrderedDict()
        for hook in list(self._state_dict_pre_hooks.values()):
            hook(self, prefix, keep_vars)
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.data
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination, prefix + name + ".", keep_vars)
        for hook in list(self._state_dict_hooks.values()):
            if hook(self, destination, prefix, {}) is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return destination

    def _state_slots(self, prefix=""):
        """(key, module, store, name) for every entry state_dict would hold."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, self, "_parameters", name
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                yield prefix + name, self, "_buffers", name
        if type(self).set_extra_state is not Module.set_extra_state:
            yield prefix + _EXTRA_STATE_KEY_SUFFIX, self, None, _EXTRA_STATE_KEY_SUFFIX
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_slots(prefix + name + ".")

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy ``state_dict`` into this module's parameters and buffers (in place).

        All or nothing: load pre-hooks run first (they may edit a copy of the dict, e.g. rename
        legacy keys); then every key is checked (missing, unexpected, shape, dtype kind);
        on any refusal one ``StateDictError`` lists them all and nothing is changed.
        Floating values are cast to the model's dtype; ``set_extra_state`` gets ``"_extra_state"``
        entries. Load post-hooks then run (children first); strict keys they leave make the load
        raise and the old values come back. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        found = ([], [], [])  # missing keys, unexpected keys and messages the pre-hooks add
        if any(m._load_state_dict_pre_hooks for m in self.modules()):
            state_dict = self._run_load_pre_hooks(state_dict, *found)
        # lazy layers not run yet take their shapes from the dict (undone if the load is refused)
        undos = [undo for name, m in self.named_modules() if hasattr(m, "_materialize_from_state")
                 for undo in [m._materialize_from_state(state_dict, name + "." if name else "")] if undo is not None]
        try:
            return self._load_checked(state_dict, strict, assign, found)
        except BaseException:
            for undo in reversed(undos):
                undo()
            raise

    def _run_load_pre_hooks(self, state_dict, missing, unexpected, errors):
        """torch's walk: each module's load pre-hooks get the keys under its prefix (a copy they may
        edit), then its children get theirs from it; returns the dict the checks then read."""
        merged = OrderedDict()

        def walk(module, local, prefix):
            for hook in list(module._load_state_dict_pre_hooks.values()):
                # torch passes strict=True to every module's hooks, whatever the caller's strict
                hook(module, local, prefix, {}, True, missing, unexpected, errors)
            children = [(prefix + name + ".", m) for name, m in module._modules.items() if m is not None]
            for key in local.keys():
                if key.startswith(prefix) and not any(key.startswith(p) for p, _ in children):
                    merged[key] = local[key]
            for child_prefix, child in children:
                walk(child, OrderedDict((k, v) for k, v in local.items() if k.startswith(child_prefix)), child_prefix)

        walk(self, OrderedDict((k, state_dict[k]) for k in state_dict.keys()), "")
        return merged

    def _load_checked(self, state_dict, strict, assign, found=((), (), ())):
        slots = list(self._state_slots())
        expected = {key for key, *_ in slots}
        missing = list(found[0]) + [key for key, *_ in slots if key not in state_dict]
        unexpected = list(found[1]) + [key for key in state_dict.keys() if key not in expected]
        errors, plan = list(found[2]), []
        for key, mod, store, name in slots:
            if key not in state_dict:
                continue
            if store is None:  # extra state goes to set_extra_state as it is
                plan.append((mod, store, name, state_dict[key]))
                continue
            current = getattr(mod, store)[name]
            current = current.data if isinstance(current, Parameter) else current
            value = state_dict[key]
            value = value.data if isinstance(value, Parameter) else value
            try:
                value = np.asarray(value)
            except Exception as e:  # noqa: BLE001 - report any conversion failure by key
                errors.append(f"could not read {key} as an array: {e}")
                continue
            if value.shape != current.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {value.shape} from checkpoint, "
                              f"the shape in current model is {current.shape}.")
            elif not _same_kind(value.dtype, current.dtype):
                errors.append(f"dtype mismatch for {key}: checkpoint has {value.dtype}, "
                              f"the model has {current.dtype}.")
            else:
                plan.append((mod, store, name, value))
        post = [(m, hook) for m in _postorder(self) for hook in list(m._load_state_dict_post_hooks.values())]
        if errors or (strict and not post and (missing or unexpected)):
            self._refuse_load(strict, missing, unexpected, errors)
        # a post-hook's strict keys or a set_extra_state that raises must leave the module as it was
        undo = _commit(plan, assign, keep_undo=bool(post) or any(store is None for _, store, *_ in plan))
        for m in self.modules():
            m._saved.clear()
        keys = IncompatibleKeys(missing, unexpected)
        try:
            for module, hook in post:
                if hook(module, keys) is not None:
                    raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not "
                                         "expected to return new values, if incompatible_keys need to be "
                                         "modified, it should be done inplace.")
            if strict and (missing or unexpected):
                self._refuse_load(strict, missing, unexpected, errors)
        except BaseException:
            undo()
            raise
        return keys

    def _refuse_load(self, strict, missing, unexpected, errors):
        msgs = []
        if strict:
            if missing:
                msgs.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
            if unexpected:
                msgs.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        msgs.extend(errors)
        raise StateDictError(f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(msgs))

    # ----------------------------------------------------------------- printing
    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        """The text inside the parentheses of this module's repr (override in layers)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(m), 2) for key, m in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self):
        keys = list(super().__dir__()) + list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(keys))


def _same_kind(a, b):
    ints = "iu"
    return a.kind == b.kind or (a.kind in ints and b.kind in ints) or (a.kind in "iub" and b.kind == "f")


def _postorder(module):
    """Every module below ``module`` and then itself, as torch runs load post-hooks (no dedup)."""
    for child in module._modules.values():
        if child is not None:
            yield from _postorder(child)
    yield module


def _commit(plan, assign, keep_undo):
    """Load ``plan``; returns a callable restoring the old values (a no-op unless ``keep_undo``).
    With ``keep_undo`` a load that raises partway is undone before the error goes on."""
    restores = []

    def undo():
        for restore in reversed(restores):
            restore()

    try:
        for mod, store, name, value in plan:
            if keep_undo:
                restores.append(_restorer(mod, store, name, assign))
            if store is None:
                mod.set_extra_state(value)
            else:
                _copy_into(mod, store, name, value, assign)
    except BaseException:
        undo()
        raise
    return undo


def _restorer(mod, store, name, assign):
    if store is None:
        if type(mod).get_extra_state is Module.get_extra_state:
            return lambda: None
        old = copy.deepcopy(mod.get_extra_state())
        return lambda: mod.set_extra_state(old)
    entry = getattr(mod, store)[name]
    if store == "_parameters":
        data = entry.data
        if assign:
            return lambda: setattr(entry, "data", data)
        saved = data.copy()
        return lambda: np.copyto(data, saved)
    if assign:
        return lambda: getattr(mod, store).__setitem__(name, entry)
    saved = entry.copy()
    return lambda: np.copyto(entry, saved)


def _copy_into(mod, store, name, value, assign):
    entry = getattr(mod, store)[name]
    if store == "_parameters":
        if assign:
            entry.data = np.array(value, dtype=entry.data.dtype)
        else:
            np.copyto(entry.data, value, casting="unsafe")
    elif assign:
        getattr(mod, store)[name] = np.array(value, dtype=entry.dtype)
    else:
        np.copyto(entry, value, casting="unsafe")

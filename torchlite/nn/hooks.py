"""Module hooks, as torch's: forward pre-hooks, forward hooks, backward pre-hooks and backward hooks.

- ``register_forward_pre_hook(hook)``: ``hook(module, args)`` before ``forward``; it may return
  new args (a tuple, or one value). ``with_kwargs=True``: ``hook(module, args, kwargs)`` returning
  ``(args, kwargs)`` or None.
- ``register_forward_hook(hook)``: ``hook(module, args, output)`` after ``forward``; it may return a
  new output. ``with_kwargs=True``: ``hook(module, args, kwargs, output)``. ``always_call=True``:
  also called when ``forward`` raised (then ``output`` is None and the error goes on).
- ``register_full_backward_pre_hook(hook)``: ``hook(module, grad_output)`` before ``backward``, with
  ``grad_output`` a tuple; it may return a new tuple.
- ``register_full_backward_hook(hook)``: ``hook(module, grad_input, grad_output)`` after ``backward``,
  both tuples (``grad_input`` holds None where an input needs no gradient); it may return a new
  ``grad_input`` tuple, which ``backward`` then returns.

Each ``register_*`` returns a ``RemovableHandle``: ``handle.remove()``, or use it as a context manager.
Hooks run in registration order (``prepend=True`` puts one first). Backward hooks fire where a
module's ``backward`` is called: Sequential and hand-written models call their children's.
"""
import itertools

__all__ = ["RemovableHandle"]

_ids = itertools.count()


class RemovableHandle:
    """Removes the hook it was returned for from the module's hook dicts."""

    def __init__(self, hooks_dict, *flag_sets):
        self.id = next(_ids)
        self._hooks = hooks_dict
        self._flags = flag_sets

    def remove(self):
        self._hooks.pop(self.id, None)
        for flags in self._flags:
            flags.discard(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def add_hook(hooks, hook, prepend, *flag_dicts):
    """Put ``hook`` in the ordered dict ``hooks`` (first if ``prepend``); flags share its id."""
    handle = RemovableHandle(hooks, *flag_dicts)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def call_forward(module, forward, args, kwargs):
    """``forward(*args, **kwargs)`` with the module's forward pre-hooks and hooks around it."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if key in module._forward_pre_hooks_with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                       f"but got {result!r}")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    try:
        output = forward(*args, **kwargs)
    except BaseException:
        for key, hook in list(module._forward_hooks.items()):
            if key in module._forward_hooks_always_called:
                _call_forward_hook(module, key, hook, args, kwargs, None)
        raise
    for key, hook in list(module._forward_hooks.items()):
        result = _call_forward_hook(module, key, hook, args, kwargs, output)
        if result is not None:
            output = result
    return output


def _call_forward_hook(module, key, hook, args, kwargs, output):
    if key in module._forward_hooks_with_kwargs:
        return hook(module, args, kwargs, output)
    return hook(module, args, output)


def call_backward(module, backward, args, kwargs):
    """``backward(*args, **kwargs)`` with the module's backward pre-hooks and hooks around it."""
    grad_output = tuple(args)
    for hook in list(module._backward_pre_hooks.values()):
        result = hook(module, grad_output)
        if result is not None:
            grad_output = _as_grads(result, len(grad_output), "backward pre-hook")
    grad_input = backward(*grad_output, **kwargs)
    several = isinstance(grad_input, tuple)
    grads_in = grad_input if several else (grad_input,)
    for hook in list(module._backward_hooks.values()):
        result = hook(module, grads_in, grad_output)
        if result is not None:
            grads_in = _as_grads(result, len(grads_in), "backward hook")
    return grads_in if several else grads_in[0]


def _as_grads(result, n, what):
    grads = result if isinstance(result, (tuple, list)) else (result,)
    if len(grads) != n:
        raise RuntimeError(f"{what} returned {len(grads)} gradients, expected {n}")
    return tuple(grads)

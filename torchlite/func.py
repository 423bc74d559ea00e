"""torch.func's ``functional_call``: call a module with other parameters and buffers.

The same as ``torchlite.nn.utils.stateless.functional_call``, under torch.func's argument name. There
is no autograd: for gradients with respect to the given parameters, run forward and backward inside
``torchlite.nn.utils.stateless._reparametrize_module`` (see that module's docstring).
"""
from .nn.utils import stateless

__all__ = ["functional_call"]


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """Call ``module(*args, **kwargs)`` with the parameters and buffers in ``parameter_and_buffer_dicts``
    (a dict of dotted name -> ndarray, Parameter or None, or a list/tuple of such dicts with distinct
    keys) in place of its own; see ``torchlite.nn.utils.stateless.functional_call``."""
    return stateless.functional_call(module, parameter_and_buffer_dicts, args, kwargs, tie_weights=tie_weights,
                                     strict=strict)

"""Pruning (torch.nn.utils.prune, torch 2.13): zero chosen entries of a parameter through a mask.

Pruning ``module.<name>`` replaces the parameter by the parameter ``<name>_orig`` (the same
Parameter object, so an optimizer built before keeps training it) and the buffer ``<name>_mask``
(torch's state_dict keys), and ``module.<name> = <name>_mask * <name>_orig`` is recomputed by a
forward pre-hook: the pruning method itself, as in torch, where ``remove`` and ``is_pruned`` find it.

torchlite has no autograd: ``module.<name>`` is an unregistered Parameter the layer reads and
accumulates its gradient into, and a backward hook hands that gradient on to ``<name>_orig`` times
the mask its forward used, which is torch autograd's gradient of ``mask * orig`` (the hook
mechanics are weight_norm.py's ``_Reparametrization``). It works on any layer that reads its
parameters as attributes (Linear, Conv, RNN/LSTM/GRU weights and cells, biases).

Where torchlite differs from torch:

- Random methods draw from ``torchlite.random.get_generator()`` (``torchlite.manual_seed`` repeats
  them), so their masks follow torch's rules but are not torch's draws.
- L1 and Ln methods rank by a stable sort: among equal scores the lower (flat) index is pruned
  first and NaN ranks largest, as in torch.topk. Torch's order among ties is whatever its partial
  selection gives, so masks equal torch's whenever the scores are distinct.
- A pruning call that fails on an already pruned tensor leaves the previous pruning in place
  (torch also drops its pre-hook then).
- Shapes in messages print as tuples where torch prints ``torch.Size``.
- A subclass overriding ``apply_mask`` changes the forward; backward still multiplies by the mask.
"""
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np

from ...random import get_generator
from .weight_norm import _Reparametrization

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured", "custom_from_mask",
           "remove", "is_pruned"]


class _MaskedTensor(_Reparametrization):
    """The hooks that keep ``module.<name>`` equal to ``method.apply_mask(module)`` and give its gradient,
    times the mask, to ``<name>_orig``. The forward pre-hook slot holds the pruning method (torch's hook),
    which calls this object."""

    def __init__(self, method):
        self.method = method
        self.name = method._tensor_name

    def _install(self, module, data):
        super()._install(module, data)
        self.hand_over(module, self.method)  # the pre-hook _install registered gives its place to the method

    def hand_over(self, module, method):
        """Register ``method`` as the pre-hook, last, in place of the current one (as torch re-registers
        a PruningContainer at each pruning); forwards waiting for their backward keep their mask."""
        self._handles[0].remove()
        self.method = method
        method._masked = self
        self._handles[0] = module.register_forward_pre_hook(method)

    def _compute_for_forward(self, module):
        return self.method.apply_mask(module), getattr(module, self.name + "_mask")

    def _backward(self, module, grad, mask):
        orig = getattr(module, self.name + "_orig")
        orig.accumulate_grad(grad * mask.astype(grad.dtype, copy=False), fresh=True)

    def _requires_grad(self, module):
        return getattr(module, self.name + "_orig").requires_grad


def _pruning_hooks(module, name):
    """The pruning methods registered on ``module.<name>`` (at most one)."""
    return [hook for hook in module._forward_pre_hooks.values()
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name]


class BasePruningMethod(ABC):
    r"""Abstract base class for creation of new pruning techniques.

    A subclass sets ``PRUNING_TYPE`` ('unstructured', 'structured' with a ``dim`` attribute, or
    'global') and overrides ``compute_mask``; ``apply`` installs it on a module.
    """

    _tensor_name: str

    def __call__(self, module, inputs):
        """Recompute ``module.<name> = <name>_mask * <name>_orig`` (the forward pre-hook)."""
        self._masked(module, inputs)

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The mask for ``t`` (the importance scores), applied on top of ``default_mask``.

        Args:
            t (ndarray): importance scores of the parameter to prune.
            default_mask (ndarray): the mask from previous pruning iterations (ones if none),
                which the new mask must respect; same shape as ``t``.
        Returns:
            mask (ndarray) of ``t``'s shape.
        """

    def apply_mask(self, module):
        """``<name>_mask * <name>_orig`` of ``module``, in the parameter's dtype (a new array)."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.astype(orig.dtype, copy=False) * orig.data

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prune ``module.<name>`` with ``cls(*args, **kwargs)``; returns the method now registered.

        The first pruning moves the parameter to ``<name>_orig`` and adds the ``<name>_mask`` buffer
        and the pre-hook; pruning again combines the new method with the previous ones in a
        ``PruningContainer`` (the new mask acts on what is not pruned yet).

        Args:
            module (nn.Module): module containing the tensor to prune.
            name (str): parameter name within ``module``.
            args, kwargs: arguments of ``cls``.
            importance_scores (ndarray): scores of ``module.<name>``'s shape that rank its entries
                (default: the tensor itself).
        """
        method = cls(*args, **kwargs)
        method._tensor_name = name
        old = _pruning_hooks(module, name)
        if len(old) > 1:
            raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} of module "
                                 f"{module}. Use a PruningContainer.")
        old = old[0] if old else None
        if old is not None:
            container = old if isinstance(old, PruningContainer) else PruningContainer(old)
            container.add_pruning_method(method)
            method = container

        orig = getattr(module, name)
        if importance_scores is not None:
            importance_scores = np.asarray(importance_scores)
            if importance_scores.shape != orig.shape:
                raise AssertionError(f"importance_scores should have the same shape as parameter {name} of "
                                     f"{module}, got {importance_scores.shape} vs {orig.shape}")
        else:
            importance_scores = np.asarray(orig)
        if old is None:
            _check_prunable(module, name, orig)
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = np.ones_like(orig.data)
        else:
            default_mask = np.array(getattr(module, name + "_mask"), order="C")

        try:
            mask = method.compute_mask(importance_scores, default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
        except Exception:
            if old is None:  # as torch: the parameter comes back, registered last
                module.register_parameter(name, orig)
                del module._parameters[name + "_orig"]
            elif method is old:
                old._pruning_methods = old._pruning_methods[:-1]
            raise
        if old is None:
            _MaskedTensor(method)._install(module, method.apply_mask(module))
        else:
            old._masked.hand_over(module, method)
            module.__dict__[name].data = method.apply_mask(module)
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """``t`` times the mask ``compute_mask`` gives for ``importance_scores`` (default: ``t``) on top
        of ``default_mask`` (default: ones)."""
        t = np.asarray(t)
        if importance_scores is not None:
            importance_scores = np.asarray(importance_scores)
            if importance_scores.shape != t.shape:
                raise AssertionError("importance_scores should have the same shape as tensor t, "
                                     f"got {importance_scores.shape} vs {t.shape}")
        else:
            importance_scores = t
        default_mask = np.asarray(default_mask) if default_mask is not None else np.ones_like(t)
        return t * self.compute_mask(importance_scores, default_mask=default_mask)

    def remove(self, module):
        """Make the pruning permanent: ``<name>`` becomes a parameter again (the ``<name>_orig`` Parameter,
        holding the pruned values); ``<name>_orig``, ``<name>_mask`` and the hooks go. Pruning is NOT undone."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be removed")
        weight = self.apply_mask(module)
        self._masked._uninstall(module)
        orig = module._parameters[self._tensor_name + "_orig"]
        orig.data = weight
        del module._parameters[self._tensor_name + "_orig"]
        del module._buffers[self._tensor_name + "_mask"]
        setattr(module, self._tensor_name, orig)


def _check_prunable(module, name, orig):
    """Only a registered Parameter can move to ``<name>_orig`` (torch's register_parameter refuses the rest)."""
    if orig is None:
        raise TypeError(f"cannot prune '{name}' of {module}: it is None")
    if module._parameters.get(name) is not orig:  # a buffer, or a tensor another hook computes
        raise TypeError(f"cannot assign '{type(np.asarray(orig)).__name__}' object to parameter '{name}_orig' "
                        "(torchlite.nn.Parameter or None required)")


class PruningContainer(BasePruningMethod):
    """A sequence of pruning methods on one tensor, for iterative pruning.

    Takes methods (already named after their tensor) as arguments; pruning a pruned tensor again
    builds one. Its mask applies the latest method to what the earlier ones left.
    """

    def __init__(self, *args):
        self._pruning_methods = ()
        if len(args) == 1:
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        else:
            for method in args:
                self.add_pruning_method(method)

    def add_pruning_method(self, method):
        """Append ``method`` (a BasePruningMethod acting on the same tensor)."""
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError("Can only add pruning methods acting on "
                             f"the parameter named '{self._tensor_name}' to PruningContainer {self}."
                             f" Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        """``default_mask`` with the latest method's mask computed on the part it left, by its PRUNING_TYPE:

        * 'unstructured': the entries the mask keeps (raveled);
        * 'structured': the channels along ``dim`` that are not entirely pruned;
        * 'global': the whole tensor.
        """
        return _combine_masks(self._pruning_methods[-1], np.asarray(t), np.asarray(default_mask))


def _combine_masks(method, t, mask):
    new_mask = mask.astype(t.dtype)
    if method.PRUNING_TYPE == "unstructured":
        slc = mask == 1
    elif method.PRUNING_TYPE == "structured":
        if not hasattr(method, "dim"):
            raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to have the attribute `dim` '
                                 "defined.")
        n_dims = t.ndim
        dim = method.dim
        if dim < 0:
            dim = n_dims + dim
        if dim < 0:
            raise IndexError(f"Index is out of bounds for tensor with dimensions {n_dims}")
        # torch sums over every axis when there is no other axis (a 1-D tensor): one bool, which
        # indexes as a new leading axis of size 1, in numpy as in torch
        others = tuple(d for d in range(n_dims) if d != dim)
        keep_channel = mask.sum(axis=others or None) != 0
        slc = [slice(None)] * n_dims
        slc[dim] = keep_channel
        slc = tuple(slc)
    elif method.PRUNING_TYPE == "global":
        slc = (slice(None),) * t.ndim
    else:
        raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
    new_mask[slc] = method.compute_mask(t[slc], default_mask=mask[slc])
    return new_mask


class Identity(BasePruningMethod):
    """Prunes nothing: the pruning reparametrization with a mask of ones."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        """Add the pruning reparametrization of ``module.<name>`` with a mask of ones."""
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    """Prune (currently unpruned) entries of a tensor at random.

    Args:
        amount (int or float): how many entries to prune: a float in [0, 1] is a fraction of the
            entries (rounded), an int an absolute number.
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        return _unstructured_mask(self.amount, t, default_mask,
                                  lambda k: get_generator().choice(t.size, k, replace=False))

    @classmethod
    def apply(cls, module, name, amount):
        """Prune ``amount`` random entries of ``module.<name>`` (see the class)."""
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prune the (currently unpruned) entries of a tensor with the smallest absolute value.

    Args:
        amount (int or float): how many entries to prune: a float in [0, 1] is a fraction of the
            entries (rounded), an int an absolute number.
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        return _unstructured_mask(self.amount, t, default_mask, lambda k: _smallest(np.abs(t), k))

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        """Prune the ``amount`` entries of ``module.<name>`` (or of ``importance_scores``) smallest in
        absolute value."""
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prune whole (currently unpruned) channels of a tensor at random.

    Args:
        amount (int or float): how many channels to prune: a float in [0, 1] is a fraction of the
            channels (rounded), an int an absolute number.
        dim (int, optional): the axis whose slices are the channels. Default: -1.
    """

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t, default_mask):
        """``default_mask`` times a mask zeroing ``amount`` random channels along ``dim``.

        Raises:
            IndexError: if ``dim >= t.ndim``.
        """
        _validate_structured_pruning(t)
        _validate_pruning_dim(t, self.dim)
        tensor_size = t.shape[self.dim]
        nparams_toprune = _compute_nparams_toprune(self.amount, tensor_size)
        _validate_pruning_amount(nparams_toprune, tensor_size)
        if nparams_toprune == 0:
            return default_mask
        pruned = get_generator().choice(tensor_size, nparams_toprune, replace=False)
        return _channel_mask(t, self.dim, pruned, default_mask)

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        """Prune ``amount`` random channels of ``module.<name>`` along ``dim`` (see the class)."""
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    r"""Prune whole (currently unpruned) channels of a tensor with the smallest L\ ``n``-norm.

    Args:
        amount (int or float): how many channels to prune: a float in [0, 1] is a fraction of the
            channels (rounded), an int an absolute number.
        n (int, float, inf, -inf, 'fro', 'nuc'): the norm, as ``p`` of torch.norm: a number is the
            vector norm of each channel (0 counts its nonzeros), 'fro' the 2-norm (over at most
            two other axes), 'nuc' the nuclear norm (exactly two other axes).
        dim (int, optional): the axis whose slices are the channels. Default: -1.
    """

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def compute_mask(self, t, default_mask):
        """``default_mask`` times a mask zeroing the ``amount`` channels along ``dim`` of smallest norm.

        Raises:
            IndexError: if ``dim >= t.ndim``.
        """
        _validate_structured_pruning(t)
        _validate_pruning_dim(t, self.dim)
        tensor_size = t.shape[self.dim]
        nparams_toprune = _compute_nparams_toprune(self.amount, tensor_size)
        _validate_pruning_amount(nparams_toprune, tensor_size)
        norm = _compute_norm(t, self.n, self.dim)
        if nparams_toprune == 0:
            return default_mask
        return _channel_mask(t, self.dim, _smallest(norm, nparams_toprune), default_mask)

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        """Prune the ``amount`` channels of ``module.<name>`` along ``dim`` whose L``n``-norm (of
        ``importance_scores`` when given) is smallest."""
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prune with a given mask (of the tensor's shape), on top of any earlier pruning."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        mask = np.asarray(self.mask)
        if default_mask.shape != mask.shape:
            raise AssertionError(f"default_mask shape {default_mask.shape} must match self.mask shape {mask.shape}")
        return default_mask * mask.astype(default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        """Prune ``module.<name>`` where ``mask`` is 0."""
        return super().apply(module, name, mask=mask)


def _unstructured_mask(amount, t, default_mask, choose):
    """``default_mask`` with ``amount`` of ``t``'s entries zeroed; ``choose(k)`` gives their flat indices."""
    nparams_toprune = _compute_nparams_toprune(amount, t.size)
    _validate_pruning_amount(nparams_toprune, t.size)
    mask = np.array(default_mask, order="C")
    if nparams_toprune != 0:
        np.put(mask, choose(nparams_toprune), 0)
    return mask


def _smallest(values, k):
    """Flat indices of the ``k`` smallest ``values``: ties go to the lower index, NaN ranks largest."""
    return np.argsort(values, axis=None, kind="stable")[:k]


def _channel_mask(t, dim, pruned, default_mask):
    """Ones of ``t``'s shape and dtype, zero on the channels ``pruned`` along ``dim``, times ``default_mask``."""
    mask = np.ones_like(t)
    index = [slice(None)] * t.ndim
    index[dim] = pruned
    mask[tuple(index)] = 0
    mask *= np.asarray(default_mask).astype(mask.dtype, copy=False)
    return mask


# ----------------------------------------------------------------------------- functions
def identity(module, name):
    """Add the pruning reparametrization of ``module.<name>`` without pruning anything.

    Like every pruning function it modifies ``module`` in place and returns it: the parameter
    ``name`` becomes the parameter ``name + '_orig'`` and the buffer ``name + '_mask'`` (here all
    ones), and ``module.<name>`` their product, recomputed before each forward.

    Example::

        >>> m = prune.identity(nn.Linear(2, 3), "bias")
        >>> m.bias_mask
        array([1., 1., 1.], dtype=float32)
    """
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    """Prune ``amount`` (currently unpruned) entries of ``module.<name>`` chosen at random.

    Args:
        module (nn.Module): module containing the tensor to prune.
        name (str): parameter name within ``module``.
        amount (int or float): a float in [0, 1] is the fraction of entries to prune, an int their number.
    Returns:
        ``module``, with ``name + '_orig'``, ``name + '_mask'`` and the pre-hook.

    Example::

        >>> m = prune.random_unstructured(nn.Linear(2, 3), "weight", amount=1)
        >>> int((m.weight_mask == 0).sum())
        1
    """
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prune the ``amount`` (currently unpruned) entries of ``module.<name>`` with the smallest absolute value.

    Args:
        module (nn.Module): module containing the tensor to prune.
        name (str): parameter name within ``module``.
        amount (int or float): a float in [0, 1] is the fraction of entries to prune, an int their number.
        importance_scores (ndarray): scores of the parameter's shape ranking its entries
            (default: the parameter).
    Returns:
        ``module``, with ``name + '_orig'``, ``name + '_mask'`` and the pre-hook.

    Example::

        >>> m = prune.l1_unstructured(nn.Linear(2, 3), "weight", amount=0.2)
        >>> list(m.state_dict())
        ['bias', 'weight_orig', 'weight_mask']
    """
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    """Prune ``amount`` (currently unpruned) channels of ``module.<name>`` along ``dim``, chosen at random.

    Args:
        module (nn.Module): module containing the tensor to prune.
        name (str): parameter name within ``module`` (at least 2-D).
        amount (int or float): a float in [0, 1] is the fraction of channels to prune, an int their number.
        dim (int): the axis whose slices are the channels.
    Returns:
        ``module``, with ``name + '_orig'``, ``name + '_mask'`` and the pre-hook.

    Example::

        >>> m = prune.random_structured(nn.Linear(5, 3), "weight", amount=3, dim=1)
        >>> int((m.weight.data.sum(axis=0) == 0).sum())
        3
    """
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    r"""Prune the ``amount`` (currently unpruned) channels of ``module.<name>`` along ``dim`` with the
    smallest L\ ``n``-norm.

    Args:
        module (nn.Module): module containing the tensor to prune.
        name (str): parameter name within ``module`` (at least 2-D).
        amount (int or float): a float in [0, 1] is the fraction of channels to prune, an int their number.
        n (int, float, inf, -inf, 'fro', 'nuc'): the norm, as ``p`` of torch.norm.
        dim (int): the axis whose slices are the channels.
        importance_scores (ndarray): scores of the parameter's shape whose channel norms rank them
            (default: the parameter).
    Returns:
        ``module``, with ``name + '_orig'``, ``name + '_mask'`` and the pre-hook.

    Example::

        >>> m = prune.ln_structured(nn.Conv2d(5, 3, 2), "weight", amount=0.3, dim=1, n=float("-inf"))
    """
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune several parameters together: ``pruning_method`` ranks all their entries at once.

    Each parameter gets its ``name + '_orig'``, ``name + '_mask'`` and pre-hook as with
    ``custom_from_mask``; entries pruned before stay pruned and are not counted again.

    Args:
        parameters (Iterable of (module, name) tuples): the parameters to prune.
        pruning_method (type): a pruning method class with ``PRUNING_TYPE = 'unstructured'``
            (e.g. ``L1Unstructured``, ``RandomUnstructured``, or your own).
        importance_scores (dict): ``{(module, name): scores}`` of the parameters' shapes (default:
            the parameters themselves).
        kwargs: the method's arguments, e.g. ``amount`` (int or float) across all the parameters.
    Raises:
        TypeError: if ``PRUNING_TYPE != 'unstructured'``.

    Example::

        >>> net = nn.Sequential(OrderedDict([("first", nn.Linear(10, 4)), ("second", nn.Linear(4, 1))]))
        >>> prune.global_unstructured([(net.first, "weight"), (net.second, "weight")],
        ...                           pruning_method=prune.L1Unstructured, amount=10)
        >>> int(sum((b == 0).sum() for b in net.buffers()))
        10
    """
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    relevant_importance_scores = np.concatenate(
        [np.asarray(importance_scores.get((module, name), getattr(module, name))).ravel()
         for module, name in parameters])
    default_mask = np.concatenate([_mask_or_ones(module, name).ravel() for module, name in parameters])

    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. '
                        f"Found method {pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final_mask = container.compute_mask(relevant_importance_scores, default_mask)

    pointer = 0
    for module, name in parameters:
        shape = np.shape(getattr(module, name))
        num_param = int(np.prod(shape))
        custom_from_mask(module, name, mask=final_mask[pointer:pointer + num_param].reshape(shape))
        pointer += num_param


def _mask_or_ones(module, name):
    mask = getattr(module, name + "_mask", None)
    return np.ones_like(np.asarray(getattr(module, name))) if mask is None else mask


def custom_from_mask(module, name, mask):
    """Prune ``module.<name>`` where ``mask`` (of its shape) is 0.

    Returns:
        ``module``, with ``name + '_orig'``, ``name + '_mask'`` and the pre-hook.

    Example::

        >>> m = prune.custom_from_mask(nn.Linear(5, 3), name="bias", mask=np.array([0, 1, 0]))
        >>> m.bias_mask
        array([0., 1., 0.], dtype=float32)
    """
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent and drop its reparametrization.

    ``module.<name>`` becomes a parameter again holding the pruned values (the ``name + '_orig'``
    Parameter object); ``name + '_orig'``, ``name + '_mask'`` and the hooks go. Pruning itself is
    NOT undone. Returns ``module``.

    Example::

        >>> m = random_unstructured(nn.Linear(5, 7), name="weight", amount=0.2)
        >>> m = remove(m, name="weight")
    """
    for hook in _pruning_hooks(module, name):
        hook.remove(module)
        return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module):
    """Whether ``module`` or a module below it has a pruning pre-hook.

    Example::

        >>> m = nn.Linear(5, 7)
        >>> prune.is_pruned(m)
        False
        >>> prune.is_pruned(prune.random_unstructured(m, name="weight", amount=0.2))
        True
    """
    return any(isinstance(hook, BasePruningMethod)
               for submodule in module.modules() for hook in submodule._forward_pre_hooks.values())


# ----------------------------------------------------------------------------- validation and norms
def _validate_pruning_amount_init(amount):
    """Refuse an ``amount`` that is not a number, a negative int or a float outside [0, 1]."""
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _validate_pruning_amount(amount, tensor_size):
    """Refuse to prune more units than ``tensor_size``."""
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={tensor_size}")


def _validate_structured_pruning(t):
    """Channels need a tensor of at least 2 dimensions."""
    shape = t.shape
    if len(shape) <= 1:
        raise ValueError("Structured pruning can only be applied to multidimensional tensors. Found tensor of "
                         f"shape {shape} with {len(shape)} dims")


def _compute_nparams_toprune(amount, tensor_size):
    """The number of units to prune: ``amount`` itself when an int, else ``round(amount * tensor_size)``."""
    if isinstance(amount, numbers.Integral):
        return amount
    return round(amount * tensor_size)


def _validate_pruning_dim(t, dim):
    if dim >= t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {t.shape}")


def _compute_norm(t, n, dim):
    """The L``n``-norm of each channel of ``t`` along ``dim`` (over all the other axes), as torch.norm."""
    dims = list(range(t.ndim))
    if dim < 0:
        dim = dims[dim]
    dims.remove(dim)
    if isinstance(n, str):
        if n == "fro" and len(dims) <= 2:
            return np.sqrt(np.sum(t * t, axis=tuple(dims)))
        if n not in ("fro", "nuc"):
            raise RuntimeError(f"linalg.matrix_norm: Order {n} not supported.")
        if len(dims) != 2:
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(map(str, dims))}")
        return np.linalg.norm(t, n, axis=tuple(dims))
    a = np.abs(t)
    axes = tuple(dims)
    if n == np.inf:
        return a.max(axis=axes)
    if n == -np.inf:
        return a.min(axis=axes)
    if n == 0:
        return np.count_nonzero(t, axis=axes).astype(t.dtype)
    with np.errstate(divide="ignore"):  # a zero entry under a negative n counts as inf, as in torch
        return np.sum(a ** n, axis=axes) ** (1.0 / n)


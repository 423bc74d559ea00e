"""Stochastic Weight Averaging and EMA (``torchlite.optim.swa_utils``), torch's semantics.

- ``AveragedModel(model)`` keeps a deep copy of ``model`` (``module``) and a running average of its
  parameters (and buffers with ``use_buffers=True``); ``update_parameters(model)`` copies on the
  first call, then averages with ``avg_fn`` / ``multi_avg_fn`` (default: equal weights, SWA).
- ``SWALR`` anneals each group's learning rate to ``swa_lr`` over ``anneal_epochs`` epochs.
- ``update_bn(loader, model)`` recomputes BatchNorm running statistics with one pass over the data.

The averaging functions work on NumPy arrays: ``avg_fn(averaged, current, num_averaged)`` returns the
new average; ``multi_avg_fn(averaged_list, current_list, num_averaged)`` updates the arrays in place
(one call per dtype). ``num_averaged`` is the model's ``n_averaged`` buffer, a 0-d int64 array.
Integer arrays (``num_batches_tracked``) are averaged in the default float dtype and truncated back,
as torch's integer tensors are.
"""
import copy
import itertools
import math

import numpy as np

from .._dtype import get_default_dtype
from ..grad_mode import no_grad
from ..nn.module import Module, _check_device
from ..nn.normalization import _BatchNorm
from .lr_scheduler import LRScheduler, _check_optimizer, _format_param
from .optimizer import _lerp_

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn", "get_ema_avg_fn",
           "get_swa_avg_fn"]


def _floating(a):
    """``a`` as torch computes with it in mixed arithmetic: integer arrays become the default float dtype."""
    return a if a.dtype.kind in "fc" else a.astype(get_default_dtype())


def _check_decay(decay):
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """In-place EMA over lists of arrays: ``ema = decay * ema + (1 - decay) * current`` (torch's lerp)."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        if ema_param_list[0].dtype.kind in "fc":
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                _lerp_(p_ema, p_model, 1 - decay, np.empty_like(p_ema))
        else:
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                np.copyto(p_ema, _floating(p_ema) * decay + _floating(p_model) * (1 - decay), casting="unsafe")

    return ema_update


def get_swa_multi_avg_fn():
    """In-place equal-weight average over lists of arrays: ``avg += (current - avg) / (num_averaged + 1)``."""

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        if averaged_param_list[0].dtype.kind not in "fc":
            # torch's foreach addcdiv/add refuse integer tensors here; the default averaging handles them
            raise RuntimeError("get_swa_multi_avg_fn: integer arrays (such as BatchNorm's num_batches_tracked with "
                               "use_buffers=True) cannot be averaged in place, as in torch; leave multi_avg_fn None "
                               "to use the default averaging")
        if isinstance(num_averaged, (np.ndarray, np.generic)):
            # torch divides the integer count tensor: the weight is rounded to the default dtype
            dtype = get_default_dtype().type
            weight = dtype(1) / dtype(num_averaged + 1)
        else:
            weight = 1 / (num_averaged + 1)
        for p_avg, p_model in zip(averaged_param_list, current_param_list):
            _lerp_(p_avg, p_model, weight, np.empty_like(p_avg))

    return swa_update


def get_ema_avg_fn(decay=0.999):
    """EMA of one array: returns ``decay * ema + (1 - decay) * current``."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        return decay * _floating(ema_param) + (1 - decay) * _floating(current_param)

    return ema_update


def get_swa_avg_fn():
    """Equal-weight average of one array: returns ``avg + (current - avg) / (num_averaged + 1)``."""

    def swa_update(averaged_param, current_param, num_averaged):
        # a Python float keeps float32 arrays in float32, as torch's division by the count tensor
        return _floating(averaged_param) + _floating(current_param - averaged_param) / float(num_averaged + 1)

    return swa_update


def _group_by_dtype(pairs):
    """{dtype: ([averaged...], [current...])} in order of first appearance, as torch groups by dtype."""
    groups = {}
    for averaged, current in pairs:
        own, theirs = groups.setdefault(averaged.dtype, ([], []))
        own.append(averaged)
        theirs.append(current)
    return groups.values()


def _arrays(module, with_buffers):
    params = (p.data for p in module.parameters())
    return itertools.chain(params, module.buffers()) if with_buffers else params


class AveragedModel(Module):
    """A running average (SWA or EMA) of a model's parameters, kept in a deep copy of the model.

    Args:
        model (Module): the model to average; it is deep-copied into ``module``.
        device: None or 'cpu' (torchlite runs on the CPU).
        avg_fn (callable, optional): ``avg_fn(averaged, current, num_averaged) -> new average``,
            for one array at a time.
        multi_avg_fn (callable, optional): ``multi_avg_fn(averaged_list, current_list, num_averaged)``,
            updating the arrays in place. With neither, an equal-weight average (SWA).
        use_buffers (bool): average the buffers too (default False: they are copied from ``model``
            at every update).

    ``forward`` (and ``backward``) call ``module``. The state_dict holds ``n_averaged`` (0-d int64,
    the number of models averaged) and ``module.<key>`` for the copy's state. ``avg_fn`` and
    ``multi_avg_fn`` are not saved.
    """

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: only one of avg_fn and multi_avg_fn should be provided, got both")
        self.module = copy.deepcopy(model).clear_saved()  # the original's pending backward is not the copy's
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", np.array(0, dtype=np.int64))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def backward(self, *grad_output, **kwargs):
        return self.module.backward(*grad_output, **kwargs)

    def update_parameters(self, model):
        """Average ``model``'s parameters (and buffers with ``use_buffers``) into ``module``'s.

        The first call copies them; later calls apply the averaging function. Without
        ``use_buffers`` the buffers are copied from ``model``.
        """
        pairs = list(zip(_arrays(self.module, self.use_buffers), _arrays(model, self.use_buffers)))
        if self.n_averaged == 0:
            for averaged, current in pairs:
                np.copyto(averaged, current, casting="unsafe")
        elif self.multi_avg_fn is not None:
            for averaged, current in _group_by_dtype(pairs):
                self.multi_avg_fn(averaged, current, self.n_averaged)
        else:
            # torch's default on the CPU is the per-array SWA function, not the foreach one
            avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
            for averaged, current in pairs:
                np.copyto(averaged, avg_fn(averaged, current, self.n_averaged), casting="unsafe")
        if not self.use_buffers:
            for b_swa, b_model in zip(self.module.buffers(), model.buffers(), strict=True):
                np.copyto(b_swa, b_model, casting="unsafe")
        self.n_averaged += 1


def update_bn(loader, model, device=None):
    """Recompute the BatchNorm running statistics of ``model`` with one pass over ``loader``.

    Each running mean/variance is reset and becomes the cumulative average over the batches
    (momentum None during the pass); momenta and the train/eval mode are restored afterwards.
    Each batch is an array or a list/tuple whose first element is the input. Runs under
    ``no_grad()``. ``device``: None or 'cpu'.
    """
    _check_device(model, device)
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for input in loader:
            if isinstance(input, (list, tuple)):
                input = input[0]
            model(input)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each param group's learning rate to ``swa_lr`` over ``anneal_epochs`` epochs, then hold it.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        swa_lr (float or list): the SWA learning rate, for all groups or one per group (stored
            as ``group['swa_lr']``).
        anneal_epochs (int): epochs of the annealing phase (default 10; 0 jumps straight to ``swa_lr``).
        anneal_strategy (str): 'cos' (default) or 'linear'.
        last_epoch (int): index of the last epoch (default -1).
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        _check_optimizer(optimizer)
        for lr, group in zip(_format_param("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        """Interpolate between the lr the annealing started from and ``swa_lr`` (torch's recursive form)."""
        self._warn_if_outside_step()
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                    for group in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha) for group, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def _set_anneal_func(self, anneal_strategy):
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def state_dict(self):
        """Every attribute except the optimizer and the anneal function (rebuilt from ``_anneal_strategy``)."""
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._set_anneal_func(self._anneal_strategy)

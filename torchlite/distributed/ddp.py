"""Data-parallel training: every rank holds the whole model, trains on its shard of each
global batch, and averages gradients with an in-place MPI Allreduce before the optimizer step.

Gradients travel in a few large flat buckets (``bucket_cap_mb`` each, parameters in reverse
registration order as torch packs them), one ``Allreduce(MPI.IN_PLACE, ...)`` per bucket, not
one call per parameter. The buckets are allocated once; with ``gradient_as_bucket_view=True``
each ``p.grad`` IS a view into its bucket, so layers accumulate straight into the buffer that
is reduced and nothing is copied.
"""
import contextlib

import numpy as np

from ..grad_mode import is_grad_enabled
from ..nn.module import Module
from . import comm as _dist

__all__ = ["DistributedDataParallel", "allreduce_gradients", "broadcast_parameters",
           "consume_prefix_in_state_dict_if_present"]

_MB = 1024 * 1024


def _coalesced_broadcast(arrays, root, comm):
    """Broadcast many arrays from ``root`` with one Bcast per dtype (copy in, send, copy out)."""
    by_dtype = {}
    for a in arrays:
        if a is not None and a.size:
            by_dtype.setdefault(a.dtype, []).append(a)
    is_root = comm.Get_rank() == root
    for dtype, group in by_dtype.items():
        if is_root:
            flat = np.concatenate([a.reshape(-1) for a in group])
        else:
            flat = np.empty(sum(a.size for a in group), dtype=dtype)
        comm.Bcast(flat, root=root)
        if not is_root:
            offset = 0
            for a in group:
                np.copyto(a, flat[offset:offset + a.size].reshape(a.shape))
                offset += a.size


def broadcast_parameters(model, root=0, process_group=None):
    """Copy rank ``root``'s parameters and buffers into every rank's ``model`` (in place).

    Call it once after building the model (``DistributedDataParallel`` does), so all ranks
    start from the same weights whatever their random seeds. A no-op in a single process.
    """
    comm, size = _dist._world(process_group)
    if size == 1:
        return model
    arrays = [p.data for p in model.parameters()] + list(model.buffers())
    _coalesced_broadcast(arrays, root, comm)
    return model


class _Bucket:
    """One flat buffer of a single dtype and the views of it that stand for its parameters' grads."""

    def __init__(self, params):
        self.params = params
        self.buffer = np.zeros(sum(p.data.size for p in params), dtype=params[0].data.dtype)
        self.views, offset = [], 0
        for p in params:
            self.views.append(self.buffer[offset:offset + p.data.size].reshape(p.data.shape))
            offset += p.data.size


def _make_buckets(params, bucket_cap_mb):
    """Pack ``params`` (reverse order, split by dtype) into buckets of at most ``bucket_cap_mb``.

    A parameter larger than the cap gets a bucket of its own.
    """
    cap = bucket_cap_mb * _MB
    open_buckets, done = {}, []  # dtype -> (params, bytes)
    for p in reversed(params):
        group, nbytes = open_buckets.get(p.data.dtype, ([], 0))
        if group and nbytes + p.data.nbytes > cap:
            done.append(group)
            group, nbytes = [], 0
        group.append(p)
        open_buckets[p.data.dtype] = (group, nbytes + p.data.nbytes)
    done.extend(group for group, _ in open_buckets.values())
    return [_Bucket(g) for g in done]


class _GradReducer:
    """Averages the gradients of ``params`` over ranks through persistent flat buckets."""

    def __init__(self, params, bucket_cap_mb, as_view):
        self.params = [p for p in params if p.requires_grad]
        self.as_view = as_view
        self.signature = self._signature(self.params)
        self.buckets = _make_buckets(self.params, bucket_cap_mb) if self.params else []

    @staticmethod
    def _signature(params):
        return [(id(p), p.data.dtype, p.data.shape) for p in params]

    def is_stale(self, params):
        """True when parameters were added, frozen, recast or reshaped since the buckets were made."""
        return self._signature([p for p in params if p.requires_grad]) != self.signature

    def bind_views(self):
        """Make every grad a view into its bucket, keeping what it already holds."""
        for bucket in self.buckets:
            self._gather(bucket, bind=True)

    @staticmethod
    def _gather(bucket, bind):
        """Copy each grad into its view (zeros for None); with ``bind`` the view becomes the grad."""
        for p, view in zip(bucket.params, bucket.views):
            if p.grad is view:
                continue
            if p.grad is None:
                view.fill(0)
            else:
                np.copyto(view, p.grad)
            if bind:
                p.grad = view

    def _scatter(self, bucket):
        for p, view in zip(bucket.params, bucket.views):
            if p.grad is view:
                continue
            if p.grad is None:
                p.grad = view.copy()
            else:
                np.copyto(p.grad, view)

    def reduce(self, comm, size):
        """Sum every bucket over ranks in place and divide by ``size``; grads hold the average.

        A parameter without a gradient on this rank counts as zeros and gets the average too,
        so every rank steps the same parameters.
        """
        in_place = _dist._import_mpi().IN_PLACE
        for bucket in self.buckets:
            self._gather(bucket, bind=self.as_view)
            comm.Allreduce(in_place, bucket.buffer)
            np.divide(bucket.buffer, size, out=bucket.buffer)
            self._scatter(bucket)

    @property
    def nbytes(self):
        return sum(b.buffer.nbytes for b in self.buckets)


def allreduce_gradients(model, bucket_cap_mb=25, process_group=None):
    """Average the gradients of ``model`` (a Module or an iterable of Parameters) over all ranks.

    The functional form of ``DistributedDataParallel``: call it between ``backward`` and
    ``opt.step()`` on every rank. Buckets are allocated for the call. A no-op in one process.
    """
    comm, size = _dist._world(process_group)
    params = list(model.parameters()) if isinstance(model, Module) else list(model)
    if size > 1:
        _GradReducer(params, bucket_cap_mb, as_view=False).reduce(comm, size)
    return model


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training over MPI ranks.

    ``forward`` calls the module. ``backward`` calls the module's backward, then averages every
    gradient over ranks (bucketed in-place Allreduce), so after it all ranks hold the gradient
    of the mean loss over the global batch and their optimizers take identical steps.

    Args (torch's names; the rest of torch's are accepted where they mean something here):
        module: the model (it keeps training as usual; reach it with ``.module``).
        broadcast_buffers: copy rank 0's buffers (BatchNorm running statistics) into every
            rank at each training forward, as torch does; batch statistics stay per rank
            (use ``SyncBatchNorm`` to share them).
        init_sync: broadcast rank 0's parameters and buffers at construction.
        process_group: an mpi4py communicator; default the world of ``init_process_group``.
        bucket_cap_mb: size of a gradient bucket in MiB (default 25).
        gradient_as_bucket_view: make ``p.grad`` views into the buckets (saves a copy in and
            out per step; grads of parameters that got none are zero arrays, not None).
        device_ids, output_device: must be None (CPU only). dim, find_unused_parameters,
            check_reduction, static_graph: accepted so torch code runs; no effect here (every
            parameter is reduced, a missing gradient counts as zeros, on every rank alike).

    Gradients are reduced after the module's whole backward (no overlap with it). Within
    ``no_sync()`` backward only accumulates locally, for gradient accumulation.

    ``state_dict()`` keys carry the ``module.`` prefix, as torch's; save
    ``ddp.module.state_dict()`` for a checkpoint that loads into the bare model in any world
    size (or strip the prefix with ``consume_prefix_in_state_dict_if_present``).
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True, init_sync=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a torchlite Module, got {type(module).__name__}")
        if not any(p.requires_grad for p in module.parameters()):
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        if not bucket_cap_mb or bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        if device_ids is not None or output_device is not None:
            raise ValueError("DistributedDataParallel: torchlite runs on the CPU; device_ids and output_device "
                             "must be None")
        self.module = module
        self.broadcast_buffers = broadcast_buffers if broadcast_buffers is not None else True
        self.process_group = process_group
        self.bucket_cap_mb = bucket_cap_mb
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.require_backward_grad_sync = True
        self._reducer = None
        comm, size = _dist._world(process_group)
        if init_sync and size > 1:
            broadcast_parameters(module, 0, comm)

    def _world(self):
        return _dist._world(self.process_group)

    def forward(self, *inputs, **kwargs):
        comm, size = self._world()
        if size > 1 and self.broadcast_buffers and self.require_backward_grad_sync and is_grad_enabled():
            buffers = list(self.module.buffers())
            if buffers:
                _coalesced_broadcast(buffers, 0, comm)
        return self.module(*inputs, **kwargs)

    def backward(self, grad_output, *args):
        """Module backward, then the gradient average over ranks (skipped inside ``no_sync()``)."""
        comm, size = self._world()
        if size == 1:
            return self.module.backward(grad_output, *args)
        reducer = self._get_reducer()
        if self.gradient_as_bucket_view:
            reducer.bind_views()
        grad_input = self.module.backward(grad_output, *args)
        if self.require_backward_grad_sync:
            reducer.reduce(comm, size)
        return grad_input

    def _get_reducer(self):
        params = list(self.module.parameters())
        if self._reducer is None or self._reducer.is_stale(params):
            self._reducer = _GradReducer(params, self.bucket_cap_mb, self.gradient_as_bucket_view)
        return self._reducer

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward only accumulates local gradients; the first backward after it
        averages everything accumulated (gradient accumulation without extra communication)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def bucket_sizes(self):
        """Bytes of each gradient bucket (what one backward sends through Allreduce)."""
        return [b.buffer.nbytes for b in self._get_reducer().buckets]


def consume_prefix_in_state_dict_if_present(state_dict, prefix):
    """Strip ``prefix`` (e.g. ``"module."``) from the keys of ``state_dict`` in place; returns None, as torch's."""
    for key in list(state_dict.keys()):
        if key.startswith(prefix):
            state_dict[key[len(prefix):]] = state_dict.pop(key)


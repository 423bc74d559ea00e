"""What runs inside a DataLoader worker process, and ``get_worker_info``, as torch.utils.data's.

A worker (started by the DataLoader when ``num_workers > 0``) seeds its generators, sets the
``WorkerInfo`` that ``get_worker_info()`` returns, calls ``worker_init_fn(worker_id)``, then
loops: it reads ``(task_idx, index)`` from its own index queue (a one-way pipe), fetches and collates that batch
from its copy of the dataset, and puts ``(task_idx, batch)`` on the shared result queue. An
error is sent back wrapped (``_ExceptionWrapper``) and re-raised in the main process; an
iterable dataset that is spent answers ``_IterableDatasetStopIteration``. ``None`` on the index
queue ends the worker; so does the main process going away.
"""
import os
import random
import sys
import traceback
from dataclasses import dataclass

import numpy as np

from ._fetch import create_fetcher
from ..random import manual_seed

__all__ = ["get_worker_info", "WorkerInfo"]

# seconds between checks that the other side is still alive (torch's MP_STATUS_CHECK_INTERVAL)
_MP_STATUS_CHECK_INTERVAL = 5.0

_worker_info = None


@dataclass(frozen=True)
class WorkerInfo:
    """The current DataLoader worker: ``id`` (0 to num_workers - 1), ``num_workers``, ``seed``
    (base_seed + id, see ``DataLoader``) and ``dataset`` (this process's copy of the dataset)."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """The ``WorkerInfo`` of the DataLoader worker process this runs in; None in the main process.

    An ``IterableDataset`` reads it in ``__iter__`` to give each worker its own shard (otherwise
    every worker yields the whole dataset); a ``worker_init_fn`` can use it to configure
    ``dataset`` per worker or to seed other libraries with ``seed``.
    """
    return _worker_info


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    """A worker's answer once its iterable dataset is spent."""
    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    """Sent to persistent workers at a new epoch: start the dataset over (acknowledged in kind)."""


class _KeyErrorMessage(str):
    """KeyError shows repr() of its argument; this keeps the traceback text readable."""

    def __repr__(self):
        return self


class _ExceptionWrapper:
    """The exception being handled, as its type and traceback text, so it can cross processes."""

    def __init__(self, where):
        exc_type, exc, tb = sys.exc_info()
        self.exc_type = exc_type
        self.exc_msg = "".join(traceback.format_exception(exc_type, exc, tb))
        self.where = where

    def reraise(self):
        """Raise it again here: "Caught ValueError in DataLoader worker process 0.\\nOriginal Traceback ..."."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        elif getattr(self.exc_type, "message", None):
            raise self.exc_type(message=msg)
        raise _rebuild(self.exc_type, msg)  # not bound to a local here: that would make a reference cycle


def _rebuild(exc_type, msg):
    try:
        return exc_type(msg)
    except Exception:
        return RuntimeError(msg)  # an exception class that takes other arguments


def _seed_worker(base_seed, worker_id):
    """Seed torchlite's global generator (and Python's and NumPy's legacy ones, as torch does) with
    a seed of this worker's own, so random transforms differ between workers but repeat between runs."""
    seed = base_seed + worker_id
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))
    return seed


def _worker_loop(iterable, dataset, index_queue, data_queue, done_event, auto_collation, collate_fn, drop_last,
                 base_seed, init_fn, worker_id, num_workers):
    """The target of each worker process (see the module docstring)."""
    global _worker_info
    try:
        seed = _seed_worker(base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        where = f"in DataLoader worker process {worker_id}"
        init_exception = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = create_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            # answered to the first task, so the main process raises it
            init_exception = _ExceptionWrapper(where)
        iteration_end = False
        manager_pid = os.getppid()
        while os.getppid() == manager_pid:
            try:
                if not index_queue.poll(_MP_STATUS_CHECK_INTERVAL):
                    continue
                r = index_queue.recv()
            except EOFError:
                break  # the main process closed the pipe
            if isinstance(r, _ResumeIteration):
                data_queue.put((r, None))
                iteration_end = False
                fetcher = create_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
                continue
            if r is None:
                break
            if done_event.is_set() or iteration_end:
                continue  # shutting down, or spent: skip what is still queued
            idx, index = r
            if init_exception is not None:
                data, init_exception = init_exception, None
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not iterable:
                        data = _ExceptionWrapper(where)
                    else:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                except Exception:
                    data = _ExceptionWrapper(where)
            data_queue.put((idx, data))
            del data, idx, index, r  # do not hold a batch while waiting for the next task
    except KeyboardInterrupt:
        pass  # the main process gets it too and shuts the workers down
    if done_event.is_set():
        # results no one will read must not keep this process from exiting
        data_queue.cancel_join_thread()
        data_queue.close()

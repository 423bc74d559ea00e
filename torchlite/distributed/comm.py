"""Who am I and how many are we: the process group over MPI (mpi4py), or a single process.

``torchlite`` never imports mpi4py by itself. MPI is used when the program was started by an
MPI launcher (``mpiexec``/``mpirun``/``srun``, recognised by the environment it sets) or when
``init_process_group()`` is called; otherwise the program is one process, rank 0 of a world of
size 1, and every collective is a no-op, so the same training script runs with plain
``python`` and without mpi4py installed.

Collectives here work on NumPy arrays in place (``all_reduce``, ``broadcast``) or on Python
numbers (``all_reduce_mean``); every rank must call them in the same order.
"""
import os
import sys
import traceback

import numpy as np

__all__ = [
    "is_available", "init_process_group", "is_initialized", "destroy_process_group", "get_rank", "get_world_size",
    "get_comm", "barrier", "all_reduce", "broadcast", "all_reduce_mean", "save_on_rank0",
]

_INSTALL_HINT = 'torchlite.distributed needs mpi4py and an MPI library: pip install "torchlite[mpi]"'

# Variables MPI launchers set in every process they start (MPICH/Intel hydra, Open MPI, PMIx).
_LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")

_REDUCE_OPS = ("sum", "max", "min", "prod")


class _State:
    comm = None          # the mpi4py communicator in use, None for the single-process world
    initialized = False  # True once MPI was set up (explicitly or because a launcher started us)


def is_available():
    """True when mpi4py can be imported (the ``mpi`` extra is installed); imports nothing."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} ({e})") from None
    return MPI


def _launched_by_mpi():
    """True when an MPI launcher started this process (its environment variables are set)."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


def init_process_group(backend="mpi", comm=None):
    """Set up MPI and use ``comm`` (default ``MPI.COMM_WORLD``) for every collective.

    Optional: under ``mpiexec`` the first distributed call does it. Calling it in a plain
    ``python`` run uses MPI with a world of one (needs mpi4py). An uncaught exception on any
    rank then aborts the whole job (``MPI_Abort``) instead of leaving the other ranks waiting
    forever in a collective. Calling it again with no ``comm`` keeps the current group.
    """
    if backend != "mpi":
        raise ValueError(f"init_process_group: only the 'mpi' backend exists, got backend={backend!r}")
    if _State.initialized and comm is None:
        return
    MPI = _import_mpi()
    _State.comm = MPI.COMM_WORLD if comm is None else comm
    _State.initialized = True
    if _State.comm.Get_size() > 1:
        _abort_on_uncaught_exception(MPI)


def _abort_on_uncaught_exception(MPI):
    previous = sys.excepthook
    if getattr(previous, "_torchlite_abort", False):
        return

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        if sys.stderr is not sys.__stderr__ and sys.__stderr__ is not None:
            # a rank that silenced its output still shows why it brought the job down
            traceback.print_exception(exc_type, exc, tb, file=sys.__stderr__)
        for stream in (sys.stderr, sys.__stderr__):
            if stream is not None:
                stream.flush()
        MPI.COMM_WORLD.Abort(1)

    hook._torchlite_abort = True
    sys.excepthook = hook


def is_initialized():
    """True when collectives go through MPI (after ``init_process_group`` or under a launcher)."""
    _comm()
    return _State.initialized


def destroy_process_group():
    """Forget the group: later calls see a single process unless MPI is set up again.

    MPI itself stays initialized (mpi4py finalizes it at exit).
    """
    _State.comm = None
    _State.initialized = False


def _comm():
    """The communicator in use, or None in a single-process run."""
    if not _State.initialized and _launched_by_mpi():
        init_process_group()
    return _State.comm


def _world(process_group=None):
    """(communicator or None, size) for ``process_group`` (default: the world); None means one process."""
    c = process_group if process_group is not None else _comm()
    return c, (1 if c is None else c.Get_size())


def get_comm():
    """The mpi4py communicator in use (for collectives of your own); sets MPI up if needed."""
    if _comm() is None:
        init_process_group()
    return _State.comm


def get_rank():
    """This process's rank in ``[0, get_world_size())``; 0 in a single-process run."""
    comm = _comm()
    return 0 if comm is None else comm.Get_rank()


def get_world_size():
    """The number of processes; 1 in a single-process run."""
    comm = _comm()
    return 1 if comm is None else comm.Get_size()


def barrier():
    """Wait until every rank got here."""
    comm = _comm()
    if comm is not None:
        comm.Barrier()




def _check_buffer(array, name):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(array).__name__}")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError(f"{name}: expected a writeable C-contiguous array (it is reduced in place)")


def all_reduce(array, op="sum"):
    """Reduce ``array`` over all ranks IN PLACE (``op``: 'sum', 'max', 'min', 'prod'); returns it."""
    _check_buffer(array, "all_reduce")
    if op not in _REDUCE_OPS:
        raise ValueError(f"all_reduce: op must be one of {_REDUCE_OPS}, got {op!r}")
    comm = _comm()
    if comm is not None and comm.Get_size() > 1:
        MPI = _import_mpi()
        comm.Allreduce(MPI.IN_PLACE, array, op=getattr(MPI, op.upper()))
    return array


def broadcast(array, src=0):
    """Overwrite ``array`` on every rank with rank ``src``'s values (in place); returns it."""
    _check_buffer(array, "broadcast")
    comm = _comm()
    if comm is not None and comm.Get_size() > 1:
        comm.Bcast(array, root=src)
    return array


def all_reduce_mean(value):
    """The mean over ranks of a number or array (e.g. a loss or an accuracy for logging).

    A number gives a Python float; an array gives a new float64 array. Every rank gets the result.
    """
    arr = np.array(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
        return float(all_reduce(arr)[0] / get_world_size())
    return all_reduce(arr) / get_world_size()


def save_on_rank0(obj, path):
    """``torchlite.save(obj, path)`` on rank 0 only; every rank returns once the file is written.

    Call it on every rank. If rank 0 fails to write, rank 0 re-raises and the others raise a
    RuntimeError (no rank is left waiting).
    """
    from ..serialization import save

    comm = _comm()
    if comm is None or comm.Get_size() == 1:
        save(obj, path)
        return
    error = None
    if comm.Get_rank() == 0:
        try:
            save(obj, path)
        except Exception as e:  # noqa: BLE001 - told to every rank, then re-raised
            error = e
    message = comm.bcast(None if error is None else f"{type(error).__name__}: {error}", root=0)
    if error is not None:
        raise error
    if message is not None:
        raise RuntimeError(f"save_on_rank0: rank 0 could not write {os.fspath(path)!r}: {message}")

"""torch's thread and determinism switches: ``set_num_threads``, ``get_num_threads``,
``use_deterministic_algorithms`` and its two queries.

torchlite's parallelism is the BLAS under NumPy and SciPy (GEMMs: convolutions, linear layers,
recurrent cells); everything else runs on the calling thread. ``set_num_threads`` therefore sets
the thread count of every OpenBLAS or MKL library loaded in the process, found by name in the
process's memory map and called through ``ctypes`` (the same calls threadpoolctl makes, without
the dependency). A BLAS loaded later (SciPy's, on first use of ``scipy.linalg``) keeps its own
default; call ``set_num_threads`` again after it loads. Where no BLAS can be found (non-Linux, an
unknown library) the count is remembered and ``get_num_threads`` returns it.

Every torchlite kernel is deterministic already (no atomics, no nondeterministic reductions), so
``use_deterministic_algorithms`` records the flags torch records and changes nothing else.
"""
import builtins
import ctypes
import os

__all__ = ["set_num_threads", "get_num_threads", "use_deterministic_algorithms",
           "are_deterministic_algorithms_enabled", "is_deterministic_algorithms_warn_only_enabled"]

# (setter, getter) symbol names of the BLAS builds NumPy and SciPy wheels ship, and the system ones
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"),
)
_requested = None
_deterministic = {"enabled": False, "warn_only": False}


def _loaded_blas():
    """(set, get) function pairs of the BLAS libraries mapped into this process."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.lower() or "mkl_rt" in line.lower()}
    except OSError:
        return []
    found = []
    for path in sorted(p for p in paths if os.path.isabs(p)):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in _SYMBOLS:
            if hasattr(lib, setter) and hasattr(lib, getter):
                found.append((getattr(lib, setter), getattr(lib, getter)))
                break
    return found


def set_num_threads(int):  # noqa: A002  (torch's parameter name)
    """Use ``int`` threads for the BLAS calls (GEMMs) of NumPy and SciPy in this process."""
    global _requested
    n = int
    if isinstance(n, bool) or not isinstance(n, builtins.int):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    for setter, _ in _loaded_blas():
        setter(ctypes.c_int(n))
    _requested = n


def get_num_threads():
    """The thread count of NumPy's BLAS (the first one found), else the last ``set_num_threads`` value, else 1."""
    for _, getter in _loaded_blas():
        getter.restype = ctypes.c_int
        return getter()
    return _requested or 1


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Record torch's determinism flags; torchlite's kernels are deterministic whatever they say."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms(): argument 'mode' must be bool, not {type(mode).__name__}")
    if not isinstance(warn_only, bool):
        raise TypeError(f"use_deterministic_algorithms(): argument 'warn_only' must be bool, "
                        f"not {type(warn_only).__name__}")
    _deterministic["enabled"] = mode
    _deterministic["warn_only"] = warn_only


def are_deterministic_algorithms_enabled():
    return _deterministic["enabled"]


def is_deterministic_algorithms_warn_only_enabled():
    return _deterministic["warn_only"]

"""Keep freed array memory in the process, so big per-step buffers do not page-fault every step.

glibc hands allocations above its mmap threshold (128 KiB at start, raised adaptively up to
32 MiB) to fresh ``mmap`` calls and gives freed heap tops back to the kernel above a trim
threshold. A training step allocates and frees the same large activations every time, so each
step touched them afresh: every 4 KiB page a fault and a zero-fill. Measured on the wide CNN
of ``benchmarks/`` (batch 64, 2 threads): 2,500 faults and ~8 ms of a 42 ms step; LeNet
800 faults and ~2 ms of 10 ms. With both thresholds at 1 GiB, freed blocks are reused from the
heap and the faults are gone; peak RSS does not grow (it fell from 447 to 399 MB on the wide
CNN's batch-1000 inference), but memory freed after a peak stays mapped to the process. 

Both thresholds must be set: fixing either one turns off glibc's adaptive threshold, and the
trim threshold alone left the mmap threshold at 128 KiB (4x the faults).
``TORCHLITE_MALLOC_TUNING=0`` in the environment leaves malloc alone; on other C libraries
(musl, macOS, Windows) nothing is changed.
"""
import ctypes
import ctypes.util
import os
import platform

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30


def tune_malloc(threshold=THRESHOLD):
    """Raise glibc's mmap and trim thresholds to ``threshold`` bytes; returns whether both took."""
    if os.environ.get("TORCHLITE_MALLOC_TUNING", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # an older glibc refuses an mmap threshold above 32 MiB: fall back to that cap
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, threshold) or mallopt(_M_MMAP_THRESHOLD, min(threshold, 32 << 20))
    return bool(mmap_ok and mallopt(_M_TRIM_THRESHOLD, threshold))

"""Run under ``mpiexec -n 2``: rank 1 raises while rank 0 waits in a collective.

The job must end with an error (torchlite's MPI_Abort on an uncaught exception), not hang.
"""
import torchlite.distributed as dist

if dist.get_rank() == 1:
    raise RuntimeError("rank 1 fails on purpose")
dist.barrier()

"""get_worker_info, as torch.utils.data.get_worker_info.

torchlite's DataLoader loads every batch in the calling process (see dataloader.py), so no code
ever runs inside a DataLoader worker: the answer is always None, as torch's in its main process.
Dataset code written for torch's workers (``info = get_worker_info(); if info is None: ...``)
takes its single-process branch and reads the whole dataset.
"""

__all__ = ["get_worker_info"]


def get_worker_info():
    """None: torchlite has no DataLoader worker processes (torch returns None in the main process)."""
    return None

"""Variable-length sequences for the recurrent layers: ``PackedSequence`` and its helpers (torch's API).

A packed sequence stores the steps of a batch of sequences, sorted longest first, one step
after another: ``data[offsets[t] : offsets[t] + batch_sizes[t]]`` is step t of the
``batch_sizes[t]`` sequences still running. RNN, LSTM and GRU accept one, skip the padding,
return each sequence's state at its own last step, and their ``backward`` takes and returns
PackedSequences of gradients.

Gradients through the packing: ``pack_padded_sequence`` and ``pad_packed_sequence`` are each
other's adjoint. The gradient of a padded input is ``pad_packed_sequence(grad_packed)[0]``
(zeros at the padding); the gradient that reaches a packed output from a padded one is
``pack_padded_sequence(grad_padded, lengths, enforce_sorted=False)`` with the same lengths.
"""
from typing import NamedTuple

import numpy as np

from ..module import _is_dtype_name

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]


def _device(device):
    """The device of a ``to``/``cpu``/``cuda`` call: the CPU is the only one."""
    name = "cpu" if device is None else str(device)
    if name.split(":")[0] != "cpu" or name.count(":") > 1:
        raise ValueError(f"PackedSequence: torchlite runs on the CPU with NumPy; device {name!r} is not available "
                         "(use 'cpu')")


class PackedSequence(NamedTuple):
    """data (total, *), batch_sizes (T,) int64, sorted_indices / unsorted_indices (B,) int64 or None.

    As torch's, ``to``, ``double``, ``float``, ... cast ``data`` only (the sizes and indices stay
    int64) and return the sequence itself when nothing changes.
    """

    data: np.ndarray
    batch_sizes: np.ndarray
    sorted_indices: np.ndarray = None
    unsorted_indices: np.ndarray = None

    def to(self, *args, **kwargs):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or keywords device, dtype, non_blocking."""
        unknown = sorted(set(kwargs) - {"device", "dtype", "non_blocking"})
        if unknown:
            raise TypeError(f"PackedSequence.to: unexpected keyword arguments {unknown}")
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for arg in args:
            if isinstance(arg, str) and not _is_dtype_name(arg):
                device = arg
            else:
                dtype = arg
        _device(device)
        data = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return self if data is self.data else self._replace(data=data)

    def cpu(self, *args, **kwargs):
        """Already there: the sequence itself (or cast, given a dtype)."""
        return self.to(*args, **kwargs)

    def cuda(self, *args, **kwargs):
        _device("cuda")

    def pin_memory(self):
        raise ValueError("PackedSequence.pin_memory: pinned memory speeds up copies to an accelerator; torchlite "
                         "runs on the CPU with NumPy")

    def is_pinned(self):
        return False

    @property
    def is_cuda(self):
        return False

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def half(self):
        return self.to(dtype=np.float16)

    def long(self):
        return self.to(dtype=np.int64)

    def int(self):
        return self.to(dtype=np.int32)

    def short(self):
        return self.to(dtype=np.int16)

    def char(self):
        return self.to(dtype=np.int8)

    def byte(self):
        return self.to(dtype=np.uint8)


def invert_permutation(permutation):
    """The inverse of ``permutation`` (None stays None)."""
    if permutation is None:
        return None
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(len(permutation), dtype=permutation.dtype)
    return inverse


def _step_mask(lengths, steps):
    """(steps, B) bool: step t of sequence b is data."""
    return np.arange(steps)[:, None] < lengths[None, :]


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of ``lengths``.

    With ``enforce_sorted=False`` the batch is sorted by length (stable, longest first) and the
    permutation kept in ``sorted_indices``; otherwise lengths must already be non-increasing.
    """
    x = np.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"pack_padded_sequence: expected input (T, B, *) or (B, T, *), got shape {x.shape}")
    if batch_first:
        x = x.swapaxes(0, 1)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if lengths.shape[0] != x.shape[1]:
        raise ValueError(f"pack_padded_sequence: expected {x.shape[1]} lengths (one per sequence), got {len(lengths)}")
    if lengths.size and lengths.min() <= 0:
        raise ValueError("pack_padded_sequence: length of all samples has to be greater than 0, "
                         f"got lengths {lengths.tolist()}")
    if lengths.size and lengths.max() > x.shape[0]:
        raise ValueError(f"pack_padded_sequence: a length ({lengths.max()}) exceeds the padded length {x.shape[0]}")
    sorted_indices = None
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ValueError("pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                             "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                             "pack_padded_sequence and/or pack_sequence to sidestep this requirement.")
    else:
        sorted_indices = np.argsort(-lengths, kind="stable")
        lengths = lengths[sorted_indices]
        x = x[:, sorted_indices]
    steps = int(lengths[0]) if lengths.size else 0
    mask = _step_mask(lengths, steps)
    data = x[:steps][mask]  # row-major: step by step, the running sequences of each step in order
    return PackedSequence(data, mask.sum(axis=1).astype(np.int64), sorted_indices, invert_permutation(sorted_indices))


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo ``pack_padded_sequence``: returns (padded (T, B, *) or (B, T, *), lengths (B,) int64)."""
    data, batch_sizes, _, unsorted = sequence
    batch_sizes = np.asarray(batch_sizes, dtype=np.int64)
    steps = len(batch_sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {steps}")
        steps = total_length
    B = int(batch_sizes[0]) if len(batch_sizes) else 0
    lengths = (np.arange(B)[None, :] < batch_sizes[:, None]).sum(axis=0).astype(np.int64)
    padded = np.full((steps, B) + data.shape[1:], padding_value, dtype=data.dtype)
    padded[_step_mask(lengths, steps)] = data
    if unsorted is not None:
        padded, lengths = padded[:, unsorted], lengths[unsorted]
    return (padded.swapaxes(0, 1) if batch_first else padded), lengths


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack sequences of shapes (L_i, *) into (T, B, *) (or (B, T, *)), padding with ``padding_value``."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    sequences = [np.asarray(s) for s in sequences]
    steps = max(len(s) for s in sequences)
    out = np.full((len(sequences), steps) + sequences[0].shape[1:], padding_value,
                  dtype=np.result_type(*sequences))
    for b, s in enumerate(sequences):
        if padding_side == "right":
            out[b, :len(s)] = s
        else:
            out[b, steps - len(s):] = s
    return out if batch_first else out.swapaxes(0, 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """Split a padded batch back into a list of sequences of ``lengths``."""
    x = np.asarray(padded_sequences)
    if not batch_first:
        x = x.swapaxes(0, 1)
    return [x[b, :int(n)] for b, n in enumerate(lengths)]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of sequences of shapes (L_i, *)."""
    lengths = [len(s) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """Undo ``pack_sequence``: the list of sequences."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)

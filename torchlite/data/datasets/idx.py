"""Reader and writer for the IDX format of MNIST-style files, gzip-compressed or raw.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order, big-endian.
Every check fails with ``IDXError`` naming the file and what is wrong with it.
"""
import gzip
import math
import os
import struct
import zlib

import numpy as np

__all__ = ["IDXError", "read_idx", "write_idx"]

_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("="): code for code, dt in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file is not a valid IDX file (bad header, truncated, corrupt compression, wrong content)."""


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(f"{path}: corrupt or truncated gzip data ({e}); delete the file and fetch it again") from None


def read_idx(path):
    """Read an IDX file (``.gz`` or raw, told apart by content) into a native-endian ndarray.

    Raises ``IDXError`` for a bad magic number, an unknown type code, a header that is cut
    short, or data whose size does not match the dimensions (truncated or with trailing bytes).
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXError(f"{path}: {len(data)} bytes, too short for an IDX header (4 bytes of magic number)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _DTYPES:
        raise IDXError(f"{path}: bad magic number 0x{data[:4].hex()}: not an IDX file (expected 0x0000 then a "
                       f"type code in {sorted(hex(c) for c in _DTYPES)} and the number of dimensions)")
    if ndim == 0:
        raise IDXError(f"{path}: the header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, the file has {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise IDXError(f"{path}: truncated: dimensions {shape} need {expected} bytes of data, the file has {found}")
    if found > expected:
        raise IDXError(f"{path}: {found - expected} unexpected bytes after the data for dimensions {shape}")
    # bytearray: the array owns writable memory without a second copy.
    arr = np.frombuffer(bytearray(data[header:]), dtype=dtype).reshape(shape)
    return arr if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


def write_idx(path, array, compress=None):
    """Write ``array`` as an IDX file; gzip-compressed when ``compress`` (default: path ends in .gz).

    The gzip header carries no timestamp, so the same array always gives the same bytes.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: dtype {array.dtype} has no IDX type code; expected one of "
                        f"{sorted(str(d) for d in _CODES)}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: expected 1 to 255 dimensions, got {array.ndim}")
    payload = (struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
               + np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes())
    if path.endswith(".gz") if compress is None else compress:
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)

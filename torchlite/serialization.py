"""Save and load nested checkpoints as ``.npz``: no pickle, atomic writes, strict reads.

A checkpoint is a nested structure of dicts (str or int keys), lists, tuples, arrays, numbers,
strings, bools and None: model + optimizer + scheduler + epoch in one file. Arrays are stored
as ``.npy`` members named by their path (``model/features.0.weight``); the structure itself is
stored as JSON in the member ``__torchlite__``, so keys that contain dots come back exactly.
A plain ``.npz`` of arrays (e.g. ``np.savez(f, **torch_state_dict_as_numpy)``) loads as a flat dict.
"""
import io
import json
import os
import tempfile
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

_HEADER = "__torchlite__"
_FORMAT = "torchlite-npz"
_VERSION = 1


class CheckpointError(ValueError):
    """Raised when a file cannot be read as a torchlite checkpoint; nothing is changed."""


def _encode(obj, path, arrays):
    """Turn ``obj`` into a JSON-able tree; arrays go to ``arrays`` under unique member names."""
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError(f"torchlite.save: object arrays cannot be saved without pickle (at {path or 'top level'!r})")
        name = path or "_"
        while name in arrays:
            name += "_"
        arrays[name] = arr
        return {"t": "scalar" if isinstance(obj, np.generic) else "array", "k": name}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return {"t": "int", "v": str(obj)}
    if isinstance(obj, float):
        return {"t": "float", "v": repr(obj)}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"torchlite.save: dict keys must be str or int, got {type(key).__name__} at {path!r}")
            sub = f"{path}/{key}" if path else str(key)
            items.append([key, _encode(value, sub, arrays)])
        return {"t": "dict", "ordered": isinstance(obj, OrderedDict), "items": items}
    if isinstance(obj, (list, tuple)):
        seq = [_encode(v, f"{path}/{i}" if path else str(i), arrays) for i, v in enumerate(obj)]
        return {"t": "tuple" if isinstance(obj, tuple) else "list", "items": seq}
    if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):
        raise TypeError("torchlite.save: cannot save a Module itself (that would need pickle); "
                        "save model.state_dict() instead")
    raise TypeError(f"torchlite.save: cannot save {type(obj).__name__} at {path or 'top level'!r}; "
                    "expected dicts, lists, tuples, arrays, numbers, strings, bools or None")


def _decode(node, arrays, where):
    if node is None or isinstance(node, (bool, str)):
        return node
    if not isinstance(node, dict) or "t" not in node:
        raise CheckpointError(f"torchlite.load: {where}: malformed structure entry {node!r}")
    t = node["t"]
    if t in ("array", "scalar"):
        if node["k"] not in arrays:
            raise CheckpointError(f"torchlite.load: {where}: member {node['k']!r} is missing")
        arr = arrays[node["k"]]
        return arr[()] if t == "scalar" else arr
    if t == "int":
        return int(node["v"])
    if t == "float":
        return float(node["v"])
    if t == "dict":
        cls = OrderedDict if node.get("ordered") else dict
        return cls((k, _decode(v, arrays, where)) for k, v in node["items"])
    if t in ("list", "tuple"):
        seq = [_decode(v, arrays, where) for v in node["items"]]
        return tuple(seq) if t == "tuple" else seq
    raise CheckpointError(f"torchlite.load: {where}: unknown entry type {t!r}")


def _remove_stale_temps(directory, base):
    prefix = f".{base}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(".tmp"):
            try:
                os.remove(os.path.join(directory, name))
            except OSError:
                pass


def save(obj, f):
    """Write ``obj`` (a nested dict/list of arrays, numbers, strings) to the ``.npz`` file ``f``.

    The file is written to a temporary file in the same folder, synced, then renamed over ``f``,
    so a crash at any point leaves either the old file or the new one, never half of one.
    Temporary files left by an earlier killed save are removed after a successful one.
    ``f`` may also be a writable binary file object (written directly, not atomically).
    """
    arrays = {}
    tree = _encode(obj, "", arrays)
    header = json.dumps({"format": _FORMAT, "version": _VERSION, "tree": tree})
    members = {_HEADER: np.array(header)}
    members.update(arrays)
    if hasattr(f, "write"):
        np.savez(f, **members)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **members)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _remove_stale_temps(directory, base)
    _fsync_dir(directory)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_members(f, where):
    try:
        npz = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"torchlite.load: {where} is not a readable .npz file ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"torchlite.load: {where} is a single .npy array, not a .npz checkpoint")
    with npz:
        bad = [n for n in npz.zip.namelist() if not n.endswith(".npy")]
        if bad:
            raise CheckpointError(f"torchlite.load: {where} is a zip but not an .npz of arrays "
                                  f"(member {bad[0]!r}); torch .pt files must be converted first")
        out = {}
        for name in npz.files:
            try:
                out[name] = npz[name]
            except ValueError as e:
                if "allow_pickle" in str(e) or "Object arrays" in str(e):
                    raise CheckpointError(f"torchlite.load: {where}: member {name!r} holds Python objects; "
                                          "refusing to unpickle (loading never executes code)") from None
                raise CheckpointError(f"torchlite.load: {where}: member {name!r} is corrupt ({e})") from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise CheckpointError(f"torchlite.load: {where}: member {name!r} is truncated or corrupt ({e})") from None
    return out


def load(f):
    """Read a file written by ``save`` and return the structure that was saved.

    A plain ``.npz`` of arrays comes back as a dict of arrays. Files that are not ``.npz``,
    truncated or garbled files and files holding pickled objects raise ``CheckpointError``
    (a ``ValueError``); nothing is ever unpickled.
    """
    where = repr(os.fspath(f)) if not hasattr(f, "read") else "file object"
    if not hasattr(f, "read"):
        if not os.path.exists(f):
            raise FileNotFoundError(f"torchlite.load: no such file: {os.fspath(f)!r}")
        with open(f, "rb") as fh:
            data = fh.read()
        f = io.BytesIO(data)
    members = _read_members(f, where)
    if _HEADER not in members:
        return dict(members)
    try:
        header = json.loads(str(members.pop(_HEADER)[()]))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"torchlite.load: {where}: the structure header is garbled ({e})") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise CheckpointError(f"torchlite.load: {where}: the structure header is not torchlite's")
    if header.get("version", 0) > _VERSION:
        raise CheckpointError(f"torchlite.load: {where} was written by a newer torchlite "
                              f"(format version {header['version']}, this one reads {_VERSION})")
    return _decode(header["tree"], members, where)

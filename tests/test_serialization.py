"""torchlite.save / torchlite.load: nested round trips, atomic writes, refusal of foreign files."""
import io
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from torchlite import CheckpointError


def nested():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    return {
        "model": model.state_dict(),
        "optimizer": {"state": {0: {"step": 3.0, "exp_avg": np.ones((4, 3), np.float32)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1, 2, 3],
                                        "amsgrad": False, "foreach": None}]},
        "epoch": 7,
        "history": {"train_loss": [0.5, 0.25], "name": "run-1"},
        "big": 2**70,
        "nan": float("nan"),
        "np_scalar": np.float32(1.5),
        "empty": {},
    }


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_nested_round_trip(tmp_path):
    obj = nested()
    path = tmp_path / "ckpt.npz"
    torchlite.save(obj, path)
    back = torchlite.load(path)
    assert_same(obj, back)
    assert isinstance(back["model"], OrderedDict)
    assert list(back["model"]) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_file_object_round_trip():
    buf = io.BytesIO()
    torchlite.save({"a": np.arange(3)}, buf)
    buf.seek(0)
    assert_same(torchlite.load(buf), {"a": np.arange(3)})


def test_model_reloads_and_predicts_the_same(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    torchlite.save(model.state_dict(), tmp_path / "m.npz")
    other = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    other.load_state_dict(torchlite.load(tmp_path / "m.npz"))
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(model(x), other(x))


def test_plain_npz_from_torch_loads_as_flat_dict(tmp_path):
    t = torch.nn.Linear(3, 2)
    np.savez(tmp_path / "t.npz", **{k: v.detach().numpy() for k, v in t.state_dict().items()})
    state = torchlite.load(tmp_path / "t.npz")
    m = nn.Linear(3, 2)
    m.load_state_dict(state)
    np.testing.assert_array_equal(m.weight.data, t.weight.detach().numpy())


def test_no_temp_files_left(tmp_path):
    torchlite.save({"a": np.zeros(3)}, tmp_path / "x.npz")
    torchlite.save({"a": np.ones(3)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == ["x.npz"]


def test_stale_temp_files_from_a_killed_save_are_removed(tmp_path):
    (tmp_path / ".x.npz.abc123.tmp").write_bytes(b"half a checkpoint")
    torchlite.save({"a": np.zeros(3)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == ["x.npz"]


def test_failed_save_keeps_old_file(tmp_path):
    path = tmp_path / "x.npz"
    torchlite.save({"a": np.zeros(3)}, path)
    with pytest.raises(TypeError, match="cannot save object"):
        torchlite.save({"a": object()}, path)
    assert_same(torchlite.load(path), {"a": np.zeros(3)})
    assert os.listdir(tmp_path) == ["x.npz"]


def test_refuses_to_save_what_needs_pickle(tmp_path):
    with pytest.raises(TypeError, match="object arrays"):
        torchlite.save({"a": np.array([{"x": 1}], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="save model.state_dict"):
        torchlite.save(nn.Linear(2, 2), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dict keys must be str or int"):
        torchlite.save({(1, 2): 3}, tmp_path / "x.npz")


def test_truncated_file(tmp_path):
    path = tmp_path / "x.npz"
    torchlite.save(nested(), path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            torchlite.load(path)


def test_garbled_and_foreign_files(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        torchlite.load(path)
    torch.save({"w": torch.zeros(2)}, tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="not an .npz of arrays"):
        torchlite.load(tmp_path / "t.pt")
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(CheckpointError, match="single .npy"):
        torchlite.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        torchlite.load(tmp_path / "missing.npz")


def test_object_array_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        torchlite.load(path)


def test_garbled_header(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, __torchlite__=np.array("{not json"))
    with pytest.raises(CheckpointError, match="garbled"):
        torchlite.load(path)
    np.savez(path, __torchlite__=np.array('{"format": "other"}'))
    with pytest.raises(CheckpointError, match="not torchlite's"):
        torchlite.load(path)


def test_corrupt_member_bytes(tmp_path):
    path = tmp_path / "x.npz"
    torchlite.save({"w": np.arange(1000.0)}, path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        contents = {n: z.read(n) for n in names}
    contents["w.npy"] = contents["w.npy"][:100]
    with zipfile.ZipFile(path, "w") as z:
        for n, b in contents.items():
            z.writestr(n, b)
    with pytest.raises(CheckpointError, match="'w'"):
        torchlite.load(path)

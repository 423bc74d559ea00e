"""torchlite.data.datasets: the IDX reader, MNIST / Fashion-MNIST on the real files, search order and
downloads against a loopback HTTP server (never the internet)."""
import functools
import gzip
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest
from conftest import data_root

from torchlite.data import DataLoader
from torchlite.data.datasets import (MNIST, DatasetNotFoundError, DownloadError, FashionMNIST, IDXError, download_url,
                                     read_idx, write_idx)
from torchlite.data.datasets import mnist as mnist_module

# Class counts of the canonical splits (see data/README.md).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $TORCHLITE_DATA, an empty home (so ~/.cache/torchlite is empty) and no system folders."""
    monkeypatch.delenv("TORCHLITE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(mnist_module, "SYSTEM_ROOTS", [])
    return tmp_path


def _fake_split(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


def _write_dataset(folder, n_train=12, n_test=5, seed=0, gz=True):
    """The four MNIST files with random content; returns {name: array}."""
    os.makedirs(folder, exist_ok=True)
    (xtr, ytr), (xte, yte) = _fake_split(n_train, seed), _fake_split(n_test, seed + 1)
    arrays = dict(zip(NAMES, (xtr, ytr, xte, yte)))
    for name, arr in arrays.items():
        write_idx(os.path.join(folder, name + (".gz" if gz else "")), arr)
    return arrays


# ----------------------------------------------------------------------------- IDX reader
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    arr = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, arr)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == gz
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_idx_header_is_big_endian(tmp_path):
    write_idx(tmp_path / "l.idx", np.array([1, 2, 3], dtype=np.int16))
    raw = (tmp_path / "l.idx").read_bytes()
    assert raw == bytes([0, 0, 0x0B, 1, 0, 0, 0, 3, 0, 1, 0, 2, 0, 3])


def _write_bytes(path, data, gz):
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


_HEADER = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3])


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("data,message", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (bytes([1, 2, 8, 1, 0, 0, 0, 1, 5]), "bad magic number"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), "bad magic number"),
    (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    (bytes([0, 0, 0x08, 3, 0, 0, 0, 1]), "truncated header"),
    (_HEADER + bytes(5), "truncated: dimensions \\(2, 3\\) need 6 bytes of data, the file has 5"),
    (_HEADER + bytes(8), "2 unexpected bytes"),
    (bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + bytes(7), "need 8 bytes"),
])
def test_idx_rejects_bad_files(tmp_path, data, message, gz):
    path = _write_bytes(tmp_path / "bad", data, gz)
    with pytest.raises(IDXError, match=message) as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_idx_rejects_truncated_and_corrupt_gzip(tmp_path):
    good = gzip.compress(_HEADER + bytes(range(6)), mtime=0)
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        read_idx(_write_bytes(tmp_path / "cut.gz", good[:-10], gz=False))
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF  # inside the CRC32 trailer
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        read_idx(_write_bytes(tmp_path / "crc.gz", bytes(flipped), gz=False))


def test_write_idx_checks():
    with pytest.raises(TypeError, match="no IDX type code"):
        write_idx("/nonexistent/x", np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx("/nonexistent/x", np.uint8(3))


# ----------------------------------------------------------------------------- the real files
def test_idx_reader_on_real_mnist_files():
    folder = data_root() / "mnist"
    images = read_idx(folder / "train-images-idx3-ubyte.gz")
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and np.bincount(labels).tolist() == MNIST_TRAIN_COUNTS
    assert images.max() == 255 and images.min() == 0


def test_mnist_real_data():
    train, test = MNIST(root=data_root()), MNIST(root=data_root(), train=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.data.shape == (60000, 28, 28) and train.data.dtype == np.uint8
    assert train.targets.dtype == np.int64
    assert np.bincount(train.targets).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test.targets).tolist() == MNIST_TEST_COUNTS
    img, label = test[0]
    assert img.shape == (1, 28, 28) and img.dtype == np.float32 and isinstance(label, int)
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.max() > 0.9
    assert label == 7  # the first test digit is a 7 in every copy of MNIST
    idx = [0, 59999, 123, 123]
    xb, yb = train.get_batch(idx)
    assert xb.shape == (4, 1, 28, 28) and xb.dtype == np.float32 and yb.dtype == np.int64
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(xb[k], train[i][0])
        assert yb[k] == train[i][1]
    assert train.classes[7] == "7 - seven" and train.class_to_idx["3 - three"] == 3
    assert "Number of datapoints: 60000" in repr(train) and "Split: Train" in repr(train)


def test_fashion_mnist_real_data():
    train, test = FashionMNIST(root=data_root()), FashionMNIST(root=data_root(), train=False)
    assert len(train) == 60000 and len(test) == 10000
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert train.classes[9] == "Ankle boot"
    assert not np.array_equal(train.data[:100], MNIST(root=data_root()).data[:100])


def test_mnist_loader_epoch():
    loader = DataLoader(MNIST(root=data_root(), train=False), batch_size=256, shuffle=True)
    counts = np.zeros(10, dtype=int)
    for x, y in loader:
        assert x.dtype == np.float32 and x.shape[1:] == (1, 28, 28)
        counts += np.bincount(y, minlength=10)
    assert counts.tolist() == MNIST_TEST_COUNTS and len(loader) == 40


# ----------------------------------------------------------------------------- finding files
def test_search_order(isolated, monkeypatch):
    tmp = isolated
    a = _write_dataset(tmp / "a" / "mnist", seed=1)
    b = _write_dataset(tmp / "b" / "mnist", seed=2)
    c = _write_dataset(tmp / "home" / ".cache" / "torchlite" / "mnist", seed=3)
    sysroot = _write_dataset(tmp / "sys" / "mnist", seed=4)
    monkeypatch.setattr(mnist_module, "SYSTEM_ROOTS", [str(tmp / "sys")])
    monkeypatch.setenv("TORCHLITE_DATA", str(tmp / "b"))

    def data(**kw):
        return MNIST(**kw).data

    np.testing.assert_array_equal(data(root=tmp / "a"), a[NAMES[0]])
    np.testing.assert_array_equal(data(root=tmp / "empty"), b[NAMES[0]])  # root lacks them: go on searching
    np.testing.assert_array_equal(data(), b[NAMES[0]])
    monkeypatch.delenv("TORCHLITE_DATA")
    np.testing.assert_array_equal(data(), c[NAMES[0]])
    os.rename(tmp / "home", tmp / "home_gone")
    np.testing.assert_array_equal(data(), sysroot[NAMES[0]])
    assert MNIST(train=False).folder == str(tmp / "sys" / "mnist")


def test_raw_files_and_torchvision_layout(isolated):
    tmp = isolated
    arrays = _write_dataset(tmp / "r" / "MNIST" / "raw", gz=False, seed=5)
    ds = MNIST(root=tmp / "r", train=False)
    np.testing.assert_array_equal(ds.data, arrays[NAMES[2]])
    np.testing.assert_array_equal(ds.targets, arrays[NAMES[3]])
    fashion = _write_dataset(tmp / "r" / "fashion-mnist", seed=6)
    np.testing.assert_array_equal(FashionMNIST(root=tmp / "r").data, fashion[NAMES[0]])


def test_not_found_message(isolated):
    with pytest.raises(DatasetNotFoundError) as e:
        MNIST(root=isolated / "nowhere")
    msg = str(e.value)
    assert str(isolated / "nowhere" / "mnist") in msg
    assert os.path.join(str(isolated / "home"), ".cache", "torchlite", "mnist") in msg
    assert "TORCHLITE_DATA is not set" in msg and "download=True" in msg
    assert isinstance(e.value, FileNotFoundError)
    _write_dataset(isolated / "direct")
    with pytest.raises(DatasetNotFoundError, match="pass its parent folder"):
        FashionMNIST(root=isolated / "direct")


def test_content_checks(isolated):
    folder = isolated / "bad" / "mnist"
    _write_dataset(folder)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((12, 28, 27), dtype=np.uint8))
    with pytest.raises(IDXError, match="shape \\(N, 28, 28\\)"):
        MNIST(root=isolated / "bad")
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((11, 28, 28), dtype=np.uint8))
    with pytest.raises(IDXError, match="11 images but 12 labels"):
        MNIST(root=isolated / "bad")
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((12, 28, 28), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(12, 10, dtype=np.uint8))
    with pytest.raises(IDXError, match="label 10 out of range"):
        MNIST(root=isolated / "bad")
    raw = (folder / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IDXError, match="truncated"):
        MNIST(root=isolated / "bad", train=False)


def test_transforms(isolated):
    arrays = _write_dataset(isolated / "t" / "mnist")
    seen = []

    def transform(img):
        seen.append((img.dtype, img.shape))
        return img.astype(np.float32).sum(keepdims=True)

    ds = MNIST(root=isolated / "t", transform=transform, target_transform=lambda y: y + 100)
    x, y = ds[0]
    assert seen == [(np.uint8, (28, 28))] and y == arrays[NAMES[1]][0] + 100
    xb, yb = next(iter(DataLoader(ds, batch_size=12)))
    assert xb.shape == (12, 1, 1) and yb.tolist() == (arrays[NAMES[1]].astype(int) + 100).tolist()
    assert "Transform:" in repr(ds)


# ----------------------------------------------------------------------------- downloads
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _served_mnist(www):
    """Good files under good/, the same names with corrupt content under bad/; returns (arrays, md5s)."""
    arrays = _write_dataset(www / "good", seed=7)
    (www / "bad").mkdir()
    md5s = {}
    for name in NAMES:
        data = (www / "good" / (name + ".gz")).read_bytes()
        md5s[name + ".gz"] = hashlib.md5(data).hexdigest()
        (www / "bad" / (name + ".gz")).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    return arrays, md5s


def _local_mnist(mirrors, md5s):
    return type("LocalMNIST", (MNIST,), {"mirrors": mirrors, "resources": list(md5s.items())})


def test_download_tries_mirrors_in_turn(isolated, server, capsys):
    base, www = server
    arrays, md5s = _served_mnist(www)
    # A mirror with corrupt files (md5 refused), one that answers 404, then a good one.
    cls = _local_mnist([base + "bad/", base + "missing/", base + "good/"], md5s)
    ds = cls(root=isolated / "dl", download=True)
    np.testing.assert_array_equal(ds.data, arrays[NAMES[0]])
    assert ds.folder == str(isolated / "dl" / "mnist")
    assert sorted(os.listdir(isolated / "dl" / "mnist")) == sorted(md5s)  # no temporary files left
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err  # the progress line
    # Found now: no second download even with no mirror at all.
    assert len(_local_mnist([], md5s)(root=isolated / "dl", train=False, download=True)) == 5


def test_download_refuses_bad_checksum(isolated, server):
    base, www = server
    _, md5s = _served_mnist(www)
    md5s["t10k-images-idx3-ubyte.gz"] = "0" * 32
    cls = _local_mnist([base + "good/", base + "bad/"], md5s)
    with pytest.raises(DownloadError, match="md5 mismatch") as e:
        cls(root=isolated / "dl", train=False, download=True)
    assert str(e.value).count("md5 mismatch") == 2  # both mirrors tried
    left = os.listdir(isolated / "dl" / "mnist")
    assert "t10k-images-idx3-ubyte.gz" not in left
    assert not [n for n in left if n.endswith(".part")]


def test_download_goes_to_the_cache_by_default(isolated, server):
    base, www = server
    arrays, md5s = _served_mnist(www)
    ds = _local_mnist([base + "good/"], md5s)(train=False, download=True)
    assert ds.folder == os.path.join(str(isolated / "home"), ".cache", "torchlite", "mnist")
    np.testing.assert_array_equal(ds.targets, arrays[NAMES[3]])


def test_download_url_errors(tmp_path, server):
    base, www = server
    (www / "f.bin").write_bytes(b"hello")
    out = download_url([base + "nope", base + "f.bin"], tmp_path / "sub" / "f.bin",
                       md5=hashlib.md5(b"hello").hexdigest(), progress=False)
    assert open(out, "rb").read() == b"hello"
    with pytest.raises(DownloadError, match="404") as e:
        download_url(base + "nope", tmp_path / "g.bin", progress=False)
    assert isinstance(e.value, OSError) and not (tmp_path / "g.bin").exists()
    # Nothing listens on a port the server just gave back: connection refused, reported per URL.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/x"
    with pytest.raises(DownloadError, match="refused|Errno"):
        download_url([dead], tmp_path / "h.bin", progress=False, timeout=5)

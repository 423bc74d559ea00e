"""Integration: examples/mnist_cnn.py trains on the real MNIST, resumes bit for bit, stops on NaN;
benchmarks/run.py runs its quick smoke mode.

Each script runs as a subprocess, as a user would run it, with one BLAS thread: on a busy
2-core machine a multi-threaded BLAS slows down several times, one thread keeps times steady.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, data_root

import torchlite

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_script(path, *args, check=True, timeout=180, env=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(ONE_THREAD if env is None else env))
    proc = subprocess.run([sys.executable, str(ROOT / path), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(ROOT))
    if check and proc.returncode != 0:
        raise AssertionError(f"{path} {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def test_trains_on_an_mnist_subset(tmp_path):
    """The default model and settings, 2 epochs on 12,000 training images: 97.3% when written."""
    ckpt = tmp_path / "run.npz"
    proc = run_script("examples/mnist_cnn.py", "--epochs", 2, "--limit-train", 12000, "--data", data_root(),
                      "--save", ckpt)
    saved = torchlite.load(ckpt)
    assert saved["history"]["epoch"] == [1, 2]
    assert saved["history"]["test_acc"][-1] >= 0.965, proc.stdout + proc.stderr
    assert saved["history"]["test_loss"][1] < saved["history"]["test_loss"][0]
    assert "test accuracy" in proc.stdout
    # The checkpoint carries batch norm's running statistics, with torch's keys.
    assert {"1.running_mean", "1.running_var", "1.num_batches_tracked"} <= set(saved["model"])
    assert int(saved["model"]["1.num_batches_tracked"]) == 2 * 188  # ceil(12000 / 64) steps per epoch


@pytest.fixture(scope="module")
def resumed_runs(tmp_path_factory):
    """A 2-epoch run and a 1-epoch run resumed for a second epoch, on 1,500 training images."""
    tmp = tmp_path_factory.mktemp("resume")
    common = ("--limit-train", 1500, "--channels", 8, 16, "--hidden", 32, "--data", data_root())
    run_script("examples/mnist_cnn.py", "--epochs", 2, "--save", tmp / "straight.npz", *common)
    run_script("examples/mnist_cnn.py", "--epochs", 1, "--save", tmp / "first.npz", *common)
    proc = run_script("examples/mnist_cnn.py", "--epochs", 2, "--resume", tmp / "first.npz",
                      "--save", tmp / "resumed.npz", "--data", data_root())
    assert "resuming" in proc.stdout
    return tmp


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(tree, (list, tuple)):
        return _flatten(dict(enumerate(tree)), prefix)
    return {prefix: tree}


def test_resume_is_bit_identical(resumed_runs):
    straight = torchlite.load(resumed_runs / "straight.npz")
    resumed = torchlite.load(resumed_runs / "resumed.npz")
    assert straight["epoch"] == resumed["epoch"] == 2
    assert straight["args"]["channels"] == [8, 16]  # the run settings came back from the checkpoint
    for part in ("model", "optimizer", "scheduler", "rng", "history", "args"):
        a, b = _flatten(straight[part]), _flatten(resumed[part])
        assert a.keys() == b.keys(), part
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), f"{part}{key} differs"
            else:
                assert a[key] == b[key], f"{part}{key}: {a[key]!r} != {b[key]!r}"
    # The comparison can fail: one epoch more changes weights and batch-norm statistics.
    first = torchlite.load(resumed_runs / "first.npz")
    for key in ("0.weight", "1.running_mean"):
        assert not np.array_equal(first["model"][key], straight["model"][key])


def test_nan_loss_stops_with_the_step():
    proc = run_script("examples/mnist_cnn.py", "--epochs", 1, "--limit-train", 1024, "--optimizer", "sgd",
                      "--lr", 1e30, "--channels", 4, "--data", data_root(), check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "training diverged" in proc.stderr and "at epoch 1, step" in proc.stderr


def test_benchmark_quick_smoke():
    """The benchmark command still runs end to end (times are not checked) and both libraries agree."""
    proc = run_script("benchmarks/run.py", "--quick", "--only", "mlp", "--threads", 1, "--json", "", timeout=240)
    out = proc.stdout
    assert "| mlp |" in out and "Import time" in out and "Peak RSS" in out
    assert "MISMATCH" not in out and "mlp loss rel diff" in out, out


def _top3(proc):
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.rstrip().endswith("%") for line in lines[1:]), proc.stdout + proc.stderr
    probs = [float(line.split()[-1].rstrip("%")) for line in lines[1:]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.01
    return lines


def test_predict_reads_a_cnn_checkpoint(resumed_runs):
    lines = _top3(run_script("examples/predict.py", resumed_runs / "resumed.npz", "--index", 0, "--data", data_root()))
    assert lines[0] == "test image 0: true class 7 - seven"
    assert lines[1].split()[0] == "7"


def test_predict_reads_an_rnn_checkpoint(tmp_path):
    """A GRU checkpoint (untrained weights: the output format and model rebuild are what is checked)."""
    sys.path.insert(0, str(ROOT / "examples"))
    from mnist_rnn import RowReader

    torchlite.manual_seed(0)
    settings = {"model": "gru", "hidden": 16, "layers": 2, "dataset": "mnist"}
    torchlite.save({"model": RowReader("gru", 16, 2).state_dict(), "args": settings}, tmp_path / "rnn.npz")
    lines = _top3(run_script("examples/predict.py", tmp_path / "rnn.npz", "--index", 1, "--data", data_root()))
    assert lines[0] == "test image 1: true class 2 - two"

"""Integration: examples/mnist_fnn.py trains on the real MNIST, resumes bit for bit, stops on NaN;
examples/predict.py reads its checkpoint; examples/toy_2d.py solves both toy tasks.

Each example runs as a subprocess, as a user would run it, with one BLAS thread: on a busy
2-core machine a multi-threaded BLAS slows down several times, one thread keeps times steady.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, data_root

import torchlite

EXAMPLES = ROOT / "examples"


def run_example(script, *args, check=True, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(ROOT))
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def test_one_epoch_on_full_mnist(tmp_path):
    ckpt = tmp_path / "run.npz"
    proc = run_example("mnist_fnn.py", "--epochs", 1, "--data", data_root(), "--save", ckpt)
    history = torchlite.load(ckpt)["history"]
    assert history["epoch"] == [1]
    assert history["test_acc"][0] >= 0.96, proc.stdout + proc.stderr  # 96.3-96.9% over seeds 0-3
    assert "test accuracy" in proc.stdout
    # Off a terminal the progress bar prints one line per short epoch, not one per batch.
    assert len([line for line in proc.stderr.splitlines() if line.startswith("epoch 1/1")]) <= 3


@pytest.fixture(scope="module")
def resumed_runs(tmp_path_factory):
    """A 2-epoch run and a 1-epoch run resumed for a second epoch, on 3,000 training images."""
    tmp = tmp_path_factory.mktemp("resume")
    common = ("--limit-train", 3000, "--data", data_root())
    run_example("mnist_fnn.py", "--epochs", 2, "--save", tmp / "straight.npz", *common)
    run_example("mnist_fnn.py", "--epochs", 1, "--save", tmp / "first.npz", *common)
    proc = run_example("mnist_fnn.py", "--epochs", 2, "--resume", tmp / "first.npz", "--save", tmp / "resumed.npz",
                       "--data", data_root())
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
    for part in ("model", "optimizer", "scheduler", "rng", "history", "args"):
        a, b = _flatten(straight[part]), _flatten(resumed[part])
        assert a.keys() == b.keys(), part
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), f"{part}{key} differs"
            else:
                assert a[key] == b[key], f"{part}{key}: {a[key]!r} != {b[key]!r}"
    # The comparison can fail: a run from another seed differs.
    first = torchlite.load(resumed_runs / "first.npz")
    assert not np.array_equal(first["model"]["0.weight"], straight["model"]["0.weight"])


def test_predict_reads_the_checkpoint(resumed_runs):
    proc = run_example("predict.py", resumed_runs / "resumed.npz", "--index", 0, "--data", data_root())
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "test image 0: true class 7 - seven"
    assert len(lines) == 4 and all(line.rstrip().endswith("%") for line in lines[1:])
    probs = [float(line.split()[-1].rstrip("%")) for line in lines[1:]]
    assert probs == sorted(probs, reverse=True) and probs[0] > 50 and sum(probs) <= 100.01
    assert lines[1].split()[0] == "7"  # a model trained on 3,000 images gets the first test digit right
    bad = run_example("predict.py", resumed_runs / "resumed.npz", check=False)
    assert bad.returncode == 2 and "either an image file or --index" in bad.stderr


def test_nan_loss_stops_with_the_step():
    proc = run_example("mnist_fnn.py", "--epochs", 1, "--limit-train", 2048, "--optimizer", "sgd", "--lr", 1e30,
                       "--data", data_root(), check=False)
    assert proc.returncode == 1
    assert "training diverged" in proc.stderr and "at epoch 1, step" in proc.stderr


def test_missing_data_is_a_clear_message(tmp_path, monkeypatch):
    from torchlite.data.datasets import mnist as mnist_module
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delenv("TORCHLITE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(mnist_module, "SYSTEM_ROOTS", [])
    import mnist_fnn
    with pytest.raises(SystemExit) as e:
        mnist_fnn.main(["--data", str(tmp_path), "--dataset", "fashion-mnist"])
    assert "fashion-mnist" in str(e.value.code) and "download=True" in str(e.value.code)


@pytest.mark.parametrize("task,threshold", [("parabola", 0.95), ("moons", 0.97)])
def test_toy_2d(task, threshold):
    proc = run_example("toy_2d.py", "--task", task)
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{task}: test accuracy")
    assert float(last.split()[-1].rstrip("%")) / 100 >= threshold

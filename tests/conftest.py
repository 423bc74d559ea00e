"""Test configuration: parity tests need torch and real-data tests need the datasets.

Both are hard requirements: a missing one fails the run instead of skipping tests.
"""
import os
import pathlib

import numpy as np
import pytest

import torchlite

ROOT = pathlib.Path(__file__).resolve().parent.parent


def data_root():
    """Folder holding ``mnist/`` and ``fashion-mnist/`` (TORCHLITE_DATA, else ../shared/data, else data/)."""
    for candidate in (os.environ.get("TORCHLITE_DATA"), ROOT.parent / "shared" / "data", ROOT / "data"):
        if candidate and (pathlib.Path(candidate) / "mnist").is_dir():
            return pathlib.Path(candidate)
    raise RuntimeError("MNIST data not found: set TORCHLITE_DATA to a folder holding mnist/ and fashion-mnist/")


@pytest.fixture(autouse=True)
def _reset_global_state():
    """Each test starts from float32 default dtype, gradients on, and a fixed seed."""
    torchlite.set_default_dtype(np.float32)
    torchlite.manual_seed(0)
    yield
    torchlite.set_default_dtype(np.float32)

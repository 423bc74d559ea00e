"""gradcheck itself: passes on correct layers, names the worst element on wrong ones."""
import numpy as np
import pytest

import torchlite
import torchlite.nn as nn
from torchlite.testing import GradcheckError, gradcheck


class BadScale(nn.Module):
    """y = w * x with a deliberately wrong input gradient at one element."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.array([2.0, 3.0]))

    def forward(self, x):
        self.save_for_backward(x)
        return self.w.data * x

    def backward(self, g):
        (x,) = self.pop_saved()
        self.w.accumulate_grad((g * x).sum(axis=0))
        dx = g * self.w.data
        dx[1, 0] += 0.5
        return dx


class BadParam(BadScale):
    def backward(self, g):
        (x,) = self.pop_saved()
        self.w.accumulate_grad((g * x).sum(axis=0) * 1.01)
        return g * self.w.data


def test_gradcheck_passes_on_linear():
    assert gradcheck(nn.Linear(3, 2).double(), np.random.default_rng(0).standard_normal((4, 3)))


def test_gradcheck_names_worst_input_element():
    with pytest.raises(GradcheckError, match=r"input 0 at index \(1, 0\)"):
        gradcheck(BadScale(), np.ones((3, 2)))
    assert gradcheck(BadScale(), np.ones((3, 2)), raise_exception=False) is False


def test_gradcheck_names_parameter():
    with pytest.raises(GradcheckError, match="parameter 'w'"):
        gradcheck(BadParam(), np.random.default_rng(1).standard_normal((3, 2)))


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="call module.double"):
        gradcheck(nn.Linear(2, 2), np.ones((1, 2)))
    with pytest.raises(TypeError, match="float64 inputs"):
        gradcheck(nn.Linear(2, 2).double(), np.ones((1, 2), np.float32))


def test_gradcheck_leaves_no_saved_state_and_restores_rng():
    lin = nn.Linear(2, 2).double()
    torchlite.manual_seed(5)
    expected = torchlite.get_generator().random()
    torchlite.manual_seed(5)
    gradcheck(lin, np.ones((1, 2)))
    assert lin.saved_count == 0
    assert torchlite.get_generator().random() == expected


def test_rng_state_round_trip(tmp_path):
    torchlite.manual_seed(11)
    torchlite.get_generator().random(5)
    state = torchlite.get_rng_state()
    torchlite.save({"rng": state}, tmp_path / "r.npz")
    a = torchlite.get_generator().random(3)
    torchlite.set_rng_state(torchlite.load(tmp_path / "r.npz")["rng"])
    np.testing.assert_array_equal(torchlite.get_generator().random(3), a)
    assert torchlite.initial_seed() == 11


def test_default_dtype_policy():
    assert torchlite.get_default_dtype() == np.float32
    torchlite.set_default_dtype(np.float64)
    assert nn.Linear(2, 2).weight.dtype == np.float64
    with pytest.raises(TypeError, match="expected a floating dtype"):
        torchlite.set_default_dtype(np.int32)

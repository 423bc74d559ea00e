"""Anomaly mode names the first module, its path and the phase where NaN/inf appears."""
import numpy as np
import pytest

import torchlite
import torchlite.nn as nn
from torchlite import AnomalyError


class Log(nn.Module):
    """y = log(x): NaN for negative input, inf gradient at 0."""

    def forward(self, x):
        self.save_for_backward(x)
        with np.errstate(all="ignore"):
            return np.log(x)

    def backward(self, g):
        (x,) = self.pop_saved()
        with np.errstate(all="ignore"):
            return g / x


def model():
    return nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Identity(), Log()), nn.Linear(2, 1))


def test_forward_anomaly_names_path_and_phase():
    m = model()
    m[0].weight.data[...] = -1.0
    m[0].bias.data[...] = 0.0
    with torchlite.detect_anomaly():
        with pytest.raises(AnomalyError, match=r"Log at '1\.1' \(Log\(\)\) produced nan in its output during forward"):
            m(np.ones((1, 2), np.float32))
    assert not torchlite.is_anomaly_enabled()


class Abs(nn.Module):
    """y = |x| with the gradient written as x/|x|: finite forward, NaN gradient at 0."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.abs(x)

    def backward(self, g):
        (x,) = self.pop_saved()
        with np.errstate(all="ignore"):
            return g * x / np.abs(x)


def test_backward_anomaly_names_module():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Identity(), Abs()), nn.Linear(2, 1))
    m[0].weight.data[...] = 0.0
    m[0].bias.data[...] = 0.0
    y = m(np.ones((1, 2), np.float32))
    with torchlite.detect_anomaly(), pytest.raises(
            AnomalyError, match=r"Abs at '1\.1' \(Abs\(\)\) produced nan in its input gradient during backward"):
        m.backward(np.ones_like(y))


def test_nan_input_is_reported_as_input():
    with torchlite.detect_anomaly(), pytest.raises(AnomalyError, match="input given to Sequential"):
        model()(np.array([[np.nan, 1.0]], np.float32))


def test_off_by_default_and_decorator():
    m = model()
    m[0].weight.data[...] = -1.0
    m[0].bias.data[...] = 0.0
    out = m(np.ones((1, 2), np.float32))  # no check when off
    assert np.isnan(out).all()

    @torchlite.detect_anomaly()
    def run():
        return m(np.ones((1, 2), np.float32))

    with pytest.raises(AnomalyError):
        run()
    with torchlite.set_detect_anomaly(True):
        assert torchlite.is_anomaly_enabled()
    assert not torchlite.is_anomaly_enabled()

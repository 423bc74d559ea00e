"""Focused regressions for discrepancies with torch.nn.functional found by
tests/test_properties_functional.py, one test per fix, each against torch."""
import numpy as np
import pytest
import torch

import torchlite.nn.functional as F

TF = torch.nn.functional


def test_hardtanh_takes_equal_bounds_and_refuses_crossed_ones():
    x = np.array([-2.0, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(F.hardtanh(x, 0.5, 0.5), TF.hardtanh(torch.from_numpy(x), 0.5, 0.5).numpy())
    with pytest.raises(ValueError, match="cannot be greater"):
        TF.hardtanh(torch.from_numpy(x), 1.0, -1.0)
    with pytest.raises(ValueError, match="cannot be greater"):
        F.hardtanh(x, 1.0, -1.0)


def test_prelu_refuses_a_weight_of_more_than_one_dim():
    x, w = np.ones((2, 1)), np.full((1, 1), 0.25)
    with pytest.raises(RuntimeError, match="scalar or 1D"):
        TF.prelu(torch.from_numpy(x), torch.from_numpy(w))
    with pytest.raises(ValueError, match="scalar or 1D"):
        F.prelu(x, w)


def test_gumbel_softmax_hard_over_an_empty_dim_is_refused_as_torch():
    with pytest.raises(IndexError):
        TF.gumbel_softmax(torch.zeros(2, 0), hard=True)
    with pytest.raises(IndexError, match="empty"):
        F.gumbel_softmax(np.zeros((2, 0)), hard=True)
    assert F.gumbel_softmax(np.zeros((0, 3)), hard=True).shape == (0, 3)

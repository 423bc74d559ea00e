"""set_printoptions: torch's options and profiles, applied to the NumPy arrays torchlite's tensors are."""
import math

import numpy as np
import pytest
import torch

import torchlite


@pytest.fixture(autouse=True)
def restore():
    before = np.get_printoptions()
    yield
    np.set_printoptions(**before)
    torch.set_printoptions(profile="default")


def _numbers(text):
    """The numbers (and '...') of a printed tensor or array, in order."""
    if text.startswith("tensor("):
        text = text[len("tensor("):text.rindex(")")]
    return [t for t in text.replace("[", " ").replace("]", " ").replace(",", " ").split() if "=" not in t]


@pytest.mark.parametrize("kwargs", [dict(precision=2), dict(profile="short"), dict(precision=6),
                                    dict(profile="default"), dict(profile="full", precision=3)])
def test_precision_matches_torch(kwargs):
    values = np.array([1.123456789, -2.5, 0.333333333])
    torch.set_printoptions(**kwargs)
    torchlite.set_printoptions(**kwargs)
    assert _numbers(str(values)) == _numbers(repr(torch.tensor(values)))


@pytest.mark.parametrize("kwargs", [dict(threshold=5), dict(threshold=5, edgeitems=2), dict(profile="short"),
                                    dict(profile="full"), dict(threshold=math.inf)])
def test_summarization_matches_torch(kwargs):
    values = np.arange(2000)
    torch.set_printoptions(**kwargs)
    torchlite.set_printoptions(**kwargs)
    mine, theirs = _numbers(str(values)), _numbers(repr(torch.tensor(values)))
    assert mine == theirs


def test_sci_mode():
    values = np.array([1234.5, 0.001])
    torchlite.set_printoptions(precision=2, sci_mode=True)
    assert "1.23e+03" in repr(values) and "1.00e-03" in repr(values)
    torchlite.set_printoptions(sci_mode=False)
    assert "e" not in repr(np.array([1e-9, 1.0]))


def test_bad_profile_and_sci_mode_are_refused():
    with pytest.raises(ValueError, match="profile must be one of"):
        torchlite.set_printoptions(profile="long")
    with pytest.raises(ValueError, match="sci_mode must be"):
        torchlite.set_printoptions(sci_mode="yes")

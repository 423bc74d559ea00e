"""Every torchlite.nn class that torch also has takes torch's constructor arguments, in torch's order and names,
with torch's defaults, so positional calls and keywords written for torch mean the same here."""
import inspect

import pytest
import torch

import torchlite.nn as nn

# torch declares these as (*args, **kwargs) and ignores them; torchlite takes no arguments
NO_ARGUMENTS = {"LogSigmoid", "Sigmoid", "Softmax2d", "Softsign", "Tanh", "Tanhshrink", "Module"}

CLASSES = sorted(name for name in dir(nn) if isinstance(getattr(nn, name), type)
                 and issubclass(getattr(nn, name), nn.Module) and isinstance(getattr(torch.nn, name, None), type))


def _parameters(cls):
    return list(inspect.signature(cls.__init__).parameters)


@pytest.mark.parametrize("name", CLASSES)
def test_constructor_arguments_are_torchs(name):
    ours, theirs = _parameters(getattr(nn, name)), _parameters(getattr(torch.nn, name))
    if name in NO_ARGUMENTS:
        assert ours == ["self"] and theirs == ["self", "args", "kwargs"]
    else:
        assert ours == theirs


SIMPLE = (int, float, str, bool, type(None), tuple)


@pytest.mark.parametrize("name", CLASSES)
def test_constructor_defaults_are_torchs(name):
    ours = inspect.signature(getattr(nn, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
    for key, param in ours.items():
        if key not in theirs:
            continue
        mine, torchs = param.default, theirs[key].default
        assert (mine is inspect.Parameter.empty) == (torchs is inspect.Parameter.empty), key
        if isinstance(mine, SIMPLE) and isinstance(torchs, SIMPLE):
            assert (type(mine), mine) == (type(torchs), torchs), key

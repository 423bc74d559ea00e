"""torch's import paths under ``torch.nn.modules``: ``from torchlite.nn.modules.loss import _Loss``.

Each ``torchlite.nn.modules.<name>`` holds what torch keeps in ``torch.nn.modules.<name>``: the
names of the torchlite file with that content (private base classes such as ``_Loss`` included;
torch's ``batchnorm`` and ``instancenorm`` are in ``normalization``, ``rnn`` in ``recurrent``,
``sparse`` in ``embedding``, ``channelshuffle`` in ``pixelshuffle``), plus the layers torch files
there that torchlite keeps elsewhere (lazy layers, MultiheadAttention, ...). They are the same
objects. The package itself holds every layer, as ``torch.nn.modules`` does.
"""
import importlib
import sys
import types

from .. import *  # noqa: F401,F403
from ..module import Module  # noqa: F401

#: torch.nn.modules.<name> -> torchlite.nn.<file>
_FILES = {
    "activation": "activation", "adaptive": "adaptive", "batchnorm": "normalization",
    "channelshuffle": "pixelshuffle", "container": "container", "conv": "conv", "distance": "distance",
    "dropout": "dropout", "flatten": "flatten", "fold": "fold", "instancenorm": "normalization", "lazy": "lazy",
    "linear": "linear", "linear_cross_entropy": "linear_cross_entropy", "loss": "loss", "module": "module",
    "normalization": "normalization", "padding": "padding", "pixelshuffle": "pixelshuffle", "pooling": "pooling",
    "rnn": "recurrent", "sparse": "embedding", "transformer": "transformer", "upsampling": "upsampling",
}

#: layers torch keeps in torch.nn.modules.<name> that torchlite defines in another file
_ELSEWHERE = {
    "activation": ["MultiheadAttention"],
    "batchnorm": ["LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d"],
    "container": ["ParameterList", "ParameterDict"],
    "conv": ["LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
             "LazyConvTranspose3d"],
    "instancenorm": ["LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d"],
    "linear": ["LazyLinear"],
    "loss": ["LinearCrossEntropyLoss"],
    "pooling": ["FractionalMaxPool2d", "FractionalMaxPool3d"],
}


def _alias(name, file):
    source = importlib.import_module(f"torchlite.nn.{file}")
    alias = types.ModuleType(f"{__name__}.{name}", source.__doc__)
    alias.__dict__.update({k: v for k, v in vars(source).items() if not (k.startswith("__") and k.endswith("__"))})
    nn = sys.modules["torchlite.nn"]
    for layer in _ELSEWHERE.get(name, ()):
        setattr(alias, layer, getattr(nn, layer))
    return alias


for _name, _file in _FILES.items():
    sys.modules[f"{__name__}.{_name}"] = globals()[_name] = _alias(_name, _file)
del _name, _file

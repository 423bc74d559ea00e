"""Layers, losses, containers and the functional API.

Each file holds one family of layers; its ``__all__`` lists what it exports here.
"""
from .parameter import Buffer, Parameter
from .module import IncompatibleKeys, Module, StateDictError
from .container import ModuleDict, ModuleList, Sequential
from .parameter_containers import *  # noqa: F401,F403
from . import functional, init
from .hooks import RemovableHandle
from .linear import *  # noqa: F401,F403
from .flatten import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .linear_cross_entropy import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .fractional_pooling import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .lazy import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .pixelshuffle import *  # noqa: F401,F403
from .fold import *  # noqa: F401,F403
from .adaptive import *  # noqa: F401,F403
from . import utils  # noqa: E402


def __getattr__(name):
    """``nn.SyncBatchNorm`` as in torch (it lives in torchlite.distributed, which imports nn), and
    ``nn.modules`` (torch's import paths), loaded on first use."""
    if name == "SyncBatchNorm":
        from ..distributed import SyncBatchNorm
        return SyncBatchNorm
    if name == "modules":
        import importlib
        return importlib.import_module(".modules", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Stateless math: each forward op beside its ``*_backward`` twin.

One file per family (activation, loss, conv, pooling, ...); everything is re-exported here,
so ``import torchlite.nn.functional as F`` gives ``F.relu``, ``F.conv2d``, ``F.conv2d_backward``.
"""
from .activation import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .linear_cross_entropy import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .fractional_pooling import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .pixelshuffle import *  # noqa: F401,F403
from .fold import *  # noqa: F401,F403
from .vision import *  # noqa: F401,F403

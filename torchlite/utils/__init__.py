"""torch's paths for what torchlite keeps elsewhere: ``torchlite.utils.data`` is ``torchlite.data``
(the same module), so ``from torchlite.utils.data import DataLoader`` works as in torch."""
import sys

from .. import data

sys.modules[__name__ + ".data"] = data

__all__ = ["data"]

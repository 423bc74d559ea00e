"""torchlite: a PyTorch-style neural-network framework on NumPy and SciPy, without autograd.

Every layer is a ``Module`` with an explicit ``forward`` and ``backward``; optimizers step over
``module.parameters()``; ``state_dict`` keys match torch's; checkpoints are ``.npz`` files.
"""
from ._malloc import tune_malloc as _tune_malloc
from ._dtype import get_default_dtype, set_default_dtype
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .random import get_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .serialization import CheckpointError, load, save
from ._printing import set_printoptions
from ._threads import (are_deterministic_algorithms_enabled, get_num_threads,
                       is_deterministic_algorithms_warn_only_enabled, set_num_threads, use_deterministic_algorithms)
from . import nn  # noqa: E402  (nn needs the pieces above)
from .nn import Module, Parameter
from . import data, func, optim, utils  # noqa: E402

__version__ = "0.1.0"

_tune_malloc()  # reuse freed activation memory instead of page-faulting it in every step

__all__ = [
    "Module", "Parameter", "nn", "optim", "data", "no_grad", "enable_grad", "inference_mode", "set_grad_enabled",
    "is_grad_enabled", "func", "save", "load", "CheckpointError", "manual_seed", "seed", "initial_seed",
    "get_generator", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "AnomalyError", "get_rng_state",
    "set_rng_state", "set_default_dtype", "get_default_dtype",
    "set_num_threads", "get_num_threads", "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
    "is_deterministic_algorithms_warn_only_enabled", "set_printoptions",
]

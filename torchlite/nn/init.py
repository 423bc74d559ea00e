"""Parameter initialisation, as ``torch.nn.init``: every function fills its argument in place.

Each accepts a Parameter or an ndarray, draws from ``torchlite.random.get_generator()`` (so
``manual_seed`` repeats it) and returns its argument. Fans follow torch: for a weight of shape
(out, in, *kernel), fan_in = in * prod(kernel) and fan_out = out * prod(kernel).
"""
import math
import warnings

import numpy as np

from ..random import get_generator
from .parameter import Parameter

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
    "orthogonal_", "sparse_", "lecun_uniform_", "lecun_normal_",
    "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform",
    "kaiming_normal", "orthogonal", "sparse",
]


def _array(tensor):
    arr = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"init: expected a Parameter or ndarray, got {type(tensor).__name__}")
    return arr


def _fill(tensor, values):
    arr = _array(tensor)
    arr[...] = values
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (torch's table)."""
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    arr = _array(tensor)
    if arr.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = int(np.prod(arr.shape[2:])) if arr.ndim > 2 else 1
    return arr.shape[1] * receptive, arr.shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    arr = _array(tensor)
    rng = generator or get_generator()
    return _fill(tensor, rng.uniform(a, b, arr.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    arr = _array(tensor)
    rng = generator or get_generator()
    return _fill(tensor, rng.normal(mean, std, arr.shape))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std) truncated to [a, b] (absolute bounds, as torch), by inverse CDF."""
    from scipy.special import erf, erfinv

    arr = _array(tensor)
    rng = generator or get_generator()
    lo = 0.5 * (1 + erf((a - mean) / std / math.sqrt(2.0)))
    hi = 0.5 * (1 + erf((b - mean) / std / math.sqrt(2.0)))
    u = rng.uniform(2 * lo - 1, 2 * hi - 1, arr.shape)
    values = erfinv(u) * std * math.sqrt(2.0) + mean
    return _fill(tensor, np.clip(values, a, b))


def constant_(tensor, val):
    return _fill(tensor, val)


def ones_(tensor):
    return _fill(tensor, 1.0)


def zeros_(tensor):
    return _fill(tensor, 0.0)


def eye_(tensor):
    arr = _array(tensor)
    if arr.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(tensor, np.eye(*arr.shape))


def dirac_(tensor, groups=1):
    """Identity-preserving init for conv weights of shape (out, in, *kernel)."""
    arr = _array(tensor)
    if arr.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if arr.shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = arr.shape[0] // groups
    min_dim = min(out_per_group, arr.shape[1])
    arr[...] = 0
    center = tuple(k // 2 for k in arr.shape[2:])
    for g in range(groups):
        for d in range(min_dim):
            arr[(g * out_per_group + d, d) + center] = 1
    return tensor


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    arr = _array(tensor)
    if 0 in arr.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    arr = _array(tensor)
    if 0 in arr.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def lecun_uniform_(tensor, generator=None):
    """U(-b, b) with b = sqrt(3 / fan_in): unit variance for linear layers (SELU networks)."""
    fan_in, _ = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0 / fan_in)
    return uniform_(tensor, -bound, bound, generator)


def lecun_normal_(tensor, generator=None):
    """N(0, 1 / fan_in), truncated at two standard deviations like common LeCun-normal initialisers."""
    fan_in, _ = _calculate_fan_in_and_fan_out(tensor)
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978  # std of a N(0,1) truncated to [-2, 2]
    return trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std, generator)


def orthogonal_(tensor, gain=1, generator=None):
    arr = _array(tensor)
    if arr.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if arr.size == 0:
        return tensor
    rows, cols = arr.shape[0], arr.size // arr.shape[0]
    rng = generator or get_generator()
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(arr.shape))


def sparse_(tensor, sparsity, std=0.01, generator=None):
    arr = _array(tensor)
    if arr.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = arr.shape
    rng = generator or get_generator()
    num_zeros = int(math.ceil(sparsity * rows))
    arr[...] = rng.normal(0, std, arr.shape)
    for c in range(cols):
        arr[rng.permutation(rows)[:num_zeros], c] = 0
    return tensor


def _deprecated(new):
    """torch's deprecated name without the underscore: warns as torch, then calls ``new``."""
    old = new.__name__[:-1]

    def deprecated_init(*args, **kwargs):
        warnings.warn(f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new.__name__}`.", FutureWarning,
                      stacklevel=2)
        return new(*args, **kwargs)

    deprecated_init.__name__ = deprecated_init.__qualname__ = old
    deprecated_init.__doc__ = f"Deprecated alias of ``{new.__name__}`` (torch's FutureWarning)."
    return deprecated_init


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)

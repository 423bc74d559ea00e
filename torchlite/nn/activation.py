"""Activation layers: thin wrappers around ``torchlite.nn.functional.activation``.

Every layer takes any input shape ``(*)`` and returns the same shape (Softmax and friends
normalize along ``dim``). Each forward keeps the one array its backward reads: the output
where the gradient can be told from it (ReLU, Sigmoid, Tanh, Softmax, ...), which is alive
anyway in the next layer, else the input. ``inplace=True`` overwrites the input array as torch
does; where backward then needs the original input, the layer keeps a copy of it first.
"""
import warnings

import numpy as np

from ..grad_mode import is_grad_enabled
from .._dtype import get_default_dtype
from . import functional as F
from ._checks import IndexRangeError, as_float_input, shape_error
from .functional.activation import (SELU_ALPHA, _as_float, _check_rrelu_bounds, _glu, _log_softmax, _rrelu,
                                    _softmax, _softmax_dim, _softmin)
from .module import Module, _check_device
from .parameter import Parameter

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "CELU", "SELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
    "Hardtanh", "Hardsigmoid", "Hardswish", "Softplus", "Softsign", "Tanhshrink", "Softshrink",
    "Hardshrink", "LogSigmoid", "PReLU", "Threshold", "Softmax", "LogSoftmax", "Softmin", "Softmax2d", "GLU",
    "RReLU",
]


def _inplace_repr(inplace, prefix=""):
    return f"{prefix}inplace=True" if inplace else ""


def _input_copy_if(overwrite, x):
    """The input as backward will read it: a copy when forward is about to overwrite it."""
    return x.copy() if overwrite and is_grad_enabled() else x


class _InplaceActivation(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class ReLU(_InplaceActivation):
    """max(x, 0) elementwise. Shape: any ``(*)`` in and out."""

    def forward(self, input):
        return self.forward_overwriting(input, self.inplace)

    def forward_overwriting(self, input, overwrite):
        """forward, overwriting ``input`` when ``overwrite`` (Sequential does on arrays only it holds)."""
        out = F.relu(input, overwrite)
        self.save_for_backward(out)
        return out

    def backward(self, grad_output):
        (out,) = self.pop_saved()
        return F.relu_backward(grad_output, out)


class Hardtanh(Module):
    """x clipped to ``[min_val, max_val]``. Shape: any ``(*)`` in and out."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None):
        super().__init__()
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning,
                          stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning,
                          stacklevel=2)
            max_val = max_value
        if not max_val > min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input):
        out = F.hardtanh(input, self.min_val, self.max_val, self.inplace)
        self.save_for_backward(out)
        return out

    def backward(self, grad_output):
        (out,) = self.pop_saved()
        return F.hardtanh_backward(grad_output, out, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + _inplace_repr(self.inplace, ", ")


class ReLU6(Hardtanh):
    """min(max(x, 0), 6) elementwise. Shape: any ``(*)`` in and out."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class LeakyReLU(Module):
    """x if x > 0 else ``negative_slope * x``. Shape: any ``(*)`` in and out."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        x = _as_float(input)
        # with a slope >= 0 the output keeps the input's signs, so in-place needs no copy
        self.save_for_backward(_input_copy_if(self.inplace and self.negative_slope < 0, x))
        return F.leaky_relu(x, self.negative_slope, self.inplace)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return F.leaky_relu_backward(grad_output, x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + _inplace_repr(self.inplace, ", ")


class _ELUBase(Module):
    """Shared forward/backward of ELU, CELU and SELU: the in-place form reads its output, as torch."""

    def _forward(self, x, fn, *args):
        from_output = self.inplace and self._alpha() >= 0
        saved = x if from_output else _input_copy_if(self.inplace, x)
        out = fn(x, *args, inplace=self.inplace)
        self.save_for_backward(out if from_output else saved, from_output)
        return out

    def _alpha(self):
        return self.alpha


class ELU(_ELUBase):
    """x if x > 0 else ``alpha * (exp(x) - 1)``. Shape: any ``(*)`` in and out."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return self._forward(_as_float(input), F.elu, self.alpha)

    def backward(self, grad_output):
        x, is_result = self.pop_saved()
        return F.elu_backward(grad_output, x, self.alpha, is_result)

    def extra_repr(self):
        return f"alpha={self.alpha}" + _inplace_repr(self.inplace, ", ")


class CELU(ELU):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)). Shape: any ``(*)`` in and out."""

    def forward(self, input):
        return self._forward(_as_float(input), F.celu, self.alpha)

    def backward(self, grad_output):
        x, is_result = self.pop_saved()
        return F.celu_backward(grad_output, x, self.alpha, is_result)


class SELU(_ELUBase):
    """scale * ELU(x, alpha) with torch's fixed alpha and scale. Shape: any ``(*)`` in and out."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def _alpha(self):
        return SELU_ALPHA

    def forward(self, input):
        return self._forward(_as_float(input), F.selu)

    def backward(self, grad_output):
        x, is_result = self.pop_saved()
        return F.selu_backward(grad_output, x, is_result)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class GELU(Module):
    """x * Phi(x); ``approximate='tanh'`` uses the tanh formula. Shape: any ``(*)`` in and out."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        x = _as_float(input)
        self.save_for_backward(x)
        return F.gelu(x, self.approximate)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return F.gelu_backward(grad_output, x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class _InputActivation(_InplaceActivation):
    """An activation whose backward reads the input (copied first when computing in place)."""

    _fn = _grad_fn = None

    def forward(self, input):
        x = _as_float(input)
        self.save_for_backward(_input_copy_if(self.inplace, x))
        return type(self)._fn(x, inplace=self.inplace)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return type(self)._grad_fn(grad_output, x)


class SiLU(_InputActivation):
    """x * sigmoid(x). Shape: any ``(*)`` in and out."""

    _fn, _grad_fn = F.silu, F.silu_backward


class Mish(_InputActivation):
    """x * tanh(softplus(x)). Shape: any ``(*)`` in and out."""

    _fn, _grad_fn = F.mish, F.mish_backward


class Hardsigmoid(_InputActivation):
    """relu6(x + 3) / 6. Shape: any ``(*)`` in and out."""

    _fn, _grad_fn = F.hardsigmoid, F.hardsigmoid_backward

    def extra_repr(self):
        return ""  # torch prints Hardsigmoid() even in place


class Hardswish(_InputActivation):
    """x * relu6(x + 3) / 6. Shape: any ``(*)`` in and out."""

    _fn, _grad_fn = F.hardswish, F.hardswish_backward

    def extra_repr(self):
        return ""  # torch prints Hardswish() even in place


class Sigmoid(Module):
    """1 / (1 + exp(-x)). Shape: any ``(*)`` in and out."""

    def forward(self, input):
        out = F.sigmoid(input)
        self.save_for_backward(out)
        return out

    def backward(self, grad_output):
        (out,) = self.pop_saved()
        return F.sigmoid_backward(grad_output, out)


class Tanh(Module):
    """tanh(x). Shape: any ``(*)`` in and out."""

    def forward(self, input):
        out = F.tanh(input)
        self.save_for_backward(out)
        return out

    def backward(self, grad_output):
        (out,) = self.pop_saved()
        return F.tanh_backward(grad_output, out)


class _PlainActivation(Module):
    """A stateless activation whose backward reads the input."""

    _fn = _grad_fn = None

    def forward(self, input):
        x = _as_float(input)
        self.save_for_backward(x)
        return type(self)._fn(x)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return type(self)._grad_fn(grad_output, x)


class Softsign(_PlainActivation):
    """x / (1 + |x|). Shape: any ``(*)`` in and out."""

    _fn, _grad_fn = F.softsign, F.softsign_backward


class Tanhshrink(_PlainActivation):
    """x - tanh(x). Shape: any ``(*)`` in and out."""

    _fn, _grad_fn = F.tanhshrink, F.tanhshrink_backward


class LogSigmoid(_PlainActivation):
    """log(sigmoid(x)), finite for any x. Shape: any ``(*)`` in and out."""

    _fn, _grad_fn = F.logsigmoid, F.logsigmoid_backward


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold. Shape: any ``(*)`` in and out."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        x = _as_float(input)
        self.save_for_backward(x)
        return F.softplus(x, self.beta, self.threshold)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return F.softplus_backward(grad_output, x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softshrink(Module):
    """x - lambd if x > lambd, x + lambd if x < -lambd, else 0. Shape: any ``(*)`` in and out."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        if self.lambd < 0:
            raise ValueError(f"{self!r}: expected lambd >= 0, got {self.lambd}")
        x = _as_float(input)
        self.save_for_backward(x)
        return F.softshrink(x, self.lambd)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return F.softshrink_backward(grad_output, x, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Hardshrink(Softshrink):
    """x where |x| > lambd, else 0. Shape: any ``(*)`` in and out."""

    def forward(self, input):
        x = _as_float(input)
        self.save_for_backward(x)
        return F.hardshrink(x, self.lambd)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return F.hardshrink_backward(grad_output, x, self.lambd)


class Threshold(Module):
    """x if x > threshold else value. Shape: any ``(*)`` in and out."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input):
        x = _as_float(input)
        # with value <= threshold the output tells which entries passed, so in-place needs no copy
        self.save_for_backward(_input_copy_if(self.inplace and self.value > self.threshold, x))
        return F.threshold(x, self.threshold, self.value, self.inplace)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return F.threshold_backward(grad_output, x, self.threshold)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + _inplace_repr(self.inplace, ", ")


class PReLU(Module):
    """x if x > 0 else ``weight * x``, with one learned slope per channel or one shared slope.

    Shape: any ``(*)`` in and out. With ``num_parameters > 1`` channels are dim 1, as in torch:
    input ``(N, num_parameters, *)``.
    Attributes: ``weight`` of shape ``(num_parameters,)``, filled with ``init``.
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(np.empty(num_parameters, dtype=dtype or get_default_dtype()))
        self.reset_parameters()

    def reset_parameters(self):
        self.weight.data.fill(self.init)

    def forward(self, input):
        x = as_float_input(self, input, self.weight.dtype)
        if self.num_parameters != 1 and (x.ndim < 2 or x.shape[1] != self.num_parameters):
            raise shape_error(self, f"(N, {self.num_parameters}, *) (channels in dim 1)", x)
        self.save_for_backward(x)
        return F.prelu(x, self.weight.data)

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        dx, dw = F.prelu_backward(grad_output, x, self.weight.data)
        self.weight.accumulate_grad(dw)
        return dx

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim``. Shape: any ``(*)`` in and out.

    ``dim=None`` follows torch's deprecated implicit rule (dim 0 for 0-, 1- and 3-D input,
    else 1) with torch's warning.
    """

    _name = "softmax"
    _fn, _grad_fn = _softmax, F.softmax_backward

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        x = _as_float(input)
        try:
            dim = _softmax_dim(self._name, self.dim, x.ndim, stacklevel=4)
        except IndexRangeError as e:
            raise IndexRangeError(f"{self!r}: {e}") from None
        out = type(self)._fn(x, dim)
        self.save_for_backward(out, dim)
        return out

    def backward(self, grad_output):
        out, dim = self.pop_saved()
        return type(self)._grad_fn(grad_output, out, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """x - logsumexp(x) along ``dim``. Shape: any ``(*)`` in and out; ``dim=None`` as Softmax."""

    _name = "log_softmax"
    _fn, _grad_fn = _log_softmax, F.log_softmax_backward


class Softmin(Softmax):
    """softmax(-x) along ``dim``. Shape: any ``(*)`` in and out; ``dim=None`` as Softmax."""

    _name = "softmin"
    _fn, _grad_fn = _softmin, F.softmin_backward


class Softmax2d(Module):
    """Softmax over the channels at every spatial location.

    Shape: input (N, C, H, W) or (C, H, W), output the same (softmax along dim -3).
    """

    def forward(self, input):
        x = _as_float(input)
        if x.ndim not in (3, 4):
            raise ValueError(f"{self!r}: expected input to be 3D or 4D, (N, C, H, W) or (C, H, W), "
                             f"got {x.ndim}D shape {x.shape}")
        out = _softmax(x, x.ndim - 3)
        self.save_for_backward(out)
        return out

    def backward(self, grad_output):
        (out,) = self.pop_saved()
        return F.softmax_backward(grad_output, out, -3)


class GLU(Module):
    """Gated linear unit: a * sigmoid(b), a and b the halves of the input along ``dim``.

    Shape: input (*, 2M, *) with an even size along ``dim``, output (*, M, *).
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        x = _as_float(input)
        out = _glu(x, self.dim, repr(self))
        self.save_for_backward(x)
        return out

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return F.glu_backward(grad_output, x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class RReLU(Module):
    """Randomized leaky ReLU: x if x > 0 else a * x.

    In training a ~ U(lower, upper) is drawn per element from ``torchlite.random.get_generator()``
    (so ``manual_seed`` repeats it); in eval a = (lower + upper) / 2. Shape: any ``(*)`` in and out.
    Backward multiplies by the slopes the matching forward used.
    """

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input):
        x = _as_float(input)
        if not is_grad_enabled() and not self.training:
            _check_rrelu_bounds(self.lower, self.upper, repr(self))
            return F.leaky_relu(x, (self.lower + self.upper) / 2, self.inplace)
        out, noise = _rrelu(x, self.lower, self.upper, self.training, self.inplace, repr(self))
        self.save_for_backward(noise)
        return out

    def backward(self, grad_output):
        (noise,) = self.pop_saved()
        return F.rrelu_backward(grad_output, noise)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + _inplace_repr(self.inplace, ", ")

"""Activation functions, each beside its ``*_backward`` twin.

Every function is elementwise (any input shape) unless it takes a ``dim``. A backward twin
takes ``grad_output`` and what its forward kept: the input or the output, as its signature
says, and returns dLoss/dInput in the input's dtype. Formulas, boundaries (the gradient at
exactly 0, 6 or ``threshold``) and constants are torch's. Exponentials only ever see
arguments <= 0 (or go through scipy.special's stable functions), so inputs of +-1000 give
neither overflow nor NaN in float32 or float64.

Speed: these run on every training step, so the code writes into arrays it has just
allocated (``out=``) and multiplies by boolean masks instead of ``np.where`` (a masked
multiply is several times faster on mixed signs).
"""
import math
import warnings

import numpy as np
from ..._scipy import special

from ..._dtype import get_default_dtype
from ...random import get_generator
from .._checks import IndexRangeError, zero_d_safe
from ._relu_kernel import relu_backward_into, relu_into

__all__ = [
    "relu", "relu_backward", "relu6", "relu6_backward", "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward", "celu", "celu_backward", "selu", "selu_backward", "gelu", "gelu_backward",
    "silu", "silu_backward", "mish", "mish_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "hardtanh", "hardtanh_backward", "hardsigmoid", "hardsigmoid_backward", "hardswish", "hardswish_backward",
    "softplus", "softplus_backward", "softsign", "softsign_backward", "tanhshrink", "tanhshrink_backward",
    "softshrink", "softshrink_backward", "hardshrink", "hardshrink_backward", "logsigmoid", "logsigmoid_backward",
    "prelu", "prelu_backward", "threshold", "threshold_backward", "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward", "softmin", "softmin_backward", "rrelu", "rrelu_backward",
    "glu", "glu_backward", "gumbel_softmax", "gumbel_softmax_backward",
    "relu_", "elu_", "leaky_relu_", "hardtanh_", "threshold_", "selu_", "celu_", "rrelu_",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_BETA = math.sqrt(2.0 / math.pi)
_GELU_TANH_KAPPA = 0.044715


def _as_float(x):
    """``x`` as a floating ndarray: floating arrays pass through, anything else becomes the default dtype."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(get_default_dtype())


def _grad(grad_output, like):
    return np.asarray(grad_output, dtype=like.dtype)


def _out(x, inplace):
    """Where a forward writes its result: the input itself when ``inplace``, else a new array."""
    return x if inplace else None


def _mask(cond, dtype):
    """A boolean mask as 0/1 in ``dtype`` (bool times a python float would make float64)."""
    return cond.astype(dtype)


# ----------------------------------------------------------------------------- ReLU family
def relu(input, inplace=False):
    """max(x, 0)."""
    x = _as_float(input)
    return relu_into(x, x if inplace else np.empty_like(x))


def relu_backward(grad_output, output):
    """dx = grad where the output is not <= 0 (0 at x == 0; a NaN output passes it, as torch)."""
    g = _grad(grad_output, output)
    if g.shape != output.shape:
        return np.multiply(g, ~(output <= 0))
    return relu_backward_into(g, output, np.empty_like(output))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val]."""
    if min_val > max_val:  # equal bounds are a constant, as torch's functional takes them
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    x = _as_float(input)
    return np.clip(x, min_val, max_val, out=_out(x, inplace))


def hardtanh_backward(grad_output, input, min_val=-1.0, max_val=1.0):
    """dx = grad where min_val < x < max_val; ``input`` may be the output (the same entries are inside)."""
    g = _grad(grad_output, input)
    inside = input > min_val
    inside &= input < max_val
    return np.multiply(g, inside)


def relu6(input, inplace=False):
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def relu6_backward(grad_output, output):
    """dx = grad where 0 < x < 6 (read from the output)."""
    return hardtanh_backward(grad_output, output, 0.0, 6.0)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope * x."""
    x = _as_float(input)
    return _two_slopes(x, negative_slope, inplace)


def _two_slopes(x, slope, inplace=False):
    """max(x, 0) + slope * min(x, 0): x where x > 0, slope * x elsewhere, with no select (and right at +-inf)."""
    neg = np.minimum(x, 0)
    neg *= slope
    out = np.maximum(x, 0, out=_out(x, inplace))
    out += neg
    return out


def leaky_relu_backward(grad_output, input, negative_slope=0.01):
    """dx = grad if x > 0 else negative_slope * grad.

    ``input`` may be the output when ``negative_slope >= 0`` (then signs are kept).
    """
    g = _grad(grad_output, input)
    scale = _mask(input > 0, input.dtype)
    scale *= 1 - negative_slope
    scale += negative_slope
    return np.multiply(g, scale, out=scale)


def threshold(input, threshold, value, inplace=False):
    """x if x > threshold else value."""
    x = _as_float(input)
    replace = x <= threshold
    out = x if inplace else x.copy()
    np.copyto(out, value, where=replace, casting="unsafe")
    return out


def threshold_backward(grad_output, input, threshold):
    """dx = grad where x > threshold; ``input`` may be the output when value <= threshold."""
    g = _grad(grad_output, input)
    return np.multiply(g, input > threshold)


# ----------------------------------------------------------------------------- exponential units
def _elu(x, alpha, scale, input_scale, inplace):
    # scale * max(x, 0) + alpha * scale * expm1(input_scale * min(x, 0)): both branches with no select,
    # and expm1 only sees arguments <= 0, so it cannot overflow.
    neg = np.minimum(x, 0)
    if input_scale != 1.0:
        neg *= input_scale
    np.expm1(neg, out=neg)
    neg *= alpha * scale
    out = np.maximum(x, 0, out=_out(x, inplace))
    if scale != 1.0:
        out *= scale
    out += neg
    return out


def _elu_backward(grad_output, x, alpha, scale, input_scale, is_result):
    # torch: x <= 0 -> grad * input_scale * alpha * scale * exp(input_scale * x)
    #                 (from the output: grad * input_scale * (y + alpha * scale)); x > 0 -> grad * scale
    g = _grad(grad_output, x)
    nonpos = x <= 0
    factor = np.minimum(x, 0)
    if is_result:
        factor += alpha * scale
    else:
        if input_scale != 1.0:
            factor *= input_scale
        np.exp(factor, out=factor)
        factor *= alpha * scale
    if input_scale != 1.0:
        factor *= input_scale
    factor *= nonpos
    positive = ~nonpos
    factor += _mask(positive, x.dtype) * scale if scale != 1.0 else positive
    return np.multiply(g, factor, out=factor)


def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _elu(_as_float(input), alpha, 1.0, 1.0, inplace)


def elu_backward(grad_output, x, alpha=1.0, is_result=False):
    """dx of ELU; ``x`` is forward's input, or its output when ``is_result`` (needs alpha >= 0)."""
    return _elu_backward(grad_output, x, alpha, 1.0, 1.0, is_result)


def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0")
    return _elu(_as_float(input), alpha, 1.0, 1.0 / alpha, inplace)


def celu_backward(grad_output, x, alpha=1.0, is_result=False):
    """dx of CELU; ``x`` is forward's input, or its output when ``is_result``."""
    return _elu_backward(grad_output, x, alpha, 1.0, 1.0 / alpha, is_result)


def selu(input, inplace=False):
    """scale * (max(0, x) + min(0, alpha * (exp(x) - 1))) with torch's alpha and scale."""
    return _elu(_as_float(input), SELU_ALPHA, SELU_SCALE, 1.0, inplace)


def selu_backward(grad_output, x, is_result=False):
    """dx of SELU; ``x`` is forward's input, or its output when ``is_result``."""
    return _elu_backward(grad_output, x, SELU_ALPHA, SELU_SCALE, 1.0, is_result)


# ----------------------------------------------------------------------------- smooth gates
def _check_approximate(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _gelu_tanh_inner(x):
    inner = np.multiply(x, x)
    inner *= _GELU_TANH_KAPPA
    inner *= x
    inner += x
    inner *= _GELU_TANH_BETA
    return inner


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` uses torch's tanh formula."""
    _check_approximate(approximate)
    x = _as_float(input)
    if approximate == "tanh":
        t = np.tanh(_gelu_tanh_inner(x))
    else:
        t = np.multiply(x, _SQRT1_2)
        special.erf(t, out=t)
    t += 1
    t *= 0.5
    t *= x
    return t


def gelu_backward(grad_output, input, approximate="none"):
    """dx = grad * (Phi(x) + x * phi(x)) (or the derivative of the tanh formula)."""
    _check_approximate(approximate)
    x = input
    g = _grad(grad_output, x)
    if approximate == "tanh":
        t = np.tanh(_gelu_tanh_inner(x))
        # 0.5 * (1 + t) + 0.5 * x * (1 - t^2) * beta * (1 + 3 kappa x^2)
        d_inner = np.multiply(x, x)
        d_inner *= 3 * _GELU_TANH_KAPPA * _GELU_TANH_BETA
        d_inner += _GELU_TANH_BETA
        sech2 = np.multiply(t, t)
        np.subtract(1, sech2, out=sech2)
        d_inner *= sech2
        d_inner *= x
        t += 1
        t += d_inner
        t *= 0.5
        t *= g
        return t
    pdf = np.multiply(x, x)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI
    pdf *= x
    cdf = np.multiply(x, _SQRT1_2)
    special.erf(cdf, out=cdf)
    cdf += 1
    cdf *= 0.5
    cdf += pdf
    cdf *= g
    return cdf


def sigmoid(input):
    """1 / (1 + exp(-x)), computed stably."""
    return special.expit(_as_float(input))


def sigmoid_backward(grad_output, output):
    """dx = grad * y * (1 - y) from the output y."""
    g = _grad(grad_output, output)
    d = np.subtract(1, output)
    d *= output
    d *= g
    return d


def tanh(input):
    """tanh(x)."""
    return np.tanh(_as_float(input))


def tanh_backward(grad_output, output):
    """dx = grad * (1 - y^2) from the output y."""
    g = _grad(grad_output, output)
    d = np.multiply(output, output)
    np.subtract(1, d, out=d)
    d *= g
    return d


def silu(input, inplace=False):
    """x * sigmoid(x)."""
    x = _as_float(input)
    return np.multiply(x, special.expit(x), out=_out(x, inplace))


def silu_backward(grad_output, input):
    """dx = grad * s * (1 + x * (1 - s)), s = sigmoid(x)."""
    x = input
    g = _grad(grad_output, x)
    s = special.expit(x)
    d = np.subtract(1, s)
    d *= x
    d += 1
    d *= s
    d *= g
    return d


def _softplus1(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), finite for any x."""
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    t += np.maximum(x, 0)
    return t


def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    x = _as_float(input)
    t = np.tanh(_softplus1(x))
    return np.multiply(x, t, out=_out(x, inplace))


def mish_backward(grad_output, input):
    """dx = grad * (t + x * sigmoid(x) * (1 - t^2)), t = tanh(softplus(x))."""
    x = input
    g = _grad(grad_output, x)
    t = np.tanh(_softplus1(x))
    d = np.multiply(t, t)
    np.subtract(1, d, out=d)
    d *= special.expit(x)
    d *= x
    d += t
    d *= g
    return d


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta; x itself where beta * x > threshold."""
    x = _as_float(input)
    bx = np.multiply(x, beta)
    linear = bx > threshold
    out = _softplus1(bx)
    if beta != 1.0:
        out /= beta
    np.copyto(out, x, where=linear)
    return out


def softplus_backward(grad_output, input, beta=1.0, threshold=20.0):
    """dx = grad * sigmoid(beta * x), or grad where beta * x > threshold."""
    x = input
    g = _grad(grad_output, x)
    bx = np.multiply(x, beta)
    linear = bx > threshold
    d = special.expit(bx)
    d *= ~linear
    d += linear
    d *= g
    return d


def softsign(input):
    """x / (1 + |x|)."""
    x = _as_float(input)
    d = np.abs(x)
    d += 1
    return np.divide(x, d, out=d)


def softsign_backward(grad_output, input):
    """dx = grad / (1 + |x|)^2."""
    g = _grad(grad_output, input)
    d = np.abs(input)
    d += 1
    np.multiply(d, d, out=d)
    return np.divide(g, d, out=d)


def tanhshrink(input):
    """x - tanh(x)."""
    x = _as_float(input)
    return np.subtract(x, np.tanh(x))


def tanhshrink_backward(grad_output, input):
    """dx = grad * tanh(x)^2."""
    g = _grad(grad_output, input)
    t = np.tanh(input)
    np.multiply(t, t, out=t)
    t *= g
    return t


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    x = _as_float(input)
    out = np.add(x, 3, out=_out(x, inplace))
    np.clip(out, 0, 6, out=out)
    out /= 6
    return out


def hardsigmoid_backward(grad_output, input):
    """dx = grad / 6 where -3 < x < 3."""
    g = _grad(grad_output, input)
    inside = input > -3
    inside &= input < 3
    d = np.multiply(g, inside)
    d /= 6
    return d


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6."""
    x = _as_float(input)
    t = np.add(x, 3)
    np.clip(t, 0, 6, out=t)
    out = np.multiply(x, t, out=_out(x, inplace))
    out /= 6
    return out


def hardswish_backward(grad_output, input):
    """dx = 0 for x <= -3, grad * (x / 3 + 1/2) for -3 < x < 3, grad for x >= 3 (torch's boundaries)."""
    x = input
    g = _grad(grad_output, x)
    middle = x > -3
    middle &= x < 3
    d = np.divide(x, 3)
    d += 0.5
    d *= middle
    d += x >= 3
    d *= g
    return d


def softshrink(input, lambd=0.5):
    """x - lambd if x > lambd, x + lambd if x < -lambd, else 0."""
    if lambd < 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    x = _as_float(input)
    # x - clip(x, -lambd, lambd) is exactly the three branches
    return np.subtract(x, np.clip(x, -lambd, lambd))


def softshrink_backward(grad_output, input, lambd=0.5):
    """dx = grad where |x| > lambd."""
    g = _grad(grad_output, input)
    return np.multiply(g, np.abs(input) > lambd)


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    x = _as_float(input)
    return np.multiply(x, _shrink_mask(x, lambd))


def hardshrink_backward(grad_output, input, lambd=0.5):
    """dx = grad where |x| > lambd (where x < -lambd or x > lambd, for any sign of lambd)."""
    g = _grad(grad_output, input)
    return np.multiply(g, _shrink_mask(input, lambd))


def _shrink_mask(x, lambd):
    keep = x < -lambd
    keep |= x > lambd
    return keep


def logsigmoid(input):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), finite for any x."""
    x = _as_float(input)
    t = np.abs(x)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    return np.subtract(np.minimum(x, 0), t, out=t)


def logsigmoid_backward(grad_output, input):
    """dx = grad * sigmoid(-x)."""
    g = _grad(grad_output, input)
    d = special.expit(np.negative(input))
    d *= g
    return d


# ----------------------------------------------------------------------------- PReLU
def _prelu_weight(x, weight):
    """Weight shaped to broadcast along the channel dim (dim 1; no channel dim below 2-D)."""
    w = np.asarray(weight, dtype=x.dtype)
    if w.ndim > 1:
        raise ValueError(f"prelu: expected weight to be a scalar or 1D array, got shape {w.shape}")
    w = w.reshape(-1)
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.size != 1 and w.size != channels:
        raise ValueError(f"prelu: expected {channels} or 1 weights for the channel dim of input shape {x.shape} "
                         f"(channels are dim 1; inputs below 2-D have 1 channel), got {w.size}")
    if w.size == 1 or x.ndim < 2:
        return w.reshape(())
    return w.reshape((channels,) + (1,) * (x.ndim - 2))


def prelu(input, weight):
    """x if x > 0 else weight * x, one weight per channel (dim 1) or one shared weight."""
    x = _as_float(input)
    return _two_slopes(x, _prelu_weight(x, weight))


def prelu_backward(grad_output, input, weight):
    """Returns (grad_input, grad_weight); grad_weight has weight's shape."""
    x = input
    g = _grad(grad_output, x)
    w = _prelu_weight(x, weight)
    neg = x <= 0
    dx = np.multiply(g, neg)
    dw_full = np.multiply(dx, x)
    dx *= w - 1
    dx += g
    if w.ndim == 0:
        dw = dw_full.sum()
    else:
        dw = dw_full.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
    return dx, np.asarray(dw, dtype=x.dtype).reshape(np.shape(weight))


# ----------------------------------------------------------------------------- softmax family
def _softmax_dim(name, dim, ndim, stacklevel):
    """torch's legacy rule when ``dim`` is None (with its warning), then bounds-checked and normalized."""
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                      "Change the call to include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
        dim = 0 if ndim in (0, 1, 3) else 1
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise IndexRangeError(f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], "
                              f"but got {dim})")
    return dim % rank


def _softmax_input(input, dtype):
    x = _as_float(input)
    if dtype is not None:
        x = x.astype(dtype, copy=False)
    return x


def _log_softmax(x, axis):
    if x.ndim == 0:
        return np.zeros_like(x)
    if x.size == 0:  # max over an empty axis would fail
        return x.copy()
    t = np.subtract(x, x.max(axis=axis, keepdims=True))
    lse = np.exp(t).sum(axis=axis, keepdims=True)
    np.log(lse, out=lse)
    t -= lse
    return t


def _softmax(x, axis):
    if x.ndim == 0:
        return np.ones_like(x)
    if x.size == 0:  # max over an empty axis would fail
        return x.copy()
    t = np.subtract(x, x.max(axis=axis, keepdims=True))
    np.exp(t, out=t)
    t /= t.sum(axis=axis, keepdims=True)
    return t


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim`` (shifted by the max, so no overflow)."""
    x = _softmax_input(input, dtype)
    return _softmax(x, _softmax_dim("softmax", dim, x.ndim, _stacklevel))


def softmax_backward(grad_output, output, dim):
    """dx = y * (grad - sum(grad * y, dim)) from the output y."""
    y = output
    g = _grad(grad_output, y)
    if y.ndim == 0:
        return np.zeros_like(y)
    axis = _softmax_dim("softmax", dim, y.ndim, 3)
    dx = np.multiply(g, y)
    s = dx.sum(axis=axis, keepdims=True)
    np.subtract(g, s, out=dx)
    dx *= y
    return dx


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - logsumexp(x) along ``dim``."""
    x = _softmax_input(input, dtype)
    return _log_softmax(x, _softmax_dim("log_softmax", dim, x.ndim, _stacklevel))


def log_softmax_backward(grad_output, output, dim):
    """dx = grad - exp(y) * sum(grad, dim) from the output y."""
    y = output
    g = _grad(grad_output, y)
    if y.ndim == 0:
        return np.zeros_like(y)
    axis = _softmax_dim("log_softmax", dim, y.ndim, 3)
    dx = np.exp(y)
    dx *= g.sum(axis=axis, keepdims=True)
    np.subtract(g, dx, out=dx)
    return dx


def _softmin(x, axis):
    return _softmax(np.negative(x), axis)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along ``dim``."""
    x = _softmax_input(input, dtype)
    return _softmin(x, _softmax_dim("softmin", dim, x.ndim, _stacklevel))


def softmin_backward(grad_output, output, dim):
    """dx = -softmax_backward(grad, y) from the output y."""
    dx = softmax_backward(grad_output, output, dim)
    return np.negative(dx, out=dx)


# ----------------------------------------------------------------------------- randomized and gated
def _check_rrelu_bounds(lower, upper, who):
    if lower > upper:
        raise ValueError(f"{who}: lower bound should be less than or equal to the upper bound, "
                         f"got lower={lower}, upper={upper}")


def _rrelu(x, lower, upper, training, inplace, who):
    """(output, noise): noise is the slope each element was multiplied by (1 where x > 0)."""
    _check_rrelu_bounds(lower, upper, who)
    if training:
        draw = x.dtype if x.dtype in (np.float32, np.float64) else np.float32
        noise = get_generator().random(x.shape, dtype=draw).astype(x.dtype, copy=False)
        noise *= upper - lower
        noise += lower
    else:
        noise = np.full(x.shape, (lower + upper) / 2, x.dtype)
    np.copyto(noise, 1, where=x > 0)
    return np.multiply(x, noise, out=_out(x, inplace)), noise


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, *, return_noise=False):
    """x if x > 0 else a * x, with a ~ U(lower, upper) drawn per element in training (from
    ``torchlite.random.get_generator()``) and a = (lower + upper) / 2 otherwise.

    ``return_noise=True`` returns ``(output, noise)``, noise being each element's multiplier
    (1 where x > 0), the array ``rrelu_backward`` reads.
    """
    x = _as_float(input)
    if not training and not return_noise:
        _check_rrelu_bounds(lower, upper, "rrelu")
        return _two_slopes(x, (lower + upper) / 2, inplace)
    out, noise = _rrelu(x, lower, upper, training, inplace, "rrelu")
    return (out, noise) if return_noise else out


def rrelu_backward(grad_output, noise):
    """dx = grad * noise, the multiplier forward applied to each element."""
    return np.multiply(_grad(grad_output, noise), noise)


def _dim_index(dim, ndim, who):
    """``dim`` bounds-checked (an IndexError, as torch's, naming ``who``) and made non-negative."""
    if not -ndim <= dim < ndim:
        raise IndexRangeError(f"{who}: Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                              f"but got {dim})")
    return dim % ndim


def _glu_halves(x, dim, who):
    if x.ndim == 0:
        raise ValueError(f"{who}: glu does not support scalars because halving size must be even")
    axis = _dim_index(dim, x.ndim, who)
    if x.shape[axis] % 2:
        raise ValueError(f"{who}: halving dimension must be even, but dimension {dim} is size {x.shape[axis]} "
                         f"(input shape {x.shape})")
    a, b = np.split(x, 2, axis=axis)
    return a, b, axis


def _glu(x, dim, who):
    a, b, _ = _glu_halves(x, dim, who)
    return np.multiply(a, special.expit(b))


def glu(input, dim=-1):
    """a * sigmoid(b), a and b the two halves of the input along ``dim`` (whose size must be even).

    Shape: (*, 2M, *) -> (*, M, *).
    """
    return _glu(_as_float(input), dim, "glu")


def glu_backward(grad_output, input, dim=-1):
    """dx = concat(grad * s, grad * a * s * (1 - s)) along ``dim``, s = sigmoid(b)."""
    a, b, axis = _glu_halves(input, dim, "glu")
    g = _grad(grad_output, input)
    s = special.expit(b)
    da = np.multiply(g, s)
    db = np.subtract(1, s)
    db *= s
    db *= a
    db *= g
    return np.concatenate([da, db], axis=axis)


# ----------------------------------------------------------------------------- Gumbel-softmax
def _gumbel_noise(shape, dtype):
    """Gumbel(0, 1) samples -log(E), E ~ Exp(1), as torch draws them, from torchlite's generator."""
    draw = dtype if dtype in (np.float32, np.float64) else np.float32
    e = get_generator().standard_exponential(shape, dtype=draw).astype(dtype, copy=False)
    return np.negative(np.log(e, out=e), out=e)


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1, *, return_soft=False, _gumbels=None):
    """A sample softmax((logits + g) / tau) along ``dim``, g ~ Gumbel(0, 1) per element.

    ``hard=True`` returns the one-hot of each sample's argmax, written as torch's straight-through
    ``(y_hard - y_soft) + y_soft``, and is differentiated as the soft sample. ``return_soft=True``
    returns ``(output, y_soft)``: y_soft is what ``gumbel_softmax_backward`` takes. The noise comes
    from ``torchlite.random.get_generator()``; ``_gumbels`` (logits' shape) replaces it, for tests.
    ``eps`` is deprecated and unused, as in torch.
    Shape: logits (*) -> (*), the same shape.
    """
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    x = _as_float(logits)
    shape = x.shape
    x = x.reshape(1) if x.ndim == 0 else x  # one class: the sample is 1
    axis = _softmax_dim("gumbel_softmax", dim, x.ndim, 3)
    if _gumbels is None:
        z = _gumbel_noise(x.shape, x.dtype)
    else:
        z = np.array(_gumbels, dtype=x.dtype)
        if z.shape != shape:
            raise ValueError(f"gumbel_softmax: expected _gumbels of the logits' shape {shape}, got {z.shape}")
        z = z.reshape(x.shape)
    z += x
    z /= float(tau)
    soft = _softmax(z, axis)
    out = soft
    if hard:
        if soft.shape[axis] == 0:
            raise IndexRangeError(f"gumbel_softmax: hard=True takes the argmax over dim {dim}, which is empty "
                                  f"(logits of shape {shape})")
        out = np.zeros_like(soft)
        np.put_along_axis(out, np.argmax(soft, axis=axis, keepdims=True), 1, axis=axis)
        out -= soft
        out += soft
    out, soft = out.reshape(shape), soft.reshape(shape)
    return (out, soft) if return_soft else out


def gumbel_softmax_backward(grad_output, soft, tau=1, dim=-1):
    """dLoss/dlogits of ``gumbel_softmax`` from the soft sample (hard or not: straight-through).

    dlogits = softmax_backward(grad, y_soft) / tau.
    """
    dx = softmax_backward(grad_output, soft, dim)
    dx /= float(tau)
    return dx


# ----------------------------------------------------------------------------- in-place aliases
def _inplace(name, input, *args):
    """``name(input, *args, inplace=True)`` on ``input`` itself, which must be a floating ndarray; returns it."""
    if not isinstance(input, np.ndarray) or input.dtype.kind != "f":
        got = f"dtype {input.dtype}" if isinstance(input, np.ndarray) else type(input).__name__
        raise TypeError(f"{name}_: expected a floating-point ndarray to modify in place, got {got}")
    globals()[name](input, *args, inplace=True)  # looked up at call time: the 0-d safe wrapper installed below
    return input


def relu_(input):
    """In-place ``relu``: returns ``input``, overwritten."""
    return _inplace("relu", input)


def elu_(input, alpha=1.0):
    """In-place ``elu``: returns ``input``, overwritten."""
    return _inplace("elu", input, alpha)


def leaky_relu_(input, negative_slope=0.01):
    """In-place ``leaky_relu``: returns ``input``, overwritten."""
    return _inplace("leaky_relu", input, negative_slope)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    """In-place ``hardtanh``: returns ``input``, overwritten."""
    return _inplace("hardtanh", input, min_val, max_val)


def threshold_(input, threshold, value):
    """In-place ``threshold``: returns ``input``, overwritten."""
    return _inplace("threshold", input, threshold, value)


def selu_(input):
    """In-place ``selu``: returns ``input``, overwritten."""
    return _inplace("selu", input)


def celu_(input, alpha=1.0):
    """In-place ``celu``: returns ``input``, overwritten."""
    return _inplace("celu", input, alpha)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    """In-place ``rrelu`` (noise from torchlite's generator in training): returns ``input``, overwritten."""
    return _inplace("rrelu", input, lower, upper, training)


_SELF_0D = {"softmax", "log_softmax", "softmin", "gumbel_softmax",
            "relu_", "elu_", "leaky_relu_", "hardtanh_", "threshold_", "selu_", "celu_", "rrelu_"}

# Every function here takes 0-d input, as torch's do (see zero_d_safe); those in _SELF_0D handle it
# themselves: a wrapper frame would misplace the softmaxes' deprecation warnings, and the
# in-place aliases return the very array they were given.
for _name in set(__all__) - _SELF_0D:
    globals()[_name] = zero_d_safe(globals()[_name])
del _name

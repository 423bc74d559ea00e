"""Identity, Linear and Bilinear layers."""
import math

import numpy as np

from .._dtype import get_default_dtype
from . import functional as F
from . import init
from ._checks import as_float_input, shape_error
from .functional.linear import _affine
from .module import Module, _check_device
from .parameter import Parameter

__all__ = ["Identity", "Linear", "Bilinear"]


class Identity(Module):
    """Returns its input; any constructor arguments are ignored (as torch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input

    def backward(self, grad_output):
        return grad_output


class Linear(Module):
    """y = x A^T + b.

    Args:
        in_features, out_features: sizes of the last input and output dimension.
        bias: learn an additive bias (default True).
        dtype: parameter dtype (default: ``torchlite.get_default_dtype()``).
    Shape:
        input (*, in_features) -> output (*, out_features); any number of leading dimensions.
    Attributes:
        weight (out_features, in_features), init U(-k, k) with k = 1/sqrt(in_features)
        (torch's kaiming_uniform_(a=sqrt(5))); bias (out_features,), same bound.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        dtype = dtype or get_default_dtype()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        weight, bias = self.weight, self.bias
        x = as_float_input(self, input, weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise shape_error(self, f"(*, {self.in_features})", x)
        self.save_for_backward(x)
        return _affine(x, weight.data, None if bias is None else bias.data)  # F.linear less its checks

    def backward(self, grad_output):
        (x,) = self.pop_saved()
        return self._backward_at(x, grad_output, self.needs_input_grad)

    def _backward_at(self, x, grad_output, need_dx=True):
        """Accumulate the parameter gradients for input ``x``; dx, or None without ``need_dx``.

        For modules that run this layer's math on their own inputs (AdaptiveLogSoftmaxWithLoss)."""
        grad = np.asarray(grad_output, dtype=x.dtype)
        weight, bias = self.weight, self.bias
        need_db = bias is not None and bias.requires_grad
        dx, dw, db = F.linear_backward(grad, x, weight.data, need_dx, need_db)
        weight.accumulate_grad(dw, fresh=True)
        if need_db:
            bias.accumulate_grad(db, fresh=True)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y = x1^T A x2 + b.

    Shape: input1 (*, in1_features), input2 (*, in2_features) -> (*, out_features).
    Attributes: weight (out_features, in1_features, in2_features), bias (out_features,),
    both U(-1/sqrt(in1_features), 1/sqrt(in1_features)).
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        dtype = dtype or get_default_dtype()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = Parameter(np.empty((out_features, in1_features, in2_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        x1 = as_float_input(self, input1, self.weight.dtype, "input1")
        x2 = as_float_input(self, input2, self.weight.dtype, "input2")
        if x1.ndim == 0 or x1.shape[-1] != self.in1_features:
            raise shape_error(self, f"(*, {self.in1_features})", x1, "input1")
        if x2.ndim == 0 or x2.shape[:-1] != x1.shape[:-1] or x2.shape[-1] != self.in2_features:
            raise shape_error(self, f"{x1.shape[:-1] + (self.in2_features,)}", x2, "input2")
        self.save_for_backward(x1, x2)
        return F.bilinear(x1, x2, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_output):
        x1, x2 = self.pop_saved()
        grad = np.asarray(grad_output, dtype=x1.dtype)
        dx1, dx2, dw, db = F.bilinear_backward(grad, x1, x2, self.weight.data)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        return dx1, dx2

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")

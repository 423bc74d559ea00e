"""Normalization layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm, GroupNorm, RMSNorm,
LocalResponseNorm, CrossMapLRN2d.

Arguments, defaults, parameter and buffer names (``weight``, ``bias``, ``running_mean``,
``running_var``, ``num_batches_tracked``) and reprs are torch's, so state_dicts move both ways.
The math is in ``torchlite.nn.functional.normalization``; these modules hold the state.
"""
import numbers
import warnings

import numpy as np

from . import functional as F
from .functional.normalization import cross_map_lrn2d, cross_map_lrn2d_backward
from .._dtype import get_default_dtype
from ..grad_mode import is_grad_enabled
from .module import Module, _check_device
from .parameter import Parameter

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm", "CrossMapLRN2d",
]


def _cast(x, dtype):
    """Floating input in the layer's dtype (integers too); ``dtype`` None keeps floating input."""
    x = np.asarray(x)
    if dtype is not None:
        return x.astype(dtype, copy=False)
    return x if x.dtype.kind == "f" else x.astype(get_default_dtype())


def _data(p):
    return None if p is None else p.data


def _accumulate(param, grad):
    if param is not None and grad is not None:
        param.accumulate_grad(grad)


class _NormBase(Module):
    """Shared state of batch and instance norm: affine parameters and running statistics (C,)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        _check_device(self, device)
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = dtype or get_default_dtype()
        if affine:
            self.weight = Parameter(np.empty(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.empty(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        """Running mean to 0, running variance to 1, batch count to 0 (in place)."""
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.data.fill(1)
            if self.bias is not None:
                self.bias.data.fill(0)

    def _dtype(self):
        for a in (_data(self.weight), self.running_mean):
            if a is not None:
                return a.dtype
        return None

    def _accumulate_affine(self, dweight, dbias):
        _accumulate(self.weight, dweight)
        _accumulate(self.bias, dbias)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


def _dims(spatial):
    return "".join(", " + d for d in spatial)


class _BatchNorm(_NormBase):
    _spatial = ()

    def _check_input(self, x):
        if x.ndim != 2 + len(self._spatial) or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input (N, {self.num_features}{_dims(self._spatial)}), "
                             f"got shape {x.shape}")

    def forward(self, input):
        """Normalize input (N, C, *) per channel; same shape out."""
        x = _cast(input, self._dtype())
        self._check_input(x)
        use_batch_stats = self.training or self.running_mean is None
        if use_batch_stats and x.size == x.shape[1]:
            raise ValueError(f"{self!r}: Expected more than 1 value per channel when training, "
                             f"got input size {list(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        update = self.training and self.track_running_stats
        if update:
            self.num_batches_tracked += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        running = (self.running_mean, self.running_var) if (update or not self.training) else (None, None)
        args = (x, *running, _data(self.weight), _data(self.bias), use_batch_stats, momentum, self.eps)
        if not is_grad_enabled():
            return F.batch_norm(*args)
        out, mean, invstd = F.batch_norm(*args, return_saved=True)
        self.save_for_backward(x, mean, invstd, use_batch_stats)
        return out

    def backward(self, grad_output):
        """dLoss/dinput; adds weight and bias gradients. Through the batch statistics in training."""
        x, mean, invstd, use_batch_stats = self.pop_saved()
        dx, dweight, dbias = F.batch_norm_backward(grad_output, x, mean, invstd, _data(self.weight), _data(self.bias),
                                                   use_batch_stats, self.needs_input_grad)
        self._accumulate_affine(dweight, dbias)
        return dx


class BatchNorm1d(_BatchNorm):
    """Batch normalization over a 2D or 3D input: y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias.

    Statistics are per channel over the batch (and length) axes. Training normalizes with the
    batch mean and biased variance and moves ``running_mean`` / ``running_var`` (the unbiased
    variance) by ``momentum`` (None: cumulative average over ``num_batches_tracked``
    batches); eval uses the running statistics, or the batch's when
    ``track_running_stats=False`` (then the buffers are None).

    Args:
        num_features: C. eps: added to the variance. momentum: 0.1 or None.
        affine: learnable weight (ones) and bias (zeros). track_running_stats: keep the buffers.
        bias: (keyword) learn the bias when affine.

    Shape: input (N, C) or (N, C, L); output the same.
    """

    def _check_input(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            c = self.num_features
            raise ValueError(f"{self!r}: expected input (N, {c}) or (N, {c}, L), got shape {x.shape}")


class BatchNorm2d(_BatchNorm):
    """Batch normalization over a 4D input (N, C, H, W), per channel; see ``BatchNorm1d``.

    Shape: input (N, C, H, W); output the same.
    """

    _spatial = ("H", "W")


class BatchNorm3d(_BatchNorm):
    """Batch normalization over a 5D input (N, C, D, H, W), per channel; see ``BatchNorm1d``.

    Shape: input (N, C, D, H, W); output the same.
    """

    _spatial = ("D", "H", "W")


class _InstanceNorm(_NormBase):
    _spatial = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def _check_input(self, x):
        spatial = len(self._spatial)
        unbatched = x.ndim == spatial + 1
        c, dims = self.num_features, _dims(self._spatial)
        expected = f"{self!r}: expected input (N, {c}{dims}) or ({c}{dims}), got shape {x.shape}"
        if x.ndim not in (spatial + 1, spatial + 2):
            raise ValueError(expected)
        if x.shape[0 if unbatched else 1] != c:
            if self.affine or self.track_running_stats:
                raise ValueError(expected)
            warnings.warn(f"input's size at dim={0 if unbatched else 1} does not match num_features. You can silence "
                          "this warning by not passing in num_features, which is not used because affine=False",
                          stacklevel=4)
        return unbatched

    def forward(self, input):
        """Normalize each (sample, channel) over its spatial axes; input (N, C, *) or (C, *)."""
        x = _cast(input, self._dtype())
        unbatched = self._check_input(x)
        if unbatched:
            x = x[None]
        use_input_stats = self.training or not self.track_running_stats
        if use_input_stats and int(np.prod(x.shape[2:])) == 1:
            raise ValueError(f"{self!r}: Expected more than 1 spatial element when training, "
                             f"got input size {list(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        args = (x, self.running_mean, self.running_var, _data(self.weight), _data(self.bias), use_input_stats,
                momentum, self.eps)
        if is_grad_enabled():
            out, mean, invstd = F.instance_norm(*args, return_saved=True)
            self.save_for_backward(x, mean, invstd, use_input_stats, unbatched)
        else:
            out = F.instance_norm(*args)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        """dLoss/dinput; adds weight and bias gradients."""
        x, mean, invstd, use_input_stats, unbatched = self.pop_saved()
        g = np.asarray(grad_output)
        dx, dweight, dbias = F.instance_norm_backward(g[None] if unbatched else g, x, mean, invstd, _data(self.weight),
                                                      _data(self.bias), use_input_stats, self.needs_input_grad)
        self._accumulate_affine(dweight, dbias)
        return dx[0] if unbatched and dx is not None else dx


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization: each channel of each sample normalized over its length.

    Args as torch: num_features, eps=1e-5, momentum=0.1, affine=False,
    track_running_stats=False, bias=True (keyword). With ``track_running_stats`` training
    moves the running statistics toward the batch average of the per-instance statistics and
    eval normalizes with them. ``momentum=None`` leaves them unchanged (torch passes 0).

    Shape: input (N, C, L) or (C, L); output the same.
    """

    _spatial = ("L",)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over H, W of each channel of each sample; see ``InstanceNorm1d``.

    Shape: input (N, C, H, W) or (C, H, W); output the same.
    """

    _spatial = ("H", "W")


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over D, H, W of each channel of each sample; see ``InstanceNorm1d``.

    Shape: input (N, C, D, H, W) or (C, D, H, W); output the same.
    """

    _spatial = ("D", "H", "W")


def _as_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(d) for d in normalized_shape)


class _TrailingNorm(Module):
    """Shared input check of the norms over trailing axes (LayerNorm, RMSNorm)."""

    def _check_input(self, input):
        x = _cast(input, None if self.weight is None else self.weight.dtype)
        n = len(self.normalized_shape)
        if x.shape[x.ndim - n:] != self.normalized_shape or x.ndim < n:
            trailing = ", ".join(map(str, self.normalized_shape))
            raise ValueError(f"{self!r}: expected input (*, {trailing}), got shape {x.shape}")
        return x


class LayerNorm(_TrailingNorm):
    """y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias over the trailing ``normalized_shape`` axes.

    Args:
        normalized_shape: int or tuple, the trailing shape normalized over.
        eps: added to the (biased) variance. elementwise_affine: learn weight (ones) and bias
        (zeros) of shape ``normalized_shape``. bias: learn the bias when affine.

    Shape: input (*, *normalized_shape); output the same.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = dtype or get_default_dtype()
        if elementwise_affine:
            self.weight = Parameter(np.empty(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.empty(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.elementwise_affine:
            self.weight.data.fill(1)
            if self.bias is not None:
                self.bias.data.fill(0)

    def forward(self, input):
        x = self._check_input(input)
        args = (x, self.normalized_shape, _data(self.weight), _data(self.bias), self.eps)
        if not is_grad_enabled():
            return F.layer_norm(*args)
        out, mean, invstd = F.layer_norm(*args, return_saved=True)
        self.save_for_backward(x, mean, invstd)
        return out

    def backward(self, grad_output):
        x, mean, invstd = self.pop_saved()
        dx, dweight, dbias = F.layer_norm_backward(grad_output, x, mean, invstd, _data(self.weight), _data(self.bias),
                                                   self.needs_input_grad)
        _accumulate(self.weight, dweight)
        _accumulate(self.bias, dbias)
        return dx

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(_TrailingNorm):
    """y = x / sqrt(mean(x**2) + eps) * weight over the trailing ``normalized_shape`` axes.

    Args:
        normalized_shape: int or tuple. eps: None uses the input dtype's machine epsilon.
        elementwise_affine: learn weight (ones) of shape ``normalized_shape``.

    Shape: input (*, *normalized_shape); output the same.
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.empty(self.normalized_shape, dtype=dtype or get_default_dtype()))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.elementwise_affine:
            self.weight.data.fill(1)

    def forward(self, x):
        x = self._check_input(x)
        args = (x, self.normalized_shape, _data(self.weight), self.eps)
        if not is_grad_enabled():
            return F.rms_norm(*args)
        out, rinv = F.rms_norm(*args, return_saved=True)
        self.save_for_backward(x, rinv)
        return out

    def backward(self, grad_output):
        x, rinv = self.pop_saved()
        dx, dweight = F.rms_norm_backward(grad_output, x, rinv, _data(self.weight), self.needs_input_grad)
        _accumulate(self.weight, dweight)
        return dx

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalize each group of ``num_channels / num_groups`` channels (with all spatial axes)
    of each sample, then scale and shift per channel.

    Args:
        num_groups: groups to split the channels into. num_channels: C (divisible by
        num_groups). eps: added to the variance. affine: learn weight (ones) and bias (zeros)
        of shape (C,). bias: (keyword) learn the bias when affine.

    Shape: input (N, C, *); output the same.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        _check_device(self, device)
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        dtype = dtype or get_default_dtype()
        if affine:
            self.weight = Parameter(np.empty(num_channels, dtype=dtype))
            if bias:
                self.bias = Parameter(np.empty(num_channels, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.affine:
            self.weight.data.fill(1)
            if self.bias is not None:
                self.bias.data.fill(0)

    def forward(self, input):
        x = _cast(input, None if self.weight is None else self.weight.dtype)
        # Without affine parameters torch accepts any channel count the groups divide.
        if x.ndim < 2 or (x.shape[1] != self.num_channels if self.affine else x.shape[1] % self.num_groups):
            raise ValueError(f"{self!r}: expected input (N, {self.num_channels}, *), got shape {x.shape}")
        args = (x, self.num_groups, _data(self.weight), _data(self.bias), self.eps)
        try:
            if not is_grad_enabled():
                return F.group_norm(*args)
            out, mean, invstd = F.group_norm(*args, return_saved=True)
        except ValueError as e:
            raise ValueError(f"{self!r}: {e}") from None
        self.save_for_backward(x, mean, invstd)
        return out

    def backward(self, grad_output):
        x, mean, invstd = self.pop_saved()
        dx, dweight, dbias = F.group_norm_backward(grad_output, x, mean, invstd, _data(self.weight), _data(self.bias),
                                                   self.needs_input_grad)
        _accumulate(self.weight, dweight)
        _accumulate(self.bias, dbias)
        return dx

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalization across channels (AlexNet):
    y_c = x_c / (k + alpha / size * sum of x**2 over the ``size`` channels around c) ** beta.

    Args: size (channels in the window), alpha=1e-4, beta=0.75, k=1.0.
    Shape: input (N, C, *) with at least one spatial axis; output the same.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        x = _cast(input, None)
        if x.ndim < 3:
            raise ValueError(f"{self!r}: expected input (N, C, *) with 3 or more dimensions, got shape {x.shape}")
        if not is_grad_enabled():
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        out, base = F.local_response_norm(x, self.size, self.alpha, self.beta, self.k, return_saved=True)
        self.save_for_backward(x, base)
        return out

    def backward(self, grad_output):
        x, base = self.pop_saved()
        return F.local_response_norm_backward(grad_output, x, base, self.size, self.alpha, self.beta)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class CrossMapLRN2d(Module):
    """torch's legacy cross-channel LRN (Lua Torch's SpatialCrossMapLRN), number for number.

    y_c = x_c * (k + alpha / size * s_c) ** -beta, s_c the sum of x**2 over channels
    c - p + 1 .. c + p - 1 with p = (size - 1) // 2 + 1, plus channel 0's square once it has
    left that window (the Lua running sum never subtracts it). ``backward`` is torch's legacy
    formula, which for C > 1 is not the exact derivative of this forward (a finite-difference
    gradcheck fails, in torch too) and needs size >= 2. ``LocalResponseNorm`` is the exact layer.

    Args: size, alpha=1e-4, beta=0.75, k=1.
    Shape: input (N, C, H, W); output the same.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        x = _cast(input, None)
        if x.ndim != 4:
            raise ValueError(f"{self!r}: expected input (N, C, H, W), got shape {x.shape}")
        out, scale = cross_map_lrn2d(x, self.size, self.alpha, self.beta, self.k)
        self.save_for_backward(x, out, scale)
        return out

    def backward(self, grad_output):
        x, out, scale = self.pop_saved()
        return cross_map_lrn2d_backward(grad_output, x, out, scale, self.size, self.alpha, self.beta, who=repr(self))

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"

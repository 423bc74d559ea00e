"""Folding an eval-mode BatchNorm into the convolution or linear layer before it, and building
a module without initialising its parameters (``skip_init``), as torch.nn.utils.

BatchNorm in eval mode is the affine map y = (x - running_mean) / sqrt(running_var + eps) * w + b
per channel, so it folds into the weights and bias of the layer that feeds it: one layer less at
inference, same outputs to rounding.
"""
import copy

import numpy as np

from ...random import get_generator
from ..module import Module
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights",
           "skip_init"]


def _array(x):
    return x.data if isinstance(x, Parameter) else np.asarray(x)


def _requires_grad(x):
    """A Parameter's flag; a plain array is a tensor without grad in torch's terms."""
    return isinstance(x, Parameter) and x.requires_grad


def _check_eval(layer, bn):
    if layer.training or bn.training:
        raise AssertionError("Fusion only for eval!")


def _check_running_stats(bn):
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")


def _fusion_terms(layer_w, layer_b, bn_rm, bn_rv, bn_w, bn_b):
    """Arrays of a layer and its BatchNorm with the defaults filled in: (w, b, bias dtype, running mean,
    running var, bn weight, bn bias); a missing bias is zeros in the weight's dtype, a missing affine
    weight/bias ones/zeros."""
    w = _array(layer_w)
    rm, rv = _array(bn_rm), _array(bn_rv)
    b = np.zeros_like(rm) if layer_b is None else _array(layer_b)
    bias_dtype = w.dtype if layer_b is None else b.dtype
    scale_w = np.ones_like(rm) if bn_w is None else _array(bn_w)
    shift = np.zeros_like(rm) if bn_b is None else _array(bn_b)
    return w, b, bias_dtype, rm, rv, scale_w, shift


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A new convolution equal to ``bn(conv(x))``; ``conv`` and ``bn`` (both in eval mode) are left alone.

    Args:
        conv: a Conv1d/2d/3d, or a ConvTranspose1d/2d/3d with ``transpose=True``.
        bn: a BatchNorm with running statistics (``track_running_stats=True``).
        transpose: the weight is laid out (C_in, C_out / groups, *kernel), as in transposed convolutions.
    Raises:
        AssertionError: either module is in training mode, or ``bn`` has no running statistics.
    """
    _check_eval(conv, bn)
    fused = copy.deepcopy(conv)
    _check_running_stats(bn)
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The (weight, bias) Parameters of the convolution equal to conv followed by eval-mode BatchNorm.

    Args:
        conv_w: (C_out, C_in / groups, *kernel), or (C_in, C_out / groups, *kernel) with ``transpose``.
        conv_b: (C_out,) or None (zeros).
        bn_rm, bn_rv: running mean and variance, (C_out,).
        bn_eps: BatchNorm's eps.
        bn_w, bn_b: affine weight and bias, (C_out,), or None (ones, zeros).
        transpose: scale the weight along axis 1 instead of axis 0.
    Returns:
        Parameters in the dtypes of ``conv_w`` and ``conv_b`` (``conv_w``'s when ``conv_b`` is None),
        requiring grad as the inputs did (a plain array or a missing bias: no grad).
    """
    w, b, bias_dtype, rm, rv, scale_w, shift = _fusion_terms(conv_w, conv_b, bn_rm, bn_rv, bn_w, bn_b)
    var_rsqrt = 1 / np.sqrt(rv + bn_eps)
    shape = [1, -1] if transpose else [-1, 1]
    shape += [1] * (w.ndim - 2)
    fused_w = (w * (scale_w * var_rsqrt).reshape(shape)).astype(w.dtype, copy=False)
    fused_b = ((b - rm) * var_rsqrt * scale_w + shift).astype(bias_dtype, copy=False)
    return Parameter(fused_w, _requires_grad(conv_w)), Parameter(fused_b, _requires_grad(conv_b))


def fuse_linear_bn_eval(linear, bn):
    """A new Linear equal to ``bn(linear(x))``; ``linear`` and ``bn`` (both in eval mode) are left alone.

    ``bn.num_features`` must equal ``linear.out_features`` or be 1 (broadcast over the features).
    Raises:
        AssertionError: either module is in training mode, the sizes do not fit, or ``bn`` has no
        running statistics.
    """
    _check_eval(linear, bn)
    fused = copy.deepcopy(linear)
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError(
            f"To fuse, linear.out_features == bn.num_features or bn.num_features == 1, "
            f"got linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    _check_running_stats(bn)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The (weight, bias) Parameters of the Linear equal to linear followed by eval-mode BatchNorm.

    Args:
        linear_w: (out_features, in_features).
        linear_b: (out_features,) or None (zeros).
        bn_rm, bn_rv: running mean and variance, (out_features,) or (1,).
        bn_eps: BatchNorm's eps.
        bn_w, bn_b: affine weight and bias, or None (ones, zeros; torch fails on None here, a
            BatchNorm with ``affine=False`` folds in fine).
    Returns:
        Parameters in the dtypes of ``linear_w`` and ``linear_b`` (``linear_w``'s when ``linear_b``
        is None). With a (1,) BatchNorm and no linear bias the bias is (1,), as torch's.
    """
    w, b, bias_dtype, rm, rv, scale_w, shift = _fusion_terms(linear_w, linear_b, bn_rm, bn_rv, bn_w, bn_b)
    bn_scale = scale_w / np.sqrt(rv + bn_eps)
    # torch casts the scale before the product (the conv version casts after)
    fused_w = w * bn_scale[:, None].astype(w.dtype, copy=False)
    fused_b = ((b - rm) * bn_scale + shift).astype(bias_dtype, copy=False)
    return Parameter(fused_w, _requires_grad(linear_w)), Parameter(fused_b, _requires_grad(linear_b))


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` with its parameters and buffers left uninitialised (``np.empty``).

    torch builds the module on the meta device and moves it with ``to_empty``. torchlite has no meta
    device: it builds the module, then gives every parameter and buffer fresh uninitialised memory of
    the same shape and dtype, and puts torchlite's global generator back where it was, so, as in
    torch, the random stream does not move. Construction still runs the initialisation (it is
    not faster); what skip_init guarantees is the values' status and the untouched generator.
    Unlike torch, the class needs no ``device`` argument (a ``device=`` kwarg is passed on).

    Raises:
        RuntimeError: ``module_cls`` is not a Module subclass.
    """
    if not issubclass(module_cls, Module):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    bit_generator = get_generator().bit_generator
    state = bit_generator.state
    try:
        module = module_cls(*args, **kwargs)
    finally:
        bit_generator.state = state
    for m in module.modules():
        for p in m._parameters.values():
            if p is not None:
                p.data = np.empty_like(p.data)
        for name, buf in m._buffers.items():
            if buf is not None:
                m._buffers[name] = np.empty_like(buf)
    return module

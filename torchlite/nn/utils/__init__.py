"""Utilities on parameters and sequences (``torchlite.nn.utils``): gradient clipping,
flattening parameters to a vector, weight and spectral normalization, pruning
(``torchlite.nn.utils.prune``), packed sequences (``torchlite.nn.utils.rnn``) and calls with other
parameters (``torchlite.nn.utils.stateless``)."""
from . import parametrizations, parametrize, prune, rnn, stateless
from .clip_grad import clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .memory_format import convert_conv2d_weight_memory_format, convert_conv3d_weight_memory_format
from .fusion import (fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights,
                     skip_init)
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "vector_to_parameters", "rnn", "parametrize", "parametrizations", "prune",
           "weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]
__all__ += ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights",
            "skip_init"]
__all__ += ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]
__all__ += ["stateless"]

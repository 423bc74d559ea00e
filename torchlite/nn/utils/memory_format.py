"""torch's memory-format converters. NumPy arrays here have no channels_last tag: each layer picks
the layout its kernels want and values never depend on it, so converting changes nothing."""

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]


def convert_conv2d_weight_memory_format(module, memory_format):
    """Returns ``module`` unchanged (see the module docstring), as torch returns the converted one."""
    return module


def convert_conv3d_weight_memory_format(module, memory_format):
    """Returns ``module`` unchanged (see the module docstring), as torch returns the converted one."""
    return module

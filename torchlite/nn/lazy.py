"""Lazy layers: linear, convolutions and batch/instance norms whose input size comes from the first input.

``LazyConv2d(16, 3)`` is a ``Conv2d(?, 16, 3)``: until the first forward its lazy parameters
and buffers are empty placeholders (``in_channels`` / ``num_features`` print as 0) and
``has_uninitialized_params()`` is True. The first forward reads the channel count from the
input (dim 1 of a batched input, dim 0 of an unbatched one), allocates the parameters (same
Parameter objects, new ``.data``) and buffers, initialises them with the eager class's
``reset_parameters`` (torchlite's RNG), and turns the module into the eager class, as torch's
``cls_to_become`` does: from then on it is a ``Conv2d`` in type, repr and behaviour.

``load_state_dict`` before the first forward takes the shapes from the dict (torch's lazy
load hook): the module is materialized with the inferred channel count and loaded, all or
nothing. It stays of the lazy class until its first forward, like torch's.
"""
import numpy as np

from ._checks import as_float_input, shape_error
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear
from .module import _check_device
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d,
                            InstanceNorm3d)
from .parameter import Parameter

__all__ = [
    "LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
    "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
]


class LazyModuleMixin:
    """Shape inference shared by the lazy layers; a subclass sets ``cls_to_become`` (the eager
    class), ``_channels_attr`` and ``_lazy_names``, and defines ``_layouts``, ``_materialize``
    and ``_channels_in_state``."""

    cls_to_become = None
    _channels_attr = ""
    _lazy_names = ()  # the parameters and buffers whose shape waits for the channel count
    _materialized = False

    def has_uninitialized_params(self):
        """True until the channel count is known, if the module has parameters or buffers to shape."""
        if self._materialized:
            return False
        state = {**self._parameters, **self._buffers}
        return any(state.get(name) is not None for name in self._lazy_names)

    def initialize_parameters(self, input, *args, **kwargs):
        """Infer the channel count from ``input`` and allocate and initialise the lazy state."""
        if self._materialized:
            return
        x = np.asarray(input)
        as_float_input(self, x, x.dtype)  # refuse non-numeric input before anything is allocated
        axes, expected = self._layouts()
        if x.ndim not in axes:
            raise shape_error(self, expected, x)
        self._materialize(int(x.shape[axes[x.ndim]]))

    def forward(self, input, *args, **kwargs):
        """Materialize on the first call, then become the eager class and run its forward."""
        self.initialize_parameters(input)
        self.__class__ = self.cls_to_become
        return self.forward(input, *args, **kwargs)

    def _materialize_from_state(self, state_dict, prefix=""):
        """Materialize with the channel count ``state_dict`` implies; returns a callable that
        undoes it (for a load that then fails), or None when nothing was done. ``prefix`` is
        this module's key prefix in a parent's dict.

        A dict saved from a module still lazy (channel count 0) leaves this one lazy too."""
        if self._materialized:
            return None
        shapes = {}
        for name in self._lazy_names:
            if prefix + name in state_dict.keys():
                value = state_dict[prefix + name]
                shapes[name] = np.shape(value.data if isinstance(value, Parameter) else value)
        channels = self._channels_in_state(shapes)
        if not channels:
            return None
        undo = self._snapshot()
        self._materialize(channels)
        return undo

    def _snapshot(self):
        channels = getattr(self, self._channels_attr)
        datas = {name: p.data for name, p in self._parameters.items() if p is not None}
        buffers = dict(self._buffers)

        def undo():
            setattr(self, self._channels_attr, channels)
            self._materialized = False
            for name, data in datas.items():
                self._parameters[name].data = data
            self._buffers.update(buffers)
        return undo


class LazyLinear(LazyModuleMixin, Linear):
    """A ``Linear(?, out_features)`` whose ``in_features`` is the last dim of the first input."""

    cls_to_become = Linear
    _channels_attr = "in_features"
    _lazy_names = ("weight", "bias")

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__(0, out_features, False, dtype=dtype)  # no bias yet: draw no random numbers for it
        if bias:
            self.bias = Parameter(np.empty(0, dtype=self.weight.dtype))

    def _layouts(self):
        return {ndim: -1 for ndim in range(1, 65)}, "(*, in_features)"

    def _materialize(self, features):
        self.in_features = features
        self.weight.data = np.empty((self.out_features, features), dtype=self.weight.dtype)
        if self.bias is not None:
            self.bias.data = np.empty(self.out_features, dtype=self.bias.dtype)
        self._materialized = True
        self.reset_parameters()

    def _channels_in_state(self, shapes):
        shape = shapes.get("weight")
        return shape[1] if shape is not None and len(shape) == 2 else None


class _LazyConvMixin(LazyModuleMixin):
    _channels_attr = "in_channels"
    _lazy_names = ("weight", "bias")

    def _make_lazy_bias(self, bias):
        # The eager constructor ran with bias=False so it drew no random numbers for it.
        if bias:
            self.bias = Parameter(np.empty(0, dtype=self.weight.dtype))

    def _layouts(self):
        spatial = ", ".join(("D", "H", "W")[3 - self.dims:]) if self.dims > 1 else "L"
        return {self.dims + 2: 1, self.dims + 1: 0}, f"(N, C_in, {spatial}) or (C_in, {spatial})"

    def _weight_shape(self, channels):
        if self.transposed:
            return (channels, self.out_channels // self.groups) + self.kernel_size
        return (self.out_channels, channels // self.groups) + self.kernel_size

    def _materialize(self, channels):
        if channels % self.groups != 0:
            raise ValueError(f"{self!r}: in_channels ({channels}) of the input must be divisible by groups "
                             f"({self.groups})")
        self.in_channels = channels
        self.weight.data = np.empty(self._weight_shape(channels), dtype=self.weight.dtype)
        if self.bias is not None:
            self.bias.data = np.empty(self.out_channels, dtype=self.bias.dtype)
        self._materialized = True
        self.reset_parameters()

    def _channels_in_state(self, shapes):
        shape = shapes.get("weight")
        if shape is None or len(shape) != self.dims + 2:
            return None  # the load then reports the mismatch against the placeholder
        channels = shape[0] if self.transposed else shape[1] * self.groups
        return channels if channels % self.groups == 0 else None


class _LazyConv(_LazyConvMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        _check_device(self, device)
        super().__init__(0, out_channels, kernel_size, stride, padding, dilation, groups, False, padding_mode,
                         dtype=dtype)
        self._make_lazy_bias(bias)


class _LazyConvTranspose(_LazyConvMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                 dilation=1, padding_mode="zeros", device=None, dtype=None):
        _check_device(self, device)
        super().__init__(0, out_channels, kernel_size, stride, padding, output_padding, groups, False, dilation,
                         padding_mode, dtype=dtype)
        self._make_lazy_bias(bias)


class LazyConv1d(_LazyConv, Conv1d):
    """A Conv1d whose ``in_channels`` is inferred from the first input (N, C_in, L) or (C_in, L).

    Args: Conv1d's without ``in_channels``: out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True, padding_mode='zeros', device=None, dtype=None.
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    """A Conv2d whose ``in_channels`` is inferred from the first input (N, C_in, H, W) or (C_in, H, W).

    Args: Conv2d's without ``in_channels`` (see LazyConv1d).
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    """A Conv3d whose ``in_channels`` is inferred from the first input (N, C_in, D, H, W) or (C_in, D, H, W).

    Args: Conv3d's without ``in_channels`` (see LazyConv1d).
    """

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    """A ConvTranspose1d whose ``in_channels`` is inferred from the first input (N, C_in, L) or (C_in, L).

    Args: ConvTranspose1d's without ``in_channels``: out_channels, kernel_size, stride=1,
    padding=0, output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros',
    device=None, dtype=None; forward(input, output_size=None).
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    """A ConvTranspose2d whose ``in_channels`` is inferred from the first input (N, C_in, H, W) or (C_in, H, W).

    Args: ConvTranspose2d's without ``in_channels`` (see LazyConvTranspose1d).
    """

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    """A ConvTranspose3d whose ``in_channels`` is inferred from the first input (N, C_in, D, H, W) or
    (C_in, D, H, W).

    Args: ConvTranspose3d's without ``in_channels`` (see LazyConvTranspose1d).
    """

    cls_to_become = ConvTranspose3d


class _LazyNormBase(LazyModuleMixin):
    """Batch and instance norm without ``num_features``; torch's defaults for both families are
    affine=True, track_running_stats=True (the eager InstanceNorm's are False, False)."""

    _channels_attr = "num_features"
    _lazy_names = ("weight", "bias", "running_mean", "running_var")
    _axes = {}  # input rank -> channel axis
    _expected = ""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True):
        _check_device(self, device)
        super().__init__(0, eps, momentum, affine, track_running_stats, bias=bias)
        if dtype is not None:
            self.to(dtype)

    def _layouts(self):
        return self._axes, self._expected

    def _materialize(self, channels):
        self.num_features = channels
        for p in (self.weight, self.bias):
            if p is not None:
                p.data = np.empty(channels, dtype=p.dtype)
        if self.running_mean is not None:
            self.running_mean = np.empty(channels, dtype=self.running_mean.dtype)
            self.running_var = np.empty(channels, dtype=self.running_var.dtype)
        self._materialized = True
        self.reset_parameters()

    def _channels_in_state(self, shapes):
        for shape in shapes.values():
            if len(shape) == 1:
                return shape[0]
        return None


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """A BatchNorm1d whose ``num_features`` is inferred from the first input (N, C) or (N, C, L).

    Args: eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
    dtype=None, bias=True (keyword). weight, bias, running_mean and running_var (C,) appear
    at the first forward; num_batches_tracked exists from the start.
    """

    cls_to_become = BatchNorm1d
    _axes = {2: 1, 3: 1}
    _expected = "(N, C) or (N, C, L)"


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    """A BatchNorm2d whose ``num_features`` is inferred from the first input (N, C, H, W).

    Args as LazyBatchNorm1d.
    """

    cls_to_become = BatchNorm2d
    _axes = {4: 1}
    _expected = "(N, C, H, W)"


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    """A BatchNorm3d whose ``num_features`` is inferred from the first input (N, C, D, H, W).

    Args as LazyBatchNorm1d.
    """

    cls_to_become = BatchNorm3d
    _axes = {5: 1}
    _expected = "(N, C, D, H, W)"


class LazyInstanceNorm1d(_LazyNormBase, InstanceNorm1d):
    """An InstanceNorm1d whose ``num_features`` is inferred from the first input (N, C, L) or (C, L).

    Args as LazyBatchNorm1d: affine and track_running_stats default to True, as torch's
    LazyInstanceNorm1d. (torch reads dim 1 of an unbatched input too; here it is dim 0, the
    channels.)
    """

    cls_to_become = InstanceNorm1d
    _axes = {3: 1, 2: 0}
    _expected = "(N, C, L) or (C, L)"


class LazyInstanceNorm2d(_LazyNormBase, InstanceNorm2d):
    """An InstanceNorm2d whose ``num_features`` is inferred from the first input (N, C, H, W) or (C, H, W).

    Args as LazyInstanceNorm1d.
    """

    cls_to_become = InstanceNorm2d
    _axes = {4: 1, 3: 0}
    _expected = "(N, C, H, W) or (C, H, W)"


class LazyInstanceNorm3d(_LazyNormBase, InstanceNorm3d):
    """An InstanceNorm3d whose ``num_features`` is inferred from the first input (N, C, D, H, W) or
    (C, D, H, W).

    Args as LazyInstanceNorm1d.
    """

    cls_to_become = InstanceNorm3d
    _axes = {5: 1, 4: 0}
    _expected = "(N, C, D, H, W) or (C, D, H, W)"

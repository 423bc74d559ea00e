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
- A convolution whose next max pool's windows tile its output (kernel = stride) computes only the
  pixels that pool reads, grouped by window tap (F.conv_nd_blocks): the pool reduces contiguous
  blocks and hands its gradient back in that form (wide CNN step 0.91x). Otherwise:
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
from .pooling import _MaxPoolNd, _as_tuple

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
        conv, pool = steps[k][0], steps[k + 1][0]
        if type(conv) in _CONVS and isinstance(pool, _MaxPoolNd) and steps[k + 1][1] is None:
            tile = _tile(conv, pool)
            if tile is None:
                steps[k] = (conv, "channels_last")
            else:
                steps[k] = (conv, ("pool_blocks", tile, pool.ceil_mode))
                steps[k + 1] = (pool, "from_blocks")
    return steps


#: fewest output channels for the blocks hand-off: with few channels the pool is cheap and the blocked im2col's
#: strided reads cost more than it saves (LeNet, 6 and 16 channels: step 1.2x slower; wide CNN, 32 and 64: 0.91x)
BLOCKS_MIN_CHANNELS = 32


def _tile(conv, pool):
    """The pool's kernel when its windows tile the convolution's output (kernel = stride, no padding
    or dilation, same dims), the convolution has one group and at least BLOCKS_MIN_CHANNELS outputs; else None."""
    if conv.out_channels < BLOCKS_MIN_CHANNELS:
        return None
    d = conv.dims
    if pool.dims != d or pool.return_indices or conv.groups != 1:
        return None
    try:
        kernel, stride, padding, dilation = (_as_tuple(v, d) for v in
                                             (pool.kernel_size, pool.stride, pool.padding, pool.dilation))
    except TypeError:  # not ints: the pool's own forward reports it
        return None
    if kernel != stride or any(padding) or any(dl != 1 for dl in dilation):
        return None
    return kernel

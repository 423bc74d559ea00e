"""How Sequential runs its children: a ReLU before a max pool runs after it, and a ReLU overwrites
an array that only Sequential holds.

- relu(maxpool(x)) == maxpool(relu(x)) exactly, gradients included: both send each window's
  gradient to its first maximum and zero it where that maximum is <= 0 (ties among the zeros
  a ReLU makes go to an element whose gradient is zeroed either way; NaN wins both ways). After
  a 2x2 pool the ReLU touches a quarter of the elements. A pool that returns indices keeps torch's
  order, since its indices would differ on ties.
- A ReLU whose input is the fresh output of a convolution, linear layer or max pool (which keep
  other arrays for their backward, never their output) overwrites it: no new activation-sized
  array, which halves the peak memory of a conv-ReLU at inference.

Both only change where the work is done, never a value the user can see: the intermediate arrays
are Sequential's own. The plan is skipped under anomaly mode, which checks each child's call, and
when a child has hooks.
"""
from .activation import ReLU
from .conv import _Conv
from .linear import Linear
from .pooling import _MaxPoolNd

__all__ = ["plan"]

#: layers whose forward returns a new array that they do not keep
_FRESH_OUTPUT = (_Conv, Linear, _MaxPoolNd)


def _is_relu(module):
    return type(module) is ReLU and not module.inplace


def plan(modules):
    """The children in the order to run them, as (module, overwrite_input) pairs.

    With hooks on any child, the children run as written: a hook sees what torch would show it.
    """
    if any(m._has_hooks() for m in modules):
        return [(m, False) for m in modules]
    steps = []
    i, n = 0, len(modules)
    while i < n:
        m = modules[i]
        if _is_relu(m) and i + 1 < n and isinstance(modules[i + 1], _MaxPoolNd) and not modules[i + 1].return_indices:
            steps += [(modules[i + 1], False), (m, True)]
            i += 2
            continue
        steps.append((m, _is_relu(m) and bool(steps) and isinstance(steps[-1][0], _FRESH_OUTPUT)))
        i += 1
    return steps

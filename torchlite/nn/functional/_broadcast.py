"""The one helper every broadcasting backward needs."""

__all__ = []


def sum_to(grad, shape):
    """A gradient taken over a broadcast shape, summed back to the ``shape`` of the input it came from
    (``grad`` itself when the shapes already agree)."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)

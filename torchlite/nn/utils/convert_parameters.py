"""Flatten parameters into one vector and back (``parameters_to_vector`` / ``vector_to_parameters``)."""
import numpy as np

from ..parameter import Parameter

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _as_list(parameters):
    return [parameters] if isinstance(parameters, Parameter) else list(parameters)


def parameters_to_vector(parameters):
    """Concatenate the parameters' values into a new 1-D array (in iteration order).

    Args:
        parameters: a Parameter or an iterable of Parameters.

    Returns:
        a 1-D array of ``sum(p.numel())`` elements (dtypes promote as ``np.concatenate``).
    """
    return np.concatenate([np.asarray(p.data).ravel() for p in _as_list(parameters)])


def vector_to_parameters(vec, parameters):
    """Copy slices of the 1-D array ``vec`` into the parameters, in order.

    Values are written into each ``p.data`` in place (the parameter keeps its array and
    dtype, so optimizers and modules holding it see the change); torch instead rebinds
    ``p.data`` to a view of ``vec``.

    Args:
        vec (np.ndarray): a 1-D array with exactly ``sum(p.numel())`` elements.
        parameters: a Parameter or an iterable of Parameters.
    """
    if not isinstance(vec, np.ndarray):
        raise TypeError(f"expected np.ndarray, but got: {type(vec).__name__}")
    parameters = _as_list(parameters)
    total = sum(p.data.size for p in parameters)
    if vec.ndim != 1 or vec.size != total:
        raise ValueError(f"vector_to_parameters: expected a 1-D array of {total} elements (the parameters' total), "
                         f"got shape {vec.shape}")
    pointer = 0
    for p in parameters:
        n = p.data.size
        p.data[...] = vec[pointer:pointer + n].reshape(p.data.shape)
        pointer += n

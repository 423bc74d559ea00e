"""Orthogonal, weight and spectral normalization parametrizations (torch.nn.utils.parametrizations, torch 2.13).

Each is a parametrization module (``forward(X) -> W``, ``backward(grad_W) -> grad_X``)
registered with ``parametrize.register_parametrization``, with torch's state_dict keys:
``parametrizations.weight.original`` (and ``parametrizations.weight.0.base`` with the dynamic
trivialization) for orthogonal; ``original0`` (g) and ``original1`` (v) for weight_norm;
``original`` and ``parametrizations.weight.0._u`` / ``._v`` for spectral_norm. Weight and
spectral normalization are the same math as the hook versions in weight_norm.py and spectral_norm.py.
"""
from enum import Enum, auto

import numpy as np

from ...random import get_generator
from ..conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..module import Module
from ..parameter import Parameter
from . import parametrize
from .spectral_norm import _normalize
from .weight_norm import _norm_except_dim

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


def _mT(x):
    return np.swapaxes(x, -1, -2)


def _expm(a):
    from scipy.linalg import expm  # imported on first use: scipy.linalg is slow to import
    return expm(a)


def _expm_backward(a, grad):
    """dLoss/dA for E = expm(A), given dLoss/dE: the Frechet derivative of expm at A^T in the
    direction ``grad``, the upper right block of expm([[A^T, grad], [0, A^T]])."""
    n = a.shape[-1]
    block = np.zeros(a.shape[:-2] + (2 * n, 2 * n), dtype=a.dtype)
    block[..., :n, :n] = block[..., n:, n:] = _mT(a)
    block[..., :n, n:] = grad
    return _expm(block)[..., :n, n:]


def _reflectors(a):
    """The Householder vectors of ``a`` (..., n, k): a's strict lower triangle under a unit diagonal."""
    v = np.tril(a, -1)
    k = a.shape[-1]
    v[..., np.arange(k), np.arange(k)] = 1
    return v


def householder_product(a, tau):
    """The first k columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T (torch.linalg.householder_product).

    ``a`` (..., n, k) holds v_i below the diagonal of column i (unit diagonal implied, the rest
    ignored); ``tau`` (..., k). Returns (..., n, k).
    """
    n, k = a.shape[-2:]
    v = _reflectors(a)
    q = np.broadcast_to(np.eye(n, k, dtype=a.dtype), a.shape).copy()
    for i in reversed(range(k)):  # H_i leaves the rows and the columns before i as they are
        vi = v[..., i:, i:i + 1]
        q[..., i:, i:] -= (tau[..., i, None, None] * vi) * (_mT(vi) @ q[..., i:, i:])
    return q


def householder_product_backward(grad, a, tau, q):
    """Gradients (d_a, d_tau) of ``q = householder_product(a, tau)`` given dLoss/dq.

    Backpropagates through the reflections one at a time, first to last. The product of the
    ones not yet crossed is recovered from ``q`` by undoing H_i (I - s v v^T with
    s = tau / (tau v^T v - 1), Sherman-Morrison), so no intermediate product is stored.
    d_a is zero on and above the diagonal, which the product does not read.
    """
    k = a.shape[-1]
    v = _reflectors(a)
    g, y = grad.copy(), q.copy()
    d_a, d_tau = np.zeros_like(a), np.zeros_like(tau)
    for i in range(k):
        vi = v[..., i:, i:i + 1]
        t = tau[..., i, None, None]
        gi, yi = g[..., i:, i:], y[..., i:, i:]
        s = t / (t * (_mT(vi) @ vi) - 1)
        y_next = yi - (s * vi) * (_mT(vi) @ yi)
        a_row, b_row = _mT(vi) @ gi, _mT(vi) @ y_next  # (..., 1, k - i)
        d_tau[..., i] = -np.sum(a_row * b_row, axis=(-2, -1))
        d_v = -t * (gi @ _mT(b_row) + y_next @ _mT(a_row))
        d_a[..., i + 1:, i] = d_v[..., 1:, 0]
        g[..., i:, i:] = gi - (t * vi) * a_row
        y[..., i:, i:] = y_next
    return d_a, d_tau


def _is_orthogonal(q):
    n, k = q.shape[-2:]
    eps = 10.0 * n * np.finfo(q.dtype).eps
    return np.allclose(_mT(q) @ q, np.eye(k, dtype=q.dtype), atol=eps)


def _make_orthogonal(a):
    """The Q of a = QR (a tall) with diag(R) >= 0."""
    q, r = np.linalg.qr(a)
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


class _Orthogonal(Module):
    """``forward(X) = Q`` with orthonormal columns (rows for a wide X), over the last two axes.

    A wide (n < k) X is transposed first and Q back at the end, so the maps see a tall (n, k)
    matrix. ``matrix_exp`` and ``cayley`` map the skew-symmetric A = L - L^T, L = tril(X) padded
    to (n, n) with zero columns, to expm(A) or (I - A/2)^{-1} (I + A/2) and keep the first k
    columns; ``householder`` takes the product of the reflectors in X's strict lower triangle
    (tau = 2 / (1 + |v|^2), exact reflections) times the signs of X's diagonal truncated to
    integers (constants: no gradient reaches the diagonal). With the dynamic trivialization the
    buffer ``base`` (n, n) multiplies Q from the left; ``right_inverse`` sets it.
    """

    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def _trivialized(self):
        return "base" in self._buffers

    def forward(self, X):
        n, k = X.shape[-2:]
        transposed = n < k
        if transposed:
            X = _mT(X)
            n, k = k, n
        if self.orthogonal_map == _OrthMaps.householder:
            a = np.tril(X, -1)
            tau = 2.0 / (1.0 + np.sum(a * a, axis=-2))
            q = householder_product(a, tau)
            signs = np.trunc(np.diagonal(X, axis1=-2, axis2=-1)).astype(X.dtype)[..., None, :]
            saved = (a, tau, q, signs)
            q = q * signs
        else:
            skew = np.zeros(X.shape[:-2] + (n, n), dtype=X.dtype)
            skew[..., :k] = np.tril(X)
            skew = skew - _mT(skew)
            eye = np.eye(n, dtype=X.dtype)
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                full = _expm(skew)
            else:
                full = np.linalg.solve(eye - 0.5 * skew, eye + 0.5 * skew)
            saved = (skew, full)
            q = full[..., :k]
        base = None
        if self._trivialized():
            base = self.base
            if base is None:
                raise RuntimeError(f"{self._get_name()}: the buffer 'base' is unset; register the parametrization "
                                   "on an unparametrized tensor (its right_inverse sets it)")
            q = base @ q
        self.save_for_backward(saved, base, transposed)
        return _mT(q) if transposed else q

    def backward(self, grad_output):
        saved, base, transposed = self.pop_saved()
        grad = _mT(grad_output) if transposed else grad_output
        if base is not None:
            grad = _mT(base) @ grad
        if self.orthogonal_map == _OrthMaps.householder:
            a, tau, q, signs = saved
            d_a, d_tau = householder_product_backward(grad * signs, a, tau, q)
            d_a -= (tau * tau * d_tau)[..., None, :] * a
            d_x = np.tril(d_a, -1)
        else:
            skew, full = saved
            n, k = grad.shape[-2:]
            d_full = np.zeros(full.shape, dtype=full.dtype)
            d_full[..., :k] = grad
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                d_skew = _expm_backward(skew, d_full)
            else:
                eye = np.eye(n, dtype=full.dtype)
                d_skew = 0.5 * (np.linalg.solve(_mT(eye - 0.5 * skew), d_full) @ _mT(eye + full))
            d_x = np.tril((d_skew - _mT(d_skew))[..., :k])
        return _mT(d_x) if transposed else d_x

    def right_inverse(self, Q):
        """An original giving ``Q``: with the trivialization, ``base`` becomes Q orthogonalized (completed
        to (n, n) with random columns when Q is not square) and the original -I; without it (householder
        only), Q's QR reflectors with the signs of R's diagonal."""
        Q = np.asarray(getattr(Q, "data", Q))
        if Q.shape != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {Q.shape}.")
        Q_init = Q
        n, k = Q.shape[-2:]
        transpose = n < k
        if transpose:
            Q = _mT(Q)
            n, k = k, n
        if not self._trivialized():
            if self.orthogonal_map != _OrthMaps.householder:
                raise NotImplementedError("It is not possible to assign to the matrix exponential "
                                          "or the Cayley parametrizations when use_trivialization=False.")
            h, tau = np.linalg.qr(Q, mode="raw")  # LAPACK geqrf, in Fortran order
            a = _mT(h).astype(Q.dtype)
            signs = np.sign(np.diagonal(a, axis1=-2, axis2=-1))
            signs = np.where(tau == 0.0, -signs, signs)  # LAPACK skipped that reflection
            a[..., np.arange(k), np.arange(k)] = signs
            return _mT(a).copy() if transpose else a
        if n == k:
            Q = Q.copy() if _is_orthogonal(Q) else _make_orthogonal(Q)
        else:
            fill = get_generator().standard_normal(Q.shape[:-2] + (n, n - k)).astype(Q.dtype)
            Q = _make_orthogonal(np.concatenate([Q, fill], axis=-1))
        self.base = Q
        neg_eye = np.zeros_like(Q_init)
        neg_eye[..., np.arange(min(n, k)), np.arange(min(n, k))] = -1.0  # householder(-I) is I
        return neg_eye


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """Keep ``module.<name>`` orthogonal: Q^T Q = I (m >= n) or Q Q^T = I (m < n), over its last two axes.

    ``orthogonal_map``: ``"matrix_exp"`` (Q = expm(A), A skew-symmetric), ``"cayley"``
    (Q = (I - A/2)^{-1} (I + A/2)) or ``"householder"`` (a product of Householder reflectors);
    None picks ``"matrix_exp"`` for a square matrix, ``"householder"`` otherwise. Real tensors
    only (torch's unitary, complex case is not built). A tensor with
    more than two axes is a batch of (..., m, n) matrices (a Conv2d weight: out*in kernels).

    With ``use_trivialization=True`` (the dynamic trivialization, https://arxiv.org/abs/1909.09501)
    the buffer ``parametrizations.<name>.0.base`` holds an orthogonal (n, n) matrix (the
    tensor transposed to tall) that multiplies the map's output; registration sets it to the
    tensor when orthogonal, else to its QR factor (a non-square one completed with random
    columns from torchlite's generator), and the original to -I, so the weight starts there.
    The same QR start holds for ``"householder"`` without the trivialization; for the other
    maps the original is left as is and the weight is its image.

    Args:
        module: the module holding the parameter.
        name: the parameter's name (default ``'weight'``); at least 2-d.
        orthogonal_map: ``"matrix_exp"``, ``"cayley"``, ``"householder"`` or None.
        use_trivialization: keep the ``base`` buffer (default True).
    Returns:
        ``module`` (a ``Parametrized<Class>``).
    Raises:
        ValueError: no such tensor, fewer than 2 dimensions, or an unknown map.
        TypeError: a complex tensor.

    Example::

        >>> m = orthogonal(nn.Linear(20, 40))
        >>> np.allclose(m.weight.T @ m.weight, np.eye(20), atol=1e-5)
        True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, (Parameter, np.ndarray)):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if weight.dtype.kind == "c":
        raise TypeError(f"orthogonal: '{name}' of {module._get_name()} is {weight.dtype}; torchlite's orthogonal "
                        "supports real tensors only")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _OrthMaps.__members__:
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    orth = _Orthogonal(weight, _OrthMaps[orthogonal_map], use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


class _WeightNorm(Module):
    """``forward(g, v) = g * v / ||v||``, the norm over every axis but ``dim`` (the whole tensor when -1)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def _axis(self, v):
        return -1 if self.dim == -1 else self.dim % max(v.ndim, 1)

    def forward(self, weight_g, weight_v):
        norm = _norm_except_dim(weight_v, self._axis(weight_v))
        self.save_for_backward(weight_g, weight_v, norm)
        return weight_v * (weight_g / norm)

    def backward(self, grad_output):
        g, v, norm = self.pop_saved()
        axis = self._axis(v)
        axes = None if axis == -1 else tuple(a for a in range(v.ndim) if a != axis)
        dot = np.sum(grad_output * v, axis=axes, keepdims=axes is not None)
        grad_g = np.asarray(dot / norm).reshape(np.shape(g)).astype(v.dtype, copy=False)
        grad_v = (g / norm) * (grad_output - v * (dot / (norm * norm)))
        return grad_g, grad_v

    def right_inverse(self, weight):
        norm = np.asarray(_norm_except_dim(weight, self._axis(weight)), dtype=weight.dtype)
        return norm, weight


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (https://arxiv.org/abs/1602.07868).

    g (``parametrizations.<name>.original0``) has the weight's shape with every axis but ``dim``
    of size 1 (a scalar for ``dim=None``); v (``original1``) is the weight. Gradients of the
    weight reach g and v.

    Args:
        module: the module holding the parameter.
        name: the parameter's name (default ``'weight'``).
        dim: the axis the norm keeps (default 0); None normalizes the whole tensor.
    Returns:
        ``module`` (a ``Parametrized<Class>``).

    Example::

        >>> m = weight_norm(nn.Linear(20, 40))
        >>> m.parametrizations.weight.original0.shape
        (40, 1)
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def _weight_norm_compat_hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                 error_msgs):
        """A checkpoint of the classic ``nn.utils.weight_norm`` (``<name>_g``, ``<name>_v``) loads, as torch's."""
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module.register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


class _SpectralNorm(Module):
    """``forward(W) = W / sigma(W)``, sigma estimated by power iteration on the buffers ``_u``, ``_v``.

    Each training-mode forward runs ``n_power_iterations`` steps in place (u first, then v, as
    torch's parametrization); registration runs 15. The gradient treats u and v as constants,
    as torch's (they are cloned out of the graph). A 1-d weight is just normalized.
    """

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            h, w = self._reshape_weight_to_matrix(weight).shape
            gen = get_generator()
            self.register_buffer("_u", _normalize(gen.standard_normal(h).astype(weight.dtype), eps))
            self.register_buffer("_v", _normalize(gen.standard_normal(w).astype(weight.dtype), eps))
            self._power_method(self._reshape_weight_to_matrix(np.asarray(weight)), 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = np.moveaxis(weight, self.dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, mat, n_power_iterations):
        for _ in range(n_power_iterations):  # in place: the buffers carry the estimate across steps
            _normalize(mat @ self._v, self.eps, out=self._u)
            _normalize(mat.T @ self._u, self.eps, out=self._v)

    def forward(self, weight):
        if weight.ndim == 1:
            norm = max(float(np.sqrt(np.dot(weight, weight))), self.eps)
            self.save_for_backward(weight, norm)
            return weight / weight.dtype.type(norm)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        u, v = self._u.copy(), self._v.copy()
        sigma = np.dot(u, mat @ v)
        self.save_for_backward(weight, u, v, sigma)
        return weight / sigma

    def backward(self, grad_output):
        saved = self.pop_saved()
        if len(saved) == 2:
            weight, norm = saved
            if norm == self.eps:  # the norm was clamped: a constant divisor
                return grad_output / weight.dtype.type(norm)
            norm = weight.dtype.type(norm)
            return (grad_output - weight * (np.dot(weight, grad_output) / (norm * norm))) / norm
        weight, u, v, sigma = saved
        outer = np.outer(u, v).reshape((weight.shape[self.dim],) + weight.shape[:self.dim]
                                       + weight.shape[self.dim + 1:])
        outer = np.moveaxis(outer, 0, self.dim)
        return grad_output / sigma - (np.sum(grad_output * weight) / (sigma * sigma)) * outer

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Rescale ``module.<name>`` by its spectral norm (https://arxiv.org/abs/1802.05957).

    The weight moves to ``parametrizations.<name>.original``; the parametrization holds the
    power-iteration vectors as buffers ``parametrizations.<name>.0._u`` (shape[dim],) and
    ``._v`` (numel / shape[dim],), drawn from torchlite's generator and refined by 15 steps at
    registration. Reading ``module.<name>`` in training mode runs ``n_power_iterations`` more.

    Args:
        module: the module holding the parameter.
        name: the parameter's name (default ``'weight'``).
        n_power_iterations: power iteration steps per training forward (positive, default 1).
        eps: floor of the norms when normalizing (default 1e-12).
        dim: the axis of output units; None means 1 for ConvTranspose1d/2d/3d, else 0.
    Returns:
        ``module`` (a ``Parametrized<Class>``).
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, (Parameter, np.ndarray)):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(np.asarray(weight), n_power_iterations,
                                                                      dim, eps))
    return module

"""Parameter: a trainable array (``.data``) with its gradient (``.grad``)."""
import numpy as np

from .._dtype import get_default_dtype


class Parameter:
    """A trainable array.

    Attributes:
        data: the values, an ndarray updated in place by optimizers.
        grad: the accumulated gradient (same shape and dtype as ``data``) or None.
        requires_grad: when False, backward leaves ``grad`` alone and optimizers skip it.

    Integer or bool input is converted to the default floating dtype; floating input keeps
    its dtype.
    """

    __slots__ = ("data", "grad", "requires_grad", "__weakref__")

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=get_default_dtype())
        if isinstance(data, Parameter):
            data = data.data
        arr = np.asarray(data)
        if arr.dtype.kind not in "fc":
            arr = arr.astype(get_default_dtype())
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)

    # array-like surface -------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    def numpy(self):
        return self.data

    def __array__(self, dtype=None, copy=None):
        if dtype is None:
            return self.data
        return self.data.astype(dtype)

    def __len__(self):
        return len(self.data)

    # gradient -----------------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        self.requires_grad = bool(requires_grad)
        if not requires_grad:
            self.grad = None
        return self

    def accumulate_grad(self, g, fresh=False):
        """Add ``g`` into ``grad`` (creating it on first use); a frozen parameter ignores it.

        ``g`` is copied on first use, so callers may pass views of reused buffers; a caller
        that made ``g`` for this call alone and keeps no reference passes ``fresh=True`` and
        it becomes ``grad`` as is when it fits (saves a copy of every weight each step).
        """
        if not self.requires_grad:
            return
        if self.grad is None:
            if fresh and g.dtype == self.data.dtype and g.shape == self.data.shape and g.flags.c_contiguous \
                    and g.flags.writeable:
                self.grad = g
            else:
                self.grad = np.array(g, dtype=self.data.dtype, copy=True).reshape(self.data.shape)
        else:
            self.grad += g

    def zero_grad_(self, set_to_none=True):
        if set_to_none:
            self.grad = None
        elif self.grad is not None:
            self.grad.fill(0)

    def __repr__(self):
        body = np.array2string(self.data, precision=4, threshold=20, edgeitems=2, prefix="Parameter containing:\n")
        return f"Parameter containing:\n{body} shape={self.data.shape} dtype={self.data.dtype}"


class Buffer(np.ndarray):
    """An array that a Module registers as a buffer when assigned as an attribute, as torch's nn.Buffer.

    ``self.x = Buffer(arr, persistent=False)`` is ``self.register_buffer("x", arr, persistent=False)``:
    the module keeps a plain ndarray view of ``arr`` (shared memory). ``data=None`` is an empty array.
    """

    def __new__(cls, data=None, *, persistent=True):
        arr = np.empty(0, dtype=get_default_dtype()) if data is None else np.asarray(data)
        buf = arr.view(cls)
        buf.persistent = bool(persistent)
        return buf

    def __array_finalize__(self, obj):
        self.persistent = getattr(obj, "persistent", True)

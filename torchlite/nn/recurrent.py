"""Recurrent layers: RNN, LSTM, GRU and their one-step cells, with torch's constructors,
parameter names and layouts (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...; LSTM gates i, f, g, o;
GRU gates r, z, n), so torch state_dicts load as they are. The math is in
``torchlite.nn.functional.recurrent``.

Backward takes the upstream gradients with the nesting of forward's outputs and returns the
gradients with the nesting of forward's inputs:

    output, h_n = rnn(x, h_0)                  ->  dx, dh_0 = rnn.backward(g_output, g_h_n)
    output, (h_n, c_n) = lstm(x, (h_0, c_0))   ->  dx, (dh_0, dc_0) = lstm.backward(g_output, (g_h_n, g_c_n))

Upstream entries may be None (no gradient there). Without an initial state in forward,
backward returns dx alone.
"""
import math
import numbers
import warnings

import numpy as np

from .._dtype import get_default_dtype
from . import functional as F
from . import init
from ._checks import as_float_input, shape_error
from .module import Module, _check_device
from .parameter import Parameter
from .utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _check_sizes(input_size, hidden_size):
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")


class RNNBase(Module):
    """Shared constructor, checks and layout handling of RNN, LSTM and GRU.

    Shapes (L = sequence length, N = batch, D = 2 if bidirectional else 1,
    P = proj_size or hidden_size):
        input: (L, N, input_size), (N, L, input_size) with ``batch_first``, (L, input_size)
            unbatched, or a PackedSequence.
        h_0 / h_n: (D*num_layers, N, P), or (D*num_layers, P) unbatched; LSTM's c_0 / c_n
            have hidden_size features.
        output: (L, N, D*P) (batch_first: (N, L, D*P); unbatched (L, D*P); PackedSequence in,
            PackedSequence out).
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        if mode not in F.RNN_MODES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=2)
        for name, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        _check_sizes(input_size, hidden_size)
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        dtype = dtype or get_default_dtype()
        gates = F.RNN_MODES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        directions = 2 if bidirectional else 1
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gates, layer_input)), ("weight_hh", (gates, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gates,)), ("bias_hh", (gates,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                for name, shape in shapes:
                    setattr(self, name + suffix, Parameter(np.empty(shape, dtype=dtype)))
                self._all_weights.append([name + suffix for name, _ in shapes])
        self._flat_weights_names = [name for names in self._all_weights for name in names]
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self):
        """A no-op kept for torch code that calls it (it only matters for cuDNN)."""

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ------------------------------------------------------------------ forward / backward
    def forward(self, input, hx=None):
        """Returns (output, h_n) for RNN and GRU, (output, (h_n, c_n)) for LSTM."""
        if type(self) is RNNBase:  # as torch's; the LSTM state handling lives in LSTM
            raise NotImplementedError(f"{self!r}: RNNBase has no forward, as in torch; use nn.RNN, nn.LSTM or nn.GRU")
        x, layout = self._packed_input(input)
        states = self._initial_states(hx, layout)
        out, finals, cache = F.recurrent_stack(self.mode, x, states, self._weights(), layout["batch_sizes"],
                                               self.num_layers, self.bidirectional, self.dropout, self.training)
        self.save_for_backward(cache, layout, hx is not None)
        return self._unpack(out, layout), self._nest(tuple(self._user_state(s, layout) for s in finals))

    def backward(self, grad_output, grad_state=None):
        """Upstream gradients of (output, h_n) or, for LSTM, (output, (h_n, c_n)); entries may be None.

        Returns dx, or (dx, dh_0) / (dx, (dh_0, dc_0)) when forward was given initial states.
        dx is None when ``needs_input_grad`` is False; a PackedSequence for packed input.
        """
        cache, layout, had_state = self.pop_saved()
        grad = self._packed_grad(grad_output, layout)
        grad_states = self._split_state(grad_state)
        if grad_states is not None:
            names = tuple("grad of " + n.replace("_0", "_n") for n in self._state_names)
            grad_states = tuple(None if g is None else self._internal_state(g, layout, name, shape)
                                for g, name, shape in zip(grad_states, names, self._state_shapes(layout)))
        dx, dstates, dweights = F.recurrent_stack_backward(grad, grad_states, cache, self.needs_input_grad)
        for names, grads in zip(self._all_weights, dweights):
            for name, g in zip(names, (g for g in grads if g is not None)):
                self._weight(name).accumulate_grad(g)
        dx = None if dx is None else self._unpack(dx, layout)
        if not had_state:
            return dx
        return dx, self._nest(tuple(self._user_state(s, layout) for s in dstates))

    # ------------------------------------------------------------------ helpers
    _state_names = ("h_0",)

    def _nest(self, states):
        return states[0]

    def _split_state(self, state):
        return None if state is None else (state,)

    def _weight(self, name):
        # A weight under weight_norm, spectral_norm or a parametrization lives outside _parameters,
        # computed by hooks and read as an attribute (as torch's _flat_weights); plain ones stay a dict lookup.
        p = self._parameters
        return p[name] if name in p else getattr(self, name)

    def _weights(self):
        p = {name: self._weight(name).data for name in self._flat_weights_names}
        return [tuple(p.get(f"{w}_l{layer}{suffix}")
                      for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))
                for layer in range(self.num_layers)
                for suffix in (("", "_reverse") if self.bidirectional else ("",))]

    def _packed_input(self, input):
        """The input as packed time-major rows, and how to give results back in the caller's layout."""
        dtype = self.weight_ih_l0.dtype
        if isinstance(input, PackedSequence):
            x = as_float_input(self, input.data, dtype)
            if x.ndim != 2 or x.shape[1] != self.input_size:
                raise shape_error(self, f"PackedSequence data (total, {self.input_size})", x)
            batch_sizes = np.asarray(input.batch_sizes, dtype=np.int64)
            return x, dict(kind="packed", batch_sizes=batch_sizes, N=int(batch_sizes[0]),
                           sorted=input.sorted_indices, unsorted=input.unsorted_indices)
        x = as_float_input(self, input, dtype)
        seq_axis = 1 if self.batch_first and x.ndim == 3 else 0  # an empty batch is fine, an empty sequence not
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size or x.shape[seq_axis] == 0:
            batch = "(N, L, {0})" if self.batch_first else "(L, N, {0})"
            raise shape_error(self, (batch + " or (L, {0})").format(self.input_size), x)
        kind = "batched" if x.ndim == 3 else "unbatched"
        if kind == "unbatched":
            x = x[:, None]
        elif self.batch_first:
            x = x.swapaxes(0, 1)
        T, N = x.shape[:2]
        x = np.ascontiguousarray(x).reshape(T * N, self.input_size)
        return x, dict(kind=kind, batch_sizes=[N] * T, N=N, T=T)

    def _state_shapes(self, layout):
        k = self.num_layers * (2 if self.bidirectional else 1)
        return [(k, layout["N"], self.proj_size or self.hidden_size)]

    def _initial_states(self, hx, layout):
        shapes = self._state_shapes(layout)
        if hx is None:
            return tuple(np.zeros(shape, dtype=self.weight_ih_l0.dtype) for shape in shapes)
        return tuple(self._internal_state(s, layout, name, shape)
                     for s, name, shape in zip(self._split_state(hx), self._state_names, shapes))

    def _internal_state(self, s, layout, name, shape):
        """A state (or its gradient) from the caller's layout to (D*num_layers, N, features), sorted."""
        s = as_float_input(self, s, self.weight_ih_l0.dtype, name)
        expected = shape[::2] if layout["kind"] == "unbatched" else shape
        if s.shape != expected:
            raise shape_error(self, str(expected), s, name)
        if layout["kind"] == "unbatched":
            return s[:, None]
        if layout["kind"] == "packed" and layout["sorted"] is not None:
            return s[:, layout["sorted"]]
        return s

    def _user_state(self, s, layout):
        """A final state (or an initial-state gradient) back in the caller's layout and order."""
        if layout["kind"] == "unbatched":
            return s[:, 0]
        if layout["kind"] == "packed" and layout["unsorted"] is not None:
            return s[:, layout["unsorted"]]
        return s

    def _unpack(self, rows, layout):
        if layout["kind"] == "packed":
            return PackedSequence(rows, layout["batch_sizes"], layout["sorted"], layout["unsorted"])
        out = rows.reshape(layout["T"], layout["N"], rows.shape[-1])
        if layout["kind"] == "unbatched":
            return out[:, 0]
        return out.swapaxes(0, 1) if self.batch_first else out

    def _packed_grad(self, grad, layout):
        """The output gradient as packed rows (None stays None)."""
        if grad is None:
            return None
        features = (2 if self.bidirectional else 1) * (self.proj_size or self.hidden_size)
        dtype = self.weight_ih_l0.dtype
        if layout["kind"] == "packed":
            g = np.asarray(grad.data if isinstance(grad, PackedSequence) else grad, dtype=dtype)
            expected = (int(np.sum(layout["batch_sizes"])), features)
        else:
            g = np.asarray(grad, dtype=dtype)
            T, N = layout["T"], layout["N"]
            expected = (T, features) if layout["kind"] == "unbatched" else ((N, T, features) if self.batch_first
                                                                             else (T, N, features))
        if g.shape != expected:
            raise shape_error(self, str(expected), g, "grad_output")
        if layout["kind"] == "batched" and self.batch_first:
            g = g.swapaxes(0, 1)
        return np.ascontiguousarray(g).reshape(-1, features)


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)``. Returns (output, h_n); see RNNBase for shapes.
    Parameters ``weight_ih_l{k}`` (hidden, in), ``weight_hh_l{k}`` (hidden, hidden),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (hidden,), ``_reverse`` for the second direction;
    all U(-1/sqrt(hidden), 1/sqrt(hidden)).
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o:

        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)   (h_t = W_hr (o * tanh(c_t)) with proj_size > 0)

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0)``. ``forward(input, (h_0, c_0)=None)`` returns
    (output, (h_n, c_n)); see RNNBase for shapes. Parameters as RNN with 4*hidden rows, plus
    ``weight_hr_l{k}`` (proj_size, hidden) with projections.
    """

    _state_names = ("h_0", "c_0")

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def _nest(self, states):
        return states

    def _split_state(self, state):
        if state is None:
            return None
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(f"{self!r}: expected the state as a tuple (h, c), got {type(state).__name__}")
        return tuple(state)

    def _state_shapes(self, layout):
        (h_shape,) = super()._state_shapes(layout)
        return [h_shape, h_shape[:2] + (self.hidden_size,)]


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n:

        n_t = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn)),   h_t = (1 - z) * n_t + z * h_{t-1}

    Same constructor and shapes as RNN (without ``nonlinearity``); 3*hidden gate rows.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


# ---------------------------------------------------------------------- cells
class RNNCellBase(Module):
    """One step of a recurrent layer. input (N, input_size) or (input_size,); states (N, hidden)
    or (hidden,). Parameters ``weight_ih`` (gates*hidden, input_size), ``weight_hh``
    (gates*hidden, hidden), ``bias_ih``, ``bias_hh`` (gates*hidden,), all U(-1/sqrt(hidden), 1/sqrt(hidden)).
    """

    mode = None
    _state_names = ("hx",)

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        _check_device(self, device)
        super().__init__()
        _check_sizes(input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        dtype = dtype or get_default_dtype()
        self.weight_ih = Parameter(np.empty((num_chunks * hidden_size, input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((num_chunks * hidden_size, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(np.empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _weights(self):
        return tuple(None if p is None else p.data
                     for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)) + (None,)

    def _step(self, input, states):
        """Run one step from ``states`` (None or a tuple in the caller's layout); returns the new states."""
        dtype = self.weight_ih.dtype
        x = as_float_input(self, input, dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise shape_error(self, f"(N, {self.input_size}) or ({self.input_size},)", x)
        batched = x.ndim == 2
        x = x if batched else x[None]
        shape = (x.shape[0], self.hidden_size)
        if states is None:
            internal = tuple(np.zeros(shape, dtype=dtype) for _ in self._state_names)
        else:
            internal = tuple(self._batched_state(s, shape, batched, name) for s, name in zip(states, self._state_names))
        _, finals, cache = F.recurrent_layer(self.mode, x, internal, self._weights(), [x.shape[0]])
        self.save_for_backward(cache, shape, batched, states is not None)
        return finals if batched else tuple(s[0] for s in finals)

    def _batched_state(self, s, shape, batched, name):
        s = as_float_input(self, s, self.weight_ih.dtype, name)
        expected = shape if batched else shape[1:]
        if s.shape != expected:
            raise shape_error(self, str(expected), s, name)
        return s if batched else s[None]

    def _step_backward(self, grads):
        """Gradients of the new states (None allowed) -> (dx, state gradients or None when forward had none)."""
        cache, shape, batched, had_state = self.pop_saved()
        grads = tuple(None if g is None else self._batched_state(g, shape, batched, "grad of " + name)
                      for g, name in zip(grads, self._state_names))
        dx, dstates, (dw_ih, dw_hh, db_ih, db_hh, _) = F.recurrent_layer_backward(None, grads, cache,
                                                                                   self.needs_input_grad)
        self.weight_ih.accumulate_grad(dw_ih)
        self.weight_hh.accumulate_grad(dw_hh)
        if self.bias:
            self.bias_ih.accumulate_grad(db_ih)
            self.bias_hh.accumulate_grad(db_hh)
        if not batched:
            dx = None if dx is None else dx[0]
            dstates = tuple(d[0] for d in dstates)
        return dx, (dstates if had_state else None)


class RNNCell(RNNCellBase):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu.

    ``forward(input, hx=None) -> h'``; ``backward(grad_h) -> dx``, or (dx, dhx) when hx was given.
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        _check_device(self, device)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}. Select from 'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype)
        self.nonlinearity = nonlinearity

    @property
    def mode(self):
        return "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"

    def forward(self, input, hx=None):
        (h,) = self._step(input, None if hx is None else (hx,))
        return h

    def backward(self, grad_output):
        dx, dstates = self._step_backward((grad_output,))
        return dx if dstates is None else (dx, dstates[0])


class LSTMCell(RNNCellBase):
    """c' = f * c + i * g, h' = o * tanh(c') with gates i, f, g, o.

    ``forward(input, (h, c)=None) -> (h', c')``; ``backward(grad_h, grad_c=None) -> dx``, or
    (dx, (dh, dc)) when (h, c) was given.
    """

    mode = "LSTM"
    _state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"{self!r}: expected the state as a tuple (h, c), got {type(hx).__name__}")
        return self._step(input, hx)

    def backward(self, grad_h, grad_c=None):
        dx, dstates = self._step_backward((grad_h, grad_c))
        return dx if dstates is None else (dx, dstates)


class GRUCell(RNNCellBase):
    """h' = (1 - z) * n + z * h with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), gates r, z, n.

    ``forward(input, hx=None) -> h'``; ``backward(grad_h) -> dx``, or (dx, dhx) when hx was given.
    """

    mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        _check_device(self, device)
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype)

    def forward(self, input, hx=None):
        (h,) = self._step(input, None if hx is None else (hx,))
        return h

    def backward(self, grad_output):
        dx, dstates = self._step_backward((grad_output,))
        return dx if dstates is None else (dx, dstates[0])

"""Convolution and transposed convolution, 1d/2d/3d, from one N-d im2col + GEMM implementation.

Shapes: input (N, C_in, *spatial), weight (C_out, C_in / groups, *kernel), bias (C_out,);
transposed convolution takes weight (C_in, C_out / groups, *kernel). Outputs are C-contiguous.

Where the time goes, and why the code is laid out as it is (float32, one core; the 32->64
3x3 conv on 64 x 14 x 14 unless said otherwise):
- im2col copies a strided window view (``as_strided``) into a column buffer laid out so that
  the copy moves long contiguous runs: "pixel-major" (N, *out, groups, *kernel, C_in/groups)
  read from a channels-last copy of the input, whose innermost run is kernel_w * C_in floats,
  or "tap-major" (C_in, *kernel, N, *out) read from the channels-first input, whose run is a
  whole output row. The longer run wins: 0.8 ms, against 6.9 ms for the naive
  ``sliding_window_view(...).reshape``; BLAS reads either layout through its transpose flags.
- One matmul call per convolution: a GEMM over all pixels (batched over groups) when each
  output takes many multiplies, else one GEMM per sample writing (N, C_out, *out) directly,
  which skips the transposing copy (see ``_per_sample``). The GEMMs are 70-80% of the time.
- The input gradient comes from one matmul batched over kernel taps, giving each tap its own
  (N, *out, C_in) block, then col2im adds one block per tap into a channels-last buffer; each
  add moves rows of out_w * C_in contiguous floats (1.8 ms, against 3.7 ms for pixel-major
  columns whose runs are only C_in long).
- The forward keeps the column buffer for the weight gradient (memory: kernel-size times the
  input) instead of rebuilding it, and layers reuse their big buffers through a
  ``Workspace`` (page faults were a fifth of the step).
"""
import math
from collections import namedtuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._layout import empty_nd, is_channels_last

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
    "conv_nd", "conv_nd_backward", "conv_transpose_nd", "conv_transpose_nd_backward",
    "conv_tbc", "conv_tbc_backward", "ConvContext", "Workspace", "conv_nd_blocks",
]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _ntuple(value, n, name, who):
    """``value`` (int or length-n sequence of ints) as an n-tuple of ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{who}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(out) != n:
        raise ValueError(f"{who}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


class _Geometry:
    """Sizes of one N-d convolution seen as input (N, C, *size) -> output (N, O, *out).

    ``pads`` holds (before, after) per spatial dim. ``out`` is given explicitly for transposed
    convolutions, where output_padding can leave the last rows of the input unread.
    ``tile``: the kernel of a max pool (stride = kernel) reading this output; the pixels are then
    only those inside its windows, ordered by window tap first (see ``conv_nd_blocks``).
    """

    __slots__ = ("n", "c", "o", "groups", "size", "kernel", "stride", "dilation", "pads", "out", "padded",
                 "pixel_major", "tile")

    def __init__(self, n, c, o, groups, size, kernel, stride, dilation, pads, out, tile=None):
        self.n, self.c, self.o, self.groups = n, c, o, groups
        self.size, self.kernel, self.stride, self.dilation = size, kernel, stride, dilation
        self.pads, self.out, self.tile = pads, out, tile
        self.padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, pads))
        self.pixel_major = _prefer_pixel_major(self)

    @property
    def taps(self):
        return math.prod(self.kernel)

    @property
    def pooled(self):
        """Output size of the pool reading this convolution (``tile`` set)."""
        return tuple(o // k for o, k in zip(self.out, self.tile))

    @property
    def pixels(self):
        if self.tile:
            return math.prod(self.tile) * self.n * math.prod(self.pooled)
        return self.n * math.prod(self.out)


def _prefer_pixel_major(geo):
    """Pick the column layout whose im2col copy moves the longer contiguous runs."""
    cg = geo.c // geo.groups
    run_pixel = cg * (geo.kernel[-1] if geo.dilation[-1] == 1 and geo.groups == 1 else 1)
    run_tap = geo.out[-1] if geo.stride[-1] == 1 else 1
    return run_pixel >= run_tap


ConvContext = namedtuple("ConvContext", ["geometry", "cols", "weight", "has_bias", "channels_last"],
                         defaults=(False,))
ConvContext.__doc__ = ("What a convolution's backward needs: its geometry, column buffer and weight, and whether "
                       "the input was a view of channels-last memory (its gradient comes back so too, as torch).")


class Workspace:
    """Big scratch arrays a layer keeps between steps, handed out by name, shape and dtype.

    Fresh arrays of many MB cost page faults on every step: a 32->64 3x3 conv on 64x14x14
    took ~3,500 faults and ~8 ms of its ~40 ms forward+backward without reuse. A buffer is
    lent by ``take`` and comes back with ``give``; one still lent (a column buffer waiting
    for its backward) is never handed out twice. ``Workspace(keep=False)`` keeps nothing.
    """

    def __init__(self, keep=True):
        self.keep = keep
        self._free = {}

    def take(self, name, shape, dtype, zero=False):
        """An array of ``shape``: zeroed if ``zero`` is True, zeroed when new only if ``zero == 'once'``."""
        arr = self._free.pop(name, None)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            return (np.zeros if zero else np.empty)(shape, dtype)
        if zero is True:
            arr.fill(0)
        return arr

    def give(self, name, arr):
        """Return an array ``take`` lent (never a view of anything else)."""
        if self.keep:
            self._free[name] = arr

    def clear(self):
        self._free.clear()


_NO_WORKSPACE = Workspace(keep=False)


def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, who):
    d = len(w_shape) - 2
    if len(x_shape) != d + 2:
        raise ValueError(f"{who}: expected input (N, C, {_SPATIAL[d]}), got shape {tuple(x_shape)}")
    stride = _ntuple(stride, d, "stride", who)
    dilation = _ntuple(dilation, d, "dilation", who)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{who}: groups must be a positive integer, got {groups!r}")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{who}: stride and dilation must be positive, got stride={stride}, dilation={dilation}")
    n, c, *size = x_shape
    o, cg, *kernel = w_shape
    _check_kernel(o, kernel, w_shape, who)
    _check_spatial(x_shape, who)
    if c != cg * groups:
        raise ValueError(f"{who}: expected input with {cg * groups} channels (weight {tuple(w_shape)}, "
                         f"groups={groups}), got shape {tuple(x_shape)}")
    if o % groups:
        raise ValueError(f"{who}: out channels {o} not divisible by groups={groups}")
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * d
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{who}: padding='same' is not supported for strided convolutions")
            pads = tuple((dl * (k - 1) // 2, dl * (k - 1) - dl * (k - 1) // 2) for k, dl in zip(kernel, dilation))
        else:
            raise ValueError(f"{who}: invalid padding string {padding!r}, should be one of {{'same', 'valid'}}")
    else:
        pads = tuple((p, p) for p in _ntuple(padding, d, "padding", who))
        if min(pads)[0] < 0:
            raise ValueError(f"{who}: negative padding is not supported, got {padding!r}")
    reach = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation))
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, pads))
    if any(p < r for p, r in zip(padded, reach)):
        raise ValueError(f"{who}: input of spatial size {tuple(size)} (padded {padded}) is smaller than the "
                         f"kernel reach {reach} (kernel {tuple(kernel)}, dilation {dilation})")
    out = tuple((p - r) // s + 1 for p, r, s in zip(padded, reach, stride))
    return _Geometry(n, c, o, groups, tuple(size), tuple(kernel), stride, dilation, pads, out)


def _check_spatial(x_shape, who):
    """torch takes empty spatial dims only with an empty batch or no channels."""
    n, c, *size = x_shape
    if n and c and 0 in size:
        raise ValueError(f"{who}: an input with an empty spatial dim needs an empty batch or no channels, "
                         f"got shape {tuple(x_shape)}")


def _check_kernel(lead, kernel, w_shape, who):
    """torch refuses a weight with no filters or an empty kernel."""
    if lead == 0:
        raise ValueError(f"{who}: expected weight with at least 1 filter along dim 0, got shape {tuple(w_shape)}")
    if min(kernel) < 1:
        raise ValueError(f"{who}: kernel size should be greater than zero, got weight of shape {tuple(w_shape)}")


# ------------------------------------------------------------------------------ building blocks
def _padded(x, geo, channels_last, ws):
    """The zero-padded input, channels-last (N, *padded, C) or channels-first (N, C, *padded).

    A view of ``x`` when no padding is needed and its layout already fits. The workspace
    copy keeps its zero border between calls; only the interior is written.
    """
    interior = tuple(slice(lo, lo + s) for (lo, _), s in zip(geo.pads, geo.size))
    padding = any(lo or hi for lo, hi in geo.pads)
    if channels_last:
        view = np.moveaxis(x, 1, -1)
        if not padding and (geo.c == 1 or view.strides[-1] == x.itemsize):
            return view
        xp = ws.take(("padded", True, geo.pads), (geo.n,) + geo.padded + (geo.c,), x.dtype, zero="once")
        xp[(slice(None),) + interior] = view
    else:
        if not padding:
            return x
        xp = ws.take(("padded", False, geo.pads), (geo.n, geo.c) + geo.padded, x.dtype, zero="once")
        xp[(slice(None), slice(None)) + interior] = x
    ws.give(("padded", channels_last, geo.pads), xp)
    return xp


def _im2col(x, geo, ws):
    """Column buffer: pixel-major (N, *out, groups, *kernel, C/groups) or tap-major (C, *kernel, N, *out)."""
    cg = geo.c // geo.groups
    xp = _padded(x, geo, geo.pixel_major, ws)
    if geo.pixel_major:
        s_n, *s_sp, s_c = xp.strides
    else:
        s_n, s_c, *s_sp = xp.strides
    pixel_shape, pixel_strides = _pixel_order(geo, s_n, s_sp)
    if geo.pixel_major:
        shape = pixel_shape + (geo.groups,) + geo.kernel + (cg,)
        strides = pixel_strides + (cg * s_c,) + tuple(dl * s for dl, s in zip(geo.dilation, s_sp)) + (s_c,)
    else:
        shape = (geo.c,) + geo.kernel + pixel_shape
        strides = (s_c,) + tuple(dl * s for dl, s in zip(geo.dilation, s_sp)) + pixel_strides
    cols = ws.take("cols", shape, x.dtype)
    np.copyto(cols, as_strided(xp, shape, strides, writeable=False))
    return cols


def _pixel_order(geo, s_n, s_sp):
    """Shape and strides (over the padded input) of the output pixels as the columns order them:
    (N, *out), or with a pool ``tile`` (*tile, N, *pooled), window taps first."""
    step = tuple(st * s for st, s in zip(geo.stride, s_sp))
    if not geo.tile:
        return (geo.n,) + geo.out, (s_n,) + step
    return (geo.tile + (geo.n,) + geo.pooled,
            step + (s_n,) + tuple(k * s for k, s in zip(geo.tile, step)))


def _per_sample(geo):
    """Whether to run one GEMM per sample (and group) rather than one over all pixels.

    Per-sample GEMMs write (N, O, *out) directly; the single GEMM runs faster but needs a
    transposing copy of its output, worth it only when each output takes many multiplies.
    One core, forward: 1->32 3x3 on 28x28 1.8 ms against 3.7, 1->6 5x5 0.5 against 1.0,
    6->16 5x5 0.24 against 0.29; 32->64 3x3 on 14x14 8.2 ms against 7.2.
    """
    return geo.taps * geo.c // geo.groups < 256


def _sample_columns(cols, geo):
    """The column buffer as (N, groups, taps*C/groups, pixels per sample): BLAS-ready strided matrices."""
    g, kc, p = geo.groups, geo.taps * geo.c // geo.groups, geo.pixels // geo.n
    if geo.pixel_major:
        return cols.reshape(geo.n, p, g, kc).transpose(0, 2, 3, 1)
    return cols.reshape(g, kc, geo.n, p).transpose(2, 0, 1, 3)


def _weight_matrix(w, geo):
    """The weight as (groups, O/groups, taps*C/groups), its columns in the column buffer's row order."""
    g, og, cg = geo.groups, geo.o // geo.groups, geo.c // geo.groups
    if geo.pixel_major:
        return np.ascontiguousarray(w.reshape(g, og, cg, geo.taps).transpose(0, 1, 3, 2)).reshape(g, og, -1)
    return w.reshape(g, og, cg * geo.taps)


def _gemm_forward(cols, w, bias, geo, out=None, channels_last=False):
    """The convolution output (N, O, *out), C-contiguous, from the column buffer (into ``out`` if given).

    ``channels_last``: where the GEMM writes pixel-major rows, return them as they are, an
    (N, O, *out) view of (N, *out, O) memory, skipping the transposing copy (for a max pool next).
    """
    wm = _weight_matrix(w, geo)
    per_sample = _per_sample(geo)
    if channels_last and out is None and geo.pixel_major and not per_sample:
        y = _pixel_rows(cols, wm, geo).reshape((geo.n,) + geo.out + (geo.o,))
        if bias is not None:
            y += bias
        return np.moveaxis(y, -1, 1)
    if out is None:
        out = np.empty((geo.n, geo.o) + geo.out, w.dtype)
    if per_sample:
        y = out.reshape(geo.n, geo.groups, geo.o // geo.groups, -1)
        np.matmul(wm, _sample_columns(cols, geo), out=y)
        if bias is not None:
            y += bias.reshape(geo.groups, -1, 1)
        return out
    if geo.pixel_major:
        y = _pixel_rows(cols, wm, geo).reshape(geo.n, -1, geo.o).transpose(0, 2, 1)
    else:
        y = np.matmul(wm, cols.reshape(geo.groups, -1, geo.pixels)).reshape(geo.o, geo.n, -1).transpose(1, 0, 2)
    flat = out.reshape(y.shape)
    if bias is None:
        np.copyto(flat, y)
    else:
        np.add(y, bias.reshape(-1, 1), out=flat)
    return out


def _pixel_rows(cols, wm, geo):
    """The GEMM over pixel-major columns: (N*out pixels, O), C-contiguous, a row per output pixel."""
    g = geo.groups
    y = np.empty((geo.pixels, g, geo.o // g), wm.dtype)
    np.matmul(cols.reshape(geo.pixels, g, -1).transpose(1, 0, 2), wm.transpose(0, 2, 1), out=y.transpose(1, 0, 2))
    return y.reshape(geo.pixels, geo.o)


def _grad_matrix(grad, geo, ws=_NO_WORKSPACE):
    """grad (N, O, *out) as an (O, N*out) matrix: C-contiguous from ``ws`` (give it back when done),
    or, for a channels-last gradient, a transposed view of it (``.base`` is then not ``ws``'s)."""
    if is_channels_last(grad):
        return np.moveaxis(grad, 1, -1).reshape(geo.pixels, geo.o).T
    gmat = ws.take("gmat", (geo.o, geo.n, geo.pixels // geo.n), grad.dtype)
    np.copyto(gmat, grad.reshape(geo.n, geo.o, -1).transpose(1, 0, 2))
    return gmat.reshape(geo.o, -1)


def _give_grad_matrix(ws, gmat, grad):
    """Return ``_grad_matrix(grad, ...)``'s buffer to ``ws``, unless it was a view of ``grad`` itself."""
    if not is_channels_last(grad):
        ws.give("gmat", gmat.base)


def _weight_grad(grad, gmat, cols, geo):
    """dW (O, C/groups, *kernel) from grad (N, O, *out) and the column buffer.

    One GEMM over all pixels when the (O, N*out) gradient matrix exists (the input gradient
    needs it) or per-sample products would not fit in the column buffer's memory; otherwise
    per-sample GEMMs summed over the batch, which skip that transposed copy (a first layer:
    1->6 5x5 0.14 ms against 0.81, 1->32 3x3 0.63 against 1.94).
    """
    g, og, cg = geo.groups, geo.o // geo.groups, geo.c // geo.groups
    if gmat is None and geo.o * geo.n <= geo.pixels:
        grads = grad.reshape(geo.n, g, og, -1)
        dw = np.matmul(grads, _sample_columns(cols, geo).swapaxes(-1, -2)).sum(axis=0)
    else:
        gg = (_grad_matrix(grad, geo) if gmat is None else gmat).reshape(g, og, geo.pixels)
        if geo.pixel_major:
            cm = cols.reshape(geo.pixels, g, -1).transpose(1, 0, 2)
        else:
            cm = cols.reshape(g, -1, geo.pixels).transpose(0, 2, 1)
        dw = _summed_matmul(gg[0], cm[0])[None] if g == 1 else np.matmul(gg, cm)
    if geo.pixel_major:
        dw = dw.reshape(g, og, geo.taps, cg).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(dw).reshape((geo.o, cg) + geo.kernel)


SPLIT_K = 32  # row chunks of a long-inner-dimension GEMM with a small result


def _summed_matmul(a, b):
    """a (M, P) @ b (P, K); for a small (M, K) result and long P, as SPLIT_K batched products summed.

    OpenBLAS runs one GEMM with a long inner dimension and a small result 2-3x slower than a batch
    of shorter ones (2 threads: 32 x 50176 @ 50176 x 9 1.05 ms against 0.35; 6 x 36864 @ 36864 x 25
    0.69 against 0.33; 64 x 12544 @ 12544 x 288 is faster whole).
    """
    m, p = a.shape
    k = b.shape[1]
    q = p // SPLIT_K
    if m * k > 8192 or q < 256:
        return np.matmul(a, b)
    cut = q * SPLIT_K
    out = np.matmul(a[:, :cut].reshape(m, SPLIT_K, q).transpose(1, 0, 2), b[:cut].reshape(SPLIT_K, q, k)).sum(axis=0)
    if cut < p:
        out += a[:, cut:] @ b[cut:]
    return out


def _bias_grad(grad):
    """db (C,) of grad (N, C, *spatial): einsum's reduction, 1.6-3x faster than sum(axis=(0, 2)), as accurate."""
    return np.einsum("ncp->c", grad.reshape(grad.shape[0], grad.shape[1], -1))


INPUT_GRAD_ELEMENTS = 1 << 19  # per-tap products of one chunk of samples: 2 MB of float32, read back from cache


def _input_grad_chunk(geo):
    """Samples per chunk of the input gradient: their per-tap products fit in ``INPUT_GRAD_ELEMENTS``,
    and the chunks are as even as that allows (64 samples in 2 chunks: 32 + 32, not 54 + 10)."""
    most = max(1, INPUT_GRAD_ELEMENTS // max(1, geo.taps * geo.pixels // geo.n * geo.c))
    return -(-geo.n // -(-geo.n // most))


def _input_grad(gmat, w, geo, ws, channels_last=False):
    """dx (N, C, *size): per chunk of samples, one matmul batched over taps, then col2im by one slice-add per tap.

    ``channels_last``: dx as a view of (N, *size, C) memory, the layout col2im works in (no transposing copy).

    Chunks keep the per-tap products (taps x rows x C, 14 MB for a 32->64 3x3 conv on 64x14x14)
    in cache between the GEMM that writes them and the slice-adds that read them: that input
    gradient took 4.8 ms in 8-sample chunks against 6.2 ms in one piece (2 threads).
    """
    g, taps = geo.groups, geo.taps
    og, cg = geo.o // g, geo.c // g
    per_sample = geo.pixels // geo.n
    chunk = _input_grad_chunk(geo)
    wk = np.ascontiguousarray(w.reshape(g, og, cg, taps).transpose(3, 0, 1, 2))  # (taps, g, og, cg)
    grads = gmat.reshape(g, og, geo.n, per_sample)
    dk = ws.take("dk", (taps, min(chunk, geo.n) * per_sample, g, cg), w.dtype)
    dxp = ws.take("dxp", (geo.n,) + geo.padded + (geo.c,), w.dtype, zero=True)
    # never a view of dxp, which goes back to the workspace
    dx = empty_nd((geo.n, geo.c) + geo.size, w.dtype, channels_last)
    inner = tuple(slice(lo, lo + s) for (lo, _), s in zip(geo.pads, geo.size))
    for start in range(0, geo.n, chunk):
        n = min(chunk, geo.n - start)
        rows = n * per_sample
        # (g, rows, og), a view BLAS reads transposed
        a = grads[:, :, start:start + n].reshape(g, og, rows).transpose(0, 2, 1)
        part = dk[:, :rows]
        np.matmul(a, wk, out=part.transpose(0, 2, 1, 3))
        taps_out = part.reshape((taps, n) + geo.out + (geo.c,))
        dxp_part = dxp[start:start + n]
        for t, offset in enumerate(np.ndindex(*geo.kernel)):
            window = tuple(slice(k * dl, k * dl + st * (o - 1) + 1, st)
                           for k, dl, st, o in zip(offset, geo.dilation, geo.stride, geo.out))
            dxp_part[(slice(None),) + window] += taps_out[t]
        np.copyto(dx[start:start + n], np.moveaxis(dxp_part[(slice(None),) + inner], -1, 1))
    ws.give("dk", dk)
    ws.give("dxp", dxp)
    return dx


def _check_weight(x, weight, d, who):
    x = np.asarray(x)
    weight = np.asarray(weight)
    if weight.ndim != d + 2:
        raise ValueError(f"{who}: expected weight with {d + 2} dims, got shape {weight.shape}")
    if x.dtype != weight.dtype:
        x = x.astype(weight.dtype)
    return x, weight


def _check_bias(bias, channels, who):
    if bias is None:
        return None
    bias = np.asarray(bias)
    if bias.shape != (channels,):
        raise ValueError(f"{who}: expected bias of shape ({channels},), got {bias.shape}")
    return bias


# ------------------------------------------------------------------------------ convolution
def conv_nd(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, return_context=False, who=None,
            workspace=None, max_columns=None, channels_last_output=False):
    """N-d convolution (cross-correlation), the dimension taken from ``weight``.

    input (N, C_in, *spatial), weight (C_out, C_in/groups, *kernel), bias (C_out,) or None.
    padding: int, tuple, 'valid' or 'same' (extra padding after, when the total is odd, as torch).
    Returns (N, C_out, *out) with out = (in + 2*pad - dilation*(kernel-1) - 1) // stride + 1,
    and with ``return_context=True`` also the ConvContext that ``conv_nd_backward`` takes.
    ``workspace``: a Workspace to reuse big buffers from (a layer passes the same one each step).
    ``max_columns``: without a context, run in chunks of samples whose column buffer holds at
    most this many elements (memory stays bounded whatever the batch; the output is the same).
    ``channels_last_output``: the output may be a view of (N, *out, C_out) memory (same values),
    which saves a transposing copy where the next layer reads any layout.
    """
    d = np.ndim(weight) - 2
    who = who or f"conv{d}d"
    x, weight = _check_weight(input, weight, d, who)
    geo = _conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, who)
    bias = _check_bias(bias, geo.o, who)
    ws = workspace or _NO_WORKSPACE
    if geo.n == 0:  # an empty batch: an empty output, as torch
        y = np.empty((0, geo.o) + geo.out, weight.dtype)
        return (y, ConvContext(geo, None, weight, bias is not None)) if return_context else y
    per_sample = geo.pixels // geo.n * geo.taps * geo.c // geo.groups
    if max_columns and not return_context and geo.n * per_sample > max_columns:
        return _conv_in_chunks(x, weight, bias, geo, max(1, max_columns // per_sample), ws)
    cols = _im2col(x, geo, ws)
    y = _gemm_forward(cols, weight, bias, geo, channels_last=channels_last_output)
    if return_context:
        return y, ConvContext(geo, cols, weight, bias is not None, is_channels_last(x))
    ws.give("cols", cols)
    return y


def conv_nd_blocks(input, weight, bias, stride, padding, dilation, groups, tile, ceil_mode=False, who=None,
                   workspace=None):
    """The output pixels that a max pool of kernel = stride = ``tile`` (no padding or dilation) reads, grouped
    by window tap, and the ConvContext for ``conv_nd_backward``; None where this does not apply (groups > 1,
    an empty batch, or a ceil_mode pool with partial windows): call ``conv_nd`` then.

    Returns (blocks, ctx): blocks (T, N, C_out, *pooled), T = prod(tile), pooled = out // tile, a view of
    (T, N, *pooled, C_out) memory; ``blocks[t][:, :, *p]`` is the output at tap t of window p. The pool
    then reduces T contiguous blocks (``max_pool_blocks``) instead of T strided views of the whole output,
    and pixels in no window (what a floor-mode pool drops) are never computed. ``conv_nd_backward`` takes
    the gradient in the same (T, N, C_out, *pooled) form.
    """
    d = np.ndim(weight) - 2
    who = who or f"conv{d}d"
    x, weight = _check_weight(input, weight, d, who)
    geo = _conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, who)
    bias = _check_bias(bias, geo.o, who)
    tile = tuple(tile)
    if (geo.groups != 1 or geo.n == 0 or len(tile) != d or any(o < k for o, k in zip(geo.out, tile))
            or (ceil_mode and any(o % k for o, k in zip(geo.out, tile)))):
        return None
    geo.tile = tile
    cols = _im2col(x, geo, workspace or _NO_WORKSPACE)
    wm = _weight_matrix(weight, geo)[0]  # (O, taps*C), columns in the column buffer's order
    a = cols.reshape(geo.pixels, -1) if geo.pixel_major else cols.reshape(-1, geo.pixels).T
    y = np.matmul(a, wm.T)  # (pixels, O): BLAS reads tap-major columns through its transpose flag
    if bias is not None:
        y += bias
    blocks = np.moveaxis(y.reshape((math.prod(tile), geo.n) + geo.pooled + (geo.o,)), -1, 2)
    return blocks, ConvContext(geo, cols, weight, bias is not None, is_channels_last(x))


def _blocks_backward(grad, ctx, needs_input_grad, needs_weight_grad, ws):
    """(dx, dw, db) of ``conv_nd_blocks`` from the gradient of its blocks (T, N, C_out, *pooled)."""
    geo = ctx.geometry
    expected = (math.prod(geo.tile), geo.n, geo.o) + geo.pooled
    if grad.shape != expected:
        raise ValueError(f"conv{len(geo.size)}d_backward: expected grad_output of shape {expected}, "
                         f"got {grad.shape}")
    gmat = np.moveaxis(grad, 2, -1).reshape(geo.pixels, geo.o).T  # (O, pixels); a view of the blocks' memory
    dw = _weight_grad(grad, gmat, ctx.cols, geo) if needs_weight_grad else None
    ws.give("cols", ctx.cols)
    db = np.einsum("op->o", gmat) if ctx.has_bias else None
    dx = None
    if needs_input_grad:
        full = _unblocked(grad, geo, ws)
        whole = _Geometry(geo.n, geo.c, geo.o, geo.groups, geo.size, geo.kernel, geo.stride, geo.dilation,
                          geo.pads, geo.out)  # the same convolution over every output pixel
        dx = _input_grad(full.reshape(-1, geo.o).T, ctx.weight, whole, ws, ctx.channels_last)
        ws.give("unblocked", full)
    return dx, dw, db


def _unblocked(grad, geo, ws):
    """The blocks' gradient as the whole output's, (N, *out, C_out): zero where no window reads."""
    cropped = any(o % k for o, k in zip(geo.out, geo.tile))
    full = ws.take("unblocked", (geo.n,) + geo.out + (geo.o,), grad.dtype, zero=cropped)
    for t, offset in enumerate(np.ndindex(*geo.tile)):
        window = tuple(slice(i, i + k * p, k) for i, k, p in zip(offset, geo.tile, geo.pooled))
        np.copyto(full[(slice(None),) + window], np.moveaxis(grad[t], 1, -1))
    return full


def _empty_batch_grads(ctx, needs_input_grad, needs_weight_grad, input_shape, bias_size):
    """Zero gradients for an empty batch (nothing flowed through the layer)."""
    dtype = ctx.weight.dtype
    dx = np.zeros(input_shape, dtype) if needs_input_grad else None
    dw = np.zeros(ctx.weight.shape, dtype) if needs_weight_grad else None
    db = np.zeros(bias_size, dtype) if ctx.has_bias else None
    return dx, dw, db


def _conv_in_chunks(x, weight, bias, geo, chunk, ws):
    """The forward over ``chunk`` samples at a time, each written straight into the output."""
    y = np.empty((geo.n, geo.o) + geo.out, weight.dtype)
    for start in range(0, geo.n, chunk):
        part = x[start:start + chunk]
        g = _Geometry(len(part), geo.c, geo.o, geo.groups, geo.size, geo.kernel, geo.stride, geo.dilation,
                      geo.pads, geo.out)
        cols = _im2col(part, g, ws)
        _gemm_forward(cols, weight, bias, g, out=y[start:start + chunk])
        ws.give("cols", cols)
    return y


def conv_nd_backward(grad_output, ctx, needs_input_grad=True, needs_weight_grad=True, workspace=None):
    """(dx, dw, db) of ``conv_nd`` from its context; each is None when not needed (db without bias).

    The context's column buffer goes back to ``workspace`` (the forward's) for the next step.
    """
    geo = ctx.geometry
    grad = np.asarray(grad_output, dtype=ctx.weight.dtype)
    if geo.tile:
        return _blocks_backward(grad, ctx, needs_input_grad, needs_weight_grad, workspace or _NO_WORKSPACE)
    if grad.shape != (geo.n, geo.o) + geo.out:
        raise ValueError(f"conv{len(geo.size)}d_backward: expected grad_output of shape "
                         f"{(geo.n, geo.o) + geo.out}, got {grad.shape}")
    if geo.n == 0:
        return _empty_batch_grads(ctx, needs_input_grad, needs_weight_grad, (0, geo.c) + geo.size, geo.o)
    ws = workspace or _NO_WORKSPACE
    gmat = _grad_matrix(grad, geo, ws) if needs_input_grad else None
    dw = _weight_grad(grad, gmat, ctx.cols, geo) if needs_weight_grad else None
    ws.give("cols", ctx.cols)
    db = _bias_grad(grad) if ctx.has_bias else None
    dx = None
    if needs_input_grad:
        dx = _input_grad(gmat, ctx.weight, geo, ws, ctx.channels_last)
        _give_grad_matrix(ws, gmat, grad)
    return dx, dw, db


def _conv(d, input, weight, bias, stride, padding, dilation, groups):
    _expect_dims(weight, d, f"conv{d}d")
    if np.ndim(input) == d + 1:  # unbatched, as torch's functional API allows
        return _conv(d, np.asarray(input)[None], weight, bias, stride, padding, dilation, groups)[0]
    return conv_nd(input, weight, bias, stride, padding, dilation, groups)


def _conv_backward(d, grad_output, input, weight, bias, stride, padding, dilation, groups, needs_input_grad):
    _expect_dims(weight, d, f"conv{d}d_backward")
    if np.ndim(input) == d + 1:
        dx, dw, db = _conv_backward(d, np.asarray(grad_output)[None], np.asarray(input)[None], weight, bias,
                                    stride, padding, dilation, groups, needs_input_grad)
        return (None if dx is None else dx[0]), dw, db
    _, ctx = conv_nd(input, weight, bias, stride, padding, dilation, groups, return_context=True,
                     who=f"conv{d}d_backward")
    return conv_nd_backward(grad_output, ctx, needs_input_grad)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1d convolution: input (N, C_in, L) or (C_in, L), weight (C_out, C_in/groups, k) -> (N, C_out, L_out)."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2d convolution: input (N, C_in, H, W) or (C_in, H, W), weight (C_out, C_in/groups, kh, kw)
    -> (N, C_out, H_out, W_out)."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3d convolution: input (N, C_in, D, H, W) or unbatched, weight (C_out, C_in/groups, kd, kh, kw)
    -> (N, C_out, *out)."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups)


def conv1d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    needs_input_grad=True):
    """(dx, dw, db) of ``conv1d`` with the same arguments (rebuilds the columns; modules keep them)."""
    return _conv_backward(1, grad_output, input, weight, bias, stride, padding, dilation, groups, needs_input_grad)


def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    needs_input_grad=True):
    """(dx, dw, db) of ``conv2d`` with the same arguments (rebuilds the columns; modules keep them)."""
    return _conv_backward(2, grad_output, input, weight, bias, stride, padding, dilation, groups, needs_input_grad)


def conv3d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    needs_input_grad=True):
    """(dx, dw, db) of ``conv3d`` with the same arguments (rebuilds the columns; modules keep them)."""
    return _conv_backward(3, grad_output, input, weight, bias, stride, padding, dilation, groups, needs_input_grad)


def conv_tbc(input, weight, bias, pad=0):
    """1d convolution over (time, batch, channels) sequences: input (T, N, C_in), weight (k, C_in, C_out),
    bias (C_out,), ``pad`` zero steps on both ends -> (T + 2*pad - k + 1, N, C_out)."""
    x, w = _tbc_args(input, weight, "conv_tbc", bias)
    if _tbc_bias_only(x, w, pad):
        steps = max(x.shape[0] + 2 * pad - w.shape[0] + 1, 0)
        return np.broadcast_to(np.asarray(bias, w.dtype), (steps, x.shape[1], w.shape[2])).copy()
    y = conv_nd(x.transpose(1, 2, 0), w.transpose(2, 1, 0), bias, padding=pad, who="conv_tbc")
    return np.ascontiguousarray(y.transpose(2, 0, 1))


def conv_tbc_backward(grad_output, input, weight, bias, pad=0):
    """(dx, dweight, dbias) of ``conv_tbc``: shapes of input, weight and bias."""
    x, w = _tbc_args(input, weight, "conv_tbc_backward", bias)
    if _tbc_bias_only(x, w, pad):
        g = np.asarray(grad_output, dtype=w.dtype)
        return np.zeros_like(x), np.zeros_like(w), g.sum(axis=(0, 1))
    _, ctx = conv_nd(x.transpose(1, 2, 0), w.transpose(2, 1, 0), bias, padding=pad, return_context=True,
                     who="conv_tbc_backward")
    g = np.asarray(grad_output, dtype=w.dtype).transpose(1, 2, 0)
    dx, dw, db = conv_nd_backward(g, ctx)
    return np.ascontiguousarray(dx.transpose(2, 0, 1)), np.ascontiguousarray(dw.transpose(2, 1, 0)), db


def _tbc_bias_only(x, w, pad):
    """Whether the output is the bias alone, as torch makes it: an empty sequence (all padding) or one
    step short of a window (an empty output)."""
    return x.shape[0] == 0 or x.shape[0] + 2 * pad + 1 == w.shape[0]


def _tbc_args(input, weight, who, bias):
    x, w = np.asarray(input), np.asarray(weight)
    if x.ndim != 3 or w.ndim != 3:
        raise ValueError(f"{who}: expected input (T, N, C_in) and weight (k, C_in, C_out), got shapes "
                         f"{x.shape} and {w.shape}")
    if np.shape(bias) != w.shape[2:]:
        raise ValueError(f"{who}: expected bias ({w.shape[2]},), got shape {np.shape(bias)}")
    if x.shape[2] != w.shape[1]:
        raise ValueError(f"{who}: input has {x.shape[2]} channels but weight {w.shape} expects {w.shape[1]}")
    return x.astype(w.dtype, copy=False), w


def _expect_dims(weight, d, who):
    if np.ndim(weight) != d + 2:
        raise ValueError(f"{who}: expected weight with {d + 2} dims, got shape {np.shape(weight)}")


# ------------------------------------------------------------------------------ transposed convolution
def _transpose_geometry(x_shape, w_shape, stride, padding, output_padding, groups, dilation, who):
    """The geometry of the convolution whose input gradient this transposed convolution is."""
    d = len(w_shape) - 2
    if len(x_shape) != d + 2:
        raise ValueError(f"{who}: expected input (N, C, {_SPATIAL[d]}), got shape {tuple(x_shape)}")
    if isinstance(padding, str):
        raise ValueError(f"{who}: padding must be an int or a tuple of {d} ints, got {padding!r}")
    stride = _ntuple(stride, d, "stride", who)
    padding = _ntuple(padding, d, "padding", who)
    output_padding = _ntuple(output_padding, d, "output_padding", who)
    dilation = _ntuple(dilation, d, "dilation", who)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{who}: groups must be a positive integer, got {groups!r}")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{who}: stride and dilation must be positive and padding non-negative, got "
                         f"stride={stride}, padding={padding}, dilation={dilation}")
    for op, s, dl in zip(output_padding, stride, dilation):
        if not 0 <= op < max(s, dl):
            raise ValueError(f"{who}: output padding must be smaller than either stride or dilation, got "
                             f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    n, c_in, *size = x_shape
    w_in, og, *kernel = w_shape
    _check_kernel(w_in, kernel, w_shape, who)
    if og == 0:
        raise ValueError(f"{who}: expected weight (C_in, C_out/groups, *kernel) with at least 1 output channel, "
                         f"got shape {tuple(w_shape)}")
    _check_spatial(x_shape, who)
    if c_in != w_in:
        raise ValueError(f"{who}: expected input with {w_in} channels (weight {tuple(w_shape)}), "
                         f"got shape {tuple(x_shape)}")
    if c_in % groups:
        raise ValueError(f"{who}: in channels {c_in} not divisible by groups={groups}")
    out = tuple((i - 1) * s - 2 * p + dl * (k - 1) + op + 1
                for i, s, p, dl, k, op in zip(size, stride, padding, dilation, kernel, output_padding))
    if min(out) < 1:
        raise ValueError(f"{who}: input of spatial size {tuple(size)} gives an output size {out}, "
                         "which is too small")
    # the convolution runs (N, og*groups, *out) -> (N, c_in, *size); its "O" is c_in
    return _Geometry(n, og * groups, c_in, groups, out, tuple(kernel), stride, dilation,
                     tuple((p, p) for p in padding), tuple(size))


def conv_transpose_nd(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                      return_context=False, who=None, workspace=None):
    """N-d transposed convolution (the input gradient of ``conv_nd``), the dimension from ``weight``.

    input (N, C_in, *spatial), weight (C_in, C_out/groups, *kernel), bias (C_out,) or None.
    Returns (N, C_out, *out), out = (in-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1;
    with ``return_context=True`` also the ConvContext that ``conv_transpose_nd_backward`` takes.
    """
    d = np.ndim(weight) - 2
    who = who or f"conv_transpose{d}d"
    x, weight = _check_weight(input, weight, d, who)
    geo = _transpose_geometry(x.shape, weight.shape, stride, padding, output_padding, groups, dilation, who)
    bias = _check_bias(bias, geo.c, who)
    if geo.n == 0:
        y = np.empty((0, geo.c) + geo.size, weight.dtype)
        return (y, ConvContext(geo, x, weight, bias is not None)) if return_context else y
    ws = workspace or _NO_WORKSPACE
    gmat = _grad_matrix(x, geo, ws)
    y = _input_grad(gmat, weight, geo, ws)
    _give_grad_matrix(ws, gmat, x)
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * d)
    if return_context:
        return y, ConvContext(geo, x, weight, bias is not None)
    return y


def conv_transpose_nd_backward(grad_output, ctx, needs_input_grad=True, needs_weight_grad=True, workspace=None):
    """(dx, dw, db) of ``conv_transpose_nd`` from its context (whose ``cols`` holds the input)."""
    geo, x, weight = ctx.geometry, ctx.cols, ctx.weight
    grad = np.asarray(grad_output, dtype=weight.dtype)
    if grad.shape != (geo.n, geo.c) + geo.size:
        raise ValueError(f"conv_transpose{len(geo.size)}d_backward: expected grad_output of shape "
                         f"{(geo.n, geo.c) + geo.size}, got {grad.shape}")
    if geo.n == 0:
        return _empty_batch_grads(ctx, needs_input_grad, needs_weight_grad, (0, geo.o) + geo.out, geo.c)
    ws = workspace or _NO_WORKSPACE
    cols = _im2col(grad, geo, ws) if needs_input_grad or needs_weight_grad else None
    dw = _weight_grad(x, None, cols, geo) if needs_weight_grad else None
    db = _bias_grad(grad) if ctx.has_bias else None
    dx = _gemm_forward(cols, weight, None, geo) if needs_input_grad else None
    if cols is not None:
        ws.give("cols", cols)
    return dx, dw, db


def _conv_transpose(d, input, weight, bias, stride, padding, output_padding, groups, dilation):
    _expect_dims(weight, d, f"conv_transpose{d}d")
    if np.ndim(input) == d + 1:
        return _conv_transpose(d, np.asarray(input)[None], weight, bias, stride, padding, output_padding, groups,
                               dilation)[0]
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation)


def _conv_transpose_backward(d, grad_output, input, weight, bias, stride, padding, output_padding, groups,
                             dilation, needs_input_grad):
    who = f"conv_transpose{d}d_backward"
    _expect_dims(weight, d, who)
    if np.ndim(input) == d + 1:
        dx, dw, db = _conv_transpose_backward(d, np.asarray(grad_output)[None], np.asarray(input)[None], weight,
                                              bias, stride, padding, output_padding, groups, dilation,
                                              needs_input_grad)
        return (None if dx is None else dx[0]), dw, db
    x, weight = _check_weight(input, weight, d, who)
    geo = _transpose_geometry(x.shape, weight.shape, stride, padding, output_padding, groups, dilation, who)
    return conv_transpose_nd_backward(grad_output, ConvContext(geo, x, weight, bias is not None), needs_input_grad)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1d transposed convolution: input (N, C_in, L), weight (C_in, C_out/groups, k) -> (N, C_out, L_out)."""
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2d transposed convolution: input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw) -> (N, C_out, *out)."""
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3d transposed convolution: input (N, C_in, D, H, W), weight (C_in, C_out/groups, *k) -> (N, C_out, *out)."""
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose1d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, needs_input_grad=True):
    """(dx, dw, db) of ``conv_transpose1d`` with the same arguments."""
    return _conv_transpose_backward(1, grad_output, input, weight, bias, stride, padding, output_padding, groups,
                                    dilation, needs_input_grad)


def conv_transpose2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, needs_input_grad=True):
    """(dx, dw, db) of ``conv_transpose2d`` with the same arguments."""
    return _conv_transpose_backward(2, grad_output, input, weight, bias, stride, padding, output_padding, groups,
                                    dilation, needs_input_grad)


def conv_transpose3d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, needs_input_grad=True):
    """(dx, dw, db) of ``conv_transpose3d`` with the same arguments."""
    return _conv_transpose_backward(3, grad_output, input, weight, bias, stride, padding, output_padding, groups,
                                    dilation, needs_input_grad)

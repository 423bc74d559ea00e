"""Property tests: every module in torchlite.nn against torch on random options and inputs.

For each module class exported by ``torchlite.nn`` a hypothesis strategy draws constructor
options from torch's documented argument space and inputs of random shapes and dtypes, wrong
ones included (wrong rank, wrong channel or feature size, empty dims, 0-d, integer and bool
dtypes, float32/float64). Each case must end one of two ways:

- both accept: the same module is built in torch, its (randomized) weights copied into
  torchlite through ``state_dict``, and outputs, output dtypes, buffers, input gradients and
  parameter gradients agree (float64 rtol 1e-7, float32 rtol 1e-5, atol scaled to the data, as
  tests/parity.py; where float32 misses that, torchlite may be off from torch's float64 answer
  by at most 4x torch's own float32 error), and nothing stays on the saved stack;
- both refuse: torchlite raises ValueError or TypeError (NotImplementedError for what is not
  supported, as torch) naming the module (its class name, or a submodule's for containers),
  leaving nothing saved, and torch raises anything.

Anything else fails: torchlite refusing what torch accepts, accepting what torch refuses, or
raising some other exception (a bare IndexError, a numpy broadcasting error). The deliberate
differences are listed, each with its reason, in ``DELIBERATE_REFUSALS`` and
``DELIBERATE_ACCEPTANCES``, plus three rules in ``run_case``: numeric input to a floating layer
is cast to the layer's dtype (the module contract; torch gets it already cast), an empty input
may give an empty output where torch refuses it (and leaves running statistics alone where
torch writes NaN), and an input dtype torch has no kernel for (bool padding, integer fold) is
computed in that dtype and checked against torch in float64.

Cases are counted per module (``CASES``, ``OUTCOMES``) and the table is printed after the last
test; ``TORCHLITE_PROPERTY_SCALE`` multiplies the examples per module for a longer hunt.
"""
import collections
import copy
import math
import os
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchlite
import torchlite.nn as nn
from parity import TORCH_DTYPE, assert_close, tol

# Examples per module scale by this factor (TORCHLITE_PROPERTY_SCALE=10 for a long local hunt).
EXAMPLES_SCALE = float(os.environ.get("TORCHLITE_PROPERTY_SCALE", "2"))
CASES = collections.Counter()  # module name -> cases run
OUTCOMES = collections.defaultdict(collections.Counter)  # module name -> {"match": n, "refused": n}

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
DATA_DTYPES = [F32, F64, np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.bool_)]


# ================================================================================= cases
@dataclass
class Case:
    """One random trial: how to build the module in each library, and what to feed it.

    ``inputs`` is a tuple of Arg (possibly nested in tuples, as LSTM's (h, c)); ``build(lib)``
    makes the module from ``torch.nn`` or ``torchlite.nn`` (default: ``lib.<name>(*args, **kwargs)``).
    """
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    inputs: tuple = ()
    call_kwargs: dict = field(default_factory=dict)
    train: bool = False
    dtype: np.dtype = F32  # parameter dtype
    build: object = None
    casts: bool = True  # numeric 'x' inputs are computed in float (False: shape-only layers keep the dtype)
    alias: tuple = ()  # (i, j): torchlite gets input i itself as input j (self-attention's x, x, x)
    structural: bool = False  # not callable (containers, abstract bases): compare repr, state and refusal
    param_grads: bool = True  # False where torch's own parameter gradient is known to be wrong
    torch_crashes: str = ""  # why torch would crash the process here: torch is not run, torchlite must refuse


@dataclass
class Arg:
    """An input value and its role: 'x' (differentiable data), 'target' (no gradient),
    'index' (integer indices), 'const' (passed through unchanged, e.g. None or a python float)."""
    value: object
    role: str = "x"

    def __post_init__(self):
        if isinstance(self.value, np.generic):  # a 0-d result of numpy arithmetic
            self.value = np.asarray(self.value)


def X(v):
    return Arg(v, "x")


def T(v):
    return Arg(v, "target")


def Idx(v):
    return Arg(v, "index")


# ================================================================================= drawing helpers
def rng_of(draw):
    return np.random.default_rng(draw(st.integers(0, 2**31 - 1)))


def values(rng, shape, dtype):
    """Random data of ``shape`` in ``dtype``: N(0, 1) floats, small integers, random bools."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.asarray(rng.standard_normal(shape), dtype=dtype)
    if dtype.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)
    return np.asarray(rng.integers(-3, 4, size=shape), dtype=dtype)


def data_dtype(draw, ints=True):
    return draw(st.sampled_from(DATA_DTYPES if ints else DATA_DTYPES[:2]))


def param_dtype(draw):
    return draw(st.sampled_from([F32, F64]))


def mutate(draw, shape, feature_axes=()):
    """``shape`` about 70% of the time, else a wrong variant of it: a dim more or less, a
    feature/channel axis resized, or an empty dim.

    The choice comes from a numpy generator seeded by hypothesis rather than from hypothesis
    itself, which spreads its draws over the branches and would make nearly every case wrong.
    """
    rng = rng_of(draw)
    shape = list(shape)
    kind = rng.choice(["ok", "drop", "add", "feature", "empty"], p=[0.7, 0.075, 0.075, 0.075, 0.075])
    if kind == "drop" and shape:
        del shape[rng.integers(len(shape))]
    elif kind == "add":
        shape.insert(rng.integers(len(shape) + 1), int(rng.integers(1, 4)))
    elif kind == "feature" and feature_axes:
        ax = int(rng.choice(list(feature_axes)))
        if -len(shape) <= ax < len(shape):
            shape[ax] = int(rng.choice([v for v in range(6) if v != shape[ax]]))
    elif kind == "empty" and shape:
        shape[rng.integers(len(shape))] = 0
    return tuple(shape)


def any_shape(draw, max_rank=4, max_size=3):
    """Rank 0..max_rank; a size is 0 about one time in ten (``mutate`` adds more empty dims)."""
    sizes = [0] + list(range(1, max_size + 1)) * 3
    return tuple(draw(st.lists(st.sampled_from(sizes), max_size=max_rank)))


def reduction(draw):
    return draw(st.sampled_from(["mean", "sum", "none"]))


# ================================================================================= running a case
def _map(fn, v):
    if isinstance(v, (tuple, list)):
        items = [_map(fn, a) for a in v]
        return type(v)(*items) if hasattr(v, "_fields") else type(v)(items)  # namedtuples take fields positionally
    return fn(v)


def _leaves(v):
    if isinstance(v, (tuple, list)):
        return [a for b in v for a in _leaves(b)]
    return [v]


def _compute_dtype(case, tl_module, x_dtype):
    """The dtype torchlite computes in: the parameters' (or floating buffers'), else the input's if
    floating, else the default dtype."""
    for _, p in tl_module.named_parameters():
        return case.dtype
    for _, b in tl_module.named_buffers():
        if b.dtype.kind == "f":
            return case.dtype
    if x_dtype is not None and x_dtype.kind == "f":
        return x_dtype
    return torchlite.get_default_dtype()


def _to_torch_arg(arg, compute_dtype, casts):
    v = arg.value
    if not isinstance(v, np.ndarray):
        return v
    if arg.role == "x" and casts and v.dtype.kind in "iubf":
        v = v.astype(compute_dtype)
    elif arg.role == "target" and v.dtype.kind == "f":
        v = v.astype(compute_dtype)
    elif arg.role in ("target", "index") and v.dtype.kind in "iu" and v.dtype != np.int64:
        v = v.astype(np.int64)
    t = torch.from_numpy(np.array(v, copy=True))
    if arg.role == "x" and t.is_floating_point():
        t.requires_grad_(True)
    return t


def _torch_input(t):
    """What torch's module is called with: a clone of a leaf, so in-place layers may write to it."""
    return t.clone() if isinstance(t, torch.Tensor) and t.requires_grad else t


def _names(module):
    return {type(m).__name__ for m in module.modules()}


def _build(case, lib, name):
    if case.build is not None:
        return case.build(lib)
    return getattr(lib, name)(*case.args, **case.kwargs)


def _perturb(module, seed):
    """Random (not default) parameters and running statistics, so that ones and zeros hide nothing."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in module.named_parameters():
            p.add_(torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.5)
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g, dtype=b.dtype) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.rand(b.shape, generator=g, dtype=b.dtype) - 0.5)


def _forward(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn()


def _empty(case):
    return any(isinstance(a.value, np.ndarray) and a.value.size == 0 for a in _leaves(case.inputs) if a.role == "x")


def _empty_indices(case):
    return any(isinstance(a.value, np.ndarray) and a.value.size == 0 for a in _leaves(case.inputs) if a.role == "index")


def _message(*parts):
    """A predicate: the error message contains every part."""
    return lambda case, msg: all(p in msg for p in parts)


# Where torchlite refuses what torch accepts, on purpose: module -> [(predicate(case, message), why)].
DELIBERATE_REFUSALS = {
    "UpsamplingNearest2d": [(_message("expected input (N, C, H, W)"),
                             "the 2d layers take the 4-D input torch documents (torch's runs any rank)")],
    "UpsamplingBilinear2d": [(_message("expected input (N, C, H, W)"), "as UpsamplingNearest2d")],
    "Upsample": [(_message("mode must be one of"), "mode='bicubic' is not implemented (known limitation)"),
                 (_message("output size", "must be positive"),
                  "resizing to an empty output (torch's 'area' mode returns one) is refused"),
                 (_message("expected spatial sizes of at least 1"),
                  "an empty input is refused in every mode (torch's 'area' averages nothing into NaN)")],
    "NLLLoss": [(_message("expected target shape ()"),
                 "input (C,) takes the documented 0-d target; torch also takes an undocumented (1,)"),
                (_message("at least one class"), "zero classes are refused (torch gives NaN if all are ignored)")],
    "CrossEntropyLoss": [(_message("expected target shape ()"), "as NLLLoss"),
                         (_message("at least one class"), "as NLLLoss")],
    "CosineEmbeddingLoss": [(_message("expected input1 and input2 of shape"),
                             "input1 and input2 must have equal shapes; torch broadcasts (1,) against (0,)")],
    "EmbeddingBag": [(_message("only mode='sum' supports it"),
                      "per_sample_weights with mode != 'sum' is refused for any input; torch skips an empty one"),
                     (lambda case, msg: _empty_indices(case) and "expected integer indices" in msg,
                      "the index dtype is checked for an empty input too"),
                     (_message("expected integer indices, got dtype bool"),
                      "bool indices are refused; torch's 1-d input with offsets reads them as 0 and 1")],
    "Embedding": [(lambda case, msg: _empty_indices(case) and "expected integer indices" in msg,
                   "as EmbeddingBag")],
    "Dropout2d": [(_message("Feature dropout requires"), "the input rank is checked for every p, not only p > 0")],
    "Dropout3d": [(_message("Feature dropout requires"), "as Dropout2d")],
    "FeatureAlphaDropout": [(_message("Feature dropout requires"), "as Dropout2d")],
    **{f"{lazy}BatchNorm{d}d": [(lambda case, msg: _empty(case) and "expected input (N," in msg,
                           "an empty input is still checked for its channel count (torch skips the check)"),
                          (lambda case, msg: not case.kwargs["affine"] and not case.kwargs["track_running_stats"]
                           and "expected input (N," in msg,
                           "the channel count must be num_features even without affine parameters or running "
                           "statistics (torch then takes any; a lazy one keeps its first input's count)")]
       for d in (1, 2, 3) for lazy in ("", "Lazy")},
    "CTCLoss": [(_message("target labels must lie in"), "labels outside [0, C) are refused (torch does not check)")],
    "MultiLabelMarginLoss": [(_message("expected target of the input's shape"),
                              "the target takes the input's shape, as documented (torch takes (1,) for a 0-d input)")],
    **{f"{kind}Pool{d}d": [(_message("with non-empty spatial dims"),
                            "an empty window is refused (torch's adaptive pooling averages nothing into NaN)")]
       for kind in ("Max", "Avg", "LP", "AdaptiveAvg", "AdaptiveMax") for d in (1, 2, 3)},
    **{f"MaxUnpool{d}d": [(_message("has 0 elements"), "indices are checked even for an empty output plane")]
       for d in (1, 2, 3)},

    **{f"{lazy}InstanceNorm{d}d": [(lambda case, msg: _empty(case) and "expected input (N," in msg,
                                    "as BatchNorm: an empty input is still checked for its channel count")]
       for d in (1, 2, 3) for lazy in ("", "Lazy")},
    **{cell: [(lambda case, msg: np.ndim(case.inputs[0].value) == 1 and "expected h" in msg,
               "the state is unbatched when the input is (torch also takes a batched one)"),
              (lambda case, msg: np.ndim(case.inputs[0].value) == 1 and "expected c" in msg, "as for h")]
       for cell in ("RNNCell", "LSTMCell", "GRUCell")},
    "MultiLabelSoftMarginLoss": [(_message("does not broadcast to input shape"),
                                  "weight must fit the classes (torch broadcasts a longer one)"),
                                 (_message("with C > 0"), "an input without classes is refused")],
    "SoftMarginLoss": [(_message("(the input's)"), "the target takes the input's shape, as documented "
                                                   "(torch broadcasts)")],
    **{f"{mode}Pad{d}d": [(_message("leaves no elements"), "padding that crops a dimension to nothing is refused"),
                          (_message("wraps around more than once"),
                           "torch reads uninitialized memory there")]
       for mode in ("Circular", "Replication", "Reflection") for d in (1, 2, 3)},
    **{f"{kind}{d}d": [(_message("which is too small"), "a transposed convolution with an empty output is refused")]
       for kind in ("Conv", "ConvTranspose", "LazyConv", "LazyConvTranspose") for d in (1, 2, 3)},
}

for _d in (2, 3):
    DELIBERATE_REFUSALS[f"AdaptiveAvgPool{_d}d"].append(
        (lambda case, msg, d=_d: np.ndim(case.inputs[0].value) not in (d + 1, d + 2) and "expected input" in msg,
         "the documented (N, C, *) or (C, *) input (torch also takes any number of leading dims, or none)"))

# Where torchlite accepts what torch refuses, on purpose: module -> [(substring of torch's error, why)].
DELIBERATE_ACCEPTANCES = {
    **{f"MaxPool{d}d": [("half of kernel size", "padding may be half the dilated kernel, torch's rule without "
                                                "indices; with indices (and so whenever it differentiates) torch "
                                                "checks half the undilated kernel")]
       for d in (1, 2, 3)},
    "AvgPool3d": [("smaller than kernel size", "the padded input is what must hold a window, as in 1d/2d")],
    "EmbeddingBag": [("step must be nonzero", "a 2-D input of empty bags gives zero rows (torch fails making its "
                                              "offsets)")],
    "LPPool3d": [("smaller than kernel size", "as AvgPool3d")],
    "LinearCrossEntropyLoss": [("division or modulo by zero", "with options and in_features=0 torch's chunk-size "
                                                              "rule divides by zero; torchlite computes unchunked")],
}


def _deliberate(table, name, case, message):
    return any(check(case, message) if callable(check) else check in message
               for check, _ in table.get(name, ()))


def _dtype_kernel_missing(error):
    """torch has no kernel for this dtype (e.g. reflection_pad2d on bool); torchlite computes in it."""
    return error is not None and "not implemented for '" in str(error)


def _refusal(error):
    """torchlite's exception types for bad input (NotImplementedError for what is unsupported, as torch)."""
    return isinstance(error, (ValueError, TypeError, NotImplementedError))


def run_case(name, case):
    """Run ``case`` in torch and torchlite; assert they agree or both refuse (see the module docstring)."""
    CASES[name] += 1
    try:
        th = _forward(lambda: _build(case, torch.nn, name))
        th_build_error = None
    except Exception as e:  # noqa: BLE001 - torch may refuse in any way
        th, th_build_error = None, e
    try:
        tl = _forward(lambda: _build(case, nn, name))
    except (ValueError, TypeError) as e:
        assert th_build_error is not None, f"{name}: torchlite refused options torch accepts: {e!r}"
        OUTCOMES[name]["refused"] += 1
        return
    assert th_build_error is None, f"{name}: torchlite accepted options torch refuses ({th_build_error!r})"
    if case.torch_crashes:
        _expect_refusal(name, case, tl)
        return
    th.to(TORCH_DTYPE[case.dtype])
    tl.to(case.dtype)
    _perturb(th, _seed(case))
    tl.load_state_dict({k: v.detach().numpy() for k, v in th.state_dict().items()})
    th.train(case.train)
    tl.train(case.train)

    x_dtypes = [a.value.dtype for a in _leaves(case.inputs) if a.role == "x" and isinstance(a.value, np.ndarray)]
    compute = np.dtype(_compute_dtype(case, tl, x_dtypes[0] if x_dtypes else None))
    th_args, th_kwargs = _torch_args(case, compute, case.casts)
    tl_args = _map(lambda a: np.array(a.value, copy=True) if isinstance(a.value, np.ndarray) else a.value,
                   case.inputs)
    tl_kwargs = {k: _map(lambda a: a.value, v) for k, v in case.call_kwargs.items()}
    for i, j in case.alias:
        tl_args = tl_args[:j] + (tl_args[i],) + tl_args[j + 1:]

    try:
        th_out = _forward(lambda: th(*_map(_torch_input, th_args), **th_kwargs))
        th_error = None
    except Exception as e:  # noqa: BLE001
        th_out, th_error = None, e
    try:
        out = _forward(lambda: tl(*tl_args, **tl_kwargs))
    except Exception as e:  # noqa: BLE001 - judged below; anything unexpected is re-raised
        if not _refusal(e):
            raise
        assert any(n in str(e) for n in _names(tl)), f"{name}: error does not name the module: {e!r}"
        if not list(tl.children()):  # composites keep what their children saved before the refusal (see report)
            _assert_nothing_saved(name, tl)
        if th_error is None and _deliberate(DELIBERATE_REFUSALS, name, case, str(e)):
            OUTCOMES[name]["refused (deliberate)"] += 1
            return
        assert th_error is not None, f"{name}: torchlite refused what torch accepts: {e!r}"
        OUTCOMES[name]["refused"] += 1
        return
    if th_error is not None:
        if _empty(case) and all(np.asarray(o).size == 0 for o in _leaves(out) if o is not None):
            OUTCOMES[name]["empty in, empty out (deliberate)"] += 1
            return
        if _deliberate(DELIBERATE_ACCEPTANCES, name, case, str(th_error)):
            OUTCOMES[name]["accepted (deliberate)"] += 1
            return
        if _dtype_kernel_missing(th_error):
            _compare_in_float64(name, case, th, out)
            return
    assert th_error is None, f"{name}: torchlite accepted what torch refuses ({th_error!r})"
    if any(isinstance(o, torch.Tensor) and o.is_floating_point() and not torch.isfinite(o).all()
           for o in _leaves(th_out)):
        # e.g. a max-pool window lying wholly in the padding: -inf out, an index that means
        # nothing, and a torch backward that follows it (it can abort the process): compare
        # the floating outputs only
        floats = [(a, e) for a, e in zip(_leaves(out), _leaves(th_out)) if np.asarray(a).dtype.kind == "f"]
        _compare_outputs(name, [a for a, _ in floats], [e for _, e in floats])
        OUTCOMES[name]["match (forward only: non-finite output)"] += 1
        return
    _compare_outputs(name, out, th_out, _once(lambda: _reference64(th, th_args, th_kwargs, None)[0]))
    _compare_buffers(name, case, tl, th)
    if _compare_backward(name, case, tl, th, out, th_out, th_args, th_kwargs):
        _assert_nothing_saved(name, tl)


def _expect_refusal(name, case, tl):
    """Where torch would crash (a segfault in its kernel), torchlite must refuse with its error."""
    args = _map(lambda a: a.value, case.inputs)
    with pytest.raises((ValueError, TypeError)) as info:
        _forward(lambda: tl(*args, **{k: _map(lambda a: a.value, v) for k, v in case.call_kwargs.items()}))
    assert any(n in str(info.value) for n in _names(tl)), f"{name}: error does not name the module: {info.value!r}"
    OUTCOMES[name]["refused (torch would crash)"] += 1


def _seed(case):
    """A seed that is a function of the case's inputs, so that a failing case replays exactly."""
    data = [np.ascontiguousarray(a.value).tobytes() for a in _leaves(case.inputs) if isinstance(a.value, np.ndarray)]
    return zlib.crc32(b"".join(data) + repr(sorted(case.kwargs)).encode())


def _assert_nothing_saved(name, module):
    """A refused forward, or a forward and its backward, leave no saved state behind."""
    left = {type(m).__name__: m.saved_count for m in module.modules() if m.saved_count}
    assert not left, f"{name}: saved state left behind: {left}"


def _torch_args(case, compute, casts):
    convert = lambda a: _to_torch_arg(a, compute, casts)  # noqa: E731
    return _map(convert, case.inputs), {k: _map(convert, v) for k, v in case.call_kwargs.items()}


def _compare_in_float64(name, case, th, out):
    """torch has no kernel for the input's dtype: check torchlite's result against torch on float64."""
    th_args, th_kwargs = _torch_args(case, F64, True)
    expected = _forward(lambda: th.double()(*th_args, **th_kwargs))
    for i, (a, e) in enumerate(zip(_leaves(out), _leaves(expected))):
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64), e.detach().numpy(), rtol=1e-7,
                                   err_msg=f"{name}: output {i} (checked in float64)")
    OUTCOMES[name]["match (dtype torch has no kernel for, checked in float64)"] += 1


def _close(actual, expected, what, reference=None):
    """assert_close at the dtype's tolerance; in float32, where that fails, torchlite may be off by as
    much as torch's own float32 result is, times 4 (ill-conditioned cases such as a LayerNorm over
    nearly equal features), both measured against torch in float64 (``reference()``)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
    finite = np.isfinite(expected)  # inf and NaN must match exactly; the tolerance scales with the rest
    np.testing.assert_array_equal(actual[~finite], expected[~finite], err_msg=f"{what}: non-finite entries")
    try:
        assert_close(actual[finite], expected[finite], expected.dtype, what)
    except AssertionError:
        if expected.dtype != F32 or reference is None:
            raise
        actual, expected = actual[finite], expected[finite]
        exact = np.asarray(reference(), dtype=np.float64)[finite]
        ours = np.abs(actual.astype(np.float64) - exact)
        theirs = np.abs(expected.astype(np.float64) - exact)
        bound = 4 * theirs + tol(F32, max(1.0, float(np.max(np.abs(exact), initial=0))))["atol"]
        assert np.all(ours <= bound), f"{what}: off by {np.max(ours - bound):.3g} beyond 4x torch's float32 error"


def _compare_outputs(name, out, th_out, reference=None):
    outs, th_outs = _leaves(out), _leaves(th_out)
    assert len(outs) == len(th_outs), f"{name}: {len(outs)} outputs, torch gives {len(th_outs)}"
    for i, (a, e) in enumerate(zip(outs, th_outs)):
        if e is None:
            continue
        e = e.detach().numpy()
        a = np.asarray(a)
        assert a.dtype == e.dtype, f"{name}: output {i} has dtype {a.dtype}, torch's {e.dtype}"
        if a.dtype.kind == "f":
            _close(a, e, f"{name}: output {i}", reference and (lambda i=i: _leaves(reference())[i]))
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"{name}: output {i}")


def _compare_buffers(name, case, tl, th):
    th_state = th.state_dict()
    for key, v in tl.state_dict().items():
        e = th_state[key].detach().numpy()
        if _empty(case) and e.dtype.kind == "f" and np.isnan(e).any() and key.endswith(("running_mean", "running_var")):
            # deliberate: an empty batch leaves the running statistics alone (torch's InstanceNorm writes NaN)
            assert np.isfinite(v).all(), f"{name}: state {key} after an empty forward"
            continue
        if e.dtype.kind == "f":
            assert_close(v, e, e.dtype, f"{name}: state {key} after forward")
        else:
            np.testing.assert_array_equal(v, e, err_msg=f"{name}: state {key} after forward")


def _upstream(out, rng):
    def one(o):
        if o is None:
            return None
        a = np.asarray(o)
        return rng.standard_normal(a.shape).astype(a.dtype) if a.dtype.kind == "f" else None
    return _map(one, out)


def _reference64(th, th_args, th_kwargs, grads):
    """torch in float64 on the same weights, inputs and upstream gradients: the exact answer that
    float32 results are measured against. Returns (outputs, input gradients, parameter gradients)."""
    ref = copy.deepcopy(th).double()
    ref.zero_grad(set_to_none=True)

    def widen(t):
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            return t.detach().double().requires_grad_(t.requires_grad)
        return t
    args, kwargs = _map(widen, th_args), {k: _map(widen, v) for k, v in th_kwargs.items()}
    out = _forward(lambda: ref(*_map(_torch_input, args), **kwargs))
    outs = [o.detach().numpy() if isinstance(o, torch.Tensor) else o for o in _leaves(out)]
    if grads is None:
        return outs, None, None
    pairs = [(o, torch.from_numpy(np.asarray(g, dtype=np.float64))) for o, g in zip(_leaves(out), _leaves(grads))
             if g is not None and isinstance(o, torch.Tensor) and o.requires_grad]
    torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
    input_grads = [a.grad.numpy() if isinstance(a, torch.Tensor) and a.grad is not None else None
                   for a in _leaves(args)]
    return outs, input_grads, {n: p.grad.numpy() for n, p in ref.named_parameters() if p.grad is not None}


def _once(fn):
    cache = []
    return lambda: cache[0] if cache else cache.append(fn()) or cache[0]


def _compare_backward(name, case, tl, th, out, th_out, th_args, th_kwargs):
    """Same random upstream gradient into both; compare input and parameter gradients.
    Returns whether torchlite's backward ran."""
    grads = _upstream(out, np.random.default_rng(1))
    th_pairs = [(o, torch.from_numpy(np.array(g))) for o, g in zip(_leaves(th_out), _leaves(grads))
                if g is not None and isinstance(o, torch.Tensor) and o.requires_grad]
    if not th_pairs:
        OUTCOMES[name]["match (nothing to differentiate)"] += 1
        return False
    try:
        torch.autograd.backward([o for o, _ in th_pairs], [g for _, g in th_pairs])
    except RuntimeError:  # e.g. in-place leaky_relu with a negative slope: torch cannot differentiate it
        OUTCOMES[name]["match (forward only: torch's backward refuses)"] += 1
        return False
    OUTCOMES[name]["match"] += 1
    reference = _once(lambda: _reference64(th, th_args, th_kwargs, grads))
    dx = tl.backward(*grads) if isinstance(out, (tuple, list)) else tl.backward(grads)
    if len(case.inputs) == 1:
        dx = (dx,)
    dxs = _leaves(dx) if isinstance(dx, (tuple, list)) else [dx]
    args = _leaves(case.inputs)
    for i, (t, arg) in enumerate(zip(_leaves(th_args), args)):
        if arg.role != "x" or not isinstance(t, torch.Tensor) or not t.requires_grad:
            continue
        assert i < len(dxs) and dxs[i] is not None, f"{name}: backward gave no gradient for input {i}"
        g, e = np.asarray(dxs[i]), t.grad.numpy() if t.grad is not None else np.zeros(t.shape, t.numpy().dtype)
        # the gradient comes in the dtype the layer computed in, or in the input's own floating dtype
        # (the default dtype for integer input: a container's first layer may have no parameters)
        own = arg.value.dtype if arg.value.dtype.kind == "f" else torchlite.get_default_dtype()
        allowed = {e.dtype, np.dtype(own)}
        assert g.dtype in allowed, f"{name}: grad of input {i} has dtype {g.dtype}, expected one of {allowed}"
        exact = lambda i=i, e=e: reference()[1][i] if reference()[1][i] is not None else np.zeros(e.shape)  # noqa: E731
        _close(g.astype(e.dtype), e, f"{name}: grad of input {i}", exact)
    if not case.param_grads:
        return True
    th_params = dict(th.named_parameters())
    for pname, p in tl.named_parameters():
        tp = th_params[pname]
        if _empty(case) and tp.grad is not None and torch.isnan(tp.grad).any():
            # torch's GroupNorm gives NaN weight gradients for an empty input; a sum over nothing is 0
            assert p.grad is None or not np.any(p.grad), f"{name}: grad of {pname} for an empty input"
            continue
        if tp.grad is None:
            assert p.grad is None or not np.any(p.grad), f"{name}: grad of {pname}: torch has none"
            continue
        assert p.grad is not None, f"{name}: grad of {pname} is None, torch's is not"
        assert p.grad.dtype == case.dtype, f"{name}: grad of {pname} is {p.grad.dtype}"
        _close(p.grad, tp.grad.numpy(), f"{name}: grad of {pname}", lambda pname=pname: reference()[2][pname])
    return True


# ================================================================================= strategies
SPECS = {}  # module name -> (composite strategy function, max_examples)


def spec(*names, examples=20):
    def register(fn):
        for n in names:
            SPECS[n] = (fn, examples)
        return fn
    return register


# --------------------------------------------------------------------------------- activations
ELEMENTWISE = {
    "ReLU": lambda d: dict(inplace=d(st.booleans())),
    "ReLU6": lambda d: dict(inplace=d(st.booleans())),
    "SELU": lambda d: dict(inplace=d(st.booleans())),
    "SiLU": lambda d: dict(inplace=d(st.booleans())),
    "Mish": lambda d: dict(inplace=d(st.booleans())),
    "Hardsigmoid": lambda d: dict(inplace=d(st.booleans())),
    "Hardswish": lambda d: dict(inplace=d(st.booleans())),
    "LeakyReLU": lambda d: dict(negative_slope=d(st.floats(-2, 2)), inplace=d(st.booleans())),
    "ELU": lambda d: dict(alpha=d(st.floats(-1, 3)), inplace=d(st.booleans())),
    "CELU": lambda d: dict(alpha=d(st.floats(0.1, 3)), inplace=d(st.booleans())),
    "GELU": lambda d: dict(approximate=d(st.sampled_from(["none", "tanh"]))),
    "Sigmoid": lambda d: {},
    "Tanh": lambda d: {},
    "Softsign": lambda d: {},
    "Tanhshrink": lambda d: {},
    "LogSigmoid": lambda d: {},
    "Hardtanh": lambda d: dict(min_val=d(st.floats(-3, 0)), max_val=d(st.floats(0.1, 3)), inplace=d(st.booleans())),
    "Softplus": lambda d: dict(beta=d(st.floats(0.5, 3)), threshold=d(st.floats(1, 30))),
    "Softshrink": lambda d: dict(lambd=d(st.floats(-0.5, 2))),
    "Hardshrink": lambda d: dict(lambd=d(st.floats(-0.5, 2))),
    "Threshold": lambda d: dict(threshold=d(st.floats(-2, 2)), value=d(st.floats(-3, 3)),
                                inplace=d(st.booleans())),
}


@st.composite
def _elementwise(draw, name):
    rng = rng_of(draw)
    x = values(rng, any_shape(draw), data_dtype(draw))
    return Case(kwargs=ELEMENTWISE[name](draw), inputs=(X(x),), dtype=param_dtype(draw))


spec(*ELEMENTWISE, examples=15)(_elementwise)


@spec("PReLU")
@st.composite
def _prelu(draw, name):
    n = draw(st.sampled_from([1, 1, 2, 3]))
    rank = draw(st.integers(0, 4))
    shape = [draw(st.integers(1, 3)) for _ in range(rank)]
    if rank >= 2 and n > 1:
        shape[1] = n
    shape = mutate(draw, shape, (1,))
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(kwargs=dict(num_parameters=n, init=draw(st.floats(-1, 1))), inputs=(X(x),), dtype=param_dtype(draw))


@spec("Softmax", "LogSoftmax", "Softmin")
@st.composite
def _softmax(draw, name):
    shape = any_shape(draw)
    dim = draw(st.one_of(st.none(), st.integers(-len(shape) - 1, len(shape))))
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(kwargs=dict(dim=dim), inputs=(X(x),), dtype=param_dtype(draw))


# --------------------------------------------------------------------------------- linear, reshapes
@spec("Linear")
@st.composite
def _linear(draw, name):
    fin, fout = draw(st.integers(0, 4)), draw(st.integers(1, 4))
    shape = mutate(draw, any_shape(draw, 3) + (fin,), (-1,))
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(args=(fin, fout), kwargs=dict(bias=draw(st.booleans())), inputs=(X(x),), dtype=param_dtype(draw))


@spec("LazyLinear")
@st.composite
def _lazy_linear(draw, name):
    """Both materialize on a first input of ``fin`` features (0 included); the case is the second call."""
    fout, fin, bias = draw(st.integers(1, 4)), draw(st.integers(0, 4)), draw(st.booleans())
    x = values(rng_of(draw), mutate(draw, any_shape(draw, 2) + (fin,), (-1,)), data_dtype(draw))

    def build(lib):
        m = lib.LazyLinear(fout, bias=bias)
        m(torch.zeros(fin) if lib is torch.nn else np.zeros(fin))
        if lib is nn:
            m.clear_saved()
        return m
    return Case(inputs=(X(x),), dtype=param_dtype(draw), build=build)


@spec("Bilinear")
@st.composite
def _bilinear(draw, name):
    a, b, c = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    lead = any_shape(draw, 2)
    s1 = mutate(draw, lead + (a,), (-1,))
    s2 = mutate(draw, lead + (b,), (-1,))
    rng, dt = rng_of(draw), data_dtype(draw)
    return Case(args=(a, b, c), kwargs=dict(bias=draw(st.booleans())),
                inputs=(X(values(rng, s1, dt)), X(values(rng, s2, dt))), dtype=param_dtype(draw))


@spec("Identity")
@st.composite
def _identity(draw, name):
    x = values(rng_of(draw), any_shape(draw), data_dtype(draw))
    return Case(args=(draw(st.integers()),), kwargs=dict(unused=draw(st.text(max_size=3))), inputs=(X(x),),
                casts=False)


@spec("Flatten")
@st.composite
def _flatten(draw, name):
    x = values(rng_of(draw), any_shape(draw), data_dtype(draw))
    return Case(kwargs=dict(start_dim=draw(st.integers(-4, 3)), end_dim=draw(st.integers(-4, 3))), inputs=(X(x),),
                casts=False)


@spec("Unflatten")
@st.composite
def _unflatten(draw, name):
    sizes = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    if draw(st.booleans()):
        sizes = tuple(-1 if i == draw(st.integers(0, len(sizes) - 1)) else s for i, s in enumerate(sizes))
    shape = list(any_shape(draw, 3, 2))
    dim = draw(st.integers(-len(shape) - 1, len(shape)))
    d = dim + len(shape) if dim < 0 else dim
    if 0 <= d < len(shape):
        shape[d] = int(np.prod([abs(s) for s in sizes]))
    shape = mutate(draw, shape)
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(args=(dim, sizes), inputs=(X(x),), casts=False)


# --------------------------------------------------------------------------------- losses
def _target_shape(draw, shape):
    """Mostly the input's shape; else one that broadcasts, or a wrong one."""
    kind = draw(st.sampled_from(["same"] * 5 + ["broadcast", "wrong"]))
    if kind == "broadcast" and shape:
        return tuple(1 if draw(st.booleans()) else s for s in shape)[draw(st.integers(0, len(shape))):]
    if kind == "wrong":
        return mutate(draw, shape, range(len(shape)))
    return shape


def _loss_data(draw, shape=None):
    shape = any_shape(draw) if shape is None else shape
    rng, dt = rng_of(draw), data_dtype(draw)
    return rng, dt, values(rng, shape, dt), shape


REGRESSION = {
    "MSELoss": lambda d: {},
    "L1Loss": lambda d: {},
    "SmoothL1Loss": lambda d: dict(beta=d(st.sampled_from([0.0, 0.5, 1.0, 2.0]))),
    "HuberLoss": lambda d: dict(delta=d(st.sampled_from([0.5, 1.0, 2.0]))),
    "SoftMarginLoss": lambda d: {},
}


@st.composite
def _regression(draw, name):
    rng, dt, x, shape = _loss_data(draw)
    t = values(rng, _target_shape(draw, shape), F64)
    if name == "SoftMarginLoss":
        t = np.sign(t) + (t == 0)
    return Case(kwargs=dict(reduction=reduction(draw), **REGRESSION[name](draw)), inputs=(X(x), T(t)))


spec(*REGRESSION, examples=20)(_regression)


def _class_shapes(draw):
    """(input shape, target shape) for the classification losses: (N, C), (C,) or (N, C, d1, ...)."""
    c = draw(st.integers(1, 4))
    form = draw(st.sampled_from(["NC", "NC", "C", "NCd"]))
    n = draw(st.integers(0, 3)) if draw(st.integers(0, 5)) == 0 else draw(st.integers(1, 3))
    if form == "C":
        return (c,), ()
    extra = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))) if form == "NCd" else ()
    return (n, c) + extra, (n,) + extra


@spec("NLLLoss", "CrossEntropyLoss", examples=40)
@st.composite
def _classification(draw, name):
    in_shape, t_shape = _class_shapes(draw)
    c = in_shape[0] if len(in_shape) == 1 else in_shape[1]
    rng, dt = rng_of(draw), data_dtype(draw)
    x = values(rng, mutate(draw, in_shape, (0,) if len(in_shape) == 1 else (1,)), dt)
    ignore_index = draw(st.sampled_from([-100, -100, 0, c - 1, -1]))
    kind = draw(st.sampled_from(["index"] * 4 + ["out of range", "float", "int32", "probabilities"]))
    t_shape = mutate(draw, t_shape)
    t = rng.integers(0, c, size=t_shape)
    if kind == "out of range" and t.size:
        t.flat[draw(st.integers(0, t.size - 1))] = draw(st.sampled_from([-1, c, c + 3]))
    if kind == "float":
        t = t.astype(np.float64)
    if kind == "int32":
        t = t.astype(np.int32)
    if kind == "probabilities":
        p = rng.random(x.shape)
        t = p / np.maximum(p.sum(axis=1 if x.ndim > 1 else 0, keepdims=True), 1e-3) if x.ndim else p
    kwargs = dict(reduction=reduction(draw), ignore_index=ignore_index)
    if draw(st.booleans()):
        w_len = draw(st.sampled_from([c, c, c, c + 1]))
        kwargs["weight"] = torch.as_tensor(rng.random(w_len) + 0.1)
    if name == "CrossEntropyLoss" and draw(st.booleans()):
        kwargs["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    return Case(kwargs=kwargs, inputs=(X(x), T(t)), dtype=_float_or_default(dt),
                build=_weighted_build(name, kwargs))


def _float_or_default(dt):
    return dt if dt.kind == "f" else F32


def _weighted_build(name, kwargs):
    """Losses with tensor arguments: torch gets tensors, torchlite numpy arrays."""
    def build(lib):
        kw = {k: (v.numpy() if lib is nn and isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        return getattr(lib, name)(**kw)
    return build


@spec("LinearCrossEntropyLoss", examples=40)
@st.composite
def _linear_cross_entropy(draw, name):
    """in_features 0..4, C 1..4, out_features () or (d1[, d2]); input (N, in) or unbatched (in,), mutated;
    targets: class indices (some equal to the ignored value), out of range, float, int32 or probabilities;
    ignore_index None or a value (torch refuses one with probabilities); weight of C or C + 1; options sometimes."""
    rng = rng_of(draw)
    fin, c = draw(st.integers(0, 4)), draw(st.integers(1, 4))
    of = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))) if draw(st.booleans()) else ()
    n = int(rng.integers(0, 4)) if rng.random() < 0.15 else int(rng.integers(1, 4))
    lead = (n,) if rng.random() < 0.85 else ()
    x = values(rng, mutate(draw, lead + (fin,), (-1,)), data_dtype(draw))
    ignore_index = draw(st.sampled_from([None, None, -100, 0, c - 1, c + 2]))
    kind = rng.choice(["index", "out of range", "float", "int32", "probabilities"], p=[0.6, 0.1, 0.05, 0.05, 0.2])
    if kind == "probabilities":
        ignore_index = ignore_index if rng.random() < 0.25 else None  # torch refuses any other value
        p = rng.random(mutate(draw, lead + (c,) + of, (len(lead),)))
        t = p / np.maximum(p.sum(axis=len(lead), keepdims=True), 1e-3) if p.ndim > len(lead) else p
    else:
        t = rng.integers(0, c, size=mutate(draw, lead + of))
        if t.size and rng.random() < 0.5:
            t.flat[::3] = -100 if ignore_index is None else ignore_index
        if kind == "out of range" and t.size:
            t.flat[draw(st.integers(0, t.size - 1))] = draw(st.sampled_from([-1, c, c + 3]))
        t = t.astype({"float": np.float64, "int32": np.int32}.get(kind, np.int64))
    kwargs = dict(out_features=of, bias=draw(st.booleans()), reduction=reduction(draw), ignore_index=ignore_index,
                  label_smoothing=draw(st.sampled_from([0.0, 0.0, 0.1, 1.0])))
    if draw(st.booleans()):
        kwargs["weight"] = torch.as_tensor(rng.random(draw(st.sampled_from([c, c, c, c + 1]))) + 0.1)
    options = draw(st.sampled_from([None, None, {}, dict(batch_chunk_size=2), dict(chunking_method="aspect_ratio:2"),
                                    dict(batch_chunk_size=1, chunking_method="aspect_ratio")]))

    def build(lib):
        kw = {k: (v.numpy() if lib is nn and isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
        return lib.LinearCrossEntropyLoss(fin, c, options=None if options is None else
                                          lib.LinearCrossEntropyOptions(**options), **kw)
    return Case(inputs=(X(x), T(np.asarray(t))), dtype=param_dtype(draw), build=build)


@spec("BCELoss", "BCEWithLogitsLoss", examples=25)
@st.composite
def _bce(draw, name):
    rng, dt, x, shape = _loss_data(draw)
    if name == "BCELoss":
        if dt.kind == "f":
            x = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(dt)
            if x.size and draw(st.integers(0, 5)) == 0:
                x.flat[0] = 1.5
        else:
            x = (x > 0).astype(dt)
    t = rng.random(_target_shape(draw, shape))
    kwargs = dict(reduction=reduction(draw))
    if draw(st.booleans()) and shape:
        kwargs["weight"] = torch.as_tensor(rng.random(shape[draw(st.integers(0, len(shape))):]) + 0.1)
    if name == "BCEWithLogitsLoss" and draw(st.booleans()) and shape:
        kwargs["pos_weight"] = torch.as_tensor(rng.random(shape[-1:]) + 0.5)
    return Case(kwargs=kwargs, inputs=(X(x), T(t)), dtype=_float_or_default(dt),
                build=_weighted_build(name, kwargs))


@spec("KLDivLoss")
@st.composite
def _kl_div(draw, name):
    rng, dt, x, shape = _loss_data(draw)
    log_target = draw(st.booleans())
    t = rng.random(_target_shape(draw, shape))
    if log_target:
        t = np.log(t + 0.01)
    red = draw(st.sampled_from(["mean", "sum", "none", "batchmean"]))
    return Case(kwargs=dict(reduction=red, log_target=log_target), inputs=(X(x), T(t)))


@spec("MarginRankingLoss")
@st.composite
def _margin_ranking(draw, name):
    rng, dt, x1, shape = _loss_data(draw)
    x2 = values(rng, _target_shape(draw, shape), dt)
    t = np.sign(rng.standard_normal(_target_shape(draw, shape)))
    return Case(kwargs=dict(margin=draw(st.floats(-1, 1)), reduction=reduction(draw)),
                inputs=(X(x1), X(x2), T(t)))


@spec("HingeEmbeddingLoss")
@st.composite
def _hinge(draw, name):
    rng, dt, x, shape = _loss_data(draw)
    t = np.sign(rng.standard_normal(_target_shape(draw, shape)))
    return Case(kwargs=dict(margin=draw(st.floats(-1, 2)), reduction=reduction(draw)), inputs=(X(x), T(t)))


@spec("CosineEmbeddingLoss")
@st.composite
def _cosine(draw, name):
    n, d = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    batched = draw(st.booleans())
    s = (n, d) if batched else (d,)
    rng, dt = rng_of(draw), data_dtype(draw)
    x1, x2 = values(rng, mutate(draw, s, (-1,)), dt), values(rng, mutate(draw, s, (-1,)), dt)
    t = np.sign(rng.standard_normal(mutate(draw, (n,) if batched else ())))
    return Case(kwargs=dict(margin=draw(st.floats(-1, 1)), reduction=reduction(draw)),
                inputs=(X(x1), X(x2), T(t)))


@spec("GaussianNLLLoss", examples=25)
@st.composite
def _gaussian_nll(draw, name):
    n, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (n, d) if draw(st.booleans()) else (d,)
    rng, dt, x, _ = _loss_data(draw, shape)
    t = rng.standard_normal(_target_shape(draw, shape))
    form = draw(st.sampled_from(["same", "last dropped", "last one", "float", "wrong", "negative"]))
    if form == "float":
        var = Arg(draw(st.floats(0.1, 2)), "const")
    else:
        vshape = {"same": shape, "negative": shape, "last dropped": shape[:-1], "last one": shape[:-1] + (1,),
                  "wrong": mutate(draw, shape, range(len(shape)))}[form]
        v = rng.random(vshape) + 0.1
        if form == "negative":
            v.flat[0] = -1.0
        var = X(v.astype(dt) if dt.kind == "f" else v)
    kwargs = dict(full=draw(st.booleans()), eps=draw(st.sampled_from([1e-6, 0.5])), reduction=reduction(draw))
    return Case(kwargs=kwargs, inputs=(X(x), T(t), var))


@spec("PoissonNLLLoss")
@st.composite
def _poisson_nll(draw, name):
    rng, dt, x, shape = _loss_data(draw)
    log_input = draw(st.booleans())
    if not log_input:
        x = np.abs(x)
    t = rng.integers(0, 4, size=_target_shape(draw, shape)).astype(np.float64)
    kwargs = dict(log_input=log_input, full=draw(st.booleans()), eps=draw(st.sampled_from([1e-8, 0.1])),
                  reduction=reduction(draw))
    return Case(kwargs=kwargs, inputs=(X(x), T(t)))


# --------------------------------------------------------------------------------- convolutions
def _dims(name):
    return int(name[-2])


def _ints(draw, n, lo, hi):
    """An int, or a tuple of n ints, in [lo, hi]."""
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return tuple(draw(st.integers(lo, hi)) for _ in range(n))


def _spatial_input(draw, d, channels, max_size=5, batch=True):
    """(N, C, *spatial) or (C, *spatial), then maybe mutated (the channel axis is -d-1)."""
    spatial = tuple(draw(st.integers(1, max_size if d < 3 else 4)) for _ in range(d))
    lead = (draw(st.integers(1, 2)),) if batch and draw(st.booleans()) else ()
    return mutate(draw, lead + (channels,) + spatial, (-d - 1,))


@spec("Conv1d", "Conv2d", "Conv3d", examples=30)
@st.composite
def _conv(draw, name):
    d = _dims(name)
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["same", "valid", "ints", "ints", "ints"]))
    padding = _ints(draw, d, 0, 2) if padding == "ints" else padding
    kwargs = dict(kernel_size=_ints(draw, d, 1, 3), stride=_ints(draw, d, 1, 2), padding=padding,
                  dilation=_ints(draw, d, 1, 2), groups=groups, bias=draw(st.booleans()),
                  padding_mode=draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])))
    x = values(rng_of(draw), _spatial_input(draw, d, cin), data_dtype(draw))
    return Case(args=(cin, cout), kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", examples=30)
@st.composite
def _conv_transpose(draw, name):
    d = _dims(name)
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    stride, dilation = _ints(draw, d, 1, 3), _ints(draw, d, 1, 2)
    top = min(max(np.atleast_1d(stride)), max(np.atleast_1d(dilation)))
    kwargs = dict(kernel_size=_ints(draw, d, 1, 3), stride=stride, padding=_ints(draw, d, 0, 1),
                  output_padding=_ints(draw, d, 0, max(top - 1, 0) + (draw(st.integers(0, 5)) == 0)),
                  groups=groups, bias=draw(st.booleans()), dilation=dilation)
    x = values(rng_of(draw), _spatial_input(draw, d, cin, 4), data_dtype(draw))
    call = {}
    if draw(st.integers(0, 3)) == 0:
        call["output_size"] = Arg(tuple(draw(st.integers(1, 9)) for _ in range(d)), "const")
    return Case(args=(cin, cout), kwargs=kwargs, inputs=(X(x),), call_kwargs=call, dtype=param_dtype(draw))


def _lazy_case(case, name, first_shape):
    """The eager ``case`` built from the lazy class, each library's module materialized on zeros of
    ``first_shape`` (a valid input) first: the property case is the second call."""
    eager_build = case.build

    def build(lib):
        args = case.args[1:]  # the lazy class takes no in_channels / num_features
        m = getattr(lib, name)(*args, **case.kwargs) if eager_build is None else eager_build(lib)
        with (torch.no_grad() if lib is torch.nn else torchlite.no_grad()):
            m(torch.zeros(first_shape) if lib is torch.nn else np.zeros(first_shape, np.float32))
        return m
    return Case(args=case.args, kwargs=case.kwargs, inputs=case.inputs, call_kwargs=case.call_kwargs, train=case.train,
                dtype=case.dtype, build=build)


@spec("LazyConv1d", "LazyConv2d", "LazyConv3d", examples=15)
@st.composite
def _lazy_conv(draw, name):
    case = draw(_conv(name[4:]))
    return _lazy_case(case, name, (1, case.args[0]) + (6,) * _dims(name))


@spec("LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d", examples=15)
@st.composite
def _lazy_conv_transpose(draw, name):
    case = draw(_conv_transpose(name[4:]))
    return _lazy_case(case, name, (1, case.args[0]) + (4,) * _dims(name))


@spec("LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", examples=15)
@st.composite
def _lazy_batch_norm(draw, name):
    case = draw(_batch_norm(name[4:]))
    d = _dims(name)
    return _lazy_case(case, name, (2, case.args[0]) + (2,) * max(d, 1))


@spec("LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d", examples=15)
@st.composite
def _lazy_instance_norm(draw, name):
    case = draw(_instance_norm(name[4:]))
    return _lazy_case(case, name, (2, case.args[0]) + (3,) * _dims(name))


# --------------------------------------------------------------------------------- pooling
def _channels(draw):
    return draw(st.integers(1, 2))


def _pool_padding(draw, kernel, d):
    """Mostly within torch's limit (half the kernel), one time in eight one more somewhere."""
    kernel = (kernel,) * d if isinstance(kernel, int) else kernel
    padding = [draw(st.integers(0, k // 2)) for k in kernel]
    if draw(st.integers(0, 7)) == 0:
        padding[draw(st.integers(0, d - 1))] += 1
    return padding[0] if len(set(padding)) == 1 and draw(st.booleans()) else tuple(padding)


@spec("MaxPool1d", "MaxPool2d", "MaxPool3d", examples=25)
@st.composite
def _max_pool(draw, name):
    d = _dims(name)
    kernel = _ints(draw, d, 1, 3)
    kwargs = dict(kernel_size=kernel, stride=draw(st.one_of(st.none(), st.just(_ints(draw, d, 1, 3)))),
                  padding=_pool_padding(draw, kernel, d), dilation=_ints(draw, d, 1, 2),
                  return_indices=draw(st.booleans()), ceil_mode=draw(st.booleans()))
    x = values(rng_of(draw), _spatial_input(draw, d, _channels(draw)), data_dtype(draw))
    return Case(kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("FractionalMaxPool2d", "FractionalMaxPool3d", examples=20)
@st.composite
def _fractional_max_pool(draw, name):
    """Both libraries get the same window samples (``_random_samples``): torch's draws are its own."""
    d = _dims(name)
    c = _channels(draw)
    kernel = _ints(draw, d, 1, 2)
    kwargs = dict(kernel_size=kernel, return_indices=draw(st.booleans()))
    if draw(st.booleans()):
        kwargs["output_size"] = _ints(draw, d, 1, 2)
    else:
        kwargs["output_ratio"] = draw(st.sampled_from([0.5, 0.75, (0.5, 0.6, 0.7)[:d]]))
    samples = np.random.default_rng(draw(st.integers(0, 99))).random((2, c, d))
    x = values(rng_of(draw), _spatial_input(draw, d, c, 6), data_dtype(draw))
    dtype = param_dtype(draw)

    def build(lib):
        arr = samples.astype(dtype)
        return getattr(lib, name)(**kwargs, _random_samples=torch.from_numpy(arr) if lib is torch.nn else arr)
    return Case(inputs=(X(x),), dtype=dtype, build=build)


@spec("AvgPool1d", "AvgPool2d", "AvgPool3d", examples=25)
@st.composite
def _avg_pool(draw, name):
    d = _dims(name)
    kernel = _ints(draw, d, 1, 3)
    kwargs = dict(kernel_size=kernel, stride=draw(st.one_of(st.none(), st.just(_ints(draw, d, 1, 3)))),
                  padding=_pool_padding(draw, kernel, d), ceil_mode=draw(st.booleans()),
                  count_include_pad=draw(st.booleans()))
    if d > 1:
        kwargs["divisor_override"] = draw(st.sampled_from([None, None, 1, 3]))
    x = values(rng_of(draw), _spatial_input(draw, d, _channels(draw)), data_dtype(draw))
    return Case(kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("LPPool1d", "LPPool2d", "LPPool3d", examples=20)
@st.composite
def _lp_pool(draw, name):
    d = _dims(name)
    norm_type = draw(st.sampled_from([1, 2, 2.0, 3, 1.5]))
    # torch documents LPPool1d's kernel_size and stride as ints (its tuple path fails)
    kwargs = dict(norm_type=norm_type, kernel_size=draw(st.integers(1, 3)) if d == 1 else _ints(draw, d, 1, 3),
                  stride=draw(st.one_of(st.none(), st.integers(1, 3) if d == 1 else st.just(_ints(draw, d, 1, 3)))),
                  ceil_mode=draw(st.booleans()))
    x = values(rng_of(draw), _spatial_input(draw, d, _channels(draw)), data_dtype(draw))
    if norm_type not in (1, 2):  # negative window sums give NaN there
        x = np.abs(x)
    return Case(kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


def _output_size(draw, d):
    if d == 1 or draw(st.booleans()):
        return draw(st.integers(1, 4))
    return tuple(draw(st.one_of(st.none(), st.integers(1, 4))) for _ in range(d))


@spec("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
      "AdaptiveMaxPool3d", examples=20)
@st.composite
def _adaptive_pool(draw, name):
    d = _dims(name)
    kwargs = dict(output_size=_output_size(draw, d))
    if "Max" in name:
        kwargs["return_indices"] = draw(st.booleans())
    x = values(rng_of(draw), _spatial_input(draw, d, _channels(draw)), data_dtype(draw))
    return Case(kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", examples=20)
@st.composite
def _max_unpool(draw, name):
    d = _dims(name)
    # windows that do not overlap (stride = kernel): overlapping ones can give duplicate indices,
    # where torch's result is undefined (which duplicate wins depends on its kernel)
    kernel = _ints(draw, d, 1, 3)
    stride = draw(st.sampled_from([None, kernel]))
    # padding 1 only where every kernel dim allows it (at most half the kernel)
    padding = draw(st.sampled_from([0, 0, 1])) if min(np.atleast_1d(kernel)) > 1 else 0
    rng = rng_of(draw)
    source = rng.standard_normal(tuple(draw(st.integers(1, 2)) for _ in range(2)) +
                                 tuple(draw(st.integers(3, 5)) for _ in range(d)))
    pool = getattr(torch.nn.functional, f"max_pool{d}d")
    try:
        _, idx = pool(torch.from_numpy(source), kernel, stride, padding, return_indices=True)
        idx = idx.numpy()
    except RuntimeError:  # padding too large for this kernel: unpool indices of a plain pool
        _, idx = pool(torch.from_numpy(source), kernel, stride, 0, return_indices=True)
        idx = idx.numpy()
    x_shape = mutate(draw, idx.shape, (1,))
    x = values(rng, x_shape, data_dtype(draw))
    call = {}
    if draw(st.integers(0, 3)) == 0:
        call["output_size"] = Arg(tuple(source.shape[-d:]) if draw(st.booleans()) else
                                  tuple(draw(st.integers(1, 7)) for _ in range(d)), "const")
    if draw(st.integers(0, 5)) == 0 and idx.size:
        idx = idx.copy()
        idx.flat[0] = 10**6
    return Case(args=(kernel,), kwargs=dict(stride=stride, padding=padding), inputs=(X(x), Idx(idx)),
                call_kwargs=call, dtype=param_dtype(draw))


# --------------------------------------------------------------------------------- normalization
@spec("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", examples=25)
@st.composite
def _batch_norm(draw, name):
    d = _dims(name)
    c = draw(st.integers(1, 3))
    spatial = () if d == 1 and draw(st.booleans()) else tuple(draw(st.integers(1, 3)) for _ in range(max(d, 1)))
    shape = mutate(draw, (draw(st.integers(1, 3)), c) + spatial, (1,))
    kwargs = dict(eps=draw(st.sampled_from([1e-5, 0.1])), momentum=draw(st.sampled_from([0.1, None, 0.5])),
                  affine=draw(st.booleans()), track_running_stats=draw(st.booleans()))
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(args=(c,), kwargs=kwargs, inputs=(X(x),), train=draw(st.booleans()), dtype=param_dtype(draw))


@spec("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", examples=25)
@st.composite
def _instance_norm(draw, name):
    d = _dims(name)
    c = draw(st.integers(1, 3))
    kwargs = dict(eps=draw(st.sampled_from([1e-5, 0.1])), momentum=draw(st.sampled_from([0.1, None])),
                  affine=draw(st.booleans()), track_running_stats=draw(st.booleans()))
    x = values(rng_of(draw), _spatial_input(draw, d, c, 3), data_dtype(draw))
    return Case(args=(c,), kwargs=kwargs, inputs=(X(x),), train=draw(st.booleans()), dtype=param_dtype(draw))


def _normalized_shape(draw):
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    return (shape[0] if len(shape) == 1 and draw(st.booleans()) else shape), shape


@spec("LayerNorm", "RMSNorm", examples=25)
@st.composite
def _trailing_norm(draw, name):
    arg, shape = _normalized_shape(draw)
    x_shape = mutate(draw, any_shape(draw, 2) + shape, (-1, -len(shape)))
    if name == "LayerNorm":
        kwargs = dict(eps=draw(st.sampled_from([1e-5, 0.1])), elementwise_affine=draw(st.booleans()),
                      bias=draw(st.booleans()))
    else:
        kwargs = dict(eps=draw(st.sampled_from([None, 1e-5, 0.1])), elementwise_affine=draw(st.booleans()))
    x = values(rng_of(draw), x_shape, data_dtype(draw))
    return Case(args=(arg,), kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("GroupNorm", examples=25)
@st.composite
def _group_norm(draw, name):
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 2))
    shape = mutate(draw, (draw(st.integers(1, 2)), c) + any_shape(draw, 2), (1,))
    kwargs = dict(eps=draw(st.sampled_from([1e-5, 0.1])), affine=draw(st.booleans()))
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(args=(groups, c), kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("LocalResponseNorm")
@st.composite
def _lrn(draw, name):
    kwargs = dict(size=draw(st.integers(1, 4)), alpha=draw(st.sampled_from([1e-4, 0.5])),
                  beta=draw(st.sampled_from([0.75, 1.0])), k=draw(st.sampled_from([1.0, 2.0])))
    shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.sampled_from([3, 3, 4, 4, 5]))))
    x = values(rng_of(draw), mutate(draw, shape), data_dtype(draw))
    return Case(kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("CrossMapLRN2d")
@st.composite
def _cross_map_lrn(draw, name):
    """torch's legacy LRN takes (N, C, H, W) only; its backward fails for size 1 (both sides refuse it)."""
    args = (draw(st.integers(1, 5)), draw(st.sampled_from([1e-4, 0.5])), draw(st.sampled_from([0.75, 1.0])),
            draw(st.sampled_from([1, 2.0])))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.sampled_from([3, 4, 4, 4, 5]))))
    x = values(rng_of(draw), mutate(draw, shape), data_dtype(draw))
    return Case(args=args, inputs=(X(x),), dtype=param_dtype(draw))


# --------------------------------------------------------------------------------- dropout
DROPOUT_RANKS = {"Dropout": None, "AlphaDropout": None, "FeatureAlphaDropout": (2, 5), "Dropout1d": (2, 3),
                 "Dropout2d": (3, 4), "Dropout3d": (4, 5)}


@spec(*DROPOUT_RANKS, examples=20)
@st.composite
def _dropout(draw, name):
    """Training mode with p in {0, 1} (no randomness), or eval mode with any p."""
    train = draw(st.booleans())
    p = draw(st.sampled_from([0.0, 1.0])) if train else draw(st.floats(0, 1))
    ranks = DROPOUT_RANKS[name]
    shape = any_shape(draw) if ranks is None else tuple(
        draw(st.integers(1, 3)) for _ in range(draw(st.integers(ranks[0] - 1, ranks[1] + 1))))
    x = values(rng_of(draw), mutate(draw, shape), data_dtype(draw))
    return Case(kwargs=dict(p=p, inplace=draw(st.booleans())), inputs=(X(x),), train=train,
                dtype=param_dtype(draw))


# --------------------------------------------------------------------------------- padding, upsampling
PAD_MODES = ["Zero", "Constant", "Reflection", "Replication", "Circular"]


@spec(*[f"{m}Pad{d}d" for m in PAD_MODES for d in (1, 2, 3)], examples=15)
@st.composite
def _pad(draw, name):
    d = _dims(name)
    padding = draw(st.integers(-1, 2)) if draw(st.booleans()) else tuple(draw(st.integers(-1, 2)) for _ in range(2 * d))
    kwargs = dict(value=draw(st.floats(-2, 2))) if name.startswith("Constant") else {}
    low = 1 if name.startswith(("Zero", "Constant", "Replication")) else 3  # reflect/circular need the room
    shape = tuple(draw(st.integers(low, 4)) for _ in range(draw(st.sampled_from([d + 1, d + 2, d + 2, d]))))
    x = values(rng_of(draw), mutate(draw, shape), data_dtype(draw))
    return Case(args=(padding,), kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw), casts=False)


@spec("Upsample", examples=30)
@st.composite
def _upsample(draw, name):
    rank = draw(st.integers(3, 5))
    d = rank - 2
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "area", {1: "linear", 2: "bilinear", 3: "trilinear"}[d],
                                 "linear", "bicubic"]))
    kwargs = dict(mode=mode)
    if draw(st.booleans()):
        kwargs["size"] = _ints(draw, d, 1, 5)
    else:
        kwargs["scale_factor"] = draw(st.sampled_from([0.5, 1.5, 2.0, 2, (2.0,) * d, (1.5, 0.75, 2.0)[:d]]))
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, True, False]))
    if "linear" in mode or mode == "bicubic":
        kwargs["align_corners"] = draw(st.sampled_from([None, True, False]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(draw(st.integers(1, 4)) for _ in range(d))
    x = values(rng_of(draw), mutate(draw, shape), data_dtype(draw))
    return Case(kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


@spec("UpsamplingNearest2d", "UpsamplingBilinear2d")
@st.composite
def _upsampling2d(draw, name):
    kwargs = dict(size=_ints(draw, 2, 1, 5)) if draw(st.booleans()) else dict(
        scale_factor=draw(st.sampled_from([0.5, 2.0, 2, (2.0, 1.5)])))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    x = values(rng_of(draw), mutate(draw, shape), data_dtype(draw))
    return Case(kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw))


# --------------------------------------------------------------------------------- embeddings
def _indices(draw, rng, num, shape):
    idx = rng.integers(0, num, size=shape)
    kind = draw(st.sampled_from(["int64"] * 5 + ["int32", "out of range", "negative", "float", "bool"]))
    if kind == "int32":
        idx = idx.astype(np.int32)
    elif kind == "out of range" and idx.size:
        idx.flat[0] = num
    elif kind == "negative" and idx.size:
        idx.flat[0] = -1
    elif kind == "float":
        idx = idx.astype(np.float32)
    elif kind == "bool":
        idx = idx > 0
    return idx


@spec("Embedding", examples=30)
@st.composite
def _embedding(draw, name):
    num, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    kwargs = dict(padding_idx=draw(st.one_of(st.none(), st.integers(-num, num - 1))),
                  max_norm=draw(st.sampled_from([None, None, 0.5, 2.0])), norm_type=draw(st.sampled_from([2.0, 1.0])),
                  scale_grad_by_freq=draw(st.booleans()))
    rng = rng_of(draw)
    idx = _indices(draw, rng, num, any_shape(draw, 3))
    return Case(args=(num, dim), kwargs=kwargs, inputs=(Idx(idx),), dtype=param_dtype(draw))


@spec("EmbeddingBag", examples=30)
@st.composite
def _embedding_bag(draw, name):
    num, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["sum", "mean", "max"]))
    include_last = draw(st.booleans())
    kwargs = dict(mode=mode, include_last_offset=include_last,
                  padding_idx=draw(st.one_of(st.none(), st.integers(-num, num - 1))),
                  max_norm=draw(st.sampled_from([None, None, 1.0])), scale_grad_by_freq=draw(st.booleans()))
    rng = rng_of(draw)
    dtype = param_dtype(draw)
    if draw(st.booleans()):
        idx = _indices(draw, rng, num, mutate(draw, (draw(st.integers(1, 3)), draw(st.integers(1, 3)))))
        offsets = Arg(None, "const")
    else:
        n = draw(st.integers(0, 5))
        idx = _indices(draw, rng, num, (n,))
        starts = sorted(rng.integers(0, n + 1, size=draw(st.integers(1, 3))).tolist())
        starts[0] = 0 if draw(st.integers(0, 5)) else starts[0]
        offsets = Idx(np.array(starts + ([n] if include_last else []), dtype=np.int64))
    psw = Arg(None, "const")
    if draw(st.integers(0, 2)) == 0:
        psw = X(rng.standard_normal(mutate(draw, np.shape(idx))).astype(dtype))
    # torch's EmbeddingBag divides by the wrong counts with scale_grad_by_freq (see test_embedding.py,
    # which checks it against Embedding + sum): there the weight gradient is not compared
    return Case(args=(num, dim), kwargs=kwargs, inputs=(Idx(idx), offsets, psw), dtype=dtype,
                param_grads=not kwargs["scale_grad_by_freq"])


# --------------------------------------------------------------------------------- recurrent
RNN_CLASSES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


@spec("RNN", "LSTM", "GRU", examples=25)
@st.composite
def _rnn(draw, name):
    mode = {"RNN": draw(st.sampled_from(["RNN_TANH", "RNN_RELU"])), "LSTM": "LSTM", "GRU": "GRU"}[name]
    fin, hidden, layers = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    train = draw(st.booleans())
    kwargs = dict(num_layers=layers, bias=draw(st.booleans()), batch_first=draw(st.booleans()),
                  bidirectional=draw(st.booleans()), dropout=0.0 if train else draw(st.sampled_from([0.0, 0.5])))
    if mode == "LSTM" and hidden > 1 and draw(st.booleans()):
        kwargs["proj_size"] = draw(st.integers(1, hidden - 1))
    cls = RNN_CLASSES[mode]

    def build(lib):
        extra = {"nonlinearity": "tanh" if mode == "RNN_TANH" else "relu"} if cls == "RNN" else {}
        return getattr(lib, cls)(fin, hidden, **kwargs, **extra)
    seq, batch = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    batched = draw(st.integers(0, 3)) > 0
    shape = ((batch, seq) if kwargs["batch_first"] else (seq, batch)) + (fin,) if batched else (seq, fin)
    rng, dtype = rng_of(draw), param_dtype(draw)
    x = values(rng, mutate(draw, shape, (-1,)), data_dtype(draw))
    inputs = (X(x),)
    if draw(st.booleans()):
        k = layers * (2 if kwargs["bidirectional"] else 1)
        lead = (k, batch) if batched else (k,)
        h = values(rng, mutate(draw, lead + (kwargs.get("proj_size") or hidden,), (-1, 0)), dtype)
        if mode == "LSTM":
            inputs += ((X(h), X(values(rng, mutate(draw, lead + (hidden,), (-1,)), dtype))),)
        else:
            inputs += (X(h),)
    return Case(inputs=inputs, train=train, dtype=dtype, build=build)


@spec("RNNCell", "LSTMCell", "GRUCell", examples=20)
@st.composite
def _cell(draw, name):
    fin, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kwargs = dict(bias=draw(st.booleans()))
    if name == "RNNCell":
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    batch = draw(st.integers(1, 2))
    batched = draw(st.booleans())
    lead = (batch,) if batched else ()
    rng, dtype = rng_of(draw), param_dtype(draw)
    inputs = (X(values(rng, mutate(draw, lead + (fin,), (-1,)), data_dtype(draw))),)
    if draw(st.booleans()):
        h = X(values(rng, mutate(draw, lead + (hidden,), (-1,)), dtype))
        inputs += ((h, X(values(rng, mutate(draw, lead + (hidden,), (-1,)), dtype))) if name == "LSTMCell" else h,)
    ranks = {np.ndim(a.value) for a in _leaves(inputs)}
    crash = "torch's cells segfault on states of another rank than the input" if len(ranks) > 1 else ""
    return Case(args=(fin, hidden), kwargs=kwargs, inputs=inputs, dtype=dtype, torch_crashes=crash)


# --------------------------------------------------------------------------------- attention, transformer
def _mask(draw, rng, shape, dtype):
    """A bool mask (True = masked) leaving the first key free, or a float mask; maybe of a wrong shape."""
    shape = mutate(draw, shape)
    if draw(st.booleans()):
        m = rng.random(shape) < 0.3
        if m.ndim and m.shape[-1]:
            m[..., 0] = False
        return m
    return rng.standard_normal(shape).astype(dtype)


@spec("MultiheadAttention", examples=30)
@st.composite
def _mha(draw, name):
    heads = draw(st.integers(1, 2))
    e = heads * draw(st.integers(1, 2))
    kdim, vdim = draw(st.sampled_from([None, None, 2])), draw(st.sampled_from([None, None, 3]))
    batch_first = draw(st.booleans())
    train = draw(st.booleans())
    kwargs = dict(dropout=0.0 if train else draw(st.sampled_from([0.0, 0.3])), bias=draw(st.booleans()),
                  add_bias_kv=draw(st.booleans()), add_zero_attn=draw(st.booleans()), kdim=kdim, vdim=vdim,
                  batch_first=batch_first)
    L, S, N = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    batched = draw(st.integers(0, 3)) > 0

    def shaped(seq, feat):
        if not batched:
            return (seq, feat)
        return (N, seq, feat) if batch_first else (seq, N, feat)
    rng, dtype, dt = rng_of(draw), param_dtype(draw), data_dtype(draw, ints=False)
    self_attention = kdim is None and vdim is None and draw(st.booleans())
    q = values(rng, mutate(draw, shaped(L, e), (-1,)), dt)
    if self_attention:
        k = v = q
        S = L
    else:
        k = values(rng, mutate(draw, shaped(S, kdim or e), (-1,)), dt)
        v = values(rng, shaped(S, vdim or e), dt)
    call = dict(need_weights=Arg(draw(st.booleans()), "const"),
                average_attn_weights=Arg(draw(st.booleans()), "const"))
    if draw(st.booleans()):
        call["key_padding_mask"] = Arg(_mask(draw, rng, (N, S) if batched else (S,), dtype), "target")
    if draw(st.booleans()):
        shape = (L, S) if draw(st.booleans()) else (N * heads, L, S)
        call["attn_mask"] = Arg(_mask(draw, rng, shape, dtype), "target")
    return Case(args=(e, heads), kwargs=kwargs, inputs=(X(q), X(k), X(v)), call_kwargs=call, train=train,
                dtype=dtype, alias=((0, 1), (0, 2)) if self_attention else ())


def _encoder_layer_options(draw):
    heads = draw(st.integers(1, 2))
    train = draw(st.booleans())
    return heads * draw(st.integers(1, 2)), heads, train, dict(
        dim_feedforward=draw(st.integers(1, 4)), dropout=0.0 if train else draw(st.sampled_from([0.0, 0.2])),
        activation=draw(st.sampled_from(["relu", "gelu"])), layer_norm_eps=draw(st.sampled_from([1e-5, 0.1])),
        batch_first=draw(st.booleans()), norm_first=draw(st.booleans()), bias=draw(st.booleans()))


def _src(draw, e, heads, batch_first, dtype, N=None, batched=None):
    """A source (or target, or memory) sequence and masks for it; ``N``, ``batched`` as another's."""
    S = draw(st.integers(1, 3))
    N = draw(st.integers(1, 2)) if N is None else N
    batched = draw(st.integers(0, 3)) > 0 if batched is None else batched
    shape = ((N, S) if batch_first else (S, N)) + (e,) if batched else (S, e)
    rng = rng_of(draw)
    x = values(rng, mutate(draw, shape, (-1,)), data_dtype(draw, ints=False))
    masks = {}
    if draw(st.booleans()):
        masks["mask"] = Arg(_mask(draw, rng, (S, S), dtype), "target")
    if draw(st.booleans()):
        masks["src_key_padding_mask"] = Arg(_mask(draw, rng, (N, S) if batched else (S,), dtype), "target")
    return x, masks, N, batched


@spec("TransformerEncoderLayer", examples=20)
@st.composite
def _encoder_layer(draw, name):
    e, heads, train, kwargs = _encoder_layer_options(draw)
    dtype = param_dtype(draw)
    x, masks, _, _ = _src(draw, e, heads, kwargs["batch_first"], dtype)
    if "mask" in masks:
        masks["src_mask"] = masks.pop("mask")
    return Case(args=(e, heads), kwargs=kwargs, inputs=(X(x),), call_kwargs=masks, train=train, dtype=dtype)


@spec("TransformerDecoderLayer", "TransformerDecoder", "Transformer", examples=12)
@st.composite
def _decoder(draw, name):
    e, heads, train, kwargs = _encoder_layer_options(draw)
    dtype = param_dtype(draw)
    tgt, masks, n, batched = _src(draw, e, heads, kwargs["batch_first"], dtype)
    memory, mem_masks, _, _ = _src(draw, e, heads, kwargs["batch_first"], dtype, n, batched)
    call = {}
    if "mask" in masks:
        call["tgt_mask"] = masks["mask"]
    if "src_key_padding_mask" in masks:
        call["tgt_key_padding_mask"] = masks["src_key_padding_mask"]
    if "src_key_padding_mask" in mem_masks:
        call["memory_key_padding_mask"] = mem_masks["src_key_padding_mask"]
    layers, with_norm = draw(st.integers(1, 2)), draw(st.booleans())

    def build(lib):
        if name == "Transformer":
            return lib.Transformer(e, heads, num_encoder_layers=layers, num_decoder_layers=draw_layers, **kwargs)
        layer = lib.TransformerDecoderLayer(e, heads, **kwargs)
        if name == "TransformerDecoderLayer":
            return layer
        return lib.TransformerDecoder(layer, layers, norm=lib.LayerNorm(e) if with_norm else None)
    draw_layers = draw(st.integers(1, 2))
    inputs = (X(memory), X(tgt)) if name == "Transformer" else (X(tgt), X(memory))
    return Case(inputs=inputs, call_kwargs=call, train=train, dtype=dtype, build=build)


@spec("TransformerEncoder", examples=15)
@st.composite
def _encoder(draw, name):
    e, heads, train, kwargs = _encoder_layer_options(draw)
    layers, with_norm = draw(st.integers(1, 2)), draw(st.booleans())
    nested = draw(st.booleans())

    def build(lib):
        layer = lib.TransformerEncoderLayer(e, heads, **kwargs)
        return lib.TransformerEncoder(layer, layers, norm=lib.LayerNorm(e) if with_norm else None,
                                      enable_nested_tensor=nested)
    dtype = param_dtype(draw)
    x, masks, _, _ = _src(draw, e, heads, kwargs["batch_first"], dtype)
    return Case(inputs=(X(x),), call_kwargs=masks, train=train, dtype=dtype, build=build)


# --------------------------------------------------------------------------------- more activations, reshapes
@spec("Softmax2d")
@st.composite
def _softmax2d(draw, name):
    shape = any_shape(draw, 4)
    shape = shape + (1,) * (3 - len(shape)) if draw(st.integers(0, 3)) else shape  # mostly 3-D or 4-D
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(inputs=(X(x),), dtype=param_dtype(draw))


@spec("GLU")
@st.composite
def _glu(draw, name):
    shape = tuple(draw(st.sampled_from([0, 1, 2, 2, 4])) for _ in range(draw(st.integers(0, 3))))
    dim = draw(st.integers(-len(shape) - 1, len(shape)))
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(kwargs=dict(dim=dim), inputs=(X(x),), dtype=param_dtype(draw))


@spec("RReLU")
@st.composite
def _rrelu(draw, name):
    """Eval mode (the mean slope), or training with lower == upper (a fixed slope): no randomness."""
    lower = draw(st.floats(0, 0.5))
    train = draw(st.booleans())
    upper = lower if train else draw(st.floats(lower, 1))
    x = values(rng_of(draw), any_shape(draw), data_dtype(draw))
    return Case(kwargs=dict(lower=lower, upper=upper, inplace=draw(st.booleans())), inputs=(X(x),), train=train,
                dtype=param_dtype(draw))


@spec("PixelShuffle", "PixelUnshuffle")
@st.composite
def _pixel_shuffle(draw, name):
    r = draw(st.integers(1, 3))
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    core = (c * r * r, h, w) if name == "PixelShuffle" else (c, h * r, w * r)
    shape = mutate(draw, any_shape(draw, 2, 2) + core, (-1, -2, -3))
    # torch mishandles empty input here (pixel_unshuffle returns the input's shape, pixel_shuffle's
    # backward fails), so there is nothing to compare against
    shape = tuple(max(s, 1) for s in shape)
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(args=(r,), inputs=(X(x),), dtype=param_dtype(draw), casts=False)


@spec("ChannelShuffle")
@st.composite
def _channel_shuffle(draw, name):
    g = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 2))))
    shape = mutate(draw, (draw(st.integers(1, 2)), g * draw(st.integers(1, 2))) + spatial, (1,))
    x = values(rng_of(draw), shape, data_dtype(draw))
    return Case(args=(g,), inputs=(X(x),), dtype=param_dtype(draw), casts=False)


def _pairs(draw, lo, hi):
    return draw(st.integers(lo, hi)) if draw(st.booleans()) else (draw(st.integers(lo, hi)), draw(st.integers(lo, hi)))


def _blocks(size, k, dl, p, st_):
    return (size + 2 * p - dl * (k - 1) - 1) // st_ + 1


@spec("Unfold", "Fold", examples=25)
@st.composite
def _fold(draw, name):
    kwargs = dict(kernel_size=_pairs(draw, 1, 3), dilation=_pairs(draw, 1, 2), padding=_pairs(draw, 0, 1),
                  stride=_pairs(draw, 1, 2))
    two = {k: v if isinstance(v, tuple) else (v, v) for k, v in kwargs.items()}
    c, size = draw(st.integers(1, 2)), (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    lead = (draw(st.integers(1, 2)),) if draw(st.booleans()) else ()
    if name == "Unfold":
        shape = lead + (c,) + size
        args = ()
    else:
        blocks = [_blocks(s, *(two[k][i] for k in ("kernel_size", "dilation", "padding", "stride")))
                  for i, s in enumerate(size)]
        shape = lead + (c * two["kernel_size"][0] * two["kernel_size"][1], max(blocks[0], 0) * max(blocks[1], 0))
        args = (size if draw(st.booleans()) or size[0] != size[1] else size[0],)
    x = values(rng_of(draw), mutate(draw, shape, (len(lead),)), data_dtype(draw))
    return Case(args=args, kwargs=kwargs, inputs=(X(x),), dtype=param_dtype(draw), casts=False)


# --------------------------------------------------------------------------------- distances
@spec("PairwiseDistance", "CosineSimilarity", examples=25)
@st.composite
def _distance(draw, name):
    n, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (n, d) if draw(st.booleans()) else (d,)
    rng, dt = rng_of(draw), data_dtype(draw)
    x1 = values(rng, mutate(draw, shape, (-1,)), dt)
    x2 = values(rng, _target_shape(draw, shape), dt)
    if name == "PairwiseDistance":
        kwargs = dict(p=draw(st.sampled_from([1.0, 2.0, 3.0, 0.5, math.inf])), eps=draw(st.sampled_from([1e-6, 0.1])),
                      keepdim=draw(st.booleans()))
    else:
        kwargs = dict(dim=draw(st.integers(-2, 1)), eps=draw(st.sampled_from([1e-8, 0.5])))
    return Case(kwargs=kwargs, inputs=(X(x1), X(x2)), dtype=param_dtype(draw))


# --------------------------------------------------------------------------------- more losses
@spec("MultiMarginLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", examples=25)
@st.composite
def _multi_margin(draw, name):
    c, n = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    batched = draw(st.booleans())
    shape = (n, c) if batched else (c,)
    rng, dt = rng_of(draw), data_dtype(draw)
    x = values(rng, mutate(draw, shape, (-1,)), dt)
    kwargs = dict(reduction=reduction(draw))
    if name == "MultiMarginLoss":
        t = rng.integers(0, c + (draw(st.integers(0, 5)) == 0), size=mutate(draw, shape[:-1]))
        kwargs.update(p=draw(st.sampled_from([1, 2])), margin=draw(st.sampled_from([1.0, 0.5])))
    elif name == "MultiLabelMarginLoss":
        t = rng.integers(-1, c, size=mutate(draw, shape))
    else:
        t = (rng.random(mutate(draw, shape)) < 0.5).astype(np.float64)
    if name != "MultiLabelMarginLoss" and draw(st.booleans()):
        kwargs["weight"] = torch.as_tensor(rng.random(draw(st.sampled_from([c, c, c + 1]))) + 0.1)
    if name != "MultiLabelSoftMarginLoss" and x.size == 0 and kwargs["reduction"] == "mean":
        kwargs["reduction"] = "sum"  # torch's mean over an empty batch reads uninitialized memory
    return Case(kwargs=kwargs, inputs=(X(x), T(t)), dtype=_float_or_default(dt), build=_weighted_build(name, kwargs))


@spec("TripletMarginLoss", "TripletMarginWithDistanceLoss", examples=25)
@st.composite
def _triplet(draw, name):
    n, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (n, d) if draw(st.booleans()) else (d,)
    rng, dt = rng_of(draw), data_dtype(draw)
    a, p, q = (values(rng, mutate(draw, shape, (-1,)), dt) for _ in range(3))
    margin, swap, red = draw(st.sampled_from([1.0, 0.5, 2.0])), draw(st.booleans()), reduction(draw)
    if name == "TripletMarginLoss":
        kwargs = dict(margin=margin, p=draw(st.sampled_from([1.0, 2.0, 3.0])), eps=draw(st.sampled_from([1e-6, 0.1])),
                      swap=swap, reduction=red)
        return Case(kwargs=kwargs, inputs=(X(a), X(p), X(q)), dtype=param_dtype(draw))
    norm = draw(st.sampled_from([None, 1.0, 2.0]))

    def build(lib):
        dist = None if norm is None else lib.PairwiseDistance(p=norm)
        return lib.TripletMarginWithDistanceLoss(distance_function=dist, margin=margin, swap=swap, reduction=red)
    return Case(inputs=(X(a), X(p), X(q)), dtype=param_dtype(draw), build=build)


@spec("CTCLoss", examples=25)
@st.composite
def _ctc(draw, name):
    c, t_len, n = draw(st.integers(2, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 2))
    blank = draw(st.sampled_from([0, c - 1]))
    batched = draw(st.integers(0, 3)) > 0
    rng = rng_of(draw)
    dt = draw(st.sampled_from([F32, F64]))
    logits = rng.standard_normal((t_len, n, c) if batched else (t_len, c))
    log_probs = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(dt)
    wrong = mutate(draw, log_probs.shape, (-1,))
    log_probs = log_probs if wrong == log_probs.shape else values(rng, wrong, dt)
    labels = [l for l in range(c) if l != blank]
    s_max = draw(st.integers(0, 3))
    target_lengths = rng.integers(0, s_max + 1, size=n if batched else ())
    input_lengths = np.full(n if batched else (), t_len) - (rng.integers(0, 2, size=n if batched else ()) *
                                                            (t_len > 1))
    form = draw(st.sampled_from(["padded", "concatenated"])) if batched else "padded"
    if form == "padded":
        targets = rng.choice(labels, size=((n, s_max) if batched else (s_max,)))
    else:
        targets = rng.choice(labels, size=int(np.sum(target_lengths)))
    if draw(st.integers(0, 6)) == 0 and targets.size:
        targets.flat[0] = c  # a label out of range
    kwargs = dict(blank=blank, reduction=reduction(draw), zero_infinity=draw(st.booleans()))
    return Case(kwargs=kwargs, inputs=(X(log_probs), Idx(targets), Idx(input_lengths), Idx(target_lengths)),
                dtype=dt)


# --------------------------------------------------------------------------------- containers
def _layer_makers(draw, width):
    """Builders of a random chain of simple layers starting at ``width`` features, for either library."""
    makers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["Linear", "ReLU", "Tanh", "Dropout", "LayerNorm"]))
        if kind == "Linear":
            out = draw(st.integers(1, 3))
            makers.append(lambda lib, a=width, b=out: lib.Linear(a, b))
            width = out
        elif kind == "LayerNorm":
            makers.append(lambda lib, a=width: lib.LayerNorm(a))
        elif kind == "Dropout":
            makers.append(lambda lib: lib.Dropout(0.0))
        else:
            makers.append(lambda lib, k=kind: getattr(lib, k)())
    return makers


@spec("AdaptiveLogSoftmaxWithLoss", examples=30)
@st.composite
def _adaptive_log_softmax(draw, name):
    """Valid cutoffs mostly, sometimes unsorted, repeated or out of [1, n_classes - 1]; targets in range,
    out of range, float or int32; input (N, F) or unbatched (F,), mutated."""
    rng = rng_of(draw)
    fin, n_classes = draw(st.integers(1, 5)), draw(st.integers(2, 8))
    k = draw(st.integers(1, n_classes - 1))
    cutoffs = sorted(rng.choice(np.arange(1, n_classes), size=k, replace=False).tolist())
    bad = rng.choice(["ok", "unsorted", "repeated", "zero", "n_classes", "empty"], p=[0.8] + [0.04] * 5)
    if bad == "unsorted" and k > 1:
        cutoffs = cutoffs[::-1]
    elif bad == "repeated":
        cutoffs = cutoffs + cutoffs[-1:]
    elif bad in ("zero", "n_classes"):
        cutoffs = sorted(cutoffs + [0 if bad == "zero" else n_classes])
    elif bad == "empty":
        cutoffs = []
    kwargs = dict(div_value=draw(st.sampled_from([4.0, 2.0, 1.0, 0.5])), head_bias=draw(st.booleans()))
    n = int(rng.integers(0, 5)) if rng.random() < 0.15 else int(rng.integers(1, 5))
    batched = rng.random() < 0.75
    x = values(rng, mutate(draw, (n, fin) if batched else (fin,), (-1,)), data_dtype(draw))
    t = rng.integers(0, n_classes, size=((n,) if batched else ()) if rng.random() < 0.85 else mutate(draw, (n,)))
    kind = rng.choice(["index", "out of range", "float", "int32"], p=[0.7, 0.1, 0.1, 0.1])
    if kind == "out of range" and t.size:
        t.flat[draw(st.integers(0, t.size - 1))] = draw(st.sampled_from([-1, n_classes, n_classes + 2]))
    if kind == "float":
        t = t.astype(np.float64)
    if kind == "int32":
        t = t.astype(np.int32)
    return Case(args=(fin, n_classes, cutoffs), kwargs=kwargs, inputs=(X(x), T(np.asarray(t))), dtype=param_dtype(draw))


@spec("Sequential", examples=20)
@st.composite
def _sequential(draw, name):
    width = draw(st.integers(1, 3))
    makers = _layer_makers(draw, width)
    # input in the parameters' dtype: a first layer without parameters computes in the input's own
    # dtype, which torch (handed the input in the parameters' dtype) cannot mirror
    dtype = param_dtype(draw)
    x = values(rng_of(draw), mutate(draw, any_shape(draw, 2) + (width,), (-1,)), dtype)
    return Case(inputs=(X(x),), train=draw(st.booleans()), dtype=dtype,
                build=lambda lib: lib.Sequential(*[m(lib) for m in makers]))


@spec("ModuleList", "ModuleDict", "Module", examples=10)
@st.composite
def _structure(draw, name):
    makers = _layer_makers(draw, draw(st.integers(1, 3)))
    keys = [f"m{i}" for i in range(len(makers))]

    def build(lib):
        if name == "ModuleList":
            return lib.ModuleList([m(lib) for m in makers])
        if name == "ModuleDict":
            return lib.ModuleDict({k: m(lib) for k, m in zip(keys, makers)})
        root = lib.Module()
        for k, m in zip(keys, makers):
            setattr(root, k, m(lib))
        return root
    return Case(build=build, structural=True)


@spec("ParameterList", "ParameterDict", examples=10)
@st.composite
def _parameter_containers(draw, name):
    shapes = [tuple(draw(st.lists(st.integers(1, 3), max_size=3))) for _ in range(draw(st.integers(0, 3)))]
    values = [np.random.default_rng(i).standard_normal(shape).astype(np.float32) for i, shape in enumerate(shapes)]

    def build(lib):
        params = [torch.nn.Parameter(torch.from_numpy(v.copy())) if lib is torch.nn else v.copy() for v in values]
        if name == "ParameterList":
            return lib.ParameterList(params)
        return lib.ParameterDict({f"p{i}": v for i, v in enumerate(params)})
    return Case(build=build, structural=True)


@spec("RNNBase", examples=10)
@st.composite
def _rnn_base(draw, name):
    """Like torch's, RNNBase builds the parameters of any mode but has no forward."""
    mode = draw(st.sampled_from(["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]))
    hidden = draw(st.integers(1, 3))
    kwargs = dict(num_layers=draw(st.integers(1, 2)), bias=draw(st.booleans()), bidirectional=draw(st.booleans()),
                  proj_size=draw(st.integers(0, hidden - 1)) if mode == "LSTM" else 0)
    return Case(args=(mode, draw(st.integers(1, 3)), hidden), kwargs=kwargs, structural=True)


@spec("RNNCellBase", examples=10)
@st.composite
def _cell_base(draw, name):
    args = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.booleans()), draw(st.integers(1, 4)))
    return Case(args=args, structural=True)


def _numpy_dtype_names(text):
    """torch's dtype names in a repr as numpy's, which torchlite prints (ParameterList and ParameterDict)."""
    for torch_name, np_name in (("torch.FloatTensor", "float32"), ("torch.DoubleTensor", "float64"),
                                ("torch.float32", "float32"), ("torch.float64", "float64")):
        text = text.replace(torch_name, np_name)
    return text


def run_structure(name, case):
    """Modules that are not called: same repr, same state_dict keys and shapes, loadable from torch's,
    and calling them fails in both libraries."""
    CASES[name] += 1
    th, tl = _build(case, torch.nn, name), _build(case, nn, name)
    assert repr(tl) == _numpy_dtype_names(repr(th))
    th_state = {k: v.detach().numpy() for k, v in th.state_dict().items()}
    assert {k: v.shape for k, v in tl.state_dict().items()} == {k: v.shape for k, v in th_state.items()}
    assert list(tl.state_dict()) == list(th_state)
    tl.load_state_dict(th_state)
    for k, v in tl.state_dict().items():
        np.testing.assert_array_equal(v, th_state[k])
    with pytest.raises((NotImplementedError, RuntimeError)) as th_error:
        th(torch.zeros(1))
    with pytest.raises(th_error.type):
        tl(np.zeros(1))
    OUTCOMES[name]["match"] += 1


# ================================================================================= tests
MODULE_CLASSES = sorted(c.__name__ for c in vars(nn).values() if isinstance(c, type) and issubclass(c, nn.Module))


def test_every_module_class_has_a_strategy():
    """A new layer must come with a strategy here, so that property coverage stays complete."""
    missing = sorted(set(MODULE_CLASSES) - set(SPECS))
    assert not missing, f"torchlite.nn classes without a property strategy in {__file__}: {missing}"
    assert not set(SPECS) - set(MODULE_CLASSES), "strategies for classes torchlite.nn does not export"


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    yield
    if not CASES:
        return
    lines = ["", "property cases per module (match / refused by both):"]
    for name in sorted(CASES):
        o = OUTCOMES[name]
        detail = ", ".join(f"{k} {v}" for k, v in sorted(o.items()))
        lines.append(f"  {name:28s} {CASES[name]:4d}  ({detail})")
    lines.append(f"  {'total':28s} {sum(CASES.values()):4d} cases over {len(CASES)} modules")
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # shown without -s, after the last test of this file
        reporter.write_line("\n".join(lines))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_module_properties(name):
    strategy, examples = SPECS[name]

    @settings(max_examples=max(1, round(examples * EXAMPLES_SCALE)), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy(name))
    def check(case):
        torchlite.manual_seed(0)
        torch.manual_seed(0)
        if case.structural:
            run_structure(name, case)
        else:
            run_case(name, case)

    check()

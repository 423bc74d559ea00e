"""torch's API beyond the nn constructors (tests/test_signatures.py has those): every function and method that
torchlite shares with torch takes torch's parameters, in torch's order, with torch's names, kinds (positional-only,
keyword-only) and defaults, so a call written for torch means the same here.

Covered: torch.nn.functional, torch.nn.init, the torch.optim optimizers, lr_scheduler and swa_utils (constructors and
public methods), torch.nn.utils (and its rnn, parametrize, parametrizations modules), and torch.nn.Module's methods;
plus the behaviour of what this audit added: init's deprecated aliases, the optimizers' foreach/fused/capturable/
differentiable flags.
torchlite may append keyword-only ``return_*`` arguments (they hand a ``*_backward`` twin what it needs, since there
is no autograd); any other difference is listed, with its reason, in one of the dicts below.
"""
import ast
import importlib
import inspect

import numpy as np
import pytest
import torch
import torch._jit_internal
import torch.nn.functional as TF

import torchlite
import torchlite.nn.functional as F
import torchlite.optim as optim
import torchlite.optim.lr_scheduler as lr_scheduler
from torchlite.nn import init

P = inspect.Parameter
SIMPLE = (int, float, str, bool, type(None), tuple)


# ----------------------------------------------------------------------------- signatures
# C builtins whose docstring has no signature line: their signature as torch's documentation page gives it
DOCUMENTED_ELSEWHERE = {"conv_tbc": "conv_tbc(input, weight, bias, pad=0) -> Tensor"}


def _doc_signature(fn):
    """A C builtin's signature, from its docstring's head: ``conv2d(input, weight, bias=None, ...) -> Tensor``."""
    head = DOCUMENTED_ELSEWHERE.get(fn.__name__, inspect.getdoc(fn)).split(") ->")[0] + ")"
    args = ast.parse(f"def {head}: pass").body[0].args
    value = lambda node: P.empty if node is None else eval(ast.unparse(node), {})  # noqa: E731 (literals: 1./8)
    defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    params = [P(a.arg, P.POSITIONAL_OR_KEYWORD, default=value(d)) for a, d in zip(args.args, defaults)]
    params += [P(a.arg, P.KEYWORD_ONLY, default=value(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return inspect.Signature(params)


def torch_signature(fn):
    """(signature, exact): torch's parameters for ``fn``; ``exact`` False when read from a docstring (defaults are
    written there as ``1.`` or ``1``, so only their values count)."""
    if inspect.isfunction(fn) and fn in torch._jit_internal.boolean_dispatched:
        fn = torch._jit_internal.boolean_dispatched[fn]["if_false"]  # max_pool2d & co: (*args, **kwargs) wrappers
    try:
        return inspect.signature(fn), True
    except ValueError:
        return _doc_signature(fn), False


def _default(value, exact):
    if value is P.empty:
        return "required"
    if not isinstance(value, SIMPLE):
        return "object"  # torch objects (dtypes, tensors) have no torchlite twin to compare with
    return (type(value).__name__, value) if exact else value


def _entries(sig, exact=True, extras=False):
    """(name, kind, default) per parameter; a ``*args``/``**kwargs`` name is not part of the API. ``extras``: drop
    torchlite's trailing keyword-only ``return_*`` arguments."""
    out = []
    for p in sig.parameters.values():
        if extras and p.kind is P.KEYWORD_ONLY and p.name.startswith("return_"):
            continue
        name = "*" if p.kind is P.VAR_POSITIONAL else "**" if p.kind is P.VAR_KEYWORD else p.name
        out.append((name, p.kind.name, _default(p.default, exact)))
    return out


def assert_torch_signature(ours, theirs, documented=None):
    """``ours`` takes ``theirs``'s parameters; ``documented`` is the one other signature (text) ``ours`` may have."""
    sig = inspect.signature(ours)
    if documented is not None and str(sig) == documented:
        return
    torch_sig, exact = torch_signature(theirs)
    assert _entries(sig, exact, extras=True) == _entries(torch_sig, exact), f"ours {sig}, torch's {torch_sig}"


def _public_functions(module):
    return {name for name, obj in vars(module).items()
            if not name.startswith("_") and callable(obj) and not isinstance(obj, type)
            and not inspect.ismodule(obj)}


def _public_methods(cls, own=False):
    """Public methods a class defines (``own``) or also inherits: functions only, not nested types or aliases."""
    names = vars(cls) if own else dir(cls)
    return {name for name in names if not name.startswith("_")
            and (inspect.isfunction(getattr(cls, name)) or inspect.ismethod(getattr(cls, name)))}


# ----------------------------------------------------------------------------- (a) torch.nn.functional
# the only differences from torch's functional signatures; each entry: (why, our signature as it is now)
FUNCTIONAL_DIFFERENCES = {
    "gumbel_softmax": ("_gumbels: torchlite's private hook to pass fixed noise (tests feed torch's noise)",
                       "(logits, tau=1, hard=False, eps=1e-10, dim=-1, *, return_soft=False, _gumbels=None)"),
}

# torch.nn.functional callables torchlite does not provide, and why
FUNCTIONAL_NOT_PROVIDED = {
    "grouped_mm": "CUDA grouped GEMM for mixture-of-experts kernels",
    "scaled_mm": "float8 scaled GEMM (CUDA)",
    "scaled_grouped_mm": "float8 scaled grouped GEMM (CUDA)",
}

# torch.nn.functional's own plumbing, not part of the math it offers
TORCH_HELPERS = {"assert_int_or_pair", "boolean_dispatch", "handle_torch_function", "has_torch_function",
                 "has_torch_function_unary", "has_torch_function_variadic"}

FUNCTIONAL = sorted(name for name in _public_functions(TF) - TORCH_HELPERS
                    if getattr(TF, name).__module__ != "typing" and hasattr(F, name))


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_takes_torchs_arguments(name):
    documented = FUNCTIONAL_DIFFERENCES.get(name, (None, None))[1]
    assert_torch_signature(getattr(F, name), getattr(TF, name), documented)


def test_functional_covers_torchs():
    torchs = {name for name in _public_functions(TF) - TORCH_HELPERS if getattr(TF, name).__module__ != "typing"}
    assert sorted(torchs - set(FUNCTIONAL) - set(FUNCTIONAL_NOT_PROVIDED)) == []
    assert set(FUNCTIONAL_NOT_PROVIDED) <= torchs
    assert all(name in FUNCTIONAL for name in FUNCTIONAL_DIFFERENCES)


def test_signature_reader_reads_torchs_docstrings():
    sig, exact = torch_signature(TF.rrelu_)
    assert not exact and str(sig) == f"(input, lower={1 / 8}, upper={1 / 3}, training=False)"
    sig, exact = torch_signature(TF.max_pool2d)
    assert exact and list(sig.parameters)[-1] == "return_indices"
    # the comparison sees names, order, kinds and defaults
    assert _entries(inspect.signature(lambda input, *, p=0.5: 0)) != _entries(inspect.signature(lambda input, p=0.5: 0))
    assert _entries(inspect.signature(lambda x, p=1: 0)) != _entries(inspect.signature(lambda x, p=1.0: 0))
    assert _entries(inspect.signature(lambda x, p=1: 0), exact=False) == _entries(
        inspect.signature(lambda x, p=1.0: 0), exact=False)


# ----------------------------------------------------------------------------- (b) torch.nn.init
INIT = sorted(_public_functions(torch.nn.init) & set(torch.nn.init.__all__))
DEPRECATED_INIT = sorted(name for name in INIT if not name.endswith("_") and name + "_" in INIT)


def test_init_has_torchs_functions():
    assert sorted(set(INIT) - set(init.__all__)) == []
    assert DEPRECATED_INIT == ["constant", "dirac", "eye", "kaiming_normal", "kaiming_uniform", "normal",
                               "orthogonal", "sparse", "uniform", "xavier_normal", "xavier_uniform"]


@pytest.mark.parametrize("name", INIT)
def test_init_takes_torchs_arguments(name):
    assert_torch_signature(getattr(init, name), getattr(torch.nn.init, name))


ALIAS_ARGS = {"constant": (0.5,), "sparse": (0.5,), "kaiming_uniform": (), "dirac": ()}


@pytest.mark.parametrize("name", DEPRECATED_INIT)
def test_deprecated_init_warns_as_torch_and_fills_as_the_new_name(name):
    shape = (4, 4, 3) if name == "dirac" else (5, 4)
    args = ALIAS_ARGS.get(name, ())
    torchlite.manual_seed(0)
    expected = getattr(init, name + "_")(np.zeros(shape, np.float32), *args)
    torchlite.manual_seed(0)
    with pytest.warns(FutureWarning) as ours:
        got = getattr(init, name)(np.zeros(shape, np.float32), *args)
    with pytest.warns(FutureWarning) as theirs:
        getattr(torch.nn.init, name)(torch.zeros(shape), *args)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert ours[0].filename == __file__  # stacklevel: the warning points at the caller
    np.testing.assert_array_equal(got, expected)
    assert getattr(init, name).__name__ == name


# ----------------------------------------------------------------------------- (c) torch.optim optimizers
# every torch optimizer torchlite has (Adafactor, Muon, ... join as they land)
OPTIMIZERS = sorted(name for name, cls in vars(torch.optim).items()
                    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and hasattr(optim, name))

# torch optimizer methods torchlite does not provide, and why (compared all the same once one is there)
OPTIMIZER_METHODS_NOT_PROVIDED = {
    "profile_hook_step": "torch's profiler wrapper around each subclass's step (torchlite wraps step for the "
                         "step hooks itself)",
    "share_memory": "Adagrad: moves its state to shared memory for multi-process (Hogwild) training; torchlite's "
                    "arrays are not shared between processes",
}

# optimizers whose flags are not yet checked: their files are being changed by other engineers (reported)
FLAGS_PENDING = {}


def _methods(owner, theirs, not_provided, own=False):
    names = {name for name in _public_methods(theirs, own) if name not in not_provided or hasattr(owner, name)}
    missing = sorted(name for name in names if not hasattr(owner, name))
    assert missing == [], f"{owner.__name__} lacks torch's {missing}"
    return sorted(names)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_takes_torchs_arguments(name):
    ours, theirs = getattr(optim, name), getattr(torch.optim, name)
    assert_torch_signature(ours.__init__, theirs.__init__)
    for method in _methods(ours, theirs, OPTIMIZER_METHODS_NOT_PROVIDED):
        assert_torch_signature(getattr(ours, method), getattr(theirs, method))


def _flagged(flag):
    return [name for name in OPTIMIZERS if name not in FLAGS_PENDING
            and flag in inspect.signature(getattr(torch.optim, name).__init__).parameters]


@pytest.mark.parametrize("name", _flagged("capturable"))
def test_capturable_is_refused_by_name(name):
    with pytest.raises(ValueError, match=f"^{name}: capturable=True .* capturable must be False"):
        getattr(optim, name)([torchlite.nn.Parameter(np.ones(3))], capturable=True)


@pytest.mark.parametrize("name", _flagged("differentiable"))
def test_differentiable_is_refused_by_name(name):
    with pytest.raises(ValueError, match=f"^{name}: differentiable=True .* differentiable must be False"):
        getattr(optim, name)([torchlite.nn.Parameter(np.ones(3))], differentiable=True)


def _three_steps(lib, name, **flags):
    """The parameter after three steps of ``name`` (torch's defaults plus ``flags``) on fixed gradients."""
    rng = np.random.default_rng(0)
    start, grads = rng.standard_normal((4, 3)), rng.standard_normal((3, 4, 3))
    if lib is torch:
        p = torch.nn.Parameter(torch.from_numpy(start.copy()))
    else:
        p = torchlite.nn.Parameter(start.copy())
    opt = getattr(lib.optim, name)([p], **flags)
    for g in grads:
        p.grad = torch.from_numpy(g.copy()) if lib is torch else g.copy()
        opt.step()
    return p.detach().numpy() if lib is torch else p.data


FLAG_VALUES = [(flag, value) for flag in ("foreach", "fused") for value in (True, False)]


@pytest.mark.parametrize("name,flag,value", [(name, flag, value) for flag, value in FLAG_VALUES
                                             for name in _flagged(flag)], ids=str)
def test_foreach_and_fused_are_accepted_and_update_as_torch(name, flag, value):
    ours = _three_steps(torchlite, name, **{flag: value})
    np.testing.assert_array_equal(ours, _three_steps(torchlite, name))
    # torch's multi-tensor ASGD computes its step size eta from a float32 step count (float32 rounding)
    rtol = 1e-6 if (name, flag, value) == ("ASGD", "foreach", True) else 1e-10
    np.testing.assert_allclose(ours, _three_steps(torch, name, **{flag: value}), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", _flagged("fused"))
def test_fused_and_foreach_together_fail_as_torch(name):
    with pytest.raises(RuntimeError) as theirs:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(3))], fused=True, foreach=True)
    with pytest.raises(RuntimeError) as ours:
        getattr(optim, name)([torchlite.nn.Parameter(np.ones(3))], fused=True, foreach=True)
    assert str(ours.value) == str(theirs.value)


# ----------------------------------------------------------------------------- (d) torch.optim.lr_scheduler
SCHEDULERS = sorted(name for name, cls in vars(torch.optim.lr_scheduler).items()
                    if isinstance(cls, type) and issubclass(cls, torch.optim.lr_scheduler.LRScheduler)
                    and not name.startswith("_"))


def test_lr_scheduler_has_torchs_classes():
    assert [name for name in SCHEDULERS if not hasattr(lr_scheduler, name)] == []


@pytest.mark.parametrize("name", SCHEDULERS)
def test_lr_scheduler_takes_torchs_arguments(name):
    ours, theirs = getattr(lr_scheduler, name), getattr(torch.optim.lr_scheduler, name)
    assert_torch_signature(ours.__init__, theirs.__init__)
    methods = _methods(ours, theirs, {})
    assert {"get_last_lr", "step", "state_dict", "load_state_dict"} <= set(methods)
    for method in methods:
        assert_torch_signature(getattr(ours, method), getattr(theirs, method))


@pytest.mark.parametrize("name", torch.optim.swa_utils.__all__)
def test_swa_utils_take_torchs_arguments(name):
    ours, theirs = getattr(optim.swa_utils, name), getattr(torch.optim.swa_utils, name)
    if not isinstance(theirs, type):
        assert_torch_signature(ours, theirs)
        return
    assert_torch_signature(ours.__init__, theirs.__init__)
    for method in _methods(ours, theirs, {}, own=True):  # AveragedModel's Module methods are (f)'s
        assert_torch_signature(getattr(ours, method), getattr(theirs, method))


# ----------------------------------------------------------------------------- (e) torch.nn.utils
UTILS_MODULES = ["", ".rnn", ".parametrize", ".parametrizations", ".stateless"]

# torch.nn.utils functions torchlite does not provide, and why (compared all the same once one is there)
UTILS_NOT_PROVIDED = {
}


def _utils_callables():
    out = []
    for sub in UTILS_MODULES:
        theirs = importlib.import_module("torch.nn.utils" + sub)
        ours = importlib.import_module("torchlite.nn.utils" + sub)
        for name in theirs.__all__:
            qualified = f"{sub[1:]}.{name}".lstrip(".")
            if callable(getattr(theirs, name)) and (qualified not in UTILS_NOT_PROVIDED or hasattr(ours, name)):
                out.append(qualified)
    return sorted(out)


def _utils_pair(qualified):
    sub, _, name = qualified.rpartition(".")
    prefix = "." + sub if sub else ""
    ours = importlib.import_module("torchlite.nn.utils" + prefix)
    theirs = importlib.import_module("torch.nn.utils" + prefix)
    return getattr(ours, name), getattr(theirs, name)


@pytest.mark.parametrize("qualified", _utils_callables())
def test_utils_take_torchs_arguments(qualified):
    ours, theirs = _utils_pair(qualified)
    if isinstance(theirs, type):
        assert_torch_signature(ours.__init__, theirs.__init__)
        # a class's own methods: those it inherits from torch.nn.Module are (f)'s
        for method in _methods(ours, theirs, {}, own=True):
            assert_torch_signature(getattr(ours, method), getattr(theirs, method))
    else:
        assert_torch_signature(ours, theirs)


def test_utils_names_the_brief_asks_for():
    names = set(_utils_callables())
    assert {"clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters", "weight_norm",
            "remove_weight_norm", "spectral_norm", "remove_spectral_norm", "rnn.pack_padded_sequence",
            "rnn.pad_packed_sequence", "fuse_conv_bn_eval", "fuse_linear_bn_weights", "skip_init", "get_total_norm",
            "clip_grads_with_norm_", "parametrize.register_parametrization"} <= names


# ----------------------------------------------------------------------------- (f) torch.nn.Module
# Module methods whose signature differs from torch's: (why, our signature as it is now)
MODULE_DIFFERENCES = {
    "state_dict": ("torch takes destination, prefix, keep_vars positionally through a deprecated *args; ours takes "
                   "them positionally, with the same meaning", "(self, destination=None, prefix='', keep_vars=False)"),
    "to": ("torch parses device, dtype, non_blocking (and memory_format) out of *args, **kwargs; ours names them",
           "(self, *args, device=None, dtype=None, non_blocking=False, memory_format=None)"),
}

# torch.nn.Module methods torchlite does not provide, and why (compared all the same once one is there)
MODULE_NOT_PROVIDED = {
}

MODULE_METHODS = sorted(name for name, value in vars(torch.nn.Module).items()
                        if not name.startswith("_") and inspect.isfunction(value)
                        and (name not in MODULE_NOT_PROVIDED or hasattr(torchlite.nn.Module, name)))


def test_module_has_torchs_methods():
    assert [name for name in MODULE_METHODS if not hasattr(torchlite.nn.Module, name)] == []


@pytest.mark.parametrize("name", MODULE_METHODS)
def test_module_methods_take_torchs_arguments(name):
    documented = MODULE_DIFFERENCES.get(name, (None, None))[1]
    assert_torch_signature(getattr(torchlite.nn.Module, name), getattr(torch.nn.Module, name), documented)

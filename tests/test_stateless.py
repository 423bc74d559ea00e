"""nn.utils.stateless.functional_call, torchlite.func.functional_call and _reparametrize_module against torch 2.13."""
import inspect

import numpy as np
import pytest
import torch
import torch.func
from parity import assert_close, copy_state, to_torch

import torchlite
from torchlite import nn
from torchlite.func import functional_call as func_call
from torchlite.nn.utils.parametrize import register_parametrization
from torchlite.nn.utils.stateless import _reparametrize_module, functional_call

F64 = np.float64


def pair(make, seed=0, dtype=F64):
    """The same model in torchlite and torch, torch's weights copied into ours."""
    torch.manual_seed(seed)
    theirs = make(torch.nn).to(torch.float64 if dtype == F64 else torch.float32)
    ours = make(nn).to(dtype)
    copy_state(ours, theirs)
    return ours, theirs


def random_state(module, rng, dtype=F64):
    """New values for every parameter and buffer (buffers as copies of the module's, shifted)."""
    out = {name: rng.standard_normal(p.shape).astype(dtype) for name, p in module.named_parameters()}
    for name, b in module.named_buffers():
        out[name] = b + 0.5 if b.dtype.kind == "f" else b.copy()
    return out


def snapshot(module):
    return {name: (t, np.array(t, copy=True)) for name, t in
            list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False))}


def assert_unchanged(module, before):
    after = dict(module.named_parameters(remove_duplicate=False)) | dict(module.named_buffers(remove_duplicate=False))
    assert after.keys() == before.keys()
    for name, (obj, values) in before.items():
        assert after[name] is obj, f"{name} was not restored"
        np.testing.assert_array_equal(np.asarray(obj), values, err_msg=name)
        assert getattr(obj, "grad", None) is None, f"{name} got a gradient"
    assert all(not m._saved for m in module.modules()), "saved state left behind"


def torch_error(fn):
    with pytest.raises(Exception) as info:
        fn()
    return info.value


MLP = lambda lib: lib.Sequential(lib.Linear(4, 6), lib.Tanh(), lib.Linear(6, 3))  # noqa: E731
CONV_BN = lambda lib: lib.Sequential(lib.Conv2d(2, 3, 3, padding=1), lib.BatchNorm2d(3), lib.ReLU())  # noqa: E731


# ----------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("call", [functional_call, func_call])
def test_linear_output_matches_torch(call, dtype):
    ours, theirs = pair(lambda lib: lib.Linear(5, 3), dtype=dtype)
    rng = np.random.default_rng(1)
    x, params = rng.standard_normal((4, 5)).astype(dtype), random_state(ours, rng, dtype)
    before = snapshot(ours)
    out = call(ours, params, x)
    expected = torch.func.functional_call(theirs, to_torch(params), to_torch(x)).detach().numpy()
    assert out.dtype == dtype
    assert_close(out, expected, dtype, "output")
    assert_unchanged(ours, before)
    assert_close(ours(x), theirs(to_torch(x)).detach().numpy(), dtype, "the module's own output afterwards")


def test_mlp_nested_names_and_partial_replacement():
    ours, theirs = pair(MLP)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4))
    params = {"0.weight": rng.standard_normal((6, 4)), "2.bias": rng.standard_normal(3)}  # the rest are the model's
    before = snapshot(ours)
    out = functional_call(ours, params, (x,))
    expected = torch.func.functional_call(theirs, to_torch(params), (to_torch(x),)).detach().numpy()
    assert_close(out, expected, F64, "output")
    assert_unchanged(ours, before)


def test_deeper_names_reach_nested_children():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(3, 3)

        def forward(self, x):
            return self.layer(x)

    model = nn.Sequential()
    model.add_module("encoder", Encoder())
    x = np.ones((2, 3))
    model.double()
    weight, bias = np.eye(3), np.arange(3.0)
    np.testing.assert_allclose(functional_call(model, {"encoder.layer.weight": weight, "encoder.layer.bias": bias}, x),
                               x + bias)


@pytest.mark.parametrize("training", [True, False])
def test_conv_batchnorm_uses_and_updates_the_given_buffers(training):
    ours, theirs = pair(CONV_BN)
    ours.train(training)
    theirs.train(training)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 5, 5))
    state = random_state(ours, rng)
    state["1.running_var"] = rng.uniform(0.5, 2.0, 3)
    state["1.num_batches_tracked"] = np.array(7, dtype=np.int64)
    t_state = to_torch(state)
    before = snapshot(ours)
    given = {name: state[name] for name in state}
    out = functional_call(ours, state, x)
    expected = torch.func.functional_call(theirs, t_state, to_torch(x)).detach().numpy()
    assert_close(out, expected, F64, "output")
    for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert state[name] is given[name], f"{name}: the given array itself is updated in place"
        assert_close(state[name], t_state[name].numpy(), F64, name)  # moved in training mode, as torch's
    assert int(state["1.num_batches_tracked"]) == (8 if training else 7)
    assert_unchanged(ours, before)


def test_a_parameter_given_for_a_buffer_is_used_through_its_data():
    ours, theirs = pair(CONV_BN)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 4, 4))
    mean = torchlite.Parameter(rng.standard_normal(3))
    t_mean = torch.from_numpy(mean.data.copy())
    out = functional_call(ours, {"1.running_mean": mean}, x)
    expected = torch.func.functional_call(theirs, {"1.running_mean": t_mean}, to_torch(x)).detach().numpy()
    assert_close(out, expected, F64, "output")
    assert_close(mean.data, t_mean.numpy(), F64, "running mean moved in place")


def test_a_module_that_assigns_a_new_buffer_writes_it_back_to_the_dict():
    def make(lib, array):
        class Counter(lib.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("foo", array(0.0))

            def forward(self, x):
                self.foo = self.foo + 1
                return x + self.foo
        return Counter()

    ours, theirs = make(nn, lambda v: np.array([v])), make(torch.nn, lambda v: torch.tensor([v]))
    a, t_a = {"foo": np.array([0.0])}, {"foo": torch.tensor([0.0])}
    out = functional_call(ours, a, np.array([1.0]))
    t_out = torch.func.functional_call(theirs, t_a, torch.tensor([1.0]))
    assert out[0] == t_out[0] == 2.0
    assert a["foo"][0] == t_a["foo"][0] == 1.0
    assert ours.foo[0] == theirs.foo[0] == 0.0


# ----------------------------------------------------------------------------- argument forms
def test_dict_tuples_and_lists_equal_one_dict():
    ours, theirs = pair(MLP)
    rng = np.random.default_rng(5)
    x, state = rng.standard_normal((2, 4)), random_state(ours, rng)
    names = list(state)
    parts = ({k: state[k] for k in names[:2]}, {k: state[k] for k in names[2:]})
    expected = functional_call(ours, state, x)
    for given in (parts, list(parts)):
        np.testing.assert_array_equal(func_call(ours, given, x), expected)
        np.testing.assert_array_equal(functional_call(ours, given, x), expected)
    t_out = torch.func.functional_call(theirs, tuple(to_torch(p) for p in parts), to_torch(x)).detach().numpy()
    assert_close(expected, t_out, F64, "output")


@pytest.mark.parametrize("bad", ["duplicate", "not_all_dicts", "not_a_dict"])
def test_bad_dict_arguments_raise_torchs_errors(bad):
    ours, theirs = pair(lambda lib: lib.Linear(2, 2))
    w = np.zeros((2, 2))
    given = {"duplicate": ({"weight": w}, {"weight": w}), "not_all_dicts": [{"weight": w}, 3], "not_a_dict": 3}[bad]
    t_given = {"duplicate": ({"weight": to_torch(w)}, {"weight": to_torch(w)}),
               "not_all_dicts": [{"weight": to_torch(w)}, 3], "not_a_dict": 3}[bad]
    expected = torch_error(lambda: torch.func.functional_call(theirs, t_given, torch.ones(1, 2)))
    before = snapshot(ours)
    with pytest.raises(ValueError) as info:
        func_call(ours, given, np.ones((1, 2)))
    assert type(expected) is ValueError and str(info.value) == str(expected)
    assert_unchanged(ours, before)


def test_args_forms_and_kwargs_match_torch():
    def make(lib, ones):
        class Affine(lib.Module):
            def __init__(self):
                super().__init__()
                self.scale = lib.Parameter(ones(3))

            def forward(self, x, y=None, *, shift=0.0):
                out = x * getattr(self.scale, "data", self.scale) + shift
                return out if y is None else out + y
        return Affine()

    ours, theirs = make(nn, np.ones), make(torch.nn, lambda n: torch.ones(n, dtype=torch.float64))
    rng = np.random.default_rng(6)
    x, y, s = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)
    for args, kwargs in [(x, None), ((x,), None), ((x, y), None), ((x,), {"y": y, "shift": 2.0}),
                         ((x, y), {"shift": -1.0})]:
        t_kwargs = kwargs and to_torch(kwargs)
        expected = torch.func.functional_call(theirs, {"scale": to_torch(s)}, to_torch(args), t_kwargs)
        np.testing.assert_allclose(functional_call(ours, {"scale": s}, args, kwargs), expected.numpy())
        np.testing.assert_allclose(func_call(ours, {"scale": s}, args=args, kwargs=kwargs), expected.numpy())


def test_no_args_calls_the_module_with_none():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.value = nn.Parameter(np.ones(2))

        def forward(self):
            return self.value.data * 2

    np.testing.assert_array_equal(functional_call(Constant(), {"value": np.full(2, 3.0)}), [6.0, 6.0])


def test_a_list_argument_is_one_argument():
    class First(nn.Module):
        def forward(self, items):
            return items[0]

    assert functional_call(First(), {}, [5, 6]) == 5


def parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_are_torchs():
    assert parameters(functional_call) == parameters(torch.nn.utils.stateless.functional_call)
    assert parameters(func_call) == parameters(torch.func.functional_call)
    assert torchlite.func.functional_call is func_call
    assert torchlite.nn.utils.stateless.functional_call is functional_call


# ----------------------------------------------------------------------------- tied weights
def tied(lib):
    class Tied(lib.Module):
        def __init__(self):
            super().__init__()
            self.a = lib.Parameter(lib_array(lib, [1.0, 2.0]))
            self.b = self.a

        def forward(self, x):
            a, b = (self.a.data, self.b.data) if lib is nn else (self.a, self.b)
            return x + a * 10 + b

    return Tied()


def lib_array(lib, values):
    return torch.tensor(values, dtype=torch.float64) if lib is torch.nn else np.array(values)


@pytest.mark.parametrize("given", [{"a"}, {"b"}, {"a", "b"}])
@pytest.mark.parametrize("tie_weights", [True, False])
def test_tied_weights_follow_a_replacement_as_torchs(given, tie_weights):
    ours, theirs = tied(nn), tied(torch.nn)
    value = np.array([3.0, -1.0])
    x = np.zeros(2)
    t_value = torch.from_numpy(value)
    out = functional_call(ours, {k: value for k in given}, x, tie_weights=tie_weights)
    expected = torch.func.functional_call(theirs, {k: t_value for k in given}, torch.zeros(2, dtype=torch.float64),
                                          tie_weights=tie_weights)
    np.testing.assert_allclose(out, expected.detach().numpy())
    assert ours.a is ours.b and ours._parameters["a"] is ours._parameters["b"]
    np.testing.assert_array_equal(ours.a.data, [1.0, 2.0])


def test_tied_names_hold_one_object_during_the_call():
    model = tied(nn)
    with _reparametrize_module(model, {"b": np.zeros(2)}, tie_weights=True):
        assert model.a is model.b and not model.a.requires_grad
    weight = nn.Parameter(np.zeros(2))
    with _reparametrize_module(model, {"a": weight}, tie_weights=True):
        assert model.a is weight and model.b is weight
    with _reparametrize_module(model, {"a": weight}):  # torch's default for this private helper: untied
        assert model.a is weight and model.b is not weight


def test_different_values_for_tied_names_raise_torchs_error():
    ours, theirs = tied(nn), tied(torch.nn)
    expected = torch_error(lambda: torch.func.functional_call(theirs, {"a": torch.zeros(2), "b": torch.ones(2)},
                                                              torch.zeros(2)))
    before = snapshot(ours)
    with pytest.raises(ValueError) as info:
        functional_call(ours, {"a": np.zeros(2), "b": np.ones(2)}, np.zeros(2))
    assert type(expected) is ValueError and str(info.value) == str(expected)
    assert_unchanged(ours, before)
    out = functional_call(ours, {"a": np.zeros(2), "b": np.ones(2)}, np.zeros(2), tie_weights=False)
    np.testing.assert_array_equal(out, [1.0, 1.0])


def test_a_shared_submodule_follows_and_gets_its_own_weight_back():
    layer = nn.Linear(2, 2).double()
    model = nn.Sequential(layer, layer)
    before = snapshot(model)
    x = np.array([[1.0, -2.0]])
    zeros = np.zeros((2, 2))
    np.testing.assert_allclose(functional_call(model, {"0.weight": zeros}, x), layer.bias.data[None])
    # both uses saw the zero weight; unlike torch 2.13 (insertion-order restore), the weight comes back
    assert_unchanged(model, before)
    out = functional_call(model, {"0.weight": zeros}, x, tie_weights=False)  # one slot either way
    np.testing.assert_allclose(out, layer.bias.data[None])
    assert_unchanged(model, before)


# ----------------------------------------------------------------------------- strict and bad keys
@pytest.mark.parametrize("keys", [("weight",), ("weight", "bias", "bogus"), ("weight", "bogus"), ("bogus", "zz")])
def test_strict_errors_are_torchs(keys):
    ours, theirs = pair(lambda lib: lib.Linear(2, 2))
    expected = torch_error(lambda: torch.func.functional_call(
        theirs, {k: torch.zeros(2) for k in keys}, torch.ones(1, 2), strict=True))
    before = snapshot(ours)
    with pytest.raises(RuntimeError) as info:
        functional_call(ours, {k: np.zeros(2) for k in keys}, np.ones((1, 2)), strict=True)
    assert type(expected) is RuntimeError and str(info.value) == str(expected)
    assert_unchanged(ours, before)


def test_strict_accepts_every_key_and_tied_names_given_once():
    ours, _ = pair(CONV_BN)
    state = random_state(ours, np.random.default_rng(7))
    functional_call(ours, state, np.ones((2, 2, 3, 3)), strict=True)
    model = tied(nn)
    np.testing.assert_array_equal(functional_call(model, {"a": np.zeros(2)}, np.ones(2), strict=True), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="Missing key"):
        functional_call(model, {"a": np.zeros(2)}, np.ones(2), strict=True, tie_weights=False)


def test_unexpected_keys_without_strict_are_attributes_for_the_call():
    seen = []

    class Reader(nn.Module):
        def forward(self, x):
            seen.append(self.extra)
            return x

    model, extra = Reader(), np.ones(3)
    functional_call(model, {"extra": extra}, 1.0)
    assert seen == [extra] and not hasattr(model, "extra")
    param = nn.Parameter(np.ones(2))
    functional_call(model, {"extra": param}, 1.0)
    assert seen[-1] is param and not hasattr(model, "extra") and "extra" not in model._parameters


def test_a_missing_submodule_raises_torchs_error_and_swaps_nothing():
    ours, theirs = pair(lambda lib: lib.Linear(2, 2))
    expected = torch_error(lambda: torch.func.functional_call(
        theirs, {"weight": torch.zeros(2, 2), "foo.weight": torch.zeros(2, 2)}, torch.ones(1, 2)))
    before = snapshot(ours)
    with pytest.raises(AttributeError) as info:
        functional_call(ours, {"weight": np.zeros((2, 2)), "foo.weight": np.zeros((2, 2))}, np.ones((1, 2)))
    assert type(expected) is AttributeError and str(info.value) == str(expected)
    assert_unchanged(ours, before)


def test_values_and_attributes_that_are_not_arrays_raise_type_errors():
    ours, theirs = pair(lambda lib: lib.Linear(2, 2))
    before = snapshot(ours)
    assert type(torch_error(lambda: torch.func.functional_call(theirs, {"weight": 3}, torch.ones(1, 2)))) is TypeError
    with pytest.raises(TypeError, match="'weight' is a int"):
        functional_call(ours, {"weight": 3}, np.ones((1, 2)))
    expected = torch_error(lambda: torch.func.functional_call(theirs, {"training": torch.zeros(1)}, torch.ones(1, 2)))
    with pytest.raises(TypeError, match="attribute `training`: True is not"):
        functional_call(ours, {"bias": np.zeros(2), "training": np.zeros(1)}, np.ones((1, 2)))
    assert type(expected) is TypeError and str(expected).startswith("attribute `training`: True is not")
    assert_unchanged(ours, before)
    assert ours.training is True


# ----------------------------------------------------------------------------- restoration
def test_originals_come_back_when_forward_raises():
    ours, _ = pair(MLP)
    before = snapshot(ours)
    state = random_state(ours, np.random.default_rng(8))
    given = dict(state)
    with pytest.raises(ValueError, match="Linear"):
        functional_call(ours, state, np.ones((2, 5)))  # wrong feature count: the first Linear refuses it
    assert_unchanged(ours, before)
    assert all(state[k] is given[k] for k in given)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with _reparametrize_module(ours, state):
            ours(np.ones((2, 4)))  # saves state for backward, then the block fails
            raise Boom
    assert_unchanged(ours, before)


def test_a_none_value_replaces_a_parameter_for_the_call():
    ours, theirs = pair(lambda lib: lib.Linear(3, 2))
    before = snapshot(ours)
    x = np.random.default_rng(9).standard_normal((2, 3))
    out = functional_call(ours, {"bias": None}, x)
    expected = torch.func.functional_call(theirs, {"bias": None}, to_torch(x)).detach().numpy()
    assert_close(out, expected, F64, "output")
    assert_unchanged(ours, before)


# ----------------------------------------------------------------------------- gradients
def torch_grads(theirs, state, x, target, names):
    t_state = to_torch(state)
    for name in names:
        t_state[name].requires_grad_(True)
    out = torch.func.functional_call(theirs, t_state, to_torch(x))
    loss = torch.nn.functional.mse_loss(out, to_torch(target))
    loss.backward()
    return out.detach().numpy(), {name: t_state[name].grad.numpy() for name in names}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make, shape", [(MLP, (5, 4)), (CONV_BN, (3, 2, 4, 4))])
def test_backward_inside_reparametrize_gives_torchs_gradients(make, shape, dtype):
    ours, theirs = pair(make, dtype=dtype)
    rng = np.random.default_rng(10)
    x = rng.standard_normal(shape).astype(dtype)
    state = random_state(ours, rng, dtype)
    names = [name for name, _ in ours.named_parameters()]
    params = {name: nn.Parameter(state[name]) if name in names else state[name] for name in state}
    before = snapshot(ours)
    target = rng.standard_normal((shape[0], 3, *shape[2:])).astype(dtype)
    expected_out, expected = torch_grads(theirs, {k: np.array(v, copy=True) for k, v in state.items()}, x, target,
                                         names)
    criterion = nn.MSELoss()
    with _reparametrize_module(ours, params):
        out = ours(x)
        criterion(out, target)
        ours.backward(criterion.backward())
    assert_close(out, expected_out, dtype, "output")
    for name in names:
        assert params[name].grad is not None and params[name].grad.dtype == dtype, name
        assert_close(params[name].grad, expected[name], dtype, f"grad of {name}")
    assert_unchanged(ours, before)


def test_plain_arrays_are_constants_and_parameters_get_gradients():
    ours, theirs = pair(MLP)
    rng = np.random.default_rng(11)
    x, target = rng.standard_normal((4, 4)), rng.standard_normal((4, 3))
    state = random_state(ours, rng)
    params = {"0.weight": state["0.weight"], "0.bias": nn.Parameter(state["0.bias"]),
              "2.weight": nn.Parameter(state["2.weight"]), "2.bias": state["2.bias"]}
    _, expected = torch_grads(theirs, state, x, target, ["0.bias", "2.weight"])
    criterion = nn.MSELoss()
    with _reparametrize_module(ours, params):
        assert ours[0].weight.data is state["0.weight"] and not ours[0].weight.requires_grad
        criterion(ours(x), target)
        ours.backward(criterion.backward())
    assert_close(params["0.bias"].grad, expected["0.bias"], F64, "grad of 0.bias")
    assert_close(params["2.weight"].grad, expected["2.weight"], F64, "grad of 2.weight")
    assert isinstance(params["0.weight"], np.ndarray) and params["0.weight"] is state["0.weight"]


def test_backward_after_the_block_is_an_error_not_a_wrong_gradient():
    ours, _ = pair(MLP)
    x = np.ones((2, 4))
    ours(x)  # a forward before the block keeps its saved state
    with _reparametrize_module(ours, {"0.weight": nn.Parameter(np.zeros((6, 4)))}):
        out = ours(x)
    assert [len(m._saved) for m in ours.modules()] == [1, 1, 1, 1]  # only what the first forward saved
    ours.backward(np.ones_like(out))  # backpropagates the forward from before the block
    with pytest.raises(RuntimeError, match="nothing saved"):
        ours.backward(np.ones_like(out))
    functional_call(ours, {}, x)
    assert all(not m._saved for m in ours.modules()), "functional_call leaves no saved state"


def test_tied_parameter_collects_both_uses():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(3, 3)
            self.second = nn.Linear(3, 3)
            self.second.weight = self.first.weight

        def forward(self, x):
            return self.second(self.first(x))

        def backward(self, grad):
            return self.first.backward(self.second.backward(grad))

    class TorchTwice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.first = torch.nn.Linear(3, 3)
            self.second = torch.nn.Linear(3, 3)
            self.second.weight = self.first.weight

        def forward(self, x):
            return self.second(self.first(x))

    ours, theirs = Twice().double(), TorchTwice().double()
    rng = np.random.default_rng(12)
    x, w, g = rng.standard_normal((2, 3)), rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    weight = nn.Parameter(w.copy())
    with _reparametrize_module(ours, {"second.weight": weight}, tie_weights=True):
        out = ours(x)
        ours.backward(g)
    t_w = torch.from_numpy(w.copy()).requires_grad_(True)
    t_out = torch.func.functional_call(theirs, {"second.weight": t_w, **{k: torch.from_numpy(v.data.copy()) for k, v
                                                                         in ours.named_parameters() if "bias" in k}},
                                       torch.from_numpy(x))
    t_out.backward(torch.from_numpy(g))
    assert_close(out, t_out.detach().numpy(), F64, "output")
    assert_close(weight.grad, t_w.grad.numpy(), F64, "grad of the tied weight (both uses)")


def test_a_parametrized_weight_is_replaced_through_its_original():
    class Double(nn.Module):
        def forward(self, w):
            return w * 2

        def backward(self, grad):
            return grad * 2

    class TorchDouble(torch.nn.Module):
        def forward(self, w):
            return w * 2

    ours, theirs = pair(lambda lib: lib.Linear(3, 2))
    register_parametrization(ours, "weight", Double())
    torch.nn.utils.parametrize.register_parametrization(theirs, "weight", TorchDouble())
    rng = np.random.default_rng(13)
    x, w, g = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal((4, 2))
    original = nn.Parameter(w.copy())
    key = "parametrizations.weight.original"
    with _reparametrize_module(ours, {key: original}):
        out = ours(x)
        ours.backward(g)
    t_w = torch.from_numpy(w.copy()).requires_grad_(True)
    t_out = torch.func.functional_call(theirs, {key: t_w}, to_torch(x))
    t_out.backward(to_torch(g))
    assert_close(out, t_out.detach().numpy(), F64, "output")
    assert_close(original.grad, t_w.grad.numpy(), F64, "grad of the original")
    assert ours.parametrizations.weight.original.grad is None

"""Module API against torch.nn.Module: registration, iteration order, state_dict, repr, contract."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from parity import check_parity, copy_state


class TLNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3, bias=False))
        self.register_buffer("scale", np.ones(3, dtype=np.float32))
        self.register_buffer("cache", np.zeros(2, dtype=np.float32), persistent=False)
        self.head = nn.ModuleDict({"a": nn.Linear(3, 2), "b": nn.Identity()})
        self.alpha = nn.Parameter(np.zeros(1, dtype=np.float32))


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 3, bias=False))
        self.register_buffer("scale", torch.ones(3))
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.head = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 2), "b": torch.nn.Identity()})
        self.alpha = torch.nn.Parameter(torch.zeros(1))


def test_names_and_order_match_torch():
    a, b = TLNet(), TorchNet()
    assert list(a.state_dict()) == list(b.state_dict())
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]
    assert [n for n, _ in a.named_buffers()] == [n for n, _ in b.named_buffers()]
    assert [n for n, _ in a.named_modules()] == [n for n, _ in b.named_modules()]
    assert [n for n, _ in a.named_children()] == [n for n, _ in b.named_children()]
    assert [n for n, _ in a.named_parameters(prefix="m", recurse=False)] == \
        [n for n, _ in b.named_parameters(prefix="m", recurse=False)]
    assert [n for n, _ in a.features.named_parameters("features")] == \
        [n for n, _ in b.features.named_parameters("features")]
    assert len(list(a.parameters())) == len(list(b.parameters()))


def test_repr_matches_torch():
    a, b = TLNet(), TorchNet()
    assert repr(a).replace("TLNet", "Net") == repr(b).replace("TorchNet", "Net")
    stack_a = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.Flatten(), nn.Unflatten(1, (2, 3))])
    stack_b = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] +
                                  [torch.nn.Flatten(), torch.nn.Unflatten(1, (2, 3))])
    assert repr(stack_a) == repr(stack_b)
    assert repr(nn.Sequential()) == repr(torch.nn.Sequential())


def test_torch_state_dict_loads_and_gives_same_output():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Linear(8, 3))
    m = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 3))
    result = m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_allclose(m(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    # and back: our state_dict loads into torch
    t2 = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Linear(8, 3))
    t2.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()})
    np.testing.assert_allclose(t2(torch.from_numpy(x)).detach().numpy(), m(x), rtol=1e-5, atol=1e-6)


def test_strict_load_lists_every_problem_and_changes_nothing():
    m = TLNet()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    bad = {k: np.full_like(v, 7) for k, v in m.state_dict().items()}
    del bad["features.0.bias"]
    bad["extra.weight"] = np.zeros(2)
    bad["head.a.weight"] = np.zeros((9, 9))
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(bad)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for TLNet" in msg
    assert 'Missing key(s) in state_dict: "features.0.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for head.a.weight: copying a param with shape (9, 9)" in msg
    assert isinstance(info.value, ValueError)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_non_strict_load_reports_keys():
    m = nn.Sequential(nn.Linear(2, 2))
    state = {"0.weight": np.eye(2), "1.weight": np.eye(2)}
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert missing == ["0.bias"] and unexpected == ["1.weight"]
    np.testing.assert_array_equal(m[0].weight.data, np.eye(2))
    assert m[0].weight.dtype == np.float32  # cast into the model's dtype, in place


def test_load_refuses_wrong_dtype_kind():
    m = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="dtype mismatch for weight"):
        m.load_state_dict({"weight": np.array([["a", "b"], ["c", "d"]]), "bias": np.zeros(2)})


def test_load_keeps_parameter_identity():
    m = nn.Linear(3, 2)
    w = m.weight
    arr = m.weight.data
    m.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert m.weight is w and m.weight.data is arr  # optimizers hold these


def test_non_persistent_buffer_not_in_state_dict():
    m = TLNet()
    assert "cache" not in m.state_dict() and "scale" in m.state_dict()
    assert "cache" in dict(m.named_buffers())


def test_registration_rules():
    m = nn.Module()
    m.p = nn.Parameter(np.zeros(2))
    m.sub = nn.Linear(1, 1)
    with pytest.raises(TypeError):
        m.p = np.zeros(2)
    m.p = None
    assert "p" in m._parameters and m.p is None
    with pytest.raises(KeyError):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(TypeError):
        m.register_buffer("buf", [1, 2])
    with pytest.raises(TypeError):
        m.add_module("x", object())
    m.register_module("other", nn.Identity())
    del m.other
    assert "other" not in dict(m.named_children())
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        m.missing


def test_get_submodule_and_parameter():
    m = TLNet()
    assert m.get_submodule("features.1") is m.features[1]
    assert m.get_parameter("head.a.bias") is m.head["a"].bias
    assert m.get_buffer("scale") is m.scale
    with pytest.raises(AttributeError):
        m.get_submodule("features.7")
    with pytest.raises(AttributeError):
        m.get_parameter("features.0.nope")


def test_train_eval_apply_zero_grad_requires_grad():
    m = TLNet()
    assert m.eval() is m and not any(x.training for x in m.modules())
    assert m.train() is m and all(x.training for x in m.modules())
    order = []
    m.apply(lambda mod: order.append(type(mod).__name__))
    torch_order = []
    TorchNet().apply(lambda mod: torch_order.append(type(mod).__name__))
    assert order[:-1] == torch_order[:-1] and len(order) == len(torch_order)
    x = np.ones((2, 4), np.float32)
    y = m.features(x)
    m.features.backward(np.ones_like(y))
    assert m.features[0].weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert not np.any(m.features[0].weight.grad)
    m.zero_grad()
    assert m.features[0].weight.grad is None
    m.features[0].requires_grad_(False)
    y = m.features(x)
    m.features.backward(np.ones_like(y))
    assert m.features[0].weight.grad is None and m.features[1].weight.grad is not None


def test_float_double():
    m = TLNet().double()
    assert all(p.dtype == np.float64 for p in m.parameters()) and m.scale.dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_sequential_container_api():
    layers = [nn.Linear(2, 2), nn.Identity(), nn.Linear(2, 3)]
    s = nn.Sequential(*layers)
    assert len(s) == 3 and s[0] is layers[0] and s[-1] is layers[2]
    assert isinstance(s[1:], nn.Sequential) and list(s[1:]) == layers[1:]
    assert list(s[1:].state_dict()) == ["2.weight", "2.bias"]  # slices keep keys, as torch
    s.append(nn.Flatten())
    assert len(s) == 4
    del s[1]
    assert list(dict(s.named_children())) == ["0", "1", "2"]
    with pytest.raises(IndexError):
        s[10]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Identity())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_modulelist_and_moduledict():
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 2))
    ml += [nn.Identity()]
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Linear", "Linear", "Identity"]
    assert list(ml.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md["y"] = nn.Identity()
    assert list(md.keys()) == ["x", "y"] and "x" in md and len(md) == 2
    assert md.pop("x") is not None and list(md) == ["y"]


class Reuse(nn.Module):
    """One Linear applied three times: backward must run three times, newest first."""

    def __init__(self, lin):
        super().__init__()
        self.lin = lin

    def forward(self, x):
        return self.lin(self.lin(self.lin(x)))

    def backward(self, g):
        return self.lin.backward(self.lin.backward(self.lin.backward(g)))


class TorchReuse(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(self.lin(self.lin(x)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_module_called_three_times_matches_torch(dtype):
    x = np.random.default_rng(1).standard_normal((4, 3))
    check_parity(Reuse(nn.Linear(3, 3)), TorchReuse(), x, dtype=dtype)


def test_backward_without_forward_is_a_clear_error():
    lin = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"Linear.backward\(\) called with nothing saved"):
        lin.backward(np.ones((1, 2)))
    lin(np.ones((1, 2)))
    lin.backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="nothing saved"):
        lin.backward(np.ones((1, 2)))


def test_no_grad_saves_nothing_context_and_decorator():
    lin = nn.Linear(2, 2)
    with torchlite.no_grad():
        assert not torchlite.is_grad_enabled()
        lin(np.ones((1, 2)))
        with torchlite.enable_grad():
            assert torchlite.is_grad_enabled()
    assert torchlite.is_grad_enabled() and lin.saved_count == 0

    @torchlite.no_grad()
    def infer(x):
        return lin(x)

    infer(np.ones((1, 2)))
    assert lin.saved_count == 0 and torchlite.is_grad_enabled()
    with torchlite.set_grad_enabled(False):
        lin(np.ones((1, 2)))
    assert lin.saved_count == 0 and torchlite.is_grad_enabled()


def test_eval_pass_without_no_grad_does_not_leak():
    """A loop that evaluates each epoch without no_grad keeps a flat saved-state size."""
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    x = np.ones((3, 4), np.float32)
    counts = []
    for _ in range(5):
        model.train()
        for _ in range(3):
            y = model(x)
            model.backward(np.ones_like(y))
        model.eval()
        for _ in range(4):
            model(x)  # forgot no_grad: entries pile up until the next mode switch
        counts.append(sum(m.saved_count for m in model.modules()))
    model.train()
    assert counts == [12] * 5  # 4 unmatched forwards x (Sequential + 2 layers)
    assert sum(m.saved_count for m in model.modules()) == 0


def test_needs_input_grad_skips_input_gradient():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model.needs_input_grad = False
    assert model[0].needs_input_grad is False
    y = model(np.ones((2, 4), np.float32))
    assert model.backward(np.ones_like(y)) is None
    assert model[0].weight.grad is not None


def test_copy_state_helper_roundtrip():
    t = TorchNet()
    m = TLNet()
    copy_state(m, t)
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v.numpy())


def test_fresh_gradient_is_adopted_and_accumulates_after():
    p = torchlite.Parameter(np.zeros((2, 3), np.float32))
    g = np.ones((2, 3), np.float32)
    p.accumulate_grad(g, fresh=True)
    assert p.grad is g  # no copy of a gradient made for this call alone
    p.accumulate_grad(g)
    np.testing.assert_array_equal(p.grad, 2 * np.ones((2, 3)))


@pytest.mark.parametrize("g", [np.ones((3, 2), np.float32).T, np.ones((2, 3), np.float64), np.ones(6, np.float32)])
def test_fresh_gradient_of_another_layout_is_copied(g):
    p = torchlite.Parameter(np.zeros((2, 3), np.float32))
    p.accumulate_grad(g, fresh=True)
    assert p.grad is not g and p.grad.dtype == np.float32 and p.grad.shape == (2, 3)


def test_linear_weight_grad_is_not_shared_between_steps():
    lin = nn.Linear(3, 2)
    x = np.ones((4, 3), np.float32)
    lin(x)
    lin.backward(np.ones((4, 2), np.float32))
    first = lin.weight.grad
    lin.zero_grad()
    lin(x)
    lin.backward(np.ones((4, 2), np.float32))
    assert lin.weight.grad is not first
    np.testing.assert_array_equal(first, lin.weight.grad)


def test_forward_that_raises_partway_leaves_nothing_saved():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(5, 2))  # the last layer refuses 8 features
    with pytest.raises(ValueError):
        model(np.ones((3, 4), np.float32))
    assert sum(m.saved_count for m in model.modules()) == 0
    model[2] = nn.Linear(8, 2)
    y = model(np.ones((3, 4), np.float32))
    assert model.backward(np.ones_like(y)).shape == (3, 4)
    assert sum(m.saved_count for m in model.modules()) == 0


def test_failed_call_keeps_what_earlier_calls_saved():
    lin = nn.Linear(3, 2)
    lin(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError):
        lin(np.ones((1, 4), np.float32))
    assert lin.saved_count == 1


@pytest.mark.parametrize("args, kwargs, dtype", [
    (("cpu",), {}, np.float32), (("cpu", np.float64), {}, np.float64), ((), {"dtype": "float64"}, np.float64),
    ((), {"device": "cpu:0"}, np.float32), ((np.float64,), {}, np.float64), (("float64",), {}, np.float64),
])
def test_to_takes_torch_signatures(args, kwargs, dtype):
    lin = nn.Linear(2, 3)
    assert lin.to(*args, **kwargs) is lin
    assert lin.weight.dtype == dtype and lin.bias.dtype == dtype
    assert lin.cpu() is lin


@pytest.mark.parametrize("call", [lambda m: m.to("cuda"), lambda m: m.to(device="cuda:1"), lambda m: m.cuda()])
def test_other_devices_are_refused_clearly(call):
    with pytest.raises(ValueError, match="runs on the CPU"):
        call(nn.Linear(2, 3))


# ----------------------------------------------------------------------------- torch's remaining Module methods
def test_modules_remove_duplicate_as_torch():
    shared = nn.Linear(2, 2)
    ours = nn.Sequential(shared, shared)
    theirs_shared = torch.nn.Linear(2, 2)
    theirs = torch.nn.Sequential(theirs_shared, theirs_shared)
    for flag in (True, False):
        assert len(list(ours.modules(remove_duplicate=flag))) == len(list(theirs.modules(remove_duplicate=flag)))
    assert len(list(ours.modules())) == 2


def test_set_submodule_replaces_adds_and_refuses_as_torch():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 3)))
    relu = nn.ReLU()
    model.set_submodule("0.0", relu)
    assert model.get_submodule("0.0") is relu
    model.set_submodule("0.extra", nn.Tanh())  # a new child under an existing parent
    assert isinstance(model[0].extra, nn.Tanh)
    with pytest.raises(AttributeError, match="has no attribute `missing`"):
        model.set_submodule("0.missing", nn.ReLU(), strict=True)
    with pytest.raises(ValueError, match="without a target name"):
        model.set_submodule("", relu)
    with pytest.raises(ValueError, match="is not an nn.Module"):
        model.set_submodule("0.0", 3)
    with pytest.raises(AttributeError):
        model.set_submodule("nope.x", relu)


def test_to_empty_keeps_shapes_and_dtypes_and_drops_grads():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model[0].weight.grad = np.ones((4, 3), np.float32)
    before = {k: (v.shape, v.dtype) for k, v in model.state_dict().items()}
    assert model.to_empty(device="cpu") is model
    assert {k: (v.shape, v.dtype) for k, v in model.state_dict().items()} == before
    assert model[0].weight.grad is None
    with pytest.raises(ValueError, match="'cuda'"):
        model.to_empty(device="cuda")


def test_other_devices_and_bfloat16_fail_clearly_share_memory_and_compile_are_harmless():
    model = nn.Linear(2, 2)
    for method in ("xpu", "ipu", "mtia"):
        with pytest.raises(ValueError, match=f"'{method}'"):
            getattr(model, method)()
    with pytest.raises(TypeError, match="bfloat16"):
        model.bfloat16()
    assert model.share_memory() is model
    x = np.ones((1, 2), np.float32)
    y = model(x)
    assert model.compile() is None
    np.testing.assert_array_equal(model(x), y)
    assert model.to(memory_format="channels_last") is model


def test_register_backward_hook_is_the_full_backward_hook():
    model = nn.Linear(2, 2)
    seen = []
    handle = model.register_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    model(np.ones((1, 2), np.float32))
    model.backward(np.ones((1, 2), np.float32))
    assert len(seen) == 1
    handle.remove()
    model(np.ones((1, 2), np.float32))
    model.backward(np.ones((1, 2), np.float32))
    assert len(seen) == 1

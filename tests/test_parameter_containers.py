"""ParameterList, ParameterDict and nn.Buffer against torch 2.13: registration, keys, order, reprs,
errors, state_dict both ways, dtype conversion, and a model that trains through a ParameterList."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn
from parity import check_parity, copy_state, tol

RNG = np.random.default_rng(7)
ARRAYS = [RNG.standard_normal((3, 4)).astype(np.float32), RNG.standard_normal(2),
          np.array(1.5, dtype=np.float32)]


def torch_repr(module):
    """torch's repr with numpy's dtype names, as torchlite prints them."""
    text = repr(module)
    for old, new in (("torch.float32", "float32"), ("torch.float64", "float64"),
                     ("torch.FloatTensor", "float32"), ("torch.DoubleTensor", "float64")):
        text = text.replace(old, new)
    return text


def same_error(tl_call, torch_call, message=True):
    """Both calls raise the same exception type (and, when ``message``, the same text)."""
    with pytest.raises(Exception) as expected:
        torch_call()
    with pytest.raises(Exception) as got:
        tl_call()
    assert type(got.value) is type(expected.value), (got.value, expected.value)
    if message:
        assert str(got.value) == str(expected.value)


def twin_lists(values=ARRAYS):
    tl = nn.ParameterList([a.copy() for a in values])
    th = torch.nn.ParameterList([torch.from_numpy(a.copy()) for a in values])
    return tl, th


def keys(module):
    return list(module.state_dict()), [n for n, _ in module.named_parameters()]


# ----------------------------------------------------------------------------------- ParameterList
def test_parameter_list_registers_like_torch():
    tl, th = twin_lists()
    tl.append("text").append(nn.Linear(2, 3)).append(None)
    th.append("text").append(torch.nn.Linear(2, 3)).append(None)
    assert len(tl) == len(th) == 6
    assert keys(tl) == keys(th) == (["0", "1", "2", "4.weight", "4.bias"],) * 2
    assert all(isinstance(p, nn.Parameter) for p in list(tl)[:3])
    assert [p.dtype for p in list(tl)[:3]] == [np.float32, np.float64, np.float32]
    assert tl[3] == "text" and tl[5] is None and isinstance(tl[4], nn.Linear)
    assert torch_repr(tl) == torch_repr(th)
    assert repr(tl).startswith("ParameterList(\n    (0): Parameter containing: [float32 of size 3x4]\n")


def test_parameter_list_wraps_arrays_sharing_memory_and_keeps_parameters():
    arr = np.zeros(3, dtype=np.float32)
    p = nn.Parameter(np.ones(2, dtype=np.float32))
    pl = nn.ParameterList([arr, p])
    assert isinstance(pl[0], nn.Parameter) and np.shares_memory(pl[0].data, arr)
    assert pl[1] is p


@pytest.mark.parametrize("idx", [0, 2, -1, -3, slice(None), slice(1, None), slice(None, None, 2), slice(-2, 10),
                                 slice(None, None, -1), slice(5, 7)])
def test_parameter_list_indexing(idx):
    tl, th = twin_lists()
    got, expected = tl[idx], th[idx]
    if isinstance(idx, slice):
        assert type(got) is nn.ParameterList and len(got) == len(expected)
        assert keys(got) == keys(expected)
        assert all(a is b for a, b in zip(got, list(tl)[idx]))  # the same Parameters, not copies
    else:
        np.testing.assert_array_equal(got.data, expected.detach().numpy())


def test_parameter_list_setitem_iadd_extend_dir():
    tl, th = twin_lists()
    new = RNG.standard_normal((2, 2))
    tl[1] = new.copy()
    th[1] = torch.from_numpy(new.copy())
    tl[-1] = nn.Parameter(np.ones(5))
    th[-1] = torch.nn.Parameter(torch.ones(5, dtype=torch.float64))
    tl += [np.zeros(1)]
    th += [torch.zeros(1, dtype=torch.float64)]
    tl.extend((np.zeros(2), np.zeros(3)))
    th.extend((torch.zeros(2, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)))
    assert keys(tl) == keys(th)
    assert torch_repr(tl) == torch_repr(th)
    np.testing.assert_array_equal(tl[1].data, new)
    assert not [k for k in dir(tl) if k.isdigit()] and "append" in dir(tl)
    assert [hasattr(tl, a) for a in ("insert", "pop", "__delitem__")] == \
        [hasattr(th, a) for a in ("insert", "pop", "__delitem__")]


def test_parameter_list_empty_and_scalar_reprs():
    assert repr(nn.ParameterList()) == repr(torch.nn.ParameterList()) == "ParameterList()"
    tl, th = twin_lists([np.array(0.5, dtype=np.float32)])
    assert torch_repr(tl) == torch_repr(th) == "ParameterList(  (0): Parameter containing: [float32 of size ])"
    tl, th = nn.Sequential(twin_lists()[0]), torch.nn.Sequential(twin_lists()[1])
    assert torch_repr(tl) == torch_repr(th)


def test_parameter_list_errors_match_torch():
    tl, th = twin_lists()
    same_error(lambda: tl[10], lambda: th[10])
    same_error(lambda: tl[-4], lambda: th[-4])
    same_error(lambda: tl["a"], lambda: th["a"])
    same_error(lambda: tl.__setitem__(3, np.zeros(1)), lambda: th.__setitem__(3, torch.zeros(1)))
    same_error(lambda: tl.extend(5), lambda: th.extend(5))
    same_error(lambda: tl(np.zeros(1)), lambda: th(torch.zeros(1)))
    same_error(lambda: tl.__setitem__(0, "x"), lambda: th.__setitem__(0, "x"), message=False)
    with pytest.raises(TypeError, match="^ParameterList.extend should be called with an iterable, but got ndarray$"):
        tl.extend(np.zeros(3))
    with pytest.raises(TypeError, match="but got Parameter$"):
        tl.extend(tl[0])
    with pytest.raises(ValueError):
        tl.append(np.array(["not a number"]))
    assert len(tl) == 3 and keys(tl)[0] == ["0", "1", "2"]  # a refused entry changes nothing


def test_shared_parameter_in_list_counts_once_like_torch():
    p = nn.Parameter(np.ones(2))
    tp = torch.nn.Parameter(torch.ones(2))
    tl, th = nn.ParameterList([p, p]), torch.nn.ParameterList([tp, tp])
    assert keys(tl) == keys(th) == (["0", "1"], ["0"])
    assert len(list(tl.parameters())) == 1


# ----------------------------------------------------------------------------------- ParameterDict
def twin_dicts(kind):
    b, a, c = (RNG.standard_normal((2, 3)).astype(np.float32), RNG.standard_normal(4), np.ones(1, np.float32))
    tl_vals = {"b": nn.Parameter(b.copy()), "a": a.copy(), "c": c.copy()}
    th_vals = {"b": torch.nn.Parameter(torch.from_numpy(b.copy())), "a": torch.from_numpy(a.copy()),
               "c": torch.from_numpy(c.copy())}
    make = {"dict": dict, "ordered": OrderedDict, "pairs": lambda d: list(d.items())}
    if kind == "parameterdict":
        return nn.ParameterDict(nn.ParameterDict(OrderedDict(tl_vals))), \
            torch.nn.ParameterDict(torch.nn.ParameterDict(OrderedDict(th_vals)))
    return nn.ParameterDict(make[kind](tl_vals)), torch.nn.ParameterDict(make[kind](th_vals))


@pytest.mark.parametrize("kind", ["dict", "ordered", "pairs", "parameterdict"])
def test_parameter_dict_construction_order_and_keys(kind):
    tl, th = twin_dicts(kind)
    assert list(tl) == list(th) == (["a", "b", "c"] if kind == "dict" else ["b", "a", "c"])
    assert keys(tl) == keys(th)
    assert all(isinstance(v, nn.Parameter) for v in tl.values())
    assert torch_repr(tl) == torch_repr(th)
    for k in tl:
        np.testing.assert_array_equal(tl[k].data, th[k].detach().numpy())


def test_parameter_dict_mapping_api_like_torch():
    tl, th = twin_dicts("ordered")
    for d, new, param in ((tl, np.zeros(2), nn.Parameter(np.ones(3, np.float32))),
                          (th, torch.zeros(2, dtype=torch.float64), torch.nn.Parameter(torch.ones(3)))):
        d["z"] = new
        d["b"] = param  # overwrite keeps the key's place
        d["note"] = "text"
        del d["a"]
        assert d.setdefault("c") is d["c"] and d.setdefault("s", new) is d["s"]
        assert d.get("missing") is None and d.get("missing", 5) == 5 and d.get("c") is d["c"]
        assert "c" in d and "a" not in d and 1 not in d
    assert list(tl) == list(th) and list(reversed(tl)) == list(reversed(th))
    assert list(tl.keys()) == list(th.keys())
    assert [k for k, _ in tl.items()] == [k for k, _ in th.items()] and len(list(tl.values())) == len(tl) == len(th)
    assert keys(tl) == keys(th)
    assert torch_repr(tl) == torch_repr(th)
    assert tl.pop("note") == th.pop("note") == "text"
    (k1, v1), (k2, _) = tl.popitem(), th.popitem()
    assert k1 == k2 == "s" and isinstance(v1, nn.Parameter)
    assert keys(tl) == keys(th)
    copy = tl.copy()
    assert type(copy) is nn.ParameterDict and list(copy) == list(tl) and all(copy[k] is tl[k] for k in tl)
    tl.clear(), th.clear()
    assert len(tl) == len(th) == 0 and keys(tl) == keys(th) == ([], []) and len(copy) == 3


def test_parameter_dict_update_fromkeys_and_or():
    tl, th = twin_dicts("ordered")
    tl.update([("y", np.zeros(1)), ("x", np.zeros(2))])
    th.update([("y", torch.zeros(1)), ("x", torch.zeros(2))])
    tl.update({"w": np.zeros(1), "v": np.zeros(1)})
    th.update({"w": torch.zeros(1), "v": torch.zeros(1)})
    assert list(tl) == list(th) == ["b", "a", "c", "y", "x", "v", "w"]
    shared, tshared = nn.Parameter(np.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    f, tf = tl.fromkeys(["q", "r"], shared), th.fromkeys(["q", "r"], tshared)
    assert type(f) is nn.ParameterDict and f["q"] is f["r"] is shared and keys(f) == keys(tf)
    g, tg = tl.fromkeys("ab"), th.fromkeys("ab")
    assert list(g) == list(tg) and g["a"] is None
    small, tsmall = nn.ParameterDict({"k": np.zeros(1)}), torch.nn.ParameterDict({"k": torch.zeros(1)})
    merged = small | {"z": np.zeros(1), "a": np.zeros(1)}
    tmerged = tsmall | {"z": torch.zeros(1), "a": torch.zeros(1)}
    assert type(merged) is nn.ParameterDict and list(merged) == list(tmerged) == ["k", "a", "z"]
    assert list(small) == ["k"]
    left, tleft = {"z": np.zeros(1)} | small, {"z": torch.zeros(1)} | tsmall
    assert type(left) is type(tleft) is dict and list(left) == list(tleft) == ["z", "k"]
    before = id(small)
    small |= f
    tsmall |= tf
    assert id(small) == before and list(small) == list(tsmall) and keys(small) == keys(tsmall)


def test_parameter_dict_errors_match_torch():
    tl, th = twin_dicts("ordered")
    same_error(lambda: tl["missing"], lambda: th["missing"])
    same_error(lambda: tl[1], lambda: th[1])
    same_error(lambda: tl.__delitem__("missing"), lambda: th.__delitem__("missing"))
    same_error(lambda: nn.ParameterDict().popitem(), lambda: torch.nn.ParameterDict().popitem())
    same_error(lambda: tl.pop("missing"), lambda: th.pop("missing"))
    same_error(lambda: tl.update(5), lambda: th.update(5))
    same_error(lambda: tl.update([5]), lambda: th.update([5]))
    same_error(lambda: tl.update([("k", 1, 2)]), lambda: th.update([("k", 1, 2)]))
    same_error(lambda: tl(np.zeros(1)), lambda: th(torch.zeros(1)))
    same_error(lambda: tl(), lambda: th(), message=False)
    same_error(lambda: tl.__setitem__("b", 3), lambda: th.__setitem__("b", 3), message=False)
    # torch records a refused key before refusing it; here the dict stays as it was
    for bad in (lambda: tl.__setitem__(1, np.zeros(1)), lambda: tl.__setitem__("x.y", np.zeros(1)),
                lambda: tl.update([("ok", np.zeros(1)), ("no",)])):
        with pytest.raises((TypeError, KeyError, ValueError)):
            bad()
        assert list(tl) == ["b", "a", "c"] and keys(tl)[0] == ["b", "a", "c"]


# ----------------------------------------------------------------------------------- nn.Buffer
def test_buffer_assignment_registers_like_torch():
    tl, th = nn.Module(), torch.nn.Module()
    arr = np.zeros(3, dtype=np.float32)
    tl.x = nn.Buffer(arr)
    th.x = torch.nn.Buffer(torch.zeros(3))
    tl.y = nn.Buffer(np.ones(2, np.float32), persistent=False)
    th.y = torch.nn.Buffer(torch.ones(2), persistent=False)
    steps = [("y", lambda: np.zeros(4, np.float32), lambda: torch.zeros(4)),  # plain array: keeps non-persistent
             ("y", lambda: nn.Buffer(np.zeros(4, np.float32)), lambda: torch.nn.Buffer(torch.zeros(4))),
             ("x", lambda: nn.Buffer(np.zeros(4, np.float32), persistent=False),
              lambda: torch.nn.Buffer(torch.zeros(4), persistent=False))]
    assert list(tl.state_dict()) == list(th.state_dict()) == ["x"]
    assert type(tl.x) is np.ndarray and np.shares_memory(tl.x, arr)
    for name, make, tmake in steps:
        setattr(tl, name, make())
        setattr(th, name, tmake())
        assert list(tl.state_dict()) == list(th.state_dict())
        assert [n for n, _ in tl.named_buffers()] == [n for n, _ in th.named_buffers()]
        assert type(getattr(tl, name)) is np.ndarray


def test_buffer_object_and_dtype():
    b = nn.Buffer(np.arange(3.0))
    assert isinstance(b, np.ndarray) and b.persistent is True and b.dtype == np.float64
    assert nn.Buffer(np.zeros(1), persistent=False).persistent is False
    assert nn.Buffer(np.zeros(4), persistent=False)[1:].persistent is False
    empty = nn.Buffer()
    assert empty.shape == (0,) and empty.dtype == np.float32
    torchlite.set_default_dtype(np.float64)
    assert nn.Buffer().dtype == np.float64
    with pytest.raises(TypeError):
        nn.Buffer(np.zeros(1), False)  # persistent is keyword-only, as torch's


def test_buffer_errors_match_torch():
    tl, th = nn.Module(), torch.nn.Module()
    tl.z, th.z, tl.w, th.w = 5, 5, nn.Parameter(np.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    tl.m, th.m = nn.Identity(), torch.nn.Identity()

    def assign(module, name, buffer):
        return lambda: setattr(module, name, buffer)

    same_error(assign(tl, "z", nn.Buffer(np.zeros(1))), assign(th, "z", torch.nn.Buffer(torch.zeros(1))))
    for name in ("w", "m"):  # a Parameter's or a Module's name: TypeError (the messages name each library's types)
        same_error(assign(tl, name, nn.Buffer(np.zeros(1))), assign(th, name, torch.nn.Buffer(torch.zeros(1))),
                   message=False)

    class Early(nn.Module):
        def __init__(self):
            self.b = nn.Buffer(np.zeros(1))

    class TorchEarly(torch.nn.Module):
        def __init__(self):
            self.b = torch.nn.Buffer(torch.zeros(1))

    same_error(Early, TorchEarly)


# ----------------------------------------------------------------------------------- in a model
class SumMatmul(nn.Module):
    """y = (x @ W_0 + ... + x @ W_{n-1}) * scale + bias: W_i in a ParameterList, scale and bias in a ParameterDict."""

    def __init__(self, n=3, d_in=4, d_out=5):
        super().__init__()
        self.params = nn.ParameterList([np.zeros((d_in, d_out), dtype=np.float32) for _ in range(n)])
        self.extra = nn.ParameterDict({"scale": np.ones(d_out, np.float32), "bias": np.zeros(d_out, np.float32)})
        self.count = nn.Buffer(np.zeros(1, np.float32))

    def forward(self, x):
        x = x.astype(self.params[0].dtype, copy=False)
        s = sum(x @ w.data for w in self.params)
        self.save_for_backward(x, s)
        return s * self.extra["scale"].data + self.extra["bias"].data

    def backward(self, grad):
        x, s = self.pop_saved()
        self.extra["bias"].accumulate_grad(grad.sum(0))
        self.extra["scale"].accumulate_grad((grad * s).sum(0))
        g = grad * self.extra["scale"].data
        for w in self.params:
            w.accumulate_grad(x.T @ g)
        return g @ sum(w.data for w in self.params).T


class TorchSumMatmul(torch.nn.Module):
    def __init__(self, n=3, d_in=4, d_out=5):
        super().__init__()
        self.params = torch.nn.ParameterList([torch.randn(d_in, d_out) for _ in range(n)])
        self.extra = torch.nn.ParameterDict({"scale": torch.randn(d_out), "bias": torch.randn(d_out)})
        self.count = torch.nn.Buffer(torch.full((1,), 3.0))

    def forward(self, x):
        return sum(x @ w for w in self.params) * self.extra["scale"] + self.extra["bias"]


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = SumMatmul()

    def forward(self, x):
        return self.layer(x)

    def backward(self, grad):
        return self.layer.backward(grad)


class TorchOuter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = TorchSumMatmul()

    def forward(self, x):
        return self.layer(x)


KEYS = ["layer.count", "layer.params.0", "layer.params.1", "layer.params.2", "layer.extra.bias",
        "layer.extra.scale"]  # a module's own buffers come before its children's entries


def test_model_state_dict_round_trip_with_torch(tmp_path):
    torch.manual_seed(0)
    tl, th = Outer(), TorchOuter()
    assert list(tl.state_dict()) == list(th.state_dict()) == KEYS
    assert [n for n, _ in tl.named_parameters()] == [n for n, _ in th.named_parameters()] == KEYS[1:]
    assert len(list(tl.parameters())) == 5
    copy_state(tl, th)
    for key, value in th.state_dict().items():
        np.testing.assert_array_equal(tl.state_dict()[key], value.numpy())
    torchlite.save(tl.state_dict(), tmp_path / "m.npz")
    back = TorchOuter()
    back.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in torchlite.load(tmp_path / "m.npz").items()})
    for key, value in th.state_dict().items():
        torch.testing.assert_close(back.state_dict()[key], value, rtol=0, atol=0)


def test_model_to_float64_converts_container_entries():
    model = Outer()
    model(np.ones((2, 4), np.float32))
    model.backward(np.ones((2, 5), np.float32))
    model.to(np.float64)
    assert {v.dtype for v in model.state_dict().values()} == {np.dtype(np.float64)}
    assert {p.grad.dtype for p in model.parameters()} == {np.dtype(np.float64)}
    assert model.layer.params[0].dtype == model.layer.extra["bias"].dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_model_parity_and_sgd_steps_against_torch(dtype):
    torch.manual_seed(1)
    tl, th = Outer(), TorchOuter()
    x = np.random.default_rng(2).standard_normal((6, 4))
    check_parity(tl, th, x, dtype=dtype)  # copies weights, compares output, input grad, every parameter grad
    before = {name: (p, p.data) for name, p in tl.named_parameters()}
    opt = torchlite.optim.SGD(tl.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(th.parameters(), lr=0.1, momentum=0.9)
    tx = torch.from_numpy(x.astype(dtype))
    for step in range(3):
        if step:  # the first step uses check_parity's gradients
            opt.zero_grad(), topt.zero_grad()
            out = tl(x.astype(dtype))
            tout = th(tx)
            grad = np.cos(out)
            tout.backward(torch.from_numpy(grad))
            tl.backward(grad)
        opt.step(), topt.step()
    for name, p in tl.named_parameters():
        assert p is before[name][0] and p.data is before[name][1]  # updated in place
        assert p.dtype == dtype
        np.testing.assert_allclose(p.data, th.get_parameter(name).detach().numpy(), **tol(dtype, 10))


def test_gradients_accumulate_over_two_backward_passes():
    torch.manual_seed(3)
    tl, th = Outer().double(), TorchOuter().double()
    copy_state(tl, th)
    xs = [np.random.default_rng(s).standard_normal((3, 4)) for s in (4, 5)]
    outs = [tl(x) for x in xs]
    for out in reversed(outs):
        tl.backward(np.ones_like(out))
    sum(th(torch.from_numpy(x)).sum() for x in xs).backward()
    for name, p in tl.named_parameters():
        np.testing.assert_allclose(p.grad, th.get_parameter(name).grad.numpy(), rtol=1e-12)

"""Module hooks against torch's: forward pre-hooks, forward hooks, backward pre-hooks, backward hooks."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn

from parity import copy_state


def _pair(build):
    tl, th = build(nn), build(torch.nn)
    tl.double(), th.double()
    copy_state(tl, th)
    return tl, th


def _x(*shape):
    return np.random.default_rng(0).standard_normal(shape)


@pytest.mark.parametrize("returns", ["none", "value", "tuple"])
def test_forward_pre_hook_may_replace_the_input(returns):
    def hook(module, args):
        assert isinstance(args, tuple) and len(args) == 1
        if returns == "value":
            return args[0] * 2
        if returns == "tuple":
            return (args[0] + 1,)
        return None

    tl, th = _pair(lambda m: m.Linear(3, 2))
    tl.register_forward_pre_hook(hook)
    th.register_forward_pre_hook(hook)
    x = _x(4, 3)
    np.testing.assert_allclose(tl(x), th(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


def test_forward_hook_sees_input_and_output_and_may_replace_it():
    seen = {}

    def hook(module, args, output):
        seen[type(output).__module__.split(".")[0]] = (args[0].shape, output.shape)
        return output * 3

    tl, th = _pair(lambda m: m.Linear(3, 2))
    tl.register_forward_hook(hook)
    th.register_forward_hook(hook)
    x = _x(4, 3)
    np.testing.assert_allclose(tl(x), th(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
    assert seen["numpy"] == (tuple(seen["torch"][0]), tuple(seen["torch"][1]))


def test_hooks_with_kwargs():
    calls = []

    def pre(module, args, kwargs):
        calls.append(("pre", sorted(kwargs)))
        return args, kwargs

    def post(module, args, kwargs, output):
        calls.append(("post", sorted(kwargs)))

    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    mha.register_forward_pre_hook(pre, with_kwargs=True)
    mha.register_forward_hook(post, with_kwargs=True)
    x = _x(1, 3, 4).astype(np.float32)
    mha(x, x, x, need_weights=False)
    assert calls == [("pre", ["need_weights"]), ("post", ["need_weights"])]


def test_bad_pre_hook_return_with_kwargs_is_an_error():
    lin = nn.Linear(2, 2)
    lin.register_forward_pre_hook(lambda m, a, k: a, with_kwargs=True)
    with pytest.raises(RuntimeError, match="new_args, new_kwargs"):
        lin(np.ones((1, 2), np.float32))


def test_hooks_run_in_order_prepend_first_and_remove():
    order = []
    lin = nn.Linear(2, 2)
    h1 = lin.register_forward_hook(lambda m, a, o: order.append(1))
    lin.register_forward_hook(lambda m, a, o: order.append(2))
    lin.register_forward_hook(lambda m, a, o: order.append(0), prepend=True)
    lin(np.ones((1, 2), np.float32))
    assert order == [0, 1, 2]
    h1.remove()
    h1.remove()  # twice is harmless
    order.clear()
    lin(np.ones((1, 2), np.float32))
    assert order == [0, 2]
    assert isinstance(h1, nn.RemovableHandle)


def test_handle_as_context_manager():
    seen = []
    lin = nn.Linear(2, 2)
    with lin.register_forward_hook(lambda m, a, o: seen.append(1)):
        lin(np.ones((1, 2), np.float32))
    lin(np.ones((1, 2), np.float32))
    assert seen == [1]


def test_always_call_hook_runs_when_forward_raises():
    seen = []
    lin = nn.Linear(2, 2)
    lin.register_forward_hook(lambda m, a, o: seen.append(o), always_call=True)
    lin.register_forward_hook(lambda m, a, o: seen.append("not always"))
    with pytest.raises(ValueError):
        lin(np.ones((1, 3), np.float32))
    assert seen == [None]


def _mlp(m):
    return m.Sequential(m.Linear(3, 5), m.Tanh(), m.Linear(5, 2))


def test_backward_hooks_match_torch():
    """Pre-hook scales grad_output, hook replaces grad_input: gradients equal torch's."""
    seen = {"numpy": [], "torch": []}

    def pre(module, grad_output):
        return (grad_output[0] * 2,)

    def post(module, grad_input, grad_output):
        lib = type(grad_output[0]).__module__.split(".")[0]
        seen[lib].append((type(module).__name__, len(grad_input), tuple(grad_output[0].shape)))
        return (grad_input[0] * 0.5,)

    tl, th = _pair(_mlp)
    for model in (tl, th):
        model[1].register_full_backward_pre_hook(pre)
        model[1].register_full_backward_hook(post)
    x = _x(4, 3)
    tx = torch.from_numpy(x).requires_grad_()
    g = _x(4, 2)
    y = tl(x)
    dx = tl.backward(g)
    th(tx).backward(torch.from_numpy(g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10)
    for (name, p), tp in zip(tl.named_parameters(), th.parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, err_msg=name)
    assert seen["numpy"] == seen["torch"] == [("Tanh", 1, (4, 5))]


def test_backward_hook_sees_none_for_an_input_without_gradient():
    seen = []
    lin = nn.Linear(3, 2)
    lin.needs_input_grad = False
    lin.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    lin(np.ones((2, 3), np.float32))
    lin.backward(np.ones((2, 2), np.float32))
    assert seen == [(None,)]


def test_backward_hook_fires_once_through_super_backward():
    class Scaled(nn.Tanh):
        def backward(self, grad_output):
            return super().backward(grad_output) * 1.0

    calls = []
    m = Scaled()
    m.register_full_backward_hook(lambda mod, gi, go: calls.append(1))
    m(np.ones(3))
    m.backward(np.ones(3))
    assert calls == [1]


def test_forward_hook_on_a_conv_in_sequential_sees_torchs_tensors():
    """With hooks, Sequential runs its children as written (no pool-before-ReLU, no overwriting)."""
    captured = {}

    def build(m):
        return m.Sequential(m.Conv2d(1, 2, 3), m.ReLU(), m.MaxPool2d(2))

    tl, th = _pair(build)
    tl[0].register_forward_hook(lambda m, a, o: captured.__setitem__("tl", o))
    th[0].register_forward_hook(lambda m, a, o: captured.__setitem__("th", o.detach().numpy().copy()))
    tl[1].register_forward_pre_hook(lambda m, a: captured.__setitem__("relu_in", a[0].shape))
    x = _x(2, 1, 6, 6)
    np.testing.assert_allclose(tl(x), th(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(captured["tl"], captured["th"], rtol=1e-12)  # not overwritten by the ReLU
    assert captured["relu_in"] == (2, 2, 4, 4)


def test_anomaly_mode_with_hooks():
    lin = nn.Linear(2, 2)
    lin.register_forward_hook(lambda m, a, o: o * np.nan)
    with torchlite.detect_anomaly():
        lin(np.ones((1, 2), np.float32))  # the hook's output is not the layer's: anomaly checks forward itself

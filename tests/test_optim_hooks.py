"""Optimizer hooks against torch.optim: step pre/post hooks (per optimizer and global), state_dict and
load_state_dict hooks: order, prepend, removal, the arguments passed and what a hook's result changes."""
import numpy as np
import pytest
import torch
import torch.optim.optimizer as torch_optimizer_module

from torchlite import optim
from torchlite.nn import Parameter
from torchlite.optim import optimizer as optimizer_module

LIBS = {
    "torchlite": (optim, optimizer_module, lambda: Parameter(np.ones(3))),
    "torch": (torch.optim, torch_optimizer_module, lambda: torch.nn.Parameter(torch.ones(3, dtype=torch.float64))),
}


def set_grad(p):
    p.grad = torch.full((3,), 0.5, dtype=torch.float64) if isinstance(p, torch.Tensor) else np.full(3, 0.5)


def values(p):
    return p.detach().numpy().copy() if isinstance(p, torch.Tensor) else p.data.copy()


@pytest.fixture
def global_handles():
    """Global hooks registered by a test, removed even when it fails (they would reach every later optimizer)."""
    handles = []
    yield handles
    for handle in handles:
        handle.remove()


def record_step_hooks(lib, global_handles):
    """Register local and global pre/post hooks (some prepended) on an SGD, step it, return the events."""
    O, module, new_param = LIBS[lib]
    p = new_param()
    set_grad(p)
    opt = O.SGD([p], lr=0.1)
    events = []

    def hook(name):
        def fn(optimizer, args, kwargs):
            assert optimizer is opt and args[0] is opt
            events.append((name, len(args), sorted(kwargs)))
        return fn

    global_handles.append(module.register_optimizer_step_pre_hook(hook("global-pre")))
    global_handles.append(module.register_optimizer_step_post_hook(hook("global-post")))
    opt.register_step_pre_hook(hook("pre-1"))
    removed = opt.register_step_pre_hook(hook("pre-removed"))
    opt.register_step_pre_hook(hook("pre-2"))
    opt.register_step_post_hook(hook("post-1"))
    opt.register_step_post_hook(hook("post-2"))
    removed.remove()
    opt.step()
    events.append("--")
    opt.step(closure=None)
    events.append("--")
    for handle in global_handles:
        handle.remove()
    with opt.register_step_post_hook(hook("post-scoped")):
        opt.step(lambda: 1.0)
    events.append("--")
    opt.step()
    return events


def test_step_hook_order_arguments_and_removal_match_torch(global_handles):
    ours = record_step_hooks("torchlite", global_handles)
    theirs = record_step_hooks("torch", global_handles)
    assert ours == theirs
    assert ours[:7] == [("global-pre", 1, []), ("pre-1", 1, []), ("pre-2", 1, []), ("post-1", 1, []),
                        ("post-2", 1, []), ("global-post", 1, []), "--"]
    assert ("post-scoped", 2, []) in ours and ours[-4:] == [("pre-1", 1, []), ("pre-2", 1, []), ("post-1", 1, []),
                                                             ("post-2", 1, [])]


def run_with_pre_hook(lib):
    """A pre-hook that swaps the closure and one that doubles the lr for this call only."""
    O, _, new_param = LIBS[lib]
    p = new_param()
    opt = O.SGD([p], lr=0.1)

    def closure():
        set_grad(p)
        return 7.0

    def swap_closure(optimizer, args, kwargs):
        return (args[0], closure), kwargs

    def leave_alone(optimizer, args, kwargs):
        return None

    handle = opt.register_step_pre_hook(swap_closure)
    opt.register_step_pre_hook(leave_alone)
    loss = opt.step(lambda: 1.0)
    after = values(p)
    handle.remove()
    return loss, after, opt.step(lambda: 3.0)


def test_pre_hook_replaces_args_as_torch():
    ours, theirs = run_with_pre_hook("torchlite"), run_with_pre_hook("torch")
    assert ours[0] == theirs[0] == 7.0
    np.testing.assert_allclose(ours[1], theirs[1])
    np.testing.assert_allclose(ours[1], np.full(3, 0.95))
    assert ours[2] == theirs[2] == 3.0


def test_pre_hook_returning_something_else_fails_as_torch():
    for lib in LIBS:
        O, _, new_param = LIBS[lib]
        opt = O.SGD([new_param()], lr=0.1)
        opt.register_step_pre_hook(lambda o, a, k: 5)
        with pytest.raises(RuntimeError, match=r"must return None or a tuple of \(new_args, new_kwargs\)"):
            opt.step()


def build(name, p):
    cls = getattr(optim, name)
    return cls([p], lr=0.1) if name != "Adadelta" else cls([p])


OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam", "RAdam", "Adamax", "Adadelta", "Rprop", "ASGD",
              "LBFGS", "Adafactor", "Muon"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_hooks_fire_once_per_step_for_every_optimizer(name, global_handles):
    p = Parameter(np.ones((2, 3)) if name == "Muon" else np.ones(3))  # Muon takes 2-D parameters only
    opt = build(name, p)
    calls = []
    global_handles.append(optimizer_module.register_optimizer_step_pre_hook(lambda o, a, k: calls.append("g-pre")))
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    global_handles.append(optimizer_module.register_optimizer_step_post_hook(lambda o, a, k: calls.append("g-post")))

    def closure():
        opt.zero_grad()
        p.accumulate_grad(2 * p.data)
        return float(np.sum(p.data ** 2))

    before = p.data.copy()
    optim.lr_scheduler.StepLR(opt, 1)  # wraps the instance's step: the hooks still run once
    opt.step(closure)
    assert calls == ["g-pre", "pre", "post", "g-post"]
    assert not np.array_equal(p.data, before), "the step did nothing"


def test_subclass_step_calling_super_runs_hooks_once():
    class Clipped(optim.SGD):
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    np.clip(p.grad, -0.1, 0.1, out=p.grad)
            return super().step(closure)

    class Custom(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, dict(lr=1.0))

        def step(self, closure=None):
            for p in self.param_groups[0]["params"]:
                p.data -= p.grad

    for cls in (Clipped, Custom):
        p = Parameter(np.ones(3))
        opt = cls([p], lr=1.0) if cls is Clipped else cls([p])
        calls = []
        opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
        opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
        set_grad(p)
        opt.step()
        opt.step()
        assert calls == ["pre", "post"] * 2, cls.__name__
    np.testing.assert_allclose(p.data, np.zeros(3))


def test_hook_raising_leaves_no_reentry_flag():
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=1.0)
    calls = []

    def fail(o, a, k):
        raise KeyError("boom")

    with opt.register_step_post_hook(fail):
        set_grad(p)
        with pytest.raises(KeyError):
            opt.step()
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.step()
    assert calls == ["pre"]


# state_dict hooks -----------------------------------------------------------------------------
def record_state_dict_hooks(lib):
    O, _, new_param = LIBS[lib]
    p = new_param()
    set_grad(p)
    opt = O.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    events = []

    def pre(name):
        def fn(optimizer):
            assert optimizer is opt
            events.append(name)
        return fn

    def post_edit(optimizer, state_dict):
        events.append("post-edit")
        state_dict["param_groups"][0]["extra"] = 1

    def post_replace(optimizer, state_dict):
        events.append("post-replace")
        return {**state_dict, "note": "replaced"}

    opt.register_state_dict_pre_hook(pre("pre-1"))
    opt.register_state_dict_pre_hook(pre("pre-0"), prepend=True)
    opt.register_state_dict_post_hook(post_replace)
    opt.register_state_dict_post_hook(post_edit, prepend=True)
    removed = opt.register_state_dict_pre_hook(pre("removed"))
    removed.remove()
    state = opt.state_dict()
    return events, sorted(state), state["param_groups"][0]["extra"], state["note"], sorted(opt.param_groups[0])


def test_state_dict_hooks_match_torch():
    ours, theirs = record_state_dict_hooks("torchlite"), record_state_dict_hooks("torch")
    assert ours[:4] == theirs[:4]
    assert ours[0] == ["pre-0", "pre-1", "post-edit", "post-replace"]
    assert "extra" not in ours[4]  # the packed groups are copies: the optimizer's own are untouched


def record_load_state_dict_hooks(lib):
    O, _, new_param = LIBS[lib]
    p = new_param()
    set_grad(p)
    source = O.SGD([p], lr=0.1, momentum=0.9)
    source.step()
    saved = source.state_dict()
    opt = O.SGD([new_param()], lr=0.5, momentum=0.9)
    events = []

    def pre_edit(optimizer, state_dict):
        assert state_dict is not saved and state_dict["state"] is saved["state"]  # a shallow copy
        events.append("pre-edit")
        state_dict["user_key"] = 1

    def pre_replace(optimizer, state_dict):
        events.append(("pre-replace", "user_key" in state_dict))
        groups = [{**g, "lr": 0.25} for g in state_dict["param_groups"]]
        return {"state": state_dict["state"], "param_groups": groups}

    def post(name):
        def fn(optimizer):
            events.append((name, optimizer.param_groups[0]["lr"]))
        return fn

    opt.register_load_state_dict_pre_hook(pre_replace)
    opt.register_load_state_dict_pre_hook(pre_edit, prepend=True)
    opt.register_load_state_dict_post_hook(post("post-2"))
    opt.register_load_state_dict_post_hook(post("post-1"), prepend=True)
    opt.load_state_dict(saved)
    momentum = opt.state[opt.param_groups[0]["params"][0]]["momentum_buffer"]
    return events, "user_key" in saved, saved["param_groups"][0]["lr"], np.asarray(momentum).tolist()


def test_load_state_dict_hooks_match_torch():
    ours, theirs = record_load_state_dict_hooks("torchlite"), record_load_state_dict_hooks("torch")
    assert ours == theirs
    assert ours[0] == ["pre-edit", ("pre-replace", True), ("post-1", 0.25), ("post-2", 0.25)]
    assert ours[1:3] == (False, 0.1)


def test_load_state_dict_pre_hook_can_repair_a_dict():
    """The dict is checked after the pre-hooks, so a hook may translate a foreign layout."""
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    saved = opt.state_dict()
    opt.register_load_state_dict_pre_hook(lambda o, sd: {"state": {}, "param_groups": sd["groups"]})
    opt.load_state_dict({"groups": [{**saved["param_groups"][0], "lr": 0.3}]})
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["params"] == [p]
    with pytest.raises(KeyError):
        opt.load_state_dict(saved)

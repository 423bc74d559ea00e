"""Module state_dict hooks, load_state_dict hooks and extra state, against torch's on the same models."""
import numpy as np
import pytest
import torch

import torchlite
import torchlite.nn as nn


def _model(mod):
    """Nested, so every hook sees a prefix: '', '0.', '1.', '1.0.', '1.1.'."""
    return mod.Sequential(mod.Linear(3, 4), mod.Sequential(mod.Linear(4, 2), mod.BatchNorm1d(2)))


def _numpy(state):
    return {k: v.detach().numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def _torch(state):
    return {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v for k, v in state.items()}


def _pair(build=_model):
    torch.manual_seed(0)
    th = build(torch.nn).double()
    tl = build(nn).double()
    tl.load_state_dict(_numpy(th.state_dict()))
    return tl, th


def _assert_same_state(tl, th):
    a, b = tl.state_dict(), _numpy(th.state_dict())
    assert list(a) == list(b)
    for key in a:
        if isinstance(a[key], dict):  # extra state
            assert list(a[key]) == list(b[key]), key
            for k in a[key]:
                np.testing.assert_array_equal(a[key][k], b[key][k], err_msg=f"{key}/{k}")
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _on_every_module(model, register, make_hook):
    return [getattr(m, register)(make_hook(name)) for name, m in model.named_modules()]


# ----------------------------------------------------------------------------- state_dict hooks
@pytest.mark.parametrize("keep_vars", [False, True])
def test_state_dict_hooks_fire_in_torch_order_with_prefixes(keep_vars):
    logs = {}
    for tag, model in zip(("tl", "th"), _pair()):
        log = logs[tag] = []

        def pre(name, log=log):
            return lambda module, prefix, kv: log.append(("pre", name, type(module).__name__, prefix, kv))

        def post(name, log=log):
            return lambda module, sd, prefix, meta: log.append(("post", name, prefix, list(sd)))

        _on_every_module(model, "register_state_dict_pre_hook", pre)
        _on_every_module(model, "register_state_dict_post_hook", post)
        model.state_dict(keep_vars=keep_vars)
    assert logs["tl"] == logs["th"]
    assert [e[3] for e in logs["tl"] if e[0] == "pre"] == ["", "0.", "1.", "1.0.", "1.1."]


def test_state_dict_post_hook_gets_empty_local_metadata():
    tl = _model(nn)
    seen = []
    tl[1].register_state_dict_post_hook(lambda m, sd, prefix, meta: seen.append(meta))
    tl.state_dict()
    assert seen == [{}]  # torch's holds {"version": 1}; torchlite keeps no _metadata


def test_state_dict_hooks_may_edit_the_output_and_the_module():
    def post(module, sd, prefix, meta):
        sd[prefix + "scale"] = sd.pop(prefix + "weight") * 2  # a custom export format
        del sd[prefix + "bias"]

    def pre(module, prefix, keep_vars):
        module.running_mean[...] = 7.0  # runs before the buffer is read

    states = []
    for model in _pair():
        model[0].register_state_dict_post_hook(post)
        model[1][1].register_state_dict_pre_hook(pre)
        states.append(_numpy(model.state_dict()))
    tl_state, th_state = states
    assert list(tl_state) == list(th_state)
    assert "0.scale" in tl_state and "0.bias" not in tl_state
    for key in tl_state:
        np.testing.assert_array_equal(tl_state[key], th_state[key], err_msg=key)
    np.testing.assert_array_equal(tl_state["1.1.running_mean"], [7.0, 7.0])


def test_state_dict_post_hook_returning_a_value_raises_as_torch():
    for model in _pair():
        model[0].register_state_dict_post_hook(lambda m, sd, prefix, meta: {})
        with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
            model.state_dict()


# ----------------------------------------------------------------------------- load pre-hooks
@pytest.mark.parametrize("strict", [True, False])
def test_load_pre_hooks_fire_in_torch_order_with_prefixes_and_local_keys(strict):
    logs = {}
    for tag, model in zip(("tl", "th"), _pair()):
        log = logs[tag] = []

        def pre(name, log=log):
            def hook(module, sd, prefix, meta, strict_arg, missing, unexpected, errors):
                # torch's lists already hold what the modules walked before found; torchlite checks
                # after every pre-hook ran, so its lists hold only what hooks add
                assert isinstance(meta, dict) and isinstance(missing, list) and errors == []
                log.append((name, type(module).__name__, prefix, sorted(sd), strict_arg))
            return hook

        _on_every_module(model, "register_load_state_dict_pre_hook", pre)
        state = _numpy(model.state_dict())
        state["1.stray"] = np.zeros(1)
        with pytest.raises(RuntimeError, match='Unexpected key.*"1.stray"') if strict else _no_error():
            model.load_state_dict(_torch(state) if tag == "th" else state, strict=strict)
    assert logs["tl"] == logs["th"]
    assert [e[2] for e in logs["tl"]] == ["", "0.", "1.", "1.0.", "1.1."]


class _no_error:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _legacy_hook(module, sd, prefix, meta, strict, missing, unexpected, errors):
    """Checkpoints of an older release named the Linear weight 'w' and the bias 'b'."""
    for old, new in (("w", "weight"), ("b", "bias")):
        if prefix + old in sd:
            sd[prefix + new] = sd.pop(prefix + old)


@pytest.mark.parametrize("where", ["child", "root"])
def test_load_pre_hook_renames_legacy_keys_before_the_checks(where):
    tl, th = _model(nn).double(), _model(torch.nn).double()
    source, _ = _pair()
    legacy = {k.replace("1.0.weight", "1.0.w").replace("0.bias", "0.b"): v for k, v in source.state_dict().items()}
    snapshot = dict(legacy)

    def root_hook(module, sd, prefix, *rest):
        for key in [k for k in sd if k.startswith(("0.", "1.0."))]:
            _legacy_hook(module, sd, key.rsplit(".", 1)[0] + ".", *rest)

    for model in (tl, th):
        (model.register_load_state_dict_pre_hook(root_hook) if where == "root" else
         [m.register_load_state_dict_pre_hook(_legacy_hook) for m in (model[0], model[1][0])])
    assert tuple(tl.load_state_dict(legacy)) == ([], [])
    assert tuple(th.load_state_dict(_torch(legacy))) == ([], [])
    assert legacy == snapshot  # the caller's dict is never edited
    _assert_same_state(tl, th)
    _assert_same_state(source, th)


def test_load_without_the_pre_hook_refuses_legacy_keys_and_changes_nothing():
    tl, th = _pair()
    before = {k: np.array(v) for k, v in tl.state_dict().items()}
    legacy = {k.replace("1.0.weight", "1.0.w"): np.zeros_like(v) for k, v in before.items()}
    with pytest.raises(RuntimeError) as tl_err:
        tl.load_state_dict(legacy)
    with pytest.raises(RuntimeError) as th_err:
        th.load_state_dict(_torch(legacy))
    assert str(tl_err.value) == str(th_err.value)
    for key, value in tl.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_renamed_key_with_a_wrong_shape_is_still_refused_all_or_nothing():
    tl = _model(nn)
    before = {k: np.array(v) for k, v in tl.state_dict().items()}
    tl[1][0].register_load_state_dict_pre_hook(_legacy_hook)
    legacy = {k: np.ones_like(v) for k, v in before.items() if k != "1.0.weight"}
    legacy["1.0.w"] = np.ones((3, 3), np.float32)
    with pytest.raises(RuntimeError, match="size mismatch for 1.0.weight"):
        tl.load_state_dict(legacy)
    for key, value in tl.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


@pytest.mark.parametrize("target", ["missing", "unexpected", "errors"])
def test_load_pre_hook_adding_to_the_lists_makes_the_load_raise(target):
    def hook(module, sd, prefix, meta, strict, missing, unexpected, errors):
        {"missing": missing, "unexpected": unexpected, "errors": errors}[target].append(prefix + "from_hook")

    messages = []
    for model in _pair():
        model[1].register_load_state_dict_pre_hook(hook)
        state = _numpy(model.state_dict())
        with pytest.raises(RuntimeError) as err:
            model.load_state_dict(_torch(state) if isinstance(model, torch.nn.Module) else state)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "1.from_hook" in messages[0]


# ----------------------------------------------------------------------------- load post-hooks
def test_load_post_hooks_fire_children_first_with_the_incompatible_keys():
    logs = {}
    for tag, model in zip(("tl", "th"), _pair()):
        log = logs[tag] = []

        def post(name, log=log):
            def hook(module, keys):
                assert isinstance(keys.missing_keys, list) and isinstance(keys.unexpected_keys, list)
                log.append((name, type(module).__name__))
            return hook

        _on_every_module(model, "register_load_state_dict_post_hook", post)
        state = _numpy(model.state_dict())
        del state["1.1.bias"]
        result = model.load_state_dict(_torch(state) if tag == "th" else state, strict=False)
        log.append(tuple(result))
    assert logs["tl"] == logs["th"]
    assert [e[0] for e in logs["tl"][:-1]] == ["0", "1.0", "1.1", "1", ""]
    assert logs["tl"][-1] == (["1.1.bias"], [])


def test_load_post_hook_adding_a_missing_key_raises_under_strict_and_restores_the_module():
    def hook(module, keys):
        keys.missing_keys.append("1.0.needed")

    messages = []
    tl, th = _pair()
    before = {k: np.array(v) for k, v in tl.state_dict().items()}
    new = {k: np.full_like(v, 0.5) for k, v in before.items()}
    for model in (tl, th):
        model[1][0].register_load_state_dict_post_hook(hook)
        with pytest.raises(RuntimeError) as err:
            model.load_state_dict(_torch(new) if model is th else new)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert 'Missing key(s) in state_dict: "1.0.needed"' in messages[0]
    for key, value in tl.state_dict().items():  # torch keeps the copied values; torchlite is all or nothing
        np.testing.assert_array_equal(value, before[key])
    assert tuple(tl.load_state_dict(new, strict=False)) == (["1.0.needed"], [])
    assert tuple(th.load_state_dict(_torch(new), strict=False)) == (["1.0.needed"], [])
    _assert_same_state(tl, th)


def test_load_post_hook_sees_the_loaded_values_and_may_clear_strict_keys():
    def hook(module, keys):
        seen.append(module.weight.data.copy() if isinstance(module, nn.Module) else module.weight.detach().numpy())
        keys.unexpected_keys.clear()

    tl, th = _pair()
    new = {k: np.full_like(v, 0.25) for k, v in tl.state_dict().items()}
    new["0.legacy_extra"] = np.zeros(2)
    results = []
    for model in (tl, th):
        seen = []
        model[0].register_load_state_dict_post_hook(hook)
        results.append(tuple(model.load_state_dict(_torch(new) if model is th else new)))
        np.testing.assert_array_equal(seen[0], np.full((4, 3), 0.25))
    assert results[0] == results[1] == ([], [])
    _assert_same_state(tl, th)


def test_load_post_hook_returning_a_value_raises_as_torch():
    for model in _pair():
        state = _numpy(model.state_dict())
        model.register_load_state_dict_post_hook(lambda module, keys: keys)
        with pytest.raises(AssertionError, match="not expected to return new values"):
            model.load_state_dict(_torch(state) if isinstance(model, torch.nn.Module) else state)


# ----------------------------------------------------------------------------- extra state
def _counted(mod):
    class Counted(mod.Module):
        """A Linear with a step counter and a tag kept as extra state."""

        def __init__(self):
            super().__init__()
            self.lin = mod.Linear(2, 3)
            self.steps, self.tag, self.scale = 0, "fresh", np.ones(2)

        def get_extra_state(self):
            return {"steps": self.steps, "tag": self.tag, "scale": self.scale}

        def set_extra_state(self, state):
            self.steps, self.tag, self.scale = int(state["steps"]), str(state["tag"]), np.array(state["scale"])

    return mod.Sequential(mod.Linear(3, 2), Counted())


def test_extra_state_keys_match_torch_and_round_trip_through_save_and_load(tmp_path):
    tl, th = _pair(_counted)
    for model in (tl, th):
        model[1].steps, model[1].tag, model[1].scale = 5, "trained", np.array([0.5, 2.0])
    state = tl.state_dict()
    assert list(state) == list(th.state_dict()) == ["0.weight", "0.bias", "1._extra_state", "1.lin.weight",
                                                   "1.lin.bias"]
    torchlite.save(state, tmp_path / "ckpt.npz")
    fresh, fresh_th = _counted(nn).double(), _counted(torch.nn).double()
    loaded = torchlite.load(tmp_path / "ckpt.npz")
    assert tuple(fresh.load_state_dict(loaded)) == ([], [])
    assert tuple(fresh_th.load_state_dict(_torch(loaded))) == ([], [])
    for model in (fresh, fresh_th):
        assert (model[1].steps, model[1].tag) == (5, "trained")
        np.testing.assert_array_equal(model[1].scale, [0.5, 2.0])
    _assert_same_state(fresh, th)


def test_missing_extra_state_raises_under_strict_as_torch():
    tl, th = _pair(_counted)
    state = {k: v for k, v in tl.state_dict().items() if k != "1._extra_state"}
    messages = []
    for model in (tl, th):
        with pytest.raises(RuntimeError) as err:
            model.load_state_dict(_torch(state) if model is th else state)
        messages.append(str(err.value))
        assert tuple(model.load_state_dict(_torch(state) if model is th else state, strict=False)) == (
            ["1._extra_state"], [])
        assert model[1].tag == "fresh"  # nothing to set
    assert messages[0] == messages[1]
    assert '"1._extra_state"' in messages[0]


def test_extra_state_for_a_module_without_set_extra_state_is_unexpected():
    tl, th = _pair()
    state = dict(tl.state_dict(), **{"1.0._extra_state": {"steps": 1}})
    messages = []
    for model in (tl, th):
        with pytest.raises(RuntimeError) as err:
            model.load_state_dict(_torch(state) if model is th else state)
        messages.append(str(err.value))
        assert tuple(model.load_state_dict(_torch(state) if model is th else state, strict=False)) == (
            [], ["1.0._extra_state"])
    assert messages[0] == messages[1]


def test_refused_load_leaves_the_extra_state_alone():
    tl = _counted(nn)
    state = dict(tl.state_dict(), **{"1._extra_state": {"steps": 9, "tag": "new", "scale": np.zeros(2)}})
    state["0.weight"] = np.zeros((5, 5))
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        tl.load_state_dict(state)
    assert (tl[1].steps, tl[1].tag) == (0, "fresh")


def test_post_hook_refusal_restores_the_extra_state():
    tl = _counted(nn)
    state = dict(tl.state_dict(), **{"1._extra_state": {"steps": 9, "tag": "new", "scale": np.zeros(2)}})
    tl.register_load_state_dict_post_hook(lambda module, keys: keys.unexpected_keys.append("x"))
    with pytest.raises(RuntimeError, match='Unexpected key.*"x"'):
        tl.load_state_dict(state)
    assert (tl[1].steps, tl[1].tag) == (0, "fresh")
    np.testing.assert_array_equal(tl[1].scale, [1.0, 1.0])


def test_base_get_and_set_extra_state_raise_as_torch():
    for module in (nn.Linear(2, 2), torch.nn.Linear(2, 2)):
        with pytest.raises(RuntimeError):
            module.get_extra_state()
        with pytest.raises(RuntimeError):
            module.set_extra_state({})


# ----------------------------------------------------------------------------- handles
@pytest.mark.parametrize("register", ["register_state_dict_pre_hook", "register_state_dict_post_hook",
                                      "register_load_state_dict_pre_hook", "register_load_state_dict_post_hook"])
def test_handles_remove_the_hooks(register):
    for model in _pair():
        calls = []
        state = _numpy(model.state_dict())
        handle = getattr(model[1], register)(lambda *args: calls.append(1))
        model.load_state_dict(_torch(state) if isinstance(model, torch.nn.Module) else state)
        model.state_dict()
        assert calls == [1]
        handle.remove()
        model.load_state_dict(_torch(state) if isinstance(model, torch.nn.Module) else state)
        model.state_dict()
        assert calls == [1]


def test_handle_as_context_manager_and_no_hooks_left_behind():
    tl = _model(nn)
    calls = []
    with tl.register_load_state_dict_post_hook(lambda m, keys: calls.append(1)):
        tl.load_state_dict(tl.state_dict())
    tl.load_state_dict(tl.state_dict())
    assert calls == [1]
    assert not any(m._state_dict_pre_hooks or m._state_dict_hooks or m._load_state_dict_pre_hooks
                   or m._load_state_dict_post_hooks for m in tl.modules())


def test_lazy_module_materializes_from_the_renamed_keys():
    # torchlite runs the pre-hooks before lazy layers take their shapes from the dict
    # (torch's lazy hook runs before user hooks, so there the legacy names would not count)
    lazy = nn.Sequential(nn.LazyLinear(2))
    lazy[0].register_load_state_dict_pre_hook(_legacy_hook)
    source = nn.Sequential(nn.Linear(5, 2))
    legacy = {"0.w": source[0].weight.data, "0.b": source[0].bias.data}
    assert tuple(lazy.load_state_dict(legacy)) == ([], [])
    assert lazy[0].in_features == 5
    np.testing.assert_array_equal(lazy[0].weight.data, source[0].weight.data)


def test_set_extra_state_that_raises_leaves_the_module_unchanged():
    tl = _counted(nn)
    before = {k: np.array(v) for k, v in tl.state_dict().items() if k != "1._extra_state"}
    state = {k: np.full_like(v, 3.0) for k, v in before.items()}
    state["1._extra_state"] = {"steps": "not a number", "tag": "new", "scale": np.zeros(2)}
    with pytest.raises(ValueError):
        tl.load_state_dict(state)
    assert (tl[1].steps, tl[1].tag) == (0, "fresh")
    for key, value in before.items():
        np.testing.assert_array_equal(tl.state_dict()[key], value)

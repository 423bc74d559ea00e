"""Shared helpers for parity tests against PyTorch (a test dependency; CI fails without it).

``check_parity(tl_module, torch_module, *inputs, dtype=...)`` copies torch's weights into the
torchlite module through ``state_dict``, runs both forward, feeds both the same random upstream
gradient, and compares outputs, input gradients, every parameter gradient (by state_dict name)
and every buffer. Tolerances: float64 rtol 1e-7, float32 rtol 1e-5 (atol scaled to the data).
"""
import numpy as np
import torch

import torchlite

TOL = {np.dtype(np.float64): dict(rtol=1e-7, atol=1e-9), np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5)}
TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def tol(dtype, scale=1.0):
    t = TOL[np.dtype(dtype)]
    return dict(rtol=t["rtol"], atol=t["atol"] * scale)


def rebuild(like, items):
    """A tuple or list of ``like``'s type from ``items`` (namedtuples take them positionally)."""
    return type(like)(*items) if hasattr(like, "_fields") else type(like)(items)


def to_numpy(t):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    if isinstance(t, (tuple, list)):
        return rebuild(t, [to_numpy(v) for v in t])
    return t


def to_torch(x, requires_grad=False):
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.array(x, copy=True))
        if requires_grad and t.is_floating_point():
            t.requires_grad_(True)
        return t
    if isinstance(x, (tuple, list)):
        return type(x)(to_torch(v, requires_grad) for v in x)
    if isinstance(x, dict):
        return {k: to_torch(v, requires_grad) for k, v in x.items()}
    return x


def copy_state(tl_module, torch_module):
    """Load torch_module's state_dict into tl_module (strict: keys must match exactly)."""
    state = {k: v.detach().cpu().numpy() for k, v in torch_module.state_dict().items()}
    tl_module.load_state_dict(state)


def flatten(x):
    if isinstance(x, (tuple, list)):
        return [a for v in x for a in flatten(v)]
    return [x]


def random_like(out, rng):
    if isinstance(out, (tuple, list)):
        return rebuild(out, [random_like(o, rng) for o in out])
    if out is None:  # an output left out (e.g. MultiheadAttention's weights with need_weights=False)
        return None
    arr = np.asarray(out)
    return rng.standard_normal(arr.shape).astype(arr.dtype)


def assert_close(actual, expected, dtype, what, scale=None):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, err_msg=what, **tol(dtype, scale))


def check_parity(tl_module, torch_module, *inputs, dtype=np.float64, seed=0, forward_kwargs=None,
                 torch_kwargs=None, scale=None, check_buffers=True, copy=True):
    """Forward and backward of both modules on the same inputs and upstream gradient.

    Floating inputs are differentiated; integer inputs (indices, targets) are passed as is.
    Returns the torchlite outputs.
    """
    dtype = np.dtype(dtype)
    forward_kwargs = forward_kwargs or {}
    torch_kwargs = forward_kwargs if torch_kwargs is None else torch_kwargs
    torch_module.to(TORCH_DTYPE[dtype])
    tl_module.to(dtype)
    if copy:
        copy_state(tl_module, torch_module)
    inputs = [x.astype(dtype) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in inputs]
    t_inputs = [to_torch(x, requires_grad=True) for x in inputs]

    out = tl_module(*inputs, **forward_kwargs)
    t_out = torch_module(*t_inputs, **to_torch(torch_kwargs))
    for i, (a, e) in enumerate(zip(flatten(out), flatten(to_numpy(t_out)))):
        if e is None:
            continue
        assert_close(a, e, dtype, f"output {i}", scale)

    rng = np.random.default_rng(seed)
    grads = random_like(out, rng)
    t_outs = [o for o in flatten(t_out) if isinstance(o, torch.Tensor) and o.requires_grad]
    t_grads = [torch.from_numpy(np.array(g)) for g, o in zip(flatten(grads), flatten(t_out))
               if isinstance(o, torch.Tensor) and o.requires_grad]
    torch.autograd.backward(t_outs, t_grads)
    dx = tl_module.backward(*grads) if isinstance(out, (tuple, list)) else tl_module.backward(grads)
    dx = dx if isinstance(dx, (tuple, list)) else (dx,)
    for i, (x, t) in enumerate(zip(inputs, t_inputs)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            assert i < len(dx) and dx[i] is not None, f"backward returned no gradient for input {i}"
            assert_close(dx[i], t.grad.numpy(), dtype, f"grad of input {i}", scale)
    t_params = dict(torch_module.named_parameters())
    for name, p in tl_module.named_parameters():
        tp = t_params[name]
        if tp.grad is None:
            assert p.grad is None or not np.any(p.grad), f"grad of {name}: torch has none"
            continue
        assert p.grad is not None, f"grad of {name} is None, torch's is not"
        assert p.grad.dtype == dtype, f"grad of {name} is {p.grad.dtype}, expected {dtype}"
        assert_close(p.grad, tp.grad.numpy(), dtype, f"grad of {name}", scale)
    if check_buffers:
        t_bufs = dict(torch_module.named_buffers())
        for name, b in tl_module.named_buffers():
            if name in t_bufs:
                assert_close(b, t_bufs[name].numpy(), dtype, f"buffer {name}", scale)
    return out

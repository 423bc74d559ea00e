"""torch's device and autograd flags on a CPU, NumPy optimizer.

``foreach`` and ``fused`` choose among torch's kernels for one same update (torch runs its fused
Adam, AdamW, Adagrad and SGD on the CPU too), so they are accepted and the update here is the
one loop it always is. ``capturable`` keeps the state on an accelerator for CUDA-graph capture
and ``differentiable`` lets autograd run through the step: neither exists here, so True is
refused when the optimizer is built, naming the argument (torch on the CPU fails at the first
step instead).
"""


def check_flags(optimizer, capturable=False, differentiable=False, foreach=None, fused=None):
    """Raise for the flags that cannot apply; ``optimizer`` is the one being built (for its class name)."""
    name = type(optimizer).__name__
    if capturable:
        raise ValueError(f"{name}: capturable=True keeps the optimizer state on an accelerator for CUDA graph "
                         "capture; torchlite runs on the CPU (NumPy), so capturable must be False")
    if differentiable:
        raise ValueError(f"{name}: differentiable=True lets autograd run through the optimizer step; torchlite "
                         "has no autograd, so differentiable must be False")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

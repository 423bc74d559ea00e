"""One random generator for init, dropout and shuffling: ``manual_seed`` makes runs repeat bit for bit."""
import numpy as np

_default_seed = 0x5EED


class _State:
    seed = _default_seed
    rng = np.random.Generator(np.random.PCG64(_default_seed))


def manual_seed(seed):
    """Seed the global generator; returns it (a ``numpy.random.Generator``)."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer, got {seed}")
    _State.seed = seed
    _State.rng = np.random.Generator(np.random.PCG64(seed))
    return _State.rng


def seed():
    """Seed the global generator from OS entropy; returns the seed used."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def initial_seed():
    """The seed last given to ``manual_seed`` (or chosen by ``seed``)."""
    return _State.seed


def get_generator():
    """The global ``numpy.random.Generator`` used by init, dropout and shuffling."""
    return _State.rng


def get_rng_state():
    """The global generator's state as a dict of strings (saveable with ``torchlite.save``)."""
    st = _State.rng.bit_generator.state
    return {
        "bit_generator": st["bit_generator"],
        "state": str(st["state"]["state"]),
        "inc": str(st["state"]["inc"]),
        "has_uint32": int(st["has_uint32"]),
        "uinteger": int(st["uinteger"]),
    }


def set_rng_state(state):
    """Restore a state returned by ``get_rng_state``."""
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"set_rng_state: expected a PCG64 state from get_rng_state(), got {state!r}")
    bg = np.random.PCG64()
    bg.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(state["state"]), "inc": int(state["inc"])},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }
    _State.rng = np.random.Generator(bg)

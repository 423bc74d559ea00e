"""set_num_threads / get_num_threads reach NumPy's BLAS; the determinism flags behave as torch's."""
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import torchlite


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def restore_threads():
    before = torchlite.get_num_threads()
    yield
    torchlite.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2])
def test_set_num_threads_reaches_every_loaded_blas(n, restore_threads):
    import scipy.linalg  # noqa: F401  (SciPy's own OpenBLAS is loaded too)

    torchlite.set_num_threads(n)
    assert torchlite.get_num_threads() == n
    threads = _blas_threads()
    assert threads and all(t == n for t in threads)
    a = np.random.default_rng(0).standard_normal((64, 64))
    np.testing.assert_allclose(a @ a.T, (a @ a.T).T, rtol=1e-12)  # BLAS still answers


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_refuses_what_torch_refuses(bad, restore_threads):
    with pytest.raises(RuntimeError) as torch_err:
        torch.set_num_threads(bad)
    with pytest.raises(RuntimeError) as mine:
        torchlite.set_num_threads(bad)
    if bad is not None:
        assert str(mine.value) == str(torch_err.value)
    assert torchlite.get_num_threads() >= 1


@pytest.mark.parametrize("mode,warn_only", [(True, False), (True, True), (False, False)])
def test_deterministic_flags_as_torch(mode, warn_only):
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
        torchlite.use_deterministic_algorithms(mode, warn_only=warn_only)
        assert torchlite.are_deterministic_algorithms_enabled() == torch.are_deterministic_algorithms_enabled()
        assert (torchlite.is_deterministic_algorithms_warn_only_enabled()
                == torch.is_deterministic_algorithms_warn_only_enabled())
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torchlite.use_deterministic_algorithms(False)


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_deterministic_mode_must_be_bool(bad):
    with pytest.raises(TypeError, match="must be bool"):
        torch.use_deterministic_algorithms(bad)
    with pytest.raises(TypeError, match="must be bool"):
        torchlite.use_deterministic_algorithms(bad)

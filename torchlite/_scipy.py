"""SciPy submodules imported on first use: ``import scipy.special`` alone costs ~0.4 s here,
and ``import torchlite`` should stay fast."""
import importlib


class _LazyModule:
    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


special = _LazyModule("scipy.special")
sparse = _LazyModule("scipy.sparse")

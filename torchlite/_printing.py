"""torch's ``set_printoptions`` for torchlite's tensors, which are NumPy arrays.

The options go to ``numpy.set_printoptions`` (torch took its names from NumPy), so they apply
to every array printed in the process; importing torchlite changes nothing until this is called.
"""
import math
import sys

import numpy as np

__all__ = ["set_printoptions"]

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """Set printing options, as torch: a ``profile`` ('default', 'short', 'full') first, then each option given.

    ``threshold=math.inf`` prints every element; ``sci_mode`` True always uses scientific
    notation, False never, None lets NumPy choose.
    """
    options = {}
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        options.update(_PROFILES[profile])
    given = dict(precision=precision, threshold=threshold, edgeitems=edgeitems, linewidth=linewidth)
    options.update({k: v for k, v in given.items() if v is not None})
    if options.get("threshold") == math.inf:
        options["threshold"] = sys.maxsize  # NumPy wants an int
    if sci_mode not in (None, True, False):
        raise ValueError(f"set_printoptions: sci_mode must be True, False or None, got {sci_mode!r}")
    digits = options.get("precision", np.get_printoptions()["precision"])
    if "precision" in options:
        options["floatmode"] = "fixed"  # torch prints every float with ``precision`` digits, NumPy trims zeros
    options["suppress"] = sci_mode is False
    options["formatter"] = {"float_kind": lambda v: format(v, f".{digits}e")} if sci_mode else None
    np.set_printoptions(**options)

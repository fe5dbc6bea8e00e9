# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astro_deepcr: deep-learning cosmic-ray detection and inpainting for CCD images
(deepCR, Zhang & Bloom 2020, ApJ 889, 24).

Importing the package is light (issue #30): only `conf` and ``__version__``
load with it; every other public name loads its module on first use
(module-level ``__getattr__``, Scientific Python SPEC 1), and torch,
scikit-image, matplotlib, OpenVINO, drizzlepac and dask only when a network,
a picture, a drizzle or a cluster is actually used.
"""

import importlib
import importlib.util

from .conf import conf
from .provenance import version as __version__  # noqa: F401

#: public name -> module that defines it
_LAZY = {
    "DeepCR": "deepcr",
    "cosmicray_deepcr": "ccdproc_step",
    "flag_cosmic_rays": "drizzle",
    "astrodrizzle": "drizzle",
    "medmask": "inpaint",
    "biharmonic": "inpaint",
    "ModelSpec": "zoo",
    "ModelFileError": "zoo",
    "get_model": "zoo",
    "list_models": "zoo",
    "model_info": "zoo",
    "register_model": "zoo",
}

__all__ = [
    "conf",
    "DeepCR",
    "cosmicray_deepcr",
    "flag_cosmic_rays",
    "astrodrizzle",
    "medmask",
    "biharmonic",
    "ModelSpec",
    "ModelFileError",
    "get_model",
    "list_models",
    "model_info",
    "register_model",
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # astro_deepcr.zoo & co. as before
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

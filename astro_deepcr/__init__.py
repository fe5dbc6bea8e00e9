# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
astro_deepcr: deep-learning cosmic-ray detection and inpainting for CCD images
(deepCR, Zhang & Bloom 2020, ApJ 889, 24).
"""

from .ccdproc_step import cosmicray_deepcr
from .conf import conf
from .deepcr import DeepCR
from .drizzle import astrodrizzle, flag_cosmic_rays
from .inpaint import biharmonic, medmask
from .provenance import version as __version__  # noqa: F401
from .zoo import ModelFileError, ModelSpec, get_model, list_models, model_info, register_model

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

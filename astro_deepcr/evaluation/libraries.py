# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Libraries of cosmic rays to inject: charge stamps (e-, float32), by name.

``hrc``
    Real cosmic rays harvested from the ACS/HRC exposure ``j8bt06nyq_flt.fits``
    (`astro_deepcr.training.crlibrary.harvest_cosmic_rays`, ``method="psf"``:
    what the TinyTim HRC PSF cannot explain).
``hrc-lacosmic``
    The same frame, LACosmic's selection (biased to bright cosmic rays).
"""

import functools

__all__ = ["LIBRARIES", "cosmic_ray_library"]

#: Library name -> one-line description.
LIBRARIES = {
    "hrc": "real CRs of the ACS/HRC frame j8bt06nyq_flt.fits, what the TinyTim HRC PSF cannot explain",
    "hrc-lacosmic": "real CRs of the same HRC frame, LACosmic's selection (sigclip 8) away from sources",
}


@functools.lru_cache(maxsize=8)
def _library(name):
    from ..training.crlibrary import harvest_cosmic_rays

    if name == "hrc":
        return tuple(harvest_cosmic_rays(method="psf"))
    if name == "hrc-lacosmic":
        return tuple(harvest_cosmic_rays(method="lacosmic"))
    raise AssertionError(name)


def cosmic_ray_library(name="hrc", *, method=None):
    """The cosmic-ray charge stamps (e-, float32) of library ``name`` (`LIBRARIES`); cached.

    ``method`` (``"psf"`` or ``"lacosmic"``) is the former spelling of
    ``"hrc"`` and ``"hrc-lacosmic"``.
    """
    if method is not None:
        if method not in ("psf", "lacosmic"):
            raise ValueError(f"method must be 'psf' or 'lacosmic', not {method!r}")
        name = "hrc" if method == "psf" else "hrc-lacosmic"
    if name not in LIBRARIES:
        raise ValueError(f"unknown cosmic-ray library {name!r}; known: {', '.join(LIBRARIES)}")
    return list(_library(name))

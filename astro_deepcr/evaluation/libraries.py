# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Libraries of cosmic rays to inject: charge stamps (e-, float32), by name.

``hrc``
    Real cosmic rays harvested from the ACS/HRC exposure ``j8bt06nyq_flt.fits``
    (`astro_deepcr.training.crlibrary.harvest_cosmic_rays`, ``method="psf"``:
    what the TinyTim HRC PSF cannot explain).
``hrc-lacosmic``
    The same frame, LACosmic's selection (biased to bright cosmic rays).
``thin-ccd``, ``thick-ccd``
    Tracks simulated from the physics of a minimum-ionising particle
    (`astro_deepcr.training.crtracks.simulate_tracks`): 15 um of silicon
    and 15 um pixels (a thin CCD), 250 um and 15 um pixels (a deep-depletion
    CCD: long oblique tracks that widen with depth); 1000 each, seed 0.
Harvested from another frame
    `register_frame_library` names a loader of a frame (a dict with
    ``electrons``, ``readnoise`` and optional ``dq``, ``satlevel``); its
    library is `astro_deepcr.training.crlibrary.harvest_frame` on it, judged
    against the frame's own PSF measured from its stars.
    ``benchmarks/injection_frames.py`` registers ``saao``, ``gmos`` and
    ``wfpc2``.

`library_stats` summarises a library (count, charge, sizes).
"""

import functools

import numpy as np

__all__ = ["LIBRARIES", "cosmic_ray_library", "register_frame_library", "library_stats", "SIMULATED_CCDS"]

#: Library name -> one-line description.
LIBRARIES = {
    "hrc": "real CRs of the ACS/HRC frame j8bt06nyq_flt.fits, what the TinyTim HRC PSF cannot explain",
    "hrc-lacosmic": "real CRs of the same HRC frame, LACosmic's selection (sigclip 8) away from sources",
    "thin-ccd": "simulated MIP tracks, 15 um silicon, 15 um pixels (1000, seed 0)",
    "thick-ccd": "simulated MIP tracks, 250 um deep-depletion silicon, 15 um pixels (1000, seed 0)",
}
#: Simulated libraries: name -> keywords of `astro_deepcr.training.crtracks.simulate_tracks`.
SIMULATED_CCDS = {"thin-ccd": {"thickness_um": 15.0, "pixel_um": 15.0},
                  "thick-ccd": {"thickness_um": 250.0, "pixel_um": 15.0}}
_SIMULATED_N, _SIMULATED_SEED = 1000, 0
_FRAME_LOADERS = {}


def register_frame_library(name, load_frame, description=None):
    """Make ``cosmic_ray_library(name)`` the cosmic rays harvested from the frame ``load_frame()`` returns.

    ``load_frame``: a function returning a dict with ``electrons`` (2-D, e-),
    ``readnoise`` (e-) and optionally ``dq`` (non-zero: not used) and ``satlevel`` (e-).
    """
    if name in LIBRARIES and name not in _FRAME_LOADERS:
        raise ValueError(f"library {name!r} is built in; choose another name")
    _FRAME_LOADERS[name] = load_frame
    LIBRARIES[name] = description or f"real CRs harvested from the frame {name!r} against its own PSF"
    _library.cache_clear()


def _harvest(frame):
    from ..training.crlibrary import harvest_frame

    dq = frame.get("dq")
    return harvest_frame(frame["electrons"], frame["readnoise"], bad=None if dq is None else np.asarray(dq) != 0,
                         satlevel=frame.get("satlevel"))


@functools.lru_cache(maxsize=16)
def _library(name):
    if name in SIMULATED_CCDS:
        from ..training.crtracks import simulate_tracks

        return tuple(simulate_tracks(_SIMULATED_N, rng=_SIMULATED_SEED, **SIMULATED_CCDS[name]))
    if name in _FRAME_LOADERS:
        return tuple(_harvest(_FRAME_LOADERS[name]()))
    from ..training.crlibrary import harvest_cosmic_rays

    return tuple(harvest_cosmic_rays(method="psf" if name == "hrc" else "lacosmic"))


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
    stamps = list(_library(name))
    if not stamps:
        raise ValueError(f"library {name!r} is empty: no cosmic ray was harvested")
    return stamps


def library_stats(stamps):
    """Count, charge (median, fractions below 500 and 1000 e-), pixels and longest side of a library."""
    charge = np.array([float(np.sum(stamp)) for stamp in stamps])
    pixels = np.array([int(np.count_nonzero(stamp)) for stamp in stamps])
    longest = np.array([max(np.shape(stamp)) for stamp in stamps])
    if charge.size == 0:
        return {"count": 0}
    return {"count": int(charge.size), "charge_median": float(np.median(charge)),
            "below_500": float(np.mean(charge < 500)), "below_1000": float(np.mean(charge < 1000)),
            "pixels_median": float(np.median(pixels)), "single_pixel": float(np.mean(pixels == 1)),
            "longest_median": float(np.median(longest)), "longest_max": int(longest.max())}

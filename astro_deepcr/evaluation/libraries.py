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
    ``wfpc2`` is built in (`astro_deepcr.datasets.load_wfpc2_example`);
    ``benchmarks/injection_frames.py`` registers ``saao`` and ``gmos``.

`library_stats` summarises a library (count, charge, sizes). `psf_placebos`
turns a library into its control: faint point sources of a frame's own PSF
with the same charges (what a detector flags of them is flagged because
charge was added, not because it was a cosmic ray).
"""

import functools

import numpy as np

__all__ = ["LIBRARIES", "cosmic_ray_library", "register_frame_library", "library_stats", "psf_placebos",
           "star_profiles", "SIMULATED_CCDS", "PLACEBO_FLOOR", "PROFILE_MIN_PEAK"]

#: Library name -> one-line description.
LIBRARIES = {
    "hrc": "real CRs of the ACS/HRC frame j8bt06nyq_flt.fits, what the TinyTim HRC PSF cannot explain",
    "hrc-lacosmic": "real CRs of the same HRC frame, LACosmic's selection (sigclip 8) away from sources",
    "thin-ccd": "simulated MIP tracks, 15 um silicon, 15 um pixels (1000, seed 0)",
    "thick-ccd": "simulated MIP tracks, 250 um deep-depletion silicon, 15 um pixels (1000, seed 0)",
    "wfpc2": "real CRs harvested from the WFPC2 WF2 frame u40x010hm (stsci.tools' test data) against its own PSF",
}
#: Simulated libraries: name -> keywords of `astro_deepcr.training.crtracks.simulate_tracks`.
SIMULATED_CCDS = {"thin-ccd": {"thickness_um": 15.0, "pixel_um": 15.0},
                  "thick-ccd": {"thickness_um": 250.0, "pixel_um": 15.0}}
_SIMULATED_N, _SIMULATED_SEED = 1000, 0
#: A placebo's truth: the pixels it raised by at least this fraction of its peak (session 44, fixed before any run;
#: the whole source is injected: ``inject_cosmic_rays(footprint_floor=PLACEBO_FLOOR)``).
PLACEBO_FLOOR = 0.05


def _wfpc2():
    from ..datasets import load_wfpc2_example

    return load_wfpc2_example()


_FRAME_LOADERS = {"wfpc2": _wfpc2}


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


#: A star lends its shape to placebos (`star_profiles`) when its peak holds this many e- above the sky: its own
#: photon noise is then at most 1 % of the peak (session 44: a limit of 100 sky sigma, about 500 e- on the HRC
#: frame, left noise that scaled down became shape no star has).
PROFILE_MIN_PEAK = 1e4


def _placebo_half(fwhm):
    """Half-side (px) of a placebo's box: 3 FWHM, so that the star-shape test's stamp (1.5 FWHM) lies inside."""
    return int(np.ceil(3.0 * fwhm))


def star_profiles(image, readnoise, fwhm, *, unusable=None, min_peak=PROFILE_MIN_PEAK):
    """The shapes of a frame's bright isolated stars, to make placebos of its real PSF (`psf_placebos`).

    The isolated stars the star-shape test finds (`astro_deepcr.starshape.find_stars`, the sky and its
    noise of `astro_deepcr.starshape.sky_and_noise`) whose peak lies ``min_peak`` e- above the sky, each cut
    to a box of ``2 ceil(3 fwhm) + 1`` px, less the sky, its negative (noise) pixels set to 0, scaled to unit
    sum: the PSF at the stars' own sub-pixel phases, with photon noise at most 1 % of the peak
    (`PROFILE_MIN_PEAK`).

    Parameters
    ----------
    image : array-like, 2-D
        The frame in electrons.
    readnoise : float
        e-.
    fwhm : float
        The frame's PSF width (px), for the box.
    unusable : array-like of bool, optional
        Pixels no star may touch (bad, near saturation: `astro_deepcr.starshape.unusable_pixels`).
    min_peak : float
        e- above the sky.

    Returns
    -------
    list of ndarray
        Unit-sum profiles, one per star (none where the frame has no such star).
    """
    from ..starshape import _Frame, stamp_pixels

    unusable = np.zeros(np.shape(image), bool) if unusable is None else np.asarray(unusable, bool)
    frame = _Frame(image, readnoise, unusable)  # the frame as the star-shape test sees it, non-finite pixels filled
    half = _placebo_half(fwhm)
    rows, cols = frame.stars(half)
    bright = frame.excess[rows, cols] >= min_peak
    stamps = np.clip(frame.excess[stamp_pixels(rows[bright], cols[bright], half)], 0, None)
    return [stamp.reshape(2 * half + 1, 2 * half + 1) / stamp.sum() for stamp in stamps]


def psf_placebos(stamps, fwhm, beta, *, seed=0, profiles=None):
    """A control for a cosmic-ray library: a faint point source in place of each of its cosmic rays.

    Each placebo is a pixel-integrated Moffat profile (`astro_deepcr.starpsf.moffat_pixels`) of the frame's
    PSF, at a sub-pixel phase drawn uniformly in [-0.5, 0.5) px on both axes, in a box of ``2 ceil(3 fwhm) + 1``
    px, scaled to the total charge of the cosmic ray it stands for. Injected like a library, with
    ``footprint_floor`` = `PLACEBO_FLOOR` (`~astro_deepcr.evaluation.recovery.inject_cosmic_rays`: the whole
    source is added, its core is its truth), what a detector newly flags of them it flags because charge was
    added to the frame, not because the charge came as a cosmic ray: on a star, where LACosmic at its defaults
    flags the core, that separates finding cosmic rays from flagging whatever changes the star.

    Parameters
    ----------
    stamps : list of array-like
        The library's cosmic-ray stamps (e-); only their total charges are used.
    fwhm, beta : float
        The frame's PSF (`astro_deepcr.starpsf.measure_psf`).
    seed : int
        Seed of the phases (or of the draw from ``profiles``).
    profiles : list of ndarray, optional
        Unit-sum shapes to draw each placebo from at random instead of the Moffat profile (`star_profiles`:
        the frame's own stars); ``fwhm`` and ``beta`` are then not used.

    Returns
    -------
    list of ndarray, float32
        One stamp per cosmic ray, in the library's order, with its charge (to float32 rounding).
    """
    from ..starpsf import moffat_pixels

    rng = np.random.default_rng(seed)
    if profiles is not None:
        profiles = [np.asarray(profile, dtype=np.float64) for profile in profiles]
        if not profiles or any(not np.isclose(profile.sum(), 1.0) or profile.min() < 0 for profile in profiles):
            raise ValueError("profiles must be a non-empty list of non-negative stamps that sum to 1")
        return [(profiles[int(rng.integers(len(profiles)))] * _charge(stamp)).astype(np.float32) for stamp in stamps]
    if not (np.isfinite(fwhm) and fwhm > 0 and np.isfinite(beta) and beta > 1):
        raise ValueError(f"the PSF needs fwhm > 0 and beta > 1, not fwhm={fwhm}, beta={beta}")
    half = _placebo_half(fwhm)
    size = 2 * half + 1
    placebos = []
    for stamp in stamps:
        charge = _charge(stamp)
        phase = rng.uniform(-0.5, 0.5, size=2)
        profile = moffat_pixels((size, size), (half + phase[0], half + phase[1]), fwhm, beta)
        placebos.append((profile * (charge / profile.sum())).astype(np.float32))
    return placebos


def _charge(stamp):
    charge = float(np.sum(stamp))
    if not charge > 0:
        raise ValueError(f"a cosmic-ray stamp holds no positive charge ({charge})")
    return charge

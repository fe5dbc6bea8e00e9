#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How well a frame's own stars predict one of their pixels from the others: the limit on cosmic rays on stars.

A detector can only tell a cosmic ray on a star from the star where the star's pixel is predictable from its
neighbours better than the cosmic ray changes it. This measures that on the real frames of
``injection_frames.py``, from each frame's isolated, unsaturated stars (peaks of the 3 x 3 median of the
sky-subtracted frame above ``--min-snr`` times the sky noise, the brightest pixel of its 3 x 3 neighbourhood
the star's centre, no other such peak and no bad or saturated
pixel in the stamp of 2 * ceil(1.5 FWHM) + 1 px): every pixel of a star's stamp is predicted from the stamp's
other pixels (leave one out) in two ways,

``moffat``
    the pixel-integrated Moffat profile of the frame's own PSF
    (`astro_deepcr.starpsf.measure_psf`) at the best of 8 x 8 sub-pixel phases, its flux and a
    constant fitted by least squares;
``linear``
    a linear map from the other pixels, learnt by least squares on half of the stars (each star weighted
    alike) and applied to the other half (seed 0): an empirical PSF with every sub-pixel phase the frame's
    stars sample, and no profile assumed. A frame whose half holds fewer than `STARS_PER_INPUT` stars per
    input pixel is skipped.

Printed per frame and predictor, over the held-out stars' pixels whose predicted star signal exceeds 20
times the sky noise (where the sky's noise is at most 5 % of it): percentiles of (observed - predicted) /
predicted, for the peak pixel and for the others. Their 99th percentile is the share of a star pixel's
signal that a clean star reaches at one pixel in a hundred: a cosmic ray adding less than that to a bright
star's pixel looks like a star to any test of the star's shape.

``--libraries``: the cosmic rays ``injection_frames.py`` injects on each frame (the same trials: seed 22,
500 per megapixel, about 1000), those landing on a bright source
(`astro_deepcr.evaluation.recovery.environment`), and how many of them raise some pixel above what the star
there allows: more than the linear map's 95th, 99th, 99.9th or 99.96th percentile of the "others" pixels times
the star's signal at that pixel (the frame less its sky background), plus 5 sigma of the noise. A cosmic ray
that does not is not separable from the star by its shape; a detector that finds it flags the star's pixels as
well.
``--found``: which of them the frame's default model and LACosmic at its defaults find (by a new flag, as
``injection_frames.py`` counts), among those separable at the strictest bound and among the others, and what
each would find with every separable one added (what a perfect rescue stage after it, testing the shape, could
reach at that false rate); then the bound split as the issue's bright-pixel bound counts flags: the strictest
on the brightest 0.5 % of the frame (``injection_frames.bright_set``), each of the others elsewhere
(`above_bounds`), with the false flags such a test would make there (`strong_star_pixels`). ::

    python benchmarks/star_predictability.py [--frames hrc wfpc2-pc1 wfpc2 wfpc2-wf3 wfpc2-wf4] [--min-snr 5]
        [--libraries wfpc2 kpno [--found]]
"""

import argparse
import pathlib
import sys
import time

import numpy as np

from astro_deepcr.starshape import STRONG_SIGMA, fractions  # the star-shape test's: one definition of both

sys.path.insert(0, str(pathlib.Path(__file__).parent))

PHASES = 8
PERCENTILES = (1, 5, 50, 95, 99)
#: Percentiles of the "others" fractions: the bounds --libraries tests (false flags on 5, 1, 0.1 and 0.04 % of the
#: star pixels; 0.04 % is the rate of the issue's bright-pixel bound on the HRC frame, 2 of its 5098 brightest
#: pixels, estimated from the few dozen pixels of the tail).
SEPARABLE_PERCENTILES = (95, 99, 99.9, 99.96)
#: The linear map is learnt only where its half of the stars holds this many per input pixel (else it overfits).
STARS_PER_INPUT = 4


def _bad_and_saturated(frame):
    """Bad (DQ, non-finite) and saturated pixels, as the injection tables take them."""
    from astro_deepcr.evaluation.frames import _frame_setup

    bad, saturated, _ = _frame_setup(frame)
    return bad, saturated


def _sky(image, unusable):
    """The sky background (`astro_deepcr.starshape.sky_and_noise`), unusable pixels at the median."""
    from astro_deepcr.starshape import sky_and_noise

    return sky_and_noise(image, unusable, 0.0)[0]


def isolated_stars(image, readnoise, unusable, half, min_snr):
    """Stamps (N, (2 half + 1)**2) of isolated stars, sky-subtracted, and the sky noise at each: the stars of
    `astro_deepcr.starshape.find_stars` (the star-shape test's)."""
    from astro_deepcr.starshape import find_stars, sky_and_noise, stamp_pixels

    sky, noise = sky_and_noise(image, unusable, readnoise)
    excess = np.asarray(image, np.float64) - sky
    rows, cols = find_stars(excess, noise, unusable, half, min_snr)
    return excess[stamp_pixels(rows, cols, half)], noise[rows, cols]


def moffat_predictions(stamps, psf, half):
    """Leave-one-out predictions of the Moffat template at its best sub-pixel phase (flux and constant fitted)."""
    from astro_deepcr.starpsf import moffat_pixels

    size = 2 * half + 1
    offsets = (np.arange(PHASES) + 0.5) / PHASES - 0.5
    templates = np.array([moffat_pixels((size, size), (half + dy, half + dx), psf.fwhm, psf.beta).ravel()
                          for dy in offsets for dx in offsets])
    n_stars, n_pixels = stamps.shape
    predicted = np.empty(stamps.shape)
    for j in range(n_pixels):
        keep = np.arange(n_pixels) != j
        design = np.stack([templates[:, keep], np.ones((len(templates), n_pixels - 1))], axis=2)
        coefficients = np.einsum("pkm,nm->npk", np.linalg.pinv(design), stamps[:, keep])
        chi2 = ((stamps[:, None, keep] - np.einsum("pmk,npk->npm", design, coefficients)) ** 2).sum(-1)
        best = chi2.argmin(axis=1)
        chosen = coefficients[np.arange(n_stars), best]
        predicted[:, j] = chosen[:, 0] * templates[best, j] + chosen[:, 1]
    return predicted


def linear_predictions(learn, test):
    """Leave-one-out predictions of a linear map from the other pixels, learnt on ``learn``
    (`astro_deepcr.starshape.fit_weights`, the star-shape test's map)."""
    from astro_deepcr.starshape import fit_weights

    return test @ fit_weights(learn).T


def predictability(frame, min_snr=5.0, seed=0):
    """The frame's PSF, its isolated stars, and the leave-one-out fractions of both predictors.

    Returns a dict: ``psf``, ``n_stars``, ``stamp`` (px), and (when half the stars number at least
    `STARS_PER_INPUT` per input pixel of the linear map) ``moffat`` and
    ``linear``, each (peak, others) arrays of fractions over the held-out half of the stars, and ``bounds``:
    the linear "others" fractions at `SEPARABLE_PERCENTILES`.
    """
    from astro_deepcr.starpsf import measure_psf

    image = np.asarray(frame["electrons"], np.float64)
    unusable = np.logical_or(*_bad_and_saturated(frame))
    psf = measure_psf(image, frame["readnoise"], bad=unusable)
    half = max(2, int(np.ceil(1.5 * psf.fwhm)))
    stamps, noise = isolated_stars(image, frame["readnoise"], unusable, half, min_snr)
    result = {"psf": psf, "n_stars": len(stamps), "stamp": 2 * half + 1}
    if len(stamps) // 2 >= STARS_PER_INPUT * (stamps.shape[1] - 1):
        order = np.random.default_rng(seed).permutation(len(stamps))
        learn, test = order[::2], order[1::2]
        result["moffat"] = fractions(stamps[test], moffat_predictions(stamps[test], psf, half), noise[test])
        result["linear"] = fractions(stamps[test], linear_predictions(stamps[learn], stamps[test]), noise[test])
        result["bounds"] = tuple(float(b) for b in np.percentile(result["linear"][1], SEPARABLE_PERCENTILES))
    return result


def separable(frame, library, bounds, detectors=None, seed=22, density=500.0, bright=None):
    """The cosmic rays ``injection_frames.py`` injects (same trials) that land on a bright source.

    Returns ``(passes, found, split)``: ``passes`` (n, len(bounds)) bool, whether each raises a pixel above the
    bound times the star's signal there plus 5 sigma; ``found`` a dict, for each of ``detectors`` (name ->
    ``image -> mask``), whether it finds each by a new flag (as
    `astro_deepcr.evaluation.recovery.found_per_cosmic_ray`); ``split`` (None without ``bright``, the frame's
    brightest pixels): the same as ``passes`` with the last (strictest) bound on the ``bright`` pixels, where the
    issue's bright-pixel bound counts flags, and each bound elsewhere.
    """
    from injection_frames import trials_for

    from astro_deepcr.evaluation.libraries import cosmic_ray_library
    from astro_deepcr.evaluation.recovery import environment, found_per_cosmic_ray, inject_cosmic_rays

    detectors = detectors or {}
    image = np.asarray(frame["electrons"])
    bad, saturated = _bad_and_saturated(frame)
    unusable = bad | saturated
    env = environment(image, saturated, bad)  # as injection_recovery: its "bright source" class
    star = np.clip(image - _sky(image, unusable), 0, None)
    sigma = np.sqrt(np.clip(image, 0, None) + frame["readnoise"] ** 2)
    stamps = cosmic_ray_library(library)
    originals = {name: np.asarray(detect(image), bool) for name, detect in detectors.items()}
    passes, split, found = [], [], {name: [] for name in detectors}
    for child in np.random.SeedSequence(seed).spawn(trials_for(frame, density)):
        injected, truth, table = inject_cosmic_rays(image, stamps, density=density, seed=np.random.default_rng(child),
                                                    avoid=unusable)
        charge = injected - image
        used = table[np.asarray(table["n_pixels"]) > 0]
        on_source = used[env[np.asarray(used["y"]), np.asarray(used["x"])] == 1]
        for row in on_source:
            pixels = truth == row["label"]
            excess = charge[pixels] - 5 * sigma[pixels]
            passes.append(above_bounds(excess, star[pixels], bounds))
            if bright is not None:
                split.append(above_bounds(excess, star[pixels], bounds, strict=bright[pixels]))
        for name, detect in detectors.items():
            found[name].append(found_per_cosmic_ray(detect(injected), originals[name], truth, on_source)[1])
    return (np.array(passes, bool).reshape(-1, len(bounds)),
            {name: np.concatenate(parts) for name, parts in found.items()},
            None if bright is None else np.array(split, bool).reshape(-1, len(bounds)))


def above_bounds(excess, star, bounds, strict=None):
    """For each bound: whether some pixel's ``excess`` (cosmic-ray charge less 5 sigma) exceeds the bound times
    the ``star``'s signal there; on the ``strict`` pixels (the brightest, where the bright-pixel bound counts
    flags) the last, strictest bound applies whatever the bound tested."""
    strict = np.zeros(np.shape(excess), bool) if strict is None else np.asarray(strict, bool)
    return [bool(np.any(excess > np.where(strict, bounds[-1], bound) * star)) for bound in bounds]


def frame_detectors(frame):
    """The default deepCR detector and LACosmic at its defaults, as ``injection_frames.py`` runs them."""
    import warnings

    from astro_deepcr.detection import choose_model
    from astro_deepcr.evaluation.detectors import deepcr_detector, lacosmic_detector
    from astro_deepcr.evaluation.frames import _frame_setup

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no card for the camera: the choice is the point
        spec, _ = choose_model(frame.get("header"))
    _, _, lacosmic = _frame_setup(frame)
    return {spec.name: deepcr_detector(spec, dq=frame.get("dq"), satlevel=frame.get("satlevel")),
            "LACosmic defaults": lacosmic_detector(**lacosmic)}


def frame_lines(frame, min_snr, libraries=(), found=False):
    result = predictability(frame, min_snr)
    psf = result["psf"]
    head = (f"{frame['name']}: PSF FWHM {psf.fwhm:.2f} px, beta {psf.beta:.2f} ({psf.n_stars} stars); "
            f"{result['n_stars']} isolated stars, stamps {result['stamp']} px")
    if "linear" not in result:
        return [head + f": fewer than {STARS_PER_INPUT} per input pixel of the linear map in half of them, skipped"]
    lines = [head, f"  {'method':7s} {'pixel':6s} {'n':>9s}  " + " ".join(f"{p:>6d}%" for p in PERCENTILES)]
    for method in ("moffat", "linear"):
        for label, values in zip(("peak", "others"), result[method]):
            cells = " ".join(f"{v:+.3f}" for v in np.percentile(values, PERCENTILES))
            lines.append(f"  {method:7s} {label:6s} {values.size:6d} px  {cells}")
    detectors = frame_detectors(frame) if found and libraries else None
    bright = None
    if detectors:
        from injection_frames import bright_set

        bright = bright_set(frame)
        outside, inside = strong_star_pixels(frame, bright)
    for library in libraries:
        passes, hits, split = separable(frame, library, result["bounds"], detectors, bright=bright)
        n = max(len(passes), 1)
        cells = ", ".join(f"{k} ({k / n:.3f}) above {bound:.2f} x star + 5 sigma"
                          for k, bound in zip(passes.sum(axis=0), result["bounds"]))
        lines.append(f"  library {library}: {len(passes)} cosmic rays on bright sources; {cells}")
        strict = passes[:, -1]
        for name, hit in hits.items():
            lines.append(f"    {name}: finds {int(hit[strict].sum())} of the {int(strict.sum())} separable at the "
                         f"last bound, {int(hit[~strict].sum())} of the {int((~strict).sum())} others; "
                         f"with every separable one added {int(strict.sum() + hit[~strict].sum())} (alone "
                         f"{int(hit.sum())})")
        if split is None:
            continue
        lines.append(f"    the bound split: the last on the {int(bright.sum())} brightest pixels (the bright-pixel "
                     f"bound's), the others elsewhere ({outside} star pixels above {STRONG_SIGMA:g} sigma outside "
                     f"them, {inside} inside)")
        for column, percentile in enumerate(SEPARABLE_PERCENTILES[:-1]):
            rate = 1 - percentile / 100
            sep = split[:, column]
            added = ", ".join(f"{name} {int(sep.sum() + hit[~sep].sum())}" for name, hit in hits.items())
            lines.append(f"    at {100 * rate:g} % outside: {int(sep.sum())} separable; with every one added: "
                         f"{added}; false flags of a rescue at these rates about "
                         f"{rate * outside + (1 - SEPARABLE_PERCENTILES[-1] / 100) * inside:.0f}")
    return lines


def strong_star_pixels(frame, bright):
    """Pixels whose star signal (the frame less its sky) exceeds `STRONG_SIGMA` times the sky's noise, where the
    predictors' rates were measured: (outside ``bright``, inside it)."""
    image = np.asarray(frame["electrons"], np.float64)
    unusable = np.logical_or(*_bad_and_saturated(frame))
    sky = _sky(image, unusable)
    strong = (image - sky > STRONG_SIGMA * np.sqrt(np.clip(sky, 0, None) + frame["readnoise"] ** 2)) & ~unusable
    return int((strong & ~bright).sum()), int((strong & bright).sum())


def main(argv=None):
    from injection_frames import LOADERS, installed_frames

    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--frames", nargs="+", default=["hrc", "wfpc2-pc1", "wfpc2", "wfpc2-wf3", "wfpc2-wf4"],
                        choices=list(LOADERS))
    parser.add_argument("--min-snr", type=float, default=5.0, help="a star's 3 x 3 median peak over the sky noise")
    parser.add_argument("--libraries", nargs="*", default=[],
                        help="also how many of these libraries' on-source cosmic rays are separable (see above)")
    parser.add_argument("--found", action="store_true",
                        help="with --libraries: also which of them the default model and LACosmic at its defaults "
                             "find, split by separable at the last (0.04 %%) bound")
    args = parser.parse_args(argv)
    if args.libraries:
        from injection_frames import available_libraries, register_libraries

        register_libraries()
        args.libraries = available_libraries(args.libraries)
    start = time.perf_counter()
    print("(observed - predicted) / predicted on held-out stars' pixels above "
          f"{STRONG_SIGMA:g} sigma, percentiles:\n")
    for name, frame in installed_frames(args.frames):
        frame.setdefault("name", name)
        print("\n".join(frame_lines(frame, args.min_snr, libraries=args.libraries, found=args.found)))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

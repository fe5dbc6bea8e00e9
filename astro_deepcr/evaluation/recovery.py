# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Inject real cosmic rays of known footprint into a frame and count what a detector recovers.

`inject_cosmic_rays` adds cosmic-ray charge stamps (a library of
`astro_deepcr.evaluation.libraries`) to a copy of a frame (its stars, noise,
saturation and DQ stay); `score_mask` counts one detector's result against the
exact truth; `injection_recovery` runs every detector before and after and
sums the counts over trials, keeping for each injected cosmic ray whether
each detector found it *by a new flag* (one the uninjected frame lacks), the
paired record `astro_deepcr.evaluation.significance` tests.
"""

import numpy as np
from astropy.table import Table
from scipy import ndimage

__all__ = ["DENSITY", "CHARGE_BINS", "LOW_CHARGE_BIN", "ENVIRONMENTS", "inject_cosmic_rays", "environment",
           "found_per_cosmic_ray", "score_mask", "injection_recovery", "bin_name"]

#: Default number of injected cosmic rays per megapixel (the HRC example frame has about 330 real ones in 60 s).
DENSITY = 500.0
#: Edges (e-) of the injected charge bins of the recall table.
CHARGE_BINS = (0.0, 500.0, 1000.0, 2000.0, 5000.0, np.inf)
#: The faint cosmic rays as one bin (the recall table's "< 1000 e-" column).
LOW_CHARGE_BIN = (0.0, 1000.0)
#: Environments of an injected pixel / cosmic ray (its brightest pixel decides for an object).
ENVIRONMENTS = ("near saturated", "bright source", "elsewhere")
#: Distance (px, chessboard) from a saturated pixel of the "near saturated" environment.
NEAR_SATURATED = 3
#: A pixel is on a "bright source" where its 5x5 median is this many pixel-noise sigma above the frame's median.
BRIGHT_SIGMA = 10.0
#: Injected cosmic rays keep this many pixels (chessboard) from each other.
SEPARATION = 2
_EIGHT = np.ones((3, 3), bool)


def _placement(shape, stamp_shape, occupied, rng, tries=50):
    for _ in range(tries):
        y0 = int(rng.integers(0, shape[0] - stamp_shape[0] + 1))
        x0 = int(rng.integers(0, shape[1] - stamp_shape[1] + 1))
        box = (slice(max(y0 - SEPARATION, 0), y0 + stamp_shape[0] + SEPARATION),
               slice(max(x0 - SEPARATION, 0), x0 + stamp_shape[1] + SEPARATION))
        if not occupied[box].any():
            return y0, x0
    return None


def inject_cosmic_rays(image, library=None, n_cr=None, *, density=DENSITY, seed=None, avoid=None, gain=1.0,
                       footprint_floor=None):
    """Add real cosmic rays of known footprint to a copy of ``image``.

    Parameters
    ----------
    image : array-like, 2-D
        The frame (not modified).
    library : list of ndarray, optional
        Cosmic-ray charge stamps in electrons (default: the ``"hrc"``
        library of `~astro_deepcr.evaluation.libraries.cosmic_ray_library`).
    n_cr : int, optional
        Number of cosmic rays; default ``density`` per megapixel (at least 1).
    density : float
        Cosmic rays per megapixel when ``n_cr`` is not given.
    seed : int or `numpy.random.Generator`, optional
        The same seed gives the same injection.
    avoid : array-like of bool, optional
        Pixels left unchanged (bad, saturated); non-finite pixels are always left unchanged.
    gain : float
        Electrons per image unit (1 for a frame in electrons).
    footprint_floor : float, optional
        A fraction in (0, 1): a stamp's truth is only the pixels it raised by
        at least this fraction of its own largest pixel (a point source,
        `~astro_deepcr.evaluation.libraries.psf_placebos`, is injected with
        its wings and scored on its core). Default: every pixel it raised.

    Returns
    -------
    injected : ndarray
        The frame with the cosmic rays (``image``'s float type, float32 for an integer image).
    truth : ndarray of int32
        0 where nothing was injected, ``k`` on the pixels of the ``k``-th
        cosmic ray (row ``k - 1`` of ``table``). Exactly the pixels where
        ``injected > image`` (the image in ``injected``'s type), less those
        below ``footprint_floor``.
    table : `~astropy.table.Table`
        One row per cosmic ray: ``label``, ``y``, ``x`` (its brightest
        pixel), ``stamp`` (library index), ``charge`` (e-, what the frame
        gained, wings below ``footprint_floor`` included), ``peak`` (e-),
        ``n_pixels`` (of its truth). A cosmic ray wholly on ``avoid`` pixels
        has ``n_pixels`` 0 and no label in ``truth``; the frame may hold fewer
        than ``n_cr`` when it is too crowded to keep them apart.
    """
    if np.ndim(image) != 2:
        raise ValueError(f"image must be 2-D, not {np.ndim(image)}-D")
    image = np.asarray(image)
    if not gain > 0:
        raise ValueError(f"gain must be > 0, not {gain}")
    if library is None:
        from .libraries import cosmic_ray_library

        library = cosmic_ray_library()
    library = list(library)
    if not library:
        raise ValueError("the cosmic-ray library is empty")
    if footprint_floor is not None and not 0 < footprint_floor < 1:
        raise ValueError(f"footprint_floor must lie in (0, 1), not {footprint_floor}")
    n_cr = max(1, int(round(density * image.size / 1e6))) if n_cr is None else n_cr
    if n_cr < 0:
        raise ValueError(f"n_cr must be >= 0, not {n_cr}")
    frozen = ~np.isfinite(image)
    if avoid is not None:
        avoid = np.asarray(avoid, dtype=bool)
        if avoid.shape != image.shape:
            raise ValueError(f"avoid shape {avoid.shape} does not match image shape {image.shape}")
        frozen |= avoid
    rng = np.random.default_rng(seed)
    dtype = image.dtype if image.dtype.kind == "f" else np.dtype(np.float32)
    charge = np.zeros(image.shape)
    labels = np.zeros(image.shape, np.int32)
    occupied = np.zeros(image.shape, bool)
    rows = []  # (library index, box, stamp as added)
    for _ in range(n_cr):
        index = int(rng.integers(len(library)))
        stamp = np.rot90(np.asarray(library[index], dtype=np.float64), int(rng.integers(4)))
        if rng.random() < 0.5:
            stamp = stamp[:, ::-1]
        fits_in = stamp.shape[0] <= image.shape[0] and stamp.shape[1] <= image.shape[1]
        where = _placement(image.shape, stamp.shape, occupied, rng) if fits_in else None
        if where is None:
            continue
        box = (slice(where[0], where[0] + stamp.shape[0]), slice(where[1], where[1] + stamp.shape[1]))
        stamp = np.where(frozen[box], 0.0, stamp)
        charge[box] += stamp
        occupied[box] |= stamp > 0
        rows.append((index, box, stamp))
    original = image.astype(dtype)
    injected = (original + charge / gain).astype(dtype)
    raised = injected > original  # a charge too small to change a float32 value is no injection
    table_rows = []
    for label, (index, box, stamp) in enumerate(rows, start=1):
        gained = raised[box] & (stamp > 0)
        member = gained if footprint_floor is None else gained & (stamp >= footprint_floor * stamp.max())
        labels[box][member] = label
        added = np.where(gained, (injected[box].astype(np.float64) - original[box]) * gain, 0.0)
        peak = np.unravel_index(np.argmax(np.where(member, added, -1.0)), stamp.shape)
        table_rows.append((label, box[0].start + peak[0], box[1].start + peak[1], index, float(added.sum()),
                           float(added[peak]) if member.any() else 0.0, int(member.sum())))
    table = Table(rows=table_rows or None, names=("label", "y", "x", "stamp", "charge", "peak", "n_pixels"),
                  dtype=(np.int32, np.int64, np.int64, np.int64, float, float, np.int64))
    return injected, labels, table


def environment(image, saturated=None, bad=None):
    """Environment of every pixel: 0 near saturated, 1 bright source, 2 elsewhere (`ENVIRONMENTS`).

    Near saturated: within ``NEAR_SATURATED`` px of a saturated pixel.
    Bright source: the 5x5 median (cosmic rays do not survive it) exceeds
    the frame's median by ``BRIGHT_SIGMA`` times the pixel noise (1.4826
    MAD of the image less its 5x5 median), grown by 2 px.
    """
    image = np.asarray(image, dtype=np.float64)
    good = np.isfinite(image) if bad is None else np.isfinite(image) & ~np.asarray(bad, bool)
    env = np.full(image.shape, 2, np.int8)
    if good.any():
        sky = float(np.median(image[good]))
        smooth = ndimage.median_filter(np.where(good, image, sky), size=5)
        residual = (image - smooth)[good]
        noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
        bright = (smooth - sky > BRIGHT_SIGMA * noise) & good
        env[ndimage.binary_dilation(bright, _EIGHT, iterations=2)] = 1
    if saturated is not None and np.any(saturated):
        near = ndimage.binary_dilation(np.asarray(saturated, bool), np.ones((2 * NEAR_SATURATED + 1,) * 2, bool))
        env[near] = 0
    return env


def _ratio(found, total):
    return float(found) / total if total else float("nan")

def found_per_cosmic_ray(cr_mask, original_mask, truth, table):
    """Per row of ``table``: (found, found by a new flag), each a bool array.

    Found: one of its pixels is flagged on the injected frame. Found *by a
    new flag*: one of its pixels is flagged on the injected frame and not on
    the original (``original_mask``); a flag that was already there (a star
    core, a hot pixel) finds a cosmic ray only by coincidence. A cosmic ray
    with no pixel (``n_pixels`` 0) is never found.
    """
    cr_mask, original_mask = np.asarray(cr_mask, bool), np.asarray(original_mask, bool)
    truth_on = truth > 0
    hit = np.zeros(int(truth.max()) + 1, bool)
    hit[np.unique(truth[cr_mask & truth_on])] = True
    hit_new = np.zeros(hit.shape, bool)
    hit_new[np.unique(truth[cr_mask & truth_on & ~original_mask])] = True
    hit[0] = hit_new[0] = False
    labels = np.asarray(table["label"]) * (np.asarray(table["n_pixels"]) > 0)
    return hit[labels], hit_new[labels]


def _charge_bins():
    return [*zip(CHARGE_BINS[:-1], CHARGE_BINS[1:]), LOW_CHARGE_BIN]


def score_mask(cr_mask, original_mask, truth, table, env, bad=None):
    """Counts of one detector on one injection (sum them over trials, then `_rates`).

    ``cr_mask`` / ``original_mask``: its flags on the injected / original
    frame. New flags away: flagged on the injected frame, not on the
    original, farther than 1 px from every injected cosmic ray. Objects
    found and found by a new flag (`found_per_cosmic_ray`): in all, per
    environment and per charge bin (`CHARGE_BINS` and `LOW_CHARGE_BIN`).
    """
    cr_mask, original_mask = np.asarray(cr_mask, bool), np.asarray(original_mask, bool)
    truth_on = truth > 0
    counts = {"flags_original": int(original_mask.sum()), "flags_injected": int(cr_mask.sum()),
              "new_away": int((cr_mask & ~original_mask & ~ndimage.binary_dilation(truth_on, _EIGHT)).sum()),
              "pixels": int(truth_on.sum()), "pixels_found": int((cr_mask & truth_on).sum())}
    found, found_new = found_per_cosmic_ray(cr_mask, original_mask, truth, table)
    used = np.asarray(table["n_pixels"]) > 0
    object_env = env[np.asarray(table["y"]), np.asarray(table["x"])] if len(table) else np.zeros(0, int)
    charge = np.asarray(table["charge"])

    def add(suffix, chosen):
        counts[f"objects{suffix}"] = int(chosen.sum())
        counts[f"objects_found{suffix}"] = int((found & chosen).sum())
        counts[f"objects_found_new{suffix}"] = int((found_new & chosen).sum())

    add("", used)
    for code, name in enumerate(ENVIRONMENTS):
        here = truth_on & (env == code)
        counts[f"pixels {name}"], counts[f"pixels_found {name}"] = int(here.sum()), int((here & cr_mask).sum())
        add(f" {name}", used & (object_env == code))
    for low, high in _charge_bins():
        add(f" {bin_name(low, high)}", used & (charge >= low) & (charge < high))
    return counts


def bin_name(low, high):
    """Name of a charge bin: ``"500-1000 e-"``, ``">= 5000 e-"``, ``"< 1000 e-"``."""
    if low == 0:
        return f"< {high:g} e-" if (low, high) == LOW_CHARGE_BIN else f"{low:g}-{high:g} e-"
    return f"{low:g}-{high:g} e-" if np.isfinite(high) else f">= {low:g} e-"


_bin_name = bin_name


def _rates(counts):
    """Recall figures from summed `score_mask` counts.

    ``object_recall_new ...``: found by a new flag; ``object_recall ...``:
    found by any flag ("plain"; credits flags that were there before).
    """
    rates = {key: counts[key] for key in ("flags_original", "flags_injected", "new_away", "pixels", "objects")}
    rates["pixel_recall"] = _ratio(counts["pixels_found"], counts["pixels"])
    for name in ENVIRONMENTS:
        rates[f"pixel_recall {name}"] = _ratio(counts[f"pixels_found {name}"], counts[f"pixels {name}"])
    for suffix in ["", *(f" {name}" for name in ENVIRONMENTS), *(f" {bin_name(*pair)}" for pair in _charge_bins())]:
        rates[f"object_recall{suffix}"] = _ratio(counts[f"objects_found{suffix}"], counts[f"objects{suffix}"])
        rates[f"object_recall_new{suffix}"] = _ratio(counts[f"objects_found_new{suffix}"], counts[f"objects{suffix}"])
        rates[f"objects{suffix}"] = counts[f"objects{suffix}"]
    return rates


def injection_recovery(image, detectors, *, library=None, n_cr=None, density=DENSITY, seed=0, n_trials=1,
                       bad=None, saturated=None, gain=1.0, footprint_floor=None):
    """Inject real cosmic rays into ``image``, run every detector, count what each recovers.

    Parameters
    ----------
    image : array-like, 2-D
    detectors : dict of str -> callable
        ``name -> function(image) -> bool mask`` (`~astro_deepcr.evaluation.detectors.deepcr_detector`,
        `~astro_deepcr.evaluation.detectors.lacosmic_detector` or your own).
    library, n_cr, density, gain, footprint_floor :
        As for `inject_cosmic_rays`.
    seed : int
        Trial ``k`` uses ``numpy.random.SeedSequence(seed).spawn``'s ``k``-th child.
    n_trials : int
        Independent injections; the counts are summed over them.
    bad, saturated : array-like of bool, optional
        Never injected into; ``saturated`` also defines the "near saturated" environment.

    Returns
    -------
    results : dict
        ``detectors``: name -> figures (``pixel_recall``,
        ``object_recall_new`` (found by a new flag) and ``object_recall``
        (found by any flag, "plain"), the same per environment
        (``object_recall_new elsewhere``) and per charge bin
        (``object_recall_new 0-500 e-``, ``... < 1000 e-``), ``flags_original``,
        ``flags_injected``, ``new_away``, ``pixels``, ``objects``);
        ``per_cr``: one entry per injected cosmic ray of every trial
        (``trial``, ``label``, ``charge``, ``environment`` code, and
        ``found_new`` / ``found``: name -> bool array), the paired record
        for `astro_deepcr.evaluation.significance.compare_detectors`;
        ``n_injected``, ``seed``, ``n_trials``, ``environment``; of the last trial ``last``
        (``injected``, ``truth``, ``table``, ``masks``, ``originals``) for pictures.
    """
    image = np.asarray(image)
    avoid = np.zeros(image.shape, bool) | (False if bad is None else bad) | (False if saturated is None else saturated)
    env = environment(image, saturated, bad)
    if library is None:
        from .libraries import cosmic_ray_library

        library = cosmic_ray_library()
    originals = {name: np.asarray(detect(image), bool) for name, detect in detectors.items()}
    totals = {name: {} for name in detectors}
    per_cr = {"trial": [], "label": [], "charge": [], "environment": [], "found_new": {name: [] for name in detectors},
              "found": {name: [] for name in detectors}}
    for trial, child in enumerate(np.random.SeedSequence(seed).spawn(int(n_trials))):
        injected, truth, table = inject_cosmic_rays(image, library, n_cr, density=density,
                                                    seed=np.random.default_rng(child), avoid=avoid, gain=gain,
                                                    footprint_floor=footprint_floor)
        used = table[np.asarray(table["n_pixels"]) > 0]
        per_cr["trial"].append(np.full(len(used), trial))
        per_cr["label"].append(np.asarray(used["label"]))
        per_cr["charge"].append(np.asarray(used["charge"], float))
        per_cr["environment"].append(env[np.asarray(used["y"]), np.asarray(used["x"])] if len(used) else [])
        masks = {}
        for name, detect in detectors.items():
            masks[name] = np.asarray(detect(injected), bool)
            for key, value in score_mask(masks[name], originals[name], truth, table, env).items():
                totals[name][key] = totals[name].get(key, 0) + value
            found, found_new = found_per_cosmic_ray(masks[name], originals[name], truth, used)
            per_cr["found"][name].append(found)
            per_cr["found_new"][name].append(found_new)
    per_cr = {key: ({name: np.concatenate(parts).astype(bool) for name, parts in value.items()}
                    if isinstance(value, dict) else np.concatenate(value)) for key, value in per_cr.items()}
    per_cr["environment"] = per_cr["environment"].astype(np.int8)
    n_injected = int(per_cr["charge"].size)
    for name in detectors:  # flags on the original frame count once, not per trial
        totals[name]["flags_original"] = int(originals[name].sum())
    return {"detectors": {name: _rates(counts) for name, counts in totals.items()}, "n_injected": n_injected,
            "per_cr": per_cr,
            "seed": seed, "n_trials": int(n_trials), "environment": env,
            "last": {"injected": injected, "truth": truth, "table": table, "masks": masks, "originals": originals}}



# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Injection-recovery: how complete a cosmic-ray mask is on your own frame.

A real frame has no labels. `inject_cosmic_rays` adds real cosmic rays of known footprint to it (its
stars, noise, saturation and DQ stay) and `injection_recovery` runs each detector before and after and
counts what it recovers: pixels and objects, by injected charge, near saturated pixels, on bright
sources and elsewhere, and the new flags that appear away from the injected cosmic rays.

The cosmic rays come from `cosmic_ray_library`, the stamps that
`astro_deepcr.training.crlibrary.harvest_cosmic_rays` cuts from the real
ACS/HRC exposure ``j8bt06nyq_flt.fits`` (``method="psf"``: 219 stamps, 219 to
25935 e-, median 1301 e-, 41 % below 1000 e-; 1 to 31 px, median 5, 12 %
single pixels; longest side median 3 px, at most 15; ``docs/bright.rst``).
Each injected cosmic ray is a stamp drawn at random, rotated by a multiple
of 90 degrees and flipped at random, placed at a random position with its
whole box inside the frame, never touching another injected one (so that
each keeps its identity), and added in electrons (divided by ``gain`` for a
frame in ADU). Pixels of ``avoid`` (bad or saturated pixels: a saturated
pixel stays saturated when a cosmic ray hits it) are not changed. The
truth is exact: a pixel belongs to an injected cosmic ray if and only if
the injection raised its value.

``astro-deepcr evaluate --inject FILE ...`` runs `run_frame` on FITS files.
"""

import functools

import numpy as np
from astropy.table import Table
from scipy import ndimage

__all__ = ["DENSITY", "CHARGE_BINS", "ENVIRONMENTS", "cosmic_ray_library", "inject_cosmic_rays", "environment",
           "score_mask", "injection_recovery", "deepcr_detector", "lacosmic_detector", "match_lacosmic_flags",
           "read_frame", "run_frame", "table_lines", "plot_injection"]

#: Default number of injected cosmic rays per megapixel (the HRC example frame has about 330 real ones in 60 s).
DENSITY = 500.0
#: Edges (e-) of the injected charge bins of the recall table.
CHARGE_BINS = (0.0, 500.0, 1000.0, 2000.0, 5000.0, np.inf)
#: Environments of an injected pixel / cosmic ray (its brightest pixel decides for an object).
ENVIRONMENTS = ("near saturated", "bright source", "elsewhere")
#: Distance (px, chessboard) from a saturated pixel of the "near saturated" environment.
NEAR_SATURATED = 3
#: A pixel is on a "bright source" where its 5x5 median is this many pixel-noise sigma above the frame's median.
BRIGHT_SIGMA = 10.0
#: Injected cosmic rays keep this many pixels (chessboard) from each other.
SEPARATION = 2
_EIGHT = np.ones((3, 3), bool)


@functools.lru_cache(maxsize=2)
def _library(method):
    from ..training.crlibrary import harvest_cosmic_rays

    return tuple(harvest_cosmic_rays(method=method))


def cosmic_ray_library(method="psf"):
    """The harvested real cosmic rays (charge stamps in e-, float32) of the ACS/HRC example frame; cached."""
    return list(_library(method))


def _placement(shape, stamp_shape, occupied, rng, tries=50):
    for _ in range(tries):
        y0 = int(rng.integers(0, shape[0] - stamp_shape[0] + 1))
        x0 = int(rng.integers(0, shape[1] - stamp_shape[1] + 1))
        box = (slice(max(y0 - SEPARATION, 0), y0 + stamp_shape[0] + SEPARATION),
               slice(max(x0 - SEPARATION, 0), x0 + stamp_shape[1] + SEPARATION))
        if not occupied[box].any():
            return y0, x0
    return None


def inject_cosmic_rays(image, library=None, n_cr=None, *, density=DENSITY, seed=None, avoid=None, gain=1.0):
    """Add real cosmic rays of known footprint to a copy of ``image``.

    Parameters
    ----------
    image : array-like, 2-D
        The frame (not modified).
    library : list of ndarray, optional
        Cosmic-ray charge stamps in electrons (default `cosmic_ray_library`).
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

    Returns
    -------
    injected : ndarray
        The frame with the cosmic rays (``image``'s float type, float32 for an integer image).
    truth : ndarray of int32
        0 where nothing was injected, ``k`` on the pixels of the ``k``-th
        cosmic ray (row ``k - 1`` of ``table``). Exactly the pixels where
        ``injected > image`` (the image in ``injected``'s type).
    table : `~astropy.table.Table`
        One row per cosmic ray: ``label``, ``y``, ``x`` (its brightest
        pixel), ``stamp`` (library index), ``charge`` (e-, what the frame gained),
        ``peak`` (e-), ``n_pixels``. A cosmic ray wholly on ``avoid`` pixels
        has ``n_pixels`` 0 and no label in ``truth``; the frame may hold fewer
        than ``n_cr`` when it is too crowded to keep them apart.
    """
    if np.ndim(image) != 2:
        raise ValueError(f"image must be 2-D, not {np.ndim(image)}-D")
    image = np.asarray(image)
    if not gain > 0:
        raise ValueError(f"gain must be > 0, not {gain}")
    library = cosmic_ray_library() if library is None else list(library)
    if not library:
        raise ValueError("the cosmic-ray library is empty")
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
        member = raised[box] & (stamp > 0)
        labels[box][member] = label
        added = np.where(member, (injected[box].astype(np.float64) - original[box]) * gain, 0.0)
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

def score_mask(cr_mask, original_mask, truth, table, env, bad=None):
    """Counts of one detector on one injection (sum them over trials, then `_rates`).

    ``cr_mask`` / ``original_mask``: its flags on the injected / original
    frame. New flags away: flagged on the injected frame, not on the
    original, farther than 1 px from every injected cosmic ray. An object
    is found when one of its pixels is flagged, found *new* when one of its
    pixels is flagged on the injected frame but not on the original (a
    detector that flags a whole star rim "finds" the cosmic rays that land
    there by coincidence; ``object_recall_new`` does not count those).
    """
    cr_mask = np.asarray(cr_mask, bool)
    truth_on = truth > 0
    counts = {"flags_original": int(original_mask.sum()), "flags_injected": int(cr_mask.sum()),
              "new_away": int((cr_mask & ~original_mask & ~ndimage.binary_dilation(truth_on, _EIGHT)).sum()),
              "pixels": int(truth_on.sum()), "pixels_found": int((cr_mask & truth_on).sum())}
    labels = np.asarray(table["label"])[np.asarray(table["n_pixels"]) > 0]
    hit = np.zeros(int(truth.max()) + 1, bool)
    hit[np.unique(truth[cr_mask & truth_on])] = True
    # found by a flag the original frame did not have: not a coincidence with a flag already there
    hit_new = np.zeros(hit.shape, bool)
    hit_new[np.unique(truth[cr_mask & truth_on & ~original_mask])] = True
    counts["objects"], counts["objects_found"] = int(labels.size), int(hit[labels].sum())
    counts["objects_found_new"] = int(hit_new[labels].sum())
    object_env = env[np.asarray(table["y"]), np.asarray(table["x"])] if len(table) else np.zeros(0, int)
    charge = np.asarray(table["charge"])
    used = np.asarray(table["n_pixels"]) > 0
    for code, name in enumerate(ENVIRONMENTS):
        here = truth_on & (env == code)
        chosen = used & (object_env == code)
        counts[f"pixels {name}"], counts[f"pixels_found {name}"] = int(here.sum()), int((here & cr_mask).sum())
        counts[f"objects {name}"], counts[f"objects_found {name}"] = int(chosen.sum()), \
            int(hit[np.asarray(table["label"])[chosen]].sum())
        counts[f"objects_found_new {name}"] = int(hit_new[np.asarray(table["label"])[chosen]].sum())
    for low, high in zip(CHARGE_BINS[:-1], CHARGE_BINS[1:]):
        chosen = used & (charge >= low) & (charge < high)
        key = _bin_name(low, high)
        counts[f"objects {key}"], counts[f"objects_found {key}"] = int(chosen.sum()), \
            int(hit[np.asarray(table["label"])[chosen]].sum())
    return counts


def _bin_name(low, high):
    return f"{low:g}-{high:g} e-" if np.isfinite(high) else f">= {low:g} e-"


def _rates(counts):
    """Recall figures from summed `score_mask` counts."""
    rates = {key: counts[key] for key in ("flags_original", "flags_injected", "new_away", "pixels", "objects")}
    rates["pixel_recall"] = _ratio(counts["pixels_found"], counts["pixels"])
    rates["object_recall"] = _ratio(counts["objects_found"], counts["objects"])
    rates["object_recall_new"] = _ratio(counts["objects_found_new"], counts["objects"])
    for name in ENVIRONMENTS:
        rates[f"pixel_recall {name}"] = _ratio(counts[f"pixels_found {name}"], counts[f"pixels {name}"])
        rates[f"object_recall {name}"] = _ratio(counts[f"objects_found {name}"], counts[f"objects {name}"])
        rates[f"object_recall_new {name}"] = _ratio(counts[f"objects_found_new {name}"], counts[f"objects {name}"])
        rates[f"objects {name}"] = counts[f"objects {name}"]
    for low, high in zip(CHARGE_BINS[:-1], CHARGE_BINS[1:]):
        key = _bin_name(low, high)
        rates[f"object_recall {key}"] = _ratio(counts[f"objects_found {key}"], counts[f"objects {key}"])
        rates[f"objects {key}"] = counts[f"objects {key}"]
    return rates


def injection_recovery(image, detectors, *, library=None, n_cr=None, density=DENSITY, seed=0, n_trials=1,
                       bad=None, saturated=None, gain=1.0):
    """Inject real cosmic rays into ``image``, run every detector, count what each recovers.

    Parameters
    ----------
    image : array-like, 2-D
    detectors : dict of str -> callable
        ``name -> function(image) -> bool mask`` (`deepcr_detector`, `lacosmic_detector` or your own).
    library, n_cr, density, gain :
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
        ``detectors``: name -> figures (``pixel_recall``, ``object_recall``,
        the same per environment and per charge bin, ``flags_original``,
        ``flags_injected``, ``new_away``, ``pixels``, ``objects``);
        ``n_injected``, ``seed``, ``n_trials``, ``environment``; of the last trial ``last``
        (``injected``, ``truth``, ``table``, ``masks``, ``originals``) for pictures.
    """
    image = np.asarray(image)
    avoid = np.zeros(image.shape, bool) | (False if bad is None else bad) | (False if saturated is None else saturated)
    env = environment(image, saturated, bad)
    library = cosmic_ray_library() if library is None else library
    originals = {name: np.asarray(detect(image), bool) for name, detect in detectors.items()}
    totals = {name: {} for name in detectors}
    n_injected = 0
    for child in np.random.SeedSequence(seed).spawn(int(n_trials)):
        injected, truth, table = inject_cosmic_rays(image, library, n_cr, density=density,
                                                    seed=np.random.default_rng(child), avoid=avoid, gain=gain)
        n_injected += int((np.asarray(table["n_pixels"]) > 0).sum())
        masks = {}
        for name, detect in detectors.items():
            masks[name] = np.asarray(detect(injected), bool)
            for key, value in score_mask(masks[name], originals[name], truth, table, env).items():
                totals[name][key] = totals[name].get(key, 0) + value
    for name in detectors:  # flags on the original frame count once, not per trial
        totals[name]["flags_original"] = int(originals[name].sum())
    return {"detectors": {name: _rates(counts) for name, counts in totals.items()}, "n_injected": n_injected,
            "seed": seed, "n_trials": int(n_trials), "environment": env,
            "last": {"injected": injected, "truth": truth, "table": table, "masks": masks, "originals": originals}}


def deepcr_detector(model, *, threshold=None, dq=None, mask=None, satlevel=None, protect_saturated=True,
                    device="cpu", threads=None):
    """``image -> cosmic-ray mask`` of a deepCR model with the flag door's DQ semantics.

    Runs `astro_deepcr.detection.detect` (``grow=1``: no growth); ``dq``
    (integer DQ), ``mask`` (bad pixels) and ``satlevel`` as there; ``model``
    is a zoo name or `~astro_deepcr.zoo.ModelSpec`; the image must be in the
    model's units.
    """
    from ..zoo import get_model

    spec = get_model(model, kind="mask") if isinstance(model, str) else model
    from ..detection import detect

    def run(image):
        return detect(image, spec=spec, threshold=threshold, mask=mask, dq=dq, satlevel=satlevel,
                      protect_saturated=protect_saturated, grow=1, device=device, threads=threads,
                      progress=False).cr_mask

    return run


def lacosmic_detector(*, readnoise, gain=1.0, satlevel=None, sigclip=4.5, objlim=5.0, inmask=None, niter=4):
    """``image -> cosmic-ray mask`` of LACosmic (`astroscrappy.detect_cosmics`).

    The image (in units of ``gain`` e- each) is given to astroscrappy in
    electrons; ``satlevel`` in image units (None: no saturation level);
    ``inmask`` bad pixels, never flagged.
    """
    import astroscrappy

    def run(image):
        electrons = np.asarray(image, dtype=np.float32) * np.float32(gain)
        level = np.inf if satlevel is None else float(satlevel) * gain
        found, _ = astroscrappy.detect_cosmics(electrons, inmask=inmask, sigclip=sigclip, objlim=objlim, gain=1.0,
                                               readnoise=readnoise, satlevel=level, niter=niter, verbose=False)
        found = np.asarray(found, bool)
        return found if inmask is None else found & ~np.asarray(inmask, bool)

    return run


def match_lacosmic_flags(image, n_flags, *, low=2.0, high=200.0, steps=10, **lacosmic):
    """LACosmic's ``sigclip`` whose flag count on ``image`` is nearest ``n_flags`` (bisection in log sigclip).

    Returns ``(sigclip, n_flagged)``; ``lacosmic``: keywords of `lacosmic_detector`.
    """
    best = None  # (sigclip, count)
    for _ in range(int(steps)):
        sigclip = float(np.sqrt(low * high))
        count = int(lacosmic_detector(sigclip=sigclip, **lacosmic)(image).sum())
        if best is None or abs(count - n_flags) < abs(best[1] - n_flags):
            best = (sigclip, count)
        if count == n_flags:
            break
        low, high = (sigclip, high) if count > n_flags else (low, sigclip)
    return best


# -- frames and files -------------------------------------------------------------------------------------------


def read_frame(path, ext=None, gain=None, readnoise=None):
    """A FITS frame in electrons for `run_frame`: ``SCI,1`` (else the first image) or ``ext``, its ``DQ``.

    Gain and units from the header (`astro_deepcr.units.electron_factor`),
    read noise from the header (`~astro_deepcr.units.header_readnoise`) or
    ``readnoise``; ``satlevel`` from ``SATURATE`` (data units) when present.
    """
    from astropy.io import fits

    from ..units import electron_factor, header_readnoise

    with fits.open(path, memmap=False) as hdul:
        if ext is None:
            ext = ("SCI", 1) if ("SCI", 1) in hdul else next(
                (k for k, hdu in enumerate(hdul) if hdu.data is not None and hdu.data.ndim == 2), None)
        if ext is None:
            raise ValueError(f"{path}: no 2-D image extension; give ext")
        hdu, primary = hdul[ext], hdul[0].header
        if hdu.data is None or hdu.data.ndim != 2:
            raise ValueError(f"{path}[{ext}] is not a 2-D image")
        version = hdu.ver if hdu.name == "SCI" else None
        dq = np.array(hdul["DQ", version].data) if version and ("DQ", version) in hdul else None
        factor = electron_factor(hdu.header, primary, "electron", gain=gain)
        readnoise = readnoise if readnoise is not None else header_readnoise(hdu.header, primary)[0]
        if readnoise is None:
            raise ValueError(f"{path}: no read noise in the header; give readnoise")
        saturate = hdu.header.get("SATURATE", primary.get("SATURATE"))
        header = fits.Header(primary)
        header.update(hdu.header)
        label = ",".join(map(str, ext)) if isinstance(ext, tuple) else ext
        return {"name": f"{str(path).rsplit('/', 1)[-1]}[{label}]", "header": header, "dq": dq,
                "electrons": np.asarray(hdu.data, np.float64) * factor, "readnoise": float(readnoise),
                "satlevel": None if saturate is None else float(saturate) * factor}


def run_frame(frame, *, model=None, seed=0, n_cr=None, density=DENSITY, n_trials=1, match_flags=True,
              device="cpu", threads=None):
    """The injection table of one frame (dict of `read_frame`): the chosen deepCR model vs LACosmic.

    LACosmic runs with its defaults (sigclip 4.5, objlim 5) and, with
    ``match_flags``, at the sigclip whose flag count on the uninjected frame
    is nearest deepCR's (`match_lacosmic_flags`). Both see the same bad and
    saturated pixels (LACosmic's ``satlevel``: the frame's, else the lowest
    DQ-saturated value). Returns `injection_recovery`'s dict plus ``model``,
    ``reason``, ``sigclip``, ``saturated`` and ``name``.
    """
    from ..bright import saturated_pixels
    from ..detection import choose_model, pixel_masks

    image = frame["electrons"]
    spec, reason = choose_model(frame.get("header"), model=model)
    if spec.units != "electron":
        raise ValueError(f"model {spec.name} expects {spec.units}; injection runs in electrons")
    saturated = saturated_pixels(image, dq=frame.get("dq"), satlevel=frame.get("satlevel"))
    bad, _ = pixel_masks(image.shape, dq=frame.get("dq"), nonfinite=~np.isfinite(image))
    bad = bad & ~saturated
    satlevel = frame.get("satlevel")
    if satlevel is None and saturated.any():  # DQ-saturated: LACosmic grows its own stars from their lowest level
        satlevel = float(image[saturated].min())
    lacosmic = dict(readnoise=frame["readnoise"], satlevel=satlevel, inmask=bad | saturated)
    detectors = {f"deepCR {spec.name}": deepcr_detector(spec, dq=frame.get("dq"), satlevel=frame.get("satlevel"),
                                                         device=device, threads=threads),
                 "LACosmic (sigclip 4.5)": lacosmic_detector(**lacosmic)}
    sigclip = None
    if match_flags:
        target = int(detectors[f"deepCR {spec.name}"](image).sum())
        sigclip, _ = match_lacosmic_flags(image, target, **lacosmic)
        detectors[f"LACosmic (sigclip {sigclip:.3g}, equal flags)"] = lacosmic_detector(sigclip=sigclip, **lacosmic)
    results = injection_recovery(image, detectors, n_cr=n_cr, density=density, seed=seed, n_trials=n_trials,
                                 bad=bad, saturated=saturated)
    results.update(model=spec.name, reason=reason, sigclip=sigclip, saturated=saturated,
                   name=frame.get("name", "frame"), n_good=int((~bad & ~saturated).sum()))
    return results


#: Columns of `table_lines`: (heading, key, format).
COLUMNS = (("flags", "flags_original", "d"), ("new away", "new_away", "d"), ("CRs", "objects", "d"),
           ("px recall", "pixel_recall", ".3f"), ("obj recall", "object_recall", ".3f"),
           ("near sat.", "object_recall near saturated", ".2f"), ("bright", "object_recall bright source", ".2f"),
           ("elsewhere", "object_recall elsewhere", ".3f"), ("<500 e-", "object_recall 0-500 e-", ".2f"),
           ("0.5-1k", "object_recall 500-1000 e-", ".2f"), ("1-2k", "object_recall 1000-2000 e-", ".2f"),
           ("2-5k", "object_recall 2000-5000 e-", ".2f"), (">5k", "object_recall >= 5000 e-", ".2f"))


def table_lines(all_results):
    """Markdown table of `run_frame` results (one row per frame and detector)."""
    lines = ["| frame | detector | " + " | ".join(head for head, _, _ in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for results in all_results:
        for name, rates in results["detectors"].items():
            cells = ["n/a" if isinstance(rates[key], float) and not np.isfinite(rates[key]) else
                     format(rates[key], spec) for _, key, spec in COLUMNS]
            lines.append(f"| {results['name']} | {name} | " + " | ".join(cells) + " |")
    return lines


def plot_injection(results, path):
    """PNG: object recall by injected charge per detector, and a cut-out of the last injection with each mask."""
    from .plots import _pyplot

    plt = _pyplot()
    names = list(results["detectors"])
    last = results["last"]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 3.2))
    centres = [np.sqrt(max(low, 200.0) * min(high, 2e4)) for low, high in zip(CHARGE_BINS[:-1], CHARGE_BINS[1:])]
    for name in names:
        rates = results["detectors"][name]
        axes[0].plot(centres, [rates[f"object_recall {_bin_name(lo, hi)}"]
                               for lo, hi in zip(CHARGE_BINS[:-1], CHARGE_BINS[1:])], "o-", label=name)
    axes[0].set(xscale="log", xlabel="injected charge (e-)", ylabel="object recall", ylim=(0, 1.02))
    axes[0].legend(fontsize=6)
    # the cut-out around the injected cosmic ray nearest a saturated pixel (else the brightest one)
    table, truth, env = last["table"], last["truth"], results.get("environment")
    used = table[table["n_pixels"] > 0]
    near = used[env[used["y"], used["x"]] == 0] if env is not None and len(used) else used[:0]
    row = near[0] if len(near) else used[np.argmax(used["charge"])]
    box = tuple(slice(max(int(c) - 24, 0), int(c) + 24) for c in (row["y"], row["x"]))
    stamp = last["injected"][box]
    low, high = np.percentile(stamp, [5, 99.5])
    for ax, name in zip(axes[1:], names):
        ax.imshow(stamp, origin="lower", cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        overlay = np.zeros(stamp.shape + (4,))
        overlay[last["masks"][name][box]] = (1.0, 0.1, 0.1, 0.8)
        ax.imshow(overlay, origin="lower", interpolation="nearest")
        ax.contour(truth[box] > 0, levels=[0.5], colors="lime", linewidths=0.6)
        if results.get("saturated") is not None and results["saturated"][box].any():
            ax.contour(results["saturated"][box], levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set(title=f"{name}\nred flagged, green injected, cyan saturated", xticks=[], yticks=[])
        ax.title.set_fontsize(6)
    fig.suptitle(f"{results.get('name', '')}: {results['n_injected']} injected CRs, seed {results['seed']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Injection-recovery of one real frame: the default deepCR model against LACosmic, with significance.

`read_frame` reads a FITS frame in electrons; `run_frame` injects a cosmic-ray
library into it and runs the deepCR model (chosen from the header like every
other command, or given) and LACosmic at its defaults and at deepCR's flag
count (`~astro_deepcr.evaluation.detectors.match_lacosmic_flags`; labelled
"equal flags" only when that count was reached, else "nearest flags (N vs
target M)"); each LACosmic row carries the paired exact test of deepCR
against it (`~astro_deepcr.evaluation.significance`), overall and below
1000 e-. `table_lines` writes the Markdown table, every recall by new flags.
`run_placebo` runs the same with the library's placebos (faint point sources
of the frame's own PSF with the cosmic rays' charges) and `placebo_lines`
puts what each detector flags of them beside its recall of the cosmic rays.
"""

import numpy as np

from .detectors import deepcr_detector, lacosmic_detector, match_lacosmic_flags
from .recovery import DENSITY, injection_recovery
from .significance import LOW_CHARGE, compare_detectors

#: `common_flags` takes the pixels within this many px of a pixel both detectors flag.
COMMON_GROW = 2

__all__ = ["read_frame", "run_frame", "run_placebo", "placebo_lines", "placebo_test", "tuned_lacosmic", "tuned_lines",
           "frame_psf", "common_flags", "table_lines", "COLUMNS", "LACOSMIC_DEFAULT", "training_claims"]

#: Label of LACosmic at its defaults.
LACOSMIC_DEFAULT = "LACosmic (sigclip 4.5)"


def read_frame(path, ext=None, gain=None, readnoise=None, label=None):
    """A FITS frame in electrons for `run_frame`: ``SCI,1`` (else the first image) or ``ext``, its ``DQ``.

    Gain and units from the header (`astro_deepcr.units.electron_factor`),
    read noise from the header (`~astro_deepcr.units.header_readnoise`) or
    ``readnoise``; ``satlevel`` from ``SATURATE`` (data units) when present.
    The frame's ``name`` is ``label`` (default the file name) with the
    extension, e.g. ``a.fits[SCI,1]``.

    Raises
    ------
    ValueError
        Beginning with ``path``: no such extension, not a 2-D image, no gain for data in ADU, no read noise.
    """
    from astropy.io import fits

    from ..units import electron_factor, header_readnoise

    # the stream is ours: astropy leaves the file open when it fails inside fits.open (a truncated file)
    with open(path, "rb") as stream, fits.open(stream, memmap=False) as hdul:
        if ext is None:
            ext = ("SCI", 1) if ("SCI", 1) in hdul else next(
                (k for k, hdu in enumerate(hdul) if hdu.data is not None and hdu.data.ndim == 2), None)
        if ext is None:
            raise ValueError(f"{path}: no 2-D image extension; give ext")
        ext_label = ",".join(map(str, ext)) if isinstance(ext, tuple) else ext
        try:
            hdu = hdul[ext]
        except (KeyError, IndexError):
            present = ", ".join(f"{k} {item.name}" for k, item in enumerate(hdul))
            raise ValueError(f"{path}: no extension {ext_label} (the file has {present})") from None
        primary = hdul[0].header
        if hdu.data is None or hdu.data.ndim != 2:
            raise ValueError(f"{path}: extension {ext_label} is not a 2-D image")
        version = hdu.ver if hdu.name == "SCI" else None
        dq = np.array(hdul["DQ", version].data) if version and ("DQ", version) in hdul else None
        try:
            factor = electron_factor(hdu.header, primary, "electron", gain=gain)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        readnoise = readnoise if readnoise is not None else header_readnoise(hdu.header, primary)[0]
        if readnoise is None:
            raise ValueError(f"{path}: no read noise in the header; give readnoise")
        saturate = hdu.header.get("SATURATE", primary.get("SATURATE"))
        header = fits.Header(primary)
        header.update(hdu.header)
        name = str(path).rsplit("/", 1)[-1] if label is None else label
        return {"name": f"{name}[{ext_label}]", "header": header, "dq": dq,
                "electrons": np.asarray(hdu.data, np.float64) * factor, "readnoise": float(readnoise),
                "satlevel": None if saturate is None else float(saturate) * factor}


def training_claims(spec):
    """``(frames, libraries)`` a model's card says it was trained on (``training_frames`` / ``training_libraries``).

    Read from the card's fields, else from its ``metrics``; empty tuples
    when the card names none (then nothing is *claimed* held out either).
    """
    def field(key):
        value = getattr(spec, key, None) or (getattr(spec, "metrics", None) or {}).get(key) or ()
        return tuple(str(item) for item in ([value] if isinstance(value, str) else value))

    return field("training_frames"), field("training_libraries")


def _frame_setup(frame):
    from ..bright import saturated_pixels
    from ..detection import pixel_masks

    image = frame["electrons"]
    saturated = saturated_pixels(image, dq=frame.get("dq"), satlevel=frame.get("satlevel"))
    bad, _ = pixel_masks(image.shape, dq=frame.get("dq"), nonfinite=~np.isfinite(image))
    bad = bad & ~saturated
    satlevel = frame.get("satlevel")
    if satlevel is None and saturated.any():  # DQ-saturated: LACosmic grows its own stars from their lowest level
        satlevel = float(image[saturated].min())
    return bad, saturated, dict(readnoise=frame["readnoise"], satlevel=satlevel, inmask=bad | saturated)


def common_flags(first, second, grow=COMMON_GROW):
    """Pixels within ``grow`` px (8-connected) of a pixel that both masks flag.

    Where deepCR and LACosmic, two detectors that share no method, both flag a pixel of the brightest set,
    it is a cosmic ray bright or wide enough to survive the set's median filter (GMOS-S's two long
    tracks), or a source both mistake; either way it says nothing of one detector against the other.
    Counting the bright set less these pixels (``bright_flags_unshared``) compares what each one flags
    alone, and treats both detectors alike.
    """
    from scipy import ndimage

    both = np.asarray(first, bool) & np.asarray(second, bool)
    return ndimage.binary_dilation(both, np.ones((3, 3), bool), iterations=grow) if grow and both.any() else both


def run_frame(frame, *, model=None, library=None, seed=0, n_cr=None, density=DENSITY, n_trials=1,
              match_flags=True, flag_match=None, bright=None, detector=None, device="cpu", threads=None,
              star_shape=False, footprint_floor=None, tune_objlims=None, tuned_matches=None):
    """The injection table of one frame (dict of `read_frame`): the chosen deepCR model vs LACosmic.

    Parameters
    ----------
    frame : dict
        ``electrons``, ``readnoise``, optional ``dq``, ``satlevel``, ``header``, ``name``.
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional
        The deepCR model (zoo name or path of a ``.safetensors`` with its
        card); default the one `astro_deepcr.detection.choose_model` picks
        from the header.
    library : str or list of ndarray, optional
        Cosmic rays to inject: a name of
        `~astro_deepcr.evaluation.libraries.cosmic_ray_library` or stamps
        (default ``"hrc"``).
    seed, n_cr, density, n_trials :
        As for `~astro_deepcr.evaluation.recovery.injection_recovery`.
    match_flags : bool
        Also LACosmic at deepCR's flag count on the uninjected frame.
    flag_match : `~astro_deepcr.evaluation.detectors.FlagMatch`, optional
        Its result from an earlier run on the same frame and detector (the
        search runs LACosmic up to 100 times); reused only when its target
        is deepCR's count here.
    bright : array-like of bool, optional
        A set of pixels (e.g. the brightest 0.5 %); ``bright_flags`` counts
        each detector's flags there on the uninjected frame,
        ``bright_flags_unshared`` the same less the pixels near what deepCR
        and LACosmic at its defaults both flag (`common_flags`).
    detector : (str, callable), optional
        ``(name, image -> mask)`` scored instead of the zoo model (e.g. a
        network being trained); ``model`` is then only the label's source.
    device, threads :
        Where deepCR runs.
    star_shape : bool
        The deepCR detector with the star-shape test (`astro_deepcr.starshape`; the frame's ``readnoise``).
    footprint_floor : float, optional
        As for `~astro_deepcr.evaluation.recovery.inject_cosmic_rays` (placebos: scored on their cores).
    tune_objlims : sequence of float, optional
        Also LACosmic at deepCR's flag count with each of these ``objlim`` (sigclip alone bisected; e.g.
        `~astro_deepcr.evaluation.detectors.TUNING_OBJLIMS`): LACosmic as an expert might tune it. Only the
        matches that reach the count are scored; `tuned_lacosmic` picks the best with hindsight.
    tuned_matches : list of `~astro_deepcr.evaluation.detectors.FlagMatch`, optional
        Their results from an earlier run on the same frame and detector, reused where objlim and target agree.

    Returns
    -------
    dict
        `injection_recovery`'s dict plus ``model``, ``reason``, ``default``
        (the deepCR detector's name), ``flag_match``
        (`~astro_deepcr.evaluation.detectors.FlagMatch` or None),
        ``sigclip``, ``significance`` (LACosmic name -> ``{"all": ...,
        "< 1000 e-": ...}`` of `~astro_deepcr.evaluation.significance.discordant_test`,
        deepCR as A), ``bright_flags``, ``bright_flags_unshared``, ``flagged_fraction`` (detector -> flagged
        fraction of the good pixels of the uninjected frame), ``alarm`` (detector -> the limit of
        `~astro_deepcr.detection.flagged_fraction_alarm` it exceeds with the header's exposure time, or None),
        ``library``, ``saturated``, ``name``, ``n_good``; with ``tune_objlims``, ``tuned_matches`` (one
        `~astro_deepcr.evaluation.detectors.FlagMatch` per objlim, reached or not).
    """
    from ..detection import choose_model

    image = frame["electrons"]
    if detector is None:
        spec, reason = choose_model(frame.get("header"), model=model)
        if spec.units != "electron":
            raise ValueError(f"model {spec.name} expects {spec.units}; injection runs in electrons")
        default = f"deepCR {spec.name}" + (" + star shape" if star_shape else "")
        deepcr = deepcr_detector(spec, dq=frame.get("dq"), satlevel=frame.get("satlevel"), device=device,
                                 threads=threads, star_shape=star_shape,
                                 readnoise=frame["readnoise"] if star_shape else None)
        model_name = spec.name
    else:
        default, deepcr = detector
        model_name, reason = default, "given detector"
    bad, saturated, lacosmic = _frame_setup(frame)
    detectors = {default: deepcr, LACOSMIC_DEFAULT: lacosmic_detector(**lacosmic)}
    match, tuned = None, None
    if match_flags or tune_objlims:
        target = int(np.asarray(deepcr(image), bool).sum())
    if match_flags:
        match = flag_match if flag_match is not None and flag_match.target == target else \
            match_lacosmic_flags(image, target, **lacosmic)
        detectors[match.label()] = lacosmic_detector(sigclip=match.sigclip, objlim=match.objlim, **lacosmic)
    if tune_objlims:
        tuned = _tuned_matches(image, target, tune_objlims, tuned_matches or (), lacosmic)
        for found in tuned:
            if found.matched:  # the same settings as the default match share its label, so it runs once
                detectors.setdefault(found.label(), lacosmic_detector(sigclip=found.sigclip, objlim=found.objlim,
                                                                      **lacosmic))
    library_name = library if isinstance(library, str) or library is None else "given"
    if library is None or isinstance(library, str):
        from .libraries import cosmic_ray_library

        library = cosmic_ray_library(library or "hrc")
    results = injection_recovery(image, detectors, library=library, n_cr=n_cr, density=density, seed=seed,
                                 n_trials=n_trials, bad=bad, saturated=saturated, footprint_floor=footprint_floor)
    results["significance"] = {name: {"all": compare_detectors(results, default, name),
                                      f"< {LOW_CHARGE:g} e-": compare_detectors(results, default, name, LOW_CHARGE)}
                               for name in detectors if name != default}
    if bright is not None:
        originals = results["last"]["originals"]
        bright = np.asarray(bright, bool)
        results["bright_flags"] = {name: int((mask & bright).sum()) for name, mask in originals.items()}
        unshared = bright & ~common_flags(originals[default], originals[LACOSMIC_DEFAULT])
        results["bright_flags_unshared"] = {name: int((mask & unshared).sum()) for name, mask in originals.items()}
    n_good = int((~bad & ~saturated).sum())
    results["flagged_fraction"], results["alarm"] = _flag_rates(results["last"]["originals"], n_good,
                                                                 frame.get("header"))
    results.update(model=model_name, reason=reason, default=default, flag_match=match,
                   sigclip=None if match is None else match.sigclip, saturated=saturated,
                   library=library_name or "hrc", name=frame.get("name", "frame"), n_good=n_good)
    if tuned is not None:
        results["tuned_matches"] = tuned
    return results


def _tuned_matches(image, target, objlims, known, lacosmic):
    """One flag match per objlim at ``target`` flags, sigclip alone (``known`` ones reused)."""
    known = {(found.objlim, found.target): found for found in known}
    return [known.get((float(objlim), target)) or match_lacosmic_flags(image, target, objlims=(float(objlim),),
                                                                        **lacosmic) for objlim in objlims]


def tuned_lacosmic(results):
    """The label of the tuned LACosmic (`run_frame` with ``tune_objlims``) that recalls the most cosmic rays by
    new flags, among the objlims that reached deepCR's flag count; None if none did.

    Chosen with hindsight, on the same injection it is scored on: an upper bound on what tuning objlim buys
    LACosmic at deepCR's flags, not a setting a user could have picked beforehand. Ties go to the first objlim.
    """
    rates = results["detectors"]
    names = [found.label() for found in results.get("tuned_matches", ()) if found.matched]
    return max(names, key=lambda name: rates[name]["object_recall_new"], default=None)


def tuned_lines(all_results):
    """Markdown table of `run_frame` results with ``tune_objlims``: per frame and library, deepCR's recall,
    LACosmic's at deepCR's flags for each objlim ("-": the count is out of reach with it), the best with
    hindsight (`tuned_lacosmic`) and the paired exact test of deepCR against it, overall and below 1000 e-."""
    objlims = sorted({found.objlim for results in all_results for found in results.get("tuned_matches", ())})
    heads = ["frame", "library", "deepCR", *(f"objlim {objlim:g}" for objlim in objlims), "best", "b/c p",
             "b/c p <1k e-"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for results in all_results:
        if "tuned_matches" not in results:
            continue
        rates = results["detectors"]
        by_objlim = {found.objlim: found for found in results["tuned_matches"]}
        cells = [results["name"], results["library"], f"{rates[results['default']]['object_recall_new']:.3f}"]
        cells += [f"{rates[by_objlim[o].label()]['object_recall_new']:.3f}" if o in by_objlim
                  and by_objlim[o].matched else "-" for o in objlims]
        best = tuned_lacosmic(results)
        if best is None:
            cells += ["none reached", "-", "-"]
        else:
            objlim = next(found.objlim for found in results["tuned_matches"] if found.label() == best)
            cells += [f"objlim {objlim:g}", *(_significance_cell(value) for value in
                                              results["significance"][best].values())]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def frame_psf(frame):
    """The frame's own PSF (`~astro_deepcr.starpsf.measure_psf`; its DQ's non-zero pixels and its saturation
    left out)."""
    from ..starpsf import measure_psf

    dq = frame.get("dq")
    return measure_psf(frame["electrons"], frame["readnoise"], bad=None if dq is None else np.asarray(dq) != 0,
                       satlevel=frame.get("satlevel"))


def run_placebo(frame, *, library=None, psf=None, profiles=None, **kwargs):
    """`run_frame` with ``library``'s placebos in place of its cosmic rays (issue #27's control).

    Each cosmic ray becomes a faint point source of the frame's PSF with its charge
    (`~astro_deepcr.evaluation.libraries.psf_placebos`), injected whole and scored on its core
    (``footprint_floor`` = `~astro_deepcr.evaluation.libraries.PLACEBO_FLOOR`): what a detector flags of them
    are faint stars it would mask. Give the same ``seed``, ``n_trials``, ``flag_match`` ... as the cosmic-ray
    run to compare the two.

    Parameters
    ----------
    frame : dict
        As for `run_frame`.
    library : str or list of ndarray, optional
        As for `run_frame` (default ``"hrc"``); only the charges are used.
    psf : `~astro_deepcr.starpsf.StarPSF`, optional
        The frame's PSF; default `frame_psf`.
    profiles : list of ndarray, optional
        Unit-sum shapes instead of the PSF's Moffat profile (`~astro_deepcr.evaluation.libraries.star_profiles`).
    **kwargs :
        For `run_frame`.

    Returns
    -------
    dict
        `run_frame`'s, with ``library`` ``"<name> placebo"`` and ``psf``.

    Raises
    ------
    ValueError
        No PSF could be measured on the frame (too few stars and no trace): give ``psf``.
    """
    from .libraries import PLACEBO_FLOOR, cosmic_ray_library, psf_placebos

    psf = frame_psf(frame) if psf is None else psf
    name = library if isinstance(library, str) or library is None else "given"
    stamps = cosmic_ray_library(library or "hrc") if name != "given" else library
    placebos = psf_placebos(stamps, psf.fwhm, psf.beta, profiles=profiles)
    results = run_frame(frame, library=placebos, footprint_floor=PLACEBO_FLOOR, **kwargs)
    results.update(library=f"{name or 'hrc'} placebo", psf=psf)
    return results


def placebo_lines(pairs):
    """Markdown table of ``(cosmic-ray results, placebo results)`` pairs (`run_frame`, `run_placebo`), per
    frame, library and environment: each detector's recall by new flags of the cosmic rays and of their
    placebos (``cosmic rays / placebos``), how many of each were injected, and the paired exact test on the
    placebos of the first detector (the default) against LACosmic at its defaults: placebos only the default
    flags / only LACosmic flags, and the one-sided binomial p that the default flags *more* of them (small:
    it masks significantly more faint stars)."""
    from .recovery import ENVIRONMENTS

    names = list(pairs[0][0]["detectors"]) if pairs else []
    lines = ["| frame | library | environment | CRs / placebos | " + " | ".join(
        name.replace("deepCR ", "") for name in names) + " | placebos b/c p (more) |", "|" + "---|" * (5 + len(names))]
    for crs, placebos in pairs:
        names = list(crs["detectors"])
        for index, suffix in enumerate(["", *(f" {name}" for name in ENVIRONMENTS)]):
            count = [run["detectors"][names[0]][f"objects{suffix}"] for run in (crs, placebos)]
            cells = [f"{run['detectors'][name][f'object_recall_new{suffix}']:.3f}"
                     for name in names for run in (crs, placebos)]
            lines.append(f"| {crs['name']} | {crs['library']} | {suffix.strip() or 'all'} | {count[0]} / {count[1]} | "
                         + " | ".join(f"{cells[2 * k]} / {cells[2 * k + 1]}" for k in range(len(names)))
                         + f" | {_placebo_test_cell(placebos, names[0], index - 1 if index else None)} |")
    return lines


def placebo_test(placebos, detector, reference=LACOSMIC_DEFAULT, environment=None):
    """The paired exact test on placebos (`run_placebo`), turned the way a placebo is read: ``b`` placebos only
    ``detector`` flags, ``c`` only ``reference`` flags, ``p`` the one-sided binomial probability that ``detector``
    flags *more* of them (small: it masks significantly more faint stars); ``n``, ``environment`` as for
    `~astro_deepcr.evaluation.significance.compare_detectors`."""
    test = compare_detectors(placebos, reference, detector, environment=environment)
    return {"b": test["c"], "c": test["b"], "n": test["n"], "p": test["p"]}


def _placebo_test_cell(placebos, default, environment):
    """``b/c p=P`` of `placebo_test` against LACosmic at its defaults, or "-" without it."""
    if LACOSMIC_DEFAULT not in placebos["detectors"] or "per_cr" not in placebos:
        return "-"
    return _significance_cell(placebo_test(placebos, default, environment=environment))


def _flag_rates(originals, n_good, header):
    """Each detector's flagged fraction of the good pixels of the uninjected frame, and the out-of-domain alarm's
    verdict on it (`astro_deepcr.detection.flagged_fraction_alarm`: the limit exceeded, or None), with the
    header's exposure time: more flags than cosmic rays can explain in that time are flags on something else."""
    from ..detection import flagged_fraction_alarm
    from ..units import header_exptime

    exptime = header_exptime(header) if header is not None else None
    fractions = {name: float(np.asarray(mask, bool).sum()) / max(n_good, 1) for name, mask in originals.items()}
    return fractions, {name: flagged_fraction_alarm(value, exptime) for name, value in fractions.items()}


#: Columns of `table_lines`: (heading, key, format). Recall is by new flags except where the heading says "plain".
COLUMNS = (("flags", "flags_original", "d"), ("new away", "new_away", "d"), ("CRs", "objects", "d"),
           ("px recall", "pixel_recall", ".3f"), ("recall", "object_recall_new", ".3f"),
           ("near sat.", "object_recall_new near saturated", ".2f"),
           ("bright", "object_recall_new bright source", ".2f"),
           ("elsewhere", "object_recall_new elsewhere", ".3f"), ("<500 e-", "object_recall_new 0-500 e-", ".2f"),
           ("0.5-1k", "object_recall_new 500-1000 e-", ".2f"), ("1-2k", "object_recall_new 1000-2000 e-", ".2f"),
           ("2-5k", "object_recall_new 2000-5000 e-", ".2f"), (">5k", "object_recall_new >= 5000 e-", ".2f"),
           ("<1k e-", "object_recall_new < 1000 e-", ".3f"), ("plain recall", "object_recall", ".3f"))


def _cell(value, spec):
    return "n/a" if isinstance(value, float) and not np.isfinite(value) else format(value, spec)


def _significance_cell(test):
    return f"{test['b']}/{test['c']} p={test['p']:.2g}"


def table_lines(all_results):
    """Markdown table of `run_frame` results (one row per frame, library and detector).

    Recall columns count a cosmic ray found only by a flag the uninjected
    frame lacks ("plain recall": by any flag). ``b/c p``: on a LACosmic row,
    the cosmic rays only deepCR found (b) and only LACosmic found (c), and
    the one-sided exact binomial p that deepCR recalls fewer, overall and
    below 1000 e-. ``bright flags``: flags on the given bright set of the
    uninjected frame.
    """
    with_bright = any("bright_flags" in results for results in all_results)
    heads = ["frame", "detector", "library", *(head for head, _, _ in COLUMNS), "b/c p", "b/c p <1k e-"]
    heads += ["bright flags"] if with_bright else []
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for results in all_results:
        tests = results.get("significance", {})
        for name, rates in results["detectors"].items():
            cells = [results["name"], name, str(results.get("library", ""))]
            cells += [_cell(rates[key], spec) for _, key, spec in COLUMNS]
            test = tests.get(name)
            cells += ["-", "-"] if test is None else [_significance_cell(value) for value in test.values()]
            if with_bright:
                cells.append(str(results.get("bright_flags", {}).get(name, "-")))
            lines.append("| " + " | ".join(cells) + " |")
    return lines

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The held-out check of ``astro-deepcr adapt`` (`astro_deepcr.adapt.adapt_model`): how an adapted model is judged.

`calibrate` sets the adapted model's threshold (its flags on the uninjected training parts equal to the base
model's); `check` runs injection-recovery of the base and the adapted model on the held-out parts, each against
LACosmic at its flags, and the adapted model at the base model's flags (with placebos, faint point sources of
the frame's PSF, where the PSF is given); `check_table` writes the before/after table and the verdict that
decides whether the model is written.
"""

import numpy as np

__all__ = ["calibrate", "check", "check_table", "detector_at_flags", "resolve_check_library", "CHECK_LIBRARY",
           "CHECK_PRECISION", "ADAPTED_AT_BASE_FLAGS"]

#: The precision of the calibration and the check, for the base and the adapted model alike: float32 on every
#: CPU, so that whether a model is written does not depend on the machine (``"auto"`` would run bfloat16 where
#: it is native and validated, and the validation of a model that may be refused is wasted).
CHECK_PRECISION = "float32"
#: The cosmic-ray library of the check: real cosmic rays harvested from the WFPC2 example frame (half of them
#: below 1000 e-), which the fine-tuning never draws from (it draws the ACS/HRC harvest, `add_cosmic_rays`
#: tracks and faint hits).
CHECK_LIBRARY = "wfpc2"
ADAPTED_AT_BASE_FLAGS = "adapted at the base model's flags"


def check(held, specs, library, seed, threads, at_base_flags=None, psfs=None):
    """Injection-recovery of each spec on each held-out part, each against LACosmic at its flags.

    ``at_base_flags(part, n_flags)``: more detectors, given the base model's flags on the uninjected part.
    ``psfs``: each part's PSF or None; where given, the same detectors also meet ``library``'s placebos (faint
    point sources of that PSF with the cosmic rays' charges, `~astro_deepcr.evaluation.libraries.psf_placebos`):
    rows ``(part name, results, placebo results or None)``.
    """
    from .evaluation.injection import deepcr_detector, injection_recovery, lacosmic_detector, match_lacosmic_flags
    from .evaluation.libraries import PLACEBO_FLOOR, psf_placebos

    rows = []
    for part, psf in zip(held, psfs or [None] * len(held)):
        detectors = {name: deepcr_detector(spec, mask=part.bad, threads=threads, precision=CHECK_PRECISION)
                     for name, spec in specs.items()}
        lacosmic = dict(readnoise=part.readnoise, inmask=part.bad | part.saturated)
        flags = {}
        for name in list(specs):
            flags[name] = target = int(detectors[name](part.electrons).sum())
            match = match_lacosmic_flags(part.electrons, target, **lacosmic)
            how = "flags" if match.matched else f"nearest flags, {match.n_flagged} vs {target}"
            detectors[f"LACosmic at {name}'s {how}"] = lacosmic_detector(sigclip=match.sigclip, objlim=match.objlim,
                                                                         **lacosmic)
        if at_base_flags is not None:
            detectors.update(at_base_flags(part, flags["base"]))
        n_trials = int(min(20, max(1, np.ceil(1000 / (500 * part.electrons.size / 1e6)))))
        common = dict(seed=seed, n_trials=n_trials, bad=part.bad, saturated=part.saturated)
        results = injection_recovery(part.electrons, detectors, library=library, **common)
        placebos = None if psf is None else injection_recovery(
            part.electrons, detectors, library=psf_placebos(library, psf.fwhm, psf.beta),
            footprint_floor=PLACEBO_FLOOR, **common)
        rows.append((part.name, results, placebos))
    return rows


def detector_at_flags(spec, threads):
    """``(part, n) ->`` the detector of ``spec`` at the threshold that flags ``n`` pixels of the uninjected ``part``
    (`~astro_deepcr.evaluation.detectors.match_deepcr_flags`, as the calibration of the card's threshold)."""
    from .evaluation.detectors import deepcr_detector, match_deepcr_flags

    def make(part, n):
        threshold = spec.threshold
        if n > 0:
            threshold = match_deepcr_flags(part.electrons, n, spec, mask=part.bad, threads=threads,
                                           precision=CHECK_PRECISION).threshold
        return {ADAPTED_AT_BASE_FLAGS: deepcr_detector(spec, threshold=threshold, mask=part.bad, threads=threads,
                                                       precision=CHECK_PRECISION)}

    return make


def calibrate(base, adapted, train, threads):
    """The adapted model's threshold: the one at which it flags as many pixels of the uninjected training parts
    as the base model at its own (adaptation is to change what the model tells apart, not how much it flags).
    Where the base model flags nothing there, the base model's threshold."""
    from .evaluation.detectors import deepcr_detector, match_deepcr_flags

    images, masks = [region["image"] for region in train], [region["bad"] for region in train]
    n_base = sum(int(deepcr_detector(base, mask=mask, threads=threads, precision=CHECK_PRECISION)(image).sum())
                 for image, mask in zip(images, masks))
    if n_base == 0:
        return {"threshold": base.threshold, "base_flags": 0, "adapted_flags": None, "matched": False,
                "sentence": f"Threshold {base.threshold:g}, {base.name}'s: it flags nothing on the training parts."}
    match = match_deepcr_flags(images, n_base, adapted, mask=masks, threads=threads, precision=CHECK_PRECISION)
    how = "" if match.matched else " (the nearest count reached)"
    return {"threshold": match.threshold, "base_flags": n_base, "adapted_flags": match.n_flagged,
            "matched": match.matched,
            "sentence": f"Threshold {match.threshold:.4g}: the adapted model flags {match.n_flagged} pixels of the "
                        f"uninjected training parts, {base.name} at its {base.threshold:g} {n_base}{how}."}


def resolve_check_library(check_library):
    """The check's stamps: ``check_library`` (a library name, default `CHECK_LIBRARY`, or stamps)."""
    if check_library is None or isinstance(check_library, str):
        from .evaluation.libraries import cosmic_ray_library

        return cosmic_ray_library(check_library or CHECK_LIBRARY)
    return list(check_library)


def check_table(rows, base_name):
    """Markdown table of the check and the verdict (recall by new flags summed over the held-out parts); with
    placebos (`check`'s ``psfs``), each detector's share of them flagged, and their paired count."""
    from .evaluation.significance import discordant_test

    placebo_column = any(placebos is not None for _, _, placebos in rows)
    lines = ["| held-out part | detector | flags | CRs | recall by new flags | < 1000 e- |"
             + (" faint point sources flagged |" if placebo_column else ""),
             "|---|---|---|---|---|---|" + ("---|" if placebo_column else "")]
    found = {kind: {"base": [], ADAPTED_AT_BASE_FLAGS: []} for kind in ("crs", "placebos")}
    for part, results, placebos in rows:
        for detector, rates in results["detectors"].items():
            low = rates.get("object_recall_new < 1000 e-", float("nan"))
            line = (f"| {part} | {detector.replace('base', base_name)} | {rates['flags_original']} | "
                    f"{rates['objects']} | {rates['object_recall_new']:.3f} | {low:.3f} |")
            if placebo_column:
                line += (" - |" if placebos is None else
                         f" {placebos['detectors'][detector]['object_recall_new']:.3f} |")
            lines.append(line)
        for kind, run in (("crs", results), ("placebos", placebos)):
            if run is None:
                continue
            for detector, record in found[kind].items():
                record.append(np.asarray(run["per_cr"]["found_new"][detector], bool))
    base, adapted = (np.concatenate(found["crs"][name]) for name in ("base", ADAPTED_AT_BASE_FLAGS))
    test = discordant_test(adapted, base)  # p: probability that the adapted model is worse by chance alone
    verdict = {"base": round(float(base.mean()), 4), "adapted": round(float(adapted.mean()), 4),
               "adapted_only": test["b"], "base_only": test["c"], "p_adapted_worse": round(test["p"], 4),
               "better": bool(adapted.mean() >= base.mean())}
    lines.append("")
    lines.append(f"At the base model's flags: adapted {verdict['adapted']:.3f}, {base_name} {verdict['base']:.3f} "
                 f"({test['b']} cosmic rays found only by the adapted model, {test['c']} only by {base_name}).")
    if placebo_column:
        base, adapted = (np.concatenate(found["placebos"][name]) for name in ("base", ADAPTED_AT_BASE_FLAGS))
        test = discordant_test(adapted, base)  # p: that the adapted model flags this few of them by chance alone
        verdict["placebos"] = {"base": round(float(base.mean()), 4), "adapted": round(float(adapted.mean()), 4),
                               "adapted_only": test["b"], "base_only": test["c"],
                               "p_adapted_flags_fewer": round(test["p"], 4)}
        lines.append(f"Faint point sources of the frame's PSF (placebos, the check library's charges) at the base "
                     f"model's flags: adapted {adapted.mean():.3f}, {base_name} {base.mean():.3f} flagged "
                     f"({test['b']} only by the adapted model, {test['c']} only by {base_name}; p that the adapted "
                     f"model flags fewer by chance {test['p']:.2g}).")
    return lines, verdict

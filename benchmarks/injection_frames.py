#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Injection-recovery on every real frame available offline: deepCR's default model vs LACosmic (issue #22).

Frames (loaded where their package is installed, never shipped):

``hrc``
    ACS/HRC F606W 47 Tuc, ``j8bt06nyq_flt.fits`` (spherical_geometry), SCI,1 in
    electrons, DQ,1 (saturation: DQ 256 | 2048).
``saao``, ``gmos``
    As ``benchmarks/ground_frames.py`` loads them (SAAO overscan-subtracted and
    trimmed, gain 1.9, read noise 5.0 e-; GMOS-S in electrons, read noise
    4.24 e-). Neither has a saturated pixel (maxima 2853 e- and 4979 e-).
``wfpc2``
    WFPC2 F555W omega Cen, ``u40x010hm_c0f.fits`` (stsci.tools' test data),
    chip 2 (WF2) without its pyramid-shadowed edge (first 50 rows and columns,
    where the row / column medians are 4-20x the sky, and the last row and
    column): 749 x 749 px, DN times ATODGAIN 7 e-/DN; read noise 5.3 e-
    (WFPC2 Instrument Handbook, gain 7; the header has none); saturated:
    at or above 0.95 x (SATURATE 4095 DN - the chip's BIASEVEN 352.5 DN) =
    3555 DN, the dip of the chip's histogram below the A-to-D plateau
    (the c0f is bias-subtracted and flat-fielded; no c1f DQ file is shipped).

Per frame: the model `astro_deepcr.detection.choose_model` picks from the
header, LACosmic (astroscrappy, sigclip 4.5, objlim 5, the frame's read
noise and saturation), and LACosmic at the sigclip whose flag count on the
uninjected frame is nearest deepCR's ("equal flags"). Cosmic rays: 500
per megapixel per trial, trials until about 1000 are injected (at most
20), seed 22. Also: the saturation protection before/after on the HRC
frame (same injection), and the flagged fraction of every electron zoo
model on every frame (the out-of-domain alarm).

::

    python benchmarks/injection_frames.py [--png-dir docs/_static] [--seed 22] [--frames hrc saao gmos wfpc2]
"""

import argparse
import importlib.util
import math
import pathlib
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))

WFPC2 = ("stsci.tools", "tests/data/u40x010hm_c0f.fits")
WFPC2_CHIP = 2
WFPC2_GOOD = (slice(50, -1), slice(50, -1))  # without the pyramid shadow and the last row / column
WFPC2_READNOISE = 5.3  # e-, WFPC2 Instrument Handbook, ATODGAIN 7
TARGET_CRS = 1000


def _package_file(package, relative):
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.exists() else None


def load_hrc():
    from astro_deepcr.datasets import load_hst_example

    example = load_hst_example()
    header = example.primary_header.copy()
    header.update(example.sci_header)
    return {"name": "hrc", "electrons": example.science.astype(np.float64), "dq": example.dq, "header": header,
            "readnoise": 4.71, "satlevel": None}


def load_wfpc2():
    from astropy.io import fits

    path = _package_file(*WFPC2)
    if path is None:
        raise FileNotFoundError("the WFPC2 frame needs stsci.tools with its test data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the GEIS group table's TDISP cards
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            dn = np.asarray(hdul[0].data[WFPC2_CHIP - 1], dtype=np.float64)[WFPC2_GOOD]
            bias = float(hdul[1].data["BIASEVEN"][WFPC2_CHIP - 1])
    gain = float(header["ATODGAIN"])
    satlevel_dn = 0.95 * (float(header["SATURATE"]) - bias)
    return {"name": "wfpc2", "electrons": dn * gain, "dq": None, "header": header, "readnoise": WFPC2_READNOISE,
            "satlevel": satlevel_dn * gain}


def load_ground(name):
    from ground_frames import load_frame

    frame = load_frame(name)
    return {"name": name, "electrons": frame["electrons"], "dq": None, "header": frame["header"],
            "readnoise": frame["readnoise"], "satlevel": None}


LOADERS = {"hrc": load_hrc, "saao": lambda: load_ground("saao"), "gmos": lambda: load_ground("gmos"),
           "wfpc2": load_wfpc2}


def trials_for(frame, density):
    per_trial = density * frame["electrons"].size / 1e6
    return int(min(20, max(1, math.ceil(TARGET_CRS / per_trial))))


def protection_before_after(frame, seed, density):
    """deepCR's default on the HRC frame with and without the protection, on the same injection."""
    from astro_deepcr.bright import rim_flags
    from astro_deepcr.detection import choose_model, pixel_masks
    from astro_deepcr.evaluation.injection import deepcr_detector, injection_recovery

    spec, _ = choose_model(frame["header"])
    image, dq = frame["electrons"], frame["dq"]
    bad, _ = pixel_masks(image.shape, dq=dq)
    saturated = (dq & (256 | 2048)) != 0
    detectors = {f"protect_saturated={flag}": deepcr_detector(spec, dq=dq, protect_saturated=flag)
                 for flag in (False, True)}
    results = injection_recovery(image, detectors, density=density, seed=seed, n_trials=trials_for(frame, density),
                                 bad=bad & ~saturated, saturated=saturated)
    print(f"\nSaturation protection on {frame['name']} ({spec.name}, {results['n_injected']} injected CRs, "
          f"seed {seed}):\n")
    print("| deepCR | flags | rim flags (<= 3 px) | px recall | obj recall | ... by new flags | obj recall near sat. "
          "| ... by new flags | obj recall elsewhere | new away |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rates in results["detectors"].items():
        rim = rim_flags(results["last"]["originals"][name], saturated)
        print(f"| {name} | {rates['flags_original']} | {rim} | {rates['pixel_recall']:.4f} | "
              f"{rates['object_recall']:.4f} | {rates['object_recall_new']:.4f} | "
              f"{rates['object_recall near saturated']:.3f} "
              f"({rates['objects near saturated']}) | {rates['object_recall_new near saturated']:.3f} | "
              f"{rates['object_recall elsewhere']:.4f} | {rates['new_away']} |")
    return results


def protection_candidates(frame, seed, density, n_trials=8):
    """The candidate protections of issue #22 on the same injections of the HRC frame (the table that chose one).

    Each candidate thresholds the same probability (the core's, saturated pixels not filled, or, for
    "fill saturated", filled like DQ 1/2/4/8 pixels) and drops or re-thresholds flags near saturation.
    """
    from astro_deepcr.bright import protect, protection_zone, rim_flags
    from astro_deepcr.detection import choose_model, network_probability, pixel_masks
    from astro_deepcr.evaluation.injection import injection_recovery

    spec, _ = choose_model(frame["header"])
    dq = frame["dq"]
    bad, fill = pixel_masks(frame["electrons"].shape, dq=dq)
    saturated = (dq & (256 | 2048)) != 0
    fill = fill & ~saturated
    cache = {}

    def probability(image, fill_saturated):
        key = (id(image), fill_saturated)  # the cached image is kept alive, so its id is not reused meanwhile
        if key not in cache:
            if len(cache) > 4:
                cache.clear()
            value = network_probability(image.astype(np.float32), fill | saturated if fill_saturated else fill, spec,
                                        good=~bad, device="cpu")
            value[bad] = 0.0
            cache[key] = (image, value)
        return cache[key][1]

    def candidate(radius=0, zone_threshold=None, fill_saturated=False, dropped=0):
        # no flag within ``dropped`` px; within ``radius`` px only above ``zone_threshold``; else a zone of ``radius``
        def run(image):
            found = probability(image, fill_saturated) > spec.threshold
            if zone_threshold is not None:
                zone = protection_zone(saturated, radius)
                found = found & (~zone | (probability(image, fill_saturated) > zone_threshold))
                return (protect(found, None, saturated, spec.threshold, radius=dropped) if dropped else found) & ~bad
            return (protect(found, None, saturated, spec.threshold, radius=radius) if radius else found) & ~bad
        return run

    detectors = {"none": candidate(), **{f"zone {r} px": candidate(r) for r in (1, 2, 3, 4)},
                 "threshold 0.9 within 2 px": candidate(2, 0.9), "threshold 0.99 within 2 px": candidate(2, 0.99),
                 "zone 1 px + threshold 0.9 at 2 px": candidate(2, 0.9, dropped=1),
                 "fill saturated": candidate(fill_saturated=True),
                 "fill saturated + zone 1 px": candidate(1, fill_saturated=True),
                 "fill saturated + zone 2 px": candidate(2, fill_saturated=True)}
    results = injection_recovery(frame["electrons"], detectors, density=density, seed=seed, n_trials=n_trials,
                                 bad=bad & ~saturated, saturated=saturated)
    print(f"\nCandidate protections on {frame['name']} ({spec.name}, {results['n_injected']} CRs, seed {seed}):\n")
    print("| candidate | flags | rim flags | obj recall | by new flags | near sat. (new) | bright | elsewhere |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rates in results["detectors"].items():
        print(f"| {name} | {rates['flags_original']} | {rim_flags(results['last']['originals'][name], saturated)} | "
              f"{rates['object_recall']:.4f} | {rates['object_recall_new']:.4f} | "
              f"{rates['object_recall near saturated']:.3f} ({rates['object_recall_new near saturated']:.3f}) | "
              f"{rates['object_recall bright source']:.3f} | {rates['object_recall elsewhere']:.4f} |")
    return results


def flagged_fractions(frames):
    """Flagged fraction of the good pixels for every electron mask model of the zoo on every frame."""
    from astro_deepcr import list_models
    from astro_deepcr.detection import detect
    from astro_deepcr.zoo import get_model

    models = [name for name in list_models("mask") if get_model(name, kind="mask").units == "electron"]
    print("\nFlagged fraction of the good pixels (%), every electron mask model, uninjected frames:\n")
    print("| model | " + " | ".join(frame["name"] for frame in frames) + " |")
    print("|---|" + "---|" * len(frames))
    table = {}
    for model in models:
        cells = []
        for frame in frames:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the alarm itself: we measure it here
                found = detect(frame["electrons"], spec=model, dq=frame["dq"], satlevel=frame["satlevel"],
                               device="cpu", progress=False)
            fraction = found.cr_mask.sum() / max(1, (~found.bad).sum())
            table[(model, frame["name"])] = (float(fraction), int(found.cr_mask.sum()))
            cells.append(f"{100 * fraction:.2f} ({int(found.cr_mask.sum())})")
        print(f"| {model} | " + " | ".join(cells) + " |")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--png-dir", help="write injection_<frame>.png here")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--density", type=float, default=500.0, help="CRs per megapixel per trial")
    parser.add_argument("--frames", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--no-fractions", action="store_true", help="skip the flagged fraction of every model")
    parser.add_argument("--candidates", action="store_true",
                        help="only the table of candidate protections on the HRC frame (8 trials)")
    args = parser.parse_args(argv)
    from astro_deepcr.evaluation.injection import plot_injection, run_frame, table_lines

    start = time.perf_counter()
    if args.candidates:
        return protection_candidates(load_hrc(), args.seed, args.density)
    if args.png_dir:
        pathlib.Path(args.png_dir).mkdir(parents=True, exist_ok=True)
    frames, all_results = [], []
    for name in args.frames:
        try:
            frame = LOADERS[name]()
        except (FileNotFoundError, ImportError) as exc:
            print(f"{name}: skipped ({exc})")
            continue
        frames.append(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-domain model choice, measured below
            results = run_frame(frame, seed=args.seed, density=args.density, n_trials=trials_for(frame, args.density))
        all_results.append(results)
        print(f"{name}: {frame['electrons'].shape[1]}x{frame['electrons'].shape[0]} px, model {results['model']} "
              f"({results['reason']}), {int(results['saturated'].sum())} saturated px, {results['n_injected']} "
              f"CRs in {results['n_trials']} trials, equal-flags sigclip {results['sigclip']:.3g} "
              f"({time.perf_counter() - start:.0f} s)")
        if args.png_dir:
            plot_injection(results, pathlib.Path(args.png_dir) / f"injection_{name}.png")
    print()
    print("\n".join(table_lines(all_results)))
    hrc = next((frame for frame in frames if frame["name"] == "hrc"), None)
    if hrc is not None:
        protection_before_after(hrc, args.seed, args.density)
    if not args.no_fractions:
        flagged_fractions(frames)
    print(f"\n{time.perf_counter() - start:.0f} s")
    return all_results


if __name__ == "__main__":
    main()

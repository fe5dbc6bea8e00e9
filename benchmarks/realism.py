# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Realism check of the simulator (issue #16, must-show 3): the published ACS-WFC deepCR model against LACosmic.

For each CR source (synthetic tracks; real shapes harvested from the ACS/HRC
exposure without LACosmic, `astro_deepcr.training.crlibrary`) and each field
(extragalactic, globular, resolved), one ``--size`` x ``--size`` exposure of
500 s is simulated with ``realism=True`` (full TinyTim PSF of ``--filter``
varying across the chip, hot pixels, bad columns, CTE trails, saturation
bleeding, sky gradient; `astro_deepcr.training.simulate`). TPR at FPR 0.05 %
and 0.5 % (exact, no interpolation: the best operating point with FPR <= the
target) is measured against three truth masks: the paper-style labels
(``truth="paper"``: S/N 5 / 1.5, grown by one pixel), the same without the
growth (``"paper-grow0"``: drizzlepac applies ``driz_cr_grow = 1`` as no
growth) and CR charge above one sigma of the read noise (``"charge"``), over
the pixels with DQ = 0 (hot, bad-column and saturated pixels are excluded
from the counts, as DQ-flagged pixels are in real data).
LACosmic is astroscrappy with the paper's objlim per field and a sweep of
sigclip. Nothing here is tuned to the result.

Run::

    python benchmarks/realism.py --out realism.json
"""

import argparse
import json
import time

import numpy as np

from astro_deepcr import DeepCR
from astro_deepcr.evaluation.metrics import mask_scores, roc_curve, tpr_at_fpr
from astro_deepcr.evaluation.report import OBJLIM, SIGCLIPS
from astro_deepcr.training.simulate import harvest_cosmic_rays, simulate_exposure, truth_mask

FIELDS = ("extragalactic", "globular", "resolved")
FPRS = (0.0005, 0.005)


def lacosmic_points(image, read_noise, objlim):
    import astroscrappy

    return [(sigclip, astroscrappy.detect_cosmics(image, sigclip=sigclip, objlim=objlim, gain=1.0, readnoise=read_noise,
                                                  satlevel=np.inf, verbose=False)[0]) for sigclip in SIGCLIPS]


def measure(exposure, field, model):
    valid = exposure["dq"] == 0
    bad = (exposure["dq"] & 4) != 0
    truths = {"paper": exposure["cr_mask"],
              "paper-grow0": truth_mask(exposure["cr_charge"], exposure["expected"], exposure["read_noise"], "paper",
                                        grow=0) & ~bad,
              "charge": truth_mask(exposure["cr_charge"], exposure["expected"], exposure["read_noise"], "charge")}
    probability = model.probability(exposure["image"])
    found = lacosmic_points(exposure["image"], exposure["read_noise"], OBJLIM[field])
    rows = {}
    for name, truth in truths.items():
        fpr, tpr, thresholds = roc_curve(probability, truth, valid=valid)
        row = {"cr_pixels": int((truth & valid).sum()), "ACS-WFC": {}, "LACosmic": {}}
        points = [mask_scores(mask, truth, valid) for _, mask in found]
        # flagging nothing (FPR 0, TPR 0) is always an operating point, as on any ROC curve
        lac_fpr = np.array([0.0] + [p.fpr for p in points])
        lac_tpr = np.array([0.0] + [p.recall for p in points])
        for target in FPRS:
            row["ACS-WFC"][target] = tpr_at_fpr(fpr, tpr, target, thresholds)
            row["LACosmic"][target] = tpr_at_fpr(lac_fpr, lac_tpr, target, [np.inf] + [s for s, _ in found])
        rows[name] = row
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--out", default="realism.json")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--filter", default="f606w", choices=("f435w", "f606w", "f814w"))
    parser.add_argument("--seed", type=int, default=10_000)
    parser.add_argument("--sources", nargs="+", default=["synthetic", "harvested"],
                        choices=["synthetic", "harvested", "harvested-lacosmic"])
    args = parser.parse_args(argv)
    start = time.monotonic()
    model = DeepCR("ACS-WFC", device="cpu", progress=False)
    results = {"args": vars(args), "table": {}}
    for source in args.sources:
        library = None
        if source == "harvested":
            library = harvest_cosmic_rays()
        elif source == "harvested-lacosmic":
            library = harvest_cosmic_rays(method="lacosmic")
        results["table"][source] = {}
        for k, field in enumerate(FIELDS):
            exposure = simulate_exposure((args.size, args.size), field, 500.0, sky=60.0, seed=args.seed + k,
                                         realism=True, filter_name=args.filter, library=library)
            rows = measure(exposure, field, model)
            results["table"][source][field] = rows
            for truth, row in rows.items():
                print(f"{source:18s} {field:14s} truth={truth:11s} " + "  ".join(
                    f"FPR {100 * f:.2f}%: ACS-WFC {row['ACS-WFC'][f][0]:.3f} LACosmic {row['LACosmic'][f][0]:.3f}"
                    for f in FPRS), flush=True)
    results["elapsed_s"] = time.monotonic() - start
    with open(args.out, "w") as stream:
        json.dump(results, stream, indent=1, default=str)
    print(f"{results['elapsed_s']:.0f} s; written to {args.out}")
    return results


if __name__ == "__main__":
    main()

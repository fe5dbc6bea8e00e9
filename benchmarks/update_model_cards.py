#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Measure every zoo model on the simulated test set and write the figures into
the ``metrics`` of ``astro_deepcr_models/models.json`` and the docs table
``docs/model_zoo_table.csv``::

    python benchmarks/update_model_cards.py            # 3 fields x 2 images of 512x512, seed 100

Data: astro_deepcr.training.simulate (ACS/WFC-like, 500 s, sky 60 e-, read
noise 4 e-), i.e. simulated, not real HST data. WFC3-UVIS and decam are
measured on it too, which is outside their domain (other detectors; decam
expects ADU).
"""

import argparse
import csv
import json
import pathlib
import sys

import numpy as np

from astro_deepcr import DeepCR, list_models
from astro_deepcr.evaluation.metrics import inpaint_mse, roc_curve, tpr_at_fpr
from astro_deepcr.evaluation.report import OBJLIM, make_test_set
from astro_deepcr.zoo import get_model

ROOT = pathlib.Path(__file__).resolve().parents[1]


def measure(test_set, data_note):
    metrics = {}
    fields = list(dict.fromkeys(item["field"] for item in test_set))
    for name in list_models("mask"):
        spec = get_model(name)
        model = DeepCR(name, device="cpu", progress=False)
        entry = {"data": data_note}
        advice = []
        for field in fields:
            items = [item for item in test_set if item["field"] == field]
            truth = np.stack([item["cr_mask"] for item in items])
            score = np.stack([model.probability(item["image"]) for item in items])
            fpr, tpr, thresholds = roc_curve(score, truth)
            for target, label in ((0.0005, "0.05%"), (0.005, "0.5%")):
                value, threshold = tpr_at_fpr(fpr, tpr, target, thresholds)
                entry[f"{field} TPR@FPR{label}"] = round(value, 4)
                if target == 0.005:
                    advice.append(threshold)
            default = spec.threshold if spec.threshold is not None else 0.5
            predicted = score > default
            entry[f"{field} TPR/FPR@{default:g}"] = (f"{(predicted & truth).sum() / truth.sum():.4f} / "
                                                     f"{(predicted & ~truth).sum() / (~truth).sum():.2e}")
        finite = [value for value in advice if np.isfinite(value)]
        entry["threshold for FPR<=0.5% (median over fields)"] = round(float(np.median(finite)), 3) if finite else None
        metrics[name] = entry
    detector = DeepCR("ACS-WFC", device="cpu", progress=False)
    for name in list_models("inpaint"):
        entry = {"data": data_note}
        for field in fields:
            items = [item for item in test_set if item["field"] == field]
            baseline = np.mean([inpaint_mse(detector.inpaint(i["image"], i["cr_mask"], method="medmask"), i["clean"],
                                            i["cr_mask"]) for i in items])
            mse = np.mean([inpaint_mse(detector.inpaint(i["image"], i["cr_mask"], method=name), i["clean"],
                                       i["cr_mask"]) for i in items])
            entry[f"{field} MSE (e-^2) [medmask]"] = f"{mse:.4g} [{baseline:.4g}]"
        metrics[name] = entry
    return metrics


def write(metrics):
    index_path = ROOT / "astro_deepcr_models" / "models.json"
    index = json.loads(index_path.read_text())
    for entry in index["models"]:
        entry["metrics"] = metrics.get(entry["name"], entry.get("metrics", {}))
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    with open(ROOT / "docs" / "model_zoo_table.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["model", "kind", "arch", "instrument", "units", "input", "default threshold",
                         "measured (simulated ACS/WFC-like data)"])
        for entry in index["models"]:
            spec = get_model(entry["name"])
            summary = "; ".join(f"{k}: {v}" for k, v in entry["metrics"].items() if k != "data")
            writer.writerow([spec.name, spec.kind, spec.arch, " ".join(filter(None, [spec.instrument, spec.detector])),
                             spec.units, "mean/std" if spec.normalisation == "meanstd" else f"/ {spec.scale:g}",
                             "" if spec.threshold is None else spec.threshold, summary])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-images", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args(argv)
    test_set = make_test_set(tuple(OBJLIM), args.n_images, args.size, seed=args.seed)
    note = (f"simulated ACS/WFC-like exposures (astro_deepcr.training.simulate): {', '.join(OBJLIM)}; "
            f"{args.n_images} x {args.size}x{args.size} px per field, 500 s, sky 60 e-, read noise 4 e-, "
            f"seed {args.seed}")
    metrics = measure(test_set, note)
    write(metrics)
    json.dump(metrics, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Measure every zoo model on the simulated test set and write the figures into
the ``metrics`` of ``astro_deepcr_models/models.json`` and the docs table
``docs/model_zoo_table.csv``::

    python benchmarks/update_model_cards.py            # 3 fields x 2 images of 512x512, seed 100

Data: astro_deepcr.training.simulate (ACS/WFC-like, 500 s, sky 60 e-, read
noise 4 e-), i.e. simulated, not real HST data; the data note of every card
records the git commit of the simulator it ran on. TPR at FPR 0.05 % / 0.5 %
is exact (`astro_deepcr.evaluation.metrics`: every distinct probability is a
threshold). WFC3-UVIS is measured on it too, which is outside its domain
(another detector). ``decam`` is marked unmeasured: it expects ADU from a
ground-based camera (0.263" pixels, seeing-limited PSF), and converting the
HST-like electron images to ADU with some gain would not make them DECam data.

Only the ``metrics`` key of each card is written, by load-modify-write of the
file at the end of the run (other keys may be edited by others meanwhile).
"""

import argparse
import csv
import json
import pathlib
import subprocess
import sys

import numpy as np

from astro_deepcr import DeepCR, list_models
from astro_deepcr.evaluation.metrics import inpaint_mse, mask_scores, roc_curve, tpr_at_fpr
from astro_deepcr.evaluation.report import OBJLIM, make_test_set
from astro_deepcr.zoo import get_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: models the simulated ACS/WFC-like set cannot measure, and why
UNMEASURED = {"decam": ("unmeasured on simulated data: the model expects ADU from DECam (ground-based, 0.263\" "
                        "pixels, seeing-limited PSF); the simulator makes HST ACS/WFC-like electron images")}
SIMULATED_NOTE = "simulated data"


def simulator_state():
    """``commit <sha>`` of the simulator module, ``+ uncommitted changes`` when its file differs from it."""
    def git(*args):
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=10", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "astro_deepcr/training/simulate.py")
    return f"commit {commit}" + (" + uncommitted changes to training/simulate.py" if dirty else "")


def measure(test_set, data_note):
    metrics = {}
    fields = list(dict.fromkeys(item["field"] for item in test_set))
    for name in list_models("mask"):
        if name in UNMEASURED:
            metrics[name] = {"data": UNMEASURED[name]}
            continue
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
            recall, false_positive_rate, _ = mask_scores(score > default, truth)
            entry[f"{field} TPR/FPR@{default:g}"] = f"{recall:.4f} / {false_positive_rate:.2e}"
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


def _ours(key):
    """Whether a ``metrics`` key is one this script writes (others, e.g. ``ground_frames``, belong to others)."""
    return key == "data" or key.startswith(tuple(OBJLIM)) or key.startswith("threshold for FPR")


def write(metrics):
    """Load the index now, replace this script's keys in ``metrics`` of the measured cards, write it back at once.

    Keys other scripts wrote into a card's ``metrics`` (e.g. ``ground_frames``) are kept.
    """
    index_path = ROOT / "astro_deepcr_models" / "models.json"
    text = index_path.read_text()
    second = text.splitlines()[1] if len(text.splitlines()) > 1 else "  "
    indent = len(second) - len(second.lstrip()) or 2  # keep the file's own indentation
    index = json.loads(text)
    for entry in index["models"]:
        if entry["name"] in metrics:
            kept = {key: value for key, value in entry.get("metrics", {}).items() if not _ours(key)}
            entry["metrics"] = {**metrics[entry["name"]], **kept}
    index_path.write_text(json.dumps(index, indent=indent) + "\n")
    with open(ROOT / "docs" / "model_zoo_table.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["model", "kind", "arch", "instrument", "units", "input", "default threshold",
                         "measured (simulated ACS/WFC-like data)"])
        for entry in index["models"]:
            spec = get_model(entry["name"])
            measured = {key: value for key, value in entry.get("metrics", {}).items() if _ours(key)}
            summary = "; ".join(f"{k}: {v}" for k, v in measured.items() if k != "data")
            if not summary:
                summary = measured.get("data", "unmeasured")
            writer.writerow([spec.name, spec.kind, spec.arch, " ".join(filter(None, [spec.instrument, spec.detector])),
                             spec.units, "mean/std" if spec.normalisation == "meanstd" else f"/ {spec.scale:g}",
                             "" if spec.threshold is None else spec.threshold, summary])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-images", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args(argv)
    state = simulator_state()
    test_set = make_test_set(tuple(OBJLIM), args.n_images, args.size, seed=args.seed)
    note = (f"{SIMULATED_NOTE}: ACS/WFC-like exposures (astro_deepcr.training.simulate, {state}): "
            f"{', '.join(OBJLIM)}; {args.n_images} x {args.size}x{args.size} px per field, 500 s, sky 60 e-, "
            f"read noise 4 e-, seed {args.seed}; TPR at FPR exact (every distinct probability a threshold)")
    metrics = measure(test_set, note)
    write(metrics)
    json.dump(metrics, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

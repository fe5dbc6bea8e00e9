# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ROC figure of the "Choosing a threshold" page (``docs/_static/demo_roc.png``).

Two simulated 512x512 ACS/WFC-like exposures per field type (1000 s, seeds 10
and 11; `astro_deepcr.training.simulate.simulate_exposure`), scored against
the injected truth: the ``ACS-WFC`` and ``ACS-WFC-F606W-2-4`` models (thresholds
0.1, 0.5 and 0.9 marked) and LACosmic (astroscrappy, objlim 5, sigclip 3 to 12)::

    python benchmarks/threshold_roc.py [--out docs/_static/demo_roc.png]

Prints the TPR / FPR at the marked thresholds.
"""

import argparse

import numpy as np

from astro_deepcr import DeepCR
from astro_deepcr.evaluation.metrics import mask_scores, roc_curve
from astro_deepcr.evaluation.plots import _pyplot
from astro_deepcr.training.simulate import simulate_exposure

FIELDS = ("extragalactic", "globular", "resolved")
MODELS = ("ACS-WFC", "ACS-WFC-F606W-2-4")
THRESHOLDS = (0.1, 0.5, 0.9)
SIGCLIPS = (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", default="demo_roc.png")
    args = parser.parse_args(argv)
    import astroscrappy

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(FIELDS), figsize=(4.2 * len(FIELDS), 3.8), squeeze=False)
    for ax, field in zip(axes[0], FIELDS):
        exposures = [simulate_exposure((512, 512), field, exptime=1000.0, seed=seed) for seed in (10, 11)]
        images = np.stack([e["image"] for e in exposures])
        truth = np.stack([e["cr_mask"] for e in exposures])
        for name in MODELS:
            detector = DeepCR(name, device="cpu", progress=False)
            probability = np.stack([detector.probability(image) for image in images])
            fpr, tpr, _ = roc_curve(probability, truth)
            keep = fpr > 0
            line, = ax.plot(fpr[keep] * 100, tpr[keep] * 100, label=name)
            for threshold in THRESHOLDS:
                t, f, _ = mask_scores(probability > threshold, truth)
                ax.plot(max(f, 1e-5) * 100, t * 100, "o", color=line.get_color(), ms=4)
                ax.annotate(f"{threshold}", (max(f, 1e-5) * 100, t * 100), fontsize=7, xytext=(3, -8),
                            textcoords="offset points")
                print(f"{field:14s} {name:18s} threshold {threshold}: TPR {t:.3f} FPR {f:.2e}")
        points = []
        for sigclip in SIGCLIPS:
            found = np.stack([astroscrappy.detect_cosmics(image, sigclip=sigclip, objlim=5.0, gain=1.0,
                                                          readnoise=exposure["read_noise"], satlevel=np.inf,
                                                          verbose=False)[0]
                              for image, exposure in zip(images, exposures, strict=True)])
            points.append(mask_scores(found, truth))
            print(f"{field:14s} LACosmic sigclip {sigclip:4.1f}: TPR {points[-1][0]:.3f} FPR {points[-1][1]:.2e}")
        ax.plot([max(p.fpr, 1e-5) * 100 for p in points], [p.recall * 100 for p in points], "o--", ms=3,
                label="LACosmic (objlim 5)")
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 10)
        ax.set_ylim(0, 100)
        ax.set_xlabel("false positive rate (%)")
        ax.set_ylabel("true positive rate (%)")
        ax.set_title(f"{field}, 1000 s")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Regenerate ``tests/data/golden_outputs.npz`` from the reference implementation, deepCR 0.3.1::

    python benchmarks/make_golden.py [--out tests/data/golden_outputs.npz]

The golden outputs are deepCR 0.3.1's own (its networks, its ``.pth`` files,
its code path: ``clean(binary=False, segment=False)`` and ``inpaint``), not
this package's, so ``tests/test_deepcr.py::test_golden_outputs`` checks this
package against the published implementation with stored tensors and needs
no deepCR at test time. Contents (float32 unless stated):

* ``image``: 64x96 px, electrons, built here from a seeded numpy generator
  (sky 60 e- with Poisson + 4 e- read noise, five Gaussian stars one of them
  saturated-bright, three CR tracks): independent of the simulator, so the
  file does not change when the simulator does.
* ``prob_<model>``: CR probability of ``ACS-WFC``, ``ACS-WFC-F606W-2-4``,
  ``WFC3-UVIS`` from deepCR 0.3.1.
* ``crmask`` (bool): ``prob_ACS-WFC > 0.5``.
* ``inpaint_ACS-WFC-F606W-2-32``: deepCR 0.3.1's inpainting of ``image``
  over ``crmask`` (paired with a scale-100 mask model, as this package scales
  the inpainting input by the inpainting model's own scale).
"""

import argparse
import pathlib
import sys
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
MASK_MODELS = ("ACS-WFC", "ACS-WFC-F606W-2-4", "WFC3-UVIS")
INPAINT_MODEL = "ACS-WFC-F606W-2-32"


def make_image(seed=2019, shape=(64, 96)):
    """A small electron image with stars and CR tracks, from numpy alone."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    expected = np.full(shape, 60.0)
    for (cy, cx, flux, sigma) in [(12.3, 20.7, 3e4, 1.1), (40.6, 70.2, 8e4, 1.3), (50.1, 15.4, 5e3, 1.0),
                                  (25.8, 55.5, 1.5e3, 1.2), (30.2, 85.9, 2e6, 1.2)]:
        expected += flux / (2 * np.pi * sigma**2) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    image = rng.poisson(expected).astype(np.float64) + rng.normal(0, 4.0, shape)
    image[8, 40:47] += 1200.0  # a horizontal track
    image[33:36, 30] += 900.0  # a vertical one
    image[55, 60] += 2500.0  # a single-pixel hit
    image[56, 61] += 600.0
    return image.astype(np.float32)


def reference_outputs(image):
    """deepCR 0.3.1's probabilities and inpainting for ``image``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import deepCR
        import learned_models
        from deepCR.unet_batchnorm import UNet2BatchNorm, UNet2SigmoidBatchNorm

    # deepCR 0.3.1 ships the 2-4 weights but does not list them; register them with their published architecture
    learned_models.mask_dict.setdefault("ACS-WFC-F606W-2-4", [UNet2SigmoidBatchNorm, (1, 1, 4), 100])
    learned_models.inpaint_dict.setdefault(INPAINT_MODEL, [UNet2BatchNorm, (2, 1, 32)])
    outputs = {"image": image}
    for name in MASK_MODELS:
        model = deepCR.deepCR(mask=name, device="CPU")
        outputs[f"prob_{name}"] = np.asarray(model.clean(image, binary=False, segment=False, inpaint=False),
                                             np.float32)
    outputs["crmask"] = outputs["prob_ACS-WFC"] > 0.5
    inpainter = deepCR.deepCR(mask="ACS-WFC-F606W-2-4", inpaint=INPAINT_MODEL, device="CPU")
    outputs[f"inpaint_{INPAINT_MODEL}"] = np.asarray(
        inpainter.inpaint(image, outputs["crmask"].astype(np.float32)), np.float32)
    return outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "tests" / "data" / "golden_outputs.npz"))
    args = parser.parse_args(argv)
    outputs = reference_outputs(make_image())
    np.savez_compressed(args.out, **outputs)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in outputs.items())
          + f"; {int(outputs['crmask'].sum())} CR pixels at 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())

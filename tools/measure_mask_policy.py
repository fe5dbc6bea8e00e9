# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""How a boolean mask should enter detection: measured on the real ACS/HRC frame (docs/architecture.rst).

A ccdproc user opens an HST ``_flt`` with ``CCDData.read(flt, hdu=1, hdu_mask="DQ")`` and gets
``mask = DQ != 0`` without the bits. This compares the cosmic rays (on DQ == 0 pixels) that three
treatments of that boolean mask give with those of ``astro-deepcr flag`` (DQ bits)::

    python tools/measure_mask_policy.py

The saturation protection is off in every variant: this isolates what the network sees.
"""

import argparse
import warnings

import numpy as np
from astropy.io import fits

from astro_deepcr.datasets import hst_example_path
from astro_deepcr.detection import detect, network_probability

SETTINGS = dict(spec="ACS-WFC", device="cpu", precision="float32")


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    with fits.open(hst_example_path()) as hdul:
        science = hdul["SCI", 1].data.astype(np.float32)
        dq = hdul["DQ", 1].data.astype(np.int64)
    boolean, good = dq != 0, dq == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flag = detect(science, dq=dq, protect_saturated=False, **SETTINGS)
    reference = flag.cr_mask & good
    print(f"flag (DQ bits): {reference.sum()} CR px on DQ == 0")
    spec = flag.spec
    variants = {"masked pixels filled (0.2.0)": boolean, "masked pixels not filled (now)": None,
                "filled except those >= 65535 e-": boolean & (science < 65535)}
    for name, fill in variants.items():
        if fill is None:
            found = detect(science, mask=boolean, protect_saturated=False, **SETTINGS).cr_mask
        else:  # the network sees the filled image; the rest of the core as for the boolean mask
            probability = network_probability(science, fill, spec, good=~boolean, device="cpu", precision="float32")
            found = probability > flag.threshold
        found = found & good
        differ = int((found ^ reference).sum())
        print(f"{name:<36} {found.sum():5d} CR px, {differ:5d} differ from flag "
              f"({100 * differ / max(reference.sum(), 1):.1f} %)")
    compare_fill_bits(science, dq)


def compare_fill_bits(science, dq, choices=("1,2,4,8", "1,2,4", 0), seed=0, n_trials=2):
    """Recall of injected real cosmic rays and flags on the frame for ``fill_bits`` choices (flag's route)."""
    from astro_deepcr.dq import dq_masks, saturated_dq
    from astro_deepcr.evaluation.injection import injection_recovery

    def detector(fill_bits):
        return lambda image: detect(image, dq=dq, fill_bits=fill_bits, exptime=60.0, **SETTINGS).cr_mask

    bad, _ = dq_masks(dq)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = injection_recovery(science, {f"fill_bits {c!r}": detector(c) for c in choices}, seed=seed,
                                     bad=bad, saturated=saturated_dq(dq), n_trials=n_trials)
    for name, figures in results["detectors"].items():
        print(f"{name:<22} recall {figures['pixel_recall']:.4f} (pixels), {figures['object_recall']:.4f} "
              f"(objects), {figures['flags_original']} flags on the frame, {figures['new_away']} new away")


if __name__ == "__main__":
    main()

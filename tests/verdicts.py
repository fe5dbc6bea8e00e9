# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""bfloat16 verdicts provided by a test (`astro_deepcr.bf16_check`): what "auto" decides from, without measuring."""

from astro_deepcr import bf16_check, engine, zoo


def figures(hrc_flipped=40, passed=True):
    """A validation result as `astro_deepcr.bf16_check.validate` returns it (4000 HRC CR pixels)."""
    return {"hrc_flipped_pixels": hrc_flipped, "hrc_cr_pixels": 4000, "hrc_flipped_fraction": hrc_flipped / 4000,
            "simulated_flipped_pixels": 5, "simulated_cr_pixels": 10000, "simulated_flipped_fraction": 0.0005,
            "tpr@0.0005_float32": 0.7, "tpr@0.0005_bfloat16": 0.7, "tpr@0.005_float32": 0.8,
            "tpr@0.005_bfloat16": 0.8, "real_frame": True, "passed": passed, "seconds": 1.0, "date": "2026-12-04"}


def provide_verdict(model, backend, passed):
    """Store a verdict for ``model`` (name or spec) and ``backend`` on this CPU as if measured here;
    returns its path."""
    key = bf16_check.verdict_key(zoo.get_model(model), backend, engine.resolve_device("cpu"))
    return bf16_check.store_verdict(key, figures(40 if passed else 90, passed))

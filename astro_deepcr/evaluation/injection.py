# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Injection-recovery: how complete a cosmic-ray mask is on your own frame (the public entry point).

A real frame has no labels. `inject_cosmic_rays` adds real cosmic rays of
known footprint to it (its stars, noise, saturation and DQ stay) and
`injection_recovery` runs each detector before and after and counts what it
recovers: pixels and objects, by injected charge, near saturated pixels, on
bright sources and elsewhere, and the new flags that appear away from the
injected cosmic rays. A cosmic ray counts as recovered when a flag the
uninjected frame lacks covers one of its pixels ("by new flags"; the plain
count, any flag, is kept and labelled "plain").

This module gathers the public names of the modules that do the work:

- `astro_deepcr.evaluation.recovery`: injection and scoring;
- `astro_deepcr.evaluation.detectors`: deepCR and LACosmic as detectors, and
  LACosmic's flag count matched to deepCR's (`match_lacosmic_flags`, which
  says when it cannot reach it);
- `astro_deepcr.evaluation.significance`: the paired exact binomial test of
  two detectors on the same cosmic rays;
- `astro_deepcr.evaluation.libraries`: the cosmic-ray libraries, by name;
- `astro_deepcr.evaluation.frames`: `read_frame`, `run_frame`, `table_lines`,
  the placebo control `run_placebo`, `placebo_lines`, and LACosmic tuned with
  hindsight (`run_frame` with ``tune_objlims``, `tuned_lacosmic`, `tuned_lines`).

Each injected cosmic ray is a stamp drawn at random, rotated by a multiple
of 90 degrees and flipped at random, placed at a random position with its
whole box inside the frame, never touching another injected one (so that
each keeps its identity), and added in electrons (divided by ``gain`` for a
frame in ADU). Pixels of ``avoid`` (bad or saturated pixels: a saturated
pixel stays saturated when a cosmic ray hits it) are not changed. The
truth is exact: a pixel belongs to an injected cosmic ray if and only if
the injection raised its value.

``astro-deepcr evaluate --inject FILE ...`` runs `run_frame` on FITS files.
"""

from .detectors import TUNING_OBJLIMS, FlagMatch, deepcr_detector, lacosmic_detector, match_lacosmic_flags
from .frames import (
    COLUMNS,
    placebo_lines,
    placebo_test,
    read_frame,
    run_frame,
    run_placebo,
    table_lines,
    training_claims,
    tuned_lacosmic,
    tuned_lines,
)
from .libraries import (
    LIBRARIES,
    cosmic_ray_library,
    library_stats,
    psf_placebos,
    register_frame_library,
    star_profiles,
)
from .plots import plot_injection
from .recovery import (
    BRIGHT_SIGMA,
    CHARGE_BINS,
    DENSITY,
    ENVIRONMENTS,
    LOW_CHARGE_BIN,
    NEAR_SATURATED,
    SEPARATION,
    _bin_name,
    _rates,
    bin_name,
    environment,
    found_per_cosmic_ray,
    inject_cosmic_rays,
    injection_recovery,
    score_mask,
)
from .significance import LOW_CHARGE, compare_detectors, discordant_test

__all__ = ["DENSITY", "CHARGE_BINS", "LOW_CHARGE_BIN", "LOW_CHARGE", "ENVIRONMENTS", "NEAR_SATURATED", "BRIGHT_SIGMA",
           "SEPARATION", "COLUMNS", "LIBRARIES", "cosmic_ray_library", "library_stats", "register_frame_library",
           "psf_placebos", "star_profiles",
           "inject_cosmic_rays", "environment", "found_per_cosmic_ray", "score_mask", "injection_recovery", "bin_name",
           "deepcr_detector", "lacosmic_detector", "FlagMatch", "match_lacosmic_flags", "TUNING_OBJLIMS",
           "discordant_test", "compare_detectors", "read_frame", "run_frame", "run_placebo", "placebo_lines",
           "placebo_test", "tuned_lacosmic", "tuned_lines", "training_claims", "table_lines", "plot_injection"]

_private = (_bin_name, _rates)  # still importable from here for callers of the former single module

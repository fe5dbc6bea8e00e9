# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The faint-star grid (``benchmarks/faint_star_grid.py``): simulated star fields by seeing and sky, cosmic rays
and their placebos through the same doors as the real frames (issue #27)."""

import argparse

import numpy as np
import pytest

pytest.importorskip("astroscrappy")


def test_star_field_is_seeded_and_has_its_sky_noise_and_stars(benchmark_script):
    grid = benchmark_script("faint_star_grid")
    frame = grid.star_field(2.7, 344.0, seed=5)
    np.testing.assert_array_equal(frame["electrons"], grid.star_field(2.7, 344.0, seed=5)["electrons"])
    assert not np.array_equal(frame["electrons"], grid.star_field(2.7, 344.0, seed=6)["electrons"])
    image = frame["electrons"]
    assert image.shape == grid.SHAPE and frame["readnoise"] == grid.READNOISE
    assert np.median(image) == pytest.approx(344.0, abs=3.0)
    low = image[image < np.percentile(image, 50)]  # the sky's lower half: noise of sqrt(344 + 25)
    assert np.median(image) - np.percentile(low, 100 * (0.5 - 0.3413) / 0.5) == pytest.approx(np.sqrt(369), rel=0.1)
    assert image.max() > 1e4  # the power law's bright end (1e6 e- at most, about 260 stars)


def test_on_a_sharp_bright_sky_the_default_masks_faint_stars_that_lacosmic_leaves(benchmark_script):
    """One cell of the grid, one trial (measured here, bfloat16: ground-v2 flags 17 of 131 faint point sources of the
    ``wfpc2`` charges, LACosmic at its defaults 4, p = 0.0012, and recalls 0.893 of the cosmic rays against 0.840;
    four trials: 0.109 / 0.021 of the placebos, 0.906 / 0.863 of the cosmic rays)."""
    from astro_deepcr.evaluation.significance import compare_detectors

    grid = benchmark_script("faint_star_grid")
    args = argparse.Namespace(model=None, seed=22, trials=1)
    crs, placebos = grid.cell(1.8, 3000.0, "wfpc2", args)
    default, lacosmic = crs["default"], "LACosmic (sigclip 4.5)"
    assert default == "deepCR ground-v2" and placebos["n_injected"] == crs["n_injected"] == 131
    assert placebos["detectors"][default]["object_recall_new"] > 0.08
    assert placebos["detectors"][lacosmic]["object_recall_new"] < 0.06
    assert compare_detectors(placebos, lacosmic, default)["p"] < 0.02  # LACosmic flags significantly fewer
    assert crs["detectors"][default]["object_recall_new"] > crs["detectors"][lacosmic]["object_recall_new"]
    line = grid.grid_lines([(crs, placebos)])[2]
    assert line.startswith("| fwhm 1.8 sky 3000 | wfpc2 | ") and line.count("|") == 10
    # paired against itself: nothing discordant; against other injections: refused
    assert grid.paired_lines([(crs, placebos)], [(crs, placebos)])[2].endswith("| 0/0 p=1 | 0/0 p=1 |")
    other = dict(crs, per_cr=dict(crs["per_cr"], charge=crs["per_cr"]["charge"] + 1.0))
    with pytest.raises(RuntimeError, match="different cosmic rays"):
        grid.paired_lines([(crs, placebos)], [(other, placebos)])

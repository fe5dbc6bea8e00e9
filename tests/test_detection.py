# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The detection core's own decisions: threshold, precision, bad pixels, the flagged-fraction alarm."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr.detection import (
    MAX_FLAGGED_FRACTION,
    check_threshold,
    choose_model,
    choose_precision,
    default_threshold,
    detect,
    pixel_masks,
)
from astro_deepcr.zoo import get_model

FLOAT32 = dict(precision="float32", device="cpu")


def test_default_threshold_is_the_cards():
    spec = get_model("ACS-WFC")
    assert default_threshold(spec) == spec.threshold
    assert default_threshold(spec, 0.25) == 0.25
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\]"):
        check_threshold(1.5)
    with pytest.raises(TypeError, match="threshold must be a number"):
        check_threshold("high")


def test_precision_is_resolved_never_auto():
    assert choose_precision(get_model("ACS-WFC"), "float32", "cpu") == "float32"
    assert choose_precision(get_model("ACS-WFC"), "auto", "cpu") in ("float32", "bfloat16")


def test_choose_model_warns_for_an_explicit_model_of_another_instrument():
    header = {"INSTRUME": "WFC3", "DETECTOR": "UVIS"}
    with pytest.warns(AstropyUserWarning, match="trained on ACS/WFC data, not WFC3/UVIS"):
        spec, reason = choose_model(header, "ACS-WFC")
    assert (spec.name, reason) == ("ACS-WFC", "explicit")


def test_pixel_masks_policy():
    dq = np.array([[0, 4096, 256, 4, 8]])
    mask = np.array([[False, False, False, False, True]])
    nonfinite = np.array([[True, False, False, False, False]])
    bad, fill = pixel_masks(dq.shape, mask=mask, dq=dq, nonfinite=nonfinite)
    assert bad.tolist() == [[True, False, True, True, True]]
    assert fill.tolist() == [[True, False, False, True, False]]  # DQ 4 filled; the boolean mask and DQ 8 not
    with pytest.raises(ValueError, match="mask shape"):
        pixel_masks((2, 2), mask=np.zeros((3, 3), bool))


@pytest.fixture(scope="module")
def crowded():
    """3 % of the pixels hit by cosmic rays: plausible for a 1000 s HST exposure, not for a 60 s one."""
    rng = np.random.default_rng(11)
    image = rng.normal(100.0, 8.0, (128, 128)).astype(np.float32)
    rows, cols = rng.integers(2, 126, (2, 160))
    for row, col in zip(rows, cols):
        image[row, col:col + 3] += 3000.0
    return image


def test_alarm_scales_with_exposure_time(crowded):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = detect(crowded, spec="ACS-WFC", exptime=1000.0, **FLOAT32)  # 3e-5 per second: fine
    fraction = found.n_cr / found.cr_mask.size
    assert MAX_FLAGGED_FRACTION["floor"] < fraction < MAX_FLAGGED_FRACTION["without_exptime"]
    with pytest.warns(AstropyUserWarning, match=r"flagged 3\.[0-2] % of the good pixels \(\d+ px\) in 60 s"):
        detect(crowded, spec="ACS-WFC", exptime=60.0, **FLOAT32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detect(crowded, spec="ACS-WFC", **FLOAT32)  # no exposure time: under the 5 % bound


def test_alarm_names_model_and_causes():
    image = np.random.default_rng(2).normal(100.0, 8.0, (64, 64)).astype(np.float32)
    image[::4, ::3] += 5000.0  # 8 % of the pixels: no exposure time makes that plausible
    with pytest.warns(AstropyUserWarning, match="ACS-WFC flagged .* Check the units .* the gain, and the model"):
        detect(image, spec="ACS-WFC", **FLOAT32)


def test_flagged_fraction_alarm_is_the_warnings_rule():
    from astro_deepcr.detection import flagged_fraction_alarm

    # 1 % is the floor; then 1.5e-4 per second of exposure, or 5 % without an exposure time
    assert flagged_fraction_alarm(0.0099, exptime=1.0) is None
    assert flagged_fraction_alarm(0.0197, exptime=60.0) == "0.00015 per second of exposure"  # 3.3e-4 per s
    assert flagged_fraction_alarm(0.0197, exptime=200.0) is None  # 9.9e-5 per s
    assert flagged_fraction_alarm(0.049) is None
    assert flagged_fraction_alarm(0.051) == "5 %"
    assert flagged_fraction_alarm(0.051, exptime=0.0) == "5 %"  # no usable exposure time


def test_alarm_says_what_a_model_without_a_camera_was_trained_for():
    image = np.random.default_rng(2).normal(100.0, 8.0, (64, 64)).astype(np.float32)
    image[::4, ::3] += 5000.0
    # ground has no instrument: the alarm quotes its card's description, not "trained on ?"
    with pytest.warns(AstropyUserWarning, match=r"model choice \(deepCR-mask 2-32 for seeing-limited .*; its card: "
                                                r"astro-deepcr models\)") as record:
        detect(image, spec="ground", **FLOAT32)
    assert "?" not in str(record[0].message)
    with pytest.warns(AstropyUserWarning, match=r"model choice \(trained on ACS WFC\)"):
        detect(image, spec="ACS-WFC", **FLOAT32)


def test_alarm_names_a_threshold_below_the_cards_as_the_likely_cause(crowded):
    """A user who lowers the threshold on a crowded frame (docs/threshold.rst) is told that, not to check the units:
    the same frame and flags at the card's threshold give the domain message."""
    with pytest.warns(AstropyUserWarning) as lowered:
        detect(crowded, spec="ACS-WFC", exptime=60.0, threshold=0.1, **FLOAT32)
    (message,) = [str(w.message) for w in lowered if "flagged" in str(w.message)]
    assert "the threshold 0.1 is below ACS-WFC's 0.5" in message and "faint sources" in message
    assert "outside the model's domain" not in message and "If that is not why, check the units" in message
    with pytest.warns(AstropyUserWarning) as at_card:
        detect(crowded, spec="ACS-WFC", exptime=60.0, threshold=0.5, **FLOAT32)
    (message,) = [str(w.message) for w in at_card if "flagged" in str(w.message)]
    assert "outside the model's domain" in message and "below" not in message

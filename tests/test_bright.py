# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Saturated pixels and the saturation protection (astro_deepcr.bright, issue #22)."""

import numpy as np
import pytest
from scipy import ndimage

from astro_deepcr.bright import (
    PROTECTION,
    SATURATION_BITS,
    protect,
    protection_radius,
    protection_zone,
    rim_flags,
    saturated_pixels,
)

SATLEVEL = 80000.0


def saturated_star(shape=(96, 96), centre=(48, 40), seed=3):
    """Sky + a saturated star with a vertical bleed trail + one cosmic ray 9 px to its right, in electrons.

    Returns the image, its saturated pixels (as a DQ array would mark them) and the cosmic ray's pixels.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    star = 2.0e6 * np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / (2 * 1.3**2))
    image = 80.0 + star
    # the charge above full well bleeds along the column, both ways, as on a CCD
    image[centre[0] - 14:centre[0] + 15, centre[1] - 1:centre[1] + 2] += 1.2 * SATLEVEL
    image = rng.poisson(np.clip(image, 0, None)).astype(np.float32) + rng.normal(0, 4.7, shape).astype(np.float32)
    image = np.minimum(image, np.float32(SATLEVEL + 5000))
    saturated = image >= SATLEVEL
    cosmic_ray = np.zeros(shape, bool)
    cosmic_ray[centre[0] + 3, centre[1] + 9:centre[1] + 12] = True
    cosmic_ray[centre[0] + 4, centre[1] + 11] = True
    image[cosmic_ray] += np.float32(2500.0)
    return image, saturated, cosmic_ray


def test_saturated_pixels_from_dq_and_level():
    image = np.array([[10.0, 10.0, 10.0, 99.0]], np.float32)
    dq = np.array([[0, 256, 2048 | 4, 4]], np.int16)
    assert SATURATION_BITS == 256 | 2048
    assert saturated_pixels(image, dq=dq).tolist() == [[False, True, True, False]]
    assert saturated_pixels(image, satlevel=50).tolist() == [[False, False, False, True]]
    assert saturated_pixels(image, dq=dq, satlevel=50).tolist() == [[False, True, True, True]]
    assert not saturated_pixels(image).any()
    assert not saturated_pixels(image, satlevel=np.inf).any()
    with pytest.raises(TypeError, match="integer"):
        saturated_pixels(image, dq=dq.astype(float))
    with pytest.raises(ValueError, match="shape"):
        saturated_pixels(image, dq=dq[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        saturated_pixels(image[0])


def test_protect_removes_the_zone_only_and_copies():
    saturated = np.zeros((11, 11), bool)
    saturated[5, 5] = True
    cr_mask = np.ones((11, 11), bool)
    before = cr_mask.copy()
    kept = protect(cr_mask, np.ones((11, 11)), saturated, 0.5)
    radius = PROTECTION["radius"]
    assert radius == 3  # chosen by injection, by net effect (docs/bright.rst)
    assert np.array_equal(cr_mask, before)  # input untouched
    distance = np.maximum(*np.abs(np.mgrid[:11, :11] - 5))
    assert np.array_equal(kept, distance > radius)
    assert np.array_equal(protect(cr_mask, None, np.zeros((11, 11), bool), 0.5), cr_mask)
    assert protection_zone(saturated, 0).sum() == 1
    assert rim_flags(cr_mask, saturated) == 49  # within 3 px: a 7 x 7 square
    with pytest.raises(ValueError, match="shape"):
        protect(cr_mask, None, saturated[:5], 0.5)


@pytest.fixture(scope="module")
def star_detections():
    from astro_deepcr.detection import detect

    image, saturated, cosmic_ray = saturated_star()
    masks = {protected: detect(image, spec="ACS-WFC", satlevel=SATLEVEL, protect_saturated=protected, grow=1,
                               device="cpu") for protected in (False, True)}
    return image, saturated, cosmic_ray, masks


def test_network_flags_the_rim_without_protection(star_detections):
    # the defect of issue #22 on a synthetic star: unprotected, the rim of the star and its trail is flagged
    # (measured: 33 of 38 flags within 3 px of a saturated pixel)
    image, saturated, cosmic_ray, detections = star_detections
    unprotected = detections[False]
    assert np.array_equal(unprotected.saturated, saturated)
    assert not unprotected.cr_mask[saturated].any()
    assert rim_flags(unprotected.cr_mask, saturated) >= 20
    assert unprotected.cr_mask[cosmic_ray].all()


def test_protection_keeps_the_cosmic_ray_and_clears_the_rim(star_detections):
    image, saturated, cosmic_ray, detections = star_detections
    cr_mask = detections[True].cr_mask
    assert not (cr_mask & protection_zone(saturated)).any()
    # within 3 px of saturation: none of the unprotected run's 33 left (the zone is 3 px; 1 left with 1 px)
    assert rim_flags(cr_mask, saturated) == 0
    assert cr_mask[cosmic_ray].all()  # 8 px from the bleed trail: outside the zone, found
    # nothing else: the cosmic ray and at most its 1-px rim (measured: 4 + 1 px)
    assert not (cr_mask & ~ndimage.binary_dilation(cosmic_ray, np.ones((3, 3), bool))).any()
    probability = detections[True].probability
    assert np.array_equal(protect(probability > 0.5, probability, saturated, 0.5) & ~saturated, cr_mask)


def test_protection_radius_values_and_errors():
    assert protection_radius(True) == PROTECTION["radius"] == 3
    assert protection_radius(False) == 0 and protection_radius(np.bool_(True)) == 3
    assert protection_radius(1) == 1 and protection_radius(np.int64(0)) == 0
    for wrong in (-1, 1.5, "yes", None):
        with pytest.raises(ValueError, match="protect_saturated must be True, False or a zone radius"):
            protection_radius(wrong)


def test_a_narrower_zone_through_detect(star_detections):
    from astro_deepcr.detection import detect

    image, saturated, cosmic_ray, detections = star_detections
    narrow = detect(image, spec="ACS-WFC", satlevel=SATLEVEL, protect_saturated=1, grow=1, device="cpu")
    # the same probability, a 1 px zone instead of 3 px: measured 1 rim flag (0 with 3 px), the cosmic ray kept
    assert np.array_equal(narrow.probability, detections[True].probability)
    assert np.array_equal(narrow.cr_mask, protect(detections[False].cr_mask, None, saturated, 0.5, radius=1))
    assert 1 <= rim_flags(narrow.cr_mask, saturated) <= 2 and narrow.cr_mask[cosmic_ray].all()
    with pytest.raises(ValueError, match="protect_saturated"):
        detect(image, spec="ACS-WFC", protect_saturated="on", device="cpu")


def test_flag_refuses_a_bad_protection_before_reading_anything(tmp_path):
    from astro_deepcr.drizzle import flag_cosmic_rays

    with pytest.raises(ValueError, match="protect_saturated"):
        flag_cosmic_rays(str(tmp_path / "missing_flt.fits"), protect_saturated=-2)

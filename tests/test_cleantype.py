# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""LACosmic's cleantype replacements (astro_deepcr.cleantype) against astroscrappy itself and by hand."""

import numpy as np
import pytest

from astro_deepcr.cleantype import background_level, clean_cosmic_rays, lacosmic_mask, lower_median

astroscrappy = pytest.importorskip("astroscrappy")
INNER = np.s_[2:-2, 2:-2]  # astroscrappy leaves the 2-pixel border unreplaced


@pytest.fixture
def image():
    """Sky 100 +- 5 with 40 short CR tracks, one beside a masked block."""
    rng = np.random.default_rng(3)
    data = rng.normal(100, 5, (60, 70)).astype(np.float32)
    for _ in range(40):
        y, x = rng.integers(0, 60), rng.integers(0, 67)
        data[y, x:x + rng.integers(1, 4)] += rng.uniform(300, 2000)
    data[11, 33] += 1500  # 3 columns from the masked block: its 5x5 box reaches the grown mask
    inmask = np.zeros(data.shape, bool)
    inmask[10:13, 30] = True
    return data, inmask


@pytest.mark.parametrize("cleantype", ["medmask", "meanmask", "idw"])
@pytest.mark.parametrize("masked", [False, True])
def test_same_replacement_as_astroscrappy(image, cleantype, masked):
    data, inmask = image
    inmask = inmask if masked else None
    # one iteration: astroscrappy cleans once with its final mask, so its output is its clean routine on that mask
    crmask, cleaned = astroscrappy.detect_cosmics(data, inmask=inmask, niter=1, cleantype=cleantype, readnoise=5.0,
                                                  satlevel=1e9)
    assert crmask.sum() > 40 and (crmask[11, 33] or not masked)
    exclude = lacosmic_mask(data, inmask, 1e9)
    ours = clean_cosmic_rays(data, crmask, exclude, cleantype)
    # astroscrappy sums in float32: measured max |difference| 2.4e-5 on values near 100
    np.testing.assert_allclose(ours[INNER], cleaned[INNER], rtol=1e-6, atol=1e-4)
    if masked:  # the grown mask matters: without it the replacement near the block differs
        assert ours[11, 33] == pytest.approx(cleaned[11, 33], abs=1e-4)
        unmasked = clean_cosmic_rays(data, crmask, np.zeros(data.shape, bool), cleantype)
        assert unmasked[11, 33] != pytest.approx(cleaned[11, 33], abs=1e-4) or cleantype == "medmask"


@pytest.mark.parametrize("sepmed", [True, False])
def test_saturated_star_mask_as_astroscrappy(sepmed):
    y, x = np.mgrid[:60, :60]
    data = (100 + 2e5 * np.exp(-((y - 30) ** 2 + (x - 25) ** 2) / (2 * 2.0**2))).astype(np.float32)
    data[45, 45] = 9e4  # a lone saturated pixel (a CR): not a star core, not masked
    inmask = np.zeros(data.shape, bool)
    inmask[5, 50] = True
    theirs = inmask.astype(np.uint8)
    astroscrappy.update_mask(data, theirs, 65535.0, sepmed)
    ours = lacosmic_mask(data, inmask, 65535.0, sepmed)
    assert theirs[INNER].sum() > 50
    np.testing.assert_array_equal(ours[INNER], theirs[INNER].astype(bool))
    assert not ours[45, 45] and ours[4:7, 49:52].all()


def test_hand_computed_box():
    image = np.arange(49, dtype=float).reshape(7, 7)  # value 7 r + c
    crmask = np.zeros(image.shape, bool)
    crmask[3, 3] = True
    none = np.zeros(image.shape, bool)
    # 5x5 box: 7 r + c for r, c in 1..5; its median is the centre, 24
    assert clean_cosmic_rays(image, crmask, none, "median")[3, 3] == 24.0
    # without the centre: 24 values, astroscrappy's lower middle one is the 12th: 23
    assert clean_cosmic_rays(image, crmask, none, "medmask")[3, 3] == 23.0
    # a symmetric box: mean and inverse-distance mean are the centre value
    assert clean_cosmic_rays(image, crmask, none, "meanmask")[3, 3] == pytest.approx(24.0, abs=1e-12)
    assert clean_cosmic_rays(image, crmask, none, "idw")[3, 3] == pytest.approx(24.0, abs=1e-12)
    # excluding the left two columns: 7 r + c for c in 3..5, r in 1..5 sums to 375; without the centre 351 / 14
    exclude = np.zeros(image.shape, bool)
    exclude[:, 1:3] = True
    assert clean_cosmic_rays(image, crmask, exclude, "meanmask")[3, 3] == pytest.approx(351 / 14, rel=1e-12)
    # idw by hand on a 2-pixel neighbourhood: distances 1 and sqrt(2)
    sparse = np.ones(image.shape, bool)
    sparse[3, 4] = sparse[2, 2] = False  # usable: (3, 4) = 25 at distance 1 and (2, 2) = 16 at sqrt 2
    expected = (25.0 + 16.0 / np.sqrt(2)) / (1.0 + 1.0 / np.sqrt(2))
    assert clean_cosmic_rays(image, crmask, sparse, "idw")[3, 3] == pytest.approx(expected, rel=1e-12)
    # only the crmask pixels change
    out = clean_cosmic_rays(image, crmask, none, "meanmask")
    np.testing.assert_array_equal(out[~crmask], image[~crmask])


def test_background_fallback_and_edges():
    image = np.full((20, 20), 7.0)
    image[:, 15:] = 3.0  # lower median of the usable pixels: 7 (15 of every 20 columns)
    crmask = np.zeros(image.shape, bool)
    crmask[2:9, 2:9] = True  # the centre's 5x5 box holds only cosmic rays
    out = clean_cosmic_rays(image + crmask * 1000.0, crmask, np.zeros(image.shape, bool), "medmask")
    assert out[5, 5] == background_level(image, crmask) == 7.0
    assert out[2, 2] == 7.0  # a box partly outside the CR block takes its usable pixels
    corner = np.zeros(image.shape, bool)
    corner[0, 19] = True  # astroscrappy leaves the border; here the in-image part of the box is used
    assert clean_cosmic_rays(image + corner * 500.0, corner, np.zeros(image.shape, bool), "meanmask")[0, 19] == 3.0
    with pytest.raises(ValueError, match="cleantype must be one of"):
        clean_cosmic_rays(image, crmask, crmask, "nearest")


def test_lower_median_and_non_finite_sources():
    assert lower_median(np.array([[4.0, 1.0, 3.0, 2.0]]))[0] == 2.0  # even count: the lower middle value
    assert lower_median(np.array([[np.nan, 5.0, 1.0]]))[0] == 1.0
    image = np.full((9, 9), 10.0)
    image[4, 5] = np.nan  # never a source
    crmask = np.zeros(image.shape, bool)
    crmask[4, 4] = True
    assert clean_cosmic_rays(image, crmask, np.zeros(image.shape, bool), "meanmask")[4, 4] == 10.0

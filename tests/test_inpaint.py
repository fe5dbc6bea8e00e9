# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr.inpaint import biharmonic, fill_median, local_scatter, medmask


def test_medmask_is_the_median_of_unmasked_5x5_neighbours():
    image = np.arange(49, dtype=np.float32).reshape(7, 7)
    mask = np.zeros((7, 7), bool)
    mask[3, 3] = mask[3, 4] = True
    cleaned = medmask(image, mask)
    box = image[1:6, 1:6].copy().ravel().tolist()
    box.remove(image[3, 3])
    box.remove(image[3, 4])
    assert cleaned[3, 3] == np.median(box)
    np.testing.assert_array_equal(cleaned[~mask], image[~mask])
    assert cleaned.dtype == np.float32


def test_medmask_at_the_corner_and_zero_valued_good_pixels():
    image = np.zeros((6, 6))
    image[0, 1] = 4.0
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = True
    # zeros are real values (deepCR's reference medmask would skip them)
    assert medmask(image, mask)[0, 0] == 0.0
    assert medmask(image, mask).dtype == np.float64


def test_medmask_grows_the_box_when_all_neighbours_are_masked():
    image = np.full((15, 15), 7.0)
    mask = np.zeros((15, 15), bool)
    mask[4:11, 4:11] = True  # 7x7 hole: the centre's 5x5 box is all masked
    image[mask] = 1e6
    cleaned = medmask(image, mask)
    assert np.all(cleaned[mask] == 7.0)


def test_bad_pixels_are_never_sources_and_keep_their_values():
    image = np.full((9, 9), 10.0)
    image[3:6, 3:6] = 500.0
    bad = np.zeros((9, 9), bool)
    bad[3:6, 3:6] = True
    image[4, 4] = np.nan
    mask = np.zeros((9, 9), bool)
    mask[2, 2] = True
    image[2, 2] = 9999.0
    for method in (medmask, biharmonic):
        cleaned = method(image, mask, bad)
        assert cleaned[2, 2] == pytest.approx(10.0)
        assert np.isnan(cleaned[4, 4])
        assert cleaned[3, 3] == 500.0


def test_nothing_usable_falls_back_with_a_warning():
    image = np.ones((4, 4))
    with pytest.warns(AstropyUserWarning, match="no usable neighbour"):
        cleaned = medmask(image, np.ones((4, 4), bool))
    assert np.all(cleaned == 0.0)


def test_fill_median_replaces_non_finite_pixels():
    image = np.full((5, 5), 3.0)
    image[2, 2] = np.inf
    filled = fill_median(image, ~np.isfinite(image), ~np.isfinite(image))
    assert filled[2, 2] == 3.0


def test_biharmonic_recovers_a_smooth_surface():
    y, x = np.mgrid[:40, :40]
    image = 100 + 2.0 * x - 1.5 * y
    mask = np.zeros(image.shape, bool)
    mask[18:21, 10:14] = True
    corrupted = np.where(mask, 1e5, image)
    np.testing.assert_allclose(biharmonic(corrupted, mask)[mask], image[mask], rtol=1e-6)
    assert np.abs(medmask(corrupted, mask)[mask] - image[mask]).max() > 0  # medmask is only approximate


def test_local_scatter_is_robust_std_of_the_box():
    rng = np.random.default_rng(0)
    image = rng.normal(0, 5.0, (200, 200))
    mask = np.zeros(image.shape, bool)
    mask[::10, ::10] = True
    scatter = local_scatter(image, mask)
    assert scatter[~mask].max() == 0
    assert np.median(scatter[mask]) == pytest.approx(5.0, rel=0.15)


def test_inputs_are_validated_and_untouched():
    image = np.ones((5, 5))
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    before = image.copy()
    medmask(image, mask)
    biharmonic(image, mask)
    np.testing.assert_array_equal(image, before)
    with pytest.raises(ValueError, match="mask shape"):
        medmask(image, np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="must be 2-D"):
        medmask(np.ones(5), np.zeros(5, bool))

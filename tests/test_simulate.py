# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from astro_deepcr.training import simulate
from astro_deepcr.training.simulate import add_cosmic_rays, make_scene, psf_image, simulate_exposure, simulate_stack


def test_exposure_keys_and_truth():
    exposure = simulate_exposure((128, 128), seed=1)
    assert set(exposure) >= {"image", "clean", "cr_mask", "cr_charge", "scene", "sky", "read_noise", "events"}
    assert exposure["image"].dtype == np.float32 and exposure["cr_mask"].dtype == bool
    np.testing.assert_allclose(exposure["image"], exposure["clean"] + exposure["cr_charge"], rtol=1e-5, atol=1e-2)
    np.testing.assert_array_equal(exposure["cr_mask"], exposure["cr_charge"] > exposure["read_noise"])
    # the sky sets the level of the clean image
    assert abs(np.median(exposure["clean"] - exposure["scene"]) - 60.0) < 1.0


def test_seeded():
    first, second = simulate_exposure((64, 64), seed=3), simulate_exposure((64, 64), seed=3)
    np.testing.assert_array_equal(first["image"], second["image"])
    assert not np.array_equal(first["image"], simulate_exposure((64, 64), seed=4)["image"])


def test_cr_rate_matches_handbook():
    # 1.2 CR / cm^2 / s on 15 micron pixels: 2.7e-6 events / px / s
    shape, exptime = (1000, 1000), 1000.0
    counts = [add_cosmic_rays(shape, exptime, seed=seed, diffusion_sigma=0)[1] for seed in range(3)]
    expected = 1.2 * (15e-4) ** 2 * 1e6 * exptime
    assert abs(np.mean(counts) - expected) < 4 * np.sqrt(expected / 3)


def test_tracks_leaving_the_detector_do_not_pile_up_on_its_edge():
    # regression: track points were clipped onto the border pixels
    charge, _ = add_cosmic_rays((200, 200), 20000.0, seed=2, diffusion_sigma=0)
    edge = np.concatenate([charge[0], charge[-1], charge[:, 0], charge[:, -1]])
    inner = charge[1:-1, 1:-1]
    assert edge.mean() < 3 * inner.mean()


def test_psf_is_normalised_and_charge_diffused():
    psf = psf_image()
    assert psf.shape == (25, 25) and np.isclose(psf.sum(), 1.0)
    sharp = psf_image(charge_diffusion=False)
    # TinyTim's ACS/WFC kernel keeps 59% of the charge in the central pixel
    assert psf.max() < 0.8 * sharp.max()


def test_stars_at_subpixel_positions_are_less_peaked():
    psf = psf_image()
    centred = make_scene((256, 256), "globular", seed=5, psf=psf, subpixel=False)
    anywhere = make_scene((256, 256), "globular", seed=5, psf=psf)
    assert np.isclose(centred.sum(), anywhere.sum(), rtol=0.05)
    assert anywhere.max() < centred.max()


@pytest.mark.parametrize("field", ["extragalactic", "globular", "resolved"])
def test_no_source_is_sharper_than_the_psf(field):
    # every source is seen through the PSF: an unconvolved, point-sampled n = 4 galaxy cusp would put
    # ~99 % of its flux in one pixel and look exactly like a cosmic ray
    from scipy import ndimage

    psf = psf_image()
    limit = psf.max() / (ndimage.uniform_filter(psf, 3, mode="constant") * 9).max()
    scene = make_scene((512, 512), field, seed=3, psf=psf)
    peaks = (scene == ndimage.maximum_filter(scene, 5)) & (scene > 500)
    sharpness = scene[peaks] / (ndimage.uniform_filter(scene, 3)[peaks] * 9)
    assert peaks.sum() > 20
    assert sharpness.max() <= 1.05 * limit


def test_unknown_field():
    with pytest.raises(ValueError, match="field must be one of"):
        make_scene((32, 32), field="nebula")


def test_stack_shares_the_scene():
    stack = simulate_stack(3, (64, 64), seed=0)
    assert len(stack) == 3
    np.testing.assert_array_equal(stack[0]["scene"], stack[2]["scene"])
    assert not np.array_equal(stack[0]["cr_mask"], stack[1]["cr_mask"])


def test_public_names():
    assert set(simulate.__all__) >= {"psf_image", "make_scene", "add_cosmic_rays", "simulate_exposure",
                                     "simulate_stack"}


def test_real_cosmic_rays_from_the_hrc_exposure():
    pytest.importorskip("spherical_geometry")
    library = simulate.harvest_cosmic_rays()
    assert len(library) > 100
    assert all(stamp.min() >= 0 and stamp.sum() >= 200 for stamp in library)
    # a typical CR of a 15-21 micron pixel CCD: a few pixels, ~10^3 electrons
    assert 2 <= np.median([(stamp > 0).sum() for stamp in library]) <= 20
    assert 300 < np.median([stamp.sum() for stamp in library]) < 10000
    exposure = simulate_exposure((256, 256), seed=0, library=library)
    assert exposure["events"] > 0 and exposure["cr_mask"].sum() > exposure["events"]
    np.testing.assert_array_equal(exposure["cr_mask"], exposure["cr_charge"] > exposure["read_noise"])

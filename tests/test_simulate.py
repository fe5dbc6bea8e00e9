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
    # what any truth mask must do, whatever its exact threshold: every pixel with a CR excess far above the
    # noise (10 sigma of the read noise) is a CR, and no pixel without CR charge is one
    charge, cr_mask = exposure["cr_charge"], exposure["cr_mask"]
    assert (charge > 40).sum() > 50 and cr_mask[charge > 40].all()
    assert not cr_mask[charge == 0].any() and not cr_mask[charge < 1.0].any()
    # the sky sets the level of the clean image
    assert abs(np.median(exposure["clean"] - exposure["scene"]) - 60.0) < 1.0


def test_seeded():
    first, second = simulate_exposure((64, 64), seed=3), simulate_exposure((64, 64), seed=3)
    np.testing.assert_array_equal(first["image"], second["image"])
    assert not np.array_equal(first["image"], simulate_exposure((64, 64), seed=4)["image"])


def test_cr_affected_pixel_fraction_matches_the_published_one():
    # independent of the simulator's constants (event rate, pixel size, track model, charge diffusion): on
    # ACS/WFC "the fraction of pixels affected by cosmic rays varies from 1.5% to 3% during a 1000 second
    # exposure" (Riess 2002, ACS ISR 2002-07; ACS Instrument Handbook, "Cosmic Rays"). Measured here: 2.48 and
    # 2.46 % of the pixels carry more CR charge than the read noise (the default truth mask), seeds 0 and 1;
    # 500 s / 1000 s ratio 0.504 (2026-11-25)
    dark = np.zeros((1024, 1024))  # the scene does not matter here; skipping it keeps the test fast
    fractions = [simulate_exposure(dark.shape, exptime=1000.0, scene=dark, seed=seed)["cr_mask"].mean()
                 for seed in range(2)]
    assert all(0.015 < fraction < 0.03 for fraction in fractions)
    # and it scales with the exposure time: half as many in 500 s (to within the Poisson scatter and overlaps)
    half = simulate_exposure(dark.shape, exptime=500.0, scene=dark, seed=0)["cr_mask"].mean()
    assert 0.45 < half / fractions[0] < 0.55


def test_tracks_leaving_the_detector_do_not_pile_up_on_its_edge():
    # regression: track points were clipped onto the border pixels
    charge, _ = add_cosmic_rays((200, 200), 20000.0, seed=2, diffusion_sigma=0)
    edge = np.concatenate([charge[0], charge[-1], charge[:, 0], charge[:, -1]])
    inner = charge[1:-1, 1:-1]
    assert edge.mean() < 3 * inner.mean()


def test_psf_is_normalised_and_charge_diffused():
    _needs_drizzlepac_psfs()
    psf = psf_image()
    assert psf.shape == (25, 25) and np.isclose(psf.sum(), 1.0)
    sharp = psf_image(charge_diffusion=False)
    # TinyTim's ACS/WFC kernel keeps 59% of the charge in the central pixel
    assert psf.max() < 0.8 * sharp.max()


def test_stars_at_subpixel_positions_are_less_peaked():
    _needs_drizzlepac_psfs()
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
    # the injected real CRs are labelled: every strong CR pixel, nothing without CR charge
    charge, cr_mask = exposure["cr_charge"], exposure["cr_mask"]
    assert cr_mask[charge > 40].all() and not cr_mask[charge < 1.0].any()


# ---- simulator realism (#16 item 4): PSF wings, detector features, CR library, paper-style truth ----

from astro_deepcr.training import crlibrary, detector  # noqa: E402
from astro_deepcr.training.psf import psf_at  # noqa: E402


def _needs_drizzlepac_psfs():
    # find_spec, not importorskip: importing drizzlepac takes ~10 s and only its data files are needed
    import importlib.util

    if importlib.util.find_spec("drizzlepac") is None:
        pytest.skip("drizzlepac (TinyTim PSFs) not installed")


@pytest.mark.parametrize("filter_name, outside", [("f435w", 0.0501), ("f606w", 0.0468), ("f814w", 0.0480)])
def test_full_tinytim_psf_keeps_its_wings(filter_name, outside):
    _needs_drizzlepac_psfs()
    psf = psf_image(filter_name=filter_name, size=None)
    # drizzlepac's ACS/WFC TinyTim models are 122 x 122 px; measured light outside the central 25 x 25 px
    # (after charge diffusion): F435W 5.01 %, F606W 4.68 %, F814W 4.80 % -- the 25 x 25 crop threw it away
    assert psf.shape == (122, 122) and np.isclose(psf.sum(), 1.0)
    y, x = np.unravel_index(np.argmax(psf), psf.shape)
    assert abs((1 - psf[y - 12:y + 13, x - 12:x + 13].sum()) - outside) < 0.002
    # the filters differ (a bug reading one file for all would not)
    assert not np.allclose(psf, psf_image(filter_name="f814w" if filter_name != "f814w" else "f435w", size=None))


def test_psf_varies_smoothly_across_the_chip():
    _needs_drizzlepac_psfs()
    psf = psf_image(size=None)
    # exactly TinyTim's where TinyTim modelled it (chip centre), broadest at the corners: the F606W peak
    # measured 0.877 of TinyTim's at a corner, 0.991 half-way
    np.testing.assert_allclose(psf_at((1024, 2048), psf), psf, atol=1e-12)
    assert abs(psf_at((0, 0), psf).max() / psf.max() - 0.877) < 0.005
    assert abs(psf_at((512, 1024), psf).max() / psf.max() - 0.991) < 0.003
    np.testing.assert_allclose(psf_at((0, 0), psf), psf_at((2048, 4096), psf), atol=1e-12)
    scene = make_scene((128, 128), "globular", seed=1, psf=psf, chip_origin=(0, 0))
    assert np.isclose(scene.sum(), make_scene((128, 128), "globular", seed=1, psf=psf).sum(), rtol=1e-3)


def test_hot_pixels_at_the_documented_rate_and_slope():
    rng = np.random.default_rng(0)
    charge, hot = detector.add_hot_pixels((1000, 1000), 1000.0, 0.005, rng)
    # 0.5 % of 1e6 pixels (binomial sigma 70)
    assert abs(hot.sum() - 5000) < 300
    rate = charge[hot] / 1000.0
    assert rate.min() >= 0.08 and not charge[~hot].any()
    # ACS IHB hot-pixel table: 16 new pixels/day above 1.0 e-/s for 390 above 0.08 e-/s (ratio 0.041)
    assert abs((rate > 1.0).mean() - 16 / 390) < 0.012


def test_bad_columns_are_dead_to_the_far_end_from_the_readout():
    rng = np.random.default_rng(1)
    bad = detector.add_bad_columns((256, 4096), 40, "bottom", rng)
    columns = np.flatnonzero(bad.any(axis=0))
    assert abs(columns.size - 40) < 4 * np.sqrt(40)
    for column in columns:
        # a charge trap blocks everything behind it: dead from some row to the last one, never a gap
        rows = np.flatnonzero(bad[:, column])
        assert rows[-1] == 255 and rows.size == rows[-1] - rows[0] + 1
    top = detector.add_bad_columns((256, 4096), 40, "top", np.random.default_rng(1))
    assert all(top[0, c] for c in np.flatnonzero(top.any(axis=0)))


def test_saturation_bleeds_along_the_column_conserving_charge():
    image = np.zeros((9, 3))
    image[4, 1] = 3.5 * 100.0
    image[0, 2] = 250.0  # at the edge: what cannot go up goes down only... and the rest leaves the chip
    bled, saturated = detector.bleed_saturation(image, 100.0)
    # hand computed: 350 -> 100 in place, 125 up and 125 down: 100 + 25 on each side
    np.testing.assert_allclose(bled[:, 1], [0, 0, 25, 100, 100, 100, 25, 0, 0])
    np.testing.assert_allclose(bled[:, 2], [100, 75, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(bled[:, 0], 0)
    np.testing.assert_array_equal(np.flatnonzero(saturated[:, 1]), [3, 4, 5])
    assert saturated[0, 2] and not saturated[1, 2]


@pytest.mark.parametrize("readout", ["bottom", "top"])
def test_cte_trails_point_away_from_the_readout(readout):
    charge = np.zeros((200, 5))
    charge[100, 2] = 400.0
    trailed = detector.add_cte_trails(charge, loss=0.02, length=3.0, readout=readout, row0=1000)
    transfers = 1100 if readout == "bottom" else 99
    # hand computed: lost = 400 * 0.02 * transfers / 2048 * (400 / 100)**-0.5
    lost = 400 * 0.02 * transfers / 2048 * 0.5
    assert np.isclose(trailed[100, 2], 400 - lost)
    behind = trailed[101:, 2] if readout == "bottom" else trailed[:100, 2][::-1]
    ahead = trailed[:100, 2] if readout == "bottom" else trailed[101:, 2]
    assert np.isclose(behind.sum(), lost) and np.all(ahead == 0)
    assert behind[0] > behind[1] > behind[2] > 0  # exponential trail of 3 px
    np.testing.assert_array_equal(trailed[:, [0, 1, 3, 4]], 0)


def test_sky_gradient_amplitude():
    sky = detector.sky_gradient((100, 300), 60.0, 0.1, np.random.default_rng(2))
    assert np.isclose(sky.mean(), 60.0) and np.isclose(sky.max() - sky.min(), 6.0)


def test_detector_exposure_keeps_truth_and_flags():
    # 200 bad columns per 4096 (the default 10 would give 0.6 in 256 columns)
    exposure = simulate_exposure((256, 256), "globular", seed=3, realism=True,
                                 detector=detector.Detector(bad_columns=200.0))
    image, clean, dq = exposure["image"], exposure["clean"], exposure["dq"]
    np.testing.assert_allclose(image, clean + exposure["cr_charge"], rtol=1e-5, atol=1e-2)
    hot, bad = (dq & detector.DQ_HOT) != 0, (dq & detector.DQ_BAD) != 0
    assert hot.sum() > 0.5 * 0.005 * image.size
    # dead pixels read only the read noise, and no CR can be seen there
    assert bad.sum() > 50 and abs(np.std(clean[bad]) - 4.0) < 0.3  # measured 3.95 on 656 px
    assert not exposure["cr_mask"][bad].any()
    # paper-style truth by default with realism
    np.testing.assert_array_equal(exposure["cr_mask"], simulate.truth_mask(
        exposure["cr_charge"], exposure["expected"], 4.0, "paper") & ~bad)
    with pytest.raises(ValueError, match="readout"):
        detector.Detector(readout="left")


def test_paper_truth_mask_hand_made():
    charge = np.zeros((7, 7))
    charge[3, 3] = 60.0   # 60 / sqrt(100 + 16 - ...) : a core (> 5 sigma of sqrt(84 + 16) = 10)
    charge[3, 4] = 20.0   # neighbour above 1.5 sigma: joins
    charge[0, 0] = 20.0   # far away, below 5 sigma: not a CR
    charge[3, 2] = 10.0   # neighbour below 1.5 sigma (15): joins only through the growth
    expected = np.full((7, 7), 84.0)
    mask = simulate.truth_mask(charge, expected, 4.0, "paper", grow=0)
    assert set(zip(*np.nonzero(mask))) == {(3, 3), (3, 4)}
    grown = simulate.truth_mask(charge, expected, 4.0, "paper", grow=1)
    assert grown.sum() == 3 * 4 and grown[2:5, 2:6].all() and not grown[0, 0]
    np.testing.assert_array_equal(simulate.truth_mask(charge, expected, 4.0, "charge"), charge > 4.0)
    with pytest.raises(ValueError, match="truth must be"):
        simulate.truth_mask(charge, expected, 4.0, "driz")


def test_psf_test_tells_stars_from_cosmic_rays():
    _needs_drizzlepac_psfs()
    psf = psf_image("acs", "hrc", "f606w", size=15)
    sharpness = crlibrary.psf_sharpness(psf)
    assert 2.3 < sharpness < 2.5  # measured 2.39 (sharpest of 9 sub-pixel phases)
    from scipy import ndimage

    def verdict(excess):
        variance = np.clip(excess, 0, None) + 50.0 + 4.7**2
        return crlibrary.not_psf_like(excess, variance, excess > 3 * np.sqrt(50.0 + 4.7**2), sharpness)

    for flux in (500.0, 5e3, 1e5):
        for shift in ((0, 0), (0.5, 0.5), (0.33, -0.2)):
            star = np.zeros((31, 31))
            star[8:23, 8:23] = flux * np.clip(ndimage.shift(psf, shift, order=3), 0, None)
            assert not verdict(star), (flux, shift)
    hit = np.zeros((31, 31))
    hit[15, 15] = 300.0
    assert verdict(hit)
    track = np.zeros((31, 31))
    track[15, 8:20] = 200.0
    track = ndimage.gaussian_filter(track, 0.4)  # diffused: not sharp at its peak, but a thin line
    assert verdict(track)
    blend = np.zeros((31, 31))
    blend[8:23, 5:20] += 2e4 * psf
    blend[8:23, 10:25] += 2e4 * psf
    assert not verdict(blend)


@pytest.mark.slow
def test_psf_harvest_is_not_biased_to_bright_compact_crs():
    pytest.importorskip("spherical_geometry")
    psf_library = simulate.harvest_cosmic_rays()
    lacosmic_library = simulate.harvest_cosmic_rays(method="lacosmic")
    charge = np.array([stamp.sum() for stamp in psf_library])
    lacosmic_charge = np.array([stamp.sum() for stamp in lacosmic_library])
    sizes = np.array([(stamp > 0).sum() for stamp in psf_library])
    # measured: 219 stamps (about 330 CRs are expected in 60 s on the HRC; CRs on stars are dropped), median
    # 1301 e-, 40.6 % below 1000 e-, 11.9 % single pixels, largest 31 px; LACosmic (sigclip 8): 247 stamps,
    # median 2009 e-, 19.0 % below 1000 e-, 2.4 % single pixels (its stamps are grown by one pixel), largest 23 px
    assert 180 < len(psf_library) < 330
    assert (charge < 1000).mean() > 1.6 * (lacosmic_charge < 1000).mean()
    assert np.median(charge) < 0.8 * np.median(lacosmic_charge)
    assert sizes.max() > max((stamp > 0).sum() for stamp in lacosmic_library)
    # no star in it: a star of >= 10^4 e- covers dozens of pixels above 2 sigma; no stamp that bright is that big
    assert not any(c > 1e4 and n > 40 for c, n in zip(charge, sizes))


def _one_track_library(monkeypatch):
    stamp = np.zeros((3, 5), np.float32)
    stamp[1, :] = 1000.0  # a short straight track: every injected CR is a copy of it, rotated or flipped
    monkeypatch.setattr(simulate, "harvest_cosmic_rays", lambda *args, **kwargs: [stamp])


def test_evaluation_test_sets_for_both_cr_sources(monkeypatch):
    from astro_deepcr.evaluation import report

    _one_track_library(monkeypatch)
    synthetic = report.make_test_set(("globular",), n_images=1, size=64, seed=5)
    harvested = report.make_test_set(("globular",), n_images=1, size=64, seed=5, cr_source="harvested")
    np.testing.assert_array_equal(synthetic[0]["scene"], harvested[0]["scene"])  # the same scenes
    assert harvested[0]["cr_source"] == "harvested" and harvested[0]["cr_charge"].max() >= 1000.0
    assert np.isin(harvested[0]["cr_charge"], [0.0, 1000.0, 2000.0, 3000.0]).all()
    assert not np.isin(synthetic[0]["cr_charge"], [0.0, 1000.0, 2000.0, 3000.0]).all()
    with pytest.raises(ValueError, match="cr_source"):
        report.make_test_set(("globular",), n_images=1, size=64, cr_source="lacosmic")
    table = report._by_source_markdown({"synthetic": {"globular": {"m": {"tpr@0.0005": 0.5, "tpr@0.005": 0.75}}},
                                        "harvested": {"globular": {"m": {"tpr@0.0005": 0.25, "tpr@0.005": 1.0}}}})
    assert "| globular | m | 0.5000 | 0.2500 | 0.7500 | 1.0000 |" in table


@pytest.mark.slow
def test_evaluation_report_runs_both_cr_sources(tmp_path, monkeypatch):
    from astro_deepcr import DeepCR
    from astro_deepcr.evaluation import report
    from astro_deepcr.evaluation.metrics import roc_curve, tpr_at_fpr

    _one_track_library(monkeypatch)
    results = report.evaluate(tmp_path, models=["ACS-WFC-F606W-2-4"], inpaint_models=[], fields=("globular",),
                              n_images=1, size=64, seed=5, reference=False, runtime_size=64)
    by_source = results["detection_by_cr_source"]
    assert list(by_source) == ["synthetic", "harvested"] and by_source["synthetic"] is results["detection"]
    # the harvested row is the harvested set's own figure, recomputed here
    harvested = report.make_test_set(("globular",), n_images=1, size=64, seed=5, cr_source="harvested")
    fpr, tpr, _ = roc_curve(DeepCR("ACS-WFC-F606W-2-4", device="cpu", progress=False).probability(
        harvested[0]["image"]), harvested[0]["cr_mask"])
    assert by_source["harvested"]["globular"]["ACS-WFC-F606W-2-4"]["tpr@0.005"] == tpr_at_fpr(fpr, tpr, 0.005)
    text = (tmp_path / "report.md").read_text()
    assert "## Detection by CR source" in text and "TPR@0.5% harvested" in text


def test_synthetic_flc_dq_carries_the_detector_flags(tmp_path):
    from astropy.io import fits

    from astro_deepcr.training.flc import write_flc_stack

    stack = write_flc_stack(tmp_path, n_exposures=1, chip_shape=(64, 128), seed=2,
                            detector=detector.Detector(hot_fraction=0.02, bad_columns=200.0))
    with fits.open(stack.files[0]) as hdul:
        dq = np.stack([hdul["DQ", k].data for k in (1, 2)])
    # 2 % of 2 x 8192 pixels are hot, plus the writer's own 0.3 % sprinkling of DQ 16 (binomial sigma ~19);
    # ~6 bad columns per chip (200 per 4096 of 128)
    assert abs(((dq & detector.DQ_HOT) != 0).sum() - 0.023 * dq.size) < 80
    assert ((dq & detector.DQ_BAD) != 0).any(axis=1).sum() >= 4
    np.testing.assert_array_equal(dq, np.stack(stack.dq[0]))


def test_a_stack_shares_its_chip_defects():
    stack = simulate_stack(2, (96, 96), "resolved", seed=1, realism=True)
    # hot pixels and bad columns belong to the chip: the same in every exposure, unlike the noise and the CRs
    np.testing.assert_array_equal(stack[0]["dq"] & (detector.DQ_HOT | detector.DQ_BAD),
                                  stack[1]["dq"] & (detector.DQ_HOT | detector.DQ_BAD))
    assert (stack[0]["dq"] & detector.DQ_HOT).any()
    assert not np.array_equal(stack[0]["cr_mask"], stack[1]["cr_mask"])
    fresh = simulate_stack(2, (96, 96), "resolved", seed=1, realism=True,
                           detector=detector.Detector(defects_seed=None))
    assert not np.array_equal(fresh[0]["dq"] & detector.DQ_HOT, fresh[1]["dq"] & detector.DQ_HOT)

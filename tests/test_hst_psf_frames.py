# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The ground simulator's HST-like frames: real undersampled TinyTim PSFs at sub-pixel phases (SceneMix.hst_psf)."""

import importlib.util
import json

import numpy as np
import pytest

from astro_deepcr.training import ground, psf
from astro_deepcr.training.ground import SceneMix, equivalent_fwhm, ground_frame, moffat_psf

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tinytim():
    # find_spec, not importorskip: importing drizzlepac takes ~10 s and only its data files are needed
    if importlib.util.find_spec("drizzlepac") is None:
        pytest.skip("drizzlepac (TinyTim PSFs) not installed")


def _centroid(stamp, half=4):
    c = stamp.shape[0] // 2
    core = stamp[c - half:c + half + 1, c - half:c + half + 1]
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    return (core * y).sum() / core.sum(), (core * x).sum() / core.sum()


def test_tinytim_models_are_the_ccd_cameras_but_hrc(tinytim):
    models = psf.tinytim_models()
    assert sorted(models) == [("acs", "wfc"), ("wfc3", "uvis")]  # ACS/HRC's frame is scored: its models stay out
    assert {"f435w", "f606w", "f814w"} <= set(models[("acs", "wfc")])
    assert "f225w" in models[("wfc3", "uvis")] and len(models[("wfc3", "uvis")]) > 40


def test_without_drizzlepac_there_is_no_gaussian_stand_in(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    psf._model_spectrum.cache_clear()
    with pytest.raises(ImportError, match=r"TinyTim.*astro_deepcr\[drizzle\]"):
        psf.tinytim_models()
    with pytest.raises(ImportError, match="drizzlepac"):
        psf.phased_psf("acs", "wfc", "f606w", 15)
    with pytest.raises(ImportError, match="TinyTim"):
        ground_frame((32, 32), np.random.default_rng(0), None, SceneMix(hst_psf=1.0))
    # psf_image keeps its Gaussian stand-in unless asked not to
    assert psf.psf_image(size=9).shape == (9, 9)
    with pytest.raises(ImportError, match="drizzlepac"):
        psf.psf_image(size=9, fallback=False)


def test_a_missing_filter_raises_without_fallback(tinytim):
    with pytest.raises(FileNotFoundError, match="acs_wfc_f999w"):
        psf.psf_image("acs", "wfc", "f999w", fallback=False)
    psf._model_spectrum.cache_clear()
    with pytest.raises(FileNotFoundError, match="acs_wfc_f999w"):
        psf.phased_psf("acs", "wfc", "f999w", 15)


@pytest.mark.parametrize("binning", [1, 2])
@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.4, 0.0), (-0.3, 0.25), (0.0, -0.45)])
def test_phased_psf_puts_the_core_where_asked(tinytim, binning, offset):
    stamp = psf.phased_psf("acs", "wfc", "f606w", 15, binning, offset)
    assert stamp.shape == (15, 15) and stamp.sum() == pytest.approx(1.0) and stamp.min() >= 0
    # measured: the 9 x 9 px core's centroid follows the offset to within 0.07 px (its wings pull it in a little)
    np.testing.assert_allclose(_centroid(stamp), offset, atol=0.08)


def test_binning_makes_the_psf_as_undersampled_as_a_wf_chip(tinytim):
    native = psf.phased_psf("acs", "wfc", "f606w", 31, 1)
    binned = psf.phased_psf("acs", "wfc", "f606w", 31, 2)
    # measured: 0.177 and 0.473 of the 31 x 31 px stamp's light in the peak pixel; equivalent FWHM 2.60 and 1.34 px
    assert native.max() == pytest.approx(0.177, abs=0.005) and binned.max() == pytest.approx(0.473, abs=0.005)
    assert equivalent_fwhm(native) == pytest.approx(2.60, abs=0.05)
    assert equivalent_fwhm(binned) == pytest.approx(1.34, abs=0.05)
    # a star on a pixel corner spreads its peak over four pixels (measured 0.195): phase matters when undersampled
    assert psf.phased_psf("acs", "wfc", "f606w", 31, 2, (0.5, 0.5)).max() == pytest.approx(0.195, abs=0.01)


def test_phased_psf_rejects_an_even_stamp(tinytim):
    with pytest.raises(ValueError, match="odd"):
        psf.phased_psf("acs", "wfc", "f606w", 14)


def test_equivalent_fwhm_of_a_gaussian_is_its_fwhm():
    y, x = np.mgrid[-40:41, -40:41]
    gaussian = np.exp(-(x**2 + y**2) / (2 * 3.0**2))
    assert equivalent_fwhm(gaussian) == pytest.approx(2.3548 * 3.0, rel=1e-3)
    # a Moffat's wings make its equivalent FWHM wider than its FWHM
    assert equivalent_fwhm(moffat_psf(3.0, 2.5, size=81)) > 3.0


def test_hst_frames_use_tinytim_models_and_their_own_phases(tinytim):
    mix = SceneMix(hst_psf=1.0)
    params = [ground.ground_scene((64, 64), np.random.default_rng((1, k)), mix)[1] for k in range(30)]
    names = {p["psf"].split(" ")[0] for p in params}
    assert all(p["psf"].split("_")[0] in ("acs", "wfc3") and "hrc" not in p["psf"] for p in params)
    assert len(names) > 15 and {p["binning"] for p in params} == {1, 2}
    assert all(p["spikes"] == 0.0 for p in params)  # TinyTim's models carry the spider's spikes themselves
    fwhm = np.array([p["fwhm"] for p in params])
    assert 1.0 < fwhm.min() and fwhm.max() < 3.5


def test_hst_frames_place_each_star_as_its_phased_tinytim_stamp(tinytim, monkeypatch):
    monkeypatch.setitem(ground.GROUND_RANGES, "star_flux", (1e4, 1e4 * (1 + 1e-9)))
    monkeypatch.setitem(ground.GROUND_RANGES, "galaxy_density", (0.0, 0.0))
    placed = []
    add_stamp = ground._add_stamp
    monkeypatch.setattr(ground, "_add_stamp", lambda image, stamp, y0, x0: placed.append(stamp) or
                        add_stamp(image, stamp, y0, x0))
    _, params = ground.ground_scene((64, 64), np.random.default_rng(4), SceneMix(hst_psf=1.0))
    assert len(placed) > 3 and all(stamp.shape == (ground.HST_STAMP, ground.HST_STAMP) for stamp in placed)
    instrument, detector, rest = params["psf"].split("_")
    filter_name = rest.split(" ")[0]
    centred = psf.phased_psf(instrument, detector, filter_name, ground.HST_STAMP, params["binning"])
    peaks = np.array([stamp.max() for stamp in placed]) / 1e4
    # every star is the same model at its own phase: never sharper than the model centred on a pixel, often softer
    assert peaks.max() <= centred.max() * 1.001 and peaks.min() < 0.95 * centred.max()
    for stamp in placed:
        assert stamp.sum() == pytest.approx(1e4)


def test_the_default_mix_and_other_fractions_draw_no_hst_psf():
    plain, params = ground.ground_scene((64, 64), np.random.default_rng(8))
    assert "psf" not in params
    mixed, _ = ground.ground_scene((64, 64), np.random.default_rng(8), SceneMix(hst_psf=0.0, on_sources=0.3))
    np.testing.assert_array_equal(plain, mixed)


def test_scene_mix_rejects_a_bad_hst_fraction():
    with pytest.raises(ValueError, match="hst_psf"):
        SceneMix(hst_psf=1.5)


def test_the_card_of_an_hst_psf_run_says_so(tmp_path, tinytim):
    from astro_deepcr.cli import main

    out = tmp_path / "run"
    assert main(["train-ground", str(out), "--init-from", "none", "--width", "4", "--steps", "2", "--batch-size", "2",
                 "--crop", "32", "--validation-frames", "1", "--quiet", "--on-sources", "0.25", "--hst-psf",
                 "0.5"]) == 0
    card = json.loads((out / "my-ground.json").read_text())
    assert "--on-sources 0.25 --hst-psf 0.5 (" in card["provenance"]
    assert "(50% of the imaging frames instead: TinyTim PSFs of ACS/WFC and WFC3/UVIS" in card["training_data"]

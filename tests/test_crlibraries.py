# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Cosmic-ray libraries (issue #27): simulated tracks, a frame's own PSF, harvesting any 2-D frame."""

import numpy as np
import pytest

from astro_deepcr.evaluation.libraries import (
    LIBRARIES,
    cosmic_ray_library,
    library_stats,
    register_frame_library,
)
from astro_deepcr.starpsf import StarPSF, measure_psf, moffat_pixels, moffat_sharpness
from astro_deepcr.training.crlibrary import harvest_frame
from astro_deepcr.training.crtracks import most_probable_charge, simulate_tracks

READ_NOISE = 5.0
SKY = 100.0
#: Cosmic rays to plant: a single hit, a short diagonal, a straight track (e-; 900, 1500, 4500 e-).
CR_SHAPES = (np.array([[900.0]]), np.array([[700.0, 0.0], [0.0, 800.0]]),
             np.array([[300.0, 900.0, 1200.0, 1000.0, 800.0, 300.0]]))


def starfield(fwhm, n_stars=40, n_crs=30, shape=(256, 256), seed=0):
    """Sky + Moffat stars (flux 8000-60000 e-) + planted cosmic rays, with Poisson and read noise.

    Returns the frame, the star positions and the planted CRs' (y, x, charge).
    """
    rng = np.random.default_rng(seed)
    clean = np.full(shape, SKY)
    stars = []
    while len(stars) < n_stars:
        y, x = rng.uniform(12, shape[0] - 12), rng.uniform(12, shape[1] - 12)
        if all(np.hypot(y - sy, x - sx) > 14 for sy, sx in stars):
            stars.append((y, x))
            box = (slice(int(y) - 10, int(y) + 11), slice(int(x) - 10, int(x) + 11))
            clean[box] += moffat_pixels((21, 21), (y - int(y) + 10, x - int(x) + 10), fwhm, 2.5,
                                        flux=rng.uniform(8e3, 6e4))
    crs = []
    while len(crs) < n_crs:
        y, x = int(rng.integers(5, shape[0] - 6)), int(rng.integers(5, shape[1] - 6))
        if all(np.hypot(y - sy, x - sx) > 4 * fwhm + 6 for sy, sx in stars) and \
                all(np.hypot(y - cy, x - cx) > 8 for cy, cx, _ in crs):
            shape_ = CR_SHAPES[len(crs) % len(CR_SHAPES)]
            crs.append((y, x, float(shape_.sum())))
            clean[y:y + shape_.shape[0], x:x + shape_.shape[1]] += shape_
    image = rng.poisson(clean).astype(float) + rng.normal(0.0, READ_NOISE, shape)
    return image, stars, crs


def test_simulated_tracks_are_deterministic_and_physical():
    first = simulate_tracks(200, 15.0, 15.0, rng=3)
    again = simulate_tracks(200, 15.0, 15.0, rng=3)
    other = simulate_tracks(200, 15.0, 15.0, rng=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other))
    thick = simulate_tracks(200, 250.0, 15.0, rng=3)
    assert all(stamp.dtype == np.float32 and (stamp >= 0).all() and stamp.sum() > 0 for stamp in first + thick)
    thin_stats, thick_stats = library_stats(first), library_stats(thick)
    assert thick_stats["longest_median"] >= 4 * thin_stats["longest_median"]  # measured 15 vs 2 (1000 tracks)
    assert max(max(stamp.shape) for stamp in thick) <= 60 + 6  # max_length_px plus diffusion
    # Landau: the most probable charge of a vertical MIP; the median is above it (oblique paths, the tail)
    assert most_probable_charge(300.0) == pytest.approx(24000.0)
    assert most_probable_charge(15.0) / 15 == pytest.approx(62.8, abs=0.5)
    assert 1.0 < thin_stats["charge_median"] / most_probable_charge(15.0) < 2.0
    assert 1.0 < thick_stats["charge_median"] / most_probable_charge(250.0) < 2.0
    with pytest.raises(ValueError, match="thickness_um"):
        simulate_tracks(1, 0.0)


def test_named_libraries():
    thin = cosmic_ray_library("thin-ccd")
    assert len(thin) == 1000 and thin is not cosmic_ray_library("thin-ccd")  # a fresh list of cached stamps
    assert np.array_equal(thin[7], cosmic_ray_library("thin-ccd")[7])
    assert set(LIBRARIES) >= {"hrc", "hrc-lacosmic", "thin-ccd", "thick-ccd"}
    with pytest.raises(ValueError, match="unknown cosmic-ray library 'nope'"):
        cosmic_ray_library("nope")
    with pytest.raises(ValueError, match="built in"):
        register_frame_library("hrc", lambda: None)


@pytest.mark.parametrize("fwhm", [1.0, 4.0])
def test_measure_psf_from_the_frames_own_stars(fwhm):
    image, stars, _ = starfield(fwhm)
    psf = measure_psf(image, READ_NOISE)
    assert psf.source == "stars" and psf.n_stars >= 20
    assert psf.fwhm == pytest.approx(fwhm, rel=0.15)
    assert 0.95 < psf.image.sum() <= 1.0 and np.argmax(psf.image) == psf.image.size // 2


def test_harvest_recovers_the_crs_and_no_star_on_an_undersampled_frame():
    """Undersampled stars (FWHM 1 px, as on a WF chip) are far sharper than HRC's PSF: they must not leak in."""
    image, stars, crs = starfield(1.0)
    stamps = harvest_frame(image, READ_NOISE)
    charges = sorted(float(stamp.sum()) for stamp in stamps)
    assert len(stamps) == len(crs)  # every planted CR, and no star (the faintest star has 8000 e-)
    planted = np.array(sorted(c for _, _, c in crs))
    assert np.allclose(charges, planted, rtol=0.15, atol=100)
    # the same frame judged against an HRC-like PSF (sharpness 2.4): the undersampled stars leak in
    hrc_like = StarPSF(fwhm=1.5, beta=1.5, sharpness=2.4, n_stars=0, source="given")
    assert len(harvest_frame(image, READ_NOISE, psf=hrc_like)) >= len(crs) + 10
    assert moffat_sharpness(1.0, 2.5) > 2 * 2.4


def test_harvest_on_a_seeing_limited_frame_and_as_a_library():
    image, stars, crs = starfield(4.0, seed=1)
    register_frame_library("synthetic-test", lambda: {"electrons": image, "readnoise": READ_NOISE})
    stamps = cosmic_ray_library("synthetic-test")
    assert len(stamps) == len(crs)
    with pytest.raises(ValueError, match="read_noise must be >= 0"):
        harvest_frame(image, -1.0)
    # read noise 0: the sky's photon noise is all the noise (IRAF's dev$pix); the planted cosmic rays all come back
    assert len(harvest_frame(image, 0.0)) >= len(crs)
    with pytest.raises(ValueError, match="bad shape"):
        harvest_frame(image, READ_NOISE, bad=np.zeros((3, 3), bool))


def test_wfpc2_example_chips():
    """WF2 (the ``wfpc2`` frame and library) and WF3 (the held-out ``wfpc2-wf3`` frame) of stsci.tools' exposure."""
    pytest.importorskip("stsci.tools")
    from astro_deepcr.datasets import load_wfpc2_example

    try:
        wf2, wf3 = load_wfpc2_example(), load_wfpc2_example(chip=3)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    assert (wf2["name"], wf3["name"]) == ("wfpc2", "wfpc2-wf3")
    assert wf2["electrons"].shape == wf3["electrons"].shape == (749, 749)
    assert not np.array_equal(wf2["electrons"], wf3["electrons"])
    # 0.95 x (SATURATE 4095 DN - the chip's BIASEVEN: 352.5 DN on WF2, 303.1 DN on WF3) x 7 e-/DN
    assert wf2["satlevel"] == pytest.approx(0.95 * (4095 - 352.5027) * 7, rel=1e-6)
    assert wf3["satlevel"] == pytest.approx(0.95 * (4095 - 303.1454) * 7, rel=1e-6)
    assert int((wf3["electrons"] >= wf3["satlevel"]).sum()) == 648  # measured
    assert load_wfpc2_example(chip=1)["name"] == "wfpc2-pc1" and load_wfpc2_example(chip=4)["name"] == "wfpc2-wf4"
    # each chip's header names its own detector (the GEIS primary header holds the first group's)
    assert (wf2["header"]["DETECTOR"], wf3["header"]["DETECTOR"]) == (2, 3)
    with pytest.raises(ValueError, match="chip must be 1"):
        load_wfpc2_example(chip=5)

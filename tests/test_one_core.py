# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""One frame, one answer (issue #20): every door goes through `astro_deepcr.detection.detect`.

On the real ACS/HRC frame: ``flag``, ``clean``, `DeepCR` with the same DQ and
`cosmicray_deepcr` on ``CCDData.read(flt, hdu=1, hdu_mask="DQ")`` (how a
ccdproc user opens it) give the same cosmic rays on DQ == 0, to 2 % of
``flag``'s; on the real SAAO frame ``clean`` and `cosmicray_deepcr` give the
identical mask.
"""

import os
import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from astro_deepcr import DeepCR, cosmicray_deepcr, flag_cosmic_rays
from astro_deepcr.batch import clean_files
from astro_deepcr.datasets import hst_example_path
from astro_deepcr.detection import detect
from astro_deepcr.dq import CR_BIT

try:
    HRC = hst_example_path()
except FileNotFoundError:  # pragma: no cover - spherical_geometry ships it
    HRC = None
pytestmark = pytest.mark.skipif(HRC is None, reason="the ACS/HRC example frame (spherical_geometry) is not installed")
FLOAT32 = dict(precision="float32", device="cpu")


@pytest.fixture(scope="module")
def doors(tmp_path_factory):
    """The cosmic rays of the HRC frame's SCI,1 through each door, on DQ == 0 pixels."""
    tmp = tmp_path_factory.mktemp("doors")
    with fits.open(HRC) as hdul:
        science = hdul["SCI", 1].data.astype(np.float32)
        dq = hdul["DQ", 1].data.astype(np.int64)
    good = dq == 0
    flagged = shutil.copy(HRC, tmp / "j8bt06nyq_flt.fits")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "no deepCR mask model for ACS/HRC")  # ground, HST's uncarded-camera model
        flag_cosmic_rays(flagged, **FLOAT32)
        results = clean_files([HRC], tmp / "clean", progress=False, **FLOAT32)
    assert results[0].ok, results[0].message
    with fits.open(flagged) as hdul:
        masks = {"flag": (hdul["DQ", 1].data.astype(np.int64) & CR_BIT) > 0}
    with fits.open(tmp / "clean" / "j8bt06nyq_flt.fits") as hdul:
        masks["clean"] = hdul["CRMASK", 1].data.astype(bool)
    masks["DeepCR"] = DeepCR("ground", **FLOAT32).detect(science, dq=dq).cr_mask
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ccdproc's own reading messages, the nearest-model warning
        ccd = CCDData.read(HRC, hdu=1, hdu_mask="DQ")
        masks["ccdproc"] = cosmicray_deepcr(ccd, **FLOAT32).mask & ~ccd.mask
    return {door: mask & good for door, mask in masks.items()}


def test_flag_finds_what_it_found_when_measured(doors):
    # measured 4970 CR pixels on DQ == 0 with ground, the model ACS/HRC gets since session 35 (float32, CPU;
    # saturation protection radius 3, fill_bits 1,2,4); ACS-WFC, its model before, gave 2412
    assert 4780 < doors["flag"].sum() < 5160


@pytest.mark.parametrize("door", ["clean", "DeepCR"])
def test_fits_doors_give_the_flag_mask(doors, door):
    assert np.array_equal(doors[door], doors["flag"])


def test_ccdproc_door_gives_the_flag_mask_to_two_percent(doors):
    """The ccdproc user's boolean mask (DQ != 0) has no bits: it may differ only where bits decide."""
    differ = (doors["ccdproc"] ^ doors["flag"]).sum()
    assert differ <= 0.02 * doors["flag"].sum()


def test_boolean_mask_pixels_are_not_filled():
    """A boolean mask marks pixels bad (never flagged) without changing what the network sees."""
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 10.0, (96, 96)).astype(np.float32)
    image[40:46, 40:46] = 9.0e4  # a bright star plateau, masked
    image[60, 20:23] += 3000.0  # a cosmic ray
    mask = np.zeros(image.shape, bool)
    mask[40:46, 40:46] = True
    plain = detect(image, spec="ACS-WFC", **FLOAT32)
    masked = detect(image, spec="ACS-WFC", mask=mask, **FLOAT32)
    assert not masked.fill.any()
    assert np.array_equal(masked.probability[~mask], plain.probability[~mask])
    assert not masked.cr_mask[mask].any() and masked.cr_mask[60, 21]


def test_saao_frame_ccdproc_and_clean_identical(tmp_path):
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.utils.data import get_pkg_data_filename

    try:
        raw = get_pkg_data_filename("data/a8280271.fits", package="ccdproc.tests")
    except (OSError, ValueError):  # pragma: no cover
        pytest.skip("ccdproc's test data are not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the raw header's non-standard COMMENT card
        ccd = CCDData.read(raw, unit="adu")
    header = ccd.header
    ccd = ccdproc.subtract_overscan(ccd, fits_section=header["BIASSEC"], overscan_axis=1, add_keyword=False)
    ccd = ccdproc.trim_image(ccd, fits_section=header["TRIMSEC"], add_keyword=False)
    ccd.meta["BUNIT"] = "adu"
    path = os.fspath(tmp_path / "saao.fits")
    ccd.write(path, overwrite=True)
    ours = cosmicray_deepcr(CCDData.read(path), **FLOAT32)
    clean_files([path], tmp_path / "clean", progress=False, **FLOAT32)
    with fits.open(tmp_path / "clean" / "saao.fits") as hdul:
        cleaned = hdul["CRMASK", 1].data.astype(bool)
    assert ours.mask.sum() > 20  # measured 86 on the exposed rows alone (docs/ground.rst); the full chip here
    assert np.array_equal(ours.mask, cleaned)


def test_a_boolean_mask_says_which_bright_pixels_are_saturated():
    """With a mask, pixels >= satlevel seed the protection only where masked; without one, all of them do."""
    rng = np.random.default_rng(5)
    image = rng.normal(100.0, 10.0, (96, 96)).astype(np.float32)
    image[30:34, 30:34] = 9.0e4  # above satlevel, masked by the user: saturated, its rim protected
    image[60:64, 60:64] = 9.0e4  # above satlevel, left unmasked: never flagged, rim not protected
    mask = np.zeros(image.shape, bool)
    mask[30:34, 30:34] = True
    for star in ((30, 31), (60, 61)):  # a cosmic ray on each star's rim, touching its edge
        image[star[0] - 1, star[1]:star[1] + 2] += 4000.0
    masked = detect(image, spec="ACS-WFC", mask=mask, satlevel=6.0e4, **FLOAT32)
    unmasked = detect(image, spec="ACS-WFC", satlevel=6.0e4, **FLOAT32)
    assert masked.saturated[60:64, 60:64].all() and not masked.cr_mask[60:64, 60:64].any()
    assert not masked.cr_mask[29, 31:33].any()  # the masked star's rim: protected
    assert masked.cr_mask[59, 61:63].any()  # the unmasked bright star's rim: not protected
    assert not unmasked.cr_mask[59, 61:63].any() and not unmasked.cr_mask[29, 31:33].any()


def test_the_star_shape_test_through_two_doors(tmp_path):
    """``flag`` (read noise from READNSE*) and `cosmicray_deepcr` (read noise given, the DQ as the ccdproc user's
    mask, ``satlevel`` the lowest DQ-saturated value) add the star-shape test's flags alike, to 6.5 % of the flag
    door's (measured: 461 of 7760 px differ; without the test 2 %; 552 of 9323 in session 42, before the test's
    worst-first replacement and per-position bounds). The test learns from the stars the door's
    masks leave usable, so it differs more: here ``satlevel`` marks 182 unmasked pixels saturated that the DQ
    does not, which takes 1148 px of stamps out."""
    flagged = shutil.copy(HRC, tmp_path / "j8bt06nyq_flt.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flag_cosmic_rays(flagged, star_shape=True, **FLOAT32)
        ccd = CCDData.read(HRC, hdu=1, hdu_mask="DQ")
        # the lowest DQ-saturated value (DQ 256 | 2048) as satlevel: the ccdproc user's mask has no bits to say it
        satlevel = float(ccd.data[(ccd.mask is not None) & ((dq_values(HRC) & (256 | 2048)) > 0)].min())
        nccd = cosmicray_deepcr(ccd, readnoise=4.71, star_shape=True, satlevel=satlevel, **FLOAT32)
    with fits.open(flagged) as hdul:
        good = hdul["DQ", 1].data.astype(np.int64) & ~CR_BIT == 0
        flag = (hdul["DQ", 1].data.astype(np.int64) & CR_BIT) > 0
        assert hdul["SCI", 1].header["DCRSTAR"].endswith("stars") and "px added, map of" in hdul[0].header["DCRSTAR"]
    ccdproc = nccd.mask & ~ccd.mask
    assert nccd.meta["DCRSTAR"].endswith("stars")
    assert 7560 < (flag & good).sum() < 7960
    assert ((ccdproc ^ flag) & good).sum() <= 0.065 * (flag & good).sum()


def dq_values(path):
    with fits.open(path) as hdul:
        return hdul["DQ", 1].data.astype(np.int64)


def test_clean_and_flag_give_the_same_star_shape_mask(tmp_path):
    """``clean --star-shape`` and ``flag --star-shape`` on the same file: the same DQ, read noise and test, so the
    same mask (as the two doors give without it)."""
    flagged = shutil.copy(HRC, tmp_path / "j8bt06nyq_flt.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flag_cosmic_rays(flagged, star_shape=True, **FLOAT32)
        results = clean_files([HRC], tmp_path / "clean", progress=False, star_shape=True, **FLOAT32)
    assert results[0].ok, results[0].message
    with fits.open(flagged) as hdul:
        flag = (hdul["DQ", 1].data.astype(np.int64) & CR_BIT) > 0
        note = hdul["SCI", 1].header["DCRSTAR"]
    with fits.open(tmp_path / "clean" / "j8bt06nyq_flt.fits") as hdul:
        clean = hdul["CRMASK", 1].data.astype(bool)
        assert hdul["SCI", 1].header["DCRSTAR"] == note and "px added, map of" in note
    np.testing.assert_array_equal(clean, flag)


def test_the_demo_and_flag_give_the_same_star_shape_mask(tmp_path):
    """``astro-deepcr demo --star-shape`` goes through the same core as ``flag --star-shape``: on the demo's own
    exposure, at the doors' default precision, the same mask and the same ``DCRSTAR`` note."""
    from astro_deepcr.demo import run_demo, summary_lines

    flagged = shutil.copy(HRC, tmp_path / "j8bt06nyq_flt.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flag_cosmic_rays(flagged, device="cpu", star_shape=True)
        summary = run_demo(tmp_path / "demo", device="cpu", plot=False, star_shape=True)
    with fits.open(flagged) as hdul:
        flag = (hdul["DQ", 1].data.astype(np.int64) & CR_BIT) > 0
        note = hdul["SCI", 1].header["DCRSTAR"]
    with fits.open(summary["fits"]) as hdul:
        np.testing.assert_array_equal(hdul["CRMASK"].data.astype(bool), flag)
        assert hdul[0].header["DCRSTAR"] == note
    assert summary["star_shape"] == note and "px added, map of" in note
    assert summary_lines(summary)[-1] == f"star-shape test: {note}"

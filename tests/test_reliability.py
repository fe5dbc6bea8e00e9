# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Bad inputs and faults, one table: every case names the exact exception type
and a message fragment, or checks the documented result.

Related cases live beside their modules (test_deepcr, test_zoo, test_engine,
test_ccdproc_step, test_drizzle, test_fitsutil, test_memory, test_cli,
test_batch); this module collects the public-API behaviour in one place so
that the list is easy to audit.
"""

import gzip
import hashlib
import os
import shutil
import stat
import warnings

import numpy as np
import pytest
import torch
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr import DeepCR, ModelFileError, cosmicray_deepcr, flag_cosmic_rays, zoo
from astro_deepcr.fitsutil import FileLock, FileLockError, FitsUpdateError
from astro_deepcr.nets import mask_net
from astro_deepcr.training.flc import write_flc_stack

RNG = np.random.default_rng(0)
SKY = RNG.normal(60, 8, (48, 40)).astype(np.float32)
SKY[20, 5:10] += 2000.0


@pytest.fixture(scope="module")
def model():
    return DeepCR("ACS-WFC", device="cpu", progress=False)


def _checksum(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# -- 1. arrays through DeepCR: (case id, image, exception, message) ------------------------------------------------
ARRAY_ERRORS = [
    ("complex", np.zeros((8, 8), np.complex64), TypeError, "real numeric dtype"),
    ("bool", np.zeros((8, 8), bool), TypeError, "real numeric dtype"),
    ("object", np.array([[None, 1], [2, 3]], dtype=object), TypeError, "real numeric dtype"),
    ("string", np.array([["1", "2"]]), TypeError, "real numeric dtype"),
    ("ragged list", [[1.0, 2.0], [3.0]], TypeError, "2-D numeric array"),
    ("0-D", np.float32(1.0), ValueError, "must be 2-D, got a 0-D"),
    ("1-D", np.zeros(16), ValueError, "must be 2-D, got a 1-D"),
    ("3-D", np.zeros((4, 8, 8)), ValueError, "must be 2-D, got a 3-D"),
    ("3-D cube of one plane", np.zeros((1, 8, 8)), ValueError, "must be 2-D, got a 3-D"),
    ("empty rows", np.zeros((0, 8)), ValueError, "is empty"),
    ("empty columns", np.zeros((8, 0)), ValueError, "is empty"),
]


@pytest.mark.parametrize("case, image, error, message", ARRAY_ERRORS, ids=[c[0] for c in ARRAY_ERRORS])
def test_bad_arrays(model, case, image, error, message):
    with pytest.raises(error, match=message):
        model.clean(image)


ARRAY_RESULTS = ["int16", "uint16", "int64", "uint8", "float16", "float64", "big-endian float32",
                 "big-endian int32", "negative", "1x1", "3x5", "elongated 2x3000", "elongated 700x3"]


@pytest.mark.parametrize("case", ARRAY_RESULTS)
def test_accepted_arrays_give_documented_results(model, case):
    shapes = {"1x1": (1, 1), "3x5": (3, 5), "elongated 2x3000": (2, 3000), "elongated 700x3": (700, 3)}
    dtypes = {"int16": "i2", "uint16": "u2", "int64": "i8", "uint8": "u1", "float16": "f2", "float64": "f8",
              "big-endian float32": ">f4", "big-endian int32": ">i4"}
    if case in shapes:
        image = np.full(shapes[case], 60.0, np.float32)
    elif case == "negative":
        image = -SKY
    else:
        image = np.clip(SKY, 0, 255).astype(dtypes[case]) if case == "uint8" else SKY.astype(dtypes[case])
    before = _checksum(image)
    mask, cleaned = model.clean(image)
    assert mask.shape == cleaned.shape == image.shape and mask.dtype == bool
    assert cleaned.dtype == (np.float64 if case == "float64" else np.float32)
    assert _checksum(image) == before  # never modified
    if case in shapes:
        assert not mask.any()
    elif case == "negative":
        # documented: processed like any image, so the -2000 e- trough of the negated CR track is "a spike" and
        # may be flagged (measured: 9 pixels, all within 1 px of the trough), and nothing anywhere else
        near_trough = np.zeros(image.shape, bool)
        near_trough[19:22, 4:11] = True
        assert not mask[~near_trough].any() and mask.sum() <= 12
        # the negative values pass through untouched (not clipped, not treated as bad)
        assert np.isfinite(cleaned).all() and np.array_equal(cleaned[~mask], image[~mask])
    elif case != "uint8":  # the clipped uint8 image has no CR left
        assert mask[20, 5:10].all()


def test_nan_and_inf_pixels_are_documented_bad_pixels(model):
    image = SKY.copy()
    image[3, 3], image[30, 30], image[31, 31] = np.nan, np.inf, -np.inf
    before = _checksum(image)
    mask, cleaned = model.clean(image)
    assert not mask[3, 3] and not mask[30, 30] and not mask[31, 31]
    assert np.isnan(cleaned[3, 3]) and np.isposinf(cleaned[30, 30]) and np.isneginf(cleaned[31, 31])
    assert np.isfinite(cleaned[np.isfinite(image)]).all()  # no NaN neighbours
    assert mask[20, 5:10].all() and _checksum(image) == before


def test_fully_nan_image_warns_and_returns_the_input(model):
    with pytest.warns(AstropyUserWarning, match="no good"):
        mask, cleaned = model.clean(np.full((16, 16), np.nan))
    assert not mask.any() and np.isnan(cleaned).all()


def test_masked_array_pixels_are_excluded_and_the_mask_untouched(model):
    masked = np.ma.array(SKY.copy(), mask=np.zeros(SKY.shape, bool))
    masked.mask[20, 5:10] = True
    mask, cleaned = model.clean(masked)
    assert not mask[20, 5:10].any() and not masked.mask[0, 0]
    np.testing.assert_array_equal(cleaned[20, 5:10], SKY[20, 5:10])


def test_values_near_the_float32_limits(model):
    image = SKY.astype(np.float64)
    image[5, 5], image[6, 6], image[7, 7] = 3.4e38, -3.4e38, 1e300  # the last overflows float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)  # overflow may be reported, never crash
        probability = model.probability(image)
    assert np.isfinite(probability).all() and probability[7, 7] == 0


@pytest.mark.parametrize("threshold, error, message", [
    (-0.01, ValueError, r"threshold must lie in \[0, 1\]"),
    (1.01, ValueError, r"threshold must lie in \[0, 1\]"),
    (float("nan"), ValueError, r"threshold must lie in \[0, 1\]"),
    ("0.5x", TypeError, "threshold must be a number"),
], ids=["below 0", "above 1", "NaN", "not a number"])
def test_threshold_outside_0_1(model, threshold, error, message):
    with pytest.raises(error, match=message):
        model.mask(SKY, threshold=threshold)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"mask": "ACS-HRC"}, ValueError, "unknown model 'ACS-HRC'"),
    ({"mask": "ACS-WFC-F606W-2-32"}, ValueError, "is a inpaint model, not a mask model"),
    ({"inpaint": "spline"}, ValueError, "unknown model 'spline'"),
    ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
    ({"precision": "int8"}, ValueError, "precision must be"),
], ids=["unknown mask model", "inpaint model as mask", "unknown inpaint", "unknown device", "bad precision"])
def test_bad_constructor_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        DeepCR(**({"mask": "ACS-WFC"} | kwargs))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_cuda_requested_without_a_gpu():
    with pytest.raises(ValueError, match="CUDA is not available; use 'cpu' or 'auto'"):
        DeepCR("ACS-WFC", device="cuda")


# -- 2. weights files ------------------------------------------------------------------------------------------------
def _user_model(tmp_path, name, mutate=None, **overrides):
    path = tmp_path / f"{name}.safetensors"
    zoo.save_network(mask_net(2, 4), path)
    if mutate:
        mutate(path)
    fields = {"name": name, "kind": "mask", "depth": 2, "width": 4, "file": str(path),
              "sha256": zoo.file_sha256(path) if path.exists() else "0" * 64} | overrides
    return zoo.ModelSpec(**fields)


WEIGHT_CASES = [
    ("missing", lambda p: p.unlink(), {}, "not found"),
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[:200]), {}, "cannot read .* as safetensors"),
    ("corrupted", None, {"sha256": "f" * 64}, "checksum mismatch"),
    ("wrong architecture", None, {"width": 8}, "do not match a mask UNet 2-8"),
    ("pickle", lambda p: torch.save({"a": torch.zeros(1)}, p), {}, "looks like a pickle"),
    ("not weights at all", lambda p: p.write_text("hello"), {}, "cannot read .* as safetensors"),
]


@pytest.mark.parametrize("case, mutate, overrides, message", WEIGHT_CASES, ids=[c[0] for c in WEIGHT_CASES])
def test_bad_weights_files_name_the_model(tmp_path, case, mutate, overrides, message):
    spec = _user_model(tmp_path, "weights-" + case.replace(" ", "-"), mutate, **overrides)
    with pytest.raises(ModelFileError, match=f"model '{spec.name}'.*{message}"):
        zoo.load_network(spec)


# -- 3. CCDData through cosmicray_deepcr ---------------------------------------------------------------------------
CCD_CASES = [
    ("dimensionless unit", CCDData(SKY, unit=u.dimensionless_unscaled), {}, u.UnitsError, "cannot convert data in"),
    ("unit not convertible", CCDData(SKY, unit="m"), {}, u.UnitsError, "cannot convert data in m"),
    ("count rate", CCDData(SKY, unit="electron / s"), {}, u.UnitsError, "multiply count rates"),
    ("gain zero", CCDData(SKY, unit="adu"), {"gain": 0.0}, ValueError, "gain must be positive"),
    ("gain negative", CCDData(SKY, unit="adu"), {"gain": -1.0}, ValueError, "gain must be positive"),
    ("gain NaN", CCDData(SKY, unit="adu"), {"gain": np.nan}, ValueError, "gain must be positive"),
    ("gain wrong unit", CCDData(SKY, unit="adu"), {"gain": 2 * u.m}, u.UnitsError, "2.0 m is not in electron / adu"),
    # a missing readnoise is ccdproc's default 6.5 e- (with a warning; #17), no longer an error
    ("readnoise negative", CCDData(SKY, unit="adu"), {"gain": 2.0, "readnoise": -1.0, "build_uncertainty": True},
     ValueError, "readnoise must be non-negative"),
    ("inmask shape", CCDData(SKY, unit="adu"), {"inmask": np.zeros((2, 2))}, ValueError, "inmask shape"),
    ("not CCDData", [[1.0]], {}, TypeError, "ccd is not a CCDData or ndarray"),
]


@pytest.mark.parametrize("case, ccd, kwargs, error, message", CCD_CASES, ids=[c[0] for c in CCD_CASES])
def test_bad_ccddata(case, ccd, kwargs, error, message):
    with pytest.raises(error, match=message):
        cosmicray_deepcr(ccd, device="cpu", **kwargs)


def test_ccddata_without_unit():
    ccd = CCDData(SKY, unit="adu")
    ccd._unit = None  # CCDData refuses a missing unit on construction; guard anyway
    with pytest.raises(u.UnitsError, match="CCDData has no unit"):
        cosmicray_deepcr(ccd, device="cpu")


def test_ccddata_input_is_unchanged():
    ccd = CCDData(SKY.copy(), unit="adu", mask=np.zeros(SKY.shape, bool), meta={"A": 1})
    before = (_checksum(ccd.data), _checksum(ccd.mask), dict(ccd.meta), ccd.unit)
    cosmicray_deepcr(ccd, gain=2.0, device="cpu")
    assert (_checksum(ccd.data), _checksum(ccd.mask), dict(ccd.meta), ccd.unit) == before


# -- 4. FITS files for the drizzlepac step -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flc(tmp_path_factory):
    directory = tmp_path_factory.mktemp("flc")
    return write_flc_stack(directory, n_exposures=1, chip_shape=(64, 128), seed=3).files[0]


@pytest.fixture
def flc_copy(flc, tmp_path):
    target = tmp_path / os.path.basename(flc)
    shutil.copy(flc, target)
    return target


def _edit(path, edit):
    with fits.open(path) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
    edit(hdul)
    hdul.writeto(path, overwrite=True)


def _drop(hdul, *keys):
    for key in keys:
        del hdul[hdul.index_of(key)]


FITS_CASES = [
    ("not FITS", lambda p: p.write_text("this is not a FITS file " * 200), FitsUpdateError, "not a FITS file"),
    ("no SCI", lambda p: _edit(p, lambda h: _drop(h, ("SCI", 1), ("SCI", 2))), ValueError,
     "has no SCI extension"),
    ("no DQ", lambda p: _edit(p, lambda h: _drop(h, ("DQ", 1))), ValueError, "but no DQ,1"),
    ("SCI/DQ shapes differ", lambda p: _edit(p, lambda h: setattr(h["DQ", 1], "data", np.zeros((3, 3), np.int16))),
     ValueError, "shape differs from SCI,1"),
    ("unknown BUNIT", lambda p: _edit(p, lambda h: h["SCI", 1].header.set("BUNIT", "JY")), ValueError,
     "unsupported BUNIT"),
]


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
@pytest.mark.parametrize("case, corrupt, error, message", FITS_CASES, ids=[c[0] for c in FITS_CASES])
def test_bad_fits_files(flc_copy, case, corrupt, error, message):
    corrupt(flc_copy)
    before = flc_copy.read_bytes()
    with pytest.raises(error, match=message):
        flag_cosmic_rays([str(flc_copy)], device="cpu")
    assert flc_copy.read_bytes() == before  # nothing written


def test_compressed_file_is_refused(flc_copy):
    gz = flc_copy.with_name(flc_copy.name + ".gz")
    gz.write_bytes(gzip.compress(flc_copy.read_bytes()))
    with pytest.raises(FitsUpdateError, match="is compressed"):
        flag_cosmic_rays([str(gz)], device="cpu")


def test_read_only_file_is_refused(flc_copy):
    os.chmod(flc_copy, stat.S_IRUSR | stat.S_IRGRP)
    before = flc_copy.read_bytes()
    try:
        with pytest.raises(FitsUpdateError, match="read-only"):
            flag_cosmic_rays([str(flc_copy)], device="cpu")
    finally:
        os.chmod(flc_copy, 0o644)
    assert flc_copy.read_bytes() == before


def test_file_being_updated_elsewhere_is_refused(flc_copy):
    before = flc_copy.read_bytes()
    with FileLock(flc_copy):  # stands in for another process's run (flock is per open file)
        with pytest.raises(FileLockError, match="being updated by another process"):
            flag_cosmic_rays([str(flc_copy)], device="cpu")
    assert flc_copy.read_bytes() == before


def test_missing_input_file(tmp_path):
    with pytest.raises(ValueError, match=r"input file\(s\) not found: .*nothing_flc.fits"):
        flag_cosmic_rays([str(tmp_path / "nothing_flc.fits")], device="cpu")


def test_only_the_cr_bit_changes_and_rerun_is_idempotent(flc_copy):
    with fits.open(flc_copy) as hdul:
        sci, err, dq = (hdul[name, 1].data.copy() for name in ("SCI", "ERR", "DQ"))
    flag_cosmic_rays([str(flc_copy)], device="cpu")
    first = flc_copy.read_bytes()
    with fits.open(flc_copy) as hdul:
        np.testing.assert_array_equal(hdul["SCI", 1].data, sci)
        np.testing.assert_array_equal(hdul["ERR", 1].data, err)
        np.testing.assert_array_equal(hdul["DQ", 1].data & ~4096, dq & ~4096)
        assert (hdul["DQ", 1].data & 4096).any()
    flag_cosmic_rays([str(flc_copy)], device="cpu")
    assert flc_copy.read_bytes() == first

# Licensed under a 3-clause BSD style license - see LICENSE.rst
import copy
import warnings

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr import DeepCR, cosmicray_deepcr, zoo
from astro_deepcr.datasets import hst_example_path
from astro_deepcr.provenance import PROVENANCE_KEYWORDS

GAIN = 2.0 * u.electron / u.adu


@pytest.fixture(autouse=True)
def generic_model(monkeypatch):
    """These tests are about ccdproc's conventions on frames without INSTRUME: pin the generic default they
    were measured with, so that measuring a new default (issue #17) does not move them."""
    monkeypatch.setattr(zoo, "GENERIC_DEFAULT_MODEL", "ACS-WFC")


@pytest.fixture
def ccd():
    """ADU image (gain 2 e-/ADU, sky 30 ADU) with three CR tracks, a bad column and a saturated star."""
    rng = np.random.default_rng(7)
    data = rng.normal(30, 3, (80, 96))
    data[20, 10:16] += 900
    data[50:53, 60] += 700
    data[70, 40] += 1200
    y, x = np.mgrid[:80, :96]
    data += 80000 * np.exp(-((y - 35) ** 2 + (x - 75) ** 2) / (2 * 1.3**2))
    data = np.minimum(data, 65535.0)
    mask = np.zeros(data.shape, bool)
    mask[:, 5] = True  # a bad column
    uncertainty = StdDevUncertainty(np.sqrt(np.clip(data, 0, None) / 2.0 + 2.5**2))
    return CCDData(data, unit="adu", mask=mask, uncertainty=uncertainty, meta={"OBJECT": "test"})


TRUTH = (np.s_[20, 10:16], np.s_[50:53, 60], np.s_[70, 40])


def test_same_conventions_as_lacosmic(ccd):
    before = copy.deepcopy(ccd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astroscrappy / ccdproc chatter is not under test
        lacosmic = ccdproc.cosmicray_lacosmic(ccd, gain=GAIN, readnoise=5 * u.electron, gain_apply=True)
    ours = cosmicray_deepcr(ccd, gain=GAIN, readnoise=5 * u.electron, gain_apply=True, device="cpu")
    for result in (lacosmic, ours):
        assert isinstance(result, CCDData)
        assert result.shape == ccd.shape
        assert result.mask.dtype == bool
        assert result.mask[:, 5].all()  # OR-ed with the input mask
        assert result.unit == u.electron
    for region in TRUTH:
        assert ours.mask[region].all()
    cr_only = ours.mask & ~ccd.mask
    np.testing.assert_array_equal(ours.data[~cr_only], ccd.data[~cr_only] * 2.0)  # gain applied, untouched pixels
    # uncertainty in the same (electron) unit as the data; lacosmic leaves it in ADU
    assert isinstance(ours.uncertainty, StdDevUncertainty)
    np.testing.assert_allclose(ours.uncertainty.array[~cr_only], ccd.uncertainty.array[~cr_only] * 2.0)
    np.testing.assert_allclose(lacosmic.uncertainty.array, ccd.uncertainty.array)
    # the call is logged (lacosmic records nothing)
    assert ours.meta["DCRMODEL"] == "ACS-WFC" and ours.meta["DCRNCR"] == int(cr_only.sum())
    assert ours.meta["DCRWHY"] == "generic default, no card matches"
    # ccdproc's log_to_metadata convention: key = function name (shortened as ccdproc shortens its own)
    assert ours.meta["cosmicray_deepcr"] == ("crdeepcr", "Shortened name for ccdproc command")
    assert ours.meta["crdeepcr"] == "ccd=<CCDData>, gain=2.0 electron / adu, readnoise=5.0 electron, " \
        "gain_apply=True, device=cpu"
    assert "DCRMODEL" not in lacosmic.meta
    # the input is unchanged
    np.testing.assert_array_equal(ccd.data, before.data)
    np.testing.assert_array_equal(ccd.mask, before.mask)
    np.testing.assert_array_equal(ccd.uncertainty.array, before.uncertainty.array)
    assert ccd.unit == before.unit and dict(ccd.meta) == dict(before.meta)


def test_ndarray_returns_a_tuple_like_lacosmic(ccd):
    data = ccd.data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lacosmic = ccdproc.cosmicray_lacosmic(data, gain=2.0, readnoise=5.0)
    ours = cosmicray_deepcr(data, gain=2.0, device="cpu")
    assert type(ours) is type(lacosmic) is tuple and len(ours) == len(lacosmic) == 2
    assert ours[0].shape == lacosmic[0].shape and ours[0].dtype == np.float64
    assert ours[1].dtype == lacosmic[1].dtype == bool
    np.testing.assert_array_equal(data, ccd.data)
    # gain_apply multiplies by the gain, as lacosmic does
    np.testing.assert_allclose(ours[0][~ours[1]], data[~ours[1]] * 2.0)
    kept = cosmicray_deepcr(data, gain=2.0, gain_apply=False, device="cpu")[0]
    np.testing.assert_allclose(kept[~ours[1]], data[~ours[1]])


def test_gain_apply_false_keeps_data_unit_and_uncertainty_consistent(ccd):
    out = cosmicray_deepcr(ccd, gain=GAIN, gain_apply=False, device="cpu")
    assert out.unit == u.adu  # lacosmic would say electron here while the data stay in ADU
    cr = out.mask & ~ccd.mask
    np.testing.assert_array_equal(out.data[~cr], ccd.data[~cr])
    np.testing.assert_array_equal(out.uncertainty.array[~cr], ccd.uncertainty.array[~cr])


def test_existing_mask_is_never_a_cr_and_never_a_source(ccd):
    masked = ccd.copy()
    masked.mask[20, 10:16] = True  # hide one CR track behind the input mask
    out = cosmicray_deepcr(masked, gain=GAIN, device="cpu")
    np.testing.assert_array_equal(out.data[20, 10:16], masked.data[20, 10:16] * 2.0)
    inmask = np.zeros(ccd.shape, bool)
    inmask[70, 40] = True
    out = cosmicray_deepcr(ccd, gain=GAIN, inmask=inmask, device="cpu")
    assert not (out.mask & inmask).any()  # not flagged, not added to the output mask
    assert out.data[70, 40] == ccd.data[70, 40] * 2.0


def test_saturated_pixels_are_not_flagged(ccd):
    saturated = ccd.data * 2.0 >= 65535.0  # satlevel is in electrons, as in ccdproc / astroscrappy
    assert saturated.sum() > 0
    out = cosmicray_deepcr(ccd, gain=GAIN, satlevel=65535.0, device="cpu")
    assert not out.mask[saturated].any()
    np.testing.assert_array_equal(out.data[saturated], ccd.data[saturated] * 2.0)


def test_satlevel_is_in_electrons_like_lacosmic(ccd):
    """The track at [20, 10:16] peaks near 930 ADU = 1860 e-: a 1500 e- saturation level protects it."""
    track = np.s_[20, 10:16]
    assert cosmicray_deepcr(ccd, gain=GAIN, satlevel=2500.0, device="cpu").mask[track].all()
    for satlevel in (1500.0, 1500 * u.electron, 750 * u.adu):
        out = cosmicray_deepcr(ccd, gain=GAIN, satlevel=satlevel, device="cpu")
        assert not out.mask[track].any()
    _, array_mask = cosmicray_deepcr(ccd.data, gain=2.0, satlevel=1500.0, device="cpu")
    assert not array_mask[track].any()
    with pytest.raises(u.UnitsError, match="satlevel must be in electron"):
        cosmicray_deepcr(ccd, gain=GAIN, satlevel=5 * u.m, device="cpu")


@pytest.mark.parametrize("kind", [StdDevUncertainty, VarianceUncertainty, InverseVariance])
def test_uncertainty_class_is_kept_and_replaced_pixels_get_the_local_scatter(ccd, kind):
    std = ccd.uncertainty.array
    converted = {StdDevUncertainty: std, VarianceUncertainty: std**2, InverseVariance: 1 / std**2}[kind]
    ccd.uncertainty = kind(converted)
    out = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    assert type(out.uncertainty) is kind
    out_std = out.uncertainty.represent_as(StdDevUncertainty).array
    cr = out.mask & ~ccd.mask
    np.testing.assert_allclose(out_std[~cr], std[~cr] * 2.0, rtol=1e-6)
    # sky noise is 3 ADU = 6 e-: the replaced values' error is the local scatter, in electrons
    assert 3.0 < np.median(out_std[cr]) < 12.0


def test_build_uncertainty_from_gain_and_readnoise(ccd):
    ccd.uncertainty = None
    assert cosmicray_deepcr(ccd, gain=GAIN, device="cpu").uncertainty is None
    out = cosmicray_deepcr(ccd, gain=GAIN, readnoise=5 * u.electron, build_uncertainty=True, device="cpu")
    sky = ~out.mask
    expected = np.sqrt(np.clip(out.data, 0, None) + 25.0)
    np.testing.assert_allclose(out.uncertainty.array[sky], expected[sky], rtol=1e-6)
    # no readnoise given, none in the header: ccdproc's default 6.5 e-, said out loud
    with pytest.warns(AstropyUserWarning, match="default 6.5 electron"):
        default = cosmicray_deepcr(ccd, gain=GAIN, build_uncertainty=True, device="cpu")
    expected = np.sqrt(np.clip(default.data, 0, None) + 6.5**2)
    np.testing.assert_allclose(default.uncertainty.array[sky], expected[sky], rtol=1e-6)
    # the header's read noise is used when none is given
    ccd.meta["RDNOISE"] = 5.0
    header = cosmicray_deepcr(ccd, gain=GAIN, build_uncertainty=True, device="cpu")
    np.testing.assert_allclose(header.uncertainty.array, out.uncertainty.array)


def test_electron_data_and_units(ccd):
    electrons = CCDData(ccd.data * 2.0, unit="electron")
    out = cosmicray_deepcr(electrons, device="cpu")
    assert out.unit == u.electron
    with pytest.warns(AstropyUserWarning, match="not gain-corrected again"):
        again = cosmicray_deepcr(electrons, gain=GAIN, device="cpu")
    np.testing.assert_array_equal(again.mask, out.mask)
    with pytest.raises(u.UnitsError, match="multiply count rates by the exposure time"):
        cosmicray_deepcr(CCDData(ccd.data, unit="electron/s"), device="cpu")
    with pytest.raises(u.UnitsError, match="cannot convert data in m to electron or adu") as refused:
        cosmicray_deepcr(CCDData(ccd.data, unit="m"), device="cpu")
    assert "set ccd.unit" not in str(refused.value)
    # CCDData.read gives BUNIT = 'DN' the unit DN, which astropy does not equate with adu: say what to do
    for unit, advice in (("DN", "set ccd.unit = 'adu'$"), ("DN / s", "set ccd.unit = 'adu / s'$"), ("ct", "'adu'$")):
        with pytest.raises(u.UnitsError, match=advice):
            cosmicray_deepcr(CCDData(ccd.data, unit=unit), device="cpu")


@pytest.mark.parametrize("gain, error, message", [
    (0.0, ValueError, "gain must be positive"),
    (-2.0, ValueError, "gain must be positive"),
    (float("nan"), ValueError, "gain must be positive"),
    ("two", TypeError, "gain must be a number"),
    # session 49: an array gain raised numpy's "truth value of an array is ambiguous"; a time unit said "adu"
    (np.full((2, 2), 2.0) * u.electron / u.adu, TypeError, r"gain must be one value .* shape \(2, 2\)$"),
    (np.full((2, 2), 2.0), TypeError, r"gain must be one value .* shape \(2, 2\)$"),
    (2.0 * u.s, u.UnitsError, r"^gain 2.0 s is not in electron / adu$"),
])
def test_bad_gain(ccd, gain, error, message):
    with pytest.raises(error, match=message):
        cosmicray_deepcr(ccd, gain=gain, device="cpu")


@pytest.mark.parametrize("exptime, error, message", [
    (5 * u.m, u.UnitsError, r"exptime must be one time \(e.g. seconds\), not 5.0 m"),  # was blamed on the data
    ("abc", TypeError, "exptime must be a number of seconds or a Quantity, not 'abc'"),
    (-1.0, ValueError, "exptime must be positive"),
])
def test_bad_exptime_is_named(ccd, exptime, error, message):
    with pytest.raises(error, match=message):
        cosmicray_deepcr(CCDData(ccd.data, unit="adu / s"), gain=GAIN, exptime=exptime, device="cpu")


def test_other_bad_input(ccd):
    with pytest.raises(TypeError, match="ccd is not a CCDData or ndarray"):
        cosmicray_deepcr([[1.0, 2.0]])
    with pytest.raises(ValueError, match="must be 2-D"):
        cosmicray_deepcr(np.zeros(5))
    with pytest.raises(ValueError, match="threshold must lie in"):
        cosmicray_deepcr(ccd, gain=GAIN, threshold=2, device="cpu")
    with pytest.raises(ValueError, match="unknown model"):
        cosmicray_deepcr(ccd, model="HRC", device="cpu")
    with pytest.raises(ValueError, match="inmask shape"):
        cosmicray_deepcr(ccd, inmask=np.zeros((3, 3), bool), device="cpu")


def test_keyword_control_and_fits_round_trip(ccd, tmp_path):
    assert "DCRMODEL" not in cosmicray_deepcr(ccd, gain=GAIN, add_keyword=False, device="cpu").meta
    assert cosmicray_deepcr(ccd, gain=GAIN, add_keyword={"MYKEY": 3}, device="cpu").meta["MYKEY"] == 3
    keyword = ccdproc.Keyword("EXPOSURE", unit=u.s, value=30 * u.s)
    assert cosmicray_deepcr(ccd, gain=GAIN, add_keyword=keyword, device="cpu").meta["EXPOSURE"] == 30 * u.s
    # a FITS Header meta (CCDData.read) takes the logged call without any FITS warning
    ccd.meta = fits.Header(ccd.meta)
    out = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    path = tmp_path / "clean.fits"
    out.write(path)  # no FITS warnings (pytest turns them into errors)
    header = fits.getheader(path)
    assert header["DCRMODEL"] == "ACS-WFC" and header["DCRNCR"] == out.meta["DCRNCR"]
    assert header["COSMICRAY_DEEPCR"] == "crdeepcr" and header["CRDEEPCR"].startswith("ccd=<CCDData>, gain=2.0")
    again = cosmicray_deepcr(CCDData.read(path), device="cpu")  # Header meta keeps comments
    assert again.meta.comments["DCRMODEL"] == PROVENANCE_KEYWORDS["DCRMODEL"][1]
    assert list(again.meta).count("DCRMODEL") == 1  # rerun on its own output: one set of cards


def test_probability_is_returned_on_request(ccd):
    out, probability = cosmicray_deepcr(ccd, gain=GAIN, return_probability=True, device="cpu")
    assert probability.dtype == np.float32 and probability.shape == ccd.shape
    np.testing.assert_array_equal(out.mask & ~ccd.mask, (probability > 0.5) & ~ccd.mask)


def _real_frame():
    try:
        path = hst_example_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with fits.open(path) as hdul:
        data = hdul["SCI"].data.astype(np.float64)
        dq = hdul["DQ"].data.copy()
        exptime = hdul[0].header["EXPTIME"]
    return data, dq, exptime


def test_real_hrc_frame_plausible_fraction_and_stars_left_alone():
    """ACS/HRC F606W, 60 s, 47 Tuc, one exposure (real CRs, no truth mask).

    The ACS-WFC model is applied out of its domain (HRC pixels are smaller and
    the PSF is sampled differently); what can be checked without a truth mask
    is the flagged fraction and how many star-core pixels each method flags.
    """
    data, dq, exptime = _real_frame()
    ccd = CCDData(data, unit="electron", mask=dq != 0)
    ours = cosmicray_deepcr(ccd, satlevel=1e9, device="cpu")  # the same saturation level for both: DQ masks it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lacosmic = ccdproc.cosmicray_lacosmic(ccd, gain=1.0, readnoise=4.7, objlim=3.5, satlevel=1e9)
    ours_cr, lacosmic_cr = ours.mask & ~ccd.mask, lacosmic.mask & ~ccd.mask
    # HRC: ~1.2 events/cm^2/s on 21 um pixels, i.e. ~3e-4 events per pixel in 60 s, a few pixels each;
    # measured 3.65e-3 (3828 pixels, float32, 2026-11-29; 4.23e-3 while masked pixels were median-filled before
    # the network, which flattened the saturated stars): within ~8 % (bfloat16 moves < ~1.5 % of CR pixels)
    assert 3.36e-3 < ours_cr.mean() < 3.95e-3
    # star cores: 5x5 local maxima whose 3x3 mean is far above the sky (a CR is too narrow for that)
    from scipy import ndimage

    smooth = ndimage.uniform_filter(data, 3)
    sky = np.median(data[~ccd.mask])
    cores = (data == ndimage.maximum_filter(data, 5)) & (smooth > sky + 500) & ~ccd.mask
    assert cores.sum() > 50
    # measured 0.047 (268 of 5734 cores; 0.054 with masked pixels filled; LACosmic objlim 3.5 flags 3969 of them)
    assert ours_cr[cores].mean() < 0.056
    assert ours_cr[cores].sum() < lacosmic_cr[cores].sum()


def test_replaced_pixels_are_never_claimed_exact():
    """A flat neighbourhood has zero scatter; the replaced value's error is floored at its sources' uncertainty."""
    data = np.full((64, 64), 30.0)
    data[30, 20:26] += 900
    ccd = CCDData(data, unit="adu", uncertainty=StdDevUncertainty(np.full(data.shape, 3.0)))
    out = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    assert out.mask[30, 20:26].all()
    np.testing.assert_allclose(out.data[out.mask], 60.0)
    np.testing.assert_allclose(out.uncertainty.array, 6.0)  # 3 ADU = 6 e-, replaced or not


def test_readnoise_units_and_values(ccd):
    ccd.uncertainty = None
    in_electrons = cosmicray_deepcr(ccd, gain=GAIN, readnoise=5 * u.electron, build_uncertainty=True, device="cpu")
    in_adu = cosmicray_deepcr(ccd, gain=GAIN, readnoise=2.5 * u.adu, build_uncertainty=True, device="cpu")
    np.testing.assert_allclose(in_adu.uncertainty.array, in_electrons.uncertainty.array)
    for readnoise, error, message in [(5 * u.m, u.UnitsError, "readnoise must be in electron"),
                                      (-1.0, ValueError, "readnoise must be non-negative"),
                                      ("five", TypeError, "readnoise must be a number")]:
        with pytest.raises(error, match=message):
            cosmicray_deepcr(ccd, gain=GAIN, readnoise=readnoise, device="cpu")
        with pytest.raises(error, match=message):
            cosmicray_deepcr(ccd.data, gain=2.0, readnoise=readnoise, device="cpu")


def test_bad_satlevel_and_uncertainty_class(ccd):
    from astropy.nddata import UnknownUncertainty

    with pytest.raises(TypeError, match="satlevel must be a number of electrons"):
        cosmicray_deepcr(ccd, gain=GAIN, satlevel=None, device="cpu")
    with pytest.raises(ValueError, match="satlevel must not be NaN"):
        cosmicray_deepcr(ccd, gain=GAIN, satlevel=float("nan"), device="cpu")
    ccd.uncertainty = UnknownUncertainty(np.ones(ccd.shape))
    with pytest.raises(TypeError, match="UnknownUncertainty is not supported"):
        cosmicray_deepcr(ccd, gain=GAIN, device="cpu")


# -- drop-in for cosmicray_lacosmic (#14 items 1-5, #17) ---------------------------------------------------------------


def test_every_lacosmic_keyword_with_the_same_position_and_default():
    import inspect

    lacosmic = inspect.signature(ccdproc.cosmicray_lacosmic).parameters
    ours = inspect.signature(cosmicray_deepcr).parameters
    assert list(ours)[:len(lacosmic)] == list(lacosmic)  # positional calls keep working
    for name, parameter in lacosmic.items():
        assert ours[name].default == parameter.default, name
        assert repr(ours[name].default) == repr(parameter.default), name  # what help() shows
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(ours.values())[len(lacosmic):])


def test_detection_keywords_are_accepted_and_ignored_with_one_warning(ccd):
    reference = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    # the defaults given explicitly: no warning
    same = cosmicray_deepcr(ccd, 4.5, 0.3, 5.0, gain=GAIN, niter=4, fsmode="median", psfk=None, device="cpu")
    with pytest.warns(AstropyUserWarning) as record:
        changed = cosmicray_deepcr(ccd, sigclip=5, objlim=4, niter=4, psfmodel="moffat", psfk=np.ones((3, 3)),
                                   gain=GAIN, device="cpu")
    assert len(record) == 1
    message = str(record[0].message)
    assert "sigclip=5, objlim=4, psfmodel='moffat', psfk=<ndarray>" in message and "niter" not in message
    for out in (same, changed):
        np.testing.assert_array_equal(out.mask, reference.mask)
        np.testing.assert_array_equal(out.data, reference.data)


def test_pssl_is_deprecated_as_in_ccdproc(ccd):
    from astropy.utils.exceptions import AstropyDeprecationWarning

    reference = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    with pytest.warns(AstropyDeprecationWarning, match='"pssl" was deprecated in version 2.3.0'):
        out = cosmicray_deepcr(ccd, gain=GAIN, pssl=20.0, device="cpu")
    cr = out.mask & ~ccd.mask
    assert reference.mask[20, 10:16].all() and out.mask[20, 10:16].all()
    np.testing.assert_array_equal(out.data[~cr], ccd.data[~cr] * 2.0)  # the offset is removed again
    with pytest.warns(AstropyDeprecationWarning), pytest.raises(ValueError, match="Cannot set both pssl and inbkg"):
        cosmicray_deepcr(ccd, gain=GAIN, pssl=20.0, inbkg=np.zeros(ccd.shape), device="cpu")


def test_gain_from_the_header_when_not_given(ccd):
    explicit = cosmicray_deepcr(ccd, gain=2.0, device="cpu")
    ccd.meta["GAIN"] = 2.0
    from_header = cosmicray_deepcr(ccd, device="cpu")
    assert from_header.unit == u.electron
    np.testing.assert_array_equal(from_header.mask, explicit.mask)
    np.testing.assert_array_equal(from_header.data, explicit.data)
    # an explicit gain keeps ccdproc's meaning, whatever the header says
    assert cosmicray_deepcr(ccd, gain=1.0, gain_apply=True, device="cpu").unit == u.electron
    unit_gain = cosmicray_deepcr(ccd, gain=1.0, device="cpu")
    np.testing.assert_array_equal(unit_gain.data[~unit_gain.mask], ccd.data[~unit_gain.mask])
    # per-amplifier HST keywords: their mean
    del ccd.meta["GAIN"]
    ccd.meta.update({"ATODGNA": 1.9, "ATODGNB": 2.1})
    np.testing.assert_allclose(cosmicray_deepcr(ccd, device="cpu").data[~explicit.mask],
                               ccd.data[~explicit.mask] * 2.0, rtol=1e-12)
    # none anywhere: 1.0, said out loud (an explicit gain=1.0 is silent)
    del ccd.meta["ATODGNA"], ccd.meta["ATODGNB"]
    with pytest.warns(AstropyUserWarning, match="no gain given and none in the header"):
        assumed = cosmicray_deepcr(ccd, device="cpu")
    np.testing.assert_array_equal(assumed.data, cosmicray_deepcr(ccd, gain=1.0, device="cpu").data)
    with pytest.warns(AstropyUserWarning, match="no gain given"):
        cosmicray_deepcr(ccd.data, device="cpu")  # a bare array is ADU without a header


def test_header_gain_is_not_applied_to_electron_data(ccd, caplog):
    # HST _flt/_flc: electrons, yet CCDGAIN / ATODGN* in the header; no gain is applied and nothing is warned
    electrons = CCDData(ccd.data * 2.0, unit="electron", meta={"CCDGAIN": 2.0, "ATODGNA": 2.0})
    out = cosmicray_deepcr(electrons, device="cpu", verbose=True)
    assert out.unit == u.electron
    np.testing.assert_array_equal(out.data[~out.mask], electrons.data[~out.mask])
    assert f"{out.meta['DCRNCR']} cosmic-ray pixels (model ACS-WFC: generic default" in caplog.text


@pytest.mark.parametrize("unit, out_unit", [("adu/s", "electron/s"), ("electron/s", "electron/s")])
def test_count_rates_with_exptime(ccd, unit, out_unit):
    counts = ccd.copy() if unit.startswith("adu") else CCDData(ccd.data * 2.0, unit="electron", mask=ccd.mask,
                                                               uncertainty=StdDevUncertainty(ccd.uncertainty.array * 2))
    gain = {"gain": GAIN} if unit.startswith("adu") else {}
    reference = cosmicray_deepcr(counts, device="cpu", **gain)
    rate = CCDData(counts.data / 100.0, unit=unit, mask=counts.mask, meta={"EXPTIME": 100.0},
                   uncertainty=StdDevUncertainty(counts.uncertainty.array / 100.0))
    out = cosmicray_deepcr(rate, device="cpu", **gain)
    assert out.unit == u.Unit(out_unit)
    np.testing.assert_array_equal(out.mask, reference.mask)
    np.testing.assert_allclose(out.data * 100.0, reference.data, rtol=1e-12)
    np.testing.assert_allclose(out.uncertainty.array * 100.0, reference.uncertainty.array, rtol=1e-6)
    # exptime= instead of EXPTIME; no exposure time at all is an error naming it
    rate.meta = {}
    by_keyword = cosmicray_deepcr(rate, exptime=100 * u.s, device="cpu", **gain)
    np.testing.assert_array_equal(by_keyword.data, out.data)
    with pytest.raises(u.UnitsError, match="count rate and no exposure time is known: give exptime="):
        cosmicray_deepcr(rate, device="cpu", **gain)
    with pytest.raises(ValueError, match="exptime must be positive"):
        cosmicray_deepcr(rate, exptime=0.0, device="cpu", **gain)


def test_model_is_chosen_from_the_header():
    rng = np.random.default_rng(3)
    data = rng.normal(40, 5, (64, 64))
    data[30, 20:25] += 1500
    meta = {"INSTRUME": "WFC3", "DETECTOR": "UVIS", "FILTER": "F606W"}
    out = cosmicray_deepcr(CCDData(data, unit="electron", meta=meta), device="cpu")
    assert out.meta["DCRMODEL"] == "WFC3-UVIS" and out.meta["DCRWHY"] == "card for WFC3/UVIS"
    acs = {"INSTRUME": "ACS", "DETECTOR": "WFC", "FILTER1": "CLEAR1L", "FILTER2": "F814W"}
    out = cosmicray_deepcr(CCDData(data, unit="electron", meta=acs), device="cpu")
    assert out.meta["DCRMODEL"] == "ACS-WFC-F814W"
    out = cosmicray_deepcr(CCDData(data, unit="electron", meta=acs), model="ACS-WFC", device="cpu")
    assert (out.meta["DCRMODEL"], out.meta["DCRWHY"]) == ("ACS-WFC", "explicit")


@pytest.mark.parametrize("cleantype", ["meanmask", "medmask", "median", "idw"])
def test_cleantype_replaces_as_astroscrappy_defines_it(ccd, cleantype):
    from astro_deepcr.cleantype import clean_cosmic_rays, lacosmic_mask

    out = cosmicray_deepcr(ccd, gain=GAIN, cleantype=cleantype, device="cpu")
    cr = out.mask & ~ccd.mask
    electrons = ccd.data * 2.0
    saturated = electrons >= 65535.0
    exclude = ccd.mask | saturated | lacosmic_mask(electrons, ccd.mask, 65535.0)
    expected = clean_cosmic_rays(electrons, cr, exclude, cleantype)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    assert out.meta["DCRINPT"] == cleantype
    # the track [20, 10:16] on a 30 ADU (60 e-) sky with 3 ADU noise: every replacement lands on the sky
    assert np.all(np.abs(out.data[20, 10:16] - 60.0) < 15.0)


def test_inpaint_keyword_and_bad_cleantype(ccd):
    network = cosmicray_deepcr(ccd, gain=GAIN, inpaint="deepcr", device="cpu")
    assert network.meta["DCRINPT"] == "ACS-WFC-F606W-2-32"  # the inpaint card chosen like the mask card
    assert np.all(np.abs(network.data[20, 10:16] - 60.0) < 20.0)
    assert cosmicray_deepcr(ccd, gain=GAIN, inpaint="biharmonic", device="cpu").meta["DCRINPT"] == "biharmonic"
    with pytest.raises(ValueError, match="cleantype must be one of median, medmask, meanmask, idw, not 'mean'"):
        cosmicray_deepcr(ccd, gain=GAIN, cleantype="mean", device="cpu")
    with pytest.raises(ValueError, match="give cleantype .* or inpaint .*, not both"):
        cosmicray_deepcr(ccd, gain=GAIN, cleantype="idw", inpaint="biharmonic", device="cpu")


def test_inbkg_and_invar(ccd):
    ccd.uncertainty = None
    reference = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    background = np.full(ccd.shape, 30.0)  # the sky, in ADU like the data
    out = cosmicray_deepcr(ccd, gain=GAIN, inbkg=background, device="cpu")
    cr = out.mask & ~ccd.mask
    assert out.mask[20, 10:16].all()
    np.testing.assert_array_equal(out.data[~cr], ccd.data[~cr] * 2.0)  # the background is added back
    assert np.all(np.abs(out.data[20, 10:16] - 60.0) < 15.0)
    variance = np.full(ccd.shape, 9.0)  # ADU^2
    out = cosmicray_deepcr(ccd, gain=GAIN, invar=variance, build_uncertainty=True, device="cpu")
    np.testing.assert_allclose(out.uncertainty.array[~out.mask], 6.0)  # 3 ADU = 6 e-
    with pytest.raises(ValueError, match="invar shape"):
        cosmicray_deepcr(ccd, gain=GAIN, invar=np.ones((3, 3)), device="cpu")
    assert reference.uncertainty is None


@pytest.mark.parametrize("model", ["ACS-WFC", "ground-v2"])
def test_inbkg_levels_the_replacement_but_the_network_sees_the_recorded_sky(model):
    """A bug found in session 49: with ``inbkg`` the network was shown the sky-subtracted frame, whose noise no sky
    explains, and flagged sky noise (ground-v2: 8637 px on a 1000 ADU sky, ACS-WFC 228, against 24 and 13 without
    ``inbkg``). The flags are now those without ``inbkg``; the replacement still levels by it."""
    rng = np.random.default_rng(1)
    sky = 1000.0
    data = rng.normal(sky, np.sqrt(sky / 2.0), (256, 256))  # ADU at gain 2: photon noise of the sky
    data[20, 10:16] += 2000.0
    data[90:95, 70] += 1500.0
    data[100, 100] += 3000.0
    ccd = CCDData(data, unit="adu")
    plain = cosmicray_deepcr(ccd, gain=2.0, model=model, device="cpu", precision="float32")
    levelled = cosmicray_deepcr(ccd, gain=2.0, model=model, inbkg=np.full(data.shape, sky), device="cpu",
                                precision="float32")
    np.testing.assert_array_equal(levelled.mask, plain.mask)
    assert plain.mask[20, 10:16].all() and plain.mask[90:95, 70].all() and plain.mask[100, 100]
    assert plain.mask.sum() < 40  # measured 24 (ground-v2) and 13 (ACS-WFC): the 12 CR pixels and their edges
    np.testing.assert_allclose(levelled.data[plain.mask], plain.data[plain.mask], atol=1e-6)  # a flat sky: same fill


def test_a_header_read_noise_nothing_uses_stops_nothing(ccd):
    """As in ccdproc, a read-noise keyword is read only where something needs it (session 49: a non-numeric
    ``RDNOISE`` stopped every call); where it is needed the error names it."""
    ccd.uncertainty = None
    ccd.meta["RDNOISE"] = "N/A"
    out = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    assert out.mask[20, 10:16].all()
    with pytest.raises(ValueError, match="RDNOISE = 'N/A' is not a number"):
        cosmicray_deepcr(ccd, gain=GAIN, build_uncertainty=True, device="cpu")
    built = cosmicray_deepcr(ccd, gain=GAIN, readnoise=5.0, build_uncertainty=True, device="cpu")
    assert built.uncertainty is not None


def test_log_to_metadata_convention(ccd):
    out = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    gain_corrected = ccdproc.gain_correct(ccd, GAIN)  # a logged ccdproc step, for comparison
    assert gain_corrected.meta["gain_correct"] == ("gaincor", "Shortened name for ccdproc command")
    assert out.meta["cosmicray_deepcr"] == ("crdeepcr", "Shortened name for ccdproc command")
    for key in ("DCRVERS", "DCRSTEP", "DCRMODEL", "DCRWHY", "DCRTHRSH", "DCRPREC", "DCRBACK", "DCRSATP", "DCRINPT",
                "DCRNCR"):
        assert key in out.meta
    assert out.meta["DCRSATP"] == 3  # the default saturation protection, in pixels
    # "auto" resolved as this machine resolves it (bfloat16 on a CPU with native bf16), never recorded as "auto"
    expected = DeepCR(out.meta["DCRMODEL"], device="cpu").precision_used
    assert out.meta["DCRSTEP"] == "ccdproc" and out.meta["DCRPREC"] == expected
    assert out.meta["DCRBACK"].split()[0] in ("torch", "openvino")
    with ccdproc.conf.set_temp("auto_logging", False):
        quiet = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
        assert "gain_correct" not in ccdproc.gain_correct(ccd, GAIN).meta
    assert set(quiet.meta) == set(ccd.meta)
    assert cosmicray_deepcr(ccd, gain=GAIN, add_keyword="CRCLEAN", device="cpu").meta["CRCLEAN"] is None
    # ndarray input returns a tuple: nothing to log into, nothing breaks
    assert len(cosmicray_deepcr(ccd.data, gain=2.0, device="cpu")) == 2


def _count_network_builds(monkeypatch, frames):
    calls = []
    build = zoo.build_network

    def counting_build(spec, *args, **kwargs):
        calls.append(spec.name)
        return build(spec, *args, **kwargs)

    monkeypatch.setattr(zoo, "build_network", counting_build)
    clear = getattr(zoo, "clear_network_cache", None)
    clear() if clear is not None else zoo._network_cache.clear()
    rng = np.random.default_rng(5)
    for _ in range(frames):
        frame = CCDData(rng.normal(50, 5, (32, 32)), unit="electron")
        cosmicray_deepcr(frame, device="cpu", add_keyword=False)
    return calls


def test_one_network_build_for_many_frames(monkeypatch):
    assert _count_network_builds(monkeypatch, 10) == ["ACS-WFC"]


@pytest.mark.slow
def test_one_network_build_for_a_hundred_frames(monkeypatch):
    """issue #14 item 4 as stated (20 s on the shared 2-core machine: the forward pass, not the build)."""
    assert _count_network_builds(monkeypatch, 100) == ["ACS-WFC"]


def test_device_spelled_as_deepcr_spells_it(ccd):
    import torch

    cpu = cosmicray_deepcr(ccd, gain=GAIN, device="cpu")
    np.testing.assert_array_equal(cosmicray_deepcr(ccd, gain=GAIN, device="CPU").data, cpu.data)
    if torch.cuda.is_available():
        gpu = cosmicray_deepcr(ccd, gain=GAIN, device="GPU", precision="float32")
        assert np.mean(gpu.mask != cpu.mask) < 1e-3
    else:
        with pytest.raises(ValueError, match="CUDA"):
            cosmicray_deepcr(ccd, gain=GAIN, device="GPU")


REDUCTION_SCRIPT = """
collection = ImageFileCollection(location)
bias = CCDData.read(collection.files_filtered(imagetyp="bias", include_path=True)[0], unit="adu")
reduced = []
for ccd in collection.ccds(imagetyp="object", ccd_kwargs={"unit": "adu"}):
    ccd = ccd_process(ccd, master_bias=bias, bad_pixel_mask=bad_pixels, error=True, gain=2.0 * u.electron / u.adu,
                      readnoise=5.0 * u.electron, gain_corrected=False)
    ccd = cosmicray_lacosmic(ccd, sigclip=5.0, objlim=4.0, cleantype="medmask", readnoise=5.0, satlevel=65535.0)
    reduced.append(ccd)
"""


def _write_night(directory):
    rng = np.random.default_rng(11)
    shape = (64, 80)
    fits.PrimaryHDU(np.full(shape, 100.0, np.float32), fits.Header({"IMAGETYP": "bias"})).writeto(directory / "b.fits")
    truth = []
    for index in range(2):
        data = 100.0 + rng.normal(50, 4, shape)
        cr = np.zeros(shape, bool)
        cr[10 + 20 * index, 30:35] = True
        cr[40:43, 12 + 30 * index] = True
        data[cr] += 1200.0
        header = fits.Header({"IMAGETYP": "object", "OBJECT": f"field{index}", "EXPTIME": 60.0})
        fits.PrimaryHDU(data.astype(np.float32), header).writeto(directory / f"o{index}.fits")
        truth.append(cr)
    return truth


def test_a_ccdproc_reduction_script_changed_in_one_word(tmp_path):
    """issue #14 must-show: the same ccdproc script with cosmicray_lacosmic -> cosmicray_deepcr."""
    truth = _write_night(tmp_path)
    bad_pixels = np.zeros((64, 80), bool)
    bad_pixels[:, 70] = True
    deepcr_script = REDUCTION_SCRIPT.replace("cosmicray_lacosmic", "cosmicray_deepcr")
    changed = [(a, b) for a, b in zip(REDUCTION_SCRIPT.split(), deepcr_script.split()) if a != b]
    assert len(changed) == 1 and len(REDUCTION_SCRIPT.split()) == len(deepcr_script.split())
    runs = {}
    for name, script in (("lacosmic", REDUCTION_SCRIPT), ("deepcr", deepcr_script)):
        namespace = {"ImageFileCollection": ccdproc.ImageFileCollection, "CCDData": CCDData, "u": u,
                     "ccd_process": ccdproc.ccd_process, "cosmicray_lacosmic": ccdproc.cosmicray_lacosmic,
                     "cosmicray_deepcr": cosmicray_deepcr, "location": str(tmp_path), "bad_pixels": bad_pixels}
        with warnings.catch_warnings():
            if name == "lacosmic":
                warnings.simplefilter("ignore")  # astroscrappy / ccdproc chatter is not under test
                exec(script, namespace)
            else:
                with pytest.warns(AstropyUserWarning, match="ignored: sigclip=5.0, objlim=4.0"):
                    exec(script, namespace)
        runs[name] = namespace["reduced"]
    for lacosmic, ours, cr in zip(runs["lacosmic"], runs["deepcr"], truth):
        # ccdproc's conventions: unit, mask OR-ed with the input mask, uncertainty class and unit, meta kept
        assert ours.unit == lacosmic.unit == u.electron
        assert ours.mask[:, 70].all() and lacosmic.mask[:, 70].all()
        assert ours.mask[cr].all()
        assert type(ours.uncertainty) is type(lacosmic.uncertainty) is StdDevUncertainty
        assert ours.uncertainty.unit == lacosmic.uncertainty.unit == u.electron
        flagged = ours.mask & ~bad_pixels
        np.testing.assert_array_equal(ours.uncertainty.array[~flagged], lacosmic.uncertainty.array[~flagged])
        untouched = ~(ours.mask | lacosmic.mask)  # both keep the ccd_process output there
        np.testing.assert_allclose(ours.data[untouched], lacosmic.data[untouched], rtol=1e-6)  # lacosmic: float32
        for key in ("OBJECT", "EXPTIME", "ccd_process", "ccdproc"):
            assert ours.meta[key] == lacosmic.meta[key]
        assert ours.meta["crdeepcr"].startswith("ccd=<CCDData>, sigclip=5.0, objlim=4.0, cleantype=medmask")
        assert ours.meta["DCRINPT"] == "medmask" and ours.meta["DCRNCR"] == int(flagged.sum())
        # replaced with astroscrappy's medmask: the sky, 50 e- x 2 over the bias-subtracted level
        assert np.all(np.abs(ours.data[cr] - 100.0) < 25.0)

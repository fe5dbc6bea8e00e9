# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The one units module: BUNIT spellings, conversion factors, gain / read noise / EXPTIME from headers."""

import pytest
from astropy import units as u
from astropy.io import fits

from astro_deepcr import fitsutil
from astro_deepcr.units import (
    conversion_factor,
    electron_factor,
    header_exptime,
    header_gain,
    header_readnoise,
    header_unit,
    parse_unit,
)


@pytest.mark.parametrize("text, expected", [
    ("ELECTRONS", u.electron), ("electrons", u.electron), ("E-", u.electron), ("ELECTRONS/S", u.electron / u.s),
    ("ELECTRONS/SEC", u.electron / u.s), ("e-/s", u.electron / u.s), ("COUNTS", u.adu), ("COUNTS/S", u.adu / u.s),
    ("ADU", u.adu), ("DN", u.adu), ("DN/S", u.adu / u.s), ("CPS", u.adu / u.s), ("electron / s", u.electron / u.s),
    ("", None), (None, None),
])
def test_parse_unit_fits_spellings(text, expected):
    assert parse_unit(text) == expected


def test_parse_unit_other_astropy_units_and_garbage():
    assert parse_unit("Jy") == u.Jy
    with pytest.raises(ValueError, match="unsupported BUNIT 'FURLONGSPERFORTNIGHT'"):
        parse_unit("furlongs per fortnight")


def test_conversion_factor_hand_computed():
    assert conversion_factor("electron", "electron") == 1.0
    assert conversion_factor("adu", "electron", gain=2.5) == 2.5
    assert conversion_factor(None, "electron", gain=2.5) == 2.5  # no unit: ADU, as ccdproc treats an ndarray
    assert conversion_factor("electron", "adu", gain=2.5) == pytest.approx(0.4, rel=1e-15)
    assert conversion_factor("adu/s", "electron", gain=2.0, exptime=100.0) == 200.0
    assert conversion_factor("electron/s", "adu", gain=4.0, exptime=100.0) == 25.0
    assert conversion_factor(u.electron / u.ms, "electron", exptime=2.0) == 2000.0  # 2 s = 2000 ms
    assert conversion_factor("adu", "electron", gain=2 * u.electron / u.adu) == 2.0
    assert conversion_factor("adu", "adu", gain=3.0) == 1.0  # a gain is not applied where none is needed
    assert conversion_factor(u.adu, "electron", gain=1 * u.electron / (0.5 * u.adu)) == 2.0


@pytest.mark.parametrize("unit, kwargs, message", [
    ("adu", {}, "need a gain"),
    ("electron/s", {}, "needs EXPTIME"),
    ("adu/s", {"gain": 2.0}, "needs EXPTIME"),
    ("adu/s", {"exptime": 10.0}, "need a gain"),
    ("Jy", {"gain": 2.0, "exptime": 10.0}, "unsupported unit"),
    ("adu", {"gain": 0.0}, "gain must be positive"),
    ("adu", {"gain": float("nan")}, "gain must be positive"),
    ("electron/s", {"exptime": -1.0}, "exposure time must be positive"),
])
def test_conversion_factor_errors_name_the_problem(unit, kwargs, message):
    with pytest.raises(ValueError, match=message):
        conversion_factor(unit, "electron", **kwargs)


def test_header_gain_order_and_per_amplifier_mean():
    assert header_gain(fits.Header()) == (None, None)
    assert header_gain(fits.Header({"GAIN": 1.8, "EGAIN": 3.0})) == (1.8, "GAIN")
    assert header_gain({"egain": 3.0}) == (3.0, "EGAIN")  # CCDData.meta dicts may be lower-case
    # ACS: the calibrated per-amplifier values win over the commanded CCDGAIN; unused amps (0) are skipped
    primary = fits.Header({"CCDGAIN": 2.0, "ATODGNA": 2.02, "ATODGNB": 1.98, "ATODGNC": 0.0, "ATODGND": 0.0})
    assert header_gain(fits.Header(), primary) == (pytest.approx(2.0, abs=1e-12), "ATODGNA/ATODGNB")
    primary = fits.Header({"ATODGNA": 2.0, "ATODGNB": 2.1, "ATODGNC": 2.2, "ATODGND": 2.3})
    assert header_gain(None, primary)[0] == pytest.approx(2.15, abs=1e-12)
    assert header_gain(fits.Header({"CCDGAIN": 4.0})) == (4.0, "CCDGAIN")
    # the extension header is read before the primary
    assert header_gain(fits.Header({"GAIN": 1.1}), fits.Header({"GAIN": 9.0})) == (1.1, "GAIN")
    with pytest.raises(ValueError, match="GAIN = 'high' is not a number"):
        header_gain(fits.Header({"GAIN": "high"}))


def test_header_readnoise_root_mean_square():
    assert header_readnoise(fits.Header({"RDNOISE": 4.5})) == (4.5, "RDNOISE")
    assert header_readnoise(fits.Header({"READNOIS": 7.0})) == (7.0, "READNOIS")
    # sqrt((3**2 + 4**2) / 2) = 3.5355339...
    value, keys = header_readnoise(fits.Header(), fits.Header({"READNSEA": 3.0, "READNSEB": 4.0}))
    assert value == pytest.approx(3.5355339059, rel=1e-10) and keys == "READNSEA/READNSEB"
    assert header_readnoise(fits.Header()) == (None, None)


def test_header_exptime_and_unit():
    assert header_exptime(fits.Header({"EXPTIME": 300.0})) == 300.0
    assert header_exptime(fits.Header({"EXPOSURE": 30.0})) == 30.0
    assert header_exptime(fits.Header({"EXPTIME": 0.0})) is None
    assert header_exptime(fits.Header(), fits.Header({"EXPTIME": 5})) == 5.0
    assert header_unit(fits.Header(), fits.Header({"BUNIT": "ELECTRONS/S"})) == u.electron / u.s
    assert header_unit(fits.Header()) is None


def test_electron_factor_keeps_its_old_contract():
    primary = fits.Header({"EXPTIME": 400.0})
    assert electron_factor(fits.Header({"BUNIT": "electrons"}), primary) == 1.0
    assert electron_factor(fits.Header({"BUNIT": "ELECTRONS/S"}), primary) == 400.0
    assert electron_factor(fits.Header(), primary, gain=2.5) == 2.5
    assert electron_factor(fits.Header({"BUNIT": "ADU"}), primary, model_units="adu") == 1.0
    assert electron_factor(fits.Header({"BUNIT": "COUNTS/S"}), primary, model_units="adu") == 400.0
    with pytest.raises(ValueError, match="EXPTIME"):
        electron_factor(fits.Header({"BUNIT": "ELECTRONS/S"}), fits.Header())
    with pytest.raises(ValueError, match="expects ADU"):
        electron_factor(fits.Header({"BUNIT": "ELECTRONS"}), primary, model_units="adu")
    with pytest.raises(ValueError, match="unsupported BUNIT 'JY'"):
        electron_factor(fits.Header({"BUNIT": "Jy"}), primary, gain=2.0)
    with pytest.raises(ValueError, match="give the gain"):
        electron_factor(fits.Header({"BUNIT": "ADU"}), primary)
    assert not hasattr(fitsutil, "electron_factor")  # one implementation, in units


def test_electron_factor_uses_the_header_gain():
    # issue #17: an ADU file with GAIN in its header needs no explicit gain
    assert electron_factor(fits.Header({"BUNIT": "ADU", "GAIN": 2.0}), fits.Header()) == 2.0
    assert electron_factor(fits.Header({"BUNIT": "DN/S"}), fits.Header({"EXPTIME": 10.0, "ATODGNA": 1.5})) == 15.0
    # an explicit gain wins over the header's
    assert electron_factor(fits.Header({"BUNIT": "ADU", "GAIN": 2.0}), fits.Header(), gain=3.0) == 3.0
    # an ADU model on electron data divides by the gain: 1 / 4
    assert electron_factor(fits.Header({"BUNIT": "ELECTRONS", "GAIN": 4.0}), fits.Header(), "adu") == 0.25

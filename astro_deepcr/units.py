# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Units, gain, read noise and exposure time: the one place data are brought to a model's units.

Every path that feeds a network (the ccdproc step, the batch cleaner, the
drizzlepac step) converts with `conversion_factor` (astropy units) and reads
the detector from the header with `header_gain`, `header_readnoise`,
`header_exptime` and `header_unit`.

FITS ``BUNIT`` spellings are read with `parse_unit`: ``ELECTRONS``,
``ELECTRONS/S``, ``E-/S``, ``COUNTS``, ``COUNTS/S``, ``ADU``, ``DN``,
``CPS`` ... and anything astropy parses. Counts and DN are analog-to-digital
units here: ``COUNTS`` in an HST header means what ``ADU`` means elsewhere.

Per-amplifier keywords (``ATODGNA`` .. ``ATODGND``, ``READNSEA`` ..
``READNSED``, HST CCDs with four amplifiers) are combined into one value for
the whole image: the mean gain and the root-mean-square read noise, i.e.
the values that give the right average variance. The spread between
amplifiers (about 1 % in gain for ACS/WFC) is below what the networks
resolve; a caller needing per-amplifier accuracy can pass its own values.
"""

import re

import numpy as np
from astropy import log
from astropy import units as u

__all__ = [
    "MissingGainError",
    "gain_keywords",
    "parse_unit",
    "conversion_factor",
    "electron_factor",
    "header_unit",
    "header_gain",
    "header_readnoise",
    "header_exptime",
]

_WORDS = {
    "ELECTRON": u.electron, "ELECTRONS": u.electron, "E-": u.electron, "E": u.electron,
    "ADU": u.adu, "ADUS": u.adu, "DN": u.adu, "COUNT": u.adu, "COUNTS": u.adu, "CT": u.adu, "CTS": u.adu,
    "S": u.s, "SEC": u.s, "SECOND": u.s, "SECONDS": u.s,
}
_SPECIAL = {"": None, "CPS": u.adu / u.s, "EPS": u.electron / u.s}
#: keyword groups in order of preference; a group of several keywords is per amplifier
_GAIN_KEYWORDS = (("GAIN",), ("EGAIN",), ("ATODGAIN",), ("ATODGNA", "ATODGNB", "ATODGNC", "ATODGND"),
                  ("CCDGAIN",))
_READNOISE_KEYWORDS = (("RDNOISE",), ("READNOIS",), ("READNOISE",), ("RON",),
                       ("READNSEA", "READNSEB", "READNSEC", "READNSED"))
_EXPTIME_KEYWORDS = ("EXPTIME", "EXPOSURE", "TEXPTIME")


class MissingGainError(ValueError):
    """Data in ADU to convert to electrons (or the reverse) and no gain: `conversion_factor`'s refusal, which a
    door without a gain parameter rephrases (the FITS doors name the header keywords, `gain_keywords`)."""


def _keyword_names(groups):
    """Keyword groups as one would write them: ``ATODGNA ... ATODGND`` as ``ATODGN[A-D]``."""
    return [group[0] if len(group) == 1 else f"{group[0][:-1]}[{group[0][-1]}-{group[-1][-1]}]" for group in groups]


def gain_keywords():
    """The header keywords `header_gain` reads, in its order of preference, as text.

    >>> from astro_deepcr.units import gain_keywords
    >>> gain_keywords()
    'GAIN, EGAIN, ATODGAIN, ATODGN[A-D], CCDGAIN'
    """
    return ", ".join(_keyword_names(_GAIN_KEYWORDS))


def parse_unit(text):
    """An astropy unit from a ``BUNIT`` string (None for an empty one).

    Parameters
    ----------
    text : str, `~astropy.units.UnitBase` or None

    Returns
    -------
    unit : `~astropy.units.UnitBase` or None

    Raises
    ------
    ValueError
        A string that is neither a FITS spelling known here nor an astropy unit.

    Examples
    --------
    >>> from astro_deepcr.units import parse_unit
    >>> parse_unit("ELECTRONS/S"), parse_unit("COUNTS"), parse_unit("DN / s")
    (Unit("electron / s"), Unit("adu"), Unit("adu / s"))
    """
    if text is None or isinstance(text, u.UnitBase):
        return text
    clean = str(text).strip().upper().replace(" ", "")
    if clean in _SPECIAL:
        return _SPECIAL[clean]
    parts = re.split(r"(/)", clean)
    if all(part == "/" or part in _WORDS for part in parts) and parts[0] != "/":
        unit = _WORDS[parts[0]]
        for word in parts[2::2]:  # the odd parts are the "/" separators
            unit = unit / _WORDS[word]
        return unit
    try:
        return u.Unit(str(text).strip())
    except ValueError:
        raise ValueError(f"unsupported BUNIT {clean!r}; supported: ELECTRONS, ELECTRONS/S (with EXPTIME), "
                         "ADU/DN/COUNTS (with a gain), their rates, or any astropy unit") from None


def _as_gain(gain):
    """Gain as a Quantity in electron / adu (a plain number is taken in those units)."""
    quantity = gain if isinstance(gain, u.Quantity) else float(gain) * u.electron / u.adu
    if not np.isfinite(quantity.value) or quantity.value <= 0:
        raise ValueError(f"gain must be positive and finite, not {gain!r}")
    return quantity


def conversion_factor(unit, target, gain=None, exptime=None):
    """Number to multiply data in ``unit`` by to get ``target`` (electron or adu counts).

    Parameters
    ----------
    unit : str, `~astropy.units.UnitBase` or None
        Unit of the data (a ``BUNIT`` spelling works); None means ADU, as for
        a bare `numpy.ndarray` in ccdproc.
    target : str or `~astropy.units.UnitBase`
        ``"electron"`` or ``"adu"`` (a model's units).
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per ADU (a number is taken in electron / adu); needed only
        between the electron and adu families.
    exptime : float or `~astropy.units.Quantity`, optional
        Exposure time (a number is taken in seconds); needed only for rates.

    Returns
    -------
    factor : float

    Raises
    ------
    ValueError
        The conversion needs a gain or an exposure time that was not given,
        or the unit is of another kind (e.g. Jy).

    Examples
    --------
    >>> from astro_deepcr.units import conversion_factor
    >>> conversion_factor("adu/s", "electron", gain=2.0, exptime=100.0)
    200.0
    """
    unit = u.adu if unit is None else parse_unit(unit)
    target = parse_unit(target)
    steps = [1.0 * u.one]
    if exptime is not None:
        exptime = exptime if isinstance(exptime, u.Quantity) else float(exptime) * u.s
        if not np.isfinite(exptime.value) or exptime.value <= 0:
            raise ValueError(f"exposure time must be positive and finite, not {exptime}")
        steps.append(exptime)
    ratios = [1.0 * u.one] + ([] if gain is None else [_as_gain(gain), 1.0 / _as_gain(gain)])
    for step in steps:
        for ratio in ratios:
            quantity = 1.0 * unit * step * ratio
            if quantity.unit.is_equivalent(target):
                return float(quantity.to_value(target))
    rate = (unit * u.s).is_equivalent(u.electron) or (unit * u.s).is_equivalent(u.adu)
    other = u.adu if target.is_equivalent(u.electron) else u.electron
    if rate and exptime is None:
        raise ValueError(f"data in {unit} are a count rate: converting them to {target} needs EXPTIME "
                         "(an exposure time)")
    if gain is None and (unit.is_equivalent(other) or (unit * u.s).is_equivalent(other)):
        raise MissingGainError(f"data in {unit} need a gain to become {target} (give the gain, electrons per ADU)")
    raise ValueError(f"cannot convert data in {unit} to {target}: unsupported unit")


def _value(header, key):
    for candidate in (key, key.lower()):
        try:
            value = header[candidate]
        except (KeyError, IndexError, TypeError):
            continue
        return value[0] if isinstance(value, tuple) else value
    return None


def _lookup(headers, key):
    """First value of ``key`` in ``headers`` (extension first), or None."""
    for header in headers:
        if header is not None:
            value = _value(header, key)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                return value
    return None


def _positive(value, key):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"header keyword {key} = {value!r} is not a number") from None
    return number if np.isfinite(number) and number > 0 else None


def _read_group(headers, groups, combine, name):
    for group in groups:
        values = {key: _lookup(headers, key) for key in group}
        present = {key: _positive(value, key) for key, value in values.items() if value is not None}
        usable = [value for value in present.values() if value is not None]
        if usable:
            keys = "/".join(key for key, value in present.items() if value is not None)
            return combine(np.array(usable)), keys
        if present:
            log.debug(f"{name}: {'/'.join(present)} present but not positive; ignored")
    return None, None


def header_gain(header, primary_header=None):
    """Gain (electrons per ADU) from ``GAIN``, ``EGAIN``, ``ATODGAIN``, ``ATODGN[A-D]`` or ``CCDGAIN``.

    The extension header is searched before the primary header; the first
    keyword (group) in that order with a positive value wins; per-amplifier
    ``ATODGN*`` values are averaged (zeros, i.e. unused amplifiers, skipped).

    Returns
    -------
    gain : float or None
    keyword : str or None
        The keyword(s) the value came from, e.g. ``"ATODGNA/ATODGNB"``.

    Examples
    --------
    >>> from astro_deepcr.units import header_gain
    >>> header_gain({"ATODGNA": 2.0, "ATODGNB": 2.2, "ATODGNC": 0.0, "ATODGND": 0.0})
    (2.1, 'ATODGNA/ATODGNB')
    """
    value, keys = _read_group((header, primary_header), _GAIN_KEYWORDS, np.mean, "gain")
    return (None, None) if value is None else (round(float(value), 12), keys)


def header_readnoise(header, primary_header=None):
    """Read noise (electrons) from ``RDNOISE``, ``READNOIS``, ``READNOISE``, ``RON`` or ``READNSE[A-D]``.

    As `header_gain`; per-amplifier values are combined as their root mean
    square (the read noise of the average pixel variance). The value is
    taken to be in electrons, as these keywords are by convention.

    Returns
    -------
    readnoise : float or None
    keyword : str or None
    """
    value, keys = _read_group((header, primary_header), _READNOISE_KEYWORDS,
                              lambda values: np.sqrt(np.mean(values**2)), "readnoise")
    return (None, None) if value is None else (round(float(value), 12), keys)


def star_shape_readnoise(header, primary_header, where):
    """The read noise `header_readnoise` gives, for the star-shape test: a `ValueError` naming ``where`` (the
    file and extension) when neither header has one."""
    readnoise, _ = header_readnoise(header, primary_header)
    if readnoise is None:
        keywords = ", ".join(_keyword_names(_READNOISE_KEYWORDS))
        raise ValueError(f"{where}: star_shape=True needs the read noise, and neither header has one ({keywords})")
    return readnoise


def header_exptime(header, primary_header=None):
    """Exposure time in seconds from ``EXPTIME`` (else ``EXPOSURE``, ``TEXPTIME``), or None."""
    for key in _EXPTIME_KEYWORDS:
        value = _lookup((header, primary_header), key)
        if value is not None:
            return _positive(value, key)
    return None


def header_unit(header, primary_header=None):
    """The data unit from ``BUNIT`` (extension first), or None when there is none."""
    return parse_unit(_lookup((header, primary_header), "BUNIT"))


def electron_factor(header, primary_header, model_units="electron", gain=None):
    """Multiplier turning the data of an extension into the units of the model.

    Parameters
    ----------
    header, primary_header : `~astropy.io.fits.Header`
        The extension's header and the primary header (``BUNIT``,
        ``EXPTIME`` and the gain keywords are looked up in that order).
    model_units : {"electron", "adu"}
        `~astro_deepcr.zoo.ModelSpec.units` of the model.
    gain : float, optional
        Electrons per data unit, for data in ADU (``BUNIT`` ``ADU``, ``DN``,
        ``COUNTS`` or missing). When not given, the header's gain
        (`header_gain`) is used where one is needed.

    Returns
    -------
    factor : float

    Raises
    ------
    ValueError
        Units that cannot be converted: a ``BUNIT`` of another kind, a rate
        without ``EXPTIME``, ADU for an electron model (or electrons for an
        ADU model) without any gain.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from astro_deepcr.units import electron_factor
    >>> electron_factor(fits.Header({"BUNIT": "COUNTS/S"}), fits.Header({"EXPTIME": 10.0}), gain=1.5)
    15.0
    """
    unit = header_unit(header, primary_header)
    if unit is None:
        unit = u.adu
    target = parse_unit(model_units)
    exptime = header_exptime(header, primary_header)
    needs_gain = not (unit.is_equivalent(target) or (unit * u.s).is_equivalent(target))
    if gain is None and needs_gain:
        gain, keyword = header_gain(header, primary_header)
        if gain is not None:
            log.info(f"gain {gain:g} electron/adu from the header ({keyword})")
    try:
        return conversion_factor(unit, target, gain=gain, exptime=exptime)
    except ValueError as exc:
        if "unsupported unit" in str(exc):
            raw = str(_lookup((header, primary_header), "BUNIT")).strip().upper()
            raise ValueError(f"unsupported BUNIT {raw!r}; supported: ELECTRONS, ELECTRONS/S (with EXPTIME), "
                             "ADU/DN/COUNTS or none (with a gain), and their rates") from None
        if target == u.adu and needs_gain:
            raise ValueError(f"BUNIT {unit}: this model expects ADU; {exc}") from None
        raise

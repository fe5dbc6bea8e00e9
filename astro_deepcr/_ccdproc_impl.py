# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The work behind `astro_deepcr.cosmicray_deepcr`: units, gain, detection, replacement, uncertainty."""

import warnings

import numpy as np
from astropy import log
from astropy import units as u
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning

from . import units
from .cleantype import clean_cosmic_rays, lacosmic_mask
from .deepcr import DeepCR, as_image
from .detection import choose_model, detect
from .inpaint import fill_median, local_scatter
from .provenance import record_run

__all__ = ["clean_ccddata", "clean_ndarray", "GAIN_NOT_GIVEN", "READNOISE_NOT_GIVEN"]

_UNCERTAINTY_CLASSES = (StdDevUncertainty, VarianceUncertainty, InverseVariance)


class _NotGiven(float):
    """A float default that can be told apart from the same value passed by the caller."""

    def __repr__(self):
        return float.__repr__(self)


GAIN_NOT_GIVEN = _NotGiven(1.0)  # ccdproc's default gain, told apart from gain=1.0
READNOISE_NOT_GIVEN = _NotGiven(6.5)  # ccdproc's default read noise


def _not_given(value):
    return isinstance(value, _NotGiven)


def _as_gain(value):
    if np.ndim(value):
        raise TypeError(f"gain must be one value for the frame, not an array of shape {np.shape(value)}")
    if isinstance(value, u.Quantity):
        quantity = value
    else:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"gain must be a number or an astropy Quantity, not {value!r}")
        try:
            quantity = float(value) * u.electron / u.adu
        except (TypeError, ValueError):
            raise TypeError(f"gain must be a number or an astropy Quantity, not {value!r}") from None
    if not np.isfinite(quantity.value) or quantity.value <= 0:
        raise ValueError(f"gain must be positive and finite, not {quantity}")
    if not (u.adu * quantity.unit).is_equivalent(u.electron):
        raise u.UnitsError(f"gain {quantity} is not in electron / adu")
    return quantity


def _readnoise_electrons(readnoise, gain):
    """Read noise in electrons (float); ADU read noise is converted with ``gain``."""
    if isinstance(readnoise, u.Quantity):
        quantity = readnoise
    else:
        try:
            quantity = float(readnoise) * u.electron
        except (TypeError, ValueError):
            raise TypeError(f"readnoise must be a number or an astropy Quantity, not {readnoise!r}") from None
    if quantity.unit.is_equivalent(u.adu):
        quantity = quantity * gain
    if not quantity.unit.is_equivalent(u.electron):
        raise u.UnitsError(f"readnoise must be in electron (or adu, converted with gain), not {quantity.unit}")
    value = quantity.to_value(u.electron)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"readnoise must be non-negative and finite, not {readnoise}")
    return float(value)


def _satlevel_electrons(satlevel, gain):
    """Saturation level in electrons, as astroscrappy takes it; a Quantity in adu is converted with gain."""
    if isinstance(satlevel, u.Quantity):
        if satlevel.unit.is_equivalent(u.adu):
            satlevel = satlevel * gain
        if not satlevel.unit.is_equivalent(u.electron):
            raise u.UnitsError(f"satlevel must be in electron (or adu, converted with gain), not {satlevel.unit}")
        satlevel = satlevel.to_value(u.electron)
    if isinstance(satlevel, (bool, np.bool_)):
        raise TypeError(f"satlevel must be a number of electrons, not {satlevel!r}")
    try:
        value = float(satlevel)
    except (TypeError, ValueError):
        raise TypeError(f"satlevel must be a number of electrons, not {satlevel!r}") from None
    if np.isnan(value):
        raise ValueError("satlevel must not be NaN (use numpy.inf to disable the saturation check)")
    return value


def _family(unit):
    """``"electron"`` or ``"adu"`` for counts and count rates of either; UnitsError otherwise."""
    for name, base in (("electron", u.electron), ("adu", u.adu)):
        if unit.is_equivalent(base) or (unit * u.s).is_equivalent(base):
            return name, not unit.is_equivalent(base)
    hint = ""
    for base in (u.DN, u.count):  # astropy does not equate them with adu; the FITS doors read them as adu
        if unit.is_equivalent(base) or (unit * u.s).is_equivalent(base):
            hint = f": for a CCD's data numbers set ccd.unit = 'adu{'' if unit.is_equivalent(base) else ' / s'}'"
    raise u.UnitsError(f"cannot convert data in {unit} to electron or adu: deepCR needs counts (electron, adu) "
                       f"or count rates (electron / s, adu / s){hint}")


def _exptime(exptime, meta, unit):
    if exptime is None:
        exptime = units.header_exptime(meta)
    if exptime is None:
        raise u.UnitsError(f"data in {unit} are a count rate and no exposure time is known: give exptime= or "
                           "EXPTIME in meta (or multiply count rates by the exposure time first)")
    if isinstance(exptime, u.Quantity):
        if not exptime.isscalar or not exptime.unit.is_equivalent(u.s):
            raise u.UnitsError(f"exptime must be one time (e.g. seconds), not {exptime}")
        quantity = exptime
    else:
        try:
            quantity = float(exptime) * u.s
        except (TypeError, ValueError):
            raise TypeError(f"exptime must be a number of seconds or a Quantity, not {exptime!r}") from None
    if not np.isfinite(quantity.value) or quantity.value <= 0:
        raise ValueError(f"exptime must be positive and finite, not {exptime}")
    return quantity


def _exposure_seconds(exptime, meta):
    """Seconds of exposure for the flagged-fraction alarm: the rate's exposure time, else EXPTIME, else None."""
    if exptime is not None:
        return float(u.Quantity(exptime, u.s).to_value(u.s))
    try:
        return units.header_exptime(meta) if meta is not None else None
    except (TypeError, ValueError):
        return None


def _gain(gain, family, meta):
    """The gain Quantity to use: explicit, else the header's, else 1 with a warning (ADU data only)."""
    given = not _not_given(gain)
    if given:
        gain = _as_gain(gain)
    if family == "electron":
        if given and gain.value != 1.0:
            warnings.warn(f"image unit is electron but gain is {gain}: the data are not gain-corrected again",
                          AstropyUserWarning)
        return 1.0 * u.electron / u.adu
    if given:
        return gain
    value, keyword = units.header_gain(meta)
    if value is not None:
        log.debug(f"cosmicray_deepcr: gain {value:g} electron / adu from {keyword}")
        return _as_gain(value)
    warnings.warn(f"cosmicray_deepcr: data in ADU, no gain given and none in the header ({units.gain_keywords()}): "
                  "using 1.0 electron / adu", AstropyUserWarning)
    return 1.0 * u.electron / u.adu


def _readnoise(readnoise, meta, gain, needed=True):
    """Read noise in electrons and whether it is ccdproc's default (not given, not in the header).

    The header is read only where the value is ``needed`` (an uncertainty to build, the star-shape test): a header
    keyword that nothing uses stops nothing, as in ccdproc; a value given is checked all the same.
    """
    if _not_given(readnoise):
        value, keyword = units.header_readnoise(meta) if needed else (None, None)
        if value is not None:
            return value, False
        return float(readnoise), True
    return _readnoise_electrons(readnoise, gain), False


def _optional_array(value, shape, name):
    if value is None:
        return None
    array = np.asarray(getattr(value, "value", value), dtype=np.float64)
    if array.shape != tuple(shape):
        raise ValueError(f"{name} shape {array.shape} does not match the image shape {tuple(shape)}")
    return array


class _Result:
    """What one detection produced, in the units of the input data."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _detect(data, unit, exptime, gain, bad, *, spec, reason, meta, satlevel, pssl, inbkg, sepmed, cleantype,
            inpaint, threshold, device, tile_size, precision, star_shape=False, readnoise=None):
    """Detection through the core and replacement; everything in the units of the input data (``readnoise`` in
    electrons, for ``star_shape``)."""
    to_model = units.conversion_factor(unit, spec.units, gain=gain, exptime=exptime)
    to_electron = units.conversion_factor(unit, "electron", gain=gain, exptime=exptime)
    saturation = _satlevel_electrons(satlevel, gain)
    as_image(data)  # dimension and dtype errors first
    data = np.asarray(data, dtype=np.float64)  # full precision for the pixels we keep
    offset = float(pssl)
    background = _optional_array(inbkg, data.shape, "inbkg")
    total = data + offset  # what the detector recorded
    # the network learnt frames as recorded, sky included (its noise is the sky's photon noise): it sees ``total``
    # whatever ``inbkg`` says, as astroscrappy keeps the background in its noise model; ``inbkg`` only levels the
    # neighbours that the replacement averages
    work = total if background is None else total - background
    sat_model = saturation * to_model / to_electron  # saturation is judged on the recorded values, as astroscrappy
    found = detect(total * to_model, spec=spec, reason=reason, threshold=threshold, mask=bad, satlevel=sat_model,
                   exptime=_exposure_seconds(exptime, meta), device=device, precision=precision, tile_size=tile_size,
                   star_shape=star_shape, readnoise=readnoise if star_shape else None)
    cr_mask = found.cr_mask
    exclude = found.bad | lacosmic_mask(total * to_electron, found.bad, saturation, sepmed)
    if inpaint is not None and str(inpaint).lower() == "deepcr":
        inpaint = choose_model(meta, kind="inpaint")[0].name
    if inpaint is None:
        replaced = clean_cosmic_rays(work, cr_mask, exclude, cleantype)
        if background is not None:
            replaced = replaced + background
    else:  # an inpainting network, too, learnt recorded frames
        inpainter = DeepCR(spec, inpaint=inpaint, device=device, tile_size=tile_size, precision=precision)
        replaced = inpainter.inpaint(total * to_model, cr_mask, inmask=exclude & ~cr_mask) / to_model
    cleaned = data.copy()
    cleaned[cr_mask] = replaced[cr_mask] - offset
    scatter = local_scatter(work, cr_mask, exclude & ~cr_mask)
    return _Result(cleaned=cleaned, cr_mask=cr_mask, probability=found.probability, scatter=scatter,
                   to_electron=to_electron, offset=offset, threshold=found.threshold, unusable=exclude & ~cr_mask,
                   spec=spec, reason=reason, replacement=cleantype if inpaint is None else inpaint,
                   provenance=found.provenance)


def _check_inmask(inmask, shape):
    inmask = np.asarray(inmask)
    if inmask.shape != tuple(shape):
        raise ValueError(f"inmask shape {inmask.shape} does not match the image shape {tuple(shape)}")
    return inmask.astype(bool)


def _report(result, verbose):
    if verbose:
        log.info(f"cosmicray_deepcr: {int(result.cr_mask.sum())} cosmic-ray pixels (model {result.spec.name}: "
                 f"{result.reason})")


def clean_ndarray(ccd, *, gain, readnoise, gain_apply, inmask, return_probability, verbose, model, **detection):
    """`cosmicray_deepcr` on a bare array (ADU, as in ccdproc); returns ``(cleaned, mask[, probability])``.

    ``detection``: the keywords of `_detect` after ``reason`` (satlevel ... precision).
    """
    as_image(ccd)  # dimension and dtype errors first
    spec, reason = choose_model(None, model)
    gain = _gain(gain, "adu", None)
    # used by the star-shape test only; a wrong value is an error all the same
    readnoise = float(readnoise) if _not_given(readnoise) else _readnoise_electrons(readnoise, gain)
    bad = np.zeros(ccd.shape, bool) if inmask is None else _check_inmask(inmask, ccd.shape)
    result = _detect(ccd, u.adu, None, gain, bad, spec=spec, reason=reason, meta=None, readnoise=readnoise,
                     **detection)
    out_factor = gain.to_value(u.electron / u.adu) if gain_apply else 1.0
    cleaned = result.cleaned * out_factor
    _report(result, verbose)
    if return_probability:
        return cleaned, result.cr_mask, result.probability
    return cleaned, result.cr_mask


def clean_ccddata(ccd, *, gain, readnoise, gain_apply, inmask, exptime, invar, build_uncertainty, return_probability,
                  verbose, add_keyword, model, **detection):
    """`cosmicray_deepcr` on a CCDData; returns a new CCDData (and the probability on request).

    ``detection``: the keywords of `_detect` after ``meta`` (satlevel ... precision).
    """
    if ccd.unit is None:
        raise u.UnitsError("CCDData has no unit; set ccd.unit (e.g. 'adu' or 'electron')")
    family, rate = _family(ccd.unit)
    spec, reason = choose_model(ccd.meta, model)
    exptime = _exptime(exptime, ccd.meta, ccd.unit) if rate else None
    shape = np.shape(ccd.data)
    bad = np.zeros(shape, bool) if ccd.mask is None else np.asarray(ccd.mask, bool).copy()
    if inmask is not None:
        bad |= _check_inmask(inmask, shape)
    if ccd.uncertainty is not None and not isinstance(ccd.uncertainty, _UNCERTAINTY_CLASSES):
        raise TypeError(f"uncertainty of type {type(ccd.uncertainty).__name__} is not supported; use StdDev, "
                        "Variance or InverseVariance uncertainty")
    gain = _gain(gain, family, ccd.meta)
    readnoise, default_readnoise = _readnoise(readnoise, ccd.meta, gain,
                                              needed=build_uncertainty or detection.get("star_shape", False))
    variance = _optional_array(invar, shape, "invar")
    result = _detect(ccd.data, ccd.unit, exptime, gain, bad, spec=spec, reason=reason, meta=ccd.meta,
                     readnoise=readnoise, **detection)
    out_unit = ccd.unit
    out_factor = 1.0
    if gain_apply and family == "adu":
        out_unit = u.electron / u.s if rate else u.electron
        out_factor = float((1.0 * ccd.unit * gain).to_value(out_unit))
    nccd = ccd.copy()
    nccd.data = result.cleaned * out_factor
    nccd.unit = out_unit
    nccd.mask = result.cr_mask if ccd.mask is None else (np.asarray(ccd.mask, bool) | result.cr_mask)
    if build_uncertainty and ccd.uncertainty is None and variance is None and default_readnoise:
        warnings.warn("cosmicray_deepcr: no readnoise given and none in the header (RDNOISE, READNOIS, READNSE*): "
                      "the uncertainty uses ccdproc's default 6.5 electron", AstropyUserWarning)
    nccd.uncertainty = _new_uncertainty(ccd, result, out_factor, build_uncertainty, readnoise, variance)
    n_cr = int(result.cr_mask.sum())
    import ccdproc

    if add_keyword is True and ccdproc.conf.auto_logging:
        record_run(nccd.meta, "ccdproc", **result.provenance, inpaint=result.replacement, n_cr=n_cr)
    _report(result, verbose)
    return (nccd, result.probability) if return_probability else nccd


def _std_in_data_units(ccd):
    """Standard deviation of the input uncertainty, in the data's unit (ndarray)."""
    std = ccd.uncertainty.represent_as(StdDevUncertainty)
    if std.unit is not None and std.unit != ccd.unit:
        return u.Quantity(std.array, std.unit).to_value(ccd.unit)
    return np.asarray(std.array, dtype=np.float64)


def _new_uncertainty(ccd, result, out_factor, build, readnoise, variance):
    if ccd.uncertainty is None:
        if not build:
            return None
        if variance is not None:
            std = np.sqrt(np.clip(variance, 0, None))
        else:
            electrons = np.clip((result.cleaned + result.offset) * result.to_electron, 0, None)
            std = np.sqrt(electrons + readnoise**2) / result.to_electron
        kind = StdDevUncertainty
    else:
        std = _std_in_data_units(ccd)
        kind = type(ccd.uncertainty)
    std = np.where(result.cr_mask, _replaced_std(std, result), std) * out_factor
    if kind is StdDevUncertainty:
        return StdDevUncertainty(std)
    if kind is VarianceUncertainty:
        return VarianceUncertainty(std**2)
    with np.errstate(divide="ignore"):
        return InverseVariance(1.0 / std**2)


def _replaced_std(std, result):
    """Error of the replaced values: the local scatter of their sources, but never less than the uncertainty
    of those sources (a flat or quantised neighbourhood has zero scatter, its replacement is not exact)."""
    if not result.cr_mask.any():
        return std
    source_std = fill_median(std, result.cr_mask, result.unusable | ~np.isfinite(std))
    with np.errstate(invalid="ignore"):
        return np.fmax(result.scatter, source_std)


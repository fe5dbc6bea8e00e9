# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
`cosmicray_deepcr`: a drop-in for `ccdproc.cosmicray_lacosmic`.

Same calling conventions and return types as ccdproc's step (``CCDData`` in,
new ``CCDData`` out; ``ndarray`` in, ``(cleaned, mask)`` out), with data,
unit and uncertainty kept consistent and the call recorded in ``meta``.
"""

import warnings

import numpy as np
from astropy import log
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning

from .deepcr import DeepCR, _check_threshold, as_image
from .inpaint import fill_median, local_scatter
from .zoo import get_model

__all__ = ["cosmicray_deepcr"]

_UNCERTAINTY_CLASSES = (StdDevUncertainty, VarianceUncertainty, InverseVariance)
#: FITS-safe metadata keywords written by `cosmicray_deepcr`.
LOG_KEYWORD = "CRDEEPCR"


def _as_quantity(value, unit, name):
    if isinstance(value, u.Quantity):
        quantity = value
    else:
        try:
            quantity = float(value) * unit
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number or an astropy Quantity, not {value!r}") from None
    if not np.isfinite(quantity.value) or quantity.value <= 0:
        raise ValueError(f"{name} must be positive and finite, not {quantity}")
    return quantity


def _readnoise_electrons(readnoise, gain):
    """Read noise in electrons (float), or None; ADU read noise is converted with ``gain``."""
    if readnoise is None:
        return None
    if isinstance(readnoise, u.Quantity):
        quantity = readnoise
    else:
        try:
            quantity = float(readnoise) * u.electron
        except (TypeError, ValueError):
            raise TypeError(f"readnoise must be a number or an astropy Quantity, not {readnoise!r}") from None
    if quantity.unit.is_equivalent(u.adu):
        quantity = quantity * _as_quantity(gain, u.electron / u.adu, "gain")
    if not quantity.unit.is_equivalent(u.electron):
        raise u.UnitsError(f"readnoise must be in electron (or adu, converted with gain), not {quantity.unit}")
    value = quantity.to_value(u.electron)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"readnoise must be non-negative and finite, not {readnoise}")
    return float(value)


def _satlevel_electrons(satlevel, gain):
    """Saturation level in electrons (float), as astroscrappy takes it; a Quantity in adu is converted with gain."""
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


def _model_factor(unit, gain, model_units):
    """Factor taking data in ``unit`` (None: ADU) to the model's units."""
    target = u.electron if model_units == "electron" else u.adu
    unit = u.adu if unit is None else unit
    if unit.is_equivalent(target):
        return float(unit.to(target))
    if (unit * gain.unit).is_equivalent(target):
        return gain.value * float((unit * gain.unit).to(target))
    if (unit / gain.unit).is_equivalent(target):
        return float((unit / gain.unit).to(target)) / gain.value
    raise u.UnitsError(
        f"cannot convert data in {unit} to {target} with gain {gain}: model {model_units!r} needs "
        f"{target} (counts, not rates: multiply count rates by the exposure time first)"
    )


def _output_factor(unit, gain, gain_apply):
    """Factor and unit of the returned data: ADU become electrons when ``gain_apply``, as in ccdproc."""
    unit = u.adu if unit is None else unit
    if gain_apply and not unit.is_equivalent(u.electron) and (unit * gain.unit).is_equivalent(u.electron):
        return gain.value * float((unit * gain.unit).to(u.electron)), u.electron
    return 1.0, unit


def cosmicray_deepcr(ccd, model="ACS-WFC", threshold=None, inpaint="medmask", gain=1.0, gain_apply=True,
                     readnoise=None, satlevel=65535.0, inmask=None, build_uncertainty=False,
                     return_probability=False, device=None, tile_size=None, verbose=False, add_keyword=True):
    """Identify cosmic rays with a deepCR network and replace them.

    A drop-in for `ccdproc.cosmicray_lacosmic`: the same first argument,
    the same ``gain`` / ``gain_apply`` / ``readnoise`` / ``satlevel`` /
    ``verbose`` keywords and the same return types.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData` or `numpy.ndarray`
        Image. A `~numpy.ndarray` is taken to be in ADU (as ccdproc does),
        so it is multiplied by ``gain`` for the network.
    model : str
        deepCR-mask model name (`astro_deepcr.list_models`).
    threshold : float, optional
        Probability threshold in [0, 1]; default the model's.
    inpaint : str
        ``"medmask"``, ``"biharmonic"`` or a deepCR-inpaint model name.
    gain : float or `~astropy.units.Quantity`
        Gain; a float is taken as electron / adu, as in ccdproc. Used to
        bring ADU data to the electrons the HST models expect. Ignored (with
        a warning if it is not 1) when the data are already in electrons.
    gain_apply : bool
        If True (the default, as in ccdproc) ADU data come back
        gain-corrected, in electrons; if False they come back in their input
        unit. Data, unit and uncertainty are always consistent.
    readnoise : float or `~astropy.units.Quantity`, optional
        Read noise (a float is taken as electrons; a Quantity in adu is
        converted with ``gain``); only used by ``build_uncertainty``, but
        checked whenever given.
    satlevel : float or `~astropy.units.Quantity`
        Saturation level in electrons, as in `ccdproc.cosmicray_lacosmic`
        (astroscrappy compares it with the data after multiplying them by
        ``gain``); a Quantity in adu is converted with ``gain``. Pixels at or
        above it are never flagged as cosmic rays, keep their values and are
        not used to fill other pixels. ``numpy.inf`` disables the check.
    inmask : array-like of bool, optional
        Extra bad pixels, treated like ``ccd.mask``: excluded from detection
        and never used as inpainting sources. Not added to the output mask.
    build_uncertainty : bool
        If the input has no uncertainty, attach a `~astropy.nddata.StdDevUncertainty`
        from Poisson noise and ``readnoise`` (as `ccdproc.create_deviation` would).
    return_probability : bool
        Also return the cosmic-ray probability map (float32), for users who
        want their own threshold.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``; default
        ``astro_deepcr.conf.device`` (itself ``"auto"`` unless configured).
    tile_size : int, optional
        Engine tile size.
    verbose : bool
        Log the number of cosmic-ray pixels found.
    add_keyword : bool, str, dict or `ccdproc.Keyword`
        As ccdproc's logged steps: True records the call in ``meta`` under
        ``CRDEEPCR`` together with ``DCRMODEL``, ``DCRTHRSH``, ``DCRVERS`` and
        ``DCRNCR`` (number of CR pixels); False records nothing; anything else
        is added to ``meta`` as given.

    Returns
    -------
    nccd : `~astropy.nddata.CCDData`
        For `CCDData` input: a new object with the cleaned data,
        ``mask = ccd.mask | cr_mask`` and the uncertainty carried through
        (see Notes). The input is not modified.
    cleaned, cr_mask : `numpy.ndarray`
        For `~numpy.ndarray` input, as `ccdproc.cosmicray_lacosmic`: the
        cleaned float64 image (gain-corrected when ``gain_apply``) and the
        boolean cosmic-ray mask.
    probability : `numpy.ndarray`
        Only with ``return_probability=True``, as an extra last element.

    Raises
    ------
    TypeError
        ``ccd`` is neither CCDData nor ndarray; gain, readnoise or satlevel
        not numbers (or Quantities); an uncertainty class other than the three above.
    ValueError
        Non-positive gain, negative readnoise, NaN satlevel, bad threshold,
        unknown model, a 2-D / dtype problem with the data,
        ``build_uncertainty`` without ``readnoise``.
    astropy.units.UnitsError
        Data in a unit that cannot be brought to the model's units, or
        readnoise / satlevel in a unit other than electron / adu.

    Notes
    -----
    Uncertainty: outside the cosmic rays the input uncertainty is carried
    (converted with the data when ``gain_apply`` changes their unit); at
    each replaced pixel it becomes the robust scatter (1.4826 x MAD) of the
    usable pixels in the 5x5 box around it (growing like ``medmask`` where
    the box is all masked), i.e. the spread of the values the replacement
    was estimated from -- but never less than the median uncertainty of
    those same pixels, so a flat or quantised neighbourhood does not make a
    replaced value look exact. The class (`~astropy.nddata.StdDevUncertainty`,
    `~astropy.nddata.VarianceUncertainty`, `~astropy.nddata.InverseVariance`)
    is kept.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from astro_deepcr import cosmicray_deepcr
    >>> data = np.random.default_rng(1).normal(30, 4, (64, 64))
    >>> data[20, 10:14] += 800  # ADU; with gain 2 that is 1600 e-
    >>> ccd = CCDData(data, unit="adu")
    >>> nccd = cosmicray_deepcr(ccd, gain=2.0, device="cpu")
    >>> nccd.unit, bool(nccd.mask[20, 12]), nccd.meta["DCRMODEL"]
    (Unit("electron"), True, 'ACS-WFC')
    """
    arguments = locals()
    if isinstance(ccd, CCDData):
        return _clean_ccddata(**arguments)
    if isinstance(ccd, np.ndarray):
        return _clean_ndarray(**arguments)
    raise TypeError(f"ccd is not a CCDData or ndarray object (got {type(ccd).__name__})")


class _Result:
    """What one detection produced, in the units of the input data."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _detect(data, unit, gain, model, threshold, inpaint, satlevel, bad, device, tile_size):
    spec = get_model(model, kind="mask")
    gain = _as_quantity(gain, u.electron / u.adu, "gain")
    factor = _model_factor(unit, gain, spec.units)
    # satlevel is in electrons, compared with the gain-corrected data, as astroscrappy does for ccdproc
    saturated_electrons = _satlevel_electrons(satlevel, gain)
    values, nonfinite = as_image(data)
    bad = bad | nonfinite
    with np.errstate(invalid="ignore", over="ignore"):
        saturated = values * _model_factor(unit, gain, "electron") >= saturated_electrons
    detector = DeepCR(spec, inpaint=inpaint, device=device, tile_size=tile_size)
    threshold = detector.threshold if threshold is None else _check_threshold(threshold)
    model_units = np.asarray(data, dtype=np.float64) * factor  # full precision for the pixels we keep
    probability = detector.probability(model_units, inmask=bad)
    probability[saturated] = 0.0  # saturated pixels are never cosmic rays
    cr_mask = probability > threshold
    unusable = bad | saturated
    cleaned = detector.inpaint(model_units, cr_mask, inmask=unusable) / factor
    scatter = local_scatter(model_units, cr_mask, unusable) / factor
    return _Result(cleaned=cleaned, cr_mask=cr_mask, probability=probability, scatter=scatter, factor=factor,
                   gain=gain, threshold=threshold, unusable=unusable)


def _clean_ndarray(ccd, model, threshold, inpaint, gain, gain_apply, readnoise, satlevel, inmask, return_probability,
                   device, tile_size, verbose, **_):
    as_image(ccd)  # dimension and dtype errors first
    _readnoise_electrons(readnoise, gain)  # unused for arrays, but a wrong value is still an error
    bad = np.zeros(ccd.shape, bool) if inmask is None else _check_inmask(inmask, ccd.shape)
    result = _detect(ccd, None, gain, model, threshold, inpaint, satlevel, bad, device, tile_size)
    out_factor, _ = _output_factor(None, result.gain, gain_apply)
    cleaned = result.cleaned.astype(np.float64) * out_factor
    if verbose:
        log.info(f"cosmicray_deepcr: {int(result.cr_mask.sum())} cosmic-ray pixels ({model})")
    if return_probability:
        return cleaned, result.cr_mask, result.probability
    return cleaned, result.cr_mask


def _check_inmask(inmask, shape):
    inmask = np.asarray(inmask)
    if inmask.shape != tuple(shape):
        raise ValueError(f"inmask shape {inmask.shape} does not match the image shape {tuple(shape)}")
    return inmask.astype(bool)


def _clean_ccddata(ccd, model, threshold, inpaint, gain, gain_apply, readnoise, satlevel, inmask,
                   build_uncertainty, return_probability, device, tile_size, verbose, add_keyword, **_):
    if ccd.unit is None:
        raise u.UnitsError("CCDData has no unit; set ccd.unit (e.g. 'adu' or 'electron')")
    shape = np.shape(ccd.data)
    bad = np.zeros(shape, bool) if ccd.mask is None else np.asarray(ccd.mask, bool).copy()
    if inmask is not None:
        bad |= _check_inmask(inmask, shape)
    if ccd.uncertainty is not None and not isinstance(ccd.uncertainty, _UNCERTAINTY_CLASSES):
        raise TypeError(f"uncertainty of type {type(ccd.uncertainty).__name__} is not supported; use StdDev, "
                        "Variance or InverseVariance uncertainty")
    if ccd.unit.is_equivalent(u.electron) and not _is_one(gain):
        warnings.warn(f"image unit is {ccd.unit} but gain is {gain}: the data are not gain-corrected again",
                      AstropyUserWarning)
        gain = 1.0
    readnoise = _readnoise_electrons(readnoise, gain)
    if build_uncertainty and ccd.uncertainty is None and readnoise is None:
        raise ValueError("build_uncertainty=True needs readnoise")
    result = _detect(ccd.data, ccd.unit, gain, model, threshold, inpaint, satlevel, bad, device, tile_size)
    out_factor, out_unit = _output_factor(ccd.unit, result.gain, gain_apply)
    nccd = ccd.copy()
    nccd.data = result.cleaned * out_factor
    nccd.unit = out_unit
    nccd.mask = result.cr_mask if ccd.mask is None else (np.asarray(ccd.mask, bool) | result.cr_mask)
    nccd.uncertainty = _new_uncertainty(ccd, result, out_factor, build_uncertainty, readnoise)
    n_cr = int(result.cr_mask.sum())
    _log(nccd, add_keyword, model, result.threshold, inpaint, result.gain, gain_apply, n_cr)
    if verbose:
        log.info(f"cosmicray_deepcr: {n_cr} cosmic-ray pixels ({model})")
    return (nccd, result.probability) if return_probability else nccd


def _is_one(gain):
    value = gain.value if isinstance(gain, u.Quantity) else gain
    try:
        return float(value) == 1.0
    except (TypeError, ValueError):
        return False


def _std_in_data_units(ccd):
    """Standard deviation of the input uncertainty, in the data's unit (ndarray)."""
    std = ccd.uncertainty.represent_as(StdDevUncertainty)
    if std.unit is not None and std.unit != ccd.unit:
        return u.Quantity(std.array, std.unit).to_value(ccd.unit)
    return np.asarray(std.array, dtype=np.float64)


def _new_uncertainty(ccd, result, out_factor, build, readnoise):
    if ccd.uncertainty is None:
        if not build:
            return None
        electrons = np.clip(result.cleaned * result.factor, 0, None)
        std = np.sqrt(electrons + readnoise**2) / result.factor
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


def _log(nccd, add_keyword, model, threshold, inpaint, gain, gain_apply, n_cr):
    from . import __version__

    if not add_keyword:
        return
    if add_keyword is not True:
        if isinstance(add_keyword, str):
            nccd.meta[add_keyword] = None
        elif hasattr(add_keyword, "name") and hasattr(add_keyword, "value"):  # ccdproc.Keyword
            nccd.meta[add_keyword.name] = add_keyword.value
        else:
            nccd.meta.update(dict(add_keyword))
        return
    call = (f"ccd=<CCDData>, model={model}, threshold={threshold:g}, inpaint={inpaint}, gain={gain}, "
            f"gain_apply={gain_apply}")
    for key, value, comment in [
        (LOG_KEYWORD, call, "astro_deepcr.cosmicray_deepcr call"),
        ("DCRMODEL", str(model), "deepCR mask model"),
        ("DCRTHRSH", float(threshold), "deepCR probability threshold"),
        ("DCRVERS", str(__version__), "astro_deepcr version"),
        ("DCRNCR", n_cr, "number of cosmic-ray pixels found"),
    ]:
        # a FITS header keeps the comment; a plain dict keeps just the value
        nccd.meta[key] = (value, comment) if isinstance(nccd.meta, fits.Header) else value

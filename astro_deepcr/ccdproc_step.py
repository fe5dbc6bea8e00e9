# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
`cosmicray_deepcr`: a drop-in for `ccdproc.cosmicray_lacosmic`.

Every keyword of ``cosmicray_lacosmic`` with the same name, position and
default, the same return types (``CCDData`` in, new ``CCDData`` out;
``ndarray`` in, ``(cleaned, mask)`` out) and ccdproc's ``add_keyword``
logging, so a reduction script changes in one word. Data, unit and
uncertainty are kept consistent, count rates included.
"""

import functools
import inspect
import warnings
from itertools import chain

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData
from astropy.utils.decorators import deprecated_renamed_argument
from astropy.utils.exceptions import AstropyUserWarning

from ._ccdproc_impl import GAIN_NOT_GIVEN, READNOISE_NOT_GIVEN, clean_ccddata, clean_ndarray
from .cleantype import CLEANTYPES

__all__ = ["cosmicray_deepcr", "IGNORED_LACOSMIC_KEYWORDS"]

#: LACosmic's detection-only keywords and their defaults: accepted, ignored (deepCR detects instead).
IGNORED_LACOSMIC_KEYWORDS = {"sigclip": 4.5, "sigfrac": 0.3, "objlim": 5.0, "niter": 4, "fsmode": "median",
                             "psfmodel": "gauss", "psffwhm": 2.5, "psfsize": 7, "psfk": None, "psfbeta": 4.765}
#: ccdproc-style short name of the logged call (as ``crmedian`` for ``cosmicray_median``)
_SHORT_NAME = "crdeepcr"


def _placeholder(value):
    """As ccdproc's log: arrays, NDData and non-scalar Quantities become ``<ClassName>``."""
    if isinstance(value, u.Quantity):
        return f"<{type(value).__name__}>" if not value.isscalar else value
    if isinstance(value, (NDData, np.ndarray)):
        return f"<{type(value).__name__}>" if np.size(getattr(value, "data", value)) > 1 else value
    return value


def _insert_fits_safe(meta, key, value):
    """ccdproc's ``_insert_in_metadata_fits_safe`` for a short-named function."""
    if isinstance(meta, fits.Header):
        meta[f"HIERARCH {key.upper()}"] = (_SHORT_NAME, "Shortened name for ccdproc command")
    else:
        meta[key] = (_SHORT_NAME, "Shortened name for ccdproc command")
    meta[_SHORT_NAME] = value


def _log_to_metadata(func):
    """ccdproc's ``log_to_metadata``, for a function that may return a tuple (ndarray input: nothing logged)."""
    names = inspect.getfullargspec(func).args

    @functools.wraps(func)
    def wrapper(*args, **kwd):
        add_keyword = kwd.get("add_keyword", True)
        result = func(*args, **kwd)
        nccd = result[0] if isinstance(result, tuple) else result
        if not isinstance(nccd, CCDData) or not add_keyword:
            return result
        if add_keyword is not True:
            if isinstance(add_keyword, str):
                entries = {add_keyword: None}
            elif hasattr(add_keyword, "name") and hasattr(add_keyword, "value"):  # ccdproc.Keyword
                entries = {add_keyword.name: add_keyword.value}
            else:
                entries = dict(add_keyword)
            for key, value in entries.items():
                nccd.meta[key] = value
            return result
        import ccdproc

        if ccdproc.conf.auto_logging:
            given = chain(zip(names, args), ((k, v) for k, v in kwd.items() if k != "add_keyword"))
            call = ", ".join(f"{name}={_placeholder(value)}" for name, value in given).replace("\n", "")
            _insert_fits_safe(nccd.meta, func.__name__, call)
        return result

    return wrapper


@deprecated_renamed_argument("pssl", None, "2.3.0", arg_in_kwargs=True,
                             alternative="The pssl keyword will be removed in ccdproc 3.0. Use inbkg instead to "
                             "have astroscrappy temporarily remove the background during processing.")
@_log_to_metadata
def cosmicray_deepcr(ccd, sigclip=4.5, sigfrac=0.3, objlim=5.0, gain=GAIN_NOT_GIVEN, readnoise=READNOISE_NOT_GIVEN,
                     satlevel=65535.0, pssl=0.0, niter=4, sepmed=True, cleantype="meanmask", fsmode="median",
                     psfmodel="gauss", psffwhm=2.5, psfsize=7, psfk=None, psfbeta=4.765, verbose=False,
                     gain_apply=True, inbkg=None, invar=None, *, model=None, threshold=None, inpaint=None,
                     inmask=None, exptime=None, build_uncertainty=False, return_probability=False, device=None,
                     tile_size=None, precision=None, star_shape=False, add_keyword=True):
    """Identify cosmic rays with a deepCR network and replace them: `ccdproc.cosmicray_lacosmic` in one word.

    The arguments up to ``invar`` are `ccdproc.cosmicray_lacosmic`'s, in its
    order and with its defaults; those after are keyword-only deepCR options.
    The table in the ccdproc page of the documentation says which act.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData` or `numpy.ndarray`
        Image. A bare array is taken to be in ADU, as ccdproc does. Count
        rates (``adu / s``, ``electron / s``) need an exposure time.
    sigclip, sigfrac, objlim, niter, fsmode, psfmodel, psffwhm, psfsize, psfk, psfbeta
        LACosmic's detection parameters: accepted and ignored (the network
        detects); one `~astropy.utils.exceptions.AstropyUserWarning` names
        those given other values than their defaults.
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per ADU (a float is taken in electron / adu), as in
        ccdproc. When not given: the header's (``GAIN``, ``EGAIN``,
        ``ATODGAIN``, mean of ``ATODGN*``, ``CCDGAIN`` in ``ccd.meta``), else
        1.0 with a warning for data in ADU. Ignored with a warning for data
        already in electrons. "Not given" is told apart from an explicit
        ``gain=1.0`` although the default shows as ``1.0``, as ccdproc's.
    readnoise : float or `~astropy.units.Quantity`, optional
        Read noise (a float is in electrons; a Quantity in adu is converted
        with ``gain``). Used by ``build_uncertainty`` and ``star_shape``.
        When not given: the header's (``RDNOISE``, ``READNOIS``,
        ``READNOISE``, ``RON``, root mean square of ``READNSE*``), else
        ccdproc's 6.5 (with a warning when ``build_uncertainty`` uses it).
    satlevel : float or `~astropy.units.Quantity`
        Saturation level in electrons, as in ccdproc (astroscrappy compares
        it with the gain-corrected data); a Quantity in adu is converted with
        ``gain``. Pixels at or above it are never cosmic rays and never
        sources; saturated star cores are masked as astroscrappy does.
        ``numpy.inf`` disables the check.
    pssl : float
        Deprecated as in ccdproc (use ``inbkg``): a previously subtracted sky
        level, added for detection and removed again.
    sepmed : bool
        Separable median when finding saturated star cores, as astroscrappy.
    cleantype : str
        ``"meanmask"`` (default), ``"medmask"``, ``"median"`` or ``"idw"``:
        astroscrappy's replacements (see `astro_deepcr.cleantype`).
    verbose : bool
        Log the number of cosmic-ray pixels and the model chosen.
    gain_apply : bool
        If True (the default, as in ccdproc) ADU data come back in electrons
        (rates in electron / s); if False in their input unit.
    inbkg : array-like, optional
        A background in the data's units (the sky, included in ``ccd``),
        subtracted for the replacement and added back. The network always
        sees the frame as recorded, sky included: it learnt the sky's photon
        noise (astroscrappy likewise keeps the background in its noise model).
    invar : array-like, optional
        Variance in the data's units squared; with ``build_uncertainty`` it
        is the variance used instead of Poisson noise and read noise.
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional
        deepCR-mask model; default chosen from ``ccd.meta`` by
        `astro_deepcr.detection.choose_model`.
    threshold : float, optional
        Probability threshold in [0, 1]; default the model's.
    inpaint : str, optional
        Replace with ``"deepcr"`` (the deepCR-inpaint model chosen from the
        header), a deepCR-inpaint model name, ``"biharmonic"`` or
        ``"medmask"`` (growing box) instead of ``cleantype``.
    inmask : array-like of bool, optional
        Extra bad pixels, treated like ``ccd.mask`` but not added to the output mask.
    exptime : float or `~astropy.units.Quantity`, optional
        Exposure time (s) for count rates; default ``EXPTIME`` in ``ccd.meta``.
    build_uncertainty : bool
        Attach a `~astropy.nddata.StdDevUncertainty` when the input has none.
    return_probability : bool
        Also return the cosmic-ray probability map (float32) as a last element.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, or deepCR's ``"CPU"`` / ``"GPU"``.
    tile_size : int, optional
    precision : str, optional
        Network precision (`astro_deepcr.DeepCR`).
    star_shape : bool
        Also flag what the frame's isolated stars' own shape cannot explain
        (`astro_deepcr.starshape`: cosmic rays on stars of crowded,
        undersampled frames; off by default, docs/ground.rst, "The star-shape
        test"), with ``readnoise`` (from the header when not given, else
        ccdproc's default 6.5 e-).
    add_keyword : bool, str, dict or `ccdproc.Keyword`
        As ccdproc's logged steps: True records the call under
        ``cosmicray_deepcr`` (short name ``crdeepcr``, as ccdproc shortens its
        own) when ``ccdproc.conf.auto_logging`` is on, plus the ``DCR*``
        provenance keywords (`astro_deepcr.provenance`); False records
        nothing; anything else is added to ``meta`` as given.

    Returns
    -------
    nccd : `~astropy.nddata.CCDData`
        For CCDData input: new object, cleaned data, ``mask = ccd.mask | cr_mask``,
        uncertainty carried through (replaced pixels get the local scatter of
        their sources, never less than those sources' uncertainty).
    cleaned, cr_mask : `numpy.ndarray`
        For ndarray input, as ccdproc: float64 image and boolean mask.

    Raises
    ------
    TypeError
        ``ccd`` neither CCDData nor ndarray; gain, readnoise or satlevel not
        numbers; an unsupported uncertainty class.
    ValueError
        Bad values (gain, readnoise, satlevel, threshold, cleantype, model,
        shapes), ``pssl`` together with ``inbkg``/``invar``, both
        ``cleantype`` and ``inpaint``.
    astropy.units.UnitsError
        Data in a unit that cannot be brought to the model's, or a count
        rate without an exposure time.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import CCDData
    >>> from astro_deepcr import cosmicray_deepcr
    >>> data = np.random.default_rng(1).normal(30, 4, (64, 64))
    >>> data[20, 10:14] += 800  # ADU; with gain 2 that is 1600 e-
    >>> ccd = CCDData(data, unit="adu", meta={"GAIN": 2.0})
    >>> nccd = cosmicray_deepcr(ccd, device="cpu")  # doctest: +IGNORE_OUTPUT
    >>> nccd.unit, bool(nccd.mask[20, 12]), nccd.meta["DCRMODEL"]  # no INSTRUME: the model for ground frames
    (Unit("electron"), True, 'ground-v2')
    """
    _warn_ignored(sigclip=sigclip, sigfrac=sigfrac, objlim=objlim, niter=niter, fsmode=fsmode, psfmodel=psfmodel,
                  psffwhm=psffwhm, psfsize=psfsize, psfk=psfk, psfbeta=psfbeta)
    if pssl != 0 and (inbkg is not None or invar is not None):
        raise ValueError("Cannot set both pssl and inbkg")
    if inpaint is not None and cleantype != "meanmask":
        raise ValueError(f"give cleantype ({cleantype!r}) or inpaint ({inpaint!r}), not both")
    if inpaint is None and cleantype not in CLEANTYPES:
        raise ValueError(f"cleantype must be one of {', '.join(CLEANTYPES)}, not {cleantype!r}")
    detection = dict(satlevel=satlevel, pssl=pssl, inbkg=inbkg, sepmed=sepmed, cleantype=cleantype, inpaint=inpaint,
                     threshold=threshold, device=device, tile_size=tile_size, precision=precision,
                     star_shape=star_shape)
    if isinstance(ccd, CCDData):
        return clean_ccddata(ccd, gain=gain, readnoise=readnoise, gain_apply=gain_apply, inmask=inmask,
                             exptime=exptime, invar=invar, build_uncertainty=build_uncertainty,
                             return_probability=return_probability, verbose=verbose, add_keyword=add_keyword,
                             model=model, **detection)
    if isinstance(ccd, np.ndarray):
        return clean_ndarray(ccd, gain=gain, readnoise=readnoise, gain_apply=gain_apply, inmask=inmask,
                             return_probability=return_probability, verbose=verbose, model=model, **detection)
    raise TypeError(f"ccd is not a CCDData or ndarray object (got {type(ccd).__name__})")


def _warn_ignored(**given):
    changed = []
    for name, default in IGNORED_LACOSMIC_KEYWORDS.items():
        value = given[name]
        same = value is None if default is None else (not isinstance(value, np.ndarray) and value == default)
        if not same:
            changed.append(f"{name}={_placeholder(value)!r}" if isinstance(value, str) else
                           f"{name}={_placeholder(value)}")
    if changed:
        warnings.warn(f"cosmicray_deepcr: LACosmic detection keywords have no effect on deepCR and are ignored: "
                      f"{', '.join(changed)}", AstropyUserWarning)

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
HST exposures: deepCR cosmic-ray flags in ``_flt``/``_flc`` DQ arrays, and
AstroDrizzle with deepCR in place of its median / blot / driz_cr steps.

Two entry points:

`flag_cosmic_rays`
    ORs ``crbit`` (default 4096, AstroDrizzle's ``crbit``) into ``DQ,N`` at
    the cosmic rays deepCR finds in ``SCI,N``. Then drizzle with plain
    ``AstroDrizzle(..., resetbits=0, median=False, blot=False, driz_cr=False)``.
    ``resetbits=0`` matters: AstroDrizzle's default ``resetbits="4096"``
    clears bit 4096 in every input DQ array at start-up
    (``processInput.resetDQBits``), i.e. it erases the flags just written.

`astrodrizzle`
    A drop-in for ``drizzlepac.astrodrizzle.AstroDrizzle`` that runs
    drizzlepac's own steps in their order (initialisation, static mask,
    sky, separate drizzle, final drizzle) but replaces median + blot +
    driz_cr by deepCR: the masks are written as drizzlepac's own
    ``<rootname>_sci<N>_crmask.fits`` files (uint8, 1 = good, 0 = CR), which
    the final drizzle merges into its weights and propagates into the input
    DQ arrays as ``crbit`` (``adrizzle.updateInputDQArray``), exactly as it
    does for driz_cr's masks. It works for a single exposure.

drizzlepac has no plug-in mechanism; `astrodrizzle` therefore reproduces
``drizzlepac.astrodrizzle.run`` (drizzlepac 3.11) with step 6 swapped.
"""

import contextlib
import difflib
import logging
import os
import warnings

import numpy as np
from astropy.nddata.bitmask import bitfield_to_boolean_mask, interpret_bit_flags
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage, signal

from .fitsutil import electron_factor, update_fits
from .zoo import get_model, list_models

__all__ = [
    "DEFAULT_BAD_BITS",
    "DEFAULT_FILL_BITS",
    "CALACS_CRBIT",
    "parse_inputs",
    "select_model",
    "flag_cosmic_rays",
    "astrodrizzle",
    "astrodrizzle_parameter_names",
    "load_config",
    "save_config",
]

log = logging.getLogger(__name__)

#: DQ bits of pixels never flagged as cosmic rays: every bit except 4096
#: (AstroDrizzle CR) and 8192 (calacs ``acsrej`` CR). Saturated (256, 2048),
#: hot/warm (16, 64) and other known defects are already flagged in DQ and
#: excluded by the drizzle anyway; flagging them again as CR would be noise.
DEFAULT_BAD_BITS = "~4096,8192"
#: DQ bits of pixels whose values are not sky (1 corrupted, 2 fill, 4 bad
#: detector pixel, 8 masked by aperture): replaced by the median of good
#: neighbours before deepCR sees the image (its ``inmask``). Saturation is
#: deliberately not here: filling a saturated star core with the median of
#: its ring leaves a steep artificial edge that the network flags as cosmic
#: rays (measured: 41 px around the synthetic saturated star in
#: ``astro_deepcr.training.flc``), while the saturated plateau itself is not flagged.
DEFAULT_FILL_BITS = "1,2,4,8"
#: DQ bit calacs' ``acsrej`` sets on CR-SPLIT cosmic rays; never ours to change.
CALACS_CRBIT = 8192
_TASK_NAME = "astro_deepcr_flag"
_HISTORY_TAG = "astro_deepcr flag_cosmic_rays:"
_CR_STEPS_REPLACED = ("median", "blot", "driz_cr")


# -- inputs, models, units -------------------------------------------------------------------------------------------


def parse_inputs(files):
    """Expand drizzlepac-style input into a list of file names.

    Parameters
    ----------
    files : str, path-like or list of those
        A file name, a comma-separated list, a wildcard (``"*_flc.fits"``),
        an ``@list`` file or an association table, as
        `stsci.tools.parseinput.parseinput` (and hence drizzlepac) reads
        them; or a list of any of these.

    Returns
    -------
    names : list of str

    Raises
    ------
    ValueError
        Nothing matched.
    """
    from stsci.tools.parseinput import parseinput

    items = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    names = []
    for item in items:
        item = os.fspath(item).strip()
        if item.startswith("@") and "," not in item:
            # read @lists here: stsci.tools' irafglob leaves the list file open (ResourceWarning)
            names.extend(_read_at_list(item[1:]))
            continue
        found, _ = parseinput(item)
        names.extend(found)
    if not names:
        raise ValueError(f"no input files found for {files!r}")
    missing = [name for name in names if not os.path.isfile(name)]
    if missing:
        raise ValueError(f"input file(s) not found: {', '.join(missing)}")
    return names


def _read_at_list(path):
    """First column of an ``@list`` file (a second column names IVM files, as for drizzlepac)."""
    if not os.path.isfile(path):
        raise ValueError(f"@list file {path} not found")
    with open(path) as stream:
        entries = [line.split()[0] for line in stream if line.strip() and not line.lstrip().startswith("#")]
    return parse_inputs(entries) if entries else []


def _header_text(header, key):
    return str(header.get(key, "")).strip().upper()


def select_model(primary_header, model=None):
    """The deepCR-mask model for an HST exposure.

    Parameters
    ----------
    primary_header : `~astropy.io.fits.Header`
        Primary header (``INSTRUME``, ``DETECTOR``, ``FILTER1``/``FILTER2``
        or ``FILTER``).
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional
        Use this model; warn when it was trained on another detector.

    Returns
    -------
    spec : `~astro_deepcr.zoo.ModelSpec`

    Raises
    ------
    ValueError
        No model is registered for the instrument/detector and none was given.

    Notes
    -----
    ACS/WFC: ``ACS-WFC-<FILTER>`` when such a mask model is registered for a
    non-CLEAR ``FILTER1``/``FILTER2``, else the global ``ACS-WFC``.
    WFC3/UVIS: ``WFC3-UVIS``.
    """
    instrument = _header_text(primary_header, "INSTRUME")
    detector = _header_text(primary_header, "DETECTOR")
    if model is not None:
        spec = get_model(model, kind="mask")
        if (spec.instrument.upper(), spec.detector.upper()) != (instrument, detector):
            warnings.warn(
                f"model {spec.name!r} was trained on {spec.instrument}/{spec.detector or '?'} data, "
                f"not {instrument}/{detector}; check its masks", AstropyUserWarning)
        return spec
    if (instrument, detector) == ("ACS", "WFC"):
        masks = set(list_models("mask"))
        for key in ("FILTER1", "FILTER2"):
            name = f"ACS-WFC-{_header_text(primary_header, key)}"
            if not _header_text(primary_header, key).startswith("CLEAR") and name in masks:
                return get_model(name, kind="mask")
        return get_model("ACS-WFC", kind="mask")
    if (instrument, detector) == ("WFC3", "UVIS"):
        return get_model("WFC3-UVIS", kind="mask")
    raise ValueError(
        f"no deepCR model for INSTRUME={instrument or '?'} DETECTOR={detector or '?'} (models exist for "
        "ACS/WFC and WFC3/UVIS); pass model= explicitly to use one trained on another detector")


def _electron_factor(sci_header, primary_header, filename):
    """Multiplier that turns SCI values into electrons (ELECTRONS, or ELECTRONS/S times EXPTIME)."""
    try:
        return electron_factor(sci_header, primary_header, "electron", gain=None)
    except ValueError as exc:
        raise ValueError(f"{filename}: {exc}") from None


def _check_crbit(crbit):
    try:
        value = int(crbit)
    except (TypeError, ValueError):
        raise TypeError(f"crbit must be an integer power of two, not {crbit!r}") from None
    if value != crbit or value <= 0 or value & (value - 1) or value > 16384:
        raise ValueError(f"crbit must be a single DQ bit (a power of two up to 16384), not {crbit!r}")
    if value == CALACS_CRBIT:
        raise ValueError("crbit 8192 is calacs' acsrej cosmic-ray bit; use AstroDrizzle's 4096 (default)")
    return value


def _bad_mask(dq_values, bad_bits, crbit):
    """True where a DQ bit of the expression ``bad_bits`` (never ``crbit``) is set."""
    bad_value = interpret_bit_flags(bad_bits)
    if bad_value is None or bad_value == 0:
        return np.zeros(dq_values.shape, dtype=bool)
    bad_value &= ~crbit & 0xFFFF
    # astropy marks pixels with bits outside ``ignore_flags`` as bad: ignore the complement
    return bitfield_to_boolean_mask(dq_values.astype(np.uint16), ignore_flags=~bad_value & 0xFFFF,
                                    good_mask_value=False, dtype=bool)


def _dq_values(hdu, filename):
    """DQ values as integers from raw (``do_not_scale_image_data``) data; check bit ops are safe on raw."""
    bscale = hdu.header.get("BSCALE", 1)
    bzero = hdu.header.get("BZERO", 0)
    raw = hdu.data
    if raw.dtype.kind not in "iu" or bscale != 1 or bzero not in (0, 32768):
        raise ValueError(f"{filename} {hdu.name},{hdu.ver}: DQ must be integer (optionally uint16 via "
                         f"BZERO=32768), not {raw.dtype} with BSCALE={bscale} BZERO={bzero}")
    return raw.astype(np.int64) + bzero


class _Detector:
    """One `DeepCR` per model, created on first use."""

    def __init__(self, device, progress=None):
        self.device = device
        self.progress = progress
        self._instances = {}

    def __call__(self, spec):
        from .deepcr import DeepCR

        if spec.name not in self._instances:
            self._instances[spec.name] = DeepCR(mask=spec, device=self.device, progress=self.progress)
        return self._instances[spec.name]


def _grow(cr_mask, radius, bad):
    if radius <= 0 or not cr_mask.any():
        return cr_mask
    structure = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
    return ndimage.binary_dilation(cr_mask, structure) & ~bad


def _chip_mask(detector, spec, electrons, bad, fill, threshold):
    """deepCR mask of one chip: ``fill`` pixels replaced before the network, ``bad`` ones never flagged."""
    if spec.units != "electron":
        warnings.warn(f"model {spec.name!r} expects {spec.units}, the HST data are electrons", AstropyUserWarning)
    return detector(spec).mask(electrons, threshold=threshold, inmask=fill) & ~bad


# -- flag_cosmic_rays ------------------------------------------------------------------------------------------------


def flag_cosmic_rays(files, model=None, threshold=None, crbit=4096, grow=0, reset=True, bad_bits=DEFAULT_BAD_BITS,
                     fill_bits=DEFAULT_FILL_BITS, device=None, lock_timeout=0.0, progress=None):
    """Flag deepCR cosmic rays in the DQ arrays of HST ``_flt``/``_flc`` files, in place.

    For every ``SCI,N`` of each file, deepCR-mask runs on the image in
    electrons (``fill_bits`` pixels of ``DQ,N`` replaced by the median of
    their good neighbours first), and ``crbit`` is OR-ed into ``DQ,N`` at the detected cosmic rays. Nothing
    else changes: other DQ bits, SCI, ERR and all headers stay as they were,
    except the primary header, which gets the keywords ``DCRMODEL``,
    ``DCRVERS``, ``DCRTHRSH``, ``DCRBIT``, ``DCRGROW`` and one ``HISTORY``
    line (replacing those of an earlier run). Each file is rewritten
    atomically under a lock (`astro_deepcr.fitsutil.update_fits`), so an
    interrupted run leaves it unchanged.

    Parameters
    ----------
    files : str, path-like or list
        Inputs as drizzlepac takes them (see `parse_inputs`).
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional
        deepCR-mask model; default chosen per file by `select_model`.
    threshold : float, optional
        Probability threshold in [0, 1]; default the model's.
    crbit : int
        DQ bit for cosmic rays; 4096 is AstroDrizzle's ``crbit``. 8192
        (calacs) is refused.
    grow : int
        Also flag pixels within this many pixels (square) of a cosmic ray.
    reset : bool
        Clear ``crbit`` in the DQ arrays first (otherwise old flags stay).
    bad_bits : int, str or None
        DQ bits of pixels never flagged, as a drizzlepac-style bit expression
        (``"~4096,8192"``, the default: all bits but these; ``"256,2048"``:
        saturation only; 0 or None: none). ``crbit`` itself never counts.
    fill_bits : int, str or None
        DQ bits of pixels whose values are not usable (default ``"1,2,4,8"``):
        deepCR's ``inmask``, i.e. filled from good neighbours before the
        network runs, never flagged, never used to fill others. Saturation
        is not in the default (see `DEFAULT_FILL_BITS`).
    device : str, optional
        Torch device (default ``astro_deepcr.conf.device``).
    lock_timeout : float
        Seconds to wait when another process is updating the same file.
    progress : bool or None
        deepCR's tile progress bar (None: only for chips taking over a second).

    Returns
    -------
    summary : `~astropy.table.Table`
        One row per chip: ``file``, ``extver``, ``model``, ``threshold``,
        ``n_cr`` (pixels flagged now), ``n_bad`` (pixels excluded by
        ``bad_bits`` or ``fill_bits``), ``n_pixels``.

    Raises
    ------
    ValueError
        No model for the detector, unsupported BUNIT, missing DQ, bad crbit.
    astro_deepcr.fitsutil.FitsUpdateError
        A file is compressed, read-only or locked by another process.

    Examples
    --------
    >>> from astro_deepcr.drizzle import flag_cosmic_rays
    >>> from drizzlepac.astrodrizzle import AstroDrizzle  # doctest: +SKIP
    >>> flag_cosmic_rays("*_flc.fits")  # doctest: +SKIP
    >>> AstroDrizzle("*_flc.fits", resetbits=0, median=False, blot=False,
    ...              driz_cr=False)  # doctest: +SKIP
    """
    from . import __version__

    crbit = _check_crbit(crbit)
    if int(grow) != grow or grow < 0:
        raise ValueError(f"grow must be a non-negative integer, not {grow!r}")
    interpret_bit_flags(bad_bits)  # fail early on malformed expressions
    interpret_bit_flags(fill_bits)
    names = parse_inputs(files)
    detector = _Detector(device, progress)
    rows = []
    for filename in names:
        with update_fits(filename, lock_timeout=lock_timeout) as hdul:
            primary = hdul[0].header
            spec = select_model(primary, model)
            used_threshold = detector(spec).threshold if threshold is None else float(threshold)
            sci_hdus = [hdu for hdu in hdul if hdu.name == "SCI" and hdu.data is not None]
            if not sci_hdus:
                raise ValueError(f"{filename} has no SCI extension with data")
            for sci in sci_hdus:
                extver = sci.ver
                try:
                    dq = hdul["DQ", extver]
                except KeyError:
                    raise ValueError(f"{filename} has SCI,{extver} but no DQ,{extver}") from None
                if dq.data is None or dq.data.shape != sci.data.shape:
                    raise ValueError(f"{filename}: DQ,{extver} is missing or its shape differs from SCI,{extver}")
                factor = _electron_factor(sci.header, primary, filename)
                electrons = _scaled(sci) * factor
                dq_values = _dq_values(dq, filename)
                fill = _bad_mask(dq_values, fill_bits, crbit)
                bad = _bad_mask(dq_values, bad_bits, crbit) | fill
                cr_mask = _grow(_chip_mask(detector, spec, electrons, bad, fill, used_threshold), int(grow), bad)
                raw = dq.data
                if reset:
                    np.bitwise_and(raw, np.array(~crbit).astype(raw.dtype), out=raw)
                raw[cr_mask] |= np.array(crbit).astype(raw.dtype)
                rows.append((filename, extver, spec.name, used_threshold, int(cr_mask.sum()), int(bad.sum()),
                             cr_mask.size))
                log.info(f"{os.path.basename(filename)}[SCI,{extver}]: {int(cr_mask.sum())} cosmic-ray pixels "
                         f"flagged with DQ bit {crbit} (deepCR model {spec.name}, threshold {used_threshold:g})")
            _record(primary, spec, used_threshold, crbit, grow, __version__)
    return Table(rows=rows, names=("file", "extver", "model", "threshold", "n_cr", "n_bad", "n_pixels"))


def _scaled(hdu):
    """Physical values of an HDU read with ``do_not_scale_image_data=True``."""
    data = hdu.data
    bscale, bzero = hdu.header.get("BSCALE", 1), hdu.header.get("BZERO", 0)
    if bscale != 1 or bzero != 0:
        return data.astype(np.float64) * bscale + bzero
    return data


def _record(header, spec, threshold, crbit, grow, version):
    """Record the run in the primary header: DCR* keywords and one HISTORY card, replacing earlier ones.

    New cards go after everything already there (blank padding cards are not reused), so every
    original card keeps its place.
    """
    cards = [
        ("DCRMODEL", spec.name, "astro_deepcr deepCR-mask model"),
        ("DCRVERS", str(version), "astro_deepcr version"),
        ("DCRTHRSH", float(threshold), "deepCR probability threshold"),
        ("DCRBIT", int(crbit), "DQ bit set on deepCR cosmic rays"),
        ("DCRGROW", int(grow), "deepCR mask grown by this many pixels"),
    ]
    for key, value, comment in cards:
        if key in header:
            header[key] = (value, comment)
        else:
            header.append((key, value, comment), useblanks=False, end=True)
    for index in reversed([i for i, card in enumerate(header.cards)
                           if card.keyword == "HISTORY" and str(card.value).startswith(_HISTORY_TAG)]):
        del header[index]
    # one card (<= 72 characters) so a rerun finds and replaces it; the details are in the DCR* keywords
    header.append(("HISTORY", f"{_HISTORY_TAG} CRs in DQ bit {crbit} (DCR* keys)"), useblanks=False, end=True)


# -- configobj (.cfg) parameters -------------------------------------------------------------------------------------


def _default_cfg():
    return os.path.join(os.path.dirname(__file__), "data", f"{_TASK_NAME}.cfg")


def load_config(path=None):
    """Read `flag_cosmic_rays` parameters from a configobj ``.cfg`` file.

    The file is validated against ``astro_deepcr/data/astro_deepcr_flag.cfgspc``
    with `stsci.tools.cfgpars`, as drizzlepac's ``.cfg`` files are.

    Parameters
    ----------
    path : str, optional
        A ``.cfg`` written by `save_config`; default the shipped defaults.

    Returns
    -------
    params : dict
        ``input`` plus the keyword arguments of `flag_cosmic_rays`, e.g.
        ``flag_cosmic_rays(params.pop("input"), **params)``.
    """
    from stsci.tools import cfgpars

    import astro_deepcr

    path = _default_cfg() if path is None else os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"configuration file {path} not found")
    pars = cfgpars.ConfigObjPars(path, forUseWithEpar=False, associatedPkg=astro_deepcr, strict=True)
    if pars.get("_task_name_", _TASK_NAME) != _TASK_NAME:
        raise ValueError(f"{path} is not an {_TASK_NAME} configuration")
    params = {key: value for key, value in dict(pars).items() if not key.startswith("_")}
    params["model"] = params["model"] or None
    params["device"] = params["device"] or None
    return params


def save_config(path, **params):
    """Write `flag_cosmic_rays` parameters (and ``input``) to a configobj ``.cfg`` file.

    Unknown names raise `ValueError`; unspecified ones keep their defaults.
    """
    from stsci.tools import cfgpars

    import astro_deepcr

    pars = cfgpars.ConfigObjPars(_default_cfg(), forUseWithEpar=False, associatedPkg=astro_deepcr)
    unknown = sorted(set(params) - set(pars) | {key for key in params if key.startswith("_")})
    if unknown:
        raise ValueError(f"unknown {_TASK_NAME} parameter(s): {', '.join(unknown)}")
    for key, value in params.items():
        pars[key] = "" if value is None and key in ("model", "device") else value
    pars.filename = os.fspath(path)
    pars.write()
    return os.fspath(path)


# -- astrodrizzle ----------------------------------------------------------------------------------------------------


def _drizzlepac():
    """Import drizzlepac (once), silencing the deprecation noise its dependencies emit on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from drizzlepac import util
    return util


def astrodrizzle_parameter_names():
    """All parameter names ``AstroDrizzle`` accepts (from drizzlepac's own ``.cfg``)."""
    from stsci.tools import teal

    util = _drizzlepac()

    names = set(util.getFullParList(teal.load("astrodrizzle", defaults=True)))
    return {name for name in names if not name.startswith("_")} | {"updatewcs", "input"}


def _validate_names(params):
    known = astrodrizzle_parameter_names()
    unknown = sorted(set(params) - known)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"unknown AstroDrizzle parameter(s): {', '.join(hints)}")


def astrodrizzle(files, cr_method="deepcr", model=None, threshold=None, bad_bits=DEFAULT_BAD_BITS,
                 fill_bits=DEFAULT_FILL_BITS, device=None, configobj=None, wcsmap=None, **astrodrizzle_parameters):
    """AstroDrizzle with deepCR cosmic-ray masks in place of median / blot / driz_cr.

    Parameters
    ----------
    files : str or list
        Inputs as ``AstroDrizzle`` takes them (name, list, wildcard,
        ``@list``, association table).
    cr_method : {"deepcr", "driz_cr"}
        ``"driz_cr"`` runs ``drizzlepac.astrodrizzle.AstroDrizzle`` unchanged.
    model, threshold, bad_bits, fill_bits, device :
        deepCR settings, as in `flag_cosmic_rays` (``cr_method="deepcr"`` only).
    configobj : str or ConfigObj, optional
        An AstroDrizzle ``.cfg`` file or object, as for ``AstroDrizzle``.
    wcsmap : optional
        As for ``AstroDrizzle``.
    **astrodrizzle_parameters
        Any ``AstroDrizzle`` parameter (``output``, ``final_bits``,
        ``num_cores``, ``final_wcs``, ``crbit``, ...). Unknown names raise
        `ValueError` (``AstroDrizzle`` itself only logs them and returns).
        With ``cr_method="deepcr"``: ``median``, ``blot`` and ``driz_cr`` are
        forced off, ``driz_separate`` is off unless asked for,
        ``driz_cr_grow`` / ``driz_cr_ctegrow`` grow the deepCR masks as they
        grow driz_cr's, and ``driz_cr_corr=True`` writes
        ``<rootname>_crclean.fits`` with the cosmic rays inpainted (5x5
        median of good neighbours) and DQ = ``crbit`` at them.

    Notes
    -----
    The deepCR masks are written as ``<rootname>_sci<N>_crmask.fits`` (uint8,
    1 = good, 0 = CR; drizzlepac's names and convention). The final drizzle
    excludes those pixels and ORs ``crbit`` into the input DQ arrays, as
    with driz_cr. ``resetbits`` keeps its meaning (default ``"4096"``
    clears old CR flags first). The products (``_drc``/``_drz``) are those
    ``AstroDrizzle`` writes.
    """
    if cr_method not in ("deepcr", "driz_cr"):
        raise ValueError(f"cr_method must be 'deepcr' or 'driz_cr', not {cr_method!r}")
    _validate_names(astrodrizzle_parameters)
    util = _drizzlepac()
    from drizzlepac.astrodrizzle import AstroDrizzle
    from stsci.tools import teal

    if cr_method == "driz_cr":
        if (model, threshold, device, bad_bits, fill_bits) != (None, None, None, DEFAULT_BAD_BITS, DEFAULT_FILL_BITS):
            warnings.warn("model/threshold/bad_bits/fill_bits/device are deepCR settings; ignored with "
                          "cr_method='driz_cr'", AstropyUserWarning)
        return AstroDrizzle(files, configobj=configobj, wcsmap=wcsmap, **astrodrizzle_parameters)

    params = dict(astrodrizzle_parameters)
    for key in _CR_STEPS_REPLACED:
        if params.get(key):
            warnings.warn(f"{key}=True ignored: deepCR replaces median, blot and driz_cr", AstropyUserWarning)
        params[key] = False
    params.setdefault("driz_separate", False)
    if isinstance(configobj, (str, bytes)):
        if not os.path.exists(configobj):
            raise ValueError(f"cannot find AstroDrizzle .cfg file {configobj}")
        configobj = teal.load(configobj, strict=False)
    elif configobj is None:
        configobj = teal.load("astrodrizzle", defaults=True)
    input_dict = dict(params, input=files)
    if "updatewcs" in input_dict:
        configobj["updatewcs"] = input_dict.pop("updatewcs")
    config = util.getDefaultConfigObj("astrodrizzle", configobj, input_dict, loadOnly=True)
    util.applyUserPars_steps(config, input_dict, step="3a")
    util.applyUserPars_steps(config, input_dict, step="7a")
    config["mdriztab"] = False
    options = {"model": model, "threshold": threshold, "bad_bits": bad_bits, "fill_bits": fill_bits,
               "device": device}
    interpret_bit_flags(bad_bits)
    interpret_bit_flags(fill_bits)
    _run_deepcr_drizzle(config, wcsmap=wcsmap, input_dict=input_dict, options=options)


def _run_deepcr_drizzle(configobj, wcsmap=None, input_dict=None, options=None):
    """Run `_deepcr_drizzle_steps` under drizzlepac's own logging (trailer file, log format)."""
    import sys

    from . import deepcr  # noqa: F401  (import torch before drizzlepac redirects stdout/stderr)

    util = _drizzlepac()
    excepthook = sys.excepthook
    try:
        return util.with_logging(_deepcr_drizzle_steps)(configobj, wcsmap=wcsmap, input_dict=input_dict,
                                                        options=options)
    finally:
        # stsci.tools' teardown_global_logging ends with ``del sys.excepthook``, which can leave none at all
        if getattr(sys, "excepthook", None) is None:
            sys.excepthook = excepthook


def _deepcr_drizzle_steps(configobj, wcsmap=None, input_dict=None, options=None):
    """``drizzlepac.astrodrizzle.run`` (3.11) with median/blot/driz_cr replaced by `_deepcr_step`."""
    from drizzlepac import ablot, adrizzle, createMedian, drizCR, processInput, sky, staticMask, util

    input_list, output, _, _ = processInput.processFilenames(configobj["input"])
    if output is None and not input_list:
        raise ValueError(f"no valid input files found for {configobj['input']!r}")
    handlers = [handler.name for handler in logging.getLogger().handlers if handler.level > 0]
    logfile = handlers[0] if handlers else f"{output or input_list[0]}.tra"
    clean = configobj["STATE OF INPUT FILES"]["clean"]
    proc_steps = util.ProcSteps()
    image_list, outwcs = None, None
    try:
        proc_steps.addStep("Initialization")
        image_list, outwcs = processInput.setCommonInput(configobj, overwrite_dict=input_dict)
        proc_steps.endStep("Initialization")
        if not image_list:
            raise ValueError("AstroDrizzle found no valid images to process (see its log)")
        staticMask.createStaticMask(image_list, configobj, procSteps=proc_steps)
        sky.subtractSky(image_list, configobj, procSteps=proc_steps)
        adrizzle.drizSeparate(image_list, outwcs, configobj, wcsmap=wcsmap, logfile=logfile, procSteps=proc_steps)
        # drizzlepac's own steps 4-6, switched off (they log "turned off" as in AstroDrizzle), then deepCR
        createMedian.createMedian(image_list, configobj, procSteps=proc_steps)
        proc_steps.endStep(createMedian.PROCSTEPS_NAME, reason="off")
        ablot.runBlot(image_list, outwcs, configobj, wcsmap=wcsmap, procSteps=proc_steps)
        proc_steps.endStep(ablot.PROCSTEPS_NAME, reason="off")
        drizCR.rundrizCR(image_list, configobj, procSteps=proc_steps)
        proc_steps.endStep(drizCR.PROCSTEPS_NAME, reason="off")
        _deepcr_step(image_list, configobj, options, proc_steps)
        adrizzle.drizFinal(image_list, outwcs, configobj, wcsmap=wcsmap, logfile=logfile, procSteps=proc_steps)
    except Exception:
        clean = False
        proc_steps.endStep(None, reason="aborted")
        raise
    finally:
        proc_steps.reportTimes()
        for image in image_list or []:
            if clean:
                image.clean()
            image.close()


_DEEPCR_STEP = "deepCR"


def _deepcr_step(image_list, configobj, options, proc_steps):
    """Write deepCR masks as drizzlepac ``_crmask`` files (and ``_crclean`` files if asked)."""
    from drizzlepac import drizCR, util
    from stsci.tools import fileutil

    proc_steps.addStep(_DEEPCR_STEP)
    section = configobj[util.getSectionName(configobj, drizCR.STEP_NUM)]
    crbit = _check_crbit(configobj["crbit"])
    grow, ctegrow = int(section["driz_cr_grow"]), int(section["driz_cr_ctegrow"])
    log.info("USER INPUT PARAMETERS for deepCR Step (in place of median, blot and driz_cr):")
    for key, value in (("model", options["model"] or "from headers"),
                       ("threshold", "model default" if options["threshold"] is None else options["threshold"]),
                       ("bad_bits", options["bad_bits"]), ("fill_bits", options["fill_bits"]),
                       ("crbit", crbit), ("driz_cr_grow", grow), ("driz_cr_ctegrow", ctegrow),
                       ("driz_cr_corr", section["driz_cr_corr"])):
        log.info(f"    {key:<15}: {value}")
    detector = _Detector(options["device"], progress=False)
    for image in image_list:
        primary = image._image[0].header
        spec = select_model(primary, options["model"])
        corrections = []
        for chip in range(1, image._numchips + 1):
            sci_chip = image._image[image.scienceExt, chip]
            if not sci_chip.group_member:
                continue
            electrons = np.asarray(image.getData(f"{image.scienceExt},{chip}"), dtype=np.float64)
            electrons = electrons * sci_chip._conversionFactor
            dq = np.asarray(image.getData(f"{image.maskExt},{chip}"))
            fill = _bad_mask(dq.astype(np.int64), options["fill_bits"], crbit)
            bad = _bad_mask(dq.astype(np.int64), options["bad_bits"], crbit) | fill
            cr_mask = _chip_mask(detector, spec, electrons, bad, fill, options["threshold"])
            cr_mask = _grow_like_driz_cr(cr_mask, grow, ctegrow, sci_chip.cte_dir)
            log.info(f"deepCR ({spec.name}): {int(cr_mask.sum())} cosmic-ray pixels in "
                     f"{image._filename}[{image.scienceExt},{chip}]")
            _write_crmask(image, sci_chip, (~cr_mask).astype(np.uint8))
            if section["driz_cr_corr"]:
                cleaned = detector(spec).inpaint(electrons, cr_mask, inmask=fill)
                corrections.append({
                    "sciext": ("SCI", chip) if image.scienceExt.upper() == "SCI" else (image.scienceExt, chip),
                    "corrFile": (cleaned / sci_chip._conversionFactor).astype(np.float32),
                    "dqext": fileutil.parseExtn(f"{sci_chip.dq_extn.split(',')[0]},{chip}"),
                    "dqMask": np.where(cr_mask, crbit, 0).astype(np.uint16),
                })
        if corrections:
            drizCR.createCorrFile(image.outputNames["crcorImage"], corrections, image._filename)
    proc_steps.endStep(_DEEPCR_STEP)


def _grow_like_driz_cr(cr_mask, grow, ctegrow, cte_dir):
    """driz_cr's growth: a ``grow`` x ``grow`` box and a CTE tail of ``ctegrow`` pixels."""
    if grow <= 1 and ctegrow <= 0:
        return cr_mask
    good = (~cr_mask).astype(np.uint16)
    grown = signal.convolve2d(good, np.ones((grow, grow), dtype=np.uint16), boundary="symm", mode="same")
    tail_kernel = np.zeros((2 * ctegrow + 1, 2 * ctegrow + 1))
    if cte_dir == 1:
        tail_kernel[0:ctegrow, ctegrow] = 1
    elif cte_dir == -1:
        tail_kernel[ctegrow + 1:, ctegrow] = 1
    tail = signal.convolve2d(good, tail_kernel, boundary="symm", mode="same")
    return ~((grown >= grow**2) & (tail >= ctegrow))


def _write_crmask(image, sci_chip, crmask):
    from drizzlepac import util

    name = sci_chip.outputNames["crmaskImage"]
    if image.inmemory:
        image.saveVirtualOutputs({name: util.createFile(crmask, outfile=None, header=None)})
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(name)
    util.createFile(crmask, outfile=name, header=None)

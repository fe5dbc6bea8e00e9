# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
deepCR cosmic-ray flags in the DQ arrays of HST ``_flt``/``_flc`` files.

`flag_cosmic_rays` ORs ``crbit`` (default 4096, AstroDrizzle's ``crbit``)
into ``DQ,N`` at the cosmic rays deepCR finds in ``SCI,N``. Then drizzle
with plain ``AstroDrizzle(..., resetbits=0, median=False, blot=False,
driz_cr=False)``. ``resetbits=0`` matters: AstroDrizzle's default
``resetbits="4096"`` clears bit 4096 in every input DQ array at start-up
(``processInput.resetDQBits``), i.e. it erases the flags just written.
"""

import collections
import logging
import os
import warnings

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from ..detection import choose_model, detect
from ..dq import (
    DEFAULT_BITS,
    DEFAULT_FILL_BITS,
    bits_from_bad_bits,
    set_crbit,
)
from ..fitsutil import FitsUpdateError, check_updatable, update_fits
from ..provenance import record_run
from ..selection import header_telescope
from ..units import MissingGainError, electron_factor, gain_keywords, header_exptime, star_shape_readnoise
from ..validation import check_flag_options
from .inputs import parse_inputs

__all__ = ["flag_cosmic_rays", "check_input_files", "readout_direction"]

# drizzlepac's modules log through ``logging.getLogger(__name__)`` too; AstroDrizzle's trailer file is a
# handler on the root logger, so these records reach it whenever the step runs inside AstroDrizzle
log = logging.getLogger(__name__)
_UNSET = object()
#: What the checks of one file found, used when it is flagged: the model and why, and per ``SCI`` extver the
#: factor to the model's units and the read noise of the star-shape test (None when it is off).
_FilePlan = collections.namedtuple("_FilePlan", ["spec", "reason", "factors", "readnoise"])


def _deprecated(bits, resetbits, bad_bits, reset):
    """Map the 0.1.0 keywords ``bad_bits`` and ``reset`` onto ``bits`` and ``resetbits``, with a warning."""
    if bad_bits is not _UNSET:
        if bits is not _UNSET:
            raise TypeError("give bits (good DQ bits, drizzlepac's sense) or the deprecated bad_bits, not both")
        bits = bits_from_bad_bits(bad_bits)
        warnings.warn(f"bad_bits is deprecated: give bits, the DQ bits that count as good as in drizzlepac's "
                      f"final_bits; bad_bits={bad_bits!r} is bits={bits!r}", AstropyUserWarning)
    if reset is not _UNSET:
        if resetbits is not None:
            raise TypeError("give resetbits or the deprecated reset, not both")
        resetbits = None if reset else 0
        warnings.warn(f"reset is deprecated: give resetbits as for AstroDrizzle (reset={reset!r} is "
                      f"resetbits={resetbits!r})", AstropyUserWarning)
    return (DEFAULT_BITS if bits is _UNSET else bits), resetbits


def readout_direction(primary_header, extver):
    """The CTE trail direction along the columns of ``SCI,extver``: +1, -1 or 0 (unknown).

    The readout geometry of the HST CCDs, as AstroDrizzle uses it for
    ``driz_cr_ctegrow``: ACS/WFC and WFC3/UVIS read ``SCI,1`` towards
    smaller rows (-1) and ``SCI,2`` towards larger rows (+1); ACS/HRC reads
    through amplifier A or B (+1) or C or D (-1).
    """
    instrument = str(primary_header.get("INSTRUME", "")).strip().upper()
    detector = str(primary_header.get("DETECTOR", "")).strip().upper()
    if (instrument, detector) in (("ACS", "WFC"), ("WFC3", "UVIS")):
        return {1: -1, 2: 1}.get(int(extver), 0)
    if (instrument, detector) == ("ACS", "HRC"):
        amp = str(primary_header.get("CCDAMP", "")).strip().upper()[:1]
        return 1 if amp in ("A", "B") else -1 if amp in ("C", "D") else 0
    return 0


def flag_cosmic_rays(input, model=None, threshold=None, crbit=None, grow=1, resetbits=None,  # noqa: A002
                     bits=_UNSET, fill_bits=DEFAULT_FILL_BITS, device=None, lock_timeout=0.0, progress=None,
                     bad_bits=_UNSET, reset=_UNSET, precision=None, ctegrow=0, protect_saturated=True,
                     star_shape=False):
    """Flag deepCR cosmic rays in the DQ arrays of HST ``_flt``/``_flc`` files, in place.

    For every ``SCI,N`` of each file, deepCR-mask runs on the image in
    the model's units (electrons for the HST models) through the detection
    core (`astro_deepcr.detection.detect`: ``fill_bits`` pixels of ``DQ,N``
    filled first, saturated pixels protected), and ``crbit`` is OR-ed into
    ``DQ,N`` at the detected cosmic rays. Nothing else changes: other DQ
    bits (except ``resetbits``), SCI, ERR and the data of every extension
    stay as they were; the primary header and each flagged ``SCI,N`` header
    get the provenance keywords of `astro_deepcr.provenance.record_run`
    (``DCRSTEP = 'flag'``, ``DCRMODEL``, ``DCRWHY``, ``DCRTHRSH``,
    ``DCRPREC``, ``DCRNCR``, ``DCRBIT``, ``DCRGROW``, ``DCRVERS``; ``DCRNCR``
    counts the file in the primary header, the chip in ``SCI,N``) and one
    ``HISTORY`` card each (replacing those of an earlier run). Every file is
    checked (`check_input_files`) before the first one changes; then each is
    rewritten atomically under a lock (`astro_deepcr.fitsutil.update_fits`),
    so an interrupted run leaves it unchanged.

    Parameters
    ----------
    input : str, path-like or list
        Every form ``AstroDrizzle`` takes: a name, a list, a comma-separated
        string, a wildcard, an ``@file`` or an association table (see
        `~astro_deepcr.drizzle.parse_inputs`).
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional
        deepCR-mask model; default chosen per file from its primary header
        by `astro_deepcr.detection.choose_model` (recorded as ``DCRWHY``).
    threshold : float, optional
        Probability threshold in [0, 1]; default the model's.
    crbit : int, optional
        DQ bit for cosmic rays; default 4096, AstroDrizzle's ``crbit``. That
        is HST's convention: a file whose headers do not say HST
        (``TELESCOP``, or an HST ``INSTRUME``) gets an `AstropyUserWarning`
        unless ``crbit`` is given. 8192 (calacs) is refused.
    grow : int
        Side of the box the cosmic-ray mask is grown by, with
        ``driz_cr_grow``'s meaning: 1 (default) no growth, 3 a 3x3 box.
        Grown pixels that are bad (see ``bits``) are not flagged.
    ctegrow : int
        Length of the CTE tail each cosmic ray is grown by along the
        readout direction (`readout_direction`), as AstroDrizzle's
        ``driz_cr_ctegrow``; default 0.
    protect_saturated : bool or int
        The saturation protection of `astro_deepcr.bright` (default True: no
        flag within 3 px of a saturated pixel; an integer: within that many
        pixels; False: none).
    star_shape : bool
        Also flag what each chip's isolated stars' own shape cannot explain
        (`astro_deepcr.starshape`: cosmic rays on the stars of crowded,
        undersampled frames; off by default, docs/ground.rst, "The
        star-shape test"), with the read noise of the headers (``READNSE*``,
        ``RDNOISE``...; an error names the file where there is none).
    resetbits : int, str or None
        DQ bits cleared in every DQ array before flagging, as AstroDrizzle's
        ``resetbits``; default (None, or an empty string as in the ``.cfg``)
        ``crbit``, so a rerun replaces the flags of the previous one. 0
        keeps existing flags.
    bits : int, str or None
        DQ bits that count as *good*, in drizzlepac's sense (as
        ``final_bits``; parsed by `stsci.tools.bitmask.interpret_bit_flags`,
        ``"64,32"``, ``"64+32"``, ``"~4096"`` syntax). Pixels with any other
        DQ bit are never flagged (``crbit`` itself never counts). The
        default ``"4096,8192"`` leaves every pixel already flagged for
        another reason (hot, warm, saturated, bad column...) alone and keeps
        cosmic rays found by driz_cr (4096) or calacs (8192) as candidates;
        0: only pixels with DQ = 0 may be flagged; None: every pixel.
    fill_bits : int, str or None
        DQ bits of pixels whose values are not usable (default ``"1,2,4"``),
        listed as bad bits like astroscrappy's ``inmask``: filled from good
        neighbours before the network runs, never flagged, never used to
        fill others. Saturation is not in the default (see
        `~astro_deepcr.dq.DEFAULT_FILL_BITS`).
    device : str, optional
        Torch device (default ``astro_deepcr.conf.device``).
    precision : {"auto", "float32", "bfloat16", "float16"}, optional
        Network precision (default ``astro_deepcr.conf.precision``, ``"auto"``:
        bfloat16 where the hardware has it natively and the model passed its
        bf16 validation, else float32). The precision used is recorded in
        ``DCRPREC``.
    lock_timeout : float
        Seconds to wait when another process is updating the same file.
    progress : bool or None
        deepCR's tile progress bar (None: only for chips taking over a second).
    bad_bits, reset
        Deprecated (0.1.0 names): ``bad_bits`` listed the bits of pixels
        never flagged (the complement of ``bits``); ``reset=False`` is
        ``resetbits=0``. Each is translated with an `AstropyUserWarning`.

    Returns
    -------
    summary : `~astropy.table.Table`
        One row per chip: ``file``, ``extver``, ``model``, ``threshold``,
        ``n_cr`` (pixels flagged now), ``n_bad`` (pixels excluded by
        ``bits`` or ``fill_bits``), ``n_pixels``.

    Raises
    ------
    ValueError
        No input, unsupported BUNIT, missing DQ, bad ``crbit``/``grow``,
        malformed bit expression: before any file changes, naming every
        file that cannot be flagged (`check_input_files`).
    astro_deepcr.fitsutil.FitsUpdateError
        Files that are compressed or read-only (before any file changes), or
        a file locked by another process.

    Warns
    -----
    AstropyUserWarning
        A file not from HST flagged with the default ``crbit``; a model used
        outside its training domain (`astro_deepcr.detection.choose_model`).

    Examples
    --------
    >>> from astro_deepcr.drizzle import flag_cosmic_rays
    >>> from drizzlepac.astrodrizzle import AstroDrizzle  # doctest: +SKIP
    >>> flag_cosmic_rays("j8xi01010_asn.fits")  # doctest: +SKIP
    >>> AstroDrizzle("j8xi01010_asn.fits", resetbits=0, median=False, blot=False,
    ...              driz_cr=False)  # doctest: +SKIP
    """
    bits, resetbits = _deprecated(bits, resetbits, bad_bits, reset)
    default_crbit = crbit is None
    checked = check_flag_options(model=model, threshold=threshold, crbit=crbit, grow=grow, ctegrow=ctegrow,
                                 resetbits=resetbits, bits=bits, fill_bits=fill_bits, device=device,
                                 precision=precision, protect_saturated=protect_saturated, lock_timeout=lock_timeout,
                                 star_shape=star_shape)
    crbit, grow, ctegrow, reset_value = (checked[key] for key in ("crbit", "grow", "ctegrow", "reset_value"))
    names = parse_inputs(input)
    plans = check_input_files(names, model=model, star_shape=star_shape)
    settings = dict(threshold=threshold, crbit=crbit, default_crbit=default_crbit, grow=grow, ctegrow=ctegrow,
                    reset_value=reset_value, bits=bits, fill_bits=fill_bits, device=device, progress=progress,
                    precision=precision, protect_saturated=protect_saturated, star_shape=star_shape)
    rows = []
    for filename, plan in zip(names, plans, strict=True):
        with update_fits(filename, lock_timeout=lock_timeout) as hdul:
            rows.extend(_flag_file(filename, hdul, plan, settings))
    return Table(rows=rows, names=("file", "extver", "model", "threshold", "n_cr", "n_bad", "n_pixels"))


def check_input_files(names, model=None, star_shape=False):
    """Check every input before the first one changes: one error names every file that cannot be flagged.

    Each file must be a FITS file that can be rewritten in place
    (`astro_deepcr.fitsutil.check_updatable`) with a ``SCI`` extension
    holding data and, for each ``SCI,N``, a ``DQ,N`` of the same shape
    stored as integers; its units must convert to the model's
    (`astro_deepcr.units.electron_factor`), and with ``star_shape`` its
    headers must give a read noise. Only headers are read.

    Parameters
    ----------
    names : list of str
        The files (`~astro_deepcr.drizzle.parse_inputs`).
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional
        As for `flag_cosmic_rays` (None: chosen from each primary header).
    star_shape : bool
        Whether the star-shape test will run (it needs the read noise).

    Returns
    -------
    plans : list
        Per file, what flagging it uses: the model and why, and per chip
        the factor to the model's units and the read noise.

    Raises
    ------
    ValueError
        Naming every bad file and why. A single bad file raises its own
        error (`~astro_deepcr.fitsutil.FitsUpdateError` where it cannot be
        rewritten).
    astro_deepcr.fitsutil.FitsUpdateError
        Every bad file is one that cannot be rewritten (read-only,
        compressed...).
    """
    plans, problems = [], []
    for name in names:
        try:
            plans.append(_check_file(name, model, star_shape))
        except (OSError, ValueError, TypeError, KeyError, Warning) as exc:  # Warning: one a caller made an error
            problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        kind = FitsUpdateError if all(isinstance(exc, FitsUpdateError) for exc in problems) else ValueError
        reasons = "; ".join(" ".join(str(exc).split()) for exc in problems)
        raise kind(f"{len(problems)} of {len(names)} input files cannot be flagged, so none was changed: {reasons}")
    return plans


def _check_file(name, model, star_shape):
    """The checks of `check_input_files` on one file; its `_FilePlan`."""
    check_updatable(name)
    with fits.open(name) as hdul:  # lazily: headers only
        primary = hdul[0].header
        spec, reason = choose_model(primary, model)
        sci_hdus = [hdu for hdu in hdul if hdu.name == "SCI" and hdu.header.get("NAXIS", 0)]
        if not sci_hdus:
            raise ValueError(f"{name} has no SCI extension with data")
        factors, readnoise = {}, {}
        for sci in sci_hdus:
            where = f"{name}[SCI,{sci.ver}]"
            _check_dq_header(_dq_hdu(hdul, sci, name), name)
            factors[sci.ver] = _unit_factor(sci.header, primary, spec, where)
            readnoise[sci.ver] = star_shape_readnoise(sci.header, primary, where) if star_shape else None
    return _FilePlan(spec, reason, factors, readnoise)


def _unit_factor(header, primary, spec, where):
    """`electron_factor`, with advice for this door: it has no gain parameter, so name the keywords to add."""
    try:
        return electron_factor(header, primary, spec.units, gain=None)
    except MissingGainError:
        bunit = header.get("BUNIT", primary.get("BUNIT"))
        unit = f"BUNIT {bunit!r}" if bunit is not None else "no BUNIT (read as ADU)"
        units = {"electron": "electrons", "adu": "ADU"}.get(spec.units, spec.units)
        or_bunit = ", or BUNIT = 'ELECTRONS' if the data are electrons" if spec.units == "electron" else ""
        raise ValueError(f"{where}: {unit}: model {spec.name} works in {units}, so the data need a gain, and "
                         f"neither the SCI nor the primary header has one: add one of {gain_keywords()} "
                         f"(electrons per ADU){or_bunit}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _flag_file(filename, hdul, plan, settings):
    """Flag every chip of one open file; record the run in its headers. Returns the summary rows."""
    primary = hdul[0].header
    spec, reason = plan.spec, plan.reason
    crbit, grow = settings["crbit"], settings["grow"]
    if settings["default_crbit"]:
        _warn_unless_hst(filename, primary, crbit)
    sci_hdus = [hdu for hdu in hdul if hdu.name == "SCI" and hdu.data is not None]
    rows, found = [], None
    for sci in sci_hdus:
        dq = _dq_hdu(hdul, sci, filename)
        dq_values = _dq_values(dq, filename)
        found = detect(_scaled(sci) * plan.factors[sci.ver], spec=spec, reason=reason,
                       threshold=settings["threshold"], dq=dq_values, bits=settings["bits"],
                       fill_bits=settings["fill_bits"], crbit=crbit, grow=grow, ctegrow=settings["ctegrow"],
                       cte_dir=readout_direction(primary, sci.ver), protect_saturated=settings["protect_saturated"],
                       exptime=header_exptime(sci.header, primary),
                       device=settings["device"], precision=settings["precision"], progress=settings["progress"],
                       star_shape=settings["star_shape"], readnoise=plan.readnoise[sci.ver])
        _store_dq(dq, set_crbit(dq_values, found.cr_mask, crbit, settings["reset_value"]))
        rows.append((filename, sci.ver, spec.name, found.threshold, found.n_cr, int(found.bad.sum()),
                     found.cr_mask.size))
        record_run(sci.header, "flag", history=f"CRs in DQ,{sci.ver} bit {crbit} (DCR* keys)",
                   **_provenance(found, crbit, grow))
        log.info(f"{os.path.basename(filename)}[SCI,{sci.ver}]: {found.n_cr} cosmic-ray pixels flagged with DQ bit "
                 f"{crbit} (deepCR model {spec.name}, threshold {found.threshold:g})")
    record_run(primary, "flag", history=f"CRs in DQ bit {crbit} (DCR* keys)",
               **dict(_provenance(found, crbit, grow), n_cr=sum(row[4] for row in rows)))
    return rows


def _provenance(found, crbit, grow):
    return dict(found.provenance, crbit=crbit, grow=grow, n_cr=found.n_cr)


def _warn_unless_hst(filename, primary, crbit):
    """The default crbit is HST's DQ convention: another telescope's DQ may mean something else by that bit."""
    telescope = header_telescope(primary)
    if telescope == "HST":
        return
    which = f"is {telescope}" if telescope else "is unknown (no TELESCOP, no HST INSTRUME)"
    warnings.warn(f"{filename}: the cosmic-ray bit {crbit} is HST's DQ convention (AstroDrizzle's crbit) and the "
                  f"telescope {which}: check what DQ bit {crbit} means for this file, or give crbit explicitly",
                  AstropyUserWarning)


def _dq_hdu(hdul, sci, filename):
    """``DQ,N`` of ``SCI,N``, with the shape of its header (no data read)."""
    try:
        dq = hdul["DQ", sci.ver]
    except KeyError:
        raise ValueError(f"{filename} has SCI,{sci.ver} but no DQ,{sci.ver}") from None
    if not dq.header.get("NAXIS", 0) or dq.shape != sci.shape:
        raise ValueError(f"{filename}: DQ,{sci.ver} is missing or its shape differs from SCI,{sci.ver}")
    return dq


def _scaled(hdu):
    """Physical values of an HDU read with ``do_not_scale_image_data=True``."""
    data = hdu.data
    bscale, bzero = hdu.header.get("BSCALE", 1), hdu.header.get("BZERO", 0)
    if bscale != 1 or bzero != 0:
        return data.astype(np.float64) * bscale + bzero
    return data


def _check_dq_header(hdu, filename):
    """What `_dq_values` needs, read from the header: integers, unscaled or unsigned through ``BZERO=32768``."""
    bitpix, bscale, bzero = hdu.header.get("BITPIX"), hdu.header.get("BSCALE", 1), hdu.header.get("BZERO", 0)
    if bitpix not in (8, 16, 32, 64) or bscale != 1 or bzero not in (0, 32768):
        raise ValueError(f"{filename} {hdu.name},{hdu.ver}: DQ must be integer (optionally uint16 via "
                         f"BZERO=32768), not BITPIX={bitpix} with BSCALE={bscale} BZERO={bzero}")


def _dq_values(hdu, filename):
    """DQ values as int64 from raw (``do_not_scale_image_data``) data, ``BZERO`` added (`_check_dq_header`'s rule)."""
    _check_dq_header(hdu, filename)
    return hdu.data.astype(np.int64) + hdu.header.get("BZERO", 0)


def _store_dq(hdu, values):
    """Write DQ values back as the stored (raw) ones.

    The bits are changed on the values, never on the raw array: a uint16 DQ
    stored with ``BZERO=32768`` holds ``value - 32768``, whose bit 15 is the
    value's inverted, so clearing or setting 32768 there changed every pixel.
    """
    hdu.data[...] = values - hdu.header.get("BZERO", 0)

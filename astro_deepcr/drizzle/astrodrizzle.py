# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
AstroDrizzle with deepCR cosmic-ray masks in place of median, blot and driz_cr.

A drop-in for ``drizzlepac.astrodrizzle.AstroDrizzle`` (same signature,
``configobj`` path / ``"defaults"`` / object, ``mdriztab``, ``editpars``,
every parameter) that runs drizzlepac's own steps in their order
(initialisation, static mask, sky, separate drizzle, final drizzle) but
replaces median + blot + driz_cr by deepCR. The masks are written as
drizzlepac's own ``<rootname>_sci<N>_crmask.fits`` files (uint8, 1 = good,
0 = CR), which the final drizzle merges into its weights and propagates into
the input DQ arrays as ``crbit`` (``adrizzle.updateInputDQArray``), exactly
as it does for driz_cr's masks. It works for a single exposure.

This module is also a TEAL task (``__taskname__``, `run`, and
``pars/astro_deepcr.drizzle.astrodrizzle.cfg`` + ``.cfgspc``): the deepCR
options live in the ``[DEEPCR: COSMIC-RAY MASKS]`` section of its ``.cfg``.

drizzlepac has no plug-in mechanism; `run` therefore reproduces
``drizzlepac.astrodrizzle.run`` with step 6 swapped, and reads attributes
of drizzlepac's image objects that are not public API (``_image``,
``_numchips``, ``_conversionFactor``, ``outputNames``). It is tested with
the drizzlepac versions in `SUPPORTED_DRIZZLEPAC` and refuses others
(`check_drizzlepac_version`).
"""

import contextlib
import difflib
import logging
import os
import sys
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from .config import (
    ASTRODRIZZLE_TASK,
    DEEPCR_OPTIONS,
    DEEPCR_SECTION,
    astrodrizzle_parameter_names,
    load_astrodrizzle_config,
)
from .detect import (
    DEFAULT_BITS,
    DEFAULT_FILL_BITS,
    bits_from_bad_bits,
    check_crbit,
    chip_cr_mask,
    flagged_pixels,
    grow_like_driz_cr,
    interpret_bits,
    select_model,
)

__all__ = ["SUPPORTED_DRIZZLEPAC", "astrodrizzle", "run", "check_drizzlepac_version", "log_on_console"]

__taskname__ = ASTRODRIZZLE_TASK
#: drizzlepac versions whose ``astrodrizzle.run`` `run` reproduces and that the tests ran against
#: (``>= first, < last``); also the ``install_requires`` range in setup.cfg.
SUPPORTED_DRIZZLEPAC = ("3.11", "3.12")
_CR_STEPS_REPLACED = ("median", "blot", "driz_cr")
_DEEPCR_STEP = "deepCR"
log = logging.getLogger(__name__)


def check_drizzlepac_version(version=None):
    """Raise `RuntimeError` unless drizzlepac's version is in `SUPPORTED_DRIZZLEPAC`.

    Parameters
    ----------
    version : str, optional
        Default: the installed ``drizzlepac.__version__``.
    """
    from packaging.version import Version

    if version is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import drizzlepac
        version = drizzlepac.__version__
    low, high = SUPPORTED_DRIZZLEPAC
    if not Version(low) <= Version(Version(version).base_version) < Version(high):
        raise RuntimeError(
            f"astro_deepcr's astrodrizzle reproduces drizzlepac.astrodrizzle.run of drizzlepac >={low},<{high}; "
            f"drizzlepac {version} is installed. Install a supported drizzlepac, or flag the DQ arrays with "
            "flag_cosmic_rays and run drizzlepac's own AstroDrizzle (resetbits=0, median/blot/driz_cr off)")
    return version


@contextlib.contextmanager
def log_on_console(show=True, prefix=""):
    """Also show this package's drizzle log (model, per-chip CR counts) on stderr, e.g. for the CLI.

    AstroDrizzle sends log records only to its trailer file and replaces
    ``sys.stderr`` while it runs; the handler here is bound to the real
    stderr before that.
    """
    if not show:
        yield
        return
    logger = logging.getLogger("astro_deepcr.drizzle")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prefix}%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _validate_names(params):
    known = astrodrizzle_parameter_names() | set(DEEPCR_OPTIONS)
    unknown = sorted(set(params) - known)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"unknown AstroDrizzle parameter(s): {', '.join(hints)}")


def astrodrizzle(input=None, mdriztab=False, editpars=False, configobj=None, wcsmap=None,  # noqa: A002
                 **input_dict):
    """AstroDrizzle with deepCR cosmic-ray masks in place of median / blot / driz_cr.

    Same call as ``drizzlepac.astrodrizzle.AstroDrizzle``; change the
    function name and nothing else.

    Parameters
    ----------
    input : str or list
        Inputs as ``AstroDrizzle`` takes them (name, list, comma string,
        wildcard, ``@file``, association table). May be left out when
        ``configobj`` names them.
    mdriztab : bool
        Read step parameters from the exposures' ``MDRIZTAB`` reference file,
        as ``AstroDrizzle`` does (median, blot and driz_cr stay replaced).
    editpars : bool
        Accepted for compatibility; as in drizzlepac 3.11, no GUI opens.
    configobj : None, "defaults", str or ConfigObj
        None or ``"defaults"``: the defaults of this task (drizzlepac's
        ``astrodrizzle`` defaults plus the deepCR section). A ``.cfg`` path
        of this task or of drizzlepac's ``astrodrizzle``, or a loaded one
        (see `~astro_deepcr.drizzle.load_astrodrizzle_config`).
    wcsmap : optional
        As for ``AstroDrizzle``.
    **input_dict
        Any ``AstroDrizzle`` parameter (``output``, ``final_bits``,
        ``num_cores``, ``final_wcs``, ``crbit``, ``resetbits``...), and the
        deepCR options of the ``[DEEPCR: COSMIC-RAY MASKS]`` section:

        ``cr_method`` : {"deepcr", "driz_cr"}
            ``"driz_cr"`` runs drizzlepac's ``astrodrizzle.run`` unchanged.
        ``model``, ``threshold``, ``bits``, ``fill_bits``, ``device``, ``precision``
            As in `~astro_deepcr.drizzle.flag_cosmic_rays`; ``bits`` are the
            DQ bits that count as good (default ``"4096,8192"``).

        Unknown names raise `ValueError` with the closest known name
        (``AstroDrizzle`` itself only logs them and returns None). With
        ``cr_method="deepcr"``: ``median``, ``blot`` and ``driz_cr`` are
        off (a warning if asked for), ``driz_separate`` is off unless
        given, ``driz_cr_grow`` / ``driz_cr_ctegrow`` grow the deepCR masks
        as they grow driz_cr's, and ``driz_cr_corr=True`` writes
        ``<rootname>_crclean.fits`` with the cosmic rays inpainted and
        DQ = ``crbit`` at them. ``bad_bits`` (0.1.0) is translated to
        ``bits`` with a deprecation warning.

    Raises
    ------
    ValueError
        Unknown parameter, missing ``.cfg``, no valid input.
    RuntimeError
        ``cr_method="deepcr"`` with a drizzlepac outside `SUPPORTED_DRIZZLEPAC`.

    Examples
    --------
    >>> from astro_deepcr.drizzle import astrodrizzle
    >>> astrodrizzle("j8xi01010_asn.fits", output="f606w", final_bits="64,32")  # doctest: +SKIP
    >>> astrodrizzle(configobj="my_deepcr.cfg")  # doctest: +SKIP
    """
    input_dict = dict(input_dict)
    if "bad_bits" in input_dict:
        bad_bits = input_dict.pop("bad_bits")
        if "bits" in input_dict:
            raise TypeError("give bits (good DQ bits, drizzlepac's sense) or the deprecated bad_bits, not both")
        input_dict["bits"] = bits_from_bad_bits(bad_bits)
        warnings.warn(f"bad_bits is deprecated: give bits, the DQ bits that count as good as in drizzlepac's "
                      f"final_bits; bad_bits={bad_bits!r} is bits={input_dict['bits']!r}", AstropyUserWarning)
    _validate_names(input_dict)
    for name in ("bits", "fill_bits"):
        if name in input_dict:
            interpret_bits(input_dict[name], name)
    util = _drizzlepac_util()
    config = load_astrodrizzle_config(configobj)
    if input is not None and not util.is_blank(input):
        input_dict["input"] = input
    elif configobj is None:
        raise TypeError("astrodrizzle() needs either 'input' or 'configobj' arguments")
    if "updatewcs" in input_dict:
        config["updatewcs"] = input_dict.pop("updatewcs")
    cr_method = input_dict.get("cr_method", config[DEEPCR_SECTION]["cr_method"])
    if cr_method not in ("deepcr", "driz_cr"):
        raise ValueError(f"cr_method must be 'deepcr' or 'driz_cr', not {cr_method!r}")
    if cr_method == "deepcr":
        for key in _CR_STEPS_REPLACED:
            if input_dict.get(key):
                warnings.warn(f"{key}=True ignored: deepCR replaces median, blot and driz_cr", AstropyUserWarning)
            input_dict[key] = False
        input_dict.setdefault("driz_separate", False)
    config = util.getDefaultConfigObj(ASTRODRIZZLE_TASK, config, input_dict, loadOnly=not editpars)
    util.applyUserPars_steps(config, input_dict, step="3a")
    util.applyUserPars_steps(config, input_dict, step="7a")
    config["mdriztab"] = mdriztab
    return run(config, wcsmap=wcsmap, input_dict=input_dict)


def _drizzlepac_util():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from drizzlepac import util
    return util


def _options(config):
    """The deepCR section of a configuration, with empty strings read as None."""
    section = dict(config[DEEPCR_SECTION])
    for key in ("model", "device", "precision"):
        if isinstance(section.get(key), str) and not section[key].strip():
            section[key] = None
    for key in ("bits", "fill_bits"):
        if isinstance(section.get(key), str) and not section[key].strip():
            section[key] = None
        interpret_bits(section.get(key), key)
    return section


def run(configobj, wcsmap=None, input_dict=None):
    """Run the task on a loaded configuration (TEAL's entry point).

    Parameters
    ----------
    configobj : ConfigObj
        A configuration of this task (`~astro_deepcr.drizzle.load_astrodrizzle_config`).
    wcsmap, input_dict :
        As for ``drizzlepac.astrodrizzle.run``.
    """
    options = _options(configobj)
    input_dict = {} if input_dict is None else input_dict  # drizzlepac's setCommonInput iterates over it
    if options["cr_method"] == "driz_cr":
        if {key: options[key] for key in ("model", "threshold", "bits", "fill_bits", "device", "precision")} != {
                "model": None, "threshold": None, "bits": DEFAULT_BITS, "fill_bits": DEFAULT_FILL_BITS, "device": None,
                "precision": None}:
            warnings.warn("model/threshold/bits/fill_bits/device/precision are deepCR settings; ignored with "
                          "cr_method='driz_cr'", AstropyUserWarning)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from drizzlepac import astrodrizzle as drizzlepac_astrodrizzle
        classic = configobj.copy() if hasattr(configobj, "copy") else configobj
        del classic[DEEPCR_SECTION]
        classic["_task_name_"] = "astrodrizzle"
        input_dict = {key: value for key, value in (input_dict or {}).items() if key not in DEEPCR_OPTIONS}
        return drizzlepac_astrodrizzle.run(classic, wcsmap=wcsmap, input_dict=input_dict)
    check_drizzlepac_version()
    for key in _CR_STEPS_REPLACED:
        _set_step_switch(configobj, key, False)
    return _run_with_logging(configobj, wcsmap=wcsmap, input_dict=input_dict, options=options)


def _set_step_switch(configobj, key, value):
    for section in configobj.values():
        if hasattr(section, "items") and key in section:
            section[key] = value


def _run_with_logging(configobj, wcsmap=None, input_dict=None, options=None):
    """Run `_deepcr_drizzle_steps` under drizzlepac's own logging (trailer file, log format)."""
    from .. import deepcr  # noqa: F401  (import torch before drizzlepac redirects stdout/stderr)

    util = _drizzlepac_util()
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
        for key in _CR_STEPS_REPLACED:  # MDRIZTAB values (mdriztab=True) may have switched them back on
            _set_step_switch(configobj, key, False)
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


def _deepcr_step(image_list, configobj, options, proc_steps):
    """Write deepCR masks as drizzlepac ``_crmask`` files (and ``_crclean`` files if asked)."""
    from drizzlepac import drizCR, util

    from ..deepcr import DeepCR

    proc_steps.addStep(_DEEPCR_STEP)
    section = configobj[util.getSectionName(configobj, drizCR.STEP_NUM)]
    crbit = check_crbit(configobj["crbit"])
    grow, ctegrow = int(section["driz_cr_grow"]), int(section["driz_cr_ctegrow"])
    log.info("USER INPUT PARAMETERS for deepCR Step (in place of median, blot and driz_cr):")
    for key, value in (("model", options["model"] or "from headers"),
                       ("threshold", "model default" if options["threshold"] is None else options["threshold"]),
                       ("bits", options["bits"]), ("fill_bits", options["fill_bits"]),
                       ("crbit", crbit), ("driz_cr_grow", grow), ("driz_cr_ctegrow", ctegrow),
                       ("driz_cr_corr", section["driz_cr_corr"])):
        log.info(f"    {key:<15}: {value}")
    for image in image_list:
        spec, reason = select_model(image._image[0].header, options["model"])
        detector = DeepCR(mask=spec, device=options["device"], precision=options["precision"], progress=False)
        threshold = detector.threshold if options["threshold"] is None else float(options["threshold"])
        log.info(f"deepCR model {spec.name} for {image._filename} ({reason}), threshold {threshold:g}, "
                 f"precision {detector.precision_used}")
        corrections = []
        for chip in range(1, image._numchips + 1):
            sci_chip = image._image[image.scienceExt, chip]
            if not sci_chip.group_member:
                continue
            cr_mask, bad, electrons, fill = _chip_mask(image, chip, sci_chip, detector, threshold, options, crbit)
            # grown like driz_cr's masks, but pixels outside ``bits`` are never flagged (as by flag_cosmic_rays)
            cr_mask = grow_like_driz_cr(cr_mask, grow, ctegrow, sci_chip.cte_dir) & ~bad
            log.info(f"deepCR ({spec.name}): {int(cr_mask.sum())} cosmic-ray pixels in "
                     f"{image._filename}[{image.scienceExt},{chip}]")
            _write_crmask(image, sci_chip, (~cr_mask).astype(np.uint8))
            if section["driz_cr_corr"]:
                corrections.append(_correction(image, chip, sci_chip, detector, electrons, cr_mask, fill, crbit))
        if corrections:
            drizCR.createCorrFile(image.outputNames["crcorImage"], corrections, image._filename)
    proc_steps.endStep(_DEEPCR_STEP)


def _chip_mask(image, chip, sci_chip, detector, threshold, options, crbit):
    """deepCR mask of one chip of a drizzlepac image object: ``(cr_mask, bad, electrons, fill)``."""
    electrons = np.asarray(image.getData(f"{image.scienceExt},{chip}"), dtype=np.float64)
    electrons = electrons * sci_chip._conversionFactor
    dq = np.asarray(image.getData(f"{image.maskExt},{chip}")).astype(np.int64)
    cr_mask, bad = chip_cr_mask(detector, detector.mask_spec, electrons, dq, options["bits"], options["fill_bits"],
                                crbit, threshold)
    return cr_mask, bad, electrons, flagged_pixels(dq, options["fill_bits"], crbit)


def _correction(image, chip, sci_chip, detector, electrons, cr_mask, fill, crbit):
    """One chip of driz_cr_corr's ``_crclean`` file: CR pixels inpainted, DQ = crbit there."""
    from stsci.tools import fileutil

    cleaned = detector.inpaint(electrons, cr_mask, inmask=fill)
    return {
        "sciext": ("SCI", chip) if image.scienceExt.upper() == "SCI" else (image.scienceExt, chip),
        "corrFile": (cleaned / sci_chip._conversionFactor).astype(np.float32),
        "dqext": fileutil.parseExtn(f"{sci_chip.dq_extn.split(',')[0]},{chip}"),
        "dqMask": np.where(cr_mask, crbit, 0).astype(np.uint16),
    }


def _write_crmask(image, sci_chip, crmask):
    from drizzlepac import util

    name = sci_chip.outputNames["crmaskImage"]
    if image.inmemory:
        image.saveVirtualOutputs({name: util.createFile(crmask, outfile=None, header=None)})
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(name)
    util.createFile(crmask, outfile=name, header=None)

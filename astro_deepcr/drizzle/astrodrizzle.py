# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
AstroDrizzle with deepCR cosmic-ray flags in place of median, blot and driz_cr.

A drop-in for ``drizzlepac.astrodrizzle.AstroDrizzle`` (same signature,
``configobj`` path / ``"defaults"`` / object, ``mdriztab``, ``editpars``,
every parameter) built on drizzlepac's public seam, the one STScI's own
pipeline uses for pixels already flagged as cosmic rays:

1. the run's parameters are read (``.cfg``, ``MDRIZTAB`` row, keywords) and
   checked before any file changes: ``final_bits`` / ``driz_sep_bits`` must
   not count ``crbit`` as good;
2. the inputs are archived as ``[STATE OF INPUT FILES]`` asks (before they
   change), and stale ``<rootname>_sci<N>_crmask.fits`` files of the inputs
   are removed (AstroDrizzle's final drizzle would merge them);
3. `~astro_deepcr.drizzle.flag_cosmic_rays` clears ``resetbits`` and ORs
   ``crbit`` into the DQ arrays at the cosmic rays (``driz_cr_grow``,
   ``driz_cr_ctegrow`` and the deepCR section's options); with
   ``driz_cr_corr`` a ``<rootname>_crclean.fits`` is written;
4. ``drizzlepac.astrodrizzle.AstroDrizzle`` runs with ``resetbits=0`` and
   ``median``, ``blot`` and ``driz_cr`` off, every other parameter as given.

The deepCR lines (model, per-chip counts) go to AstroDrizzle's trailer file:
the whole run is wrapped in drizzlepac's ``util.with_logging``, under which
AstroDrizzle logs to the same file. No drizzlepac internals are used.

This module is also a TEAL task (``__taskname__``, `run`, and
``pars/astro_deepcr.drizzle.astrodrizzle.cfg`` + ``.cfgspc``): the deepCR
options live in the ``[DEEPCR: COSMIC-RAY MASKS]`` section of its ``.cfg``.
drizzlepac is an optional dependency (``pip install "astro_deepcr[drizzle]"``),
imported only when a drizzle runs.
"""

import contextlib
import difflib
import logging
import os
import sys
import warnings

from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from .config import (
    ASTRODRIZZLE_TASK,
    DEEPCR_OPTIONS,
    DEEPCR_SECTION,
    astrodrizzle_parameter_names,
    check_values,
    drizzlepac_config,
    effective_config,
    load_astrodrizzle_config,
)
from .crclean import write_crclean
from .inputs import archive_inputs, crmask_names, parse_inputs

__all__ = ["astrodrizzle", "run", "log_on_console", "check_cr_bit_not_good"]

__taskname__ = ASTRODRIZZLE_TASK
DRIZZLEPAC_MISSING = ('astro_deepcr.drizzle.astrodrizzle needs drizzlepac, an optional dependency: '
                      'pip install "astro_deepcr[drizzle]" (flag_cosmic_rays works without it)')
_CR_STEPS_REPLACED = ("median", "blot", "driz_cr")
#: What AstroDrizzle is always given with cr_method="deepcr": the flags are in DQ already (keep them),
#: drizzlepac's CR steps are off, and the inputs were archived before they were flagged.
_SEAM = {"resetbits": 0, "median": False, "blot": False, "driz_cr": False,
         "preserve": False, "overwrite": False, "restore": False}
log = logging.getLogger(__name__)


def _import_drizzlepac(module="astrodrizzle"):
    """A drizzlepac module, imported on first use; `ImportError` naming the extra when it is missing."""
    import importlib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its dependencies warn on import (pyparsing, stwcs...)
            return importlib.import_module(f"drizzlepac.{module}")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] != "drizzlepac":
            raise
        raise ImportError(DRIZZLEPAC_MISSING) from exc


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


def check_cr_bit_not_good(name, bits, crbit):
    """Refuse a good-bits expression (``final_bits``, ``driz_sep_bits``) that counts ``crbit`` as good.

    Parsed with `stsci.tools.bitmask.interpret_bit_flags`, as drizzlepac
    parses them: ``"4096,16"`` and ``"~16"`` count 4096 as good, so does
    ``None`` / ``""`` (every bit good); ``"~4096"`` and ``0`` do not.

    Raises
    ------
    ValueError
        Naming the parameter and the fix.
    """
    from stsci.tools.bitmask import interpret_bit_flags

    try:
        good = interpret_bit_flags(bits)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={bits!r} is not a DQ bit expression: {exc}") from None
    if good is None:
        raise ValueError(f"{name}={bits!r} treats every DQ bit as good, DQ bit {crbit} (crbit, the cosmic rays "
                         f"deepCR flags) included: every flagged cosmic ray would be drizzled back in; give the "
                         f"good bits without {crbit} (e.g. {name}=0)")
    if int(good) & int(crbit):
        raise ValueError(f"{name}={bits!r} treats DQ bit {crbit} (crbit, the cosmic rays deepCR flags) as good: "
                         f"every flagged cosmic ray would be drizzled back in; remove {crbit}")


def astrodrizzle(input=None, mdriztab=False, editpars=False, configobj=None, wcsmap=None,  # noqa: A002
                 **input_dict):
    """AstroDrizzle with deepCR cosmic-ray flags in place of median / blot / driz_cr.

    Same call as ``drizzlepac.astrodrizzle.AstroDrizzle``; change the
    function name and nothing else. Needs drizzlepac
    (``pip install "astro_deepcr[drizzle]"``).

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
        Passed to ``AstroDrizzle`` (drizzlepac 3.11 opens no GUI).
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
            ``"driz_cr"`` runs drizzlepac's ``AstroDrizzle`` unchanged.
        ``model``, ``threshold``, ``bits``, ``fill_bits``, ``device``, ``precision``, ``star_shape``
            As in `~astro_deepcr.drizzle.flag_cosmic_rays`; ``bits`` are the
            DQ bits that count as good (default ``"4096,8192"``);
            ``star_shape=True`` adds the star-shape test (off by default;
            the read noise from each exposure's headers, docs/ground.rst).

        Unknown names raise `ValueError` with the closest known name
        (``AstroDrizzle`` itself only logs them and returns None). With
        ``cr_method="deepcr"``: the DQ arrays get ``crbit`` at the cosmic
        rays (after ``resetbits`` are cleared) before AstroDrizzle runs with
        ``resetbits=0`` and ``median``, ``blot`` and ``driz_cr`` off (a
        warning if asked for); ``driz_separate`` is off unless given;
        ``driz_cr_grow`` / ``driz_cr_ctegrow`` grow the deepCR masks as they
        grow driz_cr's; ``driz_cr_corr=True`` writes
        ``<rootname>_crclean.fits`` with the cosmic rays inpainted and DQ =
        ``crbit`` at them. ``bad_bits`` (0.1.0) is translated to ``bits``
        with a deprecation warning.

    Raises
    ------
    ValueError
        Unknown parameter, missing ``.cfg``, no valid input, a
        ``final_bits`` / ``driz_sep_bits`` that counts ``crbit`` as good
        (before any file changes).
    ImportError
        drizzlepac is not installed.

    Examples
    --------
    >>> from astro_deepcr.drizzle import astrodrizzle
    >>> astrodrizzle("j8xi01010_asn.fits", output="f606w", final_bits="64,32")  # doctest: +SKIP
    >>> astrodrizzle(configobj="my_deepcr.cfg")  # doctest: +SKIP
    """
    from ..dq import bits_from_bad_bits, interpret_bits

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
    config = load_astrodrizzle_config(configobj)
    if input is not None and not (isinstance(input, str) and not input.strip()):
        input_dict["input"] = input
    elif configobj is None:
        raise TypeError("astrodrizzle() needs either 'input' or 'configobj' arguments")
    cr_method = input_dict.get("cr_method", config[DEEPCR_SECTION]["cr_method"])
    if cr_method == "deepcr":
        for key in _CR_STEPS_REPLACED:
            if input_dict.get(key):
                warnings.warn(f"{key}=True ignored: deepCR replaces median, blot and driz_cr", AstropyUserWarning)
            input_dict.pop(key, None)
        input_dict.setdefault("driz_separate", False)
    return _run(config, input_dict, mdriztab=mdriztab, editpars=editpars, wcsmap=wcsmap)


def run(configobj, wcsmap=None, input_dict=None):
    """Run the task on a loaded configuration (TEAL's entry point).

    Parameters
    ----------
    configobj : ConfigObj
        A configuration of this task (`~astro_deepcr.drizzle.load_astrodrizzle_config`);
        a ``mdriztab`` entry set to True reads the ``MDRIZTAB`` as ``AstroDrizzle`` does.
    wcsmap, input_dict :
        As for ``drizzlepac.astrodrizzle.run``.
    """
    mdriztab = bool(configobj.get("mdriztab", False))
    return _run(configobj, dict(input_dict or {}), mdriztab=mdriztab, editpars=False, wcsmap=wcsmap)


def _options(config):
    """The deepCR section of a configuration, with empty strings read as None."""
    from ..dq import interpret_bits

    section = dict(config[DEEPCR_SECTION])
    for key in ("model", "device", "precision", "bits", "fill_bits"):
        if isinstance(section.get(key), str) and not section[key].strip():
            section[key] = None
    for key in ("bits", "fill_bits"):
        interpret_bits(section.get(key), key)
    if section["cr_method"] not in ("deepcr", "driz_cr"):
        raise ValueError(f"cr_method must be 'deepcr' or 'driz_cr', not {section['cr_method']!r}")
    return section


def _mdriztab_values(config, input_dict):
    """The ``MDRIZTAB`` row AstroDrizzle will apply (drizzlepac's public reader), to know the run's values."""
    mdzhandler = _import_drizzlepac("mdzhandler")
    files = parse_inputs(input_dict.get("input", config["input"]))
    return mdzhandler.getMdriztabParameters(files)


def _run(config, input_dict, mdriztab=False, editpars=False, wcsmap=None):
    """Check, flag, drizzle: the body of `astrodrizzle` and `run`."""
    from ..dq import DEFAULT_BITS, DEFAULT_FILL_BITS

    deepcr_options = {key: input_dict.pop(key) for key in DEEPCR_OPTIONS if key in input_dict}
    _options(effective_config(config, deepcr_options))  # a bad deepCR option fails with or without drizzlepac
    astrodrizzle_module = _import_drizzlepac("astrodrizzle")
    table = _mdriztab_values(config, input_dict) if mdriztab else {}
    merged = check_values(effective_config(config, table, deepcr_options, input_dict))
    options = _options(merged)
    drizzle_config = drizzlepac_config(config)
    if options["cr_method"] == "driz_cr":
        if {key: options[key] for key in DEEPCR_OPTIONS if key != "cr_method"} != {
                "model": None, "threshold": None, "bits": DEFAULT_BITS, "fill_bits": DEFAULT_FILL_BITS, "device": None,
                "precision": None, "star_shape": False}:
            warnings.warn("model/threshold/bits/fill_bits/device/precision/star_shape are deepCR settings; ignored "
                          "with cr_method='driz_cr'", AstropyUserWarning)
        if _section_value(merged, "driz_cr"):
            _check_bits(merged)
        return astrodrizzle_module.AstroDrizzle(configobj=drizzle_config, mdriztab=mdriztab, editpars=editpars,
                                                wcsmap=wcsmap, **input_dict)
    settings = _flag_settings(merged, options)  # every check, before any file changes
    names = parse_inputs(merged["input"])
    _check_input_files(names, settings)
    drizzle_pars = {key: value for key, value in input_dict.items() if key not in _CR_STEPS_REPLACED}
    drizzle_pars.update(_SEAM)
    util = _import_drizzlepac("util")
    _import_runtime(settings["device"])

    excepthook = sys.excepthook
    try:
        return util.with_logging(_flag_then_drizzle)(
            merged, names=names, settings=settings, astrodrizzle_module=astrodrizzle_module,
            drizzle_config=drizzle_config, drizzle_pars=drizzle_pars, mdriztab=mdriztab, editpars=editpars,
            wcsmap=wcsmap)
    finally:
        # stsci.tools' teardown_global_logging ends with ``del sys.excepthook``, which can leave none at all
        if getattr(sys, "excepthook", None) is None:
            sys.excepthook = excepthook


def _section_value(config, key):
    for value in config.values():
        if hasattr(value, "items") and key in value:
            return value[key]
    return config[key]


def _check_bits(config):
    from ..dq import check_crbit

    crbit = check_crbit(config["crbit"])
    for name in ("final_bits", "driz_sep_bits"):
        check_cr_bit_not_good(name, _section_value(config, name), crbit)
    return crbit


def _flag_settings(config, options):
    """The keyword arguments of `flag_cosmic_rays` for this run; every parameter checked."""
    from ..dq import check_grow
    from ..validation import check_flag_options

    crbit = _check_bits(config)
    # None or "" (which crash drizzlepac's own resetDQBits) mean crbit, as for flag_cosmic_rays and its .cfg
    resetbits = check_flag_options(
        model=options["model"], threshold=options["threshold"], crbit=crbit, resetbits=config["resetbits"],
        bits=options["bits"], fill_bits=options["fill_bits"], device=options["device"],
        precision=options["precision"], star_shape=options["star_shape"])["reset_value"]
    return {
        "model": options["model"], "threshold": options["threshold"], "crbit": crbit,
        "grow": check_grow(_section_value(config, "driz_cr_grow"), "driz_cr_grow"),
        "ctegrow": _check_ctegrow(_section_value(config, "driz_cr_ctegrow")),
        "resetbits": resetbits, "bits": options["bits"], "fill_bits": options["fill_bits"],
        "device": options["device"], "precision": options["precision"], "star_shape": options["star_shape"],
        "corr": bool(_section_value(config, "driz_cr_corr")),
        "archive": {key: bool(config["STATE OF INPUT FILES"][key]) for key in ("preserve", "overwrite", "restore")},
    }


def _check_input_files(names, settings):
    """`~astro_deepcr.drizzle.flag.check_input_files` before anything changes (archive, crmasks, flags).

    Its warnings and log lines are left to the flagging, which repeats the
    check under AstroDrizzle's logging, so that they reach the trailer file
    (and are not said twice).
    """
    from astropy import log as astropy_log

    from .flag import check_input_files

    level = astropy_log.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        astropy_log.setLevel("WARNING")
        try:
            check_input_files(names, model=settings["model"], star_shape=settings["star_shape"])
        finally:
            astropy_log.setLevel(level)


def _import_runtime(device):
    """Import the inference runtime before drizzlepac's logging replaces ``sys.stdout`` / ``sys.stderr``.

    A library that sets up logging at import binds the streams it finds
    then: torch, and openvino (it imports ``absl.logging``, whose handler,
    bound to drizzlepac's ``StreamTeeLogger``, fails at interpreter exit
    with "Exception ignored in atexit callback"). Only what the run will use
    is imported: `~astro_deepcr.engine.resolve_backend` imports openvino
    exactly when the flagging will run on it.
    """
    from .. import deepcr  # noqa: F401  (torch)
    from ..engine import resolve_backend

    resolve_backend(None, device)


def _check_ctegrow(ctegrow):
    try:
        value = int(ctegrow)
    except (TypeError, ValueError):
        raise TypeError(f"driz_cr_ctegrow must be an integer number of pixels, not {ctegrow!r}") from None
    if value != ctegrow or value < 0:
        raise ValueError(f"driz_cr_ctegrow is a length in pixels (0 = none), not {ctegrow!r}")
    return value


def _flag_then_drizzle(config, names, settings, astrodrizzle_module, drizzle_config, drizzle_pars, mdriztab,
                       editpars, wcsmap):
    """Archive, remove stale crmasks, flag, (crclean), AstroDrizzle; under the trailer file's logging."""
    for action, name in archive_inputs(names, **settings["archive"]):
        log.info(f"{action} {name} (OrIg_files), before deepCR changes its DQ")
    for name in names:
        for crmask in crmask_names(name):
            if os.path.exists(crmask):
                os.remove(crmask)
                log.warning(f"removed stale {crmask}: AstroDrizzle's final drizzle would merge it into "
                            f"{os.path.basename(name)}'s weights (deepCR flags the DQ array instead)")
    summary = _flag(names, settings)
    if settings["corr"]:
        for name in names:
            write_crclean(name, summary, settings)
    return astrodrizzle_module.AstroDrizzle(configobj=drizzle_config, mdriztab=mdriztab, editpars=editpars,
                                            wcsmap=wcsmap, **drizzle_pars)


def _flag(names, settings):
    from .flag import flag_cosmic_rays

    log.info("USER INPUT PARAMETERS for deepCR (in place of median, blot and driz_cr):")
    for key in ("model", "threshold", "bits", "fill_bits", "crbit", "grow", "ctegrow", "resetbits", "corr",
                "star_shape"):
        value = settings[key]
        if key in ("model", "threshold") and value is None:
            value = "from headers" if key == "model" else "model default"
        log.info(f"    {'driz_cr_' + key if key in ('grow', 'ctegrow', 'corr') else key:<15}: {value}")
    kwargs = {key: settings[key] for key in ("model", "threshold", "crbit", "grow", "resetbits", "bits",
                                             "fill_bits", "device", "precision", "star_shape")}
    if settings["ctegrow"]:
        kwargs["ctegrow"] = settings["ctegrow"]
    summary = flag_cosmic_rays(names, progress=False, **kwargs)
    for name in names:
        rows = summary[summary["file"] == name]
        with fits.open(name) as hdul:  # the headers flag_cosmic_rays wrote, read once per file
            header = hdul[0].header
            log.info(f"deepCR model {rows['model'][0]} for {os.path.basename(name)} ({header.get('DCRWHY', '')}), "
                     f"threshold {rows['threshold'][0]:g}, precision {header.get('DCRPREC', '')}")
            for row in rows:
                log.info(f"deepCR ({row['model']}): {row['n_cr']} cosmic-ray pixels in "
                         f"{os.path.basename(name)}[SCI,{row['extver']}]")
                if settings["star_shape"]:
                    note = hdul["SCI", int(row["extver"])].header.get("DCRSTAR", "")
                    log.info(f"    star-shape test of {os.path.basename(name)}[SCI,{row['extver']}]: {note}")
    return summary

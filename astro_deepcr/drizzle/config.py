# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``.cfg`` files (configobj, validated by stsci.tools as TEAL does) of the two tasks.

Both tasks keep their defaults in ``astro_deepcr/drizzle/pars/`` as drizzlepac
keeps its own (a ``<task>.cfg`` and a ``<task>.cfgspc``):

``astro_deepcr.drizzle.astrodrizzle``
    Every parameter of drizzlepac's ``astrodrizzle`` task (its sections and
    defaults, unchanged) plus a ``[DEEPCR: COSMIC-RAY MASKS]`` section with
    ``cr_method``, ``model``, ``threshold``, ``bits``, ``fill_bits``,
    ``device``, ``precision`` and ``star_shape``. ``teal.load("astro_deepcr.drizzle.astrodrizzle")`` loads it;
    a ``.cfg`` saved from it names this task and loads back with the deepCR
    options (`load_astrodrizzle_config`).
``astro_deepcr_flag``
    The parameters of `~astro_deepcr.drizzle.flag_cosmic_rays` (`load_config`,
    `save_config`).
"""

import os
import warnings

__all__ = [
    "ASTRODRIZZLE_TASK",
    "FLAG_TASK",
    "DEEPCR_SECTION",
    "DEEPCR_OPTIONS",
    "astrodrizzle_parameter_names",
    "load_astrodrizzle_config",
    "effective_config",
    "drizzlepac_config",
    "load_config",
    "save_config",
]

ASTRODRIZZLE_TASK = "astro_deepcr.drizzle.astrodrizzle"
FLAG_TASK = "astro_deepcr_flag"
#: The section of the astrodrizzle task's .cfg with the deepCR options (no "STEP N:" in its name, so
#: drizzlepac's ``util.getSectionName`` never confuses it with one of its steps).
DEEPCR_SECTION = "DEEPCR: COSMIC-RAY MASKS"
DEEPCR_OPTIONS = ("cr_method", "model", "threshold", "bits", "fill_bits", "device", "precision", "star_shape")
_PARS = os.path.join(os.path.dirname(__file__), "pars")


def _teal():
    """stsci.tools' teal, imported with the deprecation noise of drizzlepac's dependencies silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from stsci.tools import teal
    return teal


def _parameter_names(section):
    names = set()
    for key, value in section.items():
        if hasattr(value, "items"):
            if key != DEEPCR_SECTION:
                names |= _parameter_names(value)
        elif not key.startswith("_"):
            names.add(key)
    return names


def astrodrizzle_parameter_names():
    """Every parameter name ``AstroDrizzle`` accepts: those of its ``.cfg``, plus ``updatewcs``.

    Read from this task's own ``.cfg``, which is drizzlepac's ``astrodrizzle.cfg``
    plus the deepCR section (a test compares the two files), so no drizzlepac
    import is needed.
    """
    return _parameter_names(_task_defaults()) | {"updatewcs", "input"}


def _task_defaults():
    config = _teal().load(os.path.join(_PARS, f"{ASTRODRIZZLE_TASK}.cfg"), strict=True)
    config.filename = f"{ASTRODRIZZLE_TASK}.cfg"
    return config


def _merge_sections(target, source):
    """Copy the values of ``source`` into ``target`` section by section (same layout: drizzlepac's)."""
    for key, value in source.items():
        if key.startswith("_") and key != "_task_name_":
            continue
        if hasattr(value, "items"):
            if key not in target:
                raise ValueError(f"section [{key}] of the .cfg is not an AstroDrizzle or deepCR section")
            _merge_sections(target[key], value)
        elif key != "_task_name_":
            target[key] = value


def load_astrodrizzle_config(configobj=None):
    """The full configuration of `~astro_deepcr.drizzle.astrodrizzle`: AstroDrizzle's plus the deepCR section.

    Parameters
    ----------
    configobj : None, "defaults", str or ConfigObj
        None or ``"defaults"``: the task's defaults (drizzlepac's own
        ``astrodrizzle`` defaults, deepCR section included). A path: a
        ``.cfg`` of this task (deepCR options included) or one of
        drizzlepac's ``astrodrizzle`` task (deepCR options at their
        defaults), as ``AstroDrizzle(configobj=...)`` reads them. A loaded
        ConfigObj of either task.

    Returns
    -------
    config : `stsci.tools.cfgpars.ConfigObjPars`

    Raises
    ------
    ValueError
        A path that does not exist or a ``.cfg`` of another task.
    """
    config = _task_defaults()
    if configobj is None or (isinstance(configobj, str) and configobj.strip().lower() == "defaults"):
        return config
    if isinstance(configobj, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(configobj))
        if not os.path.isfile(path):
            raise ValueError(f"cannot find AstroDrizzle .cfg file {path}")
        configobj = _teal().load(path, strict=False)
    task = configobj.get("_task_name_", "astrodrizzle")
    if task not in ("astrodrizzle", ASTRODRIZZLE_TASK):
        raise ValueError(f"the .cfg is for task {task!r}, not astrodrizzle or {ASTRODRIZZLE_TASK}")
    _merge_sections(config, configobj)
    return config


def effective_config(config, *overrides):
    """A copy of ``config`` with flat ``{name: value}`` overrides merged in, later ones winning.

    The way ``AstroDrizzle`` folds ``MDRIZTAB`` rows and its keyword arguments
    into its configuration (`stsci.tools.cfgpars.mergeConfigObj`); used to
    know the values a run will use (``final_bits``, ``crbit``, ``driz_cr_grow``...)
    before it starts. ``updatewcs`` (no ``.cfg`` entry) is left out.
    """
    from stsci.tools import cfgpars

    merged = load_astrodrizzle_config(config)
    for values in overrides:
        values = {key: value for key, value in dict(values or {}).items() if key != "updatewcs"}
        if values:
            cfgpars.mergeConfigObj(merged, values)
    return merged


def check_values(config):
    """Refuse parameter values the task's ``.cfgspc`` does not accept, naming each one.

    ``AstroDrizzle`` itself logs such a value and returns None; `astrodrizzle`
    checks first, so no input file is flagged for a run that cannot start.
    Validation with stsci.tools' own checks converts the values to their
    types, as ``AstroDrizzle`` does.

    Raises
    ------
    ValueError
        One line per refused value: section, parameter, reason.
    """
    from stsci.tools import configobj, validate, vtor_checks

    # validated as a .cfg file would be read, every value a string (``resetbits=0`` is the text "0" there), then
    # every value put back as the caller gave it: the check changes nothing
    leaves = list(_leaves(config))
    for section, key, value in leaves:
        if key != "input" and value is not None and not isinstance(value, str):
            section[key] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    try:
        result = config.validate(validate.Validator(vtor_checks.FUNC_DICT), preserve_errors=True)
    finally:
        for section, key, value in leaves:
            section[key] = value
    if result is True:
        return config
    # ``input`` may be a list, as AstroDrizzle takes it (its .cfgspc only knows the string form)
    problems = [f"{key} ({' / '.join(sections) or 'global'}): {error or 'missing'}"
                for sections, key, error in configobj.flatten_errors(config, result) if key != "input"]
    if not problems:
        return config
    raise ValueError("invalid AstroDrizzle parameter value(s): " + "; ".join(problems))


def _leaves(section):
    """``(section, key, value)`` of every parameter of a configuration, sub-sections included."""
    for key, value in list(section.items()):
        if hasattr(value, "items"):
            yield from _leaves(value)
        else:
            yield section, key, value


def drizzlepac_config(config):
    """drizzlepac's own ``astrodrizzle`` configuration with the values of ``config`` (deepCR section dropped).

    Loaded from drizzlepac's installed defaults (``teal.load("astrodrizzle",
    defaults=True)``), so ``AstroDrizzle(configobj=...)`` gets a configuration
    of its own task.
    """
    theirs = _teal().load("astrodrizzle", defaults=True)
    for key, value in config.items():
        if key == DEEPCR_SECTION or (key.startswith("_") and not hasattr(value, "items")):
            continue
        if hasattr(value, "items"):
            if key.startswith("_"):
                continue
            _merge_sections(theirs[key], value)
        elif key in theirs:
            theirs[key] = value
    return theirs


# -- the flag task ----------------------------------------------------------------------------------------------------


def _flag_cfg():
    return os.path.join(_PARS, f"{FLAG_TASK}.cfg")


def _flag_pars(path, strict):
    from stsci.tools import cfgpars

    import astro_deepcr.drizzle as package

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cfgpars.ConfigObjPars(path, forUseWithEpar=False, associatedPkg=package, strict=strict)


def load_config(path=None):
    """Read `~astro_deepcr.drizzle.flag_cosmic_rays` parameters from a configobj ``.cfg`` file.

    The file is validated against ``astro_deepcr/drizzle/pars/astro_deepcr_flag.cfgspc``
    with `stsci.tools.cfgpars`, as drizzlepac's ``.cfg`` files are.

    Parameters
    ----------
    path : str, optional
        A ``.cfg`` written by `save_config`; default the shipped defaults.

    Returns
    -------
    params : dict
        ``input`` plus the keyword arguments of `flag_cosmic_rays`, e.g.
        ``flag_cosmic_rays(params.pop("input"), **params)``. Empty
        ``model``, ``device``, ``precision``, ``resetbits`` and ``bits`` strings
        are None.
    """
    path = _flag_cfg() if path is None else os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"configuration file {path} not found")
    pars = _flag_pars(path, strict=True)
    if pars.get("_task_name_", FLAG_TASK) != FLAG_TASK:
        raise ValueError(f"{path} is not an {FLAG_TASK} configuration")
    params = {key: value for key, value in dict(pars).items() if not key.startswith("_")}
    for key in ("model", "device", "precision", "resetbits", "bits", "fill_bits"):
        if isinstance(params.get(key), str) and not params[key].strip():
            params[key] = None
    return params


def save_config(path, **params):
    """Write `~astro_deepcr.drizzle.flag_cosmic_rays` parameters (and ``input``) to a configobj ``.cfg`` file.

    Unknown names raise `ValueError`; unspecified ones keep their defaults.
    None is written as an empty string (read back as None by `load_config`).
    """
    pars = _flag_pars(_flag_cfg(), strict=True)
    unknown = sorted(set(params) - set(pars) | {key for key in params if key.startswith("_")})
    if unknown:
        raise ValueError(f"unknown {FLAG_TASK} parameter(s): {', '.join(unknown)}")
    for key, value in params.items():
        if key == "star_shape":
            if value not in (True, False):
                raise TypeError(f"star_shape must be True or False, not {value!r}")
            value = bool(value)
        elif value is None:
            value = None if key == "threshold" else ""
        elif key in ("crbit", "grow"):
            value = int(value)
        elif key == "threshold":
            value = float(value)
        else:
            value = str(getattr(value, "name", value))  # a ModelSpec is saved by name
        pars[key] = value
    pars.filename = os.fspath(path)
    pars.write()
    return os.fspath(path)

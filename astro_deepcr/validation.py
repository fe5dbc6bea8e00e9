# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
One validation layer for the parameters every door shares (issue #28).

`DeepCR`, ``cosmicray_deepcr``, ``clean``, ``flag`` / `flag_cosmic_rays`,
``astrodrizzle``, ``evaluate --inject`` and ``train`` take the same
parameters; each door calls the checks here *before* it opens any file for
writing, so a bad value gives the same message from every door, naming the
parameter and the allowed values. The rules themselves stay where the
decision lives (`astro_deepcr.dq` for DQ bits, `astro_deepcr.bright` for the
saturation zone, `astro_deepcr.detection` for the threshold,
`astro_deepcr.engine` for device and precision); this module only gathers
them, so that a door cannot forget one. The command line turns a
`ValueError` or `TypeError` from here into a usage error (exit status 2).
"""

import math

__all__ = ["check_flag_options", "check_device", "check_count", "check_number", "check_inject_options",
           "check_train_options"]


def check_device(device):
    """``device`` resolvable here (``None``, ``"auto"``, ``"cpu"``, an existing CUDA device); returns it."""
    from .engine import resolve_device

    if device is not None:
        resolve_device(device)
    return device


def check_count(value, name, minimum=1):
    """``value`` as an int >= ``minimum``; the error names ``name``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer >= {minimum}, not {value!r}") from None
    if isinstance(value, bool) or number != value or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return number


def check_number(value, name, *, positive=True):
    """``value`` as a finite float (``positive``: > 0, else >= 0); the error names ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number) or (number <= 0 if positive else number < 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, not {value!r}")
    return number


def check_flag_options(*, model=None, threshold=None, crbit=None, grow=1, ctegrow=0, resetbits=None, bits=None,
                       fill_bits=None, device=None, precision=None, protect_saturated=True, lock_timeout=0.0,
                       kind="mask", star_shape=False):
    """Check the parameters of the flag / clean / drizzle doors; returns the normalised ones.

    Raises `ValueError` or `TypeError` naming the parameter and the allowed
    values; nothing is read or written.
    """
    from .bright import protection_radius
    from .detection import check_threshold
    from .dq import CR_BIT, check_crbit, check_grow, check_resetbits, interpret_bits
    from .engine import PRECISIONS

    crbit = check_crbit(CR_BIT if crbit is None else crbit)
    out = {"crbit": crbit, "grow": check_grow(grow), "ctegrow": check_count(ctegrow, "ctegrow", 0),
           "reset_value": check_resetbits(resetbits, crbit)}
    for name, value in (("bits", bits), ("fill_bits", fill_bits)):
        interpret_bits(value, name)
    out["threshold"] = None if threshold is None else check_threshold(threshold)
    protection_radius(protect_saturated)
    if star_shape not in (True, False):
        raise TypeError(f"star_shape must be True or False, not {star_shape!r}")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, not {precision!r}")
    check_device(device)
    check_number(lock_timeout, "lock_timeout", positive=False)
    if model is not None:
        from .zoo import get_model

        get_model(model, kind=kind)
    return out


def check_inject_options(*, trials=1, n_cr=None, density=500.0, gain=None, readnoise=None, model=None):
    """Check ``evaluate --inject``'s parameters (`astro_deepcr.evaluation.injection.run_frame`)."""
    check_count(trials, "trials (--trials)", 1)
    if n_cr is not None:
        check_count(n_cr, "n_cr (--n-cr)", 1)
    check_number(density, "density (--density, cosmic rays per megapixel)")
    for name, value in (("gain (--gain)", gain), ("readnoise (--readnoise)", readnoise)):
        if value is not None:
            check_number(value, name, positive=name.startswith("gain"))
    if model is not None:
        from .zoo import get_model

        get_model(model, kind="mask")


def check_train_options(*, dataset, output, name, depth, width, epochs, batch_size, kind="mask", lr=None,
                        steps_per_epoch=None, max_minutes=None, device=None, init_from=None):
    """Check ``train``'s parameters before the output folder is created."""
    import os

    if not os.path.isfile(os.path.join(dataset, "manifest.json")):
        raise ValueError(f"dataset {dataset!r} has no manifest.json; make one with astro-deepcr make-dataset")
    for label, value in (("depth", depth), ("width", width), ("epochs", epochs), ("batch_size", batch_size)):
        check_count(value, label)
    if steps_per_epoch is not None:
        check_count(steps_per_epoch, "steps_per_epoch")
    for label, value in (("lr", lr), ("max_minutes", max_minutes)):
        if value is not None:
            check_number(value, label)
    check_device(None if device in (None, "auto") else device)
    from .zoo import get_model, list_models

    if name in list_models() and os.path.dirname(get_model(name).file) != os.path.abspath(output):
        raise ValueError(f"name={name!r} is already the registered model of {get_model(name).file}; give the new "
                         "model its own name (--name)")
    if init_from is not None:
        get_model(init_from, kind=kind)

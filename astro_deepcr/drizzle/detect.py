# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The deepCR mask of one HST chip: model choice, DQ bit semantics, growth.

Shared by `~astro_deepcr.drizzle.flag_cosmic_rays` (DQ flagging in place)
and `~astro_deepcr.drizzle.astrodrizzle` (``_crmask`` files), so that both
read ``bits``, ``fill_bits``, ``crbit`` and the growth parameters the same
way drizzlepac does.

DQ bits, in drizzlepac's sense
------------------------------
``bits`` lists the DQ bits that count as *good*, exactly like
AstroDrizzle's ``final_bits`` / ``driz_sep_bits``: a pixel whose DQ value
has any bit outside ``bits`` is bad. Bad pixels are never flagged as cosmic
rays. The expression syntax is `stsci.tools.bitmask.interpret_bit_flags`'s:
``"64,32"`` or ``"64+32"`` (these are good), ``"~4096"`` (all but 4096 are
good), ``0`` (only DQ = 0 is good), ``None`` (every pixel is good).
``crbit`` itself never makes a pixel bad: it is the bit this step writes.
"""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from scipy import signal

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_FILL_BITS",
    "CALACS_CRBIT",
    "select_model",
    "check_crbit",
    "check_grow",
    "bits_from_bad_bits",
    "good_pixels",
    "flagged_pixels",
    "chip_cr_mask",
    "grow_like_driz_cr",
]

#: DQ bits that count as good by default: 4096 (AstroDrizzle's CR bit) and 8192 (calacs ``acsrej``'s).
#: Every other DQ bit marks a pixel that is already known to be bad (hot, warm, saturated, bad column...)
#: and is excluded by the drizzle anyway; flagging it again as a cosmic ray would only add noise, so it
#: is left alone. A pixel that calacs or an earlier driz_cr already called a cosmic ray stays a
#: candidate. This is the behaviour of 0.1.0 (``bad_bits="~4096,8192"``), written in drizzlepac's sense.
DEFAULT_BITS = "4096,8192"
#: DQ bits of pixels whose values are not sky (1 corrupted, 2 fill, 4 bad detector pixel, 8 masked by
#: aperture): replaced by the median of good neighbours before deepCR sees the image (its ``inmask``).
#: Unlike ``bits`` this lists bits that are *filled* (as astroscrappy's ``inmask`` lists bad pixels).
#: Saturation is deliberately not here: filling a saturated star core with the median of its ring
#: leaves a steep artificial edge that the network flags as cosmic rays (measured in 0.1.0: 41 px
#: around the synthetic saturated star of `astro_deepcr.training.flc`), while the saturated plateau
#: itself is not flagged. Filling every pixel ``bits`` calls bad instead raised the false-positive rate
#: from 4.8e-4 to 6.5e-4 at the same recall (``benchmarks/drizzle_compare.py --fill-bits``, docs/drizzle.rst).
DEFAULT_FILL_BITS = "1,2,4,8"
#: DQ bit calacs' ``acsrej`` sets on CR-SPLIT cosmic rays; never ours to write.
CALACS_CRBIT = 8192
_ALL_BITS = 0xFFFF


def select_model(primary_header, model=None):
    """The deepCR-mask model for an HST exposure, and why: ``(spec, reason)``.

    `astro_deepcr.zoo.select_model` (the model cards matched against
    ``INSTRUME``, ``DETECTOR`` and the filters), plus a warning when an
    explicit ``model`` was trained on another instrument or detector.

    Parameters
    ----------
    primary_header : `~astropy.io.fits.Header`
    model : str or `~astro_deepcr.zoo.ModelSpec`, optional

    Returns
    -------
    spec : `~astro_deepcr.zoo.ModelSpec`
    reason : str
        Recorded as ``DCRWHY``.
    """
    from ..zoo import select_model as zoo_select_model

    spec, reason = zoo_select_model(primary_header, model=model, kind="mask")
    if model is not None:
        instrument = str(primary_header.get("INSTRUME", "")).strip().upper()
        detector = str(primary_header.get("DETECTOR", "")).strip().upper()
        if (spec.instrument.upper(), spec.detector.upper()) != (instrument, detector):
            warnings.warn(
                f"model {spec.name!r} was trained on {spec.instrument}/{spec.detector or '?'} data, "
                f"not {instrument or '?'}/{detector or '?'}; check its masks", AstropyUserWarning)
    return spec, reason


def check_crbit(crbit):
    """``crbit`` as an int: one DQ bit up to 16384, not calacs' 8192."""
    try:
        value = int(crbit)
    except (TypeError, ValueError):
        raise TypeError(f"crbit must be an integer power of two, not {crbit!r}") from None
    if value != crbit or value <= 0 or value & (value - 1) or value > 16384:
        raise ValueError(f"crbit must be a single DQ bit (a power of two up to 16384), not {crbit!r}")
    if value == CALACS_CRBIT:
        raise ValueError("crbit 8192 is calacs' acsrej cosmic-ray bit; use AstroDrizzle's 4096 (default)")
    return value


def check_grow(grow, name="grow"):
    """``grow`` as an int: driz_cr_grow's box side, 1 = no growth."""
    try:
        value = int(grow)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer box side, not {grow!r}") from None
    if value != grow or value < 1:
        raise ValueError(f"{name} is the side of the growth box as in driz_cr_grow (1 = no growth), "
                         f"so an integer >= 1, not {grow!r}")
    return value


def interpret_bits(bits, name):
    """`stsci.tools.bitmask.interpret_bit_flags` with the parameter's name in the error."""
    from stsci.tools.bitmask import interpret_bit_flags

    try:
        return interpret_bit_flags(bits)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={bits!r} is not a DQ bit expression: {exc}") from None


def bits_from_bad_bits(bad_bits):
    """The good ``bits`` equivalent to a 0.1.0 ``bad_bits`` expression (every bit not listed as bad)."""
    bad = interpret_bits(bad_bits, "bad_bits")
    if bad is None or bad == 0:
        return None
    return int(~bad & _ALL_BITS)


def good_pixels(dq_values, bits, crbit):
    """True where every DQ bit set is in ``bits`` (or is ``crbit``): drizzlepac's good pixels."""
    good_bits = interpret_bits(bits, "bits")
    if good_bits is None:
        return np.ones(dq_values.shape, dtype=bool)
    ignored = (int(good_bits) | crbit) & _ALL_BITS
    return (np.asarray(dq_values, dtype=np.int64) & ~ignored & _ALL_BITS) == 0


def flagged_pixels(dq_values, flag_bits, crbit):
    """True where a DQ bit listed in ``flag_bits`` (never ``crbit``) is set; ``None`` or 0: none."""
    value = interpret_bits(flag_bits, "fill_bits")
    if value is None or value == 0:
        return np.zeros(dq_values.shape, dtype=bool)
    return (np.asarray(dq_values, dtype=np.int64) & (int(value) & ~crbit & _ALL_BITS)) != 0


def chip_cr_mask(detector, spec, electrons, dq_values, bits, fill_bits, crbit, threshold):
    """deepCR cosmic-ray mask of one chip in electrons, and the number of bad (excluded) pixels.

    Pixels with a ``fill_bits`` bit are the network's ``inmask`` (filled
    from good neighbours, not used as sources); pixels outside ``bits`` are
    never flagged. Returns ``(cr_mask, bad)``.
    """
    if spec.units != "electron":
        warnings.warn(f"model {spec.name!r} expects {spec.units}, the HST data are electrons", AstropyUserWarning)
    fill = flagged_pixels(dq_values, fill_bits, crbit)
    bad = ~good_pixels(dq_values, bits, crbit) | fill
    return detector.mask(electrons, threshold=threshold, inmask=fill) & ~bad, bad


def grow_like_driz_cr(cr_mask, grow, ctegrow=0, cte_dir=0):
    """driz_cr's growth: a ``grow`` x ``grow`` box (1 = none) and a CTE tail of ``ctegrow`` pixels.

    Same arithmetic as ``drizzlepac.drizCR._driz_cr`` (convolution of the
    good-pixel map with a box and a one-sided column kernel).
    """
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

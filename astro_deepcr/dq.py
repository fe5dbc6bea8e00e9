# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Data-quality (DQ) bits: the one place that knows what a bit means.

The bit constants (the cosmic-ray bit among them), parsing of bit
expressions, which pixels count as good, which are filled before the
network sees an image, and driz_cr-style growth. Every door that reads or
writes a DQ array (`astro_deepcr.drizzle.flag_cosmic_rays`, ``astro-deepcr
clean``, the demo) and the detection core (`astro_deepcr.detection`) use
these functions, so they read a DQ array the same way.

DQ bits, in drizzlepac's sense
------------------------------
``bits`` lists the DQ bits that count as *good*, exactly like
AstroDrizzle's ``final_bits`` / ``driz_sep_bits``: a pixel whose DQ value
has any bit outside ``bits`` is bad. Bad pixels are never flagged as cosmic
rays. The expression syntax is `stsci.tools.bitmask.interpret_bit_flags`'s:
``"64,32"`` or ``"64+32"`` (these are good), ``"~4096"`` (all but 4096 are
good), ``0`` (only DQ = 0 is good), ``None`` (every pixel is good).
``crbit`` itself never makes a pixel bad: it is the bit the steps write.
"""

import numpy as np

__all__ = [
    "CR_BIT",
    "CALACS_CRBIT",
    "SATURATION_BITS",
    "DEFAULT_BITS",
    "DEFAULT_FILL_BITS",
    "interpret_bits",
    "bits_contain",
    "bits_from_bad_bits",
    "check_crbit",
    "check_resetbits",
    "DQ_MEANINGS",
    "check_grow",
    "good_pixels",
    "flagged_pixels",
    "dq_masks",
    "saturated_dq",
    "set_crbit",
    "grow_like_driz_cr",
]

#: The DQ bit cosmic rays are flagged with: AstroDrizzle's ``crbit``.
CR_BIT = 4096
#: DQ bit calacs' ``acsrej`` sets on CR-SPLIT cosmic rays; never ours to write.
CALACS_CRBIT = 8192
#: ACS and WFC3 saturation: 256 full-well saturation, 2048 A-to-D saturation.
SATURATION_BITS = 256 | 2048
#: DQ bits that count as good by default: 4096 (AstroDrizzle's CR bit) and 8192 (calacs ``acsrej``'s).
#: Every other DQ bit marks a pixel that is already known to be bad (hot, warm, saturated, bad column...)
#: and is excluded by the drizzle anyway; flagging it again as a cosmic ray would only add noise, so it
#: is left alone. A pixel that calacs or an earlier driz_cr already called a cosmic ray stays a candidate.
DEFAULT_BITS = f"{CR_BIT},{CALACS_CRBIT}"
#: DQ bits of pixels whose values are not sky (1 corrupted, 2 fill value, 4 bad detector pixel): replaced by
#: the median of good neighbours before deepCR sees the image. Unlike ``bits`` this lists bits that are
#: *filled*. Saturation is deliberately not here: filling a saturated star core with the median of its ring
#: leaves a steep artificial edge that the network flags. Nor is 8 (masked by an aperture feature, e.g. the
#: HRC occulting finger): its pixels hold attenuated sky, and filling them made 54 extra flags on the edges
#: of the HRC frame's aperture mask at the same recall of injected cosmic rays (0.5034 of 2 x 500 / Mpx;
#: ``python tools/measure_mask_policy.py``, docs/architecture.rst). Filling every pixel ``bits`` calls bad
#: instead raised the false-positive rate from 4.8e-4 to 6.5e-4 at the same recall
#: (``benchmarks/drizzle_compare.py --fill-bits``, docs/drizzle.rst).
DEFAULT_FILL_BITS = "1,2,4"
_ALL_BITS = 0xFFFF
#: What calacs/calwf3 (ACS and WFC3 data handbooks) and this package read each DQ bit as. A cosmic-ray bit
#: must not be one of these: flags written with it would be read back as that meaning (a rerun reading its
#: own flags as saturation, a reset clearing the calibration's flags).
DQ_MEANINGS = {
    1: "Reed-Solomon decoding error / data lost (calacs, calwf3; filled by default)",
    2: "data replaced by fill value (calacs, calwf3; filled by default)",
    4: "bad detector pixel (calacs, calwf3; filled by default)",
    8: "masked by aperture feature (ACS) / unstable pixel (WFC3)",
    16: "hot pixel (calacs, calwf3)",
    32: "CTE tail / warm or hot column (calacs, calwf3)",
    64: "warm pixel (calacs, calwf3)",
    128: "bad column / bias structure (calacs, calwf3)",
    256: "full-well saturation (calacs, calwf3; read as saturation by astro_deepcr.bright)",
    512: "bad flat-field value / bad reference pixel (calacs, calwf3)",
    1024: "charge trap / blob (calacs, calwf3)",
    2048: "A-to-D saturation (calacs, calwf3; read as saturation by astro_deepcr.bright)",
    CALACS_CRBIT: "calacs' acsrej / calwf3's wf3rej cosmic ray, never ours to write",
}


def interpret_bits(bits, name):
    """`stsci.tools.bitmask.interpret_bit_flags` with the parameter's name in the error."""
    from stsci.tools.bitmask import interpret_bit_flags

    try:
        return interpret_bit_flags(bits)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={bits!r} is not a DQ bit expression: {exc}") from None


def bits_contain(bits, bit, name="bits"):
    """Whether the good-bits expression ``bits`` (as AstroDrizzle's ``final_bits``) treats ``bit`` as good.

    >>> from astro_deepcr.dq import bits_contain
    >>> bits_contain("4096,16", 4096), bits_contain("~4096", 4096), bits_contain(0, 4096)
    (True, False, False)
    """
    value = interpret_bits(bits, name)
    return value is not None and bool(int(value) & int(bit))


def bits_from_bad_bits(bad_bits):
    """The good ``bits`` equivalent to a 0.1.0 ``bad_bits`` expression (every bit not listed as bad)."""
    bad = interpret_bits(bad_bits, "bad_bits")
    if bad is None or bad == 0:
        return None
    return int(~bad & _ALL_BITS)


def check_crbit(crbit):
    """``crbit`` as an int: one DQ bit up to 16384 that no calibration reads as something else (`DQ_MEANINGS`).

    >>> from astro_deepcr.dq import check_crbit
    >>> check_crbit(4096)
    4096
    >>> check_crbit(256)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: crbit=256 is the DQ bit of full-well saturation (calacs, calwf3; ...); allowed: 4096 ... or 16384
    """
    try:
        value = int(crbit)
    except (TypeError, ValueError):
        raise TypeError(f"crbit must be an integer power of two, not {crbit!r}") from None
    if value != crbit or value <= 0 or value & (value - 1) or value > 16384:
        raise ValueError(f"crbit must be a single DQ bit (a power of two up to 16384), not {crbit!r}")
    if value in DQ_MEANINGS:
        raise ValueError(f"crbit={value} is the DQ bit of {DQ_MEANINGS[value]}; allowed: {_ALLOWED_CRBITS}")
    return value


_ALLOWED_CRBITS = f"{CR_BIT} (default, AstroDrizzle's crbit) or {2 * CR_BIT * 2}"


def check_resetbits(resetbits, crbit):
    """The DQ bits ``resetbits`` clears: never a bit of `DQ_MEANINGS` but calacs' 8192.

    None, and what `interpret_bits` reads as None (``""``, ``"none"``, ``"INDEF"``), mean ``crbit``: the
    ``.cfg`` files write the default as ``""``, so every spelling of "not given" means the same. 0 clears none.

    >>> from astro_deepcr.dq import check_resetbits
    >>> check_resetbits(None, 4096), check_resetbits("", 4096), check_resetbits(0, 4096)
    (4096, 4096, 0)
    """
    value = None if resetbits is None else interpret_bits(resetbits, "resetbits")
    if value is None:
        return crbit
    value = int(value) & _ALL_BITS
    ours = [bit for bit, meaning in DQ_MEANINGS.items() if value & bit and bit != CALACS_CRBIT]
    if ours:
        named = "; ".join(f"{bit} = {DQ_MEANINGS[bit]}" for bit in ours)
        raise ValueError(f"resetbits={resetbits!r} would clear the calibration's DQ flags ({named}); allowed: "
                         f"0, the cosmic-ray bits {crbit} and {CALACS_CRBIT}")
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


def _as_dq(dq):
    dq = np.asarray(dq)
    if dq.dtype.kind not in "iu":
        raise TypeError(f"DQ must be an integer array, not {dq.dtype}")
    return dq.astype(np.int64)


def good_pixels(dq, bits, crbit=CR_BIT):
    """True where every DQ bit set is in ``bits`` (or is ``crbit``): drizzlepac's good pixels."""
    good_bits = interpret_bits(bits, "bits")
    dq = _as_dq(dq)
    if good_bits is None:
        return np.ones(dq.shape, dtype=bool)
    ignored = (int(good_bits) | crbit) & _ALL_BITS
    return (dq & ~ignored & _ALL_BITS) == 0


def flagged_pixels(dq, flag_bits, crbit=CR_BIT):
    """True where a DQ bit listed in ``flag_bits`` (never ``crbit``) is set; ``None`` or 0: none."""
    value = interpret_bits(flag_bits, "fill_bits")
    dq = _as_dq(dq)
    if value is None or value == 0:
        return np.zeros(dq.shape, dtype=bool)
    return (dq & (int(value) & ~crbit & _ALL_BITS)) != 0


def dq_masks(dq, bits=DEFAULT_BITS, fill_bits=DEFAULT_FILL_BITS, crbit=CR_BIT):
    """Bad and filled pixels of a DQ array.

    Parameters
    ----------
    dq : array-like of int
    bits : int, str or None
        DQ bits that count as good, in drizzlepac's sense (default
        `DEFAULT_BITS`); a pixel with any other bit is never flagged nor
        changed. None: every pixel is good.
    fill_bits : int, str or None
        DQ bits of pixels whose values are not sky, filled from good
        neighbours before the network sees the image (default
        `DEFAULT_FILL_BITS`); None or 0: none.
    crbit : int
        The cosmic-ray bit, never a reason to exclude a pixel.

    Returns
    -------
    bad, fill : ndarray of bool
        ``fill`` is included in ``bad``.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_deepcr.dq import dq_masks
    >>> bad, fill = dq_masks(np.array([0, 4096, 256, 4, 8192]))
    >>> bad.tolist(), fill.tolist()
    ([False, False, True, True, False], [False, False, False, True, False])
    >>> dq_masks(np.array([0, 4096, 256, 4]), bits=None, fill_bits=None)[0].tolist()
    [False, False, False, False]
    """
    fill = flagged_pixels(dq, fill_bits, crbit)
    bad = ~good_pixels(dq, bits, crbit) | fill
    return bad, fill


def saturated_dq(dq):
    """True where a saturation bit (`SATURATION_BITS`) is set."""
    return (_as_dq(dq) & SATURATION_BITS) != 0


def set_crbit(dq, cr_mask, crbit=CR_BIT, reset=0):
    """Clear the ``reset`` bits of the integer array ``dq`` and OR ``crbit`` in at ``cr_mask``, in place."""
    if reset:
        np.bitwise_and(dq, np.array(~reset).astype(dq.dtype), out=dq)
    dq[cr_mask] |= np.array(crbit).astype(dq.dtype)
    return dq


def grow_like_driz_cr(cr_mask, grow, ctegrow=0, cte_dir=0):
    """driz_cr's growth: a ``grow`` x ``grow`` box (1 = none) and a CTE tail of ``ctegrow`` pixels.

    The mask is grown by a box of side ``grow`` centred on each cosmic-ray
    pixel, and by ``ctegrow`` pixels along the columns in the direction
    ``cte_dir`` (+1 towards larger rows, -1 towards smaller, 0 none), as
    AstroDrizzle's ``driz_cr_grow`` and ``driz_cr_ctegrow`` grow its masks.
    """
    if grow <= 1 and ctegrow <= 0:
        return cr_mask
    from scipy import signal  # here: the constants above are read by the CLI's --help, which loads no scipy

    good = (~cr_mask).astype(np.uint16)
    grown = signal.convolve2d(good, np.ones((grow, grow), dtype=np.uint16), boundary="symm", mode="same")
    tail_kernel = np.zeros((2 * ctegrow + 1, 2 * ctegrow + 1))
    if cte_dir == 1:
        tail_kernel[0:ctegrow, ctegrow] = 1
    elif cte_dir == -1:
        tail_kernel[ctegrow + 1:, ctegrow] = 1
    tail = signal.convolve2d(good, tail_kernel, boundary="symm", mode="same")
    return ~((grown >= grow**2) & (tail >= ctegrow))

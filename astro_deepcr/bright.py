# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Saturated stars and bleed trails: which pixels are saturated, and no cosmic rays on their rims.

A deepCR network sees the rim of a saturated star (a plateau at full well,
its bleed trail a saturated column) as a sharp edge and flags it: on the
real ACS/HRC frame ``j8bt06nyq_flt.fits`` (47 Tuc, F606W, 60 s, the example
of `astro_deepcr.datasets`) the ACS-WFC model at its threshold 0.5 flags
1416 of its 3828 pixels within 3 px of a DQ-saturated pixel -- a third of
all flags on 1.5 % of the good pixels.

`saturated_pixels` finds the saturated pixels (DQ bits 256 | 2048 of
calacs/calwf3, or a level in image units); `protect` removes the flags of a
cosmic-ray mask within ``PROTECTION["radius"]`` = 3 px (chessboard distance)
of them: the rim of a saturated star or bleed trail. Chosen by injecting
real cosmic rays into that frame (`astro_deepcr.evaluation.injection`,
``benchmarks/injection_frames.py --candidates``, 4106 cosmic rays in 8
trials) by net effect (issue #27): rim flags removed on the frame against
injected cosmic rays lost per trial (a trial holds about one frame's worth),
each lost cosmic ray charged 31 px (the largest of the library), a cosmic
ray counting as found only by a flag the uninjected frame does not have
("by new flags"): a detector that flags a whole star rim "finds" the cosmic
rays that land there by coincidence. Rim flags 1416 -> 0 for 2 of 4106
cosmic rays lost (0.25 per frame; recall by new flags 0.7158 -> 0.7153):
net 1408 px, against 1251 for the 1 px zone of 0.2.0-dev (165 rim flags
left, none lost), 1396 for 2 px (12 left, the same 2 lost) and 1401 for
4 px (4 lost). A cosmic ray on a saturated pixel cannot be told from the
star and is never flagged; filling the saturated plateaus before the
network makes more rim flags (1507), so they are not filled. Figures:
``docs/bright.rst``.
"""

import numpy as np
from scipy import ndimage

__all__ = ["PROTECTION", "SATURATION_BITS", "saturated_pixels", "protection_radius", "protection_zone", "protect",
           "rim_flags"]

from .dq import SATURATION_BITS  # 256 (full well) | 2048 (A-to-D saturation), calacs and calwf3

#: The measured saturation protection: no cosmic-ray flag within ``radius`` px (chessboard
#: distance: a (2 radius + 1)-square around every saturated pixel, bleed trails included).
#: See ``docs/bright.rst`` for the measurement that chose it.
PROTECTION = {"radius": 3}
#: Distance (px, chessboard) of a "rim" flag from a saturated pixel, as issue #22 counts them.
RIM_RADIUS = 3


def saturated_pixels(image, *, dq=None, satlevel=None):
    """Saturated pixels, bleed trails included.

    Parameters
    ----------
    image : array-like, 2-D
        The science image (only its shape is used without ``satlevel``).
    dq : array-like of int, optional
        Data-quality array: pixels with any of `SATURATION_BITS` (256 | 2048)
        set are saturated.
    satlevel : float or array-like, optional
        Pixels at or above this level (image units; an array of the image's
        shape for a level that varies, e.g. with a subtracted background)
        are saturated (astroscrappy's ``satlevel``); non-finite or None: no
        level.

    Returns
    -------
    saturated : ndarray of bool
        All False when neither ``dq`` nor ``satlevel`` is given.

    Raises
    ------
    ValueError
        Shapes differ or the image is not 2-D.
    TypeError
        ``dq`` is not an integer array.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_deepcr.bright import saturated_pixels
    >>> saturated_pixels(np.array([[1.0, 9.0]]), dq=np.array([[256, 0]]), satlevel=5).tolist()
    [[True, True]]
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, not {image.ndim}-D")
    saturated = np.zeros(image.shape, bool)
    if dq is not None:
        dq = np.asarray(dq)
        if dq.dtype.kind not in "iu":
            raise TypeError(f"DQ must be an integer array, not {dq.dtype}")
        if dq.shape != image.shape:
            raise ValueError(f"DQ shape {dq.shape} does not match image shape {image.shape}")
        saturated |= (dq.astype(np.int64) & SATURATION_BITS) != 0
    if satlevel is not None:
        # a number, or an array of the image's shape (a level that follows a subtracted background)
        level = np.asarray(satlevel, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            saturated |= np.isfinite(level) & (image >= level)
    return saturated


def protection_radius(protect_saturated):
    """The zone radius (px) a ``protect_saturated`` argument asks for: True the measured
    ``PROTECTION["radius"]``, False (or 0) none, an integer that many pixels.

    Examples
    --------
    >>> from astro_deepcr.bright import protection_radius
    >>> protection_radius(True), protection_radius(False), protection_radius(2)
    (3, 0, 2)
    """
    if isinstance(protect_saturated, (bool, np.bool_)):
        return PROTECTION["radius"] if protect_saturated else 0
    if isinstance(protect_saturated, (int, np.integer)) and protect_saturated >= 0:
        return int(protect_saturated)
    raise ValueError("protect_saturated must be True, False or a zone radius in pixels (an integer >= 0), "
                     f"not {protect_saturated!r}")


def protection_zone(saturated, radius=None):
    """Pixels within ``radius`` px (chessboard) of a saturated pixel, the saturated ones included.

    ``radius`` defaults to ``PROTECTION["radius"]``; 0 gives the saturated pixels themselves.
    """
    saturated = np.asarray(saturated, dtype=bool)
    radius = PROTECTION["radius"] if radius is None else int(radius)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, not {radius}")
    if radius == 0 or not saturated.any():
        return saturated.copy()
    if radius >= max(saturated.shape):  # every pixel is within reach of a saturated one
        return np.ones(saturated.shape, bool)
    # chessboard distance to the nearest saturated pixel: time and memory independent of the radius
    # (a (2 radius + 1)-square structuring element is not: 3.6 TiB for radius 1e12, issue #28)
    return ndimage.distance_transform_cdt(~saturated, metric="chessboard") <= radius


def protect(cr_mask, probability, saturated, threshold, image=None, radius=None):
    """The cosmic-ray mask with the saturation protection applied.

    Parameters
    ----------
    cr_mask : array-like of bool
        ``probability > threshold`` (before growth).
    probability : array-like
        The network's probability (not used by the chosen protection, kept
        so that a probability-based rule can replace it without changing
        the callers).
    saturated : array-like of bool
        `saturated_pixels`.
    threshold : float
        The threshold that made ``cr_mask`` (not used by the chosen protection).
    image : array-like, optional
        Not used by the chosen protection.
    radius : int, optional
        Zone radius in px; default ``PROTECTION["radius"]``.

    Returns
    -------
    cr_mask : ndarray of bool
        A new array: ``cr_mask`` without the pixels of `protection_zone`.

    Examples
    --------
    >>> import numpy as np
    >>> from astro_deepcr.bright import protect
    >>> saturated = np.zeros((1, 7), bool); saturated[0, 0] = True
    >>> protect(np.ones((1, 7), bool), None, saturated, 0.5).astype(int).tolist()
    [[0, 0, 0, 0, 1, 1, 1]]
    """
    cr_mask = np.asarray(cr_mask, dtype=bool)
    saturated = np.asarray(saturated, dtype=bool)
    if saturated.shape != cr_mask.shape:
        raise ValueError(f"saturated shape {saturated.shape} does not match mask shape {cr_mask.shape}")
    return cr_mask & ~protection_zone(saturated, radius)


def rim_flags(cr_mask, saturated, radius=RIM_RADIUS):
    """Number of flagged pixels within ``radius`` px (chessboard) of a saturated pixel (issue #22's count)."""
    return int((np.asarray(cr_mask, dtype=bool) & protection_zone(saturated, radius)).sum())

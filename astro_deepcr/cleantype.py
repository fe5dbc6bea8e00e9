# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
LACosmic's four replacements of cosmic-ray pixels, as astroscrappy defines them, in numpy/scipy.

`ccdproc.cosmicray_lacosmic` replaces the pixels it flags with one of
astroscrappy's ``cleantype`` filters; `astro_deepcr.cosmicray_deepcr` takes
the same keyword and applies the same definitions to deepCR's mask
(astroscrappy 1.3, ``astroscrappy.pyx``: ``clean_median``, ``clean_medmask``,
``clean_meanmask``, ``clean_idwinterp`` and ``update_mask``):

==========  ==================================================================
cleantype   value of a cosmic-ray pixel
==========  ==================================================================
median      median of all 25 pixels of the 5x5 box, cosmic rays and masked
            pixels included (an unmasked median filter)
medmask     median of the box pixels that are neither cosmic rays nor masked
meanmask    mean of those pixels (LACosmic's default)
idw         those pixels weighted by the inverse of their distance to the
            centre (1 / sqrt(dx**2 + dy**2))
==========  ==================================================================

Where no box pixel is usable, the image's background level is used: the
median of the pixels that are not masked. Medians of an even number of
values are the lower middle value, as astroscrappy's quickselect returns.
"Masked" is astroscrappy's own mask (`lacosmic_mask`): the input mask grown
by one pixel, plus the cores of saturated stars grown by four.

Two documented differences: astroscrappy leaves pixels within 2 of the image
edge unreplaced, here they are replaced from the part of the box inside the
image; and non-finite values are never used as sources. astroscrappy's own
``median`` routine reads uninitialised memory (a ``counter =+ 1`` typo; its
test is marked xfail), so ``median`` follows its documented intent.
"""

import numpy as np
from scipy import ndimage

__all__ = ["CLEANTYPES", "clean_cosmic_rays", "lacosmic_mask", "background_level"]

CLEANTYPES = ("median", "medmask", "meanmask", "idw")
_HALF = 2
_DY, _DX = np.mgrid[-_HALF:_HALF + 1, -_HALF:_HALF + 1]
with np.errstate(divide="ignore"):
    #: astroscrappy's idw weights: 1/distance, 0 at the centre
    IDW_WEIGHTS = np.where((_DY == 0) & (_DX == 0), 0.0, 1.0 / np.hypot(_DY, _DX))
_DILATE5 = np.ones((5, 5), bool)
_DILATE5[[0, 0, -1, -1], [0, -1, 0, -1]] = False  # astroscrappy's dilate5: a 5x5 box without its corners


def lower_median(values, axis=-1):
    """Median as astroscrappy computes it: for an even count, the lower of the two middle values.

    NaN entries are ignored; an all-NaN row gives NaN.
    """
    values = np.sort(values, axis=axis)  # NaNs sort last
    count = np.sum(np.isfinite(values), axis=axis, keepdims=True)
    index = np.maximum((count - 1) // 2, 0)
    return np.take_along_axis(values, index, axis=axis).squeeze(axis)


def background_level(image, exclude):
    """astroscrappy's fallback value: the (lower) median of the finite pixels outside ``exclude``."""
    good = image[~exclude & np.isfinite(image)]
    if not good.size:
        return 0.0
    return float(np.partition(good, (good.size - 1) // 2)[(good.size - 1) // 2])


def lacosmic_mask(electrons, inmask=None, satlevel=65535.0, sepmed=True):
    """astroscrappy's ``update_mask``: pixels neither detected on nor used as sources.

    Parameters
    ----------
    electrons : ndarray
        Image in electrons (astroscrappy multiplies by the gain first).
    inmask : ndarray of bool, optional
        Bad pixels; grown by one pixel (3x3).
    satlevel : float
        Saturation level in electrons. Pixels at or above it whose
        neighbourhood median (7-pixel separable median with ``sepmed``, else
        a 5x5 median) exceeds ``satlevel / 10`` are cores of saturated stars;
        they are grown twice by a 5x5 box without corners.
    sepmed : bool

    Returns
    -------
    mask : ndarray of bool
    """
    values = np.nan_to_num(np.asarray(electrons, dtype=np.float32), nan=0.0, posinf=np.inf, neginf=-np.inf)
    saturated = values >= satlevel
    if saturated.any():
        if sepmed:
            smooth = ndimage.median_filter(ndimage.median_filter(values, size=(1, 7), mode="nearest"),
                                           size=(7, 1), mode="nearest")
        else:
            smooth = ndimage.median_filter(values, size=5, mode="nearest")
        saturated &= smooth > satlevel / 10.0
        saturated = ndimage.binary_dilation(saturated, _DILATE5, iterations=2)
    grown = np.zeros(values.shape, bool) if inmask is None else ndimage.binary_dilation(
        np.asarray(inmask, bool), np.ones((3, 3), bool))
    return saturated | grown


def _boxes(image, rows, cols):
    """The 5x5 boxes around ``rows, cols`` (n, 25); outside the image is NaN."""
    padded = np.pad(image.astype(np.float64), _HALF, constant_values=np.nan)
    return padded[rows[:, None] + _HALF + _DY.ravel(), cols[:, None] + _HALF + _DX.ravel()]


def clean_cosmic_rays(image, crmask, exclude, cleantype="meanmask", background=None):
    """Replace the ``crmask`` pixels of ``image`` as LACosmic's ``cleantype`` does.

    Parameters
    ----------
    image : ndarray, 2-D
    crmask : ndarray of bool
        Pixels to replace.
    exclude : ndarray of bool
        Masked pixels (`lacosmic_mask`): not used as sources (except by ``median``).
    cleantype : {"median", "medmask", "meanmask", "idw"}
    background : float, optional
        Value where a box has no usable pixel; default `background_level`.

    Returns
    -------
    cleaned : ndarray of float64
        A new array; only ``crmask`` pixels differ from ``image``.

    Raises
    ------
    ValueError
        Unknown ``cleantype``.
    """
    if cleantype not in CLEANTYPES:
        raise ValueError(f"cleantype must be one of {', '.join(CLEANTYPES)}, not {cleantype!r}")
    image = np.asarray(image)
    crmask = np.asarray(crmask, bool)
    exclude = np.asarray(exclude, bool)
    cleaned = image.astype(np.float64, copy=True)
    rows, cols = np.nonzero(crmask)
    if not rows.size:
        return cleaned
    if background is None:
        background = background_level(image, exclude)
    values = _boxes(image, rows, cols)
    if cleantype == "median":
        result = lower_median(values)
    else:
        sources = np.where(crmask | exclude, np.nan, image.astype(np.float64))
        values = _boxes(sources, rows, cols)
        usable = np.isfinite(values)
        if cleantype == "medmask":
            result = lower_median(values)
        else:
            weights = usable * (1.0 if cleantype == "meanmask" else IDW_WEIGHTS.ravel())
            total = weights.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                result = (np.where(usable, values, 0.0) * weights).sum(axis=1) / total
            result[total < 1e-6] = np.nan
    result = np.where(np.isfinite(result), result, background)
    cleaned[rows, cols] = result
    return cleaned

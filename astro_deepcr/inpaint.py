# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Filling masked pixels: the classic baselines (``medmask``, ``biharmonic``)
on numpy arrays. Network inpainting lives in `astro_deepcr.deepcr.DeepCR`.

Every function takes the image, the boolean mask of pixels to fill and an
optional boolean ``bad`` mask of pixels that may not be used as sources
(non-finite values, detector defects); it returns a new float array and
never modifies its inputs.
"""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["medmask", "biharmonic", "local_scatter", "fill_median"]

#: Half-width of the first median box (5x5) and the largest one tried.
_FIRST_HALF, _MAX_HALF = 2, 32


def _windows(padded, rows, cols, half):
    """Values of the (2 half + 1)**2 boxes centred on ``rows, cols`` of a padded array."""
    offsets = np.arange(-half, half + 1)
    return padded[rows[:, None, None] + offsets[None, :, None], cols[:, None, None] + offsets[None, None, :]].reshape(
        len(rows), -1
    )


def _box_statistic(image, fill, bad, statistic):
    """Per masked pixel, ``statistic`` of the usable pixels in the smallest box
    (5x5, then 7x7, ...) that has any; NaN where even the largest box has none."""
    usable = np.where(fill | bad, np.nan, image.astype(np.float64, copy=False))
    rows, cols = np.nonzero(fill)
    result = np.full(rows.size, np.nan)
    todo = np.arange(rows.size)
    half = _FIRST_HALF
    while todo.size and half <= _MAX_HALF:
        padded = np.pad(usable, half, constant_values=np.nan)
        values = _windows(padded, rows[todo] + half, cols[todo] + half, half)
        found = np.isfinite(values).any(axis=1)
        if found.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result[todo[found]] = statistic(values[found], axis=1)
        todo = todo[~found]
        half += 1
    return rows, cols, result


def medmask(image, mask, bad=None):
    """Replace masked pixels by the median of the unmasked pixels in a 5x5 box.

    Where every pixel of the 5x5 box is masked or bad the box grows (7x7,
    9x9, ...) until it holds a usable pixel; beyond 65x65 the median of all
    usable pixels is used.

    Parameters
    ----------
    image : array-like, 2-D
    mask : array-like of bool, 2-D
        Pixels to replace.
    bad : array-like of bool, 2-D, optional
        Pixels that are neither replaced nor used as sources.

    Returns
    -------
    cleaned : ndarray of float
        ``image`` with masked pixels replaced (float64 for float64 input,
        float32 otherwise).
    """
    image, mask, bad = _check(image, mask, bad)
    return fill_median(image, mask, bad)


def fill_median(image, fill, unusable):
    """`medmask` without input checks: replace ``fill`` pixels (finite or
    not) by the box median of the finite pixels outside ``fill | unusable``."""
    cleaned = image.astype(_float_dtype(image), copy=True)
    usable = ~(fill | unusable) & np.isfinite(image)
    rows, cols, values = _box_statistic(image, fill, ~usable, np.nanmedian)
    _fill_global(values, image, ~usable, "medmask")
    cleaned[rows, cols] = values
    return cleaned


def local_scatter(image, mask, bad=None):
    """Robust scatter (1.4826 x MAD) of the usable pixels in the same boxes
    `medmask` uses, per masked pixel; an honest error for a replaced value.

    Returns a float64 array, zero outside ``mask``.
    """
    image, mask, bad = _check(image, mask, bad)

    def mad_std(values, axis):
        median = np.nanmedian(values, axis=axis, keepdims=True)
        return 1.4826 * np.nanmedian(np.abs(values - median), axis=axis)

    rows, cols, values = _box_statistic(image, mask, bad, mad_std)
    usable = image[~(mask | bad)]
    usable = usable[np.isfinite(usable)]
    if usable.size:
        global_scatter = 1.4826 * np.median(np.abs(usable - np.median(usable)))
        values = np.where(np.isfinite(values), values, global_scatter)
    out = np.zeros(image.shape)
    out[rows, cols] = values
    return out


def biharmonic(image, mask, bad=None):
    """Replace masked pixels by biharmonic inpainting (`skimage.restoration.inpaint_biharmonic`).

    Bad pixels are filled for the solve (so they do not act as sources) but
    keep their original values in the result.
    """
    from skimage.restoration import inpaint_biharmonic

    image, mask, bad = _check(image, mask, bad)
    cleaned = image.astype(_float_dtype(image), copy=True)
    if not mask.any():
        return cleaned
    holes = mask | bad  # bad pixels include the non-finite ones
    if holes.all():
        _fill_global(np.full(mask.sum(), np.nan), image, holes, "biharmonic")
        cleaned[mask] = 0.0
        return cleaned
    filled = inpaint_biharmonic(np.where(holes, 0.0, image.astype(np.float64)), holes, split_into_regions=True)
    cleaned[mask] = filled[mask]
    return cleaned


def _float_dtype(image):
    return np.float64 if image.dtype == np.float64 else np.float32


def _fill_global(values, image, unusable, method):
    missing = ~np.isfinite(values)
    if missing.any():
        usable = image[~unusable & np.isfinite(image)]
        fallback = float(np.median(usable)) if usable.size else 0.0
        warnings.warn(
            f"{method}: {missing.sum()} masked pixel(s) have no usable neighbour within "
            f"{2 * _MAX_HALF + 1}x{2 * _MAX_HALF + 1}; using {fallback:g}",
            AstropyUserWarning,
        )
        values[missing] = fallback


def _check(image, mask, bad):
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got {image.ndim}-D")
    if mask.shape != image.shape:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape}")
    bad = np.zeros(image.shape, dtype=bool) if bad is None else np.asarray(bad, dtype=bool)
    if bad.shape != image.shape:
        raise ValueError(f"bad-pixel mask shape {bad.shape} does not match image shape {image.shape}")
    bad = bad | ~np.isfinite(image)
    return image, mask & ~bad, bad

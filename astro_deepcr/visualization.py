# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Looking at cosmic-ray masks: quick-look pictures and DS9 region files.

`plot_mask` draws a mask over an image on a matplotlib axes (for notebooks);
`write_quicklook` writes a PNG with the whole image, zoomed cutouts of the
largest cosmic rays and of the brightest sources (where false positives
hide), and the numbers of `mask_statistics`; given the saturated pixels, the
"largest cosmic rays" leave out objects within 3 px of them (bleed trails and
star rims are not cosmic rays) and the cutouts outline the saturation
protection zone (`astro_deepcr.bright`); `write_regions` (`astro_deepcr.regions`,
re-exported here) writes one DS9 polygon per connected cosmic ray.
`flagged_file_products` does the same for an HST
``_flt``/``_flc`` file whose ``DQ`` arrays carry the cosmic-ray bit.

matplotlib is optional: it is imported only by the plotting functions, which
raise an ImportError naming it when it is missing. Region files need numpy
and scipy only.
"""

import os

import numpy as np
from scipy import ndimage

from .dq import CALACS_CRBIT, CR_BIT
from .fitsutil import atomic_write
from .regions import cr_objects, cr_outline, read_regions, write_regions  # noqa: F401 (public here since 0.1)

__all__ = [
    "BRIGHT_FRACTION",
    "cr_objects",
    "cr_outline",
    "mask_statistics",
    "plot_mask",
    "write_quicklook",
    "write_regions",
    "read_regions",
    "flagged_file_products",
]

#: Fraction of the good pixels counted as "brightest" (galaxy nuclei, star cores) in `mask_statistics`.
BRIGHT_FRACTION = 0.005


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("plots need matplotlib, an optional dependency of astro_deepcr: "
                          "pip install matplotlib") from None


def _check(image, cr_mask, bad=None):
    image = np.asarray(image)
    cr_mask = np.asarray(cr_mask)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, not {image.ndim}-D")
    if cr_mask.shape != image.shape:
        raise ValueError(f"mask shape {cr_mask.shape} does not match image shape {image.shape}")
    bad = np.zeros(image.shape, bool) if bad is None else np.asarray(bad, dtype=bool)
    if bad.shape != image.shape:
        raise ValueError(f"bad-pixel mask shape {bad.shape} does not match image shape {image.shape}")
    return image, cr_mask.astype(bool), bad | ~np.isfinite(image)


# -- objects and numbers ------------------------------------------------------------------------------------------


def _near_saturated(saturated, shape):
    """Pixels within `astro_deepcr.bright.RIM_RADIUS` px of a saturated one (all False without ``saturated``)."""
    from .bright import RIM_RADIUS, protection_zone

    if saturated is None:
        return np.zeros(shape, bool)
    saturated = np.asarray(saturated, dtype=bool)
    if saturated.shape != tuple(shape):
        raise ValueError(f"saturated mask shape {saturated.shape} does not match image shape {tuple(shape)}")
    return protection_zone(saturated, RIM_RADIUS)


def _object_sizes(labels, exclude):
    """Pixel count of every object, 0 for those touching ``exclude``."""
    sizes = np.bincount(labels.ravel())[1:]
    sizes[np.unique(labels[exclude & (labels > 0)]) - 1] = 0
    return sizes


def mask_statistics(image, cr_mask, bad=None, saturated=None):
    """The numbers of a cosmic-ray mask that a quick look should show.

    Parameters
    ----------
    image : array-like, 2-D
    cr_mask : array-like of bool
    bad : array-like of bool, optional
        Pixels that do not count (DQ-flagged); non-finite pixels never count.
    saturated : array-like of bool, optional
        Saturated pixels, bleed trails included (`astro_deepcr.bright.saturated_pixels`).

    Returns
    -------
    numbers : dict
        ``n_cr_pixels``, ``n_cr_objects``, ``fraction_flagged`` (among good
        pixels), ``n_bright`` (good pixels in the brightest `BRIGHT_FRACTION`)
        and ``n_bright_flagged`` (of those, flagged: where false positives on
        star cores and galaxy nuclei show up), ``largest_object`` (pixels;
        objects within 3 px of a saturated pixel do not count: a flagged
        star rim or bleed trail is not a cosmic ray), ``n_saturated`` and
        ``n_rim_flagged`` (flagged pixels within 3 px of a saturated one;
        0 without ``saturated``).
    """
    image, cr_mask, bad = _check(image, cr_mask, bad)
    good = ~bad
    near = _near_saturated(saturated, image.shape)
    labels, n_objects = cr_objects(cr_mask)
    sizes = _object_sizes(labels, near)
    n_good = int(good.sum())
    bright = np.zeros(image.shape, bool)
    if n_good:
        n_bright = max(1, int(round(BRIGHT_FRACTION * n_good)))
        order = np.argsort(image[good], kind="stable")[-n_bright:]
        bright[tuple(index[order] for index in np.nonzero(good))] = True
    return {"n_cr_pixels": int(cr_mask.sum()), "n_cr_objects": n_objects,
            "fraction_flagged": float((cr_mask & good).sum() / n_good) if n_good else float("nan"),
            "n_bright": int(bright.sum()), "n_bright_flagged": int((bright & cr_mask).sum()),
            "largest_object": int(sizes.max()) if sizes.size else 0,
            "n_saturated": 0 if saturated is None else int(np.asarray(saturated, bool).sum()),
            "n_rim_flagged": int((cr_mask & near).sum())}


def _summary_text(numbers):
    rim = (f"; {numbers['n_rim_flagged']} within 3 px of the {numbers['n_saturated']} saturated pixels"
           if numbers.get("n_saturated") else "")
    return (f"{numbers['n_cr_pixels']} CR pixels in {numbers['n_cr_objects']} objects "
            f"({100 * numbers['fraction_flagged']:.3f} % of good pixels), largest {numbers['largest_object']} px; "
            f"{numbers['n_bright_flagged']} of the {numbers['n_bright']} brightest pixels flagged{rim}")


# -- pictures -----------------------------------------------------------------------------------------------------


def _norm(image, good, percentile=99.5):
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval, ZScaleInterval

    values = image[good] if good.any() else np.zeros(1)
    interval = ZScaleInterval() if percentile is None else PercentileInterval(percentile)
    lower, upper = interval.get_limits(values)
    if upper <= lower:
        upper = lower + 1.0
    return ImageNormalize(vmin=lower, vmax=upper, stretch=AsinhStretch(0.1), clip=True)


def plot_mask(image, cr_mask, ax=None, bad=None, title=None, color="red", alpha=0.7, origin=(0, 0)):
    """Draw ``cr_mask`` over ``image`` on a matplotlib axes (asinh stretch, z-scale limits).

    Parameters
    ----------
    image : array-like, 2-D
    cr_mask : array-like of bool
    ax : `matplotlib.axes.Axes`, optional
        Default: the current axes of pyplot.
    bad : array-like of bool, optional
        Pixels drawn in blue (DQ-flagged, not looked at).
    title : str, optional
    color : str
        Colour of the cosmic-ray pixels.
    alpha : float
    origin : (int, int)
        ``(y0, x0)`` of the image in a larger one (axis labels in its pixels).

    Returns
    -------
    ax : `matplotlib.axes.Axes`

    Examples
    --------
    >>> import matplotlib.pyplot as plt  # doctest: +SKIP
    >>> from astro_deepcr import DeepCR
    >>> from astro_deepcr.visualization import plot_mask
    >>> plot_mask(image, DeepCR().mask(image))  # doctest: +SKIP
    """
    _matplotlib()
    from matplotlib.colors import ListedColormap, to_rgba

    image, cr_mask, bad = _check(image, cr_mask, bad)
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.gca()
    y0, x0 = origin
    extent = (x0 - 0.5, x0 + image.shape[1] - 0.5, y0 - 0.5, y0 + image.shape[0] - 0.5)
    shown = np.where(bad, np.nan, image)
    ax.imshow(shown, origin="lower", cmap="gray", norm=_norm(image, ~bad & ~cr_mask, None), extent=extent,
              interpolation="nearest")
    # a mask far larger than the axes would be lost in resampling: show each block's maximum
    step = max(1, int(np.ceil(max(image.shape) / 1000)))
    for layer, layer_color in ((bad, "royalblue"), (cr_mask, color)):
        if not layer.any():
            continue
        pooled = layer if step == 1 else ndimage.maximum_filter(layer, size=step)
        ax.imshow(np.ma.masked_where(~pooled, pooled), origin="lower", extent=extent, interpolation="nearest",
                  cmap=ListedColormap([to_rgba(layer_color, alpha)]), vmin=0, vmax=1)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def _largest(labels, count, exclude):
    """The ``count`` largest objects not touching ``exclude`` (saturated rims and trails are not cosmic rays)."""
    sizes = _object_sizes(labels, exclude)
    order = [k for k in np.argsort(sizes, kind="stable")[::-1][:count] if sizes[k] > 0]
    boxes = ndimage.find_objects(labels)
    return [((boxes[k][0].start + boxes[k][0].stop) // 2, (boxes[k][1].start + boxes[k][1].stop) // 2,
             f"CR {k + 1}: {sizes[k]} px") for k in order]


def _brightest(image, good, count, separation=16):
    """Centres of the ``count`` brightest sources (5x5 median, local maxima ``separation`` apart)."""
    smooth = ndimage.median_filter(np.where(good, image, np.nan_to_num(np.median(image[good]))), size=5)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=2 * separation + 1)) & good
    ys, xs = np.nonzero(peaks)
    chosen = []
    for k in np.argsort(smooth[ys, xs], kind="stable")[::-1]:
        # a flat (saturated) top has several equal maxima: keep one per source
        if all(max(abs(ys[k] - ys[j]), abs(xs[k] - xs[j])) > separation for j in chosen):
            chosen.append(k)
        if len(chosen) == count:
            break
    return [(ys[k], xs[k], f"source at ({xs[k] + 1}, {ys[k] + 1})") for k in chosen]


def _cutout(center, shape, half):
    y, x = center
    y0, x0 = max(0, min(y - half, shape[0] - 2 * half)), max(0, min(x - half, shape[1] - 2 * half))
    return slice(y0, y0 + 2 * half), slice(x0, x0 + 2 * half)


def write_quicklook(path, image, cr_mask, bad=None, title="", n_cutouts=4, cutout_size=32, saturated=None):
    """Write a quick-look PNG of a cosmic-ray mask.

    Top: the whole image with the mask in red (DQ-flagged pixels in blue).
    Right: cutouts of the ``n_cutouts`` largest cosmic rays (objects within
    3 px of a saturated pixel left out) and of the ``n_cutouts`` brightest
    sources, each in its own stretch, so the cores of stars and galaxies,
    where false positives hide, can be checked; saturated pixels are
    outlined in cyan and the saturation protection zone
    (`astro_deepcr.bright.protection_zone`) in yellow.
    The numbers of `mask_statistics` are printed under the title.

    Parameters
    ----------
    path : str or path-like
        PNG file, written atomically.
    image, cr_mask, bad :
        As for `plot_mask`.
    title : str
    n_cutouts : int
    cutout_size : int
        Side of the cutouts in pixels.
    saturated : array-like of bool, optional
        Saturated pixels (`astro_deepcr.bright.saturated_pixels`).

    Returns
    -------
    numbers : dict
        `mask_statistics` of the image.
    """
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image, cr_mask, bad = _check(image, cr_mask, bad)
    numbers = mask_statistics(image, cr_mask, bad, saturated)
    labels, _ = cr_objects(cr_mask)
    near = _near_saturated(saturated, image.shape)
    saturated = None if saturated is None else np.asarray(saturated, dtype=bool)
    zone = _protection(saturated)
    half = max(4, min(cutout_size, *image.shape) // 2)
    rows = [("largest cosmic rays", _largest(labels, n_cutouts, near)),
            ("brightest sources", _brightest(image, ~bad, n_cutouts) if (~bad).any() else [])]
    figure = Figure(figsize=(4 + 2.2 * n_cutouts, 6.5), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, n_cutouts + 2)
    plot_mask(image, cr_mask, ax=figure.add_subplot(grid[:, :2]), bad=bad, title="whole image")
    for row, (label, centres) in enumerate(rows):
        for column in range(n_cutouts):
            ax = figure.add_subplot(grid[row, column + 2])
            ax.set_xticks([])
            ax.set_yticks([])
            if column >= len(centres):
                ax.set_axis_off()
                continue
            y, x, name = centres[column]
            box = _cutout((y, x), image.shape, half)
            plot_mask(image[box], cr_mask[box], ax=ax, bad=bad[box], origin=(box[0].start, box[1].start))
            flagged = int(cr_mask[box].sum())
            if zone is not None and zone[box].any():
                extent = dict(origin="lower", extent=(box[1].start - 0.5, box[1].stop - 0.5, box[0].start - 0.5,
                                                      box[0].stop - 0.5))
                ax.contour(saturated[box], levels=[0.5], colors="cyan", linewidths=0.6, **extent)
                ax.contour(zone[box], levels=[0.5], colors="yellow", linewidths=0.6, **extent)
            ax.set_title(f"{name}\n{flagged} flagged in cutout", fontsize=7)
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
    figure.suptitle(f"{title}\n{_summary_text(numbers)}" if title else _summary_text(numbers), fontsize=9)
    with atomic_write(path) as tmp_path:
        figure.savefig(tmp_path, dpi=90, format="png")
    return numbers


def _protection(saturated):
    from .bright import protection_zone

    return None if saturated is None or not np.any(saturated) else protection_zone(saturated)


# -- HST files flagged in DQ --------------------------------------------------------------------------------------


def flagged_file_products(path, outdir=None, crbit=CR_BIT, plot=True, regions=True, bad_bits=None):
    """Quick-look PNGs and DS9 regions of an ``_flt``/``_flc`` file flagged by ``astro-deepcr flag``.

    The cosmic rays are the pixels of ``DQ,N`` with ``crbit`` set; other
    non-zero DQ bits (or those of ``bad_bits``) are drawn as bad pixels.

    Parameters
    ----------
    path : str
        The flagged file (read only).
    outdir : str, optional
        Folder of the products (default: the file's folder).
    crbit : int
    plot, regions : bool
        Which products to write.
    bad_bits : int, optional
        DQ bits drawn as bad (default: every bit except ``crbit`` and 8192).

    Returns
    -------
    written : list of str
        ``<root>_sci<N>.png`` and ``<root>_sci<N>.reg`` for each ``SCI,N``.
    """
    from astropy.io import fits

    from .bright import SATURATION_BITS

    outdir = os.path.dirname(os.path.abspath(path)) if outdir is None else os.fspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    root = os.path.basename(os.fspath(path)).split(".fits")[0]
    bad_value = (0xFFFF & ~(int(crbit) | CALACS_CRBIT)) if bad_bits is None else int(bad_bits)
    written = []
    with fits.open(path, memmap=False) as hdul:
        for sci in (hdu for hdu in hdul if hdu.name == "SCI" and hdu.data is not None):
            if ("DQ", sci.ver) not in hdul:
                raise ValueError(f"{path} has SCI,{sci.ver} but no DQ,{sci.ver}")
            dq = np.asarray(hdul["DQ", sci.ver].data).astype(np.int64)
            cr_mask = (dq & int(crbit)) != 0
            stem = os.path.join(outdir, f"{root}_sci{sci.ver}")
            if plot:
                write_quicklook(stem + ".png", np.asarray(sci.data, dtype=np.float32), cr_mask,
                                bad=(dq & bad_value) != 0, saturated=(dq & SATURATION_BITS) != 0,
                                title=f"{os.path.basename(path)} SCI,{sci.ver}: DQ bit {crbit}")
                written.append(stem + ".png")
            if regions:
                write_regions(stem + ".reg", cr_mask)
                written.append(stem + ".reg")
    return written

#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Every zoo mask model and LACosmic on real ground-based CCD frames.

The frames are not shipped with astro_deepcr; they are test files of packages
it installs (see `FRAMES`), loaded where installed:

``saao``
    ``ccdproc/tests/data/a8280271.fits`` (ccdproc, an install requirement):
    SAAO 1.0 m, STE3 CCD, 150 s, raw 16-bit ADU with overscan. Reduced here:
    overscan (``BIASSEC``) subtracted, trimmed to ``TRIMSEC``, then the
    unexposed top rows cut (see `_exposed_rows`). No flat field exists for it.
    Gain 1.9 e-/ADU and read noise 5.0 e- from its header.
``gmos``
    ``astroscrappy/tests/data/gmos.fits`` (astroscrappy, in the ``test`` extra):
    Gemini-South GMOS-S, 90 s long-slit spectrum of the standard LTT7379, a
    200x150 cut-out reduced with DRAGONS, already in electrons (its header has
    the ``ADUTOELE`` stamp). The cut-out's headers carry no gain nor read
    noise: the read noise, 4.24 e-, is ``sqrt(median(VAR - SCI))`` of its own
    variance plane; the gain used to give the ``adu`` model ADU, 1.933 e-/ADU,
    is the one astroscrappy's own test of this file uses.
``kpno``
    IRAF's test image ``dev$pix`` (Debian's ``iraf`` package, else ``$iraf``;
    read by `read_iraf_image`): M51, B, 600 s, KPNO 1987 (RCA CCD, 512x512),
    reduced by IRAF's ccdproc (overscan, trim, flat field; ``CR-FLAG = 0``:
    its cosmic rays are intact). Seeing-limited, stars of about 2.5 px FWHM
    (IRAF's daophot examples use ``fwhmpsf = 2.5``). Its header carries no gain
    nor read noise, and the daophot examples' ``epadu = 14``, ``readnoise = 75``
    do not fit its noise (they predict a sky sigma of 5.6 ADU; it is 2.1): the
    gain, 8.7 e-/ADU, is the sky's mean over its clipped variance (39.5 ADU,
    sigma 2.13 ADU in the 60x60 px corner at the origin), that is the sky
    noise taken as all photon noise, so the read noise is 0 (the frame's
    neighbouring pixels correlate by 0.28: some smoothing in its reduction
    lowered the noise, which no split into gain and read noise can undo).

Per frame and method (LACosmic = astroscrappy.detect_cosmics with its
defaults, sigclip 4.5, objlim 5, and the frame's gain and read noise; every
mask model of the zoo at its card's threshold, fed the units of its card):

* ``flagged``: pixels flagged;
* ``away``: flagged pixels farther than 2 px from every LACosmic CR pixel;
* ``bright``: flagged pixels among the brightest 0.5 % of the frame, defined
  as the pixels whose 5x5-median-filtered, background-subtracted value is in
  the top 0.5 % of the frame (the median filter removes most cosmic rays, so
  these are star cores, sky lines, galaxy nuclei; the background is the
  median of 32x32 px cells, interpolated), less the pixels within 2 px of a
  LACosmic CR (a CR on a bright source is no false positive; LACosmic's own
  count is 0 by construction);
* ``LA objects``: LACosmic's CR objects (8-connected components of its mask)
  that have at least one pixel flagged by the method;
* ``LA obj >=5sig``: the same, counting only LACosmic objects whose peak is
  at least 5 sigma above the background (sigma: 1.4826 x the MAD of the
  background-subtracted frame); a breakdown, not a replacement, of the
  previous column.

::

    python benchmarks/ground_frames.py [--png-dir docs/_static] [--threads 1]

prints the table (reST) and writes ``ground_<frame>.png`` per frame.
"""

import argparse
import importlib.util
import pathlib
import re
import warnings

import numpy as np
from astropy.io import fits
from scipy import ndimage

__all__ = ["FRAMES", "frame_path", "available_frames", "load_frame", "background", "bright_pixels",
           "significant_objects", "lacosmic", "model_mask", "measure", "run_frame", "print_table", "plot_frame", "main"]

BRIGHT_FRACTION = 0.005
BACKGROUND_BOX = 32
SIGNIFICANT_SIGMA = 5.0
BRIGHT_MEDIAN_BOX = 5
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)

# frame name -> (package, path inside it); "IRAF" is IRAF's own tree (`iraf_roots`), not a Python package
FRAMES = {
    "saao": ("ccdproc", "tests/data/a8280271.fits"),
    "gmos": ("astroscrappy", "tests/data/gmos.fits"),
    "kpno": ("IRAF", "dev/pix.imh"),
}
GMOS_GAIN = 1.933  # e-/ADU, as astroscrappy/tests/test_gmos.py uses for this file
KPNO_GAIN = 8.7  # e-/ADU: dev$pix's sky mean over its variance (the module docstring)
KPNO_READNOISE = 0.0  # e-: the sky's noise is all accounted for as photon noise at KPNO_GAIN
# IRAF pixel types of an OIF image: TY_SHORT, TY_INT / TY_LONG, TY_REAL, TY_DOUBLE (IRAF's <iraf.h>)
_IRAF_PIXTYPES = {3: ">i2", 4: ">i4", 5: ">i4", 6: ">f4", 7: ">f8"}
# a card of the user area: 80 characters, then a newline; a keyword, then "= " (or HISTORY / COMMENT)
_IRAF_CARD = re.compile(r"((?:[A-Z0-9_-]{1,8} *= |(?:HISTORY|COMMENT) )[ -~]{70,72})\n")


def iraf_roots():
    """Folders where an IRAF tree may be: ``$iraf``, Debian's ``/usr/lib/iraf``, IRAF's default ``/iraf/iraf``."""
    import os

    return [pathlib.Path(root) for root in (os.environ.get("iraf"), "/usr/lib/iraf", "/iraf/iraf") if root]


def read_iraf_image(path):
    """``(data, header)`` of an IRAF OIF image (``.imh`` header, its ``.pix`` beside it), version 2, big-endian.

    Reads what IRAF's own test image needs: the ``imhv2`` header's pixel type
    and axis lengths, its FITS cards (the user area, one card per line) and
    the pixels at the end of the pixel file. The data's minimum and maximum
    must equal the header's ``IRAF-MIN`` / ``IRAF-MAX`` where present, which
    catches a wrong offset or byte order.

    Raises
    ------
    ValueError
        Not a version-2 OIF image, a pixel type other than those of
        ``_IRAF_PIXTYPES``, padded lines, or data that disagree with the header.
    """
    path = pathlib.Path(path)
    raw = path.read_bytes()
    if raw[:5] != b"imhv2":
        raise ValueError(f"{path}: not an IRAF OIF version-2 header (magic {raw[:5]!r})")
    words = np.frombuffer(raw[6:6 + 4 * 18], dtype=">i4")  # after the 6-byte magic: header length, pixel type, ...
    pixtype, ndim = int(words[1]), int(words[3])
    lengths, physical = words[4:4 + ndim], words[11:11 + ndim]  # seven axis lengths, then seven physical ones
    if pixtype not in _IRAF_PIXTYPES or ndim != 2 or not np.array_equal(lengths, physical):
        raise ValueError(f"{path}: pixel type {pixtype}, {ndim} axes, lengths {lengths.tolist()} / physical "
                         f"{physical.tolist()}: only unpadded 2-D images are read")
    header = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IRAF's cards are not all FITS-standard
        for card in _IRAF_CARD.findall(raw.decode("latin-1")):
            header.append(fits.Card.fromstring(card))
    dtype = np.dtype(_IRAF_PIXTYPES[pixtype])
    pixels = path.with_suffix(".pix").read_bytes()
    count = int(np.prod(lengths)) * dtype.itemsize
    if pixels[:5] != b"impv2" or len(pixels) < count:
        raise ValueError(f"{path.with_suffix('.pix')}: not the OIF pixel file of {path.name}")
    data = np.frombuffer(pixels[len(pixels) - count:], dtype=dtype).reshape(lengths[::-1]).astype(np.float64)
    for key, value in (("IRAF-MIN", data.min()), ("IRAF-MAX", data.max())):
        if key in header and not np.isclose(float(header[key]), value, rtol=1e-5):
            raise ValueError(f"{path}: data {key[5:].lower()} {value} differs from the header's {header[key]}")
    return data, header


def frame_path(name):
    """Path of frame ``name`` inside its installed package, or None where it is not installed."""
    package, relative = FRAMES[name]
    if package == "IRAF":
        return next((root / relative for root in iraf_roots() if (root / relative).exists()), None)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.exists() else None


def available_frames():
    """Names of the frames whose package is installed."""
    return [name for name in FRAMES if frame_path(name) is not None]


def _section(header, key):
    return header[key].replace(" ", "")


def _exposed_rows(image):
    """Row slice without the unexposed rows at the edges (row median below half the frame's) and one row margin."""
    row_median = np.median(image, axis=1)
    exposed = row_median > 0.5 * np.median(image)
    exposed = ndimage.binary_erosion(exposed, border_value=1)
    rows = np.flatnonzero(exposed)
    return slice(rows[0], rows[-1] + 1)


def _load_saao(path):
    import ccdproc
    from astropy.nddata import CCDData

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the raw file's header has a non-standard "COMMENT =" card
        ccd = CCDData.read(path, unit="adu")
    header = ccd.header
    ccd = ccdproc.subtract_overscan(ccd, fits_section=_section(header, "BIASSEC"), overscan_axis=1,
                                    add_keyword=False)
    ccd = ccdproc.trim_image(ccd, fits_section=_section(header, "TRIMSEC"), add_keyword=False)
    adu = np.asarray(ccd.data, dtype=np.float64)
    adu = adu[_exposed_rows(adu)]
    gain = float(header["GAIN"])
    return dict(electrons=adu * gain, gain=gain, readnoise=float(header["RDNOISE"]), header=header,
                note="overscan-subtracted, trimmed, unexposed rows cut; no flat field")


def _load_gmos(path):
    with fits.open(path) as hdul:
        header = hdul[0].header.copy()
        electrons = hdul["SCI"].data.astype(np.float64)
        variance = hdul["VAR"].data.astype(np.float64)
    if "ADUTOELE" not in header:
        raise ValueError(f"{path}: expected a DRAGONS frame in electrons (ADUTOELE stamp)")
    readnoise = float(np.sqrt(np.median(variance - electrons)))
    return dict(electrons=electrons, gain=GMOS_GAIN, readnoise=readnoise, header=header,
                note="DRAGONS-reduced cut-out in electrons; read noise from VAR, gain from astroscrappy's test")


def _load_kpno(path):
    adu, header = read_iraf_image(path)
    header["EXPTIME"] = (header["ITIME"], "ITIME: dev$pix's integration time")
    header["TELESCOP"] = ("KPNO", "IRAF's dev$pix: M51, B, 1987")
    return dict(electrons=adu * KPNO_GAIN, gain=KPNO_GAIN, readnoise=KPNO_READNOISE, header=header,
                note="IRAF dev$pix as IRAF's ccdproc left it; gain and read noise from its sky noise")


def _source(name):
    package = FRAMES[name][0]
    return "IRAF (Debian's iraf package, or $iraf)" if package == "IRAF" else f"the package {package!r}"


def load_frame(name):
    """Frame ``name`` as a dict: ``electrons`` (2-D float64), ``gain`` (e-/ADU), ``readnoise`` (e-), ``header``.

    Raises
    ------
    FileNotFoundError
        The package that ships the frame is not installed.
    """
    path = frame_path(name)
    if path is None:
        raise FileNotFoundError(f"frame {name!r} needs {_source(name)} installed")
    frame = {"saao": _load_saao, "gmos": _load_gmos, "kpno": _load_kpno}[name](path)
    frame.update(name=name, path=str(path))
    return frame


def background(electrons, box=BACKGROUND_BOX):
    """Median of each ``box`` x ``box`` mesh cell, interpolated bilinearly between the cell centres."""
    ny, nx = electrons.shape
    cells_y, cells_x = max(ny // box, 1), max(nx // box, 1)
    edges_y = np.linspace(0, ny, cells_y + 1).astype(int)
    edges_x = np.linspace(0, nx, cells_x + 1).astype(int)
    mesh = np.array([[np.median(electrons[y0:y1, x0:x1]) for x0, x1 in zip(edges_x[:-1], edges_x[1:])]
                     for y0, y1 in zip(edges_y[:-1], edges_y[1:])])
    rows = (np.arange(ny) + 0.5) * cells_y / ny - 0.5
    columns = (np.arange(nx) + 0.5) * cells_x / nx - 0.5
    grid = np.meshgrid(rows, columns, indexing="ij")
    return ndimage.map_coordinates(mesh, grid, order=1, mode="nearest")


def _background_subtracted(electrons):
    return electrons - background(electrons)


def _bright_score(electrons):
    return ndimage.median_filter(_background_subtracted(electrons), size=BRIGHT_MEDIAN_BOX, mode="nearest")


def bright_pixels(electrons, fraction=BRIGHT_FRACTION, cosmic_rays=None):
    """The brightest ``fraction`` of the frame, less the pixels within 2 px of ``cosmic_rays``.

    Bright: the top ``fraction`` of the 5x5 median of the background-subtracted
    image. A cosmic ray that lands on a bright source, or whose track is wide
    enough to survive the median, is not a false positive: the pixels within
    2 px of ``cosmic_rays`` (LACosmic's mask in the table) are left out.
    """
    score = _bright_score(electrons)
    bright = score >= np.quantile(score, 1.0 - fraction)
    if cosmic_rays is not None:
        bright &= ~ndimage.binary_dilation(cosmic_rays, structure=EIGHT_CONNECTED, iterations=2)
    return bright


def significant_objects(electrons, labels, count, nsigma=SIGNIFICANT_SIGMA):
    """Labels of the objects whose peak is ``nsigma`` above the background (sigma: 1.4826 MAD of the frame)."""
    residual = _background_subtracted(electrons)
    sigma = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    if count == 0:
        return np.zeros(0, dtype=int)
    peaks = ndimage.maximum(residual, labels, np.arange(1, count + 1))
    return np.flatnonzero(np.asarray(peaks) >= nsigma * sigma) + 1


def lacosmic(frame):
    """astroscrappy's mask with its defaults and the frame's read noise (electrons in, so gain 1)."""
    import astroscrappy

    mask, _ = astroscrappy.detect_cosmics(frame["electrons"].astype(np.float32), gain=1.0,
                                          readnoise=frame["readnoise"])
    return np.asarray(mask, dtype=bool)


def model_mask(frame, model, threshold=None, device="cpu", threads=None):
    """The mask of zoo model ``model`` at ``threshold`` (default: its card's), fed in its card's units."""
    from astro_deepcr import DeepCR, get_model

    spec = get_model(model, kind="mask")
    if spec.units == "electron":
        image = frame["electrons"]
    elif spec.units == "adu":
        image = frame["electrons"] / frame["gain"]
    else:
        raise ValueError(f"model {spec.name!r} has units {spec.units!r}; only 'electron' and 'adu' are handled")
    return DeepCR(spec, device=device, threads=threads, progress=False).mask(image, threshold=threshold)


def measure(mask, bright, la_labels, la_significant):
    """Row of the table for one method's ``mask``."""
    hit = np.unique(la_labels[mask & (la_labels > 0)])
    near_la = ndimage.binary_dilation(la_labels > 0, structure=EIGHT_CONNECTED, iterations=2)
    return dict(flagged=int(mask.sum()), away=int((mask & ~near_la).sum()), bright=int((mask & bright).sum()),
                la_found=int(hit.size),
                la_total=int(la_labels.max()), la_significant_found=int(np.isin(la_significant, hit).sum()),
                la_significant=int(la_significant.size))


def run_frame(frame, models, threshold=None, threads=None):
    """Masks and table rows of LACosmic and every model in ``models`` on one frame."""
    la_mask = lacosmic(frame)
    bright = bright_pixels(frame["electrons"], cosmic_rays=la_mask)
    la_labels, la_count = ndimage.label(la_mask, structure=EIGHT_CONNECTED)
    la_significant = significant_objects(frame["electrons"], la_labels, la_count)
    masks = {"LACosmic": la_mask}
    for model in models:
        masks[model] = model_mask(frame, model, threshold=threshold, threads=threads)
    rows = {method: measure(mask, bright, la_labels, la_significant) for method, mask in masks.items()}
    return dict(masks=masks, rows=rows, bright=bright, la_labels=la_labels)


def _describe(frame):
    header = frame["header"]
    ny, nx = frame["electrons"].shape
    return (f"{frame['name']}: {header.get('TELESCOP')}, {header.get('INSTRUME')}, EXPTIME {header.get('EXPTIME')} s, "
            f"{nx}x{ny} px, gain {frame['gain']:g} e-/ADU, read noise {frame['readnoise']:.2f} e- "
            f"({frame['note']})")


def print_table(results, bright_counts):
    """reST simple table of every frame and method."""
    head = (f"{'frame':6s} {'method':20s} {'flagged':>8s} {'away':>6s} {'bright':>12s} {'LA objects':>11s} "
            f"{'LA obj >=5sig':>13s}")
    rule = " ".join("=" * width for width in (6, 20, 8, 6, 12, 11, 13))
    print(rule)
    print(head)
    print(rule)
    for name, result in results.items():
        for method, row in result["rows"].items():
            bright = f"{row['bright']}/{bright_counts[name]}"
            found = f"{row['la_found']}/{row['la_total']}"
            significant = f"{row['la_significant_found']}/{row['la_significant']}"
            print(f"{name:6s} {method:20s} {row['flagged']:8d} {row['away']:6d} {bright:>12s} {found:>11s} "
                  f"{significant:>13s}")
    print(rule)


def _crop(center, shape, size=48):
    half = size // 2
    y0 = int(np.clip(center[0] - half, 0, max(shape[0] - size, 0)))
    x0 = int(np.clip(center[1] - half, 0, max(shape[1] - size, 0)))
    return slice(y0, y0 + size), slice(x0, x0 + size)


def _missed_object(result, model):
    """Centre of the brightest LACosmic object that ``model`` misses, or None."""
    labels = result["la_labels"]
    missed = np.setdiff1d(np.arange(1, labels.max() + 1), labels[result["masks"][model] & (labels > 0)])
    if missed.size == 0:
        return None
    return np.argwhere(labels == missed[0])[0]


def plot_frame(frame, result, path, default_model):
    """Cut-outs (brightest source, LACosmic's largest CR, a CR the default misses) with every method's mask."""
    from astro_deepcr.evaluation.plots import _pyplot

    plt = _pyplot()
    image = frame["electrons"]
    score = np.where(result["bright"], _bright_score(image), -np.inf)
    labels = result["la_labels"]
    sizes = np.bincount(labels.ravel())[1:]
    cuts = [("brightest source", np.unravel_index(np.argmax(score), image.shape))]
    if sizes.size:
        largest = ndimage.center_of_mass(labels > 0, labels, int(np.argmax(sizes)) + 1)
        cuts.append(("largest LACosmic CR", np.round(largest).astype(int)))
    missed = _missed_object(result, default_model)
    if missed is not None:
        cuts.append((f"missed by {default_model}", missed))
    methods = list(result["masks"])
    fig, axes = plt.subplots(len(cuts), len(methods) + 1, figsize=(1.25 * (len(methods) + 1), 1.45 * len(cuts)),
                             squeeze=False)
    for row, (label, centre) in zip(axes, cuts):
        cut = _crop(centre, image.shape)
        stamp = image[cut]
        low, high = np.percentile(stamp[~result["masks"]["LACosmic"][cut]], [5, 99.5])
        for ax in row:
            ax.imshow(stamp, origin="lower", cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(label, fontsize=6)
        for ax, method in zip(row[1:], methods):
            mask = result["masks"][method][cut]
            overlay = np.zeros(mask.shape + (4,))
            overlay[mask] = (1.0, 0.1, 0.1, 0.85)
            ax.imshow(overlay, origin="lower", interpolation="nearest")
            if result["bright"][cut].any():
                ax.contour(result["bright"][cut], levels=[0.5], colors="cyan", linewidths=0.5)
    axes[0, 0].set_title("image", fontsize=6)
    for ax, method in zip(axes[0, 1:], methods):
        ax.set_title(method + (" (default)" if method == default_model else ""), fontsize=5)
    fig.suptitle(f"{frame['name']}: red = flagged, cyan = brightest 0.5 % (48x48 px cut-outs)", fontsize=7)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--png-dir", help="write ground_<frame>.png here")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--threshold", type=float, default=None,
                        help="one threshold for every model instead of each card's")
    args = parser.parse_args(argv)
    from astro_deepcr import list_models
    from astro_deepcr.zoo import GENERIC_DEFAULT_MODEL

    models = list_models("mask")
    results, bright_counts = {}, {}
    for name in FRAMES:
        if frame_path(name) is None:
            print(f"{name}: skipped, {_source(name)} not installed")
            continue
        frame = load_frame(name)
        print(_describe(frame))
        results[name] = run_frame(frame, models, threshold=args.threshold, threads=args.threads)
        bright_counts[name] = int(results[name]["bright"].sum())
        if args.png_dir:
            plot_frame(frame, results[name], pathlib.Path(args.png_dir) / f"ground_{name}.png",
                       GENERIC_DEFAULT_MODEL)
    print(f"\nthreshold: {'each card' if args.threshold is None else args.threshold}; "
          f"generic default model: {GENERIC_DEFAULT_MODEL}\n")
    print_table(results, bright_counts)
    return results


if __name__ == "__main__":
    main()

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astro-deepcr demo``: deepCR on a real HST exposure, with numbers and a picture.

`run_demo` runs on the ACS/HRC 47 Tuc exposure of `astro_deepcr.datasets`
(a crowded field with saturated stars: where a cosmic-ray detector's false
positives show), chooses the model from its header as the other commands do
(`astro_deepcr.detection.choose_model`), respects its ``DQ`` array as
``astro-deepcr flag`` does, and writes the mask, a quick-look PNG and a DS9
region file. A real frame has no ground truth, so the numbers are counts:
cosmic-ray pixels and objects, the fraction flagged, and how many of the
brightest pixels were flagged. The simulated demo with known cosmic rays
(true- and false-positive rates) is ``astro-deepcr demo --simulated``,
provided by `astro_deepcr.evaluation.simulated_demo`.
"""

import os

import numpy as np
from astropy import log
from astropy.io import fits

from .fitsutil import atomic_write

__all__ = ["run_demo", "summary_lines"]

DEMO_FILES = ("demo.fits", "demo.png", "demo.reg")


def run_demo(outdir="demo_out", model=None, threshold=None, device=None, path=None, plot=True, star_shape=False):
    """Detect the cosmic rays of the real ACS/HRC example exposure; write FITS, PNG and DS9 regions.

    Parameters
    ----------
    outdir : str
        Output folder (created): ``demo.fits`` (``SCI`` in electrons, ``DQ``
        with bit 4096 set on the cosmic rays, ``CRMASK``, ``CRPROB``; the
        provenance cards in the primary header), ``demo.png`` (quick look,
        `astro_deepcr.visualization.write_quicklook`) and ``demo.reg`` (one
        DS9 polygon per cosmic ray).
    model : str, optional
        deepCR-mask model; default: chosen from the header (ACS/HRC has no
        card of its own: ``ground``, HST's model for a camera without a card,
        with a warning).
    threshold : float, optional
        Probability threshold; default the model's.
    device : str, optional
    path : str, optional
        Another ``_flt``/``_flc`` file with ``SCI,1``/``DQ,1`` in electrons
        (default `astro_deepcr.datasets.hst_example_path`).
    plot : bool
        Write ``demo.png`` (needs matplotlib).
    star_shape : bool
        Also the star-shape test (`astro_deepcr.starshape`; off by default, as
        at every door), with the read noise of the ``SCI,1`` header.

    Returns
    -------
    summary : dict
        ``model``, ``reason``, ``threshold``, the counts of
        `astro_deepcr.visualization.mask_statistics` (``n_cr_pixels``,
        ``n_cr_objects``, ``fraction_flagged``, ``n_bright``,
        ``n_bright_flagged``, ``largest_object``), ``n_bad`` (DQ-excluded
        pixels), ``star_shape`` (the test's ``DCRSTAR`` note, or ``"off"``),
        ``input``, ``description`` (instrument, filter, target, exposure time
        from the header) and the written ``fits``, ``png`` (None without
        ``plot``) and ``regions``.

    Raises
    ------
    FileNotFoundError
        The example exposure is not installed (spherical_geometry).
    ValueError
        ``star_shape`` with a file whose headers give no read noise.
    """
    from .datasets import load_hst_example
    from .detection import choose_model, detect
    from .dq import CR_BIT, set_crbit
    from .provenance import record_run
    from .units import header_exptime, star_shape_readnoise
    from .visualization import mask_statistics, write_quicklook, write_regions

    example = load_hst_example(path)
    spec, reason = choose_model(example.primary_header, model=model)
    readnoise = (star_shape_readnoise(example.sci_header, example.primary_header, f"{example.path}[SCI,1]")
                 if star_shape else None)
    found = detect(example.science, spec=spec, reason=reason, threshold=threshold, dq=example.dq, device=device,
                   exptime=header_exptime(example.sci_header, example.primary_header), progress=False,
                   star_shape=star_shape, readnoise=readnoise)
    cr_mask, probability, bad, threshold = found.cr_mask, found.probability, found.bad, found.threshold
    numbers = mask_statistics(example.science, cr_mask, bad, saturated=found.saturated)
    os.makedirs(outdir, exist_ok=True)
    fits_path, png_path, reg_path = (os.path.join(outdir, name) for name in DEMO_FILES)
    primary = fits.PrimaryHDU(header=example.primary_header)
    record_run(primary.header, "demo", history=f"demo: {numbers['n_cr_pixels']} CR px (DCR* keys)",
               **found.provenance, inpaint=None, n_cr=numbers["n_cr_pixels"], crbit=CR_BIT)
    dq = set_crbit(example.dq.copy(), cr_mask, CR_BIT)
    hdul = fits.HDUList([primary, fits.ImageHDU(example.science, header=example.sci_header, name="SCI"),
                         fits.ImageHDU(dq, name="DQ"), fits.ImageHDU(cr_mask.astype(np.uint8), name="CRMASK"),
                         fits.ImageHDU(probability.astype(np.float32), name="CRPROB")])
    with atomic_write(fits_path) as tmp_path:
        hdul.writeto(tmp_path, overwrite=True, output_verify="silentfix")
    write_regions(reg_path, cr_mask)
    if plot:
        name = os.path.basename(example.path)
        title = (f"{name} ({example.primary_header.get('INSTRUME', '?')}/{example.primary_header.get('DETECTOR', '?')}"
                 f" {example.primary_header.get('FILTER1', '')}): deepCR {spec.name}, threshold {threshold:g}")
        write_quicklook(png_path, example.science, cr_mask, bad=bad, title=title, saturated=found.saturated)
    log.info(f"demo: {numbers['n_cr_pixels']} cosmic-ray pixels in {numbers['n_cr_objects']} objects "
             f"({spec.name}: {reason})")
    header = example.primary_header
    words = [str(header.get(key, "")).strip() for key in ("INSTRUME", "DETECTOR", "FILTER1", "TARGNAME")]
    description = f"{' '.join(filter(None, words))}, {float(header.get('EXPTIME', float('nan'))):g} s"
    return {"model": spec.name, "reason": reason, "description": description, "threshold": threshold, **numbers,
            "n_bad": int(bad.sum()), "star_shape": found.star_shape, "input": example.path, "fits": fits_path,
            "png": png_path if plot else None, "regions": reg_path}


def summary_lines(summary):
    """The lines ``astro-deepcr demo`` prints for a `run_demo` summary (without the written files)."""
    return [f"{summary['input']} ({summary['description']}): {summary['n_bad']} DQ-flagged pixels excluded",
            f"model {summary['model']} ({summary['reason']}), threshold {summary['threshold']:g}",
            f"{summary['n_cr_pixels']} cosmic-ray pixels in {summary['n_cr_objects']} objects "
            f"({100 * summary['fraction_flagged']:.3f} % of the good pixels, "
            f"largest {summary['largest_object']} px); "
            f"{summary['n_bright_flagged']} of the {summary['n_bright']} brightest pixels flagged"] + (
        [f"star-shape test: {summary['star_shape']}"] if summary.get("star_shape", "off") != "off" else [])

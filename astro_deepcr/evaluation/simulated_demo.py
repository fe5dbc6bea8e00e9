# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The simulated demo: an exposure with known cosmic rays, so rates can be given.

``astro-deepcr demo`` runs on a real frame (`astro_deepcr.demo`); this
module, a plug-in of the command line tool (`astro_deepcr.cli.PLUGINS`),
adds the options of ``astro-deepcr demo --simulated`` (``--shape``,
``--field``, ``--exptime``, ``--seed``) and runs `run_simulated_demo`. It
lives in `astro_deepcr.evaluation` because it needs the simulator (which the
production modules never import) and the metrics; training never imports
evaluation.
"""

import os

import numpy as np

__all__ = ["run_simulated_demo", "add_subparser"]

FIELDS = ("extragalactic", "globular", "resolved")


def _overlay_png(path, image, cr_mask, truth, title):
    """Image in an asinh stretch, detections in red, true cosmic rays outlined in cyan."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    norm = ImageNormalize(image, interval=ZScaleInterval(), stretch=AsinhStretch(0.1))
    # zoom on the 128x128 box holding most true cosmic-ray pixels
    size = min(128, *image.shape)
    counts = np.add.reduceat(np.add.reduceat(truth.astype(int), np.arange(0, truth.shape[0], size), axis=0),
                             np.arange(0, truth.shape[1], size), axis=1)
    by, bx = np.unravel_index(np.argmax(counts), counts.shape)
    box = (slice(by * size, by * size + size), slice(bx * size, bx * size + size))
    figure = Figure(figsize=(11, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    red = ListedColormap([(1.0, 0.1, 0.1, 0.75)])
    views = [(slice(None), slice(None)), box]
    for axes, view, label in zip(figure.subplots(1, 2), views, ["", " (zoom)"], strict=True):
        y0, x0 = view[0].start or 0, view[1].start or 0
        extent = (x0 - 0.5, x0 + image[view].shape[1] - 0.5, y0 - 0.5, y0 + image[view].shape[0] - 0.5)
        axes.imshow(image[view], origin="lower", cmap="gray", norm=norm, extent=extent)
        axes.imshow(np.ma.masked_where(~cr_mask[view], cr_mask[view]), origin="lower", cmap=red, extent=extent,
                    interpolation="nearest")
        axes.contour(np.arange(x0, x0 + image[view].shape[1]), np.arange(y0, y0 + image[view].shape[0]),
                     truth[view].astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
        if not label:
            axes.add_patch(Rectangle((box[1].start - 0.5, box[0].start - 0.5), size, size, fill=False,
                                     edgecolor="yellow", linewidth=1.0))
        axes.set_title(title + label, fontsize=10)
        axes.set_xlabel("x (pixel)")
        axes.set_ylabel("y (pixel)")
    figure.savefig(path, dpi=100, format="png")


def run_simulated_demo(outdir="demo_out", model="ACS-WFC", shape=(512, 512), seed=0, threshold=None, device=None,
                       field="extragalactic", exptime=1000.0):
    """Simulate an exposure with known cosmic rays, detect them, write ``demo.fits`` and ``demo.png``.

    The exposure comes from `astro_deepcr.training.simulate.simulate_exposure`
    (electrons, fixed ``seed``). ``demo.fits`` holds the image (primary),
    ``CRMASK`` (detections), ``CRPROB`` (probability) and ``CRTRUE`` (the
    simulated cosmic rays); ``demo.png`` shows the detections in red over the
    image with the true cosmic rays outlined in cyan. The rates come from
    `astro_deepcr.evaluation.metrics.mask_scores`.

    Returns
    -------
    summary : dict
        ``model``, ``threshold``, ``n_true``, ``n_detected``, ``tpr``,
        ``fpr`` (pixel rates), ``fits`` and ``png`` (paths).
    """
    from astropy.io import fits

    from ..detection import choose_model, detect
    from ..fitsutil import atomic_write
    from ..training.simulate import simulate_exposure
    from .metrics import mask_scores

    simulation = simulate_exposure(shape=tuple(shape), field=field, exptime=exptime, seed=seed)
    spec, reason = choose_model(None, model)
    found = detect(simulation["image"], spec=spec, reason=reason, threshold=threshold, device=device, progress=False)
    threshold, probability = found.threshold, found.probability
    cr_mask, truth = found.cr_mask, simulation["cr_mask"].astype(bool)
    tpr, fpr, _ = mask_scores(cr_mask, truth)
    os.makedirs(outdir, exist_ok=True)
    fits_path, png_path = os.path.join(outdir, "demo.fits"), os.path.join(outdir, "demo.png")
    primary = fits.PrimaryHDU(simulation["image"])
    primary.header["BUNIT"] = "ELECTRONS"
    primary.header["EXPTIME"] = (float(exptime), "s")
    primary.header["HISTORY"] = f"astro_deepcr demo: simulate_exposure({tuple(shape)}, {field!r}, seed={seed})"
    hdul = fits.HDUList([primary,
                         fits.ImageHDU(cr_mask.astype(np.uint8), name="CRMASK"),
                         fits.ImageHDU(probability.astype(np.float32), name="CRPROB"),
                         fits.ImageHDU(truth.astype(np.uint8), name="CRTRUE")])
    hdul[1].header["DCRMODEL"] = spec.name
    hdul[1].header["DCRTHRSH"] = threshold
    with atomic_write(fits_path) as tmp_path:
        hdul.writeto(tmp_path, overwrite=True)
    title = f"deepCR {spec.name}, threshold {threshold:g}: TPR {tpr:.2f}, FPR {fpr:.4f}"
    with atomic_write(png_path) as tmp_path:
        _overlay_png(tmp_path, simulation["image"], cr_mask, truth, title)
    return {"model": spec.name, "threshold": threshold, "n_true": int(truth.sum()),
            "n_detected": int(cr_mask.sum()), "tpr": tpr, "fpr": fpr, "fits": fits_path, "png": png_path}


def _cli_simulated(args):
    """What ``astro-deepcr demo --simulated`` runs: the summary of `run_simulated_demo`."""
    return run_simulated_demo(args.outdir, model=args.model or "ACS-WFC", shape=tuple(args.shape), seed=args.seed,
                              threshold=args.threshold, device=args.device, field=args.field,
                              exptime=args.exptime)


def add_subparser(subparsers):
    """Plug-in hook: add the ``--simulated`` options to the core ``demo`` sub-command."""
    from ..commands.options import positive_int

    parser = subparsers.choices.get("demo")
    if parser is None:
        return
    group = parser.add_argument_group("simulated image (with --simulated)")
    group.add_argument("--shape", type=positive_int, nargs=2, default=(512, 512), metavar=("NY", "NX"),
                       help="image shape (default 512 512)")
    group.add_argument("--field", choices=FIELDS, default="extragalactic",
                       help="simulated field (default extragalactic)")
    group.add_argument("--exptime", type=float, default=1000.0, help="exposure time in s (default 1000)")
    group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(simulated_demo=_cli_simulated)

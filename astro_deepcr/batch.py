# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Batch processing of many FITS files: serially, in local processes or on a
Dask cluster.

`clean_files` writes, for every input file, a copy in an output folder with
the cosmic rays of each image extension replaced and a ``CRMASK`` extension
(optionally ``CRPROB``) per cleaned image. `flag_files` runs
`astro_deepcr.drizzle.flag_cosmic_rays` file by file. Both return one
`FileResult` per input and never raise for a bad file: a file that cannot be
read, has unsupported units or cannot be written gets ``ok=False`` and a
one-line reason, and the others are processed. Outputs are written to a
temporary file in the output folder and moved into place only when complete,
so a failure never leaves a partial output.

Workers (``jobs > 1`` local processes, or the workers of a
`dask.distributed.Client`) build their `~astro_deepcr.DeepCR` once per
process and settings (`worker_deepcr`) and reuse it for every file they get.
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import multiprocessing
import os
import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from .fitsutil import atomic_write, electron_factor

__all__ = [
    "FileResult",
    "CleanSettings",
    "clean_files",
    "clean_file",
    "flag_files",
    "output_path",
    "electron_factor",
    "worker_deepcr",
    "AUXILIARY_EXTNAMES",
    "dask_client",
    "strict_truncation",
    "run_demo",
    "benchmark",
]

#: Extensions never cleaned unless named with ``ext``: HST error, data-quality
#: and exposure arrays, drizzle weights/contexts, and our own outputs.
AUXILIARY_EXTNAMES = frozenset({"ERR", "DQ", "SAMP", "TIME", "WHT", "CTX", "CRMASK", "CRPROB", "MASK"})
_OUTPUT_EXTNAMES = ("CRMASK", "CRPROB")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".fz")
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._+-]")


@dataclasses.dataclass
class FileResult:
    """Outcome of one input file.

    Attributes
    ----------
    path : str
        The input file.
    ok : bool
        True when the file was processed and its output written.
    message : str
        One-line reason of a failure ("" on success).
    output : str or None
        The written file (`clean_files`), or the updated input (`flag_files`).
    n_cr : dict
        Cosmic-ray pixels found per extension, keyed ``"EXTNAME,EXTVER"``.
    """

    path: str
    ok: bool
    message: str = ""
    output: str | None = None
    n_cr: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CleanSettings:
    """Settings of `clean_file` (see `clean_files` for their meaning)."""

    model: str = "ACS-WFC"
    threshold: float | None = None
    inpaint: str | None = "medmask"
    ext: tuple = ()
    device: str | None = None
    tile_size: int | None = None
    threads: int | None = None
    gain: float | None = None
    write_probability: bool = False
    overwrite: bool = False
    progress: bool | None = False


# -- per-worker model cache ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def worker_deepcr(model, inpaint, device, tile_size, threads, progress):
    """The `~astro_deepcr.DeepCR` of this process for these settings, built once.

    Every process (a ``jobs`` worker, a Dask worker or the caller itself)
    keeps up to four of them, so a worker loads its network once and reuses it
    for all the files it is given.
    """
    from .deepcr import DeepCR

    classic = inpaint in (None, "none", "medmask", "biharmonic")
    return DeepCR(mask=model, inpaint=None if classic else inpaint, device=device, tile_size=tile_size,
                  threads=threads, progress=progress)


def _models_built():
    """How many `DeepCR` objects this process has built (for tests: one per worker and settings)."""
    return worker_deepcr.cache_info().misses


def _init_worker(threads):
    import torch

    strict_truncation()
    if threads:
        torch.set_num_threads(threads)


# -- units ------------------------------------------------------------------------------------------------------


# -- one file -----------------------------------------------------------------------------------------------------


def output_path(path, outdir):
    """Where `clean_files` writes the result of ``path``: a safe file name inside ``outdir``.

    The name is the input's base name (compression suffix removed, unusual
    characters replaced by ``_``, no leading dot), so an output can never land
    outside ``outdir``.
    """
    name = os.path.basename(os.fspath(path))
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    name = _UNSAFE_CHARACTERS.sub("_", name).lstrip(".") or "image"
    if not name.lower().endswith((".fits", ".fit", ".fts")):
        name += ".fits"
    return os.path.join(os.path.abspath(os.fspath(outdir)), name)


def _parse_ext(ext):
    """``"SCI"`` -> ("SCI", None); ``"SCI,2"`` -> ("SCI", 2); ``"0"`` -> (0, None)."""
    text = str(ext).strip()
    if text.isdigit():
        return int(text), None
    name, _, version = text.partition(",")
    if version and not version.strip().isdigit():
        raise ValueError(f"extension {ext!r} must be NAME, NAME,VER or an index")
    return name.strip().upper(), int(version) if version else None


def _selected(index, hdu, ext):
    if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) or hdu.data is None:
        return False
    if hdu.data.ndim != 2:
        return False
    name = hdu.name.upper()
    if not ext:
        return name not in AUXILIARY_EXTNAMES
    for wanted in ext:
        key, version = _parse_ext(wanted)
        if key == index or (key == name and version in (None, hdu.ver)):
            return True
    return False


def _label(hdu):
    return f"{hdu.name or 'PRIMARY'},{hdu.ver}"


def _wcs_cards(header):
    """The celestial WCS of ``header`` as cards for the mask extensions (empty when unreadable)."""
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return WCS(header).to_header(relax=True)
    except Exception:  # distortion tables referenced by HST headers need the whole file
        return fits.Header()


def _record(header, spec, threshold, inpaint, n_cr):
    from . import __version__

    header["DCRMODEL"] = (spec.name, "astro_deepcr mask model")
    header["DCRVERS"] = (__version__, "astro_deepcr version")
    header["DCRTHRSH"] = (threshold, "astro_deepcr probability threshold")
    header["DCRINPT"] = (inpaint or "none", "astro_deepcr inpainting")
    header["DCRNCR"] = (n_cr, "astro_deepcr cosmic-ray pixels")
    header["HISTORY"] = f"astro_deepcr {__version__} clean: model {spec.name}, threshold {threshold:g},"
    header["HISTORY"] = f"  inpaint {inpaint or 'none'}, {n_cr} cosmic-ray pixels (EXTNAME CRMASK)"


def _clean_hdu(hdu, primary_header, settings):
    """Clean one image HDU in place; return (mask HDU, probability HDU or None, n_cr)."""
    deepcr = worker_deepcr(settings.model, settings.inpaint, settings.device, settings.tile_size,
                           settings.threads, settings.progress)
    spec = deepcr.mask_spec
    factor = electron_factor(hdu.header, primary_header, spec.units, settings.gain)
    data = np.asarray(hdu.data)
    wide = data.dtype.kind == "f" and data.dtype.itemsize == 8
    electrons = data.astype(np.float64 if wide else np.float32) * factor
    threshold = deepcr.threshold if settings.threshold is None else float(settings.threshold)
    probability = deepcr.probability(electrons)
    cr_mask = probability > threshold
    if settings.inpaint not in (None, "none"):
        hdu.data = (deepcr.inpaint(electrons, cr_mask, method=settings.inpaint) / factor).astype(electrons.dtype)
    n_cr = int(cr_mask.sum())
    _record(hdu.header, spec, threshold, settings.inpaint, n_cr)
    wcs = _wcs_cards(hdu.header)
    mask_hdu = fits.ImageHDU(cr_mask.astype(np.uint8), header=wcs.copy(), name="CRMASK", ver=hdu.ver)
    mask_hdu.header["DCRSRC"] = (_label(hdu), "image of this mask (1 = cosmic ray)")
    prob_hdu = None
    if settings.write_probability:
        prob_hdu = fits.ImageHDU(probability.astype(np.float32), header=wcs.copy(), name="CRPROB", ver=hdu.ver)
        prob_hdu.header["DCRSRC"] = (_label(hdu), "extension this probability belongs to")
    return mask_hdu, prob_hdu, n_cr


def clean_file(path, output, settings=CleanSettings()):
    """Clean one FITS file into ``output`` (written atomically); return the CR count per extension.

    Raises on any problem (unreadable file, no image extension, units, an
    existing ``output`` without ``overwrite``); `clean_files` turns that into
    a failed `FileResult`.
    """
    if os.path.exists(output) and not settings.overwrite:
        raise FileExistsError(f"output {output} exists (use overwrite / --overwrite)")
    if os.path.abspath(output) == os.path.abspath(path):
        raise ValueError("the output would replace the input; choose another output folder")
    # our own handle: astropy leaks it when opening fails (e.g. on a truncation warning turned error)
    with open(path, "rb") as stream:
        try:
            hdul = fits.open(stream, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data  # read everything now: a truncated file fails here, not half-way
        except Exception as exc:
            raise OSError(f"cannot read FITS file: {_one_line(exc)}") from None
        selected = [hdu for index, hdu in enumerate(hdul) if _selected(index, hdu, settings.ext)]
        if not selected:
            wanted = f" named {', '.join(settings.ext)}" if settings.ext else ""
            raise ValueError(f"no 2-D image extension{wanted}")
        kept = [hdu for hdu in hdul if hdu.name.upper() not in _OUTPUT_EXTNAMES or hdu is hdul[0]]
        added, n_cr = [], {}
        for hdu in selected:
            mask_hdu, prob_hdu, count = _clean_hdu(hdu, hdul[0].header, settings)
            added += [mask_hdu] + ([prob_hdu] if prob_hdu is not None else [])
            n_cr[_label(hdu)] = count
            if isinstance(hdu, fits.CompImageHDU):  # re-compressing would quantise the cleaned floats (lossy)
                kept[kept.index(hdu)] = fits.ImageHDU(hdu.data, header=hdu.header, name=hdu.name, ver=hdu.ver)
        result = fits.HDUList(kept + added)
        with atomic_write(output) as tmp_path:
            result.writeto(tmp_path, overwrite=True, output_verify="silentfix")
    return n_cr


def strict_truncation():
    """Make astropy's "File may have been truncated" warning an error in this process.

    A truncated file then fails with that reason instead of a warning plus a
    confusing read error. The command line tool and the ``jobs`` workers call
    this.
    """
    warnings.filterwarnings("error", message="File may have been truncated", category=AstropyUserWarning)


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _clean_task(path, output, settings):
    """`clean_file` that reports instead of raising (what workers run)."""
    try:
        n_cr = clean_file(path, output, settings)
    except Exception as exc:
        return FileResult(path, False, _one_line(exc))
    return FileResult(path, True, output=output, n_cr=n_cr)


def _flag_task(path, options):
    from .drizzle import flag_cosmic_rays

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            summary = flag_cosmic_rays([path], **options)
    except Exception as exc:
        return FileResult(path, False, _one_line(exc))
    n_cr = {f"SCI,{row['extver']}": int(row["n_cr"]) for row in summary}
    message = "; ".join(sorted({_one_line(w.message) for w in caught}))
    return FileResult(path, True, message, output=path, n_cr=n_cr)


# -- many files ---------------------------------------------------------------------------------------------------


def _progress_bar(total, progress, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", disable=not progress, leave=False)


def _run(task, argument_lists, *, jobs, client, progress, desc, threads=None):
    """Run ``task(*arguments)`` for each argument list; results in input order."""
    results = [None] * len(argument_lists)
    with _progress_bar(len(argument_lists), progress, desc) as bar:
        if client is not None:
            futures = [client.submit(task, *arguments, pure=False) for arguments in argument_lists]
            index = {future.key: number for number, future in enumerate(futures)}
            from distributed import as_completed

            for future in as_completed(futures):
                number = index[future.key]
                results[number] = _collect(future, argument_lists[number][0])
                bar.update()
        elif jobs > 1:
            context = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
            with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                                        initargs=(threads,)) as pool:
                futures = {pool.submit(task, *arguments): number for number, arguments in enumerate(argument_lists)}
                for future in concurrent.futures.as_completed(futures):
                    number = futures[future]
                    results[number] = _collect(future, argument_lists[number][0])
                    bar.update()
        else:
            for number, arguments in enumerate(argument_lists):
                results[number] = task(*arguments)
                bar.update()
    return results


def _collect(future, path):
    """A finished future's `FileResult`; a worker that died (killed, out of memory) fails its file only."""
    try:
        return future.result()
    except Exception as exc:
        return FileResult(path, False, f"worker failed: {_one_line(exc)}")


def _check_parallel(jobs, client):
    if int(jobs) < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    if client is not None and int(jobs) > 1:
        raise ValueError("give either jobs > 1 (local processes) or a Dask client, not both")
    return int(jobs)


def _threads_per_job(jobs, threads):
    if threads or jobs == 1:
        return threads
    return max(1, (os.cpu_count() or 1) // jobs)


def clean_files(files, outdir, *, model="ACS-WFC", threshold=None, inpaint="medmask", ext=(), device=None,
                tile_size=None, write_probability=False, overwrite=False, gain=None, threads=None, jobs=1,
                client=None, progress=True):
    """Clean cosmic rays in many FITS files, writing the results to ``outdir``.

    For each 2-D image extension (all but `AUXILIARY_EXTNAMES`, or those of
    ``ext``) the cosmic rays found by deepCR are replaced (``inpaint``), the
    header keeps its WCS and gets ``DCR*`` keywords and ``HISTORY`` lines,
    and an extension ``CRMASK`` (uint8, 1 = cosmic ray, same ``EXTVER``) is
    appended, plus ``CRPROB`` (float32 probability) with
    ``write_probability``. Data are converted to the model's units from
    ``BUNIT`` (see `electron_factor`) and back.

    Parameters
    ----------
    files : list of str or path-like
        Input FITS files (gzip-compressed ones are read too).
    outdir : str or path-like
        Output folder, created if needed. Each output is named by
        `output_path`; nothing is ever written elsewhere.
    model : str
        deepCR-mask model name (see `astro_deepcr.list_models`) or a
        ``.safetensors`` file with its card.
    threshold : float, optional
        Probability threshold; default the model's.
    inpaint : str or None
        ``"medmask"`` (default), ``"biharmonic"``, a deepCR-inpaint model, or
        None / ``"none"`` to leave the data unchanged and only add masks.
    ext : sequence of str
        Restrict to these extensions: ``"SCI"`` (by ``EXTNAME``),
        ``"SCI,2"`` (name and version) or ``"0"`` (index).
    device, tile_size, threads :
        As for `~astro_deepcr.DeepCR`. With ``jobs > 1`` the CPU threads
        default to the cores divided among the jobs.
    write_probability : bool
        Also write the ``CRPROB`` extensions.
    overwrite : bool
        Replace existing outputs (otherwise such a file fails).
    gain : float, optional
        Electrons per data unit for data in ADU (``BUNIT`` ADU, DN, COUNTS or
        missing).
    jobs : int
        Local worker processes (each loads the model once).
    client : `dask.distributed.Client`, optional
        Spread the files over this cluster's workers (each loads the model
        once per process). Input and output paths must be visible to the
        workers (a shared file system).
    progress : bool
        Progress bar over files (and, run serially, over the tiles of large
        images).

    Returns
    -------
    results : list of `FileResult`
        One per input, in input order.

    Raises
    ------
    ValueError
        Invalid settings (unknown model, threshold outside [0, 1], bad
        ``jobs``); problems of individual files never raise.

    Examples
    --------
    >>> from astro_deepcr.batch import clean_files
    >>> results = clean_files(["a.fits", "b.fits"], "cleaned")  # doctest: +SKIP
    >>> [result.path for result in results if not result.ok]  # doctest: +SKIP
    []
    """
    from .deepcr import _check_threshold
    from .zoo import get_model

    jobs = _check_parallel(jobs, client)
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    get_model(model, kind="mask")
    if inpaint not in (None, "none", "medmask", "biharmonic"):
        get_model(inpaint, kind="inpaint")
    if threshold is not None:
        threshold = _check_threshold(threshold)
    if gain is not None and not float(gain) > 0:
        raise ValueError(f"gain must be positive, not {gain!r}")
    for wanted in ext:
        _parse_ext(wanted)
    os.makedirs(outdir, exist_ok=True)
    parallel = jobs > 1 or client is not None
    settings = CleanSettings(
        model=os.fspath(model), threshold=threshold, inpaint=inpaint, ext=tuple(str(e) for e in ext),
        device=device, tile_size=tile_size, threads=_threads_per_job(jobs, threads),
        gain=None if gain is None else float(gain), write_probability=write_probability, overwrite=overwrite,
        progress=None if progress and not parallel else False,
    )
    paths = [os.path.abspath(os.fspath(path)) for path in files]
    outputs = [output_path(path, outdir) for path in paths]
    results, arguments, pending = [None] * len(paths), [], []
    first_user = {}
    for number, (path, output) in enumerate(zip(paths, outputs, strict=True)):
        if output in first_user:
            other = first_user[output]
            reason = ("listed twice" if paths[other] == path else
                      f"same output name {os.path.basename(output)} as {os.fspath(files[other])}")
            results[number] = FileResult(os.fspath(files[number]), False, reason)
            continue
        first_user[output] = number
        arguments.append((path, output, settings))
        pending.append(number)
    done = _run(_clean_task, arguments, jobs=jobs, client=client, progress=progress, desc="clean",
                threads=settings.threads)
    for number, result in zip(pending, done, strict=True):
        results[number] = dataclasses.replace(result, path=os.fspath(files[number]))
    return results


def flag_files(files, *, jobs=1, client=None, progress=True, **options):
    """`astro_deepcr.drizzle.flag_cosmic_rays` file by file: one bad file never stops the others.

    Parameters
    ----------
    files : list of str
        HST ``_flt``/``_flc`` files (updated in place, atomically).
    jobs, client, progress :
        As for `clean_files`.
    **options
        Keywords of `~astro_deepcr.drizzle.flag_cosmic_rays` (``model``,
        ``threshold``, ``crbit``, ``grow``, ``resetbits``, ``bits``,
        ``fill_bits``, ``device``, ``lock_timeout``).

    Returns
    -------
    results : list of `FileResult`
        ``message`` of a successful file lists the warnings it raised.
    """
    jobs = _check_parallel(jobs, client)
    parallel = jobs > 1 or client is not None
    options.setdefault("progress", None if progress and not parallel else False)
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    paths = [os.path.abspath(os.fspath(path)) for path in files]
    results = _run(_flag_task, [(path, options) for path in paths], jobs=jobs, client=client, progress=progress,
                   desc="flag", threads=_threads_per_job(jobs, None))
    return [dataclasses.replace(result, path=os.fspath(name)) for result, name in zip(results, files, strict=True)]


@contextlib.contextmanager
def dask_client(address):
    """A `dask.distributed.Client` connected to the scheduler at ``address`` (closed on exit)."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
    with Client(address) as client:
        yield client


# -- demo and quick benchmark ---------------------------------------------------------------------------------------


def _rates(cr_mask, truth):
    """Pixel true- and false-positive rates of ``cr_mask`` against ``truth``."""
    true_positive = np.count_nonzero(cr_mask & truth)
    false_positive = np.count_nonzero(cr_mask & ~truth)
    return true_positive / max(1, np.count_nonzero(truth)), false_positive / max(1, np.count_nonzero(~truth))


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


def run_demo(outdir="demo_out", model="ACS-WFC", shape=(512, 512), seed=0, threshold=None, device=None,
             field="extragalactic", exptime=1000.0):
    """Simulate an exposure with known cosmic rays, detect them, write ``demo.fits`` and ``demo.png``.

    The exposure comes from `astro_deepcr.training.simulate.simulate_exposure`
    (electrons, fixed ``seed``). ``demo.fits`` holds the image (primary),
    ``CRMASK`` (detections), ``CRPROB`` (probability) and ``CRTRUE`` (the
    simulated cosmic rays); ``demo.png`` shows the detections in red over the
    image with the true cosmic rays outlined in cyan.

    Returns
    -------
    summary : dict
        ``model``, ``threshold``, ``n_true``, ``n_detected``, ``tpr``,
        ``fpr`` (pixel rates), ``fits`` and ``png`` (paths).
    """
    from .deepcr import DeepCR, _check_threshold
    from .training.simulate import simulate_exposure

    simulation = simulate_exposure(shape=tuple(shape), field=field, exptime=exptime, seed=seed)
    deepcr = DeepCR(mask=model, device=device, progress=False)
    threshold = deepcr.threshold if threshold is None else _check_threshold(threshold)
    probability = deepcr.probability(simulation["image"])
    cr_mask, truth = probability > threshold, simulation["cr_mask"]
    tpr, fpr = _rates(cr_mask, truth)
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
    hdul[1].header["DCRMODEL"] = deepcr.mask_spec.name
    hdul[1].header["DCRTHRSH"] = threshold
    with atomic_write(fits_path) as tmp_path:
        hdul.writeto(tmp_path, overwrite=True)
    title = f"deepCR {deepcr.mask_spec.name}, threshold {threshold:g}: TPR {tpr:.2f}, FPR {fpr:.4f}"
    with atomic_write(png_path) as tmp_path:
        _overlay_png(tmp_path, simulation["image"], cr_mask, truth, title)
    return {"model": deepcr.mask_spec.name, "threshold": threshold, "n_true": int(truth.sum()),
            "n_detected": int(cr_mask.sum()), "tpr": tpr, "fpr": fpr, "fits": fits_path, "png": png_path}


def _peak_rss_mib():
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def benchmark(shape=(1024, 1024), model="ACS-WFC", device=None, tile_size=None, threads=None, repeat=3):
    """Time `~astro_deepcr.DeepCR.mask` on a simulated image (a quick check; see ``benchmarks/``).

    Returns
    -------
    timing : dict
        ``model``, ``device``, ``seconds`` (best of ``repeat`` runs after a
        warm-up), ``megapixels_per_s``, ``peak_rss_mib`` (the process's peak
        resident memory) and, on CUDA, ``peak_gpu_mib``.
    """
    import time

    import torch

    from .deepcr import DeepCR
    from .training.simulate import simulate_exposure

    image = simulate_exposure(shape=tuple(shape), seed=0)["image"]
    deepcr = DeepCR(mask=model, device=device, tile_size=tile_size, threads=threads, progress=False)
    deepcr.mask(image[:64, :64])  # warm-up: load the network, first-call allocations
    timings = []
    for _ in range(max(1, int(repeat))):
        if deepcr.device.type == "cuda":
            torch.cuda.synchronize(deepcr.device)
        start = time.perf_counter()
        deepcr.mask(image)
        if deepcr.device.type == "cuda":
            torch.cuda.synchronize(deepcr.device)
        timings.append(time.perf_counter() - start)
    seconds = min(timings)
    timing = {"model": deepcr.mask_spec.name, "device": str(deepcr.device), "seconds": seconds,
              "megapixels_per_s": image.size / 1e6 / seconds, "peak_rss_mib": _peak_rss_mib()}
    if deepcr.device.type == "cuda":
        timing["peak_gpu_mib"] = torch.cuda.max_memory_allocated(deepcr.device) / 2**20
    return timing

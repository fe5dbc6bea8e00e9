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
`dask.distributed.Client`) load a network once per process (the zoo's
network cache, `astro_deepcr.zoo.load_network`) and reuse it for every file
they get. What is done to one file is `astro_deepcr.fitsclean.clean_file`.
"""

import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import os
import warnings

from astropy.utils.exceptions import AstropyUserWarning

# the one-file step, importable from here as in 0.1.0
from .dq import CR_BIT, DEFAULT_BITS, DEFAULT_FILL_BITS
from .fitsclean import AUXILIARY_EXTNAMES, CleanSettings, _parse_ext, clean_file, output_path  # noqa: F401
from .fitsutil import strict_truncation

__all__ = ["FileResult", "clean_files", "flag_files", "dask_client", "strict_truncation"]


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
    products : list of str
        Quick-look PNGs and DS9 region files written for this file.
    """

    path: str
    ok: bool
    message: str = ""
    output: str | None = None
    n_cr: dict = dataclasses.field(default_factory=dict)
    products: list = dataclasses.field(default_factory=list)


def _init_worker(threads):
    import torch

    strict_truncation()
    if threads:
        torch.set_num_threads(threads)


# -- tasks run by the workers ------------------------------------------------------------------------------------


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _warnings_line(caught):
    """The distinct warnings of one file as one line: sentences joined by "; " without their closing full stop."""
    return "; ".join(sorted({_one_line(w.message).rstrip(".") for w in caught}))


def _clean_task(path, output, settings):
    """`clean_file` that reports instead of raising (what workers run)."""
    try:
        n_cr, products = clean_file(path, output, settings)
    except Exception as exc:
        return FileResult(path, False, _one_line(exc))
    return FileResult(path, True, output=output, n_cr=n_cr, products=products)


def _flag_task(path, options, plot=False, regions=False):
    from .drizzle import flag_cosmic_rays

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            strict_truncation()  # after "always": a truncated file stays an error with astropy's reason
            summary = flag_cosmic_rays([path], **options)
    except Exception as exc:
        return FileResult(path, False, _one_line(exc))
    n_cr = {f"SCI,{row['extver']}": int(row["n_cr"]) for row in summary}
    message = _warnings_line(caught)
    products = []
    if plot or regions:
        from .visualization import flagged_file_products

        try:
            products = flagged_file_products(path, crbit=options.get("crbit") or CR_BIT, plot=plot,
                                             regions=regions)
        except Exception as exc:  # the flags are written; only the quick look failed
            return FileResult(path, False, f"flagged, but no plot/regions: {_one_line(exc)}", output=path,
                              n_cr=n_cr)
    return FileResult(path, True, message, output=path, n_cr=n_cr, products=products)


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


def clean_files(files, outdir, *, model=None, threshold=None, inpaint="medmask", ext=(), device=None,
                tile_size=None, write_probability=False, overwrite=False, gain=None, threads=None, jobs=1,
                client=None, progress=True, bits=DEFAULT_BITS, fill_bits=DEFAULT_FILL_BITS, crbit=CR_BIT,
                use_dq=True, plot=False, regions=False, precision=None, star_shape=False):
    """Clean cosmic rays in many FITS files, writing the results to ``outdir``.

    For each 2-D image extension (all but `AUXILIARY_EXTNAMES`, or those of
    ``ext``) the cosmic rays found by deepCR are replaced (``inpaint``), the
    header keeps its WCS and gets ``DCR*`` keywords and ``HISTORY`` lines,
    and an extension ``CRMASK`` (uint8, 1 = cosmic ray, same ``EXTVER``) is
    appended, plus ``CRPROB`` (float32 probability) with
    ``write_probability``. Data are converted to the model's units from
    ``BUNIT``, ``EXPTIME`` and the header's gain
    (`astro_deepcr.units.electron_factor`) and back. HST ``SCI,N``
    extensions with a ``DQ,N`` respect it and get ``crbit`` set on their
    cosmic rays (see `astro_deepcr.fitsclean`).

    Parameters
    ----------
    files : list of str or path-like
        Input FITS files (gzip-compressed ones are read too).
    outdir : str or path-like
        Output folder, created if needed. Each output is named by
        `output_path`; nothing is ever written elsewhere.
    model : str, optional
        deepCR-mask model name (see `astro_deepcr.list_models`) or a
        ``.safetensors`` file with its card; default: chosen per extension
        from the header (`astro_deepcr.detection.choose_model`).
    threshold : float, optional
        Probability threshold; default the model's.
    inpaint : str or None
        ``"medmask"`` (default), ``"biharmonic"``, a deepCR-inpaint model, or
        None / ``"none"`` to leave the data unchanged and only add masks.
    ext : sequence of str
        Restrict to these extensions: ``"SCI"`` (by ``EXTNAME``),
        ``"SCI,2"`` (name and version) or ``"0"`` (index).
    device, tile_size, threads, precision :
        As for `~astro_deepcr.DeepCR`. With ``jobs > 1`` the CPU threads
        default to the cores divided among the jobs.
    write_probability : bool
        Also write the ``CRPROB`` extensions.
    overwrite : bool
        Replace existing outputs (otherwise such a file fails).
    gain : float, optional
        Electrons per data unit for data in ADU (``BUNIT`` ADU, DN, COUNTS or
        missing); default the header's (``GAIN``, ``EGAIN``, ``CCDGAIN``,
        ``ATODGAIN``...).
    jobs : int
        Local worker processes (each loads the model once).
    client : `dask.distributed.Client`, optional
        Spread the files over this cluster's workers (each loads the model
        once per process). Input and output paths must be visible to the
        workers (a shared file system).
    progress : bool
        Progress bar over files (and, run serially, over the tiles of large
        images).
    bits, fill_bits, crbit :
        DQ semantics of `astro_deepcr.drizzle.flag_cosmic_rays`: ``bits``
        are the good DQ bits (drizzlepac's sense; other pixels are never
        flagged nor replaced), ``fill_bits`` pixels are filled before
        detection, ``crbit`` is set in the output ``DQ,N`` on the cosmic
        rays found (and cleared elsewhere).
    use_dq : bool
        False: ignore DQ arrays (and leave them unchanged).
    plot, regions : bool
        Also write a quick-look PNG / a DS9 region file per cleaned
        extension next to each output
        (`astro_deepcr.fitsclean.product_path`).
    star_shape : bool
        Also the star-shape test (`astro_deepcr.starshape`, off by default),
        with the read noise of each extension's headers (a file without one
        fails, naming the extension).

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
    from .validation import check_flag_options
    from .zoo import get_model

    jobs = _check_parallel(jobs, client)
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    checked = check_flag_options(model=model, threshold=threshold, crbit=crbit, bits=bits, fill_bits=fill_bits,
                                 device=device, precision=precision, star_shape=star_shape)
    crbit, threshold = checked["crbit"], checked["threshold"]
    if plot:
        from .visualization import _matplotlib

        _matplotlib()
    if inpaint not in (None, "none", "medmask", "biharmonic"):
        get_model(inpaint, kind="inpaint")
    if gain is not None and not float(gain) > 0:
        raise ValueError(f"gain must be positive, not {gain!r}")
    for wanted in ext:
        _parse_ext(wanted)
    os.makedirs(outdir, exist_ok=True)
    parallel = jobs > 1 or client is not None
    settings = CleanSettings(
        model=None if model is None else os.fspath(model), threshold=threshold, inpaint=inpaint,
        ext=tuple(str(e) for e in ext),
        device=device, tile_size=tile_size, threads=_threads_per_job(jobs, threads),
        gain=None if gain is None else float(gain), write_probability=write_probability, overwrite=overwrite,
        progress=None if progress and not parallel else False, bits=bits, fill_bits=fill_bits, crbit=crbit,
        use_dq=bool(use_dq), plot=bool(plot), regions=bool(regions), precision=precision, star_shape=star_shape,
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


def flag_files(files, *, jobs=1, client=None, progress=True, plot=False, regions=False, **options):
    """`astro_deepcr.drizzle.flag_cosmic_rays` file by file: one bad file never stops the others.

    Parameters
    ----------
    files : list of str
        HST ``_flt``/``_flc`` files (updated in place, atomically).
    jobs, client, progress :
        As for `clean_files`.
    plot, regions : bool
        Also write a quick-look PNG / a DS9 region file per ``SCI,N`` next to
        each file (`astro_deepcr.visualization.flagged_file_products`).
    **options
        Keywords of `~astro_deepcr.drizzle.flag_cosmic_rays` (``model``,
        ``threshold``, ``crbit``, ``grow``, ``resetbits``, ``bits``,
        ``fill_bits``, ``device``, ``lock_timeout``).

    Returns
    -------
    results : list of `FileResult`
        ``message`` of a successful file lists the warnings it raised.
    """
    from .validation import check_flag_options

    jobs = _check_parallel(jobs, client)
    check_flag_options(**{key: value for key, value in options.items() if key not in ("progress", "bad_bits",
                                                                                       "reset")})
    parallel = jobs > 1 or client is not None
    options.setdefault("progress", None if progress and not parallel else False)
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    paths = [os.path.abspath(os.fspath(path)) for path in files]
    arguments = [(path, options, bool(plot), bool(regions)) for path in paths]
    results = _run(_flag_task, arguments, jobs=jobs, client=client, progress=progress, desc="flag",
                   threads=_threads_per_job(jobs, None))
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

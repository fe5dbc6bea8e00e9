# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Cleaning one FITS file: what `astro_deepcr.batch.clean_files` does per file.

For each selected 2-D image extension the data are converted to the model's
units (`astro_deepcr.units.electron_factor`: ``BUNIT``, ``EXPTIME`` and the
header's gain), the model is the one given or the one the header calls for
(`astro_deepcr.detection.choose_model`), the cosmic rays are replaced, and a
``CRMASK`` extension (and optionally ``CRPROB``) is added. The run is
recorded with `astro_deepcr.provenance.record_run`.

HST ``_flt``/``_flc`` files: a ``SCI,N`` extension with a ``DQ,N`` next to it
is cleaned with the DQ semantics of ``astro-deepcr flag``
(`astro_deepcr.dq`, `astro_deepcr.detection`): pixels with a DQ bit outside ``bits`` (the
good bits, drizzlepac's sense; saturation is not among them by default) are
never flagged nor replaced nor used to replace others, pixels with a
``fill_bits`` bit are filled before the network sees the image, and the
output ``DQ,N`` carries ``crbit`` exactly on the cosmic rays found.
"""

import dataclasses
import os
import re
import warnings

import numpy as np
from astropy.io import fits

from .detection import choose_model, detect
from .dq import CR_BIT, DEFAULT_BITS, DEFAULT_FILL_BITS
from .fitsutil import atomic_write, refresh_checksums
from .provenance import record_run
from .units import electron_factor, header_exptime, star_shape_readnoise

__all__ = [
    "AUXILIARY_EXTNAMES",
    "CleanSettings",
    "clean_file",
    "output_path",
    "product_path",
]

#: Extensions never cleaned unless named with ``ext``: HST error, data-quality
#: and exposure arrays, drizzle weights/contexts, and our own outputs.
AUXILIARY_EXTNAMES = frozenset({"ERR", "DQ", "SAMP", "TIME", "WHT", "CTX", "CRMASK", "CRPROB", "MASK"})
_OUTPUT_EXTNAMES = ("CRMASK", "CRPROB")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".fz")
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._+-]")


@dataclasses.dataclass(frozen=True)
class CleanSettings:
    """Settings of `clean_file` (see `astro_deepcr.batch.clean_files` for their meaning)."""

    model: str | None = None
    threshold: float | None = None
    inpaint: str | None = "medmask"
    ext: tuple = ()
    device: str | None = None
    precision: str | None = None
    tile_size: int | None = None
    threads: int | None = None
    gain: float | None = None
    write_probability: bool = False
    overwrite: bool = False
    progress: bool | None = False
    bits: object = DEFAULT_BITS
    fill_bits: object = DEFAULT_FILL_BITS
    crbit: int = CR_BIT
    use_dq: bool = True
    plot: bool = False
    regions: bool = False
    star_shape: bool = False


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


def product_path(output, hdu_label, suffix):
    """Where the quick-look PNG or region file of one extension of ``output`` goes.

    ``product_path("out/img.fits", "SCI,2", ".png")`` is ``out/img_sci2.png``.
    """
    stem = os.path.splitext(os.fspath(output))[0]
    name, _, version = hdu_label.partition(",")
    return f"{stem}_{name.lower()}{version}{suffix}"


def _model_header(header, primary_header):
    """What `~astro_deepcr.detection.choose_model` reads: the primary header, the extension's cards on top."""
    merged = {key: value for key, value in primary_header.items() if key not in ("COMMENT", "HISTORY", "")}
    merged.update({key: value for key, value in header.items() if key not in ("COMMENT", "HISTORY", "")})
    return merged


def _dq_of(hdul, hdu, settings):
    """The ``DQ`` extension belonging to ``SCI,N`` ``hdu`` (None when there is none or DQ is off)."""
    if not settings.use_dq or hdu.name.upper() != "SCI" or ("DQ", hdu.ver) not in hdul:
        return None
    dq = hdul["DQ", hdu.ver]
    if dq.data is None or dq.data.shape != hdu.data.shape:
        raise ValueError(f"DQ,{hdu.ver} is missing or its shape differs from SCI,{hdu.ver}")
    if np.asarray(dq.data).dtype.kind not in "iu":
        raise ValueError(f"DQ,{hdu.ver} must be integer, not {np.asarray(dq.data).dtype}")
    return dq


def _clean_hdu(hdu, hdul, settings):
    """Clean one image HDU in place; return (mask HDU, probability HDU or None, detection)."""
    primary_header = hdul[0].header
    spec, reason = choose_model(_model_header(hdu.header, primary_header), model=settings.model)
    factor = electron_factor(hdu.header, primary_header, spec.units, settings.gain)
    data = np.asarray(hdu.data)
    wide = data.dtype.kind == "f" and data.dtype.itemsize == 8
    image = data.astype(np.float64 if wide else np.float32) * factor
    dq = _dq_of(hdul, hdu, settings)
    readnoise = (star_shape_readnoise(hdu.header, primary_header, f"{hdu.name},{hdu.ver}")
                 if settings.star_shape else None)
    found = detect(image, spec=spec, reason=reason, threshold=settings.threshold,
                   dq=None if dq is None else dq.data, bits=settings.bits, fill_bits=settings.fill_bits,
                   crbit=settings.crbit, exptime=header_exptime(hdu.header, primary_header), device=settings.device,
                   precision=settings.precision, tile_size=settings.tile_size, threads=settings.threads,
                   progress=settings.progress, star_shape=settings.star_shape, readnoise=readnoise)
    if settings.inpaint not in (None, "none"):
        from .deepcr import DeepCR

        inpainter = DeepCR(mask=spec, device=settings.device, tile_size=settings.tile_size, threads=settings.threads,
                           progress=settings.progress, precision=settings.precision)
        cleaned = inpainter.inpaint(image, found.cr_mask, method=settings.inpaint, inmask=found.bad)
        # only the cosmic rays change: the other pixels keep their values exactly (x factor / factor would round
        # them, and integer frames would come back a unit low after a cast)
        values = data.astype(image.dtype)
        values[found.cr_mask] = cleaned[found.cr_mask] / factor
        hdu.data = values
    if dq is not None:
        crbit = np.array(settings.crbit).astype(dq.data.dtype)
        dq.data = np.where(found.cr_mask, dq.data | crbit, dq.data & ~crbit).astype(dq.data.dtype)
    record_run(hdu.header, "clean", history=f"clean: {found.n_cr} CR px in CRMASK,{hdu.ver} (DCR* keys)",
               **found.provenance, inpaint=settings.inpaint, n_cr=found.n_cr,
               crbit=None if dq is None else settings.crbit)
    wcs = _wcs_cards(hdu.header)
    mask_hdu = fits.ImageHDU(found.cr_mask.astype(np.uint8), header=wcs.copy(), name="CRMASK", ver=hdu.ver)
    mask_hdu.header["DCRSRC"] = (_label(hdu), "image of this mask (1 = cosmic ray)")
    prob_hdu = None
    if settings.write_probability:
        prob_hdu = fits.ImageHDU(found.probability, header=wcs.copy(), name="CRPROB", ver=hdu.ver)
        prob_hdu.header["DCRSRC"] = (_label(hdu), "extension this probability belongs to")
    return mask_hdu, prob_hdu, found


def _write_products(output, looks, settings):
    """Quick-look PNGs and DS9 region files of the cleaned extensions; return their paths."""
    from .visualization import write_quicklook, write_regions

    written = []
    for label, image, cr_mask, bad, saturated in looks:
        if settings.plot:
            written.append(product_path(output, label, ".png"))
            write_quicklook(written[-1], image, cr_mask, bad=bad, saturated=saturated,
                            title=f"{os.path.basename(output)} [{label}]")
        if settings.regions:
            written.append(product_path(output, label, ".reg"))
            write_regions(written[-1], cr_mask)
    return written


def clean_file(path, output, settings=CleanSettings()):
    """Clean one FITS file into ``output`` (written atomically).

    With ``settings.plot`` / ``settings.regions``, a quick-look PNG and a DS9
    region file per cleaned extension are written next to ``output``
    (`product_path`).

    Returns
    -------
    n_cr : dict
        Cosmic-ray pixels per extension, keyed ``"EXTNAME,EXTVER"``.
    products : list of str
        The PNG and region files written.

    Raises
    ------
    Exception
        Any problem (unreadable file, no image extension, units, an existing
        ``output`` without ``overwrite``); `~astro_deepcr.batch.clean_files`
        turns it into a failed `~astro_deepcr.batch.FileResult`.
    """
    if os.path.exists(output) and not settings.overwrite:
        raise FileExistsError(f"output {output} exists (use overwrite / --overwrite)")
    if os.path.realpath(output) == os.path.realpath(path):  # realpath: a linked folder or file is the input too
        raise ValueError("the output would replace the input; choose another output folder")
    # our own handle: astropy leaks it when opening fails (e.g. on a truncation warning turned error)
    with open(path, "rb") as stream:
        try:
            hdul = fits.open(stream, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data  # read everything now: a truncated file fails here, not half-way
        except Exception as exc:
            raise OSError(f"cannot read FITS file: {' '.join(str(exc).split()) or type(exc).__name__}") from None
        selected = [hdu for index, hdu in enumerate(hdul) if _selected(index, hdu, settings.ext)]
        if not selected:
            wanted = f" named {', '.join(settings.ext)}" if settings.ext else ""
            raise ValueError(f"no 2-D image extension{wanted}")
        kept = [hdu for hdu in hdul if hdu.name.upper() not in _OUTPUT_EXTNAMES or hdu is hdul[0]]
        added, n_cr, looks = [], {}, []
        for hdu in selected:
            original = np.array(hdu.data, dtype=np.float32) if settings.plot else None
            mask_hdu, prob_hdu, found = _clean_hdu(hdu, hdul, settings)
            added += [mask_hdu] + ([prob_hdu] if prob_hdu is not None else [])
            n_cr[_label(hdu)] = found.n_cr
            if settings.plot or settings.regions:
                looks.append((_label(hdu), original, found.cr_mask, found.bad, found.saturated))
            if isinstance(hdu, fits.CompImageHDU):  # re-compressing would quantise the cleaned floats (lossy)
                kept[kept.index(hdu)] = fits.ImageHDU(hdu.data, header=hdu.header, name=hdu.name, ver=hdu.ver)
        result = fits.HDUList(kept + added)
        refresh_checksums(result)  # the input's sums would fail verification of the cleaned file
        with atomic_write(output) as tmp_path:
            result.writeto(tmp_path, overwrite=True, output_verify="silentfix")
    return n_cr, _write_products(output, looks, settings)

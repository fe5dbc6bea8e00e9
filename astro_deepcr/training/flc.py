# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Small synthetic HST ACS/WFC-like ``_flc.fits`` files with known cosmic rays.

The files carry exactly the keywords AstroDrizzle (drizzlepac 3.11) needs to
run offline (no reference files, no CRDS): ``IDCTAB``, ``NPOLFILE``,
``D2IMFILE`` and ``DGEOFILE`` are ``'N/A'``, the primary header has the ACS
gain / read-noise / exposure keywords and every ``SCI`` header a celestial
TAN WCS, ``BUNIT='ELECTRONS'``, ``CCDCHIP``, ``NGOODPIX``, ``EXPNAME``,
``MEANDARK`` and ``LTV``/``LTM``.

One noiseless scene (`astro_deepcr.training.simulate.make_scene`) is cut
into two chips per exposure at integer-pixel dither offsets, so every
exposure sees the same sky and the WCS maps them exactly. Noise and cosmic
rays come from `astro_deepcr.training.simulate.simulate_exposure` with its
defaults (nothing tuned). The DQ arrays carry a few realistic flags (hot,
warm, bad column, saturation, an old ``calacs`` 8192 flag) so tests can
check that only ``crbit`` changes.

Used by the drizzle tests, the benchmarks and the CLI tests (the drizzle
comparison built on them is `astro_deepcr.evaluation.drizzle_compare`)::

    from astro_deepcr.training.flc import write_flc_stack
    stack = write_flc_stack(tmp_path, n_exposures=3)
    stack.files            # list of str paths to the _flc files
    stack.truth_files      # CR-free copies (same names, in truth/)
    stack.cr_masks[i][k]   # bool truth mask of exposure i, SCI,k+1
"""

import dataclasses
import os

import numpy as np
from astropy.io import fits

from .simulate import make_scene, simulate_exposure

__all__ = ["FlcStack", "write_flc_stack", "flc_primary_header", "flc_sci_header", "DITHERS"]

PIXEL_SCALE_ARCSEC = 0.05  # ACS/WFC
#: integer (dy, dx) pixel dither offsets of successive exposures
DITHERS = ((0, 0), (5, 7), (11, 3), (2, 13), (8, 9))
_CRVAL = (150.1, 2.2)
_MARGIN = 16


@dataclasses.dataclass
class FlcStack:
    """What `write_flc_stack` wrote.

    Attributes
    ----------
    files : list of str
        The ``_flc.fits`` files with cosmic rays.
    truth_files : list of str
        The same exposures without cosmic rays (same file names, in
        ``<directory>/truth``), for drizzling the CR-free truth.
    cr_masks : list of list of ndarray
        ``cr_masks[i][k]``: injected-CR truth of exposure ``i``, chip ``SCI,k+1``.
    images, clean : list of list of ndarray
        The SCI arrays written with and without cosmic rays.
    dq : list of list of ndarray
        The DQ arrays written (identical in both sets of files).
    sky : float
        Sky level in electrons.
    """

    files: list
    truth_files: list
    cr_masks: list
    images: list
    clean: list
    dq: list
    sky: float = 0.0


def flc_primary_header(rootname, exptime=500.0, filter1="F606W", filter2="CLEAR2L", expstart=60000.0,
                       read_noise=4.0, instrument="ACS", detector="WFC"):
    """Primary header of a synthetic ACS/WFC ``_flc`` file (offline-drizzlable)."""
    header = fits.Header()
    cards = {
        "TELESCOP": "HST", "INSTRUME": instrument, "DETECTOR": detector, "ROOTNAME": rootname,
        "FILENAME": f"{rootname}_flc.fits", "FILETYPE": "SCI", "PRIMESI": instrument, "OBSTYPE": "IMAGING",
        "EXPTIME": exptime, "TEXPTIME": exptime, "EXPSTART": expstart, "EXPEND": expstart + exptime / 86400.0,
        "FILTER1": filter1, "FILTER2": filter2, "CCDAMP": "ABCD", "CCDGAIN": 2.0, "PA_V3": 0.0,
        "IDCTAB": "N/A", "NPOLFILE": "N/A", "D2IMFILE": "N/A", "DGEOFILE": "N/A", "FLATCORR": "COMPLETE",
        "DRIZCORR": "PERFORM", "BUNIT": "ELECTRONS",
    }
    for key, value in cards.items():
        header[key] = value
    for amp in "ABCD":
        header[f"ATODGN{amp}"] = 2.0
        header[f"READNSE{amp}"] = read_noise
    return header


def flc_sci_header(rootname, chip, crpix, extver, shape):
    """``SCI`` header of chip ``extver``: TAN WCS with CRPIX ``crpix`` (x, y, 1-based)."""
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    header = fits.Header()
    cards = {
        "EXTNAME": "SCI", "EXTVER": extver, "BUNIT": "ELECTRONS", "CCDCHIP": chip, "EXPNAME": rootname,
        "NGOODPIX": shape[0] * shape[1], "MEANDARK": 1.0, "ORIENTAT": 0.0,
        "WCSAXES": 2, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CUNIT1": "deg", "CUNIT2": "deg",
        "CRPIX1": float(crpix[0]), "CRPIX2": float(crpix[1]), "CRVAL1": _CRVAL[0], "CRVAL2": _CRVAL[1],
        "CD1_1": -scale, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": scale,
        "LTV1": 0.0, "LTV2": 0.0, "LTM1_1": 1.0, "LTM2_2": 1.0,
    }
    for key, value in cards.items():
        header[key] = value
    return header


def _extension_header(name, extver, sci_header):
    header = fits.Header()
    header["EXTNAME"] = name
    header["EXTVER"] = extver
    for key in ("BUNIT", "CCDCHIP", "WCSAXES", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2",
                "CRVAL1", "CRVAL2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "LTV1", "LTV2", "LTM1_1", "LTM2_2"):
        if name == "DQ" and key == "BUNIT":
            header[key] = "UNITLESS"
        else:
            header[key] = sci_header[key]
    return header


def _dq_flags(shape, rng, saturated):
    """A realistic sprinkling of DQ flags (none of them 4096)."""
    dq = np.zeros(shape, dtype=np.int16)
    n = shape[0] * shape[1]
    for bit, fraction in ((16, 0.003), (32, 0.001), (64, 0.005), (8192, 0.0005)):
        flat = rng.choice(n, int(n * fraction), replace=False)
        dq.flat[flat] |= bit
    dq[:, int(rng.integers(0, shape[1]))] |= 4  # a bad column
    dq[saturated] |= 256
    return dq


def _write_flc(path, primary, chips, read_noise):
    hdus = [fits.PrimaryHDU(header=primary)]
    for extver, (sci, dq, sci_header) in enumerate(chips, start=1):
        err = np.sqrt(np.clip(sci, 0, None) + read_noise**2).astype(np.float32)
        hdus.append(fits.ImageHDU(sci.astype(np.float32), header=sci_header))
        hdus.append(fits.ImageHDU(err, header=_extension_header("ERR", extver, sci_header)))
        hdus.append(fits.ImageHDU(dq.astype(np.int16), header=_extension_header("DQ", extver, sci_header)))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def write_flc_stack(directory, n_exposures=3, chip_shape=(128, 256), field="extragalactic", exptime=500.0,
                    sky=60.0, read_noise=4.0, filter1="F606W", seed=1, saturate=True, prefix="jsyn", detector=None):
    """Write ``n_exposures`` dithered 2-chip ACS/WFC-like ``_flc`` files of one field.

    Parameters
    ----------
    directory : str or path-like
        Where to write; CR-free copies go to ``directory/truth``.
    n_exposures : int
        Number of exposures (at most ``len(DITHERS)``).
    chip_shape : tuple of int
        numpy shape ``(ny, nx)`` of each chip (real ACS/WFC: ``(2048, 4096)``).
    field, exptime, sky, read_noise :
        Passed to the simulator (electrons, seconds).
    filter1 : str
        ``FILTER1`` keyword (``FILTER2`` is ``CLEAR2L``).
    seed : int
        Seed of everything random.
    saturate : bool
        Add one bright star whose core is saturated (DQ 256) in every exposure.
    prefix : str
        Four-character rootname prefix; rootnames are ``<prefix>NNNNq``.
    detector : `~astro_deepcr.training.detector.Detector`, optional
        Simulate detector features per chip; their hot, bad-column and
        saturation flags are OR-ed into DQ (default none: unchanged files).

    Returns
    -------
    stack : `FlcStack`
    """
    if not 1 <= n_exposures <= len(DITHERS):
        raise ValueError(f"n_exposures must lie in [1, {len(DITHERS)}], not {n_exposures}")
    rng = np.random.default_rng(seed)
    ny, nx = chip_shape
    scene_shape = (2 * ny + 2 * _MARGIN, nx + 2 * _MARGIN)
    scene = make_scene(scene_shape, field, exptime, seed=rng)
    star = None
    if saturate:
        star = (ny + _MARGIN + ny // 2, _MARGIN + nx // 2)  # in the upper chip of every exposure
        yy, xx = np.mgrid[: scene_shape[0], : scene_shape[1]]
        scene += 3e5 * np.exp(-((yy - star[0]) ** 2 + (xx - star[1]) ** 2) / (2 * 1.0**2))
    full_well = 80000.0
    crpix_scene = (scene_shape[1] / 2 + 0.5, scene_shape[0] / 2 + 0.5)  # (x, y), 1-based
    directory = os.fspath(directory)
    truth_dir = os.path.join(directory, "truth")
    os.makedirs(truth_dir, exist_ok=True)
    stack = FlcStack([], [], [], [], [], [], sky=sky)
    for i in range(n_exposures):
        rootname = f"{prefix}{i + 1:04d}q"
        primary = flc_primary_header(rootname, exptime, filter1, expstart=60000.0 + i * 0.01,
                                     read_noise=read_noise)
        dy, dx = DITHERS[i]
        chips, truth_chips, masks, images, cleans, dqs = [], [], [], [], [], []
        # SCI,1 is WFC2 (CCDCHIP=2, lower on the sky); SCI,2 is WFC1 (CCDCHIP=1)
        for extver, chip in ((1, 2), (2, 1)):
            y0 = _MARGIN + dy - 8 + (extver - 1) * ny
            x0 = _MARGIN + dx - 8
            cut = scene[y0:y0 + ny, x0:x0 + nx]
            exposure = simulate_exposure(chip_shape, exptime=exptime, sky=sky, read_noise=read_noise,
                                         scene=cut, seed=rng, detector=detector)
            saturated = np.zeros(chip_shape, dtype=bool)
            image, clean = exposure["image"], exposure["clean"]
            if saturate:
                saturated = (cut + sky) > full_well
                image = np.where(saturated, full_well, image).astype(np.float32)
                clean = np.where(saturated, full_well, clean).astype(np.float32)
            dq = _dq_flags(chip_shape, rng, saturated) | exposure["dq"]
            header = flc_sci_header(rootname, chip, (crpix_scene[0] - x0, crpix_scene[1] - y0), extver,
                                    chip_shape)
            chips.append((image, dq, header))
            truth_chips.append((clean, dq, header))
            masks.append(exposure["cr_mask"] & ~saturated)
            images.append(image)
            cleans.append(clean)
            dqs.append(dq)
        path = os.path.join(directory, f"{rootname}_flc.fits")
        truth_path = os.path.join(truth_dir, f"{rootname}_flc.fits")
        _write_flc(path, primary, chips, read_noise)
        _write_flc(truth_path, primary, truth_chips, read_noise)
        stack.files.append(path)
        stack.truth_files.append(truth_path)
        stack.cr_masks.append(masks)
        stack.images.append(images)
        stack.clean.append(cleans)
        stack.dq.append(dqs)
    return stack

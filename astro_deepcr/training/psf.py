# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Point-spread functions for the simulator: drizzlepac's TinyTim models.

drizzlepac ships one TinyTim PSF per filter and detector in
``drizzlepac/pars/psfs`` (its README): for ACS/WFC a 122 x 122 px model
(0.0494"/px, 6" across) computed for chip 2 at its centre (``X_PSF, Y_PSF =
2048, 1024``), a 5000 K blackbody, without the CCD charge-diffusion kernel,
which its header lists and says to apply. ACS/WFC F435W, F606W and F814W all
ship, as does ACS/HRC F606W (242 x 242 px, 0.025"/px, centre of the chip).
The full model keeps about 5 % of the light outside the central 25 x 25 px
(measured: F606W 4.7 %, F435W 5.0 %, F814W 4.8 %, before charge diffusion).

**Variation across the chip is not shipped**: only one position per filter
exists, so `psf_at` models it as a documented assumption, not data: a
Gaussian broadening of sigma ``broadening * (r / r_max)**2`` px, zero at the
position TinyTim modelled and ``broadening`` (default 0.3 px, assumed) at
the farthest corner of the chip, a smooth focus-like term; at the corner the
F606W peak drops by 12 % (measured: 0.877 of the unbroadened peak). The ACS/WFC PSF
is known to vary across the field (Anderson & King 2006, ACS ISR 2006-01);
the size of the term here is assumed, not fitted.

`tinytim_models` and `phased_psf` serve the ground simulator's HST-like
frames (`astro_deepcr.training.ground.SceneMix.hst_psf`): every ACS/WFC and
WFC3/UVIS model drizzlepac ships (ACS/HRC's are left out, since its real frame
is scored; WFPC2 ships none), at the detector's sampling or binned 2 x 2 (about
WFPC2's 0.1"/px WF sampling), with a star's sub-pixel phase applied before
the binning.
"""

import functools
import glob
import importlib.util
import os

import numpy as np
from scipy import ndimage

__all__ = ["PSF_FILTERS", "WFC_CHIP_SHAPE", "TINYTIM_CAMERAS", "psf_image", "psf_at", "psf_path", "tinytim_models",
           "phased_psf"]

#: ACS/WFC broad-band filters whose TinyTim model drizzlepac ships (the filters of the ACS-WFC model's data).
PSF_FILTERS = ("f435w", "f606w", "f814w")
#: numpy shape (rows, columns) of one ACS/WFC chip; rows are the parallel (readout) direction.
WFC_CHIP_SHAPE = (2048, 4096)
#: The CCD cameras whose TinyTim models the simulator's HST-like frames use (ACS/HRC left out: its frame is scored).
TINYTIM_CAMERAS = (("acs", "wfc"), ("wfc3", "uvis"))
#: chip position (row, column) TinyTim modelled for ACS/WFC (header ``Y_PSF, X_PSF``).
WFC_PSF_POSITION = (1024.0, 2048.0)


def _psf_root():
    """drizzlepac's folder of TinyTim models, found without importing drizzlepac (slow, noisy).

    Raises
    ------
    ImportError
        drizzlepac is not installed.
    """
    package = importlib.util.find_spec("drizzlepac")
    if package is None:
        raise ImportError("the TinyTim PSFs come with drizzlepac, which is not installed: "
                          'pip install "astro_deepcr[drizzle]"')
    return os.path.join(package.submodule_search_locations[0], "pars", "psfs")


def psf_path(instrument="acs", detector="wfc", filter_name="f606w"):
    """Path of drizzlepac's TinyTim PSF, without importing drizzlepac (slow, noisy).

    Raises
    ------
    ImportError
        drizzlepac is not installed.
    FileNotFoundError
        drizzlepac ships no PSF for this instrument, detector and filter.
    """
    name = f"{instrument.lower()}_{detector.lower()}_{filter_name.lower()}.fits"
    path = os.path.join(_psf_root(), instrument.lower(), detector.lower(), name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"drizzlepac ships no TinyTim PSF {name}")
    return path


def _diffusion_kernel(header):
    """The 3x3 CCD charge-diffusion kernel TinyTim lists in COMMENT cards, or None."""
    comments = [str(card) for card in header.get("COMMENT", [])]
    for i, line in enumerate(comments):
        if "following kernel" in line:
            try:
                rows = [[float(v) for v in comments[i + k].split()] for k in (1, 2, 3)]
            except (ValueError, IndexError):
                return None
            kernel = np.array(rows)
            return kernel if kernel.shape == (3, 3) else None
    return None


def psf_image(instrument="acs", detector="wfc", filter_name="f606w", size=25, charge_diffusion=True, fallback=True):
    """A normalised PSF stamp: drizzlepac's TinyTim model, or a 2 px FWHM Gaussian.

    Parameters
    ----------
    instrument, detector, filter_name : str
        Which TinyTim file (e.g. ``"acs", "wfc", "f814w"``).
    size : int or None
        Side of the stamp cut about the peak; ``None`` keeps the whole model
        with its wings (122 x 122 px for ACS/WFC). The default 25 is the
        historical crop, which loses ~5 % of the light.
    charge_diffusion : bool
        Convolve with the CCD charge-diffusion kernel listed in the header
        (for ACS/WFC F606W 0.594 in the central pixel); TinyTim did not apply it.
    fallback : bool
        Where the model cannot be read, return the Gaussian stand-in below
        (True) or raise (False).

    Returns
    -------
    psf : ndarray of float64
        Sums to 1. Without drizzlepac (or without that filter) a Gaussian of
        2 px FWHM, ``size`` (25 if None) px across, unless ``fallback`` is False.

    Raises
    ------
    ImportError, OSError
        With ``fallback=False``: drizzlepac is not installed, or it ships no
        readable model for this instrument, detector and filter.
    """
    from astropy.io import fits

    try:
        with fits.open(psf_path(instrument, detector, filter_name)) as hdul:
            psf = np.asarray(hdul[0].data, dtype=np.float64)
            kernel = _diffusion_kernel(hdul[0].header) if charge_diffusion else None
    except (ImportError, OSError):
        if not fallback:
            raise
        side = 25 if size is None else size
        y, x = np.mgrid[:side, :side] - side // 2
        psf = np.exp(-(x**2 + y**2) / (2 * (2.0 / 2.3548) ** 2))
        return psf / psf.sum()
    if kernel is not None:
        psf = ndimage.convolve(psf, kernel / kernel.sum(), mode="constant")
    if size is not None:
        centre = np.array(np.unravel_index(np.argmax(psf), psf.shape))
        lo = np.clip(centre - size // 2, 0, None)
        psf = psf[lo[0]:lo[0] + size, lo[1]:lo[1] + size]
    return psf / psf.sum()


def psf_at(position, psf=None, filter_name="f606w", broadening=0.3, chip_shape=WFC_CHIP_SHAPE,
           modelled_at=WFC_PSF_POSITION):
    """The PSF at a chip position (row, column), with the assumed smooth variation.

    Parameters
    ----------
    position : (float, float)
        Row and column on the chip.
    psf : ndarray, optional
        The PSF at ``modelled_at``; default the full TinyTim model of ``filter_name``.
    broadening : float
        Gaussian sigma (px) added at the chip corner farthest from
        ``modelled_at``, growing as the square of the distance (assumed; see
        the module docstring). 0 turns the variation off.

    Returns
    -------
    psf : ndarray of float64
        Same shape as ``psf``, sums to 1.
    """
    psf = psf_image(filter_name=filter_name, size=None) if psf is None else psf
    corners = np.array([[0, 0], [0, chip_shape[1]], [chip_shape[0], 0], list(chip_shape)], float)
    r_max = np.max(np.hypot(*(corners - np.asarray(modelled_at)).T))
    r = np.hypot(position[0] - modelled_at[0], position[1] - modelled_at[1])
    sigma = broadening * min(r / r_max, 1.0) ** 2
    if sigma <= 0:
        return psf / psf.sum()
    # a continuous Gaussian blur (in Fourier space): sampling a 0.3 px Gaussian on the pixel grid would be a delta
    out = np.clip(np.fft.ifft2(ndimage.fourier_gaussian(np.fft.fft2(psf), sigma)).real, 0, None)
    return out / out.sum()


def tinytim_models(cameras=TINYTIM_CAMERAS):
    """``{(instrument, detector): [filter, ...]}`` of the TinyTim models drizzlepac ships for ``cameras``.

    Raises
    ------
    ImportError
        drizzlepac is not installed (the HST-like frames need its models; there is no stand-in).
    """
    root = _psf_root()
    models = {}
    for instrument, detector in cameras:
        pattern = os.path.join(root, instrument, detector, f"{instrument}_{detector}_*.fits")
        names = sorted(os.path.basename(path)[len(instrument) + len(detector) + 2:-5] for path in glob.glob(pattern))
        if names:
            models[(instrument, detector)] = names
    return models


@functools.lru_cache(maxsize=128)
def _model_spectrum(instrument, detector, filter_name, side):
    """The Fourier transform of the TinyTim model (charge diffusion applied), cut to ``side`` px about its peak,
    and the centroid of its core (9 x 9 px) relative to the central pixel ``(row, column)``."""
    psf = psf_image(instrument, detector, filter_name, size=side, fallback=False)
    if psf.shape != (side, side):
        raise ValueError(f"the TinyTim model {instrument}_{detector}_{filter_name} is smaller than {side} px")
    core = psf[side // 2 - 4:side // 2 + 5, side // 2 - 4:side // 2 + 5]
    y, x = np.mgrid[-4:5, -4:5]
    return np.fft.fft2(psf), ((core * y).sum() / core.sum(), (core * x).sum() / core.sum())


def phased_psf(instrument, detector, filter_name, size, binning=1, offset=(0.0, 0.0)):
    """A TinyTim PSF (sum 1, ``size`` x ``size`` px) at a sub-pixel phase, optionally binned.

    Parameters
    ----------
    instrument, detector, filter_name : str
        Which model (see `tinytim_models`); the header's charge-diffusion kernel is applied.
    size : int
        Odd side of the stamp, in binned pixels.
    binning : int
        Pixels of the model summed along each axis into one pixel of the stamp (2: the WF chips' sampling
        from ACS/WFC's 0.05"/px).
    offset : (float, float)
        Where the centroid of the PSF's core falls relative to the centre of the stamp's central pixel
        (binned px, each within +-0.5): the model is moved there before binning, by a Fourier shift (the
        model is already integrated over its pixels, so a shift by a fraction of one interpolates between
        its samples).

    Raises
    ------
    ImportError, FileNotFoundError
        drizzlepac, or that model, is missing.
    """
    if size % 2 != 1 or binning < 1:
        raise ValueError(f"size must be odd and binning >= 1, not {size!r}, {binning!r}")
    side = size * binning + 4 * binning  # room for the shift
    spectrum, centroid = _model_spectrum(instrument, detector, filter_name, side)
    # in model pixels, from the model's centroid; with even binning the binned central pixel's centre lies
    # between two model pixels
    half = 0.5 if binning % 2 == 0 else 0.0
    shift = [binning * float(o) - c - half for o, c in zip(offset, centroid)]
    fy, fx = np.fft.fftfreq(side)[:, None], np.fft.fftfreq(side)[None, :]
    moved = np.fft.ifft2(spectrum * np.exp(-2j * np.pi * (fy * shift[0] + fx * shift[1]))).real.clip(0, None)
    # the binned central pixel covers model pixels side // 2 - binning // 2 ... side // 2 - binning // 2 + binning - 1
    start = side // 2 - binning // 2 - (size // 2) * binning
    stamp = moved[start:start + size * binning, start:start + size * binning]
    stamp = stamp.reshape(size, binning, size, binning).sum(axis=(1, 3))
    return stamp / stamp.sum()

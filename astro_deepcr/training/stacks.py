# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Cosmic-ray ground truth from stacks of exposures of one field.

Zhang & Bloom (2020, Sect. 3) labelled their HST training data by running
AstroDrizzle on 3+ exposures of a field: the median of the (drizzled) stack
is blotted back to every exposure and ``driz_cr`` flags pixels deviating
from it by more than S/N 5, their neighbours above S/N 1.5, and grows the
mask by one pixel.  Two ways to do the same here:

- `stack_cr_masks`: a direct implementation for pre-aligned 2-D arrays with
  a CCD noise model (sky + Poisson + read noise, electrons);
- `astrodrizzle_cr_masks`: drizzlepac's real AstroDrizzle
  ``driz_separate``/``median``/``blot``/``driz_cr`` steps on ``_flt``/``_flc``
  files, reading back the ``<root>_sci<n>_crmask.fits`` files it writes.
"""

import contextlib
import glob
import io
import os
import shutil
import warnings

import numpy as np
from scipy import ndimage

from ..dq import DEFAULT_BITS, good_pixels

__all__ = ["stack_cr_masks", "astrodrizzle_cr_masks", "read_flc_chips"]


def _deriv(image):
    """Largest absolute difference to the 8 neighbours (drizzlepac's ``quickDeriv.qderiv``)."""
    padded = np.pad(image, 1, mode="edge")
    ny, nx = image.shape
    deriv = np.zeros_like(image)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                shifted = padded[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
                deriv = np.maximum(deriv, np.abs(image - shifted))
    return deriv


def stack_cr_masks(images, read_noise, gain=1.0, bad=None, snr=(5.0, 1.5), scale=(0.0, 0.0), grow=1):
    """Per-exposure CR masks from a stack of aligned exposures (driz_cr, direct).

    Parameters
    ----------
    images : sequence of 2-D arrays
        Three or more aligned exposures of one field in electrons, sky
        included (the noise model needs it).
    read_noise : float or sequence of float
        Read noise in electrons, one value or one per exposure.
    gain : float
        Electrons per data unit (1 for data in electrons).
    bad : sequence of 2-D bool arrays, optional
        Bad pixels per exposure; excluded from the median, never flagged.
    snr : (float, float)
        S/N of a CR pixel and of its 8 neighbours (``driz_cr_snr``; the
        deepCR paper used ``5 1.5``).
    scale : (float, float)
        Multiples of the local derivative of the median added to the
        tolerance (``driz_cr_scale``); 0 for exactly aligned arrays, where
        there is no resampling error to absorb.
    grow : int
        Radius of the final box growth (``driz_cr_grow``).

    Returns
    -------
    masks : list of ndarray of bool
    median : ndarray
    """
    stack = np.asarray(images, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[0] < 3:
        raise ValueError(f"need a stack of at least 3 aligned 2-D exposures, got shape {stack.shape}")
    bad = np.zeros(stack.shape, bool) if bad is None else np.asarray(bad, bool)
    read_noise = np.broadcast_to(np.asarray(read_noise, dtype=np.float64), (stack.shape[0],))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-bad pixels give NaN
        median = np.nanmedian(np.where(bad, np.nan, stack), axis=0)
    median = np.where(np.isfinite(median), median, 0.0)
    deriv = _deriv(median)
    neighbours = np.ones((3, 3), bool)
    masks = []
    for image, bad_pixels, rn in zip(stack, bad, read_noise, strict=True):
        noise = np.sqrt(np.clip(median * gain, 0, None) + rn**2) / gain
        excess = image - median
        core = (excess > snr[0] * noise + scale[0] * deriv) & ~bad_pixels
        near = ndimage.binary_dilation(core, neighbours)
        mask = core | (near & (excess > snr[1] * noise + scale[1] * deriv))
        if grow > 0:
            mask = ndimage.binary_dilation(mask, np.ones((2 * grow + 1,) * 2, bool))
        masks.append(mask & ~bad_pixels)
    return masks, median


@contextlib.contextmanager
def _quiet_in(directory):
    previous = os.getcwd()
    os.chdir(directory)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        os.chdir(previous)


def astrodrizzle_cr_masks(files, workdir, snr="5.0 1.5", scale="1.2 0.7", grow=1, combine_type="median",
                          **astrodrizzle_kwargs):
    """Per-chip CR masks of ``_flt``/``_flc`` files from drizzlepac's AstroDrizzle.

    The files are copied to ``workdir`` (AstroDrizzle edits its inputs) and
    AstroDrizzle runs ``static``, ``skysub``, ``driz_separate``, ``median``,
    ``blot`` and ``driz_cr`` (no final drizzle) with the deepCR paper's
    ``driz_cr_snr="5.0 1.5"`` and a growth radius of 1 pixel.

    Parameters
    ----------
    files : sequence of str
        Three or more exposures of one field.
    workdir : str
        Scratch folder (created).
    snr, scale, combine_type :
        ``driz_cr_snr``, ``driz_cr_scale``, ``combine_type``.
    grow : int
        Growth *radius*; passed as ``driz_cr_grow = 2 * grow + 1``, because
        drizzlepac 3.11 applies ``driz_cr_grow`` as the side of a square box
        (1: no growth, 0: no CR at all) although its docs call it a radius.
    **astrodrizzle_kwargs :
        More AstroDrizzle parameters.

    Returns
    -------
    masks : list of list of ndarray of bool
        ``masks[i][k]``: CR pixels of chip ``SCI,k+1`` of ``files[i]``.
    """
    if len(files) < 3:
        raise ValueError(f"need at least 3 exposures, got {len(files)}")
    os.makedirs(workdir, exist_ok=True)
    local = [shutil.copy(path, workdir) for path in files]
    params = {"output": "stackmedian", "num_cores": 1, "context": False, "preserve": False, "build": False,
              "driz_separate": True, "median": True, "blot": True, "driz_cr": True, "driz_combine": False,
              "combine_type": combine_type, "driz_cr_snr": snr, "driz_cr_scale": scale,
              # drizzlepac documents driz_cr_grow as a radius but uses it as the side of a box
              # (drizCR.py:344-368; 0 even disables the mask): a radius r is a box of 2r + 1
              "driz_cr_grow": 2 * int(grow) + 1}
    params.update(astrodrizzle_kwargs)
    with _quiet_in(workdir):
        from drizzlepac.astrodrizzle import AstroDrizzle  # noisy import: deprecation warnings of its dependencies

        AstroDrizzle([os.path.basename(path) for path in local], **params)
    masks = []
    for path in local:
        root = os.path.basename(path).rsplit("_", 1)[0]
        names = sorted(glob.glob(os.path.join(workdir, f"{root}_sci*_crmask.fits")),
                       key=lambda name: int(name.rsplit("_sci", 1)[1].split("_")[0]))
        if not names:
            raise RuntimeError(f"AstroDrizzle wrote no crmask for {path}; see {workdir} for its log")
        from astropy.io import fits

        masks.append([fits.getdata(name) == 0 for name in names])  # driz_cr: 1 = good, 0 = CR
    return masks


def read_flc_chips(path, bad_bits=None):
    """``[(sci, bad, read_noise), ...]`` per SCI chip of an HST ``_flt``/``_flc`` file (electrons).

    ``bad`` is any DQ bit set other than the CR bits 4096 and 8192 (or any
    of ``bad_bits`` when given).
    """
    from astropy.io import fits

    chips = []
    with fits.open(path) as hdul:
        primary = hdul[0].header
        noise = [primary.get(f"READNSE{amp}", 0.0) for amp in "ABCD"]
        read_noise = float(np.mean([value for value in noise if value])) if any(noise) else 0.0
        extver = 1
        while ("SCI", extver) in hdul:
            sci = np.asarray(hdul["SCI", extver].data, dtype=np.float32)
            dq = np.asarray(hdul["DQ", extver].data, dtype=np.int64) if ("DQ", extver) in hdul else 0 * sci
            bad = (dq & bad_bits) != 0 if bad_bits is not None else ~good_pixels(dq, DEFAULT_BITS)
            chips.append((sci, bad, read_noise))
            extver += 1
    return chips

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``driz_cr_corr``'s product for the deepCR route of `astro_deepcr.astrodrizzle`: ``<rootname>_crclean.fits``.

AstroDrizzle's driz_cr step writes, with ``driz_cr_corr=True``, a copy of each input with its cosmic rays
replaced by the median image's values. With the median, blot and driz_cr steps replaced by deepCR masks there is
no median image: `write_crclean` inpaints the flagged pixels instead (`~astro_deepcr.DeepCR.inpaint`) and sets the
DQ to ``crbit`` there and 0 elsewhere, as driz_cr's file has it.
"""

import contextlib
import logging
import os

import numpy as np
from astropy.io import fits

__all__ = ["crclean_name", "write_crclean"]

log = logging.getLogger(__name__)


def crclean_name(filename):
    """``<rootname>_crclean.fits``, AstroDrizzle's name for driz_cr_corr's output (`stsci.tools` rootname)."""
    from stsci.tools import fileutil

    return f"{fileutil.buildNewRootname(os.fspath(filename))}_crclean.fits"


def write_crclean(filename, summary, settings):
    """driz_cr_corr's file: a copy of ``filename`` with the flagged pixels inpainted, DQ = crbit there, 0 elsewhere.

    The cosmic rays are the DQ pixels with ``crbit`` after flagging; they
    are inpainted in electrons by `~astro_deepcr.DeepCR.inpaint` (pixels of
    ``fill_bits`` are neither replaced nor used).
    """
    from ..deepcr import DeepCR
    from ..dq import flagged_pixels
    from ..units import electron_factor

    crbit = settings["crbit"]
    outfile = crclean_name(filename)
    with contextlib.suppress(FileNotFoundError):
        os.remove(outfile)
    with fits.open(filename, memmap=False) as hdul:
        primary = hdul[0].header
        for sci in [hdu for hdu in hdul if hdu.name == "SCI" and hdu.data is not None]:
            rows = summary[(summary["file"] == filename) & (summary["extver"] == sci.ver)]
            model = rows["model"][0] if len(rows) else settings["model"]
            dq_hdu = hdul["DQ", sci.ver]
            dq = np.asarray(dq_hdu.data).astype(np.int64)
            cr_mask = (dq & crbit) != 0
            factor = electron_factor(sci.header, primary, "electron", gain=None)
            detector = DeepCR(mask=model, device=settings["device"], precision=settings["precision"],
                              progress=False)
            cleaned = detector.inpaint(np.asarray(sci.data, dtype=np.float64) * factor, cr_mask,
                                       inmask=flagged_pixels(dq, settings["fill_bits"], crbit))
            # only the cosmic rays change: x factor / factor truncated the rest of an integer image (399.99... -> 399)
            values = np.array(sci.data)
            replaced = cleaned[cr_mask] / factor
            values[cr_mask] = replaced if values.dtype.kind == "f" else np.rint(replaced)
            sci.data = values
            dq_hdu.data = np.where(cr_mask, crbit, 0).astype(dq_hdu.data.dtype)
        hdul.writeto(outfile)
    log.info(f"deepCR: wrote {outfile} (cosmic rays inpainted, DQ = {crbit} at them)")
    return outfile

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
deepCR vs AstroDrizzle's driz_cr vs no rejection on a synthetic ``_flc`` stack.

`compare_cr_rejection` writes a stack with known cosmic rays
(`astro_deepcr.training.flc.write_flc_stack`), flags it, drizzles it with
the real AstroDrizzle in several ways and scores masks and drizzled products
against the injected truth; `cr_positions_in_output` maps input CR pixels
onto a drizzled product. Run by ``benchmarks/drizzle_compare.py``; needs
drizzlepac (``pip install "astro_deepcr[drizzle]"``).
"""

import contextlib
import io
import os
import shutil
import warnings

import numpy as np
from astropy.io import fits

from ..dq import CALACS_CRBIT, CR_BIT
from ..training.flc import write_flc_stack
from .metrics import mask_scores

__all__ = ["cr_positions_in_output", "compare_cr_rejection", "sky_before_after"]


def cr_positions_in_output(flc_files, cr_masks, drizzled_header):
    """Boolean map, on the grid of a drizzled product, of output pixels hit by any input CR.

    Input CR pixel centres are mapped through the SCI WCS of their chip to
    the product's WCS and rounded to the nearest output pixel.
    """
    from astropy.wcs import WCS

    out_wcs = WCS(drizzled_header)
    shape = (drizzled_header["NAXIS2"], drizzled_header["NAXIS1"])
    hit = np.zeros(shape, dtype=bool)
    for path, masks in zip(flc_files, cr_masks, strict=True):
        with fits.open(path) as hdul:
            for extver, mask in enumerate(masks, start=1):
                ys, xs = np.nonzero(mask)
                if ys.size == 0:
                    continue
                world = WCS(hdul["SCI", extver].header).pixel_to_world_values(xs, ys)
                ox, oy = out_wcs.world_to_pixel_values(*world)
                ox, oy = np.round(ox).astype(int), np.round(oy).astype(int)
                keep = (ox >= 0) & (oy >= 0) & (ox < shape[1]) & (oy < shape[0])
                hit[oy[keep], ox[keep]] = True
    return hit


_NO_REJECTION = {"driz_cr": False, "median": False, "blot": False, "driz_separate": False}
_COMMON = {"num_cores": 1, "context": False, "preserve": False}


@contextlib.contextmanager
def _in(directory, quiet=True):
    previous = os.getcwd()
    os.makedirs(directory, exist_ok=True)
    os.chdir(directory)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.chdir(previous)


def _copy(files, directory):
    os.makedirs(directory, exist_ok=True)
    return [shutil.copy(path, directory) for path in files]


def _drizzle(files, directory, output, cr_method=None, **extra):
    from drizzlepac.astrodrizzle import AstroDrizzle

    from ..drizzle import astrodrizzle

    files = _copy(files, directory)
    names = [os.path.basename(path) for path in files]
    with _in(directory):
        if cr_method is None:
            AstroDrizzle(names, output=output, **_COMMON, **_NO_REJECTION, **extra)
        else:
            astrodrizzle(names, cr_method=cr_method, output=output, **_COMMON, **extra)
    with fits.open(os.path.join(directory, f"{output}_drc_sci.fits")) as hdul:
        sci = hdul[0].data.astype(np.float64)
        header = hdul[0].header
    with fits.open(os.path.join(directory, f"{output}_drc_wht.fits")) as hdul:
        wht = hdul[0].data.astype(np.float64)
    return sci, wht, header, files


def _crmasks(directory, files):
    masks = []
    for path in files:
        root = os.path.basename(path).split("_")[0]
        masks.append([fits.getdata(os.path.join(directory, f"{root}_sci{k}_crmask.fits")) == 0 for k in (1, 2)])
    return masks


def _dq_valid(stack, index, extver, crbit=CR_BIT):
    return (stack.dq[index][extver - 1].astype(np.int64) & ~(crbit | CALACS_CRBIT)) == 0


def compare_cr_rejection(workdir, shape=(256, 512), seed=1, n_exposures=3):
    """deepCR vs driz_cr vs no rejection on one synthetic stack; see ``benchmarks/drizzle_compare.py``.

    Runs the real AstroDrizzle (offline, ``num_cores=1``) in sub-folders of
    ``workdir``. Returns a dict: ``deepcr_flag`` / ``drizcr_flag``
    (recall, FPR, precision on the injected truth, pixels not bad in DQ),
    ``agreement_vs_drizcr`` (the same with driz_cr's masks as the truth),
    ``residual`` and ``residual_elsewhere`` (final ``_drc_sci`` minus the
    drizzled CR-free truth at output pixels hit / not hit by injected CRs).
    """
    from ..drizzle import flag_cosmic_rays

    stack = write_flc_stack(os.path.join(workdir, "data"), n_exposures, chip_shape=shape, seed=seed)
    results = {"n_cr_pixels": int(sum(m.sum() for ms in stack.cr_masks for m in ms))}

    # deepCR flags, one exposure at a time
    flagged = _copy(stack.files, os.path.join(workdir, "flag"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flag_cosmic_rays(flagged)
    deep_masks = [[(fits.getdata(path, ("DQ", k)).astype(np.int64) & CR_BIT) > 0 for k in (1, 2)]
                  for path in flagged]

    # classic driz_cr on the stack
    sci_dc, wht_dc, header, dc_files = _drizzle(stack.files, os.path.join(workdir, "drizcr"), "drizcr",
                                                cr_method="driz_cr")
    dc_masks = _crmasks(os.path.join(workdir, "drizcr"), dc_files)

    def scores(masks):
        found = np.concatenate([m[k].ravel() for m in masks for k in (0, 1)])
        truth = np.concatenate([m[k].ravel() for m in stack.cr_masks for k in (0, 1)])
        valid = np.concatenate([_dq_valid(stack, i, k).ravel() for i in range(n_exposures) for k in (1, 2)])
        return found, truth, valid

    found, truth, valid = scores(deep_masks)
    results["deepcr_flag"] = mask_scores(found, truth, valid)
    dc_found, _, _ = scores(dc_masks)
    results["drizcr_flag"] = mask_scores(dc_found, truth, valid)
    results["agreement_vs_drizcr"] = mask_scores(found, dc_found, valid)  # recall, fpr, precision
    # where deepCR's false positives are: within 2 px of a source pixel > 1000 e- above the sky
    from scipy import ndimage

    near_bright = np.concatenate([
        ndimage.binary_dilation(stack.clean[i][k] > stack.sky + 1000.0, iterations=2).ravel()
        for i in range(n_exposures) for k in (0, 1)])
    false_positive = found & ~truth & valid
    results["fp_near_bright"] = (float((false_positive & near_bright).sum() / max(false_positive.sum(), 1)),
                                 float(near_bright.mean()))

    # residuals at CR positions
    sci_t3, _, _, _ = _drizzle(stack.truth_files, os.path.join(workdir, "truth3"), "truth3")
    sci_n3, wht_n3, _, _ = _drizzle(stack.files, os.path.join(workdir, "none3"), "none3")
    sci_d3, wht_d3, _, _ = _drizzle(stack.files, os.path.join(workdir, "deep3"), "deep3", cr_method="deepcr")
    hit3 = cr_positions_in_output(stack.files, stack.cr_masks, header)
    sci_t1, _, header1, _ = _drizzle(stack.truth_files[:1], os.path.join(workdir, "truth1"), "truth1")
    sci_n1, wht_n1, _, _ = _drizzle(stack.files[:1], os.path.join(workdir, "none1"), "none1")
    sci_d1, wht_d1, _, _ = _drizzle(stack.files[:1], os.path.join(workdir, "deep1"), "deep1", cr_method="deepcr")
    hit1 = cr_positions_in_output(stack.files[:1], stack.cr_masks[:1], header1)

    def residual(sci, truth, hit, wht):
        # pixels without data in the product (zero weight, NaN fill) are counted apart, not as residuals
        finite = hit & np.isfinite(truth)
        holes = finite & ~(np.isfinite(sci) & (wht > 0))
        diff = sci[finite & ~holes] - truth[finite & ~holes]
        return {"rms": float(np.sqrt(np.mean(diff**2))), "mean_abs": float(np.mean(np.abs(diff))),
                "p99_abs": float(np.percentile(np.abs(diff), 99)), "max_abs": float(np.abs(diff).max()),
                "n": int(finite.sum()), "no_data": float(holes.sum() / max(finite.sum(), 1))}

    results["residual_elsewhere"] = {
        "deepcr_1exp": residual(sci_d1, sci_t1, ~hit1, wht_d1),
        "deepcr_3exp": residual(sci_d3, sci_t3, ~hit3, wht_d3),
        "drizcr_3exp": residual(sci_dc, sci_t3, ~hit3, wht_dc),
    }
    results["residual"] = {
        "deepcr_1exp": residual(sci_d1, sci_t1, hit1, wht_d1),
        "none_1exp": residual(sci_n1, sci_t1, hit1, wht_n1),
        "deepcr_3exp": residual(sci_d3, sci_t3, hit3, wht_d3),
        "drizcr_3exp": residual(sci_dc, sci_t3, hit3, wht_dc),
        "none_3exp": residual(sci_n3, sci_t3, hit3, wht_n3),
    }
    return results


def sky_before_after(files, workdir, **params):
    """``MDRIZSKY`` of every ``SCI`` chip without and with the deepCR flags in DQ when the sky is measured.

    "Before": drizzlepac's ``AstroDrizzle`` on unflagged copies (median,
    blot and driz_cr off, ``resetbits=0``): the sky step sees the cosmic
    rays, as it does in a classic run (driz_cr runs after the sky) and as it
    did in astro_deepcr 0.2 (deepCR ran after drizzlepac's sky step). "After":
    `astro_deepcr.drizzle.astrodrizzle` on other copies: the cosmic rays are
    in DQ (``crbit``), so the sky step (``sky_bits="0"``) leaves them out.
    ``params`` go to both runs (e.g. ``model="ACS-WFC"`` for the HRC frame).

    Returns
    -------
    rows : list of tuple
        ``(file, extver, mdrizsky_before, mdrizsky_after, n_cr)``.
    """
    before_files = _copy(files, os.path.join(workdir, "sky_before"))
    after_files = _copy(files, os.path.join(workdir, "sky_after"))
    deepcr_options = {key: params.pop(key) for key in ("model", "threshold", "device", "precision") if key in params}
    common = dict(_COMMON, skysub=True, **params)
    names = [os.path.basename(path) for path in files]
    with _in(os.path.join(workdir, "sky_before")):
        from drizzlepac.astrodrizzle import AstroDrizzle

        AstroDrizzle(names, output="before", resetbits=0, **_NO_REJECTION, **common)
    with _in(os.path.join(workdir, "sky_after")):
        from ..drizzle import astrodrizzle

        astrodrizzle(names, output="after", **deepcr_options, **common)
    rows = []
    for before, after in zip(before_files, after_files, strict=True):
        with fits.open(before) as old, fits.open(after) as new:
            for hdu in new:
                if hdu.name != "SCI":
                    continue
                n_cr = int(((new["DQ", hdu.ver].data.astype(np.int64) & CR_BIT) > 0).sum())
                rows.append((os.path.basename(after), hdu.ver, float(old["SCI", hdu.ver].header["MDRIZSKY"]),
                             float(hdu.header["MDRIZSKY"]), n_cr))
    return rows

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A frame's own point-spread function, measured from its stars (a pixel-integrated Moffat profile).

`measure_psf` fits a circular Moffat profile, ``A (1 + (r / alpha)**2)**-beta``
integrated over each pixel (5 x 5 sub-samples, so that undersampled stars of
a WF chip are fitted as well as seeing-limited ones), plus a constant, to
the isolated, unsaturated, bright local maxima of a frame. Cosmic rays are
local maxima too; they drop out where they fit to a width below
``min_fwhm`` or where their peak is sharper than their own fitted profile
allows (`SELF_CONSISTENCY`; a track fitted by a wide Moffat); the stars
are then the largest group of fits whose widths agree within 25 %.
The PSF is the median width and ``beta`` of the stars kept.

Where a frame has fewer than ``min_stars`` point sources -- a long-slit
spectrum, whose star is a trace -- the seeing profile is fitted across the
brightest trace instead (the median along the trace rejects cosmic rays).

The result, `StarPSF`, gives what `astro_deepcr.training.crlibrary.not_psf_like`
needs: ``sharpness``, the peak / mean-of-8-neighbours ratio a star can show:
with `MANY_STARS` stars or more the 95th percentile measured on the stars
themselves (they sample every sub-pixel phase; on the ACS/HRC frame
TinyTim's sharpest phase, 2.39, sat at its stars' 95th percentile), else the
larger of the model's sharpest phase and the stars' largest ratio -- and
``image``, the model on a pixel grid.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize

__all__ = ["StarPSF", "moffat_pixels", "moffat_sharpness", "measure_psf", "sky_background"]

_SUB = 5  # sub-samples per pixel side of the pixel-integrated model
#: A star's peak / mean-of-8-neighbours is at most this times its own fitted profile's sharpest phase.
SELF_CONSISTENCY = 1.3
#: With this many stars the sharpness limit is their own 95th percentile, else the model's sharpest phase.
MANY_STARS = 20


def _fwhm(alpha, beta):
    return 2.0 * alpha * np.sqrt(2.0 ** (1.0 / beta) - 1.0)


def _alpha(fwhm, beta):
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def _sub_samples(shape, centre, alpha):
    """Offsets from ``centre`` of the sub-samples (rows, columns) and ``1 + r**2 / alpha**2`` at each."""
    offsets = (np.arange(_SUB) + 0.5) / _SUB - 0.5
    y = (np.arange(shape[0])[:, None] + offsets[None, :]).ravel() - centre[0]
    x = (np.arange(shape[1])[:, None] + offsets[None, :]).ravel() - centre[1]
    return y, x, 1.0 + (y[:, None] ** 2 + x[None, :] ** 2) / alpha**2


def _binned(fine, shape):
    return fine.reshape(shape[0], _SUB, shape[1], _SUB).sum(axis=(1, 3))


def _unit_moffat(u, alpha, beta):
    """The unit-flux Moffat at ``u = 1 + r**2 / alpha**2``, per sub-sample."""
    return (beta - 1.0) / (np.pi * alpha**2) * u ** (-beta) / _SUB**2


def moffat_pixels(shape, centre, fwhm, beta, flux=1.0):
    """A circular Moffat profile of total ``flux`` integrated over the pixels of ``shape`` (centre: y, x)."""
    alpha = _alpha(fwhm, beta)
    _, _, u = _sub_samples(shape, centre, alpha)
    return flux * _binned(_unit_moffat(u, alpha, beta), shape)


def _moffat_gradient(shape, params):
    """The derivatives of `moffat_pixels` plus a constant (params: flux, y0, x0, fwhm, beta, sky) by the six
    parameters, one column each, pixels raveled: the Jacobian of `_fit_star`'s least squares, analytically."""
    flux, y0, x0, fwhm, beta, _ = params
    alpha = _alpha(fwhm, beta)
    y, x, u = _sub_samples(shape, (y0, x0), alpha)
    fine = _unit_moffat(u, alpha, beta)
    by_alpha = fine * (2.0 * beta * (u - 1.0) / (alpha * u) - 2.0 / alpha)
    power = 2.0 ** (1.0 / beta)
    alpha_by_beta = 0.5 * alpha * power * np.log(2.0) / (beta**2 * (power - 1.0))
    columns = [fine, flux * fine * 2.0 * beta * y[:, None] / (alpha**2 * u),
               flux * fine * 2.0 * beta * x[None, :] / (alpha**2 * u), flux * by_alpha * alpha / fwhm,
               flux * (fine * (1.0 / (beta - 1.0) - np.log(u)) + by_alpha * alpha_by_beta)]
    binned = [_binned(column, shape).ravel() for column in columns]
    return np.column_stack(binned + [np.ones(binned[0].size)])


def _ratio(stamp, y, x):
    return stamp[y, x] / ((stamp[y - 1:y + 2, x - 1:x + 2].sum() - stamp[y, x]) / 8.0)


def moffat_sharpness(fwhm, beta, phases=5):
    """Largest peak / mean-of-8-neighbours ratio of the pixel-integrated Moffat over ``phases**2`` phases."""
    ratios = []
    for k in range(phases**2):
        centre = (7 + (k // phases + 0.5) / phases - 0.5, 7 + (k % phases + 0.5) / phases - 0.5)
        stamp = moffat_pixels((15, 15), centre, fwhm, beta)
        y, x = np.unravel_index(np.argmax(stamp), stamp.shape)
        ratios.append(_ratio(stamp, y, x))
    return float(max(ratios))


@dataclass(frozen=True)
class StarPSF:
    """A frame's PSF: Moffat ``fwhm`` (px) and ``beta``, ``sharpness`` limit, ``image`` (see there)."""

    fwhm: float
    beta: float
    sharpness: float
    n_stars: int
    source: str  # "stars" or "trace"
    star_sharpness: tuple = field(default=(), repr=False)

    @property
    def image(self):
        """The model centred on a pixel, at least 15 x 15 px and 6 FWHM across."""
        size = max(15, int(6 * self.fwhm) | 1)
        return moffat_pixels((size, size), ((size - 1) / 2, (size - 1) / 2), self.fwhm, self.beta)


def _fit_star(stamp, variance):
    shape = stamp.shape
    centre = (shape[0] // 2, shape[1] // 2)
    background = float(np.median(np.concatenate([stamp[0], stamp[-1], stamp[:, 0], stamp[:, -1]])))
    flux0 = max(float(stamp.sum() - background * stamp.size), float(stamp[centre]))
    weight = 1.0 / np.sqrt(variance)

    def residual(params):
        flux, y0, x0, fwhm, beta, sky = params
        return ((moffat_pixels(shape, (y0, x0), fwhm, beta, flux) + sky - stamp) * weight).ravel()

    def jacobian(params):
        return _moffat_gradient(shape, params) * weight.ravel()[:, None]

    start = (flux0, centre[0], centre[1], 2.0, 2.5, background)
    low = (0.0, centre[0] - 1.5, centre[1] - 1.5, 0.2, 1.2, -np.inf)
    high = (np.inf, centre[0] + 1.5, centre[1] + 1.5, 30.0, 10.0, np.inf)
    try:
        # the analytic Jacobian: the fits land where finite differences led them (widths equal to 1e-8 on the
        # real frames) in a third to a half of the time (benchmarks/bench_star_shape.py)
        fit = optimize.least_squares(residual, start, jac=jacobian, bounds=(low, high), max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):
        return None
    chi2 = float(np.sum(fit.fun**2) / max(fit.fun.size - 6, 1))
    return float(fit.x[3]), float(fit.x[4]), chi2


def sky_background(electrons, cell=32):
    """Median of ``cell`` x ``cell`` blocks, interpolated (stars of any width and cosmic rays barely move it)."""
    ny, nx = electrons.shape
    rows, cols = max(ny // cell, 1), max(nx // cell, 1)
    blocks = electrons[:rows * (ny // rows), :cols * (nx // cols)].reshape(rows, ny // rows, cols, nx // cols)
    mesh = np.median(blocks, axis=(1, 3))
    grid = np.meshgrid((np.arange(ny) + 0.5) * rows / ny - 0.5, (np.arange(nx) + 0.5) * cols / nx - 0.5,
                       indexing="ij")
    return ndimage.map_coordinates(mesh, grid, order=1, mode="nearest")


def _candidates(excess, noise, usable, min_snr, isolation, max_stars):
    """Isolated peaks above ``min_snr`` that survive a 3 x 3 median (a single-pixel cosmic ray does not).

    Isolated: no other peak of the 3 x 3 median within ``isolation`` px
    reaches a tenth of this one's (noise bumps on a star's own wings do not count).
    """
    smooth = ndimage.median_filter(excess, size=3)
    maxima = (smooth == ndimage.maximum_filter(smooth, size=5)) & (smooth > 3.0 * noise)
    peaks = (excess == ndimage.maximum_filter(excess, size=5)) & (excess > min_snr * noise) & (smooth > 3.0 * noise)
    ys, xs = np.nonzero(peaks & usable)
    order = np.argsort(excess[ys, xs])[::-1]
    chosen = []
    for y, x in zip(ys[order], xs[order]):
        box = (slice(max(y - isolation, 0), y + isolation + 1), slice(max(x - isolation, 0), x + isolation + 1))
        near = maxima[box] & (smooth[box] > 0.1 * smooth[y, x])
        near[min(y, isolation) - 2:min(y, isolation) + 3, min(x, isolation) - 2:min(x, isolation) + 3] = False
        if not near.any():
            chosen.append((y, x))
            if len(chosen) == max_stars:
                break
    return tuple(np.array([c[k] for c in chosen], int) for k in (0, 1))


def _trace_profile(excess, noise):
    """FWHM and beta of the spatial profile across the brightest trace (median along it), or None."""
    best = None
    for axis in (0, 1):
        profile = np.median(excess, axis=axis)
        sigma = float(np.median(noise)) / np.sqrt(excess.shape[axis])
        peak = int(np.argmax(profile))
        if profile[peak] < 20 * sigma or not 4 <= peak < profile.size - 4:
            continue
        if best is None or profile[peak] / sigma > best[0]:
            best = (profile[peak] / sigma, profile, peak)
    if best is None:
        return None
    _, profile, peak = best
    cut = profile[max(peak - 12, 0):peak + 13]
    centre = peak - max(peak - 12, 0)
    offsets = (np.arange(_SUB) + 0.5) / _SUB - 0.5
    fine = (np.arange(cut.size)[:, None] + offsets[None, :])

    def residual(params):
        amplitude, y0, fwhm, beta, sky = params
        model = amplitude * (1.0 + ((fine - y0) / _alpha(fwhm, beta)) ** 2) ** (-beta)
        return model.mean(axis=1) + sky - cut

    fit = optimize.least_squares(residual, (cut[centre], centre, 3.0, 2.5, 0.0),
                                 bounds=((0, centre - 2, 0.3, 1.2, -np.inf), (np.inf, centre + 2, 40, 10, np.inf)))
    return float(fit.x[2]), float(fit.x[3])


def _fit_stars(electrons, sky, noise, usable, read_noise, min_snr, isolation, min_fwhm, max_stars, box):
    half = box // 2
    inside = ndimage.binary_erosion(usable, np.ones((box, box), bool), border_value=0)
    fits, ratios = [], []
    for y, x in zip(*_candidates(electrons - sky, noise, inside, min_snr, isolation, max_stars)):
        stamp = electrons[y - half:y + half + 1, x - half:x + half + 1]
        fit = _fit_star(stamp, np.clip(stamp, 0, None) + read_noise**2)
        if fit is None or fit[0] < min_fwhm:
            continue
        local = stamp - np.median(np.concatenate([stamp[0], stamp[-1], stamp[:, 0], stamp[:, -1]]))
        peak = np.unravel_index(np.argmax(local[half - 1:half + 2, half - 1:half + 2]), (3, 3))
        ratio = _ratio(local, half - 1 + peak[0], half - 1 + peak[1])
        # a star's peak is no sharper than its own fitted profile allows; a track fitted by a wide Moffat is
        if ratio <= SELF_CONSISTENCY * moffat_sharpness(fit[0], fit[1], phases=3):
            fits.append(fit)
            ratios.append(ratio)
    return fits, ratios, box


def measure_psf(image, read_noise, *, gain=1.0, bad=None, satlevel=None, min_snr=20.0, isolation=6, min_fwhm=0.5,
                min_stars=2, max_stars=150):
    """The frame's PSF from its own stars (see the module docstring).

    Parameters
    ----------
    image : array-like, 2-D
        The frame, ``gain`` e- per unit.
    read_noise : float
        e-.
    bad : array-like of bool, optional
        Pixels not to use (bad, hot); stars touching them are skipped.
    satlevel : float, optional
        Saturation (image units): stars peaking above 0.8 of it are skipped.
    min_snr : float
        Significance of a star's peak over the sky (noise: sky + read noise);
        its 3 x 3 median must also be 3 sigma above the sky.
    isolation : int
        No other peak (of the 3 x 3 median, above 3 sigma) within this many px.
    min_fwhm : float
        Fits narrower than this (px) are cosmic rays, not stars.
    min_stars : int
        Fewer point sources than this: fit the seeing across the brightest trace.

    Returns
    -------
    StarPSF

    Raises
    ------
    ValueError
        Neither stars nor a trace bright enough to measure.
    """
    electrons = np.asarray(image, dtype=np.float64) * gain
    if electrons.ndim != 2:
        raise ValueError(f"image must be 2-D, not {electrons.ndim}-D")
    finite = np.isfinite(electrons)
    usable = finite if bad is None else finite & ~np.asarray(bad, bool)
    if satlevel is not None:
        usable &= electrons < 0.8 * float(satlevel) * gain
    electrons = np.where(finite, electrons, np.nanmedian(electrons))
    sky = sky_background(electrons)
    noise = np.sqrt(np.clip(sky, 0, None) + read_noise**2)
    fits, ratios, box = _fit_stars(electrons, sky, noise, usable, read_noise, min_snr, isolation, min_fwhm,
                                   max_stars, 11)
    if len(fits) >= min_stars and np.median([fit[0] for fit in fits]) > 11 / 4:  # wide stars: a box of 4 FWHM
        box = min(int(4 * np.median([fit[0] for fit in fits])) | 1, 41)
        fits, ratios, box = _fit_stars(electrons, sky, noise, usable, read_noise, min_snr, max(isolation, box // 2),
                                       min_fwhm, max_stars, box)
    if len(fits) >= min_stars:
        fwhm, beta, chi2 = (np.array(column) for column in zip(*fits))
        # the stars share one width: the largest group of fits within 25 % of each other (the wider group on a
        # tie: a cosmic ray that slips through fits narrow); then bad fits (blends) out by chi2
        close = np.abs(np.log(fwhm)[:, None] - np.log(fwhm)[None, :]) < np.log(1.25)
        best = max(range(fwhm.size), key=lambda k: (close[k].sum(), fwhm[k]))
        keep = close[best] & (chi2 < 5 * np.median(chi2[close[best]]))
        if keep.sum() >= min_stars:
            fwhm_value, beta_value = float(np.median(fwhm[keep])), float(np.median(beta[keep]))
            star_ratios = np.asarray(ratios)[keep]
            # enough stars sample every sub-pixel phase: their own 95th percentile (as TinyTim's sharpest phase
            # matched the 95th percentile of the HRC frame's stars); few stars: the model's sharpest phase too
            sharpness = float(np.percentile(star_ratios, 95)) if star_ratios.size >= MANY_STARS else max(
                moffat_sharpness(fwhm_value, beta_value), float(star_ratios.max()))
            return StarPSF(fwhm_value, beta_value, sharpness, int(keep.sum()), "stars",
                           tuple(float(r) for r in star_ratios))
    trace = _trace_profile(electrons - sky, noise)
    if trace is None:
        raise ValueError(f"no {min_stars} isolated unsaturated stars above S/N {min_snr:g} and no bright trace: "
                         "give the PSF (psf=) instead")
    fwhm_value, beta_value = trace
    return StarPSF(fwhm_value, beta_value, moffat_sharpness(fwhm_value, beta_value), 0, "trace")

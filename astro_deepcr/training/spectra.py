# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Simulated long-slit spectra: the other frame a ccdproc user cleans of cosmic rays.

A long-slit frame holds what an imaging simulator never draws: night-sky emission lines that cross the
whole slit (bright, narrow along the dispersion, a few px wide), object spectra as long traces along the
dispersion, and compact emission-line knots (a line of one object: as wide as the line along the
dispersion and as the seeing across it). A network that never saw them flags a sharp sky line or a knot
as a cosmic ray. `long_slit_scene` draws one such frame from wide ranges (all in electrons):

- dispersion along x (`ground_scene` turns half of them by 90 degrees, so either axis);
- sky continuum 1 to 2000 e- per pixel, varying smoothly along the dispersion by up to a factor 3;
- 0 to 40 sky lines per 100 px of dispersion, each of an integrated strength of 0.2 to 300 times the
  continuum of one pixel, a Gaussian of sigma 0.5 to 2.5 px (one instrumental resolution per frame),
  integrated over pixels, tilted by up to 0.03 px per px and curved along the slit;
- slit illumination varying by up to 10 % along the slit; in a third of the frames the slit ends inside the
  frame (no light beyond, edges blurred by the seeing);
- 0 to 4 object traces, spatial profile a Moffat of the frame's seeing, 1 to 3e4 e- per column, slope
  up to 0.02 px per px, a continuum varying along the dispersion, each with 0 to 6 emission-line knots.
"""

import numpy as np
from scipy import ndimage, special

__all__ = ["SPECTRA_RANGES", "long_slit_scene"]

#: The ranges a long-slit frame is drawn from; ``(low, high)``, log-uniform where noted.
SPECTRA_RANGES = {
    "continuum": (1.0, 2000.0),  # e- per px, log-uniform
    "lines_per_100px": (0.0, 40.0),
    "line_strength": (0.2, 300.0),  # integrated, in units of the continuum of one pixel; log-uniform
    "line_sigma": (0.5, 2.5),  # px
    "tilt": (-0.03, 0.03),  # px along the dispersion per px along the slit
    "traces": (0, 4),
    "trace_flux": (1.0, 3e4),  # e- per column, log-uniform
    "trace_slope": (-0.02, 0.02),
    "knots": (0, 6),
    "knot_strength": (3.0, 3e4),  # e- per knot, log-uniform
}


def _log_uniform(rng, low, high, size=None):
    """A draw uniform in log between ``low`` and ``high`` (also `astro_deepcr.training.ground`'s)."""
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _smooth_curve(n, rng, scale, amplitude):
    """A smooth random curve of length ``n`` around 1 (variations on ``scale`` px, +-``amplitude``)."""
    knots = max(2, int(n / scale) + 2)
    values = 1.0 + amplitude * rng.uniform(-1, 1, knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), values)


def _gaussian_pixels(centre, sigma, coordinate):
    """A unit-integral Gaussian at ``centre`` integrated over the pixels at ``coordinate`` (broadcasts)."""
    scale = sigma * np.sqrt(2.0)
    return 0.5 * (special.erf((coordinate + 0.5 - centre) / scale) - special.erf((coordinate - 0.5 - centre) / scale))


def _moffat_profile(offset, fwhm, beta):
    """A 1-d Moffat of ``fwhm`` at ``offset`` px from its centre, of unit sum over an infinite row of pixels."""
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    norm = ((1.0 + (np.arange(-2000.0, 2001.0) / alpha) ** 2) ** (-beta)).sum()
    return (1.0 + (offset / alpha) ** 2) ** (-beta) / norm


def long_slit_scene(shape, rng, fwhm, beta):
    """Expected signal (e-, no noise, no cosmic rays) of a long-slit frame, dispersion along axis 1.

    ``fwhm`` and ``beta``: the frame's seeing (the profile across the slit). Returns the image and its
    parameters (``continuum``, ``lines``, ``line_sigma``, ``traces``).
    """
    r = SPECTRA_RANGES
    rows, cols = shape
    y = np.arange(rows, dtype=float)[:, None] - rows / 2.0
    x = np.arange(cols, dtype=float)[None, :]
    continuum = float(_log_uniform(rng, *r["continuum"]))
    sky = np.broadcast_to(continuum * _smooth_curve(cols, rng, 60.0, 0.5) ** 2, shape).copy()
    line_sigma = float(rng.uniform(*r["line_sigma"]))
    n_lines = rng.poisson(rng.uniform(*r["lines_per_100px"]) * cols / 100.0)
    tilt, curvature = float(rng.uniform(*r["tilt"])), float(rng.uniform(-1, 1)) * 2e-4
    shift = tilt * y + curvature * y * y  # where a line falls, per row
    for _ in range(n_lines):
        centre = rng.uniform(-3 * line_sigma, cols + 3 * line_sigma)
        sky += continuum * _log_uniform(rng, *r["line_strength"]) * _gaussian_pixels(centre + shift, line_sigma, x)
    sky *= _smooth_curve(rows, rng, 40.0, 0.1)[:, None]
    if rng.random() < 1.0 / 3.0:  # the slit ends inside the frame
        top, bottom = sorted(rng.uniform(-0.2 * rows, 1.2 * rows, 2))
        inside = ((np.arange(rows) >= top) & (np.arange(rows) <= bottom)).astype(float)
        sky *= ndimage.gaussian_filter1d(inside, fwhm / 2.355)[:, None]
    n_traces = int(rng.integers(r["traces"][0], r["traces"][1] + 1))
    objects = np.zeros(shape)
    for _ in range(n_traces):
        position = rng.uniform(0.05 * rows, 0.95 * rows) - rows / 2.0
        centre = position + float(rng.uniform(*r["trace_slope"])) * (x - cols / 2.0)
        per_column = _log_uniform(rng, *r["trace_flux"]) * _smooth_curve(cols, rng, 30.0, 0.6)
        profile = _moffat_profile(y - centre, fwhm, beta)
        objects += profile * per_column[None, :]
        for _ in range(int(rng.integers(r["knots"][0], r["knots"][1] + 1))):
            column = rng.uniform(0, cols)
            knot = _gaussian_pixels(column, line_sigma, x) * _log_uniform(rng, *r["knot_strength"])
            objects += profile * knot
    params = {"continuum": continuum, "lines": int(n_lines), "line_sigma": line_sigma, "traces": n_traces}
    return sky + objects, params

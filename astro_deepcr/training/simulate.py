# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Simulated HST ACS/WFC-like exposures with known cosmic rays.

Scenes (electrons): flat sky, stars convolved with the TinyTim PSF that
drizzlepac ships (``drizzlepac/pars/psfs``; a Gaussian of 2 px FWHM where it
is absent), Sersic-like galaxies, and three field types: ``"extragalactic"``
(sparse stars, many galaxies), ``"globular"`` (crowded stars) and
``"resolved"`` (a dense field of faint stars on a smooth galaxy body).

Cosmic rays follow published HST CCD statistics:

- rate: about 1.2 events / cm^2 / s on the ACS/WFC CCDs (ACS Instrument
  Handbook, "Cosmic Rays"), i.e. 2.7e-6 events / pixel / s for 15 micron
  pixels;
- deposited charge: a Landau (approximated by scipy's Moyal) distribution
  with the most probable value near 80 e- per micron of track in silicon
  (minimum-ionising particles) and a long high-energy tail;
- geometry: isotropic incidence through a 13 micron thick depletion layer,
  so projected track length = thickness x tan(zenith angle), capped at
  40 pixels; charge diffusion spreads every track with a Gaussian of
  sigma 0.4 px.

All parameters are keywords with these defaults; nothing is tuned to a
detection result.
"""

import os

import numpy as np
from scipy import ndimage, stats

__all__ = ["psf_image", "make_scene", "add_cosmic_rays", "simulate_exposure", "simulate_stack"]

PIXEL_MICRON = 15.0
CR_RATE_PER_CM2_S = 1.2
DEPLETION_MICRON = 13.0
CHARGE_PER_MICRON = 80.0  # most probable e- per micron for a minimum-ionising particle
CHARGE_WIDTH = 0.35  # Moyal scale as a fraction of the most probable value
DIFFUSION_SIGMA = 0.4  # px
MAX_TRACK = 40.0  # px


def psf_image(instrument="acs", detector="wfc", filter_name="f606w", size=25):
    """A normalised PSF stamp: drizzlepac's TinyTim model, or a 2 px FWHM Gaussian."""
    try:
        import importlib.util

        from astropy.io import fits

        # locate drizzlepac's data without importing it (slow, and noisy with warnings)
        package = importlib.util.find_spec("drizzlepac")
        if package is None:
            raise ImportError("drizzlepac is not installed")
        path = os.path.join(package.submodule_search_locations[0], "pars", "psfs", instrument, detector,
                            f"{instrument}_{detector}_{filter_name}.fits")
        with fits.open(path) as hdul:
            psf = np.asarray(hdul[0].data, dtype=np.float64)
        centre = np.array(np.unravel_index(np.argmax(psf), psf.shape))
        half = size // 2
        lo = np.clip(centre - half, 0, None)
        psf = psf[lo[0]:lo[0] + size, lo[1]:lo[1] + size]
    except (ImportError, OSError):
        y, x = np.mgrid[:size, :size] - size // 2
        psf = np.exp(-(x**2 + y**2) / (2 * (2.0 / 2.3548) ** 2))
    return psf / psf.sum()


def _stamp_add(image, stamp, y, x):
    """Add ``stamp`` centred on integer (y, x), clipped to the image."""
    h, w = stamp.shape
    y0, x0 = y - h // 2, x - w // 2
    ys, xs = max(0, -y0), max(0, -x0)
    ye, xe = min(h, image.shape[0] - y0), min(w, image.shape[1] - x0)
    if ye > ys and xe > xs:
        image[y0 + ys:y0 + ye, x0 + xs:x0 + xe] += stamp[ys:ye, xs:xe]


def _galaxy(rng, size=41):
    y, x = np.mgrid[:size, :size] - size // 2
    angle = rng.uniform(0, np.pi)
    q = rng.uniform(0.3, 1.0)
    r_e = rng.uniform(1.5, 6.0)
    n = rng.choice([1.0, 4.0])
    xr = x * np.cos(angle) + y * np.sin(angle)
    yr = (-x * np.sin(angle) + y * np.cos(angle)) / q
    r = np.hypot(xr, yr)
    profile = np.exp(-(2 * n - 1 / 3) * ((r / r_e) ** (1 / n) - 1))
    return profile / profile.sum()


_FIELDS = {
    # (stars per 1e6 px, galaxies per 1e6 px, log10 flux range of stars in e-)
    "extragalactic": (150, 1500, (2.0, 5.0)),
    "globular": (25000, 50, (2.0, 5.5)),
    "resolved": (12000, 300, (1.5, 4.0)),
}


def make_scene(shape, field="extragalactic", exptime=500.0, psf=None, seed=None):
    """A noiseless, CR-free scene in electrons (sky not included)."""
    if field not in _FIELDS:
        raise ValueError(f"field must be one of {sorted(_FIELDS)}, not {field!r}")
    rng = np.random.default_rng(seed)
    psf = psf_image() if psf is None else psf
    n_stars, n_gal, (lo, hi) = _FIELDS[field]
    area = shape[0] * shape[1] / 1e6
    point_sources = np.zeros(shape)
    count = rng.poisson(n_stars * area)
    # power-law luminosity function: uniform in log flux with more faint stars
    flux = 10 ** (lo + (hi - lo) * rng.power(0.5, count)) * exptime / 500.0
    np.add.at(point_sources, (rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)), flux)
    scene = ndimage.convolve(point_sources, psf, mode="constant")
    for _ in range(rng.poisson(n_gal * area)):
        flux = 10 ** rng.uniform(2.5, 5.0) * exptime / 500.0
        _stamp_add(scene, flux * _galaxy(rng), int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1])))
    if field == "resolved":
        y, x = np.mgrid[: shape[0], : shape[1]]
        r = np.hypot(y - shape[0] / 2, x - shape[1] / 2) / (0.3 * max(shape))
        scene += 40.0 * exptime / 500.0 * np.exp(-r)
    return scene


def add_cosmic_rays(shape, exptime, seed=None, rate=CR_RATE_PER_CM2_S, pixel_micron=PIXEL_MICRON,
                    depletion_micron=DEPLETION_MICRON, charge_per_micron=CHARGE_PER_MICRON,
                    charge_width=CHARGE_WIDTH, diffusion_sigma=DIFFUSION_SIGMA, max_track=MAX_TRACK):
    """Cosmic-ray charge (electrons) for one exposure.

    Returns
    -------
    charge : ndarray of float64
        Deposited charge per pixel.
    events : int
        Number of CR events.
    """
    rng = np.random.default_rng(seed)
    pixel_cm2 = (pixel_micron * 1e-4) ** 2
    events = rng.poisson(rate * pixel_cm2 * shape[0] * shape[1] * exptime)
    fine = np.zeros(shape)
    # isotropic flux through a plane: cos(zenith) distributed as sqrt(uniform)
    cos_zenith = np.sqrt(rng.uniform(1e-4, 1.0, events))
    length_px = np.minimum(depletion_micron * np.tan(np.arccos(cos_zenith)) / pixel_micron, max_track)
    path_micron = depletion_micron / cos_zenith
    mpv = charge_per_micron * path_micron
    total = stats.moyal.rvs(loc=mpv, scale=charge_width * mpv, random_state=rng)
    total = np.clip(total, 0.2 * mpv, None)
    phi = rng.uniform(0, 2 * np.pi, events)
    y0 = rng.uniform(0, shape[0], events)
    x0 = rng.uniform(0, shape[1], events)
    for k in range(events):
        steps = max(1, int(np.ceil(length_px[k] * 2)))
        t = np.linspace(0, 1, steps)
        ys = np.clip(y0[k] + t * length_px[k] * np.sin(phi[k]), 0, shape[0] - 1)
        xs = np.clip(x0[k] + t * length_px[k] * np.cos(phi[k]), 0, shape[1] - 1)
        # energy loss fluctuates along the track (delta rays)
        weights = rng.gamma(2.0, 1.0, steps)
        np.add.at(fine, (np.round(ys).astype(int), np.round(xs).astype(int)), total[k] * weights / weights.sum())
    charge = ndimage.gaussian_filter(fine, diffusion_sigma, mode="constant") if diffusion_sigma > 0 else fine
    return charge, events


def simulate_exposure(shape=(512, 512), field="extragalactic", exptime=500.0, sky=60.0, read_noise=4.0,
                      scene=None, seed=None, cr_threshold=None, **cr_kwargs):
    """One exposure in electrons with known CRs.

    Parameters
    ----------
    shape : tuple
    field : str
        ``"extragalactic"``, ``"globular"`` or ``"resolved"``.
    exptime : float
        Seconds (sets source counts and the CR count).
    sky, read_noise : float
        Sky level and read noise in electrons.
    scene : ndarray, optional
        A noiseless scene to use instead of `make_scene`.
    cr_threshold : float, optional
        A pixel is a CR in the truth mask when its CR charge exceeds this;
        default ``read_noise`` (one sigma of the read noise).

    Returns
    -------
    dict with ``image`` (float32, sky included), ``clean`` (the same noise
    realisation without CRs), ``cr_mask`` (bool), ``cr_charge``, ``scene``,
    ``sky``, ``read_noise``, ``events``.
    """
    rng = np.random.default_rng(seed)
    if scene is None:
        scene = make_scene(shape, field, exptime, seed=rng)
    expected = scene + sky
    clean = rng.poisson(np.clip(expected, 0, None)).astype(np.float64) + rng.normal(0, read_noise, shape)
    charge, events = add_cosmic_rays(shape, exptime, seed=rng, **cr_kwargs)
    threshold = read_noise if cr_threshold is None else cr_threshold
    return {
        "image": (clean + charge).astype(np.float32),
        "clean": clean.astype(np.float32),
        "cr_mask": charge > threshold,
        "cr_charge": charge,
        "scene": scene,
        "sky": sky,
        "read_noise": read_noise,
        "events": events,
    }


def simulate_stack(n_exposures=3, shape=(512, 512), field="extragalactic", exptime=500.0, seed=None, **kwargs):
    """``n_exposures`` aligned exposures of one scene, each with its own noise and CRs."""
    rng = np.random.default_rng(seed)
    scene = make_scene(shape, field, exptime, seed=rng)
    return [simulate_exposure(shape, field, exptime, scene=scene, seed=rng, **kwargs) for _ in range(n_exposures)]

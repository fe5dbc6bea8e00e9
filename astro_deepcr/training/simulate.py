# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Simulated HST ACS/WFC-like exposures with known cosmic rays.

Scenes (electrons): flat sky, stars convolved with the TinyTim PSF that
drizzlepac ships (``drizzlepac/pars/psfs``; a Gaussian of 2 px FWHM where it
is absent) and with the CCD charge-diffusion kernel that TinyTim lists in
that file's header (it was not applied to the file), placed at random
sub-pixel positions, Sersic galaxies (n = 1 or 4, integrated over pixels and
convolved with the same PSF), and three field types: ``"extragalactic"``
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

- real morphologies instead (``library=``): `harvest_cosmic_rays` cuts the
  CRs LACosmic finds, away from sources and flagged pixels, in the real
  ACS/HRC exposure ``j8bt06nyq_flt.fits`` (47 Tuc, F606W, 60 s) that
  spherical_geometry ships; about 250 CRs, median 6 pixels and 2000 e-.

All parameters are keywords with these defaults; nothing is tuned to a
detection result.
"""

import os

import numpy as np
from scipy import ndimage, signal, stats

__all__ = ["psf_image", "make_scene", "add_cosmic_rays", "simulate_exposure", "simulate_stack",
           "harvest_cosmic_rays", "HRC_FLT"]

#: A real ACS/HRC single exposure with its cosmic rays intact, shipped by spherical_geometry's tests.
HRC_FLT = ("spherical_geometry", "tests/data/j8bt06nyq_flt.fits")

PIXEL_MICRON = 15.0
CR_RATE_PER_CM2_S = 1.2
DEPLETION_MICRON = 13.0
CHARGE_PER_MICRON = 80.0  # most probable e- per micron for a minimum-ionising particle
CHARGE_WIDTH = 0.35  # Moyal scale as a fraction of the most probable value
DIFFUSION_SIGMA = 0.4  # px
MAX_TRACK = 40.0  # px


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


def psf_image(instrument="acs", detector="wfc", filter_name="f606w", size=25, charge_diffusion=True):
    """A normalised PSF stamp: drizzlepac's TinyTim model, or a 2 px FWHM Gaussian.

    The TinyTim files drizzlepac ships were made without the CCD
    charge-diffusion kernel; their header lists it (for ACS/WFC F606W a
    3x3 kernel with 0.594 in the centre) and says to convolve with it,
    which ``charge_diffusion=True`` does.
    """
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
            kernel = _diffusion_kernel(hdul[0].header) if charge_diffusion else None
        if kernel is not None:
            psf = ndimage.convolve(psf, kernel / kernel.sum(), mode="constant")
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


def _galaxy(rng, size=41, oversample=4):
    """A Sersic (n = 1 or 4) galaxy stamp, integrated over pixels, normalised, before the PSF.

    The profile is averaged over ``oversample**2`` points per pixel about
    a random sub-pixel centre, so an n = 4 cusp is not point-sampled into
    a single hot pixel.
    """
    angle = rng.uniform(0, np.pi)
    q = rng.uniform(0.3, 1.0)
    r_e = rng.uniform(1.5, 6.0)
    n = rng.choice([1.0, 4.0])
    dy, dx = rng.uniform(-0.5, 0.5, 2)
    fine = (np.arange(size * oversample) + 0.5) / oversample - size / 2
    y, x = np.meshgrid(fine - dy, fine - dx, indexing="ij")
    xr = x * np.cos(angle) + y * np.sin(angle)
    yr = (-x * np.sin(angle) + y * np.cos(angle)) / q
    r = np.hypot(xr, yr)
    profile = np.exp(-(2 * n - 1 / 3) * ((r / r_e) ** (1 / n) - 1))
    profile = profile.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return profile / profile.sum()


_FIELDS = {
    # (stars per 1e6 px, galaxies per 1e6 px, log10 flux range of stars in e-)
    "extragalactic": (150, 1500, (2.0, 5.0)),
    "globular": (25000, 50, (2.0, 5.5)),
    "resolved": (12000, 300, (1.5, 4.0)),
}


def make_scene(shape, field="extragalactic", exptime=500.0, psf=None, seed=None, subpixel=True):
    """A noiseless, CR-free scene in electrons (sky not included).

    Stars sit at random sub-pixel positions (``subpixel=True``, 3x3 phases)
    or all at pixel centres.
    """
    if field not in _FIELDS:
        raise ValueError(f"field must be one of {sorted(_FIELDS)}, not {field!r}")
    rng = np.random.default_rng(seed)
    psf = psf_image() if psf is None else psf
    n_stars, n_gal, (lo, hi) = _FIELDS[field]
    area = shape[0] * shape[1] / 1e6
    count = rng.poisson(n_stars * area)
    # power-law luminosity function: uniform in log flux with more faint stars
    flux = 10 ** (lo + (hi - lo) * rng.power(0.5, count)) * exptime / 500.0
    ys, xs = rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)
    # stars fall anywhere within a pixel: 3x3 sub-pixel phases, each with its own shifted PSF
    phase = rng.integers(0, 9, count) if subpixel else np.full(count, 4)
    scene = np.zeros(shape)
    for k in np.unique(phase):
        point_sources = np.zeros(shape)
        pick = phase == k
        np.add.at(point_sources, (ys[pick], xs[pick]), flux[pick])
        shifted = np.clip(ndimage.shift(psf, ((k // 3 - 1) / 3, (k % 3 - 1) / 3), order=3, mode="constant"), 0, None)
        scene += signal.fftconvolve(point_sources, shifted / shifted.sum(), mode="same")
    # galaxies are seen through the same PSF (and charge diffusion) as the stars: nothing is sharper than the PSF
    galaxies = np.zeros(shape)
    for _ in range(rng.poisson(n_gal * area)):
        flux = 10 ** rng.uniform(2.5, 5.0) * exptime / 500.0
        _stamp_add(galaxies, flux * _galaxy(rng), int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1])))
    if galaxies.any():
        scene += signal.fftconvolve(galaxies, psf / psf.sum(), mode="same")
    scene = np.clip(scene, 0, None)  # FFT round-off
    if field == "resolved":
        y, x = np.mgrid[: shape[0], : shape[1]]
        r = np.hypot(y - shape[0] / 2, x - shape[1] / 2) / (0.3 * max(shape))
        scene += 40.0 * exptime / 500.0 * np.exp(-r)
    return scene


def add_cosmic_rays(shape, exptime, seed=None, rate=CR_RATE_PER_CM2_S, pixel_micron=PIXEL_MICRON,
                    depletion_micron=DEPLETION_MICRON, charge_per_micron=CHARGE_PER_MICRON,
                    charge_width=CHARGE_WIDTH, diffusion_sigma=DIFFUSION_SIGMA, max_track=MAX_TRACK, library=None):
    """Cosmic-ray charge (electrons) for one exposure.

    With ``library`` (a list of real CR charge stamps, see
    `harvest_cosmic_rays`) every event is a randomly chosen, flipped and
    rotated real CR instead of a synthetic track; the event rate is the same.

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
    if library is not None:
        return _inject_library(shape, events, library, rng), events
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
        ys = np.round(y0[k] + t * length_px[k] * np.sin(phi[k])).astype(int)
        xs = np.round(x0[k] + t * length_px[k] * np.cos(phi[k])).astype(int)
        # energy loss fluctuates along the track (delta rays)
        weights = rng.gamma(2.0, 1.0, steps)
        # the part of a track that leaves the detector deposits nothing (clipping piled it on the edge)
        inside = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
        np.add.at(fine, (ys[inside], xs[inside]), total[k] * weights[inside] / weights.sum())
    charge = ndimage.gaussian_filter(fine, diffusion_sigma, mode="constant") if diffusion_sigma > 0 else fine
    return charge, events


def _inject_library(shape, events, library, rng):
    charge = np.zeros(shape)
    for k in rng.integers(0, len(library), events):
        stamp = np.rot90(library[k], int(rng.integers(4)))
        if rng.random() < 0.5:
            stamp = stamp[:, ::-1]
        _stamp_add(charge, stamp, int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1])))
    return charge


def harvest_cosmic_rays(path=None, sigclip=8.0, objlim=5.0, read_noise=4.7, min_charge=200.0, max_size=64):
    """Charge stamps of real cosmic rays found in a single raw-ish exposure (electrons).

    CR candidates are found by LACosmic (astroscrappy, conservative
    ``sigclip``/``objlim``) on ``path`` (default: the ACS/HRC exposure
    ``j8bt06nyq_flt.fits`` that spherical_geometry ships, read where it is
    installed); every connected CR (8-connectivity, grown by one pixel)
    becomes a stamp of its excess over LACosmic's cleaned image, zero
    outside the CR. Candidates near DQ-flagged pixels or on sources (the
    cleaned image 10 sigma above the sky within 2 px) are dropped: in a
    crowded field such as the default (47 Tuc) most other candidates are
    star cores. Stamps with less than ``min_charge`` electrons or larger
    than ``max_size`` are dropped. HRC pixels (21 micron) are larger than
    WFC's (15 micron): tracks come out about 30 % short for WFC.
    """
    import importlib.util

    import astroscrappy
    from astropy.io import fits

    if path is None:
        package = importlib.util.find_spec(HRC_FLT[0])
        if package is None:
            raise ImportError("spherical_geometry is not installed; pass path=")
        path = os.path.join(package.submodule_search_locations[0], HRC_FLT[1])
    with fits.open(path) as hdul:
        image = np.asarray(hdul["SCI", 1].data, dtype=np.float32)
        dq = np.asarray(hdul["DQ", 1].data) if ("DQ", 1) in hdul else np.zeros(image.shape, np.int16)
    found, cleaned = astroscrappy.detect_cosmics(image, inmask=(dq & ~(4096 | 8192)) != 0, sigclip=sigclip,
                                                 objlim=objlim, gain=1.0, readnoise=read_noise, satlevel=1e9,
                                                 niter=4)
    grown = ndimage.binary_dilation(found, np.ones((3, 3), bool))
    labels, _ = ndimage.label(grown, np.ones((3, 3), int))
    # a candidate on a star or next to a flagged (saturated, hot) pixel is more likely a star core than a CR
    flagged = ndimage.binary_dilation((dq & ~(4096 | 8192)) != 0, np.ones((5, 5), bool))
    sky = float(np.median(cleaned))
    busy = ndimage.maximum_filter(cleaned, 5) > sky + 10 * np.sqrt(max(sky, 1.0) + read_noise**2)
    stamps = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if max(box[0].stop - box[0].start, box[1].stop - box[1].start) > max_size:
            continue
        if (flagged[box] | busy[box])[labels[box] == k].any():
            continue
        excess = np.where(labels[box] == k, np.clip(image[box] - cleaned[box], 0, None), 0.0)
        if excess.sum() >= min_charge:
            stamps.append(excess.astype(np.float32))
    return stamps


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

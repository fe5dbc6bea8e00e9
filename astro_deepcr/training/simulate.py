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

- real morphologies instead (``library=``): `harvest_cosmic_rays`
  (`astro_deepcr.training.crlibrary`) cuts every connected excess that the
  TinyTim PSF does not fit (or, ``method="lacosmic"``, what LACosmic finds)
  in the real ACS/HRC exposure ``j8bt06nyq_flt.fits`` (47 Tuc, F606W, 60 s).

Realism options (all off by default, so that the figures measured on this
simulator do not move; ``realism=True`` turns on all three below: the full
PSF at a random chip position, ``Detector()`` and ``truth="paper"``):

- the full TinyTim PSF with its wings (``psf_size=None``) for ``filter_name``
  F435W, F606W or F814W, varying across the chip (``chip_origin``, see
  `astro_deepcr.training.psf`);
- detector features (``detector=Detector()``: hot pixels, bad columns, CTE
  trails, saturation with bleeding, sky gradient; see
  `astro_deepcr.training.detector`), with an ACS-style ``dq`` array;
- the truth mask (``truth=``): ``"charge"`` (CR charge above one sigma of
  the read noise) or ``"paper"``, labelled like Zhang & Bloom (2020)'s
  driz_cr masks (`truth_mask`).

All parameters are keywords with these defaults; nothing is tuned to a
detection result.
"""

import numpy as np
from scipy import ndimage, signal, stats

from ..datasets import HST_EXAMPLE
from .crlibrary import harvest_cosmic_rays
from .detector import (
    DQ_BAD,
    DQ_HOT,
    DQ_SATURATED,
    Detector,
    add_bad_columns,
    add_cte_trails,
    add_hot_pixels,
    bleed_saturation,
    sky_gradient,
)
from .psf import WFC_CHIP_SHAPE, psf_at, psf_image

__all__ = ["psf_image", "make_scene", "add_cosmic_rays", "simulate_exposure", "simulate_stack",
           "harvest_cosmic_rays", "truth_mask", "Detector", "HRC_FLT"]

#: A real ACS/HRC single exposure with its cosmic rays intact, shipped by spherical_geometry's tests.
HRC_FLT = HST_EXAMPLE  # (package, path inside it) of the real ACS/HRC frame

PIXEL_MICRON = 15.0
CR_RATE_PER_CM2_S = 1.2
DEPLETION_MICRON = 13.0
CHARGE_PER_MICRON = 80.0  # most probable e- per micron for a minimum-ionising particle
CHARGE_WIDTH = 0.35  # Moyal scale as a fraction of the most probable value
DIFFUSION_SIGMA = 0.4  # px
MAX_TRACK = 40.0  # px


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


def make_scene(shape, field="extragalactic", exptime=500.0, psf=None, seed=None, subpixel=True, filter_name="f606w",
               psf_size=25, chip_origin=None, psf_broadening=0.3):
    """A noiseless, CR-free scene in electrons (sky not included).

    Stars sit at random sub-pixel positions (``subpixel=True``, 3x3 phases)
    or all at pixel centres.

    Parameters
    ----------
    psf : ndarray, optional
        The PSF; default ``psf_image(filter_name=filter_name, size=psf_size)``
        (``psf_size=None``: the full TinyTim model with its wings).
    chip_origin : (int, int), optional
        Chip row and column of the image's first pixel. When given, the PSF
        varies across the image (`astro_deepcr.training.psf.psf_at` at the
        image's four corners, bilinear in between, ``psf_broadening``);
        galaxies use the PSF at the image centre.
    """
    if field not in _FIELDS:
        raise ValueError(f"field must be one of {sorted(_FIELDS)}, not {field!r}")
    rng = np.random.default_rng(seed)
    psf = psf_image(filter_name=filter_name, size=psf_size) if psf is None else psf
    n_stars, n_gal, (lo, hi) = _FIELDS[field]
    area = shape[0] * shape[1] / 1e6
    count = rng.poisson(n_stars * area)
    # power-law luminosity function: uniform in log flux with more faint stars
    flux = 10 ** (lo + (hi - lo) * rng.power(0.5, count)) * exptime / 500.0
    ys, xs = rng.integers(0, shape[0], count), rng.integers(0, shape[1], count)
    # stars fall anywhere within a pixel: 3x3 sub-pixel phases, each with its own shifted PSF
    phase = rng.integers(0, 9, count) if subpixel else np.full(count, 4)
    if chip_origin is None:
        nodes = [(psf, np.ones(count))]
    else:
        # bilinear interpolation of the PSF between the image's corners on the chip
        v, u = ys / max(shape[0] - 1, 1), xs / max(shape[1] - 1, 1)
        nodes = [(psf_at((chip_origin[0] + i * (shape[0] - 1), chip_origin[1] + j * (shape[1] - 1)), psf,
                         broadening=psf_broadening), (v if i else 1 - v) * (u if j else 1 - u))
                 for i in (0, 1) for j in (0, 1)]
        psf = psf_at((chip_origin[0] + shape[0] / 2, chip_origin[1] + shape[1] / 2), psf, broadening=psf_broadening)
    scene = np.zeros(shape)
    for node_psf, weight in nodes:
        for k in np.unique(phase):
            point_sources = np.zeros(shape)
            pick = phase == k
            np.add.at(point_sources, (ys[pick], xs[pick]), flux[pick] * weight[pick])
            shifted = np.clip(ndimage.shift(node_psf, ((k // 3 - 1) / 3, (k % 3 - 1) / 3), order=3, mode="constant"),
                              0, None)
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


def truth_mask(cr_charge, expected, read_noise, kind="charge", snr=(5.0, 1.5), grow=1):
    """The CR truth mask of a simulated exposure.

    Parameters
    ----------
    cr_charge : ndarray
        CR charge (e-) per pixel as read out.
    expected : ndarray or float
        Expected CR-free signal (e-: scene, sky, dark) that sets the Poisson noise.
    read_noise : float
        e-.
    kind : {"charge", "paper"}
        ``"charge"``: every pixel whose CR charge exceeds one sigma of the
        read noise (the historical definition). ``"paper"``: labelled as
        Zhang & Bloom (2020) labelled their training data, with driz_cr's
        rule at ``driz_cr_snr = "5 1.5"`` and a growth of ``grow`` px, but
        applied to the known CR charge instead of a stack residual: a pixel
        is a CR core when its charge exceeds ``snr[0]`` sigma of its noise
        (``sqrt(expected + read_noise**2)``), its 8 neighbours join when
        above ``snr[1]`` sigma, and the mask is grown by a
        ``(2 grow + 1)`` box. (drizzlepac applies ``driz_cr_grow = 1`` as a
        1 px box, i.e. no growth; ``grow=1`` here follows the paper's wording
        of one pixel; use ``grow=0`` for drizzlepac's behaviour.)

    Returns
    -------
    mask : ndarray of bool
    """
    if kind == "charge":
        return cr_charge > read_noise
    if kind != "paper":
        raise ValueError(f"truth must be 'charge' or 'paper', not {kind!r}")
    noise = np.sqrt(np.clip(expected, 0, None) + read_noise**2)
    core = cr_charge > snr[0] * noise
    mask = core | (ndimage.binary_dilation(core, np.ones((3, 3), bool)) & (cr_charge > snr[1] * noise))
    if grow > 0:
        mask = ndimage.binary_dilation(mask, np.ones((2 * grow + 1,) * 2, bool))
    return mask


def simulate_exposure(shape=(512, 512), field="extragalactic", exptime=500.0, sky=60.0, read_noise=4.0,
                      scene=None, seed=None, cr_threshold=None, truth="charge", detector=None, filter_name="f606w",
                      psf_size=25, chip_origin=None, realism=False, **cr_kwargs):
    """One exposure in electrons with known CRs.

    Parameters
    ----------
    shape : tuple
    field : str
        ``"extragalactic"``, ``"globular"`` or ``"resolved"``.
    exptime : float
        Seconds (sets source counts, dark charge and the CR count).
    sky, read_noise : float
        Sky level and read noise in electrons.
    scene : ndarray, optional
        A noiseless scene to use instead of `make_scene`.
    cr_threshold : float, optional
        With ``truth="charge"``, a pixel is a CR when its CR charge exceeds
        this; default ``read_noise`` (one sigma of the read noise).
    truth : {"charge", "paper"}
        Truth-mask definition, see `truth_mask`.
    detector : `~astro_deepcr.training.detector.Detector`, optional
        Detector features to simulate (default none).
    filter_name, psf_size, chip_origin :
        PSF of the scene, see `make_scene`.
    realism : bool
        Shortcut: the full PSF (``psf_size=None``) at a random chip position,
        ``Detector()`` and ``truth="paper"`` unless given otherwise.
    **cr_kwargs
        Passed to `add_cosmic_rays` (e.g. ``library=``).

    Returns
    -------
    dict with ``image`` (float32, sky included), ``clean`` (the same noise
    realisation without CRs), ``cr_mask`` (bool), ``cr_charge`` (as read
    out), ``scene``, ``sky`` (mean level; ``sky_map`` with a
    detector), ``read_noise``, ``events``,
    ``dq`` (int16, ACS bits: 4 bad column, 16 hot, 256 saturated; zero
    without a detector) and ``expected`` (noise-free CR-free signal, e-).
    """
    rng = np.random.default_rng(seed)
    if realism:
        psf_size = None
        detector = Detector() if detector is None else detector
        truth = "paper" if truth == "charge" and cr_threshold is None else truth
        if chip_origin is None:
            chip_origin = (int(rng.integers(0, WFC_CHIP_SHAPE[0] - shape[0] + 1)),
                           int(rng.integers(0, WFC_CHIP_SHAPE[1] - shape[1] + 1)))
    if scene is None:
        scene = make_scene(shape, field, exptime, seed=rng, filter_name=filter_name, psf_size=psf_size,
                           chip_origin=chip_origin)
    if detector is not None:
        return _detector_exposure(shape, exptime, sky, read_noise, scene, rng, truth, cr_threshold, detector,
                                  chip_origin, cr_kwargs)
    expected = scene + sky
    clean = rng.poisson(np.clip(expected, 0, None)).astype(np.float64) + rng.normal(0, read_noise, shape)
    charge, events = add_cosmic_rays(shape, exptime, seed=rng, **cr_kwargs)
    cr_mask = (charge > (read_noise if cr_threshold is None else cr_threshold) if truth == "charge"
               else truth_mask(charge, expected, read_noise, truth))
    return {
        "image": (clean + charge).astype(np.float32),
        "clean": clean.astype(np.float32),
        "cr_mask": cr_mask,
        "cr_charge": charge,
        "scene": scene,
        "sky": sky,
        "read_noise": read_noise,
        "events": events,
        "dq": np.zeros(shape, np.int16),
        "expected": expected,
    }


def _detector_exposure(shape, exptime, sky, read_noise, scene, rng, truth, cr_threshold, detector, chip_origin,
                       cr_kwargs):
    """`simulate_exposure` with detector features: the CR-free and the CR-hit readouts share every draw."""
    sky_map = sky_gradient(shape, sky, detector.sky_gradient, rng)
    # hot pixels and bad columns belong to the chip, not to the exposure
    origin = (0, 0) if chip_origin is None else tuple(int(v) for v in chip_origin)
    defects = rng if detector.defects_seed is None else np.random.default_rng([int(detector.defects_seed), *origin])
    dark, hot = add_hot_pixels(shape, exptime, detector.hot_fraction, defects)
    expected = scene + sky_map + dark
    photons = rng.poisson(np.clip(expected, 0, None)).astype(np.float64)
    noise = rng.normal(0, read_noise, shape)
    charge, events = add_cosmic_rays(shape, exptime, seed=rng, **cr_kwargs)
    bad = add_bad_columns(shape, detector.bad_columns, detector.readout, defects)
    row0 = 0 if chip_origin is None else chip_origin[0]
    if detector.readout == "top":
        row0 = 0 if chip_origin is None else 2048 - chip_origin[0] - shape[0]

    def read_out(signal_e):
        # CTE acts on the charge above the sky; saturation bleeds along columns; dead columns read only noise
        trailed = sky_map + add_cte_trails(signal_e - sky_map, detector.cte_loss, detector.cte_length,
                                           detector.readout, row0)
        bled, saturated = bleed_saturation(trailed, detector.saturation)
        return np.where(bad, 0.0, bled), saturated

    clean, saturated_clean = read_out(photons)
    hit, saturated_hit = read_out(photons + charge)
    cr_charge = hit - clean
    dq = np.zeros(shape, np.int16)
    dq[hot] |= DQ_HOT
    dq[bad] |= DQ_BAD
    dq[saturated_clean | saturated_hit] |= DQ_SATURATED
    cr_mask = (cr_charge > (read_noise if cr_threshold is None else cr_threshold) if truth == "charge"
               else truth_mask(cr_charge, expected, read_noise, truth)) & ~bad  # a dead pixel shows no CR
    return {
        "image": (hit + noise).astype(np.float32),
        "clean": (clean + noise).astype(np.float32),
        "cr_mask": cr_mask,
        "cr_charge": cr_charge,
        "scene": scene,
        "sky": float(sky),
        "sky_map": sky_map,
        "read_noise": read_noise,
        "events": events,
        "dq": dq,
        "expected": expected,
    }


def simulate_stack(n_exposures=3, shape=(512, 512), field="extragalactic", exptime=500.0, seed=None, **kwargs):
    """``n_exposures`` aligned exposures of one scene, each with its own noise and CRs.

    ``filter_name``, ``psf_size``, ``chip_origin`` and ``realism`` (which
    picks one random chip position for the whole stack) shape the common
    scene; every other keyword goes to `simulate_exposure`.
    """
    rng = np.random.default_rng(seed)
    psf_kwargs = {key: kwargs[key] for key in ("filter_name", "psf_size", "chip_origin") if key in kwargs}
    if kwargs.get("realism"):
        psf_kwargs["psf_size"] = None
        if psf_kwargs.get("chip_origin") is None:
            psf_kwargs["chip_origin"] = (int(rng.integers(0, WFC_CHIP_SHAPE[0] - shape[0] + 1)),
                                         int(rng.integers(0, WFC_CHIP_SHAPE[1] - shape[1] + 1)))
        kwargs["chip_origin"] = psf_kwargs["chip_origin"]
    scene = make_scene(shape, field, exptime, seed=rng, **psf_kwargs)
    return [simulate_exposure(shape, field, exptime, scene=scene, seed=rng, **kwargs) for _ in range(n_exposures)]

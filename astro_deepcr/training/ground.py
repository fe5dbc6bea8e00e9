# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Simulated seeing-limited (ground-based) CCD frames with exact cosmic-ray labels.

The HST models of the zoo learnt an undersampled HST PSF and driz_cr's labels (a core above S/N 5): a
seeing-limited frame with compact, faint hits lies outside what they saw. This simulator draws every
frame from wide ranges of ground conditions (all in electrons):

- PSF: a Moffat profile (``beta`` 2.5 to 4.765, the upper end matching a Kolmogorov atmosphere; Trujillo
  et al. 2001) of FWHM 1.5 to 8 px, ellipticity up to 0.15, integrated over pixels (3x oversampled),
  one per frame; stars at random sub-pixel positions, fluxes from a power law ``N(>F) ~ F**-0.7`` from
  30 e- to 1e7 e-, 2e-4 to 4e-3 stars per pixel; exponential-profile galaxies (scale length 1-6 px,
  axis ratio 0.3-1) convolved with the same PSF;
- sky 5 to 5000 e- (log-uniform) with a gradient of up to 10 %, read noise 2 to 12 e-, Poisson noise;
- saturation at a full well of 2e4 to 2e5 e- with charge bleeding along columns; hot pixels (dark
  charge, a power law above 0.08 e-/s over the exposure) and dead column segments;
- cosmic rays, 100 to 3000 per megapixel, each drawn from one of three sources: real cosmic rays
  harvested from the ACS/HRC exposure (`harvest_cosmic_rays`, 15 um pixels, thin CCD), physical tracks
  (`add_cosmic_rays`: Landau energy loss, isotropic incidence) through a depletion depth of 10 to 250 um
  (thin to deep-depletion, long "worms"), and faint hits (1 px, or a 2-4 px connected blob or track of
  30 to 800 e- in total: the compact low-energy events that LACosmic finds and the HST models do not).

Labels (``label``: 1 cosmic ray, 0 not; ``ignore``: excluded from the loss) are exact down to the noise:
``sigma`` is the pixel's noise without cosmic rays, ``sqrt(expected + read_noise**2)``. A cosmic ray is
labelled when its peak pixel carries at least ``3 sigma`` of charge; its pixels above ``1 sigma`` are
cosmic ray, its fainter pixels and every pixel of an unlabelled (undetectable) cosmic ray are ignored.
Saturated pixels, dead columns and hot pixels are ignored too: a single exposure cannot tell a hot pixel
from a one-pixel cosmic ray, so the network is neither rewarded nor punished there.

A `SceneMix` adds, on request, what the shipped ``ground`` model never saw (its default adds nothing and
leaves the random stream of every frame as it was): diffraction spikes of a four-vane spider on a fraction
of the imaging frames (0.3 to 3 % of each star's light, intensity falling as the inverse square of the
distance along four perpendicular spikes as wide as the core, one orientation per frame, on every star
bright enough to show them), a fraction of long-slit spectra (`astro_deepcr.training.spectra`: sky lines,
object traces, emission-line knots, the same seeing, dispersion along either axis), FWHM limits
(undersampled cameras), and a fraction of the cosmic rays of an imaging frame centred on a source (a pixel
where stars and galaxies add at least ``3 sigma`` of the sky's noise): on a uniform draw few cosmic rays
land on stars, while in a crowded field such as a globular cluster a third or more do, and there a cosmic
ray must be told from a star core; and a fraction of HST-like imaging frames whose stars take real
undersampled HST PSFs (drizzlepac's TinyTim models of ACS/WFC and WFC3/UVIS, at their own sampling or
binned to WFPC2's WF sampling, at random sub-pixel phases), where a Moffat of 1-3 px FWHM is not what an
undersampled star peak looks like.

No real ground frame enters: the ground frames of the evaluation (SAAO, GMOS-S, WFPC2) and the cosmic-ray
libraries harvested from them stay held out.
"""

import dataclasses

import numpy as np
from scipy import ndimage, signal

from .detector import add_bad_columns, add_hot_pixels, bleed_saturation, sky_gradient
from .psf import phased_psf, tinytim_models
from .simulate import add_cosmic_rays
from .spectra import _log_uniform, long_slit_scene

__all__ = ["GROUND_RANGES", "FAINT_STAR_SNR", "SceneMix", "moffat_psf", "star_stamp_size", "equivalent_fwhm",
           "spike_pattern", "ground_scene", "source_pixels", "faint_hits", "add_faint_stars", "ground_frame",
           "label_cosmic_rays"]

#: The ranges every frame is drawn from (see the module docstring); ``(low, high)``, log-uniform where noted.
GROUND_RANGES = {
    "fwhm": (1.5, 8.0),  # px, log-uniform
    "beta": (2.5, 4.765),
    "ellipticity": (0.0, 0.15),
    "sky": (5.0, 5000.0),  # e-, log-uniform
    "sky_gradient": (0.0, 0.1),
    "read_noise": (2.0, 12.0),  # e-
    "full_well": (2e4, 2e5),  # e-, log-uniform
    "star_density": (2e-4, 4e-3),  # per px, log-uniform
    "star_flux": (30.0, 1e7),  # e-, power law N(>F) ~ F**-0.7
    "galaxy_density": (0.0, 5e-4),  # per px
    "cr_density": (100.0, 3000.0),  # per megapixel, log-uniform
    "depletion": (10.0, 250.0),  # um, log-uniform
    "faint_charge": (30.0, 800.0),  # e- per faint hit, log-uniform
    "exptime": (30.0, 1800.0),  # s, for hot pixels, log-uniform
    "spike_fraction": (3e-3, 3e-2),  # of a star's light in its four spikes, log-uniform
}
#: A star gets spikes when they carry at least this many electrons; their length (px from the centre).
SPIKE_MIN_CHARGE = 200.0
SPIKE_LENGTH = 60
#: Fractions of cosmic rays from the HRC library, physical tracks and faint hits.
CR_SOURCES = (0.4, 0.35, 0.25)
STAR_SLOPE = 0.7
#: Side (px) of a star's stamp on an HST-like frame (`SceneMix.hst_psf`), and the binnings of its TinyTim model.
HST_STAMP = 31
HST_BINNINGS = (1, 2)
LABEL_PEAK_SIGMA = 3.0
LABEL_PIXEL_SIGMA = 1.0
#: `SceneMix.faint_stars`: peak of each extra faint star in units of the sky's noise (log-uniform), and the
#: largest density allowed (per px).
FAINT_STAR_SNR = (2.0, 30.0)
MAX_FAINT_STARS = 0.02


@dataclasses.dataclass(frozen=True)
class SceneMix:
    """What a frame may hold beyond the shipped recipe (the default: nothing beyond it).

    ``long_slit``: fraction of long-slit frames; ``spikes``: fraction of the imaging frames with diffraction
    spikes; ``fwhm_min`` / ``fwhm_max``: FWHM limits (px) instead of ``GROUND_RANGES["fwhm"]`` (an HST camera's
    undersampled PSFs: 1-3 px); ``on_sources``: fraction of the cosmic rays of an imaging frame centred on a
    source pixel (`source_pixels`; the others, and every one of a frame without a source pixel, fall anywhere);
    ``hst_psf``: fraction of the imaging frames whose stars and galaxies take a real HST PSF instead of a Moffat
    (`astro_deepcr.training.psf.phased_psf`: a TinyTim model of ACS/WFC or WFC3/UVIS from drizzlepac, at the
    detector's sampling or binned 2 x 2, each star at its own sub-pixel phase; their spider's diffraction
    spikes come with the model). ``faint_stars``: extra faint stars per pixel on an imaging frame (a Moffat
    frame's, beside its power-law stars), each with a peak of `FAINT_STAR_SNR` (log-uniform) times the sky's
    noise: the point sources at the detection limit that a faint cosmic ray must be told from (few of the
    power-law stars sit there on a bright sky with a sharp PSF). A fraction or density of 0 draws no random
    number, so the default mix gives the frames of the shipped recipe.
    """

    long_slit: float = 0.0
    spikes: float = 0.0
    fwhm_min: float | None = None
    fwhm_max: float | None = None
    on_sources: float = 0.0
    hst_psf: float = 0.0
    faint_stars: float = 0.0

    def __post_init__(self):
        for name in ("long_slit", "spikes", "on_sources", "hst_psf"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1, not {getattr(self, name)!r}")
        if not 0.0 <= self.faint_stars <= MAX_FAINT_STARS:
            raise ValueError(f"faint_stars must be between 0 and {MAX_FAINT_STARS} per px, not {self.faint_stars!r}")
        if self.fwhm_min is not None and not 0.5 <= self.fwhm_min < GROUND_RANGES["fwhm"][1]:
            raise ValueError(f"fwhm_min must be between 0.5 and {GROUND_RANGES['fwhm'][1]} px, not {self.fwhm_min!r}")
        low, high = self.fwhm_range()
        if self.fwhm_max is not None and not (0.5 < self.fwhm_max <= GROUND_RANGES["fwhm"][1] and high > low):
            raise ValueError(f"fwhm_max must be above fwhm_min ({low} px) and at most {GROUND_RANGES['fwhm'][1]} px, "
                             f"not {self.fwhm_max!r}")

    def fwhm_range(self):
        """``(low, high)`` FWHM limits of the PSFs (px)."""
        default = GROUND_RANGES["fwhm"]
        return (self.fwhm_min or default[0], self.fwhm_max or default[1])


def moffat_psf(fwhm, beta, size=None, ellipticity=0.0, angle=0.0, offset=(0.0, 0.0), oversample=3):
    """A pixel-integrated Moffat PSF (sum 1) centred at ``offset`` (px) from the central pixel."""
    if size is None:
        size = 2 * int(np.ceil(2.5 * fwhm)) + 1
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    half = size // 2
    grid = (np.arange(size * oversample) + 0.5) / oversample - half - 0.5
    y, x = np.meshgrid(grid - offset[0], grid - offset[1], indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, (-s * x + c * y) / (1.0 - ellipticity)
    profile = (1.0 + (u * u + v * v) / alpha**2) ** (-beta)
    pixels = profile.reshape(size, oversample, size, oversample).sum(axis=(1, 3))
    return pixels / pixels.sum()


def star_stamp_size(fwhm):
    """Side (px) of a simulated star's Moffat stamp, ``2 ceil(4 FWHM) + 1``: odd, about 8 FWHM across (the
    light beyond it, for FWHM 1-8 px: at most 0.7 % at ``beta`` 2.5, 0.2 % at 3, 0.01 % at 4.77; `moffat_psf`
    renormalises). The training scenes, `astro_deepcr.adapt`'s faint stars and the faint-star grid benchmark
    use it."""
    return 2 * int(np.ceil(4 * fwhm)) + 1


def _add_stamp(image, stamp, y0, x0):
    """Add ``stamp`` with its top-left corner at (y0, x0), clipped to the image; return the (image box, part of
    the stamp added) or None when the stamp falls outside."""
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + stamp.shape[0], image.shape[0]), min(x0 + stamp.shape[1], image.shape[1])
    if ye <= ys or xe <= xs:
        return None
    added = stamp[ys - y0:ye - y0, xs - x0:xe - x0]
    image[ys:ye, xs:xe] += added
    return (slice(ys, ye), slice(xs, xe)), added


def _star_fluxes(rng, n):
    low, high = GROUND_RANGES["star_flux"]
    # inverse CDF of a power law N(>F) ~ F**-slope truncated at high
    u = rng.random(n)
    a, b = low ** -STAR_SLOPE, high ** -STAR_SLOPE
    return (a - u * (a - b)) ** (-1.0 / STAR_SLOPE)


def ground_scene(shape, rng, mix=None):
    """Expected signal (e-, no noise, no cosmic rays) of a random ground field, and its parameters.

    ``mix``: a `SceneMix` (default: the shipped recipe's frames).
    """
    sources, sky, params = _scene_parts(shape, rng, mix)
    return sources + sky, params


def _scene_parts(shape, rng, mix):
    """`ground_scene`'s expected signal in two parts, ``(sources, sky, params)``: stars and galaxies, and the
    sky; a long-slit frame's whole spectrum is its ``sky`` (no source pixels)."""
    r = GROUND_RANGES
    mix = mix or SceneMix()
    params = {"fwhm": float(_log_uniform(rng, *mix.fwhm_range())), "beta": float(rng.uniform(*r["beta"])),
              "ellipticity": float(rng.uniform(*r["ellipticity"])), "angle": float(rng.uniform(0, np.pi)),
              "sky": float(_log_uniform(rng, *r["sky"]))}
    if mix.long_slit and rng.random() < mix.long_slit:
        turned = rng.random() < 0.5
        scene, spectrum = long_slit_scene(shape[::-1] if turned else shape, rng, params["fwhm"], params["beta"])
        params.update(spectrum, kind="long-slit", sky=spectrum["continuum"], spikes=0.0)
        return np.zeros(shape), (scene.T if turned else scene), params
    params["kind"] = "imaging"
    hst = _hst_model(rng) if mix.hst_psf and rng.random() < mix.hst_psf else None
    if hst is not None:
        instrument, detector, filter_name, binning = hst
        size = HST_STAMP

        def star_psf(offset=(0.0, 0.0)):
            return phased_psf(instrument, detector, filter_name, size, binning, offset)

        params.update(psf=f"{instrument}_{detector}_{filter_name} x{binning}", binning=binning,
                      fwhm=equivalent_fwhm(star_psf()))
    else:
        size = star_stamp_size(params["fwhm"])

        def star_psf(offset=(0.0, 0.0)):
            return moffat_psf(params["fwhm"], params["beta"], size, params["ellipticity"], params["angle"], offset)
    spiked = hst is None and bool(mix.spikes) and rng.random() < mix.spikes  # TinyTim's models have their own
    params["spikes"] = float(_log_uniform(rng, *r["spike_fraction"])) if spiked else 0.0
    spikes = spike_pattern(params["fwhm"], float(rng.uniform(0, np.pi / 2))) if spiked else None
    scene = np.zeros(shape)
    margin = int(3 * params["fwhm"]) + 2
    area = (shape[0] + 2 * margin) * (shape[1] + 2 * margin)
    n_stars = rng.poisson(_log_uniform(rng, *r["star_density"]) * area)
    for flux in _star_fluxes(rng, n_stars):
        y, x = rng.uniform(-margin, shape[0] + margin), rng.uniform(-margin, shape[1] + margin)
        iy, ix = int(np.floor(y)), int(np.floor(x))
        _add_stamp(scene, flux * star_psf((y - iy - 0.5, x - ix - 0.5)), iy - size // 2, ix - size // 2)
        if spikes is not None and flux * params["spikes"] >= SPIKE_MIN_CHARGE:
            _add_stamp(scene, flux * params["spikes"] * spikes, iy - SPIKE_LENGTH, ix - SPIKE_LENGTH)
    if mix.faint_stars and hst is None:
        add_faint_stars(scene, rng, mix.faint_stars * area, np.sqrt(params["sky"]), star_psf, margin)
    n_galaxies = rng.poisson(rng.uniform(*r["galaxy_density"]) * area)
    if n_galaxies:
        points = np.zeros((shape[0] + 2 * margin, shape[1] + 2 * margin))
        for _ in range(n_galaxies):
            scale, ratio, angle = rng.uniform(1, 6), rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
            half = int(6 * scale)
            yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(float)
            u, v = np.cos(angle) * xx + np.sin(angle) * yy, (-np.sin(angle) * xx + np.cos(angle) * yy) / ratio
            disc = np.exp(-np.hypot(u, v) / scale)
            flux = _star_fluxes(rng, 1)[0] * 3
            _add_stamp(points, flux * disc / disc.sum(), int(rng.integers(points.shape[0])) - half,
                       int(rng.integers(points.shape[1])) - half)
        scene += signal.fftconvolve(points, star_psf(), mode="same")[margin:-margin, margin:-margin].clip(0, None)
    sky = sky_gradient(shape, params["sky"], rng.uniform(*r["sky_gradient"]), rng)
    return scene, sky, params


def add_faint_stars(scene, rng, expected, noise, star_psf, margin=0):
    """Add faint stars at the detection limit to ``scene`` (in place): `SceneMix.faint_stars` and
    ``adapt --faint-stars`` (`astro_deepcr.adapt.faint_star_charge`).

    Parameters
    ----------
    scene : `~numpy.ndarray`, 2-D
        Charge (e-), added to.
    rng : `~numpy.random.Generator`
    expected : float
        Mean number of stars (their count is ``Poisson(expected)``), placed uniformly over ``scene`` grown by
        ``margin`` px on each side.
    noise : float
        e-: a centred star's peak is `FAINT_STAR_SNR` (log-uniform) times it.
    star_psf : callable
        ``star_psf(offset=(0, 0))``: the PSF (odd square stamp, unit sum) of a star ``offset`` px from the
        centre of the stamp's central pixel.
    margin : int
    """
    peak = float(star_psf().max())
    for _ in range(rng.poisson(expected)):
        y, x = rng.uniform(-margin, scene.shape[0] + margin), rng.uniform(-margin, scene.shape[1] + margin)
        iy, ix = int(np.floor(y)), int(np.floor(x))
        flux = float(_log_uniform(rng, *FAINT_STAR_SNR)) * noise / peak
        stamp = star_psf((y - iy - 0.5, x - ix - 0.5))
        _add_stamp(scene, flux * stamp, iy - stamp.shape[0] // 2, ix - stamp.shape[1] // 2)


def _hst_model(rng):
    """A random TinyTim model for an HST-like frame: ``(instrument, detector, filter, binning)``, the camera and
    the binning (1, or 2 for WF-like sampling) drawn first, each with equal chances, then the filter."""
    models = tinytim_models()
    cameras = sorted(models)
    camera = cameras[int(rng.integers(len(cameras)))]
    filter_name = models[camera][int(rng.integers(len(models[camera])))]
    return (*camera, filter_name, int(rng.choice(HST_BINNINGS)))


def equivalent_fwhm(psf):
    """The FWHM (px) of the Gaussian with the same effective area ``sum(psf)**2 / sum(psf**2)`` as ``psf``."""
    area = psf.sum() ** 2 / (psf**2).sum()
    return float(2.0 * np.sqrt(2.0 * np.log(2.0)) * np.sqrt(area / (4.0 * np.pi)))


def source_pixels(sources, sky_level, read_noise):
    """Pixels where stars and galaxies (``sources``, e-) add at least ``LABEL_PEAK_SIGMA`` (3) times the sky's
    noise ``sqrt(sky_level + read_noise**2)``: where `SceneMix.on_sources` centres cosmic rays."""
    return sources >= LABEL_PEAK_SIGMA * np.sqrt(sky_level + read_noise**2)


def spike_pattern(fwhm, angle, length=SPIKE_LENGTH):
    """Four diffraction spikes of a spider (unit sum, the core left out), ``2 * length + 1`` px square.

    Along a spike the intensity falls as ``1 / (1 + (d / fwhm)**2)`` (a straight edge's diffraction: the
    inverse square of the distance ``d``), across it a Gaussian as wide as the core; the spikes point at
    ``angle`` plus multiples of 90 degrees.
    """
    yy, xx = np.mgrid[-length:length + 1, -length:length + 1].astype(float)
    sigma = max(fwhm, 1.0) / 2.355
    pattern = np.zeros(yy.shape)
    for turn in (angle, angle + np.pi / 2):
        along = np.cos(turn) * xx + np.sin(turn) * yy
        across = -np.sin(turn) * xx + np.cos(turn) * yy
        pattern += np.exp(-0.5 * (across / sigma) ** 2) / (1.0 + (along / fwhm) ** 2)
    pattern[np.hypot(yy, xx) < fwhm] = 0.0  # the core is the Moffat's
    return pattern / pattern.sum()


def faint_hits(n, rng):
    """``n`` faint cosmic-ray stamps (e-): a single pixel, or 2-4 connected pixels (blob or short track)."""
    stamps = []
    for _ in range(n):
        total = float(_log_uniform(rng, *GROUND_RANGES["faint_charge"]))
        n_pixels = int(rng.integers(1, 5))
        stamp = np.zeros((3, 3))
        y, x = 1, 1
        stamp[y, x] = 1.0
        for _ in range(n_pixels - 1):  # a random walk over the 8 neighbours, staying in the 3x3 box
            dy, dx = (int(v) for v in rng.integers(-1, 2, 2))
            y, x = min(max(y + dy, 0), 2), min(max(x + dx, 0), 2)
            stamp[y, x] += float(rng.uniform(0.2, 1.0))
        stamps.append(total * stamp / stamp.sum())
    return stamps


def _cosmic_rays(shape, rng, library, on_sources=0.0, sites=None):
    """CR charge (e-) and a map of CR identities (0: none) for one frame; a fraction ``on_sources`` of them
    centred on a pixel of ``sites`` (a boolean map, `source_pixels`; none when it holds no pixel)."""
    n_cr = rng.poisson(_log_uniform(rng, *GROUND_RANGES["cr_density"]) * shape[0] * shape[1] / 1e6)
    charge = np.zeros(shape)
    identity = np.zeros(shape, np.int32)
    kinds = rng.choice(3, size=n_cr, p=CR_SOURCES if library else (0.0, 0.6, 0.4))
    faint = iter(faint_hits(int((kinds == 2).sum()), rng))
    centres = np.argwhere(sites) if on_sources else ()
    for k, kind in enumerate(kinds, start=1):
        if kind == 0:
            stamp = np.rot90(np.asarray(library[int(rng.integers(len(library)))], float), int(rng.integers(4)))
            stamp = stamp[:, ::-1] if rng.random() < 0.5 else stamp
        elif kind == 1:
            depletion = float(_log_uniform(rng, *GROUND_RANGES["depletion"]))
            stamp = _one_track(rng, depletion)
        else:
            stamp = next(faint)
        stamp = np.where(stamp > 1e-3 * stamp.max(), stamp, 0.0)
        if on_sources and len(centres) and rng.random() < on_sources:
            centre = centres[int(rng.integers(len(centres)))]
            y0, x0 = int(centre[0]) - stamp.shape[0] // 2, int(centre[1]) - stamp.shape[1] // 2
        else:
            y0 = int(rng.integers(-stamp.shape[0] // 2, shape[0] - stamp.shape[0] // 2))
            x0 = int(rng.integers(-stamp.shape[1] // 2, shape[1] - stamp.shape[1] // 2))
        placed = _add_stamp(charge, stamp, y0, x0)
        if placed is not None:
            box, added = placed
            identity[box][(added > 0) & (2 * added >= charge[box])] = k  # where cosmic rays overlap: the larger share
    return charge, identity


def _one_track(rng, depletion):
    """One physical track (e-) through ``depletion`` um of silicon, cut to its box."""
    size = 96
    # add_cosmic_rays draws Poisson(rate * area * exptime) events: pick the rate that gives one on average,
    # then keep the first non-empty draw
    rate = 1.0 / ((15e-4) ** 2 * size * size)
    for _ in range(20):
        charge, events = add_cosmic_rays((size, size), 1.0, seed=rng, rate=rate, depletion_micron=depletion,
                                         max_track=60.0)
        if events == 1 and charge.max() > 0:
            rows, cols = np.nonzero(charge > 1e-3 * charge.max())
            return charge[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return faint_hits(1, rng)[0]


def label_cosmic_rays(cr_charge, identity, sigma):
    """``(label, ignore)`` of injected cosmic rays by the rule of the module docstring."""
    significance = cr_charge / sigma
    label = np.zeros(cr_charge.shape, bool)
    ignore = (cr_charge > 0) & (significance <= LABEL_PIXEL_SIGMA)
    if identity.max() > 0:
        peaks = ndimage.maximum(significance, identity, index=np.arange(1, identity.max() + 1))
        detectable = np.concatenate([[False], np.asarray(peaks) >= LABEL_PEAK_SIGMA])
        strong = detectable[identity] & (significance > LABEL_PIXEL_SIGMA)
        label |= strong
        ignore |= (identity > 0) & ~detectable[identity] & (cr_charge > 0)
    return label, ignore & ~label


def ground_frame(shape, rng, library=None, mix=None):
    """One simulated ground frame with exact labels (``mix``: a `SceneMix`, default the shipped recipe's).

    Returns
    -------
    frame : dict
        ``image`` (float32, e-), ``label`` (bool, cosmic ray), ``ignore`` (bool: excluded from the loss),
        ``clean`` (float32, e-: the same frame without cosmic rays, same noise) and ``params``.
    """
    r = GROUND_RANGES
    mix = mix or SceneMix()
    sources, sky, params = _scene_parts(shape, rng, mix)
    params["read_noise"] = float(rng.uniform(*r["read_noise"]))
    exptime = float(_log_uniform(rng, *r["exptime"]))
    dark, hot = add_hot_pixels(shape, exptime, float(rng.uniform(0, 2e-3)), rng)
    expected = sources + sky + dark
    sites = source_pixels(sources, params["sky"], params["read_noise"]) if mix.on_sources else None
    cr_charge, identity = _cosmic_rays(shape, rng, library, mix.on_sources, sites)
    noisy = rng.poisson(np.clip(expected, 0, None)).astype(float)
    noise = rng.normal(0.0, params["read_noise"], shape)
    full_well = float(_log_uniform(rng, *r["full_well"]))
    clean, saturated = bleed_saturation(noisy, full_well)
    image, saturated_cr = bleed_saturation(noisy + cr_charge, full_well)
    saturated |= saturated_cr
    dead = add_bad_columns(shape, float(rng.uniform(0, 20)), "bottom", rng)
    level = float(rng.uniform(0, 0.3)) * params["sky"]
    image, clean = np.where(dead, level, image) + noise, np.where(dead, level, clean) + noise
    sigma = np.sqrt(np.clip(expected, 0, None) + params["read_noise"] ** 2)
    label, ignore = label_cosmic_rays(np.where(saturated | dead, 0.0, cr_charge), identity, sigma)
    ignore |= saturated | dead | hot
    label &= ~ignore
    params.update(exptime=exptime, full_well=full_well, n_cr=int(identity.max()))
    return {"image": image.astype(np.float32), "clean": clean.astype(np.float32), "label": label,
            "ignore": ignore, "params": params}

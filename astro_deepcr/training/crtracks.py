# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Cosmic-ray tracks simulated from the physics of a minimum-ionising particle crossing a CCD.

A library of real cosmic rays carries its detector with it: HRC's tracks are
short because HRC pixels are large and its silicon thin. `simulate_tracks`
makes tracks for any silicon thickness and pixel size instead:

- **Direction.** Cosmic rays arrive from every direction (isotropic
  radiance), so the flux through the flat detector goes as ``cos(theta)``:
  ``cos(theta) = sqrt(u)`` for ``u`` uniform, azimuth uniform (on the ground
  muons favour the zenith, but the telescope points anywhere). A track
  crosses the whole depleted thickness ``t``; its length on the chip is
  ``t * tan(theta)``. Tracks longer than ``max_length_px`` are drawn again
  (a stamp must fit a frame; what is lost is the rare grazing track).
- **Charge.** A minimum-ionising particle in silicon loses energy with the
  Landau distribution of thin absorbers (3.6 eV per e-h pair): most
  probable about 80 e- per micron through 300 um of silicon, less through
  thinner paths, as the Landau-Vavilov most probable value ``xi [ln(2 m c2
  beta2 gamma2 / I) + ln(xi / I) + 0.2 - beta2]`` says (PDG, "Passage of
  particles through matter", eq. 34.12; Bichsel 1988, Rev. Mod. Phys. 60,
  663; ``beta gamma`` 3.6, ``I`` 173 eV): 63 e-/um through 15 um, 79 e-/um
  through 250 um (`most_probable_charge`, scaled to ``mpv_per_um`` at 300
  um); width ``xi = 0.1535 MeV cm2/g x Z/A x rho x path``, about 5 e- per
  micron of path, with a long tail to high charge. Drawn here from the
  Moyal distribution (the closed-form approximation of Landau's) with
  that location and scale ``xi``, for the whole track, then spread along the
  path in 1 um segments with a Gamma(4) fluctuation each (delta electrons
  make real tracks lumpy). Bichsel shows real distributions through a few
  microns to be wider than Landau's; the thin library's spread is a lower
  bound.
- **Diffusion.** Charge drifts from where it is made to the pixel gates
  on the front side; on the way it spreads laterally by ``sigma(d) =
  diffusion_um * sqrt(d / t)`` for a drift distance ``d`` (a uniform field:
  drift time and so the diffusion variance grow with ``d``). A track is
  sharp at the end next to the gates and wide at the far end: in a thick,
  deep-depletion CCD (200-250 um; DECam's and LSST's are 250 and 100 um,
  with a far-side sigma of about 7 um) the long oblique tracks are "worms"
  that widen along their length; in a thin CCD (about 15 um) tracks are a
  few pixels long and barely spread.
- **Pixels.** Each 1 um segment is a Gaussian of its depth's sigma
  integrated over the pixels (exactly, by the error function); pixels with
  less than ``min_pixel`` e- are dropped (a harvested library is cut at a
  noise threshold too).

Not modelled: the low-energy electrons and heavy nuclei that make curly
worms and very bright spots (a few per cent of real hits), and any field-free
region. This is a physical prior, not a measured library: compare results
on it with those of harvested real cosmic rays.
"""

import numpy as np
from scipy import special, stats

__all__ = ["simulate_tracks", "most_probable_charge", "MPV_PER_UM", "XI_PER_UM"]

#: Most probable charge of a minimum-ionising particle through 300 um of silicon (e- per micron of path).
MPV_PER_UM = 80.0
_I_EV, _BETA_GAMMA, _ELECTRON_EV = 173.0, 3.6, 0.51099895e6  # silicon's mean excitation energy; a MIP
#: Landau width per micron of path: 0.1535 MeV cm2/g x 14/28.09 x 2.33 g/cm3 = 17.8 eV/um, / 3.6 eV per pair.
XI_PER_UM = 0.1535e6 * 14 / 28.0855 * 2.33 * 1e-4 / 3.6


def _landau_mpv_ev(path_um):
    xi = XI_PER_UM * 3.6 * np.asarray(path_um, float)
    beta2 = _BETA_GAMMA**2 / (1.0 + _BETA_GAMMA**2)
    return xi * (np.log(2 * _ELECTRON_EV * _BETA_GAMMA**2 / _I_EV) + np.log(xi / _I_EV) + 0.2 - beta2)


def most_probable_charge(path_um, mpv_per_um=MPV_PER_UM):
    """Most probable charge (e-) of a MIP along ``path_um`` of silicon: Landau-Vavilov, ``mpv_per_um`` at 300 um."""
    return mpv_per_um * 300.0 * _landau_mpv_ev(path_um) / _landau_mpv_ev(300.0)


def _direction(rng, thickness_um, pixel_um, max_length_px):
    for _ in range(1000):
        cos_theta = np.sqrt(rng.random())
        length_px = thickness_um * np.sqrt(1.0 - cos_theta**2) / max(cos_theta, 1e-9) / pixel_um
        if length_px <= max_length_px:
            return length_px, rng.uniform(0.0, 2.0 * np.pi), cos_theta
    raise RuntimeError("no track shorter than max_length_px in 1000 draws")


def _render(points_y, points_x, sigma, charge):
    """Pixel-integrated Gaussians (centres in px, sigma in px, charge in e-) on the smallest box holding them."""
    reach = 3.0 * sigma.max() + 1.0
    y0, x0 = int(np.floor(points_y.min() - reach)), int(np.floor(points_x.min() - reach))
    ny, nx = int(np.ceil(points_y.max() + reach)) - y0, int(np.ceil(points_x.max() + reach)) - x0
    scale = np.sqrt(2.0) * np.maximum(sigma, 0.01)[:, None]
    edges_y, edges_x = np.arange(ny + 1) + y0, np.arange(nx + 1) + x0
    cdf_y = 0.5 * (1.0 + special.erf((edges_y[None, :] - points_y[:, None]) / scale))
    cdf_x = 0.5 * (1.0 + special.erf((edges_x[None, :] - points_x[:, None]) / scale))
    return (np.diff(cdf_y, axis=1) * charge[:, None]).T @ np.diff(cdf_x, axis=1)


def simulate_tracks(n, thickness_um, pixel_um=15.0, rng=None, *, mpv_per_um=MPV_PER_UM, diffusion_um=None,
                    max_length_px=60.0, min_pixel=2.0):
    """``n`` simulated cosmic-ray charge stamps (e-, float32) for a CCD (see the module docstring).

    Parameters
    ----------
    n : int
        Number of tracks.
    thickness_um : float
        Depleted silicon thickness (micron): about 15 for a thin CCD, 200-250 for a deep-depletion one.
    pixel_um : float
        Pixel pitch (micron).
    rng : int or `numpy.random.Generator`, optional
        The same seed gives the same tracks.
    mpv_per_um : float
        Most probable charge per micron through 300 um of silicon (e-); thinner paths scale as Landau-Vavilov.
    diffusion_um : float, optional
        Lateral diffusion sigma (micron) of charge made at the far side;
        default ``min(8, 2 + thickness_um / 40)``: 2.4 um at 15 um, 7 um at 200 um.
    max_length_px : float
        Longest track on the chip (px).
    min_pixel : float
        Pixels with less charge (e-) are set to zero.

    Returns
    -------
    list of ndarray of float32
        Stamps trimmed to their non-zero pixels.
    """
    if not (thickness_um > 0 and pixel_um > 0):
        raise ValueError(f"thickness_um and pixel_um must be > 0, not {thickness_um} and {pixel_um}")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    rng = np.random.default_rng(rng)
    diffusion_um = min(8.0, 2.0 + thickness_um / 40.0) if diffusion_um is None else float(diffusion_um)
    stamps = []
    while len(stamps) < int(n):
        length_px, azimuth, cos_theta = _direction(rng, thickness_um, pixel_um, max_length_px)
        path_um = thickness_um / cos_theta
        total = stats.moyal.rvs(loc=most_probable_charge(path_um, mpv_per_um), scale=XI_PER_UM * path_um,
                                random_state=rng)
        segments = max(int(np.ceil(path_um)), 2)
        fraction = (np.arange(segments) + 0.5) / segments  # along the path: 0 at the gates, 1 at the far side
        charge = rng.gamma(4.0, 1.0, segments)
        charge *= max(total, 0.0) / charge.sum()
        start = rng.random(2)  # the gate end, anywhere in its pixel
        points_y = start[0] + fraction * length_px * np.sin(azimuth)
        points_x = start[1] + fraction * length_px * np.cos(azimuth)
        sigma = diffusion_um * np.sqrt(fraction) / pixel_um
        stamp = _render(points_y, points_x, sigma, charge)
        stamp[stamp < min_pixel] = 0.0
        rows, cols = np.nonzero(stamp)
        if rows.size:
            stamps.append(stamp[rows.min():rows.max() + 1, cols.min():cols.max() + 1].astype(np.float32))
    return stamps

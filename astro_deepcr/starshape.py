# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The star-shape test: cosmic rays on stars, found against the frame's own stars.

A network that sees about 20 px around a pixel tells a cosmic ray on an
undersampled star from the star's own peak poorly: on crowded HST frames the
shipped models miss cosmic rays on stars that LACosmic at its defaults finds
by flagging the stars themselves (docs/ground_search.rst, "Cosmic rays on
stars"). This test uses what the frame knows about its stars. It runs after
the network where a door is asked for it (``star_shape=True``; off by
default, see docs/ground.rst, "The star-shape test"):

1. the frame's isolated stars (`find_stars`): the brightest pixel of its
   3 x 3 neighbourhood, whose 3 x 3 median (a cosmic ray does not survive it)
   lies `MIN_SNR` times the sky noise above the sky, with no other such peak
   and no unusable pixel -- bad, saturated, or within `SATURATED_MARGIN` px of
   saturation, where a star is not its PSF -- in its stamp of
   ``2 ceil(1.5 FWHM) + 1`` px (FWHM from `astro_deepcr.starpsf.measure_psf`);
2. of those no sharper than the frame's stars (peak over the mean of its 8
   neighbours at most `astro_deepcr.starpsf.StarPSF.sharpness`, the 95th
   percentile of the stars `~astro_deepcr.starpsf.measure_psf` fitted: a
   frame's cosmic rays neither pass for its stars nor widen the bounds), on
   half (the stars in the "black" squares of a checkerboard of
   `SPLIT_BLOCK` px squares, so that a star's half depends on where it lies,
   not on which other stars are usable), a linear map that predicts each
   pixel of a stamp from its other pixels (`StarShapeMap`): an empirical
   PSF, with every sub-pixel phase the frame's stars sample and no profile
   assumed;
3. on the other half, how far clean stars stray from it: the `QUANTILE`
   quantile of (observed - predicted) / predicted over the pixels predicted
   above `STRONG_SIGMA` sky sigma, at each position of the stamp (a
   position with fewer than `MIN_POSITION_VALUES` such values takes the
   quantile pooled over the peak, or over all the other pixels);
4. every isolated star is then tested: a pixel is flagged where observed -
   predicted exceeds that bound times the prediction plus `NSIGMA` times the
   pixel's noise (the sky's and the prediction's photon noise and the read
   noise). A cosmic ray is one of the inputs that predict its star's other
   pixels, so the stamp's worst such pixel is flagged first and replaced by its
   prediction, the stamp predicted again, and so on until none is left
   (`outliers`; as LACosmic iterates): otherwise the cosmic ray's excess
   spreads to the predictions of its neighbours and gets them flagged. The
   replacements only clear flags; every flag also passes the first prediction,
   the one the bounds were measured with.

A frame with fewer than `STARS_PER_INPUT` stars per input of the map in each
half learns nothing and flags nothing (`learn_star_map` returns None), as on
most ground frames. The image must be in electrons and the read noise known:
a crowded field leaves no sky to measure the noise on.
"""

import dataclasses

import numpy as np
from scipy import ndimage

__all__ = ["StarShapeMap", "add_star_shape_flags", "star_shape_mask", "learn_star_map", "star_shape_flags",
           "outliers", "find_stars", "stamp_pixels", "fit_weights", "fractions", "unusable_pixels", "sky_and_noise",
           "QUANTILE", "NSIGMA", "MIN_SNR", "STRONG_SIGMA", "STARS_PER_INPUT", "SATURATED_MARGIN", "SPLIT_BLOCK",
           "MIN_POSITION_VALUES"]

#: The bound on a clean star's excess: this quantile of the held-out stars' fractions, i.e. false flags on
#: about 1 % of a star's bright pixels (chosen in session 42 before any test ran: docs/ground_search.rst, R13).
QUANTILE = 0.99
#: A flag also needs this many sigma of the pixel's noise above the prediction.
NSIGMA = 5.0
#: A star: its 3 x 3 median this many sky sigma above the sky.
MIN_SNR = 5.0
#: The bound is measured on the pixels predicted above this many sky sigma (the sky's noise is at most 5 %).
STRONG_SIGMA = 20.0
#: The map is learnt only where each half of the stars holds this many per input pixel (else it overfits).
STARS_PER_INPUT = 4
#: No tested or learning stamp holds a pixel within this many px of a saturated one.
SATURATED_MARGIN = 3
#: A stamp position with fewer held-out values than this keeps its group's pooled bound (peak or others): the 99th
#: percentile of fewer values is mostly noise (session 43, rule R19).
MIN_POSITION_VALUES = 100
#: Side (px) of the checkerboard squares that split the stars into learning and held-out halves.
SPLIT_BLOCK = 32


@dataclasses.dataclass(frozen=True, eq=False)
class StarShapeMap:
    """What a frame's isolated stars say about their shape.

    Attributes
    ----------
    half : int
        Stamps are ``2 half + 1`` px square.
    weights : ndarray, shape (n, n)
        Row ``j`` predicts stamp pixel ``j`` (row-major) from the others (``weights[j, j] == 0``).
    bounds : ndarray, shape (n,)
        The `QUANTILE` of (observed - predicted) / predicted on held-out stars, at each stamp position (the
        pooled one of the peak or of the other pixels where a position has fewer than `MIN_POSITION_VALUES`).
    n_learnt, n_held_out : int
        Stars the map was learnt on and the bounds measured on.
    fwhm : float
        The frame's PSF width (px) that set the stamp.
    sharpness : float
        The sharpest peak / mean-of-8-neighbours ratio a learnt star may have.
    """

    half: int
    weights: np.ndarray
    bounds: np.ndarray
    n_learnt: int
    n_held_out: int
    fwhm: float
    sharpness: float

    def predict(self, stamps):
        """Leave-one-out predictions of ``stamps`` (N, n)."""
        return stamps @ self.weights.T


def unusable_pixels(bad, saturated):
    """Pixels no stamp may hold: ``bad`` ones and those within `SATURATED_MARGIN` px of a ``saturated`` one."""
    unusable = np.asarray(bad, bool).copy()
    saturated = np.asarray(saturated, bool)
    if saturated.any():
        box = np.ones((2 * SATURATED_MARGIN + 1,) * 2, bool)
        unusable |= ndimage.binary_dilation(saturated, box)
    return unusable


def _filled(image, unusable, where=None):
    """The image as float64, the ``where`` pixels (default: the unusable ones) at the median of the usable ones."""
    image = np.asarray(image, np.float64)
    usable = ~unusable & np.isfinite(image)
    where = unusable if where is None else where
    return np.where(where, np.median(image[usable]) if usable.any() else 0.0, image)


def sky_and_noise(image, unusable, readnoise):
    """The sky (`astro_deepcr.starpsf.sky_background`, unusable pixels at the median) and its noise at each
    pixel, ``sqrt(sky + readnoise**2)`` (electrons)."""
    from .starpsf import sky_background

    sky = sky_background(_filled(image, unusable))
    return sky, np.sqrt(np.clip(sky, 0, None) + float(readnoise) ** 2)


def find_stars(excess, noise, unusable, half, min_snr=MIN_SNR):
    """Rows and columns of the isolated stars of ``excess`` (the frame less its sky); see the module docstring."""
    smooth = ndimage.median_filter(excess, size=3)
    # the peak is the brightest pixel: the 3 x 3 median's own maxima tie between neighbours
    peaks = (excess == ndimage.maximum_filter(excess, size=3)) & (smooth > min_snr * noise) & ~unusable
    box = 2 * half + 1
    alone = ndimage.convolve(peaks.astype(np.int32), np.ones((box, box), np.int32), mode="constant") == 1
    clean = ndimage.maximum_filter(unusable.astype(np.uint8), size=box, mode="constant", cval=1) == 0
    return np.nonzero(peaks & alone & clean)


def stamp_pixels(rows, cols, half):
    """Index arrays (N, (2 half + 1)**2) of the stamps centred on ``rows``, ``cols``, row-major."""
    offset_y, offset_x = np.mgrid[-half:half + 1, -half:half + 1]
    return rows[:, None] + offset_y.ravel(), cols[:, None] + offset_x.ravel()


def _sharpness(stamps, half):
    """Each stamp's centre over the mean of its 8 neighbours (infinite where they sum to 0 or less)."""
    size = 2 * half + 1
    centre = half * size + half
    neighbours = [centre + dy * size + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    around = stamps[:, neighbours].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(around > 0, stamps[:, centre] / np.where(around > 0, around, 1.0), np.inf)


def fit_weights(stamps):
    """The leave-one-out linear map of `StarShapeMap.weights`, least squares on ``stamps`` (N, n), each star
    weighted alike whatever its flux."""
    n_pixels = stamps.shape[1]
    scale = np.linalg.norm(stamps, axis=1)[:, None] + 1e-9  # each star alike, whatever its flux
    weights = np.zeros((n_pixels, n_pixels))
    for j in range(n_pixels):
        others = np.arange(n_pixels) != j
        weights[j, others] = np.linalg.lstsq(stamps[:, others] / scale, stamps[:, j] / scale[:, 0], rcond=None)[0]
    return weights


class _Frame:
    """A frame as the test sees it, computed once: the image (non-finite pixels at the median), the unusable
    pixels, the frame less its sky and the sky's noise at each pixel."""

    def __init__(self, image, readnoise, unusable):
        nonfinite = ~np.isfinite(image)
        self.unusable = np.asarray(unusable, bool) | nonfinite
        self.empty = bool(self.unusable.all())
        # other unusable pixels keep their values: a hot pixel is no peak
        self.image = _filled(image, self.unusable, nonfinite)
        sky, self.noise = sky_and_noise(self.image, self.unusable, readnoise)
        self.excess = self.image - sky
        self.readnoise = readnoise
        self._stars = {}

    def stars(self, half):
        """`find_stars` for stamps of ``2 half + 1`` px (computed once per size)."""
        if half not in self._stars:
            self._stars[half] = find_stars(self.excess, self.noise, self.unusable, half)
        return self._stars[half]


def _learn(frame):
    from .starpsf import measure_psf

    if frame.empty:
        return None
    try:
        psf = measure_psf(frame.image, frame.readnoise, bad=frame.unusable)
    except ValueError:
        return None
    half = max(2, int(np.ceil(1.5 * psf.fwhm)))
    rows, cols = frame.stars(half)
    stamps = frame.excess[stamp_pixels(rows, cols, half)]
    starlike = _sharpness(stamps, half) <= psf.sharpness
    rows, cols, stamps = rows[starlike], cols[starlike], stamps[starlike]
    n_inputs = (2 * half + 1) ** 2 - 1
    learning = (rows // SPLIT_BLOCK + cols // SPLIT_BLOCK) % 2 == 0
    if min(learning.sum(), (~learning).sum()) < STARS_PER_INPUT * n_inputs:
        return None
    learn, held_out = stamps[learning], stamps[~learning]
    weights = fit_weights(learn)
    bounds = _bounds(held_out, held_out @ weights.T, frame.noise[rows[~learning], cols[~learning]])
    if bounds is None:
        return None
    return StarShapeMap(half, weights, bounds, len(learn), len(held_out), float(psf.fwhm), float(psf.sharpness))


def _bounds(observed, predicted, noise):
    """`StarShapeMap.bounds` from the held-out stars (None where none has a pixel predicted strong enough)."""
    fraction, strong = _strong_fractions(observed, predicted, noise)
    values = [fraction[strong[:, j], j] for j in range(observed.shape[1])]
    centre = len(values) // 2
    peak, others = values[centre], np.concatenate(values[:centre] + values[centre + 1:])  # `fractions`' two groups
    if peak.size == 0 or others.size == 0:
        return None
    pooled = [np.quantile(others, QUANTILE)] * len(values)
    pooled[centre] = np.quantile(peak, QUANTILE)
    return np.array([np.quantile(at, QUANTILE) if at.size >= MIN_POSITION_VALUES else bound
                     for at, bound in zip(values, pooled, strict=True)])


def _strong_fractions(observed, predicted, noise):
    """(observed - predicted) / predicted, and where the prediction exceeds `STRONG_SIGMA` times ``noise``."""
    strong = predicted > STRONG_SIGMA * np.asarray(noise)[:, None]
    return (observed - predicted) / np.where(strong, predicted, 1.0), strong


def fractions(observed, predicted, noise):
    """(observed - predicted) / predicted of the stamp pixels predicted above `STRONG_SIGMA` times ``noise``
    (one value per stamp): ``(peak, others)``, the centre pixels' and the other pixels' values."""
    centre = np.zeros(observed.shape[1], bool)
    centre[observed.shape[1] // 2] = True
    fraction, strong = _strong_fractions(observed, predicted, noise)
    return tuple(fraction[:, columns][strong[:, columns]] for columns in (centre, ~centre))


def outliers(stamps, star_map, sky_noise):
    """The pixels of ``stamps`` (N, n; the frame less its sky) their star's shape cannot explain (bool, N x n).

    A pixel passes where observed - predicted exceeds ``star_map.bounds`` times the prediction plus `NSIGMA`
    times its noise (``sky_noise`` of each stamp, the prediction's photon noise). Worst first: each stamp's pixel
    passing by the largest factor is flagged and replaced by its prediction, and the stamp is predicted again
    without it, until none passes. The bounds were measured with the stamps' own predictions, so a pixel is
    flagged only where the first prediction passes it too: the replacements clear the flags a worse pixel's
    excess caused, and never add one (a replaced peak would lower its neighbours' predictions in turn).
    """
    working = np.array(stamps, np.float64)
    hit = np.zeros(working.shape, bool)
    first = None  # the first prediction's verdicts
    active = np.arange(len(working))
    sky_variance = np.asarray(sky_noise, np.float64) ** 2
    for _ in range(working.shape[1]):
        predicted = star_map.predict(working[active])
        signal = np.clip(predicted, 0, None)  # a wing's prediction may dip below the sky
        allowed = star_map.bounds * signal + NSIGMA * np.sqrt(signal + sky_variance[active, None])
        factor = np.where(hit[active], -np.inf, (stamps[active] - predicted) / allowed)
        if first is None:
            first = factor > 1
        worst = np.argmax(factor, axis=1)
        passes = factor[np.arange(len(active)), worst] > 1
        if not passes.any():
            break
        active, worst = active[passes], worst[passes]
        hit[active, worst] = True
        working[active, worst] = predicted[passes, worst]
    return hit & first


def _flags(frame, star_map):
    rows, cols = frame.stars(star_map.half)
    mask = np.zeros(frame.image.shape, bool)
    if len(rows) == 0:
        return mask
    stamp_rows, stamp_cols = stamp_pixels(rows, cols, star_map.half)
    hit = outliers(frame.excess[stamp_rows, stamp_cols], star_map, frame.noise[rows, cols])
    mask[stamp_rows[hit], stamp_cols[hit]] = True
    return mask


def learn_star_map(image, *, readnoise, unusable):
    """The frame's `StarShapeMap`, or None where it has too few isolated stars (or no PSF can be measured).

    Parameters
    ----------
    image : array-like, 2-D
        The frame in electrons.
    readnoise : float
        Read noise (electrons).
    unusable : array-like of bool
        `unusable_pixels`.
    """
    return _learn(_Frame(image, readnoise, unusable))


def star_shape_flags(image, star_map, *, readnoise, unusable):
    """Pixels of the frame's isolated stars that their shape cannot explain (bool, the image's shape).

    Parameters
    ----------
    image : array-like, 2-D
        The frame in electrons.
    star_map : `StarShapeMap`
        From `learn_star_map` (of this frame, or of another frame of the same camera and PSF).
    readnoise : float
        Read noise (electrons).
    unusable : array-like of bool
        `unusable_pixels`: no tested stamp holds one.
    """
    return _flags(_Frame(image, readnoise, unusable), star_map)


def star_shape_mask(image, *, readnoise, unusable):
    """`learn_star_map` and `star_shape_flags` on one frame, its sky and stars computed once (what
    `astro_deepcr.detection.detect` runs): ``(mask, star_map)``, the mask all False and the map None where
    nothing could be learnt."""
    frame = _Frame(image, readnoise, unusable)
    star_map = _learn(frame)
    if star_map is None:
        return np.zeros(frame.image.shape, bool), None
    return _flags(frame, star_map), star_map


def add_star_shape_flags(cr_mask, image, *, bad, saturated, readnoise):
    """``cr_mask`` with the test's flags added (never on ``bad`` pixels), and a note of what it did (what
    `astro_deepcr.detection.detect` runs and records as ``Detection.star_shape``)."""
    from astropy import log

    found, star_map = star_shape_mask(image, readnoise=readnoise, unusable=unusable_pixels(bad, saturated))
    if star_map is None:
        log.info("star-shape test: too few isolated stars to learn their shape; nothing added")
        return cr_mask, "none: too few isolated stars"
    added = found & ~cr_mask & ~np.asarray(bad, bool)
    stars = star_map.n_learnt + star_map.n_held_out
    log.info(f"star-shape test: {int(added.sum())} px added; the stars' shape learnt from {stars} isolated stars")
    return cr_mask | added, f"{int(added.sum())} px added, map of {stars} stars"

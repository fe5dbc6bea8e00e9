# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The detectors injection-recovery compares: a deepCR model, LACosmic, and either at another's flag count.

A detector is a function ``image -> bool mask``. `match_lacosmic_flags` finds
the LACosmic settings whose flag count on a frame equals a target (deepCR's
count on the same frame) and says whether it reached it: a comparison "at
equal flags" is only that when `FlagMatch.matched` is true. `match_deepcr_flags`
does the same for a deepCR model's threshold (two models at equal flags).
"""

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ["deepcr_detector", "lacosmic_detector", "FlagMatch", "match_lacosmic_flags", "ThresholdMatch",
           "match_deepcr_flags", "SIGCLIP_RANGE", "OBJLIM_STEPS", "TUNING_OBJLIMS", "FLAG_TOLERANCE"]

#: The sigclip range the flag match searches (LACosmic's default is 4.5; below ~0.3 it flags most of a frame).
SIGCLIP_RANGE = (0.2, 2000.0)
#: objlim values tried, in this order, when sigclip alone cannot reach the target at the default objlim 5:
#: a lower objlim lets LACosmic flag sharper fine structure (star cores), the only other way to more flags.
OBJLIM_STEPS = (5.0, 3.0, 2.0, 1.0, 0.5)
#: objlim values of the tuned comparison (`astro_deepcr.evaluation.frames.run_frame` ``tune_objlims``): LACosmic
#: at deepCR's flag count with each, sigclip alone bisected; from lax (star cores flagged) to strict.
TUNING_OBJLIMS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0)
#: A flag count within this fraction of the target (or 2 flags, whichever is more) counts as matched.
FLAG_TOLERANCE = 0.05


def deepcr_detector(model, *, threshold=None, dq=None, mask=None, satlevel=None, protect_saturated=True,
                    device="cpu", threads=None, precision=None, star_shape=False, readnoise=None):
    """``image -> cosmic-ray mask`` of a deepCR model with the flag door's DQ semantics.

    Runs `astro_deepcr.detection.detect` (``grow=1``: no growth); ``dq``
    (integer DQ), ``mask`` (bad pixels), ``satlevel``, ``precision`` (default
    ``"auto"``, as every door), ``star_shape`` and ``readnoise`` as there;
    ``model`` is a zoo name or `~astro_deepcr.zoo.ModelSpec`; the image must be
    in the model's units.
    """
    from ..zoo import get_model

    spec = get_model(model, kind="mask") if isinstance(model, str) else model
    from ..detection import detect

    def run(image):
        return detect(image, spec=spec, threshold=threshold, mask=mask, dq=dq, satlevel=satlevel,
                      protect_saturated=protect_saturated, grow=1, device=device, threads=threads,
                      precision=precision, progress=False, star_shape=star_shape, readnoise=readnoise).cr_mask

    return run


def lacosmic_detector(*, readnoise, gain=1.0, satlevel=None, sigclip=4.5, objlim=5.0, inmask=None, niter=4):
    """``image -> cosmic-ray mask`` of LACosmic (`astroscrappy.detect_cosmics`).

    The image (in units of ``gain`` e- each) is given to astroscrappy in
    electrons; ``satlevel`` in image units (None: no saturation level);
    ``inmask`` bad pixels, never flagged.
    """
    import astroscrappy

    def run(image):
        electrons = np.asarray(image, dtype=np.float32) * np.float32(gain)
        level = np.inf if satlevel is None else float(satlevel) * gain
        found, _ = astroscrappy.detect_cosmics(electrons, inmask=inmask, sigclip=sigclip, objlim=objlim, gain=1.0,
                                               readnoise=readnoise, satlevel=level, niter=niter, verbose=False)
        found = np.asarray(found, bool)
        return found if inmask is None else found & ~np.asarray(inmask, bool)

    return run


@dataclass(frozen=True)
class FlagMatch:
    """LACosmic settings found by `match_lacosmic_flags`.

    ``matched`` is true when ``n_flagged`` is within ``tolerance`` flags of
    ``target``; otherwise ``sigclip`` / ``objlim`` give the nearest count the
    search reached and a comparison with them is *not* at equal flags.
    """

    sigclip: float
    objlim: float
    n_flagged: int
    target: int
    matched: bool
    tolerance: int

    def label(self):
        """Detector label: ``LACosmic (sigclip S[, objlim O], equal flags | nearest flags (N vs target M))``."""
        settings = f"sigclip {self.sigclip:.3g}" + ("" if self.objlim == 5.0 else f", objlim {self.objlim:g}")
        how = "equal flags" if self.matched else f"nearest flags ({self.n_flagged} vs target {self.target})"
        return f"LACosmic ({settings}, {how})"


def flag_tolerance(target, fraction=FLAG_TOLERANCE):
    """Flags by which a count may miss ``target`` and still be matched: ``max(2, fraction * target)``."""
    return int(max(2, round(fraction * target)))


def _geometric_midpoint(low, high):
    return float(np.sqrt(low * high))


def _sigclip_converged(low, high):
    return high / low < 1.0001


def _logit_midpoint(low, high):
    logit = (np.log(low / (1 - low)) + np.log(high / (1 - high))) / 2
    return float(1 / (1 + np.exp(-logit)))


def _threshold_converged(low, high):
    return high - low < 1e-7


def _bisect_decreasing(count, target, low, high, steps, precision=0, midpoint=_geometric_midpoint,
                       converged=_sigclip_converged):
    """Bisection of a setting whose flag count falls as it rises (LACosmic's sigclip in log, deepCR's threshold in
    logit); the nearest (setting, count). The ends first; stops once a count is within ``precision`` flags of the
    target."""
    best = None
    for setting in (low, high):  # the ends first: is the target inside at all?
        n = count(setting)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (setting, n)
    if not count(low) >= target >= count(high):
        return best
    for _ in range(int(steps)):
        setting = midpoint(low, high)
        n = count(setting)
        if abs(n - target) < abs(best[1] - target):
            best = (setting, n)
        if abs(n - target) <= precision or converged(low, high):
            break
        low, high = (setting, high) if n > target else (low, setting)
    return best


def match_lacosmic_flags(image, n_flags, *, sigclip_range=SIGCLIP_RANGE, objlims=OBJLIM_STEPS, steps=20,
                         tolerance=None, **lacosmic):
    """The LACosmic settings whose flag count on ``image`` is nearest ``n_flags``; says whether it is reached.

    Bisection in log ``sigclip`` over ``sigclip_range`` at each ``objlim`` of
    ``objlims`` in turn (default 5, LACosmic's own, first), stopping within
    a fifth of ``tolerance`` (1 % of the target by default: LACosmic runs up to
    22 times per objlim); the search stops at the first objlim whose count is
    within ``tolerance`` of the target
    (only a target above what sigclip can reach at objlim 5 -- e.g. deepCR
    flagging star cores that LACosmic's fine-structure test protects --
    needs a lower objlim).

    Parameters
    ----------
    image : array-like, 2-D
    n_flags : int
        The target count (deepCR's flags on the same frame).
    sigclip_range : (float, float)
    objlims : sequence of float
    steps : int
        Bisection steps per objlim (each runs LACosmic once).
    tolerance : int, optional
        Default `flag_tolerance` (5 % of the target, at least 2 flags).
    **lacosmic
        Keywords of `lacosmic_detector` (``readnoise``, ``satlevel``, ``inmask``, ...).

    Returns
    -------
    FlagMatch
    """
    if n_flags < 0:
        raise ValueError(f"n_flags must be >= 0, not {n_flags}")
    if "sigclip" in lacosmic or "objlim" in lacosmic:
        raise TypeError("match_lacosmic_flags chooses sigclip and objlim itself")
    tolerance = flag_tolerance(n_flags) if tolerance is None else int(tolerance)
    best = None  # (objlim, sigclip, count)
    for objlim in objlims:
        cache = {}

        def count(sigclip, objlim=objlim, cache=cache):
            if sigclip not in cache:
                cache[sigclip] = int(lacosmic_detector(sigclip=sigclip, objlim=objlim, **lacosmic)(image).sum())
            return cache[sigclip]

        sigclip, n = _bisect_decreasing(count, n_flags, *sigclip_range, steps, precision=tolerance // 5)
        if best is None or abs(n - n_flags) < abs(best[2] - n_flags):
            best = (objlim, sigclip, n)
        if abs(best[2] - n_flags) <= tolerance or count(sigclip_range[1]) > n_flags:
            break  # reached, or too many flags even at the highest sigclip: a lower objlim only adds flags
    objlim, sigclip, n = best
    return FlagMatch(sigclip=float(sigclip), objlim=float(objlim), n_flagged=int(n), target=int(n_flags),
                     matched=abs(n - n_flags) <= tolerance, tolerance=tolerance)


@dataclass(frozen=True)
class ThresholdMatch:
    """A deepCR threshold found by `match_deepcr_flags`; ``matched`` as in `FlagMatch`."""

    threshold: float
    n_flagged: int
    target: int
    matched: bool
    tolerance: int

    def label(self):
        """``threshold T, equal flags`` or ``threshold T, nearest flags (N vs target M)``."""
        how = "equal flags" if self.matched else f"nearest flags ({self.n_flagged} vs target {self.target})"
        return f"threshold {self.threshold:.3g}, {how}"


def match_deepcr_flags(image, n_flags, model, *, threshold_range=(1e-4, 1 - 1e-4), steps=30, tolerance=None,
                       **detector):
    """The threshold of a deepCR model whose flag count on ``image`` is nearest ``n_flags``; says whether it is
    reached.

    Two models compared at their own thresholds differ in calibration as much as in what they can tell apart;
    at equal flags on the uninjected frame only the second is left (a point of each one's ROC curve). Bisection
    in logit of the threshold, each step a run of `deepcr_detector` (the detection core decides everything
    else: bad pixels, saturation, no growth), stopping within a fifth of ``tolerance``.

    Parameters
    ----------
    image : array-like, 2-D, or a list of them
        In the model's units. A list: the flags are counted over all of them (one threshold for the parts of
        several frames), and ``mask`` may be a list too, one per image.
    n_flags : int
        The target count (e.g. another model's flags on the same frame).
    model : str or `~astro_deepcr.zoo.ModelSpec`
    threshold_range : (float, float)
    steps : int
    tolerance : int, optional
        Default `flag_tolerance` (5 % of the target, at least 2 flags).
    **detector
        Keywords of `deepcr_detector` (``dq``, ``mask``, ``satlevel``, ...).

    Returns
    -------
    ThresholdMatch
    """
    if n_flags < 0:
        raise ValueError(f"n_flags must be >= 0, not {n_flags}")
    if "threshold" in detector:
        raise TypeError("match_deepcr_flags chooses the threshold itself")
    tolerance = flag_tolerance(n_flags) if tolerance is None else int(tolerance)
    images = list(image) if isinstance(image, (list, tuple)) else [image]
    masks = detector.pop("mask", None)
    masks = list(masks) if isinstance(masks, (list, tuple)) else [masks] * len(images)
    if len(masks) != len(images):
        raise ValueError(f"{len(masks)} masks for {len(images)} images")
    cache = {}

    def count(threshold):
        if threshold not in cache:
            with warnings.catch_warnings():
                # the search probes thresholds that flag much of the frame: the core's out-of-domain alarm is
                # expected there, and the match says whether the count it returns was reached
                warnings.simplefilter("ignore", AstropyUserWarning)
                cache[threshold] = sum(int(deepcr_detector(model, threshold=threshold, mask=mask, **detector)(part)
                                           .sum()) for part, mask in zip(images, masks))
        return cache[threshold]

    threshold, n = _bisect_decreasing(count, n_flags, *threshold_range, steps, precision=tolerance // 5,
                                      midpoint=_logit_midpoint, converged=_threshold_converged)
    return ThresholdMatch(threshold=float(threshold), n_flagged=int(n), target=int(n_flags),
                          matched=abs(n - n_flags) <= tolerance, tolerance=tolerance)

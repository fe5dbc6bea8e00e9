# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The one detection core: how a frame becomes a cosmic-ray mask.

Every door -- `astro_deepcr.cosmicray_deepcr` (ccdproc), ``astro-deepcr
clean``, `astro_deepcr.drizzle.flag_cosmic_rays` (and so ``astrodrizzle``),
the demos, `astro_deepcr.DeepCR` and the evaluation -- calls `detect`. The
doors do I/O, units and provenance; each decision is taken here, once:

- the model: `choose_model` (header-driven, explicit wins, out-of-domain
  warning), resolved once and passed down as a `~astro_deepcr.zoo.ModelSpec`;
- the default threshold: `default_threshold`;
- the precision: `choose_precision`;
- the bad-pixel policy (`pixel_masks`): which pixels are filled before the
  network sees the image and which are never flagged;
- saturation and its protection (`astro_deepcr.bright`);
- the star-shape test, where asked (`astro_deepcr.starshape`);
- growth (`astro_deepcr.dq.grow_like_driz_cr`) and the flagged-fraction alarm.
"""

import dataclasses
import warnings

import numpy as np
from astropy import log
from astropy.utils.exceptions import AstropyUserWarning

from . import bright
from .conf import conf
from .dq import CR_BIT, DEFAULT_BITS, DEFAULT_FILL_BITS, check_grow, dq_masks, grow_like_driz_cr
from .engine import (
    backend_label,
    bf16_validated,
    network_backend,
    resolve_device,
    resolve_precision,
    run_tiled,
)
from .inpaint import fill_median
from .selection import _header_text, select_model
from .zoo import get_model, load_network

__all__ = [
    "Detection",
    "choose_model",
    "default_threshold",
    "check_threshold",
    "choose_precision",
    "precision_verdict",
    "bf16_verdict",
    "pixel_masks",
    "run_network",
    "network_probability",
    "backend_used",
    "detect",
    "MAX_FLAGGED_FRACTION",
    "flagged_fraction_alarm",
]

#: The flagged-fraction alarm: `detect` warns that a frame is probably outside the model's domain (wrong
#: units or gain, or the wrong model) when more than ``"floor"`` of its good pixels are flagged and, with an
#: exposure time, more than ``"per_second"`` of them per second of exposure, without one more than
#: ``"without_exptime"``. Cosmic rays accumulate with time (HST: about 2.5 % of the pixels per 1000 s), so
#: a fixed fraction would fire on deep exposures. Measured (docs/bright.rst, benchmarks/injection_frames.py):
#: the default models flag at most 8.1e-5 per second (0.03 % of SAAO in 150 s, 0.62 % of GMOS-S in 90 s with
#: ACS-WFC; 0.49 % of the ACS/HRC frame in 60 s with ground, its model since session 35); WFC3-UVIS, outside
#: its domain, 3.5e-4 (5.2 % of SAAO) to 1.0e-3 (9.2 % of GMOS-S). The bound lies between, about a factor 2
#: from each.
MAX_FLAGGED_FRACTION = {"floor": 0.01, "per_second": 1.5e-4, "without_exptime": 0.05}


@dataclasses.dataclass(frozen=True, eq=False)
class Detection:
    """What `detect` found in one frame.

    Attributes
    ----------
    probability : ndarray of float32
        Cosmic-ray probability (0 at bad pixels).
    cr_mask : ndarray of bool
        The cosmic rays: thresholded, protected, grown, never on a bad pixel.
    spec : `~astro_deepcr.zoo.ModelSpec`
    reason : str
        Why the model was chosen (recorded as ``DCRWHY``).
    threshold : float
    precision : str
        The precision the network ran at (never ``"auto"``).
    backend : str
        The inference runtime and its version (``"torch 2.13.0"``).
    bad, fill, saturated : ndarray of bool
        Pixels never flagged; pixels filled before the network (a subset of
        ``bad``); saturated pixels (a subset of ``bad``).
    protection : int
        The saturation protection applied: no flag within this many pixels
        of a saturated pixel (0: none; recorded as ``DCRSATP``).
    precision_verdict : str
        Why ``precision`` (`precision_verdict`; recorded as ``DCRPVAL``).
    star_shape : str
        What the star-shape test did (`astro_deepcr.starshape`): ``"off"``, the pixels it added and the number
        of stars its map was learnt and measured on, or why it flagged nothing (recorded as ``DCRSTAR``).
    """

    probability: np.ndarray
    cr_mask: np.ndarray
    spec: object
    reason: str
    threshold: float
    precision: str
    backend: str
    bad: np.ndarray
    fill: np.ndarray
    saturated: np.ndarray
    protection: int = 0
    precision_verdict: str = ""
    star_shape: str = "off"

    @property
    def n_cr(self):
        """Number of cosmic-ray pixels."""
        return int(self.cr_mask.sum())

    @property
    def provenance(self):
        """The decisions of this detection as `astro_deepcr.provenance.record_run` fields (model, reason,
        threshold, precision and its verdict, backend, protection, star-shape test where asked for): every door
        records them the same way."""
        return dict(model=self.spec.name, reason=self.reason, threshold=self.threshold, precision=self.precision,
                    backend=self.backend, protection=self.protection, precision_verdict=self.precision_verdict,
                    star_shape=None if self.star_shape == "off" else self.star_shape)


def choose_model(header=None, model=None, kind="mask"):
    """The model for a frame and why: ``(spec, reason)``.

    `astro_deepcr.selection.select_model` (the model cards matched against
    ``INSTRUME``, ``DETECTOR`` and the filters; an explicit ``model`` wins),
    plus a warning when an explicit ``model`` was trained on another
    instrument or detector than the header names.
    """
    spec, reason = select_model(header, model=model, kind=kind)
    if model is not None and header is not None:
        instrument = _header_text(header, "INSTRUME")
        detector = _header_text(header, "DETECTOR")
        if instrument and (spec.instrument.upper(), spec.detector.upper()) != (instrument, detector):
            warnings.warn(
                f"model {spec.name!r} was trained on {spec.instrument}/{spec.detector or '?'} data, "
                f"not {instrument}/{detector or '?'}; check its masks", AstropyUserWarning)
    return spec, reason


def check_threshold(threshold):
    """``threshold`` as a float in [0, 1]."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a number in [0, 1], not {threshold!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], not {threshold!r}")
    return value


def default_threshold(spec, threshold=None):
    """``threshold`` checked, or the model's default (0.5 where its card gives none)."""
    if threshold is not None:
        return check_threshold(threshold)
    return 0.5 if spec.threshold is None else float(spec.threshold)


def choose_precision(spec, precision=None, device=None):
    """The precision ``spec``'s network runs at: ``precision`` with ``"auto"`` resolved.

    ``"auto"`` (the default, ``conf.precision``) is bfloat16 only where the
    device computes it natively and the model passed its bfloat16
    validation *on this machine* for the runtime that will run it
    (`astro_deepcr.bf16_check`: measured on first use, then cached); float32
    otherwise, without validating anything. `precision_verdict` says why.
    """
    return precision_verdict(spec, precision, device)[0]


def precision_verdict(spec, precision=None, device=None):
    """``(precision, verdict)``: `choose_precision` and the verdict it used, for logs and headers
    (``DCRPVAL``): ``"requested"``, ``"no native bfloat16"``, ``"passed here 2026-12-04 (HRC 48/3828 flipped)"``,
    ``"failed here ..."``; an inpainting model: its card's validation (``"card: passed"``)."""
    device = resolve_device(device)
    requested = conf.precision if precision is None else precision
    if resolve_precision(requested, device, validated=True) == "float32" or requested != "auto":
        # not "auto", or "auto" without native bfloat16: nothing to validate
        return resolve_precision(requested, device), ("requested" if requested != "auto" else "no native bfloat16")
    backend = network_backend(None, device, "bfloat16")
    if spec.kind != "mask":
        passed = bf16_validated(spec, backend)
        return ("bfloat16" if passed else "float32"), f"card: {'passed' if passed else 'not validated'}"
    from .bf16_check import verdict_text

    result, _ = bf16_verdict(spec, device)
    return ("bfloat16" if result["passed"] else "float32"), verdict_text(result)


def bf16_verdict(spec, device=None, refresh=False):
    """``(result, fresh)``: mask model ``spec``'s bfloat16 validation on this machine for the runtime
    ``"auto"`` would use (`astro_deepcr.bf16_check.verdict`; ``refresh`` measures it again)."""
    from . import bf16_check

    device = resolve_device(device)

    def detection(image, bad, precision):
        with warnings.catch_warnings():  # the frames are comparisons, not the user's data: no domain alarm
            warnings.simplefilter("ignore", AstropyUserWarning)
            found = detect(image, spec=spec, mask=bad, device=device, precision=precision, progress=False)
        return found.probability, found.cr_mask

    backend = network_backend(None, device, "bfloat16")
    return bf16_check.verdict(spec, backend, device, detection, refresh=refresh)


def pixel_masks(shape, mask=None, dq=None, bits=DEFAULT_BITS, fill_bits=DEFAULT_FILL_BITS, crbit=CR_BIT,
                nonfinite=None):
    """The bad-pixel policy: ``(bad, fill)`` for a frame.

    - DQ pixels with a bit outside ``bits`` are bad; those with a
      ``fill_bits`` bit are also filled (`astro_deepcr.dq.dq_masks`).
    - A boolean ``mask`` (``CCDData.mask``, ``inmask``) carries no bit
      meaning: its pixels are bad, never flagged, but *not* filled -- the
      network sees their values. Filling them flattens saturated stars
      into plateaus with sharp rims that the network flags; not filling
      them gives an HST frame opened with ccdproc (``hdu_mask="DQ"``) the
      cosmic rays of ``astro-deepcr flag`` (docs/architecture.rst).
    - Non-finite pixels are bad and filled (the network cannot take them).
    """
    bad = np.zeros(shape, dtype=bool)
    fill = np.zeros(shape, dtype=bool)
    if dq is not None:
        dq = np.asarray(dq)
        if dq.shape != tuple(shape):
            raise ValueError(f"DQ shape {dq.shape} does not match the image shape {tuple(shape)}")
        bad, fill = dq_masks(dq, bits, fill_bits, crbit)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != tuple(shape):
            raise ValueError(f"mask shape {mask.shape} does not match the image shape {tuple(shape)}")
        bad = bad | mask.astype(bool)
    if nonfinite is not None:
        bad = bad | nonfinite
        fill = fill | nonfinite
    return bad, fill


def run_network(spec, inputs, *, device=None, precision="float32", tile_size=None, batch_size=None, threads=None,
                progress=None):
    """``spec``'s network over normalised ``inputs`` (C, H, W), tiled; ``precision`` already resolved."""
    device = resolve_device(device)
    net = load_network(spec, device=device, precision=precision)
    log.debug(f"deepCR {spec.kind} model {spec.name}: {precision} on {device} ({backend_label(net)})")
    return run_tiled(net, inputs, tile_size=tile_size, batch_size=batch_size, device=device,
                     precision=precision, threads=threads, progress=progress, desc=f"deepCR-{spec.kind} {spec.name}")


def backend_used(spec, device=None, precision="float32"):
    """The runtime that runs ``spec`` at ``precision`` on ``device``, with its version (``"torch 2.13.0"``)."""
    return backend_label(load_network(spec, device=resolve_device(device), precision=precision))


def network_probability(image, fill, spec, *, good=None, device=None, precision="float32", tile_size=None,
                        batch_size=None, threads=None, progress=None):
    """Cosmic-ray probability of a float32 image: ``fill`` pixels filled, normalised, the network run.

    ``good`` (default ``~fill``) are the pixels whose statistics normalise
    a ``meanstd`` model.
    """
    data = fill_median(image, fill, fill).astype(np.float32) if fill.any() else image
    if spec.normalisation == "meanstd":
        values = data[~fill if good is None else good].astype(np.float64)
        std = values.std() if values.size else 0.0
        data = (data - (values.mean() if values.size else 0.0)) / (std if std > 0 else 1.0)
    else:
        data = data / spec.scale
    with np.errstate(over="ignore", invalid="ignore"):
        data = np.asarray(data, dtype=np.float32)
    probability = run_network(spec, data[None], device=device, precision=precision, tile_size=tile_size,
                              batch_size=batch_size, threads=threads, progress=progress)
    if not np.isfinite(probability).all():
        warnings.warn("network output was not finite for some pixels (values near the float32 limit?); "
                      "they are given probability 0", AstropyUserWarning)
        probability = np.nan_to_num(probability, nan=0.0, posinf=0.0, neginf=0.0)
    return probability


def _as_float32(image):
    """``image`` as a C-contiguous float32 array, copied only when it is not one already (never modified)."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"image must be 2-D, got a {array.ndim}-D array of shape {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(array, dtype=np.float32, order="C")


def detect(image, *, spec, reason="explicit", threshold=None, mask=None, dq=None, bits=DEFAULT_BITS,
           fill_bits=DEFAULT_FILL_BITS, crbit=CR_BIT, satlevel=None, protect_saturated=True, grow=1, ctegrow=0,
           cte_dir=0, exptime=None, device=None, precision=None, tile_size=None, batch_size=None, threads=None,
           progress=None, star_shape=False, readnoise=None):
    """Find the cosmic rays of one frame.

    Parameters
    ----------
    image : array-like, 2-D
        The frame in the units of ``spec`` (``spec.units``; electrons for
        the HST models). The door converts.
    spec : `~astro_deepcr.zoo.ModelSpec` or str
        The mask model, from `choose_model`.
    reason : str
        Why ``spec`` was chosen (returned for provenance).
    threshold : float, optional
        Probability threshold; default `default_threshold`.
    mask : array-like of bool, optional
        Bad pixels without bit meaning: never flagged, not filled (see
        `pixel_masks`).
    dq : array-like of int, optional
        A DQ array; ``bits``, ``fill_bits`` and ``crbit`` as in
        `astro_deepcr.dq.dq_masks`.
    satlevel : float or array, optional
        Saturation level in the image's units: pixels at or above it are
        saturated (as are DQ `~astro_deepcr.dq.SATURATION_BITS` pixels).
    protect_saturated : bool or int
        Apply the saturation protection of `astro_deepcr.bright.protect`:
        True (default) no flag within ``bright.PROTECTION["radius"]`` (3 px)
        of a saturated pixel, an integer within that many pixels, False
        none; saturated pixels are never flagged either way.
    grow, ctegrow, cte_dir : int
        Growth as AstroDrizzle's ``driz_cr_grow`` / ``driz_cr_ctegrow``
        (`astro_deepcr.dq.grow_like_driz_cr`); grown pixels that are bad
        are not flagged.
    exptime : float, optional
        Exposure time in seconds, for the flagged-fraction alarm
        (`MAX_FLAGGED_FRACTION`).
    device, precision, tile_size, batch_size, threads, progress
        Engine settings (defaults from `astro_deepcr.conf`).
    star_shape : bool
        Also flag the pixels of the frame's isolated stars that the stars'
        own shape cannot explain (`astro_deepcr.starshape`; off by default:
        docs/ground.rst, "The star-shape test"). Needs a model in electrons
        and ``readnoise``.
    readnoise : float, optional
        Read noise in electrons, for ``star_shape``.

    Returns
    -------
    detection : `Detection`

    Raises
    ------
    ValueError
        ``star_shape`` with a model not in electrons or without a valid ``readnoise``.
    """
    spec = get_model(spec, kind="mask")
    readnoise = _star_shape_request(star_shape, readnoise, spec)
    grow = check_grow(grow)
    ctegrow = int(ctegrow)
    threshold = default_threshold(spec, threshold)
    radius = bright.protection_radius(protect_saturated)
    precision, verdict = precision_verdict(spec, precision, device)
    data = _as_float32(image)
    nonfinite = ~np.isfinite(data)
    bad, fill = pixel_masks(data.shape, mask=mask, dq=dq, bits=bits, fill_bits=fill_bits, crbit=crbit,
                            nonfinite=nonfinite)
    with np.errstate(invalid="ignore"):
        saturated = bright.saturated_pixels(data, dq=dq, satlevel=satlevel)
    bad = bad | saturated
    fill = fill & ~saturated  # saturated plateaus are never flattened
    if bad.all():
        warnings.warn("image has no good (finite, unmasked) pixel; no cosmic ray can be found", AstropyUserWarning)
        probability = np.zeros(data.shape, dtype=np.float32)
    else:
        good = ~bad if spec.normalisation == "meanstd" else None  # its statistics; no image-sized mask otherwise
        probability = network_probability(data, fill | nonfinite, spec, good=good, device=device,
                                          precision=precision, tile_size=tile_size, batch_size=batch_size,
                                          threads=threads, progress=progress)
        probability[bad] = 0.0
    cr_mask = probability > threshold
    seeds = _protection_seeds(saturated, mask, dq, data)
    if radius and seeds.any():
        cr_mask = bright.protect(cr_mask, probability, seeds, threshold, image=data, radius=radius)
    _check_fraction(cr_mask, bad, spec, exptime, threshold)  # what the model found, before the user's growth
    shape_note = "off"
    if star_shape:
        from .starshape import add_star_shape_flags

        cr_mask, shape_note = add_star_shape_flags(cr_mask, data, bad=bad, saturated=saturated, readnoise=readnoise)
    cr_mask = grow_like_driz_cr(cr_mask, grow, ctegrow, cte_dir) & ~bad
    return Detection(probability=probability, cr_mask=cr_mask, spec=spec, reason=reason, threshold=threshold,
                     precision=precision, backend=backend_used(spec, device, precision), bad=bad,
                     fill=fill | nonfinite, saturated=saturated, protection=radius, precision_verdict=verdict,
                     star_shape=shape_note)


def _star_shape_request(star_shape, readnoise, spec):
    """``readnoise`` as a float where the star-shape test is asked for (None otherwise); errors name the problem."""
    if star_shape not in (True, False):
        raise TypeError(f"star_shape must be True or False, not {star_shape!r}")
    if not star_shape:
        return None
    if spec.units != "electron":
        raise ValueError(f"star_shape=True needs a model in electrons; {spec.name} expects {spec.units}")
    try:
        value = float(readnoise)
    except (TypeError, ValueError):
        raise ValueError(f"star_shape=True needs the frame's read noise in electrons (readnoise=), not "
                         f"{readnoise!r}") from None
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"readnoise must be a finite number >= 0 (electrons), not {readnoise!r}")
    return value


def _protection_seeds(saturated, mask, dq, data):
    """The saturated pixels whose rims `astro_deepcr.bright.protect` protects.

    Without a boolean mask: every saturated pixel. With one, the pixels at or
    above ``satlevel`` count only where the mask marks them too (DQ
    saturation bits always count): a bright pixel the user's mask leaves
    unmasked is, by that mask, not saturated -- it is never flagged
    (``satlevel``'s meaning), but its rim is not protected. This gives an HST
    frame opened with ccdproc (``mask = DQ != 0``, ccdproc's default
    ``satlevel`` of 65535 e-, below the HRC's full well) the protection of
    ``astro-deepcr flag`` (docs/architecture.rst).
    """
    if mask is None:
        return saturated
    known = np.asarray(mask, dtype=bool)
    if dq is not None:
        known = known | bright.saturated_pixels(data, dq=dq)
    return saturated & known


def flagged_fraction_alarm(fraction, exptime=None):
    """The limit of `MAX_FLAGGED_FRACTION` that a flagged fraction exceeds, or None: the out-of-domain alarm.

    Parameters
    ----------
    fraction : float
        Flagged pixels over good pixels.
    exptime : float, optional
        Exposure time (s): the bound is then a fraction per second of exposure.

    Returns
    -------
    str or None
        The limit exceeded, in words (e.g. ``"0.00015 per second of exposure"``), or None when the
        fraction is plausible for cosmic rays.
    """
    bound = MAX_FLAGGED_FRACTION
    if fraction <= bound["floor"]:
        return None
    if exptime is not None and exptime > 0:
        return f"{bound['per_second']:g} per second of exposure" if fraction / exptime > bound["per_second"] else None
    return f"{100 * bound['without_exptime']:g} %" if fraction > bound["without_exptime"] else None


def _check_fraction(cr_mask, bad, spec, exptime=None, threshold=None):
    n_good = int(bad.size - bad.sum())
    if n_good == 0:
        return
    fraction = cr_mask.sum() / n_good
    limit = flagged_fraction_alarm(fraction, exptime)
    if limit is None:
        return
    exposure = "" if exptime is None else f" in {exptime:g} s"
    found = (f"deepCR model {spec.name} flagged {100 * fraction:.1f} % of the good pixels ({int(cr_mask.sum())} px)"
             f"{exposure}, more than the {limit} seen on real frames")
    causes = (f"the units ({spec.name} expects {spec.units}), the gain, and the model choice "
              f"({_trained_for(spec)})")
    card = default_threshold(spec)
    if threshold is not None and threshold < card:
        # a threshold below the card's flags faint sources too (docs/threshold.rst): name it before the domain
        message = (f"{found} at the cards' thresholds; the threshold {threshold:g} is below {spec.name}'s {card:g}, "
                   f"and a lower threshold also flags faint sources (docs: 'Choosing a threshold'). If that is not "
                   f"why, check {causes}.")
    else:
        message = f"{found}: the frame is probably outside the model's domain. Check {causes}."
    warnings.warn(message, AstropyUserWarning)


def _trained_for(spec):
    """What a model was trained for, in the alarm's words: its camera, or its card's description."""
    if spec.instrument:
        return f"trained on {spec.instrument} {spec.detector}".rstrip()
    return f"{spec.description or 'a model for no particular camera'}; its card: astro-deepcr models"

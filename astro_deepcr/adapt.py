# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Adapt a shipped mask model to your own frames: fine-tuning by injection, checked on held-out regions.

``astro-deepcr adapt FRAMES... -o DIR`` (or `adapt_model`):

1. Each frame (electrons, from its header's gain or ``gain``) is cut in two along its longer axis: the first
   ``1 - holdout`` for training, the rest, after a gap of ``GAP`` px, held out for the check.
2. The frame's own cosmic rays carry no label. Every pixel that the base model (probability above
   ``CANDIDATE_PROBABILITY``) or LACosmic (sigclip 4, objlim 5) flags on the uninjected frame, grown by
   2 px, is kept out of the loss, with bad and saturated pixels. With ``release_stars`` the flagged stars
   stay in: the groups that the frame's own PSF, measured from at least 20 of its stars, explains
   (`psf_explained`); on a crowded frame both detectors flag star cores, which a loss without them cannot
   teach.
3. Training samples are random ``crop`` x ``crop`` cut-outs of the training parts with cosmic rays
   injected exactly as `astro_deepcr.training.ground` injects them into simulations (real ACS/HRC cosmic
   rays, physical tracks, faint hits; labels down to the noise of the frame, ``sqrt(smooth + read
   noise**2)``), and the base model is fine-tuned on them (BatchNorm frozen, Adam, ``steps`` steps). With
   ``faint_stars`` (per px), faint point sources of each frame's own PSF (`frame_psf`) at the detection limit
   are added to the samples as negatives (`faint_star_charge`), and the check also counts the faint point
   sources (placebos) each model flags: for frames where the base model masks faint stars.
4. The check (`astro_deepcr.adapt_check`): injection-recovery on the held-out parts with a cosmic-ray library
   the fine-tuning did not use (``check_library``, default `~astro_deepcr.adapt_check.CHECK_LIBRARY`), the
   base and the adapted model against LACosmic, each at equal flags, recall counted by new flags. The adapted
   model is also run at the base model's number of flags on the uninjected held-out parts: if it recalls
   fewer cosmic rays there, it is worse and nothing is written (`AdaptationRefused`). Both models run in
   float32 (`~astro_deepcr.adapt_check.CHECK_PRECISION`) here, in the calibration below and in finding the
   frame's own candidates, whatever the CPU.
5. Written: ``DIR/<name>.safetensors`` and its card ``DIR/<name>.json`` (usable at once as
   ``model="DIR/<name>.safetensors"``), its entry in ``DIR/models.json`` (the other models listed there kept), and
   its table appended to ``DIR/adapt.md`` under ``## <name>``. A model of the same name already in ``DIR`` stops
   the run before training unless ``overwrite``; a run that fails removes the files it created. The card's
   threshold is the one at which the adapted model flags as many pixels of the uninjected training parts as
   the base model at its own (`~astro_deepcr.adapt_check.calibrate`): fine-tuning on one frame moves the
   calibration (with ``release_stars`` on WFPC2's WF chips from about 10000 flags of a held-out part to 300-450
   at 0.5), and the model written is the model checked, float32 at that threshold (in use ``precision="auto"``
   decides as for every mask model: bfloat16 where it passes its check on the machine).
"""

import dataclasses
import os
import time

import numpy as np
from astropy import log

from .adapt_check import CHECK_PRECISION

__all__ = ["AdaptationRefused", "AdaptFrame", "adapt_model", "own_candidates", "psf_explained", "frame_psf",
           "faint_star_charge", "GAP", "CANDIDATE_PROBABILITY"]

#: Pixels between the training and the held-out part of a frame.
GAP = 16
#: Base-model probability above which a pixel of the uninjected frame counts as its own cosmic-ray candidate.
CANDIDATE_PROBABILITY = 0.3
#: e-: the least noise a training label is measured against (a frame with read noise 0 and an empty sky).
MIN_NOISE = 1.0
#: Sky noise (sigma) that the 5 x 5 median must reach under a flagged group for `psf_explained` to call it a star.
SOURCE_SIGMA = 3.0


class AdaptationRefused(RuntimeError):
    """The adapted model recalled fewer held-out cosmic rays than the base model at equal flags."""


@dataclasses.dataclass
class AdaptFrame:
    """One frame for `adapt_model`: electrons, read noise (e-), and optional bad / saturated masks.

    A read noise of 0 is accepted (a frame whose noise is all photon noise, as astroscrappy and
    `~astro_deepcr.training.crlibrary.harvest_frame` accept it); the noise the labels are measured against is
    then never below `MIN_NOISE`.
    """

    name: str
    electrons: np.ndarray
    readnoise: float
    bad: np.ndarray | None = None
    saturated: np.ndarray | None = None
    header: object = None

    def __post_init__(self):
        self.electrons = np.asarray(self.electrons, dtype=np.float32)
        if self.electrons.ndim != 2:
            raise ValueError(f"{self.name}: a frame must be 2-D, not {self.electrons.ndim}-D")
        if not (np.isfinite(self.readnoise) and self.readnoise >= 0):
            raise ValueError(f"{self.name}: readnoise must be a non-negative number of electrons, "
                             f"not {self.readnoise!r}")
        shape = self.electrons.shape
        bad = np.zeros(shape, bool) if self.bad is None else np.asarray(self.bad, bool)
        self.bad = bad | ~np.isfinite(self.electrons)
        self.saturated = np.zeros(shape, bool) if self.saturated is None else np.asarray(self.saturated, bool)
        self.electrons = np.where(self.bad, 0.0, self.electrons).astype(np.float32)

    def parts(self, holdout):
        """(training slices, held-out slices) along the longer axis."""
        ny, nx = self.electrons.shape
        axis_len = max(ny, nx)
        cut = int(round(axis_len * (1.0 - holdout)))
        if cut < 64 or axis_len - cut - GAP < 64:
            raise ValueError(f"{self.name}: {nx}x{ny} px is too small to hold out {holdout:.0%} "
                             f"(each part needs >= 64 px along the longer axis)")
        if ny >= nx:
            return (slice(0, cut), slice(None)), (slice(cut + GAP, None), slice(None))
        return (slice(None), slice(0, cut)), (slice(None), slice(cut + GAP, None))


def own_candidates(frame, spec, threads=None, release_stars=False):
    """Pixels of the uninjected frame that may be its own cosmic rays, grown by 2 px.

    Every 8-connected group that the base model (probability above `CANDIDATE_PROBABILITY`) or LACosmic
    (sigclip 4, objlim 5) flags; with ``release_stars``, less the groups that the frame's own PSF explains
    (`psf_explained`), so that a star stays in the loss, a negative with injected cosmic rays on it (on a
    crowded frame the flags of the two, grown, cover much of it: ACS/HRC 35 %, a WFPC2 WF chip 77 %).
    """
    import astroscrappy
    from scipy import ndimage

    from .detection import detect

    found = detect(frame.electrons, spec=spec, threshold=CANDIDATE_PROBABILITY, mask=frame.bad, grow=1,
                   protect_saturated=False, device="cpu", threads=threads, precision=CHECK_PRECISION,
                   progress=False).cr_mask
    lacosmic, _ = astroscrappy.detect_cosmics(frame.electrons, inmask=frame.bad | frame.saturated, sigclip=4.0,
                                              objlim=5.0, gain=1.0, readnoise=frame.readnoise, satlevel=np.inf,
                                              verbose=False)
    flagged = found | lacosmic
    if release_stars:
        flagged &= ~psf_explained(frame, flagged)
    return ndimage.binary_dilation(flagged, np.ones((5, 5), bool))


def psf_explained(frame, flagged):
    """The 8-connected groups of ``flagged`` that are point sources seen through the frame's own PSF.

    The PSF is measured from the frame's stars (`~astro_deepcr.starpsf.measure_psf`); a group is
    explained when its brightest pixel lies on a source -- the 5 x 5 median of the sky-subtracted frame there
    is at least `SOURCE_SIGMA` times the noise, which a compact cosmic ray does not survive -- and
    `~astro_deepcr.training.crlibrary.not_psf_like` finds that pixel no sharper than the PSF allows and the
    group's core no thin line, against the median of a ring around the group. Where no PSF can be measured
    from at least `~astro_deepcr.starpsf.MANY_STARS` stars, nothing is explained (every group stays
    a candidate): a PSF from a few bright peaks may be a cosmic ray's.
    """
    from scipy import ndimage

    from .starpsf import MANY_STARS, measure_psf, sky_background
    from .training.crlibrary import background_ring, not_psf_like

    explained = np.zeros(flagged.shape, bool)
    try:
        psf = measure_psf(frame.electrons, frame.readnoise, bad=frame.bad | frame.saturated)
    except ValueError as exc:
        log.info(f"{frame.name}: every flagged group stays out of the loss ({exc})")
        return explained
    if psf.n_stars < MANY_STARS:
        log.info(f"{frame.name}: every flagged group stays out of the loss (its PSF rests on {psf.n_stars} stars, "
                 f"fewer than {MANY_STARS})")
        return explained
    image = frame.electrons.astype(np.float64)
    variance = np.clip(image, 0, None) + frame.readnoise**2
    sky = sky_background(image)
    on_source = (ndimage.median_filter(image - sky, size=5)
                 >= SOURCE_SIGMA * np.sqrt(np.clip(sky, 0, None) + frame.readnoise**2))
    labels, _ = ndimage.label(flagged, np.ones((3, 3), int))
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        pad = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in box)
        member = labels[pad] == index
        ring = background_ring(member, exclude=flagged[pad])
        if not ring.any():
            continue
        excess = image[pad] - float(np.median(image[pad][ring]))
        peak = np.unravel_index(np.argmax(np.where(member, excess, -np.inf)), member.shape)
        if on_source[pad][peak] and not not_psf_like(excess, variance[pad], member, psf.sharpness):
            explained[pad] |= member
    return explained


class _Samples:
    """Map-style dataset: item ``i`` is a crop of a training part with injected cosmic rays, from rng (seed, i);
    with ``faint_stars`` (per px) also faint point sources of the region's PSF (`faint_star_charge`), unlabelled: in
    the loss as negatives."""

    def __init__(self, regions, crop, seed, library, faint_stars=0.0):
        self.regions, self.crop, self.seed, self.library = regions, int(crop), int(seed), library
        self.faint_stars = float(faint_stars)
        sizes = np.array([r["image"].size for r in regions], float)
        self.weights = sizes / sizes.sum()

    def __len__(self):
        return 2**62

    def sample(self, index):
        from .training.ground import _cosmic_rays, label_cosmic_rays

        rng = np.random.default_rng((self.seed, int(index)))
        region = self.regions[int(rng.choice(len(self.regions), p=self.weights))]
        ny, nx = region["image"].shape
        y0, x0 = int(rng.integers(0, ny - self.crop + 1)), int(rng.integers(0, nx - self.crop + 1))
        box = (slice(y0, y0 + self.crop), slice(x0, x0 + self.crop))
        image, sigma = region["image"][box], region["sigma"][box]
        frozen = region["bad"][box] | region["saturated"][box]
        if self.faint_stars:  # a stream of their own: without them the samples are drawn as before
            stars_rng = np.random.default_rng((self.seed, int(index), 1))
            stars = faint_star_charge(image.shape, float(np.median(sigma)), region["psf"], self.faint_stars, stars_rng)
            image = np.where(frozen, image, image + stars + stars_rng.standard_normal(image.shape) * np.sqrt(stars))
        cr_charge, identity = _cosmic_rays(image.shape, rng, self.library)
        cr_charge = np.where(frozen, 0.0, cr_charge)
        label, ignore = label_cosmic_rays(cr_charge, identity, sigma)
        ignore |= frozen | region["candidates"][box]
        label &= ~ignore
        if rng.random() < 0.5:
            image, cr_charge, label, ignore = (a[:, ::-1] for a in (image, cr_charge, label, ignore))
        k = int(rng.integers(4))
        image, cr_charge, label, ignore = (np.rot90(a, k) for a in (image, cr_charge, label, ignore))
        return (image + cr_charge).astype(np.float32), label, ignore

    def __getitem__(self, index):
        import torch

        image, label, ignore = self.sample(index)
        return {"image": torch.from_numpy(np.ascontiguousarray(image)[None]),
                "cr": torch.from_numpy(np.ascontiguousarray(label, np.float32)[None]),
                "ignore": torch.from_numpy(np.ascontiguousarray(ignore, np.float32)[None])}


def _noise(image, readnoise, bad):
    from scipy import ndimage

    smooth = ndimage.median_filter(np.where(bad, np.median(image[~bad]), image), size=5)
    return np.maximum(np.sqrt(np.clip(smooth, 0, None) + readnoise**2), MIN_NOISE).astype(np.float32)


def _regions(frames, spec, holdout, threads, release_stars=False, faint_stars=0.0):
    """(training regions, held-out `AdaptFrame` parts); each region holds its frame's PSF (``"psf"``), measured only
    for ``faint_stars`` (else None)."""
    train, held = [], []
    for frame in frames:
        psf = frame_psf(frame) if faint_stars else None
        candidates = own_candidates(frame, spec, threads, release_stars)
        sigma = _noise(frame.electrons, frame.readnoise, frame.bad)
        train_box, held_box = frame.parts(holdout)
        train.append({"image": frame.electrons[train_box], "sigma": sigma[train_box], "bad": frame.bad[train_box],
                      "saturated": frame.saturated[train_box], "candidates": candidates[train_box], "psf": psf})
        held.append(AdaptFrame(f"{frame.name} (held out)", frame.electrons[held_box], frame.readnoise,
                               frame.bad[held_box], frame.saturated[held_box]))
    return train, held


def frame_psf(frame):
    """The PSF of ``frame`` (`AdaptFrame`) measured from its own stars, for ``faint_stars``.

    Raises
    ------
    ValueError
        Naming the frame, where fewer than 2 stars can be measured or the profile is a long-slit trace's.
    """
    from .starpsf import measure_psf

    try:
        psf = measure_psf(frame.electrons, frame.readnoise, bad=frame.bad | frame.saturated)
    except ValueError as exc:
        raise ValueError(f"{frame.name}: faint_stars needs the frame's PSF, measured from its stars: {exc}") from None
    if psf.source != "stars":
        raise ValueError(f"{frame.name}: faint_stars needs the frame's PSF from its stars, and found only a "
                         f"{psf.source}'s profile (a spectrum?)")
    return psf


def faint_star_charge(shape, noise, psf, density, rng):
    """Charge (e-) of ``Poisson(density * area)`` point sources of ``psf`` (`frame_psf`) at random places
    (uniform, sub-pixel) in ``shape``: the faint stars at the detection limit that ``adapt_model(faint_stars=...)``
    teaches as negatives, drawn by the training scenes' own `~astro_deepcr.training.ground.add_faint_stars` (a
    centred source's peak `~astro_deepcr.training.ground.FAINT_STAR_SNR` times ``noise``, log-uniform) through the
    frame's PSF instead of a simulated one."""
    from .training.ground import add_faint_stars, moffat_psf, star_stamp_size

    size = star_stamp_size(psf.fwhm)

    def star_psf(offset=(0.0, 0.0)):
        return moffat_psf(psf.fwhm, psf.beta, size, offset=offset)

    charge = np.zeros(shape)
    add_faint_stars(charge, rng, density * shape[0] * shape[1], noise, star_psf)
    return charge


def adapt_model(frames, output, *, model=None, name=None, steps=400, batch_size=8, crop=128, lr=2e-4, seed=0,
                holdout=0.3, check_library=None, threads=None, release_stars=False, faint_stars=0.0, overwrite=False,
                progress=True):
    """Fine-tune a mask model on ``frames`` (list of `AdaptFrame`) and check it; see the module docstring.

    Parameters
    ----------
    release_stars : bool
        Keep the flagged stars in the loss (`psf_explained`) instead of every flagged group out of it. Off
        by default: on the ACS/HRC frame it did not help (the adapted model was refused, 0.730 against
        0.731 at the base model's flags, where the default wrote one at 0.734); on WFPC2's WF4 chip it
        turned a refused adaptation (0.903 against 0.910) into one written at 0.933 (docs: training,
        "Crowded frames"). The held-out check guards either way.
    faint_stars : float
        Per px: faint point sources of each frame's own PSF (measured from its stars) added to the training
        samples as negatives (`faint_star_charge`), for frames where the base model masks faint stars (sharp seeing
        on a bright sky); the check then also counts the placebos each model flags on the held-out parts.
        Off (0) by default; at most `~astro_deepcr.training.ground.MAX_FAINT_STARS` (docs: training,
        "Faint stars").
    overwrite : bool
        Replace a model of the same ``name`` in ``output`` (its weights, card, ``models.json`` entry); otherwise
        such a model stops the run before training. The other models listed in ``output/models.json`` stay.

    Returns
    -------
    path : str
        The written ``.safetensors`` file.
    table : list of str
        The before/after table (markdown), also appended to ``DIR/adapt.md`` under ``## <name>``.

    Raises
    ------
    AdaptationRefused
        The adapted model is worse than the base model on the held-out parts; nothing is written.
    FileExistsError
        A model ``name`` is already in ``output`` and not ``overwrite`` (raised before training).
    ValueError
        A bad parameter, a frame too small for ``holdout``, an unknown ``check_library``, an unreadable
        ``output/models.json`` (all before training). Whatever fails, the files this run created are removed.
    """
    import torch

    from .adapt_check import calibrate, check, check_table, detector_at_flags, resolve_check_library
    from .adapt_output import candidate_path, listed_models, model_card, removed_on_failure, write_outputs
    from .detection import choose_model
    from .training.ground import MAX_FAINT_STARS
    from .training.ground_train import _training_library, fit
    from .training.trainer import trainable_copy
    from .zoo import save_network

    if not frames:
        raise ValueError("adapt needs at least one frame")
    if not (np.isfinite(faint_stars) and 0.0 <= faint_stars <= MAX_FAINT_STARS):
        raise ValueError(f"faint_stars must be between 0 and {MAX_FAINT_STARS} per px, not {faint_stars!r}")
    start = time.monotonic()
    if threads:
        torch.set_num_threads(int(threads))
    spec, reason = choose_model(frames[0].header, model=model)
    if spec.units != "electron":
        raise ValueError(f"model {spec.name} expects {spec.units}; adapt works in electrons")
    name = name or f"{spec.name}-adapted"
    if os.path.basename(name) != name or name.startswith("."):
        raise ValueError(f"name must be a plain file name (no folder, no leading '.'), not {name!r}")
    listed_models(output, name, overwrite)
    check_stamps = resolve_check_library(check_library)
    train, held = _regions(frames, spec, holdout, threads, release_stars, faint_stars)
    for region in train:
        if min(region["image"].shape) < crop:
            raise ValueError(f"crop {crop} px is larger than a training part {region['image'].shape}")
    kept_out = float(sum(r["candidates"].sum() for r in train) / sum(r["candidates"].size for r in train))
    log.info(f"{kept_out:.1%} of the training parts kept out of the loss as the frames' own cosmic-ray candidates"
             + ("" if release_stars else " (a crowded frame: see release_stars)" if kept_out > 0.2 else ""))
    checkpoint = os.path.join(output, "checkpoint.safetensors")
    tmp = candidate_path(output, name)
    with removed_on_failure(output, name):
        os.makedirs(output, exist_ok=True)
        torch.manual_seed(seed)
        net = trainable_copy(spec)
        settings = {"base": spec.name, "sha256": spec.sha256, "steps": steps, "batch_size": batch_size, "crop": crop,
                    "lr": lr, "seed": seed, "holdout": holdout, "release_stars": bool(release_stars),
                    "faint_stars": float(faint_stars), "frames": [f.name for f in frames]}
        fit(net, _Samples(train, crop, seed, _training_library(), faint_stars), output, steps=steps,
            batch_size=batch_size, lr=lr, bn_until=0, settings=settings, progress=progress)
        trained = time.monotonic() - start
        sha256 = save_network(net, tmp, {"name": name, "arch": f"{spec.depth}-{spec.width}", "base": spec.name})
        # the card says float32 (a bfloat16 validation of the base is not one of these weights); the calibration
        # and the check run both models at CHECK_PRECISION, so that the verdict does not depend on the CPU
        adapted = dataclasses.replace(spec, name=name, file=tmp, sha256=sha256, auto_precision="float32",
                                      bf16_validation={})
        calibration = calibrate(spec, adapted, train, threads)
        adapted = dataclasses.replace(adapted, threshold=calibration["threshold"])
        rows = check(held, {"base": spec, "adapted": adapted}, check_stamps, seed + 1, threads,
                     at_base_flags=detector_at_flags(adapted, threads), psfs=[region["psf"] for region in train])
        table, verdict = check_table(rows, spec.name)
        table.append(calibration["sentence"])
        if not verdict["better"]:
            os.remove(checkpoint)  # the run is over: nothing to resume
            raise AdaptationRefused(f"the adapted model recalls {verdict['adapted']:.3f} of the held-out cosmic rays "
                                    f"at the base model's flags, the base model {verdict['base']:.3f}: not written\n"
                                    + "\n".join(table))
        metrics = {"check": "injection-recovery on the held-out parts, recall by new flags", **verdict,
                   "threshold": {k: v for k, v in calibration.items() if k != "sentence"},
                   "kept_out_of_loss": round(kept_out, 4), "table": table,
                   "seconds": round(time.monotonic() - start, 1), "training_seconds": round(trained, 1)}
        write_outputs(output, name, tmp, model_card(spec, adapted, settings, metrics), table, overwrite)
        os.remove(checkpoint)
    return os.path.join(output, f"{name}.safetensors"), table

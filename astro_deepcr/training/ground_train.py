# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Training the mask model for seeing-limited frames on `astro_deepcr.training.ground` simulations.

Every training sample is a fresh simulated frame: sample ``i`` of a run is drawn from
``numpy.random.default_rng((seed, i))``, so a run is a function of its seed and its settings only (the
same on any number of data-loader workers) and never sees the same frame twice. The validation frames
use indices from ``VALIDATION_OFFSET`` on and are never trained on.

Recipe: binary cross-entropy over the pixels that are not ignored (`ground_frame`'s labels), Adam with a
cosine decay of the learning rate to a tenth; fine-tuning (``init_from``) keeps BatchNorm in eval mode
(its running statistics frozen) throughout, training from scratch lets BatchNorm learn for the first
``bn_fraction`` of the steps. A checkpoint (safetensors, never pickle) is written every
``checkpoint_every`` steps; an interrupted run resumes from it.

The threshold is 0.5, the decision point of a probability trained with cross-entropy; `negatives_report`
measures what it gives on the validation frames: the model's and LACosmic's (defaults) flags on their
*cosmic-ray-free* versions (the same noise, stars, hot pixels and saturation) and the pixel recall.
"""

import dataclasses
import json
import math
import os
import time

import numpy as np

__all__ = ["GroundConfig", "GroundFrames", "fit", "train_ground", "validation_frames", "model_probability",
           "negatives_report", "VALIDATION_OFFSET"]

#: Sample indices from here on are validation frames, never trained on.
VALIDATION_OFFSET = 10**9


@dataclasses.dataclass
class GroundConfig:
    """Settings of a ground-model run (defaults: the shipped ``ground`` model)."""

    init_from: str | None = "ACS-WFC"
    depth: int | None = None  # None: the init model's (2 from scratch); deeper than it: `~astro_deepcr.nets.deepen`
    width: int | None = None  # None: the init model's (32 from scratch); fine-tuning cannot change it
    steps: int = 3000
    batch_size: int = 8
    crop: int = 128
    lr: float | None = None  # 2e-4 fine-tuning, 5e-3 from scratch
    bn_fraction: float = 0.7  # from scratch only
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    workers: int = 0
    checkpoint_every: int = 250
    max_seconds: float | None = None  # stop (and export) after this much training time
    stop_at: int | None = None  # stop (and export) after this many steps of the ``steps``-long schedule
    name: str = "ground"
    # the scene mix (`astro_deepcr.training.ground.SceneMix`; the defaults: the shipped model's frames)
    long_slit: float = 0.0
    spikes: float = 0.0
    fwhm_min: float | None = None
    fwhm_max: float | None = None
    on_sources: float = 0.0
    hst_psf: float = 0.0
    faint_stars: float = 0.0
    # cosmic rays: real ones harvested from the ACS/HRC frame (False: physical tracks and faint hits only, so
    # that the HRC frame's own cosmic rays stay a held-out library)
    hrc_library: bool = True

    def __post_init__(self):
        if self.lr is None:
            self.lr = 2e-4 if self.init_from else 5e-3
        for field in ("steps", "batch_size", "crop", "depth", "width", "checkpoint_every"):
            if getattr(self, field) is not None and int(getattr(self, field)) < 1:
                raise ValueError(f"{field} must be >= 1, not {getattr(self, field)!r}")
        if self.stop_at is not None and not 1 <= int(self.stop_at) <= int(self.steps):
            raise ValueError(f"stop_at must be between 1 and steps ({self.steps}), not {self.stop_at!r}")
        self.mix()  # checks the fractions and the FWHM limits

    def mix(self):
        """The `~astro_deepcr.training.ground.SceneMix` of the run."""
        from .ground import SceneMix

        return SceneMix(long_slit=self.long_slit, spikes=self.spikes, fwhm_min=self.fwhm_min, fwhm_max=self.fwhm_max,
                        on_sources=self.on_sources, hst_psf=self.hst_psf, faint_stars=self.faint_stars)

    def library(self):
        """The real cosmic rays of the run (`ground_frame`'s ``library``): the HRC harvest, or None."""
        return _real_cosmic_rays(self.hrc_library)

    def library_names(self):
        """The cosmic-ray sources of the run, as a card's ``training_libraries`` names them."""
        return (["hrc"] if self.hrc_library else []) + ["tracks", "faint"]


class GroundFrames:
    """Map-style dataset: item ``i`` is the simulated frame of ``default_rng((seed, i))`` (``mix``: a
    `~astro_deepcr.training.ground.SceneMix`, default the shipped recipe's)."""

    def __init__(self, crop, seed, library, mix=None):
        self.crop, self.seed, self.library, self.mix = int(crop), int(seed), library, mix

    def __len__(self):
        return 2**62

    def frame(self, index):
        from .ground import ground_frame

        return ground_frame((self.crop, self.crop), np.random.default_rng((self.seed, int(index))), self.library,
                            self.mix)

    def __getitem__(self, index):
        import torch

        frame = self.frame(index)
        return {"image": torch.from_numpy(frame["image"][None]),
                "cr": torch.from_numpy(frame["label"][None].astype(np.float32)),
                "ignore": torch.from_numpy(frame["ignore"][None].astype(np.float32))}


def _training_library():
    from .crlibrary import harvest_cosmic_rays

    return [np.asarray(stamp, np.float32) for stamp in harvest_cosmic_rays(method="psf")]


def _real_cosmic_rays(hrc_library):
    """`ground_frame`'s ``library`` for a run with or without the HRC harvest (None: tracks and faint hits only)."""
    return _training_library() if hrc_library else None


def _network(config):
    """The network a run starts from, and the zoo model it was copied from (None from scratch). Fills in
    ``config.depth`` and ``config.width`` where they were left None."""
    from ..nets import UNet, deepen
    from ..zoo import get_model
    from .trainer import trainable_copy

    if not config.init_from:
        config.depth, config.width = config.depth or 2, config.width or 32
        return UNet(in_channels=1, depth=config.depth, width=config.width, norm="batch", sigmoid=True), None
    spec = get_model(config.init_from, kind="mask")
    if config.width not in (None, spec.width):
        raise ValueError(f"width {config.width} differs from {spec.name}'s {spec.width}: fine-tuning keeps the "
                         "width (train from scratch with init_from=None to change it)")
    if config.depth is not None and config.depth < spec.depth:
        raise ValueError(f"depth {config.depth} is below {spec.name}'s {spec.depth}: fine-tuning can only deepen")
    net = trainable_copy(spec)
    if config.depth is not None and config.depth > spec.depth:
        net = deepen(net, config.depth)
    config.depth, config.width = net.depth, net.width
    return net, spec


def fit(net, samples, output, *, steps, batch_size, lr, bn_until=0, device="cpu", workers=0, checkpoint_every=250,
        max_seconds=None, stop_at=None, settings=None, progress=True):
    """Train ``net`` (a mask UNet) on ``samples`` (a map-style dataset of ``image``/``cr``/``ignore``) in place.

    Batch ``k`` holds items ``k * batch_size`` to ``(k + 1) * batch_size - 1``; BatchNorm learns for the first
    ``bn_until`` steps and is frozen after; Adam with a cosine decay of the learning rate to a tenth. A
    checkpoint ``output/checkpoint.safetensors`` (``settings`` must match to resume from it) is written every
    ``checkpoint_every`` steps. ``stop_at``: stop after that many steps of the same ``steps``-long schedule (the
    reproducible form of a run that ``max_seconds`` stopped). Returns the history (one row per checkpoint) and
    the number of steps done.
    """
    import torch

    from .trainer import load_state, mask_loss, save_state, set_batchnorm_frozen

    device = torch.device(device)
    net = net.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    step, history = 0, []
    checkpoint = os.path.join(output, "checkpoint.safetensors")
    if os.path.exists(checkpoint):
        state = load_state(checkpoint, device=device)
        if state["settings"] != settings:
            raise ValueError(f"{checkpoint} was written with other settings; remove it or use another folder")
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, history = state["step"], state["history"]
    last = steps if stop_at is None else int(stop_at)
    sampler = torch.utils.data.BatchSampler(range(step * batch_size, last * batch_size), batch_size, drop_last=False)
    loader = torch.utils.data.DataLoader(samples, batch_sampler=sampler, num_workers=workers)
    start, total, count = time.monotonic(), 0.0, 0

    def save():
        state = {"net": net.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                 "step": step, "history": history, "settings": settings}
        save_state(state, checkpoint + ".tmp")
        os.replace(checkpoint + ".tmp", checkpoint)

    for batch in loader:
        set_batchnorm_frozen(net, step >= bn_until)
        image = batch["image"].to(device).contiguous(memory_format=torch.channels_last)
        loss = mask_loss(net(image), batch["cr"].to(device), batch["ignore"].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        total, count = total + float(loss.detach()), count + 1
        if step % checkpoint_every == 0 or step == last:
            history.append({"step": step, "loss": total / count, "lr": optimizer.param_groups[0]["lr"],
                            "seconds": time.monotonic() - start})
            if progress:
                print(f"step {step}/{steps}: loss {total / count:.5g} ({time.monotonic() - start:.0f} s)", flush=True)
            total, count = 0.0, 0
            save()
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            save()  # a run stopped by time resumes from here
            if progress:
                print(f"stopped at step {step}: max_seconds {max_seconds} reached", flush=True)
            break
    net.cpu().eval()
    return history, step


def _result_settings(config):
    """The settings a result depends on (a checkpoint resumes only under the same ones)."""
    settings = dataclasses.asdict(config)
    for name in ("threads", "workers", "max_seconds", "stop_at", "checkpoint_every"):
        settings.pop(name)
    return settings


def train_ground(output, config=None, progress=True):
    """Train (or fine-tune) a mask network on simulated ground frames; return ``output/<name>.safetensors``.

    ``astro-deepcr train-ground`` runs it and writes the model card
    (`astro_deepcr.training.ground_cli.write_card`).
    """
    import torch

    from ..zoo import save_network

    config = config or GroundConfig()
    os.makedirs(output, exist_ok=True)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    torch.manual_seed(config.seed)
    net, init_spec = _network(config)
    frames = GroundFrames(config.crop, config.seed, config.library(), config.mix())
    bn_until = 0 if init_spec is not None else int(config.bn_fraction * config.steps)
    history, steps_done = fit(net, frames, output, steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                              bn_until=bn_until, device=config.device, workers=config.workers,
                              checkpoint_every=config.checkpoint_every, max_seconds=config.max_seconds,
                              stop_at=config.stop_at,
                              settings=_result_settings(config), progress=progress)
    path = os.path.join(output, f"{config.name}.safetensors")
    save_network(net, path, {"name": config.name, "arch": f"{config.depth}-{config.width}",
                             "config": json.dumps(dataclasses.asdict(config))})
    with open(os.path.join(output, "log.json"), "w") as stream:
        json.dump({"config": dataclasses.asdict(config), "history": history, "steps_done": steps_done,
                   "init_from": None if init_spec is None else init_spec.name,
                   "init_depth": None if init_spec is None else init_spec.depth}, stream, indent=1)
    return path


def validation_frames(n, crop=256, seed=0, mix=None, hrc_library=True):
    """The ``n`` validation frames of a run seed, scene mix and cosmic-ray sources (indices from
    `VALIDATION_OFFSET`)."""
    frames = GroundFrames(crop, seed, _real_cosmic_rays(hrc_library), mix)
    return [frames.frame(VALIDATION_OFFSET + k) for k in range(n)]


def model_probability(spec, threads=None):
    """``image (e-) -> CR probability`` of a mask model on CPU, no pixel masked: `negatives_report`'s first argument."""
    from ..detection import network_probability

    def probability_of(image):
        return network_probability(np.asarray(image, np.float32), np.zeros(image.shape, bool), spec, device="cpu",
                                   threads=threads)

    return probability_of


def negatives_report(probability_of, frames, threshold):
    """Flags of a model and of LACosmic on cosmic-ray-free frames (false positives), and recall on the frames.

    Parameters
    ----------
    probability_of : callable
        ``image (e-) -> CR probability``.
    frames : list of dict
        `ground_frame` results (never trained on: see `validation_frames`); their ``clean`` images (the same
        noise, stars, hot pixels and saturation, no cosmic ray) are the negatives.
    threshold : float

    Returns
    -------
    dict
        ``frames``, ``pixels`` (not ignored), ``model_false_flags`` and ``lacosmic_false_flags`` (LACosmic at
        its defaults, sigclip 4.5, objlim 5) on the clean images, and the pixel ``tpr`` / ``fpr`` of the model
        on the frames with cosmic rays (labelled pixels only).
    """
    import astroscrappy

    model_flags = lacosmic_flags = pixels = positives = found = negatives = false = 0
    for frame in frames:
        usable = ~frame["ignore"]
        lacosmic, _ = astroscrappy.detect_cosmics(frame["clean"], sigclip=4.5, objlim=5.0, gain=1.0,
                                                  readnoise=frame["params"]["read_noise"],
                                                  satlevel=frame["params"]["full_well"], verbose=False)
        lacosmic_flags += int((lacosmic & usable).sum())
        model_flags += int(((np.asarray(probability_of(frame["clean"])) > threshold) & usable).sum())
        flagged = np.asarray(probability_of(frame["image"])) > threshold
        label = frame["label"]
        positives, found = positives + int(label.sum()), found + int((flagged & label).sum())
        negatives, false = negatives + int((usable & ~label).sum()), false + int((flagged & usable & ~label).sum())
        pixels += int(usable.sum())
    return {"frames": len(frames), "pixels": pixels, "threshold": threshold, "model_false_flags": model_flags,
            "lacosmic_false_flags": lacosmic_flags, "tpr": round(found / max(positives, 1), 4),
            "fpr": float(f"{false / max(negatives, 1):.3g}")}

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The deepCR training recipe (Zhang & Bloom 2020, Sect. 4) for mask and inpaint networks.

- mask: binary cross-entropy of the CR probability, over good pixels;
- inpaint: mean squared error over an inpainting mask made of 1-9 CR masks
  borrowed from other stamps, excluding the stamp's own CR and bad pixels
  (see `astro_deepcr.training.dataset.StampDataset`);
- sky augmentation: ``u * sky`` added with ``u`` uniform in ``[-0.9, 3]``;
- BatchNorm momentum 0.005 (`astro_deepcr.nets.BN_MOMENTUM`), BN layers in
  train mode for the first 20 epochs (40 for inpaint), frozen (eval) after;
  optionally (``bn_recalibrate``, not in the paper) the running statistics
  are recomputed as exact averages over training batches at the freeze, so
  that a short BN phase does not freeze the lagging momentum-0.005 averages;
- Adam, lr 0.005 (mask) / 0.01 (inpaint); ReduceLROnPlateau x0.1 when the
  validation loss has not improved by 0.1 % (relative) for 4 epochs; the
  run stops at the second decay (or at ``epochs``).

A guard that is not in the paper: when the network's output on the whole
validation split becomes constant (every channel of a layer dead, which a
narrow net such as 2-4 can suffer after the BatchNorm freeze), the run stops
with an `~astropy.utils.exceptions.AstropyUserWarning` and such epochs are
never exported; if no epoch was alive, `Trainer.train` raises
`TrainingCollapsedError`.

Everything is a field of `TrainConfig`. Runs are seeded: network
initialisation, batch order and augmentation are functions of the seed and
the epoch only, so an interrupted run resumed from ``checkpoint.safetensors`` ends
with exactly the weights of an uninterrupted one (same device and threads).
"""

import copy
import csv
import dataclasses
import json
import os
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from astropy.utils.exceptions import AstropyUserWarning

from ..nets import UNet
from ..zoo import get_model, load_network, save_network
from .dataset import StampDataset

__all__ = ["TrainConfig", "Trainer", "TrainingCollapsedError", "mask_loss", "inpaint_loss", "set_batchnorm_frozen",
           "trainable_copy"]


@dataclasses.dataclass
class TrainConfig:
    """Parameters of a training run (defaults: the deepCR recipe)."""

    kind: str = "mask"
    depth: int = 2
    width: int = 32
    norm: str = "batch"
    scale: float = 1.0
    epochs: int = 100
    batch_size: int = 16
    lr: float | None = None  # 0.005 mask, 0.01 inpaint
    bn_train_epochs: int | None = None  # 20 mask, 40 inpaint
    bn_recalibrate: int = 0  # >0: recompute BN running statistics over this many batches at the freeze
    plateau_patience: int = 4
    plateau_threshold: float = 0.001
    lr_factor: float = 0.1
    max_decays: int = 2
    aug_sky: tuple | None = (-0.9, 3.0)
    n_masks: tuple = (1, 9)
    steps_per_epoch: int | None = None  # None: one pass over the training split
    max_minutes: float | None = None
    seed: int = 0
    device: str = "cpu"
    amp: bool | None = None  # None: mixed precision on CUDA only
    num_workers: int = 0
    init_from: str | None = None
    name: str = "my-model"
    threshold: float = 0.5
    instrument: str = ""
    detector: str = ""
    description: str = ""
    progress: bool | None = None

    def __post_init__(self):
        if self.kind not in ("mask", "inpaint"):
            raise ValueError(f"kind must be 'mask' or 'inpaint', not {self.kind!r}")
        if self.lr is None:
            self.lr = 0.005 if self.kind == "mask" else 0.01
        if self.bn_train_epochs is None:
            self.bn_train_epochs = 20 if self.kind == "mask" else 40
        self.aug_sky = None if self.aug_sky is None else tuple(self.aug_sky)
        self.n_masks = tuple(self.n_masks)


class TrainingCollapsedError(RuntimeError):
    """The network's output became constant in every epoch: there are no usable weights to export."""


def mask_loss(probability, cr, bad):
    """Binary cross-entropy over good pixels (float32, outside autocast)."""
    weight = 1.0 - bad
    loss = F.binary_cross_entropy(probability.float().clamp(1e-7, 1 - 1e-7), cr, weight=weight, reduction="sum")
    return loss / weight.sum().clamp(min=1.0)


def inpaint_loss(output, target, loss_mask):
    """Mean squared error over ``loss_mask`` pixels only."""
    return ((output.float() - target) ** 2 * loss_mask).sum() / loss_mask.sum().clamp(min=1.0)


def set_batchnorm_frozen(net, frozen):
    """Train mode for the whole net, then BatchNorm layers to eval when ``frozen``."""
    net.train()
    if frozen:
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def trainable_copy(spec):
    """A private, trainable copy of a zoo model's network (the cached inference network stays untouched)."""
    net = copy.deepcopy(load_network(spec))
    for parameter in net.parameters():
        parameter.requires_grad_(True)
    return net


def _batches(n_items, batch_size, steps, rng):
    """Index batches for one epoch: shuffled passes over the items, ``steps`` batches (or one pass)."""
    if steps is None:
        order = rng.permutation(n_items)
        return [order[i:i + batch_size].tolist() for i in range(0, n_items, batch_size)]
    need = steps * batch_size
    order = np.concatenate([rng.permutation(n_items) for _ in range(-(-need // n_items))])[:need]
    return [order[i:i + batch_size].tolist() for i in range(0, need, batch_size)]


class Trainer:
    """Train a deepCR network on a dataset folder written by `~astro_deepcr.training.dataset.DatasetWriter`.

    Parameters
    ----------
    dataset : str
        Dataset folder (``manifest.json``).
    output : str
        Run folder: ``checkpoint.safetensors``, ``log.csv``, ``log.json``,
        ``loss.png``, ``<name>.safetensors``, ``<name>.json`` (model card)
        and ``models.json``.
    config : `TrainConfig`
    resume : bool
        Continue from ``output/checkpoint.safetensors`` when it exists.

    Examples
    --------
    >>> trainer = Trainer("data", "run", TrainConfig(depth=2, width=4))  # doctest: +SKIP
    >>> path = trainer.train()  # doctest: +SKIP
    >>> DeepCR(mask=path)  # doctest: +SKIP
    """

    def __init__(self, dataset, output, config=None, resume=True):
        self.config = config = config or TrainConfig()
        self.output, self.dataset = str(output), str(dataset)
        os.makedirs(self.output, exist_ok=True)
        self.device = torch.device(config.device)
        self.amp = (self.device.type == "cuda") if config.amp is None else bool(config.amp)
        torch.manual_seed(config.seed)
        self.init_spec = None
        if config.init_from:
            self.init_spec = get_model(config.init_from, kind=config.kind)
            net = trainable_copy(self.init_spec)
            config.depth, config.width, config.norm = self.init_spec.depth, self.init_spec.width, self.init_spec.norm
            config.scale = self.init_spec.scale
            config.instrument = config.instrument or self.init_spec.instrument
            config.detector = config.detector or self.init_spec.detector
        else:
            net = UNet(in_channels=1 if config.kind == "mask" else 2, depth=config.depth, width=config.width,
                       norm=config.norm, sigmoid=config.kind == "mask")
        # channels-last: 1.7-1.9x faster training steps on the CPU for these narrow convolutions
        # (benchmarks/bench_train_step.py); not measured on CUDA
        self.net = net.to(self.device, memory_format=torch.channels_last)
        self.train_set = StampDataset(dataset, "train", config.kind, config.aug_sky, config.n_masks, config.scale,
                                      config.seed)
        self.val_set = StampDataset(dataset, "validation", config.kind, None, config.n_masks, config.scale,
                                    config.seed + 1)
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            raise ValueError(f"{dataset}: the train and validation splits must both hold stamps")
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=config.lr_factor, patience=config.plateau_patience,
            threshold=config.plateau_threshold, threshold_mode="rel")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.epoch, self.decays, self.history = 0, 0, []
        self.output_constant = False  # set by validate()
        self.best_loss, self.best_state = float("inf"), None
        self.checkpoint_path = os.path.join(self.output, "checkpoint.safetensors")
        if resume and os.path.exists(self.checkpoint_path):
            self._load_checkpoint()

    # -- one step -------------------------------------------------------------------------------------------------

    def _forward(self, batch):
        image = batch["image"].to(self.device)
        if self.config.kind == "inpaint":
            hidden = torch.clamp(batch["inpaint_mask"] + batch["cr"] + batch["bad"], max=1.0).to(self.device)
            image = torch.cat([image * (1 - hidden), hidden], dim=1)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            return self.net(image.contiguous(memory_format=torch.channels_last))

    def _loss(self, batch, output=None):
        if output is None:
            output = self._forward(batch)
        image = batch["image"].to(self.device)
        cr, bad = batch["cr"].to(self.device), batch["bad"].to(self.device)
        if self.config.kind == "mask":
            return mask_loss(output, cr, bad)
        return inpaint_loss(output, image, batch["inpaint_mask"].to(self.device))

    def _loader(self, dataset, batches):
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=self.config.num_workers)

    @torch.no_grad()
    def recalibrate_batchnorm(self, n_batches):
        """Replace the BN running statistics by exact averages over ``n_batches`` training batches.

        The batches are drawn with a generator seeded by the run seed and
        the epoch, so a resumed run recalibrates identically.
        """
        layers = [m for m in self.net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not layers:
            return
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average
        self.net.train()
        batches = _batches(len(self.train_set), self.config.batch_size, n_batches,
                           np.random.default_rng((self.config.seed, self.epoch, 1)))
        for batch in self._loader(self.train_set, batches):
            self._forward(batch)
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum

    def _train_epoch(self, deadline):
        config = self.config
        self.train_set.set_epoch(self.epoch)
        if config.bn_recalibrate and self.epoch == config.bn_train_epochs:
            self.recalibrate_batchnorm(config.bn_recalibrate)
        set_batchnorm_frozen(self.net, self.epoch >= config.bn_train_epochs)
        batches = _batches(len(self.train_set), config.batch_size, config.steps_per_epoch,
                           np.random.default_rng((config.seed, self.epoch)))
        from tqdm.auto import tqdm

        bar = tqdm(self._loader(self.train_set, batches), total=len(batches), desc=f"epoch {self.epoch + 1}",
                   leave=False, disable=config.progress is False, delay=0 if config.progress else 2.0)
        total, count = 0.0, 0
        for batch in bar:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(batch)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total, count = total + float(loss.detach()), count + 1
            bar.set_postfix(loss=f"{total / count:.4g}")
            if deadline is not None and time.monotonic() > deadline:
                break
        bar.close()
        return total / max(count, 1)

    @torch.no_grad()
    def validate(self):
        """Mean validation loss (BatchNorm in eval mode, no augmentation).

        Also sets ``output_constant``: whether the network gave one and the
        same value at every pixel of the validation split (a dead network).
        """
        self.net.eval()
        batches = _batches(len(self.val_set), self.config.batch_size, None, np.random.default_rng(0))
        total, weight = 0.0, 0
        low, high = float("inf"), float("-inf")
        for batch in self._loader(self.val_set, sorted(batches)):
            output = self._forward(batch)
            low, high = min(low, float(output.min())), max(high, float(output.max()))
            size = batch["image"].shape[0]
            total, weight = total + float(self._loss(batch, output)) * size, weight + size
        self.output_constant = high - low <= 1e-6 * max(1.0, abs(high))
        return total / max(weight, 1)

    def step_schedule(self, val_loss):
        """Feed one validation loss to the plateau schedule; True when the run must stop."""
        before = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(val_loss)
        if self.optimizer.param_groups[0]["lr"] < before:
            self.decays += 1
        return self.decays >= self.config.max_decays

    # -- the loop -------------------------------------------------------------------------------------------------

    def train(self, stop_at_epoch=None):
        """Run the recipe; return the path of the written ``.safetensors`` model.

        ``stop_at_epoch`` ends the run early after that many epochs in
        total, leaving the checkpoint to resume from (for tests and for
        splitting a long run).
        """
        config = self.config
        deadline = None if config.max_minutes is None else time.monotonic() + 60 * config.max_minutes
        start = time.monotonic()
        stop = self.decays >= config.max_decays or self._collapsed()
        last = config.epochs if stop_at_epoch is None else min(config.epochs, stop_at_epoch)
        while not stop and self.epoch < last:
            train_loss = self._train_epoch(deadline)
            val_loss = self.validate()
            collapsed = self.output_constant
            if val_loss < self.best_loss and not collapsed:
                self.best_loss = val_loss
                self.best_state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
            lr = self.optimizer.param_groups[0]["lr"]
            stop = self.step_schedule(val_loss) or collapsed
            self.epoch += 1
            self.history.append({"epoch": self.epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                                 "bn_frozen": self.epoch > config.bn_train_epochs, "decays": self.decays,
                                 "collapsed": collapsed, "seconds": time.monotonic() - start})
            if config.progress is not False:
                print(f"epoch {self.epoch}: train {train_loss:.5g}  validation {val_loss:.5g}  lr {lr:.3g}")
            self._save_checkpoint()
            if collapsed:
                warnings.warn(f"training stopped at epoch {self.epoch}: the network's output is constant over the "
                              "whole validation split (dead ReLU channels; narrow nets can die after the BatchNorm "
                              "freeze). Only earlier epochs are exported; a lower lr or a different seed may help.",
                              AstropyUserWarning)
            if deadline is not None and time.monotonic() > deadline:
                break
        self.write_log()
        return self.export()

    def _collapsed(self):
        return bool(self.history) and bool(self.history[-1].get("collapsed", False))

    # -- files ----------------------------------------------------------------------------------------------------

    def _save_checkpoint(self):
        state = {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "epoch": self.epoch, "decays": self.decays, "history": self.history,
                 "best_loss": self.best_loss, "best_state": self.best_state,
                 "config": dataclasses.asdict(self.config)}
        tmp = self.checkpoint_path + ".tmp"
        save_state(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def _load_checkpoint(self):
        state = load_state(self.checkpoint_path, device=self.device)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.decays, self.history = state["epoch"], state["decays"], state["history"]
        self.best_loss, self.best_state = state["best_loss"], state["best_state"]

    def write_log(self):
        """``log.csv``, ``log.json`` and ``loss.png`` of the epochs so far."""
        if not self.history:
            return
        with open(os.path.join(self.output, "log.csv"), "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)
        with open(os.path.join(self.output, "log.json"), "w") as stream:
            json.dump({"config": dataclasses.asdict(self.config), "epochs": self.history}, stream, indent=1)
        plot_losses(self.history, os.path.join(self.output, "loss.png"), self.config.bn_train_epochs)

    def export(self):
        """Write the best-validation weights as ``<name>.safetensors`` + card; return the path."""
        config = self.config
        if self.best_state is None and self._collapsed():
            raise TrainingCollapsedError(f"{self.output}: the network's output was constant in every epoch; "
                                         "nothing to export (try a lower lr or another seed)")
        net = copy.deepcopy(self.net).cpu().eval()
        if self.best_state is not None:
            net.load_state_dict(self.best_state)
        path = os.path.join(self.output, f"{config.name}.safetensors")
        sha256 = save_network(net, path, {"name": config.name, "arch": f"{config.depth}-{config.width}"})
        source = f"fine-tuned from {self.init_spec.name}" if self.init_spec else "trained from scratch"
        card = {"name": config.name, "kind": config.kind, "depth": config.depth, "width": config.width,
                "file": os.path.basename(path), "sha256": sha256, "norm": config.norm, "normalisation": "scale",
                "scale": config.scale, "threshold": config.threshold if config.kind == "mask" else None,
                "units": "electron", "instrument": config.instrument, "detector": config.detector,
                "description": config.description or f"deepCR-{config.kind} {config.depth}-{config.width}, {source}",
                "training_data": f"{os.path.abspath(self.dataset)}, fields {', '.join(self.train_set.fields)}",
                "provenance": f"astro_deepcr.training.Trainer, {source}, {self.epoch} epochs",
                "citation": "Zhang, K. & Bloom, J. S. 2020, ApJ, 889, 24 (deepCR)",
                "metrics": {"best_validation_loss": self.best_loss, "epochs": self.epoch}}
        with open(os.path.join(self.output, f"{config.name}.json"), "w") as stream:
            json.dump(card, stream, indent=1)
        with open(os.path.join(self.output, "models.json"), "w") as stream:
            json.dump({"format": 1, "models": [card]}, stream, indent=1)
        return path


def plot_losses(history, path, bn_train_epochs=None):
    """Training and validation loss per epoch, log scale, with the BN-freeze epoch marked."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    epochs = [row["epoch"] for row in history]
    axes.plot(epochs, [row["train_loss"] for row in history], label="train")
    axes.plot(epochs, [row["val_loss"] for row in history], label="validation")
    if bn_train_epochs and bn_train_epochs < epochs[-1]:
        axes.axvline(bn_train_epochs + 0.5, color="grey", ls=":", label="BN frozen")
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


# -- checkpoints: safetensors for the tensors, JSON for the rest (never pickle) ---------------------------------------

def _encode(value, tensors):
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"__list__" if isinstance(value, list) else "__tuple__": [_encode(v, tensors) for v in value]}
    return value


def _decode(value, tensors, device):
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]].to(device)
        if "__dict__" in value:
            return {_decode(k, tensors, device): _decode(v, tensors, device) for k, v in value["__dict__"]}
        if "__list__" in value:
            return [_decode(v, tensors, device) for v in value["__list__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors, device) for v in value["__tuple__"])
    return value


def save_state(state, path):
    """Write a nested training state (tensors, numbers, strings, lists, dicts) to one safetensors file."""
    from safetensors.torch import save_file

    tensors = {}
    skeleton = _encode(state, tensors)
    save_file(tensors, str(path), metadata={"astro_deepcr_state": json.dumps(skeleton)})


def load_state(path, device="cpu"):
    """Read a state written by `save_state`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as stream:
        skeleton = json.loads(stream.metadata()["astro_deepcr_state"])
        tensors = {key: stream.get_tensor(key) for key in stream.keys()}
    return _decode(skeleton, tensors, device)

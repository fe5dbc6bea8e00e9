# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Dataset format, stack ground truth, the training recipe and its CLI (tiny models, a few steps)."""

import argparse
import json
import os

import numpy as np
import pytest
import torch

from astro_deepcr import DeepCR
from astro_deepcr.evaluation.metrics import mask_scores
from astro_deepcr.training import cli
from astro_deepcr.training.dataset import DatasetWriter, StampDataset, load_split, split_fields, stamp_corners
from astro_deepcr.training.simulate import simulate_stack
from astro_deepcr.training.stacks import stack_cr_masks
from astro_deepcr.training.trainer import (
    TrainConfig,
    Trainer,
    TrainingCollapsedError,
    inpaint_loss,
    mask_loss,
    set_batchnorm_frozen,
)
from astro_deepcr.zoo import register_models_from

STAMP = 32


def _json(path):
    with open(path) as stream:
        return json.load(stream)


def _write(root, fields=("a", "b", "c", "d"), splits=("train", "train", "validation", "test"), seed=0):
    with DatasetWriter(root, stamp_size=STAMP, border=8, label_source="test") as writer:
        for k, (field, split) in enumerate(zip(fields, splits, strict=True)):
            stack = simulate_stack(3, (80, 80), seed=seed + k)
            masks, _ = stack_cr_masks([e["image"] for e in stack], 4.0)
            bad = np.zeros((80, 80), bool)
            bad[10, :] = True
            writer.add_field(field, split, [dict(e, cr_mask=m, bad=bad) for e, m in zip(stack, masks, strict=True)])
    return str(root)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("dataset"))


def _config(**kw):
    base = {"depth": 2, "width": 2, "epochs": 3, "batch_size": 4, "progress": False, "seed": 1, "name": "tiny",
            "bn_train_epochs": 1}
    base.update(kw)
    return TrainConfig(**base)


# -- dataset -------------------------------------------------------------------------------------------------------


def test_stamp_corners_skip_border():
    corners = stamp_corners((1024, 1024), 256, 128)
    assert corners[0] == (128, 128) and len(corners) == 9
    assert all(128 <= y <= 1024 - 128 - 256 for y, _ in corners)


def test_split_by_field_not_by_stamp():
    splits = split_fields([f"f{k}" for k in range(10)], (0.8, 0.1, 0.1), seed=3)
    assert sorted(splits.values()).count("train") == 8
    assert set(splits.values()) == {"train", "validation", "test"}
    assert split_fields([f"f{k}" for k in range(10)], seed=3) == split_fields([f"f{k}" for k in range(10)], seed=3)


def test_dataset_format(dataset):
    manifest = _json(os.path.join(dataset, "manifest.json"))
    assert manifest["format"] == 1 and manifest["stamp_size"] == STAMP and manifest["units"] == "electron"
    fields = [s["field"] for shards in manifest["splits"].values() for s in shards]
    assert sorted(fields) == ["a", "b", "c", "d"]  # each field in exactly one split
    train = load_split(dataset, "train")
    image, cr, bad, sky = (train[k][0] for k in ("image", "cr", "bad", "sky"))
    assert isinstance(image, np.memmap)
    # 80 px with an 8 px border: 2x2 stamps per exposure, 3 exposures
    assert image.shape == (12, STAMP, STAMP) and image.dtype == np.float32
    assert cr.dtype == np.uint8 and bad.dtype == np.uint8 and sky.shape == (12,)
    assert not (cr.astype(bool) & bad.astype(bool)).any()  # bad pixels are never CRs
    # corners (8, 8), (8, 40), (40, 8), (40, 40): frame row 10 is row 2 of the top stamps only
    assert bad[0, 2].all() and bad[1, 2].all() and not bad[2].any()


def test_a_field_goes_to_one_split_only(tmp_path):
    writer = DatasetWriter(tmp_path, STAMP, 8)
    exposure = {"image": np.zeros((64, 64)), "cr_mask": np.zeros((64, 64), bool), "sky": 1.0}
    assert writer.add_field("a", "train", [exposure]) == 1
    with pytest.raises(ValueError, match="already in the dataset"):
        writer.add_field("a", "test", [exposure])


def test_sky_augmentation_range_and_seeding(dataset):
    plain = StampDataset(dataset, "train", aug_sky=None)
    augmented = StampDataset(dataset, "train", aug_sky=(-0.9, 3.0), seed=4)
    sky = float(load_split(dataset, "train")["sky"][0][0])
    shifts = []
    for epoch in range(20):
        augmented.set_epoch(epoch)
        shift = (augmented[0]["image"] - plain[0]["image"]).numpy()
        assert np.allclose(shift, shift.flat[0], atol=1e-3)
        shifts.append(shift.flat[0] / sky)
    assert -0.9 <= min(shifts) < 0 < max(shifts) <= 3.0
    augmented.set_epoch(3)
    np.testing.assert_array_equal(augmented[1]["image"], augmented[1]["image"])


def test_inpaint_mask_borrows_other_crs_and_excludes_own(dataset):
    data = StampDataset(dataset, "train", kind="inpaint")
    for index in range(len(data)):
        item = data[index]
        mask = item["inpaint_mask"]
        assert mask.sum() > 0
        assert not ((mask > 0) & (item["cr"] > 0)).any()
        assert not ((mask > 0) & (item["bad"] > 0)).any()


def test_inpaint_loss_only_counts_masked_pixels():
    target = torch.zeros(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:4, 2:4] = 1
    output = torch.zeros(1, 1, 8, 8)
    output[..., 0, 0] = 100.0  # outside the mask: no effect
    assert float(inpaint_loss(output, target, mask)) == 0.0
    output[..., 2, 2] = 2.0
    assert float(inpaint_loss(output, target, mask)) == pytest.approx(4.0 / 4)


def test_mask_loss_ignores_bad_pixels():
    probability = torch.full((1, 1, 4, 4), 0.5)
    cr, bad = torch.zeros_like(probability), torch.zeros_like(probability)
    reference = float(mask_loss(probability, cr, bad))
    probability[..., 0, 0], bad[..., 0, 0] = 0.999, 1.0
    assert float(mask_loss(probability, cr, bad)) == pytest.approx(reference)


# -- ground truth from stacks --------------------------------------------------------------------------------------


def test_stack_masks_against_injected_truth():
    stack = simulate_stack(3, (192, 192), "globular", seed=2)
    masks, median = stack_cr_masks([e["image"] for e in stack], 4.0, grow=0)
    grown, _ = stack_cr_masks([e["image"] for e in stack], 4.0, grow=1)
    for exposure, mask, grown_mask in zip(stack, masks, grown, strict=True):
        # the truth counts every pixel with more CR charge than 1 sigma of read noise: S/N 5 / 1.5 misses
        # the faint wings, which the grow step recovers at the cost of the ring around every track
        recall, fpr, _ = mask_scores(mask, exposure["cr_mask"])
        assert recall > 0.6 and fpr < 1e-3
        assert mask_scores(mask, exposure["cr_charge"] > 50)[0] > 0.9
        recall, fpr, _ = mask_scores(grown_mask, exposure["cr_mask"])
        assert recall > 0.95 and fpr < 0.05


def test_stack_masks_grow_and_bad_pixels():
    stack = simulate_stack(3, (64, 64), seed=1)
    images = [e["image"] for e in stack]
    bad = [np.zeros((64, 64), bool) for _ in images]
    images[0][30, 30] += 5000
    bad[1][30, 30] = True
    masks, _ = stack_cr_masks(images, 4.0, bad=bad, grow=1)
    assert masks[0][29:32, 29:32].all()
    assert not masks[1][30, 30]
    with pytest.raises(ValueError, match="at least 3"):
        stack_cr_masks(images[:2], 4.0)


@pytest.mark.slow
def test_astrodrizzle_ground_truth(tmp_path):
    from astro_deepcr.training.flc import write_flc_stack
    from astro_deepcr.training.stacks import astrodrizzle_cr_masks

    stack = write_flc_stack(tmp_path / "in", n_exposures=3, seed=4, saturate=False)
    masks = astrodrizzle_cr_masks(stack.files, str(tmp_path / "work"), grow=0)
    assert len(masks) == 3 and all(len(chips) == 2 for chips in masks)
    # driz_cr misses the faint wings the truth counts (> 4 e-): per chip it recalls 0.49-0.70 of the CR pixels
    # at FPR <= 2e-4 on seeds 4-6 of the PSF-convolved simulator; the stack as a whole more than half
    found = np.concatenate([chip.ravel() for chips in masks for chip in chips])
    truth = np.concatenate([chip.ravel() for chips in stack.cr_masks for chip in chips])
    assert mask_scores(found, truth)[0] > 0.5
    for chips_found, chips_truth in zip(masks, stack.cr_masks, strict=True):
        for chip_found, chip_truth in zip(chips_found, chips_truth, strict=True):
            recall, fpr, _ = mask_scores(chip_found, chip_truth)
            assert recall > 0.4 and fpr < 1e-3


# -- trainer -------------------------------------------------------------------------------------------------------


def test_batchnorm_frozen_after_bn_train_epochs(dataset, tmp_path):
    trainer = Trainer(dataset, tmp_path, _config(epochs=1))
    before = trainer.net.inc[1].running_mean.clone()
    trainer.train()
    after_first = trainer.net.inc[1].running_mean.clone()
    assert not torch.equal(before, after_first)  # epoch 1: BN in train mode
    trainer.config.epochs = 3
    trainer.train()
    assert torch.equal(after_first, trainer.net.inc[1].running_mean)  # frozen from epoch 2 on
    assert [row["bn_frozen"] for row in trainer.history] == [False, True, True]
    net = trainer.net
    set_batchnorm_frozen(net, True)
    assert net.training and not net.inc[1].training


def test_batchnorm_recalibration_is_the_exact_batch_average(dataset, tmp_path):
    trainer = Trainer(dataset, tmp_path, _config(epochs=1, bn_recalibrate=2))
    trainer.train()  # epoch 1 in train mode: the momentum-0.005 averages have barely moved
    layer = trainer.net.inc[1]
    lagging = layer.running_mean.clone()
    # the exact average of the first BN layer's batch means over the two recalibration batches
    from astro_deepcr.training.trainer import _batches

    batches = _batches(len(trainer.train_set), 4, 2, np.random.default_rng((1, 1, 1)))
    trainer.train_set.set_epoch(1)
    means = []
    with torch.no_grad():
        for indices in batches:
            image = torch.stack([trainer.train_set[i]["image"] for i in indices])
            means.append(trainer.net.inc[0](image.contiguous(memory_format=torch.channels_last)).mean(dim=(0, 2, 3)))
    trainer.config.epochs = 2
    trainer.train()  # recalibrates at the start of epoch 2, then freezes
    torch.testing.assert_close(layer.running_mean, torch.stack(means).mean(0), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(layer.running_mean, lagging)
    assert layer.momentum == pytest.approx(0.005)  # restored after the cumulative average


def test_plateau_schedule_and_stop_rule(dataset, tmp_path):
    trainer = Trainer(dataset, tmp_path, _config())
    lrs, stops = [], []
    for loss in [1.0] + [0.9995] * 12:  # 0.05 % better is not an improvement at 0.1 %
        stops.append(trainer.step_schedule(loss))
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    # patience 4: decay on the 5th epoch without improvement, stop at the second decay
    assert lrs[:5] == [0.005] * 5 and lrs[5] == pytest.approx(0.0005)
    assert stops.index(True) == 10 and lrs[10] == pytest.approx(0.00005)


def test_training_stops_after_two_decays(dataset, tmp_path):
    # with a 90 % improvement threshold and no patience every epoch decays: stop after epoch 3
    trainer = Trainer(dataset, tmp_path, _config(epochs=10, plateau_patience=0, plateau_threshold=0.9))
    trainer.train()
    assert trainer.epoch == 3 and trainer.decays == 2


def test_resume_gives_identical_weights(dataset, tmp_path):
    full = Trainer(dataset, tmp_path / "full", _config(epochs=3))
    full.train()
    part = Trainer(dataset, tmp_path / "part", _config(epochs=3))
    part.train(stop_at_epoch=2)
    assert part.epoch == 2
    resumed = Trainer(dataset, tmp_path / "part", _config(epochs=3))
    assert resumed.epoch == 2
    resumed.train()
    for key, value in full.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key
    assert [row["val_loss"] for row in full.history] == [row["val_loss"] for row in resumed.history]


def _kill(net):
    # every channel of the last block dead: the frozen BatchNorm shifts them far below the ReLU threshold
    with torch.no_grad():
        net.up[-1].conv[4].bias.fill_(-1e3)


def test_a_dead_network_stops_the_run_and_is_not_exported(dataset, tmp_path):
    from astropy.utils.exceptions import AstropyUserWarning

    trainer = Trainer(dataset, tmp_path, _config(epochs=1))
    trainer.train()
    alive = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    _kill(trainer.net)
    trainer.config.epochs = 5
    with pytest.warns(AstropyUserWarning, match="output is constant"):
        path = trainer.train()
    assert trainer.epoch == 2  # stopped at the first dead epoch
    assert [row["collapsed"] for row in trainer.history] == [False, True]
    # the live epoch-1 weights were exported, not the dead ones
    assert all(torch.equal(trainer.best_state[key], value) for key, value in alive.items())
    image = simulate_stack(1, (64, 64), seed=5)[0]["image"]
    assert np.ptp(DeepCR(mask=path, device="cpu").probability(image)) > 0
    # a resumed run does not train on from a dead network
    resumed = Trainer(dataset, tmp_path, _config(epochs=5))
    resumed.train()
    assert resumed.epoch == 2


def test_dead_from_the_start_raises(dataset, tmp_path):
    trainer = Trainer(dataset, tmp_path, _config(epochs=3, bn_train_epochs=0))
    _kill(trainer.net)
    with pytest.warns(Warning, match="output is constant"), pytest.raises(TrainingCollapsedError, match="constant"):
        trainer.train()


def test_inpaint_training_runs(dataset, tmp_path):
    trainer = Trainer(dataset, tmp_path, _config(kind="inpaint", epochs=2, name="tiny-inpaint"))
    assert trainer.config.lr == 0.01
    path = trainer.train()
    card = _json(os.path.join(tmp_path, "tiny-inpaint.json"))
    assert card["kind"] == "inpaint" and card["threshold"] is None and os.path.exists(path)


def test_outputs_load_in_deepcr(dataset, tmp_path):
    path = Trainer(dataset, tmp_path, _config(epochs=2, name="tiny-out")).train()
    for name in ("log.csv", "log.json", "loss.png", "models.json", "tiny-out.json", "checkpoint.safetensors"):
        assert os.path.exists(os.path.join(tmp_path, name))
    assert len(_json(os.path.join(tmp_path, "log.json"))["epochs"]) == 2
    image = np.full((40, 40), 60.0, np.float32)
    probability = DeepCR(mask=path, device="cpu").probability(image)
    assert probability.shape == (40, 40)
    assert register_models_from(tmp_path, overwrite=True) == ["tiny-out"]
    np.testing.assert_array_equal(DeepCR(mask="tiny-out", device="cpu").probability(image), probability)


# -- CLI -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def parser():
    parser = argparse.ArgumentParser(prog="astro-deepcr")
    cli.add_subparser(parser.add_subparsers(dest="command"))
    return parser


def test_cli_make_dataset_and_train(parser, tmp_path, capsys):
    data = str(tmp_path / "data")
    args = parser.parse_args(["make-dataset", data, "--simulate", "3", "--size", "96", "--stamp-size", "32",
                              "--border", "16", "--split", "0.34", "0.33", "0.33", "--seed", "2"])
    assert args.func(args) == 0
    manifest = _json(os.path.join(data, "manifest.json"))
    assert [len(manifest["splits"][s]) for s in ("train", "validation", "test")] == [1, 1, 1]
    run = str(tmp_path / "run")
    args = parser.parse_args(["train", data, run, "--depth", "2", "--width", "2", "--epochs", "1",
                              "--batch-size", "4", "--quiet"])
    assert args.func(args) == 0
    assert os.path.exists(os.path.join(run, "run.safetensors"))
    assert "DeepCR(mask=" in capsys.readouterr().out


def test_cli_fine_tunes_a_zoo_model(parser, dataset, tmp_path):
    run = str(tmp_path / "ft")
    args = parser.parse_args(["train", dataset, run, "--init-from", "ACS-WFC", "--epochs", "1",
                              "--steps-per-epoch", "1", "--batch-size", "2", "--quiet", "--name", "acs-ft"])
    assert args.func(args) == 0
    card = _json(os.path.join(run, "acs-ft.json"))
    assert (card["depth"], card["width"], card["instrument"]) == (2, 32, "ACS")
    assert "fine-tuned from ACS-WFC" in card["provenance"]
    DeepCR(mask=os.path.join(run, "acs-ft.safetensors"), device="cpu")


def test_cli_needs_input(parser, tmp_path, capsys):
    args = parser.parse_args(["make-dataset", str(tmp_path / "x")])
    assert args.func(args) == 2
    args = parser.parse_args(["make-dataset", str(tmp_path / "x"), "--stack", str(tmp_path / "none*.fits")])
    assert args.func(args) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_precision_on_gpu(dataset, tmp_path):
    trainer = Trainer(dataset, tmp_path, _config(epochs=2, device="cuda"))
    assert trainer.amp and trainer.scaler.is_enabled()
    path = trainer.train()
    assert np.isfinite([row["val_loss"] for row in trainer.history]).all()
    DeepCR(mask=path, device="cuda")


@pytest.mark.slow
def test_cli_make_dataset_from_flc_stacks(parser, tmp_path):
    from astro_deepcr.training.flc import write_flc_stack

    patterns = []
    for k in range(3):
        write_flc_stack(tmp_path / f"field{k}", n_exposures=3, seed=k, saturate=k == 0)
        patterns += ["--stack", str(tmp_path / f"field{k}" / "*_flc.fits")]
    data = str(tmp_path / "data")
    args = parser.parse_args(["make-dataset", data, *patterns, "--stamp-size", "64", "--border", "32",
                              "--split", "0.34", "0.33", "0.33"])
    assert args.func(args) == 0
    train = load_split(data, "train")
    # 128 x 256 chips, 32 px border: 1 x 3 stamps per chip, 2 chips, 3 exposures
    assert train["image"][0].shape == (18, 64, 64)
    assert 0 < train["cr"][0].mean() < 0.1

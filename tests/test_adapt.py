# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astro-deepcr adapt: fine-tuning on the user's frames by injection, the held-out check, the refusal."""

import json

import numpy as np
import pytest

from astro_deepcr import DeepCR
from astro_deepcr.adapt import AdaptationRefused, AdaptFrame, _Samples, adapt_model, own_candidates
from astro_deepcr.training.ground import ground_frame
from astro_deepcr.zoo import get_model, unregister_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def frame():
    """A simulated ground frame with its own (unlabelled) cosmic rays, 320 x 200 px, read noise known."""
    rng = np.random.default_rng((27, 1))
    library = [rng.uniform(200, 3000, (2, 2)).astype(np.float32) for _ in range(8)]
    simulated = ground_frame((320, 200), rng, library)
    return AdaptFrame("sim", simulated["image"], simulated["params"]["read_noise"]), simulated


@pytest.fixture(scope="module")
def stand_in_library(monkeypatch_module):
    rng = np.random.default_rng(3)
    stamps = [rng.uniform(100, 2000, (2, 3)).astype(np.float32) for _ in range(10)]
    from astro_deepcr.training import ground_train

    monkeypatch_module.setattr(ground_train, "_training_library", lambda: stamps)
    return stamps


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_parts_split_the_longer_axis_with_a_gap(frame):
    adapt_frame, _ = frame
    train, held = adapt_frame.parts(0.3)
    assert adapt_frame.electrons[train].shape == (224, 200)
    assert adapt_frame.electrons[held].shape == (320 - 224 - 16, 200)
    with pytest.raises(ValueError, match="too small"):
        AdaptFrame("tiny", np.zeros((100, 100)), 5.0).parts(0.3)


def test_bad_frames_are_named():
    with pytest.raises(ValueError, match="flat: a frame must be 2-D"):
        AdaptFrame("flat", np.zeros(10), 5.0)
    with pytest.raises(ValueError, match="noisy: readnoise must be"):
        AdaptFrame("noisy", np.zeros((10, 10)), -1.0)


def test_own_cosmic_rays_are_kept_out_of_the_loss(frame, stand_in_library):
    adapt_frame, simulated = frame
    spec = get_model("ACS-WFC", kind="mask")
    candidates = own_candidates(adapt_frame, spec)
    strong = simulated["label"]
    # the frame's own cosmic rays are unlabelled in adapt: nearly all of them must be excluded from the loss
    assert strong.sum() > 20
    assert candidates[strong].mean() > 0.9
    region = {"image": adapt_frame.electrons, "sigma": np.full(strong.shape, 10.0, np.float32),
              "bad": np.zeros(strong.shape, bool), "saturated": np.zeros(strong.shape, bool),
              "candidates": candidates}
    samples = _Samples([region], 64, 0, stand_in_library)
    for index in range(5):
        _, label, ignore = samples.sample(index)
        assert not (label & ignore).any()


def test_adapt_writes_a_usable_model_with_its_table(tmp_path, frame, stand_in_library):
    adapt_frame, _ = frame
    path, table = adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC", steps=3, batch_size=2, crop=64,
                              lr=1e-5, progress=False)
    card = json.loads((tmp_path / "ACS-WFC-adapted.json").read_text())
    assert card["metrics"]["better"] is True
    assert card["metrics"]["adapted"] >= card["metrics"]["base"]
    assert (tmp_path / "adapt.md").read_text().startswith("| held-out part |")
    assert not (tmp_path / "checkpoint.safetensors").exists()
    image = np.random.default_rng(0).normal(100, 5, (64, 64)).astype(np.float32)
    image[30, 30] += 3000
    try:
        mask, _ = DeepCR(mask=path, device="cpu").clean(image, inpaint="medmask")
    finally:
        unregister_model("ACS-WFC-adapted")  # other tests run every registered model
    assert mask[30, 30]
    assert any("| adapted at the ACS-WFC model's flags |" in line for line in table)


def test_a_worse_model_is_refused_and_nothing_written(tmp_path, frame, stand_in_library):
    adapt_frame, _ = frame
    with pytest.raises(AdaptationRefused, match="not written"):
        adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC", steps=3, batch_size=2, crop=64, lr=1.0,
                    progress=False)
    assert not list(tmp_path.glob("*.safetensors"))
    assert not (tmp_path / "models.json").exists()


def test_cli_usage_errors(tmp_path):
    from astro_deepcr.cli import main

    assert main(["adapt", "x.fits", "-o", str(tmp_path), "--steps", "0"]) == 2
    assert main(["adapt", "x.fits", "-o", str(tmp_path), "--holdout", "0.99"]) == 2
    assert main(["adapt", str(tmp_path / "missing.fits"), "-o", str(tmp_path)]) == 2

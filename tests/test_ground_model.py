# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The simulator of seeing-limited frames, the ground-model training run and its card (tiny runs)."""

import json
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from astro_deepcr.training import ground
from astro_deepcr.training.ground import faint_hits, ground_frame, label_cosmic_rays, moffat_psf
from astro_deepcr.training.ground_train import GroundConfig, GroundFrames, negatives_report, train_ground

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def library():
    # a small stand-in for the HRC harvest, so that these tests do not need spherical_geometry's file
    rng = np.random.default_rng(5)
    return [rng.uniform(100, 2000, (2, 3)).astype(np.float32) for _ in range(10)]


@pytest.mark.parametrize("fwhm,beta", [(1.5, 2.5), (3.0, 4.765), (8.0, 3.0)])
def test_moffat_psf_has_its_fwhm_and_unit_sum(fwhm, beta):
    psf = moffat_psf(fwhm, beta, size=81, oversample=9)
    assert psf.sum() == pytest.approx(1.0, abs=1e-12)
    # the half-maximum width of the pixel-integrated profile along the central row (interpolated)
    row = psf[40] / psf[40].max()
    above = np.flatnonzero(row >= 0.5)
    left, right = above[0], above[-1]
    width = (right - left) + (row[left] - 0.5) / (row[left] - row[left - 1]) + (row[right] - 0.5) / (
        row[right] - row[right + 1])
    # pixel integration (and the linear interpolation of a sampled profile) broadens it, by at most ~1 px in
    # quadrature: measured 1.5 -> 1.74, 3 -> 3.18, 8 -> 8.07
    assert fwhm < width < np.hypot(fwhm, 1.0) + 0.15


def test_moffat_psf_offset_moves_the_centroid():
    psf = moffat_psf(3.0, 3.0, size=31, offset=(0.3, -0.2))
    cy, cx = ndimage.center_of_mass(psf)
    assert (cy - 15, cx - 15) == pytest.approx((0.3, -0.2), abs=0.02)


def test_faint_hits_are_small_and_faint():
    stamps = faint_hits(200, np.random.default_rng(1))
    sizes = [int((s > 0).sum()) for s in stamps]
    totals = [float(s.sum()) for s in stamps]
    assert min(sizes) == 1 and max(sizes) == 4
    assert 30 <= min(totals) and max(totals) <= 800
    for stamp in stamps:  # connected
        assert ndimage.label(stamp > 0, np.ones((3, 3)))[1] == 1


def test_label_rule():
    sigma = np.full((9, 9), 10.0)
    charge = np.zeros((9, 9))
    identity = np.zeros((9, 9), np.int32)
    charge[2, 2], charge[2, 3] = 50.0, 5.0  # peak 5 sigma, neighbour 0.5 sigma
    identity[2, 2:4] = 1
    charge[6, 6], charge[6, 7] = 25.0, 15.0  # peak 2.5 sigma: undetectable
    identity[6, 6:8] = 2
    label, ignore = label_cosmic_rays(charge, identity, sigma)
    assert label.sum() == 1 and label[2, 2]
    assert ignore[2, 3] and ignore[6, 6] and ignore[6, 7]
    assert not (label & ignore).any()
    assert ignore.sum() == 3


def test_ground_frame_is_reproducible_and_labels_are_exact(library):
    first = ground_frame((96, 96), np.random.default_rng((3, 7)), library)
    again = ground_frame((96, 96), np.random.default_rng((3, 7)), library)
    np.testing.assert_array_equal(first["image"], again["image"])
    np.testing.assert_array_equal(first["label"], again["label"])
    raised = first["image"] > first["clean"]
    assert first["label"].any()
    assert (raised | ~first["label"]).all()  # every labelled pixel carries cosmic-ray charge
    assert not (first["label"] & first["ignore"]).any()


def test_ground_frames_cover_the_stated_ranges(library):
    params = [ground_frame((48, 48), np.random.default_rng((0, k)), library)["params"] for k in range(60)]
    fwhm = np.array([p["fwhm"] for p in params])
    sky = np.array([p["sky"] for p in params])
    assert 1.5 <= fwhm.min() < 2.5 and 5.0 < fwhm.max() <= 8.0
    assert 5.0 <= sky.min() < 30 and 1000 < sky.max() <= 5000
    assert {p["kind"] for p in params} == {"imaging"} and not any(p["spikes"] for p in params)  # the shipped mix


def test_a_scene_mix_covers_its_ranges(library):
    mix = ground.SceneMix(long_slit=0.25, spikes=0.5, fwhm_min=1.0)
    params = [ground_frame((48, 48), np.random.default_rng((0, k)), library, mix)["params"] for k in range(120)]
    fwhm = np.array([p["fwhm"] for p in params])
    imaging = [p for p in params if p["kind"] == "imaging"]
    assert 1.0 <= fwhm.min() < 1.3 and 5.0 < fwhm.max() <= 8.0
    # a quarter long-slit frames, half of the imaging frames with spikes (binomial 3-sigma bounds)
    assert 18 <= sum(p["kind"] == "long-slit" for p in params) <= 42
    spiked = [p["spikes"] for p in imaging if p["spikes"] > 0]
    assert 0.3 < len(spiked) / len(imaging) < 0.7
    assert 3e-3 <= min(spiked) and max(spiked) <= 3e-2


def test_spike_pattern_points_four_ways_and_falls_as_the_inverse_square():
    pattern = ground.spike_pattern(2.0, 0.0, length=40)
    assert pattern.sum() == pytest.approx(1.0)
    centre = 40
    np.testing.assert_allclose(pattern, np.rot90(pattern), rtol=1e-12, atol=1e-18)  # four-fold
    along = pattern[centre, centre + 10], pattern[centre, centre + 20]
    # 1 / (1 + (d / fwhm)**2): 1/26 at 10 px, 1/101 at 20 px
    assert along[0] / along[1] == pytest.approx(101 / 26, rel=1e-9)
    assert pattern[centre + 20, centre + 20] < 1e-6 * along[1]  # nothing between the spikes
    assert (pattern[np.hypot(*np.mgrid[-40:41, -40:41]) < 2.0] == 0).all()  # the core is the Moffat's


@pytest.mark.parametrize("flux,with_spikes", [(50.0, False), (1e6, True)])
def test_spikes_go_on_bright_stars_only(monkeypatch, flux, with_spikes):
    monkeypatch.setitem(ground.GROUND_RANGES, "star_flux", (flux, flux * (1 + 1e-9)))
    monkeypatch.setitem(ground.GROUND_RANGES, "galaxy_density", (0.0, 0.0))
    placed = []
    add_stamp = ground._add_stamp
    monkeypatch.setattr(ground, "_add_stamp", lambda image, stamp, y0, x0: placed.append(stamp.shape) or
                        add_stamp(image, stamp, y0, x0))
    _, params = ground.ground_scene((64, 64), np.random.default_rng(3), ground.SceneMix(spikes=1.0))
    spike_size = 2 * ground.SPIKE_LENGTH + 1
    n_spiked = sum(shape == (spike_size, spike_size) for shape in placed)
    # 50 e- * at most 3 % is below SPIKE_MIN_CHARGE; 1e6 e- * at least 0.3 % is above it
    assert params["spikes"] > 0 and len(placed) > 0
    assert n_spiked == (len(placed) // 2 if with_spikes else 0)


def test_long_slit_scene_has_lines_across_and_traces_along():
    from astro_deepcr.training.spectra import long_slit_scene

    found_line = found_trace = False
    for k in range(30):
        scene, params = long_slit_scene((120, 200), np.random.default_rng((2, k)), 3.0, 3.0)
        assert scene.shape == (120, 200) and (scene >= 0).all() and np.isfinite(scene).all()
        columns = np.median(scene, axis=0)
        # a sky line: a column far above its neighbours in most rows (the lines cross the slit)
        peak = int(np.argmax(columns - ndimage.median_filter(columns, 15)))
        if params["lines"] and (columns[peak] > 3 * np.median(columns)):
            lit = scene[:, peak] > 2 * np.median(scene[:, max(peak - 10, 0):peak + 10], axis=1)
            found_line |= lit.mean() > 0.3
        if params["traces"]:
            rows = np.median(scene, axis=1)
            found_trace |= rows.max() > 2 * np.median(rows)
    assert found_line and found_trace


def test_long_slit_frames_turn_either_way(library):
    axes = set()
    for k in range(12):
        frame = ground_frame((64, 96), np.random.default_rng((4, k)), library, ground.SceneMix(long_slit=1.0))
        assert frame["image"].shape == (64, 96) and frame["params"]["kind"] == "long-slit"
        clean = frame["clean"] - np.median(frame["clean"])
        # the dispersion runs along the axis whose profile varies most (the sky lines)
        axes.add(int(np.std(np.median(clean, axis=0)) < np.std(np.median(clean, axis=1))))
    assert axes == {0, 1}


def test_saturated_pixels_are_never_labelled(library, monkeypatch):
    monkeypatch.setitem(ground.GROUND_RANGES, "full_well", (3000.0, 3000.0001))
    monkeypatch.setitem(ground.GROUND_RANGES, "star_density", (3e-3, 3e-3))
    # no read noise (added after saturation), so that a saturated pixel reads exactly the full well
    monkeypatch.setitem(ground.GROUND_RANGES, "read_noise", (0.0, 1e-12))
    seen = 0
    for k in range(10):
        frame = ground_frame((96, 96), np.random.default_rng((9, k)), library)
        saturated = frame["image"] >= 3000 - 1e-3
        seen += int(saturated.sum())
        assert not (frame["label"] & saturated).any()
        assert frame["ignore"][saturated].all()
    assert seen > 0


def test_training_samples_do_not_depend_on_workers(library):
    frames = GroundFrames(32, 4, library)
    np.testing.assert_array_equal(frames[12]["image"], frames[12]["image"])
    assert not np.array_equal(frames[12]["image"], frames[13]["image"])


def test_train_ground_resumes_to_the_same_weights(tmp_path, monkeypatch, library):
    from astro_deepcr.training import ground_train

    monkeypatch.setattr(ground_train, "_training_library", lambda: library)
    config = dict(init_from=None, depth=2, width=4, steps=4, batch_size=2, crop=32, checkpoint_every=2, seed=1)
    whole = train_ground(str(tmp_path / "whole"), GroundConfig(**config), progress=False)
    # an interrupted run: stop after 2 steps, then resume to 4
    train_ground(str(tmp_path / "split"), GroundConfig(**dict(config, max_seconds=0.0)), progress=False)
    log = json.loads((tmp_path / "split" / "log.json").read_text())
    assert log["steps_done"] == 1
    split = train_ground(str(tmp_path / "split"), GroundConfig(**config), progress=False)
    from safetensors.torch import load_file

    a, b = load_file(whole), load_file(split)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_stop_at_is_the_reproducible_form_of_a_run_stopped_early(tmp_path, monkeypatch, library):
    from safetensors.torch import load_file

    from astro_deepcr.cli import main
    from astro_deepcr.training import ground_train

    monkeypatch.setattr(ground_train, "_training_library", lambda: library)
    config = dict(init_from=None, depth=2, width=4, steps=4, batch_size=2, crop=32, checkpoint_every=1, seed=1)
    # stopped by time after one step of the 4-step schedule, and the same stop asked for by stop_at
    timed = train_ground(str(tmp_path / "timed"), GroundConfig(**dict(config, max_seconds=0.0)), progress=False)
    asked = train_ground(str(tmp_path / "asked"), GroundConfig(**dict(config, stop_at=1)), progress=False)
    a, b = load_file(timed), load_file(asked)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert json.loads((tmp_path / "asked" / "log.json").read_text())["steps_done"] == 1
    with pytest.raises(ValueError, match="stop_at"):
        GroundConfig(steps=4, stop_at=5)
    # the card's command line says how to reproduce it
    out = tmp_path / "run"
    assert main(["train-ground", str(out), "--init-from", "none", "--width", "4", "--steps", "3", "--stop-at", "2",
                 "--batch-size", "2", "--crop", "32", "--validation-frames", "1", "--quiet", "--name", "stopped"]) == 0
    card = json.loads((out / "stopped.json").read_text())
    assert "--steps 3 --stop-at 2 --batch-size 2" in card["provenance"]
    assert json.loads((out / "log.json").read_text())["steps_done"] == 2


def test_train_ground_refuses_a_checkpoint_of_other_settings(tmp_path, monkeypatch, library):
    from astro_deepcr.training import ground_train

    monkeypatch.setattr(ground_train, "_training_library", lambda: library)
    config = dict(init_from=None, depth=2, width=4, steps=2, batch_size=2, crop=32, checkpoint_every=1)
    train_ground(str(tmp_path), GroundConfig(**config), progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train_ground(str(tmp_path), GroundConfig(**dict(config, seed=5)), progress=False)


def test_negatives_report_counts_flags_on_clean_frames(library):
    frames = [ground_frame((64, 64), np.random.default_rng((2, k)), library) for k in range(3)]

    def everything(image):
        return np.ones(image.shape)

    report = negatives_report(everything, frames, 0.5)
    usable = sum(int((~f["ignore"]).sum()) for f in frames)
    assert report["pixels"] == usable
    assert report["model_false_flags"] == usable
    assert report["tpr"] == 1.0 and report["fpr"] == 1.0
    nothing = negatives_report(lambda image: np.zeros(image.shape), frames, 0.5)
    assert nothing["model_false_flags"] == 0 and nothing["tpr"] == 0.0
    assert nothing["lacosmic_false_flags"] == report["lacosmic_false_flags"]


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        GroundConfig(steps=0)


def test_train_ground_command_writes_a_usable_model_and_card(tmp_path, monkeypatch, library):
    from astro_deepcr import DeepCR
    from astro_deepcr.cli import main
    from astro_deepcr.training import ground_train

    monkeypatch.setattr(ground_train, "_training_library", lambda: library)
    out = tmp_path / "run"
    assert main(["train-ground", str(out), "--init-from", "none", "--width", "4", "--steps", "2", "--batch-size", "2",
                 "--crop", "32", "--validation-frames", "1", "--quiet"]) == 0
    card = json.loads((out / "my-ground.json").read_text())
    assert card["name"] == "my-ground" and card["threshold"] == 0.5 and card["units"] == "electron"
    validation = card["metrics"]["validation"]
    assert validation["frames"] == 1 and validation["pixels"] > 60000
    assert card["metrics"]["training_frames"] == []
    assert "--init-from none --steps 2" in card["provenance"]
    image = np.random.default_rng(0).normal(100, 5, (48, 48)).astype(np.float32)
    from astro_deepcr.zoo import unregister_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a 2-step network may set off the flagged-fraction alarm
            model = DeepCR(mask=str(out / "my-ground.safetensors"), device="cpu")
            assert model.probability(image).shape == (48, 48)
    finally:
        unregister_model("my-ground")  # other tests run every registered model
    assert main(["train-ground", str(out), "--steps", "0"]) == 2


def test_train_ground_can_deepen_the_model_it_fine_tunes(tmp_path, monkeypatch, library):
    from astro_deepcr.cli import main
    from astro_deepcr.training import ground_train
    from astro_deepcr.zoo import get_model, load_network

    monkeypatch.setattr(ground_train, "_training_library", lambda: library)
    # before a step: the deepened copy of 'ground' is 'ground' (nets.deepen), at 3 levels
    config = GroundConfig(init_from="ground", depth=3)
    net, spec = ground_train._network(config)
    assert (config.depth, config.width, net.depth, spec.name) == (3, 32, 3, "ground")
    image = torch.from_numpy(ground_frame((64, 64), np.random.default_rng(4), library)["image"][None, None])
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(image), load_network(get_model("ground")).eval()(image),
                                   rtol=1e-4, atol=1e-5)
    left_alone = GroundConfig(init_from="ground")
    assert ground_train._network(left_alone)[0].depth == 2 and left_alone.depth == 2
    with pytest.raises(ValueError, match="fine-tuning can only deepen"):
        ground_train._network(GroundConfig(init_from="ground", depth=1))
    with pytest.raises(ValueError, match="fine-tuning keeps the width"):
        ground_train._network(GroundConfig(init_from="ground", width=16))
    out = tmp_path / "run"
    assert main(["train-ground", str(out), "--init-from", "ground", "--depth", "3", "--steps", "1", "--batch-size",
                 "1", "--crop", "32", "--validation-frames", "1", "--quiet", "--name", "deep"]) == 0
    card = json.loads((out / "deep.json").read_text())
    assert (card["depth"], card["width"]) == (3, 32)
    assert "fine-tuned from ground deepened to 3 levels" in card["description"]
    assert "--init-from ground --steps 1 --batch-size 1 --crop 32 --seed 0 --depth 3 (" in card["provenance"]
    assert json.loads((out / "log.json").read_text())["init_depth"] == 2


def test_the_shipped_ground_card_holds_its_figures():
    from astro_deepcr.zoo import UNCARDED_CAMERA_MODELS, get_model

    spec = get_model("ground", kind="mask")
    assert UNCARDED_CAMERA_MODELS["HST"] == "ground"  # WFPC2, ACS/HRC and other HST cameras without a card
    assert (spec.depth, spec.width, spec.threshold, spec.units) == (2, 32, 0.5, "electron")
    validation = spec.metrics["validation"]
    # measured by train-ground on 16 simulated validation frames (seed 0): 20 false flags against LACosmic's 1218
    assert validation["model_false_flags"] < validation["lacosmic_false_flags"] / 10
    assert "hrc" in spec.metrics["training_libraries"] and spec.metrics["training_frames"] == []


def test_the_shipped_ground_v2_card_holds_its_figures():
    """ground-v2, the generic default: its recipe, and its validation on its own scene mix against ground's."""
    from astro_deepcr.zoo import GENERIC_DEFAULT_MODEL, get_model

    spec = get_model("ground-v2", kind="mask")
    assert GENERIC_DEFAULT_MODEL == "ground-v2"
    assert (spec.depth, spec.width, spec.threshold, spec.units) == (2, 32, 0.5, "electron")
    assert "--steps 6000 --batch-size 16" in spec.provenance and "--long-slit 0.25 --spikes 0.5" in spec.provenance
    validation = spec.metrics["validation"]
    # 16 validation frames of its mix (seed 0, 4 long-slit): TPR 0.9388, 23 false flags; ground on the same frames
    # 0.9321 and 1529 (benchmarks/paired_models.py ground-v2 --validation 16 --long-slit 0.25 --spikes 0.5)
    assert validation["frames"] == 16 and validation["tpr"] == pytest.approx(0.9388, abs=1e-4)
    assert validation["model_false_flags"] == 23 and validation["lacosmic_false_flags"] == 4586
    assert "hrc" in spec.metrics["training_libraries"] and spec.metrics["training_frames"] == []


class _DecisionsAside:
    """A Generator whose first ``n`` argument-less ``random()`` calls answer 0.5 without drawing."""

    def __init__(self, seed, n):
        self.rng, self.left = np.random.default_rng(seed), n

    def random(self, *args, **kwargs):
        if not args and not kwargs and self.left:
            self.left -= 1
            return 0.5
        return self.rng.random(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.rng, name)


def test_the_default_mix_draws_nothing_for_what_it_leaves_out():
    # the shipped model's frames stay reproducible: with fractions of 0 nothing is drawn for long-slit frames
    # and spikes; with fractions below 0.5 the two decisions (set aside here) are the only extra draws
    plain, _ = ground.ground_scene((64, 64), np.random.default_rng(8))
    mixed, params = ground.ground_scene((64, 64), _DecisionsAside(8, 2), ground.SceneMix(long_slit=0.4, spikes=0.4))
    assert params["kind"] == "imaging" and params["spikes"] == 0.0
    np.testing.assert_array_equal(plain, mixed)


def test_an_hst_mix_keeps_to_its_fwhm_limits_and_can_leave_out_the_hrc_library(library):
    mix = ground.SceneMix(spikes=0.5, fwhm_min=1.0, fwhm_max=3.0)
    fwhm = np.array([ground_frame((48, 48), np.random.default_rng((0, k)), None, mix)["params"]["fwhm"]
                     for k in range(60)])
    assert 1.0 <= fwhm.min() < 1.2 and 2.6 < fwhm.max() <= 3.0
    # without the library, the frames' cosmic rays are tracks and faint hits only: the same scene, other hits
    with_library = ground_frame((96, 96), np.random.default_rng((3, 1)), library, mix)
    without = ground_frame((96, 96), np.random.default_rng((3, 1)), None, mix)
    assert with_library["params"]["fwhm"] == without["params"]["fwhm"]
    assert not np.array_equal(with_library["label"], without["label"])
    config = GroundConfig(fwhm_min=1.0, fwhm_max=3.0, hrc_library=False)
    assert config.library() is None and config.library_names() == ["tracks", "faint"]
    assert GroundConfig().library_names() == ["hrc", "tracks", "faint"]


def test_the_card_of_an_hst_mix_says_what_it_trained_on(tmp_path, monkeypatch, library):
    from astro_deepcr.cli import main
    from astro_deepcr.training import ground_train

    def refuse():
        raise AssertionError("the HRC library was read although --no-hrc-library was given")

    monkeypatch.setattr(ground_train, "_training_library", refuse)
    out = tmp_path / "run"
    assert main(["train-ground", str(out), "--init-from", "none", "--width", "4", "--steps", "2", "--batch-size", "2",
                 "--crop", "32", "--validation-frames", "1", "--quiet", "--fwhm-min", "1", "--fwhm-max", "3",
                 "--no-hrc-library"]) == 0
    card = json.loads((out / "my-ground.json").read_text())
    assert card["metrics"]["training_libraries"] == ["tracks", "faint"]
    assert "--fwhm-min 1 --fwhm-max 3 --no-hrc-library" in card["provenance"]
    assert "Moffat PSFs of 1-3 px FWHM" in card["training_data"] and "HRC" not in card["training_data"]


@pytest.mark.parametrize("kwargs", [dict(long_slit=1.5), dict(spikes=-0.1), dict(fwhm_min=0.1), dict(fwhm_min=9.0),
                                    dict(fwhm_max=9.0), dict(fwhm_max=1.2), dict(fwhm_min=2.0, fwhm_max=1.5),
                                    dict(on_sources=1.2), dict(faint_stars=-1e-3), dict(faint_stars=0.5)])
def test_scene_mix_rejects_nonsense(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ground.SceneMix(**kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        GroundConfig(**kwargs)


def _labelled_on_sources(mix, n_frames=40, seed=5):
    """(labelled cosmic-ray pixels on source pixels, all labelled pixels) over ``n_frames`` 128 px frames."""
    on = total = 0
    for k in range(n_frames):
        sources, _, params = ground._scene_parts((128, 128), np.random.default_rng((seed, k)), mix)
        frame = ground_frame((128, 128), np.random.default_rng((seed, k)), None, mix)
        sites = ground.source_pixels(sources, params["sky"], frame["params"]["read_noise"])
        on += int((frame["label"] & sites).sum())
        total += int(frame["label"].sum())
    return on, total


def test_on_sources_puts_cosmic_rays_on_stars_and_leaves_the_scene_alone():
    # measured: 9 of 6734 labelled pixels on a source with the shipped mix, 564 of 5552 with on_sources 0.5
    # (a cosmic ray on a star is labelled only where it beats the star's noise, so not half of them)
    plain_on, plain_total = _labelled_on_sources(ground.SceneMix())
    mixed_on, mixed_total = _labelled_on_sources(ground.SceneMix(on_sources=0.5))
    assert plain_on / plain_total < 0.005
    assert 0.07 < mixed_on / mixed_total < 0.14
    # the scene is drawn before the cosmic rays: the same conditions, other hits (and so other noise draws)
    plain = ground_frame((96, 96), np.random.default_rng((3, 3)), None)
    mixed = ground_frame((96, 96), np.random.default_rng((3, 3)), None, ground.SceneMix(on_sources=0.5))
    for name in ("fwhm", "sky", "read_noise", "exptime"):
        assert plain["params"][name] == mixed["params"][name]
    assert not np.array_equal(plain["label"], mixed["label"])


def test_source_pixels_are_three_sky_sigma_of_stars_and_galaxies():
    sources = np.array([[0.0, 29.9, 30.0, 1e4]])
    # sky 96 e-, read noise 2 e-: sigma 10 e-, so 30 e- is the 3-sigma cut
    np.testing.assert_array_equal(ground.source_pixels(sources, 96.0, 2.0), [[False, False, True, True]])


def test_the_card_of_an_on_sources_run_says_so(tmp_path, library):
    from astro_deepcr.cli import main

    out = tmp_path / "run"
    assert main(["train-ground", str(out), "--init-from", "none", "--width", "4", "--steps", "2", "--batch-size", "2",
                 "--crop", "32", "--validation-frames", "1", "--quiet", "--on-sources", "0.5"]) == 0
    card = json.loads((out / "my-ground.json").read_text())
    assert "--crop 32 --seed 0 --depth 2 --width 4 --on-sources 0.5 (" in card["provenance"]
    assert "50% of the cosmic rays of an imaging frame centred on a source" in card["training_data"]


def test_faint_stars_sit_at_the_detection_limit_and_cost_the_default_mix_nothing(monkeypatch):
    """``SceneMix(faint_stars=...)``: extra stars peaking at 2-30 times the sky's noise; none drawn by default."""
    rng = np.random.default_rng(11)
    plain_sources, plain_sky, params = ground._scene_parts((128, 128), np.random.default_rng(11), ground.SceneMix())
    again, _, _ = ground._scene_parts((128, 128), rng, ground.SceneMix(faint_stars=0.0))
    np.testing.assert_array_equal(plain_sources, again)  # a density of 0 draws nothing
    monkeypatch.setitem(ground.GROUND_RANGES, "star_density", (1e-12, 1e-12))  # no power-law stars: only the faint
    monkeypatch.setitem(ground.GROUND_RANGES, "galaxy_density", (0.0, 0.0))
    peaks, counts = [], []
    for k in range(20):
        sources, _, params = ground._scene_parts((128, 128), np.random.default_rng((3, k)),
                                                 ground.SceneMix(faint_stars=2e-4))
        inner = sources[8:-8, 8:-8]  # away from the edges, where a star may be cut
        top = (inner == ndimage.maximum_filter(inner, size=5)) & (inner > 0.5 * np.sqrt(params["sky"]))
        counts.append(int(top.sum()))
        peaks += list(inner[top] / np.sqrt(params["sky"]))
    peaks = np.log(peaks)
    # 2e-4 per px: about 2.2 stars on each 112 px inner square; peaks log-uniform in 2-30 sky sigma (a star's
    # peak pixel falls below its PSF's centred peak at other sub-pixel phases, by up to about a half)
    assert 25 < sum(counts) < 70
    assert np.log(0.9) < peaks.min() and peaks.max() < np.log(31)
    assert np.median(peaks) == pytest.approx(np.log(np.sqrt(2 * 30)) - 0.2, abs=0.4)

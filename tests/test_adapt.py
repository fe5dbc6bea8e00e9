# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astro-deepcr adapt: fine-tuning on the user's frames by injection, the held-out check, the refusal."""

import json

import numpy as np
import pytest

from astro_deepcr import DeepCR
from astro_deepcr.adapt import AdaptationRefused, AdaptFrame, _Samples, adapt_model, own_candidates
from astro_deepcr.detection import detect
from astro_deepcr.evaluation.detectors import deepcr_detector
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
    with pytest.raises(ValueError, match="noisy: readnoise must be a non-negative"):
        AdaptFrame("noisy", np.zeros((10, 10)), -1.0)
    with pytest.raises(ValueError, match="unknown: readnoise must be"):
        AdaptFrame("unknown", np.zeros((10, 10)), float("nan"))


def test_read_noise_zero_is_photon_noise_only():
    """A frame whose noise is all photon noise (read noise 0) is accepted; the labels' noise never drops below
    MIN_NOISE, so an empty sky does not label every electron of a cosmic ray (nor divide by zero)."""
    from astro_deepcr.adapt import MIN_NOISE, _noise

    image = np.zeros((40, 40), np.float32)
    image[20:, :] = 400.0
    frame = AdaptFrame("photons", image, 0.0)
    sigma = _noise(frame.electrons, frame.readnoise, frame.bad)
    assert sigma[:10].min() == MIN_NOISE == 1.0
    assert sigma[30:] == pytest.approx(20.0)


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
    assert (tmp_path / "adapt.md").read_text() == "## ACS-WFC-adapted\n\n" + "\n".join(table) + "\n"
    assert not (tmp_path / "checkpoint.safetensors").exists()
    # the card's threshold keeps the base model's flag count on the uninjected training part (within 5 %)
    calibration = card["metrics"]["threshold"]
    assert card["threshold"] == calibration["threshold"] and card["auto_precision"] == "float32"
    train_part = adapt_frame.electrons[adapt_frame.parts(0.3)[0]]
    # the calibration runs float32 on every CPU (at "auto" a CPU with native bfloat16 gave 1011 flags, not 1010)
    base_flags = int(deepcr_detector("ACS-WFC", precision="float32")(train_part).sum())
    assert calibration["base_flags"] == base_flags > 0
    adapted_flags = int(deepcr_detector(get_model(path), precision="float32")(train_part).sum())
    assert abs(adapted_flags - base_flags) <= max(2, 0.05 * base_flags)
    assert table[-1].startswith(f"Threshold {card['threshold']:.4g}: the adapted model flags")
    assert card["metrics"]["kept_out_of_loss"] == pytest.approx(0.165, abs=0.01)  # measured 0.1647: its own CRs, grown
    image = np.random.default_rng(0).normal(100, 5, (64, 64)).astype(np.float32)
    image[30, 30] += 3000
    try:
        mask, _ = DeepCR(mask=path, device="cpu").clean(image, inpaint="medmask")
        # every door takes the card's calibrated threshold when none is given
        from astro_deepcr.ccdproc_step import cosmicray_deepcr

        _, ccd_mask = cosmicray_deepcr(image, model=path, gain=1.0, readnoise=5.0)
        assert detect(image, spec=get_model(path)).threshold == card["threshold"] != 0.5
        assert np.array_equal(ccd_mask, detect(image, spec=get_model(path), threshold=card["threshold"]).cr_mask)
    finally:
        unregister_model("ACS-WFC-adapted")  # other tests run every registered model
    assert mask[30, 30]
    assert any("| adapted at the ACS-WFC model's flags |" in line for line in table)
    flags = {line.split("|")[2].strip(): int(line.split("|")[3]) for line in table if line.startswith("| sim")}
    assert abs(flags["adapted at the ACS-WFC model's flags"] - flags["ACS-WFC"]) <= max(2, 0.01 * flags["ACS-WFC"])


def test_the_check_is_float32_on_every_cpu(tmp_path, frame, stand_in_library, monkeypatch):
    """Candidates, calibration and check run float32 whatever the CPU: on a CPU with native bfloat16 (emulated
    here), "auto" would validate and run the models in bfloat16, and whether a model is written would depend on
    the machine."""
    from astro_deepcr import detection, engine

    def no_validation(*args, **kwargs):
        raise AssertionError("adapt asked for a bfloat16 validation")

    monkeypatch.setattr(engine, "native_bfloat16", lambda device=None: True)
    monkeypatch.setattr(detection, "bf16_verdict", no_validation)
    adapt_frame, _ = frame
    adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC", steps=3, batch_size=2, crop=64, lr=1e-5,
                progress=False)
    assert (tmp_path / "ACS-WFC-adapted.safetensors").exists()


def test_a_worse_model_is_refused_and_nothing_written(tmp_path, frame, stand_in_library):
    adapt_frame, _ = frame
    with pytest.raises(AdaptationRefused, match="not written"):
        adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC", steps=3, batch_size=2, crop=64, lr=1.0,
                    progress=False)
    assert not list(tmp_path.glob("*.safetensors"))
    assert not (tmp_path / "models.json").exists()


def _no_training(monkeypatch):
    """Make adapt_model fail the test if it reaches the fine-tuning."""
    from astro_deepcr.training import ground_train

    def fit(*args, **kwargs):
        raise AssertionError("adapt started training")

    monkeypatch.setattr(ground_train, "fit", fit)


def test_a_model_of_the_same_name_stops_the_run_before_training(tmp_path, frame, monkeypatch):
    """Audit: adapt into a folder holding a model replaced it (sha256 changed, exit 0)."""
    _no_training(monkeypatch)
    adapt_frame, _ = frame
    (tmp_path / "ACS-WFC-adapted.safetensors").write_bytes(b"the older model")
    with pytest.raises(FileExistsError, match=f"a model named 'ACS-WFC-adapted' is already in {tmp_path} "
                                              rf"\({tmp_path}/ACS-WFC-adapted.safetensors\)"):
        adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC")
    assert (tmp_path / "ACS-WFC-adapted.safetensors").read_bytes() == b"the older model"
    (tmp_path / "models.json").write_text(json.dumps({"format": 1, "models": [{"name": "listed"}]}))
    with pytest.raises(FileExistsError, match="a model named 'listed' is already in .*models.json lists it"):
        adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC", name="listed")
    for name in ("../elsewhere", ".hidden"):  # the weights would land outside DIR, or beside the candidates
        with pytest.raises(ValueError, match="name must be a plain file name"):
            adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC", name=name)
    (tmp_path / "models.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="models.json has no list of models under 'models'"):
        adapt_model([adapt_frame], str(tmp_path), model="ACS-WFC", name="new")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ACS-WFC-adapted.safetensors", "models.json"]


def test_a_second_model_joins_the_folder_and_overwrite_replaces_only_its_own(tmp_path, frame, stand_in_library):
    """Audit: with another --name, models.json listed only the new model and adapt.md held only its table."""
    import hashlib

    adapt_frame, _ = frame
    options = dict(model="ACS-WFC", batch_size=2, crop=64, lr=1e-6, progress=False)
    _, first_table = adapt_model([adapt_frame], str(tmp_path), name="first", steps=2, **options)
    first = (tmp_path / "first.safetensors").read_bytes()
    _, second_table = adapt_model([adapt_frame], str(tmp_path), name="second", steps=2, **options)
    assert (tmp_path / "first.safetensors").read_bytes() == first
    assert [entry["name"] for entry in json.loads((tmp_path / "models.json").read_text())["models"]] == \
        ["first", "second"]
    assert (tmp_path / "adapt.md").read_text() == "\n".join(["## first", "", *first_table, "", "## second", "",
                                                             *second_table, ""])
    _, again_table = adapt_model([adapt_frame], str(tmp_path), name="first", steps=3, overwrite=True, **options)
    entries = json.loads((tmp_path / "models.json").read_text())["models"]
    assert [entry["name"] for entry in entries] == ["first", "second"]  # replaced where it was listed
    replaced = (tmp_path / "first.safetensors").read_bytes()
    assert replaced != first and entries[0]["sha256"] == hashlib.sha256(replaced).hexdigest()
    assert entries[0]["provenance"].endswith("3 steps, seed 0") and entries[1]["provenance"].endswith("2 steps, seed 0")
    assert json.loads((tmp_path / "first.json").read_text()) == entries[0]
    assert (tmp_path / "adapt.md").read_text().endswith("\n".join(
        ["", "## first (replaces an earlier model of this name)", "", *again_table, ""]))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["adapt.md", "first.json", "first.safetensors",
                                                                "models.json", "second.json", "second.safetensors"]


def test_the_check_library_is_known_before_training(tmp_path, frame, monkeypatch):
    """Audit: an unknown check library failed only after the training, leaving files in DIR."""
    _no_training(monkeypatch)
    adapt_frame, _ = frame
    with pytest.raises(ValueError, match="unknown cosmic-ray library 'nope'"):
        adapt_model([adapt_frame], str(tmp_path / "out"), model="ACS-WFC", check_library="nope")
    assert not (tmp_path / "out").exists()


def test_a_failed_run_removes_the_files_it_created_and_only_those(tmp_path, frame, stand_in_library, monkeypatch):
    """Audit: a failure after the training left .NAME.candidate.safetensors and checkpoint.safetensors in DIR."""
    from astro_deepcr import adapt_check

    def calibrate(*args, **kwargs):
        raise RuntimeError("the calibration failed")

    monkeypatch.setattr(adapt_check, "calibrate", calibrate)
    adapt_frame, _ = frame
    older = {"notes.txt": b"mine", "models.json": b'{"format": 1, "models": []}', "adapt.md": b"## older\n"}
    (tmp_path / "kept").mkdir()
    for name, data in older.items():
        (tmp_path / "kept" / name).write_bytes(data)
    for folder in ("kept", "new"):
        with pytest.raises(RuntimeError, match="the calibration failed"):
            adapt_model([adapt_frame], str(tmp_path / folder), model="ACS-WFC", steps=1, batch_size=2, crop=64,
                        progress=False)
    assert {path.name: path.read_bytes() for path in (tmp_path / "kept").iterdir()} == older
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--steps", "0"], "argument --steps: must be a positive integer, not 0"),
    (["--holdout", "0.99"], "--holdout must be in [0.05, 0.9], not 0.99"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model", "ACS-WFC-F606W-2-32"], "'ACS-WFC-F606W-2-32' is a inpaint model, not a mask model"),
    (["--faint-stars", "-1"], "--faint-stars must be between 0 and 0.02 per px, not -1.0"),
    (["--check-library", "nope"], "argument --check-library: invalid choice: 'nope'"),
    (["--ext", "SCI,x"], "--ext 'SCI,x': give NAME, NAME,VERSION"),
    (["--gain", "-2"], "--gain must be a finite number > 0"),
])
def test_cli_usage_errors_exit_2_before_a_frame_is_read(tmp_path, capsys, monkeypatch, arguments, message):
    """Audit: --model nope, an inpaint model and --faint-stars -1 exited 1 with a 'ValueError:' prefix."""
    from astro_deepcr import adapt
    from astro_deepcr.cli import main

    monkeypatch.setattr(adapt, "adapt_model", None)
    assert main(["adapt", str(tmp_path / "missing.fits"), "-o", str(tmp_path / "out"), *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and "Error:" not in err and "missing.fits" not in err
    assert not (tmp_path / "out").exists()


def test_cli_names_each_frame_it_cannot_read(tmp_path, capsys, monkeypatch):
    """Audit: which of several frames lacked a gain was not said; a truncated file, --ext 1 on a file with one HDU
    and a missing extension leaked as 'error: AstropyUserWarning: ...', 'error: IndexError: ...' or a quoted
    KeyError."""
    from astropy.io import fits

    from astro_deepcr import adapt
    from astro_deepcr.cli import main

    monkeypatch.setattr(adapt, "adapt_model", None)
    image = np.full((80, 90), 100.0, np.float32)
    good, adu, truncated = (str(tmp_path / name) for name in ("good.fits", "adu.fits", "truncated.fits"))
    fits.PrimaryHDU(image, fits.Header({"BUNIT": "electron", "RDNOISE": 4.0})).writeto(good)
    fits.PrimaryHDU(image, fits.Header({"BUNIT": "ADU", "RDNOISE": 4.0})).writeto(adu)
    with open(good, "rb") as stream:
        (tmp_path / "truncated.fits").write_bytes(stream.read()[:2880 * 3])
    missing = str(tmp_path / "missing.fits")
    out = tmp_path / "out"
    assert main(["adapt", good, adu, truncated, missing, "-o", str(out)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"astro-deepcr: FAILED {adu}: data in adu need a gain to become electron (give the gain, "
                     "electrons per ADU)",
                     f"astro-deepcr: FAILED {truncated}: File may have been truncated: actual file length (8640) is "
                     "smaller than the expected size (31680)",
                     f"astro-deepcr: FAILED {missing}: [Errno 2] No such file or directory: '{missing}'",
                     "astro-deepcr: adapt: 3 of 4 frames could not be read; nothing trained"]
    assert main(["adapt", good, "-o", str(out), "--ext", "1"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == \
        f"astro-deepcr: FAILED {good}: no extension 1 (the file has 0 PRIMARY)"
    assert main(["adapt", good, "-o", str(out), "--ext", "SCI"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == \
        f"astro-deepcr: FAILED {good}: no extension SCI (the file has 0 PRIMARY)"
    assert not out.exists()


def test_cli_passes_its_options_to_adapt_model(tmp_path, monkeypatch):
    from astropy.io import fits

    from astro_deepcr import adapt
    from astro_deepcr.cli import main

    calls = []

    def fake_adapt_model(frames, output, **kwargs):
        calls.append((frames, output, kwargs))
        return str(tmp_path / "m.safetensors"), ["| table |"]

    monkeypatch.setattr(adapt, "adapt_model", fake_adapt_model)
    header = fits.Header({"BUNIT": "electron", "RDNOISE": 4.0})
    fits.PrimaryHDU(np.full((80, 90), 100.0, np.float32), header).writeto(tmp_path / "f.fits")
    assert main(["adapt", str(tmp_path / "f.fits"), "-o", str(tmp_path / "out"), "--release-stars", "--steps", "7",
                 "--faint-stars", "1e-3", "--quiet"]) == 0
    (frame,), output, kwargs = calls[0]
    assert frame.electrons.shape == (80, 90) and frame.readnoise == 4.0
    assert output == str(tmp_path / "out")
    assert kwargs["release_stars"] is True and kwargs["steps"] == 7 and kwargs["progress"] is False
    assert kwargs["faint_stars"] == 1e-3
    assert kwargs["overwrite"] is False
    assert main(["adapt", str(tmp_path / "f.fits"), "-o", str(tmp_path / "out"), "--quiet", "--overwrite"]) == 0
    assert calls[1][2]["release_stars"] is False and calls[1][2]["faint_stars"] == 0.0
    assert calls[1][2]["overwrite"] is True
    # frames of the same file name in two folders keep distinct names (in the check's table and the card)
    for folder in ("night1", "night2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "f.fits").write_bytes((tmp_path / "f.fits").read_bytes())
    assert main(["adapt", str(tmp_path / "night1" / "f.fits"), str(tmp_path / "night2" / "f.fits"), "-o",
                 str(tmp_path / "out"), "--quiet"]) == 0
    assert [frame.name for frame in calls[2][0]] == ["night1/f.fits[0]", "night2/f.fits[0]"]


def _star_field_with_hits(seed=11, fwhm=2.5):
    """Sky 100 e-, read noise 5 e-, 40 isolated Moffat stars (``fwhm`` px) and 30 compact hits, each listed."""
    from astro_deepcr.starpsf import moffat_pixels

    rng = np.random.default_rng(seed)
    image = np.full((300, 300), 100.0)
    stars, hits = [], []
    grid = [(y, x) for y in range(20, 290, 30) for x in range(20, 290, 30)]
    for k in rng.permutation(len(grid))[:40]:
        y, x = grid[k]
        centre = (y + rng.uniform(-0.5, 0.5), x + rng.uniform(-0.5, 0.5))
        image[y - 7:y + 8, x - 7:x + 8] += moffat_pixels((15, 15), (centre[0] - y + 7, centre[1] - x + 7), fwhm, 3.0,
                                                         flux=rng.uniform(2e4, 1e5))
        stars.append((y, x))
    for _ in range(30):
        y, x = (int(v) for v in rng.integers(5, 295, 2))
        if min(abs(y - sy) + abs(x - sx) for sy, sx in stars) < 12:
            continue
        image[y, x] += rng.uniform(800, 3000)
        if rng.random() < 0.5:
            image[y, x + 1] += rng.uniform(400, 1500)
        hits.append((y, x))
    image = rng.poisson(image).astype(float) + rng.normal(0, 5, image.shape)
    return image, stars, hits


def test_stars_are_released_into_the_loss_and_hits_are_not():
    from astro_deepcr.adapt import psf_explained

    image, stars, hits = _star_field_with_hits()
    flagged = np.zeros(image.shape, bool)
    for y, x in stars:
        flagged[y - 1:y + 2, x - 1:x + 2] = True  # a detector's flags on a star core
    for y, x in hits:
        flagged[y, x] = True
    explained = psf_explained(AdaptFrame("field", image, 5.0), flagged)
    assert np.mean([explained[y, x] for y, x in stars]) >= 0.9
    assert not any(explained[y, x] for y, x in hits)
    assert not explained[~flagged].any()
    # no stars to measure a PSF from: nothing is released (every flagged group stays a candidate)
    blank = np.random.default_rng(1).normal(100, 5, (200, 200))
    blank[50, 50] += 2000
    assert not psf_explained(AdaptFrame("blank", blank, 5.0), blank > 500).any()


def test_release_stars_only_takes_stars_out_of_the_candidates():
    # undersampled stars (HRC measures 1.37 px), whose cores the two detectors flag
    image, stars, hits = _star_field_with_hits(fwhm=1.3)
    frame = AdaptFrame("field", image, 5.0)
    spec = get_model("ground", kind="mask")
    kept_out = own_candidates(frame, spec)
    released = own_candidates(frame, spec, release_stars=True)
    assert not (released & ~kept_out).any()
    assert all(kept_out[y, x] and released[y, x] for y, x in hits)  # hits stay out of the loss
    flagged_stars = [(y, x) for y, x in stars if kept_out[y, x]]
    assert len(flagged_stars) >= 0.75 * len(stars)  # measured: all 40 star cores flagged
    assert np.mean([released[y, x] for y, x in flagged_stars]) <= 0.1  # measured: none left out


def _psf(fwhm=1.8, beta=3.0):
    from astro_deepcr.starpsf import StarPSF

    return StarPSF(fwhm=fwhm, beta=beta, sharpness=0.0, n_stars=30, source="stars")


def test_faint_stars_sit_at_the_detection_limit():
    """A centred source's peak is 2-30 times the noise (so its charge is that over the PSF's peak share; a draw with
    one source: the charge is that source), an off-centre one's peak lower by the PSF's sampling, the profile the
    frame's Moffat, and the count Poisson(density x area): drawn as the training scenes draw their faint stars."""
    from astro_deepcr.adapt import faint_star_charge
    from astro_deepcr.training.ground import moffat_psf, star_stamp_size

    # the share of a 1.8 px Moffat's charge in its peak pixel, from a centred source to one on a pixel corner
    # (in the training scenes' stamp, unit sum)
    size = star_stamp_size(1.8)
    centred, corner = (moffat_psf(1.8, 3.0, size, offset=(phase, phase)).max() for phase in (0.0, 0.5))
    snrs, counts = [], []
    for seed in range(60):
        n = np.random.default_rng(seed).poisson(1.0)
        charge = faint_star_charge((64, 64), 10.0, _psf(), 1.0 / 64**2, np.random.default_rng(seed))
        counts.append(n)
        if n == 0:
            assert not charge.any()
        elif n == 1:
            y, x = np.unravel_index(np.argmax(charge), charge.shape)
            if 8 <= y < 56 and 8 <= x < 56:  # the whole source inside: a 1.8 px Moffat holds ~60 % at its peak
                snrs.append(charge.sum() * centred / 10.0)
                replay = np.random.default_rng(seed)  # the draws of training.ground.add_faint_stars, in order
                replay.poisson(1.0), replay.uniform(size=2)
                assert snrs[-1] == pytest.approx(np.exp(replay.uniform(np.log(2.0), np.log(30.0))), rel=1e-6)
                assert corner - 1e-3 <= charge.max() / charge.sum() <= centred + 1e-3
                assert charge.max() / 10.0 <= snrs[-1] + 1e-6  # no pixel above a centred source's peak
    assert len(snrs) > 12
    assert min(snrs) >= 2.0 - 1e-6 and max(snrs) <= 30.0 + 1e-6 and max(snrs) > 8.0  # log-uniform over 2-30
    dense = faint_star_charge((256, 256), 10.0, _psf(), 1e-3, np.random.default_rng(1))
    from scipy import ndimage

    _, n_sources = ndimage.label(dense > 0.5)
    assert 40 <= n_sources <= 75  # 65.5 expected, fewer where two overlap


def test_faint_stars_are_negatives_drawn_from_a_stream_of_their_own(stand_in_library):
    """Without faint stars the samples are those drawn before the option; with them only the image changes (the
    stars are in the loss, unlabelled, not ignored), never on a frozen (bad or saturated) pixel."""
    rng = np.random.default_rng(5)
    shape = (96, 96)
    region = {"image": rng.normal(3000, 55, shape).astype(np.float32), "sigma": np.full(shape, 55.0, np.float32),
              "bad": np.zeros(shape, bool), "saturated": np.zeros(shape, bool), "candidates": np.zeros(shape, bool),
              "psf": _psf()}
    plain = _Samples([region], 64, 0, stand_in_library)
    starry = _Samples([region], 64, 0, stand_in_library, faint_stars=2e-3)
    changed = 0
    for index in range(6):
        image, label, ignore = plain.sample(index)
        image_s, label_s, ignore_s = starry.sample(index)
        assert np.array_equal(label, label_s) and np.array_equal(ignore, ignore_s)
        changed += int((np.abs(image_s - image) > 2 * 55).sum())
    assert changed > 20
    frozen = dict(region, saturated=np.ones(shape, bool))
    assert np.array_equal(_Samples([frozen], 64, 0, stand_in_library, faint_stars=2e-3).sample(1)[0],
                          _Samples([frozen], 64, 0, stand_in_library).sample(1)[0])
    no_stars = {key: value for key, value in region.items() if key != "psf"}
    assert np.array_equal(_Samples([no_stars], 64, 0, stand_in_library).sample(2)[0], plain.sample(2)[0])


def test_faint_stars_need_the_frames_own_stars(tmp_path):
    from astro_deepcr.adapt import frame_psf

    blank = AdaptFrame("blank sky", np.random.default_rng(0).normal(100, 5, (200, 200)), 5.0)
    with pytest.raises(ValueError, match="blank sky: faint_stars needs the frame's PSF"):
        frame_psf(blank)
    for density in (-1e-3, 0.5, float("nan")):
        with pytest.raises(ValueError, match="faint_stars must be between 0 and 0.02"):
            adapt_model([blank], str(tmp_path / "out"), faint_stars=density)
    assert not (tmp_path / "out").exists()
    image, _, _ = _star_field_with_hits(fwhm=2.0)
    psf = frame_psf(AdaptFrame("stars", image, 5.0))
    assert psf.fwhm == pytest.approx(2.0, abs=0.2)


def test_adapt_with_faint_stars_counts_the_placebos_it_flags(tmp_path, stand_in_library):
    image, _, _ = _star_field_with_hits(fwhm=2.0)
    frame = AdaptFrame("field", image, 5.0)
    path, table = adapt_model([frame], str(tmp_path), model="ground-v2", steps=2, batch_size=2, crop=64, lr=1e-6,
                              faint_stars=1e-3, progress=False)
    card = json.loads((tmp_path / "ground-v2-adapted.json").read_text())
    assert table[0].endswith("| faint point sources flagged |")
    rows = [line for line in table if line.startswith("| field (held out) |")]
    assert len(rows) == 5 and all(0.0 <= float(row.split("|")[7]) <= 1.0 for row in rows)
    placebos = card["metrics"]["placebos"]
    assert set(placebos) == {"base", "adapted", "adapted_only", "base_only", "p_adapted_flags_fewer"}
    # lr 1e-6 for 2 steps barely moves the weights: at the base model's flags the two flag the same placebos
    assert placebos["adapted"] == pytest.approx(placebos["base"], abs=0.02)
    assert "faint point sources per px of each frame's own PSF as negatives" in card["training_data"]
    assert any(line.startswith("Faint point sources of the frame's PSF") for line in table)


def test_the_check_table_reads_the_placebos_the_right_way_round():
    """Placebos flagged only by the base model make the adapted model's p of flagging fewer small."""
    from astro_deepcr.adapt_check import ADAPTED_AT_BASE_FLAGS, check_table

    def run(found):
        names = ["base", "adapted", ADAPTED_AT_BASE_FLAGS]
        return {"detectors": {name: {"flags_original": 10, "objects": 40, "object_recall_new": float(np.mean(found[k]))}
                              for k, name in enumerate(names)},
                "per_cr": {"found_new": {name: np.asarray(found[k], bool) for k, name in enumerate(names)}}}

    crs = run([[1] * 40, [1] * 40, [1] * 40])
    base_flags = [1] * 12 + [0] * 28  # the base model flags 12 placebos, the adapted one (at its flags) 1 of them
    adapted_flags = [1] + [0] * 39
    lines, verdict = check_table([("part", crs, run([base_flags, adapted_flags, adapted_flags]))], "base-model")
    assert verdict["placebos"]["base_only"] == 11 and verdict["placebos"]["adapted_only"] == 0
    assert verdict["placebos"]["p_adapted_flags_fewer"] == pytest.approx(0.5**11, abs=1e-4)  # rounded to 4 places
    assert verdict["placebos"]["base"] == 0.3 and verdict["placebos"]["adapted"] == 0.025
    assert lines[2].endswith("| 0.300 |") and "0 only by the adapted model, 11 only by base-model" in lines[-1]
    _, reverse = check_table([("part", crs, run([adapted_flags, base_flags, base_flags]))], "base-model")
    assert reverse["placebos"]["p_adapted_flags_fewer"] == 1.0

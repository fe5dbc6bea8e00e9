# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""bfloat16 validated on the machine that runs it (issue #29): cache, verdict, the choice under "auto", the CLI."""

import json
import os

import numpy as np
import pytest
from astropy.io import fits

from astro_deepcr import DeepCR, bf16_check, conf, engine, openvino_backend, zoo
from astro_deepcr.cli import main
from astro_deepcr.detection import precision_verdict
from astro_deepcr.provenance import record_run

from .verdicts import figures as _figures
from .verdicts import provide_verdict


@pytest.fixture
def cache(verdict_cache):
    """An empty verdict folder, nothing remembered by this process."""
    return os.environ[bf16_check.CACHE_ENV]


def _fake_detect(flip_every=0, calls=None):
    """A detection whose bfloat16 mask differs from float32 on every ``flip_every``-th CR pixel."""
    def detect(image, bad, precision):
        if calls is not None:
            calls.append(precision)
        probability = np.clip(np.asarray(image, np.float32) / (np.nanmax(image) + 1), 0, 1)
        mask = image > np.nanpercentile(image, 99.0)
        if precision == "bfloat16" and flip_every:
            ys, xs = np.nonzero(mask)
            mask = mask.copy()
            mask[ys[::flip_every], xs[::flip_every]] = False
        return probability, mask
    return detect


def test_cache_round_trip_atomic_and_keyed(cache):
    spec = zoo.get_model("ACS-WFC")
    key = bf16_check.verdict_key(spec, "torch", engine.resolve_device("cpu"))
    assert key["sha256"] == spec.sha256 and key["runtime"].startswith("torch ")
    assert bf16_check.cached_verdict(key) is None
    path = bf16_check.store_verdict(key, _figures())
    assert os.path.dirname(path) == cache and os.listdir(cache) == [os.path.basename(path)]  # no temp left
    assert bf16_check.cached_verdict(key)["hrc_flipped_pixels"] == 40
    # another runtime version or another model's weights: another entry
    assert bf16_check.cached_verdict({**key, "runtime": "torch 0.0.1"}) is None
    assert bf16_check.cached_verdict({**key, "sha256": "0" * 64}) is None


@pytest.mark.parametrize("damage", ["", "{not json", '{"key": 1}', '{"key": null, "result": {}}'])
def test_a_corrupt_entry_means_validate_again(cache, damage):
    key = bf16_check.verdict_key(zoo.get_model("ACS-WFC"), "torch", engine.resolve_device("cpu"))
    path = bf16_check.store_verdict(key, _figures())
    with open(path, "w") as stream:
        stream.write(damage)
    assert bf16_check.cached_verdict(key) is None
    calls = []
    result, fresh = bf16_check.verdict(zoo.get_model("ACS-WFC"), "torch", engine.resolve_device("cpu"),
                                       _fake_detect(calls=calls))
    assert fresh and calls and result["passed"] is True
    with open(path) as stream:
        assert json.load(stream)["key"] == key  # rewritten whole


def test_validation_limits_and_a_second_process_pays_nothing(cache, caplog):
    spec, device = zoo.get_model("ACS-WFC"), engine.resolve_device("cpu")
    calls = []
    result, fresh = bf16_check.verdict(spec, "torch", device, _fake_detect(flip_every=100, calls=calls))
    assert fresh and result["passed"] and 0.005 < result["hrc_flipped_fraction"] <= 0.011
    assert result["seconds"] > 0 and len(calls) == 8  # 2 flip frames + 2 TPR frames, at both precisions
    again, fresh = bf16_check.verdict(spec, "torch", device, _fake_detect(calls=calls))
    assert not fresh and again == result and len(calls) == 8  # this process: remembered
    bf16_check._memo.clear()  # another process: read from the cache, nothing measured
    again, fresh = bf16_check.verdict(spec, "torch", device, _fake_detect(calls=calls))
    assert not fresh and again == result and len(calls) == 8
    # 1 flip in 50 (2 %) fails, and the log gives the figures
    failed, _ = bf16_check.verdict(spec, "torch", device, _fake_detect(flip_every=50), refresh=True)
    assert not failed["passed"] and failed["hrc_flipped_fraction"] > bf16_check.FLIP_LIMIT
    assert "failed here" in caplog.text and "CR pixels flipped" in caplog.text and "float32 under" in caplog.text


def test_no_real_frame_no_pass_nothing_measured_nothing_cached(cache, monkeypatch, caplog):
    monkeypatch.setattr(bf16_check, "real_frame", lambda: None)
    calls = []
    result, _ = bf16_check.verdict(zoo.get_model("ACS-WFC"), "torch", engine.resolve_device("cpu"),
                                   _fake_detect(calls=calls))
    assert result["passed"] is False and result["real_frame"] is False and calls == []
    assert not os.path.exists(cache) or os.listdir(cache) == []
    assert "not installed" in bf16_check.verdict_text(result) and "float32 under" in caplog.text
    assert "not installed" in bf16_check.format_table([("ACS-WFC", result, True)])


def test_tpr_at_fpr():
    probability = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    truth = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    assert bf16_check._tpr_at_fpr(probability, truth, 0.0) == pytest.approx(2 / 3)  # above 0.7
    assert bf16_check._tpr_at_fpr(probability, truth, 1 / 7) == pytest.approx(1.0)  # above 0.5


@pytest.fixture
def pretend_cpu(monkeypatch):
    def set_native(value):
        monkeypatch.setattr(engine, "_cpu_native_bfloat16", lambda: value)
    return set_native


def test_auto_without_native_bf16_never_validates(cache, pretend_cpu, monkeypatch):
    pretend_cpu(False)
    monkeypatch.setattr(bf16_check, "validate", lambda *a: pytest.fail("validated without native bfloat16"))
    assert precision_verdict(zoo.get_model("ACS-WFC"), "auto", "cpu") == ("float32", "no native bfloat16")
    assert precision_verdict(zoo.get_model("ACS-WFC"), "bfloat16", "cpu") == ("bfloat16", "requested")
    assert not os.path.exists(cache) or os.listdir(cache) == []


@pytest.mark.parametrize("passed", [True, False])
def test_auto_follows_the_verdict_torch_route(cache, pretend_cpu, monkeypatch, passed):
    pretend_cpu(True)
    monkeypatch.setattr(bf16_check, "validate", lambda *a: pytest.fail("a provided verdict was measured again"))
    with conf.set_temp("backend", "torch"):
        provide_verdict("ACS-WFC", "torch", passed)
        precision, verdict = precision_verdict(zoo.get_model("ACS-WFC"), "auto", "cpu")
        assert precision == ("bfloat16" if passed else "float32")
        figures = f"(HRC {40 if passed else 90}/4000 flipped)"
        assert verdict == f"{'passed' if passed else 'failed'} here 2026-12-04 {figures}"
        assert DeepCR("ACS-WFC", device="cpu").precision_used == precision


def test_auto_follows_the_verdict_openvino_route(cache, pretend_cpu, monkeypatch):
    """The OpenVINO route on any CPU: a verdict provided for OpenVINO, the plugin said to compute bfloat16."""
    if not openvino_backend.available():
        pytest.skip("openvino is not installed")
    pretend_cpu(True)
    monkeypatch.setattr(openvino_backend, "native_precisions", lambda: {"float32", "bfloat16"})
    monkeypatch.setattr(bf16_check, "validate", lambda *a: pytest.fail("a provided verdict was measured again"))
    with conf.set_temp("backend", "auto"):
        provide_verdict("ACS-WFC", "openvino", True)
        assert precision_verdict(zoo.get_model("ACS-WFC"), "auto", "cpu")[0] == "bfloat16"
        bf16_check._memo.clear()
        provide_verdict("ACS-WFC", "openvino", False)
        assert precision_verdict(zoo.get_model("ACS-WFC"), "auto", "cpu")[0] == "float32"
        # a torch verdict says nothing about OpenVINO
        bf16_check._memo.clear()
        os.remove(provide_verdict("ACS-WFC", "openvino", True))
        provide_verdict("ACS-WFC", "torch", True)
        calls = []
        monkeypatch.setattr(bf16_check, "validate", lambda detect: calls.append(1) or _figures(90, False))
        assert precision_verdict(zoo.get_model("ACS-WFC"), "auto", "cpu")[0] == "float32" and calls == [1]


def test_the_header_says_which_verdict(cache, pretend_cpu):
    pretend_cpu(True)
    from astro_deepcr.detection import detect

    image = np.random.default_rng(3).normal(60, 5, (64, 64)).astype("f4")
    with conf.set_temp("backend", "torch"):
        provide_verdict("ACS-WFC", "torch", True)
        found = detect(image, spec="ACS-WFC", device="cpu", progress=False)
    header = fits.Header()
    record_run(header, "flag", **found.provenance)
    assert header["DCRPREC"] == "bfloat16"
    assert header["DCRPVAL"] == "passed here 2026-12-04 (HRC 40/4000 flipped)"


def test_cli_without_native_bf16(cache, pretend_cpu, capsys):
    pretend_cpu(False)
    assert main(["models", "--validate-precision", "ACS-WFC"]) == 0
    assert "no native bfloat16" in capsys.readouterr().out
    assert not os.path.exists(cache) or os.listdir(cache) == []


def test_cli_prints_the_table(cache, pretend_cpu, capsys, monkeypatch):
    from astro_deepcr import detection

    pretend_cpu(True)
    monkeypatch.setattr(detection, "bf16_verdict", lambda spec, device, refresh: (_figures(90, False), True))
    assert main(["models", "--validate-precision", "ACS-WFC", "decam"]) == 1  # one failed
    out = capsys.readouterr().out
    assert "ACS-WFC" in out and "decam" in out and "FAIL" in out and "90/4000 (2.25%)" in out
    assert main(["models", "list"]) == 0  # the listing is untouched


@pytest.mark.slow
def test_the_whole_mechanism_on_torch(cache, pretend_cpu, caplog):
    """The real validation, bfloat16 emulated by torch where the CPU lacks it (the same rounding): ACS-WFC passes
    (measured on a Xeon with AMX, torch 2.13: see docs/performance.rst), announced once; a second process pays
    nothing."""
    if bf16_check.real_frame() is None:
        pytest.skip("spherical_geometry's HRC frame is not installed")
    pretend_cpu(True)
    with conf.set_temp("backend", "torch"):
        result = precision_verdict(zoo.get_model("ACS-WFC"), "auto", "cpu")
        assert result[0] == "bfloat16" and result[1].startswith("passed here")
        assert caplog.text.count("validating bfloat16 for model ACS-WFC") == 1
        bf16_check._memo.clear()
        caplog.clear()
        assert precision_verdict(zoo.get_model("ACS-WFC"), "auto", "cpu") == result
        assert "validating" not in caplog.text

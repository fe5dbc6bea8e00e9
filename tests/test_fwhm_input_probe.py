# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Rule R28's probe (``benchmarks/fwhm_input_probe.py``): a network told the frame's FWHM starts as ``ground-v2``
and runs through the detection core like any model (docs/ground_search.rst, "Telling the network the seeing")."""

import numpy as np
import pytest
import torch

import astro_deepcr.detection as detection


@pytest.fixture
def probe(benchmark_script, monkeypatch):
    module = benchmark_script("fwhm_input_probe")
    # the probe swaps the core's network call: restore it after each test
    monkeypatch.setattr(detection, "run_network", detection.run_network)
    monkeypatch.setattr(detection, "backend_used", detection.backend_used)
    return module


def _ground_v2():
    from astro_deepcr.training.trainer import trainable_copy
    from astro_deepcr.zoo import get_model

    return trainable_copy(get_model("ground-v2", kind="mask")).eval()


def test_the_second_input_starts_silent_and_follows_the_fwhm(probe):
    assert probe.condition(2.7) == 0.0
    assert probe.condition(0.8) == pytest.approx(-1216.4, abs=0.1)  # 1000 ln(0.8 / 2.7)
    base = _ground_v2()
    wider = probe._two_input(base).eval()
    image = torch.from_numpy(np.random.default_rng(3).normal(300.0, 20.0, (1, 1, 64, 64)).astype(np.float32))
    with torch.inference_mode():
        expected = base(image)
        for fwhm in (0.8, 7.5):
            plane = torch.full_like(image, probe.condition(fwhm))
            torch.testing.assert_close(wider(torch.cat([image, plane], 1)), expected, rtol=0, atol=0)


def test_the_core_runs_a_probe_network_with_the_frames_fwhm(probe, tmp_path):
    from astro_deepcr.zoo import get_model, save_network, unregister_model

    wider = probe._two_input(_ground_v2())
    with torch.no_grad():
        wider.inc[0].weight[:, 1] = 1e-3  # make the second input count: the output must then depend on it
    path = tmp_path / "P.safetensors"
    save_network(wider, str(path), {"name": "P", "arch": "2-32", "conditioned": "test"})
    probe.write_card(path, conditioned=True)
    spec = get_model(str(path))
    try:
        _check_routing(probe, spec)
    finally:
        unregister_model(spec.name)  # other tests run every registered model


def _check_routing(probe, spec):
    from astro_deepcr.zoo import get_model

    image = np.random.default_rng(4).normal(500.0, 25.0, (96, 96)).astype(np.float32)
    image[40, 40] += 3000.0
    backend_before = detection.backend_used(get_model("ground-v2"))
    probe.route_probe_networks()
    probability = {}
    for fwhm in (0.8, 8.0):
        probe._current_fwhm["value"] = fwhm
        probability[fwhm] = detection.network_probability(image, np.zeros(image.shape, bool), spec, device="cpu")
    assert probability[0.8].shape == image.shape
    assert np.abs(probability[0.8] - probability[8.0]).max() > 0.01
    assert detection.backend_used(spec) == "torch (R28 probe)"
    assert detection.backend_used(get_model("ground-v2")) == backend_before  # other models untouched

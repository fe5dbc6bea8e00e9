# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Nothing in the package reaches for the network: loading models and cleaning work with sockets disabled."""

import socket
import urllib.request

import numpy as np
import pytest

from astro_deepcr import DeepCR, list_models, zoo


@pytest.fixture
def network_attempts(monkeypatch):
    """Refuse every way out to the network and record each attempt (even one a caller catches and hides)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_the_guard_sees_a_connection_attempt(network_attempts):
    # the guard itself can fail: a download, even one whose error is swallowed, is recorded
    try:
        urllib.request.urlopen("http://example.invalid/model.safetensors", timeout=1)
    except Exception:  # noqa: BLE001 (what a careless fallback would do)
        pass
    assert len(network_attempts) >= 1


def test_models_load_and_run_offline(network_attempts):
    zoo._network_cache.clear()
    image = np.random.default_rng(0).normal(60, 8, (40, 40)).astype("f4")
    image[20, 10:16] += 1500.0  # a CR track, so the run has something to find
    for name in list_models("mask"):
        mask = DeepCR(name, device="cpu").mask(image)
        assert mask.shape == image.shape
    assert len(zoo._network_cache) >= len(list_models("mask"))  # the weights really were loaded, from disk
    mask, cleaned = DeepCR("ACS-WFC", device="cpu").clean(image, inpaint="ACS-WFC-F606W-3-32")
    assert mask[20, 10:16].all() and np.abs(cleaned[20, 10:16] - 60).max() < 50
    assert network_attempts == []  # nothing tried the network, not even behind a try/except

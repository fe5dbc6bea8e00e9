# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Nothing in the package reaches for the network: loading models and cleaning work with sockets disabled."""

import socket

import numpy as np
import pytest

from astro_deepcr import DeepCR, list_models, zoo


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_models_load_and_run_offline(no_network):
    zoo._network_cache.clear()
    image = np.random.default_rng(0).normal(60, 8, (40, 40)).astype("f4")
    for name in list_models("mask"):
        DeepCR(name, device="cpu").mask(image)
    DeepCR("ACS-WFC", device="cpu").clean(image, inpaint="ACS-WFC-F606W-3-32")

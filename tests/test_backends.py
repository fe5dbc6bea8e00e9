# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Inference backends: torch everywhere, OpenVINO on the CPU where the optional extra is installed."""

import socket
import sys

import numpy as np
import pytest

from astro_deepcr import DeepCR, conf, engine, get_model, zoo
from astro_deepcr.nets import FLOAT32_LAYERS, UNet

from .test_precision import _hrc_frame


@pytest.fixture
def without_openvino(monkeypatch):
    """A fresh environment without the extra: ``import openvino`` fails."""
    monkeypatch.setitem(sys.modules, "openvino", None)
    zoo.clear_network_cache()
    yield
    zoo.clear_network_cache()


def _image(size=96, seed=3):
    rng = np.random.default_rng(seed)
    image = rng.normal(60, 8, (size, size)).astype("f4")
    image[size // 2, 10:16] += 1500.0  # a CR track
    return image


# -- choice of backend (no OpenVINO needed) ------------------------------------------------------------------------

def test_default_backend_is_auto():
    assert conf.backend == "auto"
    assert engine.BACKENDS == ("auto", "torch", "openvino")


def test_backend_falls_back_to_torch_without_openvino(without_openvino):
    assert engine.resolve_backend("auto", "cpu") == "torch"
    assert engine.resolve_backend(None, "cpu") == "torch"
    net = zoo.load_network("ACS-WFC", device="cpu", precision="float32")
    assert isinstance(net, UNet) and engine.backend_of(net) == "torch"
    assert engine.backend_label(net).startswith("torch ")
    mask = DeepCR("ACS-WFC", device="cpu", progress=False).mask(_image())
    assert mask[48, 10:16].all() and mask.sum() < 40
    with pytest.raises(ValueError, match=r"pip install 'astro_deepcr\[openvino\]'"):
        engine.resolve_backend("openvino", "cpu")


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match=r"backend must be one of \['auto', 'torch', 'openvino'\]"):
        engine.resolve_backend("onnx", "cpu")


def test_explicit_torch_backend_is_torch():
    net = zoo.load_network("ACS-WFC", device="cpu", precision="float32", backend="torch")
    assert engine.backend_of(net) == "torch"
    with conf.set_temp("backend", "torch"):
        assert engine.resolve_backend(None, "cpu") == "torch"


def test_bf16_validation_is_per_backend():
    spec = get_model("ACS-WFC")
    assert engine.bf16_validated(spec, "torch") is (spec.auto_precision == "bfloat16")
    validation = {**spec.bf16_validation, "backends": {"openvino": {"passed": True}}}
    passed = zoo.ModelSpec(**{**spec.to_dict(), "name": "ov-validated", "bf16_validation": validation})
    assert engine.bf16_validated(passed, "openvino") is True
    failed = zoo.ModelSpec(**{**spec.to_dict(), "name": "ov-failed",
                              "bf16_validation": {**validation, "backends": {"openvino": {"passed": False}}}})
    assert engine.bf16_validated(failed, "openvino") is False
    # a card that records nothing for a backend never runs bfloat16 on it
    assert engine.bf16_validated(zoo.ModelSpec(**{**spec.to_dict(), "bf16_validation": {}}), "openvino") is False


# -- OpenVINO ------------------------------------------------------------------------------------------------------

@pytest.fixture
def openvino_backend():
    pytest.importorskip("openvino")
    from astro_deepcr import openvino_backend

    zoo.clear_network_cache()
    yield openvino_backend
    zoo.clear_network_cache()


def test_auto_is_openvino_on_the_cpu_where_installed(openvino_backend):
    assert engine.resolve_backend("auto", "cpu") == "openvino"
    net = zoo.load_network("ACS-WFC", device="cpu", precision="float32")
    assert engine.backend_of(net) == "openvino"
    assert engine.backend_label(net) == f"openvino {openvino_backend.version()}"
    assert net.precision == "float32"
    # OpenVINO only for what it computes natively: float16 never, bfloat16 only on bf16 CPUs
    assert engine.backend_of(zoo.load_network("ACS-WFC", device="cpu", precision="float16")) == "torch"
    native = "bfloat16" in openvino_backend.native_precisions()
    bf16 = zoo.load_network("ACS-WFC", device="cpu", precision="bfloat16")
    assert engine.backend_of(bf16) == ("openvino" if native else "torch")
    if not native:
        with pytest.raises(ValueError, match="OpenVINO does not compute bfloat16 on this CPU"):
            zoo.load_network("ACS-WFC", device="cpu", precision="bfloat16", backend="openvino")


@pytest.mark.parametrize("name", ["ACS-WFC", "WFC3-UVIS", "ACS-WFC-F606W-3-32"])
def test_openvino_float32_equals_torch(openvino_backend, name):
    """Batch-norm and weight-norm masks, and a depth-3 two-channel inpainting network, on odd shapes."""
    spec = get_model(name)
    inputs = np.random.default_rng(5).normal(0.5, 0.3, (1 if spec.kind == "mask" else 2, 150, 203)).astype("f4")
    ours = zoo.load_network(spec, device="cpu", precision="float32", backend="openvino")
    torch_net = zoo.load_network(spec, device="cpu", precision="float32", backend="torch")
    found = engine.run_tiled(ours, inputs, tile_size=64, batch_size=2, progress=False)
    expected = engine.run_tiled(torch_net, inputs, tile_size=64, batch_size=2, progress=False)
    # measured: max difference 2e-6 (mask probability) and 4e-6 relative (inpainting)
    assert np.abs(found - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_one_compiled_model_serves_every_tile_shape(openvino_backend):
    net = zoo.load_network("ACS-WFC", device="cpu", precision="float32", backend="openvino")
    before = len(zoo._network_cache)  # trained network + the converted model
    inputs = np.zeros((1, 100, 100), "f4")  # interior and edge tiles of several shapes
    engine.run_tiled(net, inputs, tile_size=64, threads=1, progress=False)
    assert len(zoo._network_cache) == before + 1
    engine.run_tiled(net, np.zeros((1, 37, 150), "f4"), tile_size=64, threads=1, progress=False)
    assert len(zoo._network_cache) == before + 1  # other shapes compile nothing
    engine.run_tiled(net, inputs, tile_size=64, threads=2, progress=False)
    assert len(zoo._network_cache) == before + 2  # one per thread count
    assert zoo.clear_network_cache() == before + 2


def test_openvino_network_refuses_another_precision(openvino_backend):
    net = zoo.load_network("ACS-WFC", device="cpu", precision="float32", backend="openvino")
    with pytest.raises(ValueError, match="runs float32, not bfloat16"):
        engine.run_tiled(net, np.zeros((1, 16, 16), "f4"), precision="bfloat16", progress=False)


def test_first_convolution_and_head_marked_float32_under_reduced_precision(openvino_backend):
    from astro_deepcr.nets import fold_batchnorm

    trained = zoo.load_network("ACS-WFC")
    marked = openvino_backend.convert(fold_batchnorm(trained), FLOAT32_LAYERS).get_ordered_ops()
    kept = {openvino_backend.layer_of(op.get_friendly_name()) for op in marked
            if openvino_backend.keeps_float32(op)}
    assert kept == {"inc.0", "head"}
    plain = openvino_backend.convert(fold_batchnorm(trained)).get_ordered_ops()
    assert not any(openvino_backend.keeps_float32(op) for op in plain)
    with pytest.raises(ValueError, match=r"no OpenVINO operation of layer\(s\) \['nope'\]"):
        openvino_backend.convert(fold_batchnorm(trained), ["nope"])


def test_runtime_precision_of_the_first_convolution(openvino_backend):
    """What the CPU plugin really runs: first convolution and head float32, the rest bfloat16 (bf16 CPUs only:
    elsewhere OpenVINO computes float32 whatever the hint, and load_network does not give it bfloat16)."""
    if "bfloat16" not in openvino_backend.native_precisions():
        pytest.skip("this CPU has no native bfloat16 (OpenVINO OPTIMIZATION_CAPABILITIES lacks BF16)")
    net = zoo.load_network("ACS-WFC", device="cpu", precision="bfloat16", backend="openvino")
    precisions = net.runtime_precisions((1, 1, 64, 64))
    assert precisions["inc.0"] == precisions["head"] == "f32"
    assert precisions["inc.3"] == "bf16" and precisions["down.0.1.0"] == "bf16"


def test_openvino_float32_runtime_is_float32_everywhere(openvino_backend):
    net = zoo.load_network("ACS-WFC", device="cpu", precision="float32", backend="openvino")
    precisions = net.runtime_precisions((1, 1, 64, 64))
    assert set(precisions) >= {"inc.0", "inc.3", "up.0.up", "head"}
    assert set(precisions.values()) == {"f32"}


def test_openvino_reaches_for_no_network(openvino_backend, monkeypatch):
    """Conversion and inference with sockets refused; OpenVINO's telemetry is never started."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args}")

    for owner, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection"),
                        (socket, "getaddrinfo")):
        monkeypatch.setattr(owner, name, refuse)
    telemetry = pytest.importorskip("openvino_telemetry")
    monkeypatch.setattr(telemetry, "Telemetry", lambda *a, **k: attempts.append("telemetry") or refuse())
    mask = DeepCR("ACS-WFC", device="cpu", progress=False).mask(_image())
    assert mask[48, 10:16].all()
    assert attempts == []


def _benchmark_frame():
    from astro_deepcr.training.simulate import simulate_exposure

    # the 2048 x 2048 frame of benchmarks/bench_cpu.py
    return simulate_exposure((2048, 2048), "extragalactic", exptime=500.0, sky=60.0, read_noise=4.0, seed=2024)["image"]


@pytest.mark.slow
@pytest.mark.parametrize("frame", ["hrc", "benchmark"])
def test_openvino_float32_masks_identical_to_torch(openvino_backend, frame):
    image, bad = _hrc_frame() if frame == "hrc" else (_benchmark_frame(), None)
    masks = {}
    for backend in ("torch", "openvino"):
        with conf.set_temp("backend", backend):
            masks[backend] = DeepCR("ACS-WFC", device="cpu", precision="float32", progress=False).mask(image,
                                                                                                      inmask=bad)
    assert masks["torch"].sum() > 1000
    np.testing.assert_array_equal(masks["openvino"], masks["torch"])

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Weights files recognised by their own structure (issue #31): a saved model always loads back, a pickle never."""

import json
import pickle

import numpy as np
import pytest
import torch

from astro_deepcr import DeepCR, weights, zoo
from astro_deepcr.nets import mask_net

#: (kind, depth, width, norm) of every shipped model
SHIPPED = sorted({(s.kind, s.depth, s.width, s.norm) for s in map(zoo.get_model, zoo.list_models())})


def _header_length(path):
    with open(path, "rb") as stream:
        return int.from_bytes(stream.read(8), "little")


def _save_with_header_length(net, path, remainder):
    """Save ``net`` with metadata padded until the safetensors header length is ``remainder`` modulo 256."""
    for padding in range(300):
        weights.save_network(net, path, {"name": "padded", "padding": "x" * padding})
        if _header_length(path) % 256 == remainder:
            return
    raise AssertionError(f"no padding gives a header length of {remainder} modulo 256")


def _untrained(kind, depth, width, norm, seed=0):
    torch.manual_seed(seed)
    spec = zoo.ModelSpec(name="probe", kind=kind, depth=depth, width=width, norm=norm, file="-", sha256="-")
    net = zoo.build_network(spec).eval()
    with torch.no_grad():  # untrained BatchNorm statistics are trivial: give them values a round trip must keep
        for name, buffer in net.named_buffers():
            if name.endswith(("running_mean", "running_var")):
                buffer.copy_(torch.rand_like(buffer) + 0.5)
    return net


def _output(net, kind):
    channels = 1 if kind == "mask" else 2
    image = torch.from_numpy(np.random.default_rng(1).normal(size=(1, channels, 32, 40)).astype("f4"))
    with torch.no_grad():
        return net(image).numpy()


def test_shipped_architectures_are_known():
    assert ("mask", 2, 32, "batch") in SHIPPED and ("mask", 2, 32, "weight") in SHIPPED
    assert ("inpaint", 3, 32, "batch") in SHIPPED and ("mask", 2, 4, "batch") in SHIPPED


@pytest.mark.parametrize("metadata", ["none", "short", "header 128 mod 256"])
@pytest.mark.parametrize("arch", SHIPPED, ids=["{}-{}-{}-{}".format(*a) for a in SHIPPED])
def test_round_trip_of_every_shipped_architecture(tmp_path, arch, metadata):
    kind, depth, width, norm = arch
    net = _untrained(*arch)
    path = tmp_path / "trained.safetensors"
    if metadata == "none":
        sha = weights.save_network(net, path)
    elif metadata == "short":
        sha = weights.save_network(net, path, {"name": "trained", "arch": f"{depth}-{width}"})
    else:
        _save_with_header_length(net, path, 128)
        sha = zoo.file_sha256(path)
        assert path.read_bytes()[0] == 0x80  # the first byte that used to be taken for a pickle marker
    assert weights.weights_file_format(path) == "safetensors"
    spec = zoo.ModelSpec(name=f"round-trip-{kind}-{depth}-{width}-{norm}-{metadata}", kind=kind, depth=depth,
                         width=width, norm=norm, file=str(path), sha256=sha)
    loaded = zoo.load_network(spec)
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    np.testing.assert_array_equal(_output(loaded, kind), _output(net, kind))


def test_a_trained_model_with_its_card_gives_the_same_probabilities(tmp_path):
    """The report of #31: save_network + card beside it, then DeepCR(mask=path), header length 3712 = 0x0E80."""
    net = _untrained("mask", 2, 32, "batch", seed=3)
    path = tmp_path / "m.safetensors"
    _save_with_header_length(net, path, 128)
    (tmp_path / "m.json").write_text(json.dumps({"name": "m-test", "kind": "mask", "depth": 2, "width": 32,
                                                 "threshold": 0.5}))
    image = np.random.default_rng(2).normal(100.0, 10.0, size=(48, 56)).astype("f4")
    model = DeepCR(mask=str(path), device="cpu", precision="float32")  # the network's own arithmetic
    with torch.no_grad():
        expected = net(torch.from_numpy(image)[None, None])[0, 0].numpy()
    with pytest.warns(Warning):  # an untrained network is outside any model's domain
        probability = model.probability(image)
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-5)


def _spec_for(path, name):
    return zoo.ModelSpec(name=name, kind="mask", depth=2, width=4, file=str(path), sha256=zoo.file_sha256(path))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_real_pickle_is_refused(tmp_path, protocol):
    path = tmp_path / "pickled.safetensors"
    path.write_bytes(pickle.dumps({k: v.numpy() for k, v in mask_net(2, 4).state_dict().items()}, protocol))
    assert weights.weights_file_format(path) == "pickle"
    with pytest.raises(zoo.ModelFileError, match="model 'pickled': .* looks like a pickle / torch.save file"):
        zoo.load_network(_spec_for(path, "pickled"))


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch.save zip", "legacy torch.save"])
def test_torch_save_is_refused(tmp_path, zip_format):
    path = tmp_path / "saved.safetensors"
    torch.save(mask_net(2, 4).state_dict(), path, _use_new_zipfile_serialization=zip_format)
    assert weights.weights_file_format(path) == ("zip" if zip_format else "pickle")
    with pytest.raises(zoo.ModelFileError, match="model 'saved': .* looks like a pickle / torch.save file"):
        zoo.load_network(_spec_for(path, "saved"))


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "unknown"),
    (b"hello", "unknown"),
    ((2).to_bytes(8, "little") + b"{}", "safetensors"),
    ((3).to_bytes(8, "little") + b"{}", "unknown"),             # header longer than the file
    ((2).to_bytes(8, "little") + b"[]", "unknown"),             # header is not a JSON object
    (b"\x80" + (0).to_bytes(7, "little") + b"{" + b" " * 200, "safetensors"),  # 128-byte header
    (b"\x80\x04\x95" + b"\x00" * 20, "pickle"),
    (b"PK\x03\x04" + b"\x00" * 20, "zip"),
])
def test_weights_file_format(tmp_path, content, expected):
    path = tmp_path / "file"
    path.write_bytes(content)
    assert weights.weights_file_format(path) == expected


def test_a_file_that_is_neither_is_refused_without_loading(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes((10**6).to_bytes(8, "little") + b"{" + b" " * 100)
    with pytest.raises(zoo.ModelFileError, match="model 'junk': cannot read .* as safetensors"):
        zoo.load_network(_spec_for(path, "junk"))

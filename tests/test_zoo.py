# Licensed under a 3-clause BSD style license - see LICENSE.rst
import json
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import torch
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr import DeepCR, zoo
from astro_deepcr.nets import mask_net

PUBLISHED = {
    "mask": ["ACS-WFC", "ACS-WFC-F435W", "ACS-WFC-F606W", "ACS-WFC-F814W", "ACS-WFC-F606W-2-4", "WFC3-UVIS",
             "decam"],
    "inpaint": ["ACS-WFC-F606W-2-32", "ACS-WFC-F606W-3-32"],
}


def test_all_published_models_are_registered():
    for kind, names in PUBLISHED.items():
        assert set(names) <= set(zoo.list_models(kind))
    assert set(zoo.list_models()) >= set(PUBLISHED["mask"] + PUBLISHED["inpaint"])


@pytest.mark.parametrize("name", PUBLISHED["mask"] + PUBLISHED["inpaint"])
def test_every_builtin_model_loads_with_verified_checksum(name):
    spec = zoo.get_model(name)
    assert zoo.file_sha256(spec.file) == spec.sha256
    net = zoo.load_network(name)
    assert net.depth == spec.depth and net.width == spec.width
    assert not net.training
    assert spec.citation and spec.provenance and spec.units in ("electron", "adu")


def test_model_architectures_and_normalisation():
    assert zoo.get_model("ACS-WFC-F606W-2-4").arch == "2-4"
    assert zoo.get_model("ACS-WFC-F606W-2-4").scale == 100
    assert zoo.get_model("ACS-WFC-F606W-3-32").arch == "3-32"
    uvis = zoo.get_model("WFC3-UVIS")
    assert (uvis.norm, uvis.normalisation) == ("weight", "meanstd")
    assert zoo.get_model("decam").units == "adu"


def test_unknown_model_and_wrong_kind():
    with pytest.raises(ValueError, match="unknown model 'ACS-HRC'.*ACS-WFC"):
        zoo.get_model("ACS-HRC")
    with pytest.raises(ValueError, match="is a inpaint model, not a mask model"):
        zoo.get_model("ACS-WFC-F606W-2-32", kind="mask")
    with pytest.raises(TypeError, match="model name must be a string"):
        zoo.get_model(3)
    with pytest.raises(ValueError, match="unknown model"):
        DeepCR(mask="nonsense")


def test_model_info_prints_the_card(capsys):
    card = zoo.model_info("ACS-WFC")
    printed = capsys.readouterr().out
    assert card in printed
    for text in ["ACS-WFC", "deepCR-mask", "UNet 2-32", "electron", "0.5", zoo.get_model("ACS-WFC").sha256]:
        assert text in card


def _copy_spec(tmp_path, name="ACS-WFC", **changes):
    spec = zoo.get_model(name)
    target = tmp_path / pathlib.Path(spec.file).name
    shutil.copy(spec.file, target)
    fields = spec.to_dict() | {"file": str(target), "name": f"test-{name}-{tmp_path.name}"} | changes
    return zoo.ModelSpec(**fields), target


def test_checksum_mismatch_names_the_model(tmp_path):
    spec, path = _copy_spec(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(zoo.ModelFileError, match=f"model '{spec.name}': checksum mismatch"):
        zoo.load_network(spec)


def test_truncated_file_is_rejected(tmp_path):
    spec, path = _copy_spec(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(zoo.ModelFileError, match="checksum mismatch"):
        zoo.load_network(spec)
    # even with a matching checksum, a truncated file gives a clear error
    spec = zoo.ModelSpec(**(spec.to_dict() | {"sha256": zoo.file_sha256(path)}))
    with pytest.raises(zoo.ModelFileError, match="cannot read .* as safetensors"):
        zoo.load_network(spec)


def test_pickle_file_is_never_loaded(tmp_path):
    path = tmp_path / "weights.safetensors"
    torch.save(mask_net(2, 4).state_dict(), path)
    spec = zoo.ModelSpec(name="pickled", kind="mask", depth=2, width=4, file=str(path),
                         sha256=zoo.file_sha256(path))
    with pytest.raises(zoo.ModelFileError, match="looks like a pickle"):
        zoo.load_network(spec)


def test_wrong_architecture_is_reported(tmp_path):
    spec, _ = _copy_spec(tmp_path, width=16)
    with pytest.raises(zoo.ModelFileError, match="do not match a mask UNet 2-16"):
        zoo.load_network(spec)


def test_missing_file(tmp_path):
    spec, path = _copy_spec(tmp_path)
    path.unlink()
    with pytest.raises(zoo.ModelFileError, match="not found"):
        zoo.load_network(spec)
    with pytest.raises(zoo.ModelFileError, match="not found"):
        zoo.register_model(name="x", kind="mask", depth=2, width=4, file=str(path))


def test_invalid_spec_values():
    with pytest.raises(ValueError, match="threshold must lie in"):
        zoo.ModelSpec(name="x", kind="mask", depth=2, width=4, file="f", sha256="0", threshold=1.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        zoo.ModelSpec(name="x", kind="denoise", depth=2, width=4, file="f", sha256="0")
    # a card's units: "furlongs" was accepted, and every frame then failed with "unsupported BUNIT 'FURLONGS'"
    with pytest.raises(ValueError, match=r"model 'x': units must be one of \('electron', 'adu'\), not 'furlongs'"):
        zoo.ModelSpec(name="x", kind="mask", depth=2, width=4, file="f", sha256="0", units="furlongs")


def test_register_user_model_and_use_it(tmp_path):
    torch.manual_seed(0)
    net = mask_net(2, 4)
    path = tmp_path / "mine.safetensors"
    sha = zoo.save_network(net, path)
    spec = zoo.register_model(name="user-mask-test", kind="mask", depth=2, width=4, file=str(path),
                              threshold=0.3, overwrite=True)
    assert spec.sha256 == sha
    assert "user-mask-test" in zoo.list_models("mask")
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model(spec)
    image = np.random.default_rng(0).normal(size=(20, 24)).astype("f4")
    expected = net.eval()(torch.from_numpy(np.pad(image, ((0, 0), (0, 0))))[None, None])[0, 0].detach().numpy()
    assert DeepCR("user-mask-test", device="cpu").threshold == 0.3
    with pytest.warns(AstropyUserWarning, match="outside the model's domain"):  # untrained: flags everything
        probability = DeepCR("user-mask-test", device="cpu", precision="float32").probability(image)
    np.testing.assert_allclose(probability, expected, atol=1e-5)


def test_path_with_sidecar_card(tmp_path):
    path = tmp_path / "card-model.safetensors"
    zoo.save_network(mask_net(2, 4), path)
    with pytest.raises(zoo.ModelFileError, match="has no model card"):
        DeepCR(str(path))
    (tmp_path / "card-model.json").write_text(json.dumps({"kind": "mask", "depth": 2, "width": 4}))
    model = DeepCR(str(path), device="cpu")
    assert model.mask_spec.name == "card-model"
    with pytest.warns(AstropyUserWarning, match="outside the model's domain"):  # untrained: flags everything
        assert model.mask(np.zeros((8, 8))).shape == (8, 8)


def test_no_unpickling_in_the_package():
    """`git grep` finds no call that unpickles (torch.load, pickle.load(s), joblib.load) in the package."""
    root = pathlib.Path(__file__).parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    pattern = r"torch\.load(\|import pickle\|pickle\.loads\?(\|joblib\.load("
    found = subprocess.run(["git", "grep", "-n", pattern, "--", "astro_deepcr", "astro_deepcr_models",
                            ":!tests/test_zoo.py"], cwd=root, capture_output=True, text=True)
    assert found.returncode == 1, found.stdout  # 1: no match

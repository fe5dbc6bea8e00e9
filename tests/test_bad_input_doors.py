# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Issue #28: every bad input named before anything changes, the same way from every door.

One section per class of the issue: DQ bits, saturation protection, model registry, files, doors and exit codes.
"""

import json
import os
import shutil
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr import dq, zoo
from astro_deepcr.bright import protection_zone
from astro_deepcr.cli import main
from astro_deepcr.drizzle import flag_cosmic_rays, parse_inputs
from astro_deepcr.fitsutil import update_fits
from astro_deepcr.training.flc import write_flc_stack


@pytest.fixture
def hrc(tmp_path):
    from astro_deepcr.datasets import hst_example_path

    try:
        source = hst_example_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return shutil.copy(source, tmp_path / "j8bt06nyq_flt.fits")


@pytest.fixture(scope="module")
def flc(tmp_path_factory):
    return write_flc_stack(tmp_path_factory.mktemp("flc"), n_exposures=1, chip_shape=(64, 64), seed=3).files[0]


def _bytes(path):
    with open(path, "rb") as stream:
        return stream.read()


# -- DQ bits -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("crbit", "meaning"), [(256, "full-well saturation"), (2048, "A-to-D saturation"),
                                                (16, "hot pixel"), (4, "bad detector pixel"), (8192, "calacs")])
def test_crbit_read_as_something_else_is_refused_with_its_meaning(crbit, meaning):
    with pytest.raises(ValueError, match=f"crbit={crbit} is the DQ bit of .*{meaning}.*allowed: 4096"):
        dq.check_crbit(crbit)


def test_resetbits_never_clears_calibration_flags():
    assert dq.check_resetbits(None, 4096) == 4096 and dq.check_resetbits(0, 4096) == 0
    assert dq.check_resetbits("4096,8192", 4096) == 4096 | 8192
    with pytest.raises(ValueError, match="resetbits='256,4096' would clear .*256 = full-well saturation"):
        dq.check_resetbits("256,4096", 4096)


def test_hrc_crbit_256_refused_and_flag_twice_is_idempotent(hrc):
    """The real ACS/HRC frame: crbit=256 changes nothing; two runs of flag give byte-identical DQ."""
    before = _bytes(hrc)
    with pytest.raises(ValueError, match="crbit=256 is the DQ bit of full-well saturation"):
        flag_cosmic_rays(hrc, model="ACS-WFC", crbit=256)
    assert _bytes(hrc) == before
    counts, dqs = [], []
    for _ in range(2):
        with pytest.warns(AstropyUserWarning, match="trained on ACS/WFC"):
            counts.append(int(flag_cosmic_rays(hrc, model="ACS-WFC")["n_cr"][0]))
        with fits.open(hrc) as hdul:
            dqs.append(hdul["DQ", 1].data.tobytes())
            saturated = int(((hdul["DQ", 1].data & 256) != 0).sum())
    assert counts[0] == counts[1] > 0 and dqs[0] == dqs[1]
    assert saturated == 2531  # the calibration's full-well flags survive both runs (measured on main, issue #28)


# -- saturation protection -----------------------------------------------------------------------------------------


def test_protection_zone_time_and_memory_do_not_depend_on_the_radius():
    rng = np.random.default_rng(1)
    saturated = rng.random((200, 150)) < 0.002
    from scipy import ndimage

    for radius in (1, 2, 5):  # the same zone as the (2r+1)-square dilation it replaces
        expected = ndimage.binary_dilation(saturated, np.ones((2 * radius + 1,) * 2, bool))
        np.testing.assert_array_equal(protection_zone(saturated, radius), expected)
    start = time.perf_counter()
    assert protection_zone(saturated, 100).all() and protection_zone(saturated, 10**12).all()
    assert time.perf_counter() - start < 1.0  # main: 16 s for r=100 on 128 px, MemoryError (3.6 TiB) for 1e12


# -- model registry ------------------------------------------------------------------------------------------------


def _user_model(folder, card):
    source = zoo.get_model("ACS-WFC-F606W-2-4")
    folder.mkdir(exist_ok=True)
    weights = shutil.copy(source.file, folder / "my_model.safetensors")
    fields = {key: value for key, value in source.to_dict().items() if key not in ("file", "sha256")}
    (folder / "my_model.json").write_text(json.dumps(fields | card))
    return weights


def test_a_user_card_never_takes_a_builtin_name(tmp_path):
    builtin = zoo.get_model("ACS-WFC")
    weights = _user_model(tmp_path, {"name": "ACS-WFC"})
    with pytest.raises(zoo.ModelFileError, match=r"my_model.json: key 'name' = 'ACS-WFC' is already the registered"):
        zoo.get_model(str(weights))
    assert zoo.get_model("ACS-WFC") is builtin


def test_a_user_card_never_takes_another_user_models_name(tmp_path):
    first = _user_model(tmp_path / "a", {"name": "issue28-mine"})
    second = _user_model(tmp_path / "b", {"name": "issue28-mine"})
    try:
        spec = zoo.get_model(str(first))
        assert zoo.get_model(str(first)) is spec  # the same file again is fine
        with pytest.raises(zoo.ModelFileError, match="b/my_model.json: key 'name' = 'issue28-mine'"):
            zoo.get_model(str(second))
        assert zoo.get_model("issue28-mine") is spec
    finally:
        zoo.unregister_model("issue28-mine")


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "x28", "kind": "mask", "depth": 2, "width": 4, "sha256": "0"}, r"entry 0 \('x28'\): missing key.*'file'"),
    ({"name": "x28", "kind": "mask", "depth": 2, "width": 4, "sha256": "0", "file": "f", "colour": 1},
     r"entry 0 \('x28'\): unknown key.*'colour'"),
    ({"name": "ACS-WFC", "kind": "mask", "depth": 2, "width": 4, "sha256": "0", "file": "f"},
     "entry 'ACS-WFC'.*key 'name' = 'ACS-WFC' is already"),
])
def test_a_bad_model_dir_fails_the_same_way_every_time_and_leaves_the_registry(tmp_path, monkeypatch, entry,
                                                                                 message):
    from astro_deepcr.conf import conf

    zoo.list_models()
    registry = dict(zoo._registry)
    (tmp_path / "models.json").write_text(json.dumps({"models": [entry]}))
    monkeypatch.setattr(zoo, "_builtins_loaded", False)
    with conf.set_temp("model_dir", str(tmp_path)):
        for _ in range(2):  # main: raised once, then silently dropped the folder
            with pytest.raises(zoo.ModelFileError, match=f"{tmp_path / 'models.json'}.*{message}"):
                zoo.get_model("ACS-WFC")
            assert zoo._registry == registry
    monkeypatch.setattr(zoo, "_builtins_loaded", False)
    assert zoo.get_model("ACS-WFC") == registry["ACS-WFC"]


# -- files ---------------------------------------------------------------------------------------------------------


def test_update_through_a_symlink_updates_the_target_and_keeps_link_and_mode(tmp_path):
    target = tmp_path / "data" / "frame.fits"
    target.parent.mkdir()
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(target)
    os.chmod(target, 0o640)
    link = tmp_path / "link.fits"
    link.symlink_to(target)
    with update_fits(link) as hdul:
        hdul[0].header["ISSUE"] = 28
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert fits.getheader(target)["ISSUE"] == 28
    assert (os.stat(target).st_mode & 0o777) == 0o640
    assert os.stat(target).st_gid == os.stat(target.parent).st_gid


@pytest.mark.parametrize("name", ["a,b_flt.fits", "x[1]_flt.fits", "c,[2]_flt.fits"])
def test_existing_names_with_drizzlepac_syntax_are_taken_literally(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(b"")
    assert parse_inputs(name) == [name]
    assert parse_inputs(str(tmp_path / name)) == [str(tmp_path / name)]


# -- doors and exit codes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arguments", [["--crbit", "3"], ["--crbit", "256"], ["--grow", "-1"], ["--bits", "garbage"],
                                       ["--resetbits", "2048"], ["--device", "nonsense"]])
def test_flag_usage_errors_exit_2_before_any_file_changes(flc, tmp_path, capsys, arguments):
    path = shutil.copy(flc, tmp_path / "a_flc.fits")
    before = _bytes(path)
    assert main(["flag", *arguments, str(path), "-q"]) == 2
    assert "FAILED" not in capsys.readouterr().err
    assert _bytes(path) == before


@pytest.mark.parametrize("arguments", [["--crbit", "256"], ["--device", "nonsense"]])
def test_clean_usage_errors_exit_2_the_same_way(flc, tmp_path, capsys, arguments):
    assert main(["clean", *arguments, str(flc), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_the_same_message_from_every_door(flc, tmp_path):
    from astro_deepcr.batch import clean_files, flag_files

    path = shutil.copy(flc, tmp_path / "a_flc.fits")
    messages = set()
    for door in (lambda: flag_cosmic_rays(path, crbit=2048), lambda: flag_files([path], crbit=2048),
                 lambda: clean_files([path], tmp_path / "out", crbit=2048)):
        with pytest.raises(ValueError) as info:
            door()
        messages.add(str(info.value))
    assert len(messages) == 1 and "A-to-D saturation" in messages.pop()


def test_flag_threshold_nan_refused(flc, tmp_path):
    path = shutil.copy(flc, tmp_path / "a_flc.fits")
    with pytest.raises(ValueError, match="threshold must lie in"):
        flag_cosmic_rays(path, threshold=float("nan"))


def test_flag_on_a_truncated_file_names_the_truncation(flc, tmp_path, capsys):
    good = shutil.copy(flc, tmp_path / "good_flc.fits")
    data = _bytes(flc)
    (tmp_path / "cut_flc.fits").write_bytes(data[: len(data) - 20000])
    assert main(["flag", str(tmp_path / "cut_flc.fits"), str(good), "-q", "--model", "ACS-WFC-F606W-2-4"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "cut_flc.fits" in err and "truncated" in err and "reshape" not in err
    assert "DCRSTEP" in fits.getheader(good)  # the good file was flagged anyway


def test_astrodrizzle_bad_threshold_refused_before_any_file(flc, tmp_path, monkeypatch):
    pytest.importorskip("drizzlepac")
    from astro_deepcr.drizzle import astrodrizzle

    shutil.copy(flc, tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match="threshold must lie in"):
        astrodrizzle(os.path.basename(flc), output="refused", threshold=float("nan"))
    assert sorted(os.listdir(tmp_path)) == before  # no OrIg_files/, no trailer


@pytest.mark.parametrize(("arguments", "message"), [
    (["--trials", "0"], "trials"), (["--n-cr", "0"], "n_cr"), (["--density", "-1"], "density"),
    (["--ext", "SCI,x"], "--ext"), (["--gain", "nan"], "gain")])
def test_evaluate_inject_usage_errors_exit_2(flc, tmp_path, capsys, arguments, message):
    assert main(["evaluate", "--inject", str(flc), "--out", str(tmp_path / "out"), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_evaluate_inject_bad_frame_is_named_and_the_good_one_kept(flc, tmp_path, capsys):
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    status = main(["evaluate", "--inject", str(flc), str(empty), str(tmp_path / "none.fits"), "--out",
                   str(tmp_path / "out"), "--n-cr", "5", "--model", "ACS-WFC-F606W-2-4"])
    err = capsys.readouterr().err
    assert status == 1
    assert f"FAILED {empty}" in err and "none.fits" in err
    summary = json.loads((tmp_path / "out" / "injection.json").read_text())
    assert len(summary) == 1


@pytest.mark.parametrize(("arguments", "message"), [
    (["--epochs", "0"], "epochs must be an integer >= 1"), (["--batch-size", "-1"], "batch_size"),
    (["--lr", "nan"], "lr must be a finite number"), (["--name", "ACS-WFC"], "name='ACS-WFC' is already")])
def test_train_usage_errors_exit_2_before_the_output_exists(tmp_path, capsys, arguments, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.json").write_text("{}")
    assert main(["train", str(tmp_path / "data"), str(tmp_path / "out"), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

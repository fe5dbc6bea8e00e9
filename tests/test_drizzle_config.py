# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astro_deepcr.drizzle as a TEAL task: .cfg files with the deepCR section, and the supported drizzlepac range."""

import configparser
import os
import re
import shutil

import numpy as np
import pytest
from astropy.io import fits

from astro_deepcr.drizzle import (
    SUPPORTED_DRIZZLEPAC,
    astrodrizzle,
    check_drizzlepac_version,
    load_astrodrizzle_config,
)
from astro_deepcr.drizzle import astrodrizzle as _function  # noqa: F401  (the package exports the function)
from astro_deepcr.drizzle.config import ASTRODRIZZLE_TASK, DEEPCR_SECTION
from astro_deepcr.training.flc import write_flc_stack

from .test_drizzle import drizzlepac_warnings

PARS = os.path.join(os.path.dirname(__import__("astro_deepcr.drizzle").drizzle.__file__), "pars")
FINAL = "STEP 7: DRIZZLE FINAL COMBINED IMAGE"


def _drizzlepac():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # drizzlepac's dependencies warn on import (pyparsing, stwcs...)
        import drizzlepac
    return drizzlepac


def _drizzlepac_pars(name):
    drizzlepac = _drizzlepac()
    return os.path.join(os.path.dirname(drizzlepac.__file__), "pars", name)


def _without_deepcr(text, suffix):
    text = text.replace(f'string_kw(default="{ASTRODRIZZLE_TASK}")', 'string_kw(default="astrodrizzle")')
    text = text.replace(f"_task_name_ = {ASTRODRIZZLE_TASK}\n", "_task_name_ = astrodrizzle\n")
    start = text.index(f"[{DEEPCR_SECTION}]")
    end = text.index("\n[", start + 1) + 1
    return text[:start].rstrip("\n") + ("\n\n" if suffix == "cfg" else "\n") + text[end:].lstrip("\n")


@pytest.mark.parametrize("suffix", ["cfg", "cfgspc"])
def test_task_pars_are_drizzlepac_s_plus_the_deepcr_section(suffix):
    """The task's .cfg/.cfgspc are the installed drizzlepac's astrodrizzle ones plus one section (drift guard)."""
    with open(os.path.join(PARS, f"{ASTRODRIZZLE_TASK}.{suffix}")) as stream:
        ours = _without_deepcr(stream.read(), suffix)
    with open(_drizzlepac_pars(f"astrodrizzle.{suffix}")) as stream:
        theirs = stream.read()
    assert ours.split() == theirs.split()


def test_teal_task():
    from stsci.tools import teal

    module = __import__("astro_deepcr.drizzle.astrodrizzle", fromlist=["run"])
    assert module.__taskname__ == ASTRODRIZZLE_TASK and callable(module.run)
    config = teal.load(ASTRODRIZZLE_TASK, defaults=True)
    assert config["_task_name_"] == ASTRODRIZZLE_TASK
    assert dict(config[DEEPCR_SECTION]) == {"cr_method": "deepcr", "model": "", "threshold": None,
                                            "bits": "4096,8192", "fill_bits": "1,2,4,8", "device": "",
                                            "precision": ""}
    assert config[FINAL]["final_bits"] == "0" and config["resetbits"] == "4096"  # drizzlepac's defaults


def test_cfg_round_trip(tmp_path):
    from stsci.tools import teal

    config = load_astrodrizzle_config("defaults")
    config[DEEPCR_SECTION]["threshold"] = 0.3
    config[DEEPCR_SECTION]["bits"] = "64,32"
    config[DEEPCR_SECTION]["model"] = "ACS-WFC"
    config[FINAL]["final_bits"] = "64"
    config["input"] = "j*_flc.fits"
    config.filename = str(tmp_path / "mine.cfg")
    config.write()
    for loaded in (load_astrodrizzle_config(str(tmp_path / "mine.cfg")), teal.load(str(tmp_path / "mine.cfg"))):
        assert loaded[DEEPCR_SECTION]["threshold"] == 0.3
        assert (loaded[DEEPCR_SECTION]["bits"], loaded[DEEPCR_SECTION]["model"]) == ("64,32", "ACS-WFC")
        assert loaded[FINAL]["final_bits"] == "64" and loaded["input"] == "j*_flc.fits"
    # written again, the file is the same: a .cfg round-trips as drizzlepac's own do
    again = load_astrodrizzle_config(str(tmp_path / "mine.cfg"))
    again.filename = str(tmp_path / "again.cfg")
    again.write()
    assert (tmp_path / "again.cfg").read_text() == (tmp_path / "mine.cfg").read_text()
    # a drizzlepac astrodrizzle .cfg is accepted too: its values, the deepCR section at its defaults
    theirs = teal.load("astrodrizzle", defaults=True)
    theirs[FINAL]["final_bits"] = "32"
    theirs.filename = str(tmp_path / "theirs.cfg")
    theirs.write()
    loaded = load_astrodrizzle_config(str(tmp_path / "theirs.cfg"))
    assert loaded[FINAL]["final_bits"] == "32" and loaded[DEEPCR_SECTION]["threshold"] is None
    with pytest.raises(ValueError, match="cannot find AstroDrizzle .cfg file"):
        load_astrodrizzle_config(str(tmp_path / "missing.cfg"))


def test_supported_drizzlepac_range():
    drizzlepac = _drizzlepac()
    assert check_drizzlepac_version() == drizzlepac.__version__  # the installed one is supported (tested)
    low, high = SUPPORTED_DRIZZLEPAC
    assert check_drizzlepac_version(low + ".0") and check_drizzlepac_version(low + ".5.dev3")
    for version in ("3.10.2", high + ".0", "4.0.0"):
        with pytest.raises(RuntimeError, match=f"drizzlepac >={low},<{high}; drizzlepac {version} is installed"):
            check_drizzlepac_version(version)
    # setup.cfg pins the same range
    setup = configparser.ConfigParser()
    setup.read(os.path.join(os.path.dirname(PARS), "..", "..", "setup.cfg"))
    if setup.has_section("options"):
        assert f"drizzlepac>={low},<{high}" in setup["options"]["install_requires"].split()


def _crmask_counts(roots):
    return {(root, k): int((fits.getdata(f"{root}_sci{k}_crmask.fits") == 0).sum()) for root in roots for k in (1, 2)}


def _trailer_counts(path="astrodrizzle.log"):
    with open(path) as stream:
        text = stream.read()
    found = re.findall(r"deepCR \(([\w-]+)\): (\d+) cosmic-ray pixels in (\w+)_flc\.fits\[SCI,(\d)\]", text)
    return {(root, int(k)): int(n) for _, n, root, k in found}, text


@drizzlepac_warnings
def test_defaults_and_saved_cfg_run_real_drizzlepac(tmp_path, monkeypatch):
    """Must-show: configobj="defaults" and a saved .cfg with deepCR options run the real drizzlepac;
    the per-chip counts reach AstroDrizzle's trailer file."""
    stack = write_flc_stack(tmp_path / "data", n_exposures=2, chip_shape=(64, 128), seed=4)
    roots = [os.path.basename(path).split("_")[0] for path in stack.files]
    for sub in ("defaults", "cfg"):
        (tmp_path / sub).mkdir()
        for path in stack.files:
            shutil.copy(path, tmp_path / sub)
    names = [os.path.basename(path) for path in stack.files]

    monkeypatch.chdir(tmp_path / "defaults")
    astrodrizzle(names, configobj="defaults", output="dflt", num_cores=1, context=False)
    assert os.path.isfile("dflt_drc_sci.fits")
    default_counts = _crmask_counts(roots)
    logged, text = _trailer_counts()
    assert logged == default_counts and min(default_counts.values()) > 0
    assert "deepCR model ACS-WFC-F606W for jsyn0001q_flc.fits (card for ACS/WFC F606W)" in text
    for i, root in enumerate(roots):  # the final drizzle put the masks into the inputs' DQ as crbit
        for k in (1, 2):
            dq = fits.getdata(f"{root}_flc.fits", ("DQ", k)).astype(np.int64)
            assert int(((dq & 4096) > 0).sum()) == default_counts[(root, k)]
            bad = (stack.dq[i][k - 1].astype(np.int64) & ~(4096 | 8192)) != 0  # outside the default bits
            assert bad.any() and not (fits.getdata(f"{root}_sci{k}_crmask.fits") == 0)[bad].any()

    monkeypatch.chdir(tmp_path / "cfg")
    config = load_astrodrizzle_config("defaults")
    config["input"] = ",".join(names)
    config["output"] = "saved"
    config["num_cores"] = 1
    config["context"] = False
    config[DEEPCR_SECTION]["threshold"] = 0.9
    config.filename = "deepcr.cfg"
    config.write()
    astrodrizzle(configobj="deepcr.cfg")
    assert os.path.isfile("saved_drc_sci.fits")
    counts = _crmask_counts(roots)
    logged, text = _trailer_counts()
    assert logged == counts and "threshold 0.9" in text
    # a higher threshold from the .cfg: never more, and in total fewer CR pixels than the default 0.5
    assert all(counts[key] <= default_counts[key] for key in counts)
    assert sum(counts.values()) < sum(default_counts.values())


@drizzlepac_warnings
def test_cli_drizzle_shows_per_chip_counts(tmp_path, monkeypatch, capsys):
    """#14 item 11: the per-chip CR counts are visible by default on the CLI (and gone with -q)."""
    from astro_deepcr import cli

    stack = write_flc_stack(tmp_path, n_exposures=1, chip_shape=(64, 128), seed=5)
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(stack.files[0])
    assert cli.main(["drizzle", name, "--output", "one", "-p", "num_cores=1", "-p", "context=false"]) == 0
    err = capsys.readouterr().err
    counts = _crmask_counts([name.split("_")[0]])
    for (root, k), n in counts.items():
        assert f"astro-deepcr: deepCR (ACS-WFC-F606W): {n} cosmic-ray pixels in {root}_flc.fits[SCI,{k}]" in err
    assert cli.main(["drizzle", name, "--output", "two", "-q", "-p", "num_cores=1", "-p", "context=false"]) == 0
    assert "cosmic-ray pixels" not in capsys.readouterr().err


@drizzlepac_warnings
def test_mdriztab_is_read_and_cr_steps_stay_replaced(tmp_path, monkeypatch):
    """mdriztab=True reads the exposure's MDRIZTAB as AstroDrizzle does; its driz_cr/median/blot=True rows
    do not switch drizzlepac's CR steps back on (deepCR replaces them)."""
    from astropy.table import Table

    stack = write_flc_stack(tmp_path, n_exposures=1, chip_shape=(64, 128), seed=5)
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(stack.files[0])
    table = Table({"filter": ["ANY"], "numimages": np.array([1], dtype=np.int32), "final_bits": ["64"],
                   "driz_cr": [True], "median": [True], "blot": [True],
                   "final_pixfrac": np.array([0.5], dtype=np.float32)})
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(table)]).writeto("test_mdz.fits")
    fits.setval(name, "MDRIZTAB", value=str(tmp_path / "test_mdz.fits"))
    astrodrizzle(name, mdriztab=True, output="mdz", num_cores=1, context=False)
    assert fits.getheader("mdz_drc_sci.fits")["D001PIXF"] == 0.5  # the table's final_pixfrac (default 1.0)
    assert not [f for f in os.listdir() if f.endswith(("_blt.fits", "_med.fits", "_single_sci.fits"))]
    logged, _ = _trailer_counts()
    assert logged == _crmask_counts([name.split("_")[0]])
    # TEAL's entry point: run(configobj) with no user overrides after the MDRIZTAB values
    from astro_deepcr.drizzle.astrodrizzle import run

    config = load_astrodrizzle_config("defaults")
    config.update({"input": name, "output": "teal", "num_cores": 1, "context": False, "mdriztab": True})
    run(config)
    assert fits.getheader("teal_drc_sci.fits")["D001PIXF"] == 0.5
    # the MDRIZTAB row's median/blot/driz_cr=True stay off (median would even abort on one image);
    # driz_separate keeps the .cfg's value here (True, drizzlepac's default)
    assert not [f for f in os.listdir() if f.endswith(("_blt.fits", "_med.fits"))]

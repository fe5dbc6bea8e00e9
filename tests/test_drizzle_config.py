# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astro_deepcr.drizzle as a TEAL task on drizzlepac's public seam: .cfg files with the deepCR section, the CR-bit
guards, resetbits / driz_cr_grow / driz_cr_ctegrow reaching flag_cosmic_rays, drizzlepac an uncapped optional extra."""

import configparser
import os
import re
import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits

from astro_deepcr.dq import DEFAULT_BITS, DEFAULT_FILL_BITS
from astro_deepcr.drizzle import astrodrizzle, flag_cosmic_rays, grow_like_driz_cr, load_astrodrizzle_config
from astro_deepcr.drizzle import astrodrizzle as _function  # noqa: F401  (the package exports the function)
from astro_deepcr.drizzle.config import ASTRODRIZZLE_TASK, DEEPCR_SECTION
from astro_deepcr.training.flc import write_flc_stack

from .test_drizzle import drizzlepac_warnings, requires_drizzlepac

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


@requires_drizzlepac
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
    # the deepCR defaults are the detection core's (astro_deepcr.dq), so astrodrizzle() flags as flag does
    assert dict(config[DEEPCR_SECTION]) == {"cr_method": "deepcr", "model": "", "threshold": None,
                                            "bits": DEFAULT_BITS, "fill_bits": DEFAULT_FILL_BITS, "device": "",
                                            "precision": "", "star_shape": False}
    assert config[FINAL]["final_bits"] == "0" and config["resetbits"] == "4096"  # drizzlepac's defaults


@requires_drizzlepac
def test_cfg_round_trip(tmp_path):
    from stsci.tools import teal

    config = load_astrodrizzle_config("defaults")
    config[DEEPCR_SECTION]["threshold"] = 0.3
    config[DEEPCR_SECTION]["bits"] = "64,32"
    config[DEEPCR_SECTION]["model"] = "ACS-WFC"
    config[DEEPCR_SECTION]["star_shape"] = True
    config[FINAL]["final_bits"] = "64"
    config["input"] = "j*_flc.fits"
    config.filename = str(tmp_path / "mine.cfg")
    config.write()
    for loaded in (load_astrodrizzle_config(str(tmp_path / "mine.cfg")), teal.load(str(tmp_path / "mine.cfg"))):
        assert loaded[DEEPCR_SECTION]["threshold"] == 0.3
        assert (loaded[DEEPCR_SECTION]["bits"], loaded[DEEPCR_SECTION]["model"]) == ("64,32", "ACS-WFC")
        assert loaded[DEEPCR_SECTION]["star_shape"] is True
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


def test_drizzlepac_is_an_optional_uncapped_extra():
    """drizzlepac is not a core requirement; the extra 'drizzle' (and 'all') has a lower bound only."""
    setup = configparser.ConfigParser()
    setup.read(os.path.join(os.path.dirname(PARS), "..", "..", "setup.cfg"))
    if not setup.has_section("options"):
        pytest.skip("no setup.cfg (installed package)")
    assert "drizzlepac" not in setup["options"]["install_requires"]
    extras = setup["options.extras_require"]
    for extra in ("drizzle", "all"):
        requirement = [line for line in extras[extra].split() if line.startswith("drizzlepac")]
        assert requirement == ["drizzlepac>=3.11"], extra  # no upper cap
    assert "drizzlepac" not in extras["test"]  # the CI's second venv tests without it


def _crbit_counts(names):
    """Pixels with DQ bit 4096 per (rootname, chip) of the given _flc files."""
    counts = {}
    for name in names:
        for k in (1, 2):
            dq = fits.getdata(name, ("DQ", k)).astype(np.int64)
            counts[(os.path.basename(name).split("_")[0], k)] = int(((dq & 4096) > 0).sum())
    return counts


def _trailer_counts(path="astrodrizzle.log"):
    with open(path) as stream:
        text = stream.read()
    found = re.findall(r"deepCR \(([\w-]+)\): (\d+) cosmic-ray pixels in (\w+)_flc\.fits\[SCI,(\d)\]", text)
    return {(root, int(k)): int(n) for _, n, root, k in found}, text


@requires_drizzlepac
@drizzlepac_warnings
def test_defaults_and_saved_cfg_run_real_drizzlepac(tmp_path, monkeypatch):
    """Must-show: configobj="defaults" and a saved .cfg with deepCR options run the real drizzlepac;
    the per-chip counts reach AstroDrizzle's trailer file."""
    stack = write_flc_stack(tmp_path / "data", n_exposures=2, chip_shape=(64, 128), seed=4)
    for sub in ("defaults", "cfg"):
        (tmp_path / sub).mkdir()
        for path in stack.files:
            shutil.copy(path, tmp_path / sub)
    names = [os.path.basename(path) for path in stack.files]

    monkeypatch.chdir(tmp_path / "defaults")
    astrodrizzle(names, configobj="defaults", output="dflt", num_cores=1, context=False)
    assert os.path.isfile("dflt_drc_sci.fits")
    default_counts = _crbit_counts(names)  # the flags astrodrizzle left in the inputs' DQ
    logged, text = _trailer_counts()
    assert logged == default_counts and min(default_counts.values()) > 0
    assert "deepCR model ACS-WFC-F606W for jsyn0001q_flc.fits (card for ACS/WFC F606W)" in text
    for i, name in enumerate(names):
        for k in (1, 2):
            dq = fits.getdata(name, ("DQ", k)).astype(np.int64)
            bad = (stack.dq[i][k - 1].astype(np.int64) & ~(4096 | 8192)) != 0  # outside the default bits
            assert bad.any() and not (dq & 4096)[bad].any()

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
    counts = _crbit_counts(names)
    logged, text = _trailer_counts()
    assert logged == counts and "threshold 0.9" in text
    # a higher threshold from the .cfg: never more, and in total fewer CR pixels than the default 0.5
    assert all(counts[key] <= default_counts[key] for key in counts)
    assert sum(counts.values()) < sum(default_counts.values())


@requires_drizzlepac
@drizzlepac_warnings
def test_cli_drizzle_shows_per_chip_counts(tmp_path, monkeypatch, capsys):
    """#14 item 11: the per-chip CR counts are visible by default on the CLI (and gone with -q)."""
    from astro_deepcr import cli

    stack = write_flc_stack(tmp_path, n_exposures=1, chip_shape=(64, 128), seed=5)
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(stack.files[0])
    assert cli.main(["drizzle", name, "--output", "one", "-p", "num_cores=1", "-p", "context=false"]) == 0
    err = capsys.readouterr().err
    counts = _crbit_counts([name])
    for (root, k), n in counts.items():
        assert f"astro-deepcr: deepCR (ACS-WFC-F606W): {n} cosmic-ray pixels in {root}_flc.fits[SCI,{k}]" in err
    assert cli.main(["drizzle", name, "--output", "two", "-q", "-p", "num_cores=1", "-p", "context=false"]) == 0
    assert "cosmic-ray pixels" not in capsys.readouterr().err


@requires_drizzlepac
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
    assert logged == _crbit_counts([name])
    # TEAL's entry point: run(configobj) with no user overrides after the MDRIZTAB values
    from astro_deepcr.drizzle.astrodrizzle import run

    config = load_astrodrizzle_config("defaults")
    config.update({"input": name, "output": "teal", "num_cores": 1, "context": False, "mdriztab": True})
    run(config)
    assert fits.getheader("teal_drc_sci.fits")["D001PIXF"] == 0.5
    # the MDRIZTAB row's median/blot/driz_cr=True stay off (median would even abort on one image);
    # driz_separate keeps the .cfg's value here (True, drizzlepac's default)
    assert not [f for f in os.listdir() if f.endswith(("_blt.fits", "_med.fits"))]


# -- the seam: guards before any file changes, resetbits / grow / ctegrow / provenance through astrodrizzle() ----------


def _snapshot(directory):
    """Every file under ``directory`` with its bytes and mtime."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as stream:
                found[path] = (stream.read(), os.stat(path).st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def one_exposure(tmp_path_factory):
    return write_flc_stack(tmp_path_factory.mktemp("one"), n_exposures=1, chip_shape=(64, 128), seed=7)


@requires_drizzlepac
@pytest.mark.parametrize(("params", "message"), [
    ({"final_bits": "4096,16"}, "final_bits='4096,16' treats DQ bit 4096 (crbit, the cosmic rays deepCR flags) as "
                                "good: every flagged cosmic ray would be drizzled back in; remove 4096"),
    ({"final_bits": "~16"}, "final_bits='~16' treats DQ bit 4096"),  # every bit but 16 is good
    ({"final_bits": None}, "final_bits=None treats every DQ bit as good"),
    ({"driz_separate": True, "driz_sep_bits": "4096"}, "driz_sep_bits='4096' treats DQ bit 4096"),
    ({"crbit": 16384, "final_bits": "16384"}, "final_bits='16384' treats DQ bit 16384 .* remove 16384"),
])
def test_cr_bit_counted_good_is_refused_before_any_file_changes(one_exposure, tmp_path, monkeypatch, params, message):
    shutil.copy(one_exposure.files[0], tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    for method in ("deepcr", "driz_cr"):  # classic driz_cr would drizzle its own CR flags back in the same way
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                           if ".*" not in message else message):
            astrodrizzle("jsyn0001q_flc.fits", cr_method=method, output="refused", **params)
        assert _snapshot(tmp_path) == before  # same files, bytes and mtimes: no trailer, no archive, no flags
    # from a .cfg as well
    config = load_astrodrizzle_config("defaults")
    config[FINAL]["final_bits"] = "64,4096"
    config["input"] = "jsyn0001q_flc.fits"
    config.filename = str(tmp_path / "bad.cfg")
    config.write()
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match="final_bits='64,4096' treats DQ bit 4096"):
        astrodrizzle(configobj=str(tmp_path / "bad.cfg"))
    assert _snapshot(tmp_path) == before


@requires_drizzlepac
@pytest.mark.parametrize(("params", "message"), [
    ({"final_pixfrac": "abc"}, r"final_pixfrac \(STEP 7: DRIZZLE FINAL COMBINED IMAGE\): the value \"abc\" is of"),
    ({"final_kernel": "bogus"}, r"final_kernel .*: the value \"bogus\" is unacceptable"),
])
def test_bad_parameter_values_are_refused_before_any_file_changes(one_exposure, tmp_path, monkeypatch, params,
                                                                   message):
    """AstroDrizzle would log the value and return None after our flags were written: refuse it first."""
    shutil.copy(one_exposure.files[0], tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match="invalid AstroDrizzle parameter value.*" + message):
        astrodrizzle("jsyn0001q_flc.fits", output="refused", **params)
    assert _snapshot(tmp_path) == before


def test_good_bits_without_the_cr_bit_pass():
    from astro_deepcr.drizzle.astrodrizzle import check_cr_bit_not_good

    for bits in (0, "0", "64,32", "~4096", "~4096,8192", 16 + 64, "336"):
        check_cr_bit_not_good("final_bits", bits, 4096)
    with pytest.raises(ValueError, match="final_bits='64,x' is not a DQ bit expression"):
        check_cr_bit_not_good("final_bits", "64,x", 4096)


@requires_drizzlepac
@drizzlepac_warnings
def test_resetbits_grow_ctegrow_and_provenance_reach_the_flags(one_exposure, tmp_path, monkeypatch):
    """astrodrizzle() leaves in DQ exactly what flag_cosmic_rays leaves with the same settings: resetbits clears
    stale flags first (default) or keeps them (0); driz_cr_grow / driz_cr_ctegrow grow the masks; the SCI headers
    carry the same DCR* provenance."""
    source = one_exposure.files[0]
    name = os.path.basename(source)
    stale = np.zeros((64, 128), dtype=bool)
    stale[5:9, 100:110] = True  # old CR flags, far from the truth CRs there or not
    runs = {"default": {}, "keep": {"resetbits": 0}, "grown": {"driz_cr_grow": 3, "driz_cr_ctegrow": 2}}
    flags = {}
    for label, params in runs.items():
        for sub in ("drz", "flag"):
            directory = tmp_path / label / sub
            directory.mkdir(parents=True)
            path = shutil.copy(source, directory)
            with fits.open(path, mode="update") as hdul:
                hdul["DQ", 1].data[stale] |= 4096
        monkeypatch.chdir(tmp_path / label / "drz")
        astrodrizzle(name, output="one", num_cores=1, context=False, **params)
        assert os.path.isfile("one_drc_sci.fits")
        flag_params = {"resetbits": params.get("resetbits"), "grow": params.get("driz_cr_grow", 1),
                       "ctegrow": params.get("driz_cr_ctegrow", 0)}
        summary = flag_cosmic_rays(str(tmp_path / label / "flag" / name), **flag_params)
        for extver in (1, 2):
            with fits.open(name) as drz, fits.open(tmp_path / label / "flag" / name) as ref:
                assert np.array_equal(drz["DQ", extver].data, ref["DQ", extver].data)
                cards = {key: drz["SCI", extver].header[key] for key in drz["SCI", extver].header if
                         key.startswith("DCR") and key != "DCRVERS"}
                assert cards == {key: ref["SCI", extver].header[key] for key in cards}
                assert cards["DCRNCR"] == summary["n_cr"][extver - 1] > 0
                assert cards["DCRGROW"] == flag_params["grow"] and cards["DCRBIT"] == 4096
        flags[label] = (fits.getdata(name, ("DQ", 1)).astype(np.int64) & 4096) > 0
    assert flags["keep"][stale].all() and not flags["default"][stale].all()
    assert np.array_equal(flags["keep"], flags["default"] | stale)
    # 3x3 boxes (measured 92 -> 308 px) plus CTE tails that reach past the boxes along the columns
    assert (flags["grown"] >= flags["default"]).all() and flags["grown"].sum() > 2 * flags["default"].sum()
    assert (flags["grown"] & ~grow_like_driz_cr(flags["default"], 3)).any()


@requires_drizzlepac
@drizzlepac_warnings
@pytest.mark.slow
@pytest.mark.parametrize("star_shape", [False, True])
def test_real_hrc_frame_through_astrodrizzle(tmp_path, monkeypatch, star_shape):
    """The real ACS/HRC flt through astrodrizzle(): a drizzled image, and the CR flags of flag_cosmic_rays (with the
    star-shape test too: the frame's stars learn a map, and both doors add the same flags)."""
    from astropy.utils.exceptions import AstropyUserWarning

    from astro_deepcr.datasets import hst_example_path

    try:
        source = hst_example_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    for sub in ("drz", "flag"):
        (tmp_path / sub).mkdir()
        shutil.copy(source, tmp_path / sub)
    name = os.path.basename(source)
    with pytest.warns(AstropyUserWarning, match="trained on ACS/WFC"):
        reference = flag_cosmic_rays(str(tmp_path / "flag" / name), model="ACS-WFC", star_shape=star_shape)
    monkeypatch.chdir(tmp_path / "drz")
    # the same out-of-domain warning, and drizzlepac's own (IDCSCALE missing...); drizzlepac's trailer logging
    # may take warnings over while it runs, so they are not asserted here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        astrodrizzle(name, model="ACS-WFC", output="hrc", num_cores=1, build=False, context=False,
                     star_shape=star_shape)
    sci = fits.getdata("hrc_drz_sci.fits")
    assert sci.shape[0] > 900 and sci.shape[1] > 900 and np.isfinite(sci).mean() > 0.5
    with fits.open(name) as drz, fits.open(tmp_path / "flag" / name) as ref:
        cr = (drz["DQ", 1].data & 4096) > 0
        assert np.array_equal(cr, (ref["DQ", 1].data & 4096) > 0)
        assert int(cr.sum()) == reference["n_cr"][0] > 1000
        assert drz["SCI", 1].header["DCRNCR"] == reference["n_cr"][0]
        assert drz["SCI", 1].header.get("DCRSTAR") == ref["SCI", 1].header.get("DCRSTAR")
        assert ("px added, map of" in drz["SCI", 1].header["DCRSTAR"]) if star_shape else (
            "DCRSTAR" not in drz["SCI", 1].header)
        # the sky was measured on the flagged frame (skysub on by default)
        assert "MDRIZSKY" in drz["SCI", 1].header


@requires_drizzlepac
@drizzlepac_warnings
def test_star_shape_reaches_the_flags(one_exposure, tmp_path, monkeypatch):
    """``star_shape`` is a deepCR option of the task (keyword, .cfg, TEAL): astrodrizzle() leaves the DQ and the
    ``DCRSTAR`` note of flag_cosmic_rays(star_shape=True) and says so in the trailer; an exposure without read noise
    is refused, naming it, before any file changes; with cr_method='driz_cr' it is ignored with a warning."""
    from astropy.utils.exceptions import AstropyUserWarning

    name = os.path.basename(one_exposure.files[0])
    for sub in ("kw", "cfg", "flag", "noise"):
        (tmp_path / sub).mkdir()
        shutil.copy(one_exposure.files[0], tmp_path / sub)
    flag_cosmic_rays(str(tmp_path / "flag" / name), star_shape=True)
    monkeypatch.chdir(tmp_path / "kw")
    astrodrizzle(name, output="one", num_cores=1, context=False, star_shape=True)
    monkeypatch.chdir(tmp_path / "cfg")
    config = load_astrodrizzle_config("defaults")
    config["input"], config["output"], config["num_cores"], config["context"] = name, "one", 1, False
    config[DEEPCR_SECTION]["star_shape"] = True
    config.filename = "star.cfg"
    config.write()
    assert load_astrodrizzle_config("star.cfg")[DEEPCR_SECTION]["star_shape"] is True
    astrodrizzle(configobj="star.cfg")
    for sub in ("kw", "cfg"):
        with open(tmp_path / sub / "astrodrizzle.log") as stream:
            text = stream.read()
        for extver in (1, 2):
            reference = fits.getheader(tmp_path / "flag" / name, ("SCI", extver))["DCRSTAR"]
            assert reference == "none: too few isolated stars"  # 64 x 128 px: the option reached the core
            assert fits.getheader(tmp_path / sub / name, ("SCI", extver))["DCRSTAR"] == reference
            assert f"star-shape test of {name}[SCI,{extver}]: {reference}" in text
            assert np.array_equal(_dq(tmp_path / sub / name, extver), _dq(tmp_path / "flag" / name, extver))
    monkeypatch.chdir(tmp_path / "noise")
    with fits.open(name, mode="update") as hdul:
        for key in [key for key in hdul[0].header if key.startswith(("READNSE", "RDNOISE"))]:
            del hdul[0].header[key]
    before = _snapshot(tmp_path / "noise")
    with pytest.raises(ValueError, match=rf"{name}\[SCI,1\]: star_shape=True needs the read noise"):
        astrodrizzle(name, output="refused", num_cores=1, star_shape=True)
    assert _snapshot(tmp_path / "noise") == before
    with pytest.warns(AstropyUserWarning, match="star_shape are deepCR settings; ignored"):
        with pytest.raises(ValueError, match="final_bits"):  # stops before drizzlepac runs
            astrodrizzle(name, cr_method="driz_cr", star_shape=True, final_bits="4096")


def _dq(path, extver):
    return fits.getdata(path, ("DQ", extver)).astype(np.int64)


@requires_drizzlepac
@drizzlepac_warnings
def test_cli_drizzle_keeps_the_cfg_s_deepcr_options(one_exposure, tmp_path, monkeypatch):
    """``astro-deepcr drizzle --config F`` runs F's deepCR options: an option not given on the command line does not
    override it (the CLI passed threshold=None, model=None and cr_method='deepcr' over every .cfg before 0.2.0);
    ``--star-shape`` and ``--threshold`` given do."""
    from astro_deepcr import cli

    name = os.path.basename(one_exposure.files[0])
    for sub in ("cfg", "cli"):
        (tmp_path / sub).mkdir()
        shutil.copy(one_exposure.files[0], tmp_path / sub)
    config = load_astrodrizzle_config("defaults")
    config["num_cores"], config["context"] = 1, False
    config[DEEPCR_SECTION]["threshold"] = 0.9
    config[DEEPCR_SECTION]["model"] = "ACS-WFC"
    config.filename = str(tmp_path / "mine.cfg")
    config.write()
    monkeypatch.chdir(tmp_path / "cfg")
    assert cli.main(["drizzle", name, "--config", str(tmp_path / "mine.cfg"), "--output", "a", "-q"]) == 0
    header = fits.getheader(name, ("SCI", 1))
    assert (header["DCRTHRSH"], header["DCRMODEL"]) == (0.9, "ACS-WFC") and "DCRSTAR" not in header
    monkeypatch.chdir(tmp_path / "cli")
    assert cli.main(["drizzle", name, "--config", str(tmp_path / "mine.cfg"), "--output", "b", "-q",
                     "--threshold", "0.7", "--star-shape"]) == 0
    header = fits.getheader(name, ("SCI", 1))
    assert (header["DCRTHRSH"], header["DCRMODEL"]) == (0.7, "ACS-WFC")
    assert header["DCRSTAR"] == "none: too few isolated stars"

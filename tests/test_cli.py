# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of the ``astro-deepcr`` command line tool: the real console script in subprocesses, and main()."""

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
from astropy.io import fits

from astro_deepcr import cli

from .test_batch import write_images

CORE_COMMANDS = ["clean", "flag", "drizzle", "models", "bench", "demo"]
PLUGIN_COMMANDS = {"astro_deepcr.evaluation.report": ["evaluate"],
                   "astro_deepcr.training.cli": ["make-dataset", "train"]}


def console_script():
    """The installed ``astro-deepcr`` of this Python's environment."""
    for folder in (os.path.dirname(sys.executable), sysconfig.get_path("scripts")):
        path = os.path.join(folder, "astro-deepcr")
        if os.path.isfile(path):
            return path
    path = shutil.which("astro-deepcr")
    if path is None:
        pytest.fail("the astro-deepcr console script is not installed (pip install -e .)")
    return path


def run(command, cwd):
    env = dict(os.environ, PYTHONWARNINGS="error::DeprecationWarning:astro_deepcr")
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _available(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def test_console_script_help(tmp_path):
    done = run([console_script(), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    for command in CORE_COMMANDS:
        assert command in done.stdout
    for module, commands in PLUGIN_COMMANDS.items():
        if _available(module):  # the plug-in sub-commands are wired once their modules exist
            for command in commands:
                assert command in done.stdout, f"{module} is installed but '{command}' is not a sub-command"


def test_console_script_clean_with_a_corrupt_file(tmp_path):
    names, _ = write_images(tmp_path / "in", count=3)
    corrupt = tmp_path / "in" / "corrupt.fits"
    corrupt.write_bytes(b"SIMPLE  = T this header is garbage" * 200)
    files = [names[0], str(corrupt), names[1], names[2]]
    done = run([console_script(), "clean", *files, "-o", "out", "--probability", "--quiet"], tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""  # --quiet
    failed = [line for line in done.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and str(corrupt) in failed[0] and "cannot read FITS" in failed[0]
    assert "3 of 4 files cleaned; 1 failed" in done.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["img0.fits", "img1.fits", "img2.fits"]
    with fits.open(tmp_path / "out" / "img2.fits") as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "SCI", "ERR", "CRMASK", "CRPROB"]
        assert hdul["CRMASK", 1].data.sum() == hdul["SCI"].header["DCRNCR"] > 0


def test_module_demo(tmp_path):
    import re

    from astro_deepcr.evaluation.metrics import mask_scores

    done = run([sys.executable, "-m", "astro_deepcr.cli", "demo", "--simulated", "-o", "demo_out", "--shape", "128",
                "128"], tmp_path)
    assert done.returncode == 0, done.stderr
    # the printed rates are those of the written mask against the written truth (recomputed here), to the
    # printed digits: a swapped TPR/FPR, a mask/truth mix-up or rates of another threshold would differ
    printed = re.search(r"(\d+) pixels flagged, TPR ([0-9.]+), FPR ([0-9.]+)", done.stdout)
    assert printed, done.stdout
    with fits.open(tmp_path / "demo_out" / "demo.fits") as hdul:
        found, truth = hdul["CRMASK"].data.astype(bool), hdul["CRTRUE"].data.astype(bool)
    recall, fpr, _ = mask_scores(found, truth)
    assert int(printed.group(1)) == found.sum() and truth.sum() > 0
    assert abs(float(printed.group(2)) - recall) <= 5e-4 and abs(float(printed.group(3)) - fpr) <= 5e-6
    assert (tmp_path / "demo_out" / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "demo_out" / "demo.fits").is_file()


# -- main() in this process ---------------------------------------------------------------------------------------


def test_usage_errors(tmp_path, capsys):
    assert cli.main([]) == 2
    assert cli.main(["clean", "x.fits"]) == 2  # no -o
    assert cli.main(["clean", "x.fits", "-o", str(tmp_path), "--threshold", "1.5"]) == 2
    assert cli.main(["clean", "x.fits", "-o", str(tmp_path), "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert cli.main(["clean", "x.fits", "-o", str(tmp_path), "--jobs", "2", "--dask", "tcp://h:1"]) == 2
    assert cli.main(["models", "info", "nope"]) == 2
    assert cli.main(["flag", "x_flc.fits", "--model", "nope"]) == 2
    assert cli.main(["bench", "--device", "tpu"]) == 2
    assert cli.main(["--version"]) == 0
    assert os.listdir(tmp_path) == []


def test_models(capsys):
    assert cli.main(["models"]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].split() == ["name", "kind", "arch", "instrument", "units", "threshold"]
    assert any(line.split()[:3] == ["WFC3-UVIS", "mask", "2-32"] for line in listing.splitlines())
    # models without an instrument say where the header-driven choice uses them
    rows = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert "  no card matches  " in rows["ground-v2"] and "  HST without a card  " in rows["ground"]
    assert "  ACS/WFC  " in rows["ACS-WFC"]
    assert cli.main(["models", "list", "--kind", "inpaint"]) == 0
    assert all(line.split()[1] == "inpaint" for line in capsys.readouterr().out.splitlines()[1:])
    assert cli.main(["models", "info", "ACS-WFC"]) == 0
    from astro_deepcr import get_model

    assert capsys.readouterr().out.strip() == get_model("ACS-WFC").card()


def test_clean_in_process(tmp_path, capsys):
    names, _ = write_images(tmp_path / "in", count=1, bunit="ADU")
    assert cli.main(["clean", names[0], "-o", str(tmp_path / "out"), "-q"]) == 1
    assert "give the gain" in capsys.readouterr().err
    assert cli.main(["clean", names[0], "-o", str(tmp_path / "out"), "--gain", "1", "--inpaint", "none",
                     "--ext", "SCI", "--tile", "32"]) == 0
    out = capsys.readouterr().out
    assert "cosmic-ray pixels SCI,1:" in out and "1 of 1 files cleaned" in out
    with fits.open(tmp_path / "out" / "img0.fits") as hdul, fits.open(names[0]) as original:
        np.testing.assert_array_equal(hdul["SCI"].data, original["SCI"].data)  # --inpaint none
        assert hdul["CRMASK", 1].data.any()


def test_flag(tmp_path, capsys):
    from astro_deepcr.training.flc import write_flc_stack

    stack = write_flc_stack(tmp_path, n_exposures=1, chip_shape=(64, 96))
    status = cli.main(["flag", stack.files[0], str(tmp_path / "nothing*_flc.fits"), "--grow", "1", "-q"])
    assert status == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "nothing*_flc.fits" in err and "1 of 2 files flagged" in err
    with fits.open(stack.files[0]) as hdul:
        assert (hdul["DQ", 1].data & 4096).any() and hdul[0].header["DCRGROW"] == 1


def test_drizzle_wiring(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("astro_deepcr.drizzle.astrodrizzle", lambda files, **kwargs: calls.append((files, kwargs)))
    assert cli.main(["drizzle", "a_flc.fits", "b_flc.fits", "--output", "final", "--threshold", "0.3",
                     "--precision", "float32", "-p", "final_bits=64", "-p", "build=true", "-p", "final_wcs=yes",
                     "-p", "final_scale=0.05"]) == 0
    files, kwargs = calls[0]
    assert files == ["a_flc.fits", "b_flc.fits"]
    # only the options given: the others keep a --config file's values (or the task's defaults)
    assert kwargs == {"configobj": None, "threshold": 0.3, "precision": "float32", "final_bits": 64, "build": True,
                      "final_wcs": True, "final_scale": 0.05, "output": "final"}
    assert cli.main(["drizzle", "a_flc.fits", "--config", "my.cfg", "--cr-method", "driz_cr", "--star-shape"]) == 0
    assert calls[1] == (["a_flc.fits"], {"configobj": "my.cfg", "cr_method": "driz_cr", "star_shape": True})

    def fail(files, **kwargs):
        raise ValueError("cannot find AstroDrizzle .cfg file\nmissing.cfg")

    monkeypatch.setattr("astro_deepcr.drizzle.astrodrizzle", fail)
    assert cli.main(["drizzle", "a_flc.fits", "--config", "missing.cfg"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["astro-deepcr: FAILED drizzle of a_flc.fits: cannot find AstroDrizzle .cfg file missing.cfg"]
    assert cli.main(["drizzle", "a_flc.fits", "-p", "novalue"]) == 2


def test_bench(capsys):
    assert cli.main(["bench", "--shape", "64", "64", "--repeat", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model ACS-WFC on cpu, image 64x64:") and "Mpix/s" in out and "peak RSS" in out


def test_plugins_skip_missing_and_broken(monkeypatch, tmp_path, capsys):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise RuntimeError('half-written')\n")
    good = tmp_path / "good_plugin.py"
    good.write_text("def add_subparser(subparsers):\n"
                    "    parser = subparsers.add_parser('hello')\n"
                    "    parser.set_defaults(func=lambda args: 7)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "PLUGINS", ("no_such_module_xyz", "broken_plugin", "good_plugin"))
    assert cli.main(["hello"]) == 7
    assert cli.main(["models", "list", "--kind", "mask"]) == 0


def test_clean_on_dask_scheduler(tmp_path, capsys):
    """``--dask ADDRESS`` sends the files to the workers of a running scheduler."""
    distributed = pytest.importorskip("distributed")
    names, _ = write_images(tmp_path / "in", count=4)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=50) as cluster:
        status = cli.main(["clean", *names, "-o", str(tmp_path / "out"), "--dask", cluster.scheduler_address,
                           "--threads", "1"])
    assert status == 0, capsys.readouterr().err
    assert "4 of 4 files cleaned" in capsys.readouterr().out
    for name in names:
        with fits.open(tmp_path / "out" / os.path.basename(name)) as hdul:
            assert hdul["CRMASK", 1].data.sum() == hdul["SCI"].header["DCRNCR"] > 0


# -- #17: header gain, quick looks, the real-frame demo --------------------------------------------------------------


def test_clean_gain_from_header(tmp_path, capsys):
    """``clean`` of an ADU file with GAIN in its header works without --gain: the mask of --gain <GAIN>."""
    names, _ = write_images(tmp_path / "in", count=1, bunit="ADU")
    with fits.open(names[0]) as hdul:
        hdul["SCI"].header["GAIN"] = 2.0
        hdul.writeto(tmp_path / "with_gain.fits")
    assert cli.main(["clean", str(tmp_path / "with_gain.fits"), "-o", str(tmp_path / "a"), "-q"]) == 0
    assert cli.main(["clean", names[0], "-o", str(tmp_path / "b"), "--gain", "2", "-q"]) == 0
    with fits.open(tmp_path / "a" / "with_gain.fits") as a, fits.open(tmp_path / "b" / "img0.fits") as b:
        assert a["CRMASK", 1].data.sum() > 20
        np.testing.assert_array_equal(a["CRMASK", 1].data, b["CRMASK", 1].data)
        np.testing.assert_array_equal(a["SCI"].data, b["SCI"].data)


def test_clean_and_flag_plot_regions(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from scipy import ndimage

    from astro_deepcr.training.flc import write_flc_stack
    from astro_deepcr.visualization import read_regions

    stack = write_flc_stack(tmp_path / "in", n_exposures=1, chip_shape=(64, 96))
    root = os.path.basename(stack.files[0])[:-len(".fits")]
    assert cli.main(["clean", stack.files[0], "-o", str(tmp_path / "out"), "--plot", "--regions",
                     "--ext", "SCI,2"]) == 0
    out = capsys.readouterr().out
    assert "_sci1." not in out
    for extver in (2,):
        png, reg = tmp_path / "out" / f"{root}_sci{extver}.png", tmp_path / "out" / f"{root}_sci{extver}.reg"
        assert f"wrote {png}" in out and f"wrote {reg}" in out
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with fits.open(tmp_path / "out" / f"{root}.fits") as hdul:
            n_objects = ndimage.label(hdul["CRMASK", extver].data, structure=np.ones((3, 3)))[1]
        assert n_objects > 0 and len(read_regions(reg)) == n_objects
    assert cli.main(["flag", stack.files[0], "--regions", "-q"]) == 0
    reg = tmp_path / "in" / f"{root}_sci1.reg"
    assert reg.is_file() and not (tmp_path / "in" / f"{root}_sci1.png").exists()
    with fits.open(stack.files[0]) as hdul:
        n_objects = ndimage.label(hdul["DQ", 1].data & 4096, structure=np.ones((3, 3)))[1]
    assert n_objects > 0 and len(read_regions(reg)) == n_objects


def test_demo_simulated_needs_the_plugin(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "PLUGINS", ())
    assert cli.main(["demo", "--simulated", "-o", str(tmp_path / "d")]) == 2
    assert "needs the plug-in astro_deepcr.evaluation.simulated_demo" in capsys.readouterr().err
    assert cli.main(["demo", "--simulated", "--shape", "64", "64"]) == 2  # its options come with the plug-in
    assert not (tmp_path / "d").exists()


def test_demo_star_shape_is_for_the_real_exposure(tmp_path, capsys):
    assert cli.main(["demo", "--simulated", "--star-shape", "-o", str(tmp_path / "d")]) == 2
    assert "--star-shape runs on the real exposure" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_demo_on_the_real_frame(tmp_path, capsys):
    """The README's main-job command: the real ACS/HRC frame, its numbers printed, FITS, PNG and regions."""
    import re

    pytest.importorskip("spherical_geometry")
    with pytest.warns(Warning, match="no deepCR mask model for ACS/HRC"):
        assert cli.main(["demo", "-o", str(tmp_path / "demo_out"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    printed = re.search(r"(\d+) cosmic-ray pixels in (\d+) objects \(([0-9.]+) % of the good pixels", out)
    assert printed, out
    with fits.open(tmp_path / "demo_out" / "demo.fits") as hdul:
        cr_mask = hdul["CRMASK"].data.astype(bool)
        good = (hdul["DQ"].data & ~(4096 | 8192)) == 0
    from scipy import ndimage

    assert int(printed.group(1)) == cr_mask.sum()
    assert int(printed.group(2)) == ndimage.label(cr_mask, structure=np.ones((3, 3)))[1]
    assert abs(float(printed.group(3)) - 100 * cr_mask.sum() / good.sum()) < 5e-4
    # measured (ground, HRC's model since session 35, CPU): 4970 CR pixels in 1042 objects, 0.487 % of the good
    # pixels in float32, 4967 in 1039 in bfloat16 (ACS-WFC, its model before: 2412 in 711, 0.237 %)
    assert 4780 < cr_mask.sum() < 5160 and 1000 < int(printed.group(2)) < 1085
    assert (tmp_path / "demo_out" / "demo.png").stat().st_size > 50_000
    assert (tmp_path / "demo_out" / "demo.reg").read_text().count("polygon(") == int(printed.group(2))


def test_flag_star_shape(tmp_path, capsys):
    """``--star-shape`` reaches the core: the headers record it (a 64 x 96 chip has too few stars to learn from);
    a chip whose headers give no read noise fails with a message naming the file and the keywords."""
    from astro_deepcr.training.flc import write_flc_stack

    stack = write_flc_stack(tmp_path, n_exposures=1, chip_shape=(64, 96))
    with fits.open(stack.files[0], mode="update") as hdul:
        hdul[0].header["READNSEA"] = 4.0
    assert cli.main(["flag", stack.files[0], "--star-shape", "-q"]) == 0
    with fits.open(stack.files[0]) as hdul:
        assert hdul["SCI", 1].header["DCRSTAR"] == "none: too few isolated stars"
    with fits.open(stack.files[0], mode="update") as hdul:
        del hdul[0].header["READNSEA"]
        for hdu in hdul:
            for key in ("RDNOISE", "READNSEA", "READNSEB", "READNSEC", "READNSED"):
                hdu.header.remove(key, ignore_missing=True, remove_all=True)
    assert cli.main(["flag", stack.files[0], "--star-shape", "-q"]) == 1
    assert "star_shape=True needs the read noise" in capsys.readouterr().err

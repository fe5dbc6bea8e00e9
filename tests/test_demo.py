# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The demos: the real-frame one (astro_deepcr.demo), the simulated one (evaluation.simulated_demo)."""

import numpy as np
import pytest
from astropy.io import fits

from astro_deepcr.datasets import hst_example_path
from astro_deepcr.demo import run_demo, summary_lines
from astro_deepcr.evaluation.simulated_demo import run_simulated_demo

pytest.importorskip("matplotlib")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_run_simulated_demo(tmp_path):
    summary = run_simulated_demo(tmp_path, shape=(128, 128), seed=1)
    assert summary["n_true"] > 50 and summary["tpr"] > 0.6 and summary["fpr"] < 0.01
    with open(summary["png"], "rb") as stream:
        assert stream.read(8) == PNG_SIGNATURE
    with fits.open(summary["fits"]) as hdul:
        assert [hdu.name for hdu in hdul] == ["PRIMARY", "CRMASK", "CRPROB", "CRTRUE"]
        assert hdul["CRMASK"].data.sum() == summary["n_detected"]
        assert hdul["CRTRUE"].data.sum() == summary["n_true"]
        # the rates are those of the written masks
        found, truth = hdul["CRMASK"].data.astype(bool), hdul["CRTRUE"].data.astype(bool)
        assert summary["tpr"] == (found & truth).sum() / truth.sum()
        assert summary["fpr"] == (found & ~truth).sum() / (~truth).sum()
    # fixed seed: the same image and rates again
    assert run_simulated_demo(tmp_path / "again", shape=(128, 128), seed=1) == {
        **summary, "fits": str(tmp_path / "again" / "demo.fits"), "png": str(tmp_path / "again" / "demo.png")}


@pytest.fixture(scope="module")
def small_hrc(tmp_path_factory):
    """The real HRC frame cut to 256 x 256 (the same layout and headers), to keep the test fast."""
    try:
        path = hst_example_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("hrc") / "j8bt06nyq_cut_flt.fits"
    with fits.open(path) as hdul:
        cut = fits.HDUList([hdul[0].copy()] + [fits.ImageHDU(hdul[index].data[384:640, 384:640],
                                                             header=hdul[index].header, name=hdul[index].name,
                                                             ver=hdul[index].ver) for index in (1, 2, 3)])
        cut.writeto(out)
    return out


def test_run_demo_on_real_frame(tmp_path, small_hrc):
    with pytest.warns(Warning, match="no deepCR mask model for ACS/HRC"):
        summary = run_demo(tmp_path, path=small_hrc, device="cpu")
    # ACS/HRC has no card: HST's model for a camera without one, recorded with its reason
    assert summary["model"] == "ground" and summary["reason"] == "HST default for a camera without a card"
    assert summary["description"] == "ACS HRC F606W NGC104, 60 s"
    with fits.open(summary["fits"]) as hdul, fits.open(small_hrc) as original:
        cr_mask = hdul["CRMASK"].data.astype(bool)
        dq = original["DQ"].data
        bad = (dq & ~(4096 | 8192)) != 0
        # DQ respected: no DQ-flagged (saturated, hot...) pixel is called a cosmic ray
        assert bad.sum() > 100 and not (cr_mask & bad).any()
        assert hdul[0].header["DCRMODEL"] == "ground" and hdul[0].header["DCRNCR"] == cr_mask.sum()
        assert hdul[0].header["DCRWHY"] == summary["reason"] and hdul[0].header["DCRBIT"] == 4096
        np.testing.assert_array_equal((hdul["DQ"].data & 4096) != 0, cr_mask)
        np.testing.assert_array_equal(hdul["DQ"].data & ~4096, dq & ~4096)
        np.testing.assert_array_equal(hdul["SCI"].data, original["SCI"].data)
    assert summary["n_cr_pixels"] == cr_mask.sum() and summary["n_bad"] == bad.sum()
    # measured on this cutout: 325 CR pixels in 79 objects (ground, float32, CPU; 326 in 79 in bfloat16), none
    # within 3 px of its 97 saturated pixels (the 3 px saturation protection). ACS-WFC, its model before session
    # 35, gave 193 in 58
    assert 300 < summary["n_cr_pixels"] < 352 and 72 < summary["n_cr_objects"] < 87
    assert summary["n_saturated"] == 97 and summary["n_rim_flagged"] == 0
    assert (tmp_path / "demo.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "demo.reg").read_text().count("polygon(") == summary["n_cr_objects"]


def test_run_demo_missing_example(monkeypatch, tmp_path):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "spherical_geometry" else real_find_spec(name, *args))
    with pytest.raises(FileNotFoundError, match="spherical-geometry"):
        run_demo(tmp_path)
    assert not (tmp_path / "demo.fits").exists()


def test_run_demo_star_shape_needs_the_read_noise(tmp_path, small_hrc):
    """A file without READNSE* is refused before anything is written, naming the file and chip; the small cut-out
    with its read noise has too few isolated stars for the test, which then changes nothing and says so."""
    import warnings

    stripped = tmp_path / "noread_flt.fits"
    with fits.open(small_hrc) as hdul:
        for hdu in hdul:
            for key in [key for key in hdu.header if key.startswith("READNSE")]:
                del hdu.header[key]
        hdul.writeto(stripped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no card for ACS/HRC
        with pytest.raises(ValueError, match=r"noread_flt.fits\[SCI,1\]: star_shape=True needs the read noise"):
            run_demo(tmp_path / "refused", path=stripped, device="cpu", star_shape=True)
        assert not (tmp_path / "refused").exists()
        plain = run_demo(tmp_path / "plain", path=small_hrc, device="cpu", plot=False)
        shaped = run_demo(tmp_path / "shaped", path=small_hrc, device="cpu", plot=False, star_shape=True)
    assert plain["star_shape"] == "off" and shaped["star_shape"].startswith("none: too few isolated stars")
    assert shaped["n_cr_pixels"] == plain["n_cr_pixels"]
    assert summary_lines(shaped)[-1] == f"star-shape test: {shaped['star_shape']}"
    assert not summary_lines(plain)[-1].startswith("star-shape")

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of astro_deepcr.drizzle on generated _flc files; the astrodrizzle ones run the real drizzlepac, offline
(skipped where drizzlepac, an optional extra, is not installed)."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr import DeepCR
from astro_deepcr.drizzle import (
    DEFAULT_BITS,
    DEFAULT_FILL_BITS,
    astrodrizzle,
    flag_cosmic_rays,
    grow_like_driz_cr,
    load_config,
    parse_inputs,
    save_config,
    select_model,
)
from astro_deepcr.evaluation.drizzle_compare import compare_cr_rejection, cr_positions_in_output
from astro_deepcr.evaluation.metrics import mask_scores
from astro_deepcr.fitsutil import FitsUpdateError
from astro_deepcr.training.flc import flc_primary_header, write_flc_stack

# AstroDrizzle, stwcs and astropy.io.fits (long HIERARCH comments, WCS fixes) warn a lot on any input
drizzlepac_warnings = pytest.mark.filterwarnings(
    "ignore::astropy.io.fits.verify.VerifyWarning",
    "ignore::astropy.wcs.FITSFixedWarning",
    "ignore::DeprecationWarning",
    "ignore::PendingDeprecationWarning",
    "ignore::ResourceWarning",
    "ignore::RuntimeWarning",
    "ignore:.*:UserWarning:drizzlepac",
    "ignore:.*:UserWarning:stwcs",
)
#: drizzlepac is an optional extra (astro_deepcr[drizzle]): tests that run it skip cleanly without it
requires_drizzlepac = pytest.mark.skipif(importlib.util.find_spec("drizzlepac") is None,
                                         reason='drizzlepac is not installed (pip install "astro_deepcr[drizzle]")')
RECORD_KEYS = {"DCRMODEL", "DCRVERS", "DCRTHRSH", "DCRBIT", "DCRGROW", "DCRSTEP", "DCRWHY", "DCRPREC", "DCRBACK",
               "DCRNCR", "DCRSATP", "DCRPVAL"}
NO_REJECTION = {"driz_cr": False, "median": False, "blot": False, "driz_separate": False}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """3 dithered 2-chip 128x256 exposures with known CRs (written once, copied by each test)."""
    return write_flc_stack(tmp_path_factory.mktemp("flc"), n_exposures=3, chip_shape=(128, 256), seed=1)


def _copy(stack, directory, n=3, truth=False):
    files = stack.truth_files if truth else stack.files
    return [shutil.copy(path, directory) for path in files[:n]]


def _bytes(path):
    with open(path, "rb") as stream:
        return stream.read()


def _original_cards(header):
    """Card images of a header without the cards flag_cosmic_rays adds."""
    return [card.image for card in header.cards if card.keyword not in RECORD_KEYS
            and not (card.keyword == "HISTORY" and str(card.value).startswith("astro_deepcr"))]


def _dq(path, extver):
    return fits.getdata(path, ("DQ", extver)).astype(np.int64)


# -- model choice, units, inputs --------------------------------------------------------------------------------------


def test_select_model_from_headers():
    # the drizzle step chooses through astro_deepcr.zoo.select_model (the model cards), with its reason
    assert select_model(flc_primary_header("a", filter1="F606W"))[0].name == "ACS-WFC-F606W"
    assert select_model(flc_primary_header("a", filter1="CLEAR1L", filter2="F814W"))[0].name == "ACS-WFC-F814W"
    assert select_model(flc_primary_header("a", filter1="F555W"))[0].name == "ACS-WFC"
    assert select_model(flc_primary_header("a", instrument="WFC3", detector="UVIS"))[0].name == "WFC3-UVIS"
    assert select_model(flc_primary_header("a", filter1="F606W"))[1] == "card for ACS/WFC F606W"
    hrc = flc_primary_header("a", detector="HRC")
    with pytest.warns(AstropyUserWarning, match="no deepCR mask model for ACS/HRC"):
        assert select_model(hrc)[0].name == "ground"  # HST's model for a camera without a card
    with pytest.warns(AstropyUserWarning, match="trained on ACS/WFC"):
        spec, reason = select_model(hrc, model="ACS-WFC")
    assert (spec.name, reason) == ("ACS-WFC", "explicit")


def test_parse_inputs_forms(stack, tmp_path, monkeypatch):
    files = _copy(stack, tmp_path)
    monkeypatch.chdir(tmp_path)
    names = [os.path.basename(path) for path in files]
    (tmp_path / "inputs.lis").write_text("\n".join(names) + "\n")
    assert sorted(parse_inputs("*_flc.fits")) == names
    assert parse_inputs(",".join(names)) == names
    assert parse_inputs("@inputs.lis") == names
    assert parse_inputs(names) == names
    with pytest.raises(ValueError, match="no input files"):
        parse_inputs("*_nothing.fits")


def test_bad_input_is_refused(stack, tmp_path):
    path = _copy(stack, tmp_path, n=1)[0]
    with pytest.raises(ValueError, match="crbit=8192 is the DQ bit of calacs"):
        flag_cosmic_rays(path, crbit=8192)
    with pytest.raises(ValueError, match="power of two"):
        flag_cosmic_rays(path, crbit=4097)
    with pytest.raises(ValueError, match="grow"):
        flag_cosmic_rays(path, grow=-1)
    with pytest.raises(ValueError, match="1 = no growth"):
        flag_cosmic_rays(path, grow=0)  # 0.1.0's "no growth" is now a box side of 1
    with pytest.raises(ValueError, match="bits='64,x' is not a DQ bit expression"):
        flag_cosmic_rays(path, bits="64,x")
    with fits.open(path, mode="update") as hdul:
        hdul["SCI", 1].header["BUNIT"] = "JY"
    original = _bytes(path)
    with pytest.raises(ValueError, match="unsupported BUNIT 'JY'"):
        flag_cosmic_rays(path)
    assert _bytes(path) == original
    os.chmod(path, 0o444)
    with pytest.raises(FitsUpdateError, match="read-only"):
        flag_cosmic_rays(path)


# -- flag_cosmic_rays --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("native", "precision", "recorded"), [(True, None, "bfloat16"), (True, "float32", "float32"),
                                                               (False, None, "float32")])
def test_flag_records_the_precision_used(stack, tmp_path, monkeypatch, native, precision, recorded, verdict_cache):
    """``precision`` reaches the network and DCRPREC records what ran: ``auto`` (the default) resolved per
    hardware and the verdict of this machine (here provided: ACS-WFC-F606W passed), never the word "auto";
    DCRPVAL says which verdict."""
    from astro_deepcr import conf, engine

    monkeypatch.setattr(engine, "_cpu_native_bfloat16", lambda: native)
    path = _copy(stack, tmp_path)[0]
    with conf.set_temp("backend", "torch"):
        verdict_cache("ACS-WFC-F606W", "torch", True)
        flag_cosmic_rays(path, precision=precision, device="cpu")
    assert fits.getheader(path)["DCRPREC"] == recorded
    expected = {None: "passed here 2026-12-04 (HRC 40/4000 flipped)" if native else "no native bfloat16"}
    assert fits.getheader(path)["DCRPVAL"] == expected.get(precision, "requested")


def test_flag_changes_only_crbit_and_finds_the_injected_crs(stack, tmp_path):
    files = _copy(stack, tmp_path)
    before = [fits.open(path, memmap=False) for path in files]
    summary = flag_cosmic_rays(files)
    assert len(summary) == 6 and set(summary["model"]) == {"ACS-WFC-F606W"}
    found, truth, valid = [], [], []
    for i, (path, original) in enumerate(zip(files, before, strict=True)):
        with fits.open(path) as hdul:
            assert len(hdul) == len(original)
            for extver in (1, 2):
                for name in ("SCI", "ERR"):
                    assert hdul[name, extver].data.tobytes() == original[name, extver].data.tobytes()
                assert hdul["ERR", extver].header == original["ERR", extver].header
                # SCI,N: only the chip's DCR* provenance (DCRNCR = the chip's count) and one HISTORY card added
                sci_header = hdul["SCI", extver].header
                assert _original_cards(sci_header) == [card.image for card in original["SCI", extver].header.cards]
                assert RECORD_KEYS <= set(sci_header) and sci_header["DCRBIT"] == 4096
                assert sci_header["DCRNCR"] == summary["n_cr"][2 * i + extver - 1]
                assert hdul["DQ", extver].header == original["DQ", extver].header
                new, old = hdul["DQ", extver].data.astype(np.int64), original["DQ", extver].data.astype(np.int64)
                assert np.array_equal(new & ~4096, old & ~4096)  # only crbit changed
                assert (new & 4096).sum() // 4096 == summary["n_cr"][2 * i + extver - 1]
                bad = (old & ~(4096 | 8192)) != 0
                assert not (new & 4096)[bad].any()  # bad pixels never flagged
                found.append((new & 4096) > 0)
                truth.append(stack.cr_masks[i][extver - 1])
                valid.append(~bad)
            primary = hdul[0].header
            assert primary["DCRMODEL"] == "ACS-WFC-F606W" and primary["DCRBIT"] == 4096
            assert primary["DCRTHRSH"] == 0.5 and "DCRVERS" in primary
            assert primary["DCRSTEP"] == "flag" and primary["DCRWHY"] == "card for ACS/WFC F606W"
            assert primary["DCRPREC"] == DeepCR("ACS-WFC-F606W").precision_used  # "auto" resolved, not "auto"
            assert primary["DCRNCR"] == sum(summary["n_cr"][2 * i:2 * i + 2]) and primary["DCRGROW"] == 1
            assert "astro_deepcr CRs in DQ bit 4096" in str(primary["HISTORY"])
            assert _original_cards(primary) == [card.image for card in original[0].header.cards]
        original.close()
    recall, fpr, precision = mask_scores(np.concatenate([f.ravel() for f in found]),
                                         np.concatenate([t.ravel() for t in truth]),
                                         np.concatenate([v.ravel() for v in valid]))
    print(f"deepCR flag on 6 synthetic chips: recall {recall:.4f} FPR {fpr:.2e} precision {precision:.4f}")
    # measured 0.8049 / 4.85e-4 / 0.9511 (float32, 128x256 chips, seed 1, 2026-11-25); the margins allow for the
    # bfloat16 default where the CPU has it (< ~1.5 % of the CR pixels), not for a detector that got worse
    assert recall > 0.78 and fpr < 7e-4 and precision > 0.93


def test_flag_is_idempotent_and_reset(stack, tmp_path):
    path = _copy(stack, tmp_path, n=1)[0]
    flag_cosmic_rays(path)
    first = _bytes(path)
    flag_cosmic_rays(path)
    assert _bytes(path) == first  # same DQ, same keywords, one HISTORY line
    flag_cosmic_rays(path, resetbits=0)
    assert _bytes(path) == first
    # stale flags: kept without reset, cleared with it
    with fits.open(path, mode="update") as hdul:
        stale = (hdul["DQ", 1].data & 4096) == 0
        stale[:, :200] = False
        hdul["DQ", 1].data[stale] |= 4096
    flag_cosmic_rays(path, resetbits=0)
    assert ((_dq(path, 1) & 4096) > 0)[stale].all()
    flag_cosmic_rays(path)
    assert _bytes(path) == first


# the detection core's flagged-fraction alarm counts the grown mask (3x3 growth: ~3.5 % of this small chip)
def test_grow_and_bits(stack, tmp_path):
    path = _copy(stack, tmp_path, n=1)[0]
    cr = stack.cr_masks[0][0]
    y, x = np.argwhere(cr)[0]
    with fits.open(path, mode="update") as hdul:
        hdul["DQ", 1].data[y, x] |= 16  # a hot pixel under a CR: never flagged
    plain = flag_cosmic_rays(path)["n_cr"][0]
    assert not _dq(path, 1)[y, x] & 4096
    grown = flag_cosmic_rays(path, grow=3)["n_cr"][0]  # driz_cr_grow's 3x3 box
    assert grown > plain and fits.getheader(path)["DCRGROW"] == 3
    assert not _dq(path, 1)[y, x] & 4096  # grown pixels that are bad are not flagged either
    assert flag_cosmic_rays(path, bits=None)["n_cr"][0] >= plain  # every pixel good
    assert fits.getheader(path)["DCRGROW"] == 1


def test_electrons_per_second_input(stack, tmp_path):
    path = _copy(stack, tmp_path, n=1)[0]
    reference = flag_cosmic_rays(shutil.copy(path, tmp_path / "ref_flc.fits"))["n_cr"]
    with fits.open(path, mode="update") as hdul:
        exptime = hdul[0].header["EXPTIME"]
        for extver in (1, 2):
            hdul["SCI", extver].data = (hdul["SCI", extver].data / exptime).astype(np.float32)
            hdul["SCI", extver].header["BUNIT"] = "ELECTRONS/S"
    rate = flag_cosmic_rays(path)["n_cr"]
    assert np.allclose(rate, reference, rtol=0.01)


def test_interrupted_write_leaves_original(stack, tmp_path):
    path = _copy(stack, tmp_path, n=1)[0]
    original = _bytes(path)
    script = textwrap.dedent(f"""
        import os, signal
        from astropy.io import fits
        from astro_deepcr.drizzle import flag_cosmic_rays
        real_writeto = fits.HDUList.writeto
        def dying_writeto(self, name, *args, **kwargs):
            real_writeto(self, name, *args, **kwargs)
            with open(name, "r+b") as stream:  # a half-written temporary file
                stream.truncate(os.path.getsize(name) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        fits.HDUList.writeto = dying_writeto
        flag_cosmic_rays({path!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    assert _bytes(path) == original
    with fits.open(path) as hdul:
        assert len(hdul) == 7 and hdul["SCI", 2].data.shape == (128, 256)
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]  # the stray half file
    flag_cosmic_rays(path)  # the dead process's lock is gone
    assert (_dq(path, 1) & 4096).any()


def test_real_hst_hrc_file(tmp_path):
    from astro_deepcr.datasets import hst_example_path

    try:
        source = hst_example_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    path = shutil.copy(source, tmp_path / "j8bt06nyq_flt.fits")
    with fits.open(path) as hdul:
        before = [(hdu.header.copy(), None if hdu.data is None else hdu.data.copy()) for hdu in hdul]
    unprotected = shutil.copy(source, tmp_path / "unprotected_flt.fits")
    with pytest.warns(AstropyUserWarning, match="trained on ACS/WFC"):
        network_only = flag_cosmic_rays(unprotected, model="ACS-WFC", protect_saturated=False)["n_cr"][0]
    with pytest.warns(AstropyUserWarning, match="trained on ACS/WFC"):
        summary = flag_cosmic_rays(path, model="ACS-WFC")
    print(f"j8bt06nyq_flt (ACS/HRC F606W 60 s, ACS-WFC model): {summary['n_cr'][0]} CR pixels flagged "
          f"({network_only} without the saturation protection), {summary['n_bad'][0]} bad")
    # measured 3880 CR pixels without the saturation protection (float32, 2026-11-25; 3828 with fill_bits 1,2,4,
    # 2026-11-29): 0.37 % of the 1024x1024 HRC chip in 60 s; within 3 % of it (bfloat16 moves < ~1.5 % of the CR
    # pixels), so flagging nothing, or twice as much, fails. The protection (3 px around saturation) only removes
    # flags: 2412 left (2026-12-04), none within 3 px of a saturated pixel (2577 and 165 with the 1 px zone)
    assert abs(network_only - 3880) < 0.03 * 3880
    assert abs(summary["n_cr"][0] - 2412) < 0.03 * 2412 and summary["n_cr"][0] < network_only
    assert fits.getval(path, "DCRSATP", ("SCI", 1)) == 3 and fits.getval(unprotected, "DCRSATP", ("SCI", 1)) == 0
    with fits.open(path) as hdul:
        assert len(hdul) == len(before)
        for index, (hdu, (header, data)) in enumerate(zip(hdul, before, strict=True)):
            if index == 0:
                continue
            if hdu.name == "SCI":  # the chip's DCR* provenance
                assert hdu.header["DCRNCR"] == summary["n_cr"][0]
                assert _original_cards(hdu.header) == [card.image for card in header.cards]
            else:
                assert hdu.header == header
            if hdu.name == "DQ":
                assert np.array_equal(hdu.data & ~4096, data & ~4096)
                assert int(((hdu.data & 4096) > 0).sum()) == summary["n_cr"][0]
            else:
                assert hdu.data.tobytes() == data.tobytes()
        assert RECORD_KEYS <= set(hdul[0].header)
        assert _original_cards(hdul[0].header) == [card.image for card in before[0][0].cards]


def test_config_round_trip(tmp_path):
    defaults = load_config()
    assert defaults["crbit"] == 4096 and defaults["bits"] == DEFAULT_BITS and defaults["model"] is None
    assert defaults["fill_bits"] == DEFAULT_FILL_BITS  # the detection core's default
    assert defaults["grow"] == 1 and defaults["resetbits"] is None and defaults["star_shape"] is False
    path = save_config(tmp_path / "my_flag.cfg", threshold=0.3, grow=3, model="ACS-WFC", bits="64,32", resetbits=0,
                       star_shape=True)
    loaded = load_config(path)
    assert (loaded["threshold"], loaded["grow"], loaded["model"], loaded["star_shape"]) == (0.3, 3, "ACS-WFC", True)
    assert (loaded["bits"], loaded["resetbits"]) == ("64,32", "0")
    with pytest.raises(ValueError, match="unknown astro_deepcr_flag parameter"):
        save_config(tmp_path / "x.cfg", thresold=0.3)
    with pytest.raises(TypeError, match="star_shape must be True or False, not 'yes'"):
        save_config(tmp_path / "x.cfg", star_shape="yes")


# -- astrodrizzle ------------------------------------------------------------------------------------------------------


def test_unknown_astrodrizzle_parameter():
    with pytest.raises(ValueError, match="'final_bit' \\(did you mean 'final_bits'\\?\\)"):
        astrodrizzle("x_flc.fits", final_bit=0)
    with pytest.raises(ValueError, match="cr_method"):
        astrodrizzle("x_flc.fits", cr_method="lacosmic")


@requires_drizzlepac
@drizzlepac_warnings
@pytest.mark.parametrize("n_exposures", [1, 3])
def test_astrodrizzle_deepcr_flags_dq_and_writes_crclean(stack, tmp_path, monkeypatch, n_exposures):
    """The DQ flags of astrodrizzle() are flag_cosmic_rays' on a copy; drizzlepac writes no crmask, median or blot."""
    for sub in ("run", "ref"):
        (tmp_path / sub).mkdir()
    files = _copy(stack, tmp_path / "run", n=n_exposures)
    reference = _copy(stack, tmp_path / "ref", n=n_exposures)
    flag_cosmic_rays(reference)
    monkeypatch.chdir(tmp_path / "run")
    names = [os.path.basename(path) for path in files]
    astrodrizzle(names, output="deep", num_cores=1, driz_cr_corr=True)
    assert os.path.isfile("deep_drc_sci.fits") and os.path.isfile("deep_drc_wht.fits")
    assert not [name for name in os.listdir() if name.endswith(("_blt.fits", "_med.fits", "_single_sci.fits",
                                                                "_crmask.fits"))]
    for i, (name, ref) in enumerate(zip(names, reference, strict=True)):
        root = name.split("_")[0]
        for extver in (1, 2):
            cr = (_dq(name, extver) & 4096) > 0
            assert np.array_equal(cr, (_dq(ref, extver) & 4096) > 0)
            assert cr[stack.cr_masks[i][extver - 1]].mean() > 0.6
            # the archived original (preserve=True) was copied before the flags
            assert not (_dq(os.path.join("OrIg_files", name), extver) & 4096).any()
            with fits.open(f"{root}_crclean.fits") as clean:
                assert np.array_equal(clean["DQ", extver].data == 4096, cr)
                assert not (clean["DQ", extver].data[~cr]).any()
                original = fits.getdata(name, ("SCI", extver))
                assert np.array_equal(clean["SCI", extver].data[~cr], original[~cr])
                assert (clean["SCI", extver].data[cr] < original[cr]).mean() > 0.9
    with open("astrodrizzle.log") as stream:
        text = stream.read()
    assert "deepCR (ACS-WFC-F606W): " in text and "Writing out image to disk: deep_drc_sci.fits" in text


@requires_drizzlepac
@drizzlepac_warnings
def test_flag_then_plain_astrodrizzle_is_the_same_drizzle(stack, tmp_path, monkeypatch):
    """Route 3 (flag, then AstroDrizzle with resetbits=0) == astrodrizzle(cr_method='deepcr'); and why resetbits=0."""
    from drizzlepac.astrodrizzle import AstroDrizzle

    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir()
        _copy(stack, tmp_path / sub)
    names = [os.path.basename(path) for path in stack.files]
    common = {"num_cores": 1, "context": False, "skysub": False}
    monkeypatch.chdir(tmp_path / "a")
    astrodrizzle(names, output="route", **common)
    monkeypatch.chdir(tmp_path / "b")
    flag_cosmic_rays(names)
    flagged = [_dq(name, 1) & 4096 for name in names]
    AstroDrizzle(names, output="route", resetbits=0, **NO_REJECTION, **common)
    assert all(np.array_equal(_dq(name, 1) & 4096, f) for name, f in zip(names, flagged, strict=True))  # flags kept
    a = fits.getdata(tmp_path / "a" / "route_drc_sci.fits")
    b = fits.getdata(tmp_path / "b" / "route_drc_sci.fits")
    assert np.array_equal(a, b, equal_nan=True)
    # with AstroDrizzle's default resetbits="4096" the flags are wiped before drizzling
    monkeypatch.chdir(tmp_path / "c")
    flag_cosmic_rays(names)
    AstroDrizzle(names, output="route", **NO_REJECTION, **common)
    assert not any((_dq(name, 1) & 4096).any() for name in names)


@requires_drizzlepac
@drizzlepac_warnings
def test_driz_cr_method_is_classic_astrodrizzle(stack, tmp_path, monkeypatch):
    _copy(stack, tmp_path)
    monkeypatch.chdir(tmp_path)
    names = [os.path.basename(path) for path in stack.files]
    astrodrizzle(",".join(names), cr_method="driz_cr", output="classic", num_cores=1, context=False)
    assert os.path.isfile("classic_drc_sci.fits") and os.path.isfile("classic_med.fits")
    assert os.path.isfile("jsyn0001q_sci1_blt.fits") and os.path.isfile("jsyn0001q_sci1_crmask.fits")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    import warnings

    pytest.importorskip("drizzlepac")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compare_cr_rejection(str(tmp_path_factory.mktemp("compare")), shape=(128, 256), seed=1)


def test_residuals_at_cr_positions(comparison):
    # must-show 3: at injected CR positions the deepCR _drc is far closer to the CR-free truth than no
    # rejection, on 1 exposure and on 3; on 3 exposures it is at least as close as classic driz_cr
    residual = comparison["residual"]
    print({key: {k: round(v, 4) for k, v in value.items()} for key, value in residual.items()})
    drizcr = residual["drizcr_3exp"]
    for run, none in (("deepcr_1exp", "none_1exp"), ("deepcr_3exp", "none_3exp")):
        assert residual[run]["mean_abs"] < 0.2 * residual[none]["mean_abs"], run
        assert residual[run]["rms"] < 0.2 * residual[none]["rms"], run
    for statistic in ("mean_abs", "rms", "p99_abs"):
        assert residual["deepcr_3exp"][statistic] <= drizcr[statistic], statistic
    # one deepCR exposure against driz_cr on three: the rms is lower in every configuration measured
    # (benchmarks/drizzle_compare.py), the mean and p99 only in some (one exposure has no second look
    # at the CR pixels deepCR misses), so only the rms is asserted
    assert residual["deepcr_1exp"]["rms"] <= drizcr["rms"]
    # with one exposure a flagged pixel has no other data: the product has a hole there (zero weight),
    # counted apart; with three exposures (almost) every CR position keeps data
    assert residual["deepcr_3exp"]["no_data"] < 0.01


def test_agreement_with_drizcr_masks(comparison):
    recall, _, precision = comparison["agreement_vs_drizcr"]
    print(f"deepCR vs driz_cr masks: recall {recall:.4f} precision {precision:.4f}")
    assert recall > 0.9  # deepCR finds nearly every pixel driz_cr finds


def test_cr_positions_in_output_maps_pixels(stack, tmp_path):
    header = fits.getheader(stack.files[0], ("SCI", 1))
    header["NAXIS1"], header["NAXIS2"] = 256, 128
    hit = cr_positions_in_output(stack.files[:1], [[stack.cr_masks[0][0], np.zeros((128, 256), bool)]], header)
    assert np.array_equal(hit, stack.cr_masks[0][0])


@requires_drizzlepac
@drizzlepac_warnings
def test_astrodrizzle_in_memory_and_build(stack, tmp_path, monkeypatch):
    files = _copy(stack, tmp_path, n=2)
    monkeypatch.chdir(tmp_path)
    names = [os.path.basename(path) for path in files]
    astrodrizzle(names, output="mem", num_cores=1, in_memory=True, build=True, context=False)
    assert os.path.isfile("mem_drc.fits") and not [name for name in os.listdir() if "crmask" in name]
    assert all((_dq(name, extver) & 4096).any() for name in names for extver in (1, 2))


def testgrow_like_driz_cr():
    cr = np.zeros((9, 9), dtype=bool)
    cr[4, 4] = True
    assert np.array_equal(grow_like_driz_cr(cr, 1, 0, 1), cr)
    grown = grow_like_driz_cr(cr, 3, 0, 1)
    assert grown.sum() == 9 and grown[3:6, 3:6].all()
    tail_up, tail_down = grow_like_driz_cr(cr, 1, 2, 1), grow_like_driz_cr(cr, 1, 2, -1)
    assert tail_up.sum() == tail_down.sum() == 3 and not np.array_equal(tail_up, tail_down)
    assert tail_up[:, 4].sum() == 3 and tail_down[:, 4].sum() == 3


# -- audit of the drizzlepac door --------------------------------------------------------------------------------------


@requires_drizzlepac
def test_astrodrizzle_ends_without_exceptions_at_exit(tmp_path):
    """openvino imports absl.logging, whose handler bound drizzlepac's StreamTeeLogger when it was first imported
    inside the run: four "Exception ignored in atexit callback" tracebacks at exit. The runtime is imported first."""
    script = textwrap.dedent("""
        import os
        from astro_deepcr.drizzle import astrodrizzle
        from astro_deepcr.training.flc import write_flc_stack
        stack = write_flc_stack(".", n_exposures=1, chip_shape=(64, 128), seed=4)
        astrodrizzle([os.path.basename(name) for name in stack.files], output="exit", num_cores=1, context=False)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout, whatever is installed
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "exit_drc_sci.fits").is_file()
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def _without_dq(path):
    with fits.open(path) as hdul:
        fits.HDUList([hdu for hdu in hdul if hdu.name != "DQ"]).writeto(path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def test_every_input_checked_before_any_file_changes(stack, tmp_path, monkeypatch):
    """flag_cosmic_rays([a, n, b]) flagged a, then failed on n (no DQ): the checks run on every file first."""
    a, n, b = _copy(stack, tmp_path)
    _without_dq(n)
    before = {path: _bytes(path) for path in (a, n, b)}
    with pytest.raises(ValueError, match=rf"^{re.escape(n)} has SCI,1 but no DQ,1$"):
        flag_cosmic_rays([a, n, b])
    assert {path: _bytes(path) for path in (a, n, b)} == before
    # several bad files: one error naming each
    readonly = shutil.copy(b, tmp_path / "ro_flc.fits")
    os.chmod(readonly, 0o444)
    with pytest.raises(ValueError, match="2 of 4 input files cannot be flagged, so none was changed: ") as info:
        flag_cosmic_rays([a, n, b, readonly])
    assert f"{n} has SCI,1 but no DQ,1" in str(info.value) and "read-only" in str(info.value)
    assert "ro_flc.fits" in str(info.value)
    assert {path: _bytes(path) for path in (a, n, b)} == before


@requires_drizzlepac
@drizzlepac_warnings
def test_astrodrizzle_checks_every_input_before_archiving(stack, tmp_path, monkeypatch, capsys):
    from astro_deepcr.cli import main

    a, n, b = _copy(stack, tmp_path)
    _without_dq(n)
    monkeypatch.chdir(tmp_path)
    names = [os.path.basename(path) for path in (a, n, b)]
    before = {name: _bytes(name) for name in names}
    listing = sorted(os.listdir())
    with pytest.raises(ValueError, match=rf"^{re.escape(names[1])} has SCI,1 but no DQ,1$"):
        astrodrizzle(names, output="refused", num_cores=1)
    assert sorted(os.listdir()) == listing  # no OrIg_files/, no trailer file
    assert {name: _bytes(name) for name in names} == before
    # the command: one line, as flag's failures, not drizzlepac's traceback
    capsys.readouterr()
    assert main(["drizzle", *names, "-q", "--output", "refused"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"astro-deepcr: FAILED drizzle of {', '.join(names)}: {names[1]} has SCI,1 "
                                        "but no DQ,1"]
    assert {name: _bytes(name) for name in names} == before


def test_resetbits_empty_or_none_means_crbit_everywhere(stack, tmp_path):
    """The .cfg's resetbits = "" (its comment: "empty: crbit") and None meant crbit, while "" and the command's
    --resetbits none / '' meant "reset nothing": every spelling of "not given" is crbit now, 0 keeps flags."""
    from astro_deepcr.cli import main

    reference = _copy(stack, _mkdir(tmp_path / "ref"), n=1)[0]
    flag_cosmic_rays(reference)
    flagged = _dq(reference, 1)
    stale = (flagged & 4096) == 0
    stale[:, :200] = False  # stale crbit flags on pixels deepCR leaves alone: a reset clears them

    def planted(name):
        path = _copy(stack, _mkdir(tmp_path / name), n=1)[0]
        with fits.open(path, mode="update") as hdul:
            hdul["DQ", 1].data[stale] |= 4096
        return path

    def from_cfg(path):
        params = load_config()  # the shipped defaults: resetbits = ""
        params.pop("input")
        flag_cosmic_rays(path, **params)

    runs = {"empty": lambda path: flag_cosmic_rays(path, resetbits=""),
            "none": lambda path: flag_cosmic_rays(path, resetbits="none"),
            "cfg": from_cfg,
            "cli_none": lambda path: main(["flag", path, "-q", "--resetbits", "none"]),
            "cli_empty": lambda path: main(["flag", path, "-q", "--resetbits", ""])}
    for name, run in runs.items():
        path = planted(name)
        result = run(path)
        if name.startswith("cli"):
            assert result == 0
        assert np.array_equal(_dq(path, 1), flagged), name
    kept = planted("zero")
    flag_cosmic_rays(kept, resetbits=0)
    assert ((_dq(kept, 1) & 4096) > 0)[stale].all()


@requires_drizzlepac
@drizzlepac_warnings
@pytest.mark.parametrize("resetbits", ["", None, 8192])
def test_astrodrizzle_resetbits_empty_means_crbit(stack, tmp_path, monkeypatch, resetbits):
    """astrodrizzle refused resetbits="" (drizzlepac's own resetDQBits crashes on it); it is crbit, as when flagging."""
    module = importlib.import_module("astro_deepcr.drizzle.astrodrizzle")  # the package's name is the function
    seen = []
    monkeypatch.setattr(module, "_flag_then_drizzle", lambda config, names, settings, **kwargs: seen.append(settings))
    path = _copy(stack, tmp_path, n=1)[0]
    monkeypatch.chdir(tmp_path)
    astrodrizzle(os.path.basename(path), output="reset", crbit=16384, resetbits=resetbits)
    assert seen[0]["resetbits"] == (8192 if resetbits == 8192 else 16384)


def _mkdir(path):
    path.mkdir(parents=True)
    return path


def _rehead(path, **cards):
    """Set (value) or delete (None) primary header cards."""
    with fits.open(path, mode="update") as hdul:
        for key, value in cards.items():
            if value is None:
                hdul[0].header.remove(key, ignore_missing=True)
            else:
                hdul[0].header[key] = value
    return path


@pytest.mark.parametrize(("cards", "telescope"), [({"TELESCOP": "Gemini-North", "INSTRUME": "GMOS-N"},
                                                   "is GEMINI-NORTH"),
                                                  ({"TELESCOP": None, "INSTRUME": None}, "is unknown")])
def test_a_file_not_from_hst_is_warned_about_the_crbit(stack, tmp_path, capsys, cards, telescope):
    """Bit 4096 is HST's cosmic-ray bit; a GMOS file (or one without TELESCOP/INSTRUME) was flagged silently."""
    from astro_deepcr.cli import main

    path = _rehead(_copy(stack, tmp_path, n=1)[0], DETECTOR=None, **cards)
    explicit = shutil.copy(path, tmp_path / "explicit_flc.fits")
    with pytest.warns(AstropyUserWarning, match=rf"{re.escape(path)}: the cosmic-ray bit 4096 is HST's DQ "
                                                rf"convention .* and the telescope {telescope}"):
        flag_cosmic_rays(path)
    assert (_dq(path, 1) & 4096).any()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flag_cosmic_rays(explicit, crbit=4096)  # given: the user knows the convention
    assert not [w for w in caught if "HST's DQ convention" in str(w.message)]
    capsys.readouterr()
    assert main(["flag", path]) == 0
    assert f"warning: {path}: the cosmic-ray bit 4096 is HST's DQ convention" in capsys.readouterr().out


def test_flag_without_a_gain_names_the_header_keywords(stack, tmp_path):
    """The flag door has no gain parameter: "give the gain" told the user to do what it cannot; name the keywords."""
    path = _copy(stack, tmp_path, n=1)[0]
    with fits.open(path, mode="update") as hdul:
        for key in ("ATODGNA", "ATODGNB", "ATODGNC", "ATODGND", "CCDGAIN"):
            hdul[0].header.remove(key, ignore_missing=True)
        for extver in (1, 2):
            hdul["SCI", extver].header["BUNIT"] = "COUNTS"
    before = _bytes(path)
    with pytest.raises(ValueError) as info:
        flag_cosmic_rays(path)
    assert str(info.value) == (
        f"{path}[SCI,1]: BUNIT 'COUNTS': model ACS-WFC-F606W works in electrons, so the data need a gain, and neither "
        "the SCI nor the primary header has one: add one of GAIN, EGAIN, ATODGAIN, ATODGN[A-D], CCDGAIN (electrons "
        "per ADU), or BUNIT = 'ELECTRONS' if the data are electrons")
    assert _bytes(path) == before


@requires_drizzlepac
def test_crclean_changes_only_the_flagged_pixels_of_a_file_in_counts(tmp_path):
    """driz_cr_corr's _crclean file went through x gain / gain on every pixel (as ``clean`` did, audit of session
    49), which truncated an integer image (400 -> 399.99... -> 399): the unflagged pixels now keep their values
    exactly, the flagged ones are inpainted."""
    from astropy.table import Table

    from astro_deepcr.dq import DEFAULT_FILL_BITS
    from astro_deepcr.drizzle.crclean import write_crclean

    rng = np.random.default_rng(3)
    sci = rng.poisson(210.0, (64, 64)).astype(np.int16)  # raw counts at gain 1.9
    sci[10, 5:9] += 800
    dq = np.zeros((64, 64), np.int16)
    dq[10, 5:9] = 4096
    header = fits.Header({"BUNIT": "COUNTS", "GAIN": 1.9})
    path = tmp_path / "j00000001_flt.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, header=header, name="SCI", ver=1),
                  fits.ImageHDU(dq, name="DQ", ver=1)]).writeto(path)
    summary = Table(rows=[(str(path), 1, "ACS-WFC", 0.5, 4, 0, sci.size)],
                    names=("file", "extver", "model", "threshold", "n_cr", "n_bad", "n_pixels"))
    settings = {"crbit": 4096, "model": "ACS-WFC", "device": "cpu", "precision": "float32",
                "fill_bits": DEFAULT_FILL_BITS}
    outfile = write_crclean(str(path), summary, settings)
    with fits.open(outfile) as cleaned:
        flagged = dq == 4096
        np.testing.assert_array_equal(cleaned["SCI", 1].data[~flagged], sci[~flagged])  # exactly
        assert np.all(np.abs(cleaned["SCI", 1].data[flagged] - 210.0) < 40.0)  # the track replaced by sky
        np.testing.assert_array_equal(cleaned["DQ", 1].data, np.where(flagged, 4096, 0))

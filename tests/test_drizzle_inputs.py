# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""astro_deepcr.drizzle: every drizzlepac input form in the API, and the DQ ``bits`` semantics."""

import os
import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from astro_deepcr.drizzle import flag_cosmic_rays, parse_inputs
from astro_deepcr.drizzle.inputs import archive_inputs, crmask_names
from astro_deepcr.training.flc import write_flc_stack


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory):
    """2 exposures of 2 chips of 64x128 with known CRs (each test copies them)."""
    return write_flc_stack(tmp_path_factory.mktemp("flc_small"), n_exposures=2, chip_shape=(64, 128), seed=2)


def _copies(stack, directory):
    directory.mkdir(parents=True, exist_ok=True)
    return [shutil.copy(path, directory) for path in stack.files]


def _crbit_count(path):
    with fits.open(path) as hdul:
        return [int(((hdul["DQ", k].data.astype(np.int64) & 4096) > 0).sum()) for k in (1, 2)]


def _write_asn(path, members, present=None, product="jsyn01010"):
    """An association table as drizzlepac reads it (stsci.tools.asnutil.readASNTable)."""
    present = [True] * len(members) if present is None else present
    names = [name.upper() for name in members] + [product.upper()]
    table = fits.BinTableHDU(Table({"MEMNAME": names, "MEMTYPE": ["EXP-DTH"] * len(members) + ["PROD-DTH"],
                                    "MEMPRSNT": present + [True]}), name="ASN")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return str(path)


def test_flag_every_input_form(small_stack, tmp_path, monkeypatch):
    """Must-show: a wildcard, an @file and an association table each flag every listed file."""
    roots = [os.path.basename(path).split("_")[0] for path in small_stack.files]
    # reference: the same files given as a list
    reference = flag_cosmic_rays(_copies(small_stack, tmp_path / "list"))
    expected = [list(reference["n_cr"][2 * i:2 * i + 2]) for i in range(len(roots))]
    assert all(min(counts) > 0 for counts in expected)

    wild = _copies(small_stack, tmp_path / "wild")
    summary = flag_cosmic_rays(str(tmp_path / "wild" / "j*_flc.fits"))
    assert sorted(set(summary["file"])) == sorted(wild)
    assert [_crbit_count(path) for path in sorted(wild)] == expected

    at = _copies(small_stack, tmp_path / "at")
    # drizzlepac's @file: one input per line, an optional second column (IVM file) ignored
    (tmp_path / "at" / "list.txt").write_text("\n".join(f"{path} {path}_ivm.fits" for path in at) + "\n")
    summary = flag_cosmic_rays(f"@{tmp_path / 'at' / 'list.txt'}")
    assert list(summary["file"]) == [path for path in at for _ in (1, 2)]
    assert [_crbit_count(path) for path in at] == expected

    asn_files = _copies(small_stack, tmp_path / "asn")
    monkeypatch.chdir(tmp_path / "asn")  # association members are found next to the table, as in drizzlepac
    asn = _write_asn("jsyn01010_asn.fits", roots)
    summary = flag_cosmic_rays(asn)
    assert sorted(set(summary["file"])) == sorted(os.path.basename(path) for path in asn_files)
    assert [_crbit_count(path) for path in asn_files] == expected

    comma = _copies(small_stack, tmp_path / "comma")
    assert list(flag_cosmic_rays(",".join(comma))["n_cr"]) == [n for counts in expected for n in counts]


def test_parse_inputs_errors_and_asn_members(small_stack, tmp_path, monkeypatch):
    files = _copies(small_stack, tmp_path)
    monkeypatch.chdir(tmp_path)
    roots = [os.path.basename(path).split("_")[0] for path in files]
    # MEMPRSNT false: the member is not an input (drizzlepac's rule)
    asn = _write_asn("part_asn.fits", roots, present=[True, False])
    assert parse_inputs(asn) == [os.path.basename(files[0])]
    missing_member = _write_asn("missing_asn.fits", roots + ["jsyn9999q"])
    with pytest.raises(ValueError, match="cannot read association table 'missing_asn.fits'.*jsyn9999q"):
        parse_inputs(missing_member)
    with pytest.raises(ValueError, match="@file nothing.txt not found"):
        parse_inputs("@nothing.txt")
    with pytest.raises(ValueError, match="input file\\(s\\) not found: gone_flc.fits"):
        parse_inputs([files[0], "gone_flc.fits"])  # an explicit name that does not exist is an error
    with pytest.raises(ValueError, match="no input files found"):
        parse_inputs("*_nothing.fits")


def _box_over_crs(stack, path, extver=1, size=24):
    """Set DQ=32 in a box containing the most injected CR pixels; return the box as a bool array."""
    cr = stack.cr_masks[0][extver - 1]
    shape = cr.shape
    best, corner = -1, (0, 0)
    for y in range(0, shape[0] - size + 1, 4):
        for x in range(0, shape[1] - size + 1, 4):
            count = cr[y:y + size, x:x + size].sum()
            if count > best:
                best, corner = count, (y, x)
    box = np.zeros(shape, dtype=bool)
    box[corner[0]:corner[0] + size, corner[1]:corner[1] + size] = True
    with fits.open(path, mode="update") as hdul:
        hdul["DQ", extver].data[box] = 32
    return box


def test_dq_box_bits(small_stack, tmp_path):
    """Must-show: a box of DQ=32 over cosmic rays is flagged with bits=32 (good) and never with bits=0 (bad)."""
    path = _copies(small_stack, tmp_path)[0]
    box = _box_over_crs(small_stack, path)
    cr_in_box = small_stack.cr_masks[0][0] & box
    assert cr_in_box.sum() >= 10
    flag_cosmic_rays(path, bits=32)
    dq = fits.getdata(path, ("DQ", 1)).astype(np.int64)
    flagged_good = (dq & 4096) > 0
    recall_in_box = flagged_good[cr_in_box].mean()
    print(f"bits=32: {int(flagged_good[box].sum())} px flagged in the DQ=32 box, "
          f"recall {recall_in_box:.3f} of {int(cr_in_box.sum())} injected CR px there")
    # the pixels are good: deepCR's cosmic rays there are flagged (measured: 31 of 41 injected CR px, 0.756)
    assert recall_in_box > 0.6
    assert np.array_equal(dq[box] & ~4096, np.full(int(box.sum()), 32))  # DQ=32 itself untouched
    flag_cosmic_rays(path, bits=0)
    dq = fits.getdata(path, ("DQ", 1)).astype(np.int64)
    assert not (dq & 4096)[box].any()  # bad pixels: nothing flagged there
    assert ((dq & 4096) > 0)[~box].sum() > 0  # the rest of the chip (DQ=0) is still flagged
    # the default bits ("4096,8192") treat 32 as bad too, as 0.1.0's bad_bits did
    flag_cosmic_rays(path)
    assert not (fits.getdata(path, ("DQ", 1)).astype(np.int64) & 4096)[box].any()


def test_deprecated_keywords_are_translated(small_stack, tmp_path):
    first, second = (shutil.copy(small_stack.files[0], tmp_path / name) for name in ("a_flc.fits", "b_flc.fits"))
    with pytest.warns(AstropyUserWarning, match="bad_bits is deprecated.*bits=12288"):
        old = flag_cosmic_rays(first, bad_bits="~4096,8192")
    new = flag_cosmic_rays(second, bits="4096+8192")
    assert list(old["n_cr"]) == list(new["n_cr"])
    assert _crbit_count(first) == _crbit_count(second)
    with pytest.warns(AstropyUserWarning, match="reset is deprecated.*resetbits=0"):
        flag_cosmic_rays(first, reset=False)
    with pytest.raises(TypeError, match="not both"):
        flag_cosmic_rays(first, bits=0, bad_bits=0)


# -- files next to the inputs: stale driz_cr masks, the OrIg_files archive ---------------------------------------------


def test_crmask_names_follow_drizzlepac_s_rootname(small_stack, tmp_path):
    path = shutil.copy(small_stack.files[0], tmp_path)
    root = os.path.join(str(tmp_path), "jsyn0001q")
    assert crmask_names(path) == [f"{root}_sci1_crmask.fits", f"{root}_sci2_crmask.fits"]


def _plant_crmask(name, extver, shape, block):
    """A stale driz_cr mask (uint8, 1 = good, 0 = cosmic ray) as an earlier AstroDrizzle run leaves it."""
    crmask = np.ones(shape, dtype=np.uint8)
    crmask[block] = 0
    fits.PrimaryHDU(crmask).writeto(f"{name.split('_')[0]}_sci{extver}_crmask.fits")


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning", "ignore::astropy.wcs.FITSFixedWarning",
                            "ignore::DeprecationWarning", "ignore::PendingDeprecationWarning",
                            "ignore::ResourceWarning", "ignore::RuntimeWarning",
                            "ignore:.*:UserWarning:drizzlepac", "ignore:.*:UserWarning:stwcs")
def test_stale_crmask_is_removed_before_drizzling(small_stack, tmp_path, monkeypatch):
    """AstroDrizzle's final drizzle merges any <root>_sci<N>_crmask.fits, driz_cr on or not; astrodrizzle()
    removes those of its inputs (with a trailer line) so they cannot mask pixels deepCR did not flag."""
    pytest.importorskip("drizzlepac")
    from drizzlepac.astrodrizzle import AstroDrizzle

    from astro_deepcr.drizzle import astrodrizzle

    name = os.path.basename(small_stack.files[0])
    block = (slice(10, 30), slice(20, 60))  # 800 px that are no cosmic ray
    seam = {"resetbits": 0, "driz_cr": False, "median": False, "blot": False, "driz_separate": False,
            "num_cores": 1, "context": False}
    # the hazard: the planted mask is merged by a plain AstroDrizzle (the block gets crbit in the input DQ)
    shutil.copy(small_stack.files[0], _mkdir(tmp_path / "plain"))
    monkeypatch.chdir(tmp_path / "plain")
    _plant_crmask(name, 1, (64, 128), block)
    AstroDrizzle(name, output="plain", **seam)
    assert ((fits.getdata(name, ("DQ", 1)).astype(np.int64) & 4096) > 0)[block].all()
    # astrodrizzle(): the mask is removed first, the DQ holds deepCR's flags only
    shutil.copy(small_stack.files[0], _mkdir(tmp_path / "deep"))
    reference = shutil.copy(small_stack.files[0], _mkdir(tmp_path / "ref"))
    flag_cosmic_rays(reference)
    monkeypatch.chdir(tmp_path / "deep")
    _plant_crmask(name, 1, (64, 128), block)
    astrodrizzle(name, output="deep", num_cores=1, context=False)
    assert not os.path.exists("jsyn0001q_sci1_crmask.fits")
    for extver in (1, 2):
        assert np.array_equal(fits.getdata(name, ("DQ", extver)), fits.getdata(reference, ("DQ", extver)))
    assert not ((fits.getdata(name, ("DQ", 1)).astype(np.int64) & 4096) > 0)[block].all()
    with open("astrodrizzle.log") as stream:
        assert "removed stale jsyn0001q_sci1_crmask.fits" in stream.read()


def _mkdir(path):
    path.mkdir(parents=True)
    return path


def _bytes(path):
    with open(path, "rb") as stream:
        return stream.read()


def test_archive_inputs_preserve_overwrite_restore(small_stack, tmp_path, monkeypatch):
    """[STATE OF INPUT FILES] done before deepCR changes the inputs: the archive holds them unflagged."""
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(shutil.copy(small_stack.files[0], tmp_path))
    pristine = _bytes(name)
    assert archive_inputs([name], preserve=False) == []
    assert not os.path.exists("OrIg_files")
    assert archive_inputs([name]) == [("archived", name)]  # preserve=True, AstroDrizzle's default
    flag_cosmic_rays(name)
    assert archive_inputs([name]) == []  # already archived: not replaced by the flagged file
    assert _bytes(os.path.join("OrIg_files", name)) == pristine
    assert not os.access(os.path.join("OrIg_files", name), os.W_OK) or os.geteuid() == 0  # read-only copy
    assert archive_inputs([name], preserve=True, restore=True) == [("restored", name)]
    assert _bytes(name) == pristine
    flag_cosmic_rays(name)
    assert archive_inputs([name], overwrite=True, restore=True) == [("archived", name)]  # overwrite wins
    assert _bytes(os.path.join("OrIg_files", name)) == _bytes(name) != pristine


# -- audit of the drizzlepac door --------------------------------------------------------------------------------------


def test_a_missing_listed_name_is_an_error_in_every_form(small_stack, tmp_path, monkeypatch):
    """stsci.tools' irafglob drops names that do not exist: a missing file in a comma string or an @file was
    skipped silently (the run went on with the others); every listed name that is not a wildcard must exist."""
    files = _copies(small_stack, tmp_path)
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(files[0])
    before = _bytes(name)
    (tmp_path / "bad.lis").write_text(f"{name}\nmissing_flc.fits\n")
    for given in ("@bad.lis", f"{name},missing_flc.fits", [name, "missing_flc.fits"], "missing_flc.fits",
                  [f"{name},missing_flc.fits"], ["@bad.lis"]):
        with pytest.raises(ValueError, match=r"^input file\(s\) not found: missing_flc.fits$"):
            parse_inputs(given)
    with pytest.raises(ValueError, match=r"input file\(s\) not found: missing_flc.fits"):
        flag_cosmic_rays("@bad.lis")
    assert _bytes(name) == before
    # wildcards matching nothing are reported as before: only when nothing at all matched
    assert parse_inputs(f"{name},*_nothing.fits") == [name]
    with pytest.raises(ValueError, match="no input files found for '\\*_nothing.fits'"):
        parse_inputs("*_nothing.fits")


def test_uint16_dq_with_bzero_changes_only_the_bits_asked(small_stack, tmp_path):
    """A uint16 DQ is stored as int16 with BZERO=32768 (raw = value - 32768: bit 15 inverted); resetbits=32768
    on the raw values set bit 15 on every pixel. Only the bits asked may change, bit 15 included."""
    path = _copies(small_stack, tmp_path)[0]
    rng = np.random.default_rng(5)
    with fits.open(path, mode="update") as hdul:
        for extver in (1, 2):
            dq = hdul["DQ", extver].data.astype(np.uint16)
            dq[rng.random(dq.shape) < 0.05] |= 32768
            dq[:4, :4] |= 64 | 4096  # an earlier CR flag on a warm pixel, in a corner
            hdul["DQ", extver].data = dq
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        assert (hdul["DQ", 1].header["BZERO"], hdul["DQ", 1].data.dtype.kind) == (32768, "i")
    before = [fits.getdata(path, ("DQ", k)).astype(np.int64) for k in (1, 2)]
    assert all(int((dq & 32768).sum() // 32768) > 100 for dq in before)

    flag_cosmic_rays(path)  # resetbits = crbit = 4096: bit 15 stays as it was
    after = [fits.getdata(path, ("DQ", k)).astype(np.int64) for k in (1, 2)]
    for old, new in zip(before, after, strict=True):
        assert np.array_equal(old & ~4096, new & ~4096)
        assert not (new[:4, :4] & 4096).any()  # the old flag was reset
        assert ((new & 4096) > 0).sum() > 0

    flag_cosmic_rays(path, resetbits=32768)  # clears bit 15 only; crbit flags of the first run are kept
    last = [fits.getdata(path, ("DQ", k)).astype(np.int64) for k in (1, 2)]
    for old, new in zip(after, last, strict=True):
        assert not (new & 32768).any()
        assert np.array_equal(old & ~(32768 | 4096), new & ~(32768 | 4096))
        assert not ((old & 4096) & ~new).any()  # no earlier flag lost

    original = _bytes(path)
    with pytest.raises(ValueError, match=r"a power of two up to 16384\), not 32768"):
        flag_cosmic_rays(path, crbit=32768)  # bit 15 is no cosmic-ray bit: refused before the file is read
    assert _bytes(path) == original

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Tests of astro_deepcr.batch: FITS cleaning of many files, serially, in processes and on Dask."""

import os
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from astro_deepcr import DeepCR, batch, zoo
from astro_deepcr.training.simulate import simulate_exposure

SHAPE = (64, 96)


def image_header(bunit="ELECTRONS"):
    header = fits.Header()
    if bunit is not None:
        header["BUNIT"] = bunit
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.1, "CRVAL2": 2.2, "CRPIX1": 48.0,
                   "CRPIX2": 32.0, "CD1_1": -1.4e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1.4e-5})
    return header


def write_images(directory, count=4, shape=SHAPE, bunit="ELECTRONS", exptime=1000.0, seed=0):
    """``count`` simulated exposures (electrons, with cosmic rays) as ``img<N>.fits`` with a SCI extension.

    Returns the file names and the simulations.
    """
    os.makedirs(directory, exist_ok=True)
    names, simulations = [], []
    for number in range(count):
        simulation = simulate_exposure(shape, exptime=exptime, seed=seed + number)
        primary = fits.PrimaryHDU()
        primary.header["EXPTIME"] = exptime
        # ACS/WFC-like simulations: without these the generic default (the ground model) would be chosen
        primary.header["INSTRUME"], primary.header["DETECTOR"] = "ACS", "WFC"
        data = simulation["image"] / (exptime if bunit == "ELECTRONS/S" else 1.0)
        sci = fits.ImageHDU(data.astype(np.float32), header=image_header(bunit), name="SCI")
        err = fits.ImageHDU(np.ones(shape, np.float32), name="ERR")
        name = os.path.join(directory, f"img{number}.fits")
        fits.HDUList([primary, sci, err]).writeto(name)
        names.append(name)
        simulations.append(simulation)
    return names, simulations


def read_masks(results):
    masks = []
    for result in results:
        assert result.ok, result.message
        with fits.open(result.output) as hdul:
            masks.append(hdul["CRMASK", 1].data.astype(bool))
    return masks


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images"))


def test_clean_files_output(images, tmp_path):
    names, simulations = images
    results = batch.clean_files(names[:2], tmp_path, write_probability=True, progress=False)
    model = DeepCR("ACS-WFC", device="cpu")
    for name, simulation, result in zip(names[:2], simulations[:2], results, strict=True):
        assert result.ok and result.message == ""
        assert result.output == str(tmp_path / os.path.basename(name))
        with fits.open(result.output) as hdul, fits.open(name) as original:
            assert [hdu.name for hdu in hdul] == ["PRIMARY", "SCI", "ERR", "CRMASK", "CRPROB"]
            cr_mask = hdul["CRMASK", 1].data.astype(bool)
            assert hdul["CRMASK", 1].data.dtype == np.uint8
            expected_mask, expected_clean = model.clean(simulation["image"])
            np.testing.assert_array_equal(cr_mask, expected_mask)
            np.testing.assert_allclose(hdul["SCI"].data, expected_clean, rtol=1e-6)
            np.testing.assert_allclose(hdul["CRPROB", 1].data, model.probability(simulation["image"]), atol=1e-6)
            # only cosmic-ray pixels change; the ERR extension is not an image to clean
            changed = hdul["SCI"].data != original["SCI"].data
            assert not (changed & ~cr_mask).any()
            np.testing.assert_array_equal(hdul["ERR"].data, original["ERR"].data)
            assert result.n_cr == {"SCI,1": int(cr_mask.sum())}
            # the detections are the simulated cosmic rays
            truth = simulation["cr_mask"]
            assert (cr_mask & truth).sum() > 0.6 * truth.sum()
            assert (cr_mask & ~truth).sum() < 0.01 * truth.size
            # WCS kept, and copied to the mask; the run is recorded
            header = hdul["SCI"].header
            for key in ("CTYPE1", "CRVAL1", "CRPIX2", "CD1_1", "CD2_2"):
                assert header[key] == original["SCI"].header[key]
            sky = WCS(header).pixel_to_world(10, 20)
            assert WCS(hdul["CRMASK", 1].header).pixel_to_world(10, 20).separation(sky).arcsec < 1e-6
            assert header["DCRMODEL"] == "ACS-WFC" and header["DCRTHRSH"] == 0.5
            assert header["DCRINPT"] == "medmask" and header["DCRNCR"] == cr_mask.sum()
            assert "astro_deepcr" in str(header["HISTORY"])


def test_bad_files_never_stop_the_others(images, tmp_path):
    names, _ = images
    inputs = tmp_path / "in"
    inputs.mkdir()
    corrupt = inputs / "corrupt.fits"
    corrupt.write_bytes(b"this is not FITS" * 400)
    truncated = inputs / "truncated.fits"
    with open(names[0], "rb") as stream:
        truncated.write_bytes(stream.read()[:2880 * 3 + 1000])
    outdir = tmp_path / "out"
    files = [names[0], str(corrupt), str(truncated), str(inputs / "missing.fits"), names[1]]
    results = batch.clean_files(files, outdir, progress=False)
    assert [result.ok for result in results] == [True, False, False, False, True]
    assert [result.path for result in results] == files
    assert "cannot read FITS" in results[1].message and "SIMPLE" in results[1].message
    assert "cannot read FITS" in results[2].message
    assert "No such file" in results[3].message
    assert all("\n" not in result.message for result in results)
    # nothing partial: only the two good outputs, no temporary files
    assert sorted(os.listdir(outdir)) == ["img0.fits", "img1.fits"]


def test_failed_write_leaves_nothing(images, tmp_path, monkeypatch):
    def broken_writeto(self, path, **kwargs):
        with open(path, "wb") as stream:
            stream.write(b"SIMPLE  =                    T")  # half a header, then the disk is full
        raise OSError("No space left on device")

    monkeypatch.setattr(fits.HDUList, "writeto", broken_writeto)
    results = batch.clean_files(images[0][:1], tmp_path, progress=False)
    assert not results[0].ok and "No space left" in results[0].message
    assert os.listdir(tmp_path) == []


def test_existing_output_and_duplicate_names(images, tmp_path):
    names, _ = images
    (tmp_path / "img0.fits").write_bytes(b"keep me")
    other = tmp_path / "other"
    other.mkdir()
    with open(names[1], "rb") as stream:
        (other / "img1.fits").write_bytes(stream.read())
    results = batch.clean_files([names[0], names[1], str(other / "img1.fits"), names[1]], tmp_path,
                                progress=False)
    assert [result.ok for result in results] == [False, True, False, False]
    assert "exists" in results[0].message and "overwrite" in results[0].message
    assert (tmp_path / "img0.fits").read_bytes() == b"keep me"
    assert "same output name img1.fits" in results[2].message
    assert results[3].message == "listed twice"
    results = batch.clean_files([names[0]], tmp_path, overwrite=True, progress=False)
    assert results[0].ok and fits.getval(tmp_path / "img0.fits", "DCRMODEL", extname="SCI") == "ACS-WFC"


@pytest.mark.parametrize("name, expected", [
    ("img.fits", "img.fits"),
    ("../../etc/passwd", "passwd.fits"),
    ("/abs/dir/.hidden.fits", "hidden.fits"),
    ("a b;rm -rf*.fits.gz", "a_b_rm_-rf_.fits"),
    ("..", "image.fits"),
])
def test_output_path_stays_in_outdir(tmp_path, name, expected):
    path = batch.output_path(name, tmp_path)
    assert path == str(tmp_path / expected)
    assert os.path.dirname(path) == str(tmp_path)


def test_output_may_not_replace_input(images, tmp_path):
    names, _ = images
    results = batch.clean_files(names[:1], os.path.dirname(names[0]), overwrite=True, progress=False)
    assert not results[0].ok and "replace the input" in results[0].message


def test_units(tmp_path):
    electrons, simulations = write_images(tmp_path / "e", count=1)
    rate, _ = write_images(tmp_path / "rate", count=1, bunit="ELECTRONS/S")
    adu, _ = write_images(tmp_path / "adu", count=1, bunit="ADU")
    jansky, _ = write_images(tmp_path / "jy", count=1, bunit="Jy")
    reference = read_masks(batch.clean_files(electrons, tmp_path / "o1", progress=False))[0]
    result = batch.clean_files(rate, tmp_path / "o2", progress=False)[0]
    np.testing.assert_array_equal(read_masks([result])[0], reference)
    with fits.open(result.output) as hdul, fits.open(rate[0]) as original:
        # written back in the input's units (electrons/s)
        good = hdul["CRMASK", 1].data == 0
        np.testing.assert_array_equal(hdul["SCI"].data[good], original["SCI"].data[good])
    failed = batch.clean_files(adu, tmp_path / "o3", progress=False)[0]
    assert not failed.ok and "give the gain" in failed.message
    failed = batch.clean_files(jansky, tmp_path / "o3", gain=2.0, progress=False)[0]
    assert not failed.ok and "unsupported BUNIT 'JY'" in failed.message
    result = batch.clean_files(adu, tmp_path / "o4", gain=1.0, progress=False)[0]
    np.testing.assert_array_equal(read_masks([result])[0], reference)


def test_extension_selection(tmp_path):
    simulation = simulate_exposure(SHAPE, exptime=1000.0, seed=3)
    header = image_header()
    hdul = fits.HDUList([fits.PrimaryHDU(simulation["image"], header=header)]
                        + [fits.ImageHDU(simulation["image"], header=header, name="SCI", ver=ver) for ver in (1, 2)]
                        + [fits.ImageHDU(np.zeros(SHAPE, np.int16), name="DQ"),
                           fits.ImageHDU(np.zeros((2, 3, 4), np.float32), name="CUBE"),
                           fits.BinTableHDU.from_columns([fits.Column("a", "J", array=[1])], name="TAB")])
    hdul.writeto(tmp_path / "multi.fits")
    every = batch.clean_files([tmp_path / "multi.fits"], tmp_path / "all", progress=False)[0]
    assert every.ok and list(every.n_cr) == ["PRIMARY,1", "SCI,1", "SCI,2"]
    only = batch.clean_files([tmp_path / "multi.fits"], tmp_path / "sci2", ext=["SCI,2"], progress=False)[0]
    assert list(only.n_cr) == ["SCI,2"]
    with fits.open(only.output) as out:
        assert [(hdu.name, hdu.ver) for hdu in out][-1] == ("CRMASK", 2)
        assert "DCRMODEL" not in out["SCI", 1].header
    missing = batch.clean_files([tmp_path / "multi.fits"], tmp_path / "none", ext=["FOO"], progress=False)[0]
    assert not missing.ok and missing.message == "no 2-D image extension named FOO"


def test_invalid_settings_raise(images, tmp_path):
    for kwargs, match in [({"model": "nope"}, "unknown model"), ({"threshold": 2}, "threshold"),
                          ({"jobs": 0}, "jobs"), ({"gain": -1}, "gain"), ({"ext": ["SCI,x"]}, "extension")]:
        with pytest.raises(ValueError, match=match):
            batch.clean_files(images[0], tmp_path, **kwargs)


def test_parallel_runs_match_serial(images, tmp_path):
    """Serial, two local processes and a two-worker Dask LocalCluster give the same masks."""
    distributed = pytest.importorskip("distributed")
    names, _ = images
    serial = batch.clean_files(names, tmp_path / "serial", threads=1, progress=False)
    jobs = batch.clean_files(names, tmp_path / "jobs", threads=1, jobs=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        on_dask = batch.clean_files(names, tmp_path / "dask", threads=1, client=client, progress=False)
        on_dask_again = batch.clean_files(names, tmp_path / "dask", threads=1, client=client, overwrite=True,
                                          progress=False)
        # each worker process loaded its network once (the zoo's cache: the trained network and, where the
        # zoo caches it too, its inference copy), however many files it got
        built = client.run(zoo.clear_network_cache)
    assert len(names) >= 4
    reference = read_masks(serial)
    assert sum(mask.sum() for mask in reference) > 100
    for results in (jobs, on_dask, on_dask_again):
        assert [result.path for result in results] == names
        for mask, expected in zip(read_masks(results), reference, strict=True):
            np.testing.assert_array_equal(mask, expected)
    # torch caches the trained network and its inference copy; OpenVINO adds one compiled model per tile shape
    from astro_deepcr.engine import resolve_backend

    limit = 2 if resolve_backend(None, "cpu") == "torch" else 3
    assert len(built) == 2 and all(count <= limit for count in built.values()) and sum(built.values()) >= 1


def test_network_loaded_once_for_many_files(images, tmp_path, monkeypatch):
    """A DeepCR per file is cheap: the weights are read once per process, not once per file."""
    from astro_deepcr import zoo

    reads = []
    original = zoo._read_weights
    monkeypatch.setattr(zoo, "_read_weights", lambda spec: reads.append(spec.name) or original(spec))
    zoo.clear_network_cache()
    names, _ = images
    results = batch.clean_files(names, tmp_path, inpaint=None, progress=False)
    assert all(result.ok for result in results) and len(results) == 4
    assert reads == ["ACS-WFC"]


def test_flag_files_bad_file(tmp_path):
    from astro_deepcr.training.flc import write_flc_stack

    stack = write_flc_stack(tmp_path, n_exposures=2, chip_shape=(64, 96))
    corrupt = tmp_path / "jbad00xxq_flc.fits"
    corrupt.write_bytes(b"not FITS" * 400)
    before = corrupt.read_bytes()
    results = batch.flag_files([stack.files[0], corrupt, stack.files[1]], progress=False)
    assert [result.ok for result in results] == [True, False, True]
    assert str(corrupt) == results[1].path and "not a FITS file" in results[1].message
    assert corrupt.read_bytes() == before
    for result, path in zip(results[::2], stack.files, strict=True):
        with fits.open(path) as hdul:
            for extver in (1, 2):
                assert result.n_cr[f"SCI,{extver}"] == np.count_nonzero(hdul["DQ", extver].data & 4096)
        assert sum(result.n_cr.values()) > 0


def test_benchmark():
    from astro_deepcr.bench import benchmark

    timing = benchmark(shape=(64, 64), repeat=1, device="cpu")
    assert timing["model"] == "ACS-WFC" and timing["device"] == "cpu"
    assert timing["seconds"] > 0 and timing["megapixels_per_s"] > 0
    assert timing["peak_rss_mib"] > 50


def test_compressed_input_written_uncompressed(tmp_path):
    """Re-compressing the cleaned floats would quantise them; tile-compressed images come out plain."""
    simulation = simulate_exposure(SHAPE, exptime=1000.0, seed=5)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(simulation["image"], header=image_header(), name="SCI")]
                 ).writeto(tmp_path / "tiles.fits")
    result = batch.clean_files([tmp_path / "tiles.fits"], tmp_path / "out", progress=False)[0]
    assert result.ok, result.message
    with fits.open(result.output) as hdul, fits.open(tmp_path / "tiles.fits") as original:
        assert type(hdul["SCI"]) is fits.ImageHDU and hdul["SCI"].header["BUNIT"] == "ELECTRONS"
        good = hdul["CRMASK", 1].data == 0
        np.testing.assert_array_equal(hdul["SCI"].data[good], original["SCI"].data[good])


# -- instrument-aware defaults, DQ, quick looks (#17) ----------------------------------------------------------------


def test_clean_respects_dq_and_sets_crbit_as_flag_does(tmp_path):
    """_flc input: DQ-bad (saturated, hot, bad column) pixels never flagged nor changed; crbit set like flag."""
    import shutil

    from astro_deepcr.drizzle import flag_cosmic_rays
    from astro_deepcr.training.flc import write_flc_stack

    stack = write_flc_stack(tmp_path / "in", n_exposures=1, chip_shape=(96, 128), seed=3)
    source = stack.files[0]
    flagged = shutil.copy(source, tmp_path / "flagged_flc.fits")
    flag_cosmic_rays(flagged)
    result = batch.clean_files([source], tmp_path / "out", progress=False)[0]
    assert result.ok, result.message
    saturated = 0
    with fits.open(result.output) as hdul, fits.open(source) as original, fits.open(flagged) as by_flag:
        for extver in (1, 2):
            dq, cr_mask = original["DQ", extver].data, hdul["CRMASK", extver].data.astype(bool)
            bad = (dq & ~(4096 | 8192)) != 0
            saturated += int((dq & 256).sum())
            assert bad.sum() > 100  # hot and warm pixels, a bad column (and the saturated star on one chip)
            assert cr_mask.sum() > 20 and not (cr_mask & bad).any()
            # bad pixels keep their values; only cosmic-ray pixels change
            changed = hdul["SCI", extver].data != original["SCI", extver].data
            assert not (changed & ~cr_mask).any() and changed.sum() > 0.5 * cr_mask.sum()
            # the output DQ has crbit exactly on the cosmic rays and every other bit as it was
            np.testing.assert_array_equal((hdul["DQ", extver].data & 4096) != 0, cr_mask)
            np.testing.assert_array_equal(hdul["DQ", extver].data & ~4096, dq & ~4096)
            # the same pixels as `flag` with its defaults (same model, bits, fill_bits)
            np.testing.assert_array_equal((by_flag["DQ", extver].data & 4096) != 0, cr_mask)
            header = hdul["SCI", extver].header
            assert header["DCRMODEL"] == by_flag[0].header["DCRMODEL"] == "ACS-WFC-F606W"
            assert header["DCRBIT"] == 4096 and header["DCRNCR"] == cr_mask.sum()
    assert saturated > 10
    # use_dq=False (--no-dq): the DQ array is left alone, and DQ-flagged pixels (hot ones) get flagged:
    # the exclusion above is not vacuous
    ignored = batch.clean_files([source], tmp_path / "no_dq", use_dq=False, progress=False)[0]
    with fits.open(ignored.output) as hdul, fits.open(source) as original:
        np.testing.assert_array_equal(hdul["DQ", 1].data, original["DQ", 1].data)
        assert "DCRBIT" not in hdul["SCI", 1].header
        flagged_bad = sum(int((hdul["CRMASK", v].data.astype(bool) & ((original["DQ", v].data & ~12288) != 0)).sum())
                          for v in (1, 2))
        assert flagged_bad > 0, flagged_bad
    # bits=None (drizzlepac's "every pixel is good", CLI --bits none): the same pixels may be flagged, and the
    # DQ array still gets crbit on them
    every = batch.clean_files([source], tmp_path / "every", bits=None, fill_bits=None, progress=False)[0]
    with fits.open(every.output) as hdul, fits.open(source) as original:
        flagged_bad = 0
        for extver in (1, 2):
            cr_mask = hdul["CRMASK", extver].data.astype(bool)
            flagged_bad += int((cr_mask & ((original["DQ", extver].data & ~12288) != 0)).sum())
            np.testing.assert_array_equal((hdul["DQ", extver].data & 4096) != 0, cr_mask)
        assert flagged_bad > 0


def test_gain_from_header(tmp_path):
    """An ADU file with GAIN in its header needs no gain= and gives the mask of gain=<that value>."""
    electrons, _ = write_images(tmp_path / "e", count=1)
    reference = read_masks(batch.clean_files(electrons, tmp_path / "o_e", inpaint=None, progress=False))[0]
    with fits.open(electrons[0]) as hdul:
        hdul["SCI"].data = hdul["SCI"].data / 2.0
        hdul["SCI"].header["BUNIT"] = "ADU"
        hdul.writeto(tmp_path / "adu_nogain.fits")
        hdul["SCI"].header["GAIN"] = 2.0
        hdul.writeto(tmp_path / "adu_gain.fits")
    from_header = batch.clean_files([tmp_path / "adu_gain.fits"], tmp_path / "o1", inpaint=None, progress=False)
    given = batch.clean_files([tmp_path / "adu_nogain.fits"], tmp_path / "o2", inpaint=None, gain=2.0,
                              progress=False)
    np.testing.assert_array_equal(read_masks(from_header)[0], read_masks(given)[0])
    np.testing.assert_array_equal(read_masks(from_header)[0], reference)
    assert reference.sum() > 20
    # an explicit gain wins over the header's: gain 1 reads the data as half the electrons -> another mask
    other = batch.clean_files([tmp_path / "adu_gain.fits"], tmp_path / "o3", inpaint=None, gain=1.0, progress=False)
    assert (read_masks(other)[0] != reference).any()


def test_model_from_header_and_explicit_model(tmp_path):
    names, _ = write_images(tmp_path / "in", count=1)
    with fits.open(names[0]) as hdul:
        hdul[0].header.update({"TELESCOP": "HST", "INSTRUME": "WFC3", "DETECTOR": "UVIS", "FILTER": "F606W"})
        hdul.writeto(tmp_path / "uvis.fits")
    chosen = batch.clean_files([tmp_path / "uvis.fits"], tmp_path / "o1", inpaint=None, progress=False)[0]
    with pytest.warns(AstropyUserWarning, match="trained on ACS/WFC data, not WFC3/UVIS"):
        explicit = batch.clean_files([tmp_path / "uvis.fits"], tmp_path / "o2", inpaint=None, model="ACS-WFC",
                                     progress=False)[0]
    with fits.open(chosen.output) as hdul:
        assert hdul["SCI"].header["DCRMODEL"] == "WFC3-UVIS" and hdul["SCI"].header["DCRWHY"] != "explicit"
        wfc3_mask = hdul["CRMASK", 1].data
    with fits.open(explicit.output) as hdul:
        assert hdul["SCI"].header["DCRMODEL"] == "ACS-WFC" and hdul["SCI"].header["DCRWHY"] == "explicit"
        expected = DeepCR("WFC3-UVIS", device="cpu").mask(fits.getdata(tmp_path / "uvis.fits", "SCI"))
        np.testing.assert_array_equal(wfc3_mask.astype(bool), expected)


def test_plot_and_regions(images, tmp_path):
    pytest.importorskip("matplotlib")
    from scipy import ndimage

    from astro_deepcr.visualization import read_regions

    names, _ = images
    result = batch.clean_files(names[:1], tmp_path, plot=True, regions=True, progress=False)[0]
    assert result.ok, result.message
    assert result.products == [str(tmp_path / "img0_sci1.png"), str(tmp_path / "img0_sci1.reg")]
    assert (tmp_path / "img0_sci1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cr_mask = read_masks([result])[0]
    n_objects = ndimage.label(cr_mask, structure=np.ones((3, 3)))[1]
    assert n_objects > 5 and len(read_regions(tmp_path / "img0_sci1.reg")) == n_objects


def test_a_files_warnings_read_as_one_line():
    """Distinct warnings, sorted, joined by "; " with no ".;" between sentences (as `flag` prints them)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for text in ("no card for ACS/HRC: check its masks", "flagged 1.4 %.\nCheck the units.", "no card for "
                     "ACS/HRC: check its masks"):
            warnings.warn(text, AstropyUserWarning)
    assert batch._warnings_line(caught) == "flagged 1.4 %. Check the units; no card for ACS/HRC: check its masks"


def _adu_frame(path, checksum=False):
    """A raw-like uint16 frame in ADU (GAIN 1.9): sky, noise and three cosmic rays."""
    rng = np.random.default_rng(5)
    data = rng.poisson(380.0, (96, 96)) / 1.9
    data[20, 10:15] += 1500.0
    data[60:64, 40] += 1200.0
    data[80, 80] += 2500.0
    hdu = fits.PrimaryHDU(np.round(data).astype(np.uint16))
    hdu.header["BUNIT"], hdu.header["GAIN"], hdu.header["EXPTIME"] = "ADU", 1.9, 100.0
    hdu.writeto(path, checksum=checksum)
    return path


def test_clean_changes_only_the_cosmic_rays_of_an_adu_frame_and_refreshes_its_checksums(tmp_path):
    """Session 49's audit: with gain 1.9, every pixel went through x1.9 / 1.9 (19 % of a raw frame's pixels came
    back a float hair below their integer); a checksummed input gave an output whose copied sums failed."""
    path = _adu_frame(tmp_path / "raw.fits", checksum=True)
    (result,) = batch.clean_files([str(path)], tmp_path / "out", progress=False, device="cpu", precision="float32")
    assert result.ok, result.message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy warns when a CHECKSUM or DATASUM does not match
        with fits.open(result.output, checksum=True) as cleaned, fits.open(path) as original:
            cr_mask = cleaned["CRMASK"].data.astype(bool)
            assert cr_mask[20, 10:15].all() and cr_mask[80, 80] and cr_mask.sum() < 40
            before = original[0].data.astype(np.float64)
            after = cleaned[0].data.astype(np.float64)
            np.testing.assert_array_equal(after[~cr_mask], before[~cr_mask])  # exactly, not to a tolerance
            assert np.all(np.abs(after[20, 10:15] - 200.0) < 40.0)  # the track replaced by sky
            assert "CHECKSUM" in cleaned[0].header and "CHECKSUM" not in cleaned["CRMASK"].header


def test_clean_refuses_an_output_that_is_the_input_through_a_link(tmp_path):
    """``--overwrite`` into a folder (or onto a file) linked to the input replaced the raw frame (audit, session 49)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    path = _adu_frame(raw / "frame.fits")
    before = path.read_bytes()
    (tmp_path / "linked").symlink_to(raw)
    work = tmp_path / "work"
    work.mkdir()
    (work / "frame.fits").symlink_to(path)
    for folder in (tmp_path / "linked", work):
        (result,) = batch.clean_files([str(path)], folder, overwrite=True, progress=False, device="cpu")
        assert not result.ok and "would replace the input" in result.message
    assert path.read_bytes() == before

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The generic default model on real ground-based CCD frames (``benchmarks/ground_frames.py``, docs/ground.rst).

The frames are test files of installed packages (ccdproc, astroscrappy; IRAF's ``dev$pix`` from Debian's ``iraf``,
which ``.ci/run`` installs where apt-get can); each test skips where its package or the benchmarks/ folder is
missing. The asserted figures are those of the docs table, measured with::

    python benchmarks/ground_frames.py --threads 1
"""

import importlib.util
import pathlib

import numpy as np
import pytest
from scipy import ndimage

from astro_deepcr.zoo import GENERIC_DEFAULT_MODEL

SCRIPT = pathlib.Path(__file__).parents[1] / "benchmarks" / "ground_frames.py"


@pytest.fixture(scope="module")
def ground():
    if not SCRIPT.exists():
        pytest.skip("benchmarks/ not available (installed package)")
    spec = importlib.util.spec_from_file_location("ground_frames", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frame(ground, name):
    if ground.frame_path(name) is None:
        pytest.skip(f"frame {name!r} needs {ground._source(name)} installed")
    return ground.load_frame(name)


def test_measure_counts_lacosmic_objects_hit(ground):
    """One hit pixel finds its whole 8-connected object; diagonal neighbours are one object."""
    la_mask = np.zeros((20, 20), bool)
    la_mask[2, 2] = la_mask[3, 3] = True  # one object (diagonal)
    la_mask[10, 10:13] = True  # a second one
    labels, _ = ndimage.label(la_mask, structure=ground.EIGHT_CONNECTED)
    bright = np.zeros_like(la_mask)
    bright[15:18, 15:18] = True
    mask = np.zeros_like(la_mask)
    mask[3, 3] = True
    mask[16, 16] = True  # a bright-source pixel, far from every CR
    row = ground.measure(mask, bright, labels, np.array([2]))
    assert row == dict(flagged=2, away=1, bright=1, la_found=1, la_total=2, la_significant_found=0,
                       la_significant=1)


def test_saao_frame_is_reduced_as_documented(ground):
    frame = _frame(ground, "saao")
    image = frame["electrons"]
    # 512 trimmed rows less the unexposed ones (FITS rows 512-520 have median 3 ADU against 88) and one margin row
    assert image.shape == (511, 512)
    assert frame["gain"] == 1.9 and frame["readnoise"] == 5.0
    row_median = np.median(image, axis=1)
    assert row_median.min() > 0.9 * np.median(image)
    # overscan subtracted: sky 86-88 ADU above the overscan, not ~2100 raw counts, in electrons
    assert 150 < np.median(image) < 180  # measured 164 e-


def _write_oif(folder, data, cards, pixtype=3, dtype=">i2"):
    """An IRAF OIF version-2 image as `read_iraf_image` expects it: ``.imh`` (header, cards) and ``.pix``."""
    words = np.zeros(18, ">i4")
    words[:4] = (2645, pixtype, 0, 2)
    words[4:11] = 1
    words[11:18] = 1
    words[4:6] = words[11:13] = data.shape[::-1]  # IRAF's first axis is the FITS NAXIS1 (columns)
    user = "".join(f"{card:80s}\n" for card in cards).encode("latin-1")
    header = b"imhv2\x00" + words.tobytes() + b"\x00" * 1900 + user + b"\x00\x00"
    (folder / "img.imh").write_bytes(header)
    (folder / "img.pix").write_bytes(b"impv2c" + b"\x00" * 2042 + data.astype(dtype).tobytes())
    return folder / "img.imh"


def test_read_iraf_image_axes_byte_order_and_cards(ground, tmp_path):
    data = np.arange(12 * 7).reshape(7, 12) - 3  # 7 rows of 12 columns; the minimum -3, the maximum 80
    cards = ["IRAF-MAX=           8.000000E1  /  DATA MAX", "IRAF-MIN=          -3.000000E0  /  DATA MIN",
             "ITIME   =                  600  /  REQUESTED INTEGRATION TIME (SECS)", "HISTORY 'KPNO-IRAF'"]
    image, header = ground.read_iraf_image(_write_oif(tmp_path, data, cards))
    np.testing.assert_array_equal(image, data)
    assert image.dtype == np.float64
    assert header["ITIME"] == 600 and header["IRAF-MAX"] == 80.0 and list(header["HISTORY"]) == ["'KPNO-IRAF'"]


def test_read_iraf_image_rejects_what_it_cannot_read(ground, tmp_path):
    data = np.arange(20).reshape(4, 5)
    wrong_max = ["IRAF-MAX=           9.900000E1  /  DATA MAX"]
    with pytest.raises(ValueError, match="data max 19.0 differs from the header's 99"):
        ground.read_iraf_image(_write_oif(tmp_path, data, wrong_max))
    with pytest.raises(ValueError, match="pixel type 2"):
        ground.read_iraf_image(_write_oif(tmp_path, data, [], pixtype=2))
    (tmp_path / "img.imh").write_bytes(b"imhv1" + b"\x00" * 100)
    with pytest.raises(ValueError, match="not an IRAF OIF version-2 header"):
        ground.read_iraf_image(tmp_path / "img.imh")


def test_kpno_frame_is_read_as_documented(ground):
    """IRAF's dev$pix: the header's own extremes, cosmic rays left in, and the gain that its sky noise gives."""
    from astropy.stats import sigma_clipped_stats

    frame = _frame(ground, "kpno")
    image, header = frame["electrons"], frame["header"]
    assert image.shape == (512, 512)
    assert header["CR-FLAG"] == 0 and header["ITIME"] == 600  # cosmic rays not removed; 600 s
    adu = image / ground.KPNO_GAIN
    assert adu.max() == header["IRAF-MAX"] == 19936 and adu.min() == header["IRAF-MIN"] == -1
    mean, _, sigma = sigma_clipped_stats(adu[:60, :60])
    assert mean == pytest.approx(39.5, abs=0.1) and sigma == pytest.approx(2.13, abs=0.02)
    assert ground.KPNO_GAIN == pytest.approx(mean / sigma**2, rel=0.02)  # the sky's noise, all photon noise


def test_gmos_read_noise_from_its_variance_plane(ground):
    frame = _frame(ground, "gmos")
    assert frame["readnoise"] == pytest.approx(4.24, abs=0.005)  # astroscrappy's own test uses 4.24 e-
    assert frame["electrons"].shape == (150, 200)


# frame -> (flagged, away, bright pixels in the set, LACosmic objects found/total, those >= 5 sigma found/total),
# the generic default ground-v2 at its card threshold 0.5 (python benchmarks/ground_frames.py --threads 1; ground,
# the generic default before it: saao 85 / 1 / 0 / 18 of 24, gmos 224 / 2 / 0 / 2 of 2, kpno 589 / 285 / 0 / 63 of
# 93; ACS-WFC before that: saao 86 / 0 / 0 / 18 of 24, gmos 186 / 2 / 0 / 2 of 2). Since session 36 the engine
# mirrors the alignment strip (engine._mirrored): saao (511 rows) and gmos (150 rows) lost flags along their first
# rows that lay away from every LACosmic object (ground-v2 93 / 7 and 217 / 4 before)
MEASURED = {
    "saao": dict(flagged=86, away=0, bright=0, la_found=18, la_total=24, la_significant_found=18,
                 la_significant=18),
    "gmos": dict(flagged=215, away=2, bright=0, la_found=2, la_total=2, la_significant_found=2, la_significant=2),
    "kpno": dict(flagged=401, away=93, bright=0, la_found=62, la_total=93, la_significant_found=25,
                 la_significant=37),
}


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_generic_default_on_real_ground_frames(ground, name):
    """The docs table's figures for the generic default; must-show: <= 10 bright pixels on every frame.

    Must-show >= 80 % of LACosmic's objects holds on gmos (2/2) but not on saao: 18/24 = 75 % for every zoo model at
    its card threshold. The 6 missed objects are all single pixels 3.5-4.8 sigma above the sky; every LACosmic
    object >= 5 sigma (18/18) is found. On kpno (IRAF's dev$pix) it finds 62/93 (25/37 >= 5 sigma), and flags 93
    pixels away from every LACosmic object: this table counts agreement with LACosmic, not recall; injection
    recovery on the same frame (benchmarks/injection_frames.py) has deepCR ahead of LACosmic there.
    """
    assert GENERIC_DEFAULT_MODEL == "ground-v2", "the figures below and docs/ground.rst are for ground-v2: remeasure"
    frame = _frame(ground, name)
    result = ground.run_frame(frame, [GENERIC_DEFAULT_MODEL], threads=1)
    row = result["rows"][GENERIC_DEFAULT_MODEL]
    expected = MEASURED[name]
    assert row["bright"] <= 10  # must-show
    assert row["bright"] == expected["bright"]
    assert row["flagged"] == pytest.approx(expected["flagged"], rel=0.05)
    assert row["away"] <= expected["away"] + 2
    for key in ("la_total", "la_found", "la_significant", "la_significant_found"):
        assert row[key] == expected[key], key
    assert result["rows"]["LACosmic"]["flagged"] == {"saao": 77, "gmos": 157, "kpno": 450}[name]


def test_paired_models_pairs_the_same_injections(ground, benchmark_script):
    """A model paired with itself finds exactly the same cosmic rays (b = c = 0): the pairing is per cosmic ray."""
    if ground.frame_path("gmos") is None:
        pytest.skip("frame 'gmos' needs astroscrappy installed")
    paired_models = benchmark_script("paired_models")
    header, rule, row = paired_models.paired_lines("ground", "ground", frames=["gmos"], libraries=["thin-ccd"])
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    frame, library, n_injected, flags, recall_ref, recall_cand, both, below_1k = cells
    assert (frame, library) == ("gmos", "thin-ccd") and int(n_injected) == 600  # 15 trials x 40 (the 40-trial cap)
    # measured: 224 flags where "auto" runs bfloat16 (a CPU with native bf16), 225 in float32 (AVX2-only)
    assert recall_ref == recall_cand and flags.split(" / ")[0] == flags.split(" / ")[1] in ("224", "225")
    assert both == below_1k == "0/0 p=1"


def test_paired_models_at_equal_flags_moves_the_candidates_threshold(ground, benchmark_script):
    """``--equal-flags``: ACS-WFC flags fewer pixels of GMOS-S than ground at 0.5 (the issue's 187 against 224);
    matched to ground's count it runs at a lower threshold (measured 0.352, 226 flags)."""
    if ground.frame_path("gmos") is None:
        pytest.skip("frame 'gmos' needs astroscrappy installed")
    paired_models = benchmark_script("paired_models")
    own = paired_models.paired_lines("ACS-WFC", "ground", frames=["gmos"], libraries=["thin-ccd"])[-1]
    matched = paired_models.paired_lines("ACS-WFC", "ground", frames=["gmos"], libraries=["thin-ccd"],
                                         equal_flags=True)
    assert matched[0].endswith("| cand. threshold |") and matched[1].count("---|") == 9
    cells = [cell.strip() for cell in matched[-1].strip("|").split("|")]
    reference_flags, candidate_flags = (int(count) for count in cells[3].split(" / "))
    own_flags = int(own.split("|")[4].split(" / ")[1])
    assert own_flags < reference_flags - 20  # at its own threshold ACS-WFC flags clearly fewer
    assert abs(candidate_flags - reference_flags) <= max(2, round(0.05 * reference_flags))
    threshold, how = cells[8].split(", ")
    assert how == "equal flags" and 0.25 < float(threshold.split()[1]) < 0.45


def test_the_hrc_frame_gets_ground_which_finds_more_than_acs_wfc(ground, benchmark_script):
    """The measurement behind ACS/HRC's model (docs/ground_search.rst, "Cameras without a card"), on one library.

    Measured (seed 22, the wfpc2 library, held out for both models; float32 and bfloat16 alike): ground finds 37
    cosmic rays that ACS-WFC misses and misses 7 it finds (25/3 below 1000 e-), at 4970 flags against 2412.
    """
    import warnings

    from astro_deepcr.datasets import load_hst_example
    from astro_deepcr.detection import choose_model

    try:
        example = load_hst_example()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no card for ACS/HRC
        assert choose_model(example.primary_header)[0].name == "ground"
    paired_models = benchmark_script("paired_models")
    row = paired_models.paired_lines("ground", "ACS-WFC", frames=["hrc"], libraries=["wfpc2"])[-1]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    frame, library, n_injected, flags, recall_ref, recall_cand, overall, below_1k = cells
    assert (frame, library, int(n_injected)) == ("hrc", "wfpc2", 1024)
    reference_flags, candidate_flags = (int(count) for count in flags.split(" / "))
    assert abs(reference_flags - 2412) < 40 and abs(candidate_flags - 4970) < 80
    b, c = (int(count) for count in overall.split()[0].split("/"))
    assert 33 <= b <= 41 and 5 <= c <= 9  # measured 37/7
    assert float(recall_cand) - float(recall_ref) == pytest.approx(0.030, abs=0.006)
    b, c = (int(count) for count in below_1k.split()[0].split("/"))
    assert 22 <= b <= 28 and c <= 5  # measured 25/3


@pytest.fixture
def hrc(ground, benchmark_script):
    """The HRC frame as ``injection_frames`` loads it, its brightest 0.5 % (``bright``) and ``flags(model,
    threshold=None)``: the flag door's mask of a model on the uninjected frame (the missing card's warning muted)."""
    import warnings

    from astro_deepcr.evaluation.detectors import deepcr_detector

    injection_frames = benchmark_script("injection_frames")
    try:
        frame = injection_frames.LOADERS["hrc"]()
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(str(exc))

    def flags(model, threshold=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no card for ACS/HRC; the alarm at a low threshold
            detector = deepcr_detector(model, threshold=threshold, dq=frame.get("dq"), satlevel=frame.get("satlevel"))
            return detector(frame["electrons"])

    return dict(frame=frame, bright=ground.bright_pixels(frame["electrons"]), flags=flags)


def test_the_hrc_frames_model_flags_a_tenth_of_lacosmics_brightest_pixels_at_most(hrc):
    """The issue's bound on HST frames, on the HRC frame with its default model (measured: ground 0, LACosmic at its
    defaults 22, ACS-WFC 4, float32 and bfloat16 alike): a model that flags star cores fails it."""
    import warnings

    from astro_deepcr.detection import choose_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no card for ACS/HRC
        spec = choose_model(hrc["frame"]["header"])[0]
    bright = hrc["bright"]
    flags = {"default": hrc["flags"](spec), "ACS-WFC": hrc["flags"]("ACS-WFC")}
    assert spec.name == "ground" and int(bright.sum()) > 5000
    assert int((flags["default"] & bright).sum()) <= 2  # a tenth of LACosmic's 22; measured 0
    assert 2 <= int((flags["ACS-WFC"] & bright).sum()) <= 6  # measured 4: the same bright set finds star-core flags


def test_a_lower_threshold_on_the_hrc_frame_flags_fainter_pixels_not_the_brightest(hrc):
    """Rule R30 (docs/ground_search.rst, "A threshold alone"): ``ground`` on the uninjected HRC frame at 0.2 and 0.1
    flags 1.9x and 2.8x its pixels at 0.5, hardly any of the brightest 0.5 % (LACosmic at its defaults: 22), and at
    0.1 the core's out-of-domain alarm fires for the frame's 60 s. Measured, float32 and bfloat16: 4970 / 4967,
    9226 / 9205, 14066 / 13998 pixels; bright 0, 0, 2."""
    from astro_deepcr.detection import flagged_fraction_alarm

    bright = hrc["bright"]
    flags = {threshold: hrc["flags"]("ground", threshold) for threshold in (0.2, 0.1)}
    counts = {threshold: int(mask.sum()) for threshold, mask in flags.items()}
    assert counts[0.2] == pytest.approx(9215, rel=0.02) and counts[0.1] == pytest.approx(14030, rel=0.02)
    assert int((flags[0.2] & bright).sum()) == 0 and int((flags[0.1] & bright).sum()) <= 3
    exptime = hrc["frame"]["header"]["EXPTIME"]
    assert exptime == 60.0
    assert flagged_fraction_alarm(counts[0.2] / flags[0.2].size, exptime) is None
    assert flagged_fraction_alarm(counts[0.1] / flags[0.1].size, exptime) is not None


def test_environment_lines_pair_the_detectors_within_each_environment(benchmark_script):
    """``injection_frames.environment_lines``: b/c and recall per environment, from the per-CR record."""
    from astro_deepcr.evaluation.frames import LACOSMIC_DEFAULT

    injection_frames = benchmark_script("injection_frames")
    # 2 near saturated (LACosmic finds both), 4 on bright sources (deepCR finds 3, LACosmic 1), 0 elsewhere
    environment = np.array([0, 0, 1, 1, 1, 1])
    found = {"deepCR ground": np.array([0, 0, 1, 1, 1, 0], bool), LACOSMIC_DEFAULT: np.array([1, 1, 0, 0, 1, 0], bool)}
    results = {"name": "f", "library": "lib", "default": "deepCR ground",
               "per_cr": {"environment": environment, "found_new": found}}
    lines = injection_frames.environment_lines([results, {"name": "g", "library": "lib", "trained_on": "library"}])
    assert lines[2:] == ["| f | lib | near saturated | 2 | 0.000 | 1.000 | 0/2 p=0.25 |",
                         "| f | lib | bright source | 4 | 0.750 | 0.250 | 2/0 p=1 |"]


def test_every_frame_is_a_library_and_kpnos_cosmic_rays_are_faint(ground, benchmark_script):
    """``injection_frames`` makes every frame's own cosmic rays a library named after it (harvested against the
    frame's own PSF); a library whose frame is not installed is skipped with a message, not an error.

    Measured (``python benchmarks/injection_frames.py --list-libraries --libraries kpno``): IRAF's dev$pix gives 54
    cosmic rays against a 2.66 px FWHM PSF measured from 23 stars, median 740 e-, 28 % below 500 e-: the faint,
    compact hits of a ground CCD, fainter than the HST libraries (wfpc2: median 999 e-, 9 % below 500 e-).
    """
    injection_frames = benchmark_script("injection_frames")
    injection_frames.register_libraries()
    from astro_deepcr.evaluation.libraries import LIBRARIES, cosmic_ray_library, library_stats

    assert {"saao", "gmos", "kpno", "wfpc2-wf3", "wfpc2-wf4", "wfpc2-pc1"} <= set(LIBRARIES)
    assert "kpno" in injection_frames.DEFAULT_LIBRARIES
    kept = injection_frames.available_libraries(["thin-ccd", "kpno"])
    if ground.frame_path("kpno") is None:
        assert kept == ["thin-ccd"]
        pytest.skip("frame 'kpno' needs IRAF's Debian package")
    stats = library_stats(cosmic_ray_library("kpno"))
    assert stats["count"] == 54
    assert stats["charge_median"] == pytest.approx(740, abs=15)
    assert stats["below_500"] == pytest.approx(0.28, abs=0.015)


def test_injection_frames_scores_each_frames_model_at_another_threshold(ground, benchmark_script, capsys):
    """``injection_frames.py --threshold 0.9``: the frame's own model (ground-v2 on GMOS-S) at 0.9, fewer flags than
    at its card's 0.5 (measured: 191 flags against 215; recall of 600 thin-ccd tracks 0.998)."""
    _frame(ground, "gmos")
    injection_frames = benchmark_script("injection_frames")
    results = injection_frames.main(["--no-protection", "--frames", "gmos", "--libraries", "thin-ccd", "--threshold",
                                     "0.9"])
    (run,) = results
    assert run["default"] == "deepCR ground-v2 at 0.9" and run["model"] == "ground-v2 at 0.9"
    assert 175 <= run["detectors"][run["default"]]["flags_original"] <= 205
    assert run["detectors"][run["default"]]["object_recall_new"] >= 0.98
    assert "ground-v2 at 0.9" in capsys.readouterr().out

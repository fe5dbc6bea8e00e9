# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The placebo control of injection-recovery (issue #27): faint point sources in place of cosmic rays."""

import numpy as np
import pytest
from scipy import ndimage

from astro_deepcr.evaluation.injection import injection_recovery, lacosmic_detector, psf_placebos
from astro_deepcr.evaluation.libraries import PLACEBO_FLOOR
from astro_deepcr.starpsf import moffat_pixels

#: Cosmic rays to stand for (e-): a single hit, a diagonal pair, a short track.
CRS = [np.array([[900.0]]), np.array([[700.0, 0.0], [0.0, 800.0]]), np.array([[300.0, 900.0, 1200.0, 1000.0]]),
       np.array([[2500.0, 400.0]])]


@pytest.mark.parametrize(("fwhm", "beta"), [(1.37, 1.33), (3.0, 2.5), (6.5, 4.0)])
def test_placebos_are_the_psf_with_the_cosmic_rays_charges(fwhm, beta):
    placebos = psf_placebos(CRS * 25, fwhm, beta, seed=3)
    half = int(np.ceil(3 * fwhm))
    assert len(placebos) == 100
    for cr, placebo in zip(CRS * 25, placebos):
        assert placebo.dtype == np.float32 and placebo.shape == (2 * half + 1,) * 2
        assert placebo.sum() == pytest.approx(cr.sum(), rel=1e-6)
        # the whole profile, wings included: a point source, not a core cut out of one
        assert placebo.min() > 0 and placebo.min() < 0.05 * placebo.max()
        y, x = ndimage.center_of_mass(placebo)
        assert abs(y - half) <= 0.5 and abs(x - half) <= 0.5
        y, x = np.unravel_index(np.argmax(placebo), placebo.shape)
        assert abs(y - half) <= 1 and abs(x - half) <= 1


def test_placebos_phases_are_seeded_and_uniform():
    first, again, other = (psf_placebos(CRS * 100, 2.0, 2.5, seed=seed) for seed in (0, 0, 1))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    offsets = np.array([ndimage.center_of_mass(p) for p in first]) - 6
    # phases uniform in [-0.5, 0.5): the centroids (pulled a little to the box centre by the box) spread over it
    assert np.all(np.abs(offsets) < 0.5)
    assert 0.2 < np.std(offsets[:, 0]) < 0.32 and 0.2 < np.std(offsets[:, 1]) < 0.32


def test_a_placebos_truth_is_its_core_and_its_charge_the_whole_source():
    """``footprint_floor``: the whole source is added, the truth is the pixels it raised by >= 5 % of its peak."""
    from astro_deepcr.evaluation.injection import inject_cosmic_rays

    image = np.full((200, 200), 100.0)
    placebos = psf_placebos(CRS * 5, 2.0, 2.5, seed=1)
    injected, truth, table = inject_cosmic_rays(image, placebos, 30, seed=2, footprint_floor=PLACEBO_FLOOR)
    assert len(table) == 30
    raised = injected > image
    assert raised.sum() == 30 * 13 * 13  # every placebo whole: 13 x 13 px each
    for row in table:
        stamp = placebos[row["stamp"]]
        core = int((stamp >= PLACEBO_FLOOR * stamp.max()).sum())
        assert row["n_pixels"] == core == (truth == row["label"]).sum() and core < 0.3 * stamp.size
        assert row["charge"] == pytest.approx(stamp.sum(), rel=1e-5)  # the whole source's charge
    _, plain_truth, plain = inject_cosmic_rays(image, placebos, 30, seed=2)
    assert (plain_truth > 0).sum() == raised.sum() and np.array_equal(plain["charge"], table["charge"])
    with pytest.raises(ValueError, match="footprint_floor"):
        inject_cosmic_rays(image, placebos, 3, footprint_floor=1.0)


@pytest.mark.parametrize(("kwargs", "message"), [({"fwhm": 0.0}, "fwhm > 0"), ({"beta": 1.0}, "beta > 1"),
                                                 ({"fwhm": np.nan}, "fwhm > 0")])
def test_placebo_arguments_are_checked(kwargs, message):
    arguments = {"fwhm": 2.0, "beta": 2.5} | kwargs
    with pytest.raises(ValueError, match=message):
        psf_placebos(CRS, arguments.pop("fwhm"), arguments.pop("beta"))
    with pytest.raises(ValueError, match="no positive charge"):
        psf_placebos([np.zeros((2, 2))], 2.0, 2.5)


def _seeing_limited_field(fwhm=3.0, shape=(384, 384), seed=5):
    """Sky, read noise and 120 well-sampled Moffat stars (2e3-2e5 e-), Poisson noise."""
    rng = np.random.default_rng(seed)
    clean = np.full(shape, 150.0)
    for _ in range(120):
        y, x = rng.uniform(15, shape[0] - 15, size=2)
        box = (slice(int(y) - 12, int(y) + 13), slice(int(x) - 12, int(x) + 13))
        clean[box] += moffat_pixels((25, 25), (y - int(y) + 12, x - int(x) + 12), fwhm, 2.5,
                                    flux=10 ** rng.uniform(3.3, 5.3))
    return rng.poisson(clean).astype(float) + rng.normal(0.0, 5.0, shape)


def _excess_detector(image):
    """Flags whatever stands 5 sigma above the local 7 x 7 median: it tells a star from a cosmic ray by nothing."""
    excess = image - ndimage.median_filter(image, 7)
    noise = np.sqrt(np.clip(ndimage.median_filter(image, 7), 0, None) + 25.0)
    return excess > 5 * noise


def test_the_placebo_separates_a_cosmic_ray_detector_from_an_excess_detector():
    """On a well-sampled field LACosmic's fine-structure test (objlim) spares faint stars: it finds the cosmic
    rays and few placebos. A detector of any excess finds both alike: its recall says nothing about cosmic rays."""
    image = _seeing_limited_field()
    library = CRS * 10
    detectors = {"LACosmic": lacosmic_detector(readnoise=5.0), "excess": _excess_detector}
    crs = injection_recovery(image, detectors, library=library, n_cr=120, seed=1)["detectors"]
    placebos = injection_recovery(image, detectors, library=psf_placebos(library, 3.0, 2.5), n_cr=120,
                                  seed=1, footprint_floor=PLACEBO_FLOOR)["detectors"]
    assert crs["LACosmic"]["objects"] >= 110 and placebos["LACosmic"]["objects"] >= 110
    # measured: LACosmic 116 / 120 cosmic rays, no placebo; the excess detector 118 / 120 and 76 / 120 (its misses
    # are the faint placebos: 900 e- spread over a 3 px FWHM stay below 5 sigma)
    assert crs["LACosmic"]["object_recall_new"] > 0.94
    assert placebos["LACosmic"]["object_recall_new"] <= 0.02
    assert crs["excess"]["object_recall_new"] > 0.96
    assert 0.55 < placebos["excess"]["object_recall_new"] < 0.72


def test_placebo_lines_put_each_detectors_cosmic_rays_beside_its_placebos():
    from astro_deepcr.evaluation.frames import LACOSMIC_DEFAULT
    from astro_deepcr.evaluation.injection import placebo_lines

    def run(recall, library, lacosmic="LA"):
        rates = {f"object_recall_new{suffix}": value for suffix, value in
                 zip(["", " near saturated", " bright source", " elsewhere"], recall)}
        rates.update({f"objects{suffix}": 10 for suffix in ["", " near saturated", " bright source", " elsewhere"]})
        return {"name": "f", "library": library, "detectors": {"deepCR ground": rates, lacosmic: rates}}

    lines = placebo_lines([(run([0.9, 0.1, 0.5, 1.0], "lib"),
                           run([0.2, 0.0, 0.25, 0.1], "lib placebo"))])
    assert lines[0] == "| frame | library | environment | CRs / placebos | ground | LA | placebos b/c p (more) |"
    assert lines[2] == "| f | lib | all | 10 / 10 | 0.900 / 0.200 | 0.900 / 0.200 | - |"  # no LACosmic default
    assert lines[4] == "| f | lib | bright source | 10 / 10 | 0.500 / 0.250 | 0.500 / 0.250 | - |"
    # the paired test on the placebos: 12 placebos, 6 on a bright source (environment 1), 6 elsewhere (2);
    # the default alone flags 5 (4 of them on sources), LACosmic alone 1 (elsewhere)
    placebos = run([0.2, 0.0, 0.25, 0.1], "lib placebo", LACOSMIC_DEFAULT)
    placebos["per_cr"] = {"charge": np.full(12, 500.0), "environment": np.array([1] * 6 + [2] * 6),
                          "found_new": {"deepCR ground": np.array([1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0], bool),
                                        LACOSMIC_DEFAULT: np.array([0] * 6 + [0, 1, 0, 0, 0, 0], bool)}}
    lines = placebo_lines([(run([0.9, 0.1, 0.5, 1.0], "lib", LACOSMIC_DEFAULT), placebos)])
    assert lines[2].endswith(f"| 5/1 p={7 / 64:.2g} |")  # P(X <= 1 | 6, 1/2) = 7/64: LACosmic flags fewer
    assert lines[4].endswith(f"| 4/0 p={1 / 16:.2g} |")  # bright source
    assert lines[5].endswith(f"| 1/1 p={3 / 4:.2g} |")  # elsewhere
    assert lines[3].endswith("| 0/0 p=1 |")  # near saturated: none there


def test_lacosmics_defaults_flag_faint_stars_on_the_hrc_frame_and_the_default_does_not(benchmark_script):
    """The placebo control on the real ACS/HRC frame, one trial of ``benchmarks/injection_frames.py --placebo``
    (measured: ground flags 14 of 516 faint point sources, LACosmic at its defaults 135, float32 and bfloat16
    alike; the whole run, two trials: 0.018 and 0.244 of 1035): on an undersampled frame LACosmic's
    fine-structure test lets faint stars through."""
    import warnings

    from astro_deepcr.evaluation.frames import frame_psf
    from astro_deepcr.evaluation.injection import cosmic_ray_library, run_frame

    injection_frames = benchmark_script("injection_frames")
    try:
        frame = injection_frames.LOADERS["hrc"]()
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(str(exc))
    psf = frame_psf(frame)
    assert psf.fwhm == pytest.approx(1.37, abs=0.01)
    placebos = psf_placebos(cosmic_ray_library("wfpc2"), psf.fwhm, psf.beta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no card for ACS/HRC
        results = run_frame(frame, library=placebos, seed=22, n_trials=1, match_flags=False,
                            footprint_floor=PLACEBO_FLOOR)
    rates = results["detectors"]
    assert results["model"] == "ground" and 500 <= rates["deepCR ground"]["objects"] <= 530
    assert rates["deepCR ground"]["object_recall_new"] <= 0.04
    assert 0.22 <= rates["LACosmic (sigclip 4.5)"]["object_recall_new"] <= 0.30


def test_star_profiles_are_the_frames_bright_isolated_stars():
    """Unit-sum shapes of the stars whose peak holds >= 1e4 e-, matching the profile the stars were made of."""
    from astro_deepcr.evaluation.injection import star_profiles

    rng = np.random.default_rng(2)
    clean = np.full((256, 256), 150.0)
    for k, (y, x) in enumerate(np.mgrid[28:256:40, 28:256:40].reshape(2, -1).T + rng.uniform(-0.5, 0.5, (36, 2))):
        box = (slice(int(y) - 12, int(y) + 13), slice(int(x) - 12, int(x) + 13))
        # every other star peaks near 24000 e- (its photon noise < 1 %), the others near 4000 e-
        clean[box] += moffat_pixels((25, 25), (y - int(y) + 12, x - int(x) + 12), 3.0, 2.5,
                                    flux=3e5 if k % 2 else 5e4)
    image = rng.poisson(clean).astype(float) + rng.normal(0.0, 5.0, clean.shape)
    profiles = star_profiles(image, 5.0, 3.0)
    assert 16 <= len(profiles) <= 18  # measured 17: a wing's noise peak can make a star not alone in its box
    for profile in profiles:
        assert profile.shape == (19, 19) and profile.min() >= 0 and profile.sum() == pytest.approx(1.0)
        y, x = ndimage.center_of_mass(profile)
        model = moffat_pixels((19, 19), (y, x), 3.0, 2.5)
        # the star's own shape to its photon noise (about 1 % of the peak) and the centroid's bias
        assert np.abs(profile - model / model.sum()).max() < 0.03 * profile.max()
    assert star_profiles(image, 5.0, 3.0, min_peak=1e7) == []
    # a non-finite pixel away from the stars is filled as the star-shape test fills it, not spread into the sky
    image[5, 70] = np.nan  # in the sky mesh cell of the second (bright) star, outside its box
    again = star_profiles(image, 5.0, 3.0)
    assert len(again) == len(profiles)
    assert all(np.allclose(a, b, rtol=0, atol=0.01 * b.max()) for a, b in zip(again, profiles))  # the sky moves a hair


def test_placebos_from_profiles_take_the_charges_and_a_seeded_draw():
    profiles = [np.full((3, 3), 1 / 9), np.pad([[0.5, 0.5]], 1)]
    placebos = psf_placebos(CRS * 20, 2.0, 2.5, profiles=profiles, seed=4)
    again = psf_placebos(CRS * 20, 2.0, 2.5, profiles=profiles, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(placebos, again))
    shapes = {placebo.shape for placebo in placebos}
    assert shapes == {(3, 3), (3, 4)}
    for cr, placebo in zip(CRS * 20, placebos):
        assert placebo.sum() == pytest.approx(cr.sum(), rel=1e-6)
    with pytest.raises(ValueError, match="sum to 1"):
        psf_placebos(CRS, 2.0, 2.5, profiles=[np.ones((2, 2))])
    with pytest.raises(ValueError, match="sum to 1"):
        psf_placebos(CRS, 2.0, 2.5, profiles=[])


def test_evaluate_inject_placebo_on_your_own_frames(tmp_path, capsys):
    """``astro-deepcr evaluate --inject FILE --placebo``: the placebo table beside the cosmic rays' (same trials,
    detectors and flag match), in the Markdown and the JSON; a frame without stars says why it has none."""
    import json

    from astropy.io import fits

    from astro_deepcr import cli

    pytest.importorskip("matplotlib")
    pytest.importorskip("astroscrappy")
    header = fits.Header({"BUNIT": "ELECTRONS", "RDNOISE": 5.0})
    fits.PrimaryHDU(_seeing_limited_field().astype(np.float32), header=header).writeto(tmp_path / "stars.fits")
    blank = np.random.default_rng(0).normal(100.0, 10.0, (128, 160)).astype(np.float32)
    fits.PrimaryHDU(blank, header=header).writeto(tmp_path / "blank.fits")
    code = cli.main(["evaluate", "--inject", str(tmp_path / "stars.fits"), str(tmp_path / "blank.fits"),
                     "--n-cr", "60", "--seed", "3", "--out", str(tmp_path / "out"), "--model", "ground-v2",
                     "--library", "thin-ccd", "--placebo"])
    assert code == 0
    assert "blank.fits[0]: no placebo: no 2 isolated unsaturated stars" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "injection.json").read_text())
    assert summary["blank.fits[0]"]["placebo"].startswith("no placebo: ")
    placebo = summary["stars.fits[0]"]["placebo"]
    assert set(placebo) == set(summary["stars.fits[0]"]["detectors"])
    assert all(rates["objects"] == 60 for rates in placebo.values())
    # measured: LACosmic flags none of the 60 faint point sources of this well-sampled field, ground-v2 none
    assert placebo["LACosmic (sigclip 4.5)"]["object_recall_new"] == 0.0
    assert placebo["deepCR ground-v2"]["object_recall_new"] <= 1 / 60
    markdown = (tmp_path / "out" / "injection.md").read_text()
    assert "| stars.fits[0] | thin-ccd | all | 60 / 60 |" in markdown
    assert "blank.fits[0] | thin-ccd | all" not in markdown


@pytest.mark.parametrize("name", ["ground", "ground-v2"])
def test_the_cards_faint_star_figures_are_the_docs(name):
    """The generic models' cards carry the placebo control's figures, the same as docs/injection.rst's table."""
    import pathlib

    from astro_deepcr.zoo import get_model

    spec = get_model(name, kind="mask")
    figures = spec.metrics["faint_point_sources"]
    assert "--placebo" in figures["command"] and len(figures["columns"]) == 5
    frames = {row[0] for row in figures["rows"]}
    assert frames == ({"saao", "gmos", "kpno"} if name == "ground-v2" else
                      {"hrc", "wfpc2", "wfpc2-wf3", "wfpc2-wf4", "wfpc2-pc1"})
    for _, library, placebos, model, lacosmic in figures["rows"]:
        assert library in ("wfpc2", "kpno") and placebos >= 450 and 0 <= model <= 1 and 0 <= lacosmic <= 1
    docs = pathlib.Path(__file__).parents[1] / "docs" / "injection.rst"
    if not docs.exists():
        pytest.skip("docs/ not available (installed package)")
    table = docs.read_text().split(".. _placebo:")[1].split("What it shows")[0].splitlines()
    short = {"wfpc2-wf4": "wf4", "hrc": "hrc"}
    for frame, library, _, model, lacosmic in figures["rows"]:
        label = frame if library == "wfpc2" else f"{short.get(frame, frame)} kpno"
        rows = [line for line in table if line[:10].strip() == label]  # the frame column is 9 characters wide
        if library == "kpno" and not rows:
            continue  # the docs give kpno rows for HRC and WF4 only
        (row,) = rows
        cells = row[len(label):].split()
        assert f"{model:.3f}" == cells[2] and f"{lacosmic:.3f}" == cells[8], row
    assert f"  faint_point_sources: {figures}" in spec.card()  # what `astro-deepcr models --card` prints

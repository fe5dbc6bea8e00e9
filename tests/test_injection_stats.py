# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Flag matching, recall by new flags and the paired significance test of injection-recovery (issue #27)."""

import numpy as np
import pytest

from astro_deepcr.evaluation.injection import (
    ENVIRONMENTS,
    FlagMatch,
    compare_detectors,
    discordant_test,
    injection_recovery,
    lacosmic_detector,
    match_lacosmic_flags,
    run_frame,
    table_lines,
)

pytest.importorskip("astroscrappy")

LIBRARY = [np.array([[0.0, 300.0], [800.0, 50.0]], np.float32), np.array([[4000.0, 2500.0, 900.0]], np.float32),
           np.array([[150.0, 200.0]], np.float32)]


def noise_frame(shape=(96, 96), seed=7):
    return np.random.default_rng(seed).normal(200.0, np.sqrt(200.0 + 25.0), shape)


def test_flag_match_reaches_a_target_below_sigclip_2():
    """The former search stopped at sigclip 2.0 and returned the nearest count without saying so."""
    image = noise_frame()
    target = int(lacosmic_detector(readnoise=5.0, sigclip=1.0)(image).sum())
    assert target > 5 * int(lacosmic_detector(readnoise=5.0, sigclip=2.0)(image).sum()) + 10
    match = match_lacosmic_flags(image, target, readnoise=5.0)
    assert isinstance(match, FlagMatch) and match.matched
    assert abs(match.n_flagged - target) <= match.tolerance == max(2, round(0.05 * target))
    assert match.sigclip < 2.0 and match.objlim == 5.0
    assert match.label() == f"LACosmic (sigclip {match.sigclip:.3g}, equal flags)"


def test_flag_match_says_when_it_cannot_reach_the_target():
    image = noise_frame((40, 40))
    match = match_lacosmic_flags(image, image.size + 500, readnoise=5.0, steps=6, objlims=(5.0, 1.0))
    assert not match.matched and match.target == image.size + 500
    assert match.n_flagged < image.size and match.objlim == 1.0  # tried the lower objlim too
    assert match.label().endswith(f"nearest flags ({match.n_flagged} vs target {image.size + 500}))")
    with pytest.raises(ValueError, match="n_flags"):
        match_lacosmic_flags(image, -1, readnoise=5.0)


def test_discordant_test_exact_values():
    # 10 discordant: deepCR alone finds 2, LACosmic alone 8; 5 found by both, 3 by neither
    found_a = np.array([1] * 5 + [1] * 2 + [0] * 8 + [0] * 3, bool)
    found_b = np.array([1] * 5 + [0] * 2 + [1] * 8 + [0] * 3, bool)
    result = discordant_test(found_a, found_b)
    assert (result["b"], result["c"], result["n"]) == (2, 8, 18)
    assert result["p"] == pytest.approx(56 / 1024, rel=1e-12)  # P(X <= 2 | 10, 1/2) = (1 + 10 + 45) / 2**10
    assert result["recall_a"] == pytest.approx(7 / 18) and result["recall_b"] == pytest.approx(13 / 18)
    assert discordant_test(found_b, found_a)["p"] == pytest.approx(1013 / 1024, rel=1e-12)  # P(X <= 8 | 10)
    assert discordant_test([True, False], [True, False])["p"] == 1.0  # nothing discordant
    with pytest.raises(ValueError, match="one length"):
        discordant_test([True], [True, False])


def test_recall_by_new_flags_excludes_flags_that_were_there_before():
    image = noise_frame((120, 160))
    everything = lambda data: np.ones(data.shape, bool)  # noqa: E731 - flags every pixel, before and after

    def oracle(data):
        return data > image

    results = injection_recovery(image, {"everything": everything, "oracle": oracle}, library=LIBRARY, n_cr=30,
                                 seed=3, n_trials=2)
    rates = results["detectors"]["everything"]
    assert rates["object_recall"] == 1.0 and rates["object_recall_new"] == 0.0  # plain 1, by new flags 0
    for key in ("0-500 e-", "500-1000 e-", "< 1000 e-", ">= 5000 e-", "elsewhere"):
        assert not rates[f"object_recall_new {key}"] > 0  # 0, or nan for an empty bin
    assert results["detectors"]["oracle"]["object_recall_new < 1000 e-"] == 1.0
    assert rates["objects < 1000 e-"] == rates["objects 0-500 e-"] + rates["objects 500-1000 e-"] > 0
    # the paired record: the oracle finds every CR by a new flag, "everything" none
    per_cr = results["per_cr"]
    assert per_cr["charge"].size == results["n_injected"] == 60
    assert per_cr["found"]["everything"].all() and not per_cr["found_new"]["everything"].any()
    test = compare_detectors(results, "everything", "oracle")
    assert (test["b"], test["c"]) == (0, 60) and test["p"] == pytest.approx(0.5**60)
    low = compare_detectors(results, "oracle", "everything", max_charge=1000.0)
    assert low["n"] == rates["objects < 1000 e-"] and low["p"] == 1.0
    for index, name in enumerate(ENVIRONMENTS):
        where = compare_detectors(results, "oracle", "everything", environment=index)
        assert where["n"] == rates[f"objects {name}"] and where["b"] == where["n"] and where["c"] == 0
    with pytest.raises(KeyError, match="nothing"):
        compare_detectors(results, "nothing", "oracle")


def test_run_frame_labels_a_missed_flag_match_and_gives_p_values():
    image = noise_frame((80, 100))
    frame = {"electrons": image, "readnoise": 5.0, "name": "noise"}
    greedy = ("greedy", lambda data: np.ones(data.shape, bool))  # more flags than LACosmic can ever make
    results = run_frame(frame, detector=greedy, library=LIBRARY, n_cr=20, seed=1)
    match = results["flag_match"]
    assert not match.matched and match.target == image.size
    names = list(results["detectors"])
    assert names[0] == "greedy" and names[2] == match.label() and "nearest flags" in names[2]
    assert set(results["significance"]) == set(names[1:])
    assert set(results["significance"][names[1]]) == {"all", "< 1000 e-"}
    lines = table_lines([results])
    assert "recall" in lines[0] and "plain recall" in lines[0] and "b/c p <1k e-" in lines[0]
    assert not any("equal flags" in line for line in lines)
    row = next(line for line in lines if "nearest flags" in line)
    test = results["significance"][names[2]]["all"]
    assert f"{test['b']}/{test['c']} p={test['p']:.2g}" in row


def test_training_claims_from_a_card():
    from types import SimpleNamespace

    from astro_deepcr.evaluation.injection import training_claims
    from astro_deepcr.zoo import get_model

    assert training_claims(get_model("ACS-WFC", kind="mask")) == ((), ())  # its card names none of these frames
    card = SimpleNamespace(metrics={"training_frames": ["saao", "gmos"], "training_libraries": "thin-ccd"})
    assert training_claims(card) == (("saao", "gmos"), ("thin-ccd",))
    card = SimpleNamespace(training_frames=("hrc",), metrics={"training_frames": ["saao"]})
    assert training_claims(card) == (("hrc",), ())  # a card field wins over metrics


def test_common_flags_take_what_both_flag_and_its_surroundings():
    from astro_deepcr.evaluation.frames import common_flags

    first, second = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    first[5, 5:9] = second[5, 7:12] = True  # both flag (5, 7) and (5, 8)
    first[15, 15] = True  # only the first
    common = common_flags(first, second)
    assert common[5, 7:9].all() and common[3, 5:11].all() and common[7, 10]
    assert not common[2, 7] and not common[5, 11] and not common[15, 15]
    assert common.sum() == 5 * 6  # rows 3-7, columns 5-10
    assert not common_flags(first, ~first).any()


def test_run_frame_counts_bright_flags_outside_common_ones():
    image = noise_frame((60, 60))
    image[31, 10:40] += 3000.0  # a track: both detectors flag it
    yy, xx = np.mgrid[:60, :60]
    image += 3000.0 * np.exp(-0.5 * ((yy - 10) ** 2 + (xx - 45) ** 2) / 2.5**2)  # a star LACosmic leaves alone
    bright = np.zeros(image.shape, bool)
    bright[29:34, 8:42] = bright[5:16, 40:51] = True
    frame = {"electrons": image, "readnoise": 5.0, "name": "track"}
    results = run_frame(frame, detector=("greedy", lambda data: data > 1000.0), library=LIBRARY, n_cr=5, seed=1,
                        bright=bright, match_flags=False)
    star = int(((image > 1000.0) & bright)[5:16, 40:51].sum())
    assert star > 10
    assert results["bright_flags"]["greedy"] == 30 + star
    assert results["bright_flags"]["LACosmic (sigclip 4.5)"] >= 28
    assert results["bright_flags_unshared"] == {"greedy": star, "LACosmic (sigclip 4.5)": 0}


def test_bright_flag_cut_outs_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from astro_deepcr.evaluation.plots import plot_bright_flags

    image = noise_frame((60, 60))
    image[31, 10:40] += 3000.0
    bright = np.zeros(image.shape, bool)
    bright[29:34, 8:42] = True
    frame = {"electrons": image, "readnoise": 5.0, "name": "track"}
    results = run_frame(frame, detector=("greedy", lambda data: data > 1000.0), library=LIBRARY, n_cr=5, seed=1,
                        bright=bright, match_flags=False)
    path = tmp_path / "bright_track.png"
    plot_bright_flags(results, image, bright, path)
    from matplotlib.image import imread

    picture = imread(path)
    assert picture.shape[0] > 100 and picture.shape[1] > 500
    # nothing flagged on the bright set: an empty sheet, still written
    plot_bright_flags(results, image, np.zeros(image.shape, bool), tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 1000


def test_run_frame_gives_flagged_fractions_and_the_alarm_with_the_exposure_time(benchmark_script):
    from astropy.io import fits

    image = noise_frame((50, 40))
    every_tenth = ("every tenth", lambda data: (np.arange(data.size) % 10 == 0).reshape(data.shape))
    rates = {}
    for exptime in (60.0, 1000.0):
        frame = {"electrons": image, "readnoise": 5.0, "name": "noise",
                 "header": fits.Header({"EXPTIME": exptime})}
        results = run_frame(frame, detector=every_tenth, library=LIBRARY, n_cr=5, seed=1, match_flags=False)
        assert results["flagged_fraction"]["every tenth"] == pytest.approx(0.1)
        rates[exptime] = results
    # 10 % in 60 s is 1.7e-3 per second; in 1000 s 1e-4 per second, under the bound
    assert rates[60.0]["alarm"]["every tenth"] == "0.00015 per second of exposure"
    assert rates[1000.0]["alarm"]["every tenth"] is None
    lacosmic = rates[60.0]["flagged_fraction"]["LACosmic (sigclip 4.5)"]
    assert lacosmic < 0.01 and rates[60.0]["alarm"]["LACosmic (sigclip 4.5)"] is None
    row = benchmark_script("injection_frames").summary_lines([rates[60.0]])[2]
    assert row.endswith(f"| 10.00 (alarm) / {100 * lacosmic:.2f} |")


def test_rst_lines_give_the_docs_held_out_table(benchmark_script):
    """``injection_frames --rst``: the summary's cells as docs/ground.rst's table, a trained-on row as "..", a run
    without the flag match as "-", every cell inside its column's rule (Sphinx rejects one that overhangs)."""
    frame = {"electrons": noise_frame((50, 40)), "readnoise": 5.0, "name": "noise"}
    every_tenth = ("deepCR tenth", lambda data: (np.arange(data.size) % 10 == 0).reshape(data.shape))
    results = run_frame(frame, detector=every_tenth, library=LIBRARY, n_cr=5, seed=1, match_flags=False)
    injection_frames = benchmark_script("injection_frames")
    trained = {"name": "noise", "library": "hrc", "model": "tenth", "trained_on": "library"}
    lines = injection_frames.rst_lines([trained, results])
    rule = lines[0]
    assert len(lines) == 7 and lines[3] == lines[-1] == rule
    gaps = [i for i, char in enumerate(rule) if char == " "]
    assert len(gaps) == 11  # twelve columns
    for line in lines[1:3] + lines[4:6]:
        assert all(i >= len(line) or line[i] == " " for i in gaps)
    assert lines[4].split() == ["noise", "hrc", "tenth", "trained", "on"] + [".."] * 8
    summary = injection_frames.summary_rows([results])[0]
    assert summary[4:7] == ["-", "-", "-"]  # no equal-flags LACosmic in this run
    recall, la_default, p_all, p_low = summary[3], summary[7], summary[8], summary[9]
    assert lines[5].split() == ["noise", "given", "deepCR", "tenth", recall, "-", "-", "-", la_default, p_all, p_low,
                                "-/-", "-/-"]


def test_the_summary_keeps_its_columns_with_tuned_lacosmic(benchmark_script):
    """``injection_frames --tune-objlim``: the tuned LACosmic runs get their own table; the summary row keeps one
    equal-flags LACosmic (the default match) and its thirteen columns (it had one more group per objlim)."""
    frame = {"electrons": noise_frame((80, 100)), "readnoise": 5.0, "name": "noise"}
    cut = ("cut", lambda data: data > 200.0 + 2.5 * np.sqrt(225.0))
    results = run_frame(frame, detector=cut, library=LIBRARY, n_cr=20, seed=1, tune_objlims=(1, 20))
    assert len(results["detectors"]) == 5  # cut, LACosmic's defaults, its equal-flags match, and objlim 1 and 20
    summary = benchmark_script("injection_frames").summary_rows([results])[0]
    assert len(summary) == 13
    assert summary[4] == f"{results['detectors'][results['flag_match'].label()]['object_recall_new']:.3f}"


def test_deepcr_flag_match_finds_the_threshold_of_a_flag_count():
    from astro_deepcr.evaluation.detectors import ThresholdMatch, deepcr_detector, match_deepcr_flags

    image = noise_frame((128, 128), seed=11)
    rng = np.random.default_rng(2)
    for y, x in rng.integers(4, 124, (40, 2)):
        image[y, x:x + 2] += rng.uniform(100, 3000)  # compact hits from faint to bright
    target = int(deepcr_detector("ground", threshold=0.05)(image).sum())
    assert target > int(deepcr_detector("ground")(image).sum()) + 5  # the target is not the default's count
    match = match_deepcr_flags(image, target, "ground")
    assert isinstance(match, ThresholdMatch) and match.matched
    assert abs(match.n_flagged - target) <= match.tolerance // 5 + 1
    assert match.n_flagged == int(deepcr_detector("ground", threshold=match.threshold)(image).sum())
    assert 0.02 < match.threshold < 0.15 and match.label() == f"threshold {match.threshold:.3g}, equal flags"
    # more flags than any threshold gives: the nearest, said so
    far = match_deepcr_flags(image, image.size + 10, "ground", steps=4)
    assert not far.matched and far.label().endswith(f"nearest flags ({far.n_flagged} vs target {image.size + 10})")
    with pytest.raises(TypeError, match="threshold"):
        match_deepcr_flags(image, 10, "ground", threshold=0.3)


def test_deepcr_flag_match_counts_over_several_images():
    from astro_deepcr.evaluation.detectors import deepcr_detector, match_deepcr_flags

    rng = np.random.default_rng(4)
    parts = [noise_frame((96, 128), seed=12), noise_frame((128, 80), seed=13)]
    for part in parts:
        for y, x in rng.integers(4, 76, (25, 2)):
            part[y, x:x + 2] += rng.uniform(100, 3000)
    masks = [np.zeros(parts[0].shape, bool), np.zeros(parts[1].shape, bool)]
    masks[1][:, :40] = True  # half of the second part is bad: never flagged, never counted
    target = sum(int(deepcr_detector("ground", threshold=0.05, mask=m)(p).sum()) for p, m in zip(parts, masks))
    match = match_deepcr_flags(parts, target, "ground", mask=masks)
    assert match.matched and match.target == target
    assert match.n_flagged == sum(int(deepcr_detector("ground", threshold=match.threshold, mask=m)(p).sum())
                                  for p, m in zip(parts, masks))
    single = match_deepcr_flags(parts[0], int(deepcr_detector("ground", threshold=0.05)(parts[0]).sum()), "ground")
    assert single.matched
    with pytest.raises(ValueError, match="1 masks for 2 images"):
        match_deepcr_flags(parts, target, "ground", mask=masks[:1])


def test_run_frame_tunes_lacosmic_objlim_and_picks_the_best_with_hindsight(monkeypatch):
    from astro_deepcr.evaluation import frames
    from astro_deepcr.evaluation.injection import tuned_lacosmic, tuned_lines

    image = noise_frame((80, 100))
    frame = {"electrons": image, "readnoise": 5.0, "name": "noise"}
    cut = 200.0 + 2.5 * np.sqrt(225.0)
    detector = ("cut", lambda data: data > cut)
    results = run_frame(frame, detector=detector, library=LIBRARY, n_cr=20, seed=1, tune_objlims=(1, 5, 20))
    tuned = results["tuned_matches"]
    target = int((image > cut).sum())
    assert [found.objlim for found in tuned] == [1.0, 5.0, 20.0] and {found.target for found in tuned} == {target}
    assert all(found.matched for found in tuned)
    labels = [found.label() for found in tuned]
    assert "objlim 1," in labels[0] and "objlim" not in labels[1] and "objlim 20," in labels[2]
    assert labels[1] == results["flag_match"].label()  # objlim 5 is the default match: scored once
    assert set(labels) <= set(results["detectors"]) and len(results["detectors"]) == 2 + len(set(labels))
    assert set(labels) <= set(results["significance"])
    recall = {label: results["detectors"][label]["object_recall_new"] for label in labels}
    best = tuned_lacosmic(results)
    assert recall[best] == max(recall.values()) and best == next(label for label in labels
                                                                 if recall[label] == max(recall.values()))
    row = tuned_lines([results])[2]
    assert row.startswith("| noise | given | ")
    test = results["significance"][best]
    assert f"{test['all']['b']}/{test['all']['c']} p={test['all']['p']:.2g}" in row
    assert all(f"{recall[label]:.3f}" in row for label in labels)

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(frames, "match_lacosmic_flags", no_search)  # given matches are reused, not searched again
    again = run_frame(frame, detector=detector, library=LIBRARY, n_cr=20, seed=1, tune_objlims=(1, 5, 20),
                      tuned_matches=tuned, match_flags=False)
    assert again["tuned_matches"] == tuned and again["flag_match"] is None
    assert again["detectors"][best]["object_recall_new"] == recall[best]


def test_tuned_lacosmic_says_when_no_objlim_reaches_the_count():
    from astro_deepcr.evaluation.injection import tuned_lacosmic, tuned_lines

    image = noise_frame((40, 50))
    frame = {"electrons": image, "readnoise": 5.0, "name": "noise"}
    greedy = ("greedy", lambda data: np.ones(data.shape, bool))
    results = run_frame(frame, detector=greedy, library=LIBRARY, n_cr=10, seed=1, match_flags=False,
                        tune_objlims=(1, 20))
    assert [found.matched for found in results["tuned_matches"]] == [False, False]
    assert list(results["detectors"]) == ["greedy", "LACosmic (sigclip 4.5)"]  # unreached ones are not scored
    assert tuned_lacosmic(results) is None
    assert tuned_lines([results])[2].endswith("| - | - | none reached | - | - |")


def test_evaluate_inject_tune_objlim_on_your_own_frame(tmp_path):
    """``astro-deepcr evaluate --inject FILE --tune-objlim``: one match per objlim in the JSON, the best with
    hindsight among the scored detectors, and the table in the Markdown."""
    import json

    from astropy.io import fits

    from astro_deepcr import cli
    from astro_deepcr.evaluation.injection import TUNING_OBJLIMS

    pytest.importorskip("matplotlib")
    header = fits.Header({"BUNIT": "ELECTRONS", "RDNOISE": 5.0})
    fits.PrimaryHDU(noise_frame((96, 128)).astype(np.float32), header=header).writeto(tmp_path / "noise.fits")
    code = cli.main(["evaluate", "--inject", str(tmp_path / "noise.fits"), "--n-cr", "30", "--seed", "3",
                     "--out", str(tmp_path / "out"), "--model", "ground-v2", "--library", "thin-ccd", "--tune-objlim"])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "injection.json").read_text())["noise.fits[0]"]
    assert [found["objlim"] for found in summary["tuned_matches"]] == list(TUNING_OBJLIMS)
    assert {found["target"] for found in summary["tuned_matches"]} == {summary["flag_match"]["target"]}
    reached = [found for found in summary["tuned_matches"] if found["matched"]]
    assert summary["tuned_best"] is None if not reached else summary["tuned_best"] in summary["detectors"]
    markdown = (tmp_path / "out" / "injection.md").read_text()
    assert "| frame | library | deepCR | objlim 1 | objlim 2 |" in markdown
    assert "| noise.fits[0] | thin-ccd |" in markdown

# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from astro_deepcr import DeepCR
from astro_deepcr.evaluation import (
    confusion_counts,
    dilated_tpr,
    inpaint_mse,
    mask_scores,
    operating_point,
    roc_curve,
    tpr_at_fpr,
)


def _brute_force_tpr_at_fpr(score, truth, target):
    """Best TPR with FPR <= target, by direct counting at every candidate threshold (a negative's score).

    Independent of `roc_curve`: a threshold admitting k negatives (score >= the k-th highest negative, in
    the ">=" convention) is the best one at that k; try every k allowed by the target and count directly.
    """
    negatives = np.sort(score[~truth])[::-1]
    positives = score[truth]
    best = 0.0
    for k in range(negatives.size + 1):
        if k / negatives.size > target:
            break
        # every pixel above the (k+1)-th highest negative score: at most k negatives (fewer under ties)
        bar = negatives[k] if k < negatives.size else -np.inf
        best = max(best, (positives > bar).sum() / positives.size)
    return best


def test_confusion_counts_by_hand():
    predicted = np.array([[1, 1, 0, 0]], bool)
    truth = np.array([[1, 0, 1, 0]], bool)
    assert confusion_counts(predicted, truth) == (1, 1, 1, 1)
    valid = np.array([[1, 1, 1, 0]], bool)
    assert confusion_counts(predicted, truth, valid) == (1, 1, 0, 1)
    with pytest.raises(TypeError, match="boolean"):
        confusion_counts(predicted.astype(int), truth)
    with pytest.raises(ValueError, match="does not match"):
        confusion_counts(predicted, truth[:, :2])


def test_roc_by_hand_with_ties():
    # scores: two positives (0.9, 0.5), three negatives (0.5, 0.5, 0.1): a tie at 0.5
    score = np.array([[0.9, 0.5, 0.5, 0.5, 0.1]])
    truth = np.array([[1, 1, 0, 0, 0]], bool)
    fpr, tpr, thresholds = roc_curve(score, truth)
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.5, 0.1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(fpr, [0, 0, 2 / 3, 1.0])  # the tie enters as one step, not half of it
    assert tpr_at_fpr(fpr, tpr, 0.5) == 0.5
    assert tpr_at_fpr(fpr, tpr, 0.7, thresholds) == (1.0, 0.5)
    assert tpr_at_fpr(fpr, tpr, 1.0) == 1.0


def test_exact_tpr_at_fpr_on_2e5_distinct_scores_equals_brute_force():
    # issue #16 must-show; the old thinning to 4001 quantiles gave 0.00325 here instead of the exact 0.00398
    rng = np.random.default_rng(16)
    score = rng.permutation(200_000) / 200_000.0  # 2e5 distinct scores
    truth = rng.random(score.size) < 0.02 + 0.2 * score**8  # positives concentrate at high scores
    fpr, tpr, thresholds = roc_curve(score, truth)
    assert thresholds.size == score.size + 1  # every distinct score is a threshold, plus +inf
    expected = _brute_force_tpr_at_fpr(score, truth, 5e-4)
    value, threshold = tpr_at_fpr(fpr, tpr, 5e-4, thresholds)
    assert value == expected
    # the threshold is real: flagging score >= threshold achieves that TPR within the FPR
    tp, fp, tn, fn = confusion_counts(score >= threshold, truth)
    assert tp / (tp + fn) == expected and fp / (fp + tn) <= 5e-4
    point = operating_point(score, truth, 5e-4)
    assert point.tpr == expected and point.threshold == threshold and point.fpr == _fp_rate(score, truth, threshold)


def _fp_rate(score, truth, threshold):
    return ((score >= threshold) & ~truth).sum() / (~truth).sum()


def test_exact_roc_under_ties_on_a_large_input():
    # many ties (scores rounded to 1e-3, as float16 probabilities would be): every point equals a direct count
    rng = np.random.default_rng(3)
    score = np.round(rng.random((50, 100, 100)), 3)
    truth = rng.random(score.shape) < 0.01 + 0.05 * score
    fpr, tpr, thresholds = roc_curve(score, truth)
    assert thresholds.size == np.unique(score).size + 1
    for i in (1, 7, 500, 999, 1001):
        predicted = score >= thresholds[i]
        assert tpr[i] == (predicted & truth).sum() / truth.sum()
        assert fpr[i] == (predicted & ~truth).sum() / (~truth).sum()
    assert tpr_at_fpr(fpr, tpr, 0.01) == _brute_force_tpr_at_fpr(score.ravel(), truth.ravel(), 0.01)
    # the order of the pixels (as threads or tiles would change it) does not matter
    order = rng.permutation(score.size)
    shuffled = roc_curve(score.ravel()[order], truth.ravel()[order])
    for a, b in zip(shuffled, (fpr, tpr, thresholds), strict=True):
        np.testing.assert_array_equal(a, b)


def test_roc_refuses_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        roc_curve(np.array([0.1, np.nan]), np.array([True, False]))
    # excluded NaNs are fine
    fpr, tpr, _ = roc_curve(np.array([0.1, np.nan, 0.3]), np.array([True, False, False]),
                            valid=np.array([True, False, True]))
    np.testing.assert_array_equal(tpr, [0, 0, 1])


def test_mask_scores_by_hand():
    found = np.array([[1, 1, 1, 0, 0, 0]], bool)
    truth = np.array([[1, 1, 0, 1, 0, 0]], bool)
    # TP 2, FP 1, FN 1, TN 2
    assert mask_scores(found, truth) == (2 / 3, 1 / 3, 2 / 3)
    assert mask_scores(found, truth).precision == 2 / 3
    valid = np.array([[1, 1, 0, 1, 1, 1]], bool)  # drop the false positive
    assert mask_scores(found, truth, valid) == (2 / 3, 0.0, 1.0)
    nothing = mask_scores(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    assert np.isnan(nothing.recall) and nothing.fpr == 0.0 and np.isnan(nothing.precision)
    with pytest.raises(TypeError, match="boolean"):
        mask_scores(found.astype(int), truth)


def test_dilated_tpr_of_a_stack_does_not_reach_across_images():
    truth = np.zeros((2, 4, 4), bool)
    truth[1, 0, 1] = True  # first row of the second image
    predicted = np.zeros((2, 4, 4), bool)
    predicted[0, 3, 1] = True  # last row of the first image: adjacent only if the stack is flattened
    assert dilated_tpr(predicted, truth) == 0.0
    assert dilated_tpr(predicted.reshape(8, 4), truth.reshape(8, 4)) == 1.0


def test_roc_all_negative_and_all_positive():
    score = np.array([0.2, 0.7, 0.4])
    fpr, tpr, _ = roc_curve(score, np.zeros(3, bool))
    assert np.isnan(tpr).all() and fpr[-1] == 1.0
    assert np.isnan(tpr_at_fpr(fpr, tpr, 0.5))
    fpr, tpr, _ = roc_curve(score, np.ones(3, bool))
    assert np.isnan(fpr).all() and tpr[-1] == 1.0
    assert np.isnan(tpr_at_fpr(fpr, tpr, 0.5))


def test_roc_at_given_thresholds_matches_direct_counts():
    rng = np.random.default_rng(0)
    score = rng.random((20, 30))
    truth = rng.random((20, 30)) > 0.8
    fpr, tpr, thresholds = roc_curve(score, truth, thresholds=[0.25, 0.5, 0.75])
    for f, t, threshold in zip(fpr, tpr, thresholds):
        tp, fp, tn, fn = confusion_counts(score >= threshold, truth)
        assert t == tp / (tp + fn) and f == fp / (fp + tn)


def test_dilated_tpr_by_hand():
    truth = np.zeros((5, 5), bool)
    truth[2, 1:4] = True  # a 3-pixel track
    predicted = np.zeros((5, 5), bool)
    predicted[2, 2] = True  # only its middle is predicted
    assert dilated_tpr(predicted, truth) == 1.0
    tp, fp, tn, fn = confusion_counts(predicted, truth)
    assert tp / (tp + fn) == pytest.approx(1 / 3)
    _, dtpr, _ = roc_curve(predicted.astype(float), truth, thresholds=[0.5], dilate=True)
    assert dtpr[0] == 1.0
    assert np.isnan(dilated_tpr(predicted, np.zeros((5, 5), bool)))


def test_inpaint_mse_by_hand():
    truth = np.array([[1.0, 2.0], [3.0, 4.0]])
    cleaned = np.array([[1.0, 4.0], [3.0, 1.0]])
    mask = np.array([[0, 1], [0, 1]], bool)
    assert inpaint_mse(cleaned, truth, mask) == (4 + 9) / 2
    assert np.isnan(inpaint_mse(cleaned, truth, np.zeros((2, 2), bool)))


def test_evaluate_writes_the_report(tmp_path):
    import importlib.util

    from astro_deepcr.evaluation.report import evaluate, make_test_set

    if importlib.util.find_spec("drizzlepac") is None:  # its TinyTim PSFs make the simulated stars
        pytest.skip("drizzlepac (TinyTim PSFs) not installed: the simulator's Gaussian stand-in is another test set")

    test_set = make_test_set(("extragalactic", "globular"), n_images=1, size=96, seed=5)
    results = evaluate(tmp_path, models=["ACS-WFC-F606W-2-4"], inpaint_models=["ACS-WFC-F606W-2-32"],
                       test_set=test_set, reference=False, runtime_size=64)
    for name in ("report.md", "results.json", "roc.png", "gallery.png", "runtime.png"):
        assert (tmp_path / name).stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "LACosmic (objlim 2)" in report and "ACS-WFC-F606W-2-32" in report and "medmask" in report
    row = results["detection"]["globular"]["ACS-WFC-F606W-2-4"]
    # recomputed independently of the report's wiring: the same images, the model, a direct count
    items = [item for item in test_set if item["field"] == "globular"]
    model = DeepCR("ACS-WFC-F606W-2-4", device="cpu", progress=False)
    score = np.concatenate([model.probability(item["image"]).ravel() for item in items])
    truth = np.concatenate([item["cr_mask"].ravel() for item in items])
    assert row["tpr@0.005"] == _brute_force_tpr_at_fpr(score, truth, 0.005)
    assert row["tpr@default"] == ((score > 0.5) & truth).sum() / truth.sum()
    assert row["fpr@default"] == ((score > 0.5) & ~truth).sum() / (~truth).sum()
    assert set(results["inpainting"]["extragalactic"]) == {"medmask", "biharmonic", "ACS-WFC-F606W-2-32"}


@pytest.mark.slow
def test_evaluate_command_quick(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "astro_deepcr.cli", "evaluate", "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "report.md").read_text()
    assert "TPR@0.05%" in report and "LACosmic" in report and "biharmonic" in report
    assert (tmp_path / "roc.png").exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--n-images", "0"], "argument --n-images: must be a positive integer, not 0"),
    (["--size", "-5"], "argument --size: must be a positive integer, not -5"),
    (["--exptime", "-1"], "argument --exptime: must be a finite number > 0, not -1"),
    (["--exptime", "nan"], "argument --exptime: must be a finite number > 0, not nan"),
    (["--models", "nope"], "unknown model 'nope'"),
    (["--inpaint-models", "ACS-WFC"], "model 'ACS-WFC' is a mask model, not a inpaint model"),
    (["--inject", "x.fits", "--library", "nope"], "argument --library: invalid choice: 'nope'"),
])
def test_evaluate_options_are_usage_errors(tmp_path, capsys, arguments, message):
    """Audit: --n-images 0, --size -5, --exptime -1 failed inside matplotlib or numpy; --models nope exited 1 with
    a 'ValueError:' prefix; --inject --library nope failed once per frame."""
    from astro_deepcr.cli import main

    assert main(["evaluate", "--out", str(tmp_path / "out"), *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and "Error:" not in err and "FAILED" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("command", "option"), [("evaluate", "--library"), ("adapt", "--check-library")])
def test_help_lists_every_cr_library_it_accepts(command, option):
    """Audit: the help listed four libraries while wfpc2 was accepted (and used in the docs' example)."""
    from astro_deepcr.cli import build_parser
    from astro_deepcr.evaluation.libraries import LIBRARIES

    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    action = next(action for action in subparsers.choices[command]._actions if option in action.option_strings)
    assert action.choices == list(LIBRARIES) and "wfpc2" in LIBRARIES
    assert f": {', '.join(LIBRARIES)} (" in action.help

# Licensed under a 3-clause BSD style license - see LICENSE.rst
import numpy as np
import pytest

from astro_deepcr.evaluation import confusion_counts, dilated_tpr, inpaint_mse, roc_curve, tpr_at_fpr


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
    from astro_deepcr.evaluation.report import evaluate, make_test_set

    test_set = make_test_set(("extragalactic", "globular"), n_images=1, size=96, seed=5)
    results = evaluate(tmp_path, models=["ACS-WFC-F606W-2-4"], inpaint_models=["ACS-WFC-F606W-2-32"],
                       test_set=test_set, reference=False, runtime_size=64)
    for name in ("report.md", "results.json", "roc.png", "gallery.png", "runtime.png"):
        assert (tmp_path / name).stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "LACosmic (objlim 2)" in report and "ACS-WFC-F606W-2-32" in report and "medmask" in report
    row = results["detection"]["globular"]["ACS-WFC-F606W-2-4"]
    assert 0 <= row["tpr@0.005"] <= 1
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

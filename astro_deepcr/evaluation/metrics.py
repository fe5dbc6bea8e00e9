# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detection and inpainting metrics (pure numpy), as in Zhang & Bloom 2020.

Conventions: a pixel is predicted a cosmic ray when its score is ``>=`` the
threshold (so `roc_curve` is exact under ties: all pixels of one score enter
together). `DeepCR.mask` uses ``>``; the two differ only for pixels whose
probability equals the threshold exactly.
"""

import numpy as np
from scipy import ndimage

__all__ = ["confusion_counts", "roc_curve", "tpr_at_fpr", "dilated_tpr", "inpaint_mse"]


def _as_bool(array, name):
    array = np.asarray(array)
    if array.dtype != bool:
        raise TypeError(f"{name} must be a boolean array, not {array.dtype}")
    return array


def _valid(truth, valid):
    return np.ones(truth.shape, bool) if valid is None else _as_bool(valid, "valid")


def confusion_counts(predicted, truth, valid=None):
    """``(TP, FP, TN, FN)`` of a boolean prediction over the ``valid`` pixels."""
    predicted, truth = _as_bool(predicted, "predicted"), _as_bool(truth, "truth")
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted shape {predicted.shape} does not match truth shape {truth.shape}")
    valid = _valid(truth, valid)
    p, t = predicted[valid], truth[valid]
    return int((p & t).sum()), int((p & ~t).sum()), int((~p & ~t).sum()), int((~p & t).sum())


def _rate(numerator, denominator):
    return numerator / denominator if denominator else np.nan


def roc_curve(score, truth, thresholds=None, valid=None, dilate=False):
    """ROC curve of a per-pixel score (e.g. CR probability) against a truth mask.

    Parameters
    ----------
    score : array-like
        Higher means more likely a cosmic ray. Several images may be given
        as one stacked array (the counts pool over all pixels).
    truth : array-like of bool
    thresholds : array-like, optional
        Thresholds to evaluate; default: every distinct score (at most
        4001 quantiles of the scores for large inputs), plus +inf.
    valid : array-like of bool, optional
        Pixels to count (e.g. not bad).
    dilate : bool
        "Dilated" TPR: a true CR pixel counts as found when the 3x3-dilated
        prediction covers it (the last two axes are the image axes); the
        FPR always uses the undilated prediction.

    Returns
    -------
    fpr, tpr, thresholds : ndarray
        Sorted by increasing FPR (decreasing threshold). FPR or TPR is NaN
        when there are no negatives or no positives.
    """
    score = np.asarray(score, dtype=np.float64)
    truth = _as_bool(truth, "truth")
    if score.shape != truth.shape:
        raise ValueError(f"score shape {score.shape} does not match truth shape {truth.shape}")
    valid = _valid(truth, valid)
    found_score = score
    if dilate:
        size = (1,) * (score.ndim - 2) + (3, 3)
        found_score = ndimage.maximum_filter(np.where(valid, score, -np.inf), size=size, mode="constant",
                                             cval=-np.inf)
    positives = np.sort(found_score[valid & truth])
    negatives = np.sort(score[valid & ~truth])
    if thresholds is None:
        distinct = np.unique(score[valid])
        if distinct.size > 4001:
            distinct = np.unique(np.quantile(distinct, np.linspace(0, 1, 4001)))
        thresholds = np.concatenate([[np.inf], distinct[::-1]])
    thresholds = np.sort(np.asarray(thresholds, dtype=np.float64))[::-1]
    tp = positives.size - np.searchsorted(positives, thresholds, side="left")
    fp = negatives.size - np.searchsorted(negatives, thresholds, side="left")
    return (fp / negatives.size if negatives.size else np.full(fp.shape, np.nan),
            tp / positives.size if positives.size else np.full(tp.shape, np.nan), thresholds)


def tpr_at_fpr(fpr, tpr, target, thresholds=None):
    """TPR at a fixed FPR: the best TPR among operating points with FPR <= ``target``.

    No interpolation: the value is achieved by a real threshold (returned
    too when ``thresholds`` is given). Returns NaN when no point qualifies.
    """
    fpr, tpr = np.asarray(fpr), np.asarray(tpr)
    ok = np.isfinite(fpr) & np.isfinite(tpr) & (fpr <= target)
    if not ok.any():
        return (np.nan, np.nan) if thresholds is not None else np.nan
    best = np.flatnonzero(ok)[np.argmax(tpr[ok])]
    return (float(tpr[best]), float(np.asarray(thresholds)[best])) if thresholds is not None else float(tpr[best])


def dilated_tpr(predicted, truth, valid=None):
    """Fraction of true CR pixels covered by the 3x3-dilated prediction."""
    predicted, truth = _as_bool(predicted, "predicted"), _as_bool(truth, "truth")
    valid = _valid(truth, valid)
    grown = ndimage.binary_dilation(predicted & valid, structure=np.ones((3, 3), bool))
    positives = (truth & valid).sum()
    return _rate(float((grown & truth & valid).sum()), float(positives))


def inpaint_mse(cleaned, clean_truth, mask):
    """Mean squared error of ``cleaned`` against the CR-free truth over the ``mask`` pixels."""
    mask = _as_bool(mask, "mask")
    if not mask.any():
        return np.nan
    difference = np.asarray(cleaned, np.float64)[mask] - np.asarray(clean_truth, np.float64)[mask]
    return float(np.mean(difference**2))

# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Detection and inpainting metrics (pure numpy), as in Zhang & Bloom 2020.

The one place for detection rates: `mask_scores` (recall, FPR, precision of
a mask), `roc_curve` and `tpr_at_fpr` / `operating_point` (TPR at a fixed
FPR), every one exact for any input size.

Conventions: a pixel is predicted a cosmic ray when its score is ``>=`` the
threshold (so `roc_curve` is exact under ties: all pixels of one score enter
together). `DeepCR.mask` uses ``>``; the two differ only for pixels whose
probability equals the threshold exactly.
"""

from collections import namedtuple

import numpy as np
from scipy import ndimage

__all__ = ["MaskScores", "OperatingPoint", "confusion_counts", "mask_scores", "roc_curve", "tpr_at_fpr",
           "operating_point", "dilated_tpr", "inpaint_mse"]

MaskScores = namedtuple("MaskScores", ["recall", "fpr", "precision"])
MaskScores.__doc__ = "Recall (TPR), false-positive rate and precision of a boolean mask (see `mask_scores`)."
OperatingPoint = namedtuple("OperatingPoint", ["tpr", "fpr", "threshold"])
OperatingPoint.__doc__ = "TPR, FPR and threshold (``score >= threshold`` flagged) of one ROC point."


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


def mask_scores(found, truth, valid=None):
    """Recall, false-positive rate and precision of a boolean mask against the truth.

    Parameters
    ----------
    found, truth : array-like of bool
        Detections and true cosmic-ray pixels, the same shape.
    valid : array-like of bool, optional
        Pixels to count (e.g. not bad in DQ); default all.

    Returns
    -------
    scores : MaskScores
        ``(recall, fpr, precision)``, each NaN when its denominator (true
        pixels, CR-free pixels, detections) is empty.

    Examples
    --------
    >>> import numpy as np
    >>> mask_scores(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    MaskScores(recall=0.5, fpr=0.5, precision=0.5)
    """
    tp, fp, tn, fn = confusion_counts(found, truth, valid)
    return MaskScores(float(_rate(tp, tp + fn)), float(_rate(fp, fp + tn)), float(_rate(tp, tp + fp)))


def roc_curve(score, truth, thresholds=None, valid=None, dilate=False):
    """Exact ROC curve of a per-pixel score (e.g. CR probability) against a truth mask.

    Parameters
    ----------
    score : array-like
        Higher means more likely a cosmic ray. Several images may be given
        as one stacked array (the counts pool over all pixels).
    truth : array-like of bool
    thresholds : array-like, optional
        Thresholds to evaluate; default: every distinct score, plus +inf,
        for any input size (the scores are sorted once; no thinning, so the
        curve and everything read from it are exact and deterministic).
    valid : array-like of bool, optional
        Pixels to count (e.g. not bad).
    dilate : bool
        "Dilated" TPR: a true CR pixel counts as found when the 3x3-dilated
        prediction covers it (the last two axes are the image axes); the
        FPR always uses the undilated prediction.

    Returns
    -------
    fpr, tpr, thresholds : ndarray
        Sorted by increasing FPR (decreasing threshold); the point at
        ``thresholds[i]`` counts the pixels with ``score >= thresholds[i]``.
        FPR or TPR is NaN when there are no negatives or no positives.
    """
    score = np.asarray(score, dtype=np.float64)
    truth = _as_bool(truth, "truth")
    if score.shape != truth.shape:
        raise ValueError(f"score shape {score.shape} does not match truth shape {truth.shape}")
    valid = _valid(truth, valid)
    if np.isnan(score[valid]).any():
        raise ValueError("score holds NaN on valid pixels; exclude them with valid=")
    found_score = score
    if dilate:
        size = (1,) * (score.ndim - 2) + (3, 3)
        found_score = ndimage.maximum_filter(np.where(valid, score, -np.inf), size=size, mode="constant",
                                             cval=-np.inf)
    positives = found_score[valid & truth]
    negatives = score[valid & ~truth]
    if thresholds is None:
        thresholds, tp, fp = _counts_at_every_score(positives, negatives)
    else:
        thresholds = np.sort(np.asarray(thresholds, dtype=np.float64))[::-1]
        positives, negatives = np.sort(positives), np.sort(negatives)
        tp = positives.size - np.searchsorted(positives, thresholds, side="left")
        fp = negatives.size - np.searchsorted(negatives, thresholds, side="left")
    return (fp / negatives.size if negatives.size else np.full(fp.shape, np.nan),
            tp / positives.size if positives.size else np.full(tp.shape, np.nan), thresholds)


def _counts_at_every_score(positives, negatives):
    """``(thresholds, TP, FP)`` at +inf and at every distinct score, from one sort.

    All pixels of one score enter at the same threshold (exact under ties).
    """
    scores = np.concatenate([positives, negatives])
    is_positive = np.concatenate([np.ones(positives.size, bool), np.zeros(negatives.size, bool)])
    order = np.argsort(scores, kind="stable")[::-1]
    scores, is_positive = scores[order], is_positive[order]
    tp = np.cumsum(is_positive, dtype=np.int64)
    fp = np.arange(1, scores.size + 1, dtype=np.int64) - tp
    # the last pixel of each run of equal scores closes that threshold's counts
    last = np.flatnonzero(np.append(scores[1:] != scores[:-1], True)) if scores.size else np.zeros(0, int)
    return (np.concatenate([[np.inf], scores[last]]), np.concatenate([[0], tp[last]]),
            np.concatenate([[0], fp[last]]))


def tpr_at_fpr(fpr, tpr, target, thresholds=None):
    """TPR at a fixed FPR: the best TPR among operating points with FPR <= ``target``.

    No interpolation: the value is achieved by a real threshold (returned
    too when ``thresholds`` is given). Exact for any input size when the
    curve comes from `roc_curve` with its default thresholds. Returns NaN
    when no point qualifies.

    Examples
    --------
    >>> import numpy as np
    >>> fpr, tpr, thresholds = roc_curve(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0], bool))
    >>> tpr_at_fpr(fpr, tpr, 0.0, thresholds)
    (0.5, 0.9)
    """
    fpr, tpr = np.asarray(fpr), np.asarray(tpr)
    ok = np.isfinite(fpr) & np.isfinite(tpr) & (fpr <= target)
    if not ok.any():
        return (np.nan, np.nan) if thresholds is not None else np.nan
    best = np.flatnonzero(ok)[np.argmax(tpr[ok])]
    return (float(tpr[best]), float(np.asarray(thresholds)[best])) if thresholds is not None else float(tpr[best])


def operating_point(score, truth, target, valid=None, dilate=False):
    """The exact operating point of a score at a fixed FPR: `roc_curve` then `tpr_at_fpr`.

    Parameters
    ----------
    score, truth, valid, dilate
        As in `roc_curve`.
    target : float
        Largest false-positive rate allowed.

    Returns
    -------
    point : OperatingPoint
        ``(tpr, fpr, threshold)``: the best TPR with FPR <= ``target``, the
        FPR it comes with, and the threshold (pixels with ``score >=
        threshold`` are flagged); NaNs when no threshold qualifies.
    """
    fpr, tpr, thresholds = roc_curve(score, truth, valid=valid, dilate=dilate)
    value, threshold = tpr_at_fpr(fpr, tpr, target, thresholds)
    if not np.isfinite(value):
        return OperatingPoint(np.nan, np.nan, np.nan)
    return OperatingPoint(value, float(fpr[np.flatnonzero(thresholds == threshold)[0]]), threshold)


def dilated_tpr(predicted, truth, valid=None):
    """Fraction of true CR pixels covered by the 3x3-dilated prediction.

    A stack of images (the last two axes are the image axes) is dilated
    image by image: a detection never covers a pixel of the next image.
    """
    predicted, truth = _as_bool(predicted, "predicted"), _as_bool(truth, "truth")
    valid = _valid(truth, valid)
    structure = np.ones((1,) * (truth.ndim - 2) + (3, 3), bool)
    grown = ndimage.binary_dilation(predicted & valid, structure=structure)
    positives = (truth & valid).sum()
    return _rate(float((grown & truth & valid).sum()), float(positives))


def inpaint_mse(cleaned, clean_truth, mask):
    """Mean squared error of ``cleaned`` against the CR-free truth over the ``mask`` pixels."""
    mask = _as_bool(mask, "mask")
    if not mask.any():
        return np.nan
    difference = np.asarray(cleaned, np.float64)[mask] - np.asarray(clean_truth, np.float64)[mask]
    return float(np.mean(difference**2))

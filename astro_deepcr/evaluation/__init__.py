# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Evaluation: ROC curves, TPR at fixed FPR, inpainting error, baselines, runtime and reports."""

from .metrics import confusion_counts, dilated_tpr, inpaint_mse, roc_curve, tpr_at_fpr

__all__ = ["confusion_counts", "dilated_tpr", "inpaint_mse", "roc_curve", "tpr_at_fpr"]

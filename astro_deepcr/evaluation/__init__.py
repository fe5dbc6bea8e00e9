# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Evaluation: ROC curves, TPR at fixed FPR, inpainting error, baselines, runtime, reports, injection-recovery."""

from .injection import inject_cosmic_rays, injection_recovery
from .metrics import (
    MaskScores,
    OperatingPoint,
    confusion_counts,
    dilated_tpr,
    inpaint_mse,
    mask_scores,
    operating_point,
    roc_curve,
    tpr_at_fpr,
)

__all__ = ["MaskScores", "OperatingPoint", "confusion_counts", "dilated_tpr", "inject_cosmic_rays",
           "injection_recovery", "inpaint_mse", "mask_scores", "operating_point", "roc_curve", "tpr_at_fpr"]

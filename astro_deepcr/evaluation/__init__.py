# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Evaluation: ROC curves, TPR at fixed FPR, inpainting error, baselines, runtime, reports, injection-recovery.

The names below load their module on first use, so that the command line
plug-ins of this subpackage (``astro-deepcr evaluate``, ``demo --simulated``)
cost nothing until they run (issue #30).
"""

import importlib

#: public name -> module of this subpackage that defines it
_LAZY = {
    "inject_cosmic_rays": "injection",
    "injection_recovery": "injection",
    "MaskScores": "metrics",
    "OperatingPoint": "metrics",
    "confusion_counts": "metrics",
    "dilated_tpr": "metrics",
    "inpaint_mse": "metrics",
    "mask_scores": "metrics",
    "operating_point": "metrics",
    "roc_curve": "metrics",
    "tpr_at_fpr": "metrics",
}

__all__ = ["MaskScores", "OperatingPoint", "confusion_counts", "dilated_tpr", "inject_cosmic_rays",
           "injection_recovery", "inpaint_mse", "mask_scores", "operating_point", "roc_curve", "tpr_at_fpr"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

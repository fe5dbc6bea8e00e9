# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Is one detector's recall significantly below another's on the same injected cosmic rays?

Both detectors see the same cosmic rays, so the comparison is paired: only
the *discordant* ones count, ``b`` found (by a new flag) by detector A only
and ``c`` by detector B only. Under "A is as good as B" each discordant
cosmic ray is A's with probability 1/2; the one-sided exact binomial p that
A is worse is ``P(X <= b)`` for ``X ~ Binomial(b + c, 1/2)`` (McNemar's
exact test, `scipy.stats.binomtest` with ``alternative="less"``). A small p
(below 0.05) says A recalls significantly fewer cosmic rays than B; p is 1
when no cosmic ray is discordant.
"""

import numpy as np

__all__ = ["discordant_test", "compare_detectors", "LOW_CHARGE"]

#: The faint-CR subset of every comparison: injected charge below this (e-).
LOW_CHARGE = 1000.0


def discordant_test(found_a, found_b):
    """Paired exact test of ``found_a`` (detector A, per cosmic ray) against ``found_b``.

    Parameters
    ----------
    found_a, found_b : array-like of bool
        Per injected cosmic ray, the same order: found by a new flag.

    Returns
    -------
    dict
        ``b`` (A only), ``c`` (B only), ``n`` (cosmic rays), ``recall_a``,
        ``recall_b`` and ``p``: the one-sided exact binomial probability
        ``P(X <= b | b + c, 1/2)`` that A is worse.

    Examples
    --------
    >>> result = discordant_test([1, 1, 0, 0, 0, 1], [1, 0, 1, 1, 1, 1])
    >>> result["b"], result["c"], round(result["p"], 4)
    (1, 3, 0.3125)
    """
    from scipy.stats import binomtest

    found_a, found_b = np.asarray(found_a, bool), np.asarray(found_b, bool)
    if found_a.shape != found_b.shape or found_a.ndim != 1:
        raise ValueError(f"found_a and found_b must be 1-D of one length, not {found_a.shape} and {found_b.shape}")
    only_a, only_b = int((found_a & ~found_b).sum()), int((found_b & ~found_a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5, alternative="less").pvalue if only_a + only_b else 1.0
    n = int(found_a.size)
    return {"b": only_a, "c": only_b, "n": n, "p": float(p),
            "recall_a": float(found_a.mean()) if n else float("nan"),
            "recall_b": float(found_b.mean()) if n else float("nan")}


def compare_detectors(results, first, second, max_charge=None, environment=None):
    """`discordant_test` of detector ``first`` against ``second`` in `injection_recovery`'s ``results``.

    ``max_charge``: only the cosmic rays with less injected charge (e-), e.g. `LOW_CHARGE`; ``environment``:
    only those that landed there (an index of ``recovery.ENVIRONMENTS``: 0 near saturated, 1 on a bright
    source, 2 elsewhere).
    """
    per_cr = results["per_cr"]
    for name in (first, second):
        if name not in per_cr["found_new"]:
            raise KeyError(f"no detector {name!r} in the results; have {sorted(per_cr['found_new'])}")
    chosen = np.ones(np.shape(per_cr["found_new"][first]), bool)
    if max_charge is not None:
        chosen &= np.asarray(per_cr["charge"]) < max_charge
    if environment is not None:
        chosen &= np.asarray(per_cr["environment"]) == environment
    return discordant_test(per_cr["found_new"][first][chosen], per_cr["found_new"][second][chosen])

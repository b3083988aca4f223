"""IR-Score: how much of its own clean range an attack leaves a quality score (the book's reading).

Chistyakova et al. (2024; BiRQA chapter, source 002, Table 3) report an "IR-Score" without a formula
the book could follow (their optimal-transport map is not specified). The book's reading, introduced
in the BiRQA chapter and shared by the audit: scale clean and attacked scores by the clean
predictions' range (:func:`~robustbook.metrics.score_robustness.normalise_on_clean`), take the
per-image shift ``|s' − s|`` clipped to [0, 1], and report ``1 − mean shift`` per budget (1 = the
attack moved nothing; 0 = every score moved across the whole clean range), averaged over budgets by
:func:`ir_score_over_eps`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robustbook.metrics.score_robustness import normalise_on_clean

__all__ = ["ir_score", "ir_score_over_eps"]


def ir_score(clean, attacked) -> float:
    """``1 − mean(clip(|s' − s|, 0, 1))`` with scores min-max scaled by the clean predictions."""
    s, s2 = normalise_on_clean(clean, attacked)
    return float(1.0 - np.clip(np.abs(s2 - s), 0.0, 1.0).mean())


def ir_score_over_eps(clean, attacked_per_eps: Sequence) -> float:
    """The mean of :func:`ir_score` over the attacked scores at each budget (the book's IR-Score)."""
    if len(attacked_per_eps) == 0:
        raise ValueError("attacked_per_eps must hold the attacked scores of at least one budget")
    return float(np.mean([ir_score(clean, a) for a in attacked_per_eps]))

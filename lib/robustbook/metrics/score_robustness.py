"""Robustness scores of quality metrics: absolute gain, R-Score, their confidence intervals and ε-AUCs.

From the MSU metrics-robustness benchmark: Antsiferova et al., "Comparing the Robustness of Modern
No-Reference Image- and Video-Quality Metrics to Adversarial Attacks", AAAI 2024, section
"Robustness scores"; source 001 reports them (Tables 1-4). With ``s`` a model's clean scores
min-max normalised **on its own clean predictions** (``s = (f(x) − min f(x)) / (max f(x) − min f(x))``
over the test set) and ``s'`` its scores on the attacked images under the same scaling:

* **absolute gain** = ``mean(s' − s)``: how far an attack that raises the score moves it, in units
  of the model's own clean range (0 = no effect; larger = less robust);
* **R-Score** = ``mean(log10( max(1 − s, s − 0) / (|s − s'| + 1e-6) ))``: the room the score had,
  over how far it moved, on a log scale (larger = more robust; 1 = it moved a tenth of its room);
* each with a 95 % confidence interval over images (Student's t on the per-image values by
  default, or a percentile bootstrap);
* **AUC variants** (``AbsGain-AUC``, ``R-Score-AUC``): the source leaves them undefined; the book
  takes the trapezoid rule of the score over the stated ε grid divided by the grid's range
  (the mean height of the curve), :func:`auc_over_eps`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["normalise_on_clean", "abs_gain", "r_score", "ScoreCI", "abs_gain_ci", "r_score_ci", "auc_over_eps",
           "robustness_scores"]


def _arr(v, what: str) -> np.ndarray:
    a = v.detach().cpu().double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
    a = a.reshape(-1)
    if a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"{what} must be a non-empty array of finite numbers")
    return a


def normalise_on_clean(clean, attacked) -> tuple[np.ndarray, np.ndarray]:
    """``(s, s')``: both min-max scaled by the clean predictions' range (``s`` lies in [0, 1])."""
    c, a = _arr(clean, "clean"), _arr(attacked, "attacked")
    if c.shape != a.shape:
        raise ValueError(f"clean and attacked scores differ in length: {c.size} vs {a.size}")
    lo, hi = c.min(), c.max()
    if hi - lo <= 0:
        raise ValueError("the clean predictions are all equal: min-max normalisation is undefined")
    return (c - lo) / (hi - lo), (a - lo) / (hi - lo)


def _gains(clean, attacked) -> np.ndarray:
    s, s2 = normalise_on_clean(clean, attacked)
    return s2 - s


def _rs(clean, attacked) -> np.ndarray:
    s, s2 = normalise_on_clean(clean, attacked)
    return np.log10(np.maximum(1 - s, s - 0) / (np.abs(s - s2) + 1e-6))


def abs_gain(clean, attacked) -> float:
    """Absolute gain ``mean(s' − s)`` (MSU benchmark)."""
    return float(_gains(clean, attacked).mean())


def r_score(clean, attacked) -> float:
    """R-Score ``mean(log10(max(1 − s, s) / (|s − s'| + 1e-6)))`` (MSU benchmark)."""
    return float(_rs(clean, attacked).mean())


@dataclass(frozen=True)
class ScoreCI:
    """A mean over images with its 95 % confidence interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _ci(v: np.ndarray, method: str, n_boot: int, seed: int, level: float = 0.95) -> ScoreCI:
    m = float(v.mean())
    if v.size < 2:
        return ScoreCI(m, float("nan"), float("nan"))
    if method == "t":
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
        return ScoreCI(m, m - half, m + half)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(1)
        lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
        return ScoreCI(m, float(lo), float(hi))
    raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")


def abs_gain_ci(clean, attacked, *, method: str = "t", n_boot: int = 2000, seed: int = 0) -> ScoreCI:
    """Absolute gain with its 95 % CI over images."""
    return _ci(_gains(clean, attacked), method, n_boot, seed)


def r_score_ci(clean, attacked, *, method: str = "t", n_boot: int = 2000, seed: int = 0) -> ScoreCI:
    """R-Score with its 95 % CI over images."""
    return _ci(_rs(clean, attacked), method, n_boot, seed)


def auc_over_eps(eps: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under ``values(ε)`` divided by ``max ε − min ε`` (the book's AUC; one point: the value)."""
    e, v = np.asarray(eps, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if e.shape != v.shape or e.size == 0 or not (np.isfinite(e).all() and np.isfinite(v).all()):
        raise ValueError(f"eps and values must be equally long non-empty finite sequences, got {e.size} and {v.size}")
    if e.size == 1:
        return float(v[0])
    if np.any(np.diff(e) <= 0):
        raise ValueError(f"eps must be strictly increasing, got {e.tolist()}")
    return float(np.trapezoid(v, e) / (e[-1] - e[0]))


def robustness_scores(clean, attacked, *, method: str = "t") -> dict[str, float]:
    """``abs_gain``, ``r_score`` and their CIs as a flat JSON-friendly dict."""
    g, r = abs_gain_ci(clean, attacked, method=method), r_score_ci(clean, attacked, method=method)
    return {"abs_gain": g.value, "abs_gain_low": g.low, "abs_gain_high": g.high,
            "r_score": r.value, "r_score_low": r.low, "r_score_high": r.high}

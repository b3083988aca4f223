"""Is IQA model A better than model B? The paired bootstrap of the SROCC difference.

BiRQA (source 002, appendix C.5) measures a practical improvement by

    Δρ = SROCC(y_MOS, y_A) − SROCC(y_MOS, y_B)

and estimates it by a paired non-parametric bootstrap: R resamples of size N
drawn with replacement, *the same indices* for the MOS and both predictions
(so that the dependence between the two models' errors is kept). On each
resample b one computes Δρ^(b); the median of {Δρ^(b)} is the effect size, the
2.5th and 97.5th percentiles the two-sided 95 % CI, and "an improvement is
considered significant when the lower CI bound is positive and Δρ ≥ 0.01".

All R resamples are ranked at once: a resample only repeats values of the
original sample, so the (average, tie-aware) rank of a value in a resample is
read off cumulative counts of the values drawn. This equals
``scipy.stats.rankdata(values[idx], axis=1)`` without sorting each row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustbook.metrics.correlation import check_scores, srocc

__all__ = ["BootstrapResult", "paired_bootstrap_srocc"]

# Elements of one (resamples × N) block; bounds the memory to a few hundred MB.
_BLOCK = 4_000_000


@dataclass(frozen=True)
class BootstrapResult:
    """A paired bootstrap of ΔSROCC = SROCC(target, pred_a) − SROCC(target, pred_b).

    Attributes:
        point: Δρ on the full data.
        effect: the median of the bootstrap Δρ^(b) (the paper's effect size).
        ci_low, ci_high: percentile interval at level ``ci``.
        ci: confidence level (0.95 → the 2.5th and 97.5th percentiles).
        significant: ``ci_low > 0`` and ``effect >= min_effect`` (A is better).
        min_effect: smallest improvement that counts (0.01 in the paper).
        n: sample size; n_resamples: R; seed: the generator's seed.
        deltas: the R values Δρ^(b), in draw order.
    """

    point: float
    effect: float
    ci_low: float
    ci_high: float
    ci: float
    significant: bool
    min_effect: float
    n: int
    n_resamples: int
    seed: int
    deltas: np.ndarray = field(repr=False, compare=False)

    def as_dict(self) -> dict:
        """The summary as JSON-friendly Python values (without the R deltas)."""
        return {
            "point": self.point,
            "effect": self.effect,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ci": self.ci,
            "significant": self.significant,
            "min_effect": self.min_effect,
            "n": self.n,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
        }

    def __str__(self) -> str:
        verdict = "significant" if self.significant else "not significant"
        return (
            f"ΔSROCC = {self.effect:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}] "
            f"({self.ci:.0%} CI, {self.n_resamples} paired resamples of n={self.n}; "
            f"full data {self.point:+.4f}; {verdict} at Δρ ≥ {self.min_effect:g})"
        )


def resampled_ranks(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Average ranks (1..N) of ``values[idx]`` within each row of ``idx`` (R, N).

    Equal to ``scipy.stats.rankdata(values[idx], axis=1)``: the rank of a value
    is the number of draws below it plus (its own count + 1) / 2.
    """
    uniq, codes_of_value = np.unique(values, return_inverse=True)
    k = uniq.size
    r = idx.shape[0]
    codes = codes_of_value[idx]
    counts = np.bincount((codes + k * np.arange(r)[:, None]).ravel(), minlength=r * k).reshape(r, k)
    rank_of_code = np.cumsum(counts, axis=1) - (counts - 1) / 2.0
    return np.take_along_axis(rank_of_code, codes, axis=1)


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair; 0.0 where a row is constant (as :func:`srocc`)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", a, b)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return np.clip(out, -1.0, 1.0)


def paired_bootstrap_srocc(
    target: Any,
    pred_a: Any,
    pred_b: Any,
    *,
    n_resamples: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    min_effect: float = 0.01,
) -> BootstrapResult:
    """Paired bootstrap of SROCC(target, pred_a) − SROCC(target, pred_b) (BiRQA, appendix C.5).

    Args:
        target: the MOS (or DMOS) vector, shape (N,), N ≥ 3.
        pred_a, pred_b: the two models' predictions of the same N images.
        n_resamples: R, the number of bootstrap resamples (1,000 in the paper).
        ci: level of the two-sided percentile interval, in (0, 1).
        seed: seeds ``numpy.random.default_rng``; resample b uses row b of
            ``default_rng(seed).integers(0, N, size=(n_resamples, N))``.
        min_effect: smallest effect that counts as an improvement (the paper's 0.01).

    A resample in which a prediction (or the MOS) happens to be constant gets
    SROCC 0, as :func:`~robustbook.metrics.correlation.srocc` does.
    Positive Δρ favours ``pred_a``.
    """
    a, t = check_scores(pred_a, target, names=("pred_a", "target"))
    b, _ = check_scores(pred_b, t, names=("pred_b", "target"))
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an int >= 2, got {n_resamples!r}")
    if not isinstance(ci, (float, int)) or isinstance(ci, bool) or not 0 < ci < 1:
        raise ValueError(f"ci must be a confidence level strictly between 0 and 1 (e.g. 0.95), got {ci!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")

    n = t.size
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK // n)
    deltas = np.empty(n_resamples)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        # Drawn block by block from one generator: the same stream as one (R, N) draw.
        idx = rng.integers(0, n, size=(stop - start, n))
        rt = resampled_ranks(t, idx)
        deltas[start:stop] = _rowwise_pearson(resampled_ranks(a, idx), rt) - _rowwise_pearson(
            resampled_ranks(b, idx), rt
        )

    tail = (1.0 - ci) / 2.0 * 100.0
    low, high = np.percentile(deltas, [tail, 100.0 - tail])
    effect = float(np.median(deltas))
    return BootstrapResult(
        point=srocc(a, t) - srocc(b, t),
        effect=effect,
        ci_low=float(low),
        ci_high=float(high),
        ci=float(ci),
        significant=bool(low > 0 and effect >= min_effect),
        min_effect=float(min_effect),
        n=n,
        n_resamples=int(n_resamples),
        seed=int(seed),
        deltas=deltas,
    )

"""Agreement between predicted and subjective quality scores: SROCC, PLCC, KROCC, RMSE.

These are the four numbers every IQA paper of the book reports (ST Norm, the
orthogonal RobustBlock, BiRQA): prediction first, target (MOS/DMOS) second.

PLCC and RMSE measure a *linear* relation. IQA models are free to be any
monotone function of quality, so the customary protocol (VQEG, "Final report
from the Video Quality Experts Group on the validation of objective models of
video quality assessment", 2000/2003) first maps the predictions with a
4-parameter logistic fitted to the targets::

    f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2

``logistic=True`` does this. SROCC and KROCC depend on ranks only, so they
are invariant to every monotone map and take no ``logistic`` option.

Degenerate inputs: a *constant prediction* (e.g. a model an attack drove to a
single output) has no correlation left with anything, and every correlation
here returns ``0.0`` for it instead of NaN. A *constant target* is a broken
benchmark, not a model's failure, and raises :class:`ValueError`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

__all__ = [
    "srocc",
    "plcc",
    "krocc",
    "rmse",
    "logistic4",
    "logistic_fit",
    "LogisticFit",
    "iqa_report",
]

MIN_POINTS = 3


def _as_vector(x: Any, name: str) -> np.ndarray:
    """``x`` (NumPy array, torch tensor or sequence of numbers) as a float64 1-D array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a 1-D NumPy array or torch tensor of numbers: {exc}") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(
            f"{name} must hold real numbers (a 1-D NumPy array or torch tensor), got dtype {arr.dtype}"
        )
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one score per image), got shape {tuple(arr.shape)}; "
            "flatten it first, e.g. pred.reshape(-1)"
        )
    arr = arr.astype(np.float64, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        n_nan = int(np.count_nonzero(np.isnan(arr)))
        raise ValueError(
            f"{name} contains {n_nan} NaN and {bad - n_nan} infinite value(s); all scores must be finite"
        )
    return arr


def check_scores(
    pred: Any, target: Any, *, names: tuple[str, str] = ("pred", "target")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of score vectors and return them as float64 NumPy arrays.

    Both must be 1-D, finite, of the same length and hold at least three
    points; the target must not be constant.
    """
    a = _as_vector(pred, names[0])
    b = _as_vector(target, names[1])
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same length, got {a.size} and {b.size}"
        )
    if a.size < MIN_POINTS:
        raise ValueError(f"a correlation needs at least {MIN_POINTS} points, got {a.size}")
    if np.ptp(b) == 0:
        raise ValueError(f"{names[1]} is constant; a correlation with it is undefined")
    return a, b


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r of two validated vectors; 0.0 when ``a`` is constant."""
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if den == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / den, -1.0, 1.0))


def srocc(pred: Any, target: Any) -> float:
    """Spearman's rank-order correlation coefficient.

    Pearson's r of the ranks (ties get their average rank), as
    ``scipy.stats.spearmanr``. Returns 0.0 for a constant prediction.
    """
    a, b = check_scores(pred, target)
    return _pearson(stats.rankdata(a), stats.rankdata(b))


def plcc(pred: Any, target: Any, *, logistic: bool = False) -> float:
    """Pearson's linear correlation coefficient.

    With ``logistic=True`` the predictions are first mapped by the VQEG
    4-parameter logistic fitted to the targets (:func:`logistic_fit`).
    Returns 0.0 for a constant prediction.
    """
    a, b = check_scores(pred, target)
    if logistic:
        a = logistic_fit(a, b)(a)
    return _pearson(a, b)


def krocc(pred: Any, target: Any) -> float:
    """Kendall's rank-order correlation coefficient (tau-b, which accounts for ties).

    As ``scipy.stats.kendalltau``. Returns 0.0 for a constant prediction.
    """
    a, b = check_scores(pred, target)
    if np.ptp(a) == 0:
        return 0.0
    return float(stats.kendalltau(a, b).statistic)


def rmse(pred: Any, target: Any, *, logistic: bool = False) -> float:
    """Root mean squared error ``sqrt(mean((pred - target)^2))``, in target units.

    Raw RMSE is only meaningful when the model predicts on the target's scale;
    ``logistic=True`` (the IQA convention) first maps the predictions with
    :func:`logistic_fit`.
    """
    a, b = check_scores(pred, target)
    if logistic:
        a = logistic_fit(a, b)(a)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def logistic4(x: Any, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The 4-parameter logistic of VQEG: ``(b1 - b2) / (1 + exp(-(x - b3)/|b4|)) + b2``.

    ``b1`` and ``b2`` are the upper and lower asymptotes, ``b3`` the midpoint
    and ``|b4|`` the width. Computed with ``scipy.special.expit`` so that
    large arguments do not overflow.
    """
    x = np.asarray(x, dtype=np.float64)
    scale = max(abs(float(b4)), np.finfo(np.float64).tiny)
    return (b1 - b2) * special.expit((x - b3) / scale) + b2


def _logistic4_jacobian(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """∂ logistic4 / ∂(b1, b2, b3, b4), shape (len(x), 4).

    Analytic, because MINPACK's finite differences step in proportion to each
    parameter and so cannot move a parameter that starts near 0 (e.g. ``b3``
    for centred predictions).
    """
    scale = max(abs(float(b4)), np.finfo(np.float64).tiny)
    z = (np.asarray(x, dtype=np.float64) - b3) / scale
    s = special.expit(z)
    slope = (b1 - b2) * s * (1.0 - s)
    sign = 1.0 if b4 >= 0 else -1.0
    return np.stack([s, 1.0 - s, -slope / scale, -slope * z / scale * sign], axis=1)


@dataclass(frozen=True)
class LogisticFit:
    """A fitted :func:`logistic4`; call it on predictions to map them to the target scale.

    ``method`` is ``"logistic"`` normally, ``"constant"`` for a constant
    prediction (the best map is then the target mean) and ``"linear"`` when
    the logistic fit did not converge and a least-squares line was used
    instead (a :class:`RuntimeWarning` says so).
    """

    b1: float
    b2: float
    b3: float
    b4: float
    method: str = "logistic"
    slope: float = 0.0
    intercept: float = 0.0

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.b1, self.b2, self.b3, self.b4)

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.method == "logistic":
            return logistic4(x, *self.params)
        return self.slope * x + self.intercept


def logistic_fit(pred: Any, target: Any, *, maxfev: int = 20000) -> LogisticFit:
    """Fit :func:`logistic4` from ``pred`` to ``target`` by least squares (VQEG).

    The fit runs on standardised predictions and targets (z-scores), where
    ``scipy.optimize.curve_fit`` starts from ``b1 = max``, ``b2 = min``, ``b3 = 0``,
    ``b4 = 1``; the parameters are mapped back to the original units. Standardising
    keeps the problem well conditioned whatever the scale of the scores (raw
    network outputs can be tiny or huge). If the fit still fails, a least-squares
    line is used instead (``method="linear"``) and a warning says so.
    Returns a callable :class:`LogisticFit`.
    """
    a, b = check_scores(pred, target)
    if np.ptp(a) == 0:
        return LogisticFit(np.nan, np.nan, np.nan, np.nan, method="constant", intercept=float(b.mean()))
    ma, sa = float(a.mean()), float(a.std())
    mb, sb = float(b.mean()), float(b.std())
    za, zb = (a - ma) / sa, (b - mb) / sb
    # Two starts, rising and falling (a model whose predictions anti-correlate with the target needs
    # the second); the fit with the smaller squared error wins.
    starts = ([float(zb.max()), float(zb.min()), 0.0, 1.0], [float(zb.min()), float(zb.max()), 0.0, 1.0])
    best, best_sse, error = None, np.inf, "no start converged"
    for p0 in starts:
        try:
            with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                # "Covariance of the parameters could not be estimated" and overflows inside MINPACK while
                # it explores: irrelevant, the result is checked below.
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                params, _ = optimize.curve_fit(logistic4, za, zb, p0=p0, jac=_logistic4_jacobian, maxfev=maxfev)
        except RuntimeError as exc:
            error = str(exc)
            continue
        if not np.all(np.isfinite(params)):
            error = "non-finite parameters"
            continue
        sse = float(np.sum((logistic4(za, *params) - zb) ** 2))
        if sse < best_sse:
            best, best_sse = params, sse
    if best is None:
        warnings.warn(
            f"the 4-parameter logistic fit did not converge ({error}); using a least-squares line instead",
            RuntimeWarning,
            stacklevel=2,
        )
        slope, intercept = np.polyfit(a, b, 1)
        return LogisticFit(
            np.nan, np.nan, np.nan, np.nan, method="linear", slope=float(slope), intercept=float(intercept)
        )
    z1, z2, z3, z4 = (float(p) for p in best)
    return LogisticFit(mb + sb * z1, mb + sb * z2, ma + sa * z3, sa * abs(z4))


def iqa_report(pred: Any, target: Any) -> dict[str, float]:
    """All the agreement numbers of an IQA table in one dict of Python floats.

    Keys: ``srocc``, ``plcc``, ``krocc``, ``rmse`` (raw predictions) and
    ``plcc_logistic``, ``rmse_logistic`` (after one shared :func:`logistic_fit`).
    """
    a, b = check_scores(pred, target)
    mapped = logistic_fit(a, b)(a)
    return {
        "srocc": srocc(a, b),
        "plcc": _pearson(a, b),
        "krocc": krocc(a, b),
        "rmse": float(np.sqrt(np.mean((a - b) ** 2))),
        "plcc_logistic": _pearson(mapped, b),
        "rmse_logistic": float(np.sqrt(np.mean((mapped - b) ** 2))),
    }

"""BiRQA's training losses (Gushchin et al., source 002): eq. (5), the anchored ranking loss of eqs. (3)/(6), L_AAT.

Targets ``y`` may be the scores ``(N,)`` or ``(N, 2)`` with columns ``[score, anchor]`` (anchor
1 = a clean anchor of Algorithm 1, 0 = a non-anchor), as :mod:`robustbook.data.aat_sampler`
batches carry them.
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["plcc_torch", "regression_loss", "nearest_anchor_violations", "anchored_ranking_loss",
           "coverage_eta", "theorem1_terms", "AATLoss"]


def _split_target(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    if y.dim() == 2 and y.shape[1] == 2:
        return y[:, 0], y[:, 1] > 0.5
    if y.dim() == 1:
        return y, None
    raise ValueError(f"targets must be scores (N,) or (N, 2) [score, anchor], got {tuple(y.shape)}")


def _score(pred: torch.Tensor) -> torch.Tensor:
    if pred.dim() == 2 and pred.shape[1] == 1:
        return pred[:, 0]
    if pred.dim() != 1:
        raise ValueError(f"predictions must have shape (N,) or (N, 1), got {tuple(pred.shape)}")
    return pred


def plcc_torch(pred: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Differentiable Pearson correlation of two vectors."""
    p, t = pred - pred.mean(), y - y.mean()
    return (p * t).sum() / (p.norm() * t.norm() + eps)


def regression_loss(pred: torch.Tensor, y: torch.Tensor, alpha: float = 0.7) -> torch.Tensor:
    """Eq. (5): ``α·MSE(y, ŷ) − (1 − α)·PLCC(y, ŷ)`` (α = 0.7 in the source). Scores only (column 0 of y)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    pred = _score(pred)
    y = _split_target(y)[0].to(pred.dtype)
    mse = ((pred - y) ** 2).mean()
    if pred.numel() < 2:
        return alpha * mse
    return alpha * mse - (1 - alpha) * plcc_torch(pred, y)


def nearest_anchor_violations(pred: torch.Tensor, mos: torch.Tensor, anchor_mask: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``max(v⁺_j, v⁻_j)`` of eq. (3) for every non-anchor j, and the indices j.

    ``i⁻(j)`` = the anchor with the largest MOS ≤ y_j, ``i⁺(j)`` = the anchor with the smallest
    MOS ≥ y_j (ties: the lowest index). The batch need not be sorted. A non-anchor without an
    anchor on one side has no violation on that side (Theorem 1's coverage assumption fails for
    it; :func:`coverage_eta` reports that as η = inf).
    """
    pred, mos = _score(pred), mos.to(pred.dtype)
    anchor_mask = anchor_mask.bool()
    if anchor_mask.shape != mos.shape:
        raise ValueError(f"anchor_mask {tuple(anchor_mask.shape)} must match the scores {tuple(mos.shape)}")
    if not anchor_mask.any():
        raise ValueError("the batch has no anchors; the anchored ranking loss needs at least one")
    a_idx = anchor_mask.nonzero()[:, 0]
    j_idx = (~anchor_mask).nonzero()[:, 0]
    ya, yj = mos[a_idx], mos[j_idx]                      # (A,), (J,)
    big = torch.finfo(mos.dtype).max
    below = ya[None, :] <= yj[:, None]                  # (J, A)
    above = ya[None, :] >= yj[:, None]
    lo_key = torch.where(below, ya[None, :], torch.full_like(below, -big, dtype=mos.dtype))
    hi_key = torch.where(above, ya[None, :], torch.full_like(above, big, dtype=mos.dtype))
    i_lo = lo_key.argmax(1)  # first maximum: the nearest anchor below
    i_hi = hi_key.argmin(1)
    pa = pred[a_idx]
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    v_plus = torch.where(above.any(1), (pred[j_idx] - pa[i_hi]).clamp_min(0), zero)
    v_minus = torch.where(below.any(1), (pa[i_lo] - pred[j_idx]).clamp_min(0), zero)
    return torch.maximum(v_plus, v_minus), j_idx


def anchored_ranking_loss(pred: torch.Tensor, mos: torch.Tensor, anchor_mask: torch.Tensor, k: int = 4,
                          mos_range: float | None = None) -> torch.Tensor:
    """The anchored ranking loss: mean of the k largest ``ℓ_j^near`` (eq. (6)); k = 1 is the max of eq. (3).

    ``ℓ_j^near = max(v⁺_j, v⁻_j) / R`` with ``R = mos_range`` (the batch's MOS range when None).
    Fewer than k non-anchors: the mean over all of them. No non-anchor: 0.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    pred = _score(pred)
    mos = mos.to(pred.dtype)
    r = float(mos.max() - mos.min()) if mos_range is None else float(mos_range)
    if not r > 0:
        raise ValueError(f"the MOS range R must be > 0 (got {r}); pass mos_range= for a batch of equal scores")
    v, _ = nearest_anchor_violations(pred, mos, anchor_mask)
    if v.numel() == 0:
        return pred.sum() * 0.0
    top = torch.topk(v / r, min(k, v.numel())).values
    return top.mean()


def coverage_eta(mos: torch.Tensor, anchor_mask: torch.Tensor) -> float:
    """The smallest η for which the two-sided coverage (7) holds in this batch.

    ``inf`` if a non-anchor is not bracketed by anchors.
    """
    mos, anchor_mask = mos.detach().double(), anchor_mask.bool()
    ya = mos[anchor_mask]
    eta = 0.0
    for y in mos[~anchor_mask]:
        lo, hi = ya[ya <= y], ya[ya >= y]
        if lo.numel() == 0 or hi.numel() == 0:
            return float("inf")
        eta = max(eta, float(y - lo.max()), float(hi.min() - y))
    return eta


def theorem1_terms(pred: torch.Tensor, mos: torch.Tensor, anchor_mask: torch.Tensor,
                   mos_range: float | None = None) -> dict[str, float]:
    """Every term of Theorem 1 (eq. (4)) measured on one batch.

    ``eps`` = max anchor error (assumption 1), ``eta`` = :func:`coverage_eta` (assumption 2),
    ``delta`` = eq. (3) (k = 1, the max; assumption 3, with equality), ``R``, the bound
    ``eps + eta + R·delta`` and the observed ``E = max_j |ŷ_j − y_j|``.
    """
    pred, mos = _score(pred).detach().double(), mos.detach().double()
    anchor_mask = anchor_mask.bool()
    r = float(mos.max() - mos.min()) if mos_range is None else float(mos_range)
    delta = float(anchored_ranking_loss(pred, mos, anchor_mask, k=1, mos_range=r))
    eps = float((pred[anchor_mask] - mos[anchor_mask]).abs().max())
    eta = coverage_eta(mos, anchor_mask)
    err = (pred - mos).abs()
    return {"eps": eps, "eta": eta, "delta": delta, "R": r, "bound": eps + eta + r * delta,
            "E": float(err.max()), "E_nonanchor": float(err[~anchor_mask].max()) if (~anchor_mask).any() else 0.0}


class AATLoss:
    """L_AAT = ½·L + ½·L_anchor (eq. (6)): L = eq. (5) on the anchors, L_anchor = top-k anchored ranking loss.

    A callable ``loss(pred, y)`` for :func:`robustbook.train.fit`, with ``y`` of shape (N, 2)
    ``[score, anchor]``. While gradients are on (training) it appends every batch's
    :func:`theorem1_terms` plus the optimised ``L_anchor`` (top-k) to ``self.log``: that is
    Fig. 5 of the source, measured on the real training batches.
    """

    def __init__(self, k: int = 4, alpha: float = 0.7, weight: float = 0.5, mos_range: float | None = None) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight (α2 of Table 10) must be in [0, 1], got {weight!r}")
        self.k, self.alpha, self.weight, self.mos_range = k, alpha, weight, mos_range
        self.log: list[dict[str, Any]] = []

    def __call__(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mos, mask = _split_target(y)
        if mask is None:
            raise ValueError("AATLoss needs targets (N, 2) [score, anchor]; batch with robustbook.data.aat_sampler")
        pred = _score(pred)
        mos = mos.to(pred.dtype)
        base = regression_loss(pred[mask], mos[mask], self.alpha)
        l_anchor = anchored_ranking_loss(pred, mos, mask, k=self.k, mos_range=self.mos_range)
        if torch.is_grad_enabled():
            self.log.append({"L_anchor": float(l_anchor.detach()), "L": float(base.detach()),
                             **theorem1_terms(pred, mos, mask, self.mos_range)})
        return (1 - self.weight) * base + self.weight * l_anchor

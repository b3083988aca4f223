"""TReS's training objective: L1 + relative ranking + self-consistency under a horizontal flip.

Golestaneh, Dadsetan & Kitani, "No-Reference Image Quality Assessment via Transformers, Relative
Ranking, and Self-Consistency", WACV 2022, Sec. 3.3-3.4, as their public code computes it
(github.com/isalirezag/TReS, ``models.py``):

* **relative ranking** (their eq. 6): in a batch sorted by the ground truth ``q``, with predictions
  ``s``, two triplet losses on the extremes, with the L1 distance ``d(a, b) = |a − b|``::

      L_r = max(0, d(s_min, s_min') − d(s_min, s_max) + (q_max − q_min'))
          + max(0, d(s_max, s_max') − d(s_max, s_min) + (q_max' − q_min))

  (``min'``/``max'`` = second lowest / second highest ground truth): the worst image must be
  predicted closer to the second worst than to the best, by a margin the labels set, and the
  best closer to the second best than to the worst.
* **self-consistency** (their eq. 7-8): the network sees ``x`` and its horizontal flip ``τ(x)``;
  the L1 distance between their features (the transformer's output and the CNN's last map,
  compared as they come out, not flipped back, as the authors' code does) and between the two
  ranking losses, each side pulled towards the other with a stop-gradient on the other
  (``|a − sg(b)| + |b − sg(a)|``).

The whole objective, with their weights::

    L = L1(s, q) + L1(s_τ, q) + Σ_features [|f − sg(f_τ)| + |f_τ − sg(f)|]
        + 0.5 · (|L_r − sg(L_r,τ)| + |L_r,τ − sg(L_r)|) + 0.05 · (L_r + L_r,τ)

:class:`FlipConsistency` wraps a model that has ``features(x) -> (scores, [maps])`` so that the
library's ``fit`` (whose loss sees only outputs) can train with :func:`tres_loss`: its output
is ``(N, 3)`` = (score of x, score of τ(x), per-image feature consistency); the per-image means
average to the batch's L1 losses because every image has the same number of feature elements.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["relative_ranking_loss", "symmetric_l1", "FlipConsistency", "tres_loss", "hflip"]


def hflip(x: torch.Tensor) -> torch.Tensor:
    """Horizontal flip of an image batch ``(N, C, H, W)`` (TReS's τ)."""
    return torch.flip(x, dims=[3])


def relative_ranking_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """TReS's relative ranking loss over the batch's extremes (module docstring); a 0-dim tensor.

    Args:
        pred: predicted scores ``(N,)``, ``N >= 2``.
        target: ground-truth scores ``(N,)`` (higher = better).
    """
    if pred.ndim != 1 or target.shape != pred.shape or len(pred) < 2:
        raise ValueError(f"pred and target must be equally long 1-D tensors of at least 2 scores, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    order = torch.argsort(target)
    lo, lo2, hi2, hi = order[0], order[1], order[-2], order[-1]
    q = target.detach()
    low = F.relu((pred[lo] - pred[lo2]).abs() - (pred[lo] - pred[hi]).abs() + (q[hi] - q[lo2]))
    high = F.relu((pred[hi] - pred[hi2]).abs() - (pred[hi] - pred[lo]).abs() + (q[hi2] - q[lo]))
    return low + high


def symmetric_l1(a: torch.Tensor, b: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
    """``mean|a − sg(b)| + mean|b − sg(a)|``: each side pulled towards the other (TReS's consistency).

    With ``per_sample`` the means are taken per image (dimension 0), shape ``(N,)``.
    """
    if a.shape != b.shape:
        raise ValueError(f"the two feature tensors must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    dims = tuple(range(1, a.ndim)) if per_sample else tuple(range(a.ndim))
    return (a - b.detach()).abs().mean(dims) + (b - a.detach()).abs().mean(dims)


class FlipConsistency(nn.Module):
    """Training view of a TReS-like model: ``forward(x) -> (N, 3)`` = (s(x), s(τ(x)), feature consistency).

    ``model.features(x)`` must return ``(scores (N,), [feature tensors])``. Train the view with
    :func:`tres_loss`; evaluate and attack ``view.model``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(model, "features", None)):
            raise TypeError(f"{type(model).__name__} has no features(x) -> (scores, [maps]) method")
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, feats = self.model.features(x)
        sf, feats_f = self.model.features(hflip(x))
        cons = sum((symmetric_l1(a, b, per_sample=True) for a, b in zip(feats, feats_f, strict=True)),
                   torch.zeros_like(s))
        return torch.stack([s, sf, cons], 1)


def tres_loss(out: torch.Tensor, target: torch.Tensor, *, rank_weight: float = 0.05,
              rank_consistency_weight: float = 0.5) -> torch.Tensor:
    """TReS's objective (module docstring) from a :class:`FlipConsistency` output ``(N, 3)``; batch mean, 0-dim."""
    if out.ndim != 2 or out.shape[1] != 3:
        raise ValueError(f"tres_loss takes FlipConsistency's (N, 3) output, got {tuple(out.shape)}")
    s, sf, cons = out.unbind(1)
    lr, lrf = relative_ranking_loss(s, target), relative_ranking_loss(sf, target)
    return (F.l1_loss(s, target) + F.l1_loss(sf, target) + cons.mean()
            + rank_consistency_weight * symmetric_l1(lr, lrf) + rank_weight * (lr + lrf))

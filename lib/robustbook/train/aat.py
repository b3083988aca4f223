"""Adversarial training modes of full-reference quality models, on :func:`robustbook.train.fit` (BiRQA, source 002).

Batches are stacked pairs ``(N, 2, 3, H, W)`` (reference first). Attacks perturb the *distorted*
image only, through :class:`robustbook.attacks.FixedReference`, and maximise the predicted score
(eq. (1)) unless told otherwise.

* :class:`DistortedOnly` — any configured attack as an ``attack(model, pair, y)`` of ``fit``; with
  targets ``[score, anchor]`` it leaves anchors clean (Algorithm 1).
* :class:`LabelPenalty` — AT- of Table 3 (Chistyakova et al. 2024, and their released code
  ``wianluna/metrics_at``): the adversarial sample's label is lowered by the damage the attack did,
  ``y_adv = clip(y − p·(1 − SSIM(x_adv, x))·(y_max − y_min), y_min, y_max)``, p = 1.
* :func:`fit_aat` — Algorithm 1: AAT fine-tuning of a trained model (band batches of
  :class:`~robustbook.data.aat_sampler.AATBatchSampler`, PGD on non-anchors, L_AAT of eq. (6)).
* :func:`fit_adversarial` — R- (eq. (2), vanilla) and AT- (label penalty, clean + adversarial with
  ``mix_alpha``) on ordinary shuffled batches.

No-reference models (the arena chapter, :mod:`robustbook.defences`): batches of images ``(N, 3, H, W)``
instead of pairs; the attack then perturbs the images themselves, and ``ref=None`` in :func:`fit_aat` /
:func:`fit_adversarial` batches the images with :class:`~robustbook.data.aat_sampler.ImageScores`.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from robustbook.attacks import FixedReference
from robustbook.data.aat_sampler import AATBatchSampler, ImageScores, PairScores
from robustbook.losses.birqa import AATLoss, regression_loss
from robustbook.models.birqa_features import ssim_map
from robustbook.train.loaders import make_loader
from robustbook.train.loop import fit

__all__ = ["DistortedOnly", "LabelPenalty", "fit_aat", "fit_adversarial", "image_ssim"]


def image_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (mean of the valid-window map over RGB), as pytorch-msssim computes it."""
    return ssim_map(a, b, padding="valid").mean((1, 2, 3))


class DistortedOnly:
    """``attack(model, pair, y)`` → pair with the distorted image attacked (the reference kept).

    ``y`` of shape ``(N, 2)`` ``[score, anchor]``: rows with anchor = 1 stay clean and the attack sees
    the scores only. ``attack`` is any ``attack(model, x, y)`` (e.g. ``attacks.PGD(8/255, 10, alpha=2/255,
    loss=losses.score_up)``).
    """

    def __init__(self, attack: Callable) -> None:
        self.attack = attack

    def __repr__(self) -> str:
        return f"DistortedOnly({self.attack})"

    def __call__(self, model: nn.Module, pair: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if pair.dim() not in (4, 5) or (pair.dim() == 5 and pair.shape[1] != 2):
            raise ValueError(f"expected stacked pairs (N, 2, 3, H, W) or images (N, 3, H, W) of a no-reference "
                             f"model, got {tuple(pair.shape)}")
        if y.dim() == 2:
            rows, scores = (y[:, 1] < 0.5).nonzero()[:, 0], y[:, 0]
        else:
            rows, scores = torch.arange(len(y), device=y.device), y
        out = pair.clone()
        if rows.numel() and pair.dim() == 4:  # a no-reference model: attack the images themselves
            out[rows] = self.attack(model, pair[rows], scores[rows])
        elif rows.numel():
            ref, dist = pair[rows, 0], pair[rows, 1]
            out[rows, 1] = self.attack(FixedReference(model, ref), dist, scores[rows])
        return out


class LabelPenalty(DistortedOnly):
    """AT- of Table 3: attack all rows, lower each label by ``p·(1 − SSIM(x_adv, x))·(y_max − y_min)``."""

    def __init__(self, attack: Callable, p: float = 1.0, y_range: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__(attack)
        if not p >= 0:
            raise ValueError(f"p must be >= 0, got {p!r}")
        self.p, self.y_range = float(p), (float(y_range[0]), float(y_range[1]))

    def __call__(self, model, pair, y):  # type: ignore[override]
        adv = super().__call__(model, pair, y)
        lo, hi = self.y_range
        s = (image_ssim(adv, pair) if pair.dim() == 4 else image_ssim(adv[:, 1], pair[:, 1])).to(y.dtype)
        score = y[:, 0] if y.dim() == 2 else y
        y_adv = (score - self.p * (1 - s) * (hi - lo)).clamp(lo, hi)
        if y.dim() == 2:
            y_adv = torch.stack([y_adv, y[:, 1]], 1)
        return adv, y_adv


def _scores(ref: torch.Tensor | None, dist: torch.Tensor, y: torch.Tensor):
    """Pairs for a full-reference model, the images alone for a no-reference one (``ref=None``)."""
    return ImageScores(dist, y) if ref is None else PairScores(ref, dist, y)


def fit_aat(model: nn.Module, ref: torch.Tensor | None, dist: torch.Tensor, y: torch.Tensor, *, attack: Callable,
            epochs: int, lr: float, seed: int, batch_size: int = 16, n_anchors: int = 8, k: int = 4,
            band: float | None = None, batches: int | None = None, alpha: float = 0.7, weight: float = 0.5,
            progress: bool = False, **fit_kw: Any) -> dict[str, Any]:
    """Algorithm 1 (AAT) on ``fit``: returns ``{"history", "batches": per-batch Theorem-1 terms, "etas", "band"}``."""
    sampler = AATBatchSampler(y, batch_size, n_anchors, band=band, batches=batches, seed=seed)
    loader = DataLoader(_scores(ref, dist, y), batch_sampler=sampler)
    loss = AATLoss(k=k, alpha=alpha, weight=weight, mos_range=sampler.band)
    hist = fit(model, loader, loss_fn=loss, epochs=epochs, seed=seed, attack=DistortedOnly(attack),
               optimizer=partial(torch.optim.Adam, lr=lr, betas=(0.9, 0.999)), progress=progress, **fit_kw)
    return {"history": hist.as_dict(), "batches": loss.log, "etas": list(sampler.etas), "band": sampler.band,
            "widened": sampler.widened}


def fit_adversarial(model: nn.Module, ref: torch.Tensor | None, dist: torch.Tensor, y: torch.Tensor, *, mode: str,
                    attack: Callable, epochs: int, lr: float, seed: int, batch_size: int = 16, alpha: float = 0.7,
                    p: float = 1.0, y_range: tuple[float, float] = (0.0, 1.0), progress: bool = False,
                    **fit_kw: Any) -> dict[str, Any]:
    """R- (``mode="R"``: eq. (2), loss (5) on attacked pairs only) or AT- (``mode="AT"``: label penalty,
    clean and attacked pairs with equal weight, ``mix_alpha=0.5``)."""
    if mode not in ("R", "AT"):
        raise ValueError(f"mode must be 'R' or 'AT', got {mode!r}")
    loader = make_loader(_scores(ref, dist, y), batch_size, shuffle=True, seed=seed, drop_last=True)
    wrapped = DistortedOnly(attack) if mode == "R" else LabelPenalty(attack, p=p, y_range=y_range)
    hist = fit(model, loader, loss_fn=partial(regression_loss, alpha=alpha), epochs=epochs, seed=seed,
               attack=wrapped, mix_alpha=None if mode == "R" else 0.5,
               optimizer=partial(torch.optim.Adam, lr=lr, betas=(0.9, 0.999)), progress=progress, **fit_kw)
    return {"history": hist.as_dict()}

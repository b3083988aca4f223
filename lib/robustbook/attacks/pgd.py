"""Projected Gradient Descent (Madry et al. 2018), L∞ and L2, with random restarts."""
from __future__ import annotations

from collections.abc import Callable

import torch

from robustbook.attacks._core import (
    attack_mode,
    check_inputs,
    flat_norm,
    input_gradient,
    loss_values,
    project,
    resolve_loss,
)
from robustbook.attacks.losses import Loss


def pgd(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: float,
        alpha: float, steps: int, *, norm: str = "linf", random_start: bool = False, restarts: int = 1,
        loss: Loss | None = None, eval_mode: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """Maximise ``loss(model(x + δ), y)`` over ``‖δ‖ ≤ ε`` by projected steepest ascent.

    L∞ step: ``x ← Π(x + α · sign ∇)``; L2 step: ``x ← Π(x + α · ∇/‖∇‖₂)``; Π projects
    onto the ε-ball around the clean images and then onto [0, 1]. This is the
    inner maximisation of Madry et al. (2018), eq. (2.1); with ``norm="linf"`` and
    no random start it equals torchattacks' ``PGD`` step for step (tested).
    Each step is one forward and one backward pass (``benchmarks/pgd_cost.py``).

    With ``restarts = R > 1`` the attack runs ``R`` times from independent random
    starts and keeps, per sample, the final iterate with the highest loss (Madry et
    al.'s restarts; more *search*, not finer steps over the same path). It costs
    ``R · steps`` forward-backward passes plus ``R`` forward passes to score the ends.

    Args:
        model: module or callable, images in [0, 1] → outputs (see :func:`fgsm`).
        x: clean images ``(N, C, H, W)`` in [0, 1].
        y: class labels or float scores.
        eps: budget in pixel units, in the L∞ or L2 norm per sample.
        alpha: step size (L∞: per pixel; L2: per-sample step length).
        steps: number of steps (≥ 0; 0 returns the start point).
        norm: ``"linf"`` or ``"l2"``.
        random_start: start from a uniform point of the L∞ ball, or for L2 from a
            random direction at a uniform radius in [0, ε] (as torchattacks).
        restarts: number of runs (≥ 1); more than one needs ``random_start=True``.
        loss: quantity to increase, ``loss(output, y)``; default cross-entropy for
            labels, squared error for scores. With restarts it must be per-sample.
        eval_mode: run the model in eval mode during the attack; its mode is restored.
        generator: optional ``torch.Generator`` for the random start (CPU).

    Returns:
        The last iterate (with restarts: the best of the runs' last iterates per
        sample), detached, in [0, 1], within ε of ``x`` in ``norm``.
    """
    check_inputs(x, eps, norm)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if not (isinstance(alpha, (int, float)) and alpha >= 0):
        raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be a positive int, got {restarts!r}")
    if restarts > 1 and not random_start:
        raise ValueError("restarts > 1 needs random_start=True (without it every run walks the same path)")
    loss_fn = resolve_loss(loss, y)
    x0 = x.detach()
    if norm == "linf":
        lo, hi = (x0 - eps).clamp_(min=0.0), (x0 + eps).clamp_(max=1.0)
        step = torch.empty_like(x0)  # sign(∇) of the current step (a fresh gradient can be an expanded view)
    best, best_loss = None, None
    with attack_mode(model, eval_mode):
        for _ in range(restarts):
            adv = x0.clone()
            if random_start:
                adv = torch.clamp(adv + _random_start(x0, eps, norm, generator), 0.0, 1.0)
            for _ in range(steps):
                grad = input_gradient(model, adv, y, loss_fn)
                if norm == "linf":  # Π onto [0, 1] ∩ L∞ ball is one clamp to [lo, hi]; in place, no new tensor
                    adv = adv.add_(torch.sign(grad, out=step), alpha=alpha).clamp_(lo, hi)
                else:
                    adv = adv + alpha * grad / (flat_norm(grad) + 1e-10)
                    adv = torch.clamp(x0 + project(adv - x0, eps, norm), 0.0, 1.0).detach()
            if restarts == 1:
                return adv
            value = loss_values(model, adv, y, loss_fn)
            if best is None:
                best, best_loss = adv, value
            else:
                better = value > best_loss
                best = torch.where(better.view(-1, *([1] * (x0.dim() - 1))), adv, best)
                best_loss = torch.where(better, value, best_loss)
    return best if best is not None else x0.clone()


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None) -> torch.Tensor:
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return (2 * u - 1) * eps
    d = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    r = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, dtype=x.dtype).to(x.device)
    return d / (flat_norm(d) + 1e-12) * r * eps

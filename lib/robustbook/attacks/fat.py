"""Early-stopped PGD of Friendly Adversarial Training (FAT; Zhang et al., ICML 2020).

FAT trains on the *friendliest* adversarial data that is still misclassified: PGD runs as
usual (random start, L∞ steps of α), but each sample stops ``tau`` steps after it first
becomes misclassified (τ = 0: as soon as it is). Samples never misclassified take all
``steps``. Used as a training attack in the CIFS chapter (source 003, Table 4.3, "FAT").
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from robustbook.attacks._core import attack_mode, check_inputs, input_gradient, project, resolve_loss
from robustbook.attacks.losses import Loss

__all__ = ["early_stopped_pgd"]


def early_stopped_pgd(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                      eps: float, alpha: float, steps: int, *, tau: int = 0, random_start: bool = True,
                      loss: Loss | None = None, eval_mode: bool = True,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """L∞ PGD that freezes each sample ``tau`` steps after it is first misclassified (FAT, Zhang et al. 2020).

    Args:
        model: classifier, images in [0, 1] → logits.
        x, y: clean images (N, C, H, W) in [0, 1] and integer labels.
        eps, alpha, steps: L∞ budget, step size and largest number of steps.
        tau: extra steps allowed after the first misclassification (≥ 0; FAT's τ).
        random_start: start from a uniform point of the ε-ball.
        loss: the loss ascended (default cross-entropy); eval_mode, generator: as :func:`pgd`.

    Returns: the adversarial images, detached, in [0, 1] and within ε of ``x``.
    """
    check_inputs(x, eps, "linf")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if isinstance(tau, bool) or not isinstance(tau, int) or tau < 0:
        raise ValueError(f"tau must be a non-negative int, got {tau!r}")
    if y.is_floating_point():
        raise TypeError("early-stopped PGD needs integer class labels (it stops on misclassification)")
    loss_fn = resolve_loss(loss, y)
    x0 = x.detach()
    adv = x0.clone()
    if random_start:
        u = torch.rand(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        adv = torch.clamp(x0 + (2 * u - 1) * eps, 0.0, 1.0)
    budget = torch.full((x0.shape[0],), tau, dtype=torch.long, device=x0.device)
    with attack_mode(model, eval_mode):
        for _ in range(steps):
            with torch.no_grad():
                wrong = model(adv).argmax(1) != y
            budget = budget - wrong.long()
            active = budget >= 0
            if not active.any():
                break
            grad = input_gradient(model, adv, y, loss_fn)
            step = alpha * grad.sign() * active.view(-1, *([1] * (x0.dim() - 1)))
            adv = torch.clamp(x0 + project(adv + step - x0, eps, "linf"), 0.0, 1.0).detach()
    return adv

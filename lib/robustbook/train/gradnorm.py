"""NT: training with gradient-norm regularisation (Liu, Yang, Li, Ding & Jiang, "Defense Against
Adversarial Attacks on No-Reference Image Quality Models with Gradient Norm Regularization", CVPR 2024).

Source 001's Table 4 lists "NT" beside adversarial training without expanding it; the book takes
Liu et al.'s method, which penalises the L1 norm of the score's input gradient,
``L = ℓ(f(x), y) + λ · ‖∇_x f(x)‖_1``, with the norm approximated by a finite difference along
the gradient's sign, ``‖∇_x f(x)‖_1 ≈ (f(x + h · sign ∇_x f(x)) − f(x)) / h``,
so each step costs one extra forward-backward pass instead of a double backward.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from robustbook.seeding import seed_everything

__all__ = ["gradient_norm_penalty", "fit_gradient_norm"]


def gradient_norm_penalty(model: nn.Module, x: torch.Tensor, *, h: float = 0.01) -> torch.Tensor:
    """Batch mean of the finite-difference estimate of ``‖∇_x f(x)‖_1`` (differentiable in the weights)."""
    xg = x.detach().requires_grad_(True)
    out = model(xg).reshape(len(x), -1).sum(1)
    (g,) = torch.autograd.grad(out.sum(), xg)
    step = h * g.sign().detach()
    return ((model((x + step).clamp(0, 1)).reshape(len(x), -1).sum(1) - model(x).reshape(len(x), -1).sum(1)) / h).mean()


def fit_gradient_norm(model: nn.Module, loader: Iterable, *,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], epochs: int,
                      optimizer: Callable, lam: float = 0.01, h: float = 0.01, seed: int = 0,
                      device: torch.device | str | None = None, scorer: nn.Module | None = None) -> list[float]:
    """Train on ``loss_fn(model(x), y) + lam · gradient_norm_penalty(scorer, x)``; return the mean loss per epoch.

    ``scorer`` is the network whose score's input gradient is penalised (default ``model``); a
    training view such as :class:`~robustbook.losses.tres.FlipConsistency` passes its inner model.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not lam >= 0 or not h > 0:
        raise ValueError(f"lam must be >= 0 and h > 0, got lam={lam!r}, h={h!r}")
    seed_everything(seed)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(dev).train()
    opt = optimizer([p for p in model.parameters() if p.requires_grad])
    history = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            loss = loss_fn(model(x), y) + lam * gradient_norm_penalty(model if scorer is None else scorer, x, h=h)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
        history.append(total / max(count, 1))
    return history

"""Universal adversarial perturbation (UAP): one perturbation for every image, learned on a training set.

Moosavi-Dezfooli et al., "Universal adversarial perturbations", CVPR 2017, find one ``δ`` that
fools a model on most images; for quality models Shumitskaya, Antsiferova & Vatolin, "Universal
Perturbation Attack on Differentiable No-Reference Image- and Video-Quality Metrics", BMVC 2022,
learn it by gradient ascent on the predicted score over a training set, and the MSU
metrics-robustness benchmark (Antsiferova et al., "Comparing the Robustness of Modern
No-Reference Image- and Video-Quality Metrics to Adversarial Attacks", AAAI 2024) applies it at
amplitudes 0.2, 0.4 and 0.8.

Two steps, as the attack has two phases:

* :func:`train_uap` learns ``δ`` (``3 × H × W``, ``‖δ‖∞ ≤ eps``) on training images: Adam ascent
  on the mean of ``loss(model(clip(x + δ)), y)`` (default :func:`~robustbook.attacks.losses.score_up`,
  the benchmark's "raise the score"), projected onto the ball after each step;
* :func:`UAP` turns the learned ``δ`` into a configured :class:`~robustbook.attacks.Attack` that
  adds ``amplitude · δ`` to every test image (resized bilinearly if the test images have another
  size) and clips to [0, 1]. Its budget is ``ε = amplitude · ‖δ‖∞`` in L∞. The attack ignores the
  model it is called with: the perturbation was learned once, on the model given to :func:`train_uap`.

Reading the benchmark's amplitudes as multipliers of a ``δ`` learned at ``‖δ‖∞ ≤ eps`` is the
book's choice (the chapter's ``uap_eps``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.attacks._core import attack_mode, check_inputs
from robustbook.attacks.configured import Attack
from robustbook.attacks.losses import Loss, score_up

__all__ = ["train_uap", "apply_uap", "UAP"]


def train_uap(model: nn.Module, x: torch.Tensor, eps: float, *, epochs: int = 5, batch_size: int = 32,
              lr: float | None = None, loss: Loss = score_up, y: torch.Tensor | None = None,
              generator: torch.Generator | None = None, eval_mode: bool = True) -> torch.Tensor:
    """Learn one perturbation ``δ`` of shape ``x.shape[1:]`` with ``‖δ‖∞ ≤ eps`` that raises ``loss`` on ``x``.

    Args:
        model: images in [0, 1] → scores; run in eval mode (restored afterwards).
        x: training images ``(N, C, H, W)`` in [0, 1].
        eps: L∞ bound of ``δ`` (pixel units).
        epochs, batch_size: passes over ``x`` (shuffled by ``generator``) and images per step.
        lr: Adam's step (default ``eps / 10``).
        loss: per-sample quantity to increase, ``loss(output, y)``; ``y`` defaults to zeros.
    """
    check_inputs(x, eps)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    dev = next(model.parameters()).device if any(True for _ in model.parameters()) else x.device
    y = torch.zeros(len(x)) if y is None else y
    delta = torch.zeros(x.shape[1:], device=dev, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=eps / 10 if lr is None else lr)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with attack_mode(model, eval_mode), torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(len(x), generator=generator)
                for i in range(0, len(x), batch_size):
                    idx = order[i:i + batch_size]
                    xb, yb = x[idx].to(dev), y[idx].to(dev)
                    value = loss(model((xb + delta).clamp(0, 1)), yb)
                    opt.zero_grad()
                    (-value.mean()).backward()
                    opt.step()
                    with torch.no_grad():
                        delta.clamp_(-eps, eps)
    finally:
        for p in params:
            p.requires_grad_(True)
    return delta.detach().cpu()


def apply_uap(x: torch.Tensor, perturbation: torch.Tensor, amplitude: float = 1.0) -> torch.Tensor:
    """``clip(x + amplitude · δ)``, with ``δ`` resized bilinearly to ``x``'s size if needed."""
    check_inputs(x, 0.0)
    d = perturbation.to(x.device, x.dtype)
    if d.dim() != 3 or d.shape[0] != x.shape[1]:
        raise ValueError(f"perturbation must be (C, H, W) with C = {x.shape[1]}, got {tuple(d.shape)}")
    if d.shape[-2:] != x.shape[-2:]:
        d = F.interpolate(d[None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0]
    return (x + amplitude * d).clamp(0.0, 1.0).detach()


def _uap(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, perturbation: torch.Tensor, amplitude: float,
         eps: float) -> torch.Tensor:
    return apply_uap(x, perturbation, amplitude)


def UAP(perturbation: torch.Tensor, amplitude: float = 1.0) -> Attack:
    """A configured attack that adds ``amplitude · perturbation`` (from :func:`train_uap`) to every image."""
    if not isinstance(perturbation, torch.Tensor) or perturbation.dim() != 3 or not perturbation.is_floating_point():
        raise TypeError("perturbation must be a float tensor (C, H, W), e.g. from train_uap")
    if isinstance(amplitude, bool) or not isinstance(amplitude, (int, float)) or not amplitude >= 0:
        raise ValueError(f"amplitude must be a non-negative number, got {amplitude!r}")
    p = perturbation.detach().cpu()
    eps = float(amplitude) * float(p.abs().max())
    return Attack("UAP", _uap, {"perturbation": p, "amplitude": float(amplitude), "eps": eps}, "linf",
                  uses_gradient=False)

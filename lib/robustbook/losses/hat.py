"""Hybrid adversarial training (HAT) for denoisers: the loss of eq. (2.3), Yan thesis ch. 2.

    ℓ_HAT = ½ ( 1/(1+α) · ‖f(y) − x‖²  +  α/(1+α) · ‖f(y) − f(y′)‖² )

with ``y = x + v`` a Gaussian-noisy image and ``y′ = y + δ*`` its ObsAtk version. The first
term keeps the reconstruction of ordinary noise good; the second makes the denoiser locally
smooth around ``y`` (the reconstructions of ``y`` and ``y′`` agree). ``α = 0`` is normal
training; a large α drifts to the trivial constant denoiser. Gradients flow through *both*
``f(y)`` and ``f(y′)``; ``δ*`` itself is computed with the network frozen (the training loop
does that for every attack).

Reduction: per image the squared errors are summed over ``C, H, W``; the batch value is the
mean over images, so ``½ · Σ / N``: the authors' code divides the summed squared errors by
``2 × batch size`` (HanshuYAN/ObsAtk, ``main_train_HAT.py``). :func:`half_sse` is the same
reduction for one term (normal training, α = 0; vanilla adversarial training on ``f(y′)``).

Use it as the ``pair_loss`` of :func:`robustbook.train.fit` / :func:`~robustbook.train.run_epoch`,
which passes ``(f(y), f(y′), x)``.

Introduced in the denoising chapter (source 003, chapter 2).
"""
from __future__ import annotations

import math

import torch

__all__ = ["half_sse", "HATLoss"]


def _sse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return (a - b).pow(2).flatten(1).sum(dim=1)


def half_sse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``½ ‖f(y) − x‖²`` summed over pixels, averaged over the batch (normal training's loss)."""
    return 0.5 * _sse(output, target.to(output.dtype)).mean()


class HATLoss:
    """Eq. (2.3) as a pair loss: ``HATLoss(alpha)(f(y), f(y′), x)`` → scalar (batch mean).

    Args:
        alpha: the trade-off α ≥ 0 (1 for Tables 2.2/2.3/2.5/2.6, 2 for real noise).
    """

    def __init__(self, alpha: float) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0 (0 = normal training), got {alpha!r}")
        self.alpha = float(alpha)
        self.__name__ = f"hat(alpha={self.alpha:g})"

    def __call__(self, out_clean: torch.Tensor, out_adv: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        fidelity = _sse(out_clean, target.to(out_clean.dtype))
        smooth = _sse(out_clean, out_adv) if a > 0 else torch.zeros_like(fidelity)
        return (0.5 * (fidelity / (1 + a) + a / (1 + a) * smooth)).mean()

    def __repr__(self) -> str:
        return f"HATLoss(alpha={self.alpha:g})"

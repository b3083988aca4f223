"""Random Gaussian noise as an "attack", and Gaussian data augmentation (introduced in chapter 3).

Source 003 (Yan's thesis, ch. 3, §3.3) measures robustness to zero-mean
Gaussian noise beside FGSM and PGD, at standard deviations ``σ`` given in
grey levels (MNIST ``{50, 75, 100}/255``, SVHN ``{15, 25, 35}/255``, ImgNet10
``{10, 15, 25}/255``), and trains models "on original images together with
their Gaussian perturbed versions" (§3.3.3).

* :func:`gaussian_noise` — ``clip_[0,1](x + σ·n)``, ``n ~ N(0, I)``: the
  perturbation of the noise columns of Tables 3.1–3.4. As a configured attack,
  :func:`robustbook.attacks.GaussianNoise` (``attack(model, x, y) -> x_noisy``), it
  goes through :func:`robustbook.metrics.robust_accuracy` like any attack
  (the model is not used: noise does not look at it).
* :class:`GaussianAugment` — the training-time version for
  :func:`robustbook.train.fit` (``attack=GaussianAugment(...)``): each image
  independently, with probability ``p``, gets noise of a standard deviation
  drawn uniformly from a set. With ``p = 1/2`` and the thesis' σ set this is
  the protocol of the authors' released code (each training image is noisy
  with probability 1/2, its σ drawn from the set).

Both take an optional CPU ``torch.Generator`` so that a run is reproducible
without touching the global random state. Pixels stay in [0, 1] (clipping
after adding the noise, as the thesis' code does), so a noisy image's
deviation is *at most* ``σ·n`` per pixel.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["gaussian_noise", "random_sign", "GaussianAugment"]


def _check_sigma(sigma: float) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite non-negative number (pixel units, e.g. 100/255), got {sigma!r}")
    return float(sigma)


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor of images in [0, 1], got {type(x).__name__}")


def _randn(shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal draws of ``shape`` on ``like``'s device/dtype (drawn on the CPU when a generator is given)."""
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def gaussian_noise(x: torch.Tensor, sigma: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``clip_[0,1](x + σ·n)`` with ``n ~ N(0, I)`` of ``x``'s shape; detached, same device and dtype.

    Args:
        x: images in [0, 1], any shape (batch first).
        sigma: the noise standard deviation in pixel units (``100/255`` is the
            thesis' strongest MNIST level). ``0`` returns a copy of ``x``.
        generator: optional CPU generator for reproducible draws.
    """
    _check_images(x)
    sigma = _check_sigma(sigma)
    x = x.detach()
    if sigma == 0:
        return x.clone()
    return torch.clamp(x + sigma * _randn(x.shape, x, generator), 0.0, 1.0)


def random_sign(x: torch.Tensor, eps: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``clip_[0,1](x + ε·s)`` with independent random signs ``s ∈ {−1, +1}`` per pixel.

    The random baseline of chapter 0: a perturbation of exactly the L∞ size of an
    FGSM or PGD attack, in a direction that knows nothing of the model.
    """
    _check_images(x)
    eps = _check_sigma(eps)
    x = x.detach()
    signs = torch.randint(0, 2, x.shape, generator=generator).to(device=x.device, dtype=x.dtype).mul(2).sub(1)
    return torch.clamp(x + eps * signs, 0.0, 1.0)


class GaussianAugment:
    """Training augmentation: each image, with probability ``p``, gets Gaussian noise of a σ drawn from ``sigmas``.

    Use it as :func:`robustbook.train.fit`'s ``attack``: the loop replaces each
    batch by ``augment(model, x, y)`` (the model is ignored). ``p = 1`` makes
    every image noisy; ``p = 0.5`` trains on "original images together with
    their Gaussian perturbed versions" (thesis §3.3.3) in one forward pass.
    """

    def __init__(self, sigmas: Sequence[float], p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if isinstance(sigmas, (int, float)):
            sigmas = [sigmas]
        sigmas = [_check_sigma(s) for s in sigmas]
        if not sigmas:
            raise ValueError("sigmas must hold at least one standard deviation")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.sigmas, self.p, self.generator = tuple(sigmas), float(p), generator

    def __call__(self, model: nn.Module | None, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_images(x)
        x = x.detach()
        n = x.shape[0]
        g = self.generator
        on = torch.rand(n, generator=g) < self.p
        pick = torch.randint(0, len(self.sigmas), (n,), generator=g)
        sigma = torch.tensor(self.sigmas, dtype=x.dtype)[pick] * on.to(x.dtype)
        noise = _randn(x.shape, x, g) * sigma.to(x.device).view(-1, *([1] * (x.dim() - 1)))
        return torch.clamp(x + noise, 0.0, 1.0)

    def __repr__(self) -> str:
        return f"GaussianAugment(sigmas={[round(s, 4) for s in self.sigmas]}, p={self.p})"

"""FACPA: a trained perturbation generator (Shumitskaya, Antsiferova & Vatolin, ICLR 2023 Tiny Papers).

"Fast Adversarial CNN-based Perturbation Attack on No-Reference Image- and Video-Quality Metrics":
instead of optimising a perturbation per image, a small convolutional encoder-decoder ``G`` is
trained once, on a training set, to map an image to a perturbation that raises the metric's
score; at test time the attack is one forward pass of ``G``. The source 002 uses it as an unseen
attack in its Tables 3, 7 and 9.

What the book implements (its choices, the paper's code is not at hand):

* ``G`` is a two-level U-Net (conv encoder, bilinear upsampling, skip connections) with
  ``width`` channels; its output goes through ``tanh`` and is scaled by ``eps``, so the
  perturbation is inside the L∞ ball by construction: ``x_adv = clip(x + eps·tanh(4·G(x)), 0, 1)``.
* Training (:func:`train_facpa`): Adam on ``−mean loss(model(x_adv), y)`` (default
  :func:`~robustbook.attacks.losses.score_up`, eq. (1) of source 002), the attacked model frozen
  in eval mode; for a full-reference model the references of the training pairs are passed as
  ``ref`` and the generator perturbs the distorted image only.
* :func:`FACPA` wraps a trained ``G`` as a configured :class:`~robustbook.attacks.Attack`
  (``uses_gradient=False``: at test time it never differentiates the attacked model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.attacks._core import attack_mode, check_inputs
from robustbook.attacks.configured import Attack
from robustbook.attacks.losses import Loss, score_up

__all__ = ["PerturbationGenerator", "train_facpa", "FACPA"]


class PerturbationGenerator(nn.Module):
    """A two-level U-Net mapping an image ``(N, 3, H, W)`` in [0, 1] to a raw perturbation of the same shape."""

    def __init__(self, width: int = 16, channels: int = 3) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        w = width
        self.enc1 = nn.Sequential(nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1),
                                  nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.Conv2d(3 * w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.enc1(x * 2 - 1)
        h2 = self.enc2(h1)
        up = F.interpolate(h2, size=h1.shape[-2:], mode="bilinear", align_corners=False)
        return self.dec(torch.cat([h1, up], 1))


def perturb(net: nn.Module, x: torch.Tensor, eps: float) -> torch.Tensor:
    """``clip(x + eps·tanh(4·G(x)), 0, 1)``: inside the L∞ ball of radius ``eps`` by construction (the gain 4
    makes an untrained ``G`` use a fair part of the budget from the first step)."""
    return (x + eps * torch.tanh(4.0 * net(x))).clamp(0.0, 1.0)


def train_facpa(model: nn.Module, x: torch.Tensor, eps: float, *, ref: torch.Tensor | None = None,
                y: torch.Tensor | None = None, epochs: int = 5, batch_size: int = 16, lr: float = 1e-3,
                width: int = 16, loss: Loss = score_up, generator: torch.Generator | None = None,
                eval_mode: bool = True) -> PerturbationGenerator:
    """Train a :class:`PerturbationGenerator` that raises ``loss(model(...), y)`` on the images ``x``.

    Args:
        model: ``model(x) -> scores`` or, when ``ref`` is given, ``model(ref, x) -> scores``; frozen.
        x: training images (the distorted images of a full-reference set), ``(N, 3, H, W)`` in [0, 1].
        eps: the L∞ budget of the perturbation (pixel units).
        ref: the references of ``x`` for a full-reference model (``None``: no-reference).
        epochs, batch_size, lr, width: passes over ``x`` (shuffled by ``generator``), Adam's step, U-Net width.
    """
    check_inputs(x, eps)
    if ref is not None and ref.shape != x.shape:
        raise ValueError(f"ref must have the shape of x {tuple(x.shape)}, got {tuple(ref.shape)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    dev = next((p.device for p in model.parameters()), x.device)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else None
    with torch.random.fork_rng(devices=[]):  # G's initialisation from the caller's stream: reproducible
        if seed is not None:
            torch.manual_seed(seed)
        g = PerturbationGenerator(width, x.shape[1]).to(dev)
    y = torch.zeros(len(x)) if y is None else y
    opt = torch.optim.Adam(g.parameters(), lr=lr)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with attack_mode(model, eval_mode), torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(len(x), generator=generator)
                for i in range(0, len(x), batch_size):
                    idx = order[i:i + batch_size]
                    xb = x[idx].to(dev)
                    adv = perturb(g, xb, eps)
                    out = model(ref[idx].to(dev), adv) if ref is not None else model(adv)
                    value = loss(out, y[idx].to(dev))
                    opt.zero_grad()
                    (-value.mean()).backward()
                    opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return g.eval().cpu()


def _facpa(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, net: nn.Module, eps: float) -> torch.Tensor:
    check_inputs(x, eps)
    net = net.to(x.device)
    with torch.no_grad():
        return perturb(net, x, eps).detach()


def FACPA(net: nn.Module, eps: float) -> Attack:
    """A trained generator (from :func:`train_facpa`) as a configured attack: ``x → clip(x + eps·tanh(G(x)))``.

    ``eps`` may differ from the training budget (the IR-Score's budgets reuse one generator)."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a trained PerturbationGenerator (nn.Module), got {type(net).__name__}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a non-negative number in pixel units, got {eps!r}")
    return Attack("FACPA", _facpa, {"net": net, "eps": float(eps)}, "linf", uses_gradient=False)

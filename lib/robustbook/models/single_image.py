"""Single-image denoisers of Table 2.4 (Yan thesis ch. 2): Deep Image Prior and Noise2Self.

Both fit a fresh network to *one* noisy image, without clean data; the thesis runs them with
2,000 (DIP) and 1,000 (N2S) iterations per image, which is why the book runs them only where the
profile allows.

* :func:`deep_image_prior` — Ulyanov et al. (CVPR 2018): a randomly initialised encoder-decoder
  maps a fixed random code ``z`` to the noisy image; a network fits structure before noise, so
  stopping early denoises. As in the authors' code: ``z`` uniform × 0.1 with 32 channels, a small
  perturbation of ``z`` at every step (σ = 1/30), Adam (lr 0.01), and the result is the exponential
  moving average (0.99) of the outputs.
* :func:`noise2self` — Batson & Royer (ICML 2019), single-image mode ("N2S(1)"): a J-invariant
  denoiser trained by masking a grid of pixels (every ``grid``-th pixel, phase cycling), replacing
  them by the mean of their 8 neighbours, and predicting them; the output assembles each pixel's
  prediction from the phase that masked it.

Introduced in the denoising chapter (source 003, chapter 2). The architectures are small
stand-ins of the authors' (DIP's skip hourglass; N2S's DnCNN), chosen for CPU runs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models.dncnn import DnCNN

__all__ = ["Hourglass", "deep_image_prior", "noise2self"]


class Hourglass(nn.Module):
    """A small encoder-decoder with skip connections (DIP's "skip" network, fewer channels)."""

    def __init__(self, in_ch: int = 32, out_ch: int = 3, width: int = 32, levels: int = 3) -> None:
        super().__init__()

        def block(a: int, b: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, stride, 1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2))

        self.down = nn.ModuleList([block(in_ch if i == 0 else width, width, 2) for i in range(levels)])
        self.skip = nn.ModuleList([nn.Conv2d(in_ch if i == 0 else width, 4, 1) for i in range(levels)])
        self.up = nn.ModuleList([block(width + 4, width) for _ in range(levels)])
        self.out = nn.Conv2d(width, out_ch, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skips, h = [], z
        for down, skip in zip(self.down, self.skip, strict=False):
            skips.append(skip(h))
            h = down(h)
        for up, s in zip(self.up, reversed(skips), strict=False):
            h = F.interpolate(h, size=s.shape[-2:], mode="bilinear", align_corners=False)
            h = up(torch.cat([h, s], 1))
        return torch.sigmoid(self.out(h))


def _check(y: torch.Tensor, iters: int) -> None:
    if not isinstance(y, torch.Tensor) or y.dim() != 4 or y.shape[0] != 1:
        raise ValueError(f"y must be one noisy image (1, C, H, W), got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be a positive int, got {iters!r}")


def deep_image_prior(y: torch.Tensor, iters: int = 2000, *, lr: float = 0.01, width: int = 32,
                     reg_noise: float = 1 / 30, ema: float = 0.99, seed: int = 0) -> torch.Tensor:
    """Denoise one image ``(1, C, H, W)`` in [0, 1] by fitting a DIP network for ``iters`` steps."""
    _check(y, iters)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = Hourglass(32, y.shape[1], width)
    z = torch.rand((1, 32) + tuple(y.shape[-2:]), generator=g) * 0.1
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    avg = None
    for _ in range(iters):
        opt.zero_grad()
        out = net(z + reg_noise * torch.randn(z.shape, generator=g))
        F.mse_loss(out, y).backward()
        opt.step()
        o = out.detach()
        avg = o if avg is None else ema * avg + (1 - ema) * o
    return avg.clamp(0, 1)


def _neighbour_mean(y: torch.Tensor) -> torch.Tensor:
    k = torch.ones(1, 1, 3, 3, dtype=y.dtype)
    k[0, 0, 1, 1] = 0
    k = (k / 8).expand(y.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), k, groups=y.shape[1])


def noise2self(y: torch.Tensor, iters: int = 1000, *, grid: int = 4, lr: float = 0.01, depth: int = 8,
               features: int = 32, seed: int = 0) -> torch.Tensor:
    """Denoise one image ``(1, C, H, W)`` in [0, 1] with Noise2Self's single-image mode for ``iters`` steps."""
    _check(y, iters)
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid must be an int >= 2 (mask spacing), got {grid!r}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = DnCNN(y.shape[1], depth, features)
    interp = _neighbour_mean(y)
    h, w = y.shape[-2:]
    rows, cols = torch.arange(h)[:, None], torch.arange(w)[None, :]
    masks = [((rows % grid == i) & (cols % grid == j)).to(y.dtype)[None, None]
             for i in range(grid) for j in range(grid)]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for t in range(iters):
        m = masks[t % len(masks)]
        opt.zero_grad()
        out = net(y * (1 - m) + interp * m)
        ((out - y) ** 2 * m).sum().div(m.sum() * y.shape[1]).backward()
        opt.step()
    net.eval()
    result = torch.zeros_like(y)
    with torch.no_grad():
        for m in masks:
            result += net(y * (1 - m) + interp * m) * m
    return result.clamp(0, 1)

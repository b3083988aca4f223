"""A full-reference model with LPIPS's structure (Zhang et al. 2018), for the BiRQA chapter's baselines.

``LPIPSLike()(ref, dist) -> score (N,)`` (higher = better), or ``(pair)`` with a stacked
``(N, 2, 3, H, W)`` tensor. Structure of LPIPS: deep features of both images from the five ReLU
stages of AlexNet (torchvision's architecture), unit-normalised along channels, squared
differences weighted per channel by learned non-negative weights ``w_l`` (1×1 conv), averaged
over space and summed over layers: the distance ``d``. An affine head maps it onto the quality
scale, ``score = b − softplus(a)·d`` (so higher is better, as the source's MOS).

**The backbone is randomly initialised** (``torchvision.models.alexnet(weights=None)``): no
ImageNet weights and no ``lpips`` linear weights can be downloaded in the offline profiles.
With ``train_backbone=True`` (default) it is trained with the rest ("LPIPS-tune"-like); this is a
model *with LPIPS's structure*, not LPIPS, and the chapter labels it so.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models.birqa import split_pair
from robustbook.models.normalize import Normalize

__all__ = ["LPIPSLike"]

_TAPS = (1, 4, 7, 9, 11)  # the ReLUs of torchvision's AlexNet.features (LPIPS's "alex" taps)


class LPIPSLike(nn.Module):
    """LPIPS-structured FR model on a random-init AlexNet (see the module docstring)."""

    def __init__(self, train_backbone: bool = True, width_mult: float = 1.0) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.alexnet(weights=None).features
        if width_mult != 1.0:
            raise ValueError("width_mult other than 1.0 is not supported (AlexNet's widths are fixed)")
        self.norm = Normalize()
        self.stages = nn.ModuleList()
        prev = 0
        for t in _TAPS:
            self.stages.append(net[prev:t + 1])
            prev = t + 1
        chans = [64, 192, 384, 256, 256]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in chans)
        for lin in self.lins:
            nn.init.constant_(lin.weight, 0.1)
        self.a = nn.Parameter(torch.tensor(0.0))
        self.b = nn.Parameter(torch.tensor(1.0))
        for p in self.stages.parameters():
            p.requires_grad_(train_backbone)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.norm(x)
        out = []
        for s in self.stages:
            if min(h.shape[-2:]) < 3 and any(isinstance(m, nn.MaxPool2d) for m in s):
                s = nn.Sequential(*[m for m in s if not isinstance(m, nn.MaxPool2d)])
            h = s(h)
            out.append(h)
        return out

    def distance(self, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        d = 0.0
        for lin, fr, fd in zip(self.lins, self._feats(ref), self._feats(dist), strict=False):
            fr = fr / (fr.pow(2).sum(1, keepdim=True) + 1e-10).sqrt()
            fd = fd / (fd.pow(2).sum(1, keepdim=True) + 1e-10).sqrt()
            w = lin.weight.clamp_min(0)  # LPIPS keeps the channel weights non-negative
            d = d + F.conv2d((fr - fd) ** 2, w).mean((1, 2, 3))
        return d

    def forward(self, ref: torch.Tensor, dist: torch.Tensor | None = None) -> torch.Tensor:
        ref, dist = split_pair(ref, dist)
        return self.b - F.softplus(self.a) * self.distance(ref, dist) * 10.0

"""A full-reference model with TOPIQ-FR's structure (Chen et al., IEEE TIP 2024), for the BiRQA chapter.

TOPIQ ("a top-down approach from semantics to distortions") takes multi-scale features of the
reference and the distorted image from a CNN backbone (ResNet-50 in the paper), turns each
level into a *distortion* feature from ``[f_ref, f_dist, f_ref − f_dist]`` through a gated
convolution, and propagates semantics **top-down**: the coarsest level attends to itself, then
each finer level is the query of a cross-attention whose keys and values are the (already
refined) next coarser level, followed by self-attention (its "CFANet", cross-scale attention).
Every level is pooled and the concatenation is regressed to the score by an MLP.

What this re-implementation keeps and changes (**clearly not TOPIQ**, and labelled so on the page):

* pyiqa (which holds TOPIQ's code) is not installed and its weights cannot be downloaded here;
  the backbone is a small **randomly initialised** four-stage CNN (stride 2 per stage, widths
  ``width·(1, 2, 4, 8)``) trained with the rest, not an ImageNet ResNet-50;
* the gated convolution, the top-down cross-attention and self-attention (one head, ``dim``
  channels, residual and layer norm) and the pooled-MLP head follow the paper's structure;
* before attention each level's tokens are average-pooled to at most ``tokens × tokens``, so the
  attention cost stays bounded at 1920x1080 (TOPIQ's reference code runs on fixed-size inputs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustbook.models.birqa import split_pair
from robustbook.models.normalize import Normalize

__all__ = ["TOPIQLike"]


class GatedConv(nn.Module):
    """TOPIQ's gated convolution: ``conv(z) · σ(gate(z))`` on ``z = [f_ref, f_dist, f_ref − f_dist]``."""

    def __init__(self, c_in: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3 * c_in, dim, 1)
        self.gate = nn.Conv2d(3 * c_in, dim, 1)

    def forward(self, fr: torch.Tensor, fd: torch.Tensor) -> torch.Tensor:
        z = torch.cat([fr, fd, fr - fd], 1)
        return self.conv(z) * torch.sigmoid(self.gate(z))


class AttnBlock(nn.Module):
    """One-head attention with residual and layer norm: ``q + Attn(LN(q), LN(kv))`` then an MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.nq, self.nkv, self.nff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 1, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        kvn = self.nkv(kv)
        q = q + self.attn(self.nq(q), kvn, kvn, need_weights=False)[0]
        return q + self.ff(self.nff(q))


class TOPIQLike(nn.Module):
    """TOPIQ-FR-structured model on a small random-init backbone (see the module docstring).

    ``TOPIQLike()(ref, dist) -> score (N,)``, higher = better; also takes a stacked pair tensor.
    """

    def __init__(self, width: int = 16, dim: int = 32, tokens: int = 16, levels: int = 4) -> None:
        super().__init__()
        for name, v in (("width", width), ("dim", dim), ("tokens", tokens), ("levels", levels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.norm = Normalize()
        chans = [width * 2 ** i for i in range(levels)]
        self.stages = nn.ModuleList()
        prev = 3
        for c in chans:
            self.stages.append(nn.Sequential(nn.Conv2d(prev, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                                             nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()))
            prev = c
        self.reduce = nn.ModuleList(GatedConv(c, dim) for c in chans)
        self.self_top = AttnBlock(dim)
        self.cross = nn.ModuleList(AttnBlock(dim) for _ in chans[:-1])
        self.selfs = nn.ModuleList(AttnBlock(dim) for _ in chans[:-1])
        self.head = nn.Sequential(nn.Linear(dim * levels, dim), nn.GELU(), nn.Linear(dim, 1))
        self.tokens = tokens

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, out = self.norm(x), []
        for s in self.stages:
            h = s(h)
            out.append(h)
        return out

    def _tokens(self, f: torch.Tensor) -> torch.Tensor:
        h, w = f.shape[-2:]
        if max(h, w) > self.tokens:
            f = F.adaptive_avg_pool2d(f, (min(h, self.tokens), min(w, self.tokens)))
        return f.flatten(2).transpose(1, 2)  # (N, tokens, dim)

    def forward(self, ref: torch.Tensor, dist: torch.Tensor | None = None) -> torch.Tensor:
        ref, dist = split_pair(ref, dist)
        n = len(ref)
        both = self._feats(torch.cat([ref, dist]))
        levels = [self._tokens(red(f[:n], f[n:])) for red, f in zip(self.reduce, both, strict=True)]
        top = self.self_top(levels[-1], levels[-1])
        pooled = [top.mean(1)]
        for i in range(len(levels) - 2, -1, -1):  # top-down: semantics of the coarser level guide the finer one
            h = self.cross[i](levels[i], top)
            top = self.selfs[i](h, h)
            pooled.append(top.mean(1))
        return self.head(torch.cat(pooled, 1)).squeeze(1)
